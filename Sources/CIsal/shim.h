#ifndef STAMP_CISAL_SHIM_H
#define STAMP_CISAL_SHIM_H
#include <isa-l/igzip_lib.h>
#include <isa-l.h>
#endif

#ifndef STAMP_CDEFLATE_SHIM_H
#define STAMP_CDEFLATE_SHIM_H
#include <libdeflate.h>
#endif

#ifndef STAMP_CARCHIVE_SHIM_H
#define STAMP_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>

/* libarchive's file-type macros are casts Swift cannot import, and S_IFREG clashes with Glibc. */
static const unsigned int stamp_ae_ifreg = AE_IFREG;
static const unsigned int stamp_ae_ifdir = AE_IFDIR;

#endif

#ifndef STAMP_CARCHIVE_SHIM_H
#define STAMP_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

/* libarchive's file-type macros are casts Swift cannot import, and S_IFREG clashes with Glibc. */
static const unsigned int stamp_ae_ifreg = AE_IFREG;
static const unsigned int stamp_ae_ifdir = AE_IFDIR;

/* deflateInit2 is a macro: a raw deflate stream (no zlib or gzip wrapper) at `level`. */
static inline int stamp_deflate_init_raw(z_streamp s, int level) {
    return deflateInit2(s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}
#endif

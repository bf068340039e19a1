/* idx_check.h - the check the IDX fuzz targets share: read a file with cg_idx_read and hold
 * the result to the format (common.h has the byte helpers). */
#ifndef CG_FUZZ_IDX_CHECK_H
#define CG_FUZZ_IDX_CHECK_H

#include "common.h"

/* Reads path. plain/n: the uncompressed file's bytes when the caller knows them (else NULL):
 * a read that succeeds must then give exactly the dtype, shape and values they hold. */
void fz_check_idx(const char *path, const uint8_t *plain, size_t n);

#endif

/* safetensors.h - what the safetensors writer and reader share: the file format's limits
 * and its dtype names. Not installed. Layout of a file: an 8-byte little-endian length N,
 * N bytes of UTF-8 JSON (may end in spaces), then the tensors' bytes (the "buffer"). */
#ifndef CG_IO_SAFETENSORS_H
#define CG_IO_SAFETENSORS_H

#include "../core/internal.h"

/* The data is little-endian on disk and copied as is, so the host must be little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cgrad's safetensors code assumes a little-endian host"
#endif

#define CG_ST_MAX_HEADER 100000000ULL /* the reference implementation's limit (100 MB)   */
#define CG_ST_METADATA_KEY "__metadata__"

/* "F32", "F64", "I32", "I64", "BOOL". */
const char *cg__st_dtype_name(cg_dtype d);
/* The cgrad dtype for a safetensors dtype name; 0 if cgrad has none (then *known says
 * whether the format defines the name, for a precise message). */
int cg__st_dtype_from_name(const char *name, cg_dtype *d, int *known);

#endif

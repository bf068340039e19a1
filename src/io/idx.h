/* idx.h - the IDX file format (MNIST's) as idx.c reads it and dataset.c uses it: the
 * header and the raw big-endian element bytes, before any conversion. Not installed. */
#ifndef CG_IO_IDX_H
#define CG_IO_IDX_H

#include "../core/internal.h"

enum { /* element type byte of the magic number */
  CG_IDX_UBYTE = 0x08,
  CG_IDX_SBYTE = 0x09,
  CG_IDX_SHORT = 0x0B,
  CG_IDX_INT = 0x0C,
  CG_IDX_FLOAT = 0x0D,
  CG_IDX_DOUBLE = 0x0E
};

typedef struct {
  int type; /* CG_IDX_* */
  int ndim; /* 1..CG_MAX_DIMS */
  int64_t shape[CG_MAX_DIMS];
  int64_t count;       /* elements */
  size_t elem_size;    /* bytes per element in the file */
  unsigned char *data; /* count * elem_size bytes, big-endian as stored; malloc'd */
} cg__idx;

/* Reads and validates a whole IDX file, gzip-compressed or plain. Errors name `who` and the
 * file: CG_EIO when it cannot be opened or read, CG_EINVAL when its bytes are not IDX. */
cg_status cg__idx_load(const char *path, const char *who, cg__idx *out);
void cg__idx_free(cg__idx *x);

#endif

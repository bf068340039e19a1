/* idx.c - the IDX format of MNIST-style data sets: magic 0x00 0x00 <type> <ndim>, ndim
 * big-endian u32 dimensions, then big-endian elements. zlib's gz* functions read gzip and
 * plain files alike. Every header field is checked and the data must be exactly as long as
 * the dimensions say. cg_idx_read turns a file into a tensor; dataset.c uses the raw form. */
#include "idx.h"
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static cg_status bad_idx(const char *who, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static cg_status bad_idx(const char *who, const char *path, const char *fmt, ...)
{
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return cg_set_error(CG_EINVAL, "%s: '%s': %s", who, path, what);
}

/* Reads n bytes; *got says how many came (fewer at the end of the file). A read error or
 * corrupt gzip data is CG_EIO / CG_EINVAL. */
static cg_status read_some(gzFile gz, void *p, size_t n, size_t *got, const char *who,
                           const char *path)
{
  *got = 0;
  while (*got < n) {
    size_t chunk = n - *got > (1u << 30) ? (1u << 30) : n - *got;
    int r = gzread(gz, (unsigned char *)p + *got, (unsigned)chunk);
    if (r < 0) {
      int code;
      const char *msg = gzerror(gz, &code);
      if (code == Z_ERRNO)
        return cg_set_error(CG_EIO, "%s: cannot read '%s': %s", who, path, strerror(errno));
      return bad_idx(who, path, "corrupt gzip data: %s", msg);
    }
    if (r == 0) break;
    *got += (size_t)r;
  }
  return CG_OK;
}

static size_t element_size(int type)
{
  switch (type) {
  case CG_IDX_UBYTE: case CG_IDX_SBYTE: return 1;
  case CG_IDX_SHORT: return 2;
  case CG_IDX_INT: case CG_IDX_FLOAT: return 4;
  case CG_IDX_DOUBLE: return 8;
  default: return 0;
  }
}

static uint32_t be32(const unsigned char *b)
{
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Magic number and dimensions; the element count overflow-checked. */
static cg_status read_header(gzFile gz, const char *who, const char *path, cg__idx *x)
{
  unsigned char magic[4], dims[4 * CG_MAX_DIMS];
  size_t got;
  cg_status st = read_some(gz, magic, 4, &got, who, path);
  if (st != CG_OK) return st;
  if (got < 4)
    return bad_idx(who, path, "%zu bytes, too short for the 4-byte IDX magic number", got);
  if (magic[0] || magic[1])
    return bad_idx(who, path, "bad magic number %02x %02x %02x %02x (expected 00 00 <type> <ndim>)",
                   magic[0], magic[1], magic[2], magic[3]);
  x->type = magic[2];
  x->ndim = magic[3];
  x->elem_size = element_size(x->type);
  if (!x->elem_size) return bad_idx(who, path, "unknown IDX element type 0x%02x", x->type);
  if (x->ndim < 1 || x->ndim > CG_MAX_DIMS)
    return bad_idx(who, path, "%d dimensions; cgrad reads 1 to %d", x->ndim, CG_MAX_DIMS);
  st = read_some(gz, dims, 4 * (size_t)x->ndim, &got, who, path);
  if (st != CG_OK) return st;
  if (got < 4 * (size_t)x->ndim)
    return bad_idx(who, path, "the file ends inside the %d dimensions of its header", x->ndim);
  x->count = 1;
  for (int i = 0; i < x->ndim; i++) {
    x->shape[i] = be32(dims + 4 * i);
    if (x->shape[i] && x->count > INT64_MAX / 16 / x->shape[i])
      return bad_idx(who, path, "dimensions too large to hold in memory");
    x->count *= x->shape[i];
  }
  return CG_OK;
}

/* Exactly count * elem_size bytes must follow the header. The buffer grows as the bytes
 * arrive (doubling from 1 MB), so a short file announcing huge dimensions is reported as
 * truncated instead of first asking for all the memory its header claims. */
static cg_status read_data(gzFile gz, const char *who, const char *path, cg__idx *x)
{
  size_t nbytes = (size_t)x->count * x->elem_size, have = 0, cap = 0, got = 0;
  cg_status st = CG_OK;
  do {
    if (have == cap) {
      size_t grown = cap ? (cap > nbytes / 2 ? nbytes : 2 * cap) : nbytes < (1u << 20) ? nbytes : (1u << 20);
      unsigned char *p = realloc(x->data, grown ? grown : 1);
      if (!p)
        return cg_set_error(CG_ENOMEM, "%s: '%s': out of memory for %zu bytes of data", who, path,
                            grown);
      x->data = p;
      cap = grown;
    }
    st = read_some(gz, x->data + have, cap - have, &got, who, path);
    have += got;
  } while (st == CG_OK && have == cap && have < nbytes);
  if (st != CG_OK) return st;
  if (have < nbytes)
    return bad_idx(who, path, "the data is %zu bytes but the dimensions need %zu: the file is "
                              "truncated", have, nbytes);
  unsigned char extra;
  st = read_some(gz, &extra, 1, &got, who, path);
  if (st == CG_OK && got)
    return bad_idx(who, path, "there are bytes after the %zu the dimensions announce", nbytes);
  return st;
}

cg_status cg__idx_load(const char *path, const char *who, cg__idx *out)
{
  memset(out, 0, sizeof *out);
  errno = 0;
  gzFile gz = gzopen(path, "rb");
  if (!gz)
    return cg_set_error(CG_EIO, "%s: cannot open '%s': %s", who, path,
                        errno ? strerror(errno) : "out of memory");
  cg_status st = read_header(gz, who, path, out);
  if (st == CG_OK) st = read_data(gz, who, path, out);
  gzclose(gz);
  if (st != CG_OK) cg__idx_free(out);
  return st;
}

void cg__idx_free(cg__idx *x)
{
  if (!x) return;
  free(x->data);
  x->data = NULL;
}

/* ======================================================================================
 * cg_idx_read: bytes, shorts and ints become i32, floats f32, doubles f64
 * ==================================================================================== */

static void convert(const cg__idx *x, void *out)
{
  const unsigned char *b = x->data;
  for (int64_t i = 0; i < x->count; i++, b += x->elem_size) {
    switch (x->type) {
    case CG_IDX_UBYTE: ((int32_t *)out)[i] = b[0]; break;
    case CG_IDX_SBYTE: ((int32_t *)out)[i] = (int8_t)b[0]; break;
    case CG_IDX_SHORT: ((int32_t *)out)[i] = (int16_t)(uint16_t)(b[0] << 8 | b[1]); break;
    case CG_IDX_INT: ((int32_t *)out)[i] = (int32_t)be32(b); break;
    case CG_IDX_FLOAT: {
      uint32_t u = be32(b);
      memcpy((float *)out + i, &u, 4);
      break;
    }
    case CG_IDX_DOUBLE: {
      uint64_t u = (uint64_t)be32(b) << 32 | be32(b + 4);
      memcpy((double *)out + i, &u, 8);
      break;
    }
    }
  }
}

cg_tensor *cg_idx_read(const char *path)
{
  if (!path) {
    cg_set_error(CG_EINVAL, "cg_idx_read: path is NULL");
    return NULL;
  }
  cg__idx x;
  if (cg__idx_load(path, "cg_idx_read", &x) != CG_OK) return NULL;
  cg_dtype d = x.type == CG_IDX_FLOAT ? CG_F32 : x.type == CG_IDX_DOUBLE ? CG_F64 : CG_I32;
  cg_tensor *t = cg__tensor_new(d, x.ndim, x.shape);
  if (t) convert(&x, t->data);
  cg__idx_free(&x);
  cg__scope_adopt(t);
  return t;
}

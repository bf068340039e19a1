/* idx_check.c - holding cg_idx_read to the IDX format: errors are CG_EINVAL or CG_EIO with
 * a message (never CG_ENOMEM: a short file cannot need much memory), and a file that reads
 * gives the dtype, shape and element values its bytes spell out. */
#include "idx_check.h"
#include <string.h>

static uint32_t be32(const uint8_t *b)
{
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Element i of the file's data (big-endian, of IDX type `type`) as cg_idx_read converts it. */
static double element(int type, const uint8_t *p)
{
  switch (type) {
  case 0x08: return p[0];
  case 0x09: return (int8_t)p[0];
  case 0x0B: return (int16_t)(uint16_t)(p[0] << 8 | p[1]);
  case 0x0C: return (int32_t)be32(p);
  case 0x0D: {
    uint32_t u = be32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  default: {
    uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
    double d;
    memcpy(&d, &u, 8);
    return d;
  }
  }
}

static void check_values(const cg_tensor *t, const uint8_t *plain, size_t n)
{
  int type = plain[2], ndim = plain[3];
  size_t esize = type == 0x08 || type == 0x09 ? 1 : type == 0x0B ? 2 : type == 0x0E ? 8 : 4;
  cg_dtype want = type == 0x0D ? CG_F32 : type == 0x0E ? CG_F64 : CG_I32;
  fz_check(cg_tensor_dtype(t) == want, "IDX type 0x%02x read as %s", type,
           cg_dtype_name(cg_tensor_dtype(t)));
  fz_check(cg_tensor_ndim(t) == ndim, "ndim %d read as %d", ndim, cg_tensor_ndim(t));
  size_t count = 1;
  for (int i = 0; i < ndim; i++) {
    fz_check(cg_tensor_shape(t)[i] == be32(plain + 4 + 4 * i), "dim %d differs", i);
    count *= (size_t)cg_tensor_shape(t)[i];
  }
  size_t header = 4 + 4 * (size_t)ndim;
  fz_check(header + count * esize == n,
           "a %zu-byte file with %zu elements of %zu bytes was "
           "accepted",
           n, count, esize);
  for (size_t i = 0; i < count; i++) {
    double want_v = element(type, plain + header + i * esize), got = cg_tensor_get(t, (int64_t)i);
    fz_check(memcmp(&want_v, &got, sizeof got) == 0 || (want_v != want_v && got != got),
             "element %zu is %g, the file says %g", i, got, want_v);
  }
}

void fz_check_idx(const char *path, const uint8_t *plain, size_t n)
{
  cg_scope scope = cg_scope_begin();
  cg_tensor *t = cg_idx_read(path);
  if (!t) {
    cg_status st = fz_check_error(cg_last_status(), "cg_idx_read");
    fz_check(st == CG_EINVAL || st == CG_EIO, "a short file was refused with %s",
             cg_status_name(st));
  } else if (plain) {
    check_values(t, plain, n);
  }
  fz_check(cg_scope_end(scope) == CG_OK, "scope end failed");
  cg_clear_error();
}

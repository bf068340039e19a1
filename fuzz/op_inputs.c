/* op_inputs.c - the inputs and attributes of fuzz_ops' calls (op_inputs.h): shapes of rank 0
 * to 8 with small dims (now and then up to 39, and 0), values from fixed patterns, small
 * steps, any double (NaN, Inf) or integers at overflow edges. */
#include "op_inputs.h"
#include <stdlib.h>
#include <string.h>

/* Every attribute name a built-in op reads; the fuzzer picks among them by index. */
static const char *const attr_names[] = {
    "axis",      "axes",        "keepdims",     "shape", "perm",        "begin",      "size",
    "sizes",     "num",         "paddings",     "value", "multiples",   "dtype",      "depth",
    "on",        "off",         "num_segments", "alpha", "strides",     "padding",    "ksize",
    "dilations", "input_shape", "filter_shape", "n_out", "transpose_a", "transpose_b"};
#define N_ATTR_NAMES ((int)(sizeof attr_names / sizeof *attr_names))

/* --- inputs ------------------------------------------------------------------------------- */

/* Values by mode: 0 a fixed pattern, 1 small steps of 1/8, 2 any double (NaN, Inf, huge),
 * 3 attribute-like integers (overflow edges included). Bools are 0 or 1. */
static void fill(cg_dtype d, void *data, int64_t n, fz_bytes *b)
{
  uint8_t mode = fz_u8(b) % 4;
  for (int64_t i = 0; i < n; i++) {
    if (d == CG_BOOL) {
      ((uint8_t *)data)[i] = fz_u8(b) & 1;
      continue;
    }
    if (mode == 3 && (d == CG_I32 || d == CG_I64)) {
      int64_t v = fz_int(b);
      if (d == CG_I32)
        ((int32_t *)data)[i] = (int32_t)(uint32_t)(uint64_t)v; /* wraps */
      else
        ((int64_t *)data)[i] = v;
      continue;
    }
    double v = mode == 0   ? (double)((i * 7) % 11) - 5
               : mode == 1 ? (int8_t)fz_u8(b) / 8.0
               : mode == 2 ? fz_double(b)
                           : (double)fz_int(b);
    switch (d) {
    case CG_F32: ((float *)data)[i] = (float)v; break; /* NaN, Inf and overflow are wanted */
    case CG_F64: ((double *)data)[i] = v; break;
    case CG_I32:
      ((int32_t *)data)[i] = v >= -2147483648.0 && v < 2147483648.0 ? (int32_t)v : INT32_MIN;
      break;
    default: ((int64_t *)data)[i] = v >= -0x1p63 && v < 0x1p63 ? (int64_t)v : INT64_MIN; break;
    }
  }
}

/* The broadcast fz_envelope of the inputs made so far: env[k] is the largest dim k places from
 * the end. New dims keep its product within FZ_MAX_ELEMS, so that broadcasting small inputs
 * cannot make a huge output (slow, not wrong). */

static int64_t envelope_size(const fz_envelope *e)
{
  int64_t n = 1;
  for (int k = 0; k < CG_MAX_DIMS; k++) n *= e->dim[k] ? e->dim[k] : 1;
  return n;
}

/* One input: a dtype and shape of its own, or those of the previous input (broadcasting and
 * binary ops need them to match), filled with values from the bytes. */
cg_tensor *fz_make_input(fz_bytes *b, const cg_tensor *prev, fz_envelope *env)
{
  uint8_t how = fz_u8(b);
  cg_dtype d = prev && (how & 1) ? cg_tensor_dtype(prev) : (cg_dtype)(fz_u8(b) % CG_NUM_DTYPES);
  int ndim;
  int64_t shape[CG_MAX_DIMS];
  if (prev && (how & 2)) {
    ndim = cg_tensor_ndim(prev);
    memcpy(shape, cg_tensor_shape(prev), sizeof shape);
  } else {
    fz_envelope local = {{0}};
    if (!env) env = &local;
    ndim = fz_u8(b) % 6;
    if (ndim == 5) ndim += fz_u8(b) % 4; /* ranks 5..8 now and then */
    for (int i = 0; i < ndim; i++) {
      uint8_t s = fz_u8(b);
      shape[i] = s < 240 ? s % 5 : s % 40;
      int64_t *e = &env->dim[ndim - 1 - i], old = *e;
      if (shape[i] > *e) *e = shape[i];
      if (envelope_size(env) > FZ_MAX_ELEMS) {
        *e = old;
        shape[i] = 1;
      }
    }
  }
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  void *data = calloc((size_t)(n ? n : 1), 8);
  if (!data) abort();
  fill(d, data, n, b);
  cg_tensor *t = cg_tensor_from(d, ndim, shape, data);
  free(data);
  fz_check(t != NULL, "cg_tensor_from failed for a %d-d %s input", ndim, cg_dtype_name(d));
  return t;
}

void fz_make_attrs(fz_bytes *b, cg_attrs *a)
{
  int n = fz_u8(b) % 5;
  for (int i = 0; i < n; i++) {
    const char *name = attr_names[fz_u8(b) % N_ATTR_NAMES];
    uint8_t kind = fz_u8(b) % 3;
    if (kind == 0)
      cg_attrs_set_int(a, name, fz_int(b));
    else if (kind == 1)
      cg_attrs_set_float(a, name, fz_double(b));
    else {
      int64_t v[CG_ATTR_INTS_MAX];
      int k = fz_u8(b) % (CG_ATTR_INTS_MAX + 1);
      for (int j = 0; j < k; j++) v[j] = fz_int(b);
      cg_attrs_set_ints(a, name, v, k);
    }
  }
  cg_clear_error(); /* setting the same name twice may be refused; that is not the op's error */
}

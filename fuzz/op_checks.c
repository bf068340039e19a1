/* op_checks.c - the promises of op_checks.h, checked with the public API only. */
#include "op_checks.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* "f32[2,3]" for messages (four calls may share one printf). */
const char *fz_desc(const cg_tensor *t)
{
  static char buf[4][200];
  static int k;
  char shape[160];
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s%s", cg_dtype_name(cg_tensor_dtype(t)),
           cg_shape_str(t, shape, sizeof shape));
  return buf[k];
}

int fz_same_shape(const cg_tensor *a, const cg_tensor *b)
{
  return cg_tensor_ndim(a) == cg_tensor_ndim(b) &&
         !memcmp(cg_tensor_shape(a), cg_tensor_shape(b),
                 (size_t)cg_tensor_ndim(a) * sizeof(int64_t));
}

/* A gradient is NULL or has its source's dtype and shape; integer sources get NULL. */
void fz_check_grads(const char *op, cg_tensor *const *src, cg_tensor *const *dx, int n,
                    int zeros_for_unconnected)
{
  for (int i = 0; i < n; i++) {
    int is_float = cg_dtype_is_float(cg_tensor_dtype(src[i]));
    if (!dx[i]) {
      fz_check(!is_float || !zeros_for_unconnected,
               "%s: float input %d got no gradient under "
               "CG_UNCONNECTED_ZERO",
               op, i);
      continue;
    }
    fz_check(is_float, "%s: integer input %d got a gradient", op, i);
    fz_check(cg_tensor_dtype(dx[i]) == cg_tensor_dtype(src[i]) && fz_same_shape(dx[i], src[i]),
             "%s: gradient %d is %s, its input %s", op, i, fz_desc(dx[i]), fz_desc(src[i]));
  }
}

void fz_check_call(const char *op, cg_status st, cg_tensor *const *out, int n_out)
{
  if (fz_check_error(st, op) != CG_OK) return;
  fz_check(n_out >= 1 && n_out <= CG_MAX_OUTPUTS, "%s: %d outputs", op, n_out);
  for (int i = 0; i < n_out; i++) fz_check(out[i] != NULL, "%s: output %d is NULL", op, i);
}

/* The inputs' bytes: ops and gradients never write into their inputs (tensors are
 * immutable once made, and views share buffers). */
uint64_t fz_inputs_hash(cg_tensor *const *in, int n)
{
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < n; i++) {
    const uint8_t *p = cg_tensor_data(in[i]);
    size_t bytes = (size_t)cg_tensor_size(in[i]) * cg_dtype_size(cg_tensor_dtype(in[i]));
    for (size_t k = 0; k < bytes; k++) h = (h ^ p[k]) * 1099511628211ull;
  }
  return h;
}

/* Bit-equal, with every NaN equal to every other. */
int fz_same_values(const cg_tensor *a, const cg_tensor *b)
{
  if (cg_tensor_dtype(a) != cg_tensor_dtype(b) || !fz_same_shape(a, b)) return 0;
  for (int64_t i = 0; i < cg_tensor_size(a); i++) {
    double x = cg_tensor_get(a, i), y = cg_tensor_get(b, i);
    if (!(x == y || (isnan(x) && isnan(y)))) return 0;
  }
  return 1;
}

/* The Jacobian of target by the first float input (both small) has shape target ++ input,
 * and its rows add up to the gradient the tape gave for a seed of ones (or are all zero
 * where it gave none). Compared only where every value is finite and moderate. */
void fz_check_jacobian(const char *op, cg_tape *tape, cg_tensor *target, cg_tensor *const *in,
                       int n_in, cg_tensor *const *dx)
{
  int i = 0;
  while (i < n_in && !cg_dtype_is_float(cg_tensor_dtype(in[i]))) i++;
  if (i == n_in || !cg_dtype_is_float(cg_tensor_dtype(target)) || cg_tensor_size(target) > 64 ||
      cg_tensor_size(in[i]) > 256)
    return;
  cg_tensor *jac = cg_tape_jacobian(tape, target, in[i]);
  if (!jac) {
    fz_check_error(cg_last_status(), "cg_tape_jacobian");
    return;
  }
  int nt = cg_tensor_ndim(target), ns = cg_tensor_ndim(in[i]);
  fz_check(
      cg_tensor_ndim(jac) == nt + ns &&
          !memcmp(cg_tensor_shape(jac), cg_tensor_shape(target), (size_t)nt * sizeof(int64_t)) &&
          !memcmp(cg_tensor_shape(jac) + nt, cg_tensor_shape(in[i]), (size_t)ns * sizeof(int64_t)),
      "%s: Jacobian %s of %s by %s", op, fz_desc(jac), fz_desc(target), fz_desc(in[i]));
  int64_t rows = cg_tensor_size(target), cols = cg_tensor_size(in[i]);
  for (int64_t c = 0; c < cols; c++) {
    double sum = 0, mag = 0;
    for (int64_t r = 0; r < rows; r++) {
      double v = cg_tensor_get(jac, r * cols + c);
      sum += v;
      mag += fabs(v);
    }
    double want = dx[i] ? cg_tensor_get(dx[i], c) : 0;
    if (!isfinite(mag) || !isfinite(want) || mag > 1e6 || fabs(want) > 1e6) continue;
    double tol = 1e-5 + 1e-3 * (mag + fabs(want));
    fz_check(fabs(sum - want) <= tol, "%s: Jacobian column %lld sums to %g, the gradient says %g",
             op, (long long)c, sum, want);
  }
}

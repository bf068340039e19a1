/* clip.c - gradient clipping: by global norm (cg_clip_by_global_norm, tf.clip_by_global_norm)
 * and, for the optimizer, element-wise by value followed by the global norm. The norm is
 * summed in double over every element of every gradient; scaling uses public ops. */
#include "optimizer.h"
#include <math.h>

static double sum_of_squares(const cg_tensor *t)
{
  double s = 0;
  if (t->dtype == CG_F32) {
    const float *x = t->data;
    for (int64_t i = 0; i < t->size; i++) s += (double)x[i] * x[i];
  } else {
    const double *x = t->data;
    for (int64_t i = 0; i < t->size; i++) s += x[i] * x[i];
  }
  return s;
}

cg_status cg_clip_by_global_norm(cg_tensor *const *grads, int n, double clip_norm, cg_tensor **out,
                                 double *global_norm)
{
  const char *fn = "cg_clip_by_global_norm";
  if (n < 0) return cg_set_error(CG_EINVAL, "%s: n is %d, must be >= 0", fn, n);
  if (n > 0 && (!grads || !out))
    return cg_set_error(CG_EINVAL, "%s: %s is NULL", fn, grads ? "out" : "grads");
  if (!(clip_norm > 0) || !isfinite(clip_norm))
    return cg_set_error(CG_EINVAL, "%s: clip_norm must be > 0 and finite, got %g", fn, clip_norm);
  for (int i = 0; i < n; i++) {
    if (grads[i] && !cg_dtype_is_float(grads[i]->dtype))
      return cg_set_error(CG_EDTYPE, "%s: gradient %d is %s, clipping needs f32 or f64", fn, i,
                          cg_dtype_name(grads[i]->dtype));
    if (grads[i] && cg__is_symbolic(grads[i])) /* the norm is computed here, from values */
      return cg_set_error(CG_EINVAL, "%s: gradient %d is a symbolic graph tensor", fn, i);
  }

  double sum = 0;
  for (int i = 0; i < n; i++)
    if (grads[i]) sum += sum_of_squares(grads[i]);
  double norm = sqrt(sum);
  /* As TensorFlow: a gradient that is inf or NaN makes every output NaN, so the problem
   * shows instead of being scaled to zero. */
  double scale = !isfinite(norm) ? NAN : norm > clip_norm ? clip_norm / norm : 1.0;
  if (global_norm) *global_norm = norm;

  for (int i = 0; i < n; i++) { /* grads[i] is read before out[i] is written: out may be grads */
    cg_tensor *g = grads[i];
    out[i] = g ? cg_mul(g, cg_scalar_like(g, scale)) : NULL;
    if (g && !out[i]) return cg_last_status();
  }
  return CG_OK;
}

cg_status cg__clip_gradients(double clip_value, double clip_norm, cg_tensor *const *grads, int n,
                             cg_tensor **out)
{
  for (int i = 0; i < n; i++) {
    out[i] = grads[i] && clip_value > 0 ? cg_clip_by_value(grads[i], -clip_value, clip_value) : grads[i];
    if (grads[i] && !out[i]) return cg_last_status();
  }
  if (clip_norm > 0) return cg_clip_by_global_norm(out, n, clip_norm, out, NULL);
  return CG_OK;
}

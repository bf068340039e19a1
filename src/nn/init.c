/* init.c - initializers (cg_init_tensor): zeros, constant, uniform, normal, truncated normal,
 * Glorot and He. Every random kind draws from the core's counter-based streams with an
 * explicit seed, so a seed gives the same numbers on every machine. Fans follow Keras. */
#include "../core/internal.h"
#include "seed.h"
#include <math.h>

/* Keras divides the stddev of its truncated Glorot/He normals by this: the stddev of a
 * standard normal truncated to [-2, 2], so the truncated values have the wanted variance. */
#define TRUNCATED_STDDEV_OF_UNIT 0.87962566103423978

/* Redraw rounds before the (never observed) last stragglers are clamped to +-2 stddev: each
 * round leaves 4.6% of the previous round's values out of range. */
#define MAX_REDRAW_ROUNDS 64

typedef struct {
  double in, out;
} fans;

/* Keras' fans: scalar 1/1, [n] n/n, [in, out], and [k..., in, out] times the receptive field. */
static fans compute_fans(int ndim, const int64_t *shape)
{
  if (ndim == 0) return (fans){1, 1};
  if (ndim == 1) return (fans){(double)shape[0], (double)shape[0]};
  double receptive = 1;
  for (int i = 0; i < ndim - 2; i++) receptive *= (double)shape[i];
  return (fans){(double)shape[ndim - 2] * receptive, (double)shape[ndim - 1] * receptive};
}

/* Replaces every |z[i]| > 2 with a fresh standard normal: round r draws one value per element
 * still out of range (in index order) from the stream derived from (seed, r). */
static cg_status redraw_beyond_two(double *z, int64_t n, uint64_t seed)
{
  for (uint64_t round = 1;; round++) {
    int64_t outside = 0;
    for (int64_t i = 0; i < n; i++) outside += fabs(z[i]) > 2;
    if (!outside) return CG_OK;
    if (round > MAX_REDRAW_ROUNDS) {
      for (int64_t i = 0; i < n; i++) z[i] = fmax(-2.0, fmin(2.0, z[i]));
      return CG_OK;
    }
    cg_scope scope = cg_scope_begin();
    cg_tensor *fresh = cg_random_normal(CG_F64, 1, &outside, 0, 1, cg__derive_seed(seed, round));
    if (!fresh) {
      cg_scope_end(scope);
      return cg_last_status();
    }
    const double *f = fresh->data;
    for (int64_t i = 0, j = 0; i < n; i++)
      if (fabs(z[i]) > 2) z[i] = f[j++];
    cg_scope_end(scope);
  }
}

/* mean + stddev * z with z standard normal truncated to [-2, 2]; round 0 is the plain
 * normal stream of seed, so in-range values equal cg_random_normal's. */
static cg_tensor *truncated_normal(cg_dtype d, int ndim, const int64_t *shape, double mean,
                                   double stddev, uint64_t seed)
{
  cg_scope scope = cg_scope_begin();
  cg_tensor *z = cg_random_normal(CG_F64, ndim, shape, 0, 1, seed);
  cg_tensor *out = NULL;
  /* z is ours alone until the scope ends, so redrawing in place breaks no one's view */
  if (z && redraw_beyond_two(z->data, z->size, seed) == CG_OK) {
    out = cg__tensor_new(d, ndim, shape);
    for (int64_t i = 0; out && i < out->size; i++)
      cg__store(d, out->data, i, mean + stddev * ((const double *)z->data)[i]);
  }
  cg_scope_end(scope);
  if (out) cg__scope_adopt(out);
  return out;
}

static cg_status check_params(cg_initializer init)
{
  switch (init.kind) {
  case CG_INIT_CONSTANT:
    if (!isfinite(init.a))
      return cg_set_error(CG_EINVAL, "cg_init_tensor: constant value %g is not finite", init.a);
    return CG_OK;
  case CG_INIT_UNIFORM:
    if (!(init.a <= init.b) || !isfinite(init.a) || !isfinite(init.b))
      return cg_set_error(CG_EINVAL, "cg_init_tensor: uniform needs finite a <= b, got [%g, %g)",
                          init.a, init.b);
    return CG_OK;
  case CG_INIT_NORMAL:
  case CG_INIT_TRUNCATED_NORMAL:
    if (!isfinite(init.a) || !(init.b >= 0) || !isfinite(init.b))
      return cg_set_error(CG_EINVAL,
                          "cg_init_tensor: normal needs a finite mean and stddev >= 0, got %g, %g",
                          init.a, init.b);
    return CG_OK;
  case CG_INIT_ZEROS:
  case CG_INIT_GLOROT_UNIFORM:
  case CG_INIT_GLOROT_NORMAL:
  case CG_INIT_HE_UNIFORM:
  case CG_INIT_HE_NORMAL:
    return CG_OK;
  }
  return cg_set_error(CG_EINVAL, "cg_init_tensor: unknown initializer kind %d", (int)init.kind);
}

/* The variance-scaling kinds: uniform limit sqrt(3 scale / fan), or a truncated normal whose
 * stddev is sqrt(scale / fan) corrected for the truncation. */
static cg_tensor *variance_scaling(cg_initializer init, cg_dtype d, int ndim, const int64_t *shape,
                                   uint64_t seed)
{
  fans f = compute_fans(ndim, shape);
  bool glorot = init.kind == CG_INIT_GLOROT_UNIFORM || init.kind == CG_INIT_GLOROT_NORMAL;
  double scale = glorot ? 1.0 : 2.0, fan = glorot ? (f.in + f.out) / 2 : f.in;
  if (init.kind == CG_INIT_GLOROT_UNIFORM || init.kind == CG_INIT_HE_UNIFORM) {
    double limit = sqrt(3.0 * scale / fan);
    return cg_random_uniform(d, ndim, shape, -limit, limit, seed);
  }
  return truncated_normal(d, ndim, shape, 0, sqrt(scale / fan) / TRUNCATED_STDDEV_OF_UNIT, seed);
}

cg_tensor *cg_init_tensor(cg_initializer init, cg_dtype d, int ndim, const int64_t *shape,
                          uint64_t seed)
{
  if (!cg_dtype_is_float(d)) {
    cg_set_error(CG_EDTYPE, "cg_init_tensor: dtype %s is not a float type", cg_dtype_name(d));
    return NULL;
  }
  int64_t size;
  if (cg__shape_size("cg_init_tensor", ndim, shape, &size) != CG_OK || check_params(init) != CG_OK)
    return NULL;
  /* an empty tensor has no fans to scale by, and no values to draw */
  if (size == 0 || init.kind == CG_INIT_ZEROS) return cg_zeros(d, ndim, shape);
  switch (init.kind) {
  case CG_INIT_CONSTANT: return cg_fill(d, ndim, shape, init.a);
  case CG_INIT_UNIFORM: return cg_random_uniform(d, ndim, shape, init.a, init.b, seed);
  case CG_INIT_NORMAL: return cg_random_normal(d, ndim, shape, init.a, init.b, seed);
  case CG_INIT_TRUNCATED_NORMAL: return truncated_normal(d, ndim, shape, init.a, init.b, seed);
  default: return variance_scaling(init, d, ndim, shape, seed);
  }
}

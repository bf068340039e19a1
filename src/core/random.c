/* random.c - seeded random tensors that are the same on every machine: a counter-based
 * SplitMix64 stream (element i of seed s is a pure function of (s, i)), uniform from the top
 * 53 bits, normal by Box-Muller on pairs. */
#include "internal.h"
#include <math.h>

static uint64_t splitmix64(uint64_t x)
{
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Uniform in [0, 1) for element i of the stream of seed. */
static double uniform01(uint64_t seed, uint64_t i)
{
  return (double)(splitmix64(splitmix64(seed) ^ (i * 0xD1B54A32D192ED03ull)) >> 11) * 0x1.0p-53;
}

static cg_tensor *random_tensor(const char *op, cg_dtype d, int ndim, const int64_t *shape)
{
  if ((unsigned)d >= CG_NUM_DTYPES || d == CG_BOOL) {
    cg_set_error(CG_EDTYPE, "%s: dtype %s is not numeric", op, cg_dtype_name(d));
    return NULL;
  }
  int64_t size;
  if (cg__shape_size(op, ndim, shape, &size) != CG_OK) return NULL;
  return cg__tensor_new(d, ndim, shape);
}

cg_tensor *cg_random_uniform(cg_dtype d, int ndim, const int64_t *shape, double lo, double hi,
                             uint64_t seed)
{
  if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi)) {
    cg_set_error(CG_EINVAL, "RandomUniform: need finite lo <= hi, got [%g, %g)", lo, hi);
    return NULL;
  }
  cg_tensor *t = random_tensor("RandomUniform", d, ndim, shape);
  if (!t) return NULL;
  bool integer = !cg_dtype_is_float(d);
  for (int64_t i = 0; i < t->size; i++) {
    double v = lo + (hi - lo) * uniform01(seed, (uint64_t)i);
    cg__store(d, t->data, i, integer ? floor(v) : v);
  }
  cg__scope_adopt(t);
  return t;
}

cg_tensor *cg_random_normal(cg_dtype d, int ndim, const int64_t *shape, double mean,
                            double stddev, uint64_t seed)
{
  if (!(stddev >= 0) || !isfinite(mean) || !isfinite(stddev)) {
    cg_set_error(CG_EINVAL, "RandomNormal: need finite mean and stddev >= 0, got %g, %g", mean, stddev);
    return NULL;
  }
  cg_tensor *t = random_tensor("RandomNormal", d, ndim, shape);
  if (!t) return NULL;
  for (int64_t i = 0; i < t->size; i += 2) {
    double u1 = 1.0 - uniform01(seed, (uint64_t)i); /* (0, 1]: log is finite */
    double u2 = uniform01(seed, (uint64_t)i + 1);
    double r = sqrt(-2.0 * log(u1)), a = 2.0 * M_PI * u2;
    cg__store(d, t->data, i, mean + stddev * r * cos(a));
    if (i + 1 < t->size) cg__store(d, t->data, i + 1, mean + stddev * r * sin(a));
  }
  cg__scope_adopt(t);
  return t;
}

/* test_init.c - initializers: each kind's statistics and bounds on large tensors, Keras' fans
 * for dense, conv, vector and scalar shapes, exact determinism (same seed, same bytes; another
 * seed, other bytes; f32 = f64 rounded), and bad arguments. */
#include "util.h"
#include <math.h>
#include <string.h>

typedef struct {
  double mean, std, min, max;
} stats;

static stats stats_of(const cg_tensor *t)
{
  int64_t n = cg_tensor_size(t);
  stats s = {0, 0, INFINITY, -INFINITY};
  for (int64_t i = 0; i < n; i++) {
    double v = cg_tensor_get(t, i);
    s.mean += v;
    s.min = fmin(s.min, v);
    s.max = fmax(s.max, v);
  }
  s.mean /= (double)n;
  for (int64_t i = 0; i < n; i++) s.std += pow(cg_tensor_get(t, i) - s.mean, 2);
  s.std = sqrt(s.std / (double)n);
  return s;
}

static const int64_t big[2] = {200, 300}; /* 60,000 values; fan_in 200, fan_out 300 */

static cg_tensor *init_big(cg_init_kind kind, double a, double b, uint64_t seed)
{
  cg_tensor *t = cg_init_tensor((cg_initializer){kind, a, b}, CG_F64, 2, big, seed);
  assert_non_null(t);
  return t;
}

/* mean within 5 standard errors, std within 2% */
static void assert_moments(stats s, double mean, double std)
{
  double se = std / sqrt(60000.0);
  if (fabs(s.mean - mean) > 5 * se || fabs(s.std - std) > 0.02 * std)
    fail_msg("mean %g, std %g; expected %g, %g", s.mean, s.std, mean, std);
}

static void zeros_and_constant(void **state)
{
  int64_t shape[2] = {2, 3};
  cg_tensor *z = cg_init_tensor((cg_initializer){CG_INIT_ZEROS, 7, 7}, CG_F32, 2, shape, 1);
  assert_tensor(z, CG_F32, 2, shape, ((double[]){0, 0, 0, 0, 0, 0}), 0);
  cg_tensor *c = cg_init_tensor((cg_initializer){CG_INIT_CONSTANT, 0.25, 0}, CG_F64, 2, shape, 1);
  assert_tensor(c, CG_F64, 2, shape, ((double[]){0.25, 0.25, 0.25, 0.25, 0.25, 0.25}), 0);
  cg_tensor *s = cg_init_tensor((cg_initializer){CG_INIT_CONSTANT, -3, 0}, CG_F32, 0, NULL, 1);
  assert_tensor(s, CG_F32, 0, NULL, ((double[]){-3}), 0);
}

static void uniform_and_normal_statistics(void **state)
{
  stats u = stats_of(init_big(CG_INIT_UNIFORM, -1, 3, 11));
  assert_true(u.min >= -1 && u.max < 3 && u.min < -0.99 && u.max > 2.99);
  assert_moments(u, 1, 4 / sqrt(12)); /* U[a, b): mean (a+b)/2, std (b-a)/sqrt(12) */

  stats n = stats_of(init_big(CG_INIT_NORMAL, 2, 0.5, 12));
  assert_moments(n, 2, 0.5);
  assert_true(n.max > 2 + 3 * 0.5); /* not truncated: 4 sigma is reached in 60,000 draws */
}

static void truncated_normal_stays_within_two_stddev(void **state)
{
  stats t = stats_of(init_big(CG_INIT_TRUNCATED_NORMAL, 1, 0.5, 13));
  assert_true(t.min >= 1 - 2 * 0.5 && t.max <= 1 + 2 * 0.5);
  assert_true(t.min < 1 - 1.99 * 0.5 && t.max > 1 + 1.99 * 0.5);
  /* a unit normal cut at +-2 has stddev 0.8796 */
  assert_moments(t, 1, 0.5 * 0.87962566103423978);
}

static void truncated_normal_keeps_in_range_draws_of_the_plain_stream(void **state)
{
  int64_t n[1] = {1000};
  cg_tensor *plain = cg_random_normal(CG_F64, 1, n, 0, 1, 77);
  cg_initializer unit = {CG_INIT_TRUNCATED_NORMAL, 0, 1};
  cg_tensor *cut = cg_init_tensor(unit, CG_F64, 1, n, 77);
  int redrawn = 0;
  for (int64_t i = 0; i < 1000; i++) {
    double p = cg_tensor_get(plain, i), c = cg_tensor_get(cut, i);
    if (fabs(p) <= 2) assert_true(c == p);
    else redrawn++, assert_true(fabs(c) <= 2);
  }
  assert_in_range(redrawn, 20, 80); /* 4.55% of 1000 lie beyond 2 stddev */
}

static void glorot_and_he_follow_keras(void **state)
{
  /* fan_in 200, fan_out 300 */
  double glorot_limit = sqrt(6.0 / 500), he_limit = sqrt(6.0 / 200);
  stats gu = stats_of(init_big(CG_INIT_GLOROT_UNIFORM, 0, 0, 21));
  assert_true(gu.min >= -glorot_limit && gu.max < glorot_limit && gu.max > 0.99 * glorot_limit);
  assert_moments(gu, 0, glorot_limit / sqrt(3));
  stats hu = stats_of(init_big(CG_INIT_HE_UNIFORM, 0, 0, 22));
  assert_true(hu.min >= -he_limit && hu.max < he_limit && hu.max > 0.99 * he_limit);
  assert_moments(hu, 0, he_limit / sqrt(3));

  /* truncated normals: the stddev before truncation is sqrt(scale/fan)/0.8796, so after it
   * the values have exactly the variance scale/fan */
  double gstd = sqrt(2.0 / 500), hstd = sqrt(2.0 / 200), fix = 0.87962566103423978;
  stats gn = stats_of(init_big(CG_INIT_GLOROT_NORMAL, 0, 0, 23));
  assert_true(fmax(-gn.min, gn.max) <= 2 * gstd / fix);
  assert_moments(gn, 0, gstd);
  stats hn = stats_of(init_big(CG_INIT_HE_NORMAL, 0, 0, 24));
  assert_true(fmax(-hn.min, hn.max) <= 2 * hstd / fix && hn.max > 1.99 * hstd / fix);
  assert_moments(hn, 0, hstd);
}

/* The uniform kinds are cg_random_uniform(-limit, limit) exactly: this pins the fans. */
static void assert_uniform_limit(cg_init_kind kind, int ndim, const int64_t *shape, double limit)
{
  cg_tensor *got = cg_init_tensor((cg_initializer){kind, 0, 0}, CG_F64, ndim, shape, 5);
  cg_tensor *want = cg_random_uniform(CG_F64, ndim, shape, -limit, limit, 5);
  assert_non_null(got);
  assert_memory_equal(cg_tensor_data(got), cg_tensor_data(want), 8 * (size_t)cg_tensor_size(want));
}

static void fans_of_conv_vector_and_scalar_shapes(void **state)
{
  int64_t conv[4] = {3, 3, 16, 32}; /* fan_in 3*3*16 = 144, fan_out 3*3*32 = 288 */
  assert_uniform_limit(CG_INIT_GLOROT_UNIFORM, 4, conv, sqrt(6.0 / (144 + 288)));
  assert_uniform_limit(CG_INIT_HE_UNIFORM, 4, conv, sqrt(6.0 / 144));
  int64_t dense[2] = {5, 7};
  assert_uniform_limit(CG_INIT_GLOROT_UNIFORM, 2, dense, sqrt(6.0 / 12));
  assert_uniform_limit(CG_INIT_HE_UNIFORM, 2, dense, sqrt(6.0 / 5));
  int64_t vec[1] = {10}; /* fan_in = fan_out = 10 */
  assert_uniform_limit(CG_INIT_GLOROT_UNIFORM, 1, vec, sqrt(6.0 / 20));
  assert_uniform_limit(CG_INIT_HE_UNIFORM, 0, NULL, sqrt(6.0)); /* scalar: fans 1 */
  int64_t seq[3] = {4, 6, 8}; /* receptive field 4: fan_in 24, fan_out 32 */
  assert_uniform_limit(CG_INIT_GLOROT_UNIFORM, 3, seq, sqrt(6.0 / 56));
}

static void same_seed_same_bytes_other_seed_other_bytes(void **state)
{
  int64_t shape[2] = {64, 33};
  size_t bytes = 64 * 33 * sizeof(float);
  for (int kind = CG_INIT_UNIFORM; kind <= CG_INIT_HE_NORMAL; kind++) {
    cg_initializer init = {(cg_init_kind)kind, 0, 1};
    cg_tensor *a = cg_init_tensor(init, CG_F32, 2, shape, 42);
    cg_tensor *b = cg_init_tensor(init, CG_F32, 2, shape, 42);
    cg_tensor *c = cg_init_tensor(init, CG_F32, 2, shape, 43);
    cg_tensor *d = cg_init_tensor(init, CG_F64, 2, shape, 42);
    assert_memory_equal(cg_tensor_data(a), cg_tensor_data(b), bytes);
    assert_memory_not_equal(cg_tensor_data(a), cg_tensor_data(c), bytes);
    /* f32 values are the f64 ones rounded: the same numbers whatever the dtype */
    for (int64_t i = 0; i < cg_tensor_size(a); i++)
      assert_true(((const float *)cg_tensor_data(a))[i] == (float)cg_tensor_get(d, i));
  }
}

static void empty_tensors_are_fine(void **state)
{
  int64_t shape[2] = {0, 4};
  cg_tensor *t = cg_init_tensor((cg_initializer){CG_INIT_GLOROT_NORMAL, 0, 0}, CG_F32, 2, shape, 1);
  assert_tensor(t, CG_F32, 2, shape, NULL, 0);
}

static void bad_arguments(void **state)
{
  int64_t shape[2] = {2, 2}, negative[2] = {2, -1};
  cg_initializer glorot = {CG_INIT_GLOROT_UNIFORM, 0, 0};
  assert_null(cg_init_tensor(glorot, CG_I32, 2, shape, 1));
  assert_error(CG_EDTYPE, "cg_init_tensor: dtype i32 is not a float type");
  assert_null(cg_init_tensor(glorot, CG_F32, 2, negative, 1));
  assert_error(CG_EINVAL, "cg_init_tensor: negative dimension in shape [2,-1]");
  assert_null(cg_init_tensor(glorot, CG_F32, 2, NULL, 1));
  assert_error(CG_EINVAL, "cg_init_tensor: shape is NULL");
  assert_null(cg_init_tensor(glorot, CG_F32, 9, shape, 1));
  assert_error(CG_EINVAL, "rank 9 is outside");
  assert_null(cg_init_tensor((cg_initializer){CG_INIT_UNIFORM, 2, 1}, CG_F32, 2, shape, 1));
  assert_error(CG_EINVAL, "uniform needs finite a <= b, got [2, 1)");
  assert_null(cg_init_tensor((cg_initializer){CG_INIT_NORMAL, 0, -1}, CG_F32, 2, shape, 1));
  assert_error(CG_EINVAL, "normal needs a finite mean and stddev >= 0, got 0, -1");
  cg_initializer nan_mean = {CG_INIT_TRUNCATED_NORMAL, NAN, 1};
  assert_null(cg_init_tensor(nan_mean, CG_F32, 2, shape, 1));
  assert_error(CG_EINVAL, "normal needs a finite mean");
  assert_null(cg_init_tensor((cg_initializer){CG_INIT_CONSTANT, INFINITY, 0}, CG_F32, 2, shape, 1));
  assert_error(CG_EINVAL, "constant value inf is not finite");
  assert_null(cg_init_tensor((cg_initializer){(cg_init_kind)99, 0, 0}, CG_F32, 2, shape, 1));
  assert_error(CG_EINVAL, "unknown initializer kind 99");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(zeros_and_constant),
      cgt_test(uniform_and_normal_statistics),
      cgt_test(truncated_normal_stays_within_two_stddev),
      cgt_test(truncated_normal_keeps_in_range_draws_of_the_plain_stream),
      cgt_test(glorot_and_he_follow_keras),
      cgt_test(fans_of_conv_vector_and_scalar_shapes),
      cgt_test(same_seed_same_bytes_other_seed_other_bytes),
      cgt_test(empty_tensors_are_fine),
      cgt_test(bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_fast_kernels.c - the fast kernels of the performance work against their plain
 * references, on sizes large enough to take the vectorised and multi-threaded paths: f32
 * tanh against libm in double, Relu's NaN and signed zero, element-wise and broadcast ops
 * split over threads, BiasAdd, AddN, BroadcastLike, column and row sums, max pooling and its
 * gradient (f32 fast path against the general f64 one), the direct and GEMM convolutions
 * against the reference loops, Adam on a large variable, and the byte-backed MNIST batcher
 * against the f32 one. */
#include "util.h"
#include "io/dataset.h"
#include "ops/conv_geometry.h"
#include "ops/vector_math.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *float_data(cg_tensor *t) { return cg_tensor_data(t); }

/* ======================================================================================
 * tanh and Relu
 * ==================================================================================== */

/* Distance in units in the last place between two finite floats of one sign or zero. */
static int64_t ulps(float a, float b)
{
  int32_t ia, ib;
  memcpy(&ia, &a, 4);
  memcpy(&ib, &b, 4);
  int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia : ia, ob = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
  return oa > ob ? oa - ob : ob - oa;
}

static void tanh_within_two_ulp(void **state)
{
  enum { N = 1 << 16 };
  float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
  int64_t worst = 0;
  for (uint32_t base = 0; base < 0x42000000u; base += 0x00400000u) { /* |x| < 32, both signs */
    for (int i = 0; i < N; i++) {
      uint32_t bits = (base + (uint32_t)i * 61u) ^ (i & 1 ? 0x80000000u : 0);
      memcpy(&x[i], &bits, 4);
    }
    cg__tanh_f32(x, y, N);
    for (int i = 0; i < N; i++) {
      int64_t d = ulps(y[i], (float)tanh((double)x[i]));
      if (d > worst) worst = d;
    }
  }
  assert_true(worst <= 2);
  const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, 9.5f, -9.5f, 1e-30f, 0.55f};
  float out[8];
  cg__tanh_f32(special, out, 8);
  assert_true(out[0] == 0 && !signbit(out[0]) && out[1] == 0 && signbit(out[1]));
  assert_true(out[2] == 1 && out[3] == -1 && out[4] == 1 && out[5] == -1);
  assert_true(out[6] == 1e-30f && out[7] == (float)tanh(0.55));
  float nan_in = NAN, nan_out;
  cg__tanh_f32(&nan_in, &nan_out, 1);
  assert_true(isnan(nan_out));
  free(x);
  free(y);
}

/* The op on a large tensor (vectorised, split over threads) against libm per element. */
static void tanh_and_relu_ops_on_large_tensors(void **state)
{
  int64_t shape[1] = {300001};
  cg_tensor *x = cg_random_uniform(CG_F32, 1, shape, -6, 6, 11);
  float *xs = float_data(x);
  xs[7] = NAN;
  xs[8] = -0.0f;
  const float *t = float_data(cg_tanh(x)), *r = float_data(cg_relu(x));
  for (int64_t i = 0; i < shape[0]; i++) {
    if (i == 7) {
      assert_true(isnan(t[i]) && isnan(r[i]));
      continue;
    }
    assert_true(ulps(t[i], (float)tanh((double)xs[i])) <= 2);
    assert_true(r[i] == (xs[i] > 0 ? xs[i] : 0.0f));
  }
  assert_false(signbit(r[8])); /* relu(-0) = +0, as the scalar kernel gives */
}

/* ======================================================================================
 * Element-wise, broadcast, BiasAdd and column sums on large tensors
 * ==================================================================================== */

static void binary_ops_split_over_threads(void **state)
{
  int64_t flat[1] = {200003}, rows[2] = {1001, 300}, row[1] = {300};
  cg_tensor *a = cg_random_uniform(CG_F32, 1, flat, -1, 1, 1);
  cg_tensor *b = cg_random_uniform(CG_F32, 1, flat, -1, 1, 2);
  const float *as = float_data(a), *bs = float_data(b);
  const float *sum = float_data(cg_add(a, b)), *scaled = float_data(cg_mul(a, cg_scalar(CG_F32, 3)));
  for (int64_t i = 0; i < flat[0]; i++) {
    assert_true(sum[i] == as[i] + bs[i]);
    assert_true(scaled[i] == as[i] * 3.0f);
  }
  cg_tensor *m = cg_random_uniform(CG_F32, 2, rows, -1, 1, 3), *v = cg_random_uniform(CG_F32, 1, row, -1, 1, 4);
  const float *ms = float_data(m), *vs = float_data(v);
  const float *diff = float_data(cg_sub(m, v)), *biased = float_data(cg_bias_add(m, v));
  for (int64_t i = 0; i < rows[0] * rows[1]; i++) {
    assert_true(diff[i] == ms[i] - vs[i % 300]);
    assert_true(biased[i] == ms[i] + vs[i % 300]);
  }
}

/* AddN of many parts (a gradient accumulated over a long tape), blocks over threads: each
 * element still adds its inputs in input order, so the bits are those of a plain loop. */
static void add_n_of_many_parts(void **state)
{
  enum { PARTS = 300 };
  int64_t shape[2] = {64, 65};
  cg_tensor *parts[PARTS];
  for (int i = 0; i < PARTS; i++) parts[i] = cg_random_uniform(CG_F32, 2, shape, -1, 1, 40 + (uint64_t)i);
  const float *sum = float_data(cg_add_n(parts, PARTS));
  for (int64_t e = 0; e < 64 * 65; e++) {
    float want = float_data(parts[0])[e];
    for (int i = 1; i < PARTS; i++) want += float_data(parts[i])[e];
    assert_true(sum[e] == want);
  }
}

/* BroadcastTo and BroadcastLike (what the backward of Sum and Mean materialises), one
 * kernel: fills and row copies, for 1-, 4- and 8-byte elements. */
static void broadcast_copies_and_fills(void **state)
{
  const int64_t cases[][2][4] = {{{1, 300}, {1001, 300}}, {{1001, 1}, {1001, 300}},
                                 {{3, 1, 5}, {2, 3, 4, 5}}, {{1}, {784, 256}}};
  const int ranks[][2] = {{2, 2}, {2, 2}, {3, 4}, {1, 2}};
  for (int c = 0; c < 4; c++) {
    cg_tensor *x = cg_random_uniform(CG_F32, ranks[c][0], cases[c][0], -1, 1, 30 + (uint64_t)c);
    cg_tensor *like = cg_zeros(CG_F32, ranks[c][1], cases[c][1]);
    cg_tensor *want = cg_add(x, like); /* the binary ops' broadcast, element by element */
    cg_tensor *fast[2] = {cg_broadcast_like(x, like), cg_broadcast_to(x, ranks[c][1], cases[c][1])};
    for (int k = 0; k < 2; k++) {
      assert_non_null(fast[k]);
      assert_memory_equal(cg_tensor_data(fast[k]), cg_tensor_data(want),
                          (size_t)cg_tensor_size(want) * 4);
    }
    for (int k = 0; k < 2; k++) { /* other widths: bool and f64 */
      cg_dtype d = k ? CG_F64 : CG_BOOL;
      cg_tensor *xd = cg_cast(cg_greater(x, cg_scalar(CG_F32, 0)), d);
      cg_tensor *got = cg_broadcast_to(xd, ranks[c][1], cases[c][1]);
      cg_tensor *expect = cg_cast(cg_greater(want, cg_scalar(CG_F32, 0)), d);
      assert_non_null(got);
      assert_memory_equal(cg_tensor_data(got), cg_tensor_data(expect),
                          (size_t)cg_tensor_size(expect) * cg_dtype_size(d));
    }
  }
}

static void column_sums_match_double_sums(void **state)
{
  int64_t shape[4] = {64, 28, 28, 32};
  cg_tensor *x = cg_random_uniform(CG_F32, 4, shape, -1, 1, 5);
  const float *xs = float_data(x);
  const int axes[3] = {0, 1, 2};
  const float *s = float_data(cg_sum(x, axes, 3, 0)), *mean = float_data(cg_mean(x, axes, 3, 0));
  int64_t rows = 64 * 28 * 28;
  for (int j = 0; j < 32; j++) {
    double want = 0;
    for (int64_t r = 0; r < rows; r++) want += xs[r * 32 + j];
    assert_true(fabs(s[j] - want) <= 1e-6 * fabs(want) + 1e-6);
    assert_true(fabs(mean[j] - want / (double)rows) <= 1e-6);
  }
  /* the same input gives the same bits again (blocks are added in a fixed order) */
  assert_memory_equal(s, float_data(cg_sum(x, axes, 3, 0)), 32 * sizeof(float));
}

static void row_sums_match_double_sums(void **state)
{
  int64_t flat[1] = {300001}, rows[2] = {7, 20000};
  cg_tensor *x = cg_random_uniform(CG_F32, 1, flat, -1, 1, 6);
  cg_tensor *m = cg_random_uniform(CG_F32, 2, rows, -1, 1, 7);
  const float *xs = float_data(x), *ms = float_data(m);
  double want = 0;
  for (int64_t i = 0; i < flat[0]; i++) want += xs[i];
  assert_true(fabs(cg_item(cg_sum(x, NULL, 0, 0)) - want) <= 1e-6 * fabs(want) + 1e-6);
  assert_true(fabs(cg_item(cg_mean(x, NULL, 0, 0)) - want / (double)flat[0]) <= 1e-7);
  const int last[1] = {1};
  const float *s = float_data(cg_sum(m, last, 1, 0));
  for (int r = 0; r < 7; r++) {
    double w = 0;
    for (int j = 0; j < 20000; j++) w += ms[r * 20000 + j];
    assert_true(fabs(s[r] - w) <= 1e-6 * fabs(w) + 1e-6);
  }
  assert_true(cg_item(cg_sum(x, NULL, 0, 0)) == cg_item(cg_sum(x, NULL, 0, 0)));
}

/* ======================================================================================
 * Pooling: the f32 fast path against the general kernels run in f64
 * ==================================================================================== */

static void check_max_pool(const int64_t shape[4], const int ksize[2], const int strides[2],
                           cg_padding padding, uint64_t seed)
{
  /* values on a coarse grid, so windows hold ties; dy integers, so f32 sums are exact */
  cg_tensor *x = cg_floor(cg_random_uniform(CG_F32, 4, shape, -4, 4, seed));
  cg_tensor *y = cg_max_pool2d(x, ksize, strides, padding);
  cg_tensor *dy = cg_floor(cg_random_uniform(CG_F32, 4, cg_tensor_shape(y), -8, 8, seed + 1));
  cg_tensor *x64 = cg_cast(x, CG_F64), *dy64 = cg_cast(dy, CG_F64);
  cg_tensor *y64 = cg_max_pool2d(x64, ksize, strides, padding);
  cg_tensor *dx = cg_max_pool2d_grad(x, dy, ksize, strides, padding);
  cg_tensor *dx64 = cg_max_pool2d_grad(x64, dy64, ksize, strides, padding);
  assert_non_null(dx);
  assert_non_null(dx64);
  double *want = malloc((size_t)cg_tensor_size(dx64) * sizeof *want);
  cg_tensor_to_f64(y64, want, cg_tensor_size(y64));
  assert_tensor(y, CG_F32, 4, cg_tensor_shape(y64), want, 0);
  cg_tensor_to_f64(dx64, want, cg_tensor_size(dx64));
  assert_tensor(dx, CG_F32, 4, shape, want, 0);
  free(want);
}

static void max_pool_fast_path_matches_general(void **state)
{
  const int two[2] = {2, 2}, three[2] = {3, 3}, one[2] = {1, 1};
  check_max_pool((int64_t[]){64, 28, 28, 32}, two, two, CG_PAD_VALID, 1);  /* W3's first pool */
  check_max_pool((int64_t[]){8, 15, 13, 70}, three, two, CG_PAD_SAME, 2);  /* overlapping, padded */
  check_max_pool((int64_t[]){4, 9, 9, 5}, three, one, CG_PAD_VALID, 3);
  check_max_pool((int64_t[]){3, 7, 7, 130}, two, two, CG_PAD_VALID, 4);    /* odd edge, >64 channels */
  check_max_pool((int64_t[]){3, 7, 7, 32}, two, two, CG_PAD_VALID, 5);     /* disjoint, odd edge */
  check_max_pool((int64_t[]){2, 5, 5, 16}, two, two, CG_PAD_SAME, 6);      /* disjoint, padded */
  check_max_pool((int64_t[]){2, 9, 9, 16}, three, three, CG_PAD_VALID, 7); /* disjoint 3x3 */
}

/* ======================================================================================
 * Convolution: direct (few taps) and GEMM kernels in f32 against the reference loops
 * ==================================================================================== */

static void check_conv(const int64_t xs[4], const int64_t fs[4], int stride, cg_padding padding,
                       uint64_t seed)
{
  const int strides[2] = {stride, stride}, dil[2] = {1, 1};
  cg_window_spec spec = {{fs[0], fs[1]}, {stride, stride}, {1, 1}, padding};
  cg_window w;
  assert_int_equal(cg__window_place("Test", xs, fs[3], &spec, "", &w), CG_OK);
  int64_t ys[4];
  cg__window_out_shape(&w, ys);
  cg_tensor *x = cg_random_uniform(CG_F32, 4, xs, -1, 1, seed);
  cg_tensor *f = cg_random_uniform(CG_F32, 4, fs, -1, 1, seed + 1);
  cg_tensor *dy = cg_random_uniform(CG_F32, 4, ys, -1, 1, seed + 2);
  int64_t nx = cg_tensor_size(x), nf = cg_tensor_size(f), ny = cg_tensor_size(dy);
  double *xv = malloc((size_t)nx * 8), *fv = malloc((size_t)nf * 8), *dyv = malloc((size_t)ny * 8);
  double *y_ref = malloc((size_t)ny * 8), *dx_ref = malloc((size_t)nx * 8), *df_ref = malloc((size_t)nf * 8);
  cg_tensor_to_f64(x, xv, nx);
  cg_tensor_to_f64(f, fv, nf);
  cg_tensor_to_f64(dy, dyv, ny);
  cg__conv2d_reference(&w, xv, fv, y_ref);
  cg__conv2d_backprop_input_reference(&w, fv, dyv, dx_ref);
  cg__conv2d_backprop_filter_reference(&w, xv, dyv, df_ref);
  /* f32 sums of up to taps (forward) or batch * positions (filter) terms of size ~1 */
  double tol_y = 1e-5 * (double)(fs[0] * fs[1] * fs[2]), tol_f = 2e-6 * (double)(ny / fs[3]);
  assert_tensor(cg_conv2d(x, f, strides, padding, dil), CG_F32, 4, ys, y_ref, tol_y);
  assert_tensor(cg_conv2d_backprop_input(xs, f, dy, strides, padding, dil), CG_F32, 4, xs, dx_ref,
                1e-5 * (double)(fs[0] * fs[1] * fs[3]));
  assert_tensor(cg_conv2d_backprop_filter(x, fs, dy, strides, padding, dil), CG_F32, 4, fs, df_ref,
                tol_f);
  free(xv), free(fv), free(dyv), free(y_ref), free(dx_ref), free(df_ref);
}

static void convolutions_match_reference(void **state)
{
  check_conv((int64_t[]){64, 28, 28, 1}, (int64_t[]){3, 3, 1, 32}, 1, CG_PAD_SAME, 1); /* W3 conv 1: direct */
  check_conv((int64_t[]){16, 14, 14, 32}, (int64_t[]){3, 3, 32, 64}, 1, CG_PAD_SAME, 2); /* W3 conv 2: GEMM */
  check_conv((int64_t[]){5, 11, 9, 3}, (int64_t[]){3, 2, 3, 7}, 2, CG_PAD_VALID, 3);   /* direct, strided */
  check_conv((int64_t[]){3, 12, 12, 8}, (int64_t[]){5, 5, 8, 4}, 2, CG_PAD_SAME, 4);   /* GEMM, strided */
}

/* ======================================================================================
 * Adam on a variable large enough to be updated over the threads
 * ==================================================================================== */

static void adam_on_a_large_variable(void **state)
{
  int64_t shape[1] = {100003};
  cg_tensor *p0 = cg_random_uniform(CG_F32, 1, shape, -1, 1, 21);
  cg_tensor *g = cg_random_uniform(CG_F32, 1, shape, -1, 1, 22);
  cg_var *v = cg_var_new("w", p0, 1);
  cg_optimizer_config c = {.kind = CG_OPT_ADAM, .lr = 1e-2};
  cg_optimizer *opt = cg_optimizer_new(&c);
  assert_int_equal(cg_optimizer_apply_gradients(opt, &g, &v, 1), CG_OK);
  const float *p = float_data(p0), *gs = float_data(g), *out = float_data(cg_var_value(v));
  for (int64_t i = 0; i < shape[0]; i++) { /* first step: m = 0.1 g, v = 0.001 g^2 */
    float m = 0.1f * gs[i], s = 0.001f * gs[i] * gs[i];
    float want = p[i] + (float)(-1e-2 / 0.1) * m / (sqrtf(s) / (float)sqrt(0.001) + 1e-8f);
    assert_true(fabsf(out[i] - want) <= 1e-6f);
  }
  cg_optimizer_free(opt);
  cg_var_free(v);
}

/* ======================================================================================
 * The byte-backed batcher gives cg_batcher_new's batches
 * ==================================================================================== */

static void byte_batcher_matches_f32_batcher(void **state)
{
  cg_dataset d = {0};
  if (cg_mnist_load(NULL, 0, &d) != CG_OK) {
    cg_clear_error();
    skip(); /* Fashion-MNIST is not installed */
  }
  cg_batcher *f32 = cg_batcher_new(&d, 100, 1, 7), *bytes = cg__mnist_batcher_new(NULL, 0, 100, 1, 7);
  assert_non_null(bytes);
  assert_int_equal(cg_batcher_num_batches(bytes), 100);
  for (int epoch = 1; epoch <= 2; epoch++) {
    cg_batcher_start_epoch(f32, epoch);
    cg_batcher_start_epoch(bytes, epoch);
    cg_tensor *x1, *y1, *x2, *y2;
    for (int k = 0; k < 100; k++) {
      assert_int_equal(cg_batcher_next(f32, &x1, &y1), 1);
      assert_int_equal(cg_batcher_next(bytes, &x2, &y2), 1);
      assert_tensor(x2, CG_F32, 4, cg_tensor_shape(x1), NULL, 0);
      assert_memory_equal(cg_tensor_data(x1), cg_tensor_data(x2), 100 * 784 * sizeof(float));
      assert_memory_equal(cg_tensor_data(y1), cg_tensor_data(y2), 100 * sizeof(int64_t));
    }
    assert_int_equal(cg_batcher_next(bytes, &x2, &y2), 0);
  }
  cg_batcher_free(f32);
  cg_batcher_free(bytes);
  cg_dataset_free(&d);
  assert_null(cg__mnist_batcher_new(NULL, 0, 0, 0, 0));
  assert_error(CG_EINVAL, "batch size 0 is not positive");
  assert_null(cg__mnist_batcher_new("/nonexistent", 1, 10, 0, 0));
  assert_error(CG_EIO, "nonexistent/train-images-idx3-ubyte.gz' nor");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(tanh_within_two_ulp),
      cgt_test(tanh_and_relu_ops_on_large_tensors),
      cgt_test(binary_ops_split_over_threads),
      cgt_test(add_n_of_many_parts),
      cgt_test(broadcast_copies_and_fills),
      cgt_test(column_sums_match_double_sums),
      cgt_test(row_sums_match_double_sums),
      cgt_test(max_pool_fast_path_matches_general),
      cgt_test(convolutions_match_reference),
      cgt_test(adam_on_a_large_variable),
      cgt_test(byte_batcher_matches_f32_batcher),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_ops_pool.c - MaxPool2D, AvgPool2D and their gradient ops (MaxPool2DGrad,
 * AvgPool2DGrad, MaxPool2DGradGrad): known values in f32 and f64 under VALID and SAME,
 * first-maximum ties, gradients at hand-computed points, the adjoint identities between the
 * ops on random windows, the gradient-check rows of cases_conv.c, and bad inputs. */
#include "util.h"
#include "cases.h"
#include <string.h>

static const cg_dtype float_dtypes[] = {CG_F32, CG_F64};
static const int k2[2] = {2, 2}, k3[2] = {3, 3}, k12[2] = {1, 2}, s1[2] = {1, 1}, s2[2] = {2, 2};

static cg_tensor *floats(cg_dtype d, int ndim, const int64_t *shape, const double *v)
{
  return d == CG_F32 ? cgt_f32(ndim, shape, v) : cgt_f64(ndim, shape, v);
}

static const int64_t s4441[] = {1, 4, 4, 1}, s3331[] = {1, 3, 3, 1}, s1221[] = {1, 2, 2, 1};
static const int64_t s1131[] = {1, 1, 3, 1};
static const double x1to16[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const double dy1234[] = {1, 2, 3, 4};

/* ======================================================================================
 * Forward values
 * ==================================================================================== */

/* x = [[1..4],[5..8],[9..12],[13..16]], 2x2 windows, stride 2, VALID:
 * max = [[6,8],[14,16]]; mean = [[(1+2+5+6)/4, (3+4+7+8)/4], [(9+10+13+14)/4, ...]]
 *                              = [[3.5,5.5],[11.5,13.5]] */
static void test_pool_valid(void **state)
{
  static const double max[] = {6, 8, 14, 16}, mean[] = {3.5, 5.5, 11.5, 13.5};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *x = floats(d, 4, s4441, x1to16);
    assert_tensor(cg_max_pool2d(x, k2, s2, CG_PAD_VALID), d, 4, s1221, max, 1e-6);
    assert_tensor(cg_avg_pool2d(x, k2, s2, CG_PAD_VALID), d, 4, s1221, mean, 1e-6);
  }
}

/* x = [[1,2,3],[4,5,6],[7,8,9]], 3x3 windows, stride 2, SAME (one padding cell each side):
 * windows hold rows/cols {0,1} and {1,2}: max = [[5,6],[8,9]];
 * mean over in-bounds cells only = [[12/4, 16/4], [24/4, 28/4]] = [[3,4],[6,7]] */
static void test_pool_same_stride2(void **state)
{
  static const double x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  static const double max[] = {5, 6, 8, 9}, mean[] = {3, 4, 6, 7};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *xt = floats(d, 4, s3331, x);
    assert_tensor(cg_max_pool2d(xt, k3, s2, CG_PAD_SAME), d, 4, s1221, max, 1e-6);
    assert_tensor(cg_avg_pool2d(xt, k3, s2, CG_PAD_SAME), d, 4, s1221, mean, 1e-6);
  }
}

/* A 1x2 window, stride 1, SAME pads one cell after: x = [3,1,2] -> windows [3,1], [1,2], [2]:
 * max = [3,2,2], mean = [2, 1.5, 2] (the last window counts one cell). */
static void test_pool_same_pads_after(void **state)
{
  static const double x[] = {3, 1, 2}, max[] = {3, 2, 2}, mean[] = {2, 1.5, 2};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *xt = floats(d, 4, s1131, x);
    assert_tensor(cg_max_pool2d(xt, k12, s1, CG_PAD_SAME), d, 4, s1131, max, 1e-6);
    assert_tensor(cg_avg_pool2d(xt, k12, s1, CG_PAD_SAME), d, 4, s1131, mean, 1e-6);
  }
}

/* Channels pool separately, and an all-negative channel keeps its negative maximum:
 * channel 0 = [1,4,2,3] -> max 4, mean 2.5; channel 1 = [-1,-4,-2,-3] -> max -1, mean -2.5 */
static void test_pool_channels(void **state)
{
  static const int64_t sx[] = {1, 2, 2, 2}, sy[] = {1, 1, 1, 2};
  static const double x[] = {1, -1, 4, -4, 2, -2, 3, -3}, max[] = {4, -1}, mean[] = {2.5, -2.5};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *xt = floats(d, 4, sx, x);
    assert_tensor(cg_max_pool2d(xt, k2, NULL, CG_PAD_VALID), d, 4, sy, max, 1e-6);
    assert_tensor(cg_avg_pool2d(xt, k2, NULL, CG_PAD_VALID), d, 4, sy, mean, 1e-6);
  }
}

/* Empty batch or no channels: empty outputs of the right shape, no window is visited. */
static void test_pool_empty(void **state)
{
  static const int64_t no_batch[] = {0, 4, 4, 1}, no_batch_y[] = {0, 2, 2, 1};
  static const int64_t no_channels[] = {1, 4, 4, 0}, no_channels_y[] = {1, 2, 2, 0};
  assert_tensor(cg_max_pool2d(cg_zeros(CG_F64, 4, no_batch), k2, s2, CG_PAD_VALID), CG_F64, 4,
                no_batch_y, NULL, 0);
  assert_tensor(cg_avg_pool2d(cg_zeros(CG_F32, 4, no_channels), k2, s2, CG_PAD_SAME), CG_F32, 4,
                no_channels_y, NULL, 0);
}

/* ======================================================================================
 * The gradient ops' values
 * ==================================================================================== */

/* The maxima of x = 1..16 (2x2, stride 2) sit at flat 5, 7, 13, 15; dy = [1,2,3,4] lands
 * there and nowhere else. MaxPool2DGradGrad gathers from the same places. */
static void test_max_pool_grad_values(void **state)
{
  static const double dx[] = {0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4};
  static const double gathered[] = {105, 107, 113, 115};
  double ddx[16];
  for (int i = 0; i < 16; i++) ddx[i] = 100 + i;
  cg_attrs a = {0};
  const int64_t ksize[2] = {2, 2}, strides[2] = {2, 2};
  cg_attrs_set_ints(&a, "ksize", ksize, 2);
  cg_attrs_set_ints(&a, "strides", strides, 2);
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *x = floats(d, 4, s4441, x1to16);
    assert_tensor(cg_max_pool2d_grad(x, floats(d, 4, s1221, dy1234), k2, s2, CG_PAD_VALID), d,
                  4, s4441, dx, 1e-6);
    cg_tensor *in[2] = {x, floats(d, 4, s4441, ddx)};
    assert_tensor(cg_call("MaxPool2DGradGrad", in, 2, &a), d, 4, s1221, gathered, 1e-6);
  }
}

/* Overlapping 1x2 windows over [1,9,2] share the maximum 9: both dy add up there, dx =
 * [0, 1+2, 0]. Over [5,5] the first of the tied maxima takes dy: dx = [1, 0]. */
static void test_max_pool_grad_shared_and_tied(void **state)
{
  static const int64_t s1121[] = {1, 1, 2, 1}, s1111[] = {1, 1, 1, 1};
  static const double x[] = {1, 9, 2}, dy[] = {1, 2}, dx[] = {0, 3, 0};
  static const double tied[] = {5, 5}, one[] = {1}, first[] = {1, 0};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    assert_tensor(cg_max_pool2d_grad(floats(d, 4, s1131, x), floats(d, 4, s1121, dy), k12, s1,
                                     CG_PAD_VALID),
                  d, 4, s1131, dx, 1e-6);
    assert_tensor(cg_max_pool2d_grad(floats(d, 4, s1121, tied), floats(d, 4, s1111, one), k12, s1,
                                     CG_PAD_VALID),
                  d, 4, s1121, first, 1e-6);
  }
}

/* 3x3 windows, stride 2, SAME over 3x3: four windows of 4 in-bounds cells each, covering
 * rows/cols {0,1} and {1,2}; each cell gets the dy/4 of the windows holding it:
 * dx = [[1, 1+2, 2], [1+3, 1+2+3+4, 2+4], [3, 3+4, 4]] / 4 */
static void test_avg_pool_grad_values(void **state)
{
  static const double dx[] = {0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1};
  static const double ones3[] = {1, 1, 1}, edge[] = {0.5, 1, 1.5};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    assert_tensor(cg_avg_pool2d_grad(s3331, floats(d, 4, s1221, dy1234), k3, s2, CG_PAD_SAME), d,
                  4, s3331, dx, 1e-6);
    /* 1x2 SAME over 3 cells: windows of 2, 2 and 1 cells: [1/2, 1/2 + 1/2, 1/2 + 1] */
    assert_tensor(cg_avg_pool2d_grad(s1131, floats(d, 4, s1131, ones3), k12, s1, CG_PAD_SAME), d,
                  4, s1131, edge, 1e-6);
  }
}

/* ======================================================================================
 * Gradients through a tape at hand-computed points
 * ==================================================================================== */

/* L = sum(MaxPool2D(x)): 1 at each window's maximum (flat 5, 7, 13, 15). */
static void test_max_pool_tape_gradient(void **state)
{
  static const double dx[] = {0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1};
  cg_tensor *x = cgt_f64(4, s4441, x1to16), *grad;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *loss = cg_sum(cg_max_pool2d(x, k2, s2, CG_PAD_VALID), NULL, 0, 0);
  assert_int_equal(cg_tape_gradient(tape, loss, &x, 1, &grad, NULL), CG_OK);
  cg_tape_free(tape);
  assert_tensor(grad, CG_F64, 4, s4441, dx, 1e-12);
}

/* L = sum(AvgPool2D(x)), 3x3 SAME stride 2 over 3x3: each cell gets 1/4 per window holding
 * it: corners 1, edges 2, centre 4 windows -> [[.25,.5,.25],[.5,1,.5],[.25,.5,.25]] */
static void test_avg_pool_tape_gradient(void **state)
{
  static const double x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  static const double dx[] = {0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25};
  cg_tensor *xt = cgt_f64(4, s3331, x), *grad;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, xt);
  cg_tensor *loss = cg_sum(cg_avg_pool2d(xt, k3, s2, CG_PAD_SAME), NULL, 0, 0);
  assert_int_equal(cg_tape_gradient(tape, loss, &xt, 1, &grad, NULL), CG_OK);
  cg_tape_free(tape);
  assert_tensor(grad, CG_F64, 4, s3331, dx, 1e-12);
}

/* L = sum(w * MaxPool2DGrad(x, g)) = sum_o g[o] w[argmax o]: dL/dg gathers w = 100 + i at the
 * maxima 5, 7, 13, 15. L = sum(w * AvgPool2DGrad(g)) = sum_o g[o] mean of w over window o:
 * dL/dg = AvgPool2D(w) = [[(100+101+104+105)/4, ...]] = [102.5, 104.5, 110.5, 112.5]. */
static void test_gradient_op_tape_gradients(void **state)
{
  static const double gathered[] = {105, 107, 113, 115}, means[] = {102.5, 104.5, 110.5, 112.5};
  double wv[16];
  for (int i = 0; i < 16; i++) wv[i] = 100 + i;
  cg_tensor *x = cgt_f64(4, s4441, x1to16), *w = cgt_f64(4, s4441, wv);
  cg_tensor *g = cgt_f64(4, s1221, dy1234), *grads[2];
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tape_watch(tape, g);
  cg_tensor *max_grad = cg_max_pool2d_grad(x, g, k2, s2, CG_PAD_VALID);
  cg_tensor *avg_grad = cg_avg_pool2d_grad(s4441, g, k2, s2, CG_PAD_VALID);
  cg_tensor *max_loss = cg_sum(cg_mul(w, max_grad), NULL, 0, 0);
  cg_tensor *avg_loss = cg_sum(cg_mul(w, avg_grad), NULL, 0, 0);
  assert_int_equal(cg_tape_gradient(tape, max_loss, &g, 1, &grads[0], NULL), CG_OK);
  assert_int_equal(cg_tape_gradient(tape, avg_loss, &g, 1, &grads[1], NULL), CG_OK);
  cg_tape_free(tape);
  assert_tensor(grads[0], CG_F64, 4, s1221, gathered, 1e-12);
  assert_tensor(grads[1], CG_F64, 4, s1221, means, 1e-12);
}

/* Third derivatives (a gradient penalty's Hessian) go through MaxPool2DGradGrad. */
static void test_max_pool_grad_grad_is_differentiable(void **state)
{
  const cg_op_def *def = cg_find_op("MaxPool2DGradGrad");
  assert_non_null(def);
  assert_false(def->flags & CG_OP_NOT_DIFFERENTIABLE);
  assert_true(cg_has_gradient("MaxPool2DGradGrad"));
  assert_true(cg_has_jvp("MaxPool2DGradGrad"));
}

/* ======================================================================================
 * Adjoint identities on random windows: the gradient ops are the transposes they claim
 * ==================================================================================== */

static double dot(cg_tensor *a, cg_tensor *b) { return cg_item(cg_sum(cg_mul(a, b), NULL, 0, 0)); }

static uint64_t next_random(uint64_t *state)
{
  *state = *state * 6364136223846793005ull + 1442695040888963407ull;
  return *state >> 33;
}

/* <AvgPool2D(x), g> = <x, AvgPool2DGrad(g)>, <MaxPool2DGrad(x, g), h> = <g,
 * MaxPool2DGradGrad(x, h)>, and MaxPool2D(x) = MaxPool2DGradGrad(x, x). */
static void test_adjoint_identities(void **state)
{
  uint64_t rng = 7;
  for (int i = 0; i < 40; i++) {
    int64_t shape[4] = {1 + (int64_t)(next_random(&rng) % 2), 1 + (int64_t)(next_random(&rng) % 6),
                        1 + (int64_t)(next_random(&rng) % 6), 1 + (int64_t)(next_random(&rng) % 3)};
    int ksize[2] = {1 + (int)(next_random(&rng) % 3), 1 + (int)(next_random(&rng) % 3)};
    int strides[2] = {1 + (int)(next_random(&rng) % 3), 1 + (int)(next_random(&rng) % 3)};
    cg_padding padding = next_random(&rng) % 2 ? CG_PAD_SAME : CG_PAD_VALID;
    cg_tensor *x = cg_random_uniform(CG_F64, 4, shape, -1, 1, 10 + (uint64_t)i);
    cg_tensor *pooled = cg_avg_pool2d(x, ksize, strides, padding);
    if (!pooled) { /* a VALID window larger than this input */
      assert_error(CG_ESHAPE, "is larger than");
      continue;
    }
    cg_tensor *g = cg_random_uniform(CG_F64, 4, cg_tensor_shape(pooled), -1, 1, 90 + (uint64_t)i);
    cg_tensor *h = cg_random_uniform(CG_F64, 4, shape, -1, 1, 190 + (uint64_t)i);
    double lhs = dot(pooled, g);
    double rhs = dot(x, cg_avg_pool2d_grad(shape, g, ksize, strides, padding));
    assert_float_equal(lhs, rhs, 1e-12);

    cg_attrs a = {0};
    const int64_t k64[2] = {ksize[0], ksize[1]}, s64[2] = {strides[0], strides[1]};
    cg_attrs_set_ints(&a, "ksize", k64, 2);
    cg_attrs_set_ints(&a, "strides", s64, 2);
    cg_attrs_set_int(&a, "padding", padding);
    cg_tensor *xh[2] = {x, h}, *xx[2] = {x, x};
    lhs = dot(cg_max_pool2d_grad(x, g, ksize, strides, padding), h);
    rhs = dot(g, cg_call("MaxPool2DGradGrad", xh, 2, &a));
    assert_float_equal(lhs, rhs, 1e-12);
    cg_tensor *max = cg_max_pool2d(x, ksize, strides, padding);
    assert_float_equal(dot(max, g), dot(cg_call("MaxPool2DGradGrad", xx, 2, &a), g), 0);
  }
}

/* ======================================================================================
 * Gradient-check rows (cases_conv.c): f64 at order 1 and 2, and f32 at order 1
 * ==================================================================================== */

static bool is_pool_op(const char *op) { return strstr(op, "Pool2D") != NULL; }

static void run_case(const cg_grad_case *c, cg_dtype d, int order)
{
  cg_gradcheck_report report;
  if (cg_run_grad_case(c, d, order, 42, &report) != CG_OK)
    fail_msg("%s (%s), %s, order %d: %s [%s]", c->op, c->label, cg_dtype_name(d), order,
             report.message, cg_last_error());
}

static void test_grad_cases(void **state)
{
  int rows = 0;
  for (int i = 0; i < cg_cases_conv_n; i++) {
    const cg_grad_case *c = &cg_cases_conv[i];
    if (!is_pool_op(c->op)) continue; /* convolution rows: test_ops_conv.c */
    run_case(c, CG_F64, 1);
    if (c->order2) run_case(c, CG_F64, 2);
    run_case(c, CG_F32, 1);
    rows++;
  }
  assert_true(rows > 0);
}

static void test_every_op_has_a_case(void **state)
{
  static const char *const ops[] = {"MaxPool2D", "MaxPool2DGrad", "AvgPool2D", "AvgPool2DGrad"};
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    int rows = 0;
    for (int i = 0; i < cg_cases_conv_n; i++) rows += strcmp(cg_cases_conv[i].op, ops[k]) == 0;
    if (!rows) fail_msg("%s has no gradient-check row", ops[k]);
  }
}

/* ======================================================================================
 * Bad inputs: each row must fail with this code and a message containing this text
 * ==================================================================================== */

typedef struct {
  cg_dtype dtype;
  int ndim;
  int64_t shape[5];
} spec;

typedef struct {
  const char *op;
  int n_in;
  spec in[2];
  int64_t ksize[2], strides[2], padding;
  int64_t input_shape[4]; /* AvgPool2DGrad only */
  cg_status code;
  const char *message;
} bad_input;

#define X(...) {CG_F64, 4, {__VA_ARGS__}}
#define OK_WINDOW {2, 2}, {2, 2}, CG_PAD_VALID
static const bad_input bad_inputs[] = {
    {"MaxPool2D", 1, {{CG_F64, 3, {4, 4, 1}}}, OK_WINDOW, {0}, CG_ESHAPE,
     "MaxPool2D: input (NHWC) must have rank 4, got [4,4,1]"},
    {"MaxPool2D", 1, {{CG_I32, 4, {1, 4, 4, 1}}}, OK_WINDOW, {0}, CG_EDTYPE,
     "MaxPool2D: input 0 must be f32 or f64, got i32 [1,4,4,1]"},
    {"MaxPool2D", 1, {X(1, 4, 4, 1)}, {0, 2}, {2, 2}, CG_PAD_VALID, {0}, CG_EINVAL,
     "MaxPool2D: window size must be positive, got [0,2]: input [1,4,4,1], ksize [0,2]"},
    {"MaxPool2D", 1, {X(1, 4, 4, 1)}, {2, 2}, {1, 0}, CG_PAD_SAME, {0}, CG_EINVAL,
     "MaxPool2D: strides must be positive, got [1,0]"},
    {"MaxPool2D", 1, {X(1, 4, 4, 1)}, {2, 2}, {2, 2}, 3, {0}, CG_EINVAL,
     "MaxPool2D: padding must be CG_PAD_VALID (0) or CG_PAD_SAME (1), got 3"},
    {"AvgPool2D", 1, {X(1, 4, 4, 1)}, {5, 5}, {1, 1}, CG_PAD_VALID, {0}, CG_ESHAPE,
     "AvgPool2D: window 5x5 is larger than the 4x4 input under VALID padding: input [1,4,4,1], "
     "ksize [5,5]"},
    {"AvgPool2D", 1, {X(1, 4, 4, 1)}, {2, -1}, {1, 1}, CG_PAD_VALID, {0}, CG_EINVAL,
     "AvgPool2D: window size must be positive, got [2,-1]"},
    {"AvgPool2D", 1, {{CG_BOOL, 4, {1, 2, 2, 1}}}, OK_WINDOW, {0}, CG_EDTYPE,
     "AvgPool2D: input 0 must be f32 or f64, got bool"},
    {"AvgPool2D", 1, {{CG_F32, 2, {4, 4}}}, OK_WINDOW, {0}, CG_ESHAPE,
     "AvgPool2D: input (NHWC) must have rank 4, got [4,4]"},
    {"MaxPool2DGrad", 2, {X(1, 4, 4, 1), X(1, 3, 3, 1)}, OK_WINDOW, {0}, CG_ESHAPE,
     "MaxPool2DGrad: dy has shape [1,3,3,1] but pooling gives [1,2,2,1]"},
    {"MaxPool2DGrad", 2, {X(1, 4, 4, 1), {CG_F32, 4, {1, 2, 2, 1}}}, OK_WINDOW, {0}, CG_EDTYPE,
     "MaxPool2DGrad: dtypes differ: f64 [1,4,4,1] vs f32 [1,2,2,1]"},
    {"MaxPool2DGrad", 2, {X(1, 4, 4, 1), {CG_F64, 3, {2, 2, 1}}}, OK_WINDOW, {0}, CG_ESHAPE,
     "MaxPool2DGrad: dy has shape [2,2,1] but pooling gives [1,2,2,1]"},
    {"MaxPool2DGrad", 2, {X(1, 1, 1, 1), X(1, 1, 1, 1)}, OK_WINDOW, {0}, CG_ESHAPE,
     "MaxPool2DGrad: window 2x2 is larger than the 1x1 input"},
    {"MaxPool2DGradGrad", 2, {X(1, 4, 4, 1), X(1, 2, 2, 1)}, OK_WINDOW, {0}, CG_ESHAPE,
     "MaxPool2DGradGrad: ddx has shape [1,2,2,1] but the input has [1,4,4,1]"},
    {"MaxPool2DGradGrad", 2, {{CG_I64, 4, {1, 4, 4, 1}}, {CG_I64, 4, {1, 4, 4, 1}}}, OK_WINDOW,
     {0}, CG_EDTYPE, "MaxPool2DGradGrad: input 0 must be f32 or f64, got i64"},
    {"AvgPool2DGrad", 1, {X(1, 3, 3, 1)}, OK_WINDOW, {1, 4, 4, 1}, CG_ESHAPE,
     "AvgPool2DGrad: dy has shape [1,3,3,1] but pooling gives [1,2,2,1]"},
    {"AvgPool2DGrad", 1, {X(1, 2, 2, 1)}, OK_WINDOW, {1, 4, -4, 1}, CG_EINVAL,
     "AvgPool2DGrad: negative dimension in shape [1,4,-4,1]"},
    {"AvgPool2DGrad", 1, {{CG_F64, 3, {2, 2, 1}}}, OK_WINDOW, {1, 4, 4, 1}, CG_ESHAPE,
     "AvgPool2DGrad: dy (NHWC) must have rank 4, got [2,2,1]"},
    {"AvgPool2DGrad", 1, {{CG_I32, 4, {1, 2, 2, 1}}}, OK_WINDOW, {1, 4, 4, 1}, CG_EDTYPE,
     "AvgPool2DGrad: input 0 must be f32 or f64, got i32"},
    {"AvgPool2DGrad", 1, {X(1, 2, 2, 1)}, {2, 2}, {0, 2}, CG_PAD_VALID, {1, 4, 4, 1}, CG_EINVAL,
     "AvgPool2DGrad: strides must be positive, got [0,2]"},
};

static void test_bad_inputs(void **state)
{
  for (size_t r = 0; r < sizeof bad_inputs / sizeof bad_inputs[0]; r++) {
    const bad_input *b = &bad_inputs[r];
    cg_tensor *in[2];
    for (int i = 0; i < b->n_in; i++)
      in[i] = cg_zeros(b->in[i].dtype, b->in[i].ndim, b->in[i].shape);
    cg_attrs a = {0};
    cg_attrs_set_ints(&a, "ksize", b->ksize, 2);
    cg_attrs_set_ints(&a, "strides", b->strides, 2);
    cg_attrs_set_int(&a, "padding", b->padding);
    if (strcmp(b->op, "AvgPool2DGrad") == 0)
      cg_attrs_set_ints(&a, "input_shape", b->input_shape, 4);
    if (cg_call(b->op, in, b->n_in, &a)) fail_msg("bad input row %zu (%s) did not fail", r, b->op);
    assert_error(b->code, b->message);
  }
}

/* Missing attributes and NULL inputs. */
static void test_missing_attributes_and_null_inputs(void **state)
{
  cg_tensor *x = cg_zeros(CG_F64, 4, s4441), *dy = cg_zeros(CG_F64, 4, s1221);
  assert_null(cg_max_pool2d(x, NULL, s2, CG_PAD_VALID));
  assert_error(CG_EINVAL, "MaxPool2D: attribute ksize needs 2 ints, got 0");
  assert_null(cg_avg_pool2d_grad(NULL, dy, k2, s2, CG_PAD_VALID));
  assert_error(CG_EINVAL, "AvgPool2DGrad: attribute input_shape needs 4 ints, got 0");
  assert_null(cg_avg_pool2d(NULL, k2, s2, CG_PAD_VALID));
  assert_error(CG_EINVAL, "AvgPool2D: input 0 is NULL");
  assert_null(cg_max_pool2d_grad(x, NULL, k2, s2, CG_PAD_VALID));
  assert_error(CG_EINVAL, "MaxPool2DGrad: input 1 is NULL");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(test_pool_valid),
      cgt_test(test_pool_same_stride2),
      cgt_test(test_pool_same_pads_after),
      cgt_test(test_pool_channels),
      cgt_test(test_pool_empty),
      cgt_test(test_max_pool_grad_values),
      cgt_test(test_max_pool_grad_shared_and_tied),
      cgt_test(test_avg_pool_grad_values),
      cgt_test(test_max_pool_tape_gradient),
      cgt_test(test_avg_pool_tape_gradient),
      cgt_test(test_gradient_op_tape_gradients),
      cgt_test(test_max_pool_grad_grad_is_differentiable),
      cgt_test(test_adjoint_identities),
      cgt_test(test_grad_cases),
      cgt_test(test_every_op_has_a_case),
      cgt_test(test_bad_inputs),
      cgt_test(test_missing_attributes_and_null_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

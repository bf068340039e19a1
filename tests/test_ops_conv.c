/* test_ops_conv.c - Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter: the window
 * geometry (TensorFlow's VALID/SAME rules), known values in f32 and f64, gradients at
 * hand-computed points, the GEMM kernels against the direct reference on random shapes, the
 * gradient-check rows of cases_conv.c, and a table of bad inputs with their errors. */
#include "util.h"
#include "cases.h"
#include "ops/conv_geometry.h"
#include <stdlib.h>
#include <string.h>

static const cg_dtype float_dtypes[] = {CG_F32, CG_F64};
static const int ones[2] = {1, 1}, twos[2] = {2, 2};

static cg_tensor *floats(cg_dtype d, int ndim, const int64_t *shape, const double *v)
{
  return d == CG_F32 ? cgt_f32(ndim, shape, v) : cgt_f64(ndim, shape, v);
}

/* ======================================================================================
 * Geometry: output size and padding before, along one axis
 * ==================================================================================== */

typedef struct {
  int64_t in, k, stride, dilation, padding;
  int64_t out, pad_before;
} axis_row;

/* TensorFlow: VALID out = (in - ((k-1)d+1)) / s + 1; SAME out = ceil(in / s), and the
 * padding (out-1)s + (k-1)d+1 - in is split with the smaller half before. */
static const axis_row axis_rows[] = {
    {5, 3, 1, 1, CG_PAD_VALID, 3, 0},
    {5, 3, 2, 1, CG_PAD_VALID, 2, 0},
    {6, 3, 2, 1, CG_PAD_VALID, 2, 0}, /* row 5 is left over */
    {7, 1, 3, 1, CG_PAD_VALID, 3, 0},
    {5, 3, 2, 1, CG_PAD_SAME, 3, 1},  /* padding 2: 1 before, 1 after */
    {4, 3, 2, 1, CG_PAD_SAME, 2, 0},  /* padding 1: 0 before, 1 after */
    {5, 2, 1, 1, CG_PAD_SAME, 5, 0},  /* padding 1 */
    {5, 3, 1, 2, CG_PAD_VALID, 1, 0}, /* dilated extent 5 */
    {5, 3, 1, 2, CG_PAD_SAME, 5, 2},  /* padding 4 */
    {1, 5, 1, 1, CG_PAD_SAME, 1, 2},  /* window wider than the input */
    {0, 3, 2, 1, CG_PAD_SAME, 0, 0},  /* empty input, empty output */
};

static void test_window_geometry(void **state)
{
  for (size_t r = 0; r < sizeof axis_rows / sizeof axis_rows[0]; r++) {
    const axis_row *a = &axis_rows[r];
    const int64_t x[4] = {1, a->in, 3, 1};
    cg_window_spec s = {{a->k, 1}, {a->stride, 1}, {a->dilation, 1}, a->padding};
    cg_window w;
    assert_int_equal(cg__window_place("Test", x, 1, &s, "", &w), CG_OK);
    if (w.out_h != a->out || w.pad_top != a->pad_before)
      fail_msg("axis row %zu: out %lld pad %lld, expected %lld pad %lld", r, (long long)w.out_h,
               (long long)w.pad_top, (long long)a->out, (long long)a->pad_before);
    assert_int_equal(w.out_w, 3); /* the width axis has a 1x1 window: it passes through */
  }
}

/* ======================================================================================
 * Known values
 * ==================================================================================== */

static const int64_t s3311[] = {1, 3, 3, 1}, s2211[] = {2, 2, 1, 1}, s1221[] = {1, 2, 2, 1};
static const double x1to9[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const double f1234[] = {1, 2, 3, 4};

/* x = [[1,2,3],[4,5,6],[7,8,9]], f = [[1,2],[3,4]], VALID:
 * y[i][j] = x[i][j] + 2x[i][j+1] + 3x[i+1][j] + 4x[i+1][j+1]
 *         = [[1+4+12+20, 2+6+15+24], [4+10+21+32, 5+12+24+36]] = [[37,47],[67,77]] */
static void test_conv2d_valid(void **state)
{
  static const double y[] = {37, 47, 67, 77};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *out = cg_conv2d(floats(d, 4, s3311, x1to9), floats(d, 4, s2211, f1234), ones,
                               CG_PAD_VALID, ones);
    assert_tensor(out, d, 4, s1221, y, 1e-6);
  }
}

/* 3x3 ones filter, SAME, stride 2 over x (padding 1 on each side): windows cover rows/cols
 * {0,1} and {1,2}: [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]] = [[12,16],[24,28]] */
static void test_conv2d_same_stride2(void **state)
{
  static const int64_t s3311f[] = {3, 3, 1, 1};
  static const double f[] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, y[] = {12, 16, 24, 28};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *out = cg_conv2d(floats(d, 4, s3311, x1to9), floats(d, 4, s3311f, f), twos,
                               CG_PAD_SAME, ones);
    assert_tensor(out, d, 4, s1221, y, 1e-6);
  }
}

/* An even filter under SAME pads after: x = [1,2,3], f = [1,10] (1x2), padding 1 after:
 * y = [1 + 20, 2 + 30, 3 + 0] = [21, 32, 3] */
static void test_conv2d_same_pads_after(void **state)
{
  static const int64_t sx[] = {1, 1, 3, 1}, sf[] = {1, 2, 1, 1};
  static const double x[] = {1, 2, 3}, f[] = {1, 10}, y[] = {21, 32, 3};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *out = cg_conv2d(floats(d, 4, sx, x), floats(d, 4, sf, f), ones, CG_PAD_SAME, ones);
    assert_tensor(out, d, 4, sx, y, 1e-6);
  }
}

/* 2x2 ones filter dilated by 2 spans 3x3 and sees the corners: 1 + 3 + 7 + 9 = 20. */
static void test_conv2d_dilated(void **state)
{
  static const int64_t s1111[] = {1, 1, 1, 1};
  static const double f[] = {1, 1, 1, 1}, y[] = {20};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *out = cg_conv2d(floats(d, 4, s3311, x1to9), floats(d, 4, s2211, f), ones,
                               CG_PAD_VALID, twos);
    assert_tensor(out, d, 4, s1111, y, 1e-6);
  }
}

/* Channels mix through the filter: x = [1,2] (2 channels), f = [[1,2,3],[4,5,6]]:
 * y = [1+8, 2+10, 3+12] = [9, 12, 15] */
static void test_conv2d_channels(void **state)
{
  static const int64_t sx[] = {1, 1, 1, 2}, sf[] = {1, 1, 2, 3}, sy[] = {1, 1, 1, 3};
  static const double x[] = {1, 2}, f[] = {1, 2, 3, 4, 5, 6}, y[] = {9, 12, 15};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    assert_tensor(cg_conv2d(floats(d, 4, sx, x), floats(d, 4, sf, f), NULL, CG_PAD_VALID, NULL),
                  d, 4, sy, y, 1e-6);
  }
}

/* dx[h][w] = sum over outputs (i,j) of dy[i][j] f[h-i][w-j]: with dy = f = [[1,2],[3,4]]
 * that is the full 2-D convolution of f with itself: [[1,4,4],[6,20,16],[9,24,16]] */
static void test_backprop_input_values(void **state)
{
  static const double dx[] = {1, 4, 4, 6, 20, 16, 9, 24, 16};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *f = floats(d, 4, s2211, f1234), *dy = floats(d, 4, s1221, f1234);
    cg_tensor *out = cg_conv2d_backprop_input(s3311, f, dy, ones, CG_PAD_VALID, ones);
    assert_tensor(out, d, 4, s3311, dx, 1e-6);
  }
}

/* SAME stride 2 with a 3x3 ones filter: each cell gets the dy of the windows holding it;
 * windows cover rows/cols {0,1} and {1,2}, dy = [[1,2],[3,4]]:
 * dx = [[1, 1+2, 2], [1+3, 1+2+3+4, 2+4], [3, 3+4, 4]] */
static void test_backprop_input_same_stride2(void **state)
{
  static const int64_t sf[] = {3, 3, 1, 1};
  static const double f[] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, dx[] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *out = cg_conv2d_backprop_input(s3311, floats(d, 4, sf, f),
                                              floats(d, 4, s1221, f1234), twos, CG_PAD_SAME, ones);
    assert_tensor(out, d, 4, s3311, dx, 1e-6);
  }
}

/* df[a][b] = sum_{i,j} x[i+a][j+b] dy[i][j], dy = [[1,2],[3,4]]:
 * df[0][0] = 1 + 4 + 12 + 20 = 37, df[0][1] = 2 + 6 + 15 + 24 = 47,
 * df[1][0] = 4 + 10 + 21 + 32 = 67, df[1][1] = 5 + 12 + 24 + 36 = 77 */
static void test_backprop_filter_values(void **state)
{
  static const double df[] = {37, 47, 67, 77};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *x = floats(d, 4, s3311, x1to9), *dy = floats(d, 4, s1221, f1234);
    cg_tensor *out = cg_conv2d_backprop_filter(x, s2211, dy, ones, CG_PAD_VALID, ones);
    assert_tensor(out, d, 4, s2211, df, 1e-6);
  }
}

/* ======================================================================================
 * Gradients through a tape at hand-computed points
 * ==================================================================================== */

/* L = sum(conv(x, f)) VALID: dL/dx counts the filter taps covering each cell,
 * [[1,1+2,2],[1+3,1+2+3+4,2+4],[3,3+4,4]]; dL/df[a][b] sums the window of x it meets:
 * [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]] = [[12,16],[24,28]] */
static void test_conv2d_tape_gradient(void **state)
{
  static const double dx[] = {1, 3, 2, 4, 10, 6, 3, 7, 4}, df[] = {12, 16, 24, 28};
  cg_tensor *x = cgt_f64(4, s3311, x1to9), *f = cgt_f64(4, s2211, f1234);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tape_watch(tape, f);
  cg_tensor *loss = cg_sum(cg_conv2d(x, f, ones, CG_PAD_VALID, ones), NULL, 0, 0);
  cg_tensor *sources[2] = {x, f}, *grads[2];
  assert_int_equal(cg_tape_gradient(tape, loss, sources, 2, grads, NULL), CG_OK);
  cg_tape_free(tape);
  assert_tensor(grads[0], CG_F64, 4, s3311, dx, 1e-12);
  assert_tensor(grads[1], CG_F64, 4, s2211, df, 1e-12);
}

/* L = sum(BackpropInput(f, dy)) = sum_{i,j,a,b} f[a][b] dy[i][j] (every tap lands inside):
 * dL/df[a][b] = sum(dy) = 10, dL/ddy[i][j] = sum(f) = 10. */
static void test_backprop_input_tape_gradient(void **state)
{
  static const double ten[] = {10, 10, 10, 10};
  cg_tensor *f = cgt_f64(4, s2211, f1234), *dy = cgt_f64(4, s1221, f1234);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, f);
  cg_tape_watch(tape, dy);
  cg_tensor *out = cg_conv2d_backprop_input(s3311, f, dy, ones, CG_PAD_VALID, ones);
  cg_tensor *sources[2] = {f, dy}, *grads[2];
  assert_int_equal(cg_tape_gradient(tape, cg_sum(out, NULL, 0, 0), sources, 2, grads, NULL), CG_OK);
  cg_tape_free(tape);
  assert_tensor(grads[0], CG_F64, 4, s2211, ten, 1e-12);
  assert_tensor(grads[1], CG_F64, 4, s1221, ten, 1e-12);
}

/* L = sum(BackpropFilter(x, dy)) = sum_{a,b,i,j} x[i+a][j+b] dy[i][j]:
 * dL/ddy[i][j] = sum of x's 2x2 window at (i,j) = [[12,16],[24,28]];
 * dL/dx = the taps covering each cell weighted by sum(dy) over them, here with dy = 1s:
 * [[1,2,1],[2,4,2],[1,2,1]] */
static void test_backprop_filter_tape_gradient(void **state)
{
  static const double ones4[] = {1, 1, 1, 1}, ddy[] = {12, 16, 24, 28};
  static const double dx[] = {1, 2, 1, 2, 4, 2, 1, 2, 1};
  cg_tensor *x = cgt_f64(4, s3311, x1to9), *dy = cgt_f64(4, s1221, ones4);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tape_watch(tape, dy);
  cg_tensor *out = cg_conv2d_backprop_filter(x, s2211, dy, ones, CG_PAD_VALID, ones);
  cg_tensor *sources[2] = {x, dy}, *grads[2];
  assert_int_equal(cg_tape_gradient(tape, cg_sum(out, NULL, 0, 0), sources, 2, grads, NULL), CG_OK);
  cg_tape_free(tape);
  assert_tensor(grads[0], CG_F64, 4, s3311, dx, 1e-12);
  assert_tensor(grads[1], CG_F64, 4, s1221, ddy, 1e-12);
}

/* ======================================================================================
 * GEMM kernels against the direct reference, on random shapes and windows
 * ==================================================================================== */

typedef struct {
  int64_t x[4], f[4];
  int strides[2], dilations[2];
  cg_padding padding;
  cg_window w;
} conv_config;

static uint64_t next_random(uint64_t *state)
{
  *state = *state * 6364136223846793005ull + 1442695040888963407ull;
  return *state >> 33;
}

/* A random configuration that places (VALID windows may not fit: then try again). */
static void random_config(uint64_t *rng, conv_config *c)
{
  for (;;) {
    int64_t in_c = 1 + (int64_t)(next_random(rng) % 3);
    *c = (conv_config){
        .x = {1 + (int64_t)(next_random(rng) % 2), 1 + (int64_t)(next_random(rng) % 7),
              1 + (int64_t)(next_random(rng) % 7), in_c},
        .f = {1 + (int64_t)(next_random(rng) % 3), 1 + (int64_t)(next_random(rng) % 3), in_c,
              1 + (int64_t)(next_random(rng) % 3)},
        .strides = {1 + (int)(next_random(rng) % 3), 1 + (int)(next_random(rng) % 3)},
        .dilations = {1 + (int)(next_random(rng) % 2), 1 + (int)(next_random(rng) % 2)},
        .padding = next_random(rng) % 2 ? CG_PAD_SAME : CG_PAD_VALID};
    cg_window_spec s = {{c->f[0], c->f[1]}, {c->strides[0], c->strides[1]},
                        {c->dilations[0], c->dilations[1]}, c->padding};
    if (cg__window_place("Test", c->x, c->f[3], &s, "", &c->w) == CG_OK) return;
    cg_clear_error();
  }
}

static double *doubles_of(const cg_tensor *t)
{
  int64_t n = cg_tensor_size(t);
  double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  assert_non_null(v);
  cg_tensor_to_f64(t, v, n);
  return v;
}

/* The three ops in dtype d on random data of config c, each against its reference run on
 * the same (rounded) values in double precision. */
static void check_against_reference(const conv_config *c, cg_dtype d, uint64_t seed, double tol)
{
  int64_t y_shape[4];
  cg__window_out_shape(&c->w, y_shape);
  cg_tensor *x = cg_random_uniform(d, 4, c->x, -1, 1, seed);
  cg_tensor *f = cg_random_uniform(d, 4, c->f, -1, 1, seed + 1);
  cg_tensor *dy = cg_random_uniform(d, 4, y_shape, -1, 1, seed + 2);
  double *xv = doubles_of(x), *fv = doubles_of(f), *dyv = doubles_of(dy);
  double *y_ref = malloc((size_t)(cg_tensor_size(dy) + 1) * sizeof(double));
  double *dx_ref = malloc((size_t)(cg_tensor_size(x) + 1) * sizeof(double));
  double *df_ref = malloc((size_t)(cg_tensor_size(f) + 1) * sizeof(double));
  assert_true(y_ref && dx_ref && df_ref);
  cg__conv2d_reference(&c->w, xv, fv, y_ref);
  cg__conv2d_backprop_input_reference(&c->w, fv, dyv, dx_ref);
  cg__conv2d_backprop_filter_reference(&c->w, xv, dyv, df_ref);

  assert_tensor(cg_conv2d(x, f, c->strides, c->padding, c->dilations), d, 4, y_shape, y_ref, tol);
  assert_tensor(cg_conv2d_backprop_input(c->x, f, dy, c->strides, c->padding, c->dilations), d, 4,
                c->x, dx_ref, tol);
  assert_tensor(cg_conv2d_backprop_filter(x, c->f, dy, c->strides, c->padding, c->dilations), d,
                4, c->f, df_ref, tol);
  free(xv), free(fv), free(dyv), free(y_ref), free(dx_ref), free(df_ref);
}

static void test_gemm_matches_reference(void **state)
{
  uint64_t rng = 2024;
  for (int i = 0; i < 40; i++) {
    conv_config c;
    random_config(&rng, &c);
    check_against_reference(&c, CG_F64, 100 + 3 * (uint64_t)i, 1e-12);
    check_against_reference(&c, CG_F32, 500 + 3 * (uint64_t)i, 1e-5);
  }
}

/* 5x5x64 taps make a chunk of the im2col matrix hold 655 rows: 2x34x34 SAME positions take
 * four chunks, and chunk borders fall inside images. */
static void test_gemm_chunks(void **state)
{
  conv_config c = {.x = {2, 34, 34, 64}, .f = {5, 5, 64, 3}, .strides = {1, 1},
                   .dilations = {1, 1}, .padding = CG_PAD_SAME};
  cg_window_spec s = {{5, 5}, {1, 1}, {1, 1}, CG_PAD_SAME};
  assert_int_equal(cg__window_place("Test", c.x, 3, &s, "", &c.w), CG_OK);
  check_against_reference(&c, CG_F64, 7, 1e-12);
}

/* Batch 0 gives empty outputs (and an all-zero filter gradient). */
static void test_empty_batch(void **state)
{
  static const int64_t sx[] = {0, 3, 3, 1}, sy[] = {0, 2, 2, 1};
  static const double zeros[] = {0, 0, 0, 0};
  cg_tensor *x = cg_zeros(CG_F64, 4, sx), *f = cg_ones(CG_F64, 4, s2211);
  cg_tensor *dy = cg_zeros(CG_F64, 4, sy);
  assert_tensor(cg_conv2d(x, f, ones, CG_PAD_VALID, ones), CG_F64, 4, sy, NULL, 0);
  assert_tensor(cg_conv2d_backprop_input(sx, f, dy, ones, CG_PAD_VALID, ones), CG_F64, 4, sx,
                NULL, 0);
  assert_tensor(cg_conv2d_backprop_filter(x, s2211, dy, ones, CG_PAD_VALID, ones), CG_F64, 4,
                s2211, zeros, 0);
}

/* ======================================================================================
 * Gradient-check rows (cases_conv.c): f64 at order 1 and 2, and f32 at order 1
 * ==================================================================================== */

static void run_case(const cg_grad_case *c, cg_dtype d, int order)
{
  cg_gradcheck_report report;
  if (cg_run_grad_case(c, d, order, 42, &report) != CG_OK)
    fail_msg("%s (%s), %s, order %d: %s [%s]", c->op, c->label, cg_dtype_name(d), order,
             report.message, cg_last_error());
}

static bool is_conv_op(const char *op) { return strncmp(op, "Conv2D", 6) == 0; }

static void test_grad_cases(void **state)
{
  int rows = 0;
  for (int i = 0; i < cg_cases_conv_n; i++) {
    const cg_grad_case *c = &cg_cases_conv[i];
    if (!is_conv_op(c->op)) continue; /* pooling rows: test_ops_pool.c */
    assert_true(c->order2);
    run_case(c, CG_F64, 1);
    run_case(c, CG_F64, 2);
    run_case(c, CG_F32, 1);
    rows++;
  }
  assert_true(rows > 0);
}

static void test_every_op_has_a_case(void **state)
{
  static const char *const ops[] = {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"};
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
  spec in[2];
  int64_t strides[2], dilations[2], padding;
  int64_t shape_attr[4]; /* input_shape / filter_shape of the backprop ops */
  cg_status code;
  const char *message;
} bad_input;

#define X(...) {CG_F64, 4, {__VA_ARGS__}}
#define OK_WINDOW {1, 1}, {1, 1}, CG_PAD_VALID
static const bad_input bad_inputs[] = {
    /* Conv2D(x, f) */
    {"Conv2D", {{CG_F64, 3, {3, 3, 1}}, X(2, 2, 1, 1)}, OK_WINDOW, {0}, CG_ESHAPE,
     "Conv2D: input (NHWC) must have rank 4, got [3,3,1]"},
    {"Conv2D", {X(1, 3, 3, 1), {CG_F64, 5, {2, 2, 1, 1, 1}}}, OK_WINDOW, {0}, CG_ESHAPE,
     "Conv2D: filter (HWIO) must have rank 4, got [2,2,1,1,1]"},
    {"Conv2D", {X(1, 3, 3, 2), X(2, 2, 3, 1)}, OK_WINDOW, {0}, CG_ESHAPE,
     "Conv2D: the input has 2 channels but the filter expects 3: input [1,3,3,2], "
     "filter [2,2,3,1]"},
    {"Conv2D", {X(1, 3, 3, 1), X(0, 2, 1, 1)}, OK_WINDOW, {0}, CG_ESHAPE,
     "Conv2D: the filter is empty: input [1,3,3,1], filter [0,2,1,1]"},
    {"Conv2D", {X(1, 3, 3, 1), X(2, 2, 1, 0)}, OK_WINDOW, {0}, CG_ESHAPE,
     "Conv2D: the filter is empty: input [1,3,3,1], filter [2,2,1,0]"},
    {"Conv2D", {X(1, 3, 3, 0), X(2, 2, 0, 1)}, OK_WINDOW, {0}, CG_ESHAPE, "the filter is empty"},
    {"Conv2D", {X(1, 3, 3, 1), X(2, 2, 1, 1)}, {0, 1}, {1, 1}, CG_PAD_VALID, {0}, CG_EINVAL,
     "Conv2D: strides must be positive, got [0,1]: input [1,3,3,1], filter [2,2,1,1]"},
    {"Conv2D", {X(1, 3, 3, 1), X(2, 2, 1, 1)}, {1, -2}, {1, 1}, CG_PAD_SAME, {0}, CG_EINVAL,
     "Conv2D: strides must be positive, got [1,-2]"},
    {"Conv2D", {X(1, 3, 3, 1), X(2, 2, 1, 1)}, {1, 1}, {1, 0}, CG_PAD_SAME, {0}, CG_EINVAL,
     "Conv2D: dilations must be positive, got [1,0]"},
    {"Conv2D", {X(1, 3, 3, 1), X(2, 2, 1, 1)}, {1, 1}, {-1, 1}, CG_PAD_VALID, {0}, CG_EINVAL,
     "Conv2D: dilations must be positive, got [-1,1]"},
    {"Conv2D", {X(1, 3, 3, 1), X(2, 2, 1, 1)}, {1, 1}, {1, 1}, 7, {0}, CG_EINVAL,
     "Conv2D: padding must be CG_PAD_VALID (0) or CG_PAD_SAME (1), got 7"},
    {"Conv2D", {X(1, 2, 2, 1), X(3, 3, 1, 1)}, OK_WINDOW, {0}, CG_ESHAPE,
     "Conv2D: window 3x3 is larger than the 2x2 input under VALID padding: "
     "input [1,2,2,1], filter [3,3,1,1]"},
    {"Conv2D", {X(1, 4, 6, 1), X(2, 2, 1, 1)}, {1, 1}, {4, 1}, CG_PAD_VALID, {0}, CG_ESHAPE,
     "Conv2D: dilated window 5x2 is larger than the 4x6 input"},
    {"Conv2D", {X(1, 3, 3, 1), X(2, 2, 1, 1)}, {1, 1}, {(int64_t)1 << 62, 1}, CG_PAD_SAME, {0},
     CG_EINVAL, "Conv2D: the dilated window is too large"},
    {"Conv2D", {{CG_I32, 4, {1, 3, 3, 1}}, {CG_I32, 4, {2, 2, 1, 1}}}, OK_WINDOW, {0}, CG_EDTYPE,
     "Conv2D: input 0 must be f32 or f64, got i32 [1,3,3,1]"},
    {"Conv2D", {{CG_F32, 4, {1, 3, 3, 1}}, X(2, 2, 1, 1)}, OK_WINDOW, {0}, CG_EDTYPE,
     "Conv2D: dtypes differ: f32 [1,3,3,1] vs f64 [2,2,1,1]"},

    /* Conv2DBackpropInput(f, dy; input_shape) */
    {"Conv2DBackpropInput", {X(2, 2, 1, 1), X(1, 2, 2, 1)}, OK_WINDOW, {1, 4, 4, 1}, CG_ESHAPE,
     "Conv2DBackpropInput: dy has shape [1,2,2,1] but the convolution gives [1,3,3,1]"},
    {"Conv2DBackpropInput", {X(2, 2, 1, 1), X(1, 2, 2, 1)}, OK_WINDOW, {1, -3, 3, 1}, CG_EINVAL,
     "Conv2DBackpropInput: negative dimension in shape [1,-3,3,1]"},
    {"Conv2DBackpropInput", {X(2, 2, 1, 1), X(1, 2, 2, 1)}, OK_WINDOW, {1, 3, 3, 2}, CG_ESHAPE,
     "Conv2DBackpropInput: the input has 2 channels but the filter expects 1"},
    {"Conv2DBackpropInput", {X(2, 2, 1, 1), X(1, 2, 2, 1)}, OK_WINDOW, {1, 1, 1, 1}, CG_ESHAPE,
     "Conv2DBackpropInput: window 2x2 is larger than the 1x1 input"},
    {"Conv2DBackpropInput", {{CG_F64, 3, {2, 2, 1}}, X(1, 2, 2, 1)}, OK_WINDOW, {1, 3, 3, 1},
     CG_ESHAPE, "Conv2DBackpropInput: filter (HWIO) must have rank 4, got [2,2,1]"},
    {"Conv2DBackpropInput", {X(2, 2, 1, 1), {CG_F64, 2, {2, 2}}}, OK_WINDOW, {1, 3, 3, 1},
     CG_ESHAPE, "Conv2DBackpropInput: dy (NHWC) must have rank 4, got [2,2]"},
    {"Conv2DBackpropInput", {X(0, 2, 1, 1), X(1, 2, 2, 1)}, OK_WINDOW, {1, 3, 3, 1}, CG_ESHAPE,
     "Conv2DBackpropInput: the filter is empty"},
    {"Conv2DBackpropInput", {X(2, 2, 1, 1), X(1, 2, 2, 1)}, {0, 0}, {1, 1}, CG_PAD_VALID,
     {1, 3, 3, 1}, CG_EINVAL, "Conv2DBackpropInput: strides must be positive, got [0,0]"},
    {"Conv2DBackpropInput", {X(2, 2, 1, 1), {CG_F32, 4, {1, 2, 2, 1}}}, OK_WINDOW, {1, 3, 3, 1},
     CG_EDTYPE, "Conv2DBackpropInput: dtypes differ"},

    /* Conv2DBackpropFilter(x, dy; filter_shape) */
    {"Conv2DBackpropFilter", {X(1, 3, 3, 1), X(1, 3, 3, 1)}, OK_WINDOW, {2, 2, 1, 1}, CG_ESHAPE,
     "Conv2DBackpropFilter: dy has shape [1,3,3,1] but the convolution gives [1,2,2,1]"},
    {"Conv2DBackpropFilter", {X(1, 3, 3, 1), X(1, 2, 2, 1)}, OK_WINDOW, {2, 0, 1, 1}, CG_ESHAPE,
     "Conv2DBackpropFilter: the filter is empty: input [1,3,3,1], filter [2,0,1,1]"},
    {"Conv2DBackpropFilter", {X(1, 3, 3, 1), X(1, 2, 2, 1)}, OK_WINDOW, {2, 2, 1, -1}, CG_EINVAL,
     "Conv2DBackpropFilter: negative dimension in shape [2,2,1,-1]"},
    {"Conv2DBackpropFilter", {X(1, 3, 3, 2), X(1, 2, 2, 1)}, OK_WINDOW, {2, 2, 1, 1}, CG_ESHAPE,
     "Conv2DBackpropFilter: the input has 2 channels but the filter expects 1"},
    {"Conv2DBackpropFilter", {X(1, 3, 3, 1), X(1, 2, 2, 1)}, {1, 1}, {0, 1}, CG_PAD_VALID,
     {2, 2, 1, 1}, CG_EINVAL, "Conv2DBackpropFilter: dilations must be positive, got [0,1]"},
    {"Conv2DBackpropFilter", {X(1, 3, 3, 1), X(1, 2, 2, 1)}, OK_WINDOW, {4, 4, 1, 1}, CG_ESHAPE,
     "Conv2DBackpropFilter: window 4x4 is larger than the 3x3 input"},
    {"Conv2DBackpropFilter", {{CG_I64, 4, {1, 3, 3, 1}}, {CG_I64, 4, {1, 2, 2, 1}}}, OK_WINDOW,
     {2, 2, 1, 1}, CG_EDTYPE, "Conv2DBackpropFilter: input 0 must be f32 or f64, got i64"},
    {"Conv2DBackpropFilter", {{CG_F64, 1, {9}}, X(1, 2, 2, 1)}, OK_WINDOW, {2, 2, 1, 1}, CG_ESHAPE,
     "Conv2DBackpropFilter: input (NHWC) must have rank 4, got [9]"},
};

static void test_bad_inputs(void **state)
{
  for (size_t r = 0; r < sizeof bad_inputs / sizeof bad_inputs[0]; r++) {
    const bad_input *b = &bad_inputs[r];
    cg_tensor *in[2];
    for (int i = 0; i < 2; i++) in[i] = cg_zeros(b->in[i].dtype, b->in[i].ndim, b->in[i].shape);
    cg_attrs a = {0};
    cg_attrs_set_ints(&a, "strides", b->strides, 2);
    cg_attrs_set_ints(&a, "dilations", b->dilations, 2);
    cg_attrs_set_int(&a, "padding", b->padding);
    if (strcmp(b->op, "Conv2DBackpropInput") == 0)
      cg_attrs_set_ints(&a, "input_shape", b->shape_attr, 4);
    if (strcmp(b->op, "Conv2DBackpropFilter") == 0)
      cg_attrs_set_ints(&a, "filter_shape", b->shape_attr, 4);
    if (cg_call(b->op, in, 2, &a)) fail_msg("bad input row %zu (%s) did not fail", r, b->op);
    assert_error(b->code, b->message);
  }
}

/* Attributes that are missing or of the wrong length. */
static void test_bad_attributes(void **state)
{
  static const int64_t three[3] = {1, 1, 1};
  cg_tensor *x = cg_zeros(CG_F64, 4, s3311), *f = cg_zeros(CG_F64, 4, s2211);
  cg_tensor *dy = cg_zeros(CG_F64, 4, s1221);
  assert_null(cg_conv2d_backprop_input(NULL, f, dy, ones, CG_PAD_VALID, ones));
  assert_error(CG_EINVAL, "Conv2DBackpropInput: attribute input_shape needs 4 ints, got 0");
  assert_null(cg_conv2d_backprop_filter(x, NULL, dy, ones, CG_PAD_VALID, ones));
  assert_error(CG_EINVAL, "Conv2DBackpropFilter: attribute filter_shape needs 4 ints, got 0");
  cg_attrs a = {0};
  cg_attrs_set_ints(&a, "strides", three, 3);
  cg_tensor *in[2] = {x, f};
  assert_null(cg_call("Conv2D", in, 2, &a));
  assert_error(CG_EINVAL, "Conv2D: attribute strides needs 2 ints, got 3");
}

/* A NULL input keeps the first error. */
static void test_null_inputs(void **state)
{
  cg_tensor *f = cg_zeros(CG_F64, 4, s2211);
  assert_null(cg_conv2d(NULL, f, ones, CG_PAD_VALID, ones));
  assert_error(CG_EINVAL, "Conv2D: input 0 is NULL");
  assert_null(cg_conv2d_backprop_input(s3311, f, NULL, ones, CG_PAD_VALID, ones));
  assert_error(CG_EINVAL, "Conv2DBackpropInput: input 1 is NULL");
  assert_null(cg_conv2d_backprop_filter(NULL, s2211, f, ones, CG_PAD_VALID, ones));
  assert_error(CG_EINVAL, "Conv2DBackpropFilter: input 0 is NULL");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(test_window_geometry),
      cgt_test(test_conv2d_valid),
      cgt_test(test_conv2d_same_stride2),
      cgt_test(test_conv2d_same_pads_after),
      cgt_test(test_conv2d_dilated),
      cgt_test(test_conv2d_channels),
      cgt_test(test_backprop_input_values),
      cgt_test(test_backprop_input_same_stride2),
      cgt_test(test_backprop_filter_values),
      cgt_test(test_conv2d_tape_gradient),
      cgt_test(test_backprop_input_tape_gradient),
      cgt_test(test_backprop_filter_tape_gradient),
      cgt_test(test_gemm_matches_reference),
      cgt_test(test_gemm_chunks),
      cgt_test(test_empty_batch),
      cgt_test(test_grad_cases),
      cgt_test(test_every_op_has_a_case),
      cgt_test(test_bad_inputs),
      cgt_test(test_bad_attributes),
      cgt_test(test_null_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

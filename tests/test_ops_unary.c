/* test_ops_unary.c - the element-wise unary ops (src/ops/unary.c): known forward values per
 * dtype, stability at +-1000, gradients at hand-computed points, the gradient-check rows of
 * tools/cgrad/cases_unary.c, ClipByValue (src/ops/clip.c), and the errors each op gives for
 * bad input. */
#include "util.h"
#include "cases.h"
#include <math.h>
#include <string.h>
#include <stdio.h>

typedef cg_tensor *(*unary_fn)(cg_tensor *x);

static cg_tensor *leaky_relu_01(cg_tensor *x) { return cg_leaky_relu(x, 0.1); }

#define MAX_VALUES 6
static cg_tensor *vector_of(cg_dtype d, int n, const double *values)
{
  int64_t shape[1] = {n};
  int32_t i32[MAX_VALUES];
  int64_t i64[MAX_VALUES];
  switch (d) {
  case CG_F32: return cgt_f32(1, shape, values);
  case CG_F64: return cgt_f64(1, shape, values);
  case CG_I32:
    for (int i = 0; i < n; i++) i32[i] = (int32_t)values[i];
    return cg_tensor_from(d, 1, shape, i32);
  case CG_I64:
    for (int i = 0; i < n; i++) i64[i] = (int64_t)values[i];
    return cg_tensor_from(d, 1, shape, i64);
  default: {
    uint8_t b[MAX_VALUES];
    for (int i = 0; i < n; i++) b[i] = values[i] != 0;
    return cg_tensor_from(d, 1, shape, b);
  }
  }
}

/* ======================================================================================
 * Forward: known values
 * ==================================================================================== */

typedef struct {
  const char *name;
  unary_fn fn;
  int n;
  double x[MAX_VALUES], y[MAX_VALUES];
} known_values;

/* Checked in f32 and f64. Values to 17 digits where not exact. */
static const known_values float_values[] = {
    {"Neg", cg_neg, 4, {-1.5, 0, 2, 3.25}, {1.5, 0, -2, -3.25}},
    {"Abs", cg_abs, 4, {-1.5, 0, 2, -3.25}, {1.5, 0, 2, 3.25}},
    {"Sign", cg_sign, 4, {-1.5, 0, 2, -0.25}, {-1, 0, 1, -1}},
    {"Square", cg_square, 4, {-1.5, 0, 2, 3}, {2.25, 0, 4, 9}},
    {"Reciprocal", cg_reciprocal, 4, {-2, 0.5, 4, 0.25}, {-0.5, 2, 0.25, 4}},
    /* sqrt 2 = 1.41421356... */
    {"Sqrt", cg_sqrt, 4, {0, 0.25, 4, 2}, {0, 0.5, 2, 1.4142135623730951}},
    /* 1/sqrt 2 = 0.70710678... */
    {"Rsqrt", cg_rsqrt, 4, {0.25, 1, 4, 2}, {2, 1, 0.5, 0.70710678118654746}},
    /* e, 1/e, e^2 */
    {"Exp", cg_exp, 4, {0, 1, -1, 2}, {1, 2.7182818284590451, 0.36787944117144233, 7.3890560989306495}},
    /* e^1e-10 - 1 = 1e-10 + 5e-21 (kept exactly), e - 1, 1/e - 1 */
    {"Expm1", cg_expm1, 4, {0, 1e-10, 1, -1}, {0, 1.00000000005e-10, 1.7182818284590451, -0.63212055882855767}},
    /* ln 1 = 0, ln 4 = 2 ln 2, ln 0.5 = -ln 2, ln 10 */
    {"Log", cg_log, 4, {1, 4, 0.5, 10}, {0, 1.3862943611198906, -0.69314718055994529, 2.3025850929940459}},
    /* ln(1 + 1e-10) = 1e-10 - 5e-21, ln 2, ln 0.5 */
    {"Log1p", cg_log1p, 4, {0, 1e-10, 1, -0.5}, {0, 9.9999999995000007e-11, 0.69314718055994529, -0.69314718055994529}},
    {"Sin", cg_sin, 4, {0, 0.5, -1, 2}, {0, 0.47942553860420301, -0.8414709848078965, 0.90929742682568171}},
    {"Cos", cg_cos, 4, {0, 0.5, -1, 2}, {1, 0.87758256189037276, 0.54030230586813977, -0.41614683654714241}},
    {"Tanh", cg_tanh, 4, {0, 0.5, -1, 20}, {0, 0.46211715726000974, -0.76159415595576485, 1}},
    /* 1/(1+e^-2), 1/(1+e^2) */
    {"Sigmoid", cg_sigmoid, 4, {0, 2, -2, 40}, {0.5, 0.88079707797788231, 0.11920292202211755, 1}},
    /* ln 2, ln(1+e), ln(1+1/e), 30 + ln(1+e^-30) = 30 + 9.4e-14 */
    {"Softplus", cg_softplus, 4, {0, 1, -1, 30}, {0.69314718055994529, 1.3132616875182228, 0.31326168751822286, 30.000000000000092}},
    {"Relu", cg_relu, 4, {-1.5, 0, 2, -0.25}, {0, 0, 2, 0}},
    {"LeakyRelu", leaky_relu_01, 4, {-1.5, 0, 2, -3}, {-0.15, 0, 2, -0.3}},
    /* e^-1 - 1, e^-3 - 1 */
    {"Elu", cg_elu, 4, {-1, 0, 2, -3}, {-0.63212055882855767, 0, 2, -0.95021293163213605}},
    {"Floor", cg_floor, 4, {-1.5, 0.5, 2.7, -0.2}, {-2, 0, 2, -1}},
    {"Ceil", cg_ceil, 4, {-1.5, 0.5, 2.7, -0.2}, {-1, 1, 3, 0}},
    /* halves go to the even neighbour */
    {"Round", cg_round, 6, {0.5, 1.5, 2.5, -2.5, 2.6, -1.4}, {0, 2, 2, -2, 3, -1}},
};

/* Checked in i32 and i64. */
static const known_values integer_values[] = {
    {"Neg", cg_neg, 4, {-3, 0, 5, 7}, {3, 0, -5, -7}},
    {"Abs", cg_abs, 4, {-3, 0, 5, -7}, {3, 0, 5, 7}},
    {"Sign", cg_sign, 4, {-3, 0, 5, -7}, {-1, 0, 1, -1}},
    {"Square", cg_square, 4, {-3, 0, 5, 7}, {9, 0, 25, 49}},
    {"Relu", cg_relu, 4, {-3, 0, 5, -7}, {0, 0, 5, 0}},
    {"Floor", cg_floor, 4, {-3, 0, 5, 7}, {-3, 0, 5, 7}},
    {"Ceil", cg_ceil, 4, {-3, 0, 5, 7}, {-3, 0, 5, 7}},
    {"Round", cg_round, 4, {-3, 0, 5, 7}, {-3, 0, 5, 7}},
};

static void check_known_values(const known_values *rows, int n_rows, cg_dtype d, double tol)
{
  for (int r = 0; r < n_rows; r++) {
    const known_values *k = &rows[r];
    int64_t shape[1] = {k->n};
    cg_tensor *y = k->fn(vector_of(d, k->n, k->x));
    if (!y) fail_msg("%s (%s): %s", k->name, cg_dtype_name(d), cg_last_error());
    assert_tensor(y, d, 1, shape, k->y, tol);
  }
}

static void test_float_forward(void **state)
{
  int n = sizeof float_values / sizeof float_values[0];
  check_known_values(float_values, n, CG_F64, 1e-12);
  check_known_values(float_values, n, CG_F32, 1e-6);
}

static void test_integer_forward(void **state)
{
  int n = sizeof integer_values / sizeof integer_values[0];
  check_known_values(integer_values, n, CG_I32, 0);
  check_known_values(integer_values, n, CG_I64, 0);
}

/* Integer Neg and Abs wrap around like NumPy: -INT_MIN == INT_MIN (no undefined behaviour). */
static void test_integer_wraparound(void **state)
{
  int64_t one[1] = {1};
  int32_t min32 = INT32_MIN;
  int64_t min64 = INT64_MIN;
  double want32[1] = {(double)INT32_MIN}, want64[1] = {(double)INT64_MIN};
  assert_tensor(cg_neg(cg_tensor_from(CG_I32, 1, one, &min32)), CG_I32, 1, one, want32, 0);
  assert_tensor(cg_abs(cg_tensor_from(CG_I64, 1, one, &min64)), CG_I64, 1, one, want64, 0);
}

/* Forward keeps rank 0 and higher ranks as they are. */
static void test_shapes_kept(void **state)
{
  int64_t cube[3] = {2, 1, 3};
  double x[6] = {1, 4, 9, 16, 25, 36}, y[6] = {1, 2, 3, 4, 5, 6};
  assert_tensor(cg_sqrt(cgt_f64(3, cube, x)), CG_F64, 3, cube, y, 1e-12);
  double s = 2, e2[1] = {7.3890560989306495}; /* e^2 */
  assert_tensor(cg_exp(cgt_f64(0, NULL, &s)), CG_F64, 0, NULL, e2, 1e-12);
}

/* NaN passes through Sign and Relu (a NaN in training should show, not turn into 0). */
static void test_nan_propagates(void **state)
{
  double nan_value[1] = {NAN};
  int64_t one[1] = {1};
  assert_true(isnan(cg_item(cg_relu(cgt_f64(1, one, nan_value)))));
  assert_true(isnan(cg_item(cg_sign(cgt_f32(1, one, nan_value)))));
}

/* Softplus and Sigmoid never overflow: softplus(1000) = 1000, softplus(-1000) = e^-1000 = 0. */
static void test_stable_at_large_magnitudes(void **state)
{
  int64_t two[1] = {2};
  double x[2] = {1000, -1000}, softplus_y[2] = {1000, 0}, sigmoid_y[2] = {1, 0};
  assert_tensor(cg_softplus(cgt_f64(1, two, x)), CG_F64, 1, two, softplus_y, 1e-12);
  assert_tensor(cg_softplus(cgt_f32(1, two, x)), CG_F32, 1, two, softplus_y, 1e-6);
  assert_tensor(cg_sigmoid(cgt_f64(1, two, x)), CG_F64, 1, two, sigmoid_y, 1e-12);
  assert_tensor(cg_sigmoid(cgt_f32(1, two, x)), CG_F32, 1, two, sigmoid_y, 1e-6);
}

/* Every op is registered under its name and cg_call reaches the same kernel. */
static void test_called_by_name(void **state)
{
  int n = sizeof float_values / sizeof float_values[0];
  int64_t shape[1] = {4};
  for (int r = 0; r < n; r++) {
    const known_values *k = &float_values[r];
    if (k->fn == leaky_relu_01) continue; /* its attribute is checked below */
    cg_tensor *x = cgt_f64(1, shape, k->x);
    assert_non_null(cg_find_op(k->name));
    assert_tensor(cg_call(k->name, &x, 1, NULL), CG_F64, 1, shape, k->y, 1e-12);
  }
  /* LeakyRelu without an alpha attribute uses TensorFlow's default, 0.2 */
  double x[4] = {-1, 0, 2, -3}, y[4] = {-0.2, 0, 2, -0.6};
  cg_tensor *t = cgt_f64(1, shape, x);
  assert_tensor(cg_call("LeakyRelu", &t, 1, NULL), CG_F64, 1, shape, y, 1e-12);
}

/* ======================================================================================
 * Gradients at hand-computed points
 * ==================================================================================== */

typedef struct {
  const char *name;
  unary_fn fn;
  double x[2], dx[2]; /* d sum(fn(x)) / dx */
} known_gradient;

static const known_gradient gradients[] = {
    {"Neg", cg_neg, {1, -2}, {-1, -1}},
    {"Abs", cg_abs, {-2, 3}, {-1, 1}},
    {"Sign", cg_sign, {-2, 3}, {0, 0}},
    {"Square", cg_square, {3, -0.5}, {6, -1}},          /* 2x */
    {"Reciprocal", cg_reciprocal, {2, -0.5}, {-0.25, -4}}, /* -1/x^2 */
    {"Sqrt", cg_sqrt, {4, 0.25}, {0.25, 1}},            /* 1/(2 sqrt x) */
    {"Rsqrt", cg_rsqrt, {4, 0.25}, {-0.0625, -4}},      /* -x^(-3/2)/2 */
    {"Exp", cg_exp, {0, 1}, {1, 2.7182818284590451}},   /* e^x */
    {"Expm1", cg_expm1, {0, -1}, {1, 0.36787944117144233}}, /* e^x */
    {"Log", cg_log, {2, 0.5}, {0.5, 2}},                /* 1/x */
    {"Log1p", cg_log1p, {1, -0.5}, {0.5, 2}},           /* 1/(1+x) */
    {"Sin", cg_sin, {0, 1}, {1, 0.54030230586813977}},  /* cos x */
    {"Cos", cg_cos, {0, 1}, {0, -0.8414709848078965}},  /* -sin x */
    /* 1 - tanh(0.5)^2, 1 - tanh(0)^2 */
    {"Tanh", cg_tanh, {0.5, 0}, {0.7864477329659274, 1}},
    /* s(1-s): s(0) = 0.5; s(2) = 0.88079707797788231 */
    {"Sigmoid", cg_sigmoid, {0, 2}, {0.25, 0.10499358540350662}},
    /* sigmoid(0), sigmoid(-2) */
    {"Softplus", cg_softplus, {0, -2}, {0.5, 0.11920292202211755}},
    {"Relu", cg_relu, {-1, 2}, {0, 1}},
    {"LeakyRelu", leaky_relu_01, {-2, 3}, {0.1, 1}},
    {"Elu", cg_elu, {-1, 2}, {0.36787944117144233, 1}}, /* e^-1, 1 */
    {"Floor", cg_floor, {0.3, -2.7}, {0, 0}},
    {"Ceil", cg_ceil, {0.3, -2.7}, {0, 0}},
    {"Round", cg_round, {0.3, -2.7}, {0, 0}},
};

/* d sum(fn(x)) / dx through a tape, or NULL with the error left pending. */
static cg_tensor *tape_gradient(unary_fn fn, cg_tensor *x)
{
  cg_tensor *dx = NULL;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = fn(x);
  cg_tape_end(tape);
  cg_tape_gradient(tape, y, &x, 1, &dx, NULL);
  cg_tape_free(tape);
  return dx;
}

static void test_known_gradients(void **state)
{
  int64_t two[1] = {2};
  for (size_t r = 0; r < sizeof gradients / sizeof gradients[0]; r++) {
    const known_gradient *g = &gradients[r];
    cg_tensor *dx = tape_gradient(g->fn, cgt_f64(1, two, g->x));
    if (!dx) fail_msg("%s: %s", g->name, cg_last_error());
    assert_tensor(dx, CG_F64, 1, two, g->dx, 1e-12);
  }
}

/* First and second derivatives of Softplus stay finite at +-1000: sigmoid(x) and
 * sigmoid(x)(1 - sigmoid(x)) are 1 and 0, and 0 and 0. */
static void test_softplus_gradients_stable(void **state)
{
  int64_t two[1] = {2};
  double at[2] = {1000, -1000}, first[2] = {1, 0}, second[2] = {0, 0};
  cg_tensor *x = cgt_f64(1, two, at), *dx = NULL, *ddx = NULL;
  cg_tape *outer = cg_tape_begin(0);
  cg_tape *inner = cg_tape_begin(0);
  cg_tape_watch(outer, x);
  cg_tape_watch(inner, x);
  cg_tensor *y = cg_softplus(x);
  cg_tape_end(inner);
  assert_int_equal(cg_tape_gradient(inner, y, &x, 1, &dx, NULL), CG_OK);
  cg_tape_end(outer);
  assert_int_equal(cg_tape_gradient(outer, dx, &x, 1, &ddx, NULL), CG_OK);
  cg_tape_free(inner);
  cg_tape_free(outer);
  assert_tensor(dx, CG_F64, 1, two, first, 1e-12);
  assert_tensor(ddx, CG_F64, 1, two, second, 1e-12);
}

/* Every row of the gradient-check table, in float64, at order 1 and 2 where the row asks. */
static void test_gradcheck_table(void **state)
{
  for (int i = 0; i < cg_cases_unary_n; i++) {
    const cg_grad_case *c = &cg_cases_unary[i];
    for (int order = 1; order <= (c->order2 ? 2 : 1); order++) {
      cg_gradcheck_report report;
      cg_status st = cg_run_grad_case(c, CG_F64, order, 1234 + (uint64_t)i, &report);
      if (st != CG_OK)
        fail_msg("%s (%s), order %d: %s %s", c->op, c->label, order, cg_status_name(st),
                 st == CG_ECHECK ? report.message : cg_last_error());
    }
  }
}

/* ======================================================================================
 * ClipByValue: known values, gradients, errors
 * ==================================================================================== */

static cg_tensor *clip_half(cg_tensor *x) { return cg_clip_by_value(x, -0.5, 0.5); }
static cg_status clip_half_traced(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = clip_half(x[0]);
  return cg_status_of(y[0]);
}

/* Below, at lo, inside, at hi, above, NaN (kept, as torch.clamp keeps it); f32 and f64. */
static void test_clip_forward(void **state)
{
  int64_t six[1] = {6};
  double x[6] = {-2, -0.5, 0.25, 0.5, 3, NAN}, y[6] = {-0.5, -0.5, 0.25, 0.5, 0.5, NAN};
  assert_tensor(clip_half(cgt_f64(1, six, x)), CG_F64, 1, six, y, 0);
  assert_tensor(clip_half(cgt_f32(1, six, x)), CG_F32, 1, six, y, 0);
  /* lo == hi: everything but NaN becomes that value */
  double same[6] = {1, 1, 1, 1, 1, NAN};
  assert_tensor(cg_clip_by_value(cgt_f64(1, six, x), 1, 1), CG_F64, 1, six, same, 0);
  /* infinite bounds clip one side only, or nothing */
  double upper[6] = {-2, -0.5, 0.25, 0.5, 1, NAN};
  assert_tensor(cg_clip_by_value(cgt_f32(1, six, x), -INFINITY, 1), CG_F32, 1, six, upper, 0);
  assert_tensor(cg_clip_by_value(cgt_f64(1, six, x), -INFINITY, INFINITY), CG_F64, 1, six, x, 0);
  /* f32 bounds are the floats nearest lo and hi: 0.1 -> 0.100000001490116... */
  int64_t one[1] = {1};
  double small[1] = {0}, lo_f32[1] = {(float)0.1};
  assert_tensor(cg_clip_by_value(cgt_f32(1, one, small), 0.1, 1), CG_F32, 1, one, lo_f32, 0);
}

/* Integers, like Relu and Maximum: whole-number bounds, saturated to the dtype's range. */
static void test_clip_integers(void **state)
{
  const double x[4] = {-3, 0, 5, 7}, y[4] = {-1, 0, 5, 5}, below2[4] = {-3, 0, 2, 2};
  int64_t four[1] = {4};
  const cg_dtype integers[2] = {CG_I32, CG_I64};
  for (int k = 0; k < 2; k++) {
    assert_tensor(cg_clip_by_value(vector_of(integers[k], 4, x), -1, 5), integers[k], 1, four, y, 0);
    assert_tensor(cg_clip_by_value(vector_of(integers[k], 4, x), -INFINITY, 2), integers[k], 1, four,
                  below2, 0);
    assert_tensor(cg_clip_by_value(vector_of(integers[k], 4, x), -1e30, 1e30), integers[k], 1, four,
                  x, 0);
  }
  /* integers carry no gradient */
  cg_tensor *dx = NULL, *xi = vector_of(CG_I32, 4, x);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, xi);
  cg_tensor *yi = cg_clip_by_value(xi, -1, 5);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, yi, &xi, 1, &dx, NULL), CG_OK);
  assert_null(dx);
  cg_tape_free(tape);
}

/* Long enough to run the vector loops' main bodies and tails (kept below the threads'
 * threshold, which would leave the pool's threads alive for valgrind to report): the same
 * as the plain expression, element by element. */
static void test_clip_large_matches_reference(void **state)
{
  int64_t n[1] = {4099};
  cg_tensor *x = cg_random_normal(CG_F32, 1, n, 0, 1, 7);
  cg_tensor *y = cg_clip_by_value(x, -0.75, 1.25);
  assert_non_null(y);
  const float *xs = cg_tensor_data(x), *ys = cg_tensor_data(y);
  for (int64_t i = 0; i < n[0]; i++) {
    float want = xs[i] < -0.75f ? -0.75f : xs[i] > 1.25f ? 1.25f : xs[i];
    if (ys[i] != want) fail_msg("element %lld: %.9g, expected %.9g", (long long)i, ys[i], want);
  }
  cg_tensor *x64 = cg_cast(x, CG_F64), *y64 = cg_clip_by_value(x64, -0.75, 1.25);
  assert_non_null(y64);
  for (int64_t i = 0; i < n[0]; i++) {
    double v = ((const double *)cg_tensor_data(x64))[i];
    double want = v < -0.75 ? -0.75 : v > 1.25 ? 1.25 : v;
    if (((const double *)cg_tensor_data(y64))[i] != want) fail_msg("f64 element %lld", (long long)i);
  }
}

/* d sum(clip(x)) / dx = 1 where lo <= x <= hi (bounds included), else 0; NaN x gets 0. */
static void test_clip_gradient(void **state)
{
  int64_t six[1] = {6};
  double x[6] = {-2, -0.5, 0.25, 0.5, 3, NAN}, want[6] = {0, 1, 1, 1, 0, 0};
  cg_tensor *dx = tape_gradient(clip_half, cgt_f64(1, six, x));
  assert_tensor(dx, CG_F64, 1, six, want, 0);
  cg_tensor *dx32 = tape_gradient(clip_half, cgt_f32(1, six, x));
  assert_tensor(dx32, CG_F32, 1, six, want, 0);

  /* ClipByValueGrad selects: a NaN or inf upstream gradient outside the bounds gives 0,
     inside it passes as it is */
  double g[6] = {NAN, 2, INFINITY, -3, NAN, 5}, selected[6] = {0, 2, INFINITY, -3, 0, 0};
  cg_tensor *upstream = cgt_f64(1, six, g), *xs = cgt_f64(1, six, x);
  cg_tensor *y = NULL, *dxg = NULL;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, xs);
  y = clip_half(xs);
  cg_tape_end(tape);
  cg_grad_opts opts = {.output_gradient = upstream};
  assert_int_equal(cg_tape_gradient(tape, y, &xs, 1, &dxg, &opts), CG_OK);
  cg_tape_free(tape);
  assert_tensor(dxg, CG_F64, 1, six, selected, 0);
}

/* Second order: the gradient of the gradient w.r.t. x is 0 (piecewise constant mask), and
 * forward mode passes the tangent where x is inside. */
static void test_clip_second_order_and_jvp(void **state)
{
  int64_t four[1] = {4};
  double x[4] = {-1, -0.5, 0.3, 2}, zero[4] = {0, 0, 0, 0}, inside[4] = {0, 1, 1, 0};
  cg_tensor *xs = cgt_f64(1, four, x), *dx = NULL, *ddx = NULL;
  cg_tape *outer = cg_tape_begin(0), *inner = cg_tape_begin(0);
  cg_tape_watch(outer, xs);
  cg_tape_watch(inner, xs);
  cg_tensor *y = clip_half(xs);
  cg_tape_end(inner);
  assert_int_equal(cg_tape_gradient(inner, y, &xs, 1, &dx, NULL), CG_OK);
  cg_tape_end(outer);
  cg_grad_opts zeros = {.unconnected = CG_UNCONNECTED_ZERO};
  assert_int_equal(cg_tape_gradient(outer, dx, &xs, 1, &ddx, &zeros), CG_OK);
  cg_tape_free(inner);
  cg_tape_free(outer);
  assert_tensor(dx, CG_F64, 1, four, inside, 0);
  assert_tensor(ddx, CG_F64, 1, four, zero, 0);

  double t[4] = {3, -2, 7, 5}, jv_want[4] = {0, -2, 7, 0}, y_want[4] = {-0.5, -0.5, 0.3, 0.5};
  cg_tensor *tangent = cgt_f64(1, four, t), *yp = NULL, *jv = NULL;
  assert_int_equal(cg_jvp(clip_half_traced, NULL, &xs, &tangent, 1, &yp, &jv, 1), CG_OK);
  assert_tensor(yp, CG_F64, 1, four, y_want, 0);
  assert_tensor(jv, CG_F64, 1, four, jv_want, 0);
}

/* By name with attributes, and without any (no clipping). */
static void test_clip_by_name(void **state)
{
  int64_t four[1] = {4};
  double x[4] = {-2, 0.1, 0.7, 5}, y[4] = {-1, 0.1, 0.5, 0.5};
  cg_tensor *t = cgt_f64(1, four, x);
  cg_attrs a = {0};
  cg_attrs_set_float(&a, "lo", -1);
  cg_attrs_set_float(&a, "hi", 0.5);
  assert_tensor(cg_call("ClipByValue", &t, 1, &a), CG_F64, 1, four, y, 0);
  assert_tensor(cg_call("ClipByValue", &t, 1, NULL), CG_F64, 1, four, x, 0);
}

static void test_clip_bad_inputs(void **state)
{
  int64_t three[1] = {3};
  const double values[3] = {1, 0, 2};
  cg_tensor *x = cgt_f64(1, three, values);
  assert_null(cg_clip_by_value(x, 1, 0));
  assert_error(CG_EINVAL, "ClipByValue: lo must be <= hi, got lo = 1 and hi = 0");
  assert_null(cg_clip_by_value(x, NAN, 1));
  assert_error(CG_EINVAL, "ClipByValue: bounds must be numbers, got lo = nan and hi = 1");
  assert_null(cg_clip_by_value(x, 0, NAN));
  assert_error(CG_EINVAL, "ClipByValue: bounds must be numbers, got lo = 0 and hi = nan");
  assert_null(cg_clip_by_value(NULL, 0, 1));
  assert_error(CG_EINVAL, "ClipByValue: input 0 is NULL");
  assert_null(cg_clip_by_value(vector_of(CG_BOOL, 3, values), 0, 1));
  assert_error(CG_EDTYPE, "ClipByValue: input 0 must be f32, f64, i32 or i64, got bool [3]");
  assert_null(cg_clip_by_value(vector_of(CG_I32, 3, values), 0.5, 3));
  assert_error(CG_EINVAL, "ClipByValue: bounds for i32 must be whole numbers, got lo = 0.5 and hi = 3");

  /* the gradient op: float inputs of one dtype and shape, the same bound rules */
  int64_t two[1] = {2};
  cg_tensor *in[2] = {x, cgt_f64(1, two, values)};
  assert_null(cg_call("ClipByValueGrad", in, 2, NULL));
  assert_error(CG_ESHAPE, "ClipByValueGrad: inputs must have one shape: [3] vs [2]");
  in[1] = cgt_f32(1, three, values);
  assert_null(cg_call("ClipByValueGrad", in, 2, NULL));
  assert_error(CG_EDTYPE, "ClipByValueGrad");
  in[0] = in[1] = vector_of(CG_I64, 3, values);
  assert_null(cg_call("ClipByValueGrad", in, 2, NULL));
  assert_error(CG_EDTYPE, "ClipByValueGrad");
  in[0] = in[1] = x;
  cg_attrs a = {0};
  cg_attrs_set_float(&a, "lo", 2);
  cg_attrs_set_float(&a, "hi", -2);
  assert_null(cg_call("ClipByValueGrad", in, 2, &a));
  assert_error(CG_EINVAL, "ClipByValueGrad: lo must be <= hi, got lo = 2 and hi = -2");
}

/* ======================================================================================
 * The gradient ops TanhGrad, ReluGrad and TanhGradGrad (unary_grad.c)
 * ==================================================================================== */

/* y = {0.5, -0.25, 0.8}, g = {2, 4, -1}, d = {1, -0.5, 3}, by hand:
 * TanhGrad(y, g) = g (1 - y^2) = {1.5, 3.75, -0.36}; ReluGrad(g, y) = g (y > 0) = {2, 0, -1};
 * TanhGradGrad(y, g, d) = d (-2 y g) = {-2, -1, 4.8}. */
static void test_gradient_ops_known_values(void **state)
{
  const double y[3] = {0.5, -0.25, 0.8}, g[3] = {2, 4, -1}, d[3] = {1, -0.5, 3};
  const double tanh_grad[3] = {1.5, 3.75, -0.36}, relu_grad[3] = {2, 0, -1}, tgg[3] = {-2, -1, 4.8};
  int64_t three[1] = {3};
  const cg_dtype dtypes[2] = {CG_F32, CG_F64};
  for (int k = 0; k < 2; k++) {
    double tol = dtypes[k] == CG_F32 ? 1e-6 : 1e-15;
    cg_tensor *Y = vector_of(dtypes[k], 3, y), *G = vector_of(dtypes[k], 3, g),
              *D = vector_of(dtypes[k], 3, d);
    assert_tensor(cg_call("TanhGrad", (cg_tensor *[]){Y, G}, 2, NULL), dtypes[k], 1, three, tanh_grad, tol);
    assert_tensor(cg_call("ReluGrad", (cg_tensor *[]){G, Y}, 2, NULL), dtypes[k], 1, three, relu_grad, tol);
    assert_tensor(cg_call("TanhGradGrad", (cg_tensor *[]){Y, G, D}, 3, NULL), dtypes[k], 1, three,
                  tgg, tol);
  }
}

/* The threaded f32 kernel against the expression, element by element, to the bit. */
static void test_tanh_grad_grad_large_matches_reference(void **state)
{
  enum { N = 100003 };
  int64_t shape[1] = {N};
  cg_tensor *in[3];
  for (int i = 0; i < 3; i++) in[i] = cg_random_uniform(CG_F32, 1, shape, -2, 2, 7 + (uint64_t)i);
  cg_tensor *out = cg_call("TanhGradGrad", in, 3, NULL);
  assert_non_null(out);
  const float *y = cg_tensor_data(in[0]), *g = cg_tensor_data(in[1]), *d = cg_tensor_data(in[2]);
  const float *o = cg_tensor_data(out);
  for (int64_t i = 0; i < N; i++) {
    float want = d[i] * (-2.0f * (y[i] * g[i]));
    if (memcmp(&want, &o[i], sizeof want) != 0) fail_msg("element %lld: %g, want %g", (long long)i, o[i], want);
  }
}

static void test_tanh_grad_grad_bad_inputs(void **state)
{
  const double v[3] = {1, 2, 3};
  int64_t two[1] = {2};
  cg_tensor *x = vector_of(CG_F64, 3, v);
  cg_tensor *in[3] = {x, x, cgt_f64(1, two, v)};
  assert_null(cg_call("TanhGradGrad", in, 3, NULL));
  assert_error(CG_ESHAPE, "TanhGradGrad: inputs must have one shape: [3] vs [2] (input 2)");
  in[2] = vector_of(CG_F32, 3, v);
  assert_null(cg_call("TanhGradGrad", in, 3, NULL));
  assert_error(CG_EDTYPE, "TanhGradGrad");
  in[0] = in[1] = in[2] = vector_of(CG_I32, 3, v);
  assert_null(cg_call("TanhGradGrad", in, 3, NULL));
  assert_error(CG_EDTYPE, "TanhGradGrad");
  in[1] = NULL;
  assert_null(cg_call("TanhGradGrad", in, 3, NULL));
  assert_error(CG_EINVAL, "TanhGradGrad");
  assert_null(cg_call("TanhGradGrad", in, 2, NULL));
}

/* ======================================================================================
 * Bad inputs
 * ==================================================================================== */

typedef struct {
  const char *name;
  unary_fn fn;
  int integer_ok; /* i32 and i64 accepted */
} unary_op;

static const unary_op all_ops[] = {
    {"Neg", cg_neg, 1},         {"Abs", cg_abs, 1},         {"Sign", cg_sign, 1},
    {"Square", cg_square, 1},   {"Reciprocal", cg_reciprocal, 0}, {"Sqrt", cg_sqrt, 0},
    {"Rsqrt", cg_rsqrt, 0},     {"Exp", cg_exp, 0},         {"Expm1", cg_expm1, 0},
    {"Log", cg_log, 0},         {"Log1p", cg_log1p, 0},     {"Sin", cg_sin, 0},
    {"Cos", cg_cos, 0},         {"Tanh", cg_tanh, 0},       {"Sigmoid", cg_sigmoid, 0},
    {"Softplus", cg_softplus, 0}, {"Relu", cg_relu, 1},     {"LeakyRelu", leaky_relu_01, 0},
    {"Elu", cg_elu, 0},         {"Floor", cg_floor, 1},     {"Ceil", cg_ceil, 1},
    {"Round", cg_round, 1},
};

/* Each op: a NULL input, a bool input, and (for the float-only ops) integer inputs. */
static void test_bad_inputs(void **state)
{
  const double values[3] = {1, 0, 2};
  char msg[128];
  for (size_t i = 0; i < sizeof all_ops / sizeof all_ops[0]; i++) {
    const unary_op *op = &all_ops[i];
    assert_null(op->fn(NULL));
    snprintf(msg, sizeof msg, "%s: input 0 is NULL", op->name);
    assert_error(CG_EINVAL, msg);

    assert_null(op->fn(vector_of(CG_BOOL, 3, values)));
    snprintf(msg, sizeof msg, "%s: input 0 must be %s, got bool [3]", op->name,
             op->integer_ok ? "f32, f64, i32 or i64" : "f32 or f64");
    assert_error(CG_EDTYPE, msg);

    if (op->integer_ok) continue;
    const cg_dtype integers[2] = {CG_I32, CG_I64};
    for (int k = 0; k < 2; k++) {
      assert_null(op->fn(vector_of(integers[k], 3, values)));
      snprintf(msg, sizeof msg, "%s: input 0 must be f32 or f64, got %s [3]", op->name,
               cg_dtype_name(integers[k]));
      assert_error(CG_EDTYPE, msg);
    }
  }
}

static void test_leaky_relu_bad_alpha(void **state)
{
  int64_t one[1] = {1};
  double v[1] = {1};
  const double alphas[3] = {NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 3; i++) {
    assert_null(cg_leaky_relu(cgt_f64(1, one, v), alphas[i]));
    assert_error(CG_EINVAL, "LeakyRelu: alpha must be a finite number, got");
  }
}

/* A chain of ops reports the first cause, not the NULL that follows it. */
static void test_error_chain_keeps_cause(void **state)
{
  const double values[2] = {1, 0};
  assert_null(cg_exp(cg_tanh(cg_log(vector_of(CG_BOOL, 2, values)))));
  assert_error(CG_EDTYPE, "Log: input 0 must be f32 or f64, got bool [2]");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(test_float_forward),
      cgt_test(test_integer_forward),
      cgt_test(test_integer_wraparound),
      cgt_test(test_shapes_kept),
      cgt_test(test_nan_propagates),
      cgt_test(test_stable_at_large_magnitudes),
      cgt_test(test_called_by_name),
      cgt_test(test_known_gradients),
      cgt_test(test_softplus_gradients_stable),
      cgt_test(test_gradcheck_table),
      cgt_test(test_clip_forward),
      cgt_test(test_clip_integers),
      cgt_test(test_clip_large_matches_reference),
      cgt_test(test_clip_gradient),
      cgt_test(test_clip_second_order_and_jvp),
      cgt_test(test_clip_by_name),
      cgt_test(test_clip_bad_inputs),
      cgt_test(test_gradient_ops_known_values),
      cgt_test(test_tanh_grad_grad_large_matches_reference),
      cgt_test(test_tanh_grad_grad_bad_inputs),
      cgt_test(test_bad_inputs),
      cgt_test(test_leaky_relu_bad_alpha),
      cgt_test(test_error_chain_keeps_cause),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

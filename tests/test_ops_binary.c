/* test_ops_binary.c - the broadcasting ops (src/ops/binary.c): known forward values per
 * dtype, integer wrap-around and exactness, every broadcast path against a plain loop,
 * gradients at hand-computed points, the gradient-check rows of tools/cgrad/cases_binary.c
 * and the errors each op gives for bad input. */
#include "util.h"
#include "cases.h"
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef cg_tensor *(*binary_fn)(cg_tensor *a, cg_tensor *b);

#define MAX_VALUES 6
typedef struct {
  int ndim;
  int64_t shape[2];
  double v[MAX_VALUES];
} operand;

/* A tensor of dtype d holding o's values (converted; bool: nonzero is true). */
static cg_tensor *tensor_of(cg_dtype d, const operand *o)
{
  int64_t n = 1;
  for (int i = 0; i < o->ndim; i++) n *= o->shape[i];
  int32_t i32[MAX_VALUES];
  int64_t i64[MAX_VALUES];
  uint8_t b[MAX_VALUES];
  switch (d) {
  case CG_F32: return cgt_f32(o->ndim, o->shape, o->v);
  case CG_F64: return cgt_f64(o->ndim, o->shape, o->v);
  case CG_I32:
    for (int64_t i = 0; i < n; i++) i32[i] = (int32_t)o->v[i];
    return cg_tensor_from(d, o->ndim, o->shape, i32);
  case CG_I64:
    for (int64_t i = 0; i < n; i++) i64[i] = (int64_t)o->v[i];
    return cg_tensor_from(d, o->ndim, o->shape, i64);
  default:
    for (int64_t i = 0; i < n; i++) b[i] = o->v[i] != 0;
    return cg_tensor_from(d, o->ndim, o->shape, b);
  }
}

/* ======================================================================================
 * Forward: known values
 * ==================================================================================== */

#define DT(d) (1u << (d))
#define FLOATS (DT(CG_F32) | DT(CG_F64))
#define INTS (DT(CG_I32) | DT(CG_I64))
#define NUMERIC (FLOATS | INTS)
#define BOOLS DT(CG_BOOL)

typedef struct {
  const char *name;
  binary_fn fn;
  unsigned dtypes;  /* DT(d) for each dtype the row runs in                        */
  int bool_output;  /* comparisons and logic                                       */
  operand a, b, y;
} known_values;

static const known_values forward_rows[] = {
    /* [2,3] + [3]: each row plus {10,20,30} */
    {"Add", cg_add, NUMERIC, 0,
     {2, {2, 3}, {1, 2, 3, 4, 5, 6}}, {1, {3}, {10, 20, 30}},
     {2, {2, 3}, {11, 22, 33, 14, 25, 36}}},
    /* rank 0 + [2,2] */
    {"Add", cg_add, NUMERIC, 0,
     {0, {0}, {5}}, {2, {2, 2}, {1, -2, 3, -4}}, {2, {2, 2}, {6, 3, 8, 1}}},
    /* [2,1] - [1,3]: {10,20} column minus {1,2,3} row */
    {"Sub", cg_sub, NUMERIC, 0,
     {2, {2, 1}, {10, 20}}, {2, {1, 3}, {1, 2, 3}}, {2, {2, 3}, {9, 8, 7, 19, 18, 17}}},
    {"Sub", cg_sub, NUMERIC, 0, {1, {3}, {1, 2, 3}}, {0, {0}, {5}}, {1, {3}, {-4, -3, -2}}},
    {"Mul", cg_mul, NUMERIC, 0,
     {2, {2, 3}, {1, -2, 3, -4, 5, -6}}, {2, {2, 3}, {2, 2, 2, -1, -1, -1}},
     {2, {2, 3}, {2, -4, 6, 4, -5, 6}}},
    /* [2,1] * [3]: {2,3} column times {1,10,100} */
    {"Mul", cg_mul, NUMERIC, 0,
     {2, {2, 1}, {2, 3}}, {1, {3}, {1, 10, 100}}, {2, {2, 3}, {2, 20, 200, 3, 30, 300}}},
    /* {1..6} / {2,4,-8}: 1/2, 2/4, 3/-8 = -0.375, 4/2, 5/4, 6/-8 */
    {"Div", cg_div, FLOATS, 0,
     {2, {2, 3}, {1, 2, 3, 4, 5, 6}}, {1, {3}, {2, 4, -8}},
     {2, {2, 3}, {0.5, 0.5, -0.375, 2, 1.25, -0.75}}},
    /* integers truncate toward 0: 7/2 = 3, -7/2 = -3, 7/-2 = -3, -7/-2 = 3 */
    {"Div", cg_div, INTS, 0,
     {1, {4}, {7, -7, 7, -7}}, {1, {4}, {2, 2, -2, -2}}, {1, {4}, {3, -3, -3, 3}}},
    {"Div", cg_div, INTS, 0, {1, {3}, {9, -9, 0}}, {0, {0}, {4}}, {1, {3}, {2, -2, 0}}},
    /* 2^3, 4^0.5, 9^-1 = 1/9 */
    {"Pow", cg_pow, FLOATS, 0,
     {1, {3}, {2, 4, 9}}, {1, {3}, {3, 0.5, -1}}, {1, {3}, {8, 2, 0.1111111111111111}}},
    /* 2^{0, 1, -2, 0.5} = 1, 2, 0.25, sqrt 2 */
    {"Pow", cg_pow, FLOATS, 0,
     {0, {0}, {2}}, {2, {2, 2}, {0, 1, -2, 0.5}}, {2, {2, 2}, {1, 2, 0.25, 1.4142135623730951}}},
    /* 2^10, 3^3, (-2)^3, 0^0 = 1, 5^0, (-1)^7 */
    {"Pow", cg_pow, INTS, 0,
     {1, {6}, {2, 3, -2, 0, 5, -1}}, {1, {6}, {10, 3, 3, 0, 0, 7}},
     {1, {6}, {1024, 27, -8, 1, 1, -1}}},
    /* [2,1] vs [1,3]: max({1,5}, {0,3,7}) */
    {"Maximum", cg_maximum, NUMERIC, 0,
     {2, {2, 1}, {1, 5}}, {2, {1, 3}, {0, 3, 7}}, {2, {2, 3}, {1, 3, 7, 5, 5, 7}}},
    {"Maximum", cg_maximum, NUMERIC, 0, {1, {3}, {-3, 2, -1}}, {0, {0}, {0}}, {1, {3}, {0, 2, 0}}},
    {"Minimum", cg_minimum, NUMERIC, 0,
     {2, {2, 1}, {1, 5}}, {2, {1, 3}, {0, 3, 7}}, {2, {2, 3}, {0, 1, 1, 0, 3, 5}}},
    {"Minimum", cg_minimum, NUMERIC, 0,
     {1, {3}, {-3, 2, -1}}, {0, {0}, {0}}, {1, {3}, {-3, 0, -1}}},
    /* ({1..6} - 3)^2 */
    {"SquaredDifference", cg_squared_difference, NUMERIC, 0,
     {2, {2, 3}, {1, 2, 3, 4, 5, 6}}, {0, {0}, {3}}, {2, {2, 3}, {4, 1, 0, 1, 4, 9}}},
    /* (-1-1)^2, (2+2)^2, 0 */
    {"SquaredDifference", cg_squared_difference, NUMERIC, 0,
     {1, {3}, {-1, 2, 5}}, {1, {3}, {1, -2, 5}}, {1, {3}, {4, 16, 0}}},
    /* comparisons of {1,2,3} with 2 */
    {"Equal", cg_equal, NUMERIC, 1, {1, {3}, {1, 2, 3}}, {0, {0}, {2}}, {1, {3}, {0, 1, 0}}},
    {"NotEqual", cg_not_equal, NUMERIC, 1, {1, {3}, {1, 2, 3}}, {0, {0}, {2}}, {1, {3}, {1, 0, 1}}},
    {"Less", cg_less, NUMERIC, 1, {1, {3}, {1, 2, 3}}, {0, {0}, {2}}, {1, {3}, {1, 0, 0}}},
    {"LessEqual", cg_less_equal, NUMERIC, 1,
     {1, {3}, {1, 2, 3}}, {0, {0}, {2}}, {1, {3}, {1, 1, 0}}},
    {"Greater", cg_greater, NUMERIC, 1, {1, {3}, {1, 2, 3}}, {0, {0}, {2}}, {1, {3}, {0, 0, 1}}},
    {"GreaterEqual", cg_greater_equal, NUMERIC, 1,
     {1, {3}, {1, 2, 3}}, {0, {0}, {2}}, {1, {3}, {0, 1, 1}}},
    /* [2,1] < [3]: {1,3} column against {0,2,4} */
    {"Less", cg_less, NUMERIC, 1,
     {2, {2, 1}, {1, 3}}, {1, {3}, {0, 2, 4}}, {2, {2, 3}, {0, 1, 1, 0, 0, 1}}},
    /* truth tables over (a, b) = (0,0), (0,1), (1,0), (1,1) */
    {"Equal", cg_equal, BOOLS, 1,
     {1, {4}, {0, 0, 1, 1}}, {1, {4}, {0, 1, 0, 1}}, {1, {4}, {1, 0, 0, 1}}},
    {"NotEqual", cg_not_equal, BOOLS, 1,
     {1, {4}, {0, 0, 1, 1}}, {1, {4}, {0, 1, 0, 1}}, {1, {4}, {0, 1, 1, 0}}},
    {"LogicalAnd", cg_logical_and, BOOLS, 1,
     {1, {4}, {0, 0, 1, 1}}, {1, {4}, {0, 1, 0, 1}}, {1, {4}, {0, 0, 0, 1}}},
    {"LogicalOr", cg_logical_or, BOOLS, 1,
     {1, {4}, {0, 0, 1, 1}}, {1, {4}, {0, 1, 0, 1}}, {1, {4}, {0, 1, 1, 1}}},
    /* [2,1] and [2]: {1,0} column against {1,0} row */
    {"LogicalAnd", cg_logical_and, BOOLS, 1,
     {2, {2, 1}, {1, 0}}, {1, {2}, {1, 0}}, {2, {2, 2}, {1, 0, 0, 0}}},
    {"LogicalOr", cg_logical_or, BOOLS, 1,
     {2, {2, 1}, {1, 0}}, {1, {2}, {1, 0}}, {2, {2, 2}, {1, 1, 1, 0}}},
};

static void test_forward_known_values(void **state)
{
  for (size_t r = 0; r < sizeof forward_rows / sizeof forward_rows[0]; r++) {
    const known_values *k = &forward_rows[r];
    for (int d = 0; d < CG_NUM_DTYPES; d++) {
      if (!(k->dtypes & DT(d))) continue;
      cg_tensor *y = k->fn(tensor_of((cg_dtype)d, &k->a), tensor_of((cg_dtype)d, &k->b));
      if (!y)
        fail_msg("%s (%s, row %zu): %s", k->name, cg_dtype_name((cg_dtype)d), r, cg_last_error());
      double tol = d == CG_F32 ? 1e-6 : d == CG_F64 ? 1e-12 : 0;
      /* the row's label stands in for the file name in a failure report */
      cgt_assert_tensor(y, k->bool_output ? CG_BOOL : (cg_dtype)d, k->y.ndim, k->y.shape, k->y.v,
                        tol, k->name, (int)r);
    }
  }
}

static void test_logical_not(void **state)
{
  const operand x = {2, {2, 2}, {0, 1, 1, 0}};
  const double want[4] = {1, 0, 0, 1};
  assert_tensor(cg_logical_not(tensor_of(CG_BOOL, &x)), CG_BOOL, 2, x.shape, want, 0);
}

/* cond [2,1] picks a row of a [3] or b (rank 0): [[a], [b b b]]. Every dtype. */
static void test_where_values(void **state)
{
  const operand cond = {2, {2, 1}, {1, 0}}, a = {1, {3}, {1, 2, 3}}, b = {0, {0}, {-1}};
  const operand a_bool = {1, {3}, {1, 0, 1}}, b_bool = {0, {0}, {0}};
  const int64_t shape[2] = {2, 3};
  const double want[6] = {1, 2, 3, -1, -1, -1}, want_bool[6] = {1, 0, 1, 0, 0, 0};
  for (int d = 0; d < CG_BOOL; d++) {
    cg_tensor *y = cg_where(tensor_of(CG_BOOL, &cond), tensor_of((cg_dtype)d, &a),
                            tensor_of((cg_dtype)d, &b));
    assert_tensor(y, (cg_dtype)d, 2, shape, want, 0);
  }
  cg_tensor *y = cg_where(tensor_of(CG_BOOL, &cond), tensor_of(CG_BOOL, &a_bool),
                          tensor_of(CG_BOOL, &b_bool));
  assert_tensor(y, CG_BOOL, 2, shape, want_bool, 0);
}

/* Integer arithmetic wraps around (two's complement) as in NumPy, never undefined:
 * INT_MAX + 1 == INT_MIN, INT_MIN / -1 == INT_MIN, 2^32 == 0 in i32, 2^63 == INT64_MIN. */
static void test_integer_wraparound(void **state)
{
  int64_t one[1] = {1};
  int32_t max32 = INT32_MAX, min32 = INT32_MIN, one32 = 1, minus32 = -1, two32 = 2, e32 = 32;
  int64_t max64 = INT64_MAX, min64 = INT64_MIN, one64 = 1, minus64 = -1, two64 = 2, e63 = 63;
#define I32(v) cg_tensor_from(CG_I32, 1, one, &(v))
#define I64(v) cg_tensor_from(CG_I64, 1, one, &(v))
  assert_int_equal(*(int32_t *)cg_tensor_data(cg_add(I32(max32), I32(one32))), INT32_MIN);
  assert_int_equal(*(int32_t *)cg_tensor_data(cg_div(I32(min32), I32(minus32))), INT32_MIN);
  assert_int_equal(*(int32_t *)cg_tensor_data(cg_pow(I32(two32), I32(e32))), 0);
  assert_true(*(int64_t *)cg_tensor_data(cg_add(I64(max64), I64(one64))) == INT64_MIN);
  assert_true(*(int64_t *)cg_tensor_data(cg_sub(I64(min64), I64(one64))) == INT64_MAX);
  assert_true(*(int64_t *)cg_tensor_data(cg_div(I64(min64), I64(minus64))) == INT64_MIN);
  assert_true(*(int64_t *)cg_tensor_data(cg_pow(I64(two64), I64(e63))) == INT64_MIN);
#undef I32
#undef I64
}

/* i64 kernels compare and pick exact integers, beyond the 2^53 a double holds exactly. */
static void test_i64_exact_beyond_double(void **state)
{
  int64_t one[1] = {1};
  int64_t big = (INT64_C(1) << 53) + 1, below = INT64_C(1) << 53;
  cg_tensor *a = cg_tensor_from(CG_I64, 1, one, &big), *b = cg_tensor_from(CG_I64, 1, one, &below);
  assert_int_equal(*(uint8_t *)cg_tensor_data(cg_equal(a, b)), 0);
  assert_int_equal(*(uint8_t *)cg_tensor_data(cg_greater(a, b)), 1);
  assert_true(*(int64_t *)cg_tensor_data(cg_maximum(b, a)) == big);
  assert_true(*(int64_t *)cg_tensor_data(cg_sub(a, b)) == 1);
}

/* Float division by 0 gives inf and nan (no error); a NaN wins Maximum and Minimum. */
static void test_float_special_values(void **state)
{
  int64_t three[1] = {3};
  double num[3] = {1, -1, 0}, zero[3] = {0, 0, 0};
  double nan_one[3] = {NAN, 1, 2}, one_nan[3] = {1, NAN, 2};
  cg_tensor *q = cg_div(cgt_f64(1, three, num), cgt_f64(1, three, zero));
  assert_true(isinf(cg_tensor_get(q, 0)) && cg_tensor_get(q, 0) > 0);
  assert_true(isinf(cg_tensor_get(q, 1)) && cg_tensor_get(q, 1) < 0);
  assert_true(isnan(cg_tensor_get(q, 2)));
  cg_tensor *a = cgt_f32(1, three, nan_one), *b = cgt_f32(1, three, one_nan);
  cg_tensor *mx = cg_maximum(a, b), *mn = cg_minimum(a, b);
  assert_true(isnan(cg_tensor_get(mx, 0)) && isnan(cg_tensor_get(mx, 1)));
  assert_true(isnan(cg_tensor_get(mn, 0)) && isnan(cg_tensor_get(mn, 1)));
  assert_true(cg_tensor_get(mx, 2) == 2 && cg_tensor_get(mn, 2) == 2);
}

/* An empty broadcast result runs no kernel, so an integer 0 divisor is no error there. */
static void test_empty_output(void **state)
{
  int64_t empty[2] = {0, 3}, three[1] = {3};
  int32_t zeros[3] = {0, 0, 0};
  cg_tensor *y = cg_div(cg_zeros(CG_I32, 2, empty), cg_tensor_from(CG_I32, 1, three, zeros));
  assert_non_null(y);
  assert_int_equal(cg_tensor_size(y), 0);
  assert_int_equal(cg_tensor_dim(y, 0), 0);
}

/* Every op is registered by name with the right flags and a gradient where it has one. */
static void test_registered(void **state)
{
  static const char *const differentiable[] = {"Add", "Sub", "Mul", "Div", "Pow", "Maximum",
                                               "Minimum", "SquaredDifference", "Where"};
  static const char *const not_differentiable[] = {
      "Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual",
      "LogicalAnd", "LogicalOr", "LogicalNot"};
  for (size_t i = 0; i < sizeof differentiable / sizeof differentiable[0]; i++) {
    const cg_op_def *def = cg_find_op(differentiable[i]);
    assert_non_null(def);
    assert_false(def->flags & CG_OP_NOT_DIFFERENTIABLE);
    assert_true(cg_has_gradient(differentiable[i]));
  }
  for (size_t i = 0; i < sizeof not_differentiable / sizeof not_differentiable[0]; i++) {
    const cg_op_def *def = cg_find_op(not_differentiable[i]);
    assert_non_null(def);
    assert_true(def->flags & CG_OP_NOT_DIFFERENTIABLE);
  }
  /* cg_call reaches the same kernel: {1,2} - {3,5} */
  int64_t two[1] = {2};
  double a[2] = {1, 2}, b[2] = {3, 5}, want[2] = {-2, -3};
  cg_tensor *in[2] = {cgt_f64(1, two, a), cgt_f64(1, two, b)};
  assert_tensor(cg_call("Sub", in, 2, NULL), CG_F64, 1, two, want, 0);
}

/* ======================================================================================
 * Every broadcast path (same shape, one-element side, row walk) against a plain loop
 * ==================================================================================== */

typedef struct {
  int ndim;
  int64_t shape[3];
} shape_of;

/* Deterministic values in [-1, 1) (an LCG; the test needs variety, not quality). */
static void fill_values(double *v, int64_t n, uint64_t *seed)
{
  for (int64_t i = 0; i < n; i++) {
    *seed = *seed * 6364136223846793005u + 1442695040888963407u;
    v[i] = (double)(*seed >> 11) / (double)(UINT64_C(1) << 53) * 2 - 1;
  }
}

static int64_t size_of(const shape_of *s)
{
  int64_t n = 1;
  for (int i = 0; i < s->ndim; i++) n *= s->shape[i];
  return n;
}

/* NumPy's broadcast of shapes a and b (they are known to fit). */
static shape_of broadcast(const shape_of *a, const shape_of *b)
{
  shape_of out = {a->ndim > b->ndim ? a->ndim : b->ndim, {0}};
  for (int i = 0; i < out.ndim; i++) {
    int ia = i - (out.ndim - a->ndim), ib = i - (out.ndim - b->ndim);
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    out.shape[i] = da == 1 ? db : da;
  }
  return out;
}

/* Flat offset into an operand of shape s for the element at flat index i of out. */
static int64_t offset_in(const shape_of *s, const shape_of *out, int64_t i)
{
  int64_t idx[3] = {0, 0, 0}, off = 0;
  for (int d = out->ndim - 1; d >= 0; d--) {
    idx[d] = i % out->shape[d];
    i /= out->shape[d];
  }
  for (int d = 0; d < s->ndim; d++) {
    int64_t k = s->shape[d] == 1 ? 0 : idx[d + out->ndim - s->ndim];
    off = off * s->shape[d] + k;
  }
  return off;
}

static const shape_of path_shapes[][2] = {
    {{2, {3, 4}}, {2, {3, 4}}},       /* same shape                         */
    {{2, {3, 4}}, {0, {0}}},          /* b one element                      */
    {{0, {0}}, {2, {3, 4}}},          /* a one element                      */
    {{1, {1}}, {1, {5}}},             /* a [1]                              */
    {{2, {3, 4}}, {1, {4}}},          /* rows: b repeats per row            */
    {{2, {3, 1}}, {2, {1, 4}}},       /* rows: a repeats along a row        */
    {{3, {2, 1, 4}}, {2, {3, 1}}},    /* both broadcast in different axes   */
    {{3, {2, 3, 4}}, {3, {2, 1, 4}}}, /* middle axis                        */
    {{3, {5, 1, 1}}, {3, {1, 1, 6}}}, /* a repeats a whole row              */
    {{2, {2, 1}}, {3, {2, 1, 1}}},    /* neither moves along a row of 1     */
};

static void test_broadcast_paths_match_loop(void **state)
{
  uint64_t seed = 42;
  for (size_t p = 0; p < sizeof path_shapes / sizeof path_shapes[0]; p++) {
    const shape_of *sa = &path_shapes[p][0], *sb = &path_shapes[p][1];
    shape_of so = broadcast(sa, sb);
    double a[24], b[24], want[48];
    fill_values(a, size_of(sa), &seed);
    fill_values(b, size_of(sb), &seed);
    for (int64_t i = 0; i < size_of(&so); i++)
      want[i] = a[offset_in(sa, &so, i)] - b[offset_in(sb, &so, i)];
    /* Sub is not symmetric, so swapped operands would show */
    cg_tensor *y = cg_sub(cgt_f64(sa->ndim, sa->shape, a), cgt_f64(sb->ndim, sb->shape, b));
    if (!y) fail_msg("shapes %zu: %s", p, cg_last_error());
    assert_tensor(y, CG_F64, so.ndim, so.shape, want, 0);
    cg_tensor *y32 = cg_sub(cgt_f32(sa->ndim, sa->shape, a), cgt_f32(sb->ndim, sb->shape, b));
    assert_tensor(y32, CG_F32, so.ndim, so.shape, want, 1e-6);

    /* Where over the same shapes, with a condition shaped like a */
    uint8_t cond[24];
    for (int64_t i = 0; i < size_of(sa); i++) cond[i] = a[i] > 0;
    for (int64_t i = 0; i < size_of(&so); i++)
      want[i] = cond[offset_in(sa, &so, i)] ? b[offset_in(sb, &so, i)] : -1;
    cg_tensor *w = cg_where(cg_tensor_from(CG_BOOL, sa->ndim, sa->shape, cond),
                            cgt_f64(sb->ndim, sb->shape, b), cg_scalar(CG_F64, -1));
    assert_tensor(w, CG_F64, so.ndim, so.shape, want, 0);
  }
}

/* ======================================================================================
 * Gradients at hand-computed points
 * ==================================================================================== */

typedef struct {
  const char *name;
  binary_fn fn;
  operand a, b, da, db; /* d sum(fn(a, b)) / da, / db */
} known_gradient;

static const known_gradient gradients[] = {
    /* b [3] is broadcast over 2 rows: its gradient sums them */
    {"Add", cg_add, {2, {2, 3}, {1, 2, 3, 4, 5, 6}}, {1, {3}, {1, 2, 3}},
     {2, {2, 3}, {1, 1, 1, 1, 1, 1}}, {1, {3}, {2, 2, 2}}},
    {"Sub", cg_sub, {0, {0}, {5}}, {2, {2, 2}, {1, 2, 3, 4}}, {0, {0}, {4}},
     {2, {2, 2}, {-1, -1, -1, -1}}},
    /* da = b = 4, db = sum a = 6 */
    {"Mul", cg_mul, {1, {3}, {1, 2, 3}}, {0, {0}, {4}}, {1, {3}, {4, 4, 4}}, {0, {0}, {6}}},
    /* da = 1/b, db = -a/b^2 = -1/4, -2/16 */
    {"Div", cg_div, {1, {2}, {1, 2}}, {1, {2}, {2, 4}}, {1, {2}, {0.5, 0.25}},
     {1, {2}, {-0.25, -0.125}}},
    /* da = b a^(b-1) = 3*4, 2*3; db = a^b ln a = 8 ln 2, 9 ln 3 */
    {"Pow", cg_pow, {1, {2}, {2, 3}}, {1, {2}, {3, 2}}, {1, {2}, {12, 6}},
     {1, {2}, {5.545177444479562, 9.887510598012987}}},
    /* at a = 0: da = 2 * 0^1 = 0, db masked to 0 (not 0 * -inf); at 2^0: db = ln 2 */
    {"Pow", cg_pow, {1, {2}, {0, 2}}, {1, {2}, {2, 0}}, {1, {2}, {0, 0}},
     {1, {2}, {0, 0.6931471805599453}}},
    /* ties (first element) go to a */
    {"Maximum", cg_maximum, {1, {3}, {1, 2, 3}}, {1, {3}, {1, 3, 2}}, {1, {3}, {1, 0, 1}},
     {1, {3}, {0, 1, 0}}},
    {"Minimum", cg_minimum, {1, {3}, {1, 2, 3}}, {1, {3}, {1, 3, 2}}, {1, {3}, {1, 1, 0}},
     {1, {3}, {0, 0, 1}}},
    /* da = 2(a - b) = 4, -1; db = -da */
    {"SquaredDifference", cg_squared_difference, {1, {2}, {3, 0}}, {1, {2}, {1, 0.5}},
     {1, {2}, {4, -1}}, {1, {2}, {-4, 1}}},
};

/* d sum(y) / d sources through a tape (seed: ones); fails the test on error. */
static void tape_gradients(cg_tensor *(*build)(cg_tensor *const *x, const void *fn), const void *fn,
                           cg_tensor *const *x, int n, cg_tensor **dx, const char *name)
{
  cg_tape *tape = cg_tape_begin(0);
  for (int i = 0; i < n; i++)
    if (cg_dtype_is_float(cg_tensor_dtype(x[i]))) cg_tape_watch(tape, x[i]);
  cg_tensor *y = build(x, fn);
  cg_tape_end(tape);
  cg_status st = cg_tape_gradient(tape, y, x, n, dx, NULL);
  cg_tape_free(tape);
  if (st != CG_OK) fail_msg("%s: %s", name, cg_last_error());
}

static cg_tensor *apply_binary(cg_tensor *const *x, const void *fn)
{
  return (*(const binary_fn *)fn)(x[0], x[1]);
}

static cg_tensor *apply_where(cg_tensor *const *x, const void *fn)
{
  return cg_where(x[0], x[1], x[2]);
}

static void test_known_gradients(void **state)
{
  for (size_t r = 0; r < sizeof gradients / sizeof gradients[0]; r++) {
    const known_gradient *g = &gradients[r];
    cg_tensor *x[2] = {tensor_of(CG_F64, &g->a), tensor_of(CG_F64, &g->b)}, *dx[2];
    tape_gradients(apply_binary, &g->fn, x, 2, dx, g->name);
    cgt_assert_tensor(dx[0], CG_F64, g->da.ndim, g->da.shape, g->da.v, 1e-12, g->name, (int)r);
    cgt_assert_tensor(dx[1], CG_F64, g->db.ndim, g->db.shape, g->db.v, 1e-12, g->name, (int)r);
  }
}

/* cond {true, false} over a {1,2} and b (rank 0): da = {1, 0}, db = 1, cond none. */
static void test_where_gradient(void **state)
{
  const operand cond = {1, {2}, {1, 0}}, a = {1, {2}, {1, 2}}, b = {0, {0}, {3}};
  cg_tensor *x[3] = {tensor_of(CG_BOOL, &cond), tensor_of(CG_F64, &a), tensor_of(CG_F64, &b)};
  cg_tensor *dx[3];
  tape_gradients(apply_where, NULL, x, 3, dx, "Where");
  const double da[2] = {1, 0}, db[1] = {1};
  assert_null(dx[0]);
  assert_tensor(dx[1], CG_F64, 1, a.shape, da, 0);
  assert_tensor(dx[2], CG_F64, 0, NULL, db, 0);
}

/* Nodes cg_gradients adds for d op(a, b) / d sources: sources 1 is a, 2 is b, 3 both. */
static size_t gradient_nodes(binary_fn fn, int sources)
{
  int64_t two[1] = {2};
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x[2] = {cg_placeholder(CG_F64, 1, two, "a"), cg_placeholder(CG_F64, 1, two, "b")};
  cg_tensor *y = fn ? fn(x[0], x[1]) : cg_where(cg_greater(x[0], x[1]), x[0], x[1]);
  cg_graph_exit(g);
  cg_graph_stats before, after;
  cg_tensor *xs[2], *dx[2];
  int n = 0;
  for (int i = 0; i < 2; i++)
    if (sources & (1 << i)) xs[n++] = x[i];
  assert_int_equal(cg_graph_get_stats(g, &before), CG_OK);
  assert_int_equal(cg_gradients(&y, 1, xs, n, NULL, dx, NULL), CG_OK);
  assert_int_equal(cg_graph_get_stats(g, &after), CG_OK);
  cg_graph_free(g);
  return after.nodes - before.nodes;
}

/* A gradient nobody asked for is not built: fewer gradient nodes for one source than two. */
static void test_unneeded_gradients_not_built(void **state)
{
  const struct {
    const char *name;
    binary_fn fn;
    bool a_alone_is_cheaper, b_alone_is_cheaper;
  } ops[] = {{"Sub", cg_sub, true, false},  {"Mul", cg_mul, true, true},
             {"Div", cg_div, true, false},  {"Pow", cg_pow, true, true},
             {"Maximum", cg_maximum, true, true}, {"Minimum", cg_minimum, true, true},
             {"SquaredDifference", cg_squared_difference, true, false},
             {"Where", NULL, true, true}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    size_t both = gradient_nodes(ops[i].fn, 3), a = gradient_nodes(ops[i].fn, 1),
           b = gradient_nodes(ops[i].fn, 2);
    if ((ops[i].a_alone_is_cheaper && a >= both) || (ops[i].b_alone_is_cheaper && b >= both))
      fail_msg("%s: %zu gradient nodes for a, %zu for b, %zu for both", ops[i].name, a, b, both);
  }
}

/* Every row of the gradient-check table, in float64, at order 1 and 2 where the row asks. */
static void test_gradcheck_table(void **state)
{
  for (int i = 0; i < cg_cases_binary_n; i++) {
    const cg_grad_case *c = &cg_cases_binary[i];
    for (int order = 1; order <= (c->order2 ? 2 : 1); order++) {
      cg_gradcheck_report report;
      cg_status st = cg_run_grad_case(c, CG_F64, order, 4321 + (uint64_t)i, &report);
      if (st != CG_OK)
        fail_msg("%s (%s), order %d: %s %s", c->op, c->label, order, cg_status_name(st),
                 st == CG_ECHECK ? report.message : cg_last_error());
    }
  }
}

/* ======================================================================================
 * Bad inputs
 * ==================================================================================== */

typedef struct {
  const char *name;
  binary_fn fn;
  const char *dtypes; /* as the dtype error lists them */
} binary_op;

static const binary_op all_ops[] = {
    {"Add", cg_add, "f32, f64, i32 or i64"},
    {"Sub", cg_sub, "f32, f64, i32 or i64"},
    {"Mul", cg_mul, "f32, f64, i32 or i64"},
    {"Div", cg_div, "f32, f64, i32 or i64"},
    {"Pow", cg_pow, "f32, f64, i32 or i64"},
    {"Maximum", cg_maximum, "f32, f64, i32 or i64"},
    {"Minimum", cg_minimum, "f32, f64, i32 or i64"},
    {"SquaredDifference", cg_squared_difference, "f32, f64, i32 or i64"},
    {"Equal", cg_equal, "f32, f64, i32, i64 or bool"},
    {"NotEqual", cg_not_equal, "f32, f64, i32, i64 or bool"},
    {"Less", cg_less, "f32, f64, i32 or i64"},
    {"LessEqual", cg_less_equal, "f32, f64, i32 or i64"},
    {"Greater", cg_greater, "f32, f64, i32 or i64"},
    {"GreaterEqual", cg_greater_equal, "f32, f64, i32 or i64"},
    {"LogicalAnd", cg_logical_and, "bool"},
    {"LogicalOr", cg_logical_or, "bool"},
};

/* Each two-input op: NULL inputs, mismatched dtypes, shapes that do not broadcast, and a
 * dtype it does not take (f32 for logic, bool for the rest but Equal and NotEqual). */
static void test_bad_inputs(void **state)
{
  const operand v2 = {1, {2}, {1, 2}}, v3 = {1, {3}, {1, 0, 1}}, m23 = {2, {2, 3}, {0}},
                v4 = {1, {4}, {0}};
  char msg[160];
  for (size_t i = 0; i < sizeof all_ops / sizeof all_ops[0]; i++) {
    const binary_op *op = &all_ops[i];
    bool logic = strcmp(op->dtypes, "bool") == 0;
    cg_dtype good = logic ? CG_BOOL : CG_F64;

    assert_null(op->fn(NULL, tensor_of(good, &v2)));
    snprintf(msg, sizeof msg, "%s: input 0 is NULL", op->name);
    assert_error(CG_EINVAL, msg);
    assert_null(op->fn(tensor_of(good, &v2), NULL));
    snprintf(msg, sizeof msg, "%s: input 1 is NULL", op->name);
    assert_error(CG_EINVAL, msg);

    assert_null(op->fn(tensor_of(CG_F32, &v2), tensor_of(CG_F64, &v2)));
    snprintf(msg, sizeof msg, "%s: dtypes differ: f32 [2] vs f64 [2]", op->name);
    assert_error(CG_EDTYPE, msg);

    assert_null(op->fn(tensor_of(good, &m23), tensor_of(good, &v4)));
    snprintf(msg, sizeof msg, "%s: shapes do not broadcast: [2,3] vs [4]", op->name);
    assert_error(CG_ESHAPE, msg);

    if (strstr(op->dtypes, "bool") && !logic) continue; /* Equal, NotEqual take everything */
    cg_dtype bad = logic ? CG_F32 : CG_BOOL;
    assert_null(op->fn(tensor_of(bad, &v3), tensor_of(bad, &v3)));
    snprintf(msg, sizeof msg, "%s: inputs must be %s, got %s [3]", op->name, op->dtypes,
             cg_dtype_name(bad));
    assert_error(CG_EDTYPE, msg);
  }
}

/* Values an integer kernel cannot compute are errors from the kernel, not crashes. */
static void test_bad_integer_values(void **state)
{
  const operand a = {1, {3}, {1, 2, 3}}, zero_inside = {1, {3}, {1, 0, 2}}, zero = {0, {0}, {0}},
                negative = {1, {3}, {2, -1, 0}};
  assert_null(cg_div(tensor_of(CG_I32, &a), tensor_of(CG_I32, &zero_inside)));
  assert_error(CG_EINVAL, "Div: integer division by zero: divisor i32 [3] has a 0 at 1");
  assert_null(cg_div(tensor_of(CG_I64, &a), tensor_of(CG_I64, &zero)));
  assert_error(CG_EINVAL, "Div: integer division by zero: divisor i64 [] has a 0 at 0");
  assert_null(cg_pow(tensor_of(CG_I32, &a), tensor_of(CG_I32, &negative)));
  assert_error(CG_EINVAL, "Pow: negative integer exponent -1 in i32 [3]");
  assert_null(cg_pow(tensor_of(CG_I64, &a), tensor_of(CG_I64, &negative)));
  assert_error(CG_EINVAL, "Pow: negative integer exponent -1 in i64 [3]");
}

static void test_bad_logical_not_and_where(void **state)
{
  const operand v2 = {1, {2}, {1, 0}}, v3 = {1, {3}, {1, 2, 3}};
  assert_null(cg_logical_not(tensor_of(CG_I32, &v3)));
  assert_error(CG_EDTYPE, "LogicalNot: input must be bool, got i32 [3]");
  assert_null(cg_logical_not(NULL));
  assert_error(CG_EINVAL, "LogicalNot: input 0 is NULL");

  cg_tensor *cond = tensor_of(CG_BOOL, &v2), *a = tensor_of(CG_F64, &v2);
  assert_null(cg_where(tensor_of(CG_F64, &v2), a, a));
  assert_error(CG_EDTYPE, "Where: condition must be bool, got f64 [2]");
  assert_null(cg_where(cond, tensor_of(CG_F32, &v2), a));
  assert_error(CG_EDTYPE, "Where: dtypes differ: f32 [2] vs f64 [2]");
  assert_null(cg_where(cond, tensor_of(CG_F64, &v3), tensor_of(CG_F64, &v3)));
  assert_error(CG_ESHAPE, "Where: shapes do not broadcast: cond [2], a [3], b [3]");
  assert_null(cg_where(cond, a, tensor_of(CG_F64, &v3)));
  assert_error(CG_ESHAPE, "Where: shapes do not broadcast: cond [2], a [2], b [3]");
  assert_null(cg_where(cond, a, NULL));
  assert_error(CG_EINVAL, "Where: input 2 is NULL");
}

/* A chain of ops reports the first cause, not the NULL that follows it. */
static void test_error_chain_keeps_cause(void **state)
{
  const operand a = {1, {2}, {1, 2}}, zero = {0, {0}, {0}};
  cg_tensor *x = tensor_of(CG_I32, &a);
  assert_null(cg_add(cg_mul(cg_div(x, tensor_of(CG_I32, &zero)), x), x));
  assert_error(CG_EINVAL, "Div: integer division by zero");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(test_forward_known_values),
      cgt_test(test_logical_not),
      cgt_test(test_where_values),
      cgt_test(test_integer_wraparound),
      cgt_test(test_i64_exact_beyond_double),
      cgt_test(test_float_special_values),
      cgt_test(test_empty_output),
      cgt_test(test_registered),
      cgt_test(test_broadcast_paths_match_loop),
      cgt_test(test_known_gradients),
      cgt_test(test_where_gradient),
      cgt_test(test_unneeded_gradients_not_built),
      cgt_test(test_gradcheck_table),
      cgt_test(test_bad_inputs),
      cgt_test(test_bad_integer_values),
      cgt_test(test_bad_logical_not_and_where),
      cgt_test(test_error_chain_keeps_cause),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

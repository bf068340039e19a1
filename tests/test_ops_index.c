/* test_ops_index.c - Cast, Identity, StopGradient, ZerosLike, OnesLike, AddN, Gather,
 * UnsortedSegmentSum and OneHot: known values per dtype, gradients at hand-computed points,
 * the family's gradient-check rows, and a table of bad inputs with their exact errors. */
#include "util.h"
#include "cases.h"
#include <math.h>
#include <string.h>

static const cg_dtype all_dtypes[] = {CG_F32, CG_F64, CG_I32, CG_I64, CG_BOOL};
enum { N_DTYPES = sizeof all_dtypes / sizeof all_dtypes[0] };

/* A tensor of dtype d holding values (converted by C, so keep them representable). */
static cg_tensor *typed(cg_dtype d, int ndim, const int64_t *shape, const double *values)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  union {
    float f32[64];
    double f64[64];
    int32_t i32[64];
    int64_t i64[64];
    uint8_t b[64];
  } buf;
  assert_true(n <= 64);
  for (int64_t i = 0; i < n; i++) {
    switch (d) {
    case CG_F32: buf.f32[i] = (float)values[i]; break;
    case CG_F64: buf.f64[i] = values[i]; break;
    case CG_I32: buf.i32[i] = (int32_t)values[i]; break;
    case CG_I64: buf.i64[i] = (int64_t)values[i]; break;
    default: buf.b[i] = values[i] != 0; break;
    }
  }
  return cg_tensor_from(d, ndim, shape, &buf);
}

static cg_tensor *vec_i64(int64_t n, const int64_t *values)
{
  return cg_tensor_from(CG_I64, 1, &n, values);
}

static cg_tensor *vec_i32(int64_t n, const int32_t *values)
{
  return cg_tensor_from(CG_I32, 1, &n, values);
}

/* d target / d x with the target's seed gradient (NULL: ones), on a fresh tape. */
typedef cg_tensor *(*unary_fn)(cg_tensor *x, void *user);
static cg_tensor *tape_grad(unary_fn f, void *user, cg_tensor *x, cg_tensor *seed)
{
  cg_tape *tape = cg_tape_begin(0);
  assert_int_equal(cg_tape_watch(tape, x), CG_OK);
  cg_tensor *y = f(x, user);
  assert_non_null(y);
  cg_tensor *g = NULL;
  cg_grad_opts opts = {.output_gradient = seed, .unconnected = CG_UNCONNECTED_NONE};
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &g, &opts), CG_OK);
  cg_tape_free(tape);
  return g;
}

/* ======================================================================================
 * Cast
 * ==================================================================================== */

/* Every pair of dtypes: 0, 1, 5, -3 keep their values in every numeric dtype and become
 * 0, 1, 1, 1 in bool; a bool 0, 1, 1, 0 becomes 0, 1, 1, 0 everywhere. */
static void test_cast_every_pair(void **state)
{
  const int64_t shape[] = {2, 2};
  const double numbers[] = {0, 1, 5, -3}, as_bool[] = {0, 1, 1, 1}, flags[] = {0, 1, 1, 0};
  for (int i = 0; i < N_DTYPES; i++) {
    cg_dtype from = all_dtypes[i];
    const double *in = from == CG_BOOL ? flags : numbers;
    cg_tensor *x = typed(from, 2, shape, in);
    for (int j = 0; j < N_DTYPES; j++) {
      cg_dtype to = all_dtypes[j];
      const double *want = to == CG_BOOL && from != CG_BOOL ? as_bool : in;
      assert_tensor(cg_cast(x, to), to, 2, shape, want, 0);
    }
  }
}

/* Float to integer truncates toward zero, saturates, and sends NaN to 0 (from f64 to i32,
 * from f32 to i64; 1e10 and 1e30 are exact enough in f32 for this). */
static void test_cast_float_to_integer_edges(void **state)
{
  const int64_t shape[] = {6};
  const double x[] = {2.7, -2.7, 1e10, -1e10, NAN, 1e30};
  const double want_i32[] = {2, -2, 2147483647.0, -2147483648.0, 0, 2147483647.0};
  const double want_i64[] = {2, -2, 1e10, -1e10, 0, (double)INT64_MAX};
  assert_tensor(cg_cast(cgt_f64(1, shape, x), CG_I32), CG_I32, 1, shape, want_i32, 0);
  cg_tensor *y = cg_cast(cgt_f32(1, shape, x), CG_I64);
  assert_tensor(y, CG_I64, 1, shape, want_i64, 0);
  assert_true(((const int64_t *)cg_tensor_data(y))[5] == INT64_MAX);
}

/* i64 2^32+1 -> i32 1 (low bits kept); -1 stays -1; NaN and -0.5 -> bool 1 and 1, -0.0 -> 0. */
static void test_cast_narrowing_and_bool(void **state)
{
  const int64_t big[] = {4294967297LL, -1}, two[] = {2}, three[] = {3};
  const double want_i32[] = {1, -1};
  assert_tensor(cg_cast(vec_i64(2, big), CG_I32), CG_I32, 1, two, want_i32, 0);
  const double x[] = {NAN, -0.5, -0.0}, want_bool[] = {1, 1, 0};
  assert_tensor(cg_cast(cgt_f64(1, three, x), CG_BOOL), CG_BOOL, 1, three, want_bool, 0);
}

/* Casting to the same dtype is a view: no copy is made. */
static void test_cast_same_dtype_is_a_view(void **state)
{
  const int64_t shape[] = {3};
  const double v[] = {1, 2, 3};
  cg_tensor *x = cgt_f32(1, shape, v), *y = cg_cast(x, CG_F32);
  assert_tensor(y, CG_F32, 1, shape, v, 0);
  assert_ptr_equal(cg_tensor_data(x), cg_tensor_data(y));
}

static cg_tensor *cast_round_trip(cg_tensor *x, void *user)
{
  return cg_cast(cg_cast(x, CG_F32), CG_F64);
}
static cg_tensor *through_int(cg_tensor *x, void *user)
{
  return cg_cast(cg_cast(x, CG_I32), CG_F64);
}

/* d/dx cast(cast(x, f32), f64) = 1 (seeded with 2, 3: gives 2, 3 back in f64); a trip
 * through an integer dtype cuts the gradient (none). */
static void test_cast_gradient(void **state)
{
  const int64_t shape[] = {2};
  const double x[] = {0.5, -1.5}, seed[] = {2, 3};
  cg_tensor *g = tape_grad(cast_round_trip, NULL, cgt_f64(1, shape, x), cgt_f64(1, shape, seed));
  assert_tensor(g, CG_F64, 1, shape, seed, 0);
  assert_null(tape_grad(through_int, NULL, cgt_f64(1, shape, x), NULL));
}

/* ======================================================================================
 * Identity, StopGradient, ZerosLike, OnesLike
 * ==================================================================================== */

static void test_identity_and_stop_gradient_are_views(void **state)
{
  const int64_t shape[] = {2, 2};
  const double v[] = {1, 0, 1, 1};
  for (int i = 0; i < N_DTYPES; i++) {
    cg_tensor *x = typed(all_dtypes[i], 2, shape, v);
    cg_tensor *a = cg_identity(x), *b = cg_stop_gradient(x);
    assert_tensor(a, all_dtypes[i], 2, shape, v, 0);
    assert_tensor(b, all_dtypes[i], 2, shape, v, 0);
    assert_ptr_equal(cg_tensor_data(a), cg_tensor_data(x));
    assert_ptr_equal(cg_tensor_data(b), cg_tensor_data(x));
  }
}

static cg_tensor *identity_of(cg_tensor *x, void *user) { return cg_identity(x); }
static cg_tensor *stopped(cg_tensor *x, void *user) { return cg_stop_gradient(x); }
static cg_tensor *x_plus_stopped_x(cg_tensor *x, void *user)
{
  cg_tensor *xs[2] = {x, cg_stop_gradient(x)};
  return cg_add_n(xs, 2);
}

/* d identity(x) = seed; stop_gradient(x) has none; d(x + stop(x)) = 1, not 2. */
static void test_identity_and_stop_gradient_gradients(void **state)
{
  const int64_t shape[] = {3};
  const double x[] = {1, 2, 3}, seed[] = {4, 5, 6}, ones[] = {1, 1, 1};
  assert_tensor(tape_grad(identity_of, NULL, cgt_f64(1, shape, x), cgt_f64(1, shape, seed)), CG_F64,
                1, shape, seed, 0);
  assert_null(tape_grad(stopped, NULL, cgt_f64(1, shape, x), NULL));
  assert_tensor(tape_grad(x_plus_stopped_x, NULL, cgt_f64(1, shape, x), NULL), CG_F64, 1, shape,
                ones, 0);
}

static void test_zeros_like_and_ones_like(void **state)
{
  const int64_t shape[] = {2, 3};
  const double v[] = {7, -2, 0, 3, 1, 9}, zeros[6] = {0}, ones[] = {1, 1, 1, 1, 1, 1};
  for (int i = 0; i < N_DTYPES; i++) {
    cg_tensor *x = typed(all_dtypes[i], 2, shape, v);
    assert_tensor(cg_zeros_like(x), all_dtypes[i], 2, shape, zeros, 0);
    assert_tensor(cg_ones_like(x), all_dtypes[i], 2, shape, ones, 0);
  }
  cg_tensor *scalar = cg_scalar(CG_F64, 3.5), *empty = cg_zeros(CG_F32, 1, (int64_t[]){0});
  assert_tensor(cg_ones_like(scalar), CG_F64, 0, NULL, ones, 0);
  assert_tensor(cg_zeros_like(empty), CG_F32, 1, ((int64_t[]){0}), NULL, 0);
}

/* ======================================================================================
 * AddN
 * ==================================================================================== */

/* [1,2,3] + [10,20,30] + [-4,0,4] = [7,22,37] in every numeric dtype; one input: a copy. */
static void test_add_n_values(void **state)
{
  const int64_t shape[] = {3};
  const double a[] = {1, 2, 3}, b[] = {10, 20, 30}, c[] = {-4, 0, 4}, sum[] = {7, 22, 37};
  for (int i = 0; i < N_DTYPES - 1; i++) {
    cg_dtype d = all_dtypes[i];
    cg_tensor *xs[3] = {typed(d, 1, shape, a), typed(d, 1, shape, b), typed(d, 1, shape, c)};
    assert_tensor(cg_add_n(xs, 3), d, 1, shape, sum, 0);
    assert_tensor(cg_add_n(xs, 1), d, 1, shape, a, 0);
  }
  cg_tensor *scalars[2] = {cg_scalar(CG_F64, 1.5), cg_scalar(CG_F64, 2.25)};
  assert_tensor(cg_add_n(scalars, 2), CG_F64, 0, NULL, ((double[]){3.75}), 0);
}

/* i32: 2147483647 + 1 wraps to -2147483648 (defined, not undefined behaviour). */
static void test_add_n_integer_wraps(void **state)
{
  const int32_t big[] = {2147483647}, one[] = {1};
  cg_tensor *xs[2] = {vec_i32(1, big), vec_i32(1, one)};
  assert_tensor(cg_add_n(xs, 2), CG_I32, 1, ((int64_t[]){1}), ((double[]){-2147483648.0}), 0);
}

/* The blocked kernel against a plain element-by-element sum, across several blocks. */
static void test_add_n_matches_reference(void **state)
{
  const int64_t n = 5003;
  for (int k = 0; k < 2; k++) {
    cg_dtype d = k ? CG_F64 : CG_F32;
    cg_tensor *xs[4];
    for (int i = 0; i < 4; i++) xs[i] = cg_random_uniform(d, 1, &n, -1, 1, 10 + (uint64_t)i);
    cg_tensor *y = cg_add_n(xs, 4);
    assert_non_null(y);
    for (int64_t j = 0; j < n; j++) {
      double want = 0;
      for (int i = 0; i < 4; i++) want += cg_tensor_get(xs[i], j);
      assert_true(fabs(cg_tensor_get(y, j) - want) <= (d == CG_F32 ? 1e-5 : 1e-12));
    }
  }
}

static cg_tensor *x_y_x(cg_tensor *x, void *user)
{
  cg_tensor *xs[3] = {x, user, x};
  return cg_add_n(xs, 3);
}

/* d/dx AddN(x, c, x) = 2 per element (seed 1). */
static void test_add_n_gradient(void **state)
{
  const int64_t shape[] = {2};
  const double x[] = {1, 2}, c[] = {5, 6}, twos[] = {2, 2};
  cg_tensor *g = tape_grad(x_y_x, cgt_f64(1, shape, c), cgt_f64(1, shape, x), NULL);
  assert_tensor(g, CG_F64, 1, shape, twos, 0);
}

/* ======================================================================================
 * Gather and UnsortedSegmentSum
 * ==================================================================================== */

/* params [[1,2,3],[4,5,6]]: axis 0 with [1,0,1] -> [[4,5,6],[1,2,3],[4,5,6]];
 * axis 1 (and -1) with [2,0] -> [[3,1],[6,4]], in every dtype (bool: nonzero -> 1). */
static void test_gather_values(void **state)
{
  const int64_t shape[] = {2, 3}, rows[] = {3, 3}, cols[] = {2, 2};
  const double p[] = {1, 2, 3, 4, 5, 6};
  const double by_row[] = {4, 5, 6, 1, 2, 3, 4, 5, 6}, by_col[] = {3, 1, 6, 4};
  const double ones_rows[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, ones_cols[4] = {1, 1, 1, 1};
  const int64_t r[] = {1, 0, 1};
  const int32_t c[] = {2, 0};
  for (int i = 0; i < N_DTYPES; i++) {
    cg_dtype d = all_dtypes[i];
    cg_tensor *params = typed(d, 2, shape, p);
    int is_bool = d == CG_BOOL;
    assert_tensor(cg_gather(params, vec_i64(3, r), 0), d, 2, rows, is_bool ? ones_rows : by_row, 0);
    assert_tensor(cg_gather(params, vec_i32(2, c), 1), d, 2, cols, is_bool ? ones_cols : by_col, 0);
    assert_tensor(cg_gather(params, vec_i32(2, c), -1), d, 2, cols, is_bool ? ones_cols : by_col,
                  0);
  }
}

/* params [2,3,2] = 0..11; indices [[2],[0]] on axis 1 -> shape [2,2,1,2]:
 * [[[[4,5]],[[0,1]]], [[[10,11]],[[6,7]]]]; a rank-0 index 1 on axis 0 -> params[1]. */
static void test_gather_shapes(void **state)
{
  const int64_t shape[] = {2, 3, 2}, ix_shape[] = {2, 1}, out[] = {2, 2, 1, 2}, row[] = {3, 2};
  double p[12];
  for (int i = 0; i < 12; i++) p[i] = i;
  const double want[] = {4, 5, 0, 1, 10, 11, 6, 7}, second[] = {6, 7, 8, 9, 10, 11};
  cg_tensor *params = cgt_f64(3, shape, p);
  cg_tensor *ix = cg_tensor_from(CG_I64, 2, ix_shape, (int64_t[]){2, 0});
  assert_tensor(cg_gather(params, ix, 1), CG_F64, 4, out, want, 0);
  cg_tensor *one = cg_tensor_from(CG_I32, 0, NULL, (int32_t[]){1});
  assert_tensor(cg_gather(params, one, 0), CG_F64, 2, row, second, 0);
  cg_tensor *none = cg_tensor_from(CG_I64, 1, (int64_t[]){0}, NULL);
  assert_tensor(cg_gather(params, none, 2), CG_F64, 3, ((int64_t[]){2, 3, 0}), NULL, 0);
}

/* data [[1,2],[3,4],[5,6]] with ids [2,0,2] into 4 segments -> [[3,4],[0,0],[6,8],[0,0]]. */
static void test_segment_sum_values(void **state)
{
  const int64_t shape[] = {3, 2}, out[] = {4, 2};
  const double data[] = {1, 2, 3, 4, 5, 6}, want[] = {3, 4, 0, 0, 6, 8, 0, 0};
  const int64_t ids64[] = {2, 0, 2};
  const int32_t ids32[] = {2, 0, 2};
  for (int i = 0; i < N_DTYPES - 1; i++) {
    cg_tensor *x = typed(all_dtypes[i], 2, shape, data);
    assert_tensor(cg_unsorted_segment_sum(x, vec_i64(3, ids64), 4), all_dtypes[i], 2, out, want, 0);
    assert_tensor(cg_unsorted_segment_sum(x, vec_i32(3, ids32), 4), all_dtypes[i], 2, out, want, 0);
  }
  /* ids covering both dims: [[1,0],[1,1],[0,1]] -> segments [2+5, 1+3+4+6] = [7, 14]. */
  cg_tensor *both = cg_tensor_from(CG_I64, 2, shape, (int64_t[]){1, 0, 1, 1, 0, 1});
  assert_tensor(cg_unsorted_segment_sum(cgt_f64(2, shape, data), both, 2), CG_F64, 1,
                ((int64_t[]){2}), ((double[]){7, 14}), 0);
}

static cg_tensor *gather_axis(cg_tensor *x, void *user)
{
  const int *axis = user;
  return cg_gather(x, vec_i64(3, (int64_t[]){0, 2, 0}), *axis);
}

static cg_tensor *segment_sum_of(cg_tensor *x, void *user)
{
  return cg_unsorted_segment_sum(x, vec_i64(3, (int64_t[]){1, 0, 1}), 3);
}

/* Gather [0,2,0] of [2,3] on axis 1 (seed 1): column 0 is taken twice, column 2 once ->
 * [[2,0,1],[2,0,1]]. On axis 0 of [3] seeded [1,10,100]: [101, 0, 10].
 * SegmentSum of [3,2] by [1,0,1] seeded [[1,2],[3,4],[5,6]]: rows 3,4 / 1,2 / 3,4. */
static void test_gather_and_segment_sum_gradients(void **state)
{
  const int64_t shape[] = {2, 3}, vec[] = {3}, data_shape[] = {3, 2};
  const double p[] = {1, 2, 3, 4, 5, 6}, want[] = {2, 0, 1, 2, 0, 1};
  int axis = 1;
  assert_tensor(tape_grad(gather_axis, &axis, cgt_f64(2, shape, p), NULL), CG_F64, 2, shape, want,
                0);
  axis = 0;
  cg_tensor *g =
      tape_grad(gather_axis, &axis, cgt_f64(1, vec, p), cgt_f64(1, vec, (double[]){1, 10, 100}));
  assert_tensor(g, CG_F64, 1, vec, ((double[]){101, 0, 10}), 0);
  const double seed[] = {1, 2, 3, 4, 5, 6}, rows[] = {3, 4, 1, 2, 3, 4};
  g = tape_grad(segment_sum_of, NULL, cgt_f64(2, data_shape, p), cgt_f64(2, data_shape, seed));
  assert_tensor(g, CG_F64, 2, data_shape, rows, 0);
}

/* ======================================================================================
 * OneHot
 * ==================================================================================== */

/* [0, 2, -1, 3] with depth 3: rows e0, e2, then all-off for -1 and 3 (out of range). */
static void test_one_hot_values(void **state)
{
  const int64_t out[] = {4, 3};
  const int64_t ix64[] = {0, 2, -1, 3};
  const int32_t ix32[] = {0, 2, -1, 3};
  const double want[] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  const double custom[] = {5, -1, -1, -1, -1, 5, -1, -1, -1, -1, -1, -1};
  for (int i = 0; i < N_DTYPES; i++) {
    assert_tensor(cg_one_hot(vec_i64(4, ix64), 3, 1, 0, all_dtypes[i]), all_dtypes[i], 2, out, want,
                  0);
    assert_tensor(cg_one_hot(vec_i32(4, ix32), 3, 1, 0, all_dtypes[i]), all_dtypes[i], 2, out, want,
                  0);
  }
  assert_tensor(cg_one_hot(vec_i64(4, ix64), 3, 5, -1, CG_I32), CG_I32, 2, out, custom, 0);
  /* indices [[1],[0]] -> [2,1,2]; depth 0 -> [4,0] */
  cg_tensor *ix = cg_tensor_from(CG_I32, 2, (int64_t[]){2, 1}, (int32_t[]){1, 0});
  assert_tensor(cg_one_hot(ix, 2, 0.5, 0, CG_F64), CG_F64, 3, ((int64_t[]){2, 1, 2}),
                ((double[]){0, 0.5, 0.5, 0}), 0);
  assert_tensor(cg_one_hot(vec_i64(4, ix64), 0, 1, 0, CG_F32), CG_F32, 2, ((int64_t[]){4, 0}), NULL,
                0);
}

/* ======================================================================================
 * Gradient-check rows
 * ==================================================================================== */

static void test_grad_cases(void **state)
{
  for (int i = 0; i < cg_cases_index_n; i++) {
    const cg_grad_case *c = &cg_cases_index[i];
    for (int order = 1; order <= (c->order2 ? 2 : 1); order++) {
      cg_gradcheck_report report;
      memset(&report, 0, sizeof report);
      cg_status st = cg_run_grad_case(c, CG_F64, order, 1234 + (uint64_t)i, &report);
      if (st != CG_OK)
        fail_msg("%s (%s) order %d: %s / %s", c->op, c->label, order, report.message,
                 cg_last_error());
    }
  }
}

/* ======================================================================================
 * Bad inputs: each call must fail with this code and a message holding this text
 * ==================================================================================== */

static cg_tensor *m23(void) { return cg_zeros(CG_F64, 2, (int64_t[]){2, 3}); }
static cg_tensor *ids(int64_t a, int64_t b) { return vec_i64(2, (int64_t[]){a, b}); }
static cg_tensor *rank8(cg_dtype d) { return cg_zeros(d, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1}); }

static cg_tensor *cast_unknown_dtype(void) { return cg_cast(m23(), (cg_dtype)7); }
static cg_tensor *cast_null(void) { return cg_cast(NULL, CG_F32); }
static cg_tensor *identity_null(void) { return cg_identity(NULL); }
static cg_tensor *stop_gradient_null(void) { return cg_stop_gradient(NULL); }
static cg_tensor *zeros_like_null(void) { return cg_zeros_like(NULL); }
static cg_tensor *ones_like_null(void) { return cg_ones_like(NULL); }
static cg_tensor *add_n_none(void) { return cg_add_n((cg_tensor *[]){m23()}, 0); }
static cg_tensor *add_n_shapes(void)
{
  return cg_add_n((cg_tensor *[]){m23(), cg_zeros(CG_F64, 1, (int64_t[]){3})}, 2);
}
static cg_tensor *add_n_dtypes(void)
{
  return cg_add_n((cg_tensor *[]){m23(), cg_zeros(CG_F32, 2, (int64_t[]){2, 3})}, 2);
}
static cg_tensor *add_n_bool(void)
{
  cg_tensor *b = cg_zeros(CG_BOOL, 1, (int64_t[]){2});
  return cg_add_n((cg_tensor *[]){b, b}, 2);
}
static cg_tensor *add_n_null(void) { return cg_add_n((cg_tensor *[]){m23(), NULL}, 2); }
static cg_tensor *gather_axis_range(void) { return cg_gather(m23(), ids(0, 1), 2); }
static cg_tensor *gather_neg_axis_range(void) { return cg_gather(m23(), ids(0, 1), -3); }
static cg_tensor *gather_scalar_params(void)
{
  return cg_gather(cg_scalar(CG_F64, 1), ids(0, 0), 0);
}
static cg_tensor *gather_float_indices(void) { return cg_gather(m23(), m23(), 0); }
static cg_tensor *gather_index_high(void) { return cg_gather(m23(), ids(0, 3), 1); }
static cg_tensor *gather_index_negative(void) { return cg_gather(m23(), ids(-1, 0), 0); }
static cg_tensor *gather_i32_index_high(void)
{
  return cg_gather(m23(), vec_i32(1, (int32_t[]){2}), 0);
}
static cg_tensor *gather_too_many_dims(void) { return cg_gather(rank8(CG_F64), rank8(CG_I64), 0); }
static cg_tensor *segment_negative_count(void)
{
  return cg_unsorted_segment_sum(m23(), ids(0, 1), -1);
}
static cg_tensor *segment_not_prefix(void)
{
  return cg_unsorted_segment_sum(m23(), vec_i64(3, (int64_t[]){0, 1, 0}), 2);
}
static cg_tensor *segment_ids_too_long(void)
{
  return cg_unsorted_segment_sum(m23(), cg_zeros(CG_I64, 3, (int64_t[]){2, 3, 1}), 2);
}
static cg_tensor *segment_float_ids(void) { return cg_unsorted_segment_sum(m23(), m23(), 2); }
static cg_tensor *segment_bool_data(void)
{
  return cg_unsorted_segment_sum(cg_zeros(CG_BOOL, 1, (int64_t[]){2}), ids(0, 1), 2);
}
static cg_tensor *segment_id_high(void) { return cg_unsorted_segment_sum(m23(), ids(0, 4), 4); }
static cg_tensor *segment_id_negative(void)
{
  return cg_unsorted_segment_sum(m23(), ids(-2, 0), 4);
}
static cg_tensor *segment_too_many_dims(void)
{
  return cg_unsorted_segment_sum(rank8(CG_F64), cg_scalar(CG_I64, 0), 1);
}
static cg_tensor *one_hot_negative_depth(void) { return cg_one_hot(ids(0, 1), -1, 1, 0, CG_F32); }
static cg_tensor *one_hot_float_indices(void) { return cg_one_hot(m23(), 3, 1, 0, CG_F32); }
static cg_tensor *one_hot_bad_dtype(void) { return cg_one_hot(ids(0, 1), 3, 1, 0, (cg_dtype)9); }
static cg_tensor *one_hot_too_many_dims(void) { return cg_one_hot(rank8(CG_I32), 2, 1, 0, CG_F32); }
static cg_tensor *one_hot_too_big(void)
{
  return cg_one_hot(cg_zeros(CG_I64, 1, (int64_t[]){16}), INT64_MAX / 4, 1, 0, CG_F32);
}

static const struct {
  const char *what;
  cg_tensor *(*call)(void);
  cg_status code;
  const char *message;
} bad_inputs[] = {
    {"Cast to dtype 7", cast_unknown_dtype, CG_EINVAL, "Cast: attribute dtype is 7, not a dtype"},
    {"Cast of NULL", cast_null, CG_EINVAL, "Cast: input 0 is NULL"},
    {"Identity of NULL", identity_null, CG_EINVAL, "Identity: input 0 is NULL"},
    {"StopGradient of NULL", stop_gradient_null, CG_EINVAL, "StopGradient: input 0 is NULL"},
    {"ZerosLike of NULL", zeros_like_null, CG_EINVAL, "ZerosLike: input 0 is NULL"},
    {"OnesLike of NULL", ones_like_null, CG_EINVAL, "OnesLike: input 0 is NULL"},
    {"AddN of nothing", add_n_none, CG_EINVAL, "AddN: needs at least one input, got 0"},
    {"AddN [2,3] + [3]", add_n_shapes, CG_ESHAPE, "AddN: input 1 has shape [3], input 0 has [2,3]"},
    {"AddN f64 + f32", add_n_dtypes, CG_EDTYPE, "AddN: dtypes differ: f64 [2,3] vs f32 [2,3]"},
    {"AddN of bool", add_n_bool, CG_EDTYPE, "AddN: input 0 must be numeric"},
    {"AddN with NULL", add_n_null, CG_EINVAL, "AddN: input 1 is NULL"},
    {"Gather axis 2 of rank 2", gather_axis_range, CG_ERANGE,
     "Gather: axis 2 is out of range for rank 2"},
    {"Gather axis -3 of rank 2", gather_neg_axis_range, CG_ERANGE,
     "Gather: axis -3 is out of range"},
    {"Gather from a scalar", gather_scalar_params, CG_ERANGE,
     "Gather: axis 0 is out of range for rank 0"},
    {"Gather f64 indices", gather_float_indices, CG_EDTYPE,
     "Gather: indices must be i32 or i64, got f64 [2,3]"},
    {"Gather index 3 of 3", gather_index_high, CG_ERANGE, "Gather: index 3 is out of range [0, 3)"},
    {"Gather index -1", gather_index_negative, CG_ERANGE,
     "Gather: index -1 is out of range [0, 2)"},
    {"Gather i32 index 2 of 2", gather_i32_index_high, CG_ERANGE,
     "Gather: index 2 is out of range [0, 2)"},
    {"Gather to 15 dims", gather_too_many_dims, CG_ESHAPE, "gives 15 dims, more than 8"},
    {"UnsortedSegmentSum -1 segments", segment_negative_count, CG_EINVAL,
     "UnsortedSegmentSum: num_segments must be >= 0, got -1"},
    {"UnsortedSegmentSum ids [3] on [2,3]", segment_not_prefix, CG_ESHAPE,
     "UnsortedSegmentSum: segment_ids shape [3] is not a prefix of data shape [2,3]"},
    {"UnsortedSegmentSum ids rank 3 on rank 2", segment_ids_too_long, CG_ESHAPE, "is not a prefix"},
    {"UnsortedSegmentSum f64 ids", segment_float_ids, CG_EDTYPE,
     "UnsortedSegmentSum: segment_ids must be i32 or i64, got f64"},
    {"UnsortedSegmentSum bool data", segment_bool_data, CG_EDTYPE,
     "UnsortedSegmentSum: data must be numeric"},
    {"UnsortedSegmentSum id 4 of 4", segment_id_high, CG_ERANGE,
     "UnsortedSegmentSum: segment id 4 is out of range [0, 4)"},
    {"UnsortedSegmentSum id -2", segment_id_negative, CG_ERANGE,
     "UnsortedSegmentSum: segment id -2 is out of range [0, 4)"},
    {"UnsortedSegmentSum to 9 dims", segment_too_many_dims, CG_ESHAPE, "gives 9 dims, more than 8"},
    {"OneHot depth -1", one_hot_negative_depth, CG_EINVAL, "OneHot: depth must be >= 0, got -1"},
    {"OneHot f64 indices", one_hot_float_indices, CG_EDTYPE, "OneHot: indices must be i32 or i64"},
    {"OneHot dtype 9", one_hot_bad_dtype, CG_EINVAL, "OneHot: attribute dtype is 9, not a dtype"},
    {"OneHot of rank 8", one_hot_too_many_dims, CG_ESHAPE,
     "OneHot: indices [1,1,1,1,1,1,1,1] already have 8 dims"},
    {"OneHot too many elements", one_hot_too_big, CG_ENOMEM,
     "OneHot: shape [16,2305843009213693951] has too many elements"},
};

static void test_bad_inputs(void **state)
{
  for (size_t i = 0; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) {
    cg_tensor *t = bad_inputs[i].call();
    if (t || cg_last_status() != bad_inputs[i].code ||
        !strstr(cg_last_error(), bad_inputs[i].message))
      print_message("bad input row fails: %s (got %s \"%s\")\n", bad_inputs[i].what,
                    cg_status_name(cg_last_status()), cg_last_error());
    assert_null(t);
    assert_error(bad_inputs[i].code, bad_inputs[i].message);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(test_cast_every_pair),
      cgt_test(test_cast_float_to_integer_edges),
      cgt_test(test_cast_narrowing_and_bool),
      cgt_test(test_cast_same_dtype_is_a_view),
      cgt_test(test_cast_gradient),
      cgt_test(test_identity_and_stop_gradient_are_views),
      cgt_test(test_identity_and_stop_gradient_gradients),
      cgt_test(test_zeros_like_and_ones_like),
      cgt_test(test_add_n_values),
      cgt_test(test_add_n_integer_wraps),
      cgt_test(test_add_n_matches_reference),
      cgt_test(test_add_n_gradient),
      cgt_test(test_gather_values),
      cgt_test(test_gather_shapes),
      cgt_test(test_segment_sum_values),
      cgt_test(test_gather_and_segment_sum_gradients),
      cgt_test(test_one_hot_values),
      cgt_test(test_grad_cases),
      cgt_test(test_bad_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

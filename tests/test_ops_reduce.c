/* test_ops_reduce.c - the reductions (src/ops/reduce.c): known forward values per dtype and
 * axes form, empty and NaN inputs, LogSumExp at +-1000, integer wraparound, ArgMax/ArgMin
 * ties, gradients at hand-computed points, the rows of tools/cgrad/cases_reduce.c, and the
 * errors each op gives for bad input. */
#include "util.h"
#include "cases.h"
#include <math.h>
#include <stdio.h>

typedef cg_tensor *(*reduce_fn)(cg_tensor *x, const int *axes, int n_axes, int keepdims);
typedef cg_tensor *(*arg_fn)(cg_tensor *x, int axis);

#define MAX_VALUES 24

/* A tensor of dtype d holding values (integers converted exactly, without cg_cast). */
static cg_tensor *tensor_of(cg_dtype d, int ndim, const int64_t *shape, const double *values)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  int32_t i32[MAX_VALUES];
  int64_t i64[MAX_VALUES];
  switch (d) {
  case CG_F32: return cgt_f32(ndim, shape, values);
  case CG_F64: return cgt_f64(ndim, shape, values);
  case CG_I32:
    for (int64_t i = 0; i < n; i++) i32[i] = (int32_t)values[i];
    return cg_tensor_from(d, ndim, shape, i32);
  case CG_I64:
    for (int64_t i = 0; i < n; i++) i64[i] = (int64_t)values[i];
    return cg_tensor_from(d, ndim, shape, i64);
  default: {
    uint8_t b[MAX_VALUES];
    for (int64_t i = 0; i < n; i++) b[i] = values[i] != 0;
    return cg_tensor_from(d, ndim, shape, b);
  }
  }
}

static const cg_dtype all_dtypes[4] = {CG_F32, CG_F64, CG_I32, CG_I64};

/* ======================================================================================
 * Forward: known values
 * ==================================================================================== */

/* x = [[1, 2, 3], [4, 5, 6]] reduced as the row says. */
typedef struct {
  const char *name;
  reduce_fn fn;
  int integer_ok;
  int axes[2], n_axes, keepdims;
  int ndim;
  int64_t shape[2];
  double y[3];
} known_reduction;

static const known_reduction reductions[] = {
    {"Sum all", cg_sum, 1, {0}, 0, 0, 0, {0}, {21}},
    {"Sum axis 0", cg_sum, 1, {0}, 1, 0, 1, {3}, {5, 7, 9}},
    {"Sum axis -1", cg_sum, 1, {-1}, 1, 0, 1, {2}, {6, 15}},
    {"Sum axis 1 keepdims", cg_sum, 1, {1}, 1, 1, 2, {2, 1}, {6, 15}},
    {"Sum axes 1,0", cg_sum, 1, {1, 0}, 2, 0, 0, {0}, {21}},
    {"Sum all keepdims", cg_sum, 1, {0}, 0, 1, 2, {1, 1}, {21}},
    {"Mean all", cg_mean, 0, {0}, 0, 0, 0, {0}, {3.5}},
    {"Mean axis 0", cg_mean, 0, {0}, 1, 0, 1, {3}, {2.5, 3.5, 4.5}},
    {"Mean axis -1 keepdims", cg_mean, 0, {-1}, 1, 1, 2, {2, 1}, {2, 5}},
    {"Max all", cg_max, 1, {0}, 0, 0, 0, {0}, {6}},
    {"Max axis 0", cg_max, 1, {0}, 1, 0, 1, {3}, {4, 5, 6}},
    {"Max axis 1", cg_max, 1, {1}, 1, 0, 1, {2}, {3, 6}},
    {"Min all", cg_min, 1, {0}, 0, 0, 0, {0}, {1}},
    {"Min axis 0 keepdims", cg_min, 1, {0}, 1, 1, 2, {1, 3}, {1, 2, 3}},
    {"Min axis -1", cg_min, 1, {-1}, 1, 0, 1, {2}, {1, 4}},
    {"Prod all", cg_prod, 1, {0}, 0, 0, 0, {0}, {720}},
    {"Prod axis 0", cg_prod, 1, {0}, 1, 0, 1, {3}, {4, 10, 18}},
    {"Prod axis 1", cg_prod, 1, {1}, 1, 0, 1, {2}, {6, 120}},
    /* ln(e^1 + ... + e^6) */
    {"LogSumExp all", cg_logsumexp, 0, {0}, 0, 0, 0, {0}, {6.456193316018123}},
    /* ln(e + e^2 + e^3), ln(e^4 + e^5 + e^6) */
    {"LogSumExp axis 1", cg_logsumexp, 0, {1}, 1, 0, 1, {2}, {3.40760596444438, 6.407605964444381}},
    /* ln(e^1 + e^4), ln(e^2 + e^5), ln(e^3 + e^6) */
    {"LogSumExp axis 0 keepdims", cg_logsumexp, 0, {0}, 1, 1, 2, {1, 3},
     {4.048587351573742, 5.048587351573742, 6.048587351573742}},
};

static void test_known_reductions(void **state)
{
  const int64_t shape[2] = {2, 3};
  const double x[6] = {1, 2, 3, 4, 5, 6};
  for (size_t r = 0; r < sizeof reductions / sizeof reductions[0]; r++) {
    const known_reduction *k = &reductions[r];
    for (int di = 0; di < 4; di++) {
      cg_dtype d = all_dtypes[di];
      if (!cg_dtype_is_float(d) && !k->integer_ok) continue;
      /* integer Max, Min, Sum and Prod are exact; LogSumExp in f32 to float precision */
      double tol = d == CG_F32 ? 1e-6 : d == CG_F64 ? 1e-14 : 0;
      cg_tensor *y = k->fn(tensor_of(d, 2, shape, x), k->n_axes ? k->axes : NULL, k->n_axes, k->keepdims);
      if (!y) fail_msg("%s (%s): %s", k->name, cg_dtype_name(d), cg_last_error());
      assert_tensor(y, d, k->ndim, k->shape, k->y, tol);
    }
  }
}

/* x[i,j,k] = 12i + 4j + k of shape [2,3,4]: axes that are not neighbours, the middle axis,
 * and neighbours that the kernel merges into one. */
static void test_rank3_axes(void **state)
{
  const int64_t shape[3] = {2, 3, 4};
  double x[24];
  for (int i = 0; i < 24; i++) x[i] = i;
  cg_tensor *t = cgt_f64(3, shape, x);
  /* sum over i, k of 12i + 4j + k = 48 + 32j + 12 */
  const int outer[2] = {0, 2};
  const int64_t s3[1] = {3};
  assert_tensor(cg_sum(t, outer, 2, 0), CG_F64, 1, s3, ((double[]){60, 92, 124}), 0);
  /* sum over j of 12i + 4j + k = 36i + 12 + 3k */
  const int middle[1] = {1};
  const int64_t s24[2] = {2, 4};
  assert_tensor(cg_sum(t, middle, 1, 0), CG_F64, 2, s24,
                ((double[]){12, 15, 18, 21, 48, 51, 54, 57}), 0);
  /* sum 0..11 and 12..23 */
  const int last_two[2] = {1, 2};
  const int64_t s2[1] = {2};
  assert_tensor(cg_sum(t, last_two, 2, 0), CG_F64, 1, s2, ((double[]){66, 210}), 0);
  /* sum over i, j of 12i + 4j + k = 36 + 24 + 6k, keepdims */
  const int first_two[2] = {0, 1};
  const int64_t s114[3] = {1, 1, 4};
  assert_tensor(cg_sum(t, first_two, 2, 1), CG_F64, 3, s114, ((double[]){60, 66, 72, 78}), 0);
  /* max over j is at j = 2: 12i + 8 + k; in i32 as well */
  assert_tensor(cg_max(tensor_of(CG_I32, 3, shape, x), middle, 1, 0), CG_I32, 2, s24,
                ((double[]){8, 9, 10, 11, 20, 21, 22, 23}), 0);
}

/* Rows longer than the kernels' chunk of 1024 elements: x[i,j] = j of shape [3,2500]. */
static void test_long_rows(void **state)
{
  enum { ROWS = 3, COLS = 2500 };
  static double x[ROWS * COLS], col_sums[COLS];
  static int32_t x32[ROWS * COLS];
  for (int i = 0; i < ROWS * COLS; i++) x32[i] = (int32_t)(x[i] = i % COLS);
  for (int j = 0; j < COLS; j++) col_sums[j] = 3.0 * j;
  const int64_t shape[2] = {ROWS, COLS}, rows[1] = {ROWS}, cols[1] = {COLS};
  const int axis0[1] = {0}, axis1[1] = {1};
  cg_tensor *f = cgt_f32(2, shape, x), *i = cg_tensor_from(CG_I32, 2, shape, x32);
  /* 0 + 1 + ... + 2499 = 2499 * 2500 / 2 = 3123750 per row */
  const double row_sums[ROWS] = {3123750, 3123750, 3123750};
  assert_tensor(cg_sum(f, axis1, 1, 0), CG_F32, 1, rows, row_sums, 0);
  assert_tensor(cg_sum(f, axis0, 1, 0), CG_F32, 1, cols, col_sums, 0);
  assert_tensor(cg_mean(f, NULL, 0, 0), CG_F32, 0, NULL, ((double[]){1249.5}), 0);
  assert_tensor(cg_sum(i, NULL, 0, 0), CG_I32, 0, NULL, ((double[]){3 * 3123750}), 0);
  assert_tensor(cg_max(i, axis1, 1, 0), CG_I32, 1, rows, ((double[]){2499, 2499, 2499}), 0);
  assert_tensor(cg_min(f, axis1, 1, 0), CG_F32, 1, rows, ((double[]){0, 0, 0}), 0);
  assert_tensor(cg_argmax(f, 1), CG_I64, 1, rows, ((double[]){2499, 2499, 2499}), 0);
  /* 2499 + ln(1 + e^-1 + e^-2 + ...) = 2499 - ln(1 - 1/e) */
  const double lse = 2499.4586751453871;
  assert_tensor(cg_logsumexp(f, axis1, 1, 0), CG_F32, 1, rows, ((double[]){lse, lse, lse}), 1e-6);
}

/* The blocked float kernels against plain loops. Column sums (blocks of 256 rows, 32
 * columns at a time in registers, the last columns row by row) add each column's rows in
 * order within a block and the blocks in order: the same bits as that loop. Row sums (32
 * running sums for pieces of 256 elements or more, 8 below, blocks of 8192) agree with a
 * plain sum to rounding; every element is counted once. */
static void test_blocked_sums_match_reference(void **state)
{
  const int64_t cs[2] = {600, 70}, cols[1] = {70};
  const int axis0[1] = {0}, axis1[1] = {1};
  cg_tensor *x = cg_random_normal(CG_F64, 2, cs, 0, 1, 11);
  const double *v = cg_tensor_data(x);
  double want[70];
  for (int j = 0; j < 70; j++) {
    double total = 0;
    for (int r0 = 0; r0 < 600; r0 += 256) {
      double block = 0;
      for (int r = r0; r < r0 + 256 && r < 600; r++) block += v[r * 70 + j];
      total = r0 == 0 ? block : total + block;
    }
    want[j] = total;
  }
  assert_tensor(cg_sum(x, axis0, 1, 0), CG_F64, 1, cols, want, 0);
  assert_tensor(cg_sum(cg_cast(x, CG_F32), axis0, 1, 0), CG_F32, 1, cols, want, 1e-6);

  const int64_t row_shapes[5][2] = {{9, 7}, {7, 200}, {5, 1000}, {3, 20000}, {1, 8192 + 33}};
  for (int k = 0; k < 5; k++) {
    cg_tensor *t = cg_random_normal(CG_F64, 2, row_shapes[k], 0.5, 1, 12 + (uint64_t)k);
    const double *tv = cg_tensor_data(t);
    double sums[9];
    for (int64_t r = 0; r < row_shapes[k][0]; r++) {
      sums[r] = 0;
      for (int64_t j = 0; j < row_shapes[k][1]; j++) sums[r] += tv[r * row_shapes[k][1] + j];
    }
    assert_tensor(cg_sum(t, axis1, 1, 0), CG_F64, 1, row_shapes[k], sums, 1e-12);
    assert_tensor(cg_sum(cg_cast(t, CG_F32), axis1, 1, 0), CG_F32, 1, row_shapes[k], sums, 1e-6);
  }
}

/* Rank 0 and size-1 dims. */
static void test_scalar_and_size_one(void **state)
{
  double v = 2.5;
  cg_tensor *s = cgt_f64(0, NULL, &v);
  assert_tensor(cg_sum(s, NULL, 0, 0), CG_F64, 0, NULL, &v, 0);
  assert_tensor(cg_max(s, NULL, 0, 1), CG_F64, 0, NULL, &v, 0);
  assert_tensor(cg_prod(s, NULL, 0, 0), CG_F64, 0, NULL, &v, 0);
  assert_tensor(cg_logsumexp(s, NULL, 0, 0), CG_F64, 0, NULL, &v, 0);
  const int64_t col[2] = {3, 1}, three[1] = {3};
  const int axis1[1] = {1};
  const double x[3] = {1, -2, 3};
  assert_tensor(cg_mean(cgt_f64(2, col, x), axis1, 1, 0), CG_F64, 1, three, x, 0);
  assert_tensor(cg_min(tensor_of(CG_I64, 2, col, x), axis1, 1, 0), CG_I64, 1, three, x, 0);
}

/* Reducing an empty axis gives the identity: 0, 1, NaN (0/0) and ln 0 = -inf. */
static void test_empty_axes(void **state)
{
  const int64_t shape[2] = {0, 3}, three[1] = {3};
  const int axis0[1] = {0};
  cg_tensor *x = cgt_f64(2, shape, NULL);
  assert_tensor(cg_sum(x, axis0, 1, 0), CG_F64, 1, three, ((double[]){0, 0, 0}), 0);
  assert_tensor(cg_prod(x, axis0, 1, 0), CG_F64, 1, three, ((double[]){1, 1, 1}), 0);
  assert_tensor(cg_mean(x, axis0, 1, 0), CG_F64, 1, three, ((double[]){NAN, NAN, NAN}), 0);
  assert_tensor(cg_logsumexp(x, axis0, 1, 0), CG_F64, 1, three,
                ((double[]){-INFINITY, -INFINITY, -INFINITY}), 0);
  assert_tensor(cg_sum(tensor_of(CG_I32, 2, shape, NULL), axis0, 1, 0), CG_I32, 1, three,
                ((double[]){0, 0, 0}), 0);
  /* keeping the empty axis gives an empty output */
  const int axis1[1] = {1};
  const int64_t zero[1] = {0};
  assert_tensor(cg_max(x, axis1, 1, 0), CG_F64, 1, zero, NULL, 0);
}

/* A NaN shows in Sum, Max and Min (NumPy's rule), wherever it sits. */
static void test_nan_propagates(void **state)
{
  const int64_t three[1] = {3};
  const double x[3] = {1, NAN, 3}, y[3] = {NAN, 1, 3};
  assert_true(isnan(cg_item(cg_sum(cgt_f64(1, three, x), NULL, 0, 0))));
  assert_true(isnan(cg_item(cg_max(cgt_f64(1, three, x), NULL, 0, 0))));
  assert_true(isnan(cg_item(cg_min(cgt_f32(1, three, x), NULL, 0, 0))));
  assert_true(isnan(cg_item(cg_max(cgt_f64(1, three, y), NULL, 0, 0))));
  assert_true(isnan(cg_item(cg_logsumexp(cgt_f64(1, three, y), NULL, 0, 0))));
}

/* LogSumExp subtracts the maximum: no overflow at +-1000, and -inf rows stay -inf. */
static void test_logsumexp_stable(void **state)
{
  const int64_t shape[2] = {4, 2}, four[1] = {4};
  const int axis1[1] = {1};
  const double x[8] = {1000, 1000, -1000, -1000, 1000, -1000, -INFINITY, -INFINITY};
  /* 1000 + ln 2, -1000 + ln 2, 1000 + ln(1 + e^-2000) = 1000, -inf */
  const double y[4] = {1000.6931471805599, -999.3068528194401, 1000, -INFINITY};
  assert_tensor(cg_logsumexp(cgt_f64(2, shape, x), axis1, 1, 0), CG_F64, 1, four, y, 1e-15);
  assert_tensor(cg_logsumexp(cgt_f32(2, shape, x), axis1, 1, 0), CG_F32, 1, four, y, 1e-6);
}

/* Float32 sums accumulate in double: 2^24 + 1 + 1 is exact, where float steps would lose both 1s. */
static void test_f32_sum_accumulates_in_double(void **state)
{
  const int64_t three[1] = {3};
  const double x[3] = {16777216, 1, 1}, y[1] = {16777218};
  assert_tensor(cg_sum(cgt_f32(1, three, x), NULL, 0, 0), CG_F32, 0, NULL, y, 0);
}

/* Integer Sum and Prod wrap around (two's complement, no undefined behaviour); i64 Max
 * keeps all 64 bits. */
static void test_integer_exactness(void **state)
{
  const int64_t two[1] = {2};
  int32_t i32[2] = {INT32_MAX, 1};
  cg_tensor *s = cg_sum(cg_tensor_from(CG_I32, 1, two, i32), NULL, 0, 0);
  assert_non_null(s);
  assert_int_equal(*(int32_t *)cg_tensor_data(s), INT32_MIN);
  int64_t big[2] = {((int64_t)1 << 62) + 1, (int64_t)1 << 62};
  cg_tensor *m = cg_max(cg_tensor_from(CG_I64, 1, two, big), NULL, 0, 0);
  assert_non_null(m);
  assert_true(*(int64_t *)cg_tensor_data(m) == big[0]);
  int64_t halves[2] = {(int64_t)1 << 32, (int64_t)1 << 32}; /* 2^64 wraps to 0 */
  cg_tensor *p = cg_prod(cg_tensor_from(CG_I64, 1, two, halves), NULL, 0, 0);
  assert_non_null(p);
  assert_true(*(int64_t *)cg_tensor_data(p) == 0);
}

/* x = [[1, 3, 3], [5, 0, 5]]: the first index wins on ties. */
static void test_argmax_argmin(void **state)
{
  const int64_t shape[2] = {2, 3}, two[1] = {2}, three[1] = {3};
  const double x[6] = {1, 3, 3, 5, 0, 5};
  for (int di = 0; di < 4; di++) {
    cg_tensor *t = tensor_of(all_dtypes[di], 2, shape, x);
    assert_tensor(cg_argmax(t, 1), CG_I64, 1, two, ((double[]){1, 0}), 0);
    assert_tensor(cg_argmax(t, -1), CG_I64, 1, two, ((double[]){1, 0}), 0);
    assert_tensor(cg_argmax(t, 0), CG_I64, 1, three, ((double[]){1, 0, 1}), 0);
    assert_tensor(cg_argmin(t, 1), CG_I64, 1, two, ((double[]){0, 1}), 0);
    assert_tensor(cg_argmin(t, 0), CG_I64, 1, three, ((double[]){0, 1, 0}), 0);
  }
  /* a vector gives a rank-0 index; a NaN counts as the extremum, as in NumPy */
  const double v[4] = {2, NAN, 7, NAN};
  const int64_t four[1] = {4};
  double one = 1;
  assert_tensor(cg_argmax(cgt_f64(1, four, v), 0), CG_I64, 0, NULL, &one, 0);
  assert_tensor(cg_argmin(cgt_f32(1, four, v), 0), CG_I64, 0, NULL, &one, 0);
  assert_true(cg_find_op("ArgMax")->flags & CG_OP_NOT_DIFFERENTIABLE);
  assert_true(cg_find_op("ArgMin")->flags & CG_OP_NOT_DIFFERENTIABLE);
}

/* The ops answer to their names with attributes "axes" and "keepdims" / "axis". */
static void test_called_by_name(void **state)
{
  const int64_t shape[2] = {2, 3}, two[1] = {2}, kept[2] = {2, 1};
  cg_tensor *x = cgt_f64(2, shape, ((double[]){1, 2, 3, 4, 5, 6}));
  cg_attrs a = {0};
  cg_attrs_set_ints(&a, "axes", (const int64_t[]){-1}, 1);
  cg_attrs_set_int(&a, "keepdims", 1);
  assert_tensor(cg_call("Sum", &x, 1, &a), CG_F64, 2, kept, ((double[]){6, 15}), 0);
  assert_tensor(cg_call("Max", &x, 1, NULL), CG_F64, 0, NULL, ((double[]){6}), 0);
  cg_attrs b = {0};
  cg_attrs_set_int(&b, "axis", 1);
  assert_tensor(cg_call("ArgMin", &x, 1, &b), CG_I64, 1, two, ((double[]){0, 0}), 0);
}

/* ======================================================================================
 * Gradients at hand-computed points
 * ==================================================================================== */

/* d target / dx through a tape, seeded with seed (NULL: ones), or NULL with the error set. */
static cg_tensor *tape_gradient(reduce_fn fn, cg_tensor *x, const int *axes, int n_axes,
                                int keepdims, cg_tensor *seed)
{
  cg_tensor *dx = NULL;
  cg_grad_opts opts = {.output_gradient = seed};
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = fn(x, axes, n_axes, keepdims);
  cg_tape_end(tape);
  cg_tape_gradient(tape, y, &x, 1, &dx, &opts);
  cg_tape_free(tape);
  return dx;
}

static void test_known_gradients(void **state)
{
  const int64_t m23[2] = {2, 3}, three[1] = {3}, four[1] = {4};
  const int axis0[1] = {0}, axis1[1] = {1};
  const double x23[6] = {1, 3, 3, 5, 0, 2};
  cg_tensor *x = cgt_f64(2, m23, x23);

  /* Sum over axis 0 seeded with [1, 2, 3]: each row gets the seed */
  cg_tensor *seed = cgt_f64(1, three, ((double[]){1, 2, 3}));
  assert_tensor(tape_gradient(cg_sum, x, axis0, 1, 0, seed), CG_F64, 2, m23,
                ((double[]){1, 2, 3, 1, 2, 3}), 0);
  /* Mean of all 6: 1/6 each */
  const double sixth = 1.0 / 6;
  assert_tensor(tape_gradient(cg_mean, x, NULL, 0, 0, NULL), CG_F64, 2, m23,
                ((double[]){sixth, sixth, sixth, sixth, sixth, sixth}), 1e-15);
  /* Max over axis 1: row 0's two tied 3s share, row 1's 5 takes all */
  assert_tensor(tape_gradient(cg_max, x, axis1, 1, 1, NULL), CG_F64, 2, m23,
                ((double[]){0, 0.5, 0.5, 1, 0, 0}), 0);
  /* Min of all: the 0 */
  assert_tensor(tape_gradient(cg_min, x, NULL, 0, 0, NULL), CG_F64, 2, m23,
                ((double[]){0, 0, 0, 0, 1, 0}), 0);
  /* Prod of [2, 3, 4, 0.5] = 12: y / x */
  assert_tensor(tape_gradient(cg_prod, cgt_f64(1, four, ((double[]){2, 3, 4, 0.5})), NULL, 0, 0, NULL),
                CG_F64, 1, four, ((double[]){6, 4, 3, 24}), 1e-15);
  /* LogSumExp: softmax; of [0, ln 3] = [1/4, 3/4], of [1000, 1000] = [1/2, 1/2] (there
   * e^(x - y) inherits the rounding of y = 1000 + ln 2, whose ulp is 1.1e-13) */
  const int64_t two[1] = {2};
  assert_tensor(tape_gradient(cg_logsumexp, cgt_f64(1, two, ((double[]){0, log(3.0)})), NULL, 0, 0, NULL),
                CG_F64, 1, two, ((double[]){0.25, 0.75}), 1e-15);
  assert_tensor(tape_gradient(cg_logsumexp, cgt_f64(1, two, ((double[]){1000, 1000})), NULL, 0, 0, NULL),
                CG_F64, 1, two, ((double[]){0.5, 0.5}), 1e-12);
}

/* Second derivative of LogSumExp over a vector x: d/dx of sum(softmax(x) * w) at x = 0,
 * w = [1, 0]: softmax = 1/2 each; d softmax_0 / dx = [1/4, -1/4]. */
static void test_logsumexp_second_derivative(void **state)
{
  const int64_t two[1] = {2};
  cg_tensor *x = cgt_f64(1, two, ((double[]){0, 0})), *dx = NULL, *ddx = NULL;
  cg_tensor *w = cgt_f64(1, two, ((double[]){1, 0}));
  cg_tape *outer = cg_tape_begin(0);
  cg_tape_watch(outer, x);
  cg_tape *inner = cg_tape_begin(0);
  cg_tape_watch(inner, x);
  cg_tensor *y = cg_logsumexp(x, NULL, 0, 0);
  cg_tape_end(inner);
  assert_int_equal(cg_tape_gradient(inner, y, &x, 1, &dx, NULL), CG_OK);
  cg_tensor *picked = cg_sum(cg_mul(dx, w), NULL, 0, 0);
  cg_tape_end(outer);
  assert_int_equal(cg_tape_gradient(outer, picked, &x, 1, &ddx, NULL), CG_OK);
  cg_tape_free(inner);
  cg_tape_free(outer);
  assert_tensor(dx, CG_F64, 1, two, ((double[]){0.5, 0.5}), 1e-15);
  assert_tensor(ddx, CG_F64, 1, two, ((double[]){0.25, -0.25}), 1e-15);
}

/* Every row of the gradient-check table, in float64, at order 1 and 2 where the row asks. */
static void test_gradcheck_table(void **state)
{
  for (int i = 0; i < cg_cases_reduce_n; i++) {
    const cg_grad_case *c = &cg_cases_reduce[i];
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
  reduce_fn fn;
  cg_dtype dtype;
  int ndim;
  int64_t shape[2];
  int axes[2], n_axes;
  cg_status code;
  const char *message;
} bad_reduction;

static const bad_reduction bad_reductions[] = {
    {cg_sum, CG_F64, 2, {2, 3}, {2}, 1, CG_ERANGE, "Sum: axis 2 is out of range for rank 2 (input [2,3])"},
    {cg_mean, CG_F64, 2, {2, 3}, {-3}, 1, CG_ERANGE, "Mean: axis -3 is out of range for rank 2 (input [2,3])"},
    {cg_max, CG_F32, 2, {2, 3}, {0, -2}, 2, CG_EINVAL, "Max: axis -2 is given twice (input [2,3])"},
    {cg_min, CG_I32, 2, {2, 3}, {1, 1}, 2, CG_EINVAL, "Min: axis 1 is given twice (input [2,3])"},
    {cg_prod, CG_F64, 0, {0}, {0}, 1, CG_ERANGE, "Prod: axis 0 is out of range for rank 0"},
    {cg_logsumexp, CG_F64, 1, {4}, {-2}, 1, CG_ERANGE, "LogSumExp: axis -2 is out of range for rank 1 (input [4])"},
    {cg_sum, CG_F64, 2, {2, 3}, {0}, -1, CG_EINVAL, "Sum: n_axes must be in [0, 16], got -1"},
    {cg_max, CG_F64, 2, {2, 3}, {0}, 17, CG_EINVAL, "Max: n_axes must be in [0, 16], got 17"},
    {cg_sum, CG_BOOL, 2, {2, 3}, {0}, 0, CG_EDTYPE, "Sum: input 0 must be f32, f64, i32 or i64, got bool [2,3]"},
    {cg_prod, CG_BOOL, 1, {3}, {0}, 0, CG_EDTYPE, "Prod: input 0 must be f32, f64, i32 or i64, got bool [3]"},
    {cg_mean, CG_I32, 2, {2, 3}, {0}, 0, CG_EDTYPE, "Mean: input 0 must be f32 or f64, got i32 [2,3]"},
    {cg_logsumexp, CG_I64, 1, {3}, {0}, 0, CG_EDTYPE, "LogSumExp: input 0 must be f32 or f64, got i64 [3]"},
    {cg_max, CG_F64, 2, {0, 3}, {0}, 1, CG_ESHAPE, "Max: cannot reduce over empty axis 0 of [0,3]"},
    {cg_min, CG_I64, 2, {2, 0}, {0}, 0, CG_ESHAPE, "Min: cannot reduce over empty axis 1 of [2,0]"},
};

typedef struct {
  arg_fn fn;
  cg_dtype dtype;
  int ndim;
  int64_t shape[2];
  int axis;
  cg_status code;
  const char *message;
} bad_arg;

static const bad_arg bad_args[] = {
    {cg_argmax, CG_F64, 2, {2, 3}, 2, CG_ERANGE, "ArgMax: axis 2 is out of range for rank 2"},
    {cg_argmin, CG_I32, 2, {2, 3}, -3, CG_ERANGE, "ArgMin: axis -3 is out of range for rank 2"},
    {cg_argmax, CG_F32, 0, {0}, 0, CG_ERANGE, "ArgMax: axis 0 is out of range for rank 0"},
    {cg_argmin, CG_BOOL, 1, {3}, 0, CG_EDTYPE, "ArgMin: input 0 must be f32, f64, i32 or i64, got bool [3]"},
    {cg_argmax, CG_F64, 2, {2, 0}, 1, CG_ESHAPE, "ArgMax: cannot take the index over empty axis 1 of [2,0]"},
};

static void test_bad_reductions(void **state)
{
  const double values[6] = {1, 0, 2, 3, 1, 1};
  for (size_t i = 0; i < sizeof bad_reductions / sizeof bad_reductions[0]; i++) {
    const bad_reduction *b = &bad_reductions[i];
    cg_tensor *x = tensor_of(b->dtype, b->ndim, b->shape, values);
    assert_non_null(x);
    assert_null(b->fn(x, b->axes, b->n_axes, 0));
    assert_error(b->code, b->message);
  }
  for (size_t i = 0; i < sizeof bad_args / sizeof bad_args[0]; i++) {
    const bad_arg *b = &bad_args[i];
    cg_tensor *x = tensor_of(b->dtype, b->ndim, b->shape, values);
    assert_non_null(x);
    assert_null(b->fn(x, b->axis));
    assert_error(b->code, b->message);
  }
}

/* A NULL input keeps the cause: "<op>: input 0 is NULL", or the earlier error. */
static void test_null_inputs(void **state)
{
  const reduce_fn fns[6] = {cg_sum, cg_mean, cg_max, cg_min, cg_prod, cg_logsumexp};
  const char *names[6] = {"Sum", "Mean", "Max", "Min", "Prod", "LogSumExp"};
  char msg[64];
  for (int i = 0; i < 6; i++) {
    assert_null(fns[i](NULL, NULL, 0, 0));
    snprintf(msg, sizeof msg, "%s: input 0 is NULL", names[i]);
    assert_error(CG_EINVAL, msg);
  }
  assert_null(cg_argmax(NULL, 0));
  assert_error(CG_EINVAL, "ArgMax: input 0 is NULL");
  /* a bad n_axes after a failed op does not hide the first cause */
  const int64_t three[1] = {3};
  assert_null(cg_sum(cg_mean(tensor_of(CG_I32, 1, three, (double[]){1, 2, 3}), NULL, 0, 0), NULL, -1, 0));
  assert_error(CG_EDTYPE, "Mean: input 0 must be f32 or f64");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(test_known_reductions),
      cgt_test(test_rank3_axes),
      cgt_test(test_long_rows),
      cgt_test(test_blocked_sums_match_reference),
      cgt_test(test_scalar_and_size_one),
      cgt_test(test_empty_axes),
      cgt_test(test_nan_propagates),
      cgt_test(test_logsumexp_stable),
      cgt_test(test_f32_sum_accumulates_in_double),
      cgt_test(test_integer_exactness),
      cgt_test(test_argmax_argmin),
      cgt_test(test_called_by_name),
      cgt_test(test_known_gradients),
      cgt_test(test_logsumexp_second_derivative),
      cgt_test(test_gradcheck_table),
      cgt_test(test_bad_reductions),
      cgt_test(test_null_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

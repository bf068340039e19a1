/* test_ops_matmul.c - MatMul (src/ops/matmul.c): known products per dtype and transpose,
 * batch broadcasting, empty and integer-overflow cases, the BLAS path against the reference
 * kernel on random shapes, gradients at hand-computed points, the rows of
 * tools/cgrad/cases_matmul.c, and the errors for bad input. */
#include "util.h"
#include "cases.h"
#include "ops/matmul.h"
#include <math.h>
#include <stdio.h>

#define MAX_VALUES 48

/* A tensor of dtype d holding values (integers converted exactly, without cg_cast). */
static cg_tensor *tensor_of(cg_dtype d, int ndim, const int64_t *shape, const double *values)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  int32_t i32[MAX_VALUES];
  int64_t i64[MAX_VALUES];
  uint8_t b[MAX_VALUES];
  switch (d) {
  case CG_F32: return cgt_f32(ndim, shape, values);
  case CG_F64: return cgt_f64(ndim, shape, values);
  case CG_I32:
    for (int64_t i = 0; i < n; i++) i32[i] = (int32_t)values[i];
    return cg_tensor_from(d, ndim, shape, i32);
  case CG_I64:
    for (int64_t i = 0; i < n; i++) i64[i] = (int64_t)values[i];
    return cg_tensor_from(d, ndim, shape, i64);
  default:
    for (int64_t i = 0; i < n; i++) b[i] = values[i] != 0;
    return cg_tensor_from(d, ndim, shape, b);
  }
}

static const cg_dtype all_dtypes[4] = {CG_F32, CG_F64, CG_I32, CG_I64};

/* ======================================================================================
 * Forward: known values
 * ==================================================================================== */

/* A = [[1,2,3],[4,5,6]], B = [[7,8],[9,10],[11,12]], A B = [[58,64],[139,154]];
 * each row stores A and B as the transposes ask. */
typedef struct {
  const char *name;
  int transpose_a, transpose_b;
  int64_t shape_a[2], shape_b[2];
  double a[6], b[6];
} known_product;

static const known_product products[] = {
    {"a b", 0, 0, {2, 3}, {3, 2}, {1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}},
    {"a^T b", 1, 0, {3, 2}, {3, 2}, {1, 4, 2, 5, 3, 6}, {7, 8, 9, 10, 11, 12}},
    {"a b^T", 0, 1, {2, 3}, {2, 3}, {1, 2, 3, 4, 5, 6}, {7, 9, 11, 8, 10, 12}},
    {"a^T b^T", 1, 1, {3, 2}, {2, 3}, {1, 4, 2, 5, 3, 6}, {7, 9, 11, 8, 10, 12}},
};

static void test_known_products(void **state)
{
  const int64_t m22[2] = {2, 2};
  const double c[4] = {58, 64, 139, 154};
  for (size_t r = 0; r < sizeof products / sizeof products[0]; r++) {
    const known_product *p = &products[r];
    for (int di = 0; di < 4; di++) {
      cg_dtype d = all_dtypes[di];
      cg_tensor *y = cg_matmul_t(tensor_of(d, 2, p->shape_a, p->a), tensor_of(d, 2, p->shape_b, p->b),
                                 p->transpose_a, p->transpose_b);
      if (!y) fail_msg("%s (%s): %s", p->name, cg_dtype_name(d), cg_last_error());
      assert_tensor(y, d, 2, m22, c, 0);
    }
  }
}

/* Batch dims: a batched against one b (the folded GEMM), and [1,2,3] x [2,3,2] where a is
 * shared across b's batch. */
static void test_batched(void **state)
{
  const int64_t a_shape[3] = {2, 2, 3}, b_shape[2] = {3, 2}, out[3] = {2, 2, 2};
  const double a[12] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6};
  const double b[6] = {7, 8, 9, 10, 11, 12};
  const double c[8] = {58, 64, 139, 154, -58, -64, -139, -154};
  for (int di = 0; di < 4; di++) {
    cg_dtype d = all_dtypes[di];
    assert_tensor(cg_matmul(tensor_of(d, 3, a_shape, a), tensor_of(d, 2, b_shape, b)), d, 3, out, c, 0);
  }
  /* second b picks A's first two columns */
  const int64_t a1[3] = {1, 2, 3}, b2[3] = {2, 3, 2};
  const double bb[12] = {7, 8, 9, 10, 11, 12, 1, 0, 0, 1, 0, 0};
  const double cc[8] = {58, 64, 139, 154, 1, 2, 4, 5};
  for (int di = 0; di < 4; di++) {
    cg_dtype d = all_dtypes[di];
    assert_tensor(cg_matmul(tensor_of(d, 3, a1, a), tensor_of(d, 3, b2, bb)), d, 3, out, cc, 0);
  }
}

/* An empty inner dimension gives zeros; an empty outer one an empty product. */
static void test_empty(void **state)
{
  const int64_t a_shape[2] = {2, 0}, b_shape[2] = {0, 3}, out[2] = {2, 3};
  const double zeros[6] = {0};
  for (int di = 0; di < 4; di++) {
    cg_dtype d = all_dtypes[di];
    assert_tensor(cg_matmul(tensor_of(d, 2, a_shape, NULL), tensor_of(d, 2, b_shape, NULL)), d, 2,
                  out, zeros, 0);
  }
  const int64_t e[2] = {0, 3}, b32[2] = {3, 2}, e2[2] = {0, 2};
  const double b[6] = {1, 2, 3, 4, 5, 6};
  assert_tensor(cg_matmul(cgt_f64(2, e, NULL), cgt_f64(2, b32, b)), CG_F64, 2, e2, NULL, 0);
}

/* Integer products wrap around: 65536 * 65536 = 2^32 = 0 in i32. */
static void test_integer_wraparound(void **state)
{
  const int64_t one[2] = {1, 1};
  int32_t v = 65536;
  cg_tensor *y = cg_matmul(cg_tensor_from(CG_I32, 2, one, &v), cg_tensor_from(CG_I32, 2, one, &v));
  assert_non_null(y);
  assert_int_equal(*(int32_t *)cg_tensor_data(y), 0);
}

static void test_called_by_name(void **state)
{
  const known_product *p = &products[3];
  const int64_t m22[2] = {2, 2};
  cg_tensor *in[2] = {cgt_f64(2, p->shape_a, p->a), cgt_f64(2, p->shape_b, p->b)};
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "transpose_a", 1);
  cg_attrs_set_int(&a, "transpose_b", 1);
  assert_tensor(cg_call("MatMul", in, 2, &a), CG_F64, 2, m22, ((double[]){58, 64, 139, 154}), 0);
}

/* ======================================================================================
 * The BLAS path against the reference kernel
 * ==================================================================================== */

/* xorshift64*: the same numbers on every machine, without depending on another op family. */
static double next_uniform(uint64_t *s)
{
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return (double)((*s * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2 - 1;
}

static cg_tensor *random_tensor(cg_dtype d, int ndim, const int64_t *shape, uint64_t *seed)
{
  cg_tensor *t = cg_zeros(d, ndim, shape);
  int64_t n = cg_tensor_size(t);
  for (int64_t i = 0; i < n; i++) {
    double v = next_uniform(seed);
    if (d == CG_F32) ((float *)cg_tensor_data(t))[i] = (float)v;
    else ((double *)cg_tensor_data(t))[i] = v;
  }
  return t;
}

typedef struct {
  int ndim_a;
  int64_t shape_a[4];
  int ndim_b;
  int64_t shape_b[4];
  int transpose_a, transpose_b;
} product_shape;

static const product_shape random_shapes[] = {
    {2, {5, 7}, 2, {7, 3}, 0, 0},
    {2, {7, 5}, 2, {7, 3}, 1, 0},
    {2, {5, 7}, 2, {3, 7}, 0, 1},
    {2, {7, 5}, 2, {3, 7}, 1, 1},
    {2, {1, 1}, 2, {1, 1}, 0, 0},
    {2, {64, 33}, 2, {33, 60}, 0, 0},
    {3, {4, 5, 6}, 2, {6, 3}, 0, 0},       /* folded into one GEMM */
    {3, {4, 5, 6}, 2, {3, 6}, 0, 1},       /* folded, b transposed */
    {3, {4, 6, 5}, 2, {6, 3}, 1, 0},       /* a transposed: one GEMM per matrix */
    {3, {1, 5, 6}, 3, {3, 6, 4}, 0, 0},    /* a broadcast over b's batch */
    {2, {3, 4}, 3, {2, 4, 5}, 0, 0},
    {3, {2, 3, 4}, 3, {2, 4, 5}, 0, 0},
    {4, {2, 1, 3, 4}, 3, {5, 4, 2}, 0, 0}, /* batch [2,1] x [5] */
    {4, {2, 1, 4, 3}, 4, {1, 3, 2, 4}, 1, 1},
};

static void test_blas_matches_reference(void **state)
{
  const cg_dtype floats[2] = {CG_F32, CG_F64};
  uint64_t seed = 88172645463325252ull;
  for (size_t r = 0; r < sizeof random_shapes / sizeof random_shapes[0]; r++) {
    const product_shape *s = &random_shapes[r];
    for (int di = 0; di < 2; di++) {
      cg_dtype d = floats[di];
      cg_tensor *a = random_tensor(d, s->ndim_a, s->shape_a, &seed);
      cg_tensor *b = random_tensor(d, s->ndim_b, s->shape_b, &seed);
      cg_tensor *fast = cg_matmul_t(a, b, s->transpose_a, s->transpose_b);
      if (!fast) fail_msg("row %zu (%s): %s", r, cg_dtype_name(d), cg_last_error());
      cg_tensor *ref = cg_zeros(d, cg_tensor_ndim(fast), cg_tensor_shape(fast));
      assert_int_equal(cg__matmul_reference(a, b, s->transpose_a, s->transpose_b, ref), CG_OK);
      double want[4096];
      assert_true(cg_tensor_size(ref) <= 4096);
      cg_tensor_to_f64(ref, want, 4096);
      assert_tensor(fast, d, cg_tensor_ndim(ref), cg_tensor_shape(ref), want, d == CG_F32 ? 1e-5 : 1e-13);
    }
  }
}

/* ======================================================================================
 * Gradients at hand-computed points
 * ==================================================================================== */

/* d sum(op(a) op(b)) / da, db through a tape; a and b stored as the transposes ask. */
static void tape_gradients(cg_tensor *a, cg_tensor *b, int ta, int tb, cg_tensor **da, cg_tensor **db)
{
  cg_tensor *sources[2] = {a, b}, *grads[2] = {NULL, NULL};
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, a);
  cg_tape_watch(tape, b);
  cg_tensor *y = cg_matmul_t(a, b, ta, tb);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, y, sources, 2, grads, NULL), CG_OK);
  cg_tape_free(tape);
  *da = grads[0];
  *db = grads[1];
}

/* A = [[1,2],[3,4]], B = [[5,6],[7,8]], target sum(A B): dA = 1 B^T = [[11,15],[11,15]],
 * dB = A^T 1 = [[4,4],[6,6]]; a transposed input gets the transposed gradient. */
static void test_known_gradients(void **state)
{
  const int64_t m22[2] = {2, 2};
  const double A[4] = {1, 2, 3, 4}, At[4] = {1, 3, 2, 4};
  const double B[4] = {5, 6, 7, 8}, Bt[4] = {5, 7, 6, 8};
  const double dA[4] = {11, 15, 11, 15}, dAt[4] = {11, 11, 15, 15};
  const double dB[4] = {4, 4, 6, 6}, dBt[4] = {4, 6, 4, 6};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      cg_tensor *da, *db;
      tape_gradients(cgt_f64(2, m22, ta ? At : A), cgt_f64(2, m22, tb ? Bt : B), ta, tb, &da, &db);
      assert_tensor(da, CG_F64, 2, m22, ta ? dAt : dA, 0);
      assert_tensor(db, CG_F64, 2, m22, tb ? dBt : dB, 0);
    }
  /* a batch of two A's against one B: B's gradient sums over the batch */
  const int64_t b222[3] = {2, 2, 2};
  const double AA[8] = {1, 2, 3, 4, 1, 2, 3, 4};
  cg_tensor *da, *db;
  tape_gradients(cgt_f64(3, b222, AA), cgt_f64(2, m22, B), 0, 0, &da, &db);
  assert_tensor(da, CG_F64, 3, b222, ((double[]){11, 15, 11, 15, 11, 15, 11, 15}), 0);
  assert_tensor(db, CG_F64, 2, m22, ((double[]){8, 8, 12, 12}), 0);
}

/* Every row of the gradient-check table, in float64, at order 1 and 2. */
static void test_gradcheck_table(void **state)
{
  for (int i = 0; i < cg_cases_matmul_n; i++) {
    const cg_grad_case *c = &cg_cases_matmul[i];
    for (int order = 1; order <= (c->order2 ? 2 : 1); order++) {
      cg_gradcheck_report report;
      cg_status st = cg_run_grad_case(c, CG_F64, order, 777 + (uint64_t)i, &report);
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
  cg_dtype dtype_a;
  int ndim_a;
  int64_t shape_a[3];
  cg_dtype dtype_b;
  int ndim_b;
  int64_t shape_b[3];
  int transpose_a, transpose_b;
  cg_status code;
  const char *message;
} bad_product;

static const bad_product bad_products[] = {
    {CG_F64, 2, {2, 3}, CG_F64, 2, {4, 5}, 0, 0, CG_ESHAPE, "MatMul: inner dimensions differ: [2,3] x [4,5]"},
    {CG_F32, 2, {3, 2}, CG_F32, 2, {4, 5}, 1, 0, CG_ESHAPE,
     "MatMul: inner dimensions differ: [3,2] x [4,5] (a transposed)"},
    {CG_I32, 2, {2, 3}, CG_I32, 2, {5, 4}, 0, 1, CG_ESHAPE,
     "MatMul: inner dimensions differ: [2,3] x [5,4] (b transposed)"},
    {CG_F64, 2, {2, 3}, CG_F64, 2, {3, 4}, 1, 1, CG_ESHAPE,
     "MatMul: inner dimensions differ: [2,3] x [3,4] (both transposed)"},
    {CG_F64, 1, {3}, CG_F64, 2, {3, 4}, 0, 0, CG_ESHAPE, "MatMul: inputs need rank >= 2"},
    {CG_F64, 2, {2, 3}, CG_F64, 1, {3}, 0, 0, CG_ESHAPE, "[2,3] x [3]"},
    {CG_F64, 0, {0}, CG_F64, 0, {0}, 0, 0, CG_ESHAPE, "MatMul: inputs need rank >= 2"},
    {CG_F64, 3, {2, 2, 3}, CG_F64, 3, {3, 3, 4}, 0, 0, CG_ESHAPE,
     "MatMul: batch dimensions do not broadcast: [2,2,3] x [3,3,4]"},
    {CG_F32, 2, {2, 3}, CG_F64, 2, {3, 4}, 0, 0, CG_EDTYPE, "MatMul: dtypes differ: f32 [2,3] vs f64 [3,4]"},
    {CG_BOOL, 2, {2, 3}, CG_BOOL, 2, {3, 4}, 0, 0, CG_EDTYPE,
     "MatMul: inputs must be f32, f64, i32 or i64, got bool [2,3] x [3,4]"},
    /* empty, so it costs no memory, but still beyond what BLAS can index */
    {CG_F32, 2, {0, 2147483648}, CG_F32, 2, {2147483648, 0}, 0, 0, CG_ESHAPE,
     "MatMul: a matrix dimension exceeds BLAS's limit of 2147483647: [0,2147483648] x [2147483648,0]"},
};

static void test_bad_inputs(void **state)
{
  const double values[MAX_VALUES] = {1, 2, 3};
  for (size_t i = 0; i < sizeof bad_products / sizeof bad_products[0]; i++) {
    const bad_product *p = &bad_products[i];
    cg_tensor *a = tensor_of(p->dtype_a, p->ndim_a, p->shape_a, values);
    cg_tensor *b = tensor_of(p->dtype_b, p->ndim_b, p->shape_b, values);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(cg_matmul_t(a, b, p->transpose_a, p->transpose_b));
    assert_error(p->code, p->message);
  }
  const int64_t m23[2] = {2, 3};
  assert_null(cg_matmul(NULL, cgt_f64(2, m23, values)));
  assert_error(CG_EINVAL, "MatMul: input 0 is NULL");
  assert_null(cg_matmul(cgt_f64(2, m23, values), NULL));
  assert_error(CG_EINVAL, "MatMul: input 1 is NULL");
}

/* The reference kernel checks what it is given, too. */
static void test_reference_checks(void **state)
{
  const int64_t m23[2] = {2, 3}, m34[2] = {3, 4}, m22[2] = {2, 2};
  const double values[12] = {0};
  cg_tensor *a = cgt_f64(2, m23, values), *b = cgt_f64(2, m34, values);
  assert_int_equal(cg__matmul_reference(a, b, 0, 0, cg_zeros(CG_F64, 2, m22)), CG_ESHAPE);
  assert_error(CG_ESHAPE, "MatMul: output shape [2,2], expected [2,4]");
  const int64_t m24[2] = {2, 4};
  assert_int_equal(cg__matmul_reference(a, b, 0, 0, cg_zeros(CG_F32, 2, m24)), CG_EDTYPE);
  assert_error(CG_EDTYPE, "MatMul: dtypes f64 x f64 -> f32");
  assert_int_equal(cg__matmul_reference(a, b, 1, 0, cg_zeros(CG_F64, 2, m24)), CG_ESHAPE);
  assert_error(CG_ESHAPE, "MatMul: inner dimensions differ: [2,3] x [3,4] (a transposed)");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(test_known_products),
      cgt_test(test_batched),
      cgt_test(test_empty),
      cgt_test(test_integer_wraparound),
      cgt_test(test_called_by_name),
      cgt_test(test_blas_matches_reference),
      cgt_test(test_known_gradients),
      cgt_test(test_gradcheck_table),
      cgt_test(test_bad_inputs),
      cgt_test(test_reference_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

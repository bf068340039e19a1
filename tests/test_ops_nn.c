/* test_ops_nn.c - the neural-network ops: known forward values in f32 and f64 (logits of
 * +-1000 included), gradients at hand-computed points, the gradient-check rows of
 * cases_nn.c, and a table of bad inputs with the error each must give. */
#include "util.h"
#include "cases.h"
#include <math.h>
#include <string.h>

#define LN2 0.69314718055994531
static const cg_dtype float_dtypes[] = {CG_F32, CG_F64};
static const double no_values[1] = {0}; /* for empty tensors */

static cg_tensor *floats(cg_dtype d, int ndim, const int64_t *shape, const double *v)
{
  return d == CG_F32 ? cgt_f32(ndim, shape, v) : cgt_f64(ndim, shape, v);
}

/* Class ids as i32 or i64. */
static cg_tensor *labels_of(cg_dtype d, int ndim, const int64_t *shape, const int64_t *v)
{
  int32_t v32[16];
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  if (d == CG_I64) return cg_tensor_from(CG_I64, ndim, shape, v);
  for (int64_t i = 0; i < n; i++) v32[i] = (int32_t)v[i];
  return cg_tensor_from(CG_I32, ndim, shape, v32);
}

/* ======================================================================================
 * Forward values
 * ==================================================================================== */

/* softmax([1,2,3]) = e^k / (e + e^2 + e^3) = [0.0900306, 0.2447285, 0.6652410]; rows are
 * shift-invariant, so [-1,0,1] gives the same. */
static void test_softmax_values(void **state)
{
  static const int64_t s23[] = {2, 3};
  static const double x[] = {1, 2, 3, -1, 0, 1};
  static const double y[] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219,
                             0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    assert_tensor(cg_softmax(floats(d, 2, s23, x)), d, 2, s23, y, 1e-6);
  }
}

/* Logits of +-1000: softmax([1000,0]) = [1,0], softmax([-1000,1000]) = [0,1],
 * softmax([1000,1000]) = [.5,.5]; nothing overflows. */
static void test_softmax_extreme_logits(void **state)
{
  static const int64_t s32[] = {3, 2};
  static const double x[] = {1000, 0, -1000, 1000, 1000, 1000};
  static const double y[] = {1, 0, 0, 1, 0.5, 0.5};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    assert_tensor(cg_softmax(floats(d, 2, s32, x)), d, 2, s32, y, 1e-6);
  }
}

/* Rank 1 and rank 3 rows, one class (always 1), and empty inputs keep their shape. */
static void test_softmax_shapes(void **state)
{
  static const int64_t s3[] = {3}, s31[] = {3, 1}, s122[] = {1, 2, 2}, s20[] = {2, 0},
                       s03[] = {0, 3};
  static const double x3[] = {1, 2, 3}, ones[] = {1, 1, 1};
  static const double x122[] = {0, 0, 1000, 0}, y122[] = {0.5, 0.5, 1, 0};
  static const double y3[] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  assert_tensor(cg_softmax(cgt_f64(1, s3, x3)), CG_F64, 1, s3, y3, 1e-12);
  assert_tensor(cg_softmax(cgt_f64(2, s31, x3)), CG_F64, 2, s31, ones, 1e-12);
  assert_tensor(cg_softmax(cgt_f64(3, s122, x122)), CG_F64, 3, s122, y122, 1e-12);
  assert_tensor(cg_softmax(cg_zeros(CG_F32, 2, s20)), CG_F32, 2, s20, no_values, 0);
  assert_tensor(cg_log_softmax(cg_zeros(CG_F64, 2, s03)), CG_F64, 2, s03, no_values, 0);
}

/* log_softmax([1,2,3]) = k - ln(e + e^2 + e^3) = [-2.4076060, -1.4076060, -0.4076060];
 * log_softmax([1000,-1000]) = [0, -2000] exactly (no log of an underflowed 0). */
static void test_log_softmax_values(void **state)
{
  static const int64_t s23[] = {2, 3}, s2[] = {2};
  static const double x[] = {1, 2, 3, 11, 12, 13};
  static const double y[] = {-2.40760596444438, -1.40760596444438, -0.40760596444438,
                             -2.40760596444438, -1.40760596444438, -0.40760596444438};
  static const double big[] = {1000, -1000}, big_y[] = {0, -2000};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    assert_tensor(cg_log_softmax(floats(d, 2, s23, x)), d, 2, s23, y, 1e-6);
    assert_tensor(cg_log_softmax(floats(d, 1, s2, big)), d, 1, s2, big_y, 1e-6);
  }
}

/* Row 1: one-hot on class 2 of [1,2,3] -> 0.4076060. Row 2: labels [.5,.5,0] ->
 * .5*2.4076060 + .5*1.4076060 = 1.9076060. Logits [1000,-1000] with labels [0,1] -> 2000,
 * with labels [1,0] -> 0. */
static void test_softmax_xent_values(void **state)
{
  static const int64_t s23[] = {2, 3}, s2[] = {2}, s22[] = {2, 2};
  static const double z[] = {0, 0, 1, 0.5, 0.5, 0}, x[] = {1, 2, 3, 1, 2, 3};
  static const double loss[] = {0.40760596444438, 1.90760596444438};
  static const double big_z[] = {0, 1, 1, 0}, big_x[] = {1000, -1000, 1000, -1000};
  static const double big_loss[] = {2000, 0};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    cg_tensor *y = cg_softmax_cross_entropy_with_logits(floats(d, 2, s23, z), floats(d, 2, s23, x));
    assert_tensor(y, d, 1, s2, loss, 1e-6);
    y = cg_softmax_cross_entropy_with_logits(floats(d, 2, s22, big_z), floats(d, 2, s22, big_x));
    assert_tensor(y, d, 1, s2, big_loss, 1e-6);
    y = cg_softmax_cross_entropy_with_logits(floats(d, 1, s2, big_z), floats(d, 1, s2, big_x));
    assert_tensor(y, d, 0, NULL, big_loss, 1e-6);
  }
}

/* Labels [2,0] on rows [1,2,3]: [0.4076060, 2.4076060]; label 1 of [1000,-1000]: 2000.
 * Rank-1 logits take a rank-0 label. Empty batches give empty losses. */
static void test_sparse_xent_values(void **state)
{
  static const int64_t s2[] = {2}, s23[] = {2, 3}, s0[] = {0}, s03[] = {0, 3};
  static const int64_t ids[] = {2, 0}, id1[] = {1};
  static const double x[] = {1, 2, 3, 1, 2, 3}, big_x[] = {1000, -1000};
  static const double loss[] = {0.40760596444438, 2.40760596444438}, big_loss[] = {2000};
  static const cg_dtype label_dtypes[] = {CG_I32, CG_I64};
  for (int i = 0; i < 2; i++) {
    for (int k = 0; k < 2; k++) {
      cg_dtype d = float_dtypes[k], ld = label_dtypes[i];
      cg_tensor *y = cg_sparse_softmax_cross_entropy_with_logits(labels_of(ld, 1, s2, ids),
                                                                 floats(d, 2, s23, x));
      assert_tensor(y, d, 1, s2, loss, 1e-6);
      y = cg_sparse_softmax_cross_entropy_with_logits(labels_of(ld, 0, NULL, id1),
                                                      floats(d, 1, s2, big_x));
      assert_tensor(y, d, 0, NULL, big_loss, 1e-6);
    }
  }
  cg_tensor *y = cg_sparse_softmax_cross_entropy_with_logits(cg_zeros(CG_I64, 1, s0),
                                                             cg_zeros(CG_F32, 2, s03));
  assert_tensor(y, CG_F32, 1, s0, no_values, 0);
}

/* max(x,0) - x*z + ln(1+e^-|x|):
 *   z=.5,  x=0     -> ln 2 = 0.6931472
 *   z=0,   x=2     -> 2 + ln(1+e^-2) = 2.1269280
 *   z=1,   x=-2    -> 0 + 2 + ln(1+e^-2) = 2.1269280
 *   z=1,   x=1000  -> 1000 - 1000 + 0 = 0
 *   z=.25, x=-1000 -> 0 + 250 + 0 = 250 */
static void test_sigmoid_xent_values(void **state)
{
  static const int64_t s5[] = {5};
  static const double z[] = {0.5, 0, 1, 1, 0.25}, x[] = {0, 2, -2, 1000, -1000};
  static const double loss[] = {LN2, 2.1269280110429727, 2.1269280110429727, 0, 250};
  static const double z0[] = {0.5}, x0[] = {0};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    assert_tensor(cg_sigmoid_cross_entropy_with_logits(floats(d, 1, s5, z), floats(d, 1, s5, x)),
                  d, 1, s5, loss, 1e-6);
    assert_tensor(cg_sigmoid_cross_entropy_with_logits(floats(d, 0, NULL, z0),
                                                       floats(d, 0, NULL, x0)),
                  d, 0, NULL, loss, 1e-6);
  }
}

/* [[1,2,3],[4,5,6]] + [10,20,30] = [[11,22,33],[14,25,36]]; NHWC [1,2,1,2] + [100,200];
 * rank 1 [1,2] + [3,4] = [4,6]. */
static void test_bias_add_values(void **state)
{
  static const int64_t s23[] = {2, 3}, s3[] = {3}, s1212[] = {1, 2, 1, 2}, s2[] = {2};
  static const double x[] = {1, 2, 3, 4, 5, 6}, b[] = {10, 20, 30};
  static const double y[] = {11, 22, 33, 14, 25, 36};
  static const double x4[] = {1, 2, 3, 4}, b4[] = {100, 200}, y4[] = {101, 202, 103, 204};
  static const double b1[] = {3, 4}, y1[] = {4, 6};
  for (int k = 0; k < 2; k++) {
    cg_dtype d = float_dtypes[k];
    assert_tensor(cg_bias_add(floats(d, 2, s23, x), floats(d, 1, s3, b)), d, 2, s23, y, 0);
    assert_tensor(cg_bias_add(floats(d, 4, s1212, x4), floats(d, 1, s2, b4)), d, 4, s1212, y4, 0);
    assert_tensor(cg_bias_add(floats(d, 1, s2, x4), floats(d, 1, s2, b1)), d, 1, s2, y1, 0);
  }
}

/* ======================================================================================
 * Gradients at hand-computed points (through a tape)
 * ==================================================================================== */

typedef cg_tensor *(*nn_fn)(cg_tensor *const *x);
static cg_tensor *softmax_of(cg_tensor *const *x) { return cg_softmax(x[0]); }
static cg_tensor *log_softmax_of(cg_tensor *const *x) { return cg_log_softmax(x[0]); }
static cg_tensor *softmax_xent_of(cg_tensor *const *x)
{
  return cg_softmax_cross_entropy_with_logits(x[0], x[1]);
}
static cg_tensor *sparse_xent_of(cg_tensor *const *x)
{
  return cg_sparse_softmax_cross_entropy_with_logits(x[0], x[1]);
}
static cg_tensor *sigmoid_xent_of(cg_tensor *const *x)
{
  return cg_sigmoid_cross_entropy_with_logits(x[0], x[1]);
}
static cg_tensor *bias_add_of(cg_tensor *const *x) { return cg_bias_add(x[0], x[1]); }

/* d f(x) / d x[i] for every input, seeded with `seed` (NULL: ones). */
static void gradients(nn_fn f, cg_tensor *const *x, int n, cg_tensor *seed, cg_tensor **dx)
{
  cg_tape *tape = cg_tape_begin(0);
  assert_non_null(tape);
  for (int i = 0; i < n; i++)
    if (cg_dtype_is_float(cg_tensor_dtype(x[i])))
      assert_int_equal(cg_tape_watch(tape, x[i]), CG_OK);
  cg_tensor *y = f(x);
  assert_non_null(y);
  cg_grad_opts opts = {seed, CG_UNCONNECTED_NONE};
  assert_int_equal(cg_tape_gradient(tape, y, x, n, dx, &opts), CG_OK);
  cg_tape_free(tape);
}

/* softmax([0,0]) = [.5,.5]; with dy = [1,0]: dx = y*(dy - y.dy) = [.5*.5, .5*-.5]. */
static void test_softmax_grad(void **state)
{
  static const int64_t s2[] = {2};
  static const double zero[] = {0, 0}, seed[] = {1, 0}, dx_want[] = {0.25, -0.25};
  cg_tensor *x = cgt_f64(1, s2, zero), *dx;
  gradients(softmax_of, &x, 1, cgt_f64(1, s2, seed), &dx);
  assert_tensor(dx, CG_F64, 1, s2, dx_want, 1e-12);
}

/* log_softmax([0,0]) = [-ln2,-ln2]; dy = [1,0]: dx = dy - e^y*sum(dy) = [.5, -.5]. */
static void test_log_softmax_grad(void **state)
{
  static const int64_t s2[] = {2};
  static const double zero[] = {0, 0}, seed[] = {1, 0}, dx_want[] = {0.5, -0.5};
  cg_tensor *x = cgt_f64(1, s2, zero), *dx;
  gradients(log_softmax_of, &x, 1, cgt_f64(1, s2, seed), &dx);
  assert_tensor(dx, CG_F64, 1, s2, dx_want, 1e-12);
}

/* labels [0,1], logits [0,0]: dlogits = softmax - labels = [.5,-.5],
 * dlabels = -log_softmax = [ln2, ln2]. At logits [1000,-1000]: dlogits = [1,-1],
 * dlabels = [0, 2000]; finite. */
static void test_softmax_xent_grad(void **state)
{
  static const int64_t s2[] = {2};
  static const double z[] = {0, 1}, zero[] = {0, 0}, big[] = {1000, -1000};
  static const double dz_want[] = {LN2, LN2}, dx_want[] = {0.5, -0.5};
  static const double big_dz[] = {0, 2000}, big_dx[] = {1, -1};
  cg_tensor *in[2] = {cgt_f64(1, s2, z), cgt_f64(1, s2, zero)}, *d[2];
  gradients(softmax_xent_of, in, 2, NULL, d);
  assert_tensor(d[0], CG_F64, 1, s2, dz_want, 1e-12);
  assert_tensor(d[1], CG_F64, 1, s2, dx_want, 1e-12);
  in[1] = cgt_f64(1, s2, big);
  gradients(softmax_xent_of, in, 2, NULL, d);
  assert_tensor(d[0], CG_F64, 1, s2, big_dz, 1e-12);
  assert_tensor(d[1], CG_F64, 1, s2, big_dx, 1e-12);
}

/* label 1, logits [[0,0]], dy = [3]: dlogits = 3*([.5,.5] - [0,1]) = [[1.5,-1.5]];
 * the integer labels get none. */
static void test_sparse_xent_grad(void **state)
{
  static const int64_t s1[] = {1}, s12[] = {1, 2};
  static const int64_t k[] = {1};
  static const double zero[] = {0, 0}, seed[] = {3}, dx_want[] = {1.5, -1.5};
  cg_tensor *in[2] = {labels_of(CG_I32, 1, s1, k), cgt_f64(2, s12, zero)}, *d[2];
  gradients(sparse_xent_of, in, 2, cgt_f64(1, s1, seed), d);
  assert_null(d[0]);
  assert_tensor(d[1], CG_F64, 2, s12, dx_want, 1e-12);
}

/* z = .25, x = 2: dx = sigmoid(2) - .25 = 0.6307971, dz = -x = -2. */
static void test_sigmoid_xent_grad(void **state)
{
  static const double z[] = {0.25}, x[] = {2}, dz_want[] = {-2}, dx_want[] = {0.6307970779778823};
  cg_tensor *in[2] = {cgt_f64(0, NULL, z), cgt_f64(0, NULL, x)}, *d[2];
  gradients(sigmoid_xent_of, in, 2, NULL, d);
  assert_tensor(d[0], CG_F64, 0, NULL, dz_want, 1e-12);
  assert_tensor(d[1], CG_F64, 0, NULL, dx_want, 1e-12);
}

/* y = x + b over [2,3], seed ones: dx = ones, db = column sums = [2,2,2]. Rank 1: db = dy. */
static void test_bias_add_grad(void **state)
{
  static const int64_t s23[] = {2, 3}, s3[] = {3};
  static const double ones[] = {1, 1, 1, 1, 1, 1}, twos[] = {2, 2, 2};
  static const double seed3[] = {1, 2, 3};
  cg_tensor *in[2] = {cg_zeros(CG_F64, 2, s23), cg_zeros(CG_F64, 1, s3)}, *d[2];
  gradients(bias_add_of, in, 2, NULL, d);
  assert_tensor(d[0], CG_F64, 2, s23, ones, 0);
  assert_tensor(d[1], CG_F64, 1, s3, twos, 0);
  in[0] = cg_zeros(CG_F64, 1, s3);
  gradients(bias_add_of, in, 2, cgt_f64(1, s3, seed3), d);
  assert_tensor(d[0], CG_F64, 1, s3, seed3, 0);
  assert_tensor(d[1], CG_F64, 1, s3, seed3, 0);
}

/* ======================================================================================
 * Gradient-check rows (cases_nn.c): f64 at order 1 and 2, and f32 at order 1
 * ==================================================================================== */

static void run_case(const cg_grad_case *c, cg_dtype d, int order)
{
  cg_gradcheck_report report;
  cg_status s = cg_run_grad_case(c, d, order, 42, &report);
  if (s != CG_OK)
    fail_msg("%s (%s), %s, order %d: %s [%s]", c->op, c->label, cg_dtype_name(d), order,
             report.message, cg_last_error());
}

static void test_grad_cases(void **state)
{
  assert_true(cg_cases_nn_n > 0);
  for (int i = 0; i < cg_cases_nn_n; i++) {
    const cg_grad_case *c = &cg_cases_nn[i];
    run_case(c, CG_F64, 1);
    if (c->order2) run_case(c, CG_F64, 2);
    run_case(c, CG_F32, 1);
  }
}

/* Every op of this family has at least one row. */
static void test_every_op_has_a_case(void **state)
{
  static const char *const ops[] = {"Softmax", "LogSoftmax", "SoftmaxCrossEntropyWithLogits",
                                    "SparseSoftmaxCrossEntropyWithLogits",
                                    "SigmoidCrossEntropyWithLogits", "BiasAdd"};
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    int rows = 0;
    assert_non_null(cg_find_op(ops[k]));
    for (int i = 0; i < cg_cases_nn_n; i++) rows += strcmp(cg_cases_nn[i].op, ops[k]) == 0;
    if (!rows) fail_msg("%s has no gradient-check row", ops[k]);
  }
}

/* ======================================================================================
 * Bad inputs: each row must fail with this code and a message containing this text
 * ==================================================================================== */

typedef struct {
  cg_dtype dtype;
  int ndim;
  int64_t shape[3];
} spec;

typedef struct {
  const char *op;
  int n_in;
  spec in[2];
  cg_status code;
  const char *message;
} bad_input;

static const bad_input bad_inputs[] = {
    {"Softmax", 1, {{CG_I32, 2, {2, 3}}}, CG_EDTYPE,
     "Softmax: input 0 must be f32 or f64, got i32 [2,3]"},
    {"Softmax", 1, {{CG_F64, 0, {0}}}, CG_ESHAPE,
     "Softmax: logits need a class axis (rank >= 1), got shape []"},
    {"LogSoftmax", 1, {{CG_BOOL, 1, {3}}}, CG_EDTYPE,
     "LogSoftmax: input 0 must be f32 or f64, got bool [3]"},
    {"LogSoftmax", 1, {{CG_F32, 0, {0}}}, CG_ESHAPE, "LogSoftmax: logits need a class axis"},
    {"SoftmaxCrossEntropyWithLogits", 2, {{CG_F64, 2, {2, 3}}, {CG_F64, 2, {2, 4}}}, CG_ESHAPE,
     "SoftmaxCrossEntropyWithLogits: labels and logits differ in shape: [2,3] vs [2,4]"},
    {"SoftmaxCrossEntropyWithLogits", 2, {{CG_F64, 1, {3}}, {CG_F64, 2, {2, 3}}}, CG_ESHAPE,
     "differ in shape: [3] vs [2,3]"},
    {"SoftmaxCrossEntropyWithLogits", 2, {{CG_F32, 2, {2, 3}}, {CG_F64, 2, {2, 3}}}, CG_EDTYPE,
     "SoftmaxCrossEntropyWithLogits: dtypes differ: f32 [2,3] vs f64 [2,3]"},
    {"SoftmaxCrossEntropyWithLogits", 2, {{CG_I32, 1, {3}}, {CG_I32, 1, {3}}}, CG_EDTYPE,
     "SoftmaxCrossEntropyWithLogits: input 1 must be f32 or f64, got i32 [3]"},
    {"SoftmaxCrossEntropyWithLogits", 2, {{CG_F64, 0, {0}}, {CG_F64, 0, {0}}}, CG_ESHAPE,
     "SoftmaxCrossEntropyWithLogits: logits need a class axis (rank >= 1), got shape []"},
    {"SoftmaxCrossEntropyWithLogits", 2, {{CG_F64, 2, {2, 0}}, {CG_F64, 2, {2, 0}}}, CG_ESHAPE,
     "SoftmaxCrossEntropyWithLogits: logits have no classes (last axis is 0): [2,0]"},
    {"SparseSoftmaxCrossEntropyWithLogits", 2, {{CG_F64, 1, {2}}, {CG_F64, 2, {2, 3}}}, CG_EDTYPE,
     "SparseSoftmaxCrossEntropyWithLogits: labels must be i32 or i64, got f64"},
    {"SparseSoftmaxCrossEntropyWithLogits", 2, {{CG_I32, 1, {3}}, {CG_F64, 2, {2, 3}}}, CG_ESHAPE,
     "SparseSoftmaxCrossEntropyWithLogits: labels must have the shape of logits without the "
     "class axis: [3] vs [2,3]"},
    {"SparseSoftmaxCrossEntropyWithLogits", 2, {{CG_I64, 2, {2, 3}}, {CG_F64, 2, {2, 3}}},
     CG_ESHAPE, "without the class axis: [2,3] vs [2,3]"},
    {"SparseSoftmaxCrossEntropyWithLogits", 2, {{CG_I32, 1, {2}}, {CG_I64, 2, {2, 3}}}, CG_EDTYPE,
     "SparseSoftmaxCrossEntropyWithLogits: input 1 must be f32 or f64, got i64 [2,3]"},
    {"SparseSoftmaxCrossEntropyWithLogits", 2, {{CG_I32, 0, {0}}, {CG_F32, 0, {0}}}, CG_ESHAPE,
     "SparseSoftmaxCrossEntropyWithLogits: logits need a class axis"},
    {"SparseSoftmaxCrossEntropyWithLogits", 2, {{CG_I32, 1, {2}}, {CG_F32, 2, {2, 0}}}, CG_ESHAPE,
     "SparseSoftmaxCrossEntropyWithLogits: logits have no classes (last axis is 0): [2,0]"},
    {"SigmoidCrossEntropyWithLogits", 2, {{CG_F64, 1, {2}}, {CG_F64, 1, {3}}}, CG_ESHAPE,
     "SigmoidCrossEntropyWithLogits: labels and logits differ in shape: [2] vs [3]"},
    {"SigmoidCrossEntropyWithLogits", 2, {{CG_F64, 1, {3}}, {CG_F32, 1, {3}}}, CG_EDTYPE,
     "SigmoidCrossEntropyWithLogits: dtypes differ: f64 [3] vs f32 [3]"},
    {"SigmoidCrossEntropyWithLogits", 2, {{CG_I64, 1, {3}}, {CG_I64, 1, {3}}}, CG_EDTYPE,
     "SigmoidCrossEntropyWithLogits: input 1 must be f32 or f64, got i64 [3]"},
    {"BiasAdd", 2, {{CG_F64, 2, {2, 3}}, {CG_F64, 1, {4}}}, CG_ESHAPE,
     "BiasAdd: bias must be 1-D with the length of x's last axis: [2,3] vs [4]"},
    {"BiasAdd", 2, {{CG_F64, 2, {2, 3}}, {CG_F64, 2, {1, 3}}}, CG_ESHAPE,
     "BiasAdd: bias must be 1-D with the length of x's last axis: [2,3] vs [1,3]"},
    {"BiasAdd", 2, {{CG_F64, 2, {2, 3}}, {CG_F64, 0, {0}}}, CG_ESHAPE, "[2,3] vs []"},
    {"BiasAdd", 2, {{CG_F32, 0, {0}}, {CG_F32, 1, {1}}}, CG_ESHAPE,
     "BiasAdd: x needs a channel axis (rank >= 1), got shape []"},
    {"BiasAdd", 2, {{CG_F32, 2, {2, 3}}, {CG_F64, 1, {3}}}, CG_EDTYPE,
     "BiasAdd: dtypes differ: f32 [2,3] vs f64 [3]"},
    {"BiasAdd", 2, {{CG_I32, 2, {2, 3}}, {CG_I32, 1, {3}}}, CG_EDTYPE,
     "BiasAdd: input 0 must be f32 or f64, got i32 [2,3]"},
};

static void test_bad_inputs(void **state)
{
  for (size_t r = 0; r < sizeof bad_inputs / sizeof bad_inputs[0]; r++) {
    const bad_input *b = &bad_inputs[r];
    cg_tensor *in[2];
    for (int i = 0; i < b->n_in; i++)
      in[i] = cg_zeros(b->in[i].dtype, b->in[i].ndim, b->in[i].shape);
    cg_tensor *y = cg_call(b->op, in, b->n_in, NULL);
    if (y) fail_msg("bad input row %zu (%s) did not fail", r, b->op);
    assert_error(b->code, b->message);
  }
}

/* Labels are checked against [0, C) while running, as the data decides. */
static void test_sparse_label_out_of_range(void **state)
{
  static const int64_t s2[] = {2}, s23[] = {2, 3};
  static const int64_t too_big[] = {0, 3}, negative[] = {-1, 0};
  cg_tensor *x = cg_zeros(CG_F64, 2, s23);
  assert_null(cg_sparse_softmax_cross_entropy_with_logits(labels_of(CG_I32, 1, s2, too_big), x));
  assert_error(CG_ERANGE, "SparseSoftmaxCrossEntropyWithLogits: label 3 at row 1 is out of "
                          "range [0, 3)");
  assert_null(cg_sparse_softmax_cross_entropy_with_logits(labels_of(CG_I64, 1, s2, negative), x));
  assert_error(CG_ERANGE, "label -1 at row 0 is out of range [0, 3)");
}

/* A NULL input fails cleanly with the op's name. */
static void test_null_inputs(void **state)
{
  static const int64_t s3[] = {3};
  assert_null(cg_softmax(NULL));
  assert_error(CG_EINVAL, "Softmax");
  assert_null(cg_bias_add(cg_zeros(CG_F32, 1, s3), NULL));
  assert_error(CG_EINVAL, "BiasAdd");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(test_softmax_values),
      cgt_test(test_softmax_extreme_logits),
      cgt_test(test_softmax_shapes),
      cgt_test(test_log_softmax_values),
      cgt_test(test_softmax_xent_values),
      cgt_test(test_sparse_xent_values),
      cgt_test(test_sigmoid_xent_values),
      cgt_test(test_bias_add_values),
      cgt_test(test_softmax_grad),
      cgt_test(test_log_softmax_grad),
      cgt_test(test_softmax_xent_grad),
      cgt_test(test_sparse_xent_grad),
      cgt_test(test_sigmoid_xent_grad),
      cgt_test(test_bias_add_grad),
      cgt_test(test_grad_cases),
      cgt_test(test_every_op_has_a_case),
      cgt_test(test_bad_inputs),
      cgt_test(test_sparse_label_out_of_range),
      cgt_test(test_null_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

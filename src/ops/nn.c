/* nn.c - neural-network ops over a class axis (always the last one): Softmax, LogSoftmax,
 * the softmax / sparse softmax / sigmoid cross-entropies with logits, and BiasAdd.
 * Kernels shift each row by its maximum, so logits of +-1000 give finite, exact results.
 * Gradients are written with public ops, so they are differentiable again. */
#include "kernel.h"
#include "parallel.h"
#include <stdlib.h>

/* ======================================================================================
 * Row access shared by the softmax family
 *
 * A tensor [..., C] is seen as rows of C class scores. Each kernel is written once, on
 * rows of double: f64 rows are copied like f32 ones into a small scratch block, so f32
 * inputs get double-precision sums for free and the code has one path per op.
 * ==================================================================================== */

static int64_t class_count(const cg_tensor *t) { return t->shape[t->ndim - 1]; }

static int64_t row_count(const cg_tensor *t)
{
  int64_t c = class_count(t);
  return c ? t->size / c : 0;
}

/* nrows rows of c doubles to free(); NULL with CG_ENOMEM if they do not fit. */
static double *scratch_rows(const cg_node *n, int64_t c, int nrows)
{
  if ((uint64_t)c > SIZE_MAX / sizeof(double) / (size_t)nrows) {
    cg_set_error(CG_ENOMEM, "%s: rows of %lld classes do not fit in memory",
                 cg_node_op_type(n), (long long)c);
    return NULL;
  }
  return cg__malloc((size_t)c * (size_t)nrows * sizeof(double));
}

static void load_row(const cg_tensor *t, int64_t r, int64_t c, double *row)
{
  if (t->dtype == CG_F64) {
    memcpy(row, CG_F64P(t) + r * c, (size_t)c * sizeof(double));
    return;
  }
  const float *src = CG_F32P(t) + r * c;
  for (int64_t j = 0; j < c; j++) row[j] = src[j];
}

static void store_row(cg_tensor *t, int64_t r, int64_t c, const double *row)
{
  if (t->dtype == CG_F64) {
    memcpy(CG_F64P(t) + r * c, row, (size_t)c * sizeof(double));
    return;
  }
  float *dst = CG_F32P(t) + r * c;
  for (int64_t j = 0; j < c; j++) dst[j] = (float)row[j];
}

static double row_max(const double *x, int64_t c)
{
  double m = x[0];
  for (int64_t j = 1; j < c; j++)
    if (x[j] > m) m = x[j];
  return m;
}

/* ln sum_j e^x[j], shifted by the row maximum so that no exponential overflows. */
static double row_logsumexp(const double *x, int64_t c)
{
  double m = row_max(x, c), s = 0;
  for (int64_t j = 0; j < c; j++) s += exp(x[j] - m);
  return m + log(s);
}

/* Shape rule for input i holding logits: float, at least one axis. */
static cg_status require_class_axis(const cg_node *n, int i)
{
  cg_status s = cg__require_float(n, i);
  if (s) return s;
  if (cg_node_input(n, i)->ndim == 0)
    return cg_set_error(CG_ESHAPE, "%s: logits need a class axis (rank >= 1), got shape %s",
                        cg_node_op_type(n), cg__in_shape(n, i));
  return CG_OK;
}

/* Shape rule for the cross-entropies: logits (input i) with at least one class. */
static cg_status require_classes(const cg_node *n, int i)
{
  cg_status s = require_class_axis(n, i);
  if (s) return s;
  if (class_count(cg_node_input(n, i)) == 0)
    return cg_set_error(CG_ESHAPE, "%s: logits have no classes (last axis is 0): %s",
                        cg_node_op_type(n), cg__in_shape(n, i));
  return CG_OK;
}

/* Declares output 0 as logits (input i) without the class axis: the per-row loss. */
static cg_status set_loss_output(cg_node *n, int i)
{
  const cg_tensor *logits = cg_node_input(n, i);
  return cg_node_set_output(n, 0, logits->dtype, logits->ndim - 1, logits->shape);
}

/* Runs a row-to-row kernel over input 0 into output 0 (same shape). */
typedef void (*row_map_fn)(const double *x, double *y, int64_t c);
static cg_status map_rows(cg_node *n, row_map_fn kernel)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  int64_t c = class_count(x), rows = row_count(x);
  if (rows == 0) return CG_OK;
  double *tmp = scratch_rows(n, c, 2);
  if (!tmp) return CG_ENOMEM;
  for (int64_t r = 0; r < rows; r++) {
    load_row(x, r, c, tmp);
    kernel(tmp, tmp + c, c);
    store_row(y, r, c, tmp + c);
  }
  free(tmp);
  return CG_OK;
}

static const int last_axis[1] = {-1};

/* CG_OK when both gradients were built; else the error that stopped the first to fail. */
static cg_status both_built(const cg_tensor *a, const cg_tensor *b)
{
  return cg_status_of(a ? b : NULL);
}

/* dy with a trailing size-1 axis, to scale the class rows of a per-row loss gradient. */
static cg_tensor *per_row(cg_tensor *dy) { return cg_expand_dims(dy, cg_tensor_ndim(dy)); }

/* ======================================================================================
 * Softmax: y = e^(x - max x) / sum e^(x - max x) over the last axis
 *          dx = y * (dy - sum(dy * y, last, keepdims))
 * ==================================================================================== */

static cg_status softmax_infer(cg_node *n)
{
  cg_status s = require_class_axis(n, 0);
  return s ? s : cg_infer_same_as_input(n, 0);
}

static void softmax_row(const double *x, double *y, int64_t c)
{
  double m = row_max(x, c), s = 0;
  for (int64_t j = 0; j < c; j++) s += (y[j] = exp(x[j] - m));
  for (int64_t j = 0; j < c; j++) y[j] /= s;
}

static cg_status softmax_run(cg_node *n) { return map_rows(n, softmax_row); }

static cg_status softmax_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *y = cg_node_output(op, 0);
  cg_tensor *dot = cg_sum(cg_mul(dy[0], y), last_axis, 1, 1);
  dx[0] = cg_mul(y, cg_sub(dy[0], dot));
  return cg_status_of(dx[0]);
}

static const cg_op_def softmax_def = {"Softmax", 1, softmax_infer, softmax_run, 0, NULL};

cg_tensor *cg_softmax(cg_tensor *x) { return cg_apply1(&softmax_def, x, NULL); }

/* ======================================================================================
 * LogSoftmax: y = x - logsumexp(x) over the last axis
 *             dx = dy - e^y * sum(dy, last, keepdims)
 * ==================================================================================== */

static void log_softmax_row(const double *x, double *y, int64_t c)
{
  double lse = row_logsumexp(x, c);
  for (int64_t j = 0; j < c; j++) y[j] = x[j] - lse;
}

static cg_status log_softmax_run(cg_node *n) { return map_rows(n, log_softmax_row); }

static cg_status log_softmax_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                  void *user)
{
  cg_tensor *y = cg_node_output(op, 0);
  dx[0] = cg_sub(dy[0], cg_mul(cg_exp(y), cg_sum(dy[0], last_axis, 1, 1)));
  return cg_status_of(dx[0]);
}

static const cg_op_def log_softmax_def = {"LogSoftmax", 1, softmax_infer, log_softmax_run, 0,
                                          NULL};

cg_tensor *cg_log_softmax(cg_tensor *x) { return cg_apply1(&log_softmax_def, x, NULL); }

/* ======================================================================================
 * SoftmaxCrossEntropyWithLogits(labels z, logits x): [..., C] -> [...]
 *   loss = -sum_j z_j * log_softmax(x)_j = sum_j z_j * (logsumexp(x) - x_j)
 *   dx = dy[..., None] * (softmax(x) * sum(z, last, keepdims) - z)
 *   dz = dy[..., None] * -log_softmax(x)
 * dx is TensorFlow's softmax(x) - z when each row of labels sums to 1, and stays exact
 * when it does not. One output (the loss); the gradient recomputes softmax with ops so
 * that it is itself differentiable.
 * ==================================================================================== */

static cg_status softmax_xent_infer(cg_node *n)
{
  cg_status s = require_classes(n, 1);
  if (!s) s = cg__require_same_dtype(n, 0, 1);
  if (s) return s;
  const cg_tensor *z = cg_node_input(n, 0), *x = cg_node_input(n, 1);
  if (!cg__shape_equal(z->ndim, z->shape, x->ndim, x->shape))
    return cg_set_error(CG_ESHAPE, "%s: labels and logits differ in shape: %s vs %s",
                        cg_node_op_type(n), cg__in_shape(n, 0), cg__in_shape(n, 1));
  return set_loss_output(n, 1);
}

static double softmax_xent_row(const double *z, const double *x, int64_t c)
{
  double lse = row_logsumexp(x, c), loss = 0;
  for (int64_t j = 0; j < c; j++) loss += z[j] * (lse - x[j]);
  return loss;
}

static cg_status softmax_xent_run(cg_node *n)
{
  const cg_tensor *z = cg_node_input(n, 0), *x = cg_node_input(n, 1);
  cg_tensor *loss = cg_node_output(n, 0);
  int64_t c = class_count(x), rows = row_count(x);
  if (rows == 0) return CG_OK;
  double *tmp = scratch_rows(n, c, 2);
  if (!tmp) return CG_ENOMEM;
  for (int64_t r = 0; r < rows; r++) {
    load_row(z, r, c, tmp);
    load_row(x, r, c, tmp + c);
    cg__store(loss->dtype, loss->data, r, softmax_xent_row(tmp, tmp + c, c));
  }
  free(tmp);
  return CG_OK;
}

static cg_status softmax_xent_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                   void *user)
{
  cg_tensor *z = cg_node_input(op, 0), *x = cg_node_input(op, 1);
  cg_tensor *g = per_row(dy[0]);
  dx[0] = cg_mul(g, cg_neg(cg_log_softmax(x)));
  dx[1] = cg_mul(g, cg_sub(cg_mul(cg_softmax(x), cg_sum(z, last_axis, 1, 1)), z));
  return both_built(dx[0], dx[1]);
}

static const cg_op_def softmax_xent_def = {"SoftmaxCrossEntropyWithLogits", 2,
                                           softmax_xent_infer, softmax_xent_run, 0, NULL};

cg_tensor *cg_softmax_cross_entropy_with_logits(cg_tensor *labels, cg_tensor *logits)
{
  return cg_apply2(&softmax_xent_def, labels, logits, NULL);
}

/* ======================================================================================
 * SparseSoftmaxCrossEntropyWithLogits(labels k (i32/i64, shape [...]), logits x [..., C])
 *   loss = logsumexp(x) - x_k;   dx = dy[..., None] * (softmax(x) - one_hot(k, C))
 *   labels get no gradient; a label outside [0, C) is CG_ERANGE (found while running).
 * ==================================================================================== */

static cg_status sparse_xent_infer(cg_node *n)
{
  cg_status s = require_classes(n, 1);
  if (s) return s;
  const cg_tensor *k = cg_node_input(n, 0), *x = cg_node_input(n, 1);
  if (k->dtype != CG_I32 && k->dtype != CG_I64)
    return cg_set_error(CG_EDTYPE, "%s: labels must be i32 or i64, got %s",
                        cg_node_op_type(n), cg_dtype_name(k->dtype));
  if (!cg__shape_equal(k->ndim, k->shape, x->ndim - 1, x->shape))
    return cg_set_error(CG_ESHAPE,
                        "%s: labels must have the shape of logits without the class axis: "
                        "%s vs %s",
                        cg_node_op_type(n), cg__in_shape(n, 0), cg__in_shape(n, 1));
  return set_loss_output(n, 1);
}

static cg_status sparse_xent_run(cg_node *n)
{
  const cg_tensor *k = cg_node_input(n, 0), *x = cg_node_input(n, 1);
  cg_tensor *loss = cg_node_output(n, 0);
  int64_t c = class_count(x), rows = row_count(x);
  if (rows == 0) return CG_OK;
  double *row = scratch_rows(n, c, 1);
  if (!row) return CG_ENOMEM;
  for (int64_t r = 0; r < rows; r++) {
    int64_t label = k->dtype == CG_I32 ? CG_I32P(k)[r] : CG_I64P(k)[r];
    if (label < 0 || label >= c) {
      free(row);
      return cg_set_error(CG_ERANGE, "%s: label %lld at row %lld is out of range [0, %lld)",
                          cg_node_op_type(n), (long long)label, (long long)r, (long long)c);
    }
    load_row(x, r, c, row);
    cg__store(loss->dtype, loss->data, r, row_logsumexp(row, c) - row[label]);
  }
  free(row);
  return CG_OK;
}

static cg_status sparse_xent_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                  void *user)
{
  cg_tensor *k = cg_node_input(op, 0), *x = cg_node_input(op, 1);
  cg_tensor *one_hot = cg_one_hot(k, class_count(x), 1.0, 0.0, cg_tensor_dtype(x));
  dx[0] = NULL;
  dx[1] = cg_mul(per_row(dy[0]), cg_sub(cg_softmax(x), one_hot));
  return cg_status_of(dx[1]);
}

static const cg_op_def sparse_xent_def = {"SparseSoftmaxCrossEntropyWithLogits", 2,
                                          sparse_xent_infer, sparse_xent_run, 0, NULL};

cg_tensor *cg_sparse_softmax_cross_entropy_with_logits(cg_tensor *labels, cg_tensor *logits)
{
  return cg_apply2(&sparse_xent_def, labels, logits, NULL);
}

/* ======================================================================================
 * SigmoidCrossEntropyWithLogits(labels z, logits x), element-wise, same shapes:
 *   loss = max(x, 0) - x*z + ln(1 + e^-|x|)   (= -z ln s(x) - (1-z) ln(1-s(x)), stable)
 *   dx = dy * (sigmoid(x) - z);   dz = -dy * x
 * ==================================================================================== */

static cg_status sigmoid_xent_infer(cg_node *n)
{
  cg_status s = cg__require_float(n, 1);
  if (!s) s = cg__require_same_dtype(n, 0, 1);
  if (s) return s;
  const cg_tensor *z = cg_node_input(n, 0), *x = cg_node_input(n, 1);
  if (!cg__shape_equal(z->ndim, z->shape, x->ndim, x->shape))
    return cg_set_error(CG_ESHAPE, "%s: labels and logits differ in shape: %s vs %s",
                        cg_node_op_type(n), cg__in_shape(n, 0), cg__in_shape(n, 1));
  return cg_infer_same_as_input(n, 1);
}

static double sigmoid_xent(double z, double x)
{
  return fmax(x, 0.0) - x * z + log1p(exp(-fabs(x)));
}

static cg_status sigmoid_xent_run(cg_node *n)
{
  const cg_tensor *z = cg_node_input(n, 0), *x = cg_node_input(n, 1);
  cg_tensor *loss = cg_node_output(n, 0);
  if (x->dtype == CG_F64) {
    for (int64_t i = 0; i < x->size; i++)
      CG_F64P(loss)[i] = sigmoid_xent(CG_F64P(z)[i], CG_F64P(x)[i]);
  } else {
    for (int64_t i = 0; i < x->size; i++)
      CG_F32P(loss)[i] = (float)sigmoid_xent(CG_F32P(z)[i], CG_F32P(x)[i]);
  }
  return CG_OK;
}

static cg_status sigmoid_xent_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                   void *user)
{
  cg_tensor *z = cg_node_input(op, 0), *x = cg_node_input(op, 1);
  dx[0] = cg_neg(cg_mul(dy[0], x));
  dx[1] = cg_mul(dy[0], cg_sub(cg_sigmoid(x), z));
  return both_built(dx[0], dx[1]);
}

static const cg_op_def sigmoid_xent_def = {"SigmoidCrossEntropyWithLogits", 2,
                                           sigmoid_xent_infer, sigmoid_xent_run, 0, NULL};

cg_tensor *cg_sigmoid_cross_entropy_with_logits(cg_tensor *labels, cg_tensor *logits)
{
  return cg_apply2(&sigmoid_xent_def, labels, logits, NULL);
}

/* ======================================================================================
 * BiasAdd(x [..., C], bias [C]): y[..., j] = x[..., j] + bias[j]
 *   dx = dy;   dbias = sum of dy over every axis but the last
 * ==================================================================================== */

static cg_status bias_add_infer(cg_node *n)
{
  cg_status s = cg__require_float(n, 0);
  if (!s) s = cg__require_same_dtype(n, 0, 1);
  if (s) return s;
  const cg_tensor *x = cg_node_input(n, 0), *b = cg_node_input(n, 1);
  if (x->ndim == 0)
    return cg_set_error(CG_ESHAPE, "BiasAdd: x needs a channel axis (rank >= 1), got shape %s",
                        cg__in_shape(n, 0));
  if (b->ndim != 1 || b->shape[0] != class_count(x))
    return cg_set_error(CG_ESHAPE,
                        "BiasAdd: bias must be 1-D with the length of x's last axis: %s vs %s",
                        cg__in_shape(n, 0), cg__in_shape(n, 1));
  return cg_infer_same_as_input(n, 0);
}

/* Rows [begin, end) of y = x + bias (ctx: the node). */
static void bias_add_rows(void *ctx, int64_t begin, int64_t end)
{
  const cg_node *n = ctx;
  const cg_tensor *x = cg_node_input(n, 0), *b = cg_node_input(n, 1);
  cg_tensor *y = cg_node_output(n, 0);
  int64_t c = class_count(x);
  for (int64_t r = begin; r < end; r++) {
    int64_t o = r * c;
    if (x->dtype == CG_F64) {
      const double *restrict xs = CG_F64P(x) + o, *restrict bs = CG_F64P(b);
      double *restrict ys = CG_F64P(y) + o;
      for (int64_t j = 0; j < c; j++) ys[j] = xs[j] + bs[j];
    } else {
      const float *restrict xs = CG_F32P(x) + o, *restrict bs = CG_F32P(b);
      float *restrict ys = CG_F32P(y) + o;
      for (int64_t j = 0; j < c; j++) ys[j] = xs[j] + bs[j];
    }
  }
}

static cg_status bias_add_run(cg_node *n)
{
  int64_t c = class_count(cg_node_input(n, 0));
  cg__parallel_for(row_count(cg_node_input(n, 0)), CG_PARALLEL_MIN_ELEMENTS / (c ? c : 1) + 1,
                   bias_add_rows, n);
  return CG_OK;
}

static cg_status bias_add_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  int leading[CG_MAX_DIMS], n_leading = cg_tensor_ndim(dy[0]) - 1;
  for (int i = 0; i < n_leading; i++) leading[i] = i;
  dx[0] = dy[0];
  /* cg_sum with no axes reduces everything, so a rank-1 x passes dy through as is. */
  dx[1] = n_leading ? cg_sum(dy[0], leading, n_leading, 0) : dy[0];
  return cg_status_of(dx[1]);
}

static const cg_op_def bias_add_def = {"BiasAdd", 2, bias_add_infer, bias_add_run, 0, NULL};

cg_tensor *cg_bias_add(cg_tensor *x, cg_tensor *bias)
{
  return cg_apply2(&bias_add_def, x, bias, NULL);
}

/* ======================================================================================
 * Registration
 * ==================================================================================== */

cg_status cg__register_nn_ops(void)
{
  static const struct {
    const cg_op_def *def;
    cg_grad_fn grad;
  } ops[] = {
      {&softmax_def, softmax_grad},
      {&log_softmax_def, log_softmax_grad},
      {&softmax_xent_def, softmax_xent_grad},
      {&sparse_xent_def, sparse_xent_grad},
      {&sigmoid_xent_def, sigmoid_xent_grad},
      {&bias_add_def, bias_add_grad},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    cg_status s = cg__register_builtin(ops[i].def, ops[i].grad);
    if (s) return s;
  }
  return CG_OK;
}

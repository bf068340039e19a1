/* test_losses.c - losses and metrics: values by hand for each loss and reduction, gradients
 * by hand for MSE and by central differences (f64) for every loss and reduction, use inside a
 * custom gradient's recipe, accuracy, and bad inputs with their exact errors. */
#include "util.h"
#include <math.h>

static const int64_t s22[2] = {2, 2}, s2[1] = {2};

/* pred [[1, 2], [3, 4]], target [[0, 2], [5, 1]]: d = p - t = [1, 0, -2, 3] */
static cg_tensor *pred(void) { return cgt_f64(2, s22, (double[]){1, 2, 3, 4}); }
static cg_tensor *target(void) { return cgt_f64(2, s22, (double[]){0, 2, 5, 1}); }

static void assert_scalar(cg_tensor *t, double want, double tol)
{
  assert_tensor(t, cg_tensor_dtype(t), 0, NULL, &want, tol);
}

/* ======================================================================================
 * Values by hand
 * ==================================================================================== */

static void mse_and_mae_by_hand(void **state)
{
  /* d^2 = [1, 0, 4, 9]: sum 14, mean 3.5; |d| = [1, 0, 2, 3]: sum 6, mean 1.5 */
  assert_scalar(cg_loss_mse(pred(), target(), CG_REDUCE_MEAN), 3.5, 0);
  assert_scalar(cg_loss_mse(pred(), target(), CG_REDUCE_SUM), 14, 0);
  assert_tensor(cg_loss_mse(pred(), target(), CG_REDUCE_NONE), CG_F64, 2, s22,
                ((double[]){1, 0, 4, 9}), 0);
  assert_scalar(cg_loss_mae(pred(), target(), CG_REDUCE_MEAN), 1.5, 0);
  assert_scalar(cg_loss_mae(pred(), target(), CG_REDUCE_SUM), 6, 0);
  assert_tensor(cg_loss_mae(pred(), target(), CG_REDUCE_NONE), CG_F64, 2, s22,
                ((double[]){1, 0, 2, 3}), 0);
  /* f32 in, f32 out */
  cg_tensor *l = cg_loss_mse(cg_cast(pred(), CG_F32), cg_cast(target(), CG_F32), CG_REDUCE_MEAN);
  assert_tensor(l, CG_F32, 0, NULL, ((double[]){3.5}), 0);
}

static void huber_by_hand(void **state)
{
  /* delta 1, |d| = [1, 0, 2, 3]: 0.5*1, 0, 1*(2 - 0.5), 1*(3 - 0.5) = [0.5, 0, 1.5, 2.5] */
  assert_tensor(cg_loss_huber(pred(), target(), 1, CG_REDUCE_NONE), CG_F64, 2, s22,
                ((double[]){0.5, 0, 1.5, 2.5}), 1e-15);
  assert_scalar(cg_loss_huber(pred(), target(), 1, CG_REDUCE_SUM), 4.5, 1e-15);
  assert_scalar(cg_loss_huber(pred(), target(), 1, CG_REDUCE_MEAN), 1.125, 1e-15);
  /* delta 2.5: [0.5, 0, 0.5*4, 2.5*(3 - 1.25)] = [0.5, 0, 2, 4.375] */
  assert_tensor(cg_loss_huber(pred(), target(), 2.5, CG_REDUCE_NONE), CG_F64, 2, s22,
                ((double[]){0.5, 0, 2, 4.375}), 1e-15);
}

static double lse3(double a, double b, double c) { return log(exp(a) + exp(b) + exp(c)); }

static void cross_entropies_by_hand(void **state)
{
  int64_t s23[2] = {2, 3};
  cg_tensor *logits = cgt_f64(2, s23, (double[]){1, 2, 3, 1, 1, 1});
  cg_tensor *dense = cgt_f64(2, s23, (double[]){0, 0, 1, 0.5, 0.5, 0});
  /* row 0: lse(1,2,3) - 3; row 1: -(0.5 (1 - lse) + 0.5 (1 - lse)) = lse(1,1,1) - 1 = ln 3 */
  double rows[2] = {lse3(1, 2, 3) - 3, log(3)};
  assert_tensor(cg_loss_softmax_xent(dense, logits, CG_REDUCE_NONE), CG_F64, 1, s2, rows, 1e-14);
  double mean = (rows[0] + rows[1]) / 2;
  assert_scalar(cg_loss_softmax_xent(dense, logits, CG_REDUCE_MEAN), mean, 1e-14);
  assert_scalar(cg_loss_softmax_xent(dense, logits, CG_REDUCE_SUM), rows[0] + rows[1], 1e-14);
  cg_tensor *ids = cg_tensor_from(CG_I64, 1, s2, (int64_t[]){2, 0});
  assert_tensor(cg_loss_sparse_softmax_xent(ids, logits, CG_REDUCE_NONE), CG_F64, 1, s2, rows,
                1e-14);
  cg_tensor *ids32 = cg_tensor_from(CG_I32, 1, s2, (int32_t[]){2, 0});
  assert_scalar(cg_loss_sparse_softmax_xent(ids32, logits, CG_REDUCE_MEAN), mean, 1e-14);

  /* binary: max(x,0) - x z + ln(1 + e^-|x|) for x = [2, -1, 0], z = [1, 0, 0.5] */
  int64_t s3[1] = {3};
  cg_tensor *x = cgt_f64(1, s3, (double[]){2, -1, 0}), *z = cgt_f64(1, s3, (double[]){1, 0, 0.5});
  double b[3] = {log1p(exp(-2)), log1p(exp(-1)), log(2)};
  assert_tensor(cg_loss_binary_xent(z, x, CG_REDUCE_NONE), CG_F64, 1, s3, b, 1e-14);
  assert_scalar(cg_loss_binary_xent(z, x, CG_REDUCE_MEAN), (b[0] + b[1] + b[2]) / 3, 1e-14);
  assert_scalar(cg_loss_binary_xent(z, x, CG_REDUCE_SUM), b[0] + b[1] + b[2], 1e-14);
}

/* ======================================================================================
 * Gradients
 * ==================================================================================== */

static void mse_gradient_by_hand(void **state)
{
  cg_tensor *p = pred(), *dp;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, p);
  cg_tensor *l = cg_loss_mse(p, target(), CG_REDUCE_MEAN);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, l, &p, 1, &dp, NULL), CG_OK);
  /* 2 d / N = [0.5, 0, -1, 1.5] */
  assert_tensor(dp, CG_F64, 2, s22, ((double[]){0.5, 0, -1, 1.5}), 1e-15);
  cg_tape_free(tape);
}

typedef struct {
  int kind;
  cg_reduction r;
} loss_case;

enum { MSE, MAE, HUBER, SOFTMAX, SPARSE, BINARY, N_KINDS };

/* Weighted so that a NONE reduction's every element counts differently. */
static cg_tensor *weighted(cg_tensor *l, cg_reduction r)
{
  if (r != CG_REDUCE_NONE) return l;
  cg_tensor *w = cg_arange(CG_F64, 1, 1 + (double)cg_tensor_size(l), 1);
  return cg_sum(cg_mul(l, cg_reshape(w, cg_tensor_ndim(l), cg_tensor_shape(l))), NULL, 0, 0);
}

/* x[0]: predictions / logits, x[1]: targets / labels (when differentiable) */
static cg_tensor *loss_of(cg_tensor *const *x, int n, void *user)
{
  const loss_case *c = user;
  int64_t rows = cg_tensor_dim(x[0], 0);
  cg_tensor *ids = cg_arange(CG_I64, 0, (double)rows, 1); /* row i has class i */
  switch (c->kind) {
  case MSE: return weighted(cg_loss_mse(x[0], x[1], c->r), c->r);
  case MAE: return weighted(cg_loss_mae(x[0], x[1], c->r), c->r);
  case HUBER: return weighted(cg_loss_huber(x[0], x[1], 0.7, c->r), c->r);
  case SOFTMAX: return weighted(cg_loss_softmax_xent(cg_softmax(x[1]), x[0], c->r), c->r);
  case SPARSE: return weighted(cg_loss_sparse_softmax_xent(ids, x[0], c->r), c->r);
  default: return weighted(cg_loss_binary_xent(cg_sigmoid(x[1]), x[0], c->r), c->r);
  }
}

static void every_loss_and_reduction_passes_gradcheck(void **state)
{
  int64_t s34[2] = {3, 4};
  /* |p - t| stays away from 0 and from Huber's delta 0.7: no kinks within eps */
  double p[12] = {0.3, -1.2, 2.0, 0.9, -0.4, 1.5, 0.1, -2.2, 1.1, 0.6, -0.8, 0.2};
  double t[12] = {-0.5, 0.4, 0.2, 0.5, 0.9, -0.1, 1.2, -0.4, 0.0, 1.6, 0.3, -1.0};
  cg_tensor *x[2] = {cgt_f64(2, s34, p), cgt_f64(2, s34, t)};
  for (int kind = 0; kind < N_KINDS; kind++)
    for (int r = CG_REDUCE_MEAN; r <= CG_REDUCE_NONE; r++) {
      loss_case c = {kind, (cg_reduction)r};
      cg_gradcheck_report rep;
      int order = kind == MAE || kind == HUBER ? 1 : 2; /* piecewise ones: first order only */
      cg_status st = cg_gradcheck(loss_of, &c, x, 2, &(cg_gradcheck_opts){.order = order}, &rep);
      if (st != CG_OK) fail_msg("loss %d, reduction %d: %s", kind, r, rep.message);
    }
}

/* ======================================================================================
 * A built-in loss inside a custom gradient's forward, as the recipe in loss.c does
 * ==================================================================================== */

static cg_status fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  cg_ctx_save(ctx, cg_sub(x[0], x[1]));
  y[0] = cg_loss_mse(x[0], x[1], CG_REDUCE_MEAN);
  return cg_status_of(y[0]);
}

static cg_status bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
{
  cg_tensor *d = cg_ctx_saved(ctx, 0);
  dx[0] = cg_mul(cg_mul(d, cg_scalar_like(d, 2.0 / (double)cg_tensor_size(d))), dy[0]);
  dx[1] = cg_neg(dx[0]);
  return cg_status_of(dx[1]);
}

static cg_tensor *custom_mse(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *y;
  return cg_custom_gradient(user, x, &y) == CG_OK ? y : NULL;
}

static void recipe_custom_gradient_loss(void **state)
{
  cg_custom_def def = {"RecipeMSE", 2, 1, fwd, bwd, NULL};
  cg_tensor *x[2] = {pred(), target()};
  assert_scalar(custom_mse(x, 2, &def), 3.5, 0);
  assert_gradcheck(custom_mse, &def, x, 2, 1);
}

/* ======================================================================================
 * Accuracy
 * ==================================================================================== */

static void accuracy_counts_argmax_hits(void **state)
{
  int64_t s43[2] = {4, 3}, s4[1] = {4};
  cg_tensor *logits = cgt_f32(2, s43, (double[]){1, 3, 2, 5, 0, 1, 0, 0, 1, 2, 2, 0});
  /* argmax per row: 1, 0, 2, 0 (the first of a tie) */
  cg_tensor *l64 = cg_tensor_from(CG_I64, 1, s4, (int64_t[]){1, 0, 0, 1});
  cg_tensor *l32 = cg_tensor_from(CG_I32, 1, s4, (int32_t[]){1, 0, 2, 0});
  assert_float_equal(cg_accuracy(logits, l64), 0.5, 0);
  assert_float_equal(cg_accuracy(logits, l32), 1.0, 0);
  int64_t s223[3] = {2, 2, 3}, s22l[2] = {2, 2};
  cg_tensor *batched = cg_reshape(logits, 3, s223);
  assert_float_equal(cg_accuracy(batched, cg_reshape(l64, 2, s22l)), 0.5, 0);
}

/* ======================================================================================
 * Bad inputs
 * ==================================================================================== */

static void bad_loss_inputs(void **state)
{
  int64_t s41[2] = {4, 1}, s4[1] = {4}, s23[2] = {2, 3};
  assert_null(cg_loss_mse(cg_zeros(CG_F32, 2, s41), cg_zeros(CG_F32, 1, s4), CG_REDUCE_MEAN));
  assert_error(CG_ESHAPE, "cg_loss_mse: pred [4,1] and target [4] differ in shape");
  assert_null(cg_loss_mae(cg_zeros(CG_F32, 1, s4), cg_zeros(CG_F64, 1, s4), CG_REDUCE_MEAN));
  assert_error(CG_EDTYPE,
               "cg_loss_mae: pred is f32 and target is f64; both must be one float type");
  assert_null(cg_loss_mse(cg_zeros(CG_I32, 1, s4), cg_zeros(CG_I32, 1, s4), CG_REDUCE_MEAN));
  assert_error(CG_EDTYPE, "pred is i32 and target is i32");
  assert_null(cg_loss_mse(cg_zeros(CG_F32, 1, s4), cg_zeros(CG_F32, 1, s4), (cg_reduction)7));
  assert_error(CG_EINVAL, "cg_loss_mse: unknown reduction 7");
  assert_null(cg_loss_huber(cg_zeros(CG_F32, 1, s4), cg_zeros(CG_F32, 1, s4), 0, CG_REDUCE_SUM));
  assert_error(CG_EINVAL, "cg_loss_huber: delta must be finite and > 0, got 0");
  assert_null(cg_loss_mse(NULL, cg_zeros(CG_F32, 1, s4), CG_REDUCE_MEAN));
  assert_error(CG_EINVAL, "cg_loss_mse: input 0 is NULL");

  cg_tensor *logits = cg_zeros(CG_F32, 2, s23);
  assert_null(cg_loss_softmax_xent(cg_zeros(CG_F32, 2, s41), logits, CG_REDUCE_MEAN));
  assert_error(CG_ESHAPE, "cg_loss_softmax_xent: labels [4,1] and logits [2,3] differ in shape");
  assert_null(cg_loss_softmax_xent(cg_scalar(CG_F32, 0), cg_scalar(CG_F32, 0), CG_REDUCE_MEAN));
  assert_error(CG_ESHAPE, "logits are a scalar; they need a class axis");
  assert_null(cg_loss_sparse_softmax_xent(cg_zeros(CG_F32, 1, s2), logits, CG_REDUCE_MEAN));
  assert_error(CG_EDTYPE,
               "cg_loss_sparse_softmax_xent: labels must be class ids (i32 or i64), got f32");
  assert_null(cg_loss_sparse_softmax_xent(cg_zeros(CG_I64, 1, s4), logits, CG_REDUCE_MEAN));
  assert_error(CG_ESHAPE, "labels [4] must have the shape of logits [2,3] without the class axis");
  cg_tensor *int_logits = cg_zeros(CG_I64, 2, s23);
  assert_null(cg_loss_sparse_softmax_xent(cg_zeros(CG_I64, 1, s2), int_logits, CG_REDUCE_MEAN));
  assert_error(CG_EDTYPE, "logits must be f32 or f64, got i64");
  cg_tensor *bad_ids = cg_tensor_from(CG_I64, 1, s2, (int64_t[]){0, 3});
  assert_null(cg_loss_sparse_softmax_xent(bad_ids, logits, CG_REDUCE_MEAN));
  assert_error(CG_ERANGE, "label 3 at row 1 is out of range [0, 3)");
  assert_null(cg_loss_binary_xent(cg_zeros(CG_F32, 1, s4), logits, CG_REDUCE_NONE));
  assert_error(CG_ESHAPE, "cg_loss_binary_xent: labels [4] and logits [2,3] differ in shape");
}

static void bad_accuracy_inputs(void **state)
{
  int64_t s23[2] = {2, 3}, s3[1] = {3}, s03[2] = {0, 3}, s0[1] = {0};
  cg_tensor *logits = cg_zeros(CG_F32, 2, s23);
  assert_float_equal(cg_accuracy(logits, cg_zeros(CG_I64, 1, s3)), -1, 0);
  assert_error(CG_ESHAPE, "cg_accuracy: labels [3] must have the shape of logits [2,3] "
                          "without the class axis");
  assert_float_equal(cg_accuracy(logits, cg_zeros(CG_F32, 1, s2)), -1, 0);
  assert_error(CG_EDTYPE, "need float logits and i32/i64 class ids, got f32 and f32");
  assert_float_equal(cg_accuracy(cg_zeros(CG_F32, 2, s03), cg_zeros(CG_I64, 1, s0)), -1, 0);
  assert_error(CG_ESHAPE, "logits [0,3] have no rows or no classes");
  assert_float_equal(cg_accuracy(NULL, cg_zeros(CG_I64, 1, s2)), -1, 0);
  assert_error(CG_EINVAL, "cg_accuracy: input 0 is NULL");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(mse_and_mae_by_hand),
      cgt_test(huber_by_hand),
      cgt_test(cross_entropies_by_hand),
      cgt_test(mse_gradient_by_hand),
      cgt_test(every_loss_and_reduction_passes_gradcheck),
      cgt_test(recipe_custom_gradient_loss),
      cgt_test(accuracy_counts_argmax_hits),
      cgt_test(bad_loss_inputs),
      cgt_test(bad_accuracy_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

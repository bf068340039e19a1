/* loss.c - losses built from public ops, so they are differentiable under a tape, in a graph
 * and inside a custom gradient: mean squared / absolute error, Huber, and the softmax, sparse
 * softmax and sigmoid (binary) cross-entropies from logits, each reduced by mean, sum or none.
 * A loss with a hand-written gradient is a recipe, not a function here: see the end. */
#include "../core/internal.h"
#include <math.h>

/* ======================================================================================
 * Argument checks and the reduction
 * ==================================================================================== */

static cg_status check_reduction(const char *fn, cg_reduction r)
{
  if (r == CG_REDUCE_MEAN || r == CG_REDUCE_SUM || r == CG_REDUCE_NONE) return CG_OK;
  return cg_set_error(CG_EINVAL, "%s: unknown reduction %d (CG_REDUCE_MEAN, _SUM or _NONE)", fn,
                      (int)r);
}

/* a (named an) and b: non-NULL, float, of one dtype; and of one shape when same_shape. */
static cg_status check_operands(const char *fn, const cg_tensor *a, const char *an,
                                const cg_tensor *b, const char *bn, bool same_shape)
{
  if (!a) return cg__null_input(fn, 0);
  if (!b) return cg__null_input(fn, 1);
  if (!cg_dtype_is_float(b->dtype) || a->dtype != b->dtype)
    return cg_set_error(CG_EDTYPE, "%s: %s is %s and %s is %s; both must be one float type", fn,
                        an, cg_dtype_name(a->dtype), bn, cg_dtype_name(b->dtype));
  if (same_shape && !cg__shape_equal(a->ndim, a->shape, b->ndim, b->shape)) {
    char as[160], bs[160];
    return cg_set_error(CG_ESHAPE, "%s: %s %s and %s %s differ in shape", fn, an,
                        cg_shape_str(a, as, sizeof as), bn, cg_shape_str(b, bs, sizeof bs));
  }
  return CG_OK;
}

/* The per-example losses reduced to a scalar (mean or sum of every element) or kept. */
static cg_tensor *reduce(cg_tensor *per_example, cg_reduction r)
{
  if (r == CG_REDUCE_NONE) return per_example;
  cg_scope scope = cg_scope_begin();
  cg_tensor *l = r == CG_REDUCE_SUM ? cg_sum(per_example, NULL, 0, 0)
                                    : cg_mean(per_example, NULL, 0, 0);
  if (l) cg_keep(l);
  cg_scope_end(scope);
  return l;
}

/* Builds the per-example loss with build() in a scope, so its temporaries go, then reduces. */
static cg_tensor *in_scope(cg_tensor *(*build)(cg_tensor *, cg_tensor *, double), cg_tensor *a,
                           cg_tensor *b, double param, cg_reduction r)
{
  cg_scope scope = cg_scope_begin();
  cg_tensor *l = reduce(build(a, b, param), r);
  if (l) cg_keep(l);
  cg_scope_end(scope);
  return l;
}

/* ======================================================================================
 * Regression: element-wise losses of d = pred - target
 * ==================================================================================== */

static cg_tensor *squared_error(cg_tensor *p, cg_tensor *t, double unused)
{
  return cg_squared_difference(p, t);
}

static cg_tensor *absolute_error(cg_tensor *p, cg_tensor *t, double unused)
{
  return cg_abs(cg_sub(p, t));
}

/* With a = |d|, q = min(a, delta): 0.5 q^2 + delta (a - q). That is 0.5 d^2 inside the band
 * and delta (|d| - 0.5 delta) outside, with one expression and a continuous gradient. */
static cg_tensor *huber_error(cg_tensor *p, cg_tensor *t, double delta)
{
  cg_tensor *a = cg_abs(cg_sub(p, t));
  cg_tensor *q = cg_minimum(a, cg_scalar_like(a, delta));
  return cg_add(cg_mul(cg_square(q), cg_scalar_like(a, 0.5)),
                cg_mul(cg_sub(a, q), cg_scalar_like(a, delta)));
}

cg_tensor *cg_loss_mse(cg_tensor *pred, cg_tensor *target, cg_reduction r)
{
  if (check_operands("cg_loss_mse", pred, "pred", target, "target", true) != CG_OK ||
      check_reduction("cg_loss_mse", r) != CG_OK)
    return NULL;
  return in_scope(squared_error, pred, target, 0, r);
}

cg_tensor *cg_loss_mae(cg_tensor *pred, cg_tensor *target, cg_reduction r)
{
  if (check_operands("cg_loss_mae", pred, "pred", target, "target", true) != CG_OK ||
      check_reduction("cg_loss_mae", r) != CG_OK)
    return NULL;
  return in_scope(absolute_error, pred, target, 0, r);
}

cg_tensor *cg_loss_huber(cg_tensor *pred, cg_tensor *target, double delta, cg_reduction r)
{
  if (check_operands("cg_loss_huber", pred, "pred", target, "target", true) != CG_OK ||
      check_reduction("cg_loss_huber", r) != CG_OK)
    return NULL;
  if (!(delta > 0) || !isfinite(delta)) {
    cg_set_error(CG_EINVAL, "cg_loss_huber: delta must be finite and > 0, got %g", delta);
    return NULL;
  }
  return in_scope(huber_error, pred, target, delta, r);
}

/* ======================================================================================
 * Classification: cross-entropies from logits (per row over the last axis, or element-wise)
 * ==================================================================================== */

static cg_status check_logits(const char *fn, const cg_tensor *logits)
{
  if (logits->ndim >= 1) return CG_OK;
  return cg_set_error(CG_ESHAPE, "%s: logits are a scalar; they need a class axis", fn);
}

cg_tensor *cg_loss_softmax_xent(cg_tensor *labels, cg_tensor *logits, cg_reduction r)
{
  const char *fn = "cg_loss_softmax_xent";
  if (check_operands(fn, labels, "labels", logits, "logits", true) != CG_OK ||
      check_logits(fn, logits) != CG_OK || check_reduction(fn, r) != CG_OK)
    return NULL;
  cg_scope scope = cg_scope_begin();
  cg_tensor *l = reduce(cg_softmax_cross_entropy_with_logits(labels, logits), r);
  if (l) cg_keep(l);
  cg_scope_end(scope);
  return l;
}

cg_tensor *cg_loss_sparse_softmax_xent(cg_tensor *labels, cg_tensor *logits, cg_reduction r)
{
  const char *fn = "cg_loss_sparse_softmax_xent";
  if (!labels || !logits) {
    cg__null_input(fn, labels ? 1 : 0);
    return NULL;
  }
  if (labels->dtype != CG_I32 && labels->dtype != CG_I64) {
    cg_set_error(CG_EDTYPE, "%s: labels must be class ids (i32 or i64), got %s", fn,
                 cg_dtype_name(labels->dtype));
    return NULL;
  }
  if (!cg_dtype_is_float(logits->dtype)) {
    cg_set_error(CG_EDTYPE, "%s: logits must be f32 or f64, got %s", fn,
                 cg_dtype_name(logits->dtype));
    return NULL;
  }
  if (check_logits(fn, logits) != CG_OK || check_reduction(fn, r) != CG_OK) return NULL;
  if (!cg__shape_equal(labels->ndim, labels->shape, logits->ndim - 1, logits->shape)) {
    char ls[160], xs[160];
    cg_set_error(CG_ESHAPE, "%s: labels %s must have the shape of logits %s without the class axis",
                 fn, cg_shape_str(labels, ls, sizeof ls), cg_shape_str(logits, xs, sizeof xs));
    return NULL;
  }
  cg_scope scope = cg_scope_begin();
  cg_tensor *l = reduce(cg_sparse_softmax_cross_entropy_with_logits(labels, logits), r);
  if (l) cg_keep(l);
  cg_scope_end(scope);
  return l;
}

cg_tensor *cg_loss_binary_xent(cg_tensor *labels, cg_tensor *logits, cg_reduction r)
{
  const char *fn = "cg_loss_binary_xent";
  if (check_operands(fn, labels, "labels", logits, "logits", true) != CG_OK ||
      check_reduction(fn, r) != CG_OK)
    return NULL;
  cg_scope scope = cg_scope_begin();
  cg_tensor *l = reduce(cg_sigmoid_cross_entropy_with_logits(labels, logits), r);
  if (l) cg_keep(l);
  cg_scope_end(scope);
  return l;
}

/* ======================================================================================
 * Recipe: a loss with a custom gradient (tf.custom_gradient around a loss)
 *
 * Write the loss as a cg_custom_def whose forward computes the value with ops (recording is
 * paused there) and saves what the backward needs with cg_ctx_save; the backward returns
 * dy * d(loss)/d(input) for each input, built from ops so it is differentiable again:
 *
 *   static cg_status fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)   // x: pred, target
 *   { cg_ctx_save(ctx, cg_sub(x[0], x[1]));
 *     y[0] = cg_mean(cg_squared_difference(x[0], x[1]), NULL, 0, 0); return cg_status_of(y[0]); }
 *   static cg_status bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
 *   { cg_tensor *d = cg_ctx_saved(ctx, 0);                 // 2 (p - t) / N, times dy
 *     dx[0] = cg_mul(cg_mul(d, cg_scalar_like(d, 2.0 / cg_tensor_size(d))), dy[0]);
 *     dx[1] = cg_neg(dx[0]); return cg_status_of(dx[1]); }
 *   cg_custom_def mse = {"MSELoss", 2, 1, fwd, bwd, NULL};
 *   cg_custom_gradient(&mse, (cg_tensor *[]){pred, target}, &loss);
 *
 * Then check it with cg_gradcheck before training with it: examples/custom_loss.c does all
 * of this, and shows gradcheck catching a flipped sign and a forgotten 1/N.
 * ==================================================================================== */

/* custom_gradient.c - tf.custom_gradient in C: a numerically stable log(1 + e^x).
 * Plain autodiff of the naive formula gives NaN at x = 100 in float32 (e^100 overflows and
 * the chain rule multiplies 0 by inf); the custom gradient, sigmoid(x) * dy, stays finite. */
#include <cgrad.h>
#include <stdio.h>

static cg_tensor *naive_log1pexp(cg_tensor *x) { return cg_log(cg_add(cg_scalar_like(x, 1), cg_exp(x))); }

/* forward: max(x, 0) + log1p(e^-|x|), which never overflows */
static cg_status log1pexp_forward(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  cg_ctx_save(ctx, x[0]);
  y[0] = cg_add(cg_relu(x[0]), cg_log1p(cg_exp(cg_neg(cg_abs(x[0])))));
  return cg_status_of(y[0]);
}

/* backward: dy * sigmoid(x), built from ops so it can be differentiated again */
static cg_status log1pexp_backward(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
{
  dx[0] = cg_mul(dy[0], cg_sigmoid(cg_ctx_saved(ctx, 0)));
  return cg_status_of(dx[0]);
}

static const cg_custom_def log1pexp = {"Log1pExp", 1, 1, log1pexp_forward, log1pexp_backward, NULL};

static double gradient_at(double at, int custom)
{
  cg_scope scope = cg_scope_begin();
  cg_tensor *x = cg_scalar(CG_F32, at), *y, *dx = NULL;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  if (custom) cg_custom_gradient(&log1pexp, &x, &y);
  else y = naive_log1pexp(x);
  cg_tape_end(tape);
  cg_tape_gradient(tape, y, &x, 1, &dx, NULL);
  double g = dx ? cg_item(dx) : 0;
  cg_tape_free(tape);
  cg_scope_end(scope);
  return g;
}

int main(void)
{
  for (int i = 0; i < 2; i++) {
    double at = i ? 100 : 0;
    printf("x = %g: autodiff of log(1+exp(x)) gives %g, custom gradient gives %g\n", at,
           gradient_at(at, 0), gradient_at(at, 1));
  }
  return cg_last_status() == CG_OK ? 0 : 1;
}

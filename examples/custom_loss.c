/* custom_loss.c - a loss with a custom gradient: mean squared error with the backward
 * written by hand, checked with cg_gradcheck and against plain autodiff; then the same
 * check catching the usual mistake (sign flipped, 1/N forgotten); then a small fit. */
#include <cgrad.h>
#include <math.h>
#include <stdio.h>

/* loss = mean((pred - target)^2); dpred = 2 (pred - target) / N * dy, dtarget = -dpred */
static cg_status mse_forward(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  cg_ctx_save(ctx, cg_sub(x[0], x[1]));
  y[0] = cg_mean(cg_squared_difference(x[0], x[1]), NULL, 0, 0);
  return cg_status_of(y[0]);
}

static cg_status mse_backward(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
{
  cg_tensor *diff = cg_ctx_saved(ctx, 0);
  double scale = 2.0 / (double)cg_tensor_size(diff);
  dx[0] = cg_mul(cg_mul(diff, cg_scalar_like(diff, scale)), dy[0]);
  dx[1] = cg_neg(dx[0]);
  return cg_status_of(dx[1]);
}

static cg_status mse_backward_wrong(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
{
  cg_tensor *diff = cg_ctx_saved(ctx, 0);
  dx[0] = cg_mul(cg_mul(diff, cg_scalar_like(diff, -2.0)), dy[0]); /* the tutorial bug */
  dx[1] = cg_neg(dx[0]);
  return cg_status_of(dx[1]);
}

static cg_tensor *mse_with(cg_tensor *const *x, int n, void *def)
{
  cg_tensor *y;
  return cg_custom_gradient(def, x, &y) == CG_OK ? y : NULL;
}

static cg_tensor *mse_autodiff(cg_tensor *const *x, int n, void *user)
{
  return cg_mean(cg_squared_difference(x[0], x[1]), NULL, 0, 0);
}

int main(void)
{
  cg_custom_def mse = {"MSELoss", 2, 1, mse_forward, mse_backward, NULL};
  cg_custom_def wrong = {"MSELossWrong", 2, 1, mse_forward, mse_backward_wrong, NULL};
  cg_scope scope = cg_scope_begin();
  int64_t n[1] = {8};
  cg_tensor *x[2] = {cg_random_normal(CG_F64, 1, n, 0, 1, 1), cg_random_normal(CG_F64, 1, n, 0, 1, 2)};

  cg_gradcheck_report r;
  cg_status ok = cg_gradcheck(mse_with, &mse, x, 2, NULL, &r);
  printf("correct custom gradient: %s\n", r.message);

  cg_tensor *jt_custom[2], *jn[2], *jt_auto[2];
  cg_compute_gradient(mse_with, &mse, x, 2, 0, jt_custom, jn);
  cg_compute_gradient(mse_autodiff, NULL, x, 2, 0, jt_auto, jn);
  double worst = 0;
  for (int i = 0; i < 2; i++)
    for (int64_t k = 0; k < cg_tensor_size(jt_auto[i]); k++)
      worst = fmax(worst, fabs(cg_tensor_get(jt_custom[i], k) - cg_tensor_get(jt_auto[i], k)));
  printf("largest difference from plain autodiff: %g\n", worst);

  cg_status caught = cg_gradcheck(mse_with, &wrong, x, 2, NULL, &r);
  printf("wrong custom gradient: %s\n", r.message);
  cg_clear_error();

  /* fit y = 3 x + 0.5 with the correct loss and plain gradient descent */
  int64_t m[1] = {64};
  cg_tensor *xs = cg_random_uniform(CG_F64, 1, m, -1, 1, 3);
  cg_tensor *ys = cg_add(cg_add(cg_mul(xs, cg_scalar(CG_F64, 3)), cg_scalar(CG_F64, 0.5)),
                         cg_random_normal(CG_F64, 1, m, 0, 0.01, 4));
  cg_var *w = cg_var_new("w", cg_scalar(CG_F64, 0), 1), *b = cg_var_new("b", cg_scalar(CG_F64, 0), 1);
  double loss = 0;
  for (int step = 0; step < 300; step++) {
    cg_scope s = cg_scope_begin();
    cg_tape *tape = cg_tape_begin(0);
    cg_tensor *in[2] = {cg_add(cg_mul(xs, cg_var_read(w)), cg_var_read(b)), ys}, *l, *g[2];
    cg_custom_gradient(&mse, in, &l);
    cg_tape_end(tape);
    cg_tensor *vars[2] = {cg_var_value(w), cg_var_value(b)};
    cg_tape_gradient(tape, l, vars, 2, g, NULL);
    cg_var_assign_sub(w, cg_mul(g[0], cg_scalar(CG_F64, 0.5)));
    cg_var_assign_sub(b, cg_mul(g[1], cg_scalar(CG_F64, 0.5)));
    loss = cg_item(l);
    cg_tape_free(tape);
    cg_scope_end(s);
  }
  printf("fit after 300 steps: w = %.3f, b = %.3f, loss = %.2e\n", cg_item(cg_var_value(w)),
         cg_item(cg_var_value(b)), loss);
  cg_var_free(w);
  cg_var_free(b);
  cg_scope_end(scope);
  return ok == CG_OK && caught == CG_ECHECK && worst < 1e-12 ? 0 : 1;
}

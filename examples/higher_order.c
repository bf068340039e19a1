/* higher_order.c - derivatives of derivatives: nested tapes give f''(x) for
 * f(x) = x^3 sin(x), and a Hessian-vector product H v of g(x) = sum(tanh(x)^2) comes from
 * differentiating <grad g, v> once more. Both are compared with the formulas. */
#include <cgrad.h>
#include <math.h>
#include <stdio.h>

int main(void)
{
  cg_scope scope = cg_scope_begin();

  /* f''(x) through two nested tapes */
  double at = 1.5;
  cg_tensor *x = cg_scalar(CG_F64, at), *df, *d2f;
  cg_tape *outer = cg_tape_begin(0), *inner = cg_tape_begin(0);
  cg_tape_watch(outer, x);
  cg_tape_watch(inner, x);
  cg_tensor *f = cg_mul(cg_mul(cg_square(x), x), cg_sin(x));
  cg_tape_end(inner);
  cg_tape_gradient(inner, f, &x, 1, &df, NULL); /* recorded by the outer tape */
  cg_tape_end(outer);
  cg_tape_gradient(outer, df, &x, 1, &d2f, NULL);
  double expect = 6 * at * sin(at) + 6 * at * at * cos(at) - at * at * at * sin(at);
  printf("f(x) = x^3 sin x at x = %g: f''(x) = %.10f (formula %.10f)\n", at, cg_item(d2f), expect);
  cg_tape_free(inner);
  cg_tape_free(outer);

  /* H v for g(x) = sum tanh(x)^2: H is diagonal with 2 (1 - t^2)(1 - 3 t^2), t = tanh x */
  int64_t shape[1] = {3};
  double xv[3] = {-0.5, 0.25, 1.0}, vv[3] = {1, 2, -1};
  cg_tensor *xs = cg_tensor_from(CG_F64, 1, shape, xv), *v = cg_tensor_from(CG_F64, 1, shape, vv);
  cg_tensor *grad, *hv;
  outer = cg_tape_begin(0);
  cg_tape_watch(outer, xs);
  inner = cg_tape_begin(0);
  cg_tape_watch(inner, xs);
  cg_tensor *g = cg_sum(cg_square(cg_tanh(xs)), NULL, 0, 0);
  cg_tape_end(inner);
  cg_tape_gradient(inner, g, &xs, 1, &grad, NULL);
  cg_tensor *gv = cg_sum(cg_mul(grad, v), NULL, 0, 0);
  cg_tape_end(outer);
  cg_tape_gradient(outer, gv, &xs, 1, &hv, NULL);
  printf("Hessian-vector product: ");
  cg_print(hv);
  double worst = 0;
  for (int i = 0; i < 3; i++) {
    double t = tanh(xv[i]), h = 2 * (1 - t * t) * (1 - 3 * t * t);
    worst = fmax(worst, fabs(cg_tensor_get(hv, i) - h * vv[i]));
  }
  printf("largest difference from the formula: %.3g\n", worst);
  int ok = fabs(cg_item(d2f) - expect) < 1e-9 && worst < 1e-12;
  cg_tape_free(inner);
  cg_tape_free(outer);
  cg_scope_end(scope);
  return ok ? 0 : 1;
}

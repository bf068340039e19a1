/* override_gradient.c - tf.RegisterGradient + gradient_override_map in C: a gradient
 * registered as "CustomGradient" returns grad * 2; inside the override scope, Square uses
 * it, so d(x^2)/dx at x = 3 is 2 there and 6 outside. */
#include <cgrad.h>
#include <stdio.h>

static cg_status custom_gradient(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_scalar_like(dy[0], 2));
  return cg_status_of(dx[0]);
}

static double dsquare_at(double at)
{
  cg_scope scope = cg_scope_begin();
  cg_tensor *x = cg_scalar(CG_F32, at), *dx = NULL;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_square(x); /* the override in force here, at recording, decides */
  cg_tape_end(tape);
  cg_tape_gradient(tape, y, &x, 1, &dx, NULL);
  double g = dx ? cg_item(dx) : 0;
  cg_tape_free(tape);
  cg_scope_end(scope);
  return g;
}

int main(void)
{
  if (cg_register_gradient("CustomGradient", custom_gradient, NULL, 0) != CG_OK) {
    fprintf(stderr, "%s\n", cg_last_error());
    return 1;
  }
  cg_gradient_override_push("Square", "CustomGradient"); /* with g.gradient_override_map({"Square": "CustomGradient"}): */
  printf("inside the override scope: d(x^2)/dx at x = 3 is %g\n", dsquare_at(3));
  cg_gradient_override_pop();
  printf("outside the override scope: d(x^2)/dx at x = 3 is %g\n", dsquare_at(3));
  return cg_last_status() == CG_OK ? 0 : 1;
}

/* graph_mode.c - the classic TensorFlow 1 program in C: build a graph, register a gradient
 * as "CustomGradient", override Square with it while building, ask tf.gradients for
 * d(x^2)/dx, and run the session at x = 3: it prints 2 (6 without the override). */
#include <cgrad.h>
#include <stdio.h>

static cg_status custom_gradient(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_scalar_like(dy[0], 2));
  return cg_status_of(dx[0]);
}

int main(void)
{
  cg_register_gradient("CustomGradient", custom_gradient, NULL, 0); /* @tf.RegisterGradient */
  cg_scope scope = cg_scope_begin();
  cg_graph *g = cg_graph_new();                                     /* g = tf.Graph()       */
  cg_graph_enter(g);                                                /* with g.as_default(): */
  cg_tensor *x = cg_placeholder(CG_F32, 0, NULL, "x");
  cg_gradient_override_push("Square", "CustomGradient");            /* gradient_override_map */
  cg_tensor *y = cg_square(x);
  cg_gradient_override_pop();
  cg_graph_exit(g);
  cg_tensor *dx, *result;
  cg_gradients(&y, 1, &x, 1, NULL, &dx, NULL);                      /* tf.gradients(y, x)   */
  cg_feed feed = {x, cg_scalar(CG_F32, 3)};
  cg_status st = cg_graph_run(g, &feed, 1, &dx, 1, &result);        /* sess.run(dx, {x: 3}) */
  if (st == CG_OK) printf("d(x^2)/dx at x = 3 with Square overridden: %g\n", cg_item(result));
  else fprintf(stderr, "%s\n", cg_last_error());
  cg_graph_free(g);
  cg_scope_end(scope);
  return st == CG_OK ? 0 : 1;
}

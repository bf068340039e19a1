/* cmd_graph.c - `cgrad graph`: builds an example model as a graph (a small MLP with a
 * custom-gradient op and an overridden gradient), adds its gradient nodes, and writes it as
 * Graphviz DOT so a person can see which gradient function each node uses. */
#include "commands.h"
#include <cgrad.h>
#include <stdio.h>
#include <string.h>

static cg_status clip_forward(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  return cg_status_of(y[0]);
}

static cg_status clip_backward(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
{
  dx[0] = cg_clip_by_value(dy[0], -1, 1);
  return cg_status_of(dx[0]);
}

/* ReLU's gradient replaced by the straight-through estimator (dy passes unchanged). */
static cg_status straight_through(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = dy[0];
  return CG_OK;
}

static cg_status build(cg_graph *g, int with_gradients)
{
  static const cg_custom_def clip = {"ClipGradient", 1, 1, clip_forward, clip_backward, NULL};
  int64_t xs[2] = {-1, 784}, w1s[2] = {784, 64}, b1s[1] = {64}, w2s[2] = {64, 10}, ys[1] = {-1};
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F32, 2, xs, "images"), *labels = cg_placeholder(CG_I64, 1, ys, "labels");
  cg_tensor *w[3] = {cg_random_normal(CG_F32, 2, w1s, 0, 0.05, 1), cg_zeros(CG_F32, 1, b1s),
                     cg_random_normal(CG_F32, 2, w2s, 0, 0.05, 2)};
  cg_gradient_override_push("Relu", "StraightThrough");
  cg_tensor *h = cg_relu(cg_bias_add(cg_matmul(x, w[0]), w[1]));
  cg_gradient_override_pop();
  cg_tensor *clipped;
  cg_status st = cg_custom_gradient(&clip, &h, &clipped);
  cg_tensor *logits = cg_matmul(clipped, w[2]);
  cg_tensor *loss = cg_mean(cg_sparse_softmax_cross_entropy_with_logits(labels, logits), NULL, 0, 0);
  cg_graph_exit(g);
  if (st != CG_OK || !loss) return cg_last_status();
  cg_tensor *grads[3];
  return with_gradients ? cg_gradients(&loss, 1, w, 3, NULL, grads, NULL) : CG_OK;
}

int cmd_graph(int argc, char **argv)
{
  const char *path = NULL;
  int with_gradients = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: cgrad graph [--output FILE.dot] [--no-gradients]\n"
             "Writes the graph of an example model (784-64-10 MLP; Relu's gradient overridden by a\n"
             "straight-through estimator; a ClipGradient custom gradient) with its gradient nodes as\n"
             "Graphviz DOT (render with: dot -Tsvg FILE.dot -o graph.svg).\n");
      return 0;
    } else if (!strcmp(argv[i], "--output") && i + 1 < argc) {
      path = argv[++i];
    } else if (!strcmp(argv[i], "--no-gradients")) {
      with_gradients = 0;
    } else {
      fprintf(stderr, "cgrad graph: unknown option '%s' (see --help)\n", argv[i]);
      return 2;
    }
  }
  if (!cg_has_gradient("StraightThrough")) cg_register_gradient("StraightThrough", straight_through, NULL, 0);
  cg_scope scope = cg_scope_begin();
  cg_graph *g = cg_graph_new();
  cg_status st = g ? build(g, with_gradients) : cg_last_status();
  FILE *f = path ? fopen(path, "w") : stdout;
  if (st == CG_OK && !f) fprintf(stderr, "cgrad graph: cannot write %s\n", path);
  else if (st == CG_OK) st = cg_graph_write_dot(g, f);
  if (f && f != stdout) fclose(f);
  if (st != CG_OK) fprintf(stderr, "cgrad graph: %s\n", cg_last_error());
  cg_graph_free(g);
  cg_scope_end(scope);
  return st == CG_OK && f ? 0 : 1;
}

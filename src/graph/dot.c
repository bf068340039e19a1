/* dot.c - a graph as Graphviz DOT, for people: ops as boxes (type, output shape and the
 * gradient function each would use), gradient nodes shaded and labelled with the gradient
 * that built them, placeholders and constants as ellipses. */
#include "graph.h"
#include <string.h>

static void tensor_node(FILE *f, const cg_tensor *t, const char *what)
{
  char shape[160];
  fprintf(f, "  t%llu [shape=ellipse, label=\"%s%s%s\\n%s %s\"];\n", (unsigned long long)t->id, what,
          t->name ? " " : "", t->name ? t->name : "", cg_dtype_name(t->dtype),
          cg__fmt_shape(t->ndim, t->shape, shape, sizeof shape));
}

static void write_node(FILE *f, const cg_node *n, size_t k)
{
  char shape[160];
  const cg_tensor *y = n->out[0];
  fprintf(f, "  n%zu [shape=box, label=\"%s\\n%s %s", k, n->type, cg_dtype_name(y->dtype),
          cg__fmt_shape(y->ndim, y->shape, shape, sizeof shape));
  if (n->custom) fprintf(f, "\\ncustom gradient");
  else if (n->grad_name && strcmp(n->grad_name, n->type) != 0) fprintf(f, "\\ngradient: %s (override)", n->grad_name);
  if (n->made_by) fprintf(f, "\\n(from the gradient of %s)\", style=filled, fillcolor=\"#dbe9f6\"];\n", n->made_by);
  else fprintf(f, "\"];\n");
}

cg_status cg_graph_write_dot(const cg_graph *g, FILE *f)
{
  if (!g || !f) return cg_set_error(CG_EINVAL, "cg_graph_write_dot: graph and file are required");
  fprintf(f, "digraph cgrad {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n");
  for (size_t i = 0; i < g->n_placeholders; i++) tensor_node(f, g->placeholders[i], "placeholder");
  for (size_t k = 0; k < g->n_nodes; k++) {
    const cg_node *n = g->nodes[k];
    write_node(f, n, k);
    for (int i = 0; i < n->n_in; i++) {
      const cg_tensor *t = n->in[i];
      if (t->producer) fprintf(f, "  n%zu -> n%zu;\n", t->producer->graph_index, k);
      else {
        if (!t->graph) tensor_node(f, t, "constant");
        fprintf(f, "  t%llu -> n%zu;\n", (unsigned long long)t->id, k);
      }
    }
  }
  fprintf(f, "}\n");
  return ferror(f) ? cg_set_error(CG_EIO, "cg_graph_write_dot: write error") : CG_OK;
}

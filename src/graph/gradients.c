/* gradients.c - tf.gradients: adds the gradient nodes of ys with respect to xs to their
 * graph, by the same reverse walk and the same registered gradient functions as tapes. */
#include "graph.h"
#include "../autodiff/backward.h"
#include <stdlib.h>
#include <string.h>

static cg_status check(cg_tensor *const *ys, int ny, cg_tensor *const *xs, int nx,
                       cg_tensor *const *grad_ys, cg_tensor **out, cg_graph **graph)
{
  if (ny < 1 || !ys || nx < 0 || (nx > 0 && (!xs || !out)))
    return cg_set_error(CG_EINVAL, "cg_gradients: need ny >= 1 ys, and xs and out of nx = %d entries", nx);
  cg_graph *g = NULL;
  for (int i = 0; i < ny; i++) {
    if (!ys[i]) return cg__null_input("cg_gradients", i);
    if (!ys[i]->graph)
      return cg_set_error(CG_EINVAL, "cg_gradients: ys[%d] is not a graph tensor (use a tape in eager mode)", i);
    if (g && ys[i]->graph != g) return cg_set_error(CG_EINVAL, "cg_gradients: ys belong to different graphs");
    g = ys[i]->graph;
    char a[160], b[160];
    const cg_tensor *seed = grad_ys ? grad_ys[i] : NULL;
    bool fits = seed && seed->dtype == ys[i]->dtype && seed->ndim == ys[i]->ndim;
    for (int d = 0; fits && d < seed->ndim; d++) /* unknown (-1) dims are checked by the run */
      fits = seed->shape[d] == ys[i]->shape[d] || seed->shape[d] < 0 || ys[i]->shape[d] < 0;
    if (seed && !fits)
      return cg_set_error(CG_ESHAPE, "cg_gradients: grad_ys[%d] is %s %s but ys[%d] is %s %s", i,
                          cg_dtype_name(seed->dtype), cg_shape_str(seed, a, sizeof a), i,
                          cg_dtype_name(ys[i]->dtype), cg_shape_str(ys[i], b, sizeof b));
  }
  for (int i = 0; i < nx; i++)
    if (!xs[i]) return cg_set_error(CG_EINVAL, "cg_gradients: xs[%d] is NULL", i);
  *graph = g;
  return CG_OK;
}

cg_status cg_gradients(cg_tensor *const *ys, int ny, cg_tensor *const *xs, int nx,
                       cg_tensor *const *grad_ys, cg_tensor **out, const cg_gradients_opts *opts)
{
  cg_graph *g = NULL;
  cg_status st = check(ys, ny, xs, nx, grad_ys, out, &g);
  if (st != CG_OK) return st;
  /* walk a snapshot: the gradient nodes are appended to the same graph as we go */
  size_t n = g->n_nodes;
  cg_node **nodes = cg__malloc((n ? n : 1) * sizeof *nodes);
  if (!nodes) return CG_ENOMEM;
  memcpy(nodes, g->nodes, n * sizeof *nodes);
  if ((st = cg_graph_enter(g)) != CG_OK) {
    free(nodes);
    return st;
  }
  cg_backward_args a = {.nodes = nodes, .n_nodes = n, .targets = ys, .seeds = grad_ys,
                        .n_targets = ny, .stops = opts ? opts->stop_gradients : NULL,
                        .n_stops = opts ? opts->n_stop : 0, .sources = xs, .n_src = nx,
                        .unconnected = opts ? opts->unconnected : CG_UNCONNECTED_NONE};
  st = cg__backward(&a, out);
  cg_graph_exit(g);
  free(nodes);
  return st;
}

/* graph.c - graphs as containers: create and free, enter and exit on a thread,
 * placeholders, and adding the nodes the dispatcher hands over (with symbolic outputs whose
 * shapes come from the op's own shape rule, unknown dims included). */
#include "graph.h"
#include "../autodiff/custom.h"
#include "plan.h"
#include <stdlib.h>
#include <string.h>

cg_graph *cg_graph_new(void)
{
  cg__ensure_builtins();
  return cg__calloc(1, sizeof(cg_graph));
}

void cg_graph_free(cg_graph *g)
{
  if (!g) return;
  cg_thread_state *s = cg__tls();
  if (s->graph == g) { /* freeing an entered graph leaves it first */
    s->graph = g->outer;
  } else { /* entered beneath another graph of this thread: unlink it from that chain */
    for (cg_graph *h = s->graph; h; h = h->outer)
      if (h->outer == g) h->outer = g->outer;
  }
  for (cg_plan *p = g->plans, *next; p; p = next) {
    next = cg__plan_next(p);
    cg__plan_free(p);
  }
  for (size_t i = 0; i < g->n_nodes; i++) {
    cg_node *n = g->nodes[i];
    for (int o = 0; o < n->n_out; o++)
      if (n->out[o]->producer == n) n->out[o]->producer = NULL;
    cg__node_release(n);
  }
  for (size_t i = 0; i < g->n_placeholders; i++) cg_release(g->placeholders[i]);
  for (size_t k = 0; k < g->folded.cap; k++)
    if (g->folded.keys[k]) cg_release(g->folded.values[k]);
  cg__idmap_free(&g->folded);
  free(g->nodes);
  free(g->placeholders);
  free(g);
}

cg_status cg_graph_set_options(cg_graph *g, unsigned options)
{
  if (!g) return cg_set_error(CG_EINVAL, "cg_graph_set_options: graph is NULL");
  if (options & ~(unsigned)(CG_GRAPH_CSE | CG_GRAPH_FOLD_CONSTANTS))
    return cg_set_error(CG_EINVAL, "cg_graph_set_options: unknown option bits 0x%x", options);
  for (cg_plan *p = g->plans, *next; p; p = next) { /* plans were made under the old options */
    next = cg__plan_next(p);
    cg__plan_free(p);
  }
  g->plans = NULL;
  g->options = options;
  return CG_OK;
}

cg_status cg_graph_enter(cg_graph *g)
{
  if (!g) return cg_set_error(CG_EINVAL, "cg_graph_enter: graph is NULL");
  cg_thread_state *s = cg__tls();
  if (s->graph == g) {
    g->entered++;
    return CG_OK;
  }
  if (g->entered)
    return cg_set_error(CG_ESTATE, "cg_graph_enter: the graph is already entered beneath another graph");
  g->outer = s->graph;
  g->entered = 1;
  s->graph = g;
  return CG_OK;
}

cg_status cg_graph_exit(cg_graph *g)
{
  cg_thread_state *s = cg__tls();
  if (!g || s->graph != g)
    return cg_set_error(CG_ESTATE, "cg_graph_exit: this graph is not the one entered on this thread");
  if (--g->entered == 0) {
    s->graph = g->outer;
    g->outer = NULL;
  }
  return CG_OK;
}

cg_graph *cg_graph_current(void) { return cg__tls()->graph; }

int cg_tensor_is_symbolic(const cg_tensor *t) { return t && t->graph != NULL; }

static cg_status push_placeholder(cg_graph *g, cg_tensor *t)
{
  if (g->n_placeholders == g->cap_placeholders) {
    size_t cap = g->cap_placeholders ? 2 * g->cap_placeholders : 8;
    cg_tensor **p = cg__realloc(g->placeholders, cap * sizeof *p);
    if (!p) return CG_ENOMEM;
    g->placeholders = p;
    g->cap_placeholders = cap;
  }
  g->placeholders[g->n_placeholders++] = cg_retain(t);
  return CG_OK;
}

cg_tensor *cg_placeholder(cg_dtype d, int ndim, const int64_t *shape, const char *name)
{
  cg_graph *g = cg__tls()->graph;
  char buf[160];
  if (!g) {
    cg_set_error(CG_ESTATE, "cg_placeholder: no graph is entered (cg_graph_enter)");
    return NULL;
  }
  if ((unsigned)d >= CG_NUM_DTYPES || ndim < 0 || ndim > CG_MAX_DIMS || (ndim && !shape)) {
    cg_set_error(CG_EINVAL, "cg_placeholder: bad dtype %d or rank %d", (int)d, ndim);
    return NULL;
  }
  int64_t known[CG_MAX_DIMS], size;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < -1) {
      cg_set_error(CG_EINVAL, "cg_placeholder: dimension %d of %s is %lld (use -1 for unknown)", i,
                   cg__fmt_shape(ndim, shape, buf, sizeof buf), (long long)shape[i]);
      return NULL;
    }
    known[i] = shape[i] < 0 ? 1 : shape[i];
  }
  if (cg__shape_size("cg_placeholder", ndim, known, &size) != CG_OK) return NULL;
  cg_tensor *t = cg__tensor_symbolic(g, d, ndim, shape);
  if (!t) return NULL;
  char fallback[32];
  snprintf(fallback, sizeof fallback, "placeholder_%zu", g->n_placeholders);
  t->name = strdup(name ? name : fallback);
  if (!t->name || push_placeholder(g, t) != CG_OK) {
    cg_release(t);
    cg_set_error(CG_ENOMEM, "cg_placeholder: out of memory");
    return NULL;
  }
  cg__scope_adopt(t);
  return t;
}

/* --- nodes ---------------------------------------------------------------------------------- */

/* Trial sizes for unknown dims: two primes unlikely to be real sizes. */
static const int64_t trial_dim[2] = {257, 263};

cg_status cg__infer_symbolic(cg_node *node)
{
  bool unknown = false;
  for (int i = 0; i < node->n_in && !unknown; i++)
    for (int d = 0; d < node->in[i]->ndim; d++) unknown |= node->in[i]->shape[d] < 0;
  if (!unknown) return node->def->infer(node);

  cg_tensor **saved = node->in;
  cg_tensor *trial = cg__malloc((size_t)node->n_in * sizeof *trial);
  cg_tensor **ptrs = cg__malloc((size_t)node->n_in * sizeof *ptrs);
  cg_output_meta first[CG_MAX_OUTPUTS];
  cg_status st = trial && ptrs ? CG_OK : CG_ENOMEM;
  for (int t = 0; t < 2 && st == CG_OK; t++) {
    for (int i = 0; i < node->n_in; i++) {
      trial[i] = *saved[i];
      for (int d = 0; d < trial[i].ndim; d++)
        if (trial[i].shape[d] < 0) trial[i].shape[d] = trial_dim[t];
      /* known dims times a trial size may overflow: such an input can never be fed */
      if (st == CG_OK) st = cg__shape_size(node->type, trial[i].ndim, trial[i].shape, &trial[i].size);
      ptrs[i] = &trial[i];
    }
    if (st != CG_OK) break;
    node->in = ptrs;
    if (t == 1) memcpy(first, node->meta, sizeof first);
    for (int o = 0; o < CG_MAX_OUTPUTS; o++) node->meta[o].set = false;
    node->declared = 0;
    st = node->def->infer(node);
    node->in = saved;
    if (st != CG_OK && cg_last_status() != CG_OK) { /* the message shows trial sizes: say so */
      char note[64];
      snprintf(note, sizeof note, " (unknown dimensions tried as %lld)", (long long)trial_dim[t]);
      size_t used = strlen(cg_last_error());
      if (used + strlen(note) < sizeof cg__tls()->message) strcat(cg__tls()->message, note);
    }
  }
  for (int o = 0; o < CG_MAX_OUTPUTS && st == CG_OK; o++) {
    cg_output_meta *m = &node->meta[o];
    if (m->set != first[o].set || (m->set && (m->dtype != first[o].dtype || m->ndim != first[o].ndim)))
      st = cg_set_error(CG_ESHAPE, "%s: the shape rule gives different outputs for different sizes of "
                                   "an unknown dimension", node->type);
    for (int d = 0; m->set && st == CG_OK && d < m->ndim; d++)
      if (m->shape[d] != first[o].shape[d]) m->shape[d] = -1;
  }
  free(trial);
  free(ptrs);
  return st;
}

cg_status cg__graph_add_node(cg_graph *g, const cg_node *proto, const cg_output_meta *meta,
                             cg_tensor **out)
{
  if (g->n_nodes == g->cap_nodes) {
    size_t cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
    cg_node **nodes = cg__realloc(g->nodes, cap * sizeof *nodes);
    if (!nodes) return CG_ENOMEM;
    g->nodes = nodes;
    g->cap_nodes = cap;
  }
  cg_node tmp = *proto;
  bool guessed = false; /* (cg__infer_symbolic tried sizes for an unknown dim) */
  for (int i = 0; i < tmp.n_in; i++) guessed |= !cg__shape_known(tmp.in[i]);
  for (int o = 0; o < tmp.n_out; o++) {
    tmp.out[o] = cg__tensor_symbolic(g, meta[o].dtype, meta[o].ndim, meta[o].shape);
    if (!tmp.out[o]) {
      for (int k = 0; k < o; k++) cg_release(tmp.out[k]);
      return cg_set_error(CG_ENOMEM, "%s: out of memory adding a graph node", proto->type);
    }
    tmp.out[o]->shape_guessed = guessed;
  }
  cg_node *n = cg__node_copy(&tmp);
  if (n && !n->custom && !(n->def->flags & CG_OP_NOT_DIFFERENTIABLE)) {
    n->grad = cg__resolve_gradient(n->type); /* the override in force at creation decides */
    n->grad_name = n->grad ? n->grad->name : NULL;
  }
  if (n) n->made_by = cg__tls()->building_gradient;
  if (!n || (!n->custom && !(n->def->flags & CG_OP_NOT_DIFFERENTIABLE) && !n->grad)) {
    cg__node_release(n);
    for (int o = 0; o < tmp.n_out; o++) cg_release(tmp.out[o]);
    return cg_last_status() ? cg_last_status() : CG_ENOMEM;
  }
  for (int o = 0; o < n->n_out; o++) {
    n->out[o]->producer = n;
    n->out[o]->out_index = o;
    cg__scope_adopt(tmp.out[o]); /* the creation reference goes to the caller */
    if (out) out[o] = tmp.out[o];
  }
  n->graph_index = g->n_nodes;
  g->nodes[g->n_nodes++] = n;
  g->stats.nodes = g->n_nodes;
  return CG_OK;
}

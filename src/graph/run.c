/* run.c - running a graph (Session.run): pick the nodes the fetches need, check the feeds,
 * merge common subexpressions and fold constants when asked, then execute in creation order
 * and release each intermediate right after its last reader (the memory plan: freed buffers
 * go back to the size-class cache, where the next node of a like size picks them up). */
#include "graph.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  cg_graph *g;
  bool *needed;        /* per node                                          */
  bool *merged;        /* per node: CSE found an earlier twin               */
  cg_idmap alias;      /* merged output id -> the twin's output (tensor *)  */
  cg_idmap values;     /* symbolic id -> concrete tensor (owned reference)  */
  cg_idmap last_use;   /* symbolic id -> 1 + index of the last node reading it */
  cg_idmap keep;       /* ids of fetched tensors                            */
  size_t live, peak, total;
} run_state;

/* --- which nodes, which feeds ------------------------------------------------------------------ */

static cg_status mark_needed(run_state *r, cg_tensor *const *fetches, int n)
{
  cg_graph *g = r->g;
  size_t top = 0;
  size_t *stack = cg__malloc((g->n_nodes + 1) * sizeof *stack);
  if (!stack) return CG_ENOMEM;
  for (int i = 0; i < n; i++)
    if (fetches[i]->producer && !r->needed[fetches[i]->producer->graph_index]) {
      r->needed[fetches[i]->producer->graph_index] = true;
      stack[top++] = fetches[i]->producer->graph_index;
    }
  while (top) {
    const cg_node *node = g->nodes[stack[--top]];
    for (int i = 0; i < node->n_in; i++) {
      const cg_node *p = node->in[i]->producer;
      if (p && !r->needed[p->graph_index]) {
        r->needed[p->graph_index] = true;
        stack[top++] = p->graph_index;
      }
    }
  }
  free(stack);
  return CG_OK;
}

static cg_status check_feed(const cg_graph *g, const cg_feed *f, int i)
{
  char want[160], got[160];
  const cg_tensor *p = f->placeholder, *v = f->value;
  if (!p || !v) return cg_set_error(CG_EINVAL, "cg_graph_run: feed %d has a NULL placeholder or value", i);
  if (p->graph != g || p->producer)
    return cg_set_error(CG_EINVAL, "cg_graph_run: feed %d is not a placeholder of this graph", i);
  if (v->graph) return cg_set_error(CG_EINVAL, "cg_graph_run: the value fed to '%s' is symbolic", p->name);
  cg__fmt_shape(p->ndim, p->shape, want, sizeof want);
  cg_shape_str(v, got, sizeof got);
  if (v->dtype != p->dtype)
    return cg_set_error(CG_EDTYPE, "cg_graph_run: placeholder '%s' is %s %s but was fed %s %s", p->name,
                        cg_dtype_name(p->dtype), want, cg_dtype_name(v->dtype), got);
  bool fits = v->ndim == p->ndim;
  for (int d = 0; fits && d < p->ndim; d++) fits = p->shape[d] < 0 || p->shape[d] == v->shape[d];
  if (!fits)
    return cg_set_error(CG_ESHAPE, "cg_graph_run: placeholder '%s' has shape %s but was fed %s", p->name, want, got);
  return CG_OK;
}

static cg_status take_feeds(run_state *r, const cg_feed *feeds, int n)
{
  for (int i = 0; i < n; i++) {
    cg_status st = check_feed(r->g, &feeds[i], i);
    if (st != CG_OK) return st;
    if (cg__idmap_get(&r->values, feeds[i].placeholder->id))
      return cg_set_error(CG_EINVAL, "cg_graph_run: placeholder '%s' is fed twice", feeds[i].placeholder->name);
    if (cg__idmap_put(&r->values, feeds[i].placeholder->id, cg_retain(feeds[i].value)) != CG_OK) {
      cg_release(feeds[i].value);
      return CG_ENOMEM;
    }
  }
  return CG_OK;
}

/* What a node reads as input i: the twin a merged tensor stands for, a feed, a value. */
static cg_tensor *resolve(run_state *r, cg_tensor *t)
{
  cg_tensor *twin;
  while ((twin = cg__idmap_get(&r->alias, t->id))) t = twin;
  return t;
}

static cg_status check_placeholders_fed(run_state *r)
{
  for (size_t k = 0; k < r->g->n_nodes; k++) {
    if (!r->needed[k]) continue;
    const cg_node *n = r->g->nodes[k];
    for (int i = 0; i < n->n_in; i++) {
      const cg_tensor *t = n->in[i];
      char s[160];
      if (t->graph && !t->producer && !cg__idmap_get(&r->values, t->id))
        return cg_set_error(CG_EINVAL, "cg_graph_run: placeholder '%s' (%s %s) is needed by %s but was not fed",
                            t->name, cg_dtype_name(t->dtype), cg__fmt_shape(t->ndim, t->shape, s, sizeof s),
                            n->type);
    }
  }
  return CG_OK;
}

/* --- common subexpressions ----------------------------------------------------------------------- */

static bool same_computation(run_state *r, const cg_node *a, const cg_node *b)
{
  if (a->def != b->def || a->n_in != b->n_in || strcmp(a->type, b->type) != 0) return false;
  for (int i = 0; i < a->n_in; i++)
    if (resolve(r, a->in[i]) != resolve(r, b->in[i])) return false;
  if (!a->attrs != !b->attrs) return false;
  if (a->attrs && (a->attrs->n != b->attrs->n ||
                   memcmp(a->attrs->items, b->attrs->items, (size_t)a->attrs->n * sizeof(cg_attr))))
    return false;
  return true;
}

static uint64_t node_key(run_state *r, const cg_node *n)
{
  uint64_t h = (uint64_t)(uintptr_t)n->def * 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < n->n_in; i++) h = (h ^ resolve(r, n->in[i])->id) * 0x100000001B3ull;
  return h | 1; /* never 0, the empty key */
}

static cg_status merge_common_subexpressions(run_state *r, size_t *merged)
{
  cg_idmap seen = {0}; /* key -> first node with it (collisions resolved by chaining through a list) */
  cg_status st = CG_OK;
  for (size_t k = 0; k < r->g->n_nodes && st == CG_OK; k++) {
    cg_node *n = r->g->nodes[k];
    if (!r->needed[k] || n->custom || (n->def->flags & CG_OP_STATEFUL)) continue;
    uint64_t key = node_key(r, n);
    cg_node *twin = cg__idmap_get(&seen, key);
    if (twin && same_computation(r, twin, n)) {
      for (int o = 0; o < n->n_out && st == CG_OK; o++)
        st = cg__idmap_put(&r->alias, n->out[o]->id, twin->out[o]);
      r->merged[k] = true;
      (*merged)++;
    } else if (!twin) {
      st = cg__idmap_put(&seen, key, n);
    }
  }
  cg__idmap_free(&seen);
  return st;
}

/* --- execution --------------------------------------------------------------------------------------- */

static bool foldable(run_state *r, const cg_node *n)
{
  if (!(r->g->options & CG_GRAPH_FOLD_CONSTANTS) || n->custom || (n->def->flags & CG_OP_STATEFUL)) return false;
  for (int i = 0; i < n->n_in; i++) {
    const cg_tensor *t = resolve(r, n->in[i]);
    if (t->graph && !cg__idmap_get(&r->g->folded, t->id)) return false;
  }
  return true;
}

static cg_tensor *input_value(run_state *r, cg_tensor *t)
{
  t = resolve(r, t);
  if (!t->graph) return t; /* a constant captured when the graph was built */
  cg_tensor *v = cg__idmap_get(&r->values, t->id);
  return v ? v : cg__idmap_get(&r->g->folded, t->id);
}

static bool shares_buffer(const cg_tensor *t, cg_tensor *const *in, int n)
{
  for (int i = 0; i < n; i++)
    if (in[i]->buf == t->buf) return true;
  return false;
}

static void drop_value(run_state *r, uint64_t id)
{
  cg_tensor *v = cg__idmap_get(&r->values, id);
  if (!v || cg__idmap_get(&r->keep, id)) return;
  if (v->buf->refcount == 1 && r->live >= v->buf->nbytes) r->live -= v->buf->nbytes;
  cg_release(v);
  cg__idmap_put(&r->values, id, NULL);
}

static cg_status run_node(run_state *r, size_t k, size_t *folded)
{
  cg_node *n = r->g->nodes[k];
  cg_tensor *small[8], **in = n->n_in <= 8 ? small : cg__malloc((size_t)n->n_in * sizeof *in);
  if (!in) return CG_ENOMEM;
  for (int i = 0; i < n->n_in; i++) in[i] = input_value(r, n->in[i]);
  bool fold = foldable(r, n);
  cg_tensor *out[CG_MAX_OUTPUTS];
  int n_out = 0;
  cg_status st = CG_OK;
  if (fold && cg__idmap_get(&r->g->folded, n->out[0]->id)) {
    (*folded)++;
  } else {
    st = cg__execute_owned(n->def, in, n->n_in, n->attrs, out, &n_out);
    for (int o = 0; o < n_out && st == CG_OK; o++) {
      if (!shares_buffer(out[o], in, n->n_in)) {
        r->live += out[o]->buf->nbytes;
        r->total += out[o]->buf->nbytes;
      }
      if (r->live > r->peak) r->peak = r->live;
      cg_idmap *home = fold ? &r->g->folded : &r->values;
      st = cg__idmap_put(home, n->out[o]->id, out[o]);
      if (st != CG_OK) cg_release(out[o]);
    }
    if (fold && st == CG_OK) (*folded)++;
  }
  if (in != small) free(in);
  /* release what this node was the last to read */
  for (int i = 0; i < n->n_in && st == CG_OK; i++) {
    const cg_tensor *t = resolve(r, n->in[i]);
    if (t->graph && (size_t)(uintptr_t)cg__idmap_get(&r->last_use, t->id) == k + 1) drop_value(r, t->id);
  }
  return st;
}

static cg_status plan_last_uses(run_state *r)
{
  for (size_t k = 0; k < r->g->n_nodes; k++) {
    if (!r->needed[k] || r->merged[k]) continue;
    const cg_node *n = r->g->nodes[k];
    for (int i = 0; i < n->n_in; i++) {
      const cg_tensor *t = resolve(r, n->in[i]);
      if (t->graph && cg__idmap_put(&r->last_use, t->id, (void *)(uintptr_t)(k + 1)) != CG_OK)
        return CG_ENOMEM;
    }
  }
  return CG_OK;
}

static cg_status check_fetches(const cg_graph *g, cg_tensor *const *fetches, int n, cg_tensor **out)
{
  if (!g) return cg_set_error(CG_EINVAL, "cg_graph_run: graph is NULL");
  if (n < 1 || !fetches || !out) return cg_set_error(CG_EINVAL, "cg_graph_run: need at least one fetch and an output array");
  for (int i = 0; i < n; i++) {
    out[i] = NULL;
    if (!fetches[i]) return cg_set_error(CG_EINVAL, "cg_graph_run: fetch %d is NULL", i);
    if (fetches[i]->graph && fetches[i]->graph != g)
      return cg_set_error(CG_EINVAL, "cg_graph_run: fetch %d belongs to another graph", i);
  }
  return CG_OK;
}

static void free_state(run_state *r)
{
  for (size_t k = 0; k < r->values.cap; k++)
    if (r->values.keys[k]) cg_release(r->values.values[k]);
  cg__idmap_free(&r->values);
  cg__idmap_free(&r->alias);
  cg__idmap_free(&r->last_use);
  cg__idmap_free(&r->keep);
  free(r->needed);
  free(r->merged);
}

cg_status cg_graph_run(cg_graph *g, const cg_feed *feeds, int n_feeds, cg_tensor *const *fetches,
                       int n_fetches, cg_tensor **out)
{
  cg_status st = check_fetches(g, fetches, n_fetches, out);
  if (st != CG_OK) return st;
  if (n_feeds < 0 || (n_feeds > 0 && !feeds)) return cg_set_error(CG_EINVAL, "cg_graph_run: bad feed list");
  run_state r = {.g = g};
  r.needed = cg__calloc(g->n_nodes + 1, sizeof *r.needed);
  r.merged = cg__calloc(g->n_nodes + 1, sizeof *r.merged);
  size_t merged = 0, folded = 0, ran = 0;
  st = r.needed && r.merged ? CG_OK : CG_ENOMEM;
  if (st == CG_OK) st = take_feeds(&r, feeds, n_feeds);
  if (st == CG_OK) st = mark_needed(&r, fetches, n_fetches);
  if (st == CG_OK) st = check_placeholders_fed(&r);
  for (int i = 0; i < n_fetches && st == CG_OK; i++) {
    if (fetches[i]->graph && !fetches[i]->producer && !cg__idmap_get(&r.values, fetches[i]->id))
      st = cg_set_error(CG_EINVAL, "cg_graph_run: fetch %d is placeholder '%s', which was not fed", i, fetches[i]->name);
  }
  if (st == CG_OK && (g->options & CG_GRAPH_CSE)) st = merge_common_subexpressions(&r, &merged);
  for (int i = 0; i < n_fetches && st == CG_OK; i++)
    st = cg__idmap_put(&r.keep, resolve(&r, fetches[i])->id, (void *)1);
  if (st == CG_OK) st = plan_last_uses(&r);

  cg_thread_state *ts = cg__tls();
  cg_graph *entered = ts->graph;
  ts->graph = NULL; /* nodes run eagerly now, */
  cg_pause_recording(); /* and tapes see the run as a whole, not its parts */
  for (size_t k = 0; k < g->n_nodes && st == CG_OK; k++)
    if (r.needed[k] && !r.merged[k]) {
      st = run_node(&r, k, &folded);
      ran++;
    }
  cg_resume_recording();
  ts->graph = entered;

  for (int i = 0; i < n_fetches && st == CG_OK; i++) {
    cg_tensor *v = input_value(&r, fetches[i]);
    out[i] = cg_retain(v);
  }
  if (st == CG_OK)
    for (int i = 0; i < n_fetches; i++) cg__scope_adopt(out[i]);
  else
    for (int i = 0; i < n_fetches; i++) {
      cg_release(out[i]);
      out[i] = NULL;
    }
  free_state(&r);
  g->stats = (cg_graph_stats){.nodes = g->n_nodes, .nodes_run = ran, .nodes_merged = merged,
                              .nodes_folded = folded, .peak_bytes = r.peak, .total_bytes = r.total};
  return st;
}

cg_status cg_graph_get_stats(const cg_graph *g, cg_graph_stats *out)
{
  if (!g || !out) return cg_set_error(CG_EINVAL, "cg_graph_get_stats: graph and output are required");
  *out = g->stats;
  return CG_OK;
}

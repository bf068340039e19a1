/* plan.c - compiling a run of a graph into a plan: choose the nodes the fetches need, merge
 * common subexpressions, fold constant-only nodes (kept on the graph), bind every input and
 * output to a fixed tensor, and give intermediates buffers by liveness: a buffer returns to
 * the pool after its last reader (views included) and the next output of a fitting size
 * takes it. Executing a plan is then one kernel call per step. */
#include "plan.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  bool any_alias;                /* some alias_of[o] >= 0 (next to what a run reads) */
  cg_node node;                  /* def, type, attrs; in/out bound to slot tensors   */
  int alias_of[CG_MAX_OUTPUTS];  /* the input an output views (-1: its own buffer)   */
} step;

typedef struct {
  cg_tensor *t;     /* a header the plan owns, or a constant it retains           */
  bool constant;
  bool chunked;     /* t lies in the plan's header chunks (outputs of steps)      */
  int root;         /* slot owning the buffer this one views; -1: not pooled        */
  size_t nbytes;
  size_t last_use;  /* 1 + the last step reading it or a view of it; SIZE_MAX: fetched */
  size_t step;      /* the step that computes it (outputs of steps)                  */
  cg_tensor *buffer; /* roots: the pooled tensor whose memory they use              */
  bool handed;       /* fetched, with a buffer of its own: each run writes it into a new
                        tensor (fresh), which the run hands out instead of a copy      */
  cg_tensor *fresh;
} slot;

struct cg_plan {
  cg_graph *g;
  int n_feeds, n_fetches;
  cg_tensor **feed_keys;   /* retained placeholders, in feed order        */
  cg_tensor **feed_shapes; /* a header copy of each fed value's shape      */
  uint64_t *fetch_ids;
  int *feed_slot, *fetch_slot;
  slot *slots;
  size_t n_slots, cap_slots;
  step *steps;
  size_t n_steps, cap_steps;
  cg_tensor **buffers;     /* the pool's tensors (released with the plan)   */
  size_t n_buffers;
  /* A run reads every step, its inputs and its output headers in step order: the steps'
     input lists lie in one array, the headers of their outputs in chunks, in that order. */
  cg_tensor **inputs;
  struct header_chunk *headers;
  cg_graph_stats stats;
  cg_plan *next;
};

typedef struct {
  cg_plan *p;
  bool *needed, *merged;
  cg_idmap alias;   /* merged output id -> its twin (cg_tensor *)   */
  cg_idmap slot_of; /* tensor id -> 1 + slot index                  */
} builder;

/* A zeroed header with one reference, dtype and shape (no data yet). */
static cg_tensor *init_header(cg_tensor *t, cg_dtype d, int ndim, const int64_t *shape)
{
  memset(t, 0, sizeof *t);
  t->refcount = 1;
  t->dtype = d;
  t->ndim = ndim;
  t->size = 1;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->size *= shape[i];
  }
  return t;
}

static cg_tensor *new_header(cg_dtype d, int ndim, const int64_t *shape)
{
  cg_tensor *t = cg__malloc(sizeof *t);
  return t ? init_header(t, d, ndim, shape) : NULL;
}

/* Headers of step outputs, in the order the steps make them. */
#define HEADERS_PER_CHUNK 256
typedef struct header_chunk {
  struct header_chunk *next;
  size_t used;
  cg_tensor items[HEADERS_PER_CHUNK];
} header_chunk;

static cg_tensor *chunk_header(cg_plan *p, cg_dtype d, int ndim, const int64_t *shape)
{
  if (!p->headers || p->headers->used == HEADERS_PER_CHUNK) {
    header_chunk *c = cg__malloc(sizeof *c);
    if (!c) return NULL;
    c->next = p->headers;
    c->used = 0;
    p->headers = c;
  }
  return init_header(&p->headers->items[p->headers->used++], d, ndim, shape);
}

static int add_slot(builder *b, uint64_t id, slot s)
{
  cg_plan *p = b->p;
  if (p->n_slots == p->cap_slots) {
    size_t cap = p->cap_slots ? 2 * p->cap_slots : 64;
    slot *slots = cg__realloc(p->slots, cap * sizeof *slots);
    if (!slots) return -1;
    p->slots = slots;
    p->cap_slots = cap;
  }
  if (id && cg__idmap_put(&b->slot_of, id, (void *)(uintptr_t)(p->n_slots + 1)) != CG_OK) return -1;
  p->slots[p->n_slots] = s;
  return (int)p->n_slots++;
}

static int slot_index(builder *b, uint64_t id)
{
  return (int)(uintptr_t)cg__idmap_get(&b->slot_of, id) - 1;
}

/* Whether t is given to the run. Before steps are compiled only feeds have slots; after,
   an output of a compiled node may have one too, so compiling asks before adding its own. */
static bool fed(builder *b, const cg_tensor *t) { return slot_index(b, t->id) >= 0; }

static int constant_slot(builder *b, cg_tensor *t)
{
  int k = slot_index(b, t->id);
  if (k >= 0) return k;
  k = add_slot(b, t->id, (slot){.t = cg_retain(t), .constant = true, .root = -1});
  if (k < 0) cg_release(t);
  return k;
}

static cg_tensor *resolve(builder *b, cg_tensor *t)
{
  cg_tensor *twin;
  while ((twin = cg__idmap_get(&b->alias, t->id))) t = twin;
  return t;
}

/* --- choosing nodes ---------------------------------------------------------------------------- */

/* The nodes the fetches need, back to the feeds (a fed tensor's producer runs only if
   something else needs it). */
static cg_status mark_needed(builder *b, cg_tensor *const *fetches, int n)
{
  cg_graph *g = b->p->g;
  size_t top = 0, *stack = cg__malloc((g->n_nodes + 1) * sizeof *stack);
  if (!stack) return CG_ENOMEM;
  for (int i = 0; i < n; i++) {
    const cg_node *p = fed(b, fetches[i]) ? NULL : fetches[i]->producer;
    if (p && !b->needed[p->graph_index]) {
      b->needed[p->graph_index] = true;
      stack[top++] = p->graph_index;
    }
  }
  while (top) {
    const cg_node *node = g->nodes[stack[--top]];
    for (int i = 0; i < node->n_in; i++) {
      const cg_node *p = fed(b, node->in[i]) ? NULL : node->in[i]->producer;
      if (p && !b->needed[p->graph_index]) {
        b->needed[p->graph_index] = true;
        stack[top++] = p->graph_index;
      }
    }
  }
  free(stack);
  return CG_OK;
}

static cg_status check_fed(builder *b, cg_tensor *const *fetches, int n_fetches)
{
  cg_graph *g = b->p->g;
  char s[160];
  for (size_t k = 0; k < g->n_nodes; k++) {
    if (!b->needed[k]) continue;
    const cg_node *n = g->nodes[k];
    for (int i = 0; i < n->n_in; i++) {
      const cg_tensor *t = n->in[i];
      if (t->graph && !t->producer && slot_index(b, t->id) < 0)
        return cg_set_error(CG_EINVAL, "cg_graph_run: placeholder '%s' (%s %s) is needed by %s but was not fed",
                            t->name, cg_dtype_name(t->dtype), cg__fmt_shape(t->ndim, t->shape, s, sizeof s),
                            n->type);
    }
  }
  for (int i = 0; i < n_fetches; i++)
    if (fetches[i]->graph && !fetches[i]->producer && slot_index(b, fetches[i]->id) < 0)
      return cg_set_error(CG_EINVAL, "cg_graph_run: fetch %d is placeholder '%s', which was not fed", i,
                          fetches[i]->name);
  return CG_OK;
}

/* --- common subexpressions ----------------------------------------------------------------------- */

static bool same_computation(builder *b, const cg_node *x, const cg_node *y)
{
  if (x->def != y->def || x->n_in != y->n_in || strcmp(x->type, y->type) != 0) return false;
  for (int i = 0; i < x->n_in; i++)
    if (resolve(b, x->in[i]) != resolve(b, y->in[i])) return false;
  if (!x->attrs != !y->attrs) return false;
  return !x->attrs || (x->attrs->n == y->attrs->n &&
                       !memcmp(x->attrs->items, y->attrs->items, (size_t)x->attrs->n * sizeof(cg_attr)));
}

/* A node one of whose outputs is fed neither merges nor is merged into: its twins' readers
   want what they compute, not the feed. */
static bool any_output_fed(builder *b, const cg_node *n)
{
  for (int o = 0; o < n->n_out; o++)
    if (fed(b, n->out[o])) return true;
  return false;
}

static cg_status merge_common_subexpressions(builder *b)
{
  cg_graph *g = b->p->g;
  cg_idmap seen = {0}; /* hash of (op, inputs) -> first node with it */
  cg_status st = CG_OK;
  for (size_t k = 0; k < g->n_nodes && st == CG_OK; k++) {
    cg_node *n = g->nodes[k];
    if (!b->needed[k] || n->custom || (n->def->flags & CG_OP_STATEFUL) || any_output_fed(b, n)) continue;
    uint64_t key = (uint64_t)(uintptr_t)n->def * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < n->n_in; i++) key = (key ^ resolve(b, n->in[i])->id) * 0x100000001B3ull;
    key |= 1;
    cg_node *twin = cg__idmap_get(&seen, key);
    if (twin && same_computation(b, twin, n)) {
      for (int o = 0; o < n->n_out && st == CG_OK; o++) st = cg__idmap_put(&b->alias, n->out[o]->id, twin->out[o]);
      b->merged[k] = true;
      b->p->stats.nodes_merged++;
    } else if (!twin) {
      st = cg__idmap_put(&seen, key, n);
    }
  }
  cg__idmap_free(&seen);
  return st;
}

/* --- steps -------------------------------------------------------------------------------------- */

static bool all_constant(const cg_plan *p, const int *in_slots, int n)
{
  for (int i = 0; i < n; i++)
    if (!p->slots[in_slots[i]].constant) return false;
  return true;
}

/* Computes a constant-only node once; its outputs stay on the graph as constants. */
static cg_status fold(builder *b, const cg_node *n, cg_tensor **in)
{
  cg_graph *g = b->p->g;
  cg_tensor *out[CG_MAX_OUTPUTS];
  if (!cg__idmap_get(&g->folded, n->out[0]->id)) {
    int n_out;
    cg_status st = cg__execute_owned(n->def, in, n->n_in, n->attrs, out, &n_out);
    for (int o = 0; o < n_out && st == CG_OK; o++) st = cg__idmap_put(&g->folded, n->out[o]->id, out[o]);
    if (st != CG_OK) return st;
  }
  for (int o = 0; o < n->n_out; o++) {
    cg_tensor *v = cg__idmap_get(&g->folded, n->out[o]->id);
    uint64_t id = fed(b, n->out[o]) ? 0 : n->out[o]->id; /* its consumers read the feed */
    int k = add_slot(b, id, (slot){.t = cg_retain(v), .constant = true, .root = -1});
    if (k < 0) {
      cg_release(v);
      return CG_ENOMEM;
    }
  }
  b->p->stats.nodes_folded++;
  return CG_OK;
}

static cg_status add_step(builder *b, const cg_node *n, cg_tensor **in, const int *in_slots)
{
  cg_plan *p = b->p;
  if (p->n_steps == p->cap_steps) {
    size_t cap = p->cap_steps ? 2 * p->cap_steps : 64;
    step *steps = cg__realloc(p->steps, cap * sizeof *steps);
    if (!steps) return CG_ENOMEM;
    p->steps = steps;
    p->cap_steps = cap;
  }
  step *s = &p->steps[p->n_steps];
  cg_output_meta meta[CG_MAX_OUTPUTS];
  for (int o = 0; o < CG_MAX_OUTPUTS; o++) meta[o].set = false;
  s->node = (cg_node){.def = n->def, .type = n->type, .n_in = n->n_in, .in = in, .meta = meta,
                      .attrs = n->attrs, .n_out = n->n_out};
  s->any_alias = false;
  cg_status st = n->def->infer(&s->node);
  s->node.meta = NULL;
  if (st != CG_OK) return st;
  size_t k = p->n_steps;
  for (int o = 0; o < n->n_out; o++) {
    const cg_output_meta *m = &meta[o];
    cg_tensor *h = m->set ? chunk_header(p, m->dtype, m->ndim, m->shape) : NULL;
    if (!h) return m->set ? CG_ENOMEM : cg_set_error(CG_EINVAL, "%s: output %d was not declared", n->type, o);
    s->alias_of[o] = m->alias_of;
    s->any_alias |= m->alias_of >= 0;
    int root = m->alias_of >= 0 ? p->slots[in_slots[m->alias_of]].root : (int)p->n_slots;
    slot sl = {.t = h, .chunked = true, .root = root, .nbytes = (size_t)h->size * cg_dtype_size(h->dtype),
               .last_use = k + 1, .step = k};
    int idx = add_slot(b, fed(b, n->out[o]) ? 0 : n->out[o]->id, sl); /* see fold */
    if (idx < 0) return CG_ENOMEM; /* (h goes with the chunks) */
    s->node.out[o] = h;
  }
  for (int i = 0; i < n->n_in; i++) { /* a buffer lives until its last reader, views included */
    int root = p->slots[in_slots[i]].root;
    if (root >= 0 && p->slots[root].last_use != SIZE_MAX) p->slots[root].last_use = k + 1;
  }
  p->n_steps++;
  return CG_OK;
}

static cg_status compile_node(builder *b, const cg_node *n)
{
  cg_plan *p = b->p;
  cg_tensor **in = cg__malloc((size_t)(n->n_in ? n->n_in : 1) * sizeof *in);
  int *in_slots = cg__malloc((size_t)(n->n_in ? n->n_in : 1) * sizeof *in_slots);
  cg_status st = in && in_slots ? CG_OK : CG_ENOMEM;
  for (int i = 0; i < n->n_in && st == CG_OK; i++) {
    cg_tensor *t = resolve(b, n->in[i]);
    in_slots[i] = slot_index(b, n->in[i]->id); /* fed (even if its producer was merged) */
    if (in_slots[i] < 0) in_slots[i] = t->graph ? slot_index(b, t->id) : constant_slot(b, t);
    if (in_slots[i] < 0) st = cg_set_error(CG_EINVAL, "%s: input %d has no value in this run", n->type, i);
  }
  for (int i = 0; i < n->n_in && st == CG_OK; i++) in[i] = p->slots[in_slots[i]].t;
  bool can_fold = (p->g->options & CG_GRAPH_FOLD_CONSTANTS) && !n->custom && !(n->def->flags & CG_OP_STATEFUL);
  if (st == CG_OK && can_fold && all_constant(p, in_slots, n->n_in)) {
    st = fold(b, n, in);
    free(in);
  } else if (st == CG_OK) {
    st = add_step(b, n, in, in_slots); /* a step that was added owns in */
    if (st != CG_OK) free(in);
  } else {
    free(in);
  }
  free(in_slots);
  return st;
}

/* --- buffers ---------------------------------------------------------------------------------- */

typedef struct {
  cg_tensor **free_list;
  size_t n_free;
} pool;

static cg_tensor *take_buffer(cg_plan *p, pool *pl, const slot *s)
{
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < pl->n_free; i++) { /* the smallest free buffer that fits */
    size_t have = pl->free_list[i]->buf->nbytes;
    if (have >= s->nbytes && (best == SIZE_MAX || have < pl->free_list[best]->buf->nbytes)) best = i;
  }
  if (best != SIZE_MAX) {
    cg_tensor *t = pl->free_list[best];
    pl->free_list[best] = pl->free_list[--pl->n_free];
    return t;
  }
  int64_t n = (int64_t)(s->nbytes ? s->nbytes : 1);
  cg_tensor *t = cg__tensor_new(CG_BOOL, 1, &n);
  if (!t) return NULL;
  p->buffers[p->n_buffers++] = t;
  return t;
}

/* Walks the steps in order: each output gets the smallest free buffer that fits (or a new
   one), and a buffer goes back to the pool after the step that reads it last. Step k's
   outputs and the buffers freed after it are found from two indexes built first (in slot
   order, as a scan of all slots would meet them), so planning is linear in the steps. */
static cg_status assign_buffers(cg_plan *p)
{
  pool pl = {cg__malloc((p->n_slots + 1) * sizeof(cg_tensor *)), 0};
  p->buffers = cg__malloc((p->n_slots + 1) * sizeof *p->buffers);
  /* by_step: root slots made by each step; by_free: root slots by their last reader */
  size_t *made_at = cg__calloc(p->n_steps + 2, sizeof *made_at), *freed_at = cg__calloc(p->n_steps + 2, sizeof *freed_at);
  size_t *by_step = cg__malloc((p->n_slots + 1) * sizeof *by_step), *by_free = cg__malloc((p->n_slots + 1) * sizeof *by_free);
  cg_status st = pl.free_list && p->buffers && made_at && freed_at && by_step && by_free ? CG_OK : CG_ENOMEM;
  for (size_t i = 0; i < p->n_slots && st == CG_OK; i++) { /* count, then place (counting sort) */
    const slot *sl = &p->slots[i];
    if (sl->root != (int)i || sl->constant) continue;
    made_at[sl->step + 1]++;
    if (sl->last_use != SIZE_MAX) freed_at[sl->last_use]++;
  }
  for (size_t k = 1; k <= p->n_steps + 1 && st == CG_OK; k++) {
    made_at[k] += made_at[k - 1];
    freed_at[k] += freed_at[k - 1];
  }
  for (size_t i = 0; i < p->n_slots && st == CG_OK; i++) {
    const slot *sl = &p->slots[i];
    if (sl->root != (int)i || sl->constant) continue;
    by_step[made_at[sl->step]++] = i;
    if (sl->last_use != SIZE_MAX) by_free[freed_at[sl->last_use - 1]++] = i;
  }
  /* now made_at[k] and freed_at[k] end the runs of step k and of last reader k + 1 */
  size_t live = 0, m = 0, f = 0;
  for (size_t k = 0; k < p->n_steps && st == CG_OK; k++) {
    for (; m < made_at[k] && st == CG_OK; m++) { /* outputs of step k */
      slot *sl = &p->slots[by_step[m]];
      if (sl->buffer) continue;
      if (!sl->handed && !(sl->buffer = take_buffer(p, &pl, sl))) {
        st = cg_last_status();
        break;
      }
      if (!sl->handed) sl->t->data = sl->buffer->data;
      live += sl->nbytes;
      p->stats.total_bytes += sl->nbytes;
      if (live > p->stats.peak_bytes) p->stats.peak_bytes = live;
    }
    for (; f < freed_at[k] && st == CG_OK; f++) { /* buffers whose last reader was step k */
      slot *sl = &p->slots[by_free[f]];
      if (sl->buffer) {
        pl.free_list[pl.n_free++] = sl->buffer;
        live -= sl->nbytes;
      }
    }
  }
  free(pl.free_list);
  free(made_at);
  free(freed_at);
  free(by_step);
  free(by_free);
  return st;
}

/* The steps' input lists, moved into one array in step order. */
static cg_status gather_inputs(cg_plan *p)
{
  size_t total = 0;
  for (size_t k = 0; k < p->n_steps; k++) total += (size_t)p->steps[k].node.n_in;
  cg_tensor **all = cg__malloc((total ? total : 1) * sizeof *all);
  if (!all) return CG_ENOMEM;
  for (size_t k = 0, at = 0; k < p->n_steps; k++) {
    cg_node *n = &p->steps[k].node;
    memcpy(all + at, n->in, (size_t)n->n_in * sizeof *all);
    free(n->in);
    n->in = all + at;
    at += (size_t)n->n_in;
  }
  p->inputs = all;
  return CG_OK;
}

/* --- the plan ------------------------------------------------------------------------------------ */

void cg__plan_free(cg_plan *p)
{
  if (!p) return;
  if (p->inputs) free(p->inputs); /* the steps' input lists, all in one */
  else
    for (size_t k = 0; k < p->n_steps; k++) free(p->steps[k].node.in);
  for (size_t i = 0; i < p->n_slots; i++) {
    if (p->slots[i].constant) cg_release(p->slots[i].t);
    else if (!p->slots[i].chunked) free(p->slots[i].t);
  }
  while (p->headers) {
    header_chunk *next = p->headers->next;
    free(p->headers);
    p->headers = next;
  }
  for (size_t i = 0; i < p->n_buffers; i++) cg_release(p->buffers[i]);
  for (int i = 0; i < p->n_feeds && p->feed_keys && p->feed_shapes; i++) {
    cg_release(p->feed_keys[i]);
    free(p->feed_shapes[i]);
  }
  free(p->feed_keys);
  free(p->feed_shapes);
  free(p->fetch_ids);
  free(p->feed_slot);
  free(p->fetch_slot);
  free(p->slots);
  free(p->steps);
  free(p->buffers);
  free(p);
}

static cg_status bind_feeds(builder *b, const cg_feed *feeds, int n)
{
  cg_plan *p = b->p;
  for (int i = 0; i < n; i++) {
    const cg_tensor *v = feeds[i].value;
    p->feed_keys[i] = cg_retain(feeds[i].placeholder);
    p->feed_shapes[i] = new_header(v->dtype, v->ndim, v->shape);
    cg_tensor *h = new_header(v->dtype, v->ndim, v->shape);
    if (!p->feed_shapes[i] || !h) {
      free(h);
      return CG_ENOMEM;
    }
    if (fed(b, feeds[i].placeholder)) { /* (run.c checked everything else of each feed) */
      char name[160];
      free(h);
      return cg_set_error(CG_EINVAL, "cg_graph_run: %s is fed twice",
                          cg__feed_name(feeds[i].placeholder, name, sizeof name));
    }
    slot fed_slot = {.t = h, .root = -1, .nbytes = (size_t)h->size * cg_dtype_size(h->dtype)};
    if ((p->feed_slot[i] = add_slot(b, feeds[i].placeholder->id, fed_slot)) < 0) {
      free(h);
      return CG_ENOMEM;
    }
  }
  return CG_OK;
}

static cg_status bind_fetches(builder *b, cg_tensor *const *fetches, int n)
{
  cg_plan *p = b->p;
  for (int i = 0; i < n; i++) {
    cg_tensor *t = resolve(b, fetches[i]);
    p->fetch_ids[i] = fetches[i]->id;
    p->fetch_slot[i] = slot_index(b, fetches[i]->id); /* fed */
    if (p->fetch_slot[i] < 0) p->fetch_slot[i] = t->graph ? slot_index(b, t->id) : constant_slot(b, t);
    if (p->fetch_slot[i] < 0) return cg_set_error(CG_EINVAL, "cg_graph_run: fetch %d has no value", i);
    slot *sl = &p->slots[p->fetch_slot[i]];
    if (sl->root >= 0) p->slots[sl->root].last_use = SIZE_MAX;
    sl->handed = sl->chunked && sl->root == p->fetch_slot[i]; /* a step's own output */
  }
  return CG_OK;
}

cg_plan *cg__plan_build(cg_graph *g, const cg_feed *feeds, int n_feeds, cg_tensor *const *fetches,
                        int n_fetches)
{
  cg_plan *p = cg__calloc(1, sizeof *p);
  if (!p) return NULL;
  p->g = g;
  p->n_feeds = n_feeds;
  p->n_fetches = n_fetches;
  p->feed_keys = cg__calloc((size_t)n_feeds + 1, sizeof *p->feed_keys);
  p->feed_shapes = cg__calloc((size_t)n_feeds + 1, sizeof *p->feed_shapes);
  p->feed_slot = cg__calloc((size_t)n_feeds + 1, sizeof *p->feed_slot);
  p->fetch_ids = cg__calloc((size_t)n_fetches, sizeof *p->fetch_ids);
  p->fetch_slot = cg__calloc((size_t)n_fetches, sizeof *p->fetch_slot);
  builder b = {.p = p, .needed = cg__calloc(g->n_nodes + 1, 1), .merged = cg__calloc(g->n_nodes + 1, 1)};
  cg_status st = p->feed_keys && p->feed_shapes && p->feed_slot && p->fetch_ids && p->fetch_slot &&
                         b.needed && b.merged ? CG_OK : CG_ENOMEM;
  if (st == CG_OK) st = bind_feeds(&b, feeds, n_feeds);
  if (st == CG_OK) st = mark_needed(&b, fetches, n_fetches);
  if (st == CG_OK) st = check_fed(&b, fetches, n_fetches);
  if (st == CG_OK && (g->options & CG_GRAPH_CSE)) st = merge_common_subexpressions(&b);
  for (size_t k = 0; k < g->n_nodes && st == CG_OK; k++)
    if (b.needed[k] && !b.merged[k]) st = compile_node(&b, g->nodes[k]);
  if (st == CG_OK) st = bind_fetches(&b, fetches, n_fetches);
  if (st == CG_OK) st = gather_inputs(p);
  /* fetched buffers must not be reused: bind_fetches marked them before buffers are given */
  if (st == CG_OK) st = assign_buffers(p);
  p->stats.nodes = g->n_nodes;
  p->stats.nodes_run = p->n_steps;
  free(b.needed);
  free(b.merged);
  cg__idmap_free(&b.alias);
  cg__idmap_free(&b.slot_of);
  if (st != CG_OK) {
    if (cg_last_status() == CG_OK) cg_set_error(st, "cg_graph_run: could not plan the run");
    cg__plan_free(p);
    return NULL;
  }
  return p;
}

bool cg__plan_matches(const cg_plan *p, const cg_feed *feeds, int n_feeds, cg_tensor *const *fetches,
                      int n_fetches)
{
  if (p->n_feeds != n_feeds || p->n_fetches != n_fetches) return false;
  for (int i = 0; i < n_fetches; i++)
    if (p->fetch_ids[i] != fetches[i]->id) return false;
  for (int i = 0; i < n_feeds; i++) {
    const cg_tensor *v = feeds[i].value, *want = p->feed_shapes[i];
    if (p->feed_keys[i] != feeds[i].placeholder || v->dtype != want->dtype ||
        !cg__shape_equal(v->ndim, v->shape, want->ndim, want->shape))
      return false;
  }
  return true;
}

/* The new tensors handed-out fetches are written into this run. */
static cg_status give_fresh_outputs(cg_plan *p)
{
  for (int i = 0; i < p->n_fetches; i++) {
    slot *sl = &p->slots[p->fetch_slot[i]];
    if (!sl->handed || sl->fresh) continue;
    if (!(sl->fresh = cg__tensor_new(sl->t->dtype, sl->t->ndim, sl->t->shape))) return cg_last_status();
    sl->t->data = sl->fresh->data;
  }
  return CG_OK;
}

cg_status cg__plan_execute(cg_plan *p, const cg_feed *feeds, int n_feeds, cg_tensor **out)
{
  for (int i = 0; i < n_feeds; i++) p->slots[p->feed_slot[i]].t->data = feeds[i].value->data;
  cg_status st = give_fresh_outputs(p);
  bool check = cg_check_numerics_enabled(); /* read once per run */
  for (size_t k = 0; k < p->n_steps && st == CG_OK; k++) { /* one kernel call each */
    step *s = &p->steps[k];
    if (s->any_alias)
      for (int o = 0; o < s->node.n_out; o++)
        if (s->alias_of[o] >= 0) s->node.out[o]->data = s->node.in[s->alias_of[o]]->data;
    if ((st = s->node.def->run(&s->node)) != CG_OK) {
      if (cg_last_status() == CG_OK) cg_set_error(st, "%s: kernel failed", s->node.type);
      break;
    }
    if (check) {
      char where[96];
      snprintf(where, sizeof where, "(graph step %zu of %zu)", k + 1, p->n_steps);
      if ((st = cg__check_numerics(&s->node, where)) != CG_OK) break;
    }
  }
  for (int i = 0; i < p->n_fetches; i++) out[i] = NULL;
  for (int i = 0; i < p->n_fetches && st == CG_OK; i++) {
    slot *sl = &p->slots[p->fetch_slot[i]];
    if (sl->fresh) { /* (a second fetch of it is a copy) */
      out[i] = sl->fresh;
      sl->fresh = NULL;
      continue;
    }
    /* a copy, constants included: a caller may write into what a run hands out */
    out[i] = cg__tensor_new(sl->t->dtype, sl->t->ndim, sl->t->shape);
    if (!out[i]) st = cg_last_status();
    else if (out[i]->size)
      memcpy(out[i]->data, sl->t->data, (size_t)out[i]->size * cg_dtype_size(out[i]->dtype));
  }
  if (st != CG_OK)
    for (int i = 0; i < p->n_fetches; i++) {
      slot *sl = &p->slots[p->fetch_slot[i]];
      cg_release(sl->fresh);
      sl->fresh = NULL;
      cg_release(out[i]);
      out[i] = NULL;
    }
  return st == CG_OK ? CG_OK : cg_last_status();
}

const cg_graph_stats *cg__plan_stats(const cg_plan *p) { return &p->stats; }
cg_plan *cg__plan_next(cg_plan *p) { return p->next; }
void cg__plan_set_next(cg_plan *p, cg_plan *next) { p->next = next; }

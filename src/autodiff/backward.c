/* backward.c - the one reverse walk (DESIGN.md section 1) over recorded nodes: find the
 * nodes between sources and target, call each gradient function in its own scope, check and
 * reduce what it returns, accumulate (with AddN, or as the parts arrive when nothing records
 * the walk: the same bits). Tapes (and graphs) hand it their nodes. */
#include "tape.h"
#include "custom.h"
#include "backward.h"
#include "rules.h"
#include "guard.h"
#include "../graph/graph.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the walk's table: what it knows of each tensor it meets, keyed by id -------------------
 * One entry per source, stop and tensor reached from a source, made before the walk starts
 * (so entries never move while it runs), each with the gradient accumulated for it so far.
 * Entries lie in insertion order; the hash index holds their positions. */

enum {
  REACHED = 1u,  /* a source, or computed from one: its gradient is wanted              */
  SOURCE = 2u,   /* asked for: its total is kept to the end                             */
  STOP = 4u,     /* a constant to the walk: no gradient flows through it                */
  HOOKED = 8u,   /* its total has been through its hooks                                */
  TOUCHED = 16u, /* a gradient part arrived (even if it was dropped since)              */
  OWN = 32u,     /* total is a sum the walk made and showed no one: it may add in place */
};

typedef struct {
  uint64_t id;
  cg_tensor *total;  /* the gradient so far (a reference), or NULL                      */
  cg_tensor **parts; /* when several parts wait for one AddN (recorded walks)           */
  int n_parts, cap_parts;
  unsigned flags;
} entry;

typedef struct {
  entry *entries;
  size_t n, cap;
  uint32_t *index; /* 0: empty, else 1 + position in entries */
  size_t n_slots;  /* a power of two, at least twice cap */
} table;

static inline size_t slot_of(uint64_t id, size_t n_slots)
{
  return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (n_slots - 1);
}

static inline entry *table_find(const table *t, uint64_t id)
{
  for (size_t i = slot_of(id, t->n_slots);; i = (i + 1) & (t->n_slots - 1)) {
    uint32_t k = t->index[i];
    if (!k) return NULL;
    if (t->entries[k - 1].id == id) return &t->entries[k - 1];
  }
}

/* The entry of id, made if missing (only while the table is being built). */
static entry *table_get(table *t, uint64_t id)
{
  size_t i = slot_of(id, t->n_slots);
  for (;; i = (i + 1) & (t->n_slots - 1)) {
    uint32_t k = t->index[i];
    if (!k) break;
    if (t->entries[k - 1].id == id) return &t->entries[k - 1];
  }
  if (t->n == t->cap || 2 * (t->n + 1) > t->n_slots) { /* grow: a bigger index, rebuilt */
    size_t cap = t->cap ? 2 * t->cap : 64, n_slots = t->n_slots;
    while (2 * cap > n_slots) n_slots *= 2;
    entry *entries = cg__alloc(cap * sizeof *entries);
    if (!entries) return NULL;
    if (t->n) memcpy(entries, t->entries, t->n * sizeof *entries);
    cg__free(t->entries, t->cap * sizeof *entries);
    t->entries = entries;
    t->cap = cap;
    if (n_slots != t->n_slots) {
      uint32_t *index = cg__alloc(n_slots * sizeof *index);
      if (!index) return NULL;
      memset(index, 0, n_slots * sizeof *index);
      cg__free(t->index, t->n_slots * sizeof *index);
      t->index = index;
      t->n_slots = n_slots;
      for (size_t k = 0; k < t->n; k++) {
        size_t j = slot_of(t->entries[k].id, n_slots);
        while (index[j]) j = (j + 1) & (n_slots - 1);
        index[j] = (uint32_t)(k + 1);
      }
    }
    i = slot_of(id, t->n_slots); /* its free slot in the new index */
    while (t->index[i]) i = (i + 1) & (t->n_slots - 1);
  }
  entry *e = &t->entries[t->n];
  *e = (entry){.id = id};
  t->index[i] = (uint32_t)++t->n;
  return e;
}

/* The entry of tensor x, or NULL: found from x's walk_slot hint when it names an entry of
   this table with x's id (ids are unique, so that entry is x's), else by the hash. The hint
   saves the hash's two scattered loads on nearly every lookup of a walk. */
static inline entry *table_find_tensor(const table *t, const cg_tensor *x)
{
  uint32_t k = __atomic_load_n(&x->walk_slot, __ATOMIC_RELAXED);
  if (k && k <= t->n && t->entries[k - 1].id == x->id) return &t->entries[k - 1];
  return table_find(t, x->id);
}

/* table_get for tensor x, leaving the hint in x (a relaxed store: walks on other threads may
   overwrite it, which only sends their lookups of x to the hash). */
static entry *table_get_tensor(table *t, const cg_tensor *x)
{
  entry *e = table_get(t, x->id);
  if (e) __atomic_store_n((uint32_t *)&x->walk_slot, (uint32_t)(e - t->entries) + 1, __ATOMIC_RELAXED);
  return e;
}

/* A table with room for about n entries before it grows. */
static cg_status table_init(table *t, size_t n)
{
  size_t n_slots = 64;
  while (n_slots < 2 * (n + 1)) n_slots *= 2;
  /* from the allocator's caches: a walk after another reuses them */
  *t = (table){.entries = cg__alloc((n + 1) * sizeof *t->entries), .cap = n + 1,
               .index = cg__alloc(n_slots * sizeof *t->index), .n_slots = n_slots};
  if (t->index) memset(t->index, 0, n_slots * sizeof *t->index);
  return t->entries && t->index ? CG_OK : CG_ENOMEM;
}

static void drop_total(entry *e)
{
  cg_release(e->total);
  e->total = NULL;
  for (int i = 0; i < e->n_parts; i++) cg_release(e->parts[i]);
  e->n_parts = 0;
  e->flags &= ~OWN;
}

static void table_free(table *t)
{
  for (size_t k = 0; k < t->n; k++) {
    drop_total(&t->entries[k]);
    free(t->entries[k].parts);
  }
  cg__free(t->entries, t->cap * sizeof *t->entries);
  cg__free(t->index, t->n_slots * sizeof *t->index);
}

/* --- accumulating ------------------------------------------------------------------------------
 * Unrecorded (no tape on this thread, no graph being built, no numeric checks), each part is
 * added into the total when it arrives: into the walk's own sum in place, once there is one
 * (a first part may be anyone's, so the second makes a new sum). Else the parts wait and
 * AddN sums them (when the total is first read, or once MAX_WAITING_PARTS wait), so that the
 * sum is an op tapes and graphs see. Either way the parts are added in arrival order with
 * AddN's arithmetic: the same bits. */

/* Parts waiting for one AddN are summed when this many have come: a long chain's parts are
   not all kept until the end (a traced loop's plan would hold every one of them at once).
   AddN adds its inputs in order, so a sum of sums in arrival order has the same bits. */
#define MAX_WAITING_PARTS 8

/* An owned reference to t, which the caller borrows, taken without an atomic operation where
   it can be: the one of donor's total, if t is that total (moved: the caller is done with
   donor); the innermost scope's, if it holds one (taken over); else a new one. */
static cg_tensor *own_reference(cg_tensor *t, entry *donor)
{
  if (donor && donor->total == t) {
    donor->total = NULL;
    return t;
  }
  return cg__scope_take(t) ? t : cg_retain(t);
}

/* Adds g (borrowed) to e's gradient; donor: see own_reference (NULL: none). */
static cg_status accumulate(entry *e, cg_tensor *g, bool in_place, entry *donor)
{
  e->flags |= TOUCHED;
  if (!e->total && !e->n_parts) {
    e->total = own_reference(g, donor);
    return CG_OK;
  }
  if (in_place && !e->n_parts) {
    if ((e->flags & OWN) && g != e->total && cg__tensor_exclusive(e->total)) {
      cg__add_n_into(e->total, g);
      return CG_OK;
    }
    cg_tensor *sum = cg__add_n_pair(e->total, g);
    if (!sum) return cg_last_status();
    cg_release(e->total);
    e->total = sum;
    e->flags |= OWN;
    return CG_OK;
  }
  if (e->n_parts == e->cap_parts) {
    int cap = e->cap_parts ? 2 * e->cap_parts : 4;
    cg_tensor **parts = cg__realloc(e->parts, (size_t)cap * sizeof *parts);
    if (!parts) return cg_set_error(CG_ENOMEM, "gradient: out of memory accumulating gradients");
    e->parts = parts;
    e->cap_parts = cap;
  }
  if (!e->n_parts) e->parts[e->n_parts++] = e->total; /* the first part moves here */
  e->parts[e->n_parts++] = own_reference(g, donor);
  e->total = NULL;
  e->flags &= ~OWN;
  return CG_OK;
}

/* Sums e's waiting parts into one that waits in their place, once MAX_WAITING_PARTS wait.
   Called after a node's gradients are all accumulated: a part may be one of them, which
   the node's later inputs still read until then (Add hands dy to both). */
static cg_status sum_waiting_parts(entry *e)
{
  if (!e || e->n_parts < MAX_WAITING_PARTS) return CG_OK;
  cg_tensor *sum = cg_retain(cg_add_n(e->parts, e->n_parts));
  if (!sum) return cg_last_status();
  for (int i = 0; i < e->n_parts; i++) cg_release(e->parts[i]);
  e->parts[0] = sum;
  e->n_parts = 1;
  return CG_OK;
}

/* The total gradient of e (borrowed; NULL if none): waiting parts are summed with AddN (one
   alone is the total). */
static cg_tensor *entry_total(entry *e)
{
  if (e->n_parts == 1) {
    e->total = e->parts[0];
    e->n_parts = 0;
  } else if (e->n_parts) {
    cg_tensor *sum = cg_retain(cg_add_n(e->parts, e->n_parts));
    if (!sum) return NULL;
    for (int i = 0; i < e->n_parts; i++) cg_release(e->parts[i]);
    e->n_parts = 0;
    cg_release(e->total); /* (NULL: parts and a total are never both held) */
    e->total = sum;
  }
  return e->total;
}

/* --- reducing a broadcast gradient ----------------------------------------------------------- */

/* Unknown dims (-1, graph mode) are given the benefit of the doubt; the run checks them. */
static bool reducible_to(const cg_tensor *g, int ndim, const int64_t *shape)
{
  if (g->ndim < ndim) return false;
  for (int d = 0; d < ndim; d++) {
    int64_t gd = g->shape[g->ndim - ndim + d];
    if (gd != shape[d] && shape[d] != 1 && gd >= 0 && shape[d] >= 0) return false;
  }
  return true;
}

cg_tensor *cg__sum_to_shape(cg_tensor *g, cg_tensor *like)
{
  if (!g) return NULL;
  int axes[CG_MAX_DIMS], n = 0, lead = g->ndim - like->ndim;
  for (int d = 0; d < g->ndim; d++)
    if (d < lead || (like->shape[d - lead] == 1 && g->shape[d] != 1)) axes[n++] = d;
  cg_tensor *s = n ? cg_sum(g, axes, n, 0) : g;
  if (s && cg__shape_equal(s->ndim, s->shape, like->ndim, like->shape)) return s;
  return cg__reshape_as(s, like); /* (the shape may only be known when the graph runs) */
}

/* --- the walk --------------------------------------------------------------------------------- */

/* Gradient rules that ran, counted here and added to their entries' counters once at the end
   of the walk (as cg__count_gradient counts them: calls for an op of the rule's own type,
   override_calls otherwise): one atomic add per rule and walk instead of one per node. */
#define COUNTED_RULES 8
typedef struct {
  cg_grad_entry *e;
  const char *type;
  uint64_t n;
} counted;

typedef struct {
  cg_node *const *nodes;
  size_t n_nodes;
  bool *on_path;    /* node depends on a source */
  table tab;
  const cg_hook_list *hooks;
  bool in_place;    /* unrecorded: parts are added as they arrive (see accumulate) */
  counted rules[COUNTED_RULES];
  int n_rules;
} walk;

static void count_rule(walk *w, cg_grad_entry *e, const char *type)
{
  for (int i = 0; i < w->n_rules; i++)
    if (w->rules[i].e == e && w->rules[i].type == type) {
      w->rules[i].n++;
      return;
    }
  if (w->n_rules < COUNTED_RULES) w->rules[w->n_rules++] = (counted){e, type, 1};
  else cg__count_gradient(e, type);
}

static void flush_rule_counts(walk *w)
{
  for (int i = 0; i < w->n_rules; i++) {
    cg_grad_entry *e = w->rules[i].e;
    uint64_t *counter = strcmp(e->name, w->rules[i].type) == 0 ? &e->calls : &e->override_calls;
    __atomic_add_fetch(counter, w->rules[i].n, __ATOMIC_RELAXED);
  }
  w->n_rules = 0;
}

static inline bool is_reached(const entry *e) { return e && (e->flags & REACHED); }

/* The total gradient of t (entry e) after its hooks (run once per walk), kept as the new
   total. Once read, a total is never added to in place again. */
static cg_tensor *hooked_total(walk *w, const cg_tensor *t, entry *e)
{
  cg_tensor *g = entry_total(e);
  e->flags &= ~OWN;
  if (!g || (!t->has_hook && !(w->hooks && w->hooks->n)) || (e->flags & HOOKED)) return g;
  e->flags |= HOOKED;
  cg_tensor *h = cg__run_hooks(t, g, w->hooks);
  if (h && h != g) {
    cg_release(e->total);
    e->total = cg_retain(h);
  }
  return h;
}

/* A source counts if it is a float tensor the recorder follows (NULL: all do). */
static bool differentiable_source(const cg_tensor *t, const cg_idset *followed)
{
  return cg_dtype_is_float(t->dtype) && (!followed || cg__idset_has(followed, t->id));
}

static cg_status find_path(walk *w, cg_tensor *const *sources, int n_src, const cg_idset *followed)
{
  for (int i = 0; i < n_src; i++) {
    if (!differentiable_source(sources[i], followed)) continue;
    entry *e = table_get_tensor(&w->tab, sources[i]);
    if (!e) return cg_set_error(CG_ENOMEM, "gradient: out of memory");
    e->flags |= REACHED | SOURCE;
  }
  for (size_t k = 0; k < w->n_nodes; k++) {
    const cg_node *n = w->nodes[k];
    bool hit = false;
    for (int i = 0; i < n->n_in && !hit; i++) hit = is_reached(table_find_tensor(&w->tab, n->in[i]));
    w->on_path[k] = hit;
    for (int o = 0; hit && o < n->n_out; o++) {
      if (!cg_dtype_is_float(n->out[o]->dtype) || (n->non_differentiable & (1u << o))) continue;
      entry *e = table_get_tensor(&w->tab, n->out[o]);
      if (!e) return cg_set_error(CG_ENOMEM, "gradient: out of memory");
      e->flags |= REACHED;
    }
  }
  return CG_OK;
}

static cg_status no_gradient_error(const cg_node *n)
{
  if (n->grad_name && strcmp(n->grad_name, n->type) != 0)
    return cg_set_error(CG_ENOGRAD, "%s: no gradient is registered under the name '%s', which an "
                                    "override mapped this op to when it was recorded",
                        n->type, n->grad_name);
  return cg_set_error(CG_ENOGRAD, "%s: no gradient is registered for this op type, and it lies "
                                  "between the target and a source (register one with "
                                  "cg_register_gradient(\"%s\", ...), or cut the path with cg_stop_gradient)",
                      n->type, n->type);
}

/* Checks gradient j of node n against its input and makes it the input's shape (borrowed:
   g itself, or a tensor of the current scope). */
static cg_status conform(const cg_node *n, int j, cg_tensor *g, cg_tensor **out)
{
  const cg_tensor *x = n->in[j];
  char gs[160], xs[160];
  if (g->graph && g->graph != cg__tls()->graph) /* (a concrete one is a constant in a graph) */
    return cg_set_error(CG_EUSER, "%s: the gradient for input %d is a symbolic tensor of %s", n->type, j,
                        cg__tls()->graph ? "another graph" : "a graph, in an eager backward pass");
  if (g->dtype != x->dtype)
    return cg_set_error(CG_EUSER, "%s: the gradient for input %d has dtype %s, expected %s (the input's)",
                        n->type, j, cg_dtype_name(g->dtype), cg_dtype_name(x->dtype));
  if (cg__shape_equal(g->ndim, g->shape, x->ndim, x->shape) && g->size >= 0 && x->size >= 0) {
    *out = g; /* the common case: known dims (sizes >= 0), the input's shape */
    return CG_OK;
  }
  bool unknown = false; /* graph dims known only at run time: SumLike decides then */
  for (int d = 0; d < g->ndim; d++) unknown |= g->shape[d] < 0;
  for (int d = 0; d < x->ndim; d++) unknown |= x->shape[d] < 0;
  if (unknown) {
    g = cg__sum_like(g, (cg_tensor *)x);
  } else if (!cg__shape_equal(g->ndim, g->shape, x->ndim, x->shape)) {
    if (!reducible_to(g, x->ndim, x->shape))
      return cg_set_error(CG_EUSER, "%s: the gradient for input %d has shape %s, expected %s (the input's)",
                          n->type, j, cg_shape_str(g, gs, sizeof gs), cg_shape_str(x, xs, sizeof xs));
    g = cg__sum_to_shape(g, (cg_tensor *)x);
  }
  if (!g) return cg_last_status();
  *out = g;
  return CG_OK;
}

/* The rule that differentiates n: the custom backward, or the gradient resolved when it was
 * recorded. Counted for cg_rule_stats; a once-differentiable rule runs unrecorded and its
 * results pass through a barrier whose own gradient is an error naming it. */
static cg_status call_gradient(walk *w, const cg_node *n, cg_tensor *const *dy, cg_tensor **dx,
                               const bool *needs)
{
  const char *rule = n->custom ? n->type : n->grad_name;
  bool once = false;
  if (n->custom) {
    cg__count_rule(n->type, CG_RULE_CUSTOM);
    once = cg__custom_def(n->custom)->flags & CG_CUSTOM_ONCE_DIFFERENTIABLE;
  } else {
    if (!n->grad || !n->grad->fn) return no_gradient_error(n);
    cg_status st = cg__check_rule_once(n, n->grad);
    if (st != CG_OK) return st;
    count_rule(w, n->grad, n->type);
    once = n->grad->flags & CG_GRADIENT_ONCE_DIFFERENTIABLE;
  }
  const cg_node *saved_node;
  const bool *saved_needs;
  cg__enter_gradient(n, needs, &saved_node, &saved_needs);
  if (once) cg_pause_recording();
  cg_status st;
  if (n->custom) {
    st = cg__custom_backward(n, dy, dx); /* guarded inside */
  } else {
    cg_grad_fn fn;
    void *user;
    cg__gradient_snapshot(n->grad, &fn, &user); /* consistent even while it is replaced */
    cg_callback_guard guard = cg__guard_begin();
    st = fn(n, dy, dx, user);
    /* cg__guard_end has nothing to undo when the state is as it was (the common case) */
    if (st != CG_OK || !cg__guard_unchanged(&guard)) {
      char who[160]; /* formatted only when something is reported */
      snprintf(who, sizeof who, "%s: gradient function '%s'", n->type, rule);
      st = cg__guard_end(&guard, who, st);
    }
  }
  if (once) cg_resume_recording();
  cg__leave_gradient(saved_node, saved_needs);
  if (st != CG_OK && cg_last_status() == CG_OK)
    cg_set_error(st, "%s: gradient function '%s' failed", n->type, rule);
  if (st != CG_OK) return cg_last_status();
  if (once && (cg__any_tape_recording() || cg__tls()->graph))
    for (int j = 0; j < n->n_in; j++)
      if (dx[j] && !(dx[j] = cg__once_barrier(dx[j], n, rule))) return cg_last_status();
  return CG_OK;
}

static inline entry *carrying(walk *w, const cg_tensor *t)
{
  entry *e = table_find_tensor(&w->tab, t);
  return e && (e->flags & TOUCHED) && !(e->flags & STOP) ? e : NULL;
}

/* The output entry whose total g is, if g's reference may move from it to input j's entry:
   the output's total is dropped after this node (not a source, not also an input), and input
   j's entry gets no later part in this node (whose sum could release g while a later dx[k]
   still reads it). Small nodes only: it is a scan. */
static entry *donor(const cg_node *n, entry *const *out_entry, entry *const *in_entry, int j,
                    const cg_tensor *g)
{
  if (n->n_in > 8) return NULL;
  for (int k = j + 1; k < n->n_in; k++)
    if (in_entry[k] == in_entry[j]) return NULL;
  for (int o = 0; o < n->n_out; o++) {
    entry *e = out_entry[o];
    if (!e || e->total != g || (e->flags & SOURCE)) continue;
    for (int k = 0; k < n->n_in; k++)
      if (in_entry[k] == e) return NULL;
    return e;
  }
  return NULL;
}

/* Differentiates one node: gathers dy, calls its gradient, accumulates into its inputs. */
static cg_status visit(walk *w, const cg_node *n)
{
  cg_tensor *dy[CG_MAX_OUTPUTS];
  entry *out_entry[CG_MAX_OUTPUTS];
  bool any = false;
  if (n->def && (n->def->flags & CG_OP_NOT_DIFFERENTIABLE) && !n->custom) return CG_OK;
  for (int o = 0; o < n->n_out; o++) any |= (out_entry[o] = carrying(w, n->out[o])) != NULL;
  if (!any) return CG_OK;
  cg_tensor *small[8] = {NULL}, **dx = n->n_in <= 8 ? small : cg__calloc((size_t)n->n_in, sizeof *dx);
  bool needs_small[8], *needs = n->n_in <= 8 ? needs_small : cg__malloc((size_t)n->n_in * sizeof *needs);
  entry *in_small[8], **in_entry = n->n_in <= 8 ? in_small : cg__malloc((size_t)n->n_in * sizeof *in_entry);
  if (!dx || !needs || !in_entry) {
    if (dx != small) free(dx);
    if (needs != needs_small) free(needs);
    if (in_entry != in_small) free(in_entry);
    return CG_ENOMEM;
  }
  for (int j = 0; j < n->n_in; j++) {
    bool fl = cg_dtype_is_float(n->in[j]->dtype);
    in_entry[j] = fl ? table_find_tensor(&w->tab, n->in[j]) : NULL;
    needs[j] = is_reached(in_entry[j]);
  }
  cg_scope scope = cg__scope_open(); /* own_reference takes from it: it must be there */
  cg_status st = scope > 0 ? CG_OK : CG_ENOMEM; /* (cg_scope_begin said why) */
  for (int o = 0; o < n->n_out && st == CG_OK; o++) {
    dy[o] = out_entry[o] ? hooked_total(w, n->out[o], out_entry[o]) : NULL;
    if (!dy[o] && out_entry[o]) st = cg_last_status();
    if (st == CG_OK && !dy[o]) dy[o] = cg_zeros_like(n->out[o]);
    if (!dy[o]) st = cg_last_status();
  }
  if (st == CG_OK) {
    cg_thread_state *ts = cg__tls();
    const char *outer = ts->building_gradient; /* graph nodes remember which gradient made them */
    ts->building_gradient = n->custom ? n->type : n->grad_name;
    st = call_gradient(w, n, dy, dx, needs);
    ts->building_gradient = outer;
  }
  for (int j = 0; j < n->n_in && st == CG_OK; j++) {
    cg_tensor *g = NULL;
    if (!dx[j] || !needs[j]) continue;
    if ((st = conform(n, j, dx[j], &g)) == CG_OK)
      st = accumulate(in_entry[j], g, w->in_place, donor(n, out_entry, in_entry, j, g));
  }
  for (int j = 0; j < n->n_in && st == CG_OK && !w->in_place; j++) st = sum_waiting_parts(in_entry[j]);
  if (scope > 0) cg__scope_close(scope);
  if (dx != small) free(dx);
  if (needs != needs_small) free(needs);
  if (in_entry != in_small) free(in_entry);
  for (int o = 0; o < n->n_out; o++) { /* consumed, unless someone asked for it */
    entry *e = out_entry[o] ? out_entry[o] : table_find_tensor(&w->tab, n->out[o]);
    if (e && !(e->flags & SOURCE)) drop_total(e);
  }
  return st;
}

/* The walk reads each node's inputs (id and dtype, then shape: a header's first two cache
   lines) long after the forward wrote them, when they have left the core's caches: it asks
   for them a few nodes ahead. */
#define PREFETCH_AHEAD 4
static void prefetch_inputs(const cg_node *n)
{
  for (int i = 0; i < n->n_in && i < 4; i++) {
    __builtin_prefetch(n->in[i]);
    __builtin_prefetch((const char *)n->in[i] + 64);
  }
}

/* The default seed, ones of the target's shape. Where that shape is known it does not read
   the target, so a graph's plan need not compute it (an HVP's <g, v>): new ones eagerly, a
   1 broadcast in a graph (a node: each run hands out its own gradients, and the file keeps a
   scalar). OnesLike when a dim is known only at run time. */
static cg_tensor *ones_seed(cg_tensor *target)
{
  if (!cg__shape_known(target)) return cg_ones_like(target);
  if (!cg__tls()->graph) return cg_ones(target->dtype, target->ndim, target->shape);
  return cg_broadcast_to(cg_scalar(target->dtype, 1), target->ndim, target->shape);
}

static cg_status check_args(const char *fn, cg_tensor *target, cg_tensor *const *sources, int n,
                            cg_tensor **out, const cg_grad_opts *opts)
{
  if (!target) return cg__null_input(fn, 0);
  if (n < 0 || (n > 0 && (!sources || !out)))
    return cg_set_error(CG_EINVAL, "%s: sources and out must hold n = %d entries", fn, n);
  for (int i = 0; i < n; i++)
    if (!sources[i]) return cg_set_error(CG_EINVAL, "%s: source %d is NULL", fn, i);
  const cg_tensor *seed = opts ? opts->output_gradient : NULL;
  char a[160], b[160];
  if (seed && (seed->dtype != target->dtype ||
               !cg__shape_equal(seed->ndim, seed->shape, target->ndim, target->shape)))
    return cg_set_error(CG_ESHAPE, "%s: output_gradient is %s %s but the target is %s %s", fn,
                        cg_dtype_name(seed->dtype), cg_shape_str(seed, a, sizeof a),
                        cg_dtype_name(target->dtype), cg_shape_str(target, b, sizeof b));
  return CG_OK;
}

cg_status cg__backward(const cg_backward_args *a, cg_tensor **out)
{
  cg_thread_state *ts = cg__tls();
  walk w = {.nodes = a->nodes, .n_nodes = a->n_nodes, .hooks = a->hooks,
            .in_place = ts->n_tapes == 0 && !ts->graph && !cg_check_numerics_enabled()};
  for (int i = 0; i < a->n_src; i++) out[i] = NULL;
  size_t estimate = (size_t)a->n_src + (size_t)a->n_stops;
  for (size_t k = 0; k < a->n_nodes; k++) estimate += (size_t)a->nodes[k]->n_out;
  size_t on_path_bytes = (a->n_nodes ? a->n_nodes : 1) * sizeof *w.on_path;
  if ((w.on_path = cg__alloc(on_path_bytes))) memset(w.on_path, 0, on_path_bytes);
  if (!w.on_path || table_init(&w.tab, estimate) != CG_OK) {
    cg__free(w.on_path, on_path_bytes);
    table_free(&w.tab);
    return CG_ENOMEM;
  }
  cg_scope scope = cg_scope_begin();
  cg_status st = scope > 0 ? CG_OK : CG_ENOMEM; /* (cg_scope_begin said why) */
  for (int i = 0; i < a->n_stops && st == CG_OK; i++) {
    entry *e = table_get_tensor(&w.tab, a->stops[i]);
    if (e) e->flags |= STOP;
    else st = CG_ENOMEM;
  }
  if (st == CG_OK) st = find_path(&w, a->sources, a->n_src, a->followed);
  bool any_target = false;
  for (int t = 0; t < a->n_targets && st == CG_OK; t++) {
    cg_tensor *target = a->targets[t];
    entry *e = cg_dtype_is_float(target->dtype) ? table_find_tensor(&w.tab, target) : NULL;
    if (!is_reached(e)) continue;
    cg_tensor *seed = a->seeds && a->seeds[t] ? a->seeds[t] : ones_seed(target);
    st = seed ? accumulate(e, seed, w.in_place, NULL) : cg_last_status();
    any_target = true;
  }
  for (size_t k = a->n_nodes; any_target && k-- > 0 && st == CG_OK;) {
    if (k >= PREFETCH_AHEAD) prefetch_inputs(a->nodes[k - PREFETCH_AHEAD]);
    if (w.on_path[k]) st = visit(&w, a->nodes[k]);
  }
  for (int i = 0; i < a->n_src && st == CG_OK; i++) {
    const cg_tensor *src = a->sources[i];
    bool differentiable = differentiable_source(src, a->followed);
    entry *e = differentiable ? table_find_tensor(&w.tab, src) : NULL;
    cg_tensor *g = e ? hooked_total(&w, src, e) : NULL;
    if (!g && e && (e->flags & TOUCHED) && cg_last_status() != CG_OK) {
      st = cg_last_status();
      break;
    }
    if (!g && differentiable && a->unconnected == CG_UNCONNECTED_ZERO) {
      g = cg_zeros_like(a->sources[i]);
      if (!g) st = cg_last_status();
    }
    out[i] = cg_retain(g);
  }
  if (scope > 0) cg_scope_end(scope);
  flush_rule_counts(&w);
  table_free(&w.tab);
  cg__free(w.on_path, on_path_bytes);
  for (int i = 0; i < a->n_src; i++) {
    if (st != CG_OK) {
      cg_release(out[i]);
      out[i] = NULL;
    } else {
      cg__scope_adopt(out[i]);
    }
  }
  return st;
}

/* --- tapes ----------------------------------------------------------------------------------- */

static cg_status tape_gradient(cg_tape *tape, cg_tensor *target, cg_tensor *const *sources, int n,
                               cg_tensor **out, const cg_grad_opts *opts)
{
  if (!(tape->flags & CG_TAPE_PERSISTENT) && tape->used)
    return cg_set_error(CG_ESTATE, "cg_tape_gradient: this tape has already given its gradients; "
                                   "begin it with CG_TAPE_PERSISTENT to ask more than once");
  bool was_busy = tape->busy;
  tape->busy = true; /* a tape does not record its own gradient computation */
  cg_backward_args a = {.nodes = tape->nodes, .n_nodes = tape->n_nodes, .followed = &tape->tracked,
                        .targets = &target, .seeds = opts ? &opts->output_gradient : NULL,
                        .n_targets = 1, .sources = sources, .n_src = n,
                        .unconnected = opts ? opts->unconnected : CG_UNCONNECTED_NONE,
                        .hooks = &tape->hooks};
  cg_status st = cg__backward(&a, out);
  tape->busy = was_busy;
  return st;
}

cg_status cg_tape_gradient(cg_tape *tape, cg_tensor *target, cg_tensor *const *sources, int n,
                           cg_tensor **out, const cg_grad_opts *opts)
{
  if (!tape) return cg_set_error(CG_EINVAL, "cg_tape_gradient: tape is NULL");
  cg_status st = check_args("cg_tape_gradient", target, sources, n, out, opts);
  if (st != CG_OK) return st;
  st = tape_gradient(tape, target, sources, n, out, opts);
  if (st == CG_OK) tape->used = true;
  return st;
}

cg_tensor *cg_tape_jacobian(cg_tape *tape, cg_tensor *target, cg_tensor *source)
{
  cg_tensor *src[1] = {source};
  if (!tape) {
    cg_set_error(CG_EINVAL, "cg_tape_jacobian: tape is NULL");
    return NULL;
  }
  if (check_args("cg_tape_jacobian", target, src, 1, src, NULL) != CG_OK) return NULL;
  if (!cg_dtype_is_float(target->dtype) || !cg_dtype_is_float(source->dtype)) {
    cg_set_error(CG_EDTYPE, "cg_tape_jacobian: target and source must be float tensors");
    return NULL;
  }
  int64_t shape[2 * CG_MAX_DIMS];
  int ndim = target->ndim + source->ndim;
  if (ndim > CG_MAX_DIMS) {
    cg_set_error(CG_ESHAPE, "cg_tape_jacobian: the Jacobian would have rank %d (> %d)", ndim, CG_MAX_DIMS);
    return NULL;
  }
  memcpy(shape, target->shape, (size_t)target->ndim * sizeof *shape);
  memcpy(shape + target->ndim, source->shape, (size_t)source->ndim * sizeof *shape);
  cg_tensor *jac = cg__tensor_new(source->dtype, ndim, shape);
  if (!jac) return NULL;
  size_t row = (size_t)source->size * cg_dtype_size(source->dtype);
  memset(jac->data, 0, (size_t)target->size * row);
  cg_status st = CG_OK;
  for (int64_t j = 0; j < target->size && st == CG_OK; j++) {
    cg_scope scope = cg_scope_begin();
    cg_tensor *seed = cg_zeros_like(target), *g = NULL;
    if (!seed) st = cg_last_status();
    else {
      cg__store(seed->dtype, seed->data, j, 1.0);
      cg_grad_opts opts = {.output_gradient = seed};
      st = tape_gradient(tape, target, src, 1, &g, &opts);
    }
    if (st == CG_OK && g) memcpy((char *)jac->data + (size_t)j * row, g->data, row);
    cg_scope_end(scope);
  }
  if (st != CG_OK) {
    cg_release(jac);
    return NULL;
  }
  tape->used = true;
  cg__scope_adopt(jac);
  return jac;
}

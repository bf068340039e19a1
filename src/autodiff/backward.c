/* backward.c - the one reverse walk (DESIGN.md section 1) over recorded nodes: find the
 * nodes between sources and target, call each gradient function in its own scope, check and
 * reduce what it returns, accumulate with AddN. Tapes (and graphs) hand it their nodes. */
#include "tape.h"
#include "custom.h"
#include "backward.h"
#include "rules.h"
#include "guard.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- gradient accumulators, keyed by tensor id ------------------------------------------------ */

typedef struct {
  uint64_t id; /* 0: empty slot */
  cg_tensor **parts;
  int n, cap;
} accum;

typedef struct {
  accum *slots;
  size_t n, cap;
} accum_map;

static accum *accum_find(accum_map *m, uint64_t id, bool create)
{
  if (create && 2 * (m->n + 1) > m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    accum *slots = cg__calloc(cap, sizeof *slots);
    if (!slots) return NULL;
    for (size_t k = 0; k < m->cap; k++)
      if (m->slots[k].id) {
        size_t i = (size_t)(m->slots[k].id * 0x9E3779B97F4A7C15ull >> 17) & (cap - 1);
        while (slots[i].id) i = (i + 1) & (cap - 1);
        slots[i] = m->slots[k];
      }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
  }
  if (!m->cap) return NULL;
  for (size_t i = (size_t)(id * 0x9E3779B97F4A7C15ull >> 17) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (m->slots[i].id == id) return &m->slots[i];
    if (m->slots[i].id == 0) {
      if (!create) return NULL;
      m->slots[i].id = id;
      m->n++;
      return &m->slots[i];
    }
  }
}

/* Adds an owned reference g to the gradient of id. */
static cg_status accum_add(accum_map *m, uint64_t id, cg_tensor *g)
{
  accum *a = accum_find(m, id, true);
  if (a && a->n == a->cap) {
    int cap = a->cap ? 2 * a->cap : 2;
    cg_tensor **parts = cg__realloc(a->parts, (size_t)cap * sizeof *parts);
    if (parts) {
      a->parts = parts;
      a->cap = cap;
    } else {
      a = NULL;
    }
  }
  if (!a) {
    cg_release(g);
    return cg_set_error(CG_ENOMEM, "gradient: out of memory accumulating gradients");
  }
  a->parts[a->n++] = g;
  return CG_OK;
}

/* The total gradient of id (borrowed; NULL if none): parts are summed once with AddN. */
static cg_tensor *accum_total(accum_map *m, uint64_t id)
{
  accum *a = accum_find(m, id, false);
  if (!a || a->n == 0) return NULL;
  if (a->n > 1) {
    cg_tensor *sum = cg_retain(cg_add_n(a->parts, a->n));
    if (!sum) return NULL;
    for (int i = 0; i < a->n; i++) cg_release(a->parts[i]);
    a->parts[0] = sum;
    a->n = 1;
  }
  return a->parts[0];
}

static void accum_drop(accum_map *m, uint64_t id)
{
  accum *a = accum_find(m, id, false);
  if (!a) return;
  for (int i = 0; i < a->n; i++) cg_release(a->parts[i]);
  a->n = 0;
}

static void accum_free(accum_map *m)
{
  for (size_t k = 0; k < m->cap; k++) {
    for (int i = 0; i < m->slots[k].n; i++) cg_release(m->slots[k].parts[i]);
    free(m->slots[k].parts);
  }
  free(m->slots);
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
  return cg_reshape_like(s, like); /* (the shape may only be known when the graph runs) */
}

/* --- the walk --------------------------------------------------------------------------------- */

typedef struct {
  cg_node *const *nodes;
  size_t n_nodes;
  bool *on_path;    /* node depends on a source                      */
  cg_idset reached; /* ids of sources and of everything computed from them */
  cg_idset sources;
  cg_idset stops;   /* treated as constants: no gradient flows through them */
  cg_idset hooked;  /* totals already passed through their hooks            */
  const cg_hook_list *hooks;
  accum_map grads;
} walk;

/* The total gradient of t after its hooks (run once per walk), kept as the new total. */
static cg_tensor *hooked_total(walk *w, cg_tensor *t)
{
  cg_tensor *g = accum_total(&w->grads, t->id);
  if (!g || (!t->has_hook && !(w->hooks && w->hooks->n)) || cg__idset_has(&w->hooked, t->id)) return g;
  if (cg__idset_add(&w->hooked, t->id) != CG_OK) return NULL;
  cg_tensor *h = cg__run_hooks(t, g, w->hooks);
  if (h && h != g) {
    accum *a = accum_find(&w->grads, t->id, false);
    cg_release(a->parts[0]);
    a->parts[0] = cg_retain(h);
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
  for (int i = 0; i < n_src; i++)
    if (differentiable_source(sources[i], followed) &&
        (cg__idset_add(&w->reached, sources[i]->id) != CG_OK ||
         cg__idset_add(&w->sources, sources[i]->id) != CG_OK))
      return cg_set_error(CG_ENOMEM, "gradient: out of memory");
  for (size_t k = 0; k < w->n_nodes; k++) {
    const cg_node *n = w->nodes[k];
    bool hit = false;
    for (int i = 0; i < n->n_in && !hit; i++) hit = cg__idset_has(&w->reached, n->in[i]->id);
    w->on_path[k] = hit;
    for (int o = 0; hit && o < n->n_out; o++)
      if (cg_dtype_is_float(n->out[o]->dtype) && !(n->non_differentiable & (1u << o)) &&
          cg__idset_add(&w->reached, n->out[o]->id) != CG_OK)
        return cg_set_error(CG_ENOMEM, "gradient: out of memory");
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

/* Checks gradient j of node n against its input and makes it the input's shape (owned ref out). */
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
  *out = cg_retain(g);
  return CG_OK;
}

/* The rule that differentiates n: the custom backward, or the gradient resolved when it was
 * recorded. Counted for cg_rule_stats; a once-differentiable rule runs unrecorded and its
 * results pass through a barrier whose own gradient is an error naming it. */
static cg_status call_gradient(const cg_node *n, cg_tensor *const *dy, cg_tensor **dx, const bool *needs)
{
  for (int j = 0; j < n->n_in; j++) dx[j] = NULL;
  const char *rule = n->custom ? n->type : n->grad_name;
  bool once = false;
  if (n->custom) {
    cg__count_rule(n->type, CG_RULE_CUSTOM);
    once = cg__custom_def(n->custom)->flags & CG_CUSTOM_ONCE_DIFFERENTIABLE;
  } else {
    if (!n->grad || !n->grad->fn) return no_gradient_error(n);
    cg_status st = cg__check_rule_once(n, n->grad);
    if (st != CG_OK) return st;
    cg__count_gradient(n->grad, n->type);
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
    char who[160] = ""; /* formatted only when something is reported */
    cg_thread_state *ts = cg__tls();
    if (st != CG_OK || ts->n_scopes != guard.n_scopes || ts->n_tapes != guard.n_tapes ||
        ts->paused != guard.paused || ts->n_overrides != guard.n_overrides || ts->graph != guard.graph)
      snprintf(who, sizeof who, "%s: gradient function '%s'", n->type, rule);
    st = cg__guard_end(&guard, who, st);
  }
  if (once) cg_resume_recording();
  cg__leave_gradient(saved_node, saved_needs);
  if (st != CG_OK && cg_last_status() == CG_OK)
    cg_set_error(st, "%s: gradient function '%s' failed", n->type, rule);
  if (st != CG_OK) return cg_last_status();
  bool watched = cg__any_tape_recording() || cg__tls()->graph;
  for (int j = 0; once && watched && j < n->n_in; j++)
    if (dx[j] && !(dx[j] = cg__once_barrier(dx[j], n, rule))) return cg_last_status();
  return CG_OK;
}

/* Differentiates one node: gathers dy, calls its gradient, accumulates into its inputs. */
static bool carries_gradient(walk *w, const cg_tensor *t)
{
  return !cg__idset_has(&w->stops, t->id) && accum_find(&w->grads, t->id, false) != NULL;
}

static cg_status visit(walk *w, const cg_node *n)
{
  cg_tensor *dy[CG_MAX_OUTPUTS];
  bool any = false;
  if (n->def && (n->def->flags & CG_OP_NOT_DIFFERENTIABLE) && !n->custom) return CG_OK;
  for (int o = 0; o < n->n_out; o++) any |= carries_gradient(w, n->out[o]);
  if (!any) return CG_OK;
  cg_tensor *small[8], **dx = n->n_in <= 8 ? small : cg__malloc((size_t)n->n_in * sizeof *dx);
  bool needs_small[8], *needs = n->n_in <= 8 ? needs_small : cg__malloc((size_t)n->n_in * sizeof *needs);
  if (!dx || !needs) {
    if (dx != small) free(dx);
    if (needs != needs_small) free(needs);
    return CG_ENOMEM;
  }
  for (int j = 0; j < n->n_in; j++)
    needs[j] = cg_dtype_is_float(n->in[j]->dtype) && cg__idset_has(&w->reached, n->in[j]->id);
  cg_scope scope = cg_scope_begin();
  cg_status st = CG_OK;
  for (int o = 0; o < n->n_out && st == CG_OK; o++) {
    dy[o] = carries_gradient(w, n->out[o]) ? hooked_total(w, n->out[o]) : NULL;
    if (!dy[o] && carries_gradient(w, n->out[o])) st = cg_last_status();
    if (st == CG_OK && !dy[o]) dy[o] = cg_zeros_like(n->out[o]);
    if (!dy[o]) st = cg_last_status();
  }
  if (st == CG_OK) {
    cg_thread_state *ts = cg__tls();
    const char *outer = ts->building_gradient; /* graph nodes remember which gradient made them */
    ts->building_gradient = n->custom ? n->type : n->grad_name;
    st = call_gradient(n, dy, dx, needs);
    ts->building_gradient = outer;
  }
  for (int j = 0; j < n->n_in && st == CG_OK; j++) {
    const cg_tensor *x = n->in[j];
    cg_tensor *g = NULL;
    if (!dx[j] || !cg_dtype_is_float(x->dtype) || !cg__idset_has(&w->reached, x->id)) continue;
    if ((st = conform(n, j, dx[j], &g)) == CG_OK) st = accum_add(&w->grads, x->id, g);
  }
  cg_scope_end(scope);
  if (dx != small) free(dx);
  if (needs != needs_small) free(needs);
  for (int o = 0; o < n->n_out; o++) /* consumed, unless someone asked for it */
    if (!cg__idset_has(&w->sources, n->out[o]->id)) accum_drop(&w->grads, n->out[o]->id);
  return st;
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
  walk w = {.nodes = a->nodes, .n_nodes = a->n_nodes, .hooks = a->hooks};
  for (int i = 0; i < a->n_src; i++) out[i] = NULL;
  w.on_path = cg__calloc(a->n_nodes ? a->n_nodes : 1, sizeof *w.on_path);
  if (!w.on_path) return CG_ENOMEM;
  cg_scope scope = cg_scope_begin();
  cg_status st = CG_OK;
  for (int i = 0; i < a->n_stops && st == CG_OK; i++)
    if (cg__idset_add(&w.stops, a->stops[i]->id) != CG_OK) st = CG_ENOMEM;
  if (st == CG_OK) st = find_path(&w, a->sources, a->n_src, a->followed);
  bool any_target = false;
  for (int t = 0; t < a->n_targets && st == CG_OK; t++) {
    cg_tensor *target = a->targets[t];
    if (!cg_dtype_is_float(target->dtype) || !cg__idset_has(&w.reached, target->id)) continue;
    cg_tensor *seed = a->seeds && a->seeds[t] ? a->seeds[t] : cg_ones_like(target);
    st = seed ? accum_add(&w.grads, target->id, cg_retain(seed)) : cg_last_status();
    any_target = true;
  }
  for (size_t k = a->n_nodes; any_target && k-- > 0 && st == CG_OK;)
    if (w.on_path[k]) st = visit(&w, a->nodes[k]);
  for (int i = 0; i < a->n_src && st == CG_OK; i++) {
    const cg_tensor *src = a->sources[i];
    bool differentiable = differentiable_source(src, a->followed);
    cg_tensor *g = differentiable ? hooked_total(&w, a->sources[i]) : NULL;
    if (!g && differentiable && accum_find(&w.grads, src->id, false) && cg_last_status() != CG_OK) {
      st = cg_last_status();
      break;
    }
    if (!g && differentiable && a->unconnected == CG_UNCONNECTED_ZERO) {
      g = cg_zeros_like(a->sources[i]);
      if (!g) st = cg_last_status();
    }
    out[i] = cg_retain(g);
  }
  cg_scope_end(scope);
  accum_free(&w.grads);
  cg__idset_free(&w.reached);
  cg__idset_free(&w.sources);
  cg__idset_free(&w.stops);
  cg__idset_free(&w.hooked);
  free(w.on_path);
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

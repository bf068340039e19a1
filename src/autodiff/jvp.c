/* jvp.c - forward mode, one node at a time: the registry of JVP rules (by op type,
 * global and thread-safe, like gradients in registry.c), and a recorded node's output
 * tangents from its rule, its custom jvp, or the double-VJP fallback through its gradient.
 * Also the reverse fallback: a linear custom op's gradient by transposing its jvp. The walk
 * over a whole recording (cg_jvp, cg_hvp, cg_hessian) is in forward.c. */
#include "jvp.h"
#include "custom.h"
#include "guard.h"
#include "rules.h"
#include "tape.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================================
 * The registry: name -> (rule, user), open addressing over entries that never move
 * ==================================================================================== */

typedef struct {
  char *name;
  cg_jvp_fn fn;
  void *user;
  int checked; /* check on register done (atomic; cleared when the rule is replaced) */
} jvp_entry;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static jvp_entry **slots; /* NULL: empty */
static size_t n_entries, n_slots;

static size_t slot_of(const char *name)
{
  uint64_t h = 1469598103934665603ull;
  while (*name) h = (h ^ (unsigned char)*name++) * 1099511628211ull;
  return (size_t)h & (n_slots - 1);
}

static jvp_entry *find_locked(const char *name)
{
  if (!n_slots) return NULL;
  for (size_t i = slot_of(name);; i = (i + 1) & (n_slots - 1)) {
    if (!slots[i]) return NULL;
    if (strcmp(slots[i]->name, name) == 0) return slots[i];
  }
}

static void place_locked(jvp_entry *e)
{
  size_t i = slot_of(e->name);
  while (slots[i]) i = (i + 1) & (n_slots - 1);
  slots[i] = e;
}

static cg_status add_locked(const char *name, cg_jvp_fn fn, void *user, unsigned flags)
{
  if (!name || !name[0] || !fn)
    return cg_set_error(CG_EINVAL, "cg_register_jvp: need an op type name and a function");
  jvp_entry *e = find_locked(name);
  if (e && !(flags & CG_REGISTER_REPLACE))
    return cg_set_error(CG_EEXIST, "cg_register_jvp: a JVP rule for '%s' is already registered "
                                   "(pass CG_REGISTER_REPLACE to replace it)", name);
  if (e) {
    e->fn = fn;
    e->user = user;
    __atomic_store_n(&e->checked, 0, __ATOMIC_RELEASE); /* a new rule is checked afresh */
    return CG_OK;
  }
  if (2 * (n_entries + 1) > n_slots) { /* grow: keep at most half the slots full */
    size_t old_n = n_slots, cap = n_slots ? 2 * n_slots : 256;
    jvp_entry **old = slots, **grown = cg__calloc(cap, sizeof *grown);
    if (!grown) return cg_set_error(CG_ENOMEM, "cg_register_jvp: out of memory");
    slots = grown;
    n_slots = cap;
    for (size_t k = 0; k < old_n; k++)
      if (old[k]) place_locked(old[k]);
    free(old);
  }
  e = cg__calloc(1, sizeof *e);
  if (e) e->name = strdup(name);
  if (!e || !e->name) {
    free(e);
    return cg_set_error(CG_ENOMEM, "cg_register_jvp: out of memory");
  }
  e->fn = fn;
  e->user = user;
  place_locked(e);
  n_entries++;
  return CG_OK;
}

static cg_status add(const char *name, cg_jvp_fn fn, void *user, unsigned flags)
{
  pthread_rwlock_wrlock(&lock);
  cg_status st = add_locked(name, fn, user, flags);
  pthread_rwlock_unlock(&lock);
  return st;
}

cg_status cg__register_builtin_jvp(const char *name, cg_jvp_fn fn) { return add(name, fn, NULL, 0); }

cg_status cg_register_jvp(const char *name, cg_jvp_fn fn, void *user, unsigned flags)
{
  cg__ensure_builtins();
  return add(name, fn, user, flags);
}

/* The rule registered for an op type, its function and user pointer read together into *rule
 * (fn NULL when there is none); returns the entry itself (entries never move), for its flag. */
static jvp_entry *lookup(const char *name, jvp_entry *rule)
{
  cg__ensure_builtins();
  pthread_rwlock_rdlock(&lock);
  jvp_entry *e = find_locked(name);
  *rule = e ? (jvp_entry){e->name, e->fn, e->user, 0} : (jvp_entry){0};
  pthread_rwlock_unlock(&lock);
  return e;
}

int cg_has_jvp(const char *name)
{
  jvp_entry rule;
  return name && lookup(name, &rule) && rule.fn != NULL;
}

/* ======================================================================================
 * Calling gradients and checking tangents
 * ==================================================================================== */

/* The gradient a node was recorded with (override or custom backward included), as the
 * reverse walk calls it: counted, and told which inputs need a gradient. */
static cg_status call_gradient(const cg_node *n, cg_tensor *const *dy, cg_tensor **dx, const bool *needs)
{
  for (int j = 0; j < n->n_in; j++) dx[j] = NULL;
  cg_status st = CG_OK;
  if (n->custom) cg__count_rule(n->type, CG_RULE_CUSTOM);
  else if ((st = cg__check_rule_once(n, n->grad)) == CG_OK) cg__count_gradient(n->grad, n->type);
  if (st != CG_OK) return st;
  const cg_node *saved_node;
  const bool *saved_needs;
  cg__enter_gradient(n, needs, &saved_node, &saved_needs);
  st = n->custom ? cg__custom_backward(n, dy, dx) : n->grad->fn(n, dy, dx, n->grad->user);
  cg__leave_gradient(saved_node, saved_needs);
  if (st != CG_OK && cg_last_status() == CG_OK)
    cg_set_error(st, "%s: gradient function '%s' failed", n->type, n->grad_name);
  return st == CG_OK ? CG_OK : cg_last_status();
}

/* A once-differentiable gradient cannot be differentiated again, which the fallback does. */
static bool once_differentiable(const cg_node *n)
{
  return n->custom ? (cg__custom_def(n->custom)->flags & CG_CUSTOM_ONCE_DIFFERENTIABLE) != 0
                   : (n->grad->flags & CG_GRADIENT_ONCE_DIFFERENTIABLE) != 0;
}

/* t broadcasts to like's shape: its dims, aligned at the end, are equal or 1. */
static bool broadcasts_to(const cg_tensor *t, const cg_tensor *like)
{
  if (t->ndim > like->ndim) return false;
  for (int d = 1; d <= t->ndim; d++) {
    int64_t td = t->shape[t->ndim - d];
    if (td != 1 && td != like->shape[like->ndim - d]) return false;
  }
  return true;
}

/* Makes a rule's tangent for output o of op exactly that output's dtype and shape,
 * broadcasting a smaller one: a rule writes da + db without caring which was there. */
static cg_status conform(const cg_node *n, int o, cg_tensor *t, cg_tensor **out)
{
  const cg_tensor *y = n->out[o];
  char ts[160], ys[160];
  *out = NULL;
  if (!t || !cg_dtype_is_float(y->dtype)) return CG_OK;
  if (t->dtype != y->dtype)
    return cg_set_error(CG_EUSER, "%s: the tangent for output %d has dtype %s, expected %s (the output's)",
                        n->type, o, cg_dtype_name(t->dtype), cg_dtype_name(y->dtype));
  if (!cg__shape_equal(t->ndim, t->shape, y->ndim, y->shape)) {
    if (!broadcasts_to(t, y))
      return cg_set_error(CG_EUSER, "%s: the tangent for output %d has shape %s, expected %s (the output's)",
                          n->type, o, cg_shape_str(t, ts, sizeof ts), cg_shape_str(y, ys, sizeof ys));
    if (!(t = cg__broadcast_as(t, (cg_tensor *)y))) return cg_last_status();
  }
  *out = t;
  return CG_OK;
}

/* sum_i <a[i], b[i]> over the pairs where both are there, as one scalar op chain (NULL: no
 * pair). a[i] may be broadcast against b[i]'s shape. */
static cg_tensor *inner_products(cg_tensor *const *a, cg_tensor *const *b, int n, cg_status *st)
{
  cg_tensor *s = NULL;
  for (int i = 0; i < n && *st == CG_OK; i++) {
    if (!a[i] || !b[i]) continue;
    cg_tensor *term = cg_sum(cg_mul(a[i], b[i]), NULL, 0, 0);
    s = s ? cg_add(s, term) : term;
    if (!s) *st = cg_last_status();
  }
  return s;
}

/* ======================================================================================
 * The double-VJP fallback: an op with a gradient but no JVP rule.
 * J^T u is linear in u, so <J^T u, v> = <u, J v> and J v = d<J^T u, v>/du, at any u (zeros).
 * Cost per node: one call of the gradient function recorded on a tape, and one reverse pass
 * through what it recorded: about two to three times the gradient's own work, instead of the
 * one application of a linear map a JVP rule costs.
 * ==================================================================================== */

static cg_status double_vjp(const cg_node *n, cg_tensor *const *t_in, cg_tensor **t_out)
{
  if (once_differentiable(n))
    return cg_set_error(CG_ENOGRAD, "%s: no JVP rule, and its gradient '%s' is declared "
                                    "once-differentiable, so forward mode cannot go through it "
                                    "(register a JVP rule with cg_register_jvp(\"%s\", ...)%s)",
                        n->type, n->custom ? n->type : n->grad_name, n->type,
                        n->custom ? ", or give the custom op a jvp" : "");
  cg_tensor *u[CG_MAX_OUTPUTS], *wrt[CG_MAX_OUTPUTS], *g[CG_MAX_OUTPUTS];
  int which[CG_MAX_OUTPUTS], k = 0;
  /* dx, then J^T u, then which inputs need it (those with a tangent) */
  cg_tensor **dx = cg__calloc((size_t)n->n_in + 1, 2 * sizeof *dx + sizeof(bool));
  if (!dx) return CG_ENOMEM;
  cg_tensor **v = dx + n->n_in + 1;
  bool *needs = (bool *)(v + n->n_in + 1);
  for (int i = 0; i < n->n_in; i++) needs[i] = t_in[i] != NULL;
  cg_tape *tape = cg_tape_begin(CG_TAPE_NO_AUTO_WATCH);
  cg_status st = tape ? CG_OK : cg_set_error(CG_ENOMEM, "%s: out of memory in forward mode", n->type);
  for (int o = 0; o < n->n_out && st == CG_OK; o++) { /* the gradient wants a dy per output */
    if (!(u[o] = cg_zeros_like(n->out[o]))) st = cg_last_status();
    else if (cg_dtype_is_float(u[o]->dtype) && (st = cg_tape_watch(tape, u[o])) == CG_OK) {
      wrt[k] = u[o];
      which[k++] = o;
    }
  }
  if (st == CG_OK) st = call_gradient(n, u, dx, needs);
  for (int i = 0; i < n->n_in && st == CG_OK; i++) /* J^T u in each input's own shape */
    if (t_in[i] && dx[i] && cg_dtype_is_float(n->in[i]->dtype)) {
      char gs[160], xs[160];
      if (dx[i]->dtype != n->in[i]->dtype || !broadcasts_to(n->in[i], dx[i]))
        st = cg_set_error(CG_EUSER, "%s: the gradient for input %d is %s %s, expected %s %s (the input's)",
                          n->type, i, cg_dtype_name(dx[i]->dtype), cg_shape_str(dx[i], gs, sizeof gs),
                          cg_dtype_name(n->in[i]->dtype), cg_shape_str(n->in[i], xs, sizeof xs));
      else if (!(v[i] = cg__sum_to_shape(dx[i], n->in[i]))) st = cg_last_status();
    }
  cg_tensor *s = st == CG_OK ? inner_products(v, t_in, n->n_in, &st) : NULL;
  if (tape && cg_tape_end(tape) != CG_OK && st == CG_OK)
    st = cg_set_error(CG_ESTATE, "%s: its gradient function left a tape open", n->type);
  if (st == CG_OK && s) st = cg_tape_gradient(tape, s, wrt, k, g, NULL);
  for (int j = 0; j < k && st == CG_OK && s; j++) t_out[which[j]] = g[j];
  cg_tape_free(tape);
  free(dx);
  return st;
}

/* ======================================================================================
 * One node
 * ==================================================================================== */

static cg_status custom_jvp(const cg_node *n, cg_tensor *const *t_in, cg_tensor **t_out)
{
  const cg_custom_def *def = cg__custom_def(n->custom);
  bool var_tangent = false; /* variables read in the forward follow the inputs */
  for (int i = def->n_inputs; i < n->n_in; i++) var_tangent |= t_in[i] != NULL;
  if (def->jvp && !var_tangent) {
    cg__count_rule(n->type, CG_RULE_JVP);
    char who[160];
    snprintf(who, sizeof who, "%s: the custom jvp", n->type);
    cg_callback_guard guard = cg__guard_begin();
    cg_status st = cg__guard_end(&guard, who, def->jvp((cg_ctx *)cg__custom_ctx(n->custom), t_in, t_out));
    if (st != CG_OK && cg_last_status() == CG_OK)
      cg_set_error(CG_EUSER, "%s failed (status %s)", who, cg_status_name(st));
    return st == CG_OK ? CG_OK : cg_last_status();
  }
  if (def->backward) return double_vjp(n, t_in, t_out);
  return cg_set_error(CG_EUSER, "%s: a trainable variable read in the forward has a tangent, "
                                "which a custom jvp cannot take; give the op a backward", n->type);
}

/* A registered rule: checked on its first run (check on register), counted, guarded. */
static cg_status call_rule(const cg_node *n, jvp_entry *entry, const jvp_entry *rule,
                           cg_tensor *const *t_in, cg_tensor **raw)
{
  cg_status st = cg__check_jvp_once(n, &entry->checked);
  if (st != CG_OK) return st;
  cg__count_rule(n->def->name, CG_RULE_JVP);
  char who[160];
  snprintf(who, sizeof who, "%s: the JVP rule", n->type);
  cg_callback_guard guard = cg__guard_begin();
  st = cg__guard_end(&guard, who, rule->fn(n, t_in, raw, rule->user));
  if (st != CG_OK && cg_last_status() == CG_OK)
    cg_set_error(st, "%s failed (status %s)", who, cg_status_name(st));
  return st == CG_OK ? CG_OK : cg_last_status();
}

cg_status cg__jvp_node(const cg_node *n, cg_tensor *const *t_in, cg_tensor **t_out)
{
  cg_tensor *raw[CG_MAX_OUTPUTS] = {0};
  cg_status st;
  for (int o = 0; o < n->n_out; o++) t_out[o] = NULL;
  /* A gradient override (recorded under another name) also decides the forward derivative,
     through the fallback, so forward and reverse mode agree. */
  bool overridden = !n->custom && n->grad && strcmp(n->grad_name, n->type) != 0;
  jvp_entry rule = {0}, *entry = n->custom || overridden ? NULL : lookup(n->def->name, &rule);
  if (n->custom) {
    st = custom_jvp(n, t_in, raw);
  } else if (rule.fn) {
    st = call_rule(n, entry, &rule, t_in, raw);
  } else if (n->grad && n->grad->fn) {
    st = double_vjp(n, t_in, raw);
  } else if (overridden) {
    return cg_set_error(CG_ENOGRAD, "%s: no gradient is registered under the name '%s', which an "
                                    "override mapped this op to when it was recorded (forward mode "
                                    "follows overrides)", n->type, n->grad_name);
  } else {
    return cg_set_error(CG_ENOGRAD, "%s: no JVP rule and no gradient is registered for this op "
                                    "type, and it lies between the primals and an output "
                                    "(register one with cg_register_jvp(\"%s\", ...))",
                        n->type, n->type);
  }
  for (int o = 0; o < n->n_out && st == CG_OK; o++) /* outputs marked non-differentiable: none */
    st = n->non_differentiable & (1u << o) ? CG_OK : conform(n, o, raw[o], &t_out[o]);
  if (st != CG_OK)
    for (int o = 0; o < n->n_out; o++) t_out[o] = NULL;
  return st;
}

/* ======================================================================================
 * Transposition: the gradient of a linear custom op with a jvp and no backward.
 * <jvp(t), dy> is linear in t, so its gradient in t is J^T dy, at any t (zeros). Cost: the
 * jvp once, recorded, and one reverse pass through it: about two to three times the jvp.
 * Eagerly a tape records the jvp; in a graph (cg_gradients) its nodes are differentiated
 * symbolically.
 * ==================================================================================== */

/* The user's jvp at tangents t, as sum_o <jvp(t)_o, dy_o> (NULL: no output depends on t). */
static cg_status jvp_against(const cg_node *n, cg_tensor *const *t, cg_tensor *const *dy, cg_tensor **s)
{
  const cg_custom_def *def = cg__custom_def(n->custom);
  cg_tensor *t_out[CG_MAX_OUTPUTS] = {0}, *dy_float[CG_MAX_OUTPUTS] = {0};
  cg_status st = def->jvp((cg_ctx *)cg__custom_ctx(n->custom), t, t_out); /* guarded by the caller */
  if (st != CG_OK && cg_last_status() == CG_OK)
    cg_set_error(CG_EUSER, "%s: custom jvp failed (status %s)", n->type, cg_status_name(st));
  if (st != CG_OK) return cg_last_status();
  for (int o = 0; o < n->n_out; o++)
    if (cg_dtype_is_float(n->out[o]->dtype)) dy_float[o] = dy[o];
  *s = inner_products(t_out, dy_float, n->n_out, &st);
  return st;
}

cg_status cg__custom_linear_backward(const cg_node *n, cg_tensor *const *dy, cg_tensor **dx)
{
  const cg_custom_def *def = cg__custom_def(n->custom);
  const cg_ctx *ctx = cg__custom_ctx(n->custom);
  int n_x = def->n_inputs, k = 0;
  bool in_graph = cg_graph_current() != NULL;
  if (cg_ctx_num_vars(ctx) > 0)
    return cg_set_error(CG_EUSER, "%s: a CG_CUSTOM_LINEAR op without a backward cannot give "
                                  "gradients for the trainable variables its forward read "
                                  "('%s'): give it a backward", n->type, cg_var_name(cg_ctx_var(ctx, 0)));
  /* t: a tangent per input (NULL for integers); wrt, grads: the float ones and their gradients */
  cg_tensor **t = cg__calloc((size_t)n_x + 1, 3 * sizeof *t);
  int *which = t ? cg__calloc((size_t)n_x + 1, sizeof *which) : NULL;
  cg_tape *tape = which && !in_graph ? cg_tape_begin(CG_TAPE_NO_AUTO_WATCH) : NULL;
  if (!which || (!in_graph && !tape)) {
    free(which);
    free(t);
    return cg_set_error(CG_ENOMEM, "%s: out of memory transposing the jvp", n->type);
  }
  cg_tensor **wrt = t + n_x + 1, **grads = wrt + n_x + 1, *s = NULL;
  cg_status st = CG_OK;
  for (int i = 0; i < n_x && st == CG_OK; i++) {
    if (!cg_dtype_is_float(n->in[i]->dtype)) continue;
    if (!(t[i] = cg_zeros_like(n->in[i]))) st = cg_last_status();
    else if (tape) st = cg_tape_watch(tape, t[i]);
    wrt[k] = t[i];
    which[k++] = i;
  }
  if (st == CG_OK) st = jvp_against(n, t, dy, &s);
  if (tape && cg_tape_end(tape) != CG_OK && st == CG_OK)
    st = cg_set_error(CG_ESTATE, "%s: its custom jvp left a tape open", n->type);
  if (st == CG_OK && s)
    st = tape ? cg_tape_gradient(tape, s, wrt, k, grads, NULL)
              : cg_gradients(&s, 1, wrt, k, NULL, grads, NULL);
  for (int j = 0; j < k && st == CG_OK && s; j++) dx[which[j]] = grads[j];
  cg_tape_free(tape);
  free(which);
  free(t);
  return st;
}

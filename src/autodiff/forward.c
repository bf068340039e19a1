/* forward.c - forward mode over a whole function (jax.jvp): run it once on a private tape
 * that watches the primals, then walk the recorded nodes in order, computing each node's
 * output tangents from its input tangents (jvp.c says how for one node). Hessian-vector
 * products and Hessians by forward-over-reverse: the forward walk of a recorded gradient. */
#include "jvp.h"
#include "guard.h"
#include "tape.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================================
 * Tangents by tensor id (owned references; a missing entry is a zero tangent)
 * ==================================================================================== */

typedef struct {
  uint64_t id; /* 0: empty */
  cg_tensor *t;
} tangent_slot;

typedef struct {
  tangent_slot *slots;
  size_t n, cap;
} tangent_map;

static size_t map_slot(uint64_t id, size_t cap)
{
  return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static cg_tensor *map_get(const tangent_map *m, uint64_t id)
{
  if (!m->cap) return NULL;
  for (size_t i = map_slot(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->slots[i].id == id) return m->slots[i].t;
    if (m->slots[i].id == 0) return NULL;
  }
}

/* Takes an owned reference t as the tangent of id (replacing none: ids are set once). */
static cg_status map_put(tangent_map *m, uint64_t id, cg_tensor *t)
{
  if (2 * (m->n + 1) > m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    tangent_slot *slots = cg__calloc(cap, sizeof *slots);
    if (!slots) {
      cg_release(t);
      return cg_set_error(CG_ENOMEM, "cg_jvp: out of memory keeping tangents");
    }
    for (size_t k = 0; k < m->cap; k++)
      if (m->slots[k].id) {
        size_t i = map_slot(m->slots[k].id, cap);
        while (slots[i].id) i = (i + 1) & (cap - 1);
        slots[i] = m->slots[k];
      }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
  }
  size_t i = map_slot(id, m->cap);
  while (m->slots[i].id && m->slots[i].id != id) i = (i + 1) & (m->cap - 1);
  if (m->slots[i].id) cg_release(m->slots[i].t);
  else m->n++;
  m->slots[i] = (tangent_slot){id, t};
  return CG_OK;
}

static void map_free(tangent_map *m)
{
  for (size_t k = 0; k < m->cap; k++)
    if (m->slots[k].id) cg_release(m->slots[k].t);
  free(m->slots);
  *m = (tangent_map){0};
}

/* ======================================================================================
 * A recording: fn run once on a private tape; walked once per set of tangents
 * ==================================================================================== */

typedef struct {
  cg_tape *tape;
  int nx, ny;
  cg_tensor **x; /* views of the primals (owned): fresh ids, so each primal has its own tangent
                    even when the caller passes one tensor twice                              */
  cg_tensor **y; /* fn's outputs (owned)                                                      */
} recording;

static void recording_free(recording *r)
{
  cg_tape_free(r->tape);
  for (int i = 0; r->x && i < r->nx; i++) cg_release(r->x[i]);
  for (int i = 0; r->y && i < r->ny; i++) cg_release(r->y[i]);
  free(r->x);
  *r = (recording){0};
}

/* Runs fn on views of the primals under a tape that watches them (any outer tape records
 * the same ops, so derivatives of the results through outer tapes still work). */
static cg_status record(const char *who, cg_trace_fn fn, void *user, cg_tensor *const *primals,
                        int nx, int ny, recording *r)
{
  *r = (recording){.nx = nx, .ny = ny};
  r->x = cg__calloc((size_t)(nx + ny) + 1, sizeof *r->x);
  if (!r->x) return cg_last_status();
  r->y = r->x + nx;
  cg_scope scope = cg_scope_begin();
  cg_status st = scope < 0 ? cg_last_status() : CG_OK;
  for (int i = 0; i < nx && st == CG_OK; i++)
    if (!(r->x[i] = cg_retain(cg_identity(primals[i])))) st = cg_last_status();
  if (st == CG_OK && !(r->tape = cg_tape_begin(CG_TAPE_NO_AUTO_WATCH)))
    st = cg_set_error(CG_ENOMEM, "%s: out of memory", who);
  for (int i = 0; i < nx && st == CG_OK; i++) st = cg_tape_watch(r->tape, r->x[i]);
  if (st == CG_OK) {
    char what[96];
    snprintf(what, sizeof what, "%s: the function", who);
    cg_callback_guard guard = cg__guard_begin(); /* undoes scopes or tapes it left open */
    st = cg__guard_end(&guard, what, fn(r->x, nx, r->y, ny, user));
    if (st != CG_OK && cg_last_status() == CG_OK)
      cg_set_error(CG_EUSER, "%s failed (status %s)", what, cg_status_name(st));
    st = st == CG_OK ? CG_OK : cg_last_status();
  }
  if (r->tape && r->tape->recording) cg_tape_end(r->tape); /* innermost again: the guard saw to it */
  for (int j = 0; j < ny && st == CG_OK; j++)
    if (!r->y[j]) st = cg_set_error(CG_EUSER, "%s: the function gave no tensor for output %d of %d", who, j, ny);
  for (int j = 0; j < ny; j++) r->y[j] = st == CG_OK ? cg_retain(r->y[j]) : NULL; /* out of the scope */
  if (scope >= 0) cg_scope_end(scope);
  if (st != CG_OK) recording_free(r);
  return st;
}

/* One forward walk: out[j] = J tangents for output j, a caller-owned reference (zeros when
 * the output does not depend on the primals; NULL for an integer output). */
static cg_status walk(const recording *r, cg_tensor *const *tangents, cg_tensor **out)
{
  int max_in = 1;
  for (size_t k = 0; k < r->tape->n_nodes; k++)
    if (r->tape->nodes[k]->n_in > max_in) max_in = r->tape->nodes[k]->n_in;
  cg_tensor **t_in = cg__malloc((size_t)max_in * sizeof *t_in);
  if (!t_in) return CG_ENOMEM;
  tangent_map m = {0};
  cg_scope scope = cg_scope_begin(); /* zeros for outputs that need them */
  cg_status st = scope < 0 ? cg_last_status() : CG_OK;
  for (int j = 0; j < r->ny; j++) out[j] = NULL;
  for (int i = 0; i < r->nx && st == CG_OK; i++)
    if (tangents[i] && cg_dtype_is_float(r->x[i]->dtype))
      st = map_put(&m, r->x[i]->id, cg_retain(tangents[i]));
  for (size_t k = 0; k < r->tape->n_nodes && st == CG_OK; k++) {
    const cg_node *n = r->tape->nodes[k];
    bool any = false;
    for (int i = 0; i < n->n_in; i++) any |= (t_in[i] = map_get(&m, n->in[i]->id)) != NULL;
    if (!any) continue; /* constant with respect to the primals */
    cg_tensor *t_out[CG_MAX_OUTPUTS];
    cg_scope node_scope = cg_scope_begin(); /* the rule's temporaries */
    st = node_scope < 0 ? cg_last_status() : cg__jvp_node(n, t_in, t_out);
    for (int o = 0; o < n->n_out && st == CG_OK; o++)
      if (t_out[o]) st = map_put(&m, n->out[o]->id, cg_retain(t_out[o]));
    if (node_scope >= 0) cg_scope_end(node_scope);
  }
  for (int j = 0; j < r->ny && st == CG_OK; j++) {
    cg_tensor *y = r->y[j], *t = map_get(&m, y->id);
    if (!cg_dtype_is_float(y->dtype)) continue;
    if (!t && !(t = cg_zeros_like(y))) st = cg_last_status();
    out[j] = cg_retain(t);
  }
  if (scope >= 0) cg_scope_end(scope);
  map_free(&m);
  free(t_in);
  if (st != CG_OK)
    for (int j = 0; j < r->ny; j++) {
      cg_release(out[j]);
      out[j] = NULL;
    }
  return st;
}

/* ======================================================================================
 * The public entry points
 * ==================================================================================== */

/* Arguments every entry point shares: primals that are concrete tensors, tangents (NULL:
 * zero) of their dtype and shape, and no graph being built. */
static cg_status check_primals(const char *who, cg_tensor *const *x, cg_tensor *const *t, int n)
{
  char xs[160], ts[160];
  if (cg__tls()->graph)
    return cg_set_error(CG_ESTATE, "%s: forward mode runs eagerly: exit the graph being built "
                                   "(cg_graph_exit) first", who);
  for (int i = 0; i < n; i++) {
    if (!x[i]) return cg__null_input(who, i);
    if (cg__is_symbolic(x[i]))
      return cg_set_error(CG_ESTATE, "%s: primal %d is a symbolic tensor of a graph: compute it "
                                     "with cg_graph_run first", who, i);
    if (!t || !t[i]) continue;
    if (!cg_dtype_is_float(x[i]->dtype))
      return cg_set_error(CG_EDTYPE, "%s: primal %d is %s %s, which has no tangent: pass NULL for it",
                          who, i, cg_dtype_name(x[i]->dtype), cg_shape_str(x[i], xs, sizeof xs));
    if (t[i]->dtype != x[i]->dtype || cg__is_symbolic(t[i]) ||
        !cg__shape_equal(t[i]->ndim, t[i]->shape, x[i]->ndim, x[i]->shape))
      return cg_set_error(CG_ESHAPE, "%s: tangent %d is %s %s but primal %d is %s %s (they must "
                                     "match)", who, i, cg_dtype_name(t[i]->dtype),
                          cg_shape_str(t[i], ts, sizeof ts), i, cg_dtype_name(x[i]->dtype),
                          cg_shape_str(x[i], xs, sizeof xs));
  }
  return CG_OK;
}

cg_status cg_jvp(cg_trace_fn fn, void *user, cg_tensor *const *primals, cg_tensor *const *tangents,
                 int nx, cg_tensor **out_primals, cg_tensor **out_tangents, int ny)
{
  if (!fn || nx < 0 || ny < 1 || (nx > 0 && (!primals || !tangents)) || !out_primals || !out_tangents)
    return cg_set_error(CG_EINVAL, "cg_jvp: needs a function, nx >= 0 primals and tangents, and "
                                   "ny >= 1 out_primals and out_tangents (got nx %d, ny %d)", nx, ny);
  for (int j = 0; j < ny; j++) out_primals[j] = out_tangents[j] = NULL;
  cg_status st = check_primals("cg_jvp", primals, tangents, nx);
  recording r;
  if (st == CG_OK) st = record("cg_jvp", fn, user, primals, nx, ny, &r);
  if (st != CG_OK) return st;
  st = walk(&r, tangents, out_tangents);
  for (int j = 0; j < ny && st == CG_OK; j++) {
    out_primals[j] = cg_retain(r.y[j]);
    cg__scope_adopt(out_primals[j]);
    cg__scope_adopt(out_tangents[j]);
  }
  recording_free(&r);
  return st;
}

/* --- forward-over-reverse ---------------------------------------------------------------- */

typedef struct {
  const char *who;
  cg_fn f;
  void *user;
} scalar_fn;

/* y = the gradient of f at x (zeros where f does not depend on an input), by a tape whose
 * backward the forward walk differentiates. */
static cg_status gradient_of(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  const scalar_fn *c = user;
  char fs[160];
  cg_tape *tape = cg_tape_begin(CG_TAPE_NO_AUTO_WATCH);
  if (!tape) return cg_set_error(CG_ENOMEM, "%s: out of memory", c->who);
  cg_status st = CG_OK;
  for (int i = 0; i < nx && st == CG_OK; i++) st = cg_tape_watch(tape, x[i]);
  cg_tensor *fx = NULL;
  if (st == CG_OK) {
    char who[64];
    snprintf(who, sizeof who, "%s: f", c->who);
    cg_callback_guard guard = cg__guard_begin(); /* f must leave no scope or tape open */
    fx = c->f(x, nx, c->user);
    st = fx ? CG_OK : cg_last_status() != CG_OK ? cg_last_status()
                                                : cg_set_error(CG_EUSER, "%s returned NULL", who);
    if ((st = cg__guard_end(&guard, who, st)) != CG_OK) fx = NULL;
  }
  cg_tape_end(tape);
  if (st == CG_OK && (!cg_dtype_is_float(fx->dtype) || fx->size != 1)) {
    st = cg_set_error(CG_ESHAPE, "%s: f must give a float scalar (one element), got %s %s",
                      c->who, cg_dtype_name(fx->dtype), cg_shape_str(fx, fs, sizeof fs));
  }
  cg_grad_opts opts = {.unconnected = CG_UNCONNECTED_ZERO};
  if (st == CG_OK) st = cg_tape_gradient(tape, fx, x, nx, y, &opts);
  cg_tape_free(tape);
  return st;
}

static cg_status check_scalar_fn(const char *who, cg_fn f, cg_tensor *const *x, int n)
{
  if (!f || n < 1 || !x) return cg_set_error(CG_EINVAL, "%s: needs f and n >= 1 inputs (got %d)", who, n);
  for (int i = 0; i < n; i++)
    if (x[i] && !cg_dtype_is_float(x[i]->dtype))
      return cg_set_error(CG_EDTYPE, "%s: input %d is %s: second derivatives need float inputs",
                          who, i, cg_dtype_name(x[i]->dtype));
  return CG_OK;
}

cg_status cg_hvp(cg_fn f, void *user, cg_tensor *const *x, cg_tensor *const *v, int n, cg_tensor **out)
{
  if (!out || !v) return cg_set_error(CG_EINVAL, "cg_hvp: v and out must hold n = %d entries", n);
  for (int i = 0; i < n; i++) out[i] = NULL;
  cg_status st = check_scalar_fn("cg_hvp", f, x, n);
  if (st == CG_OK) st = check_primals("cg_hvp", x, v, n);
  scalar_fn c = {"cg_hvp", f, user};
  recording r;
  if (st == CG_OK) st = record("cg_hvp", gradient_of, &c, x, n, n, &r);
  if (st != CG_OK) return st;
  st = walk(&r, v, out);
  for (int i = 0; i < n && st == CG_OK; i++) cg__scope_adopt(out[i]);
  recording_free(&r);
  return st;
}

/* Column j of the Hessian (H e_j, shaped like x) for every j, joined as [size, size]. */
static cg_tensor *hessian_columns(const recording *r, cg_tensor *x)
{
  int64_t size = x->size, column_shape[2] = {size, 1};
  if (size > (int64_t)1 << 20) {
    cg_set_error(CG_ENOMEM, "cg_hessian: x has %lld elements: the Hessian would have their square",
                 (long long)size);
    return NULL;
  }
  cg_tensor **columns = cg__calloc((size_t)size, sizeof *columns);
  if (!columns) return NULL;
  cg_status st = CG_OK;
  for (int64_t j = 0; j < size && st == CG_OK; j++) {
    cg_tensor *e = cg_zeros_like(x), *hv = NULL; /* e: the basis vector e_j */
    if (!e) st = cg_last_status();
    else {
      cg__store(e->dtype, e->data, j, 1.0);
      st = walk(r, &e, &hv);
    }
    if (st == CG_OK && !(columns[j] = cg_reshape(hv, 2, column_shape))) st = cg_last_status();
    cg_release(hv); /* the scope holds the column */
  }
  cg_tensor *h = st == CG_OK ? cg_concat(columns, (int)size, 1) : NULL;
  free(columns);
  return h;
}

cg_tensor *cg_hessian(cg_fn f, void *user, cg_tensor *x)
{
  char xs[160];
  cg_tensor *xv[1] = {x};
  if (check_scalar_fn("cg_hessian", f, xv, 1) != CG_OK || check_primals("cg_hessian", xv, NULL, 1) != CG_OK)
    return NULL;
  if (2 * x->ndim > CG_MAX_DIMS) {
    cg_set_error(CG_ESHAPE, "cg_hessian: x is %s: the Hessian would have rank %d (> %d)",
                 cg_shape_str(x, xs, sizeof xs), 2 * x->ndim, CG_MAX_DIMS);
    return NULL;
  }
  int64_t shape[CG_MAX_DIMS];
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
  memcpy(shape + x->ndim, x->shape, (size_t)x->ndim * sizeof *shape);
  if (x->size == 0) return cg_zeros(x->dtype, 2 * x->ndim, shape);
  scalar_fn c = {"cg_hessian", f, user};
  recording r;
  if (record("cg_hessian", gradient_of, &c, xv, 1, 1, &r) != CG_OK) return NULL;
  cg_scope scope = cg_scope_begin();
  cg_tensor *h = scope < 0 ? NULL : cg_retain(cg_reshape(hessian_columns(&r, x), 2 * x->ndim, shape));
  if (scope >= 0) cg_scope_end(scope);
  recording_free(&r);
  cg__scope_adopt(h);
  return h;
}

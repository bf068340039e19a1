/* rule_check.c - check on register: when on (cg_set_check_gradients or CG_CHECK_GRADIENTS=1),
 * the first run of each registered gradient is verified with cg_gradcheck, and the first run
 * of each registered JVP rule against central differences along a random tangent, at the op's
 * own inputs (in float64 where the op takes it), through the same rule, before its result is
 * used. An op that cannot be evaluated there gives no verdict and leaves no error. */
#include "rules.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cg__rule_checks = -1; /* -1: not yet read from the environment */

void cg_set_check_gradients(int on) { __atomic_store_n(&cg__rule_checks, on != 0, __ATOMIC_RELAXED); }

static bool check_enabled(void)
{
  int e = __atomic_load_n(&cg__rule_checks, __ATOMIC_RELAXED);
  if (e < 0) {
    const char *v = getenv("CG_CHECK_GRADIENTS");
    e = v && *v && strcmp(v, "0") != 0;
    __atomic_store_n(&cg__rule_checks, e, __ATOMIC_RELAXED);
  }
  return e;
}

/* The op of node n applied to x; several outputs are summed into one scalar each. */
static cg_tensor *apply_op(cg_tensor *const *x, int nx, void *user)
{
  const cg_node *n = user;
  cg_tensor *out[CG_MAX_OUTPUTS];
  int n_out = 0;
  if (cg_execute(n->def, x, nx, n->attrs, out, &n_out) != CG_OK) return NULL;
  if (n_out == 1) return out[0];
  cg_tensor *total = NULL;
  for (int o = 0; o < n_out; o++) {
    if (!cg_dtype_is_float(out[o]->dtype)) continue;
    cg_tensor *s = cg_mul(cg_sum(out[o], NULL, 0, 0), cg_scalar_like(out[o], 1.0 + o));
    total = total ? cg_add(total, s) : s;
  }
  return total;
}

/* Input i as the check feeds it: a copy of its values (f64 for float inputs when wide). */
static cg_tensor *probe_input(const cg_tensor *t, bool wide, uint64_t seed)
{
  int64_t shape[CG_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d] < 0 ? 2 : t->shape[d];
  cg_dtype d = cg_dtype_is_float(t->dtype) && wide ? CG_F64 : t->dtype;
  if (t->graph) /* a graph being built has no values yet */
    return cg_dtype_is_float(d) ? cg_random_uniform(d, t->ndim, shape, 0.1, 1.0, seed)
                                : cg_zeros(d, t->ndim, shape);
  cg_tensor *c = cg_zeros(d, t->ndim, shape);
  for (int64_t i = 0; c && i < t->size; i++) cg__store(d, c->data, i, cg__load(t->dtype, t->data, i));
  return c;
}

/* ======================================================================================
 * Running a check: eagerly, in its own scope; a failure that is not a verdict is forgotten
 * ==================================================================================== */

typedef struct {
  cg_graph *graph;
  cg_scope scope;
  cg_status status; /* the thread's error state before the check */
  char message[sizeof ((cg_thread_state *)0)->message];
} check_frame;

static void frame_begin(check_frame *f)
{
  cg_thread_state *ts = cg__tls();
  f->graph = ts->graph;
  ts->graph = NULL; /* the check runs eagerly, even while a graph's gradients are built */
  f->status = ts->status;
  memcpy(f->message, ts->message, sizeof f->message);
  f->scope = cg_scope_begin();
}

/* CG_ECHECK for a mismatch, else CG_OK with the thread's error state as it was before the
 * check: a pass, or an op that refused the probe inputs, which says nothing about the rule. */
static cg_status frame_end(check_frame *f, cg_status st)
{
  cg_thread_state *ts = cg__tls();
  if (f->scope >= 0) cg_scope_end(f->scope);
  ts->graph = f->graph;
  if (st == CG_ECHECK) return st;
  ts->status = f->status;
  memcpy(ts->message, f->message, sizeof ts->message);
  return CG_OK;
}

/* ======================================================================================
 * Gradients: cg_gradcheck through the rule
 * ==================================================================================== */

/* Float input x moved by a random amount of size jitter (none when 0). */
static cg_tensor *jittered(cg_tensor *x, double jitter, uint64_t seed)
{
  if (!x || jitter == 0 || !cg_dtype_is_float(x->dtype)) return x;
  return cg_add(x, cg_random_normal(x->dtype, x->ndim, x->shape, 0, jitter, seed));
}

static cg_status run_check(const cg_node *n, cg_grad_entry *e, bool wide, double jitter,
                           cg_gradcheck_report *r)
{
  cg_tensor **x = cg__malloc((size_t)(n->n_in ? n->n_in : 1) * sizeof *x);
  if (!x) return CG_ENOMEM;
  cg_status st = CG_OK;
  for (int i = 0; i < n->n_in && st == CG_OK; i++)
    if (!(x[i] = jittered(probe_input(n->in[i], wide, 7 + (uint64_t)i), jitter, 31 + (uint64_t)i)))
      st = cg_last_status();
  if (st == CG_OK && (st = cg_gradient_override_push(n->type, e->name)) == CG_OK) {
    st = cg_gradcheck(apply_op, (void *)n, x, n->n_in, NULL, r);
    cg_gradient_override_pop();
  }
  free(x);
  return st;
}

cg_status cg__check_rule_once_slow(const cg_node *n, cg_grad_entry *e)
{
  /* an op that cannot run alone (a traced function's call, whose gradient is its graph's own
     symbolic gradient) is not checked */
  if (!check_enabled() || !n->def || !n->def->infer || !n->def->run) return CG_OK;
  if (__atomic_exchange_n(&e->checked, 1, __ATOMIC_ACQ_REL)) return CG_OK;
  check_frame f;
  frame_begin(&f);
  cg_gradcheck_report r = {0};
  bool wide = true;
  cg_status st = run_check(n, e, wide, 0, &r);
  if (st != CG_OK && st != CG_ECHECK) st = run_check(n, e, wide = false, 0, &r); /* the op may not take f64 */
  /* A mismatch must hold off kinks too: at ReLU's 0 or tied maxima (MaxPool2D after ReLU)
     central differences average two slopes. Inputs moved by 1e-4 leave them (step 1e-6). */
  if (st == CG_ECHECK && wide) st = run_check(n, e, true, 1e-4, &r);
  if (frame_end(&f, st) == CG_ECHECK)
    return cg_set_error(CG_ECHECK, "check on register: the gradient '%s' of %s disagrees with central "
                                   "differences: %s", e->name, n->type, r.message);
  return CG_OK;
}

/* ======================================================================================
 * JVP rules: J v through the rule (cg_jvp over the op alone) against central differences
 * (f(x + h v) - f(x - h v)) / 2h, output element by element, at the node's inputs and a
 * seeded random tangent v, with gradcheck's step and tolerances for the dtype computed in.
 * ==================================================================================== */

typedef struct {
  const cg_node *n;
  cg_tensor **x, **v, **shifted; /* probe inputs; tangents (NULL: integer input); scratch */
  cg_tensor *y[CG_MAX_OUTPUTS];  /* f(x)                                                 */
  cg_tensor *jv[CG_MAX_OUTPUTS]; /* J v through the rule (NULL: integer output)           */
  double eps, atol, rtol;
} jvp_probe;

typedef struct {
  int output;
  int64_t index;
  double rule, numeric, score; /* score > 1: outside atol + rtol * |numeric| */
  double atol, rtol;
} jvp_worst;

/* Every output of node n's op at x (the function cg_jvp differentiates). */
static cg_status apply_op_all(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  const cg_node *n = user;
  cg_tensor *out[CG_MAX_OUTPUTS];
  int n_out = 0;
  cg_status st = cg_execute(n->def, x, nx, n->attrs, out, &n_out);
  if (st == CG_OK && n_out != ny)
    return cg_set_error(CG_EUSER, "%s: gave %d outputs at the probe inputs, not %d", n->type, n_out, ny);
  for (int o = 0; o < ny && st == CG_OK; o++) y[o] = out[o];
  return st;
}

/* f(x + step v) into out (n->n_out entries). */
static cg_status apply_shifted(jvp_probe *p, double step, cg_tensor **out)
{
  const cg_node *n = p->n;
  for (int i = 0; i < n->n_in; i++)
    p->shifted[i] = p->v[i] ? cg_add(p->x[i], cg_mul(p->v[i], cg_scalar_like(p->v[i], step))) : p->x[i];
  int n_out = 0;
  cg_status st = cg_execute(n->def, p->shifted, n->n_in, n->attrs, out, &n_out);
  if (st == CG_OK && n_out != n->n_out)
    return cg_set_error(CG_EUSER, "%s: gave %d outputs at the probe inputs, not %d", n->type, n_out, n->n_out);
  return st;
}

/* J v through the rule. An override on this thread would send the op to the fallback (forward
 * mode follows overrides), so the op is mapped to its own gradient while it is recorded. */
static cg_status rule_tangents(jvp_probe *p)
{
  const cg_node *n = p->n;
  cg_status st = cg_gradient_override_push(n->type, n->type);
  if (st != CG_OK) return st;
  st = cg_jvp(apply_op_all, (void *)n, p->x, p->v, n->n_in, p->y, p->jv, n->n_out);
  cg_gradient_override_pop();
  return st;
}

/* gradcheck's step and tolerances: f64's when every float probe input and output is f64. */
static cg_status choose_tolerances(jvp_probe *p, bool wide)
{
  bool narrow = false;
  for (int i = 0; i < p->n->n_in; i++) narrow |= p->v[i] && p->v[i]->dtype != CG_F64;
  for (int o = 0; o < p->n->n_out; o++) narrow |= p->jv[o] && p->jv[o]->dtype != CG_F64;
  if (narrow && wide) /* an output cast down: the f64 step would drown in its rounding */
    return cg_set_error(CG_EDTYPE, "%s: not float64 throughout at the probe inputs", p->n->type);
  p->eps = narrow ? 1e-3 : 1e-6;
  p->atol = narrow ? 1e-2 : 1e-5;
  p->rtol = narrow ? 1e-2 : 1e-3;
  return CG_OK;
}

/* Output o, element by element. Where the one-sided differences disagree, f has a kink
 * along v (ReLU at 0, tied maxima): no single derivative to compare, so no verdict there. */
static void compare_output(const jvp_probe *p, int o, const cg_tensor *up, const cg_tensor *down,
                           jvp_worst *w)
{
  const cg_tensor *jv = p->jv[o], *y = p->y[o];
  for (int64_t k = 0; k < jv->size; k++) {
    double f_up = cg__load(up->dtype, up->data, k), f_down = cg__load(down->dtype, down->data, k);
    double f0 = cg__load(y->dtype, y->data, k), a = cg__load(jv->dtype, jv->data, k);
    double numeric = (f_up - f_down) / (2 * p->eps), bound = p->atol + p->rtol * fabs(numeric);
    if (!isfinite(numeric) || fabs((f_up - f0) - (f0 - f_down)) / p->eps > bound) continue;
    double diff = fabs(a - numeric), score = isnan(diff) ? INFINITY : diff / bound;
    if (score > w->score) *w = (jvp_worst){o, k, a, numeric, score, p->atol, p->rtol};
  }
}

static cg_status compare_tangents(jvp_probe *p, jvp_worst *w)
{
  cg_tensor *up[CG_MAX_OUTPUTS], *down[CG_MAX_OUTPUTS];
  cg_status st = apply_shifted(p, p->eps, up);
  if (st == CG_OK) st = apply_shifted(p, -p->eps, down);
  for (int o = 0; o < p->n->n_out && st == CG_OK; o++)
    if (p->jv[o]) compare_output(p, o, up[o], down[o], w);
  return st == CG_OK && w->score > 1 ? CG_ECHECK : st;
}

static cg_status run_jvp_check(const cg_node *n, bool wide, jvp_worst *w)
{
  jvp_probe p = {.n = n};
  p.x = cg__calloc((size_t)n->n_in + 1, 3 * sizeof *p.x);
  if (!p.x) return CG_ENOMEM;
  p.v = p.x + n->n_in + 1;
  p.shifted = p.v + n->n_in + 1;
  *w = (jvp_worst){0};
  cg_status st = CG_OK;
  for (int i = 0; i < n->n_in && st == CG_OK; i++) {
    cg_tensor *x = p.x[i] = probe_input(n->in[i], wide, 7 + (uint64_t)i);
    if (x && cg_dtype_is_float(x->dtype))
      p.v[i] = cg_random_normal(x->dtype, x->ndim, x->shape, 0, 1, 101 + (uint64_t)i);
    if (!x || (cg_dtype_is_float(x->dtype) && !p.v[i])) st = cg_last_status();
  }
  if (st == CG_OK) st = rule_tangents(&p);
  if (st == CG_OK) st = choose_tolerances(&p, wide);
  if (st == CG_OK) st = compare_tangents(&p, w);
  free(p.x);
  return st;
}

cg_status cg__check_jvp_once(const cg_node *n, int *checked)
{
  if (!check_enabled() || (n->def->flags & CG_OP_STATEFUL) || /* f(x + hv), f(x - hv) may differ */
      __atomic_exchange_n(checked, 1, __ATOMIC_ACQ_REL))
    return CG_OK;
  check_frame f;
  frame_begin(&f);
  jvp_worst w;
  cg_status st = run_jvp_check(n, true, &w);
  if (st != CG_OK && st != CG_ECHECK) st = run_jvp_check(n, false, &w); /* the op may not take f64 */
  if (frame_end(&f, st) == CG_ECHECK)
    return cg_set_error(CG_ECHECK, "check on register: the JVP rule of %s disagrees with central "
                                   "differences along a random tangent: output %d, element %lld: "
                                   "the rule gives %.9g, central differences give %.9g (beyond atol %.0e + "
                                   "rtol %.0e * |numeric|)", n->type, w.output, (long long)w.index,
                        w.rule, w.numeric, w.atol, w.rtol);
  return CG_OK;
}

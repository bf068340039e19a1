/* rule_check.c - check on register: when on (cg_set_check_gradients or CG_CHECK_GRADIENTS=1),
 * the first run of each registered gradient is verified with cg_gradcheck at the op's own
 * inputs (in float64 where the op takes it), through the same rule, before its result is used. */
#include "rules.h"
#include <stdlib.h>
#include <string.h>

static int enabled = -1; /* -1: not yet read from the environment */

void cg_set_check_gradients(int on) { __atomic_store_n(&enabled, on != 0, __ATOMIC_RELAXED); }

static bool check_enabled(void)
{
  int e = __atomic_load_n(&enabled, __ATOMIC_RELAXED);
  if (e < 0) {
    const char *v = getenv("CG_CHECK_GRADIENTS");
    e = v && *v && strcmp(v, "0") != 0;
    __atomic_store_n(&enabled, e, __ATOMIC_RELAXED);
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

static cg_status run_check(const cg_node *n, cg_grad_entry *e, bool wide, cg_gradcheck_report *r)
{
  cg_tensor **x = cg__malloc((size_t)(n->n_in ? n->n_in : 1) * sizeof *x);
  if (!x) return CG_ENOMEM;
  cg_status st = CG_OK;
  for (int i = 0; i < n->n_in && st == CG_OK; i++)
    if (!(x[i] = probe_input(n->in[i], wide, 7 + (uint64_t)i))) st = cg_last_status();
  if (st == CG_OK && (st = cg_gradient_override_push(n->type, e->name)) == CG_OK) {
    st = cg_gradcheck(apply_op, (void *)n, x, n->n_in, NULL, r);
    cg_gradient_override_pop();
  }
  free(x);
  return st;
}

cg_status cg__check_rule_once(const cg_node *n, cg_grad_entry *e)
{
  if (!check_enabled() || __atomic_exchange_n(&e->checked, 1, __ATOMIC_ACQ_REL)) return CG_OK;
  cg_thread_state *ts = cg__tls();
  cg_graph *graph = ts->graph;
  ts->graph = NULL; /* the check runs eagerly, even while a graph's gradients are built */
  cg_status saved = ts->status;
  cg_gradcheck_report r = {0};
  cg_scope s = cg_scope_begin();
  cg_status st = run_check(n, e, true, &r);
  if (st != CG_OK && st != CG_ECHECK) st = run_check(n, e, false, &r); /* the op may not take f64 */
  cg_scope_end(s);
  ts->graph = graph;
  if (st == CG_ECHECK)
    return cg_set_error(CG_ECHECK, "check on register: the gradient '%s' of %s disagrees with central "
                                   "differences: %s", e->name, n->type, r.message);
  if (st != CG_OK) { /* cannot be checked here (the op refuses these inputs): not a verdict */
    ts->status = saved;
    if (saved == CG_OK) ts->message[0] = '\0';
  }
  return CG_OK;
}

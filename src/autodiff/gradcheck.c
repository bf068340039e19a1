/* gradcheck.c - gradient checking (tf.test.compute_gradient): the autodiff Jacobian against
 * central differences, a comparison that reports the worst element in words, and a
 * second-order check through a Hessian-vector-product function. */
#include "node.h"
#include "guard.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CG_F64P_SET(t, i, v) (((double *)(t)->data)[i] = (v))
#define CG_F64P_GET(t, i) (((const double *)(t)->data)[i])

static cg_tensor *copy_owned(const cg_tensor *t)
{
  cg_tensor *c = cg__tensor_new(t->dtype, t->ndim, t->shape);
  if (c) memcpy(c->data, t->data, (size_t)t->size * cg_dtype_size(t->dtype));
  return c;
}

static cg_tensor *jacobian_matrix(const cg_tensor *y, const cg_tensor *x)
{
  int64_t shape[2] = {y->size, x->size};
  cg_tensor *j = cg__tensor_new(CG_F64, 2, shape);
  if (j) memset(j->data, 0, (size_t)(y->size * x->size) * sizeof(double));
  return j;
}

/* y = fn(x) as an owned tensor, evaluated in its own scope. */
static cg_tensor *evaluate(cg_fn fn, void *user, cg_tensor *const *x, int n)
{
  cg_scope s = cg_scope_begin();
  cg_callback_guard guard = cg__guard_begin();
  cg_tensor *y = fn(x, n, user);
  if (cg__guard_end(&guard, "gradient check: the function", cg_status_of(y)) != CG_OK) y = NULL;
  if (!y && cg_last_status() == CG_OK) cg_set_error(CG_EUSER, "gradient check: the function returned NULL");
  if (y && cg__is_symbolic(y)) {
    cg_set_error(CG_EUSER, "gradient check: the function returned a symbolic graph tensor (it must "
                           "compute values eagerly)");
    y = NULL;
  }
  cg_tensor *owned = y ? copy_owned(y) : NULL;
  cg_scope_end(s);
  return owned;
}

static cg_status theoretical_jacobians(cg_fn fn, void *user, cg_tensor *const *x, int n, cg_tensor **jt)
{
  cg_scope s = cg_scope_begin();
  cg_status st = CG_OK;
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  if (!tape) {
    cg_scope_end(s);
    return cg_last_status();
  }
  for (int i = 0; i < n; i++) cg_tape_watch(tape, x[i]);
  cg_callback_guard guard = cg__guard_begin();
  cg_tensor *y = fn(x, n, user);
  if (cg__guard_end(&guard, "gradient check: the function", cg_status_of(y)) != CG_OK) y = NULL;
  cg_tape_end(tape);
  if (!y) st = cg_last_status() != CG_OK ? cg_last_status()
                                         : cg_set_error(CG_EUSER, "gradient check: the function returned NULL");
  for (int i = 0; i < n && st == CG_OK; i++)
    if (cg_dtype_is_float(x[i]->dtype) && !(jt[i] = jacobian_matrix(y, x[i]))) st = cg_last_status();
  cg_tensor **g = st == CG_OK ? cg__calloc((size_t)n, sizeof *g) : NULL;
  if (st == CG_OK && !g) st = CG_ENOMEM;
  for (int64_t r = 0; st == CG_OK && r < y->size; r++) {
    cg_scope inner = cg_scope_begin();
    cg_tensor *seed = cg_zeros_like(y);
    if (!seed) st = cg_last_status();
    else {
      cg__store(seed->dtype, seed->data, r, 1.0);
      cg_grad_opts opts = {.output_gradient = seed, .unconnected = CG_UNCONNECTED_ZERO};
      st = cg_tape_gradient(tape, y, x, n, g, &opts);
    }
    for (int i = 0; i < n && st == CG_OK; i++)
      if (jt[i] && g[i])
        for (int64_t k = 0; k < x[i]->size; k++)
          CG_F64P_SET(jt[i], r * x[i]->size + k, cg__load(g[i]->dtype, g[i]->data, k));
    cg_scope_end(inner);
  }
  free(g);
  cg_tape_free(tape);
  cg_scope_end(s);
  return st;
}

static cg_status numerical_jacobians(cg_fn fn, void *user, cg_tensor *const *x, int n, double eps,
                                     int64_t y_size, cg_tensor **jn)
{
  cg_tensor **xs = cg__malloc((size_t)n * sizeof *xs);
  if (!xs) return CG_ENOMEM;
  memcpy(xs, x, (size_t)n * sizeof *xs);
  cg_status st = CG_OK;
  for (int i = 0; i < n && st == CG_OK; i++) {
    if (!cg_dtype_is_float(x[i]->dtype)) continue;
    cg_tensor *xi = copy_owned(x[i]);
    int64_t shape[2] = {y_size, x[i]->size};
    cg_tensor *jac = xi ? cg__tensor_new(CG_F64, 2, shape) : NULL;
    if (!xi || !jac) st = cg_last_status();
    xs[i] = xi;
    for (int64_t k = 0; st == CG_OK && k < x[i]->size; k++) {
      double v = cg__load(xi->dtype, xi->data, k);
      cg__store(xi->dtype, xi->data, k, v + eps);
      double step_up = cg__load(xi->dtype, xi->data, k) - v; /* the step as rounded in f32 */
      cg_tensor *up = evaluate(fn, user, xs, n);
      cg__store(xi->dtype, xi->data, k, v - eps);
      double step_down = v - cg__load(xi->dtype, xi->data, k);
      cg_tensor *down = evaluate(fn, user, xs, n);
      cg__store(xi->dtype, xi->data, k, v);
      if (!up || !down) st = cg_last_status();
      else if (up->size != y_size || down->size != y_size)
        st = cg_set_error(CG_EUSER, "gradient check: the function's output size changed under perturbation");
      for (int64_t r = 0; st == CG_OK && r < y_size; r++)
        CG_F64P_SET(jac, r * x[i]->size + k,
                    (cg__load(up->dtype, up->data, r) - cg__load(down->dtype, down->data, r)) /
                        (step_up + step_down));
      cg_release(up);
      cg_release(down);
    }
    xs[i] = x[i];
    cg_release(xi);
    if (st == CG_OK) jn[i] = jac;
    else cg_release(jac);
  }
  free(xs);
  return st;
}

cg_status cg_compute_gradient(cg_fn fn, void *user, cg_tensor *const *x, int n, double eps,
                              cg_tensor **theoretical, cg_tensor **numerical)
{
  if (!fn || n < 1 || !x || !theoretical || !numerical)
    return cg_set_error(CG_EINVAL, "cg_compute_gradient: need a function, n >= 1 inputs and two output arrays");
  for (int i = 0; i < n; i++) {
    theoretical[i] = numerical[i] = NULL;
    if (!x[i]) return cg__null_input("cg_compute_gradient", i);
  }
  if (eps <= 0) eps = 1e-6;
  cg_tensor *y = evaluate(fn, user, x, n);
  if (!y) return cg_last_status();
  int64_t y_size = y->size;
  cg_release(y);
  cg_status st = theoretical_jacobians(fn, user, x, n, theoretical);
  if (st == CG_OK) st = numerical_jacobians(fn, user, x, n, eps, y_size, numerical);
  for (int i = 0; i < n; i++) {
    if (st != CG_OK) {
      cg_release(theoretical[i]);
      cg_release(numerical[i]);
      theoretical[i] = numerical[i] = NULL;
    } else {
      cg__scope_adopt(theoretical[i]);
      cg__scope_adopt(numerical[i]);
    }
  }
  return st;
}

/* --- comparing ------------------------------------------------------------------------------- */

static bool compare(cg_tensor *const *jt, cg_tensor *const *jn, int n, double atol, double rtol,
                    int order, cg_gradcheck_report *r)
{
  double worst = -1;
  bool ok = true;
  for (int i = 0; i < n; i++) {
    if (!jt[i] || !jn[i]) continue;
    int64_t cols = jt[i]->shape[1];
    for (int64_t e = 0; e < jt[i]->size; e++) {
      double a = CG_F64P_GET(jt[i], e), nu = CG_F64P_GET(jn[i], e);
      double bound = atol + rtol * fabs(nu), diff = fabs(a - nu);
      double score = isnan(diff) ? INFINITY : diff / bound;
      if (!(diff <= bound)) ok = false;
      if (score > worst) {
        worst = score;
        *r = (cg_gradcheck_report){.order = order, .input = i, .out_index = e / cols,
                                   .in_index = e % cols, .analytic = a, .numeric = nu,
                                   .error = diff};
      }
    }
  }
  r->ok = ok;
  return ok;
}

static void describe(cg_gradcheck_report *r, double atol, double rtol)
{
  const char *what = r->order == 2 ? "second-order gradient check" : "gradient check";
  if (r->ok)
    snprintf(r->message, sizeof r->message,
             "%s passed; worst element: input %d, element %lld, output element %lld: autodiff %.9g, "
             "central differences %.9g", what, r->input, (long long)r->in_index,
             (long long)r->out_index, r->analytic, r->numeric);
  else
    snprintf(r->message, sizeof r->message,
             "%s failed at input %d, element %lld (output element %lld): autodiff gives %.9g, "
             "central differences give %.9g; |difference| %.3g exceeds atol %.0e + rtol %.0e * |numeric|%s",
             what, r->input, (long long)r->in_index, (long long)r->out_index, r->analytic,
             r->numeric, r->error, atol, rtol,
             fabs(r->analytic + r->numeric) <= 1e-3 * fabs(r->numeric) && r->numeric != 0
                 ? " (the sign is flipped)" : "");
}

static cg_status check_first_order(cg_fn fn, void *user, cg_tensor *const *x, int n, double eps,
                                   double atol, double rtol, int order, cg_gradcheck_report *r)
{
  cg_scope s = cg_scope_begin();
  cg_tensor **jt = cg__calloc((size_t)n, sizeof *jt), **jn = cg__calloc((size_t)n, sizeof *jn);
  cg_status st = jt && jn ? cg_compute_gradient(fn, user, x, n, eps, jt, jn) : CG_ENOMEM;
  if (st == CG_OK) {
    compare(jt, jn, n, atol, rtol, order, r);
    describe(r, atol, rtol);
    if (!r->ok) st = cg_set_error(CG_ECHECK, "%s", r->message);
  }
  free(jt);
  free(jn);
  cg_scope_end(s);
  return st;
}

/* h(x) = sum_i <d<f(x), u>/dx_i, v_i>: its gradient needs f's second derivative. */
typedef struct {
  cg_fn fn;
  void *user;
  cg_tensor *u;   /* output weights                    */
  cg_tensor **v;  /* input directions (NULL: integers) */
} hvp_fn;

static cg_tensor *hvp_eval(cg_tensor *const *x, int n, void *p)
{
  hvp_fn *h = p;
  cg_tape *tape = cg_tape_begin(0);
  if (!tape) return NULL;
  for (int i = 0; i < n; i++) cg_tape_watch(tape, x[i]);
  cg_tensor *y = h->fn(x, n, h->user);
  cg_tensor *inner = cg_sum(cg_mul(y, h->u), NULL, 0, 0);
  cg_tape_end(tape);
  cg_tensor **g = cg__calloc((size_t)n, sizeof *g);
  cg_grad_opts opts = {.unconnected = CG_UNCONNECTED_ZERO};
  cg_tensor *total = NULL;
  if (inner && g && cg_tape_gradient(tape, inner, x, n, g, &opts) == CG_OK) {
    total = cg_scalar_like(inner, 0);
    for (int i = 0; i < n && total; i++)
      if (h->v[i] && g[i]) { /* inputs may differ in dtype (Cast): total keeps inner's */
        cg_tensor *term = cg_sum(cg_mul(g[i], h->v[i]), NULL, 0, 0);
        if (term && cg_tensor_dtype(term) != cg_tensor_dtype(total)) term = cg_cast(term, cg_tensor_dtype(total));
        total = cg_add(total, term);
      }
  }
  free(g);
  cg_tape_free(tape);
  return total;
}

cg_status cg_gradcheck(cg_fn fn, void *user, cg_tensor *const *x, int n,
                       const cg_gradcheck_opts *opts, cg_gradcheck_report *report)
{
  cg_gradcheck_report local;
  cg_gradcheck_report *r = report ? report : &local;
  memset(r, 0, sizeof *r);
  if (!fn || !x || n < 1) return cg_set_error(CG_EINVAL, "cg_gradcheck: need a function and n >= 1 inputs");
  for (int i = 0; i < n; i++)
    if (!x[i]) return cg__null_input("cg_gradcheck", i);
  bool f32 = false;
  for (int i = 0; i < n; i++) f32 |= x[i]->dtype == CG_F32;
  cg_gradcheck_opts o = opts ? *opts : (cg_gradcheck_opts){0};
  if (o.eps <= 0) o.eps = f32 ? 1e-3 : 1e-6;
  if (o.atol <= 0) o.atol = f32 ? 1e-2 : 1e-5;
  if (o.rtol <= 0) o.rtol = f32 ? 1e-2 : 1e-3;
  if (o.order <= 0) o.order = 1;
  if (o.order > 2) return cg_set_error(CG_EINVAL, "cg_gradcheck: order %d (1 or 2)", o.order);

  cg_status st = check_first_order(fn, user, x, n, o.eps, o.atol, o.rtol, 1, r);
  if (st != CG_OK || o.order == 1) return st;

  cg_scope s = cg_scope_begin();
  hvp_fn h = {fn, user, NULL, cg__calloc((size_t)n, sizeof(cg_tensor *))};
  cg_tensor *y = evaluate(fn, user, x, n);
  st = y && h.v ? CG_OK : cg_last_status();
  if (st == CG_OK) {
    cg__scope_adopt(y);
    h.u = cg_random_uniform(y->dtype, y->ndim, y->shape, 0.5, 1.5, o.seed + 1);
    for (int i = 0; i < n; i++)
      if (cg_dtype_is_float(x[i]->dtype))
        h.v[i] = cg_random_uniform(x[i]->dtype, x[i]->ndim, x[i]->shape, -1, 1, o.seed + 2 + (uint64_t)i);
    st = check_first_order(hvp_eval, &h, x, n, o.eps, o.atol, o.rtol, 2, r);
  }
  free(h.v);
  cg_scope_end(s);
  return st;
}

/* test_forward.c - forward mode: JVP against VJP (u . J v both ways) for every row of the
 * gradient-check table, a JVP rule for every differentiable op, forward-over-reverse
 * Hessians against reverse-over-reverse, custom jvps, gradients of linear custom ops by
 * transposition, the double-VJP fallback for ops without a rule (user ops, traced functions,
 * recomputed blocks), nesting, bad input, and the guide's snippets. */
#include "util.h"
#include "cases.h"
#include "core/internal.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Each test also checks that it leaves no tensor alive. */
static long live_at_start;
static int setup(void **state)
{
  live_at_start = cg__live_tensors();
  return cgt_setup(state);
}
static int teardown(void **state)
{
  int rc = cgt_teardown(state);
  long live = cg__live_tensors();
  if (live != live_at_start) print_error("%ld tensors leaked\n", live - live_at_start);
  return rc == 0 && live == live_at_start ? 0 : -1;
}
#define test(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static cg_tensor *vec(int n, const double *v)
{
  int64_t shape[1] = {n};
  return cgt_f64(1, shape, v);
}

static cg_tensor *normal_like(const cg_tensor *t, uint64_t seed)
{
  return cg_random_normal(CG_F64, cg_tensor_ndim(t), cg_tensor_shape(t), 0, 1, seed);
}

static double dot(cg_tensor *a, cg_tensor *b) { return cg_item(cg_sum(cg_mul(a, b), NULL, 0, 0)); }
static double abs_dot(cg_tensor *a, cg_tensor *b)
{
  return cg_item(cg_sum(cg_abs(cg_mul(a, b)), NULL, 0, 0));
}

/* ======================================================================================
 * Every op: a rule, and u . (J v) from forward mode = (J^T u) . v from a tape
 * ==================================================================================== */

static void every_differentiable_op_has_a_jvp_rule(void **state)
{
  int missing = 0;
  for (int k = 0; k < cg_op_count(); k++) {
    const cg_op_def *def = cg_op_at(k);
    if (def->flags & CG_OP_NOT_DIFFERENTIABLE) continue;
    if (!cg_has_jvp(def->name)) {
      print_error("op %s is differentiable but has no JVP rule\n", def->name);
      missing++;
    }
  }
  assert_int_equal(missing, 0);
  assert_false(cg_has_jvp("Equal")); /* not differentiable: no rule needed */
  assert_false(cg_has_jvp(NULL));
}

static cg_status row_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_grad_case_call(user, x, nx);
  return cg_status_of(y[0]);
}

/* Returns 0 when the row agrees, else prints why. */
static int check_row_jvp(const cg_grad_case *c, uint64_t seed)
{
  cg_tensor *x[4], *v[4] = {0}, *g[4], *y, *jv;
  for (int i = 0; i < c->n_in; i++) {
    x[i] = cg_grad_case_input(c, i, CG_F64, seed);
    if (cg_tensor_dtype(x[i]) == CG_F64) v[i] = normal_like(x[i], seed * 7 + (uint64_t)i);
  }
  if (cg_jvp(row_fn, (void *)c, x, v, c->n_in, &y, &jv, 1) != CG_OK) {
    print_error("%s [%s]: cg_jvp: %s\n", c->op, c->label, cg_last_error());
    return 1;
  }
  cg_tensor *u = normal_like(y, seed * 11);
  cg_tape *tape = cg_tape_begin(0);
  for (int i = 0; i < c->n_in; i++) cg_tape_watch(tape, x[i]);
  cg_tensor *y2 = cg_grad_case_call(c, x, c->n_in);
  cg_tape_end(tape);
  cg_grad_opts opts = {.output_gradient = u, .unconnected = CG_UNCONNECTED_ZERO};
  cg_status st = cg_tape_gradient(tape, y2, x, c->n_in, g, &opts);
  cg_tape_free(tape);
  if (st != CG_OK) {
    print_error("%s [%s]: tape: %s\n", c->op, c->label, cg_last_error());
    return 1;
  }
  double forward = dot(u, jv), reverse = 0, scale = abs_dot(u, jv);
  for (int i = 0; i < c->n_in; i++)
    if (v[i]) {
      reverse += dot(g[i], v[i]);
      scale += abs_dot(g[i], v[i]);
    }
  double same_y = cg_item(cg_max(cg_abs(cg_sub(y, y2)), NULL, 0, 0));
  if (fabs(forward - reverse) > 1e-10 * scale + 1e-300 || same_y != 0) {
    print_error("%s [%s]: u.(Jv) = %.17g but (J^T u).v = %.17g (terms of size %g)\n", c->op,
                c->label, forward, reverse, scale);
    return 1;
  }
  return 0;
}

static void table_jvp_matches_vjp(void **state)
{
  int n, failed = 0;
  const cg_grad_case *cases = cg_grad_cases(&n);
  for (int i = 0; i < n; i++) {
    cg_scope s = cg_scope_begin();
    failed += check_row_jvp(&cases[i], 1 + (uint64_t)i);
    cg_scope_end(s);
  }
  print_message("forward mode: %d table rows, %d failed\n", n, failed);
  assert_int_equal(failed, 0);
}

/* ======================================================================================
 * Forward-over-reverse against reverse-over-reverse
 * ==================================================================================== */

/* s(x_float) = <u, row(x)>, the row's integer inputs held fixed */
typedef struct {
  const cg_grad_case *c;
  cg_tensor *all[4], *u;
  int floats[4], n_float;
} weighted_row;

static cg_tensor *weighted_row_fn(cg_tensor *const *xf, int n, void *user)
{
  weighted_row *w = user;
  cg_tensor *x[4];
  memcpy(x, w->all, sizeof x);
  for (int k = 0; k < w->n_float; k++) x[w->floats[k]] = xf[k];
  return cg_sum(cg_mul(w->u, cg_grad_case_call(w->c, x, w->c->n_in)), NULL, 0, 0);
}

/* Hv by two nested tapes: d/dx <grad f(x), v>. */
static cg_status hvp_by_nested_tapes(cg_fn f, void *user, cg_tensor *const *x, cg_tensor *const *v,
                                     int n, cg_tensor **out)
{
  cg_tensor *g[4];
  cg_tape *outer = cg_tape_begin(0), *inner = cg_tape_begin(0);
  for (int i = 0; i < n; i++) {
    cg_tape_watch(outer, x[i]);
    cg_tape_watch(inner, x[i]);
  }
  cg_tensor *fx = f(x, n, user);
  cg_tape_end(inner);
  cg_grad_opts zero = {.unconnected = CG_UNCONNECTED_ZERO};
  cg_status st = cg_tape_gradient(inner, fx, x, n, g, &zero);
  cg_tensor *p = cg_scalar(CG_F64, 0);
  for (int i = 0; i < n && st == CG_OK; i++) p = cg_add(p, cg_sum(cg_mul(g[i], v[i]), NULL, 0, 0));
  cg_tape_end(outer);
  if (st == CG_OK) st = cg_tape_gradient(outer, p, x, n, out, &zero);
  cg_tape_free(inner);
  cg_tape_free(outer);
  return st;
}

/* max |a - b| within 1e-10 of the larger vector's size */
static bool close_vectors(cg_tensor *a, cg_tensor *b, double *err)
{
  double size = cg_item(cg_maximum(cg_max(cg_abs(a), NULL, 0, 0), cg_max(cg_abs(b), NULL, 0, 0)));
  *err = cg_item(cg_max(cg_abs(cg_sub(a, b)), NULL, 0, 0));
  return *err <= 1e-10 * size + 1e-12;
}

static int check_row_hvp(const cg_grad_case *c, uint64_t seed)
{
  weighted_row w = {.c = c};
  cg_tensor *xf[4], *v[4], *hv[4], *ref[4];
  for (int i = 0; i < c->n_in; i++) {
    w.all[i] = cg_grad_case_input(c, i, CG_F64, seed);
    if (cg_tensor_dtype(w.all[i]) != CG_F64) continue;
    xf[w.n_float] = w.all[i];
    v[w.n_float] = normal_like(w.all[i], seed * 5 + (uint64_t)i);
    w.floats[w.n_float++] = i;
  }
  w.u = normal_like(cg_grad_case_call(c, w.all, c->n_in), seed * 3);
  if (cg_hvp(weighted_row_fn, &w, xf, v, w.n_float, hv) != CG_OK ||
      hvp_by_nested_tapes(weighted_row_fn, &w, xf, v, w.n_float, ref) != CG_OK) {
    print_error("%s [%s]: %s\n", c->op, c->label, cg_last_error());
    return 1;
  }
  for (int k = 0; k < w.n_float; k++) {
    double err;
    if (!close_vectors(hv[k], ref[k], &err)) {
      print_error("%s [%s]: Hv for input %d differs from reverse-over-reverse by %g\n", c->op,
                  c->label, w.floats[k], err);
      return 1;
    }
  }
  return 0;
}

static void table_forward_over_reverse(void **state)
{
  int n, failed = 0, checked = 0;
  const cg_grad_case *cases = cg_grad_cases(&n);
  for (int i = 0; i < n; i++) {
    if (!cases[i].order2) continue;
    cg_scope s = cg_scope_begin();
    failed += check_row_hvp(&cases[i], 100 + (uint64_t)i);
    checked++;
    cg_scope_end(s);
  }
  print_message("forward-over-reverse: %d second-order rows, %d failed\n", checked, failed);
  assert_int_equal(failed, 0);
}

/* f(x) = x0^2 x1 + sin(x1): H = [[2 x1, 2 x0], [2 x0, -sin x1]] */
static cg_tensor *known_f(cg_tensor *const *x, int n, void *user)
{
  int64_t b0[1] = {0}, b1[1] = {1}, one[1] = {1};
  cg_tensor *x0 = cg_slice(x[0], b0, one), *x1 = cg_slice(x[0], b1, one);
  return cg_sum(cg_add(cg_mul(cg_square(x0), x1), cg_sin(x1)), NULL, 0, 0);
}

static void hessian_of_a_known_function(void **state)
{
  cg_tensor *x = vec(2, (double[]){0.5, 1.25});
  cg_tensor *h = cg_hessian(known_f, NULL, x);
  int64_t s22[2] = {2, 2};
  assert_tensor(h, CG_F64, 2, s22, ((double[]){2.5, 1.0, 1.0, -sin(1.25)}), 1e-14);
  cg_tensor *v = vec(2, (double[]){1, -2}), *hv;
  assert_int_equal(cg_hvp(known_f, NULL, &x, &v, 1, &hv), CG_OK);
  int64_t s2[1] = {2};
  assert_tensor(hv, CG_F64, 1, s2, ((double[]){2.5 - 2.0, 1.0 + 2 * sin(1.25)}), 1e-14);
}

/* A few functions whose Hessians mix many rules: a tanh layer, a softmax loss, a conv. */
static cg_tensor *mlp_f(cg_tensor *const *x, int n, void *user)
{
  int64_t s[2] = {2, 3};
  cg_tensor *w = cg_reshape(x[0], 2, s);
  cg_tensor *in = cg_random_normal(CG_F64, 2, (int64_t[]){4, 2}, 0, 1, 9);
  cg_tensor *h = cg_tanh(cg_matmul(in, w));
  return cg_sum(cg_mul(h, cg_softplus(h)), NULL, 0, 0);
}
static cg_tensor *xent_f(cg_tensor *const *x, int n, void *user)
{
  int64_t s[2] = {2, 3};
  cg_tensor *logits = cg_reshape(x[0], 2, s);
  cg_tensor *labels = cg_softmax(cg_random_normal(CG_F64, 2, s, 0, 1, 4));
  return cg_add(cg_mean(cg_softmax_cross_entropy_with_logits(labels, logits), NULL, 0, 0),
                cg_logsumexp(cg_mul(logits, logits), NULL, 0, 0));
}
static cg_tensor *conv_f(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *img = cg_reshape(x[0], 4, (int64_t[]){1, 3, 2, 1});
  cg_tensor *filter = cg_random_normal(CG_F64, 4, (int64_t[]){2, 2, 1, 2}, 0, 1, 5);
  cg_tensor *y = cg_conv2d(img, filter, NULL, CG_PAD_SAME, NULL);
  return cg_sum(cg_sigmoid(cg_avg_pool2d(y, (int[]){2, 1}, NULL, CG_PAD_VALID)), NULL, 0, 0);
}

static void hessian_matches_reverse_over_reverse(void **state)
{
  cg_fn fns[] = {mlp_f, xent_f, conv_f};
  for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++) {
    cg_tensor *x = cg_random_uniform(CG_F64, 1, (int64_t[]){6}, -1, 1, 20 + k), *g;
    cg_tensor *h = cg_hessian(fns[k], NULL, x);
    assert_non_null(h);
    cg_tape *outer = cg_tape_begin(CG_TAPE_PERSISTENT), *inner = cg_tape_begin(0);
    cg_tape_watch(outer, x);
    cg_tape_watch(inner, x);
    cg_tensor *fx = fns[k](&x, 1, NULL);
    cg_tape_end(inner);
    assert_int_equal(cg_tape_gradient(inner, fx, &x, 1, &g, NULL), CG_OK);
    cg_tape_end(outer);
    cg_tensor *ref = cg_tape_jacobian(outer, g, x); /* [i, j] = d g_i / d x_j */
    cg_tape_free(inner);
    cg_tape_free(outer);
    double err;
    assert_true(close_vectors(h, ref, &err));
    assert_true(close_vectors(h, cg_transpose(h, NULL, 0), &err)); /* symmetric */
  }
}

/* A small CNN with max and average pooling: f(x, w) = sum(tanh(pool(conv(x, w)))^2). Its
 * gradient holds MaxPool2DGrad, whose gradient is MaxPool2DGradGrad; a function holding f's
 * gradient (a gradient penalty) needs the derivative of that too: third order. */
static cg_tensor *pooled_cnn(cg_tensor *const *x, int n, void *user)
{
  const int s1[2] = {1, 1}, k2[2] = {2, 2};
  cg_tensor *c = cg_conv2d(x[0], x[1], s1, CG_PAD_SAME, NULL);
  cg_tensor *p = cg_add(cg_max_pool2d(c, k2, k2, CG_PAD_VALID), cg_avg_pool2d(c, k2, k2, CG_PAD_VALID));
  return cg_sum(cg_square(cg_tanh(p)), NULL, 0, 0);
}

/* |grad f(x, w)|^2 (f's gradient taken on a tape inside) */
static cg_tensor *gradient_penalty(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *g[2], *total = NULL;
  cg_tape *tape = cg_tape_begin(0);
  for (int i = 0; i < n; i++) cg_tape_watch(tape, x[i]);
  cg_tensor *fx = pooled_cnn(x, n, user);
  cg_tape_end(tape);
  if (cg_tape_gradient(tape, fx, x, n, g, NULL) == CG_OK)
    total = cg_add(cg_sum(cg_square(g[0]), NULL, 0, 0), cg_sum(cg_square(g[1]), NULL, 0, 0));
  cg_tape_free(tape);
  return total;
}

/* pooled_cnn in the filter alone; user: the image */
static cg_tensor *filter_only(cg_tensor *const *w, int n, void *user)
{
  cg_tensor *x[2] = {user, w[0]};
  return pooled_cnn(x, 2, NULL);
}

/* Hv by central differences of tape gradients: (grad f(x + hv) - grad f(x - hv)) / 2h. */
static void hvp_by_differences(cg_fn f, cg_tensor *const *x, cg_tensor *const *v, cg_tensor **out)
{
  const double h = 1e-5;
  cg_tensor *up[2], *down[2], *gu[2], *gd[2];
  for (int i = 0; i < 2; i++) {
    up[i] = cg_add(x[i], cg_mul(v[i], cg_scalar(CG_F64, h)));
    down[i] = cg_sub(x[i], cg_mul(v[i], cg_scalar(CG_F64, h)));
  }
  cg_tape *tu = cg_tape_begin(0), *td = cg_tape_begin(0);
  for (int i = 0; i < 2; i++) {
    cg_tape_watch(tu, up[i]);
    cg_tape_watch(td, down[i]);
  }
  cg_tensor *fu = f(up, 2, NULL), *fd = f(down, 2, NULL);
  cg_tape_end(td);
  cg_tape_end(tu);
  assert_int_equal(cg_tape_gradient(tu, fu, up, 2, gu, NULL), CG_OK);
  assert_int_equal(cg_tape_gradient(td, fd, down, 2, gd, NULL), CG_OK);
  cg_tape_free(td);
  cg_tape_free(tu);
  for (int i = 0; i < 2; i++) out[i] = cg_div(cg_sub(gu[i], gd[i]), cg_scalar(CG_F64, 2 * h));
}

static double max_abs_diff(cg_tensor *a, cg_tensor *b)
{
  return cg_item(cg_max(cg_abs(cg_sub(a, b)), NULL, 0, 0));
}

static void hvp_through_pooling(void **state)
{
  cg_tensor *x[2] = {cg_random_normal(CG_F64, 4, (int64_t[]){2, 4, 4, 1}, 0, 1, 61),
                     cg_random_normal(CG_F64, 4, (int64_t[]){3, 3, 1, 2}, 0, 0.5, 62)};
  cg_tensor *v[2] = {normal_like(x[0], 63), normal_like(x[1], 64)}, *hv[2], *ref[2], *num[2];
  cg_fn fns[2] = {pooled_cnn, gradient_penalty};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(cg_hvp(fns[k], NULL, x, v, 2, hv), CG_OK);
    assert_int_equal(hvp_by_nested_tapes(fns[k], NULL, x, v, 2, ref), CG_OK);
    hvp_by_differences(fns[k], x, v, num);
    for (int i = 0; i < 2; i++) {
      double size = cg_item(cg_max(cg_abs(ref[i]), NULL, 0, 0));
      if (max_abs_diff(hv[i], ref[i]) > 1e-9 || max_abs_diff(hv[i], num[i]) > 1e-6 * (1 + size))
        print_error("%s, input %d: forward-over-reverse differs from reverse-over-reverse by %g and "
                    "from differences by %g\n", k ? "gradient penalty" : "CNN", i,
                    max_abs_diff(hv[i], ref[i]), max_abs_diff(hv[i], num[i]));
      assert_true(max_abs_diff(hv[i], ref[i]) <= 1e-9);
      assert_true(max_abs_diff(hv[i], num[i]) <= 1e-6 * (1 + size));
    }
  }
  /* the Hessian in the filter alone, the image held fixed, against the Jacobian of a gradient */
  cg_tensor *w = x[1], *g, *h = cg_hessian(filter_only, x[0], w);
  assert_non_null(h);
  cg_tape *outer = cg_tape_begin(CG_TAPE_PERSISTENT), *inner = cg_tape_begin(0);
  cg_tape_watch(outer, w);
  cg_tape_watch(inner, w);
  cg_tensor *fw = filter_only(&w, 1, x[0]);
  cg_tape_end(inner);
  assert_int_equal(cg_tape_gradient(inner, fw, &w, 1, &g, NULL), CG_OK);
  cg_tape_end(outer);
  int64_t n = cg_tensor_size(w), nn[2] = {n, n};
  cg_tensor *ref_h = cg_tape_jacobian(outer, g, w);
  cg_tape_free(inner);
  cg_tape_free(outer);
  assert_true(max_abs_diff(cg_reshape(h, 2, nn), cg_reshape(ref_h, 2, nn)) <= 1e-9);
}

/* ======================================================================================
 * Custom gradients in forward mode
 * ==================================================================================== */

/* softplus(x) = ln(1 + e^x), with a backward and a jvp that count their calls */
static int jvp_calls, backward_calls;
static cg_status softplus_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_softplus(x[0]);
  return cg_status_of(y[0]);
}
static cg_status softplus_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  backward_calls++;
  dx[0] = cg_mul(dy[0], cg_sigmoid(cg_ctx_input(ctx, 0)));
  return cg_status_of(dx[0]);
}
static cg_status softplus_jvp(cg_ctx *ctx, cg_tensor *const *t, cg_tensor **out)
{
  jvp_calls++;
  out[0] = cg_mul(t[0], cg_sigmoid(cg_ctx_input(ctx, 0)));
  return cg_status_of(out[0]);
}
static const cg_custom_def softplus_with_jvp = {"MySoftplus", 1, 1, softplus_fwd, softplus_bwd,
                                                NULL, softplus_jvp, 0};
static const cg_custom_def softplus_without_jvp = {"MySoftplusNoJvp", 1, 1, softplus_fwd,
                                                   softplus_bwd, NULL, NULL, 0};

static cg_status call_custom(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *def)
{
  cg_tensor *z;
  cg_status st = cg_custom_gradient(def, x, &z);
  y[0] = st == CG_OK ? cg_mul(z, z) : NULL; /* something after it: tangents flow on */
  return cg_status_of(y[0]);
}

static void custom_jvp_is_used(void **state)
{
  cg_tensor *x = vec(3, (double[]){-1, 0.5, 2}), *v = vec(3, (double[]){1, 2, -1}), *y, *t;
  jvp_calls = backward_calls = 0;
  assert_int_equal(cg_jvp(call_custom, (void *)&softplus_with_jvp, &x, &v, 1, &y, &t, 1), CG_OK);
  assert_int_equal(jvp_calls, 1);
  assert_int_equal(backward_calls, 0);
  double expected[3], xs[3] = {-1, 0.5, 2}, vs[3] = {1, 2, -1};
  for (int i = 0; i < 3; i++) {
    double sp = log1p(exp(xs[i])), sg = 1 / (1 + exp(-xs[i]));
    expected[i] = 2 * sp * sg * vs[i];
  }
  int64_t s3[1] = {3};
  assert_tensor(t, CG_F64, 1, s3, expected, 1e-14);
  /* without a jvp: the same tangent by the double-VJP trick through the backward */
  assert_int_equal(cg_jvp(call_custom, (void *)&softplus_without_jvp, &x, &v, 1, &y, &t, 1), CG_OK);
  assert_int_equal(backward_calls, 1);
  assert_int_equal(jvp_calls, 1);
  assert_tensor(t, CG_F64, 1, s3, expected, 1e-14);
  /* rule accounting sees the custom jvp */
  cg_rule_stat stats[256];
  int n = cg_rule_stats(stats, 256);
  bool seen = false;
  for (int i = 0; i < n && i < 256; i++)
    seen |= stats[i].kind == CG_RULE_JVP && strcmp(stats[i].name, "MySoftplus") == 0;
  assert_true(seen);
}

/* y = A x for a fixed matrix A (saved), with only a jvp: the gradient is A^T dy */
static cg_status linear_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  cg_tensor *a = cg_ctx_user(ctx);
  y[0] = cg_squeeze(cg_matmul(a, cg_expand_dims(x[0], 1)), (int[]){1}, 1);
  return cg_status_of(y[0]);
}
static cg_status linear_jvp(cg_ctx *ctx, cg_tensor *const *t, cg_tensor **out)
{
  jvp_calls++;
  return linear_fwd(ctx, t, out);
}
static cg_tensor *apply_linear(cg_tensor *const *x, int n, void *def)
{
  cg_tensor *y;
  if (cg_custom_gradient(def, x, &y) != CG_OK) return NULL;
  return cg_sum(cg_mul(cg_sin(y), y), NULL, 0, 0); /* nonlinear after it: second order too */
}

static void linear_custom_op_gradient_by_transposition(void **state)
{
  int64_t s23[2] = {2, 3};
  cg_tensor *a = cgt_f64(2, s23, (double[]){1, -2, 0.5, 3, 0.25, -1});
  cg_custom_def def = {"LinearMap", 1, 1, linear_fwd, NULL, a, linear_jvp, CG_CUSTOM_LINEAR};
  cg_tensor *x = vec(3, (double[]){0.3, -0.7, 1.1}), *y, *dx;
  jvp_calls = 0;
  assert_gradcheck(apply_linear, &def, &x, 1, 2);
  assert_true(jvp_calls > 0);
  /* the gradient is A^T dy exactly */
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  assert_int_equal(cg_custom_gradient(&def, &x, &y), CG_OK);
  cg_tape_end(tape);
  cg_grad_opts opts = {.output_gradient = vec(2, (double[]){1, 10})};
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, &opts), CG_OK);
  cg_tape_free(tape);
  int64_t s3[1] = {3};
  assert_tensor(dx, CG_F64, 1, s3, ((double[]){31, 0.5, -9.5}), 1e-14);
  /* forward mode uses the jvp itself */
  cg_tensor *v = vec(3, (double[]){1, 0, 0}), *t;
  assert_int_equal(cg_jvp(call_custom, &def, &x, &v, 1, &y, &t, 1), CG_OK);
  /* in a graph, tf.gradients transposes the jvp's nodes symbolically */
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *p = cg_placeholder(CG_F64, 1, s3, "x"), *gy, *gdx, *got;
  assert_int_equal(cg_custom_gradient(&def, &p, &gy), CG_OK);
  cg_tensor *seed = vec(2, (double[]){1, 10});
  assert_int_equal(cg_gradients(&gy, 1, &p, 1, &seed, &gdx, NULL), CG_OK);
  cg_graph_exit(g);
  assert_non_null(gdx);
  cg_feed feed = {p, x};
  assert_int_equal(cg_graph_run(g, &feed, 1, &gdx, 1, &got), CG_OK);
  assert_tensor(got, CG_F64, 1, s3, ((double[]){31, 0.5, -9.5}), 1e-14);
  cg_graph_free(g);
}

static void custom_definitions_that_cannot_work(void **state)
{
  cg_tensor *x = vec(3, (double[]){1, 2, 3}), *y;
  cg_custom_def no_jvp = {"LinearNoJvp", 1, 1, linear_fwd, NULL, NULL, NULL, CG_CUSTOM_LINEAR};
  assert_int_equal(cg_custom_gradient(&no_jvp, &x, &y), CG_EINVAL);
  assert_error(CG_EINVAL, "(or, when CG_CUSTOM_LINEAR, a jvp)");
  cg_custom_def not_linear = {"NotLinear", 1, 1, linear_fwd, NULL, NULL, linear_jvp, 0};
  assert_int_equal(cg_custom_gradient(&not_linear, &x, &y), CG_EINVAL);
  assert_error(CG_EINVAL, "needs a name, a forward and a backward");
}

/* a linear op whose forward reads a trainable variable: its gradient cannot come from the jvp */
static cg_status scaled_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_mul(x[0], cg_var_read(cg_ctx_user(ctx)));
  return cg_status_of(y[0]);
}
static cg_status scaled_jvp(cg_ctx *ctx, cg_tensor *const *t, cg_tensor **out)
{
  out[0] = cg_mul(t[0], cg_var_value(cg_ctx_user(ctx)));
  return cg_status_of(out[0]);
}

static void linear_op_reading_a_variable_needs_a_backward(void **state)
{
  cg_var *w = cg_var_new("w", vec(3, (double[]){2, 2, 2}), 1);
  cg_custom_def def = {"ScaledByVar", 1, 1, scaled_fwd, NULL, w, scaled_jvp, CG_CUSTOM_LINEAR};
  cg_tensor *x = vec(3, (double[]){1, 2, 3}), *y, *dx;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  assert_int_equal(cg_custom_gradient(&def, &x, &y), CG_OK);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_EUSER);
  assert_error(CG_EUSER, "ScaledByVar: a CG_CUSTOM_LINEAR op without a backward cannot give "
                         "gradients for the trainable variables its forward read ('w')");
  cg_tape_free(tape);
  /* forward mode is fine: the variable is not a primal */
  cg_tensor *v = vec(3, (double[]){1, 1, 1}), *t;
  assert_int_equal(cg_jvp(call_custom, &def, &x, &v, 1, &y, &t, 1), CG_OK);
  int64_t s3[1] = {3};
  assert_tensor(t, CG_F64, 1, s3, ((double[]){8, 16, 24}), 1e-14); /* d (2x)^2 = 8x */
  cg_var_free(w);
}

/* ======================================================================================
 * User ops without a JVP rule: the double-VJP fallback
 * ==================================================================================== */

/* Cube: y = x^3 (own kernel), gradient 3 x^2 dy; no JVP rule */
static cg_status cube_infer(cg_node *n) { return cg_infer_same_as_input(n, 0); }
static cg_status cube_run(cg_node *n)
{
  cg_tensor *x = cg_node_input(n, 0), *y = cg_node_output(n, 0);
  const double *xs = cg_tensor_data(x);
  double *ys = cg_tensor_data(y);
  for (int64_t i = 0; i < cg_tensor_size(x); i++) ys[i] = xs[i] * xs[i] * xs[i];
  return CG_OK;
}
static int cube_grad_calls;
static cg_status cube_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cube_grad_calls++;
  cg_tensor *x = cg_node_input(op, 0);
  dx[0] = cg_mul(dy[0], cg_mul(cg_scalar_like(x, 3), cg_square(x)));
  return cg_status_of(dx[0]);
}
/* SumDiff: (a + b, a - b), two outputs, a broadcast against b; gradient only */
static cg_status sum_diff_infer(cg_node *n)
{
  cg_status st = cg_infer_same_as_input(n, 0);
  cg_tensor *a = cg_node_input(n, 0);
  return st == CG_OK ? cg_node_set_output(n, 1, cg_tensor_dtype(a), cg_tensor_ndim(a), cg_tensor_shape(a)) : st;
}
static cg_status sum_diff_run(cg_node *n)
{
  cg_tensor *a = cg_node_input(n, 0), *b = cg_node_input(n, 1);
  double *s = cg_tensor_data(cg_node_output(n, 0)), *d = cg_tensor_data(cg_node_output(n, 1));
  const double *as = cg_tensor_data(a), *bs = cg_tensor_data(b);
  int64_t nb = cg_tensor_size(b);
  for (int64_t i = 0; i < cg_tensor_size(a); i++) {
    s[i] = as[i] + bs[i % nb];
    d[i] = as[i] - bs[i % nb];
  }
  return CG_OK;
}
static cg_status sum_diff_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_add(dy[0], dy[1]);
  dx[1] = cg_sub(dy[0], dy[1]); /* of a's shape: the engine sums it to b's */
  return cg_status_of(dx[1]);
}

static void register_user_ops(void)
{
  static bool done;
  if (done) return;
  done = true;
  cg_op_def cube = {"TestCube", 1, cube_infer, cube_run, 0, NULL};
  cg_op_def sum_diff = {"TestSumDiff", 2, sum_diff_infer, sum_diff_run, 0, NULL};
  assert_int_equal(cg_register_op(&cube, 0), CG_OK);
  assert_int_equal(cg_register_gradient("TestCube", cube_grad, NULL, 0), CG_OK);
  assert_int_equal(cg_register_op(&sum_diff, 0), CG_OK);
  assert_int_equal(cg_register_gradient("TestSumDiff", sum_diff_grad, NULL, 0), CG_OK);
}

static cg_status cube_of_sin(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  cg_tensor *s = cg_sin(x[0]);
  y[0] = cg_call("TestCube", &s, 1, NULL);
  return cg_status_of(y[0]);
}

static cg_tensor *cube_sum(cg_tensor *const *x, int n, void *user)
{
  return cg_sum(cg_call("TestCube", x, 1, NULL), NULL, 0, 0);
}

static void user_op_without_jvp_uses_double_vjp(void **state)
{
  register_user_ops();
  assert_false(cg_has_jvp("TestCube"));
  cg_tensor *x = vec(3, (double[]){0.5, -1, 2}), *v = vec(3, (double[]){1, 0.5, -2}), *y, *t;
  cube_grad_calls = 0;
  assert_int_equal(cg_jvp(cube_of_sin, NULL, &x, &v, 1, &y, &t, 1), CG_OK);
  assert_int_equal(cube_grad_calls, 1);
  double xs[3] = {0.5, -1, 2}, vs[3] = {1, 0.5, -2}, e[3], h[3];
  for (int i = 0; i < 3; i++) {
    e[i] = 3 * sin(xs[i]) * sin(xs[i]) * cos(xs[i]) * vs[i];
    h[i] = 6 * xs[i] * vs[i]; /* Hessian of sum x^3 is diag(6x) */
  }
  int64_t s3[1] = {3};
  assert_tensor(t, CG_F64, 1, s3, e, 1e-14);
  /* forward-over-reverse through it: the JVP of its gradient (ops) */
  cg_tensor *hv;
  assert_int_equal(cg_hvp(cube_sum, NULL, &x, &v, 1, &hv), CG_OK);
  assert_tensor(hv, CG_F64, 1, s3, h, 1e-14);
}

static cg_status sum_diff_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  cg_tensor *out[2];
  cg_status st = cg_call_n("TestSumDiff", x, 2, NULL, out, 2, NULL);
  y[0] = st == CG_OK ? out[0] : NULL;
  y[1] = st == CG_OK ? cg_mul(out[1], out[1]) : NULL;
  return cg_status_of(y[1]);
}

static void multi_output_user_op_without_jvp(void **state)
{
  register_user_ops();
  int64_t s23[2] = {2, 3};
  cg_tensor *a = cgt_f64(2, s23, (double[]){1, 2, 3, 4, 5, 6}), *b = vec(3, (double[]){0.5, -1, 2});
  cg_tensor *x[2] = {a, b}, *ta = cg_ones_like(a), *tb = vec(3, (double[]){1, 2, 3});
  cg_tensor *v[2] = {ta, tb}, *y[2], *t[2];
  assert_int_equal(cg_jvp(sum_diff_fn, NULL, x, v, 2, y, t, 2), CG_OK);
  assert_tensor(t[0], CG_F64, 2, s23, ((double[]){2, 3, 4, 2, 3, 4}), 1e-14);
  double d[6], e[6], as[6] = {1, 2, 3, 4, 5, 6}, bs[3] = {0.5, -1, 2}, tbs[3] = {1, 2, 3};
  for (int i = 0; i < 6; i++) {
    d[i] = as[i] - bs[i % 3];
    e[i] = 2 * d[i] * (1 - tbs[i % 3]);
  }
  assert_tensor(t[1], CG_F64, 2, s23, e, 1e-14);
  /* only b has a tangent: a's slot gets none */
  cg_tensor *only_b[2] = {NULL, tb};
  assert_int_equal(cg_jvp(sum_diff_fn, NULL, x, only_b, 2, y, t, 2), CG_OK);
  assert_tensor(t[0], CG_F64, 2, s23, ((double[]){1, 2, 3, 1, 2, 3}), 1e-14);
}

/* A rule registered later is used instead of the fallback; a gradient override decides the
 * forward derivative too (through the fallback), so the two modes agree. */
static int cube_jvp_calls;
static cg_status cube_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cube_jvp_calls++;
  cg_tensor *x = cg_node_input(op, 0);
  out[0] = cg_mul(t[0], cg_mul(cg_scalar_like(x, 3), cg_square(x)));
  return cg_status_of(out[0]);
}
static cg_status doubled_square_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_mul(cg_scalar_like(dy[0], 4), cg_node_input(op, 0)));
  return cg_status_of(dx[0]);
}
static cg_status square_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_square(x[0]);
  return cg_status_of(y[0]);
}

static void registered_rules_and_overrides(void **state)
{
  register_user_ops();
  cg_tensor *x = vec(2, (double[]){1, 2}), *v = vec(2, (double[]){1, 1}), *y, *t;
  assert_int_equal(cg_register_jvp("TestCubeLater", cube_jvp, NULL, 0), CG_OK);
  assert_int_equal(cg_register_jvp("TestCubeLater", cube_jvp, NULL, 0), CG_EEXIST);
  assert_error(CG_EEXIST, "a JVP rule for 'TestCubeLater' is already registered");
  assert_int_equal(cg_register_jvp("TestCube", cube_jvp, NULL, CG_REGISTER_REPLACE), CG_OK);
  assert_true(cg_has_jvp("TestCube"));
  cube_jvp_calls = cube_grad_calls = 0;
  assert_int_equal(cg_jvp(cube_of_sin, NULL, &x, &v, 1, &y, &t, 1), CG_OK);
  assert_int_equal(cube_jvp_calls, 1);
  assert_int_equal(cube_grad_calls, 0);
  assert_int_equal(cg_register_jvp(NULL, cube_jvp, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_register_jvp: need an op type name and a function");
  assert_int_equal(cg_register_jvp("X", NULL, NULL, 0), CG_EINVAL);
  cg_clear_error();

  assert_int_equal(cg_register_gradient("DoubledSquareGrad", doubled_square_grad, NULL, 0), CG_OK);
  assert_int_equal(cg_gradient_override_push("Square", "DoubledSquareGrad"), CG_OK);
  assert_int_equal(cg_jvp(square_fn, NULL, &x, &v, 1, &y, &t, 1), CG_OK);
  cg_gradient_override_pop();
  int64_t s2[1] = {2};
  assert_tensor(t, CG_F64, 1, s2, ((double[]){4, 8}), 1e-14); /* the override's 4x, not 2x */
}

static cg_status once_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_scalar_like(dy[0], 2));
  return cg_status_of(dx[0]);
}
static cg_status twice_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_call("TestTwice", x, 1, NULL);
  return cg_status_of(y[0]);
}
static cg_status twice_run(cg_node *n)
{
  cg_tensor *x = cg_node_input(n, 0);
  double *ys = cg_tensor_data(cg_node_output(n, 0));
  for (int64_t i = 0; i < cg_tensor_size(x); i++) ys[i] = 2 * cg_tensor_get(x, i);
  return CG_OK;
}

static void once_differentiable_gradient_without_rule(void **state)
{
  cg_op_def twice = {"TestTwice", 1, cube_infer, twice_run, 0, NULL};
  assert_int_equal(cg_register_op(&twice, CG_REGISTER_REPLACE), CG_OK);
  assert_int_equal(cg_register_gradient("TestTwice", once_grad, NULL,
                                        CG_GRADIENT_ONCE_DIFFERENTIABLE | CG_REGISTER_REPLACE), CG_OK);
  cg_tensor *x = vec(2, (double[]){1, 2}), *v = vec(2, (double[]){1, 1}), *y, *t;
  assert_int_equal(cg_jvp(twice_fn, NULL, &x, &v, 1, &y, &t, 1), CG_ENOGRAD);
  assert_error(CG_ENOGRAD, "TestTwice: no JVP rule, and its gradient 'TestTwice' is declared "
                           "once-differentiable");
}

/* ======================================================================================
 * Nesting, outputs without tangents, bad input
 * ==================================================================================== */

static cg_status tanh_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_tanh(cg_mul(x[0], x[1]));
  return cg_status_of(y[0]);
}

typedef struct {
  cg_tensor *v;
} inner_jvp;
/* the tangent of tanh(x0 x1) along (v, 0): a function of x, differentiated again */
static cg_status tangent_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  inner_jvp *c = user;
  cg_tensor *t[2] = {c->v, NULL}, *p;
  return cg_jvp(tanh_fn, NULL, x, t, 2, &p, y, 1);
}

static void nested_forward_and_reverse(void **state)
{
  double a = 0.3, b = -0.8;
  cg_tensor *x[2] = {vec(1, &a), vec(1, &b)}, *one = vec(1, (double[]){1});
  inner_jvp c = {one};
  /* forward-over-forward: d/dx0 of (d/dx0 tanh(x0 x1)) = -2 b^2 tanh sech^2 */
  cg_tensor *t2[2] = {one, NULL}, *y, *d2;
  assert_int_equal(cg_jvp(tangent_fn, &c, x, t2, 2, &y, &d2, 1), CG_OK);
  double th = tanh(a * b), sech2 = 1 - th * th;
  int64_t s1[1] = {1};
  assert_tensor(y, CG_F64, 1, s1, ((double[]){b * sech2}), 1e-14);
  assert_tensor(d2, CG_F64, 1, s1, ((double[]){-2 * b * b * th * sech2}), 1e-14);
  /* reverse-over-forward: a tape around cg_jvp differentiates the tangent */
  cg_tensor *g[2];
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x[0]);
  cg_tape_watch(tape, x[1]);
  cg_tensor *t;
  assert_int_equal(tangent_fn(x, 2, &t, 1, &c), CG_OK);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, t, x, 2, g, NULL), CG_OK);
  cg_tape_free(tape);
  assert_tensor(g[0], CG_F64, 1, s1, ((double[]){-2 * b * b * th * sech2}), 1e-14);
  assert_tensor(g[1], CG_F64, 1, s1, ((double[]){sech2 - 2 * a * b * th * sech2}), 1e-14);
}

static cg_status odd_outputs(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_argmax(x[0], 0);                   /* integer: no tangent */
  y[1] = cg_ones_like(x[0]);                   /* does not depend on x: zeros */
  y[2] = x[0];                                 /* the primal itself */
  y[3] = cg_add(cg_stop_gradient(x[0]), x[0]); /* StopGradient cuts one path */
  return cg_status_of(y[3]);
}

static void outputs_without_tangents(void **state)
{
  cg_tensor *x = vec(3, (double[]){1, 3, 2}), *v = vec(3, (double[]){1, 2, 3}), *y[4], *t[4];
  assert_int_equal(cg_jvp(odd_outputs, NULL, &x, &v, 1, y, t, 4), CG_OK);
  assert_null(t[0]);
  assert_int_equal(cg_item(y[0]), 1);
  int64_t s3[1] = {3};
  assert_tensor(t[1], CG_F64, 1, s3, ((double[]){0, 0, 0}), 0);
  assert_tensor(t[2], CG_F64, 1, s3, ((double[]){1, 2, 3}), 0);
  assert_tensor(t[3], CG_F64, 1, s3, ((double[]){1, 2, 3}), 0);
  /* the same tensor passed twice is two primals with their own tangents */
  cg_tensor *xx[2] = {x, x}, *vv[2] = {v, NULL}, *p;
  assert_int_equal(cg_jvp(tanh_fn, NULL, xx, vv, 2, &p, t, 1), CG_OK);
  double e[3], xs[3] = {1, 3, 2}, vs[3] = {1, 2, 3};
  for (int i = 0; i < 3; i++) e[i] = (1 - pow(tanh(xs[i] * xs[i]), 2)) * xs[i] * vs[i];
  assert_tensor(t[0], CG_F64, 1, s3, e, 1e-14);
}

static cg_status failing_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_matmul(x[0], x[0]); /* rank 1: an error */
  return cg_status_of(y[0]);
}
static cg_status scope_leaving_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  cg_scope_begin();
  y[0] = cg_neg(x[0]);
  return CG_OK;
}
static cg_status no_output_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  return CG_OK;
}
static cg_tensor *vector_f(cg_tensor *const *x, int n, void *user) { return cg_square(x[0]); }

static void bad_input(void **state)
{
  cg_tensor *x = vec(3, (double[]){1, 2, 3}), *y, *t;
  cg_tensor *v32 = cgt_f32(1, (int64_t[]){3}, (double[]){1, 1, 1}), *v2 = vec(2, (double[]){1, 1});
  assert_int_equal(cg_jvp(NULL, NULL, &x, &x, 1, &y, &t, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_jvp: needs a function");
  assert_int_equal(cg_jvp(square_fn, NULL, &x, &v32, 1, &y, &t, 1), CG_ESHAPE);
  assert_error(CG_ESHAPE, "cg_jvp: tangent 0 is f32 [3] but primal 0 is f64 [3]");
  assert_int_equal(cg_jvp(square_fn, NULL, &x, &v2, 1, &y, &t, 1), CG_ESHAPE);
  assert_error(CG_ESHAPE, "tangent 0 is f64 [2] but primal 0 is f64 [3]");
  cg_tensor *ix = cg_arange(CG_I64, 0, 3, 1), *null_x = NULL;
  assert_int_equal(cg_jvp(square_fn, NULL, &ix, &x, 1, &y, &t, 1), CG_EDTYPE);
  assert_error(CG_EDTYPE, "cg_jvp: primal 0 is i64 [3], which has no tangent: pass NULL for it");
  assert_int_equal(cg_jvp(square_fn, NULL, &null_x, &x, 1, &y, &t, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_jvp: input 0 is NULL");
  assert_int_equal(cg_jvp(failing_fn, NULL, &x, &x, 1, &y, &t, 1), CG_ESHAPE);
  assert_error(CG_ESHAPE, "MatMul: inputs need rank >= 2");
  assert_int_equal(cg_jvp(scope_leaving_fn, NULL, &x, &x, 1, &y, &t, 1), CG_EUSER);
  assert_error(CG_EUSER, "cg_jvp: the function left a scope open");
  assert_int_equal(cg_jvp(no_output_fn, NULL, &x, &x, 1, &y, &t, 1), CG_EUSER);
  assert_error(CG_EUSER, "cg_jvp: the function gave no tensor for output 0 of 1");
  assert_null(y);
  assert_null(t);
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  assert_int_equal(cg_jvp(square_fn, NULL, &x, &x, 1, &y, &t, 1), CG_ESTATE);
  assert_error(CG_ESTATE, "cg_jvp: forward mode runs eagerly");
  cg_graph_exit(g);
  cg_graph_free(g);

  assert_int_equal(cg_hvp(vector_f, NULL, &x, &x, 1, &y), CG_ESHAPE);
  assert_error(CG_ESHAPE, "cg_hvp: f must give a float scalar (one element), got f64 [3]");
  assert_int_equal(cg_hvp(cube_sum, NULL, &ix, &x, 1, &y), CG_EDTYPE);
  assert_error(CG_EDTYPE, "cg_hvp: input 0 is i64: second derivatives need float inputs");
  assert_null(cg_hessian(NULL, NULL, x));
  assert_error(CG_EINVAL, "cg_hessian: needs f");
  cg_tensor *big = cg_zeros(CG_F64, 5, (int64_t[]){1, 1, 1, 1, 2});
  assert_null(cg_hessian(cube_sum, NULL, big));
  assert_error(CG_ESHAPE, "cg_hessian: x is [1,1,1,1,2]: the Hessian would have rank 10 (> 8)");
}

/* a custom op with an index-like second output it marks non-differentiable */
static cg_status split_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_mul(x[0], x[0]);
  y[1] = cg_floor(x[0]);
  cg_ctx_mark_non_differentiable(ctx, 1);
  return cg_status_of(y[1]);
}
static cg_status split_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  dx[0] = cg_mul(dy[0], cg_mul(cg_ctx_input(ctx, 0), cg_scalar_like(dy[0], 2)));
  return cg_status_of(dx[0]);
}
static cg_status split_jvp(cg_ctx *ctx, cg_tensor *const *t, cg_tensor **out)
{
  out[0] = cg_mul(t[0], cg_mul(cg_ctx_input(ctx, 0), cg_scalar_like(t[0], 2)));
  out[1] = t[0]; /* wrong on purpose: the output is marked, so the engine drops it */
  return cg_status_of(out[0]);
}
static cg_status split_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  static const cg_custom_def def = {"SquareAndFloor", 1, 2, split_fwd, split_bwd, NULL, split_jvp, 0};
  return cg_custom_gradient(&def, x, y);
}

static cg_status leaky_rule(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_scope_begin();
  out[0] = t[0];
  return CG_OK;
}
static cg_status twice_of(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_call("TestTwiceLeaky", x, 1, NULL);
  return cg_status_of(y[0]);
}
static cg_tensor *null_f(cg_tensor *const *x, int n, void *user)
{
  cg_set_error(CG_EUSER, "null_f: no value today");
  return NULL;
}

static void callbacks_that_break_their_contract(void **state)
{
  cg_tensor *x = vec(2, (double[]){1.5, 2.5}), *v = vec(2, (double[]){1, 1}), *y[2], *t[2];
  assert_int_equal(cg_jvp(split_fn, NULL, &x, &v, 1, y, t, 2), CG_OK);
  int64_t s2[1] = {2};
  assert_tensor(t[0], CG_F64, 1, s2, ((double[]){3, 5}), 0);
  assert_tensor(t[1], CG_F64, 1, s2, ((double[]){0, 0}), 0); /* marked non-differentiable */

  cg_op_def twice = {"TestTwiceLeaky", 1, cube_infer, twice_run, 0, NULL};
  assert_int_equal(cg_register_op(&twice, 0), CG_OK);
  assert_int_equal(cg_register_jvp("TestTwiceLeaky", leaky_rule, NULL, 0), CG_OK);
  assert_int_equal(cg_jvp(twice_of, NULL, &x, &v, 1, y, t, 1), CG_EUSER);
  assert_error(CG_EUSER, "TestTwiceLeaky: the JVP rule left a scope open");

  cg_tensor *hv;
  assert_int_equal(cg_hvp(null_f, NULL, &x, &v, 1, &hv), CG_EUSER);
  assert_error(CG_EUSER, "null_f: no value today");
  assert_null(hv);
}

/* ======================================================================================
 * Composition with traced functions and recomputation; the guide's snippets
 * ==================================================================================== */

static cg_status tanh_square(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_tanh(cg_mul(x[0], x[0]));
  return cg_status_of(y[0]);
}
static cg_function *traced;
static cg_status through_function(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  cg_tensor *z;
  cg_status st = cg_function_call(traced, x, &z);
  y[0] = st == CG_OK ? cg_sin(z) : NULL;
  return cg_status_of(y[0]);
}
static cg_status through_recompute(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  cg_tensor *z;
  cg_status st = cg_recompute(tanh_square, NULL, x, 1, &z, 1);
  y[0] = st == CG_OK ? cg_sin(z) : NULL;
  return cg_status_of(y[0]);
}
static cg_tensor *summed(cg_tensor *const *x, int n, void *fn)
{
  cg_tensor *y;
  return ((cg_trace_fn)fn)(x, 1, &y, 1, NULL) == CG_OK ? cg_sum(y, NULL, 0, 0) : NULL;
}

/* A traced function's call and a recomputed block record as one op with a gradient and no
 * JVP rule: forward mode goes through them by the double-VJP trick. */
static void traced_functions_and_recompute(void **state)
{
  double xs[3] = {0.3, -0.5, 0.9}, vs[3] = {1, 2, 3}, e[3];
  cg_tensor *x = vec(3, xs), *v = vec(3, vs), *y, *t, *hv, *ref;
  for (int i = 0; i < 3; i++) {
    double th = tanh(xs[i] * xs[i]);
    e[i] = cos(th) * (1 - th * th) * 2 * xs[i] * vs[i];
  }
  traced = cg_function_trace("tanh_square", tanh_square, NULL, &x, 1, 1);
  assert_non_null(traced);
  cg_trace_fn fns[2] = {through_function, through_recompute};
  int64_t s3[1] = {3};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(cg_jvp(fns[k], NULL, &x, &v, 1, &y, &t, 1), CG_OK);
    assert_tensor(t, CG_F64, 1, s3, e, 1e-14);
    assert_int_equal(cg_hvp(summed, fns[k], &x, &v, 1, &hv), CG_OK);
    assert_int_equal(hvp_by_nested_tapes(summed, fns[k], &x, &v, 1, &ref), CG_OK);
    double err;
    assert_true(close_vectors(hv, ref, &err));
  }
  cg_function_free(traced);
}

/* docs/guide.md, "Forward mode" */
static cg_status f(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_tanh(cg_mul(x[0], x[1])); /* y = tanh(a b) */
  return cg_status_of(y[0]);
}
static cg_tensor *loss(cg_tensor *const *x, int n, void *user) /* a scalar */
{
  return cg_sum(cg_mul(cg_square(x[0]), cg_sin(x[0])), NULL, 0, 0);
}
static cg_status scale_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_mul(x[0], cg_scalar_like(x[0], 3));
  return cg_status_of(y[0]);
}
static cg_status scale_jvp(cg_ctx *ctx, cg_tensor *const *t, cg_tensor **out)
{
  out[0] = cg_mul(t[0], cg_scalar_like(t[0], 3));
  return cg_status_of(out[0]);
}

static void guide_snippets(void **state)
{
  cg_tensor *a = cg_scalar(CG_F64, 0.5), *b = cg_scalar(CG_F64, 2);
  cg_tensor *x[2] = {a, b}, *v[2] = {cg_scalar(CG_F64, 1), NULL}; /* NULL: a zero tangent */
  cg_tensor *y, *dy, *hv;
  assert_int_equal(cg_jvp(f, NULL, x, v, 2, &y, &dy, 1), CG_OK);
  assert_tensor(dy, CG_F64, 0, NULL, ((double[]){(1 - pow(tanh(1.0), 2)) * 2}), 1e-15);
  double xv[3] = {0.1, 0.2, 0.3}, d2[3];
  for (int i = 0; i < 3; i++) d2[i] = 2 * sin(xv[i]) + 4 * xv[i] * cos(xv[i]) - xv[i] * xv[i] * sin(xv[i]);
  cg_tensor *xs = cg_tensor_from(CG_F64, 1, (int64_t[]){3}, (double[]){0.1, 0.2, 0.3});
  cg_tensor *vs = cg_ones_like(xs);
  assert_int_equal(cg_hvp(loss, NULL, &xs, &vs, 1, &hv), CG_OK);
  cg_tensor *h = cg_hessian(loss, NULL, xs);
  int64_t s3[1] = {3}, s33[2] = {3, 3};
  assert_tensor(hv, CG_F64, 1, s3, d2, 1e-14);
  assert_tensor(h, CG_F64, 2, s33, ((double[]){d2[0], 0, 0, 0, d2[1], 0, 0, 0, d2[2]}), 1e-14);
  cg_tensor *h0 = cg_hessian(loss, NULL, cg_scalar(CG_F64, 0.1)); /* rank 0: a rank-0 Hessian */
  assert_tensor(h0, CG_F64, 0, NULL, d2, 1e-14);
  cg_custom_def scale = {.name = "Scale3", .n_inputs = 1, .n_outputs = 1, .forward = scale_fwd,
                         .jvp = scale_jvp, .flags = CG_CUSTOM_LINEAR}; /* no backward */
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, xs);
  cg_tensor *z, *dx;
  assert_int_equal(cg_custom_gradient(&scale, &xs, &z), CG_OK);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, z, &xs, 1, &dx, NULL), CG_OK);
  cg_tape_free(tape);
  assert_tensor(dx, CG_F64, 1, s3, ((double[]){3, 3, 3}), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      test(every_differentiable_op_has_a_jvp_rule),
      test(table_jvp_matches_vjp),
      test(table_forward_over_reverse),
      test(hessian_of_a_known_function),
      test(hessian_matches_reverse_over_reverse),
      test(hvp_through_pooling),
      test(custom_jvp_is_used),
      test(linear_custom_op_gradient_by_transposition),
      test(custom_definitions_that_cannot_work),
      test(linear_op_reading_a_variable_needs_a_backward),
      test(user_op_without_jvp_uses_double_vjp),
      test(multi_output_user_op_without_jvp),
      test(registered_rules_and_overrides),
      test(once_differentiable_gradient_without_rule),
      test(nested_forward_and_reverse),
      test(outputs_without_tangents),
      test(bad_input),
      test(callbacks_that_break_their_contract),
      test(traced_functions_and_recompute),
      test(guide_snippets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

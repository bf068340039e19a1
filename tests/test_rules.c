/* test_rules.c - what users of custom gradients ask for beyond TensorFlow: rule accounting,
 * once-differentiable rules, needs_input_grad, non-differentiable outputs, gradient hooks,
 * "why is this gradient NULL?", check on register, and bitwise reproducible gradients. */
#include "util.h"
#include "cases.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

static cg_tensor *vec(int n, const double *v)
{
  int64_t shape[1] = {n};
  return cgt_f64(1, shape, v);
}

static double grad_at(cg_tensor *(*f)(cg_tensor *), double at)
{
  cg_tensor *x = cg_scalar(CG_F64, at), *dx = NULL;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = f(x);
  cg_tape_end(tape);
  cg_status st = cg_tape_gradient(tape, y, &x, 1, &dx, NULL);
  cg_tape_free(tape);
  return st == CG_OK && dx ? cg_item(dx) : NAN;
}

static cg_status times_three(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_scalar_like(dy[0], 3));
  return cg_status_of(dx[0]);
}

static uint64_t calls_of(const char *name, cg_rule_kind kind)
{
  cg_rule_stat rows[256];
  int n = cg_rule_stats(rows, 256);
  for (int i = 0; i < n && i < 256; i++)
    if (rows[i].kind == kind && !strcmp(rows[i].name, name)) return rows[i].calls;
  return 0;
}

static cg_status id_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  return cg_status_of(y[0]);
}
static cg_status id_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  dx[0] = cg_identity(dy[0]);
  return cg_status_of(dx[0]);
}

static void rules_are_counted(void **state)
{
  cg_register_gradient("TimesThree", times_three, NULL, 0);
  cg_rule_stats_reset();
  assert_true(grad_at(cg_square, 2) == 4);
  cg_gradient_override_push("Square", "TimesThree");
  assert_true(grad_at(cg_square, 2) == 3);
  assert_true(grad_at(cg_square, 5) == 3);
  cg_gradient_override_pop();
  cg_custom_def def = {"CountedIdentity", 1, 1, id_fwd, id_bwd, NULL};
  cg_tensor *x = cg_scalar(CG_F64, 1), *y, *dx;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_custom_gradient(&def, &x, &y);
  cg_tape_end(tape);
  cg_tape_gradient(tape, y, &x, 1, &dx, NULL);
  cg_tape_free(tape);
  assert_int_equal(calls_of("Square", CG_RULE_GRADIENT), 1);
  assert_int_equal(calls_of("TimesThree", CG_RULE_OVERRIDE), 2); /* ran for Square, not for itself */
  assert_int_equal(calls_of("CountedIdentity", CG_RULE_CUSTOM), 1);
  cg_rule_stats_reset();
  assert_int_equal(calls_of("Square", CG_RULE_GRADIENT), 0);
}

/* --- once differentiable ------------------------------------------------------------------ */
static cg_status square_grad_once(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  dx[0] = cg_mul(dy[0], cg_mul(x, cg_scalar_like(x, 2)));
  return cg_status_of(dx[0]);
}

static void once_differentiable_rules_refuse_a_second_derivative(void **state)
{
  cg_register_gradient("SquareOnce", square_grad_once, NULL, CG_GRADIENT_ONCE_DIFFERENTIABLE);
  cg_gradient_override_push("Square", "SquareOnce");
  cg_tensor *x = cg_scalar(CG_F64, 3), *dy, *d2y;
  cg_tape *outer = cg_tape_begin(0), *inner = cg_tape_begin(0);
  cg_tape_watch(outer, x);
  cg_tape_watch(inner, x);
  cg_tensor *y = cg_square(x);
  cg_gradient_override_pop();
  cg_tape_end(inner);
  assert_int_equal(cg_tape_gradient(inner, y, &x, 1, &dy, NULL), CG_OK); /* first order: fine */
  assert_true(cg_item(dy) == 6);
  cg_tape_end(outer);
  assert_int_equal(cg_tape_gradient(outer, dy, &x, 1, &d2y, NULL), CG_ENOGRAD);
  assert_error(CG_ENOGRAD, "a second derivative through the gradient 'SquareOnce' is not available");
  cg_tape_free(inner);
  cg_tape_free(outer);

  cg_custom_def once = {"OnceIdentity", 1, 1, id_fwd, id_bwd, NULL, NULL, CG_CUSTOM_ONCE_DIFFERENTIABLE};
  outer = cg_tape_begin(0);
  inner = cg_tape_begin(0);
  cg_tape_watch(outer, x);
  cg_tape_watch(inner, x);
  cg_custom_gradient(&once, &x, &y);
  cg_tensor *y2 = cg_square(y);
  cg_tape_end(inner);
  assert_int_equal(cg_tape_gradient(inner, y2, &x, 1, &dy, NULL), CG_OK);
  cg_tape_end(outer);
  assert_int_equal(cg_tape_gradient(outer, dy, &x, 1, &d2y, NULL), CG_ENOGRAD);
  assert_error(CG_ENOGRAD, "'OnceIdentity' is not available: it is declared once-differentiable");
  cg_tape_free(inner);
  cg_tape_free(outer);
}

/* --- needs_input_grad and non-differentiable outputs ------------------------------------------ */
static int seen_needs[2];
static cg_status mul_recording_needs(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  for (int i = 0; i < 2; i++) seen_needs[i] = cg_node_needs_input_grad(op, i);
  if (seen_needs[0]) dx[0] = cg_mul(dy[0], cg_node_input(op, 1));
  if (seen_needs[1]) dx[1] = cg_mul(dy[0], cg_node_input(op, 0));
  return CG_OK;
}

/* (max, index of max) of a vector: the index output carries no gradient */
static cg_status maxpos_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_max(x[0], NULL, 0, 0);
  y[1] = cg_cast(cg_argmax(x[0], 0), CG_F64);
  cg_ctx_save(ctx, x[0]);
  cg_ctx_mark_non_differentiable(ctx, 1);
  return cg_status_of(y[1]);
}
static int custom_needs[1];
static cg_status maxpos_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  cg_tensor *x = cg_ctx_saved(ctx, 0);
  custom_needs[0] = cg_ctx_needs_input_grad(ctx, 0);
  dx[0] = cg_mul(cg_cast(cg_equal(x, cg_max(x, NULL, 0, 1)), CG_F64), dy[0]);
  return cg_status_of(dx[0]);
}

static void needs_input_grad_and_non_differentiable_outputs(void **state)
{
  cg_register_gradient("MulRecordingNeeds", mul_recording_needs, NULL, 0);
  cg_tensor *a = cg_scalar(CG_F64, 2), *b = cg_scalar(CG_F64, 5), *da;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, a); /* b is not watched: its gradient is not needed */
  cg_gradient_override_push("Mul", "MulRecordingNeeds");
  cg_tensor *y = cg_mul(a, b);
  cg_gradient_override_pop();
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, y, &a, 1, &da, NULL), CG_OK);
  assert_true(cg_item(da) == 5);
  assert_int_equal(seen_needs[0], 1);
  assert_int_equal(seen_needs[1], 0);
  cg_tape_free(tape);

  cg_custom_def maxpos = {"MaxPos", 1, 2, maxpos_fwd, maxpos_bwd, NULL};
  cg_tensor *x = vec(3, (double[]){1, 7, 2}), *out[2], *g[2];
  tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tape_watch(tape, x);
  assert_int_equal(cg_custom_gradient(&maxpos, &x, out), CG_OK);
  cg_tape_end(tape);
  assert_true(cg_item(out[1]) == 1);
  assert_int_equal(cg_tape_gradient(tape, out[1], &x, 1, g, NULL), CG_OK);
  assert_null(g[0]); /* the index carries no gradient */
  assert_int_equal(cg_tape_gradient(tape, out[0], &x, 1, g, NULL), CG_OK);
  int64_t s3[1] = {3};
  assert_tensor(g[0], CG_F64, 1, s3, ((double[]){0, 1, 0}), 0);
  assert_int_equal(custom_needs[0], 1);
  cg_tape_free(tape);
  assert_int_equal(cg_ctx_mark_non_differentiable(NULL, 0), CG_EINVAL);
  cg_clear_error();
}

/* --- hooks ------------------------------------------------------------------------------------- */
static cg_tensor *double_it(cg_tensor *g, void *user)
{
  (*(int *)user)++;
  return cg_mul(g, cg_scalar_like(g, 2));
}
static cg_tensor *wrong_shape(cg_tensor *g, void *user) { return cg_zeros(CG_F64, 1, (int64_t[]){7}); }

static void hooks_see_and_replace_gradients(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 3), *dx;
  int calls = 0;
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tape_watch(tape, x);
  cg_tensor *h = cg_square(x);          /* h = x^2 */
  cg_tensor *y = cg_mul(h, cg_scalar(CG_F64, 5));
  cg_tape_end(tape);
  assert_int_equal(cg_tensor_register_hook(h, double_it, &calls), CG_OK);
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_OK);
  assert_true(cg_item(dx) == 2 * 5 * 2 * 3); /* dy/dh doubled, then through x^2 */
  assert_int_equal(calls, 1);
  assert_int_equal(cg_tape_register_hook(tape, x, double_it, &calls), CG_OK); /* a tape hook on x */
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_OK);
  assert_true(cg_item(dx) == 4 * 5 * 2 * 3);
  assert_int_equal(calls, 3);
  assert_int_equal(cg_tape_register_hook(tape, h, wrong_shape, NULL), CG_OK);
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_EUSER);
  assert_error(CG_EUSER, "a gradient hook returned f64 [7] for a gradient of f64 []");
  cg_tape_free(tape);
  assert_int_equal(cg_tensor_register_hook(cg_scalar(CG_I32, 1), double_it, NULL), CG_EDTYPE);
  cg_clear_error();
}

/* --- explain -------------------------------------------------------------------------------------- */
static cg_status gradless_infer(cg_node *n) { return cg_infer_same_as_input(n, 0); }
static cg_status gradless_run(cg_node *n)
{
  memcpy(cg_tensor_data(cg_node_output(n, 0)), cg_tensor_data(cg_node_input(n, 0)),
         (size_t)cg_tensor_size(cg_node_input(n, 0)) * sizeof(double));
  return CG_OK;
}

static void explain_names_the_broken_link(void **state)
{
  static const cg_op_def gradless = {"NoGradientHere", 1, gradless_infer, gradless_run, 0, NULL};
  if (!cg_find_op("NoGradientHere")) cg_register_op(&gradless, 0);
  cg_clear_error();
  cg_tensor *x = cg_scalar(CG_F64, 2), *other = cg_scalar(CG_F64, 1);
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tape_watch(tape, x);
  cg_tensor *connected = cg_sin(x);
  cg_tensor *via_int = cg_cast(cg_cast(x, CG_I64), CG_F64);
  cg_tensor *stopped = cg_tanh(cg_stop_gradient(cg_exp(x)));
  cg_tensor *compared = cg_cast(cg_greater(x, other), CG_F64);
  cg_pause_recording();
  cg_tensor *paused = cg_exp(x);
  cg_resume_recording();
  cg_tensor *after_pause = cg_square(paused);
  cg_tensor *no_grad = cg_call("NoGradientHere", &x, 1, NULL);
  cg_tape_end(tape);
  assert_non_null(strstr(cg_tape_explain(tape, connected, x), "its gradient is not NULL"));
  assert_non_null(strstr(cg_tape_explain(tape, connected, other), "never watched"));
  assert_non_null(strstr(cg_tape_explain(tape, via_int, x), "Cast, whose output is i64"));
  assert_non_null(strstr(cg_tape_explain(tape, stopped, x), "StopGradient"));
  assert_non_null(strstr(cg_tape_explain(tape, compared, x), "Greater, which is not differentiable"));
  assert_non_null(strstr(cg_tape_explain(tape, after_pause, x), "Exp, which ran while recording was paused"));
  assert_non_null(strstr(cg_tape_explain(tape, no_grad, x), "NoGradientHere, which has no registered gradient"));
  assert_non_null(strstr(cg_tape_explain(tape, x, cg_scalar(CG_I32, 1)), "integers carry no gradient"));
  cg_tape_free(tape);
}

/* --- check on register --------------------------------------------------------------------------- */
static cg_status cube_infer(cg_node *n) { return cg_infer_same_as_input(n, 0); }
static cg_status cube_run(cg_node *n)
{
  const double *x = cg_tensor_data(cg_node_input(n, 0));
  double *y = cg_tensor_data(cg_node_output(n, 0));
  for (int64_t i = 0; i < cg_tensor_size(cg_node_input(n, 0)); i++) y[i] = x[i] * x[i] * x[i];
  return CG_OK;
}
static cg_status cube_grad_wrong(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0); /* forgot the factor 3 */
  dx[0] = cg_mul(dy[0], cg_square(x));
  return cg_status_of(dx[0]);
}
static cg_tensor *cube(cg_tensor *x) { return cg_call("CheckedCube", &x, 1, NULL); }

static void check_on_register_catches_a_wrong_rule(void **state)
{
  static const cg_op_def def = {"CheckedCube", 1, cube_infer, cube_run, 0, NULL};
  cg_register_op(&def, 0);
  cg_register_gradient("CheckedCube", cube_grad_wrong, NULL, 0);
  cg_set_check_gradients(1);
  assert_true(isnan(grad_at(cube, 2)));
  assert_error(CG_ECHECK, "check on register: the gradient 'CheckedCube' of CheckedCube disagrees");
  assert_true(grad_at(cube, 2) == 4); /* checked once: afterwards it runs (wrong) as registered */
  assert_true(grad_at(cg_tanh, 0.3) == 1 - tanh(0.3) * tanh(0.3)); /* a right rule passes */
  cg_set_check_gradients(0);
}

/* JVP rules too: JvpCube(x) = x^3, whose tangent is 3 x^2 t */
static int right_rule_runs;
static cg_status cube_jvp_wrong(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  out[0] = cg_mul(t[0], cg_square(cg_node_input(op, 0))); /* forgot the factor 3 */
  return cg_status_of(out[0]);
}
static cg_status cube_jvp_right(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  right_rule_runs++;
  out[0] = cg_mul(t[0], cg_mul(cg_scalar_like(t[0], 3), cg_square(cg_node_input(op, 0))));
  return cg_status_of(out[0]);
}

static cg_status op_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_call(user, x, nx, NULL);
  return cg_status_of(y[0]);
}

/* The tangent of op at x (a vector of n values) along ones; NULL on error. */
static cg_tensor *tangent_at(const char *op, int n, const double *x)
{
  cg_tensor *xv = vec(n, x), *t = cg_ones_like(xv), *y, *jv;
  return cg_jvp(op_fn, (void *)op, &xv, &t, 1, &y, &jv, 1) == CG_OK ? jv : NULL;
}

static void check_on_register_covers_jvp_rules(void **state)
{
  static const cg_op_def def = {"JvpCube", 1, cube_infer, cube_run, 0, NULL};
  const double x[3] = {2, -1, 0.5};
  assert_int_equal(cg_register_op(&def, CG_REGISTER_REPLACE), CG_OK);
  assert_int_equal(cg_register_jvp("JvpCube", cube_jvp_wrong, NULL, CG_REGISTER_REPLACE), CG_OK);
  cg_set_check_gradients(1);
  assert_null(tangent_at("JvpCube", 3, x));
  assert_non_null(strstr(cg_last_error(), "output 0, element ")); /* the worst one, both values */
  assert_non_null(strstr(cg_last_error(), ": the rule gives "));
  assert_non_null(strstr(cg_last_error(), ", central differences give "));
  assert_error(CG_ECHECK, "check on register: the JVP rule of JvpCube disagrees with central differences");
  assert_tensor(tangent_at("JvpCube", 3, x), CG_F64, 1, (int64_t[]){3}, ((double[]){4, 1, 0.25}), 0);

  /* replacing the rule checks it afresh; a right one passes, once, and its result is used */
  assert_int_equal(cg_register_jvp("JvpCube", cube_jvp_right, NULL, CG_REGISTER_REPLACE), CG_OK);
  right_rule_runs = 0;
  assert_tensor(tangent_at("JvpCube", 3, x), CG_F64, 1, (int64_t[]){3}, ((double[]){12, 3, 0.75}), 0);
  assert_int_equal(right_rule_runs, 2); /* the check, then the call itself */
  assert_tensor(tangent_at("JvpCube", 3, x), CG_F64, 1, (int64_t[]){3}, ((double[]){12, 3, 0.75}), 0);
  assert_int_equal(right_rule_runs, 3);
  cg_set_check_gradients(0);
}

/* PositiveCube: x^3 for x > 0 only; at x near 0, x - h v leaves its domain for some element */
static cg_status positive_cube_run(cg_node *n)
{
  const double *x = cg_tensor_data(cg_node_input(n, 0));
  for (int64_t i = 0; i < cg_tensor_size(cg_node_input(n, 0)); i++)
    if (x[i] <= 0) return cg_set_error(CG_ERANGE, "PositiveCube: x must be positive");
  return cube_run(n);
}

/* F32Cube: x^3 in float32 only, so the check runs in float32 */
static cg_status f32_infer(cg_node *n)
{
  if (cg_tensor_dtype(cg_node_input(n, 0)) != CG_F32) return cg_set_error(CG_EDTYPE, "F32Cube: f32 only");
  return cg_infer_same_as_input(n, 0);
}
static cg_status f32_cube_run(cg_node *n)
{
  const float *x = cg_tensor_data(cg_node_input(n, 0));
  float *y = cg_tensor_data(cg_node_output(n, 0));
  for (int64_t i = 0; i < cg_tensor_size(cg_node_input(n, 0)); i++) y[i] = x[i] * x[i] * x[i];
  return CG_OK;
}

static void jvp_check_where_the_op_refuses_the_probe(void **state)
{
  static const cg_op_def positive = {"PositiveCube", 1, cube_infer, positive_cube_run, 0, NULL};
  static const cg_op_def narrow = {"F32Cube", 1, f32_infer, f32_cube_run, 0, NULL};
  assert_int_equal(cg_register_op(&positive, CG_REGISTER_REPLACE), CG_OK);
  assert_int_equal(cg_register_op(&narrow, CG_REGISTER_REPLACE), CG_OK);
  assert_int_equal(cg_register_jvp("PositiveCube", cube_jvp_wrong, NULL, CG_REGISTER_REPLACE), CG_OK);
  assert_int_equal(cg_register_jvp("F32Cube", cube_jvp_wrong, NULL, CG_REGISTER_REPLACE), CG_OK);
  cg_set_check_gradients(1);
  /* no verdict, and no error left behind: the rule's (wrong) result is used */
  const double tiny[3] = {1e-9, 1e-9, 1e-9};
  assert_tensor(tangent_at("PositiveCube", 3, tiny), CG_F64, 1, (int64_t[]){3}, ((double[]){1e-18, 1e-18, 1e-18}), 1e-30);
  assert_int_equal(cg_last_status(), CG_OK);
  /* an op that refuses float64 is checked in its own dtype */
  cg_tensor *x = cgt_f32(1, (int64_t[]){2}, (double[]){2, 0.5}), *t = cg_ones_like(x), *y, *jv;
  assert_int_equal(cg_jvp(op_fn, "F32Cube", &x, &t, 1, &y, &jv, 1), CG_ECHECK);
  assert_error(CG_ECHECK, "the JVP rule of F32Cube disagrees");
  cg_set_check_gradients(0);
}

/* Every builtin JVP rule, checked at its first run: a small CNN whose ReLU feeds MaxPool2D
   tied zeros (a kink, where no derivative is compared), then every row of the gradient-check
   table through cg_jvp. */
static cg_tensor *normal(int ndim, const int64_t *shape, double sd, uint64_t seed)
{
  return cg_random_normal(CG_F64, ndim, shape, 0, sd, seed);
}

static cg_status small_cnn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  const int s1[2] = {1, 1}, k2[2] = {2, 2};
  cg_tensor *c = cg_sub(cg_conv2d(x[0], x[1], s1, CG_PAD_SAME, NULL), cg_scalar(CG_F64, 1));
  cg_tensor *h = cg_max_pool2d(cg_relu(c), k2, k2, CG_PAD_VALID); /* windows of zeros: ties */
  h = cg_avg_pool2d(h, k2, s1, CG_PAD_SAME);
  h = cg_reshape(h, 2, (int64_t[]){2, 8});
  y[0] = cg_sum(cg_tanh(cg_softmax(cg_add(cg_matmul(h, x[2]), x[3]))), NULL, 0, 0);
  return cg_status_of(y[0]);
}

static cg_status case_fn(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_grad_case_call(user, x, nx);
  return cg_status_of(y[0]);
}

static int check_case_jvp(const cg_grad_case *c, uint64_t seed)
{
  cg_tensor *x[4], *v[4] = {0}, *y, *jv;
  for (int i = 0; i < c->n_in; i++) {
    x[i] = cg_grad_case_input(c, i, CG_F64, seed);
    if (cg_tensor_dtype(x[i]) == CG_F64) v[i] = normal(cg_tensor_ndim(x[i]), cg_tensor_shape(x[i]), 1, seed + 50 + (uint64_t)i);
  }
  if (cg_jvp(case_fn, (void *)c, x, v, c->n_in, &y, &jv, 1) == CG_OK) return 0;
  print_error("%s [%s]: %s\n", c->op, c->label, cg_last_error());
  cg_clear_error(); /* reported: go on with the next row */
  return 1;
}

static void cnn_parameters(cg_tensor **p)
{
  p[0] = normal(4, (int64_t[]){2, 4, 4, 1}, 1, 1);
  p[1] = normal(4, (int64_t[]){3, 3, 1, 2}, 1, 2);
  p[2] = normal(2, (int64_t[]){8, 3}, 0.5, 3);
  p[3] = normal(1, (int64_t[]){3}, 0.5, 4);
}

/* MaxPool2D's gradient at tied maxima is right (the first maximum takes it), though central
   differences there give the mean of the slopes: the check confirms a mismatch off the kink. */
static void check_on_register_is_quiet_at_kinks(void **state)
{
  cg_tensor *p[4], *y, *g[4];
  cnn_parameters(p);
  cg_set_check_gradients(1);
  cg_tape *tape = cg_tape_begin(0);
  for (int i = 0; i < 4; i++) cg_tape_watch(tape, p[i]);
  assert_int_equal(small_cnn(p, 4, &y, 1, NULL), CG_OK);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, y, p, 4, g, NULL), CG_OK);
  assert_int_equal(cg_last_status(), CG_OK);
  cg_tape_free(tape);
  cg_set_check_gradients(0);
}

/* A traced function's call cannot run alone: its gradient (the graph's own) is not probed,
   and the ops inside the trace's gradient graph ran in a plan, not through the dispatcher. */
static void check_on_register_leaves_traced_functions_alone(void **state)
{
  cg_tensor *p[4], *y, *g[4];
  cnn_parameters(p);
  cg_function *f = cg_function_trace("small_cnn", small_cnn, NULL, p, 4, 1);
  assert_non_null(f);
  cg_set_check_gradients(1);
  cg_tape *tape = cg_tape_begin(0);
  for (int i = 0; i < 4; i++) cg_tape_watch(tape, p[i]);
  assert_int_equal(cg_function_call(f, p, &y), CG_OK);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, y, p, 4, g, NULL), CG_OK);
  cg_tape_free(tape);
  cg_set_check_gradients(0);
  cg_function_free(f);
}

static void check_on_register_passes_every_builtin_jvp_rule(void **state)
{
  cg_tensor *p[4], *v[4], *y, *jv;
  cnn_parameters(p);
  for (int i = 0; i < 4; i++) v[i] = normal(cg_tensor_ndim(p[i]), cg_tensor_shape(p[i]), 1, 10 + (uint64_t)i);
  cg_set_check_gradients(1);
  assert_int_equal(cg_jvp(small_cnn, NULL, p, v, 4, &y, &jv, 1), CG_OK);
  int n, failed = 0;
  const cg_grad_case *cases = cg_grad_cases(&n);
  for (int i = 0; i < n; i++) {
    cg_scope s = cg_scope_begin();
    failed += check_case_jvp(&cases[i], 1 + (uint64_t)i);
    cg_scope_end(s);
  }
  cg_set_check_gradients(0);
  assert_int_equal(failed, 0);
}

/* --- reproducibility ---------------------------------------------------------------------------- */
static void gradients(cg_tensor **out)
{
  int64_t xs[2] = {64, 256}, ws[2] = {256, 256};
  cg_tensor *x = cg_random_normal(CG_F32, 2, xs, 0, 1, 1), *w = cg_random_normal(CG_F32, 2, ws, 0, 0.1, 2);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, w);
  cg_tensor *y = cg_mean(cg_tanh(cg_matmul(cg_tanh(cg_matmul(x, w)), w)), NULL, 0, 0);
  cg_tape_end(tape);
  cg_tape_gradient(tape, y, &w, 1, out, NULL);
  cg_tape_free(tape);
}

static void gradients_are_bitwise_reproducible(void **state)
{
  /* run to run, at each thread count OpenBLAS may use (its multi-threaded GEMM splits the work
     differently from its single-threaded one, so across thread counts results may differ in
     the last bit: see docs/design-notes.md) */
  for (int threads = 1; threads <= 2; threads++) {
    cg_tensor *g[2];
    openblas_set_num_threads(threads);
    gradients(&g[0]);
    gradients(&g[1]);
    assert_memory_equal(cg_tensor_data(g[0]), cg_tensor_data(g[1]), (size_t)cg_tensor_size(g[0]) * sizeof(float));
  }
  openblas_set_num_threads(1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(rules_are_counted),
      cgt_test(once_differentiable_rules_refuse_a_second_derivative),
      cgt_test(needs_input_grad_and_non_differentiable_outputs),
      cgt_test(hooks_see_and_replace_gradients),
      cgt_test(explain_names_the_broken_link),
      cgt_test(check_on_register_catches_a_wrong_rule),
      cgt_test(check_on_register_covers_jvp_rules),
      cgt_test(jvp_check_where_the_op_refuses_the_probe),
      cgt_test(check_on_register_is_quiet_at_kinks),
      cgt_test(check_on_register_leaves_traced_functions_alone),
      cgt_test(check_on_register_passes_every_builtin_jvp_rule),
      cgt_test(gradients_are_bitwise_reproducible),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

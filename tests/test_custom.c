/* test_custom.c - custom gradients: clipping and straight-through backward passes, several
 * inputs and outputs, saved tensors, variables read in the forward, nesting, second order
 * through a backward built from ops, and every way a user's callback can break its contract. */
#include "util.h"
#include <math.h>

static cg_tensor *vec(int n, const double *v)
{
  int64_t shape[1] = {n};
  return cgt_f64(1, shape, v);
}

/* --- identity forward, gradient clipped to [-1, 1] --------------------------------------- */
static cg_status clip_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  return cg_status_of(y[0]);
}
static cg_status clip_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  dx[0] = cg_maximum(cg_minimum(dy[0], cg_scalar_like(dy[0], 1)), cg_scalar_like(dy[0], -1));
  return cg_status_of(dx[0]);
}
static const cg_custom_def clip = {"ClipGradient", 1, 1, clip_fwd, clip_bwd, NULL};

static void clipped_gradient(void **state)
{
  cg_tensor *x = vec(3, (double[]){1, 2, 3}), *y;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  assert_int_equal(cg_custom_gradient(&clip, &x, &y), CG_OK);
  cg_tensor *loss = cg_sum(cg_mul(y, cg_scalar_like(y, 5)), NULL, 0, 0);
  cg_tape_end(tape);
  cg_tensor *dx;
  assert_int_equal(cg_tape_gradient(tape, loss, &x, 1, &dx, NULL), CG_OK);
  int64_t s[1] = {3};
  assert_tensor(y, CG_F64, 1, s, ((double[]){1, 2, 3}), 0);
  assert_tensor(dx, CG_F64, 1, s, ((double[]){1, 1, 1}), 0); /* 5 clipped to 1 */
  cg_tape_free(tape);
}

/* --- two inputs, two outputs, saved tensors: (a*b, a+b) ---------------------------------- */
static cg_status two_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  cg_ctx_save(ctx, x[0]);
  cg_ctx_save(ctx, x[1]);
  y[0] = cg_mul(x[0], x[1]);
  y[1] = cg_add(x[0], x[1]);
  return cg_status_of(y[1]);
}
static cg_status two_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  cg_tensor *a = cg_ctx_saved(ctx, 0), *b = cg_ctx_saved(ctx, 1);
  dx[0] = cg_add(cg_mul(dy[0], b), dy[1]);
  dx[1] = cg_add(cg_mul(dy[0], a), dy[1]);
  return cg_status_of(dx[1]);
}
static const cg_custom_def two = {"MulAndAdd", 2, 2, two_fwd, two_bwd, NULL};

static void several_inputs_and_outputs(void **state)
{
  cg_tensor *x[2] = {cg_scalar(CG_F64, 3), cg_scalar(CG_F64, 4)}, *y[2];
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tape_watch(tape, x[0]);
  cg_tape_watch(tape, x[1]);
  assert_int_equal(cg_custom_gradient(&two, x, y), CG_OK);
  cg_tensor *only_first = cg_mul(y[0], cg_scalar(CG_F64, 2));
  cg_tensor *both = cg_add(y[0], cg_mul(y[1], cg_scalar(CG_F64, 10)));
  cg_tape_end(tape);
  cg_tensor *g[2];
  assert_int_equal(cg_tape_gradient(tape, only_first, x, 2, g, NULL), CG_OK); /* dy[1] = 0 */
  assert_tensor(g[0], CG_F64, 0, NULL, ((double[]){8}), 0);
  assert_tensor(g[1], CG_F64, 0, NULL, ((double[]){6}), 0);
  assert_int_equal(cg_tape_gradient(tape, both, x, 2, g, NULL), CG_OK);
  assert_tensor(g[0], CG_F64, 0, NULL, ((double[]){14}), 0);
  assert_tensor(g[1], CG_F64, 0, NULL, ((double[]){13}), 0);
  cg_tape_free(tape);
}

/* --- a variable read in the forward: y = w * x; backward must give dw -------------------- */
typedef struct { cg_var *w; int give_dvar; } scale_user;
static cg_status scale_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  scale_user *u = cg_ctx_user(ctx);
  y[0] = cg_mul(cg_var_read(u->w), x[0]);
  return cg_status_of(y[0]);
}
static cg_status scale_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  scale_user *u = cg_ctx_user(ctx);
  assert_int_equal(cg_ctx_num_vars(ctx), 1);
  assert_ptr_equal(cg_ctx_var(ctx, 0), u->w);
  dx[0] = cg_mul(dy[0], cg_var_value(u->w));
  if (u->give_dvar) dv[0] = cg_sum(cg_mul(dy[0], cg_ctx_input(ctx, 0)), NULL, 0, 0);
  return CG_OK;
}

static void variables_read_in_the_forward(void **state)
{
  scale_user u = {cg_var_new("scale", cg_scalar(CG_F64, 3), 1), 1};
  cg_custom_def def = {"Scale", 1, 1, scale_fwd, scale_bwd, &u};
  cg_tensor *x = vec(2, (double[]){1, 2}), *y;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  assert_int_equal(cg_custom_gradient(&def, &x, &y), CG_OK);
  cg_tensor *loss = cg_sum(y, NULL, 0, 0);
  cg_tape_end(tape);
  cg_tensor *src[2] = {x, cg_var_value(u.w)}, *g[2];
  assert_int_equal(cg_tape_gradient(tape, loss, src, 2, g, NULL), CG_OK);
  int64_t s[1] = {2};
  assert_tensor(g[0], CG_F64, 1, s, ((double[]){3, 3}), 0);
  assert_tensor(g[1], CG_F64, 0, NULL, ((double[]){3}), 0);
  cg_tape_free(tape);

  u.give_dvar = 0; /* the common mistake: forgetting the variable's gradient */
  tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  assert_int_equal(cg_custom_gradient(&def, &x, &y), CG_OK);
  loss = cg_sum(y, NULL, 0, 0);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, loss, src, 2, g, NULL), CG_EUSER);
  assert_error(CG_EUSER, "Scale: custom backward gave no gradient for variable 'scale'");
  cg_tape_free(tape);
  cg_var_free(u.w);
}

/* --- contract violations ------------------------------------------------------------------ */
typedef enum { WRONG_SHAPE, WRONG_DTYPE, FAILS, NOTHING } bad_kind;
static cg_status bad_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  bad_kind *k = cg_ctx_user(ctx);
  if (*k == NOTHING) return CG_OK; /* leaves y[0] NULL */
  y[0] = cg_square(x[0]);
  return cg_status_of(y[0]);
}
static cg_status bad_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  bad_kind *k = cg_ctx_user(ctx);
  int64_t s[1] = {5};
  if (*k == WRONG_SHAPE) dx[0] = cg_ones(CG_F64, 1, s);
  if (*k == WRONG_DTYPE) dx[0] = cg_cast(dy[0], CG_F32);
  if (*k == FAILS) return cg_set_error(CG_EUSER, "Bad: my backward cannot do that");
  return CG_OK;
}

static void broken_callbacks_are_clear_errors(void **state)
{
  bad_kind kind;
  cg_custom_def def = {"Bad", 1, 1, bad_fwd, bad_bwd, &kind};
  cg_tensor *x = vec(3, (double[]){1, 2, 3}), *y, *dx;
  const struct { bad_kind kind; cg_status code; const char *msg; } cases[] = {
      {WRONG_SHAPE, CG_EUSER, "Bad: the gradient for input 0 has shape [5], expected [3] (the input's)"},
      {WRONG_DTYPE, CG_EUSER, "Bad: the gradient for input 0 has dtype f32, expected f64"},
      {FAILS, CG_EUSER, "Bad: my backward cannot do that"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    kind = cases[i].kind;
    cg_tape *tape = cg_tape_begin(0);
    cg_tape_watch(tape, x);
    assert_int_equal(cg_custom_gradient(&def, &x, &y), CG_OK);
    cg_tape_end(tape);
    assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), cases[i].code);
    assert_error(cases[i].code, cases[i].msg);
    assert_null(dx);
    cg_tape_free(tape);
  }
  kind = NOTHING;
  assert_int_equal(cg_custom_gradient(&def, &x, &y), CG_EUSER);
  assert_error(CG_EUSER, "Bad: custom forward returned no tensor for output 0 of 1");
  assert_null(y);
  assert_int_equal(cg_custom_gradient(NULL, &x, &y), CG_EINVAL);
  assert_error(CG_EINVAL, "needs a name, a forward and a backward");
  cg_tensor *nul = NULL;
  assert_int_equal(cg_custom_gradient(&def, &nul, &y), CG_EINVAL);
  assert_error(CG_EINVAL, "Bad: input 0 is NULL");
  /* the tensors used are still fine */
  assert_true(cg_tensor_get(x, 2) == 3);
}

/* --- nesting and second order ---------------------------------------------------------------- */
/* Outer: y = clip(x)^3 with its own backward 3 x^2 dy, built from ops. */
static cg_status cube_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  cg_tensor *inner;
  cg_status st = cg_custom_gradient(&clip, x, &inner); /* a custom gradient inside a forward */
  if (st != CG_OK) return st;
  cg_ctx_save(ctx, x[0]);
  y[0] = cg_mul(cg_square(inner), inner);
  return cg_status_of(y[0]);
}
static cg_status cube_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  cg_tensor *x = cg_ctx_saved(ctx, 0);
  dx[0] = cg_mul(dy[0], cg_mul(cg_scalar_like(x, 3), cg_square(x)));
  return cg_status_of(dx[0]);
}
static const cg_custom_def cube = {"Cube", 1, 1, cube_fwd, cube_bwd, NULL};

static void nesting_and_second_order(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 2), *y, *dy, *d2y;
  cg_tape *outer = cg_tape_begin(0), *inner = cg_tape_begin(0);
  cg_tape_watch(outer, x);
  cg_tape_watch(inner, x);
  assert_int_equal(cg_custom_gradient(&cube, &x, &y), CG_OK);
  cg_tape_end(inner);
  assert_int_equal(cg_tape_gradient(inner, y, &x, 1, &dy, NULL), CG_OK);
  cg_tape_end(outer);
  assert_int_equal(cg_tape_gradient(outer, dy, &x, 1, &d2y, NULL), CG_OK);
  assert_tensor(y, CG_F64, 0, NULL, ((double[]){8}), 0);
  assert_tensor(dy, CG_F64, 0, NULL, ((double[]){12}), 0);
  assert_tensor(d2y, CG_F64, 0, NULL, ((double[]){12}), 0); /* 6x */
  cg_tape_free(inner);
  cg_tape_free(outer);
}

/* A custom gradient's backward can be checked like any function. */
static cg_tensor *cube_fn(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *y;
  return cg_custom_gradient(&cube, x, &y) == CG_OK ? y : NULL;
}

static void gradcheck_of_a_custom_gradient(void **state)
{
  cg_tensor *x = vec(3, (double[]){0.5, -1.5, 2});
  assert_gradcheck(cube_fn, NULL, &x, 1, 2);
}

static void straight_through_estimator(void **state)
{
  /* y = round(x) forward, identity backward: the classic STE for quantisation */
  cg_tensor *x = vec(3, (double[]){0.2, 1.7, -2.4}), *y, *dx;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *rounded = cg_round(x);
  cg_tensor *ste = cg_add(x, cg_stop_gradient(cg_sub(rounded, x))); /* the tf idiom */
  y = cg_sum(cg_mul(ste, ste), NULL, 0, 0);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_OK);
  int64_t s[1] = {3};
  assert_tensor(dx, CG_F64, 1, s, ((double[]){0, 4, -4}), 0); /* 2 round(x) */
  cg_tape_free(tape);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(clipped_gradient),
      cgt_test(several_inputs_and_outputs),
      cgt_test(variables_read_in_the_forward),
      cgt_test(broken_callbacks_are_clear_errors),
      cgt_test(nesting_and_second_order),
      cgt_test(gradcheck_of_a_custom_gradient),
      cgt_test(straight_through_estimator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

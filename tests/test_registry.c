/* test_registry.c - user-defined op types and gradients, cg_call by name, gradient
 * overrides (gradient_override_map semantics), op libraries loaded at run time, and the
 * errors for unknown names, duplicates, missing gradients and an empty override stack. */
#include "util.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* --- a user op: Cubic, y = x^3 (f64 only), gradient 3 x^2 dy ------------------------------ */
static cg_status cubic_infer(cg_node *n)
{
  if (cg_tensor_dtype(cg_node_input(n, 0)) != CG_F64)
    return cg_set_error(CG_EDTYPE, "Cubic: only f64 is supported");
  return cg_infer_same_as_input(n, 0);
}
static cg_status cubic_run(cg_node *n)
{
  const double *x = cg_tensor_data(cg_node_input(n, 0));
  double *y = cg_tensor_data(cg_node_output(n, 0));
  for (int64_t i = 0; i < cg_tensor_size(cg_node_input(n, 0)); i++) y[i] = x[i] * x[i] * x[i];
  return CG_OK;
}
static cg_status cubic_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  dx[0] = cg_mul(dy[0], cg_mul(cg_scalar_like(x, 3), cg_square(x)));
  return cg_status_of(dx[0]);
}
static const cg_op_def cubic = {"Cubic", 1, cubic_infer, cubic_run, 0, NULL};
static const cg_op_def gradless = {"Gradless", 1, cubic_infer, cubic_run, 0, NULL};

static int group_setup(void **state)
{
  if (cg_register_op(&cubic, 0) != CG_OK || cg_register_gradient("Cubic", cubic_grad, NULL, 0) != CG_OK ||
      cg_register_op(&gradless, 0) != CG_OK)
    return -1;
  return 0;
}

static cg_tensor *call_cubic(cg_tensor *const *x, int n, void *user) { return cg_call("Cubic", x, n, NULL); }

static void user_op_under_a_tape(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 2), *dx;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_call("Cubic", &x, 1, NULL);
  cg_tape_end(tape);
  assert_tensor(y, CG_F64, 0, NULL, ((double[]){8}), 0);
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_OK);
  assert_tensor(dx, CG_F64, 0, NULL, ((double[]){12}), 0);
  cg_tape_free(tape);
  int64_t s[1] = {4};
  cg_tensor *v = cg_random_uniform(CG_F64, 1, s, -2, 2, 3);
  assert_gradcheck(call_cubic, NULL, &v, 1, 2);
}

static void registry_errors(void **state)
{
  assert_int_equal(cg_register_op(&cubic, 0), CG_EEXIST);
  assert_error(CG_EEXIST, "op type 'Cubic' is already registered");
  assert_int_equal(cg_register_op(&cubic, CG_REGISTER_REPLACE), CG_OK);
  assert_int_equal(cg_register_gradient("Cubic", cubic_grad, NULL, 0), CG_EEXIST);
  assert_error(CG_EEXIST, "a gradient named 'Cubic' is already registered");
  assert_int_equal(cg_register_gradient("Cubic", cubic_grad, NULL, CG_REGISTER_REPLACE), CG_OK);
  cg_op_def nameless = cubic;
  nameless.name = NULL;
  assert_int_equal(cg_register_op(&nameless, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "needs a name");
  cg_tensor *x = cg_scalar(CG_F64, 1);
  assert_null(cg_call("NoSuchOp", &x, 1, NULL));
  assert_error(CG_ENOTFOUND, "unknown op type 'NoSuchOp'");
  cg_tensor *two[2] = {x, x};
  assert_null(cg_call("Cubic", two, 2, NULL));
  assert_error(CG_EINVAL, "Cubic: takes 1 inputs, got 2");
  cg_tensor *i = cg_scalar(CG_I32, 1);
  assert_null(cg_call("Cubic", &i, 1, NULL));
  assert_error(CG_EDTYPE, "Cubic: only f64");
  assert_non_null(cg_find_op("Tanh"));
  assert_true(cg_has_gradient("Tanh"));
  assert_false(cg_has_gradient("Gradless"));
}

static void missing_gradient_names_the_op(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 2), *dx;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_tanh(cg_call("Gradless", &x, 1, NULL));
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_ENOGRAD);
  assert_error(CG_ENOGRAD, "Gradless: no gradient is registered for this op type");
  cg_tape_free(tape);
}

/* --- overrides: the TensorFlow scene ---------------------------------------------------------- */
static cg_status times_two(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_scalar_like(dy[0], 2));
  return cg_status_of(dx[0]);
}
static cg_status times_ten(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_scalar_like(dy[0], 10));
  return cg_status_of(dx[0]);
}

static double dsquare_at_3(void)
{
  cg_tensor *x = cg_scalar(CG_F64, 3), *dx;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_square(x);
  cg_tape_end(tape);
  double v = cg_tape_gradient(tape, y, &x, 1, &dx, NULL) == CG_OK ? cg_item(dx) : NAN;
  cg_tape_free(tape);
  return v;
}

static void override_scope_decides_at_record_time(void **state)
{
  assert_int_equal(cg_register_gradient("CustomGradient", times_two, NULL, 0), CG_OK);
  assert_int_equal(cg_register_gradient("TimesTen", times_ten, NULL, 0), CG_OK);
  assert_true(dsquare_at_3() == 6);
  assert_int_equal(cg_gradient_override_push("Square", "CustomGradient"), CG_OK);
  assert_true(dsquare_at_3() == 2);
  assert_int_equal(cg_gradient_override_push("Square", "TimesTen"), CG_OK); /* innermost wins */
  assert_true(dsquare_at_3() == 10);
  assert_int_equal(cg_gradient_override_pop(), CG_OK);
  assert_true(dsquare_at_3() == 2);

  /* recorded inside the scope, differentiated after it: the override still applies */
  cg_tensor *x = cg_scalar(CG_F64, 3), *dx;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_square(x);
  cg_tape_end(tape);
  assert_int_equal(cg_gradient_override_pop(), CG_OK);
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_OK);
  assert_true(cg_item(dx) == 2);
  cg_tape_free(tape);
  assert_true(dsquare_at_3() == 6);

  assert_int_equal(cg_gradient_override_pop(), CG_ESTATE);
  assert_error(CG_ESTATE, "override stack is empty");
  assert_int_equal(cg_gradient_override_push("Square", "NeverRegistered"), CG_OK);
  assert_true(isnan(dsquare_at_3()));
  assert_error(CG_ENOGRAD, "Square: no gradient is registered under the name 'NeverRegistered'");
  assert_int_equal(cg_gradient_override_pop(), CG_OK);
}

static void *other_thread(void *arg)
{
  cg_scope s = cg_scope_begin();
  *(double *)arg = dsquare_at_3();
  cg_scope_end(s);
  return NULL;
}

static void overrides_belong_to_their_thread(void **state)
{
  assert_int_equal(cg_gradient_override_push("Square", "CustomGradient"), CG_OK);
  double seen = 0;
  pthread_t t;
  pthread_create(&t, NULL, other_thread, &seen);
  pthread_join(t, NULL);
  assert_true(seen == 6);
  assert_true(dsquare_at_3() == 2);
  assert_int_equal(cg_gradient_override_pop(), CG_OK);
}

/* --- op libraries ---------------------------------------------------------------------------- */
static cg_tensor *call_softclip(cg_tensor *const *x, int n, void *user) { return cg_call("SoftClip", x, n, NULL); }

static void load_op_library(void **state)
{
  char path[1024];
  const char *build = getenv("CGRAD_BUILD");
  snprintf(path, sizeof path, "%s/libmyops.so", build ? build : ".");
  assert_int_equal(cg_load_op_library(path), CG_OK);
  int64_t s[1] = {3};
  cg_tensor *x = cgt_f64(1, s, (double[]){-3, 0.5, 1});
  assert_tensor(cg_call("SoftClip", &x, 1, NULL), CG_F64, 1, s, ((double[]){-0.75, 1.0 / 3, 0.5}), 1e-15);
  assert_gradcheck(call_softclip, NULL, &x, 1, 1);
  assert_int_equal(cg_load_op_library("/nonexistent/libnothing.so"), CG_EIO);
  assert_error(CG_EIO, "libnothing.so");
  assert_int_equal(cg_load_op_library(NULL), CG_EINVAL);
  cg_clear_error();
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(user_op_under_a_tape),
      cgt_test(registry_errors),
      cgt_test(missing_gradient_names_the_op),
      cgt_test(override_scope_decides_at_record_time),
      cgt_test(overrides_belong_to_their_thread),
      cgt_test(load_op_library),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}

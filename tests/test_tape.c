/* test_tape.c - gradient tapes: first and higher derivatives, persistence, watching and
 * auto-watching variables, pausing, StopGradient, output gradients, unconnected and integer
 * sources, Jacobians, broadcast reduction, and misuse. */
#include "util.h"
#include <math.h>

static cg_tensor *vec(int n, const double *v)
{
  int64_t shape[1] = {n};
  return cgt_f64(1, shape, v);
}

static void first_derivative(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 3);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_mul(cg_square(x), x); /* x^3 */
  cg_tape_end(tape);
  cg_tensor *dx;
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_OK);
  assert_tensor(dx, CG_F64, 0, NULL, ((double[]){27}), 1e-12); /* 3x^2 */
  /* non-persistent: once */
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_ESTATE);
  assert_error(CG_ESTATE, "CG_TAPE_PERSISTENT");
  cg_tape_free(tape);
}

static void nested_tapes_give_second_derivatives(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 2);
  cg_tape *outer = cg_tape_begin(0);
  cg_tape_watch(outer, x);
  cg_tape *inner = cg_tape_begin(0);
  cg_tape_watch(inner, x);
  cg_tensor *y = cg_mul(cg_square(x), x); /* x^3 */
  cg_tape_end(inner);
  cg_tensor *dy, *d2y;
  assert_int_equal(cg_tape_gradient(inner, y, &x, 1, &dy, NULL), CG_OK); /* 3x^2 = 12 */
  cg_tape_end(outer);
  assert_int_equal(cg_tape_gradient(outer, dy, &x, 1, &d2y, NULL), CG_OK); /* 6x = 12 */
  assert_tensor(dy, CG_F64, 0, NULL, ((double[]){12}), 1e-12);
  assert_tensor(d2y, CG_F64, 0, NULL, ((double[]){12}), 1e-12);
  cg_tape_free(inner);
  cg_tape_free(outer);
}

static void third_derivative_of_sin(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 0.5);
  cg_tape *t[3];
  for (int i = 0; i < 3; i++) {
    t[i] = cg_tape_begin(0);
    cg_tape_watch(t[i], x);
  }
  cg_tensor *y = cg_sin(x), *g = y;
  for (int i = 2; i >= 0; i--) {
    cg_tape_end(t[i]);
    assert_int_equal(cg_tape_gradient(t[i], g, &x, 1, &g, NULL), CG_OK);
  }
  assert_tensor(g, CG_F64, 0, NULL, ((double[]){-cos(0.5)}), 1e-12);
  for (int i = 0; i < 3; i++) cg_tape_free(t[i]);
}

static void persistent_tape_and_several_targets(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 4);
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_square(x), *z = cg_sqrt(x);
  cg_tape_end(tape);
  cg_tensor *dy, *dz;
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dy, NULL), CG_OK);
  assert_int_equal(cg_tape_gradient(tape, z, &x, 1, &dz, NULL), CG_OK);
  assert_tensor(dy, CG_F64, 0, NULL, ((double[]){8}), 1e-12);
  assert_tensor(dz, CG_F64, 0, NULL, ((double[]){0.25}), 1e-12);
  cg_tape_free(tape);
}

static void a_tensor_used_twice_accumulates(void **state)
{
  cg_tensor *x = vec(2, (double[]){1, 2});
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_sum(cg_add(cg_mul(x, x), cg_exp(x)), NULL, 0, 0); /* sum x^2 + e^x */
  cg_tape_end(tape);
  cg_tensor *dx;
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_OK);
  int64_t s[1] = {2};
  assert_tensor(dx, CG_F64, 1, s, ((double[]){2 + exp(1), 4 + exp(2)}), 1e-12);
  cg_tape_free(tape);
}

static void broadcast_gradients_are_summed_back(void **state)
{
  int64_t s23[2] = {2, 3}, s3[1] = {3};
  cg_tensor *a = cgt_f64(2, s23, (double[]){1, 2, 3, 4, 5, 6});
  cg_tensor *b = cgt_f64(1, s3, (double[]){10, 20, 30});
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, a);
  cg_tape_watch(tape, b);
  cg_tensor *y = cg_sum(cg_mul(a, b), NULL, 0, 0);
  cg_tape_end(tape);
  cg_tensor *src[2] = {a, b}, *g[2];
  assert_int_equal(cg_tape_gradient(tape, y, src, 2, g, NULL), CG_OK);
  assert_tensor(g[0], CG_F64, 2, s23, ((double[]){10, 20, 30, 10, 20, 30}), 0);
  assert_tensor(g[1], CG_F64, 1, s3, ((double[]){5, 7, 9}), 0);
  cg_tape_free(tape);
}

static void output_gradients_seed_the_target(void **state)
{
  cg_tensor *x = vec(2, (double[]){1, 2});
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_square(x);
  cg_tape_end(tape);
  cg_grad_opts opts = {.output_gradient = vec(2, (double[]){10, 100})};
  cg_tensor *dx;
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, &opts), CG_OK);
  int64_t s[1] = {2};
  assert_tensor(dx, CG_F64, 1, s, ((double[]){20, 400}), 0);
  opts.output_gradient = vec(3, (double[]){1, 1, 1});
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, &opts), CG_ESHAPE);
  assert_error(CG_ESHAPE, "output_gradient is f64 [3] but the target is f64 [2]");
  cg_tape_free(tape);
}

static void unconnected_integer_and_stopped_sources(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 2), *u = cg_scalar(CG_F64, 5), *k = cg_scalar(CG_I64, 3);
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tape_watch(tape, x);
  cg_tape_watch(tape, u);
  cg_tape_watch(tape, k);
  cg_tensor *y = cg_add(cg_square(x), cg_stop_gradient(cg_mul(x, u)));
  cg_tape_end(tape);
  cg_tensor *src[3] = {x, u, k}, *g[3];
  assert_int_equal(cg_tape_gradient(tape, y, src, 3, g, NULL), CG_OK);
  assert_tensor(g[0], CG_F64, 0, NULL, ((double[]){4}), 0); /* StopGradient cut x*u */
  assert_null(g[1]);                                        /* unconnected: NONE */
  assert_null(g[2]);                                        /* integers: never */
  cg_grad_opts zero = {.unconnected = CG_UNCONNECTED_ZERO};
  assert_int_equal(cg_tape_gradient(tape, y, src, 3, g, &zero), CG_OK);
  assert_tensor(g[1], CG_F64, 0, NULL, ((double[]){0}), 0);
  assert_null(g[2]);
  cg_tape_free(tape);
}

static void pausing_stops_recording(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 3);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *a = cg_square(x);
  cg_pause_recording();
  cg_tensor *b = cg_mul(a, x); /* not recorded: b is a constant to the tape */
  assert_int_equal(cg_resume_recording(), CG_OK);
  cg_tensor *y = cg_add(a, b);
  cg_tape_end(tape);
  cg_tensor *dx;
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_OK);
  assert_tensor(dx, CG_F64, 0, NULL, ((double[]){6}), 0);
  assert_int_equal(cg_resume_recording(), CG_ESTATE);
  assert_error(CG_ESTATE, "not paused");
  cg_tape_free(tape);
}

static void variables_are_watched_automatically(void **state)
{
  cg_var *w = cg_var_new("w", cg_scalar(CG_F64, 2), 1);
  cg_var *frozen = cg_var_new("frozen", cg_scalar(CG_F64, 5), 0);
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tensor *y = cg_mul(cg_square(cg_var_read(w)), cg_var_read(frozen));
  cg_tape_end(tape);
  cg_tensor *src[2] = {cg_var_value(w), cg_var_value(frozen)}, *g[2];
  assert_int_equal(cg_tape_gradient(tape, y, src, 2, g, NULL), CG_OK);
  assert_tensor(g[0], CG_F64, 0, NULL, ((double[]){20}), 0); /* 2 w * 5 */
  assert_null(g[1]);                                        /* not trainable: not watched */
  cg_tape_free(tape);

  tape = cg_tape_begin(CG_TAPE_NO_AUTO_WATCH);
  y = cg_square(cg_var_read(w));
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, y, src, 1, g, NULL), CG_OK);
  assert_null(g[0]);
  cg_tape_free(tape);

  assert_int_equal(cg_var_assign_sub(w, cg_scalar(CG_F64, 0.5)), CG_OK);
  assert_true(cg_item(cg_var_value(w)) == 1.5);
  assert_int_equal(cg_var_assign(w, cg_scalar(CG_F32, 1)), CG_EDTYPE);
  assert_error(CG_EDTYPE, "variable 'w' is f64 [], the value is f32 []");
  cg_var_free(w);
  cg_var_free(frozen);
}

static void jacobian(void **state)
{
  cg_tensor *x = vec(3, (double[]){1, 2, 3});
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_mul(cg_square(x), cg_scalar(CG_F64, 2)); /* y_i = 2 x_i^2 */
  cg_tape_end(tape);
  cg_tensor *j = cg_tape_jacobian(tape, y, x);
  int64_t s[2] = {3, 3};
  assert_tensor(j, CG_F64, 2, s, ((double[]){4, 0, 0, 0, 8, 0, 0, 0, 12}), 0);
  cg_tape_free(tape);
}

static void misuse_is_an_error(void **state)
{
  cg_tape *a = cg_tape_begin(0), *b = cg_tape_begin(0);
  assert_int_equal(cg_tape_end(a), CG_ESTATE);
  assert_error(CG_ESTATE, "end the inner tape first");
  assert_int_equal(cg_tape_end(b), CG_OK);
  assert_int_equal(cg_tape_end(b), CG_ESTATE);
  assert_error(CG_ESTATE, "already ended");
  assert_int_equal(cg_tape_end(a), CG_OK);
  cg_tensor *x = cg_scalar(CG_F64, 1), *out;
  assert_int_equal(cg_tape_gradient(a, NULL, &x, 1, &out, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "input 0 is NULL");
  assert_int_equal(cg_tape_gradient(NULL, x, &x, 1, &out, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "tape is NULL");
  cg_tensor *srcs[1] = {NULL};
  assert_int_equal(cg_tape_gradient(a, x, srcs, 1, &out, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "source 0 is NULL");
  cg_tape_free(a);
  cg_tape_free(b);
  cg_tape_free(cg_tape_begin(0)); /* freeing a recording tape removes it from the stack */
  assert_null(cg_square(NULL));
  assert_error(CG_EINVAL, "Square: input 0 is NULL");
}

static void null_propagates_the_first_error(void **state)
{
  int64_t s2[1] = {2}, s3[1] = {3};
  cg_tensor *y = cg_exp(cg_tanh(cg_add(cg_zeros(CG_F64, 1, s2), cg_zeros(CG_F64, 1, s3))));
  assert_null(y);
  assert_error(CG_ESHAPE, "Add: shapes do not broadcast: [2] vs [3]");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(first_derivative),
      cgt_test(nested_tapes_give_second_derivatives),
      cgt_test(third_derivative_of_sin),
      cgt_test(persistent_tape_and_several_targets),
      cgt_test(a_tensor_used_twice_accumulates),
      cgt_test(broadcast_gradients_are_summed_back),
      cgt_test(output_gradients_seed_the_target),
      cgt_test(unconnected_integer_and_stopped_sources),
      cgt_test(pausing_stops_recording),
      cgt_test(variables_are_watched_automatically),
      cgt_test(jacobian),
      cgt_test(misuse_is_an_error),
      cgt_test(null_propagates_the_first_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

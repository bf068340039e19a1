/* test_numerics.c - the numeric check mode: the first op producing NaN or Inf is reported
 * by type, position and input shapes, in the forward and the backward pass, eagerly and in
 * graph runs; off, the same computations go through. */
#include "util.h"
#include <math.h>
#include <string.h>

static int teardown_off(void **state)
{
  cg_set_check_numerics(0);
  return cgt_teardown(state);
}
#define numerics_test(f) cmocka_unit_test_setup_teardown(f, cgt_setup, teardown_off)

static void forward_nan_is_reported_with_its_position(void **state)
{
  int64_t s3[1] = {3};
  cg_tensor *x = cgt_f64(1, s3, (double[]){1, 0, 2});
  cg_set_check_numerics(1);
  assert_true(cg_check_numerics_enabled());
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_exp(x);      /* op #1: fine */
  assert_non_null(y);
  assert_null(cg_log(cg_sub(x, cg_ones_like(x)))); /* op #2 Sub fine, op #3 Log(0) = -Inf */
  assert_error(CG_ECHECK, "check numerics: Log produced -Inf at element 0 of output 0 (f64 [3]) "
                          "(op #3 on the innermost tape), in the forward pass; inputs [3]");
  cg_tape_free(tape);
  cg_set_check_numerics(0);
  assert_non_null(cg_log(cg_sub(x, cg_ones_like(x)))); /* off: NaN flows silently */
}

static void backward_inf_names_the_gradient(void **state)
{
  cg_tensor *x = cg_scalar(CG_F64, 0);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_sqrt(x); /* forward fine: sqrt(0) = 0 */
  cg_tape_end(tape);
  cg_set_check_numerics(1);
  cg_tensor *dx;
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_ECHECK); /* 0.5/sqrt(0) */
  assert_true(strstr(cg_last_error(), "in the backward pass, inside the gradient of Sqrt") != NULL);
  assert_true(strstr(cg_last_error(), "+Inf") != NULL);
  cg_clear_error();
  cg_tape_free(tape);
}

static void graph_runs_report_the_step(void **state)
{
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F32, 1, (int64_t[]){-1}, "x");
  cg_tensor *y = cg_reciprocal(cg_mul(x, x));
  cg_graph_exit(g);
  cg_set_check_numerics(1);
  int64_t s2[1] = {2};
  cg_feed ok = {x, cgt_f32(1, s2, (double[]){1, 2})}, bad = {x, cgt_f32(1, s2, (double[]){1, 0})};
  cg_tensor *out;
  assert_int_equal(cg_graph_run(g, &ok, 1, &y, 1, &out), CG_OK);
  assert_int_equal(cg_graph_run(g, &bad, 1, &y, 1, &out), CG_ECHECK);
  assert_error(CG_ECHECK, "Reciprocal produced +Inf at element 1 of output 0 (f32 [2]) (graph step 2 of 2)");
  cg_graph_free(g);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      numerics_test(forward_nan_is_reported_with_its_position),
      numerics_test(backward_inf_names_the_gradient),
      numerics_test(graph_runs_report_the_step),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

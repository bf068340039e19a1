/* test_gradcheck.c - gradient checking itself (known Jacobians, a wrong gradient caught
 * with a useful report), the whole gradient-check table at first and second order, and the
 * meta-test: every registered differentiable op has a row. */
#include "util.h"
#include "cases.h"
#include <stdio.h>
#include <string.h>

static cg_tensor *product(cg_tensor *const *x, int n, void *user) { return cg_mul(x[0], x[1]); }

static void known_jacobians(void **state)
{
  int64_t s[1] = {2};
  cg_tensor *x[2] = {cgt_f64(1, s, (double[]){1, 2}), cgt_f64(1, s, (double[]){3, 4})};
  cg_tensor *jt[2], *jn[2];
  assert_int_equal(cg_compute_gradient(product, NULL, x, 2, 0, jt, jn), CG_OK);
  int64_t s22[2] = {2, 2};
  assert_tensor(jt[0], CG_F64, 2, s22, ((double[]){3, 0, 0, 4}), 0);
  assert_tensor(jt[1], CG_F64, 2, s22, ((double[]){1, 0, 0, 2}), 0);
  assert_tensor(jn[0], CG_F64, 2, s22, ((double[]){3, 0, 0, 4}), 1e-8);
  assert_tensor(jn[1], CG_F64, 2, s22, ((double[]){1, 0, 0, 2}), 1e-8);
}

static cg_status negated(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  dx[0] = cg_mul(dy[0], cg_mul(x, cg_scalar_like(x, -2)));
  return cg_status_of(dx[0]);
}

static cg_tensor *square(cg_tensor *const *x, int n, void *user) { return cg_square(x[0]); }

static void a_wrong_gradient_is_reported(void **state)
{
  assert_int_equal(cg_register_gradient("NegatedSquareGrad", negated, NULL, 0), CG_OK);
  int64_t s[1] = {3};
  cg_tensor *x = cgt_f64(1, s, (double[]){0.5, 1, 2});
  cg_gradcheck_report r;
  assert_int_equal(cg_gradcheck(square, NULL, &x, 1, NULL, &r), CG_OK);
  assert_true(r.ok);
  cg_gradient_override_push("Square", "NegatedSquareGrad");
  assert_int_equal(cg_gradcheck(square, NULL, &x, 1, NULL, &r), CG_ECHECK);
  cg_gradient_override_pop();
  assert_false(r.ok);
  assert_int_equal(r.input, 0);
  assert_int_equal(r.in_index, 2); /* the largest error: x = 2 */
  assert_int_equal(r.out_index, 2);
  assert_true(r.analytic == -4);
  assert_true(r.numeric > 3.999 && r.numeric < 4.001);
  assert_non_null(strstr(r.message, "autodiff gives -4"));
  assert_non_null(strstr(r.message, "sign is flipped"));
  assert_error(CG_ECHECK, "gradient check failed at input 0, element 2");
}

static void float32_uses_looser_defaults(void **state)
{
  int64_t s[1] = {3};
  cg_tensor *x = cgt_f32(1, s, (double[]){0.5, 1, 2});
  cg_gradcheck_report r;
  assert_int_equal(cg_gradcheck(square, NULL, &x, 1, NULL, &r), CG_OK);
}

static void every_differentiable_op_has_a_row(void **state)
{
  int n;
  const cg_grad_case *cases = cg_grad_cases(&n);
  int missing = 0;
  for (int k = 0; k < cg_op_count(); k++) {
    const cg_op_def *def = cg_op_at(k);
    if (def->flags & CG_OP_NOT_DIFFERENTIABLE) continue;
    bool found = false;
    for (int i = 0; i < n && !found; i++) found = strcmp(cases[i].op, def->name) == 0;
    if (!found) {
      print_error("op %s is differentiable but has no gradient-check row\n", def->name);
      missing++;
    }
    if (!cg_has_gradient(def->name)) {
      print_error("op %s is differentiable but has no registered gradient\n", def->name);
      missing++;
    }
  }
  assert_int_equal(missing, 0);
  for (int i = 0; i < n; i++) assert_non_null(cg_find_op(cases[i].op)); /* rows name real ops */
}

static void run_table(int order)
{
  int n, failed = 0, checked = 0;
  const cg_grad_case *cases = cg_grad_cases(&n);
  for (int i = 0; i < n; i++) {
    if (order == 2 && !cases[i].order2) continue;
    cg_gradcheck_report r = {0};
    cg_status st = cg_run_grad_case(&cases[i], CG_F64, order, 1, &r);
    checked++;
    if (st != CG_OK) {
      print_error("%s [%s] order %d: %s\n", cases[i].op, cases[i].label, order,
                  st == CG_ECHECK ? r.message : cg_last_error());
      cg_clear_error();
      failed++;
    }
  }
  print_message("gradient-check table, order %d: %d rows checked, %d failed\n", order, checked, failed);
  assert_int_equal(failed, 0);
}

static void table_first_order(void **state) { run_table(1); }
static void table_second_order(void **state) { run_table(2); }

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(known_jacobians),
      cgt_test(a_wrong_gradient_is_reported),
      cgt_test(float32_uses_looser_defaults),
      cgt_test(every_differentiable_op_has_a_row),
      cgt_test(table_first_order),
      cgt_test(table_second_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* custom_op.c - a new op type written in C: Swish, y = x * sigmoid(x), with its shape rule,
 * its kernel for f32 and f64, and its gradient registered by name, then used under a tape
 * and verified with cg_gradcheck (first and second order). */
#include <cgrad.h>
#include <math.h>
#include <stdio.h>

static cg_status swish_infer(cg_node *n)
{
  cg_dtype d = cg_tensor_dtype(cg_node_input(n, 0));
  if (d != CG_F32 && d != CG_F64)
    return cg_set_error(CG_EDTYPE, "Swish: input must be f32 or f64, got %s", cg_dtype_name(d));
  return cg_infer_same_as_input(n, 0);
}

static cg_status swish_run(cg_node *n)
{
  cg_tensor *x = cg_node_input(n, 0), *y = cg_node_output(n, 0);
  for (int64_t i = 0; i < cg_tensor_size(x); i++) {
    if (cg_tensor_dtype(x) == CG_F32) {
      float v = ((const float *)cg_tensor_data(x))[i];
      ((float *)cg_tensor_data(y))[i] = v / (1 + expf(-v));
    } else {
      double v = ((const double *)cg_tensor_data(x))[i];
      ((double *)cg_tensor_data(y))[i] = v / (1 + exp(-v));
    }
  }
  return CG_OK;
}

/* dy * (s + x s (1 - s)), s = sigmoid(x): built from ops, so differentiable again */
static cg_status swish_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0), *s = cg_sigmoid(x);
  dx[0] = cg_mul(dy[0], cg_add(s, cg_mul(cg_mul(x, s), cg_sub(cg_scalar_like(s, 1), s))));
  return cg_status_of(dx[0]);
}

static cg_tensor *swish(cg_tensor *const *x, int n, void *user) { return cg_call("Swish", x, 1, NULL); }

int main(void)
{
  const cg_op_def def = {.name = "Swish", .n_inputs = 1, .infer = swish_infer, .run = swish_run};
  if (cg_register_op(&def, 0) != CG_OK || cg_register_gradient("Swish", swish_grad, NULL, 0) != CG_OK) {
    fprintf(stderr, "%s\n", cg_last_error());
    return 1;
  }
  cg_scope scope = cg_scope_begin();
  int64_t shape[1] = {3};
  cg_tensor *x = cg_tensor_from(CG_F64, 1, shape, (double[]){-1, 0, 2}), *dx;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_sum(cg_call("Swish", &x, 1, NULL), NULL, 0, 0);
  cg_tape_end(tape);
  cg_tape_gradient(tape, y, &x, 1, &dx, NULL);
  cg_tape_free(tape);
  printf("swish'(x) at -1, 0, 2: ");
  cg_print(dx);

  cg_gradcheck_report report;
  cg_gradcheck_opts opts = {.order = 2};
  cg_status st = cg_gradcheck(swish, NULL, &x, 1, &opts, &report);
  printf("cg_gradcheck (order 2): %s\n", report.message);
  cg_scope_end(scope);
  return st == CG_OK ? 0 : 1;
}

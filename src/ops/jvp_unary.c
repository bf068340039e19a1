/* jvp_unary.c - forward-mode rules of the element-wise ops of one tensor (unary.c):
 * dy = f'(x) dx, one line of math each, with the same factors the gradients use (y where
 * the gradient uses y), so forward and reverse mode agree to rounding. */
#include "jvp_rules.h"
#include "unary_grad.h"

#define X cg_node_input(op, 0)
#define Y cg_node_output(op, 0)
#define T t[0]
/* Rules of one input and one output: out[0] = expression, NULL when there is no tangent. */
#define UNARY_JVP(name, expression)                                                          \
  static cg_status name(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user) \
  {                                                                                          \
    out[0] = expression;                                                                     \
    return cg_status_of(out[0]);                                                             \
  }

/* Neg: dy = -dx */
UNARY_JVP(neg_jvp, cg_neg(T))
/* Abs: dy = sign(x) dx */
UNARY_JVP(abs_jvp, cg_mul(T, cg_sign(X)))
/* Square: dy = 2x dx */
UNARY_JVP(square_jvp, cg_mul(T, cg_mul(cg_scalar_like(X, 2.0), X)))
/* Reciprocal: dy = -y^2 dx */
UNARY_JVP(reciprocal_jvp, cg_neg(cg_mul(T, cg_square(Y))))
/* Sqrt: dy = dx / (2y) */
UNARY_JVP(sqrt_jvp, cg_div(T, cg_mul(cg_scalar_like(Y, 2.0), Y)))
/* Rsqrt: dy = -0.5 y^3 dx */
UNARY_JVP(rsqrt_jvp, cg_mul(T, cg_mul(cg_scalar_like(Y, -0.5), cg_mul(Y, cg_square(Y)))))
/* Exp: dy = y dx */
UNARY_JVP(exp_jvp, cg_mul(T, Y))
/* Expm1: dy = e^x dx (not y + 1, which loses e^x for very negative x) */
UNARY_JVP(expm1_jvp, cg_mul(T, cg_exp(X)))
/* Log: dy = dx / x */
UNARY_JVP(log_jvp, cg_div(T, X))
/* Log1p: dy = dx / (1 + x) */
UNARY_JVP(log1p_jvp, cg_div(T, cg_add(cg_scalar_like(X, 1.0), X)))
/* Sin: dy = cos(x) dx */
UNARY_JVP(sin_jvp, cg_mul(T, cg_cos(X)))
/* Cos: dy = -sin(x) dx */
UNARY_JVP(cos_jvp, cg_neg(cg_mul(T, cg_sin(X))))
/* Tanh: dy = (1 - y^2) dx */
UNARY_JVP(tanh_jvp, cg_mul(T, cg_sub(cg_scalar_like(Y, 1.0), cg_square(Y))))
/* Sigmoid: dy = y (1 - y) dx */
UNARY_JVP(sigmoid_jvp, cg_mul(T, cg_mul(Y, cg_sub(cg_scalar_like(Y, 1.0), Y))))
/* Softplus: dy = sigmoid(x) dx */
UNARY_JVP(softplus_jvp, cg_mul(T, cg_sigmoid(X)))
/* Relu: dy = (x > 0) dx */
UNARY_JVP(relu_jvp, cg_mul(T, cg_cast(cg_greater(X, cg_scalar_like(X, 0.0)), cg_tensor_dtype(X))))
/* LeakyRelu: dy = x > 0 ? dx : alpha dx (alpha defaults to 0.2, as in unary.c) */
UNARY_JVP(leaky_relu_jvp,
          cg_where(cg_greater(X, cg_scalar_like(X, 0.0)), T,
                   cg_mul(T, cg_scalar_like(X, cg_node_attr_float(op, "alpha", 0.2)))))
/* Elu: dy = x > 0 ? dx : (y + 1) dx (y + 1 = e^x there, and finite where it is not used) */
UNARY_JVP(elu_jvp, cg_where(cg_greater(X, cg_scalar_like(X, 0.0)), T,
                            cg_mul(T, cg_add(Y, cg_scalar_like(Y, 1.0)))))

/* Sign, Floor, Ceil, Round: piecewise constant, dy = 0 */
static cg_status zero_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  out[0] = NULL;
  return CG_OK;
}

/* TanhGrad(y, g) = g (1 - y^2): linear in g, and d/dy = -2 y g: TanhGrad(y, dg) - 2 y g dy */
static cg_status tanh_grad_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_tensor *from_g = NULL, *from_y = NULL, *y = cg_node_input(op, 0), *g = cg_node_input(op, 1);
  cg_status st = cg__jvp_multilinear(op, t, &from_g, 1u << 1);
  if (st == CG_OK && t[0] && !(from_y = cg__tanh_grad_grad(y, g, t[0])))
    st = cg_status_of(NULL);
  if (st != CG_OK) return st;
  out[0] = cg__jvp_sum(from_g, from_y); /* NULL only when neither input has a tangent */
  return out[0] || (!from_g && !from_y) ? CG_OK : cg_status_of(NULL);
}

/* TanhGradGrad(y, g, d) = d (-2 y g): linear in each input */
static cg_status tanh_grad_grad_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out,
                                    void *user)
{
  return cg__jvp_multilinear(op, t, out, CG_JVP_ALL_INPUTS);
}

/* ReluGrad(g, x) = g (x > 0): linear in g, piecewise constant in x */
static cg_status relu_grad_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 1u << 0);
}

cg_status cg__register_unary_jvps(void)
{
  static const cg_jvp_row rows[] = {
      {"Neg", neg_jvp},         {"Abs", abs_jvp},           {"Sign", zero_jvp},
      {"Square", square_jvp},   {"Reciprocal", reciprocal_jvp}, {"Sqrt", sqrt_jvp},
      {"Rsqrt", rsqrt_jvp},     {"Exp", exp_jvp},           {"Expm1", expm1_jvp},
      {"Log", log_jvp},         {"Log1p", log1p_jvp},       {"Sin", sin_jvp},
      {"Cos", cos_jvp},         {"Tanh", tanh_jvp},         {"Sigmoid", sigmoid_jvp},
      {"Softplus", softplus_jvp}, {"Relu", relu_jvp},       {"LeakyRelu", leaky_relu_jvp},
      {"Elu", elu_jvp},         {"Floor", zero_jvp},        {"Ceil", zero_jvp},
      {"Round", zero_jvp},      {"TanhGrad", tanh_grad_jvp}, {"ReluGrad", relu_grad_jvp},
      {"TanhGradGrad", tanh_grad_grad_jvp},
  };
  return cg__register_jvp_rows(rows, sizeof rows / sizeof rows[0]);
}

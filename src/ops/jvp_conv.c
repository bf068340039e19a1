/* jvp_conv.c - forward-mode rules of convolution and pooling (conv.c, pool.c). Conv2D and
 * its two backprops are bilinear in their inputs, AvgPool2D and AvgPool2DGrad linear, and
 * MaxPool2DGrad and MaxPool2DGradGrad linear in their second input (piecewise constant in
 * x): each applies itself to tangents. MaxPool2D picks each window's first maximum: dy = dx
 * at that cell (MaxPool2DGradGrad, differentiable in turn, so higher orders pass). */
#include "jvp_rules.h"

/* Conv2D(x, f), Conv2DBackpropInput(f, dy), Conv2DBackpropFilter(x, dy): op(da, b) + op(a, db) */
static cg_status bilinear_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 0x3);
}

/* AvgPool2D(x), AvgPool2DGrad(g): op(dx) */
static cg_status linear_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 0x1);
}

/* MaxPool2DGrad(x, g), MaxPool2DGradGrad(x, ddx): op(x, dg) */
static cg_status max_pool_grad_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 0x2);
}

/* MaxPool2D: dy[o] = dx[first maximum of window o] = MaxPool2DGradGrad(x, dx) */
static cg_status max_pool_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_tensor *in[2] = {cg_node_input(op, 0), t[0]};
  out[0] = cg_call("MaxPool2DGradGrad", in, 2, cg_node_attrs(op));
  return cg_status_of(out[0]);
}

cg_status cg__register_conv_jvps(void)
{
  static const cg_jvp_row rows[] = {
      {"Conv2D", bilinear_jvp},        {"Conv2DBackpropInput", bilinear_jvp},
      {"Conv2DBackpropFilter", bilinear_jvp}, {"MaxPool2D", max_pool_jvp},
      {"MaxPool2DGrad", max_pool_grad_jvp},   {"AvgPool2D", linear_jvp},
      {"AvgPool2DGrad", linear_jvp},          {"MaxPool2DGradGrad", max_pool_grad_jvp},
  };
  return cg__register_jvp_rows(rows, sizeof rows / sizeof rows[0]);
}

/* unary_grad.h - the gradient ops of Tanh and Relu (unary_grad.c), which their gradients in
 * unary.c build: one kernel each where square, sub and mul (or greater, cast and mul)
 * were three, with the same results to the bit; and TanhGrad's own gradient in y. */
#ifndef CG_OPS_UNARY_GRAD_H
#define CG_OPS_UNARY_GRAD_H

#include "cgrad.h"

/* TanhGrad(y, g) = g * (1 - y^2): TensorFlow's TanhGrad, y = tanh x. */
cg_tensor *cg__tanh_grad(cg_tensor *y, cg_tensor *g);
/* TanhGradGrad(y, g, d) = d * (-2 * (y * g)): TanhGrad's gradient in y for incoming d. */
cg_tensor *cg__tanh_grad_grad(cg_tensor *y, cg_tensor *g, cg_tensor *d);/* ReluGrad(g, x) = g * (x > 0): TensorFlow's ReluGrad (NaN in g stays NaN). */
cg_tensor *cg__relu_grad(cg_tensor *g, cg_tensor *x);

cg_status cg__register_unary_grad_ops(void); /* unary.c's registration calls it */

#endif

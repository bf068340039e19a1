/* builtin.c - registers every built-in op family (ops, gradients, then JVP rules) once, on
 * first use of the registry. */
#include "kernel.h"

cg_status cg__register_all_builtins(void)
{
  cg_status (*const families[])(void) = {
      cg__register_unary_ops, cg__register_binary_ops, cg__register_reduce_ops,
      cg__register_matmul_ops, cg__register_shape_ops, cg__register_shape_like_ops, cg__register_index_ops,
      cg__register_nn_ops,    cg__register_conv_ops,  cg__register_clip_ops,
      cg__register_unary_jvps, cg__register_binary_jvps, cg__register_reduce_jvps,
      cg__register_matmul_jvps, cg__register_shape_jvps, cg__register_index_jvps,
      cg__register_nn_jvps,   cg__register_conv_jvps, cg__register_clip_jvps,
  };
  cg_status first = CG_OK;
  for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
    cg_status st = families[i]();
    if (first == CG_OK) first = st;
  }
  return first;
}

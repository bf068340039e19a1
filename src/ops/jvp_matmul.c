/* jvp_matmul.c - the forward-mode rule of MatMul (matmul.c): bilinear, so
 * dy = MatMul(da, b) + MatMul(a, db) with the op's own transpose attributes. */
#include "jvp_rules.h"

static cg_status matmul_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 0x3);
}

cg_status cg__register_matmul_jvps(void)
{
  static const cg_jvp_row rows[] = {{"MatMul", matmul_jvp}};
  return cg__register_jvp_rows(rows, sizeof rows / sizeof rows[0]);
}

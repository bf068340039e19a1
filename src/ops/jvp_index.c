/* jvp_index.c - forward-mode rules of the basic ops in index.c: Cast (float to float only),
 * Identity, AddN, and Gather / UnsortedSegmentSum, linear in their data (the indices have no
 * tangent). StopGradient, ZerosLike, OnesLike and OneHot are not differentiable: never
 * recorded, their outputs have no tangent. */
#include "jvp_rules.h"
#include <stdlib.h>

/* Cast: dy = Cast(dx) between float dtypes; none to or from an integer */
static cg_status cast_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  if (!cg_dtype_is_float(cg_tensor_dtype(cg_node_input(op, 0))) ||
      !cg_dtype_is_float(cg_tensor_dtype(cg_node_output(op, 0))))
    return CG_OK;
  return cg__jvp_multilinear(op, t, out, 0x1);
}

/* Identity: dy = dx */
static cg_status identity_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  out[0] = t[0];
  return CG_OK;
}

/* AddN: dy = the sum of the tangents there are */
static cg_status add_n_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  int n = cg_node_num_inputs(op), k = 0;
  cg_tensor *small[8], **some = n <= 8 ? small : cg__malloc((size_t)n * sizeof *some);
  if (!some) return CG_ENOMEM;
  for (int i = 0; i < n; i++)
    if (t[i]) some[k++] = t[i];
  out[0] = k == 1 ? some[0] : cg_add_n(some, k);
  if (some != small) free(some);
  return cg_status_of(out[0]);
}

/* Gather(params, indices): dy = Gather(dparams, indices);
 * UnsortedSegmentSum(data, ids): dy = UnsortedSegmentSum(ddata, ids) */
static cg_status data_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 0x1);
}

cg_status cg__register_index_jvps(void)
{
  static const cg_jvp_row rows[] = {
      {"Cast", cast_jvp}, {"Identity", identity_jvp}, {"AddN", add_n_jvp},
      {"Gather", data_jvp}, {"UnsortedSegmentSum", data_jvp},
  };
  return cg__register_jvp_rows(rows, sizeof rows / sizeof rows[0]);
}

/* jvp_reduce.c - forward-mode rules of the axis reductions (reduce.c). Sum and Mean are
 * linear: the op applied to the tangent. The others weight the tangent and Sum it with the
 * op's own attributes (axes, keepdims): dy = Sum(w * dx). ArgMax/ArgMin have none. */
#include "jvp_rules.h"

/* Sum, Mean: dy = op(dx) */
static cg_status linear_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 0x1);
}

/* y seen with the reduced axes kept as size 1, so it broadcasts against x; the reduced
 * axes go to axes (their count to *n_axes). */
static cg_tensor *kept_dims(const cg_node *op, int *axes, int *n_axes)
{
  const cg_tensor *x = cg_node_input(op, 0);
  int64_t list[CG_ATTR_INTS_MAX], shape[CG_MAX_DIMS];
  bool mask[CG_MAX_DIMS];
  int n = cg_node_attr_ints(op, "axes", list, CG_ATTR_INTS_MAX);
  if (cg__axes_mask(cg_node_op_type(op), list, n < 0 ? 0 : n, x->ndim, mask) != CG_OK) return NULL;
  *n_axes = 0;
  for (int d = 0; d < x->ndim; d++) {
    shape[d] = mask[d] ? 1 : x->shape[d];
    if (mask[d]) axes[(*n_axes)++] = d;
  }
  return cg_reshape(cg_node_output(op, 0), x->ndim, shape);
}

/* Sum(w * dx) over the op's axes, keepdims as the op */
static cg_status weighted_sum(const cg_node *op, cg_tensor *w, cg_tensor *dx, cg_tensor **out)
{
  cg_tensor *in[1] = {cg_mul(w, dx)};
  out[0] = in[0] ? cg_call("Sum", in, 1, cg_node_attrs(op)) : NULL;
  return cg_status_of(out[0]);
}

/* Max, Min: dy = Sum(dx * is_extremum / ties), the tangent shared equally among the
 * elements equal to y, like the gradient */
static cg_status extremum_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  int axes[CG_MAX_DIMS], n_axes;
  cg_tensor *x = cg_node_input(op, 0), *y = kept_dims(op, axes, &n_axes);
  if (!y) return cg_status_of(NULL);
  cg_tensor *is_extremum = cg_cast(cg_equal(x, y), cg_tensor_dtype(x));
  cg_tensor *ties = cg_sum(is_extremum, axes, n_axes, 1);
  return weighted_sum(op, cg_div(is_extremum, ties), t[0], out);
}

/* Prod: dy = Sum(dx * y / x) (x without zeros, as the gradient assumes) */
static cg_status prod_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  int axes[CG_MAX_DIMS], n_axes;
  cg_tensor *y = kept_dims(op, axes, &n_axes);
  return y ? weighted_sum(op, cg_div(y, cg_node_input(op, 0)), t[0], out) : cg_status_of(NULL);
}

/* LogSumExp: dy = Sum(dx * e^(x - y)) */
static cg_status logsumexp_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  int axes[CG_MAX_DIMS], n_axes;
  cg_tensor *y = kept_dims(op, axes, &n_axes);
  return y ? weighted_sum(op, cg_exp(cg_sub(cg_node_input(op, 0), y)), t[0], out) : cg_status_of(NULL);
}

cg_status cg__register_reduce_jvps(void)
{
  static const cg_jvp_row rows[] = {
      {"Sum", linear_jvp},   {"Mean", linear_jvp}, {"Max", extremum_jvp},
      {"Min", extremum_jvp}, {"Prod", prod_jvp},   {"LogSumExp", logsumexp_jvp},
  };
  return cg__register_jvp_rows(rows, sizeof rows / sizeof rows[0]);
}

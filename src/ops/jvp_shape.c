/* jvp_shape.c - forward-mode rules of the shape ops (shape.c, shape_like.c): every one is
 * linear, so its tangent is the op itself applied to the tangent, with the same attributes
 * (the "like" input of ReshapeLike, BroadcastLike and SumLike held fixed). Pad pads the
 * tangent with 0, whatever value pads the primal. */
#include "jvp_rules.h"

/* Reshape, ExpandDims, Squeeze, Transpose, Split, Slice, Tile, BroadcastTo, *Like: op(dx) */
static cg_status first_input_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 0x1);
}

/* Concat: dy = Concat(dx_0, ..., dx_n-1), zeros for inputs without a tangent */
static cg_status concat_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_joint_linear(op, t, out, CG_JVP_ALL_INPUTS);
}

/* Pad: dy = Pad(dx, paddings, 0): the padding value is a constant */
static cg_status pad_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  const cg_attrs *attrs = cg_node_attrs(op);
  cg_attrs a = attrs ? *attrs : (cg_attrs){0};
  cg_status st = cg_attrs_set_float(&a, "value", 0.0);
  out[0] = st == CG_OK ? cg_call("Pad", t, 1, &a) : NULL;
  return cg_status_of(out[0]);
}

cg_status cg__register_shape_jvps(void)
{
  static const cg_jvp_row rows[] = {
      {"Reshape", first_input_jvp},     {"ExpandDims", first_input_jvp},
      {"Squeeze", first_input_jvp},     {"Transpose", first_input_jvp},
      {"Concat", concat_jvp},           {"Split", first_input_jvp},
      {"Slice", first_input_jvp},       {"Pad", pad_jvp},
      {"Tile", first_input_jvp},        {"BroadcastTo", first_input_jvp},
      {"ReshapeLike", first_input_jvp}, {"BroadcastLike", first_input_jvp},
      {"SumLike", first_input_jvp},
  };
  return cg__register_jvp_rows(rows, sizeof rows / sizeof rows[0]);
}

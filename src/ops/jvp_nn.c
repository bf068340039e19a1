/* jvp_nn.c - forward-mode rules of the neural-network ops (nn.c), over the last (class)
 * axis: softmaxes, the three cross-entropies and BiasAdd. Each uses the factors of the
 * op's gradient, so forward and reverse mode agree to rounding. */
#include "jvp_rules.h"

static const int last_axis[1] = {-1};

/* Softmax: dy = y * (dx - sum(y * dx, last, keepdims)) */
static cg_status softmax_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_tensor *y = cg_node_output(op, 0);
  out[0] = cg_mul(y, cg_sub(t[0], cg_sum(cg_mul(y, t[0]), last_axis, 1, 1)));
  return cg_status_of(out[0]);
}

/* LogSoftmax: dy = dx - sum(e^y * dx, last, keepdims) */
static cg_status log_softmax_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_tensor *y = cg_node_output(op, 0);
  out[0] = cg_sub(t[0], cg_sum(cg_mul(cg_exp(y), t[0]), last_axis, 1, 1));
  return cg_status_of(out[0]);
}

/* SoftmaxCrossEntropyWithLogits(z, x):
 * dy = sum(-log_softmax(x) * dz + (softmax(x) * sum(z, last, keepdims) - z) * dx, last) */
static cg_status softmax_xent_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_tensor *z = cg_node_input(op, 0), *x = cg_node_input(op, 1), *w = NULL, *v = NULL;
  if (t[0]) w = cg_mul(cg_neg(cg_log_softmax(x)), t[0]);
  if (t[1]) v = cg_mul(cg_sub(cg_mul(cg_softmax(x), cg_sum(z, last_axis, 1, 1)), z), t[1]);
  cg_tensor *both = cg__jvp_sum(w, v);
  out[0] = both ? cg_sum(both, last_axis, 1, 0) : NULL;
  return cg_status_of(out[0]);
}

/* SparseSoftmaxCrossEntropyWithLogits(k, x): dy = sum((softmax(x) - one_hot(k)) * dx, last) */
static cg_status sparse_xent_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_tensor *k = cg_node_input(op, 0), *x = cg_node_input(op, 1);
  if (!t[1]) return CG_OK;
  cg_tensor *one_hot = cg_one_hot(k, cg_tensor_dim(x, -1), 1.0, 0.0, cg_tensor_dtype(x));
  out[0] = cg_sum(cg_mul(cg_sub(cg_softmax(x), one_hot), t[1]), last_axis, 1, 0);
  return cg_status_of(out[0]);
}

/* SigmoidCrossEntropyWithLogits(z, x): dy = -x dz + (sigmoid(x) - z) dx */
static cg_status sigmoid_xent_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_tensor *z = cg_node_input(op, 0), *x = cg_node_input(op, 1);
  cg_tensor *dz = t[0] ? cg_neg(cg_mul(x, t[0])) : NULL;
  cg_tensor *dx = t[1] ? cg_mul(cg_sub(cg_sigmoid(x), z), t[1]) : NULL;
  out[0] = cg__jvp_sum(dz, dx);
  return cg_status_of(out[0]);
}

/* BiasAdd(x, bias): dy = dx + dbias (bias broadcast along the last axis) */
static cg_status bias_add_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  out[0] = cg__jvp_sum(t[0], t[1]);
  return cg_status_of(out[0]);
}

cg_status cg__register_nn_jvps(void)
{
  static const cg_jvp_row rows[] = {
      {"Softmax", softmax_jvp},
      {"LogSoftmax", log_softmax_jvp},
      {"SoftmaxCrossEntropyWithLogits", softmax_xent_jvp},
      {"SparseSoftmaxCrossEntropyWithLogits", sparse_xent_jvp},
      {"SigmoidCrossEntropyWithLogits", sigmoid_xent_jvp},
      {"BiasAdd", bias_add_jvp},
  };
  return cg__register_jvp_rows(rows, sizeof rows / sizeof rows[0]);
}

/* train_loss.c - `--loss custom-xent`: mean sparse softmax cross-entropy whose gradient is
 * given by a custom gradient, the way TensorFlow users write one:
 *   forward  loss = mean_i(logsumexp(z_i) - z_i[y_i])
 *   backward dz   = (softmax(z) - onehot(y)) / N * dloss                                     */
#include "train.h"

static cg_status xent_forward(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  cg_tensor *labels = x[0], *logits = x[1];
  y[0] = cg_mean(cg_sparse_softmax_cross_entropy_with_logits(labels, logits), NULL, 0, 0);
  return cg_status_of(y[0]);
}

static cg_status xent_backward(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
{
  cg_tensor *labels = cg_ctx_input(ctx, 0), *logits = cg_ctx_input(ctx, 1);
  int64_t classes = cg_tensor_dim(logits, -1), n = cg_tensor_size(labels);
  cg_tensor *onehot = cg_one_hot(labels, classes, 1, 0, cg_tensor_dtype(logits));
  cg_tensor *scale = cg_div(dy[0], cg_scalar_like(dy[0], (double)(n > 0 ? n : 1)));
  dx[0] = NULL; /* integer labels take no gradient */
  dx[1] = cg_mul(cg_sub(cg_softmax(logits), onehot), scale);
  return cg_status_of(dx[1]);
}

cg_tensor *train_custom_xent(cg_tensor *labels, cg_tensor *logits)
{
  static const cg_custom_def def = {"CustomSoftmaxXent", 2, 1, xent_forward, xent_backward, NULL};
  cg_tensor *in[2] = {labels, logits}, *loss;
  return cg_custom_gradient(&def, in, &loss) == CG_OK ? loss : NULL;
}

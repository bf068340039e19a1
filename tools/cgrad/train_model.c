/* train_model.c - the models `cgrad train` knows: the MLP (784-256-256-10, ReLU) and the CNN
 * (conv 3x3 32, relu, maxpool 2, conv 3x3 64, relu, maxpool 2, dense 10), built from layers. */
#include "train.h"
#include <string.h>

static cg_layer *add(cg_layer *model, cg_layer *layer)
{
  if (!model || !layer || cg_sequential_add(model, layer) != CG_OK) {
    cg_layer_free(layer);
    cg_layer_free(model);
    return NULL;
  }
  return model;
}

static cg_layer *mlp(uint64_t seed)
{
  cg_layer *m = cg_sequential("mlp");
  m = add(m, cg_flatten_layer());
  m = add(m, cg_dense_layer("dense_1", 784, 256, CG_ACT_RELU, seed + 1));
  m = add(m, cg_dense_layer("dense_2", 256, 256, CG_ACT_RELU, seed + 2));
  return add(m, cg_dense_layer("logits", 256, 10, CG_ACT_NONE, seed + 3));
}

static cg_layer *cnn(uint64_t seed)
{
  const int one[2] = {1, 1}, two[2] = {2, 2};
  cg_layer *m = cg_sequential("cnn");
  m = add(m, cg_conv2d_layer("conv_1", 1, 32, 3, 3, one, CG_PAD_SAME, CG_ACT_RELU, seed + 1));
  m = add(m, cg_max_pool2d_layer(two, two, CG_PAD_VALID));
  m = add(m, cg_conv2d_layer("conv_2", 32, 64, 3, 3, one, CG_PAD_SAME, CG_ACT_RELU, seed + 2));
  m = add(m, cg_max_pool2d_layer(two, two, CG_PAD_VALID));
  m = add(m, cg_flatten_layer());
  return add(m, cg_dense_layer("logits", 7 * 7 * 64, 10, CG_ACT_NONE, seed + 3));
}

cg_layer *train_build_model(const char *name, uint64_t seed)
{
  if (!strcmp(name, "mlp")) return mlp(seed);
  if (!strcmp(name, "cnn")) return cnn(seed);
  cg_set_error(CG_EINVAL, "unknown model '%s' (mlp or cnn)", name);
  return NULL;
}

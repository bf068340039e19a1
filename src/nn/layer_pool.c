/* layer_pool.c - the layers without variables that reshape or pool NHWC activations:
 * MaxPool2D, AvgPool2D (over ksize windows) and Flatten ([batch, ...] -> [batch, prod]). */
#include "layer.h"

/* ======================================================================================
 * MaxPool2D and AvgPool2D
 * ==================================================================================== */

typedef struct {
  int ksize[2], strides[2];
  cg_padding padding;
  cg_tensor *(*pool)(cg_tensor *, const int[2], const int[2], cg_padding);
} pool_state;

static cg_tensor *pool_forward(cg_layer *layer, cg_tensor *x, int training)
{
  if (x->ndim != 4) {
    char xs[160];
    cg_set_error(CG_ESHAPE, "%s: input %s is not NHWC [batch, height, width, channels]",
                 layer->name, cg_shape_str(x, xs, sizeof xs));
    return NULL;
  }
  const pool_state *s = layer->state;
  return s->pool(x, s->ksize, s->strides, s->padding);
}

static int pool_describe(const cg_layer *layer, char *buf, size_t n)
{
  const pool_state *s = layer->state;
  return snprintf(buf, n, "%s(%dx%d, stride %dx%d, %s)", layer->kind->type, s->ksize[0],
                  s->ksize[1], s->strides[0], s->strides[1], cg__padding_name(s->padding));
}

static cg_layer_kind max_pool_kind = {"MaxPool2D", "max_pooling2d", 0, pool_forward,
                                      pool_describe, NULL};
static cg_layer_kind avg_pool_kind = {"AvgPool2D", "average_pooling2d", 0, pool_forward,
                                      pool_describe, NULL};

/* strides NULL: the window size, as Keras. */
static cg_layer *pool_layer(cg_layer_kind *kind, const char *fn, const int ksize[2],
                            const int strides[2], cg_padding padding)
{
  cg_status st = cg__check_pair(fn, "ksize", ksize);
  if (st == CG_OK && strides) st = cg__check_pair(fn, "strides", strides);
  if (st == CG_OK) st = cg__check_padding(fn, padding);
  if (st != CG_OK) return NULL;
  pool_state *s = cg__malloc(sizeof *s);
  if (!s) return NULL;
  const int *step = strides ? strides : ksize;
  *s = (pool_state){{ksize[0], ksize[1]}, {step[0], step[1]}, padding,
                    kind == &max_pool_kind ? cg_max_pool2d : cg_avg_pool2d};
  return cg__layer_new(kind, NULL, s);
}

cg_layer *cg_max_pool2d_layer(const int ksize[2], const int strides[2], cg_padding padding)
{
  return pool_layer(&max_pool_kind, "cg_max_pool2d_layer", ksize, strides, padding);
}

cg_layer *cg_avg_pool2d_layer(const int ksize[2], const int strides[2], cg_padding padding)
{
  return pool_layer(&avg_pool_kind, "cg_avg_pool2d_layer", ksize, strides, padding);
}

/* ======================================================================================
 * Flatten
 * ==================================================================================== */

static cg_tensor *flatten_forward(cg_layer *layer, cg_tensor *x, int training)
{
  if (x->ndim < 1) {
    cg_set_error(CG_ESHAPE, "%s: input is a scalar; it needs a batch axis", layer->name);
    return NULL;
  }
  int64_t shape[2] = {x->shape[0], 1};
  for (int i = 1; i < x->ndim; i++) shape[1] *= x->shape[i];
  return cg_reshape(x, 2, shape);
}

static int flatten_describe(const cg_layer *layer, char *buf, size_t n)
{
  return snprintf(buf, n, "Flatten");
}

static cg_layer_kind flatten_kind = {"Flatten", "flatten", 0, flatten_forward, flatten_describe,
                                     NULL};

cg_layer *cg_flatten_layer(void) { return cg__layer_new(&flatten_kind, NULL, NULL); }

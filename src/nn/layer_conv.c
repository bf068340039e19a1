/* layer_conv.c - the Conv2D layer: y = act(conv2d(x, K) + b) on NHWC x, with K [kh, kw, in,
 * out] Glorot-uniform from the seed and b [out] zeros. */
#include "layer.h"

typedef struct {
  int64_t in, out;
  int kh, kw;
  int strides[2];
  cg_padding padding;
  cg_activation act;
} conv_state;

static cg_tensor *conv_forward(cg_layer *layer, cg_tensor *x, int training)
{
  cg_var *kernel = layer->vars[0], *bias = layer->vars[1];
  const cg_tensor *k = cg_var_value(kernel);
  if (x->ndim != 4 || x->shape[3] != k->shape[2]) {
    char xs[160], ks[160];
    cg_set_error(CG_ESHAPE, "%s: input %s does not match kernel %s (NHWC input with %lld channels)",
                 layer->name, cg_shape_str(x, xs, sizeof xs), cg_shape_str(k, ks, sizeof ks),
                 (long long)k->shape[2]);
    return NULL;
  }
  if (cg__check_input_dtype(layer, x, kernel) != CG_OK) return NULL;
  const conv_state *s = layer->state;
  cg_scope scope = cg_scope_begin();
  cg_tensor *conv = cg_conv2d(x, cg_var_read(kernel), s->strides, s->padding, NULL);
  cg_tensor *y = cg__activate(cg_bias_add(conv, cg_var_read(bias)), s->act);
  if (y) cg_keep(y);
  cg_scope_end(scope);
  return y;
}

static int conv_describe(const cg_layer *layer, char *buf, size_t n)
{
  const conv_state *s = layer->state;
  return snprintf(buf, n, "Conv2D(%lld -> %lld, %dx%d, stride %dx%d, %s%s%s)", (long long)s->in,
                  (long long)s->out, s->kh, s->kw, s->strides[0], s->strides[1],
                  cg__padding_name(s->padding), s->act ? ", " : "",
                  s->act ? cg__activation_name(s->act) : "");
}

static cg_layer_kind conv_kind = {"Conv2D", "conv2d", 0, conv_forward, conv_describe, NULL};

static cg_status check_conv_args(int64_t in, int64_t out, int kh, int kw, const int strides[2],
                                 cg_padding padding, cg_activation act)
{
  const char *fn = "cg_conv2d_layer";
  if (in <= 0 || out <= 0)
    return cg_set_error(CG_EINVAL, "%s: channels must be positive, got %lld -> %lld", fn,
                        (long long)in, (long long)out);
  cg_status st = cg__check_pair(fn, "kernel size", (const int[2]){kh, kw});
  if (st == CG_OK && strides) st = cg__check_pair(fn, "strides", strides);
  if (st == CG_OK) st = cg__check_padding(fn, padding);
  return st == CG_OK ? cg__check_activation(fn, act) : st;
}

/* strides NULL: 1x1. */
cg_layer *cg_conv2d_layer(const char *name, int64_t in_channels, int64_t out_channels, int kh,
                          int kw, const int strides[2], cg_padding padding, cg_activation act,
                          uint64_t seed)
{
  if (check_conv_args(in_channels, out_channels, kh, kw, strides, padding, act) != CG_OK)
    return NULL;
  conv_state *s = cg__malloc(sizeof *s);
  if (!s) return NULL;
  *s = (conv_state){in_channels, out_channels, kh, kw, {1, 1}, padding, act};
  if (strides) s->strides[0] = strides[0], s->strides[1] = strides[1];
  cg_layer *layer = cg__layer_new(&conv_kind, name, s);
  if (!layer) return NULL;
  cg_scope scope = cg_scope_begin();
  int64_t kshape[4] = {kh, kw, in_channels, out_channels};
  cg_initializer glorot = {CG_INIT_GLOROT_UNIFORM, 0, 0};
  cg_tensor *kernel = cg_init_tensor(glorot, CG_F32, 4, kshape, seed);
  cg_status st = cg__layer_add_var(layer, "kernel", kernel, 1);
  if (st == CG_OK) st = cg__layer_add_var(layer, "bias", cg_zeros(CG_F32, 1, &out_channels), 1);
  cg_scope_end(scope);
  if (st != CG_OK) {
    cg_layer_free(layer);
    return NULL;
  }
  return layer;
}

/* layer_dense.c - the Dense layer: y = act(x W + b) for x [batch, in], with W [in, out]
 * Glorot-uniform from the seed and b [out] zeros. */
#include "layer.h"

typedef struct {
  int64_t in, out;
  cg_activation act;
} dense_state;

static cg_tensor *dense_forward(cg_layer *layer, cg_tensor *x, int training)
{
  cg_var *kernel = layer->vars[0], *bias = layer->vars[1];
  const cg_tensor *w = cg_var_value(kernel);
  if (x->ndim != 2 || x->shape[1] != w->shape[0]) {
    char xs[160], ws[160];
    cg_set_error(CG_ESHAPE, "%s: input %s does not match kernel %s", layer->name,
                 cg_shape_str(x, xs, sizeof xs), cg_shape_str(w, ws, sizeof ws));
    return NULL;
  }
  if (cg__check_input_dtype(layer, x, kernel) != CG_OK) return NULL;
  const dense_state *s = layer->state;
  cg_scope scope = cg_scope_begin();
  cg_tensor *z = cg_bias_add(cg_matmul(x, cg_var_read(kernel)), cg_var_read(bias));
  cg_tensor *y = cg__activate(z, s->act);
  if (y) cg_keep(y);
  cg_scope_end(scope);
  return y;
}

static int dense_describe(const cg_layer *layer, char *buf, size_t n)
{
  const dense_state *s = layer->state;
  return snprintf(buf, n, "Dense(%lld -> %lld%s%s)", (long long)s->in, (long long)s->out,
                  s->act ? ", " : "", s->act ? cg__activation_name(s->act) : "");
}

static cg_layer_kind dense_kind = {"Dense", "dense", 0, dense_forward, dense_describe, NULL};

cg_layer *cg_dense_layer(const char *name, int64_t in, int64_t out, cg_activation act,
                         uint64_t seed)
{
  if (in <= 0 || out <= 0) {
    cg_set_error(CG_EINVAL, "cg_dense_layer: in and out must be positive, got %lld and %lld",
                 (long long)in, (long long)out);
    return NULL;
  }
  if (cg__check_activation("cg_dense_layer", act) != CG_OK) return NULL;
  dense_state *s = cg__malloc(sizeof *s);
  if (!s) return NULL;
  *s = (dense_state){in, out, act};
  cg_layer *layer = cg__layer_new(&dense_kind, name, s);
  if (!layer) return NULL;
  cg_scope scope = cg_scope_begin();
  int64_t kshape[2] = {in, out};
  cg_initializer glorot = {CG_INIT_GLOROT_UNIFORM, 0, 0};
  cg_tensor *kernel = cg_init_tensor(glorot, CG_F32, 2, kshape, seed);
  cg_status st = cg__layer_add_var(layer, "kernel", kernel, 1);
  if (st == CG_OK) st = cg__layer_add_var(layer, "bias", cg_zeros(CG_F32, 1, &out), 1);
  cg_scope_end(scope);
  if (st != CG_OK) {
    cg_layer_free(layer);
    return NULL;
  }
  return layer;
}

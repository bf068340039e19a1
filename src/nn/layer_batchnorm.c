/* layer_batchnorm.c - the BatchNorm layer over the last (channel) axis. Training normalises
 * with the batch's mean and biased variance and moves the moving statistics towards them
 * (m = momentum m + (1 - momentum) batch, as Keras); inference uses the moving statistics. */
#include "layer.h"
#include <math.h>

enum { GAMMA, BETA, MOVING_MEAN, MOVING_VARIANCE };

typedef struct {
  int64_t channels;
  double momentum, eps;
} batch_norm_state;

static cg_status check_input(const cg_layer *layer, const cg_tensor *x)
{
  const batch_norm_state *s = layer->state;
  char xs[160];
  if (x->ndim < 2 || x->shape[x->ndim - 1] != s->channels)
    return cg_set_error(CG_ESHAPE,
                        "%s: input %s does not match %lld channels (want [batch, ..., %lld])",
                        layer->name, cg_shape_str(x, xs, sizeof xs), (long long)s->channels,
                        (long long)s->channels);
  if (x->size == 0)
    return cg_set_error(CG_ESHAPE, "%s: input %s is empty", layer->name,
                        cg_shape_str(x, xs, sizeof xs));
  return cg__check_input_dtype(layer, x, layer->vars[GAMMA]);
}

/* moving = momentum * moving + (1 - momentum) * batch, outside any tape. */
static cg_status update_moving(cg_var *moving, cg_tensor *batch, double momentum)
{
  cg_pause_recording();
  cg_tensor *m = cg_var_value(moving);
  cg_tensor *next = cg_add(cg_mul(m, cg_scalar_like(m, momentum)),
                           cg_mul(batch, cg_scalar_like(m, 1 - momentum)));
  cg_resume_recording();
  return next ? cg_var_assign(moving, next) : cg_last_status();
}

/* (x - mean) / sqrt(var + eps) * gamma + beta, each statistic [channels]. */
static cg_tensor *normalise(cg_layer *layer, cg_tensor *x, cg_tensor *mean, cg_tensor *var)
{
  const batch_norm_state *s = layer->state;
  cg_tensor *scale = cg_mul(cg_rsqrt(cg_add(var, cg_scalar_like(x, s->eps))),
                            cg_var_read(layer->vars[GAMMA]));
  return cg_add(cg_mul(cg_sub(x, mean), scale), cg_var_read(layer->vars[BETA]));
}

static cg_tensor *batch_norm_forward(cg_layer *layer, cg_tensor *x, int training)
{
  if (check_input(layer, x) != CG_OK) return NULL;
  const batch_norm_state *s = layer->state;
  cg_scope scope = cg_scope_begin();
  cg_tensor *y;
  if (training) {
    int axes[CG_MAX_DIMS], n_axes = x->ndim - 1;
    for (int i = 0; i < n_axes; i++) axes[i] = i;
    cg_tensor *mean = cg_mean(x, axes, n_axes, 0);
    cg_tensor *var = cg_mean(cg_squared_difference(x, mean), axes, n_axes, 0);
    y = normalise(layer, x, mean, var);
    if (y && (update_moving(layer->vars[MOVING_MEAN], mean, s->momentum) != CG_OK ||
              update_moving(layer->vars[MOVING_VARIANCE], var, s->momentum) != CG_OK))
      y = NULL;
  } else {
    y = normalise(layer, x, cg_var_read(layer->vars[MOVING_MEAN]),
                  cg_var_read(layer->vars[MOVING_VARIANCE]));
  }
  if (y) cg_keep(y);
  cg_scope_end(scope);
  return y;
}

static int batch_norm_describe(const cg_layer *layer, char *buf, size_t n)
{
  const batch_norm_state *s = layer->state;
  return snprintf(buf, n, "BatchNorm(%lld, momentum %g, eps %g)", (long long)s->channels,
                  s->momentum, s->eps);
}

static cg_layer_kind batch_norm_kind = {"BatchNorm", "batch_normalization", 0,
                                        batch_norm_forward, batch_norm_describe, NULL};

cg_layer *cg_batch_norm_layer(const char *name, int64_t channels, double momentum, double eps)
{
  const char *fn = "cg_batch_norm_layer";
  if (channels <= 0) {
    cg_set_error(CG_EINVAL, "%s: channels must be positive, got %lld", fn, (long long)channels);
    return NULL;
  }
  if (!(momentum >= 0 && momentum <= 1) || !(eps > 0) || !isfinite(eps)) {
    cg_set_error(CG_EINVAL, "%s: need momentum in [0, 1] and a finite eps > 0, got %g and %g", fn,
                 momentum, eps);
    return NULL;
  }
  batch_norm_state *s = cg__malloc(sizeof *s);
  if (!s) return NULL;
  *s = (batch_norm_state){channels, momentum, eps};
  cg_layer *layer = cg__layer_new(&batch_norm_kind, name, s);
  if (!layer) return NULL;
  cg_scope scope = cg_scope_begin();
  cg_status st = cg__layer_add_var(layer, "gamma", cg_ones(CG_F32, 1, &channels), 1);
  if (st == CG_OK) st = cg__layer_add_var(layer, "beta", cg_zeros(CG_F32, 1, &channels), 1);
  if (st == CG_OK) st = cg__layer_add_var(layer, "moving_mean", cg_zeros(CG_F32, 1, &channels), 0);
  if (st == CG_OK)
    st = cg__layer_add_var(layer, "moving_variance", cg_ones(CG_F32, 1, &channels), 0);
  cg_scope_end(scope);
  if (st != CG_OK) {
    cg_layer_free(layer);
    return NULL;
  }
  return layer;
}

/* layer_dropout.c - the Dropout layer. Training: each element is zeroed with probability rate
 * and the rest scaled by 1/(1-rate), with a new mask on every call drawn from the stream
 * (seed, call number), so steps differ but runs repeat. Inference: y = x. */
#include "layer.h"
#include "seed.h"
#include <math.h>

typedef struct {
  double rate;
  uint64_t seed;
  uint64_t calls; /* training calls so far: the stream of the next mask */
} dropout_state;

static cg_tensor *dropout_forward(cg_layer *layer, cg_tensor *x, int training)
{
  if (!cg_dtype_is_float(x->dtype)) {
    cg_set_error(CG_EDTYPE, "%s: input is %s, not a float type", layer->name,
                 cg_dtype_name(x->dtype));
    return NULL;
  }
  dropout_state *s = layer->state;
  if (!training || s->rate == 0) return cg_identity(x);
  cg_scope scope = cg_scope_begin();
  cg_tensor *u = cg_random_uniform(x->dtype, x->ndim, x->shape, 0, 1,
                                   cg__derive_seed(s->seed, s->calls));
  /* the mask is a constant to any tape: the gradient is dy * mask, as for a product */
  cg_tensor *mask = cg_where(cg_greater_equal(u, cg_scalar_like(x, s->rate)),
                             cg_scalar_like(x, 1 / (1 - s->rate)), cg_scalar_like(x, 0));
  cg_tensor *y = cg_mul(x, mask);
  if (y) {
    cg_keep(y);
    s->calls++;
  }
  cg_scope_end(scope);
  return y;
}

static int dropout_describe(const cg_layer *layer, char *buf, size_t n)
{
  const dropout_state *s = layer->state;
  return snprintf(buf, n, "Dropout(%g)", s->rate);
}

static cg_layer_kind dropout_kind = {"Dropout", "dropout", 0, dropout_forward, dropout_describe,
                                     NULL};

cg_layer *cg_dropout_layer(double rate, uint64_t seed)
{
  if (!(rate >= 0 && rate < 1)) {
    cg_set_error(CG_EINVAL, "cg_dropout_layer: rate must be in [0, 1), got %g", rate);
    return NULL;
  }
  dropout_state *s = cg__malloc(sizeof *s);
  if (!s) return NULL;
  *s = (dropout_state){rate, seed, 0};
  return cg__layer_new(&dropout_kind, NULL, s);
}

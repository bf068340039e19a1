/* optimizer_rules.c - the update rules of torch.optim (PyTorch 1.13, single-tensor path), one
 * loop per rule and dtype over a variable's value, gradient and slots. The scalars of a step
 * are computed in double, as PyTorch does in Python, then rounded to the variable's dtype;
 * the element-wise arithmetic follows PyTorch's operation order; large variables are
 * updated over the threads. The optimizer object, its slots and validation live in
 * optimizer.c. */
#include "optimizer.h"
#include "../ops/parallel.h"
#include <math.h>
#include <string.h>

/* Coupled weight decay (PyTorch's weight_decay for all but AdamW), done before a rule runs:
 * the rules below see g + wd p as their gradient. */
void cg__add_weight_decay(double wd, const cg__update_args *a, void *out)
{
  if (a->dtype == CG_F32) {
    const float w = (float)wd, *restrict g = a->grad, *restrict x = a->param;
    float *restrict y = out;
    for (int64_t i = 0; i < a->n; i++) y[i] = g[i] + w * x[i];
  } else {
    const double *restrict g = a->grad, *restrict x = a->param;
    double *restrict y = out;
    for (int64_t i = 0; i < a->n; i++) y[i] = g[i] + wd * x[i];
  }
}

/* ======================================================================================
 * SGD:  buf = m buf + g (first step: buf = g, as the slot starts at 0);
 *       d = nesterov ? g + m buf : momentum ? buf : g;  p -= lr d
 * ==================================================================================== */

CG_VECTOR_CLONES
static void sgd_f32(const cg__step_params *p, const cg__update_args *a)
{
  const float lr = (float)p->lr, m = (float)p->config->momentum;
  const float *restrict g = a->grad, *restrict x = a->param;
  float *restrict out = a->out, *restrict buf = a->slot[0];
  if (!buf) {
    for (int64_t i = 0; i < a->n; i++) out[i] = x[i] - lr * g[i];
  } else if (!p->config->nesterov) {
    for (int64_t i = 0; i < a->n; i++) {
      buf[i] = m * buf[i] + g[i];
      out[i] = x[i] - lr * buf[i];
    }
  } else {
    for (int64_t i = 0; i < a->n; i++) {
      buf[i] = m * buf[i] + g[i];
      out[i] = x[i] - lr * (g[i] + m * buf[i]);
    }
  }
}

CG_VECTOR_CLONES
static void sgd_f64(const cg__step_params *p, const cg__update_args *a)
{
  const double lr = p->lr, m = p->config->momentum;
  const double *restrict g = a->grad, *restrict x = a->param;
  double *restrict out = a->out, *restrict buf = a->slot[0];
  if (!buf) {
    for (int64_t i = 0; i < a->n; i++) out[i] = x[i] - lr * g[i];
  } else if (!p->config->nesterov) {
    for (int64_t i = 0; i < a->n; i++) {
      buf[i] = m * buf[i] + g[i];
      out[i] = x[i] - lr * buf[i];
    }
  } else {
    for (int64_t i = 0; i < a->n; i++) {
      buf[i] = m * buf[i] + g[i];
      out[i] = x[i] - lr * (g[i] + m * buf[i]);
    }
  }
}

static void sgd(const cg__step_params *p, const cg__update_args *a)
{
  if (a->dtype == CG_F32)
    sgd_f32(p, a);
  else
    sgd_f64(p, a);
}

/* ======================================================================================
 * Adam:  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *        p -= lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * AdamW: p *= 1 - lr wd first (decoupled decay; a factor of exactly 1 without it), then the same.
 * ==================================================================================== */

typedef struct {
  double b1, one_minus_b1, b2, one_minus_b2;
  double step_size, bias_correction2_sqrt, eps;
  double decay; /* AdamW's factor on the parameter (1: none) */
} adam_coefs;

static adam_coefs adam_coefs_for(const cg__step_params *p, int decoupled)
{
  const cg_optimizer_config *c = p->config;
  double t = (double)p->step;
  adam_coefs k = {
      .b1 = c->beta1, .one_minus_b1 = 1 - c->beta1, .b2 = c->beta2, .one_minus_b2 = 1 - c->beta2,
      .step_size = p->lr / (1 - pow(c->beta1, t)),
      .bias_correction2_sqrt = sqrt(1 - pow(c->beta2, t)), .eps = c->eps,
      .decay = decoupled ? 1 - p->lr * c->weight_decay : 1};
  return k;
}

CG_VECTOR_CLONES
static void adam_f32(const adam_coefs *k, const cg__update_args *a)
{
  const float b1 = (float)k->b1, c1 = (float)k->one_minus_b1, b2 = (float)k->b2,
              c2 = (float)k->one_minus_b2, neg_step = (float)-k->step_size,
              bc2 = (float)k->bias_correction2_sqrt, eps = (float)k->eps, decay = (float)k->decay;
  const float *restrict g = a->grad, *restrict x = a->param;
  float *restrict out = a->out, *restrict m = a->slot[0], *restrict v = a->slot[1];
  for (int64_t i = 0; i < a->n; i++) {
    m[i] = m[i] * b1 + c1 * g[i];
    v[i] = v[i] * b2 + c2 * g[i] * g[i];
    float denom = sqrtf(v[i]) / bc2 + eps;
    out[i] = x[i] * decay + neg_step * m[i] / denom;
  }
}

CG_VECTOR_CLONES
static void adam_f64(const adam_coefs *k, const cg__update_args *a)
{
  const double b1 = k->b1, c1 = k->one_minus_b1, b2 = k->b2, c2 = k->one_minus_b2,
               neg_step = -k->step_size, bc2 = k->bias_correction2_sqrt, eps = k->eps,
               decay = k->decay;
  const double *restrict g = a->grad, *restrict x = a->param;
  double *restrict out = a->out, *restrict m = a->slot[0], *restrict v = a->slot[1];
  for (int64_t i = 0; i < a->n; i++) {
    m[i] = m[i] * b1 + c1 * g[i];
    v[i] = v[i] * b2 + c2 * g[i] * g[i];
    double denom = sqrt(v[i]) / bc2 + eps;
    out[i] = x[i] * decay + neg_step * m[i] / denom;
  }
}

static void adam_with(const cg__step_params *p, const cg__update_args *a, int decoupled)
{
  adam_coefs k = adam_coefs_for(p, decoupled);
  if (a->dtype == CG_F32)
    adam_f32(&k, a);
  else
    adam_f64(&k, a);
}

static void adam(const cg__step_params *p, const cg__update_args *a) { adam_with(p, a, 0); }
static void adamw(const cg__step_params *p, const cg__update_args *a) { adam_with(p, a, 1); }

/* ======================================================================================
 * RMSprop:  v = a v + (1-a) g^2;  avg = sqrt(v) + eps;
 *           momentum > 0: buf = m buf + g/avg, p -= lr buf;  else p -= lr g/avg
 * ==================================================================================== */

CG_VECTOR_CLONES
static void rmsprop_f32(const cg__step_params *p, const cg__update_args *a)
{
  const cg_optimizer_config *c = p->config;
  const float neg_lr = (float)-p->lr, alpha = (float)c->rho, one_minus_alpha = (float)(1 - c->rho),
              eps = (float)c->eps, m = (float)c->momentum;
  const float *restrict g = a->grad, *restrict x = a->param;
  float *restrict out = a->out, *restrict v = a->slot[0], *restrict buf = a->slot[1];
  if (!buf) {
    for (int64_t i = 0; i < a->n; i++) {
      v[i] = v[i] * alpha + one_minus_alpha * g[i] * g[i];
      out[i] = x[i] + neg_lr * g[i] / (sqrtf(v[i]) + eps);
    }
  } else {
    for (int64_t i = 0; i < a->n; i++) {
      v[i] = v[i] * alpha + one_minus_alpha * g[i] * g[i];
      buf[i] = buf[i] * m + g[i] / (sqrtf(v[i]) + eps);
      out[i] = x[i] + neg_lr * buf[i];
    }
  }
}

CG_VECTOR_CLONES
static void rmsprop_f64(const cg__step_params *p, const cg__update_args *a)
{
  const cg_optimizer_config *c = p->config;
  const double neg_lr = -p->lr, alpha = c->rho, one_minus_alpha = 1 - c->rho, eps = c->eps,
               m = c->momentum;
  const double *restrict g = a->grad, *restrict x = a->param;
  double *restrict out = a->out, *restrict v = a->slot[0], *restrict buf = a->slot[1];
  if (!buf) {
    for (int64_t i = 0; i < a->n; i++) {
      v[i] = v[i] * alpha + one_minus_alpha * g[i] * g[i];
      out[i] = x[i] + neg_lr * g[i] / (sqrt(v[i]) + eps);
    }
  } else {
    for (int64_t i = 0; i < a->n; i++) {
      v[i] = v[i] * alpha + one_minus_alpha * g[i] * g[i];
      buf[i] = buf[i] * m + g[i] / (sqrt(v[i]) + eps);
      out[i] = x[i] + neg_lr * buf[i];
    }
  }
}

static void rmsprop(const cg__step_params *p, const cg__update_args *a)
{
  if (a->dtype == CG_F32)
    rmsprop_f32(p, a);
  else
    rmsprop_f64(p, a);
}

/* ======================================================================================
 * Adagrad (lr_decay 0):  sum += g^2;  p -= lr g / (sqrt(sum) + eps)
 * ==================================================================================== */

CG_VECTOR_CLONES
static void adagrad_f32(const cg__step_params *p, const cg__update_args *a)
{
  const float neg_lr = (float)-p->lr, eps = (float)p->config->eps;
  const float *restrict g = a->grad, *restrict x = a->param;
  float *restrict out = a->out, *restrict sum = a->slot[0];
  for (int64_t i = 0; i < a->n; i++) {
    sum[i] = sum[i] + g[i] * g[i];
    out[i] = x[i] + neg_lr * g[i] / (sqrtf(sum[i]) + eps);
  }
}

CG_VECTOR_CLONES
static void adagrad_f64(const cg__step_params *p, const cg__update_args *a)
{
  const double neg_lr = -p->lr, eps = p->config->eps;
  const double *restrict g = a->grad, *restrict x = a->param;
  double *restrict out = a->out, *restrict sum = a->slot[0];
  for (int64_t i = 0; i < a->n; i++) {
    sum[i] = sum[i] + g[i] * g[i];
    out[i] = x[i] + neg_lr * g[i] / (sqrt(sum[i]) + eps);
  }
}

static void adagrad(const cg__step_params *p, const cg__update_args *a)
{
  if (a->dtype == CG_F32)
    adagrad_f32(p, a);
  else
    adagrad_f64(p, a);
}

/* ======================================================================================
 * The table, and the slots each rule keeps. Every rule is element-wise, so a large
 * variable is updated in ranges spread over the threads, with the same result.
 * ==================================================================================== */

typedef struct {
  cg__update_fn rule;
  const cg__step_params *p;
  const cg__update_args *a;
} update_job;

static void update_range(void *ctx, int64_t begin, int64_t end)
{
  const update_job *j = ctx;
  cg__update_args r = *j->a;
  size_t e = cg_dtype_size(r.dtype), at = (size_t)begin * e;
  r.n = end - begin;
  r.grad = (const char *)r.grad + at;
  r.param = (const char *)r.param + at;
  r.out = (char *)r.out + at;
  for (int i = 0; i < CG_OPT_MAX_SLOTS; i++)
    if (r.slot[i]) r.slot[i] = (char *)r.slot[i] + at;
  j->rule(j->p, &r);
}

static void in_parallel(cg__update_fn rule, const cg__step_params *p, const cg__update_args *a)
{
  update_job j = {rule, p, a};
  cg__parallel_for(a->n, CG_PARALLEL_MIN_ELEMENTS, update_range, &j);
}

static void sgd_parallel(const cg__step_params *p, const cg__update_args *a) { in_parallel(sgd, p, a); }
static void adam_parallel(const cg__step_params *p, const cg__update_args *a) { in_parallel(adam, p, a); }
static void adamw_parallel(const cg__step_params *p, const cg__update_args *a) { in_parallel(adamw, p, a); }
static void rmsprop_parallel(const cg__step_params *p, const cg__update_args *a) { in_parallel(rmsprop, p, a); }
static void adagrad_parallel(const cg__step_params *p, const cg__update_args *a) { in_parallel(adagrad, p, a); }

static const cg__rule rules[] = {
    [CG_OPT_SGD] = {"SGD", 1e-2, 0, sgd_parallel},
    [CG_OPT_ADAM] = {"Adam", 1e-3, 1e-8, adam_parallel},
    [CG_OPT_ADAMW] = {"AdamW", 1e-3, 1e-8, adamw_parallel},
    [CG_OPT_RMSPROP] = {"RMSprop", 1e-2, 1e-8, rmsprop_parallel},
    [CG_OPT_ADAGRAD] = {"Adagrad", 1e-2, 1e-10, adagrad_parallel},
};

const cg__rule *cg__rule_for(cg_optimizer_kind kind)
{
  if ((int)kind < 0 || (size_t)kind >= sizeof rules / sizeof rules[0]) return NULL;
  return &rules[kind];
}

int cg__rule_slots(const cg_optimizer_config *config, const char **names)
{
  int n = 0;
  switch (config->kind) {
  case CG_OPT_SGD:
    if (config->momentum > 0) names[n++] = "momentum";
    break;
  case CG_OPT_ADAM:
  case CG_OPT_ADAMW:
    names[n++] = "m";
    names[n++] = "v";
    break;
  case CG_OPT_RMSPROP:
    names[n++] = "square_avg";
    if (config->momentum > 0) names[n++] = "momentum";
    break;
  case CG_OPT_ADAGRAD:
    names[n++] = "sum";
    break;
  }
  return n;
}

double cg__rule_slot_initial(const cg_optimizer_config *config, const char *slot)
{
  return config->kind == CG_OPT_ADAGRAD && strcmp(slot, "sum") == 0 ? config->initial_accumulator
                                                                    : 0.0;
}

/* schedule.c - learning-rate schedules as closed forms of the number of steps already taken,
 * t (0 for the first step): the value PyTorch's scheduler holds while the optimizer takes
 * step t, when scheduler.step() is called after each optimizer.step(). */
#include "optimizer.h"
#include <math.h>

cg_status cg__lr_schedule_check(const char *who, const cg_lr_schedule *s)
{
  switch (s->kind) {
  case CG_LR_CONSTANT:
    return CG_OK;
  case CG_LR_STEP:
    if (s->step_size <= 0)
      return cg_set_error(CG_EINVAL, "%s: step schedule: step_size must be > 0, got %lld", who,
                          (long long)s->step_size);
    if (!(s->gamma > 0) || !isfinite(s->gamma)) /* 0 is a forgotten field, not a wish */
      return cg_set_error(CG_EINVAL, "%s: step schedule: gamma must be > 0 (PyTorch uses 0.1), got %g",
                          who, s->gamma);
    return CG_OK;
  case CG_LR_COSINE:
    if (s->decay_steps <= 0)
      return cg_set_error(CG_EINVAL, "%s: cosine schedule: decay_steps must be > 0, got %lld", who,
                          (long long)s->decay_steps);
    if (!(s->lr_min >= 0) || !isfinite(s->lr_min))
      return cg_set_error(CG_EINVAL, "%s: cosine schedule: lr_min must be >= 0, got %g", who,
                          s->lr_min);
    return CG_OK;
  }
  return cg_set_error(CG_EINVAL, "%s: unknown learning-rate schedule kind %d", who, (int)s->kind);
}

double cg__lr_at(const cg_lr_schedule *s, double base_lr, int64_t t)
{
  switch (s->kind) {
  case CG_LR_STEP: /* lr gamma^floor(t / step_size) */
    return base_lr * pow(s->gamma, (double)(t / s->step_size));
  case CG_LR_COSINE: { /* lr_min + (lr - lr_min)(1 + cos(pi min(t, T)/T))/2, then lr_min */
    int64_t done = t < s->decay_steps ? t : s->decay_steps;
    double angle = M_PI * (double)done / (double)s->decay_steps;
    return s->lr_min + (base_lr - s->lr_min) * (1 + cos(angle)) / 2;
  }
  case CG_LR_CONSTANT:
  default:
    return base_lr;
  }
}

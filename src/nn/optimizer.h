/* optimizer.h - what the optimizer's files share: the update rules (optimizer_rules.c),
 * learning-rate schedules (schedule.c) and gradient clipping (clip.c), as the optimizer
 * object (optimizer.c) calls them. Not installed. */
#ifndef CG_NN_OPTIMIZER_H
#define CG_NN_OPTIMIZER_H

#include "../core/internal.h"

/* --- update rules ------------------------------------------------------------------------ */
#define CG_OPT_MAX_SLOTS 2

/* The numbers one step needs, computed once per step in double (as PyTorch computes its
 * Python-side scalars) and rounded to the variable's dtype by the f32 kernels. */
typedef struct {
  double lr;           /* this step's learning rate, after the schedule                   */
  int64_t step;        /* 1-based number of the step being taken (Adam's bias correction) */
  const cg_optimizer_config *config; /* with defaults filled in                            */
} cg__step_params;

/* One variable's update: out = new value from param and grad; slots updated in place.
 * All arrays hold n elements of dtype (f32 or f64); out is a fresh buffer. */
typedef struct {
  cg_dtype dtype;
  int64_t n;
  const void *grad;
  const void *param;
  void *out;
  void *slot[CG_OPT_MAX_SLOTS]; /* in the order cg__rule_slots gives; unused ones NULL */
} cg__update_args;

typedef void (*cg__update_fn)(const cg__step_params *p, const cg__update_args *a);

typedef struct {
  const char *name;         /* "Adam", in messages                                      */
  double default_lr, default_eps;
  cg__update_fn update;
} cg__rule;

/* The rule for a kind, or NULL if kind is not a cg_optimizer_kind. */
const cg__rule *cg__rule_for(cg_optimizer_kind kind);
/* The slots a configured rule keeps, in order ("m", "v"; "momentum" only with momentum > 0);
 * returns how many (at most CG_OPT_MAX_SLOTS). */
int cg__rule_slots(const cg_optimizer_config *config, const char **names);
/* out = grad + wd * param (PyTorch's coupled weight decay, done before every rule but AdamW's). */
void cg__add_weight_decay(double wd, const cg__update_args *a, void *out);
/* The value a new slot starts from (Adagrad's sum: initial_accumulator; others 0). */
double cg__rule_slot_initial(const cg_optimizer_config *config, const char *slot);

/* --- learning-rate schedules --------------------------------------------------------------- */
/* CG_EINVAL naming who unless the schedule's kind and fields make sense. */
cg_status cg__lr_schedule_check(const char *who, const cg_lr_schedule *s);
/* The learning rate of the step taken after t steps (t = 0 for the first step). */
double cg__lr_at(const cg_lr_schedule *s, double base_lr, int64_t t);

/* --- clipping ---------------------------------------------------------------------------- */
/* out[i] = grads[i] clipped element-wise to [-clip_value, clip_value] (if clip_value > 0),
 * then all scaled together to a global norm of at most clip_norm (if clip_norm > 0). Clipped
 * gradients are new tensors in the current scope; NULL gradients stay NULL; out may be grads. */
cg_status cg__clip_gradients(double clip_value, double clip_norm, cg_tensor *const *grads,
                             int n, cg_tensor **out);

#endif

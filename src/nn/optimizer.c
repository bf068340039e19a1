/* optimizer.c - the optimizer object: its configuration (PyTorch's defaults filled in), the
 * slots it keeps per variable name ("<variable>/<slot>", created on a variable's first
 * update), apply_gradients (validate everything, clip, then update each variable with
 * recording paused) and the state a checkpoint saves and restores. The update arithmetic
 * lives in optimizer_rules.c, schedules in schedule.c, clipping in clip.c.
 *
 * Steps: the learning rate of a step is the schedule at t = iterations taken before it
 * (t = 0 first); Adam's bias correction uses the 1-based step count t + 1. */
#include "optimizer.h"
#include "variable.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *name;       /* "<variable>/<slot>"                                          */
  cg_tensor *value; /* owned; updated in place while no one else holds a reference  */
} slot;

struct cg_optimizer {
  cg_optimizer_config config; /* defaults filled in                                   */
  const cg__rule *rule;
  const char *slot_kinds[CG_OPT_MAX_SLOTS];
  int n_slot_kinds;
  int64_t iterations;
  slot *slots;
  int n_slots, cap_slots;
  int scan_from; /* slot lookups start after the last match: variables come in the
                    same order every step, so the next one is usually right there */
};

/* ======================================================================================
 * Configuration
 * ==================================================================================== */

/* Zero fields take PyTorch's defaults; anything else is kept for check_config to judge. */
static cg_optimizer_config with_defaults(const cg_optimizer_config *c, const cg__rule *rule)
{
  cg_optimizer_config r = *c;
  if (r.lr == 0) r.lr = rule->default_lr;
  if (r.eps == 0) r.eps = rule->default_eps;
  if (r.beta1 == 0) r.beta1 = 0.9;
  if (r.beta2 == 0) r.beta2 = 0.999;
  if (r.rho == 0) r.rho = 0.99;
  return r;
}

/* CG_EINVAL unless lo <= v (and v < hi when hi_open, v <= hi otherwise) and v is finite. */
static cg_status check_range(const char *who, const char *field, double v, double lo, double hi,
                             int hi_open)
{
  int ok = isfinite(v) && v >= lo && (hi_open ? v < hi : v <= hi);
  if (ok) return CG_OK;
  return cg_set_error(CG_EINVAL, "%s: %s must be in [%g, %g%s, got %g", who, field, lo, hi,
                      hi_open ? ")" : "]", v);
}

static cg_status check_config(const char *who, const cg_optimizer_config *c)
{
  cg_status st;
  if (!(c->lr >= 0) || !isfinite(c->lr))
    return cg_set_error(CG_EINVAL, "%s: learning rate must be >= 0 and finite, got %g", who, c->lr);
  if ((st = check_range(who, "momentum", c->momentum, 0, INFINITY, 1)) ||
      (st = check_range(who, "beta1", c->beta1, 0, 1, 1)) ||
      (st = check_range(who, "beta2", c->beta2, 0, 1, 1)) ||
      (st = check_range(who, "eps", c->eps, 0, INFINITY, 1)) ||
      (st = check_range(who, "weight_decay", c->weight_decay, 0, INFINITY, 1)) ||
      (st = check_range(who, "rho", c->rho, 0, 1, 0)) ||
      (st = check_range(who, "initial_accumulator", c->initial_accumulator, 0, INFINITY, 1)) ||
      (st = check_range(who, "clip_value", c->clip_value, 0, INFINITY, 1)) ||
      (st = check_range(who, "clip_norm", c->clip_norm, 0, INFINITY, 1)))
    return st;
  if (c->kind == CG_OPT_SGD && c->nesterov && c->momentum <= 0)
    return cg_set_error(CG_EINVAL, "%s: Nesterov momentum needs momentum > 0, got %g", who,
                        c->momentum);
  return cg__lr_schedule_check(who, &c->schedule);
}

cg_optimizer *cg_optimizer_new(const cg_optimizer_config *config)
{
  if (!config) {
    cg_set_error(CG_EINVAL, "cg_optimizer_new: config is NULL");
    return NULL;
  }
  const cg__rule *rule = cg__rule_for(config->kind);
  if (!rule) {
    cg_set_error(CG_EINVAL, "cg_optimizer_new: unknown optimizer kind %d", (int)config->kind);
    return NULL;
  }
  cg_optimizer_config c = with_defaults(config, rule);
  if (check_config(rule->name, &c)) return NULL;
  cg_optimizer *opt = cg__calloc(1, sizeof *opt);
  if (!opt) return NULL;
  opt->config = c;
  opt->rule = rule;
  opt->n_slot_kinds = cg__rule_slots(&c, opt->slot_kinds);
  return opt;
}

static void free_slots(slot *slots, int n)
{
  for (int i = 0; i < n; i++) {
    free(slots[i].name);
    cg_release(slots[i].value);
  }
  free(slots);
}

void cg_optimizer_free(cg_optimizer *opt)
{
  if (!opt) return;
  free_slots(opt->slots, opt->n_slots);
  free(opt);
}

/* ======================================================================================
 * Slots
 * ==================================================================================== */

/* Whether name is "<var>/<kind>". */
static int slot_is(const char *name, const char *var, const char *kind)
{
  size_t n = strlen(var);
  return strncmp(name, var, n) == 0 && name[n] == '/' && strcmp(name + n + 1, kind) == 0;
}

static int find_slot(cg_optimizer *opt, const char *var, const char *kind)
{
  for (int k = 0; k < opt->n_slots; k++) {
    int i = (opt->scan_from + k) % opt->n_slots;
    if (slot_is(opt->slots[i].name, var, kind)) {
      opt->scan_from = i + 1;
      return i;
    }
  }
  return -1;
}

/* A caller-owned f32/f64 tensor shaped like like, every element value. */
static cg_tensor *filled_like(const cg_tensor *like, double value)
{
  cg_tensor *t = cg__tensor_new(like->dtype, like->ndim, like->shape);
  if (!t) return NULL;
  for (int64_t i = 0; i < t->size; i++) cg__store(t->dtype, t->data, i, value);
  return t;
}

static cg_tensor *private_copy(const cg_tensor *src)
{
  cg_tensor *t = cg__tensor_new(src->dtype, src->ndim, src->shape);
  if (t) memcpy(t->data, src->data, (size_t)src->size * cg_dtype_size(src->dtype));
  return t;
}

/* Appends (name, value) to a slot table, taking both (and freeing them on failure). */
static cg_status append_slot(slot **slots, int *n, int *cap, char *name, cg_tensor *value)
{
  if (name && *n == *cap) {
    int grown = *cap ? 2 * *cap : 8;
    slot *s = cg__realloc(*slots, (size_t)grown * sizeof *s);
    if (s) {
      *slots = s;
      *cap = grown;
    }
  }
  if (!name || !value || *n == *cap) {
    free(name);
    cg_release(value);
    return cg_last_status();
  }
  (*slots)[(*n)++] = (slot){name, value};
  return CG_OK;
}

/* "<prefix>/<suffix>" (or prefix alone when suffix is NULL), malloc'd. */
static char *joined(const char *prefix, const char *suffix)
{
  size_t len = strlen(prefix) + (suffix ? strlen(suffix) + 1 : 0) + 1;
  char *s = cg__malloc(len);
  if (s) snprintf(s, len, suffix ? "%s/%s" : "%s", prefix, suffix);
  return s;
}

static cg_status create_slot(cg_optimizer *opt, const cg_var *var, const char *kind, int *index)
{
  cg_tensor *value = filled_like(cg_var_value(var), cg__rule_slot_initial(&opt->config, kind));
  if (append_slot(&opt->slots, &opt->n_slots, &opt->cap_slots, joined(cg_var_name(var), kind),
                  value))
    return cg_last_status();
  *index = opt->n_slots - 1;
  return CG_OK;
}

/* The slot's data, ready to be written in place: a slot someone else holds a reference to
 * (through cg_optimizer_slot and cg_retain) is copied first, since tensors never change. */
static void *writable_slot(slot *s)
{
  if (s->value->refcount > 1 || s->value->buf->refcount > 1) {
    cg_tensor *copy = private_copy(s->value);
    if (!copy) return NULL;
    cg_release(s->value);
    s->value = copy;
  }
  return s->value->data;
}

/* Fills data[k] with the var's slot of each kind, creating missing ones. */
static cg_status prepare_slots(cg_optimizer *opt, const cg_var *var, void **data)
{
  for (int k = 0; k < opt->n_slot_kinds; k++) {
    int i = find_slot(opt, cg_var_name(var), opt->slot_kinds[k]);
    if (i < 0 && create_slot(opt, var, opt->slot_kinds[k], &i)) return cg_last_status();
    if (!(data[k] = writable_slot(&opt->slots[i]))) return cg_last_status();
  }
  return CG_OK;
}

/* ======================================================================================
 * apply_gradients
 * ==================================================================================== */

/* CG_EDTYPE / CG_ESHAPE unless t (the gradient, or the slot named slot_name) fits the
 * variable's value. */
static cg_status check_fits(const char *who, const char *slot_name, const char *var_name,
                            const cg_tensor *t, const cg_tensor *value)
{
  char a[160], b[160];
  const char *what = slot_name ? "slot '" : "gradient", *end = slot_name ? "'" : "";
  if (!slot_name) slot_name = "";
  if (t->dtype != value->dtype)
    return cg_set_error(CG_EDTYPE, "%s: %s%s%s for '%s' is %s, the variable is %s", who, what,
                        slot_name, end, var_name, cg_dtype_name(t->dtype), cg_dtype_name(value->dtype));
  if (!cg__shape_equal(t->ndim, t->shape, value->ndim, value->shape))
    return cg_set_error(CG_ESHAPE, "%s: %s%s%s for '%s' is %s, the variable is %s", who, what,
                        slot_name, end, var_name, cg_shape_str(t, a, sizeof a),
                        cg_shape_str(value, b, sizeof b));
  return CG_OK;
}

static cg_status check_variable(cg_optimizer *opt, cg_tensor *const *grads, cg_var *const *vars,
                                int i)
{
  const char *who = opt->rule->name;
  if (!vars[i]) return cg_set_error(CG_EINVAL, "%s: variable %d is NULL", who, i);
  const char *name = cg_var_name(vars[i]);
  if (!cg_var_trainable(vars[i]))
    return cg_set_error(CG_EINVAL, "%s: variable '%s' is not trainable", who, name);
  for (int j = 0; j < i; j++)
    if (vars[j] && strcmp(cg_var_name(vars[j]), name) == 0)
      return cg_set_error(CG_EINVAL, "%s: variables %d and %d are both named '%s'", who, j, i, name);
  if (!grads[i]) return CG_OK;
  if (cg__is_symbolic(grads[i]))
    return cg_set_error(CG_EINVAL, "%s: gradient for '%s' is a symbolic graph tensor (run the graph "
                                   "and apply the values)", who, name);
  const cg_tensor *value = cg_var_value(vars[i]);
  cg_status st = check_fits(who, NULL, name, grads[i], value);
  for (int k = 0; !st && k < opt->n_slot_kinds; k++) { /* restored slots must fit too */
    int s = find_slot(opt, name, opt->slot_kinds[k]);
    if (s >= 0) st = check_fits(who, opt->slots[s].name, name, opt->slots[s].value, value);
  }
  return st;
}

/* Whether the rule adds weight_decay * p to the gradient (all but AdamW, which decays p). */
static int couples_weight_decay(const cg_optimizer_config *c)
{
  return c->weight_decay != 0 && c->kind != CG_OPT_ADAMW;
}

static cg_status update_variable(cg_optimizer *opt, const cg__step_params *p, const cg_tensor *grad,
                                 cg_var *var)
{
  const cg_tensor *value = cg_var_value(var);
  cg__update_args a = {.dtype = value->dtype, .n = value->size, .grad = grad->data,
                       .param = value->data};
  if (prepare_slots(opt, var, a.slot)) return cg_last_status();
  cg_tensor *next = cg__tensor_new(value->dtype, value->ndim, value->shape), *decayed = NULL;
  if (!next) return cg_last_status();
  if (couples_weight_decay(&opt->config)) {
    if (!(decayed = cg__tensor_new(value->dtype, value->ndim, value->shape))) {
      cg_release(next);
      return cg_last_status();
    }
    cg__add_weight_decay(opt->config.weight_decay, &a, decayed->data);
    a.grad = decayed->data;
  }
  a.out = next->data;
  opt->rule->update(p, &a);
  cg_release(decayed);
  return cg__var_take(var, next); /* the fresh update becomes the value: no copy */
}

/* Clips (when configured) and updates every variable that has a gradient. */
static cg_status take_step(cg_optimizer *opt, cg_tensor *const *grads, cg_var *const *vars, int n)
{
  const cg_optimizer_config *c = &opt->config;
  cg_tensor **clipped = NULL;
  if (n > 0 && (c->clip_value > 0 || c->clip_norm > 0)) {
    if (!(clipped = cg__malloc((size_t)n * sizeof *clipped))) return cg_last_status();
    if (cg__clip_gradients(c->clip_value, c->clip_norm, grads, n, clipped)) {
      free(clipped);
      return cg_last_status();
    }
    grads = clipped;
  }
  cg__step_params p = {.lr = cg__lr_at(&c->schedule, c->lr, opt->iterations),
                       .step = opt->iterations + 1, .config = c};
  cg_status st = CG_OK;
  for (int i = 0; i < n && !st; i++)
    if (grads[i]) st = update_variable(opt, &p, grads[i], vars[i]);
  free(clipped);
  return st;
}

cg_status cg_optimizer_apply_gradients(cg_optimizer *opt, cg_tensor *const *grads,
                                       cg_var *const *vars, int n)
{
  if (!opt) return cg_set_error(CG_EINVAL, "cg_optimizer_apply_gradients: optimizer is NULL");
  const char *who = opt->rule->name;
  if (n < 0) return cg_set_error(CG_EINVAL, "%s: n is %d, must be >= 0", who, n);
  if (n > 0 && (!grads || !vars))
    return cg_set_error(CG_EINVAL, "%s: %s is NULL", who, grads ? "vars" : "grads");
  for (int i = 0; i < n; i++)
    if (check_variable(opt, grads, vars, i)) return cg_last_status();

  cg_scope scope = cg_scope_begin();
  cg_pause_recording(); /* an update is not part of any computation being differentiated */
  cg_status st = take_step(opt, grads, vars, n);
  cg_resume_recording();
  cg_scope_end(scope);
  if (st) return st;
  opt->iterations++;
  return CG_OK;
}

/* ======================================================================================
 * State: iterations and slots, for checkpoints
 * ==================================================================================== */

int64_t cg_optimizer_iterations(const cg_optimizer *opt)
{
  if (!opt) {
    cg_set_error(CG_EINVAL, "cg_optimizer_iterations: optimizer is NULL");
    return -1;
  }
  return opt->iterations;
}

double cg_optimizer_current_lr(const cg_optimizer *opt)
{
  if (!opt) {
    cg_set_error(CG_EINVAL, "cg_optimizer_current_lr: optimizer is NULL");
    return -1;
  }
  return cg__lr_at(&opt->config.schedule, opt->config.lr, opt->iterations);
}

int cg_optimizer_num_slots(const cg_optimizer *opt)
{
  if (!opt) {
    cg_set_error(CG_EINVAL, "cg_optimizer_num_slots: optimizer is NULL");
    return -1;
  }
  return opt->n_slots;
}

static const slot *slot_at(const cg_optimizer *opt, int i, const char *fn)
{
  if (!opt) {
    cg_set_error(CG_EINVAL, "%s: optimizer is NULL", fn);
    return NULL;
  }
  if (i < 0 || i >= opt->n_slots) {
    cg_set_error(CG_ERANGE, "%s: slot %d is out of range [0, %d)", fn, i, opt->n_slots);
    return NULL;
  }
  return &opt->slots[i];
}

const char *cg_optimizer_slot_name(const cg_optimizer *opt, int i)
{
  const slot *s = slot_at(opt, i, "cg_optimizer_slot_name");
  return s ? s->name : NULL;
}

cg_tensor *cg_optimizer_slot(const cg_optimizer *opt, int i)
{
  const slot *s = slot_at(opt, i, "cg_optimizer_slot");
  return s ? s->value : NULL;
}

/* CG_EINVAL unless name is "<variable>/<kind>" with a kind this optimizer keeps. */
static cg_status check_slot_name(const cg_optimizer *opt, const char *name)
{
  const char *cut = strrchr(name, '/');
  if (cut && cut != name)
    for (int k = 0; k < opt->n_slot_kinds; k++)
      if (strcmp(cut + 1, opt->slot_kinds[k]) == 0) return CG_OK;
  char kinds[64] = "";
  for (int k = 0; k < opt->n_slot_kinds; k++)
    snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s", k ? ", " : "",
             opt->slot_kinds[k]);
  return cg_set_error(CG_EINVAL, "%s: slot '%s' is not '<variable>/<slot>' with a slot this "
                      "optimizer keeps (%s)", opt->rule->name, name,
                      opt->n_slot_kinds ? kinds : "none");
}

static cg_status check_state(const cg_optimizer *opt, int64_t iterations,
                             const char *const *names, cg_tensor *const *slots, int n)
{
  const char *who = opt->rule->name;
  if (iterations < 0)
    return cg_set_error(CG_EINVAL, "%s: iterations is %lld, must be >= 0", who, (long long)iterations);
  if (n < 0) return cg_set_error(CG_EINVAL, "%s: n is %d, must be >= 0", who, n);
  if (n > 0 && (!names || !slots))
    return cg_set_error(CG_EINVAL, "%s: %s is NULL", who, names ? "slots" : "slot_names");
  for (int i = 0; i < n; i++) {
    if (!names[i] || !slots[i])
      return cg_set_error(CG_EINVAL, "%s: %s %d is NULL", who, names[i] ? "slot" : "slot name", i);
    if (!cg_dtype_is_float(slots[i]->dtype))
      return cg_set_error(CG_EDTYPE, "%s: slot '%s' is %s, slots are f32 or f64", who, names[i],
                          cg_dtype_name(slots[i]->dtype));
    if (cg__is_symbolic(slots[i]))
      return cg_set_error(CG_EINVAL, "%s: slot '%s' is a symbolic graph tensor", who, names[i]);
    if (check_slot_name(opt, names[i])) return cg_last_status();
    for (int j = 0; j < i; j++)
      if (strcmp(names[j], names[i]) == 0)
        return cg_set_error(CG_EINVAL, "%s: slot '%s' is given twice", who, names[i]);
  }
  return CG_OK;
}

cg_status cg_optimizer_set_state(cg_optimizer *opt, int64_t iterations,
                                 const char *const *slot_names, cg_tensor *const *slots, int n)
{
  if (!opt) return cg_set_error(CG_EINVAL, "cg_optimizer_set_state: optimizer is NULL");
  if (check_state(opt, iterations, slot_names, slots, n)) return cg_last_status();
  slot *table = NULL; /* built aside, so a failure leaves the optimizer as it was */
  int count = 0, cap = 0;
  for (int i = 0; i < n; i++)
    if (append_slot(&table, &count, &cap, joined(slot_names[i], NULL), private_copy(slots[i]))) {
      free_slots(table, count);
      return cg_last_status();
    }
  free_slots(opt->slots, opt->n_slots);
  opt->slots = table;
  opt->n_slots = count;
  opt->cap_slots = cap;
  opt->scan_from = 0;
  opt->iterations = iterations;
  return CG_OK;
}

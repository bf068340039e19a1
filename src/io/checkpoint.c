/* checkpoint.c - a model checkpoint as one safetensors file: each variable under its own
 * name, each optimizer slot under "optimizer/<slot>", the optimizer's step count in the
 * metadata as "optimizer_iterations", and the caller's metadata beside it. Restoring checks
 * everything before changing anything. */
#include "../core/internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_PREFIX "optimizer/"
#define ITERATIONS_KEY "optimizer_iterations"

static int has_slot_prefix(const char *name)
{
  return !strncmp(name, SLOT_PREFIX, strlen(SLOT_PREFIX));
}

/* Variables present, not named like slots, and named once each. */
static cg_status check_vars(const char *who, cg_var *const *vars, int n)
{
  if (n < 0) return cg_set_error(CG_EINVAL, "%s: n_vars is %d, must be >= 0", who, n);
  if (n > 0 && !vars) return cg_set_error(CG_EINVAL, "%s: vars is NULL but n_vars is %d", who, n);
  for (int i = 0; i < n; i++) {
    if (!vars[i]) return cg_set_error(CG_EINVAL, "%s: variable %d is NULL", who, i);
    const char *name = cg_var_name(vars[i]);
    if (has_slot_prefix(name))
      return cg_set_error(CG_EINVAL, "%s: variable name '%s' starts with '%s', which is kept for "
                                     "optimizer slots", who, name, SLOT_PREFIX);
    for (int j = 0; j < i; j++)
      if (!strcmp(cg_var_name(vars[j]), name))
        return cg_set_error(CG_EINVAL, "%s: variables %d and %d are both named '%s'", who, j, i,
                            name);
  }
  return CG_OK;
}

/* ======================================================================================
 * Saving
 * ==================================================================================== */

typedef struct {
  const char **names;
  char **owned_names; /* the "optimizer/..." ones */
  cg_tensor **tensors;
  int n, n_owned;
  const char **meta_keys, **meta_values;
  int n_meta;
  char iterations[32];
} save_list;

static void save_list_free(save_list *s)
{
  for (int i = 0; i < s->n_owned; i++) free(s->owned_names[i]);
  free(s->owned_names);
  free(s->names);
  free(s->tensors);
  free(s->meta_keys);
  free(s->meta_values);
}

static cg_status add_optimizer(save_list *s, const cg_optimizer *opt)
{
  int n_slots = cg_optimizer_num_slots(opt);
  if (n_slots < 0) return cg_last_status();
  for (int i = 0; i < n_slots; i++) {
    const char *slot = cg_optimizer_slot_name(opt, i);
    cg_tensor *value = cg_optimizer_slot(opt, i);
    if (!slot || !value) return cg_last_status();
    size_t len = strlen(SLOT_PREFIX) + strlen(slot) + 1;
    char *name = malloc(len);
    if (!name) return cg_set_error(CG_ENOMEM, "cg_checkpoint_save: out of memory");
    snprintf(name, len, "%s%s", SLOT_PREFIX, slot);
    s->owned_names[s->n_owned++] = name;
    s->names[s->n] = name;
    s->tensors[s->n++] = value;
  }
  snprintf(s->iterations, sizeof s->iterations, "%lld", (long long)cg_optimizer_iterations(opt));
  s->meta_keys[s->n_meta] = ITERATIONS_KEY;
  s->meta_values[s->n_meta++] = s->iterations;
  return CG_OK;
}

static cg_status build_save_list(save_list *s, cg_var *const *vars, int n_vars,
                                 const cg_optimizer *opt, const char *const *meta_keys,
                                 const char *const *meta_values, int n_meta)
{
  int n_slots = opt ? cg_optimizer_num_slots(opt) : 0;
  if (n_slots < 0) return cg_last_status();
  size_t cap = (size_t)n_vars + (size_t)n_slots + 1, cap_meta = (size_t)n_meta + 1;
  s->names = calloc(cap, sizeof *s->names);
  s->owned_names = calloc(cap, sizeof *s->owned_names);
  s->tensors = calloc(cap, sizeof *s->tensors);
  s->meta_keys = calloc(cap_meta, sizeof *s->meta_keys);
  s->meta_values = calloc(cap_meta, sizeof *s->meta_values);
  if (!s->names || !s->owned_names || !s->tensors || !s->meta_keys || !s->meta_values)
    return cg_set_error(CG_ENOMEM, "cg_checkpoint_save: out of memory");
  for (int i = 0; i < n_vars; i++) {
    s->names[s->n] = cg_var_name(vars[i]);
    s->tensors[s->n++] = cg_var_value(vars[i]);
  }
  for (int i = 0; i < n_meta; i++) {
    if (meta_keys[i] && !strcmp(meta_keys[i], ITERATIONS_KEY))
      return cg_set_error(CG_EINVAL, "cg_checkpoint_save: metadata key '%s' is kept for the "
                                     "optimizer's step count", ITERATIONS_KEY);
    s->meta_keys[s->n_meta] = meta_keys[i];
    s->meta_values[s->n_meta++] = meta_values[i];
  }
  return opt ? add_optimizer(s, opt) : CG_OK;
}

cg_status cg_checkpoint_save(const char *path, cg_var *const *vars, int n_vars,
                             const cg_optimizer *opt, const char *const *meta_keys,
                             const char *const *meta_values, int n_meta)
{
  const char *who = "cg_checkpoint_save";
  if (!path) return cg_set_error(CG_EINVAL, "%s: path is NULL", who);
  cg_status st = check_vars(who, vars, n_vars);
  if (st != CG_OK) return st;
  if (n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_values)))
    return cg_set_error(CG_EINVAL, "%s: n_meta is %d with meta_keys %s and meta_values %s", who,
                        n_meta, meta_keys ? "given" : "NULL", meta_values ? "given" : "NULL");
  save_list s = {0};
  st = build_save_list(&s, vars, n_vars, opt, meta_keys, meta_values, n_meta);
  if (st == CG_OK)
    st = cg_safetensors_save(path, s.names, s.tensors, s.n, s.meta_keys, s.meta_values, s.n_meta);
  save_list_free(&s);
  return st;
}

/* ======================================================================================
 * Restoring: check every variable and the optimizer state, then assign
 * ==================================================================================== */

/* The saved value for var, checked against its dtype and shape. */
static cg_tensor *saved_value(const cg_safetensors *f, const char *path, const cg_var *var)
{
  const char *who = "cg_checkpoint_restore";
  const char *name = cg_var_name(var);
  cg_tensor *saved = cg_safetensors_get(f, name), *value = cg_var_value(var);
  if (!saved) {
    cg_set_error(CG_ENOTFOUND, "%s: '%s' has no tensor for variable '%s'", who, path, name);
    return NULL;
  }
  char a[160], b[160];
  if (saved->dtype != value->dtype ||
      !cg__shape_equal(saved->ndim, saved->shape, value->ndim, value->shape)) {
    cg_set_error(saved->dtype != value->dtype ? CG_EDTYPE : CG_ESHAPE,
                 "%s: variable '%s' is %s %s but '%s' holds %s %s", who, name,
                 cg_dtype_name(value->dtype), cg_shape_str(value, a, sizeof a), path,
                 cg_dtype_name(saved->dtype), cg_shape_str(saved, b, sizeof b));
    return NULL;
  }
  return saved;
}

/* A slot "<var>/<kind>" of a variable being restored must have that variable's shape. */
static cg_status check_slot_fits(const char *path, const char *slot, const cg_tensor *value,
                                 cg_var *const *vars, int n_vars)
{
  const char *cut = strrchr(slot, '/');
  size_t len = cut ? (size_t)(cut - slot) : 0;
  for (int i = 0; cut && i < n_vars; i++) {
    const char *name = cg_var_name(vars[i]);
    const cg_tensor *v = cg_var_value(vars[i]);
    char a[160], b[160];
    if (strlen(name) == len && !strncmp(name, slot, len) &&
        (v->dtype != value->dtype ||
         !cg__shape_equal(v->ndim, v->shape, value->ndim, value->shape)))
      return cg_set_error(CG_ESHAPE, "cg_checkpoint_restore: optimizer slot '%s' in '%s' is %s %s "
                                     "but variable '%s' is %s %s", slot, path,
                          cg_dtype_name(value->dtype), cg_shape_str(value, a, sizeof a), name,
                          cg_dtype_name(v->dtype), cg_shape_str(v, b, sizeof b));
  }
  return CG_OK;
}

static cg_status parse_iterations(const cg_safetensors *f, const char *path, int64_t *out)
{
  const char *text = cg_safetensors_meta(f, ITERATIONS_KEY);
  if (!text)
    return cg_set_error(CG_ENOTFOUND, "cg_checkpoint_restore: '%s' holds no optimizer state (no "
                                      "'%s' metadata)", path, ITERATIONS_KEY);
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno || end == text || *end || v < 0)
    return cg_set_error(CG_EINVAL, "cg_checkpoint_restore: '%s' has '%s' = '%s', not a step count",
                        path, ITERATIONS_KEY, text);
  *out = v;
  return CG_OK;
}

/* The optimizer's state from f: all "optimizer/..." tensors, checked, then handed over. */
static cg_status restore_optimizer(const cg_safetensors *f, const char *path, cg_optimizer *opt,
                                   cg_var *const *vars, int n_vars)
{
  int64_t iterations = 0;
  cg_status st = parse_iterations(f, path, &iterations);
  if (st != CG_OK) return st;
  int n = cg_safetensors_count(f), k = 0;
  const char **names = calloc((size_t)n + 1, sizeof *names);
  cg_tensor **slots = calloc((size_t)n + 1, sizeof *slots);
  if (!names || !slots) st = cg_set_error(CG_ENOMEM, "cg_checkpoint_restore: out of memory");
  for (int i = 0; st == CG_OK && i < n; i++) {
    const char *name = cg_safetensors_name(f, i);
    if (!has_slot_prefix(name)) continue;
    names[k] = name + strlen(SLOT_PREFIX);
    slots[k] = cg_safetensors_get(f, name);
    st = check_slot_fits(path, names[k], slots[k], vars, n_vars);
    k++;
  }
  if (st == CG_OK) st = cg_optimizer_set_state(opt, iterations, names, slots, k);
  free(names);
  free(slots);
  return st;
}

cg_status cg_checkpoint_restore(const char *path, cg_var *const *vars, int n_vars,
                                cg_optimizer *opt)
{
  const char *who = "cg_checkpoint_restore";
  if (!path) return cg_set_error(CG_EINVAL, "%s: path is NULL", who);
  cg_status st = check_vars(who, vars, n_vars);
  if (st != CG_OK) return st;
  cg_safetensors *f = cg_safetensors_load(path);
  if (!f) return cg_last_status();
  cg_tensor **values = calloc((size_t)n_vars + 1, sizeof *values);
  if (!values) st = cg_set_error(CG_ENOMEM, "%s: out of memory", who);
  for (int i = 0; st == CG_OK && i < n_vars; i++)
    if (!(values[i] = saved_value(f, path, vars[i]))) st = cg_last_status();
  /* The optimizer's set_state changes nothing when it fails, so it goes first; after it,
   * assigning values already checked can only fail for lack of memory. */
  if (st == CG_OK && opt) st = restore_optimizer(f, path, opt, vars, n_vars);
  for (int i = 0; st == CG_OK && i < n_vars; i++) st = cg_var_assign(vars[i], values[i]);
  free(values);
  cg_safetensors_free(f);
  return st;
}

/* layer.c - the cg_layer object every kind shares (names, owned variables, forward through
 * the kind's table, describe, free), the Sequential container, and the activation and
 * argument checks the kinds use. The kinds themselves live in layer_*.c. */
#include "layer.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================================
 * The layer object
 * ==================================================================================== */

static void free_state(cg_layer_kind *kind, void *state)
{
  if (kind && kind->free_state) kind->free_state(state);
  else free(state);
}

/* Keras' default names: the first unnamed dense layer is "dense", then "dense_1", ... */
static char *default_name(cg_layer_kind *kind)
{
  int k = atomic_fetch_add(&kind->unnamed, 1);
  char buf[96];
  if (k == 0) snprintf(buf, sizeof buf, "%s", kind->default_name);
  else snprintf(buf, sizeof buf, "%s_%d", kind->default_name, k);
  return strdup(buf);
}

cg_layer *cg__layer_new(cg_layer_kind *kind, const char *name, void *state)
{
  if (name && !*name) {
    cg_set_error(CG_EINVAL, "%s: the layer name is empty (pass NULL for a default name)",
                 kind->type);
    free_state(kind, state);
    return NULL;
  }
  cg_layer *layer = cg__calloc(1, sizeof *layer);
  if (!layer) {
    free_state(kind, state);
    return NULL;
  }
  layer->kind = kind;
  layer->state = state;
  layer->name = name ? strdup(name) : default_name(kind);
  if (!layer->name) {
    cg_set_error(CG_ENOMEM, "%s: out of memory", kind->type);
    cg_layer_free(layer);
    return NULL;
  }
  return layer;
}

cg_status cg__layer_add_var(cg_layer *layer, const char *suffix, cg_tensor *value, int trainable)
{
  if (!value) return cg__null_input(layer->kind->type, 0);
  cg_var **grown = cg__realloc(layer->vars, (size_t)(layer->n_vars + 1) * sizeof *grown);
  if (!grown) return CG_ENOMEM;
  layer->vars = grown;
  size_t len = strlen(layer->name) + 1 + strlen(suffix) + 1;
  char *full = cg__malloc(len);
  if (!full) return CG_ENOMEM;
  snprintf(full, len, "%s/%s", layer->name, suffix);
  cg_var *v = cg_var_new(full, value, trainable);
  free(full);
  if (!v) return cg_last_status();
  layer->vars[layer->n_vars++] = v;
  return CG_OK;
}

void cg_layer_free(cg_layer *layer)
{
  if (!layer) return;
  if (layer->parent) {
    /* the container frees it; freeing it here would leave the container a dangling child */
    cg_set_error(CG_ESTATE, "cg_layer_free: layer '%s' belongs to '%s', which frees it",
                 layer->name, layer->parent->name);
    return;
  }
  for (int i = 0; i < layer->n_vars; i++) cg_var_free(layer->vars[i]);
  free(layer->vars);
  free_state(layer->kind, layer->state);
  free(layer->name);
  free(layer);
}

const char *cg_layer_name(const cg_layer *layer) { return layer ? layer->name : NULL; }

cg_tensor *cg_layer_forward(cg_layer *layer, cg_tensor *x, int training)
{
  if (!layer) {
    cg_set_error(CG_EINVAL, "cg_layer_forward: layer is NULL");
    return NULL;
  }
  if (!x) {
    cg__null_input(layer->name, 0);
    return NULL;
  }
  return layer->kind->forward(layer, x, training);
}

/* ======================================================================================
 * Sequential: children run in order; it owns them and reports their variables
 * ==================================================================================== */

typedef struct {
  cg_layer **children;
  int n, cap;
} sequential_state;

static void sequential_free_state(void *p)
{
  sequential_state *s = p;
  if (!s) return;
  for (int i = 0; i < s->n; i++) {
    s->children[i]->parent = NULL;
    cg_layer_free(s->children[i]);
  }
  free(s->children);
  free(s);
}

static cg_tensor *sequential_forward(cg_layer *layer, cg_tensor *x, int training)
{
  sequential_state *s = layer->state;
  if (s->n == 0) return cg_identity(x);
  /* intermediate activations are freed here unless a tape recorded (and so holds) them */
  cg_scope scope = cg_scope_begin();
  cg_tensor *y = x;
  for (int i = 0; i < s->n && y; i++) y = cg_layer_forward(s->children[i], y, training);
  if (y) cg_keep(y);
  cg_scope_end(scope);
  return y;
}

static int sequential_describe(const cg_layer *layer, char *buf, size_t n)
{
  const sequential_state *s = layer->state;
  return snprintf(buf, n, "Sequential(%d layer%s)", s->n, s->n == 1 ? "" : "s");
}

static cg_layer_kind sequential_kind = {"Sequential", "sequential", 0, sequential_forward,
                                        sequential_describe, sequential_free_state};

static bool is_sequential(const cg_layer *layer) { return layer->kind == &sequential_kind; }

cg_layer *cg_sequential(const char *name)
{
  sequential_state *s = cg__calloc(1, sizeof *s);
  return s ? cg__layer_new(&sequential_kind, name, s) : NULL;
}

/* Writes the variables of layer (and its children) from index `count` on; returns the total. */
static int collect_variables(const cg_layer *layer, int trainable_only, cg_var **out, int max,
                             int count)
{
  if (is_sequential(layer)) {
    const sequential_state *s = layer->state;
    for (int i = 0; i < s->n; i++)
      count = collect_variables(s->children[i], trainable_only, out, max, count);
    return count;
  }
  for (int i = 0; i < layer->n_vars; i++) {
    if (trainable_only && !cg_var_trainable(layer->vars[i])) continue;
    if (count < max) out[count] = layer->vars[i];
    count++;
  }
  return count;
}

int cg_layer_variables(cg_layer *layer, int trainable_only, cg_var **out, int max)
{
  if (!layer || max < 0 || (max > 0 && !out)) {
    cg_set_error(CG_EINVAL, "cg_layer_variables: %s", !layer ? "layer is NULL"
                                                      : max < 0 ? "max is negative"
                                                                : "out is NULL but max > 0");
    return -1;
  }
  return collect_variables(layer, trainable_only, out, max, 0);
}

cg_status cg__layer_cast_variables(cg_layer *layer, cg_dtype d)
{
  if (is_sequential(layer)) {
    sequential_state *s = layer->state;
    cg_status st = CG_OK;
    for (int i = 0; i < s->n && st == CG_OK; i++) st = cg__layer_cast_variables(s->children[i], d);
    return st;
  }
  for (int i = 0; i < layer->n_vars; i++) {
    cg_var *old = layer->vars[i];
    cg_scope scope = cg_scope_begin();
    cg_var *v = cg_var_new(cg_var_name(old), cg_cast(cg_var_value(old), d), cg_var_trainable(old));
    cg_scope_end(scope);
    if (!v) return cg_last_status();
    cg_var_free(old);
    layer->vars[i] = v;
  }
  return CG_OK;
}

/* Every variable of the tree layer belongs to, as a new malloc'd array (count in *n). */
static cg_var **all_variables(const cg_layer *layer, int *n)
{
  *n = collect_variables(layer, 0, NULL, 0, 0);
  cg_var **vars = cg__malloc((size_t)(*n ? *n : 1) * sizeof *vars);
  if (vars) collect_variables(layer, 0, vars, *n, 0);
  return vars;
}

/* CG_EEXIST if a variable of layer has the name of one already in the tree under root:
 * checkpoints find variables by name, so names must be unique in a model. */
static cg_status check_unique_names(const cg_layer *root, const cg_layer *layer)
{
  int n_old, n_new;
  cg_var **old = all_variables(root, &n_old), **added = all_variables(layer, &n_new);
  cg_status st = old && added ? CG_OK : CG_ENOMEM;
  for (int i = 0; st == CG_OK && i < n_new; i++)
    for (int j = 0; st == CG_OK && j < n_old; j++)
      if (!strcmp(cg_var_name(added[i]), cg_var_name(old[j])))
        st = cg_set_error(CG_EEXIST,
                          "cg_sequential_add: variable '%s' of layer '%s' is already in '%s' "
                          "(give the layers distinct names)",
                          cg_var_name(added[i]), layer->name, root->name);
  free(old);
  free(added);
  return st;
}

cg_status cg_sequential_add(cg_layer *seq, cg_layer *layer)
{
  if (!seq || !layer)
    return cg_set_error(CG_EINVAL, "cg_sequential_add: %s is NULL", !seq ? "seq" : "layer");
  if (!is_sequential(seq))
    return cg_set_error(CG_EINVAL, "cg_sequential_add: '%s' is a %s, not a Sequential", seq->name,
                        seq->kind->type);
  if (layer->parent)
    return cg_set_error(CG_ESTATE, "cg_sequential_add: layer '%s' already belongs to '%s'",
                        layer->name, layer->parent->name);
  const cg_layer *root = seq;
  for (const cg_layer *a = seq; a; a = a->parent) {
    if (a == layer)
      return cg_set_error(CG_EINVAL, "cg_sequential_add: adding '%s' to '%s' makes a cycle",
                          layer->name, seq->name);
    root = a;
  }
  cg_status st = check_unique_names(root, layer);
  if (st != CG_OK) return st;
  sequential_state *s = seq->state;
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 4;
    cg_layer **grown = cg__realloc(s->children, (size_t)cap * sizeof *grown);
    if (!grown) return CG_ENOMEM;
    s->children = grown;
    s->cap = cap;
  }
  s->children[s->n++] = layer;
  layer->parent = seq;
  return CG_OK;
}

/* ======================================================================================
 * Describe: "name  Kind(details)  N parameters", children indented under a Sequential
 * ==================================================================================== */

typedef struct {
  char *buf;
  size_t cap, len; /* len counts what did not fit too */
} text;

static void text_add(text *t, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  size_t room = t->len < t->cap ? t->cap - t->len : 0;
  int k = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
  va_end(ap);
  if (k > 0) t->len += (size_t)k;
}

static int64_t parameter_count(const cg_layer *layer)
{
  int n;
  cg_var **vars = all_variables(layer, &n);
  int64_t total = 0;
  for (int i = 0; vars && i < n; i++) total += cg_tensor_size(cg_var_value(vars[i]));
  free(vars);
  return total;
}

/* 200960 -> "200,960" */
static char *with_commas(int64_t v, char *out, size_t n)
{
  char digits[32];
  int len = snprintf(digits, sizeof digits, "%lld", (long long)v);
  size_t o = 0;
  for (int i = 0; i < len && o + 1 < n; i++) {
    if (i && (len - i) % 3 == 0 && o + 2 < n) out[o++] = ',';
    out[o++] = digits[i];
  }
  out[o] = '\0';
  return out;
}

static void describe_line(text *t, const cg_layer *layer, int indent, int name_width,
                          int kind_width)
{
  char kind[256], count[32];
  layer->kind->describe(layer, kind, sizeof kind);
  text_add(t, "%*s%-*s  %-*s  %s parameters", indent, "", name_width, layer->name, kind_width,
           kind, with_commas(parameter_count(layer), count, sizeof count));
}

static void describe_tree(text *t, const cg_layer *layer, int indent, int name_width,
                          int kind_width)
{
  describe_line(t, layer, indent, name_width, kind_width);
  if (!is_sequential(layer)) return;
  const sequential_state *s = layer->state;
  int names = 0, kinds = 0; /* children's columns line up */
  for (int i = 0; i < s->n; i++) {
    char kind[256];
    int k = s->children[i]->kind->describe(s->children[i], kind, sizeof kind);
    int nl = (int)strlen(s->children[i]->name);
    names = nl > names ? nl : names;
    kinds = k > kinds ? k : kinds;
  }
  for (int i = 0; i < s->n; i++) {
    text_add(t, "\n");
    describe_tree(t, s->children[i], indent + 2, names, kinds);
  }
}

cg_status cg_layer_describe(const cg_layer *layer, char *buf, size_t n)
{
  if (!layer || !buf || !n)
    return cg_set_error(CG_EINVAL, "cg_layer_describe: %s",
                        !layer ? "layer is NULL" : !buf ? "buf is NULL" : "the buffer size is 0");
  text t = {buf, n, 0};
  buf[0] = '\0';
  describe_tree(&t, layer, 0, 0, 0);
  if (t.len >= n)
    return cg_set_error(CG_EINVAL,
                        "cg_layer_describe: the description of '%s' needs %zu bytes, the buffer "
                        "has %zu (it holds the start)",
                        layer->name, t.len + 1, n);
  return CG_OK;
}

/* ======================================================================================
 * Helpers the kinds share
 * ==================================================================================== */

const char *cg__activation_name(cg_activation act)
{
  switch (act) {
  case CG_ACT_NONE: return "linear";
  case CG_ACT_RELU: return "relu";
  case CG_ACT_TANH: return "tanh";
  case CG_ACT_SIGMOID: return "sigmoid";
  }
  return NULL;
}

cg_status cg__check_activation(const char *fn, cg_activation act)
{
  if (cg__activation_name(act)) return CG_OK;
  return cg_set_error(CG_EINVAL, "%s: unknown activation %d", fn, (int)act);
}

cg_tensor *cg__activate(cg_tensor *x, cg_activation act)
{
  switch (act) {
  case CG_ACT_RELU: return cg_relu(x);
  case CG_ACT_TANH: return cg_tanh(x);
  case CG_ACT_SIGMOID: return cg_sigmoid(x);
  default: return x;
  }
}

cg_status cg__check_pair(const char *fn, const char *what, const int pair[2])
{
  if (!pair) return cg_set_error(CG_EINVAL, "%s: %s is NULL", fn, what);
  if (pair[0] <= 0 || pair[1] <= 0)
    return cg_set_error(CG_EINVAL, "%s: %s must be positive, got [%d,%d]", fn, what, pair[0],
                        pair[1]);
  return CG_OK;
}

cg_status cg__check_padding(const char *fn, cg_padding padding)
{
  if (padding == CG_PAD_VALID || padding == CG_PAD_SAME) return CG_OK;
  return cg_set_error(CG_EINVAL, "%s: unknown padding %d (CG_PAD_VALID or CG_PAD_SAME)", fn,
                      (int)padding);
}

const char *cg__padding_name(cg_padding padding)
{
  return padding == CG_PAD_SAME ? "same" : "valid";
}

cg_status cg__check_input_dtype(const cg_layer *layer, const cg_tensor *x, const cg_var *v)
{
  cg_dtype want = cg_tensor_dtype(cg_var_value(v));
  if (x->dtype == want) return CG_OK;
  return cg_set_error(CG_EDTYPE, "%s: input is %s but the layer's variables are %s", layer->name,
                      cg_dtype_name(x->dtype), cg_dtype_name(want));
}

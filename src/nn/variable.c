/* variable.c - variables: a named, mutable holder of a tensor value. Reading one under a
 * tape watches it (if trainable); reading one in a graph adds a ReadVariable node; assigning
 * replaces the value with a new tensor, so values already recorded never change underneath. */
#include "../autodiff/node.h"
#include "variable.h"
#include <stdlib.h>
#include <string.h>

struct cg_var {
  char *name;
  cg_tensor *value; /* owned */
  int trainable;
};

/* A private copy of t, owned by the caller (not in any scope). */
static cg_tensor *copy_tensor(const cg_tensor *t)
{
  cg_tensor *c = cg__tensor_new(t->dtype, t->ndim, t->shape);
  if (c) memcpy(c->data, t->data, (size_t)t->size * cg_dtype_size(t->dtype));
  return c;
}

cg_var *cg_var_new(const char *name, cg_tensor *initial, int trainable)
{
  if (!initial) {
    cg__null_input("cg_var_new", 0);
    return NULL;
  }
  if (cg__is_symbolic(initial)) {
    cg_set_error(CG_EINVAL, "cg_var_new: the initial value is a symbolic graph tensor (of variable "
                 "'%s'): give a concrete tensor", name ? name : "");
    return NULL;
  }
  if (trainable && !cg_dtype_is_float(initial->dtype)) {
    cg_set_error(CG_EDTYPE, "cg_var_new: variable '%s' is trainable but its value is %s",
                 name ? name : "", cg_dtype_name(initial->dtype));
    return NULL;
  }
  cg_var *v = cg__calloc(1, sizeof *v);
  if (!v) return NULL;
  v->name = strdup(name ? name : "");
  v->value = copy_tensor(initial);
  v->trainable = trainable;
  if (!v->name || !v->value) {
    cg_var_free(v);
    cg_set_error(CG_ENOMEM, "cg_var_new: out of memory");
    return NULL;
  }
  return v;
}

void cg_var_free(cg_var *v)
{
  if (!v) return;
  cg_release(v->value);
  free(v->name);
  free(v);
}

const char *cg_var_name(const cg_var *v) { return v ? v->name : NULL; }
int cg_var_trainable(const cg_var *v) { return v ? v->trainable : 0; }
cg_tensor *cg_var_value(const cg_var *v) { return v ? v->value : NULL; }

/* --- ReadVariable: a variable read inside a graph reads the value current at run time ---- */

static cg_var *node_var(const cg_node *n) { return (cg_var *)(intptr_t)cg_node_attr_int(n, "var", 0); }

static cg_status read_variable_infer(cg_node *n)
{
  const cg_tensor *v = node_var(n)->value;
  return cg_node_set_output(n, 0, v->dtype, v->ndim, v->shape);
}

static cg_status read_variable_run(cg_node *n)
{
  const cg_tensor *v = node_var(n)->value;
  memcpy(cg_node_output(n, 0)->data, v->data, (size_t)v->size * cg_dtype_size(v->dtype));
  return CG_OK;
}

static const cg_op_def read_variable = {"ReadVariable", 0, read_variable_infer, read_variable_run,
                                        CG_OP_STATEFUL | CG_OP_NOT_DIFFERENTIABLE, NULL};

static cg_tensor *read_in_graph(cg_var *v)
{
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "var", (int64_t)(intptr_t)v);
  cg_tensor *t = cg_apply(&read_variable, NULL, 0, &a);
  return t && cg__on_var_read(v, t) == CG_OK ? t : NULL; /* (t stays with the scope) */
}

cg_tensor *cg_var_read(cg_var *v)
{
  if (!v) {
    cg_set_error(CG_EINVAL, "cg_var_read: variable is NULL");
    return NULL;
  }
  if (cg__tls()->graph) return read_in_graph(v);
  if (cg__on_var_read(v, v->value) != CG_OK) return NULL;
  cg__scope_adopt(cg_retain(v->value));
  return v->value;
}

cg_status cg_var_assign(cg_var *v, cg_tensor *value)
{
  if (!v) return cg_set_error(CG_EINVAL, "cg_var_assign: variable is NULL");
  if (!value) return cg__null_input("cg_var_assign", 0);
  if (cg__is_symbolic(value))
    return cg_set_error(CG_EINVAL, "cg_var_assign: the value is a symbolic graph tensor (variable '%s' "
                                   "holds values: run the graph first)", v->name);
  char a[160], b[160];
  if (value->dtype != v->value->dtype ||
      !cg__shape_equal(value->ndim, value->shape, v->value->ndim, v->value->shape))
    return cg_set_error(value->dtype != v->value->dtype ? CG_EDTYPE : CG_ESHAPE,
                        "cg_var_assign: variable '%s' is %s %s, the value is %s %s", v->name,
                        cg_dtype_name(v->value->dtype), cg_shape_str(v->value, a, sizeof a),
                        cg_dtype_name(value->dtype), cg_shape_str(value, b, sizeof b));
  cg_tensor *c = copy_tensor(value);
  if (!c) return cg_last_status();
  cg_release(v->value);
  v->value = c;
  return CG_OK;
}

cg_status cg__var_take(cg_var *v, cg_tensor *value)
{
  if (!v || !value || value->refcount != 1 || cg__is_symbolic(value) || value->dtype != v->value->dtype ||
      !cg__shape_equal(value->ndim, value->shape, v->value->ndim, v->value->shape)) {
    cg_status st = v && value ? cg_var_assign(v, value) : cg_set_error(CG_EINVAL, "cg__var_take: NULL");
    cg_release(value); /* the reference was handed over either way */
    return st;
  }
  cg_release(v->value);
  v->value = value;
  return CG_OK;
}

static cg_status assign_with(cg_var *v, cg_tensor *delta, cg_tensor *(*op)(cg_tensor *, cg_tensor *),
                             const char *fn)
{
  if (!v) return cg_set_error(CG_EINVAL, "%s: variable is NULL", fn);
  if (!delta) return cg__null_input(fn, 0);
  cg_scope scope = cg_scope_begin();
  cg_pause_recording(); /* an update is not part of any computation being differentiated */
  cg_tensor *next = op(v->value, delta);
  cg_resume_recording();
  cg_status st = next ? cg_var_assign(v, next) : cg_last_status();
  cg_scope_end(scope);
  return st;
}

cg_status cg_var_assign_add(cg_var *v, cg_tensor *delta)
{
  return assign_with(v, delta, cg_add, "cg_var_assign_add");
}

cg_status cg_var_assign_sub(cg_var *v, cg_tensor *delta)
{
  return assign_with(v, delta, cg_sub, "cg_var_assign_sub");
}

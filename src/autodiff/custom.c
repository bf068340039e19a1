/* custom.c - custom gradients (tf.custom_gradient): run the user's forward with recording
 * paused, collect the trainable variables it reads, and record one op whose gradient is the
 * user's backward, checked for the right number, dtype and shape of gradients. */
#include "custom.h"
#include "guard.h"
#include "jvp.h"
#include "tape.h"
#include "../graph/graph.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct cg_ctx {
  void *user;
  cg_tensor **saved;
  int n_saved, cap_saved;
  cg_var **vars;         /* trainable variables read by the forward, in first-read order */
  cg_tensor **var_values; /* the value each was read as (what the record links to)     */
  int n_vars, cap_vars;
  cg_tensor **inputs;    /* retained                                                   */
  int n_inputs;
  cg_tensor *outputs[CG_MAX_OUTPUTS]; /* borrowed from the record                      */
  int n_outputs;
  cg_status failed;      /* a cg_ctx_save that failed: the forward fails with it, even if
                            the user's code did not look at the status                    */
  unsigned non_differentiable; /* outputs the forward marked                              */
};

struct cg_custom_record {
  int refcount;
  cg_custom_def def;
  char *name;
  cg_ctx ctx;
};

struct cg_collector {
  cg_ctx *ctx;
  cg_collector *parent;
};

/* --- ctx --------------------------------------------------------------------------------------- */

cg_status cg_ctx_save(cg_ctx *ctx, cg_tensor *t)
{
  if (!ctx) return cg_set_error(CG_EINVAL, "cg_ctx_save: ctx is NULL");
  if (!t) return cg__null_input("cg_ctx_save", 0);
  if (ctx->n_saved == ctx->cap_saved) {
    int cap = ctx->cap_saved ? 2 * ctx->cap_saved : 4;
    cg_tensor **saved = cg__realloc(ctx->saved, (size_t)cap * sizeof *saved);
    if (!saved) return ctx->failed = CG_ENOMEM;
    ctx->saved = saved;
    ctx->cap_saved = cap;
  }
  ctx->saved[ctx->n_saved++] = cg_retain(t);
  return CG_OK;
}

cg_tensor *cg_ctx_saved(const cg_ctx *ctx, int i)
{
  if (!ctx || i < 0 || i >= ctx->n_saved) {
    cg_set_error(CG_ERANGE, "cg_ctx_saved: index %d outside the %d saved tensors", i,
                 ctx ? ctx->n_saved : 0);
    return NULL;
  }
  return ctx->saved[i];
}

int cg_ctx_num_saved(const cg_ctx *ctx) { return ctx ? ctx->n_saved : 0; }

cg_status cg_ctx_mark_non_differentiable(cg_ctx *ctx, int output)
{
  cg_custom_record *r = ctx ? (cg_custom_record *)((char *)ctx - offsetof(cg_custom_record, ctx)) : NULL;
  if (!r) return cg_set_error(CG_EINVAL, "cg_ctx_mark_non_differentiable: ctx is NULL");
  if (output < 0 || output >= r->def.n_outputs)
    return cg_set_error(CG_ERANGE, "%s: cg_ctx_mark_non_differentiable: output %d of %d", r->name, output,
                        r->def.n_outputs);
  ctx->non_differentiable |= 1u << output;
  return CG_OK;
}
void *cg_ctx_user(const cg_ctx *ctx) { return ctx ? ctx->user : NULL; }
int cg_ctx_num_vars(const cg_ctx *ctx) { return ctx ? ctx->n_vars : 0; }
cg_var *cg_ctx_var(const cg_ctx *ctx, int i)
{
  return ctx && i >= 0 && i < ctx->n_vars ? ctx->vars[i] : NULL;
}
cg_tensor *cg_ctx_input(const cg_ctx *ctx, int i)
{
  return ctx && i >= 0 && i < ctx->n_inputs ? ctx->inputs[i] : NULL;
}
cg_tensor *cg_ctx_output(const cg_ctx *ctx, int i)
{
  return ctx && i >= 0 && i < ctx->n_outputs ? ctx->outputs[i] : NULL;
}

static cg_status collect_into(cg_ctx *ctx, cg_var *v, cg_tensor *value)
{
  for (int i = 0; i < ctx->n_vars; i++)
    if (ctx->vars[i] == v) return CG_OK;
  if (ctx->n_vars == ctx->cap_vars) {
    int cap = ctx->cap_vars ? 2 * ctx->cap_vars : 4;
    cg_var **vars = cg__realloc(ctx->vars, (size_t)cap * sizeof *vars);
    if (!vars) return CG_ENOMEM;
    ctx->vars = vars;
    cg_tensor **values = cg__realloc(ctx->var_values, (size_t)cap * sizeof *values);
    if (!values) return CG_ENOMEM;
    ctx->var_values = values;
    ctx->cap_vars = cap;
  }
  ctx->vars[ctx->n_vars] = v;
  ctx->var_values[ctx->n_vars++] = cg_retain(value);
  return CG_OK;
}

cg_status cg__collect_var_read(cg_var *v, cg_tensor *value)
{
  for (cg_collector *c = cg__tls()->collector; c; c = c->parent)
    if (collect_into(c->ctx, v, value) != CG_OK) return CG_ENOMEM;
  return CG_OK;
}

/* --- records --------------------------------------------------------------------------------- */

const cg_ctx *cg__custom_ctx(const cg_custom_record *r) { return &r->ctx; }
const cg_custom_def *cg__custom_def(const cg_custom_record *r) { return &r->def; }

void cg__custom_record_retain(cg_custom_record *r)
{
  if (r) r->refcount++;
}

void cg__custom_record_free(cg_custom_record *r)
{
  if (!r || --r->refcount > 0) return;
  cg_ctx *c = &r->ctx;
  for (int i = 0; i < c->n_saved; i++) cg_release(c->saved[i]);
  for (int i = 0; i < c->n_vars; i++) cg_release(c->var_values[i]);
  for (int i = 0; i < c->n_inputs; i++) cg_release(c->inputs[i]);
  free(c->saved);
  free(c->vars);
  free(c->var_values);
  free(r); /* with its inputs array and name (new_record) */
}

static cg_status check_def(const cg_custom_def *def, cg_tensor *const *x, cg_tensor **y)
{
  if (!def || !def->name || !def->forward ||
      (!def->backward && !(def->jvp && (def->flags & CG_CUSTOM_LINEAR))))
    return cg_set_error(CG_EINVAL, "cg_custom_gradient: def needs a name, a forward and a backward "
                                   "(or, when CG_CUSTOM_LINEAR, a jvp)");
  if (def->n_inputs < 0 || def->n_outputs < 1 || def->n_outputs > CG_MAX_OUTPUTS)
    return cg_set_error(CG_EINVAL, "%s: custom gradient needs n_inputs >= 0 and 1..%d outputs, got %d and %d",
                        def->name, CG_MAX_OUTPUTS, def->n_inputs, def->n_outputs);
  if (!y || (def->n_inputs > 0 && !x))
    return cg_set_error(CG_EINVAL, "%s: input or output array is NULL", def->name);
  for (int i = 0; i < def->n_inputs; i++)
    if (!x[i]) return cg__null_input(def->name, i);
  return CG_OK;
}

/* One allocation per call: the record, then its inputs array, then a copy of the name. */
static cg_custom_record *new_record(const cg_custom_def *def, cg_tensor *const *x)
{
  size_t inputs = (size_t)def->n_inputs * sizeof(cg_tensor *), name = strlen(def->name) + 1;
  cg_custom_record *r = cg__malloc(sizeof *r + inputs + name);
  if (!r) {
    cg_set_error(CG_ENOMEM, "%s: out of memory", def->name);
    return NULL;
  }
  memset(r, 0, sizeof *r);
  r->refcount = 1;
  r->def = *def;
  r->ctx.inputs = (cg_tensor **)(r + 1);
  r->name = (char *)(r + 1) + inputs;
  memcpy(r->name, def->name, name);
  r->def.name = r->name;
  r->ctx.user = def->user;
  r->ctx.n_inputs = def->n_inputs;
  for (int i = 0; i < def->n_inputs; i++) r->ctx.inputs[i] = cg_retain(x[i]);
  return r;
}

/* cg__guard_end for the user's forward or backward, naming it "<name>: the custom <part>".
 * The name is formatted only when the guard reports something (two snprintf per custom
 * gradient were a measurable part of its cost): the guard is given an empty name, and its
 * message " left a scope open" is completed here. */
static cg_status guard_end_named(const cg_callback_guard *guard, const cg_custom_record *r,
                                 const char *part, cg_status st)
{
  cg_status out = cg__guard_end(guard, "", st);
  if (out == CG_OK || st != CG_OK) return out; /* nothing left behind, or the callback's own error */
  char problem[256];
  snprintf(problem, sizeof problem, "%s", cg_last_error());
  return cg_set_error(out, "%s: the custom %s%s", r->name, part, problem);
}

/* Runs the user's forward in its own scope with recording paused; y gets owned references. */
static cg_status run_forward(cg_custom_record *r, cg_tensor *const *x, cg_tensor **y)
{
  cg_thread_state *s = cg__tls();
  cg_collector collector = {&r->ctx, s->collector};
  int n_out = r->def.n_outputs;
  for (int i = 0; i < n_out; i++) y[i] = NULL;
  cg_scope scope = cg_scope_begin();
  s->collector = &collector;
  cg_pause_recording();
  cg_callback_guard guard = cg__guard_begin();
  cg_status st = guard_end_named(&guard, r, "forward", r->def.forward(&r->ctx, x, y));
  if (st == CG_OK && r->ctx.failed != CG_OK) st = r->ctx.failed;
  cg_resume_recording();
  s->collector = collector.parent;
  for (int i = 0; i < n_out && st == CG_OK; i++)
    if (!y[i])
      st = cg_set_error(CG_EUSER, "%s: custom forward returned no tensor for output %d of %d",
                        r->name, i, n_out);
  if (st != CG_OK && cg_last_status() == CG_OK)
    cg_set_error(CG_EUSER, "%s: custom forward failed (status %s)", r->name, cg_status_name(st));
  /* A fresh tensor per output (a view, no copy): the record's outputs must differ from its
     inputs even when the forward returns an input as is. In a graph the custom node makes
     them (see add_to_graph); here we only keep the forward's outputs alive. */
  for (int i = 0; i < n_out; i++)
    y[i] = st != CG_OK ? NULL
           : y[i]->graph ? cg_retain(y[i]) : cg__tensor_view(y[i], y[i]->ndim, y[i]->shape);
  cg_scope_end(scope);
  for (int i = 0; i < n_out && st == CG_OK; i++)
    if (!y[i]) st = CG_ENOMEM;
  if (st != CG_OK)
    for (int i = 0; i < n_out; i++) {
      cg_release(y[i]);
      y[i] = NULL;
    }
  return st == CG_OK ? CG_OK : cg_last_status();
}

/* In a graph, a custom gradient is a node whose inputs are (x..., variables read...,
 * forward outputs...) and whose outputs view the forward outputs: running it costs nothing,
 * and differentiating it calls the user's backward (the forward's own nodes never are). */
static cg_status custom_graph_infer(cg_node *n)
{
  int64_t n_out = cg_node_attr_int(n, "n_out", 1);
  if (n_out < 1 || n_out > n->n_in) return cg_set_error(CG_EINVAL, "%s: bad output count", n->type);
  for (int o = 0; o < n_out; o++) {
    int j = n->n_in - (int)n_out + o;
    cg_status st = cg_node_set_output_alias(n, o, j, n->in[j]->ndim, n->in[j]->shape);
    if (st != CG_OK) return st;
  }
  return CG_OK;
}
static cg_status custom_graph_run(cg_node *n) { return CG_OK; }
static const cg_op_def custom_op = {.name = "CustomGradient", .n_inputs = -1,
                                    .infer = custom_graph_infer, .run = custom_graph_run};

static cg_status add_to_graph(cg_graph *g, cg_custom_record *r, cg_tensor *const *x, cg_tensor **y)
{
  int n_x = r->def.n_inputs, n_vars = r->ctx.n_vars, n_out = r->def.n_outputs;
  int n_in = n_x + n_vars + n_out;
  cg_tensor **in = cg__malloc((size_t)n_in * sizeof *in);
  if (!in) return CG_ENOMEM;
  cg_output_meta meta[CG_MAX_OUTPUTS];
  for (int i = 0; i < n_x; i++) in[i] = x[i];
  for (int j = 0; j < n_vars; j++) in[n_x + j] = r->ctx.var_values[j];
  for (int o = 0; o < n_out; o++) {
    in[n_x + n_vars + o] = y[o];
    meta[o] = (cg_output_meta){.dtype = y[o]->dtype, .ndim = y[o]->ndim, .alias_of = n_x + n_vars + o, .set = true};
    for (int d = 0; d < y[o]->ndim; d++) meta[o].shape[d] = y[o]->shape[d];
  }
  cg_attrs attrs = {0};
  cg_attrs_set_int(&attrs, "n_out", n_out);
  cg_node node = {.def = &custom_op, .type = r->name, .n_in = n_in, .in = in, .n_out = n_out,
                  .attrs = &attrs, .custom = r, .non_differentiable = r->ctx.non_differentiable};
  cg_tensor *out[CG_MAX_OUTPUTS];
  cg_status st = cg__graph_add_node(g, &node, meta, out);
  free(in);
  for (int o = 0; o < n_out; o++) {
    cg_release(y[o]); /* the node holds the forward's outputs now */
    y[o] = st == CG_OK ? out[o] : NULL; /* already handed to the scope by the graph */
  }
  return st;
}

static cg_status record(cg_custom_record *r, cg_tensor *const *x, cg_tensor **y)
{
  cg_thread_state *s = cg__tls();
  int n_in = r->def.n_inputs + r->ctx.n_vars;
  cg_tensor *small[8], **in = n_in <= 8 ? small : cg__malloc((size_t)n_in * sizeof *in);
  if (!in) return CG_ENOMEM;
  for (int i = 0; i < r->def.n_inputs; i++) in[i] = x[i];
  for (int j = 0; j < r->ctx.n_vars; j++) {
    in[r->def.n_inputs + j] = r->ctx.var_values[j];
    /* the forward read it with recording paused: watch it now, as a read outside would */
    for (int k = 0; k < s->n_tapes; k++)
      if (s->tapes[k]->recording && !(s->tapes[k]->flags & CG_TAPE_NO_AUTO_WATCH) &&
          cg_var_trainable(r->ctx.vars[j]))
        cg_tape_watch(s->tapes[k], r->ctx.var_values[j]);
  }
  cg_node node = {.def = &custom_op, .type = r->name, .n_in = n_in, .in = in,
                  .n_out = r->def.n_outputs, .custom = r,
                  .non_differentiable = r->ctx.non_differentiable};
  for (int i = 0; i < node.n_out; i++) node.out[i] = y[i];
  cg_status st = cg__record(&node); /* each heap copy of the node retains the record */
  if (in != small) free(in);
  return st;
}

cg_status cg_custom_gradient(const cg_custom_def *def, cg_tensor *const *x, cg_tensor **y)
{
  cg_status st = check_def(def, x, y);
  if (st != CG_OK) return st;
  cg_custom_record *r = new_record(def, x);
  if (!r) return cg_last_status();
  st = run_forward(r, x, y);
  cg_graph *g = cg__tls()->graph;
  if (st == CG_OK && g) st = add_to_graph(g, r, x, y);
  if (st == CG_OK) {
    r->ctx.n_outputs = def->n_outputs;
    for (int i = 0; i < def->n_outputs; i++) r->ctx.outputs[i] = y[i];
    if (!g && cg__any_tape_recording()) st = record(r, x, y);
  }
  cg__custom_record_free(r);
  for (int i = 0; i < def->n_outputs; i++) {
    if (st != CG_OK) {
      cg_release(y[i]);
      y[i] = NULL;
    } else if (!g) {
      cg__scope_adopt(y[i]);
    }
  }
  return st;
}

/* --- backward -------------------------------------------------------------------------------- */

cg_status cg__custom_backward(const cg_node *n, cg_tensor *const *dy, cg_tensor **dx)
{
  cg_custom_record *r = n->custom;
  int n_in = r->def.n_inputs, n_vars = r->ctx.n_vars;
  for (int i = 0; i < n_in + n_vars; i++) dx[i] = NULL;
  cg_callback_guard guard = cg__guard_begin();
  cg_status st = r->def.backward ? r->def.backward(&r->ctx, dy, dx, dx + n_in)
                                 : cg__custom_linear_backward(n, dy, dx); /* its jvp transposed */
  if ((st = guard_end_named(&guard, r, "backward", st)) != CG_OK) /* its outputs may be gone with a scope */
    for (int i = 0; i < n_in + n_vars; i++) dx[i] = NULL;
  if (st != CG_OK) {
    if (cg_last_status() == CG_OK)
      cg_set_error(CG_EUSER, "%s: custom backward failed (status %s)", r->name, cg_status_name(st));
    return cg_last_status();
  }
  for (int j = 0; j < n_vars; j++)
    if (!dx[n_in + j])
      return cg_set_error(CG_EUSER, "%s: custom backward gave no gradient for variable '%s' "
                                    "(variable %d of %d read in the forward): fill dvars[%d]",
                          r->name, cg_var_name(r->ctx.vars[j]), j, n_vars, j);
  return CG_OK;
}

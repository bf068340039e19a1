/* dispatch.c - the one path every op takes (DESIGN.md section 1): check inputs, run the
 * shape rule, allocate outputs, run the kernel, record on tapes; plus cg_call by name and
 * the cg_node accessors that shape rules, kernels and gradients use. */
#include "node.h"
#include "custom.h"
#include "tape.h"
#include "../graph/graph.h"
#include <stdlib.h>
#include <string.h>

static void release_all(cg_tensor **t, int n)
{
  for (int i = 0; i < n; i++) {
    cg_release(t[i]);
    t[i] = NULL;
  }
}

/* Outputs are numbered from 0 without gaps; returns how many, or -1 with an error. */
static int count_outputs(const cg_node *n)
{
  unsigned mask = n->declared;
  if (mask == 0) {
    cg_set_error(CG_EINVAL, "%s: shape rule declared no output", n->type);
    return -1;
  }
  int count = __builtin_ctz(~mask); /* outputs 0 .. count-1 */
  if (mask & (mask + 1)) {
    cg_set_error(CG_EINVAL, "%s: shape rule declared output %d but not output %d", n->type,
                 31 - __builtin_clz(mask), count);
    return -1;
  }
  return count;
}

static inline cg_status allocate_outputs(cg_node *n)
{
  for (int i = 0; i < n->n_out; i++) {
    const cg_output_meta *m = &n->meta[i];
    n->out[i] = m->alias_of >= 0 ? cg__tensor_view(n->in[m->alias_of], m->ndim, m->shape)
                                 : cg__tensor_new_sized(m->dtype, m->ndim, m->shape, m->size);
    if (!n->out[i]) {
      release_all(n->out, i);
      return cg_last_status();
    }
  }
  return CG_OK;
}

/* (inline into its three callers: every op comes through here) */
static inline __attribute__((always_inline)) cg_status
execute(const cg_op_def *def, cg_tensor *const *in, int n_in, const cg_attrs *attrs, cg_tensor **out,
        int *n_out, bool adopt)
{
  if (n_out) *n_out = 0;
  if (def->n_inputs >= 0 && n_in != def->n_inputs)
    return cg_set_error(CG_EINVAL, "%s: takes %d inputs, got %d", def->name, def->n_inputs, n_in);
  if (n_in < 0 || (n_in > 0 && !in))
    return cg_set_error(CG_EINVAL, "%s: input list is NULL", def->name);
  cg_thread_state *ts = cg__tls();
  cg_graph *graph = ts->graph;
  for (int i = 0; i < n_in; i++) {
    if (!in[i]) return cg__null_input(def->name, i);
    if (in[i]->graph && in[i]->graph != graph)
      return cg_set_error(CG_ESTATE, graph ? "%s: input %d belongs to another graph"
                                           : "%s: input %d is a symbolic tensor of a graph: compute it "
                                             "with cg_graph_run, or enter its graph",
                          def->name, i);
  }

  cg_output_meta meta[CG_MAX_OUTPUTS]; /* filled by the shape rule, as node.declared says */
  cg_node node;                       /* out[] is filled up to n_out, nothing reads beyond */
  node.refcount = 0;
  node.def = def;
  node.type = def->name;
  node.n_in = n_in;
  node.n_out = 0;
  node.in = (cg_tensor **)in;
  node.meta = meta;
  node.declared = 0;
  node.non_differentiable = 0;
  node.attrs = attrs && attrs->n ? attrs : NULL;
  node.grad = NULL;
  node.grad_name = NULL;
  node.custom = NULL;
  node.made_by = NULL;
  node.graph_index = 0;
  cg_status st = graph ? cg__infer_symbolic(&node) : def->infer(&node);
  if (st != CG_OK) {
    if (cg_last_status() == CG_OK) cg_set_error(st, "%s: shape rule failed", def->name);
    return cg_last_status();
  }
  if ((node.n_out = count_outputs(&node)) < 0) return cg_last_status();
  if (graph) { /* graph mode: a node, symbolic outputs, nothing runs */
    for (int i = node.n_out; i < CG_MAX_OUTPUTS; i++) node.out[i] = NULL;
    if ((st = cg__graph_add_node(graph, &node, meta, out)) == CG_OK && n_out) *n_out = node.n_out;
    return st;
  }
  if ((st = allocate_outputs(&node)) != CG_OK) return st;
  node.meta = NULL;
  if ((st = def->run(&node)) != CG_OK) {
    if (cg_last_status() == CG_OK) cg_set_error(st, "%s: kernel failed", def->name);
    release_all(node.out, node.n_out);
    return cg_last_status();
  }
  if (cg_check_numerics_enabled()) {
    char where[96];
    cg__eager_position(where, sizeof where);
    if ((st = cg__check_numerics(&node, where)) != CG_OK) {
      release_all(node.out, node.n_out);
      return st;
    }
  }
  if (ts->n_tapes > 0) { /* recording, or noting where a followed path is cut */
    bool not_differentiable = def->flags & CG_OP_NOT_DIFFERENTIABLE;
    if (!not_differentiable && ts->paused == 0 && (st = cg__record_new(&node)) != CG_OK) {
      release_all(node.out, node.n_out);
      return st;
    }
    if ((not_differentiable || ts->paused) &&
        (st = cg__record_cut(&node, ts->paused ? CG_CUT_PAUSED : CG_CUT_NOT_DIFFERENTIABLE)) != CG_OK) {
      release_all(node.out, node.n_out);
      return st;
    }
  }
  for (int i = 0; i < node.n_out; i++) {
    if (adopt) cg__scope_adopt(node.out[i]);
    if (out) out[i] = node.out[i];
  }
  if (n_out) *n_out = node.n_out;
  return CG_OK;
}

cg_status cg_execute(const cg_op_def *def, cg_tensor *const *in, int n_in, const cg_attrs *attrs,
                     cg_tensor **out, int *n_out)
{
  return execute(def, in, n_in, attrs, out, n_out, true);
}

cg_status cg__execute_owned(const cg_op_def *def, cg_tensor *const *in, int n_in,
                            const cg_attrs *attrs, cg_tensor **out, int *n_out)
{
  return execute(def, in, n_in, attrs, out, n_out, false);
}

cg_tensor *cg_apply(const cg_op_def *def, cg_tensor *const *in, int n_in, const cg_attrs *attrs)
{
  cg_tensor *out[CG_MAX_OUTPUTS];
  int n = 0;
  if (execute(def, in, n_in, attrs, out, &n, true) != CG_OK) return NULL;
  for (int i = 1; i < n; i++) /* a multi-output op asked for its first output: the rest go */
    if (!cg__tls()->n_scopes) cg_release(out[i]);
  return out[0];
}

cg_tensor *cg_apply1(const cg_op_def *def, cg_tensor *x, const cg_attrs *attrs)
{
  return cg_apply(def, &x, 1, attrs);
}

cg_tensor *cg_apply2(const cg_op_def *def, cg_tensor *a, cg_tensor *b, const cg_attrs *attrs)
{
  cg_tensor *in[2] = {a, b};
  return cg_apply(def, in, 2, attrs);
}

cg_status cg_call_n(const char *name, cg_tensor *const *in, int n_in, const cg_attrs *attrs,
                    cg_tensor **out, int max_out, int *n_out)
{
  const cg_op_def *def = cg_find_op(name);
  if (!def) return cg_last_status();
  cg_tensor *all[CG_MAX_OUTPUTS];
  int n = 0;
  cg_status st = cg_execute(def, in, n_in, attrs, all, &n);
  if (st != CG_OK) return st;
  for (int i = 0; i < n; i++) {
    if (i < max_out && out) out[i] = all[i];
    else if (!cg__tls()->n_scopes) cg_release(all[i]);
  }
  if (n_out) *n_out = n < max_out ? n : max_out;
  return CG_OK;
}

cg_tensor *cg_call(const char *name, cg_tensor *const *in, int n_in, const cg_attrs *attrs)
{
  cg_tensor *out = NULL;
  return cg_call_n(name, in, n_in, attrs, &out, 1, NULL) == CG_OK ? out : NULL;
}

/* --- what ops see ------------------------------------------------------------------------- */

const char *cg_node_op_type(const cg_node *n) { return n ? n->type : NULL; }
void *(cg_node_op_user)(const cg_node *n) { return cg__node_op_user(n); } /* (node.h: inline) */
int cg_node_num_inputs(const cg_node *n) { return n ? n->n_in : 0; }
int cg_node_num_outputs(const cg_node *n) { return n ? n->n_out : 0; }
const cg_attrs *cg_node_attrs(const cg_node *n) { return n ? n->attrs : NULL; }

cg_tensor *cg_node_input(const cg_node *n, int i)
{
  return n && i >= 0 && i < n->n_in ? n->in[i] : NULL;
}

cg_tensor *(cg_node_output)(const cg_node *n, int i) { return cg__node_output(n, i); }

static cg_status check_output_slot(cg_node *n, int i)
{
  if (!n || !n->meta)
    return cg_set_error(CG_ESTATE, "cg_node_set_output: only a shape rule may declare outputs");
  if (i < 0 || i >= CG_MAX_OUTPUTS)
    return cg_set_error(CG_ERANGE, "%s: output %d is outside 0..%d", n->type, i, CG_MAX_OUTPUTS - 1);
  return CG_OK;
}

cg_status cg_node_set_output(cg_node *n, int i, cg_dtype d, int ndim, const int64_t *shape)
{
  cg_status st = check_output_slot(n, i);
  if (st != CG_OK) return st;
  if ((unsigned)d >= CG_NUM_DTYPES)
    return cg_set_error(CG_EDTYPE, "%s: output %d has unknown dtype %d", n->type, i, (int)d);
  int64_t size;
  if ((st = cg__shape_size(n->type, ndim, shape, &size)) != CG_OK) return st;
  cg_output_meta *m = &n->meta[i];
  m->dtype = d;
  m->ndim = ndim;
  for (int k = 0; k < ndim; k++) m->shape[k] = shape[k];
  m->size = size;
  m->alias_of = -1;
  m->set = true;
  n->declared |= 1u << i;
  return CG_OK;
}

cg_status cg_node_set_output_alias(cg_node *n, int i, int j, int ndim, const int64_t *shape)
{
  cg_status st = check_output_slot(n, i);
  if (st != CG_OK) return st;
  if (j < 0 || j >= n->n_in)
    return cg_set_error(CG_ERANGE, "%s: output %d aliases input %d of %d", n->type, i, j, n->n_in);
  const cg_tensor *src = n->in[j];
  if ((st = cg_node_set_output(n, i, src->dtype, ndim, shape)) != CG_OK) return st;
  int64_t size;
  cg__shape_size(n->type, ndim, shape, &size);
  if (size != src->size) {
    char a[160], b[160];
    n->meta[i].set = false;
    n->declared &= ~(1u << i);
    return cg_set_error(CG_ESHAPE, "%s: a view of shape %s cannot show input %d of shape %s",
                        n->type, cg__fmt_shape(ndim, shape, a, sizeof a), j,
                        cg__fmt_shape(src->ndim, src->shape, b, sizeof b));
  }
  n->meta[i].alias_of = j;
  return CG_OK;
}

cg_status cg_infer_same_as_input(cg_node *n, int i)
{
  const cg_tensor *t = cg_node_input(n, i);
  if (!t) return cg_set_error(CG_ERANGE, "%s: no input %d", n ? n->type : "?", i);
  return cg_node_set_output(n, 0, t->dtype, t->ndim, t->shape);
}

/* --- heap nodes (what tapes and graphs keep) ------------------------------------------------- */

cg_node *cg__node_copy(const cg_node *n)
{
  cg_node *c = cg__alloc(cg__node_bytes(n));
  if (!c) return NULL;
  cg__node_copy_at(c, n);
  for (int i = 0; i < n->n_in; i++) cg_retain(n->in[i]);
  for (int i = 0; i < n->n_out; i++) cg_retain(n->out[i]);
  cg__custom_record_retain(c->custom);
  return c;
}

void cg__node_release(cg_node *n)
{
  if (!n || --n->refcount > 0) return;
  for (int i = 0; i < n->n_in; i++) cg_release(n->in[i]);
  for (int i = 0; i < n->n_out; i++) cg_release(n->out[i]);
  cg__custom_record_free(n->custom);
  cg__free(n, cg__node_bytes(n));
}

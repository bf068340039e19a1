/* function.c - traced functions (tf.function): a C function traced once per input
 * signature into a graph, replayed by running the graph, and recorded on tapes as one op
 * whose gradient is another trace on the same graph (the symbolic gradient, built once at
 * the first recorded call, and itself differentiable the same way). A recorded call also
 * keeps the forward tensors the gradient reads, so that the gradient need not run the forward
 * again. */
#include "graph.h"
#include "../autodiff/guard.h"
#include <stdlib.h>
#include <string.h>

typedef struct trace trace;
struct trace {
  char *name;
  cg_graph *graph;
  bool owns_graph;
  int nx, ny;
  cg_tensor **in;  /* placeholders, retained                            */
  cg_tensor **out; /* symbolic outputs, retained (NULL: no such output)  */
  trace *backward; /* inputs (x..., dy...) -> dx...; built on first use  */
  /* A backward trace: the forward's tensors it reads (retained symbolic tensors). A recorded
     call of the forward fetches them too and records them after x as its node's inputs; an
     unrecorded gradient is fed them instead of running the forward again (as TF saves a
     function's intermediates; also what gives the gradient a variable's value as the forward
     read it). */
  cg_tensor **saved;
  int n_saved;
  bool *reads_y;        /* a backward trace: which forward outputs it reads (fed the recorded y) */
  bool backward_failed; /* at a recorded call: later calls do not try again */
  cg_grad_entry grad;
};

struct cg_function {
  char *name;
  cg_trace_fn fn;
  void *user;
  int nx, ny;
  trace **traces;
  int n_traces;
};

static void trace_free(trace *t)
{
  if (!t) return;
  trace_free(t->backward);
  for (int i = 0; i < t->nx; i++) cg_release(t->in[i]);
  for (int i = 0; i < t->ny; i++) cg_release(t->out[i]);
  for (int i = 0; i < t->n_saved; i++) cg_release(t->saved[i]);
  free(t->saved);
  free(t->reads_y);
  if (t->owns_graph) cg_graph_free(t->graph);
  free(t->in);
  free(t->out);
  free(t->name);
  free(t);
}

static cg_status function_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user);

static trace *trace_alloc(const char *name, cg_graph *g, bool owns, int nx, int ny)
{
  trace *t = cg__calloc(1, sizeof *t);
  if (!t) return NULL;
  t->name = strdup(name);
  t->graph = g;
  t->owns_graph = owns;
  t->nx = nx;
  t->ny = ny;
  t->in = cg__calloc((size_t)nx + 1, sizeof *t->in);
  t->out = cg__calloc((size_t)ny + 1, sizeof *t->out);
  t->grad = (cg_grad_entry){.name = t->name, .fn = function_grad, .user = t};
  if (!t->name || !t->in || !t->out) {
    if (!owns) t->graph = NULL;
    trace_free(t);
    cg_set_error(CG_ENOMEM, "cg_function: out of memory");
    return NULL;
  }
  return t;
}

/* Traces fn on placeholders shaped like x. */
static trace *trace_new(cg_function *f, cg_tensor *const *x)
{
  cg_graph *g = cg_graph_new();
  trace *t = g ? trace_alloc(f->name, g, true, f->nx, f->ny) : NULL;
  if (!t) {
    cg_graph_free(g);
    return NULL;
  }
  cg_scope scope = cg_scope_begin();
  cg_status st = cg_graph_enter(g);
  for (int i = 0; i < f->nx && st == CG_OK; i++) {
    char name[32];
    snprintf(name, sizeof name, "x%d", i);
    t->in[i] = cg_retain(cg_placeholder(x[i]->dtype, x[i]->ndim, x[i]->shape, name));
    if (!t->in[i]) st = cg_last_status();
  }
  if (st == CG_OK) {
    cg_callback_guard guard = cg__guard_begin();
    st = f->fn(t->in, f->nx, t->out, f->ny, f->user);
    char who[160];
    snprintf(who, sizeof who, "%s: the traced function", f->name);
    st = cg__guard_end(&guard, who, st);
    if (st != CG_OK && cg_last_status() == CG_OK)
      cg_set_error(st, "%s: the traced function failed (status %s)", f->name, cg_status_name(st));
    st = st == CG_OK ? CG_OK : cg_last_status();
  }
  int retained = 0;
  for (int i = 0; i < f->ny && st == CG_OK; i++) {
    if (!t->out[i]) st = cg_set_error(CG_EUSER, "%s: the traced function gave no output %d", f->name, i);
    else cg_retain(t->out[retained++]);
  }
  if (st != CG_OK)
    for (int i = 0; i < f->ny; i++) { /* the scope holds the creation references */
      if (i < retained) cg_release(t->out[i]);
      t->out[i] = NULL;
    }
  cg_graph_exit(g);
  cg_scope_end(scope);
  if (st != CG_OK) {
    trace_free(t);
    return NULL;
  }
  return t;
}

static bool signature_matches(const trace *t, cg_tensor *const *x)
{
  for (int i = 0; i < t->nx; i++)
    if (x[i]->dtype != t->in[i]->dtype ||
        !cg__shape_equal(x[i]->ndim, x[i]->shape, t->in[i]->ndim, t->in[i]->shape))
      return false;
  return true;
}

static const cg_op_def function_op = {.name = "Function", .n_inputs = -1};

static trace *backward_of(trace *t);

/* Runs t on x (and the extra feeds) into y (new tensors, NULL where t has no output); records
   one op on tapes, with the tensors its gradient keeps (t->backward->saved) after x as the
   op's inputs. */
static cg_status trace_call(trace *t, cg_tensor *const *x, const cg_feed *extra, int n_extra, cg_tensor **y)
{
  bool recording = cg__any_tape_recording();
  bool keep = recording && cg__tape_would_record_inputs(x, t->nx);
  /* a recorded call builds the gradient now, to know what to keep; if it cannot, the gradient
     will say why when it is asked for (the caller's error state is left as it was, and only
     an error other than running out of memory stops later calls from trying again) */
  if (keep && !t->backward && !t->backward_failed) {
    cg_status before = cg_last_status();
    char message[sizeof cg__tls()->message];
    snprintf(message, sizeof message, "%s", cg_last_error());
    if (!backward_of(t)) {
      t->backward_failed = cg_last_status() != CG_ENOMEM;
      if (before != CG_OK) cg_set_error(before, "%s", message);
      else cg_clear_error();
    }
  }
  int n_saved = keep && t->backward ? t->backward->n_saved : 0, n_feeds = t->nx + n_extra;
  size_t n_in = (size_t)t->nx + (size_t)n_saved, n_out = (size_t)t->ny + (size_t)n_saved;
  cg_feed *feeds = cg__malloc((size_t)(n_feeds ? n_feeds : 1) * sizeof *feeds);
  cg_tensor **fetch = cg__malloc(n_out * sizeof *fetch), **got = cg__malloc(n_out * sizeof *got);
  cg_tensor **in = cg__malloc((n_in ? n_in : 1) * sizeof *in);
  cg_status st = feeds && fetch && got && in ? CG_OK : CG_ENOMEM;
  int n_fetch = 0;
  for (int i = 0; i < t->nx && st == CG_OK; i++) feeds[i] = (cg_feed){t->in[i], in[i] = x[i]};
  for (int i = 0; i < n_extra && st == CG_OK; i++) feeds[t->nx + i] = extra[i];
  for (int i = 0; i < t->ny && st == CG_OK; i++)
    if (t->out[i]) fetch[n_fetch++] = t->out[i];
  int n_y = n_fetch;
  for (int k = 0; k < n_saved && st == CG_OK; k++) fetch[n_fetch++] = t->backward->saved[k];
  if (st == CG_OK && n_fetch) st = cg_graph_run(t->graph, feeds, n_feeds, fetch, n_fetch, got);
  for (int i = 0, k = 0; i < t->ny; i++) y[i] = st == CG_OK && t->out[i] ? got[k++] : NULL;
  /* the saved values are taken back from the scope (last adopted first: each is on top) and
     released once the tapes hold their own references */
  bool ran = st == CG_OK;
  for (int k = n_saved; k-- > 0 && ran;) {
    in[t->nx + k] = got[n_y + k];
    if (!cg__scope_take(got[n_y + k]) && cg__tls()->n_scopes) got[n_y + k] = NULL; /* the scope's */
  }
  if (st == CG_OK && recording) {
    cg_node node = {.def = &function_op, .type = t->name, .n_in = (int)n_in, .in = in,
                    .grad = &t->grad, .grad_name = t->name};
    for (int i = 0; i < t->ny && node.n_out < CG_MAX_OUTPUTS; i++)
      if (y[i]) node.out[node.n_out++] = y[i];
    if (node.n_out == t->ny) st = cg__record(&node);
    else if (node.n_out) st = cg_set_error(CG_EINVAL, "%s: a function with missing outputs cannot be recorded", t->name);
  }
  for (int k = 0; k < n_saved && ran; k++) cg_release(got[n_y + k]);
  free(feeds);
  free(fetch);
  free(got);
  free(in);
  return st;
}

/* Which forward tensors the gradient is fed rather than computing them again: those of at
 * least SAVE_MIN_BYTES (a smaller one costs more to keep, fetch and feed, about 50 ns, than
 * its kernel costs to run again) that are not views (free to make again), and every output
 * of a stateful node (a variable read) that the gradient reads or recomputes from, so the
 * gradient sees the very values the forward saw. The forward's outputs are fed from the
 * recorded call's own. */
#define SAVE_MIN_BYTES ((size_t)1024)

typedef struct {
  trace *b;
  const trace *fwd;
  const cg_graph *g;
  size_t first;      /* graph index of the first gradient node  */
  bool *seen;        /* per graph node                           */
  size_t *stack, top;
  cg_idmap saved_ids;
  int cap;
} saver;

static cg_status save(saver *v, cg_tensor *t)
{
  if (cg__idmap_get(&v->saved_ids, t->id)) return CG_OK;
  if (v->b->n_saved == v->cap) {
    int cap = v->cap ? 2 * v->cap : 16;
    cg_tensor **saved = cg__realloc(v->b->saved, (size_t)cap * sizeof *saved);
    if (!saved) return CG_ENOMEM;
    v->b->saved = saved;
    v->cap = cap;
  }
  if (cg__idmap_put(&v->saved_ids, t->id, t) != CG_OK) return CG_ENOMEM;
  v->b->saved[v->b->n_saved++] = cg_retain(t);
  return CG_OK;
}

/* Whether output o of n views one of n's inputs (Reshape, ExpandDims, Identity...): running
   it again costs nothing, and keeping it would copy it (a fetched view is copied out). */
static bool is_view(const cg_node *n, int o)
{
  if (!n->def->infer || o >= CG_MAX_OUTPUTS) return false;
  cg_output_meta meta[CG_MAX_OUTPUTS];
  for (int i = 0; i < CG_MAX_OUTPUTS; i++) meta[i].set = false;
  cg_node probe = {.def = n->def, .type = n->type, .n_in = n->n_in, .in = n->in, .meta = meta,
                   .attrs = n->attrs, .n_out = n->n_out};
  cg_status before = cg_last_status();
  bool view = n->def->infer(&probe) == CG_OK && meta[o].set && meta[o].alias_of >= 0;
  if (before == CG_OK && cg_last_status() != CG_OK) cg_clear_error(); /* (ran once already) */
  return view;
}

/* A tensor the gradient reads (t's producer is followed if it is a gradient node) or, when
   recomputing, one a recomputed forward node reads. */
static cg_status note(saver *v, cg_tensor *t)
{
  const cg_node *p = t && t->graph == v->g ? t->producer : NULL;
  if (!p) return CG_OK; /* a placeholder (fed anyway), or a constant */
  bool forward = p->graph_index < v->first;
  for (int i = 0; forward && i < v->fwd->ny; i++)
    if (t == v->fwd->out[i]) { /* the recorded call's output i: fed from there, not kept */
      v->b->reads_y[i] = true;
      return CG_OK;
    }
  if (forward && ((p->def->flags & CG_OP_STATEFUL) ||
                  ((size_t)t->size * cg_dtype_size(t->dtype) >= SAVE_MIN_BYTES && !is_view(p, t->out_index))))
    return save(v, t);
  if (!v->seen[p->graph_index]) { /* a gradient node, or a small forward one run again */
    v->seen[p->graph_index] = true;
    v->stack[v->top++] = p->graph_index;
  }
  return CG_OK;
}

/* b->saved and b->reads_y, from b's outputs back through the gradient nodes (cg_gradients
   added them from graph index `first` on) and the forward nodes run again. */
static cg_status find_saved(trace *b, const trace *fwd, size_t first)
{
  const cg_graph *g = fwd->graph;
  saver v = {.b = b, .fwd = fwd, .g = g, .first = first, .seen = cg__calloc(g->n_nodes + 1, sizeof *v.seen),
             .stack = cg__malloc((g->n_nodes + 1) * sizeof *v.stack)};
  b->reads_y = cg__calloc((size_t)fwd->ny + 1, sizeof *b->reads_y);
  cg_status st = v.seen && v.stack && b->reads_y ? CG_OK : CG_ENOMEM;
  for (int i = 0; i < b->ny && st == CG_OK; i++) st = note(&v, b->out[i]);
  while (v.top && st == CG_OK) {
    const cg_node *n = g->nodes[v.stack[--v.top]];
    for (int i = 0; i < n->n_in && st == CG_OK; i++) st = note(&v, n->in[i]);
  }
  free(v.seen);
  free(v.stack);
  cg__idmap_free(&v.saved_ids);
  return st;
}

/* The backward trace on t's own graph: (x..., dy...) -> d(sum <y, dy>)/dx. */
static trace *backward_of(trace *t)
{
  if (t->backward) return t->backward;
  char name[256];
  snprintf(name, sizeof name, "%s_grad", t->name);
  trace *b = trace_alloc(name, t->graph, false, t->nx + t->ny, t->nx);
  if (!b) return NULL;
  cg_scope scope = cg_scope_begin();
  cg_status st = cg_graph_enter(t->graph);
  cg_tensor **dy = b->in + t->nx;
  for (int i = 0; i < t->nx; i++) b->in[i] = cg_retain(t->in[i]);
  for (int i = 0; i < t->ny && st == CG_OK; i++) {
    char dname[32];
    snprintf(dname, sizeof dname, "dy%d", i);
    dy[i] = cg_retain(cg_placeholder(t->out[i]->dtype, t->out[i]->ndim, t->out[i]->shape, dname));
    if (!dy[i]) st = cg_last_status();
  }
  size_t first = t->graph->n_nodes;
  if (st == CG_OK) st = cg_gradients(t->out, t->ny, t->in, t->nx, dy, b->out, NULL);
  for (int i = 0; i < t->nx && st == CG_OK; i++) cg_retain(b->out[i]);
  if (st != CG_OK)
    for (int i = 0; i < t->nx; i++) b->out[i] = NULL;
  if (st == CG_OK && (st = find_saved(b, t, first)) != CG_OK) cg_set_error(st, "%s: out of memory", name);
  if (st == CG_OK || cg__tls()->graph == t->graph) cg_graph_exit(t->graph);
  cg_scope_end(scope);
  if (st != CG_OK) {
    trace_free(b);
    return NULL;
  }
  t->backward = b;
  return b;
}

/* The feeds of the values op's recorded call kept for b (its inputs after x) and of the
   outputs b reads (op's own outputs); with only_stateful, just the kept values that stateful
   nodes made (a variable's value as the forward read it). Returns how many. */
static int kept_feeds(const trace *t, const trace *b, const cg_node *op, bool only_stateful, cg_feed *feeds)
{
  int n = 0;
  bool kept = b->n_saved && op->n_in == t->nx + b->n_saved;
  for (int k = 0; kept && k < b->n_saved; k++)
    if (!only_stateful || (b->saved[k]->producer->def->flags & CG_OP_STATEFUL))
      feeds[n++] = (cg_feed){b->saved[k], op->in[t->nx + k]};
  for (int i = 0; !only_stateful && i < t->ny; i++)
    if (b->reads_y[i] && i < op->n_out) feeds[n++] = (cg_feed){t->out[i], op->out[i]};
  return n;
}

/* b run on x and dy. Unrecorded, it is fed what the call kept, and only the gradient nodes
   run. Recorded (for a higher order), it runs the whole backward trace, so that the tape sees
   how the kept values depend on x; only stateful values are still fed, so that both give the
   same numbers. */
static cg_status function_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  trace *t = user, *b = backward_of(t);
  if (!b) return cg_last_status();
  bool recorded = cg__tape_would_record() || cg__tls()->graph;
  cg_tensor **in = cg__malloc((size_t)(t->nx + t->ny) * sizeof *in);
  cg_feed *extra = cg__malloc((size_t)(b->n_saved + t->ny + 1) * sizeof *extra);
  if (!in || !extra) {
    free(in);
    free(extra);
    return CG_ENOMEM;
  }
  for (int i = 0; i < t->nx; i++) in[i] = op->in[i];
  for (int i = 0; i < t->ny; i++) in[t->nx + i] = dy[i];
  cg_status st = trace_call(b, in, extra, kept_feeds(t, b, op, recorded, extra), dx);
  free(in);
  free(extra);
  return st;
}

/* --- the public object --------------------------------------------------------------------- */

static cg_status check_inputs(const cg_function *f, cg_tensor *const *x)
{
  if (f->nx > 0 && !x) return cg_set_error(CG_EINVAL, "%s: inputs are NULL", f->name);
  for (int i = 0; i < f->nx; i++) {
    if (!x[i]) return cg__null_input(f->name, i);
    if (x[i]->graph && x[i]->graph != cg__tls()->graph)
      return cg_set_error(CG_EINVAL, "%s: input %d is a symbolic tensor of another graph", f->name, i);
  }
  return CG_OK;
}

cg_function *cg_function_trace(const char *name, cg_trace_fn fn, void *user,
                               cg_tensor *const *example_inputs, int nx, int ny)
{
  if (!fn || nx < 0 || ny < 1 || ny > CG_MAX_OUTPUTS) {
    cg_set_error(CG_EINVAL, "cg_function_trace: need a function, nx >= 0 and 1..%d outputs", CG_MAX_OUTPUTS);
    return NULL;
  }
  cg_function *f = cg__calloc(1, sizeof *f);
  if (!f) return NULL;
  *f = (cg_function){.name = strdup(name ? name : "function"), .fn = fn, .user = user, .nx = nx, .ny = ny};
  trace *t = NULL;
  if (!f->name || check_inputs(f, example_inputs) != CG_OK || !(t = trace_new(f, example_inputs)) ||
      !(f->traces = cg__malloc(sizeof *f->traces))) {
    if (!f->name) cg_set_error(CG_ENOMEM, "cg_function_trace: out of memory");
    trace_free(t);
    cg_function_free(f);
    return NULL;
  }
  f->traces[f->n_traces++] = t;
  return f;
}

cg_status cg_function_call(cg_function *f, cg_tensor *const *x, cg_tensor **y)
{
  if (!f || !y) return cg_set_error(CG_EINVAL, "cg_function_call: function and outputs are required");
  cg_status st = check_inputs(f, x);
  if (st != CG_OK) return st;
  if (cg__tls()->graph) { /* called while building a graph: inline the body */
    cg_callback_guard guard = cg__guard_begin();
    st = f->fn(x, f->nx, y, f->ny, f->user);
    char who[160];
    snprintf(who, sizeof who, "%s: the traced function", f->name);
    st = cg__guard_end(&guard, who, st);
    return st == CG_OK || cg_last_status() != CG_OK ? st : cg_set_error(st, "%s: failed", f->name);
  }
  for (int k = 0; k < f->n_traces; k++)
    if (signature_matches(f->traces[k], x)) return trace_call(f->traces[k], x, NULL, 0, y);
  trace **traces = cg__realloc(f->traces, (size_t)(f->n_traces + 1) * sizeof *traces);
  if (!traces) return CG_ENOMEM;
  f->traces = traces;
  trace *t = trace_new(f, x); /* a new signature: trace again */
  if (!t) return cg_last_status();
  f->traces[f->n_traces++] = t;
  return trace_call(t, x, NULL, 0, y);
}

int cg_function_num_traces(const cg_function *f) { return f ? f->n_traces : 0; }

cg_graph *cg_function_graph(const cg_function *f, int k)
{
  return f && k >= 0 && k < f->n_traces ? f->traces[k]->graph : NULL;
}

void cg_function_free(cg_function *f)
{
  if (!f) return;
  for (int k = 0; k < f->n_traces; k++) trace_free(f->traces[k]);
  free(f->traces);
  free(f->name);
  free(f);
}

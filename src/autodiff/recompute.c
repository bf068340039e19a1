/* recompute.c - gradient checkpointing (tf.recompute_grad, jax.checkpoint): fn runs as one
 * custom gradient whose forward keeps nothing but its inputs, and whose backward runs fn
 * again under a private tape (or into the entered graph) and differentiates that, giving
 * gradients for the inputs and for every trainable variable fn read. */
#include "backward.h"
#include "../graph/graph.h"
#include <stdlib.h>
#include <string.h>

/* What the backward needs to call fn again. The record of a custom gradient has no place
 * for a destructor, so the closure travels as the bytes of a small saved tensor: it lives
 * exactly as long as the record that needs it. */
typedef struct {
  cg_trace_fn fn;
  void *user;
  int nx, ny;
} closure;

enum { CLOSURE_ELEMS = (sizeof(closure) + sizeof(int64_t) - 1) / sizeof(int64_t) };

/* Saved tensors: 0 the closure, then (eager only) the value each variable was read as. */
static cg_status save_closure(cg_ctx *ctx, const closure *c)
{
  int64_t words[CLOSURE_ELEMS] = {0};
  memcpy(words, c, sizeof *c);
  int64_t shape[1] = {CLOSURE_ELEMS};
  cg_tensor *t = cg_tensor_from(CG_I64, 1, shape, words); /* in the forward's scope */
  return t ? cg_ctx_save(ctx, t) : cg_last_status();
}

static closure load_closure(const cg_ctx *ctx)
{
  closure c;
  memcpy(&c, cg_tensor_data(cg_ctx_saved(ctx, 0)), sizeof c);
  return c;
}

static cg_status recompute_forward(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  const closure *c = cg_ctx_user(ctx); /* valid during the forward only (see save_closure) */
  cg_status st = c->fn(x, c->nx, y, c->ny, c->user);
  if (st != CG_OK) {
    if (cg_last_status() == CG_OK) cg_set_error(st, "Recompute: fn failed (status %s)", cg_status_name(st));
    return cg_last_status();
  }
  if ((st = save_closure(ctx, c)) != CG_OK) return st;
  if (cg__tls()->graph) return CG_OK; /* graph variables are read when the graph runs */
  for (int j = 0; j < cg_ctx_num_vars(ctx) && st == CG_OK; j++)
    st = cg_ctx_save(ctx, cg_var_value(cg_ctx_var(ctx, j)));
  return st;
}

/* --- the backward ------------------------------------------------------------------------ */

/* A variable assigned between the forward and the backward would be recomputed with its new
 * value: the gradient of a computation that never happened. Refuse instead. */
static cg_status check_variables_unchanged(const cg_ctx *ctx)
{
  for (int j = 0; j < cg_ctx_num_vars(ctx); j++) {
    cg_var *v = cg_ctx_var(ctx, j);
    if (cg_var_value(v) != cg_ctx_saved(ctx, 1 + j))
      return cg_set_error(CG_ESTATE, "Recompute: variable '%s' was assigned after the forward; "
                                     "recomputing would differentiate its new value (take the "
                                     "gradient before updating variables)", cg_var_name(v));
  }
  return CG_OK;
}

/* The recomputed outputs must be what the forward gave, bit for bit: a function that draws
 * new random numbers on each call (a training-mode dropout) cannot be recomputed. */
static cg_status check_outputs(const cg_ctx *ctx, cg_tensor *const *y, int ny)
{
  char a[160], b[160];
  for (int k = 0; k < ny; k++) {
    const cg_tensor *was = cg_ctx_output(ctx, k);
    if (!y[k])
      return cg_set_error(CG_EUSER, "Recompute: fn gave no output %d when run again", k);
    if (cg_tensor_dtype(y[k]) != cg_tensor_dtype(was) ||
        !cg__shape_equal(y[k]->ndim, y[k]->shape, was->ndim, was->shape))
      return cg_set_error(CG_EUSER, "Recompute: output %d is %s %s when run again but was %s %s",
                          k, cg_dtype_name(y[k]->dtype), cg_shape_str(y[k], a, sizeof a),
                          cg_dtype_name(was->dtype), cg_shape_str(was, b, sizeof b));
    if (!y[k]->graph && !was->graph &&
        memcmp(y[k]->data, was->data, (size_t)was->size * cg_dtype_size(was->dtype)) != 0)
      return cg_set_error(CG_EUSER, "Recompute: output %d differs when run again: fn must compute "
                                    "the same values from the same inputs (a training-mode dropout "
                                    "or a random op drawing new numbers cannot be recomputed)", k);
  }
  return CG_OK;
}

/* Recording on a private tape even where the caller paused recording: the other tapes are
 * made busy instead (they would not have recorded while paused anyway). */
typedef struct {
  int paused;
  bool *busy;
  int n;
} private_recording;

static cg_status begin_private(private_recording *p, cg_tape **tape)
{
  cg_thread_state *s = cg__tls();
  *p = (private_recording){.paused = s->paused};
  if (s->paused) {
    p->n = s->n_tapes;
    p->busy = cg__malloc((size_t)(p->n ? p->n : 1) * sizeof *p->busy);
    if (!p->busy) return CG_ENOMEM;
    for (int k = 0; k < p->n; k++) {
      p->busy[k] = s->tapes[k]->busy;
      s->tapes[k]->busy = true;
    }
    s->paused = 0;
  }
  *tape = cg_tape_begin(CG_TAPE_NO_AUTO_WATCH);
  return *tape ? CG_OK : cg_set_error(CG_ENOMEM, "Recompute: out of memory");
}

static void end_private(private_recording *p, cg_tape *tape)
{
  cg_thread_state *s = cg__tls();
  if (tape && tape->recording) cg_tape_end(tape);
  if (p->paused) {
    for (int k = 0; k < p->n && k < s->n_tapes; k++) s->tapes[k]->busy = p->busy[k];
    s->paused = p->paused;
  }
  free(p->busy);
  p->busy = NULL;
}

/* Graph mode: the tensors the recomputation's ReadVariable nodes of v produced. */
static int graph_reads(cg_node *const *nodes, size_t n, const cg_var *v, cg_tensor **out, int max)
{
  int k = 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(nodes[i]->type, "ReadVariable") == 0 &&
        cg_node_attr_int(nodes[i], "var", 0) == (int64_t)(intptr_t)v) {
      if (out && k < max) out[k] = nodes[i]->out[0];
      k++;
    }
  return k;
}

typedef struct {
  cg_tensor **src;   /* inputs that need a gradient, then variable sources              */
  int *src_var;      /* for each source: -1 (an input) or the variable it reads         */
  int *src_input;    /* for each source: the input index, or -1                         */
  int n_src;
  cg_node **nodes;   /* what the recomputation recorded or added, in order              */
  size_t n_nodes;
} recomputation;

static void recomputation_free(recomputation *r)
{
  free(r->src);
  free(r->src_var);
  free(r->src_input);
  free(r->nodes);
}

static cg_status add_source(recomputation *r, cg_tensor *t, int input, int var, int cap)
{
  if (r->n_src == cap) return cg_set_error(CG_EINVAL, "Recompute: too many variable reads");
  r->src[r->n_src] = t;
  r->src_input[r->n_src] = input;
  r->src_var[r->n_src++] = var;
  return CG_OK;
}

/* Sums the gradients of the sources that read variable j (graph mode may read it more than
 * once); zeros when fn no longer reads it. Result in the current scope. */
static cg_tensor *variable_gradient(const recomputation *r, cg_tensor **grads, int j, cg_var *v)
{
  int n = 0, last = -1;
  for (int s = 0; s < r->n_src; s++)
    if (r->src_var[s] == j && grads[s]) n++, last = s;
  if (n == 0) return cg_zeros_like(cg_var_value(v));
  if (n == 1) return grads[last];
  cg_tensor **parts = cg__malloc((size_t)n * sizeof *parts);
  if (!parts) return NULL;
  n = 0;
  for (int s = 0; s < r->n_src; s++)
    if (r->src_var[s] == j && grads[s]) parts[n++] = grads[s];
  cg_tensor *sum = cg_add_n(parts, n);
  free(parts);
  return sum;
}

static cg_status recompute_backward(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx,
                                    cg_tensor **dvars)
{
  const closure c = load_closure(ctx);
  const int nv = cg_ctx_num_vars(ctx);
  cg_graph *g = cg__tls()->graph;
  cg_status st = g ? CG_OK : check_variables_unchanged(ctx);
  if (st != CG_OK) return st;

  enum { MAX_READS = 1024 };
  int cap = c.nx + (g ? MAX_READS : nv);
  recomputation r = {.src = cg__malloc((size_t)(cap ? cap : 1) * sizeof *r.src),
                     .src_var = cg__malloc((size_t)(cap ? cap : 1) * sizeof(int)),
                     .src_input = cg__malloc((size_t)(cap ? cap : 1) * sizeof(int))};
  cg_tensor **x = cg__malloc((size_t)(c.nx ? c.nx : 1) * sizeof *x);
  cg_tensor *y[CG_MAX_OUTPUTS] = {0};
  cg_scope scope = r.src && r.src_var && r.src_input && x ? cg_scope_begin() : -1;
  if (scope < 0) {
    recomputation_free(&r);
    free(x);
    return cg_set_error(CG_ENOMEM, "Recompute: out of memory");
  }
  for (int i = 0; i < c.nx && st == CG_OK; i++) {
    /* fn runs on an Identity of each input: gradient hooks of the input itself then run once,
       in the outer walk, on its total gradient (not here on this block's part of it) */
    x[i] = cg_ctx_input(ctx, i);
    if (cg_dtype_is_float(x[i]->dtype) && cg_ctx_needs_input_grad(ctx, i)) {
      if (!(x[i] = cg_identity(x[i]))) st = cg_last_status();
      else add_source(&r, x[i], i, -1, cap);
    }
  }
  for (int j = 0; j < nv && !g; j++) add_source(&r, cg_ctx_saved(ctx, 1 + j), -1, j, cap);

  private_recording priv = {0};
  cg_tape *tape = NULL;
  size_t first = g ? g->n_nodes : 0;
  if (!g && st == CG_OK) st = begin_private(&priv, &tape);
  for (int s = 0; s < r.n_src && st == CG_OK && tape; s++) st = cg_tape_watch(tape, r.src[s]);
  if (st == CG_OK) { /* run fn again: the only forward whose intermediates are kept */
    st = c.fn(x, c.nx, y, c.ny, c.user);
    if (st != CG_OK && cg_last_status() == CG_OK)
      cg_set_error(st, "Recompute: fn failed when run again (status %s)", cg_status_name(st));
    st = st == CG_OK ? CG_OK : cg_last_status();
  }
  if (!g) end_private(&priv, tape);
  if (st == CG_OK) st = check_outputs(ctx, y, c.ny);

  /* the nodes to walk: the private tape's, or those the recomputation added to the graph
     (copied: the gradient nodes are appended to the same graph as the walk goes) */
  r.n_nodes = g ? g->n_nodes - first : tape ? tape->n_nodes : 0;
  if (st == CG_OK && !(r.nodes = cg__malloc((r.n_nodes ? r.n_nodes : 1) * sizeof *r.nodes)))
    st = CG_ENOMEM;
  if (st == CG_OK) memcpy(r.nodes, g ? g->nodes + first : tape->nodes, r.n_nodes * sizeof *r.nodes);
  for (int j = 0; j < nv && g && st == CG_OK; j++) {
    cg_tensor *reads[MAX_READS];
    int n = graph_reads(r.nodes, r.n_nodes, cg_ctx_var(ctx, j), reads, MAX_READS);
    for (int k = 0; k < n && k < MAX_READS && st == CG_OK; k++) st = add_source(&r, reads[k], -1, j, cap);
  }

  cg_tensor **grads = st == CG_OK ? cg__calloc((size_t)(r.n_src ? r.n_src : 1), sizeof *grads) : NULL;
  if (st == CG_OK && !grads) st = CG_ENOMEM;
  if (st == CG_OK) {
    cg_backward_args a = {.nodes = r.nodes, .n_nodes = r.n_nodes, .followed = tape ? &tape->tracked : NULL,
                          .targets = y, .seeds = dy, .n_targets = c.ny, .sources = r.src,
                          .n_src = r.n_src};
    st = cg__backward(&a, grads);
  }
  for (int s = 0; s < r.n_src && st == CG_OK; s++)
    if (r.src_input[s] >= 0 && grads[s]) dx[r.src_input[s]] = grads[s];
  for (int j = 0; j < nv && st == CG_OK; j++)
    if (!(dvars[j] = variable_gradient(&r, grads, j, cg_ctx_var(ctx, j)))) st = cg_last_status();
  for (int i = 0; i < c.nx + nv && st == CG_OK; i++) { /* the results outlive this scope */
    cg_tensor *t = i < c.nx ? dx[i] : dvars[i - c.nx];
    if (t && !cg_keep(t)) st = cg_last_status();
  }
  if (st != CG_OK) {
    for (int i = 0; i < c.nx; i++) dx[i] = NULL;
    for (int j = 0; j < nv; j++) dvars[j] = NULL;
  }
  cg_tape_free(tape); /* the recomputed intermediates go here */
  cg_scope_end(scope);
  free(grads);
  free(x);
  recomputation_free(&r);
  return st == CG_OK ? CG_OK : cg_last_status() ? cg_last_status() : st;
}

cg_status cg_recompute(cg_trace_fn fn, void *user, cg_tensor *const *inputs, int nx,
                       cg_tensor **outputs, int ny)
{
  if (!fn) return cg_set_error(CG_EINVAL, "cg_recompute: fn is NULL");
  if (nx < 0 || ny < 1 || ny > CG_MAX_OUTPUTS || (nx > 0 && !inputs) || !outputs)
    return cg_set_error(CG_EINVAL, "cg_recompute: need nx >= 0 inputs and 1..%d outputs (got %d and %d), "
                                   "and their arrays", CG_MAX_OUTPUTS, nx, ny);
  /* a copy of the inputs: outputs may be the same array (h = block(h)) */
  cg_tensor *small[8] = {0}, **x = nx <= 8 ? small : cg__malloc((size_t)nx * sizeof *x);
  if (!x) return cg_set_error(CG_ENOMEM, "cg_recompute: out of memory");
  if (nx) memcpy(x, inputs, (size_t)nx * sizeof *x);
  closure c = {fn, user, nx, ny};
  cg_custom_def def = {.name = "Recompute", .n_inputs = nx, .n_outputs = ny,
                       .forward = recompute_forward, .backward = recompute_backward, .user = &c};
  cg_status st = cg_custom_gradient(&def, x, outputs);
  if (x != small) free(x);
  return st;
}

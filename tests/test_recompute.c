/* test_recompute.c - gradient checkpointing (cg_recompute): gradients for inputs and
 * variables equal to the plain computation's, with layers, second order, in graphs and under
 * paused recording; the errors (a variable assigned in between, a function that does not
 * repeat itself); and the peak tape memory of a 16-layer MLP with and without it. */
#include "util.h"
#include "core/internal.h"
#include "graph/graph.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static void assert_bitwise(cg_tensor *a, cg_tensor *b)
{
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(cg_tensor_dtype(a), cg_tensor_dtype(b));
  assert_int_equal(cg_tensor_size(a), cg_tensor_size(b));
  assert_memory_equal(cg_tensor_data(a), cg_tensor_data(b),
                      (size_t)cg_tensor_size(a) * cg_dtype_size(cg_tensor_dtype(a)));
}

/* --- a block with two inputs, two outputs and a variable --------------------------------- */

typedef struct {
  cg_var *w;
  int calls;
} block_state;

/* y0 = tanh(x0 w) * x1, y1 = sin(x1) + sum(x0^2) */
static cg_status block(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  block_state *s = user;
  s->calls++;
  y[0] = cg_mul(cg_tanh(cg_matmul(x[0], cg_var_read(s->w))), x[1]);
  y[1] = cg_add(cg_sin(x[1]), cg_sum(cg_square(x[0]), NULL, 0, 0));
  return y[0] && y[1] ? CG_OK : cg_last_status();
}

static cg_tensor *loss_of(cg_tensor **y)
{
  int64_t s35[2] = {3, 5}; /* (y[0]'s shape, also where a graph does not know it) */
  cg_tensor *u = cg_random_uniform(CG_F64, 2, s35, -1, 1, 5);
  return cg_add(cg_sum(cg_mul(y[0], u), NULL, 0, 0), cg_sum(cg_square(y[1]), NULL, 0, 0));
}

/* gradients of the loss w.r.t. x0, x1 and w, with the block plain or recomputed */
static void block_gradients(block_state *s, cg_tensor **x, int recompute, cg_tensor **out)
{
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x[0]);
  cg_tape_watch(tape, x[1]);
  cg_tensor *y[2];
  if (recompute) assert_int_equal(cg_recompute(block, s, x, 2, y, 2), CG_OK);
  else assert_int_equal(block(x, 2, y, 2, s), CG_OK);
  cg_tensor *loss = loss_of(y);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_num_records(tape), recompute ? 6 : 12); /* one Recompute for 7 ops */
  cg_tensor *src[3] = {x[0], x[1], cg_var_value(s->w)};
  assert_int_equal(cg_tape_gradient(tape, loss, src, 3, out, NULL), CG_OK);
  cg_tape_free(tape);
}

static void gradients_equal_the_plain_computation(void **state)
{
  int64_t s34[2] = {3, 4}, s45[2] = {4, 5}, s35[2] = {3, 5};
  block_state s = {cg_var_new("w", cg_random_normal(CG_F64, 2, s45, 0, 1, 1), 1), 0};
  cg_tensor *x[2] = {cg_random_normal(CG_F64, 2, s34, 0, 1, 2),
                     cg_random_normal(CG_F64, 2, s35, 0, 1, 3)};
  cg_tensor *plain[3], *rec[3];
  block_gradients(&s, x, 0, plain);
  assert_int_equal(s.calls, 1);
  block_gradients(&s, x, 1, rec);
  assert_int_equal(s.calls, 3); /* once forward, once more in the backward */
  for (int i = 0; i < 3; i++) assert_bitwise(plain[i], rec[i]);
  cg_var_free(s.w);
}

static void outputs_and_no_tape(void **state)
{
  int64_t s23[2] = {2, 3}, s33[2] = {3, 3};
  block_state s = {cg_var_new("w", cg_random_normal(CG_F64, 2, s33, 0, 1, 1), 1), 0};
  cg_tensor *x[2] = {cg_random_normal(CG_F64, 2, s23, 0, 1, 2), cg_random_normal(CG_F64, 2, s23, 0, 1, 3)};
  cg_tensor *a[2], *b[2];
  assert_int_equal(block(x, 2, a, 2, &s), CG_OK);
  assert_int_equal(cg_recompute(block, &s, x, 2, b, 2), CG_OK); /* no tape: just runs */
  assert_int_equal(s.calls, 2);
  assert_bitwise(a[0], b[0]);
  assert_bitwise(a[1], b[1]);
  cg_tensor *h[2] = {x[0], x[1]}; /* outputs over the inputs: h = block(h) */
  assert_int_equal(cg_recompute(block, &s, h, 2, h, 2), CG_OK);
  assert_bitwise(a[0], h[0]);
  assert_bitwise(a[1], h[1]);
  cg_var_free(s.w);
}

static cg_tensor *triple(cg_tensor *grad, void *user)
{
  (*(int *)user)++;
  return cg_mul(grad, cg_scalar_like(grad, 3));
}

/* A hook on a block input sees its total gradient once, as without recomputing. */
static void hooks_on_inputs_run_once(void **state)
{
  int64_t s34[2] = {3, 4}, s45[2] = {4, 5}, s35[2] = {3, 5};
  block_state s = {cg_var_new("w", cg_random_normal(CG_F64, 2, s45, 0, 1, 1), 1), 0};
  cg_tensor *plain[3], *rec[3];
  int calls[2] = {0, 0};
  for (int recompute = 0; recompute < 2; recompute++) {
    cg_tensor *x[2] = {cg_random_normal(CG_F64, 2, s34, 0, 1, 2), cg_random_normal(CG_F64, 2, s35, 0, 1, 3)};
    assert_int_equal(cg_tensor_register_hook(x[0], triple, &calls[recompute]), CG_OK);
    block_gradients(&s, x, recompute, recompute ? rec : plain);
  }
  assert_int_equal(calls[0], 1);
  assert_int_equal(calls[1], 1);
  for (int i = 0; i < 3; i++) assert_bitwise(plain[i], rec[i]);
  cg_var_free(s.w);
}

/* --- layers: recompute each layer, or blocks of layers ------------------------------------ */

typedef struct {
  cg_layer **layers;
  int n;
} stack;

static cg_status run_stack(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  const stack *s = user;
  cg_tensor *h = x[0];
  for (int i = 0; i < s->n; i++) h = cg_layer_forward(s->layers[i], h, 1);
  y[0] = h;
  return h ? CG_OK : cg_last_status();
}

typedef struct {
  cg_layer *layers[16];
  cg_var *vars[32];
  int n_layers, n_vars;
  stack blocks[16]; /* what cg_recompute is given: alive until the gradient is taken */
} mlp;

static void mlp_new(mlp *m, int n_layers, int64_t width, uint64_t seed)
{
  m->n_layers = n_layers;
  m->n_vars = 0;
  for (int i = 0; i < n_layers; i++) {
    m->layers[i] = cg_dense_layer(NULL, width, width, CG_ACT_TANH, seed + (uint64_t)i);
    assert_non_null(m->layers[i]);
    m->n_vars += cg_layer_variables(m->layers[i], 1, m->vars + m->n_vars, 32 - m->n_vars);
  }
}

static void mlp_free(mlp *m)
{
  for (int i = 0; i < m->n_layers; i++) cg_layer_free(m->layers[i]);
}

/* The MLP's output, each block of `block` layers recomputed (0: plain). */
static cg_tensor *mlp_forward(mlp *m, cg_tensor *x, int block)
{
  cg_tensor *h = x;
  for (int i = 0, k = 0; i < m->n_layers && h; i += block ? block : m->n_layers, k++) {
    stack *s = &m->blocks[k];
    *s = (stack){m->layers + i, block ? block : m->n_layers};
    if (s->n > m->n_layers - i) s->n = m->n_layers - i;
    cg_tensor *y = NULL;
    if (block ? cg_recompute(run_stack, s, &h, 1, &y, 1) : run_stack(&h, 1, &y, 1, s)) return NULL;
    h = y;
  }
  return h;
}

typedef struct {
  int64_t kept;  /* tensor bytes alive after the forward, above the start           */
  int64_t peak;  /* most tensor bytes alive during forward and backward, above it    */
} memory;

/* One training step's gradients (into grads, in the caller's scope) and its memory. */
static memory mlp_step(mlp *m, cg_tensor *x, int block, cg_tensor **grads)
{
  memory mem;
  cg_scope outer = cg_scope_begin();
  int64_t start = cg__live_bytes();
  cg__reset_peak_bytes();
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *y = mlp_forward(m, x, block);
  assert_non_null(y);
  cg_tensor *loss = cg_mean(cg_square(y), NULL, 0, 0);
  cg_tape_end(tape);
  mem.kept = cg__live_bytes() - start;
  cg_tensor *src[32];
  for (int i = 0; i < m->n_vars; i++) src[i] = cg_var_value(m->vars[i]);
  assert_int_equal(cg_tape_gradient(tape, loss, src, m->n_vars, grads, NULL), CG_OK);
  cg_tape_free(tape);
  mem.peak = cg__peak_bytes() - start;
  for (int i = 0; i < m->n_vars; i++) cg_keep(grads[i]);
  cg_scope_end(outer);
  return mem;
}

/* A block of single-layer recomputed blocks, itself recomputed. */
static cg_status run_nested(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  stack *inner = user; /* inner[0] describes the whole block, inner[1..] its layers */
  cg_tensor *h = x[0];
  for (int i = 0; i < inner[0].n && h; i++)
    if (cg_recompute(run_stack, &inner[1 + i], &h, 1, &h, 1) != CG_OK) h = NULL;
  y[0] = h;
  return cg_status_of(h);
}

static void layers_match_plain_per_layer_and_in_blocks(void **state)
{
  mlp m;
  mlp_new(&m, 6, 8, 40);
  int64_t s58[2] = {5, 8};
  cg_tensor *x = cg_random_normal(CG_F32, 2, s58, 0, 1, 9);
  cg_tensor *plain[32], *rec[32];
  mlp_step(&m, x, 0, plain);
  for (int block = 1; block <= 4; block++) {
    cg_scope s = cg_scope_begin();
    mlp_step(&m, x, block, rec);
    for (int i = 0; i < m.n_vars; i++) assert_bitwise(plain[i], rec[i]);
    cg_scope_end(s);
  }
  /* nested: two recomputed blocks of three layers, each layer recomputed inside */
  stack outer[2][4];
  for (int b = 0; b < 2; b++) {
    outer[b][0] = (stack){m.layers + 3 * b, 3};
    for (int i = 0; i < 3; i++) outer[b][1 + i] = (stack){m.layers + 3 * b + i, 1};
  }
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *h = x;
  for (int b = 0; b < 2; b++) assert_int_equal(cg_recompute(run_nested, outer[b], &h, 1, &h, 1), CG_OK);
  cg_tensor *loss = cg_mean(cg_square(h), NULL, 0, 0);
  cg_tape_end(tape);
  cg_tensor *src[32];
  for (int i = 0; i < m.n_vars; i++) src[i] = cg_var_value(m.vars[i]);
  assert_int_equal(cg_tape_gradient(tape, loss, src, m.n_vars, rec, NULL), CG_OK);
  for (int i = 0; i < m.n_vars; i++) assert_bitwise(plain[i], rec[i]);
  cg_tape_free(tape);
  mlp_free(&m);
}

/* The figures docs/guide.md quotes: 16 dense tanh layers of width 256, batch 64, f32. */
static void mlp_memory_with_and_without_recomputing(void **state)
{
  mlp m;
  mlp_new(&m, 16, 256, 100);
  int64_t s[2] = {64, 256};
  cg_tensor *x = cg_random_normal(CG_F32, 2, s, 0, 1, 7);
  long live = cg__live_tensors();
  cg_scope scope = cg_scope_begin();
  cg_tensor *plain[32], *per_layer[32], *blocks[32];
  memory a = mlp_step(&m, x, 0, plain);
  memory b = mlp_step(&m, x, 1, per_layer);
  memory c = mlp_step(&m, x, 4, blocks);
  printf("16-layer MLP (256 wide, batch 64, tanh, f32), tensor bytes above the start:\n"
         "  plain tape:            %6.2f MiB kept after the forward, peak %6.2f MiB\n"
         "  recompute each layer:  %6.2f MiB kept after the forward, peak %6.2f MiB\n"
         "  recompute 4 blocks:    %6.2f MiB kept after the forward, peak %6.2f MiB\n"
         "  (each peak includes the 4.00 MiB of weight gradients the step returns)\n",
         a.kept / 1048576.0, a.peak / 1048576.0, b.kept / 1048576.0, b.peak / 1048576.0,
         c.kept / 1048576.0, c.peak / 1048576.0);
  assert_true(b.peak < a.peak);
  assert_true(c.peak < b.peak);
  assert_true(3 * b.kept < 2 * a.kept);
  assert_true(c.kept < b.kept);
  for (int i = 0; i < m.n_vars; i++) {
    assert_bitwise(plain[i], per_layer[i]);
    assert_bitwise(plain[i], blocks[i]);
  }
  cg_scope_end(scope);
  assert_int_equal(cg__live_tensors(), live); /* nothing left behind by any of the three */
  mlp_free(&m);
}

/* --- second order, graphs, paused recording ----------------------------------------------- */

typedef struct {
  cg_var *w;
} scaled;

/* y = tanh(x * w)^2 summed, element-wise w */
static cg_status scaled_tanh(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  const scaled *s = user;
  y[0] = cg_sum(cg_square(cg_tanh(cg_mul(x[0], cg_var_read(s->w)))), NULL, 0, 0);
  return cg_status_of(y[0]);
}

/* d/dx sum(d f/dx) and d/dw of the same, through nested tapes */
static void second_order(scaled *s, cg_tensor *x, int recompute, cg_tensor **out)
{
  cg_tape *outer = cg_tape_begin(0), *inner = cg_tape_begin(0);
  cg_tape_watch(outer, x);
  cg_tape_watch(inner, x);
  cg_tensor *y, *dx;
  if (recompute) assert_int_equal(cg_recompute(scaled_tanh, s, &x, 1, &y, 1), CG_OK);
  else assert_int_equal(scaled_tanh(&x, 1, &y, 1, s), CG_OK);
  cg_tape_end(inner);
  assert_int_equal(cg_tape_gradient(inner, y, &x, 1, &dx, NULL), CG_OK);
  cg_tensor *z = cg_sum(dx, NULL, 0, 0);
  cg_tape_end(outer);
  cg_tensor *src[2] = {x, cg_var_value(s->w)};
  assert_int_equal(cg_tape_gradient(outer, z, src, 2, out, NULL), CG_OK);
  out[2] = dx;
  cg_tape_free(inner);
  cg_tape_free(outer);
}

static void second_order_matches_plain(void **state)
{
  int64_t s4[1] = {4};
  scaled s = {cg_var_new("w", cgt_f64(1, s4, (double[]){0.5, -1, 2, 0.25}), 1)};
  cg_tensor *x = cgt_f64(1, s4, (double[]){0.3, -0.7, 1.1, 2});
  cg_tensor *plain[3], *rec[3];
  second_order(&s, x, 0, plain);
  second_order(&s, x, 1, rec);
  for (int i = 0; i < 3; i++) {
    assert_non_null(rec[i]);
    for (int64_t k = 0; k < 4; k++)
      assert_true(fabs(cg_tensor_get(plain[i], k) - cg_tensor_get(rec[i], k)) <= 1e-12);
  }
  cg_var_free(s.w);
}

static cg_tensor *checked(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *y = NULL;
  return cg_recompute(scaled_tanh, user, x, 1, &y, 1) == CG_OK ? y : NULL;
}

static void gradcheck_through_recompute(void **state)
{
  int64_t s3[1] = {3};
  scaled s = {cg_var_new("w", cgt_f64(1, s3, (double[]){0.5, -1, 2}), 1)};
  cg_tensor *x = cgt_f64(1, s3, (double[]){0.3, -0.7, 0.4});
  assert_gradcheck(checked, &s, &x, 1, 2);
  cg_var_free(s.w);
}

static void paused_recording_still_recomputes(void **state)
{
  int64_t s34[2] = {3, 4}, s45[2] = {4, 5}, s35[2] = {3, 5};
  block_state s = {cg_var_new("w", cg_random_normal(CG_F64, 2, s45, 0, 1, 1), 1), 0};
  cg_tensor *x[2] = {cg_random_normal(CG_F64, 2, s34, 0, 1, 2), cg_random_normal(CG_F64, 2, s35, 0, 1, 3)};
  cg_tensor *plain[3], *rec[3], *y[2];
  block_gradients(&s, x, 0, plain);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x[0]);
  cg_tape_watch(tape, x[1]);
  assert_int_equal(cg_recompute(block, &s, x, 2, y, 2), CG_OK);
  cg_tensor *loss = loss_of(y);
  cg_tape_end(tape);
  cg_tape *other = cg_tape_begin(0); /* open and paused: must not record the recomputation */
  cg_tape_watch(other, x[0]);
  cg_pause_recording();
  cg_tensor *src[3] = {x[0], x[1], cg_var_value(s.w)};
  assert_int_equal(cg_tape_gradient(tape, loss, src, 3, rec, NULL), CG_OK);
  assert_int_equal(cg_resume_recording(), CG_OK);
  assert_int_equal(cg_tape_num_records(other), 0);
  cg_tape_end(other);
  for (int i = 0; i < 3; i++) assert_bitwise(plain[i], rec[i]);
  cg_tape_free(other);
  cg_tape_free(tape);
  cg_var_free(s.w);
}

static cg_tensor *run_graph(cg_graph *g, cg_tensor *const *ph, cg_tensor *const *value, cg_tensor *fetch)
{
  cg_feed feeds[2] = {{ph[0], value[0]}, {ph[1], value[1]}};
  cg_tensor *out = NULL;
  return cg_graph_run(g, feeds, 2, &fetch, 1, &out) == CG_OK ? out : NULL;
}

/* The forward's ReadVariable output: what graph-mode gradients for a variable are taken to. */
static cg_tensor *first_read(cg_graph *g)
{
  for (size_t i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i]->type, "ReadVariable") == 0) return g->nodes[i]->out[0];
  return NULL;
}

static void graph_mode_matches_eager(void **state)
{
  int64_t s34[2] = {3, 4}, s45[2] = {4, 5}, s35[2] = {3, 5};
  block_state s = {cg_var_new("w", cg_random_normal(CG_F64, 2, s45, 0, 1, 1), 1), 0};
  cg_tensor *xv[2] = {cg_random_normal(CG_F64, 2, s34, 0, 1, 2), cg_random_normal(CG_F64, 2, s35, 0, 1, 3)};
  cg_tensor *eager[3];
  block_gradients(&s, xv, 0, eager);

  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x[2] = {cg_placeholder(CG_F64, 2, s34, "x0"), cg_placeholder(CG_F64, 2, s35, "x1")}, *y[2];
  assert_int_equal(cg_recompute(block, &s, x, 2, y, 2), CG_OK);
  cg_tensor *loss = loss_of(y);
  cg_graph_exit(g);
  cg_tensor *read = first_read(g), *src[3] = {x[0], x[1], read}, *grad[3];
  assert_non_null(read);
  size_t before = g->n_nodes;
  assert_int_equal(cg_gradients(&loss, 1, src, 3, NULL, grad, NULL), CG_OK);
  assert_true(g->n_nodes > before + 5); /* the recomputation's nodes and its gradient */
  for (int i = 0; i < 3; i++) {
    cg_tensor *v = run_graph(g, x, xv, grad[i]);
    assert_non_null(v);
    for (int64_t k = 0; k < cg_tensor_size(v); k++)
      assert_true(fabs(cg_tensor_get(v, k) - cg_tensor_get(eager[i], k)) <= 1e-12);
  }
  cg_graph_free(g);
  cg_var_free(s.w);
}

/* --- allocation failure ------------------------------------------------------------------- */

typedef struct {
  block_state s;
  cg_tensor *x[2];
} step_args;

/* One recomputed forward and backward, by status (no assertion inside). */
static cg_status recompute_step(step_args *a)
{
  cg_scope scope = cg_scope_begin();
  if (scope < 0) return cg_last_status();
  cg_tape *tape = cg_tape_begin(0);
  cg_status st = tape ? CG_OK : cg_last_status();
  cg_tensor *y[2] = {NULL, NULL}, *loss = NULL, *g[3];
  if (st == CG_OK) st = cg_tape_watch(tape, a->x[0]);
  if (st == CG_OK) st = cg_recompute(block, &a->s, a->x, 2, y, 2);
  if (st == CG_OK && !(loss = cg_sum(cg_mul(y[0], y[0]), NULL, 0, 0))) st = cg_last_status();
  if (tape) cg_tape_end(tape);
  cg_tensor *src[2] = {a->x[0], cg_var_value(a->s.w)};
  if (st == CG_OK) st = cg_tape_gradient(tape, loss, src, 2, g, NULL);
  if (st == CG_OK && (!g[0] || !g[1])) st = cg_set_error(CG_EUSER, "a gradient is missing");
  cg_tape_free(tape);
  cg_scope_end(scope);
  return st;
}

static void every_allocation_fails_cleanly(void **state)
{
  int64_t s34[2] = {3, 4}, s45[2] = {4, 5}, s35[2] = {3, 5};
  step_args a = {{cg_var_new("w", cg_random_normal(CG_F64, 2, s45, 0, 1, 1), 1), 0},
                 {cg_random_normal(CG_F64, 2, s34, 0, 1, 2), cg_random_normal(CG_F64, 2, s35, 0, 1, 3)}};
  assert_int_equal(recompute_step(&a), CG_OK); /* warm up caches */
  long baseline = cg__live_tensors();
  cg__alloc_fail_at(1L << 40);
  assert_int_equal(recompute_step(&a), CG_OK);
  long calls = cg__alloc_calls();
  assert_true(calls > 20);
  for (long n = 0; n < calls; n++) {
    cg__alloc_fail_at(n);
    cg_status st = recompute_step(&a);
    cg__alloc_fail_at(-1);
    if (st != CG_ENOMEM) print_error("allocation %ld of %ld: %s: %s\n", n, calls, cg_status_name(st), cg_last_error());
    assert_int_equal(st, CG_ENOMEM);
    cg_clear_error();
    assert_int_equal(recompute_step(&a), CG_OK);
    assert_int_equal(cg__live_tensors(), baseline);
  }
  cg_var_free(a.s.w);
}

/* --- errors ----------------------------------------------------------------------------------- */

static cg_status failing(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  return cg_set_error(CG_EUSER, "failing: on purpose");
}

static cg_status forgetful(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  return CG_OK; /* no outputs */
}

static cg_status dropout_block(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_layer_forward(user, x[0], 1);
  return cg_status_of(y[0]);
}

static void errors_name_the_cause(void **state)
{
  int64_t s3[1] = {3};
  cg_tensor *x = cgt_f64(1, s3, (double[]){1, 2, 3}), *y = NULL, *dx;
  assert_int_equal(cg_recompute(NULL, NULL, &x, 1, &y, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_recompute: fn is NULL");
  assert_int_equal(cg_recompute(failing, NULL, &x, 1, &y, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "1..16 outputs");
  assert_int_equal(cg_recompute(failing, NULL, &x, 1, &y, 1), CG_EUSER);
  assert_error(CG_EUSER, "failing: on purpose");
  assert_null(y);
  assert_int_equal(cg_recompute(forgetful, NULL, &x, 1, &y, 1), CG_EUSER);
  assert_error(CG_EUSER, "no tensor for output 0");

  /* a variable assigned between the forward and the backward */
  scaled s = {cg_var_new("w", cgt_f64(1, s3, (double[]){1, 1, 1}), 1)};
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  assert_int_equal(cg_recompute(scaled_tanh, &s, &x, 1, &y, 1), CG_OK);
  cg_tape_end(tape);
  cg_var_assign(s.w, cgt_f64(1, s3, (double[]){2, 2, 2}));
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_ESTATE);
  assert_error(CG_ESTATE, "variable 'w' was assigned after the forward");
  cg_tape_free(tape);
  cg_var_free(s.w);

  /* a training-mode dropout draws a new mask when run again */
  cg_layer *drop = cg_dropout_layer(0.5, 3);
  int64_t s64[1] = {64};
  x = cg_ones(CG_F64, 1, s64);
  tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  assert_int_equal(cg_recompute(dropout_block, drop, &x, 1, &y, 1), CG_OK);
  cg_tensor *sum = cg_sum(y, NULL, 0, 0);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, sum, &x, 1, &dx, NULL), CG_EUSER);
  assert_error(CG_EUSER, "output 0 differs when run again");
  cg_tape_free(tape);
  cg_layer_free(drop);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(gradients_equal_the_plain_computation),
      cgt_test(outputs_and_no_tape),
      cgt_test(hooks_on_inputs_run_once),
      cgt_test(layers_match_plain_per_layer_and_in_blocks),
      cgt_test(mlp_memory_with_and_without_recomputing),
      cgt_test(second_order_matches_plain),
      cgt_test(gradcheck_through_recompute),
      cgt_test(paused_recording_still_recomputes),
      cgt_test(graph_mode_matches_eager),
      cgt_test(every_allocation_fails_cleanly),
      cgt_test(errors_name_the_cause),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

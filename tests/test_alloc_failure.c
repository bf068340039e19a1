/* test_alloc_failure.c - every allocation of a training step, of a gradient computation
 * and of a graph run is made to fail in turn: each failure must come back as CG_ENOMEM,
 * leak no tensor, and leave the model, optimizer and tapes usable for the next step. */
#include "util.h"
#include "core/internal.h"

typedef struct {
  cg_layer *model;
  cg_optimizer *opt;
  cg_var *vars[8];
  int n_vars;
  cg_tensor *x, *y;
} fixture;

static void fixture_init(fixture *f)
{
  f->model = cg_sequential("m");
  cg_sequential_add(f->model, cg_dense_layer("h", 6, 8, CG_ACT_RELU, 1));
  cg_sequential_add(f->model, cg_dense_layer("out", 8, 3, CG_ACT_NONE, 2));
  f->opt = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM, .lr = 1e-2});
  f->n_vars = cg_layer_variables(f->model, 1, f->vars, 8);
  int64_t xs[2] = {4, 6}, ys[1] = {4};
  f->x = cg_random_normal(CG_F32, 2, xs, 0, 1, 3);
  f->y = cg_random_uniform(CG_I64, 1, ys, 0, 3, 4);
}

static void fixture_free(fixture *f)
{
  cg_layer_free(f->model);
  cg_optimizer_free(f->opt); /* x and y belong to the test's scope */
}

static cg_status train_step(fixture *f)
{
  cg_scope s = cg_scope_begin();
  if (s < 0) return cg_last_status();
  cg_tape *tape = cg_tape_begin(0);
  cg_status st = tape ? CG_OK : cg_last_status();
  cg_tensor *loss = tape ? cg_loss_sparse_softmax_xent(f->y, cg_layer_forward(f->model, f->x, 1), CG_REDUCE_MEAN) : NULL;
  if (tape) cg_tape_end(tape);
  cg_tensor *src[8], *g[8];
  for (int i = 0; i < f->n_vars; i++) src[i] = cg_var_value(f->vars[i]);
  if (st == CG_OK) st = loss ? cg_tape_gradient(tape, loss, src, f->n_vars, g, NULL) : cg_last_status();
  if (st == CG_OK) st = cg_optimizer_apply_gradients(f->opt, g, f->vars, f->n_vars);
  cg_tape_free(tape);
  cg_scope_end(s);
  return st;
}

/* Runs fn with allocation n failing, for every n until fn needs fewer allocations. */
static void fail_each_allocation(cg_status (*fn)(void *), void *arg, const char *what)
{
  cg__alloc_fail_at(-1);
  assert_int_equal(fn(arg), CG_OK); /* warm up: slots, caches, registries */
  long baseline = cg__live_tensors();
  cg__alloc_fail_at(1L << 40);
  assert_int_equal(fn(arg), CG_OK);
  long calls = cg__alloc_calls();
  assert_true(calls > 10);
  for (long n = 0; n < calls; n++) {
    cg_clear_error();
    cg__alloc_fail_at(n);
    cg_status st = fn(arg);
    cg__alloc_fail_at(-1);
    if (st != CG_ENOMEM) print_error("%s: allocation %ld of %ld failed, result %s: %s\n", what, n, calls,
                                     cg_status_name(st), cg_last_error());
    assert_int_equal(st, CG_ENOMEM);
    cg_clear_error();
    assert_int_equal(fn(arg), CG_OK);              /* everything still works */
    assert_int_equal(cg__live_tensors(), baseline); /* and nothing leaked */
  }
  print_message("%s: each of its %ld allocations failed in turn, all reported CG_ENOMEM\n", what, calls);
}

static cg_status training_step(void *arg) { return train_step(arg); }

static void every_allocation_of_a_training_step(void **state)
{
  fixture f;
  fixture_init(&f);
  fail_each_allocation(training_step, &f, "training step");
  fixture_free(&f);
}

/* Building a model and an optimizer, and the first step (which creates Adam's slots). */
static cg_status build_and_first_step(void *arg)
{
  fixture f = {.x = ((fixture *)arg)->x, .y = ((fixture *)arg)->y};
  f.model = cg_sequential("fresh");
  cg_status st = f.model ? CG_OK : cg_last_status();
  cg_layer *layers[2] = {cg_dense_layer("h", 6, 8, CG_ACT_TANH, 5), cg_dense_layer("out", 8, 3, CG_ACT_NONE, 6)};
  for (int i = 0; i < 2; i++) {
    if (st == CG_OK) st = layers[i] ? cg_sequential_add(f.model, layers[i]) : cg_last_status();
    if (st != CG_OK) cg_layer_free(layers[i]); /* not taken by the model */
  }
  f.opt = st == CG_OK ? cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM}) : NULL;
  if (st == CG_OK && !f.opt) st = cg_last_status();
  if (st == CG_OK) f.n_vars = cg_layer_variables(f.model, 1, f.vars, 8);
  if (st == CG_OK) st = train_step(&f);
  cg_layer_free(f.model);
  cg_optimizer_free(f.opt);
  return st;
}

static void every_allocation_of_building_a_model(void **state)
{
  fixture f;
  fixture_init(&f);
  fail_each_allocation(build_and_first_step, &f, "model, optimizer and first step");
  fixture_free(&f);
}

/* A second derivative through a custom gradient and a broadcast. */
static cg_status cube_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  cg_ctx_save(ctx, x[0]);
  y[0] = cg_mul(cg_square(x[0]), x[0]);
  return cg_status_of(y[0]);
}
static cg_status cube_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  cg_tensor *x = cg_ctx_saved(ctx, 0);
  dx[0] = cg_mul(dy[0], cg_mul(cg_scalar_like(x, 3), cg_square(x)));
  return cg_status_of(dx[0]);
}

static cg_status second_derivative(void *arg)
{
  static const cg_custom_def cube = {"Cube", 1, 1, cube_fwd, cube_bwd, NULL};
  cg_tensor *x = arg, *y = NULL, *dy = NULL, *d2y = NULL;
  cg_scope s = cg_scope_begin();
  if (s < 0) return cg_last_status();
  cg_tape *outer = cg_tape_begin(0), *inner = outer ? cg_tape_begin(0) : NULL;
  cg_status st = inner ? CG_OK : cg_last_status();
  if (st == CG_OK) st = cg_tape_watch(outer, x);
  if (st == CG_OK) st = cg_tape_watch(inner, x);
  if (st == CG_OK) st = cg_custom_gradient(&cube, &x, &y);
  cg_tensor *loss = st == CG_OK ? cg_sum(cg_mul(y, cg_scalar_like(y, 2)), NULL, 0, 0) : NULL;
  if (inner) cg_tape_end(inner);
  if (st == CG_OK) st = loss ? cg_tape_gradient(inner, loss, &x, 1, &dy, NULL) : cg_last_status();
  cg_tensor *g = st == CG_OK ? cg_sum(dy, NULL, 0, 0) : NULL;
  if (outer) cg_tape_end(outer);
  if (st == CG_OK) st = g ? cg_tape_gradient(outer, g, &x, 1, &d2y, NULL) : cg_last_status();
  cg_tape_free(inner);
  cg_tape_free(outer);
  cg_scope_end(s);
  return st;
}

static void every_allocation_of_a_gradient_computation(void **state)
{
  int64_t shape[1] = {5};
  cg_tensor *x = cg_random_normal(CG_F64, 1, shape, 0, 1, 9);
  fail_each_allocation(second_derivative, x, "second derivative");
}

typedef struct {
  cg_graph *g;
  cg_tensor *x, *grad, *value;
} graph_fixture;

static cg_status graph_run(void *arg)
{
  graph_fixture *f = arg;
  cg_scope s = cg_scope_begin();
  if (s < 0) return cg_last_status();
  cg_feed feed = {f->x, f->value};
  cg_tensor *out;
  cg_graph_set_options(f->g, CG_GRAPH_CSE); /* drops compiled plans: the run plans again */
  cg_status st = cg_graph_run(f->g, &feed, 1, &f->grad, 1, &out);
  cg_scope_end(s);
  return st;
}

static void every_allocation_of_a_graph_run(void **state)
{
  graph_fixture f = {.g = cg_graph_new()};
  cg_graph_enter(f.g);
  int64_t shape[2] = {-1, 3}, concrete[2] = {2, 3};
  f.x = cg_placeholder(CG_F64, 2, shape, "x");
  cg_tensor *y = cg_mean(cg_tanh(cg_mul(f.x, f.x)), NULL, 0, 0);
  cg_graph_exit(f.g);
  assert_int_equal(cg_gradients(&y, 1, &f.x, 1, NULL, &f.grad, NULL), CG_OK);
  f.value = cg_random_normal(CG_F64, 2, concrete, 0, 1, 2);
  fail_each_allocation(graph_run, &f, "graph run");
  cg_graph_free(f.g);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(every_allocation_of_a_training_step),
      cgt_test(every_allocation_of_building_a_model),
      cgt_test(every_allocation_of_a_gradient_computation),
      cgt_test(every_allocation_of_a_graph_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

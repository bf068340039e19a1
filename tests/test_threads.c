/* test_threads.c - thread safety (issue 6): two threads train separate models (Dense layers,
 * Adam, a fixed batch) at once and must get bit for bit what each gets alone; many threads
 * look ops and gradients up, call them and differentiate them while another registers new
 * ones; and what belongs to a thread (last error, scopes, tapes, overrides, the entered
 * graph) stays with it. Meant to pass under ThreadSanitizer as well. */
#include "util.h"
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

/* ======================================================================================
 * Training on two threads at once
 * ==================================================================================== */

/* big enough that matmuls (over 2 MFLOP) and element-wise ops (over 65536 elements) are
 * split over the kernels' thread pool, which both training threads then share; small
 * enough for ThreadSanitizer (2 s) and valgrind (20 s) */
enum { BATCH = 256, IN = 32, HIDDEN = 272, CLASSES = 5, STEPS = 6, MAX_PARAMS = 12288 };

typedef struct {
  uint64_t seed;            /* of the model and the data                          */
  float params[MAX_PARAMS]; /* every variable's values after training, in order    */
  int n_params;
  float losses[STEPS];
  cg_status status;
  char error[256];
} training_run;

/* An MLP (Dense relu, Dense) trained with Adam on one fixed batch; everything from seed. */
static void train(training_run *r)
{
  cg_scope scope = cg_scope_begin();
  cg_layer *model = cg_sequential("mlp");
  cg_sequential_add(model, cg_dense_layer("hidden", IN, HIDDEN, CG_ACT_RELU, r->seed));
  cg_sequential_add(model, cg_dense_layer("logits", HIDDEN, CLASSES, CG_ACT_NONE, r->seed + 1));
  cg_optimizer *adam = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM, .lr = 1e-2});
  cg_tensor *x = cg_random_normal(CG_F32, 2, (int64_t[]){BATCH, IN}, 0, 1, r->seed + 2);
  cg_tensor *labels = cg_cast(cg_random_uniform(CG_F64, 1, (int64_t[]){BATCH}, 0, CLASSES, r->seed + 3),
                              CG_I64);
  cg_var *vars[8];
  int n_vars = cg_layer_variables(model, 1, vars, 8);
  cg_status st = model && adam && x && labels && n_vars == 4 ? CG_OK : CG_EINVAL;
  for (int step = 0; step < STEPS && st == CG_OK; step++) {
    cg_scope s = cg_scope_begin();
    cg_tape *tape = cg_tape_begin(0);
    cg_tensor *loss = cg_loss_sparse_softmax_xent(labels, cg_layer_forward(model, x, 1), CG_REDUCE_MEAN);
    cg_tape_end(tape);
    cg_tensor *values[8], *grads[8];
    for (int i = 0; i < n_vars; i++) values[i] = cg_var_read(vars[i]);
    st = loss ? cg_tape_gradient(tape, loss, values, n_vars, grads, NULL) : cg_last_status();
    if (st == CG_OK) st = cg_optimizer_apply_gradients(adam, grads, vars, n_vars);
    if (st == CG_OK) r->losses[step] = (float)cg_item(loss);
    cg_tape_free(tape);
    cg_scope_end(s);
  }
  r->n_params = 0;
  for (int i = 0; i < n_vars && st == CG_OK; i++) {
    const cg_tensor *v = cg_var_value(vars[i]);
    memcpy(r->params + r->n_params, cg_tensor_data(v), (size_t)cg_tensor_size(v) * sizeof(float));
    r->n_params += (int)cg_tensor_size(v);
  }
  r->status = st;
  snprintf(r->error, sizeof r->error, "%s", cg_last_error());
  cg_optimizer_free(adam);
  cg_layer_free(model);
  cg_scope_end(scope);
}

static void *train_thread(void *arg)
{
  train(arg);
  return NULL;
}

static void two_threads_train_bit_exactly(void **state)
{
  static training_run alone[2], together[2]; /* static: 48 KB each */
  for (int i = 0; i < 2; i++) {
    alone[i] = (training_run){.seed = 100 + 10 * (uint64_t)i};
    together[i] = alone[i];
    train(&alone[i]);
    assert_int_equal(alone[i].status, CG_OK);
    assert_int_equal(alone[i].n_params, IN * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES);
    assert_true(alone[i].losses[STEPS - 1] < alone[i].losses[0]); /* it learns */
  }
  assert_memory_not_equal(alone[0].params, alone[1].params, sizeof alone[0].params);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, train_thread, &together[i]), 0);
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  for (int i = 0; i < 2; i++) {
    if (together[i].status != CG_OK) fail_msg("thread %d: %s", i, together[i].error);
    assert_memory_equal(together[i].losses, alone[i].losses, sizeof alone[i].losses);
    assert_memory_equal(together[i].params, alone[i].params, sizeof alone[i].params);
  }
}

/* ======================================================================================
 * Registry reads from many threads while one thread registers
 * ==================================================================================== */

enum { READERS = 4, NEW_OPS = 64 };

/* ScaleK: y = (K+1) x (f64), gradient (K+1) dy; K is the op's user pointer. */
static cg_status scale_infer(cg_node *n) { return cg_infer_same_as_input(n, 0); }
static cg_status scale_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  double k = (double)(intptr_t)cg_node_op_user(n) + 1, *y = cg_tensor_data(cg_node_output(n, 0));
  for (int64_t i = 0; i < cg_tensor_size(x); i++) y[i] = k * ((const double *)cg_tensor_data(x))[i];
  return CG_OK;
}
static cg_status scale_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_scalar_like(dy[0], (double)(intptr_t)user + 1));
  return cg_status_of(dx[0]);
}

static int ready; /* ops 0 .. ready-1 are registered with their gradients (release/acquire) */
static int seen;  /* the latest `ready` a reader has finished a round with */

typedef struct {
  int id;
  long calls, checked;
  char failure[256];
} reader;

static void reader_fail(reader *r, const char *what)
{
  if (!r->failure[0]) snprintf(r->failure, sizeof r->failure, "%s (%s)", what, cg_last_error());
}

/* Looks ops up and walks the registry, and calls and differentiates the registered ScaleK
 * ops, until the registering thread is done. */
static void *read_registry(void *arg)
{
  reader *r = arg;
  cg_scope scope = cg_scope_begin();
  cg_tensor *x = cg_scalar(CG_F64, 1.5);
  for (int round = 0;; round++) {
    int n = __atomic_load_n(&ready, __ATOMIC_ACQUIRE);
    cg_scope s = cg_scope_begin();
    if (!cg_find_op("Tanh") || !cg_has_gradient("MatMul")) reader_fail(r, "a built-in op is missing");
    int count = cg_op_count();
    const cg_op_def *def = cg_op_at((round * 7 + r->id) % count);
    if (!def || !def->name || !def->name[0]) reader_fail(r, "cg_op_at");
    char name[32];
    snprintf(name, sizeof name, "Scale%d", (round + r->id) % NEW_OPS);
    const cg_op_def *maybe = cg_find_op(name); /* registered or not yet: never torn */
    if (maybe && strcmp(maybe->name, name) != 0) reader_fail(r, "cg_find_op returned another op");
    cg_clear_error();
    if (n > 0) {
      int k = (round * 13 + r->id) % n;
      snprintf(name, sizeof name, "Scale%d", k);
      cg_tape *tape = cg_tape_begin(0);
      cg_tape_watch(tape, x);
      cg_tensor *y = cg_call(name, &x, 1, NULL), *dx = NULL;
      cg_tape_end(tape);
      if (!y || cg_item(y) != 1.5 * (k + 1)) reader_fail(r, "a registered op gave the wrong value");
      else if (cg_tape_gradient(tape, y, &x, 1, &dx, NULL) != CG_OK || cg_item(dx) != k + 1)
        reader_fail(r, "a registered gradient gave the wrong value");
      cg_tape_free(tape);
      r->checked++;
    }
    r->calls++;
    cg_scope_end(s);
    __atomic_store_n(&seen, n, __ATOMIC_RELEASE);
    sched_yield(); /* let the registering thread go on (2 cores, 5 threads) */
    if (n == NEW_OPS && round > 200) break;
  }
  cg_scope_end(scope);
  return NULL;
}

static void registry_reads_while_registering(void **state)
{
  reader readers[READERS] = {{0}};
  pthread_t t[READERS];
  for (int i = 0; i < READERS; i++) {
    readers[i].id = i;
    assert_int_equal(pthread_create(&t[i], NULL, read_registry, &readers[i]), 0);
  }
  for (intptr_t k = 0; k < NEW_OPS; k++) {
    char name[32];
    snprintf(name, sizeof name, "Scale%d", (int)k);
    cg_op_def def = {.name = name, .n_inputs = 1, .infer = scale_infer, .run = scale_run, .user = (void *)k};
    assert_int_equal(cg_register_op(&def, 0), CG_OK);
    assert_int_equal(cg_register_gradient(name, scale_grad, (void *)k, 0), CG_OK);
    __atomic_store_n(&ready, (int)k + 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&seen, __ATOMIC_ACQUIRE) <= k) /* a read between every two registrations */
      sched_yield();
  }
  long calls = 0, checked = 0;
  for (int i = 0; i < READERS; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    if (readers[i].failure[0]) fail_msg("reader %d: %s", i, readers[i].failure);
    calls += readers[i].calls;
    checked += readers[i].checked;
  }
  assert_true(checked > 0);
  printf("registry: %d readers, %ld rounds, %ld calls of new ops checked\n", READERS, calls, checked);
}

/* ======================================================================================
 * What belongs to a thread stays there
 * ==================================================================================== */

typedef struct {
  cg_status status_seen;
  int scopes_seen, graph_seen, tape_recorded;
  double gradient;
} other_view;

static void *look_from_another_thread(void *arg)
{
  other_view *v = arg;
  v->status_seen = cg_last_status();
  v->graph_seen = cg_graph_current() != NULL;
  cg_scope s = cg_scope_begin();
  v->scopes_seen = s; /* 1: no scope of the other thread is visible */
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *x = cg_scalar(CG_F64, 3), *y, *dx;
  cg_tape_watch(tape, x);
  y = cg_square(x); /* the other thread's override of Square does not apply here */
  cg_tape_end(tape);
  v->tape_recorded = (int)cg_tape_num_records(tape);
  v->gradient = cg_tape_gradient(tape, y, &x, 1, &dx, NULL) == CG_OK ? cg_item(dx) : -1;
  cg_tape_free(tape);
  cg_scope_end(s);
  return NULL;
}

static cg_status unit_gradient(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_identity(dy[0]);
  return cg_status_of(dx[0]);
}

static void thread_state_stays_with_its_thread(void **state)
{
  assert_int_equal(cg_register_gradient("UnitGradient", unit_gradient, NULL, CG_REGISTER_REPLACE), CG_OK);
  cg_set_error(CG_EUSER, "this thread's error");
  cg_scope outer = cg_scope_begin();
  cg_tape *tape = cg_tape_begin(0);
  cg_graph *g = cg_graph_new();
  assert_int_equal(cg_graph_enter(g), CG_OK);
  assert_int_equal(cg_gradient_override_push("Square", "UnitGradient"), CG_OK);
  other_view v = {0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, look_from_another_thread, &v), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(v.status_seen, CG_OK);
  assert_int_equal(v.graph_seen, 0);
  assert_int_equal(v.scopes_seen, 1);
  assert_int_equal(v.tape_recorded, 1);
  assert_true(v.gradient == 6); /* 2x: the override stayed here */
  assert_int_equal(cg_last_status(), CG_EUSER);
  assert_string_equal(cg_last_error(), "this thread's error");
  cg_clear_error();
  assert_int_equal(cg_gradient_override_pop(), CG_OK);
  assert_int_equal(cg_graph_exit(g), CG_OK);
  cg_graph_free(g);
  assert_int_equal(cg_tape_num_records(tape), 0); /* nothing the other thread did */
  cg_tape_free(tape);
  assert_int_equal(cg_scope_end(outer), CG_OK);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(two_threads_train_bit_exactly),
      cgt_test(registry_reads_while_registering),
      cgt_test(thread_state_stays_with_its_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* bad_input.h - what the bad-input audit programs (test_bad_input.c, test_bad_usage.c)
 * share: rows that assert a call fails with a given status and message and leaves the
 * thread's state (scopes, held references, tapes, pauses, overrides, graph, live tensors)
 * as it was; the fixtures each class starts from; and the check that they still work. */
#ifndef CG_TEST_BAD_INPUT_H
#define CG_TEST_BAD_INPUT_H

#include "util.h"
#include "core/internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A huge-but-valid allocation must fail with CG_ENOMEM, not abort an ASan build. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* ======================================================================================
 * Rows: a call that must fail, the status it must give and a piece of its message
 * ==================================================================================== */

typedef struct {
  int n_scopes, n_tapes, paused, n_overrides;
  long live; /* tensors alive in the process: a failed call leaves none behind */
  size_t n_held;
  struct cg_graph *graph;
  cg_collector *collector;
} thread_snapshot;

static int n_cases; /* rows checked so far, printed at the end */

static inline thread_snapshot snapshot(void)
{
  const cg_thread_state *s = cg__tls();
  cg_clear_error();
  return (thread_snapshot){s->n_scopes, s->n_tapes, s->paused, s->n_overrides, cg__live_tensors(),
                           s->n_held, s->graph, s->collector};
}

/* The thread state a failed call must leave alone: nothing handed to the scope, no tape,
 * pause, override or graph left behind. */
static inline void check_unchanged(const thread_snapshot *a, const char *call, int line)
{
  const cg_thread_state *s = cg__tls();
  thread_snapshot b = {s->n_scopes, s->n_tapes, s->paused, s->n_overrides, cg__live_tensors(),
                       s->n_held, s->graph, s->collector};
  if (a->n_scopes != b.n_scopes || a->n_tapes != b.n_tapes || a->paused != b.paused ||
      a->n_overrides != b.n_overrides || a->live != b.live || a->n_held != b.n_held ||
      a->graph != b.graph || a->collector != b.collector) {
    print_error("%s:%d: %s changed the thread state: scopes %d->%d, held %zu->%zu, tapes %d->%d, "
                "paused %d->%d, overrides %d->%d, graph %p->%p, live tensors %ld->%ld\n", __FILE__,
                line, call, a->n_scopes, b.n_scopes, a->n_held, b.n_held, a->n_tapes, b.n_tapes,
                a->paused, b.paused, a->n_overrides, b.n_overrides, (void *)a->graph,
                (void *)b.graph, a->live, b.live);
    _fail(__FILE__, line);
  }
}

static inline void row(bool failed, const thread_snapshot *before, const char *call,
                       cg_status code, const char *msg, int line)
{
  cg_status st = cg_last_status();
  const char *got = cg_last_error();
  if (!failed || st != code || !got[0] || (msg && !strstr(got, msg))) {
    print_error("%s:%d: %s\n  gave %s (%s) \"%s\"\n  expected %s containing \"%s\"\n", __FILE__,
                line, call, failed ? "failure" : "SUCCESS", cg_status_name(st), got,
                cg_status_name(code), msg ? msg : "");
    _fail(__FILE__, line);
  }
  check_unchanged(before, call, line);
  cg_clear_error();
  n_cases++;
}

/* call returns a pointer that must be NULL */
#define BAD_T(call, code, msg)                                   \
  do {                                                           \
    thread_snapshot s_ = snapshot();                             \
    const void *r_ = (const void *)(call);                       \
    row(r_ == NULL, &s_, #call, (code), (msg), __LINE__);        \
  } while (0)
/* call returns a cg_status that must be code */
#define BAD_S(call, code, msg)                                   \
  do {                                                           \
    thread_snapshot s_ = snapshot();                             \
    cg_status r_ = (call);                                       \
    row(r_ == (code), &s_, #call, (code), (msg), __LINE__);      \
  } while (0)
/* call returns a number that must equal bad (-1 and the like) */
#define BAD_N(call, bad, code, msg)                              \
  do {                                                           \
    thread_snapshot s_ = snapshot();                             \
    double r_ = (double)(call);                                  \
    row(r_ == (double)(bad), &s_, #call, (code), (msg), __LINE__); \
  } while (0)
/* a harmless call on bad input: returns the neutral value and sets no error */
#define QUIET(call, expected)                                    \
  do {                                                           \
    thread_snapshot s_ = snapshot();                             \
    double r_ = (double)(call);                                  \
    assert_true(r_ == (double)(expected));                       \
    assert_int_equal(cg_last_status(), CG_OK);                   \
    check_unchanged(&s_, #call, __LINE__);                       \
    n_cases++;                                                   \
  } while (0)

/* ======================================================================================
 * Fixtures and the "still works" check every class ends with
 * ==================================================================================== */

static cg_tensor *f32_23, *f64_23, *f32_34, *i64_2, *i32_2, *bool_3, *f32_s, *img;
static cg_var *var;
static cg_optimizer *adam;
static cg_layer *dense;

static inline void make_fixtures(void)
{
  int64_t s23[2] = {2, 3}, s34[2] = {3, 4}, s2[1] = {2}, s3[1] = {3}, s4[4] = {1, 4, 4, 2};
  f32_23 = cgt_f32(2, s23, (double[]){1, 2, 3, 4, 5, 6});
  f64_23 = cgt_f64(2, s23, (double[]){1, 2, 3, 4, 5, 6});
  f32_34 = cg_ones(CG_F32, 2, s34);
  i64_2 = cg_tensor_from(CG_I64, 1, s2, (int64_t[]){0, 2});
  i32_2 = cg_tensor_from(CG_I32, 1, s2, (int32_t[]){1, 0});
  bool_3 = cg_tensor_from(CG_BOOL, 1, s3, (uint8_t[]){1, 0, 1});
  f32_s = cg_scalar(CG_F32, 2);
  img = cg_random_uniform(CG_F32, 4, s4, -1, 1, 7);
  var = cg_var_new("w", f32_23, 1);
  adam = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM});
  dense = cg_dense_layer("d", 3, 4, CG_ACT_RELU, 1);
  assert_non_null(var);
  assert_non_null(adam);
  assert_non_null(dense);
}

static inline void free_fixtures(void)
{
  cg_var_free(var);
  cg_optimizer_free(adam);
  cg_layer_free(dense);
}

static int cases_at_setup;

static inline int setup(void **state)
{
  cases_at_setup = n_cases;
  cgt_setup(state);
  make_fixtures();
  return 0;
}

static inline int teardown(void **state)
{
  while (cg_graph_current()) cg_graph_exit(cg_graph_current()); /* a failed test may leave one */
  printf("  %d cases\n", n_cases - cases_at_setup);
  free_fixtures();
  return cgt_teardown(state);
}
#define class_test(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* After a class of failures: ops, tapes, variables, the optimizer and the layer all work. */
static inline void assert_still_works(void)
{
  cg_scope scope = cg_scope_begin();
  int64_t s24[2] = {2, 4}, s23[2] = {2, 3};
  cg_tensor *y = cg_matmul(f32_23, f32_34);
  assert_tensor(y, CG_F32, 2, s24, ((double[]){6, 6, 6, 6, 15, 15, 15, 15}), 0);
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *w = cg_var_read(var), *loss = cg_sum(cg_square(w), NULL, 0, 0), *dw;
  assert_int_equal(cg_tape_end(tape), CG_OK);
  assert_int_equal(cg_tape_gradient(tape, loss, &w, 1, &dw, NULL), CG_OK);
  assert_tensor(dw, CG_F32, 2, s23, ((double[]){2, 4, 6, 8, 10, 12}), 0);
  cg_tape_free(tape);
  int64_t before = cg_optimizer_iterations(adam);
  assert_int_equal(cg_optimizer_apply_gradients(adam, &dw, &var, 1), CG_OK);
  assert_int_equal(cg_optimizer_iterations(adam), before + 1);
  assert_true(cg_tensor_get(cg_var_value(var), 0) < 1); /* Adam moved it by about lr */
  int64_t s14[2] = {1, 4};
  assert_tensor(cg_layer_forward(dense, cg_slice(f32_23, (int64_t[]){0, 0}, (int64_t[]){1, 3}), 1),
                CG_F32, 2, s14, NULL, 0);
  assert_int_equal(cg_scope_end(scope), CG_OK);
  assert_int_equal(cg_last_status(), CG_OK);
}

/* A custom gradient without the optional parts. */
static inline cg_custom_def custom(const char *name, int n_in, int n_out, cg_forward_fn f,
                                   cg_backward_fn b, void *user)
{
  return (cg_custom_def){.name = name, .n_inputs = n_in, .n_outputs = n_out, .forward = f,
                         .backward = b, .user = user};
}

/* Callbacks that do the plain thing, for rows about something else. */
static inline cg_tensor *returns_null(cg_tensor *const *x, int n, void *user) { return NULL; }
static inline cg_status trace_nothing(cg_tensor *const *x, int nx, cg_tensor **y, int ny,
                                      void *user)
{
  y[0] = cg_identity(x[0]);
  return cg_status_of(y[0]);
}
static inline cg_status fwd_identity(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  return cg_status_of(y[0]);
}
static inline cg_status bwd_identity(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx,
                                     cg_tensor **dv)
{
  dx[0] = cg_identity(dy[0]);
  return cg_status_of(dx[0]);
}

#endif

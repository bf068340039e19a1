/* test_bad_usage.c - the rest of the bad-input audit (issue 6): user callbacks that break
 * their contract (gradient functions, custom forwards and backwards, shape rules, kernels,
 * traced and checked functions: failing, returning NULL, the wrong dtype or shape, or leaving
 * scopes, tapes, pauses, overrides or graphs behind), re-entrant misuse of tapes, scopes,
 * overrides, graphs, layers and the optimizer, and a sweep calling every registered op with
 * hostile inputs and attributes. Rows and fixtures are shared with test_bad_input.c. */
#include "bad_input.h"

/* ======================================================================================
 * Class 7: user callbacks that break their contract. One user op, "Twice" (y = 2x, f64),
 * whose registered gradient misbehaves as `grad_mode` says; custom gradients whose forward
 * or backward does; shape rules and kernels that fail.
 * ==================================================================================== */

typedef enum {
  GRAD_OK, GRAD_FAIL_SILENT, GRAD_FAIL_WITH_MESSAGE, GRAD_WRONG_DTYPE, GRAD_WRONG_SHAPE,
  GRAD_BROADCAST, GRAD_ENDS_OUTER_SCOPE
} grad_mode_t;
static grad_mode_t grad_mode;

static cg_status twice_infer(cg_node *n)
{
  if (cg_tensor_dtype(cg_node_input(n, 0)) != CG_F64)
    return cg_set_error(CG_EDTYPE, "Twice: only f64");
  return cg_infer_same_as_input(n, 0);
}
static cg_status twice_run(cg_node *n)
{
  const double *x = cg_tensor_data(cg_node_input(n, 0));
  double *y = cg_tensor_data(cg_node_output(n, 0));
  for (int64_t i = 0; i < cg_tensor_size(cg_node_output(n, 0)); i++) y[i] = 2 * x[i];
  return CG_OK;
}
static cg_status twice_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  switch (grad_mode) {
  case GRAD_OK: dx[0] = cg_mul(dy[0], cg_scalar_like(dy[0], 2)); return cg_status_of(dx[0]);
  case GRAD_FAIL_SILENT: return CG_EUSER;
  case GRAD_FAIL_WITH_MESSAGE: return cg_set_error(CG_EUSER, "Twice: my gradient is broken");
  case GRAD_WRONG_DTYPE: dx[0] = cg_cast(dy[0], CG_F32); return CG_OK;
  case GRAD_WRONG_SHAPE: dx[0] = cg_zeros(CG_F64, 1, (int64_t[]){5}); return CG_OK;
  case GRAD_BROADCAST: dx[0] = cg_ones(CG_F64, 3, (int64_t[]){4, 2, 3}); return CG_OK;
  case GRAD_ENDS_OUTER_SCOPE: return cg_scope_end(1);
  }
  return CG_OK;
}
static const cg_op_def twice = {.name = "Twice", .n_inputs = 1, .infer = twice_infer, .run = twice_run};

/* d/dx sum(Twice(x)) on a fresh tape: the status, and dx when it worked */
static cg_status twice_gradient(cg_tensor *x, cg_tensor **dx)
{
  cg_scope scope = cg_scope_begin();
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_sum(cg_call("Twice", &x, 1, NULL), NULL, 0, 0);
  cg_tape_end(tape);
  cg_status st = y ? cg_tape_gradient(tape, y, &x, 1, dx, NULL) : cg_last_status();
  if (st == CG_OK) cg_keep(*dx);
  cg_tape_free(tape);
  cg_scope_end(scope);
  return st;
}

/* shape rules and kernels that break the rules, selected by the op's user pointer */
static cg_status broken_infer(cg_node *n)
{
  const char *how = cg_node_op_user(n);
  const cg_tensor *x = cg_node_input(n, 0);
  if (!strcmp(how, "silent")) return CG_EINVAL;
  if (!strcmp(how, "no output")) return CG_OK;
  if (!strcmp(how, "gap")) return cg_node_set_output(n, 1, CG_F64, 0, NULL);
  if (!strcmp(how, "negative")) return cg_node_set_output(n, 0, CG_F64, 1, (int64_t[]){-4});
  if (!strcmp(how, "dtype")) return cg_node_set_output(n, 0, (cg_dtype)77, 0, NULL);
  if (!strcmp(how, "alias")) return cg_node_set_output_alias(n, 0, 0, 1, (int64_t[]){7});
  if (!strcmp(how, "alias input")) return cg_node_set_output_alias(n, 0, 3, 0, NULL);
  if (!strcmp(how, "slot")) return cg_node_set_output(n, CG_MAX_OUTPUTS, CG_F64, 0, NULL);
  return cg_node_set_output(n, 0, x->dtype, x->ndim, cg_tensor_shape(x));
}
static cg_status broken_run(cg_node *n)
{
  const char *how = cg_node_op_user(n);
  if (!strcmp(how, "run fails")) return CG_EIO;
  if (!strcmp(how, "run declares")) return cg_node_set_output(n, 0, CG_F64, 0, NULL);
  memset(cg_tensor_data(cg_node_output(n, 0)), 0, (size_t)cg_tensor_size(cg_node_output(n, 0)) * 8);
  return CG_OK;
}

static cg_status fwd_nothing(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y) { return CG_OK; }
static cg_status fwd_fails(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]); /* made, then abandoned: the scope must free it */
  return CG_EUSER;
}
static cg_status fwd_one_of_two(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  return CG_OK;
}
/* A custom forward (or backward) that leaves this thread's state changed, as user says. */
static cg_graph *stray_graph;
static cg_tape *stray_tape; /* the guard ends it; it is still the callback's to free */
static void leave_state_changed(const char *how)
{
  if (!strcmp(how, "scope")) cg_scope_begin();
  else if (!strcmp(how, "tape")) stray_tape = cg_tape_begin(0);
  else if (!strcmp(how, "pause")) cg_pause_recording();
  else if (!strcmp(how, "resume")) cg_resume_recording();
  else if (!strcmp(how, "override")) cg_gradient_override_push("Tanh", "Identity");
  else if (!strcmp(how, "graph")) cg_graph_enter(stray_graph);
}
static cg_status fwd_leaves_state(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  leave_state_changed(cg_ctx_user(ctx));
  return cg_status_of(y[0]);
}
static cg_status bwd_leaves_state(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  dx[0] = cg_identity(dy[0]);
  leave_state_changed(cg_ctx_user(ctx));
  return cg_status_of(dx[0]);
}
static cg_status trace_leaves_state(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_identity(x[0]);
  leave_state_changed(user);
  return cg_status_of(y[0]);
}
static cg_tensor *checked_fn_leaves_state(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *y = cg_square(x[0]);
  leave_state_changed(user);
  return y;
}

static cg_status fwd_reads_var(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_mul(x[0], cg_var_read(var));
  return cg_status_of(y[0]);
}
static cg_status bwd_by_mode(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  const char *how = cg_ctx_user(ctx);
  if (!strcmp(how, "fails")) return CG_EUSER;
  dv[0] = cg_zeros_like(cg_ctx_var(ctx, 0) ? cg_var_value(cg_ctx_var(ctx, 0)) : NULL);
  if (!strcmp(how, "dtype")) dx[0] = cg_cast(dy[0], CG_F64);
  else if (!strcmp(how, "shape")) dx[0] = cg_zeros(CG_F32, 1, (int64_t[]){3});
  else if (!strcmp(how, "no dvars")) {
    dx[0] = cg_identity(dy[0]);
    dv[0] = NULL;
  }
  else if (!strcmp(how, "dvars shape")) {
    dx[0] = cg_identity(dy[0]);
    dv[0] = cg_zeros(CG_F32, 1, (int64_t[]){2});
  }
  return CG_OK;
}

static cg_status trace_fails(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  return CG_EUSER;
}
static cg_status trace_leaves_output(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_identity(x[0]);
  return CG_OK; /* y[1] never written */
}

static void broken_callbacks(void **state)
{
  int64_t s23[2] = {2, 3};
  cg_tensor *x = f64_23, *dx = NULL, *out[2] = {NULL};
  assert_int_equal(cg_register_op(&twice, CG_REGISTER_REPLACE), CG_OK);
  assert_int_equal(cg_register_gradient("Twice", twice_grad, NULL, CG_REGISTER_REPLACE), CG_OK);

  grad_mode = GRAD_FAIL_SILENT;
  BAD_S(twice_gradient(x, &dx), CG_EUSER, "Twice: gradient function 'Twice' failed");
  grad_mode = GRAD_FAIL_WITH_MESSAGE;
  BAD_S(twice_gradient(x, &dx), CG_EUSER, "Twice: my gradient is broken");
  grad_mode = GRAD_WRONG_DTYPE;
  BAD_S(twice_gradient(x, &dx), CG_EUSER, "Twice: the gradient for input 0 has dtype f32, expected f64 (the input's)");
  grad_mode = GRAD_WRONG_SHAPE;
  BAD_S(twice_gradient(x, &dx), CG_EUSER, "Twice: the gradient for input 0 has shape [5], expected [2,3] (the input's)");
  grad_mode = GRAD_ENDS_OUTER_SCOPE;
  BAD_S(twice_gradient(x, &dx), CG_ESTATE, "cg_scope_end: scope 1 is not the innermost open scope");
  grad_mode = GRAD_BROADCAST; /* a gradient of a shape that broadcasts to x's is summed back */
  assert_int_equal(twice_gradient(x, &dx), CG_OK);
  assert_tensor(dx, CG_F64, 2, s23, ((double[]){4, 4, 4, 4, 4, 4}), 0);
  grad_mode = GRAD_OK;
  assert_int_equal(twice_gradient(x, &dx), CG_OK);
  assert_tensor(dx, CG_F64, 2, s23, ((double[]){2, 2, 2, 2, 2, 2}), 0);

  /* shape rules and kernels */
  static const char *const hows[] = {"silent", "no output", "gap", "negative", "dtype", "alias",
                                     "alias input", "slot", "run fails", "run declares"};
  static const char *const want[] = {
      "Broken_silent: shape rule failed", "Broken_no output: shape rule declared no output",
      "Broken_gap: shape rule declared output 1 but not output 0", "Broken_negative: negative dimension in shape [-4]",
      "Broken_dtype: output 0 has unknown dtype 77", "Broken_alias: a view of shape [7] cannot show input 0 of shape [2,3]",
      "Broken_alias input: output 0 aliases input 3 of 1", "Broken_slot: output 16 is outside 0..15",
      "Broken_run fails: kernel failed", "cg_node_set_output: only a shape rule may declare outputs"};
  static const cg_status codes[] = {CG_EINVAL, CG_EINVAL, CG_EINVAL, CG_EINVAL, CG_EDTYPE,
                                    CG_ESHAPE, CG_ERANGE, CG_ERANGE, CG_EIO, CG_ESTATE};
  for (size_t i = 0; i < sizeof hows / sizeof hows[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "Broken_%s", hows[i]);
    cg_op_def def = {.name = name, .n_inputs = 1, .infer = broken_infer, .run = broken_run,
                     .user = (void *)hows[i]};
    assert_int_equal(cg_register_op(&def, CG_REGISTER_REPLACE), CG_OK);
    BAD_T(cg_call(name, &x, 1, NULL), codes[i], want[i]);
  }

  /* custom gradients */
  cg_tensor *a = f32_23;
  cg_custom_def nothing = custom("Nothing", 1, 1, fwd_nothing, bwd_identity, NULL);
  BAD_S(cg_custom_gradient(&nothing, &a, out), CG_EUSER, "Nothing: custom forward returned no tensor for output 0 of 1");
  cg_custom_def fails = custom("Fails", 1, 1, fwd_fails, bwd_identity, NULL);
  BAD_S(cg_custom_gradient(&fails, &a, out), CG_EUSER, "Fails: custom forward failed (status CG_EUSER)");
  cg_custom_def half = custom("Half", 1, 2, fwd_one_of_two, bwd_identity, NULL);
  BAD_S(cg_custom_gradient(&half, &a, out), CG_EUSER, "Half: custom forward returned no tensor for output 1 of 2");
  assert_null(out[0]);
  struct { const char *how; cg_status code; const char *msg; } backward_rows[] = {
      {"fails", CG_EUSER, "ByMode: custom backward failed (status CG_EUSER)"},
      {"dtype", CG_EUSER, "ByMode: the gradient for input 0 has dtype f64, expected f32 (the input's)"},
      {"shape", CG_EUSER, "ByMode: the gradient for input 0 has shape [3], expected [2,3] (the input's)"},
      {"no dvars", CG_EUSER, "ByMode: custom backward gave no gradient for variable 'w' (variable 0 of 1 read "
                             "in the forward): fill dvars[0]"},
      {"dvars shape", CG_EUSER, "ByMode: the gradient for input 1 has shape [2], expected [2,3]"},
  };
  for (size_t i = 0; i < sizeof backward_rows / sizeof backward_rows[0]; i++) {
    cg_custom_def def = custom("ByMode", 1, 1, fwd_reads_var, bwd_by_mode, (void *)backward_rows[i].how);
    cg_tape *tape = cg_tape_begin(0);
    cg_tape_watch(tape, a);
    assert_int_equal(cg_custom_gradient(&def, &a, out), CG_OK);
    cg_tensor *loss = cg_sum(out[0], NULL, 0, 0), *grads[2];
    cg_tape_end(tape);
    cg_tensor *w = cg_var_value(var);
    BAD_S(cg_tape_gradient(tape, loss, ((cg_tensor *[]){a, w}), 2, grads, NULL), backward_rows[i].code,
          backward_rows[i].msg);
    cg_tape_free(tape);
  }

  /* callbacks that leave the thread's state changed: undone, and reported */
  stray_graph = cg_graph_new();
  struct { const char *how, *msg; } leave_rows[] = {
      {"scope", "left a scope open"},
      {"tape", "left a tape recording"},
      {"pause", "left recording paused"},
      {"resume", "resumed recording it did not pause"},
      {"override", "left a gradient override pushed"},
      {"graph", "left a graph entered"},
  };
  for (size_t i = 0; i < sizeof leave_rows / sizeof leave_rows[0]; i++) {
    const char *how = leave_rows[i].how;
    char want[128];
    cg_custom_def leaves = custom("Leaves", 1, 1, fwd_leaves_state, bwd_identity, (void *)how);
    snprintf(want, sizeof want, "Leaves: the custom forward %s", leave_rows[i].msg);
    BAD_S(cg_custom_gradient(&leaves, &a, out), CG_EUSER, want);
    cg_tape_free(stray_tape);
    stray_tape = NULL;
    cg_custom_def back = custom("Back", 1, 1, fwd_identity, bwd_leaves_state, (void *)how);
    cg_scope scope = cg_scope_begin();
    cg_tape *tape = cg_tape_begin(0);
    cg_tape_watch(tape, a);
    assert_int_equal(cg_custom_gradient(&back, &a, out), CG_OK);
    cg_tensor *loss = cg_sum(out[0], NULL, 0, 0);
    cg_tape_end(tape);
    snprintf(want, sizeof want, "Back: the custom backward %s", leave_rows[i].msg);
    bool unpaused_fine = !strcmp(how, "resume"); /* only a custom forward runs paused */
    if (!unpaused_fine)
      BAD_S(cg_tape_gradient(tape, loss, &a, 1, &dx, NULL), CG_EUSER, want);
    cg_tape_free(stray_tape);
    stray_tape = NULL;
    cg_tape_free(tape);
    cg_scope_end(scope);
    snprintf(want, sizeof want, "traced: the traced function %s", leave_rows[i].msg);
    if (!unpaused_fine)
      BAD_T(cg_function_trace("traced", trace_leaves_state, (void *)how, &a, 1, 1), CG_EUSER, want);
    cg_tape_free(stray_tape);
    stray_tape = NULL;
    if (!unpaused_fine)
      BAD_S(cg_gradcheck(checked_fn_leaves_state, (void *)how, &x, 1, NULL, NULL), CG_EUSER,
            leave_rows[i].msg);
    cg_tape_free(stray_tape);
    stray_tape = NULL;
  }
  cg_graph_free(stray_graph);

  /* traced functions, gradient checking and op libraries */
  BAD_T(cg_function_trace("f", trace_fails, NULL, &a, 1, 1), CG_EUSER, "f");
  BAD_T(cg_function_trace("g", trace_leaves_output, NULL, &a, 1, 2), CG_EUSER, "g");
  BAD_S(cg_gradcheck(returns_null, NULL, &x, 1, NULL, NULL), CG_EUSER, "gradient check: the function returned NULL");
  cg_tensor *jt, *jn;
  BAD_S(cg_compute_gradient(returns_null, NULL, &x, 1, 0, &jt, &jn), CG_EUSER, "the function returned NULL");
  BAD_S(cg_load_op_library("/nonexistent/libnothing.so"), CG_EIO, "cg_load_op_library");
  BAD_S(cg_load_op_library("/etc/hostname"), CG_EIO, "cg_load_op_library");
  BAD_S(cg_load_op_library("libm.so.6"), CG_ENOTFOUND, "has no cg_op_library_init");

  assert_still_works();
}

/* ======================================================================================
 * Class 8: re-entrant misuse and objects used in the wrong state
 * ==================================================================================== */

static void misuse(void **state)
{
  cg_tensor *a = f32_23, *out[2] = {NULL}, *dw;

  /* tapes */
  cg_tape *outer = cg_tape_begin(0), *inner = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tensor *w = cg_var_read(var), *y = cg_sum(cg_square(w), NULL, 0, 0);
  BAD_S(cg_tape_end(outer), CG_ESTATE, "cg_tape_end: tapes end in reverse order of beginning");
  assert_int_equal(cg_tape_end(inner), CG_OK);
  BAD_S(cg_tape_end(inner), CG_ESTATE, "cg_tape_end: the tape has already ended");
  assert_int_equal(cg_tape_end(outer), CG_OK);
  BAD_S(cg_tape_end(outer), CG_ESTATE, "cg_tape_end: the tape has already ended");
  assert_int_equal(cg_tape_gradient(outer, y, &w, 1, &dw, NULL), CG_OK);
  BAD_S(cg_tape_gradient(outer, y, &w, 1, &dw, NULL), CG_ESTATE, "this tape has already given its gradients");
  BAD_T(cg_tape_jacobian(outer, y, w), CG_ESTATE, "this tape has already given its gradients");
  assert_int_equal(cg_tape_gradient(inner, y, &w, 1, &dw, NULL), CG_OK); /* persistent: again */
  assert_int_equal(cg_tape_gradient(inner, y, &w, 1, &dw, NULL), CG_OK);
  assert_tensor(dw, CG_F32, 2, cg_tensor_shape(a), ((double[]){2, 4, 6, 8, 10, 12}), 0);
  cg_tape_free(inner);
  cg_tape_free(outer);
  BAD_S(cg_resume_recording(), CG_ESTATE, "cg_resume_recording: recording is not paused");

  /* scopes */
  cg_scope s1 = cg_scope_begin(), s2 = cg_scope_begin();
  BAD_S(cg_scope_end(s1), CG_ESTATE, "cg_scope_end: scope");
  assert_int_equal(cg_scope_end(s2), CG_OK);
  BAD_S(cg_scope_end(s2), CG_ESTATE, "is not the innermost open scope");
  BAD_S(cg_scope_end(0), CG_ESTATE, "cg_scope_end: scope 0");
  BAD_S(cg_scope_end(-1), CG_ESTATE, "cg_scope_end: scope -1");
  BAD_S(cg_scope_end(1000), CG_ESTATE, "cg_scope_end: scope 1000");
  assert_int_equal(cg_scope_end(s1), CG_OK);

  /* overrides */
  BAD_S(cg_gradient_override_pop(), CG_ESTATE, "cg_gradient_override_pop: the override stack is empty");
  assert_int_equal(cg_gradient_override_push("Square", "NoSuchGradient"), CG_OK);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, a);
  y = cg_square(a);
  cg_tape_end(tape);
  assert_int_equal(cg_gradient_override_pop(), CG_OK);
  BAD_S(cg_gradient_override_pop(), CG_ESTATE, "the override stack is empty");
  BAD_S(cg_tape_gradient(tape, y, &a, 1, &dw, NULL), CG_ENOGRAD,
        "Square: no gradient is registered under the name 'NoSuchGradient'");
  cg_tape_free(tape);

  /* graphs */
  cg_graph *g = cg_graph_new(), *h = cg_graph_new();
  BAD_S(cg_graph_exit(g), CG_ESTATE, "cg_graph_exit: this graph is not the one entered on this thread");
  BAD_T(cg_placeholder(CG_F32, 0, NULL, "p"), CG_ESTATE, "cg_placeholder: no graph is entered");
  assert_int_equal(cg_graph_enter(g), CG_OK);
  cg_tensor *p = cg_placeholder(CG_F32, 1, (int64_t[]){2}, "p"), *q = cg_neg(p);
  BAD_T(cg_placeholder(CG_F32, 1, (int64_t[]){-2}, "bad"), CG_EINVAL, "cg_placeholder: dimension 0 of [-2] is -2");
  BAD_T(cg_placeholder(CG_F32, 3, (int64_t[]){INT64_MAX, -1, 2}, "huge"), CG_ENOMEM,
        "cg_placeholder: shape [9223372036854775807,1,2] has too many elements");
  assert_int_equal(cg_graph_enter(h), CG_OK);
  BAD_S(cg_graph_exit(g), CG_ESTATE, "not the one entered");
  BAD_T(cg_neg(p), CG_ESTATE, "Neg: input 0 belongs to another graph");
  BAD_S(cg_graph_enter(g), CG_ESTATE, "cg_graph_enter: the graph is already entered beneath another graph");
  assert_int_equal(cg_graph_exit(h), CG_OK);
  assert_int_equal(cg_graph_exit(g), CG_OK);
  BAD_S(cg_graph_exit(g), CG_ESTATE, "not the one entered");
  BAD_T(cg_neg(q), CG_ESTATE, "Neg: input 0 is a symbolic tensor of a graph");
  BAD_N(isnan(cg_tensor_get(q, 0)), 1, CG_ESTATE, "cg_tensor_get: a symbolic (graph) tensor has no values");
  BAD_T(cg_var_new("s", q, 1), CG_EINVAL, "cg_var_new: the initial value is a symbolic graph tensor");
  BAD_S(cg_var_assign(var, p), CG_EINVAL, "cg_var_assign: the value is a symbolic graph tensor");
  cg_graph_enter(g);
  cg_tensor *sym23 = cg_placeholder(CG_F32, 2, (int64_t[]){2, 3}, "g23");
  cg_graph_exit(g);
  BAD_S(cg_optimizer_apply_gradients(adam, &sym23, &var, 1), CG_EINVAL, "Adam: gradient for 'w' is a symbolic graph tensor");
  BAD_S(cg_optimizer_set_state(adam, 1, (const char *[]){"w/m"}, &sym23, 1), CG_EINVAL,
        "Adam: slot 'w/m' is a symbolic graph tensor");
  BAD_S(cg_clip_by_global_norm(&sym23, 1, 1, out, NULL), CG_EINVAL, "cg_clip_by_global_norm: gradient 0 is a symbolic graph tensor");
  BAD_N(cg_accuracy(sym23, i64_2), -1, CG_ESTATE, "ArgMax: input 0 is a symbolic tensor");
  BAD_S(cg_safetensors_save("/tmp/x", (const char *[]){"s"}, &sym23, 1, NULL, NULL, 0), CG_EINVAL,
        "tensor 's' is a symbolic graph tensor");
  cg_feed feeds[2] = {{p, cg_zeros(CG_F32, 1, (int64_t[]){2})}, {p, cg_zeros(CG_F32, 1, (int64_t[]){2})}};
  BAD_S(cg_graph_run(g, feeds, 2, &q, 1, out), CG_EINVAL, "cg_graph_run: placeholder 'p' is fed twice");
  cg_graph_enter(h);
  cg_tensor *in_h = cg_placeholder(CG_F32, 1, (int64_t[]){2}, "in_h");
  cg_graph_exit(h);
  BAD_S(cg_graph_run(g, &(cg_feed){in_h, feeds[0].value}, 1, &q, 1, out), CG_EINVAL, "feed 0 is not a tensor of this graph");
  cg_tensor *three = cg_zeros(CG_F32, 1, (int64_t[]){3});
  BAD_S(cg_graph_run(g, &(cg_feed){q, three}, 1, &q, 1, out), CG_ESHAPE,
        "cg_graph_run: output 0 of Neg has shape [2] but was fed [3]");
  BAD_S(cg_graph_run(h, feeds, 1, &q, 1, out), CG_EINVAL, "cg_graph_run: fetch 0 belongs to another graph");
  BAD_S(cg_graph_run(g, &(cg_feed){p, q}, 1, &q, 1, out), CG_EINVAL, "the value fed to placeholder 'p' is symbolic");
  BAD_S(cg_graph_run(g, NULL, 0, &q, 1, out), CG_EINVAL, "p");
  BAD_S(cg_graph_set_options(g, 0x80), CG_EINVAL, "cg_graph_set_options: unknown option bits 0x80");
  BAD_S(cg_gradients(&a, 1, &a, 1, NULL, out, NULL), CG_EINVAL, "cg_gradients: ys[0] is not a graph tensor");
  assert_int_equal(cg_graph_run(g, feeds, 1, &q, 1, out), CG_OK); /* g still runs */
  assert_tensor(out[0], CG_F32, 1, (int64_t[]){2}, ((double[]){0, 0}), 0);

  /* freeing a graph that is entered beneath another leaves the stack consistent */
  cg_graph_enter(g);
  cg_graph_enter(h);
  cg_graph_free(g);
  assert_ptr_equal(cg_graph_current(), h);
  assert_int_equal(cg_graph_exit(h), CG_OK);
  assert_null(cg_graph_current());
  cg_graph_free(h);

  /* layers */
  cg_layer *seq = cg_sequential("seq"), *inner_seq = cg_sequential("inner");
  cg_layer *d1 = cg_dense_layer("a", 3, 3, CG_ACT_NONE, 1), *d2 = cg_dense_layer("a", 3, 3, CG_ACT_NONE, 2);
  assert_int_equal(cg_sequential_add(seq, d1), CG_OK);
  BAD_S(cg_sequential_add(seq, d1), CG_ESTATE, "cg_sequential_add: layer 'a' already belongs to 'seq'");
  BAD_S(cg_sequential_add(seq, seq), CG_EINVAL, "cg_sequential_add: adding 'seq' to 'seq' makes a cycle");
  BAD_S(cg_sequential_add(d1, d2), CG_EINVAL, "cg_sequential_add: 'a' is a Dense, not a Sequential");
  BAD_S(cg_sequential_add(seq, d2), CG_EEXIST, "variable 'a/kernel' of layer 'a' is already in 'seq'");
  assert_int_equal(cg_sequential_add(seq, inner_seq), CG_OK);
  BAD_S(cg_sequential_add(inner_seq, seq), CG_EINVAL, "cg_sequential_add: adding 'seq' to 'inner' makes a cycle");
  BAD_S((cg_layer_free(d1), cg_last_status()), CG_ESTATE, "cg_layer_free: layer 'a' belongs to 'seq', which frees it");
  assert_tensor(cg_layer_forward(seq, f32_23, 0), CG_F32, 2, cg_tensor_shape(f32_23), NULL, 0);
  cg_layer_free(seq);
  cg_layer_free(d2);

  /* the optimizer */
  cg_var *frozen = cg_var_new("frozen", a, 0);
  BAD_S(cg_optimizer_apply_gradients(adam, &a, &frozen, 1), CG_EINVAL, "Adam: variable 'frozen' is not trainable");
  BAD_S(cg_optimizer_apply_gradients(adam, ((cg_tensor *[]){a, a}), ((cg_var *[]){var, var}), 2), CG_EINVAL,
        "Adam: variables 0 and 1 are both named 'w'");
  BAD_S(cg_optimizer_set_state(adam, 1, (const char *[]){"w/velocity"}, &a, 1), CG_EINVAL,
        "Adam: slot 'w/velocity' is not '<variable>/<slot>' with a slot this optimizer keeps (m, v)");
  BAD_S(cg_checkpoint_save("/tmp/x", ((cg_var *[]){var, var}), 2, NULL, NULL, NULL, 0), CG_EINVAL,
        "cg_checkpoint_save: variables 0 and 1 are both named 'w'");
  BAD_S(cg_checkpoint_save("/tmp/x", &var, 1, adam, (const char *[]){"optimizer_iterations"},
                           (const char *[]){"5"}, 1), CG_EINVAL, "metadata key 'optimizer_iterations' is kept");
  BAD_S(cg_checkpoint_restore("/nonexistent/ckpt", &var, 1, adam), CG_EIO, "/nonexistent/ckpt");
  cg_var_free(frozen);

  assert_still_works();
}

/* ======================================================================================
 * Class 9: every registered op, called by name with every combination of hostile inputs
 * (empty, scalar, rank 8, wrong dtypes, indices out of range, NULL), hostile attributes and
 * the wrong arity, eagerly under a tape (then differentiated when the call succeeds) and as
 * graph nodes with unknown dimensions. A call may succeed; if it fails, the message must be
 * there and the thread state untouched. Nothing may crash, trip a sanitizer or leak.
 * ==================================================================================== */

enum { POOL = 9, VARIANTS = 4 };

static void hostile_attrs(cg_attrs v[VARIANTS])
{
  const int64_t max = INT64_MAX, min = INT64_MIN;
  memset(v, 0, VARIANTS * sizeof *v);
  /* 0: no attributes at all (required ones are missing) */
  cg_attrs_set_int(&v[1], "axis", min);
  cg_attrs_set_ints(&v[1], "axes", (int64_t[]){5, 5, -9}, 3);
  cg_attrs_set_ints(&v[1], "perm", (int64_t[]){0, 0}, 2);
  cg_attrs_set_ints(&v[1], "shape", (int64_t[]){-3, 2}, 2);
  cg_attrs_set_int(&v[1], "depth", -1);
  cg_attrs_set_int(&v[1], "dtype", 42);
  cg_attrs_set_int(&v[1], "num_segments", -5);
  cg_attrs_set_int(&v[1], "num", max);
  cg_attrs_set_ints(&v[2], "strides", (int64_t[]){0, max}, 2);
  cg_attrs_set_ints(&v[2], "ksize", (int64_t[]){max, 0}, 2);
  cg_attrs_set_int(&v[2], "padding", 7);
  cg_attrs_set_ints(&v[2], "dilations", (int64_t[]){-1, max}, 2);
  cg_attrs_set_ints(&v[2], "input_shape", (int64_t[]){max, max, 1, 1}, 4);
  cg_attrs_set_ints(&v[2], "filter_shape", (int64_t[]){-1, 1, 1, 1}, 4);
  cg_attrs_set_ints(&v[2], "multiples", (int64_t[]){max, 2, max, max, 1, 1, 1, 1}, 8);
  cg_attrs_set_ints(&v[2], "paddings", (int64_t[]){max, 0, 0, min, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 16);
  cg_attrs_set_float(&v[3], "axis", 1e300);
  cg_attrs_set_ints(&v[3], "begin", (int64_t[]){max, -1, 0, 0, 0, 0, 0, 0}, 8);
  cg_attrs_set_ints(&v[3], "size", (int64_t[]){-1, min, -1, -1, -1, -1, -1, -1}, 8);
  cg_attrs_set_ints(&v[3], "sizes", (int64_t[]){max, max}, 2);
  cg_attrs_set_float(&v[3], "alpha", NAN);
  cg_attrs_set_int(&v[3], "transpose_a", min);
  cg_attrs_set_float(&v[3], "on", -INFINITY);
  cg_attrs_set_float(&v[3], "depth", 1e19);
}

/* d sum(y) / d inputs under the tape that recorded the call; must work or fail cleanly. */
static void differentiate(cg_tape *tape, cg_tensor *y, cg_tensor *const *in, int k, const char *op)
{
  if (!cg_dtype_is_float(cg_tensor_dtype(y))) return;
  cg_tensor *grads[3], *target = cg_sum(y, NULL, 0, 0);
  cg_status st = target ? cg_tape_gradient(tape, target, in, k, grads, NULL) : cg_last_status();
  if (st != CG_OK && (!cg_last_error()[0] || st != cg_last_status())) {
    print_error("%s: gradient failed without a message (%s)\n", op, cg_status_name(st));
    fail();
  }
  cg_clear_error();
}

static long sweep_succeeded; /* calls that worked (the rest failed cleanly) */

static long sweep_call(const cg_op_def *def, cg_tensor *const *in, int k, const cg_attrs *attrs,
                       bool tape_on)
{
  thread_snapshot before = snapshot();
  cg_scope scope = cg_scope_begin();
  cg_tape *tape = tape_on ? cg_tape_begin(0) : NULL;
  for (int i = 0; tape && i < k; i++)
    if (in[i]) cg_tape_watch(tape, in[i]);
  cg_tensor *out[CG_MAX_OUTPUTS];
  int n_out = -1;
  cg_status st = cg_call_n(def->name, in, k, attrs, out, CG_MAX_OUTPUTS, &n_out);
  if (tape) cg_tape_end(tape);
  if (st == CG_OK) {
    sweep_succeeded++;
    assert_true(n_out >= 1);
    for (int i = 0; i < n_out; i++) assert_non_null(out[i]);
    assert_int_equal(cg_last_status(), CG_OK);
    if (tape) differentiate(tape, out[0], in, k, def->name);
  } else if (st != cg_last_status() || !cg_last_error()[0]) {
    print_error("%s with %d inputs: %s but the last error is %s \"%s\"\n", def->name, k,
                cg_status_name(st), cg_status_name(cg_last_status()), cg_last_error());
    fail();
  }
  cg_tape_free(tape);
  assert_int_equal(cg_scope_end(scope), CG_OK);
  if (cg_graph_current()) before.live = cg__live_tensors(); /* the graph keeps its nodes' outputs */
  check_unchanged(&before, def->name, __LINE__);
  cg_clear_error();
  return 1;
}

/* Every combination of k inputs from pool (indices in idx), for one attribute variant. */
static long sweep_op(const cg_op_def *def, cg_tensor *const *pool, int k, const cg_attrs *attrs,
                     bool tape_on)
{
  long calls = 0;
  int idx[3] = {0, 0, 0};
  for (;;) {
    cg_tensor *in[3] = {pool[idx[0]], pool[idx[1]], pool[idx[2]]};
    calls += sweep_call(def, in, k, attrs, tape_on);
    int d = 0;
    while (d < k && ++idx[d] == POOL) idx[d++] = 0;
    if (d == k) return calls;
  }
}

static void every_op_against_hostile_inputs(void **state)
{
  int64_t s2[1] = {2}, s22[2] = {2, 2}, r8[8] = {1, 1, 1, 1, 1, 1, 1, 2};
  cg_tensor *pool[POOL] = {
      f32_s,
      f64_23,
      cg_zeros(CG_F32, 2, (int64_t[]){0, 3}),
      cg_tensor_from(CG_I64, 1, s2, (int64_t[]){5, -1}),
      bool_3,
      cg_ones(CG_F32, 8, r8),
      cg_tensor_from(CG_I32, 2, s22, (int32_t[]){INT32_MIN, INT32_MAX, 0, -1}),
      img,
      NULL,
  };
  cg_attrs variants[VARIANTS];
  hostile_attrs(variants);
  long calls = 0;
  int n_ops = cg_op_count();
  for (int o = 0; o < n_ops; o++) {
    const cg_op_def *def = cg_op_at(o);
    int lo = def->n_inputs >= 0 ? def->n_inputs : 1, hi = def->n_inputs >= 0 ? def->n_inputs : 3;
    if (hi > 3) continue; /* no built-in op takes more */
    for (int k = lo; k <= hi; k++)
      for (int v = 0; v < VARIANTS; v++) calls += sweep_op(def, pool, k, &variants[v], v == 0);
    if (def->n_inputs >= 0) { /* the wrong number of inputs */
      cg_tensor *in[4] = {f64_23, f64_23, f64_23, f64_23};
      BAD_S(cg_call_n(def->name, in, def->n_inputs + 1, NULL, NULL, 0, NULL), CG_EINVAL, "inputs, got");
    }
  }
  /* graph mode: the same ops as nodes, with placeholders of unknown dimensions in the pool */
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  pool[1] = cg_placeholder(CG_F64, 2, (int64_t[]){-1, 3}, "rows");
  pool[5] = cg_placeholder(CG_F32, 8, (int64_t[]){-1, -1, -1, -1, -1, -1, -1, -1}, "unknown8");
  pool[2] = cg_placeholder(CG_I64, 1, (int64_t[]){-1}, "ids");
  for (int o = 0; o < n_ops; o++) {
    const cg_op_def *def = cg_op_at(o);
    int lo = def->n_inputs >= 0 ? def->n_inputs : 1, hi = def->n_inputs >= 0 ? def->n_inputs : 3;
    for (int k = lo; k <= hi && k <= 3; k++) calls += sweep_op(def, pool, k, &variants[0], false);
  }
  cg_graph_exit(g);
  cg_graph_free(g);
  n_cases += (int)calls;
  printf("op sweep: %d ops, %ld calls, %ld succeeded\n", n_ops, calls, sweep_succeeded);
  assert_still_works();
}


int main(void)
{
  const struct CMUnitTest tests[] = {
      class_test(broken_callbacks),
      class_test(misuse),
      class_test(every_op_against_hostile_inputs),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  printf("bad-usage cases checked: %d\n", n_cases);
  return failed;
}

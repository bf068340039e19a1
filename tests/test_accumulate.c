/* test_accumulate.c - how the reverse walk sums a gradient that reaches a tensor from several
 * uses: as the parts arrive, into a sum of its own in place, when nothing records the walk;
 * with AddN (of up to 8 parts at a time) when a tape records it, a graph is built (a traced
 * function's gradient too) or numerics are checked. Both give the same bits, and a tensor
 * someone else can see (a part, a view's buffer, a total a hook kept, the result) is never
 * written. */
#include "util.h"
#include <math.h>
#include <string.h>

static void assert_same_bits(const cg_tensor *a, const cg_tensor *b)
{
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(cg_tensor_dtype(a), cg_tensor_dtype(b));
  assert_int_equal(cg_tensor_size(a), cg_tensor_size(b));
  size_t bytes = (size_t)cg_tensor_size(a) * cg_dtype_size(cg_tensor_dtype(a));
  assert_memory_equal(cg_tensor_data(a), cg_tensor_data(b), bytes);
}

/* W1's loop: h = tanh(h * w + b), n times: w and b get n parts each. */
static cg_tensor *chain(cg_tensor *h, cg_tensor *w, cg_tensor *b, int n)
{
  for (int i = 0; i < n; i++) h = cg_tanh(cg_add(cg_mul(h, w), b));
  return h;
}

#define USES 40

/* dw, db of chain at (x, w, b): how says which accumulation the walk uses (TRACED: a traced
   function's gradient, fed the forward's values when they are large). */
enum { UNRECORDED, UNDER_OUTER_TAPE, NUMERICS_CHECKED, GRAPH, TRACED };

static cg_status traced_chain(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = chain(x[0], x[1], x[2], USES);
  return cg_status_of(y[0]);
}

static void chain_gradients(int how, cg_tensor *const *x, cg_tensor **grads)
{
  if (how == TRACED) {
    cg_function *f = cg_function_trace("chain", traced_chain, NULL, x, 3, 1);
    cg_tensor *y;
    cg_tape *tape = cg_tape_begin(0);
    cg_tape_watch(tape, x[1]);
    cg_tape_watch(tape, x[2]);
    assert_int_equal(cg_function_call(f, x, &y), CG_OK);
    assert_int_equal(cg_tape_end(tape), CG_OK);
    assert_int_equal(cg_tape_gradient(tape, y, x + 1, 2, grads, NULL), CG_OK);
    cg_tape_free(tape);
    cg_function_free(f);
    return;
  }
  if (how == GRAPH) {
    cg_graph *g = cg_graph_new();
    assert_int_equal(cg_graph_enter(g), CG_OK);
    const char *names[3] = {"x", "w", "b"};
    cg_tensor *p[3];
    for (int i = 0; i < 3; i++)
      p[i] = cg_placeholder(cg_tensor_dtype(x[i]), cg_tensor_ndim(x[i]), cg_tensor_shape(x[i]), names[i]);
    cg_tensor *y = chain(p[0], p[1], p[2], USES), *d[2];
    assert_int_equal(cg_graph_exit(g), CG_OK);
    assert_int_equal(cg_gradients(&y, 1, p + 1, 2, NULL, d, NULL), CG_OK);
    cg_feed feeds[3] = {{p[0], x[0]}, {p[1], x[1]}, {p[2], x[2]}};
    assert_int_equal(cg_graph_run(g, feeds, 3, d, 2, grads), CG_OK);
    cg_graph_free(g);
    return;
  }
  cg_tape *outer = how == UNDER_OUTER_TAPE ? cg_tape_begin(0) : NULL;
  if (outer) {
    cg_tape_watch(outer, x[1]);
    cg_tape_watch(outer, x[2]);
  }
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x[1]);
  cg_tape_watch(tape, x[2]);
  cg_tensor *y = chain(x[0], x[1], x[2], USES);
  assert_int_equal(cg_tape_end(tape), CG_OK);
  if (how == NUMERICS_CHECKED) cg_set_check_numerics(1);
  assert_int_equal(cg_tape_gradient(tape, y, x + 1, 2, grads, NULL), CG_OK);
  if (how == NUMERICS_CHECKED) cg_set_check_numerics(0);
  if (outer) {
    assert_true(cg_tape_num_records(outer) > cg_tape_num_records(tape)); /* it saw the walk */
    assert_int_equal(cg_tape_end(outer), CG_OK);
    cg_tape_free(outer);
  }
  cg_tape_free(tape);
}

static void every_way_gives_the_same_bits(void **state)
{
  const int64_t shapes[][2] = {{1, 1}, {3, 5}, {200, 201}}; /* the last is split over threads */
  for (int d = 0; d < 2; d++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      cg_scope scope = cg_scope_begin();
      cg_dtype dtype = d ? CG_F64 : CG_F32;
      cg_tensor *x[3] = {cg_random_uniform(dtype, 2, shapes[s], -1, 1, 11),
                         cg_random_uniform(dtype, 2, shapes[s], -1, 1, 12),
                         cg_random_uniform(dtype, 2, shapes[s], -0.1, 0.1, 13)};
      cg_tensor *ref[2], *got[2];
      chain_gradients(UNRECORDED, x, ref);
      for (int how = UNDER_OUTER_TAPE; how <= TRACED; how++) {
        chain_gradients(how, x, got);
        assert_same_bits(ref[0], got[0]);
        assert_same_bits(ref[1], got[1]);
      }
      cg_scope_end(scope);
    }
}

/* sum(tanh x + exp x) + sum_i sum(tanh x * (i + 1)), i < 7: Add hands one dy to both of its
   inputs, and tanh x's eighth part arrives while the Add's second input still reads it. */
static cg_tensor *eight_parts(cg_tensor *x, int tape_open_for_the_gradient)
{
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *a = cg_tanh(x);
  cg_tensor *loss = cg_sum(cg_add(a, cg_exp(x)), NULL, 0, 0);
  for (int i = 0; i < 7; i++) loss = cg_add(loss, cg_sum(cg_mul(a, cg_scalar(CG_F64, i + 1.0)), NULL, 0, 0));
  if (!tape_open_for_the_gradient) cg_tape_end(tape);
  cg_tensor *g = NULL;
  assert_int_equal(cg_tape_gradient(tape, loss, &x, 1, &g, NULL), CG_OK); /* open: parts wait */
  if (tape_open_for_the_gradient) cg_tape_end(tape);
  cg_tape_free(tape);
  return g;
}

/* Waiting parts are summed once the node that made the last of them is done with it. */
static void parts_are_summed_after_the_node(void **state)
{
  int64_t n = 4;
  cg_tensor *x = cg_random_uniform(CG_F64, 1, &n, -1, 1, 1);
  assert_same_bits(eight_parts(x, 0), eight_parts(x, 1));
}

/* --- parts the walk must not write ------------------------------------------------------------ */

/* y = x (a view of it); the gradient is the tensor in user, whatever dy is. */
static cg_status pass_forward(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  return cg_status_of(y[0]);
}

static cg_status fixed_backward(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
{
  dx[0] = cg_ctx_user(ctx);
  return CG_OK;
}

/* The gradient of sum_k pass(w), k < uses, where pass number k gives back g[k % 2]. */
static cg_tensor *sum_of_fixed_parts(cg_tensor *w, cg_tensor *const *g, int uses)
{
  cg_custom_def pass[2] = {{"PassFixedGradient", 1, 1, pass_forward, fixed_backward, g[0]},
                           {"PassFixedGradient", 1, 1, pass_forward, fixed_backward, g[1]}};
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, w);
  cg_tensor *total = NULL;
  for (int k = 0; k < uses; k++) {
    cg_tensor *y;
    assert_int_equal(cg_custom_gradient(&pass[k % 2], &w, &y), CG_OK);
    total = total ? cg_add(total, y) : y;
  }
  cg_tape_end(tape);
  cg_tensor *dw = NULL;
  assert_int_equal(cg_tape_gradient(tape, total, &w, 1, &dw, NULL), CG_OK);
  cg_tape_free(tape);
  return dw;
}

static void parts_held_elsewhere_are_not_written(void **state)
{
  int64_t s23[2] = {2, 3}, s6[1] = {6};
  cg_tensor *w = cgt_f32(2, s23, (double[]){1, 2, 3, 4, 5, 6});
  double a[6] = {0.5, -1, 2, 0.25, 3, -4}, b[6] = {1, 2, -3, 4, 0.5, 8};
  for (int uses = 1; uses <= 6; uses++) {
    double want[6];
    for (int i = 0; i < 6; i++) want[i] = (uses + 1) / 2 * a[i] + uses / 2 * b[i];
    /* the caller's tensors: the first part is one of them, the walk's sum another tensor */
    cg_tensor *g[2] = {cgt_f32(2, s23, a), cgt_f32(2, s23, b)};
    cg_tensor *dw = sum_of_fixed_parts(w, g, uses);
    assert_tensor(dw, CG_F32, 2, s23, want, 0);
    assert_tensor(g[0], CG_F32, 2, s23, a, 0);
    assert_tensor(g[1], CG_F32, 2, s23, b, 0);
    if (uses > 1) assert_ptr_not_equal(cg_tensor_data(dw), cg_tensor_data(g[0]));
    /* views of the caller's tensors: their buffers are shared */
    cg_tensor *base[2] = {cgt_f32(1, s6, a), cgt_f32(1, s6, b)};
    cg_tensor *view[2] = {cg_reshape(base[0], 2, s23), cg_reshape(base[1], 2, s23)};
    dw = sum_of_fixed_parts(w, view, uses);
    assert_tensor(dw, CG_F32, 2, s23, want, 0);
    assert_tensor(base[0], CG_F32, 1, s6, a, 0);
    assert_tensor(base[1], CG_F32, 1, s6, b, 0);
  }
}

/* A hook keeps the total it sees (an in-place sum of four parts): it must not change after. */
static cg_tensor *kept;
static double kept_values[4];

static cg_tensor *keep_hook(cg_tensor *grad, void *user)
{
  kept = cg_retain(grad);
  for (int i = 0; i < 4; i++) kept_values[i] = cg_tensor_get(grad, i);
  return grad;
}

static void a_total_once_seen_is_not_written(void **state)
{
  int64_t s4[1] = {4};
  cg_tensor *w = cgt_f64(1, s4, (double[]){1, -2, 0.5, 3}), *c3 = cg_scalar(CG_F64, 3);
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tape_watch(tape, w);
  cg_tensor *h = cg_mul(w, cg_scalar(CG_F64, 2));
  assert_int_equal(cg_tensor_register_hook(h, keep_hook, NULL), CG_OK);
  /* loss = h^2 + 3h + h: h gets four parts (two from h*h) */
  cg_tensor *loss = cg_add(cg_add(cg_mul(h, h), cg_mul(h, c3)), h);
  cg_tape_end(tape);
  cg_tensor *src[2] = {w, h}, *g[2];
  kept = NULL;
  assert_int_equal(cg_tape_gradient(tape, loss, src, 2, g, NULL), CG_OK);
  assert_non_null(kept);
  double dh[4], dw[4];
  for (int i = 0; i < 4; i++) {
    double hv = 2 * cg_tensor_get(w, i);
    dh[i] = 2 * hv + 4;
    dw[i] = 2 * dh[i];
    assert_true(cg_tensor_get(kept, i) == kept_values[i]);
  }
  assert_tensor(kept, CG_F64, 1, s4, dh, 0);
  assert_tensor(g[0], CG_F64, 1, s4, dw, 0);
  assert_tensor(g[1], CG_F64, 1, s4, dh, 0); /* h is also a source: its total, read twice */
  /* a second gradient from the persistent tape leaves the first results alone */
  cg_tensor *first = kept, *again[2];
  kept = NULL;
  assert_int_equal(cg_tape_gradient(tape, loss, src, 2, again, NULL), CG_OK);
  assert_same_bits(g[0], again[0]);
  assert_tensor(g[0], CG_F64, 1, s4, dw, 0);
  assert_tensor(first, CG_F64, 1, s4, dh, 0);
  assert_tensor(kept, CG_F64, 1, s4, dh, 0);
  cg_release(first); /* the hook's own references */
  cg_release(kept);
  kept = NULL;
  cg_tape_free(tape);
}

/* The same input twice in one op (x * x, x + x): one gradient tensor can arrive twice. */
static void one_part_twice(void **state)
{
  int64_t s3[1] = {3};
  cg_tensor *x = cgt_f32(1, s3, (double[]){1, 2, 3});
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_add(cg_add(x, x), cg_mul(x, x)); /* dy/dx = 2 + 2x */
  cg_tape_end(tape);
  cg_tensor *dx;
  assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &dx, NULL), CG_OK);
  assert_tensor(dx, CG_F32, 1, s3, ((double[]){4, 6, 8}), 0);
  assert_tensor(x, CG_F32, 1, s3, ((double[]){1, 2, 3}), 0);
  cg_tape_free(tape);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(every_way_gives_the_same_bits),
      cgt_test(parts_are_summed_after_the_node),
      cgt_test(parts_held_elsewhere_are_not_written),
      cgt_test(a_total_once_seen_is_not_written),
      cgt_test(one_part_twice),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

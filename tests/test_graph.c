/* test_graph.c - graph mode: symbolic shapes with unknown dims, tf.gradients against the
 * eager tape on every gradient-check row, overrides and custom gradients in graphs,
 * gradients of gradients, the session's feeds and errors, CSE and constant folding, the
 * memory plan, variables, traced functions and DOT output. */
#include "util.h"
#include "cases.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cg_tensor *run1(cg_graph *g, cg_tensor *ph, cg_tensor *value, cg_tensor *fetch)
{
  cg_feed feed = {ph, value};
  cg_tensor *out = NULL;
  return cg_graph_run(g, &feed, ph ? 1 : 0, &fetch, 1, &out) == CG_OK ? out : NULL;
}

static void symbolic_shapes_with_unknown_dims(void **state)
{
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  int64_t img[4] = {-1, 28, 28, 1}, flat[2] = {-1, 784}, wshape[2] = {784, 16};
  cg_tensor *x = cg_placeholder(CG_F32, 4, img, "images");
  cg_tensor *h = cg_reshape(x, 2, flat);
  cg_tensor *y = cg_relu(cg_matmul(h, cg_zeros(CG_F32, 2, wshape)));
  cg_tensor *s = cg_sum(y, (int[]){1}, 1, 0);
  cg_graph_exit(g);
  assert_true(cg_tensor_is_symbolic(y));
  int64_t want_y[2] = {-1, 16}, want_s[1] = {-1};
  assert_tensor(y, CG_F32, 2, want_y, NULL, 0);
  assert_tensor(s, CG_F32, 1, want_s, NULL, 0);
  assert_int_equal(cg_tensor_size(y), -1);
  assert_true(isnan(cg_tensor_get(y, 0)));
  assert_error(CG_ESTATE, "symbolic");
  assert_null(cg_tanh(y)); /* eager use of a symbolic tensor */
  assert_error(CG_ESTATE, "Tanh: input 0 is a symbolic tensor of a graph");
  int64_t three[4] = {3, 28, 28, 1};
  cg_tensor *v = run1(g, x, cg_ones(CG_F32, 4, three), s);
  assert_tensor(v, CG_F32, 1, ((int64_t[]){3}), ((double[]){0, 0, 0}), 0);
  cg_graph_free(g);
}

/* Found by fuzz/fuzz_ops: trying an unknown dim as 257 made the element count of
 * [?, 2^58] overflow int64 (undefined behaviour); now it is an error naming the op. */
static void unknown_dims_that_overflow_when_tried(void **state)
{
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F32, 2, (int64_t[]){-1, (int64_t)1 << 58}, "x");
  assert_non_null(x);
  assert_null(cg_neg(x));
  assert_error(CG_ENOMEM, "Neg: shape [257,288230376151711744] has too many elements");
  cg_graph_exit(g);
  cg_graph_free(g);
}

/* Every gradient-check row: tf.gradients in a graph gives the tape's numbers. */
static void graph_gradients_match_the_tape_on_every_row(void **state)
{
  int n_cases, mismatches = 0;
  const cg_grad_case *cases = cg_grad_cases(&n_cases);
  for (int c = 0; c < n_cases; c++) {
    const cg_grad_case *row = &cases[c];
    cg_scope s = cg_scope_begin();
    cg_tensor *x[4], *ph[4], *eager[4], *sym[4], *graph[4];
    for (int i = 0; i < row->n_in; i++) x[i] = cg_grad_case_input(row, i, CG_F64, 7);
    cg_tape *tape = cg_tape_begin(0);
    for (int i = 0; i < row->n_in; i++) cg_tape_watch(tape, x[i]);
    cg_tensor *y = cg_grad_case_call(row, x, row->n_in);
    cg_tensor *u = cg_random_uniform(CG_F64, cg_tensor_ndim(y), cg_tensor_shape(y), 0.5, 1.5, 3);
    cg_tensor *loss = cg_sum(cg_mul(y, u), NULL, 0, 0);
    cg_tape_end(tape);
    assert_int_equal(cg_tape_gradient(tape, loss, x, row->n_in, eager, NULL), CG_OK);
    cg_tape_free(tape);

    cg_graph *g = cg_graph_new();
    cg_graph_enter(g);
    for (int i = 0; i < row->n_in; i++)
      ph[i] = cg_placeholder(cg_tensor_dtype(x[i]), cg_tensor_ndim(x[i]), cg_tensor_shape(x[i]), NULL);
    cg_tensor *gloss = cg_sum(cg_mul(cg_grad_case_call(row, ph, row->n_in), u), NULL, 0, 0);
    cg_graph_exit(g);
    assert_non_null(gloss);
    assert_int_equal(cg_gradients(&gloss, 1, ph, row->n_in, NULL, sym, NULL), CG_OK);
    cg_feed feeds[4];
    cg_tensor *fetch[4];
    int n_fetch = 0;
    for (int i = 0; i < row->n_in; i++) {
      feeds[i] = (cg_feed){ph[i], x[i]};
      if (sym[i]) fetch[n_fetch++] = sym[i];
    }
    if (n_fetch) assert_int_equal(cg_graph_run(g, feeds, row->n_in, fetch, n_fetch, graph), CG_OK);
    for (int i = 0, k = 0; i < row->n_in; i++) {
      assert_true(!eager[i] == !sym[i]);
      if (!eager[i]) continue;
      cg_tensor *gv = graph[k++];
      for (int64_t e = 0; e < cg_tensor_size(gv); e++) {
        double a = cg_tensor_get(eager[i], e), b = cg_tensor_get(gv, e);
        if (fabs(a - b) > 1e-12 * (1 + fabs(a))) {
          print_error("%s [%s] input %d element %lld: tape %.17g, graph %.17g\n", row->op, row->label, i,
                      (long long)e, a, b);
          mismatches++;
          break;
        }
      }
    }
    cg_graph_free(g);
    cg_scope_end(s);
  }
  assert_int_equal(mismatches, 0);
}

static cg_status times_two(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_scalar_like(dy[0], 2));
  return cg_status_of(dx[0]);
}

static void override_map_in_graph_mode(void **state)
{
  cg_register_gradient("GraphCustomGradient", times_two, NULL, 0);
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F32, 0, NULL, "x");
  cg_gradient_override_push("Square", "GraphCustomGradient");
  cg_tensor *y = cg_square(x);
  cg_gradient_override_pop();
  cg_tensor *y2 = cg_square(x); /* outside the override */
  cg_graph_exit(g);
  cg_tensor *dx, *dx2;
  assert_int_equal(cg_gradients(&y, 1, &x, 1, NULL, &dx, NULL), CG_OK);
  assert_int_equal(cg_gradients(&y2, 1, &x, 1, NULL, &dx2, NULL), CG_OK);
  cg_tensor *three = cg_scalar(CG_F32, 3);
  assert_tensor(run1(g, x, three, dx), CG_F32, 0, NULL, ((double[]){2}), 0);
  assert_tensor(run1(g, x, three, dx2), CG_F32, 0, NULL, ((double[]){6}), 0);
  cg_graph_free(g);
}

static cg_status clip_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  return cg_status_of(y[0]);
}
static cg_status clip_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  dx[0] = cg_maximum(cg_minimum(dy[0], cg_scalar_like(dy[0], 1)), cg_scalar_like(dy[0], -1));
  return cg_status_of(dx[0]);
}

static void custom_gradient_in_graph_mode(void **state)
{
  cg_custom_def clip = {"ClipGradient", 1, 1, clip_fwd, clip_bwd, NULL};
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  int64_t s3[1] = {3};
  cg_tensor *x = cg_placeholder(CG_F64, 1, s3, "x"), *y, *dx;
  assert_int_equal(cg_custom_gradient(&clip, &x, &y), CG_OK);
  cg_tensor *loss = cg_sum(cg_mul(y, cg_scalar(CG_F64, 5)), NULL, 0, 0);
  cg_graph_exit(g);
  assert_int_equal(cg_gradients(&loss, 1, &x, 1, NULL, &dx, NULL), CG_OK);
  cg_feed feed = {x, cgt_f64(1, s3, (double[]){1, 2, 3})};
  cg_tensor *fetch[2] = {loss, dx}, *out[2];
  assert_int_equal(cg_graph_run(g, &feed, 1, fetch, 2, out), CG_OK);
  assert_tensor(out[0], CG_F64, 0, NULL, ((double[]){30}), 0);
  assert_tensor(out[1], CG_F64, 1, s3, ((double[]){1, 1, 1}), 0);
  cg_graph_free(g);
}

static void gradients_of_gradients(void **state)
{
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F64, 0, NULL, "x");
  cg_tensor *y = cg_mul(cg_square(x), cg_sin(x)), *dy, *d2y, *d3y;
  cg_graph_exit(g);
  assert_int_equal(cg_gradients(&y, 1, &x, 1, NULL, &dy, NULL), CG_OK);
  assert_int_equal(cg_gradients(&dy, 1, &x, 1, NULL, &d2y, NULL), CG_OK);
  assert_int_equal(cg_gradients(&d2y, 1, &x, 1, NULL, &d3y, NULL), CG_OK);
  double v = 0.7, s = sin(v), c = cos(v);
  cg_feed feed = {x, cg_scalar(CG_F64, v)};
  cg_tensor *fetch[3] = {dy, d2y, d3y}, *out[3];
  assert_int_equal(cg_graph_run(g, &feed, 1, fetch, 3, out), CG_OK);
  assert_tensor(out[0], CG_F64, 0, NULL, ((double[]){2 * v * s + v * v * c}), 1e-14);
  assert_tensor(out[1], CG_F64, 0, NULL, ((double[]){2 * s + 4 * v * c - v * v * s}), 1e-14);
  assert_tensor(out[2], CG_F64, 0, NULL, ((double[]){6 * c - 6 * v * s - v * v * c}), 1e-14);
  cg_graph_free(g);
}

static void tf_gradients_options(void **state)
{
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *a = cg_placeholder(CG_F64, 0, NULL, "a"), *b = cg_placeholder(CG_F64, 0, NULL, "b");
  cg_tensor *k = cg_placeholder(CG_I64, 0, NULL, "k"), *u = cg_placeholder(CG_F64, 0, NULL, "unused");
  cg_tensor *h = cg_mul(a, b);                  /* h = ab */
  cg_tensor *y1 = cg_square(h), *y2 = cg_add(a, cg_stop_gradient(cg_square(b)));
  cg_graph_exit(g);
  cg_tensor *ys[2] = {y1, y2}, *xs[4] = {a, b, k, u}, *grads[4];
  cg_tensor *seeds[2] = {cg_scalar(CG_F64, 1), cg_scalar(CG_F64, 10)};
  assert_int_equal(cg_gradients(ys, 2, xs, 4, seeds, grads, NULL), CG_OK);
  assert_null(grads[2]); /* integer */
  assert_null(grads[3]); /* unconnected */
  cg_feed feeds[2] = {{a, cg_scalar(CG_F64, 2)}, {b, cg_scalar(CG_F64, 3)}};
  cg_tensor *out[2];
  assert_int_equal(cg_graph_run(g, feeds, 2, grads, 2, out), CG_OK);
  assert_tensor(out[0], CG_F64, 0, NULL, ((double[]){2 * 6 * 3 + 10}), 0); /* 2hb + 10 */
  assert_tensor(out[1], CG_F64, 0, NULL, ((double[]){2 * 6 * 2}), 0);      /* 2ha; b^2 stopped */
  cg_gradients_opts zero = {.unconnected = CG_UNCONNECTED_ZERO};
  assert_int_equal(cg_gradients(ys, 1, xs, 4, NULL, grads, &zero), CG_OK);
  assert_non_null(grads[3]);
  cg_gradients_opts stop = {.stop_gradients = &h, .n_stop = 1};
  cg_tensor *dh[2];
  assert_int_equal(cg_gradients(&y1, 1, (cg_tensor *[]){h, a}, 2, NULL, dh, &stop), CG_OK);
  assert_non_null(dh[0]); /* the stop tensor itself still gets its gradient */
  assert_null(dh[1]);     /* but nothing flows through it to a */
  assert_tensor(run1(g, NULL, NULL, cg_scalar(CG_F64, 1)), CG_F64, 0, NULL, ((double[]){1}), 0);
  cg_graph_free(g);
}

static void session_errors(void **state)
{
  cg_graph *g = cg_graph_new(), *other = cg_graph_new();
  cg_graph_enter(g);
  int64_t s[2] = {-1, 3};
  cg_tensor *x = cg_placeholder(CG_F32, 2, s, "inputs"), *w = cg_placeholder(CG_F32, 0, NULL, "weight");
  cg_tensor *y = cg_mul(x, w);
  cg_graph_exit(g);
  int64_t ok[2] = {2, 3}, bad[2] = {2, 4};
  cg_tensor *out;
  cg_feed feeds[2] = {{x, cg_ones(CG_F32, 2, ok)}, {w, cg_scalar(CG_F32, 2)}};
  assert_int_equal(cg_graph_run(g, feeds, 1, &y, 1, &out), CG_EINVAL);
  assert_error(CG_EINVAL, "placeholder 'weight' (f32 []) is needed by Mul but was not fed");
  feeds[0].value = cg_ones(CG_F64, 2, ok);
  assert_int_equal(cg_graph_run(g, feeds, 2, &y, 1, &out), CG_EDTYPE);
  assert_error(CG_EDTYPE, "placeholder 'inputs' is f32 [-1,3] but was fed f64 [2,3]");
  feeds[0].value = cg_ones(CG_F32, 2, bad);
  assert_int_equal(cg_graph_run(g, feeds, 2, &y, 1, &out), CG_ESHAPE);
  assert_error(CG_ESHAPE, "placeholder 'inputs' has shape [-1,3] but was fed [2,4]");
  feeds[0].value = cg_ones(CG_F32, 2, ok);
  assert_int_equal(cg_graph_run(g, feeds, 2, &y, 1, &out), CG_OK);
  assert_tensor(out, CG_F32, 2, ok, ((double[]){2, 2, 2, 2, 2, 2}), 0);
  assert_int_equal(cg_graph_exit(g), CG_ESTATE);
  assert_error(CG_ESTATE, "not the one entered");
  cg_graph_enter(other);
  assert_null(cg_add(y, y));
  assert_error(CG_ESTATE, "Add: input 0 belongs to another graph");
  cg_graph_exit(other);
  assert_int_equal(cg_graph_run(other, NULL, 0, &y, 1, &out), CG_EINVAL);
  assert_error(CG_EINVAL, "fetch 0 belongs to another graph");
  assert_null(cg_placeholder(CG_F32, 0, NULL, "x"));
  assert_error(CG_ESTATE, "no graph is entered");
  cg_graph_free(g);
  cg_graph_free(other);
}

/* A new graph with the given options, entered, with placeholder x: f64 [2]. */
static cg_graph *entered_graph_with_x(unsigned options, cg_tensor **x)
{
  cg_graph *g = cg_graph_new();
  cg_graph_set_options(g, options);
  cg_graph_enter(g);
  *x = cg_placeholder(CG_F64, 1, (int64_t[]){2}, "x");
  return g;
}

static void cse_and_folding_keep_results(void **state)
{
  double results[4][2];
  cg_graph_stats stats[4];
  for (unsigned opt = 0; opt < 4; opt++) {
    int64_t s2[1] = {2};
    cg_tensor *x;
    cg_graph *g = entered_graph_with_x(opt, &x);
    cg_tensor *c = cg_exp(cg_scalar(CG_F64, 1));               /* constant subgraph */
    cg_tensor *y = cg_add(cg_mul(cg_tanh(x), c), cg_mul(cg_tanh(x), c)); /* duplicated */
    cg_graph_exit(g);
    cg_tensor *v = run1(g, x, cgt_f64(1, s2, (double[]){0.5, -1}), y);
    v = run1(g, x, cgt_f64(1, s2, (double[]){0.5, -1}), y); /* folded constants reused */
    results[opt][0] = cg_tensor_get(v, 0);
    results[opt][1] = cg_tensor_get(v, 1);
    cg_graph_get_stats(g, &stats[opt]);
    cg_graph_free(g);
  }
  for (int opt = 1; opt < 4; opt++) assert_memory_equal(results[0], results[opt], sizeof results[0]);
  assert_true(results[0][0] == 2 * tanh(0.5) * exp(1));
  assert_int_equal(stats[0].nodes_merged, 0);
  assert_int_equal(stats[1].nodes_merged, 2); /* second tanh and second mul */
  assert_int_equal(stats[2].nodes_folded, 1); /* exp(1) */
  assert_true(stats[3].nodes_run < stats[0].nodes_run);
}

/* Feeding a node's output (TF's feed of any tensor): readers see the fed value, the nodes
   only it needed do not run, a twin computation (CSE) or a folded constant is not replaced. */
static void feeding_an_intermediate_tensor(void **state)
{
  for (unsigned opt = 0; opt < 4; opt++) {
    int64_t s2[1] = {2};
    cg_tensor *x;
    cg_graph *g = entered_graph_with_x(opt, &x);
    cg_tensor *h = cg_tanh(x), *twin = cg_tanh(x), *c = cg_exp(cg_scalar(CG_F64, 0));
    cg_tensor *y = cg_add(cg_mul(h, h), x), *z = cg_add(cg_mul(h, c), twin);
    cg_graph_exit(g);
    cg_feed feeds[3] = {{x, cgt_f64(1, s2, (double[]){0.5, -1})}, {h, cgt_f64(1, s2, (double[]){3, 4})},
                        {c, cg_scalar(CG_F64, 10)}};
    cg_tensor *fetch[4] = {y, z, h, x}, *out[4];
    assert_int_equal(cg_graph_run(g, feeds, 3, fetch, 4, out), CG_OK);
    assert_tensor(out[0], CG_F64, 1, s2, ((double[]){9.5, 15}), 0);
    assert_tensor(out[1], CG_F64, 1, s2, ((double[]){30 + tanh(0.5), 40 + tanh(-1.0)}), 1e-15);
    assert_tensor(out[2], CG_F64, 1, s2, ((double[]){3, 4}), 0);
    assert_tensor(out[3], CG_F64, 1, s2, ((double[]){0.5, -1}), 0); /* a fed placeholder */
    cg_graph_stats st;
    cg_graph_get_stats(g, &st);
    assert_int_equal(st.nodes_run, 5); /* twin's Tanh, 2 Mul, 2 Add; not h's Tanh, nor Exp */
    assert_int_equal(st.nodes_merged, 0);
    /* without x's feed, y still needs x */
    assert_int_equal(cg_graph_run(g, feeds + 1, 1, &y, 1, out), CG_EINVAL);
    assert_error(CG_EINVAL, "placeholder 'x' (f64 [2]) is needed by Add but was not fed");
    cg_graph_free(g);
  }
}

/* The gradient of sum(a * b) with respect to a is b: a run needs neither a nor the target,
 * whose shape alone the gradient reads (the default seed and Sum's gradient use the known
 * shape, not the tensor). So an HVP's plan skips the product of g it never reads. */
static void gradient_runs_without_the_target_value(void **state)
{
  int64_t s23[2] = {2, 3};
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *a = cg_placeholder(CG_F64, 2, s23, "a"), *b = cg_placeholder(CG_F64, 2, s23, "b");
  cg_tensor *target = cg_sum(cg_mul(a, b), NULL, 0, 0), *da;
  cg_graph_exit(g);
  assert_int_equal(cg_gradients(&target, 1, &a, 1, NULL, &da, NULL), CG_OK);
  const double bv[6] = {1, -2, 3, 0.5, 7, -8};
  cg_feed feed = {b, cgt_f64(2, s23, bv)};
  cg_tensor *out;
  assert_int_equal(cg_graph_run(g, &feed, 1, &da, 1, &out), CG_OK);
  assert_tensor(out, CG_F64, 2, s23, bv, 0);
  cg_graph_stats st;
  cg_graph_get_stats(g, &st);
  /* the seed's broadcast, Sum's gradient (a Reshape and a broadcast) and dy * b: no a * b,
     no Sum */
  assert_int_equal(st.nodes_run, 4);
  cg_graph_free(g);
}

/* A dim that looks known but came from trial sizes (8x8 pooling with stride 8 maps both 257
 * and 263 to 32) is not trusted: the seed and Sum's gradient take the shape when they run. */
static void gradient_of_a_shape_inferred_from_trials(void **state)
{
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F64, 4, (int64_t[]){1, -1, -1, 1}, "x");
  cg_tensor *y = cg_max_pool2d(x, (int[]){8, 8}, (int[]){8, 8}, CG_PAD_VALID);
  cg_tensor *s = cg_sum(y, NULL, 0, 0), *dx[2];
  cg_graph_exit(g);
  assert_int_equal(cg_tensor_shape(y)[1], 32); /* (what the trials gave) */
  assert_int_equal(cg_gradients(&y, 1, &x, 1, NULL, &dx[0], NULL), CG_OK);
  assert_int_equal(cg_gradients(&s, 1, &x, 1, NULL, &dx[1], NULL), CG_OK);
  int64_t shape[4] = {1, 64, 64, 1};
  cg_feed feed = {x, cg_random_uniform(CG_F64, 4, shape, -1, 1, 3)};
  cg_tensor *out[2];
  assert_int_equal(cg_graph_run(g, &feed, 1, dx, 2, out), CG_OK);
  for (int k = 0; k < 2; k++) { /* a 1 at each of the 64 windows' maxima */
    assert_int_equal(cg_tensor_ndim(out[k]), 4);
    assert_memory_equal(cg_tensor_shape(out[k]), shape, sizeof shape);
    assert_true(cg_item(cg_sum(out[k], NULL, 0, 0)) == 64);
  }
  cg_graph_free(g);
}

/* What a run hands out is the caller's, even a gradient that is the seed itself or a folded
 * constant: writing into one run's result leaves the next run's alone. */
static void fetched_gradients_are_fresh(void **state)
{
  for (unsigned opt = 0; opt < 4; opt++) {
    cg_tensor *x;
    cg_graph *g = entered_graph_with_x(opt, &x);
    cg_tensor *y = cg_mul(x, cg_scalar(CG_F64, 2)), *fetch[3];
    fetch[2] = cg_neg(cg_scalar(CG_F64, 5)); /* constant-only: folded with the option */
    cg_graph_exit(g);
    assert_int_equal(cg_gradients(&x, 1, &x, 1, NULL, &fetch[0], NULL), CG_OK);
    assert_int_equal(cg_gradients(&y, 1, &x, 1, NULL, &fetch[1], NULL), CG_OK);
    assert_true(cg_tensor_is_symbolic(fetch[0]) && cg_tensor_is_symbolic(fetch[1]));
    cg_feed feed = {x, cgt_f64(1, (int64_t[]){2}, (double[]){3, 4})};
    cg_tensor *first[3], *second[3];
    assert_int_equal(cg_graph_run(g, &feed, 1, fetch, 3, first), CG_OK);
    for (int k = 0; k < 3; k++) ((double *)cg_tensor_data(first[k]))[0] = 42;
    assert_int_equal(cg_graph_run(g, &feed, 1, fetch, 3, second), CG_OK);
    assert_tensor(second[0], CG_F64, 1, ((int64_t[]){2}), ((double[]){1, 1}), 0);
    assert_tensor(second[1], CG_F64, 1, ((int64_t[]){2}), ((double[]){2, 2}), 0);
    assert_tensor(second[2], CG_F64, 0, NULL, ((double[]){-5}), 0);
    cg_graph_free(g);
  }
}

/* An MLP training step in a graph: the plan frees intermediates after their last reader. */
static void memory_plan_on_an_mlp_step(void **state)
{
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  int64_t xs[2] = {-1, 784}, w1s[2] = {784, 256}, w2s[2] = {256, 256}, w3s[2] = {256, 10};
  cg_tensor *x = cg_placeholder(CG_F32, 2, xs, "x"), *labels = cg_placeholder(CG_I64, 1, (int64_t[]){-1}, "y");
  cg_tensor *w[3] = {cg_random_normal(CG_F32, 2, w1s, 0, 0.05, 1), cg_random_normal(CG_F32, 2, w2s, 0, 0.05, 2),
                     cg_random_normal(CG_F32, 2, w3s, 0, 0.05, 3)};
  cg_tensor *h = cg_relu(cg_matmul(x, w[0]));
  h = cg_relu(cg_matmul(h, w[1]));
  cg_tensor *loss = cg_mean(cg_sparse_softmax_cross_entropy_with_logits(labels, cg_matmul(h, w[2])), NULL, 0, 0);
  cg_graph_exit(g);
  cg_tensor *grads[3];
  if (cg_gradients(&loss, 1, w, 3, NULL, grads, NULL) != CG_OK) print_error("%s\n", cg_last_error());
  assert_int_equal(cg_last_status(), CG_OK);
  int64_t batch[2] = {128, 784}, nb[1] = {128};
  cg_feed feeds[2] = {{x, cg_random_uniform(CG_F32, 2, batch, 0, 1, 4)},
                      {labels, cg_random_uniform(CG_I64, 1, nb, 0, 10, 5)}};
  cg_tensor *out[3];
  assert_int_equal(cg_graph_run(g, feeds, 2, grads, 3, out), CG_OK);
  cg_graph_stats st;
  cg_graph_get_stats(g, &st);
  print_message("MLP step graph: %zu nodes run, planned peak %zu bytes, unplanned total %zu bytes\n",
                st.nodes_run, st.peak_bytes, st.total_bytes);
  assert_true(st.peak_bytes > 0 && st.peak_bytes < st.total_bytes);
  cg_graph_free(g);
}

static void variables_are_read_at_run_time(void **state)
{
  cg_var *v = cg_var_new("v", cg_scalar(CG_F64, 2), 1);
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *read = cg_var_read(v);
  cg_tensor *y = cg_square(read), *dv;
  cg_graph_exit(g);
  assert_int_equal(cg_gradients(&y, 1, &read, 1, NULL, &dv, NULL), CG_OK);
  assert_tensor(run1(g, NULL, NULL, dv), CG_F64, 0, NULL, ((double[]){4}), 0);
  cg_var_assign(v, cg_scalar(CG_F64, 5));
  assert_tensor(run1(g, NULL, NULL, y), CG_F64, 0, NULL, ((double[]){25}), 0);
  cg_graph_free(g);
  cg_var_free(v);
}

/* --- traced functions ----------------------------------------------------------------------- */
static cg_status step(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  cg_tensor *h = x[0];
  for (int i = 0; i < 5; i++) h = cg_tanh(cg_add(cg_mul(h, x[1]), x[2]));
  y[0] = cg_sum(h, NULL, 0, 0);
  return cg_status_of(y[0]);
}

/* First and second order through a traced function against the same computation eagerly,
   with x of n elements (200: large enough that the gradient is fed the forward's values). */
static void traced_function_matches_eager_at(int64_t n)
{
  cg_tensor *x[3] = {cg_random_uniform(CG_F64, 1, &n, -1, 1, 3), cg_scalar(CG_F64, 0.7), cg_scalar(CG_F64, 0.1)};
  cg_function *f = cg_function_trace("step", step, NULL, x, 3, 1);
  assert_non_null(f);
  cg_tensor *fy = NULL, *ey = NULL, *fg[3], *eg[3], *fg2 = NULL, *eg2 = NULL;
  /* first and second order through the function, against the same computation eagerly */
  for (int traced = 0; traced < 2; traced++) {
    cg_tape *outer = cg_tape_begin(0), *tape = cg_tape_begin(0);
    for (int i = 0; i < 3; i++) {
      cg_tape_watch(tape, x[i]);
      cg_tape_watch(outer, x[i]);
    }
    cg_tensor *y;
    if (traced) assert_int_equal(cg_function_call(f, x, &y), CG_OK);
    else step(x, 3, &y, 1, NULL);
    cg_tape_end(tape);
    cg_tensor **g = traced ? fg : eg;
    assert_int_equal(cg_tape_gradient(tape, y, x, 3, g, NULL), CG_OK);
    cg_tape_end(outer);
    assert_int_equal(cg_tape_gradient(outer, g[1], &x[1], 1, traced ? &fg2 : &eg2, NULL), CG_OK);
    *(traced ? &fy : &ey) = y;
    cg_tape_free(tape);
    cg_tape_free(outer);
  }
  assert_true(fabs(cg_item(fy) - cg_item(ey)) < 1e-15);
  for (int i = 0; i < 3; i++)
    for (int64_t e = 0; e < cg_tensor_size(eg[i]); e++)
      assert_true(fabs(cg_tensor_get(fg[i], e) - cg_tensor_get(eg[i], e)) < 1e-14);
  assert_true(fabs(cg_item(fg2) - cg_item(eg2)) < 1e-13 * (double)n);
  assert_int_equal(cg_function_num_traces(f), 1);
  cg_function_free(f);
}

static void traced_function_matches_eager(void **state)
{
  traced_function_matches_eager_at(3);
  traced_function_matches_eager_at(200);
  int64_t s3[1] = {3};
  cg_tensor *x[3] = {cgt_f64(1, s3, (double[]){0.1, 0.2, 0.3}), cg_scalar(CG_F64, 0.7), cg_scalar(CG_F64, 0.1)};
  cg_function *f = cg_function_trace("step", step, NULL, x, 3, 1);
  cg_tensor *y3;
  assert_int_equal(cg_function_call(f, x, &y3), CG_OK);
  int64_t s5[1] = {5};
  cg_tensor *x5[3] = {cg_ones(CG_F64, 1, s5), x[1], x[2]}, *y5, *e5;
  assert_int_equal(cg_function_call(f, x5, &y5), CG_OK); /* a new shape: traced again */
  assert_int_equal(cg_function_num_traces(f), 2);
  step(x5, 3, &e5, 1, NULL);
  assert_true(fabs(cg_item(y5) - cg_item(e5)) < 1e-15);
  cg_function_free(f);
}

/* The size of g's DOT text: it grows with the nodes. */
static size_t dot_size(const cg_graph *g)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(cg_graph_write_dot(g, f), CG_OK);
  fclose(f);
  free(buf);
  return len;
}

/* y = sum(tanh(x0 x1) * sin(sum(tanh(x0 x1))) * v), v a variable read in the function. */
static cg_status kept_values(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  cg_tensor *x0 = cg_reshape(x[0], 2, (int64_t[]){16, 16}); /* a view: made again, not kept */
  cg_tensor *h = cg_tanh(cg_matmul(x0, x[1])); /* 16 x 16 f64: kept for the gradient */
  cg_tensor *small = cg_sin(cg_sum(h, NULL, 0, 0)); /* a scalar: computed again */
  y[0] = cg_sum(cg_mul(cg_mul(h, small), cg_var_read(user)), NULL, 0, 0);
  return cg_status_of(y[0]);
}

/* The gradient of a recorded call: fed the forward's large values and its variable reads
   (the value read then, not after an assignment), it runs fewer nodes than when it computes
   them again (as while another tape records it, for a higher order), with the same bits. A
   call that no tape follows builds no gradient. */
static void traced_gradient_is_fed_the_forward_values(void **state)
{
  int64_t s16[2] = {16, 16};
  cg_tensor *x[2] = {cg_random_uniform(CG_F64, 2, s16, -1, 1, 5), cg_random_uniform(CG_F64, 2, s16, -0.3, 0.3, 6)};
  cg_var *v = cg_var_new("v", cg_scalar(CG_F64, 0.5), 1);
  cg_function *f = cg_function_trace("kept", kept_values, v, x, 2, 1);
  assert_non_null(f);
  cg_tensor *g_eager[2], *g_fed[2], *g_again[2], *y;
  size_t run_fed = 0, run_again = 0;
  for (int mode = 0; mode < 3; mode++) { /* eager, traced and fed, traced and computed again */
    cg_var_assign(v, cg_scalar(CG_F64, 0.5));
    cg_tape *outer = mode == 2 ? cg_tape_begin(0) : NULL, *tape = cg_tape_begin(0);
    cg_tape_watch(tape, x[0]);
    cg_tape_watch(tape, x[1]);
    if (mode == 0) kept_values(x, 2, &y, 1, v);
    else assert_int_equal(cg_function_call(f, x, &y), CG_OK);
    cg_tape_end(tape);
    cg_var_assign(v, cg_scalar(CG_F64, 2.0)); /* after the forward: not what it read */
    cg_tensor **g = mode == 0 ? g_eager : mode == 1 ? g_fed : g_again;
    assert_int_equal(cg_tape_gradient(tape, y, x, 2, g, NULL), CG_OK);
    cg_graph_stats st;
    cg_graph_get_stats(cg_function_graph(f, 0), &st);
    *(mode == 1 ? &run_fed : &run_again) = st.nodes_run;
    cg_tape_free(tape);
    if (outer) {
      cg_tape_end(outer);
      cg_tape_free(outer);
    }
  }
  for (int i = 0; i < 2; i++) {
    for (int64_t e = 0; e < 256; e++)
      assert_true(fabs(cg_tensor_get(g_fed[i], e) - cg_tensor_get(g_eager[i], e)) < 1e-14);
    assert_memory_equal(cg_tensor_data(g_fed[i]), cg_tensor_data(g_again[i]), 256 * sizeof(double));
  }
  assert_true(run_fed + 2 <= run_again); /* not MatMul, Tanh */
  cg_function_free(f);
  /* under a tape that follows something else, a call keeps nothing and builds no gradient */
  f = cg_function_trace("kept", kept_values, v, x, 2, 1);
  size_t plain = dot_size(cg_function_graph(f, 0));
  cg_tape *other = cg_tape_begin(0);
  cg_tape_watch(other, cg_scalar(CG_F64, 1));
  assert_int_equal(cg_function_call(f, x, &y), CG_OK);
  assert_int_equal(dot_size(cg_function_graph(f, 0)), plain);
  cg_tape_watch(other, x[0]);
  assert_int_equal(cg_function_call(f, x, &y), CG_OK);
  assert_true(dot_size(cg_function_graph(f, 0)) > plain);
  cg_tape_end(other);
  cg_tape_free(other);
  cg_function_free(f);
  cg_var_free(v);
}

static cg_status doubled_infer(cg_node *n) { return cg_infer_same_as_input(n, 0); }
static cg_status doubled_run(cg_node *n)
{
  const double *x = cg_tensor_data(cg_node_input(n, 0));
  double *y = cg_tensor_data(cg_node_output(n, 0));
  for (int64_t i = 0; i < cg_tensor_size(cg_node_input(n, 0)); i++) y[i] = 2 * x[i];
  return CG_OK;
}
static cg_status sum_doubled(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_sum(cg_call("GraphTestDoubled", x, 1, NULL), NULL, 0, 0);
  return cg_status_of(y[0]);
}

/* A recorded call whose gradient cannot be built (an op without one) still runs, leaves the
   caller's error state as it was, and the gradient, when asked for, says why. */
static void recorded_call_without_a_gradient(void **state)
{
  cg_op_def doubled = {"GraphTestDoubled", 1, doubled_infer, doubled_run, 0, NULL};
  assert_int_equal(cg_register_op(&doubled, CG_REGISTER_REPLACE), CG_OK);
  int64_t s300[1] = {300};
  cg_tensor *x = cg_ones(CG_F64, 1, s300), *y, *g;
  cg_function *f = cg_function_trace("sum_doubled", sum_doubled, NULL, &x, 1, 1);
  for (int call = 0; call < 2; call++) {
    cg_tape *tape = cg_tape_begin(0);
    cg_tape_watch(tape, x);
    assert_null(cg_tanh(NULL)); /* an error the caller has not read yet: it stays */
    assert_int_equal(cg_function_call(f, &x, &y), CG_OK);
    assert_error(CG_EINVAL, "Tanh");
    assert_true(cg_item(y) == 600);
    cg_tape_end(tape);
    assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &g, NULL), CG_ENOGRAD);
    assert_error(CG_ENOGRAD, "GraphTestDoubled: no gradient is registered for this op type");
    cg_tape_free(tape);
  }
  cg_function_free(f);
}

static void dot_output_shows_gradients(void **state)
{
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F32, 0, NULL, "x");
  cg_gradient_override_push("Square", "GraphCustomGradient");
  cg_tensor *y = cg_square(x), *dx;
  cg_gradient_override_pop();
  cg_graph_exit(g);
  cg_gradients(&y, 1, &x, 1, NULL, &dx, NULL);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(cg_graph_write_dot(g, f), CG_OK);
  fclose(f);
  assert_non_null(strstr(buf, "digraph cgrad"));
  assert_non_null(strstr(buf, "placeholder x"));
  assert_non_null(strstr(buf, "gradient: GraphCustomGradient (override)"));
  assert_non_null(strstr(buf, "(from the gradient of GraphCustomGradient)"));
  free(buf);
  cg_graph_free(g);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(symbolic_shapes_with_unknown_dims),
      cgt_test(unknown_dims_that_overflow_when_tried),
      cgt_test(graph_gradients_match_the_tape_on_every_row),
      cgt_test(override_map_in_graph_mode),
      cgt_test(custom_gradient_in_graph_mode),
      cgt_test(gradients_of_gradients),
      cgt_test(tf_gradients_options),
      cgt_test(session_errors),
      cgt_test(cse_and_folding_keep_results),
      cgt_test(feeding_an_intermediate_tensor),
      cgt_test(gradient_runs_without_the_target_value),
      cgt_test(gradient_of_a_shape_inferred_from_trials),
      cgt_test(fetched_gradients_are_fresh),
      cgt_test(memory_plan_on_an_mlp_step),
      cgt_test(variables_are_read_at_run_time),
      cgt_test(traced_function_matches_eager),
      cgt_test(traced_gradient_is_fed_the_forward_values),
      cgt_test(recorded_call_without_a_gradient),
      cgt_test(dot_output_shows_gradients),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* w4_hvp.c - W4, Hessian-vector product: H v for the mean softmax cross-entropy of the
 * W2-sized network with tanh activations (784-256-256-10, batch 128) w.r.t. all six of its
 * parameters, by double backward: an outer tape records the inner tape's gradient g, and
 * differentiates sum_i <g_i, v_i>. Reports the median time of one product, eager and traced
 * into a function (tf.function over two tf.gradients), whose plan runs only what H v needs. */
#include "bench.h"
#include "io/dataset.h"
#include <math.h>

#define WARMUP 3

/* The product's 22 GEMMs {m, n, k, transpose_a, transpose_b}: the forward's 3, the inner
 * backward's 5 (no gradient for the images) and the outer backward's 14 (two per product of
 * the inner backward but one for x^T da1, and two per forward product but one for x W1). */
static const int64_t hvp_gemms[22][5] = {
  {128, 256, 784, 0, 0}, {128, 256, 256, 0, 0}, {128, 10, 256, 0, 0},
  {256, 10, 128, 1, 0},  {128, 256, 10, 0, 1},  {256, 256, 128, 1, 0}, {128, 256, 256, 0, 1},
  {784, 256, 128, 1, 0}, {128, 256, 784, 0, 0}, {128, 256, 256, 0, 0}, {256, 256, 128, 1, 0},
  {128, 256, 256, 0, 1}, {128, 256, 256, 0, 0}, {128, 10, 256, 0, 0},  {256, 10, 128, 1, 0},
  {128, 256, 10, 0, 1},  {128, 10, 256, 0, 0},  {128, 256, 10, 0, 1},  {256, 10, 128, 1, 0},
  {128, 256, 256, 0, 1}, {256, 256, 128, 1, 0}, {784, 256, 128, 1, 0},
};

static cg_status hvp(bench_mlp *m, cg_tensor *x, cg_tensor *y, cg_tensor *const *v, cg_tensor **hv)
{
  cg_tensor *params[6], *g[6], *dots[6];
  for (int i = 0; i < 6; i++) params[i] = cg_var_value(m->vars[i]);
  cg_tape *outer = cg_tape_begin(0), *inner = cg_tape_begin(0);
  cg_tensor *logits = bench_mlp_logits(m, x, NULL);
  cg_tensor *loss = logits ? cg_loss_sparse_softmax_xent(y, logits, CG_REDUCE_MEAN) : NULL;
  cg_tape_end(inner);
  cg_status st = loss ? cg_tape_gradient(inner, loss, params, 6, g, NULL) : cg_last_status();
  for (int i = 0; i < 6 && st == CG_OK; i++)
    st = cg_status_of(dots[i] = cg_sum(cg_mul(g[i], v[i]), NULL, 0, 0));
  cg_tensor *dot = st == CG_OK ? cg_add_n(dots, 6) : NULL;
  cg_tape_end(outer);
  if (st == CG_OK) st = dot ? cg_tape_gradient(outer, dot, params, 6, hv, NULL) : cg_last_status();
  cg_tape_free(inner);
  cg_tape_free(outer);
  return st;
}

/* The same product as a traced function of (images, labels, the 6 parameters, the 6 v):
   the network written with the ops its Dense layers use, differentiated twice with
   cg_gradients. Only H v is fetched, so the plan drops what nothing downstream reads, such
   as the values of g for the three kernels: it runs 19 of the 22 products (293 of 362
   MFLOP). */
static cg_status hvp_body(cg_tensor *const *in, int nx, cg_tensor **hv, int ny, void *user)
{
  (void)nx, (void)ny, (void)user;
  cg_tensor *const *p = in + 2, *const *v = in + 8;
  cg_tensor *h = cg_reshape(in[0], 2, (const int64_t[]){-1, 784}), *g[6], *dots[6];
  for (int layer = 0; layer < 3; layer++) {
    h = cg_bias_add(cg_matmul(h, p[2 * layer]), p[2 * layer + 1]);
    if (layer < 2) h = cg_tanh(h);
  }
  cg_tensor *loss = h ? cg_loss_sparse_softmax_xent(in[1], h, CG_REDUCE_MEAN) : NULL;
  cg_status st = loss ? cg_gradients(&loss, 1, p, 6, NULL, g, NULL) : cg_last_status();
  for (int i = 0; i < 6 && st == CG_OK; i++)
    st = cg_status_of(dots[i] = cg_sum(cg_mul(g[i], v[i]), NULL, 0, 0));
  cg_tensor *dot = st == CG_OK ? cg_add_n(dots, 6) : NULL;
  return dot ? cg_gradients(&dot, 1, p, 6, NULL, hv, NULL) : cg_last_status();
}

/* The largest |a - b| / (1 + |b|) over the six products' elements. */
static double max_difference(cg_tensor *const *a, cg_tensor *const *b)
{
  double worst = 0;
  for (int i = 0; i < 6; i++) {
    const float *x = cg_tensor_data(a[i]), *y = cg_tensor_data(b[i]);
    for (int64_t k = 0; k < cg_tensor_size(a[i]); k++) {
      double d = fabs((double)x[k] - y[k]) / (1 + fabs((double)y[k]));
      if (!(d <= worst)) worst = d; /* (NaN counts as the worst) */
    }
  }
  return worst;
}

/* Times the traced product against the eager one's results hv_eager. */
static int time_traced(bench_mlp *m, cg_tensor *x, cg_tensor *y, cg_tensor *const *v,
                       cg_tensor *const *hv_eager, int steps)
{
  cg_tensor *in[14] = {x, y};
  for (int i = 0; i < 6; i++) {
    in[2 + i] = cg_var_value(m->vars[i]);
    in[8 + i] = v[i];
  }
  cg_function *f = cg_function_trace("w4_hvp", hvp_body, NULL, in, 14, 6);
  if (!f) return bench_fail("W4 trace");
  double t[200];
  int rc = 0;
  for (int k = 0; k < WARMUP + steps && !rc; k++) {
    cg_scope s = cg_scope_begin();
    cg_tensor *hv[6];
    double t0 = bench_now();
    if (cg_function_call(f, in, hv) != CG_OK) rc = bench_fail("W4 traced product");
    else cg_item(cg_sum(hv[0], NULL, 0, 0)); /* as the eager product is timed */
    if (k >= WARMUP) t[k - WARMUP] = bench_now() - t0;
    double diff = rc || k + 1 < WARMUP + steps ? 0 : max_difference(hv, hv_eager);
    if (diff > 1e-4) {
      fprintf(stderr, "W4: the traced product differs from the eager one by %g\n", diff);
      rc = 1;
    }
    cg_scope_end(s);
  }
  if (!rc)
    bench_report("w4.hvp_traced_ms", 1e3 * bench_median(t, steps), "ms",
                 "median Hessian-vector product, traced function");
  cg_function_free(f);
  return rc;
}

int bench_w4(const bench_opts *o)
{
  int steps = o->quick ? 3 : o->steps > 0 ? o->steps : 40;
  if (steps > 200) steps = 200;
  cg_scope scope = cg_scope_begin();
  cg_batcher *b = cg__mnist_batcher_new(o->data_dir, 1, 128, 1, 1);
  bench_mlp m;
  cg_tensor *x = NULL, *y = NULL, *v[6];
  int rc = 0;
  if (!b || bench_mlp_init(&m, CG_ACT_TANH, 1) != CG_OK) {
    cg_batcher_free(b);
    cg_scope_end(scope);
    return bench_fail("W4 setup");
  }
  if (cg_batcher_next(b, &x, &y) <= 0) rc = bench_fail("W4 data");
  for (int i = 0; i < 6 && !rc; i++) {
    cg_tensor *p = cg_var_value(m.vars[i]);
    v[i] = cg_random_normal(CG_F32, cg_tensor_ndim(p), cg_tensor_shape(p), 0, 1, 100 + i);
    if (!v[i]) rc = bench_fail("W4 setup");
  }
  double t[200];
  cg_tensor *hv[6] = {NULL};
  for (int k = 0; k < WARMUP + steps && !rc; k++) {
    cg_scope s = cg_scope_begin();
    double t0 = bench_now();
    if (hvp(&m, x, y, v, hv) != CG_OK) rc = bench_fail("W4 product");
    else cg_item(cg_sum(hv[0], NULL, 0, 0)); /* the values exist before the clock stops */
    if (k >= WARMUP) t[k - WARMUP] = bench_now() - t0;
    for (int i = 0; i < 6 && !rc && k + 1 == WARMUP + steps; i++)
      cg_keep(hv[i]); /* the last product: the traced one is checked against it */
    cg_scope_end(s);
  }
  if (!rc)
    bench_report("w4.hvp_ms", 1e3 * bench_median(t, steps), "ms",
                 "median Hessian-vector product (double backward), batch 128");
  if (!rc) rc = time_traced(&m, x, y, v, hv, steps);
  if (!rc)
    bench_report("w4.floor_ms", bench_gemm_ms(hvp_gemms, 22), "ms",
                 "the product's 22 GEMMs alone (362 MFLOP)");
  bench_mlp_free(&m);
  cg_batcher_free(b);
  cg_scope_end(scope);
  return rc;
}

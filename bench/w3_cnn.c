/* w3_cnn.c - W3, CNN training step: conv 3x3 1->32, relu, maxpool 2, conv 3x3 32->64, relu,
 * maxpool 2, dense 3136->10 (SAME padding, as `cgrad train --model cnn`), batch 64, softmax
 * cross-entropy, Adam 1e-3. Reports the median step over Fashion-MNIST batches. */
#include "bench.h"
#include "io/dataset.h"

#define WARMUP 3

static cg_layer *add(cg_layer *model, cg_layer *layer)
{
  if (!model || !layer || cg_sequential_add(model, layer) != CG_OK) {
    cg_layer_free(layer);
    cg_layer_free(model);
    return NULL;
  }
  return model;
}

static cg_layer *cnn(void)
{
  const int one[2] = {1, 1}, two[2] = {2, 2};
  cg_layer *m = cg_sequential("cnn");
  m = add(m, cg_conv2d_layer("conv_1", 1, 32, 3, 3, one, CG_PAD_SAME, CG_ACT_RELU, 2));
  m = add(m, cg_max_pool2d_layer(two, two, CG_PAD_VALID));
  m = add(m, cg_conv2d_layer("conv_2", 32, 64, 3, 3, one, CG_PAD_SAME, CG_ACT_RELU, 3));
  m = add(m, cg_max_pool2d_layer(two, two, CG_PAD_VALID));
  m = add(m, cg_flatten_layer());
  return add(m, cg_dense_layer("logits", 7 * 7 * 64, 10, CG_ACT_NONE, 4));
}

static cg_status step(cg_layer *model, cg_var *const *vars, int n, cg_optimizer *opt,
                      cg_tensor *x, cg_tensor *y)
{
  cg_scope scope = cg_scope_begin();
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *logits = cg_layer_forward(model, x, 1);
  cg_tensor *loss = logits ? cg_loss_sparse_softmax_xent(y, logits, CG_REDUCE_MEAN) : NULL;
  cg_tape_end(tape);
  cg_tensor *sources[16], *grads[16];
  for (int i = 0; i < n; i++) sources[i] = cg_var_value(vars[i]);
  cg_status st = loss ? cg_tape_gradient(tape, loss, sources, n, grads, NULL) : cg_last_status();
  if (st == CG_OK) st = cg_optimizer_apply_gradients(opt, grads, vars, n);
  if (st == CG_OK) cg_item(loss);
  cg_tape_free(tape);
  cg_scope_end(scope);
  return st;
}

int bench_w3(const bench_opts *o)
{
  int steps = o->quick ? 3 : o->steps > 0 ? o->steps : 30;
  if (steps > 200) steps = 200;
  cg_batcher *b = cg__mnist_batcher_new(o->data_dir, 1, 64, 1, 1);
  cg_layer *model = cnn();
  cg_optimizer_config adam = {.kind = CG_OPT_ADAM, .lr = 1e-3};
  cg_optimizer *opt = cg_optimizer_new(&adam);
  cg_var *vars[16];
  int n = model ? cg_layer_variables(model, 1, vars, 16) : 0, rc = 0;
  if (!b || !model || !opt || n <= 0 || n > 16) rc = bench_fail("W3 setup");
  double t[200], cpu0 = 0;
  for (int k = 0; k < WARMUP + steps && rc == 0; k++) {
    if (k == WARMUP) cpu0 = bench_cpu_seconds();
    cg_scope scope = cg_scope_begin();
    cg_tensor *x, *y;
    if (cg_batcher_next(b, &x, &y) <= 0) rc = bench_fail("W3 data");
    double t0 = bench_now();
    if (!rc && step(model, vars, n, opt, x, y) != CG_OK) rc = bench_fail("W3 step");
    if (k >= WARMUP) t[k - WARMUP] = bench_now() - t0;
    cg_scope_end(scope);
  }
  if (!rc) {
    bench_report("w3.step_ms", 1e3 * bench_median(t, steps), "ms",
                 "median CNN training step (forward, backward, Adam), batch 64");
    bench_report("w3.step_cpu_ms", 1e3 * (bench_cpu_seconds() - cpu0) / steps, "ms",
                 "CPU time per step, all threads (batching included)");
    /* forward 0.495 GFLOP (conv 1 28.9M, conv 2 462.4M, dense 4.0M), the filter and weight
       gradients as much again, the input gradients of conv 2 and dense 0.466: 1.456 */
    double peak = bench_peak_gflops();
    bench_report("w3.peak_gflops", peak, "GF/s", "one 1024^3 f32 GEMM on all threads");
    bench_report("w3.floor_ms", 1.456 / peak * 1e3, "ms", "the step's 1.456 GFLOP at that rate");
  }
  cg_optimizer_free(opt);
  cg_layer_free(model);
  cg_batcher_free(b);
  return rc;
}

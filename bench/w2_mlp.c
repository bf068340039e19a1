/* w2_mlp.c - W2, MLP training: Fashion-MNIST, 784-256-256-10 ReLU, softmax cross-entropy,
 * Adam 1e-3, batch 128. The training set is kept as bytes and converted per batch. Reports
 * the median step (forward, backward, update), the median epoch (all 60,000 images,
 * batching included), test accuracy after each epoch and the process's peak RSS. */
#include "bench.h"
#include "io/dataset.h"
#include <stdlib.h>

#define QUICK_STEPS 40

/* The products of one step, as cgrad runs them: forward x W for the three layers, then per
 * layer dW = h^T dz, and dh = dz W^T for the two upper layers (nobody needs the images'
 * gradient): 155 MFLOP. {m, n, k, transpose_a, transpose_b} */
static const int64_t step_gemms[8][5] = {
    {128, 256, 784, 0, 0}, {128, 256, 256, 0, 0}, {128, 10, 256, 0, 0},
    {256, 10, 128, 1, 0},  {128, 256, 10, 0, 1},  {256, 256, 128, 1, 0},
    {128, 256, 256, 0, 1}, {784, 256, 128, 1, 0}};

int bench_w2(const bench_opts *o)
{
  int epochs = o->quick ? 1 : o->epochs > 0 ? o->epochs : 2;
  cg_batcher *b = cg__mnist_batcher_new(o->data_dir, 1, 128, 1, 1);
  if (!b) return bench_fail("W2 data");
  int64_t per_epoch = cg_batcher_num_batches(b);
  double *steps = malloc((size_t)(epochs * per_epoch) * sizeof *steps), epoch_s[64];
  bench_mlp m;
  if (!steps || bench_mlp_init(&m, CG_ACT_RELU, 1) != CG_OK) {
    free(steps);
    cg_batcher_free(b);
    return bench_fail("W2 model");
  }
  int n_steps = 0, rc = 0;
  double cpu = 0;
  for (int e = 1; e <= epochs && e <= 64 && rc == 0; e++) {
    cg_batcher_start_epoch(b, e);
    double t0 = bench_now(), cpu0 = bench_cpu_seconds();
    for (int64_t k = 0; k < per_epoch && !(o->quick && k >= QUICK_STEPS); k++) {
      cg_scope scope = cg_scope_begin();
      cg_tensor *x, *y;
      double loss, ts = 0;
      if (cg_batcher_next(b, &x, &y) <= 0 || (ts = bench_now(),
          bench_mlp_step(&m, x, y, NULL, &loss) != CG_OK))
        rc = bench_fail("W2 step");
      steps[n_steps++] = bench_now() - ts;
      cg_scope_end(scope);
      if (rc) break;
    }
    epoch_s[e - 1] = bench_now() - t0;
    cpu += bench_cpu_seconds() - cpu0;
    double acc = rc ? -1 : bench_mlp_accuracy(&m, o->data_dir);
    if (!rc && acc < 0) rc = bench_fail("W2 accuracy");
    if (rc) break;
    char key[32], what[64];
    snprintf(key, sizeof key, "w2.acc_epoch%d", e);
    snprintf(what, sizeof what, "test accuracy after epoch %d", e);
    bench_report(key, 100 * acc, "%", what);
  }
  if (!rc) {
    bench_report("w2.step_ms", 1e3 * bench_median(steps, n_steps), "ms",
                 "median training step (forward, backward, Adam), batch 128");
    bench_report("w2.step_cpu_ms", 1e3 * cpu / n_steps, "ms",
                 "CPU time per step, all threads (batching included)");
    if (!o->quick)
      bench_report("w2.epoch_s", bench_median(epoch_s, epochs), "s",
                   "median epoch, 60,000 images, batching included");
    bench_report("w2.rss_mb", bench_peak_rss_mb(), "MiB", "peak resident memory of the process");
    double floor_ms = bench_gemm_ms(step_gemms, 8);
    bench_report("w2.floor_step_ms", floor_ms, "ms", "the step's 8 GEMMs alone (155 MFLOP)");
    bench_report("w2.floor_epoch_s", floor_ms * 1e-3 * (double)per_epoch, "s",
                 "the same for the 469 steps of an epoch");
  }
  bench_mlp_free(&m);
  free(steps);
  cg_batcher_free(b);
  return rc;
}

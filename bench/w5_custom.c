/* w5_custom.c - W5, custom-gradient overhead: the W2 step with a custom-gradient op after the
 * first layer (identity forward, gradient clipped to [-1, 1]) against the same step without
 * it. Steps mix the two on one model in a fixed pseudo-random order (the same in
 * w5_custom.py) over two epochs, so both see the same machine and no periodic disturbance
 * falls on one kind only; reports both medians and the overhead in percent of the plain
 * step. */
#include "bench.h"
#include "io/dataset.h"
#include <stdlib.h>

static cg_status clip_forward(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  return cg_status_of(y[0]);
}

/* one ClipByValue pass, as PyTorch's dy.clamp(-1, 1) */
static cg_status clip_backward(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
{
  dx[0] = cg_clip_by_value(dy[0], -1, 1);
  return cg_status_of(dx[0]);
}

static cg_tensor *clip_gradient(cg_tensor *h)
{
  static const cg_custom_def def = {"ClipGradient", 1, 1, clip_forward, clip_backward, NULL};
  cg_tensor *y;
  return cg_custom_gradient(&def, &h, &y) == CG_OK ? y : NULL;
}

int bench_w5(const bench_opts *o)
{
  cg_batcher *b = cg__mnist_batcher_new(o->data_dir, 1, 128, 1, 1);
  bench_mlp m;
  if (!b || bench_mlp_init(&m, CG_ACT_RELU, 1) != CG_OK) {
    cg_batcher_free(b);
    return bench_fail("W5 setup");
  }
  int64_t per_epoch = cg_batcher_num_batches(b), steps = o->quick ? 20 : 2 * per_epoch;
  double *t[2] = {malloc((size_t)steps * sizeof(double)), malloc((size_t)steps * sizeof(double))};
  int n[2] = {0, 0}, rc = t[0] && t[1] ? 0 : bench_fail("W5 setup");
  uint64_t order = 1;
  for (int64_t k = 0; k < steps && !rc; k++) {
    order = order * 6364136223846793005ull + 1442695040888963407ull;
    int custom = (int)(order >> 63);
    cg_scope scope = cg_scope_begin();
    cg_tensor *x, *y;
    double t0 = 0;
    if (k % per_epoch == 0) cg_batcher_start_epoch(b, 1 + k / per_epoch);
    if (cg_batcher_next(b, &x, &y) <= 0 ||
        (t0 = bench_now(), bench_mlp_step(&m, x, y, custom ? clip_gradient : NULL, NULL)) != CG_OK)
      rc = bench_fail("W5 step");
    t[custom][n[custom]++] = bench_now() - t0;
    cg_scope_end(scope);
  }
  if (!rc && (n[0] < 2 || n[1] < 2)) rc = bench_fail("W5: too few steps of one kind");
  if (!rc) {
    /* the first of each kind warms the allocator cache */
    double plain = bench_median(t[0] + 1, n[0] - 1), custom = bench_median(t[1] + 1, n[1] - 1);
    bench_report("w5.plain_ms", 1e3 * plain, "ms", "median W2 step without the custom gradient");
    bench_report("w5.custom_ms", 1e3 * custom, "ms", "median W2 step with it (steps mixed)");
    bench_report("w5.overhead_pct", 100 * (custom - plain) / plain, "%",
                 "cost of the custom gradient, in percent of the plain step");
  }
  free(t[0]);
  free(t[1]);
  bench_mlp_free(&m);
  cg_batcher_free(b);
  return rc;
}

/* w1_tape.c - W1, tape overhead: 1000 x y = tanh(y*w + b) (3 ops per iteration) on 1x1 and
 * 64x64 tensors, then dy/dw and dy/db. Reports ns per op (elapsed / 3000) for the forward
 * without a tape, the forward under a tape, forward + backward on the eager tape, and
 * forward + backward of the same loop traced once into a function (tf.function). */
#include "bench.h"

#define ITERS 1000

typedef enum { FORWARD, FORWARD_TAPED, FORWARD_BACKWARD, TRACED } w1_mode;

static cg_status chain(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  cg_tensor *h = x[0];
  for (int i = 0; i < ITERS; i++) h = cg_tanh(cg_add(cg_mul(h, x[1]), x[2]));
  y[0] = h;
  return cg_status_of(h);
}

/* One run of the loop in the given mode; ns per op, or -1 on error. x = {y0, w, b}. */
static double run_once(w1_mode mode, cg_function *f, cg_tensor *const *x)
{
  cg_scope scope = cg_scope_begin();
  double t0 = bench_now();
  cg_tape *tape = mode == FORWARD ? NULL : cg_tape_begin(0);
  if (tape) {
    cg_tape_watch(tape, x[1]);
    cg_tape_watch(tape, x[2]);
  }
  cg_tensor *y = NULL, *grads[2];
  cg_status st = mode == TRACED ? cg_function_call(f, x, &y) : chain(x, 3, &y, 1, NULL);
  if (tape) {
    cg_tape_end(tape);
    if (st == CG_OK && mode != FORWARD_TAPED) st = cg_tape_gradient(tape, y, x + 1, 2, grads, NULL);
    cg_tape_free(tape);
  }
  cg_scope_end(scope);
  return st == CG_OK ? (bench_now() - t0) * 1e9 / (3.0 * ITERS) : -1;
}

static int measure(int64_t n, int repeats)
{
  static const struct {
    w1_mode mode;
    const char *key, *what;
  } modes[] = {
      {FORWARD, "forward", "ns/op forward, no tape"},
      {FORWARD_TAPED, "taped", "ns/op forward under a tape"},
      {FORWARD_BACKWARD, "fwd_bwd", "ns/op forward+backward, eager tape"},
      {TRACED, "traced", "ns/op forward+backward, traced function"},
  };
  cg_scope scope = cg_scope_begin();
  int64_t shape[2] = {n, n};
  cg_tensor *x[3] = {cg_random_uniform(CG_F32, 2, shape, -1, 1, 1),
                     cg_random_uniform(CG_F32, 2, shape, -1, 1, 2),
                     cg_random_uniform(CG_F32, 2, shape, -0.1, 0.1, 3)};
  cg_function *f = cg_function_trace("w1_chain", chain, NULL, x, 3, 1);
  int rc = f ? 0 : bench_fail("W1 trace");
  double t[64];
  for (size_t m = 0; m < sizeof modes / sizeof modes[0] && rc == 0; m++) {
    run_once(modes[m].mode, f, x); /* warm: the allocator's cache, the traced plan */
    for (int r = 0; r < repeats && rc == 0; r++)
      if ((t[r] = run_once(modes[m].mode, f, x)) < 0) rc = bench_fail("W1");
    if (rc) break;
    char key[64], what[160];
    snprintf(key, sizeof key, "w1.%lldx%lld.%s", (long long)n, (long long)n, modes[m].key);
    snprintf(what, sizeof what, "%s, %lldx%lld, median of %d", modes[m].what, (long long)n,
             (long long)n, repeats);
    bench_report(key, bench_median(t, repeats), "ns", what);
  }
  cg_function_free(f);
  cg_scope_end(scope);
  return rc;
}

int bench_w1(const bench_opts *o)
{
  int rc = measure(1, o->quick ? 3 : 21);
  return rc ? rc : measure(64, o->quick ? 3 : 9);
}

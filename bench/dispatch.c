/* dispatch.c - per-op overhead of the eager dispatcher on 1-element tensors: an op with no
 * tape, the same op recorded on a tape, and forward+backward (W1 of the performance issue,
 * y = tanh(y*w + b), 3 ops per iteration). Prints the median of several repeats in ns/op. */
#include <cgrad.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERS 1000
#define REPEATS 15

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One run of the loop; returns ns per op. mode 0: no tape, 1: tape, 2: tape + gradient. */
static double run(int mode)
{
  cg_scope s = cg_scope_begin();
  cg_tensor *w = cg_scalar(CG_F32, 0.5), *b = cg_scalar(CG_F32, 0.1), *y = cg_scalar(CG_F32, 0.3);
  double t0 = now_ns();
  cg_tape *tape = mode ? cg_tape_begin(0) : NULL;
  if (tape) {
    cg_tape_watch(tape, w);
    cg_tape_watch(tape, b);
  }
  for (int i = 0; i < ITERS; i++) y = cg_tanh(cg_add(cg_mul(y, w), b));
  if (tape) {
    cg_tape_end(tape);
    if (mode == 2) {
      cg_tensor *src[2] = {w, b}, *g[2];
      cg_tape_gradient(tape, y, src, 2, g, NULL);
    }
    cg_tape_free(tape);
  }
  cg_scope_end(s);
  return (now_ns() - t0) / (3.0 * ITERS);
}

int main(void)
{
  const char *names[3] = {"forward, no tape", "forward, under a tape", "forward + backward"};
  printf("W1 1-element, %d x y = tanh(y*w + b), median of %d runs\n", ITERS, REPEATS);
  for (int mode = 0; mode < 3; mode++) {
    double t[REPEATS];
    run(mode); /* warm the allocator cache */
    for (int r = 0; r < REPEATS; r++) t[r] = run(mode);
    qsort(t, REPEATS, sizeof t[0], cmp);
    printf("  %-24s %8.0f ns/op\n", names[mode], t[REPEATS / 2]);
  }
  return 0;
}

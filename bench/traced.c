/* traced.c - the tape-overhead workload (W1) run eagerly under a tape and as a traced
 * function (tf.function): 1000 x y = tanh(y*w + b), then dy/dw and dy/db, on 1-element and
 * 64x64 tensors. Prints ns per op (3 forward ops per iteration), median of several runs. */
#include <cgrad.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERS 1000
#define REPEATS 9

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

static cg_status chain(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  cg_tensor *h = x[0];
  for (int i = 0; i < ITERS; i++) h = cg_tanh(cg_add(cg_mul(h, x[1]), x[2]));
  y[0] = cg_sum(h, NULL, 0, 0);
  return cg_status_of(y[0]);
}

/* One forward+backward; returns ns per op. */
static double step(cg_function *f, cg_tensor *const *x)
{
  cg_scope s = cg_scope_begin();
  double t0 = now_ns();
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x[1]);
  cg_tape_watch(tape, x[2]);
  cg_tensor *y, *g[2];
  if (f) cg_function_call(f, x, &y);
  else chain(x, 3, &y, 1, NULL);
  cg_tape_end(tape);
  cg_tape_gradient(tape, y, x + 1, 2, g, NULL);
  cg_tape_free(tape);
  double ns = (now_ns() - t0) / (3.0 * ITERS);
  cg_scope_end(s);
  return ns;
}

static double median(cg_function *f, cg_tensor *const *x)
{
  double t[REPEATS];
  step(f, x);
  for (int r = 0; r < REPEATS; r++) t[r] = step(f, x);
  qsort(t, REPEATS, sizeof t[0], cmp);
  return t[REPEATS / 2];
}

int main(void)
{
  printf("W1 forward+backward, %d x y = tanh(y*w + b), ns per op (median of %d)\n", ITERS, REPEATS);
  int64_t sizes[2] = {1, 64};
  for (int k = 0; k < 2; k++) {
    cg_scope s = cg_scope_begin();
    int64_t shape[2] = {sizes[k], sizes[k]};
    cg_tensor *x[3] = {cg_random_uniform(CG_F32, 2, shape, -1, 1, 1), cg_random_uniform(CG_F32, 2, shape, -1, 1, 2),
                       cg_random_uniform(CG_F32, 2, shape, -0.1, 0.1, 3)};
    cg_function *f = cg_function_trace("chain", chain, NULL, x, 3, 1);
    double eager = median(NULL, x), traced = median(f, x);
    printf("  %2lldx%-2lld eager tape %8.0f ns/op   traced function %8.0f ns/op   speed-up %.2fx\n",
           (long long)sizes[k], (long long)sizes[k], eager, traced, eager / traced);
    cg_function_free(f);
    cg_scope_end(s);
  }
  return 0;
}

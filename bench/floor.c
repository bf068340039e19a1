/* floor.c - the GEMM floors the table compares against: the products of a W2 step timed on
 * their own, and the peak rate of one large product, both through cg__gemm (the path and
 * threads cgrad's MatMul and convolutions use), so a floor says what this BLAS allows here. */
#include "bench.h"
#include "ops/parallel.h"
#include <stdlib.h>

#define REPEATS 31

/* Median time in ms of running the products {m, n, k, transpose_a, transpose_b} once each. */
double bench_gemm_ms(const int64_t (*shapes)[5], int n)
{
  int64_t most = 1;
  for (int i = 0; i < n; i++) {
    const int64_t *s = shapes[i];
    most = s[0] * s[2] > most ? s[0] * s[2] : most;
    most = s[2] * s[1] > most ? s[2] * s[1] : most;
    most = s[0] * s[1] > most ? s[0] * s[1] : most;
  }
  float *a = calloc((size_t)most, sizeof *a), *b = calloc((size_t)most, sizeof *b);
  float *c = calloc((size_t)most, sizeof *c);
  double t[REPEATS], result = -1;
  if (a && b && c) {
    for (int r = -2; r < REPEATS; r++) { /* two warm-up rounds */
      double t0 = bench_now();
      for (int i = 0; i < n; i++) {
        const int64_t *s = shapes[i];
        cg__gemm(CG_F32, s[3], s[4], s[0], s[1], s[2], a, s[3] ? s[0] : s[2], b, s[4] ? s[2] : s[1],
                 0.0, c, s[1]);
      }
      if (r >= 0) t[r] = (bench_now() - t0) * 1e3;
    }
    result = bench_median(t, REPEATS);
  }
  free(a);
  free(b);
  free(c);
  return result;
}

double bench_peak_gflops(void)
{
  static const int64_t square[1][5] = {{1024, 1024, 1024, 0, 0}};
  double ms = bench_gemm_ms(square, 1);
  return ms > 0 ? 2.0 * 1024 * 1024 * 1024 / (ms * 1e-3) * 1e-9 : -1;
}

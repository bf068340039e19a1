/* parallel.h - how kernels use the cores. One small thread pool (parallel.c) runs the large
 * element-wise kernels, reductions and GEMMs; OpenBLAS runs single-threaded inside it, so
 * that two sets of threads never spin against each other on the same cores. Its workers spin
 * briefly, yielding the core, then sleep: on a busy machine they give way instead of holding
 * a core (OpenMP's default 3 ms busy-wait made a W2 step 15x slower there; see
 * docs/performance.md). Below a size threshold everything runs on the calling thread. */
#ifndef CG_OPS_PARALLEL_H
#define CG_OPS_PARALLEL_H

#include "cgrad.h"
#include <stdbool.h>

/* Element-wise work below this many elements per thread stays on one thread: waking a
 * second thread costs about as much as a few microseconds of streaming. */
#define CG_PARALLEL_MIN_ELEMENTS ((int64_t)32768)

/* Hot loops get one version per vector width, chosen once when the library loads. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(CG_NO_CLONES)
#define CG_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CG_VECTOR_CLONES
#endif

/* Threads kernels may use now (cg_set_num_threads; by default CGRAD_NUM_THREADS, else the
 * cores this process may run on); 1 inside a part. */
int cg__threads(void);

/* fn(ctx, part, parts) for part = 0 .. parts-1, spread over the pool (the calling thread
 * runs part 0). Runs them all on the calling thread when parts is 1, inside a part, or
 * while another thread is using the pool. */
typedef void (*cg_part_fn)(void *ctx, int part, int parts);
void cg__parallel_parts(int parts, cg_part_fn fn, void *ctx);

/* fn(ctx, begin, end) over consecutive ranges that cover [0, n) exactly once: pieces of at
 * least min_per_thread elements (rows, images: whatever the caller counts), shared out over
 * the threads. The pieces depend on n and min_per_thread alone, never on the thread count,
 * so a kernel computes the same bits on one thread or many. Bounds are multiples of 16 (but
 * the last), so no two threads write one cache line of a float array. */
typedef void (*cg_range_fn)(void *ctx, int64_t begin, int64_t end);
void cg__parallel_for(int64_t n, int64_t min_per_thread, cg_range_fn fn, void *ctx);

/* Start of part `part` of `parts` over [0, n), rounded down to a multiple of align. */
int64_t cg__split_point(int64_t n, int part, int parts, int64_t align);

/* Row-major C[m,n] = op(A)[m,k] op(B)[k,n] + beta C with op = transpose when asked; float
 * (f32) or double (f64) data as dtype says. Large products are cut by rows or columns of C
 * into parts chosen from the shape alone, each one single-threaded OpenBLAS call shared out
 * over the threads, so C's bits do not depend on the thread count. Sizes must fit BLAS's int. */
void cg__gemm(cg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
              const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
              int64_t ldc);

#endif

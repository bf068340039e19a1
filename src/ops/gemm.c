/* gemm.c - cg__gemm (parallel.h): the one way MatMul and the convolutions call BLAS. Large
 * products are split by rows or columns of C into parts chosen from the shape alone, each a
 * single-threaded OpenBLAS call, which the thread pool shares out; on first use OpenBLAS is
 * set to one thread and, on CPUs with AVX-512 that it does not know, to its AVX-512 kernels. */
#include "parallel.h"
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A product below this many flops is one call on the calling thread (about 10 us). */
#define GEMM_PARALLEL_MIN_FLOPS 2e6
#define GEMM_SPLIT_ALIGN 16 /* rows / columns per part: a multiple of OpenBLAS's tiles */
/* More parts than two only while each keeps this much work and this many rows / columns:
   every part packs its own copy of the shared operand, and each doubling of the parts cost
   3-4% of a 51 MFLOP product here (128x784x256, one thread). */
#define GEMM_PART_MIN_FLOPS 16e6
#define GEMM_PART_MIN_EXTENT 64
#define GEMM_MAX_PARTS 16

/* OpenBLAS 0.3.21 (Debian 12) predates AMD's Zen 4 and 5 and runs its AVX2 (Haswell)
 * kernels there; later releases choose the AVX-512 (SkylakeX) kernels on any CPU with
 * AVX-512, which run the W2 and W3 products 1.7-1.9x faster here. Make that choice once,
 * as those releases do, unless the user chose a core (OPENBLAS_CORETYPE) or this OpenBLAS
 * cannot switch (a build without DYNAMIC_ARCH lacks the entry points). Only a BLAS call
 * made by another library at that very moment could see the switch. */
static void blas_prefer_avx512(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (getenv("OPENBLAS_CORETYPE") || !__builtin_cpu_supports("avx512f") ||
      !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq") ||
      !__builtin_cpu_supports("avx512vl"))
    return;
  const char *core = openblas_get_corename();
  if (!core || (strcmp(core, "Haswell") != 0 && strcmp(core, "Zen") != 0)) return;
  void (*quit)(void), (*init)(void);
  *(void **)&quit = dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
  *(void **)&init = dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
  if (!quit || !init || !dlsym(RTLD_DEFAULT, "gotoblas_SKYLAKEX")) return;
  if (setenv("OPENBLAS_CORETYPE", "SkylakeX", 0) != 0) return;
  quit();
  init();
  unsetenv("OPENBLAS_CORETYPE");
#endif
}

/* OpenBLAS's own threads would compete with the pool's for the cores (parallel.h): cgrad
 * runs it on one thread per call and parallelises around it. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_setup(void)
{
  blas_prefer_avx512();
  openblas_set_num_threads(1);
}

typedef struct {
  cg_dtype dtype;
  bool trans_a, trans_b;
  int64_t m, n, k, lda, ldb, ldc;
  const char *a, *b;
  char *c;
  double beta;
  bool split_rows; /* parts take rows of C (else columns)  */
  int64_t extent;  /* how many rows / columns are split    */
} gemm_call;

static void gemm_run(const gemm_call *g)
{
  enum CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE tb = g->trans_b ? CblasTrans : CblasNoTrans;
  if (g->dtype == CG_F32)
    cblas_sgemm(CblasRowMajor, ta, tb, (int)g->m, (int)g->n, (int)g->k, 1.0f,
                (const float *)g->a, (int)g->lda, (const float *)g->b, (int)g->ldb,
                (float)g->beta, (float *)g->c, (int)g->ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, (int)g->m, (int)g->n, (int)g->k, 1.0,
                (const double *)g->a, (int)g->lda, (const double *)g->b, (int)g->ldb, g->beta,
                (double *)g->c, (int)g->ldc);
}

/* Part `part` of `parts`: rows [lo, hi) of C, or its columns, as a call of its own. */
static void gemm_part(void *ctx, int part, int parts)
{
  const gemm_call *g = ctx;
  int64_t lo = cg__split_point(g->extent, part, parts, GEMM_SPLIT_ALIGN);
  int64_t hi = cg__split_point(g->extent, part + 1, parts, GEMM_SPLIT_ALIGN);
  if (lo >= hi) return;
  size_t e = g->dtype == CG_F32 ? sizeof(float) : sizeof(double);
  gemm_call p = *g;
  if (g->split_rows) { /* op(A)'s rows lo..: A's rows, or its columns when transposed */
    p.m = hi - lo;
    p.a = g->a + (size_t)(g->trans_a ? lo : lo * g->lda) * e;
    p.c = g->c + (size_t)(lo * g->ldc) * e;
  } else { /* op(B)'s columns lo..: B's columns, or its rows when transposed */
    p.n = hi - lo;
    p.b = g->b + (size_t)(g->trans_b ? lo * g->ldb : lo) * e;
    p.c = g->c + (size_t)lo * e;
  }
  gemm_run(&p);
}

/* How many parts a product is cut into: from its shape alone, never from the thread count,
 * because OpenBLAS's last bits depend on the shape of each call (its kernels treat edge tiles
 * differently): the same parts on one thread or many give the same bits. */
static int gemm_parts(double flops, int64_t extent)
{
  if (flops < GEMM_PARALLEL_MIN_FLOPS || extent < 2 * GEMM_SPLIT_ALIGN) return 1;
  int parts = 2;
  while (parts < GEMM_MAX_PARTS && flops / (2 * parts) >= GEMM_PART_MIN_FLOPS &&
         extent / (2 * parts) >= GEMM_PART_MIN_EXTENT)
    parts *= 2;
  return parts;
}

void cg__gemm(cg_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
              const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
              int64_t ldc)
{
  pthread_once(&blas_once, blas_setup);
  /* Every part packs its own copy of the operand the parts share: split so that the shared
     operand is the smaller one (rows of C share B, columns share A). */
  bool split_rows = m >= n;
  gemm_call g = {dtype, trans_a, trans_b, m, n, k, lda, ldb, ldc, a, b, c, beta, split_rows,
                 split_rows ? m : n};
  int parts = gemm_parts(2.0 * (double)m * (double)n * (double)k, g.extent);
  if (parts <= 1) gemm_run(&g);
  else cg__parallel_parts(parts, gemm_part, &g);
}

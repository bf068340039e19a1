/* test_parallel.c - the thread pool and the split GEMM (src/ops/parallel.c, gemm.c): every
 * range covered once in pieces that do not depend on the thread count, nested and
 * concurrent callers, a forked child, and GEMMs cut into parts against one single-threaded
 * call (OpenBLAS's last bits depend on the shape of a call, so the parts agree to
 * rounding), the same bits on every run and for every thread count, for every transpose. */
#include "util.h"
#include "ops/parallel.h"
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ======================================================================================
 * Ranges and parts
 * ==================================================================================== */

typedef struct {
  atomic_int *hits;
  atomic_int calls;
} cover;

static void mark_range(void *ctx, int64_t begin, int64_t end)
{
  cover *c = ctx;
  atomic_fetch_add(&c->calls, 1);
  for (int64_t i = begin; i < end; i++) atomic_fetch_add(&c->hits[i], 1);
}

/* How many pieces cg__parallel_for cuts n into: of at least min (and at most 255 of them),
 * a multiple of 16 but the last. */
static int64_t pieces_of(int64_t n, int64_t min)
{
  int64_t chunk = (n + 254) / 255 > min ? (n + 254) / 255 : min;
  chunk = (chunk + 15) / 16 * 16;
  return (n + chunk - 1) / chunk;
}

static void every_index_once(void **state)
{
  const int64_t sizes[] = {1, 15, 16, 17, 100000, 131071, 1 << 18};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int64_t n = sizes[s];
    cover c = {calloc((size_t)n, sizeof(atomic_int)), 0};
    cg__parallel_for(n, 1024, mark_range, &c);
    for (int64_t i = 0; i < n; i++) assert_int_equal(atomic_load(&c.hits[i]), 1);
    assert_int_equal(atomic_load(&c.calls), pieces_of(n, 1024)); /* small work is one call */
    free(c.hits);
  }
  cover none = {NULL, 0};
  cg__parallel_for(0, 1, mark_range, &none);
  assert_int_equal(atomic_load(&none.calls), 0);
}

/* The pieces a loop is cut into, whatever the thread count. */
typedef struct {
  atomic_llong begins; /* sum of begin * 31 + end over the pieces: a fingerprint */
  atomic_int calls;
} pieces;

static void note_piece(void *ctx, int64_t begin, int64_t end)
{
  pieces *p = ctx;
  atomic_fetch_add(&p->begins, begin * 31 + end);
  atomic_fetch_add(&p->calls, 1);
}

static void pieces_do_not_depend_on_threads(void **state)
{
  const int64_t sizes[] = {5000, 100000, 1 << 20};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    pieces one = {0}, many = {0};
    assert_int_equal(cg_set_num_threads(1), CG_OK);
    cg__parallel_for(sizes[s], 1000, note_piece, &one);
    assert_int_equal(cg_set_num_threads(3), CG_OK);
    cg__parallel_for(sizes[s], 1000, note_piece, &many);
    assert_int_equal(atomic_load(&one.calls), atomic_load(&many.calls));
    assert_true(atomic_load(&one.begins) == atomic_load(&many.begins));
    assert_true(atomic_load(&one.calls) > 1);
  }
  assert_int_equal(cg_set_num_threads(0), CG_OK);
}

static void split_points_are_aligned(void **state)
{
  for (int parts = 1; parts <= 7; parts++) {
    assert_int_equal(cg__split_point(1000, 0, parts, 16), 0);
    assert_int_equal(cg__split_point(1000, parts, parts, 16), 1000);
    for (int p = 1; p < parts; p++) {
      int64_t at = cg__split_point(1000, p, parts, 16);
      assert_int_equal(at % 16, 0);
      assert_true(at >= cg__split_point(1000, p - 1, parts, 16));
    }
  }
}

/* A part that starts another parallel loop: the inner one runs on the part's thread, in
 * the same pieces as anywhere else. */
static void nested_part(void *ctx, int part, int parts)
{
  cover *c = ctx;
  cg__parallel_for(1 << 16, 1, mark_range, c + part);
}

static void nested_jobs_run_inline(void **state)
{
  enum { PARTS = 2 };
  cover c[PARTS];
  for (int p = 0; p < PARTS; p++) c[p] = (cover){calloc(1 << 16, sizeof(atomic_int)), 0};
  cg__parallel_parts(PARTS, nested_part, c);
  for (int p = 0; p < PARTS; p++) {
    assert_int_equal(atomic_load(&c[p].calls), pieces_of(1 << 16, 1));
    for (int i = 0; i < 1 << 16; i++) assert_int_equal(atomic_load(&c[p].hits[i]), 1);
    free(c[p].hits);
  }
}

/* Several application threads at once: one gets the pool, the others run inline. */
static void *hammer(void *arg)
{
  cover *c = arg;
  for (int k = 0; k < 200; k++) cg__parallel_for(1 << 14, 256, mark_range, c);
  return NULL;
}

static void concurrent_callers(void **state)
{
  enum { CALLERS = 4 };
  pthread_t t[CALLERS];
  cover c[CALLERS];
  for (int i = 0; i < CALLERS; i++) {
    c[i] = (cover){calloc(1 << 14, sizeof(atomic_int)), 0};
    assert_int_equal(pthread_create(&t[i], NULL, hammer, &c[i]), 0);
  }
  for (int i = 0; i < CALLERS; i++) {
    pthread_join(t[i], NULL);
    for (int j = 0; j < 1 << 14; j++) assert_int_equal(atomic_load(&c[i].hits[j]), 200);
    free(c[i].hits);
  }
}

static void forked_child_has_a_pool(void **state)
{
  cover c = {calloc(1 << 16, sizeof(atomic_int)), 0};
  cg__parallel_for(1 << 16, 1, mark_range, &c); /* the parent's workers exist */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    cover k = {calloc(1 << 16, sizeof(atomic_int)), 0};
    for (int r = 0; r < 20; r++) cg__parallel_for(1 << 16, 1, mark_range, &k);
    int ok = 1;
    for (int i = 0; i < 1 << 16; i++) ok &= atomic_load(&k.hits[i]) == 20;
    _exit(ok ? 0 : 3);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  free(c.hits);
}

/* ======================================================================================
 * GEMM split over threads against one call
 * ==================================================================================== */

static void fill(float *p, int64_t n, unsigned seed)
{
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
  }
}

static void split_gemm_matches_one_call(void **state)
{
  const int64_t shapes[][3] = {{128, 256, 784}, {784, 256, 128}, {300, 17, 250}, {33, 500, 70},
                               {4, 4, 4}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int t = 0; t < 4; t++) {
      int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
      bool ta = t & 1, tb = t & 2;
      size_t bytes = (size_t)(m * n) * sizeof(float);
      float *a = malloc((size_t)(m * k) * sizeof *a), *b = malloc((size_t)(k * n) * sizeof *b);
      float *c = malloc(bytes), *again = malloc(bytes), *want = malloc(bytes);
      fill(a, m * k, 1);
      fill(b, k * n, 2);
      fill(c, m * n, 3);
      memcpy(want, c, bytes);
      memcpy(again, c, bytes);
      int lda = (int)(ta ? m : k), ldb = (int)(tb ? k : n);
      cg__gemm(CG_F32, ta, tb, m, n, k, a, lda, b, ldb, 0.5, c, n); /* also sets BLAS to 1 thread */
      for (int threads = 1; threads <= 3; threads++) { /* the same bits however many threads */
        memcpy(again, want, bytes);
        assert_int_equal(cg_set_num_threads(threads), CG_OK);
        cg__gemm(CG_F32, ta, tb, m, n, k, a, lda, b, ldb, 0.5, again, n);
        assert_memory_equal(c, again, bytes);
      }
      assert_int_equal(cg_set_num_threads(0), CG_OK);
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                  (int)m, (int)n, (int)k, 1.0f, a, lda, b, ldb, 0.5f, want, (int)n);
      for (int64_t i = 0; i < m * n; i++) assert_true(fabsf(c[i] - want[i]) <= 1e-5f * (float)k);
      free(a);
      free(b);
      free(c);
      free(again);
      free(want);
    }
}

/* On a CPU with AVX-512 that OpenBLAS 0.3.21 runs with its AVX2 kernels, the first GEMM
 * switches it to the AVX-512 ones (gemm.c); the products above checked their results. */
static void blas_uses_avx512_where_it_can(void **state)
{
  float a = 2, b = 3, c = 0;
  cg__gemm(CG_F32, false, false, 1, 1, 1, &a, 1, &b, 1, 0.0, &c, 1);
  assert_true(c == 6);
  assert_int_equal(openblas_get_num_threads(), 1);
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (avx512 && !getenv("OPENBLAS_CORETYPE")) {
    const char *core = openblas_get_corename();
    printf("OpenBLAS core: %s\n", core);
    assert_true(strcmp(core, "Haswell") != 0 && strcmp(core, "Zen") != 0);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(every_index_once),         cgt_test(pieces_do_not_depend_on_threads),
      cgt_test(split_points_are_aligned),
      cgt_test(nested_jobs_run_inline),   cgt_test(concurrent_callers),
      cgt_test(forked_child_has_a_pool),  cgt_test(split_gemm_matches_one_call),
      cgt_test(blas_uses_avx512_where_it_can),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

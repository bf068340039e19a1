/* test_dist.c - data-parallel training (src/dist). Runs as one process under ctest and as N
 * ranks under `mpirun -np N` (tests/dist_reduce.sh); every check holds for any N. Without
 * MPI: shards, the sampler, fingerprints and the cost model, and CG_ENOTFOUND from the rest.
 * With MPI: bucketed reductions (exact sums, rank-order sums bitwise equal to one process
 * adding the parts, overlap), failures reported on every rank, broadcasts, metric means, and
 * training: after every step the variables are bitwise identical on all ranks and match one
 * process on the whole global batch, custom gradients and overrides included. */
#include "util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank_, size_ = 1;

/* Under AddressSanitizer (scripts/check-sanitizers): full stacks at malloc, so that the memory
 * Open MPI itself never frees can be told from cgrad's and left out of the leak report. */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
__attribute__((visibility("default"))) const char *__asan_default_options(void)
{
  return "fast_unwind_on_malloc=0";
}
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void);
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void)
{
  return "leak:libmpi.so\nleak:libopen-pal.so\nleak:libopen-rte.so\nleak:libpmix.so\nleak:libhwloc.so\n"
         "leak:libevent\n";
}

/* ======================================================================================
 * Without MPI, or before cg_dist_init
 * ==================================================================================== */

static void test_shard_range(void **state)
{
  int64_t b, c, want[3][2] = {{0, 4}, {4, 3}, {7, 3}};
  for (int r = 0; r < 3; r++) {
    assert_int_equal(cg_dist_shard_range(10, r, 3, &b, &c), CG_OK);
    assert_int_equal(b, want[r][0]);
    assert_int_equal(c, want[r][1]);
  }
  /* fewer rows than ranks: the last ranks get none */
  for (int r = 0; r < 4; r++) {
    assert_int_equal(cg_dist_shard_range(2, r, 4, &b, &c), CG_OK);
    assert_int_equal(c, r < 2 ? 1 : 0);
    assert_int_equal(b, r < 2 ? r : 2);
  }
  assert_int_equal(cg_dist_shard_range(10, 3, 3, &b, &c), CG_ERANGE);
  assert_error(CG_ERANGE, "rank 3 of 3 ranks, 10 rows");
  assert_int_equal(cg_dist_shard_range(-1, 0, 1, &b, &c), CG_ERANGE);
  assert_error(CG_ERANGE, "need 0 <= rank < size and rows >= 0");
  assert_int_equal(cg_dist_shard_range(10, 0, 1, NULL, &c), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_dist_shard_range: begin is NULL");
}

/* 23 examples whose image rows hold (i, -i) and labels i. */
static cg_dataset small_dataset(void)
{
  double img[46], lab[23];
  for (int i = 0; i < 23; i++) img[2 * i] = i, img[2 * i + 1] = -i, lab[i] = i;
  int64_t si[2] = {23, 2}, sl[1] = {23};
  cg_dataset d = {cg_keep(cgt_f32(2, si, img)), cg_keep(cg_cast(cgt_f64(1, sl, lab), CG_I64))};
  return d;
}

/* The shards of every rank put together are the batcher's global batch, row for row. */
static void test_sampler_matches_batcher(void **state)
{
  cg_dataset d = small_dataset();
  const int ranks = 3;
  cg_batcher *b = cg_batcher_new(&d, 10, 1, 42);
  cg_dist_sampler *s[3];
  for (int r = 0; r < ranks; r++) assert_non_null(s[r] = cg_dist_sampler_new(&d, 10, 1, 42, r, ranks));
  assert_int_equal(cg_dist_sampler_num_batches(s[0]), 3);
  for (int epoch = 1; epoch <= 2; epoch++) {
    assert_int_equal(cg_batcher_start_epoch(b, epoch), CG_OK);
    for (int r = 0; r < ranks; r++) assert_int_equal(cg_dist_sampler_start_epoch(s[r], epoch), CG_OK);
    cg_tensor *gx, *gy;
    int batches = 0;
    while (cg_batcher_next(b, &gx, &gy) > 0) {
      int64_t n = cg_tensor_dim(gy, 0), row = 0;
      for (int r = 0; r < ranks; r++) {
        cg_tensor *x, *y;
        int64_t global = -1, begin, count;
        assert_int_equal(cg_dist_sampler_next(s[r], &x, &y, &global), 1);
        assert_int_equal(global, n);
        cg_dist_shard_range(n, r, ranks, &begin, &count);
        assert_int_equal(begin, row);
        assert_int_equal(cg_tensor_dim(x, 0), count);
        assert_int_equal(cg_tensor_dim(x, 1), 2);
        for (int64_t i = 0; i < count; i++, row++) {
          assert_true(cg_tensor_get(y, i) == cg_tensor_get(gy, row));
          assert_true(cg_tensor_get(x, 2 * i + 1) == cg_tensor_get(gx, 2 * row + 1));
        }
      }
      assert_int_equal(row, n);
      batches++;
    }
    assert_int_equal(batches, 3); /* 10, 10 and the last 3 */
    for (int r = 0; r < ranks; r++) {
      cg_tensor *x, *y;
      assert_int_equal(cg_dist_sampler_next(s[r], &x, &y, NULL), 0);
    }
  }
  /* a global batch smaller than the ranks: some ranks get zero rows, not an error */
  cg_dist_sampler *tiny = cg_dist_sampler_new(&d, 2, 0, 0, 3, 4);
  cg_tensor *x, *y;
  assert_int_equal(cg_dist_sampler_next(tiny, &x, &y, NULL), 1);
  assert_int_equal(cg_tensor_dim(x, 0), 0);
  assert_int_equal(cg_tensor_ndim(x), 2);
  cg_dist_sampler_free(tiny);
  for (int r = 0; r < ranks; r++) cg_dist_sampler_free(s[r]);
  cg_batcher_free(b);
  cg_dataset_free(&d);
}

static void test_sampler_bad_input(void **state)
{
  cg_dataset d = small_dataset();
  assert_null(cg_dist_sampler_new(&d, 10, 1, 0, 2, 2));
  assert_error(CG_ERANGE, "cg_dist_sampler_new: rank 2 of 2 ranks");
  assert_null(cg_dist_sampler_new(&d, 0, 1, 0, 0, 1));
  assert_error(CG_EINVAL, "batch size 0 is not positive");
  assert_null(cg_dist_sampler_new(NULL, 10, 1, 0, 0, 1));
  assert_error(CG_EINVAL, "cg_dist_sampler_new: the dataset is NULL");
  int64_t s3[1] = {3};
  cg_dataset bad = {d.images, cg_zeros(CG_I64, 1, s3)};
  assert_null(cg_dist_sampler_new(&bad, 10, 1, 0, 0, 1));
  assert_error(CG_ESHAPE, "images [23,2] and labels [3] do not share a first dimension");
  cg_tensor *x, *y;
  assert_int_equal(cg_dist_sampler_next(NULL, &x, &y, NULL), -1);
  assert_error(CG_EINVAL, "cg_dist_sampler_next: sampler is NULL");
  cg_dataset_free(&d);
}

static void test_fingerprint(void **state)
{
  int64_t s[1] = {3};
  cg_var *a = cg_var_new("w", cgt_f32(1, s, (double[]){1, 2, 3}), 1);
  cg_var *b = cg_var_new("w", cgt_f32(1, s, (double[]){1, 2, 3}), 1);
  cg_var *c = cg_var_new("v", cgt_f32(1, s, (double[]){1, 2, 3}), 1);
  assert_true(cg_dist_fingerprint(&a, 1) == cg_dist_fingerprint(&b, 1));
  assert_true(cg_dist_fingerprint(&a, 1) != cg_dist_fingerprint(&c, 1)); /* names count */
  float next = nextafterf(2.0f, 3.0f);
  cg_var_assign(b, cg_tensor_from(CG_F32, 1, s, (float[]){1, next, 3}));
  assert_true(cg_dist_fingerprint(&a, 1) != cg_dist_fingerprint(&b, 1)); /* one ulp counts */
  cg_var_free(a);
  cg_var_free(b);
  cg_var_free(c);
}

static void test_ring_cost_model(void **state)
{
  /* 2(N-1) steps of bytes/N: 6 x 250 KB at 1 GB/s = 1.5 ms, plus 6 latencies */
  assert_true(fabs(cg_dist_ring_allreduce_seconds(1e6, 4, 1e9, 0) - 1.5e-3) < 1e-15);
  assert_true(fabs(cg_dist_ring_allreduce_seconds(1e6, 4, 1e9, 1e-5) - 1.56e-3) < 1e-15);
  assert_true(cg_dist_ring_allreduce_seconds(1e6, 1, 1e9, 1e-5) == 0);
  /* bytes per rank tend to 2x the gradient: 512 ranks send 2 * 511/512 of it */
  assert_true(fabs(cg_dist_ring_allreduce_seconds(1e6, 512, 1e6, 0) - 2.0 * 511 / 512) < 1e-12);
  assert_true(cg_dist_ring_allreduce_seconds(1e6, 0, 1e9, 0) == -1);
  assert_error(CG_EINVAL, "need bytes >= 0, ranks >= 1, bandwidth > 0");
}

static void test_before_init(void **state)
{
  assert_int_equal(cg_dist_initialized(), 0);
  assert_int_equal(cg_dist_rank(), 0);
  assert_int_equal(cg_dist_size(), 1);
  cg_status want = cg_dist_available() ? CG_ESTATE : CG_ENOTFOUND;
  const char *msg = cg_dist_available() ? "call cg_dist_init first" : "built without MPI";
  assert_int_equal(cg_dist_barrier(), want);
  assert_error(want, msg);
  assert_int_equal(cg_dist_check_same(1, "x"), want);
  assert_error(want, msg);
  assert_null(cg_dist_reducer_new(NULL, 0, NULL));
  assert_error(want, msg);
  double v = 1;
  assert_int_equal(cg_dist_weighted_mean(&v, 1, 1), want);
  assert_error(want, msg);
  assert_int_equal(cg_dist_finalize(), CG_OK); /* nothing to leave */
}

static void test_without_mpi(void **state)
{
  assert_int_equal(cg_dist_init(NULL, NULL), CG_ENOTFOUND);
  assert_error(CG_ENOTFOUND, "cg_dist_init: cgrad was built without MPI");
  assert_int_equal(cg_dist_size(), 1);
}

/* ======================================================================================
 * With MPI (any number of ranks)
 * ==================================================================================== */

static cg_var *var_f32(const char *name, int ndim, const int64_t *shape, double v)
{
  return cg_var_new(name, cg_fill(CG_F32, ndim, shape, v), 1);
}

/* Three variables of two dtypes; with 16-byte buckets each gets its own bucket. */
static void make_vars(cg_var **v)
{
  int64_t s0[2] = {2, 3}, s1[1] = {4}, s2[1] = {5};
  v[0] = var_f32("a", 2, s0, 0);
  v[1] = var_f32("b", 1, s1, 0);
  v[2] = cg_var_new("c", cg_zeros(CG_F64, 1, s2), 1);
}

static void free_vars(cg_var **v, int n)
{
  for (int i = 0; i < n; i++) cg_var_free(v[i]);
}

/* Rank r's gradient i: element k = (r + 1) * (k + 1 + 10 i). */
static cg_tensor *part(cg_var *v, int i, int r)
{
  cg_tensor *t = cg_var_value(v);
  int64_t n = cg_tensor_size(t);
  double vals[8];
  for (int64_t k = 0; k < n; k++) vals[k] = (r + 1) * (k + 1 + 10.0 * i);
  return cg_tensor_dtype(t) == CG_F32 ? cgt_f32(cg_tensor_ndim(t), cg_tensor_shape(t), vals)
                                       : cgt_f64(cg_tensor_ndim(t), cg_tensor_shape(t), vals);
}

static void test_reducer_sums(void **state)
{
  cg_var *v[3];
  make_vars(v);
  for (int mode = 0; mode < 3; mode++) { /* MPI_Allreduce, fixed order, fixed order + overlap */
    cg_dist_reducer_config cfg = {.bucket_bytes = 16, .fixed_order = mode > 0, .overlap = mode == 2};
    cg_dist_reducer *r = cg_dist_reducer_new(v, 3, &cfg);
    assert_non_null(r);
    for (int step = 0; step < 3; step++) {
      cg_tensor *g[3] = {part(v[0], 0, rank_), part(v[1], 1, rank_), part(v[2], 2, rank_)}, *out[3];
      assert_int_equal(cg_dist_allreduce_gradients(r, g, 1.0, out), CG_OK);
      double ranks_sum = size_ * (size_ + 1) / 2.0; /* sum of (r + 1) */
      for (int i = 0; i < 3; i++) {
        assert_int_equal(cg_tensor_dtype(out[i]), cg_tensor_dtype(cg_var_value(v[i])));
        for (int64_t k = 0; k < cg_tensor_size(out[i]); k++)
          assert_true(cg_tensor_get(out[i], k) == ranks_sum * (k + 1 + 10.0 * i));
      }
    }
    cg_dist_stats s;
    assert_int_equal(cg_dist_reducer_stats(r, &s), CG_OK);
    assert_int_equal(s.buckets, 3);
    assert_int_equal(s.steps, 3);
    assert_int_equal(s.ranks, size_);
    assert_true(s.bytes_per_step == 6 * 4 + 4 * 4 + 5 * 8 + 2 * 4); /* + the f32 status pair */
    assert_true(fabs(s.wire_bytes_per_step - 2.0 * (size_ - 1) / size_ * s.bytes_per_step) < 1e-9);
    assert_int_equal(s.overlapping, mode == 2 && size_ > 1);
    cg_dist_reducer_free(r);
  }
  free_vars(v, 3);
}

/* Weighted parts added in rank order are bitwise what one process gets adding them itself. */
static void test_fixed_order_is_bitwise_local_sum(void **state)
{
  int64_t shape[1] = {1000};
  cg_var *v = var_f32("w", 1, shape, 0);
  for (int overlap = 0; overlap < 2; overlap++) {
    cg_dist_reducer_config cfg = {.fixed_order = 1, .overlap = overlap};
    cg_dist_reducer *r = cg_dist_reducer_new(&v, 1, &cfg);
    const double w = 1.0 / 3;
    cg_tensor *mine = cg_random_normal(CG_F32, 1, shape, 0, 1, 1000 + (uint64_t)rank_), *out;
    assert_int_equal(cg_dist_allreduce_gradients(r, &mine, w, &out), CG_OK);
    cg_tensor *want = NULL;
    for (int j = 0; j < size_; j++) {
      cg_tensor *p = cg_mul(cg_random_normal(CG_F32, 1, shape, 0, 1, 1000 + (uint64_t)j), cg_scalar(CG_F32, w));
      want = want ? cg_add(want, p) : p;
    }
    assert_memory_equal(cg_tensor_data(out), cg_tensor_data(want), 1000 * sizeof(float));
    cg_dist_reducer_free(r);
  }
  cg_var_free(v);
}

static void test_reducer_bad_input(void **state)
{
  cg_var *v[3];
  make_vars(v);
  cg_dist_reducer *r = cg_dist_reducer_new(v, 3, NULL);
  int64_t s[1] = {7};
  assert_int_equal(cg_dist_reducer_ready(r, 1, cg_zeros(CG_F32, 1, s), 1), CG_ESHAPE);
  assert_error(CG_ESHAPE, "the gradient of 'b' is f32 [7], the variable f32 [4]");
  assert_int_equal(cg_dist_reducer_ready(r, 3, NULL, 1), CG_ERANGE);
  assert_error(CG_ERANGE, "cg_dist_reducer_ready: variable 3 of 3");
  assert_int_equal(cg_dist_reducer_ready(r, 0, NULL, NAN), CG_EINVAL);
  assert_error(CG_EINVAL, "weight nan is not finite");
  assert_int_equal(cg_dist_reducer_ready(r, 0, NULL, 1), CG_OK);
  assert_int_equal(cg_dist_reducer_ready(r, 0, NULL, 1), CG_ESTATE);
  assert_error(CG_ESTATE, "the gradient of 'a' was already given this step");
  /* finishing without 'b' and 'c' fails this rank's step, and so every rank's */
  cg_tensor *out[3];
  assert_int_equal(cg_dist_reducer_finish(r, out), CG_ESTATE);
  assert_error(CG_ESTATE, "no gradient was given for 'b'");
  /* the reducer is usable again: a full step works */
  cg_tensor *g[3] = {part(v[0], 0, 0), part(v[1], 1, 0), part(v[2], 2, 0)};
  assert_int_equal(cg_dist_allreduce_gradients(r, g, 1.0 / size_, out), CG_OK);
  assert_true(fabs(cg_tensor_get(out[2], 4) - 25) < 1e-12); /* 25 / size from each rank */
  cg_dist_reducer_free(r);
  int64_t s2[1] = {2};
  cg_var *iv = cg_var_new("i", cg_zeros(CG_F32, 1, s2), 1);
  assert_null(cg_dist_reducer_new(&iv, -1, NULL));
  assert_error(CG_EINVAL, "cg_dist_reducer_new: -1 variables");
  cg_var_free(iv);
  free_vars(v, 3);
}

/* The last rank fails mid-step: it keeps its own message, every other rank is told which. */
static void test_failure_reaches_every_rank(void **state)
{
  cg_var *v[3];
  make_vars(v);
  cg_dist_reducer_config cfg = {.bucket_bytes = 16};
  cg_dist_reducer *r = cg_dist_reducer_new(v, 3, &cfg);
  cg_tensor *g[3] = {part(v[0], 0, rank_), part(v[1], 1, rank_), part(v[2], 2, rank_)}, *out[3];
  int bad = size_ - 1;
  assert_int_equal(cg_dist_reducer_ready(r, 2, g[2], 1), CG_OK); /* one bucket may already be on its way */
  if (rank_ == bad) {
    cg_set_error(CG_ECHECK, "the loss is nan (test)");
    cg_dist_reducer_fail(r);
  } else {
    cg_dist_reducer_ready(r, 1, g[1], 1);
    cg_dist_reducer_ready(r, 0, g[0], 1);
  }
  cg_status st = cg_dist_reducer_finish(r, out);
  if (rank_ == bad) {
    assert_int_equal(st, CG_ECHECK);
    assert_error(CG_ECHECK, "the loss is nan (test)");
  } else {
    char want[64];
    snprintf(want, sizeof want, "rank %d of %d failed in this step", bad, size_);
    assert_int_equal(st, CG_EUSER);
    assert_error(CG_EUSER, want);
  }
  /* and agreement on a status outside the reducer */
  st = cg_dist_agree(rank_ == bad ? cg_set_error(CG_EIO, "cannot read data (test)") : CG_OK, "loading");
  if (rank_ == bad) assert_error(CG_EIO, "cannot read data (test)");
  else {
    assert_int_equal(st, CG_EUSER);
    assert_error(CG_EUSER, "failed during loading");
  }
  assert_int_equal(cg_dist_agree(CG_OK, "nothing"), CG_OK);
  cg_dist_reducer_free(r);
  free_vars(v, 3);
}

static void test_collectives(void **state)
{
  int64_t s[1] = {3};
  cg_var *v = var_f32("w", 1, s, rank_), *all[2];
  int64_t s2[1] = {2};
  cg_var *u = cg_var_new("u", cg_fill(CG_F64, 1, s2, -rank_), 0);
  all[0] = v, all[1] = u;
  assert_int_equal(cg_dist_broadcast_variables(all, 2, size_ - 1), CG_OK);
  assert_true(cg_tensor_get(cg_var_value(v), 2) == size_ - 1);
  assert_true(cg_tensor_get(cg_var_value(u), 1) == -(size_ - 1));
  assert_int_equal(cg_dist_check_same(cg_dist_fingerprint(all, 2), "the variables"), CG_OK);
  assert_int_equal(cg_dist_broadcast_variables(all, 2, size_), CG_ERANGE);
  assert_error(CG_ERANGE, "is not a rank of");

  double m[2] = {rank_, 2.0 * rank_}, num = 0, den = 0;
  for (int r = 0; r < size_; r++) num += (double)r * (r + 1), den += r + 1;
  assert_int_equal(cg_dist_weighted_mean(m, 2, rank_ + 1), CG_OK);
  assert_true(fabs(m[0] - num / den) < 1e-12 && fabs(m[1] - 2 * num / den) < 1e-12);
  m[0] = rank_ == 0 ? NAN : 1; /* a rank with weight 0 adds nothing, not even its NaN */
  assert_int_equal(cg_dist_weighted_mean(m, 1, rank_ == 0 && size_ > 1 ? 0 : 1), CG_OK);
  if (size_ > 1) assert_true(m[0] == 1);
  else assert_true(isnan(m[0]));
  assert_int_equal(cg_dist_weighted_mean(m, 1, -1), CG_EINVAL);
  assert_error(CG_EINVAL, "weight -1 is not a finite number >= 0");

  assert_int_equal(cg_dist_check_same(7, "seven"), CG_OK);
  cg_status st = cg_dist_check_same((uint64_t)rank_, "the rank");
  if (size_ > 1) {
    assert_int_equal(st, CG_ESTATE);
    assert_error(CG_ESTATE, "ranks disagree on the rank");
  } else {
    assert_int_equal(st, CG_OK);
  }
  assert_int_equal(cg_dist_barrier(), CG_OK);
  cg_var_free(v);
  cg_var_free(u);
}

/* --- training: distributed against one process ----------------------------------------- */

enum { BATCH = 11, IN = 5, HIDDEN = 4, CLASSES = 3 };

static cg_status xent_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_mean(cg_sparse_softmax_cross_entropy_with_logits(x[0], x[1]), NULL, 0, 0);
  return cg_status_of(y[0]);
}

static cg_status xent_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars)
{
  cg_tensor *labels = cg_ctx_input(ctx, 0), *logits = cg_ctx_input(ctx, 1);
  cg_tensor *onehot = cg_one_hot(labels, CLASSES, 1, 0, CG_F32);
  dx[0] = NULL;
  dx[1] = cg_mul(cg_sub(cg_softmax(logits), onehot),
                 cg_div(dy[0], cg_scalar_like(dy[0], (double)cg_tensor_size(labels))));
  return cg_status_of(dx[1]);
}

/* Registered as "DistTestHalfTanh": half of Tanh's gradient, to show overrides apply. */
static cg_status half_tanh_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *y = cg_node_output(op, 0);
  dx[0] = cg_mul(cg_mul(dy[0], cg_sub(cg_scalar_like(y, 1), cg_square(y))), cg_scalar_like(y, 0.5));
  return cg_status_of(dx[0]);
}

typedef struct {
  cg_layer *net;
  cg_var *vars[4];
  cg_optimizer *opt;
} model;

static void model_new(model *m, const char *name)
{
  m->net = cg_sequential(name);
  assert_int_equal(cg_sequential_add(m->net, cg_dense_layer("h", IN, HIDDEN, CG_ACT_TANH, 5)), CG_OK);
  assert_int_equal(cg_sequential_add(m->net, cg_dense_layer("out", HIDDEN, CLASSES, CG_ACT_NONE, 6)), CG_OK);
  assert_int_equal(cg_layer_variables(m->net, 1, m->vars, 4), 4);
  cg_optimizer_config c = {.kind = CG_OPT_SGD, .lr = 0.5, .momentum = 0.9};
  m->opt = cg_optimizer_new(&c);
}

static void model_free(model *m)
{
  cg_layer_free(m->net);
  cg_optimizer_free(m->opt);
}

/* Step k's global batch (the same on every rank) and rows [begin, begin+count) of it. */
static void batch(int k, int64_t begin, int64_t count, cg_tensor **x, cg_tensor **y)
{
  int64_t sx[2] = {BATCH, IN}, sy[1] = {BATCH};
  double lab[BATCH];
  for (int i = 0; i < BATCH; i++) lab[i] = (i * 7 + k) % CLASSES;
  cg_tensor *gx = cg_random_uniform(CG_F32, 2, sx, -2, 2, 100 + (uint64_t)k);
  cg_tensor *gy = cg_cast(cgt_f64(1, sy, lab), CG_I64);
  *x = cg_slice(gx, (int64_t[]){begin, 0}, (int64_t[]){count, -1});
  *y = cg_slice(gy, (int64_t[]){begin}, (int64_t[]){count});
}

/* d(mean custom-gradient xent over the rows)/d vars, Tanh's gradient overridden if asked. */
static void grads_on(model *m, cg_tensor *x, cg_tensor *y, int override, cg_tensor **g)
{
  static const cg_custom_def xent = {.name = "DistTestXent", .n_inputs = 2, .n_outputs = 1,
                                     .forward = xent_fwd, .backward = xent_bwd};
  if (override) assert_int_equal(cg_gradient_override_push("Tanh", "DistTestHalfTanh"), CG_OK);
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *in[2] = {y, cg_layer_forward(m->net, x, 1)}, *loss;
  assert_int_equal(cg_custom_gradient(&xent, in, &loss), CG_OK);
  cg_tape_end(tape);
  if (override) cg_gradient_override_pop();
  cg_tensor *src[4];
  for (int i = 0; i < 4; i++) src[i] = cg_var_value(m->vars[i]);
  assert_int_equal(cg_tape_gradient(tape, loss, src, 4, g, NULL), CG_OK);
  cg_tape_free(tape);
}

static double max_rel_diff(model *a, model *b)
{
  double worst = 0;
  for (int i = 0; i < 4; i++) {
    cg_tensor *p = cg_var_value(a->vars[i]), *q = cg_var_value(b->vars[i]);
    for (int64_t k = 0; k < cg_tensor_size(p); k++) {
      double u = cg_tensor_get(p, k), v = cg_tensor_get(q, k);
      worst = fmax(worst, fabs(u - v) / fmax(1e-3, fabs(v)));
    }
  }
  return worst;
}

static bool bitwise_equal(model *a, model *b)
{
  for (int i = 0; i < 4; i++) {
    cg_tensor *p = cg_var_value(a->vars[i]), *q = cg_var_value(b->vars[i]);
    if (memcmp(cg_tensor_data(p), cg_tensor_data(q), (size_t)cg_tensor_size(p) * sizeof(float))) return false;
  }
  return true;
}

static void test_training_matches_one_process(void **state)
{
  /* dist: MPI_Allreduce; fixed: rank-order sums with overlap; whole: one process on the global
   * batch; sharded: one process adding the shards' weighted gradients in rank order; plain:
   * like whole but with Tanh's own gradient */
  model dist, fixed, whole, sharded, plain;
  model_new(&dist, "dist");
  model_new(&fixed, "fixed");
  model_new(&whole, "whole");
  model_new(&sharded, "sharded");
  model_new(&plain, "plain");
  cg_dist_reducer *r1 = cg_dist_reducer_new(dist.vars, 4, &(cg_dist_reducer_config){.bucket_bytes = 64});
  cg_dist_reducer *r2 = cg_dist_reducer_new(fixed.vars, 4, &(cg_dist_reducer_config){.fixed_order = 1, .overlap = 1});
  assert_non_null(r1);
  assert_non_null(r2);
  for (int k = 0; k < 8; k++) {
    cg_scope s = cg_scope_begin();
    int64_t begin, count;
    cg_dist_shard_range(BATCH, rank_, size_, &begin, &count);
    cg_tensor *x, *y, *g[4], *sum[4];
    double w = (double)count / BATCH;
    batch(k, begin, count, &x, &y);
    grads_on(&dist, x, y, 1, g);
    assert_int_equal(cg_dist_allreduce_gradients(r1, g, w, sum), CG_OK);
    assert_int_equal(cg_optimizer_apply_gradients(dist.opt, sum, dist.vars, 4), CG_OK);
    /* gradients given one by one, last layer first, as a backward makes them */
    grads_on(&fixed, x, y, 1, g);
    for (int i = 3; i >= 0; i--) assert_int_equal(cg_dist_reducer_ready(r2, i, g[i], w), CG_OK);
    assert_int_equal(cg_dist_reducer_finish(r2, sum), CG_OK);
    assert_int_equal(cg_optimizer_apply_gradients(fixed.opt, sum, fixed.vars, 4), CG_OK);

    batch(k, 0, BATCH, &x, &y);
    grads_on(&whole, x, y, 1, g);
    assert_int_equal(cg_optimizer_apply_gradients(whole.opt, g, whole.vars, 4), CG_OK);
    grads_on(&plain, x, y, 0, g);
    assert_int_equal(cg_optimizer_apply_gradients(plain.opt, g, plain.vars, 4), CG_OK);
    cg_tensor *acc[4] = {0};
    for (int j = 0; j < size_; j++) {
      cg_dist_shard_range(BATCH, j, size_, &begin, &count);
      batch(k, begin, count, &x, &y);
      grads_on(&sharded, x, y, 1, g);
      for (int i = 0; i < 4; i++) {
        cg_tensor *p = cg_mul(g[i], cg_scalar(CG_F32, (double)count / BATCH));
        acc[i] = acc[i] ? cg_add(acc[i], p) : p;
      }
    }
    assert_int_equal(cg_optimizer_apply_gradients(sharded.opt, acc, sharded.vars, 4), CG_OK);
    cg_scope_end(s);

    /* after every step: the same bits on every rank ... */
    assert_int_equal(cg_dist_check_same(cg_dist_fingerprint(dist.vars, 4), "dist's variables"), CG_OK);
    assert_int_equal(cg_dist_check_same(cg_dist_fingerprint(fixed.vars, 4), "fixed's variables"), CG_OK);
    /* ... exactly one process's sum of the same parts when the order is fixed ... */
    assert_true(bitwise_equal(&fixed, &sharded));
    /* ... and one process on the whole batch, to float rounding */
    assert_true(max_rel_diff(&dist, &whole) < 2e-5);
    assert_true(max_rel_diff(&fixed, &whole) < 2e-5);
  }
  /* the override did change the training: it ran on every rank before the reduction */
  assert_true(max_rel_diff(&whole, &plain) > 1e-3);
  cg_dist_reducer_free(r1);
  cg_dist_reducer_free(r2);
  model_free(&dist);
  model_free(&fixed);
  model_free(&whole);
  model_free(&sharded);
  model_free(&plain);
}

static void test_state_errors(void **state)
{
  assert_int_equal(cg_dist_initialized(), 1);
  assert_int_equal(cg_dist_init(NULL, NULL), CG_OK); /* a second call does nothing */
  assert_int_equal(cg_dist_set_timeout(-1), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_dist_set_timeout: -1 seconds is not a duration");
  /* while a background reduction may run, other collectives are refused */
  int64_t s[1] = {4};
  cg_var *v[2] = {var_f32("p", 1, s, 0), var_f32("q", 1, s, 0)};
  cg_dist_reducer_config cfg = {.bucket_bytes = 16, .overlap = 1};
  cg_dist_reducer *r = cg_dist_reducer_new(v, 2, &cfg);
  assert_int_equal(cg_dist_reducer_ready(r, 1, NULL, 1), CG_OK); /* launches the first bucket */
  if (size_ > 1) {
    assert_int_equal(cg_dist_barrier(), CG_ESTATE);
    assert_error(CG_ESTATE, "call cg_dist_reducer_finish first");
  }
  cg_tensor *out[2];
  assert_int_equal(cg_dist_reducer_ready(r, 0, NULL, 1), CG_OK);
  assert_int_equal(cg_dist_reducer_finish(r, out), CG_OK);
  assert_int_equal(cg_dist_barrier(), CG_OK);
  cg_dist_reducer_free(r);
  free_vars(v, 2);
}

int main(int argc, char **argv)
{
  const struct CMUnitTest local[] = {
      cgt_test(test_before_init),      cgt_test(test_shard_range), cgt_test(test_sampler_matches_batcher),
      cgt_test(test_sampler_bad_input), cgt_test(test_fingerprint), cgt_test(test_ring_cost_model),
  };
  int failed = cmocka_run_group_tests_name("dist (no MPI needed)", local, NULL, NULL);
  if (!cg_dist_available()) {
    const struct CMUnitTest without[] = {cgt_test(test_without_mpi)};
    return failed + cmocka_run_group_tests_name("dist (built without MPI)", without, NULL, NULL);
  }
  if (cg_dist_init(&argc, &argv) != CG_OK) {
    fprintf(stderr, "test_dist: %s\n", cg_last_error());
    return 1;
  }
  cg_dist_set_timeout(60); /* a test that leaves ranks out of step stops the job, not hangs */
  rank_ = cg_dist_rank();
  size_ = cg_dist_size();
  assert_int_equal(cg_register_gradient("DistTestHalfTanh", half_tanh_grad, NULL, 0), CG_OK);
  const struct CMUnitTest mpi[] = {
      cgt_test(test_reducer_sums),        cgt_test(test_fixed_order_is_bitwise_local_sum),
      cgt_test(test_reducer_bad_input),   cgt_test(test_failure_reaches_every_rank),
      cgt_test(test_collectives),         cgt_test(test_training_matches_one_process),
      cgt_test(test_state_errors),
  };
  char name[64];
  snprintf(name, sizeof name, "dist (MPI, rank %d of %d)", rank_, size_);
  failed += cmocka_run_group_tests_name(name, mpi, NULL, NULL);
  cg_dist_finalize();
  return failed;
}

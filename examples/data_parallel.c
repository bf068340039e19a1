/* data_parallel.c - data-parallel training the DistributedDataParallel way, with cgrad's
 * distributed API: rank 0's weights broadcast, a sharded sampler, gradients handed to the
 * reducer layer by layer as the backward makes them (so buckets travel while earlier layers
 * are still being differentiated), metrics averaged over ranks.
 *   mpirun -np 2 build/data_parallel            trains 200 steps of the MLP
 *   mpirun -np 2 build/data_parallel --measure  times one backward + allreduce against the
 *                                               layer-by-layer backward without and with overlap */
#include <cgrad.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { LAYERS = 3, PER_RANK_BATCH = 128 };

typedef struct {
  cg_layer *layer[LAYERS]; /* 784-256-256-10, not a Sequential: the backward goes layer by layer */
  cg_var *vars[2 * LAYERS]; /* kernel, bias of each layer, in forward order */
  cg_optimizer *opt;
} mlp;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int mlp_init(mlp *m)
{
  const int64_t sizes[LAYERS + 1] = {784, 256, 256, 10};
  for (int l = 0; l < LAYERS; l++) {
    m->layer[l] = cg_dense_layer(NULL, sizes[l], sizes[l + 1], l < LAYERS - 1 ? CG_ACT_RELU : CG_ACT_NONE, 1 + l);
    if (!m->layer[l] || cg_layer_variables(m->layer[l], 1, &m->vars[2 * l], 2) != 2) return -1;
  }
  cg_optimizer_config c = {.kind = CG_OPT_ADAM, .lr = 1e-3};
  return (m->opt = cg_optimizer_new(&c)) ? 0 : -1;
}

/* One step on this rank's shard; weight = shard rows / global rows. With by_layer, each
 * layer's gradients go to the reducer as soon as that layer is differentiated. */
static cg_status step(mlp *m, cg_dist_reducer *r, cg_tensor *x, cg_tensor *y, double weight, int by_layer,
                      double *loss)
{
  cg_scope s = cg_scope_begin();
  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  int64_t flat[2] = {cg_tensor_dim(x, 0), 784};
  cg_tensor *a[LAYERS + 1] = {cg_reshape(x, 2, flat)};
  for (int l = 0; l < LAYERS; l++) a[l + 1] = cg_layer_forward(m->layer[l], a[l], 1);
  cg_tensor *l_out = cg_loss_sparse_softmax_xent(y, a[LAYERS], CG_REDUCE_MEAN);
  cg_tape_end(tape);
  cg_status st = cg_status_of(l_out);
  cg_tensor *g[2 * LAYERS], *sum[2 * LAYERS];
  if (st == CG_OK && by_layer) {
    /* d loss / (W_l, b_l, a_l), then d a_l seeds the layer below: one walk per layer */
    cg_tensor *target = l_out, *seed = NULL;
    for (int l = LAYERS - 1; l >= 0 && st == CG_OK; l--) {
      cg_tensor *src[3] = {cg_var_value(m->vars[2 * l]), cg_var_value(m->vars[2 * l + 1]), a[l]}, *d[3];
      cg_grad_opts opts = {.output_gradient = seed};
      st = cg_tape_gradient(tape, target, src, l > 0 ? 3 : 2, d, &opts);
      if (st == CG_OK) st = cg_dist_reducer_ready(r, 2 * l + 1, d[1], weight);
      if (st == CG_OK) st = cg_dist_reducer_ready(r, 2 * l, d[0], weight);
      target = a[l];
      seed = l > 0 ? d[2] : NULL;
    }
  } else if (st == CG_OK) {
    cg_tensor *src[2 * LAYERS];
    for (int i = 0; i < 2 * LAYERS; i++) src[i] = cg_var_value(m->vars[i]);
    st = cg_tape_gradient(tape, l_out, src, 2 * LAYERS, g, NULL);
    for (int i = 2 * LAYERS - 1; i >= 0 && st == CG_OK; i--) st = cg_dist_reducer_ready(r, i, g[i], weight);
  }
  if (st != CG_OK) cg_dist_reducer_fail(r); /* the other ranks learn of it in finish */
  st = cg_dist_reducer_finish(r, sum);
  if (st == CG_OK) st = cg_optimizer_apply_gradients(m->opt, sum, m->vars, 2 * LAYERS);
  if (st == CG_OK && loss) *loss = cg_item(l_out);
  cg_tape_free(tape);
  cg_scope_end(s);
  return st;
}

/* Steps over the sampler's batches; returns the median step time (s) and the reducer's stats. */
static cg_status run(mlp *m, cg_dist_sampler *smp, int steps, int by_layer, int overlap, double *median,
                     cg_dist_stats *stats)
{
  cg_dist_reducer_config cfg = {.bucket_bytes = 256 << 10, .overlap = overlap};
  cg_dist_reducer *r = cg_dist_reducer_new(m->vars, 2 * LAYERS, &cfg);
  if (!r) return cg_last_status();
  double times[1000];
  cg_status st = CG_OK;
  int done = 0;
  for (int64_t epoch = 1; done < steps && st == CG_OK; epoch++) {
    cg_dist_sampler_start_epoch(smp, epoch);
    cg_tensor *x, *y;
    int64_t global;
    for (;;) {
      cg_scope s = cg_scope_begin();
      int more = done < steps ? cg_dist_sampler_next(smp, &x, &y, &global) : 0;
      if (more > 0) {
        double t0 = now_s(), loss = 0;
        st = step(m, r, x, y, (double)cg_tensor_dim(y, 0) / (double)global, by_layer, &loss);
        times[done++ % 1000] = now_s() - t0;
        if (done % 50 == 0 && cg_dist_rank() == 0 && !median) printf("step %d: loss %.4f (rank 0's shard)\n", done, loss);
      }
      cg_scope_end(s);
      if (more <= 0 || st != CG_OK) break;
    }
  }
  if (median) { /* sort a copy: the median ignores the odd step slowed by the neighbours */
    int n = done < 1000 ? done : 1000;
    for (int i = 1; i < n; i++)
      for (int j = i; j > 0 && times[j - 1] > times[j]; j--) {
        double t = times[j];
        times[j] = times[j - 1];
        times[j - 1] = t;
      }
    *median = n ? times[n / 2] : 0;
  }
  if (stats) cg_dist_reducer_stats(r, stats);
  cg_dist_reducer_free(r);
  return st;
}

int main(int argc, char **argv)
{
  int measure = argc > 1 && !strcmp(argv[1], "--measure");
  if (cg_dist_init(&argc, &argv) != CG_OK) {
    fprintf(stderr, "data_parallel: %s\n", cg_last_error());
    return 1;
  }
  cg_dist_set_timeout(120); /* a rank that dies or hangs ends the job instead of freezing it */
  int rank = cg_dist_rank(), size = cg_dist_size();
  mlp m = {0};
  cg_dataset d = {0};
  cg_status st = cg_mnist_load(NULL, 1, &d);
  if (st == CG_OK && mlp_init(&m) != 0) st = cg_last_status();
  st = cg_dist_agree(st, "loading the data and building the model");
  if (st == CG_OK) st = cg_dist_broadcast_variables(m.vars, 2 * LAYERS, 0); /* everyone starts from rank 0's */
  cg_dist_sampler *smp = st == CG_OK ? cg_dist_sampler_new(&d, PER_RANK_BATCH * (int64_t)size, 1, 7, rank, size) : NULL;
  if (st == CG_OK && !smp) st = cg_last_status();
  if (st == CG_OK && !measure) {
    st = run(&m, smp, 200, 1, 1, NULL, NULL);
  } else if (st == CG_OK) {
    const char *what[3] = {"one backward, then allreduce", "layer by layer, no overlap", "layer by layer, overlap"};
    for (int k = 0; k < 3 && st == CG_OK; k++) {
      double t;
      cg_dist_stats s;
      run(&m, smp, 20, k > 0, k == 2, &t, &s); /* warm-up */
      st = run(&m, smp, 300, k > 0, k == 2, &t, &s);
      if (st == CG_OK && rank == 0)
        printf("%-30s %7.3f ms per step (median), %.3f ms of allreduce per step, %.3f ms waited for%s\n", what[k],
               1e3 * t, 1e3 * s.reduce_seconds / (double)s.steps, 1e3 * s.exposed_seconds / (double)s.steps,
               k == 2 && !s.overlapping ? " (no thread: one rank)" : "");
    }
  }
  if (st == CG_OK)
    st = cg_dist_check_same(cg_dist_fingerprint(m.vars, 2 * LAYERS), "the variables after training");
  if (st == CG_OK && rank == 0) printf("variables bitwise identical on all %d ranks: yes\n", size);
  if (st != CG_OK) fprintf(stderr, "data_parallel: rank %d of %d: %s\n", rank, size, cg_last_error());
  cg_dist_sampler_free(smp);
  for (int l = 0; l < LAYERS; l++) cg_layer_free(m.layer[l]);
  cg_optimizer_free(m.opt);
  cg_dataset_free(&d);
  cg_dist_finalize();
  return st == CG_OK ? 0 : 1;
}

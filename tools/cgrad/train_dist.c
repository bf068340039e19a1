/* train_dist.c - `cgrad train --distributed`: every rank checks it runs the others'
 * configuration, takes rank 0's variables, trains on its shard of each global batch and adds
 * its gradients to the others' before the optimizer step; metrics are averaged over ranks.
 * Failures are agreed on, so ranks stop together with a message instead of waiting. */
#include "train.h"
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t hash_text(const char *s)
{
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

/* What every rank must run identically: options that change the math, the data's size and
 * where training starts. The data's directory may differ between hosts. */
static uint64_t config_hash(const trainer *t, int first_epoch)
{
  const train_opts *o = &t->o;
  char s[1024];
  snprintf(s, sizeof s, "%s|%d|%d|%lld|%a|%s|%s|%s|%llu|%lld|%lld|%lld|%lld|%d|%lld|%d", o->model, o->epochs,
           o->stop_after, (long long)o->batch, o->lr, o->optimizer, o->schedule, o->loss,
           (unsigned long long)o->seed, (long long)o->limit, (long long)o->holdout,
           (long long)cg_tensor_dim(t->train.labels, 0), (long long)cg_tensor_dim(t->test.labels, 0), first_epoch,
           (long long)o->bucket_kb, o->fixed_order);
  return hash_text(s);
}

/* mpirun ends the surviving ranks with SIGTERM when one dies: each says so before going. */
static char stop_message[512];
static size_t stop_length;

static void on_stop(int sig)
{
  ssize_t ignored = write(STDERR_FILENO, stop_message, stop_length);
  (void)ignored;
  _exit(128 + sig);
}

void train_dist_catch_stop(const trainer *t)
{
  int n = snprintf(stop_message, sizeof stop_message,
                   "cgrad train: rank %d of %d: stopped by the MPI launcher, most likely because another rank "
                   "failed (its message, or mpirun's, says which)%s%s\n",
                   t->rank, t->size, t->o.save ? "; continue from the last checkpoint with --resume " : "",
                   t->o.save ? t->o.save : "");
  stop_length = n > 0 && (size_t)n < sizeof stop_message ? (size_t)n : 0;
  struct sigaction sa = {.sa_handler = on_stop};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
}

cg_status train_dist_setup(trainer *t, int first_epoch)
{
  const train_opts *o = &t->o;
  cg_status st = cg_dist_check_same(config_hash(t, first_epoch),
                                    "the training configuration (options, data sizes, resumed epoch)");
  if (st == CG_OK && o->resume)
    st = cg_dist_check_same(cg_dist_fingerprint(t->vars, t->n_vars) ^ (uint64_t)cg_optimizer_iterations(t->opt),
                            "the checkpoint they restored (variables and optimizer step)");
  cg_var *all[64];
  int n_all = cg_layer_variables(t->model, 0, all, 64);
  if (st == CG_OK) st = cg_dist_broadcast_variables(all, n_all, 0);
  if (st != CG_OK) return st;
  t->sampler = cg_dist_sampler_new(&t->train, o->batch, 1, o->seed, t->rank, t->size);
  st = cg_dist_agree(t->sampler ? CG_OK : cg_last_status(), "making the sharded sampler");
  if (st != CG_OK) return st;
  cg_dist_reducer_config rc = {.bucket_bytes = (size_t)o->bucket_kb * 1024, .fixed_order = o->fixed_order};
  t->reducer = cg_dist_reducer_new(t->vars, t->n_vars, &rc);
  return t->reducer ? CG_OK : cg_last_status();
}

cg_status train_dist_step(trainer *t, cg_tensor *x, cg_tensor *y, int64_t global, double *loss, double *acc)
{
  double t0 = now_s();
  cg_scope s = cg_scope_begin();
  int64_t m = cg_tensor_dim(y, 0);
  cg_tensor *grads[64] = {0}, *sums[64];
  cg_status st = CG_OK;
  *loss = *acc = 0;
  if (m > 0) { /* a rank with no rows of a small last batch adds zeros */
    cg_tape *tape = cg_tape_begin(0);
    cg_tensor *logits = cg_layer_forward(t->model, x, 1);
    cg_tensor *l = logits ? train_loss_of(t, y, logits) : NULL;
    cg_tape_end(tape);
    cg_tensor *src[64];
    for (int i = 0; i < t->n_vars; i++) src[i] = cg_var_value(t->vars[i]);
    st = l ? cg_tape_gradient(tape, l, src, t->n_vars, grads, NULL) : cg_last_status();
    if (st == CG_OK) {
      *loss = cg_item(l);
      *acc = cg_accuracy(logits, y);
      if (!isfinite(*loss))
        st = cg_set_error(CG_ECHECK, "rank %d: the loss is %g at step %lld: bad data, or the run diverged", t->rank,
                          *loss, (long long)t->steps_done + 1);
    }
    cg_tape_free(tape);
  }
  /* the mean over the global batch: this rank's mean loss counts m / global of it */
  for (int i = t->n_vars - 1; i >= 0 && st == CG_OK; i--)
    st = cg_dist_reducer_ready(t->reducer, i, grads[i], (double)m / (double)global);
  if (st != CG_OK) cg_dist_reducer_fail(t->reducer);
  st = cg_dist_reducer_finish(t->reducer, sums);
  if (st == CG_OK) st = cg_optimizer_apply_gradients(t->opt, sums, t->vars, t->n_vars);
  cg_scope_end(s);
  t->steps_done++;
  t->step_seconds += now_s() - t0;
  if (st == CG_OK && t->o.check_every > 0 && t->steps_done % t->o.check_every == 0) {
    cg_var *all[64];
    int n_all = cg_layer_variables(t->model, 0, all, 64);
    char what[96];
    snprintf(what, sizeof what, "the variables after step %lld (bitwise)", (long long)t->steps_done);
    st = cg_dist_check_same(cg_dist_fingerprint(all, n_all), what);
  }
  return st;
}

cg_status train_dist_evaluate(trainer *t, double *loss, double *acc)
{
  /* global batches of 1000 per rank, cut in contiguous shards: one rank walks exactly the
   * batches of the single-process evaluation */
  cg_dist_sampler *s = cg_dist_sampler_new(&t->test, 1000 * (int64_t)t->size, 0, 0, t->rank, t->size);
  cg_status st = s ? CG_OK : cg_last_status();
  double sum_loss = 0, correct = 0;
  int64_t n = 0;
  for (int more = 1; st == CG_OK && more > 0;) {
    cg_scope scope = cg_scope_begin();
    cg_tensor *x, *y;
    more = cg_dist_sampler_next(s, &x, &y, NULL);
    if (more < 0) st = cg_last_status();
    int64_t m = more > 0 ? cg_tensor_dim(y, 0) : 0;
    if (m > 0) {
      cg_tensor *logits = cg_layer_forward(t->model, x, 0);
      cg_tensor *l = cg_loss_sparse_softmax_xent(y, logits, CG_REDUCE_SUM);
      if (!l) st = cg_last_status();
      else {
        sum_loss += cg_item(l);
        correct += cg_accuracy(logits, y) * (double)m;
        n += m;
      }
    }
    cg_scope_end(scope);
  }
  cg_dist_sampler_free(s);
  if ((st = cg_dist_agree(st, "evaluating the test set")) != CG_OK) return st;
  double v[2] = {n ? sum_loss / (double)n : 0, n ? correct / (double)n : 0};
  if ((st = cg_dist_weighted_mean(v, 2, (double)n)) != CG_OK) return st;
  *loss = v[0];
  *acc = v[1];
  return CG_OK;
}

void train_dist_report(const trainer *t)
{
  cg_dist_stats s;
  if (t->rank != 0 || !t->reducer || cg_dist_reducer_stats(t->reducer, &s) != CG_OK || s.steps == 0) return;
  double per = 1.0 / (double)s.steps, mb = 1.0 / (1 << 20);
  double compute = (t->step_seconds - s.exposed_seconds) / (double)t->steps_done;
  printf("distributed: %d ranks, %.2f MiB of gradients per step in %d bucket%s, %.2f MiB sent per rank per step "
         "(ring count), allreduce %.3f ms per step (%.3f ms of it waited for), compute %.3f ms per step\n",
         s.ranks, s.bytes_per_step * mb, s.buckets, s.buckets == 1 ? "" : "s", s.wire_bytes_per_step * mb,
         1e3 * s.reduce_seconds * per, 1e3 * s.exposed_seconds * per, 1e3 * compute);
  /* weak scaling: each rank keeps this run's per-rank batch; the ring's time adds to it */
  const double bandwidth = 25e9 / 8, latency = 10e-6;
  printf("projection, ring allreduce at 25 Gb/s and 10 us per hop, same per-rank batch:");
  const int ranks[] = {8, 64, 512};
  for (int k = 0; k < 3; k++) {
    double ring = cg_dist_ring_allreduce_seconds(s.bytes_per_step, ranks[k], bandwidth, latency);
    printf(" %d ranks %.2f ms/step (%.0f%%)%s", ranks[k], 1e3 * (compute + ring), 100 * compute / (compute + ring),
           k < 2 ? "," : "\n");
  }
}

void train_dist_free(trainer *t)
{
  cg_dist_reducer_free(t->reducer);
  cg_dist_sampler_free(t->sampler);
  t->reducer = NULL;
  t->sampler = NULL;
}

/* cmd_train.c - `cgrad train`: trains the MLP or the CNN on Fashion-MNIST (or any MNIST-format
 * data) with a chosen optimizer and loss, the built-in cross-entropy or the same one written
 * as a custom gradient; saves and resumes checkpoints; logs CSV and plots SVG. With
 * --distributed under mpirun, data parallel over MPI (the per-rank pieces are in
 * train_dist.c); rank 0 alone prints, logs and writes checkpoints. */
#include "commands.h"
#include "train.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
  fprintf(f,
          "usage: cgrad train [options]\n"
          "  --model mlp|cnn        784-256-256-10 ReLU MLP (default) or the conv net\n"
          "  --epochs N             epochs in all, counting resumed ones (default 5)\n"
          "  --stop-after N         stop after epoch N of them (continue later with --resume)\n"
          "  --batch N              batch size (default 128; 64 for the CNN)\n"
          "  --lr X                 learning rate (default 1e-3)\n"
          "  --optimizer NAME       adam (default), adamw, sgd, momentum, nesterov, rmsprop, adagrad\n"
          "  --schedule NAME        cosine (default: decays to 0 over all epochs), constant, or\n"
          "                         step (x0.5 every epoch)\n"
          "  --loss xent|custom-xent  built-in softmax cross-entropy, or the same written as a\n"
          "                         custom gradient (cg_custom_gradient)\n"
          "  --seed N               initial weights and shuffling (default 1)\n"
          "  --data DIR             MNIST-format files (default /usr/share/datasets/fashion-mnist)\n"
          "  --limit N              train on the first N examples only\n"
          "  --holdout N            keep the last N training examples out of training\n"
          "  --save FILE            checkpoint (safetensors) after every epoch, atomically\n"
          "  --resume FILE          continue from a checkpoint written by --save\n"
          "  --log FILE.csv         append one line per epoch\n"
          "  --plot FILE.svg        loss and accuracy curves\n"
          "  --quiet                no progress bar\n"
          "  --distributed          data parallel over MPI: run as `mpirun -np N cgrad train\n"
          "                         --distributed ...`; --batch is the global batch, split over ranks\n"
          "  --bucket-kb N          gradient bytes per allreduce call, in KiB (default 1024)\n"
          "  --fixed-order          add the ranks' gradients in rank order (reproducible sums)\n"
          "  --check-every N        check every N steps that all ranks hold identical variables\n"
          "  --dist-timeout S       stop the job when a rank keeps the others waiting S seconds\n"
          "                         (default 600; 0: wait forever)\n");
}

static bool parse(int argc, char **argv, train_opts *o)
{
  *o = (train_opts){.model = "mlp", .epochs = 5, .batch = 128, .lr = 1e-3, .optimizer = "adam",
                    .schedule = "cosine", .loss = "xent", .seed = 1, .bucket_kb = 1024, .dist_timeout = 600};
  bool batch_given = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool takes = v != NULL;
    if (!strcmp(a, "--quiet")) { o->quiet = true; continue; }
    if (!strcmp(a, "--distributed")) { o->distributed = true; continue; }
    if (!strcmp(a, "--fixed-order")) { o->fixed_order = true; continue; }
    if (!takes) return false;
    if (!strcmp(a, "--model")) o->model = v;
    else if (!strcmp(a, "--epochs")) o->epochs = atoi(v);
    else if (!strcmp(a, "--stop-after")) o->stop_after = atoi(v);
    else if (!strcmp(a, "--batch")) o->batch = atoll(v), batch_given = true;
    else if (!strcmp(a, "--lr")) o->lr = atof(v);
    else if (!strcmp(a, "--optimizer")) o->optimizer = v;
    else if (!strcmp(a, "--schedule")) o->schedule = v;
    else if (!strcmp(a, "--loss")) o->loss = v;
    else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--data")) o->data = v;
    else if (!strcmp(a, "--limit")) o->limit = atoll(v);
    else if (!strcmp(a, "--holdout")) o->holdout = atoll(v);
    else if (!strcmp(a, "--save")) o->save = v;
    else if (!strcmp(a, "--resume")) o->resume = v;
    else if (!strcmp(a, "--log")) o->log = v;
    else if (!strcmp(a, "--plot")) o->plot = v;
    else if (!strcmp(a, "--bucket-kb")) o->bucket_kb = atoll(v);
    else if (!strcmp(a, "--check-every")) o->check_every = atoll(v);
    else if (!strcmp(a, "--dist-timeout")) o->dist_timeout = atof(v);
    else return false;
    i++;
  }
  if (!batch_given && !strcmp(o->model, "cnn")) o->batch = 64; /* the CNN learns more per epoch */
  return o->epochs > 0 && o->stop_after >= 0 && o->batch > 0 && o->lr > 0 && o->limit >= 0 && o->holdout >= 0 &&
         o->bucket_kb > 0 && o->bucket_kb <= (1 << 20) && o->check_every >= 0 && o->dist_timeout >= 0 &&
         (!strcmp(o->loss, "xent") || !strcmp(o->loss, "custom-xent"));
}

static cg_optimizer *make_optimizer(const train_opts *o, int64_t steps_per_epoch)
{
  cg_optimizer_config c = {.lr = o->lr};
  if (!strcmp(o->schedule, "cosine"))
    c.schedule = (cg_lr_schedule){.kind = CG_LR_COSINE, .decay_steps = steps_per_epoch * o->epochs};
  else if (!strcmp(o->schedule, "step"))
    c.schedule = (cg_lr_schedule){.kind = CG_LR_STEP, .step_size = steps_per_epoch, .gamma = 0.5};
  else if (strcmp(o->schedule, "constant")) {
    cg_set_error(CG_EINVAL, "unknown schedule '%s' (cosine, constant or step)", o->schedule);
    return NULL;
  }
  const char *n = o->optimizer;
  if (!strcmp(n, "adam")) c.kind = CG_OPT_ADAM;
  else if (!strcmp(n, "adamw")) c.kind = CG_OPT_ADAMW, c.weight_decay = 1e-2;
  else if (!strcmp(n, "sgd")) c.kind = CG_OPT_SGD;
  else if (!strcmp(n, "momentum")) c.kind = CG_OPT_SGD, c.momentum = 0.9;
  else if (!strcmp(n, "nesterov")) c.kind = CG_OPT_SGD, c.momentum = 0.9, c.nesterov = 1;
  else if (!strcmp(n, "rmsprop")) c.kind = CG_OPT_RMSPROP;
  else if (!strcmp(n, "adagrad")) c.kind = CG_OPT_ADAGRAD;
  else {
    cg_set_error(CG_EINVAL, "unknown optimizer '%s'", n);
    return NULL;
  }
  return cg_optimizer_new(&c);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

cg_tensor *train_loss_of(const trainer *t, cg_tensor *labels, cg_tensor *logits)
{
  if (!strcmp(t->o.loss, "custom-xent")) return train_custom_xent(labels, logits);
  return cg_loss_sparse_softmax_xent(labels, logits, CG_REDUCE_MEAN);
}

/* One optimizer step on a batch; writes the batch's loss and accuracy. */
static cg_status train_step(trainer *t, cg_tensor *x, cg_tensor *y, double *loss, double *acc)
{
  cg_scope s = cg_scope_begin();
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *logits = cg_layer_forward(t->model, x, 1);
  cg_tensor *l = logits ? train_loss_of(t, y, logits) : NULL;
  cg_tape_end(tape);
  cg_tensor *src[64], *grads[64];
  for (int i = 0; i < t->n_vars; i++) src[i] = cg_var_value(t->vars[i]);
  cg_status st = l ? cg_tape_gradient(tape, l, src, t->n_vars, grads, NULL) : cg_last_status();
  if (st == CG_OK) st = cg_optimizer_apply_gradients(t->opt, grads, t->vars, t->n_vars);
  if (st == CG_OK) {
    *loss = cg_item(l);
    *acc = cg_accuracy(logits, y);
  }
  cg_tape_free(tape);
  cg_scope_end(s);
  return st;
}

static cg_status evaluate(trainer *t, double *loss, double *acc)
{
  cg_batcher *b = cg_batcher_new(&t->test, 1000, 0, 0);
  if (!b || cg_batcher_start_epoch(b, 0) != CG_OK) {
    cg_batcher_free(b);
    return cg_last_status();
  }
  double sum_loss = 0, correct = 0;
  int64_t n = 0;
  cg_status st = CG_OK;
  for (;;) {
    cg_scope s = cg_scope_begin();
    cg_tensor *x, *y;
    int more = cg_batcher_next(b, &x, &y);
    if (more <= 0) {
      if (more < 0) st = cg_last_status();
      cg_scope_end(s);
      break;
    }
    cg_tensor *logits = cg_layer_forward(t->model, x, 0);
    cg_tensor *l = cg_loss_sparse_softmax_xent(y, logits, CG_REDUCE_SUM);
    if (!l) st = cg_last_status();
    else {
      int64_t m = cg_tensor_size(y);
      sum_loss += cg_item(l);
      correct += cg_accuracy(logits, y) * (double)m;
      n += m;
    }
    cg_scope_end(s);
    if (st != CG_OK) break;
  }
  cg_batcher_free(b);
  *loss = n ? sum_loss / (double)n : NAN;
  *acc = n ? correct / (double)n : NAN;
  return st;
}

static void remember_loss(trainer *t, double loss)
{
  if (t->n_step_loss == t->cap_step_loss) {
    int cap = t->cap_step_loss ? 2 * t->cap_step_loss : 256;
    double *p = realloc(t->step_loss, (size_t)cap * sizeof *p);
    if (!p) return;
    t->step_loss = p;
    t->cap_step_loss = cap;
  }
  t->step_loss[t->n_step_loss++] = loss;
}

static cg_status save(trainer *t, int epoch)
{
  char epoch_s[32], step_s[32], seed_s[32], ranks_s[32];
  snprintf(epoch_s, sizeof epoch_s, "%d", epoch);
  snprintf(step_s, sizeof step_s, "%lld", (long long)cg_optimizer_iterations(t->opt));
  snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)t->o.seed);
  snprintf(ranks_s, sizeof ranks_s, "%d", t->size);
  char desc[4096];
  cg_layer_describe(t->model, desc, sizeof desc);
  const char *keys[] = {"epoch", "step", "model", "seed", "loss", "optimizer", "description", "ranks"};
  const char *values[] = {epoch_s, step_s, t->o.model, seed_s, t->o.loss, t->o.optimizer, desc, ranks_s};
  /* "ranks" only informs: the global batch, not the rank count, fixes the math, so a
   * checkpoint resumes on any number of ranks */
  return cg_checkpoint_save(t->o.save, t->vars, t->n_vars, t->opt, keys, values, t->o.distributed ? 8 : 7);
}

/* Restores weights and optimizer; returns the number of epochs already done, or -1. */
static int resume(trainer *t)
{
  cg_safetensors *f = cg_safetensors_load(t->o.resume);
  const char *epoch = f ? cg_safetensors_meta(f, "epoch") : NULL;
  const char *model = f ? cg_safetensors_meta(f, "model") : NULL;
  int done = epoch ? atoi(epoch) : -1;
  if (f && model && strcmp(model, t->o.model)) {
    cg_set_error(CG_EINVAL, "%s holds a %s model, not %s", t->o.resume, model, t->o.model);
    done = -1;
  } else if (f && !epoch) {
    cg_set_error(CG_EINVAL, "%s has no 'epoch' metadata: not written by cgrad train", t->o.resume);
  }
  cg_safetensors_free(f);
  if (done >= 0 && cg_checkpoint_restore(t->o.resume, t->vars, t->n_vars, t->opt) != CG_OK) done = -1;
  return done;
}

/* Standardises pixels with the training set's mean and standard deviation (in place: the
 * dataset is the trainer's own), which trains the CNN markedly faster than raw [0, 1]. */
static void standardize(cg_dataset *d, double mean, double std)
{
  float *px = cg_tensor_data(d->images);
  for (int64_t i = 0; i < cg_tensor_size(d->images); i++) px[i] = (float)((px[i] - mean) / std);
}

static void pixel_stats(const cg_dataset *d, double *mean, double *std)
{
  const float *px = cg_tensor_data(d->images);
  int64_t n = cg_tensor_size(d->images);
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < n; i++) {
    sum += px[i];
    sq += (double)px[i] * px[i];
  }
  *mean = n ? sum / (double)n : 0;
  *std = n ? sqrt(fmax(sq / (double)n - *mean * *mean, 1e-12)) : 1;
}

static cg_status load_data(trainer *t)
{
  cg_dataset all;
  cg_status st = cg_mnist_load(t->o.data, 1, &all);
  if (st == CG_OK) st = cg_mnist_load(t->o.data, 0, &t->test);
  if (st != CG_OK) return st;
  int64_t n = cg_tensor_dim(all.labels, 0);
  int64_t drop = t->o.limit > 0 && t->o.limit < n ? n - t->o.limit : 0;
  cg_dataset kept = all, rest;
  if (drop + t->o.holdout >= n) {
    cg_dataset_free(&all);
    return cg_set_error(CG_EINVAL, "--limit/--holdout leave no training examples (%lld in the data)", (long long)n);
  }
  if (drop + t->o.holdout > 0) { /* a copy of the rows kept; without one, no second 188 MB */
    st = cg_dataset_split(&all, drop + t->o.holdout, &kept, &rest);
    cg_dataset_free(&all);
    if (st != CG_OK) return st;
    cg_dataset_free(&rest);
  }
  t->train = kept;
  double mean, std;
  pixel_stats(&t->train, &mean, &std);
  standardize(&t->train, mean, std);
  standardize(&t->test, mean, std);
  return CG_OK;
}

/* In a distributed run every rank learns whether all got past `what`; otherwise st as is. */
static cg_status agreed(const trainer *t, cg_status st, const char *what)
{
  return t->o.distributed ? cg_dist_agree(st, what) : st;
}

/* Epoch figures over all ranks, each weighted by the examples it saw (distributed runs). */
static cg_status average_epoch(const trainer *t, double *loss, double *acc, int64_t *seen)
{
  if (!t->o.distributed) return CG_OK;
  double v[3] = {*loss, *acc, (double)*seen * t->size}; /* the global count, for examples/s */
  cg_status st = cg_dist_weighted_mean(v, 3, (double)*seen);
  *loss = v[0];
  *acc = v[1];
  *seen = (int64_t)llround(v[2]);
  return st;
}

static cg_status run(trainer *t)
{
  const train_opts *o = &t->o;
  cg_status st = agreed(t, load_data(t), "loading the data");
  if (st != CG_OK) return st;
  cg_batcher *b = o->distributed ? NULL : cg_batcher_new(&t->train, o->batch, 1, o->seed);
  if (!o->distributed && !b) return cg_last_status();
  int64_t steps = o->distributed ? (cg_tensor_dim(t->train.labels, 0) + o->batch - 1) / o->batch
                                 : cg_batcher_num_batches(b);
  if (!(t->model = train_build_model(o->model, o->seed)) || !(t->opt = make_optimizer(o, steps))) st = cg_last_status();
  if ((st = agreed(t, st, "building the model and optimizer")) != CG_OK) {
    cg_batcher_free(b);
    return st;
  }
  t->n_vars = cg_layer_variables(t->model, 1, t->vars, 64);
  int first = 0;
  if (o->resume && (first = resume(t)) < 0) st = cg_last_status();
  if ((st = agreed(t, st, "restoring the checkpoint")) == CG_OK && o->distributed) st = train_dist_setup(t, first);
  if (st != CG_OK) {
    cg_batcher_free(b);
    return st;
  }
  bool root = t->rank == 0;
  progress *p = progress_new(o->quiet || !root, o->epochs, steps);
  if (root)
    printf("training %s on %lld examples (%lld steps per epoch), %s, lr %g (%s), batch %lld, loss %s\n", o->model,
           (long long)cg_tensor_dim(t->train.labels, 0), (long long)steps, o->optimizer, o->lr, o->schedule,
           (long long)o->batch, o->loss);
  if (root && o->distributed) {
    long long lo = (long long)(o->batch / t->size), hi = (long long)((o->batch + t->size - 1) / t->size);
    printf("distributed over %d rank%s: each takes %lld%s%.0lld examples of every global batch of %lld\n", t->size,
           t->size == 1 ? "" : "s", lo, hi != lo ? " or " : "", hi != lo ? hi : 0LL, (long long)o->batch);
  }
  if (root && first > 0) printf("resumed from %s after epoch %d\n", o->resume, first);
  int last = o->stop_after > 0 && o->stop_after < o->epochs ? o->stop_after : o->epochs;
  for (int epoch = first + 1; epoch <= last && st == CG_OK; epoch++) {
    double t0 = now_s(), sum_loss = 0, sum_acc = 0;
    int64_t step = 0, seen = 0;
    st = o->distributed ? cg_dist_sampler_start_epoch(t->sampler, epoch) : cg_batcher_start_epoch(b, epoch);
    cg_tensor *x, *y;
    for (;;) {
      cg_scope s = cg_scope_begin();
      int64_t global = 0;
      int more = st != CG_OK ? 0 : o->distributed ? cg_dist_sampler_next(t->sampler, &x, &y, &global)
                                                   : cg_batcher_next(b, &x, &y);
      if (more <= 0) {
        if (more < 0) st = cg_last_status();
        cg_scope_end(s);
        break;
      }
      double loss = 0, acc = 0;
      st = o->distributed ? train_dist_step(t, x, y, global, &loss, &acc) : train_step(t, x, y, &loss, &acc);
      int64_t m = cg_tensor_dim(y, 0);
      cg_scope_end(s);
      if (st != CG_OK) break;
      sum_loss += loss * (double)m;
      sum_acc += acc * (double)m;
      seen += m;
      if (++step % 20 == 0) remember_loss(t, loss);
      progress_step(p, epoch, step, seen ? sum_loss / (double)seen : 0, seen ? sum_acc / (double)seen : 0, seen);
    }
    if (st != CG_OK) break;
    epoch_row r = {.epoch = epoch, .train_loss = seen ? sum_loss / (double)seen : 0,
                   .train_acc = seen ? sum_acc / (double)seen : 0};
    if ((st = average_epoch(t, &r.train_loss, &r.train_acc, &seen)) != CG_OK) break;
    r.seconds = now_s() - t0;
    r.examples_per_second = (double)seen / r.seconds;
    st = o->distributed ? train_dist_evaluate(t, &r.test_loss, &r.test_acc) : evaluate(t, &r.test_loss, &r.test_acc);
    if (st != CG_OK) break;
    if (root) progress_epoch(p, &r);
    if (t->n_rows < 1024) t->rows[t->n_rows++] = r;
    if (root && o->log && !csv_append(o->log, &r)) fprintf(stderr, "cgrad train: cannot write %s\n", o->log);
    if (o->save) st = agreed(t, root ? save(t, epoch) : CG_OK, "saving the checkpoint");
  }
  if (st == CG_OK && root && t->n_rows) printf("final test accuracy: %.2f%%\n", 100 * t->rows[t->n_rows - 1].test_acc);
  if (st == CG_OK && o->distributed) train_dist_report(t);
  if (st == CG_OK && root && o->plot) {
    char title[256];
    snprintf(title, sizeof title, "cgrad train --model %s --optimizer %s --loss %s", o->model, o->optimizer, o->loss);
    if (!svg_plot(o->plot, t->step_loss, t->n_step_loss, t->rows, t->n_rows, title))
      fprintf(stderr, "cgrad train: cannot write %s\n", o->plot);
  }
  progress_free(p);
  cg_batcher_free(b);
  return st;
}

/* Joins the MPI job for --distributed; rank 0 of 1 otherwise. */
static cg_status join(trainer *t)
{
  t->rank = 0;
  t->size = 1;
  if (!t->o.distributed) return CG_OK;
  cg_status st = cg_dist_init(NULL, NULL);
  if (st == CG_OK) st = cg_dist_set_timeout(t->o.dist_timeout);
  t->rank = cg_dist_rank();
  t->size = cg_dist_size();
  if (st == CG_OK) train_dist_catch_stop(t);
  return st;
}

int cmd_train(int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
  trainer *t = calloc(1, sizeof *t);
  if (!t) return 1;
  if (!parse(argc, argv, &t->o)) {
    usage(stderr);
    free(t);
    return 2;
  }
  cg_status st = join(t);
  if (st == CG_OK) st = run(t);
  if (st != CG_OK && t->o.distributed)
    fprintf(stderr, "cgrad train: rank %d of %d: %s\n", t->rank, t->size, cg_last_error());
  else if (st != CG_OK)
    fprintf(stderr, "cgrad train: %s\n", cg_last_error());
  train_dist_free(t);
  cg_layer_free(t->model);
  cg_optimizer_free(t->opt);
  cg_dataset_free(&t->train);
  cg_dataset_free(&t->test);
  free(t->step_loss);
  if (t->o.distributed) cg_dist_finalize();
  free(t);
  return st == CG_OK ? 0 : 1;
}

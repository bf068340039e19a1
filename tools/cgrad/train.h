/* train.h - the pieces of `cgrad train`: options, the trainer's state, the model builders,
 * the custom-gradient loss, data-parallel training over MPI (--distributed), and reporting
 * (progress line, CSV log, SVG plot). */
#ifndef CG_TRAIN_H
#define CG_TRAIN_H

#include <cgrad.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct {
  const char *model;     /* mlp | cnn                                       */
  int epochs;
  int stop_after;        /* stop after this epoch (0: run all); resume later */
  int64_t batch;
  double lr;
  const char *optimizer; /* adam | adamw | sgd | momentum | nesterov | rmsprop | adagrad */
  const char *schedule;  /* cosine | constant | step                        */
  const char *loss;      /* xent | custom-xent                              */
  uint64_t seed;
  const char *data;      /* NULL: Debian's Fashion-MNIST                    */
  const char *save, *resume, *log, *plot;
  int64_t limit;         /* use only the first N training examples (0: all)  */
  int64_t holdout;       /* examples held out of training for validation     */
  bool quiet;
  /* --distributed: data parallel over MPI; batch is the global batch            */
  bool distributed;
  int64_t bucket_kb;     /* gradient bucket size (KiB)                       */
  bool fixed_order;      /* sum ranks' gradients in rank order               */
  int64_t check_every;   /* check variables are identical every N steps (0: never) */
  double dist_timeout;   /* watchdog: seconds a collective may wait (0: off) */
} train_opts;

/* --- reporting rows -------------------------------------------------------------------------- */
typedef struct {
  int epoch;
  double train_loss, train_acc, test_loss, test_acc, seconds, examples_per_second;
} epoch_row;

/* --- the trainer: what one run of `cgrad train` holds ---------------------------------------- */
typedef struct {
  train_opts o;
  cg_layer *model;
  cg_var *vars[64];
  int n_vars;
  cg_optimizer *opt;
  cg_dataset train, test;
  double *step_loss; /* every 20th step, for the plot */
  int n_step_loss, cap_step_loss;
  epoch_row rows[1024];
  int n_rows;
  /* distributed runs */
  int rank, size;
  cg_dist_reducer *reducer;
  cg_dist_sampler *sampler;
  int64_t steps_done;      /* steps this process took                          */
  double step_seconds;     /* wall time in those steps, reductions included    */
} trainer;

/* The loss `--loss` names, on this batch. */
cg_tensor *train_loss_of(const trainer *t, cg_tensor *labels, cg_tensor *logits);

/* --- data parallel (train_dist.c) -------------------------------------------------------------- */
/* After the model, optimizer and data (and a resumed checkpoint) are in place on every rank:
 * checks that all ranks run the same configuration and restored the same state, broadcasts
 * rank 0's variables, makes the sampler and the gradient reducer. Collective. */
cg_status train_dist_setup(trainer *t, int first_epoch);
/* One optimizer step on this rank's shard (global: the global batch's size); loss and acc are
 * this shard's. Collective: a rank that fails makes every rank's step fail. */
cg_status train_dist_step(trainer *t, cg_tensor *x, cg_tensor *y, int64_t global, double *loss, double *acc);
/* Test loss and accuracy over the whole test set, each rank evaluating its shard. Collective. */
cg_status train_dist_evaluate(trainer *t, double *loss, double *acc);
/* Makes SIGTERM (how mpirun stops the other ranks when one fails) print why on this rank. */
void train_dist_catch_stop(const trainer *t);
/* Rank 0 prints the reductions' cost and the ring-allreduce projection to more ranks. */
void train_dist_report(const trainer *t);
void train_dist_free(trainer *t);

/* --- models ------------------------------------------------------------------------------- */
cg_layer *train_build_model(const char *name, uint64_t seed);

/* --- the TensorFlow users' pattern: cross-entropy whose gradient is a custom gradient ------- */
cg_tensor *train_custom_xent(cg_tensor *labels, cg_tensor *logits);

/* --- reporting ------------------------------------------------------------------------------ */
typedef struct progress progress;
progress *progress_new(bool quiet, int epochs, int64_t steps_per_epoch);
void progress_step(progress *p, int epoch, int64_t step, double loss, double acc, int64_t examples);
void progress_epoch(progress *p, const epoch_row *row);
void progress_free(progress *p);

/* Appends rows (with a header when the file is new) */
bool csv_append(const char *path, const epoch_row *row);
/* Loss and accuracy curves as an SVG: per-step training loss and per-epoch test figures. */
bool svg_plot(const char *path, const double *step_loss, int n_steps, const epoch_row *rows, int n_rows,
              const char *title);

#endif

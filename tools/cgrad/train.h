/* train.h - the pieces of `cgrad train`: options, the model builders, the custom-gradient
 * loss, and reporting (progress line, CSV log, SVG plot). */
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
} train_opts;

/* --- models ------------------------------------------------------------------------------- */
cg_layer *train_build_model(const char *name, uint64_t seed);

/* --- the TensorFlow users' pattern: cross-entropy whose gradient is a custom gradient ------- */
cg_tensor *train_custom_xent(cg_tensor *labels, cg_tensor *logits);

/* --- reporting ------------------------------------------------------------------------------ */
typedef struct {
  int epoch;
  double train_loss, train_acc, test_loss, test_acc, seconds, examples_per_second;
} epoch_row;

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

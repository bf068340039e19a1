/* bench.h - the workloads of the performance issue (W1..W5), measured on cgrad alone. Each
 * is a function that `cgrad bench` runs in its own process; it prints one line per figure,
 * "key value unit  what", which bench/run matches against the PyTorch scripts' lines. */
#ifndef CG_BENCH_H
#define CG_BENCH_H

#include <cgrad.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct {
  const char *data_dir; /* MNIST-format files (NULL: Debian's Fashion-MNIST)            */
  int epochs;           /* W2: epochs to train (each timed; accuracy after each)        */
  int steps;            /* W3, W4: timed steps (0: the workload's default)              */
  bool quick;           /* fewer repetitions: a smoke test, not a measurement           */
} bench_opts;

typedef int (*bench_fn)(const bench_opts *o); /* 0 on success */

int bench_w1(const bench_opts *o); /* tape overhead: ns per op                            */
int bench_w2(const bench_opts *o); /* MLP training: step, epoch, accuracy, peak RSS       */
int bench_w3(const bench_opts *o); /* CNN training step                                   */
int bench_w4(const bench_opts *o); /* Hessian-vector product (double backward)            */
int bench_w5(const bench_opts *o); /* custom-gradient overhead on the W2 step             */

/* --- shared by the workloads (common.c) ---------------------------------------------------- */
double bench_now(void);                        /* seconds, monotonic                         */
double bench_median(const double *v, int n);   /* of a copy; 0 when n is 0                   */
double bench_peak_rss_mb(void);                /* this process's peak resident set, MiB     */
double bench_cpu_seconds(void);                /* CPU time of all this process's threads    */
void bench_report(const char *key, double value, const char *unit, const char *what);
/* Prints the pending cgrad error (naming where) and returns 1: `return bench_fail("W2");` */
int bench_fail(const char *where);

/* --- floors (floor.c): GEMMs alone, through the path cgrad's ops use ----------------------- */
/* Median ms of the products {m, n, k, transpose_a, transpose_b}, each run once per round. */
double bench_gemm_ms(const int64_t (*shapes)[5], int n);
double bench_peak_gflops(void); /* one 1024^3 f32 product                              */

/* --- the W2-sized MLP shared by W2, W4 and W5 (mlp.c) -------------------------------------- */
typedef struct {
  cg_layer *layers[3]; /* 784-256-256-10                                            */
  cg_var *vars[6];     /* kernel, bias of each layer                                */
  cg_optimizer *opt;   /* Adam, lr 1e-3 (constant)                                  */
} bench_mlp;

/* act: CG_ACT_RELU (W2, W5) or CG_ACT_TANH (W4); the same seed gives the same weights. */
cg_status bench_mlp_init(bench_mlp *m, cg_activation act, uint64_t seed);
void bench_mlp_free(bench_mlp *m);
/* Logits of images [batch, 28, 28, 1]; after the first layer, `after_first` (if not NULL)
 * is applied: W5's custom gradient. */
cg_tensor *bench_mlp_logits(bench_mlp *m, cg_tensor *images,
                            cg_tensor *(*after_first)(cg_tensor *h));
/* One Adam step on the mean softmax cross-entropy of a batch; *loss gets its value. */
cg_status bench_mlp_step(bench_mlp *m, cg_tensor *images, cg_tensor *labels,
                         cg_tensor *(*after_first)(cg_tensor *h), double *loss);
/* Test-set accuracy of the model, in [0, 1] (-1 on error). */
double bench_mlp_accuracy(bench_mlp *m, const char *data_dir);

#endif

/* cmd_bench.c - `cgrad bench`: runs the performance workloads W1..W5 (bench/) on cgrad alone,
 * each in a child process of its own so that its peak memory is its own, and prints one line
 * per figure. bench/run runs the same workloads beside PyTorch's and compares them. */
#include "commands.h"
#include "bench.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct {
  const char *name, *summary;
  bench_fn run;
} workloads[] = {
    {"w1", "tape overhead: 1000 x tanh(y*w + b) on 1x1 and 64x64, ns per op", bench_w1},
    {"w2", "MLP training on Fashion-MNIST: step, epoch, accuracy, peak memory", bench_w2},
    {"w3", "CNN training step, batch 64", bench_w3},
    {"w4", "Hessian-vector product of the W2-sized tanh network (double backward)", bench_w4},
    {"w5", "custom-gradient overhead on the W2 step", bench_w5},
};
enum { N_WORKLOADS = sizeof workloads / sizeof workloads[0] };

static void usage(FILE *f)
{
  fprintf(f, "usage: cgrad bench [WORKLOAD...] [options]   (no workload: all of them)\n\n");
  for (int i = 0; i < N_WORKLOADS; i++) fprintf(f, "  %-4s %s\n", workloads[i].name, workloads[i].summary);
  fprintf(f, "\n  --epochs N   W2: epochs to train and time (default 2)\n"
             "  --steps N    W3, W4: timed steps (default 30 and 40)\n"
             "  --data DIR   MNIST-format files (default /usr/share/datasets/fashion-mnist)\n"
             "  --quick      a few steps of each: checks that they run, measures nothing\n\n"
             "Output: one line per figure, \"key value unit  what\". Threads: CGRAD_NUM_THREADS\n"
             "(default: all cores); the figures' values do not depend on it, only their speed.\n");
}

/* Runs workload i in a child process; returns its exit status (0: success). */
static int run_workload(int i, const bench_opts *o)
{
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return workloads[i].run(o); /* no process to spare: run it here */
  if (pid == 0) _exit(workloads[i].run(o));
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int cmd_bench(int argc, char **argv)
{
  bench_opts o = {0};
  bool chosen[N_WORKLOADS] = {false}, any = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--quick")) { o.quick = true; continue; }
    if (!strcmp(a, "all")) { for (int w = 0; w < N_WORKLOADS; w++) chosen[w] = any = true; continue; }
    int w = 0;
    while (w < N_WORKLOADS && strcasecmp(a, workloads[w].name)) w++;
    if (w < N_WORKLOADS) { chosen[w] = any = true; continue; }
    if (v && !strcmp(a, "--epochs")) o.epochs = atoi(v);
    else if (v && !strcmp(a, "--steps")) o.steps = atoi(v);
    else if (v && !strcmp(a, "--data")) o.data_dir = v;
    else {
      fprintf(stderr, "cgrad bench: unknown argument '%s'\n\n", a);
      usage(stderr);
      return 2;
    }
    i++;
  }
  if (o.epochs < 0 || o.epochs > 64 || o.steps < 0 || o.steps > 200) {
    fprintf(stderr, "cgrad bench: --epochs must be in 0..64 and --steps in 0..200\n");
    return 2;
  }
  int failed = 0;
  for (int w = 0; w < N_WORKLOADS; w++)
    if ((chosen[w] || !any) && run_workload(w, &o) != 0) {
      fprintf(stderr, "cgrad bench: %s failed\n", workloads[w].name);
      failed = 1;
    }
  return failed;
}

/* crash_saver.c - the helper tests/crash_safety.sh kills with SIGKILL. `crash_saver save PATH`
 * takes training steps forever (Adam on three variables), saving a checkpoint after each
 * one and printing its step; it resumes from PATH when PATH exists. `crash_saver check PATH`
 * loads the checkpoint, checks that every tensor in it belongs to one and the same step,
 * and prints that step (exit 0), or says what is wrong (exit 1; 2 when there is no file). */
#include "cgrad.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N_VARS = 3 };

/* Variables of a few MB in all, so that a save takes long enough to be cut in the middle. */
static cg_var *vars[N_VARS];
static cg_optimizer *adam;

static int make_model(void)
{
  static const char *const names[N_VARS] = {"dense/kernel", "embedding", "dense/bias"};
  const int64_t shapes[N_VARS][2] = {{256, 256}, {100000, 1}, {7, 1}};
  const cg_dtype dtypes[N_VARS] = {CG_F32, CG_F64, CG_F32};
  for (int i = 0; i < N_VARS; i++) {
    cg_tensor *zeros = cg_zeros(dtypes[i], 2, shapes[i]);
    vars[i] = zeros ? cg_var_new(names[i], zeros, 1) : NULL;
    cg_release(zeros);
    if (!vars[i]) return -1;
  }
  adam = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM});
  return adam ? 0 : -1;
}

static void free_model(void)
{
  for (int i = 0; i < N_VARS; i++) cg_var_free(vars[i]);
  cg_optimizer_free(adam);
}

static int fail(const char *what)
{
  fprintf(stderr, "crash_saver: %s: %s\n", what, cg_last_error());
  return 1;
}

/* Step s: one Adam update with all-ones gradients (so Adam's m is 1 - 0.9^s everywhere and
 * its iteration count is s), then every variable set to the value s. */
static cg_status take_step(int64_t s)
{
  cg_scope scope = cg_scope_begin();
  cg_tensor *grads[N_VARS];
  cg_status st = CG_OK;
  for (int i = 0; i < N_VARS && st == CG_OK; i++)
    st = cg_status_of(grads[i] = cg_ones_like(cg_var_value(vars[i])));
  if (st == CG_OK) st = cg_optimizer_apply_gradients(adam, grads, vars, N_VARS);
  for (int i = 0; i < N_VARS && st == CG_OK; i++) {
    const cg_tensor *v = cg_var_value(vars[i]);
    cg_tensor *filled = cg_fill(cg_tensor_dtype(v), cg_tensor_ndim(v), cg_tensor_shape(v), (double)s);
    st = filled ? cg_var_assign(vars[i], filled) : cg_last_status();
  }
  cg_scope_end(scope);
  return st;
}

static int save_forever(const char *path)
{
  int64_t step = 0;
  if (access(path, F_OK) == 0) { /* resume where the killed run left off */
    if (cg_checkpoint_restore(path, vars, N_VARS, adam) != CG_OK) return fail("restore");
    step = cg_optimizer_iterations(adam);
  }
  for (;;) {
    step++;
    if (take_step(step) != CG_OK) return fail("step");
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)step);
    const char *key = "step", *value = text;
    if (cg_checkpoint_save(path, vars, N_VARS, adam, &key, &value, 1) != CG_OK) return fail("save");
    printf("%lld\n", (long long)step);
    fflush(stdout);
  }
}

/* Every element of t equals want (within rtol, relative). */
static int all_equal(const cg_tensor *t, double want, double rtol)
{
  for (int64_t i = 0; i < cg_tensor_size(t); i++)
    if (!(fabs(cg_tensor_get(t, i) - want) <= rtol * fabs(want))) return 0;
  return 1;
}

static int check(const char *path)
{
  if (access(path, F_OK) != 0) {
    fprintf(stderr, "crash_saver: %s does not exist\n", path);
    return 2;
  }
  cg_safetensors *f = cg_safetensors_load(path);
  if (!f) return fail("load");
  const char *text = cg_safetensors_meta(f, "step");
  long long step = text ? atoll(text) : -1;
  cg_safetensors_free(f);
  if (step < 1) {
    fprintf(stderr, "crash_saver: %s has no step in its metadata\n", path);
    return 1;
  }
  /* restoring checks names, dtypes and shapes of everything, and changes nothing on failure */
  if (cg_checkpoint_restore(path, vars, N_VARS, adam) != CG_OK) return fail("restore");
  if (cg_optimizer_iterations(adam) != step) {
    fprintf(stderr, "crash_saver: metadata step %lld but optimizer step %lld\n", step,
            (long long)cg_optimizer_iterations(adam));
    return 1;
  }
  for (int i = 0; i < N_VARS; i++)
    if (!all_equal(cg_var_value(vars[i]), (double)step, 0)) {
      fprintf(stderr, "crash_saver: variable '%s' is not from step %lld\n", cg_var_name(vars[i]), step);
      return 1;
    }
  double m = 1 - pow(0.9, (double)step), v = 1 - pow(0.999, (double)step);
  for (int i = 0; i < cg_optimizer_num_slots(adam); i++) {
    const char *name = cg_optimizer_slot_name(adam, i);
    double want = strcmp(strrchr(name, '/'), "/m") == 0 ? m : v;
    if (!all_equal(cg_optimizer_slot(adam, i), want, 1e-4)) {
      fprintf(stderr, "crash_saver: optimizer slot '%s' is not from step %lld\n", name, step);
      return 1;
    }
  }
  if (cg_optimizer_num_slots(adam) != 2 * N_VARS) {
    fprintf(stderr, "crash_saver: %d optimizer slots, expected %d\n", cg_optimizer_num_slots(adam),
            2 * N_VARS);
    return 1;
  }
  printf("%lld\n", step);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc != 3 || (strcmp(argv[1], "save") && strcmp(argv[1], "check"))) {
    fprintf(stderr, "usage: crash_saver save|check PATH\n");
    return 64;
  }
  if (make_model() != 0) return fail("model");
  int rc = !strcmp(argv[1], "save") ? save_forever(argv[2]) : check(argv[2]);
  free_model();
  return rc;
}

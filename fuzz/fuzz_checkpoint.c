/* fuzz_checkpoint.c - libFuzzer target for checkpoint restore: the input is a safetensors
 * file restored into a fixed model (two f32 variables) and an Adam optimizer. Whatever the
 * file holds, restore either succeeds with values of the right shapes or fails with a
 * message and changes nothing: neither the variables nor the optimizer's state. */
#include "common.h"
#include <stdlib.h>
#include <string.h>

static cg_var *vars[2];
static cg_optimizer *opt;

static void make_model(void)
{
  int64_t ks[2] = {2, 3}, bs[1] = {3};
  cg_tensor *k = cg_fill(CG_F32, 2, ks, 0.25), *b = cg_fill(CG_F32, 1, bs, -1.0);
  vars[0] = cg_var_new("dense/kernel", k, 1);
  vars[1] = cg_var_new("dense/bias", b, 1);
  cg_release(k);
  cg_release(b);
  cg_optimizer_config c = {.kind = CG_OPT_ADAM, .lr = 0.01};
  opt = cg_optimizer_new(&c);
  if (!vars[0] || !vars[1] || !opt) abort();
}

/* The bytes of every variable and optimizer slot, and the step count, as one fingerprint. */
static uint64_t fingerprint(void)
{
  uint64_t h = 1469598103934665603ull ^ (uint64_t)cg_optimizer_iterations(opt);
  cg_tensor *t[2 + 16];
  int n = 0;
  for (int i = 0; i < 2; i++) t[n++] = cg_var_value(vars[i]);
  for (int i = 0; i < cg_optimizer_num_slots(opt) && n < 18; i++)
    t[n++] = cg_optimizer_slot(opt, i);
  for (int i = 0; i < n; i++) {
    const uint8_t *p = cg_tensor_data(t[i]);
    size_t bytes = (size_t)cg_tensor_size(t[i]) * cg_dtype_size(cg_tensor_dtype(t[i]));
    for (size_t j = 0; j < bytes; j++) h = (h ^ p[j]) * 1099511628211ull;
    h = (h ^ (uint64_t)cg_tensor_ndim(t[i])) * 1099511628211ull;
  }
  return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!opt) make_model();
  uint64_t before = fingerprint();
  int slots_before = cg_optimizer_num_slots(opt);
  const char *path = fz_write_file("in.ckpt", data, size);
  cg_status st = cg_checkpoint_restore(path, vars, 2, opt);
  if (st != CG_OK) {
    fz_check_error(st, "cg_checkpoint_restore");
    fz_check(st != CG_ENOMEM, "a %zu-byte checkpoint needed too much memory", size);
    fz_check(fingerprint() == before && cg_optimizer_num_slots(opt) == slots_before,
             "a failed restore (%s) changed the model", cg_status_name(st));
  } else {
    int64_t ks[2] = {2, 3};
    cg_tensor *k = cg_var_value(vars[0]), *b = cg_var_value(vars[1]);
    fz_check(cg_tensor_ndim(k) == 2 && !memcmp(cg_tensor_shape(k), ks, sizeof ks) &&
                 cg_tensor_dtype(k) == CG_F32 && cg_tensor_ndim(b) == 1 &&
                 cg_tensor_shape(b)[0] == 3 && cg_tensor_dtype(b) == CG_F32,
             "restore changed a variable's shape or dtype");
    fz_check(cg_optimizer_iterations(opt) >= 0, "negative step count after restore");
    /* the restored state must be usable: one optimizer step with unit gradients */
    cg_scope scope = cg_scope_begin();
    cg_tensor *g[2] = {cg_ones_like(k), cg_ones_like(b)};
    cg_status step = cg_optimizer_apply_gradients(opt, g, vars, 2);
    fz_check(step == CG_OK, "a restored optimizer cannot take a step");
    cg_scope_end(scope);
  }
  cg_clear_error();
  return 0;
}

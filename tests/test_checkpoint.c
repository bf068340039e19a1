/* test_checkpoint.c - model checkpoints: variables and metadata round trip bit-exactly, an
 * Adam optimizer restored from a checkpoint takes the same next step as the one that was
 * saved, and a checkpoint that does not fit (missing variable, wrong shape or dtype, bad
 * optimizer state) is refused with nothing changed. */
#include "util.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *path_in(const char *name)
{
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%.180s", dir, name);
  return buf[k];
}

static void assert_bits(const cg_tensor *a, const cg_tensor *b)
{
  assert_int_equal(cg_tensor_dtype(a), cg_tensor_dtype(b));
  assert_int_equal(cg_tensor_size(a), cg_tensor_size(b));
  assert_memory_equal(cg_tensor_data(a), cg_tensor_data(b),
                      (size_t)cg_tensor_size(a) * cg_dtype_size(cg_tensor_dtype(a)));
}

static cg_var *var_f32(const char *name, int ndim, const int64_t *shape, const double *v, int trainable)
{
  return cg_var_new(name, cgt_f32(ndim, shape, v), trainable);
}

/* ======================================================================================
 * Variables and metadata
 * ==================================================================================== */

static void variables_and_metadata_round_trip(void **state)
{
  cg_var *vars[3] = {
      var_f32("dense/kernel", 2, (int64_t[]){2, 3}, (double[]){0.1, -0.2, 0.3, 1e-8, 5, -6}, 1),
      var_f32("dense/bias", 1, (int64_t[]){3}, (double[]){1, 2, 3}, 1),
      cg_var_new("bn/moving_mean", cgt_f64(1, (int64_t[]){2}, (double[]){0.5, -0.25}), 0),
  };
  cg_tensor *before[3];
  for (int i = 0; i < 3; i++) before[i] = cg_var_read(vars[i]);
  const char *keys[3] = {"step", "epoch", "model"}, *values[3] = {"300", "2", "mlp 784-256-10"};
  const char *path = path_in("model.safetensors");
  assert_int_equal(cg_checkpoint_save(path, vars, 3, NULL, keys, values, 3), CG_OK);

  /* the file is plain safetensors: variables by name, metadata as given */
  cg_safetensors *f = cg_safetensors_load(path);
  assert_non_null(f);
  assert_int_equal(cg_safetensors_count(f), 3);
  assert_bits(cg_safetensors_get(f, "dense/kernel"), before[0]);
  assert_string_equal(cg_safetensors_meta(f, "model"), "mlp 784-256-10");
  assert_string_equal(cg_safetensors_meta(f, "step"), "300");
  assert_null(cg_safetensors_meta(f, "optimizer_iterations"));
  cg_safetensors_free(f);

  for (int i = 0; i < 3; i++) /* training moves on ... */
    assert_int_equal(cg_var_assign(vars[i], cg_add(before[i], cg_scalar_like(before[i], 1))), CG_OK);
  assert_int_equal(cg_checkpoint_restore(path, vars, 3, NULL), CG_OK); /* ... and comes back */
  for (int i = 0; i < 3; i++) assert_bits(cg_var_value(vars[i]), before[i]);
  for (int i = 0; i < 3; i++) cg_var_free(vars[i]);
}

static void extra_tensors_in_the_file_are_ignored(void **state)
{
  cg_var *a = var_f32("a", 1, (int64_t[]){1}, (double[]){1}, 1);
  cg_var *b = var_f32("b", 1, (int64_t[]){1}, (double[]){2}, 1);
  cg_var *both[2] = {a, b};
  const char *path = path_in("extra.safetensors");
  assert_int_equal(cg_checkpoint_save(path, both, 2, NULL, NULL, NULL, 0), CG_OK);
  assert_int_equal(cg_var_assign(b, cgt_f32(1, (int64_t[]){1}, (double[]){9})), CG_OK);
  assert_int_equal(cg_checkpoint_restore(path, &b, 1, NULL), CG_OK);
  assert_tensor(cg_var_value(b), CG_F32, 1, ((int64_t[]){1}), ((double[]){2}), 0);
  cg_var_free(a);
  cg_var_free(b);
}

/* ======================================================================================
 * Optimizer state
 * ==================================================================================== */

static cg_tensor *grad_at(int step)
{
  return cgt_f32(1, (int64_t[]){3}, (double[]){0.5 * step, -1, 0.25 / step});
}

static void adam_resumes_exactly_where_it_stopped(void **state)
{
  cg_optimizer_config c = {.kind = CG_OPT_ADAM, .lr = 0.1};
  cg_optimizer *opt = cg_optimizer_new(&c);
  cg_var *w = var_f32("w", 1, (int64_t[]){3}, (double[]){1, 2, 3}, 1);
  for (int step = 1; step <= 2; step++) {
    cg_tensor *g = grad_at(step);
    assert_int_equal(cg_optimizer_apply_gradients(opt, &g, &w, 1), CG_OK);
  }
  const char *path = path_in("adam.safetensors");
  assert_int_equal(cg_checkpoint_save(path, &w, 1, opt, NULL, NULL, 0), CG_OK);

  cg_safetensors *f = cg_safetensors_load(path);
  assert_string_equal(cg_safetensors_meta(f, "optimizer_iterations"), "2");
  assert_non_null(cg_safetensors_get(f, "optimizer/w/m"));
  assert_non_null(cg_safetensors_get(f, "optimizer/w/v"));
  assert_int_equal(cg_safetensors_count(f), 3);
  cg_safetensors_free(f);

  /* the uninterrupted run's third step */
  cg_tensor *g3 = grad_at(3);
  assert_int_equal(cg_optimizer_apply_gradients(opt, &g3, &w, 1), CG_OK);
  cg_tensor *expected = cg_var_read(w);

  /* a fresh process: other values, a new optimizer, then the checkpoint */
  cg_optimizer *opt2 = cg_optimizer_new(&c);
  cg_var *w2 = var_f32("w", 1, (int64_t[]){3}, (double[]){0, 0, 0}, 1);
  assert_int_equal(cg_checkpoint_restore(path, &w2, 1, opt2), CG_OK);
  assert_int_equal(cg_optimizer_iterations(opt2), 2);
  assert_int_equal(cg_optimizer_num_slots(opt2), 2);
  assert_int_equal(cg_optimizer_apply_gradients(opt2, &g3, &w2, 1), CG_OK);
  assert_bits(cg_var_value(w2), expected);

  cg_optimizer_free(opt);
  cg_optimizer_free(opt2);
  cg_var_free(w);
  cg_var_free(w2);
}

static void optimizer_state_that_does_not_fit_changes_nothing(void **state)
{
  cg_optimizer_config c = {.kind = CG_OPT_ADAM};
  cg_optimizer *opt = cg_optimizer_new(&c);
  cg_var *w = var_f32("w", 1, (int64_t[]){2}, (double[]){1, 2}, 1);

  /* saved without an optimizer */
  const char *plain = path_in("no_opt.safetensors");
  assert_int_equal(cg_checkpoint_save(plain, &w, 1, NULL, NULL, NULL, 0), CG_OK);
  assert_int_equal(cg_var_assign(w, cgt_f32(1, (int64_t[]){2}, (double[]){5, 6})), CG_OK);
  assert_int_equal(cg_checkpoint_restore(plain, &w, 1, opt), CG_ENOTFOUND);
  assert_error(CG_ENOTFOUND, "holds no optimizer state");
  assert_tensor(cg_var_value(w), CG_F32, 1, ((int64_t[]){2}), ((double[]){5, 6}), 0);

  /* a slot shaped unlike its variable, and a step count that is not one */
  const char *names[2] = {"w", "optimizer/w/m"}, *key = "optimizer_iterations";
  cg_tensor *t[2] = {cgt_f32(1, (int64_t[]){2}, (double[]){1, 2}), cg_zeros(CG_F32, 1, (int64_t[]){3})};
  const char *bad_slot = path_in("bad_slot.safetensors"), *three = "3", *abc = "3x";
  assert_int_equal(cg_safetensors_save(bad_slot, names, t, 2, &key, &three, 1), CG_OK);
  assert_int_equal(cg_checkpoint_restore(bad_slot, &w, 1, opt), CG_ESHAPE);
  assert_error(CG_ESHAPE, "optimizer slot 'w/m' in");
  const char *bad_count = path_in("bad_count.safetensors");
  assert_int_equal(cg_safetensors_save(bad_count, names, t, 1, &key, &abc, 1), CG_OK);
  assert_int_equal(cg_checkpoint_restore(bad_count, &w, 1, opt), CG_EINVAL);
  assert_error(CG_EINVAL, "'optimizer_iterations' = '3x', not a step count");

  /* a slot the optimizer does not keep: its own check, still before any change */
  names[1] = "optimizer/w/momentum";
  t[1] = cg_zeros(CG_F32, 1, (int64_t[]){2});
  const char *foreign = path_in("foreign.safetensors");
  assert_int_equal(cg_safetensors_save(foreign, names, t, 2, &key, &three, 1), CG_OK);
  assert_int_equal(cg_checkpoint_restore(foreign, &w, 1, opt), CG_EINVAL);
  assert_error(CG_EINVAL, "w/momentum");

  assert_int_equal(cg_optimizer_iterations(opt), 0);
  assert_int_equal(cg_optimizer_num_slots(opt), 0);
  assert_tensor(cg_var_value(w), CG_F32, 1, ((int64_t[]){2}), ((double[]){5, 6}), 0);
  cg_optimizer_free(opt);
  cg_var_free(w);
}

/* ======================================================================================
 * Variables that do not fit
 * ==================================================================================== */

static void a_variable_that_does_not_fit_changes_nothing(void **state)
{
  cg_var *a = var_f32("a", 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6}, 1);
  cg_var *b = var_f32("b", 1, (int64_t[]){2}, (double[]){7, 8}, 1);
  cg_var *vars[2] = {a, b};
  const char *path = path_in("fit.safetensors");
  assert_int_equal(cg_checkpoint_save(path, vars, 2, NULL, NULL, NULL, 0), CG_OK);
  assert_int_equal(cg_var_assign(a, cg_zeros(CG_F32, 2, (int64_t[]){2, 3})), CG_OK);

  cg_var *missing = var_f32("c", 1, (int64_t[]){2}, (double[]){0, 0}, 1);
  cg_var *with_missing[2] = {a, missing};
  assert_int_equal(cg_checkpoint_restore(path, with_missing, 2, NULL), CG_ENOTFOUND);
  assert_error(CG_ENOTFOUND, "has no tensor for variable 'c'");

  cg_var *wrong_shape = var_f32("b", 2, (int64_t[]){1, 2}, (double[]){0, 0}, 1);
  cg_var *with_shape[2] = {a, wrong_shape};
  assert_int_equal(cg_checkpoint_restore(path, with_shape, 2, NULL), CG_ESHAPE);
  assert_error(CG_ESHAPE, "variable 'b' is f32 [1,2] but");
  assert_int_equal(cg_checkpoint_restore(path, with_shape, 2, NULL), CG_ESHAPE);
  assert_error(CG_ESHAPE, "holds f32 [2]");

  cg_var *wrong_dtype = cg_var_new("b", cgt_f64(1, (int64_t[]){2}, (double[]){0, 0}), 1);
  cg_var *with_dtype[2] = {a, wrong_dtype};
  assert_int_equal(cg_checkpoint_restore(path, with_dtype, 2, NULL), CG_EDTYPE);
  assert_error(CG_EDTYPE, "variable 'b' is f64 [2] but");

  /* a, which did fit, was left alone each time */
  assert_tensor(cg_var_value(a), CG_F32, 2, ((int64_t[]){2, 3}), ((double[]){0, 0, 0, 0, 0, 0}), 0);
  cg_var_free(a);
  cg_var_free(b);
  cg_var_free(missing);
  cg_var_free(wrong_shape);
  cg_var_free(wrong_dtype);
}

/* ======================================================================================
 * Bad arguments and files
 * ==================================================================================== */

static void bad_arguments(void **state)
{
  cg_var *v = var_f32("v", 1, (int64_t[]){1}, (double[]){1}, 1);
  cg_var *slot_like = var_f32("optimizer/v", 1, (int64_t[]){1}, (double[]){1}, 1);
  cg_var *twice[2] = {v, v}, *none[1] = {NULL};
  const char *path = path_in("args.safetensors"), *key = "optimizer_iterations", *val = "1";
  assert_int_equal(cg_checkpoint_save(NULL, &v, 1, NULL, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "path is NULL");
  assert_int_equal(cg_checkpoint_save(path, NULL, 1, NULL, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "vars is NULL but n_vars is 1");
  assert_int_equal(cg_checkpoint_save(path, &v, -1, NULL, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "n_vars is -1");
  assert_int_equal(cg_checkpoint_save(path, none, 1, NULL, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "variable 0 is NULL");
  assert_int_equal(cg_checkpoint_save(path, twice, 2, NULL, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "variables 0 and 1 are both named 'v'");
  assert_int_equal(cg_checkpoint_save(path, &slot_like, 1, NULL, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "starts with 'optimizer/'");
  assert_int_equal(cg_checkpoint_save(path, &v, 1, NULL, &key, &val, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "kept for the optimizer's step count");
  assert_int_equal(cg_checkpoint_save(path, &v, 1, NULL, NULL, NULL, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "n_meta is 1");
  assert_int_equal(access(path, F_OK), -1);

  assert_int_equal(cg_checkpoint_restore(NULL, &v, 1, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "path is NULL");
  assert_int_equal(cg_checkpoint_restore(path, twice, 2, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "both named 'v'");
  assert_int_equal(cg_checkpoint_restore(path, &v, 1, NULL), CG_EIO); /* no such file */
  assert_error(CG_EIO, "cannot open");
  FILE *f = fopen(path, "wb"); /* a broken file is the loader's clear error */
  fputs("garbage", f);
  fclose(f);
  assert_int_equal(cg_checkpoint_restore(path, &v, 1, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "fewer than the 8-byte header length");
  cg_var_free(v);
  cg_var_free(slot_like);
}

static int make_dir(void **state)
{
  snprintf(dir, sizeof dir, "/tmp/cgrad_checkpoint_XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(path_in(e->d_name));
  if (d) closedir(d);
  return rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(variables_and_metadata_round_trip),
      cgt_test(extra_tensors_in_the_file_are_ignored),
      cgt_test(adam_resumes_exactly_where_it_stopped),
      cgt_test(optimizer_state_that_does_not_fit_changes_nothing),
      cgt_test(a_variable_that_does_not_fit_changes_nothing),
      cgt_test(bad_arguments),
  };
  return cmocka_run_group_tests(tests, make_dir, remove_dir);
}

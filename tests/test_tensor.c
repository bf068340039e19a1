/* test_tensor.c - tensors: creation, dtypes, seeded random numbers, printing, reference
 * counting and scopes, and the errors bad shapes give. */
#include "util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void creation_from_data(void **state)
{
  float f[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[2] = {2, 3};
  cg_tensor *t = cg_tensor_from(CG_F32, 2, shape, f);
  double want[6] = {1, 2, 3, 4, 5, 6};
  assert_tensor(t, CG_F32, 2, shape, want, 0);
  assert_int_equal(cg_tensor_dim(t, -1), 3);
  assert_int_equal(cg_tensor_size(t), 6);
  int32_t i[3] = {-1, 0, 7};
  int64_t s3[1] = {3};
  double wi[3] = {-1, 0, 7};
  assert_tensor(cg_tensor_from(CG_I32, 1, s3, i), CG_I32, 1, s3, wi, 0);
  int64_t big[2] = {-1, 0};
  cg_tensor *bad = cg_tensor_from(CG_I64, 1, big, (int64_t[]){5});
  assert_null(bad);
  assert_error(CG_EINVAL, "negative dimension in shape [-1]");
  assert_null(cg_tensor_from(CG_F32, 2, shape, NULL));
  assert_error(CG_EINVAL, "data is NULL");
}

static void fills_and_ranges(void **state)
{
  int64_t shape[2] = {2, 2};
  assert_tensor(cg_zeros(CG_F64, 2, shape), CG_F64, 2, shape, ((double[]){0, 0, 0, 0}), 0);
  assert_tensor(cg_ones(CG_I64, 2, shape), CG_I64, 2, shape, ((double[]){1, 1, 1, 1}), 0);
  assert_tensor(cg_fill(CG_BOOL, 2, shape, 3), CG_BOOL, 2, shape, ((double[]){1, 1, 1, 1}), 0);
  assert_tensor(cg_scalar(CG_F32, 2.5), CG_F32, 0, NULL, ((double[]){2.5}), 0);
  int64_t n5[1] = {5}, n3[1] = {3};
  assert_tensor(cg_arange(CG_I32, 0, 5, 1), CG_I32, 1, n5, ((double[]){0, 1, 2, 3, 4}), 0);
  assert_tensor(cg_arange(CG_F64, 1, 0, -0.4), CG_F64, 1, n3, ((double[]){1, 0.6, 0.2}), 1e-15);
  assert_null(cg_arange(CG_F32, 0, 1, 0));
  assert_error(CG_EINVAL, "step must be finite and nonzero");
}

static void shapes_are_checked(void **state)
{
  int64_t too_big[4] = {1 << 20, 1 << 20, 1 << 20, 1 << 20};
  assert_null(cg_zeros(CG_F32, 4, too_big));
  assert_error(CG_ENOMEM, "too many elements");
  int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  assert_null(cg_zeros(CG_F32, 9, nine));
  assert_error(CG_EINVAL, "rank 9 is outside 0..8");
  assert_null(cg_zeros((cg_dtype)42, 0, NULL));
  assert_error(CG_EDTYPE, "unknown dtype");
  int64_t empty[2] = {0, 3};
  cg_tensor *e = cg_zeros(CG_F32, 2, empty);
  assert_non_null(e);
  assert_int_equal(cg_tensor_size(e), 0);
}

/* The stream is a pure function of (seed, index): these numbers are the same everywhere. */
static void random_is_seeded_and_portable(void **state)
{
  int64_t shape[1] = {1000};
  cg_tensor *a = cg_random_uniform(CG_F64, 1, shape, -1, 1, 42);
  cg_tensor *b = cg_random_uniform(CG_F64, 1, shape, -1, 1, 42);
  cg_tensor *c = cg_random_uniform(CG_F64, 1, shape, -1, 1, 43);
  assert_memory_equal(cg_tensor_data(a), cg_tensor_data(b), 1000 * sizeof(double));
  assert_memory_not_equal(cg_tensor_data(a), cg_tensor_data(c), 1000 * sizeof(double));
  double sum = 0, sq = 0;
  for (int i = 0; i < 1000; i++) {
    double v = cg_tensor_get(a, i);
    assert_true(v >= -1 && v < 1);
    sum += v;
  }
  assert_true(fabs(sum / 1000) < 0.1);
  cg_tensor *n = cg_random_normal(CG_F64, 1, shape, 2, 3, 7);
  sum = 0;
  for (int i = 0; i < 1000; i++) {
    double v = cg_tensor_get(n, i);
    sum += v;
    sq += v * v;
  }
  double mean = sum / 1000, var = sq / 1000 - mean * mean;
  assert_true(fabs(mean - 2) < 0.3);
  assert_true(fabs(sqrt(var) - 3) < 0.3);
  /* golden values: SplitMix64 integer arithmetic, identical on every machine */
  int64_t three[1] = {3};
  cg_tensor *g = cg_random_uniform(CG_F64, 1, three, 0, 1, 0);
  char text[128];
  snprintf(text, sizeof text, "%.12f %.12f %.12f", cg_tensor_get(g, 0), cg_tensor_get(g, 1),
           cg_tensor_get(g, 2));
  assert_string_equal(text, "0.652448486374 0.942889474831 0.087207962788"); /* independent Python model */
  cg_tensor *again = cg_random_uniform(CG_F64, 1, three, 0, 1, 0);
  assert_memory_equal(cg_tensor_data(g), cg_tensor_data(again), 3 * sizeof(double));
  assert_null(cg_random_uniform(CG_F32, 1, three, 1, 0, 0));
  assert_error(CG_EINVAL, "lo <= hi");
  assert_null(cg_random_normal(CG_BOOL, 1, three, 0, 1, 0));
  assert_error(CG_EDTYPE, "not numeric");
}

static void printing_is_numpy_like(void **state)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  int64_t shape[2] = {2, 2};
  cg_fprint(f, cg_tensor_from(CG_F32, 2, shape, (float[]){1, 2.5f, -3, 4}));
  cg_fprint(f, cg_tensor_from(CG_BOOL, 1, shape, (uint8_t[]){1, 0}));
  cg_fprint(f, cg_scalar(CG_I64, 7));
  fclose(f);
  assert_string_equal(buf, "tensor([[1., 2.5],\n[-3., 4.]], dtype=f32)\n"
                           "tensor([True, False], dtype=bool)\n"
                           "tensor(7, dtype=i64)\n");
  free(buf);
  char s[32];
  assert_string_equal(cg_shape_str(cg_zeros(CG_F32, 2, shape), s, sizeof s), "[2,2]");
}

static void scopes_own_new_tensors(void **state)
{
  cg_tensor *kept;
  cg_scope outer = cg_scope_begin();
  cg_scope inner = cg_scope_begin();
  cg_tensor *t = cg_scalar(CG_F64, 3);
  kept = cg_keep(t);
  assert_int_equal(cg_scope_end(outer), CG_ESTATE); /* out of order: refused, nothing freed */
  assert_error(CG_ESTATE, "not the innermost open scope");
  assert_int_equal(cg_scope_end(inner), CG_OK);
  assert_true(cg_item(kept) == 3); /* survived the inner scope */
  assert_int_equal(cg_scope_end(outer), CG_OK);
  assert_int_equal(cg_scope_end(outer), CG_ESTATE);
  cg_clear_error();
}

static void refcounts(void **state)
{
  int outer = (int)(intptr_t)*state; /* teardown ends the scope from cgt_setup */
  assert_int_equal(cg_scope_end(outer), CG_OK);
  cg_tensor *t = cg_scalar(CG_F32, 1); /* no scope: mine */
  cg_retain(t);
  cg_release(t);
  assert_true(cg_item(t) == 1);
  cg_release(t);
  cg_release(NULL);
  *state = (void *)(intptr_t)cg_scope_begin();
}

static void accessors_reject_bad_indices(void **state)
{
  int64_t shape[1] = {2};
  cg_tensor *t = cg_zeros(CG_F32, 1, shape);
  assert_true(isnan(cg_tensor_get(t, 2)));
  assert_error(CG_ERANGE, "index 2 outside a tensor of 2 elements");
  assert_true(isnan(cg_item(t)));
  assert_error(CG_ESHAPE, "has 2 elements, not 1");
  assert_int_equal(cg_tensor_ndim(NULL), -1);
  assert_int_equal(cg_status_of(NULL), CG_EINVAL);
  assert_string_equal(cg_status_name(CG_ESHAPE), "CG_ESHAPE");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(creation_from_data),    cgt_test(fills_and_ranges),
      cgt_test(shapes_are_checked),    cgt_test(random_is_seeded_and_portable),
      cgt_test(printing_is_numpy_like), cgt_test(scopes_own_new_tensors),
      cgt_test(refcounts),             cgt_test(accessors_reject_bad_indices),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_reproducible.c - issue 7's reproducibility: values and gradients are bitwise the same
 * for any thread count (cg_set_num_threads 1..4). Each workload is large enough that its
 * GEMMs, element-wise kernels, reductions and convolutions are cut into several pieces:
 * before the pieces were chosen from the shapes alone, a 2-thread MLP step already differed
 * from a 1-thread one in the last bits (OpenBLAS's results depend on each call's shape). */
#include "util.h"
#include <stdlib.h>
#include <string.h>

/* ======================================================================================
 * What a workload produces: the bytes of every tensor it reports, in order
 * ==================================================================================== */

typedef struct {
  unsigned char *bytes;
  size_t n, cap;
} digest;

static void keep(digest *d, const cg_tensor *t)
{
  assert_non_null(t);
  size_t n = (size_t)cg_tensor_size(t) * cg_dtype_size(cg_tensor_dtype(t));
  if (d->n + n > d->cap) {
    d->cap = 2 * (d->n + n);
    d->bytes = realloc(d->bytes, d->cap);
    assert_non_null(d->bytes);
  }
  memcpy(d->bytes + d->n, cg_tensor_data(t), n);
  d->n += n;
}

/* The gradients of loss (recorded on tape) w.r.t. the model's variables, kept in d. */
static void keep_gradients(digest *d, cg_tape *tape, cg_tensor *loss, cg_layer *model)
{
  cg_var *vars[16];
  cg_tensor *values[16], *grads[16];
  int n = cg_layer_variables(model, 1, vars, 16);
  assert_true(n > 0 && n <= 16);
  for (int i = 0; i < n; i++) values[i] = cg_var_read(vars[i]);
  assert_int_equal(cg_tape_gradient(tape, loss, values, n, grads, NULL), CG_OK);
  for (int i = 0; i < n; i++) keep(d, grads[i]);
}

static cg_tensor *labels_for(int64_t batch, int classes, uint64_t seed)
{
  return cg_cast(cg_random_uniform(CG_F64, 1, (int64_t[]){batch}, 0, classes, seed), CG_I64);
}

/* ======================================================================================
 * Workloads
 * ==================================================================================== */

/* W2's model and batch: three Adam steps; the losses and final parameters. */
static void mlp_training(digest *d)
{
  cg_layer *model = cg_sequential("mlp");
  cg_sequential_add(model, cg_dense_layer("h1", 784, 256, CG_ACT_RELU, 1));
  cg_sequential_add(model, cg_dense_layer("h2", 256, 256, CG_ACT_RELU, 2));
  cg_sequential_add(model, cg_dense_layer("out", 256, 10, CG_ACT_NONE, 3));
  cg_optimizer *adam = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM, .lr = 1e-3});
  cg_tensor *x = cg_random_normal(CG_F32, 2, (int64_t[]){128, 784}, 0, 1, 4);
  cg_tensor *labels = labels_for(128, 10, 5);
  cg_var *vars[6];
  assert_int_equal(cg_layer_variables(model, 1, vars, 6), 6);
  for (int step = 0; step < 3; step++) {
    cg_scope s = cg_scope_begin();
    cg_tape *tape = cg_tape_begin(0);
    cg_tensor *loss = cg_loss_sparse_softmax_xent(labels, cg_layer_forward(model, x, 1), CG_REDUCE_MEAN);
    cg_tape_end(tape);
    cg_tensor *values[6], *grads[6];
    for (int i = 0; i < 6; i++) values[i] = cg_var_read(vars[i]);
    assert_int_equal(cg_tape_gradient(tape, loss, values, 6, grads, NULL), CG_OK);
    assert_int_equal(cg_optimizer_apply_gradients(adam, grads, vars, 6), CG_OK);
    keep(d, loss);
    cg_tape_free(tape);
    cg_scope_end(s);
  }
  for (int i = 0; i < 6; i++) keep(d, cg_var_value(vars[i]));
  cg_optimizer_free(adam);
  cg_layer_free(model);
}

/* W3's CNN on a batch of 32: the loss and every parameter's gradient. */
static void cnn_gradients(digest *d)
{
  const int two[2] = {2, 2};
  cg_layer *model = cg_sequential("cnn");
  cg_sequential_add(model, cg_conv2d_layer("c1", 1, 32, 3, 3, NULL, CG_PAD_SAME, CG_ACT_RELU, 1));
  cg_sequential_add(model, cg_max_pool2d_layer(two, two, CG_PAD_VALID));
  cg_sequential_add(model, cg_conv2d_layer("c2", 32, 64, 3, 3, NULL, CG_PAD_SAME, CG_ACT_RELU, 2));
  cg_sequential_add(model, cg_max_pool2d_layer(two, two, CG_PAD_VALID));
  cg_sequential_add(model, cg_flatten_layer());
  cg_sequential_add(model, cg_dense_layer("out", 3136, 10, CG_ACT_NONE, 3));
  cg_tensor *x = cg_random_normal(CG_F32, 4, (int64_t[]){32, 28, 28, 1}, 0, 1, 4);
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *loss = cg_loss_sparse_softmax_xent(labels_for(32, 10, 5), cg_layer_forward(model, x, 1),
                                                CG_REDUCE_MEAN);
  cg_tape_end(tape);
  keep(d, loss);
  keep_gradients(d, tape, loss, model);
  cg_tape_free(tape);
  cg_layer_free(model);
}

/* Element-wise ops, softmax and reductions over odd sizes, in both float dtypes. */
static cg_tensor *kernels_fn(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *t = cg_tanh(x[0]);
  cg_tensor *rows = cg_sum(cg_mul(cg_softmax(cg_mul(t, x[0])), cg_exp(t)), (const int[]){1}, 1, 0);
  cg_tensor *cols = cg_mean(cg_sigmoid(x[0]), (const int[]){0}, 1, 0);
  return cg_add(cg_sum(cg_square(rows), NULL, 0, 0), cg_sum(cols, NULL, 0, 0));
}

static void kernel_gradients(digest *d)
{
  for (int w = 0; w < 2; w++) {
    cg_dtype dtype = w ? CG_F64 : CG_F32;
    cg_tensor *x = cg_random_normal(dtype, 2, (int64_t[]){301, 1001}, 0, 1, 6 + (uint64_t)w);
    cg_tape *tape = cg_tape_begin(0);
    cg_tape_watch(tape, x);
    cg_tensor *y = kernels_fn(&x, 1, NULL);
    cg_tape_end(tape);
    cg_tensor *g;
    assert_int_equal(cg_tape_gradient(tape, y, &x, 1, &g, NULL), CG_OK);
    keep(d, y);
    keep(d, g);
    cg_tape_free(tape);
  }
}

/* W4's kind of work: a Hessian-vector product (forward over reverse) of a tanh MLP's loss. */
static cg_tensor *tanh_mlp_loss(cg_tensor *const *p, int n, void *user)
{
  cg_tensor *x = ((cg_tensor **)user)[0], *labels = ((cg_tensor **)user)[1];
  cg_tensor *h = cg_tanh(cg_add(cg_matmul(x, p[0]), p[1]));
  return cg_loss_sparse_softmax_xent(labels, cg_matmul(h, p[2]), CG_REDUCE_MEAN);
}

static void hessian_vector_product(digest *d)
{
  cg_tensor *data[2] = {cg_random_normal(CG_F32, 2, (int64_t[]){64, 784}, 0, 1, 7), labels_for(64, 10, 8)};
  const int64_t shapes[3][2] = {{784, 256}, {1, 256}, {256, 10}};
  cg_tensor *p[3], *v[3], *hv[3];
  for (int i = 0; i < 3; i++) {
    p[i] = cg_random_normal(CG_F32, 2, shapes[i], 0, 0.05, 10 + (uint64_t)i);
    v[i] = cg_random_normal(CG_F32, 2, shapes[i], 0, 1, 20 + (uint64_t)i);
  }
  assert_int_equal(cg_hvp(tanh_mlp_loss, data, p, v, 3, hv), CG_OK);
  for (int i = 0; i < 3; i++) keep(d, hv[i]);
}

/* ======================================================================================
 * The check: every workload, thread counts 1..4, against 1
 * ==================================================================================== */

typedef void (*workload)(digest *d);

static void same_bits_for_any_thread_count(workload run, const char *name)
{
  digest one = {0};
  assert_int_equal(cg_set_num_threads(1), CG_OK);
  run(&one);
  for (int threads = 2; threads <= 4; threads++) {
    digest many = {0};
    assert_int_equal(cg_set_num_threads(threads), CG_OK);
    assert_int_equal(cg_num_threads(), threads);
    run(&many);
    assert_int_equal(many.n, one.n);
    size_t differ = 0;
    for (size_t i = 0; i < one.n; i++) differ += one.bytes[i] != many.bytes[i];
    if (differ) fail_msg("%s: %zu of %zu bytes differ with %d threads", name, differ, one.n, threads);
    free(many.bytes);
  }
  free(one.bytes);
  assert_int_equal(cg_set_num_threads(0), CG_OK);
}

static void mlp_training_is_reproducible(void **state) { same_bits_for_any_thread_count(mlp_training, "MLP"); }
static void cnn_gradients_are_reproducible(void **state) { same_bits_for_any_thread_count(cnn_gradients, "CNN"); }
static void kernels_are_reproducible(void **state) { same_bits_for_any_thread_count(kernel_gradients, "kernels"); }
static void hvp_is_reproducible(void **state) { same_bits_for_any_thread_count(hessian_vector_product, "HVP"); }

static void thread_count_setting(void **state)
{
  int by_default = cg_num_threads();
  assert_true(by_default >= 1);
  assert_int_equal(cg_set_num_threads(3), CG_OK);
  assert_int_equal(cg_num_threads(), 3);
  assert_int_equal(cg_set_num_threads(1), CG_OK);
  assert_int_equal(cg_num_threads(), 1);
  assert_int_equal(cg_set_num_threads(65), CG_EINVAL);
  assert_error(CG_EINVAL, "at most 64");
  assert_int_equal(cg_num_threads(), 1); /* a refused call changes nothing */
  assert_int_equal(cg_set_num_threads(0), CG_OK);
  assert_int_equal(cg_num_threads(), by_default);
  assert_int_equal(cg_set_num_threads(-5), CG_OK); /* any n <= 0: the default */
  assert_int_equal(cg_num_threads(), by_default);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(thread_count_setting),
      cgt_test(mlp_training_is_reproducible),
      cgt_test(cnn_gradients_are_reproducible),
      cgt_test(kernels_are_reproducible),
      cgt_test(hvp_is_reproducible),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_layers.c - layers: Dense by hand, Conv2D against conv2d + bias, pools and Flatten
 * against their ops, Dropout (identity, rate, scaling, determinism), BatchNorm (batch and moving
 * statistics), Sequential (names, variables, describe, gradients through a whole model checked
 * numerically in f64), and bad inputs and misuse with their exact errors. */
#include "util.h"
#include "nn/layer.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void set_var(cg_var *v, int ndim, const int64_t *shape, const double *values)
{
  cg_tensor *t = cg_tensor_from(CG_F64, ndim, shape, values);
  assert_int_equal(cg_var_assign(v, cg_cast(t, cg_tensor_dtype(cg_var_value(v)))), CG_OK);
}

static cg_var *var_at(cg_layer *layer, int i)
{
  cg_var *vars[16];
  assert_true(cg_layer_variables(layer, 0, vars, 16) > i);
  return vars[i];
}

static void assert_same_tensor(const cg_tensor *a, const cg_tensor *b, double tol)
{
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(cg_tensor_ndim(a), cg_tensor_ndim(b));
  assert_int_equal(cg_tensor_size(a), cg_tensor_size(b));
  for (int i = 0; i < cg_tensor_ndim(a); i++)
    assert_int_equal(cg_tensor_dim(a, i), cg_tensor_dim(b, i));
  for (int64_t i = 0; i < cg_tensor_size(a); i++)
    if (fabs(cg_tensor_get(a, i) - cg_tensor_get(b, i)) > tol)
      fail_msg("element %lld: %.9g vs %.9g", (long long)i, cg_tensor_get(a, i),
               cg_tensor_get(b, i));
}

/* ======================================================================================
 * Dense
 * ==================================================================================== */

static void dense_forward_by_hand(void **state)
{
  cg_layer *linear = cg_dense_layer("lin", 3, 2, CG_ACT_NONE, 1);
  cg_layer *relu = cg_dense_layer("rel", 3, 2, CG_ACT_RELU, 1);
  int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s2[1] = {2}, s22[2] = {2, 2};
  double w[6] = {1, -1, 0, 2, -1, 0.5}, b[2] = {0.5, -1};
  for (int i = 0; i < 2; i++) {
    cg_layer *l = i ? relu : linear;
    set_var(var_at(l, 0), 2, s32, w);
    set_var(var_at(l, 1), 1, s2, b);
  }
  cg_tensor *x = cgt_f32(2, s23, (double[]){1, 2, 3, 4, 5, 6});
  /* x W = [[1+0-3, -1+4+1.5], [4+0-6, -4+10+3]] = [[-2, 4.5], [-2, 9]]; + b */
  assert_tensor(cg_layer_forward(linear, x, 0), CG_F32, 2, s22, ((double[]){-1.5, 3.5, -1.5, 8}),
                1e-6);
  assert_tensor(cg_layer_forward(relu, x, 1), CG_F32, 2, s22, ((double[]){0, 3.5, 0, 8}), 1e-6);
  cg_layer_free(linear);
  cg_layer_free(relu);
}

static void dense_variables_names_and_initial_values(void **state)
{
  cg_layer *d = cg_dense_layer("hidden", 4, 3, CG_ACT_TANH, 99);
  cg_var *vars[4] = {0};
  assert_int_equal(cg_layer_variables(d, 0, vars, 4), 2);
  assert_string_equal(cg_var_name(vars[0]), "hidden/kernel");
  assert_string_equal(cg_var_name(vars[1]), "hidden/bias");
  assert_true(cg_var_trainable(vars[0]) && cg_var_trainable(vars[1]));
  int64_t s43[2] = {4, 3}, s3[1] = {3};
  cg_initializer init = {CG_INIT_GLOROT_UNIFORM, 0, 0};
  cg_tensor *glorot = cg_init_tensor(init, CG_F32, 2, s43, 99);
  assert_tensor(cg_var_value(vars[0]), CG_F32, 2, s43, NULL, 0);
  assert_memory_equal(cg_tensor_data(cg_var_value(vars[0])), cg_tensor_data(glorot),
                      12 * sizeof(float));
  assert_tensor(cg_var_value(vars[1]), CG_F32, 1, s3, ((double[]){0, 0, 0}), 0);
  assert_string_equal(cg_layer_name(d), "hidden");
  cg_layer_free(d);
}

static void unnamed_layers_get_keras_names(void **state)
{
  cg_layer *a = cg_dense_layer(NULL, 2, 2, CG_ACT_NONE, 1);
  cg_layer *b = cg_dense_layer(NULL, 2, 2, CG_ACT_NONE, 1);
  const char *na = cg_layer_name(a), *nb = cg_layer_name(b);
  /* "dense", then "dense_1", ... in creation order (other tests may have made some first) */
  assert_true(strncmp(na, "dense", 5) == 0 && strncmp(nb, "dense_", 6) == 0);
  int ka = na[5] ? atoi(na + 6) : 0;
  assert_int_equal(atoi(nb + 6), ka + 1);
  char want[64];
  snprintf(want, sizeof want, "%s/kernel", nb);
  assert_string_equal(cg_var_name(var_at(b, 0)), want);
  cg_layer *f = cg_flatten_layer();
  assert_true(strncmp(cg_layer_name(f), "flatten", 7) == 0);
  cg_layer_free(a);
  cg_layer_free(b);
  cg_layer_free(f);
}

/* ======================================================================================
 * Conv2D, pools, Flatten: the layer equals its ops
 * ==================================================================================== */

static void conv2d_layer_matches_conv2d_plus_bias(void **state)
{
  int strides[2] = {2, 1};
  cg_layer *conv = cg_conv2d_layer("c", 3, 4, 3, 2, strides, CG_PAD_SAME, CG_ACT_RELU, 7);
  int64_t xs[4] = {2, 5, 6, 3}, s4[1] = {4}, ks[4] = {3, 2, 3, 4};
  set_var(var_at(conv, 1), 1, s4, (double[]){0.5, -0.25, 0, 1});
  cg_tensor *x = cg_random_normal(CG_F32, 4, xs, 0, 1, 3);
  cg_tensor *k = cg_var_value(var_at(conv, 0));
  assert_tensor(k, CG_F32, 4, ks, NULL, 0);
  cg_tensor *want = cg_relu(cg_bias_add(cg_conv2d(x, k, strides, CG_PAD_SAME, NULL),
                                        cg_var_value(var_at(conv, 1))));
  cg_tensor *got = cg_layer_forward(conv, x, 1);
  int64_t ys[4] = {2, 3, 6, 4};
  assert_tensor(got, CG_F32, 4, ys, NULL, 0);
  assert_same_tensor(got, want, 0);
  assert_string_equal(cg_var_name(var_at(conv, 0)), "c/kernel");
  assert_string_equal(cg_var_name(var_at(conv, 1)), "c/bias");
  cg_layer_free(conv);
}

static void pools_and_flatten_match_their_ops(void **state)
{
  int k2[2] = {2, 2}, k3[2] = {3, 3}, s1[2] = {1, 1};
  cg_layer *maxp = cg_max_pool2d_layer(k2, NULL, CG_PAD_VALID); /* strides = ksize */
  cg_layer *avgp = cg_avg_pool2d_layer(k3, s1, CG_PAD_SAME);
  cg_layer *flat = cg_flatten_layer();
  int64_t xs[4] = {2, 4, 6, 3}, ms[4] = {2, 2, 3, 3}, fs[2] = {2, 72};
  cg_tensor *x = cg_random_normal(CG_F32, 4, xs, 0, 1, 4);
  cg_tensor *m = cg_layer_forward(maxp, x, 1);
  assert_tensor(m, CG_F32, 4, ms, NULL, 0);
  assert_same_tensor(m, cg_max_pool2d(x, k2, k2, CG_PAD_VALID), 0);
  assert_same_tensor(cg_layer_forward(avgp, x, 0), cg_avg_pool2d(x, k3, s1, CG_PAD_SAME), 0);
  cg_tensor *f = cg_layer_forward(flat, x, 0);
  assert_tensor(f, CG_F32, 2, fs, NULL, 0);
  for (int64_t i = 0; i < 144; i++) assert_true(cg_tensor_get(f, i) == cg_tensor_get(x, i));
  cg_layer_free(maxp);
  cg_layer_free(avgp);
  cg_layer_free(flat);
}

/* ======================================================================================
 * Dropout
 * ==================================================================================== */

static double zero_fraction(const cg_tensor *y, double kept_value)
{
  int64_t zeros = 0;
  for (int64_t i = 0; i < cg_tensor_size(y); i++) {
    double v = cg_tensor_get(y, i);
    if (v == 0) zeros++;
    else assert_float_equal(v, kept_value, 1e-6);
  }
  return (double)zeros / (double)cg_tensor_size(y);
}

static void dropout_inference_is_identity(void **state)
{
  cg_layer *drop = cg_dropout_layer(0.5, 1);
  int64_t s[2] = {3, 4};
  cg_tensor *x = cg_random_normal(CG_F32, 2, s, 0, 1, 2);
  assert_same_tensor(cg_layer_forward(drop, x, 0), x, 0);
  cg_layer *none = cg_dropout_layer(0, 1);
  assert_same_tensor(cg_layer_forward(none, x, 1), x, 0); /* rate 0 drops nothing */
  cg_layer_free(drop);
  cg_layer_free(none);
}

static void dropout_training_drops_rate_and_scales_the_rest(void **state)
{
  int64_t s[2] = {100, 100};
  cg_tensor *x = cg_ones(CG_F32, 2, s);
  cg_layer *drop = cg_dropout_layer(0.3, 5), *again = cg_dropout_layer(0.3, 5);
  cg_tensor *y1 = cg_layer_forward(drop, x, 1), *y2 = cg_layer_forward(drop, x, 1);
  /* 10,000 draws: the fraction is within 0.3 +- 0.02 (4.4 standard errors) */
  assert_true(fabs(zero_fraction(y1, 1 / 0.7) - 0.3) < 0.02);
  assert_true(fabs(zero_fraction(y2, 1 / 0.7) - 0.3) < 0.02);
  /* each call a new mask, and the same sequence of masks from the same seed */
  assert_memory_not_equal(cg_tensor_data(y1), cg_tensor_data(y2), 10000 * sizeof(float));
  assert_same_tensor(cg_layer_forward(again, x, 1), y1, 0);
  assert_same_tensor(cg_layer_forward(again, x, 1), y2, 0);
  cg_layer_free(drop);
  cg_layer_free(again);
}

static void dropout_gradient_is_the_mask(void **state)
{
  int64_t s[1] = {50};
  cg_tensor *x = cg_random_normal(CG_F64, 1, s, 0, 1, 6);
  cg_layer *drop = cg_dropout_layer(0.5, 9);
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_tensor *y = cg_layer_forward(drop, x, 1);
  cg_tensor *loss = cg_sum(y, NULL, 0, 0);
  cg_tape_end(tape);
  cg_tensor *dx;
  assert_int_equal(cg_tape_gradient(tape, loss, &x, 1, &dx, NULL), CG_OK);
  for (int64_t i = 0; i < 50; i++) /* dy/dx = 2 where kept, 0 where dropped */
    assert_float_equal(cg_tensor_get(dx, i), cg_tensor_get(y, i) == 0 ? 0 : 2, 1e-12);
  cg_tape_free(tape);
  cg_layer_free(drop);
}

/* ======================================================================================
 * BatchNorm
 * ==================================================================================== */

/* x [8, 3]: channel c has mean about 10 c and spread about c + 1 */
static cg_tensor *channels_apart(void)
{
  double v[24];
  for (int r = 0; r < 8; r++)
    for (int c = 0; c < 3; c++) v[r * 3 + c] = 10 * c + (c + 1) * sin(1.7 * r + c);
  int64_t s[2] = {8, 3};
  return cgt_f32(2, s, v);
}

/* Biased mean and variance of column c of x [rows, channels]. */
static void column_stats(const cg_tensor *x, int rows, int channels, int c, double *mean,
                         double *var)
{
  *mean = *var = 0;
  for (int r = 0; r < rows; r++) *mean += cg_tensor_get(x, r * channels + c) / rows;
  for (int r = 0; r < rows; r++) *var += pow(cg_tensor_get(x, r * channels + c) - *mean, 2) / rows;
}

static void batch_norm_training_normalises_and_moves_statistics(void **state)
{
  cg_layer *bn = cg_batch_norm_layer("bn", 3, 0.9, 1e-6);
  cg_tensor *x = channels_apart();
  cg_tensor *y = cg_layer_forward(bn, x, 1);
  for (int c = 0; c < 3; c++) {
    double m, v, xm, xv;
    column_stats(y, 8, 3, c, &m, &v);
    assert_float_equal(m, 0, 1e-5); /* gamma 1, beta 0: mean 0, variance 1 per channel */
    assert_float_equal(v, 1, 1e-4);
    column_stats(x, 8, 3, c, &xm, &xv);
    /* moving = 0.9 moving + 0.1 batch, from mean 0 and variance 1 */
    assert_float_equal(cg_tensor_get(cg_var_value(var_at(bn, 2)), c), 0.1 * xm, 1e-5);
    assert_float_equal(cg_tensor_get(cg_var_value(var_at(bn, 3)), c), 0.9 + 0.1 * xv, 1e-4);
  }
  cg_var *trainable[4];
  assert_int_equal(cg_layer_variables(bn, 1, trainable, 4), 2);
  assert_string_equal(cg_var_name(trainable[0]), "bn/gamma");
  assert_string_equal(cg_var_name(trainable[1]), "bn/beta");
  assert_string_equal(cg_var_name(var_at(bn, 2)), "bn/moving_mean");
  assert_string_equal(cg_var_name(var_at(bn, 3)), "bn/moving_variance");
  assert_false(cg_var_trainable(var_at(bn, 2)) || cg_var_trainable(var_at(bn, 3)));
  cg_layer_free(bn);
}

static void batch_norm_inference_uses_moving_statistics(void **state)
{
  cg_layer *bn = cg_batch_norm_layer("bn", 3, 0.99, 1e-3);
  int64_t s3[1] = {3}, xs[4] = {2, 2, 2, 3};
  double mm[3] = {1, -2, 0.5}, mv[3] = {4, 0.25, 1}, g[3] = {2, 1, -1}, b[3] = {0, 3, 1};
  set_var(var_at(bn, 0), 1, s3, g);
  set_var(var_at(bn, 1), 1, s3, b);
  set_var(var_at(bn, 2), 1, s3, mm);
  set_var(var_at(bn, 3), 1, s3, mv);
  cg_tensor *x = cg_random_normal(CG_F32, 4, xs, 0, 2, 8);
  cg_tensor *y = cg_layer_forward(bn, x, 0);
  double want[24];
  for (int i = 0; i < 24; i++) {
    int c = i % 3;
    want[i] = (cg_tensor_get(x, i) - mm[c]) / sqrt(mv[c] + 1e-3) * g[c] + b[c];
  }
  assert_tensor(y, CG_F32, 4, xs, want, 1e-5);
  /* inference leaves the moving statistics alone */
  assert_tensor(cg_var_value(var_at(bn, 2)), CG_F32, 1, s3, mm, 0);
  assert_tensor(cg_var_value(var_at(bn, 3)), CG_F32, 1, s3, mv, 0);
  cg_layer_free(bn);
}

static void batch_norm_reduces_all_but_the_last_axis(void **state)
{
  cg_layer *bn = cg_batch_norm_layer(NULL, 2, 0.5, 1e-6);
  int64_t xs[4] = {3, 2, 2, 2};
  cg_tensor *x = cg_random_normal(CG_F32, 4, xs, 5, 3, 10);
  cg_tensor *y = cg_layer_forward(bn, x, 1);
  for (int c = 0; c < 2; c++) {
    double m, v;
    column_stats(y, 12, 2, c, &m, &v);
    assert_float_equal(m, 0, 1e-5);
    assert_float_equal(v, 1, 1e-4);
  }
  cg_layer_free(bn);
}

/* ======================================================================================
 * Sequential and gradients through whole models
 * ==================================================================================== */

static cg_layer *small_mlp(void)
{
  cg_layer *mlp = cg_sequential("mlp");
  assert_int_equal(cg_sequential_add(mlp, cg_dense_layer("h", 4, 5, CG_ACT_TANH, 1)), CG_OK);
  assert_int_equal(cg_sequential_add(mlp, cg_dense_layer("out", 5, 3, CG_ACT_NONE, 2)), CG_OK);
  return mlp;
}

static void sequential_forward_variables_and_describe(void **state)
{
  cg_layer *mlp = small_mlp();
  int64_t xs[2] = {2, 4}, ys[2] = {2, 3};
  cg_tensor *x = cg_random_normal(CG_F32, 2, xs, 0, 1, 3);
  cg_tensor *y = cg_layer_forward(mlp, x, 1);
  assert_tensor(y, CG_F32, 2, ys, NULL, 0);
  cg_var *v[4];
  /* y = tanh(x W1 + b1) W2 + b2 */
  cg_tensor *w[4];
  for (int i = 0; i < 4; i++) w[i] = cg_var_value(var_at(mlp, i));
  cg_tensor *hidden = cg_tanh(cg_bias_add(cg_matmul(x, w[0]), w[1]));
  cg_tensor *want = cg_bias_add(cg_matmul(hidden, w[2]), w[3]);
  assert_same_tensor(y, want, 1e-6);
  assert_int_equal(cg_layer_variables(mlp, 1, v, 4), 4);
  const char *names[4] = {"h/kernel", "h/bias", "out/kernel", "out/bias"};
  for (int i = 0; i < 4; i++) assert_string_equal(cg_var_name(v[i]), names[i]);
  assert_int_equal(cg_layer_variables(mlp, 0, v, 1), 4); /* the count, even past max */
  assert_int_equal(cg_layer_variables(mlp, 0, NULL, 0), 4);

  char buf[512];
  assert_int_equal(cg_layer_describe(mlp, buf, sizeof buf), CG_OK);
  assert_string_equal(buf, "mlp  Sequential(2 layers)  43 parameters\n"
                           "  h    Dense(4 -> 5, tanh)  25 parameters\n"
                           "  out  Dense(5 -> 3)        18 parameters");
  cg_layer *big = cg_dense_layer("dense_1", 784, 256, CG_ACT_RELU, 1);
  assert_int_equal(cg_layer_describe(big, buf, sizeof buf), CG_OK);
  assert_string_equal(buf, "dense_1  Dense(784 -> 256, relu)  200,960 parameters");
  assert_int_equal(cg_layer_describe(big, buf, 10), CG_EINVAL);
  assert_error(CG_EINVAL, "the description of 'dense_1' needs 53 bytes, the buffer has 10");
  assert_string_equal(buf, "dense_1  "); /* 9 characters and the NUL */
  cg_layer_free(big);
  cg_layer_free(mlp);
}

static void describe_each_kind(void **state)
{
  int k[2] = {2, 2}, s[2] = {1, 2};
  cg_layer *net = cg_sequential("net");
  cg_sequential_add(net, cg_conv2d_layer("conv", 1, 8, 3, 3, NULL, CG_PAD_SAME, CG_ACT_RELU, 1));
  cg_sequential_add(net, cg_batch_norm_layer("bn", 8, 0.99, 1e-3));
  cg_sequential_add(net, cg_max_pool2d_layer(k, NULL, CG_PAD_VALID));
  cg_sequential_add(net, cg_avg_pool2d_layer(k, s, CG_PAD_SAME));
  cg_sequential_add(net, cg_dropout_layer(0.25, 1));
  cg_sequential_add(net, cg_flatten_layer());
  char buf[1024];
  assert_int_equal(cg_layer_describe(net, buf, sizeof buf), CG_OK);
  const char *want[] = {"Sequential(6 layers)  112 parameters",
                        "Conv2D(1 -> 8, 3x3, stride 1x1, same, relu)  80 parameters",
                        "BatchNorm(8, momentum 0.99, eps 0.001)", "32 parameters",
                        "MaxPool2D(2x2, stride 2x2, valid)", "AvgPool2D(2x2, stride 1x2, same)",
                        "Dropout(0.25)", "Flatten"};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    if (!strstr(buf, want[i])) fail_msg("'%s' not in:\n%s", want[i], buf);
  cg_layer_free(net);
}

/* sum(model(x) * weights): one scalar that depends on every output */
typedef struct {
  cg_layer *model;
  cg_tensor *weights;
  int training;
} model_fn;

static cg_tensor *weighted_output(cg_tensor *const *x, int n, void *user)
{
  model_fn *m = user;
  return cg_sum(cg_mul(cg_layer_forward(m->model, x[0], m->training), m->weights), NULL, 0, 0);
}

/* The tape's gradient for every variable against central differences on the variable. */
static void assert_variable_gradients(model_fn *m, cg_tensor *x)
{
  cg_var *vars[16];
  int n = cg_layer_variables(m->model, 1, vars, 16);
  cg_tensor *values[16], *grads[16];
  for (int i = 0; i < n; i++) values[i] = cg_var_value(vars[i]);
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *loss = weighted_output(&x, 1, m);
  cg_tape_end(tape);
  assert_int_equal(cg_tape_gradient(tape, loss, values, n, grads, NULL), CG_OK);
  cg_tape_free(tape);
  const double eps = 1e-6;
  for (int i = 0; i < n; i++) {
    /* assigning replaces the value tensor, so keep its shape, not a pointer to it */
    cg_tensor *v0 = cg_var_value(vars[i]);
    int ndim = cg_tensor_ndim(v0);
    int64_t size = cg_tensor_size(v0), shape[CG_MAX_DIMS];
    memcpy(shape, cg_tensor_shape(v0), (size_t)ndim * sizeof *shape);
    double buf[512];
    assert_true(size <= 512);
    cg_tensor_to_f64(v0, buf, size);
    for (int64_t j = 0; j < size; j++) {
      double f[2], keep = buf[j];
      for (int side = 0; side < 2; side++) {
        buf[j] = keep + (side ? -eps : eps);
        assert_int_equal(cg_var_assign(vars[i], cg_tensor_from(CG_F64, ndim, shape, buf)), CG_OK);
        f[side] = cg_item(weighted_output(&x, 1, m));
      }
      buf[j] = keep;
      assert_int_equal(cg_var_assign(vars[i], cg_tensor_from(CG_F64, ndim, shape, buf)), CG_OK);
      double numeric = (f[0] - f[1]) / (2 * eps), analytic = cg_tensor_get(grads[i], j);
      if (fabs(numeric - analytic) > 1e-5 + 1e-3 * fabs(numeric))
        fail_msg("%s[%lld]: tape %.9g, differences %.9g", cg_var_name(vars[i]), (long long)j,
                 analytic, numeric);
    }
  }
}

static void mlp_gradients_check_in_f64(void **state)
{
  cg_layer *mlp = small_mlp();
  assert_int_equal(cg__layer_cast_variables(mlp, CG_F64), CG_OK);
  int64_t xs[2] = {3, 4}, ys[2] = {3, 3};
  cg_tensor *x = cg_random_normal(CG_F64, 2, xs, 0, 1, 5);
  model_fn m = {mlp, cg_random_normal(CG_F64, 2, ys, 0, 1, 6), 1};
  assert_gradcheck(weighted_output, &m, &x, 1, 1);
  assert_variable_gradients(&m, x);
  cg_layer_free(mlp);
}

static void cnn_with_batch_norm_gradients_check_in_f64(void **state)
{
  int k2[2] = {2, 2};
  cg_layer *cnn = cg_sequential("cnn");
  cg_sequential_add(cnn, cg_conv2d_layer("conv", 2, 3, 3, 3, NULL, CG_PAD_SAME, CG_ACT_TANH, 1));
  cg_sequential_add(cnn, cg_batch_norm_layer("bn", 3, 0.9, 1e-3));
  cg_sequential_add(cnn, cg_avg_pool2d_layer(k2, NULL, CG_PAD_VALID));
  cg_sequential_add(cnn, cg_flatten_layer());
  cg_sequential_add(cnn, cg_dense_layer("head", 12, 2, CG_ACT_SIGMOID, 2));
  assert_int_equal(cg__layer_cast_variables(cnn, CG_F64), CG_OK);
  int64_t xs[4] = {2, 4, 4, 2}, ys[2] = {2, 2};
  cg_tensor *x = cg_random_normal(CG_F64, 4, xs, 0, 1, 7);
  model_fn m = {cnn, cg_random_normal(CG_F64, 2, ys, 0, 1, 8), 1};
  assert_gradcheck(weighted_output, &m, &x, 1, 1); /* through the batch statistics */
  assert_variable_gradients(&m, x);
  m.training = 0;
  assert_gradcheck(weighted_output, &m, &x, 1, 1);
  cg_layer_free(cnn);
}

static void sequential_of_sequentials(void **state)
{
  cg_layer *outer = cg_sequential("outer"), *inner = small_mlp();
  assert_int_equal(cg_sequential_add(outer, inner), CG_OK);
  assert_int_equal(cg_sequential_add(outer, cg_dense_layer("top", 3, 1, CG_ACT_NONE, 3)), CG_OK);
  assert_int_equal(cg_layer_variables(outer, 1, NULL, 0), 6);
  assert_string_equal(cg_var_name(var_at(outer, 4)), "top/kernel");
  int64_t xs[2] = {2, 4}, ys[2] = {2, 1};
  assert_tensor(cg_layer_forward(outer, cg_ones(CG_F32, 2, xs), 0), CG_F32, 2, ys, NULL, 0);
  /* names stay unique across the whole tree */
  cg_layer *twin = cg_dense_layer("top", 3, 3, CG_ACT_NONE, 1);
  assert_int_equal(cg_sequential_add(inner, twin), CG_EEXIST);
  assert_error(CG_EEXIST, "variable 'top/kernel' of layer 'top' is already in 'outer'");
  cg_layer_free(twin); /* a failed add leaves the layer with the caller */
  cg_layer_free(outer);
}

static void empty_sequential_is_identity(void **state)
{
  cg_layer *seq = cg_sequential(NULL);
  int64_t s[1] = {3};
  cg_tensor *x = cgt_f32(1, s, (double[]){1, 2, 3});
  assert_tensor(cg_layer_forward(seq, x, 1), CG_F32, 1, s, ((double[]){1, 2, 3}), 0);
  assert_true(strncmp(cg_layer_name(seq), "sequential", 10) == 0);
  cg_layer_free(seq);
}

/* ======================================================================================
 * Bad inputs and misuse
 * ==================================================================================== */

static void wrong_inputs_name_the_layer_and_shapes(void **state)
{
  cg_layer *dense = cg_dense_layer("dense", 784, 256, CG_ACT_RELU, 1);
  int64_t s45[2] = {4, 5}, s3[3] = {2, 3, 784}, s784[2] = {2, 784};
  assert_null(cg_layer_forward(dense, cg_zeros(CG_F32, 2, s45), 1));
  assert_error(CG_ESHAPE, "dense: input [4,5] does not match kernel [784,256]");
  assert_null(cg_layer_forward(dense, cg_zeros(CG_F32, 3, s3), 1));
  assert_error(CG_ESHAPE, "dense: input [2,3,784] does not match kernel [784,256]");
  assert_null(cg_layer_forward(dense, cg_zeros(CG_F64, 2, s784), 1));
  assert_error(CG_EDTYPE, "dense: input is f64 but the layer's variables are f32");
  assert_null(cg_layer_forward(dense, NULL, 1));
  assert_error(CG_EINVAL, "dense: input 0 is NULL");
  assert_null(cg_layer_forward(NULL, cg_zeros(CG_F32, 2, s784), 1));
  assert_error(CG_EINVAL, "cg_layer_forward: layer is NULL");
  /* a failed input keeps its own error */
  assert_null(cg_layer_forward(dense, cg_reshape(cg_zeros(CG_F32, 2, s45), 2, s784), 1));
  assert_int_equal(cg_last_status(), CG_ESHAPE);
  assert_null(strstr(cg_last_error(), "dense:"));
  cg_clear_error();

  cg_layer *conv = cg_conv2d_layer("conv", 3, 4, 3, 3, NULL, CG_PAD_VALID, CG_ACT_NONE, 1);
  int64_t nhwc1[4] = {1, 5, 5, 1}, hwc[3] = {5, 5, 3};
  assert_null(cg_layer_forward(conv, cg_zeros(CG_F32, 4, nhwc1), 1));
  assert_error(CG_ESHAPE, "conv: input [1,5,5,1] does not match kernel [3,3,3,4] "
                          "(NHWC input with 3 channels)");
  assert_null(cg_layer_forward(conv, cg_zeros(CG_F32, 3, hwc), 1));
  assert_error(CG_ESHAPE, "conv: input [5,5,3] does not match kernel");

  int k[2] = {2, 2};
  cg_layer *pool = cg_max_pool2d_layer(k, NULL, CG_PAD_VALID), *flat = cg_flatten_layer();
  assert_null(cg_layer_forward(pool, cg_zeros(CG_F32, 3, hwc), 1));
  assert_error(CG_ESHAPE, "input [5,5,3] is not NHWC [batch, height, width, channels]");
  assert_null(cg_layer_forward(flat, cg_scalar(CG_F32, 1), 1));
  assert_error(CG_ESHAPE, "input is a scalar; it needs a batch axis");

  cg_layer *bn = cg_batch_norm_layer("bn", 3, 0.9, 1e-3);
  assert_null(cg_layer_forward(bn, cg_zeros(CG_F32, 2, s45), 1));
  assert_error(CG_ESHAPE, "bn: input [4,5] does not match 3 channels (want [batch, ..., 3])");
  int64_t empty[2] = {0, 3};
  assert_null(cg_layer_forward(bn, cg_zeros(CG_F32, 2, empty), 1));
  assert_error(CG_ESHAPE, "bn: input [0,3] is empty");

  cg_layer *drop = cg_dropout_layer(0.5, 1);
  assert_null(cg_layer_forward(drop, cg_zeros(CG_I32, 2, s45), 1));
  assert_error(CG_EDTYPE, "input is i32, not a float type");

  cg_layer *layers[] = {dense, conv, pool, flat, bn, drop};
  for (int i = 0; i < 6; i++) cg_layer_free(layers[i]);
}

static void bad_constructor_arguments(void **state)
{
  int bad[2] = {0, 2}, good[2] = {2, 2};
  assert_null(cg_dense_layer("d", 0, 3, CG_ACT_NONE, 1));
  assert_error(CG_EINVAL, "cg_dense_layer: in and out must be positive, got 0 and 3");
  assert_null(cg_dense_layer("d", 2, 3, (cg_activation)9, 1));
  assert_error(CG_EINVAL, "cg_dense_layer: unknown activation 9");
  assert_null(cg_dense_layer("", 2, 3, CG_ACT_NONE, 1));
  assert_error(CG_EINVAL, "Dense: the layer name is empty");
  assert_null(cg_conv2d_layer("c", 1, 2, 0, 3, NULL, CG_PAD_SAME, CG_ACT_NONE, 1));
  assert_error(CG_EINVAL, "cg_conv2d_layer: kernel size must be positive, got [0,3]");
  assert_null(cg_conv2d_layer("c", 1, 2, 3, 3, bad, CG_PAD_SAME, CG_ACT_NONE, 1));
  assert_error(CG_EINVAL, "cg_conv2d_layer: strides must be positive, got [0,2]");
  assert_null(cg_conv2d_layer("c", 1, 2, 3, 3, NULL, (cg_padding)5, CG_ACT_NONE, 1));
  assert_error(CG_EINVAL, "cg_conv2d_layer: unknown padding 5");
  assert_null(cg_conv2d_layer("c", -1, 2, 3, 3, NULL, CG_PAD_SAME, CG_ACT_NONE, 1));
  assert_error(CG_EINVAL, "channels must be positive, got -1 -> 2");
  assert_null(cg_max_pool2d_layer(NULL, NULL, CG_PAD_VALID));
  assert_error(CG_EINVAL, "cg_max_pool2d_layer: ksize is NULL");
  assert_null(cg_avg_pool2d_layer(good, bad, CG_PAD_VALID));
  assert_error(CG_EINVAL, "cg_avg_pool2d_layer: strides must be positive, got [0,2]");
  assert_null(cg_dropout_layer(1, 1));
  assert_error(CG_EINVAL, "cg_dropout_layer: rate must be in [0, 1), got 1");
  assert_null(cg_dropout_layer(-0.1, 1));
  assert_error(CG_EINVAL, "got -0.1");
  assert_null(cg_dropout_layer(NAN, 1));
  assert_error(CG_EINVAL, "rate must be in [0, 1)");
  assert_null(cg_batch_norm_layer("bn", 0, 0.9, 1e-3));
  assert_error(CG_EINVAL, "cg_batch_norm_layer: channels must be positive, got 0");
  assert_null(cg_batch_norm_layer("bn", 3, 1.5, 1e-3));
  assert_error(CG_EINVAL, "need momentum in [0, 1] and a finite eps > 0, got 1.5 and 0.001");
  assert_null(cg_batch_norm_layer("bn", 3, 0.9, 0));
  assert_error(CG_EINVAL, "got 0.9 and 0");
}

static void sequential_misuse(void **state)
{
  cg_layer *seq = cg_sequential("model"), *other = cg_sequential("other");
  cg_layer *d = cg_dense_layer("d", 2, 2, CG_ACT_NONE, 1);
  assert_int_equal(cg_sequential_add(d, seq), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_sequential_add: 'd' is a Dense, not a Sequential");
  assert_int_equal(cg_sequential_add(seq, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_sequential_add: layer is NULL");
  assert_int_equal(cg_sequential_add(seq, seq), CG_EINVAL);
  assert_error(CG_EINVAL, "adding 'model' to 'model' makes a cycle");
  assert_int_equal(cg_sequential_add(seq, d), CG_OK);
  assert_int_equal(cg_sequential_add(other, d), CG_ESTATE);
  assert_error(CG_ESTATE, "layer 'd' already belongs to 'model'");
  assert_int_equal(cg_sequential_add(other, seq), CG_OK);
  assert_int_equal(cg_sequential_add(seq, other), CG_EINVAL);
  assert_error(CG_EINVAL, "adding 'other' to 'model' makes a cycle");
  /* a duplicate name is refused and the layer stays the caller's */
  cg_layer *twin = cg_dense_layer("d", 2, 2, CG_ACT_NONE, 1);
  assert_int_equal(cg_sequential_add(seq, twin), CG_EEXIST);
  assert_error(CG_EEXIST, "variable 'd/kernel' of layer 'd' is already in 'other'");
  cg_layer_free(twin);
  /* a child belongs to its container: freeing it alone is refused */
  cg_layer_free(d);
  assert_error(CG_ESTATE, "cg_layer_free: layer 'd' belongs to 'model', which frees it");
  assert_int_equal(cg_layer_variables(NULL, 0, NULL, 0), -1);
  assert_error(CG_EINVAL, "cg_layer_variables: layer is NULL");
  cg_var *v[1];
  assert_int_equal(cg_layer_variables(seq, 0, v, -1), -1);
  assert_error(CG_EINVAL, "max is negative");
  assert_int_equal(cg_layer_describe(seq, NULL, 10), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_layer_describe: buf is NULL");
  assert_null(cg_layer_name(NULL));
  cg_layer_free(NULL);
  cg_layer_free(other); /* frees seq and d too */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(dense_forward_by_hand),
      cgt_test(dense_variables_names_and_initial_values),
      cgt_test(unnamed_layers_get_keras_names),
      cgt_test(conv2d_layer_matches_conv2d_plus_bias),
      cgt_test(pools_and_flatten_match_their_ops),
      cgt_test(dropout_inference_is_identity),
      cgt_test(dropout_training_drops_rate_and_scales_the_rest),
      cgt_test(dropout_gradient_is_the_mask),
      cgt_test(batch_norm_training_normalises_and_moves_statistics),
      cgt_test(batch_norm_inference_uses_moving_statistics),
      cgt_test(batch_norm_reduces_all_but_the_last_axis),
      cgt_test(sequential_forward_variables_and_describe),
      cgt_test(describe_each_kind),
      cgt_test(mlp_gradients_check_in_f64),
      cgt_test(cnn_with_batch_norm_gradients_check_in_f64),
      cgt_test(sequential_of_sequentials),
      cgt_test(empty_sequential_is_identity),
      cgt_test(wrong_inputs_name_the_layer_and_shapes),
      cgt_test(bad_constructor_arguments),
      cgt_test(sequential_misuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

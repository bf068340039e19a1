/* test_optimizers.c - optimizers against hand-computed steps (SGD with and without momentum
 * and Nesterov, Adam, AdamW, RMSprop, Adagrad), against steps torch.optim took
 * (data/optimizers_torch.inc), learning-rate schedules, clipping by value and by global norm,
 * slots and saved/restored state, and bad inputs. */
#include "util.h"
#include <math.h>
#include <string.h>

static const int64_t two[1] = {2};

/* A trainable f64 variable [a, b]. */
static cg_var *var2(const char *name, double a, double b)
{
  return cg_var_new(name, cgt_f64(1, two, (double[]){a, b}), 1);
}

/* One step with gradient [g0, g1] on v alone. */
static void step2(cg_optimizer *opt, cg_var *v, double g0, double g1)
{
  cg_tensor *g = cgt_f64(1, two, (double[]){g0, g1});
  assert_int_equal(cg_optimizer_apply_gradients(opt, &g, &v, 1), CG_OK);
}

/* |got - want| <= tol (1 + |want|) in double (cmocka's assert_float_equal rounds to float). */
#define assert_close(got, want, tol) \
  assert_tensor(cg_scalar(CG_F64, (got)), CG_F64, 0, NULL, ((double[]){(want)}), (tol))

#define assert_var2(v, e0, e1) \
  assert_tensor(cg_var_value(v), CG_F64, 1, two, ((double[]){(e0), (e1)}), 1e-12)

/* The gradients every hand-computed test below uses, step by step. */
static const double G[3][2] = {{0.5, -1}, {1, 2}, {-1, 0.5}};

/* Runs three steps of G on [1, -2] and checks the value after each against want. */
static void three_steps(const cg_optimizer_config *config, const double want[3][2])
{
  cg_optimizer *opt = cg_optimizer_new(config);
  assert_non_null(opt);
  cg_var *v = var2("w", 1, -2);
  for (int t = 0; t < 3; t++) {
    step2(opt, v, G[t][0], G[t][1]);
    assert_var2(v, want[t][0], want[t][1]);
  }
  assert_int_equal(cg_optimizer_iterations(opt), 3);
  cg_var_free(v);
  cg_optimizer_free(opt);
}

/* ======================================================================================
 * Hand-computed steps, p0 = [1, -2], g = [0.5, -1], [1, 2], [-1, 0.5]
 * ==================================================================================== */

static void sgd_plain(void **state)
{
  /* p -= 0.1 g */
  const double want[3][2] = {{1 - 0.05, -2 + 0.1},      /* [0.95, -1.9]  */
                             {0.95 - 0.1, -1.9 - 0.2},  /* [0.85, -2.1]  */
                             {0.85 + 0.1, -2.1 - 0.05}}; /* [0.95, -2.15] */
  three_steps(&(cg_optimizer_config){.kind = CG_OPT_SGD, .lr = 0.1}, want);
}

static void sgd_momentum(void **state)
{
  /* buf1 = g1 = [0.5, -1]                                      p1 = p0 - 0.1 buf1
   * buf2 = 0.9 [0.5, -1] + [1, 2] = [1.45, 1.1]               p2 = p1 - 0.1 buf2
   * buf3 = 0.9 [1.45, 1.1] + [-1, 0.5] = [0.305, 1.49]        p3 = p2 - 0.1 buf3 */
  const double want[3][2] = {{0.95, -1.9},                  /* [1 - 0.05, -2 + 0.1]        */
                             {0.95 - 0.145, -1.9 - 0.11},   /* [0.805, -2.01]              */
                             {0.805 - 0.0305, -2.01 - 0.149}}; /* [0.7745, -2.159]         */
  three_steps(&(cg_optimizer_config){.kind = CG_OPT_SGD, .lr = 0.1, .momentum = 0.9}, want);
}

static void sgd_nesterov(void **state)
{
  /* buf as above; d = g + 0.9 buf; p -= 0.1 d
   * d1 = [0.5, -1] + 0.9 [0.5, -1] = [0.95, -1.9]
   * d2 = [1, 2] + 0.9 [1.45, 1.1] = [2.305, 2.99]
   * d3 = [-1, 0.5] + 0.9 [0.305, 1.49] = [-0.7255, 1.841] */
  const double want[3][2] = {{1 - 0.095, -2 + 0.19},          /* [0.905, -1.81]     */
                             {0.905 - 0.2305, -1.81 - 0.299}, /* [0.6745, -2.109]   */
                             {0.6745 + 0.07255, -2.109 - 0.1841}}; /* [0.74705, -2.2931] */
  three_steps(&(cg_optimizer_config){.kind = CG_OPT_SGD, .lr = 0.1, .momentum = 0.9, .nesterov = 1},
              want);
}

static void sgd_weight_decay(void **state)
{
  /* d = g + 0.1 p; p -= 0.1 d
   * d1 = [0.5 + 0.1, -1 - 0.2] = [0.6, -1.2]           p1 = [0.94, -1.88]
   * d2 = [1 + 0.094, 2 - 0.188] = [1.094, 1.812]       p2 = [0.8306, -2.0612]
   * d3 = [-1 + 0.08306, 0.5 - 0.20612] = [-0.91694, 0.29388] */
  const double want[3][2] = {{1 - 0.06, -2 + 0.12},
                             {0.94 - 0.1094, -1.88 - 0.1812},
                             {0.8306 + 0.091694, -2.0612 - 0.029388}};
  three_steps(&(cg_optimizer_config){.kind = CG_OPT_SGD, .lr = 0.1, .weight_decay = 0.1}, want);
}

/* Adam's step in the textbook form: lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). */
static double adam_delta(double m, double v, double bc1, double bc2)
{
  return 0.1 * (m / bc1) / (sqrt(v / bc2) + 1e-8);
}

/* m and v after each step of G with b1 = 0.9, b2 = 0.999, and the bias corrections:
 * m1 = 0.1 g1 = [0.05, -0.1]             v1 = 0.001 g1^2 = [0.00025, 0.001]
 * m2 = 0.9 m1 + 0.1 g2 = [0.145, 0.11]   v2 = 0.999 v1 + 0.001 g2^2 = [0.00124975, 0.004999]
 * m3 = 0.9 m2 + 0.1 g3 = [0.0305, 0.149] v3 = 0.999 v2 + 0.001 g3^2 = [0.00224850025, 0.005244001]
 * 1 - 0.9^t = 0.1, 0.19, 0.271;          1 - 0.999^t = 0.001, 0.001999, 0.002997001 */
static const double adam_m[3][2] = {{0.05, -0.1}, {0.145, 0.11}, {0.0305, 0.149}};
static const double adam_v[3][2] = {{0.00025, 0.001}, {0.00124975, 0.004999}, {0.00224850025, 0.005244001}};
static const double adam_bc1[3] = {0.1, 0.19, 0.271}, adam_bc2[3] = {0.001, 0.001999, 0.002997001};

/* Adam and AdamW (p *= decay before each step) with lr 0.1 on G, checked against the above. */
static void adam_like(cg_optimizer_kind kind, double weight_decay)
{
  cg_optimizer *opt = cg_optimizer_new(
      &(cg_optimizer_config){.kind = kind, .lr = 0.1, .weight_decay = weight_decay});
  cg_var *v = var2("w", 1, -2);
  double p[2] = {1, -2}, decay = 1 - 0.1 * weight_decay;
  for (int t = 0; t < 3; t++) {
    step2(opt, v, G[t][0], G[t][1]);
    for (int i = 0; i < 2; i++)
      p[i] = p[i] * decay - adam_delta(adam_m[t][i], adam_v[t][i], adam_bc1[t], adam_bc2[t]);
    assert_var2(v, p[0], p[1]);
    /* the slots hold m and v */
    assert_tensor(cg_optimizer_slot(opt, 0), CG_F64, 1, two, adam_m[t], 1e-12);
    assert_tensor(cg_optimizer_slot(opt, 1), CG_F64, 1, two, adam_v[t], 1e-12);
  }
  cg_var_free(v);
  cg_optimizer_free(opt);
}

static void adam(void **state)
{
  /* step 1: mhat = m1/0.1 = g1, vhat = v1/0.001 = g1^2: p1 = p0 - 0.1 g1/(|g1| + 1e-8) */
  cg_optimizer *opt = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM, .lr = 0.1});
  cg_var *v = var2("w", 1, -2);
  step2(opt, v, 0.5, -1);
  assert_var2(v, 1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 + 0.1 * 1 / (1 + 1e-8)); /* ~[0.9, -1.9] */
  cg_var_free(v);
  cg_optimizer_free(opt);
  adam_like(CG_OPT_ADAM, 0); /* steps 2 and 3 from the m, v above */
}

static void adamw(void **state)
{
  /* p *= 1 - 0.1 * 0.1 = 0.99 first; then the Adam step (m, v do not depend on p):
   * p1 = 0.99 [1, -2] - 0.1 [0.5/(0.5+1e-8), -1/(1+1e-8)] ~ [0.89, -1.88] */
  adam_like(CG_OPT_ADAMW, 0.1);
}

static void adam_weight_decay_is_added_to_the_gradient(void **state)
{
  /* PyTorch's Adam(weight_decay=0.5): g1 = [0.5 + 0.5, -1 - 1] = [1, -2], so step 1 moves by
   * 0.1 sign(g1) as before: [0.9, -1.9]; AdamW would have given [0.85, -1.8]. */
  cg_optimizer *opt = cg_optimizer_new(
      &(cg_optimizer_config){.kind = CG_OPT_ADAM, .lr = 0.1, .weight_decay = 0.5});
  cg_var *v = var2("w", 1, -2);
  step2(opt, v, 0.5, -1);
  assert_var2(v, 1 - 0.1 * 1 / (1 + 1e-8), -2 + 0.1 * 2 / (2 + 1e-8));
  cg_var_free(v);
  cg_optimizer_free(opt);
}

static void rmsprop(void **state)
{
  /* v = 0.99 v + 0.01 g^2;  p -= 0.01 g / (sqrt(v) + 1e-8)
   * v1 = [0.0025, 0.01]                       sqrt = [0.05, 0.1]
   * v2 = [0.002475 + 0.01, 0.0099 + 0.04] = [0.012475, 0.0499]
   * v3 = [0.01235025 + 0.01, 0.049401 + 0.0025] = [0.02235025, 0.051901] */
  const double e = 1e-8;
  double p1[2] = {1 - 0.01 * 0.5 / (0.05 + e), -2 + 0.01 * 1 / (0.1 + e)}; /* ~[0.9, -1.9] */
  double p2[2] = {p1[0] - 0.01 * 1 / (sqrt(0.012475) + e), p1[1] - 0.01 * 2 / (sqrt(0.0499) + e)};
  double p3[2] = {p2[0] + 0.01 * 1 / (sqrt(0.02235025) + e),
                  p2[1] - 0.01 * 0.5 / (sqrt(0.051901) + e)};
  const double want[3][2] = {{p1[0], p1[1]}, {p2[0], p2[1]}, {p3[0], p3[1]}};
  three_steps(&(cg_optimizer_config){.kind = CG_OPT_RMSPROP, .lr = 0.01}, want);
}

static void rmsprop_momentum(void **state)
{
  /* v as above; buf = 0.9 buf + g / (sqrt(v) + 1e-8); p -= 0.01 buf
   * buf1 = [0.5/0.05, -1/0.1] = [10, -10]   (up to eps)
   * buf2 = 0.9 buf1 + [1/sqrt(0.012475), 2/sqrt(0.0499)]
   * buf3 = 0.9 buf2 + [-1/sqrt(0.02235025), 0.5/sqrt(0.051901)] */
  const double e = 1e-8;
  double b1[2] = {0.5 / (0.05 + e), -1 / (0.1 + e)};
  double b2[2] = {0.9 * b1[0] + 1 / (sqrt(0.012475) + e), 0.9 * b1[1] + 2 / (sqrt(0.0499) + e)};
  double b3[2] = {0.9 * b2[0] - 1 / (sqrt(0.02235025) + e), 0.9 * b2[1] + 0.5 / (sqrt(0.051901) + e)};
  const double want[3][2] = {{1 - 0.01 * b1[0], -2 - 0.01 * b1[1]},
                             {1 - 0.01 * (b1[0] + b2[0]), -2 - 0.01 * (b1[1] + b2[1])},
                             {1 - 0.01 * (b1[0] + b2[0] + b3[0]), -2 - 0.01 * (b1[1] + b2[1] + b3[1])}};
  three_steps(&(cg_optimizer_config){.kind = CG_OPT_RMSPROP, .lr = 0.01, .momentum = 0.9}, want);
}

static void adagrad(void **state)
{
  /* sum = 0.1 + cumulative g^2 = [0.35, 1.1], [1.35, 5.1], [2.35, 5.35];
   * p -= 0.1 g / (sqrt(sum) + 1e-10) */
  const double e = 1e-10;
  double p1[2] = {1 - 0.1 * 0.5 / (sqrt(0.35) + e), -2 + 0.1 * 1 / (sqrt(1.1) + e)};
  double p2[2] = {p1[0] - 0.1 * 1 / (sqrt(1.35) + e), p1[1] - 0.1 * 2 / (sqrt(5.1) + e)};
  double p3[2] = {p2[0] + 0.1 * 1 / (sqrt(2.35) + e), p2[1] - 0.1 * 0.5 / (sqrt(5.35) + e)};
  const double want[3][2] = {{p1[0], p1[1]}, {p2[0], p2[1]}, {p3[0], p3[1]}};
  three_steps(
      &(cg_optimizer_config){.kind = CG_OPT_ADAGRAD, .lr = 0.1, .initial_accumulator = 0.1}, want);
}

static void adagrad_from_zero(void **state)
{
  /* sum1 = g1^2 = [0.25, 1]: p1 = [1 - 0.1 * 0.5/0.5, -2 + 0.1 * 1/1] = [0.9, -1.9] */
  cg_optimizer *opt = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAGRAD, .lr = 0.1});
  cg_var *v = var2("w", 1, -2);
  step2(opt, v, 0.5, -1);
  assert_var2(v, 1 - 0.1 * 0.5 / (0.5 + 1e-10), -2 + 0.1 / (1 + 1e-10));
  assert_tensor(cg_optimizer_slot(opt, 0), CG_F64, 1, two, ((double[]){0.25, 1}), 0);
  cg_var_free(v);
  cg_optimizer_free(opt);
}

static void defaults_follow_pytorch(void **state)
{
  /* lr 0 means the default: 1e-3 for Adam (step 1 moves by lr sign(g)), 1e-2 for SGD */
  cg_optimizer *adam = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM});
  cg_optimizer *sgd = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_SGD});
  assert_true(cg_optimizer_current_lr(adam) == 1e-3);
  assert_true(cg_optimizer_current_lr(sgd) == 1e-2);
  cg_var *v = var2("w", 1, -2);
  step2(adam, v, 0.5, -1);
  assert_var2(v, 1 - 1e-3 * 0.5 / (0.5 + 1e-8), -2 + 1e-3 / (1 + 1e-8));
  step2(sgd, v, 1, 1);
  assert_var2(v, 1 - 1e-3 * 0.5 / (0.5 + 1e-8) - 0.01, -2 + 1e-3 / (1 + 1e-8) - 0.01);
  cg_var_free(v);
  cg_optimizer_free(adam);
  cg_optimizer_free(sgd);
}

/* ======================================================================================
 * Against torch.optim
 * ==================================================================================== */

typedef struct {
  const char *name;
  cg_optimizer_config config;
  double p0[5], grads[4][5], f64[4][5], f32[4][5];
} torch_case;

static const torch_case torch_cases[] = {
#include "data/optimizers_torch.inc"
};

static void run_torch_case(const torch_case *c, cg_dtype dtype)
{
  const int64_t five[1] = {5};
  cg_tensor *p0 = cg_tensor_from(CG_F64, 1, five, c->p0);
  cg_var *v = cg_var_new(c->name, cg_cast(p0, dtype), 1);
  cg_optimizer *opt = cg_optimizer_new(&c->config);
  assert_non_null(opt);
  for (int t = 0; t < 4; t++) {
    cg_tensor *g = cg_cast(cg_tensor_from(CG_F64, 1, five, c->grads[t]), dtype);
    assert_int_equal(cg_optimizer_apply_gradients(opt, &g, &v, 1), CG_OK);
    /* f64 agrees to rounding; f32 to a few ulps (PyTorch's vector kernels fuse a*b + c) */
    double tol = dtype == CG_F64 ? 1e-14 : 1e-6;
    const double *want = dtype == CG_F64 ? c->f64[t] : c->f32[t];
    for (int i = 0; i < 5; i++) {
      double got = cg_tensor_get(cg_var_value(v), i);
      if (fabs(got - want[i]) > tol * (1 + fabs(want[i])))
        fail_msg("%s %s step %d element %d: %.17g, torch %.17g", c->name, cg_dtype_name(dtype),
                 t + 1, i, got, want[i]);
    }
  }
  cg_optimizer_free(opt);
  cg_var_free(v);
}

static void matches_torch_optim(void **state)
{
  for (size_t k = 0; k < sizeof torch_cases / sizeof torch_cases[0]; k++) {
    run_torch_case(&torch_cases[k], CG_F64);
    run_torch_case(&torch_cases[k], CG_F32);
  }
}

/* ======================================================================================
 * Learning-rate schedules
 * ==================================================================================== */

/* The lr of each of the first n steps, read twice: from current_lr before the step, and from
 * how far SGD moves a variable with gradient 1. */
static void lrs_of_steps(const cg_optimizer_config *config, int n, double *lr)
{
  cg_optimizer *opt = cg_optimizer_new(config);
  assert_non_null(opt);
  cg_var *v = cg_var_new("x", cg_scalar(CG_F64, 0), 1);
  cg_tensor *one = cg_scalar(CG_F64, 1);
  for (int t = 0; t < n; t++) {
    lr[t] = cg_optimizer_current_lr(opt);
    double before = cg_item(cg_var_value(v));
    assert_int_equal(cg_optimizer_apply_gradients(opt, &one, &v, 1), CG_OK);
    assert_close(before - cg_item(cg_var_value(v)), lr[t], 1e-13); /* x - lr rounds */
  }
  cg_var_free(v);
  cg_optimizer_free(opt);
}

static void constant_schedule(void **state)
{
  double lr[3];
  lrs_of_steps(&(cg_optimizer_config){.kind = CG_OPT_SGD, .lr = 0.25}, 3, lr);
  for (int t = 0; t < 3; t++) assert_true(lr[t] == 0.25);
}

static void step_schedule(void **state)
{
  /* 0.1 * 0.5^floor(t / 2): steps t = 0..6 */
  double lr[7], want[7] = {0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125};
  lrs_of_steps(&(cg_optimizer_config){.kind = CG_OPT_SGD, .lr = 0.1,
                                      .schedule = {.kind = CG_LR_STEP, .step_size = 2, .gamma = 0.5}},
               7, lr);
  for (int t = 0; t < 7; t++) assert_close(lr[t], want[t], 1e-17);
}

static void cosine_schedule(void **state)
{
  /* 0.1 + (1 - 0.1)(1 + cos(pi min(t, 4) / 4)) / 2:
   * t = 0: 1;  t = 1: 0.1 + 0.45 (1 + 0.70710678) = 0.86819805;  t = 2: 0.1 + 0.45 = 0.55;
   * t = 3: 0.1 + 0.45 (1 - 0.70710678) = 0.23180195;  t = 4, 5, 6: 0.1 (held after T) */
  double lr[7], r = sqrt(0.5);
  double want[7] = {1, 0.1 + 0.45 * (1 + r), 0.55, 0.1 + 0.45 * (1 - r), 0.1, 0.1, 0.1};
  lrs_of_steps(&(cg_optimizer_config){.kind = CG_OPT_SGD, .lr = 1,
                                      .schedule = {.kind = CG_LR_COSINE, .decay_steps = 4, .lr_min = 0.1}},
               7, lr);
  for (int t = 0; t < 7; t++) assert_close(lr[t], want[t], 1e-15);
}

static void schedule_drives_adam(void **state)
{
  /* step 2 of Adam with a step schedule (size 1, gamma 0.5) uses lr 0.05: half the step
   * adam_delta gives for lr 0.1 */
  cg_optimizer *opt = cg_optimizer_new(&(cg_optimizer_config){
      .kind = CG_OPT_ADAM, .lr = 0.1, .schedule = {.kind = CG_LR_STEP, .step_size = 1, .gamma = 0.5}});
  cg_var *v = var2("w", 1, -2);
  step2(opt, v, G[0][0], G[0][1]);
  step2(opt, v, G[1][0], G[1][1]);
  double p[2];
  for (int i = 0; i < 2; i++)
    p[i] = (i ? -2 : 1) - adam_delta(adam_m[0][i], adam_v[0][i], adam_bc1[0], adam_bc2[0]) -
           0.5 * adam_delta(adam_m[1][i], adam_v[1][i], adam_bc1[1], adam_bc2[1]);
  assert_var2(v, p[0], p[1]);
  assert_close(cg_optimizer_current_lr(opt), 0.025, 1e-17); /* the next step's */
  cg_var_free(v);
  cg_optimizer_free(opt);
}

/* ======================================================================================
 * Clipping
 * ==================================================================================== */

static void clip_by_global_norm_values(void **state)
{
  /* norm of [3, 4] and [12] = sqrt(9 + 16 + 144) = 13 */
  cg_tensor *g[3] = {cgt_f64(1, two, (double[]){3, 4}), NULL, cg_scalar(CG_F32, 12)};
  cg_tensor *out[3];
  double norm = 0;
  assert_int_equal(cg_clip_by_global_norm(g, 3, 6.5, out, &norm), CG_OK);
  assert_close(norm, 13, 1e-15);
  assert_tensor(out[0], CG_F64, 1, two, ((double[]){1.5, 2}), 1e-15); /* scaled by 6.5/13 */
  assert_null(out[1]);
  assert_tensor(out[2], CG_F32, 0, NULL, ((double[]){6}), 1e-7);
  /* under the limit: unchanged */
  assert_int_equal(cg_clip_by_global_norm(g, 3, 20, out, NULL), CG_OK);
  assert_tensor(out[0], CG_F64, 1, two, ((double[]){3, 4}), 0);
  assert_tensor(out[2], CG_F32, 0, NULL, ((double[]){12}), 0);
  /* in place, out == grads */
  assert_int_equal(cg_clip_by_global_norm(g, 3, 1.3, g, NULL), CG_OK);
  assert_tensor(g[0], CG_F64, 1, two, ((double[]){0.3, 0.4}), 1e-15);
  /* a non-finite norm gives NaN, as TensorFlow */
  cg_tensor *inf[1] = {cgt_f64(1, two, (double[]){INFINITY, 1})};
  assert_int_equal(cg_clip_by_global_norm(inf, 1, 1, out, &norm), CG_OK);
  assert_true(isinf(norm));
  assert_true(isnan(cg_tensor_get(out[0], 1)));
}

static void optimizer_clips_by_value(void **state)
{
  /* clip_value 0.5: g = [2, -0.25] -> [0.5, -0.25]; SGD lr 1: [1, -2] - [0.5, -0.25] */
  cg_optimizer *opt = cg_optimizer_new(
      &(cg_optimizer_config){.kind = CG_OPT_SGD, .lr = 1, .clip_value = 0.5});
  cg_var *v = var2("w", 1, -2);
  step2(opt, v, 2, -0.25);
  assert_var2(v, 0.5, -1.75);
  cg_var_free(v);
  cg_optimizer_free(opt);
}

static void optimizer_clips_by_value_then_norm(void **state)
{
  /* a: [3, -4] -> [2, -2] by value 2; b: [1] stays; norm sqrt(4 + 4 + 1) = 3;
   * clip_norm 1.5 halves them: [1, -1], [0.5]; SGD lr 1 from [1, -2] and [0] */
  cg_optimizer *opt = cg_optimizer_new(&(cg_optimizer_config){
      .kind = CG_OPT_SGD, .lr = 1, .clip_value = 2, .clip_norm = 1.5});
  const int64_t one[1] = {1};
  cg_var *vars[2] = {var2("a", 1, -2), cg_var_new("b", cgt_f64(1, one, (double[]){0}), 1)};
  cg_tensor *g[2] = {cgt_f64(1, two, (double[]){3, -4}), cgt_f64(1, one, (double[]){1})};
  assert_int_equal(cg_optimizer_apply_gradients(opt, g, vars, 2), CG_OK);
  assert_var2(vars[0], 0, -1);
  assert_tensor(cg_var_value(vars[1]), CG_F64, 1, one, ((double[]){-0.5}), 1e-15);
  /* the caller's gradients are untouched */
  assert_tensor(g[0], CG_F64, 1, two, ((double[]){3, -4}), 0);
  cg_var_free(vars[0]);
  cg_var_free(vars[1]);
  cg_optimizer_free(opt);
}

/* ======================================================================================
 * Slots and state
 * ==================================================================================== */

static void slots_are_lazy_and_named(void **state)
{
  cg_optimizer *opt = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM, .lr = 0.1});
  cg_var *vars[2] = {var2("dense/kernel", 1, 2), var2("dense/bias", 0, 0)};
  assert_int_equal(cg_optimizer_num_slots(opt), 0);
  /* a NULL gradient leaves its variable alone and makes no slot for it */
  cg_tensor *g[2] = {cgt_f64(1, two, (double[]){0.5, -1}), NULL};
  assert_int_equal(cg_optimizer_apply_gradients(opt, g, vars, 2), CG_OK);
  assert_int_equal(cg_optimizer_num_slots(opt), 2);
  assert_string_equal(cg_optimizer_slot_name(opt, 0), "dense/kernel/m");
  assert_string_equal(cg_optimizer_slot_name(opt, 1), "dense/kernel/v");
  assert_var2(vars[1], 0, 0);
  g[1] = cgt_f64(1, two, (double[]){1, 1});
  assert_int_equal(cg_optimizer_apply_gradients(opt, g, vars, 2), CG_OK);
  assert_int_equal(cg_optimizer_num_slots(opt), 4);
  assert_string_equal(cg_optimizer_slot_name(opt, 2), "dense/bias/m");
  assert_string_equal(cg_optimizer_slot_name(opt, 3), "dense/bias/v");
  /* its first step is the optimizer's second (one step count for all variables, as Keras;
   * PyTorch counts per parameter): m = 0.1 g, v = 0.001 g^2 corrected by 1 - 0.9^2 = 0.19
   * and 1 - 0.999^2 = 0.001999 */
  assert_tensor(cg_optimizer_slot(opt, 2), CG_F64, 1, two, ((double[]){0.1, 0.1}), 1e-15);
  double p = -0.1 * (0.1 / 0.19) / (sqrt(0.001 / 0.001999) + 1e-8); /* ~ -0.0744 */
  assert_var2(vars[1], p, p);
  cg_var_free(vars[0]);
  cg_var_free(vars[1]);
  cg_optimizer_free(opt);
}

static void slot_names_per_kind(void **state)
{
  struct {
    cg_optimizer_config config;
    int n;
    const char *names[2];
  } cases[] = {
      {{.kind = CG_OPT_SGD}, 0, {NULL}},
      {{.kind = CG_OPT_SGD, .momentum = 0.9}, 1, {"w/momentum"}},
      {{.kind = CG_OPT_ADAMW}, 2, {"w/m", "w/v"}},
      {{.kind = CG_OPT_RMSPROP}, 1, {"w/square_avg"}},
      {{.kind = CG_OPT_RMSPROP, .momentum = 0.5}, 2, {"w/square_avg", "w/momentum"}},
      {{.kind = CG_OPT_ADAGRAD, .initial_accumulator = 0.5}, 1, {"w/sum"}},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    cg_optimizer *opt = cg_optimizer_new(&cases[k].config);
    cg_var *v = var2("w", 1, 2);
    step2(opt, v, 0, 0);
    assert_int_equal(cg_optimizer_num_slots(opt), cases[k].n);
    for (int i = 0; i < cases[k].n; i++)
      assert_string_equal(cg_optimizer_slot_name(opt, i), cases[k].names[i]);
    if (cases[k].config.kind == CG_OPT_ADAGRAD) /* starts at initial_accumulator, + 0^2 */
      assert_tensor(cg_optimizer_slot(opt, 0), CG_F64, 1, two, ((double[]){0.5, 0.5}), 0);
    cg_var_free(v);
    cg_optimizer_free(opt);
  }
}

/* Two variables (f32 and f64) and three steps of gradients that differ per step. */
static void run_steps(cg_optimizer *opt, cg_var **vars, int from, int to)
{
  const int64_t shape[2] = {2, 3};
  for (int t = from; t < to; t++) {
    cg_tensor *g[2] = {cg_random_normal(CG_F32, 2, shape, 0, 1, 100 + t),
                       cg_random_normal(CG_F64, 1, two, 0, 1, 200 + t)};
    assert_int_equal(cg_optimizer_apply_gradients(opt, g, vars, 2), CG_OK);
  }
}

static void make_vars(cg_var **vars)
{
  const int64_t shape[2] = {2, 3};
  vars[0] = cg_var_new("layer/kernel", cg_random_normal(CG_F32, 2, shape, 0, 1, 1), 1);
  vars[1] = cg_var_new("layer/bias", cg_random_normal(CG_F64, 1, two, 0, 1, 2), 1);
}

static void assert_same_bits(const cg_tensor *a, const cg_tensor *b)
{
  assert_int_equal(cg_tensor_size(a), cg_tensor_size(b));
  assert_memory_equal(cg_tensor_data(a), cg_tensor_data(b),
                      (size_t)cg_tensor_size(a) * cg_dtype_size(cg_tensor_dtype(a)));
}

static void restored_state_continues_bit_exactly(void **state)
{
  cg_optimizer_config configs[] = {
      {.kind = CG_OPT_SGD, .lr = 0.1, .momentum = 0.9, .nesterov = 1},
      {.kind = CG_OPT_ADAM, .lr = 0.01, .schedule = {.kind = CG_LR_COSINE, .decay_steps = 5}},
      {.kind = CG_OPT_ADAMW, .lr = 0.01, .weight_decay = 0.1},
      {.kind = CG_OPT_RMSPROP, .momentum = 0.5, .clip_norm = 1},
      {.kind = CG_OPT_ADAGRAD, .initial_accumulator = 0.1},
  };
  for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
    cg_var *a[2], *b[2];
    make_vars(a);
    cg_optimizer *first = cg_optimizer_new(&configs[k]);
    run_steps(first, a, 0, 3);
    /* export the state, as a checkpoint would, into a fresh optimizer and fresh variables */
    int n = cg_optimizer_num_slots(first);
    const char *names[4];
    cg_tensor *slots[4];
    for (int i = 0; i < n; i++) {
      names[i] = cg_optimizer_slot_name(first, i);
      slots[i] = cg_optimizer_slot(first, i);
    }
    make_vars(b);
    for (int i = 0; i < 2; i++) assert_int_equal(cg_var_assign(b[i], cg_var_value(a[i])), CG_OK);
    cg_optimizer *second = cg_optimizer_new(&configs[k]);
    assert_int_equal(cg_optimizer_set_state(second, cg_optimizer_iterations(first), names, slots, n),
                     CG_OK);
    assert_int_equal(cg_optimizer_iterations(second), 3);
    assert_true(cg_optimizer_current_lr(second) == cg_optimizer_current_lr(first));
    run_steps(first, a, 3, 4);
    run_steps(second, b, 3, 4);
    for (int i = 0; i < 2; i++) assert_same_bits(cg_var_value(a[i]), cg_var_value(b[i]));
    assert_int_equal(cg_optimizer_num_slots(second), n);
    for (int i = 0; i < n; i++) assert_same_bits(cg_optimizer_slot(first, i), cg_optimizer_slot(second, i));
    for (int i = 0; i < 2; i++) {
      cg_var_free(a[i]);
      cg_var_free(b[i]);
    }
    cg_optimizer_free(first);
    cg_optimizer_free(second);
  }
}

static void a_held_slot_never_changes(void **state)
{
  /* slots are updated in place only while the optimizer alone holds them */
  cg_optimizer *opt = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_SGD, .momentum = 0.5});
  cg_var *v = var2("w", 1, 2);
  step2(opt, v, 1, 2);
  cg_tensor *held = cg_retain(cg_optimizer_slot(opt, 0));
  step2(opt, v, 1, 1);
  assert_tensor(held, CG_F64, 1, two, ((double[]){1, 2}), 0);
  assert_tensor(cg_optimizer_slot(opt, 0), CG_F64, 1, two, ((double[]){1.5, 2}), 0); /* 0.5 buf + g */
  cg_release(held);
  /* set_state copies what it is given */
  cg_tensor *mine = cgt_f64(1, two, (double[]){4, 4});
  const char *name = "w/momentum";
  assert_int_equal(cg_optimizer_set_state(opt, 7, &name, &mine, 1), CG_OK);
  step2(opt, v, 0, 0);
  assert_tensor(mine, CG_F64, 1, two, ((double[]){4, 4}), 0);
  assert_tensor(cg_optimizer_slot(opt, 0), CG_F64, 1, two, ((double[]){2, 2}), 0);
  assert_int_equal(cg_optimizer_iterations(opt), 8);
  cg_var_free(v);
  cg_optimizer_free(opt);
}

static void updates_are_not_recorded(void **state)
{
  cg_optimizer *opt = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM, .clip_value = 1});
  cg_var *v = var2("w", 1, 2);
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *y = cg_sum(cg_square(cg_var_read(v)), NULL, 0, 0);
  size_t before = cg_tape_num_records(tape);
  cg_tensor *g = cgt_f64(1, two, (double[]){3, 3});
  assert_int_equal(cg_optimizer_apply_gradients(opt, &g, &v, 1), CG_OK);
  assert_int_equal(cg_tape_num_records(tape), before);
  cg_tape_end(tape);
  assert_non_null(y);
  cg_tape_free(tape);
  cg_var_free(v);
  cg_optimizer_free(opt);
}

/* ======================================================================================
 * Bad inputs
 * ==================================================================================== */

static void bad_configs(void **state)
{
  struct {
    cg_optimizer_config config;
    const char *message;
  } cases[] = {
      {{.kind = (cg_optimizer_kind)9}, "unknown optimizer kind 9"},
      {{.kind = CG_OPT_ADAM, .lr = -0.1}, "Adam: learning rate must be >= 0 and finite, got -0.1"},
      {{.kind = CG_OPT_SGD, .lr = NAN}, "SGD: learning rate"},
      {{.kind = CG_OPT_SGD, .momentum = -1}, "SGD: momentum must be in [0, inf), got -1"},
      {{.kind = CG_OPT_SGD, .nesterov = 1}, "SGD: Nesterov momentum needs momentum > 0"},
      {{.kind = CG_OPT_ADAM, .beta1 = 1}, "Adam: beta1 must be in [0, 1), got 1"},
      {{.kind = CG_OPT_ADAMW, .beta2 = 1.5}, "AdamW: beta2"},
      {{.kind = CG_OPT_RMSPROP, .eps = -1e-8}, "RMSprop: eps"},
      {{.kind = CG_OPT_RMSPROP, .rho = 2}, "RMSprop: rho must be in [0, 1], got 2"},
      {{.kind = CG_OPT_ADAGRAD, .initial_accumulator = -1}, "Adagrad: initial_accumulator"},
      {{.kind = CG_OPT_ADAM, .weight_decay = -1}, "Adam: weight_decay"},
      {{.kind = CG_OPT_ADAM, .clip_norm = -1}, "Adam: clip_norm"},
      {{.kind = CG_OPT_ADAM, .clip_value = INFINITY}, "Adam: clip_value"},
      {{.kind = CG_OPT_SGD, .schedule = {.kind = CG_LR_STEP, .gamma = 0.5}},
       "SGD: step schedule: step_size must be > 0, got 0"},
      {{.kind = CG_OPT_SGD, .schedule = {.kind = CG_LR_STEP, .step_size = 10}},
       "SGD: step schedule: gamma must be > 0"},
      {{.kind = CG_OPT_SGD, .schedule = {.kind = CG_LR_COSINE}},
       "SGD: cosine schedule: decay_steps must be > 0, got 0"},
      {{.kind = CG_OPT_SGD, .schedule = {.kind = CG_LR_COSINE, .decay_steps = 5, .lr_min = -1}},
       "SGD: cosine schedule: lr_min must be >= 0"},
      {{.kind = CG_OPT_SGD, .schedule = {.kind = (cg_lr_schedule_kind)7}},
       "unknown learning-rate schedule kind 7"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    assert_null(cg_optimizer_new(&cases[k].config));
    assert_error(CG_EINVAL, cases[k].message);
  }
  assert_null(cg_optimizer_new(NULL));
  assert_error(CG_EINVAL, "config is NULL");
}

static void bad_apply_arguments(void **state)
{
  cg_optimizer *opt = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM});
  const int64_t s34[2] = {3, 4}, s43[2] = {4, 3};
  cg_var *kernel = cg_var_new("dense/kernel", cg_zeros(CG_F64, 2, s43), 1);
  cg_var *frozen = cg_var_new("frozen", cg_zeros(CG_F64, 2, s43), 0);
  cg_var *twin = cg_var_new("dense/kernel", cg_zeros(CG_F64, 2, s43), 1);
  cg_tensor *good = cg_ones(CG_F64, 2, s43);
  cg_var *null_var = NULL;

  assert_int_equal(cg_optimizer_apply_gradients(NULL, &good, &kernel, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "optimizer is NULL");
  assert_int_equal(cg_optimizer_apply_gradients(opt, &good, &kernel, -1), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: n is -1, must be >= 0");
  assert_int_equal(cg_optimizer_apply_gradients(opt, NULL, &kernel, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: grads is NULL");
  assert_int_equal(cg_optimizer_apply_gradients(opt, &good, NULL, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: vars is NULL");
  assert_int_equal(cg_optimizer_apply_gradients(opt, &good, &null_var, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: variable 0 is NULL");
  assert_int_equal(cg_optimizer_apply_gradients(opt, &good, &frozen, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: variable 'frozen' is not trainable");

  cg_tensor *transposed = cg_ones(CG_F64, 2, s34);
  assert_int_equal(cg_optimizer_apply_gradients(opt, &transposed, &kernel, 1), CG_ESHAPE);
  assert_error(CG_ESHAPE, "Adam: gradient for 'dense/kernel' is [3,4], the variable is [4,3]");
  cg_tensor *single = cg_ones(CG_F32, 2, s43);
  assert_int_equal(cg_optimizer_apply_gradients(opt, &single, &kernel, 1), CG_EDTYPE);
  assert_error(CG_EDTYPE, "Adam: gradient for 'dense/kernel' is f32, the variable is f64");

  cg_var *both[2] = {kernel, twin};
  cg_tensor *grads[2] = {good, good};
  assert_int_equal(cg_optimizer_apply_gradients(opt, grads, both, 2), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: variables 0 and 1 are both named 'dense/kernel'");

  /* a failed call changes nothing: a bad second gradient stops the first update too */
  cg_var *pair[2] = {kernel, frozen};
  assert_int_equal(cg_optimizer_apply_gradients(opt, grads, pair, 2), CG_EINVAL);
  assert_error(CG_EINVAL, "not trainable");
  assert_tensor(cg_var_value(kernel), CG_F64, 2, s43, NULL, 0);
  assert_true(cg_tensor_get(cg_var_value(kernel), 0) == 0);
  assert_int_equal(cg_optimizer_iterations(opt), 0);
  assert_int_equal(cg_optimizer_num_slots(opt), 0);

  /* n == 0 is a step with nothing to update */
  assert_int_equal(cg_optimizer_apply_gradients(opt, NULL, NULL, 0), CG_OK);
  assert_int_equal(cg_optimizer_iterations(opt), 1);

  cg_var_free(kernel);
  cg_var_free(frozen);
  cg_var_free(twin);
  cg_optimizer_free(opt);
}

static void bad_state(void **state)
{
  cg_optimizer *opt = cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM});
  cg_tensor *s = cgt_f64(1, two, (double[]){1, 1});
  const int64_t three[1] = {3};
  cg_tensor *wrong = cgt_f64(1, three, (double[]){1, 1, 1});
  const char *m = "w/m", *bad = "w/momentum", *bare = "m";

  assert_int_equal(cg_optimizer_set_state(NULL, 0, &m, &s, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "optimizer is NULL");
  assert_int_equal(cg_optimizer_set_state(opt, -1, &m, &s, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: iterations is -1, must be >= 0");
  assert_int_equal(cg_optimizer_set_state(opt, 0, &m, &s, -2), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: n is -2");
  assert_int_equal(cg_optimizer_set_state(opt, 0, NULL, &s, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: slot_names is NULL");
  assert_int_equal(cg_optimizer_set_state(opt, 0, &bad, &s, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: slot 'w/momentum' is not '<variable>/<slot>' with a slot this "
                          "optimizer keeps (m, v)");
  assert_int_equal(cg_optimizer_set_state(opt, 0, &bare, &s, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "slot 'm' is not");
  const char *twice[2] = {"w/m", "w/m"};
  cg_tensor *ss[2] = {s, s};
  assert_int_equal(cg_optimizer_set_state(opt, 0, twice, ss, 2), CG_EINVAL);
  assert_error(CG_EINVAL, "Adam: slot 'w/m' is given twice");
  cg_tensor *ints = cg_zeros(CG_I32, 1, two);
  assert_int_equal(cg_optimizer_set_state(opt, 0, &m, &ints, 1), CG_EDTYPE);
  assert_error(CG_EDTYPE, "Adam: slot 'w/m' is i32");

  /* a restored slot that does not fit its variable is an error at the variable's first step */
  assert_int_equal(cg_optimizer_set_state(opt, 5, &m, &wrong, 1), CG_OK);
  cg_var *v = var2("w", 1, 2);
  cg_tensor *g = cgt_f64(1, two, (double[]){1, 1});
  assert_int_equal(cg_optimizer_apply_gradients(opt, &g, &v, 1), CG_ESHAPE);
  assert_error(CG_ESHAPE, "Adam: slot 'w/m' for 'w' is [3], the variable is [2]");
  assert_var2(v, 1, 2);
  assert_int_equal(cg_optimizer_iterations(opt), 5);

  /* slots by index */
  assert_null(cg_optimizer_slot_name(opt, 1));
  assert_error(CG_ERANGE, "cg_optimizer_slot_name: slot 1 is out of range [0, 1)");
  assert_null(cg_optimizer_slot(opt, -1));
  assert_error(CG_ERANGE, "cg_optimizer_slot: slot -1 is out of range");
  assert_int_equal(cg_optimizer_num_slots(NULL), -1);
  assert_error(CG_EINVAL, "optimizer is NULL");
  assert_int_equal(cg_optimizer_iterations(NULL), -1);
  assert_error(CG_EINVAL, "optimizer is NULL");
  cg_optimizer_current_lr(NULL);
  assert_error(CG_EINVAL, "optimizer is NULL");
  cg_optimizer_free(NULL);
  cg_var_free(v);
  cg_optimizer_free(opt);
}

static void bad_clip_arguments(void **state)
{
  cg_tensor *g = cgt_f64(1, two, (double[]){1, 1}), *out;
  cg_tensor *ints = cg_zeros(CG_I64, 1, two);
  assert_int_equal(cg_clip_by_global_norm(&g, -1, 1, &out, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "cg_clip_by_global_norm: n is -1");
  assert_int_equal(cg_clip_by_global_norm(NULL, 1, 1, &out, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "grads is NULL");
  assert_int_equal(cg_clip_by_global_norm(&g, 1, 1, NULL, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "out is NULL");
  assert_int_equal(cg_clip_by_global_norm(&g, 1, 0, &out, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "clip_norm must be > 0 and finite, got 0");
  assert_int_equal(cg_clip_by_global_norm(&g, 1, NAN, &out, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "clip_norm");
  assert_int_equal(cg_clip_by_global_norm(&ints, 1, 1, &out, NULL), CG_EDTYPE);
  assert_error(CG_EDTYPE, "gradient 0 is i64");
}

/* ======================================================================================
 * float32 against float64
 * ==================================================================================== */

static void f32_follows_f64(void **state)
{
  cg_optimizer_config configs[] = {
      {.kind = CG_OPT_SGD, .lr = 0.1, .momentum = 0.9, .weight_decay = 0.01},
      {.kind = CG_OPT_ADAM, .lr = 0.01},
      {.kind = CG_OPT_ADAMW, .lr = 0.01, .weight_decay = 0.1},
      {.kind = CG_OPT_RMSPROP, .momentum = 0.5},
      {.kind = CG_OPT_ADAGRAD},
  };
  const int64_t shape[1] = {64};
  for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
    cg_optimizer *o32 = cg_optimizer_new(&configs[k]), *o64 = cg_optimizer_new(&configs[k]);
    cg_tensor *p = cg_random_normal(CG_F64, 1, shape, 0, 1, 7);
    cg_var *v32 = cg_var_new("w", cg_cast(p, CG_F32), 1), *v64 = cg_var_new("w", p, 1);
    for (int t = 0; t < 5; t++) {
      cg_tensor *g = cg_random_normal(CG_F64, 1, shape, 0, 1, 50 + t), *g32 = cg_cast(g, CG_F32);
      assert_int_equal(cg_optimizer_apply_gradients(o32, &g32, &v32, 1), CG_OK);
      assert_int_equal(cg_optimizer_apply_gradients(o64, &g, &v64, 1), CG_OK);
    }
    for (int64_t i = 0; i < 64; i++)
      assert_close(cg_tensor_get(cg_var_value(v32), i), cg_tensor_get(cg_var_value(v64), i),
                         1e-5);
    cg_var_free(v32);
    cg_var_free(v64);
    cg_optimizer_free(o32);
    cg_optimizer_free(o64);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(sgd_plain),
      cgt_test(sgd_momentum),
      cgt_test(sgd_nesterov),
      cgt_test(sgd_weight_decay),
      cgt_test(adam),
      cgt_test(adamw),
      cgt_test(adam_weight_decay_is_added_to_the_gradient),
      cgt_test(rmsprop),
      cgt_test(rmsprop_momentum),
      cgt_test(adagrad),
      cgt_test(adagrad_from_zero),
      cgt_test(defaults_follow_pytorch),
      cgt_test(matches_torch_optim),
      cgt_test(constant_schedule),
      cgt_test(step_schedule),
      cgt_test(cosine_schedule),
      cgt_test(schedule_drives_adam),
      cgt_test(clip_by_global_norm_values),
      cgt_test(optimizer_clips_by_value),
      cgt_test(optimizer_clips_by_value_then_norm),
      cgt_test(slots_are_lazy_and_named),
      cgt_test(slot_names_per_kind),
      cgt_test(restored_state_continues_bit_exactly),
      cgt_test(a_held_slot_never_changes),
      cgt_test(updates_are_not_recorded),
      cgt_test(bad_configs),
      cgt_test(bad_apply_arguments),
      cgt_test(bad_state),
      cgt_test(bad_clip_arguments),
      cgt_test(f32_follows_f64),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

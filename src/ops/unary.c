/* unary.c - element-wise ops of one tensor: arithmetic (Neg, Abs, Square, ...), exponentials
 * and logarithms, trigonometry, activations (Tanh, Sigmoid, Relu, Softplus, ...) and rounding.
 * Each op keeps its shape rule, kernels, gradient and public wrapper in one block; the output
 * always has the input's dtype and shape. Ops of two or more tensors live in binary.c. */
#include "kernel.h"
#include "parallel.h"
#include "unary_grad.h"
#include "vector_math.h"

/* ======================================================================================
 * Shared shape rules and the element-wise map
 * ==================================================================================== */

/* Transcendental ops: f32 and f64 only. */
static cg_status float_infer(cg_node *n)
{
  const cg_tensor *x = cg__in(n, 0);
  if (cg_dtype_is_float(x->dtype)) {
    cg__declare_output_like(n, 0, x->dtype, x);
    return CG_OK;
  }
  cg_status st = cg__require_float(n, 0);
  return st != CG_OK ? st : cg_infer_same_as_input(n, 0);
}

/* Ops with a meaning on integers too: every dtype but bool. */
static cg_status numeric_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  if (x->dtype == CG_BOOL)
    return cg_set_error(CG_EDTYPE, "%s: input 0 must be f32, f64, i32 or i64, got %s %s",
                        cg_node_op_type(n), cg_dtype_name(x->dtype), cg__in_shape(n, 0));
  return cg_infer_same_as_input(n, 0);
}

typedef float (*f32_fn)(float);
typedef double (*f64_fn)(double);
typedef int32_t (*i32_fn)(int32_t);
typedef int64_t (*i64_fn)(int64_t);

/* y[i] = f(x[i]) with the function for x's dtype; NULL means no kernel for that dtype
 * (infer has already refused it, so that error is only a safety net). Inline so that each
 * op's copy calls its element functions directly instead of through a pointer. The output
 * is freshly allocated, hence restrict. */
static inline cg_status map_elements(cg_node *n, f32_fn f32, f64_fn f64, i32_fn i32, i64_fn i64)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  int64_t size = x->size;
  switch (x->dtype) {
  case CG_F32:
    if (!f32) break;
    {
      const float *restrict xs = CG_F32P(x);
      float *restrict ys = CG_F32P(y);
      for (int64_t i = 0; i < size; i++) ys[i] = f32(xs[i]);
    }
    return CG_OK;
  case CG_F64:
    if (!f64) break;
    {
      const double *restrict xs = CG_F64P(x);
      double *restrict ys = CG_F64P(y);
      for (int64_t i = 0; i < size; i++) ys[i] = f64(xs[i]);
    }
    return CG_OK;
  case CG_I32:
    if (!i32) break;
    {
      const int32_t *restrict xs = CG_I32P(x);
      int32_t *restrict ys = CG_I32P(y);
      for (int64_t i = 0; i < size; i++) ys[i] = i32(xs[i]);
    }
    return CG_OK;
  case CG_I64:
    if (!i64) break;
    {
      const int64_t *restrict xs = CG_I64P(x);
      int64_t *restrict ys = CG_I64P(y);
      for (int64_t i = 0; i < size; i++) ys[i] = i64(xs[i]);
    }
    return CG_OK;
  default:
    break;
  }
  return cg_set_error(CG_EDTYPE, "%s: no kernel for dtype %s", cg_node_op_type(n),
                      cg_dtype_name(x->dtype));
}

static inline cg_status map_float(cg_node *n, f32_fn f32, f64_fn f64)
{
  return map_elements(n, f32, f64, NULL, NULL);
}

/* The fast path of the hot f32 ops: a vectorised kernel over a range of input 0 into
 * output 0, split over the threads in pieces of at least min_piece elements. */
typedef void (*f32_range_fn)(const float *restrict x, float *restrict y, int64_t n);
typedef struct {
  f32_range_fn kernel;
  const float *x;
  float *y;
} f32_map;

static void f32_map_range(void *ctx, int64_t begin, int64_t end)
{
  const f32_map *m = ctx;
  m->kernel(m->x + begin, m->y + begin, end - begin);
}

static void map_f32_parallel(cg_node *n, f32_range_fn kernel, int64_t min_piece)
{
  int64_t size = cg__in(n, 0)->size;
  if (size <= min_piece) { /* one range, as cg__parallel_for would give */
    if (size > 0) kernel(CG_F32P(cg__in(n, 0)), CG_F32P(cg__out(n, 0)), size);
    return;
  }
  f32_map m = {kernel, CG_F32P(cg__in(n, 0)), CG_F32P(cg__out(n, 0))};
  cg__parallel_for(size, min_piece, f32_map_range, &m);
}

/* Integer arithmetic wraps around (two's complement) instead of overflowing, as in NumPy:
 * -INT32_MIN == INT32_MIN. Unsigned arithmetic makes that defined behaviour. */
static int32_t wrap_neg_i32(int32_t x) { return (int32_t)(0u - (uint32_t)x); }
static int64_t wrap_neg_i64(int64_t x) { return (int64_t)(0u - (uint64_t)x); }

/* Floor, Ceil and Round leave integers as they are. */
static int32_t identity_i32(int32_t x) { return x; }
static int64_t identity_i64(int64_t x) { return x; }

/* ======================================================================================
 * Arithmetic
 * ==================================================================================== */

/* --- Neg: y = -x;  dx = -dy ----------------------------------------------------------- */
static float neg_f32(float x) { return -x; }
static double neg_f64(double x) { return -x; }
static cg_status neg_run(cg_node *n)
{
  return map_elements(n, neg_f32, neg_f64, wrap_neg_i32, wrap_neg_i64);
}
static cg_status neg_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_neg(dy[0]);
  return cg_status_of(dx[0]);
}
static const cg_op_def neg_def = {"Neg", 1, numeric_infer, neg_run, 0, NULL};
cg_tensor *cg_neg(cg_tensor *x) { return cg_apply1(&neg_def, x, NULL); }

/* --- Abs: y = |x|;  dx = dy * sign(x) -------------------------------------------------- */
static int32_t abs_i32(int32_t x) { return x < 0 ? wrap_neg_i32(x) : x; }
static int64_t abs_i64(int64_t x) { return x < 0 ? wrap_neg_i64(x) : x; }
static cg_status abs_run(cg_node *n) { return map_elements(n, fabsf, fabs, abs_i32, abs_i64); }
static cg_status abs_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_sign(cg_node_input(op, 0)));
  return cg_status_of(dx[0]);
}
static const cg_op_def abs_def = {"Abs", 1, numeric_infer, abs_run, 0, NULL};
cg_tensor *cg_abs(cg_tensor *x) { return cg_apply1(&abs_def, x, NULL); }

/* --- Sign: y = -1, 0 or 1 (NaN stays NaN);  dx = 0 ----------------------------------------- */
static float sign_f32(float x) { return x > 0 ? 1.0f : x < 0 ? -1.0f : x; }
static double sign_f64(double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x; }
static int32_t sign_i32(int32_t x) { return (x > 0) - (x < 0); }
static int64_t sign_i64(int64_t x) { return (x > 0) - (x < 0); }
static cg_status sign_run(cg_node *n)
{
  return map_elements(n, sign_f32, sign_f64, sign_i32, sign_i64);
}
/* Also the gradient of Floor, Ceil and Round: piecewise constant functions. */
static cg_status zero_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_zeros_like(cg_node_input(op, 0));
  return cg_status_of(dx[0]);
}
static const cg_op_def sign_def = {"Sign", 1, numeric_infer, sign_run, 0, NULL};
cg_tensor *cg_sign(cg_tensor *x) { return cg_apply1(&sign_def, x, NULL); }

/* --- Square: y = x^2;  dx = dy * 2x ---------------------------------------------------- */
static float square_f32(float x) { return x * x; }
static double square_f64(double x) { return x * x; }
static int32_t square_i32(int32_t x) { return (int32_t)((uint32_t)x * (uint32_t)x); }
static int64_t square_i64(int64_t x) { return (int64_t)((uint64_t)x * (uint64_t)x); }
static cg_status square_run(cg_node *n)
{
  return map_elements(n, square_f32, square_f64, square_i32, square_i64);
}
static cg_status square_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  dx[0] = cg_mul(dy[0], cg_mul(cg_scalar_like(x, 2.0), x));
  return cg_status_of(dx[0]);
}
static const cg_op_def square_def = {"Square", 1, numeric_infer, square_run, 0, NULL};
cg_tensor *cg_square(cg_tensor *x) { return cg_apply1(&square_def, x, NULL); }

/* --- Reciprocal: y = 1/x;  dx = -dy * y^2 ---------------------------------------------- */
static float reciprocal_f32(float x) { return 1.0f / x; }
static double reciprocal_f64(double x) { return 1.0 / x; }
static cg_status reciprocal_run(cg_node *n) { return map_float(n, reciprocal_f32, reciprocal_f64); }
static cg_status reciprocal_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                 void *user)
{
  dx[0] = cg_neg(cg_mul(dy[0], cg_square(cg_node_output(op, 0))));
  return cg_status_of(dx[0]);
}
static const cg_op_def reciprocal_def = {"Reciprocal", 1, float_infer, reciprocal_run, 0, NULL};
cg_tensor *cg_reciprocal(cg_tensor *x) { return cg_apply1(&reciprocal_def, x, NULL); }

/* --- Sqrt: y = x^(1/2);  dx = dy / (2y) ------------------------------------------------- */
static cg_status sqrt_run(cg_node *n) { return map_float(n, sqrtf, sqrt); }
static cg_status sqrt_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *y = cg_node_output(op, 0);
  dx[0] = cg_div(dy[0], cg_mul(cg_scalar_like(y, 2.0), y));
  return cg_status_of(dx[0]);
}
static const cg_op_def sqrt_def = {"Sqrt", 1, float_infer, sqrt_run, 0, NULL};
cg_tensor *cg_sqrt(cg_tensor *x) { return cg_apply1(&sqrt_def, x, NULL); }

/* --- Rsqrt: y = x^(-1/2);  dx = dy * -0.5 * y^3 ---------------------------------------- */
static float rsqrt_f32(float x) { return 1.0f / sqrtf(x); }
static double rsqrt_f64(double x) { return 1.0 / sqrt(x); }
static cg_status rsqrt_run(cg_node *n) { return map_float(n, rsqrt_f32, rsqrt_f64); }
static cg_status rsqrt_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *y = cg_node_output(op, 0);
  cg_tensor *y_cubed = cg_mul(y, cg_square(y));
  dx[0] = cg_mul(dy[0], cg_mul(cg_scalar_like(y, -0.5), y_cubed));
  return cg_status_of(dx[0]);
}
static const cg_op_def rsqrt_def = {"Rsqrt", 1, float_infer, rsqrt_run, 0, NULL};
cg_tensor *cg_rsqrt(cg_tensor *x) { return cg_apply1(&rsqrt_def, x, NULL); }

/* ======================================================================================
 * Exponentials and logarithms
 * ==================================================================================== */

/* --- Exp: y = e^x;  dx = dy * y -------------------------------------------------------- */
static cg_status exp_run(cg_node *n) { return map_float(n, expf, exp); }
static cg_status exp_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_node_output(op, 0));
  return cg_status_of(dx[0]);
}
static const cg_op_def exp_def = {"Exp", 1, float_infer, exp_run, 0, NULL};
cg_tensor *cg_exp(cg_tensor *x) { return cg_apply1(&exp_def, x, NULL); }

/* --- Expm1: y = e^x - 1 (exact near 0);  dx = dy * e^x ---------------------------------- */
static cg_status expm1_run(cg_node *n) { return map_float(n, expm1f, expm1); }
static cg_status expm1_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  /* e^x rather than y + 1, which loses e^x entirely for x below about -37 */
  dx[0] = cg_mul(dy[0], cg_exp(cg_node_input(op, 0)));
  return cg_status_of(dx[0]);
}
static const cg_op_def expm1_def = {"Expm1", 1, float_infer, expm1_run, 0, NULL};
cg_tensor *cg_expm1(cg_tensor *x) { return cg_apply1(&expm1_def, x, NULL); }

/* --- Log: y = ln x;  dx = dy / x ------------------------------------------------------- */
static cg_status log_run(cg_node *n) { return map_float(n, logf, log); }
static cg_status log_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_div(dy[0], cg_node_input(op, 0));
  return cg_status_of(dx[0]);
}
static const cg_op_def log_def = {"Log", 1, float_infer, log_run, 0, NULL};
cg_tensor *cg_log(cg_tensor *x) { return cg_apply1(&log_def, x, NULL); }

/* --- Log1p: y = ln(1 + x) (exact near 0);  dx = dy / (1 + x) ----------------------------- */
static cg_status log1p_run(cg_node *n) { return map_float(n, log1pf, log1p); }
static cg_status log1p_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  dx[0] = cg_div(dy[0], cg_add(cg_scalar_like(x, 1.0), x));
  return cg_status_of(dx[0]);
}
static const cg_op_def log1p_def = {"Log1p", 1, float_infer, log1p_run, 0, NULL};
cg_tensor *cg_log1p(cg_tensor *x) { return cg_apply1(&log1p_def, x, NULL); }

/* ======================================================================================
 * Trigonometry
 * ==================================================================================== */

/* --- Sin: y = sin x;  dx = dy * cos x -------------------------------------------------- */
static cg_status sin_run(cg_node *n) { return map_float(n, sinf, sin); }
static cg_status sin_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_cos(cg_node_input(op, 0)));
  return cg_status_of(dx[0]);
}
static const cg_op_def sin_def = {"Sin", 1, float_infer, sin_run, 0, NULL};
cg_tensor *cg_sin(cg_tensor *x) { return cg_apply1(&sin_def, x, NULL); }

/* --- Cos: y = cos x;  dx = -dy * sin x ------------------------------------------------- */
static cg_status cos_run(cg_node *n) { return map_float(n, cosf, cos); }
static cg_status cos_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_neg(cg_mul(dy[0], cg_sin(cg_node_input(op, 0))));
  return cg_status_of(dx[0]);
}
static const cg_op_def cos_def = {"Cos", 1, float_infer, cos_run, 0, NULL};
cg_tensor *cg_cos(cg_tensor *x) { return cg_apply1(&cos_def, x, NULL); }

/* ======================================================================================
 * Activations
 * ==================================================================================== */

/* --- Tanh: y = tanh x;  dx = dy * (1 - y^2) --------------------------------------------
 * f64 is libm's tanh, f32 the vectorised cg__tanh_f32 (vector_math.c): libm's tanhf is a
 * call per element, and 4096 of them took 20 us of every W1 64x64 op. */

/* Tanh costs about 0.3 ns an element where a copy costs 0.05: a second thread pays from a
 * few thousand elements on (a W4 activation, 32 K elements, 11 us on one thread). */
#define TANH_MIN_PIECE ((int64_t)8192)
static cg_status tanh_run(cg_node *n)
{
  if (cg__in(n, 0)->dtype != CG_F32) return map_float(n, NULL, tanh);
  map_f32_parallel(n, cg__tanh_f32, TANH_MIN_PIECE);
  return CG_OK;
}
/* one TanhGrad op (unary_grad.c): the same numbers as dy * (1 - square(y)), one pass */
static cg_status tanh_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg__tanh_grad(cg_node_output(op, 0), dy[0]);
  return cg_status_of(dx[0]);
}
static const cg_op_def tanh_def = {"Tanh", 1, float_infer, tanh_run, 0, NULL};
cg_tensor *cg_tanh(cg_tensor *x) { return cg_apply1(&tanh_def, x, NULL); }

/* --- Sigmoid: y = 1/(1+e^-x);  dx = dy * y * (1 - y) -------------------------------------
 * e^-|x| never overflows: for x < 0 it uses the equal form e^x/(1+e^x). */
static float sigmoid_f32(float x)
{
  float e = expf(-fabsf(x));
  return x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}
static double sigmoid_f64(double x)
{
  double e = exp(-fabs(x));
  return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}
static cg_status sigmoid_run(cg_node *n) { return map_float(n, sigmoid_f32, sigmoid_f64); }
static cg_status sigmoid_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *y = cg_node_output(op, 0);
  dx[0] = cg_mul(dy[0], cg_mul(y, cg_sub(cg_scalar_like(y, 1.0), y)));
  return cg_status_of(dx[0]);
}
static const cg_op_def sigmoid_def = {"Sigmoid", 1, float_infer, sigmoid_run, 0, NULL};
cg_tensor *cg_sigmoid(cg_tensor *x) { return cg_apply1(&sigmoid_def, x, NULL); }

/* --- Softplus: y = ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|);  dx = dy * sigmoid(x) --------
 * The second form never overflows: softplus(1000) = 1000, softplus(-1000) = e^-1000 = 0. */
static float softplus_f32(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }
static double softplus_f64(double x) { return fmax(x, 0.0) + log1p(exp(-fabs(x))); }
static cg_status softplus_run(cg_node *n) { return map_float(n, softplus_f32, softplus_f64); }
static cg_status softplus_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_mul(dy[0], cg_sigmoid(cg_node_input(op, 0)));
  return cg_status_of(dx[0]);
}
static const cg_op_def softplus_def = {"Softplus", 1, float_infer, softplus_run, 0, NULL};
cg_tensor *cg_softplus(cg_tensor *x) { return cg_apply1(&softplus_def, x, NULL); }

/* --- Relu: y = max(x, 0) (NaN stays NaN);  dx = dy * (x > 0) ------------------------------ */
static inline float relu_f32(float x) { return x > 0 || isnan(x) ? x : 0.0f; }
static double relu_f64(double x) { return x > 0 || isnan(x) ? x : 0.0; }
static int32_t relu_i32(int32_t x) { return x > 0 ? x : 0; }
static int64_t relu_i64(int64_t x) { return x > 0 ? x : 0; }
CG_VECTOR_CLONES
static void relu_range_f32(const float *restrict x, float *restrict y, int64_t n)
{
  for (int64_t i = 0; i < n; i++) y[i] = relu_f32(x[i]);
}
static cg_status relu_run(cg_node *n)
{
  if (cg_node_input(n, 0)->dtype != CG_F32)
    return map_elements(n, NULL, relu_f64, relu_i32, relu_i64);
  map_f32_parallel(n, relu_range_f32, CG_PARALLEL_MIN_ELEMENTS);
  return CG_OK;
}
/* one ReluGrad op (unary_grad.c): the same numbers as dy * cast(x > 0), one pass; integer
 * Relus carry no gradient */
static cg_status relu_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  if (!cg_dtype_is_float(cg_tensor_dtype(x))) return CG_OK;
  dx[0] = cg__relu_grad(dy[0], x);
  return cg_status_of(dx[0]);
}
static const cg_op_def relu_def = {"Relu", 1, numeric_infer, relu_run, 0, NULL};
cg_tensor *cg_relu(cg_tensor *x) { return cg_apply1(&relu_def, x, NULL); }

/* --- LeakyRelu: y = x > 0 ? x : alpha*x;  dx = x > 0 ? dy : alpha*dy ----------------------
 * attr float "alpha" (default 0.2, as in TensorFlow), any finite number. */
#define LEAKY_RELU_DEFAULT_ALPHA 0.2
static double leaky_relu_alpha(const cg_node *n)
{
  return cg_node_attr_float(n, "alpha", LEAKY_RELU_DEFAULT_ALPHA);
}
static cg_status leaky_relu_infer(cg_node *n)
{
  double alpha = leaky_relu_alpha(n);
  if (!isfinite(alpha))
    return cg_set_error(CG_EINVAL, "LeakyRelu: alpha must be a finite number, got %g", alpha);
  return float_infer(n);
}
/* Its own loop rather than map_float: the element function needs alpha. */
static cg_status leaky_relu_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  double alpha = leaky_relu_alpha(n);
  if (x->dtype == CG_F32) {
    float a = (float)alpha;
    for (int64_t i = 0; i < x->size; i++) {
      float v = CG_F32P(x)[i];
      CG_F32P(y)[i] = v > 0 ? v : a * v;
    }
    return CG_OK;
  }
  if (x->dtype == CG_F64) {
    for (int64_t i = 0; i < x->size; i++) {
      double v = CG_F64P(x)[i];
      CG_F64P(y)[i] = v > 0 ? v : alpha * v;
    }
    return CG_OK;
  }
  return cg_set_error(CG_EDTYPE, "LeakyRelu: no kernel for dtype %s", cg_dtype_name(x->dtype));
}
static cg_status leaky_relu_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                 void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  cg_tensor *positive = cg_greater(x, cg_scalar_like(x, 0.0));
  cg_tensor *scaled = cg_mul(dy[0], cg_scalar_like(x, leaky_relu_alpha(op)));
  dx[0] = cg_where(positive, dy[0], scaled);
  return cg_status_of(dx[0]);
}
static const cg_op_def leaky_relu_def = {"LeakyRelu", 1, leaky_relu_infer, leaky_relu_run, 0, NULL};
cg_tensor *cg_leaky_relu(cg_tensor *x, double alpha)
{
  cg_attrs a = {0};
  cg_attrs_set_float(&a, "alpha", alpha);
  return cg_apply1(&leaky_relu_def, x, &a);
}

/* --- Elu: y = x > 0 ? x : e^x - 1;  dx = x > 0 ? dy : dy * (y + 1) ------------------------ */
static float elu_f32(float x) { return x > 0 ? x : expm1f(x); }
static double elu_f64(double x) { return x > 0 ? x : expm1(x); }
static cg_status elu_run(cg_node *n) { return map_float(n, elu_f32, elu_f64); }
static cg_status elu_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0), *y = cg_node_output(op, 0);
  cg_tensor *positive = cg_greater(x, cg_scalar_like(x, 0.0));
  /* y + 1 = e^x where it is used, and unlike e^x it stays finite where it is not, so the
     second derivative has no inf * 0 on the positive side */
  cg_tensor *negative_side = cg_mul(dy[0], cg_add(y, cg_scalar_like(y, 1.0)));
  dx[0] = cg_where(positive, dy[0], negative_side);
  return cg_status_of(dx[0]);
}
static const cg_op_def elu_def = {"Elu", 1, float_infer, elu_run, 0, NULL};
cg_tensor *cg_elu(cg_tensor *x) { return cg_apply1(&elu_def, x, NULL); }

/* ======================================================================================
 * Rounding: piecewise constant, so the gradient is zero (zero_grad above)
 * ==================================================================================== */

/* --- Floor: y = largest integer <= x ----------------------------------------------------- */
static cg_status floor_run(cg_node *n)
{
  return map_elements(n, floorf, floor, identity_i32, identity_i64);
}
static const cg_op_def floor_def = {"Floor", 1, numeric_infer, floor_run, 0, NULL};
cg_tensor *cg_floor(cg_tensor *x) { return cg_apply1(&floor_def, x, NULL); }

/* --- Ceil: y = smallest integer >= x ------------------------------------------------------ */
static cg_status ceil_run(cg_node *n)
{
  return map_elements(n, ceilf, ceil, identity_i32, identity_i64);
}
static const cg_op_def ceil_def = {"Ceil", 1, numeric_infer, ceil_run, 0, NULL};
cg_tensor *cg_ceil(cg_tensor *x) { return cg_apply1(&ceil_def, x, NULL); }

/* --- Round: y = nearest integer, ties to even (2.5 -> 2, 3.5 -> 4) ---------------------------
 * nearbyint rounds in the current rounding mode, which is to-nearest-even unless a program
 * changes it with fesetround. */
static cg_status round_run(cg_node *n)
{
  return map_elements(n, nearbyintf, nearbyint, identity_i32, identity_i64);
}
static const cg_op_def round_def = {"Round", 1, numeric_infer, round_run, 0, NULL};
cg_tensor *cg_round(cg_tensor *x) { return cg_apply1(&round_def, x, NULL); }

/* ======================================================================================
 * Registration
 * ==================================================================================== */

cg_status cg__register_unary_ops(void)
{
  static const struct {
    const cg_op_def *def;
    cg_grad_fn grad;
  } ops[] = {
      {&neg_def, neg_grad},               {&abs_def, abs_grad},
      {&sign_def, zero_grad},             {&square_def, square_grad},
      {&reciprocal_def, reciprocal_grad}, {&sqrt_def, sqrt_grad},
      {&rsqrt_def, rsqrt_grad},           {&exp_def, exp_grad},
      {&expm1_def, expm1_grad},           {&log_def, log_grad},
      {&log1p_def, log1p_grad},           {&sin_def, sin_grad},
      {&cos_def, cos_grad},               {&tanh_def, tanh_grad},
      {&sigmoid_def, sigmoid_grad},       {&softplus_def, softplus_grad},
      {&relu_def, relu_grad},             {&leaky_relu_def, leaky_relu_grad},
      {&elu_def, elu_grad},               {&floor_def, zero_grad},
      {&ceil_def, zero_grad},             {&round_def, zero_grad},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    cg_status st = cg__register_builtin(ops[i].def, ops[i].grad);
    if (st != CG_OK) return st;
  }
  return cg__register_unary_grad_ops();
}

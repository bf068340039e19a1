/* clip.c - ClipByValue (tf.clip_by_value, torch.clamp) with bounds as attributes, and its
 * gradient op ClipByValueGrad: kernels, shape rules, gradients and JVP rules in one place.
 * Both are one pass over the data, vectorised and split over the threads when large. */
#include "jvp_rules.h"
#include "parallel.h"

/* ======================================================================================
 * Bounds: attrs float "lo" and "hi" (absent: -inf and +inf, no clipping on that side)
 * ==================================================================================== */

static double clip_lo(const cg_node *n) { return cg_node_attr_float(n, "lo", -INFINITY); }
static double clip_hi(const cg_node *n) { return cg_node_attr_float(n, "hi", INFINITY); }

/* lo <= hi, neither NaN; for integer dtypes, whole numbers (or infinite). */
static cg_status check_bounds(const cg_node *n, cg_dtype dtype)
{
  double lo = clip_lo(n), hi = clip_hi(n);
  const char *op = cg_node_op_type(n);
  if (isnan(lo) || isnan(hi))
    return cg_set_error(CG_EINVAL, "%s: bounds must be numbers, got lo = %g and hi = %g", op, lo,
                        hi);
  if (lo > hi)
    return cg_set_error(CG_EINVAL, "%s: lo must be <= hi, got lo = %g and hi = %g", op, lo, hi);
  if (!cg_dtype_is_float(dtype) && (lo != floor(lo) || hi != floor(hi)))
    return cg_set_error(CG_EINVAL,
                        "%s: bounds for %s must be whole numbers, got lo = %g and hi = %g", op,
                        cg_dtype_name(dtype), lo, hi);
  return CG_OK;
}

/* An integer bound, saturated to the dtype's range (so -inf clips nothing). */
static int64_t bound_i64(double v)
{
  const double two63 = 9223372036854775808.0;
  return v < -two63 ? INT64_MIN : v >= two63 ? INT64_MAX : (int64_t)v;
}
static int32_t bound_i32(double v)
{
  return v < (double)INT32_MIN ? INT32_MIN : v > (double)INT32_MAX ? INT32_MAX : (int32_t)v;
}

/* ======================================================================================
 * ClipByValue: y = min(max(x, lo), hi), NaN stays NaN;  dx = ClipByValueGrad(dy, x)
 * f32, f64, i32 and i64, like Relu and Maximum; the float bounds are rounded to the
 * dtype once (f32: (float)lo), and the gradient compares x with the same numbers.
 * ==================================================================================== */

static cg_status clip_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  if (x->dtype == CG_BOOL)
    return cg_set_error(CG_EDTYPE, "%s: input 0 must be f32, f64, i32 or i64, got %s %s",
                        cg_node_op_type(n), cg_dtype_name(x->dtype), cg__in_shape(n, 0));
  cg_status st = check_bounds(n, x->dtype);
  return st != CG_OK ? st : cg_infer_same_as_input(n, 0);
}

/* x < lo ? lo : x > hi ? hi : x: both tests fail for NaN, which is kept; x equal to a bound
 * is itself. The compiler turns it into compares and blends. */
CG_VECTOR_CLONES
static void clip_f32(const float *restrict x, float *restrict y, int64_t n, float lo, float hi)
{
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
}
CG_VECTOR_CLONES
static void clip_f64(const double *restrict x, double *restrict y, int64_t n, double lo, double hi)
{
  for (int64_t i = 0; i < n; i++) {
    double v = x[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
}
static void clip_i32(const int32_t *restrict x, int32_t *restrict y, int64_t n, int32_t lo,
                     int32_t hi)
{
  for (int64_t i = 0; i < n; i++) {
    int32_t v = x[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
}
static void clip_i64(const int64_t *restrict x, int64_t *restrict y, int64_t n, int64_t lo,
                     int64_t hi)
{
  for (int64_t i = 0; i < n; i++) {
    int64_t v = x[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
}

typedef struct {
  const cg_tensor *x;
  cg_tensor *y;
  double lo, hi;
} clip_job;

static void clip_range(void *ctx, int64_t begin, int64_t end)
{
  const clip_job *j = ctx;
  int64_t n = end - begin;
  switch (j->x->dtype) {
  case CG_F32:
    clip_f32(CG_F32P(j->x) + begin, CG_F32P(j->y) + begin, n, (float)j->lo, (float)j->hi);
    break;
  case CG_F64: clip_f64(CG_F64P(j->x) + begin, CG_F64P(j->y) + begin, n, j->lo, j->hi); break;
  case CG_I32:
    clip_i32(CG_I32P(j->x) + begin, CG_I32P(j->y) + begin, n, bound_i32(j->lo), bound_i32(j->hi));
    break;
  default:
    clip_i64(CG_I64P(j->x) + begin, CG_I64P(j->y) + begin, n, bound_i64(j->lo), bound_i64(j->hi));
    break;
  }
}

/* Split over the threads from 8 K elements per thread, not the usual 32 K: what a clip
 * usually reads is a gradient a threaded product has just written, half of it in the other
 * core's cache. In W5's step (a 128x256 gradient, bench/w5_custom.c) the clip took 3.0 us
 * split in two against 4.3 us on one thread (medians of 6 runs each). */
#define CLIP_MIN_PER_THREAD (CG_PARALLEL_MIN_ELEMENTS / 4)

static cg_status clip_run(cg_node *n)
{
  clip_job j = {cg_node_input(n, 0), cg_node_output(n, 0), clip_lo(n), clip_hi(n)};
  cg__parallel_for(j.x->size, CLIP_MIN_PER_THREAD, clip_range, &j);
  return CG_OK;
}

static cg_tensor *clip_grad_op(cg_tensor *dy, cg_tensor *x, const cg_attrs *bounds);

/* integer clips carry no gradient */
static cg_status clip_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  if (!cg_dtype_is_float(cg_tensor_dtype(x))) return CG_OK;
  dx[0] = clip_grad_op(dy[0], x, cg_node_attrs(op));
  return cg_status_of(dx[0]);
}

/* dy = ClipByValueGrad(dx, x): the tangent passes where x is inside [lo, hi] */
static cg_status clip_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  out[0] = t[0] ? clip_grad_op(t[0], cg_node_input(op, 0), cg_node_attrs(op)) : NULL;
  return out[0] || !t[0] ? CG_OK : cg_status_of(NULL);
}

static const cg_op_def clip_def = {"ClipByValue", 1, clip_infer, clip_run, 0, NULL};

cg_tensor *cg_clip_by_value(cg_tensor *x, double lo, double hi)
{
  cg_attrs a = {0};
  cg_attrs_set_float(&a, "lo", lo);
  cg_attrs_set_float(&a, "hi", hi);
  return cg_apply1(&clip_def, x, &a);
}

/* ======================================================================================
 * ClipByValueGrad(g, x) = lo <= x <= hi ? g : 0 (TensorFlow's rule; a NaN x gets 0, as in
 * torch.clamp's gradient, and a NaN g outside the bounds gives 0: selected, not multiplied).
 * d/dg = ClipByValueGrad(ddx, x); x gets none (piecewise constant). Same attributes.
 * ==================================================================================== */

static cg_status clip_grad_infer(cg_node *n)
{
  cg_status st = cg__require_float(n, 0);
  if (st == CG_OK) st = cg__require_same_dtype(n, 0, 1);
  if (st != CG_OK) return st;
  const cg_tensor *g = cg_node_input(n, 0), *x = cg_node_input(n, 1);
  if (!cg__shape_equal(g->ndim, g->shape, x->ndim, x->shape))
    return cg_set_error(CG_ESHAPE, "%s: inputs must have one shape: %s vs %s", cg_node_op_type(n),
                        cg__in_shape(n, 0), cg__in_shape(n, 1));
  st = check_bounds(n, g->dtype);
  return st != CG_OK ? st : cg_infer_same_as_input(n, 0);
}

CG_VECTOR_CLONES
static void clip_grad_f32(const float *restrict g, const float *restrict x, float *restrict out,
                          int64_t n, float lo, float hi)
{
  for (int64_t i = 0; i < n; i++) out[i] = lo <= x[i] && x[i] <= hi ? g[i] : 0.0f;
}
CG_VECTOR_CLONES
static void clip_grad_f64(const double *restrict g, const double *restrict x, double *restrict out,
                          int64_t n, double lo, double hi)
{
  for (int64_t i = 0; i < n; i++) out[i] = lo <= x[i] && x[i] <= hi ? g[i] : 0.0;
}

typedef struct {
  const cg_tensor *g, *x;
  cg_tensor *out;
  double lo, hi;
} clip_grad_job;

static void clip_grad_range(void *ctx, int64_t begin, int64_t end)
{
  const clip_grad_job *j = ctx;
  if (j->g->dtype == CG_F32)
    clip_grad_f32(CG_F32P(j->g) + begin, CG_F32P(j->x) + begin, CG_F32P(j->out) + begin,
                  end - begin, (float)j->lo, (float)j->hi);
  else
    clip_grad_f64(CG_F64P(j->g) + begin, CG_F64P(j->x) + begin, CG_F64P(j->out) + begin,
                  end - begin, j->lo, j->hi);
}

static cg_status clip_grad_run(cg_node *n)
{
  clip_grad_job j = {cg_node_input(n, 0), cg_node_input(n, 1), cg_node_output(n, 0), clip_lo(n),
                     clip_hi(n)};
  cg__parallel_for(j.out->size, CG_PARALLEL_MIN_ELEMENTS, clip_grad_range, &j);
  return CG_OK;
}

static cg_status clip_grad_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  if (cg_node_needs_input_grad(op, 0) &&
      !(dx[0] = clip_grad_op(dy[0], cg_node_input(op, 1), cg_node_attrs(op))))
    return cg_status_of(NULL);
  return CG_OK;
}

/* linear in g, piecewise constant in x */
static cg_status clip_grad_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 1u << 0);
}

static const cg_op_def clip_grad_def = {"ClipByValueGrad", 2, clip_grad_infer, clip_grad_run, 0,
                                        NULL};

static cg_tensor *clip_grad_op(cg_tensor *dy, cg_tensor *x, const cg_attrs *bounds)
{
  return cg_apply2(&clip_grad_def, dy, x, bounds);
}

/* ======================================================================================
 * Registration (src/ops/builtin.c calls both)
 * ==================================================================================== */

cg_status cg__register_clip_ops(void)
{
  cg_status st = cg__register_builtin(&clip_def, clip_grad);
  return st != CG_OK ? st : cg__register_builtin(&clip_grad_def, clip_grad_grad);
}

cg_status cg__register_clip_jvps(void)
{
  static const cg_jvp_row rows[] = {{"ClipByValue", clip_jvp}, {"ClipByValueGrad", clip_grad_jvp}};
  return cg__register_jvp_rows(rows, sizeof rows / sizeof rows[0]);
}

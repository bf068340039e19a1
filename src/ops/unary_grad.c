/* unary_grad.c - TanhGrad and ReluGrad, the gradients of Tanh and Relu as ops of their own
 * (as in TensorFlow), and TanhGradGrad, TanhGrad's gradient in y: one pass over the data
 * where the composite took three, computing the same expression in the same order, so the
 * results are the same to the bit. Each is differentiable in turn (second derivatives,
 * Hessian-vector products). */
#include "kernel.h"
#include "parallel.h"
#include "unary_grad.h"

/* ======================================================================================
 * Shared: the shape rule (two float inputs of one dtype and shape) and the kernel skeleton
 * ==================================================================================== */

static cg_status same_float_pair_infer(cg_node *n)
{
  const cg_tensor *x = cg__in(n, 0), *y = cg__in(n, 1);
  if (cg_dtype_is_float(x->dtype) && x->dtype == y->dtype &&
      cg__shape_equal(x->ndim, x->shape, y->ndim, y->shape)) { /* the common case */
    cg__declare_output_like(n, 0, x->dtype, x);
    return CG_OK;
  }
  cg_status st = cg__require_float(n, 0);
  if (st == CG_OK) st = cg__require_same_dtype(n, 0, 1);
  if (st != CG_OK) return st;
  const cg_tensor *a = cg_node_input(n, 0), *b = cg_node_input(n, 1);
  if (!cg__shape_equal(a->ndim, a->shape, b->ndim, b->shape))
    return cg_set_error(CG_ESHAPE, "%s: inputs must have one shape: %s vs %s", cg_node_op_type(n),
                        cg__in_shape(n, 0), cg__in_shape(n, 1));
  return cg_infer_same_as_input(n, 0);
}

/* Three float inputs of one dtype and shape (TanhGradGrad). */
static cg_status same_float_triple_infer(cg_node *n)
{
  cg_status st = cg__require_float(n, 0);
  for (int i = 1; i < 3 && st == CG_OK; i++) st = cg__require_same_dtype(n, 0, i);
  if (st != CG_OK) return st;
  const cg_tensor *a = cg_node_input(n, 0);
  for (int i = 1; i < 3; i++) {
    const cg_tensor *b = cg_node_input(n, i);
    if (!cg__shape_equal(a->ndim, a->shape, b->ndim, b->shape))
      return cg_set_error(CG_ESHAPE, "%s: inputs must have one shape: %s vs %s (input %d)",
                          cg_node_op_type(n), cg__in_shape(n, 0), cg__in_shape(n, i), i);
  }
  cg__declare_output_like(n, 0, a->dtype, a);
  return CG_OK;
}

/* out = kernel(a, b) element by element, f32 ranges split over the threads. */
typedef void (*pair_f32_fn)(const float *restrict a, const float *restrict b, float *restrict out,
                            int64_t n);
typedef struct {
  pair_f32_fn kernel;
  const float *a, *b;
  float *out;
} pair_job;

static void pair_range(void *ctx, int64_t begin, int64_t end)
{
  const pair_job *j = ctx;
  j->kernel(j->a + begin, j->b + begin, j->out + begin, end - begin);
}

static void run_pair_f32(cg_node *n, pair_f32_fn kernel)
{
  pair_job j = {kernel, CG_F32P(cg__in(n, 0)), CG_F32P(cg__in(n, 1)), CG_F32P(cg__out(n, 0))};
  int64_t size = cg__out(n, 0)->size;
  if (size <= CG_PARALLEL_MIN_ELEMENTS) /* one range, as cg__parallel_for would give */
    kernel(j.a, j.b, j.out, size);
  else
    cg__parallel_for(size, CG_PARALLEL_MIN_ELEMENTS, pair_range, &j);
}

/* ======================================================================================
 * TanhGrad(y, g) = g (1 - y^2);  dy = -2 y g ddx,  dg = TanhGrad(y, ddx)
 * ==================================================================================== */

CG_VECTOR_CLONES
static void tanh_grad_f32(const float *restrict y, const float *restrict g, float *restrict out,
                          int64_t n)
{
  for (int64_t i = 0; i < n; i++) out[i] = g[i] * (1.0f - y[i] * y[i]);
}

static cg_status tanh_grad_run(cg_node *n)
{
  if (cg__in(n, 0)->dtype == CG_F32) {
    if (cg__out(n, 0)->size == 1) { /* tanh_grad_f32's expression on one element, no call */
      const float y = CG_F32P(cg__in(n, 0))[0], g = CG_F32P(cg__in(n, 1))[0];
      CG_F32P(cg__out(n, 0))[0] = g * (1.0f - y * y);
      return CG_OK;
    }
    run_pair_f32(n, tanh_grad_f32);
    return CG_OK;
  }
  const double *y = CG_F64P(cg_node_input(n, 0)), *g = CG_F64P(cg_node_input(n, 1));
  double *out = CG_F64P(cg_node_output(n, 0));
  for (int64_t i = 0; i < cg_node_output(n, 0)->size; i++) out[i] = g[i] * (1.0 - y[i] * y[i]);
  return CG_OK;
}

static cg_status tanh_grad_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                void *user)
{
  cg_tensor *y = cg_node_input(op, 0), *g = cg_node_input(op, 1);
  if (cg_node_needs_input_grad(op, 0) && !(dx[0] = cg__tanh_grad_grad(y, g, dy[0])))
    return cg_status_of(NULL);
  if (cg_node_needs_input_grad(op, 1) && !(dx[1] = cg__tanh_grad(y, dy[0]))) return cg_status_of(NULL);
  return CG_OK;
}

static const cg_op_def tanh_grad_def = {"TanhGrad", 2, same_float_pair_infer, tanh_grad_run, 0, NULL};

cg_tensor *cg__tanh_grad(cg_tensor *y, cg_tensor *g) { return cg_apply2(&tanh_grad_def, y, g, NULL); }

/* ======================================================================================
 * TanhGradGrad(y, g, d) = d (-2 (y g)): TanhGrad's gradient in y, as dy * (-2 * (y * g))
 * computed it. Trilinear and symmetric up to order: its gradient in each input is the op
 * on the other two and the incoming gradient.
 * ==================================================================================== */

typedef struct {
  const float *y, *g, *d;
  float *out;
} triple_job;

CG_VECTOR_CLONES
static void tanh_grad_grad_f32(const float *restrict y, const float *restrict g,
                               const float *restrict d, float *restrict out, int64_t n)
{
  for (int64_t i = 0; i < n; i++) out[i] = d[i] * (-2.0f * (y[i] * g[i]));
}

static void tanh_grad_grad_range(void *ctx, int64_t begin, int64_t end)
{
  const triple_job *j = ctx;
  tanh_grad_grad_f32(j->y + begin, j->g + begin, j->d + begin, j->out + begin, end - begin);
}

static cg_status tanh_grad_grad_run(cg_node *n)
{
  int64_t size = cg__out(n, 0)->size;
  if (cg__in(n, 0)->dtype == CG_F32) {
    triple_job j = {CG_F32P(cg__in(n, 0)), CG_F32P(cg__in(n, 1)), CG_F32P(cg__in(n, 2)),
                    CG_F32P(cg__out(n, 0))};
    if (size <= CG_PARALLEL_MIN_ELEMENTS) tanh_grad_grad_range(&j, 0, size);
    else cg__parallel_for(size, CG_PARALLEL_MIN_ELEMENTS, tanh_grad_grad_range, &j);
    return CG_OK;
  }
  const double *y = CG_F64P(cg__in(n, 0)), *g = CG_F64P(cg__in(n, 1)), *d = CG_F64P(cg__in(n, 2));
  double *out = CG_F64P(cg__out(n, 0));
  for (int64_t i = 0; i < size; i++) out[i] = d[i] * (-2.0 * (y[i] * g[i]));
  return CG_OK;
}

static cg_status tanh_grad_grad_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                     void *user)
{
  cg_tensor *in[3] = {cg_node_input(op, 0), cg_node_input(op, 1), cg_node_input(op, 2)};
  for (int i = 0; i < 3; i++)
    if (cg_node_needs_input_grad(op, i) &&
        !(dx[i] = cg__tanh_grad_grad(in[(i + 1) % 3], in[(i + 2) % 3], dy[0])))
      return cg_status_of(NULL);
  return CG_OK;
}

static const cg_op_def tanh_grad_grad_def = {"TanhGradGrad", 3, same_float_triple_infer,
                                             tanh_grad_grad_run, 0, NULL};

cg_tensor *cg__tanh_grad_grad(cg_tensor *y, cg_tensor *g, cg_tensor *d)
{
  cg_tensor *in[3] = {y, g, d};
  return cg_apply(&tanh_grad_grad_def, in, 3, NULL);
}

/* ======================================================================================
 * ReluGrad(g, x) = g (x > 0);  dg = ReluGrad(ddx, x), x gets none (piecewise constant)
 * The mask multiplies, as Relu's composite gradient did: NaN in g stays NaN.
 * ==================================================================================== */

CG_VECTOR_CLONES
static void relu_grad_f32(const float *restrict g, const float *restrict x, float *restrict out,
                          int64_t n)
{
  for (int64_t i = 0; i < n; i++) out[i] = g[i] * (x[i] > 0 ? 1.0f : 0.0f);
}

static cg_status relu_grad_run(cg_node *n)
{
  if (cg_node_input(n, 0)->dtype == CG_F32) {
    run_pair_f32(n, relu_grad_f32);
    return CG_OK;
  }
  const double *g = CG_F64P(cg_node_input(n, 0)), *x = CG_F64P(cg_node_input(n, 1));
  double *out = CG_F64P(cg_node_output(n, 0));
  for (int64_t i = 0; i < cg_node_output(n, 0)->size; i++) out[i] = g[i] * (x[i] > 0 ? 1.0 : 0.0);
  return CG_OK;
}

static cg_status relu_grad_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                void *user)
{
  if (cg_node_needs_input_grad(op, 0) && !(dx[0] = cg__relu_grad(dy[0], cg_node_input(op, 1))))
    return cg_status_of(NULL);
  return CG_OK;
}

static const cg_op_def relu_grad_def = {"ReluGrad", 2, same_float_pair_infer, relu_grad_run, 0, NULL};

cg_tensor *cg__relu_grad(cg_tensor *g, cg_tensor *x) { return cg_apply2(&relu_grad_def, g, x, NULL); }

cg_status cg__register_unary_grad_ops(void)
{
  cg_status st = cg__register_builtin(&tanh_grad_def, tanh_grad_grad);
  if (st == CG_OK) st = cg__register_builtin(&tanh_grad_grad_def, tanh_grad_grad_grad);
  return st != CG_OK ? st : cg__register_builtin(&relu_grad_def, relu_grad_grad);
}

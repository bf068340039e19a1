/* binary.c - element-wise ops of two (Where: three) broadcasting tensors: arithmetic (Add,
 * Sub, Mul, Div, Pow, Maximum, Minimum, SquaredDifference), comparisons, logic and Where.
 * One shape rule and one broadcasting kernel skeleton serve every two-input op; each op
 * brings only its per-dtype element loops, its gradient and its wrapper. */
#include "kernel.h"
#include "parallel.h"

/* ======================================================================================
 * The shared skeleton: element spans, the broadcast walk, the shape rule
 * ==================================================================================== */

/* y[i] = f(a[i * a_step], b[i * b_step]) for i < n. A step is 1 when the operand moves
 * along the span and 0 when it repeats one element (it was broadcast). */
typedef void (*span_fn)(const void *a, int64_t a_step, const void *b, int64_t b_step,
                        void *y, int64_t n);

/* What distinguishes one two-input op from another; it hangs from cg_op_def.user. */
/* The float arithmetic binary_run computes itself on one element (a span call is most of
   the cost of a one-element op): the same C expression as the span, so the same bits. */
typedef enum { NOT_ARITHMETIC, ARITH_ADD, ARITH_SUB, ARITH_MUL, ARITH_DIV } arithmetic;

typedef struct {
  span_fn span[CG_NUM_DTYPES]; /* NULL: the op does not take this dtype                  */
  bool bool_output;            /* comparisons and logic give bool                       */
  /* Optional: refuses input values the kernel cannot compute (integer division by 0). */
  cg_status (*check_values)(const cg_node *n);
  arithmetic one;              /* its one-element float case, if binary_run knows it     */
} binary_kind;

/* Defines a span_fn named name. Elements are stored as T, read as C (A and B in expr) and
 * the result stored as Y. Integer arithmetic reads signed values as unsigned C so that
 * overflow wraps around (as in NumPy) instead of being undefined. One loop per pattern of
 * steps, so that the common ones (same shape, one scalar side) vectorise. */
#define DEFINE_SPAN(name, T, C, Y, expr) DEFINE_SPAN_WITH(, name, T, C, Y, expr)
/* Float spans get one version per vector width (CG_VECTOR_CLONES, parallel.h). */
#define DEFINE_SPAN_WITH(attributes, name, T, C, Y, expr)                                   \
  attributes static void name(const void *a_, int64_t a_step, const void *b_,              \
                              int64_t b_step, void *y_, int64_t n)                          \
  {                                                                                         \
    const T *restrict a = a_, *restrict b = b_;                                             \
    Y *restrict y = y_;                                                                     \
    if (a_step && b_step) {                                                                 \
      for (int64_t i = 0; i < n; i++) {                                                     \
        const C A = (C)a[i], B = (C)b[i];                                                   \
        y[i] = (Y)(expr);                                                                   \
      }                                                                                     \
    } else if (a_step) {                                                                    \
      const C B = (C)b[0];                                                                  \
      for (int64_t i = 0; i < n; i++) {                                                     \
        const C A = (C)a[i];                                                                \
        y[i] = (Y)(expr);                                                                   \
      }                                                                                     \
    } else if (b_step) {                                                                    \
      const C A = (C)a[0];                                                                  \
      for (int64_t i = 0; i < n; i++) {                                                     \
        const C B = (C)b[i];                                                                \
        y[i] = (Y)(expr);                                                                   \
      }                                                                                     \
    } else {                                                                                \
      const C A = (C)a[0], B = (C)b[0];                                                     \
      const Y value = (Y)(expr);                                                            \
      for (int64_t i = 0; i < n; i++) y[i] = value;                                         \
    }                                                                                       \
  }

/* The span families an op is made of: <op>_f32 ... <op>_i64 (or _bool). */
#define FLOAT_SPANS(op, expr)                                                               \
  DEFINE_SPAN_WITH(CG_VECTOR_CLONES, op##_f32, float, float, float, expr)                   \
  DEFINE_SPAN_WITH(CG_VECTOR_CLONES, op##_f64, double, double, double, expr)
#define WRAPPING_INT_SPANS(op, expr)                                                        \
  DEFINE_SPAN(op##_i32, int32_t, uint32_t, int32_t, expr)                                   \
  DEFINE_SPAN(op##_i64, int64_t, uint64_t, int64_t, expr)
#define SIGNED_INT_SPANS(op, expr)                                                          \
  DEFINE_SPAN(op##_i32, int32_t, int32_t, int32_t, expr)                                    \
  DEFINE_SPAN(op##_i64, int64_t, int64_t, int64_t, expr)
#define COMPARE_SPANS(op, expr)                                                             \
  DEFINE_SPAN(op##_f32, float, float, uint8_t, expr)                                        \
  DEFINE_SPAN(op##_f64, double, double, uint8_t, expr)                                      \
  DEFINE_SPAN(op##_i32, int32_t, int32_t, uint8_t, expr)                                    \
  DEFINE_SPAN(op##_i64, int64_t, int64_t, uint8_t, expr)
/* Bool elements are read as C bool, so any nonzero byte counts as true. */
#define BOOL_SPAN(op, expr) DEFINE_SPAN(op##_bool, uint8_t, bool, uint8_t, expr)

/* The kernel tables built from those families. */
#define NUMERIC_KERNELS(op) \
  {[CG_F32] = op##_f32, [CG_F64] = op##_f64, [CG_I32] = op##_i32, [CG_I64] = op##_i64}
#define NUMERIC_AND_BOOL_KERNELS(op)                                                        \
  {[CG_F32] = op##_f32, [CG_F64] = op##_f64, [CG_I32] = op##_i32, [CG_I64] = op##_i64,     \
   [CG_BOOL] = op##_bool}
#define BOOL_KERNELS(op) {[CG_BOOL] = op##_bool}

/* "f32, f64, i32 or i64": the dtypes kind takes, for error messages. */
static const char *supported_dtypes(const binary_kind *kind, char *buf, size_t size)
{
  int n = 0, total = 0;
  for (int d = 0; d < CG_NUM_DTYPES; d++) total += kind->span[d] != NULL;
  buf[0] = '\0';
  for (int d = 0; d < CG_NUM_DTYPES; d++) {
    if (!kind->span[d]) continue;
    const char *sep = n == 0 ? "" : n == total - 1 ? " or " : ", ";
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", sep, cg_dtype_name((cg_dtype)d));
    n++;
  }
  return buf;
}

/* Shape rule of every two-input op: a dtype the op takes, equal dtypes, shapes that
 * broadcast; the output has the broadcast shape (and bool or the inputs' dtype). */
static cg_status binary_infer(cg_node *n)
{
  const binary_kind *kind = cg_node_op_user(n);
  const cg_tensor *a = cg__in(n, 0), *b = cg__in(n, 1);
  if (a->dtype == b->dtype && kind->span[a->dtype] &&
      cg__shape_equal(a->ndim, a->shape, b->ndim, b->shape)) { /* the common case: one shape */
    cg__declare_output_like(n, 0, kind->bool_output ? CG_BOOL : a->dtype, a);
    return CG_OK;
  }
  cg_status st = cg__require_same_dtype(n, 0, 1);
  if (st != CG_OK) return st;
  if (!kind->span[a->dtype]) {
    char dtypes[64];
    return cg_set_error(CG_EDTYPE, "%s: inputs must be %s, got %s %s", cg_node_op_type(n),
                        supported_dtypes(kind, dtypes, sizeof dtypes), cg_dtype_name(a->dtype),
                        cg__in_shape(n, 0));
  }
  int ndim;
  int64_t shape[CG_MAX_DIMS];
  st = cg__broadcast_shapes(cg_node_op_type(n), a->ndim, a->shape, b->ndim, b->shape, &ndim,
                            shape);
  if (st != CG_OK) return st;
  return cg_node_set_output(n, 0, kind->bool_output ? CG_BOOL : a->dtype, ndim, shape);
}

/* What one part of a two-input kernel needs: same shapes and a one-element side are one
 * span cut into ranges; any other broadcast walks the output row by row (a row is its last
 * axis), each operand either moving along the row or repeating one element of it. */
typedef struct {
  span_fn span;
  const cg_tensor *a, *b;
  cg_tensor *y;
  int64_t a_step, b_step; /* whole-span steps: 1, or 0 for a one-element side       */
} binary_job;

static void binary_span_range(void *ctx, int64_t begin, int64_t end)
{
  const binary_job *j = ctx;
  size_t in_width = cg_dtype_size(j->a->dtype), out_width = cg_dtype_size(j->y->dtype);
  j->span((const char *)j->a->data + (size_t)(begin * j->a_step) * in_width, j->a_step,
          (const char *)j->b->data + (size_t)(begin * j->b_step) * in_width, j->b_step,
          (char *)j->y->data + (size_t)begin * out_width, end - begin);
}

/* Rows [begin, end) of the broadcast walk. */
static void binary_rows_range(void *ctx, int64_t begin, int64_t end)
{
  const binary_job *j = ctx;
  const cg_tensor *a = j->a, *b = j->b;
  cg_tensor *y = j->y;
  size_t in_width = cg_dtype_size(a->dtype), out_width = cg_dtype_size(y->dtype);
  int last = y->ndim - 1;
  int64_t row_len = y->shape[last];
  cg_bcast_iter it;
  cg__bcast_iter_init(&it, y->ndim, y->shape, 2, (cg_tensor *const[]){(cg_tensor *)a, (cg_tensor *)b});
  int64_t a_step = it.strides[0][last], b_step = it.strides[1][last];
  it.ndim = last; /* the iterator steps over rows; the span covers the last axis */
  for (int64_t row = 0; row < begin; row++) cg__bcast_iter_next(&it); /* O(rows) once per part */
  const char *as = a->data, *bs = b->data;
  char *ys = y->data;
  for (int64_t row = begin; row < end; row++) {
    j->span(as + it.off[0] * in_width, a_step, bs + it.off[1] * in_width, b_step,
            ys + row * row_len * out_width, row_len);
    cg__bcast_iter_next(&it);
  }
}

/* Kernel of every two-input op; large outputs are split over the threads. */
/* y = a op b for one-element float tensors: the spans' expressions (FLOAT_SPANS below). */
#define ONE_ELEMENT(T)                                                                      \
  do {                                                                                      \
    const T A = *(const T *)a->data, B = *(const T *)b->data;                               \
    T *Y = y->data;                                                                         \
    switch (op) {                                                                           \
    case ARITH_ADD: *Y = A + B; break;                                                      \
    case ARITH_SUB: *Y = A - B; break;                                                      \
    case ARITH_MUL: *Y = A * B; break;                                                      \
    case ARITH_DIV: *Y = A / B; break;                                                      \
    default: break;                                                                         \
    }                                                                                       \
  } while (0)

static inline void one_element(arithmetic op, const cg_tensor *a, const cg_tensor *b, cg_tensor *y)
{
  if (a->dtype == CG_F32) ONE_ELEMENT(float);
  else ONE_ELEMENT(double);
}

/* Any other case: broadcasting, or outputs large enough to split over the threads. */
__attribute__((noinline)) static cg_status binary_run_general(const binary_kind *kind, cg_tensor *a,
                                                              cg_tensor *b, cg_tensor *y)
{
  binary_job j = {kind->span[a->dtype], a, b, y, 1, 1};
  if (cg__shape_equal(a->ndim, a->shape, b->ndim, b->shape) || a->size == 1 || b->size == 1) {
    j.a_step = a->size == 1 && y->size > 1 ? 0 : 1;
    j.b_step = b->size == 1 && y->size > 1 ? 0 : 1;
    if (y->size <= CG_PARALLEL_MIN_ELEMENTS) /* one range, as cg__parallel_for would give */
      j.span(a->data, j.a_step, b->data, j.b_step, y->data, y->size);
    else
      cg__parallel_for(y->size, CG_PARALLEL_MIN_ELEMENTS, binary_span_range, &j);
  } else {
    int64_t row_len = y->shape[y->ndim - 1], rows = y->size / row_len;
    cg__parallel_for(rows, CG_PARALLEL_MIN_ELEMENTS / row_len + 1, binary_rows_range, &j);
  }
  return CG_OK;
}

static cg_status binary_run(cg_node *n)
{
  const binary_kind *kind = n->def->user;
  cg_tensor *a = cg__in(n, 0), *b = cg__in(n, 1), *y = cg__out(n, 0);
  if (y->size == 0) return CG_OK;
  if (kind->check_values) {
    cg_status st = kind->check_values(n);
    if (st != CG_OK) return st;
  }
  if (y->size == 1 && kind->one && (a->dtype == CG_F32 || a->dtype == CG_F64)) {
    one_element(kind->one, a, b, y);
    return CG_OK;
  }
  /* the common case first: both inputs have the output's size, so (leading 1s aside) its
     shape and layout: one span of steps 1, on this thread */
  if (a->size == y->size && b->size == y->size && y->size <= CG_PARALLEL_MIN_ELEMENTS) {
    kind->span[a->dtype](a->data, 1, b->data, 1, y->data, y->size);
    return CG_OK;
  }
  return binary_run_general(kind, a, b, y);
}

/* Integer ops carry no gradient: their gradient functions leave dx NULL. */
static bool is_float_op(const cg_node *op)
{
  return cg_dtype_is_float(cg_tensor_dtype(cg_node_output(op, 0)));
}

/* Whether the reverse walk wants input i's gradient: one nobody differentiates is not built
 * (in a double backward, say, the gradient for the vector of <g, v>). */
static bool wanted(const cg_node *op, int i)
{
  return cg_node_needs_input_grad(op, i) != 0;
}

/* A two-input op whose kernels are kind; its wrapper is cg_apply2(&def, a, b, NULL). */
#define BINARY_DEF(name, kind, flags) {name, 2, binary_infer, binary_run, flags, (void *)&kind}

/* ======================================================================================
 * Arithmetic
 * ==================================================================================== */

/* --- Add: y = a + b;  da = dy, db = dy -------------------------------------------------- */
FLOAT_SPANS(add, A + B)
WRAPPING_INT_SPANS(add, A + B)
static const binary_kind add_kind = {.span = NUMERIC_KERNELS(add), .one = ARITH_ADD};
static cg_status add_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  if (!is_float_op(op)) return CG_OK;
  dx[0] = dy[0];
  dx[1] = dy[0];
  return CG_OK;
}
static const cg_op_def add_def = BINARY_DEF("Add", add_kind, 0);
cg_tensor *cg_add(cg_tensor *a, cg_tensor *b) { return cg_apply2(&add_def, a, b, NULL); }

/* --- Sub: y = a - b;  da = dy, db = -dy ------------------------------------------------- */
FLOAT_SPANS(sub, A - B)
WRAPPING_INT_SPANS(sub, A - B)
static const binary_kind sub_kind = {.span = NUMERIC_KERNELS(sub), .one = ARITH_SUB};
static cg_status sub_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  if (!is_float_op(op)) return CG_OK;
  dx[0] = dy[0];
  if (wanted(op, 1) && !(dx[1] = cg_neg(dy[0]))) return cg_status_of(NULL);
  return CG_OK;
}
static const cg_op_def sub_def = BINARY_DEF("Sub", sub_kind, 0);
cg_tensor *cg_sub(cg_tensor *a, cg_tensor *b) { return cg_apply2(&sub_def, a, b, NULL); }

/* --- Mul: y = a * b;  da = dy * b, db = dy * a ------------------------------------------ */
FLOAT_SPANS(mul, A * B)
WRAPPING_INT_SPANS(mul, A * B)
static const binary_kind mul_kind = {.span = NUMERIC_KERNELS(mul), .one = ARITH_MUL};
static cg_status mul_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  if (!is_float_op(op)) return CG_OK;
  if (wanted(op, 0) && !(dx[0] = cg_mul(dy[0], cg_node_input(op, 1)))) return cg_status_of(NULL);
  if (wanted(op, 1) && !(dx[1] = cg_mul(dy[0], cg_node_input(op, 0)))) return cg_status_of(NULL);
  return CG_OK;
}
static const cg_op_def mul_def = BINARY_DEF("Mul", mul_kind, 0);
cg_tensor *cg_mul(cg_tensor *a, cg_tensor *b) { return cg_apply2(&mul_def, a, b, NULL); }

/* --- Div: y = a / b, integers truncate toward 0;  da = dy / b, db = -dy * a / b^2 ------- */
/* INT64_MIN / -1 overflows (and traps on x86): it wraps to INT64_MIN instead. i32 divides
 * in int64, where it cannot overflow, and wraps when stored. */
static int64_t div_wrap_i64(int64_t a, int64_t b)
{
  return b == -1 ? (int64_t)(0u - (uint64_t)a) : a / b;
}
FLOAT_SPANS(div, A / B)
DEFINE_SPAN(div_i32, int32_t, int64_t, int32_t, A / B)
DEFINE_SPAN(div_i64, int64_t, int64_t, int64_t, div_wrap_i64(A, B))
/* A zero integer divisor is an error, not a crash (float division gives inf or nan). */
static cg_status div_check_values(const cg_node *n)
{
  const cg_tensor *b = cg_node_input(n, 1);
  if (cg_dtype_is_float(b->dtype)) return CG_OK;
  for (int64_t i = 0; i < b->size; i++)
    if (cg__load(b->dtype, b->data, i) == 0)
      return cg_set_error(CG_EINVAL, "Div: integer division by zero: divisor %s %s has a 0 at %lld",
                          cg_dtype_name(b->dtype), cg__in_shape(n, 1), (long long)i);
  return CG_OK;
}
static const binary_kind div_kind =
    {.span = NUMERIC_KERNELS(div), .check_values = div_check_values, .one = ARITH_DIV};
static cg_status div_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  if (!is_float_op(op)) return CG_OK;
  cg_tensor *a = cg_node_input(op, 0), *b = cg_node_input(op, 1);
  cg_tensor *dy_over_b = cg_div(dy[0], b);
  if (!dy_over_b) return cg_status_of(NULL);
  if (wanted(op, 0)) dx[0] = dy_over_b;
  /* -(dy / b) * (a / b) */
  if (wanted(op, 1) && !(dx[1] = cg_neg(cg_mul(dy_over_b, cg_div(a, b))))) return cg_status_of(NULL);
  return CG_OK;
}
static const cg_op_def div_def = BINARY_DEF("Div", div_kind, 0);
cg_tensor *cg_div(cg_tensor *a, cg_tensor *b) { return cg_apply2(&div_def, a, b, NULL); }

/* --- Pow: y = a ^ b (integers: b >= 0);  da = dy * b * a^(b-1), db = dy * y * ln a ------ */
/* base^exp by squaring in unsigned arithmetic: wraps around on overflow like Mul. */
static uint64_t int_pow_wrap(int64_t base, int64_t exp)
{
  uint64_t result = 1, factor = (uint64_t)base;
  for (; exp > 0; exp >>= 1) {
    if (exp & 1) result *= factor;
    factor *= factor;
  }
  return result;
}
FLOAT_SPANS(pow, pow(A, B))
DEFINE_SPAN(pow_i32, int32_t, int64_t, int32_t, (uint32_t)int_pow_wrap(A, B))
DEFINE_SPAN(pow_i64, int64_t, int64_t, int64_t, int_pow_wrap(A, B))
static cg_status pow_check_values(const cg_node *n)
{
  const cg_tensor *b = cg_node_input(n, 1);
  if (cg_dtype_is_float(b->dtype)) return CG_OK;
  for (int64_t i = 0; i < b->size; i++) {
    double e = cg__load(b->dtype, b->data, i);
    if (e < 0)
      return cg_set_error(CG_EINVAL,
                          "Pow: negative integer exponent %.0f in %s %s (integers can only be "
                          "raised to exponents >= 0; cast to a float dtype)",
                          e, cg_dtype_name(b->dtype), cg__in_shape(n, 1));
  }
  return CG_OK;
}
static const binary_kind pow_kind =
    {.span = NUMERIC_KERNELS(pow), .check_values = pow_check_values};
/* ln a is taken where a > 0 only (0 elsewhere, as TensorFlow does), and of a safe 1 where
 * a <= 0 so that its own gradient stays finite too. */
static cg_status pow_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  if (!is_float_op(op)) return CG_OK;
  cg_tensor *a = cg_node_input(op, 0), *b = cg_node_input(op, 1), *y = cg_node_output(op, 0);
  if (wanted(op, 0) &&
      !(dx[0] = cg_mul(dy[0], cg_mul(b, cg_pow(a, cg_sub(b, cg_scalar_like(b, 1)))))))
    return cg_status_of(NULL);
  if (wanted(op, 1)) {
    cg_tensor *a_positive = cg_greater(a, cg_scalar_like(a, 0));
    cg_tensor *log_a = cg_log(cg_where(a_positive, a, cg_scalar_like(a, 1)));
    if (!(dx[1] = cg_mul(dy[0], cg_mul(y, log_a)))) return cg_status_of(NULL);
  }
  return CG_OK;
}
static const cg_op_def pow_def = BINARY_DEF("Pow", pow_kind, 0);
cg_tensor *cg_pow(cg_tensor *a, cg_tensor *b) { return cg_apply2(&pow_def, a, b, NULL); }

/* --- Maximum, Minimum: y = max(a, b), min(a, b);  dy goes to the chosen side ------------ */
/* Ties choose a, like TensorFlow's GreaterEqual mask; a NaN on either side wins. */
FLOAT_SPANS(maximum, (A >= B || isnan(A)) ? A : B)
SIGNED_INT_SPANS(maximum, A >= B ? A : B)
FLOAT_SPANS(minimum, (A <= B || isnan(A)) ? A : B)
SIGNED_INT_SPANS(minimum, A <= B ? A : B)
static const binary_kind maximum_kind = {.span = NUMERIC_KERNELS(maximum)};
static const binary_kind minimum_kind = {.span = NUMERIC_KERNELS(minimum)};
/* dy goes to input `first` where `chosen` holds and to input first + 1 elsewhere:
 * where(chosen, dy, 0) and where(chosen, 0, dy). */
static cg_status route(const cg_node *op, cg_tensor *chosen, cg_tensor *dy, cg_tensor **dx,
                       int first)
{
  cg_tensor *zero = cg_scalar_like(dy, 0);
  if (wanted(op, first) && !(dx[first] = cg_where(chosen, dy, zero))) return cg_status_of(NULL);
  if (wanted(op, first + 1) && !(dx[first + 1] = cg_where(chosen, zero, dy)))
    return cg_status_of(NULL);
  return CG_OK;
}
static cg_status maximum_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  if (!is_float_op(op)) return CG_OK;
  return route(op, cg_greater_equal(cg_node_input(op, 0), cg_node_input(op, 1)), dy[0], dx, 0);
}
static cg_status minimum_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  if (!is_float_op(op)) return CG_OK;
  return route(op, cg_less_equal(cg_node_input(op, 0), cg_node_input(op, 1)), dy[0], dx, 0);
}
static const cg_op_def maximum_def = BINARY_DEF("Maximum", maximum_kind, 0);
static const cg_op_def minimum_def = BINARY_DEF("Minimum", minimum_kind, 0);
cg_tensor *cg_maximum(cg_tensor *a, cg_tensor *b) { return cg_apply2(&maximum_def, a, b, NULL); }
cg_tensor *cg_minimum(cg_tensor *a, cg_tensor *b) { return cg_apply2(&minimum_def, a, b, NULL); }

/* --- SquaredDifference: y = (a - b)^2;  da = 2 (a - b) dy, db = -da --------------------- */
FLOAT_SPANS(squared_difference, (A - B) * (A - B))
WRAPPING_INT_SPANS(squared_difference, (A - B) * (A - B))
static const binary_kind squared_difference_kind = {.span = NUMERIC_KERNELS(squared_difference)};
static cg_status squared_difference_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                         void *user)
{
  if (!is_float_op(op)) return CG_OK;
  cg_tensor *diff = cg_sub(cg_node_input(op, 0), cg_node_input(op, 1));
  cg_tensor *da = cg_mul(cg_scalar_like(dy[0], 2), cg_mul(dy[0], diff));
  if (!da) return cg_status_of(NULL);
  if (wanted(op, 0)) dx[0] = da;
  if (wanted(op, 1) && !(dx[1] = cg_neg(da))) return cg_status_of(NULL);
  return CG_OK;
}
static const cg_op_def squared_difference_def =
    BINARY_DEF("SquaredDifference", squared_difference_kind, 0);
cg_tensor *cg_squared_difference(cg_tensor *a, cg_tensor *b)
{
  return cg_apply2(&squared_difference_def, a, b, NULL);
}

/* ======================================================================================
 * Comparisons: bool output, no gradient. Equal and NotEqual also take bool.
 * ==================================================================================== */

COMPARE_SPANS(equal, A == B)
BOOL_SPAN(equal, A == B)
COMPARE_SPANS(not_equal, A != B)
BOOL_SPAN(not_equal, A != B)
COMPARE_SPANS(less, A < B)
COMPARE_SPANS(less_equal, A <= B)
COMPARE_SPANS(greater, A > B)
COMPARE_SPANS(greater_equal, A >= B)
static const binary_kind equal_kind =
    {.span = NUMERIC_AND_BOOL_KERNELS(equal), .bool_output = true};
static const binary_kind not_equal_kind =
    {.span = NUMERIC_AND_BOOL_KERNELS(not_equal), .bool_output = true};
static const binary_kind less_kind = {.span = NUMERIC_KERNELS(less), .bool_output = true};
static const binary_kind less_equal_kind =
    {.span = NUMERIC_KERNELS(less_equal), .bool_output = true};
static const binary_kind greater_kind = {.span = NUMERIC_KERNELS(greater), .bool_output = true};
static const binary_kind greater_equal_kind =
    {.span = NUMERIC_KERNELS(greater_equal), .bool_output = true};
static const cg_op_def equal_def = BINARY_DEF("Equal", equal_kind, CG_OP_NOT_DIFFERENTIABLE);
static const cg_op_def not_equal_def =
    BINARY_DEF("NotEqual", not_equal_kind, CG_OP_NOT_DIFFERENTIABLE);
static const cg_op_def less_def = BINARY_DEF("Less", less_kind, CG_OP_NOT_DIFFERENTIABLE);
static const cg_op_def less_equal_def =
    BINARY_DEF("LessEqual", less_equal_kind, CG_OP_NOT_DIFFERENTIABLE);
static const cg_op_def greater_def = BINARY_DEF("Greater", greater_kind, CG_OP_NOT_DIFFERENTIABLE);
static const cg_op_def greater_equal_def =
    BINARY_DEF("GreaterEqual", greater_equal_kind, CG_OP_NOT_DIFFERENTIABLE);
cg_tensor *cg_equal(cg_tensor *a, cg_tensor *b) { return cg_apply2(&equal_def, a, b, NULL); }
cg_tensor *cg_not_equal(cg_tensor *a, cg_tensor *b)
{
  return cg_apply2(&not_equal_def, a, b, NULL);
}
cg_tensor *cg_less(cg_tensor *a, cg_tensor *b) { return cg_apply2(&less_def, a, b, NULL); }
cg_tensor *cg_less_equal(cg_tensor *a, cg_tensor *b)
{
  return cg_apply2(&less_equal_def, a, b, NULL);
}
cg_tensor *cg_greater(cg_tensor *a, cg_tensor *b) { return cg_apply2(&greater_def, a, b, NULL); }
cg_tensor *cg_greater_equal(cg_tensor *a, cg_tensor *b)
{
  return cg_apply2(&greater_equal_def, a, b, NULL);
}

/* ======================================================================================
 * Logic: bool only, no gradient
 * ==================================================================================== */

BOOL_SPAN(logical_and, A && B)
BOOL_SPAN(logical_or, A || B)
static const binary_kind logical_and_kind =
    {.span = BOOL_KERNELS(logical_and), .bool_output = true};
static const binary_kind logical_or_kind = {.span = BOOL_KERNELS(logical_or), .bool_output = true};
static const cg_op_def logical_and_def =
    BINARY_DEF("LogicalAnd", logical_and_kind, CG_OP_NOT_DIFFERENTIABLE);
static const cg_op_def logical_or_def =
    BINARY_DEF("LogicalOr", logical_or_kind, CG_OP_NOT_DIFFERENTIABLE);
cg_tensor *cg_logical_and(cg_tensor *a, cg_tensor *b)
{
  return cg_apply2(&logical_and_def, a, b, NULL);
}
cg_tensor *cg_logical_or(cg_tensor *a, cg_tensor *b)
{
  return cg_apply2(&logical_or_def, a, b, NULL);
}

/* --- LogicalNot: y = !x (bool) ---------------------------------------------------------- */
static cg_status logical_not_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  if (x->dtype != CG_BOOL)
    return cg_set_error(CG_EDTYPE, "LogicalNot: input must be bool, got %s %s",
                        cg_dtype_name(x->dtype), cg__in_shape(n, 0));
  return cg_infer_same_as_input(n, 0);
}
static cg_status logical_not_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  const uint8_t *xs = CG_BOOLP(x);
  uint8_t *ys = CG_BOOLP(cg_node_output(n, 0));
  for (int64_t i = 0; i < x->size; i++) ys[i] = !xs[i];
  return CG_OK;
}
static const cg_op_def logical_not_def = {"LogicalNot", 1, logical_not_infer, logical_not_run,
                                          CG_OP_NOT_DIFFERENTIABLE, NULL};
cg_tensor *cg_logical_not(cg_tensor *x) { return cg_apply1(&logical_not_def, x, NULL); }

/* ======================================================================================
 * Where: y = cond ? a : b, all three broadcast;  da = where(cond, dy, 0),
 * db = where(cond, 0, dy), cond gets none
 * ==================================================================================== */

static cg_status where_infer(cg_node *n)
{
  const cg_tensor *cond = cg_node_input(n, 0), *a = cg_node_input(n, 1), *b = cg_node_input(n, 2);
  if (cond->dtype != CG_BOOL)
    return cg_set_error(CG_EDTYPE, "Where: condition must be bool, got %s %s",
                        cg_dtype_name(cond->dtype), cg__in_shape(n, 0));
  cg_status st = cg__require_same_dtype(n, 1, 2);
  if (st != CG_OK) return st;
  int nd_ca, nd;
  int64_t shape_ca[CG_MAX_DIMS], shape[CG_MAX_DIMS];
  if (cg__broadcast_shapes("Where", cond->ndim, cond->shape, a->ndim, a->shape, &nd_ca,
                           shape_ca) != CG_OK ||
      cg__broadcast_shapes("Where", nd_ca, shape_ca, b->ndim, b->shape, &nd, shape) != CG_OK)
    return cg_set_error(CG_ESHAPE, "Where: shapes do not broadcast: cond %s, a %s, b %s",
                        cg__in_shape(n, 0), cg__in_shape(n, 1), cg__in_shape(n, 2));
  return cg_node_set_output(n, 0, a->dtype, nd, shape);
}

/* Where only moves elements, so its kernels differ by element width, not by dtype. Like
 * binary_run it walks rows of the last axis; steps are 0 (broadcast) or 1. */
#define DEFINE_WHERE_ROWS(name, T)                                                          \
  static void name(cg_bcast_iter *it, int64_t rows, int64_t len, const int64_t *step,       \
                   const uint8_t *cond, const T *a, const T *b, T *restrict y)              \
  {                                                                                         \
    for (int64_t r = 0; r < rows; r++, y += len) {                                          \
      const uint8_t *c = cond + it->off[0];                                                 \
      const T *ar = a + it->off[1], *br = b + it->off[2];                                   \
      for (int64_t i = 0; i < len; i++)                                                     \
        y[i] = c[i * step[0]] ? ar[i * step[1]] : br[i * step[2]];                          \
      cg__bcast_iter_next(it);                                                              \
    }                                                                                       \
  }
DEFINE_WHERE_ROWS(where_rows_8bit, uint8_t)
DEFINE_WHERE_ROWS(where_rows_32bit, uint32_t)
DEFINE_WHERE_ROWS(where_rows_64bit, uint64_t)

static cg_status where_run(cg_node *n)
{
  cg_tensor *const in[3] = {cg_node_input(n, 0), cg_node_input(n, 1), cg_node_input(n, 2)};
  cg_tensor *y = cg_node_output(n, 0);
  if (y->size == 0) return CG_OK;
  cg_bcast_iter it;
  cg__bcast_iter_init(&it, y->ndim, y->shape, 3, in);
  int64_t len = 1, step[3] = {0, 0, 0}; /* a rank-0 output is one row of one element */
  if (y->ndim > 0) {
    int last = y->ndim - 1;
    len = y->shape[last];
    for (int k = 0; k < 3; k++) step[k] = it.strides[k][last];
    it.ndim = last;
  }
  int64_t rows = y->size / len;
  const uint8_t *cond = in[0]->data;
  switch (cg_dtype_size(y->dtype)) {
  case 1: where_rows_8bit(&it, rows, len, step, cond, in[1]->data, in[2]->data, y->data); break;
  case 4: where_rows_32bit(&it, rows, len, step, cond, in[1]->data, in[2]->data, y->data); break;
  case 8: where_rows_64bit(&it, rows, len, step, cond, in[1]->data, in[2]->data, y->data); break;
  default:
    return cg_set_error(CG_EDTYPE, "Where: no kernel for dtype %s", cg_dtype_name(y->dtype));
  }
  return CG_OK;
}

static cg_status where_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  if (!is_float_op(op)) return CG_OK;
  return route(op, cg_node_input(op, 0), dy[0], dx, 1);
}
static const cg_op_def where_def = {"Where", 3, where_infer, where_run, 0, NULL};
cg_tensor *cg_where(cg_tensor *cond, cg_tensor *a, cg_tensor *b)
{
  return cg_apply(&where_def, (cg_tensor *const[]){cond, a, b}, 3, NULL);
}

/* ======================================================================================
 * Registration
 * ==================================================================================== */

cg_status cg__register_binary_ops(void)
{
  static const struct {
    const cg_op_def *def;
    cg_grad_fn grad;
  } ops[] = {
      {&add_def, add_grad},
      {&sub_def, sub_grad},
      {&mul_def, mul_grad},
      {&div_def, div_grad},
      {&pow_def, pow_grad},
      {&maximum_def, maximum_grad},
      {&minimum_def, minimum_grad},
      {&squared_difference_def, squared_difference_grad},
      {&equal_def, NULL},
      {&not_equal_def, NULL},
      {&less_def, NULL},
      {&less_equal_def, NULL},
      {&greater_def, NULL},
      {&greater_equal_def, NULL},
      {&logical_and_def, NULL},
      {&logical_or_def, NULL},
      {&logical_not_def, NULL},
      {&where_def, where_grad},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    cg_status st = cg__register_builtin(ops[i].def, ops[i].grad);
    if (st != CG_OK) return st;
  }
  return CG_OK;
}

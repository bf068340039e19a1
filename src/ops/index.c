/* index.c - indexing and the basic ops every gradient leans on: Cast, Identity,
 * StopGradient, ZerosLike, OnesLike, AddN, Gather with its gradient UnsortedSegmentSum,
 * and OneHot. Index values are checked inside the kernels, where the data decides. */
#include "kernel.h"
#include "parallel.h"
#include <inttypes.h>

/* ======================================================================================
 * Shared helpers: element conversion, fills, typed accumulation, index access
 * ==================================================================================== */

/* Float to integer as Cast does it: truncate toward zero, saturate at the type's range,
 * NaN gives 0 (a plain C conversion would be undefined for those values). */
static inline int64_t f64_to_i64(double v)
{
  if (v != v) return 0;
  if (v >= 9223372036854775808.0) return INT64_MAX;
  if (v < -9223372036854775808.0) return INT64_MIN;
  return (int64_t)v;
}

static inline int32_t f64_to_i32(double v)
{
  if (v != v) return 0;
  if (v >= 2147483648.0) return INT32_MAX;
  if (v < -2147483648.0) return INT32_MIN;
  return (int32_t)v;
}

/* y[begin, begin+count) = v, converted to y's dtype the way Cast converts an f64. */
static void fill_range(cg_tensor *y, int64_t begin, int64_t count, double v)
{
  switch (y->dtype) {
  case CG_F32: {
    float *p = CG_F32P(y) + begin, c = (float)v;
    for (int64_t i = 0; i < count; i++) p[i] = c;
    break;
  }
  case CG_F64: {
    double *p = CG_F64P(y) + begin;
    for (int64_t i = 0; i < count; i++) p[i] = v;
    break;
  }
  case CG_I32: {
    int32_t *p = CG_I32P(y) + begin, c = f64_to_i32(v);
    for (int64_t i = 0; i < count; i++) p[i] = c;
    break;
  }
  case CG_I64: {
    int64_t *p = CG_I64P(y) + begin, c = f64_to_i64(v);
    for (int64_t i = 0; i < count; i++) p[i] = c;
    break;
  }
  case CG_BOOL: memset(CG_BOOLP(y) + begin, v != 0, (size_t)count); break;
  default: break;
  }
}

/* y[i] += x[i] for n elements of numeric dtype d. Integers wrap (unsigned arithmetic)
 * instead of overflowing, which C leaves undefined for signed types. */
static void add_into(cg_dtype d, void *restrict y, const void *restrict x, int64_t n)
{
  switch (d) {
  case CG_F32: {
    float *a = y;
    const float *b = x;
    for (int64_t i = 0; i < n; i++) a[i] += b[i];
    break;
  }
  case CG_F64: {
    double *a = y;
    const double *b = x;
    for (int64_t i = 0; i < n; i++) a[i] += b[i];
    break;
  }
  case CG_I32: {
    uint32_t *a = y;
    const uint32_t *b = x;
    for (int64_t i = 0; i < n; i++) a[i] += b[i];
    break;
  }
  case CG_I64: {
    uint64_t *a = y;
    const uint64_t *b = x;
    for (int64_t i = 0; i < n; i++) a[i] += b[i];
    break;
  }
  default: break; /* bool is rejected by every caller's shape rule */
  }
}

static cg_status require_numeric(const cg_node *n, int i, const char *what)
{
  const cg_tensor *t = cg_node_input(n, i);
  if (t->dtype != CG_BOOL) return CG_OK;
  return cg_set_error(CG_EDTYPE, "%s: %s must be numeric (f32, f64, i32, i64), got bool %s",
                      cg_node_op_type(n), what, cg__in_shape(n, i));
}

static cg_status require_index_dtype(const cg_node *n, int i, const char *what)
{
  const cg_tensor *t = cg_node_input(n, i);
  if (t->dtype == CG_I32 || t->dtype == CG_I64) return CG_OK;
  return cg_set_error(CG_EDTYPE, "%s: %s must be i32 or i64, got %s %s", cg_node_op_type(n),
                      what, cg_dtype_name(t->dtype), cg__in_shape(n, i));
}

static cg_status require_dtype_attr(const cg_node *n, int64_t d)
{
  if (d >= 0 && d < CG_NUM_DTYPES) return CG_OK;
  return cg_set_error(CG_EINVAL, "%s: attribute dtype is %" PRId64 ", not a dtype (0..%d)",
                      cg_node_op_type(n), d, CG_NUM_DTYPES - 1);
}

static inline int64_t index_at(const cg_tensor *ix, int64_t i)
{
  return ix->dtype == CG_I32 ? (int64_t)CG_I32P(ix)[i] : CG_I64P(ix)[i];
}

/* CG_ERANGE naming the first index of ix outside [0, limit), negative ones included. */
static cg_status check_indices(const cg_node *n, const cg_tensor *ix, int64_t limit,
                               const char *what)
{
  for (int64_t i = 0; i < ix->size; i++) {
    int64_t v = index_at(ix, i);
    if (v < 0 || v >= limit)
      return cg_set_error(CG_ERANGE, "%s: %s %" PRId64 " is out of range [0, %" PRId64 ")",
                          cg_node_op_type(n), what, v, limit);
  }
  return CG_OK;
}

static int64_t dims_product(const int64_t *shape, int from, int to)
{
  int64_t p = 1;
  for (int d = from; d < to; d++) p *= shape[d];
  return p;
}

/* The output views input 0's buffer: Identity, StopGradient and same-dtype Cast run nothing. */
static cg_status alias_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  return cg_node_set_output_alias(n, 0, 0, x->ndim, x->shape);
}

static cg_status alias_run(cg_node *n) { return CG_OK; }

/* ======================================================================================
 * Cast: y = x converted to attr dtype.  dx = cast(dy, x.dtype) when both are float.
 * To bool: x != 0. Float to integer: truncate, saturate, NaN -> 0. Integer narrowing
 * keeps the low bits, as C and TensorFlow do.
 * ==================================================================================== */

static cg_status cast_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int64_t d = cg_node_attr_int(n, "dtype", -1);
  cg_status st = require_dtype_attr(n, d);
  if (st != CG_OK) return st;
  if (d == x->dtype) return alias_infer(n);
  return cg_node_set_output(n, 0, (cg_dtype)d, x->ndim, x->shape);
}

static void cast_to_f32(const cg_tensor *x, float *y, int64_t n)
{
  switch (x->dtype) {
  case CG_F32: memcpy(y, x->data, (size_t)n * sizeof *y); break;
  case CG_F64: for (int64_t i = 0; i < n; i++) y[i] = (float)CG_F64P(x)[i]; break;
  case CG_I32: for (int64_t i = 0; i < n; i++) y[i] = (float)CG_I32P(x)[i]; break;
  case CG_I64: for (int64_t i = 0; i < n; i++) y[i] = (float)CG_I64P(x)[i]; break;
  case CG_BOOL: for (int64_t i = 0; i < n; i++) y[i] = CG_BOOLP(x)[i]; break;
  default: break;
  }
}

static void cast_to_f64(const cg_tensor *x, double *y, int64_t n)
{
  switch (x->dtype) {
  case CG_F32: for (int64_t i = 0; i < n; i++) y[i] = CG_F32P(x)[i]; break;
  case CG_F64: memcpy(y, x->data, (size_t)n * sizeof *y); break;
  case CG_I32: for (int64_t i = 0; i < n; i++) y[i] = CG_I32P(x)[i]; break;
  case CG_I64: for (int64_t i = 0; i < n; i++) y[i] = (double)CG_I64P(x)[i]; break;
  case CG_BOOL: for (int64_t i = 0; i < n; i++) y[i] = CG_BOOLP(x)[i]; break;
  default: break;
  }
}

static void cast_to_i32(const cg_tensor *x, int32_t *y, int64_t n)
{
  switch (x->dtype) {
  case CG_F32: for (int64_t i = 0; i < n; i++) y[i] = f64_to_i32(CG_F32P(x)[i]); break;
  case CG_F64: for (int64_t i = 0; i < n; i++) y[i] = f64_to_i32(CG_F64P(x)[i]); break;
  case CG_I32: memcpy(y, x->data, (size_t)n * sizeof *y); break;
  case CG_I64: for (int64_t i = 0; i < n; i++) y[i] = (int32_t)(uint32_t)CG_I64P(x)[i]; break;
  case CG_BOOL: for (int64_t i = 0; i < n; i++) y[i] = CG_BOOLP(x)[i]; break;
  default: break;
  }
}

static void cast_to_i64(const cg_tensor *x, int64_t *y, int64_t n)
{
  switch (x->dtype) {
  case CG_F32: for (int64_t i = 0; i < n; i++) y[i] = f64_to_i64(CG_F32P(x)[i]); break;
  case CG_F64: for (int64_t i = 0; i < n; i++) y[i] = f64_to_i64(CG_F64P(x)[i]); break;
  case CG_I32: for (int64_t i = 0; i < n; i++) y[i] = CG_I32P(x)[i]; break;
  case CG_I64: memcpy(y, x->data, (size_t)n * sizeof *y); break;
  case CG_BOOL: for (int64_t i = 0; i < n; i++) y[i] = CG_BOOLP(x)[i]; break;
  default: break;
  }
}

static void cast_to_bool(const cg_tensor *x, uint8_t *y, int64_t n)
{
  switch (x->dtype) {
  case CG_F32: for (int64_t i = 0; i < n; i++) y[i] = CG_F32P(x)[i] != 0; break;
  case CG_F64: for (int64_t i = 0; i < n; i++) y[i] = CG_F64P(x)[i] != 0; break;
  case CG_I32: for (int64_t i = 0; i < n; i++) y[i] = CG_I32P(x)[i] != 0; break;
  case CG_I64: for (int64_t i = 0; i < n; i++) y[i] = CG_I64P(x)[i] != 0; break;
  case CG_BOOL: memcpy(y, x->data, (size_t)n); break;
  default: break;
  }
}

static cg_status cast_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  if (y->dtype == x->dtype) return CG_OK; /* y views x */
  switch (y->dtype) {
  case CG_F32: cast_to_f32(x, CG_F32P(y), x->size); break;
  case CG_F64: cast_to_f64(x, CG_F64P(y), x->size); break;
  case CG_I32: cast_to_i32(x, CG_I32P(y), x->size); break;
  case CG_I64: cast_to_i64(x, CG_I64P(y), x->size); break;
  case CG_BOOL: cast_to_bool(x, CG_BOOLP(y), x->size); break;
  default: break;
  }
  return CG_OK;
}

static cg_status cast_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_dtype from = cg_node_input(op, 0)->dtype, to = cg_node_output(op, 0)->dtype;
  if (!cg_dtype_is_float(from) || !cg_dtype_is_float(to)) return CG_OK; /* no gradient */
  dx[0] = cg_cast(dy[0], from);
  return cg_status_of(dx[0]);
}

static const cg_op_def cast_def = {"Cast", 1, cast_infer, cast_run, 0, NULL};

cg_tensor *cg_cast(cg_tensor *x, cg_dtype d)
{
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "dtype", d);
  return cg_apply1(&cast_def, x, &a);
}

/* ======================================================================================
 * Identity: y = x (a view).  dx = dy
 * StopGradient: y = x (a view); no gradient flows: the engine treats it as a cut.
 * ==================================================================================== */

static cg_status identity_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                               void *user)
{
  dx[0] = dy[0];
  return CG_OK;
}

static const cg_op_def identity_def = {"Identity", 1, alias_infer, alias_run, 0, NULL};
static const cg_op_def stop_gradient_def = {"StopGradient", 1, alias_infer, alias_run,
                                            CG_OP_NOT_DIFFERENTIABLE, NULL};

cg_tensor *cg_identity(cg_tensor *x) { return cg_apply1(&identity_def, x, NULL); }
cg_tensor *cg_stop_gradient(cg_tensor *x) { return cg_apply1(&stop_gradient_def, x, NULL); }

/* ======================================================================================
 * ZerosLike: y = 0, OnesLike: y = 1, of x's shape and dtype (any dtype; bool 1 = true).
 * Not differentiable: y does not depend on x's values.
 * ==================================================================================== */

static cg_status like_infer(cg_node *n) { return cg_infer_same_as_input(n, 0); }

static cg_status zeros_like_run(cg_node *n)
{
  cg_tensor *y = cg_node_output(n, 0);
  memset(y->data, 0, (size_t)y->size * cg_dtype_size(y->dtype)); /* 0 and 0.0 are all-zero bits */
  return CG_OK;
}

static cg_status ones_like_run(cg_node *n)
{
  cg_tensor *y = cg_node_output(n, 0);
  fill_range(y, 0, y->size, 1.0);
  return CG_OK;
}

static const cg_op_def zeros_like_def = {"ZerosLike", 1, like_infer, zeros_like_run,
                                         CG_OP_NOT_DIFFERENTIABLE, NULL};
static const cg_op_def ones_like_def = {"OnesLike", 1, like_infer, ones_like_run,
                                        CG_OP_NOT_DIFFERENTIABLE, NULL};

cg_tensor *cg_zeros_like(cg_tensor *x) { return cg_apply1(&zeros_like_def, x, NULL); }
cg_tensor *cg_ones_like(cg_tensor *x) { return cg_apply1(&ones_like_def, x, NULL); }

/* ======================================================================================
 * AddN: y = x0 + x1 + ... + x(n-1), all of one numeric dtype and one shape (no broadcast).
 * dx_i = dy
 * ==================================================================================== */

static cg_status add_n_infer(cg_node *n)
{
  int count = cg_node_num_inputs(n);
  if (count < 1) return cg_set_error(CG_EINVAL, "AddN: needs at least one input, got %d", count);
  const cg_tensor *x0 = cg_node_input(n, 0);
  cg_status st = require_numeric(n, 0, "input 0");
  for (int i = 1; i < count && st == CG_OK; i++) {
    const cg_tensor *xi = cg_node_input(n, i);
    st = cg__require_same_dtype(n, 0, i);
    if (st == CG_OK && !cg__shape_equal(x0->ndim, x0->shape, xi->ndim, xi->shape))
      st = cg_set_error(CG_ESHAPE, "AddN: input %d has shape %s, input 0 has %s (no broadcasting)",
                        i, cg__in_shape(n, i), cg__in_shape(n, 0));
  }
  if (st != CG_OK) return st;
  return cg_node_set_output(n, 0, x0->dtype, x0->ndim, x0->shape);
}

/* One pass over y: each block is summed while it sits in cache, then left alone. Blocks
 * are independent (each element adds its inputs in input order), so they are spread over
 * the threads: a gradient summed from 1000 parts reads 1000 tensors, and two cores read
 * them faster than one. */
enum { ADD_N_BLOCK = 2048 };

CG_VECTOR_CLONES
static void add_into_f32(float *restrict y, const float *restrict x, int64_t n)
{
  for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

static void add_n_blocks(void *ctx, int64_t first, int64_t last)
{
  const cg_node *n = ctx;
  int count = cg_node_num_inputs(n);
  cg_tensor *y = cg_node_output(n, 0);
  size_t elem = cg_dtype_size(y->dtype);
  char *out = y->data;
  if (y->dtype == CG_F32 && y->size <= 8) { /* a few elements: each summed in a register, */
    float *ys = (float *)(void *)out;      /* in input order, as the loop below would      */
    for (int64_t e = 0; e < y->size; e++) {
      float acc = CG_F32P(cg__in(n, 0))[e];
      for (int i = 1; i < count; i++) acc += CG_F32P(cg__in(n, i))[e];
      ys[e] = acc;
    }
    return;
  }
  for (int64_t blk = first; blk < last; blk++) {
    int64_t begin = blk * ADD_N_BLOCK;
    int64_t len = y->size - begin < ADD_N_BLOCK ? y->size - begin : ADD_N_BLOCK;
    size_t offset = (size_t)begin * elem;
    memcpy(out + offset, (const char *)cg__in(n, 0)->data + offset, (size_t)len * elem);
    for (int i = 1; i < count; i++) {
      const char *x = (const char *)cg__in(n, i)->data + offset;
      if (y->dtype == CG_F32) add_into_f32((float *)(void *)(out + offset), (const float *)(const void *)x, len);
      else add_into(y->dtype, out + offset, x, len);
    }
  }
}

static cg_status add_n_run(cg_node *n)
{
  cg_tensor *y = cg_node_output(n, 0);
  int64_t blocks = (y->size + ADD_N_BLOCK - 1) / ADD_N_BLOCK;
  int64_t reads = (int64_t)cg_node_num_inputs(n) * ADD_N_BLOCK; /* elements read per block */
  cg__parallel_for(blocks, CG_PARALLEL_MIN_ELEMENTS / reads + 1, add_n_blocks, n);
  return CG_OK;
}

/* The reverse walk's accumulation (node.h): AddN's additions one part at a time, so a sum
 * built in arrival order has the bits of AddN over the same parts (memcpy of the first, then
 * y += x for each further part, element by element). Large tensors are split over the
 * threads; element-wise, the split does not change a bit. */
typedef struct {
  cg_tensor *y;
  const cg_tensor *x;
} add_whole_job;

static void add_whole_range(void *ctx, int64_t begin, int64_t end)
{
  const add_whole_job *j = ctx;
  size_t elem = cg_dtype_size(j->y->dtype), offset = (size_t)begin * elem;
  char *y = (char *)j->y->data + offset;
  const char *x = (const char *)j->x->data + offset;
  if (j->y->dtype == CG_F32) add_into_f32((float *)(void *)y, (const float *)(const void *)x, end - begin);
  else add_into(j->y->dtype, y, x, end - begin);
}

void cg__add_n_into(cg_tensor *acc, const cg_tensor *x)
{
  add_whole_job j = {acc, x};
  if (acc->size <= CG_PARALLEL_MIN_ELEMENTS) add_whole_range(&j, 0, acc->size);
  else cg__parallel_for(acc->size, CG_PARALLEL_MIN_ELEMENTS, add_whole_range, &j);
}

cg_tensor *cg__add_n_pair(const cg_tensor *a, const cg_tensor *b)
{
  cg_tensor *y = cg__tensor_new_sized(a->dtype, a->ndim, a->shape, a->size);
  if (!y) return NULL;
  if (a->size) memcpy(y->data, a->data, (size_t)a->size * cg_dtype_size(a->dtype));
  cg__add_n_into(y, b);
  return y;
}

static cg_status add_n_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  for (int i = 0; i < cg_node_num_inputs(op); i++) dx[i] = dy[0];
  return CG_OK;
}

static const cg_op_def add_n_def = {"AddN", -1, add_n_infer, add_n_run, 0, NULL};

cg_tensor *cg_add_n(cg_tensor *const *xs, int n)
{
  if (!xs || n < 1) {
    cg_set_error(CG_EINVAL, "AddN: needs at least one input, got %d", xs ? n : 0);
    return NULL;
  }
  return cg_apply(&add_n_def, xs, n, NULL);
}

/* ======================================================================================
 * Gather: y[o, j..., i] = params[o, indices[j...], i] along attr axis (negative counts
 * from the end); y.shape = params.shape[:axis] + indices.shape + params.shape[axis+1:].
 * Every index must lie in [0, dim) (CG_ERANGE otherwise). Any params dtype.
 * dparams = UnsortedSegmentSum(dy, indices, dim) with the gathered axis moved to the
 * front and back again (TensorFlow's way); indices get no gradient.
 * ==================================================================================== */

static cg_status gather_infer(cg_node *n)
{
  const cg_tensor *params = cg_node_input(n, 0), *ix = cg_node_input(n, 1);
  int axis;
  cg_status st = cg__normalize_axis("Gather", cg_node_attr_int(n, "axis", 0), params->ndim, &axis);
  if (st == CG_OK) st = require_index_dtype(n, 1, "indices");
  if (st != CG_OK) return st;
  int ndim = params->ndim - 1 + ix->ndim;
  if (ndim > CG_MAX_DIMS)
    return cg_set_error(CG_ESHAPE, "Gather: params %s with indices %s gives %d dims, more than %d",
                        cg__in_shape(n, 0), cg__in_shape(n, 1), ndim, CG_MAX_DIMS);
  int64_t shape[CG_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < axis; d++) shape[k++] = params->shape[d];
  for (int d = 0; d < ix->ndim; d++) shape[k++] = ix->shape[d];
  for (int d = axis + 1; d < params->ndim; d++) shape[k++] = params->shape[d];
  return cg_node_set_output(n, 0, params->dtype, ndim, shape);
}

static cg_status gather_run(cg_node *n)
{
  const cg_tensor *params = cg_node_input(n, 0), *ix = cg_node_input(n, 1);
  cg_tensor *y = cg_node_output(n, 0);
  int axis;
  cg__normalize_axis("Gather", cg_node_attr_int(n, "axis", 0), params->ndim, &axis); /* checked */
  int64_t dim = params->shape[axis];
  cg_status st = check_indices(n, ix, dim, "index");
  if (st != CG_OK) return st;
  int64_t outer = dims_product(params->shape, 0, axis);
  size_t row = (size_t)dims_product(params->shape, axis + 1, params->ndim) *
               cg_dtype_size(params->dtype);
  const char *src = params->data;
  char *dst = y->data;
  for (int64_t o = 0; o < outer; o++) {
    const char *slab = src + (size_t)(o * dim) * row;
    for (int64_t j = 0; j < ix->size; j++, dst += row)
      memcpy(dst, slab + (size_t)index_at(ix, j) * row, row);
  }
  return CG_OK;
}

/* Moves axes [from, from+count) of an ndim-rank tensor to the front, keeping the order of
 * the rest; inverse == 1 gives the permutation that undoes it. */
static void front_perm(int ndim, int from, int count, int inverse, int *perm)
{
  int k = 0;
  for (int d = from; d < from + count; d++) perm[k++] = d;
  for (int d = 0; d < ndim; d++)
    if (d < from || d >= from + count) perm[k++] = d;
  if (inverse) {
    int p[CG_MAX_DIMS];
    for (int d = 0; d < ndim; d++) p[perm[d]] = d;
    memcpy(perm, p, (size_t)ndim * sizeof *perm);
  }
}

static cg_status gather_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *params = cg_node_input(op, 0), *ix = cg_node_input(op, 1);
  int axis;
  cg_status st = cg__normalize_axis("Gather", cg_node_attr_int(op, "axis", 0), params->ndim, &axis);
  if (st != CG_OK) return st;
  int64_t dim = params->shape[axis];
  if (axis == 0) {
    dx[0] = cg_unsorted_segment_sum(dy[0], ix, dim);
    return cg_status_of(dx[0]);
  }
  /* dy: outer + indices + inner -> indices + outer + inner, segment-sum to
   * [dim] + outer + inner, then move dim back to position axis. */
  int rank = cg_tensor_ndim(dy[0]), to_front[CG_MAX_DIMS], back[CG_MAX_DIMS];
  front_perm(rank, axis, ix->ndim, 0, to_front);
  front_perm(params->ndim, axis, 1, 1, back);
  cg_tensor *summed = cg_unsorted_segment_sum(cg_transpose(dy[0], to_front, rank), ix, dim);
  dx[0] = cg_transpose(summed, back, params->ndim);
  return cg_status_of(dx[0]);
}

static const cg_op_def gather_def = {"Gather", 2, gather_infer, gather_run, 0, NULL};

cg_tensor *cg_gather(cg_tensor *params, cg_tensor *indices, int axis)
{
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "axis", axis);
  return cg_apply2(&gather_def, params, indices, &a);
}

/* ======================================================================================
 * UnsortedSegmentSum: y[s, i] = sum of data[j..., i] over j... with ids[j...] == s, for
 * s in [0, num_segments); ids covers data's leading dims; y.shape = [num_segments] +
 * data.shape[ids.ndim:]. Unlike TensorFlow, which drops negative ids, any id outside
 * [0, num_segments) is CG_ERANGE. Numeric dtypes.
 * ddata = Gather(dy, ids, axis 0); ids get no gradient.
 * ==================================================================================== */

static cg_status segment_sum_infer(cg_node *n)
{
  const cg_tensor *data = cg_node_input(n, 0), *ids = cg_node_input(n, 1);
  int64_t segments = cg_node_attr_int(n, "num_segments", -1);
  cg_status st = require_numeric(n, 0, "data");
  if (st == CG_OK) st = require_index_dtype(n, 1, "segment_ids");
  if (st != CG_OK) return st;
  if (segments < 0)
    return cg_set_error(CG_EINVAL, "UnsortedSegmentSum: num_segments must be >= 0, got %" PRId64,
                        segments);
  if (ids->ndim > data->ndim || !cg__shape_equal(ids->ndim, ids->shape, ids->ndim, data->shape))
    return cg_set_error(CG_ESHAPE,
                        "UnsortedSegmentSum: segment_ids shape %s is not a prefix of data shape %s",
                        cg__in_shape(n, 1), cg__in_shape(n, 0));
  int ndim = 1 + data->ndim - ids->ndim;
  if (ndim > CG_MAX_DIMS)
    return cg_set_error(CG_ESHAPE,
                        "UnsortedSegmentSum: data %s with segment_ids %s gives %d dims, "
                        "more than %d",
                        cg__in_shape(n, 0), cg__in_shape(n, 1), ndim, CG_MAX_DIMS);
  int64_t shape[CG_MAX_DIMS] = {segments};
  for (int d = ids->ndim; d < data->ndim; d++) shape[1 + d - ids->ndim] = data->shape[d];
  return cg_node_set_output(n, 0, data->dtype, ndim, shape);
}

static cg_status segment_sum_run(cg_node *n)
{
  const cg_tensor *data = cg_node_input(n, 0), *ids = cg_node_input(n, 1);
  cg_tensor *y = cg_node_output(n, 0);
  cg_status st = check_indices(n, ids, y->shape[0], "segment id");
  if (st != CG_OK) return st;
  size_t elem = cg_dtype_size(data->dtype);
  int64_t inner = dims_product(data->shape, ids->ndim, data->ndim);
  memset(y->data, 0, (size_t)y->size * elem);
  for (int64_t j = 0; j < ids->size; j++)
    add_into(data->dtype, (char *)y->data + (size_t)(index_at(ids, j) * inner) * elem,
             (const char *)data->data + (size_t)(j * inner) * elem, inner);
  return CG_OK;
}

static cg_status segment_sum_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                  void *user)
{
  dx[0] = cg_gather(dy[0], cg_node_input(op, 1), 0);
  return cg_status_of(dx[0]);
}

static const cg_op_def segment_sum_def = {"UnsortedSegmentSum", 2, segment_sum_infer,
                                          segment_sum_run, 0, NULL};

cg_tensor *cg_unsorted_segment_sum(cg_tensor *data, cg_tensor *ids, int64_t num_segments)
{
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "num_segments", num_segments);
  return cg_apply2(&segment_sum_def, data, ids, &a);
}

/* ======================================================================================
 * OneHot: y[j..., k] = on if indices[j...] == k else off, k in [0, depth); y has dtype
 * attr dtype and shape indices.shape + [depth]. An index outside [0, depth) gives a row
 * of off values, as in TensorFlow. Not differentiable.
 * ==================================================================================== */

static cg_status one_hot_infer(cg_node *n)
{
  const cg_tensor *ix = cg_node_input(n, 0);
  int64_t depth = cg_node_attr_int(n, "depth", -1), d = cg_node_attr_int(n, "dtype", CG_F32);
  cg_status st = require_index_dtype(n, 0, "indices");
  if (st == CG_OK) st = require_dtype_attr(n, d);
  if (st != CG_OK) return st;
  if (depth < 0)
    return cg_set_error(CG_EINVAL, "OneHot: depth must be >= 0, got %" PRId64, depth);
  if (ix->ndim + 1 > CG_MAX_DIMS)
    return cg_set_error(CG_ESHAPE, "OneHot: indices %s already have %d dims, the most there can be",
                        cg__in_shape(n, 0), CG_MAX_DIMS);
  int64_t shape[CG_MAX_DIMS];
  memcpy(shape, ix->shape, (size_t)ix->ndim * sizeof *shape);
  shape[ix->ndim] = depth;
  return cg_node_set_output(n, 0, (cg_dtype)d, ix->ndim + 1, shape);
}

static cg_status one_hot_run(cg_node *n)
{
  const cg_tensor *ix = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  int64_t depth = y->shape[y->ndim - 1];
  double on = cg_node_attr_float(n, "on", 1.0);
  fill_range(y, 0, y->size, cg_node_attr_float(n, "off", 0.0));
  for (int64_t j = 0; j < ix->size; j++) {
    int64_t k = index_at(ix, j);
    if (k >= 0 && k < depth) fill_range(y, j * depth + k, 1, on);
  }
  return CG_OK;
}

static const cg_op_def one_hot_def = {"OneHot", 1, one_hot_infer, one_hot_run,
                                      CG_OP_NOT_DIFFERENTIABLE, NULL};

cg_tensor *cg_one_hot(cg_tensor *indices, int64_t depth, double on, double off, cg_dtype d)
{
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "depth", depth);
  cg_attrs_set_float(&a, "on", on);
  cg_attrs_set_float(&a, "off", off);
  cg_attrs_set_int(&a, "dtype", d);
  return cg_apply1(&one_hot_def, indices, &a);
}

/* ======================================================================================
 * Registration
 * ==================================================================================== */

cg_status cg__register_index_ops(void)
{
  static const struct {
    const cg_op_def *def;
    cg_grad_fn grad;
  } ops[] = {
      {&cast_def, cast_grad},
      {&identity_def, identity_grad},
      {&stop_gradient_def, NULL},
      {&zeros_like_def, NULL},
      {&ones_like_def, NULL},
      {&add_n_def, add_n_grad},
      {&gather_def, gather_grad},
      {&segment_sum_def, segment_sum_grad},
      {&one_hot_def, NULL},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    cg_status st = cg__register_builtin(ops[i].def, ops[i].grad);
    if (st != CG_OK) return st;
  }
  return CG_OK;
}

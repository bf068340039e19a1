/* shape.c - ops that move elements without arithmetic: Reshape, ExpandDims and Squeeze
 * (views of their input, no copy), and Transpose, Concat, Split, Slice, Pad, Tile and
 * BroadcastTo (copies). Every copying kernel is the one strided copy below given its own
 * strides; every gradient is another shape op, so each differentiates again. */
#include "kernel.h"
#include <inttypes.h>

/* ======================================================================================
 * Shared helpers: reading attributes, messages, size arithmetic
 * ==================================================================================== */

/* "[1,-1,2]" for messages, for lists longer than a shape (Split sizes, Pad paddings). */
static const char *fmt_ints(const int64_t *v, int n, char *buf, size_t size)
{
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < n && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? "," : "", v[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
  return buf;
}

/* Reads ints attribute `name` into out (CG_ATTR_INTS_MAX slots); CG_EINVAL when absent. */
static cg_status read_ints(const cg_node *n, const char *name, int64_t *out, int *count)
{
  int k = cg_node_attr_ints(n, name, out, CG_ATTR_INTS_MAX);
  if (k < 0)
    return cg_set_error(CG_EINVAL, "%s: attribute %s is missing", cg_node_op_type(n), name);
  *count = k;
  return CG_OK;
}

/* Like read_ints, for a list that needs exactly `want` entries (per_axis of them per axis
 * of input 0). */
static cg_status read_ints_per_axis(const cg_node *n, const char *name, int per_axis,
                                    int64_t *out)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int k = 0;
  cg_status s = read_ints(n, name, out, &k);
  if (s != CG_OK) return s;
  if (k != per_axis * x->ndim)
    return cg_set_error(CG_EINVAL, "%s: %s has %d entries for input %s of rank %d (needs %d)",
                        cg_node_op_type(n), name, k, cg__in_shape(n, 0), x->ndim,
                        per_axis * x->ndim);
  return CG_OK;
}

/* sum = a + b for sizes a, b >= 0; false when it overflows int64. */
static bool add_sizes(int64_t a, int64_t b, int64_t *sum)
{
  if (b > INT64_MAX - a) return false;
  *sum = a + b;
  return true;
}

/* Product of dims from..to-1. Unsigned, because dims beside a 0 may multiply past int64
 * in an empty tensor (whose size is still valid); no element is addressed then. */
static int64_t product(const int64_t *v, int from, int to)
{
  uint64_t p = 1;
  for (int i = from; i < to; i++) p *= (uint64_t)v[i];
  return (int64_t)p;
}

/* A wrapper's list argument as an ints attribute: too long for an attribute, or NULL
 * with entries, is CG_EINVAL naming op. */
static cg_status set_ints_arg(cg_attrs *a, const char *op, const char *name, const int64_t *v,
                              int n)
{
  static const int64_t none[1];
  if (n < 0 || n > CG_ATTR_INTS_MAX)
    return cg_set_error(CG_EINVAL, "%s: %s has %d entries; an attribute holds 0 to %d", op,
                        name, n, CG_ATTR_INTS_MAX);
  if (!v && n > 0) return cg_set_error(CG_EINVAL, "%s: %s is NULL", op, name);
  return cg_attrs_set_ints(a, name, v ? v : none, n);
}

/* The same for the int lists of the public API (axes, perm). */
static cg_status set_int_list_arg(cg_attrs *a, const char *op, const char *name, const int *v,
                                  int n)
{
  int64_t wide[CG_ATTR_INTS_MAX];
  if (v && n > 0 && n <= CG_ATTR_INTS_MAX)
    for (int i = 0; i < n; i++) wide[i] = v[i];
  return set_ints_arg(a, op, name, v ? wide : NULL, n);
}

/* ======================================================================================
 * The strided copy every copying kernel uses: for each index i of `shape`,
 *   dst[sum_d i_d * dst_stride_d] = src[sum_d i_d * src_stride_d]   (strides in elements)
 * Transpose permutes source strides, Slice and Pad offset them, BroadcastTo and Tile set
 * some to 0. Only the element width matters, so one copy serves every dtype.
 * ==================================================================================== */

#define PLAN_MAX_DIMS (2 * CG_MAX_DIMS) /* Tile splits each axis in two */

typedef struct {
  int ndim;
  int64_t shape[PLAN_MAX_DIMS];
  int64_t src_stride[PLAN_MAX_DIMS];
  int64_t dst_stride[PLAN_MAX_DIMS];
} copy_plan;

/* Unsigned for the reason given at product(). */
static void row_major_strides(int ndim, const int64_t *shape, int64_t *stride)
{
  uint64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = (int64_t)s;
    s *= (uint64_t)shape[d];
  }
}

/* A plan over shape with contiguous source and destination; kernels then change what
 * differs. */
static void plan_init(copy_plan *p, int ndim, const int64_t *shape)
{
  p->ndim = ndim;
  for (int d = 0; d < ndim; d++) p->shape[d] = shape[d];
  row_major_strides(ndim, shape, p->src_stride);
  row_major_strides(ndim, shape, p->dst_stride);
}

/* Drops size-1 axes and merges neighbours that are contiguous on both sides, so that
 * e.g. a Concat or Pad copies whole rows with one memcpy. */
static void plan_simplify(copy_plan *p)
{
  int out = 0;
  for (int d = 0; d < p->ndim; d++) {
    if (p->shape[d] == 1) continue;
    if (out > 0 && p->src_stride[out - 1] == p->src_stride[d] * p->shape[d] &&
        p->dst_stride[out - 1] == p->dst_stride[d] * p->shape[d]) {
      p->shape[out - 1] *= p->shape[d];
      p->src_stride[out - 1] = p->src_stride[d];
      p->dst_stride[out - 1] = p->dst_stride[d];
      continue;
    }
    p->shape[out] = p->shape[d];
    p->src_stride[out] = p->src_stride[d];
    p->dst_stride[out] = p->dst_stride[d];
    out++;
  }
  p->ndim = out;
}

/* Copies len elements of width W; inlined with W a constant, each copy is one move. */
static inline void copy_elements(char *dst, int64_t dst_step, const char *src,
                                 int64_t src_step, int64_t len, const size_t W)
{
  for (int64_t i = 0; i < len; i++) memcpy(dst + i * dst_step * W, src + i * src_step * W, W);
}

static void copy_row(char *dst, int64_t dst_step, const char *src, int64_t src_step,
                     int64_t len, size_t esz)
{
  if (dst_step == 1 && src_step == 1) {
    memcpy(dst, src, (size_t)len * esz);
    return;
  }
  switch (esz) {
  case 1: copy_elements(dst, dst_step, src, src_step, len, 1); break;
  case 4: copy_elements(dst, dst_step, src, src_step, len, 4); break;
  case 8: copy_elements(dst, dst_step, src, src_step, len, 8); break;
  default: copy_elements(dst, dst_step, src, src_step, len, esz); break;
  }
}

static void strided_copy(copy_plan p, void *dst, const void *src, size_t esz)
{
  for (int d = 0; d < p.ndim; d++)
    if (p.shape[d] == 0) return;
  plan_simplify(&p);
  if (p.ndim == 0) {
    memcpy(dst, src, esz);
    return;
  }
  int inner = p.ndim - 1;
  int64_t idx[PLAN_MAX_DIMS] = {0};
  int64_t src_off = 0, dst_off = 0;
  for (;;) {
    copy_row((char *)dst + dst_off * (int64_t)esz, p.dst_stride[inner],
             (const char *)src + src_off * (int64_t)esz, p.src_stride[inner], p.shape[inner], esz);
    int d = inner - 1;
    for (; d >= 0; d--) { /* odometer over the outer axes */
      src_off += p.src_stride[d];
      dst_off += p.dst_stride[d];
      if (++idx[d] < p.shape[d]) break;
      src_off -= p.src_stride[d] * p.shape[d];
      dst_off -= p.dst_stride[d] * p.shape[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

/* Copies a [rows, cols] block between matrices whose rows are src_row / dst_row apart. */
static void copy_block(void *dst, int64_t dst_row, const void *src, int64_t src_row,
                       int64_t rows, int64_t cols, size_t esz)
{
  copy_plan p = {.ndim = 2, .shape = {rows, cols}, .src_stride = {src_row, 1},
                 .dst_stride = {dst_row, 1}};
  strided_copy(p, dst, src, esz);
}

/* Views need no kernel: the dispatcher points the output at the input's buffer. */
static cg_status view_run(cg_node *n) { return CG_OK; }

/* Reshape, ExpandDims, Squeeze: dx = dy viewed as x */
static cg_status view_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg__reshape_as(dy[0], cg_node_input(op, 0));
  return cg_status_of(dx[0]);
}

/* ======================================================================================
 * Reshape: y = x with shape attr "shape" (one -1 is inferred), a view;
 *          dx = reshape(dy, x.shape)
 * ==================================================================================== */

static cg_status reshape_target(const cg_node *n, int *ndim, int64_t *shape)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int64_t want[CG_ATTR_INTS_MAX];
  char want_s[160], x_s[64];
  int k;
  cg_status s = read_ints(n, "shape", want, &k);
  if (s != CG_OK) return s;
  fmt_ints(want, k, want_s, sizeof want_s);
  if (k > CG_MAX_DIMS)
    return cg_set_error(CG_EINVAL, "Reshape: shape %s has %d dimensions, at most %d allowed",
                        want_s, k, CG_MAX_DIMS);
  int unknown = -1;
  for (int d = 0; d < k; d++) {
    shape[d] = want[d];
    if (want[d] >= 0) continue;
    if (want[d] < -1)
      return cg_set_error(CG_EINVAL, "Reshape: shape %s has a negative size other than -1",
                          want_s);
    if (unknown >= 0)
      return cg_set_error(CG_EINVAL, "Reshape: shape %s has more than one -1", want_s);
    unknown = d;
    shape[d] = 1;
  }
  int64_t known;
  if ((s = cg__shape_size("Reshape", k, shape, &known)) != CG_OK) return s;
  cg__fmt_shape(x->ndim, x->shape, x_s, sizeof x_s);
  if (unknown >= 0) {
    if (known == 0 || x->size % known != 0)
      return cg_set_error(CG_ESHAPE,
                          "Reshape: cannot reshape %s (%" PRId64 " elements) into %s: "
                          "no size for -1 fits",
                          x_s, x->size, want_s);
    shape[unknown] = x->size / known;
    known = x->size;
  }
  if (known != x->size)
    return cg_set_error(CG_ESHAPE,
                        "Reshape: cannot reshape %s (%" PRId64 " elements) into %s (%" PRId64
                        " elements)",
                        x_s, x->size, want_s, known);
  *ndim = k;
  return CG_OK;
}

static cg_status reshape_infer(cg_node *n)
{
  int ndim = 0;
  int64_t shape[CG_MAX_DIMS];
  cg_status s = reshape_target(n, &ndim, shape);
  if (s != CG_OK) return s;
  return cg_node_set_output_alias(n, 0, 0, ndim, shape);
}

static const cg_op_def reshape_def = {"Reshape", 1, reshape_infer, view_run, 0, NULL};

cg_tensor *cg_reshape(cg_tensor *x, int ndim, const int64_t *shape)
{
  cg_attrs a = {0};
  if (x && set_ints_arg(&a, "Reshape", "shape", shape, ndim) != CG_OK) return NULL;
  return cg_apply1(&reshape_def, x, &a);
}

/* ======================================================================================
 * ExpandDims: y = x with a size-1 axis inserted at int "axis" (default 0, may be
 *             negative: -1 appends), a view;  dx = reshape(dy, x.shape)
 * ==================================================================================== */

static cg_status expand_dims_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  if (x->ndim >= CG_MAX_DIMS)
    return cg_set_error(CG_EINVAL, "ExpandDims: input %s already has %d dimensions, the most "
                        "a tensor may have", cg__in_shape(n, 0), CG_MAX_DIMS);
  int64_t given = cg_node_attr_int(n, "axis", 0);
  if (given < -(x->ndim + 1) || given > x->ndim)
    return cg_set_error(CG_ERANGE, "ExpandDims: axis %" PRId64 " is outside [%d, %d] for input %s",
                        given, -(x->ndim + 1), x->ndim, cg__in_shape(n, 0));
  int axis = (int)(given < 0 ? given + x->ndim + 1 : given);
  int64_t shape[CG_MAX_DIMS];
  for (int d = 0, from = 0; d <= x->ndim; d++) shape[d] = d == axis ? 1 : x->shape[from++];
  return cg_node_set_output_alias(n, 0, 0, x->ndim + 1, shape);
}

static const cg_op_def expand_dims_def = {"ExpandDims", 1, expand_dims_infer, view_run, 0, NULL};

cg_tensor *cg_expand_dims(cg_tensor *x, int axis)
{
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "axis", axis);
  return cg_apply1(&expand_dims_def, x, &a);
}

/* ======================================================================================
 * Squeeze: y = x without the size-1 axes listed in ints "axes" (absent or empty: every
 *          size-1 axis), a view;  dx = reshape(dy, x.shape)
 * ==================================================================================== */

static cg_status squeeze_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  bool drop[CG_MAX_DIMS] = {false};
  int64_t axes[CG_ATTR_INTS_MAX];
  int k = cg_node_attr_ints(n, "axes", axes, CG_ATTR_INTS_MAX);
  if (k <= 0) {
    for (int d = 0; d < x->ndim; d++) drop[d] = x->shape[d] == 1;
  } else {
    cg_status s = cg__axes_mask("Squeeze", axes, k, x->ndim, drop);
    if (s != CG_OK) return s;
    for (int d = 0; d < x->ndim; d++)
      if (drop[d] && x->shape[d] != 1)
        return cg_set_error(CG_ESHAPE, "Squeeze: axis %d of %s has size %" PRId64 ", not 1", d,
                            cg__in_shape(n, 0), x->shape[d]);
  }
  int64_t shape[CG_MAX_DIMS];
  int ndim = 0;
  for (int d = 0; d < x->ndim; d++)
    if (!drop[d]) shape[ndim++] = x->shape[d];
  return cg_node_set_output_alias(n, 0, 0, ndim, shape);
}

static const cg_op_def squeeze_def = {"Squeeze", 1, squeeze_infer, view_run, 0, NULL};

cg_tensor *cg_squeeze(cg_tensor *x, const int *axes, int n_axes)
{
  cg_attrs a = {0};
  if (x && axes && n_axes > 0 &&
      set_int_list_arg(&a, "Squeeze", "axes", axes, n_axes) != CG_OK)
    return NULL;
  return cg_apply1(&squeeze_def, x, &a);
}

/* ======================================================================================
 * Transpose: y[i_perm[0], ..., i_perm[r-1]] = x[i_0, ..., i_r-1], i.e. y.shape[d] =
 *            x.shape[perm[d]]; ints "perm" (absent: reversed axes);
 *            dx = transpose(dy, inverse perm)
 * ==================================================================================== */

static cg_status transpose_perm(const cg_node *n, int64_t *perm)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int r = x->ndim;
  int64_t given[CG_ATTR_INTS_MAX];
  int k = cg_node_attr_ints(n, "perm", given, CG_ATTR_INTS_MAX);
  if (k < 0) {
    for (int d = 0; d < r; d++) perm[d] = r - 1 - d;
    return CG_OK;
  }
  char perm_s[160];
  fmt_ints(given, k, perm_s, sizeof perm_s);
  if (k != r)
    return cg_set_error(CG_EINVAL, "Transpose: perm %s has %d entries for input %s of rank %d",
                        perm_s, k, cg__in_shape(n, 0), r);
  bool seen[CG_MAX_DIMS] = {false};
  for (int d = 0; d < r; d++) {
    if (given[d] < 0 || given[d] >= r)
      return cg_set_error(CG_ERANGE, "Transpose: perm %s: entry %" PRId64
                          " is out of range for rank %d", perm_s, given[d], r);
    if (seen[given[d]])
      return cg_set_error(CG_EINVAL, "Transpose: perm %s repeats axis %" PRId64, perm_s,
                          given[d]);
    seen[given[d]] = true;
    perm[d] = given[d];
  }
  return CG_OK;
}

static cg_status transpose_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int64_t perm[CG_MAX_DIMS], shape[CG_MAX_DIMS];
  cg_status s = transpose_perm(n, perm);
  if (s != CG_OK) return s;
  for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[perm[d]];
  return cg_node_set_output(n, 0, x->dtype, x->ndim, shape);
}

static cg_status transpose_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  int64_t perm[CG_MAX_DIMS], x_stride[CG_MAX_DIMS];
  cg_status s = transpose_perm(n, perm);
  if (s != CG_OK) return s;
  row_major_strides(x->ndim, x->shape, x_stride);
  copy_plan p;
  plan_init(&p, y->ndim, y->shape);
  for (int d = 0; d < y->ndim; d++) p.src_stride[d] = x_stride[perm[d]];
  strided_copy(p, y->data, x->data, cg_dtype_size(x->dtype));
  return CG_OK;
}

static cg_status transpose_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                void *user)
{
  const cg_tensor *x = cg_node_input(op, 0);
  int64_t perm[CG_MAX_DIMS];
  int inverse[CG_MAX_DIMS];
  cg_status s = transpose_perm(op, perm);
  if (s != CG_OK) return s;
  for (int d = 0; d < x->ndim; d++) inverse[perm[d]] = d;
  dx[0] = cg_transpose(dy[0], inverse, x->ndim);
  return cg_status_of(dx[0]);
}

static const cg_op_def transpose_def = {"Transpose", 1, transpose_infer, transpose_run, 0, NULL};

cg_tensor *cg_transpose(cg_tensor *x, const int *perm, int n)
{
  cg_attrs a = {0};
  if (x && perm && set_int_list_arg(&a, "Transpose", "perm", perm, n) != CG_OK) return NULL;
  return cg_apply1(&transpose_def, x, &a);
}

/* ======================================================================================
 * Concat: y = the inputs joined along int "axis" (default 0); all share dtype, rank and
 *         every other dimension;  dx_i = slice of dy where input i landed
 * ==================================================================================== */

static cg_status concat_axis(const cg_node *n, int *axis)
{
  const cg_tensor *x0 = cg_node_input(n, 0);
  return cg__normalize_axis("Concat", cg_node_attr_int(n, "axis", 0), x0->ndim, axis);
}

static cg_status concat_infer(cg_node *n)
{
  if (cg_node_num_inputs(n) < 1)
    return cg_set_error(CG_EINVAL, "Concat: needs at least one input, got 0");
  const cg_tensor *x0 = cg_node_input(n, 0);
  int axis;
  cg_status s = concat_axis(n, &axis);
  if (s != CG_OK) return s;
  int64_t shape[CG_MAX_DIMS];
  memcpy(shape, x0->shape, sizeof shape);
  for (int i = 1; i < cg_node_num_inputs(n); i++) {
    const cg_tensor *xi = cg_node_input(n, i);
    if ((s = cg__require_same_dtype(n, i, 0)) != CG_OK) return s;
    bool fits = xi->ndim == x0->ndim;
    for (int d = 0; fits && d < x0->ndim; d++) fits = d == axis || xi->shape[d] == x0->shape[d];
    if (!fits)
      return cg_set_error(CG_ESHAPE, "Concat: input %d %s does not match input 0 %s outside "
                          "axis %d", i, cg__in_shape(n, i), cg__in_shape(n, 0), axis);
    if (!add_sizes(shape[axis], xi->shape[axis], &shape[axis]))
      return cg_set_error(CG_ENOMEM, "Concat: axis %d of the output overflows", axis);
  }
  int64_t size;
  if ((s = cg__shape_size("Concat", x0->ndim, shape, &size)) != CG_OK) return s;
  return cg_node_set_output(n, 0, x0->dtype, x0->ndim, shape);
}

/* Seen as matrices [outer, inner] split at axis, each input is a block of columns. */
static cg_status concat_run(cg_node *n)
{
  cg_tensor *y = cg_node_output(n, 0);
  size_t esz = cg_dtype_size(y->dtype);
  int axis;
  cg_status s = concat_axis(n, &axis);
  if (s != CG_OK) return s;
  if (y->size == 0) return CG_OK;
  int64_t outer = product(y->shape, 0, axis), y_row = product(y->shape, axis, y->ndim);
  int64_t column = 0;
  for (int i = 0; i < cg_node_num_inputs(n); i++) {
    const cg_tensor *x = cg_node_input(n, i);
    int64_t x_row = product(x->shape, axis, x->ndim);
    copy_block((char *)y->data + column * (int64_t)esz, y_row, x->data, x_row, outer, x_row,
               esz);
    column += x_row;
  }
  return CG_OK;
}

static cg_status concat_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                             void *user)
{
  int axis;
  cg_status s = concat_axis(op, &axis);
  if (s != CG_OK) return s;
  int64_t begin[CG_MAX_DIMS] = {0};
  for (int i = 0; i < cg_node_num_inputs(op); i++) {
    const cg_tensor *x = cg_node_input(op, i);
    dx[i] = cg_slice(dy[0], begin, x->shape);
    if (!dx[i]) return cg_status_of(NULL);
    begin[axis] += x->shape[axis];
  }
  return CG_OK;
}

static const cg_op_def concat_def = {"Concat", -1, concat_infer, concat_run, 0, NULL};

cg_tensor *cg_concat(cg_tensor *const *xs, int n, int axis)
{
  if (n < 1) {
    cg_set_error(CG_EINVAL, "Concat: needs at least one input, got %d", n);
    return NULL;
  }
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "axis", axis);
  return cg_apply(&concat_def, xs, n, &a);
}

/* ======================================================================================
 * Split: y_0, ..., y_k-1 = consecutive pieces of x along int "axis" (default 0), either
 *        int "num" equal pieces or ints "sizes" (one -1: the rest);  dx = concat(dy_i)
 * ==================================================================================== */

/* Equal pieces: num must divide the axis. */
static cg_status split_equal(const cg_node *n, int axis, int64_t num, int *count, int64_t *sizes)
{
  int64_t dim = cg_node_input(n, 0)->shape[axis];
  if (num < 1 || num > CG_MAX_OUTPUTS)
    return cg_set_error(CG_EINVAL, "Split: num %" PRId64 " is outside [1, %d]", num,
                        CG_MAX_OUTPUTS);
  if (dim % num != 0)
    return cg_set_error(CG_ESHAPE, "Split: axis %d of %s (size %" PRId64 ") does not split "
                        "into %" PRId64 " equal parts", axis, cg__in_shape(n, 0), dim, num);
  for (int i = 0; i < num; i++) sizes[i] = dim / num;
  *count = (int)num;
  return CG_OK;
}

/* Given sizes: all >= 0 but one -1 (the rest), adding up to the axis. */
static cg_status split_given(const cg_node *n, int axis, int k, int64_t *sizes)
{
  int64_t dim = cg_node_input(n, 0)->shape[axis], total = 0;
  char sizes_s[200];
  fmt_ints(sizes, k, sizes_s, sizeof sizes_s);
  if (k < 1 || k > CG_MAX_OUTPUTS)
    return cg_set_error(CG_EINVAL, "Split: sizes %s has %d entries, needs 1 to %d", sizes_s, k,
                        CG_MAX_OUTPUTS);
  int rest = -1;
  for (int i = 0; i < k; i++) {
    if (sizes[i] == -1 && rest < 0) {
      rest = i;
    } else if (sizes[i] < 0) {
      return cg_set_error(CG_EINVAL, "Split: sizes %s may hold one -1 and otherwise sizes >= 0",
                          sizes_s);
    } else if (sizes[i] > dim - total) {
      return cg_set_error(CG_ESHAPE, "Split: sizes %s exceed axis %d of %s (size %" PRId64 ")",
                          sizes_s, axis, cg__in_shape(n, 0), dim);
    } else {
      total += sizes[i];
    }
  }
  if (rest >= 0)
    sizes[rest] = dim - total;
  else if (total != dim)
    return cg_set_error(CG_ESHAPE, "Split: sizes %s do not add up to axis %d of %s (size %"
                        PRId64 ")", sizes_s, axis, cg__in_shape(n, 0), dim);
  return CG_OK;
}

static cg_status split_sizes(const cg_node *n, int *axis, int *count, int64_t *sizes)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_status s = cg__normalize_axis("Split", cg_node_attr_int(n, "axis", 0), x->ndim, axis);
  if (s != CG_OK) return s;
  int64_t num = cg_node_attr_int(n, "num", 0);
  int k = cg_node_attr_ints(n, "sizes", sizes, CG_ATTR_INTS_MAX);
  if ((k >= 0) == (num != 0))
    return cg_set_error(CG_EINVAL, "Split: give exactly one of num and sizes");
  if (k < 0) return split_equal(n, *axis, num, count, sizes);
  *count = k;
  return split_given(n, *axis, k, sizes);
}

static cg_status split_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int axis, count = 0;
  int64_t sizes[CG_ATTR_INTS_MAX], shape[CG_MAX_DIMS];
  cg_status s = split_sizes(n, &axis, &count, sizes);
  if (s != CG_OK) return s;
  memcpy(shape, x->shape, sizeof shape);
  for (int i = 0; i < count && s == CG_OK; i++) {
    shape[axis] = sizes[i];
    s = cg_node_set_output(n, i, x->dtype, x->ndim, shape);
  }
  return s;
}

/* Seen as matrices [outer, inner] split at axis, each output is a block of columns. */
static cg_status split_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  size_t esz = cg_dtype_size(x->dtype);
  int axis;
  cg_status s = cg__normalize_axis("Split", cg_node_attr_int(n, "axis", 0), x->ndim, &axis);
  if (s != CG_OK) return s;
  if (x->size == 0) return CG_OK;
  int64_t outer = product(x->shape, 0, axis), x_row = product(x->shape, axis, x->ndim);
  int64_t column = 0;
  for (int i = 0; i < cg_node_num_outputs(n); i++) {
    cg_tensor *y = cg_node_output(n, i);
    int64_t y_row = product(y->shape, axis, y->ndim);
    copy_block(y->data, y_row, (const char *)x->data + column * (int64_t)esz, x_row, outer,
               y_row, esz);
    column += y_row;
  }
  return CG_OK;
}

static cg_status split_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  const cg_tensor *x = cg_node_input(op, 0);
  int axis;
  cg_status s = cg__normalize_axis("Split", cg_node_attr_int(op, "axis", 0), x->ndim, &axis);
  if (s != CG_OK) return s;
  dx[0] = cg_concat(dy, cg_node_num_outputs(op), axis);
  return cg_status_of(dx[0]);
}

static const cg_op_def split_def = {"Split", 1, split_infer, split_run, 0, NULL};

/* Runs Split with attributes a; out receives its n outputs. */
static cg_status split_into(cg_tensor *x, const cg_attrs *a, int n, cg_tensor **out)
{
  if (!out) return cg_set_error(CG_EINVAL, "Split: out is NULL");
  for (int i = 0; i < n && i < CG_MAX_OUTPUTS; i++) out[i] = NULL;
  cg_tensor *pieces[CG_MAX_OUTPUTS];
  int n_out = 0;
  cg_status s = cg_execute(&split_def, &x, 1, a, pieces, &n_out);
  if (s != CG_OK) return s;
  memcpy(out, pieces, (size_t)n_out * sizeof *out);
  return CG_OK;
}

cg_status cg_split(cg_tensor *x, int n, int axis, cg_tensor **out)
{
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "num", n);
  cg_attrs_set_int(&a, "axis", axis);
  return split_into(x, &a, n, out);
}

cg_status cg_split_sizes(cg_tensor *x, const int64_t *sizes, int n, int axis, cg_tensor **out)
{
  cg_attrs a = {0};
  cg_status s = set_ints_arg(&a, "Split", "sizes", sizes, n);
  if (s != CG_OK) return s;
  cg_attrs_set_int(&a, "axis", axis);
  return split_into(x, &a, n, out);
}

/* ======================================================================================
 * Slice: y = x[begin_0 : begin_0+size_0, ...] with ints "begin", "size" (size -1: to
 *        the end);  dx = pad(dy, (begin, x.shape - begin - size), 0)
 * ==================================================================================== */

static cg_status slice_window(const cg_node *n, int64_t *begin, int64_t *size)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_status s = read_ints_per_axis(n, "begin", 1, begin);
  if (s == CG_OK) s = read_ints_per_axis(n, "size", 1, size);
  if (s != CG_OK) return s;
  for (int d = 0; d < x->ndim; d++) {
    int64_t dim = x->shape[d];
    if (begin[d] < 0 || begin[d] > dim)
      return cg_set_error(CG_ERANGE, "Slice: begin %" PRId64 " is out of range for axis %d of %s",
                          begin[d], d, cg__in_shape(n, 0));
    if (size[d] < -1)
      return cg_set_error(CG_EINVAL, "Slice: size %" PRId64 " for axis %d of %s is negative (only -1, "
                          "meaning to the end, may be)", size[d], d, cg__in_shape(n, 0));
    if (size[d] == -1) size[d] = dim - begin[d];
    if (size[d] > dim - begin[d])
      return cg_set_error(CG_ERANGE, "Slice: axis %d: begin %" PRId64 " + size %" PRId64
                          " exceeds dimension %" PRId64 " of %s",
                          d, begin[d], size[d], dim, cg__in_shape(n, 0));
  }
  return CG_OK;
}

static cg_status slice_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int64_t begin[CG_ATTR_INTS_MAX], size[CG_ATTR_INTS_MAX];
  cg_status s = slice_window(n, begin, size);
  if (s != CG_OK) return s;
  return cg_node_set_output(n, 0, x->dtype, x->ndim, size);
}

static cg_status slice_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  size_t esz = cg_dtype_size(x->dtype);
  int64_t begin[CG_ATTR_INTS_MAX], size[CG_ATTR_INTS_MAX];
  cg_status s = slice_window(n, begin, size);
  if (s != CG_OK) return s;
  if (y->size == 0) return CG_OK;
  copy_plan p;
  plan_init(&p, y->ndim, y->shape);
  row_major_strides(x->ndim, x->shape, p.src_stride);
  int64_t start = 0;
  for (int d = 0; d < x->ndim; d++) start += begin[d] * p.src_stride[d];
  strided_copy(p, y->data, (const char *)x->data + start * (int64_t)esz, esz);
  return CG_OK;
}

static cg_status slice_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  const cg_tensor *x = cg_node_input(op, 0);
  int64_t begin[CG_ATTR_INTS_MAX], size[CG_ATTR_INTS_MAX], paddings[CG_ATTR_INTS_MAX];
  cg_status s = slice_window(op, begin, size);
  if (s != CG_OK) return s;
  for (int d = 0; d < x->ndim; d++) {
    paddings[2 * d] = begin[d];
    paddings[2 * d + 1] = x->shape[d] - begin[d] - size[d];
  }
  dx[0] = cg_pad(dy[0], paddings, 0.0);
  return cg_status_of(dx[0]);
}

static const cg_op_def slice_def = {"Slice", 1, slice_infer, slice_run, 0, NULL};

cg_tensor *cg_slice(cg_tensor *x, const int64_t *begin, const int64_t *size)
{
  cg_attrs a = {0};
  if (x && (set_ints_arg(&a, "Slice", "begin", begin, x->ndim) != CG_OK ||
            set_ints_arg(&a, "Slice", "size", size, x->ndim) != CG_OK))
    return NULL;
  return cg_apply1(&slice_def, x, &a);
}

/* ======================================================================================
 * Pad: y = x surrounded by float "value" (default 0), ints "paddings" giving (before,
 *      after) per axis;  dx = slice(dy, before, x.shape)
 * ==================================================================================== */

static cg_status pad_shape(const cg_node *n, int64_t *paddings, int64_t *shape)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_status s = read_ints_per_axis(n, "paddings", 2, paddings);
  if (s != CG_OK) return s;
  for (int d = 0; d < x->ndim; d++) {
    int64_t before = paddings[2 * d], after = paddings[2 * d + 1], grown;
    if (before < 0 || after < 0)
      return cg_set_error(CG_EINVAL, "Pad: paddings (%" PRId64 ", %" PRId64 ") of axis %d are "
                          "negative", before, after, d);
    if (!add_sizes(x->shape[d], before, &grown) || !add_sizes(grown, after, &shape[d]))
      return cg_set_error(CG_ENOMEM, "Pad: padded axis %d of %s overflows", d,
                          cg__in_shape(n, 0));
  }
  int64_t size;
  return cg__shape_size("Pad", x->ndim, shape, &size);
}

/* An integer or bool output holds only whole values in its range. */
static cg_status check_fill_value(const char *op, cg_dtype d, double v)
{
  bool whole = v == floor(v);
  bool fits = d == CG_F32 || d == CG_F64 ||
              (d == CG_I32 && whole && v >= INT32_MIN && v <= INT32_MAX) ||
              (d == CG_I64 && whole && v >= -0x1p63 && v < 0x1p63) ||
              (d == CG_BOOL && (v == 0 || v == 1));
  if (fits) return CG_OK;
  return cg_set_error(CG_EINVAL, "%s: value %g does not fit dtype %s", op, v, cg_dtype_name(d));
}

static cg_status pad_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int64_t paddings[CG_ATTR_INTS_MAX], shape[CG_MAX_DIMS];
  cg_status s = pad_shape(n, paddings, shape);
  if (s == CG_OK) s = check_fill_value("Pad", x->dtype, cg_node_attr_float(n, "value", 0.0));
  if (s != CG_OK) return s;
  return cg_node_set_output(n, 0, x->dtype, x->ndim, shape);
}

/* Writes one element, then doubles the filled prefix with memcpy. */
static void fill_value(cg_tensor *t, double value)
{
  size_t esz = cg_dtype_size(t->dtype);
  char *data = t->data;
  if (t->size == 0) return;
  cg__store(t->dtype, data, 0, value);
  for (int64_t done = 1; done < t->size;) {
    int64_t k = done < t->size - done ? done : t->size - done;
    memcpy(data + done * (int64_t)esz, data, (size_t)k * esz);
    done += k;
  }
}

static cg_status pad_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  size_t esz = cg_dtype_size(x->dtype);
  int64_t paddings[CG_ATTR_INTS_MAX], shape[CG_MAX_DIMS];
  cg_status s = pad_shape(n, paddings, shape);
  if (s != CG_OK) return s;
  fill_value(y, cg_node_attr_float(n, "value", 0.0));
  copy_plan p;
  plan_init(&p, x->ndim, x->shape);
  row_major_strides(y->ndim, y->shape, p.dst_stride);
  int64_t start = 0;
  for (int d = 0; d < x->ndim; d++) start += paddings[2 * d] * p.dst_stride[d];
  strided_copy(p, (char *)y->data + start * (int64_t)esz, x->data, esz);
  return CG_OK;
}

static cg_status pad_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  const cg_tensor *x = cg_node_input(op, 0);
  int64_t paddings[CG_ATTR_INTS_MAX], before[CG_MAX_DIMS];
  /* only the paddings (checked by pad_infer): in a graph, x may have unknown (-1) dims */
  cg_status s = read_ints_per_axis(op, "paddings", 2, paddings);
  if (s != CG_OK) return s;
  for (int d = 0; d < x->ndim; d++) before[d] = paddings[2 * d];
  dx[0] = cg_slice(dy[0], before, x->shape);
  return cg_status_of(dx[0]);
}

static const cg_op_def pad_def = {"Pad", 1, pad_infer, pad_run, 0, NULL};

cg_tensor *cg_pad(cg_tensor *x, const int64_t *paddings, double value)
{
  cg_attrs a = {0};
  if (x && set_ints_arg(&a, "Pad", "paddings", paddings, 2 * x->ndim) != CG_OK) return NULL;
  cg_attrs_set_float(&a, "value", value);
  return cg_apply1(&pad_def, x, &a);
}

/* ======================================================================================
 * Tile: y = x repeated multiples[d] times along each axis d (ints "multiples"), so
 *       y[i] = x[i mod x.shape];  dx = the sum of dy's copies, one tiled axis at a time
 * ==================================================================================== */

static cg_status tile_shape(const cg_node *n, int64_t *multiples, int64_t *shape)
{
  const cg_tensor *x = cg_node_input(n, 0);
  char m_s[160];
  cg_status s = read_ints_per_axis(n, "multiples", 1, multiples);
  if (s != CG_OK) return s;
  for (int d = 0; d < x->ndim; d++) {
    int64_t m = multiples[d], dim = x->shape[d];
    if (m < 0)
      return cg_set_error(CG_EINVAL, "Tile: multiples %s has a negative entry",
                          fmt_ints(multiples, x->ndim, m_s, sizeof m_s));
    if (dim != 0 && m > INT64_MAX / dim)
      return cg_set_error(CG_ENOMEM, "Tile: %s tiled %s overflows", cg__in_shape(n, 0),
                          fmt_ints(multiples, x->ndim, m_s, sizeof m_s));
    shape[d] = dim * m;
  }
  int64_t size;
  return cg__shape_size("Tile", x->ndim, shape, &size);
}

static cg_status tile_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int64_t multiples[CG_ATTR_INTS_MAX], shape[CG_MAX_DIMS];
  cg_status s = tile_shape(n, multiples, shape);
  if (s != CG_OK) return s;
  return cg_node_set_output(n, 0, x->dtype, x->ndim, shape);
}

/* y seen as [m_0, d_0, m_1, d_1, ...] reads x with stride 0 along every m_k. */
static cg_status tile_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  int64_t multiples[CG_ATTR_INTS_MAX], shape[CG_MAX_DIMS], x_stride[CG_MAX_DIMS];
  int64_t split_shape[PLAN_MAX_DIMS] = {0};
  cg_status s = tile_shape(n, multiples, shape);
  if (s != CG_OK) return s;
  if (y->size == 0) return CG_OK;
  for (int d = 0; d < x->ndim; d++) {
    split_shape[2 * d] = multiples[d];
    split_shape[2 * d + 1] = x->shape[d];
  }
  copy_plan p;
  plan_init(&p, 2 * x->ndim, split_shape);
  row_major_strides(x->ndim, x->shape, x_stride);
  for (int d = 0; d < x->ndim; d++) {
    p.src_stride[2 * d] = 0;
    p.src_stride[2 * d + 1] = x_stride[d];
  }
  strided_copy(p, y->data, x->data, cg_dtype_size(x->dtype));
  return CG_OK;
}

/* Axis k is summed as dy viewed [before, m_k, d_k * after], so every intermediate is
 * rank 3 whatever the input's rank (axes before k are already summed down to x's). */
static cg_status tile_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  static const int copies_axis = 1;
  const cg_tensor *x = cg_node_input(op, 0);
  int64_t multiples[CG_ATTR_INTS_MAX], shape[CG_MAX_DIMS];
  cg_status s = tile_shape(op, multiples, shape);
  if (s != CG_OK) return s;
  /* An empty y: nothing reached x, and the views below could overflow (shape [0, 3, 2^62]). */
  if (product(shape, 0, x->ndim) == 0) {
    dx[0] = cg__broadcast_as(cg_scalar(x->dtype, 0), cg_node_input(op, 0));
    return cg_status_of(dx[0]);
  }
  cg_tensor *g = dy[0];
  for (int k = 0; k < x->ndim; k++) {
    if (multiples[k] == 1) continue;
    int64_t view[3] = {product(x->shape, 0, k), multiples[k],
                       x->shape[k] * product(shape, k + 1, x->ndim)};
    g = cg_sum(cg_reshape(g, 3, view), &copies_axis, 1, 0);
  }
  dx[0] = cg_reshape(g, x->ndim, x->shape);
  return cg_status_of(dx[0]);
}

static const cg_op_def tile_def = {"Tile", 1, tile_infer, tile_run, 0, NULL};

cg_tensor *cg_tile(cg_tensor *x, const int64_t *multiples)
{
  cg_attrs a = {0};
  if (x && set_ints_arg(&a, "Tile", "multiples", multiples, x->ndim) != CG_OK) return NULL;
  return cg_apply1(&tile_def, x, &a);
}

/* ======================================================================================
 * BroadcastTo: y = x broadcast (NumPy rules) to ints "shape";
 *              dx = dy, which the engine sums back down to x's shape
 * ==================================================================================== */

static cg_status broadcast_target(const cg_node *n, int *ndim, int64_t *shape)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int64_t want[CG_ATTR_INTS_MAX];
  char want_s[160];
  int k;
  cg_status s = read_ints(n, "shape", want, &k);
  if (s != CG_OK) return s;
  fmt_ints(want, k, want_s, sizeof want_s);
  if (k > CG_MAX_DIMS)
    return cg_set_error(CG_EINVAL, "BroadcastTo: shape %s has %d dimensions, at most %d allowed",
                        want_s, k, CG_MAX_DIMS);
  for (int d = 0; d < k; d++)
    if (want[d] < 0)
      return cg_set_error(CG_EINVAL, "BroadcastTo: shape %s has a negative size", want_s);
  bool fits = x->ndim <= k;
  for (int d = 0; fits && d < x->ndim; d++) {
    int64_t from = x->shape[d], to = want[k - x->ndim + d];
    fits = from == to || from == 1;
  }
  if (!fits)
    return cg_set_error(CG_ESHAPE, "BroadcastTo: %s does not broadcast to %s",
                        cg__in_shape(n, 0), want_s);
  int64_t size;
  if ((s = cg__shape_size("BroadcastTo", k, want, &size)) != CG_OK) return s;
  memcpy(shape, want, (size_t)k * sizeof *shape);
  *ndim = k;
  return CG_OK;
}

static cg_status broadcast_to_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int ndim = 0;
  int64_t shape[CG_MAX_DIMS];
  cg_status s = broadcast_target(n, &ndim, shape);
  if (s != CG_OK) return s;
  return cg_node_set_output(n, 0, x->dtype, ndim, shape);
}

static cg_status broadcast_to_run(cg_node *n)
{
  cg__broadcast_rows(cg_node_input(n, 0), cg_node_output(n, 0));
  return CG_OK;
}

static cg_status broadcast_to_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                   void *user)
{
  dx[0] = dy[0];
  return CG_OK;
}

static const cg_op_def broadcast_to_def = {"BroadcastTo", 1, broadcast_to_infer,
                                           broadcast_to_run, 0, NULL};

cg_tensor *cg_broadcast_to(cg_tensor *x, int ndim, const int64_t *shape)
{
  cg_attrs a = {0};
  if (x && set_ints_arg(&a, "BroadcastTo", "shape", shape, ndim) != CG_OK) return NULL;
  return cg_apply1(&broadcast_to_def, x, &a);
}

/* ======================================================================================
 * Registration
 * ==================================================================================== */

cg_status cg__register_shape_ops(void)
{
  static const struct {
    const cg_op_def *def;
    cg_grad_fn grad;
  } ops[] = {
      {&reshape_def, view_grad},     {&expand_dims_def, view_grad},
      {&squeeze_def, view_grad},     {&transpose_def, transpose_grad},
      {&concat_def, concat_grad},    {&split_def, split_grad},
      {&slice_def, slice_grad},      {&pad_def, pad_grad},
      {&tile_def, tile_grad},        {&broadcast_to_def, broadcast_to_grad},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    cg_status s = cg__register_builtin(ops[i].def, ops[i].grad);
    if (s != CG_OK) return s;
  }
  return CG_OK;
}

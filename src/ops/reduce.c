/* reduce.c - reductions over a set of axes (Sum, Mean, Max, Min, Prod, LogSumExp) and the
 * index of the extremum along one axis (ArgMax, ArgMin): shape rules, kernels, gradients.
 * Kernels read the input in memory order (once; LogSumExp twice), row by row, accumulating
 * into one slot per output element (double for floats, int64 for integers). */
#include "kernel.h"
#include "parallel.h"
#include <stdlib.h>

/* ======================================================================================
 * Axes and shapes
 * ==================================================================================== */

/* mask[d]: whether node n reduces input axis d (attr "axes"; absent or empty: all axes).
 * Out-of-range and repeated axes are errors naming the op, the axis and the input shape. */
static cg_status reduced_axes(const cg_node *n, bool *mask)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int64_t axes[CG_ATTR_INTS_MAX];
  int n_axes = cg_node_attr_ints(n, "axes", axes, CG_ATTR_INTS_MAX);
  cg_status st = cg__axes_mask(cg_node_op_type(n), axes, n_axes < 0 ? 0 : n_axes, x->ndim, mask);
  if (st != CG_OK) {
    char cause[512];
    snprintf(cause, sizeof cause, "%s", cg_last_error());
    cg_set_error(st, "%s (input %s)", cause, cg__in_shape(n, 0));
  }
  return st;
}

/* x's shape with the reduced axes kept as size 1 (keepdims) or dropped; returns the rank. */
static int reduced_shape(const cg_tensor *x, const bool *mask, bool keepdims, int64_t *shape)
{
  int ndim = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (!mask[d]) shape[ndim++] = x->shape[d];
    else if (keepdims) shape[ndim++] = 1;
  }
  return ndim;
}

/* The reduced axes as a list, for calling cg_sum in a gradient; returns how many. */
static int mask_to_axes(int ndim, const bool *mask, int *axes)
{
  int n = 0;
  for (int d = 0; d < ndim; d++)
    if (mask[d]) axes[n++] = d;
  return n;
}

enum {
  REDUCE_INTS = 1 << 0,    /* i32 and i64 too, not only f32 and f64                       */
  REDUCE_NONEMPTY = 1 << 1 /* no identity element: a reduced axis of size 0 is an error  */
};

static cg_status check_dtype(const cg_node *n, unsigned flags)
{
  const cg_tensor *x = cg_node_input(n, 0);
  if (!(flags & REDUCE_INTS)) return cg__require_float(n, 0);
  if (x->dtype == CG_BOOL)
    return cg_set_error(CG_EDTYPE, "%s: input 0 must be f32, f64, i32 or i64, got %s %s",
                        cg_node_op_type(n), cg_dtype_name(x->dtype), cg__in_shape(n, 0));
  return CG_OK;
}

static cg_status check_nonempty(const cg_node *n, const bool *mask)
{
  const cg_tensor *x = cg_node_input(n, 0);
  for (int d = 0; d < x->ndim; d++)
    if (mask[d] && x->shape[d] == 0)
      return cg_set_error(CG_ESHAPE, "%s: cannot reduce over empty axis %d of %s",
                          cg_node_op_type(n), d, cg__in_shape(n, 0));
  return CG_OK;
}

/* The shape rule of every axes reduction: same dtype, reduced axes dropped or kept as 1. */
static cg_status reduce_infer(cg_node *n, unsigned flags)
{
  const cg_tensor *x = cg_node_input(n, 0);
  bool mask[CG_MAX_DIMS];
  cg_status st = check_dtype(n, flags);
  if (st == CG_OK) st = reduced_axes(n, mask);
  if (st == CG_OK && (flags & REDUCE_NONEMPTY)) st = check_nonempty(n, mask);
  if (st != CG_OK) return st;
  int64_t shape[CG_MAX_DIMS];
  int ndim = reduced_shape(x, mask, cg_node_attr_int(n, "keepdims", 0) != 0, shape);
  return cg_node_set_output(n, 0, x->dtype, ndim, shape);
}

/* ======================================================================================
 * Walking the input row by row
 * ==================================================================================== */

/* The input seen as rows of its last dimension, after dropping size-1 dims and merging
 * neighbours that are both reduced or both kept (so rows are as long as possible). */
typedef struct {
  int ndim;
  int64_t shape[CG_MAX_DIMS];
  int64_t out_stride[CG_MAX_DIMS]; /* 0 along reduced dims                               */
  int64_t rows, row_len;
  int64_t row_step;  /* out_stride of the last dim: 1 (kept) or 0 (reduced)                */
  int64_t out_size;
  int64_t count;     /* input elements per output element                                 */
} reduce_plan;

static void plan_init(reduce_plan *p, const cg_tensor *x, const bool *mask, int64_t out_size)
{
  p->out_size = out_size;
  p->count = out_size > 0 ? x->size / out_size : 0;
  if (x->size == 0) { /* nothing to walk (and dim products could overflow) */
    p->ndim = 1;
    p->shape[0] = p->rows = p->row_len = p->row_step = 0;
    return;
  }
  int64_t stride[CG_MAX_DIMS], s = 1;
  for (int d = x->ndim - 1; d >= 0; d--) {
    stride[d] = mask[d] ? 0 : s;
    if (!mask[d]) s *= x->shape[d];
  }
  p->ndim = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (x->shape[d] == 1) continue;
    int last = p->ndim - 1;
    bool both_reduced = last >= 0 && p->out_stride[last] == 0 && stride[d] == 0;
    bool both_kept = last >= 0 && stride[d] != 0 && p->out_stride[last] == stride[d] * x->shape[d];
    if (both_reduced || both_kept) {
      p->shape[last] *= x->shape[d];
      p->out_stride[last] = stride[d];
    } else {
      p->shape[p->ndim] = x->shape[d];
      p->out_stride[p->ndim++] = stride[d];
    }
  }
  if (p->ndim == 0) { /* a single element */
    p->shape[0] = 1;
    p->out_stride[0] = 0;
    p->ndim = 1;
  }
  p->row_len = p->shape[p->ndim - 1];
  p->row_step = p->out_stride[p->ndim - 1];
  p->rows = x->size / p->row_len;
}

/* Called once per input row: acc_offset is where the row's first output slot lives. */
typedef void (*row_fn_f)(void *ctx, int64_t acc_offset, int64_t step, const double *x,
                         int64_t len);
typedef void (*row_fn_i)(void *ctx, int64_t acc_offset, int64_t step, const int64_t *x,
                         int64_t len);

/* Offset of the first output slot of each row, advanced like an odometer over all dims but
 * the last. */
typedef struct {
  int64_t idx[CG_MAX_DIMS];
  int64_t out;
} row_cursor;

static void cursor_next(const reduce_plan *p, row_cursor *c)
{
  for (int d = p->ndim - 2; d >= 0; d--) {
    c->out += p->out_stride[d];
    if (++c->idx[d] < p->shape[d]) return;
    c->out -= p->out_stride[d] * p->shape[d];
    c->idx[d] = 0;
  }
}

/* Rows are handed to the row functions in chunks of at most this many elements, so that
 * converting f32 or i32 needs only a small buffer on the stack. */
#define ROW_CHUNK 1024

/* Calls fn on every row of float x, chunk by chunk, converted to double (f64 rows are
 * used in place). */
static void walk_rows_f(const reduce_plan *p, const cg_tensor *x, row_fn_f fn, void *ctx)
{
  double scratch[ROW_CHUNK];
  row_cursor c = {{0}, 0};
  for (int64_t r = 0; r < p->rows; r++) {
    for (int64_t j0 = 0; j0 < p->row_len; j0 += ROW_CHUNK) {
      int64_t len = p->row_len - j0 < ROW_CHUNK ? p->row_len - j0 : ROW_CHUNK;
      int64_t start = r * p->row_len + j0;
      const double *row = scratch;
      if (x->dtype == CG_F32) {
        const float *src = CG_F32P(x) + start;
        for (int64_t j = 0; j < len; j++) scratch[j] = src[j];
      } else {
        row = CG_F64P(x) + start;
      }
      fn(ctx, c.out + j0 * p->row_step, p->row_step, row, len);
    }
    cursor_next(p, &c);
  }
}

/* The same for integer x, converted to int64 (i64 rows are used in place). */
static void walk_rows_i(const reduce_plan *p, const cg_tensor *x, row_fn_i fn, void *ctx)
{
  int64_t scratch[ROW_CHUNK];
  row_cursor c = {{0}, 0};
  for (int64_t r = 0; r < p->rows; r++) {
    for (int64_t j0 = 0; j0 < p->row_len; j0 += ROW_CHUNK) {
      int64_t len = p->row_len - j0 < ROW_CHUNK ? p->row_len - j0 : ROW_CHUNK;
      int64_t start = r * p->row_len + j0;
      const int64_t *row = scratch;
      if (x->dtype == CG_I32) {
        const int32_t *src = CG_I32P(x) + start;
        for (int64_t j = 0; j < len; j++) scratch[j] = src[j];
      } else {
        row = CG_I64P(x) + start;
      }
      fn(ctx, c.out + j0 * p->row_step, p->row_step, row, len);
    }
    cursor_next(p, &c);
  }
}

/* ======================================================================================
 * The accumulating kernel shared by Sum, Mean, Max, Min and Prod
 * ==================================================================================== */

/* How one op folds rows into its accumulators. Integers wrap around on overflow (computed
 * in uint64, as two's complement hardware does, without undefined behaviour). */
typedef struct {
  double init_f;
  int64_t init_i;
  row_fn_f row_f;
  row_fn_i row_i;                     /* NULL: float only                                 */
  double (*finish_f)(double acc, int64_t count); /* NULL: the accumulator is the result  */
} reducer;

static void store_f(cg_tensor *y, const double *acc)
{
  if (y->dtype == CG_F32)
    for (int64_t i = 0; i < y->size; i++) CG_F32P(y)[i] = (float)acc[i];
  else
    memcpy(CG_F64P(y), acc, (size_t)y->size * sizeof *acc);
}

static void store_i(cg_tensor *y, const int64_t *acc)
{
  if (y->dtype == CG_I32)
    for (int64_t i = 0; i < y->size; i++) CG_I32P(y)[i] = (int32_t)acc[i];
  else
    memcpy(CG_I64P(y), acc, (size_t)y->size * sizeof *acc);
}

static cg_status reduce_floats(const reduce_plan *p, const reducer *r, const cg_tensor *x,
                               cg_tensor *y)
{
  double *acc = cg__malloc((size_t)p->out_size * sizeof *acc);
  if (!acc) return CG_ENOMEM;
  for (int64_t i = 0; i < p->out_size; i++) acc[i] = r->init_f;
  walk_rows_f(p, x, r->row_f, acc);
  if (r->finish_f)
    for (int64_t i = 0; i < p->out_size; i++) acc[i] = r->finish_f(acc[i], p->count);
  store_f(y, acc);
  free(acc);
  return CG_OK;
}

static cg_status reduce_ints(const reduce_plan *p, const reducer *r, const cg_tensor *x,
                             cg_tensor *y)
{
  int64_t *acc = cg__malloc((size_t)p->out_size * sizeof *acc);
  if (!acc) return CG_ENOMEM;
  for (int64_t i = 0; i < p->out_size; i++) acc[i] = r->init_i;
  walk_rows_i(p, x, r->row_i, acc);
  store_i(y, acc);
  free(acc);
  return CG_OK;
}

/* ======================================================================================
 * Column sums: Sum and Mean over the leading axes of a float tensor (a bias gradient),
 * i.e. of [rows, cols] over rows. Rows go in blocks of COLUMN_BLOCK whose
 * partial sums (double) are added in block order, so the threads' split never changes the
 * result; the blocks are spread over the threads.
 * ==================================================================================== */

#define COLUMN_BLOCK 256

typedef struct {
  const cg_tensor *x;
  int64_t rows, cols;
  double *partial; /* [blocks, cols] */
} column_sums;

/* Each block's column sums, COLUMN_CHUNK columns at a time held in registers over the
 * block's rows (acc[j] went through memory once per row before: a load and a store per
 * element); every column still adds its rows in order, so the sums are the same. */
#define COLUMN_CHUNK 32

CG_VECTOR_CLONES
static void column_blocks(void *ctx, int64_t begin, int64_t end)
{
  const column_sums *c = ctx;
  int64_t cols = c->cols;
  for (int64_t blk = begin; blk < end; blk++) {
    double *restrict acc = c->partial + blk * cols;
    int64_t r0 = blk * COLUMN_BLOCK, r1 = r0 + COLUMN_BLOCK < c->rows ? r0 + COLUMN_BLOCK : c->rows;
    int64_t j0 = 0;
    for (; j0 + COLUMN_CHUNK <= cols; j0 += COLUMN_CHUNK) {
      double s[COLUMN_CHUNK] = {0};
      if (c->x->dtype == CG_F32) {
        const float *restrict x = CG_F32P(c->x) + j0;
        for (int64_t r = r0; r < r1; r++)
          for (int k = 0; k < COLUMN_CHUNK; k++) s[k] += x[r * cols + k];
      } else {
        const double *restrict x = CG_F64P(c->x) + j0;
        for (int64_t r = r0; r < r1; r++)
          for (int k = 0; k < COLUMN_CHUNK; k++) s[k] += x[r * cols + k];
      }
      for (int k = 0; k < COLUMN_CHUNK; k++) acc[j0 + k] = s[k];
    }
    if (j0 == cols) continue;
    for (int64_t j = j0; j < cols; j++) acc[j] = 0; /* the last columns, row by row */
    for (int64_t r = r0; r < r1; r++) {
      if (c->x->dtype == CG_F32) {
        const float *restrict row = CG_F32P(c->x) + r * cols;
        for (int64_t j = j0; j < cols; j++) acc[j] += row[j];
      } else {
        const double *restrict row = CG_F64P(c->x) + r * cols;
        for (int64_t j = j0; j < cols; j++) acc[j] += row[j];
      }
    }
  }
}

static void sum_row_f(void *ctx, int64_t off, int64_t step, const double *x, int64_t len);

/* Sum or Mean (they share sum_row_f) of a float [rows, cols] over its rows. */
static bool is_column_sum(const reduce_plan *p, const reducer *r, const cg_tensor *x)
{
  return r->row_f == sum_row_f && cg_dtype_is_float(x->dtype) && x->size > 0 && p->ndim == 2 &&
         p->out_stride[0] == 0 && p->out_stride[1] == 1;
}

static cg_status reduce_columns(const reduce_plan *p, const reducer *r, const cg_tensor *x,
                                cg_tensor *y)
{
  int64_t blocks = (p->rows + COLUMN_BLOCK - 1) / COLUMN_BLOCK;
  column_sums c = {x, p->rows, p->row_len, cg__malloc((size_t)(blocks * p->row_len) * sizeof(double))};
  if (!c.partial) return CG_ENOMEM;
  cg__parallel_for(blocks, CG_PARALLEL_MIN_ELEMENTS / (COLUMN_BLOCK * p->row_len) + 1, column_blocks, &c);
  double *acc = c.partial; /* block 0's row collects the others, in order */
  for (int64_t blk = 1; blk < blocks; blk++)
    for (int64_t j = 0; j < p->row_len; j++) acc[j] += c.partial[blk * p->row_len + j];
  if (r->finish_f)
    for (int64_t j = 0; j < p->row_len; j++) acc[j] = r->finish_f(acc[j], p->count);
  store_f(y, acc);
  free(c.partial);
  return CG_OK;
}

/* ======================================================================================
 * Row sums: Sum and Mean over the last axes of a float tensor, i.e. of [rows, cols] over
 * cols (rows = 1: everything, a loss or <g, v>). Each row is cut into blocks of ROW_BLOCK
 * whose sums (double, ROW_LANES running sums) are added in block order; the (row, block) pieces
 * are spread over the threads, so their split never changes the result.
 * ==================================================================================== */

#define ROW_BLOCK 8192

typedef struct {
  const cg_tensor *x;
  int64_t rows, cols, blocks; /* blocks per row */
  double *partial;            /* [rows, blocks]  */
} row_sums;

/* ROW_LANES running sums: four vector registers of AVX-512 doubles, so that four adds are
 * in flight at a time (one register's chain of dependent adds held the sum of a 200 K
 * element <g, v> to half the speed). Pieces of ROW_WIDE elements or more use them all;
 * what is left, and shorter pieces, go through the first eight lanes, then one. Combined
 * pairwise, in a fixed order. */
#define ROW_LANES 32
#define ROW_WIDE 256 /* below it, folding 32 lanes cost more than it saved ([128, 40]) */

/* Lanes 8.. are still +0 in a short piece: then they are skipped, which changes nothing
 * (x + +0 is x, and no lane holds -0). */
static inline __attribute__((always_inline)) double combine_lanes(double *part, bool wide)
{
  if (wide) {
    for (int k = 0; k < 16; k++) part[k] += part[k + 16];
    for (int k = 0; k < 8; k++) part[k] += part[k + 8];
  }
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

CG_VECTOR_CLONES
static void row_pieces(void *ctx, int64_t begin, int64_t end)
{
  const row_sums *c = ctx;
  for (int64_t piece = begin; piece < end; piece++) {
    int64_t r = piece / c->blocks, j0 = piece % c->blocks * ROW_BLOCK;
    int64_t j1 = j0 + ROW_BLOCK < c->cols ? j0 + ROW_BLOCK : c->cols;
    double part[ROW_LANES] = {0};
    int64_t j = j0;
    bool wide = j1 - j0 >= ROW_WIDE;
    if (c->x->dtype == CG_F32) {
      const float *restrict row = CG_F32P(c->x) + r * c->cols;
      for (; wide && j + ROW_LANES <= j1; j += ROW_LANES)
        for (int k = 0; k < ROW_LANES; k++) part[k] += row[j + k];
      for (; j + 8 <= j1; j += 8)
        for (int k = 0; k < 8; k++) part[k] += row[j + k];
      for (; j < j1; j++) part[0] += row[j];
    } else {
      const double *restrict row = CG_F64P(c->x) + r * c->cols;
      for (; wide && j + ROW_LANES <= j1; j += ROW_LANES)
        for (int k = 0; k < ROW_LANES; k++) part[k] += row[j + k];
      for (; j + 8 <= j1; j += 8)
        for (int k = 0; k < 8; k++) part[k] += row[j + k];
      for (; j < j1; j++) part[0] += row[j];
    }
    c->partial[piece] = combine_lanes(part, wide);
  }
}

/* Sum or Mean of a float [rows, cols] over its columns (the plan's last dim is reduced). */
static bool is_row_sum(const reduce_plan *p, const reducer *r, const cg_tensor *x)
{
  return r->row_f == sum_row_f && cg_dtype_is_float(x->dtype) && x->size > 0 && p->row_step == 0 &&
         (p->ndim == 1 || (p->ndim == 2 && p->out_stride[0] == 1));
}

static cg_status reduce_rows(const reduce_plan *p, const reducer *r, const cg_tensor *x,
                             cg_tensor *y)
{
  int64_t blocks = (p->row_len + ROW_BLOCK - 1) / ROW_BLOCK;
  row_sums c = {x, p->rows, p->row_len, blocks,
                cg__malloc((size_t)(p->rows * blocks) * sizeof(double))};
  double *acc = cg__malloc((size_t)p->rows * sizeof(double));
  if (!c.partial || !acc) {
    free(c.partial);
    free(acc);
    return CG_ENOMEM;
  }
  /* a piece holds up to ROW_BLOCK elements, fewer when rows are short ([128, 10] over the
     classes): a thread gets CG_PARALLEL_MIN_ELEMENTS elements' worth at least */
  int64_t piece_len = p->row_len < ROW_BLOCK ? p->row_len : ROW_BLOCK;
  cg__parallel_for(p->rows * blocks, CG_PARALLEL_MIN_ELEMENTS / piece_len + 1, row_pieces, &c);
  for (int64_t i = 0; i < p->rows; i++) {
    acc[i] = 0;
    for (int64_t blk = 0; blk < blocks; blk++) acc[i] += c.partial[i * blocks + blk];
    if (r->finish_f) acc[i] = r->finish_f(acc[i], p->count);
  }
  store_f(y, acc);
  free(c.partial);
  free(acc);
  return CG_OK;
}

static cg_status reduce_run(cg_node *n, const reducer *r)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  bool mask[CG_MAX_DIMS];
  cg_status st = reduced_axes(n, mask);
  if (st != CG_OK) return st;
  if (y->size == 0) return CG_OK;
  reduce_plan p;
  plan_init(&p, x, mask, y->size);
  if (is_column_sum(&p, r, x)) return reduce_columns(&p, r, x, y);
  if (is_row_sum(&p, r, x)) return reduce_rows(&p, r, x, y);
  if (cg_dtype_is_float(x->dtype)) return reduce_floats(&p, r, x, y);
  if (r->row_i && (x->dtype == CG_I32 || x->dtype == CG_I64)) return reduce_ints(&p, r, x, y);
  return cg_set_error(CG_EDTYPE, "%s: no kernel for dtype %s", cg_node_op_type(n),
                      cg_dtype_name(x->dtype));
}

/* ======================================================================================
 * Gradient helpers
 * ==================================================================================== */

/* t (dy or y, shaped like the output) reshaped so it broadcasts against the input: the
 * reduced axes kept as size 1. */
static cg_tensor *as_keepdims(const cg_node *op, cg_tensor *t)
{
  const cg_tensor *x = cg_node_input(op, 0);
  bool mask[CG_MAX_DIMS];
  if (reduced_axes(op, mask) != CG_OK) return NULL;
  int64_t shape[CG_MAX_DIMS];
  int ndim = reduced_shape(x, mask, true, shape);
  return cg_reshape(t, ndim, shape);
}

/* dy copied back over every reduced axis: the gradient of Sum. */
static cg_tensor *spread_back(const cg_node *op, cg_tensor *dy)
{
  cg_tensor *x = cg_node_input(op, 0);
  return cg__broadcast_as(as_keepdims(op, dy), x);
}

static cg_tensor *apply_reduce(const cg_op_def *def, cg_tensor *x, const int *axes, int n_axes,
                               int keepdims)
{
  if (x && (n_axes < 0 || n_axes > CG_ATTR_INTS_MAX)) {
    cg_set_error(CG_EINVAL, "%s: n_axes must be in [0, %d], got %d", def->name,
                 CG_ATTR_INTS_MAX, n_axes);
    return NULL;
  }
  cg_attrs a = {0};
  if (axes && n_axes > 0) {
    int64_t v[CG_ATTR_INTS_MAX];
    for (int i = 0; i < n_axes; i++) v[i] = axes[i];
    cg_attrs_set_ints(&a, "axes", v, n_axes);
  }
  cg_attrs_set_int(&a, "keepdims", keepdims != 0);
  return cg_apply1(def, x, &a);
}

/* ======================================================================================
 * Sum: y = sum of x over axes;  dx = dy broadcast back over the reduced axes
 * ==================================================================================== */

static void sum_row_f(void *ctx, int64_t off, int64_t step, const double *x, int64_t len)
{
  double *acc = (double *)ctx + off;
  if (step) {
    for (int64_t j = 0; j < len; j++) acc[j] += x[j];
    return;
  }
  /* independent partial sums: the adds overlap instead of waiting on one another */
  double part[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; k++) part[k] += x[j + k];
  for (; j < len; j++) part[0] += x[j];
  acc[0] += ((part[0] + part[1]) + (part[2] + part[3])) +
            ((part[4] + part[5]) + (part[6] + part[7]));
}

static void sum_row_i(void *ctx, int64_t off, int64_t step, const int64_t *x, int64_t len)
{
  int64_t *acc = (int64_t *)ctx + off;
  for (int64_t j = 0; j < len; j++)
    acc[j * step] = (int64_t)((uint64_t)acc[j * step] + (uint64_t)x[j]);
}

static const reducer sum_reducer = {0, 0, sum_row_f, sum_row_i, NULL};

static cg_status sum_infer(cg_node *n) { return reduce_infer(n, REDUCE_INTS); }
static cg_status sum_run(cg_node *n) { return reduce_run(n, &sum_reducer); }

static cg_status sum_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = spread_back(op, dy[0]);
  return cg_status_of(dx[0]);
}

static const cg_op_def sum_def = {.name = "Sum", .n_inputs = 1, .infer = sum_infer, .run = sum_run};

cg_tensor *cg_sum(cg_tensor *x, const int *axes, int n_axes, int keepdims)
{
  return apply_reduce(&sum_def, x, axes, n_axes, keepdims);
}

/* ======================================================================================
 * Mean: y = sum of x over axes / count;  dx = dy broadcast back / count
 * ==================================================================================== */

static double mean_finish(double acc, int64_t count) { return acc / (double)count; }

static const reducer mean_reducer = {0, 0, sum_row_f, NULL, mean_finish};

static cg_status mean_infer(cg_node *n) { return reduce_infer(n, 0); }
static cg_status mean_run(cg_node *n) { return reduce_run(n, &mean_reducer); }

static cg_status mean_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0), *y = cg_node_output(op, 0);
  /* In a graph with unknown dims the count is only known when it runs: count it there. */
  cg_tensor *count = x->size >= 0 && y->size >= 0
                         ? cg_scalar_like(dy[0], y->size > 0 ? (double)(x->size / y->size) : 1.0)
                         : cg_div(cg_sum(cg_ones_like(x), NULL, 0, 0), cg_sum(cg_ones_like(y), NULL, 0, 0));
  /* divided before it is spread: one pass over x's size instead of two, the same numbers */
  dx[0] = spread_back(op, cg_div(dy[0], count));
  return cg_status_of(dx[0]);
}

static const cg_op_def mean_def = {.name = "Mean", .n_inputs = 1, .infer = mean_infer,
                                   .run = mean_run};

cg_tensor *cg_mean(cg_tensor *x, const int *axes, int n_axes, int keepdims)
{
  return apply_reduce(&mean_def, x, axes, n_axes, keepdims);
}

/* ======================================================================================
 * Max, Min: y = max (min) of x over axes, NaN if any is NaN;
 * dx = dy shared equally among the elements equal to y (like TensorFlow)
 * ==================================================================================== */

static void max_row_f(void *ctx, int64_t off, int64_t step, const double *x, int64_t len)
{
  double *acc = (double *)ctx + off;
  for (int64_t j = 0; j < len; j++)
    if (x[j] > acc[j * step] || isnan(x[j])) acc[j * step] = x[j];
}

static void min_row_f(void *ctx, int64_t off, int64_t step, const double *x, int64_t len)
{
  double *acc = (double *)ctx + off;
  for (int64_t j = 0; j < len; j++)
    if (x[j] < acc[j * step] || isnan(x[j])) acc[j * step] = x[j];
}

static void max_row_i(void *ctx, int64_t off, int64_t step, const int64_t *x, int64_t len)
{
  int64_t *acc = (int64_t *)ctx + off;
  for (int64_t j = 0; j < len; j++)
    if (x[j] > acc[j * step]) acc[j * step] = x[j];
}

static void min_row_i(void *ctx, int64_t off, int64_t step, const int64_t *x, int64_t len)
{
  int64_t *acc = (int64_t *)ctx + off;
  for (int64_t j = 0; j < len; j++)
    if (x[j] < acc[j * step]) acc[j * step] = x[j];
}

static const reducer max_reducer = {-INFINITY, INT64_MIN, max_row_f, max_row_i, NULL};
static const reducer min_reducer = {INFINITY, INT64_MAX, min_row_f, min_row_i, NULL};

static cg_status extremum_infer(cg_node *n)
{
  return reduce_infer(n, REDUCE_INTS | REDUCE_NONEMPTY);
}
static cg_status max_run(cg_node *n) { return reduce_run(n, &max_reducer); }
static cg_status min_run(cg_node *n) { return reduce_run(n, &min_reducer); }

static cg_status extremum_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  bool mask[CG_MAX_DIMS];
  int axes[CG_MAX_DIMS];
  cg_status st = reduced_axes(op, mask);
  if (st != CG_OK) return st;
  int n_axes = mask_to_axes(x->ndim, mask, axes);
  cg_tensor *is_extremum = cg_cast(cg_equal(x, as_keepdims(op, cg_node_output(op, 0))), x->dtype);
  cg_tensor *ties = cg_sum(is_extremum, axes, n_axes, 1);
  dx[0] = cg_mul(cg_div(is_extremum, ties), as_keepdims(op, dy[0]));
  return cg_status_of(dx[0]);
}

static const cg_op_def max_def = {.name = "Max", .n_inputs = 1, .infer = extremum_infer,
                                  .run = max_run};
static const cg_op_def min_def = {.name = "Min", .n_inputs = 1, .infer = extremum_infer,
                                  .run = min_run};

cg_tensor *cg_max(cg_tensor *x, const int *axes, int n_axes, int keepdims)
{
  return apply_reduce(&max_def, x, axes, n_axes, keepdims);
}

cg_tensor *cg_min(cg_tensor *x, const int *axes, int n_axes, int keepdims)
{
  return apply_reduce(&min_def, x, axes, n_axes, keepdims);
}

/* ======================================================================================
 * Prod: y = product of x over axes;  dx = dy * y / x
 * (assumes x has no zeros, like TensorFlow's fast path; a zero gives inf or NaN there)
 * ==================================================================================== */

static void prod_row_f(void *ctx, int64_t off, int64_t step, const double *x, int64_t len)
{
  double *acc = (double *)ctx + off;
  for (int64_t j = 0; j < len; j++) acc[j * step] *= x[j];
}

static void prod_row_i(void *ctx, int64_t off, int64_t step, const int64_t *x, int64_t len)
{
  int64_t *acc = (int64_t *)ctx + off;
  for (int64_t j = 0; j < len; j++)
    acc[j * step] = (int64_t)((uint64_t)acc[j * step] * (uint64_t)x[j]);
}

static const reducer prod_reducer = {1, 1, prod_row_f, prod_row_i, NULL};

static cg_status prod_infer(cg_node *n) { return reduce_infer(n, REDUCE_INTS); }
static cg_status prod_run(cg_node *n) { return reduce_run(n, &prod_reducer); }

static cg_status prod_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *y = as_keepdims(op, cg_node_output(op, 0));
  dx[0] = cg_div(cg_mul(as_keepdims(op, dy[0]), y), cg_node_input(op, 0));
  return cg_status_of(dx[0]);
}

static const cg_op_def prod_def = {.name = "Prod", .n_inputs = 1, .infer = prod_infer,
                                   .run = prod_run};

cg_tensor *cg_prod(cg_tensor *x, const int *axes, int n_axes, int keepdims)
{
  return apply_reduce(&prod_def, x, axes, n_axes, keepdims);
}

/* ======================================================================================
 * LogSumExp: y = m + ln sum e^(x - m), m = max of x over axes (finite for |x| ~ 1000;
 * y = m when m is infinite);  dx = dy * e^(x - y)
 * ==================================================================================== */

typedef struct {
  const double *max;
  double *sum;
} lse_acc;

static void lse_row(void *ctx, int64_t off, int64_t step, const double *x, int64_t len)
{
  const lse_acc *a = ctx;
  const double *m = a->max + off;
  double *s = a->sum + off;
  for (int64_t j = 0; j < len; j++) s[j * step] += exp(x[j] - m[j * step]);
}

static cg_status logsumexp_infer(cg_node *n) { return reduce_infer(n, 0); }

static cg_status logsumexp_run(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  bool mask[CG_MAX_DIMS];
  cg_status st = reduced_axes(n, mask);
  if (st != CG_OK) return st;
  if (y->size == 0) return CG_OK;
  reduce_plan p;
  plan_init(&p, x, mask, y->size);
  double *max = cg__malloc((size_t)p.out_size * sizeof *max);
  double *sum = max ? cg__calloc((size_t)p.out_size, sizeof *sum) : NULL;
  if (!sum) {
    free(max);
    return CG_ENOMEM;
  }
  for (int64_t i = 0; i < p.out_size; i++) max[i] = -INFINITY;
  walk_rows_f(&p, x, max_row_f, max);
  lse_acc acc = {max, sum};
  walk_rows_f(&p, x, lse_row, &acc);
  for (int64_t i = 0; i < p.out_size; i++) sum[i] = isinf(max[i]) ? max[i] : max[i] + log(sum[i]);
  store_f(y, sum);
  free(max);
  free(sum);
  return CG_OK;
}

static cg_status logsumexp_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  cg_tensor *softmax = cg_exp(cg_sub(x, as_keepdims(op, cg_node_output(op, 0))));
  dx[0] = cg_mul(as_keepdims(op, dy[0]), softmax);
  return cg_status_of(dx[0]);
}

static const cg_op_def logsumexp_def = {
    .name = "LogSumExp", .n_inputs = 1, .infer = logsumexp_infer, .run = logsumexp_run};

cg_tensor *cg_logsumexp(cg_tensor *x, const int *axes, int n_axes, int keepdims)
{
  return apply_reduce(&logsumexp_def, x, axes, n_axes, keepdims);
}

/* ======================================================================================
 * ArgMax, ArgMin: y = i64 index along attr "axis" of the first maximum (minimum); a NaN
 * counts as the extremum. No gradient.
 * ==================================================================================== */

/* Whether v beats the best so far (strictly, so the first of equal values stays). */
typedef struct {
  bool (*better_f)(double v, double best);
  bool (*better_i)(int64_t v, int64_t best);
} arg_rule;

static bool greater_f(double v, double best) { return v > best || (isnan(v) && !isnan(best)); }
static bool less_f(double v, double best) { return v < best || (isnan(v) && !isnan(best)); }
static bool greater_i(int64_t v, int64_t best) { return v > best; }
static bool less_i(int64_t v, int64_t best) { return v < best; }

static const arg_rule argmax_rule = {greater_f, greater_i};
static const arg_rule argmin_rule = {less_f, less_i};

/* Attr "axis" (default 0) in [0, rank). */
static cg_status arg_axis(const cg_node *n, int *axis)
{
  return cg__normalize_axis(cg_node_op_type(n), cg_node_attr_int(n, "axis", 0),
                            cg_node_input(n, 0)->ndim, axis);
}

static cg_status arg_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0);
  int axis;
  cg_status st = check_dtype(n, REDUCE_INTS);
  if (st == CG_OK) st = arg_axis(n, &axis);
  if (st != CG_OK) return st;
  if (x->shape[axis] == 0)
    return cg_set_error(CG_ESHAPE, "%s: cannot take the index over empty axis %d of %s",
                        cg_node_op_type(n), axis, cg__in_shape(n, 0));
  int64_t shape[CG_MAX_DIMS];
  int ndim = 0;
  for (int d = 0; d < x->ndim; d++)
    if (d != axis) shape[ndim++] = x->shape[d];
  return cg_node_set_output(n, 0, CG_I64, ndim, shape);
}

/* x seen as [outer, len, inner] around the axis. */
typedef struct {
  int64_t outer, len, inner;
} arg_layout;

static void arg_floats(const arg_layout *l, const arg_rule *rule, const cg_tensor *x, int64_t *idx,
                       double *best)
{
  for (int64_t o = 0; o < l->outer; o++)
    for (int64_t k = 0; k < l->len; k++) {
      int64_t base = (o * l->len + k) * l->inner;
      for (int64_t i = 0; i < l->inner; i++) {
        double v = x->dtype == CG_F32 ? CG_F32P(x)[base + i] : CG_F64P(x)[base + i];
        if (k == 0 || rule->better_f(v, best[i])) {
          best[i] = v;
          idx[o * l->inner + i] = k;
        }
      }
    }
}

static void arg_ints(const arg_layout *l, const arg_rule *rule, const cg_tensor *x, int64_t *idx,
                     int64_t *best)
{
  for (int64_t o = 0; o < l->outer; o++)
    for (int64_t k = 0; k < l->len; k++) {
      int64_t base = (o * l->len + k) * l->inner;
      for (int64_t i = 0; i < l->inner; i++) {
        int64_t v = x->dtype == CG_I32 ? CG_I32P(x)[base + i] : CG_I64P(x)[base + i];
        if (k == 0 || rule->better_i(v, best[i])) {
          best[i] = v;
          idx[o * l->inner + i] = k;
        }
      }
    }
}

static cg_status arg_run(cg_node *n, const arg_rule *rule)
{
  const cg_tensor *x = cg_node_input(n, 0);
  cg_tensor *y = cg_node_output(n, 0);
  int axis;
  cg_status st = arg_axis(n, &axis);
  if (st != CG_OK) return st;
  if (y->size == 0) return CG_OK;
  arg_layout l = {1, x->shape[axis], 1};
  for (int d = 0; d < axis; d++) l.outer *= x->shape[d];
  for (int d = axis + 1; d < x->ndim; d++) l.inner *= x->shape[d];
  /* best holds doubles or int64s: both 8 bytes */
  void *best = cg__malloc((size_t)l.inner * sizeof(int64_t));
  if (!best) return CG_ENOMEM;
  if (cg_dtype_is_float(x->dtype)) arg_floats(&l, rule, x, CG_I64P(y), best);
  else arg_ints(&l, rule, x, CG_I64P(y), best);
  free(best);
  return CG_OK;
}

static cg_status argmax_run(cg_node *n) { return arg_run(n, &argmax_rule); }
static cg_status argmin_run(cg_node *n) { return arg_run(n, &argmin_rule); }

static const cg_op_def argmax_def = {.name = "ArgMax", .n_inputs = 1, .infer = arg_infer,
                                     .run = argmax_run, .flags = CG_OP_NOT_DIFFERENTIABLE};
static const cg_op_def argmin_def = {.name = "ArgMin", .n_inputs = 1, .infer = arg_infer,
                                     .run = argmin_run, .flags = CG_OP_NOT_DIFFERENTIABLE};

static cg_tensor *apply_arg(const cg_op_def *def, cg_tensor *x, int axis)
{
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "axis", axis);
  return cg_apply1(def, x, &a);
}

cg_tensor *cg_argmax(cg_tensor *x, int axis) { return apply_arg(&argmax_def, x, axis); }
cg_tensor *cg_argmin(cg_tensor *x, int axis) { return apply_arg(&argmin_def, x, axis); }

/* ======================================================================================
 * Registration
 * ==================================================================================== */

cg_status cg__register_reduce_ops(void)
{
  static const struct {
    const cg_op_def *def;
    cg_grad_fn grad;
  } ops[] = {
      {&sum_def, sum_grad},         {&mean_def, mean_grad},
      {&max_def, extremum_grad},    {&min_def, extremum_grad},
      {&prod_def, prod_grad},       {&logsumexp_def, logsumexp_grad},
      {&argmax_def, NULL},          {&argmin_def, NULL},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    cg_status st = cg__register_builtin(ops[i].def, ops[i].grad);
    if (st != CG_OK) return st;
  }
  return CG_OK;
}

/* matmul.c - MatMul: [..., m, k] x [..., k, n] -> [..., m, n] with broadcast batch dims and
 * optional transposes of either operand's last two dims. f32/f64 run through OpenBLAS
 * (cg__gemm: one GEMM per output matrix, or one for the whole batch when B is shared, split
 * over the threads when large); i32/i64 and
 * the tests use the plain reference kernel, cg__matmul_reference. */
#include "kernel.h"
#include "matmul.h"
#include "parallel.h"
#include <limits.h>

/* ======================================================================================
 * Geometry: the shape rule shared by the shape inference and both kernels
 * ==================================================================================== */

typedef struct {
  int64_t m, n, k;
  bool transpose_a, transpose_b;
  int batch_ndim;                   /* output batch dims (all but the last two)         */
  int64_t batch_shape[CG_MAX_DIMS];
  /* per output batch dim, in elements: where that dim moves in a and b (0: broadcast) */
  int64_t a_stride[CG_MAX_DIMS], b_stride[CG_MAX_DIMS];
} matmul_geom;

static const char *transpose_note(bool ta, bool tb)
{
  if (ta && tb) return " (both transposed)";
  if (ta) return " (a transposed)";
  if (tb) return " (b transposed)";
  return "";
}

/* Checks ranks, inner dims and batch broadcasting; fills g but for the strides. */
static cg_status matmul_geometry(const cg_tensor *a, const cg_tensor *b, bool ta, bool tb,
                                 matmul_geom *g)
{
  char sa[160], sb[160];
  cg__fmt_shape(a->ndim, a->shape, sa, sizeof sa);
  cg__fmt_shape(b->ndim, b->shape, sb, sizeof sb);
  if (a->ndim < 2 || b->ndim < 2)
    return cg_set_error(CG_ESHAPE, "MatMul: inputs need rank >= 2 (use cg_reshape or "
                        "cg_expand_dims for vectors): %s x %s", sa, sb);
  int64_t ka = a->shape[a->ndim - (ta ? 2 : 1)];
  int64_t kb = b->shape[b->ndim - (tb ? 1 : 2)];
  if (ka != kb)
    return cg_set_error(CG_ESHAPE, "MatMul: inner dimensions differ: %s x %s%s", sa, sb,
                        transpose_note(ta, tb));
  g->m = a->shape[a->ndim - (ta ? 1 : 2)];
  g->n = b->shape[b->ndim - (tb ? 2 : 1)];
  g->k = ka;
  g->transpose_a = ta;
  g->transpose_b = tb;
  int na = a->ndim - 2, nb = b->ndim - 2;
  g->batch_ndim = na > nb ? na : nb;
  for (int d = 0; d < g->batch_ndim; d++) {
    int64_t da = d < g->batch_ndim - na ? 1 : a->shape[d - (g->batch_ndim - na)];
    int64_t db = d < g->batch_ndim - nb ? 1 : b->shape[d - (g->batch_ndim - nb)];
    if (da != db && da != 1 && db != 1)
      return cg_set_error(CG_ESHAPE, "MatMul: batch dimensions do not broadcast: %s x %s", sa, sb);
    g->batch_shape[d] = da == 1 ? db : da;
  }
  return CG_OK;
}

/* Strides of a's and b's batch dims, right-aligned to the output's. Called only for a
 * non-empty output, where every product stays within an operand's size (or is 0). */
static void batch_strides(const cg_tensor *a, const cg_tensor *b, matmul_geom *g)
{
  int64_t sa = g->m * g->k, sb = g->k * g->n;
  for (int d = g->batch_ndim - 1; d >= 0; d--) {
    int ia = d - (g->batch_ndim - (a->ndim - 2)), ib = d - (g->batch_ndim - (b->ndim - 2));
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    g->a_stride[d] = da == 1 ? 0 : sa;
    g->b_stride[d] = db == 1 ? 0 : sb;
    sa *= da;
    sb *= db;
  }
}

/* Where output matrix number bi reads its a and b matrices. */
static void batch_offsets(const matmul_geom *g, int64_t bi, int64_t *a_off, int64_t *b_off)
{
  *a_off = *b_off = 0;
  for (int d = g->batch_ndim - 1; d >= 0; d--) {
    int64_t i = bi % g->batch_shape[d];
    bi /= g->batch_shape[d];
    *a_off += i * g->a_stride[d];
    *b_off += i * g->b_stride[d];
  }
}

static int64_t batch_count(const matmul_geom *g)
{
  int64_t count = 1;
  for (int d = 0; d < g->batch_ndim; d++) count *= g->batch_shape[d];
  return count;
}

/* ======================================================================================
 * The reference kernel (every dtype; the integer kernel)
 * ==================================================================================== */

static inline double elem_f(const cg_tensor *t, int64_t i)
{
  return t->dtype == CG_F32 ? CG_F32P(t)[i] : CG_F64P(t)[i];
}

static inline int64_t elem_i(const cg_tensor *t, int64_t i)
{
  return t->dtype == CG_I32 ? CG_I32P(t)[i] : CG_I64P(t)[i];
}

/* Flat offsets of op(a)[i, p] and op(b)[p, j] within one matrix. */
static inline int64_t a_at(const matmul_geom *g, int64_t i, int64_t p)
{
  return g->transpose_a ? p * g->m + i : i * g->k + p;
}

static inline int64_t b_at(const matmul_geom *g, int64_t p, int64_t j)
{
  return g->transpose_b ? j * g->k + p : p * g->n + j;
}

static void reference_floats(const matmul_geom *g, const cg_tensor *a, const cg_tensor *b,
                             cg_tensor *out)
{
  int64_t batch = batch_count(g);
  for (int64_t bi = 0; bi < batch; bi++) {
    int64_t ao, bo, co = bi * g->m * g->n;
    batch_offsets(g, bi, &ao, &bo);
    for (int64_t i = 0; i < g->m; i++)
      for (int64_t j = 0; j < g->n; j++) {
        double acc = 0;
        for (int64_t p = 0; p < g->k; p++)
          acc += elem_f(a, ao + a_at(g, i, p)) * elem_f(b, bo + b_at(g, p, j));
        cg__store(out->dtype, out->data, co + i * g->n + j, acc);
      }
  }
}

/* Integers wrap around: the sum is taken in uint64 (no undefined overflow), then truncated. */
static void reference_ints(const matmul_geom *g, const cg_tensor *a, const cg_tensor *b,
                           cg_tensor *out)
{
  int64_t batch = batch_count(g);
  for (int64_t bi = 0; bi < batch; bi++) {
    int64_t ao, bo, co = bi * g->m * g->n;
    batch_offsets(g, bi, &ao, &bo);
    for (int64_t i = 0; i < g->m; i++)
      for (int64_t j = 0; j < g->n; j++) {
        uint64_t acc = 0;
        for (int64_t p = 0; p < g->k; p++)
          acc += (uint64_t)elem_i(a, ao + a_at(g, i, p)) * (uint64_t)elem_i(b, bo + b_at(g, p, j));
        if (out->dtype == CG_I32) CG_I32P(out)[co + i * g->n + j] = (int32_t)(int64_t)acc;
        else CG_I64P(out)[co + i * g->n + j] = (int64_t)acc;
      }
  }
}

static cg_status check_out_shape(const matmul_geom *g, const cg_tensor *out)
{
  int64_t shape[CG_MAX_DIMS];
  memcpy(shape, g->batch_shape, (size_t)g->batch_ndim * sizeof shape[0]);
  shape[g->batch_ndim] = g->m;
  shape[g->batch_ndim + 1] = g->n;
  if (cg__shape_equal(g->batch_ndim + 2, shape, out->ndim, out->shape)) return CG_OK;
  char want[160], got[160];
  return cg_set_error(CG_ESHAPE, "MatMul: output shape %s, expected %s",
                      cg__fmt_shape(out->ndim, out->shape, got, sizeof got),
                      cg__fmt_shape(g->batch_ndim + 2, shape, want, sizeof want));
}

cg_status cg__matmul_reference(const cg_tensor *a, const cg_tensor *b, int transpose_a,
                               int transpose_b, cg_tensor *out)
{
  if (!a || !b || !out) return cg_set_error(CG_EINVAL, "MatMul: NULL tensor");
  if (a->dtype != b->dtype || a->dtype != out->dtype || a->dtype == CG_BOOL)
    return cg_set_error(CG_EDTYPE, "MatMul: dtypes %s x %s -> %s (want one of f32, f64, i32, i64)",
                        cg_dtype_name(a->dtype), cg_dtype_name(b->dtype),
                        cg_dtype_name(out->dtype));
  matmul_geom g;
  cg_status st = matmul_geometry(a, b, transpose_a != 0, transpose_b != 0, &g);
  if (st == CG_OK) st = check_out_shape(&g, out);
  if (st != CG_OK || out->size == 0) return st;
  batch_strides(a, b, &g);
  if (cg_dtype_is_float(a->dtype)) reference_floats(&g, a, b, out);
  else reference_ints(&g, a, b, out);
  return CG_OK;
}

/* ======================================================================================
 * The BLAS kernel (f32, f64)
 * ==================================================================================== */

/* The whole batch is one GEMM of [batch*m, k] x [k, n] when every output matrix uses the
 * same B and A's matrices lie one after another, untransposed. */
static bool batch_folds(const matmul_geom *g, const cg_tensor *a, const cg_tensor *b)
{
  int64_t batch = batch_count(g);
  return !g->transpose_a && batch * g->m <= INT_MAX && a->size == batch * g->m * g->k &&
         b->size == g->k * g->n;
}

/* One product of the batch (or the folded batch): through cg__gemm, which splits large
 * ones over the threads. */
static void gemm_matrices(const matmul_geom *g, bool fold, const cg_tensor *a,
                          const cg_tensor *b, cg_tensor *out)
{
  int64_t lda = g->transpose_a ? g->m : g->k, ldb = g->transpose_b ? g->k : g->n;
  size_t e = cg_dtype_size(out->dtype);
  int64_t batch = batch_count(g);
  if (fold) {
    cg__gemm(out->dtype, g->transpose_a, g->transpose_b, batch * g->m, g->n, g->k, a->data, lda,
             b->data, ldb, 0.0, out->data, g->n);
    return;
  }
  for (int64_t bi = 0; bi < batch; bi++) {
    int64_t ao, bo;
    batch_offsets(g, bi, &ao, &bo);
    cg__gemm(out->dtype, g->transpose_a, g->transpose_b, g->m, g->n, g->k,
             (const char *)a->data + (size_t)ao * e, lda, (const char *)b->data + (size_t)bo * e,
             ldb, 0.0, (char *)out->data + (size_t)(bi * g->m * g->n) * e, g->n);
  }
}

static cg_status matmul_blas(const cg_tensor *a, const cg_tensor *b, bool ta, bool tb,
                             cg_tensor *out)
{
  matmul_geom g;
  cg_status st = matmul_geometry(a, b, ta, tb, &g);
  if (st != CG_OK || out->size == 0) return st;
  if (g.k == 0) { /* an empty sum; BLAS would refuse the zero leading dimension */
    memset(out->data, 0, (size_t)out->size * cg_dtype_size(out->dtype));
    return CG_OK;
  }
  batch_strides(a, b, &g);
  gemm_matrices(&g, batch_folds(&g, a, b), a, b, out);
  return CG_OK;
}

/* ======================================================================================
 * MatMul: y = op(a) op(b), op = transpose when attr "transpose_a" / "transpose_b" is set.
 * Gradient (TensorFlow's MatMulGrad), g = dy:
 *   a b      : da = g b^T,     db = a^T g
 *   a b^T    : da = g b,       db = g^T a
 *   a^T b    : da = b g^T,     db = a g
 *   a^T b^T  : da = b^T g^T,   db = g^T a^T
 * Broadcast batch dims are summed back by the engine.
 * ==================================================================================== */

static bool attr_transpose(const cg_node *n, const char *name)
{
  return cg_node_attr_int(n, name, 0) != 0;
}

static cg_status matmul_infer(cg_node *n)
{
  const cg_tensor *a = cg_node_input(n, 0), *b = cg_node_input(n, 1);
  cg_status st = cg__require_same_dtype(n, 0, 1);
  if (st != CG_OK) return st;
  if (a->dtype == CG_BOOL)
    return cg_set_error(CG_EDTYPE, "MatMul: inputs must be f32, f64, i32 or i64, got bool %s x %s",
                        cg__in_shape(n, 0), cg__in_shape(n, 1));
  matmul_geom g;
  bool ta = attr_transpose(n, "transpose_a"), tb = attr_transpose(n, "transpose_b");
  st = matmul_geometry(a, b, ta, tb, &g);
  if (st != CG_OK) return st;
  if (cg_dtype_is_float(a->dtype) && (g.m > INT_MAX || g.n > INT_MAX || g.k > INT_MAX))
    return cg_set_error(CG_ESHAPE, "MatMul: a matrix dimension exceeds BLAS's limit of %d: %s x %s",
                        INT_MAX, cg__in_shape(n, 0), cg__in_shape(n, 1));
  int64_t shape[CG_MAX_DIMS];
  memcpy(shape, g.batch_shape, (size_t)g.batch_ndim * sizeof shape[0]);
  shape[g.batch_ndim] = g.m;
  shape[g.batch_ndim + 1] = g.n;
  return cg_node_set_output(n, 0, a->dtype, g.batch_ndim + 2, shape);
}

static cg_status matmul_run(cg_node *n)
{
  const cg_tensor *a = cg_node_input(n, 0), *b = cg_node_input(n, 1);
  cg_tensor *y = cg_node_output(n, 0);
  bool ta = attr_transpose(n, "transpose_a"), tb = attr_transpose(n, "transpose_b");
  if (cg_dtype_is_float(a->dtype)) return matmul_blas(a, b, ta, tb, y);
  return cg__matmul_reference(a, b, ta, tb, y);
}

static cg_status matmul_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *a = cg_node_input(op, 0), *b = cg_node_input(op, 1), *g = dy[0];
  bool ta = attr_transpose(op, "transpose_a"), tb = attr_transpose(op, "transpose_b");
  /* an input nobody differentiates against (a batch of data) costs no product */
  bool need_a = cg_node_needs_input_grad(op, 0), need_b = cg_node_needs_input_grad(op, 1);
  if (!ta && !tb) {
    if (need_a) dx[0] = cg_matmul_t(g, b, 0, 1);
    if (need_b) dx[1] = cg_matmul_t(a, g, 1, 0);
  } else if (!ta && tb) {
    if (need_a) dx[0] = cg_matmul_t(g, b, 0, 0);
    if (need_b) dx[1] = cg_matmul_t(g, a, 1, 0);
  } else if (ta && !tb) {
    if (need_a) dx[0] = cg_matmul_t(b, g, 0, 1);
    if (need_b) dx[1] = cg_matmul_t(a, g, 0, 0);
  } else {
    if (need_a) dx[0] = cg_matmul_t(b, g, 1, 1);
    if (need_b) dx[1] = cg_matmul_t(g, a, 1, 1);
  }
  if (need_a && !dx[0]) return cg_status_of(NULL);
  return need_b && !dx[1] ? cg_status_of(NULL) : CG_OK;
}

static const cg_op_def matmul_def = {.name = "MatMul", .n_inputs = 2, .infer = matmul_infer,
                                     .run = matmul_run};

cg_tensor *cg_matmul_t(cg_tensor *a, cg_tensor *b, int transpose_a, int transpose_b)
{
  cg_attrs attrs = {0};
  cg_attrs_set_int(&attrs, "transpose_a", transpose_a != 0);
  cg_attrs_set_int(&attrs, "transpose_b", transpose_b != 0);
  return cg_apply2(&matmul_def, a, b, &attrs);
}

cg_tensor *cg_matmul(cg_tensor *a, cg_tensor *b) { return cg_matmul_t(a, b, 0, 0); }

cg_status cg__register_matmul_ops(void) { return cg__register_builtin(&matmul_def, matmul_grad); }

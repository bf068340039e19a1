/* shape_like.c - shape ops that take the target shape from a second tensor at run time
 * (TensorFlow's reshape(x, shape(y)) idiom). Gradients use them so that they also hold in
 * graphs whose placeholders have unknown dimensions. */
#include "kernel.h"
#include <stdlib.h>

/* ======================================================================================
 * ReshapeLike: y = x viewed with like's shape (sizes must agree);  dx = reshape_like(dy, x)
 * ==================================================================================== */

static cg_status reshape_like_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0), *like = cg_node_input(n, 1);
  if (x->size != like->size)
    return cg_set_error(CG_ESHAPE, "ReshapeLike: cannot view %s (%lld elements) as %s (%lld elements)",
                        cg__in_shape(n, 0), (long long)x->size, cg__in_shape(n, 1), (long long)like->size);
  return cg_node_set_output_alias(n, 0, 0, like->ndim, like->shape);
}

static cg_status reshape_like_run(cg_node *n) { return CG_OK; }

static cg_status reshape_like_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg__reshape_as(dy[0], cg_node_input(op, 0));
  return cg_status_of(dx[0]);
}

static const cg_op_def reshape_like_def = {"ReshapeLike", 2, reshape_like_infer, reshape_like_run, 0, NULL};

cg_tensor *cg_reshape_like(cg_tensor *x, cg_tensor *like) { return cg_apply2(&reshape_like_def, x, like, NULL); }

/* ======================================================================================
 * BroadcastLike: y = x broadcast (NumPy rules) to like's shape;  dx = dy summed back
 * (by the engine)
 * ==================================================================================== */

static cg_status broadcast_like_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0), *like = cg_node_input(n, 1);
  int lead = like->ndim - x->ndim;
  bool fits = lead >= 0;
  for (int d = 0; fits && d < x->ndim; d++) fits = x->shape[d] == 1 || x->shape[d] == like->shape[lead + d];
  if (!fits)
    return cg_set_error(CG_ESHAPE, "BroadcastLike: %s does not broadcast to %s", cg__in_shape(n, 0),
                        cg__in_shape(n, 1));
  return cg_node_set_output(n, 0, x->dtype, like->ndim, like->shape);
}

/* y[0..n) = v, for any element width: doubling copies, so a scalar broadcast to a large
 * gradient (the backward of a Sum) costs a few memcpy calls, not one per element. */
static void fill_copies(char *y, const char *v, size_t esz, int64_t n)
{
  if (n <= 0) return;
  memcpy(y, v, esz);
  for (int64_t done = 1; done < n;) {
    int64_t k = done < n - done ? done : n - done;
    memcpy(y + (size_t)done * esz, y, (size_t)k * esz);
    done += k;
  }
}

/* Row by row (a row is y's last axis): x either moves along the row (a copy) or repeats
 * one element of it (a fill). */
void cg__broadcast_rows(const cg_tensor *x, cg_tensor *y)
{
  size_t esz = cg_dtype_size(x->dtype);
  if (y->size == 0) return;
  if (x->size == 1) {
    fill_copies(y->data, x->data, esz, y->size);
    return;
  }
  int last = y->ndim - 1;
  int64_t len = y->shape[last];
  cg_bcast_iter it;
  cg__bcast_iter_init(&it, y->ndim, y->shape, 1, (cg_tensor *const *)&x);
  bool moves = it.strides[0][last] != 0;
  it.ndim = last; /* the iterator steps over rows */
  char *dst = y->data;
  const char *src = x->data;
  for (int64_t r = 0; r < y->size / len; r++, dst += (size_t)len * esz, cg__bcast_iter_next(&it)) {
    if (moves) memcpy(dst, src + (size_t)it.off[0] * esz, (size_t)len * esz);
    else fill_copies(dst, src + (size_t)it.off[0] * esz, esz, len);
  }
}

static cg_status broadcast_like_run(cg_node *n)
{
  cg__broadcast_rows(cg_node_input(n, 0), cg_node_output(n, 0));
  return CG_OK;
}

static cg_status broadcast_like_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = dy[0];
  return CG_OK;
}

static const cg_op_def broadcast_like_def = {"BroadcastLike", 2, broadcast_like_infer,
                                             broadcast_like_run, 0, NULL};

cg_tensor *cg_broadcast_like(cg_tensor *x, cg_tensor *like)
{
  return cg_apply2(&broadcast_like_def, x, like, NULL);
}

cg_tensor *cg__broadcast_as(cg_tensor *x, cg_tensor *like)
{
  return cg__shape_known(like) ? cg_broadcast_to(x, like->ndim, like->shape) : cg_broadcast_like(x, like);
}

cg_tensor *cg__reshape_as(cg_tensor *x, cg_tensor *like)
{
  return cg__shape_known(like) ? cg_reshape(x, like->ndim, like->shape) : cg_reshape_like(x, like);
}

/* ======================================================================================
 * SumLike: y = x summed over the axes along which like's shape broadcasts to x's, shaped
 *          like like (the inverse of BroadcastLike);  dx = broadcast_like(dy, x)
 * The engine reduces broadcast gradients with it when a graph's dims are unknown until run.
 * ==================================================================================== */

static cg_status sum_like_infer(cg_node *n)
{
  const cg_tensor *x = cg_node_input(n, 0), *like = cg_node_input(n, 1);
  int lead = x->ndim - like->ndim;
  bool fits = lead >= 0;
  for (int d = 0; fits && d < like->ndim; d++)
    fits = like->shape[d] == 1 || like->shape[d] == x->shape[lead + d];
  if (!fits)
    return cg_set_error(CG_ESHAPE, "SumLike: %s does not broadcast to %s, so %s cannot be summed to it",
                        cg__in_shape(n, 1), cg__in_shape(n, 0), cg__in_shape(n, 0));
  if (x->dtype == CG_BOOL) return cg_set_error(CG_EDTYPE, "SumLike: input 0 is bool; needs a number");
  if (cg__shape_equal(x->ndim, x->shape, like->ndim, like->shape)) /* nothing to sum: a view */
    return cg_node_set_output_alias(n, 0, 0, like->ndim, like->shape);
  return cg_node_set_output(n, 0, x->dtype, like->ndim, like->shape);
}

/* Floats add in double (as Sum does); integers wrap around on overflow, in uint64. */
static cg_status sum_like_run(cg_node *n)
{
  cg_tensor *x = cg_node_input(n, 0), *y = cg_node_output(n, 0);
  if (cg__shape_equal(x->ndim, x->shape, y->ndim, y->shape)) return CG_OK; /* the view */
  bool is_float = cg_dtype_is_float(x->dtype);
  void *acc = cg__calloc((size_t)y->size, is_float ? sizeof(double) : sizeof(uint64_t));
  if (!acc) return CG_ENOMEM;
  double *af = acc;
  uint64_t *ai = acc;
  cg_bcast_iter it; /* walks x, with y seen as broadcast to x's shape */
  cg__bcast_iter_init(&it, x->ndim, x->shape, 1, &y);
  for (int64_t i = 0; i < x->size; i++, cg__bcast_iter_next(&it)) {
    switch (x->dtype) {
    case CG_F32: af[it.off[0]] += CG_F32P(x)[i]; break;
    case CG_F64: af[it.off[0]] += CG_F64P(x)[i]; break;
    case CG_I32: ai[it.off[0]] += (uint64_t)(int64_t)CG_I32P(x)[i]; break;
    default: ai[it.off[0]] += (uint64_t)CG_I64P(x)[i]; break;
    }
  }
  for (int64_t i = 0; i < y->size; i++) {
    switch (y->dtype) {
    case CG_F32: CG_F32P(y)[i] = (float)af[i]; break;
    case CG_F64: CG_F64P(y)[i] = af[i]; break;
    case CG_I32: CG_I32P(y)[i] = (int32_t)(uint32_t)ai[i]; break;
    default: CG_I64P(y)[i] = (int64_t)ai[i]; break;
    }
  }
  free(acc);
  return CG_OK;
}

static cg_status sum_like_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  dx[0] = cg_broadcast_like(dy[0], cg_node_input(op, 0));
  return cg_status_of(dx[0]);
}

static const cg_op_def sum_like_def = {"SumLike", 2, sum_like_infer, sum_like_run, 0, NULL};

cg_tensor *cg__sum_like(cg_tensor *x, cg_tensor *like) { return cg_apply2(&sum_like_def, x, like, NULL); }

cg_status cg__register_shape_like_ops(void)
{
  cg_status st = cg__register_builtin(&reshape_like_def, reshape_like_grad);
  if (st == CG_OK) st = cg__register_builtin(&broadcast_like_def, broadcast_like_grad);
  return st == CG_OK ? cg__register_builtin(&sum_like_def, sum_like_grad) : st;
}

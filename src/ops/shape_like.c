/* shape_like.c - shape ops that take the target shape from a second tensor at run time
 * (TensorFlow's reshape(x, shape(y)) idiom). Gradients use them so that they also hold in
 * graphs whose placeholders have unknown dimensions. */
#include "kernel.h"

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
  dx[0] = cg_reshape_like(dy[0], cg_node_input(op, 0));
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

static cg_status broadcast_like_run(cg_node *n)
{
  cg_tensor *x = cg_node_input(n, 0), *y = cg_node_output(n, 0);
  size_t esz = cg_dtype_size(x->dtype);
  cg_bcast_iter it;
  cg__bcast_iter_init(&it, y->ndim, y->shape, 1, &x);
  char *dst = y->data;
  const char *src = x->data;
  for (int64_t i = 0; i < y->size; i++, cg__bcast_iter_next(&it))
    memcpy(dst + (size_t)i * esz, src + (size_t)it.off[0] * esz, esz);
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

cg_status cg__register_shape_like_ops(void)
{
  cg_status st = cg__register_builtin(&reshape_like_def, reshape_like_grad);
  return st == CG_OK ? cg__register_builtin(&broadcast_like_def, broadcast_like_grad) : st;
}

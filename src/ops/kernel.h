/* kernel.h - helpers every op family uses: broadcasting iteration, axis checks, typed data
 * access, and the includes an op file needs. No op math lives here. */
#ifndef CG_OPS_KERNEL_H
#define CG_OPS_KERNEL_H

#include "../autodiff/node.h"
#include <math.h>
#include <string.h>

#define CG_F32P(t) ((float *)(t)->data)
#define CG_F64P(t) ((double *)(t)->data)
#define CG_I32P(t) ((int32_t *)(t)->data)
#define CG_I64P(t) ((int64_t *)(t)->data)
#define CG_BOOLP(t) ((uint8_t *)(t)->data)

/* y = x broadcast to y's shape (the kernel of BroadcastTo and BroadcastLike, shape_like.c). */
void cg__broadcast_rows(const cg_tensor *x, cg_tensor *y);

/* NumPy broadcasting of two shapes; CG_ESHAPE naming op and both shapes if they do not fit. */
cg_status cg__broadcast_shapes(const char *op, int na, const int64_t *a, int nb,
                               const int64_t *b, int *nout, int64_t *out);

/* Walks an output shape while keeping the flat offsets of up to 3 broadcast operands. */
typedef struct {
  int ndim, nops;
  int64_t shape[CG_MAX_DIMS], idx[CG_MAX_DIMS];
  int64_t strides[3][CG_MAX_DIMS];
  int64_t off[3];
} cg_bcast_iter;
void cg__bcast_iter_init(cg_bcast_iter *it, int ndim, const int64_t *shape, int nops,
                         cg_tensor *const *ops);
static inline void cg__bcast_iter_next(cg_bcast_iter *it)
{
  for (int d = it->ndim - 1; d >= 0; d--) {
    for (int k = 0; k < it->nops; k++) it->off[k] += it->strides[k][d];
    if (++it->idx[d] < it->shape[d]) return;
    for (int k = 0; k < it->nops; k++) it->off[k] -= it->strides[k][d] * it->shape[d];
    it->idx[d] = 0;
  }
}

/* axis in [-ndim, ndim) -> [0, ndim); CG_ERANGE naming op otherwise. */
cg_status cg__normalize_axis(const char *op, int64_t axis, int ndim, int *out);
/* The reduction mask for a list of axes (duplicates are an error). */
cg_status cg__axes_mask(const char *op, const int64_t *axes, int n, int ndim, bool *mask);

/* "[2,3]" of input i of node n, for error messages (static per-thread buffers, 4 slots). */
const char *cg__in_shape(const cg_node *n, int i);

/* CG_EDTYPE unless input i's dtype is one of the float types. */
cg_status cg__require_float(const cg_node *n, int i);
/* CG_EDTYPE unless inputs i and j have the same dtype. */
cg_status cg__require_same_dtype(const cg_node *n, int i, int j);

/* An int[2] option, e.g. strides, written as an attribute of two ints. */
void cg__attrs_pair(cg_attrs *a, const char *name, const int v[2]);

/* Each op family registers its ops and gradients here (src/ops/builtin.c calls them). */
cg_status cg__register_unary_ops(void);
cg_status cg__register_binary_ops(void);
cg_status cg__register_reduce_ops(void);
cg_status cg__register_matmul_ops(void);
cg_status cg__register_shape_ops(void);
cg_status cg__register_shape_like_ops(void);
cg_status cg__register_index_ops(void);
cg_status cg__register_nn_ops(void);
cg_status cg__register_conv_ops(void);
cg_status cg__register_clip_ops(void);
/* ... and their JVP rules (forward mode), one file per family (jvp_<family>.c). */
cg_status cg__register_unary_jvps(void);
cg_status cg__register_binary_jvps(void);
cg_status cg__register_reduce_jvps(void);
cg_status cg__register_matmul_jvps(void);
cg_status cg__register_shape_jvps(void);
cg_status cg__register_index_jvps(void);
cg_status cg__register_nn_jvps(void);
cg_status cg__register_conv_jvps(void);
cg_status cg__register_clip_jvps(void); /* ClipByValue keeps its rules in clip.c */

#endif

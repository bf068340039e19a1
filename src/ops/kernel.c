/* kernel.c - the helpers op families share: NumPy broadcasting of shapes and the
 * broadcast iterator, axis normalisation, dtype checks, and short shape strings for
 * error messages. */
#include "kernel.h"

cg_status cg__broadcast_shapes(const char *op, int na, const int64_t *a, int nb,
                               const int64_t *b, int *nout, int64_t *out)
{
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int64_t da = i < n - na ? 1 : a[i - (n - na)];
    int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
    if (da != db && da != 1 && db != 1) {
      char sa[160], sb[160];
      return cg_set_error(CG_ESHAPE, "%s: shapes do not broadcast: %s vs %s", op,
                          cg__fmt_shape(na, a, sa, sizeof sa), cg__fmt_shape(nb, b, sb, sizeof sb));
    }
    out[i] = da == 1 ? db : da;
  }
  *nout = n;
  return CG_OK;
}

void cg__bcast_iter_init(cg_bcast_iter *it, int ndim, const int64_t *shape, int nops,
                         cg_tensor *const *ops)
{
  it->ndim = ndim;
  it->nops = nops;
  for (int d = 0; d < ndim; d++) {
    it->shape[d] = shape[d];
    it->idx[d] = 0;
  }
  for (int k = 0; k < nops; k++) {
    const cg_tensor *t = ops[k];
    int64_t stride = 1;
    it->off[k] = 0;
    for (int d = ndim - 1; d >= 0; d--) {
      int td = d - (ndim - t->ndim);
      bool present = td >= 0 && t->shape[td] != 1;
      it->strides[k][d] = present ? stride : 0;
      if (td >= 0) stride *= t->shape[td];
    }
  }
}

cg_status cg__normalize_axis(const char *op, int64_t axis, int ndim, int *out)
{
  int64_t a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim || (ndim == 0))
    return cg_set_error(CG_ERANGE, "%s: axis %lld is out of range for rank %d", op,
                        (long long)axis, ndim);
  *out = (int)a;
  return CG_OK;
}

cg_status cg__axes_mask(const char *op, const int64_t *axes, int n, int ndim, bool *mask)
{
  for (int d = 0; d < ndim; d++) mask[d] = n == 0;
  for (int i = 0; i < n; i++) {
    int a = 0;
    cg_status st = cg__normalize_axis(op, axes[i], ndim, &a);
    if (st != CG_OK) return st;
    if (mask[a])
      return cg_set_error(CG_EINVAL, "%s: axis %lld is given twice", op, (long long)axes[i]);
    mask[a] = true;
  }
  return CG_OK;
}

const char *cg__in_shape(const cg_node *n, int i)
{
  static _Thread_local char bufs[4][160];
  static _Thread_local int next;
  char *b = bufs[next++ & 3];
  const cg_tensor *t = cg_node_input(n, i);
  return t ? cg__fmt_shape(t->ndim, t->shape, b, 160) : "(null)";
}

cg_status cg__require_float(const cg_node *n, int i)
{
  const cg_tensor *t = cg_node_input(n, i);
  if (cg_dtype_is_float(t->dtype)) return CG_OK;
  return cg_set_error(CG_EDTYPE, "%s: input %d must be f32 or f64, got %s %s", cg_node_op_type(n),
                      i, cg_dtype_name(t->dtype), cg__in_shape(n, i));
}

cg_status cg__require_same_dtype(const cg_node *n, int i, int j)
{
  const cg_tensor *a = cg_node_input(n, i), *b = cg_node_input(n, j);
  if (a->dtype == b->dtype) return CG_OK;
  return cg_set_error(CG_EDTYPE, "%s: dtypes differ: %s %s vs %s %s (no implicit promotion; use cg_cast)",
                      cg_node_op_type(n), cg_dtype_name(a->dtype), cg__in_shape(n, i),
                      cg_dtype_name(b->dtype), cg__in_shape(n, j));
}

void cg__attrs_pair(cg_attrs *a, const char *name, const int v[2])
{
  int64_t p[2] = {v ? v[0] : 1, v ? v[1] : 1};
  cg_attrs_set_ints(a, name, p, 2);
}

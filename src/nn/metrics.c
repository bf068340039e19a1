/* metrics.c - training metrics computed from tensors: accuracy of logits against class ids.
 * Metrics are plain numbers, never recorded on a tape. */
#include "../core/internal.h"

/* Fraction of rows of logits [..., C] whose first maximum is at labels' class id; labels are
 * i32/i64 shaped like logits without the class axis. -1 (with the error set) on bad input. */
double cg_accuracy(cg_tensor *logits, cg_tensor *labels)
{
  const char *fn = "cg_accuracy";
  if (!logits || !labels) {
    cg__null_input(fn, logits ? 1 : 0);
    return -1;
  }
  char xs[160], ls[160];
  if (!cg_dtype_is_float(logits->dtype) || (labels->dtype != CG_I32 && labels->dtype != CG_I64)) {
    cg_set_error(CG_EDTYPE, "%s: need float logits and i32/i64 class ids, got %s and %s", fn,
                 cg_dtype_name(logits->dtype), cg_dtype_name(labels->dtype));
    return -1;
  }
  if (logits->ndim < 1 ||
      !cg__shape_equal(labels->ndim, labels->shape, logits->ndim - 1, logits->shape)) {
    cg_set_error(CG_ESHAPE, "%s: labels %s must have the shape of logits %s without the class axis",
                 fn, cg_shape_str(labels, ls, sizeof ls), cg_shape_str(logits, xs, sizeof xs));
    return -1;
  }
  if (labels->size == 0 || logits->shape[logits->ndim - 1] == 0) {
    cg_set_error(CG_ESHAPE, "%s: logits %s have no rows or no classes", fn,
                 cg_shape_str(logits, xs, sizeof xs));
    return -1;
  }
  cg_scope scope = cg_scope_begin();
  cg_tensor *predicted = cg_argmax(logits, -1);
  int64_t hits = 0;
  for (int64_t i = 0; predicted && i < labels->size; i++)
    hits += cg_tensor_get(predicted, i) == cg_tensor_get(labels, i);
  cg_scope_end(scope);
  return predicted ? (double)hits / (double)labels->size : -1;
}

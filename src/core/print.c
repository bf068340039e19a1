/* print.c - NumPy-like text for tensors: tensor([[1., 2.], [3., 4.]], dtype=f32). Long
 * axes are elided with "..." as NumPy does past 1000 elements. */
#include "internal.h"
#include <math.h>

static void print_value(FILE *f, cg_dtype d, double v)
{
  if (d == CG_BOOL) fputs(v != 0 ? "True" : "False", f);
  else if (!cg_dtype_is_float(d)) fprintf(f, "%lld", (long long)v);
  else if (isnan(v)) fputs("nan", f);
  else if (isinf(v)) fputs(v > 0 ? "inf" : "-inf", f);
  else if (v == floor(v) && fabs(v) < 1e16) fprintf(f, "%.0f.", v);
  else fprintf(f, "%.6g", v);
}

static void print_axis(FILE *f, const cg_tensor *t, int axis, int64_t offset, bool elide)
{
  if (axis == t->ndim) {
    print_value(f, t->dtype, cg__load(t->dtype, t->data, offset));
    return;
  }
  int64_t stride = 1;
  for (int d = axis + 1; d < t->ndim; d++) stride *= t->shape[d];
  int64_t n = t->shape[axis];
  fputc('[', f);
  for (int64_t i = 0; i < n; i++) {
    if (elide && n > 6 && i == 3) {
      fputs("..., ", f);
      i = n - 3;
    }
    if (i) fputs(axis == t->ndim - 1 ? ", " : ",\n", f);
    print_axis(f, t, axis + 1, offset + i * stride, elide);
  }
  fputc(']', f);
}

void cg_fprint(FILE *f, const cg_tensor *t)
{
  if (!f) return;
  if (!t) {
    fputs("tensor(NULL)\n", f);
    return;
  }
  if (t->graph) {
    char shape[160];
    fprintf(f, "tensor(<symbolic%s%s>, shape=%s, dtype=%s)\n", t->name ? " " : "", t->name ? t->name : "",
            cg__fmt_shape(t->ndim, t->shape, shape, sizeof shape), cg_dtype_name(t->dtype));
    return;
  }
  fputs("tensor(", f);
  print_axis(f, t, 0, 0, t->size > 1000);
  fprintf(f, ", dtype=%s)\n", cg_dtype_name(t->dtype));
}

void cg_print(const cg_tensor *t) { cg_fprint(stdout, t); }

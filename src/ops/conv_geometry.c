/* conv_geometry.c - where a 2-D window lands on an NHWC input: TensorFlow's VALID and SAME
 * output-size and padding rules with strides and dilations, and the reading and checking of
 * the window and shape attributes. The kernels live in conv.c and pool.c. */
#include "conv_geometry.h"
#include <stdio.h>

static char *pair_str(const int64_t v[2], char *buf, size_t n)
{
  snprintf(buf, n, "[%lld,%lld]", (long long)v[0], (long long)v[1]);
  return buf;
}

/* A two-int attribute; absent: dflt (or an error when dflt is 0: required). */
static cg_status read_pair(const cg_node *n, const char *name, int64_t dflt, int64_t out[2])
{
  int64_t v[CG_ATTR_INTS_MAX];
  int count = cg_node_attr_ints(n, name, v, CG_ATTR_INTS_MAX);
  if (count < 0 && dflt) {
    out[0] = out[1] = dflt;
    return CG_OK;
  }
  if (count != 2)
    return cg_set_error(CG_EINVAL, "%s: attribute %s needs 2 ints, got %d", cg_node_op_type(n),
                        name, count < 0 ? 0 : count);
  out[0] = v[0];
  out[1] = v[1];
  return CG_OK;
}

cg_status cg__window_spec_read(const cg_node *n, const char *size_attr, cg_window_spec *s)
{
  cg_status st;
  if (size_attr && (st = read_pair(n, size_attr, 0, s->size)) != CG_OK) return st;
  if ((st = read_pair(n, "strides", 1, s->strides)) != CG_OK) return st;
  if (size_attr) s->dilations[0] = s->dilations[1] = 1;
  else if ((st = read_pair(n, "dilations", 1, s->dilations)) != CG_OK) return st;
  s->padding = cg_node_attr_int(n, "padding", CG_PAD_VALID);
  return CG_OK;
}

cg_status cg__window_spec_write(const cg_window_spec *s, const char *size_attr, cg_attrs *a)
{
  cg_status st;
  if (size_attr && (st = cg_attrs_set_ints(a, size_attr, s->size, 2)) != CG_OK) return st;
  if ((st = cg_attrs_set_ints(a, "strides", s->strides, 2)) != CG_OK) return st;
  if (!size_attr && (st = cg_attrs_set_ints(a, "dilations", s->dilations, 2)) != CG_OK) return st;
  return cg_attrs_set_int(a, "padding", s->padding);
}

static cg_status check_positive(const char *op, const char *what, const int64_t v[2],
                                const char *context)
{
  if (v[0] > 0 && v[1] > 0) return CG_OK;
  char b[64];
  return cg_set_error(CG_EINVAL, "%s: %s must be positive, got %s: %s", op, what,
                      pair_str(v, b, sizeof b), context);
}

/* The extent of a dilated window, (size-1)*dilation + 1. Capped at INT64_MAX/4 so that
 * kernels can add an input position, padding and an extent without overflow. */
static bool dilated_extent(int64_t size, int64_t dilation, int64_t *extent)
{
  if (size - 1 > (INT64_MAX / 4 - 1) / dilation) return false;
  *extent = (size - 1) * dilation + 1;
  return true;
}

/* One axis under SAME: ceil(in / stride) outputs, and the padding the last window needs
 * split with the smaller half before. (out-1)*stride < in keeps every term in range. */
static void same_axis(int64_t in, int64_t extent, int64_t stride, int64_t *out, int64_t *pad_before)
{
  *out = in / stride + (in % stride != 0);
  int64_t covered = in - (*out - 1) * stride; /* in (0, stride], or stride when in == 0 */
  int64_t needed = extent - covered;
  *pad_before = needed > 0 ? needed / 2 : 0;
}

cg_status cg__window_place(const char *op, const int64_t x[4], int64_t out_c,
                           const cg_window_spec *s, const char *context, cg_window *w)
{
  cg_status st;
  if ((st = check_positive(op, "window size", s->size, context)) != CG_OK ||
      (st = check_positive(op, "strides", s->strides, context)) != CG_OK ||
      (st = check_positive(op, "dilations", s->dilations, context)) != CG_OK)
    return st;
  if (s->padding != CG_PAD_VALID && s->padding != CG_PAD_SAME)
    return cg_set_error(CG_EINVAL,
                        "%s: padding must be CG_PAD_VALID (0) or CG_PAD_SAME (1), got %lld", op,
                        (long long)s->padding);
  int64_t ext_h, ext_w;
  if (!dilated_extent(s->size[0], s->dilations[0], &ext_h) ||
      !dilated_extent(s->size[1], s->dilations[1], &ext_w))
    return cg_set_error(CG_EINVAL, "%s: the dilated window is too large: %s", op, context);

  *w = (cg_window){.batch = x[0], .in_h = x[1], .in_w = x[2], .in_c = x[3],
                   .k_h = s->size[0], .k_w = s->size[1], .out_c = out_c,
                   .stride_h = s->strides[0], .stride_w = s->strides[1],
                   .dil_h = s->dilations[0], .dil_w = s->dilations[1]};
  if (s->padding == CG_PAD_SAME) {
    same_axis(w->in_h, ext_h, w->stride_h, &w->out_h, &w->pad_top);
    same_axis(w->in_w, ext_w, w->stride_w, &w->out_w, &w->pad_left);
    return CG_OK;
  }
  if (ext_h > w->in_h || ext_w > w->in_w)
    return cg_set_error(CG_ESHAPE,
                        "%s: %s %lldx%lld is larger than the %lldx%lld input under VALID "
                        "padding: %s",
                        op, w->dil_h > 1 || w->dil_w > 1 ? "dilated window" : "window",
                        (long long)ext_h, (long long)ext_w, (long long)w->in_h, (long long)w->in_w,
                        context);
  w->out_h = (w->in_h - ext_h) / w->stride_h + 1;
  w->out_w = (w->in_w - ext_w) / w->stride_w + 1;
  return CG_OK;
}

void cg__window_out_shape(const cg_window *w, int64_t out[4])
{
  out[0] = w->batch;
  out[1] = w->out_h;
  out[2] = w->out_w;
  out[3] = w->out_c;
}

cg_status cg__require_rank4(const cg_node *n, int i, const char *what)
{
  if (cg_node_input(n, i)->ndim == 4) return CG_OK;
  return cg_set_error(CG_ESHAPE, "%s: %s must have rank 4, got %s", cg_node_op_type(n), what,
                      cg__in_shape(n, i));
}

cg_status cg__shape4_attr(const cg_node *n, const char *name, int64_t out[4])
{
  const char *op = cg_node_op_type(n);
  int64_t v[CG_ATTR_INTS_MAX];
  int count = cg_node_attr_ints(n, name, v, CG_ATTR_INTS_MAX);
  if (count != 4)
    return cg_set_error(CG_EINVAL, "%s: attribute %s needs 4 ints, got %d", op, name,
                        count < 0 ? 0 : count);
  int64_t size;
  cg_status st = cg__shape_size(op, 4, v, &size);
  if (st != CG_OK) return st;
  memcpy(out, v, 4 * sizeof *out);
  return CG_OK;
}

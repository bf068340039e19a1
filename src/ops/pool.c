/* pool.c - 2-D max and average pooling over NHWC input, and their gradients as ops:
 * MaxPool2D, AvgPool2D, MaxPool2DGrad (dy routed to each window's first maximum),
 * AvgPool2DGrad (dy spread evenly) and MaxPool2DGradGrad (MaxPool2DGrad's gradient w.r.t.
 * dy). The kernels loop directly over windows, so they are their own reference. */
#include "conv_geometry.h"
#include "parallel.h"
#include <stdio.h>

static const cg_op_def max_pool_def, avg_pool_def, max_pool_grad_def, max_pool_grad_grad_def,
    avg_pool_grad_def;

/* ======================================================================================
 * Windows and element access shared by the kernels
 * ==================================================================================== */

/* Places node n's ksize window over NHWC shape x; channels pass through. */
static cg_status pool_window(const cg_node *n, const int64_t x[4], cg_window *w)
{
  cg_window_spec s;
  cg_status st = cg__window_spec_read(n, "ksize", &s);
  if (st != CG_OK) return st;
  char xs[160], context[240];
  snprintf(context, sizeof context, "input %s, ksize [%lld,%lld]",
           cg__fmt_shape(4, x, xs, sizeof xs), (long long)s.size[0], (long long)s.size[1]);
  return cg__window_place(cg_node_op_type(n), x, x[3], &s, context, w);
}

/* CG_ESHAPE unless input i has exactly shape want (what the op expects there). */
static cg_status check_shape(const cg_node *n, int i, const char *name, const int64_t want[4],
                             const char *because)
{
  const cg_tensor *t = cg_node_input(n, i);
  if (cg__shape_equal(t->ndim, t->shape, 4, want)) return CG_OK;
  char ws[160];
  return cg_set_error(CG_ESHAPE, "%s: %s has shape %s but %s %s", cg_node_op_type(n), name,
                      cg__in_shape(n, i), because, cg__fmt_shape(4, want, ws, sizeof ws));
}

/* The in-bounds cells of one output pixel's window: rows [h_lo, h_hi), columns [w_lo, w_hi).
 * Never empty: VALID windows fit whole, and SAME pads less than a window on either side. */
typedef struct {
  int64_t h_lo, h_hi, w_lo, w_hi;
  int64_t image_at; /* offset of x[b, 0, 0, 0]                     */
  int64_t y_at;     /* offset of the output pixel y[b, oh, ow, 0]  */
} pool_span;

/* Offset of x[b, h, col, 0] for the span's image b. */
static inline int64_t span_pixel(const cg_window *w, const pool_span *s, int64_t h, int64_t col)
{
  return s->image_at + (h * w->in_w + col) * w->in_c;
}

/* The in-bounds part [lo, hi) of output o's window along one axis. */
static void axis_span(int64_t o, int64_t k, int64_t stride, int64_t pad, int64_t in, int64_t *lo,
                      int64_t *hi)
{
  int64_t start = o * stride - pad;
  *lo = start > 0 ? start : 0;
  *hi = start + k < in ? start + k : in;
}

typedef void (*span_fn)(const cg_window *w, const pool_span *s, void *ctx);

/* Calls fn once per output pixel (b, oh, ow), in row-major order. */
static void for_each_window(const cg_window *w, span_fn fn, void *ctx)
{
  if (w->in_c == 0) return; /* no channels: nothing to pool, however many windows */
  pool_span s;
  for (int64_t b = 0; b < w->batch; b++)
    for (int64_t oh = 0; oh < w->out_h; oh++)
      for (int64_t ow = 0; ow < w->out_w; ow++) {
        axis_span(oh, w->k_h, w->stride_h, w->pad_top, w->in_h, &s.h_lo, &s.h_hi);
        axis_span(ow, w->k_w, w->stride_w, w->pad_left, w->in_w, &s.w_lo, &s.w_hi);
        s.image_at = b * w->in_h * w->in_w * w->in_c;
        s.y_at = ((b * w->out_h + oh) * w->out_w + ow) * w->in_c;
        fn(w, &s, ctx);
      }
}

/* Kernels accept f32 and f64 (the shape rules refuse the rest); values pass as double. */
static inline double get(const cg_tensor *t, int64_t i)
{
  return t->dtype == CG_F32 ? (double)CG_F32P(t)[i] : CG_F64P(t)[i];
}

static inline void put(cg_tensor *t, int64_t i, double v)
{
  if (t->dtype == CG_F32) CG_F32P(t)[i] = (float)v;
  else CG_F64P(t)[i] = v;
}

static inline void add(cg_tensor *t, int64_t i, double v)
{
  if (t->dtype == CG_F32) CG_F32P(t)[i] += (float)v;
  else CG_F64P(t)[i] += v;
}

static void zero(cg_tensor *t) { memset(t->data, 0, (size_t)t->size * cg_dtype_size(t->dtype)); }

/* The window attributes of op (ksize, strides, padding), plus shape_attr = shape if named. */
static cg_status window_attrs_of(const cg_node *op, const char *shape_attr, const int64_t *shape,
                                 cg_attrs *a)
{
  cg_window_spec s;
  cg_status st;
  if ((st = cg__window_spec_read(op, "ksize", &s)) != CG_OK ||
      (st = cg__window_spec_write(&s, "ksize", a)) != CG_OK)
    return st;
  return shape_attr ? cg_attrs_set_ints(a, shape_attr, shape, 4) : CG_OK;
}

/* Checks that input 0 is float NHWC and places the ksize window over it. */
static cg_status pooled_input_window(const cg_node *n, cg_window *w)
{
  cg_status st;
  if ((st = cg__require_float(n, 0)) != CG_OK ||
      (st = cg__require_rank4(n, 0, "input (NHWC)")) != CG_OK)
    return st;
  return pool_window(n, cg_node_input(n, 0)->shape, w);
}

/* The shape rule of MaxPool2D and AvgPool2D. */
static cg_status pool_infer(cg_node *n)
{
  cg_window w;
  cg_status st = pooled_input_window(n, &w);
  if (st != CG_OK) return st;
  int64_t y[4];
  cg__window_out_shape(&w, y);
  return cg_node_set_output(n, 0, cg_node_input(n, 0)->dtype, 4, y);
}

/* ======================================================================================
 * The first maximum of each window, shared by MaxPool2D and its gradients
 * ==================================================================================== */

typedef struct {
  const cg_tensor *x;
  int64_t *argmax; /* per output element: flat index into x */
} argmax_ctx;

/* Row-major scan with a strict comparison keeps the first maximum of each channel. */
static void argmax_window(const cg_window *w, const pool_span *s, void *ctx)
{
  const argmax_ctx *a = ctx;
  int64_t *best = a->argmax + s->y_at;
  int64_t first = span_pixel(w, s, s->h_lo, s->w_lo);
  for (int64_t c = 0; c < w->in_c; c++) best[c] = first + c;
  for (int64_t h = s->h_lo; h < s->h_hi; h++)
    for (int64_t col = s->w_lo; col < s->w_hi; col++) {
      int64_t at = span_pixel(w, s, h, col);
      for (int64_t c = 0; c < w->in_c; c++)
        if (get(a->x, at + c) > get(a->x, best[c])) best[c] = at + c;
    }
}

/* argmax[o] for every element o of the pooled output (pooled_size of them); NULL on
 * failure. Free with cg__free(p, pooled_size * sizeof(int64_t)). */
static int64_t *window_argmax(const cg_window *w, const cg_tensor *x, int64_t pooled_size)
{
  argmax_ctx a = {x, cg__alloc((size_t)pooled_size * sizeof(int64_t))};
  if (a.argmax) for_each_window(w, argmax_window, &a);
  return a.argmax;
}

/* out[o] = src[argmax[o]] over the windows of x: MaxPool2D (src = x), MaxPool2DGradGrad. */
static cg_status gather_maxima(const cg_window *w, const cg_tensor *x, const cg_tensor *src,
                               cg_tensor *out)
{
  int64_t *argmax = window_argmax(w, x, out->size);
  if (!argmax) return cg_last_status();
  for (int64_t o = 0; o < out->size; o++) put(out, o, get(src, argmax[o]));
  cg__free(argmax, (size_t)out->size * sizeof(int64_t));
  return CG_OK;
}

/* ======================================================================================
 * f32 fast paths of MaxPool2D and MaxPool2DGrad: the same windows and the same first
 * maximum, one image at a time spread over the threads (windows never cross images), the
 * channels innermost so the compiler vectorises them. They give exactly what the general
 * kernels above give, which tests/test_fast_kernels.c checks.
 * ==================================================================================== */

typedef struct {
  const cg_window *w;
  const float *x, *g; /* input; dy of the pooled shape (MaxPool2DGrad)  */
  float *out;         /* y (MaxPool2D) or dx (MaxPool2DGrad)            */
} pool_f32_job;

/* The window of output pixel (b, oh, ow). */
static pool_span span_at(const cg_window *w, int64_t b, int64_t oh, int64_t ow)
{
  pool_span s;
  axis_span(oh, w->k_h, w->stride_h, w->pad_top, w->in_h, &s.h_lo, &s.h_hi);
  axis_span(ow, w->k_w, w->stride_w, w->pad_left, w->in_w, &s.w_lo, &s.w_hi);
  s.image_at = b * w->in_h * w->in_w * w->in_c;
  s.y_at = ((b * w->out_h + oh) * w->out_w + ow) * w->in_c;
  return s;
}

CG_VECTOR_CLONES
static void max_pool_images_f32(void *ctx, int64_t b0, int64_t b1)
{
  const pool_f32_job *j = ctx;
  const cg_window *w = j->w;
  for (int64_t b = b0; b < b1; b++)
    for (int64_t oh = 0; oh < w->out_h; oh++)
      for (int64_t ow = 0; ow < w->out_w; ow++) {
        pool_span s = span_at(w, b, oh, ow);
        float *restrict y = j->out + s.y_at;
        memcpy(y, j->x + span_pixel(w, &s, s.h_lo, s.w_lo), (size_t)w->in_c * sizeof *y);
        for (int64_t h = s.h_lo; h < s.h_hi; h++)
          for (int64_t col = s.w_lo; col < s.w_hi; col++) {
            const float *restrict px = j->x + span_pixel(w, &s, h, col);
            for (int64_t c = 0; c < w->in_c; c++) y[c] = px[c] > y[c] ? px[c] : y[c];
          }
      }
}

#define CHANNEL_CHUNK 64 /* channels whose running maxima live on the stack at once */

CG_VECTOR_CLONES
static void max_pool_grad_images_f32(void *ctx, int64_t b0, int64_t b1)
{
  const pool_f32_job *j = ctx;
  const cg_window *w = j->w;
  int64_t image = w->in_h * w->in_w * w->in_c;
  memset(j->out + b0 * image, 0, (size_t)((b1 - b0) * image) * sizeof(float));
  float best[CHANNEL_CHUNK];
  int64_t at[CHANNEL_CHUNK];
  for (int64_t b = b0; b < b1; b++)
    for (int64_t oh = 0; oh < w->out_h; oh++)
      for (int64_t ow = 0; ow < w->out_w; ow++) {
        pool_span s = span_at(w, b, oh, ow);
        for (int64_t c0 = 0; c0 < w->in_c; c0 += CHANNEL_CHUNK) {
          int64_t nc = w->in_c - c0 < CHANNEL_CHUNK ? w->in_c - c0 : CHANNEL_CHUNK;
          int64_t first = span_pixel(w, &s, s.h_lo, s.w_lo) + c0;
          for (int64_t c = 0; c < nc; c++) {
            best[c] = j->x[first + c];
            at[c] = first + c;
          }
          for (int64_t h = s.h_lo; h < s.h_hi; h++)
            for (int64_t col = s.w_lo; col < s.w_hi; col++) {
              int64_t p = span_pixel(w, &s, h, col) + c0;
              for (int64_t c = 0; c < nc; c++)
                if (j->x[p + c] > best[c]) {
                  best[c] = j->x[p + c];
                  at[c] = p + c;
                }
            }
          for (int64_t c = 0; c < nc; c++) j->out[at[c]] += j->g[s.y_at + c0 + c];
        }
      }
}

/* The same gradient when windows never overlap (stride >= window, as 2x2 pools with stride
 * 2) and channels come in blocks of 16: each input cell belongs to at most one window, so dx
 * is written cell by cell, dy where the cell holds its window's first maximum and 0
 * elsewhere, with no scatter. The running maximum and its cell live in vector registers
 * (GCC vector types: comparisons give all-ones lanes, selects are bitwise). Cells outside
 * every window (VALID leftovers, SAME padding) are zeroed first. */
#pragma GCC diagnostic ignored "-Wpsabi" /* the vectors never cross a call: all inlined */
typedef float vec16f __attribute__((vector_size(64)));
typedef int32_t vec16i __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) vec16f load16f(const float *p)
{
  vec16f v;
  memcpy(&v, p, sizeof v);
  return v;
}

CG_VECTOR_CLONES
static void max_pool_grad_disjoint_f32(void *ctx, int64_t b0, int64_t b1)
{
  const pool_f32_job *j = ctx;
  const cg_window *w = j->w;
  int64_t image = w->in_h * w->in_w * w->in_c;
  bool covered = w->pad_top == 0 && w->pad_left == 0 && w->k_h == w->stride_h &&
                 w->k_w == w->stride_w && w->out_h * w->k_h == w->in_h && w->out_w * w->k_w == w->in_w;
  if (!covered) memset(j->out + b0 * image, 0, (size_t)((b1 - b0) * image) * sizeof(float));
  for (int64_t b = b0; b < b1; b++)
    for (int64_t oh = 0; oh < w->out_h; oh++)
      for (int64_t ow = 0; ow < w->out_w; ow++) {
        pool_span s = span_at(w, b, oh, ow);
        for (int64_t c0 = 0; c0 < w->in_c; c0 += 16) {
          vec16f best = load16f(j->x + span_pixel(w, &s, s.h_lo, s.w_lo) + c0);
          vec16i first = {0}; /* cell of the first maximum, numbered row-major in the window */
          int32_t cell = 0;
          for (int64_t h = s.h_lo; h < s.h_hi; h++)
            for (int64_t col = s.w_lo; col < s.w_hi; col++, cell++) {
              vec16f v = load16f(j->x + span_pixel(w, &s, h, col) + c0);
              vec16i more = v > best;
              best = (vec16f)((more & (vec16i)v) | (~more & (vec16i)best));
              first = (more & cell) | (~more & first);
            }
          vec16i g = (vec16i)load16f(j->g + s.y_at + c0);
          cell = 0;
          for (int64_t h = s.h_lo; h < s.h_hi; h++)
            for (int64_t col = s.w_lo; col < s.w_hi; col++, cell++) {
              vec16f d = (vec16f)((first == cell) & g); /* all-ones lanes keep dy, the rest 0 */
              memcpy(j->out + span_pixel(w, &s, h, col) + c0, &d, sizeof d);
            }
        }
      }
}

/* Runs an f32 kernel image by image over the threads; false if it does not apply. */
static bool pool_f32(const cg_window *w, cg_range_fn images, const cg_tensor *x,
                     const cg_tensor *g, cg_tensor *out)
{
  if (x->dtype != CG_F32 || w->in_c == 0) return false;
  pool_f32_job j = {w, CG_F32P(x), g ? CG_F32P(g) : NULL, CG_F32P(out)};
  int64_t image = w->in_h * w->in_w * w->in_c;
  cg__parallel_for(w->batch, CG_PARALLEL_MIN_ELEMENTS / (image ? image : 1) + 1, images, &j);
  return true;
}

/* ======================================================================================
 * MaxPool2D: y[b,i,j,c] = max over the window at (i, j) of x[b,.,.,c] (padding excluded)
 *            dx = MaxPool2DGrad(x, dy)
 * ==================================================================================== */

static cg_status max_pool_run(cg_node *n)
{
  cg_window w;
  cg_status st = pooled_input_window(n, &w);
  const cg_tensor *x = cg_node_input(n, 0);
  if (st != CG_OK || pool_f32(&w, max_pool_images_f32, x, NULL, cg_node_output(n, 0))) return st;
  return gather_maxima(&w, x, x, cg_node_output(n, 0));
}

static cg_status max_pool_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_attrs a = {0};
  cg_status st = window_attrs_of(op, NULL, NULL, &a);
  if (st != CG_OK) return st;
  dx[0] = cg_apply2(&max_pool_grad_def, cg_node_input(op, 0), dy[0], &a);
  return cg_status_of(dx[0]);
}

static const cg_op_def max_pool_def = {"MaxPool2D", 1, pool_infer, max_pool_run, 0, NULL};

/* ======================================================================================
 * MaxPool2DGrad(x, g): dx[argmax of each window] += g[that window's output]; zero elsewhere.
 * Linear in g and piecewise constant in x:
 *            dg = MaxPool2DGradGrad(x, ddx);  x gets no gradient
 * ==================================================================================== */

/* Inputs x (0) and a tensor of the pooled shape (1), both float of one dtype. */
static cg_status max_pool_grad_window(const cg_node *n, cg_window *w)
{
  cg_status st;
  if ((st = pooled_input_window(n, w)) != CG_OK || (st = cg__require_same_dtype(n, 0, 1)) != CG_OK)
    return st;
  int64_t y[4];
  cg__window_out_shape(w, y);
  return check_shape(n, 1, "dy", y, "pooling gives");
}

static cg_status max_pool_grad_infer(cg_node *n)
{
  cg_window w;
  cg_status st = max_pool_grad_window(n, &w);
  return st != CG_OK ? st : cg_infer_same_as_input(n, 0);
}

static cg_status max_pool_grad_run(cg_node *n)
{
  cg_window w;
  cg_status st = max_pool_grad_window(n, &w);
  if (st != CG_OK) return st;
  const cg_tensor *x = cg_node_input(n, 0), *g = cg_node_input(n, 1);
  cg_tensor *dx = cg_node_output(n, 0);
  bool disjoint = w.stride_h >= w.k_h && w.stride_w >= w.k_w && w.in_c % 16 == 0;
  if (pool_f32(&w, disjoint ? max_pool_grad_disjoint_f32 : max_pool_grad_images_f32, x, g, dx))
    return CG_OK;
  int64_t *argmax = window_argmax(&w, x, g->size);
  if (!argmax) return cg_last_status();
  zero(dx);
  for (int64_t o = 0; o < g->size; o++) add(dx, argmax[o], get(g, o));
  cg__free(argmax, (size_t)g->size * sizeof(int64_t));
  return CG_OK;
}

static cg_status max_pool_grad_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                    void *user)
{
  cg_attrs a = {0};
  cg_status st = window_attrs_of(op, NULL, NULL, &a);
  if (st != CG_OK) return st;
  dx[0] = NULL;
  dx[1] = cg_apply2(&max_pool_grad_grad_def, cg_node_input(op, 0), dy[0], &a);
  return cg_status_of(dx[1]);
}

static const cg_op_def max_pool_grad_def = {"MaxPool2DGrad", 2, max_pool_grad_infer,
                                            max_pool_grad_run, 0, NULL};

/* ======================================================================================
 * MaxPool2DGradGrad(x, ddx): z[o] = ddx[argmax of window o in x], of the pooled shape.
 * Linear in ddx (the adjoint of MaxPool2DGrad in g), piecewise constant in x; it is the
 * gradient of MaxPool2DGrad and the tangent of MaxPool2D, so third derivatives pass here:
 *            dddx = MaxPool2DGrad(x, dz);  x gets no gradient
 * ==================================================================================== */

static cg_status max_pool_grad_grad_window(const cg_node *n, cg_window *w)
{
  cg_status st;
  if ((st = pooled_input_window(n, w)) != CG_OK || (st = cg__require_same_dtype(n, 0, 1)) != CG_OK)
    return st;
  return check_shape(n, 1, "ddx", cg_node_input(n, 0)->shape, "the input has");
}

static cg_status max_pool_grad_grad_infer(cg_node *n)
{
  cg_window w;
  cg_status st = max_pool_grad_grad_window(n, &w);
  if (st != CG_OK) return st;
  int64_t y[4];
  cg__window_out_shape(&w, y);
  return cg_node_set_output(n, 0, cg_node_input(n, 0)->dtype, 4, y);
}

static cg_status max_pool_grad_grad_run(cg_node *n)
{
  cg_window w;
  cg_status st = max_pool_grad_grad_window(n, &w);
  return st != CG_OK ? st
                     : gather_maxima(&w, cg_node_input(n, 0), cg_node_input(n, 1),
                                     cg_node_output(n, 0));
}

static cg_status max_pool_grad_grad_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                         void *user)
{
  cg_attrs a = {0};
  cg_status st = window_attrs_of(op, NULL, NULL, &a);
  if (st != CG_OK) return st;
  dx[0] = NULL;
  dx[1] = cg_apply2(&max_pool_grad_def, cg_node_input(op, 0), dy[0], &a);
  return cg_status_of(dx[1]);
}

static const cg_op_def max_pool_grad_grad_def = {"MaxPool2DGradGrad", 2, max_pool_grad_grad_infer,
                                                 max_pool_grad_grad_run, 0, NULL};

/* ======================================================================================
 * AvgPool2D: y[b,i,j,c] = mean of x[b,.,.,c] over the in-bounds cells of window (i, j)
 *            dx = AvgPool2DGrad(dy; input_shape = shape(x))
 * ==================================================================================== */

/* What the averaging kernels read (src) and write (dst). */
typedef struct {
  const cg_tensor *src;
  cg_tensor *dst;
} pool_io;

/* src = x, dst = y */
static void average_window(const cg_window *w, const pool_span *s, void *ctx)
{
  const pool_io *io = ctx;
  double count = (double)((s->h_hi - s->h_lo) * (s->w_hi - s->w_lo));
  for (int64_t c = 0; c < w->in_c; c++) put(io->dst, s->y_at + c, 0.0);
  for (int64_t h = s->h_lo; h < s->h_hi; h++)
    for (int64_t col = s->w_lo; col < s->w_hi; col++) {
      int64_t at = span_pixel(w, s, h, col);
      for (int64_t c = 0; c < w->in_c; c++) add(io->dst, s->y_at + c, get(io->src, at + c) / count);
    }
}

static cg_status avg_pool_run(cg_node *n)
{
  cg_window w;
  cg_status st = pooled_input_window(n, &w);
  if (st != CG_OK) return st;
  for_each_window(&w, average_window, &(pool_io){cg_node_input(n, 0), cg_node_output(n, 0)});
  return CG_OK;
}

static cg_status avg_pool_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_attrs a = {0};
  cg_status st = window_attrs_of(op, "input_shape", cg_node_input(op, 0)->shape, &a);
  if (st != CG_OK) return st;
  dx[0] = cg_apply1(&avg_pool_grad_def, dy[0], &a);
  return cg_status_of(dx[0]);
}

static const cg_op_def avg_pool_def = {"AvgPool2D", 1, pool_infer, avg_pool_run, 0, NULL};

/* ======================================================================================
 * AvgPool2DGrad(g; input_shape): dx[cell] = sum over the windows w holding the cell of
 *            g[w] / (in-bounds cells of w).  Linear in g, the adjoint of AvgPool2D:
 *            dg = AvgPool2D(ddx)
 * ==================================================================================== */

static cg_status avg_pool_grad_window(const cg_node *n, int64_t x[4], cg_window *w)
{
  cg_status st;
  if ((st = cg__require_float(n, 0)) != CG_OK ||
      (st = cg__require_rank4(n, 0, "dy (NHWC)")) != CG_OK ||
      (st = cg__shape4_attr(n, "input_shape", x)) != CG_OK || (st = pool_window(n, x, w)) != CG_OK)
    return st;
  int64_t y[4];
  cg__window_out_shape(w, y);
  return check_shape(n, 0, "dy", y, "pooling gives");
}

static cg_status avg_pool_grad_infer(cg_node *n)
{
  int64_t x[4];
  cg_window w;
  cg_status st = avg_pool_grad_window(n, x, &w);
  return st != CG_OK ? st : cg_node_set_output(n, 0, cg_node_input(n, 0)->dtype, 4, x);
}

/* The adjoint of average_window (src = dy, dst = dx): each dy spread over its window. */
static void spread_window(const cg_window *w, const pool_span *s, void *ctx)
{
  const pool_io *io = ctx;
  double count = (double)((s->h_hi - s->h_lo) * (s->w_hi - s->w_lo));
  for (int64_t h = s->h_lo; h < s->h_hi; h++)
    for (int64_t col = s->w_lo; col < s->w_hi; col++) {
      int64_t at = span_pixel(w, s, h, col);
      for (int64_t c = 0; c < w->in_c; c++) add(io->dst, at + c, get(io->src, s->y_at + c) / count);
    }
}

static cg_status avg_pool_grad_run(cg_node *n)
{
  int64_t x[4];
  cg_window w;
  cg_status st = avg_pool_grad_window(n, x, &w);
  if (st != CG_OK) return st;
  cg_tensor *dx = cg_node_output(n, 0);
  zero(dx);
  for_each_window(&w, spread_window, &(pool_io){cg_node_input(n, 0), dx});
  return CG_OK;
}

static cg_status avg_pool_grad_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                    void *user)
{
  cg_attrs a = {0};
  cg_status st = window_attrs_of(op, NULL, NULL, &a);
  if (st != CG_OK) return st;
  dx[0] = cg_apply1(&avg_pool_def, dy[0], &a);
  return cg_status_of(dx[0]);
}

static const cg_op_def avg_pool_grad_def = {"AvgPool2DGrad", 1, avg_pool_grad_infer,
                                            avg_pool_grad_run, 0, NULL};

/* ======================================================================================
 * Public wrappers and registration
 * ==================================================================================== */

/* A NULL ksize leaves it out (the shape rule reports it); NULL strides mean 1. */
static void pool_attrs(cg_attrs *a, const int ksize[2], const int strides[2], cg_padding padding)
{
  if (ksize) cg__attrs_pair(a, "ksize", ksize);
  cg__attrs_pair(a, "strides", strides);
  cg_attrs_set_int(a, "padding", padding);
}

cg_tensor *cg_max_pool2d(cg_tensor *x, const int ksize[2], const int strides[2], cg_padding padding)
{
  cg_attrs a = {0};
  pool_attrs(&a, ksize, strides, padding);
  return cg_apply1(&max_pool_def, x, &a);
}

cg_tensor *cg_avg_pool2d(cg_tensor *x, const int ksize[2], const int strides[2], cg_padding padding)
{
  cg_attrs a = {0};
  pool_attrs(&a, ksize, strides, padding);
  return cg_apply1(&avg_pool_def, x, &a);
}

cg_tensor *cg_max_pool2d_grad(cg_tensor *x, cg_tensor *dy, const int ksize[2], const int strides[2],
                              cg_padding padding)
{
  cg_attrs a = {0};
  pool_attrs(&a, ksize, strides, padding);
  return cg_apply2(&max_pool_grad_def, x, dy, &a);
}

cg_tensor *cg_avg_pool2d_grad(const int64_t input_shape[4], cg_tensor *dy, const int ksize[2],
                              const int strides[2], cg_padding padding)
{
  cg_attrs a = {0};
  pool_attrs(&a, ksize, strides, padding);
  if (input_shape) cg_attrs_set_ints(&a, "input_shape", input_shape, 4);
  return cg_apply1(&avg_pool_grad_def, dy, &a);
}

cg_status cg__register_pool_ops(void)
{
  cg_status st;
  if ((st = cg__register_builtin(&max_pool_def, max_pool_grad)) != CG_OK ||
      (st = cg__register_builtin(&max_pool_grad_def, max_pool_grad_grad)) != CG_OK ||
      (st = cg__register_builtin(&max_pool_grad_grad_def, max_pool_grad_grad_grad)) != CG_OK ||
      (st = cg__register_builtin(&avg_pool_def, avg_pool_grad)) != CG_OK ||
      (st = cg__register_builtin(&avg_pool_grad_def, avg_pool_grad_grad)) != CG_OK)
    return st;
  return CG_OK;
}

/* conv.c - 2-D convolution over NHWC input with an HWIO filter: Conv2D and its two
 * gradients Conv2DBackpropInput and Conv2DBackpropFilter, each differentiable in turn. The
 * kernels are im2col + BLAS GEMM, or direct loops for filters of few taps (conv_direct.c);
 * the plain loops of the reference section are what they are tested against. Window
 * geometry lives in conv_geometry.c, pooling in pool.c. */
#include "conv_direct.h"
#include "parallel.h"
#include <limits.h>
#include <stdio.h>

static const cg_op_def conv2d_def, backprop_input_def, backprop_filter_def;

/* ======================================================================================
 * Checks shared by the three ops
 * ==================================================================================== */

/* Two float inputs of one dtype and rank 4, named what0 and what1 in messages. */
static cg_status check_inputs(const cg_node *n, const char *what0, const char *what1)
{
  cg_status st;
  if ((st = cg__require_float(n, 0)) != CG_OK || (st = cg__require_same_dtype(n, 0, 1)) != CG_OK ||
      (st = cg__require_rank4(n, 0, what0)) != CG_OK)
    return st;
  return cg__require_rank4(n, 1, what1);
}

/* Places node n's window over input shape x for filter shape f, after checking the filter
 * is not empty and its input channels match x's. */
static cg_status conv_window(const cg_node *n, const int64_t x[4], const int64_t f[4], cg_window *w)
{
  const char *op = cg_node_op_type(n);
  char xs[160], fs[160], context[360];
  snprintf(context, sizeof context, "input %s, filter %s", cg__fmt_shape(4, x, xs, sizeof xs),
           cg__fmt_shape(4, f, fs, sizeof fs));
  if (f[0] == 0 || f[1] == 0 || f[2] == 0 || f[3] == 0)
    return cg_set_error(CG_ESHAPE, "%s: the filter is empty: %s", op, context);
  if (x[3] != f[2])
    return cg_set_error(CG_ESHAPE,
                        "%s: the input has %lld channels but the filter expects %lld: %s", op,
                        (long long)x[3], (long long)f[2], context);
  cg_window_spec s = {.size = {f[0], f[1]}};
  cg_status st = cg__window_spec_read(n, NULL, &s);
  return st != CG_OK ? st : cg__window_place(op, x, f[3], &s, context, w);
}

/* The backprop ops' dy (input i) must have exactly the shape Conv2D gives for w. */
static cg_status check_dy(const cg_node *n, int i, const cg_window *w)
{
  int64_t y[4];
  cg__window_out_shape(w, y);
  const cg_tensor *dy = cg_node_input(n, i);
  if (cg__shape_equal(dy->ndim, dy->shape, 4, y)) return CG_OK;
  char ys[160];
  return cg_set_error(CG_ESHAPE, "%s: dy has shape %s but the convolution gives %s",
                      cg_node_op_type(n), cg__in_shape(n, i), cg__fmt_shape(4, y, ys, sizeof ys));
}

/* ======================================================================================
 * Fast kernels: im2col + GEMM
 *
 * The im2col matrix has one row per output position p = (b, oh, ow) and one column per
 * filter tap (kh, kw, c), holding the input value that tap sees (0 in the padding). With it
 * Conv2D is cols x filter[taps, out_c], and the gradients are the two other products. It
 * is built a chunk of rows at a time so that memory stays bounded for big inputs.
 * ==================================================================================== */

#define CHUNK_ELEMENTS ((int64_t)1 << 20)

typedef struct {
  const cg_window *w;
  cg_dtype dtype;
  size_t esize;
  int64_t positions; /* rows of the whole matrix: batch * out_h * out_w */
  int64_t taps;      /* its columns: k_h * k_w * in_c                   */
  int64_t rows;      /* rows per chunk                                  */
  void *cols;        /* one chunk, rows x taps                          */
} im2col_plan;

/* The input row (or column) that output o's tap k reads, or -1 inside the padding. */
static inline int64_t tap_at(int64_t o, int64_t k, int64_t stride, int64_t dilation, int64_t pad,
                             int64_t in)
{
  int64_t i = o * stride - pad + k * dilation;
  return i >= 0 && i < in ? i : -1;
}

/* positions = size of the conv output / out_c; the caller's tensors bound every product.
 * When a chunk holds at least one image it holds whole images, so that col2im can give
 * each thread images of its own. */
static cg_status plan_begin(im2col_plan *p, const cg_node *n, const cg_window *w, cg_dtype d,
                            int64_t output_size)
{
  *p = (im2col_plan){.w = w, .dtype = d, .esize = cg_dtype_size(d),
                     .positions = output_size / w->out_c, .taps = w->k_h * w->k_w * w->in_c};
  if (p->taps > INT_MAX || w->out_c > INT_MAX)
    return cg_set_error(CG_EINVAL,
                        "%s: a filter with %lld taps and %lld outputs is too large for BLAS",
                        cg_node_op_type(n), (long long)p->taps, (long long)w->out_c);
  int64_t image = w->out_h * w->out_w;
  p->rows = CHUNK_ELEMENTS / p->taps;
  if (image > 0 && p->rows >= image) p->rows = p->rows / image * image;
  if (p->rows < 1) p->rows = 1;
  if (p->rows > p->positions) p->rows = p->positions;
  if (p->positions == 0) return CG_OK;
  p->cols = cg__alloc((size_t)(p->rows * p->taps) * p->esize);
  return p->cols ? CG_OK : cg_last_status();
}

static void plan_end(im2col_plan *p)
{
  if (p->cols) cg__free(p->cols, (size_t)(p->rows * p->taps) * p->esize);
}

/* One chunk's work for the threads: rows [p0, p0 + m) of the im2col matrix, read from x
 * (im2col) or added into dx (col2im). */
typedef struct {
  const im2col_plan *p;
  const char *x;
  char *dx;
  int64_t p0, m;
} chunk_job;

/* n elements of the plan's dtype; a loop rather than memcpy, whose call would cost more
 * than the copy for the few channels of a first layer. */
static inline void copy_pixel(cg_dtype d, void *restrict dst, const void *restrict src, int64_t n)
{
  if (d == CG_F32)
    for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = ((const float *)src)[i];
  else
    for (int64_t i = 0; i < n; i++) ((double *)dst)[i] = ((const double *)src)[i];
}

/* Chunk rows [begin, end) (relative to p0) of the im2col matrix of x. */
static void im2col_range(void *ctx, int64_t begin, int64_t end)
{
  const chunk_job *j = ctx;
  const im2col_plan *p = j->p;
  const cg_window *w = p->w;
  size_t pixel = (size_t)w->in_c * p->esize;
  char *dst = (char *)p->cols + (size_t)(begin * p->taps) * p->esize;
  for (int64_t r = j->p0 + begin; r < j->p0 + end; r++) {
    int64_t ow = r % w->out_w, oh = r / w->out_w % w->out_h, b = r / w->out_w / w->out_h;
    for (int64_t kh = 0; kh < w->k_h; kh++) {
      int64_t h = tap_at(oh, kh, w->stride_h, w->dil_h, w->pad_top, w->in_h);
      for (int64_t kw = 0; kw < w->k_w; kw++, dst += pixel) {
        int64_t c = tap_at(ow, kw, w->stride_w, w->dil_w, w->pad_left, w->in_w);
        if (h < 0 || c < 0) memset(dst, 0, pixel);
        else copy_pixel(p->dtype, dst, j->x + (size_t)((b * w->in_h + h) * w->in_w + c) * pixel, w->in_c);
      }
    }
  }
}

/* Fills the chunk with rows [p0, p0+m) of the im2col matrix of x, split over the threads. */
static void im2col_rows(const im2col_plan *p, const char *x, int64_t p0, int64_t m)
{
  chunk_job j = {p, x, NULL, p0, m};
  cg__parallel_for(m, CG_PARALLEL_MIN_ELEMENTS / p->taps + 1, im2col_range, &j);
}

static void add_into(cg_dtype d, void *restrict dst, const void *restrict src, int64_t n)
{
  if (d == CG_F32) {
    float *restrict o = dst;
    const float *restrict s = src;
    for (int64_t i = 0; i < n; i++) o[i] += s[i];
  } else {
    double *restrict o = dst;
    const double *restrict s = src;
    for (int64_t i = 0; i < n; i++) o[i] += s[i];
  }
}

/* The reverse of im2col for chunk rows [begin, end): adds each tap's value into the input
 * cell it came from (dx must start zeroed), row after row. */
static void col2im_range(void *ctx, int64_t begin, int64_t end)
{
  const chunk_job *j = ctx;
  const im2col_plan *p = j->p;
  const cg_window *w = p->w;
  size_t pixel = (size_t)w->in_c * p->esize;
  const char *src = (const char *)p->cols + (size_t)(begin * p->taps) * p->esize;
  for (int64_t r = j->p0 + begin; r < j->p0 + end; r++) {
    int64_t ow = r % w->out_w, oh = r / w->out_w % w->out_h, b = r / w->out_w / w->out_h;
    for (int64_t kh = 0; kh < w->k_h; kh++) {
      int64_t h = tap_at(oh, kh, w->stride_h, w->dil_h, w->pad_top, w->in_h);
      for (int64_t kw = 0; kw < w->k_w; kw++, src += pixel) {
        int64_t c = tap_at(ow, kw, w->stride_w, w->dil_w, w->pad_left, w->in_w);
        if (h >= 0 && c >= 0)
          add_into(p->dtype, j->dx + (size_t)((b * w->in_h + h) * w->in_w + c) * pixel, src, w->in_c);
      }
    }
  }
}

/* Images [begin, end) of the chunk: rows of different images never add into one cell. */
static void col2im_images(void *ctx, int64_t begin, int64_t end)
{
  const chunk_job *j = ctx;
  int64_t image = j->p->w->out_h * j->p->w->out_w;
  col2im_range(ctx, begin * image, end * image < j->m ? end * image : j->m);
}

/* col2im of chunk rows [p0, p0+m): image by image over the threads when the chunk holds
 * whole images (plan_begin), else on this thread. Each cell gets its additions in row
 * order either way. */
static void col2im_add_rows(const im2col_plan *p, char *dx, int64_t p0, int64_t m)
{
  chunk_job j = {p, NULL, dx, p0, m};
  int64_t image = p->w->out_h * p->w->out_w;
  if (image > 0 && p0 % image == 0 && m % image == 0)
    cg__parallel_for(m / image, CG_PARALLEL_MIN_ELEMENTS / (image * p->taps) + 1, col2im_images, &j);
  else
    col2im_range(&j, 0, m);
}

/* c = op(a) op(b) + beta c, row-major, in the plan's precision. Sizes fit int (plan_begin). */
static void gemm(cg_dtype d, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                 const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                 int64_t ldc)
{
  cg__gemm(d, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

/* y[positions, out_c] = cols[positions, taps] x f[taps, out_c] */
static cg_status conv2d_gemm(const cg_node *n, const cg_window *w, const cg_tensor *x,
                             const cg_tensor *f, cg_tensor *y)
{
  if (x->dtype == CG_F32 && w->k_h * w->k_w * w->in_c <= CG_DIRECT_CONV_MAX_TAPS) {
    cg__conv2d_direct_f32(w, CG_F32P(x), CG_F32P(f), CG_F32P(y));
    return CG_OK;
  }
  im2col_plan p;
  cg_status st = plan_begin(&p, n, w, x->dtype, y->size);
  if (st != CG_OK) return st;
  for (int64_t p0 = 0; p0 < p.positions; p0 += p.rows) {
    int64_t m = p.positions - p0 < p.rows ? p.positions - p0 : p.rows;
    im2col_rows(&p, x->data, p0, m);
    gemm(p.dtype, false, false, m, w->out_c, p.taps, p.cols, p.taps, f->data, w->out_c, 0.0,
         (char *)y->data + (size_t)(p0 * w->out_c) * p.esize, w->out_c);
  }
  plan_end(&p);
  return CG_OK;
}

/* cols[chunk, taps] = dy[chunk, out_c] x f[taps, out_c]^T, then scattered back into dx. */
static cg_status backprop_input_gemm(const cg_node *n, const cg_window *w, const cg_tensor *f,
                                     const cg_tensor *dy, cg_tensor *dx)
{
  im2col_plan p;
  cg_status st = plan_begin(&p, n, w, dy->dtype, dy->size);
  if (st != CG_OK) return st;
  memset(dx->data, 0, (size_t)dx->size * p.esize);
  for (int64_t p0 = 0; p0 < p.positions; p0 += p.rows) {
    int64_t m = p.positions - p0 < p.rows ? p.positions - p0 : p.rows;
    gemm(p.dtype, false, true, m, p.taps, w->out_c,
         (const char *)dy->data + (size_t)(p0 * w->out_c) * p.esize, w->out_c, f->data, w->out_c,
         0.0, p.cols, p.taps);
    col2im_add_rows(&p, dx->data, p0, m);
  }
  plan_end(&p);
  return CG_OK;
}

/* df[taps, out_c] = sum over chunks of cols[chunk, taps]^T x dy[chunk, out_c] */
static cg_status backprop_filter_gemm(const cg_node *n, const cg_window *w, const cg_tensor *x,
                                      const cg_tensor *dy, cg_tensor *df)
{
  if (x->dtype == CG_F32 && w->k_h * w->k_w * w->in_c <= CG_DIRECT_CONV_MAX_TAPS)
    return cg__conv2d_backprop_filter_direct_f32(w, CG_F32P(x), CG_F32P(dy), CG_F32P(df));
  im2col_plan p;
  cg_status st = plan_begin(&p, n, w, x->dtype, dy->size);
  if (st != CG_OK) return st;
  memset(df->data, 0, (size_t)df->size * p.esize);
  for (int64_t p0 = 0; p0 < p.positions; p0 += p.rows) {
    int64_t m = p.positions - p0 < p.rows ? p.positions - p0 : p.rows;
    im2col_rows(&p, x->data, p0, m);
    gemm(p.dtype, true, false, p.taps, w->out_c, m, p.cols, p.taps,
         (const char *)dy->data + (size_t)(p0 * w->out_c) * p.esize, w->out_c, 1.0, df->data,
         w->out_c);
  }
  plan_end(&p);
  return CG_OK;
}

/* ======================================================================================
 * Reference kernels: the definition, one multiply-add at a time
 * ==================================================================================== */

/* The three arrays one reference kernel reads (a, b) and accumulates into (out). */
typedef struct {
  const double *a, *b;
  double *out;
} tap_arrays;

/* Offsets of an input pixel, a filter tap (kh, kw) and an output pixel that meet. */
typedef void (*tap_fn)(const cg_window *w, int64_t x_at, int64_t f_at, int64_t y_at,
                       const tap_arrays *t);

/* Calls fn for every (output pixel, filter tap) pair whose tap lands inside the input. */
static void for_each_tap(const cg_window *w, tap_fn fn, const tap_arrays *t)
{
  for (int64_t b = 0; b < w->batch; b++)
    for (int64_t oh = 0; oh < w->out_h; oh++)
      for (int64_t ow = 0; ow < w->out_w; ow++)
        for (int64_t kh = 0; kh < w->k_h; kh++)
          for (int64_t kw = 0; kw < w->k_w; kw++) {
            int64_t h = tap_at(oh, kh, w->stride_h, w->dil_h, w->pad_top, w->in_h);
            int64_t c = tap_at(ow, kw, w->stride_w, w->dil_w, w->pad_left, w->in_w);
            if (h < 0 || c < 0) continue;
            fn(w, ((b * w->in_h + h) * w->in_w + c) * w->in_c,
               (kh * w->k_w + kw) * w->in_c * w->out_c,
               ((b * w->out_h + oh) * w->out_w + ow) * w->out_c, t);
          }
}

/* y += x * f  (a = x, b = f, out = y) */
static void conv_tap(const cg_window *w, int64_t x_at, int64_t f_at, int64_t y_at,
                     const tap_arrays *t)
{
  for (int64_t i = 0; i < w->in_c; i++)
    for (int64_t o = 0; o < w->out_c; o++)
      t->out[y_at + o] += t->a[x_at + i] * t->b[f_at + i * w->out_c + o];
}

/* dx += f * dy  (a = f, b = dy, out = dx) */
static void backprop_input_tap(const cg_window *w, int64_t x_at, int64_t f_at, int64_t y_at,
                               const tap_arrays *t)
{
  for (int64_t i = 0; i < w->in_c; i++)
    for (int64_t o = 0; o < w->out_c; o++)
      t->out[x_at + i] += t->a[f_at + i * w->out_c + o] * t->b[y_at + o];
}

/* df += x * dy  (a = x, b = dy, out = df) */
static void backprop_filter_tap(const cg_window *w, int64_t x_at, int64_t f_at, int64_t y_at,
                                const tap_arrays *t)
{
  for (int64_t i = 0; i < w->in_c; i++)
    for (int64_t o = 0; o < w->out_c; o++)
      t->out[f_at + i * w->out_c + o] += t->a[x_at + i] * t->b[y_at + o];
}

void cg__conv2d_reference(const cg_window *w, const double *x, const double *f, double *y)
{
  memset(y, 0, (size_t)(w->batch * w->out_h * w->out_w * w->out_c) * sizeof *y);
  for_each_tap(w, conv_tap, &(tap_arrays){x, f, y});
}

void cg__conv2d_backprop_input_reference(const cg_window *w, const double *f, const double *dy,
                                         double *dx)
{
  memset(dx, 0, (size_t)(w->batch * w->in_h * w->in_w * w->in_c) * sizeof *dx);
  for_each_tap(w, backprop_input_tap, &(tap_arrays){f, dy, dx});
}

void cg__conv2d_backprop_filter_reference(const cg_window *w, const double *x, const double *dy,
                                          double *df)
{
  memset(df, 0, (size_t)(w->k_h * w->k_w * w->in_c * w->out_c) * sizeof *df);
  for_each_tap(w, backprop_filter_tap, &(tap_arrays){x, dy, df});
}

/* ======================================================================================
 * Gradients build the other two ops with the window attributes of the op differentiated
 * ==================================================================================== */

/* def(a, b) with op's strides, padding and dilations, plus shape_attr = shape if named. */
static cg_tensor *apply_with_window_of(const cg_node *op, const cg_op_def *def,
                                       const char *shape_attr, const int64_t *shape, cg_tensor *a,
                                       cg_tensor *b)
{
  cg_window_spec s = {.padding = CG_PAD_VALID};
  cg_attrs attrs = {0};
  if (cg__window_spec_read(op, NULL, &s) != CG_OK ||
      cg__window_spec_write(&s, NULL, &attrs) != CG_OK)
    return NULL;
  if (shape_attr && cg_attrs_set_ints(&attrs, shape_attr, shape, 4) != CG_OK) return NULL;
  return cg_apply2(def, a, b, &attrs);
}

/* The gradients op needs (cg_node_needs_input_grad): an input nobody differentiates
 * against, such as a batch of images, costs no convolution. */
static cg_status both_or_error(const cg_node *op, cg_tensor **dx)
{
  for (int i = 0; i < 2; i++)
    if (cg_node_needs_input_grad(op, i) && !dx[i]) return cg_status_of(NULL);
  return CG_OK;
}

/* ======================================================================================
 * Conv2D: y[b,i,j,o] = sum_{kh,kw,c} x[b, i*sh + kh*dh - pad_top, j*sw + kw*dw - pad_left, c]
 *                                     * f[kh,kw,c,o]      (0 outside x)
 *         dx = Conv2DBackpropInput(shape(x), f, dy);  df = Conv2DBackpropFilter(x, shape(f), dy)
 * ==================================================================================== */

static cg_status conv2d_window(const cg_node *n, cg_window *w)
{
  cg_status st = check_inputs(n, "input (NHWC)", "filter (HWIO)");
  return st != CG_OK ? st
                     : conv_window(n, cg_node_input(n, 0)->shape, cg_node_input(n, 1)->shape, w);
}

static cg_status conv2d_infer(cg_node *n)
{
  cg_window w;
  cg_status st = conv2d_window(n, &w);
  if (st != CG_OK) return st;
  int64_t y[4];
  cg__window_out_shape(&w, y);
  return cg_node_set_output(n, 0, cg_node_input(n, 0)->dtype, 4, y);
}

static cg_status conv2d_run(cg_node *n)
{
  cg_window w;
  cg_status st = conv2d_window(n, &w);
  return st != CG_OK ? st
                     : conv2d_gemm(n, &w, cg_node_input(n, 0), cg_node_input(n, 1),
                                   cg_node_output(n, 0));
}

static cg_status conv2d_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0), *f = cg_node_input(op, 1);
  if (cg_node_needs_input_grad(op, 0))
    dx[0] = apply_with_window_of(op, &backprop_input_def, "input_shape", x->shape, f, dy[0]);
  if (cg_node_needs_input_grad(op, 1))
    dx[1] = apply_with_window_of(op, &backprop_filter_def, "filter_shape", f->shape, x, dy[0]);
  return both_or_error(op, dx);
}

static const cg_op_def conv2d_def = {"Conv2D", 2, conv2d_infer, conv2d_run, 0, NULL};

/* ======================================================================================
 * Conv2DBackpropInput(f, g; input_shape) = d<Conv2D(x, f), g>/dx, x of input_shape.
 * Linear in f and in g; for dz shaped like x:
 *         df = Conv2DBackpropFilter(dz, shape(f), g);  dg = Conv2D(dz, f)
 * ==================================================================================== */

static cg_status backprop_input_window(const cg_node *n, int64_t x[4], cg_window *w)
{
  cg_status st;
  if ((st = check_inputs(n, "filter (HWIO)", "dy (NHWC)")) != CG_OK ||
      (st = cg__shape4_attr(n, "input_shape", x)) != CG_OK ||
      (st = conv_window(n, x, cg_node_input(n, 0)->shape, w)) != CG_OK)
    return st;
  return check_dy(n, 1, w);
}

static cg_status backprop_input_infer(cg_node *n)
{
  int64_t x[4];
  cg_window w;
  cg_status st = backprop_input_window(n, x, &w);
  return st != CG_OK ? st : cg_node_set_output(n, 0, cg_node_input(n, 0)->dtype, 4, x);
}

static cg_status backprop_input_run(cg_node *n)
{
  int64_t x[4];
  cg_window w;
  cg_status st = backprop_input_window(n, x, &w);
  return st != CG_OK ? st
                     : backprop_input_gemm(n, &w, cg_node_input(n, 0), cg_node_input(n, 1),
                                           cg_node_output(n, 0));
}

static cg_status backprop_input_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                     void *user)
{
  cg_tensor *f = cg_node_input(op, 0), *g = cg_node_input(op, 1);
  if (cg_node_needs_input_grad(op, 0))
    dx[0] = apply_with_window_of(op, &backprop_filter_def, "filter_shape", f->shape, dy[0], g);
  if (cg_node_needs_input_grad(op, 1))
    dx[1] = apply_with_window_of(op, &conv2d_def, NULL, NULL, dy[0], f);
  return both_or_error(op, dx);
}

static const cg_op_def backprop_input_def = {"Conv2DBackpropInput", 2, backprop_input_infer,
                                             backprop_input_run, 0, NULL};

/* ======================================================================================
 * Conv2DBackpropFilter(x, g; filter_shape) = d<Conv2D(x, f), g>/df, f of filter_shape.
 * Linear in x and in g; for dw shaped like f:
 *         dx = Conv2DBackpropInput(shape(x), dw, g);  dg = Conv2D(x, dw)
 * ==================================================================================== */

static cg_status backprop_filter_window(const cg_node *n, int64_t f[4], cg_window *w)
{
  cg_status st;
  if ((st = check_inputs(n, "input (NHWC)", "dy (NHWC)")) != CG_OK ||
      (st = cg__shape4_attr(n, "filter_shape", f)) != CG_OK ||
      (st = conv_window(n, cg_node_input(n, 0)->shape, f, w)) != CG_OK)
    return st;
  return check_dy(n, 1, w);
}

static cg_status backprop_filter_infer(cg_node *n)
{
  int64_t f[4];
  cg_window w;
  cg_status st = backprop_filter_window(n, f, &w);
  return st != CG_OK ? st : cg_node_set_output(n, 0, cg_node_input(n, 0)->dtype, 4, f);
}

static cg_status backprop_filter_run(cg_node *n)
{
  int64_t f[4];
  cg_window w;
  cg_status st = backprop_filter_window(n, f, &w);
  return st != CG_OK ? st
                     : backprop_filter_gemm(n, &w, cg_node_input(n, 0), cg_node_input(n, 1),
                                            cg_node_output(n, 0));
}

static cg_status backprop_filter_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                      void *user)
{
  cg_tensor *x = cg_node_input(op, 0), *g = cg_node_input(op, 1);
  if (cg_node_needs_input_grad(op, 0))
    dx[0] = apply_with_window_of(op, &backprop_input_def, "input_shape", x->shape, dy[0], g);
  if (cg_node_needs_input_grad(op, 1))
    dx[1] = apply_with_window_of(op, &conv2d_def, NULL, NULL, x, dy[0]);
  return both_or_error(op, dx);
}

static const cg_op_def backprop_filter_def = {"Conv2DBackpropFilter", 2, backprop_filter_infer,
                                              backprop_filter_run, 0, NULL};

/* ======================================================================================
 * Public wrappers and registration
 * ==================================================================================== */

/* NULL strides or dilations mean 1 along both axes. */
static void conv_attrs(cg_attrs *a, const int strides[2], cg_padding padding,
                       const int dilations[2])
{
  cg__attrs_pair(a, "strides", strides);
  cg__attrs_pair(a, "dilations", dilations);
  cg_attrs_set_int(a, "padding", padding);
}

cg_tensor *cg_conv2d(cg_tensor *x, cg_tensor *filter, const int strides[2], cg_padding padding,
                     const int dilations[2])
{
  cg_attrs a = {0};
  conv_attrs(&a, strides, padding, dilations);
  return cg_apply2(&conv2d_def, x, filter, &a);
}

/* A NULL shape leaves the attribute out, which the shape rule reports. */
cg_tensor *cg_conv2d_backprop_input(const int64_t input_shape[4], cg_tensor *filter,
                                    cg_tensor *dy, const int strides[2], cg_padding padding,
                                    const int dilations[2])
{
  cg_attrs a = {0};
  conv_attrs(&a, strides, padding, dilations);
  if (input_shape) cg_attrs_set_ints(&a, "input_shape", input_shape, 4);
  return cg_apply2(&backprop_input_def, filter, dy, &a);
}

cg_tensor *cg_conv2d_backprop_filter(cg_tensor *x, const int64_t filter_shape[4],
                                     cg_tensor *dy, const int strides[2], cg_padding padding,
                                     const int dilations[2])
{
  cg_attrs a = {0};
  conv_attrs(&a, strides, padding, dilations);
  if (filter_shape) cg_attrs_set_ints(&a, "filter_shape", filter_shape, 4);
  return cg_apply2(&backprop_filter_def, x, dy, &a);
}

cg_status cg__register_conv_ops(void)
{
  cg_status st;
  if ((st = cg__register_builtin(&conv2d_def, conv2d_grad)) != CG_OK ||
      (st = cg__register_builtin(&backprop_input_def, backprop_input_grad)) != CG_OK ||
      (st = cg__register_builtin(&backprop_filter_def, backprop_filter_grad)) != CG_OK)
    return st;
  return cg__register_pool_ops();
}

/* conv_direct.c - the direct f32 convolution kernels of conv_direct.h. Each output pixel
 * (forward) or filter tap (filter gradient) sums into blocks of 16 output channels held in
 * vector registers (GCC vector types, so every target_clones version keeps them there; a
 * float array would be summed through memory); the last channels that do not fill a block
 * are summed one at a time. Images are spread over the threads. */
#include "conv_direct.h"
#include "parallel.h"
#include <stdlib.h>
#include <string.h>

/* The vector helpers are always inlined: no vector crosses a call, so the ABI note GCC
 * gives for 64-byte vectors on targets without AVX-512 does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define LANES 16     /* floats per vector block                          */
#define MAX_VECS 4   /* blocks summed at once: 64 output channels         */
typedef float vec16 __attribute__((vector_size(LANES * sizeof(float))));

static inline __attribute__((always_inline)) vec16 load16(const float *p)
{
  vec16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline __attribute__((always_inline)) void store16(float *p, vec16 v)
{
  memcpy(p, &v, sizeof v);
}

/* The input row (or column) that output o's tap k reads, or -1 inside the padding. */
static inline int64_t tap_at(int64_t o, int64_t k, int64_t stride, int64_t dilation, int64_t pad,
                             int64_t in)
{
  int64_t i = o * stride - pad + k * dilation;
  return i >= 0 && i < in ? i : -1;
}

/* For each kw, the output columns [lo[kw], hi[kw]) whose tap kw lands inside the input:
 * the tap's column is linear in the output column, so they are one run. */
static void column_runs(const cg_window *w, int64_t *lo, int64_t *hi)
{
  for (int64_t kw = 0; kw < w->k_w; kw++) {
    lo[kw] = 0;
    while (lo[kw] < w->out_w && tap_at(lo[kw], kw, w->stride_w, w->dil_w, w->pad_left, w->in_w) < 0)
      lo[kw]++;
    hi[kw] = lo[kw];
    while (hi[kw] < w->out_w && tap_at(hi[kw], kw, w->stride_w, w->dil_w, w->pad_left, w->in_w) >= 0)
      hi[kw]++;
  }
}

typedef struct {
  const cg_window *w;
  const float *x, *f, *dy;
  float *y, *partial;                  /* partial: one [taps, out_c] block per image */
  int64_t lo[CG_DIRECT_CONV_MAX_TAPS], hi[CG_DIRECT_CONV_MAX_TAPS];
} direct_job;

/* ======================================================================================
 * Forward: y[pixel, o0:o0+n] = sum over taps of x(tap) * f[tap, o0:o0+n]
 * ==================================================================================== */

/* y[pixel, o0 : o0 + 16 nv] for nv blocks of 16 channels (nv a constant where inlined). */
static inline __attribute__((always_inline)) void forward_vectors(const direct_job *j, int64_t b,
                                                                  int64_t oh, int64_t ow,
                                                                  int64_t o0, int nv)
{
  const cg_window *w = j->w;
  vec16 acc[MAX_VECS];
  for (int k = 0; k < nv; k++) acc[k] = (vec16){0};
  for (int64_t kh = 0; kh < w->k_h; kh++) {
    int64_t h = tap_at(oh, kh, w->stride_h, w->dil_h, w->pad_top, w->in_h);
    if (h < 0) continue;
    for (int64_t kw = 0; kw < w->k_w; kw++) {
      if (ow < j->lo[kw] || ow >= j->hi[kw]) continue;
      int64_t c = ow * w->stride_w - w->pad_left + kw * w->dil_w;
      const float *px = j->x + ((b * w->in_h + h) * w->in_w + c) * w->in_c;
      const float *taps = j->f + (kh * w->k_w + kw) * w->in_c * w->out_c + o0;
      for (int64_t ci = 0; ci < w->in_c; ci++) {
        float v = px[ci]; /* vector * scalar: GCC broadcasts v once */
        for (int k = 0; k < nv; k++) acc[k] += load16(taps + ci * w->out_c + k * LANES) * v;
      }
    }
  }
  float *y = j->y + ((b * w->out_h + oh) * w->out_w + ow) * w->out_c + o0;
  for (int k = 0; k < nv; k++) store16(y + k * LANES, acc[k]);
}

/* The same for the last n < 16 channels, one at a time. */
static void forward_tail(const direct_job *j, int64_t b, int64_t oh, int64_t ow, int64_t o0,
                         int64_t n)
{
  const cg_window *w = j->w;
  float *y = j->y + ((b * w->out_h + oh) * w->out_w + ow) * w->out_c + o0;
  for (int64_t o = 0; o < n; o++) y[o] = 0;
  for (int64_t kh = 0; kh < w->k_h; kh++) {
    int64_t h = tap_at(oh, kh, w->stride_h, w->dil_h, w->pad_top, w->in_h);
    if (h < 0) continue;
    for (int64_t kw = 0; kw < w->k_w; kw++) {
      if (ow < j->lo[kw] || ow >= j->hi[kw]) continue;
      int64_t c = ow * w->stride_w - w->pad_left + kw * w->dil_w;
      const float *px = j->x + ((b * w->in_h + h) * w->in_w + c) * w->in_c;
      const float *taps = j->f + (kh * w->k_w + kw) * w->in_c * w->out_c + o0;
      for (int64_t ci = 0; ci < w->in_c; ci++)
        for (int64_t o = 0; o < n; o++) y[o] += px[ci] * taps[ci * w->out_c + o];
    }
  }
}

CG_VECTOR_CLONES
static void forward_images(void *ctx, int64_t b0, int64_t b1)
{
  const direct_job *j = ctx;
  const cg_window *w = j->w;
  for (int64_t b = b0; b < b1; b++)
    for (int64_t oh = 0; oh < w->out_h; oh++)
      for (int64_t ow = 0; ow < w->out_w; ow++) {
        int64_t o0 = 0;
        for (; o0 + MAX_VECS * LANES <= w->out_c; o0 += MAX_VECS * LANES)
          forward_vectors(j, b, oh, ow, o0, 4);
        switch ((w->out_c - o0) / LANES) { /* constant block counts unroll into registers */
        case 3: forward_vectors(j, b, oh, ow, o0, 3); break;
        case 2: forward_vectors(j, b, oh, ow, o0, 2); break;
        case 1: forward_vectors(j, b, oh, ow, o0, 1); break;
        default: break;
        }
        o0 += (w->out_c - o0) / LANES * LANES;
        if (o0 < w->out_c) forward_tail(j, b, oh, ow, o0, w->out_c - o0);
      }
}

void cg__conv2d_direct_f32(const cg_window *w, const float *x, const float *f, float *y)
{
  direct_job j = {.w = w, .x = x, .f = f, .y = y};
  column_runs(w, j.lo, j.hi);
  int64_t image = w->out_h * w->out_w * w->out_c * w->k_h * w->k_w * w->in_c;
  cg__parallel_for(w->batch, CG_PARALLEL_MIN_ELEMENTS / (image ? image : 1) + 1, forward_images, &j);
}

/* ======================================================================================
 * Filter gradient: df[tap, o0:o0+n] = sum over output pixels of x(tap) * dy[pixel, o0:o0+n],
 * one image at a time, two running sums so that additions overlap
 * ==================================================================================== */

/* df[tap (kh, kw, ci), o0 : o0 + 16 nv] of image b into out; nv = 0 sums the n < 16
 * channels left over, one at a time. */
static inline __attribute__((always_inline)) void filter_vectors(const direct_job *j, int64_t b,
                                                                 int64_t kh, int64_t kw,
                                                                 int64_t ci, int64_t o0, int nv,
                                                                 int64_t n, float *restrict out)
{
  const cg_window *w = j->w;
  vec16 even[MAX_VECS], odd[MAX_VECS];
  for (int k = 0; k < nv; k++) even[k] = odd[k] = (vec16){0};
  for (int64_t o = 0; !nv && o < n; o++) out[o] = 0;
  int64_t lo = j->lo[kw], hi = j->hi[kw], sw = w->stride_w * w->in_c;
  for (int64_t oh = 0; oh < w->out_h; oh++) {
    int64_t h = tap_at(oh, kh, w->stride_h, w->dil_h, w->pad_top, w->in_h);
    if (h < 0) continue;
    const float *x = j->x + ((b * w->in_h + h) * w->in_w + kw * w->dil_w - w->pad_left) * w->in_c + ci;
    const float *g = j->dy + (b * w->out_h + oh) * w->out_w * w->out_c + o0;
    if (!nv) {
      for (int64_t ow = lo; ow < hi; ow++)
        for (int64_t o = 0; o < n; o++) out[o] += x[ow * sw] * g[ow * w->out_c + o];
      continue;
    }
    int64_t ow = lo;
    for (; ow + 1 < hi; ow += 2) { /* two running sums, so that the additions overlap */
      float v0 = x[ow * sw], v1 = x[(ow + 1) * sw];
      for (int k = 0; k < nv; k++) {
        even[k] += load16(g + ow * w->out_c + k * LANES) * v0;
        odd[k] += load16(g + (ow + 1) * w->out_c + k * LANES) * v1;
      }
    }
    if (ow < hi) {
      float v = x[ow * sw];
      for (int k = 0; k < nv; k++) even[k] += load16(g + ow * w->out_c + k * LANES) * v;
    }
  }
  for (int k = 0; k < nv; k++) store16(out + k * LANES, even[k] + odd[k]);
}

CG_VECTOR_CLONES
static void filter_images(void *ctx, int64_t b0, int64_t b1)
{
  const direct_job *j = ctx;
  const cg_window *w = j->w;
  int64_t block = w->k_h * w->k_w * w->in_c * w->out_c;
  for (int64_t b = b0; b < b1; b++)
    for (int64_t kh = 0; kh < w->k_h; kh++)
      for (int64_t kw = 0; kw < w->k_w; kw++)
        for (int64_t ci = 0; ci < w->in_c; ci++) {
          float *out = j->partial + b * block + ((kh * w->k_w + kw) * w->in_c + ci) * w->out_c;
          int64_t o0 = 0;
          for (; o0 + MAX_VECS * LANES <= w->out_c; o0 += MAX_VECS * LANES)
            filter_vectors(j, b, kh, kw, ci, o0, 4, 0, out + o0);
          switch ((w->out_c - o0) / LANES) {
          case 3: filter_vectors(j, b, kh, kw, ci, o0, 3, 0, out + o0); break;
          case 2: filter_vectors(j, b, kh, kw, ci, o0, 2, 0, out + o0); break;
          case 1: filter_vectors(j, b, kh, kw, ci, o0, 1, 0, out + o0); break;
          default: break;
          }
          o0 += (w->out_c - o0) / LANES * LANES;
          if (o0 < w->out_c) filter_vectors(j, b, kh, kw, ci, o0, 0, w->out_c - o0, out + o0);
        }
}

cg_status cg__conv2d_backprop_filter_direct_f32(const cg_window *w, const float *x,
                                                const float *dy, float *df)
{
  int64_t block = w->k_h * w->k_w * w->in_c * w->out_c;
  direct_job j = {.w = w, .x = x, .dy = dy,
                  .partial = cg__malloc((size_t)((w->batch ? w->batch : 1) * block) * sizeof(float))};
  if (!j.partial) return cg_last_status();
  column_runs(w, j.lo, j.hi);
  int64_t image = w->out_h * w->out_w * block;
  cg__parallel_for(w->batch, CG_PARALLEL_MIN_ELEMENTS / (image ? image : 1) + 1, filter_images, &j);
  for (int64_t i = 0; i < block; i++) { /* the images' sums, added in image order */
    double sum = 0;
    for (int64_t b = 0; b < w->batch; b++) sum += j.partial[b * block + i];
    df[i] = (float)sum;
  }
  free(j.partial);
  return CG_OK;
}

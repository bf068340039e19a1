/* conv_direct.h - direct f32 convolution kernels for filters with few taps (a first layer on
 * one-channel images: 3x3x1 = 9 taps), where im2col + GEMM spends its time copying pixels
 * one at a time and running a GEMM with an inner dimension of 9. conv.c uses them below
 * CG_DIRECT_CONV_MAX_TAPS and tests them against the reference loops. */
#ifndef CG_OPS_CONV_DIRECT_H
#define CG_OPS_CONV_DIRECT_H

#include "conv_geometry.h"

#define CG_DIRECT_CONV_MAX_TAPS 32 /* k_h * k_w * in_c at most */

/* y = conv(x, f) over the window w: y[b,i,j,:] = sum over taps of x * f[tap, :]. */
void cg__conv2d_direct_f32(const cg_window *w, const float *x, const float *f, float *y);
/* df = d<conv(x, f), dy>/df: df[tap, :] = sum over output pixels of x(tap) * dy[pixel, :].
 * Each image's sum is taken on its own, then the images are added in order, so the result
 * does not depend on how many threads ran it. */
cg_status cg__conv2d_backprop_filter_direct_f32(const cg_window *w, const float *x,
                                                const float *dy, float *df);

#endif

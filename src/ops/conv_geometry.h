/* conv_geometry.h - what the convolution (conv.c) and pooling (pool.c) ops share: the
 * geometry of a 2-D window sliding over NHWC data under TensorFlow's VALID/SAME rules with
 * strides and dilations, the window attributes, and the plain reference kernels that the
 * fast convolution kernels are tested against. */
#ifndef CG_OPS_CONV_GEOMETRY_H
#define CG_OPS_CONV_GEOMETRY_H

#include "kernel.h"

/* What the attributes say about a window, before it meets an input. */
typedef struct {
  int64_t size[2];      /* window height, width: filter [kh, kw, ...] or ksize       */
  int64_t strides[2];   /* > 0                                                        */
  int64_t dilations[2]; /* > 0; pools have 1                                          */
  int64_t padding;      /* CG_PAD_VALID or CG_PAD_SAME                               */
} cg_window_spec;

/* A window placed over an input: every size a kernel loops over. */
typedef struct {
  int64_t batch, in_h, in_w, in_c; /* input  [batch, in_h, in_w, in_c]                   */
  int64_t k_h, k_w, out_c;         /* conv filter [k_h, k_w, in_c, out_c]; pools out_c = in_c */
  int64_t out_h, out_w;            /* output [batch, out_h, out_w, out_c]                */
  int64_t stride_h, stride_w, dil_h, dil_w;
  int64_t pad_top, pad_left;       /* cells of padding before input row 0 / column 0     */
} cg_window;

/* Reads "strides", "padding" and either "dilations" (size_attr NULL: conv ops; size comes
 * from the filter) or the window size size_attr ("ksize": pools; dilations 1). Absent
 * strides and dilations are 1, absent padding VALID; an absent size_attr is an error. */
cg_status cg__window_spec_read(const cg_node *n, const char *size_attr, cg_window_spec *s);
/* Writes the attributes cg__window_spec_read reads back into a. */
cg_status cg__window_spec_write(const cg_window_spec *s, const char *size_attr, cg_attrs *a);

/* Checks s (positive sizes, strides, dilations; known padding) and places it over an NHWC
 * input of shape x: VALID keeps the windows that fit whole, SAME gives ceil(in / stride)
 * outputs and pads the missing cells, the smaller half before. Errors name op and end with
 * context, e.g. "input [1,4,4,2], filter [3,3,2,8]". */
cg_status cg__window_place(const char *op, const int64_t x[4], int64_t out_c,
                           const cg_window_spec *s, const char *context, cg_window *w);
/* [batch, out_h, out_w, out_c] */
void cg__window_out_shape(const cg_window *w, int64_t out[4]);

/* CG_ESHAPE unless input i of n has rank 4; what names it: "input (NHWC)", "filter (HWIO)". */
cg_status cg__require_rank4(const cg_node *n, int i, const char *what);
/* A 4-int shape attribute (input_shape, filter_shape): present, non-negative, sized safely. */
cg_status cg__shape4_attr(const cg_node *n, const char *name, int64_t out[4]);

/* Direct convolution loops in double precision (conv.c), the truth for the GEMM kernels:
 * y = conv(x, f), dx = d<y,dy>/dx, df = d<y,dy>/df, all row-major and dense. */
void cg__conv2d_reference(const cg_window *w, const double *x, const double *f, double *y);
void cg__conv2d_backprop_input_reference(const cg_window *w, const double *f, const double *dy,
                                         double *dx);
void cg__conv2d_backprop_filter_reference(const cg_window *w, const double *x, const double *dy,
                                          double *df);

/* Registers the pooling ops and gradients (pool.c); cg__register_conv_ops calls it. */
cg_status cg__register_pool_ops(void);

#endif

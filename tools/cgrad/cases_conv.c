/* cases_conv.c - gradient-check rows for convolution and pooling (src/ops/conv.c, pool.c):
 * VALID and SAME, stride 1 and 2, dilation 2, windows that leave rows over. Every op here is
 * linear in its differentiated inputs (or piecewise so, for max pooling, whose random inputs
 * keep maxima apart), so all rows also check the second derivative. The backprop ops take
 * their shape attribute (input_shape, filter_shape) from the row's attribute function. */
#include "cases.h"

#define F64(nd, lo, hi, ...) {CG_F64, nd, {__VA_ARGS__}, lo, hi}
#define NHWC(n, h, w, c) F64(4, -1, 1, n, h, w, c)
#define HWIO(h, w, i, o) F64(4, -1, 1, h, w, i, o)

/* ======================================================================================
 * Attribute functions, one per configuration the rows use
 * ==================================================================================== */

static void conv_window(cg_attrs *a, int64_t sh, int64_t sw, cg_padding padding, int64_t dh,
                        int64_t dw)
{
  const int64_t strides[2] = {sh, sw}, dilations[2] = {dh, dw};
  cg_attrs_set_ints(a, "strides", strides, 2);
  cg_attrs_set_ints(a, "dilations", dilations, 2);
  cg_attrs_set_int(a, "padding", padding);
}

static void shape_attr(cg_attrs *a, const char *name, int64_t d0, int64_t d1, int64_t d2,
                       int64_t d3)
{
  const int64_t shape[4] = {d0, d1, d2, d3};
  cg_attrs_set_ints(a, name, shape, 4);
}

static void pool_window(cg_attrs *a, int64_t k, int64_t s, cg_padding padding)
{
  const int64_t ksize[2] = {k, k}, strides[2] = {s, s};
  cg_attrs_set_ints(a, "ksize", ksize, 2);
  cg_attrs_set_ints(a, "strides", strides, 2);
  cg_attrs_set_int(a, "padding", padding);
}

static void valid_s1(cg_attrs *a) { conv_window(a, 1, 1, CG_PAD_VALID, 1, 1); }
static void valid_s2(cg_attrs *a) { conv_window(a, 2, 2, CG_PAD_VALID, 1, 1); }
static void same_s2(cg_attrs *a) { conv_window(a, 2, 2, CG_PAD_SAME, 1, 1); }
static void valid_d2(cg_attrs *a) { conv_window(a, 1, 1, CG_PAD_VALID, 2, 2); }
static void same_d2(cg_attrs *a) { conv_window(a, 1, 1, CG_PAD_SAME, 2, 2); }
static void same_s12_d21(cg_attrs *a) { conv_window(a, 1, 2, CG_PAD_SAME, 2, 1); }
static void same_s21(cg_attrs *a) { conv_window(a, 2, 1, CG_PAD_SAME, 1, 1); }

static void input_valid_s1(cg_attrs *a) { valid_s1(a); shape_attr(a, "input_shape", 1, 4, 4, 2); }
static void input_same_s2(cg_attrs *a) { same_s2(a); shape_attr(a, "input_shape", 1, 5, 5, 1); }
static void input_valid_s2(cg_attrs *a) { valid_s2(a); shape_attr(a, "input_shape", 1, 6, 6, 1); }
static void input_same_d2(cg_attrs *a) { same_d2(a); shape_attr(a, "input_shape", 2, 5, 5, 2); }

static void filter_valid_s1(cg_attrs *a) { valid_s1(a); shape_attr(a, "filter_shape", 3, 3, 2, 2); }
static void filter_same_s2(cg_attrs *a) { same_s2(a); shape_attr(a, "filter_shape", 3, 3, 1, 2); }
static void filter_valid_d2(cg_attrs *a) { valid_d2(a); shape_attr(a, "filter_shape", 2, 2, 1, 2); }
static void filter_same_s21(cg_attrs *a) { same_s21(a); shape_attr(a, "filter_shape", 2, 2, 2, 1); }

static void pool2_valid_s2(cg_attrs *a) { pool_window(a, 2, 2, CG_PAD_VALID); }
static void pool2_valid_s1(cg_attrs *a) { pool_window(a, 2, 1, CG_PAD_VALID); }
static void pool3_valid_s1(cg_attrs *a) { pool_window(a, 3, 1, CG_PAD_VALID); }
static void pool3_same_s2(cg_attrs *a) { pool_window(a, 3, 2, CG_PAD_SAME); }
static void pool2_same_s1(cg_attrs *a) { pool_window(a, 2, 1, CG_PAD_SAME); }
static void pool3_same_s1(cg_attrs *a) { pool_window(a, 3, 1, CG_PAD_SAME); }

static void avg_input_valid_s2(cg_attrs *a)
{
  pool2_valid_s2(a);
  shape_attr(a, "input_shape", 1, 4, 4, 2);
}
static void avg_input_same_s2(cg_attrs *a)
{
  pool3_same_s2(a);
  shape_attr(a, "input_shape", 2, 5, 5, 1);
}
static void avg_input_leftover(cg_attrs *a)
{
  pool_window(a, 3, 2, CG_PAD_VALID);
  shape_attr(a, "input_shape", 1, 6, 5, 1);
}

/* ======================================================================================
 * The rows
 * ==================================================================================== */

const cg_grad_case cg_cases_conv[] = {
    /* Conv2D(x, filter) */
    {"Conv2D", "VALID stride 1 [2,4,4,2] * [3,3,2,3]", 2, {NHWC(2, 4, 4, 2), HWIO(3, 3, 2, 3)},
     valid_s1, NULL, 1},
    {"Conv2D", "SAME stride 2 [1,5,5,2] * [3,3,2,2]", 2, {NHWC(1, 5, 5, 2), HWIO(3, 3, 2, 2)},
     same_s2, NULL, 1},
    {"Conv2D", "SAME stride 2, even filter pads after [1,5,4,1] * [2,2,1,2]", 2,
     {NHWC(1, 5, 4, 1), HWIO(2, 2, 1, 2)}, same_s2, NULL, 1},
    {"Conv2D", "VALID stride 2, rows left over [1,6,5,1] * [3,3,1,1]", 2,
     {NHWC(1, 6, 5, 1), HWIO(3, 3, 1, 1)}, valid_s2, NULL, 1},
    {"Conv2D", "VALID dilation 2 [1,5,5,2] * [2,2,2,2]", 2, {NHWC(1, 5, 5, 2), HWIO(2, 2, 2, 2)},
     valid_d2, NULL, 1},
    {"Conv2D", "SAME dilation 2 [1,4,4,1] * [3,3,1,2]", 2, {NHWC(1, 4, 4, 1), HWIO(3, 3, 1, 2)},
     same_d2, NULL, 1},
    {"Conv2D", "SAME strides [1,2] dilations [2,1] [1,5,6,2] * [2,3,2,1]", 2,
     {NHWC(1, 5, 6, 2), HWIO(2, 3, 2, 1)}, same_s12_d21, NULL, 1},
    {"Conv2D", "size 1: 1x1 filter on 1x1 input [3,1,1,2] * [1,1,2,2]", 2,
     {NHWC(3, 1, 1, 2), HWIO(1, 1, 2, 2)}, valid_s1, NULL, 1},

    /* Conv2DBackpropInput(filter, dy; input_shape) */
    {"Conv2DBackpropInput", "VALID stride 1 into [1,4,4,2]", 2,
     {HWIO(3, 3, 2, 2), NHWC(1, 2, 2, 2)}, input_valid_s1, NULL, 1},
    {"Conv2DBackpropInput", "SAME stride 2 into [1,5,5,1]", 2,
     {HWIO(3, 3, 1, 2), NHWC(1, 3, 3, 2)}, input_same_s2, NULL, 1},
    {"Conv2DBackpropInput", "VALID stride 2, rows left over, into [1,6,6,1]", 2,
     {HWIO(3, 3, 1, 1), NHWC(1, 2, 2, 1)}, input_valid_s2, NULL, 1},
    {"Conv2DBackpropInput", "SAME dilation 2 into [2,5,5,2]", 2,
     {HWIO(2, 2, 2, 1), NHWC(2, 5, 5, 1)}, input_same_d2, NULL, 1},

    /* Conv2DBackpropFilter(x, dy; filter_shape) */
    {"Conv2DBackpropFilter", "VALID stride 1 to [3,3,2,2]", 2,
     {NHWC(1, 4, 4, 2), NHWC(1, 2, 2, 2)}, filter_valid_s1, NULL, 1},
    {"Conv2DBackpropFilter", "SAME stride 2 to [3,3,1,2]", 2,
     {NHWC(2, 5, 5, 1), NHWC(2, 3, 3, 2)}, filter_same_s2, NULL, 1},
    {"Conv2DBackpropFilter", "VALID dilation 2 to [2,2,1,2]", 2,
     {NHWC(1, 5, 5, 1), NHWC(1, 3, 3, 2)}, filter_valid_d2, NULL, 1},
    {"Conv2DBackpropFilter", "SAME strides [2,1] to [2,2,2,1]", 2,
     {NHWC(1, 4, 5, 2), NHWC(1, 2, 5, 1)}, filter_same_s21, NULL, 1},

    /* MaxPool2D(x) */
    {"MaxPool2D", "VALID 2x2 stride 2 [1,4,4,2]", 1, {NHWC(1, 4, 4, 2)}, pool2_valid_s2, NULL, 1},
    {"MaxPool2D", "SAME 3x3 stride 2 [2,5,5,1]", 1, {NHWC(2, 5, 5, 1)}, pool3_same_s2, NULL, 1},
    {"MaxPool2D", "VALID 3x3 stride 1, overlapping [1,4,5,2]", 1, {NHWC(1, 4, 5, 2)},
     pool3_valid_s1, NULL, 1},
    {"MaxPool2D", "size 1: SAME 2x2 on 1x1 input [1,1,1,3]", 1, {NHWC(1, 1, 1, 3)},
     pool2_same_s1, NULL, 1},

    /* MaxPool2DGrad(x, dy) */
    {"MaxPool2DGrad", "VALID 2x2 stride 2", 2, {NHWC(1, 4, 4, 2), NHWC(1, 2, 2, 2)},
     pool2_valid_s2, NULL, 1},
    {"MaxPool2DGrad", "SAME 3x3 stride 2", 2, {NHWC(1, 5, 5, 1), NHWC(1, 3, 3, 1)},
     pool3_same_s2, NULL, 1},
    {"MaxPool2DGrad", "VALID 2x2 stride 1, windows sharing maxima", 2,
     {NHWC(1, 3, 3, 1), NHWC(1, 2, 2, 1)}, pool2_valid_s1, NULL, 1},

    /* MaxPool2DGradGrad(x, ddx): linear in ddx, the gradient of MaxPool2DGrad */
    {"MaxPool2DGradGrad", "VALID 2x2 stride 2", 2, {NHWC(1, 4, 4, 2), NHWC(1, 4, 4, 2)},
     pool2_valid_s2, NULL, 1},
    {"MaxPool2DGradGrad", "SAME 3x3 stride 2", 2, {NHWC(2, 5, 5, 1), NHWC(2, 5, 5, 1)},
     pool3_same_s2, NULL, 1},
    {"MaxPool2DGradGrad", "VALID 2x2 stride 1, cells shared by windows", 2,
     {NHWC(1, 3, 3, 1), NHWC(1, 3, 3, 1)}, pool2_valid_s1, NULL, 1},

    /* AvgPool2D(x) */
    {"AvgPool2D", "VALID 2x2 stride 2 [1,4,4,2]", 1, {NHWC(1, 4, 4, 2)}, pool2_valid_s2, NULL, 1},
    {"AvgPool2D", "SAME 3x3 stride 2, partial edge windows [2,5,5,1]", 1, {NHWC(2, 5, 5, 1)},
     pool3_same_s2, NULL, 1},
    {"AvgPool2D", "SAME 2x2 stride 1 [1,3,4,2]", 1, {NHWC(1, 3, 4, 2)}, pool2_same_s1, NULL, 1},
    {"AvgPool2D", "size 1: SAME 3x3 on 1x1 input [1,1,1,2]", 1, {NHWC(1, 1, 1, 2)},
     pool3_same_s1, NULL, 1},

    /* AvgPool2DGrad(dy; input_shape) */
    {"AvgPool2DGrad", "VALID 2x2 stride 2 into [1,4,4,2]", 1, {NHWC(1, 2, 2, 2)},
     avg_input_valid_s2, NULL, 1},
    {"AvgPool2DGrad", "SAME 3x3 stride 2 into [2,5,5,1]", 1, {NHWC(2, 3, 3, 1)},
     avg_input_same_s2, NULL, 1},
    {"AvgPool2DGrad", "VALID 3x3 stride 2, rows left over, into [1,6,5,1]", 1,
     {NHWC(1, 2, 2, 1)}, avg_input_leftover, NULL, 1},
};
const int cg_cases_conv_n = sizeof(cg_cases_conv) / sizeof(cg_cases_conv[0]);

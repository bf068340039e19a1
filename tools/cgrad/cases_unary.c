/* cases_unary.c - gradient-check rows for the element-wise unary ops (src/ops/unary.c).
 * Unary ops do not broadcast, so the rows vary rank (0, size-1, matrix, rank 3) and keep
 * every input domain away from kinks, jumps and poles. */
#include "cases.h"

#define RANK0 0, {0}
#define SIZE1 1, {1}
#define VEC(n) 1, {n}
#define MAT(r, c) 2, {r, c}
#define CUBE(a, b, c) 3, {a, b, c}

/* A row for op on one f64 input of the given shape with values drawn from [lo, hi). */
#define ROW(op, label, shape, lo, hi, order2) \
  {op, label, 1, {{CG_F64, shape, lo, hi}}, NULL, NULL, order2}
/* The same with an attribute setter. */
#define ROW_ATTRS(op, label, shape, lo, hi, attrs, order2) \
  {op, label, 1, {{CG_F64, shape, lo, hi}}, attrs, NULL, order2}

/* Two f64 inputs of one shape: the gradient ops TanhGrad(y, g) and ReluGrad(g, x). */
#define ROW2(op, label, shape, lo0, hi0, lo1, hi1, order2) \
  {op, label, 2, {{CG_F64, shape, lo0, hi0}, {CG_F64, shape, lo1, hi1}}, NULL, NULL, order2}

/* Three f64 inputs of one shape: TanhGradGrad(y, g, d). */
#define ROW3(op, label, shape, lo, hi, order2) \
  {op, label, 3, {{CG_F64, shape, lo, hi}, {CG_F64, shape, lo, hi}, {CG_F64, shape, lo, hi}}, \
   NULL, NULL, order2}

static void leaky_alpha_small(cg_attrs *a) { cg_attrs_set_float(a, "alpha", 0.1); }
static void leaky_alpha_large(cg_attrs *a) { cg_attrs_set_float(a, "alpha", 1.5); }
/* ClipByValue's bounds: [-0.5, 0.5], and [1, 1] (lo == hi: every x is clipped) */
static void clip_half(cg_attrs *a)
{
  cg_attrs_set_float(a, "lo", -0.5);
  cg_attrs_set_float(a, "hi", 0.5);
}
static void clip_one(cg_attrs *a)
{
  cg_attrs_set_float(a, "lo", 1);
  cg_attrs_set_float(a, "hi", 1);
}
/* ClipByValueGrad(g, x): g anywhere, x on one side of a bound (the mask's kinks) */
#define ROW2_ATTRS(op, label, shape, lo0, hi0, lo1, hi1, attrs, order2) \
  {op, label, 2, {{CG_F64, shape, lo0, hi0}, {CG_F64, shape, lo1, hi1}}, attrs, NULL, order2}

const cg_grad_case cg_cases_unary[] = {
    ROW("Neg", "matrix", MAT(2, 3), -2, 2, 1),
    ROW("Neg", "rank 0", RANK0, -2, 2, 1),
    ROW("Abs", "positive side", MAT(2, 3), 0.1, 1, 0),
    ROW("Abs", "negative side", VEC(4), -1, -0.1, 0),
    ROW("Sign", "zero gradient, away from 0", MAT(2, 2), 0.2, 0.4, 0),
    ROW("Square", "matrix", MAT(2, 3), -2, 2, 1),
    ROW("Square", "size 1", SIZE1, -2, 2, 1),
    ROW("Reciprocal", "positive", MAT(2, 3), 0.5, 2, 1),
    ROW("Reciprocal", "negative", VEC(3), -2, -0.5, 1),
    ROW("Sqrt", "matrix", MAT(2, 3), 0.5, 2, 1),
    ROW("Sqrt", "rank 0", RANK0, 0.5, 2, 1),
    ROW("Rsqrt", "matrix", MAT(2, 3), 0.5, 2, 1),
    ROW("Exp", "matrix", MAT(2, 3), -2, 2, 1),
    ROW("Exp", "rank 3", CUBE(2, 1, 3), -1, 1, 1),
    ROW("Expm1", "matrix", MAT(2, 3), -2, 2, 1),
    ROW("Expm1", "near 0", VEC(4), -1e-3, 1e-3, 1),
    ROW("Log", "matrix", MAT(2, 3), 0.5, 2, 1),
    ROW("Log", "size 1", SIZE1, 0.5, 2, 1),
    ROW("Log1p", "matrix", MAT(2, 3), -0.5, 1, 1),
    ROW("Sin", "matrix", MAT(2, 3), -3, 3, 1),
    ROW("Cos", "matrix", MAT(2, 3), -3, 3, 1),
    ROW("Cos", "rank 0", RANK0, -3, 3, 1),
    ROW("Tanh", "matrix", MAT(2, 3), -2, 2, 1),
    ROW("Tanh", "rank 0", RANK0, -2, 2, 1),
    ROW("Sigmoid", "matrix", MAT(2, 3), -3, 3, 1),
    ROW("Sigmoid", "rank 3", CUBE(1, 2, 2), -3, 3, 1),
    ROW("Softplus", "matrix", MAT(2, 3), -3, 3, 1),
    ROW("Softplus", "large magnitudes", VEC(4), -20, 20, 1),
    ROW("Relu", "positive side", MAT(2, 3), 0.1, 1, 0),
    ROW("Relu", "negative side", VEC(4), -1, -0.1, 0),
    ROW_ATTRS("LeakyRelu", "positive side", MAT(2, 3), 0.1, 1, leaky_alpha_small, 0),
    ROW_ATTRS("LeakyRelu", "negative side", VEC(4), -1, -0.1, leaky_alpha_small, 0),
    ROW_ATTRS("LeakyRelu", "alpha 1.5, negative side", SIZE1, -1, -0.1, leaky_alpha_large, 0),
    ROW("Elu", "positive side", MAT(2, 3), 0.1, 1, 1),
    ROW("Elu", "negative side", VEC(4), -2, -0.1, 1),
    ROW("Floor", "zero gradient, away from integers", MAT(2, 2), 0.2, 0.4, 0),
    ROW("Ceil", "zero gradient, away from integers", MAT(2, 2), 0.2, 0.4, 0),
    ROW("Round", "zero gradient, away from halves", MAT(2, 2), 0.2, 0.4, 0),
    ROW2("TanhGrad", "matrix", MAT(2, 3), -0.9, 0.9, -1, 1, 1),
    ROW2("TanhGrad", "rank 0", RANK0, -0.9, 0.9, -1, 1, 1),
    ROW3("TanhGradGrad", "matrix", MAT(2, 3), -1, 1, 1),
    ROW3("TanhGradGrad", "rank 0", RANK0, -1, 1, 1),
    ROW2("ReluGrad", "positive side", MAT(2, 3), -1, 1, 0.1, 1, 1),
    ROW2("ReluGrad", "negative side", VEC(4), -1, 1, -1, -0.1, 1),
    ROW_ATTRS("ClipByValue", "inside [-0.5, 0.5]", MAT(2, 3), -0.4, 0.4, clip_half, 1),
    ROW_ATTRS("ClipByValue", "below lo", VEC(4), -2, -0.6, clip_half, 1),
    ROW_ATTRS("ClipByValue", "above hi, rank 0", RANK0, 0.6, 2, clip_half, 1),
    ROW_ATTRS("ClipByValue", "lo == hi", CUBE(2, 1, 3), 1.5, 3, clip_one, 1),
    ROW2_ATTRS("ClipByValueGrad", "x inside", MAT(2, 3), -1, 1, -0.4, 0.4, clip_half, 1),
    ROW2_ATTRS("ClipByValueGrad", "x outside", VEC(4), -1, 1, 0.6, 2, clip_half, 1),
};
const int cg_cases_unary_n = sizeof cg_cases_unary / sizeof cg_cases_unary[0];

/* cases_reduce.c - gradient-check rows for the reductions (src/ops/reduce.c): every axes
 * form (all, one, negative, several, keepdims), rank 0 and size-1 dims. Prod's inputs stay
 * away from 0 (its gradient divides by x); Max and Min are checked at first order only. */
#include "cases.h"

#define RANK0 0, {0}
#define VEC(n) 1, {n}
#define MAT(r, c) 2, {r, c}
#define CUBE(a, b, c) 3, {a, b, c}

/* A row for op on one f64 input of the given shape with values drawn from [lo, hi). */
#define ROW(op, label, shape, lo, hi, attrs, order2) \
  {op, label, 1, {{CG_F64, shape, lo, hi}}, attrs, NULL, order2}

static void set_axes(cg_attrs *a, const int64_t *axes, int n, int keepdims)
{
  cg_attrs_set_ints(a, "axes", axes, n);
  cg_attrs_set_int(a, "keepdims", keepdims);
}

static void axis0(cg_attrs *a) { set_axes(a, (const int64_t[]){0}, 1, 0); }
static void axis1(cg_attrs *a) { set_axes(a, (const int64_t[]){1}, 1, 0); }
static void axis_last(cg_attrs *a) { set_axes(a, (const int64_t[]){-1}, 1, 0); }
static void axes_0_2(cg_attrs *a) { set_axes(a, (const int64_t[]){0, -1}, 2, 0); }
static void axis0_keep(cg_attrs *a) { set_axes(a, (const int64_t[]){0}, 1, 1); }
static void axis_last_keep(cg_attrs *a) { set_axes(a, (const int64_t[]){-1}, 1, 1); }
static void all_keep(cg_attrs *a) { cg_attrs_set_int(a, "keepdims", 1); }

const cg_grad_case cg_cases_reduce[] = {
    ROW("Sum", "all axes", MAT(2, 3), -1, 1, NULL, 1),
    ROW("Sum", "axis 1", MAT(2, 3), -1, 1, axis1, 1),
    ROW("Sum", "axis -1 of rank 3", CUBE(2, 3, 4), -1, 1, axis_last, 1),
    ROW("Sum", "axes 0 and -1 of rank 3", CUBE(2, 3, 2), -1, 1, axes_0_2, 1),
    ROW("Sum", "axis 0, keepdims", MAT(2, 3), -1, 1, axis0_keep, 1),
    ROW("Sum", "rank 0", RANK0, -1, 1, NULL, 1),
    ROW("Sum", "size-1 axis", MAT(3, 1), -1, 1, axis1, 1),
    ROW("Mean", "all axes", MAT(2, 3), -1, 1, NULL, 1),
    ROW("Mean", "axis 0", MAT(3, 2), -1, 1, axis0, 1),
    ROW("Mean", "all axes with a size-1 dim, keepdims", CUBE(2, 1, 3), -1, 1, all_keep, 1),
    ROW("Mean", "rank 0", RANK0, -1, 1, NULL, 1),
    ROW("Max", "all axes", MAT(2, 3), -1, 1, NULL, 0),
    ROW("Max", "axis -1 of rank 3", CUBE(2, 3, 4), -1, 1, axis_last, 0),
    ROW("Max", "axis 0, keepdims", MAT(3, 2), -1, 1, axis0_keep, 0),
    ROW("Max", "size-1 axis", MAT(3, 1), -1, 1, axis1, 0),
    ROW("Min", "all axes", MAT(2, 3), -1, 1, NULL, 0),
    ROW("Min", "axis 1", MAT(2, 4), -1, 1, axis1, 0),
    ROW("Min", "rank 0", RANK0, -1, 1, NULL, 0),
    ROW("Prod", "all axes, positive", MAT(2, 3), 0.5, 1.5, NULL, 1),
    ROW("Prod", "axis 1, negative", MAT(2, 3), -1.5, -0.5, axis1, 1),
    ROW("Prod", "axis -1 of rank 3, keepdims", CUBE(2, 2, 3), 0.5, 1.5, axis_last_keep, 1),
    ROW("Prod", "axis 0, keepdims", MAT(3, 2), 0.5, 1.5, axis0_keep, 1),
    ROW("Prod", "rank 0", RANK0, 0.5, 1.5, NULL, 1),
    ROW("LogSumExp", "all axes", MAT(2, 3), -2, 2, NULL, 1),
    ROW("LogSumExp", "axis -1 of rank 3", CUBE(2, 3, 4), -2, 2, axis_last, 1),
    ROW("LogSumExp", "axis 0, keepdims", MAT(3, 2), -2, 2, axis0_keep, 1),
    ROW("LogSumExp", "size-1 axis", MAT(3, 1), -2, 2, axis1, 1),
    ROW("LogSumExp", "rank 0", RANK0, -2, 2, NULL, 1),
    ROW("LogSumExp", "vector", VEC(5), -2, 2, NULL, 1),
};
const int cg_cases_reduce_n = sizeof cg_cases_reduce / sizeof cg_cases_reduce[0];

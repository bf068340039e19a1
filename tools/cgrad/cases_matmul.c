/* cases_matmul.c - gradient-check rows for MatMul (src/ops/matmul.c): plain, each
 * transpose, size-1 dims, and batch dims that broadcast (whose gradients the engine sums
 * back). MatMul is bilinear, so every row also checks the second derivative. */
#include "cases.h"

#define MAT(r, c) 2, {r, c}
#define CUBE(a, b, c) 3, {a, b, c}
#define RANK4(a, b, c, d) 4, {a, b, c, d}

/* A row for MatMul on two f64 inputs of the given shapes, with values in [-1, 1). */
#define ROW(label, shape_a, shape_b, attrs) \
  {"MatMul", label, 2, {{CG_F64, shape_a, -1, 1}, {CG_F64, shape_b, -1, 1}}, attrs, NULL, 1}

static void transpose_a(cg_attrs *a) { cg_attrs_set_int(a, "transpose_a", 1); }
static void transpose_b(cg_attrs *a) { cg_attrs_set_int(a, "transpose_b", 1); }
static void transpose_both(cg_attrs *a)
{
  cg_attrs_set_int(a, "transpose_a", 1);
  cg_attrs_set_int(a, "transpose_b", 1);
}

const cg_grad_case cg_cases_matmul[] = {
    ROW("plain [2,3] x [3,4]", MAT(2, 3), MAT(3, 4), NULL),
    ROW("transpose_a [3,2]^T x [3,4]", MAT(3, 2), MAT(3, 4), transpose_a),
    ROW("transpose_b [2,3] x [4,3]^T", MAT(2, 3), MAT(4, 3), transpose_b),
    ROW("both transposed [3,2]^T x [4,3]^T", MAT(3, 2), MAT(4, 3), transpose_both),
    ROW("size-1 dims [1,3] x [3,1]", MAT(1, 3), MAT(3, 1), NULL),
    ROW("batched a, shared b [2,3,4] x [4,5]", CUBE(2, 3, 4), MAT(4, 5), NULL),
    ROW("broadcast batch [1,3,4] x [2,4,2]", CUBE(1, 3, 4), CUBE(2, 4, 2), NULL),
    ROW("shared a, batched b [3,2]^T x [2,2,3]^T", MAT(3, 2), CUBE(2, 2, 3), transpose_both),
    ROW("rank 4 broadcast [2,1,2,3] x [3,2,3]^T", RANK4(2, 1, 2, 3), CUBE(3, 2, 3), transpose_b),
};
const int cg_cases_matmul_n = sizeof cg_cases_matmul / sizeof cg_cases_matmul[0];

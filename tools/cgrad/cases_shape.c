/* cases_shape.c - gradient-check rows for the shape ops (src/ops/shape.c). They are all
 * linear, so every row also checks the second order; rows vary rank 0, size-1 axes and
 * negative axes, and the Split rows weight or pick outputs so each output's path counts. */
#include "cases.h"

#define RANK0 0, {0}
#define VEC(n) 1, {n}
#define MAT(r, c) 2, {r, c}
#define CUBE(a, b, c) 3, {a, b, c}

/* A row for op on one f64 input of the given shape, values in [-1, 1). */
#define ROW(op, label, shape, attrs) {op, label, 1, {{CG_F64, shape, -1, 1}}, attrs, NULL, 1}
/* A row whose output is built by fn (which calls op). */
#define BUILT(op, label, shape, fn) {op, label, 1, {{CG_F64, shape, -1, 1}}, NULL, fn, 1}

#define SET_INTS(a, name, ...)                                                 \
  do {                                                                         \
    static const int64_t v_[] = {__VA_ARGS__};                                 \
    cg_attrs_set_ints(a, name, v_, (int)(sizeof v_ / sizeof v_[0]));           \
  } while (0)

static const int64_t no_ints[1]; /* the list of a rank-0 input's per-axis attributes */

static void shape_3x2(cg_attrs *a) { SET_INTS(a, "shape", 3, 2); }
static void shape_flat(cg_attrs *a) { SET_INTS(a, "shape", -1); }
static void shape_1x1(cg_attrs *a) { SET_INTS(a, "shape", 1, 1); }
static void shape_rank0(cg_attrs *a) { cg_attrs_set_ints(a, "shape", no_ints, 0); }
static void shape_2x3(cg_attrs *a) { SET_INTS(a, "shape", 2, 3); }
static void shape_2x4(cg_attrs *a) { SET_INTS(a, "shape", 2, 4); }
static void shape_2x2(cg_attrs *a) { SET_INTS(a, "shape", 2, 2); }
static void axis_0(cg_attrs *a) { cg_attrs_set_int(a, "axis", 0); }
static void axis_1(cg_attrs *a) { cg_attrs_set_int(a, "axis", 1); }
static void axis_last(cg_attrs *a) { cg_attrs_set_int(a, "axis", -1); }
static void axes_1(cg_attrs *a) { SET_INTS(a, "axes", 1); }
static void perm_201(cg_attrs *a) { SET_INTS(a, "perm", 2, 0, 1); }
static void window_1_1(cg_attrs *a)
{
  SET_INTS(a, "begin", 1, 1);
  SET_INTS(a, "size", 2, -1);
}
static void window_size1(cg_attrs *a)
{
  SET_INTS(a, "begin", 0);
  SET_INTS(a, "size", 1);
}
static void window_rank0(cg_attrs *a)
{
  cg_attrs_set_ints(a, "begin", no_ints, 0);
  cg_attrs_set_ints(a, "size", no_ints, 0);
}
static void pad_2x3(cg_attrs *a)
{
  SET_INTS(a, "paddings", 1, 0, 2, 1);
  cg_attrs_set_float(a, "value", 0.5);
}
static void pad_vec(cg_attrs *a) { SET_INTS(a, "paddings", 2, 3); }
static void pad_rank0(cg_attrs *a) { cg_attrs_set_ints(a, "paddings", no_ints, 0); }
static void tile_2x1(cg_attrs *a) { SET_INTS(a, "multiples", 2, 1); }
static void tile_3x2(cg_attrs *a) { SET_INTS(a, "multiples", 3, 2); }
static void tile_cube(cg_attrs *a) { SET_INTS(a, "multiples", 1, 2, 3); }
static void tile_rank0(cg_attrs *a) { cg_attrs_set_ints(a, "multiples", no_ints, 0); }

/* Split [3,2] into 3 rows and return row0 + 2*row1 + 3*row2: every output, each with
 * its own weight. */
static cg_tensor *split_weighted(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *rows[3];
  if (cg_split(x[0], 3, 0, rows) != CG_OK) return NULL;
  cg_tensor *sum = rows[0];
  for (int k = 1; k < 3; k++) sum = cg_add(sum, cg_mul(rows[k], cg_scalar_like(rows[k], k + 1)));
  return sum;
}

/* Split [2,5] by sizes [1,-1,2] along the last axis and join the pieces back in reverse
 * order, the middle one doubled. */
static cg_tensor *split_sizes_reversed(cg_tensor *const *x, int n, void *user)
{
  static const int64_t sizes[] = {1, -1, 2};
  cg_tensor *p[3];
  if (cg_split_sizes(x[0], sizes, 3, -1, p) != CG_OK) return NULL;
  cg_tensor *joined[3] = {p[2], cg_mul(p[1], cg_scalar_like(p[1], 2)), p[0]};
  return cg_concat(joined, 3, -1);
}

/* Only the second of two halves: the first output gets a zero gradient. */
static cg_tensor *split_second_half(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *halves[2];
  if (cg_split(x[0], 2, 1, halves) != CG_OK) return NULL;
  return halves[1];
}

/* Split into one piece, along a size-1 axis. */
static cg_tensor *split_single(cg_tensor *const *x, int n, void *user)
{
  cg_tensor *whole;
  if (cg_split(x[0], 1, 0, &whole) != CG_OK) return NULL;
  return whole;
}

const cg_grad_case cg_cases_shape[] = {
    ROW("Reshape", "[2,3] -> [3,2]", MAT(2, 3), shape_3x2),
    ROW("Reshape", "[2,1,3] -> [-1]", CUBE(2, 1, 3), shape_flat),
    ROW("Reshape", "rank 0 -> [1,1]", RANK0, shape_1x1),
    ROW("Reshape", "[1] -> rank 0", VEC(1), shape_rank0),
    ROW("ExpandDims", "[2,3] axis -1", MAT(2, 3), axis_last),
    ROW("ExpandDims", "[2,3] axis 1", MAT(2, 3), axis_1),
    ROW("ExpandDims", "rank 0", RANK0, axis_0),
    ROW("Squeeze", "[1,3,1] every size-1 axis", CUBE(1, 3, 1), NULL),
    ROW("Squeeze", "[2,1] axis 1", MAT(2, 1), axes_1),
    ROW("Squeeze", "[1] -> rank 0", VEC(1), NULL),
    ROW("Transpose", "[2,3,4] perm [2,0,1]", CUBE(2, 3, 4), perm_201),
    ROW("Transpose", "[2,3] reversed", MAT(2, 3), NULL),
    ROW("Transpose", "[1,3] reversed", MAT(1, 3), NULL),
    ROW("Transpose", "rank 0", RANK0, NULL),
    {"Concat", "[2,3] + [2,1] axis 1", 2,
     {{CG_F64, MAT(2, 3), -1, 1}, {CG_F64, MAT(2, 1), -1, 1}}, axis_1, NULL, 1},
    {"Concat", "[1,2] + [2,2] + [1,2] axis 0", 3,
     {{CG_F64, MAT(1, 2), -1, 1}, {CG_F64, MAT(2, 2), -1, 1}, {CG_F64, MAT(1, 2), -1, 1}},
     axis_0, NULL, 1},
    {"Concat", "[2,1,2] + [2,3,2] axis 1", 2,
     {{CG_F64, CUBE(2, 1, 2), -1, 1}, {CG_F64, CUBE(2, 3, 2), -1, 1}}, axis_1, NULL, 1},
    {"Concat", "one input [3]", 1, {{CG_F64, VEC(3), -1, 1}}, axis_last, NULL, 1},
    BUILT("Split", "[3,2] num 3, outputs weighted 1,2,3", MAT(3, 2), split_weighted),
    BUILT("Split", "[2,5] sizes [1,-1,2] axis -1, rejoined", MAT(2, 5), split_sizes_reversed),
    BUILT("Split", "[2,4] num 2 axis 1, second output only", MAT(2, 4), split_second_half),
    BUILT("Split", "[1,3] num 1", MAT(1, 3), split_single),
    ROW("Slice", "[3,4] begin [1,1] size [2,-1]", MAT(3, 4), window_1_1),
    ROW("Slice", "[1] whole", VEC(1), window_size1),
    ROW("Slice", "rank 0", RANK0, window_rank0),
    ROW("Pad", "[2,3] paddings [1,0,2,1] value 0.5", MAT(2, 3), pad_2x3),
    ROW("Pad", "[1] paddings [2,3]", VEC(1), pad_vec),
    ROW("Pad", "rank 0", RANK0, pad_rank0),
    ROW("Tile", "[2,3] multiples [2,1]", MAT(2, 3), tile_2x1),
    ROW("Tile", "[1,2] multiples [3,2]", MAT(1, 2), tile_3x2),
    ROW("Tile", "[2,1,2] multiples [1,2,3]", CUBE(2, 1, 2), tile_cube),
    ROW("Tile", "rank 0", RANK0, tile_rank0),
    ROW("BroadcastTo", "[3] -> [2,3]", VEC(3), shape_2x3),
    ROW("BroadcastTo", "[2,1] -> [2,4]", MAT(2, 1), shape_2x4),
    ROW("BroadcastTo", "rank 0 -> [2,2]", RANK0, shape_2x2),
    ROW("BroadcastTo", "[2,3] -> [2,3] unchanged", MAT(2, 3), shape_2x3),
    /* the shape comes from the second input (its values do not matter) */
    {"ReshapeLike", "[2,3] like [3,2]", 2, {{CG_F64, MAT(2, 3), -1, 1}, {CG_F64, MAT(3, 2), -1, 1}}, NULL, NULL, 1},
    {"ReshapeLike", "rank 0 like [1,1]", 2, {{CG_F64, RANK0, -1, 1}, {CG_F64, MAT(1, 1), -1, 1}}, NULL, NULL, 1},
    {"BroadcastLike", "[3] like [2,3]", 2, {{CG_F64, VEC(3), -1, 1}, {CG_F64, MAT(2, 3), -1, 1}}, NULL, NULL, 1},
    {"BroadcastLike", "[2,1] like [3,2,4]", 2, {{CG_F64, MAT(2, 1), -1, 1}, {CG_F64, CUBE(3, 2, 4), -1, 1}}, NULL, NULL, 1},
    {"SumLike", "[2,3] like [3]", 2, {{CG_F64, MAT(2, 3), -1, 1}, {CG_F64, VEC(3), -1, 1}}, NULL, NULL, 1},
    {"SumLike", "[3,2,4] like [2,1]", 2, {{CG_F64, CUBE(3, 2, 4), -1, 1}, {CG_F64, MAT(2, 1), -1, 1}}, NULL, NULL, 1},
};
const int cg_cases_shape_n = sizeof cg_cases_shape / sizeof cg_cases_shape[0];

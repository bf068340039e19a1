/* cases_index.c - gradient-check rows for the indexing and basic ops (Gather,
 * UnsortedSegmentSum, Cast, Identity, AddN). Index inputs draw more indices than the
 * dimension holds, so some repeat and the segment sum in Gather's gradient really adds. */
#include "cases.h"

static void axis_0(cg_attrs *a) { cg_attrs_set_int(a, "axis", 0); }
static void axis_1(cg_attrs *a) { cg_attrs_set_int(a, "axis", 1); }
static void axis_last(cg_attrs *a) { cg_attrs_set_int(a, "axis", -1); }
static void segments_2(cg_attrs *a) { cg_attrs_set_int(a, "num_segments", 2); }
static void segments_3(cg_attrs *a) { cg_attrs_set_int(a, "num_segments", 3); }
static void segments_4(cg_attrs *a) { cg_attrs_set_int(a, "num_segments", 4); }
static void to_f64(cg_attrs *a) { cg_attrs_set_int(a, "dtype", CG_F64); }

const cg_grad_case cg_cases_index[] = {
    {"Gather", "axis 0, 5 i64 indices into 3 rows", 2,
     {{CG_F64, 2, {3, 2}, -1, 1}, {CG_I64, 1, {5}, 0, 3}}, axis_0, NULL, 1},
    {"Gather", "axis 1, [2,2] i32 indices into 3", 2,
     {{CG_F64, 3, {2, 3, 2}, -1, 1}, {CG_I32, 2, {2, 2}, 0, 3}}, axis_1, NULL, 1},
    {"Gather", "axis -1 of rank 3, 6 i64 indices into 4", 2,
     {{CG_F64, 3, {2, 2, 4}, -1, 1}, {CG_I64, 1, {6}, 0, 4}}, axis_last, NULL, 1},
    {"Gather", "axis 0, rank-0 index", 2,
     {{CG_F64, 2, {4, 3}, -1, 1}, {CG_I64, 0, {0}, 0, 4}}, axis_0, NULL, 1},
    {"Gather", "axis 1, rank-0 i32 index", 2,
     {{CG_F64, 3, {2, 3, 2}, -1, 1}, {CG_I32, 0, {0}, 0, 3}}, axis_1, NULL, 1},
    {"Gather", "size-1 axis, every index 0", 2,
     {{CG_F64, 2, {1, 3}, -1, 1}, {CG_I32, 1, {3}, 0, 1}}, axis_0, NULL, 1},
    {"UnsortedSegmentSum", "[5,3] by 5 i64 ids into 4", 2,
     {{CG_F64, 2, {5, 3}, -1, 1}, {CG_I64, 1, {5}, 0, 4}}, segments_4, NULL, 1},
    {"UnsortedSegmentSum", "[2,3,2] by [2,3] i32 ids into 3", 2,
     {{CG_F64, 3, {2, 3, 2}, -1, 1}, {CG_I32, 2, {2, 3}, 0, 3}}, segments_3, NULL, 1},
    {"UnsortedSegmentSum", "rank 0", 2,
     {{CG_F64, 0, {0}, -1, 1}, {CG_I64, 0, {0}, 0, 2}}, segments_2, NULL, 1},
    {"Cast", "f64 -> f64 [2,3]", 1, {{CG_F64, 2, {2, 3}, -1, 1}}, to_f64, NULL, 1},
    {"Cast", "rank 0", 1, {{CG_F64, 0, {0}, -1, 1}}, to_f64, NULL, 1},
    {"Identity", "[2,3]", 1, {{CG_F64, 2, {2, 3}, -1, 1}}, NULL, NULL, 1},
    {"Identity", "rank 0", 1, {{CG_F64, 0, {0}, -1, 1}}, NULL, NULL, 1},
    {"AddN", "3 inputs [2,3]", 3,
     {{CG_F64, 2, {2, 3}, -1, 1}, {CG_F64, 2, {2, 3}, -1, 1}, {CG_F64, 2, {2, 3}, -1, 1}},
     NULL, NULL, 1},
    {"AddN", "3 inputs, rank 0", 3,
     {{CG_F64, 0, {0}, -1, 1}, {CG_F64, 0, {0}, -1, 1}, {CG_F64, 0, {0}, -1, 1}}, NULL, NULL, 1},
};
const int cg_cases_index_n = sizeof cg_cases_index / sizeof cg_cases_index[0];

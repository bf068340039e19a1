/* cases_binary.c - gradient-check rows for the broadcasting ops of src/ops/binary.c. Every
 * arithmetic op runs through the same broadcasting patterns (the engine sums broadcast
 * gradients back, so each pattern checks that too); Maximum and Minimum keep a and b in
 * disjoint ranges, both ways round, so no element sits on a tie. */
#include "cases.h"

/* A shape is (ndim, {dims}), parenthesised so that it passes through macros as one
 * argument; AS_FIELDS opens it. */
#define RANK0 (0, {0})
#define VEC(n) (1, {n})
#define MAT(r, c) (2, {r, c})
#define CUBE(a, b, c) (3, {a, b, c})
#define AS_FIELDS(...) __VA_ARGS__

#define F64(shape, lo, hi) {CG_F64, AS_FIELDS shape, lo, hi}
#define MASK(shape) {CG_BOOL, AS_FIELDS shape, 0, 2} /* floor of [0, 2): false or true */

/* op on a from [alo, ahi) and b from [blo, bhi), shaped a_shape and b_shape. */
#define PAIR(op, label, a_shape, alo, ahi, b_shape, blo, bhi, order2) \
  {op, label, 2, {F64(a_shape, alo, ahi), F64(b_shape, blo, bhi)}, NULL, NULL, order2}

/* The broadcasting patterns every arithmetic op is checked on. */
#define BROADCAST_ROWS(op, alo, ahi, blo, bhi, order2)                                      \
  PAIR(op, "same shape [2,3]", MAT(2, 3), alo, ahi, MAT(2, 3), blo, bhi, order2),          \
  PAIR(op, "broadcast [2,3] with [3]", MAT(2, 3), alo, ahi, VEC(3), blo, bhi, order2),     \
  PAIR(op, "broadcast [2,1] with [1,3]", MAT(2, 1), alo, ahi, MAT(1, 3), blo, bhi, order2), \
  PAIR(op, "rank 0 with [2,3]", RANK0, alo, ahi, MAT(2, 3), blo, bhi, order2),             \
  PAIR(op, "[2,3] with rank 0", MAT(2, 3), alo, ahi, RANK0, blo, bhi, order2),             \
  PAIR(op, "size-1 dims [2,1,3] with [1,1]", CUBE(2, 1, 3), alo, ahi, MAT(1, 1), blo, bhi, \
       order2)

#define WHERE(label, c_shape, a_shape, b_shape, order2)                                      \
  {"Where", label, 3, {MASK(c_shape), F64(a_shape, -1, 1), F64(b_shape, -1, 1)}, NULL, NULL, \
   order2}

const cg_grad_case cg_cases_binary[] = {
    BROADCAST_ROWS("Add", -1, 1, -1, 1, 1),
    BROADCAST_ROWS("Sub", -1, 1, -1, 1, 1),
    BROADCAST_ROWS("Mul", -1, 1, -1, 1, 1),
    /* the denominator away from 0 */
    BROADCAST_ROWS("Div", -1, 1, 0.5, 2, 1),
    PAIR("Div", "negative denominator", VEC(4), -1, 1, VEC(4), -2, -0.5, 1),
    /* a positive base, so that ln a exists and a^b is smooth */
    BROADCAST_ROWS("Pow", 0.5, 2, -1.5, 1.5, 1),
    PAIR("Pow", "base below 1, rank 0 exponent", VEC(4), 0.2, 0.9, RANK0, 1.5, 3, 1),
    BROADCAST_ROWS("Maximum", 0, 1, 2, 3, 0),
    BROADCAST_ROWS("Maximum", 2, 3, 0, 1, 0),
    BROADCAST_ROWS("Minimum", 0, 1, 2, 3, 0),
    BROADCAST_ROWS("Minimum", 2, 3, 0, 1, 0),
    BROADCAST_ROWS("SquaredDifference", -1, 1, -1, 1, 1),
    WHERE("same shape [2,3]", MAT(2, 3), MAT(2, 3), MAT(2, 3), 1),
    WHERE("cond [2,1], a [3], b rank 0", MAT(2, 1), VEC(3), RANK0, 1),
    WHERE("cond rank 0, a [2,3], b [1,3]", RANK0, MAT(2, 3), MAT(1, 3), 1),
    WHERE("cond [3], a [2,1], b [2,3]", VEC(3), MAT(2, 1), MAT(2, 3), 1),
};
const int cg_cases_binary_n = sizeof cg_cases_binary / sizeof cg_cases_binary[0];

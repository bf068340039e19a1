/* jvp_rules.h - what the JVP rule files (jvp_<family>.c) share: the rule of an op that is
 * linear in some inputs (the op applied to their tangents), and registering a family's
 * table. A rule writes one tangent per output (NULL: zero) from the input tangents (NULL:
 * zero), with public ops only, so forward mode is itself differentiable; the engine
 * broadcasts a tangent of a smaller shape (ta alone for a + b) to the output's. */
#ifndef CG_OPS_JVP_RULES_H
#define CG_OPS_JVP_RULES_H

#include "kernel.h"
#include "../autodiff/jvp.h"

#define CG_JVP_ALL_INPUTS (~0u) /* every input, however many (Concat, AddN) */

/* Linear in each input of the mask `linear` separately, the others held fixed: the tangent
 * is the sum, over those inputs i that have one, of op(inputs with input i replaced by
 * t[i]), same attributes. Linear ops of one input (Neg, Sum, Reshape, Gather's params) and
 * bilinear ones (Mul, MatMul, Conv2D); every output (Split). */
cg_status cg__jvp_multilinear(const cg_node *op, cg_tensor *const *t, cg_tensor **t_out, unsigned linear);
/* Jointly linear in the inputs of `linear` (Concat, AddN, Cast): op applied once, with each
 * of them replaced by its tangent (zeros where there is none). */
cg_status cg__jvp_joint_linear(const cg_node *op, cg_tensor *const *t, cg_tensor **t_out, unsigned linear);

/* A family's rules: op type and rule; registered in order, the first failure returned. */
typedef struct {
  const char *op;
  cg_jvp_fn rule;
} cg_jvp_row;
cg_status cg__register_jvp_rows(const cg_jvp_row *rows, size_t n);

/* Both tangents a binary rule built (either may be NULL where its input had none): their
 * sum, or the one that is there; status from the op that failed. */
cg_tensor *cg__jvp_sum(cg_tensor *a, cg_tensor *b);

#endif

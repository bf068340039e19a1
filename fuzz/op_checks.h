/* op_checks.h - the promises fuzz_ops holds every op call to: errors come with a message,
 * gradients have their inputs' shapes, Jacobians agree with gradients, inputs never change,
 * and graph runs give the eager call's values. A broken one aborts (common.h's fz_check). */
#ifndef CG_FUZZ_OP_CHECKS_H
#define CG_FUZZ_OP_CHECKS_H

#include "common.h"

/* "f32[2,3]" for messages (four may share one printf). */
const char *fz_desc(const cg_tensor *t);
int fz_same_shape(const cg_tensor *a, const cg_tensor *b);
/* Bit-equal, with every NaN equal to every other. */
int fz_same_values(const cg_tensor *a, const cg_tensor *b);
/* The inputs' bytes, hashed: ops and gradients never write into their inputs. */
uint64_t fz_inputs_hash(cg_tensor *const *in, int n);
/* A call's status and outputs: an error has a message; success has 1..16 outputs. */
void fz_check_call(const char *op, cg_status st, cg_tensor *const *out, int n_out);
/* Gradients are NULL or have their source's dtype and shape; integer sources get NULL;
 * under CG_UNCONNECTED_ZERO (zeros_for_unconnected) every float source gets one. */
void fz_check_grads(const char *op, cg_tensor *const *src, cg_tensor *const *dx, int n,
                    int zeros_for_unconnected);
/* On a persistent tape: the Jacobian of target by the first float input has shape
 * target ++ input, and its rows add up to dx (the gradient for a seed of ones). */
void fz_check_jacobian(const char *op, cg_tape *tape, cg_tensor *target, cg_tensor *const *in,
                       int n_in, cg_tensor *const *dx);

#endif

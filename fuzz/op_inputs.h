/* op_inputs.h - how fuzz_ops turns the fuzzer's bytes into an op call: input tensors (dtype,
 * shape, values) and attributes picked by name from those the built-in ops read. */
#ifndef CG_FUZZ_OP_INPUTS_H
#define CG_FUZZ_OP_INPUTS_H

#include "common.h"

#define FZ_MAX_ELEMS 4096 /* elements in the broadcast of all inputs of one call */

/* The broadcast envelope of the inputs made so far: dim[k] is the largest dim k places from
 * the end. New dims keep its product within FZ_MAX_ELEMS, so that broadcasting small inputs
 * cannot make a huge output (slow, not wrong). Start from {{0}}. */
typedef struct {
  int64_t dim[CG_MAX_DIMS];
} fz_envelope;

/* A new tensor (current scope): its own dtype and shape, or those of prev; env may be NULL. */
cg_tensor *fz_make_input(fz_bytes *b, const cg_tensor *prev, fz_envelope *env);
/* Up to four attributes, each an int, a float or a list of ints (overflow edges included). */
void fz_make_attrs(fz_bytes *b, cg_attrs *a);

#endif

/* variable.h - what the rest of the library may do to a variable beyond the public API. */
#ifndef CG_NN_VARIABLE_H
#define CG_NN_VARIABLE_H

#include "../core/internal.h"

/* Makes value the variable's new value without copying it: value must be a new tensor that
 * nobody else holds (refcount 1, in no scope, not symbolic), of the variable's dtype and
 * shape, and its reference passes to the variable, on failure too. An optimizer's freshly
 * computed update is one; cg_var_assign copies, which for W2's 269 K parameters was a
 * second pass over them every step. */
cg_status cg__var_take(cg_var *v, cg_tensor *value);

#endif

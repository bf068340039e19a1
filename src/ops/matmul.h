/* matmul.h - the plain matrix-product kernel, for every dtype MatMul accepts. The integer
 * path runs it; the tests check the BLAS path against it. */
#ifndef CG_OPS_MATMUL_H
#define CG_OPS_MATMUL_H

#include "cgrad.h"

/* out = op(a) x op(b) over broadcast batch dims, op(t) = t transposed in its last two dims
 * when asked. a, b and out share one dtype (f32, f64, i32 or i64) and out has the product's
 * shape; otherwise CG_EDTYPE / CG_ESHAPE naming MatMul. Floats accumulate in double,
 * integers wrap around on overflow. */
cg_status cg__matmul_reference(const cg_tensor *a, const cg_tensor *b, int transpose_a,
                               int transpose_b, cg_tensor *out);

#endif

/* vector_math.h - math functions for f32 kernels written so that the compiler vectorises
 * them (libm's are one call per element). Each is tested against libm in double precision
 * (tests/test_fast_kernels.c), which is what the f64 kernels use. */
#ifndef CG_OPS_VECTOR_MATH_H
#define CG_OPS_VECTOR_MATH_H

#include <stdint.h>

/* y[i] = tanh(x[i]) within 2 ulp; NaN stays NaN, tanh(+-0) = +-0, tanh(+-inf) = +-1. */
void cg__tanh_f32(const float *restrict x, float *restrict y, int64_t n);

#endif

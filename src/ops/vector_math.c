/* vector_math.c - f32 math the compiler vectorises (vector_math.h). tanh follows musl's
 * tanhf: tanh |x| = -t / (t + 2) with t = expm1(-2|x|) below 0.55, else t / (t + 2) with
 * t = expm1(2|x|) (musl's 1 - 2 / (t + 2), one division fewer), with expm1 computed inline
 * from its Taylor series. */
#include "vector_math.h"
#include "parallel.h"
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* e^x - 1 for |x| <= 20: x = k ln2 + r with |r| <= ln2/2 (ln2 split in two so k ln2 is
 * exact), e^r - 1 by its Taylor series to r^7 (truncation below 1e-8 relative), then
 * 2^k (e^r - 1) + (2^k - 1); at k = 0 that is the series alone, exact near 0. */
static inline float expm1_small_f32(float x)
{
  const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  float k = (x * 1.44269504088896341f + shifter) - shifter;
  float r = (x - k * 0.693145751953125f) - k * 1.42860676533018700e-06f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r * r + r;
  int32_t bits = ((int32_t)k + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return scale * p + (scale - 1.0f);
}

CG_VECTOR_CLONES
void cg__tanh_f32(const float *restrict x, float *restrict y, int64_t n)
{
  for (int64_t i = 0; i < n; i++) {
    float v = x[i], a = fabsf(v);
    /* tanh is 1 in float beyond 9.02; NaN is computed as 10 (converting NaN to an integer
       in expm1 would be undefined) and put back at the end */
    a = a <= 10.0f ? a : 10.0f;
    bool small = a < 0.55f;
    float t = expm1_small_f32(small ? -2.0f * a : 2.0f * a);
    float r = t / (t + 2.0f); /* one division: 1 - 2/(t+2) = t/(t+2) */
    float magnitude = small ? -r : r;
    y[i] = v != v ? v : copysignf(magnitude, v);
  }
}

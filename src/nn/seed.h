/* seed.h - deriving independent random streams from one user seed (initializer redraw
 * rounds, one dropout mask per call). A pure function, so runs are reproducible. */
#ifndef CG_NN_SEED_H
#define CG_NN_SEED_H

#include <stdint.h>

/* The seed of stream `stream` derived from `seed` (SplitMix64 finaliser on both). */
static inline uint64_t cg__derive_seed(uint64_t seed, uint64_t stream)
{
  uint64_t x = seed ^ (stream + 1) * 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

#endif

/* fnv.h - FNV-1a, the 64-bit hash behind variable fingerprints: ranks compare hashes of
 * their variables instead of the variables themselves. Not cryptographic; it only has to
 * tell apart states that differ. */
#ifndef CG_DIST_FNV_H
#define CG_DIST_FNV_H

#include <stddef.h>
#include <stdint.h>

#define CG_FNV_OFFSET 0xcbf29ce484222325ull

static inline uint64_t cg__fnv1a(uint64_t h, const void *bytes, size_t n)
{
  const unsigned char *p = bytes;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

#endif

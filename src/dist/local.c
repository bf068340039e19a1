/* local.c - the arithmetic of data parallelism that needs no MPI: which rows of a batch a
 * rank takes, a fingerprint that tells whether two ranks hold the same variables, and the
 * ring-allreduce cost model used to project step time at scale. Built with or without MPI. */
#include "../core/internal.h"
#include "fnv.h"
#include <string.h>

cg_status cg_dist_shard_range(int64_t n, int rank, int size, int64_t *begin, int64_t *count)
{
  if (!begin || !count)
    return cg_set_error(CG_EINVAL, "cg_dist_shard_range: %s is NULL", !begin ? "begin" : "count");
  if (n < 0 || size < 1 || rank < 0 || rank >= size)
    return cg_set_error(CG_ERANGE, "cg_dist_shard_range: rank %d of %d ranks, %lld rows: need 0 <= rank < size and rows >= 0",
                        rank, size, (long long)n);
  /* the first n % size ranks take one row more, so shard sizes differ by at most one */
  int64_t base = n / size, extra = n % size;
  *begin = rank * base + (rank < extra ? rank : extra);
  *count = base + (rank < extra);
  return CG_OK;
}

uint64_t cg_dist_fingerprint(cg_var *const *vars, int n)
{
  uint64_t h = CG_FNV_OFFSET;
  if (!vars || n < 0) return h;
  for (int i = 0; i < n; i++) {
    const cg_tensor *t = vars[i] ? cg_var_value(vars[i]) : NULL;
    if (!t) {
      h = cg__fnv1a(h, "null", 4);
      continue;
    }
    const char *name = cg_var_name(vars[i]);
    h = cg__fnv1a(h, name, strlen(name) + 1);
    h = cg__fnv1a(h, &t->dtype, sizeof t->dtype);
    h = cg__fnv1a(h, &t->ndim, sizeof t->ndim);
    h = cg__fnv1a(h, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
    if (t->data) h = cg__fnv1a(h, t->data, (size_t)t->size * cg_dtype_size(t->dtype));
  }
  return h;
}

double cg_dist_ring_allreduce_seconds(double bytes, int ranks, double bytes_per_second, double latency_seconds)
{
  if (!(bytes >= 0) || ranks < 1 || !(bytes_per_second > 0) || !(latency_seconds >= 0)) {
    cg_set_error(CG_EINVAL,
                 "cg_dist_ring_allreduce_seconds: need bytes >= 0, ranks >= 1, bandwidth > 0, latency >= 0 "
                 "(got %g, %d, %g, %g)",
                 bytes, ranks, bytes_per_second, latency_seconds);
    return -1;
  }
  /* reduce-scatter then allgather: 2(N-1) steps, each sending a 1/N chunk to the next rank */
  double steps = 2.0 * (ranks - 1);
  return steps * (bytes / ranks / bytes_per_second + latency_seconds);
}

/* sampler.c - the sharded sampler: every rank walks the same shuffled order (cg_batcher's,
 * from the shared seed) and takes its contiguous shard of each global batch. The order is
 * drawn by a batcher over row indices, so the global batches are exactly those
 * cg_batcher_new gives one process, and a rank copies only its own rows. Needs no MPI. */
#include "../core/internal.h"
#include <stdlib.h>
#include <string.h>

struct cg_dist_sampler {
  cg_batcher *order;          /* batches of row indices (i64)                         */
  cg_tensor *images, *labels; /* retained                                              */
  int rank, size;
};

static cg_status check_args(const cg_dataset *d, int rank, int size)
{
  const char *fn = "cg_dist_sampler_new";
  if (!d || !d->images || !d->labels)
    return cg_set_error(CG_EINVAL, "%s: %s is NULL", fn,
                        !d ? "the dataset" : !d->images ? "dataset images" : "dataset labels");
  if (cg__is_symbolic(d->images) || cg__is_symbolic(d->labels))
    return cg_set_error(CG_EINVAL, "%s: dataset tensors must hold values, not be symbolic", fn);
  char a[160], b[160];
  if (d->images->ndim < 1 || d->labels->ndim < 1 || d->images->shape[0] != d->labels->shape[0])
    return cg_set_error(CG_ESHAPE, "%s: images %s and labels %s do not share a first dimension", fn,
                        cg_shape_str(d->images, a, sizeof a), cg_shape_str(d->labels, b, sizeof b));
  if (size < 1 || rank < 0 || rank >= size)
    return cg_set_error(CG_ERANGE, "%s: rank %d of %d ranks: need 0 <= rank < size", fn, rank, size);
  return CG_OK;
}

cg_dist_sampler *cg_dist_sampler_new(const cg_dataset *d, int64_t global_batch, int shuffle, uint64_t seed,
                                     int rank, int size)
{
  if (check_args(d, rank, size) != CG_OK) return NULL;
  int64_t n = d->images->shape[0], shape[1] = {n};
  cg_tensor *ids = cg__tensor_new(CG_I64, 1, shape);
  if (!ids) return NULL;
  int64_t *p = ids->data;
  for (int64_t i = 0; i < n; i++) p[i] = i;
  cg_dataset rows = {ids, ids};
  cg_batcher *order = cg_batcher_new(&rows, global_batch, shuffle, seed); /* retains ids */
  cg_release(ids);
  cg_dist_sampler *s = order ? cg__calloc(1, sizeof *s) : NULL;
  if (!s) {
    cg_batcher_free(order);
    return NULL;
  }
  *s = (cg_dist_sampler){order, cg_retain(d->images), cg_retain(d->labels), rank, size};
  return s;
}

cg_status cg_dist_sampler_start_epoch(cg_dist_sampler *s, int64_t epoch)
{
  if (!s) return cg_set_error(CG_EINVAL, "cg_dist_sampler_start_epoch: sampler is NULL");
  return cg_batcher_start_epoch(s->order, epoch);
}

/* A new tensor holding src's rows rows[0..count) (caller-owned). */
static cg_tensor *copy_rows(const cg_tensor *src, const int64_t *rows, int64_t count)
{
  int64_t shape[CG_MAX_DIMS];
  memcpy(shape, src->shape, sizeof shape);
  shape[0] = count;
  cg_tensor *t = cg__tensor_new(src->dtype, src->ndim, shape);
  if (!t) return NULL;
  size_t row_bytes = (size_t)(src->shape[0] ? src->size / src->shape[0] : 0) * cg_dtype_size(src->dtype);
  for (int64_t i = 0; i < count; i++)
    memcpy((char *)t->data + (size_t)i * row_bytes, (const char *)src->data + (size_t)rows[i] * row_bytes,
           row_bytes);
  return t;
}

int cg_dist_sampler_next(cg_dist_sampler *s, cg_tensor **images, cg_tensor **labels, int64_t *global_count)
{
  if (!s || !images || !labels) {
    cg_set_error(CG_EINVAL, "cg_dist_sampler_next: %s is NULL", !s ? "sampler" : !images ? "images" : "labels");
    return -1;
  }
  cg_scope scope = cg_scope_begin(); /* holds the batch of indices */
  cg_tensor *ids, *same;
  int more = cg_batcher_next(s->order, &ids, &same);
  cg_tensor *x = NULL, *y = NULL;
  int64_t begin = 0, count = 0, n = more > 0 ? ids->shape[0] : 0;
  if (more > 0 && cg_dist_shard_range(n, s->rank, s->size, &begin, &count) != CG_OK) more = -1;
  if (more > 0) {
    const int64_t *rows = (const int64_t *)ids->data + begin;
    x = copy_rows(s->images, rows, count);
    y = x ? copy_rows(s->labels, rows, count) : NULL;
    if (!y) {
      cg_release(x);
      x = NULL;
      more = -1;
    }
  }
  cg_scope_end(scope);
  if (more <= 0) return more;
  cg__scope_adopt(x);
  cg__scope_adopt(y);
  *images = x;
  *labels = y;
  if (global_count) *global_count = n;
  return 1;
}

int64_t cg_dist_sampler_num_batches(const cg_dist_sampler *s) { return s ? cg_batcher_num_batches(s->order) : 0; }

void cg_dist_sampler_free(cg_dist_sampler *s)
{
  if (!s) return;
  cg_batcher_free(s->order);
  cg_release(s->images);
  cg_release(s->labels);
  free(s);
}

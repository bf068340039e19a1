/* reducer_comm.c - moving one bucket of gradients over MPI: MPI_Allreduce (the MPI library
 * picks ring, recursive doubling...), or a fixed-order sum that adds the ranks' parts in rank
 * order 0..N-1 whatever the algorithm, and the background thread that reduces full buckets
 * while the caller computes the rest of the backward. */
#include "reducer.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void comm_failed(cg_dist_reducer *r, cg_status st)
{
  pthread_mutex_lock(&r->lock);
  if (r->comm_status == CG_OK) {
    r->comm_status = st;
    snprintf(r->comm_message, sizeof r->comm_message, "%s", cg_last_error());
  }
  pthread_mutex_unlock(&r->lock);
}

/* Sum over ranks, added in rank order: each rank owns a contiguous chunk, receives every
 * rank's part of it (alltoall), adds them 0..N-1 and shares the result (allgather). A rank
 * sends (N-1)/N of the bucket in each half, as many bytes as a ring allreduce. */
static int fixed_order_sum(cg_dist_reducer *r, cg_bucket *b, MPI_Datatype type, size_t esz)
{
  int n = cg__dist.size, me = cg__dist.rank;
  int *counts = r->a2a, *displs = counts + n, *mine = displs + n, *at = mine + n;
  int64_t begin, count;
  for (int j = 0; j < n; j++) {
    cg_dist_shard_range(b->count, j, n, &begin, &count);
    counts[j] = (int)count;
    displs[j] = (int)begin;
  }
  for (int j = 0; j < n; j++) {
    mine[j] = counts[me];
    at[j] = j * counts[me];
  }
  size_t need = (size_t)n * (size_t)counts[me] * esz;
  if (need > r->scratch_bytes) {
    void *p = realloc(r->scratch, need);
    if (!p) return MPI_ERR_NO_MEM;
    r->scratch = p;
    r->scratch_bytes = need;
  }
  int rc = MPI_Alltoallv(b->data, counts, displs, type, r->scratch, mine, at, type, cg__dist.comm);
  if (rc != MPI_SUCCESS) return rc;
  int64_t m = counts[me];
  if (b->dtype == CG_F32) {
    const float *parts = r->scratch;
    float *acc = (float *)b->data + displs[me];
    for (int64_t k = 0; k < m; k++) acc[k] = parts[k];
    for (int j = 1; j < n; j++)
      for (int64_t k = 0; k < m; k++) acc[k] += parts[(size_t)j * m + k];
  } else {
    const double *parts = r->scratch;
    double *acc = (double *)b->data + displs[me];
    for (int64_t k = 0; k < m; k++) acc[k] = parts[k];
    for (int j = 1; j < n; j++)
      for (int64_t k = 0; k < m; k++) acc[k] += parts[(size_t)j * m + k];
  }
  return MPI_Allgatherv(MPI_IN_PLACE, 0, type, b->data, counts, displs, type, cg__dist.comm);
}

void cg__reduce_bucket(cg_dist_reducer *r, int index)
{
  cg_bucket *b = &r->buckets[index];
  double t0 = now_s();
  if (cg__dist.size > 1) {
    MPI_Datatype type = b->dtype == CG_F32 ? MPI_FLOAT : MPI_DOUBLE;
    size_t esz = cg_dtype_size(b->dtype);
    int rc = MPI_SUCCESS;
    cg__dist_watch_begin(r->cfg.fixed_order ? "the fixed-order gradient allreduce" : "the gradient allreduce");
    if (b->count > INT_MAX / (cg__dist.size > 1 ? cg__dist.size : 1)) rc = MPI_ERR_COUNT;
    else if (r->cfg.fixed_order) rc = fixed_order_sum(r, b, type, esz);
    else rc = MPI_Allreduce(MPI_IN_PLACE, b->data, (int)b->count, type, MPI_SUM, cg__dist.comm);
    cg__dist_watch_end();
    if (rc != MPI_SUCCESS)
      comm_failed(r, cg__dist_mpi_status(rc, "cg_dist_reducer_finish",
                                         r->cfg.fixed_order ? "the fixed-order allreduce" : "MPI_Allreduce"));
  }
  b->seconds = now_s() - t0;
}

/* --- the background thread ------------------------------------------------------------- */

static void *reduce_loop(void *arg)
{
  cg_dist_reducer *r = arg;
  pthread_mutex_lock(&r->lock);
  for (;;) {
    while (!r->stop && r->reduced == r->launched) pthread_cond_wait(&r->work, &r->lock);
    if (r->stop) break;
    int b = r->reduced;
    pthread_mutex_unlock(&r->lock);
    cg__reduce_bucket(r, b);
    pthread_mutex_lock(&r->lock);
    r->reduced++;
    pthread_cond_signal(&r->done);
  }
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

cg_status cg__reducer_thread_start(cg_dist_reducer *r)
{
  r->threaded = r->cfg.overlap && cg__dist.size > 1 && cg__dist.thread_level >= MPI_THREAD_SERIALIZED;
  if (!r->threaded) return CG_OK;
  if (pthread_create(&r->thread, NULL, reduce_loop, r) != 0) {
    r->threaded = false;
    return cg_set_error(CG_ENOMEM, "cg_dist_reducer_new: cannot start the reduction thread");
  }
  return CG_OK;
}

void cg__reducer_thread_stop(cg_dist_reducer *r)
{
  if (!r->threaded) return;
  pthread_mutex_lock(&r->lock);
  r->stop = true;
  pthread_cond_signal(&r->work);
  pthread_mutex_unlock(&r->lock);
  pthread_join(r->thread, NULL);
  r->threaded = false;
}

void cg__reducer_launch(cg_dist_reducer *r, int b)
{
  if (!r->threaded) {
    cg__reduce_bucket(r, b);
    return;
  }
  pthread_mutex_lock(&r->lock);
  r->launched = b + 1;
  pthread_cond_signal(&r->work);
  pthread_mutex_unlock(&r->lock);
}

void cg__reducer_wait(cg_dist_reducer *r)
{
  if (!r->threaded) return;
  pthread_mutex_lock(&r->lock);
  while (r->reduced < r->launched) pthread_cond_wait(&r->done, &r->lock);
  pthread_mutex_unlock(&r->lock);
}

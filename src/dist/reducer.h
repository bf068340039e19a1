/* reducer.h - the gradient reducer's object, shared by reducer.c (buckets: planning, packing,
 * the step's bookkeeping) and reducer_comm.c (moving buckets over MPI, on the caller's thread
 * or a background one). */
#ifndef CG_DIST_REDUCER_H
#define CG_DIST_REDUCER_H

#include "dist.h"
#include <pthread.h>

typedef struct {
  cg_dtype dtype;
  int64_t count;   /* elements reduced, the trailer included                       */
  void *data;      /* packed gradients, reduced in place                           */
  int n_vars, n_ready;
  double seconds;  /* time its last reduction took                                 */
} cg_bucket;

/* The last bucket carries two trailing elements: how many ranks failed this step and the
 * sum of their ranks + 1, so every rank learns of a failure in the same call. */
#define CG_TRAILER 2

struct cg_dist_reducer {
  cg_dist_reducer_config cfg;
  int n_vars;
  cg_var **vars;       /* borrowed                                                  */
  int *var_bucket;     /* bucket of each variable                                  */
  int64_t *var_offset; /* its first element in the bucket                          */
  bool *var_ready;     /* given this step                                          */
  int n_buckets;
  cg_bucket *buckets;  /* in launch order: the last variables' first               */
  int next_launch;     /* buckets below it are launched (or reduced) this step     */
  bool failed;         /* this rank failed this step, with this error:             */
  cg_status fail_status;
  char fail_message[512];
  bool busy;           /* the step holds cg__dist_busy_begin                       */
  void *scratch;       /* fixed-order reduction: every rank's chunk                */
  int *a2a;            /* fixed-order reduction: 4 x size counts and displacements */
  size_t scratch_bytes;
  /* the background thread (cfg.overlap with MPI_THREAD_SERIALIZED or more) */
  bool threaded, stop;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t work, done;
  int launched, reduced; /* buckets handed to the thread / reduced by it this step */
  cg_status comm_status; /* first failure of a reduction this step, and its message */
  char comm_message[512];
  cg_dist_stats stats;
};

/* Reduces bucket b in place (sum over ranks; fixed order if configured). On the thread that
 * calls it; records a failure in comm_status. */
void cg__reduce_bucket(cg_dist_reducer *r, int b);
/* Starts / stops the background thread. */
cg_status cg__reducer_thread_start(cg_dist_reducer *r);
void cg__reducer_thread_stop(cg_dist_reducer *r);
/* Bucket b is packed: reduce it now or hand it to the thread (buckets go in order). */
void cg__reducer_launch(cg_dist_reducer *r, int b);
/* Waits until every launched bucket is reduced. */
void cg__reducer_wait(cg_dist_reducer *r);

#endif

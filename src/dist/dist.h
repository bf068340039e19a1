/* dist.h - what the MPI files of src/dist share: the job's communicator and rank, turning MPI
 * error codes into cg_status, the watchdog that stops a job stuck in a collective, and the
 * guard that keeps other collectives out while a reducer's background thread talks to MPI. */
#ifndef CG_DIST_DIST_H
#define CG_DIST_DIST_H

#include "../core/internal.h"
#include <mpi.h>

typedef struct {
  bool initialized;   /* cg_dist_init succeeded and cg_dist_finalize has not run        */
  bool owns_mpi;      /* cg_dist_init called MPI_Init_thread, so finalize ends MPI        */
  MPI_Comm comm;      /* a duplicate of MPI_COMM_WORLD whose errors return, not abort    */
  int rank, size;
  int thread_level;   /* what MPI_Init_thread provided                                   */
} cg_dist_state;

extern cg_dist_state cg__dist;

/* CG_ESTATE naming fn unless cg_dist_init has run; also refuses while a reducer's thread
 * is reducing (MPI may be used by one thread at a time). */
cg_status cg__dist_check_ready(const char *fn);

/* CG_OK for MPI_SUCCESS, else CG_EIO "fn: MPI_call failed on rank r: <MPI's message>". */
cg_status cg__dist_mpi_status(int rc, const char *fn, const char *mpi_call);

/* Collective agreement on success: returns local (its message kept) if this rank failed,
 * CG_EUSER naming the failed rank(s) if another did, else CG_OK. fn names the caller. */
cg_status cg__dist_agree(cg_status local, const char *what, const char *fn);
/* mn[i] / mx[i] (mx may be NULL) = smallest / largest v[i] over ranks; n <= 8. */
cg_status cg__dist_minmax(const int64_t *v, int n, int64_t *mn, int64_t *mx, const char *fn);

/* A reducer's background thread owns MPI between these two calls. */
void cg__dist_busy_begin(void);
void cg__dist_busy_end(void);

/* The watchdog: between watch_begin and watch_end a collective may wait at most the
 * timeout set by cg_dist_set_timeout; past it the watchdog thread names `what`, prints to
 * stderr and aborts the job (MPI_Abort). Calls nest per thread; without a timeout they only
 * cost a lock. */
void cg__dist_watch_begin(const char *what);
void cg__dist_watch_end(void);
void cg__dist_watchdog_stop(void); /* at finalize: joins the thread */

#endif

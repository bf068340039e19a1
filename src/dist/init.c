/* init.c - joining and leaving the MPI job: cg_dist_init/finalize, rank and size, barrier,
 * abort, and the small helpers every MPI file uses (readiness checks, MPI errors as
 * cg_status). The job's communicator is a duplicate of MPI_COMM_WORLD set to return errors,
 * so a failed call becomes a message instead of MPI's default abort. */
#include "dist.h"
#include <stdatomic.h>
#include <stdio.h>

cg_dist_state cg__dist = {.rank = 0, .size = 1};

static atomic_int busy; /* reducer threads reducing now */

void cg__dist_busy_begin(void) { atomic_fetch_add(&busy, 1); }
void cg__dist_busy_end(void) { atomic_fetch_sub(&busy, 1); }

cg_status cg__dist_check_ready(const char *fn)
{
  if (!cg__dist.initialized) return cg_set_error(CG_ESTATE, "%s: call cg_dist_init first", fn);
  if (atomic_load(&busy) > 0)
    return cg_set_error(CG_ESTATE,
                        "%s: a gradient reducer is still reducing in the background: call "
                        "cg_dist_reducer_finish first",
                        fn);
  return CG_OK;
}

cg_status cg__dist_mpi_status(int rc, const char *fn, const char *mpi_call)
{
  if (rc == MPI_SUCCESS) return CG_OK;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
  return cg_set_error(CG_EIO, "%s: %s failed on rank %d of %d: %s", fn, mpi_call, cg__dist.rank,
                      cg__dist.size, msg);
}

int cg_dist_available(void) { return 1; }
int cg_dist_initialized(void) { return cg__dist.initialized; }
int cg_dist_rank(void) { return cg__dist.initialized ? cg__dist.rank : 0; }
int cg_dist_size(void) { return cg__dist.initialized ? cg__dist.size : 1; }

cg_status cg_dist_init(int *argc, char ***argv)
{
  if (cg__dist.initialized) return CG_OK;
  int flag = 0;
  MPI_Finalized(&flag);
  if (flag) return cg_set_error(CG_ESTATE, "cg_dist_init: MPI was already finalized in this process");
  MPI_Initialized(&flag);
  int provided = MPI_THREAD_SINGLE, rc;
  bool owns = !flag;
  /* MULTIPLE lets a reducer's thread reduce while this one computes; less still works */
  if (owns) rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
  else rc = MPI_Query_thread(&provided);
  if (rc != MPI_SUCCESS) return cg__dist_mpi_status(rc, "cg_dist_init", owns ? "MPI_Init_thread" : "MPI_Query_thread");
  MPI_Comm comm;
  rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(comm, &rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(comm, &size);
  if (rc != MPI_SUCCESS) return cg__dist_mpi_status(rc, "cg_dist_init", "setting up the communicator");
  cg__dist = (cg_dist_state){true, owns, comm, rank, size, provided};
  return CG_OK;
}

cg_status cg_dist_finalize(void)
{
  if (!cg__dist.initialized) return CG_OK;
  cg_status st = cg__dist_check_ready("cg_dist_finalize");
  if (st != CG_OK) return st;
  cg__dist_watchdog_stop();
  MPI_Comm_free(&cg__dist.comm);
  int rc = cg__dist.owns_mpi ? MPI_Finalize() : MPI_SUCCESS;
  cg__dist = (cg_dist_state){.rank = 0, .size = 1};
  return cg__dist_mpi_status(rc, "cg_dist_finalize", "MPI_Finalize");
}

cg_status cg_dist_barrier(void)
{
  cg_status st = cg__dist_check_ready("cg_dist_barrier");
  if (st != CG_OK) return st;
  cg__dist_watch_begin("cg_dist_barrier");
  int rc = MPI_Barrier(cg__dist.comm);
  cg__dist_watch_end();
  return cg__dist_mpi_status(rc, "cg_dist_barrier", "MPI_Barrier");
}

cg_status cg_dist_abort(int exit_code, const char *why)
{
  int flag = 0, done = 0;
  MPI_Initialized(&flag);
  MPI_Finalized(&done);
  if (!flag || done) return cg_set_error(CG_ESTATE, "cg_dist_abort: MPI is not running in this process");
  fprintf(stderr, "cgrad: rank %d of %d: %s; aborting the job\n", cg__dist.rank, cg__dist.size,
          why ? why : "aborted");
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code ? exit_code : 1);
  return cg_set_error(CG_ESTATE, "cg_dist_abort: MPI_Abort returned");
}

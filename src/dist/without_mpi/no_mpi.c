/* no_mpi.c - the distributed API in a cgrad built without MPI (CGRAD_MPI=OFF): one process
 * (rank 0 of 1), and every call that needs other ranks fails with CG_ENOTFOUND saying so.
 * Compiled instead of src/dist/{init,collectives,reducer*,watchdog}.c. */
#include "../../core/internal.h"

static cg_status without(const char *fn)
{
  return cg_set_error(CG_ENOTFOUND, "%s: cgrad was built without MPI (configure with -DCGRAD_MPI=ON "
                                    "and Open MPI's libopenmpi-dev installed)", fn);
}

int cg_dist_available(void) { return 0; }
int cg_dist_initialized(void) { return 0; }
int cg_dist_rank(void) { return 0; }
int cg_dist_size(void) { return 1; }
cg_status cg_dist_init(int *argc, char ***argv) { return without("cg_dist_init"); }
cg_status cg_dist_finalize(void) { return CG_OK; }
cg_status cg_dist_barrier(void) { return without("cg_dist_barrier"); }
cg_status cg_dist_abort(int exit_code, const char *why) { return without("cg_dist_abort"); }
cg_status cg_dist_set_timeout(double seconds) { return without("cg_dist_set_timeout"); }
cg_status cg_dist_broadcast_variables(cg_var *const *vars, int n, int root)
{
  return without("cg_dist_broadcast_variables");
}
cg_status cg_dist_weighted_mean(double *values, int n, double weight) { return without("cg_dist_weighted_mean"); }
cg_status cg_dist_check_same(uint64_t value, const char *what) { return without("cg_dist_check_same"); }
cg_status cg_dist_agree(cg_status local, const char *what) { return without("cg_dist_agree"); }

cg_dist_reducer *cg_dist_reducer_new(cg_var *const *vars, int n, const cg_dist_reducer_config *config)
{
  without("cg_dist_reducer_new");
  return NULL;
}
cg_status cg_dist_reducer_ready(cg_dist_reducer *r, int i, cg_tensor *grad, double weight)
{
  return without("cg_dist_reducer_ready");
}
cg_status cg_dist_reducer_fail(cg_dist_reducer *r) { return without("cg_dist_reducer_fail"); }
cg_status cg_dist_reducer_finish(cg_dist_reducer *r, cg_tensor **out) { return without("cg_dist_reducer_finish"); }
cg_status cg_dist_allreduce_gradients(cg_dist_reducer *r, cg_tensor *const *grads, double weight, cg_tensor **out)
{
  return without("cg_dist_allreduce_gradients");
}
cg_status cg_dist_reducer_stats(const cg_dist_reducer *r, cg_dist_stats *out) { return without("cg_dist_reducer_stats"); }
void cg_dist_reducer_free(cg_dist_reducer *r) {}

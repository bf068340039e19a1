/* collectives.c - the collectives outside the gradient path: broadcasting variables, weighted
 * means of metrics, agreeing on a value (a configuration, a fingerprint) and on success. Each
 * first agrees on what every rank brings, so bad arguments on one rank fail every rank with a
 * message instead of leaving the others waiting in a mismatched call. */
#include "dist.h"
#include "fnv.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mn[i] / mx[i] = the smallest / largest v[i] over ranks (one MPI call: max = -min(-v)). */
cg_status cg__dist_minmax(const int64_t *v, int n, int64_t *mn, int64_t *mx, const char *fn)
{
  int64_t buf[16];
  if (n > 8) return cg_set_error(CG_EINVAL, "%s: internal: too many values to agree on", fn);
  for (int i = 0; i < n; i++) {
    buf[i] = v[i];
    buf[n + i] = v[i] == INT64_MIN ? INT64_MAX : -v[i];
  }
  cg__dist_watch_begin(fn);
  int rc = MPI_Allreduce(MPI_IN_PLACE, buf, 2 * n, MPI_INT64_T, MPI_MIN, cg__dist.comm);
  cg__dist_watch_end();
  if (rc != MPI_SUCCESS) return cg__dist_mpi_status(rc, fn, "MPI_Allreduce");
  for (int i = 0; i < n; i++) {
    mn[i] = buf[i];
    if (mx) mx[i] = -buf[n + i];
  }
  return CG_OK;
}

/* Agreement on success: local is this rank's status (its message is kept); if another rank
 * failed, CG_EUSER names it. */
cg_status cg__dist_agree(cg_status local, const char *what, const char *fn)
{
  int64_t v[2] = {local != CG_OK ? cg__dist.rank : INT32_MAX, local != CG_OK ? cg__dist.rank : -1};
  int64_t mn[2], mx[2];
  char mine[1024];
  snprintf(mine, sizeof mine, "%s", cg_last_error());
  cg_status st = cg__dist_minmax(v, 2, mn, mx, fn);
  if (st != CG_OK) return st;
  if (local != CG_OK) return cg_set_error(local, "%s", mine);
  if (mn[0] == INT32_MAX) return CG_OK;
  if (mn[0] == mx[1])
    return cg_set_error(CG_EUSER, "%s: rank %lld of %d failed during %s (its own message says why)", fn,
                        (long long)mn[0], cg__dist.size, what);
  return cg_set_error(CG_EUSER, "%s: ranks %lld to %lld of %d failed during %s (their own messages say why)",
                      fn, (long long)mn[0], (long long)mx[1], cg__dist.size, what);
}

cg_status cg_dist_agree(cg_status local, const char *what)
{
  cg_status st = cg__dist_check_ready("cg_dist_agree");
  if (st != CG_OK) return st;
  return cg__dist_agree(local, what ? what : "a collective step", "cg_dist_agree");
}

cg_status cg_dist_check_same(uint64_t value, const char *what)
{
  cg_status st = cg__dist_check_ready("cg_dist_check_same");
  if (st != CG_OK) return st;
  int64_t v = (int64_t)value, mn, mx; /* the same bits: equal exactly when the values are */
  if ((st = cg__dist_minmax(&v, 1, &mn, &mx, "cg_dist_check_same")) != CG_OK) return st;
  if (mn == mx) return CG_OK;
  return cg_set_error(CG_ESTATE, "cg_dist_check_same: the %d ranks disagree on %s (this is rank %d: %016llx)",
                      cg__dist.size, what ? what : "a value", cg__dist.rank, (unsigned long long)value);
}

/* --- broadcast ------------------------------------------------------------------------- */

static cg_status check_vars(cg_var *const *vars, int n, const char *fn, size_t *bytes, uint64_t *layout)
{
  if (n < 0 || (n > 0 && !vars)) return cg_set_error(CG_EINVAL, "%s: %d variables at %p", fn, n, (void *)vars);
  uint64_t h = CG_FNV_OFFSET;
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    if (!vars[i]) return cg_set_error(CG_EINVAL, "%s: variable %d is NULL", fn, i);
    const cg_tensor *t = cg_var_value(vars[i]);
    const char *name = cg_var_name(vars[i]);
    h = cg__fnv1a(h, name, strlen(name) + 1);
    h = cg__fnv1a(h, &t->dtype, sizeof t->dtype);
    h = cg__fnv1a(h, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
    total += (size_t)t->size * cg_dtype_size(t->dtype);
  }
  *bytes = total;
  *layout = h;
  return CG_OK;
}

/* MPI counts are ints: big buffers go in pieces of at most 1 GiB. */
static int bcast_bytes(char *p, size_t n, int root)
{
  for (size_t off = 0; off < n;) {
    int len = n - off > (1u << 30) ? (1 << 30) : (int)(n - off);
    int rc = MPI_Bcast(p + off, len, MPI_BYTE, root, cg__dist.comm);
    if (rc != MPI_SUCCESS) return rc;
    off += (size_t)len;
  }
  return MPI_SUCCESS;
}

cg_status cg_dist_broadcast_variables(cg_var *const *vars, int n, int root)
{
  const char *fn = "cg_dist_broadcast_variables";
  cg_status st = cg__dist_check_ready(fn);
  if (st != CG_OK) return st;
  size_t bytes = 0;
  uint64_t layout = 0;
  cg_status local = check_vars(vars, n, fn, &bytes, &layout);
  if (local == CG_OK && (root < 0 || root >= cg__dist.size))
    local = cg_set_error(CG_ERANGE, "%s: root %d is not a rank of %d", fn, root, cg__dist.size);
  if ((st = cg__dist_agree(local, "the broadcast's argument checks", fn)) != CG_OK) return st;
  int64_t v[2] = {(int64_t)layout, root}, mn[2], mx[2];
  if ((st = cg__dist_minmax(v, 2, mn, mx, fn)) != CG_OK) return st;
  if (mn[0] != mx[0])
    return cg_set_error(CG_ESTATE, "%s: the ranks hold different variables (names, dtypes or shapes differ)", fn);
  if (mn[1] != mx[1]) return cg_set_error(CG_EINVAL, "%s: the ranks name different roots", fn);
  char *buf = cg__malloc(bytes ? bytes : 1);
  local = buf ? CG_OK : cg_last_status();
  if ((st = cg__dist_agree(local, "allocating the broadcast buffer", fn)) != CG_OK) {
    free(buf);
    return st;
  }
  size_t off = 0;
  if (cg__dist.rank == root)
    for (int i = 0; i < n; i++) {
      const cg_tensor *t = cg_var_value(vars[i]);
      size_t nb = (size_t)t->size * cg_dtype_size(t->dtype);
      memcpy(buf + off, t->data, nb);
      off += nb;
    }
  cg__dist_watch_begin(fn);
  int rc = bcast_bytes(buf, bytes, root);
  cg__dist_watch_end();
  if (rc != MPI_SUCCESS) {
    free(buf);
    return cg__dist_mpi_status(rc, fn, "MPI_Bcast");
  }
  if (cg__dist.rank != root) {
    cg_scope scope = cg_scope_begin();
    for (int i = 0; i < n && st == CG_OK; i++) {
      const cg_tensor *t = cg_var_value(vars[i]);
      cg_tensor *v = cg_tensor_from(t->dtype, t->ndim, t->shape, buf + off);
      off += (size_t)t->size * cg_dtype_size(t->dtype);
      st = v ? cg_var_assign(vars[i], v) : cg_last_status();
    }
    cg_scope_end(scope);
  }
  free(buf);
  return st;
}

/* --- metrics ------------------------------------------------------------------------------ */

cg_status cg_dist_weighted_mean(double *values, int n, double weight)
{
  const char *fn = "cg_dist_weighted_mean";
  cg_status st = cg__dist_check_ready(fn);
  if (st != CG_OK) return st;
  cg_status local = CG_OK;
  if (n < 0 || n > 4096 || (n > 0 && !values))
    local = cg_set_error(CG_EINVAL, "%s: %d values at %p (at most 4096)", fn, n, (void *)values);
  else if (!(weight >= 0) || weight > 1e300)
    local = cg_set_error(CG_EINVAL, "%s: weight %g is not a finite number >= 0", fn, weight);
  if ((st = cg__dist_agree(local, "the weighted mean's argument checks", fn)) != CG_OK) return st;
  int64_t count = n, mn, mx;
  if ((st = cg__dist_minmax(&count, 1, &mn, &mx, fn)) != CG_OK) return st;
  if (mn != mx) return cg_set_error(CG_EINVAL, "%s: the ranks pass different numbers of values (%lld to %lld)", fn,
                                    (long long)mn, (long long)mx);
  double buf[4097];
  for (int i = 0; i < n; i++) buf[i] = weight > 0 ? weight * values[i] : 0; /* 0 * NaN stays out */
  buf[n] = weight;
  cg__dist_watch_begin(fn);
  int rc = MPI_Allreduce(MPI_IN_PLACE, buf, n + 1, MPI_DOUBLE, MPI_SUM, cg__dist.comm);
  cg__dist_watch_end();
  if (rc != MPI_SUCCESS) return cg__dist_mpi_status(rc, fn, "MPI_Allreduce");
  if (!(buf[n] > 0)) return cg_set_error(CG_EINVAL, "%s: the weights of all %d ranks sum to 0", fn, cg__dist.size);
  for (int i = 0; i < n; i++) values[i] = buf[i] / buf[n];
  return CG_OK;
}

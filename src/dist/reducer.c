/* reducer.c - the gradient reducer (DDP's Reducer): buckets planned over the variables in
 * reverse order (the order a backward makes gradients), each gradient scaled and packed as it
 * is given, full buckets reduced (now or on a background thread), sums unpacked at finish. A
 * rank that fails mid-step still takes part, so the others learn of it. */
#include "reducer.h"
#include "fnv.h"
#include <math.h>
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

static size_t var_bytes(const cg_var *v)
{
  const cg_tensor *t = cg_var_value(v);
  return (size_t)t->size * cg_dtype_size(t->dtype);
}

/* --- planning ----------------------------------------------------------------------------- */

static cg_status check_new(cg_var *const *vars, int n, const cg_dist_reducer_config *c, const char *fn)
{
  if (n < 0 || (n > 0 && !vars)) return cg_set_error(CG_EINVAL, "%s: %d variables at %p", fn, n, (void *)vars);
  if (c && (c->bucket_bytes > ((size_t)1 << 30)))
    return cg_set_error(CG_ERANGE, "%s: bucket_bytes %zu is over 1 GiB", fn, c->bucket_bytes);
  for (int i = 0; i < n; i++) {
    if (!vars[i]) return cg_set_error(CG_EINVAL, "%s: variable %d is NULL", fn, i);
    cg_dtype d = cg_tensor_dtype(cg_var_value(vars[i]));
    if (d != CG_F32 && d != CG_F64)
      return cg_set_error(CG_EDTYPE, "%s: variable '%s' is %s; gradients are reduced in f32 or f64", fn,
                          cg_var_name(vars[i]), cg_dtype_name(d));
  }
  return CG_OK;
}

/* Buckets of consecutive variables (last first) of one dtype, up to bucket_bytes each. */
static cg_status plan(cg_dist_reducer *r)
{
  int n = r->n_vars;
  r->buckets = cg__calloc((size_t)n + 1, sizeof *r->buckets);
  if (!r->buckets) return cg_last_status();
  size_t filled = 0;
  for (int i = n - 1; i >= 0; i--) {
    cg_dtype d = cg_tensor_dtype(cg_var_value(r->vars[i]));
    size_t nb = var_bytes(r->vars[i]);
    cg_bucket *b = r->n_buckets ? &r->buckets[r->n_buckets - 1] : NULL;
    if (!b || b->dtype != d || filled + nb > r->cfg.bucket_bytes) {
      b = &r->buckets[r->n_buckets++];
      b->dtype = d;
      filled = 0;
    }
    r->var_bucket[i] = (int)(b - r->buckets);
    r->var_offset[i] = b->count;
    b->count += cg_tensor_size(cg_var_value(r->vars[i]));
    b->n_vars++;
    filled += nb;
  }
  if (!r->n_buckets) r->buckets[r->n_buckets++].dtype = CG_F32; /* the trailer alone */
  r->buckets[r->n_buckets - 1].count += CG_TRAILER;
  for (int k = 0; k < r->n_buckets; k++) {
    cg_bucket *b = &r->buckets[k];
    if (!(b->data = cg__malloc((size_t)b->count * cg_dtype_size(b->dtype)))) return cg_last_status();
  }
  return CG_OK;
}

static uint64_t plan_signature(const cg_dist_reducer *r)
{
  uint64_t h = CG_FNV_OFFSET ^ (uint64_t)r->cfg.fixed_order;
  for (int k = 0; k < r->n_buckets; k++)
    h = (h ^ (uint64_t)r->buckets[k].count ^ ((uint64_t)r->buckets[k].dtype << 48)) * 0x100000001b3ull;
  return h;
}

cg_dist_reducer *cg_dist_reducer_new(cg_var *const *vars, int n, const cg_dist_reducer_config *config)
{
  const char *fn = "cg_dist_reducer_new";
  if (cg__dist_check_ready(fn) != CG_OK) return NULL;
  cg_status local = check_new(vars, n, config, fn);
  cg_dist_reducer *r = local == CG_OK ? cg__calloc(1, sizeof *r) : NULL;
  if (r) {
    r->cfg = config ? *config : (cg_dist_reducer_config){0};
    if (!r->cfg.bucket_bytes) r->cfg.bucket_bytes = (size_t)1 << 20;
    r->n_vars = n;
    r->comm_status = CG_OK;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->done, NULL);
    size_t m = (size_t)n + 1;
    r->vars = cg__malloc(m * sizeof *r->vars);
    r->var_bucket = cg__malloc(m * sizeof *r->var_bucket);
    r->var_offset = cg__malloc(m * sizeof *r->var_offset);
    r->var_ready = cg__calloc(m, sizeof *r->var_ready);
    r->a2a = cg__malloc(4 * (size_t)cg__dist.size * sizeof *r->a2a);
    if (r->vars && r->var_bucket && r->var_offset && r->var_ready && r->a2a) {
      if (n) memcpy(r->vars, vars, (size_t)n * sizeof *vars);
      local = plan(r);
    } else {
      local = cg_last_status();
    }
  } else if (local == CG_OK) {
    local = cg_last_status();
  }
  /* every rank must plan the same buckets, or the reductions would not match */
  cg_status st = cg__dist_agree(local, "creating the gradient reducer", fn);
  if (st == CG_OK) {
    int64_t sig = (int64_t)plan_signature(r), mn, mx;
    st = cg__dist_minmax(&sig, 1, &mn, &mx, fn);
    if (st == CG_OK && mn != mx)
      st = cg_set_error(CG_ESTATE, "%s: the ranks planned different buckets: their variables (dtypes, sizes, "
                                   "order), bucket_bytes or fixed_order differ", fn);
  }
  if (st == CG_OK) st = cg__reducer_thread_start(r);
  if (st != CG_OK) {
    cg_dist_reducer_free(r);
    return NULL;
  }
  r->stats.ranks = cg__dist.size;
  r->stats.buckets = r->n_buckets;
  r->stats.overlapping = r->threaded;
  double payload = 0;
  for (int k = 0; k < r->n_buckets; k++) payload += (double)r->buckets[k].count * cg_dtype_size(r->buckets[k].dtype);
  r->stats.bytes_per_step = payload;
  r->stats.wire_bytes_per_step = 2.0 * (cg__dist.size - 1) / cg__dist.size * payload;
  return r;
}

void cg_dist_reducer_free(cg_dist_reducer *r)
{
  if (!r) return;
  cg__reducer_thread_stop(r);
  if (r->busy) cg__dist_busy_end();
  for (int k = 0; k < r->n_buckets; k++) free(r->buckets[k].data);
  free(r->buckets);
  free(r->vars);
  free(r->var_bucket);
  free(r->var_offset);
  free(r->var_ready);
  free(r->a2a);
  free(r->scratch);
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->work);
  pthread_cond_destroy(&r->done);
  free(r);
}

/* --- one step -------------------------------------------------------------------------------- */

/* weight * grad (zeros for NULL) into variable i's place in its bucket. */
static void pack(cg_dist_reducer *r, int i, const cg_tensor *g, double weight)
{
  cg_bucket *b = &r->buckets[r->var_bucket[i]];
  const cg_tensor *v = cg_var_value(r->vars[i]);
  size_t esz = cg_dtype_size(b->dtype);
  char *dst = (char *)b->data + (size_t)r->var_offset[i] * esz;
  int64_t m = v->size;
  if (!g) memset(dst, 0, (size_t)m * esz);
  else if (weight == 1) memcpy(dst, g->data, (size_t)m * esz);
  else if (b->dtype == CG_F32) {
    const float *s = g->data, w = (float)weight; /* as cg_mul(g, cg_scalar(CG_F32, weight)) */
    float *d = (float *)dst;
    for (int64_t k = 0; k < m; k++) d[k] = s[k] * w;
  } else {
    const double *s = g->data;
    double *d = (double *)dst;
    for (int64_t k = 0; k < m; k++) d[k] = s[k] * weight;
  }
}

/* Buckets whose gradients are all in, in order; the last waits for finish (it carries the
 * trailer, written once this rank knows whether its step failed). */
static void launch_full(cg_dist_reducer *r)
{
  double t0 = now_s();
  while (r->next_launch < r->n_buckets - 1 && r->buckets[r->next_launch].n_ready == r->buckets[r->next_launch].n_vars) {
    if (r->threaded && !r->busy) {
      cg__dist_busy_begin();
      r->busy = true;
    }
    cg__reducer_launch(r, r->next_launch++);
  }
  r->stats.exposed_seconds += now_s() - t0;
}

static void mark_ready(cg_dist_reducer *r, int i)
{
  r->var_ready[i] = true;
  r->buckets[r->var_bucket[i]].n_ready++;
}

cg_status cg_dist_reducer_ready(cg_dist_reducer *r, int i, cg_tensor *grad, double weight)
{
  const char *fn = "cg_dist_reducer_ready";
  if (!r) return cg_set_error(CG_EINVAL, "%s: reducer is NULL", fn);
  if (i < 0 || i >= r->n_vars) return cg_set_error(CG_ERANGE, "%s: variable %d of %d", fn, i, r->n_vars);
  const char *name = cg_var_name(r->vars[i]);
  if (r->var_ready[i])
    return cg_set_error(CG_ESTATE, "%s: the gradient of '%s' was already given this step", fn, name);
  if (!isfinite(weight)) return cg_set_error(CG_EINVAL, "%s: weight %g is not finite", fn, weight);
  const cg_tensor *v = cg_var_value(r->vars[i]);
  if (grad) {
    char a[160], b[160];
    if (cg__is_symbolic(grad))
      return cg_set_error(CG_EINVAL, "%s: the gradient of '%s' is a symbolic graph tensor; run the graph first", fn, name);
    if (grad->dtype != v->dtype || !cg__shape_equal(grad->ndim, grad->shape, v->ndim, v->shape))
      return cg_set_error(CG_ESHAPE, "%s: the gradient of '%s' is %s %s, the variable %s %s", fn, name,
                          cg_dtype_name(grad->dtype), cg_shape_str(grad, a, sizeof a), cg_dtype_name(v->dtype),
                          cg_shape_str(v, b, sizeof b));
  }
  pack(r, i, grad, weight);
  mark_ready(r, i);
  launch_full(r);
  return CG_OK;
}

cg_status cg_dist_reducer_fail(cg_dist_reducer *r)
{
  if (!r) return cg_set_error(CG_EINVAL, "cg_dist_reducer_fail: reducer is NULL");
  if (!r->failed) {
    r->failed = true;
    r->fail_status = cg_last_status() != CG_OK ? cg_last_status() : CG_EUSER;
    snprintf(r->fail_message, sizeof r->fail_message, "%s",
             cg_last_status() != CG_OK ? cg_last_error() : "this rank gave up the step (cg_dist_reducer_fail)");
  }
  for (int i = 0; i < r->n_vars; i++)
    if (!r->var_ready[i]) {
      pack(r, i, NULL, 0);
      mark_ready(r, i);
    }
  launch_full(r);
  return CG_OK;
}

static void reset_step(cg_dist_reducer *r)
{
  for (int i = 0; i < r->n_vars; i++) r->var_ready[i] = false;
  for (int k = 0; k < r->n_buckets; k++) r->buckets[k].n_ready = 0;
  r->next_launch = 0;
  r->failed = false;
  pthread_mutex_lock(&r->lock);
  r->launched = r->reduced = 0;
  r->comm_status = CG_OK;
  pthread_mutex_unlock(&r->lock);
  if (r->busy) {
    cg__dist_busy_end();
    r->busy = false;
  }
}

/* The trailer's sums: ranks that failed and the sum of their ranks + 1. */
static void trailer(const cg_dist_reducer *r, double *failed, double *rank_sum)
{
  const cg_bucket *b = &r->buckets[r->n_buckets - 1];
  int64_t at = b->count - CG_TRAILER;
  *failed = cg__load(b->dtype, b->data, at);
  *rank_sum = cg__load(b->dtype, b->data, at + 1);
}

cg_status cg_dist_reducer_finish(cg_dist_reducer *r, cg_tensor **out)
{
  const char *fn = "cg_dist_reducer_finish";
  if (!r) return cg_set_error(CG_EINVAL, "%s: reducer is NULL", fn);
  if (!out && !r->failed) {
    cg_set_error(CG_EINVAL, "%s: out is NULL", fn);
    cg_dist_reducer_fail(r);
  }
  for (int i = 0; i < r->n_vars && !r->failed; i++)
    if (!r->var_ready[i]) {
      cg_set_error(CG_ESTATE, "%s: no gradient was given for '%s' (give each with cg_dist_reducer_ready, or "
                              "call cg_dist_reducer_fail)", fn, cg_var_name(r->vars[i]));
      cg_dist_reducer_fail(r);
    }
  /* the step is collective from here: every rank reduces every bucket */
  cg_bucket *last = &r->buckets[r->n_buckets - 1];
  cg__store(last->dtype, last->data, last->count - 2, r->failed ? 1 : 0);
  cg__store(last->dtype, last->data, last->count - 1, r->failed ? cg__dist.rank + 1 : 0);
  last->n_ready = last->n_vars;
  double t0 = now_s();
  if (r->threaded && !r->busy) {
    cg__dist_busy_begin();
    r->busy = true;
  }
  while (r->next_launch < r->n_buckets) cg__reducer_launch(r, r->next_launch++);
  cg__reducer_wait(r);
  r->stats.exposed_seconds += now_s() - t0;
  r->stats.steps++;
  for (int k = 0; k < r->n_buckets; k++) r->stats.reduce_seconds += r->buckets[k].seconds;

  cg_status st = r->comm_status;
  double failed = 0, rank_sum = 0;
  if (st != CG_OK) cg_set_error(st, "%s", r->comm_message);
  else trailer(r, &failed, &rank_sum);
  bool mine = r->failed;
  cg_status my_status = r->fail_status;
  char my_message[sizeof r->fail_message];
  memcpy(my_message, r->fail_message, sizeof my_message);
  if (st == CG_OK && failed > 0) {
    if (mine) st = cg_set_error(my_status, "%s", my_message);
    else if (failed == 1)
      st = cg_set_error(CG_EUSER, "%s: rank %.0f of %d failed in this step (its own message says why)", fn,
                        rank_sum - 1, cg__dist.size);
    else
      st = cg_set_error(CG_EUSER, "%s: %.0f of the %d ranks failed in this step (their own messages say why)", fn,
                        failed, cg__dist.size);
  }
  for (int i = 0; i < r->n_vars && st == CG_OK; i++) {
    const cg_tensor *v = cg_var_value(r->vars[i]);
    const cg_bucket *b = &r->buckets[r->var_bucket[i]];
    out[i] = cg_tensor_from(v->dtype, v->ndim, v->shape,
                            (const char *)b->data + (size_t)r->var_offset[i] * cg_dtype_size(b->dtype));
    if (!out[i]) st = cg_last_status();
  }
  reset_step(r);
  return st;
}

cg_status cg_dist_allreduce_gradients(cg_dist_reducer *r, cg_tensor *const *grads, double weight, cg_tensor **out)
{
  if (!r) return cg_set_error(CG_EINVAL, "cg_dist_allreduce_gradients: reducer is NULL");
  if (!grads && r->n_vars > 0) {
    cg_set_error(CG_EINVAL, "cg_dist_allreduce_gradients: grads is NULL");
    cg_dist_reducer_fail(r);
  }
  for (int i = r->n_vars - 1; i >= 0 && !r->failed; i--)
    if (cg_dist_reducer_ready(r, i, grads[i], weight) != CG_OK) cg_dist_reducer_fail(r);
  return cg_dist_reducer_finish(r, out);
}

cg_status cg_dist_reducer_stats(const cg_dist_reducer *r, cg_dist_stats *out)
{
  if (!r || !out) return cg_set_error(CG_EINVAL, "cg_dist_reducer_stats: %s is NULL", !r ? "reducer" : "out");
  *out = r->stats;
  return CG_OK;
}

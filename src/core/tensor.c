/* tensor.c - tensor objects: creation from data or a fill value, views, accessors and
 * reference counting. Ops never write into an existing tensor; they make new ones. */
#include "internal.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* --- ids and live counts ------------------------------------------------------------------
 * Every tensor needs a new id and moves the live counts; an atomic read-modify-write costs
 * about 10 ns on this project's machine, several per op. So each thread takes ids in blocks
 * (unique in the process; one thread alone numbers its tensors 1, 2, 3, ... as before) and
 * keeps its changes to the counts pending, folding them into the shared totals every
 * FLUSH_TENSORS tensors or FLUSH_BYTES bytes, when it reads a total and when it ends. A
 * thread reading the counts sees its own changes exactly and other threads' within their
 * pending amounts. The peak is followed per thread between folds, from the total as last
 * folded plus what is pending: exact on one thread. */

#define ID_BLOCK 1024
#define FLUSH_TENSORS 256
#define FLUSH_BYTES ((int64_t)1 << 20)

static uint64_t next_id = 1;
static long live_tensors;
static int64_t live_bytes, peak_bytes; /* as folded */
static unsigned peak_epoch;           /* bumped by cg__reset_peak_bytes */

typedef struct {
  uint64_t id_next, id_end; /* this thread's block of ids */
  long tensors;             /* pending changes */
  int64_t bytes;
  int64_t base;             /* live_bytes when this thread last folded */
  int64_t peak;             /* most of base + bytes since then (this epoch) */
  unsigned epoch;
  bool registered;          /* folded when the thread ends */
} thread_counts;

static _Thread_local thread_counts mine;
static pthread_key_t counts_key;
static pthread_once_t counts_once = PTHREAD_ONCE_INIT;

static void fold(void *unused)
{
  (void)unused;
  if (mine.tensors) __atomic_add_fetch(&live_tensors, mine.tensors, __ATOMIC_RELAXED);
  mine.tensors = 0;
  int64_t now = __atomic_add_fetch(&live_bytes, mine.bytes, __ATOMIC_RELAXED);
  int64_t peak = mine.epoch == __atomic_load_n(&peak_epoch, __ATOMIC_RELAXED) ? mine.peak : 0;
  if (now > peak) peak = now;
  int64_t seen = __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);
  while (peak > seen && !__atomic_compare_exchange_n(&peak_bytes, &seen, peak, true, __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED)) {
  }
  mine.bytes = 0;
  mine.base = now;
  mine.peak = now;
  mine.epoch = __atomic_load_n(&peak_epoch, __ATOMIC_RELAXED);
}

static void fold_at_exit(void *unused)
{
  fold(NULL);
  mine.registered = false; /* a tensor freed later in the thread's exit registers again */
}

static void counts_key_create(void) { pthread_key_create(&counts_key, fold_at_exit); }

static void fold_if_due(void)
{
  if (!mine.registered) { /* fold what is pending when this thread ends */
    pthread_once(&counts_once, counts_key_create);
    pthread_setspecific(counts_key, &mine);
    mine.registered = true;
  }
  if (mine.tensors >= FLUSH_TENSORS || mine.tensors <= -FLUSH_TENSORS || mine.bytes >= FLUSH_BYTES ||
      mine.bytes <= -FLUSH_BYTES)
    fold(NULL);
}

static inline uint64_t new_id(void)
{
  if (mine.id_next == mine.id_end) {
    mine.id_next = __atomic_fetch_add(&next_id, ID_BLOCK, __ATOMIC_RELAXED);
    mine.id_end = mine.id_next + ID_BLOCK;
  }
  return mine.id_next++;
}

static inline void count_tensor(long n)
{
  mine.tensors += n;
  if (mine.tensors >= FLUSH_TENSORS || mine.tensors <= -FLUSH_TENSORS || !mine.registered) fold_if_due();
}

static inline void count_bytes(int64_t n)
{
  mine.bytes += n;
  if (n > 0 && mine.base + mine.bytes > mine.peak) mine.peak = mine.base + mine.bytes;
  if (mine.bytes >= FLUSH_BYTES || mine.bytes <= -FLUSH_BYTES) fold_if_due();
}

long cg__live_tensors(void)
{
  fold(NULL);
  return __atomic_load_n(&live_tensors, __ATOMIC_RELAXED);
}

int64_t cg__live_bytes(void)
{
  fold(NULL);
  return __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}

int64_t cg__peak_bytes(void)
{
  fold(NULL);
  return __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);
}

void cg__reset_peak_bytes(void)
{
  fold(NULL);
  __atomic_add_fetch(&peak_epoch, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&peak_bytes, __atomic_load_n(&live_bytes, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
  mine.peak = mine.base = __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
  mine.epoch = __atomic_load_n(&peak_epoch, __ATOMIC_RELAXED);
}

const char *cg_dtype_name(cg_dtype d)
{
  static const char *const names[] = {"f32", "f64", "i32", "i64", "bool"};
  return (unsigned)d < CG_NUM_DTYPES ? names[d] : "?";
}

/* (names in parentheses: internal.h makes the plain names inline versions of these) */
size_t(cg_dtype_size)(cg_dtype d) { return cg__dtype_size(d); }

int(cg_dtype_is_float)(cg_dtype d) { return cg__dtype_is_float(d); }

char *cg__fmt_shape(int ndim, const int64_t *shape, char *buf, size_t n)
{
  size_t used = 0;
  used += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (used < n) snprintf(buf + used, n - used, "]");
  return buf;
}

char *cg_shape_str(const cg_tensor *t, char *buf, size_t n)
{
  if (!buf || !n) return buf;
  if (!t) { snprintf(buf, n, "(null)"); return buf; }
  return cg__fmt_shape(t->ndim, t->shape, buf, n);
}

cg_status cg__shape_size(const char *op, int ndim, const int64_t *shape, int64_t *size)
{
  char buf[160];
  if (ndim < 0 || ndim > CG_MAX_DIMS)
    return cg_set_error(CG_EINVAL, "%s: rank %d is outside 0..%d", op, ndim, CG_MAX_DIMS);
  if (ndim > 0 && !shape) return cg_set_error(CG_EINVAL, "%s: shape is NULL", op);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return cg_set_error(CG_EINVAL, "%s: negative dimension in shape %s", op,
                          cg__fmt_shape(ndim, shape, buf, sizeof buf));
    if (shape[i] && n > INT64_MAX / 16 / shape[i])
      return cg_set_error(CG_ENOMEM, "%s: shape %s has too many elements", op,
                          cg__fmt_shape(ndim, shape, buf, sizeof buf));
    n *= shape[i];
  }
  *size = n;
  return CG_OK;
}

static cg_tensor *init_header(cg_tensor *t, cg_dtype d, int ndim, const int64_t *shape, int64_t size)
{
  t->refcount = 1;
  t->dtype = d;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->size = size;
  t->buf = NULL;
  t->data = NULL;
  t->id = new_id();
  count_tensor(1);
  t->graph = NULL;
  t->producer = NULL;
  t->out_index = 0;
  t->name = NULL;
  t->has_hook = false;
  t->shape_guessed = false;
  t->walk_slot = 0;
  return t;
}

static cg_tensor *tensor_header(cg_dtype d, int ndim, const int64_t *shape, int64_t size)
{
  cg_tensor *t = cg__alloc(sizeof *t);
  return t ? init_header(t, d, ndim, shape, size) : NULL;
}

cg_tensor *cg__tensor_symbolic(struct cg_graph *g, cg_dtype d, int ndim, const int64_t *shape)
{
  int64_t size = 1; /* -1: unknown, or too large to say (callers check known sizes) */
  for (int i = 0; i < ndim && size >= 0; i++)
    if (shape[i] < 0 || __builtin_mul_overflow(size, shape[i], &size)) size = -1;
  cg_tensor *t = tensor_header(d, ndim, shape, size);
  if (t) t->graph = g;
  return t;
}

/* Data up to this size shares one allocation with its tensor and buffer headers; larger
 * data has one of its own, and the two headers still share one. */
#define SMALL_DATA 256
#define ROUND64(n) (((n) + 63) & ~(size_t)63)

static cg_tensor *new_tensor(cg_dtype d, int ndim, const int64_t *shape, int64_t size)
{
  size_t nbytes = (size_t)size * cg__dtype_size(d), data_at = ROUND64(sizeof(cg_tensor) + sizeof(cg_buffer));
  bool apart = nbytes > SMALL_DATA;
  size_t bytes = apart ? sizeof(cg_tensor) + sizeof(cg_buffer) : data_at + nbytes;
  char *block = cg__alloc(bytes);
  if (!block) return NULL;
  char *data = apart ? cg__alloc(nbytes) : block + data_at;
  if (!data) {
    cg__free(block, bytes);
    return NULL;
  }
  cg_tensor *t = init_header((cg_tensor *)block, d, ndim, shape, size);
  cg_buffer *b = (cg_buffer *)(block + sizeof(cg_tensor));
  *b = (cg_buffer){.refcount = 1, .nbytes = nbytes, .data = data, .block = block, .block_bytes = bytes,
                   .data_apart = apart};
  t->buf = b;
  t->data = data;
  count_bytes((int64_t)nbytes);
  return t;
}

cg_tensor *cg__tensor_new(cg_dtype d, int ndim, const int64_t *shape)
{
  int64_t size;
  if ((unsigned)d >= CG_NUM_DTYPES) {
    cg_set_error(CG_EDTYPE, "unknown dtype %d", (int)d);
    return NULL;
  }
  if (cg__shape_size("tensor", ndim, shape, &size) != CG_OK) return NULL;
  return new_tensor(d, ndim, shape, size);
}

cg_tensor *cg__tensor_new_sized(cg_dtype d, int ndim, const int64_t *shape, int64_t size)
{
  return new_tensor(d, ndim, shape, size);
}

cg_tensor *cg__tensor_view(cg_tensor *src, int ndim, const int64_t *shape)
{
  cg_tensor *t = tensor_header(src->dtype, ndim, shape, src->size);
  if (!t) return NULL;
  t->buf = src->buf;
  t->data = src->data;
  __atomic_add_fetch(&src->buf->refcount, 1, __ATOMIC_RELAXED);
  return t;
}

cg_tensor *cg_retain(cg_tensor *t)
{
  if (t) __atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED);
  return t;
}

/* Drops one reference; true when it was the last. A count of 1 is ours alone: nobody else
 * holds a reference that could take another, so the atomic decrement (about 10 ns here) is
 * skipped; the acquire load sees what earlier holders wrote before they let go. */
static inline bool last_reference(int *refcount)
{
  return __atomic_load_n(refcount, __ATOMIC_ACQUIRE) == 1 ||
         __atomic_sub_fetch(refcount, 1, __ATOMIC_ACQ_REL) == 0;
}

void cg_release(cg_tensor *t)
{
  if (!t || !last_reference(&t->refcount)) return;
  cg_buffer *b = t->buf;
  bool header_in_block = b && b->block == (void *)t; /* freed with the block */
  if (t->has_hook) cg__forget_hooks(t->id);
  if (t->name) {
    free(t->name);
    t->name = NULL;
  }
  count_tensor(-1);
  if (b && last_reference(&b->refcount)) {
    count_bytes(-(int64_t)b->nbytes);
    if (b->block) {
      if (b->data_apart) cg__free(b->data, b->nbytes);
      cg__free(b->block, b->block_bytes);
    } else {
      cg__free(b->data, b->nbytes);
      cg__free(b, sizeof *b);
    }
  }
  if (!header_in_block) cg__free(t, sizeof *t);
}

/* --- values ---------------------------------------------------------------------------- */

double cg__load(cg_dtype d, const void *base, int64_t i)
{
  switch (d) {
  case CG_F32: return ((const float *)base)[i];
  case CG_F64: return ((const double *)base)[i];
  case CG_I32: return ((const int32_t *)base)[i];
  case CG_I64: return (double)((const int64_t *)base)[i];
  case CG_BOOL: return ((const uint8_t *)base)[i] != 0;
  default: return NAN;
  }
}

/* To an integer as Cast does it: truncated, saturated at the type's range, NaN as 0 (a
 * plain conversion of a value out of range is undefined behaviour: cg_fill(CG_I32, 1e20)). */
static int64_t saturate(double v, double lo, double hi_excl, int64_t lo_i, int64_t hi_i)
{
  if (v != v) return 0;
  if (v >= hi_excl) return hi_i;
  if (v < lo) return lo_i;
  return (int64_t)v;
}

void cg__store(cg_dtype d, void *base, int64_t i, double v)
{
  switch (d) {
  case CG_F32: ((float *)base)[i] = (float)v; break;
  case CG_F64: ((double *)base)[i] = v; break;
  case CG_I32: ((int32_t *)base)[i] = (int32_t)saturate(v, -2147483648.0, 2147483648.0, INT32_MIN, INT32_MAX); break;
  case CG_I64:
    ((int64_t *)base)[i] = saturate(v, -9223372036854775808.0, 9223372036854775808.0, INT64_MIN, INT64_MAX);
    break;
  case CG_BOOL: ((uint8_t *)base)[i] = v != 0; break;
  default: break;
  }
}

/* The dtype and shape checks of cg__tensor_new, with messages naming the public function. */
static bool creatable(const char *fn, cg_dtype d, int ndim, const int64_t *shape)
{
  int64_t size;
  if ((unsigned)d >= CG_NUM_DTYPES) {
    cg_set_error(CG_EDTYPE, "%s: unknown dtype %d", fn, (int)d);
    return false;
  }
  return cg__shape_size(fn, ndim, shape, &size) == CG_OK;
}

cg_tensor *cg_tensor_from(cg_dtype d, int ndim, const int64_t *shape, const void *data)
{
  if (!creatable("cg_tensor_from", d, ndim, shape)) return NULL;
  cg_tensor *t = cg__tensor_new(d, ndim, shape);
  if (!t) return NULL;
  if (!data && t->size) {
    cg_release(t);
    cg_set_error(CG_EINVAL, "cg_tensor_from: data is NULL");
    return NULL;
  }
  if (t->size) memcpy(t->data, data, t->buf->nbytes);
  cg__scope_adopt(t);
  return t;
}

static cg_tensor *fill(const char *fn, cg_dtype d, int ndim, const int64_t *shape, double value)
{
  if (!creatable(fn, d, ndim, shape)) return NULL;
  cg_tensor *t = cg__tensor_new(d, ndim, shape);
  if (!t) return NULL;
  if (value == 0) memset(t->data, 0, t->buf->nbytes);
  else
    for (int64_t i = 0; i < t->size; i++) cg__store(d, t->data, i, value);
  cg__scope_adopt(t);
  return t;
}

cg_tensor *cg_fill(cg_dtype d, int ndim, const int64_t *shape, double value)
{
  return fill("cg_fill", d, ndim, shape, value);
}
cg_tensor *cg_zeros(cg_dtype d, int ndim, const int64_t *shape) { return fill("cg_zeros", d, ndim, shape, 0); }
cg_tensor *cg_ones(cg_dtype d, int ndim, const int64_t *shape) { return fill("cg_ones", d, ndim, shape, 1); }
cg_tensor *cg_scalar(cg_dtype d, double value) { return fill("cg_scalar", d, 0, NULL, value); }

cg_tensor *cg_scalar_like(const cg_tensor *t, double value)
{
  if (!t) {
    cg__null_input("cg_scalar_like", 0);
    return NULL;
  }
  return cg_scalar(t->dtype, value);
}

cg_tensor *cg_arange(cg_dtype d, double start, double stop, double step)
{
  if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step)) {
    cg_set_error(CG_EINVAL, "cg_arange: step must be finite and nonzero (start %g, stop %g, step %g)",
                 start, stop, step);
    return NULL;
  }
  double count = ceil((stop - start) / step);
  if (count < 0) count = 0;
  if (count > 1e15) {
    cg_set_error(CG_ENOMEM, "cg_arange: %g elements is too many", count);
    return NULL;
  }
  int64_t n = (int64_t)count;
  if (!creatable("cg_arange", d, 1, &n)) return NULL;
  cg_tensor *t = cg__tensor_new(d, 1, &n);
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++) cg__store(d, t->data, i, start + (double)i * step);
  cg__scope_adopt(t);
  return t;
}

/* --- accessors ------------------------------------------------------------------------- */

cg_dtype(cg_tensor_dtype)(const cg_tensor *t) { return cg__tensor_dtype(t); }
int cg_tensor_ndim(const cg_tensor *t) { return t ? t->ndim : -1; }
const int64_t *cg_tensor_shape(const cg_tensor *t) { return t ? t->shape : NULL; }
int64_t cg_tensor_size(const cg_tensor *t) { return t ? t->size : -1; }
void *cg_tensor_data(const cg_tensor *t) { return t ? t->data : NULL; }

int64_t cg_tensor_dim(const cg_tensor *t, int axis)
{
  if (!t) return -1;
  if (axis < 0) axis += t->ndim;
  return axis >= 0 && axis < t->ndim ? t->shape[axis] : -1;
}

double cg_tensor_get(const cg_tensor *t, int64_t i)
{
  if (!t) {
    cg_set_error(CG_EINVAL, "cg_tensor_get: tensor is NULL");
    return NAN;
  }
  if (t->graph) {
    cg_set_error(CG_ESTATE, "cg_tensor_get: a symbolic (graph) tensor has no values until cg_graph_run");
    return NAN;
  }
  if (i < 0 || i >= t->size) {
    cg_set_error(CG_ERANGE, "cg_tensor_get: index %lld outside a tensor of %lld elements",
                 (long long)i, (long long)t->size);
    return NAN;
  }
  return cg__load(t->dtype, t->data, i);
}

double cg_item(const cg_tensor *t)
{
  if (!t) {
    cg_set_error(CG_EINVAL, "cg_item: tensor is NULL");
    return NAN;
  }
  if (t->size != 1) {
    char buf[160];
    cg_set_error(CG_ESHAPE, "cg_item: tensor of shape %s has %lld elements, not 1",
                 cg_shape_str(t, buf, sizeof buf), (long long)t->size);
    return NAN;
  }
  return cg_tensor_get(t, 0);
}

int64_t cg_tensor_to_f64(const cg_tensor *t, double *out, int64_t n)
{
  if (!t || !out || t->graph || n <= 0) return 0;
  int64_t m = t->size < n ? t->size : n;
  for (int64_t i = 0; i < m; i++) out[i] = cg__load(t->dtype, t->data, i);
  return m;
}

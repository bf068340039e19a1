/* alloc.c - the one place memory comes from: 64-byte aligned blocks cached by power-of-two
 * size class (small ones per thread, with no lock; larger ones in a shared cache), so eager
 * loops do not call malloc per op, and plain allocations for bookkeeping. All report
 * CG_ENOMEM instead of failing silently. */
#include "internal.h"
#include <pthread.h>
#include <stdlib.h>

#define CACHE_CLASSES 40
#define CACHE_DEPTH 16 /* buffers kept per size class */

static struct {
  pthread_mutex_t lock;
  void *slots[CACHE_CLASSES][CACHE_DEPTH];
  int count[CACHE_CLASSES];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Blocks of the smallest size classes (tensor and buffer headers, tape records, small
   tensors) are kept per thread, linked through their first word. */
#define LOCAL_CLASSES 4   /* 64 .. 512 bytes */
#define LOCAL_DEPTH 16384 /* per class: up to 1 MB of 64-byte blocks, 8 MB of 512-byte ones */

typedef struct {
  void *head[LOCAL_CLASSES];
  int count[LOCAL_CLASSES];
  bool registered; /* flushed when the thread ends */
} local_cache;

static _Thread_local local_cache local;
static pthread_key_t local_key;
static pthread_once_t local_once = PTHREAD_ONCE_INIT;

static void local_flush(void *unused)
{
  for (int c = 0; c < LOCAL_CLASSES; c++)
    while (local.head[c]) {
      void *p = local.head[c];
      local.head[c] = *(void **)p;
      free(p);
    }
  for (int c = 0; c < LOCAL_CLASSES; c++) local.count[c] = 0;
  local.registered = false;
}

static void local_key_create(void) { pthread_key_create(&local_key, local_flush); }

/* --- failure injection (tests): the Nth allocation on this thread fails -------------------- */

static _Thread_local long alloc_calls, fail_at = -1;

void cg__alloc_fail_at(long n)
{
  alloc_calls = 0;
  fail_at = n;
}

long cg__alloc_calls(void) { return alloc_calls; }

static inline bool injected_failure(size_t nbytes)
{
  if (__builtin_expect(alloc_calls++ != fail_at, 1)) return false;
  cg_set_error(CG_ENOMEM, "out of memory allocating %zu bytes (injected failure %ld)", nbytes, fail_at);
  return true;
}

/* Class c holds blocks of 64 << c bytes; -1: too large for any (rounded = nbytes). */
static inline int size_class(size_t nbytes, size_t *rounded)
{
  if (nbytes <= 64) {
    *rounded = 64;
    return 0;
  }
  int c = 64 - __builtin_clzll((unsigned long long)nbytes - 1) - 6;
  if (c > CACHE_CLASSES - 1) {
    *rounded = nbytes;
    return -1;
  }
  *rounded = (size_t)64 << c;
  return c;
}

/* The per-thread class of nbytes, or LOCAL_CLASSES if it has none (the fast paths' test). */
static inline unsigned local_class(size_t nbytes)
{
  if (nbytes <= 64) return 0;
  if (nbytes > (size_t)64 << (LOCAL_CLASSES - 1)) return LOCAL_CLASSES;
  return (unsigned)(64 - __builtin_clzll((unsigned long long)nbytes - 1) - 6);
}

/* What the fast paths below leave: the shared cache, the heap, this thread's first block. */
static __attribute__((noinline)) void *alloc_slow(size_t nbytes)
{
  size_t rounded;
  int c = size_class(nbytes ? nbytes : 1, &rounded);
  if (c >= LOCAL_CLASSES) {
    pthread_mutex_lock(&cache.lock);
    void *p = cache.count[c] ? cache.slots[c][--cache.count[c]] : NULL;
    pthread_mutex_unlock(&cache.lock);
    if (p) return p;
  }
  void *p = NULL;
  if (posix_memalign(&p, 64, rounded) != 0) {
    cg_set_error(CG_ENOMEM, "out of memory allocating %zu bytes", nbytes);
    return NULL;
  }
  return p;
}

static __attribute__((noinline)) void free_slow(void *p, size_t nbytes)
{
  if (!p) return;
  size_t rounded;
  int c = size_class(nbytes ? nbytes : 1, &rounded);
  if (c >= 0 && c < LOCAL_CLASSES && local.count[c] < LOCAL_DEPTH) {
    if (!local.registered) {
      pthread_once(&local_once, local_key_create); /* flush this thread's blocks when it exits */
      pthread_setspecific(local_key, &local);
      local.registered = true;
    }
    *(void **)p = local.head[c];
    local.head[c] = p;
    local.count[c]++;
    return;
  }
  if (c >= LOCAL_CLASSES) {
    pthread_mutex_lock(&cache.lock);
    if (cache.count[c] < CACHE_DEPTH) {
      cache.slots[c][cache.count[c]++] = p;
      p = NULL;
    }
    pthread_mutex_unlock(&cache.lock);
  }
  free(p);
}

void *cg__alloc(size_t nbytes)
{
  if (injected_failure(nbytes)) return NULL;
  unsigned c = local_class(nbytes);
  if (c < LOCAL_CLASSES && local.head[c]) {
    void *p = local.head[c];
    local.head[c] = *(void **)p;
    local.count[c]--;
    return p;
  }
  return alloc_slow(nbytes);
}

void cg__free(void *p, size_t nbytes)
{
  unsigned c = local_class(nbytes);
  if (p && c < LOCAL_CLASSES && local.count[c] < LOCAL_DEPTH && local.registered) {
    *(void **)p = local.head[c];
    local.head[c] = p;
    local.count[c]++;
    return;
  }
  free_slow(p, nbytes);
}

void *cg__malloc(size_t nbytes)
{
  if (injected_failure(nbytes)) return NULL;
  void *p = malloc(nbytes ? nbytes : 1);
  if (!p) cg_set_error(CG_ENOMEM, "out of memory allocating %zu bytes", nbytes);
  return p;
}

void *cg__calloc(size_t n, size_t size)
{
  if (injected_failure(n * size)) return NULL;
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) cg_set_error(CG_ENOMEM, "out of memory allocating %zu x %zu bytes", n, size);
  return p;
}

void *cg__realloc(void *p, size_t nbytes)
{
  if (injected_failure(nbytes)) return NULL;
  void *q = realloc(p, nbytes ? nbytes : 1);
  if (!q) cg_set_error(CG_ENOMEM, "out of memory allocating %zu bytes", nbytes);
  return q;
}

/* Return cached buffers at exit so leak checkers see a clean heap. */
__attribute__((destructor)) static void cache_drain(void)
{
  local_flush(NULL); /* the main thread's blocks: thread-exit destructors do not run at exit */
  pthread_mutex_lock(&cache.lock);
  for (int c = 0; c < CACHE_CLASSES; c++)
    while (cache.count[c]) free(cache.slots[c][--cache.count[c]]);
  pthread_mutex_unlock(&cache.lock);
}

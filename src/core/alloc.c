/* alloc.c - the one place memory comes from: 64-byte aligned tensor buffers, cached by
 * power-of-two size class so that eager loops do not hit malloc per op, and plain
 * allocations for bookkeeping. Both report CG_ENOMEM instead of failing silently. */
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

/* --- failure injection (tests): the Nth allocation on this thread fails -------------------- */

static _Thread_local long alloc_calls, fail_at = -1;

void cg__alloc_fail_at(long n)
{
  alloc_calls = 0;
  fail_at = n;
}

long cg__alloc_calls(void) { return alloc_calls; }

static bool injected_failure(size_t nbytes)
{
  if (alloc_calls++ != fail_at) return false;
  cg_set_error(CG_ENOMEM, "out of memory allocating %zu bytes (injected failure %ld)", nbytes, fail_at);
  return true;
}

static int size_class(size_t nbytes, size_t *rounded)
{
  size_t sz = 64;
  int c = 0;
  while (sz < nbytes && c < CACHE_CLASSES - 1) { sz <<= 1; c++; }
  *rounded = sz < nbytes ? nbytes : sz;
  return sz < nbytes ? -1 : c;
}

void *cg__alloc(size_t nbytes)
{
  if (injected_failure(nbytes)) return NULL;
  size_t rounded;
  int c = size_class(nbytes ? nbytes : 1, &rounded);
  if (c >= 0) {
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

void cg__free(void *p, size_t nbytes)
{
  if (!p) return;
  size_t rounded;
  int c = size_class(nbytes ? nbytes : 1, &rounded);
  if (c >= 0) {
    pthread_mutex_lock(&cache.lock);
    if (cache.count[c] < CACHE_DEPTH) {
      cache.slots[c][cache.count[c]++] = p;
      p = NULL;
    }
    pthread_mutex_unlock(&cache.lock);
  }
  free(p);
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
  pthread_mutex_lock(&cache.lock);
  for (int c = 0; c < CACHE_CLASSES; c++)
    while (cache.count[c]) free(cache.slots[c][--cache.count[c]]);
  pthread_mutex_unlock(&cache.lock);
}

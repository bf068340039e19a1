/* parallel.c - the thread pool behind parallel.h: workers started on first use, one job at a
 * time, its parts claimed by whichever thread comes first (the caller included, so a worker
 * that has lost its core delays nothing it has not started), and how idle workers wait:
 * spin for 0.2 ms, then spin yielding the core until 2 ms, then sleep on a condition
 * variable. */
#include "parallel.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_PIECES 255 /* parts of one job (the job word holds 8 bits) */
#define SPIN_PAUSES 2000          /* the caller's polls before it yields, waiting for parts */
#define SPIN_BUSY_NS 200000       /* an idle worker polls this long, keeping its core: the   */
                                  /* gaps between a step's jobs are shorter than that       */
#define SPIN_YIELD_NS 2000000     /* then polls yielding the core until this long, then sleeps */

/* The job word: job number << 24 | part count << 16 | next part to claim. Claiming a part
 * is a compare-and-swap on it that only succeeds for the job the claimer saw, so a thread
 * that arrives late can never run a part of the next job by mistake; fn and ctx stay valid
 * while any part is claimed and unfinished, because the caller waits for all of them. */
#define JOB_NUMBER(w) ((w) >> 24)
#define JOB_PARTS(w) ((int)(((w) >> 16) & 0xff))
#define JOB_NEXT(w) ((int)((w)&0xffff))

static struct {
  pthread_mutex_t busy;       /* held by the one caller whose job runs                     */
  pthread_mutex_t sleep_lock; /* with wake: where idle workers sleep                       */
  pthread_cond_t wake;
  pthread_cond_t resized;     /* with sleep_lock: the thread limit changed                  */
  atomic_int started;         /* workers running (0 until first use)                       */
  int threads;                /* workers + the caller (under start_lock)                   */
  atomic_int limit;           /* threads that take parts (cg_set_num_threads)              */
  atomic_ullong job;
  atomic_int sleepers;
  atomic_int done;            /* parts of the current job finished                         */
  cg_part_fn fn;
  void *ctx;
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER, .sleep_lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER, .resized = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static int requested; /* cg_set_num_threads's n (0: the default); kept across fork */
static _Thread_local bool in_part; /* this thread is running a part: no nested jobs */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs parts of job `number` until none is left; returns how many it ran. */
static int run_parts_of(unsigned long long number)
{
  int ran = 0;
  unsigned long long w = atomic_load_explicit(&pool.job, memory_order_acquire);
  while (JOB_NUMBER(w) == number && JOB_NEXT(w) < JOB_PARTS(w)) {
    if (!atomic_compare_exchange_weak_explicit(&pool.job, &w, w + 1, memory_order_acq_rel,
                                               memory_order_acquire))
      continue; /* w now holds the current word */
    pool.fn(pool.ctx, JOB_NEXT(w), JOB_PARTS(w));
    atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    ran++;
    w = atomic_load_explicit(&pool.job, memory_order_acquire);
  }
  return ran;
}

/* The number of the job after `seen`: poll, then poll yielding the core, then sleep. A
 * worker that yielded may lose its core to another process for a whole time slice and
 * miss the next jobs (the caller then runs their parts itself), so it first polls without
 * yielding for as long as a step's jobs usually lie apart. */
static unsigned long long wait_for_job(unsigned long long seen)
{
  unsigned long long n;
  int64_t start = now_ns();
  for (int i = 0;; i++) {
    if ((n = JOB_NUMBER(atomic_load_explicit(&pool.job, memory_order_acquire))) != seen) return n;
    cpu_relax();
    if (i % 256 == 255 && now_ns() - start > SPIN_BUSY_NS) break;
  }
  while ((n = JOB_NUMBER(atomic_load_explicit(&pool.job, memory_order_acquire))) == seen &&
         now_ns() - start < SPIN_YIELD_NS)
    sched_yield();
  if (n != seen) return n;
  pthread_mutex_lock(&pool.sleep_lock);
  atomic_fetch_add(&pool.sleepers, 1);
  while ((n = JOB_NUMBER(atomic_load(&pool.job))) == seen)
    pthread_cond_wait(&pool.wake, &pool.sleep_lock);
  atomic_fetch_sub(&pool.sleepers, 1);
  pthread_mutex_unlock(&pool.sleep_lock);
  return n;
}

/* Worker `index` (1 .. threads-1; the caller is 0) takes parts only while the thread
 * count set by cg_set_num_threads leaves room for it. */
static void *worker(void *arg)
{
  int index = (int)(intptr_t)arg;
  unsigned long long seen = JOB_NUMBER(atomic_load(&pool.job));
  in_part = true; /* everything a worker runs is a part */
  for (;;) {
    if (index >= atomic_load_explicit(&pool.limit, memory_order_relaxed)) {
      pthread_mutex_lock(&pool.sleep_lock); /* parked until the count grows again */
      while (index >= atomic_load(&pool.limit)) pthread_cond_wait(&pool.resized, &pool.sleep_lock);
      pthread_mutex_unlock(&pool.sleep_lock);
      seen = JOB_NUMBER(atomic_load(&pool.job));
    }
    seen = wait_for_job(seen);
    run_parts_of(seen);
  }
  return NULL;
}

/* CGRAD_NUM_THREADS, else the CPUs in this process's affinity mask. */
static int wanted_threads(void)
{
  const char *env = getenv("CGRAD_NUM_THREADS");
  long n = env ? strtol(env, NULL, 10) : 0;
  if (n <= 0) {
    cpu_set_t set;
    n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
  }
  return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* A forked child has none of the parent's workers: it starts its own when it needs them. */
static void forget_workers(void)
{
  pthread_mutex_init(&pool.busy, NULL);
  pthread_mutex_init(&pool.sleep_lock, NULL);
  pthread_cond_init(&pool.wake, NULL);
  pthread_cond_init(&pool.resized, NULL);
  pthread_mutex_init(&start_lock, NULL);
  atomic_store(&pool.started, 0);
  atomic_store(&pool.sleepers, 0);
  pool.threads = 0;
  atomic_store(&pool.limit, 0);
}

/* Starts workers until the pool has `want` threads (the caller counted); returns how many
 * it has (fewer when the system refuses more). */
static int grow_pool(int want)
{
  pthread_mutex_lock(&start_lock);
  static bool registered;
  if (!registered) registered = pthread_atfork(NULL, NULL, forget_workers) == 0;
  if (pool.threads < 1) pool.threads = 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (; pool.threads < want; pool.threads++) {
    pthread_t t;
    if (pthread_create(&t, &attr, worker, (void *)(intptr_t)pool.threads) != 0) break;
  }
  pthread_attr_destroy(&attr);
  int threads = pool.threads;
  if (!atomic_load(&pool.started)) {
    int want = requested > 0 ? requested : wanted_threads();
    atomic_store(&pool.limit, want < threads ? want : threads);
    atomic_store_explicit(&pool.started, 1, memory_order_release);
  }
  pthread_mutex_unlock(&start_lock);
  return threads;
}

/* Starts the workers on first use; returns the threads kernels may use now. */
static int start_pool(void)
{
  if (!atomic_load_explicit(&pool.started, memory_order_acquire)) grow_pool(wanted_threads());
  return atomic_load_explicit(&pool.limit, memory_order_relaxed);
}

int cg__threads(void) { return in_part ? 1 : start_pool(); }

cg_status cg_set_num_threads(int n)
{
  if (n > MAX_THREADS)
    return cg_set_error(CG_EINVAL, "cg_set_num_threads: %d threads asked for, at most %d", n, MAX_THREADS);
  pthread_mutex_lock(&start_lock);
  requested = n > 0 ? n : 0;
  pthread_mutex_unlock(&start_lock);
  int want = n > 0 ? n : wanted_threads(), have = grow_pool(want);
  pthread_mutex_lock(&pool.sleep_lock);
  atomic_store(&pool.limit, want < have ? want : have);
  pthread_cond_broadcast(&pool.resized);
  pthread_mutex_unlock(&pool.sleep_lock);
  return CG_OK;
}

int cg_num_threads(void) { return start_pool(); }

static void run_serially(int parts, cg_part_fn fn, void *ctx)
{
  bool outer = in_part;
  in_part = true;
  for (int p = 0; p < parts; p++) fn(ctx, p, parts);
  in_part = outer;
}

void cg__parallel_parts(int parts, cg_part_fn fn, void *ctx)
{
  if (parts <= 1 || parts > 255 || cg__threads() < 2 ||
      pthread_mutex_trylock(&pool.busy) != 0) {
    run_serially(parts, fn, ctx);
    return;
  }
  pool.fn = fn;
  pool.ctx = ctx;
  atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
  unsigned long long number = JOB_NUMBER(atomic_load_explicit(&pool.job, memory_order_relaxed)) + 1;
  number &= (1ull << 40) - 1; /* wraps after 10^12 jobs; only a change matters to waiters */
  /* publishes fn, ctx and the cleared count with the job (sequentially consistent) */
  atomic_store(&pool.job, number << 24 | (unsigned long long)parts << 16);
  if (atomic_load(&pool.sleepers) > 0) {
    pthread_mutex_lock(&pool.sleep_lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.sleep_lock);
  }
  in_part = true;
  run_parts_of(number); /* the caller takes parts too: nobody waits for a sleeping worker */
  in_part = false;
  for (int i = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < parts; i++)
    if (i < SPIN_PAUSES) cpu_relax();
    else sched_yield(); /* a worker that claimed a part lost its core: let it have ours */
  pthread_mutex_unlock(&pool.busy);
}

int64_t cg__split_point(int64_t n, int part, int parts, int64_t align)
{
  if (part >= parts) return n;
  int64_t p = n / parts * part + n % parts * part / parts;
  return p / align * align;
}

typedef struct {
  int64_t n, chunk;
  cg_range_fn fn;
  void *ctx;
} range_job;

static void range_part(void *ctx, int part, int parts)
{
  const range_job *j = ctx;
  int64_t begin = part * j->chunk, end = begin + j->chunk < j->n ? begin + j->chunk : j->n;
  j->fn(j->ctx, begin, end);
}

void cg__parallel_for(int64_t n, int64_t min_per_thread, cg_range_fn fn, void *ctx)
{
  if (n <= 0) return;
  /* Pieces of at least min_per_thread, a multiple of 16, at most MAX_PIECES of them: chosen
     from n alone, so a kernel sees the same ranges whatever the thread count. */
  int64_t chunk = min_per_thread > 1 ? min_per_thread : 1, fewest = (n + MAX_PIECES - 1) / MAX_PIECES;
  if (chunk < fewest) chunk = fewest;
  chunk = (chunk + 15) / 16 * 16;
  if (chunk >= n) {
    fn(ctx, 0, n);
    return;
  }
  range_job j = {n, chunk, fn, ctx};
  cg__parallel_parts((int)((n + chunk - 1) / chunk), range_part, &j);
}

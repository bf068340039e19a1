/* watchdog.c - a job must stop, not hang, when a rank dies or stalls. Collectives arm a
 * deadline (cg__dist_watch_begin/end); a thread sleeps until the earliest one and, when a
 * collective is still waiting past it, says which and where on stderr and aborts the job.
 * Only armed with cg_dist_set_timeout: the library never ends a process on its own. */
#include "dist.h"
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 8 /* threads that may wait in a collective at once (main + reducer threads) */

typedef struct {
  bool armed;
  double since, deadline; /* deadline 0: armed while no timeout was set, never fires */
  const char *what;
} watch;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  pthread_t thread;
  bool running, stop;
  double timeout; /* seconds; 0: off */
  watch slots[SLOTS];
} dog = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static _Thread_local int my_slot = -1, my_depth;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts); /* the clock pthread_cond_timedwait uses */
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fire(const watch *w)
{
  fprintf(stderr,
          "cgrad: rank %d of %d: %s has waited %.0f s for the other ranks (timeout %.0f s): one of "
          "them has died, hangs or was stopped. Aborting the job.\n",
          cg__dist.rank, cg__dist.size, w->what, now_s() - w->since, dog.timeout);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  _exit(3); /* MPI_Abort does not return; this is for an MPI that does */
}

static void *watch_loop(void *unused)
{
  pthread_mutex_lock(&dog.lock);
  while (!dog.stop) {
    const watch *first = NULL;
    for (int i = 0; i < SLOTS; i++)
      if (dog.slots[i].armed && dog.slots[i].deadline > 0 &&
          (!first || dog.slots[i].deadline < first->deadline))
        first = &dog.slots[i];
    if (!first) {
      pthread_cond_wait(&dog.wake, &dog.lock);
      continue;
    }
    if (now_s() >= first->deadline) fire(first);
    double d = first->deadline;
    struct timespec until = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    pthread_cond_timedwait(&dog.wake, &dog.lock, &until);
  }
  pthread_mutex_unlock(&dog.lock);
  return NULL;
}

cg_status cg_dist_set_timeout(double seconds)
{
  if (!(seconds >= 0))
    return cg_set_error(CG_EINVAL, "cg_dist_set_timeout: %g seconds is not a duration (0 turns it off)",
                        seconds);
  pthread_mutex_lock(&dog.lock);
  dog.timeout = seconds;
  cg_status st = CG_OK;
  if (seconds > 0 && !dog.running) {
    dog.stop = false;
    if (pthread_create(&dog.thread, NULL, watch_loop, NULL) == 0) dog.running = true;
    else st = cg_set_error(CG_ENOMEM, "cg_dist_set_timeout: cannot start the watchdog thread");
  }
  pthread_cond_signal(&dog.wake);
  pthread_mutex_unlock(&dog.lock);
  return st;
}

void cg__dist_watch_begin(const char *what)
{
  if (my_slot >= 0) {
    my_depth++;
    return;
  }
  pthread_mutex_lock(&dog.lock);
  for (int i = 0; i < SLOTS; i++)
    if (!dog.slots[i].armed) {
      double t = now_s();
      dog.slots[i] = (watch){true, t, dog.timeout > 0 ? t + dog.timeout : 0, what};
      my_slot = i;
      my_depth = 1;
      break;
    }
  pthread_cond_signal(&dog.wake);
  pthread_mutex_unlock(&dog.lock);
}

void cg__dist_watch_end(void)
{
  if (my_slot < 0 || --my_depth > 0) return;
  pthread_mutex_lock(&dog.lock);
  dog.slots[my_slot].armed = false;
  my_slot = -1;
  pthread_mutex_unlock(&dog.lock);
}

void cg__dist_watchdog_stop(void)
{
  pthread_mutex_lock(&dog.lock);
  bool running = dog.running;
  dog.stop = true;
  dog.running = false;
  pthread_cond_signal(&dog.wake);
  pthread_mutex_unlock(&dog.lock);
  if (running) pthread_join(dog.thread, NULL);
}

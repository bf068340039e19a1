/* common.c - what every workload uses: a monotonic clock, medians, the process's peak
 * resident memory and the one output format ("key value unit  what") bench/run reads. */
#include "bench.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

double bench_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(const double *v, int n)
{
  if (n <= 0) return 0;
  double *s = malloc((size_t)n * sizeof *s);
  if (!s) return v[0];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, compare_doubles);
  double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  free(s);
  return m;
}

double bench_cpu_seconds(void)
{
  struct rusage u;
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

double bench_peak_rss_mb(void)
{
  struct rusage u;
  if (getrusage(RUSAGE_SELF, &u) != 0) return -1;
  return (double)u.ru_maxrss / 1024.0; /* Linux reports KiB */
}

void bench_report(const char *key, double value, const char *unit, const char *what)
{
  printf("%-22s %12.6g %-6s %s\n", key, value, unit, what);
  fflush(stdout);
}

int bench_fail(const char *where)
{
  fprintf(stderr, "%s: %s\n", where, cg_last_error());
  return 1;
}

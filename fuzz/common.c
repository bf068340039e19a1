/* common.c - the fuzz targets' byte reader, temporary directory and checks (common.h), and
 * the sanitizer defaults every target runs with: an allocation larger than the limit fails
 * (the library must report CG_ENOMEM) instead of ending the run. */
#include "common.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

/* Requests over 64 MB return NULL: shapes from the fuzzer's bytes may legitimately ask for
 * terabytes, and what matters is that the library says CG_ENOMEM, frees what it holds and
 * recovers. (libFuzzer itself needs blocks of about 20 MB.) */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
  return "allocator_may_return_null=1:max_allocation_size_mb=64:detect_leaks=1";
}

uint8_t fz_u8(fz_bytes *b)
{
  if (!b->n) return 0;
  b->n--;
  return *b->p++;
}

uint32_t fz_u32(fz_bytes *b)
{
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = v << 8 | fz_u8(b);
  return v;
}

uint64_t fz_u64(fz_bytes *b) { return (uint64_t)fz_u32(b) << 32 | fz_u32(b); }

int64_t fz_int(fz_bytes *b)
{
  static const int64_t edges[] = {INT64_MAX,
                                  INT64_MIN,
                                  INT32_MAX,
                                  INT32_MIN,
                                  (int64_t)1 << 31,
                                  (int64_t)1 << 32,
                                  (int64_t)1 << 62,
                                  -((int64_t)1 << 62),
                                  UINT32_MAX,
                                  (int64_t)1 << 40,
                                  -1,
                                  0,
                                  65536,
                                  (int64_t)1 << 20,
                                  INT64_MAX / 2 + 1,
                                  -(INT64_MAX / 2)};
  uint8_t sel = fz_u8(b);
  if (sel < 160) return (int64_t)(fz_u8(b) % 11) - 3;
  if (sel < 200) return fz_u8(b);
  if (sel < 240) return edges[fz_u8(b) % (sizeof edges / sizeof *edges)];
  return (int64_t)fz_u64(b);
}

double fz_double(fz_bytes *b)
{
  static const double special[] = {NAN,  INFINITY, -INFINITY, 1e300, -1e300,       1e-310,
                                   -0.0, 3.4e38,   1e10,      0.5,   2147483648.0, -9.3e18};
  uint8_t sel = fz_u8(b);
  if (sel < 200) return (int8_t)fz_u8(b) / 4.0;
  if (sel < 240) return special[fz_u8(b) % (sizeof special / sizeof *special)];
  uint64_t u = fz_u64(b);
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* --- the private directory (removed at exit with what the targets wrote in it) ------------ */

static char dir[256];
static char *names[16];
static int n_names;

static void remove_dir(void)
{
  char path[512];
  for (int i = 0; i < n_names; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
    free(names[i]);
  }
  n_names = 0;
  rmdir(dir);
}

const char *fz_dir(void)
{
  if (!dir[0]) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/cgrad-fuzz-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
      perror("fuzz: mkdtemp");
      abort();
    }
    atexit(remove_dir);
  }
  return dir;
}

const char *fz_path(const char *name)
{
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", fz_dir(), name);
  int known = 0;
  for (int i = 0; i < n_names; i++) known |= !strcmp(names[i], name);
  if (!known && n_names < 16) names[n_names++] = strdup(name);
  return buf[k];
}

const char *fz_write_file(const char *name, const void *data, size_t n)
{
  const char *path = fz_path(name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    perror(path);
    abort();
  }
  for (size_t done = 0; done < n;) {
    ssize_t w = write(fd, (const char *)data + done, n - done);
    if (w <= 0) {
      perror(path);
      abort();
    }
    done += (size_t)w;
  }
  close(fd);
  return path;
}

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "\n%s:%d: library promise broken: %s\n  ", file, line, cond);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  last error: %s: %s\n", cg_status_name(cg_last_status()), cg_last_error());
  abort();
}

cg_status fz_check_error(cg_status st, const char *what)
{
  if (st == CG_OK) return st;
  fz_check(st > CG_OK && st <= CG_ECHECK, "%s returned status %d, not a cg_status", what, (int)st);
  fz_check(cg_last_status() == st, "%s returned %s but cg_last_status() is %s", what,
           cg_status_name(st), cg_status_name(cg_last_status()));
  fz_check(cg_last_error()[0] != '\0', "%s failed with %s and an empty message", what,
           cg_status_name(st));
  return st;
}

/* atomic_file.c - see atomic_file.h. */
#include "atomic_file.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

cg_status cg__atomic_io_error(const cg_atomic_file *a, const char *what, const char *file)
{
  return cg_set_error(CG_EIO, "%s: cannot %s '%s': %s", a->who, what, file, strerror(errno));
}

cg_status cg__atomic_begin(cg_atomic_file *a, const char *path, const char *who)
{
  static _Atomic unsigned long counter;
  *a = (cg_atomic_file){.path = path, .who = who};
  size_t n = strlen(path) + 64;
  if (!(a->tmp = malloc(n))) return cg_set_error(CG_ENOMEM, "%s: out of memory", who);
  snprintf(a->tmp, n, "%s.tmp.%ld.%lu", path, (long)getpid(), counter++);
  int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0 || !(a->f = fdopen(fd, "wb"))) {
    cg_status st = cg__atomic_io_error(a, "create", a->tmp);
    if (fd >= 0) {
      close(fd);
      unlink(a->tmp);
    }
    free(a->tmp);
    a->tmp = NULL;
    return st;
  }
  return CG_OK;
}

/* The directory of path (a new string), or NULL when out of memory. */
static char *parent_dir(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

/* Whether name is "<base>.tmp.<pid>.<k>" for a pid other than ours that no process has
   (the save that made it was killed). A live one's save may be under way: it is left alone. */
static bool stale_temporary(const char *name, const char *base, size_t base_len)
{
  if (strncmp(name, base, base_len) != 0 || strncmp(name + base_len, ".tmp.", 5) != 0) return false;
  const char *p = name + base_len + 5;
  char *end;
  long pid = strtol(p, &end, 10);
  if (end == p || *end != '.' || pid <= 0 || pid == (long)getpid()) return false;
  for (p = end + 1; *p; p++)
    if (*p < '0' || *p > '9') return false;
  return end[1] != '\0' && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Removes what saves of path killed midway left in its directory. (A directory shared with
   other machines could hold another machine's temporary file under a pid not running here;
   saving one file from two machines at once is a race between their renames anyway.) */
static void remove_stale_temporaries(const char *path, const char *dir)
{
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t base_len = strlen(base);
  DIR *d = opendir(dir);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));)
    if (stale_temporary(e->d_name, base, base_len)) (void)unlinkat(dirfd(d), e->d_name, 0);
  closedir(d);
}

/* Makes the rename durable. Best effort: some file systems refuse fsync on a directory,
   and the new file is in place either way. */
static void fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

cg_status cg__atomic_end(cg_atomic_file *a, cg_status st)
{
  if (!a->f) return st;
  if (st == CG_OK && fflush(a->f) != 0) st = cg__atomic_io_error(a, "write", a->tmp);
  if (st == CG_OK && fsync(fileno(a->f)) != 0) st = cg__atomic_io_error(a, "fsync", a->tmp);
  if (fclose(a->f) != 0 && st == CG_OK) st = cg__atomic_io_error(a, "close", a->tmp);
  a->f = NULL;
  if (st == CG_OK && rename(a->tmp, a->path) != 0)
    st = cg__atomic_io_error(a, "rename the new file over", a->path);
  if (st != CG_OK) {
    unlink(a->tmp); /* the old file, if any, is untouched */
  } else {
    char *dir = parent_dir(a->path);
    if (dir) {
      remove_stale_temporaries(a->path, dir);
      fsync_dir(dir);
    }
    free(dir);
  }
  free(a->tmp);
  a->tmp = NULL;
  return st;
}

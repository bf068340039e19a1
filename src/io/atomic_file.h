/* atomic_file.h - writing a file whole or not at all (checkpoints, saved graphs): the
 * contents go to a temporary file beside the target, which is flushed, fsynced and renamed
 * over it, so a crash leaves the old file or the new one, never a part of one. A save that
 * succeeds also removes the temporary files that saves of the same file killed midway left
 * behind. */
#ifndef CG_IO_ATOMIC_FILE_H
#define CG_IO_ATOMIC_FILE_H

#include "../core/internal.h"
#include <stdio.h>

typedef struct {
  const char *path;
  const char *who; /* the public function, for messages */
  char *tmp;       /* "<path>.tmp.<pid>.<k>": unique per process and per call */
  FILE *f;         /* the contents go here */
} cg_atomic_file;

/* Creates the temporary file (an error naming who and the file if it cannot). */
cg_status cg__atomic_begin(cg_atomic_file *a, const char *path, const char *who);
/* st: CG_OK if the contents were written without error. Then flushes, fsyncs and renames the
 * temporary file over path; otherwise, or if any of that fails, removes it and leaves path
 * as it was. Returns the first failure (st if it was one). */
cg_status cg__atomic_end(cg_atomic_file *a, cg_status st);
/* CG_EIO "<who>: cannot <what> '<file>': <strerror(errno)>". */
cg_status cg__atomic_io_error(const cg_atomic_file *a, const char *what, const char *file);

#endif

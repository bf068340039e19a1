/* scope.c - ownership scopes: every new tensor is held by the innermost open scope, which
 * drops its references when it ends. One flat stack of held references per thread, with a
 * mark where each scope begins. The stack keeps spare room, so that handing a tensor to a
 * scope never fails even when the allocator has just failed (growth is retried later). */
#include "internal.h"
#include <stdlib.h>

#define SPARE CG__SCOPE_SPARE /* free slots kept ahead: adopting needs no allocation */

/* Grows the held stack when fewer than SPARE slots are free; a failure is harmless while
   any slot is left, and retried on the next call. */
static bool keep_spare(cg_thread_state *s)
{
  if (s->cap_held - s->n_held >= SPARE) return true;
  size_t cap = s->cap_held ? 2 * s->cap_held : 256;
  cg_tensor **held = realloc(s->held, cap * sizeof *held);
  if (held) {
    s->held = held;
    s->cap_held = cap;
  }
  return s->n_held < s->cap_held;
}

void cg__scope_adopt_slow(cg_tensor *t)
{
  cg_thread_state *s = cg__tls();
  if (!t || s->n_scopes == 0) return;
  if (s->n_held == s->cap_held && !keep_spare(s)) {
    cg_set_error(CG_ENOMEM, "out of memory: a scope could not take a tensor");
    return;
  }
  s->held[s->n_held++] = t;
  keep_spare(s);
}

/* Looks at the innermost scope's most recent references only: the caller asks about a
   tensor it has just been handed, and a scope can be long. */
#define TAKE_LOOKBACK 16

bool cg__scope_take(cg_tensor *t)
{
  cg_thread_state *s = cg__tls();
  if (!t || s->n_scopes == 0) return false;
  size_t mark = s->scope_marks[s->n_scopes - 1];
  size_t stop = s->n_held - mark > TAKE_LOOKBACK ? s->n_held - TAKE_LOOKBACK : mark;
  for (size_t i = s->n_held; i-- > stop;)
    if (s->held[i] == t) {
      s->held[i] = s->held[--s->n_held]; /* (the order in which a scope releases is free) */
      return true;
    }
  return false;
}

cg_scope cg_scope_begin(void)
{
  cg_thread_state *s = cg__tls();
  if (s->n_scopes == s->cap_scopes) {
    int cap = s->cap_scopes ? 2 * s->cap_scopes : 16;
    size_t *marks = cg__realloc(s->scope_marks, (size_t)cap * sizeof *marks);
    if (!marks) return -1;
    s->scope_marks = marks;
    s->cap_scopes = cap;
  }
  if (!keep_spare(s)) {
    cg_set_error(CG_ENOMEM, "cg_scope_begin: out of memory");
    return -1;
  }
  s->scope_marks[s->n_scopes++] = s->n_held;
  return s->n_scopes;
}

cg_status cg_scope_end(cg_scope scope)
{
  cg_thread_state *s = cg__tls();
  if (scope <= 0 || scope != s->n_scopes)
    return cg_set_error(CG_ESTATE, "cg_scope_end: scope %d is not the innermost open scope (%d open)",
                        scope, s->n_scopes);
  size_t mark = s->scope_marks[--s->n_scopes];
  while (s->n_held > mark) cg_release(s->held[--s->n_held]);
  if (s->n_scopes == 0) { /* free the stacks so a thread that stops using cgrad leaks nothing */
    free(s->held);
    free(s->scope_marks);
    s->held = NULL;
    s->scope_marks = NULL;
    s->cap_held = 0;
    s->cap_scopes = 0;
  }
  return CG_OK;
}

cg_tensor *cg_keep(cg_tensor *t)
{
  cg_thread_state *s = cg__tls();
  if (!t || s->n_scopes == 0) return t;
  /* Take one more reference for the enclosing scope (or the caller); the innermost scope
     still drops its own at its end. */
  cg_retain(t);
  if (s->n_scopes >= 2) {
    if (s->n_held == s->cap_held && !keep_spare(s)) {
      cg_release(t);
      cg_set_error(CG_ENOMEM, "cg_keep: out of memory");
      return NULL;
    }
    /* place it below the innermost scope's mark: swap with the first entry above the mark */
    size_t mark = s->scope_marks[s->n_scopes - 1];
    s->held[s->n_held++] = s->held[mark];
    s->held[mark] = t;
    s->scope_marks[s->n_scopes - 1] = mark + 1;
    keep_spare(s);
  }
  return t;
}

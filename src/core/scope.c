/* scope.c - ownership scopes: every new tensor is held by the innermost open scope, which
 * drops its references when it ends. One flat stack of held references per thread, with a
 * mark where each scope begins. */
#include "internal.h"
#include <stdlib.h>

static bool push_held(cg_thread_state *s, cg_tensor *t)
{
  if (s->n_held == s->cap_held) {
    size_t cap = s->cap_held ? 2 * s->cap_held : 256;
    cg_tensor **held = cg__realloc(s->held, cap * sizeof *held);
    if (!held) return false;
    s->held = held;
    s->cap_held = cap;
  }
  s->held[s->n_held++] = t;
  return true;
}

void cg__scope_adopt(cg_tensor *t)
{
  cg_thread_state *s = cg__tls();
  /* If the scope cannot grow, the reference stays with the caller rather than being lost. */
  if (t && s->n_scopes > 0) push_held(s, t);
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
    /* place it below the innermost scope's mark: insert at the mark and shift the mark */
    size_t mark = s->scope_marks[s->n_scopes - 1];
    if (!push_held(s, t)) { cg_release(t); return NULL; }
    s->held[s->n_held - 1] = s->held[mark];
    s->held[mark] = t;
    s->scope_marks[s->n_scopes - 1] = mark + 1;
  }
  return t;
}

/* guard.h - keeping a user callback (a custom forward, a traced function, a function under
 * gradient check; gradient functions too, once the backward walk uses it) from leaving this
 * thread's state changed: what it left is undone and reported as CG_EUSER naming it. */
#ifndef CG_AUTODIFF_GUARD_H
#define CG_AUTODIFF_GUARD_H

#include "../graph/graph.h"

typedef struct {
  int n_scopes, n_tapes, paused, n_overrides;
  struct cg_graph *graph;
  int graph_depth; /* how many times graph was entered */
} cg_callback_guard;

/* The state just before the callback runs (inline: the reverse walk takes it per node). */
static inline cg_callback_guard cg__guard_begin(void)
{
  const cg_thread_state *s = cg__tls();
  return (cg_callback_guard){s->n_scopes, s->n_tapes, s->paused, s->n_overrides, s->graph,
                             s->graph ? s->graph->entered : 0};
}
/* True when the state is still g's: cg__guard_end would have nothing to undo. */
static inline bool cg__guard_unchanged(const cg_callback_guard *g)
{
  const cg_thread_state *s = cg__tls();
  return s->n_scopes == g->n_scopes && s->n_tapes == g->n_tapes && s->paused == g->paused &&
         s->n_overrides == g->n_overrides && s->graph == g->graph &&
         (!g->graph || g->graph->entered == g->graph_depth);
}
/* After the callback (which returned st): ends the scopes and tapes it left open, restores
 * the recording pause, pops the overrides it pushed, exits the graphs it entered. Returns st
 * when nothing was left, or when st already failed (its own message is the better one); else
 * CG_EUSER "<who> left a scope open". Tensors the callback made in a scope it left open go
 * with that scope, so on an error the caller must not use the callback's outputs. */
cg_status cg__guard_end(const cg_callback_guard *g, const char *who, cg_status st);

#endif

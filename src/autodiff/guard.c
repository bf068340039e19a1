/* guard.c - undoing what a user callback left changed in this thread's state (scopes, tapes,
 * recording pause, gradient overrides, entered graphs), so that one faulty callback cannot
 * break the scope discipline, recording or graph building of the program after it. */
#include "guard.h"
#include "tape.h"
#include "../graph/graph.h"

static bool graph_in_chain(const cg_graph *from, const cg_graph *target)
{
  for (; from; from = from->outer)
    if (from == target) return true;
  return target == NULL;
}

/* Back to the graph (and enter depth) of before; the problem found, or NULL. */
static const char *restore_graph(const cg_callback_guard *g)
{
  cg_thread_state *s = cg__tls();
  const char *problem = NULL;
  if (graph_in_chain(s->graph, g->graph)) {
    while (s->graph != g->graph || (g->graph && g->graph->entered > g->graph_depth)) {
      problem = "left a graph entered";
      if (cg_graph_exit(s->graph) != CG_OK) break;
    }
  }
  while (g->graph && (s->graph != g->graph || g->graph->entered < g->graph_depth)) {
    problem = "exited a graph it did not enter";
    if (cg_graph_enter(g->graph) != CG_OK) break;
  }
  return problem;
}

cg_status cg__guard_end(const cg_callback_guard *g, const char *who, cg_status st)
{
  cg_thread_state *s = cg__tls();
  const char *problem = restore_graph(g);
  if (s->n_overrides > g->n_overrides) problem = "left a gradient override pushed";
  while (s->n_overrides > g->n_overrides) cg_gradient_override_pop();
  if (s->n_overrides < g->n_overrides) problem = "popped a gradient override it did not push";
  if (s->paused != g->paused) {
    problem = s->paused > g->paused ? "left recording paused" : "resumed recording it did not pause";
    s->paused = g->paused;
  }
  if (s->n_tapes > g->n_tapes) problem = "left a tape recording";
  while (s->n_tapes > g->n_tapes) /* ended, not freed: the tape is still the callback's */
    if (cg_tape_end(s->tapes[s->n_tapes - 1]) != CG_OK) break;
  if (s->n_scopes > g->n_scopes) problem = "left a scope open";
  while (s->n_scopes > g->n_scopes)
    if (cg_scope_end(s->n_scopes) != CG_OK) break;
  if (s->n_scopes < g->n_scopes) problem = "ended a scope it did not begin";
  if (!problem || st != CG_OK) return st;
  return cg_set_error(CG_EUSER, "%s %s", who, problem);
}

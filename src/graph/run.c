/* run.c - Session.run: check the fetches and feeds, find the compiled plan for them (or
 * build and cache one, see plan.c), and execute it with the graph exited and recording
 * paused, so a run is one computation to any open tape. */
#include "plan.h"
#include <stdio.h>
#include <stdlib.h>

#define MAX_PLANS 16 /* cached per graph; the least recently used goes */

static cg_status check_fetches(const cg_graph *g, cg_tensor *const *fetches, int n, cg_tensor **out)
{
  if (!g) return cg_set_error(CG_EINVAL, "cg_graph_run: graph is NULL");
  if (n < 1 || !fetches || !out)
    return cg_set_error(CG_EINVAL, "cg_graph_run: need at least one fetch and an output array");
  for (int i = 0; i < n; i++) {
    out[i] = NULL;
    if (!fetches[i]) return cg_set_error(CG_EINVAL, "cg_graph_run: fetch %d is NULL", i);
    if (fetches[i]->graph && fetches[i]->graph != g)
      return cg_set_error(CG_EINVAL, "cg_graph_run: fetch %d belongs to another graph", i);
  }
  return CG_OK;
}

const char *cg__feed_name(const cg_tensor *p, char *buf, size_t n)
{
  if (!p->producer) snprintf(buf, n, "placeholder '%s'", p->name);
  else snprintf(buf, n, "output %d of %s", p->out_index, p->producer->type);
  return buf;
}

/* A feed's key is a placeholder, or any other tensor of the graph (as in TF: its value is
   given, and the nodes only it needed do not run). A tensor fed twice is found when a plan
   is built (the feeds of a cached plan differ). */
static cg_status check_feed(const cg_graph *g, const cg_feed *f, int i)
{
  char want[160], got[160], name_buf[160];
  const cg_tensor *p = f->placeholder, *v = f->value;
  if (!p || !v) return cg_set_error(CG_EINVAL, "cg_graph_run: feed %d has a NULL placeholder or value", i);
  if (p->graph != g)
    return cg_set_error(CG_EINVAL, "cg_graph_run: feed %d is not a tensor of this graph", i);
  bool fits = v->ndim == p->ndim;
  for (int d = 0; fits && d < p->ndim; d++) fits = p->shape[d] < 0 || p->shape[d] == v->shape[d];
  if (!v->graph && v->dtype == p->dtype && fits) return CG_OK;
  /* (names and shapes are formatted only for the message) */
  const char *name = cg__feed_name(p, name_buf, sizeof name_buf);
  if (v->graph) return cg_set_error(CG_EINVAL, "cg_graph_run: the value fed to %s is symbolic", name);
  cg__fmt_shape(p->ndim, p->shape, want, sizeof want);
  cg_shape_str(v, got, sizeof got);
  if (v->dtype != p->dtype)
    return cg_set_error(CG_EDTYPE, "cg_graph_run: %s is %s %s but was fed %s %s", name,
                        cg_dtype_name(p->dtype), want, cg_dtype_name(v->dtype), got);
  return cg_set_error(CG_ESHAPE, "cg_graph_run: %s has shape %s but was fed %s", name, want, got);
}

/* The cached plan for this run, moved to the front, or a new one. */
static cg_plan *find_plan(cg_graph *g, const cg_feed *feeds, int n_feeds, cg_tensor *const *fetches, int n)
{
  cg_plan *prev = NULL, *p = g->plans;
  int count = 0;
  for (; p; prev = p, p = cg__plan_next(p), count++)
    if (cg__plan_matches(p, feeds, n_feeds, fetches, n)) break;
  if (p && prev) { /* most recently used first */
    cg__plan_set_next(prev, cg__plan_next(p));
    cg__plan_set_next(p, g->plans);
    g->plans = p;
  }
  if (p) return p;
  if (!(p = cg__plan_build(g, feeds, n_feeds, fetches, n))) return NULL;
  cg__plan_set_next(p, g->plans);
  g->plans = p;
  if (count >= MAX_PLANS) { /* drop the oldest */
    cg_plan *q = g->plans;
    for (int i = 0; i < MAX_PLANS - 1; i++) q = cg__plan_next(q);
    cg__plan_free(cg__plan_next(q));
    cg__plan_set_next(q, NULL);
  }
  return p;
}

cg_status cg_graph_run(cg_graph *g, const cg_feed *feeds, int n_feeds, cg_tensor *const *fetches,
                       int n_fetches, cg_tensor **out)
{
  cg_status st = check_fetches(g, fetches, n_fetches, out);
  if (st != CG_OK) return st;
  if (n_feeds < 0 || (n_feeds > 0 && !feeds)) return cg_set_error(CG_EINVAL, "cg_graph_run: bad feed list");
  for (int i = 0; i < n_feeds; i++)
    if ((st = check_feed(g, &feeds[i], i)) != CG_OK) return st;

  cg_thread_state *ts = cg__tls();
  cg_graph *entered = ts->graph;
  ts->graph = NULL;     /* nodes run eagerly now, */
  cg_pause_recording(); /* and tapes see the run as a whole, not its parts */
  cg_plan *p = find_plan(g, feeds, n_feeds, fetches, n_fetches);
  st = p ? cg__plan_execute(p, feeds, n_feeds, out) : cg_last_status();
  cg_resume_recording();
  ts->graph = entered;
  if (st != CG_OK) return st;
  g->stats = *cg__plan_stats(p);
  for (int i = 0; i < n_fetches; i++) cg__scope_adopt(out[i]);
  return CG_OK;
}

cg_status cg_graph_get_stats(const cg_graph *g, cg_graph_stats *out)
{
  if (!g || !out) return cg_set_error(CG_EINVAL, "cg_graph_get_stats: graph and output are required");
  *out = g->stats;
  return CG_OK;
}

/* plan.h - a compiled plan for running part of a graph: the steps the fetches need (after
 * CSE and constant folding), each with its inputs and outputs bound to fixed tensors, and
 * intermediate buffers assigned by liveness so that a buffer is reused once its last reader
 * has run. Built once per (fetches, feeds, feed shapes) and cached on the graph. */
#ifndef CG_GRAPH_PLAN_H
#define CG_GRAPH_PLAN_H

#include "graph.h"

typedef struct cg_plan cg_plan;

cg_plan *cg__plan_build(cg_graph *g, const cg_feed *feeds, int n_feeds, cg_tensor *const *fetches,
                        int n_fetches);
bool cg__plan_matches(const cg_plan *p, const cg_feed *feeds, int n_feeds, cg_tensor *const *fetches,
                      int n_fetches);
/* Runs the plan on the feeds' data; out[i] gets a new tensor per fetch. */
cg_status cg__plan_execute(cg_plan *p, const cg_feed *feeds, int n_feeds, cg_tensor **out);
const cg_graph_stats *cg__plan_stats(const cg_plan *p);
cg_plan *cg__plan_next(cg_plan *p);
void cg__plan_set_next(cg_plan *p, cg_plan *next);
void cg__plan_free(cg_plan *p);
/* What a message calls a fed tensor: "placeholder 'x'", or "output 0 of Tanh" (in buf). */
const char *cg__feed_name(const cg_tensor *p, char *buf, size_t n);

#endif

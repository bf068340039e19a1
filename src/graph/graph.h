/* graph.h - the graph object as the dispatcher, gradient builder, runner and tracer see
 * it: nodes in creation order (a topological order), placeholders, options, folded
 * constants and the last run's statistics. */
#ifndef CG_GRAPH_GRAPH_H
#define CG_GRAPH_GRAPH_H

#include "../autodiff/node.h"

typedef struct cg_idmap {
  uint64_t *keys; /* 0 = empty */
  void **values;
  size_t n, cap;
} cg_idmap;
void *cg__idmap_get(const cg_idmap *m, uint64_t id);
cg_status cg__idmap_put(cg_idmap *m, uint64_t id, void *value);
void cg__idmap_free(cg_idmap *m);

struct cg_graph {
  cg_node **nodes;
  size_t n_nodes, cap_nodes;
  cg_tensor **placeholders; /* retained */
  size_t n_placeholders, cap_placeholders;
  unsigned options;
  int entered;              /* enter depth on the thread that entered it */
  struct cg_graph *outer;   /* the graph entered before this one on that thread */
  cg_idmap folded;          /* output id -> concrete tensor (retained), CG_GRAPH_FOLD_CONSTANTS */
  cg_graph_stats stats;
  struct cg_plan *plans;    /* compiled plans, most recently used first */
};

/* Adds a heap copy of proto (inputs retained) with outputs made symbolic from meta, gradient
 * resolved through the overrides in force; writes the outputs (scope-adopted). */
cg_status cg__graph_add_node(cg_graph *g, const cg_node *proto, const cg_output_meta *meta,
                             cg_tensor **out);
/* The shape rule on symbolic inputs: unknown (-1) dims are given two different trial sizes;
 * output dims that differ between the trials are unknown. */
cg_status cg__infer_symbolic(cg_node *node);

#endif

/* names.c - names of graph tensors: placeholders have theirs from cg_placeholder, any other
 * symbolic tensor may be given one (cg_tensor_set_name), and a graph is asked for a tensor
 * by name (cg_graph_tensor). Graph files keep the names (serialize.c). */
#include "graph.h"
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 255

/* The tensor of g called name: placeholders first, then node outputs in creation order. */
static cg_tensor *find(const cg_graph *g, const char *name)
{
  for (size_t i = 0; i < g->n_placeholders; i++)
    if (g->placeholders[i]->name && strcmp(g->placeholders[i]->name, name) == 0) return g->placeholders[i];
  for (size_t k = 0; k < g->n_nodes; k++)
    for (int o = 0; o < g->nodes[k]->n_out; o++) {
      cg_tensor *t = g->nodes[k]->out[o];
      if (t->name && strcmp(t->name, name) == 0) return t;
    }
  return NULL;
}

cg_status cg_tensor_set_name(cg_tensor *t, const char *name)
{
  if (!t) return cg__null_input("cg_tensor_set_name", 0);
  if (!name || !name[0] || strlen(name) > MAX_NAME)
    return cg_set_error(CG_EINVAL, "cg_tensor_set_name: a name has 1 to %d bytes", MAX_NAME);
  if (!t->graph)
    return cg_set_error(CG_EINVAL, "cg_tensor_set_name: '%s': only graph (symbolic) tensors are "
                                   "named; this one holds values", name);
  cg_tensor *other = find(t->graph, name);
  if (other && other != t)
    return cg_set_error(CG_EEXIST, "cg_tensor_set_name: another tensor of the graph is already "
                                   "called '%s'", name);
  char *copy = strdup(name);
  if (!copy) return cg_set_error(CG_ENOMEM, "cg_tensor_set_name: out of memory");
  free(t->name);
  t->name = copy;
  return CG_OK;
}

cg_tensor *cg_graph_tensor(const cg_graph *g, const char *name)
{
  if (!g || !name) {
    cg_set_error(CG_EINVAL, "cg_graph_tensor: graph and name are required");
    return NULL;
  }
  cg_tensor *t = find(g, name);
  if (!t) cg_set_error(CG_ENOTFOUND, "cg_graph_tensor: the graph has no tensor called '%s'", name);
  return t;
}

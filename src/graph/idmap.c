/* idmap.c - a map from tensor ids to pointers (open addressing), for the graph runner's
 * values and folded constants. */
#include "graph.h"
#include <stdlib.h>

static size_t slot_of(uint64_t id, size_t cap) { return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1); }

void *cg__idmap_get(const cg_idmap *m, uint64_t id)
{
  if (!m->cap) return NULL;
  for (size_t i = slot_of(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == id) return m->values[i];
    if (!m->keys[i]) return NULL;
  }
}

cg_status cg__idmap_put(cg_idmap *m, uint64_t id, void *value)
{
  if (2 * (m->n + 1) > m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    uint64_t *keys = cg__calloc(cap, sizeof *keys);
    void **values = cg__calloc(cap, sizeof *values);
    if (!keys || !values) {
      free(keys);
      free(values);
      return CG_ENOMEM;
    }
    for (size_t k = 0; k < m->cap; k++)
      if (m->keys[k]) {
        size_t i = slot_of(m->keys[k], cap);
        while (keys[i]) i = (i + 1) & (cap - 1);
        keys[i] = m->keys[k];
        values[i] = m->values[k];
      }
    free(m->keys);
    free(m->values);
    m->keys = keys;
    m->values = values;
    m->cap = cap;
  }
  size_t i = slot_of(id, m->cap);
  while (m->keys[i] && m->keys[i] != id) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) m->n++;
  m->keys[i] = id;
  m->values[i] = value;
  return CG_OK;
}

void cg__idmap_free(cg_idmap *m)
{
  free(m->keys);
  free(m->values);
  *m = (cg_idmap){0};
}

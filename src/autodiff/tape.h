/* tape.h - the eager tape's record: the nodes it kept, in execution order, and the ids of
 * the tensors it follows. Shared by tape.c (recording) and backward.c (the reverse walk). */
#ifndef CG_AUTODIFF_TAPE_H
#define CG_AUTODIFF_TAPE_H

#include "node.h"

typedef struct {
  uint64_t *keys; /* 0 = empty */
  size_t n, cap;
} cg_idset;

bool cg__idset_has(const cg_idset *s, uint64_t id);
cg_status cg__idset_add(cg_idset *s, uint64_t id);
void cg__idset_free(cg_idset *s);

struct cg_tape {
  unsigned flags;
  bool recording; /* between begin and end                               */
  bool busy;      /* computing its own gradient: it does not record that */
  bool used;      /* a non-persistent tape gives gradients once          */
  cg_node **nodes;
  size_t n_nodes, cap_nodes;
  cg_idset tracked; /* watched tensors and everything recorded from them */
};

#endif

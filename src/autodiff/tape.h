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

typedef struct {
  uint64_t id; /* the tensor whose gradient it sees */
  cg_grad_hook fn;
  void *user;
} cg_hook;
typedef struct {
  cg_hook *items;
  int n, cap;
} cg_hook_list;
/* The gradient of t after its hooks (tensor hooks, then tape_hooks); NULL on error. */
cg_tensor *cg__run_hooks(const cg_tensor *t, cg_tensor *g, const cg_hook_list *tape_hooks);

/* An op a tape saw but did not record as differentiable: why the path ends there. */
typedef enum { CG_CUT_NOT_DIFFERENTIABLE, CG_CUT_PAUSED, CG_CUT_INTEGER } cg_cut_reason;
typedef struct {
  const char *type;
  cg_cut_reason reason;
  uint64_t in[8];
  int n_in;
  uint64_t out[4];
  int n_out;
} cg_cut;

struct cg_tape {
  unsigned flags;
  bool recording; /* between begin and end                               */
  bool busy;      /* computing its own gradient: it does not record that */
  bool used;      /* a non-persistent tape gives gradients once          */
  cg_node **nodes;
  size_t n_nodes, cap_nodes;
  cg_idset tracked; /* watched tensors and everything recorded from them */
  cg_hook_list hooks;
  cg_cut *cuts; /* for cg_tape_explain */
  size_t n_cuts, cap_cuts;
  cg_idset seen; /* integer results and cut ops' outputs derived from what it follows */
};

/* Notes an op that ran with an input a tape follows but was not recorded (see cg_cut). */
cg_status cg__record_cut(const cg_node *n, cg_cut_reason reason);

#endif

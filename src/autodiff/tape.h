/* tape.h - the eager tape's record: the nodes it kept, in execution order, and the ids of
 * the tensors it follows. Shared by tape.c (recording) and backward.c (the reverse walk). */
#ifndef CG_AUTODIFF_TAPE_H
#define CG_AUTODIFF_TAPE_H

#include "node.h"

typedef struct {
  uint64_t *keys; /* 0 = empty */
  size_t n, cap;
} cg_idset;

static inline size_t cg__idset_slot(uint64_t id, size_t cap)
{
  return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}
static inline bool cg__idset_has(const cg_idset *s, uint64_t id)
{
  if (!s->cap) return false;
  for (size_t i = cg__idset_slot(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
    if (s->keys[i] == id) return true;
    if (s->keys[i] == 0) return false;
  }
}
cg_status cg__idset_grow(cg_idset *s, size_t cap); /* rehashed into cap slots, a power of two */
static inline cg_status cg__idset_add(cg_idset *s, uint64_t id)
{
  if (2 * (s->n + 1) > s->cap && cg__idset_grow(s, s->cap ? 2 * s->cap : 64) != CG_OK) return CG_ENOMEM;
  size_t i = cg__idset_slot(id, s->cap);
  for (; s->keys[i]; i = (i + 1) & (s->cap - 1))
    if (s->keys[i] == id) return CG_OK;
  s->keys[i] = id;
  s->n++;
  return CG_OK;
}
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
  cg_node **nodes;  /* its records (in chunks), in execution order; they borrow their   */
  size_t n_nodes, cap_nodes; /* inputs and outputs from held                            */
  struct cg_tape_chunk *chunks;
  cg_tensor **held; /* its references: what it follows, its nodes' outputs and inputs  */
  size_t n_held, cap_held;
  cg_idset tracked; /* watched tensors and everything recorded from them (all held) */
  cg_hook_list hooks;
  cg_cut *cuts; /* for cg_tape_explain */
  size_t n_cuts, cap_cuts;
  cg_idset seen; /* integer results and cut ops' outputs derived from what it follows */
};

/* Notes an op that ran with an input a tape follows but was not recorded (see cg_cut). */
cg_status cg__record_cut(const cg_node *n, cg_cut_reason reason);

#endif

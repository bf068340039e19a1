/* node.h - the record of one op application, shared by the dispatcher (which fills it),
 * the tape (which keeps it) and the backward walk (which differentiates it). */
#ifndef CG_AUTODIFF_NODE_H
#define CG_AUTODIFF_NODE_H

#include "../core/internal.h"
#include <stddef.h>
#include <string.h>

typedef struct cg_grad_entry {
  char *name;
  cg_grad_fn fn; /* NULL until registered */
  void *user;
  unsigned flags;          /* CG_GRADIENT_ONCE_DIFFERENTIABLE                    */
  uint64_t calls;          /* runs for ops of its own type (rule accounting)    */
  uint64_t override_calls; /* runs for ops of another type, through an override */
  int checked;             /* check-on-register done                            */
  unsigned seq;            /* odd while fn and user are being replaced (registry.c) */
} cg_grad_entry;

typedef struct cg_custom_record cg_custom_record; /* custom.c */

typedef struct {
  cg_dtype dtype;
  int ndim;
  int64_t shape[CG_MAX_DIMS];
  int64_t size; /* elements (shape checked when declared) */
  int alias_of; /* input index whose buffer this output views, or -1 */
  bool set;
} cg_output_meta;

struct cg_node {
  int refcount;     /* nodes of graphs (cg__node_copy): one per holder */
  const cg_op_def *def;
  const char *type; /* op type name (a custom gradient's def->name) */
  int n_in, n_out;
  cg_tensor **in;                    /* n_in inputs                         */
  cg_output_meta *meta;              /* only while inferring                 */
  cg_tensor *out[CG_MAX_OUTPUTS];    /* n_out of them; none while inferring  */
  unsigned declared;                 /* bit i: the shape rule declared output i */
  unsigned non_differentiable;       /* bit i: output i carries no gradient (custom ops) */
  const cg_attrs *attrs;             /* NULL if none                         */
  cg_grad_entry *grad;               /* resolved through overrides on record */
  const char *grad_name;             /* which gradient (for messages)        */
  cg_custom_record *custom;          /* non-NULL for a custom gradient       */
  const char *made_by;               /* graph nodes built by a gradient function: its name */
  size_t graph_index;                /* position in its graph                */
};

/* The library's own files get the cg_node accessors that kernels and gradients call per op
 * inline (the same results; the exported functions stay for users). */
static inline void *cg__node_op_user(const cg_node *n) { return n && n->def ? n->def->user : NULL; }
static inline cg_tensor *cg__node_output(const cg_node *n, int i)
{
  return n && i >= 0 && i < n->n_out ? n->out[i] : NULL;
}
/* (the node whose gradient runs now says which inputs need one: rules.h) */
static inline int cg__node_needs_input_grad(const cg_node *op, int i)
{
  if (!op || i < 0 || i >= op->n_in) return 0;
  const cg_thread_state *s = cg__tls();
  return op == s->grad_node && s->grad_needs ? s->grad_needs[i] : 1;
}
#define cg_node_op_user(n) cg__node_op_user(n)
#define cg_node_output(n, i) cg__node_output(n, i)
#define cg_node_needs_input_grad(op, i) cg__node_needs_input_grad(op, i)

/* The cg_node accessors without their argument checks, for kernels and shape rules that
 * know n and i are valid (the exported cg_node_input etc. check both). */
static inline cg_tensor *cg__in(const cg_node *n, int i) { return n->in[i]; }
static inline cg_tensor *cg__out(const cg_node *n, int i) { return n->out[i]; }

/* A shape rule's fast path: output i has dtype d and like's shape. Only for a like whose
 * shape is a tensor's own (already checked), from inside a shape rule; the same effect as
 * cg_node_set_output(n, i, d, like->ndim, like->shape). */
static inline void cg__declare_output_like(cg_node *n, int i, cg_dtype d, const cg_tensor *like)
{
  cg_output_meta *m = &n->meta[i];
  m->dtype = d;
  m->ndim = like->ndim;
  for (int k = 0; k < like->ndim; k++) m->shape[k] = like->shape[k];
  m->size = like->size;
  m->alias_of = -1;
  m->set = true;
  n->declared |= 1u << i;
}

/* Runs def on inputs (the one path every op takes): checks, infers, allocates, runs,
 * records on the tapes that watch an input. Writes n_out outputs into out. */
cg_status cg_execute(const cg_op_def *def, cg_tensor *const *in, int n_in,
                     const cg_attrs *attrs, cg_tensor **out, int *n_out);
/* The same, but the outputs are the caller's references (no scope adopts them). */
cg_status cg__execute_owned(const cg_op_def *def, cg_tensor *const *in, int n_in,
                            const cg_attrs *attrs, cg_tensor **out, int *n_out);
/* Shorthand for single-output ops: returns output 0 or NULL. */
cg_tensor *cg_apply(const cg_op_def *def, cg_tensor *const *in, int n_in, const cg_attrs *attrs);
cg_tensor *cg_apply1(const cg_op_def *def, cg_tensor *x, const cg_attrs *attrs);
cg_tensor *cg_apply2(const cg_op_def *def, cg_tensor *a, cg_tensor *b, const cg_attrs *attrs);

/* Registry internals. */
void cg__ensure_builtins(void);
/* Registers a built-in op and (if grad) its gradient under the same name. */
cg_status cg__register_builtin(const cg_op_def *def, cg_grad_fn grad);
cg_grad_entry *cg__gradient_entry(const char *name); /* interned, created if missing */
/* The entry's function and user pointer, read together (a registration may replace them). */
static inline void cg__gradient_snapshot(cg_grad_entry *e, cg_grad_fn *fn, void **user)
{
  for (;;) { /* (inline: the reverse walk reads it per node) */
    unsigned seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
    *fn = __atomic_load_n(&e->fn, __ATOMIC_RELAXED);
    *user = __atomic_load_n(&e->user, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (!(seq & 1) && __atomic_load_n(&e->seq, __ATOMIC_RELAXED) == seq) return;
  }
}
/* Calls fn on every gradient entry (under the registry's read lock). */
void cg__for_each_gradient(void (*fn)(cg_grad_entry *e, void *ctx), void *ctx);
/* The gradient that applies to an op of type op_type recorded now (overrides first). */
cg_grad_entry *cg__resolve_gradient(const char *op_type);

/* Tape hooks used by the dispatcher and custom gradients. */
bool cg__any_tape_recording(void);
/* Whether an op run now would be recorded: some tape is recording and not walking itself;
   _inputs: and follows one of the n tensors in. */
bool cg__tape_would_record(void);
bool cg__tape_would_record_inputs(cg_tensor *const *in, int n);
/* Records node (copied) on every recording tape that tracks one of its inputs. */
cg_status cg__record(const cg_node *node);
/* The same for the dispatcher, whose node's outputs are new: no other thread can see them. */
cg_status cg__record_new(const cg_node *node);
/* A heap copy of a node (inputs, outputs retained; attrs copied), refcount 1. */
cg_node *cg__node_copy(const cg_node *n);
/* Bytes a copy of n takes (its inputs and attributes after it), and a copy of n made in mem
 * without references to its tensors or custom record: what cg__node_copy and a tape's records
 * (which hold their tensors themselves) start from. Inline: a tape records one per op. Outputs
 * past n_out are neither copied nor read. */
static inline size_t cg__node_bytes(const cg_node *n)
{
  return sizeof *n + (size_t)n->n_in * sizeof(cg_tensor *) + (n->attrs ? sizeof(cg_attrs) : 0);
}
static inline cg_node *cg__node_copy_at(void *mem, const cg_node *n)
{
  cg_node *c = mem;
  memcpy(c, n, offsetof(cg_node, out));
  for (int i = 0; i < n->n_out; i++) c->out[i] = n->out[i];
  memcpy(&c->declared, &n->declared, sizeof *n - offsetof(cg_node, declared));
  c->refcount = 1;
  c->meta = NULL;
  c->in = (cg_tensor **)(c + 1);
  for (int i = 0; i < n->n_in; i++) c->in[i] = n->in[i];
  if (n->attrs) {
    cg_attrs *a = (cg_attrs *)(c->in + n->n_in);
    memcpy(a, n->attrs, sizeof *a);
    c->attrs = a;
  }
  return c;
}
void cg__node_release(cg_node *n);
/* A trainable variable's value was read: auto-watch and collect for custom gradients. */
cg_status cg__on_var_read(cg_var *v, cg_tensor *value);

/* Numeric check mode: CG_ECHECK naming the op if an output holds NaN/Inf. position says
 * where the op stands ("(op #12 on the innermost tape)", "(graph step 7 of 40)"). */
cg_status cg__check_numerics(const cg_node *n, const char *position);
void cg__eager_position(char *buf, size_t n);

/* Gradient accumulation as the reverse walk does it when nothing records it (src/ops/index.c,
 * next to AddN, with AddN's arithmetic: a sum built part by part in arrival order has the
 * bits AddN of the same parts has). Both take tensors of one dtype and shape.
 * cg__add_n_pair: a new tensor a + b, caller-owned, in no scope; NULL on error.
 * cg__add_n_into: acc += x in place; acc must be the caller's alone (cg__tensor_exclusive). */
cg_tensor *cg__add_n_pair(const cg_tensor *a, const cg_tensor *b);
void cg__add_n_into(cg_tensor *acc, const cg_tensor *x);

/* Reduce a gradient of a broadcast shape back to like's shape by summing. */
cg_tensor *cg__sum_to_shape(cg_tensor *g, cg_tensor *like);
/* The op SumLike (src/ops/shape_like.c): the same reduction decided when the op runs, for
 * graphs whose dims are unknown (-1) until then. */
cg_tensor *cg__sum_like(cg_tensor *x, cg_tensor *like);
/* x broadcast to / viewed as like's shape, for gradients: BroadcastTo / Reshape when that
 * shape is known (always, eagerly), so that a graph's plan need not compute like, of which
 * only the shape is read; BroadcastLike / ReshapeLike when a dim is known only at run time
 * (src/ops/shape_like.c). */
cg_tensor *cg__broadcast_as(cg_tensor *x, cg_tensor *like);
cg_tensor *cg__reshape_as(cg_tensor *x, cg_tensor *like);
/* t's shape is the one it will have when run: no dim is -1 and none was inferred from trial
   sizes (always, eagerly). */
static inline bool cg__shape_known(const cg_tensor *t)
{
  if (!t || t->shape_guessed) return false;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] < 0) return false;
  return true;
}

#endif

/* internal.h - what the library's own files share about tensors, buffers, errors and
 * per-thread state. Not installed; users see only include/cgrad.h. */
#ifndef CG_CORE_INTERNAL_H
#define CG_CORE_INTERNAL_H

#include "cgrad.h"
#include <stdbool.h>

/* A block of memory shared by tensors that view it (Reshape, Identity alias it). */
typedef struct cg_buffer {
  int refcount;
  int device; /* 0: host. Kernels look at it; nothing else assumes host memory. */
  size_t nbytes;
  void *data;
  /* A tensor's headers live in one block: [owner tensor | this buffer | data], data apart
     when large. The block goes when the buffer's last reference does (the owner's header
     included). NULL: separate pieces. */
  void *block;
  size_t block_bytes;
  bool data_apart; /* block holds the headers only; data is an allocation of its own */
} cg_buffer;

/* What kernels, the dispatcher and the reverse walk read for every op comes first, in the
   first cache line (64 bytes); the shape follows, then what only graphs and hooks use. */
struct cg_tensor {
  int refcount;
  cg_dtype dtype;
  int ndim;
  /* Where the last gradient walk that met it keeps its entry (backward.c): a hint, which the
     walk checks against the id, so any value is safe; read and written relaxed-atomically. */
  uint32_t walk_slot;
  int64_t size;
  void *data;    /* into buf                                                  */
  cg_buffer *buf;
  uint64_t id;   /* unique per tensor on this process; tapes track these      */
  /* Symbolic tensors (graph mode) have no buffer: graph is set, data NULL, unknown dims -1. */
  struct cg_graph *graph;
  int64_t shape[CG_MAX_DIMS];
  struct cg_node *producer; /* borrowed from the graph; NULL for placeholders */
  int out_index;
  bool has_hook;            /* gradient hooks are registered for it (hooks.c); beside name,
                               which cg_release reads too */
  bool shape_guessed;       /* graph mode: inferred from trial sizes of an unknown dim (or from
                               such a tensor), so a dim that looks known may differ when run */
  char *name;               /* placeholders: the name errors use             */
};

/* --- hot accessors ---------------------------------------------------------------------- */
/* The library's own files get these public functions inline (the same results; the exported
 * functions stay for users): the dispatcher and every kernel call them per op. */
static inline size_t cg__dtype_size(cg_dtype d)
{
  static const size_t sizes[] = {4, 8, 4, 8, 1};
  return (unsigned)d < CG_NUM_DTYPES ? sizes[d] : 0;
}
static inline int cg__dtype_is_float(cg_dtype d) { return d == CG_F32 || d == CG_F64; }
static inline cg_dtype cg__tensor_dtype(const cg_tensor *t) { return t ? t->dtype : CG_NUM_DTYPES; }
#define cg_dtype_size(d) cg__dtype_size(d)
#define cg_dtype_is_float(d) cg__dtype_is_float(d)
#define cg_tensor_dtype(t) cg__tensor_dtype(t)

/* --- allocation ---------------------------------------------------------------------- */
void *cg__alloc(size_t nbytes); /* 64-byte aligned, cached; sets CG_ENOMEM on failure */
void cg__free(void *p, size_t nbytes);
void *cg__malloc(size_t nbytes); /* plain small allocations; sets CG_ENOMEM           */
void *cg__calloc(size_t n, size_t size);
void *cg__realloc(void *p, size_t nbytes);
/* Tests: make allocation number n (counted from now, on this thread) fail; n < 0: never. */
void cg__alloc_fail_at(long n);
long cg__alloc_calls(void); /* allocations on this thread since cg__alloc_fail_at */
/* Tensors alive in the process (for leak checks in tests), and bytes of tensor data alive
 * now and at most since the last reset (for memory measurements). */
long cg__live_tensors(void);
int64_t cg__live_bytes(void);
int64_t cg__peak_bytes(void);
void cg__reset_peak_bytes(void);

/* --- tensors --------------------------------------------------------------------------- */
/* Product of dims with overflow and sign checks; CG_EINVAL/CG_ENOMEM naming op. */
cg_status cg__shape_size(const char *op, int ndim, const int64_t *shape, int64_t *size);
/* A new uninitialised tensor owned by the caller (not yet in any scope: see cg__scope_adopt). */
cg_tensor *cg__tensor_new(cg_dtype d, int ndim, const int64_t *shape);
/* The same for a shape already checked, of size elements (the dispatcher's outputs). */
cg_tensor *cg__tensor_new_sized(cg_dtype d, int ndim, const int64_t *shape, int64_t size);
/* A new tensor viewing src's buffer with another shape of the same size (caller-owned). */
cg_tensor *cg__tensor_view(cg_tensor *src, int ndim, const int64_t *shape);
/* A new symbolic tensor of graph g (no buffer), caller-owned. Dims may be -1 (unknown). */
cg_tensor *cg__tensor_symbolic(struct cg_graph *g, cg_dtype d, int ndim, const int64_t *shape);
static inline bool cg__is_symbolic(const cg_tensor *t) { return t->graph != NULL; }
/* Hand one reference the library holds to the innermost scope (or to the caller). */
void cg__scope_adopt_slow(cg_tensor *t);
static inline void cg__scope_adopt(cg_tensor *t);
/* Takes back one reference the innermost open scope holds on t, if it holds one: true when
 * the caller now owns that reference (the scope no longer releases it at its end). */
bool cg__scope_take(cg_tensor *t);
/* True when the caller's reference is the only one to t and to its buffer: nobody else can
 * see its data, so writing it in place is safe (acquire: earlier owners' writes are seen). */
static inline bool cg__tensor_exclusive(const cg_tensor *t)
{
  return __atomic_load_n(&t->refcount, __ATOMIC_ACQUIRE) == 1 && t->buf &&
         __atomic_load_n(&t->buf->refcount, __ATOMIC_ACQUIRE) == 1;
}
static inline bool cg__shape_equal(int na, const int64_t *a, int nb, const int64_t *b)
{
  if (na != nb) return false;
  for (int i = 0; i < na; i++)
    if (a[i] != b[i]) return false;
  return true;
}
char *cg__fmt_shape(int ndim, const int64_t *shape, char *buf, size_t n);
/* The element type's C value read as double / written from double. */
double cg__load(cg_dtype d, const void *base, int64_t i);
void cg__store(cg_dtype d, void *base, int64_t i, double v);

/* Drops the gradient hooks of a tensor that is going away (src/autodiff/hooks.c). */
void cg__forget_hooks(uint64_t id);

/* --- errors ------------------------------------------------------------------------------ */
/* "Op: input i is NULL" unless an error is already pending (keep the first cause). */
cg_status cg__null_input(const char *op, int i);

/* --- per-thread state ---------------------------------------------------------------------- */
struct cg_tape;
typedef struct cg_override {
  const char *op_type;
  const char *gradient_name;
} cg_override;

typedef struct cg_collector cg_collector; /* variables read in a custom forward */

typedef struct cg_thread_state {
  cg_status status;
  char message[1024];
  /* scopes: one flat stack of held references, marks where each scope starts */
  cg_tensor **held;
  size_t n_held, cap_held;
  size_t *scope_marks;
  int n_scopes, cap_scopes;
  /* tapes recording on this thread, innermost last */
  struct cg_tape **tapes;
  int n_tapes, cap_tapes;
  int paused; /* cg_pause_recording depth */
  cg_override *overrides;
  int n_overrides, cap_overrides;
  cg_collector *collector; /* innermost custom forward collecting variable reads */
  struct cg_graph *graph;   /* the graph ops add nodes to, or NULL (eager)         */
  const char *building_gradient; /* set while a gradient function builds graph nodes */
  const struct cg_node *grad_node; /* the node whose gradient function runs (rules.h)  */
  const bool *grad_needs;          /* which of its inputs need a gradient              */
} cg_thread_state;

extern _Thread_local cg_thread_state cg__tls_state;
static inline cg_thread_state *cg__tls(void) { return &cg__tls_state; }

#define CG__SCOPE_SPARE 32 /* free slots the held stack keeps ahead (scope.c) */

/* (inline: every op's outputs come here; the stack grows in the slow path) */
static inline void cg__scope_adopt(cg_tensor *t)
{
  cg_thread_state *s = cg__tls();
  if (t && s->n_scopes && s->cap_held - s->n_held > CG__SCOPE_SPARE) s->held[s->n_held++] = t;
  else cg__scope_adopt_slow(t);
}

/* cg_scope_begin and cg_scope_end for a short scope inside another (the reverse walk opens
 * one per node): the same effect, inline when no stack grows and no outer scope ends. */
static inline cg_scope cg__scope_open(void)
{
  cg_thread_state *s = cg__tls();
  if (s->n_scopes == 0 || s->n_scopes == s->cap_scopes || s->cap_held - s->n_held < CG__SCOPE_SPARE)
    return cg_scope_begin();
  s->scope_marks[s->n_scopes++] = s->n_held;
  return s->n_scopes;
}
static inline void cg__scope_close(cg_scope scope)
{
  cg_thread_state *s = cg__tls();
  if (scope <= 1 || scope != s->n_scopes) {
    cg_scope_end(scope); /* (the last scope frees the stacks; a wrong one is an error) */
    return;
  }
  size_t mark = s->scope_marks[--s->n_scopes];
  while (s->n_held > mark) cg_release(s->held[--s->n_held]);
}

#endif

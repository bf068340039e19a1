/* tape.c - eager gradient tapes (tf.GradientTape): begin/end, watching, recording the
 * nodes the dispatcher hands over, pausing. The reverse walk lives in backward.c. */
#include "tape.h"
#include "custom.h"
#include <stdlib.h>
#include <string.h>

/* --- id sets (open addressing over tensor ids) ------------------------------------------- */

cg_status cg__idset_grow(cg_idset *s, size_t cap)
{
  uint64_t *keys = cg__alloc(cap * sizeof *keys); /* cached: sets come and go with tapes */
  if (!keys) return CG_ENOMEM;
  memset(keys, 0, cap * sizeof *keys);
  for (size_t k = 0; k < s->cap; k++)
    if (s->keys[k]) {
      size_t i = cg__idset_slot(s->keys[k], cap);
      while (keys[i]) i = (i + 1) & (cap - 1);
      keys[i] = s->keys[k];
    }
  cg__free(s->keys, s->cap * sizeof *s->keys);
  s->keys = keys;
  s->cap = cap;
  return CG_OK;
}

void cg__idset_free(cg_idset *s)
{
  cg__free(s->keys, s->cap * sizeof *s->keys);
  *s = (cg_idset){0};
}

/* --- tapes ------------------------------------------------------------------------------------ */

/* How many tensors the last tape freed on this thread followed: the next one's set starts
   that large (up to HINT_MAX), so that a loop's tapes do not grow theirs step by step. */
static _Thread_local size_t tracked_hint;
#define HINT_MAX ((size_t)1 << 15)

cg_tape *cg_tape_begin(unsigned flags)
{
  cg_thread_state *s = cg__tls();
  if (s->n_tapes == s->cap_tapes) {
    int cap = s->cap_tapes ? 2 * s->cap_tapes : 8;
    cg_tape **tapes = cg__realloc(s->tapes, (size_t)cap * sizeof *tapes);
    if (!tapes) return NULL;
    s->tapes = tapes;
    s->cap_tapes = cap;
  }
  cg_tape *t = cg__calloc(1, sizeof *t);
  if (!t) return NULL;
  t->flags = flags;
  t->recording = true;
  s->tapes[s->n_tapes++] = t;
  return t;
}

/* --- what a tape holds ------------------------------------------------------------------------
 * A tape holds one reference to each tensor it follows (tracked: watched, or a float output
 * it recorded) and to each output and other input of the nodes it recorded; its nodes
 * borrow them. An input the tape follows needs no new reference, so a loop over recorded
 * results and watched parameters takes one per new tensor instead of one per use. */

static void tape_free_records(cg_tape *t);

/* A tape's arrays come from the allocator's caches (cg__alloc): one tape after another
   reuses them instead of growing and shrinking the heap each time. */
static void *grow(void *p, size_t cap, size_t new_cap, size_t elem)
{
  void *q = cg__alloc(new_cap * elem);
  if (q && cap) memcpy(q, p, cap * elem);
  if (q) cg__free(p, cap * elem);
  return q;
}

/* fresh: x is an op's output not yet returned, which no other thread can see: its count
   goes up without an atomic operation (about 5 ns here). */
static inline cg_status hold(cg_tape *t, cg_tensor *x, bool fresh)
{
  if (t->n_held == t->cap_held) {
    size_t cap = t->cap_held ? 2 * t->cap_held : 128;
    cg_tensor **held = grow(t->held, t->cap_held, cap, sizeof *held);
    if (!held) return CG_ENOMEM;
    t->held = held;
    t->cap_held = cap;
  }
  if (fresh) x->refcount++;
  else cg_retain(x);
  t->held[t->n_held++] = x;
  return CG_OK;
}

/* Adds id to what t follows (its set sized by tracked_hint first). */
static inline cg_status track(cg_tape *t, uint64_t id)
{
  if (!t->tracked.cap && tracked_hint) {
    size_t cap = 64;
    while (cap < 2 * (tracked_hint + 1)) cap *= 2;
    if (cg__idset_grow(&t->tracked, cap) != CG_OK) return CG_ENOMEM;
  }
  return cg__idset_add(&t->tracked, id);
}

/* Follows t from now on (watched, or read as a trainable variable). */
static cg_status follow(cg_tape *tape, cg_tensor *t)
{
  if (cg__idset_has(&tape->tracked, t->id)) return CG_OK;
  if (hold(tape, t, false) != CG_OK) return CG_ENOMEM;
  return track(tape, t->id);
}

cg_status cg_tape_watch(cg_tape *tape, cg_tensor *t)
{
  if (!tape) return cg_set_error(CG_EINVAL, "cg_tape_watch: tape is NULL");
  if (!t) return cg__null_input("cg_tape_watch", 0);
  if (!cg_dtype_is_float(t->dtype)) return CG_OK; /* integers carry no gradient, as in TF */
  return follow(tape, t) == CG_OK ? CG_OK : cg_set_error(CG_ENOMEM, "cg_tape_watch: out of memory");
}

cg_status cg_tape_end(cg_tape *tape)
{
  cg_thread_state *s = cg__tls();
  if (!tape) return cg_set_error(CG_EINVAL, "cg_tape_end: tape is NULL");
  if (!tape->recording) return cg_set_error(CG_ESTATE, "cg_tape_end: the tape has already ended");
  if (s->n_tapes == 0 || s->tapes[s->n_tapes - 1] != tape)
    return cg_set_error(CG_ESTATE, "cg_tape_end: tapes end in reverse order of beginning; "
                                   "end the inner tape first");
  tape->recording = false;
  if (--s->n_tapes == 0) {
    free(s->tapes);
    s->tapes = NULL;
    s->cap_tapes = 0;
  }
  return CG_OK;
}

void cg_tape_free(cg_tape *tape)
{
  if (!tape) return;
  cg_thread_state *s = cg__tls();
  if (tape->recording) { /* remove it wherever it sits in the stack */
    int k = 0;
    for (int i = 0; i < s->n_tapes; i++)
      if (s->tapes[i] != tape) s->tapes[k++] = s->tapes[i];
    s->n_tapes = k;
    if (k == 0) {
      free(s->tapes);
      s->tapes = NULL;
      s->cap_tapes = 0;
    }
  }
  tape_free_records(tape);
  cg__free(tape->nodes, tape->cap_nodes * sizeof *tape->nodes);
  for (size_t i = tape->n_held; i-- > 0;) cg_release(tape->held[i]);
  cg__free(tape->held, tape->cap_held * sizeof *tape->held);
  free(tape->hooks.items);
  free(tape->cuts);
  cg__idset_free(&tape->seen);
  tracked_hint = tape->tracked.n < HINT_MAX ? tape->tracked.n : HINT_MAX;
  cg__idset_free(&tape->tracked);
  free(tape);
}

size_t cg_tape_num_records(const cg_tape *tape) { return tape ? tape->n_nodes : 0; }

void cg_pause_recording(void) { cg__tls()->paused++; }

cg_status cg_resume_recording(void)
{
  cg_thread_state *s = cg__tls();
  if (s->paused == 0) return cg_set_error(CG_ESTATE, "cg_resume_recording: recording is not paused");
  s->paused--;
  return CG_OK;
}

/* --- recording ------------------------------------------------------------------------------ */

bool cg__any_tape_recording(void)
{
  const cg_thread_state *s = cg__tls();
  return s->n_tapes > 0 && s->paused == 0;
}

bool cg__tape_would_record(void)
{
  const cg_thread_state *s = cg__tls();
  for (int k = 0; k < s->n_tapes && s->paused == 0; k++)
    if (s->tapes[k]->recording && !s->tapes[k]->busy) return true;
  return false;
}

/* Whether t records now and follows one of the n tensors in. */
static bool tape_follows_any(const cg_tape *t, cg_tensor *const *in, int n)
{
  if (!t->recording || t->busy) return false;
  for (int i = 0; i < n; i++)
    if (cg__idset_has(&t->tracked, in[i]->id)) return true;
  return false;
}

bool cg__tape_would_record_inputs(cg_tensor *const *in, int n)
{
  const cg_thread_state *s = cg__tls();
  for (int k = 0; k < s->n_tapes && s->paused == 0; k++)
    if (tape_follows_any(s->tapes[k], in, n)) return true;
  return false;
}

/* --- records -----------------------------------------------------------------------------------
 * A tape's records live in chunks it owns (one bump of a pointer each, all freed with the
 * tape); each tape that records an op keeps its own copy. */

typedef struct cg_tape_chunk {
  struct cg_tape_chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} chunk;

/* Chunks double from 16 KB to 1 MB as a tape grows (a size class of the allocator each). */
#define FIRST_CHUNK ((size_t)16 << 10)
#define LAST_CHUNK ((size_t)1 << 20)

static void *tape_alloc(cg_tape *t, size_t bytes)
{
  bytes = (bytes + 15) & ~(size_t)15;
  chunk *c = t->chunks;
  if (!c || c->cap - c->used < bytes) {
    size_t whole = c ? 2 * (sizeof *c + c->cap) : FIRST_CHUNK;
    if (whole > LAST_CHUNK) whole = LAST_CHUNK;
    while (whole - sizeof *c < bytes) whole *= 2; /* a record larger than a chunk */
    size_t cap = whole - sizeof *c;
    if (!(c = cg__alloc(sizeof *c + cap))) return NULL;
    *c = (chunk){.next = t->chunks, .cap = cap};
    t->chunks = c;
  }
  void *p = c->data + c->used;
  c->used += bytes;
  return p;
}

static void tape_free_records(cg_tape *t)
{
  for (size_t i = 0; i < t->n_nodes; i++)
    if (t->nodes[i]->custom) cg__custom_record_free(t->nodes[i]->custom);
  while (t->chunks) {
    chunk *next = t->chunks->next;
    cg__free(t->chunks, sizeof *t->chunks + t->chunks->cap);
    t->chunks = next;
  }
}

/* fresh: n's outputs are new (see hold). */
static cg_status tape_append(cg_tape *t, const cg_node *n, bool fresh,
                             cg_grad_entry *grad, const char *grad_name)
{
  if (t->n_nodes == t->cap_nodes) {
    size_t cap = t->cap_nodes ? 2 * t->cap_nodes : 64;
    cg_node **nodes = grow(t->nodes, t->cap_nodes, cap, sizeof *nodes);
    if (!nodes) return CG_ENOMEM;
    t->nodes = nodes;
    t->cap_nodes = cap;
  }
  /* the record borrows its tensors from the tape, which holds them all */
  for (int i = 0; i < n->n_in; i++)
    if (!cg__idset_has(&t->tracked, n->in[i]->id) && hold(t, n->in[i], false) != CG_OK) return CG_ENOMEM;
  for (int i = 0; i < n->n_out; i++) {
    if (hold(t, n->out[i], fresh) != CG_OK) return CG_ENOMEM;
    bool carries = cg_dtype_is_float(n->out[i]->dtype) && !(n->non_differentiable & (1u << i));
    if ((carries ? track(t, n->out[i]->id) : cg__idset_add(&t->seen, n->out[i]->id)) != CG_OK)
      return CG_ENOMEM;
  }
  void *mem = tape_alloc(t, cg__node_bytes(n)); /* its tensors: the tape holds them */
  if (!mem) return CG_ENOMEM;
  cg_node *copy = cg__node_copy_at(mem, n);
  cg__custom_record_retain(copy->custom); /* (the tape frees it with its records) */
  copy->grad = grad;
  copy->grad_name = grad_name;
  t->nodes[t->n_nodes++] = copy;
  return CG_OK;
}

static cg_status record(const cg_node *n, bool fresh)
{
  cg_thread_state *s = cg__tls();
  cg_grad_entry *grad = n->grad;
  const char *grad_name = n->grad_name;
  bool resolved = n->custom || n->grad; /* a traced function's call brings its own */
  bool cut = false;
  for (int k = 0; k < s->n_tapes; k++) {
    cg_tape *t = s->tapes[k];
    if (!tape_follows_any(t, n->in, n->n_in)) {
      cut |= t->seen.n > 0; /* maybe fed by an integer result: note it for explanations */
      continue;
    }
    if (!resolved) {
      if (!(grad = cg__resolve_gradient(n->type))) return cg_last_status();
      grad_name = grad->name;
      resolved = true;
    }
    if (tape_append(t, n, fresh, grad, grad_name) != CG_OK)
      return cg_set_error(CG_ENOMEM, "%s: out of memory recording on a tape", n->type);
  }
  return cut ? cg__record_cut(n, CG_CUT_INTEGER) : CG_OK;
}

cg_status cg__record(const cg_node *n) { return record(n, false); }

cg_status cg__record_new(const cg_node *n) { return record(n, true); }

cg_status cg__on_var_read(cg_var *v, cg_tensor *value)
{
  cg_thread_state *s = cg__tls();
  if (!cg_var_trainable(v)) return CG_OK;
  for (int k = 0; k < s->n_tapes; k++) {
    cg_tape *t = s->tapes[k];
    if (t->recording && !(t->flags & CG_TAPE_NO_AUTO_WATCH) && s->paused == 0 &&
        follow(t, value) != CG_OK)
      return cg_set_error(CG_ENOMEM, "cg_var_read: out of memory watching '%s'", cg_var_name(v));
  }
  return cg__collect_var_read(v, value) == CG_OK
             ? CG_OK : cg_set_error(CG_ENOMEM, "cg_var_read: out of memory collecting '%s'", cg_var_name(v));
}

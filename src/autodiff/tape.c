/* tape.c - eager gradient tapes (tf.GradientTape): begin/end, watching, recording the
 * nodes the dispatcher hands over, pausing. The reverse walk lives in backward.c. */
#include "tape.h"
#include "custom.h"
#include <stdlib.h>

/* --- id sets (open addressing over tensor ids) ------------------------------------------- */

static size_t id_slot(uint64_t id, size_t cap)
{
  return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

bool cg__idset_has(const cg_idset *s, uint64_t id)
{
  if (!s->cap) return false;
  for (size_t i = id_slot(id, s->cap);; i = (i + 1) & (s->cap - 1)) {
    if (s->keys[i] == id) return true;
    if (s->keys[i] == 0) return false;
  }
}

cg_status cg__idset_add(cg_idset *s, uint64_t id)
{
  if (2 * (s->n + 1) > s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 64;
    uint64_t *keys = cg__calloc(cap, sizeof *keys);
    if (!keys) return CG_ENOMEM;
    for (size_t k = 0; k < s->cap; k++)
      if (s->keys[k]) {
        size_t i = id_slot(s->keys[k], cap);
        while (keys[i]) i = (i + 1) & (cap - 1);
        keys[i] = s->keys[k];
      }
    free(s->keys);
    s->keys = keys;
    s->cap = cap;
  }
  size_t i = id_slot(id, s->cap);
  for (; s->keys[i]; i = (i + 1) & (s->cap - 1))
    if (s->keys[i] == id) return CG_OK;
  s->keys[i] = id;
  s->n++;
  return CG_OK;
}

void cg__idset_free(cg_idset *s)
{
  free(s->keys);
  *s = (cg_idset){0};
}

/* --- tapes ------------------------------------------------------------------------------------ */

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

cg_status cg_tape_watch(cg_tape *tape, cg_tensor *t)
{
  if (!tape) return cg_set_error(CG_EINVAL, "cg_tape_watch: tape is NULL");
  if (!t) return cg__null_input("cg_tape_watch", 0);
  if (!cg_dtype_is_float(t->dtype)) return CG_OK; /* integers carry no gradient, as in TF */
  return cg__idset_add(&tape->tracked, t->id) == CG_OK
             ? CG_OK : cg_set_error(CG_ENOMEM, "cg_tape_watch: out of memory");
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
  for (size_t i = 0; i < tape->n_nodes; i++) cg__node_release(tape->nodes[i]);
  free(tape->nodes);
  free(tape->hooks.items);
  free(tape->cuts);
  cg__idset_free(&tape->seen);
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

static bool tape_follows_an_input(const cg_tape *t, const cg_node *n)
{
  if (!t->recording || t->busy) return false;
  for (int i = 0; i < n->n_in; i++)
    if (cg__idset_has(&t->tracked, n->in[i]->id)) return true;
  return false;
}

static cg_status tape_append(cg_tape *t, cg_node *node)
{
  if (t->n_nodes == t->cap_nodes) {
    size_t cap = t->cap_nodes ? 2 * t->cap_nodes : 64;
    cg_node **nodes = cg__realloc(t->nodes, cap * sizeof *nodes);
    if (!nodes) return CG_ENOMEM;
    t->nodes = nodes;
    t->cap_nodes = cap;
  }
  for (int i = 0; i < node->n_out; i++) {
    bool carries = cg_dtype_is_float(node->out[i]->dtype) && !(node->non_differentiable & (1u << i));
    if (cg__idset_add(carries ? &t->tracked : &t->seen, node->out[i]->id) != CG_OK) return CG_ENOMEM;
  }
  t->nodes[t->n_nodes++] = node;
  node->refcount++;
  return CG_OK;
}

cg_status cg__record(const cg_node *n)
{
  cg_thread_state *s = cg__tls();
  cg_node *copy = NULL;
  bool cut = false;
  for (int k = 0; k < s->n_tapes; k++) {
    cg_tape *t = s->tapes[k];
    if (!tape_follows_an_input(t, n)) {
      cut |= t->seen.n > 0; /* maybe fed by an integer result: note it for explanations */
      continue;
    }
    if (!copy) {
      if (!(copy = cg__node_copy(n))) return cg_last_status();
      if (!copy->custom && !copy->grad) { /* a traced function's call brings its own */
        copy->grad = cg__resolve_gradient(n->type);
        if (!copy->grad) {
          cg__node_release(copy);
          return cg_last_status();
        }
        copy->grad_name = copy->grad->name;
      }
    }
    if (tape_append(t, copy) != CG_OK) {
      cg__node_release(copy);
      return cg_set_error(CG_ENOMEM, "%s: out of memory recording on a tape", n->type);
    }
  }
  cg__node_release(copy); /* the tapes hold their own references */
  return cut ? cg__record_cut(n, CG_CUT_INTEGER) : CG_OK;
}

cg_status cg__on_var_read(cg_var *v, cg_tensor *value)
{
  cg_thread_state *s = cg__tls();
  if (!cg_var_trainable(v)) return CG_OK;
  for (int k = 0; k < s->n_tapes; k++) {
    cg_tape *t = s->tapes[k];
    if (t->recording && !(t->flags & CG_TAPE_NO_AUTO_WATCH) && s->paused == 0 &&
        cg__idset_add(&t->tracked, value->id) != CG_OK)
      return cg_set_error(CG_ENOMEM, "cg_var_read: out of memory watching '%s'", cg_var_name(v));
  }
  return cg__collect_var_read(v, value) == CG_OK
             ? CG_OK : cg_set_error(CG_ENOMEM, "cg_var_read: out of memory collecting '%s'", cg_var_name(v));
}

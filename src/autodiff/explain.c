/* explain.c - "why is this gradient NULL?": cg_tape_explain follows what a tape saw from the
 * source towards the target and names the first broken link: a source never watched, an
 * integer result, a StopGradient or other non-differentiable op, an op with no gradient, a
 * paused recording. Ops that cut a path are noted as they run (cg__record_cut). */
#include "tape.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cg_status cg__record_cut(const cg_node *n, cg_cut_reason reason)
{
  cg_thread_state *s = cg__tls();
  for (int k = 0; k < s->n_tapes; k++) {
    cg_tape *t = s->tapes[k];
    bool follows = false;
    for (int i = 0; i < n->n_in && !follows; i++)
      follows = cg__idset_has(&t->tracked, n->in[i]->id) || cg__idset_has(&t->seen, n->in[i]->id);
    if (!follows || !t->recording) continue;
    for (int o = 0; o < n->n_out; o++)
      if (cg__idset_add(&t->seen, n->out[o]->id) != CG_OK) return CG_ENOMEM;
    if (t->n_cuts == t->cap_cuts) {
      size_t cap = t->cap_cuts ? 2 * t->cap_cuts : 16;
      cg_cut *cuts = cg__realloc(t->cuts, cap * sizeof *cuts);
      if (!cuts) return CG_ENOMEM;
      t->cuts = cuts;
      t->cap_cuts = cap;
    }
    cg_cut *c = &t->cuts[t->n_cuts++];
    *c = (cg_cut){.type = n->type, .reason = reason};
    for (int i = 0; i < n->n_in && c->n_in < 8; i++) c->in[c->n_in++] = n->in[i]->id;
    for (int o = 0; o < n->n_out && c->n_out < 4; o++) c->out[c->n_out++] = n->out[o]->id;
  }
  return CG_OK;
}

static _Thread_local char sentence[512];

static bool reads_any(const uint64_t *ids, int n, const cg_idset *set)
{
  for (int i = 0; i < n; i++)
    if (cg__idset_has(set, ids[i])) return true;
  return false;
}

/* Everything computed from the source: ids reached through recorded nodes and cut ops. */
static void reach(const cg_tape *tape, uint64_t source, cg_idset *diff, cg_idset *any)
{
  cg__idset_add(diff, source);
  cg__idset_add(any, source);
  bool grew = true;
  while (grew) { /* nodes and cuts interleave in time: iterate to a fixed point */
    grew = false;
    for (size_t k = 0; k < tape->n_nodes; k++) {
      const cg_node *n = tape->nodes[k];
      bool from_diff = false, from_any = false;
      for (int i = 0; i < n->n_in; i++) {
        from_diff |= cg__idset_has(diff, n->in[i]->id);
        from_any |= cg__idset_has(any, n->in[i]->id);
      }
      for (int o = 0; o < n->n_out; o++) {
        uint64_t id = n->out[o]->id;
        if (from_any && !cg__idset_has(any, id)) grew = !cg__idset_add(any, id);
        if (from_diff && cg_dtype_is_float(n->out[o]->dtype) && !cg__idset_has(diff, id))
          grew = !cg__idset_add(diff, id);
      }
    }
    for (size_t k = 0; k < tape->n_cuts; k++)
      if (reads_any(tape->cuts[k].in, tape->cuts[k].n_in, any))
        for (int o = 0; o < tape->cuts[k].n_out; o++)
          if (!cg__idset_has(any, tape->cuts[k].out[o])) grew = !cg__idset_add(any, tape->cuts[k].out[o]);
  }
}

/* What the target was computed from, as far as the tape saw (nodes and cut ops). */
static void ancestry(const cg_tape *tape, uint64_t target, cg_idset *from)
{
  cg__idset_add(from, target);
  bool grew = true;
  while (grew) {
    grew = false;
    for (size_t k = 0; k < tape->n_nodes; k++) {
      const cg_node *n = tape->nodes[k];
      bool feeds = false;
      for (int o = 0; o < n->n_out; o++) feeds |= cg__idset_has(from, n->out[o]->id);
      for (int i = 0; feeds && i < n->n_in; i++)
        if (!cg__idset_has(from, n->in[i]->id)) grew = !cg__idset_add(from, n->in[i]->id);
    }
    for (size_t k = 0; k < tape->n_cuts; k++) {
      const cg_cut *c = &tape->cuts[k];
      if (!reads_any(c->out, c->n_out, from)) continue;
      for (int i = 0; i < c->n_in; i++)
        if (!cg__idset_has(from, c->in[i])) grew = !cg__idset_add(from, c->in[i]);
    }
  }
}

static const char *explain_cut(const cg_tape *tape, const cg_idset *diff, const cg_idset *any,
                               const cg_idset *from)
{
  for (size_t k = 0; k < tape->n_nodes; k++) { /* a recorded op turning the path into integers */
    const cg_node *n = tape->nodes[k];
    bool fed = false;
    for (int i = 0; i < n->n_in; i++) fed |= cg__idset_has(diff, n->in[i]->id);
    for (int o = 0; fed && o < n->n_out; o++)
      if (!cg_dtype_is_float(n->out[o]->dtype) && cg__idset_has(from, n->out[o]->id)) {
        snprintf(sentence, sizeof sentence, "the path passes through %s, whose output is %s: integers carry "
                                            "no gradient", n->type, cg_dtype_name(n->out[o]->dtype));
        return sentence;
      }
  }
  for (size_t k = 0; k < tape->n_cuts; k++) { /* the first op on the way that cut the path */
    const cg_cut *c = &tape->cuts[k];
    if (!reads_any(c->in, c->n_in, any) || !reads_any(c->out, c->n_out, from)) continue;
    if (c->reason == CG_CUT_PAUSED)
      snprintf(sentence, sizeof sentence, "the path passes through %s, which ran while recording was "
                                          "paused (cg_pause_recording), so the tape did not record it", c->type);
    else if (c->reason == CG_CUT_INTEGER)
      continue; /* an op fed by an integer result: the cause is earlier */
    else if (strcmp(c->type, "StopGradient") == 0)
      snprintf(sentence, sizeof sentence, "the path passes through StopGradient, which blocks the gradient");
    else
      snprintf(sentence, sizeof sentence, "the path passes through %s, which is not differentiable "
                                          "(registered with CG_OP_NOT_DIFFERENTIABLE)", c->type);
    return sentence;
  }
  return NULL;
}

const char *cg_tape_explain(cg_tape *tape, cg_tensor *target, cg_tensor *source)
{
  if (!tape || !target || !source) return "cg_tape_explain: tape, target and source are required";
  if (!cg_dtype_is_float(source->dtype)) {
    snprintf(sentence, sizeof sentence, "the source is a %s tensor: integers carry no gradient",
             cg_dtype_name(source->dtype));
    return sentence;
  }
  if (!cg__idset_has(&tape->tracked, source->id))
    return "the source was never watched by this tape: call cg_tape_watch on it (or read it as a "
           "trainable variable) before computing the target";
  cg_idset diff = {0}, any = {0};
  reach(tape, source->id, &diff, &any);
  const char *why = NULL;
  if (cg__idset_has(&diff, target->id)) {
    cg_idset toward = {0}; /* what the target was computed from, walking back in time */
    cg__idset_add(&toward, target->id);
    for (size_t k = tape->n_nodes; k-- > 0 && !why;) { /* connected: is every rule there? */
      const cg_node *n = tape->nodes[k];
      bool feeds_target = false, from_source = false;
      for (int o = 0; o < n->n_out; o++) feeds_target |= cg__idset_has(&toward, n->out[o]->id);
      for (int i = 0; i < n->n_in; i++) from_source |= cg__idset_has(&diff, n->in[i]->id);
      if (!feeds_target || !from_source) continue;
      for (int i = 0; i < n->n_in; i++) cg__idset_add(&toward, n->in[i]->id);
      if (!n->custom && (!n->grad || !n->grad->fn)) {
        snprintf(sentence, sizeof sentence, "the path passes through %s, which has no registered gradient "
                                            "(register one with cg_register_gradient(\"%s\", ...))",
                 n->type, n->grad_name ? n->grad_name : n->type);
        why = sentence;
      }
    }
    cg__idset_free(&toward);
    if (!why) why = "the target depends on the source through recorded differentiable ops: its gradient is "
                    "not NULL";
  } else if (!cg_dtype_is_float(target->dtype)) {
    snprintf(sentence, sizeof sentence, "the target is a %s tensor: integers carry no gradient",
             cg_dtype_name(target->dtype));
    why = sentence;
  } else {
    cg_idset from = {0};
    ancestry(tape, target->id, &from);
    why = explain_cut(tape, &diff, &any, &from);
    cg__idset_free(&from);
    if (!why) why = "the target does not depend on the source on this tape (it was computed from other "
                    "tensors, or before the tape began)";
  }
  cg__idset_free(&diff);
  cg__idset_free(&any);
  return why;
}

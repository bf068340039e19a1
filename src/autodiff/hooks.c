/* hooks.c - gradient hooks (PyTorch's register_hook): functions called with the total
 * gradient flowing into a tensor during a backward walk, which may replace it. Hooks on a
 * tensor hold for every tape and graph; hooks on a tape only for its own gradients. */
#include "tape.h"
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cg_hook_list global; /* tensor hooks, for as long as their tensor lives */

static cg_status append(cg_hook_list *l, uint64_t id, cg_grad_hook fn, void *user)
{
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 8;
    cg_hook *items = cg__realloc(l->items, (size_t)cap * sizeof *items);
    if (!items) return CG_ENOMEM;
    l->items = items;
    l->cap = cap;
  }
  l->items[l->n++] = (cg_hook){id, fn, user};
  return CG_OK;
}

static cg_status check_args(const char *fn_name, const cg_tensor *t, cg_grad_hook fn)
{
  if (!t || !fn) return cg_set_error(CG_EINVAL, "%s: tensor and hook are required", fn_name);
  if (!cg_dtype_is_float(t->dtype))
    return cg_set_error(CG_EDTYPE, "%s: a %s tensor never receives a gradient", fn_name, cg_dtype_name(t->dtype));
  return CG_OK;
}

cg_status cg_tensor_register_hook(cg_tensor *t, cg_grad_hook fn, void *user)
{
  cg_status st = check_args("cg_tensor_register_hook", t, fn);
  if (st != CG_OK) return st;
  pthread_mutex_lock(&lock);
  st = append(&global, t->id, fn, user);
  pthread_mutex_unlock(&lock);
  if (st == CG_OK) t->has_hook = true;
  return st;
}

cg_status cg_tape_register_hook(cg_tape *tape, cg_tensor *t, cg_grad_hook fn, void *user)
{
  if (!tape) return cg_set_error(CG_EINVAL, "cg_tape_register_hook: tape is NULL");
  cg_status st = check_args("cg_tape_register_hook", t, fn);
  return st == CG_OK ? append(&tape->hooks, t->id, fn, user) : st;
}

void cg__forget_hooks(uint64_t id)
{
  pthread_mutex_lock(&lock);
  int k = 0;
  for (int i = 0; i < global.n; i++)
    if (global.items[i].id != id) global.items[k++] = global.items[i];
  global.n = k;
  if (k == 0) {
    free(global.items);
    global = (cg_hook_list){0};
  }
  pthread_mutex_unlock(&lock);
}

static cg_tensor *call(const cg_hook *h, const cg_tensor *t, cg_tensor *g)
{
  cg_tensor *r = h->fn(g, h->user);
  char a[160], b[160];
  if (!r) {
    if (cg_last_status() == CG_OK) cg_set_error(CG_EUSER, "a gradient hook returned NULL for a tensor of shape %s",
                                                cg_shape_str(t, a, sizeof a));
    return NULL;
  }
  if (r->dtype != g->dtype || !cg__shape_equal(r->ndim, r->shape, g->ndim, g->shape)) {
    cg_set_error(CG_EUSER, "a gradient hook returned %s %s for a gradient of %s %s", cg_dtype_name(r->dtype),
                 cg_shape_str(r, a, sizeof a), cg_dtype_name(g->dtype), cg_shape_str(g, b, sizeof b));
    return NULL;
  }
  return r;
}

cg_tensor *cg__run_hooks(const cg_tensor *t, cg_tensor *g, const cg_hook_list *tape_hooks)
{
  if (t->has_hook) {
    pthread_mutex_lock(&lock); /* a copy: a hook may register hooks */
    cg_hook mine[16];
    int n = 0;
    for (int i = 0; i < global.n && n < 16; i++)
      if (global.items[i].id == t->id) mine[n++] = global.items[i];
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n && g; i++) g = call(&mine[i], t, g);
  }
  for (int i = 0; tape_hooks && i < tape_hooks->n && g; i++)
    if (tape_hooks->items[i].id == t->id) g = call(&tape_hooks->items[i], t, g);
  return g;
}

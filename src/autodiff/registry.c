/* registry.c - the global registries of op types and gradient functions (by name,
 * thread-safe), the per-thread gradient override stack (gradient_override_map), and
 * loading op libraries from shared objects (tf.load_op_library). */
#include "node.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* --- a small string-keyed table of stable pointers ----------------------------------- */

typedef struct {
  void **items; /* in registration order */
  int n, cap;
  int *slots;   /* open addressing: index into items, -1 empty */
  int n_slots;
} name_table;

static uint64_t hash_name(const char *s)
{
  uint64_t h = 1469598103934665603ull;
  while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
  return h;
}

/* name_of: how to get an item's name */
static int table_find(const name_table *t, const char *name, const char *(*name_of)(void *))
{
  if (!t->n_slots) return -1;
  for (uint64_t h = hash_name(name);; h++) {
    int k = t->slots[h & (uint64_t)(t->n_slots - 1)];
    if (k < 0) return -1;
    if (strcmp(name_of(t->items[k]), name) == 0) return k;
  }
}

static void table_index(name_table *t, int k, const char *(*name_of)(void *))
{
  for (uint64_t h = hash_name(name_of(t->items[k]));; h++) {
    int *s = &t->slots[h & (uint64_t)(t->n_slots - 1)];
    if (*s < 0) { *s = k; return; }
  }
}

static cg_status table_add(name_table *t, void *item, const char *(*name_of)(void *))
{
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 128;
    void **items = cg__realloc(t->items, (size_t)cap * sizeof *items);
    if (!items) return CG_ENOMEM;
    t->items = items;
    t->cap = cap;
  }
  if (2 * (t->n + 1) > t->n_slots) {
    int n_slots = t->n_slots ? 2 * t->n_slots : 256;
    int *slots = cg__malloc((size_t)n_slots * sizeof *slots);
    if (!slots) return CG_ENOMEM;
    free(t->slots);
    t->slots = slots;
    t->n_slots = n_slots;
    for (int i = 0; i < n_slots; i++) slots[i] = -1;
    for (int k = 0; k < t->n; k++) table_index(t, k, name_of);
  }
  t->items[t->n] = item;
  table_index(t, t->n++, name_of);
  return CG_OK;
}

/* --- the registries ------------------------------------------------------------------------ */

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static name_table ops, grads;

static const char *op_name(void *p) { return ((cg_op_def *)p)->name; }
static const char *grad_name(void *p) { return ((cg_grad_entry *)p)->name; }

static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;
cg_status cg__register_all_builtins(void); /* src/ops/builtin.c */
static void register_builtins(void) { cg__register_all_builtins(); }
void cg__ensure_builtins(void) { pthread_once(&builtins_once, register_builtins); }

/* Replaced definitions stay valid for whoever still holds them (another thread inside a
 * call, a graph node): a new copy takes the old one's place in the table, never its memory.
 * Retired copies are kept here for the life of the process, like the registry itself. */
static cg_op_def **retired;
static int n_retired;

static cg_status op_replace_locked(int k, const cg_op_def *def)
{
  cg_op_def *old = ops.items[k], *copy = cg__malloc(sizeof *copy);
  cg_op_def **grown = copy ? cg__realloc(retired, (size_t)(n_retired + 1) * sizeof *grown) : NULL;
  if (!grown) {
    free(copy);
    return cg_set_error(CG_ENOMEM, "cg_register_op: out of memory");
  }
  retired = grown;
  retired[n_retired++] = old;
  *copy = *def;
  copy->name = old->name; /* the interned name: nodes and caches point at it */
  ops.items[k] = copy;
  return CG_OK;
}

static cg_status op_add_locked(const cg_op_def *def, unsigned flags)
{
  if (!def || !def->name || !def->name[0] || !def->infer || !def->run)
    return cg_set_error(CG_EINVAL, "cg_register_op: a def needs a name, an infer and a run function");
  if (def->n_inputs < -1)
    return cg_set_error(CG_EINVAL, "cg_register_op: %s: n_inputs %d (use -1 for any number)",
                        def->name, def->n_inputs);
  int k = table_find(&ops, def->name, op_name);
  if (k >= 0 && !(flags & CG_REGISTER_REPLACE))
    return cg_set_error(CG_EEXIST, "cg_register_op: op type '%s' is already registered "
                                   "(pass CG_REGISTER_REPLACE to replace it)", def->name);
  if (k >= 0) return op_replace_locked(k, def);
  cg_op_def *copy = cg__malloc(sizeof *copy);
  char *name = copy ? strdup(def->name) : NULL;
  if (!name) {
    free(copy);
    return cg_set_error(CG_ENOMEM, "cg_register_op: out of memory");
  }
  *copy = *def;
  copy->name = name;
  if (table_add(&ops, copy, op_name) != CG_OK) {
    free(name);
    free(copy);
    return cg_set_error(CG_ENOMEM, "cg_register_op: out of memory");
  }
  return CG_OK;
}

/* Find or create the interned entry for a gradient name (lock held for writing). */
static cg_grad_entry *grad_entry_locked(const char *name)
{
  int k = table_find(&grads, name, grad_name);
  if (k >= 0) return grads.items[k];
  cg_grad_entry *e = cg__calloc(1, sizeof *e);
  if (!e) return NULL;
  e->name = strdup(name);
  if (!e->name || table_add(&grads, e, grad_name) != CG_OK) {
    free(e->name);
    free(e);
    cg_set_error(CG_ENOMEM, "gradient registry: out of memory");
    return NULL;
  }
  return e;
}

static cg_status grad_add_locked(const char *name, cg_grad_fn fn, void *user, unsigned flags)
{
  if (!name || !name[0] || !fn)
    return cg_set_error(CG_EINVAL, "cg_register_gradient: need a name and a function");
  cg_grad_entry *e = grad_entry_locked(name);
  if (!e) return CG_ENOMEM;
  if (e->fn && !(flags & CG_REGISTER_REPLACE))
    return cg_set_error(CG_EEXIST, "cg_register_gradient: a gradient named '%s' is already "
                                   "registered (pass CG_REGISTER_REPLACE to replace it)", name);
  /* a sequence lock: cg__gradient_snapshot reads fn and user without taking the lock */
  unsigned seq = e->seq;
  __atomic_store_n(&e->seq, seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  __atomic_store_n(&e->fn, fn, __ATOMIC_RELAXED);
  __atomic_store_n(&e->user, user, __ATOMIC_RELAXED);
  __atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
  e->flags = flags & CG_GRADIENT_ONCE_DIFFERENTIABLE;
  e->checked = 0;
  return CG_OK;
}

/* Read on every gradient call: a sequence lock instead of the registry's (two atomic
   read-modify-writes, about 20 ns here); a replacement in between makes it read again. */
void cg__for_each_gradient(void (*fn)(cg_grad_entry *e, void *ctx), void *ctx)
{
  cg__ensure_builtins();
  pthread_rwlock_rdlock(&lock);
  for (int i = 0; i < grads.n; i++) fn(grads.items[i], ctx);
  pthread_rwlock_unlock(&lock);
}

cg_status cg__register_builtin(const cg_op_def *def, cg_grad_fn grad)
{
  pthread_rwlock_wrlock(&lock);
  cg_status st = op_add_locked(def, 0);
  if (st == CG_OK && grad) st = grad_add_locked(def->name, grad, NULL, 0);
  pthread_rwlock_unlock(&lock);
  return st;
}

cg_status cg_register_op(const cg_op_def *def, unsigned flags)
{
  cg__ensure_builtins();
  pthread_rwlock_wrlock(&lock);
  cg_status st = op_add_locked(def, flags);
  pthread_rwlock_unlock(&lock);
  return st;
}

cg_status cg_register_gradient(const char *name, cg_grad_fn fn, void *user, unsigned flags)
{
  cg__ensure_builtins();
  pthread_rwlock_wrlock(&lock);
  cg_status st = grad_add_locked(name, fn, user, flags);
  pthread_rwlock_unlock(&lock);
  return st;
}

const cg_op_def *cg_find_op(const char *name)
{
  if (!name) {
    cg_set_error(CG_EINVAL, "cg_find_op: name is NULL");
    return NULL;
  }
  cg__ensure_builtins();
  pthread_rwlock_rdlock(&lock);
  int k = table_find(&ops, name, op_name);
  const cg_op_def *def = k >= 0 ? ops.items[k] : NULL;
  pthread_rwlock_unlock(&lock);
  if (!def) cg_set_error(CG_ENOTFOUND, "unknown op type '%s'", name);
  return def;
}

int cg_op_count(void)
{
  cg__ensure_builtins();
  pthread_rwlock_rdlock(&lock);
  int n = ops.n;
  pthread_rwlock_unlock(&lock);
  return n;
}

const cg_op_def *cg_op_at(int i)
{
  cg__ensure_builtins();
  pthread_rwlock_rdlock(&lock);
  const cg_op_def *def = i >= 0 && i < ops.n ? ops.items[i] : NULL;
  pthread_rwlock_unlock(&lock);
  return def;
}

int cg_has_gradient(const char *name)
{
  if (!name) return 0;
  cg__ensure_builtins();
  pthread_rwlock_rdlock(&lock);
  int k = table_find(&grads, name, grad_name);
  int has = k >= 0 && ((cg_grad_entry *)grads.items[k])->fn != NULL;
  pthread_rwlock_unlock(&lock);
  return has;
}

cg_grad_entry *cg__gradient_entry(const char *name)
{
  cg__ensure_builtins();
  pthread_rwlock_rdlock(&lock);
  int k = table_find(&grads, name, grad_name);
  cg_grad_entry *e = k >= 0 ? grads.items[k] : NULL;
  pthread_rwlock_unlock(&lock);
  if (e) return e;
  pthread_rwlock_wrlock(&lock);
  e = grad_entry_locked(name);
  pthread_rwlock_unlock(&lock);
  return e;
}

/* --- overrides (per thread) ------------------------------------------------------------- */

cg_status cg_gradient_override_push(const char *op_type, const char *gradient_name)
{
  if (!op_type || !gradient_name)
    return cg_set_error(CG_EINVAL, "cg_gradient_override_push: op type and gradient name are required");
  cg_grad_entry *e = cg__gradient_entry(gradient_name); /* interned: stable name pointer */
  if (!e) return cg_last_status();
  cg_thread_state *s = cg__tls();
  if (s->n_overrides == s->cap_overrides) {
    int cap = s->cap_overrides ? 2 * s->cap_overrides : 8;
    cg_override *o = cg__realloc(s->overrides, (size_t)cap * sizeof *o);
    if (!o) return CG_ENOMEM;
    s->overrides = o;
    s->cap_overrides = cap;
  }
  char *type = strdup(op_type);
  if (!type) return cg_set_error(CG_ENOMEM, "cg_gradient_override_push: out of memory");
  s->overrides[s->n_overrides++] = (cg_override){type, e->name};
  return CG_OK;
}

cg_status cg_gradient_override_pop(void)
{
  cg_thread_state *s = cg__tls();
  if (s->n_overrides == 0)
    return cg_set_error(CG_ESTATE, "cg_gradient_override_pop: the override stack is empty");
  free((char *)s->overrides[--s->n_overrides].op_type);
  if (s->n_overrides == 0) {
    free(s->overrides);
    s->overrides = NULL;
    s->cap_overrides = 0;
  }
  return CG_OK;
}

cg_grad_entry *cg__resolve_gradient(const char *op_type)
{
  cg_thread_state *s = cg__tls();
  for (int i = s->n_overrides - 1; i >= 0; i--)
    if (strcmp(s->overrides[i].op_type, op_type) == 0)
      return cg__gradient_entry(s->overrides[i].gradient_name);
  /* Op type names are interned (static or registry-owned) and entries never move, so a
     per-thread cache keyed by the name's address saves the locked lookup on every record. */
  static _Thread_local struct { const char *type; cg_grad_entry *entry; } cache[64];
  size_t k = ((uintptr_t)op_type >> 4) & 63;
  if (cache[k].type == op_type) return cache[k].entry;
  cg_grad_entry *e = cg__gradient_entry(op_type);
  if (e) {
    cache[k].type = op_type;
    cache[k].entry = e;
  }
  return e;
}

/* --- op libraries ----------------------------------------------------------------------- */

cg_status cg_load_op_library(const char *path)
{
  if (!path) return cg_set_error(CG_EINVAL, "cg_load_op_library: path is NULL");
  cg__ensure_builtins();
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) return cg_set_error(CG_EIO, "cg_load_op_library: %s", dlerror());
  int (*init)(void);
  *(void **)&init = dlsym(h, "cg_op_library_init");
  if (!init) {
    dlclose(h);
    return cg_set_error(CG_ENOTFOUND, "cg_load_op_library: %s has no cg_op_library_init", path);
  }
  int rc = init();
  if (rc != 0) { /* keep it loaded: anything it registered before failing points into it */
    if (cg_last_status() == CG_OK) cg_set_error(CG_EUSER, "cg_load_op_library: %s: init returned %d", path, rc);
    return cg_last_status();
  }
  return CG_OK;
}

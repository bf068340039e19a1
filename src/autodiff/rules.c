/* rules.c - what the reverse walk knows about the rules it runs: how often each gradient,
 * override, custom gradient and JVP rule ran (rule accounting), barriers that make a second
 * derivative through a once-differentiable rule an error, which inputs of the op being
 * differentiated need a gradient, and the optional check of each rule on its first run. */
#include "rules.h"
#include "custom.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* --- accounting ------------------------------------------------------------------------------ */

typedef struct {
  char *name;
  cg_rule_kind kind;
  uint64_t calls;
} counted_rule;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static counted_rule *table; /* custom gradients and JVP rules; gradients count in their entry */
static int n_table, cap_table;

void cg__count_rule(const char *name, cg_rule_kind kind)
{
  pthread_mutex_lock(&table_lock);
  int i = 0;
  while (i < n_table && (table[i].kind != kind || strcmp(table[i].name, name) != 0)) i++;
  if (i == n_table && n_table == cap_table) {
    int cap = cap_table ? 2 * cap_table : 16;
    counted_rule *t = realloc(table, (size_t)cap * sizeof *t);
    if (t) {
      table = t;
      cap_table = cap;
    }
  }
  if (i == n_table && n_table < cap_table && (table[i].name = strdup(name))) {
    table[i].kind = kind;
    table[i].calls = 0;
    n_table++;
  }
  if (i < n_table) table[i].calls++;
  pthread_mutex_unlock(&table_lock);
}

void cg__count_gradient(cg_grad_entry *e, const char *op_type)
{
  uint64_t *counter = strcmp(e->name, op_type) == 0 ? &e->calls : &e->override_calls;
  __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

typedef struct {
  cg_rule_stat *out;
  int max, n;
} stats_sink;

static void add_row(stats_sink *s, const char *name, cg_rule_kind kind, uint64_t calls)
{
  if (calls == 0) return;
  if (s->n < s->max) s->out[s->n] = (cg_rule_stat){name, kind, calls};
  s->n++;
}

static void gradient_rows(cg_grad_entry *e, void *ctx)
{
  add_row(ctx, e->name, CG_RULE_GRADIENT, __atomic_load_n(&e->calls, __ATOMIC_RELAXED));
  add_row(ctx, e->name, CG_RULE_OVERRIDE, __atomic_load_n(&e->override_calls, __ATOMIC_RELAXED));
}

static int by_calls(const void *a, const void *b)
{
  const cg_rule_stat *x = a, *y = b;
  if (x->calls != y->calls) return x->calls < y->calls ? 1 : -1;
  return strcmp(x->name, y->name);
}

int cg_rule_stats(cg_rule_stat *out, int max)
{
  stats_sink s = {out, out ? max : 0, 0};
  cg__for_each_gradient(gradient_rows, &s);
  pthread_mutex_lock(&table_lock);
  for (int i = 0; i < n_table; i++) add_row(&s, table[i].name, table[i].kind, table[i].calls);
  pthread_mutex_unlock(&table_lock);
  if (out) qsort(out, (size_t)(s.n < s.max ? s.n : s.max), sizeof *out, by_calls);
  return s.n;
}

static void reset_gradient(cg_grad_entry *e, void *ctx)
{
  __atomic_store_n(&e->calls, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&e->override_calls, 0, __ATOMIC_RELAXED);
}

void cg_rule_stats_reset(void)
{
  cg__for_each_gradient(reset_gradient, NULL);
  pthread_mutex_lock(&table_lock);
  for (int i = 0; i < n_table; i++) table[i].calls = 0;
  pthread_mutex_unlock(&table_lock);
}

/* --- once-differentiable barriers --------------------------------------------------------------- */

/* OnceDifferentiable(dx, x...) = dx; its inputs include the op's inputs, so tapes record it
   whenever they follow x; its gradient is the error. Not in the op registry: no one calls it. */
static cg_status barrier_infer(cg_node *n)
{
  const cg_tensor *dx = cg_node_input(n, 0);
  return cg_node_set_output_alias(n, 0, 0, dx->ndim, dx->shape);
}

static cg_status barrier_run(cg_node *n) { return CG_OK; }

static cg_status barrier_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  const char *rule = (const char *)(intptr_t)cg_node_attr_int(op, "rule", 0);
  return cg_set_error(CG_ENOGRAD, "a second derivative through the gradient '%s' is not available: "
                                  "it is declared once-differentiable", rule ? rule : "?");
}

static const cg_op_def barrier = {"OnceDifferentiable", -1, barrier_infer, barrier_run, 0, NULL};
static pthread_once_t barrier_once = PTHREAD_ONCE_INIT;
static void register_barrier_gradient(void) { cg_register_gradient("OnceDifferentiable", barrier_grad, NULL, 0); }

cg_tensor *cg__once_barrier(cg_tensor *dx, const cg_node *n, const char *rule)
{
  pthread_once(&barrier_once, register_barrier_gradient);
  cg_tensor *small[9], **in = n->n_in < 9 ? small : cg__malloc((size_t)(n->n_in + 1) * sizeof *in);
  if (!in) return NULL;
  in[0] = dx;
  for (int i = 0; i < n->n_in; i++) in[i + 1] = n->in[i];
  cg_attrs a = {0};
  cg_attrs_set_int(&a, "rule", (int64_t)(intptr_t)rule); /* an interned, never-freed name */
  cg_tensor *y = cg_apply(&barrier, in, n->n_in + 1, &a);
  if (in != small) free(in);
  return y;
}

/* --- needs_input_grad ------------------------------------------------------------------------ */

int (cg_node_needs_input_grad)(const cg_node *op, int i) { return cg__node_needs_input_grad(op, i); }

int cg_ctx_needs_input_grad(const cg_ctx *ctx, int i)
{
  const cg_thread_state *s = cg__tls();
  const cg_node *n = s->grad_node;
  if (!ctx || !n || !n->custom || cg__custom_ctx(n->custom) != ctx) return ctx != NULL;
  return i >= 0 && i < n->n_in && s->grad_needs ? s->grad_needs[i] : 0;
}

/* serialize.c - cg_graph_save: a graph as the line-based text of docs/graph-format.md, with
 * ops, gradients and attributes by name and constants written exactly. Nodes that cannot be
 * re-bound by name (custom gradients, traced functions, variable reads) are refused before
 * anything is written; the file appears whole or not at all. Reading is serialize_read.c. */
#include "serialize.h"
#include "../io/atomic_file.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  const cg_graph *g;
  cg_idmap constants; /* tensor id -> index + 1 */
  cg_tensor **consts; /* in order of first use */
  size_t n_consts, cap_consts;
} saver;

static cg_status refuse(const cg_node *n, size_t k)
{
  if (n->custom)
    return cg_set_error(CG_EINVAL, "cg_graph_save: node %zu (%s) is a custom gradient: its C "
                                   "callbacks cannot be saved by name", k, n->type);
  if (strcmp(n->type, "ReadVariable") == 0)
    return cg_set_error(CG_EINVAL, "cg_graph_save: node %zu (ReadVariable) reads a variable: "
                                   "variables are not part of a graph file; feed their values "
                                   "through placeholders (and keep them with cg_checkpoint_save)", k);
  return cg_set_error(CG_EINVAL, "cg_graph_save: node %zu (%s) is not an op of the registry "
                                 "(a traced function or an internal op) and cannot be saved by name",
                      k, n->type);
}

static cg_status add_constant(saver *s, cg_tensor *t)
{
  if (cg__idmap_get(&s->constants, t->id)) return CG_OK;
  if (s->n_consts == s->cap_consts) {
    size_t cap = s->cap_consts ? 2 * s->cap_consts : 16;
    cg_tensor **c = cg__realloc(s->consts, cap * sizeof *c);
    if (!c) return CG_ENOMEM;
    s->consts = c;
    s->cap_consts = cap;
  }
  s->consts[s->n_consts++] = t;
  return cg__idmap_put(&s->constants, t->id, (void *)(uintptr_t)s->n_consts);
}

static long placeholder_index(const cg_graph *g, const cg_tensor *t)
{
  for (size_t i = 0; i < g->n_placeholders; i++)
    if (g->placeholders[i] == t) return (long)i;
  return -1;
}

/* The registry's op of n's type is n's op (built-ins run a static def the registry copied). */
static bool registered(const cg_node *n)
{
  const cg_op_def *def = n->custom ? NULL : cg_find_op(n->type);
  return def && def->infer == n->def->infer && def->run == n->def->run && def->flags == n->def->flags;
}

/* Every node must be re-bindable and every input known, before a byte is written. */
static cg_status check_and_number(saver *s)
{
  const cg_graph *g = s->g;
  for (size_t k = 0; k < g->n_nodes; k++) {
    const cg_node *n = g->nodes[k];
    if (!registered(n)) return refuse(n, k);
    const cg_attrs *a = n->attrs;
    for (int i = 0; a && i < a->n; i++)
      if (a->items[i].kind < CG_ATTR_INT || a->items[i].kind > CG_ATTR_FLOAT)
        return cg_set_error(CG_EINVAL, "cg_graph_save: node %zu (%s): attribute '%.15s' has no kind",
                            k, n->type, a->items[i].name);
    for (int i = 0; i < n->n_in; i++) {
      cg_tensor *t = n->in[i];
      bool ok = !t->graph ? add_constant(s, t) == CG_OK
                : t->graph != g ? false
                : t->producer ? t->producer->graph_index < g->n_nodes &&
                                    t->producer == g->nodes[t->producer->graph_index]
                              : placeholder_index(g, t) >= 0;
      if (!ok)
        return cg_last_status() == CG_ENOMEM
                   ? CG_ENOMEM
                   : cg_set_error(CG_EINVAL, "cg_graph_save: input %d of node %zu (%s) is a tensor "
                                             "the graph does not hold", i, k, n->type);
    }
  }
  return CG_OK;
}

/* --- writing ------------------------------------------------------------------------------ */

static void write_ref(FILE *f, const saver *s, const cg_tensor *t)
{
  if (!t->graph) fprintf(f, " c%zu", (size_t)(uintptr_t)cg__idmap_get(&s->constants, t->id) - 1);
  else if (t->producer) fprintf(f, " n%zu:%d", t->producer->graph_index, t->out_index);
  else fprintf(f, " p%ld", placeholder_index(s->g, t));
}

static void write_constant(FILE *f, size_t k, const cg_tensor *t)
{
  fprintf(f, "constant %zu %s ", k, cg_dtype_name(t->dtype));
  cg__write_shape(f, t->ndim, t->shape);
  fputc('\n', f);
  for (int64_t i = 0; i < t->size; i++) {
    fputs(i % CG_GRAPH_VALUES_PER_LINE == 0 ? "  values " : " ", f);
    cg__write_element(f, t->dtype, t->data, i);
    if (i % CG_GRAPH_VALUES_PER_LINE == CG_GRAPH_VALUES_PER_LINE - 1 || i == t->size - 1) fputc('\n', f);
  }
}

static void write_attr(FILE *f, const cg_attr *a)
{
  char name[sizeof a->name + 1];
  memcpy(name, a->name, sizeof a->name);
  name[sizeof a->name] = 0;
  fputs("  attr ", f);
  cg__write_name(f, name);
  if (a->kind == CG_ATTR_INT) {
    fprintf(f, " int %lld\n", (long long)(a->n > 0 ? a->ints[0] : 0));
  } else if (a->kind == CG_ATTR_INTS) {
    int n = a->n < 0 ? 0 : a->n > CG_ATTR_INTS_MAX ? CG_ATTR_INTS_MAX : a->n;
    fputs(" ints", f);
    for (int i = 0; i < n; i++) fprintf(f, " %lld", (long long)a->ints[i]);
    fputc('\n', f);
  } else {
    fputs(" float ", f);
    cg__write_f64(f, a->f);
    fputc('\n', f);
  }
}

static void write_node(FILE *f, const saver *s, size_t k, const cg_node *n)
{
  fprintf(f, "node %zu ", k);
  cg__write_name(f, n->type);
  fputc('\n', f);
  if (!(n->def->flags & CG_OP_NOT_DIFFERENTIABLE)) {
    /* "-": the op's own gradient, not registered when saved (bound when registered, as the
       original would be); any other name must be registered when the file is loaded */
    bool own_missing = n->grad_name && strcmp(n->grad_name, n->type) == 0 && !cg_has_gradient(n->grad_name);
    fputs("  grad ", f);
    if (!n->grad_name || own_missing) fputc('-', f);
    else cg__write_name(f, n->grad_name);
    fputc('\n', f);
  }
  if (n->made_by && cg_has_gradient(n->made_by)) { /* (a cosmetic mark, kept where it re-binds) */
    fputs("  by ", f);
    cg__write_name(f, n->made_by);
    fputc('\n', f);
  }
  fputs("  in", f);
  for (int i = 0; i < n->n_in; i++) write_ref(f, s, n->in[i]);
  fputc('\n', f);
  for (int i = 0; n->attrs && i < n->attrs->n && i < CG_ATTR_MAX; i++) write_attr(f, &n->attrs->items[i]);
  for (int o = 0; o < n->n_out; o++) {
    const cg_tensor *t = n->out[o];
    fprintf(f, "  out %s ", cg_dtype_name(t->dtype));
    cg__write_shape(f, t->ndim, t->shape);
    if (t->name) {
      fputc(' ', f);
      cg__write_name(f, t->name);
    }
    fputc('\n', f);
  }
}

static void write_graph(FILE *f, const saver *s)
{
  const cg_graph *g = s->g;
  fprintf(f, "%s %d\n", CG_GRAPH_MAGIC, CG_GRAPH_VERSION);
  unsigned o = g->options & (CG_GRAPH_CSE | CG_GRAPH_FOLD_CONSTANTS);
  fprintf(f, "options %s\n", o == 0 ? "none" : o == CG_GRAPH_CSE ? "cse"
                             : o == CG_GRAPH_FOLD_CONSTANTS ? "fold_constants" : "cse,fold_constants");
  for (size_t i = 0; i < g->n_placeholders; i++) {
    const cg_tensor *p = g->placeholders[i];
    fprintf(f, "placeholder %zu ", i);
    cg__write_name(f, p->name ? p->name : "");
    fprintf(f, " %s ", cg_dtype_name(p->dtype));
    cg__write_shape(f, p->ndim, p->shape);
    fputc('\n', f);
  }
  for (size_t k = 0; k < s->n_consts; k++) write_constant(f, k, s->consts[k]);
  for (size_t k = 0; k < g->n_nodes; k++) write_node(f, s, k, g->nodes[k]);
  fputs("end\n", f);
}

/* --- the file ----------------------------------------------------------------------------- */

static cg_status write_atomically(const saver *s, const char *path)
{
  cg_atomic_file a;
  cg_status st = cg__atomic_begin(&a, path, "cg_graph_save");
  if (st != CG_OK) return st;
  write_graph(a.f, s);
  if (ferror(a.f)) st = cg__atomic_io_error(&a, "write", a.tmp);
  return cg__atomic_end(&a, st);
}

cg_status cg_graph_save(const cg_graph *g, const char *path)
{
  if (!g || !path) return cg_set_error(CG_EINVAL, "cg_graph_save: graph and path are required");
  saver s = {.g = g};
  cg_status st = check_and_number(&s);
  if (st == CG_ENOMEM && cg_last_status() != CG_ENOMEM)
    cg_set_error(CG_ENOMEM, "cg_graph_save: out of memory");
  if (st == CG_OK) st = write_atomically(&s, path);
  cg__idmap_free(&s.constants);
  free(s.consts);
  return st;
}

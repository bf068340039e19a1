/* serialize_node.c - one node of a graph file: its lines parsed (op type, gradient, inputs
 * by reference, attributes, outputs), then the op called through the dispatcher with the
 * node's gradient override in force, so the loaded graph differentiates like the one saved;
 * the outputs the shape rule gives must be those the file declares. */
#include "serialize_read.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
  size_t index;
  long line_no;       /* of the 'node' line, for errors about the whole node */
  char *type, *by;
  bool has_grad;      /* a 'grad' line was given ...                                    */
  char *grad;         /* ... naming this gradient, or NULL for '-' (the op's own)       */
  cg_tensor **in;
  int n_in;
  cg_attrs attrs;
  int n_out;
  cg_dtype out_dtype[CG_MAX_OUTPUTS];
  int out_ndim[CG_MAX_OUTPUTS];
  int64_t out_shape[CG_MAX_OUTPUTS][CG_MAX_DIMS];
  char *out_name[CG_MAX_OUTPUTS];
} node_text;

static void node_text_free(node_text *n)
{
  free(n->type);
  free(n->grad);
  free(n->by);
  free(n->in);
  for (int o = 0; o < n->n_out; o++) free(n->out_name[o]);
}

/* p<k>, c<k> or n<k>:<o> */
static cg_tensor *resolve(cg_loader *L, const char *ref)
{
  int64_t k, o;
  const char *colon = strchr(ref, ':');
  if (ref[0] == 'p' && cg__parse_int(ref + 1, 0, INT64_MAX, &k))
    return (uint64_t)k < L->g->n_placeholders ? L->g->placeholders[k] : NULL;
  if (ref[0] == 'c' && cg__parse_int(ref + 1, 0, INT64_MAX, &k))
    return (uint64_t)k < L->n_consts ? L->consts[k] : NULL;
  if (ref[0] != 'n' || !colon || colon - ref > 20 ||
      !cg__parse_int(colon + 1, 0, CG_MAX_OUTPUTS - 1, &o))
    return NULL;
  char digits[24];
  memcpy(digits, ref + 1, (size_t)(colon - ref - 1));
  digits[colon - ref - 1] = 0;
  if (!cg__parse_int(digits, 0, INT64_MAX, &k) || (uint64_t)k >= L->g->n_nodes) return NULL;
  const cg_node *n = L->g->nodes[k];
  return o < n->n_out ? n->out[o] : NULL;
}

static cg_status parse_inputs(cg_loader *L, node_text *n)
{
  if (!cg__load_keyword(L, "in"))
    return cg__load_fail(L, CG_EINVAL, "expected the node's 'in' line");
  n->n_in = L->n_tok - 1;
  n->in = cg__malloc((size_t)(n->n_in ? n->n_in : 1) * sizeof *n->in);
  if (!n->in) return cg__load_fail(L, CG_ENOMEM, "out of memory");
  for (int i = 0; i < n->n_in; i++)
    if (!(n->in[i] = resolve(L, L->tok[i + 1])))
      return cg__load_fail(L, CG_EINVAL, "input %d: '%s' names no placeholder, constant or "
                                         "earlier node output", i, L->tok[i + 1]);
  return CG_OK;
}

static cg_status parse_attr(cg_loader *L, node_text *n)
{
  if (L->n_tok < 3 || !cg__parse_name(L->tok[1]))
    return cg__load_fail(L, CG_EINVAL, "expected 'attr \"<name>\" int|ints|float <values>'");
  const char *name = L->tok[1];
  cg_status st = CG_OK;
  int64_t ints[CG_ATTR_INTS_MAX];
  int n_vals = L->n_tok - 3;
  double f;
  if (cg_attrs_find(&n->attrs, name)) {
    st = cg__load_fail(L, CG_EINVAL, "attribute '%s' is given twice", name);
  } else if (strcmp(L->tok[2], "int") == 0 || strcmp(L->tok[2], "ints") == 0) {
    bool one = strcmp(L->tok[2], "int") == 0;
    if (one ? n_vals != 1 : n_vals > CG_ATTR_INTS_MAX)
      st = cg__load_fail(L, CG_EINVAL, "attribute '%s': %s takes %s, not %d values", name, L->tok[2],
                         one ? "one value" : "at most 16", n_vals);
    for (int i = 0; i < n_vals && st == CG_OK; i++)
      if (!cg__parse_int(L->tok[3 + i], INT64_MIN, INT64_MAX, &ints[i]))
        st = cg__load_fail(L, CG_EINVAL, "attribute '%s': '%s' is not a 64-bit integer", name, L->tok[3 + i]);
    if (st == CG_OK && (one ? cg_attrs_set_int(&n->attrs, name, ints[0])
                            : cg_attrs_set_ints(&n->attrs, name, ints, n_vals)) != CG_OK)
      st = cg__load_fail_with_last(L, "attr");
  } else if (strcmp(L->tok[2], "float") == 0) {
    if (n_vals != 1 || !cg__parse_f64(L->tok[3], &f))
      st = cg__load_fail(L, CG_EINVAL, "attribute '%s': float takes one number (a hex float, "
                                       "or nan:<bits>)", name);
    else if (cg_attrs_set_float(&n->attrs, name, f) != CG_OK)
      st = cg__load_fail_with_last(L, "attr");
  } else {
    st = cg__load_fail(L, CG_EINVAL, "attribute '%s': unknown kind '%s' (int, ints or float)",
                       name, L->tok[2]);
  }
  return st;
}

static cg_status parse_output(cg_loader *L, node_text *n)
{
  int o = n->n_out;
  if (o == CG_MAX_OUTPUTS) return cg__load_fail(L, CG_EINVAL, "more than %d outputs", CG_MAX_OUTPUTS);
  if ((L->n_tok != 3 && L->n_tok != 4) || !cg__parse_dtype(L->tok[1], &n->out_dtype[o]) ||
      !cg__parse_shape(L->tok[2], -1, &n->out_ndim[o], n->out_shape[o]) ||
      (L->n_tok == 4 && !cg__parse_name(L->tok[3])))
    return cg__load_fail(L, CG_EINVAL, "expected 'out <dtype> [<dims>]' and perhaps a \"<name>\"");
  if (cg__load_too_large(n->out_ndim[o], n->out_shape[o]))
    return cg__load_fail(L, CG_EINVAL, "output %d: its shape has too many elements", o);
  if (L->n_tok == 4 && !(n->out_name[o] = cg__load_keep(L->tok[3])))
    return cg__load_fail(L, CG_ENOMEM, "out of memory");
  n->n_out++;
  return CG_OK;
}

/* node <index> "<type>", then grad?, by?, in, attr*, out+ */
static cg_status parse_node_text(cg_loader *L, node_text *n)
{
  cg_status st = cg__load_check_index(L, L->g->n_nodes);
  if (st != CG_OK) return st;
  n->index = L->g->n_nodes;
  n->line_no = L->line_no;
  if (L->n_tok != 3 || !cg__parse_name(L->tok[2]))
    return cg__load_fail(L, CG_EINVAL, "expected 'node <index> \"<op type>\"'");
  if (!(n->type = cg__load_keep(L->tok[2]))) return cg__load_fail(L, CG_ENOMEM, "out of memory");
  if ((st = cg__load_need_line(L, "the node's 'in' line")) != CG_OK) return st;
  if (cg__load_keyword(L, "grad")) {
    bool own = L->n_tok == 2 && strcmp(L->tok[1], "-") == 0;
    if (L->n_tok != 2 || (!own && !cg__parse_name(L->tok[1])))
      return cg__load_fail(L, CG_EINVAL, "expected 'grad \"<gradient name>\"' or 'grad -'");
    if (!own && !(n->grad = cg__load_keep(L->tok[1]))) return cg__load_fail(L, CG_ENOMEM, "out of memory");
    n->has_grad = true;
    if ((st = cg__load_need_line(L, "the node's 'in' line")) != CG_OK) return st;
  }
  if (cg__load_keyword(L, "by")) {
    if (L->n_tok != 2 || !cg__parse_name(L->tok[1]))
      return cg__load_fail(L, CG_EINVAL, "expected 'by \"<gradient name>\"'");
    if (!(n->by = cg__load_keep(L->tok[1]))) return cg__load_fail(L, CG_ENOMEM, "out of memory");
    if ((st = cg__load_need_line(L, "the node's 'in' line")) != CG_OK) return st;
  }
  if ((st = parse_inputs(L, n)) != CG_OK) return st;
  for (;;) {
    if ((st = cg__load_need_line(L, "the node's 'out' lines")) != CG_OK) return st;
    if (!cg__load_keyword(L, "attr")) break;
    if ((st = parse_attr(L, n)) != CG_OK) return st;
  }
  while (cg__load_keyword(L, "out")) {
    if ((st = parse_output(L, n)) != CG_OK) return st;
    if ((st = cg__load_need_line(L, "the next node or 'end'")) != CG_OK) return st;
  }
  if (n->n_out == 0) return cg__load_fail(L, CG_EINVAL, "expected an 'out' line (every node has outputs)");
  L->pushed_back = true; /* the next node, or end */
  return CG_OK;
}

/* The registry's gradient of that name, interned; NULL (an error naming it) if unregistered. */
static const char *registered_gradient(cg_loader *L, const node_text *n, const char *name)
{
  if (cg_has_gradient(name)) {
    cg_grad_entry *e = cg__gradient_entry(name);
    if (e) return e->name;
  }
  cg__load_fail(L, CG_ENOTFOUND, "node %zu (%s): gradient '%s' is not registered (register it "
                                 "with cg_register_gradient before loading the graph)",
                n->index, n->type, name);
  return NULL;
}

static cg_status check_outputs(cg_loader *L, const node_text *n, cg_tensor **out, int n_out)
{
  char a[160], b[160];
  if (n_out != n->n_out)
    return cg__load_fail(L, CG_EINVAL, "node %zu (%s) has %d outputs, the file says %d", n->index,
                         n->type, n_out, n->n_out);
  for (int o = 0; o < n_out; o++) {
    const cg_tensor *t = out[o];
    const int64_t *want = n->out_shape[o];
    if (t->dtype == n->out_dtype[o] && cg__shape_equal(t->ndim, t->shape, n->out_ndim[o], want)) continue;
    return cg__load_fail(L, CG_EINVAL, "node %zu (%s): output %d is %s %s, the file says %s %s",
                         n->index, n->type, o, cg_dtype_name(t->dtype),
                         cg__fmt_shape(t->ndim, t->shape, a, sizeof a), cg_dtype_name(n->out_dtype[o]),
                         cg__fmt_shape(n->out_ndim[o], want, b, sizeof b));
  }
  return CG_OK;
}

/* Adds the node by calling its op through the dispatcher, its gradient override in force. */
static cg_status build_node(cg_loader *L, node_text *n)
{
  long line = L->line_no;
  L->line_no = n->line_no;
  cg_status st = CG_OK;
  const cg_op_def *def = cg_find_op(n->type);
  bool differentiable = def && !(def->flags & CG_OP_NOT_DIFFERENTIABLE);
  const char *by = NULL;
  if (!def)
    st = cg__load_fail(L, CG_ENOTFOUND, "node %zu: unknown op type '%s' (register it, or load its "
                                        "op library, before loading the graph)", n->index, n->type);
  else if (differentiable && !n->has_grad)
    st = cg__load_fail(L, CG_EINVAL, "node %zu (%s) needs a 'grad' line", n->index, n->type);
  else if (!differentiable && n->has_grad)
    st = cg__load_fail(L, CG_EINVAL, "node %zu (%s) is not differentiable and takes no 'grad' line",
                       n->index, n->type);
  else if (n->grad && !registered_gradient(L, n, n->grad))
    st = cg_last_status();
  else if (n->by && !(by = registered_gradient(L, n, n->by)))
    st = cg_last_status();
  if (st == CG_OK && differentiable && /* the gradient this node had, whatever is in force now */
      cg_gradient_override_push(def->name, n->grad ? n->grad : def->name) != CG_OK)
    st = cg__load_fail_with_last(L, "node");
  if (st == CG_OK) {
    cg_thread_state *ts = cg__tls();
    const char *outer = ts->building_gradient;
    ts->building_gradient = by;
    cg_tensor *out[CG_MAX_OUTPUTS];
    int n_out = 0;
    size_t before = L->g->n_nodes;
    st = cg_execute(def, n->in, n->n_in, n->attrs.n ? &n->attrs : NULL, out, &n_out);
    ts->building_gradient = outer;
    if (differentiable) cg_gradient_override_pop();
    if (st != CG_OK) {
      char what[160];
      snprintf(what, sizeof what, "node %zu (%s)", n->index, n->type);
      /* Shape rules report sizes that overflow as CG_ENOMEM too (cgrad.h); coming from a file
         they are bad input. A real allocation failure always says "out of memory". */
      char last[512];
      snprintf(last, sizeof last, "%s", cg_last_error());
      st = cg__load_fail(L, st == CG_ENOMEM && !strstr(last, "out of memory") ? CG_EINVAL : st,
                         "%s: %s", what, last);
    } else if (L->g->n_nodes != before + 1) {
      st = cg__load_fail(L, CG_ESTATE, "node %zu (%s) did not become one graph node", n->index, n->type);
    } else {
      st = check_outputs(L, n, out, n_out);
    }
    for (int o = 0; o < n_out && st == CG_OK; o++) { /* names as saved, duplicates and all */
      out[o]->name = n->out_name[o];
      n->out_name[o] = NULL;
    }
  }
  L->line_no = line;
  return st;
}

cg_status cg__load_node(cg_loader *L)
{
  node_text n = {0};
  cg_status st = parse_node_text(L, &n);
  if (st == CG_OK) st = build_node(L, &n);
  node_text_free(&n);
  return st;
}

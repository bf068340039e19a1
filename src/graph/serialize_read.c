/* serialize_read.c - cg_graph_load: parses the text of docs/graph-format.md strictly (every
 * malformed line is an error naming its number) and rebuilds the graph by calling each op
 * through the dispatcher with the node's gradient override in force, so a loaded graph runs
 * and differentiates like the one saved. Memory stays proportional to the file's size. */
#include "serialize.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *path;
  char *text;
  size_t len, pos;
  long line_no;
  char *line;          /* the current line, split in place into tokens */
  size_t cap_line;
  char **tok;
  int n_tok, cap_tok;
  bool pushed_back;    /* the current line is to be read again */
  cg_graph *g;
  cg_tensor **consts;  /* owned references */
  size_t n_consts, cap_consts;
} loader;

/* --- errors ------------------------------------------------------------------------------ */

static cg_status fail(loader *L, cg_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static cg_status fail(loader *L, cg_status code, const char *fmt, ...)
{
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (L->line_no) return cg_set_error(code, "cg_graph_load: %s:%ld: %s", L->path, L->line_no, msg);
  return cg_set_error(code, "cg_graph_load: %s: %s", L->path, msg);
}

/* The pending error's message (copied: fail() writes the same buffer). */
static cg_status fail_with_last(loader *L, const char *what)
{
  char last[512];
  snprintf(last, sizeof last, "%s", cg_last_error());
  cg_status st = cg_last_status() ? cg_last_status() : CG_EINVAL;
  return fail(L, st, "%s: %s", what, last);
}

/* --- lines and tokens -------------------------------------------------------------------- */

static cg_status read_file(loader *L)
{
  FILE *f = fopen(L->path, "rb");
  if (!f) return fail(L, CG_EIO, "cannot open the file");
  size_t cap = 1 << 16;
  L->text = cg__malloc(cap);
  cg_status st = L->text ? CG_OK : CG_ENOMEM;
  while (st == CG_OK) {
    if (L->len == cap) {
      char *more = cap < SIZE_MAX / 2 ? cg__realloc(L->text, cap * 2) : NULL;
      if (!more) {
        st = fail(L, CG_ENOMEM, "out of memory reading the file");
        break;
      }
      L->text = more;
      cap *= 2;
    }
    size_t got = fread(L->text + L->len, 1, cap - L->len, f);
    L->len += got;
    if (got == 0) {
      if (ferror(f)) st = fail(L, CG_EIO, "read error");
      break;
    }
  }
  fclose(f);
  return st;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* The next line that is not blank or a comment, split into tokens; false at the end. */
static cg_status next_line(loader *L, bool *eof)
{
  if (L->pushed_back) {
    L->pushed_back = false;
    *eof = false;
    return CG_OK;
  }
  for (;;) {
    if (L->pos >= L->len) {
      *eof = true;
      return CG_OK;
    }
    const char *start = L->text + L->pos, *nl = memchr(start, '\n', L->len - L->pos);
    size_t n = nl ? (size_t)(nl - start) : L->len - L->pos;
    L->pos += n + (nl != NULL);
    L->line_no++;
    if (memchr(start, 0, n)) return fail(L, CG_EINVAL, "a NUL byte in the line");
    if (n + 1 > L->cap_line) {
      char *line = cg__realloc(L->line, n + 1);
      if (!line) return fail(L, CG_ENOMEM, "out of memory");
      L->line = line;
      L->cap_line = n + 1;
    }
    memcpy(L->line, start, n);
    L->line[n] = 0;
    L->n_tok = 0;
    for (char *p = L->line; *p;) {
      while (is_space(*p)) *p++ = 0;
      if (!*p) break;
      if (L->n_tok == L->cap_tok) {
        int cap = L->cap_tok ? 2 * L->cap_tok : 32;
        char **tok = cg__realloc(L->tok, (size_t)cap * sizeof *tok);
        if (!tok) return fail(L, CG_ENOMEM, "out of memory");
        L->tok = tok;
        L->cap_tok = cap;
      }
      L->tok[L->n_tok++] = p;
      while (*p && !is_space(*p)) p++;
    }
    if (L->n_tok == 0 || L->tok[0][0] == '#') continue;
    *eof = false;
    return CG_OK;
  }
}

static bool keyword(const loader *L, const char *k) { return strcmp(L->tok[0], k) == 0; }

/* A copy of s that outlives the line (NULL, with CG_ENOMEM pending, if none can be made). */
static char *keep(const char *s)
{
  size_t n = strlen(s) + 1;
  char *c = cg__malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

/* A line that must exist (the file may not end here). */
static cg_status need_line(loader *L, const char *what)
{
  bool eof;
  cg_status st = next_line(L, &eof);
  if (st == CG_OK && eof) st = fail(L, CG_EINVAL, "the file ends where %s was expected (truncated?)", what);
  return st;
}

/* --- header, placeholders, constants ------------------------------------------------------ */

static cg_status parse_header(loader *L)
{
  cg_status st = need_line(L, "the header '" CG_GRAPH_MAGIC " 1'");
  if (st != CG_OK) return st;
  int64_t version;
  if (!keyword(L, CG_GRAPH_MAGIC) || L->n_tok != 2 || !cg__parse_int(L->tok[1], 0, INT32_MAX, &version))
    return fail(L, CG_EINVAL, "not a cgrad graph file (the first line must be '" CG_GRAPH_MAGIC " 1')");
  if (version != CG_GRAPH_VERSION)
    return fail(L, CG_EINVAL, "format version %lld; this cgrad reads version %d", (long long)version,
                CG_GRAPH_VERSION);
  if ((st = need_line(L, "the options line")) != CG_OK) return st;
  static const char *const options[4] = {"none", "cse", "fold_constants", "cse,fold_constants"};
  for (unsigned o = 0; o < 4; o++)
    if (keyword(L, "options") && L->n_tok == 2 && strcmp(L->tok[1], options[o]) == 0)
      return cg_graph_set_options(L->g, o);
  return fail(L, CG_EINVAL, "expected 'options none|cse|fold_constants|cse,fold_constants'");
}

/* A shape whose known dims multiply past what a tensor may hold is malformed input (the
 * library reports such sizes as CG_ENOMEM where they are computed; here it is the file). */
static bool too_large(int ndim, const int64_t *shape)
{
  int64_t known[CG_MAX_DIMS], size;
  for (int i = 0; i < ndim; i++) known[i] = shape[i] < 0 ? 1 : shape[i];
  if (cg__shape_size("shape", ndim, known, &size) == CG_OK) return false;
  cg_clear_error();
  return true;
}

/* "<keyword> <index>": the index must be the next one. */
static cg_status check_index(loader *L, size_t expected)
{
  int64_t k;
  if (L->n_tok < 2 || !cg__parse_int(L->tok[1], 0, INT64_MAX, &k))
    return fail(L, CG_EINVAL, "'%s' needs an index", L->tok[0]);
  if ((uint64_t)k != expected)
    return fail(L, CG_EINVAL, "%s %lld is out of order (expected %s %zu)", L->tok[0], (long long)k,
                L->tok[0], expected);
  return CG_OK;
}

static cg_status parse_placeholder(loader *L)
{
  cg_status st = check_index(L, L->g->n_placeholders);
  if (st != CG_OK) return st;
  cg_dtype d;
  int ndim;
  int64_t shape[CG_MAX_DIMS];
  if (L->n_tok != 5 || !cg__parse_name(L->tok[2]) || !cg__parse_dtype(L->tok[3], &d) ||
      !cg__parse_shape(L->tok[4], -1, &ndim, shape))
    return fail(L, CG_EINVAL, "expected 'placeholder <index> \"<name>\" <dtype> [<dims>]'");
  if (too_large(ndim, shape)) return fail(L, CG_EINVAL, "placeholder %zu: its shape has too many elements", L->g->n_placeholders);
  return cg_placeholder(d, ndim, shape, L->tok[2]) ? CG_OK : fail_with_last(L, "placeholder");
}

static cg_status parse_constant(loader *L)
{
  cg_status st = check_index(L, L->n_consts);
  if (st != CG_OK) return st;
  cg_dtype d;
  int ndim;
  int64_t shape[CG_MAX_DIMS], size;
  if (L->n_tok != 4 || !cg__parse_dtype(L->tok[2], &d) || !cg__parse_shape(L->tok[3], 0, &ndim, shape))
    return fail(L, CG_EINVAL, "expected 'constant <index> <dtype> [<dims>]'");
  if (too_large(ndim, shape) || cg__shape_size("constant", ndim, shape, &size) != CG_OK)
    return fail(L, CG_EINVAL, "constant %zu: its shape has too many elements", L->n_consts);
  /* every value takes at least two bytes of the file: a bound before allocating */
  if ((uint64_t)size > (L->len - L->pos) / 2 + 1)
    return fail(L, CG_EINVAL, "constant %zu has %lld elements, more than the rest of the file holds",
                L->n_consts, (long long)size);
  if (L->n_consts == L->cap_consts) {
    size_t cap = L->cap_consts ? 2 * L->cap_consts : 16;
    cg_tensor **c = cg__realloc(L->consts, cap * sizeof *c);
    if (!c) return fail(L, CG_ENOMEM, "out of memory");
    L->consts = c;
    L->cap_consts = cap;
  }
  cg_tensor *t = cg__tensor_new(d, ndim, shape);
  if (!t) return fail_with_last(L, "constant");
  L->consts[L->n_consts++] = t;
  for (int64_t filled = 0; filled < size;) {
    if ((st = need_line(L, "the constant's values")) != CG_OK) return st;
    if (!keyword(L, "values") || L->n_tok < 2)
      return fail(L, CG_EINVAL, "constant %zu needs %lld values, the file gives %lld",
                  L->n_consts - 1, (long long)size, (long long)filled);
    for (int i = 1; i < L->n_tok; i++, filled++) {
      if (filled == size)
        return fail(L, CG_EINVAL, "constant %zu has more than its %lld values", L->n_consts - 1, (long long)size);
      if (!cg__parse_element(L->tok[i], d, t->data, filled))
        return fail(L, CG_EINVAL, "'%s' is not a %s value", L->tok[i], cg_dtype_name(d));
    }
  }
  return CG_OK;
}

/* --- nodes ---------------------------------------------------------------------------------- */

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
static cg_tensor *resolve(loader *L, const char *ref)
{
  int64_t k, o;
  const char *colon = strchr(ref, ':');
  if (ref[0] == 'p' && cg__parse_int(ref + 1, 0, INT64_MAX, &k))
    return (uint64_t)k < L->g->n_placeholders ? L->g->placeholders[k] : NULL;
  if (ref[0] == 'c' && cg__parse_int(ref + 1, 0, INT64_MAX, &k))
    return (uint64_t)k < L->n_consts ? L->consts[k] : NULL;
  if (ref[0] != 'n' || !colon || colon - ref > 20 || !cg__parse_int(colon + 1, 0, CG_MAX_OUTPUTS - 1, &o))
    return NULL;
  char digits[24];
  memcpy(digits, ref + 1, (size_t)(colon - ref - 1));
  digits[colon - ref - 1] = 0;
  if (!cg__parse_int(digits, 0, INT64_MAX, &k) || (uint64_t)k >= L->g->n_nodes) return NULL;
  const cg_node *n = L->g->nodes[k];
  return o < n->n_out ? n->out[o] : NULL;
}

static cg_status parse_inputs(loader *L, node_text *n)
{
  if (!keyword(L, "in")) return fail(L, CG_EINVAL, "expected the node's 'in' line");
  n->n_in = L->n_tok - 1;
  n->in = cg__malloc((size_t)(n->n_in ? n->n_in : 1) * sizeof *n->in);
  if (!n->in) return fail(L, CG_ENOMEM, "out of memory");
  for (int i = 0; i < n->n_in; i++)
    if (!(n->in[i] = resolve(L, L->tok[i + 1])))
      return fail(L, CG_EINVAL, "input %d: '%s' names no placeholder, constant or earlier node output",
                  i, L->tok[i + 1]);
  return CG_OK;
}

static cg_status parse_attr(loader *L, node_text *n)
{
  if (L->n_tok < 3 || !cg__parse_name(L->tok[1]))
    return fail(L, CG_EINVAL, "expected 'attr \"<name>\" int|ints|float <values>'");
  const char *name = L->tok[1];
  cg_status st = CG_OK;
  int64_t ints[CG_ATTR_INTS_MAX];
  int n_vals = L->n_tok - 3;
  double f;
  if (cg_attrs_find(&n->attrs, name)) {
    st = fail(L, CG_EINVAL, "attribute '%s' is given twice", name);
  } else if (strcmp(L->tok[2], "int") == 0 || strcmp(L->tok[2], "ints") == 0) {
    bool one = strcmp(L->tok[2], "int") == 0;
    if (one ? n_vals != 1 : n_vals > CG_ATTR_INTS_MAX)
      st = fail(L, CG_EINVAL, "attribute '%s': %s takes %s, not %d values", name, L->tok[2],
                one ? "one value" : "at most 16", n_vals);
    for (int i = 0; i < n_vals && st == CG_OK; i++)
      if (!cg__parse_int(L->tok[3 + i], INT64_MIN, INT64_MAX, &ints[i]))
        st = fail(L, CG_EINVAL, "attribute '%s': '%s' is not a 64-bit integer", name, L->tok[3 + i]);
    if (st == CG_OK && (one ? cg_attrs_set_int(&n->attrs, name, ints[0])
                            : cg_attrs_set_ints(&n->attrs, name, ints, n_vals)) != CG_OK)
      st = fail_with_last(L, "attr");
  } else if (strcmp(L->tok[2], "float") == 0) {
    if (n_vals != 1 || !cg__parse_f64(L->tok[3], &f))
      st = fail(L, CG_EINVAL, "attribute '%s': float takes one number (a hex float, or nan:<bits>)", name);
    else if (cg_attrs_set_float(&n->attrs, name, f) != CG_OK)
      st = fail_with_last(L, "attr");
  } else {
    st = fail(L, CG_EINVAL, "attribute '%s': unknown kind '%s' (int, ints or float)", name, L->tok[2]);
  }
  return st;
}

static cg_status parse_output(loader *L, node_text *n)
{
  int o = n->n_out;
  if (o == CG_MAX_OUTPUTS) return fail(L, CG_EINVAL, "more than %d outputs", CG_MAX_OUTPUTS);
  if ((L->n_tok != 3 && L->n_tok != 4) || !cg__parse_dtype(L->tok[1], &n->out_dtype[o]) ||
      !cg__parse_shape(L->tok[2], -1, &n->out_ndim[o], n->out_shape[o]) ||
      (L->n_tok == 4 && !cg__parse_name(L->tok[3])))
    return fail(L, CG_EINVAL, "expected 'out <dtype> [<dims>]' and perhaps a \"<name>\"");
  if (too_large(n->out_ndim[o], n->out_shape[o]))
    return fail(L, CG_EINVAL, "output %d: its shape has too many elements", o);
  if (L->n_tok == 4 && !(n->out_name[o] = keep(L->tok[3]))) return fail(L, CG_ENOMEM, "out of memory");
  n->n_out++;
  return CG_OK;
}

/* node <index> "<type>", then grad?, by?, in, attr*, out+ */
static cg_status parse_node_text(loader *L, node_text *n)
{
  cg_status st = check_index(L, L->g->n_nodes);
  if (st != CG_OK) return st;
  n->index = L->g->n_nodes;
  n->line_no = L->line_no;
  if (L->n_tok != 3 || !cg__parse_name(L->tok[2]))
    return fail(L, CG_EINVAL, "expected 'node <index> \"<op type>\"'");
  if (!(n->type = keep(L->tok[2]))) return fail(L, CG_ENOMEM, "out of memory");
  if ((st = need_line(L, "the node's 'in' line")) != CG_OK) return st;
  if (keyword(L, "grad")) {
    bool own = L->n_tok == 2 && strcmp(L->tok[1], "-") == 0;
    if (L->n_tok != 2 || (!own && !cg__parse_name(L->tok[1])))
      return fail(L, CG_EINVAL, "expected 'grad \"<gradient name>\"' or 'grad -'");
    if (!own && !(n->grad = keep(L->tok[1]))) return fail(L, CG_ENOMEM, "out of memory");
    n->has_grad = true;
    if ((st = need_line(L, "the node's 'in' line")) != CG_OK) return st;
  }
  if (keyword(L, "by")) {
    if (L->n_tok != 2 || !cg__parse_name(L->tok[1]))
      return fail(L, CG_EINVAL, "expected 'by \"<gradient name>\"'");
    if (!(n->by = keep(L->tok[1]))) return fail(L, CG_ENOMEM, "out of memory");
    if ((st = need_line(L, "the node's 'in' line")) != CG_OK) return st;
  }
  if ((st = parse_inputs(L, n)) != CG_OK) return st;
  for (;;) {
    if ((st = need_line(L, "the node's 'out' lines")) != CG_OK) return st;
    if (!keyword(L, "attr")) break;
    if ((st = parse_attr(L, n)) != CG_OK) return st;
  }
  while (keyword(L, "out")) {
    if ((st = parse_output(L, n)) != CG_OK) return st;
    if ((st = need_line(L, "the next node or 'end'")) != CG_OK) return st;
  }
  if (n->n_out == 0) return fail(L, CG_EINVAL, "expected an 'out' line (every node has outputs)");
  L->pushed_back = true; /* the next node, or end */
  return CG_OK;
}

/* The registry's gradient of that name, interned; NULL (an error naming it) if unregistered. */
static const char *registered_gradient(loader *L, const node_text *n, const char *name)
{
  if (cg_has_gradient(name)) {
    cg_grad_entry *e = cg__gradient_entry(name);
    if (e) return e->name;
  }
  fail(L, CG_ENOTFOUND, "node %zu (%s): gradient '%s' is not registered (register it with "
                        "cg_register_gradient before loading the graph)", n->index, n->type, name);
  return NULL;
}

static cg_status check_outputs(loader *L, const node_text *n, cg_tensor **out, int n_out)
{
  char a[160], b[160];
  if (n_out != n->n_out)
    return fail(L, CG_EINVAL, "node %zu (%s) has %d outputs, the file says %d", n->index, n->type,
                n_out, n->n_out);
  for (int o = 0; o < n_out; o++) {
    const cg_tensor *t = out[o];
    if (t->dtype != n->out_dtype[o] || !cg__shape_equal(t->ndim, t->shape, n->out_ndim[o], n->out_shape[o]))
      return fail(L, CG_EINVAL, "node %zu (%s): output %d is %s %s, the file says %s %s", n->index,
                  n->type, o, cg_dtype_name(t->dtype), cg__fmt_shape(t->ndim, t->shape, a, sizeof a),
                  cg_dtype_name(n->out_dtype[o]), cg__fmt_shape(n->out_ndim[o], n->out_shape[o], b, sizeof b));
  }
  return CG_OK;
}

/* Adds the node by calling its op through the dispatcher, its gradient override in force. */
static cg_status build_node(loader *L, node_text *n)
{
  long line = L->line_no;
  L->line_no = n->line_no;
  cg_status st = CG_OK;
  const cg_op_def *def = cg_find_op(n->type);
  bool differentiable = def && !(def->flags & CG_OP_NOT_DIFFERENTIABLE);
  const char *by = NULL;
  if (!def)
    st = fail(L, CG_ENOTFOUND, "node %zu: unknown op type '%s' (register it, or load its op "
                               "library, before loading the graph)", n->index, n->type);
  else if (differentiable && !n->has_grad)
    st = fail(L, CG_EINVAL, "node %zu (%s) needs a 'grad' line", n->index, n->type);
  else if (!differentiable && n->has_grad)
    st = fail(L, CG_EINVAL, "node %zu (%s) is not differentiable and takes no 'grad' line", n->index, n->type);
  else if (n->grad && !registered_gradient(L, n, n->grad))
    st = cg_last_status();
  else if (n->by && !(by = registered_gradient(L, n, n->by)))
    st = cg_last_status();
  if (st == CG_OK && differentiable && /* the gradient this node had, whatever is in force now */
      cg_gradient_override_push(def->name, n->grad ? n->grad : def->name) != CG_OK)
    st = fail_with_last(L, "node");
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
      /* a shape rule reports sizes that overflow as CG_ENOMEM: from a file, they are bad input */
      char last[512];
      snprintf(last, sizeof last, "%s", cg_last_error());
      st = fail(L, st == CG_ENOMEM && strstr(last, "has too many elements") ? CG_EINVAL : st,
                "%s: %s", what, last);
    } else if (L->g->n_nodes != before + 1) {
      st = fail(L, CG_ESTATE, "node %zu (%s) did not become one graph node", n->index, n->type);
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

/* --- the file ------------------------------------------------------------------------------- */

static cg_status parse_body(loader *L)
{
  enum { PLACEHOLDERS, CONSTANTS, NODES } phase = PLACEHOLDERS;
  cg_status st = CG_OK;
  for (;;) {
    if ((st = need_line(L, "'end'")) != CG_OK) return st;
    if (keyword(L, "end")) {
      if (L->n_tok != 1) return fail(L, CG_EINVAL, "'end' takes nothing after it");
      bool eof;
      if ((st = next_line(L, &eof)) != CG_OK) return st;
      return eof ? CG_OK : fail(L, CG_EINVAL, "text after 'end'");
    }
    if (keyword(L, "placeholder") && phase == PLACEHOLDERS) {
      st = parse_placeholder(L);
    } else if (keyword(L, "constant") && phase <= CONSTANTS) {
      phase = CONSTANTS;
      st = parse_constant(L);
    } else if (keyword(L, "node")) {
      phase = NODES;
      node_text n = {0};
      st = parse_node_text(L, &n);
      if (st == CG_OK) st = build_node(L, &n);
      node_text_free(&n);
    } else {
      bool known = keyword(L, "placeholder") || keyword(L, "constant");
      st = fail(L, CG_EINVAL, known ? "'%s' lines come before constants and nodes (placeholders, "
                                      "then constants, then nodes)" : "unknown line '%s'",
                L->tok[0]);
    }
    if (st != CG_OK) return st;
  }
}

cg_graph *cg_graph_load(const char *path)
{
  if (!path) {
    cg_set_error(CG_EINVAL, "cg_graph_load: path is NULL");
    return NULL;
  }
  loader L = {.path = path};
  cg_status st = read_file(&L);
  if (st == CG_OK && !(L.g = cg_graph_new())) st = fail(&L, CG_ENOMEM, "out of memory");
  cg_scope scope = st == CG_OK ? cg_scope_begin() : 0;
  if (scope < 0) st = fail(&L, CG_ENOMEM, "out of memory");
  bool entered = st == CG_OK && cg_graph_enter(L.g) == CG_OK;
  if (st == CG_OK && !entered) st = cg_last_status();
  if (st == CG_OK) st = parse_header(&L);
  if (st == CG_OK) st = parse_body(&L);
  if (entered) cg_graph_exit(L.g);
  if (scope > 0) cg_scope_end(scope); /* the graph holds what it needs */
  for (size_t k = 0; k < L.n_consts; k++) cg_release(L.consts[k]);
  free(L.consts);
  free(L.text);
  free(L.line);
  free(L.tok);
  if (st != CG_OK) {
    cg_graph_free(L.g);
    return NULL;
  }
  return L.g;
}

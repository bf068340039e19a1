/* serialize_read.c - cg_graph_load: reads the file, splits it into lines and tokens, and
 * parses the header, placeholders and constants strictly (every malformed line is an error
 * naming its number); nodes are serialize_node.c's. Memory stays proportional to the file. */
#include "serialize_read.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* --- errors ------------------------------------------------------------------------------ */

cg_status cg__load_fail(cg_loader *L, cg_status code, const char *fmt, ...)
{
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (L->line_no) return cg_set_error(code, "cg_graph_load: %s:%ld: %s", L->path, L->line_no, msg);
  return cg_set_error(code, "cg_graph_load: %s: %s", L->path, msg);
}

/* (the pending message is copied first: cg__load_fail writes the same buffer) */
cg_status cg__load_fail_with_last(cg_loader *L, const char *what)
{
  char last[512];
  snprintf(last, sizeof last, "%s", cg_last_error());
  cg_status st = cg_last_status() ? cg_last_status() : CG_EINVAL;
  return cg__load_fail(L, st, "%s: %s", what, last);
}

/* --- lines and tokens -------------------------------------------------------------------- */

static cg_status read_file(cg_loader *L)
{
  FILE *f = fopen(L->path, "rb");
  if (!f) return cg__load_fail(L, CG_EIO, "cannot open the file");
  size_t cap = 1 << 16;
  L->text = cg__malloc(cap);
  cg_status st = L->text ? CG_OK : CG_ENOMEM;
  while (st == CG_OK) {
    if (L->len == cap) {
      char *more = cap < SIZE_MAX / 2 ? cg__realloc(L->text, cap * 2) : NULL;
      if (!more) {
        st = cg__load_fail(L, CG_ENOMEM, "out of memory reading the file");
        break;
      }
      L->text = more;
      cap *= 2;
    }
    size_t got = fread(L->text + L->len, 1, cap - L->len, f);
    L->len += got;
    if (got == 0) {
      if (ferror(f)) st = cg__load_fail(L, CG_EIO, "read error");
      break;
    }
  }
  fclose(f);
  return st;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* The next line that is not blank or a comment, split into tokens; false at the end. */
static cg_status next_line(cg_loader *L, bool *eof)
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
    if (memchr(start, 0, n)) return cg__load_fail(L, CG_EINVAL, "a NUL byte in the line");
    if (n + 1 > L->cap_line) {
      char *line = cg__realloc(L->line, n + 1);
      if (!line) return cg__load_fail(L, CG_ENOMEM, "out of memory");
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
        if (!tok) return cg__load_fail(L, CG_ENOMEM, "out of memory");
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

bool cg__load_keyword(const cg_loader *L, const char *k) { return strcmp(L->tok[0], k) == 0; }

char *cg__load_keep(const char *s)
{
  size_t n = strlen(s) + 1;
  char *c = cg__malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

cg_status cg__load_need_line(cg_loader *L, const char *what)
{
  bool eof;
  cg_status st = next_line(L, &eof);
  if (st == CG_OK && eof)
    st = cg__load_fail(L, CG_EINVAL, "the file ends where %s was expected (truncated?)", what);
  return st;
}

/* --- header, placeholders, constants ------------------------------------------------------ */

static cg_status parse_header(cg_loader *L)
{
  cg_status st = cg__load_need_line(L, "the header '" CG_GRAPH_MAGIC " 1'");
  if (st != CG_OK) return st;
  int64_t version;
  if (!cg__load_keyword(L, CG_GRAPH_MAGIC) || L->n_tok != 2 ||
      !cg__parse_int(L->tok[1], 0, INT32_MAX, &version))
    return cg__load_fail(L, CG_EINVAL, "not a cgrad graph file (the first line must be '"
                                       CG_GRAPH_MAGIC " 1')");
  if (version != CG_GRAPH_VERSION)
    return cg__load_fail(L, CG_EINVAL, "format version %lld; this cgrad reads version %d", (long long)version,
                         CG_GRAPH_VERSION);
  if ((st = cg__load_need_line(L, "the options line")) != CG_OK) return st;
  static const char *const options[4] = {"none", "cse", "fold_constants", "cse,fold_constants"};
  for (unsigned o = 0; o < 4; o++)
    if (cg__load_keyword(L, "options") && L->n_tok == 2 && strcmp(L->tok[1], options[o]) == 0)
      return cg_graph_set_options(L->g, o);
  return cg__load_fail(L, CG_EINVAL, "expected 'options none|cse|fold_constants|cse,fold_constants'");
}

/* (the library reports such sizes as CG_ENOMEM where it computes them; here it is the file) */
bool cg__load_too_large(int ndim, const int64_t *shape)
{
  int64_t known[CG_MAX_DIMS], size;
  for (int i = 0; i < ndim; i++) known[i] = shape[i] < 0 ? 1 : shape[i];
  if (cg__shape_size("shape", ndim, known, &size) == CG_OK) return false;
  cg_clear_error();
  return true;
}

cg_status cg__load_check_index(cg_loader *L, size_t expected)
{
  int64_t k;
  if (L->n_tok < 2 || !cg__parse_int(L->tok[1], 0, INT64_MAX, &k))
    return cg__load_fail(L, CG_EINVAL, "'%s' needs an index", L->tok[0]);
  if ((uint64_t)k != expected)
    return cg__load_fail(L, CG_EINVAL, "%s %lld is out of order (expected %s %zu)", L->tok[0], (long long)k,
                         L->tok[0], expected);
  return CG_OK;
}

static cg_status parse_placeholder(cg_loader *L)
{
  cg_status st = cg__load_check_index(L, L->g->n_placeholders);
  if (st != CG_OK) return st;
  cg_dtype d;
  int ndim;
  int64_t shape[CG_MAX_DIMS];
  if (L->n_tok != 5 || !cg__parse_name(L->tok[2]) || !cg__parse_dtype(L->tok[3], &d) ||
      !cg__parse_shape(L->tok[4], -1, &ndim, shape))
    return cg__load_fail(L, CG_EINVAL, "expected 'placeholder <index> \"<name>\" <dtype> [<dims>]'");
  if (cg__load_too_large(ndim, shape))
    return cg__load_fail(L, CG_EINVAL, "placeholder %zu: its shape has too many elements",
                         L->g->n_placeholders);
  return cg_placeholder(d, ndim, shape, L->tok[2]) ? CG_OK : cg__load_fail_with_last(L, "placeholder");
}

static cg_status parse_constant(cg_loader *L)
{
  cg_status st = cg__load_check_index(L, L->n_consts);
  if (st != CG_OK) return st;
  cg_dtype d;
  int ndim;
  int64_t shape[CG_MAX_DIMS], size;
  if (L->n_tok != 4 || !cg__parse_dtype(L->tok[2], &d) || !cg__parse_shape(L->tok[3], 0, &ndim, shape))
    return cg__load_fail(L, CG_EINVAL, "expected 'constant <index> <dtype> [<dims>]'");
  if (cg__load_too_large(ndim, shape) || cg__shape_size("constant", ndim, shape, &size) != CG_OK)
    return cg__load_fail(L, CG_EINVAL, "constant %zu: its shape has too many elements", L->n_consts);
  /* every value takes at least two bytes of the file: a bound before allocating */
  if ((uint64_t)size > (L->len - L->pos) / 2 + 1)
    return cg__load_fail(L, CG_EINVAL, "constant %zu has %lld elements, more than the rest of the file holds",
                         L->n_consts, (long long)size);
  if (L->n_consts == L->cap_consts) {
    size_t cap = L->cap_consts ? 2 * L->cap_consts : 16;
    cg_tensor **c = cg__realloc(L->consts, cap * sizeof *c);
    if (!c) return cg__load_fail(L, CG_ENOMEM, "out of memory");
    L->consts = c;
    L->cap_consts = cap;
  }
  cg_tensor *t = cg__tensor_new(d, ndim, shape);
  if (!t) return cg__load_fail_with_last(L, "constant");
  L->consts[L->n_consts++] = t;
  for (int64_t filled = 0; filled < size;) {
    if ((st = cg__load_need_line(L, "the constant's values")) != CG_OK) return st;
    if (!cg__load_keyword(L, "values") || L->n_tok < 2)
      return cg__load_fail(L, CG_EINVAL, "constant %zu needs %lld values, the file gives %lld",
                           L->n_consts - 1, (long long)size, (long long)filled);
    for (int i = 1; i < L->n_tok; i++, filled++) {
      if (filled == size)
        return cg__load_fail(L, CG_EINVAL, "constant %zu has more than its %lld values",
                             L->n_consts - 1, (long long)size);
      if (!cg__parse_element(L->tok[i], d, t->data, filled))
        return cg__load_fail(L, CG_EINVAL, "'%s' is not a %s value", L->tok[i], cg_dtype_name(d));
    }
  }
  return CG_OK;
}

/* --- the file ------------------------------------------------------------------------------- */

static cg_status parse_body(cg_loader *L)
{
  enum { PLACEHOLDERS, CONSTANTS, NODES } phase = PLACEHOLDERS;
  cg_status st = CG_OK;
  for (;;) {
    if ((st = cg__load_need_line(L, "'end'")) != CG_OK) return st;
    if (cg__load_keyword(L, "end")) {
      if (L->n_tok != 1) return cg__load_fail(L, CG_EINVAL, "'end' takes nothing after it");
      bool eof;
      if ((st = next_line(L, &eof)) != CG_OK) return st;
      return eof ? CG_OK : cg__load_fail(L, CG_EINVAL, "text after 'end'");
    }
    if (cg__load_keyword(L, "placeholder") && phase == PLACEHOLDERS) {
      st = parse_placeholder(L);
    } else if (cg__load_keyword(L, "constant") && phase <= CONSTANTS) {
      phase = CONSTANTS;
      st = parse_constant(L);
    } else if (cg__load_keyword(L, "node")) {
      phase = NODES;
      st = cg__load_node(L);
    } else {
      bool known = cg__load_keyword(L, "placeholder") || cg__load_keyword(L, "constant");
      st = cg__load_fail(L, CG_EINVAL, known ? "'%s' lines come before constants and nodes (placeholders, "
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
  cg_loader L = {.path = path};
  cg_status st = read_file(&L);
  if (st == CG_OK && !(L.g = cg_graph_new())) st = cg__load_fail(&L, CG_ENOMEM, "out of memory");
  cg_scope scope = st == CG_OK ? cg_scope_begin() : 0;
  if (scope < 0) st = cg__load_fail(&L, CG_ENOMEM, "out of memory");
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

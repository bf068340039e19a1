/* serialize_read.h - what the two halves of cg_graph_load share: the loader's state (the
 * file, the current line split into tokens, the graph being built) and its error and line
 * helpers. serialize_read.c reads the file and its header, placeholders and constants;
 * serialize_node.c parses each node and adds it through the dispatcher. */
#ifndef CG_GRAPH_SERIALIZE_READ_H
#define CG_GRAPH_SERIALIZE_READ_H

#include "serialize.h"

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
} cg_loader;

/* Sets code with "cg_graph_load: <path>:<line>: <message>"; returns code. */
cg_status cg__load_fail(cg_loader *L, cg_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The same with the pending error's message after "what: " (and its status). */
cg_status cg__load_fail_with_last(cg_loader *L, const char *what);
/* The next line that is not blank or a comment; the end of the file is an error naming what
 * was expected there. */
cg_status cg__load_need_line(cg_loader *L, const char *what);
bool cg__load_keyword(const cg_loader *L, const char *k); /* the line's first token is k */
/* A copy of s that outlives the line (NULL, with CG_ENOMEM pending, if none can be made). */
char *cg__load_keep(const char *s);
/* Known dims multiply past what a tensor may hold: malformed input. */
bool cg__load_too_large(int ndim, const int64_t *shape);
/* "<keyword> <index>": the index must be the next one. */
cg_status cg__load_check_index(cg_loader *L, size_t expected);
/* The 'node' line just read and the lines of that node: parsed, checked, added to the graph. */
cg_status cg__load_node(cg_loader *L);

#endif

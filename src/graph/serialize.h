/* serialize.h - the tokens of the graph text format (docs/graph-format.md) that the writer
 * (serialize.c) and the reader (serialize_read.c) share: quoted names, dtypes, shapes, and
 * numbers written exactly. */
#ifndef CG_GRAPH_SERIALIZE_H
#define CG_GRAPH_SERIALIZE_H

#include "graph.h"
#include <stdio.h>

#define CG_GRAPH_MAGIC "cgrad-graph"
#define CG_GRAPH_VERSION 1
#define CG_GRAPH_VALUES_PER_LINE 16

/* --- writing ---------------------------------------------------------------------------- */
/* "name" with '%', '"', spaces, control and non-ASCII bytes as %XX. */
void cg__write_name(FILE *f, const char *name);
/* [2,-1,3]; [] for a scalar. */
void cg__write_shape(FILE *f, int ndim, const int64_t *shape);
/* A double as a C99 hex float (exact); NaN as nan:<16 hex digits of its bits>. */
void cg__write_f64(FILE *f, double v);
/* Element i of a tensor's data: hex floats (f32 as nan:<8 hex digits> for NaN), decimal
 * integers, 0/1 for bool. */
void cg__write_element(FILE *f, cg_dtype d, const void *data, int64_t i);

/* --- reading: each returns false on a malformed token (the caller names the line) ------- */
/* A quoted, %XX-escaped name, decoded in place (tok then holds the name). */
bool cg__parse_name(char *tok);
bool cg__parse_dtype(const char *tok, cg_dtype *out);
/* [d,...] with at most CG_MAX_DIMS dims, each >= min_dim (-1 or 0). */
bool cg__parse_shape(const char *tok, int64_t min_dim, int *ndim, int64_t *shape);
/* A whole-token decimal integer in [lo, hi]. */
bool cg__parse_int(const char *tok, int64_t lo, int64_t hi, int64_t *out);
bool cg__parse_f64(const char *tok, double *out);
/* One element into data[i], exactly representable in dtype d. */
bool cg__parse_element(const char *tok, cg_dtype d, void *data, int64_t i);

#endif

/* attrs.c - op attributes: a small by-name list of ints, int lists and floats, set by the
 * caller and read by shape rules, kernels and gradients through the node. */
#include "node.h"
#include <string.h>

static cg_attr *slot(cg_attrs *a, const char *name)
{
  if (!a || a->n < 0 || a->n > CG_ATTR_MAX) {
    cg_set_error(CG_EINVAL, "attribute '%s': the attribute list is %s", name ? name : "(null)",
                 a ? "not initialised (declare it as `cg_attrs a = {0};`)" : "NULL");
    return NULL;
  }
  if (!name || strlen(name) >= sizeof a->items[0].name) {
    cg_set_error(CG_EINVAL, "attribute name '%s' is NULL or longer than %zu characters",
                 name ? name : "(null)", sizeof a->items[0].name - 1);
    return NULL;
  }
  for (int i = 0; i < a->n; i++)
    if (strncmp(a->items[i].name, name, sizeof a->items[i].name) == 0) return &a->items[i];
  if (a->n == CG_ATTR_MAX) {
    cg_set_error(CG_EINVAL, "attribute '%s': at most %d attributes", name, CG_ATTR_MAX);
    return NULL;
  }
  cg_attr *s = &a->items[a->n++];
  memset(s, 0, sizeof *s);
  strcpy(s->name, name);
  return s;
}

cg_status cg_attrs_set_int(cg_attrs *a, const char *name, int64_t v)
{
  cg_attr *s = slot(a, name);
  if (!s) return cg_last_status();
  s->kind = CG_ATTR_INT;
  s->n = 1;
  s->ints[0] = v;
  return CG_OK;
}

cg_status cg_attrs_set_ints(cg_attrs *a, const char *name, const int64_t *v, int n)
{
  if (n < 0 || n > CG_ATTR_INTS_MAX || (n > 0 && !v))
    return cg_set_error(CG_EINVAL, "attribute '%s': %d ints (at most %d, and not NULL)",
                        name ? name : "(null)", n, CG_ATTR_INTS_MAX);
  cg_attr *s = slot(a, name);
  if (!s) return cg_last_status();
  s->kind = CG_ATTR_INTS;
  s->n = n;
  for (int i = 0; i < n; i++) s->ints[i] = v[i];
  return CG_OK;
}

cg_status cg_attrs_set_float(cg_attrs *a, const char *name, double v)
{
  cg_attr *s = slot(a, name);
  if (!s) return cg_last_status();
  s->kind = CG_ATTR_FLOAT;
  s->f = v;
  return CG_OK;
}

/* cg_attrs is a plain struct callers may fill by hand: counts are clamped to the arrays and
 * names compared within their field, so a malformed one reads as "absent", never past the end. */
const cg_attr *cg_attrs_find(const cg_attrs *a, const char *name)
{
  if (!a || !name) return NULL;
  int n = a->n < 0 ? 0 : a->n > CG_ATTR_MAX ? CG_ATTR_MAX : a->n;
  for (int i = 0; i < n; i++)
    if (strncmp(a->items[i].name, name, sizeof a->items[i].name) == 0) return &a->items[i];
  return NULL;
}

static int ints_held(const cg_attr *a)
{
  return a->n < 0 ? 0 : a->n > CG_ATTR_INTS_MAX ? CG_ATTR_INTS_MAX : a->n;
}

/* A float attribute read as an int: truncated and saturated, NaN as 0 (a plain conversion
 * of a value outside int64 is undefined behaviour). */
static int64_t float_to_int(double f)
{
  if (f != f) return 0;
  if (f >= 9223372036854775808.0) return INT64_MAX;
  if (f < -9223372036854775808.0) return INT64_MIN;
  return (int64_t)f;
}

int64_t cg_node_attr_int(const cg_node *n, const char *name, int64_t dflt)
{
  const cg_attr *a = cg_attrs_find(n ? n->attrs : NULL, name);
  if (!a) return dflt;
  if (a->kind == CG_ATTR_FLOAT) return float_to_int(a->f);
  return ints_held(a) > 0 ? a->ints[0] : dflt;
}

double cg_node_attr_float(const cg_node *n, const char *name, double dflt)
{
  const cg_attr *a = cg_attrs_find(n ? n->attrs : NULL, name);
  if (!a) return dflt;
  if (a->kind == CG_ATTR_FLOAT) return a->f;
  return ints_held(a) > 0 ? (double)a->ints[0] : dflt;
}

int cg_node_attr_ints(const cg_node *n, const char *name, int64_t *out, int max)
{
  const cg_attr *a = cg_attrs_find(n ? n->attrs : NULL, name);
  if (!a || a->kind == CG_ATTR_FLOAT) return -1;
  int held = ints_held(a);
  for (int i = 0; out && i < held && i < max; i++) out[i] = a->ints[i];
  return held;
}

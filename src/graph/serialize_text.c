/* serialize_text.c - the tokens of the graph text format, written and read back exactly:
 * quoted names with %XX escapes, dtypes, shapes, decimal integers, and floats as C99 hex
 * floats (NaN by its bits). Whole lines and their grammar live in serialize.c and
 * serialize_read.c. */
#include "serialize.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- names ------------------------------------------------------------------------------- */

static bool plain_byte(unsigned char c) { return c > ' ' && c < 0x7f && c != '"' && c != '%'; }

void cg__write_name(FILE *f, const char *name)
{
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    if (plain_byte(*p)) fputc(*p, f);
    else fprintf(f, "%%%02X", *p);
  fputc('"', f);
}

static int hex_digit(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool cg__parse_name(char *tok)
{
  size_t n = strlen(tok);
  if (n < 2 || tok[0] != '"' || tok[n - 1] != '"') return false;
  char *w = tok;
  for (size_t i = 1; i + 1 < n; i++) {
    if (tok[i] == '%') {
      int hi = i + 3 < n ? hex_digit(tok[i + 1]) : -1, lo = hi >= 0 ? hex_digit(tok[i + 2]) : -1;
      if (lo < 0 || (hi == 0 && lo == 0)) return false; /* (a NUL would end the name early) */
      *w++ = (char)(hi << 4 | lo);
      i += 2;
    } else if (plain_byte((unsigned char)tok[i])) {
      *w++ = tok[i];
    } else {
      return false;
    }
  }
  *w = 0;
  return true;
}

/* --- dtypes and shapes ------------------------------------------------------------------- */

bool cg__parse_dtype(const char *tok, cg_dtype *out)
{
  for (int d = 0; d < CG_NUM_DTYPES; d++)
    if (strcmp(tok, cg_dtype_name((cg_dtype)d)) == 0) {
      *out = (cg_dtype)d;
      return true;
    }
  return false;
}

void cg__write_shape(FILE *f, int ndim, const int64_t *shape)
{
  fputc('[', f);
  for (int i = 0; i < ndim; i++) fprintf(f, i ? ",%lld" : "%lld", (long long)shape[i]);
  fputc(']', f);
}

/* A decimal integer at *p (optional '-', digits, no leading '+' or spaces); advances *p. */
static bool scan_int(const char **p, int64_t lo, int64_t hi, int64_t *out)
{
  const char *s = *p;
  if (!(*s == '-' ? s[1] >= '0' && s[1] <= '9' : *s >= '0' && *s <= '9')) return false;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno == ERANGE || v < lo || v > hi) return false;
  *p = end;
  *out = v;
  return true;
}

bool cg__parse_shape(const char *tok, int64_t min_dim, int *ndim, int64_t *shape)
{
  const char *p = tok;
  int n = 0;
  if (*p++ != '[') return false;
  if (*p == ']') return p[1] == 0 && (*ndim = 0, true);
  for (;;) {
    if (n == CG_MAX_DIMS || !scan_int(&p, min_dim, INT64_MAX, &shape[n++])) return false;
    if (*p == ']') break;
    if (*p++ != ',') return false;
  }
  *ndim = n;
  return p[1] == 0;
}

bool cg__parse_int(const char *tok, int64_t lo, int64_t hi, int64_t *out)
{
  const char *p = tok;
  return scan_int(&p, lo, hi, out) && *p == 0;
}

/* --- numbers ----------------------------------------------------------------------------- */

void cg__write_f64(FILE *f, double v)
{
  if (isnan(v)) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    fprintf(f, "nan:%016llx", (unsigned long long)bits);
  } else {
    fprintf(f, "%a", v);
  }
}

void cg__write_element(FILE *f, cg_dtype d, const void *data, int64_t i)
{
  switch (d) {
  case CG_F32: {
    float v = ((const float *)data)[i];
    if (isnan(v)) {
      uint32_t bits;
      memcpy(&bits, &v, sizeof bits);
      fprintf(f, "nan:%08lx", (unsigned long)bits);
    } else {
      fprintf(f, "%a", (double)v);
    }
    break;
  }
  case CG_F64: cg__write_f64(f, ((const double *)data)[i]); break;
  case CG_I32: fprintf(f, "%ld", (long)((const int32_t *)data)[i]); break;
  case CG_I64: fprintf(f, "%lld", (long long)((const int64_t *)data)[i]); break;
  case CG_BOOL: fputc(((const uint8_t *)data)[i] ? '1' : '0', f); break;
  default: break;
  }
}

/* nan:<digits hex digits>, a NaN bit pattern of that width */
static bool parse_nan_bits(const char *tok, int digits, uint64_t *bits)
{
  if (strncmp(tok, "nan:", 4) != 0 || strlen(tok + 4) != (size_t)digits) return false;
  uint64_t v = 0;
  for (const char *p = tok + 4; *p; p++) {
    int h = hex_digit(*p);
    if (h < 0) return false;
    v = v << 4 | (uint64_t)h;
  }
  *bits = v;
  return true;
}

/* Any number strtod reads (the writer uses hex floats), as the whole token; "nan" and
 * "inf" spelled out are not numbers here (NaN goes by its bits). */
static bool parse_number(const char *tok, double *out)
{
  const char *p = tok + (*tok == '-' || *tok == '+');
  if (!((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')) &&
      strcmp(p, "inf") != 0)
    return false;
  char *end;
  *out = strtod(tok, &end);
  return end != tok && *end == 0;
}

bool cg__parse_f64(const char *tok, double *out)
{
  uint64_t bits;
  if (parse_nan_bits(tok, 16, &bits)) {
    memcpy(out, &bits, sizeof *out);
    return isnan(*out);
  }
  return parse_number(tok, out);
}

bool cg__parse_element(const char *tok, cg_dtype d, void *data, int64_t i)
{
  double v;
  int64_t k;
  switch (d) {
  case CG_F32: {
    uint64_t bits;
    if (parse_nan_bits(tok, 8, &bits)) {
      uint32_t b32 = (uint32_t)bits;
      float f;
      memcpy(&f, &b32, sizeof f);
      ((float *)data)[i] = f;
      return isnan(f);
    }
    if (!parse_number(tok, &v)) return false;
    float f = (float)v;
    ((float *)data)[i] = f;
    return (double)f == v; /* exactly an f32 (overflow to inf would not be) */
  }
  case CG_F64: return cg__parse_f64(tok, &((double *)data)[i]);
  case CG_I32:
    if (!cg__parse_int(tok, INT32_MIN, INT32_MAX, &k)) return false;
    ((int32_t *)data)[i] = (int32_t)k;
    return true;
  case CG_I64: return cg__parse_int(tok, INT64_MIN, INT64_MAX, &((int64_t *)data)[i]);
  case CG_BOOL:
    if ((tok[0] != '0' && tok[0] != '1') || tok[1]) return false;
    ((uint8_t *)data)[i] = (uint8_t)(tok[0] - '0');
    return true;
  default: return false;
  }
}

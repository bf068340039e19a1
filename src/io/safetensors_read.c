/* safetensors_read.c - reading a safetensors file that may be truncated, oversized or
 * hostile: every length and offset is checked against the file before it is used, the
 * tensors' byte ranges must tile the data exactly, and each problem is an error naming the
 * file and what is wrong (CG_EIO: the system refused; CG_EINVAL: the bytes are not a valid
 * file). Lookups by name afterwards; the writer is safetensors.c. */
#include "safetensors.h"
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
  char *name;
  cg_tensor *value; /* owned */
} st_tensor;

struct cg_safetensors {
  char *path;
  int n;
  st_tensor *tensors; /* sorted by name, for bsearch */
  int n_meta;
  char **meta_keys, **meta_values;
};

/* One tensor as the header describes it. */
typedef struct {
  const char *name; /* borrowed from the JSON document */
  cg_dtype dtype;
  int ndim;
  int64_t shape[CG_MAX_DIMS];
  uint64_t nbytes, begin, end;
} st_info;

static cg_status bad_file(const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static cg_status bad_file(const char *path, const char *fmt, ...)
{
  char what[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return cg_set_error(CG_EINVAL, "cg_safetensors_load: '%s': %s", path, what);
}

static cg_status io_error(const char *path, const char *what)
{
  return cg_set_error(CG_EIO, "cg_safetensors_load: cannot %s '%s': %s", what, path,
                      errno ? strerror(errno) : "unexpected end of file");
}

void cg_safetensors_free(cg_safetensors *f)
{
  if (!f) return;
  for (int i = 0; i < f->n; i++) {
    free(f->tensors[i].name);
    cg_release(f->tensors[i].value);
  }
  for (int i = 0; i < f->n_meta; i++) {
    free(f->meta_keys[i]);
    free(f->meta_values[i]);
  }
  free(f->tensors);
  free(f->meta_keys);
  free(f->meta_values);
  free(f->path);
  free(f);
}

/* ======================================================================================
 * The header: one entry at a time
 * ==================================================================================== */

static cg_status parse_dtype(const char *path, const char *name, json_t *v, st_info *t)
{
  const char *s = json_string_value(v);
  int known;
  if (!s) return bad_file(path, "tensor '%s' has no \"dtype\" string", name);
  if (!cg__st_dtype_from_name(s, &t->dtype, &known))
    return known ? bad_file(path,
                            "tensor '%s' has dtype %s, which cgrad does not support "
                            "(F32, F64, I32, I64, BOOL)",
                            name, s)
                 : bad_file(path, "tensor '%s' has unknown dtype '%s'", name, s);
  return CG_OK;
}

/* Shape, and its size in bytes with every product overflow-checked. */
static cg_status parse_shape(const char *path, const char *name, json_t *v, st_info *t)
{
  if (!json_is_array(v)) return bad_file(path, "tensor '%s' has no \"shape\" array", name);
  size_t ndim = json_array_size(v);
  if (ndim > CG_MAX_DIMS)
    return bad_file(path, "tensor '%s' has %zu dimensions; cgrad supports at most %d", name, ndim,
                    CG_MAX_DIMS);
  uint64_t count = 1;
  t->ndim = (int)ndim;
  for (size_t i = 0; i < ndim; i++) {
    json_t *d = json_array_get(v, i);
    if (!json_is_integer(d) || json_integer_value(d) < 0)
      return bad_file(path, "tensor '%s' has a negative or non-integer dimension %zu in its shape",
                      name, i);
    uint64_t di = (uint64_t)json_integer_value(d);
    if (di && count > (uint64_t)INT64_MAX / 16 / di)
      return bad_file(path, "tensor '%s' has a shape too large to hold in memory", name);
    count *= di;
    t->shape[i] = (int64_t)di;
  }
  t->nbytes = count * cg_dtype_size(t->dtype);
  return CG_OK;
}

static cg_status parse_offsets(const char *path, const char *name, json_t *v, st_info *t)
{
  json_t *b = json_array_get(v, 0), *e = json_array_get(v, 1);
  if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(b) || !json_is_integer(e))
    return bad_file(path, "tensor '%s' has no \"data_offsets\" pair of integers", name);
  if (json_integer_value(b) < 0 || json_integer_value(e) < json_integer_value(b))
    return bad_file(path, "tensor '%s' has data_offsets [%lld, %lld]: need 0 <= begin <= end", name,
                    (long long)json_integer_value(b), (long long)json_integer_value(e));
  t->begin = (uint64_t)json_integer_value(b);
  t->end = (uint64_t)json_integer_value(e);
  if (t->end - t->begin != t->nbytes)
    return bad_file(
        path, "tensor '%s' is %s with %llu bytes but its data_offsets [%llu, %llu] span %llu", name,
        cg__st_dtype_name(t->dtype), (unsigned long long)t->nbytes, (unsigned long long)t->begin,
        (unsigned long long)t->end, (unsigned long long)(t->end - t->begin));
  return CG_OK;
}

static cg_status parse_entry(const char *path, const char *name, json_t *v, st_info *t)
{
  if (!json_is_object(v)) return bad_file(path, "header entry '%s' is not an object", name);
  t->name = name;
  cg_status st = parse_dtype(path, name, json_object_get(v, "dtype"), t);
  if (st == CG_OK) st = parse_shape(path, name, json_object_get(v, "shape"), t);
  if (st == CG_OK) st = parse_offsets(path, name, json_object_get(v, "data_offsets"), t);
  return st;
}

static cg_status parse_metadata(const char *path, json_t *meta, cg_safetensors *f)
{
  if (!json_is_object(meta)) return bad_file(path, "\"%s\" is not an object", CG_ST_METADATA_KEY);
  size_t n = json_object_size(meta);
  f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
  f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
  if (!f->meta_keys || !f->meta_values)
    return cg_set_error(CG_ENOMEM, "cg_safetensors_load: out of memory");
  const char *key;
  json_t *v;
  json_object_foreach(meta, key, v) {
    if (!json_is_string(v))
      return bad_file(path, "\"%s\" value of '%s' is not a string", CG_ST_METADATA_KEY, key);
    int i = f->n_meta++; /* counted first, so that cg_safetensors_free frees both */
    f->meta_keys[i] = strdup(key);
    f->meta_values[i] = strdup(json_string_value(v));
    if (!f->meta_keys[i] || !f->meta_values[i])
      return cg_set_error(CG_ENOMEM, "cg_safetensors_load: out of memory");
  }
  return CG_OK;
}

/* Every entry of the header into infos (sized for all keys) and f's metadata. */
static cg_status parse_header(const char *path, json_t *root, st_info *infos, int *n,
                              cg_safetensors *f)
{
  const char *key;
  json_t *v;
  *n = 0;
  json_object_foreach(root, key, v) {
    cg_status st = !strcmp(key, CG_ST_METADATA_KEY) ? parse_metadata(path, v, f)
                                                    : parse_entry(path, key, v, &infos[(*n)++]);
    if (st != CG_OK) return st;
  }
  return CG_OK;
}

/* ======================================================================================
 * The byte ranges must tile [0, data_len) with no gap, overlap or trailing byte
 * ==================================================================================== */

static int by_offsets(const void *pa, const void *pb)
{
  const st_info *a = pa, *b = pb;
  if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
  return a->end < b->end ? -1 : a->end > b->end;
}

static cg_status check_layout(const char *path, st_info *infos, int n, uint64_t data_len)
{
  qsort(infos, (size_t)n, sizeof *infos, by_offsets);
  uint64_t covered = 0;
  for (int i = 0; i < n; i++) {
    const st_info *t = &infos[i];
    if (t->begin > covered)
      return bad_file(path, "data bytes [%llu, %llu) are not covered by any tensor",
                      (unsigned long long)covered, (unsigned long long)t->begin);
    if (t->begin < covered)
      return bad_file(path, "tensor '%s' at [%llu, %llu] overlaps tensor '%s' ending at %llu",
                      t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                      infos[i - 1].name, (unsigned long long)covered);
    if (t->end > data_len)
      return bad_file(path,
                      "tensor '%s' at [%llu, %llu] runs past the end of the data (%llu bytes): "
                      "the file is truncated",
                      t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                      (unsigned long long)data_len);
    covered = t->end;
  }
  if (covered != data_len)
    return bad_file(path, "data bytes [%llu, %llu) are not covered by any tensor",
                    (unsigned long long)covered, (unsigned long long)data_len);
  return CG_OK;
}

/* ======================================================================================
 * Reading the file
 * ==================================================================================== */

static cg_status read_exact(FILE *fp, void *p, size_t n, const char *path)
{
  errno = 0;
  if (n && fread(p, 1, n, fp) != n) return io_error(path, "read all of");
  return CG_OK;
}

static cg_status check_bools(const char *path, const cg_tensor *t, const char *name)
{
  const uint8_t *b = t->data;
  for (int64_t i = 0; i < t->size; i++)
    if (b[i] > 1)
      return bad_file(path, "BOOL tensor '%s' holds byte %u at element %lld (must be 0 or 1)", name,
                      b[i], (long long)i);
  return CG_OK;
}

/* The tensors' bytes, read straight into new tensors in file order (infos are sorted by
 * offset and tile the data, so the file position always matches). */
static cg_status read_tensors(FILE *fp, const char *path, const st_info *infos, int n,
                              cg_safetensors *f)
{
  for (int i = 0; i < n; i++) {
    cg_tensor *t = cg__tensor_new(infos[i].dtype, infos[i].ndim, infos[i].shape);
    if (!t) return cg_last_status();
    st_tensor *slot = &f->tensors[f->n++];
    slot->value = t;
    if (!(slot->name = strdup(infos[i].name)))
      return cg_set_error(CG_ENOMEM, "cg_safetensors_load: out of memory");
    cg_status st = read_exact(fp, t->data, infos[i].nbytes, path);
    if (st == CG_OK && t->dtype == CG_BOOL) st = check_bools(path, t, infos[i].name);
    if (st != CG_OK) return st;
  }
  return CG_OK;
}

static int by_name(const void *pa, const void *pb)
{
  return strcmp(((const st_tensor *)pa)->name, ((const st_tensor *)pb)->name);
}

/* The 8-byte length and the JSON header it announces, checked against the file size. */
static json_t *read_header(FILE *fp, const char *path, uint64_t file_size, uint64_t *header_len)
{
  unsigned char len_le[8];
  if (file_size < 8) {
    bad_file(path, "the file has %llu bytes, fewer than the 8-byte header length",
             (unsigned long long)file_size);
    return NULL;
  }
  if (read_exact(fp, len_le, 8, path) != CG_OK) return NULL;
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | len_le[i];
  if (n > CG_ST_MAX_HEADER) {
    bad_file(path, "header length %llu is over the %llu-byte (100 MB) limit", (unsigned long long)n,
             CG_ST_MAX_HEADER);
    return NULL;
  }
  if (n > file_size - 8) {
    bad_file(path,
             "header length %llu runs past the end of the file (%llu bytes): the file is "
             "truncated",
             (unsigned long long)n, (unsigned long long)file_size);
    return NULL;
  }
  char *text = malloc(n ? n : 1);
  json_t *root = NULL;
  json_error_t err;
  if (!text)
    cg_set_error(CG_ENOMEM, "cg_safetensors_load: out of memory");
  else if (read_exact(fp, text, n, path) == CG_OK) {
    root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &err);
    if (!root)
      bad_file(path, "the header is not valid JSON: %s (byte %d)", err.text, err.position);
    else if (!json_is_object(root)) {
      bad_file(path, "the header is not a JSON object");
      json_decref(root);
      root = NULL;
    }
  }
  free(text);
  *header_len = n;
  return root;
}

static cg_status load_into(FILE *fp, const char *path, cg_safetensors *f)
{
  struct stat sb;
  if (fstat(fileno(fp), &sb) != 0) return io_error(path, "stat");
  if (!S_ISREG(sb.st_mode))
    return cg_set_error(CG_EIO, "cg_safetensors_load: '%s' is not a regular file", path);
  uint64_t file_size = (uint64_t)sb.st_size, header_len = 0;
  json_t *root = read_header(fp, path, file_size, &header_len);
  if (!root) return cg_last_status();
  size_t n_keys = json_object_size(root);
  st_info *infos = calloc(n_keys ? n_keys : 1, sizeof *infos);
  f->tensors = calloc(n_keys ? n_keys : 1, sizeof *f->tensors);
  cg_status st = infos && f->tensors
                     ? CG_OK
                     : cg_set_error(CG_ENOMEM, "cg_safetensors_load: out of memory");
  int n = 0;
  if (st == CG_OK) st = parse_header(path, root, infos, &n, f);
  if (st == CG_OK) st = check_layout(path, infos, n, file_size - 8 - header_len);
  if (st == CG_OK) st = read_tensors(fp, path, infos, n, f);
  free(infos);
  json_decref(root); /* after reading: infos borrow names from it */
  if (st == CG_OK) qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, by_name);
  return st;
}

cg_safetensors *cg_safetensors_load(const char *path)
{
  if (!path) {
    cg_set_error(CG_EINVAL, "cg_safetensors_load: path is NULL");
    return NULL;
  }
  cg_safetensors *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    cg_set_error(CG_ENOMEM, "cg_safetensors_load: out of memory");
    return NULL;
  }
  FILE *fp = fopen(path, "rb");
  cg_status st = fp ? load_into(fp, path, f) : io_error(path, "open");
  if (fp) fclose(fp);
  if (st != CG_OK) {
    cg_safetensors_free(f);
    return NULL;
  }
  return f;
}

/* ======================================================================================
 * Accessors
 * ==================================================================================== */

int cg_safetensors_count(const cg_safetensors *f) { return f ? f->n : 0; }

const char *cg_safetensors_name(const cg_safetensors *f, int i)
{
  if (!f) {
    cg_set_error(CG_EINVAL, "cg_safetensors_name: file is NULL");
    return NULL;
  }
  if (i < 0 || i >= f->n) {
    cg_set_error(CG_ERANGE, "cg_safetensors_name: index %d is outside 0..%d", i, f->n - 1);
    return NULL;
  }
  return f->tensors[i].name;
}

static int compare_name(const void *key, const void *elem)
{
  return strcmp(key, ((const st_tensor *)elem)->name);
}

cg_tensor *cg_safetensors_get(const cg_safetensors *f, const char *name)
{
  if (!f || !name) {
    cg_set_error(CG_EINVAL, "cg_safetensors_get: %s is NULL", f ? "name" : "file");
    return NULL;
  }
  const st_tensor *hit = bsearch(name, f->tensors, (size_t)f->n, sizeof *f->tensors, compare_name);
  if (!hit) {
    cg_set_error(CG_ENOTFOUND, "cg_safetensors_get: '%s' has no tensor named '%s'", f->path, name);
    return NULL;
  }
  return hit->value;
}

const char *cg_safetensors_meta(const cg_safetensors *f, const char *key)
{
  if (!f || !key) {
    cg_set_error(CG_EINVAL, "cg_safetensors_meta: %s is NULL", f ? "key" : "file");
    return NULL;
  }
  for (int i = 0; i < f->n_meta; i++)
    if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
  return NULL;
}

/* safetensors.c - writing the safetensors format (Hugging Face's; PyTorch and HF tools open
 * it), atomically (atomic_file.h), so a crash never leaves a half-written checkpoint. The
 * dtype names live here too; the reader is safetensors_read.c. */
#include "safetensors.h"
#include "atomic_file.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================================
 * dtype names; rank orders them as the reference writer does (by alignment, descending)
 * ==================================================================================== */

static const struct {
  const char *name;
  cg_dtype dtype;
  int rank; /* position in the reference implementation's Dtype enum */
} st_dtypes[] = {
    {"BOOL", CG_BOOL, 0}, {"I32", CG_I32, 9}, {"F32", CG_F32, 11},
    {"F64", CG_F64, 12},  {"I64", CG_I64, 13},
};
#define N_ST_DTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

/* Defined by the format but with no cgrad dtype: a file holding one is refused by name. */
static const char *const foreign_dtypes[] = {"U8",  "I8",  "F8_E5M2", "F8_E4M3", "I16",
                                             "U16", "F16", "BF16",    "U32",     "U64"};

const char *cg__st_dtype_name(cg_dtype d)
{
  for (int i = 0; i < N_ST_DTYPES; i++)
    if (st_dtypes[i].dtype == d) return st_dtypes[i].name;
  return "?";
}

int cg__st_dtype_from_name(const char *name, cg_dtype *d, int *known)
{
  *known = 0;
  for (int i = 0; i < N_ST_DTYPES; i++)
    if (!strcmp(st_dtypes[i].name, name)) {
      *d = st_dtypes[i].dtype;
      *known = 1;
      return 1;
    }
  for (size_t i = 0; i < sizeof foreign_dtypes / sizeof foreign_dtypes[0]; i++)
    if (!strcmp(foreign_dtypes[i], name)) *known = 1;
  return 0;
}

static int dtype_rank(cg_dtype d)
{
  for (int i = 0; i < N_ST_DTYPES; i++)
    if (st_dtypes[i].dtype == d) return st_dtypes[i].rank;
  return -1;
}

/* ======================================================================================
 * The header: entries in the reference writer's order, so 8-byte types come first and
 * every tensor's bytes stay aligned to its element size
 * ==================================================================================== */

typedef struct {
  const char *name;
  cg_tensor *t;
} st_entry;

static int entry_order(const void *pa, const void *pb)
{
  const st_entry *a = pa, *b = pb;
  int ra = dtype_rank(a->t->dtype), rb = dtype_rank(b->t->dtype);
  if (ra != rb) return rb - ra;
  return strcmp(a->name, b->name);
}

static size_t tensor_nbytes(const cg_tensor *t)
{
  return (size_t)t->size * cg_dtype_size(t->dtype);
}

static json_t *tensor_info(const cg_tensor *t, uint64_t begin)
{
  json_t *info = json_object(), *shape = json_array(), *offsets = json_array();
  for (int i = 0; i < t->ndim; i++) json_array_append_new(shape, json_integer(t->shape[i]));
  json_array_append_new(offsets, json_integer((json_int_t)begin));
  json_array_append_new(offsets, json_integer((json_int_t)(begin + tensor_nbytes(t))));
  json_object_set_new(info, "dtype", json_string(cg__st_dtype_name(t->dtype)));
  json_object_set_new(info, "shape", shape);
  json_object_set_new(info, "data_offsets", offsets);
  return info;
}

static cg_status add_metadata(json_t *root, const char *const *keys, const char *const *values,
                              int n)
{
  if (n == 0) return CG_OK;
  json_t *meta = json_object();
  json_object_set_new(root, CG_ST_METADATA_KEY, meta);
  for (int i = 0; i < n; i++) {
    if (!keys[i] || !values[i])
      return cg_set_error(CG_EINVAL, "cg_safetensors_save: metadata %s %d is NULL",
                          keys[i] ? "value" : "key", i);
    if (json_object_get(meta, keys[i]))
      return cg_set_error(CG_EINVAL, "cg_safetensors_save: metadata key '%s' given twice", keys[i]);
    json_t *v = json_string(values[i]);
    if (!v || json_object_set_new(meta, keys[i], v) != 0)
      return cg_set_error(CG_EINVAL, "cg_safetensors_save: metadata '%s' is not valid UTF-8",
                          keys[i]);
  }
  return CG_OK;
}

/* Checks the entries (sorted already) and adds them to root. */
static cg_status add_tensors(json_t *root, const st_entry *e, int n)
{
  uint64_t offset = 0;
  for (int i = 0; i < n; i++) {
    if (!strcmp(e[i].name, CG_ST_METADATA_KEY))
      return cg_set_error(CG_EINVAL, "cg_safetensors_save: '%s' is reserved for metadata",
                          CG_ST_METADATA_KEY);
    if (json_object_get(root, e[i].name))
      return cg_set_error(CG_EINVAL, "cg_safetensors_save: tensor name '%s' given twice",
                          e[i].name);
    json_t *info = tensor_info(e[i].t, offset);
    if (json_object_set_new(root, e[i].name, info) != 0)
      return cg_set_error(CG_EINVAL, "cg_safetensors_save: tensor name '%s' is not valid UTF-8",
                          e[i].name);
    offset += tensor_nbytes(e[i].t);
  }
  return CG_OK;
}

/* The JSON text padded with spaces to a multiple of 8 bytes (malloc'd), or NULL. */
static char *header_text(const st_entry *e, int n, const char *const *meta_keys,
                         const char *const *meta_values, int n_meta, size_t *len)
{
  json_t *root = json_object();
  char *text = NULL;
  if (add_metadata(root, meta_keys, meta_values, n_meta) == CG_OK &&
      add_tensors(root, e, n) == CG_OK) {
    char *json = json_dumps(root, JSON_COMPACT);
    size_t n_json = json ? strlen(json) : 0, padded = (n_json + 7) / 8 * 8;
    text = json ? malloc(padded) : NULL;
    if (text) {
      memcpy(text, json, n_json);
      memset(text + n_json, ' ', padded - n_json);
      *len = padded;
    } else {
      cg_set_error(CG_ENOMEM, "cg_safetensors_save: out of memory writing the header");
    }
    free(json);
  }
  json_decref(root);
  return text;
}

/* ======================================================================================
 * The file's contents (written atomically: io/atomic_file.h)
 * ==================================================================================== */

static cg_status write_bytes(const cg_atomic_file *a, const void *p, size_t n)
{
  if (n && fwrite(p, 1, n, a->f) != n) return cg__atomic_io_error(a, "write", a->tmp);
  return CG_OK;
}

static cg_status write_file(const char *path, const char *header, size_t header_len,
                            const st_entry *e, int n)
{
  cg_atomic_file a;
  cg_status st = cg__atomic_begin(&a, path, "cg_safetensors_save");
  if (st != CG_OK) return st;
  unsigned char len_le[8];
  for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
  st = write_bytes(&a, len_le, 8);
  if (st == CG_OK) st = write_bytes(&a, header, header_len);
  for (int i = 0; st == CG_OK && i < n; i++) st = write_bytes(&a, e[i].t->data, tensor_nbytes(e[i].t));
  return cg__atomic_end(&a, st);
}

/* ======================================================================================
 * cg_safetensors_save
 * ==================================================================================== */

static cg_status check_arguments(const char *path, const char *const *names,
                                 cg_tensor *const *tensors, int n, const char *const *meta_keys,
                                 const char *const *meta_values, int n_meta)
{
  if (!path) return cg_set_error(CG_EINVAL, "cg_safetensors_save: path is NULL");
  if (n < 0 || n_meta < 0)
    return cg_set_error(CG_EINVAL, "cg_safetensors_save: negative count (%d tensors, %d metadata)",
                        n, n_meta);
  if (n > 0 && (!names || !tensors))
    return cg_set_error(CG_EINVAL, "cg_safetensors_save: %s is NULL but n is %d",
                        names ? "tensors" : "names", n);
  if (n_meta > 0 && (!meta_keys || !meta_values))
    return cg_set_error(CG_EINVAL, "cg_safetensors_save: %s is NULL but n_meta is %d",
                        meta_keys ? "meta_values" : "meta_keys", n_meta);
  for (int i = 0; i < n; i++) {
    if (!names[i]) return cg_set_error(CG_EINVAL, "cg_safetensors_save: name %d is NULL", i);
    if (!tensors[i]) {
      if (cg_last_status() != CG_OK) return cg_last_status(); /* keep the cause */
      return cg_set_error(CG_EINVAL, "cg_safetensors_save: tensor %d ('%s') is NULL", i, names[i]);
    }
    if (cg__is_symbolic(tensors[i]))
      return cg_set_error(CG_EINVAL, "cg_safetensors_save: tensor '%s' is a symbolic graph tensor "
                                     "and has no value to save (run the graph first)", names[i]);
    if (dtype_rank(tensors[i]->dtype) < 0)
      return cg_set_error(CG_EDTYPE, "cg_safetensors_save: tensor '%s' has unknown dtype %d",
                          names[i], (int)tensors[i]->dtype);
  }
  return CG_OK;
}

cg_status cg_safetensors_save(const char *path, const char *const *names,
                              cg_tensor *const *tensors, int n, const char *const *meta_keys,
                              const char *const *meta_values, int n_meta)
{
  cg_status st = check_arguments(path, names, tensors, n, meta_keys, meta_values, n_meta);
  if (st != CG_OK) return st;
  st_entry *e = cg__malloc((size_t)(n ? n : 1) * sizeof *e);
  if (!e) return cg_last_status();
  for (int i = 0; i < n; i++) e[i] = (st_entry){names[i], tensors[i]};
  qsort(e, (size_t)n, sizeof *e, entry_order);
  size_t header_len = 0;
  char *header = header_text(e, n, meta_keys, meta_values, n_meta, &header_len);
  st = header ? write_file(path, header, header_len, e, n) : cg_last_status();
  free(header);
  free(e);
  return st;
}

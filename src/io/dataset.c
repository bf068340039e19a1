/* dataset.c - data sets as (images, labels) tensor pairs that share their first dimension:
 * loading MNIST-layout IDX files (Fashion-MNIST by default), a held-out split, and a
 * batcher whose shuffled order depends only on (seed, epoch). Any dtype and row shape works
 * for split and batching; only the MNIST loaders know about pixels. A batcher can also keep
 * an MNIST split as the file's bytes and convert each batch (cg__mnist_batcher_new). */
#include "dataset.h"
#include "idx.h"
#include "../ops/parallel.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MNIST_DIR "/usr/share/datasets/fashion-mnist" /* Debian dataset-fashion-mnist */

/* ======================================================================================
 * Rows: the first dimension indexes examples
 * ==================================================================================== */

static size_t row_bytes(const cg_tensor *t)
{
  int64_t n = t->shape[0];
  return n ? (size_t)(t->size / n) * cg_dtype_size(t->dtype) : 0;
}

/* A caller-owned tensor of rows rows[0..count) of src (count rows from `first` when rows is
 * NULL), copied row by row. */
static cg_tensor *gather_rows(const cg_tensor *src, const int64_t *rows, int64_t first,
                              int64_t count)
{
  int64_t shape[CG_MAX_DIMS];
  memcpy(shape, src->shape, sizeof shape);
  shape[0] = count;
  cg_tensor *t = cg__tensor_new(src->dtype, src->ndim, shape);
  if (!t) return NULL;
  size_t rb = row_bytes(src);
  const char *from = src->data;
  char *to = t->data;
  if (!rows) memcpy(to, from + (size_t)first * rb, (size_t)count * rb);
  else
    for (int64_t i = 0; i < count; i++)
      memcpy(to + (size_t)i * rb, from + (size_t)rows[i] * rb, rb);
  return t;
}

/* Both tensors present, of rank >= 1, with the same number of examples. */
static cg_status check_dataset(const cg_dataset *d, const char *who, int64_t *n)
{
  if (!d || !d->images || !d->labels)
    return cg_set_error(CG_EINVAL, "%s: %s is NULL", who,
                        !d ? "the dataset" : !d->images ? "dataset images" : "dataset labels");
  if (cg__is_symbolic(d->images) || cg__is_symbolic(d->labels))
    return cg_set_error(CG_EINVAL, "%s: dataset tensors must hold values, not be symbolic graph "
                                   "tensors", who);
  char a[160], b[160];
  if (d->images->ndim < 1 || d->labels->ndim < 1 || d->images->shape[0] != d->labels->shape[0])
    return cg_set_error(CG_ESHAPE, "%s: images %s and labels %s do not share a first dimension",
                        who, cg_shape_str(d->images, a, sizeof a),
                        cg_shape_str(d->labels, b, sizeof b));
  *n = d->images->shape[0];
  return CG_OK;
}

void cg_dataset_free(cg_dataset *d)
{
  if (!d) return;
  cg_release(d->images);
  cg_release(d->labels);
  d->images = d->labels = NULL;
}

cg_status cg_dataset_split(const cg_dataset *d, int64_t holdout, cg_dataset *first,
                           cg_dataset *rest)
{
  const char *who = "cg_dataset_split";
  int64_t n = 0;
  cg_status st = check_dataset(d, who, &n);
  if (st != CG_OK) return st;
  if (!first || !rest)
    return cg_set_error(CG_EINVAL, "%s: %s is NULL", who, first ? "rest" : "first");
  if (first == d || rest == d || first == rest)
    return cg_set_error(CG_EINVAL, "%s: first, rest and d must be three different datasets", who);
  if (holdout < 0 || holdout > n)
    return cg_set_error(CG_ERANGE, "%s: holdout %lld is outside 0..%lld (the dataset size)", who,
                        (long long)holdout, (long long)n);
  cg_dataset a = {gather_rows(d->images, NULL, 0, n - holdout),
                  gather_rows(d->labels, NULL, 0, n - holdout)};
  cg_dataset b = {gather_rows(d->images, NULL, n - holdout, holdout),
                  gather_rows(d->labels, NULL, n - holdout, holdout)};
  if (!a.images || !a.labels || !b.images || !b.labels) {
    cg_dataset_free(&a);
    cg_dataset_free(&b);
    return cg_last_status();
  }
  *first = a;
  *rest = b;
  return CG_OK;
}

/* ======================================================================================
 * MNIST layout: <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
 * ==================================================================================== */

/* "<dir>/<base>.gz" if it exists, else "<dir>/<base>" if it exists (malloc'd), else NULL
 * with CG_EIO naming both. */
static char *find_file(const char *dir, const char *base)
{
  size_t n = strlen(dir) + strlen(base) + 8;
  char *gz = malloc(n), *plain = malloc(n);
  char *found = NULL;
  if (gz && plain) {
    snprintf(gz, n, "%s/%s.gz", dir, base);
    snprintf(plain, n, "%s/%s", dir, base);
    found = access(gz, R_OK) == 0 ? gz : access(plain, R_OK) == 0 ? plain : NULL;
    if (!found)
      cg_set_error(CG_EIO, "cg_mnist_load: neither '%s' nor '%s' can be read (Fashion-MNIST is in "
                           "Debian's dataset-fashion-mnist package)", gz, plain);
  } else {
    cg_set_error(CG_ENOMEM, "cg_mnist_load: out of memory");
  }
  if (found != gz) free(gz);
  if (found != plain) free(plain);
  return found;
}

static cg_status load_part(const char *dir, const char *base, cg__idx *x, char **path)
{
  *path = find_file(dir, base);
  if (!*path) return cg_last_status();
  cg_status st = cg__idx_load(*path, "cg_mnist_load", x);
  if (st == CG_OK && x->type != CG_IDX_UBYTE) {
    cg__idx_free(x);
    st = cg_set_error(CG_EINVAL, "cg_mnist_load: '%s' holds IDX type 0x%02x, not unsigned bytes",
                      *path, x->type);
  }
  return st;
}

/* Images [n, rows, cols] and labels [n], both unsigned bytes. */
static cg_status check_mnist(const cg__idx *img, const char *img_path, const cg__idx *lab,
                             const char *lab_path)
{
  if (img->ndim != 3)
    return cg_set_error(CG_ESHAPE, "cg_mnist_load: '%s' has %d dimensions; images need 3 "
                                   "[n, rows, cols]", img_path, img->ndim);
  if (lab->ndim != 1)
    return cg_set_error(CG_ESHAPE, "cg_mnist_load: '%s' has %d dimensions; labels need 1 [n]",
                        lab_path, lab->ndim);
  if (img->shape[0] != lab->shape[0])
    return cg_set_error(CG_ESHAPE, "cg_mnist_load: '%s' has %lld images but '%s' has %lld labels",
                        img_path, (long long)img->shape[0], lab_path, (long long)lab->shape[0]);
  return CG_OK;
}

/* The f32 value of a pixel byte: what cg_mnist_load stores and byte batches hold. */
static inline float pixel_value(unsigned char byte) { return (float)byte / 255.0f; }

/* images f32 [n, rows, cols, 1] = byte / 255, labels i64 [n]: caller-owned. */
static cg_status to_dataset(const cg__idx *img, const cg__idx *lab, cg_dataset *out)
{
  int64_t shape[4] = {img->shape[0], img->shape[1], img->shape[2], 1};
  cg_tensor *images = cg__tensor_new(CG_F32, 4, shape);
  cg_tensor *labels = cg__tensor_new(CG_I64, 1, lab->shape);
  if (!images || !labels) {
    cg_release(images);
    cg_release(labels);
    return cg_last_status();
  }
  float *px = images->data;
  for (int64_t i = 0; i < img->count; i++) px[i] = pixel_value(img->data[i]);
  int64_t *ids = labels->data;
  for (int64_t i = 0; i < lab->count; i++) ids[i] = lab->data[i];
  out->images = images;
  out->labels = labels;
  return CG_OK;
}

/* The checked bytes of one split's images and labels (dir NULL: Debian's Fashion-MNIST). */
static cg_status load_mnist_bytes(const char *dir, int train, cg__idx *img, cg__idx *lab)
{
  if (!dir) dir = DEFAULT_MNIST_DIR;
  const char *split = train ? "train" : "t10k";
  char img_base[64], lab_base[64], *img_path = NULL, *lab_path = NULL;
  snprintf(img_base, sizeof img_base, "%s-images-idx3-ubyte", split);
  snprintf(lab_base, sizeof lab_base, "%s-labels-idx1-ubyte", split);
  *img = (cg__idx){0};
  *lab = (cg__idx){0};
  cg_status st = load_part(dir, img_base, img, &img_path);
  if (st == CG_OK) st = load_part(dir, lab_base, lab, &lab_path);
  if (st == CG_OK) st = check_mnist(img, img_path, lab, lab_path);
  if (st != CG_OK) {
    cg__idx_free(img);
    cg__idx_free(lab);
  }
  free(img_path);
  free(lab_path);
  return st;
}

cg_status cg_mnist_load(const char *dir, int train, cg_dataset *out)
{
  if (!out) return cg_set_error(CG_EINVAL, "cg_mnist_load: out is NULL");
  cg__idx img, lab;
  cg_status st = load_mnist_bytes(dir, train, &img, &lab);
  if (st != CG_OK) return st;
  st = to_dataset(&img, &lab, out);
  cg__idx_free(&img);
  cg__idx_free(&lab);
  return st;
}

/* ======================================================================================
 * Batcher. The order of epoch e is a Fisher-Yates shuffle (i from n-1 down to 1, j uniform
 * in [0, i] by rejection sampling) driven by SplitMix64, whose state starts at the SplitMix64
 * output for the state seed + golden * (e + 1), golden = 0x9E3779B97F4A7C15. Only 64-bit
 * integer arithmetic: the same order on every machine, and any epoch can be started
 * directly, so a resumed run sees the same batches as an uninterrupted one.
 * ==================================================================================== */

struct cg_batcher {
  cg_tensor *images, *labels; /* retained; NULL when the batcher keeps bytes           */
  cg__idx pixels, label_bytes; /* byte-backed batchers: the MNIST files' bytes (owned)  */
  int64_t n, batch_size, next;
  int shuffle;
  uint64_t seed;
  int64_t *order;
};

static uint64_t splitmix64(uint64_t *state)
{
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias: draws below 2^64 mod bound are redrawn. */
static uint64_t uniform_below(uint64_t *state, uint64_t bound)
{
  uint64_t threshold = -bound % bound, r;
  do r = splitmix64(state);
  while (r < threshold);
  return r % bound;
}

static void shuffle_order(int64_t *order, int64_t n, uint64_t seed, int64_t epoch)
{
  uint64_t state = seed + 0x9E3779B97F4A7C15ULL * ((uint64_t)epoch + 1);
  state = splitmix64(&state); /* decorrelate neighbouring (seed, epoch) pairs */
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)uniform_below(&state, (uint64_t)i + 1);
    int64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

cg_batcher *cg_batcher_new(const cg_dataset *d, int64_t batch_size, int shuffle, uint64_t seed)
{
  int64_t n = 0;
  if (check_dataset(d, "cg_batcher_new", &n) != CG_OK) return NULL;
  if (batch_size < 1) {
    cg_set_error(CG_EINVAL, "cg_batcher_new: batch size %lld is not positive",
                 (long long)batch_size);
    return NULL;
  }
  cg_batcher *b = cg__calloc(1, sizeof *b);
  int64_t *order = b ? cg__malloc((size_t)(n ? n : 1) * sizeof *order) : NULL;
  if (!order) {
    free(b);
    return NULL;
  }
  *b = (cg_batcher){.images = cg_retain(d->images), .labels = cg_retain(d->labels), .n = n,
                    .batch_size = batch_size, .shuffle = shuffle != 0, .seed = seed, .order = order};
  cg_batcher_start_epoch(b, 0);
  return b;
}

cg_batcher *cg__mnist_batcher_new(const char *dir, int train, int64_t batch_size, int shuffle,
                                  uint64_t seed)
{
  if (batch_size < 1) {
    cg_set_error(CG_EINVAL, "cg__mnist_batcher_new: batch size %lld is not positive",
                 (long long)batch_size);
    return NULL;
  }
  cg__idx img, lab;
  if (load_mnist_bytes(dir, train, &img, &lab) != CG_OK) return NULL;
  int64_t n = img.shape[0];
  cg_batcher *b = cg__calloc(1, sizeof *b);
  int64_t *order = b ? cg__malloc((size_t)(n ? n : 1) * sizeof *order) : NULL;
  if (!order) {
    free(b);
    cg__idx_free(&img);
    cg__idx_free(&lab);
    return NULL;
  }
  *b = (cg_batcher){.pixels = img, .label_bytes = lab, .n = n, .batch_size = batch_size,
                    .shuffle = shuffle != 0, .seed = seed, .order = order};
  cg_batcher_start_epoch(b, 0);
  return b;
}

/* What converting one batch needs: its rows, their pixels' bytes and the output. */
typedef struct {
  const cg_batcher *b;
  const int64_t *rows;
  int64_t row; /* pixels per image */
  float *px;
} pixel_job;

/* byte / 255 for n pixels: vectorised divisions (sixteen at a time with AVX-512), faster
 * than a table lookup per pixel and the same numbers as pixel_value. */
CG_VECTOR_CLONES
static void divide_pixels(const unsigned char *restrict src, float *restrict dst, int64_t n)
{
  for (int64_t k = 0; k < n; k++) dst[k] = (float)src[k] / 255.0f;
}

static void convert_rows(void *ctx, int64_t begin, int64_t end)
{
  const pixel_job *j = ctx;
  for (int64_t i = begin; i < end; i++)
    divide_pixels(j->b->pixels.data + j->rows[i] * j->row, j->px + i * j->row, j->row);
}

/* Rows rows[0..count) of a byte-backed batcher, converted as cg_mnist_load converts them:
 * images f32 [count, h, w, 1] = byte / 255 and labels i64 [count] (caller-owned); the
 * images are split over the threads when the batch is large. */
static cg_status gather_bytes(const cg_batcher *b, const int64_t *rows, int64_t count,
                              cg_tensor **images, cg_tensor **labels)
{
  const cg__idx *img = &b->pixels;
  int64_t shape[4] = {count, img->shape[1], img->shape[2], 1};
  cg_tensor *x = cg__tensor_new(CG_F32, 4, shape), *y = cg__tensor_new(CG_I64, 1, shape);
  if (!x || !y) {
    cg_release(x);
    cg_release(y);
    return cg_last_status();
  }
  pixel_job j = {b, rows, img->shape[1] * img->shape[2], x->data};
  cg__parallel_for(count, CG_PARALLEL_MIN_ELEMENTS / (j.row ? j.row : 1) + 1, convert_rows, &j);
  int64_t *ids = y->data;
  for (int64_t i = 0; i < count; i++) ids[i] = b->label_bytes.data[rows[i]];
  *images = x;
  *labels = y;
  return CG_OK;
}

cg_status cg_batcher_start_epoch(cg_batcher *b, int64_t epoch)
{
  if (!b) return cg_set_error(CG_EINVAL, "cg_batcher_start_epoch: batcher is NULL");
  if (epoch < 0)
    return cg_set_error(CG_ERANGE, "cg_batcher_start_epoch: epoch %lld is negative",
                        (long long)epoch);
  for (int64_t i = 0; i < b->n; i++) b->order[i] = i;
  if (b->shuffle) shuffle_order(b->order, b->n, b->seed, epoch);
  b->next = 0;
  return CG_OK;
}

int cg_batcher_next(cg_batcher *b, cg_tensor **images, cg_tensor **labels)
{
  if (!b || !images || !labels) {
    cg_set_error(CG_EINVAL, "cg_batcher_next: %s is NULL",
                 !b ? "batcher" : !images ? "images" : "labels");
    return -1;
  }
  if (b->next >= b->n) return 0;
  int64_t count = b->n - b->next < b->batch_size ? b->n - b->next : b->batch_size;
  cg_tensor *x = NULL, *y = NULL;
  if (!b->images) {
    if (gather_bytes(b, b->order + b->next, count, &x, &y) != CG_OK) return -1;
  } else {
    x = gather_rows(b->images, b->order + b->next, 0, count);
    y = x ? gather_rows(b->labels, b->order + b->next, 0, count) : NULL;
    if (!y) {
      cg_release(x);
      return -1;
    }
  }
  b->next += count;
  cg__scope_adopt(x);
  cg__scope_adopt(y);
  *images = x;
  *labels = y;
  return 1;
}

int64_t cg_batcher_num_batches(const cg_batcher *b)
{
  return b ? b->n / b->batch_size + (b->n % b->batch_size != 0) : 0; /* any batch size, no overflow */
}

void cg_batcher_free(cg_batcher *b)
{
  if (!b) return;
  cg_release(b->images);
  cg_release(b->labels);
  cg__idx_free(&b->pixels);
  cg__idx_free(&b->label_bytes);
  free(b->order);
  free(b);
}

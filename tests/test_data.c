/* test_data.c - data: IDX files of every element type (plain and gzipped) with known
 * contents and every kind of corrupt one; Fashion-MNIST's real test set (shapes, first
 * labels, class counts, pixel values); MNIST-layout directories made by the test; the
 * held-out split; the batcher (every example once per epoch, the order a pure function of
 * seed and epoch, pinned against an independent computation of the documented algorithm). */
#include "util.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64];

static const char *path_in(const char *name)
{
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%.180s", dir, name);
  return buf[k];
}

static void write_file(const char *path, const void *bytes, size_t n, int gzipped)
{
  if (gzipped) {
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, bytes, (unsigned)n), (int)n);
    assert_int_equal(gzclose(gz), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
  }
}

/* An IDX file: magic 00 00 type ndim, big-endian u32 dims, then the element bytes. */
static void write_idx(const char *path, int gzipped, int type, int ndim, const uint32_t *dims,
                      const void *data, size_t n_data)
{
  unsigned char b[4096];
  size_t n = 0;
  b[n++] = 0, b[n++] = 0, b[n++] = (unsigned char)type, b[n++] = (unsigned char)ndim;
  for (int i = 0; i < ndim; i++)
    for (int s = 24; s >= 0; s -= 8) b[n++] = (unsigned char)(dims[i] >> s);
  assert_true(n + n_data <= sizeof b);
  memcpy(b + n, data, n_data);
  write_file(path, b, n + n_data, gzipped);
}

/* ======================================================================================
 * IDX
 * ==================================================================================== */

typedef struct {
  int type, ndim;
  uint32_t dims[2];
  const char *bytes; /* big-endian elements */
  size_t n_bytes;
  cg_dtype dtype;
  double values[6];
} idx_case;

static const idx_case idx_cases[] = {
    {0x08, 2, {2, 3}, "\x00\x01\x7f\x80\xfe\xff", 6, CG_I32, {0, 1, 127, 128, 254, 255}},
    {0x09, 1, {4}, "\x00\x7f\x80\xff", 4, CG_I32, {0, 127, -128, -1}},
    {0x0B, 1, {4}, "\x00\x01\x7f\xff\x80\x00\xff\xfe", 8, CG_I32, {1, 32767, -32768, -2}},
    {0x0C, 1, {3}, "\x00\x01\x00\x00\xff\xff\xff\xff\x80\x00\x00\x00", 12, CG_I32,
     {65536, -1, -2147483648.0}},
    {0x0D, 1, {2}, "\x3f\xc0\x00\x00\xc0\x20\x00\x00", 8, CG_F32, {1.5, -2.5}},
    {0x0E, 2, {1, 1}, "\x40\x09\x21\xfb\x54\x44\x2d\x18", 8, CG_F64, {3.141592653589793}},
};

static void idx_reads_every_type_plain_and_gzipped(void **state)
{
  for (size_t i = 0; i < sizeof idx_cases / sizeof idx_cases[0]; i++)
    for (int gz = 0; gz < 2; gz++) {
      const idx_case *c = &idx_cases[i];
      const char *path = path_in(gz ? "case.idx.gz" : "case.idx");
      write_idx(path, gz, c->type, c->ndim, c->dims, c->bytes, c->n_bytes);
      int64_t shape[2] = {c->dims[0], c->dims[1]};
      assert_tensor(cg_idx_read(path), c->dtype, c->ndim, shape, c->values, 0);
    }
}

typedef struct {
  const char *bytes;
  size_t n;
  const char *message;
} bad_idx_case;

static const bad_idx_case bad_idx_cases[] = {
    {"", 0, "0 bytes, too short for the 4-byte IDX magic number"},
    {"\x00\x00\x08", 3, "too short for the 4-byte IDX magic"},
    {"\x01\x00\x08\x01\x00\x00\x00\x01\x05", 9, "bad magic number 01 00 08 01"},
    {"\x00\x00\x0a\x01\x00\x00\x00\x01\x05", 9, "unknown IDX element type 0x0a"},
    {"\x00\x00\x08\x00\x05", 5, "0 dimensions; cgrad reads 1 to 8"},
    {"\x00\x00\x08\x09", 4, "9 dimensions; cgrad reads 1 to 8"},
    {"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00", 10, "the file ends inside the 2 dimensions"},
    {"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", 10, "the data is 2 bytes but the dimensions need 3"},
    {"\x00\x00\x0c\x01\x00\x00\x00\x01\x00\x00\x00", 11, "the data is 3 bytes but the dimensions need 4"},
    {"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06", 10, "there are bytes after the 1"},
    {"\x00\x00\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16, "too large"},
    /* found by fuzz/fuzz_idx: 17 bytes announcing 2^40 of data were CG_ENOMEM, because the
     * reader allocated what the header claims before reading any of it */
    {"\x00\x00\x08\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x01\x00\x07", 17,
     "the data is 1 bytes but the dimensions need 1099511627776"},
};

static void idx_corrupt_files_are_clear_errors(void **state)
{
  for (size_t i = 0; i < sizeof bad_idx_cases / sizeof bad_idx_cases[0]; i++)
    for (int gz = 0; gz < 2; gz++) {
      const bad_idx_case *c = &bad_idx_cases[i];
      const char *path = path_in(gz ? "bad.idx.gz" : "bad.idx");
      write_file(path, c->bytes, c->n, gz);
      if (cg_idx_read(path)) fail_msg("case %zu (gzip %d) was read", i, gz);
      assert_error(CG_EINVAL, c->message);
    }
}

static void idx_broken_gzip_and_missing_files(void **state)
{
  /* a gzip stream cut in half */
  unsigned char data[600];
  for (int i = 0; i < 600; i++) data[i] = (unsigned char)(i * 7919 % 251);
  const char *whole = path_in("whole.gz"), *cut = path_in("cut.gz");
  write_idx(whole, 1, 0x08, 1, (uint32_t[]){600}, data, sizeof data);
  FILE *f = fopen(whole, "rb");
  unsigned char gz[2048];
  size_t n = fread(gz, 1, sizeof gz, f);
  fclose(f);
  write_file(cut, gz, n / 2, 0);
  assert_null(cg_idx_read(cut));
  assert_error(CG_EINVAL, "cut.gz");
  /* a gzip header followed by a deflate block of the reserved type 3 */
  memset(gz + 10, 0xFF, 100);
  write_file(cut, gz, 110, 0);
  assert_null(cg_idx_read(cut));
  assert_error(CG_EINVAL, "corrupt gzip data");

  assert_null(cg_idx_read(path_in("missing.idx")));
  assert_error(CG_EIO, "cannot open");
  assert_null(cg_idx_read(NULL));
  assert_error(CG_EINVAL, "path is NULL");
}

/* ======================================================================================
 * Fashion-MNIST (Debian's dataset-fashion-mnist)
 * ==================================================================================== */

static cg_dataset test_set;

/* The file's byte back from a pixel (byte / 255 in f32). */
static long pixel_byte(float p) { return lround((double)p * 255); }

static void fashion_mnist_test_set(void **state)
{
  const cg_dataset *d = &test_set;
  assert_tensor(d->images, CG_F32, 4, ((int64_t[]){10000, 28, 28, 1}), NULL, 0);
  assert_tensor(d->labels, CG_I64, 1, ((int64_t[]){10000}), NULL, 0);
  const int64_t *y = cg_tensor_data(d->labels);
  const int64_t first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7}; /* ankle boot, pullover, trouser, ... */
  assert_memory_equal(y, first, sizeof first);
  int count[10] = {0};
  for (int i = 0; i < 10000; i++) {
    assert_in_range(y[i], 0, 9);
    count[y[i]]++;
  }
  for (int c = 0; c < 10; c++) assert_int_equal(count[c], 1000);

  const float *px = cg_tensor_data(d->images);
  float lo = 1, hi = 0;
  long long bytes = 0, first_image = 0;
  for (int64_t i = 0; i < 10000 * 784; i++) {
    lo = fminf(lo, px[i]);
    hi = fmaxf(hi, px[i]);
    assert_true(fabs(px[i] * 255.0 - (double)pixel_byte(px[i])) < 1e-4); /* k / 255 exactly */
    bytes += pixel_byte(px[i]);
    if (i < 784) first_image += pixel_byte(px[i]);
  }
  assert_true(lo == 0.0f && hi == 1.0f);
  assert_int_equal(bytes, 573469082);  /* sum of the file's pixel bytes */
  assert_int_equal(first_image, 33456);
}

static void mnist_layout_from_any_directory(void **state)
{
  /* test files plain, train files gzipped; 3 images of 2x2 */
  unsigned char px[12] = {0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8}, labels[3] = {3, 0, 9};
  write_idx(path_in("t10k-images-idx3-ubyte"), 0, 0x08, 3, (uint32_t[]){3, 2, 2}, px, 12);
  write_idx(path_in("t10k-labels-idx1-ubyte"), 0, 0x08, 1, (uint32_t[]){3}, labels, 3);
  write_idx(path_in("train-images-idx3-ubyte.gz"), 1, 0x08, 3, (uint32_t[]){1, 2, 2}, px, 4);
  write_idx(path_in("train-labels-idx1-ubyte.gz"), 1, 0x08, 1, (uint32_t[]){1}, labels, 1);
  cg_dataset d = {0};
  assert_int_equal(cg_mnist_load(dir, 0, &d), CG_OK);
  double v[12];
  for (int i = 0; i < 12; i++) v[i] = (float)px[i] / 255.0f;
  assert_tensor(d.images, CG_F32, 4, ((int64_t[]){3, 2, 2, 1}), v, 1e-7);
  assert_tensor(d.labels, CG_I64, 1, ((int64_t[]){3}), ((double[]){3, 0, 9}), 0);
  cg_dataset_free(&d);
  assert_null(d.images);
  assert_int_equal(cg_mnist_load(dir, 1, &d), CG_OK);
  assert_tensor(d.images, CG_F32, 4, ((int64_t[]){1, 2, 2, 1}), ((double[]){0, 1, 0.2, 0.4}), 1e-7);
  assert_tensor(d.labels, CG_I64, 1, ((int64_t[]){1}), ((double[]){3}), 0);
  cg_dataset_free(&d);
}

static void mnist_files_that_do_not_fit(void **state)
{
  cg_dataset d = {0};
  unsigned char px[12] = {0}, labels[3] = {0};
  write_idx(path_in("t10k-images-idx3-ubyte"), 0, 0x08, 3, (uint32_t[]){3, 2, 2}, px, 12);
  write_idx(path_in("t10k-labels-idx1-ubyte"), 0, 0x08, 1, (uint32_t[]){2}, labels, 2);
  assert_int_equal(cg_mnist_load(dir, 0, &d), CG_ESHAPE);
  assert_error(CG_ESHAPE, "has 3 images but");
  write_idx(path_in("t10k-labels-idx1-ubyte"), 0, 0x0C, 1, (uint32_t[]){3}, px, 12);
  assert_int_equal(cg_mnist_load(dir, 0, &d), CG_EINVAL);
  assert_error(CG_EINVAL, "holds IDX type 0x0c, not unsigned bytes");
  write_idx(path_in("t10k-labels-idx1-ubyte"), 0, 0x08, 1, (uint32_t[]){3}, labels, 3);
  write_idx(path_in("t10k-images-idx3-ubyte"), 0, 0x08, 2, (uint32_t[]){3, 4}, px, 12);
  assert_int_equal(cg_mnist_load(dir, 0, &d), CG_ESHAPE);
  assert_error(CG_ESHAPE, "has 2 dimensions; images need 3");
  unlink(path_in("t10k-images-idx3-ubyte"));
  assert_int_equal(cg_mnist_load(dir, 0, &d), CG_EIO);
  assert_error(CG_EIO, "t10k-images-idx3-ubyte.gz' nor");
  assert_int_equal(cg_mnist_load(dir, 0, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "out is NULL");
  assert_null(d.images); /* a failed load leaves out alone */
  unlink(path_in("t10k-labels-idx1-ubyte"));
}

/* ======================================================================================
 * Split
 * ==================================================================================== */

static void split_copies_the_first_and_last_examples(void **state)
{
  cg_dataset a = {0}, b = {0};
  assert_int_equal(cg_dataset_split(&test_set, 1000, &a, &b), CG_OK);
  assert_tensor(a.images, CG_F32, 4, ((int64_t[]){9000, 28, 28, 1}), NULL, 0);
  assert_tensor(b.images, CG_F32, 4, ((int64_t[]){1000, 28, 28, 1}), NULL, 0);
  assert_tensor(a.labels, CG_I64, 1, ((int64_t[]){9000}), NULL, 0);
  assert_tensor(b.labels, CG_I64, 1, ((int64_t[]){1000}), NULL, 0);
  const float *px = cg_tensor_data(test_set.images);
  const int64_t *y = cg_tensor_data(test_set.labels);
  assert_memory_equal(cg_tensor_data(a.images), px, 9000 * 784 * sizeof(float));
  assert_memory_equal(cg_tensor_data(b.images), px + 9000 * 784, 1000 * 784 * sizeof(float));
  assert_memory_equal(cg_tensor_data(a.labels), y, 9000 * sizeof(int64_t));
  assert_memory_equal(cg_tensor_data(b.labels), y + 9000, 1000 * sizeof(int64_t));
  assert_ptr_not_equal(cg_tensor_data(a.images), px); /* copies */
  cg_dataset_free(&a);
  cg_dataset_free(&b);

  assert_int_equal(cg_dataset_split(&test_set, 0, &a, &b), CG_OK); /* nothing held out */
  assert_int_equal(cg_tensor_dim(a.images, 0), 10000);
  assert_tensor(b.labels, CG_I64, 1, ((int64_t[]){0}), NULL, 0);
  cg_dataset_free(&a);
  cg_dataset_free(&b);
}

static void split_bad_arguments(void **state)
{
  cg_dataset a = {0}, b = {0}, d = test_set;
  assert_int_equal(cg_dataset_split(&test_set, 10001, &a, &b), CG_ERANGE);
  assert_error(CG_ERANGE, "holdout 10001 is outside 0..10000");
  assert_int_equal(cg_dataset_split(&test_set, -1, &a, &b), CG_ERANGE);
  assert_error(CG_ERANGE, "holdout -1");
  assert_int_equal(cg_dataset_split(NULL, 1, &a, &b), CG_EINVAL);
  assert_error(CG_EINVAL, "the dataset is NULL");
  assert_int_equal(cg_dataset_split(&test_set, 1, NULL, &b), CG_EINVAL);
  assert_error(CG_EINVAL, "first is NULL");
  assert_int_equal(cg_dataset_split(&d, 1, &d, &b), CG_EINVAL);
  assert_error(CG_EINVAL, "three different datasets");
  cg_dataset odd = {test_set.images, cg_zeros(CG_I64, 1, (int64_t[]){3})};
  assert_int_equal(cg_dataset_split(&odd, 1, &a, &b), CG_ESHAPE);
  assert_error(CG_ESHAPE, "images [10000,28,28,1] and labels [3] do not share a first dimension");
  assert_null(a.images);
}

/* ======================================================================================
 * Batcher
 * ==================================================================================== */

/* n examples whose image row is (i, -i) and label i. */
static cg_dataset numbered(int64_t n)
{
  double *img = malloc((size_t)(2 * n + 1) * sizeof *img), *lab = malloc((size_t)(n + 1) * sizeof *lab);
  for (int64_t i = 0; i < n; i++) img[2 * i] = (double)i, img[2 * i + 1] = -(double)i, lab[i] = (double)i;
  cg_dataset d = {cg_keep(cgt_f32(2, (int64_t[]){n, 2}, img)),
                  cg_keep(cg_cast(cgt_f64(1, (int64_t[]){n}, lab), CG_I64))};
  free(img);
  free(lab);
  return d;
}

/* One epoch's labels in batch order (out: n entries); checks rows match labels and sizes. */
static void run_epoch(cg_batcher *b, int64_t n, int64_t batch, int64_t *out)
{
  int64_t seen = 0, batches = 0;
  cg_tensor *x, *y;
  int r;
  while ((r = cg_batcher_next(b, &x, &y)) > 0) {
    int64_t m = cg_tensor_dim(y, 0);
    assert_int_equal(m, seen + batch <= n ? batch : n - seen);
    assert_int_equal(cg_tensor_dim(x, 0), m);
    for (int64_t k = 0; k < m; k++) {
      out[seen + k] = (int64_t)cg_tensor_get(y, k);
      assert_true(cg_tensor_get(x, 2 * k) == (double)out[seen + k]);
      assert_true(cg_tensor_get(x, 2 * k + 1) == -(double)out[seen + k]);
    }
    seen += m;
    batches++;
  }
  assert_int_equal(r, 0);
  assert_int_equal(seen, n);
  assert_int_equal(batches, cg_batcher_num_batches(b));
}

static void assert_permutation(const int64_t *order, int64_t n)
{
  char *hit = calloc((size_t)n, 1);
  for (int64_t i = 0; i < n; i++) {
    assert_in_range(order[i], 0, n - 1);
    assert_int_equal(hit[order[i]], 0);
    hit[order[i]] = 1;
  }
  free(hit);
}

static void batcher_visits_every_example_once_per_epoch(void **state)
{
  enum { N = 1000, B = 64 };
  cg_dataset d = numbered(N);
  cg_batcher *b = cg_batcher_new(&d, B, 1, 42), *again = cg_batcher_new(&d, B, 1, 42);
  cg_batcher *other_seed = cg_batcher_new(&d, B, 1, 43);
  assert_int_equal(cg_batcher_num_batches(b), 16); /* 15 of 64 and one of 40 */
  static int64_t e0[N], e1[N], e0_again[N], seed43[N], back[N];
  run_epoch(b, N, B, e0);
  assert_permutation(e0, N);
  cg_tensor *x, *y;
  assert_int_equal(cg_batcher_next(b, &x, &y), 0); /* over until a new epoch starts */
  assert_int_equal(cg_batcher_next(b, &x, &y), 0);
  assert_int_equal(cg_batcher_start_epoch(b, 1), CG_OK);
  run_epoch(b, N, B, e1);
  assert_permutation(e1, N);
  run_epoch(again, N, B, e0_again);
  run_epoch(other_seed, N, B, seed43);
  assert_memory_equal(e0, e0_again, sizeof e0); /* the same seed and epoch: the same order */
  assert_memory_not_equal(e0, e1, sizeof e0);   /* another epoch, another order */
  assert_memory_not_equal(e0, seed43, sizeof e0);
  int in_place = 0;
  for (int i = 0; i < N; i++) in_place += e0[i] == i;
  assert_true(in_place < 20); /* shuffled: about one fixed point expected */
  assert_int_equal(cg_batcher_start_epoch(b, 0), CG_OK); /* any epoch can be replayed */
  run_epoch(b, N, B, back);
  assert_memory_equal(back, e0, sizeof e0);
  cg_batcher_free(b);
  cg_batcher_free(again);
  cg_batcher_free(other_seed);
  cg_dataset_free(&d);
}

static void batcher_order_is_pinned(void **state)
{
  /* SplitMix64 + Fisher-Yates as documented in dataset.c, computed independently (in
   * Python's arbitrary-precision integers): the same order on every machine */
  const int64_t expect[3][10] = {{5, 7, 3, 1, 8, 2, 9, 4, 0, 6},  /* seed 42, epoch 0 */
                                 {1, 3, 0, 4, 5, 8, 2, 7, 6, 9},  /* seed 42, epoch 1 */
                                 {3, 0, 4, 2, 7, 5, 8, 1, 9, 6}}; /* seed 7, epoch 0  */
  const uint64_t seeds[3] = {42, 42, 7};
  const int64_t epochs[3] = {0, 1, 0};
  cg_dataset d = numbered(10);
  for (int i = 0; i < 3; i++) {
    cg_batcher *b = cg_batcher_new(&d, 4, 1, seeds[i]);
    assert_int_equal(cg_batcher_start_epoch(b, epochs[i]), CG_OK);
    int64_t order[10];
    run_epoch(b, 10, 4, order);
    assert_memory_equal(order, expect[i], sizeof order);
    cg_batcher_free(b);
  }
  cg_batcher *plain = cg_batcher_new(&d, 3, 0, 42); /* no shuffling: in order */
  int64_t order[10];
  run_epoch(plain, 10, 3, order);
  for (int i = 0; i < 10; i++) assert_int_equal(order[i], i);
  cg_batcher_free(plain);
  cg_dataset_free(&d);
}

static void batcher_on_fashion_mnist(void **state)
{
  /* the batcher holds its own references: the dataset may go first */
  cg_dataset copy = {cg_retain(test_set.images), cg_retain(test_set.labels)};
  cg_batcher *b = cg_batcher_new(&copy, 128, 1, 1);
  cg_dataset_free(&copy);
  assert_int_equal(cg_batcher_num_batches(b), 79); /* 78 of 128, one of 16 */
  long long bytes = 0;
  int count[10] = {0}, batches = 0;
  cg_tensor *x, *y;
  while (cg_batcher_next(b, &x, &y) > 0) {
    const float *px = cg_tensor_data(x);
    for (int64_t i = 0; i < cg_tensor_size(x); i++) bytes += pixel_byte(px[i]);
    for (int64_t i = 0; i < cg_tensor_size(y); i++) count[(int)cg_tensor_get(y, i)]++;
    assert_int_equal(cg_tensor_ndim(x), 4);
    assert_int_equal(cg_tensor_dim(x, 1), 28);
    batches++;
    if (batches == 79) assert_int_equal(cg_tensor_dim(x, 0), 16);
  }
  assert_int_equal(batches, 79);
  assert_int_equal(bytes, 573469082); /* every image exactly once */
  for (int c = 0; c < 10; c++) assert_int_equal(count[c], 1000);
  cg_batcher_free(b);
}

static void batcher_bad_arguments(void **state)
{
  cg_dataset d = numbered(5), empty = numbered(0);
  assert_null(cg_batcher_new(&d, 0, 1, 1));
  assert_error(CG_EINVAL, "batch size 0 is not positive");
  assert_null(cg_batcher_new(NULL, 2, 1, 1));
  assert_error(CG_EINVAL, "the dataset is NULL");
  cg_dataset odd = {d.images, empty.labels};
  assert_null(cg_batcher_new(&odd, 2, 1, 1));
  assert_error(CG_ESHAPE, "do not share a first dimension");
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_dataset symbolic = {cg_placeholder(CG_F32, 2, (int64_t[]){-1, 2}, "x"), d.labels};
  cg_graph_exit(g);
  assert_null(cg_batcher_new(&symbolic, 2, 1, 1));
  assert_error(CG_EINVAL, "not be symbolic graph tensors");
  cg_graph_free(g);
  cg_batcher *b = cg_batcher_new(&d, 2, 1, 1);
  cg_tensor *x, *y;
  assert_int_equal(cg_batcher_next(b, NULL, &y), -1);
  assert_error(CG_EINVAL, "images is NULL");
  assert_int_equal(cg_batcher_next(NULL, &x, &y), -1);
  assert_error(CG_EINVAL, "batcher is NULL");
  assert_int_equal(cg_batcher_start_epoch(b, -1), CG_ERANGE);
  assert_error(CG_ERANGE, "epoch -1 is negative");
  assert_int_equal(cg_batcher_start_epoch(NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "batcher is NULL");
  assert_int_equal(cg_batcher_num_batches(NULL), 0);
  cg_batcher_free(b);
  cg_batcher_free(NULL);
  cg_batcher *none = cg_batcher_new(&empty, 4, 1, 1); /* an empty dataset: no batches */
  assert_int_equal(cg_batcher_num_batches(none), 0);
  assert_int_equal(cg_batcher_next(none, &x, &y), 0);
  cg_batcher_free(none);
  cg_dataset_free(&d);
  cg_dataset_free(&empty);
}

/* ======================================================================================
 * main
 * ==================================================================================== */

static int setup_group(void **state)
{
  snprintf(dir, sizeof dir, "/tmp/cgrad_data_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  if (cg_mnist_load(NULL, 0, &test_set) != CG_OK) {
    fprintf(stderr, "cannot load Fashion-MNIST (scripts/install-deps installs it): %s\n",
            cg_last_error());
    return -1;
  }
  return 0;
}

static int teardown_group(void **state)
{
  cg_dataset_free(&test_set);
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(path_in(e->d_name));
  if (d) closedir(d);
  return rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(idx_reads_every_type_plain_and_gzipped),
      cgt_test(idx_corrupt_files_are_clear_errors),
      cgt_test(idx_broken_gzip_and_missing_files),
      cgt_test(fashion_mnist_test_set),
      cgt_test(mnist_layout_from_any_directory),
      cgt_test(mnist_files_that_do_not_fit),
      cgt_test(split_copies_the_first_and_last_examples),
      cgt_test(split_bad_arguments),
      cgt_test(batcher_visits_every_example_once_per_epoch),
      cgt_test(batcher_order_is_pinned),
      cgt_test(batcher_on_fashion_mnist),
      cgt_test(batcher_bad_arguments),
  };
  return cmocka_run_group_tests(tests, setup_group, teardown_group);
}

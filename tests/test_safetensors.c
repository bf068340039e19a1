/* test_safetensors.c - the safetensors format: bit-exact round trips for every dtype (rank 0
 * and empty tensors, metadata), the writer's bytes against the reference writer's layout,
 * files built by hand as Python's writers make them, every kind of corrupt file (each
 * truncation of a valid file, bad JSON, bad offsets, oversized header, bad dtypes), atomic
 * saving (a failed save keeps the old file and leaves no temporary file), bad arguments. */
#include "util.h"
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ======================================================================================
 * Files in a private temporary directory
 * ==================================================================================== */

static char dir[64];

static const char *path_in(const char *name)
{
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%.180s", dir, name);
  return buf[k];
}

static void write_file(const char *path, const void *bytes, size_t n)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static unsigned char *read_file(const char *path, size_t *n)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1);
  assert_int_equal(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

/* A file made of the 8-byte little-endian length of header, header, then data. */
static void write_safetensors(const char *path, const char *header, const void *data, size_t n_data)
{
  size_t n = strlen(header);
  unsigned char *b = malloc(8 + n + n_data + 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
  memcpy(b + 8, header, n);
  if (n_data) memcpy(b + 8 + n, data, n_data);
  write_file(path, b, 8 + n + n_data);
  free(b);
}

static int count_temp_files(void)
{
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
  closedir(d);
  return n;
}

static void assert_same_bytes(const cg_tensor *a, const cg_tensor *b)
{
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(cg_tensor_dtype(a), cg_tensor_dtype(b));
  assert_int_equal(cg_tensor_ndim(a), cg_tensor_ndim(b));
  for (int i = 0; i < cg_tensor_ndim(a); i++) assert_int_equal(cg_tensor_shape(a)[i], cg_tensor_shape(b)[i]);
  size_t n = (size_t)cg_tensor_size(a) * cg_dtype_size(cg_tensor_dtype(a));
  if (n) assert_memory_equal(cg_tensor_data(a), cg_tensor_data(b), n);
}

/* ======================================================================================
 * Round trips
 * ==================================================================================== */

static void round_trip_is_bit_exact_for_every_dtype(void **state)
{
  float f32[6] = {1.5f, -0.0f, NAN, INFINITY, 1e-45f /* subnormal */, 3.14159274f};
  double f64[4] = {-1e308, 5e-324, -INFINITY, 0.1};
  int32_t i32[3] = {INT32_MIN, -1, INT32_MAX};
  int64_t i64[2] = {INT64_MIN, INT64_MAX};
  uint8_t b8[5] = {1, 0, 0, 1, 1};
  cg_tensor *t[8] = {
      cg_tensor_from(CG_F32, 2, (int64_t[]){2, 3}, f32),
      cg_tensor_from(CG_F64, 1, (int64_t[]){4}, f64),
      cg_tensor_from(CG_I32, 3, (int64_t[]){1, 3, 1}, i32),
      cg_tensor_from(CG_I64, 1, (int64_t[]){2}, i64),
      cg_tensor_from(CG_BOOL, 1, (int64_t[]){5}, b8),
      cg_scalar(CG_F32, -2.5),                         /* rank 0 */
      cg_zeros(CG_F64, 2, (int64_t[]){0, 3}),          /* empty  */
      cg_zeros(CG_I32, 1, (int64_t[]){0}),             /* empty  */
  };
  const char *names[8] = {"layer/kernel", "w64", "ids", "big", "mask", "scale", "empty", "none"};
  const char *keys[2] = {"step", "model"}, *values[2] = {"42", "mlp ünïcode ✓"};
  const char *path = path_in("round.safetensors");
  assert_int_equal(cg_safetensors_save(path, names, t, 8, keys, values, 2), CG_OK);

  cg_safetensors *f = cg_safetensors_load(path);
  assert_non_null(f);
  assert_int_equal(cg_safetensors_count(f), 8);
  /* names come back sorted */
  const char *sorted[8] = {"big", "empty", "ids", "layer/kernel", "mask", "none", "scale", "w64"};
  for (int i = 0; i < 8; i++) assert_string_equal(cg_safetensors_name(f, i), sorted[i]);
  for (int i = 0; i < 8; i++) assert_same_bytes(cg_safetensors_get(f, names[i]), t[i]);
  assert_int_equal(cg_tensor_ndim(cg_safetensors_get(f, "scale")), 0);
  assert_string_equal(cg_safetensors_meta(f, "step"), "42");
  assert_string_equal(cg_safetensors_meta(f, "model"), "mlp ünïcode ✓");
  assert_null(cg_safetensors_meta(f, "epoch")); /* absent: NULL, not an error */
  assert_int_equal(cg_last_status(), CG_OK);
  cg_safetensors_free(f);
  assert_int_equal(count_temp_files(), 0);
}

static void no_tensors_and_no_metadata(void **state)
{
  const char *path = path_in("nothing.safetensors");
  assert_int_equal(cg_safetensors_save(path, NULL, NULL, 0, NULL, NULL, 0), CG_OK);
  size_t n;
  unsigned char *b = read_file(path, &n);
  /* as the reference writer: 8, "{}" and six spaces */
  assert_int_equal(n, 16);
  assert_memory_equal(b, "\x08\0\0\0\0\0\0\0{}      ", 16);
  free(b);
  cg_safetensors *f = cg_safetensors_load(path);
  assert_non_null(f);
  assert_int_equal(cg_safetensors_count(f), 0);
  cg_safetensors_free(f);
}

/* Saving over an existing file replaces it. */
static void saving_twice_replaces_the_file(void **state)
{
  const char *path = path_in("twice.safetensors");
  const char *name = "x";
  cg_tensor *a = cg_scalar(CG_F64, 1), *b = cg_scalar(CG_F64, 2);
  assert_int_equal(cg_safetensors_save(path, &name, &a, 1, NULL, NULL, 0), CG_OK);
  assert_int_equal(cg_safetensors_save(path, &name, &b, 1, NULL, NULL, 0), CG_OK);
  cg_safetensors *f = cg_safetensors_load(path);
  assert_tensor(cg_safetensors_get(f, "x"), CG_F64, 0, NULL, ((double[]){2}), 0);
  cg_safetensors_free(f);
  assert_int_equal(count_temp_files(), 0);
}

/* What a save killed midway left (a temporary file named for a process that is gone) the
   next save of the same file removes; a live process's, another file's, or a name that is
   not a temporary's, it leaves. */
static void a_save_removes_what_killed_saves_left(void **state)
{
  pid_t child = fork();
  if (child == 0) _exit(0);
  assert_true(child > 0);
  waitpid(child, NULL, 0); /* its pid is now no process's */
  const char *path = path_in("resaved.safetensors");
  char dead[300], live[300], other[300], odd[300];
  snprintf(dead, sizeof dead, "%s.tmp.%ld.3", path, (long)child);
  snprintf(live, sizeof live, "%s.tmp.%ld.3", path, (long)getppid());
  snprintf(other, sizeof other, "%s.tmp.%ld.3", path_in("other.safetensors"), (long)child);
  snprintf(odd, sizeof odd, "%s.tmp.%ld.x3", path, (long)child);
  const char *left[4] = {dead, live, other, odd};
  for (int i = 0; i < 4; i++) write_file(left[i], "half", 4);
  const char *name = "x";
  cg_tensor *a = cg_scalar(CG_F64, 1);
  assert_int_equal(cg_safetensors_save(path, &name, &a, 1, NULL, NULL, 0), CG_OK);
  struct stat st;
  assert_int_equal(stat(dead, &st), -1);
  for (int i = 1; i < 4; i++) {
    assert_int_equal(stat(left[i], &st), 0);
    unlink(left[i]);
  }
  assert_int_equal(count_temp_files(), 0);
}

/* ======================================================================================
 * The writer's bytes: compact JSON, metadata first, tensors by alignment then name, the
 * header padded with spaces so the data starts at a multiple of 8
 * ==================================================================================== */

/* The file is the length, json padded with spaces to a multiple of 8, then data. */
static void expect_file(const char *path, const char *json, const void *data, size_t n_data)
{
  size_t n, nj = strlen(json), nh = (nj + 7) / 8 * 8;
  unsigned char *b = read_file(path, &n);
  assert_int_equal(n, 8 + nh + n_data);
  uint64_t len = 0;
  for (int i = 7; i >= 0; i--) len = len << 8 | b[i];
  assert_int_equal(len, nh);
  assert_memory_equal(b + 8, json, nj);
  for (size_t i = nj; i < nh; i++) assert_int_equal(b[8 + i], ' ');
  assert_memory_equal(b + 8 + nh, data, n_data);
  free(b);
}

static void header_bytes_match_the_reference_writer(void **state)
{
  /* the reference implementation's own test: "attn.0", F32 [1,2,3] = 0..5 */
  float v[6] = {0, 1, 2, 3, 4, 5};
  cg_tensor *t = cg_tensor_from(CG_F32, 3, (int64_t[]){1, 2, 3}, v);
  const char *name = "attn.0", *path = path_in("attn.safetensors");
  assert_int_equal(cg_safetensors_save(path, &name, &t, 1, NULL, NULL, 0), CG_OK);
  const char *json = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
  assert_int_equal(strlen(json), 64); /* a multiple of 8 already: no padding */
  expect_file(path, json, v, sizeof v);

  /* BOOL "a" sorts after I64 "b" (8-byte types first), metadata leads */
  cg_tensor *ab[2] = {cg_tensor_from(CG_BOOL, 1, (int64_t[]){1}, (uint8_t[]){1}),
                      cg_tensor_from(CG_I64, 1, (int64_t[]){1}, (int64_t[]){-2})};
  const char *names[2] = {"a", "b"}, *key = "format", *value = "pt";
  path = path_in("order.safetensors");
  assert_int_equal(cg_safetensors_save(path, names, ab, 2, &key, &value, 1), CG_OK);
  const unsigned char data[9] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1};
  expect_file(path,
              "{\"__metadata__\":{\"format\":\"pt\"},"
              "\"b\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
              "\"a\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[8,9]}}", /* + 5 spaces */
              data, sizeof data);
}

/* ======================================================================================
 * Files written by hand, as Python's writers make them
 * ==================================================================================== */

static void le_bytes(unsigned char *out, uint64_t v, int n)
{
  for (int i = 0; i < n; i++) out[i] = (unsigned char)(v >> (8 * i));
}

static void reads_a_file_as_pythons_safetensors_writes_it(void **state)
{
  /* safetensors.torch.save_file({"embedding.ids": int64 [3], "linear.weight": float32 [2,2]},
   * metadata={"format": "pt"}): 8-byte types first, compact JSON padded to 8 bytes */
  const char *header = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"embedding.ids\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]},"
                       "\"linear.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[24,40]}}";
  char padded[512];
  size_t n = strlen(header);
  snprintf(padded, sizeof padded, "%s%.*s", header, (int)((8 - n % 8) % 8), "       ");
  assert_int_equal(strlen(padded) % 8, 0);
  unsigned char data[40];
  le_bytes(data + 0, 7, 8);
  le_bytes(data + 8, (uint64_t)-1, 8);
  le_bytes(data + 16, 1ULL << 40, 8);
  le_bytes(data + 24, 0x3FC00000, 4); /* 1.5f  */
  le_bytes(data + 28, 0xC0000000, 4); /* -2.0f */
  le_bytes(data + 32, 0x3E800000, 4); /* 0.25f */
  le_bytes(data + 36, 0x40400000, 4); /* 3.0f  */
  const char *path = path_in("python.safetensors");
  write_safetensors(path, padded, data, sizeof data);

  cg_safetensors *f = cg_safetensors_load(path);
  assert_non_null(f);
  assert_int_equal(cg_safetensors_count(f), 2);
  assert_string_equal(cg_safetensors_meta(f, "format"), "pt");
  assert_tensor(cg_safetensors_get(f, "embedding.ids"), CG_I64, 1, ((int64_t[]){3}),
                ((double[]){7, -1, 1099511627776.0}), 0);
  assert_tensor(cg_safetensors_get(f, "linear.weight"), CG_F32, 2, ((int64_t[]){2, 2}),
                ((double[]){1.5, -2, 0.25, 3}), 0);
  cg_safetensors_free(f);
}

static void reads_a_file_with_spaced_json_and_any_key_order(void **state)
{
  /* a plain Python writer: json.dumps (", " and ": "), keys in any order, no padding, the
   * header's order unrelated to the data's */
  const char *header = "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}, "
                       "\"b\": {\"shape\": [1], \"data_offsets\": [0, 8], \"dtype\": \"F64\"}}";
  unsigned char data[16];
  le_bytes(data, 0xC009000000000000ULL, 8); /* -3.125 */
  le_bytes(data + 8, 0x3F800000, 4);        /* 1.0f   */
  le_bytes(data + 12, 0xBF000000, 4);       /* -0.5f  */
  const char *path = path_in("spaced.safetensors");
  write_safetensors(path, header, data, sizeof data);
  cg_safetensors *f = cg_safetensors_load(path);
  assert_non_null(f);
  assert_tensor(cg_safetensors_get(f, "b"), CG_F64, 1, ((int64_t[]){1}), ((double[]){-3.125}), 0);
  assert_tensor(cg_safetensors_get(f, "w"), CG_F32, 1, ((int64_t[]){2}), ((double[]){1, -0.5}), 0);
  assert_null(cg_safetensors_meta(f, "format"));
  cg_safetensors_free(f);
}

/* ======================================================================================
 * Corrupt files
 * ==================================================================================== */

static void every_truncation_fails_cleanly(void **state)
{
  const char *names[2] = {"a", "b"}, *key = "k", *value = "v";
  cg_tensor *t[2] = {cg_arange(CG_F32, 0, 5, 1), cg_arange(CG_I64, 0, 3, 1)};
  const char *good = path_in("good.safetensors"), *cut = path_in("cut.safetensors");
  assert_int_equal(cg_safetensors_save(good, names, t, 2, &key, &value, 1), CG_OK);
  size_t n;
  unsigned char *b = read_file(good, &n);
  for (size_t len = 0; len < n; len++) {
    write_file(cut, b, len);
    assert_null(cg_safetensors_load(cut));
    assert_error(CG_EINVAL, "cut.safetensors");
  }
  /* one byte too many is as wrong as one too few */
  b[n] = 0;
  write_file(cut, b, n + 1);
  assert_null(cg_safetensors_load(cut));
  assert_error(CG_EINVAL, "data bytes [44, 45) are not covered");
  free(b);
}

typedef struct {
  const char *header;
  size_t n_data; /* zero bytes after the header */
  const char *message;
} corrupt_case;

static const corrupt_case corrupt_cases[] = {
    {"{\"a\":{\"dtype\":\"F32\",", 0, "the header is not valid JSON"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}}", 4, "not valid JSON"},
    {"{\"a\":1,\"a\":2}", 0, "duplicate"},
    {"{\"\xff\xfe\":{}}", 0, "not valid JSON"}, /* invalid UTF-8 */
    {"[1,2]", 0, "the header is not a JSON object"},
    {"", 0, "not valid JSON"},
    {"{\"a\":5}", 0, "header entry 'a' is not an object"},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a' has no \"dtype\" string"},
    {"{\"a\":{\"dtype\":\"X9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'X9'"},
    {"{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2,
     "dtype F16, which cgrad does not support"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "negative or non-integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "negative or non-integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, "no \"shape\" array"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}",
     4, "shape too large"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
     "9 dimensions; cgrad supports at most 8"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "no \"data_offsets\" pair"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "no \"data_offsets\" pair"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "need 0 <= begin <= end"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "need 0 <= begin <= end"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
     "tensor 'a' is F32 with 8 bytes but its data_offsets [0, 4] span 4"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 16,
     "runs past the end of the data (16 bytes)"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
     "tensor 'b' at [4, 12] overlaps tensor 'a' ending at 8"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
     "data bytes [4, 8) are not covered"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "data bytes [0, 4) are not covered"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6, "data bytes [4, 6) are not covered"},
    {"{\"__metadata__\":{\"step\":3}}", 0, "\"__metadata__\" value of 'step' is not a string"},
    {"{\"__metadata__\":[\"x\"]}", 0, "\"__metadata__\" is not an object"},
};

static void corrupt_headers_are_clear_errors(void **state)
{
  unsigned char zeros[64] = {0};
  const char *path = path_in("corrupt.safetensors");
  for (size_t i = 0; i < sizeof corrupt_cases / sizeof corrupt_cases[0]; i++) {
    const corrupt_case *c = &corrupt_cases[i];
    write_safetensors(path, c->header, zeros, c->n_data);
    if (cg_safetensors_load(path)) fail_msg("case %zu (%s) loaded", i, c->header);
    assert_error(CG_EINVAL, c->message);
  }
}

static void bool_bytes_must_be_zero_or_one(void **state)
{
  const char *path = path_in("bool.safetensors");
  write_safetensors(path, "{\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}",
                    "\x01\x00\x02", 3);
  assert_null(cg_safetensors_load(path));
  assert_error(CG_EINVAL, "BOOL tensor 'm' holds byte 2 at element 2");
}

static void oversized_header_lengths_are_refused(void **state)
{
  const char *path = path_in("huge.safetensors");
  unsigned char b[16] = {0};
  uint64_t lengths[3] = {200000000ULL, UINT64_MAX, 100000001ULL};
  for (int i = 0; i < 3; i++) {
    le_bytes(b, lengths[i], 8);
    write_file(path, b, sizeof b);
    assert_null(cg_safetensors_load(path));
    assert_error(CG_EINVAL, "(100 MB) limit");
  }
  le_bytes(b, 9, 8); /* fits the limit but not the 16-byte file */
  write_file(path, b, sizeof b);
  assert_null(cg_safetensors_load(path));
  assert_error(CG_EINVAL, "header length 9 runs past the end of the file (16 bytes)");
}

static void unreadable_paths_are_io_errors(void **state)
{
  assert_null(cg_safetensors_load(path_in("missing.safetensors")));
  assert_error(CG_EIO, "cannot open");
  assert_null(cg_safetensors_load(dir));
  assert_error(CG_EIO, "is not a regular file");
}

/* ======================================================================================
 * Atomic saving
 * ==================================================================================== */

static void assert_holds_one(const char *path, double v)
{
  cg_safetensors *f = cg_safetensors_load(path);
  assert_non_null(f);
  assert_int_equal(cg_safetensors_count(f), 1);
  assert_tensor(cg_safetensors_get(f, "w"), CG_F64, 0, NULL, &v, 0);
  cg_safetensors_free(f);
}

static void a_failed_write_keeps_the_old_file(void **state)
{
  const char *path = path_in("atomic.safetensors"), *name = "w";
  cg_tensor *old = cg_scalar(CG_F64, 7);
  assert_int_equal(cg_safetensors_save(path, &name, &old, 1, NULL, NULL, 0), CG_OK);

  /* a disk that fills up: files may not grow past 1 KiB while the big save runs */
  cg_tensor *big = cg_zeros(CG_F64, 1, (int64_t[]){4096});
  struct rlimit saved, small;
  getrlimit(RLIMIT_FSIZE, &saved);
  small = saved;
  small.rlim_cur = 1024;
  void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
  setrlimit(RLIMIT_FSIZE, &small);
  cg_status st = cg_safetensors_save(path, &name, &big, 1, NULL, NULL, 0);
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, previous);
  assert_int_equal(st, CG_EIO);
  assert_error(CG_EIO, "cannot write");
  assert_holds_one(path, 7);
  assert_int_equal(count_temp_files(), 0);
}

static void a_failed_rename_keeps_the_old_file(void **state)
{
  /* the target is a directory: everything is written, then the rename is refused */
  const char *target = path_in("is_a_dir"), *name = "w";
  assert_int_equal(mkdir(target, 0700), 0);
  cg_tensor *t = cg_scalar(CG_F64, 1);
  assert_int_equal(cg_safetensors_save(target, &name, &t, 1, NULL, NULL, 0), CG_EIO);
  assert_error(CG_EIO, "cannot rename the new file over");
  struct stat sb;
  assert_int_equal(stat(target, &sb), 0);
  assert_true(S_ISDIR(sb.st_mode));
  assert_int_equal(count_temp_files(), 0);
  rmdir(target);
}

static void an_unwritable_directory_keeps_the_old_file(void **state)
{
  const char *sub = path_in("locked"), *name = "w";
  char path[300];
  snprintf(path, sizeof path, "%s/ckpt.safetensors", sub);
  assert_int_equal(mkdir(sub, 0700), 0);
  cg_tensor *old = cg_scalar(CG_F64, 3), *new = cg_scalar(CG_F64, 4);
  assert_int_equal(cg_safetensors_save(path, &name, &old, 1, NULL, NULL, 0), CG_OK);
  chmod(sub, 0500);
  cg_status st = cg_safetensors_save(path, &name, &new, 1, NULL, NULL, 0);
  chmod(sub, 0700);
  if (geteuid() != 0) { /* root writes anyway: then the save simply succeeds */
    assert_int_equal(st, CG_EIO);
    assert_error(CG_EIO, "cannot create");
    assert_holds_one(path, 3);
  } else {
    assert_int_equal(st, CG_OK);
  }
  /* a directory that does not exist */
  snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
  assert_int_equal(cg_safetensors_save(path, &name, &old, 1, NULL, NULL, 0), CG_EIO);
  assert_error(CG_EIO, "No such file or directory");
  snprintf(path, sizeof path, "%s/ckpt.safetensors", sub);
  unlink(path);
  rmdir(sub);
}

/* ======================================================================================
 * Bad arguments
 * ==================================================================================== */

static void bad_save_arguments(void **state)
{
  const char *path = path_in("args.safetensors");
  cg_tensor *t[2] = {cg_scalar(CG_F32, 1), cg_scalar(CG_F32, 2)};
  const char *two[2] = {"a", "a"}, *null_name[1] = {NULL}, *meta[1] = {"__metadata__"};
  const char *bad_utf8[1] = {"\xc3\x28"}, *k2[2] = {"k", "k"}, *v2[2] = {"1", "2"};
  cg_tensor *null_t[1] = {NULL};
  assert_int_equal(cg_safetensors_save(NULL, two, t, 1, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "path is NULL");
  assert_int_equal(cg_safetensors_save(path, two, t, -1, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "negative count");
  assert_int_equal(cg_safetensors_save(path, NULL, t, 1, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "names is NULL but n is 1");
  assert_int_equal(cg_safetensors_save(path, null_name, t, 1, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "name 0 is NULL");
  assert_int_equal(cg_safetensors_save(path, two, null_t, 1, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "tensor 0 ('a') is NULL");
  assert_int_equal(cg_safetensors_save(path, two, t, 2, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "tensor name 'a' given twice");
  assert_int_equal(cg_safetensors_save(path, meta, t, 1, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "'__metadata__' is reserved");
  assert_int_equal(cg_safetensors_save(path, bad_utf8, t, 1, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "not valid UTF-8");
  assert_int_equal(cg_safetensors_save(path, two, t, 1, k2, v2, 2), CG_EINVAL);
  assert_error(CG_EINVAL, "metadata key 'k' given twice");
  assert_int_equal(cg_safetensors_save(path, two, t, 1, k2, NULL, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "meta_values is NULL");
  assert_int_equal(cg_safetensors_save(path, two, t, 1, null_name, v2, 1), CG_EINVAL);
  assert_error(CG_EINVAL, "metadata key 0 is NULL");
  cg_graph *g = cg_graph_new(); /* a graph tensor has no value to save */
  cg_graph_enter(g);
  cg_tensor *ph = cg_placeholder(CG_F32, 1, (int64_t[]){-1}, "x");
  cg_graph_exit(g);
  assert_int_equal(cg_safetensors_save(path, two, &ph, 1, NULL, NULL, 0), CG_EINVAL);
  assert_error(CG_EINVAL, "tensor 'a' is a symbolic graph tensor");
  cg_graph_free(g);
  assert_int_equal(access(path, F_OK), -1); /* nothing was written */
  assert_int_equal(count_temp_files(), 0);
}

static void bad_load_and_lookup_arguments(void **state)
{
  assert_null(cg_safetensors_load(NULL));
  assert_error(CG_EINVAL, "path is NULL");
  const char *path = path_in("lookup.safetensors"), *name = "x";
  cg_tensor *t = cg_scalar(CG_I32, 5);
  assert_int_equal(cg_safetensors_save(path, &name, &t, 1, NULL, NULL, 0), CG_OK);
  cg_safetensors *f = cg_safetensors_load(path);
  assert_null(cg_safetensors_get(f, "y"));
  assert_error(CG_ENOTFOUND, "has no tensor named 'y'");
  assert_null(cg_safetensors_get(f, NULL));
  assert_error(CG_EINVAL, "name is NULL");
  assert_null(cg_safetensors_get(NULL, "x"));
  assert_error(CG_EINVAL, "file is NULL");
  assert_null(cg_safetensors_name(f, 1));
  assert_error(CG_ERANGE, "index 1 is outside 0..0");
  assert_null(cg_safetensors_meta(f, NULL));
  assert_error(CG_EINVAL, "key is NULL");
  assert_int_equal(cg_safetensors_count(NULL), 0);
  cg_safetensors_free(f);
  cg_safetensors_free(NULL);
}

/* ======================================================================================
 * main
 * ==================================================================================== */

static int make_dir(void **state)
{
  snprintf(dir, sizeof dir, "/tmp/cgrad_safetensors_XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(path_in(e->d_name));
  if (d) closedir(d);
  return rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(round_trip_is_bit_exact_for_every_dtype),
      cgt_test(no_tensors_and_no_metadata),
      cgt_test(saving_twice_replaces_the_file),
      cgt_test(a_save_removes_what_killed_saves_left),
      cgt_test(header_bytes_match_the_reference_writer),
      cgt_test(reads_a_file_as_pythons_safetensors_writes_it),
      cgt_test(reads_a_file_with_spaced_json_and_any_key_order),
      cgt_test(every_truncation_fails_cleanly),
      cgt_test(corrupt_headers_are_clear_errors),
      cgt_test(bool_bytes_must_be_zero_or_one),
      cgt_test(oversized_header_lengths_are_refused),
      cgt_test(unreadable_paths_are_io_errors),
      cgt_test(a_failed_write_keeps_the_old_file),
      cgt_test(a_failed_rename_keeps_the_old_file),
      cgt_test(an_unwritable_directory_keeps_the_old_file),
      cgt_test(bad_save_arguments),
      cgt_test(bad_load_and_lookup_arguments),
  };
  return cmocka_run_group_tests(tests, make_dir, remove_dir);
}

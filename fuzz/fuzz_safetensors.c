/* fuzz_safetensors.c - libFuzzer target for the safetensors reader: the input is the whole
 * file. A bad file must be refused with CG_EINVAL or CG_EIO and a message; a file that loads
 * must give consistent lookups and survive a round trip through the writer unchanged. */
#include "common.h"
#include <stdlib.h>
#include <string.h>

static void check_loaded(const cg_safetensors *f)
{
  int n = cg_safetensors_count(f);
  fz_check(n >= 0, "count %d", n);
  const char **names = n ? calloc((size_t)n, sizeof *names) : NULL;
  cg_tensor **tensors = n ? calloc((size_t)n, sizeof *tensors) : NULL;
  if (n && (!names || !tensors)) abort();
  for (int i = 0; i < n; i++) {
    names[i] = cg_safetensors_name(f, i);
    fz_check(names[i] != NULL, "name %d of %d is NULL", i, n);
    if (i) fz_check(strcmp(names[i - 1], names[i]) < 0, "names not sorted at %d", i);
    tensors[i] = cg_safetensors_get(f, names[i]);
    fz_check(tensors[i] != NULL, "no tensor for listed name '%s'", names[i]);
    int64_t size = 1;
    for (int d = 0; d < cg_tensor_ndim(tensors[i]); d++) size *= cg_tensor_shape(tensors[i])[d];
    fz_check(size == cg_tensor_size(tensors[i]), "'%s': size %lld for its shape", names[i],
             (long long)cg_tensor_size(tensors[i]));
  }
  fz_check(cg_safetensors_name(f, n) == NULL, "name past the end");
  cg_clear_error();
  (void)cg_safetensors_meta(f, "__metadata__");
  (void)cg_safetensors_meta(f, "optimizer_iterations");

  /* Round trip: what loaded is written again and must read back identical. */
  const char *path = fz_path("round_trip.safetensors");
  cg_status st = cg_safetensors_save(path, names, tensors, n, NULL, NULL, 0);
  fz_check(st == CG_OK, "a loaded file could not be saved again");
  cg_safetensors *g = cg_safetensors_load(path);
  fz_check(g != NULL, "a file the writer made does not load");
  fz_check(cg_safetensors_count(g) == n, "round trip count %d != %d", cg_safetensors_count(g), n);
  for (int i = 0; i < n; i++) {
    cg_tensor *a = tensors[i], *b = cg_safetensors_get(g, names[i]);
    fz_check(b != NULL, "'%s' lost in the round trip", names[i]);
    fz_check(cg_tensor_dtype(a) == cg_tensor_dtype(b) && cg_tensor_ndim(a) == cg_tensor_ndim(b) &&
                 !memcmp(cg_tensor_shape(a), cg_tensor_shape(b),
                         (size_t)cg_tensor_ndim(a) * sizeof(int64_t)) &&
                 !memcmp(cg_tensor_data(a), cg_tensor_data(b),
                         (size_t)cg_tensor_size(a) * cg_dtype_size(cg_tensor_dtype(a))),
             "'%s' changed in the round trip", names[i]);
  }
  cg_safetensors_free(g);
  free(names);
  free(tensors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *path = fz_write_file("in.safetensors", data, size);
  cg_safetensors *f = cg_safetensors_load(path);
  if (!f) {
    cg_status st = fz_check_error(cg_last_status(), "cg_safetensors_load");
    fz_check(st == CG_EINVAL || st == CG_EIO, "a %zu-byte file was refused with %s", size,
             cg_status_name(st));
  } else {
    check_loaded(f);
    cg_safetensors_free(f);
  }
  cg_clear_error();
  return 0;
}

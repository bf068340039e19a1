/* fuzz_mnist.c - libFuzzer target for cg_mnist_load: the input is split into an images and a
 * labels IDX file (its first two bytes say where) in an MNIST-layout directory. A pair that
 * loads must be [n, rows, cols, 1] f32 in [0, 1] and [n] i64 in 0..255; anything else is
 * an error with a message, and the output is left alone. */
#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2) return 0;
  size_t cut = (size_t)(data[0] << 8 | data[1]);
  data += 2, size -= 2;
  if (cut > size) cut = size;
  fz_write_file("t10k-images-idx3-ubyte", data, cut);
  fz_write_file("t10k-labels-idx1-ubyte", data + cut, size - cut);
  cg_dataset d = {NULL, NULL};
  cg_status st = cg_mnist_load(fz_dir(), 0, &d);
  if (st != CG_OK) {
    fz_check_error(st, "cg_mnist_load");
    fz_check(st != CG_ENOMEM, "a %zu-byte pair of files needed too much memory", size);
    fz_check(!d.images && !d.labels, "a failed load wrote into its output");
  } else {
    const int64_t *is = cg_tensor_shape(d.images), *ls = cg_tensor_shape(d.labels);
    fz_check(cg_tensor_dtype(d.images) == CG_F32 && cg_tensor_ndim(d.images) == 4 && is[3] == 1,
             "images are not f32 [n, rows, cols, 1]");
    fz_check(cg_tensor_dtype(d.labels) == CG_I64 && cg_tensor_ndim(d.labels) == 1 && ls[0] == is[0],
             "labels are not i64 [n]");
    const float *px = cg_tensor_data(d.images);
    for (int64_t i = 0; i < cg_tensor_size(d.images); i++)
      fz_check(px[i] >= 0 && px[i] <= 1, "pixel %lld is %g", (long long)i, px[i]);
    const int64_t *ids = cg_tensor_data(d.labels);
    for (int64_t i = 0; i < ls[0]; i++)
      fz_check(ids[i] >= 0 && ids[i] <= 255, "label %lld is %lld", (long long)i, (long long)ids[i]);
    cg_dataset_free(&d);
  }
  cg_clear_error();
  return 0;
}

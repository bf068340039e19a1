/* fuzz_idx.c - libFuzzer target for the IDX reader on the file as given: plain IDX bytes,
 * or gzip bytes (zlib reads both), so corrupt and truncated gzip streams are covered too.
 * A bad file is CG_EINVAL or CG_EIO with a message; a good one has the shape it announces. */
#include "common.h"
#include "idx_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  int gzipped = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  fz_check_idx(fz_write_file("in.idx", data, size), gzipped ? NULL : data, size);
  return 0;
}

/* fuzz_idx_gzip.c - libFuzzer target for the IDX reader's gzip path: the input after its
 * first byte is an IDX file, which is gzip-compressed before reading, so the fuzzer works on
 * the IDX structure and zlib still sees valid streams. The first byte can also cut the
 * compressed stream short or flip one of its bytes, to reach truncated and corrupt gzip. */
#include "common.h"
#include "idx_check.h"
#include <stdlib.h>
#include <zlib.h>

static size_t gzip_bytes(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
  z_stream z = {0};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  size_t len = z.total_out;
  deflateEnd(&z);
  return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || size > (1u << 20)) return 0;
  uint8_t ctrl = data[0];
  const uint8_t *plain = data + 1;
  size_t n = size - 1, cap = n + n / 100 + 64;
  uint8_t *gz = malloc(cap);
  if (!gz) abort();
  size_t len = gzip_bytes(plain, n, gz, cap);
  int damaged = 0;
  if ((ctrl & 3) == 1) { /* truncated: drop up to 63 bytes from the end */
    size_t cut = (size_t)(ctrl >> 2) + 1;
    len = cut < len ? len - cut : 0;
    damaged = 1;
  } else if ((ctrl & 3) == 2 && len) { /* one corrupt byte */
    gz[(size_t)(ctrl >> 2) * 7919 % len] ^= 0x5a;
    damaged = 1;
  }
  /* a damaged stream may still decode (a flipped byte in the gzip header's mtime does not
   * matter), but then to something other than plain: compare only intact streams */
  fz_check_idx(fz_write_file("in.idx.gz", gz, len), damaged ? NULL : plain, n);
  free(gz);
  return 0;
}

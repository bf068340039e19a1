/* common.h - what the libFuzzer targets in fuzz/ share: a reader that turns the fuzzer's
 * bytes into sizes, integers and floats (zeros once the bytes run out), a private temporary
 * directory for the readers that take a path, and the check that stops the run (a crash
 * libFuzzer records) when the library breaks one of its own promises. */
#ifndef CG_FUZZ_COMMON_H
#define CG_FUZZ_COMMON_H

#include "cgrad.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const uint8_t *p;
  size_t n;
} fz_bytes;

uint8_t fz_u8(fz_bytes *b);
uint32_t fz_u32(fz_bytes *b);
uint64_t fz_u64(fz_bytes *b);
/* An attribute-like integer: mostly small (-3..7), sometimes up to 255, sometimes a value
 * at an overflow edge (INT64_MAX, 2^31, 2^32, ...), sometimes 64 raw bits. */
int64_t fz_int(fz_bytes *b);
/* A float: mostly small multiples of 1/4, sometimes NaN, +-Inf, huge, tiny or -0. */
double fz_double(fz_bytes *b);

/* "<private temp dir>/<name>", holding exactly n bytes of data afterwards. */
const char *fz_write_file(const char *name, const void *data, size_t n);
const char *fz_path(const char *name);
const char *fz_dir(void);

/* A broken library promise: print what and where, then abort (libFuzzer saves the input). */
#define fz_check(cond, ...) ((cond) ? (void)0 : fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__))
void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((noreturn, format(printf, 4, 5)))
#endif
    ;

/* Every failed call must leave a status and a message; returns the status. */
cg_status fz_check_error(cg_status st, const char *what);

#endif

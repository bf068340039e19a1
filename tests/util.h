/* util.h - what every test program shares: cmocka, value checks with tolerances, and
 * checks that an error has the expected code and message. */
#ifndef CG_TEST_UTIL_H
#define CG_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "cgrad.h"

/* Asserts t has dtype, shape and (within tol, relative+absolute) the given values. */
#define assert_tensor(t, dtype, ndim, shape, values, tol) \
  cgt_assert_tensor((t), (dtype), (ndim), (shape), (values), (tol), __FILE__, __LINE__)
void cgt_assert_tensor(const cg_tensor *t, cg_dtype dtype, int ndim, const int64_t *shape,
                       const double *values, double tol, const char *file, int line);

/* Asserts the call returned an error: code and a substring of cg_last_error(). Clears it. */
#define assert_error(code, substring) cgt_assert_error((code), (substring), __FILE__, __LINE__)
void cgt_assert_error(cg_status code, const char *substring, const char *file, int line);

/* A tensor of f64 values (shape given), in the current scope. */
cg_tensor *cgt_f64(int ndim, const int64_t *shape, const double *values);
cg_tensor *cgt_f32(int ndim, const int64_t *shape, const double *values);

/* Numerically checks fn's gradient at x in float64 (fails the test with the report). */
#define assert_gradcheck(fn, user, x, n, order) \
  cgt_assert_gradcheck((fn), (user), (x), (n), (order), __FILE__, __LINE__)
void cgt_assert_gradcheck(cg_fn fn, void *user, cg_tensor *const *x, int n, int order,
                          const char *file, int line);

/* cmocka setup/teardown that open and close a scope around each test, and check that
 * no error is left pending and no tape is recording. */
int cgt_setup(void **state);
int cgt_teardown(void **state);
#define cgt_test(f) cmocka_unit_test_setup_teardown(f, cgt_setup, cgt_teardown)

#endif

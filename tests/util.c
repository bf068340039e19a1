/* util.c - shared test helpers: tensor value checks, error checks, gradient checks, and
 * the per-test scope. */
#include "util.h"
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void cgt_assert_tensor(const cg_tensor *t, cg_dtype dtype, int ndim, const int64_t *shape,
                       const double *values, double tol, const char *file, int line)
{
  if (!t) {
    print_error("%s:%d: tensor is NULL (%s)\n", file, line, cg_last_error());
    _fail(file, line);
  }
  char got[160];
  if (cg_tensor_dtype(t) != dtype) {
    print_error("%s:%d: dtype %s, expected %s\n", file, line, cg_dtype_name(cg_tensor_dtype(t)),
                   cg_dtype_name(dtype));
    _fail(file, line);
  }
  int same = cg_tensor_ndim(t) == ndim;
  for (int i = 0; same && i < ndim; i++) same = cg_tensor_shape(t)[i] == shape[i];
  if (!same) {
    print_error("%s:%d: shape %s differs from the expected one\n", file, line,
                   cg_shape_str(t, got, sizeof got));
    _fail(file, line);
  }
  for (int64_t i = 0; values && i < cg_tensor_size(t); i++) {
    double v = cg_tensor_get(t, i), e = values[i];
    bool ok = (isnan(e) && isnan(v)) || (isinf(e) && v == e) || fabs(v - e) <= tol * (1 + fabs(e));
    if (!ok) {
      print_error("%s:%d: element %lld is %.17g, expected %.17g\n", file, line, (long long)i, v, e);
      _fail(file, line);
    }
  }
}

void cgt_assert_error(cg_status code, const char *substring, const char *file, int line)
{
  cg_status st = cg_last_status();
  const char *msg = cg_last_error();
  if (st != code || (substring && !strstr(msg, substring))) {
    print_error("%s:%d: error %s \"%s\", expected %s containing \"%s\"\n", file, line,
                   cg_status_name(st), msg, cg_status_name(code), substring ? substring : "");
    _fail(file, line);
  }
  cg_clear_error();
}

static cg_tensor *from_f64(cg_dtype d, int ndim, const int64_t *shape, const double *values)
{
  cg_tensor *t = cg_tensor_from(CG_F64, ndim, shape, values);
  return d == CG_F64 ? t : cg_cast(t, d);
}

cg_tensor *cgt_f64(int ndim, const int64_t *shape, const double *values)
{
  return from_f64(CG_F64, ndim, shape, values);
}

cg_tensor *cgt_f32(int ndim, const int64_t *shape, const double *values)
{
  return from_f64(CG_F32, ndim, shape, values);
}

void cgt_assert_gradcheck(cg_fn fn, void *user, cg_tensor *const *x, int n, int order,
                          const char *file, int line)
{
  cg_gradcheck_opts opts = {.order = order};
  cg_gradcheck_report r;
  if (cg_gradcheck(fn, user, x, n, &opts, &r) != CG_OK) {
    print_error("%s:%d: %s\n", file, line, r.message[0] ? r.message : cg_last_error());
    _fail(file, line);
  }
}

int cgt_setup(void **state)
{
  cg_clear_error();
  *state = (void *)(intptr_t)cg_scope_begin();
  return 0;
}

int cgt_teardown(void **state)
{
  return cg_scope_end((cg_scope)(intptr_t)*state) == CG_OK ? 0 : -1;
}

/* gradcheck_table.c - joins the per-family gradient-check tables and runs one row: random
 * inputs from a seed, float inputs cast to the dtype under test, cg_gradcheck at order 1
 * (and 2 where the row allows it). */
#include "cases.h"
#include <stdlib.h>
#include <string.h>

const cg_grad_case *cg_grad_cases(int *n)
{
  static cg_grad_case *all;
  static int count;
  if (!all) {
    const struct { const cg_grad_case *rows; int n; } families[] = {
        {cg_cases_unary, cg_cases_unary_n}, {cg_cases_binary, cg_cases_binary_n},
        {cg_cases_reduce, cg_cases_reduce_n}, {cg_cases_matmul, cg_cases_matmul_n},
        {cg_cases_shape, cg_cases_shape_n}, {cg_cases_index, cg_cases_index_n},
        {cg_cases_nn, cg_cases_nn_n},       {cg_cases_conv, cg_cases_conv_n},
    };
    int total = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) total += families[f].n;
    cg_grad_case *rows = malloc((size_t)total * sizeof *rows);
    if (!rows) {
      *n = 0;
      return NULL;
    }
    int k = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
      for (int i = 0; i < families[f].n; i++) rows[k++] = families[f].rows[i];
    count = total;
    all = rows;
  }
  *n = count;
  return all;
}

static cg_tensor *make_input(const cg_case_input *in, cg_dtype float_dtype, uint64_t seed);

static cg_tensor *call_row(cg_tensor *const *x, int n, void *user)
{
  const cg_grad_case *c = user;
  if (c->build) return c->build(x, n, (void *)c);
  cg_attrs a = {0};
  if (c->attrs) c->attrs(&a);
  return cg_call(c->op, x, n, &a);
}

cg_tensor *cg_grad_case_call(const cg_grad_case *c, cg_tensor *const *x, int n)
{
  return call_row(x, n, (void *)c);
}

cg_tensor *cg_grad_case_input(const cg_grad_case *c, int i, cg_dtype dtype, uint64_t seed)
{
  return make_input(&c->in[i], dtype, seed * 131 + (uint64_t)i);
}

static cg_tensor *make_input(const cg_case_input *in, cg_dtype float_dtype, uint64_t seed)
{
  if (in->dtype == CG_BOOL) {
    cg_tensor *u = cg_random_uniform(CG_F64, in->ndim, in->shape, 0, 1, seed);
    return cg_greater(u, cg_scalar(CG_F64, 0.5));
  }
  cg_dtype d = cg_dtype_is_float(in->dtype) ? float_dtype : in->dtype;
  return cg_random_uniform(d, in->ndim, in->shape, in->lo, in->hi, seed);
}

cg_status cg_run_grad_case(const cg_grad_case *c, cg_dtype dtype, int order, uint64_t seed,
                           cg_gradcheck_report *report)
{
  cg_scope s = cg_scope_begin();
  cg_tensor *x[4] = {0};
  cg_status st = CG_OK;
  if (c->n_in < 1 || c->n_in > 4) st = cg_set_error(CG_EINVAL, "case %s: %d inputs", c->op, c->n_in);
  for (int i = 0; i < c->n_in && st == CG_OK; i++)
    if (!(x[i] = cg_grad_case_input(c, i, dtype, seed))) st = cg_last_status();
  if (st == CG_OK) {
    cg_gradcheck_opts opts = {.order = order == 2 && c->order2 ? 2 : 1, .seed = seed};
    st = cg_gradcheck(call_row, (void *)c, x, c->n_in, &opts, report);
  }
  cg_scope_end(s);
  return st;
}

/* cases.h - the gradient-check table: rows of (op, input shapes and domains, attributes)
 * that `cgrad gradcheck` and the test suite run. One table per op family (cases_<family>.c);
 * gradcheck_table.c joins them. A meta-test fails if a differentiable op has no row. */
#ifndef CG_CASES_H
#define CG_CASES_H

#include "cgrad.h"

typedef struct {
  cg_dtype dtype;                /* CG_F64 for a differentiated input (cast for --dtype f32);
                                    CG_I32/CG_I64/CG_BOOL for an integer or mask input      */
  int ndim;
  int64_t shape[CG_MAX_DIMS];
  double lo, hi;                 /* values drawn uniformly from [lo, hi) (integers: floor) */
} cg_case_input;

typedef struct cg_grad_case {
  const char *op;                /* registered op type the row checks                       */
  const char *label;             /* what is special: "broadcast [2,3]+[3]", "rank 0", ...   */
  int n_in;
  cg_case_input in[4];
  void (*attrs)(cg_attrs *a);    /* optional: the attributes for cg_call                    */
  /* optional: builds the checked output from the inputs when cg_call(op, x, attrs) does not
     fit (ops with several outputs, attributes that are shapes, ...). Must call op. */
  cg_tensor *(*build)(cg_tensor *const *x, int n, void *user);
  int order2;                    /* 1: also check the second derivative                     */
} cg_grad_case;

/* Every row, in family order; the count is written to *n. */
const cg_grad_case *cg_grad_cases(int *n);

/* Runs one row: random inputs from seed, cast float inputs to dtype, gradcheck at order
 * 1 (and 2 when asked and the row allows it). Fills report; CG_OK when it passes. */
cg_status cg_run_grad_case(const cg_grad_case *c, cg_dtype dtype, int order, uint64_t seed,
                           cg_gradcheck_report *report);

/* The row's function applied to x (what gradient checks differentiate). */
cg_tensor *cg_grad_case_call(const cg_grad_case *c, cg_tensor *const *x, int n);
/* Input i of the row, drawn from seed, float inputs in dtype. */
cg_tensor *cg_grad_case_input(const cg_grad_case *c, int i, cg_dtype dtype, uint64_t seed);

/* The family tables (each file defines one; keep the name <family>). */
#define CG_DECLARE_CASES(family)                      \
  extern const cg_grad_case cg_cases_##family[];      \
  extern const int cg_cases_##family##_n
CG_DECLARE_CASES(unary);
CG_DECLARE_CASES(binary);
CG_DECLARE_CASES(reduce);
CG_DECLARE_CASES(matmul);
CG_DECLARE_CASES(shape);
CG_DECLARE_CASES(index);
CG_DECLARE_CASES(nn);
CG_DECLARE_CASES(conv);

#endif

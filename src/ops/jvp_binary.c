/* jvp_binary.c - forward-mode rules of the broadcasting binary ops and Where (binary.c):
 * da, db are the input tangents (either may be missing: zero); the engine broadcasts a
 * result of an input's shape to the output's. Comparisons and logic have no tangent. */
#include "jvp_rules.h"

#define A cg_node_input(op, 0)
#define B cg_node_input(op, 1)
#define Y cg_node_output(op, 0)

/* Add: dy = da + db */
static cg_status add_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  out[0] = cg__jvp_sum(t[0], t[1]);
  return cg_status_of(out[0]);
}

/* Sub: dy = da - db */
static cg_status sub_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  out[0] = !t[1] ? t[0] : t[0] ? cg_sub(t[0], t[1]) : cg_neg(t[1]);
  return cg_status_of(out[0]);
}

/* Mul: dy = da * b + a * db (bilinear) */
static cg_status mul_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  return cg__jvp_multilinear(op, t, out, 0x3);
}

/* Div: dy = da / b - db * (a / b) / b */
static cg_status div_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_tensor *da = t[0] ? cg_div(t[0], B) : NULL;
  cg_tensor *db = t[1] ? cg_neg(cg_mul(cg_div(t[1], B), cg_div(A, B))) : NULL;
  out[0] = cg__jvp_sum(da, db);
  return cg_status_of(out[0]);
}

/* Pow: dy = da * b a^(b-1) + db * y ln a (ln a taken as 0 where a <= 0, as the gradient) */
static cg_status pow_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  cg_tensor *a = A, *b = B, *da = NULL, *db = NULL;
  if (t[0]) da = cg_mul(t[0], cg_mul(b, cg_pow(a, cg_sub(b, cg_scalar_like(b, 1)))));
  if (t[1]) {
    cg_tensor *a_positive = cg_greater(a, cg_scalar_like(a, 0));
    db = cg_mul(t[1], cg_mul(Y, cg_log(cg_where(a_positive, a, cg_scalar_like(a, 1)))));
  }
  out[0] = cg__jvp_sum(da, db);
  return cg_status_of(out[0]);
}

/* dy = where(a_chosen, da, db), a missing tangent being 0 (Maximum, Minimum; ties pick a) */
static cg_tensor *chosen(cg_tensor *a_chosen, cg_tensor *const *t)
{
  cg_tensor *zero = cg_scalar_like(t[0] ? t[0] : t[1], 0);
  return cg_where(a_chosen, t[0] ? t[0] : zero, t[1] ? t[1] : zero);
}

/* Maximum: dy = a >= b ? da : db */
static cg_status maximum_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  out[0] = chosen(cg_greater_equal(A, B), t);
  return cg_status_of(out[0]);
}

/* Minimum: dy = a <= b ? da : db */
static cg_status minimum_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  out[0] = chosen(cg_less_equal(A, B), t);
  return cg_status_of(out[0]);
}

/* SquaredDifference: dy = 2 (a - b) (da - db) */
static cg_status squared_difference_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out,
                                        void *user)
{
  cg_tensor *d = !t[1] ? t[0] : t[0] ? cg_sub(t[0], t[1]) : cg_neg(t[1]);
  out[0] = cg_mul(cg_scalar_like(Y, 2), cg_mul(cg_sub(A, B), d));
  return cg_status_of(out[0]);
}

/* Where(cond, a, b): dy = where(cond, da, db); cond has no tangent */
static cg_status where_jvp(const cg_node *op, cg_tensor *const *t, cg_tensor **out, void *user)
{
  if (!t[1] && !t[2]) return CG_OK;
  out[0] = chosen(cg_node_input(op, 0), t + 1);
  return cg_status_of(out[0]);
}

cg_status cg__register_binary_jvps(void)
{
  static const cg_jvp_row rows[] = {
      {"Add", add_jvp},         {"Sub", sub_jvp},         {"Mul", mul_jvp},
      {"Div", div_jvp},         {"Pow", pow_jvp},         {"Maximum", maximum_jvp},
      {"Minimum", minimum_jvp}, {"SquaredDifference", squared_difference_jvp},
      {"Where", where_jvp},
  };
  return cg__register_jvp_rows(rows, sizeof rows / sizeof rows[0]);
}

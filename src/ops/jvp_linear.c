/* jvp_linear.c - the JVP rules every linear op shares: apply the op itself, with the same
 * attributes, to the tangents of the inputs it is linear in. Also registering a family's
 * table of rules. The per-family rules are in jvp_<family>.c. */
#include "jvp_rules.h"
#include <stdlib.h>

static bool in_mask(unsigned mask, int i)
{
  return mask == CG_JVP_ALL_INPUTS || (i < 32 && ((mask >> i) & 1u));
}

cg_tensor *cg__jvp_sum(cg_tensor *a, cg_tensor *b)
{
  if (a && b) return cg_add(a, b);
  return a ? a : b;
}

/* in[i] = op's inputs; the caller swaps tangents in. */
static cg_tensor **inputs_of(const cg_node *op, cg_tensor **small, int n_small)
{
  int n = cg_node_num_inputs(op);
  cg_tensor **in = n <= n_small ? small : cg__malloc((size_t)n * sizeof *in);
  for (int i = 0; in && i < n; i++) in[i] = cg_node_input(op, i);
  return in;
}

/* Runs op (by its type, with its attributes) on in, into out (all its outputs). */
static cg_status apply_op(const cg_node *op, cg_tensor *const *in, cg_tensor **out)
{
  int n_out = 0;
  cg_status st = cg_call_n(cg_node_op_type(op), in, cg_node_num_inputs(op), cg_node_attrs(op), out,
                           CG_MAX_OUTPUTS, &n_out);
  if (st == CG_OK && n_out != cg_node_num_outputs(op))
    st = cg_set_error(CG_EUSER, "%s: applied to tangents it gave %d outputs, not %d", cg_node_op_type(op),
                      n_out, cg_node_num_outputs(op));
  return st;
}

cg_status cg__jvp_multilinear(const cg_node *op, cg_tensor *const *t, cg_tensor **t_out, unsigned linear)
{
  int n_in = cg_node_num_inputs(op), n_out = cg_node_num_outputs(op);
  cg_tensor *small[8], **in = inputs_of(op, small, 8);
  if (!in) return CG_ENOMEM;
  cg_status st = CG_OK;
  for (int o = 0; o < n_out; o++) t_out[o] = NULL;
  for (int i = 0; i < n_in && st == CG_OK; i++) {
    if (!t[i] || !in_mask(linear, i)) continue;
    cg_tensor *term[CG_MAX_OUTPUTS];
    in[i] = t[i];
    st = apply_op(op, in, term);
    in[i] = cg_node_input(op, i);
    for (int o = 0; o < n_out && st == CG_OK; o++)
      if (!(t_out[o] = cg__jvp_sum(t_out[o], term[o]))) st = cg_last_status();
  }
  if (in != small) free(in);
  return st;
}

cg_status cg__jvp_joint_linear(const cg_node *op, cg_tensor *const *t, cg_tensor **t_out, unsigned linear)
{
  int n_in = cg_node_num_inputs(op);
  cg_tensor *small[8], **in = inputs_of(op, small, 8);
  if (!in) return CG_ENOMEM;
  cg_status st = CG_OK;
  for (int i = 0; i < n_in && st == CG_OK; i++)
    if (in_mask(linear, i) && !(in[i] = t[i] ? t[i] : cg_zeros_like(in[i]))) st = cg_last_status();
  if (st == CG_OK) st = apply_op(op, in, t_out);
  if (in != small) free(in);
  return st;
}

cg_status cg__register_jvp_rows(const cg_jvp_row *rows, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    cg_status st = cg__register_builtin_jvp(rows[i].op, rows[i].rule);
    if (st != CG_OK) return st;
  }
  return CG_OK;
}

/* jvp.h - forward mode inside the library: the JVP registry (jvp.c), one recorded node's
 * output tangents from its input tangents (its rule, a custom jvp, or the double-VJP
 * fallback), and a linear custom op's gradient by transposing its jvp. The walk over a
 * recorded tape, cg_jvp, cg_hvp and cg_hessian live in forward.c. */
#ifndef CG_AUTODIFF_JVP_H
#define CG_AUTODIFF_JVP_H

#include "node.h"

/* Registers a built-in op's JVP rule while the built-ins register (no cg__ensure_builtins). */
cg_status cg__register_builtin_jvp(const char *name, cg_jvp_fn fn);

/* Tangents of n's outputs from those of its inputs (t_in[i] NULL: zero). Writes n->n_out
 * entries of t_out: NULL (zero, or an output that is not float), else a tensor of the
 * output's dtype and shape in the current scope. */
cg_status cg__jvp_node(const cg_node *n, cg_tensor *const *t_in, cg_tensor **t_out);

/* The gradient of a CG_CUSTOM_LINEAR custom op that has a jvp but no backward: reverse mode
 * through the jvp (J^T dy = d<jvp(t), dy>/dt). Called by cg__custom_backward; fills dx for
 * the node's inputs. */
cg_status cg__custom_linear_backward(const cg_node *n, cg_tensor *const *dy, cg_tensor **dx);

#endif

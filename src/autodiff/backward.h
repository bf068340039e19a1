/* backward.h - the one reverse walk, as tapes and graphs call it. */
#ifndef CG_AUTODIFF_BACKWARD_H
#define CG_AUTODIFF_BACKWARD_H

#include "tape.h"

typedef struct {
  cg_node *const *nodes;        /* in execution (topological) order                       */
  size_t n_nodes;
  const cg_idset *followed;     /* sources outside it get none (a tape's); NULL: any      */
  cg_tensor *const *targets;    /* summed: d(sum_t <targets[t], seeds[t]>)                 */
  cg_tensor *const *seeds;      /* NULL, or per target (NULL entry: ones)                 */
  int n_targets;
  cg_tensor *const *stops;      /* no gradient flows through these                        */
  int n_stops;
  cg_tensor *const *sources;
  int n_src;
  cg_unconnected unconnected;
  const cg_hook_list *hooks;    /* a tape's hooks (tensor hooks always apply)             */
} cg_backward_args;

/* out[i] = d targets / d sources[i]: new tensors handed to the current scope (or NULL). The
 * gradient functions' ops are recorded by open tapes, or become nodes of an entered graph. */
cg_status cg__backward(const cg_backward_args *a, cg_tensor **out);

#endif

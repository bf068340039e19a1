/* rules.h - accounting, declared order and needs_input_grad, as the reverse walk uses them. */
#ifndef CG_AUTODIFF_RULES_H
#define CG_AUTODIFF_RULES_H

#include "node.h"

void cg__count_rule(const char *name, cg_rule_kind kind); /* custom gradients, JVP rules */
void cg__count_gradient(cg_grad_entry *e, const char *op_type);
/* dx seen through a barrier whose gradient is an error naming rule (inputs: dx, n's inputs). */
cg_tensor *cg__once_barrier(cg_tensor *dx, const cg_node *n, const char *rule);
/* Around a gradient call: which inputs of n need a gradient (restored after). Inline: the
 * reverse walk does this for every node. */
static inline void cg__enter_gradient(const cg_node *n, const bool *needs, const cg_node **saved_node,
                                      const bool **saved_needs)
{
  cg_thread_state *s = cg__tls();
  *saved_node = s->grad_node;
  *saved_needs = s->grad_needs;
  s->grad_node = n;
  s->grad_needs = needs;
}
static inline void cg__leave_gradient(const cg_node *saved_node, const bool *saved_needs)
{
  cg_thread_state *s = cg__tls();
  s->grad_node = saved_node;
  s->grad_needs = saved_needs;
}
/* Check on register: verifies e on its first run at n's inputs. Off (0), on (1), or not yet
 * read from the environment (-1); inline, as the reverse walk asks for every node. */
extern int cg__rule_checks;
cg_status cg__check_rule_once_slow(const cg_node *n, cg_grad_entry *e);
static inline cg_status cg__check_rule_once(const cg_node *n, cg_grad_entry *e)
{
  return __atomic_load_n(&cg__rule_checks, __ATOMIC_RELAXED) == 0 ? CG_OK : cg__check_rule_once_slow(n, e);
}
/* The same for the JVP rule registered for n's op type, on its first run: *checked is the
 * rule's registry flag (set here, cleared when the rule is replaced). */
cg_status cg__check_jvp_once(const cg_node *n, int *checked);

#endif

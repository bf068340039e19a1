/* custom.h - custom gradients as the dispatcher, tapes and backward walk see them. */
#ifndef CG_AUTODIFF_CUSTOM_H
#define CG_AUTODIFF_CUSTOM_H

#include "node.h"

void cg__custom_record_retain(cg_custom_record *r);
const cg_ctx *cg__custom_ctx(const cg_custom_record *r);
const cg_custom_def *cg__custom_def(const cg_custom_record *r);
void cg__custom_record_free(cg_custom_record *r); /* drops one reference; NULL ignored */
/* Calls the user's backward for a recorded custom gradient and checks what it returned. */
cg_status cg__custom_backward(const cg_node *n, cg_tensor *const *dy, cg_tensor **dx);
/* A trainable variable was read: every custom forward running on this thread collects it. */
cg_status cg__collect_var_read(cg_var *v, cg_tensor *value);

#endif

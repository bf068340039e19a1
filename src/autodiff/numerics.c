/* numerics.c - the numeric check mode (tf.debugging.enable_check_numerics): when on, every
 * op's float outputs are scanned, and the first NaN or Inf is an error naming the op, its
 * position (on the innermost tape, or in the graph run), the pass and the input shapes. */
#include "tape.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int enabled = -1; /* -1: not yet read from CG_CHECK_NUMERICS */

void cg_set_check_numerics(int on) { __atomic_store_n(&enabled, on != 0, __ATOMIC_RELAXED); }

int cg_check_numerics_enabled(void)
{
  int e = __atomic_load_n(&enabled, __ATOMIC_RELAXED);
  if (e < 0) {
    const char *v = getenv("CG_CHECK_NUMERICS");
    e = v && *v && strcmp(v, "0") != 0;
    __atomic_store_n(&enabled, e, __ATOMIC_RELAXED);
  }
  return e;
}

static int64_t first_bad(const cg_tensor *t)
{
  if (t->dtype == CG_F32) {
    const float *v = t->data;
    for (int64_t i = 0; i < t->size; i++)
      if (!isfinite(v[i])) return i;
  } else if (t->dtype == CG_F64) {
    const double *v = t->data;
    for (int64_t i = 0; i < t->size; i++)
      if (!isfinite(v[i])) return i;
  }
  return -1;
}

cg_status cg__check_numerics(const cg_node *n, const char *position)
{
  for (int o = 0; o < n->n_out; o++) {
    const cg_tensor *t = n->out[o];
    int64_t i = first_bad(t);
    if (i < 0) continue;
    char shapes[512] = "", s[160];
    for (int k = 0; k < n->n_in && strlen(shapes) < sizeof shapes - 170; k++) {
      strcat(shapes, k ? ", " : "");
      strcat(shapes, cg_shape_str(n->in[k], s, sizeof s));
    }
    const char *grad = cg__tls()->building_gradient;
    double v = cg__load(t->dtype, t->data, i);
    return cg_set_error(CG_ECHECK,
                        "check numerics: %s produced %s at element %lld of output %d (%s %s) %s, %s%s; "
                        "inputs %s",
                        n->type, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf", (long long)i, o,
                        cg_dtype_name(t->dtype), cg_shape_str(t, s, sizeof s), position,
                        grad ? "in the backward pass, inside the gradient of " : "in the forward pass",
                        grad ? grad : "", shapes[0] ? shapes : "none");
  }
  return CG_OK;
}

/* Where an eagerly run op stands: its index on the innermost recording tape. */
void cg__eager_position(char *buf, size_t n)
{
  const cg_thread_state *s = cg__tls();
  if (s->n_tapes > 0)
    snprintf(buf, n, "(op #%zu on the innermost tape)", s->tapes[s->n_tapes - 1]->n_nodes + 1);
  else
    snprintf(buf, n, "(run eagerly, no tape)");
}

/* error.c - the per-thread last error (code and message) and the per-thread state block
 * that scopes, tapes and overrides hang from. */
#include "internal.h"
#include <stdarg.h>
#include <stdlib.h>

_Thread_local cg_thread_state cg__tls_state; /* internal.h reads it inline (cg__tls) */

cg_status cg_last_status(void) { return cg__tls_state.status; }
const char *cg_last_error(void) { return cg__tls_state.message; }

void cg_clear_error(void)
{
  cg__tls_state.status = CG_OK;
  cg__tls_state.message[0] = '\0';
}

cg_status cg_set_error(cg_status s, const char *fmt, ...)
{
  cg__tls_state.status = s;
  if (!fmt) { /* a user callback's slip must not crash the host */
    snprintf(cg__tls_state.message, sizeof cg__tls_state.message, "(no message)");
    return s;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cg__tls_state.message, sizeof cg__tls_state.message, fmt, ap);
  va_end(ap);
  return s;
}

cg_status cg_status_of(const cg_tensor *t)
{
  if (t) return CG_OK;
  return cg__tls_state.status != CG_OK ? cg__tls_state.status : CG_EINVAL;
}

cg_status cg__null_input(const char *op, int i)
{
  if (cg__tls_state.status != CG_OK) return cg__tls_state.status;
  return cg_set_error(CG_EINVAL, "%s: input %d is NULL", op, i);
}

const char *cg_status_name(cg_status s)
{
  static const char *const names[] = {
      "CG_OK",       "CG_EINVAL",  "CG_EDTYPE", "CG_ESHAPE", "CG_ERANGE",
      "CG_ENOMEM",   "CG_ENOTFOUND", "CG_EEXIST", "CG_ENOGRAD", "CG_ESTATE",
      "CG_EUSER",    "CG_EIO",     "CG_ECHECK"};
  if ((unsigned)s < sizeof names / sizeof names[0]) return names[s];
  return "CG_E?";
}

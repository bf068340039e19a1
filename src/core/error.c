/* error.c - the per-thread last error (code and message) and the per-thread state block
 * that scopes, tapes and overrides hang from. */
#include "internal.h"
#include <stdarg.h>
#include <stdlib.h>

static _Thread_local cg_thread_state tls_state;

cg_thread_state *cg__tls(void) { return &tls_state; }

cg_status cg_last_status(void) { return tls_state.status; }
const char *cg_last_error(void) { return tls_state.message; }

void cg_clear_error(void)
{
  tls_state.status = CG_OK;
  tls_state.message[0] = '\0';
}

cg_status cg_set_error(cg_status s, const char *fmt, ...)
{
  tls_state.status = s;
  if (!fmt) { /* a user callback's slip must not crash the host */
    snprintf(tls_state.message, sizeof tls_state.message, "(no message)");
    return s;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tls_state.message, sizeof tls_state.message, fmt, ap);
  va_end(ap);
  return s;
}

cg_status cg_status_of(const cg_tensor *t)
{
  if (t) return CG_OK;
  return tls_state.status != CG_OK ? tls_state.status : CG_EINVAL;
}

cg_status cg__null_input(const char *op, int i)
{
  if (tls_state.status != CG_OK) return tls_state.status;
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

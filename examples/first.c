/* first.c - the README's first example: a custom gradient (clip to [-1, 1]) under a tape. */
#include <cgrad.h>

static cg_status fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y) { y[0] = cg_identity(x[0]); return cg_status_of(y[0]); }
static cg_status bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dvars) /* clip dy to [-1, 1] */
{ dx[0] = cg_clip_by_value(dy[0], -1, 1); return cg_status_of(dx[0]); }

int main(void)
{
  cg_custom_def clip = {"ClipGradient", 1, 1, fwd, bwd, NULL};
  cg_scope scope = cg_scope_begin();            /* frees every tensor made inside at its end */
  cg_tensor *x = cg_scalar(CG_F32, 3), *y, *dx;
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, x);
  cg_custom_gradient(&clip, &x, &y);            /* y = x, but its gradient is clipped */
  cg_tensor *loss = cg_square(y);               /* d loss/dy = 2y = 6 ...             */
  cg_tape_end(tape);
  cg_tape_gradient(tape, loss, &x, 1, &dx, NULL);
  cg_print(dx);                                 /* ... clipped: tensor(1., dtype=f32) */
  cg_tape_free(tape);
  cg_scope_end(scope);
  return 0;
}

/* myops.c - an op library built apart from cgrad and loaded at run time with
 * cg_load_op_library (or `cgrad gradcheck --load libmyops.so`), like tf.load_op_library.
 * It adds SoftClip: y = x / (1 + |x|), dy/dx = 1 / (1 + |x|)^2. */
#include "cgrad.h"

static cg_status softclip_infer(cg_node *n)
{
  cg_dtype d = cg_tensor_dtype(cg_node_input(n, 0));
  if (d != CG_F32 && d != CG_F64)
    return cg_set_error(CG_EDTYPE, "SoftClip: input must be f32 or f64, got %s", cg_dtype_name(d));
  return cg_infer_same_as_input(n, 0);
}

static cg_status softclip_run(cg_node *n)
{
  cg_tensor *x = cg_node_input(n, 0), *y = cg_node_output(n, 0);
  int64_t size = cg_tensor_size(x);
  if (cg_tensor_dtype(x) == CG_F32) {
    const float *in = cg_tensor_data(x);
    float *out = cg_tensor_data(y);
    for (int64_t i = 0; i < size; i++) out[i] = in[i] / (1 + (in[i] < 0 ? -in[i] : in[i]));
  } else {
    const double *in = cg_tensor_data(x);
    double *out = cg_tensor_data(y);
    for (int64_t i = 0; i < size; i++) out[i] = in[i] / (1 + (in[i] < 0 ? -in[i] : in[i]));
  }
  return CG_OK;
}

/* Built from ops, so it is differentiable again. */
static cg_status softclip_grad(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *x = cg_node_input(op, 0);
  dx[0] = cg_div(dy[0], cg_square(cg_add(cg_abs(x), cg_scalar_like(x, 1))));
  return cg_status_of(dx[0]);
}

CG_API int cg_op_library_init(void) /* exported even under -fvisibility=hidden */
{
  static const cg_op_def softclip = {"SoftClip", 1, softclip_infer, softclip_run, 0, NULL};
  if (cg_register_op(&softclip, 0) != CG_OK) return 1;
  return cg_register_gradient("SoftClip", softclip_grad, NULL, 0) != CG_OK;
}

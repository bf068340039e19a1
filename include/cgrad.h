/* cgrad.h - tensors, differentiable ops, gradient tapes and custom gradients in C11.
 *
 * Conventions
 * -----------
 * Prefix     Every public name starts with cg_ (types, functions) or CG_ (constants).
 * Objects    cg_tensor, cg_tape, cg_var and cg_node are opaque; use the accessors below.
 *            Tensors are immutable once an op has produced them: ops return new tensors.
 * Ownership  One rule: a function that returns a new cg_tensor* hands you one reference.
 *            If a scope is open (cg_scope_begin) the innermost scope holds that reference
 *            and drops it at cg_scope_end; cg_keep(t) moves it to the enclosing scope (or to
 *            you when no scope encloses it). With no scope open you own it: cg_release(t).
 *            cg_retain(t) adds a reference you must release. Pointers a function calls
 *            "borrowed" are valid as long as the object they came from.
 * Errors     Functions return cg_status (CG_OK == 0) or a pointer that is NULL on error.
 *            cg_last_status() and cg_last_error() give the code and a message naming the op
 *            and the shapes, e.g. "MatMul: inner dimensions differ: [2,3] x [4,5]". An op
 *            given a NULL input returns NULL and keeps the first error, so a chain of calls
 *            reports its cause. Nothing here aborts or exits on bad input, and a failed call
 *            leaves every existing object valid.
 * Threads    Registration is global and thread-safe. Scopes, tapes, gradient overrides,
 *            recording pauses and the last error belong to the calling thread.
 * dtypes     No implicit promotion: binary ops need equal dtypes; use cg_cast, cg_scalar.
 */
#ifndef CGRAD_H
#define CGRAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(CG_NO_VISIBILITY)
#define CG_API __attribute__((visibility("default")))
#else
#define CG_API
#endif

/* ======================================================================================
 * Basic types
 * ==================================================================================== */

#define CG_MAX_DIMS 8     /* most dimensions a tensor may have                          */
#define CG_MAX_OUTPUTS 16 /* most outputs one op (or custom gradient) may produce       */

typedef enum { CG_F32 = 0, CG_F64, CG_I32, CG_I64, CG_BOOL, CG_NUM_DTYPES } cg_dtype;

typedef enum {
  CG_OK = 0,
  CG_EINVAL,    /* bad argument: NULL, negative size, bad attribute                     */
  CG_EDTYPE,    /* wrong or mismatched dtype                                            */
  CG_ESHAPE,    /* shapes that do not fit or broadcast                                  */
  CG_ERANGE,    /* axis, index or permutation out of range                              */
  CG_ENOMEM,    /* allocation failed, or a size overflows                               */
  CG_ENOTFOUND, /* unknown op, gradient or symbol                                       */
  CG_EEXIST,    /* a name registered twice                                              */
  CG_ENOGRAD,   /* no gradient registered for an op on the path                         */
  CG_ESTATE,    /* misuse of state: empty override stack, scope out of order, used tape */
  CG_EUSER,     /* a user callback failed or broke its contract                         */
  CG_EIO,       /* file or dynamic-library error                                        */
  CG_ECHECK     /* a gradient check found a mismatch                                    */
} cg_status;

typedef struct cg_tensor cg_tensor;
typedef struct cg_node cg_node;
typedef struct cg_tape cg_tape;
typedef struct cg_var cg_var;
typedef struct cg_ctx cg_ctx;

/* ======================================================================================
 * Errors
 * ==================================================================================== */

CG_API cg_status cg_last_status(void);       /* code of the last error on this thread   */
CG_API const char *cg_last_error(void);      /* its message ("" when none)              */
CG_API void cg_clear_error(void);
CG_API const char *cg_status_name(cg_status s); /* "CG_ESHAPE"                          */
CG_API cg_status cg_status_of(const cg_tensor *t); /* CG_OK if t, else the last error   */
/* Set the thread's error (for user ops and gradients); returns s. printf-style message. */
CG_API cg_status cg_set_error(cg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ======================================================================================
 * Tensors: creation, access, lifetime
 * ==================================================================================== */

CG_API const char *cg_dtype_name(cg_dtype d); /* "f32", "f64", "i32", "i64", "bool"     */
CG_API size_t cg_dtype_size(cg_dtype d);       /* bytes per element                      */
CG_API int cg_dtype_is_float(cg_dtype d);

/* A new tensor whose elements are copied from data (row-major, dtype's C type:
 * float, double, int32_t, int64_t, uint8_t for bool). ndim 0 is a scalar. */
CG_API cg_tensor *cg_tensor_from(cg_dtype d, int ndim, const int64_t *shape, const void *data);
CG_API cg_tensor *cg_zeros(cg_dtype d, int ndim, const int64_t *shape);
CG_API cg_tensor *cg_ones(cg_dtype d, int ndim, const int64_t *shape);
CG_API cg_tensor *cg_fill(cg_dtype d, int ndim, const int64_t *shape, double value);
CG_API cg_tensor *cg_scalar(cg_dtype d, double value);          /* rank-0 constant       */
CG_API cg_tensor *cg_scalar_like(const cg_tensor *t, double value); /* same dtype as t  */
/* [start, start+step, ...) up to but excluding stop; step may be negative, never 0. */
CG_API cg_tensor *cg_arange(cg_dtype d, double start, double stop, double step);
/* Seeded random numbers: the same seed gives the same numbers on every machine. */
CG_API cg_tensor *cg_random_uniform(cg_dtype d, int ndim, const int64_t *shape, double lo,
                                    double hi, uint64_t seed);
CG_API cg_tensor *cg_random_normal(cg_dtype d, int ndim, const int64_t *shape, double mean,
                                   double stddev, uint64_t seed);

CG_API cg_dtype cg_tensor_dtype(const cg_tensor *t);
CG_API int cg_tensor_ndim(const cg_tensor *t);
CG_API const int64_t *cg_tensor_shape(const cg_tensor *t); /* borrowed, ndim entries    */
CG_API int64_t cg_tensor_dim(const cg_tensor *t, int axis); /* negative axis from end   */
CG_API int64_t cg_tensor_size(const cg_tensor *t);          /* number of elements       */
CG_API void *cg_tensor_data(const cg_tensor *t); /* borrowed; contiguous row-major       */
CG_API double cg_tensor_get(const cg_tensor *t, int64_t flat_index); /* any dtype, as double */
CG_API double cg_item(const cg_tensor *t); /* the single element of a size-1 tensor      */
/* Copy every element, converted to double, into out (n elements at most); returns count. */
CG_API int64_t cg_tensor_to_f64(const cg_tensor *t, double *out, int64_t n);

CG_API cg_tensor *cg_retain(cg_tensor *t);  /* one more reference; returns t            */
CG_API void cg_release(cg_tensor *t);       /* drop a reference; NULL is ignored        */

/* NumPy-like text: "tensor([[1., 2.], [3., 4.]], dtype=f32)" */
CG_API void cg_print(const cg_tensor *t);
CG_API void cg_fprint(FILE *f, const cg_tensor *t);
/* "[2,3]" into buf (at most n bytes); returns buf. */
CG_API char *cg_shape_str(const cg_tensor *t, char *buf, size_t n);

/* ======================================================================================
 * Scopes
 * ==================================================================================== */

typedef int cg_scope;
CG_API cg_scope cg_scope_begin(void);
/* Drops every reference the scope holds. Scopes end in reverse order of beginning;
 * ending another is CG_ESTATE and changes nothing. */
CG_API cg_status cg_scope_end(cg_scope s);
/* Moves t out of the innermost scope into the enclosing one (or to you). Returns t. */
CG_API cg_tensor *cg_keep(cg_tensor *t);

/* ======================================================================================
 * Attributes (op parameters, by name)
 * ==================================================================================== */

#define CG_ATTR_MAX 8
#define CG_ATTR_INTS_MAX 16
typedef enum { CG_ATTR_NONE = 0, CG_ATTR_INT, CG_ATTR_INTS, CG_ATTR_FLOAT } cg_attr_kind;
typedef struct {
  char name[16];
  cg_attr_kind kind;
  int n;                          /* number of ints held                                */
  int64_t ints[CG_ATTR_INTS_MAX];
  double f;
} cg_attr;
/* A plain value: declare `cg_attrs a = {0};` and fill it with the setters. */
typedef struct {
  int n;
  cg_attr items[CG_ATTR_MAX];
} cg_attrs;
CG_API cg_status cg_attrs_set_int(cg_attrs *a, const char *name, int64_t v);
CG_API cg_status cg_attrs_set_ints(cg_attrs *a, const char *name, const int64_t *v, int n);
CG_API cg_status cg_attrs_set_float(cg_attrs *a, const char *name, double v);
CG_API const cg_attr *cg_attrs_find(const cg_attrs *a, const char *name);

/* ======================================================================================
 * Ops. One line of math each; x, a, b are tensors. Element-wise unary ops keep shape and
 * dtype; binary ops broadcast NumPy-style and need equal dtypes.
 * ==================================================================================== */

/* --- unary ---------------------------------------------------------------------------- */
CG_API cg_tensor *cg_neg(cg_tensor *x);        /* -x                                     */
CG_API cg_tensor *cg_abs(cg_tensor *x);        /* |x|                                    */
CG_API cg_tensor *cg_sign(cg_tensor *x);       /* -1, 0 or 1                             */
CG_API cg_tensor *cg_exp(cg_tensor *x);        /* e^x                                    */
CG_API cg_tensor *cg_log(cg_tensor *x);        /* ln x                                   */
CG_API cg_tensor *cg_log1p(cg_tensor *x);      /* ln(1+x)                                */
CG_API cg_tensor *cg_expm1(cg_tensor *x);      /* e^x - 1                                */
CG_API cg_tensor *cg_sqrt(cg_tensor *x);       /* x^(1/2)                                */
CG_API cg_tensor *cg_rsqrt(cg_tensor *x);      /* x^(-1/2)                               */
CG_API cg_tensor *cg_square(cg_tensor *x);     /* x^2                                    */
CG_API cg_tensor *cg_reciprocal(cg_tensor *x); /* 1/x                                    */
CG_API cg_tensor *cg_sin(cg_tensor *x);        /* sin x                                  */
CG_API cg_tensor *cg_cos(cg_tensor *x);        /* cos x                                  */
CG_API cg_tensor *cg_tanh(cg_tensor *x);       /* tanh x                                 */
CG_API cg_tensor *cg_sigmoid(cg_tensor *x);    /* 1/(1+e^-x)                             */
CG_API cg_tensor *cg_relu(cg_tensor *x);       /* max(x, 0)                              */
CG_API cg_tensor *cg_leaky_relu(cg_tensor *x, double alpha); /* x>0 ? x : alpha*x       */
CG_API cg_tensor *cg_elu(cg_tensor *x);        /* x>0 ? x : e^x-1                        */
CG_API cg_tensor *cg_softplus(cg_tensor *x);   /* ln(1+e^x), stable for |x| large        */
CG_API cg_tensor *cg_floor(cg_tensor *x);      /* floor x                                */
CG_API cg_tensor *cg_ceil(cg_tensor *x);       /* ceil x                                 */
CG_API cg_tensor *cg_round(cg_tensor *x);      /* nearest, ties to even                  */
CG_API cg_tensor *cg_clip_by_value(cg_tensor *x, double lo, double hi); /* min(max(x, lo), hi) */

/* --- binary (broadcasting) -------------------------------------------------------------- */
CG_API cg_tensor *cg_add(cg_tensor *a, cg_tensor *b);      /* a + b                       */
CG_API cg_tensor *cg_sub(cg_tensor *a, cg_tensor *b);      /* a - b                       */
CG_API cg_tensor *cg_mul(cg_tensor *a, cg_tensor *b);      /* a * b                       */
CG_API cg_tensor *cg_div(cg_tensor *a, cg_tensor *b);      /* a / b                       */
CG_API cg_tensor *cg_pow(cg_tensor *a, cg_tensor *b);      /* a ^ b                       */
CG_API cg_tensor *cg_maximum(cg_tensor *a, cg_tensor *b);  /* max(a, b)                   */
CG_API cg_tensor *cg_minimum(cg_tensor *a, cg_tensor *b);  /* min(a, b)                   */
CG_API cg_tensor *cg_squared_difference(cg_tensor *a, cg_tensor *b); /* (a - b)^2         */
/* comparisons and logic give bool and have no gradient */
CG_API cg_tensor *cg_equal(cg_tensor *a, cg_tensor *b);         /* a == b                */
CG_API cg_tensor *cg_not_equal(cg_tensor *a, cg_tensor *b);     /* a != b                */
CG_API cg_tensor *cg_less(cg_tensor *a, cg_tensor *b);          /* a < b                 */
CG_API cg_tensor *cg_less_equal(cg_tensor *a, cg_tensor *b);    /* a <= b                */
CG_API cg_tensor *cg_greater(cg_tensor *a, cg_tensor *b);       /* a > b                 */
CG_API cg_tensor *cg_greater_equal(cg_tensor *a, cg_tensor *b); /* a >= b                */
CG_API cg_tensor *cg_logical_and(cg_tensor *a, cg_tensor *b);   /* a && b (bool)         */
CG_API cg_tensor *cg_logical_or(cg_tensor *a, cg_tensor *b);    /* a || b (bool)         */
CG_API cg_tensor *cg_logical_not(cg_tensor *x);                 /* !x (bool)             */
CG_API cg_tensor *cg_where(cg_tensor *cond, cg_tensor *a, cg_tensor *b); /* cond ? a : b, all broadcast */

/* --- reductions: axes NULL or n_axes 0 reduce every axis; negative axes count from the end */
CG_API cg_tensor *cg_sum(cg_tensor *x, const int *axes, int n_axes, int keepdims);  /* sum   */
CG_API cg_tensor *cg_mean(cg_tensor *x, const int *axes, int n_axes, int keepdims); /* mean  */
CG_API cg_tensor *cg_max(cg_tensor *x, const int *axes, int n_axes, int keepdims);  /* max   */
CG_API cg_tensor *cg_min(cg_tensor *x, const int *axes, int n_axes, int keepdims);  /* min   */
CG_API cg_tensor *cg_prod(cg_tensor *x, const int *axes, int n_axes, int keepdims); /* prod  */
CG_API cg_tensor *cg_logsumexp(cg_tensor *x, const int *axes, int n_axes, int keepdims); /* ln sum e^x, stable */
CG_API cg_tensor *cg_argmax(cg_tensor *x, int axis); /* i64 index of the first maximum      */
CG_API cg_tensor *cg_argmin(cg_tensor *x, int axis); /* i64 index of the first minimum      */

/* --- matrix product: [..., m, k] x [..., k, n] -> [..., m, n], batch dims broadcast ---- */
CG_API cg_tensor *cg_matmul(cg_tensor *a, cg_tensor *b);
CG_API cg_tensor *cg_matmul_t(cg_tensor *a, cg_tensor *b, int transpose_a, int transpose_b);

/* --- shape ----------------------------------------------------------------------------- */
CG_API cg_tensor *cg_reshape(cg_tensor *x, int ndim, const int64_t *shape); /* one -1 inferred */
CG_API cg_tensor *cg_expand_dims(cg_tensor *x, int axis);         /* insert a size-1 axis  */
CG_API cg_tensor *cg_squeeze(cg_tensor *x, const int *axes, int n_axes); /* NULL: all size-1 */
CG_API cg_tensor *cg_transpose(cg_tensor *x, const int *perm, int n); /* NULL: reverse axes */
CG_API cg_tensor *cg_concat(cg_tensor *const *xs, int n, int axis);
/* Split x along axis into n equal parts (n <= CG_MAX_OUTPUTS); writes n new tensors. */
CG_API cg_status cg_split(cg_tensor *x, int n, int axis, cg_tensor **out);
/* Split by sizes (one may be -1: the rest). */
CG_API cg_status cg_split_sizes(cg_tensor *x, const int64_t *sizes, int n, int axis, cg_tensor **out);
/* x[begin : begin+size] per axis; size -1 means "to the end". */
CG_API cg_tensor *cg_slice(cg_tensor *x, const int64_t *begin, const int64_t *size);
/* paddings: 2*ndim entries (before, after) per axis, filled with value. */
CG_API cg_tensor *cg_pad(cg_tensor *x, const int64_t *paddings, double value);
CG_API cg_tensor *cg_tile(cg_tensor *x, const int64_t *multiples); /* ndim multiples     */
CG_API cg_tensor *cg_broadcast_to(cg_tensor *x, int ndim, const int64_t *shape);
/* The same with the shape taken from another tensor when the op runs (tf.reshape(x,
 * tf.shape(like))): what gradients use, so they also work on graphs with unknown dims. */
CG_API cg_tensor *cg_reshape_like(cg_tensor *x, cg_tensor *like); /* same element count */
CG_API cg_tensor *cg_broadcast_like(cg_tensor *x, cg_tensor *like);
/* out[..., i, ...] = params[..., indices[i], ...] along axis; indices i32/i64 of any shape. */
CG_API cg_tensor *cg_gather(cg_tensor *params, cg_tensor *indices, int axis);
/* out[s] = sum of data[i] where ids[i] == s; ids i32/i64 shaped like data's leading dims. */
CG_API cg_tensor *cg_unsorted_segment_sum(cg_tensor *data, cg_tensor *ids, int64_t num_segments);
/* indices (i32/i64) -> one more trailing axis of size depth; on/off values; out dtype d. */
CG_API cg_tensor *cg_one_hot(cg_tensor *indices, int64_t depth, double on, double off, cg_dtype d);
CG_API cg_tensor *cg_cast(cg_tensor *x, cg_dtype d);   /* convert element type         */
CG_API cg_tensor *cg_identity(cg_tensor *x);           /* y = x                        */
CG_API cg_tensor *cg_stop_gradient(cg_tensor *x);      /* y = x, gradient 0 (none)     */
CG_API cg_tensor *cg_zeros_like(cg_tensor *x);         /* 0 of x's shape and dtype     */
CG_API cg_tensor *cg_ones_like(cg_tensor *x);          /* 1 of x's shape and dtype     */
CG_API cg_tensor *cg_add_n(cg_tensor *const *xs, int n); /* sum of n same-shape tensors */

/* --- neural-network ops (class axis is the last one) ------------------------------------- */
CG_API cg_tensor *cg_softmax(cg_tensor *x);      /* e^x / sum e^x over the last axis       */
CG_API cg_tensor *cg_log_softmax(cg_tensor *x);  /* x - logsumexp(x) over the last axis    */
/* -sum(labels * log_softmax(logits)) over the last axis: [..., C] -> [...] */
CG_API cg_tensor *cg_softmax_cross_entropy_with_logits(cg_tensor *labels, cg_tensor *logits);
/* labels: integer class ids shaped like logits without its last axis */
CG_API cg_tensor *cg_sparse_softmax_cross_entropy_with_logits(cg_tensor *labels, cg_tensor *logits);
/* max(x,0) - x*z + ln(1+e^-|x|), element-wise, z = labels, x = logits */
CG_API cg_tensor *cg_sigmoid_cross_entropy_with_logits(cg_tensor *labels, cg_tensor *logits);
CG_API cg_tensor *cg_bias_add(cg_tensor *x, cg_tensor *bias); /* x + bias along the last axis */

/* --- convolution and pooling, NHWC; filter is [kh, kw, in, out] --------------------------- */
typedef enum { CG_PAD_VALID = 0, CG_PAD_SAME = 1 } cg_padding;
/* y[n,i,j,o] = sum_{di,dj,c} x[n, i*s+di*d, j*s+dj*d, c] * f[di,dj,c,o] (with padding) */
CG_API cg_tensor *cg_conv2d(cg_tensor *x, cg_tensor *filter, const int strides[2],
                            cg_padding padding, const int dilations[2]);
/* Gradient of conv2d w.r.t. its input, of shape input_shape[4] (itself differentiable). */
CG_API cg_tensor *cg_conv2d_backprop_input(const int64_t input_shape[4], cg_tensor *filter,
                                           cg_tensor *dy, const int strides[2],
                                           cg_padding padding, const int dilations[2]);
/* Gradient of conv2d w.r.t. its filter, of shape filter_shape[4] (itself differentiable). */
CG_API cg_tensor *cg_conv2d_backprop_filter(cg_tensor *x, const int64_t filter_shape[4],
                                            cg_tensor *dy, const int strides[2],
                                            cg_padding padding, const int dilations[2]);
/* max / mean over ksize windows (AvgPool counts only in-bounds elements under SAME). */
CG_API cg_tensor *cg_max_pool2d(cg_tensor *x, const int ksize[2], const int strides[2], cg_padding padding);
CG_API cg_tensor *cg_avg_pool2d(cg_tensor *x, const int ksize[2], const int strides[2], cg_padding padding);
/* The pooling gradients, as ops: dy routed to each window's (first) maximum / spread evenly. */
CG_API cg_tensor *cg_max_pool2d_grad(cg_tensor *x, cg_tensor *dy, const int ksize[2],
                                     const int strides[2], cg_padding padding);
CG_API cg_tensor *cg_avg_pool2d_grad(const int64_t input_shape[4], cg_tensor *dy, const int ksize[2],
                                     const int strides[2], cg_padding padding);

/* Threads the kernels use (large element-wise ops, reductions, convolutions, GEMMs): n > 0
 * sets it, n <= 0 restores the default (CGRAD_NUM_THREADS, else the cores this process may
 * run on); at most 64. Results do not depend on it: every kernel cuts its work into pieces
 * chosen from the shapes alone and adds partial results in a fixed order, so values and
 * gradients are bitwise the same for any thread count. Process-wide. */
CG_API cg_status cg_set_num_threads(int n);
CG_API int cg_num_threads(void);

/* ======================================================================================
 * The op registry: define ops in C, call any op by name
 * ==================================================================================== */

enum {
  CG_OP_NOT_DIFFERENTIABLE = 1u << 0, /* outputs never carry a gradient (comparisons...) */
  CG_OP_STATEFUL = 1u << 1            /* never folded or merged by graph clean-ups       */
};
enum { CG_REGISTER_REPLACE = 1u << 0 }; /* registering an existing name replaces it     */

typedef struct cg_op_def {
  const char *name;   /* unique op type, e.g. "Tanh"                                     */
  int n_inputs;       /* exact arity, or -1 for any number (at least one)                */
  /* Shape rule: validate inputs and attributes (cg_node_input, cg_node_attr_*), then
   * declare each output with cg_node_set_output. Return CG_OK or cg_set_error(...). */
  cg_status (*infer)(cg_node *n);
  /* Kernel: read inputs, write the preallocated outputs (cg_node_output). */
  cg_status (*run)(cg_node *n);
  unsigned flags;     /* CG_OP_*                                                          */
  void *user;         /* anything; cg_node_op_user(n) returns it                          */
} cg_op_def;

/* Registers (a copy of) def. Names are unique: CG_EEXIST unless flags has CG_REGISTER_REPLACE. */
CG_API cg_status cg_register_op(const cg_op_def *def, unsigned flags);
CG_API const cg_op_def *cg_find_op(const char *name); /* NULL (CG_ENOTFOUND) if unknown    */
CG_API int cg_op_count(void);                         /* registered op types              */
CG_API const cg_op_def *cg_op_at(int i);              /* for walking the registry         */

/* Runs op `name` on inputs; writes its outputs (at most max_out) and their number. */
CG_API cg_status cg_call_n(const char *name, cg_tensor *const *in, int n_in,
                           const cg_attrs *attrs, cg_tensor **out, int max_out, int *n_out);
/* The same for an op with one output (or only the first output is wanted). */
CG_API cg_tensor *cg_call(const char *name, cg_tensor *const *in, int n_in, const cg_attrs *attrs);

/* --- what an op's shape rule, kernel and gradient see -------------------------------- */
CG_API const char *cg_node_op_type(const cg_node *n);
CG_API void *cg_node_op_user(const cg_node *n);
CG_API int cg_node_num_inputs(const cg_node *n);
CG_API int cg_node_num_outputs(const cg_node *n);
CG_API cg_tensor *cg_node_input(const cg_node *n, int i);  /* borrowed                      */
CG_API cg_tensor *cg_node_output(const cg_node *n, int i); /* borrowed; NULL inside infer   */
CG_API const cg_attrs *cg_node_attrs(const cg_node *n);
CG_API int64_t cg_node_attr_int(const cg_node *n, const char *name, int64_t dflt);
CG_API double cg_node_attr_float(const cg_node *n, const char *name, double dflt);
/* Copies up to max ints of attribute name into out; returns how many it has, -1 if absent. */
CG_API int cg_node_attr_ints(const cg_node *n, const char *name, int64_t *out, int max);
/* In infer: declare output i (outputs are numbered from 0 without gaps). */
CG_API cg_status cg_node_set_output(cg_node *n, int i, cg_dtype d, int ndim, const int64_t *shape);
/* In infer: output i is input j's data seen with another shape (no copy, no kernel work). */
CG_API cg_status cg_node_set_output_alias(cg_node *n, int i, int j, int ndim, const int64_t *shape);
/* The most common shape rule: one output with input i's dtype and shape. */
CG_API cg_status cg_infer_same_as_input(cg_node *n, int i);

/* ======================================================================================
 * Gradients: registry and overrides (tf.RegisterGradient, gradient_override_map)
 * ==================================================================================== */

/* Writes one gradient per input into dx (NULL: no gradient), built from ops. dy holds one
 * tensor per output of op (zeros for outputs that received none). A gradient of a shape
 * that broadcasts to the input's is summed back to it by the engine. */
typedef cg_status (*cg_grad_fn)(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx,
                                void *user);
CG_API cg_status cg_register_gradient(const char *name, cg_grad_fn fn, void *user, unsigned flags);
CG_API int cg_has_gradient(const char *name);
/* From now until the matching pop, ops of type op_type recorded on this thread use the
 * gradient registered as gradient_name. Nestable; the innermost mapping of a type wins. */
CG_API cg_status cg_gradient_override_push(const char *op_type, const char *gradient_name);
CG_API cg_status cg_gradient_override_pop(void); /* CG_ESTATE when the stack is empty       */

/* Loads a shared object and calls its `int cg_op_library_init(void)` (which registers ops
 * and gradients); a nonzero return is an error. The library stays loaded. */
CG_API cg_status cg_load_op_library(const char *path);

/* ======================================================================================
 * Gradient tapes (tf.GradientTape)
 * ==================================================================================== */

enum {
  CG_TAPE_PERSISTENT = 1u << 0,    /* cg_tape_gradient may be called more than once        */
  CG_TAPE_NO_AUTO_WATCH = 1u << 1  /* trainable variables are not watched automatically  */
};
typedef enum { CG_UNCONNECTED_NONE = 0, CG_UNCONNECTED_ZERO = 1 } cg_unconnected;
typedef struct {
  cg_tensor *output_gradient;   /* seed for the target (NULL: ones); same shape as target */
  cg_unconnected unconnected;   /* what a source the target does not depend on gets     */
} cg_grad_opts;

/* Starts recording on this thread (tapes nest: all open tapes record). */
CG_API cg_tape *cg_tape_begin(unsigned flags);
CG_API cg_status cg_tape_watch(cg_tape *tape, cg_tensor *t); /* float tensors only        */
/* Stops recording; tapes end in reverse order. The tape can still give gradients. */
CG_API cg_status cg_tape_end(cg_tape *tape);
/* d target / d sources[i] into out[i] (new tensors, or NULL: unconnected or integer).
 * Integer sources get NULL. opts may be NULL. */
CG_API cg_status cg_tape_gradient(cg_tape *tape, cg_tensor *target, cg_tensor *const *sources,
                                  int n, cg_tensor **out, const cg_grad_opts *opts);
/* Jacobian of target w.r.t. source: shape target.shape + source.shape. */
CG_API cg_tensor *cg_tape_jacobian(cg_tape *tape, cg_tensor *target, cg_tensor *source);
CG_API void cg_tape_free(cg_tape *tape); /* ends it if still recording                    */
CG_API size_t cg_tape_num_records(const cg_tape *tape);
/* Pause / resume recording on every tape of this thread (nestable). */
CG_API void cg_pause_recording(void);
CG_API cg_status cg_resume_recording(void);

/* Numeric checks (tf.debugging.enable_check_numerics): when on (or CG_CHECK_NUMERICS=1 in
 * the environment), the first op whose float output holds NaN or Inf fails with CG_ECHECK,
 * naming the op, its position on the tape or in the graph run, the pass (forward, or which
 * gradient in the backward) and its input shapes. Off by default: it reads every output. */
CG_API void cg_set_check_numerics(int on);
CG_API int cg_check_numerics_enabled(void);

/* ======================================================================================
 * Variables (minimal: the training layer builds on these)
 * ==================================================================================== */

/* A named, mutable holder of a float tensor (copied). Trainable variables read under a tape
 * are watched by it (unless CG_TAPE_NO_AUTO_WATCH). */
CG_API cg_var *cg_var_new(const char *name, cg_tensor *initial, int trainable);
CG_API void cg_var_free(cg_var *v);
CG_API const char *cg_var_name(const cg_var *v);
CG_API int cg_var_trainable(const cg_var *v);
CG_API cg_tensor *cg_var_read(cg_var *v);   /* the value, as a new reference             */
CG_API cg_tensor *cg_var_value(const cg_var *v); /* borrowed; changes on assignment     */
CG_API cg_status cg_var_assign(cg_var *v, cg_tensor *value); /* same dtype and shape     */
CG_API cg_status cg_var_assign_add(cg_var *v, cg_tensor *delta);
CG_API cg_status cg_var_assign_sub(cg_var *v, cg_tensor *delta);

/* ======================================================================================
 * Custom gradients (tf.custom_gradient)
 * ==================================================================================== */

typedef cg_status (*cg_forward_fn)(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y);
/* dx: one per input (NULL: none); dvars: one per variable the forward read (cg_ctx_num_vars),
 * all required. */
typedef cg_status (*cg_backward_fn)(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx,
                                    cg_tensor **dvars);
/* Forward mode for a custom op: tangents of the outputs from tangents of the inputs
 * (tangent_in[i] NULL: zero), built from ops. */
typedef cg_status (*cg_custom_jvp_fn)(cg_ctx *ctx, cg_tensor *const *tangent_in, cg_tensor **tangent_out);
enum {
  CG_CUSTOM_ONCE_DIFFERENTIABLE = 1u << 0, /* a second derivative through it is an error */
  CG_CUSTOM_LINEAR = 1u << 1 /* forward is linear in x: with no backward, the gradient is the
                                 jvp transposed (by reverse mode through the jvp)            */
};
typedef struct {
  const char *name;        /* the op type it records as                                 */
  int n_inputs, n_outputs; /* n_outputs <= CG_MAX_OUTPUTS                               */
  cg_forward_fn forward;   /* runs with recording paused                                */
  cg_backward_fn backward; /* built from ops, so itself differentiable                  */
  void *user;
  cg_custom_jvp_fn jvp;    /* optional forward-mode rule                                */
  unsigned flags;          /* CG_CUSTOM_*                                               */
} cg_custom_def;
/* Runs def->forward(x) -> y and, under a tape, records one op whose gradient is
 * def->backward. y receives n_outputs new tensors. */
CG_API cg_status cg_custom_gradient(const cg_custom_def *def, cg_tensor *const *x, cg_tensor **y);
CG_API cg_status cg_ctx_save(cg_ctx *ctx, cg_tensor *t);   /* keep t for the backward      */
CG_API cg_tensor *cg_ctx_saved(const cg_ctx *ctx, int i);  /* borrowed, in saving order    */
CG_API int cg_ctx_num_saved(const cg_ctx *ctx);
CG_API void *cg_ctx_user(const cg_ctx *ctx);
CG_API int cg_ctx_num_vars(const cg_ctx *ctx);           /* trainable variables read      */
CG_API cg_var *cg_ctx_var(const cg_ctx *ctx, int i);
CG_API cg_tensor *cg_ctx_input(const cg_ctx *ctx, int i); /* borrowed forward input       */
CG_API cg_tensor *cg_ctx_output(const cg_ctx *ctx, int i); /* borrowed forward output     */

/* ======================================================================================
 * Gradient checking (tf.test.compute_gradient)
 * ==================================================================================== */

/* A function of n inputs with one output, as gradient checking sees it. Return NULL on error. */
typedef cg_tensor *(*cg_fn)(cg_tensor *const *x, int n, void *user);

/* Theoretical (autodiff) and numerical (central differences) Jacobians of fn at x, one
 * pair per input, each f64 [size(y), size(x_i)]; integer inputs get NULL. */
CG_API cg_status cg_compute_gradient(cg_fn fn, void *user, cg_tensor *const *x, int n,
                                     double eps, cg_tensor **theoretical, cg_tensor **numerical);

typedef struct {
  double eps;   /* finite-difference step (0: 1e-6 for f64, 1e-3 for f32)                */
  double atol;  /* 0: 1e-5 for f64, 1e-2 for f32                                       */
  double rtol;  /* 0: 1e-3 for f64, 1e-2 for f32                                       */
  int order;    /* 1 (default when 0) or 2: also check the gradient of the gradient       */
  uint64_t seed; /* for the random directions of the second-order check                  */
} cg_gradcheck_opts;
typedef struct {
  int ok;               /* every element within atol + rtol*|numerical|                  */
  int order;            /* order at which the worst element was found                   */
  int input;            /* input of the worst element                                    */
  int64_t out_index;    /* flat index into the output                                    */
  int64_t in_index;     /* flat index into the input                                     */
  double analytic, numeric, error; /* worst |analytic - numeric| - rtol*|numeric| scaled */
  char message[512];    /* one sentence a person can act on                             */
} cg_gradcheck_report;
/* Compares the Jacobians; CG_OK when they agree, CG_ECHECK (report says where) when not. */
CG_API cg_status cg_gradcheck(cg_fn fn, void *user, cg_tensor *const *x, int n,
                              const cg_gradcheck_opts *opts, cg_gradcheck_report *report);


/* ======================================================================================
 * Graphs (tf.Graph, tf.gradients, Session.run) and traced functions (tf.function)
 * ==================================================================================== */

typedef struct cg_graph cg_graph;
enum {
  CG_GRAPH_CSE = 1u << 0,           /* merge identical nodes before running               */
  CG_GRAPH_FOLD_CONSTANTS = 1u << 1 /* compute constant-only nodes once and keep them     */
};
CG_API cg_graph *cg_graph_new(void);
/* Frees the graph, its nodes and folded constants. Symbolic tensors of it that you still
 * hold stay valid objects but can no longer be run. */
CG_API void cg_graph_free(cg_graph *g);
CG_API cg_status cg_graph_set_options(cg_graph *g, unsigned options); /* CG_GRAPH_* */
/* While entered (on this thread, nestable per graph), every op call adds a node to g and
 * returns a symbolic tensor: dtype and shape from the op's shape rule, unknown dims -1, no
 * values. Concrete tensors used as inputs become constants of the graph. */
CG_API cg_status cg_graph_enter(cg_graph *g);
CG_API cg_status cg_graph_exit(cg_graph *g); /* CG_ESTATE if g is not the entered graph  */
CG_API cg_graph *cg_graph_current(void);
/* A value fed at run time; -1 dims accept any size. name appears in errors and DOT. */
CG_API cg_tensor *cg_placeholder(cg_dtype d, int ndim, const int64_t *shape, const char *name);
CG_API int cg_tensor_is_symbolic(const cg_tensor *t);

typedef struct {
  cg_tensor *const *stop_gradients; /* treated as constants (tf.gradients' stop_gradients) */
  int n_stop;
  cg_unconnected unconnected;
} cg_gradients_opts;
/* tf.gradients: out[i] = sum over j of d ys[j] / d xs[i] (seeded by grad_ys[j], or ones),
 * added to the graph of ys as gradient nodes; NULL for unconnected (unless ZERO) and integer
 * xs. grad_ys and opts may be NULL. */
CG_API cg_status cg_gradients(cg_tensor *const *ys, int ny, cg_tensor *const *xs, int nx,
                              cg_tensor *const *grad_ys, cg_tensor **out,
                              const cg_gradients_opts *opts);

typedef struct {
  cg_tensor *placeholder;
  cg_tensor *value;
} cg_feed;
/* Session.run: computes fetches (symbolic tensors of g) into out (new tensors), running only
 * the nodes they need, in order, releasing each intermediate after its last reader. A feed's
 * key is a placeholder or, as in TF, any other tensor of g: the value stands for it, and the
 * nodes that only it needed do not run. */
CG_API cg_status cg_graph_run(cg_graph *g, const cg_feed *feeds, int n_feeds,
                              cg_tensor *const *fetches, int n_fetches, cg_tensor **out);
typedef struct {
  size_t nodes;              /* nodes in the graph                                        */
  size_t nodes_run;          /* nodes the last run executed                               */
  size_t nodes_merged;       /* removed by common-subexpression elimination (last run)    */
  size_t nodes_folded;       /* served from folded constants (last run)                   */
  size_t peak_bytes;         /* most intermediate bytes alive at once in the last run     */
  size_t total_bytes;        /* all intermediate bytes of the last run, if none were freed */
} cg_graph_stats;
CG_API cg_status cg_graph_get_stats(const cg_graph *g, cg_graph_stats *out);
/* Graphviz DOT: one box per node (op type, output shape), gradient nodes marked with the
 * gradient function that made them, placeholders and constants as ellipses. */
CG_API cg_status cg_graph_write_dot(const cg_graph *g, FILE *f);

/* tf.function: fn builds ny outputs from nx inputs with ops; it is traced once per input
 * signature (dtypes and shapes) into a graph and replayed by cg_function_call. Under a tape a
 * call records as one op whose gradient is the graph's own symbolic gradient (itself a traced
 * function, so higher orders work). Free a function after the tapes that recorded it. */
typedef cg_status (*cg_trace_fn)(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user);
typedef struct cg_function cg_function;
CG_API cg_function *cg_function_trace(const char *name, cg_trace_fn fn, void *user,
                                      cg_tensor *const *example_inputs, int nx, int ny);
CG_API cg_status cg_function_call(cg_function *f, cg_tensor *const *x, cg_tensor **y);
CG_API int cg_function_num_traces(const cg_function *f);
CG_API cg_graph *cg_function_graph(const cg_function *f, int trace); /* borrowed */
CG_API void cg_function_free(cg_function *f);

/* ======================================================================================
 * Beyond reverse mode: forward mode, declared order, hooks, explanations, accounting
 * ==================================================================================== */

/* --- forward mode (jax.jvp) -------------------------------------------------------------- */
/* A JVP rule: tangents of op's outputs from tangents of its inputs (NULL: zero), built from
 * ops. Registered by op type like gradients; an op without one falls back to the double-VJP
 * trick through its registered gradient (two reverse passes per op: documented cost). */
typedef cg_status (*cg_jvp_fn)(const cg_node *op, cg_tensor *const *tangent_in,
                               cg_tensor **tangent_out, void *user);
CG_API cg_status cg_register_jvp(const char *name, cg_jvp_fn fn, void *user, unsigned flags);
CG_API int cg_has_jvp(const char *name);
/* out_primals = fn(primals), out_tangents = J(primals) tangents (forward mode). */
CG_API cg_status cg_jvp(cg_trace_fn fn, void *user, cg_tensor *const *primals,
                        cg_tensor *const *tangents, int nx, cg_tensor **out_primals,
                        cg_tensor **out_tangents, int ny);
/* Hessian-vector products of a scalar f by forward-over-reverse: out[i] = sum_j H_ij v_j. */
CG_API cg_status cg_hvp(cg_fn f, void *user, cg_tensor *const *x, cg_tensor *const *v, int n,
                        cg_tensor **out);
/* The Hessian of a scalar f of one input x: shape x.shape + x.shape. */
CG_API cg_tensor *cg_hessian(cg_fn f, void *user, cg_tensor *x);

/* --- declared order, needs_input_grad, non-differentiable outputs ------------------------ */
enum { CG_GRADIENT_ONCE_DIFFERENTIABLE = 1u << 1 }; /* cg_register_gradient flag */
/* Inside a gradient function or custom backward: does input i need a gradient at all? */
CG_API int cg_node_needs_input_grad(const cg_node *op, int i);
CG_API int cg_ctx_needs_input_grad(const cg_ctx *ctx, int i);
/* Inside a custom forward: output i carries no gradient (like an integer index output). */
CG_API cg_status cg_ctx_mark_non_differentiable(cg_ctx *ctx, int output);

/* --- gradient checkpointing (tf.recompute_grad, jax.checkpoint) ------------------------- */
/* outputs = fn(inputs), but a tape keeps only the inputs: the inside is recomputed during
 * the backward. Trainable variables read inside get their gradients too. */
CG_API cg_status cg_recompute(cg_trace_fn fn, void *user, cg_tensor *const *inputs, int nx,
                              cg_tensor **outputs, int ny);

/* --- gradient hooks (PyTorch's register_hook) ------------------------------------------- */
/* Called with the total gradient flowing into t (on any tape or graph); returns the gradient
 * to use instead (grad itself to keep it; NULL is an error). */
typedef cg_tensor *(*cg_grad_hook)(cg_tensor *grad, void *user);
CG_API cg_status cg_tensor_register_hook(cg_tensor *t, cg_grad_hook hook, void *user);
/* The same, for gradients computed from this tape only. */
CG_API cg_status cg_tape_register_hook(cg_tape *tape, cg_tensor *t, cg_grad_hook hook, void *user);

/* --- "why is this gradient NULL?" --------------------------------------------------------- */
/* A sentence naming the first broken link between source and target on the tape (never
 * watched, an integer cast, a StopGradient, a non-differentiable op, an op with no gradient,
 * a paused recording), or saying they are connected. Valid until the next call. */
CG_API const char *cg_tape_explain(cg_tape *tape, cg_tensor *target, cg_tensor *source);

/* --- rule accounting ---------------------------------------------------------------------- */
typedef enum { CG_RULE_GRADIENT = 0, CG_RULE_OVERRIDE, CG_RULE_CUSTOM, CG_RULE_JVP } cg_rule_kind;
typedef struct {
  const char *name;   /* the gradient, custom op or JVP rule                              */
  cg_rule_kind kind;  /* OVERRIDE: a gradient that ran for an op of another type           */
  uint64_t calls;
} cg_rule_stat;
/* Writes up to max rows (most calls first); returns how many rules have run. */
CG_API int cg_rule_stats(cg_rule_stat *out, int max);
CG_API void cg_rule_stats_reset(void);

/* --- check on register --------------------------------------------------------------------- */
/* When on (or CG_CHECK_GRADIENTS=1), the first run of each registered gradient or JVP rule
 * is verified against float64 central differences at random inputs shaped like the op's;
 * a mismatch fails that gradient with CG_ECHECK naming the rule and the worst element. */
CG_API void cg_set_check_gradients(int on);

/* --- graphs saved and loaded by name ------------------------------------------------------ */
/* A text format (docs/graph-format.md) with ops, attributes, constants and each node's
 * gradient (override) name, all by name. Loading re-binds ops and gradients from the
 * registry; an unknown one is an error naming it. */
CG_API cg_status cg_graph_save(const cg_graph *g, const char *path);
CG_API cg_graph *cg_graph_load(const char *path);
/* Names: placeholders have theirs; cg_tensor_set_name names any graph tensor for saving. */
CG_API cg_status cg_tensor_set_name(cg_tensor *t, const char *name);
CG_API cg_tensor *cg_graph_tensor(const cg_graph *g, const char *name); /* borrowed */

/* ======================================================================================
 * Training: initializers, layers, losses, optimizers, metrics
 * ==================================================================================== */

/* --- initializers (fan_in/fan_out as Keras: [in, out] dense, [kh, kw, in, out] conv) ----- */
typedef enum {
  CG_INIT_ZEROS, CG_INIT_CONSTANT,      /* a = value                                        */
  CG_INIT_UNIFORM,                      /* [a, b)                                           */
  CG_INIT_NORMAL,                       /* mean a, stddev b                                 */
  CG_INIT_TRUNCATED_NORMAL,             /* mean a, stddev b, redrawn beyond 2 stddev        */
  CG_INIT_GLOROT_UNIFORM,               /* U(-l, l), l = sqrt(6 / (fan_in + fan_out))       */
  CG_INIT_GLOROT_NORMAL,                /* truncated N(0, 2 / (fan_in + fan_out))           */
  CG_INIT_HE_UNIFORM,                   /* U(-l, l), l = sqrt(6 / fan_in)                   */
  CG_INIT_HE_NORMAL                     /* truncated N(0, 2 / fan_in)                       */
} cg_init_kind;
typedef struct { cg_init_kind kind; double a, b; } cg_initializer;
CG_API cg_tensor *cg_init_tensor(cg_initializer init, cg_dtype d, int ndim, const int64_t *shape,
                                 uint64_t seed);

/* --- layers: small modules that own their variables; forward is ops. A NULL name gives a
 * Keras-style default ("dense", "dense_1", ...); NULL strides mean 1x1 (conv) or the window
 * (pools). Inputs must have the variables' dtype (f32). ------------------------------------ */
typedef struct cg_layer cg_layer;
typedef enum { CG_ACT_NONE = 0, CG_ACT_RELU, CG_ACT_TANH, CG_ACT_SIGMOID } cg_activation;
/* y = act(x W + b), x [batch, in]; W Glorot-uniform from seed, b zeros. Variables "<name>/kernel",
 * "<name>/bias". */
CG_API cg_layer *cg_dense_layer(const char *name, int64_t in, int64_t out, cg_activation act, uint64_t seed);
/* NHWC conv with kernel [kh, kw, in, out] (Glorot-uniform) and bias [out]. */
CG_API cg_layer *cg_conv2d_layer(const char *name, int64_t in_channels, int64_t out_channels,
                                 int kh, int kw, const int strides[2], cg_padding padding,
                                 cg_activation act, uint64_t seed);
CG_API cg_layer *cg_max_pool2d_layer(const int ksize[2], const int strides[2], cg_padding padding);
CG_API cg_layer *cg_avg_pool2d_layer(const int ksize[2], const int strides[2], cg_padding padding);
CG_API cg_layer *cg_flatten_layer(void);                /* [batch, ...] -> [batch, prod(...)] */
/* Training: zero each element with probability rate, scale the rest by 1/(1-rate). Inference: y = x. */
CG_API cg_layer *cg_dropout_layer(double rate, uint64_t seed);
/* Normalises over all but the last axis. Training: batch statistics, and moving statistics
 * updated as m = momentum*m + (1-momentum)*batch; inference: moving statistics. Variables
 * "<name>/gamma", "<name>/beta" (trainable), "<name>/moving_mean", "<name>/moving_variance". */
CG_API cg_layer *cg_batch_norm_layer(const char *name, int64_t channels, double momentum, double eps);
CG_API cg_layer *cg_sequential(const char *name);
/* Takes ownership of layer on success only (on failure the layer stays yours). */
CG_API cg_status cg_sequential_add(cg_layer *seq, cg_layer *layer);
CG_API cg_tensor *cg_layer_forward(cg_layer *layer, cg_tensor *x, int training);
/* Writes up to max variables (all of them if trainable_only is 0) and returns how many the
 * layer has (-1 on bad arguments). Borrowed: they live as long as the layer. */
CG_API int cg_layer_variables(cg_layer *layer, int trainable_only, cg_var **out, int max);
CG_API const char *cg_layer_name(const cg_layer *layer);
/* One line per layer: "dense_1  Dense(784 -> 256, relu)  200,960 parameters". */
CG_API cg_status cg_layer_describe(const cg_layer *layer, char *buf, size_t n);
/* Frees the layer and its variables; a layer inside a Sequential is freed by it (CG_ESTATE). */
CG_API void cg_layer_free(cg_layer *layer);

/* --- losses: reduction over the batch ---------------------------------------------------- */
typedef enum { CG_REDUCE_MEAN = 0, CG_REDUCE_SUM, CG_REDUCE_NONE } cg_reduction;
CG_API cg_tensor *cg_loss_mse(cg_tensor *pred, cg_tensor *target, cg_reduction r);   /* (p-t)^2 */
CG_API cg_tensor *cg_loss_mae(cg_tensor *pred, cg_tensor *target, cg_reduction r);   /* |p-t|   */
/* 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta); d = p - t */
CG_API cg_tensor *cg_loss_huber(cg_tensor *pred, cg_tensor *target, double delta, cg_reduction r);
/* per example: softmax cross-entropy over the last axis (labels: distributions / class ids) */
CG_API cg_tensor *cg_loss_softmax_xent(cg_tensor *labels, cg_tensor *logits, cg_reduction r);
CG_API cg_tensor *cg_loss_sparse_softmax_xent(cg_tensor *labels, cg_tensor *logits, cg_reduction r);
/* element-wise sigmoid cross-entropy from logits, labels in [0, 1] */
CG_API cg_tensor *cg_loss_binary_xent(cg_tensor *labels, cg_tensor *logits, cg_reduction r);

/* --- optimizers: torch.optim's update rules exactly (SGD, Adam, AdamW, RMSprop, Adagrad) -- */
typedef enum { CG_OPT_SGD = 0, CG_OPT_ADAM, CG_OPT_ADAMW, CG_OPT_RMSPROP, CG_OPT_ADAGRAD } cg_optimizer_kind;
typedef enum { CG_LR_CONSTANT = 0, CG_LR_STEP, CG_LR_COSINE } cg_lr_schedule_kind;
typedef struct {
  cg_lr_schedule_kind kind;
  int64_t step_size;   /* STEP: multiply by gamma every step_size steps                    */
  double gamma;
  int64_t decay_steps; /* COSINE: lr_min + (lr - lr_min)(1 + cos(pi min(t, T)/T))/2       */
  double lr_min;
} cg_lr_schedule;
typedef struct {
  cg_optimizer_kind kind;
  double lr;            /* learning rate (0: 1e-3 for Adam/AdamW, 1e-2 otherwise)            */
  double momentum;      /* SGD, RMSprop (PyTorch's momentum buffer)                        */
  int nesterov;         /* SGD                                                             */
  double beta1, beta2;  /* Adam/AdamW (0: 0.9, 0.999)                                      */
  double eps;           /* 0: 1e-8 (Adam/AdamW/RMSprop), 1e-10 (Adagrad), as PyTorch         */
  double weight_decay;  /* AdamW: decoupled, p *= 1 - lr*wd; others: PyTorch's g += wd*p   */
  double rho;           /* RMSprop smoothing constant, PyTorch's alpha (0: 0.99)           */
  double initial_accumulator; /* Adagrad's starting sum of squares                          */
  double clip_value;    /* > 0: clip each gradient element to [-v, v] first                */
  double clip_norm;     /* > 0: scale all gradients so their global norm is at most this   */
  cg_lr_schedule schedule;
} cg_optimizer_config;
typedef struct cg_optimizer cg_optimizer;
CG_API cg_optimizer *cg_optimizer_new(const cg_optimizer_config *config);
CG_API void cg_optimizer_free(cg_optimizer *opt);
/* One step: vars[i] -= update(grads[i]); a NULL gradient leaves its variable alone. */
CG_API cg_status cg_optimizer_apply_gradients(cg_optimizer *opt, cg_tensor *const *grads,
                                              cg_var *const *vars, int n);
/* Steps taken (one count shared by all variables, as Keras); -1 on error. */
CG_API int64_t cg_optimizer_iterations(const cg_optimizer *opt);
/* The learning rate the next step will use (the schedule at t = iterations). */
CG_API double cg_optimizer_current_lr(const cg_optimizer *opt);
/* Optimizer state for checkpoints: slots are named "<variable>/<slot>" (e.g. "dense/kernel/m"). */
CG_API int cg_optimizer_num_slots(const cg_optimizer *opt);
CG_API const char *cg_optimizer_slot_name(const cg_optimizer *opt, int i);
CG_API cg_tensor *cg_optimizer_slot(const cg_optimizer *opt, int i); /* borrowed */
CG_API cg_status cg_optimizer_set_state(cg_optimizer *opt, int64_t iterations,
                                        const char *const *slot_names, cg_tensor *const *slots, int n);
/* out[i] = g[i] * min(1, clip_norm / global_norm); *global_norm gets sqrt(sum of squares).
 * out may be grads (clipped in place); NULL entries are skipped. */
CG_API cg_status cg_clip_by_global_norm(cg_tensor *const *grads, int n, double clip_norm,
                                        cg_tensor **out, double *global_norm);

/* --- metrics ----------------------------------------------------------------------------- */
/* fraction of rows whose argmax over the last axis equals labels (class ids); -1 on error */
CG_API double cg_accuracy(cg_tensor *logits, cg_tensor *labels);

/* ======================================================================================
 * Checkpoints (safetensors) and data (IDX)
 * ==================================================================================== */

/* Writes tensors (named) and string metadata to path as safetensors (little-endian hosts),
 * atomically: a temporary file "<path>.tmp.<pid>.<k>" in the same directory, flushed, fsynced
 * and renamed over path. Tensors are laid out by alignment, then name, as the reference writer. */
CG_API cg_status cg_safetensors_save(const char *path, const char *const *names,
                                     cg_tensor *const *tensors, int n,
                                     const char *const *meta_keys, const char *const *meta_values,
                                     int n_meta);
typedef struct cg_safetensors cg_safetensors;
/* Reads and validates the whole file; a truncated, oversized or malformed file is CG_EIO /
 * CG_EINVAL with a message naming the problem. */
CG_API cg_safetensors *cg_safetensors_load(const char *path);
CG_API int cg_safetensors_count(const cg_safetensors *f);
CG_API const char *cg_safetensors_name(const cg_safetensors *f, int i); /* sorted by name */
CG_API cg_tensor *cg_safetensors_get(const cg_safetensors *f, const char *name); /* borrowed */
CG_API const char *cg_safetensors_meta(const cg_safetensors *f, const char *key); /* or NULL */
CG_API void cg_safetensors_free(cg_safetensors *f);

/* A model checkpoint: the variables (by name), the optimizer's slots and iteration count, and
 * metadata ("step", "epoch", "model", ... as key/value strings). */
CG_API cg_status cg_checkpoint_save(const char *path, cg_var *const *vars, int n_vars,
                                    const cg_optimizer *opt, const char *const *meta_keys,
                                    const char *const *meta_values, int n_meta);
/* Restores variables (names and shapes must match) and, if opt, its state. */
CG_API cg_status cg_checkpoint_restore(const char *path, cg_var *const *vars, int n_vars,
                                       cg_optimizer *opt);

/* Any IDX file (optionally gzip-compressed): unsigned/signed bytes, shorts and ints become
 * i32, floats f32, doubles f64; the shape is the file's. */
CG_API cg_tensor *cg_idx_read(const char *path);

typedef struct {
  cg_tensor *images; /* f32 [n, 28, 28, 1], scaled to [0, 1]                              */
  cg_tensor *labels; /* i64 [n]                                                           */
} cg_dataset;
/* Loads "<dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]" (MNIST layout). dir NULL:
 * Debian's /usr/share/datasets/fashion-mnist. out receives new tensors (what it held is not
 * released); they are yours (cg_dataset_free). */
CG_API cg_status cg_mnist_load(const char *dir, int train, cg_dataset *out);
CG_API void cg_dataset_free(cg_dataset *d);
/* The first n - holdout examples and the last holdout, as new datasets (copies). */
CG_API cg_status cg_dataset_split(const cg_dataset *d, int64_t holdout, cg_dataset *first, cg_dataset *rest);
/* Batches in an order shuffled from (seed, epoch): the same on every machine. */
typedef struct cg_batcher cg_batcher;
CG_API cg_batcher *cg_batcher_new(const cg_dataset *d, int64_t batch_size, int shuffle, uint64_t seed);
CG_API cg_status cg_batcher_start_epoch(cg_batcher *b, int64_t epoch);
/* Next batch (new tensors in the current scope): 1, then 0 at the end of the epoch, -1 on
 * error (loop with `while (cg_batcher_next(...) > 0)`). The last batch may be smaller. */
CG_API int cg_batcher_next(cg_batcher *b, cg_tensor **images, cg_tensor **labels);
CG_API int64_t cg_batcher_num_batches(const cg_batcher *b);
CG_API void cg_batcher_free(cg_batcher *b);

/* ======================================================================================
 * Distributed (MPI): data-parallel training, as DistributedDataParallel and Horovod do it
 *
 * Every rank (process) runs the same program on its shard of each global batch; gradients
 * are summed across ranks in buckets (MPI allreduce) before the optimizer step, so the
 * variables stay bitwise identical on every rank. "Collective" functions must be called by
 * every rank, in the same order. Built when CMake finds MPI (option CGRAD_MPI); without it
 * cg_dist_init fails with CG_ENOTFOUND, rank and size are 0 and 1, and the collectives fail
 * the same way. The sampler, fingerprint and cost model below need no MPI.
 * ==================================================================================== */

CG_API int cg_dist_available(void);   /* 1 when cgrad was built with MPI                    */
/* Collective. Joins the job: MPI_Init_thread (asking for MPI_THREAD_MULTIPLE) unless the
 * program initialised MPI itself; a second call does nothing. Uses a duplicate of
 * MPI_COMM_WORLD whose errors come back as CG_EIO instead of aborting. */
CG_API cg_status cg_dist_init(int *argc, char ***argv);
/* Collective. Leaves the job; finalises MPI if cg_dist_init initialised it. */
CG_API cg_status cg_dist_finalize(void);
CG_API int cg_dist_initialized(void);
CG_API int cg_dist_rank(void);        /* this process: 0 .. size-1 (0 before cg_dist_init) */
CG_API int cg_dist_size(void);        /* ranks in the job (1 before cg_dist_init)          */
CG_API cg_status cg_dist_barrier(void); /* collective                                       */
/* Ends every rank of the job (MPI_Abort) after printing "rank r of n: why" to stderr: for a
 * rank that cannot go on while others may be waiting on it. Returns (CG_ESTATE) only when
 * MPI is not running. */
CG_API cg_status cg_dist_abort(int exit_code, const char *why);
/* Watchdog: a collective of this library that waits more than seconds for the other ranks
 * prints which collective and rank on stderr and aborts the job (cg_dist_abort) instead of
 * hanging on a rank that died, hangs or was stopped. 0 (the default) turns it off. */
CG_API cg_status cg_dist_set_timeout(double seconds);

/* Collective. The root rank's values replace every rank's (all the variables given,
 * trainable or not; names, dtypes and shapes must agree, checked first). */
CG_API cg_status cg_dist_broadcast_variables(cg_var *const *vars, int n, int root);
/* Collective. values[i] = sum_r w_r values_r[i] / sum_r w_r, in double: metrics averaged
 * over ranks, weighted by how many examples each saw (weight 0: contributes nothing). */
CG_API cg_status cg_dist_weighted_mean(double *values, int n, double weight);
/* Collective. CG_OK when every rank passed the same value, else CG_ESTATE "the N ranks
 * disagree on <what>". For configurations and cg_dist_fingerprint. */
CG_API cg_status cg_dist_check_same(uint64_t value, const char *what);
/* Collective. Every rank learns whether all succeeded: returns local when it failed (its
 * message kept), CG_EUSER naming the failed rank(s) when another failed, else CG_OK. */
CG_API cg_status cg_dist_agree(cg_status local, const char *what);
/* A 64-bit hash (FNV-1a) of the variables' names, dtypes, shapes and bytes: ranks whose
 * variables are bitwise identical get the same value. Needs no MPI. */
CG_API uint64_t cg_dist_fingerprint(cg_var *const *vars, int n);

/* --- gradient reduction in buckets ------------------------------------------------------ */
typedef struct {
  size_t bucket_bytes; /* gradient bytes per allreduce call (0: 1 MiB); many small tensors
                          travel in one call                                              */
  int overlap;         /* reduce each full bucket on a background thread while the caller
                          computes the rest of the backward (needs MPI_THREAD_SERIALIZED)   */
  int fixed_order;     /* add the ranks' parts in rank order 0..N-1 (alltoall + allgather,
                          the same bytes as a ring): bitwise what one process gets adding
                          the N parts in that order, whatever MPI's algorithm               */
} cg_dist_reducer_config;
typedef struct {
  int ranks, buckets;
  int64_t steps;              /* finished steps                                          */
  double bytes_per_step;      /* bytes reduced per step (gradients + 2 status elements)   */
  double wire_bytes_per_step; /* bytes a rank sends per step in a ring: 2(N-1)/N of them  */
  double reduce_seconds;      /* time in the reductions, all steps, whichever thread      */
  double exposed_seconds;     /* time the caller waited for them (less with overlap)      */
  int overlapping;            /* 1 when a background thread reduces                       */
} cg_dist_stats;
typedef struct cg_dist_reducer cg_dist_reducer;
/* Collective. Plans buckets over vars (borrowed: they must outlive the reducer) in reverse
 * order, the order a backward makes their gradients; f32 and f64 variables. config may be
 * NULL. Every rank must pass the same variables and config (checked). */
CG_API cg_dist_reducer *cg_dist_reducer_new(cg_var *const *vars, int n, const cg_dist_reducer_config *config);
/* The gradient of vars[i] is final: weight * grad is this rank's part (NULL grad: zeros).
 * For a mean loss over this rank's b of a global batch of B examples, weight = b / B. A
 * bucket is reduced as soon as it is full (buckets go in order; the last one at finish). If
 * the rank cannot go on this step, it must call cg_dist_reducer_fail, not just return. */
CG_API cg_status cg_dist_reducer_ready(cg_dist_reducer *r, int i, cg_tensor *grad, double weight);
/* This rank failed this step (its last error is kept): its missing gradients count as zeros
 * and every rank's cg_dist_reducer_finish reports the failure, so none is left waiting. */
CG_API cg_status cg_dist_reducer_fail(cg_dist_reducer *r);
/* Collective. Waits for every bucket; out[i] = sum over ranks of the parts (new tensors in
 * the current scope, identical on every rank). A missing gradient fails the step. When any
 * rank failed, every rank gets an error (CG_EUSER naming the rank) and out is not written. */
CG_API cg_status cg_dist_reducer_finish(cg_dist_reducer *r, cg_tensor **out);
/* Collective: ready for every gradient (last first), then finish. */
CG_API cg_status cg_dist_allreduce_gradients(cg_dist_reducer *r, cg_tensor *const *grads, double weight,
                                             cg_tensor **out);
CG_API cg_status cg_dist_reducer_stats(const cg_dist_reducer *r, cg_dist_stats *out);
CG_API void cg_dist_reducer_free(cg_dist_reducer *r);

/* --- sharding ----------------------------------------------------------------------------- */
/* Rows [*begin, *begin + *count) of n that rank takes among size: contiguous shards whose
 * sizes differ by at most one, the first n % size ranks taking one more. */
CG_API cg_status cg_dist_shard_range(int64_t n, int rank, int size, int64_t *begin, int64_t *count);
/* The global batches cg_batcher_new(d, global_batch, shuffle, seed) gives (the same order on
 * every rank from the shared seed), each cut by cg_dist_shard_range: this rank gets its
 * shard only, copied from d (d's tensors are retained). */
typedef struct cg_dist_sampler cg_dist_sampler;
CG_API cg_dist_sampler *cg_dist_sampler_new(const cg_dataset *d, int64_t global_batch, int shuffle,
                                            uint64_t seed, int rank, int size);
CG_API cg_status cg_dist_sampler_start_epoch(cg_dist_sampler *s, int64_t epoch);
/* This rank's rows of the next global batch (new tensors in the current scope; 0 rows when
 * the global batch is smaller than the ranks) and, if global_count, the global batch's size:
 * 1, then 0 at the end of the epoch, -1 on error. */
CG_API int cg_dist_sampler_next(cg_dist_sampler *s, cg_tensor **images, cg_tensor **labels,
                                int64_t *global_count);
CG_API int64_t cg_dist_sampler_num_batches(const cg_dist_sampler *s);
CG_API void cg_dist_sampler_free(cg_dist_sampler *s);

/* Ring allreduce cost model: 2(N-1) steps, each sending bytes/N to the next rank, so
 * t = 2(N-1) (bytes / (N bandwidth) + latency); -1 on bad arguments. */
CG_API double cg_dist_ring_allreduce_seconds(double bytes, int ranks, double bytes_per_second,
                                             double latency_seconds);

#ifdef __cplusplus
}
#endif
#endif /* CGRAD_H */

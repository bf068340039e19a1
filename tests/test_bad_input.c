/* test_bad_input.c - the audit of the public API against bad arguments (issue 6), one
 * table of rows per class: NULL pointers (walking include/cgrad.h from the top), wrong
 * dtypes, shapes that do not fit, negative or huge sizes (counts past int64 or size_t are
 * refused before anything is allocated), bad axes and permutations, indices out of range.
 * Each row asserts the status, the message and an untouched thread state (bad_input.h);
 * each class ends by checking its objects still work. Run under valgrind for leaks; the
 * broken callbacks, misuse and the sweep of every op are in test_bad_usage.c. */
#include "bad_input.h"

/* ======================================================================================
 * Class 1: NULL pointers, walking include/cgrad.h from the top
 * ==================================================================================== */

static void null_pointers(void **state)
{
  cg_tensor *a = f32_23, *none = NULL, *out[4] = {NULL};
  int64_t s2[1] = {2}, z2[2] = {0, 0}, pads[4] = {0};
  int k2[2] = {2, 2};
  cg_tensor *filter = cg_ones(CG_F32, 4, (int64_t[]){1, 1, 2, 1});

  /* errors and tensors */
  QUIET(cg_status_of(NULL), CG_EINVAL);
  BAD_S(cg_set_error(CG_EUSER, NULL), CG_EUSER, "(no message)");
  BAD_T(cg_tensor_from(CG_F32, 1, NULL, (float[]){1}), CG_EINVAL, "cg_tensor_from: shape is NULL");
  BAD_T(cg_tensor_from(CG_F32, 1, s2, NULL), CG_EINVAL, "cg_tensor_from: data is NULL");
  BAD_T(cg_zeros(CG_F32, 2, NULL), CG_EINVAL, "cg_zeros: shape is NULL");
  BAD_T(cg_fill(CG_F64, 1, NULL, 3), CG_EINVAL, "cg_fill: shape is NULL");
  BAD_T(cg_scalar_like(NULL, 1), CG_EINVAL, "cg_scalar_like: input 0 is NULL");
  BAD_T(cg_random_uniform(CG_F32, 1, NULL, 0, 1, 1), CG_EINVAL, "RandomUniform: shape is NULL");
  BAD_T(cg_random_normal(CG_F32, 1, NULL, 0, 1, 1), CG_EINVAL, "RandomNormal: shape is NULL");
  QUIET(cg_tensor_dtype(NULL), CG_NUM_DTYPES);
  QUIET(cg_tensor_ndim(NULL), -1);
  QUIET(cg_tensor_shape(NULL) == NULL, 1);
  QUIET(cg_tensor_dim(NULL, 0), -1);
  QUIET(cg_tensor_size(NULL), -1);
  QUIET(cg_tensor_data(NULL) == NULL, 1);
  BAD_N(isnan(cg_tensor_get(NULL, 0)), 1, CG_EINVAL, "cg_tensor_get: tensor is NULL");
  BAD_N(isnan(cg_item(NULL)), 1, CG_EINVAL, "cg_item: tensor is NULL");
  QUIET(cg_tensor_to_f64(NULL, (double[1]){0}, 1), 0);
  QUIET(cg_tensor_to_f64(a, NULL, 6), 0);
  QUIET(cg_retain(NULL) == NULL, 1);
  cg_release(NULL);
  cg_fprint(NULL, a);
  char buf[16];
  QUIET(strcmp(cg_shape_str(NULL, buf, sizeof buf), "(null)"), 0);
  QUIET(cg_shape_str(a, NULL, 4) == NULL, 1);
  QUIET(cg_keep(NULL) == NULL, 1);

  /* attributes */
  cg_attrs attrs = {0};
  BAD_S(cg_attrs_set_int(NULL, "axis", 1), CG_EINVAL, "attribute");
  BAD_S(cg_attrs_set_int(&attrs, NULL, 1), CG_EINVAL, "attribute name '(null)'");
  BAD_S(cg_attrs_set_ints(&attrs, "perm", NULL, 2), CG_EINVAL, "attribute 'perm'");
  BAD_S(cg_attrs_set_float(NULL, "f", 1), CG_EINVAL, "attribute");
  QUIET(cg_attrs_find(NULL, "axis") == NULL, 1);
  QUIET(cg_attrs_find(&attrs, NULL) == NULL, 1);

  /* ops: every family, the NULL in each position */
  BAD_T(cg_neg(NULL), CG_EINVAL, "Neg: input 0 is NULL");
  BAD_T(cg_leaky_relu(NULL, 0.1), CG_EINVAL, "LeakyRelu: input 0 is NULL");
  BAD_T(cg_round(NULL), CG_EINVAL, "Round: input 0 is NULL");
  BAD_T(cg_add(a, NULL), CG_EINVAL, "Add: input 1 is NULL");
  BAD_T(cg_pow(NULL, a), CG_EINVAL, "Pow: input 0 is NULL");
  BAD_T(cg_greater_equal(a, NULL), CG_EINVAL, "GreaterEqual: input 1 is NULL");
  BAD_T(cg_logical_not(NULL), CG_EINVAL, "LogicalNot: input 0 is NULL");
  BAD_T(cg_where(bool_3, NULL, a), CG_EINVAL, "Where: input 1 is NULL");
  BAD_T(cg_sum(NULL, NULL, 0, 0), CG_EINVAL, "Sum: input 0 is NULL");
  BAD_T(cg_logsumexp(NULL, NULL, 0, 1), CG_EINVAL, "LogSumExp: input 0 is NULL");
  BAD_T(cg_argmin(NULL, 0), CG_EINVAL, "ArgMin: input 0 is NULL");
  BAD_T(cg_matmul(NULL, a), CG_EINVAL, "MatMul: input 0 is NULL");
  BAD_T(cg_matmul_t(a, NULL, 1, 0), CG_EINVAL, "MatMul: input 1 is NULL");
  BAD_T(cg_reshape(NULL, 1, s2), CG_EINVAL, "Reshape: input 0 is NULL");
  BAD_T(cg_reshape(a, 1, NULL), CG_EINVAL, "Reshape: shape is NULL");
  BAD_T(cg_expand_dims(NULL, 0), CG_EINVAL, "ExpandDims: input 0 is NULL");
  BAD_T(cg_squeeze(NULL, NULL, 0), CG_EINVAL, "Squeeze: input 0 is NULL");
  BAD_T(cg_transpose(NULL, NULL, 0), CG_EINVAL, "Transpose: input 0 is NULL");
  BAD_T(cg_concat(NULL, 2, 0), CG_EINVAL, "Concat");
  BAD_T(cg_concat(((cg_tensor *[]){a, NULL}), 2, 0), CG_EINVAL, "Concat: input 1 is NULL");
  BAD_S(cg_split(NULL, 2, 0, out), CG_EINVAL, "Split: input 0 is NULL");
  BAD_S(cg_split(a, 2, 0, NULL), CG_EINVAL, "Split");
  BAD_S(cg_split_sizes(a, NULL, 2, 0, out), CG_EINVAL, "Split");
  BAD_T(cg_slice(NULL, z2, z2), CG_EINVAL, "Slice: input 0 is NULL");
  BAD_T(cg_slice(a, NULL, z2), CG_EINVAL, "Slice: begin is NULL");
  BAD_T(cg_slice(a, z2, NULL), CG_EINVAL, "Slice: size is NULL");
  BAD_T(cg_pad(NULL, pads, 0), CG_EINVAL, "Pad: input 0 is NULL");
  BAD_T(cg_pad(a, NULL, 0), CG_EINVAL, "Pad: paddings is NULL");
  BAD_T(cg_tile(a, NULL), CG_EINVAL, "Tile: multiples is NULL");
  BAD_T(cg_broadcast_to(a, 2, NULL), CG_EINVAL, "BroadcastTo: shape is NULL");
  BAD_T(cg_reshape_like(a, NULL), CG_EINVAL, "ReshapeLike: input 1 is NULL");
  BAD_T(cg_broadcast_like(NULL, a), CG_EINVAL, "BroadcastLike: input 0 is NULL");
  BAD_T(cg_gather(a, NULL, 0), CG_EINVAL, "Gather: input 1 is NULL");
  BAD_T(cg_unsorted_segment_sum(NULL, i64_2, 2), CG_EINVAL, "UnsortedSegmentSum: input 0 is NULL");
  BAD_T(cg_one_hot(NULL, 3, 1, 0, CG_F32), CG_EINVAL, "OneHot: input 0 is NULL");
  BAD_T(cg_cast(NULL, CG_F64), CG_EINVAL, "Cast: input 0 is NULL");
  BAD_T(cg_stop_gradient(NULL), CG_EINVAL, "StopGradient: input 0 is NULL");
  BAD_T(cg_zeros_like(NULL), CG_EINVAL, "ZerosLike: input 0 is NULL");
  BAD_T(cg_add_n(NULL, 2), CG_EINVAL, "AddN");
  BAD_T(cg_add_n(((cg_tensor *[]){a, NULL}), 2), CG_EINVAL, "AddN: input 1 is NULL");
  BAD_T(cg_softmax(NULL), CG_EINVAL, "Softmax: input 0 is NULL");
  BAD_T(cg_sparse_softmax_cross_entropy_with_logits(NULL, a), CG_EINVAL,
        "SparseSoftmaxCrossEntropyWithLogits: input 0 is NULL");
  BAD_T(cg_sigmoid_cross_entropy_with_logits(a, NULL), CG_EINVAL,
        "SigmoidCrossEntropyWithLogits: input 1 is NULL");
  BAD_T(cg_bias_add(a, NULL), CG_EINVAL, "BiasAdd: input 1 is NULL");
  BAD_T(cg_conv2d(img, NULL, NULL, CG_PAD_SAME, NULL), CG_EINVAL, "Conv2D: input 1 is NULL");
  BAD_T(cg_conv2d_backprop_input(NULL, filter, img, NULL, CG_PAD_SAME, NULL), CG_EINVAL,
        "Conv2DBackpropInput: attribute input_shape");
  BAD_T(cg_conv2d_backprop_filter(img, NULL, img, NULL, CG_PAD_SAME, NULL), CG_EINVAL,
        "Conv2DBackpropFilter: attribute filter_shape");
  BAD_T(cg_max_pool2d(img, NULL, NULL, CG_PAD_VALID), CG_EINVAL, "MaxPool2D: attribute ksize");
  BAD_T(cg_avg_pool2d(NULL, k2, NULL, CG_PAD_VALID), CG_EINVAL, "AvgPool2D: input 0 is NULL");
  BAD_T(cg_max_pool2d_grad(img, NULL, k2, NULL, CG_PAD_VALID), CG_EINVAL, "MaxPool2DGrad: input 1 is NULL");
  BAD_T(cg_avg_pool2d_grad(NULL, img, k2, NULL, CG_PAD_VALID), CG_EINVAL,
        "AvgPool2DGrad: attribute input_shape");
  /* a chain reports its first cause */
  BAD_T(cg_tanh(cg_mul(cg_add(a, none), a)), CG_EINVAL, "Add: input 1 is NULL");

  /* the registry */
  cg_op_def nameless = {.name = NULL, .n_inputs = 1};
  BAD_S(cg_register_op(NULL, 0), CG_EINVAL, "cg_register_op: a def needs a name");
  BAD_S(cg_register_op(&nameless, 0), CG_EINVAL, "cg_register_op: a def needs a name");
  BAD_T(cg_find_op(NULL), CG_EINVAL, "cg_find_op: name is NULL");
  BAD_T(cg_call(NULL, &a, 1, NULL), CG_EINVAL, "cg_find_op: name is NULL");
  BAD_T(cg_call("Tanh", NULL, 1, NULL), CG_EINVAL, "Tanh: input list is NULL");
  BAD_S(cg_register_gradient(NULL, NULL, NULL, 0), CG_EINVAL, "cg_register_gradient: need a name");
  BAD_S(cg_register_gradient("Tanh", NULL, NULL, CG_REGISTER_REPLACE), CG_EINVAL,
        "cg_register_gradient: need a name and a function");
  QUIET(cg_has_gradient(NULL), 0);
  BAD_S(cg_gradient_override_push(NULL, "Identity"), CG_EINVAL, "cg_gradient_override_push");
  BAD_S(cg_gradient_override_push("Tanh", NULL), CG_EINVAL, "cg_gradient_override_push");
  BAD_S(cg_load_op_library(NULL), CG_EINVAL, "cg_load_op_library: path is NULL");
  QUIET(cg_node_op_type(NULL) == NULL, 1);
  QUIET(cg_node_num_inputs(NULL), 0);
  QUIET(cg_node_input(NULL, 0) == NULL, 1);
  QUIET(cg_node_attr_int(NULL, "axis", 7), 7);
  QUIET(cg_node_attr_ints(NULL, "perm", NULL, 0), -1);
  BAD_S(cg_node_set_output(NULL, 0, CG_F32, 0, NULL), CG_ESTATE, "only a shape rule");
  BAD_S(cg_node_set_output_alias(NULL, 0, 0, 0, NULL), CG_ESTATE, "only a shape rule");
  BAD_S(cg_infer_same_as_input(NULL, 0), CG_ERANGE, "no input 0");

  /* tapes */
  cg_tape *tape = cg_tape_begin(0);
  BAD_S(cg_tape_watch(NULL, a), CG_EINVAL, "cg_tape_watch: tape is NULL");
  BAD_S(cg_tape_watch(tape, NULL), CG_EINVAL, "cg_tape_watch: input 0 is NULL");
  cg_tensor *w = cg_var_read(var), *y = cg_sum(w, NULL, 0, 0), *dw = NULL;
  assert_int_equal(cg_tape_end(tape), CG_OK);
  BAD_S(cg_tape_end(NULL), CG_EINVAL, "cg_tape_end: tape is NULL");
  BAD_S(cg_tape_gradient(NULL, y, &w, 1, &dw, NULL), CG_EINVAL, "cg_tape_gradient: tape is NULL");
  BAD_S(cg_tape_gradient(tape, NULL, &w, 1, &dw, NULL), CG_EINVAL, "cg_tape_gradient: input 0 is NULL");
  BAD_S(cg_tape_gradient(tape, y, NULL, 1, &dw, NULL), CG_EINVAL, "sources and out must hold n = 1");
  BAD_S(cg_tape_gradient(tape, y, &w, 1, NULL, NULL), CG_EINVAL, "sources and out must hold n = 1");
  BAD_S(cg_tape_gradient(tape, y, &none, 1, &dw, NULL), CG_EINVAL, "cg_tape_gradient: source 0 is NULL");
  BAD_T(cg_tape_jacobian(NULL, y, w), CG_EINVAL, "cg_tape_jacobian: tape is NULL");
  BAD_T(cg_tape_jacobian(tape, y, NULL), CG_EINVAL, "cg_tape_jacobian: source 0 is NULL");
  QUIET(cg_tape_num_records(NULL), 0);
  cg_tape_free(NULL);
  assert_int_equal(cg_tape_gradient(tape, y, &w, 1, &dw, NULL), CG_OK); /* the tape still works */
  assert_tensor(dw, CG_F32, 2, cg_tensor_shape(a), ((double[]){1, 1, 1, 1, 1, 1}), 0);
  cg_tape_free(tape);

  /* variables and custom gradients */
  BAD_T(cg_var_new("v", NULL, 1), CG_EINVAL, "cg_var_new: input 0 is NULL");
  QUIET(cg_var_name(NULL) == NULL, 1);
  QUIET(cg_var_value(NULL) == NULL, 1);
  BAD_T(cg_var_read(NULL), CG_EINVAL, "cg_var_read: variable is NULL");
  BAD_S(cg_var_assign(NULL, a), CG_EINVAL, "cg_var_assign: variable is NULL");
  BAD_S(cg_var_assign(var, NULL), CG_EINVAL, "cg_var_assign: input 0 is NULL");
  BAD_S(cg_var_assign_add(var, NULL), CG_EINVAL, "cg_var_assign_add: input 0 is NULL");
  BAD_S(cg_var_assign_sub(NULL, a), CG_EINVAL, "cg_var_assign_sub: variable is NULL");
  cg_var_free(NULL);
  cg_custom_def def = custom("Ident", 1, 1, fwd_identity, bwd_identity, NULL), no_bwd = def;
  no_bwd.backward = NULL;
  BAD_S(cg_custom_gradient(NULL, &a, out), CG_EINVAL, "cg_custom_gradient: def needs a name");
  BAD_S(cg_custom_gradient(&no_bwd, &a, out), CG_EINVAL, "cg_custom_gradient: def needs a name, a forward and a backward");
  BAD_S(cg_custom_gradient(&def, NULL, out), CG_EINVAL, "Ident: input or output array is NULL");
  BAD_S(cg_custom_gradient(&def, &a, NULL), CG_EINVAL, "Ident: input or output array is NULL");
  BAD_S(cg_custom_gradient(&def, &none, out), CG_EINVAL, "Ident: input 0 is NULL");
  BAD_S(cg_ctx_save(NULL, a), CG_EINVAL, "cg_ctx_save: ctx is NULL");
  BAD_T(cg_ctx_saved(NULL, 0), CG_ERANGE, "cg_ctx_saved");
  QUIET(cg_ctx_num_saved(NULL), 0);
  QUIET(cg_ctx_var(NULL, 0) == NULL, 1);
  QUIET(cg_ctx_input(NULL, 0) == NULL, 1);

  /* gradient checking */
  cg_tensor *jt, *jn;
  cg_gradcheck_report report;
  BAD_S(cg_compute_gradient(NULL, NULL, &a, 1, 0, &jt, &jn), CG_EINVAL, "cg_compute_gradient: need a function");
  BAD_S(cg_compute_gradient(returns_null, NULL, &a, 1, 0, NULL, &jn), CG_EINVAL, "cg_compute_gradient");
  BAD_S(cg_compute_gradient(returns_null, NULL, &none, 1, 0, &jt, &jn), CG_EINVAL,
        "cg_compute_gradient: input 0 is NULL");
  BAD_S(cg_gradcheck(NULL, NULL, &a, 1, NULL, &report), CG_EINVAL, "cg_gradcheck: need a function");
  BAD_S(cg_gradcheck(returns_null, NULL, NULL, 1, NULL, NULL), CG_EINVAL, "cg_gradcheck: need a function");

  /* graphs and traced functions */
  cg_graph *g = cg_graph_new();
  cg_graph_free(NULL);
  BAD_S(cg_graph_set_options(NULL, 0), CG_EINVAL, "cg_graph_set_options: graph is NULL");
  BAD_S(cg_graph_enter(NULL), CG_EINVAL, "cg_graph_enter: graph is NULL");
  BAD_S(cg_graph_exit(NULL), CG_ESTATE, "cg_graph_exit: this graph is not the one entered");
  assert_int_equal(cg_graph_enter(g), CG_OK);
  cg_tensor *p = cg_placeholder(CG_F32, 2, (int64_t[]){-1, 3}, "x");
  cg_tensor *q = cg_neg(p), *dq[1];
  BAD_T(cg_placeholder(CG_F32, 2, NULL, "x"), CG_EINVAL, "cg_placeholder: bad dtype 0 or rank 2");
  BAD_S(cg_gradients(NULL, 1, &p, 1, NULL, dq, NULL), CG_EINVAL, "cg_gradients: need ny >= 1");
  BAD_S(cg_gradients(&q, 1, NULL, 1, NULL, dq, NULL), CG_EINVAL, "cg_gradients: need ny >= 1");
  BAD_S(cg_gradients(&none, 1, &p, 1, NULL, dq, NULL), CG_EINVAL, "cg_gradients: input 0 is NULL");
  BAD_S(cg_gradients(&q, 1, &none, 1, NULL, dq, NULL), CG_EINVAL, "cg_gradients: xs[0] is NULL");
  assert_int_equal(cg_graph_exit(g), CG_OK);
  cg_feed feed = {p, a}, bad_feed = {p, NULL};
  BAD_S(cg_graph_run(NULL, &feed, 1, &q, 1, out), CG_EINVAL, "cg_graph_run: graph is NULL");
  BAD_S(cg_graph_run(g, &feed, 1, NULL, 1, out), CG_EINVAL, "cg_graph_run: need at least one fetch");
  BAD_S(cg_graph_run(g, &feed, 1, &q, 1, NULL), CG_EINVAL, "cg_graph_run: need at least one fetch");
  BAD_S(cg_graph_run(g, &feed, 1, &none, 1, out), CG_EINVAL, "cg_graph_run: fetch 0 is NULL");
  BAD_S(cg_graph_run(g, NULL, 1, &q, 1, out), CG_EINVAL, "cg_graph_run: bad feed list");
  BAD_S(cg_graph_run(g, &bad_feed, 1, &q, 1, out), CG_EINVAL, "feed 0 has a NULL placeholder or value");
  BAD_S(cg_graph_get_stats(NULL, &(cg_graph_stats){0}), CG_EINVAL, "cg_graph_get_stats");
  BAD_S(cg_graph_get_stats(g, NULL), CG_EINVAL, "cg_graph_get_stats");
  BAD_S(cg_graph_write_dot(NULL, stdout), CG_EINVAL, "cg_graph_write_dot");
  BAD_S(cg_graph_write_dot(g, NULL), CG_EINVAL, "cg_graph_write_dot");
  BAD_T(cg_function_trace("f", NULL, NULL, &a, 1, 1), CG_EINVAL, "cg_function_trace: need a function");
  BAD_T(cg_function_trace("f", trace_nothing, NULL, NULL, 1, 1), CG_EINVAL, "f: inputs are NULL");
  BAD_T(cg_function_trace("f", trace_nothing, NULL, &none, 1, 1), CG_EINVAL, "f: input 0 is NULL");
  cg_function *fn = cg_function_trace("f", trace_nothing, NULL, &a, 1, 1);
  assert_non_null(fn);
  BAD_S(cg_function_call(NULL, &a, out), CG_EINVAL, "cg_function_call: function and outputs");
  BAD_S(cg_function_call(fn, &a, NULL), CG_EINVAL, "cg_function_call: function and outputs");
  BAD_S(cg_function_call(fn, &none, out), CG_EINVAL, "f: input 0 is NULL");
  QUIET(cg_function_num_traces(NULL), 0);
  QUIET(cg_function_graph(NULL, 0) == NULL, 1);
  cg_function_free(NULL);
  assert_int_equal(cg_graph_run(g, &feed, 1, &q, 1, out), CG_OK); /* the graph still runs */
  assert_tensor(out[0], CG_F32, 2, cg_tensor_shape(a), ((double[]){-1, -2, -3, -4, -5, -6}), 0);
  assert_int_equal(cg_function_call(fn, &a, out), CG_OK);
  assert_tensor(out[0], CG_F32, 2, cg_tensor_shape(a), ((double[]){1, 2, 3, 4, 5, 6}), 0);
  cg_function_free(fn);
  cg_graph_free(g);

  /* training */
  BAD_T(cg_init_tensor((cg_initializer){CG_INIT_ZEROS, 0, 0}, CG_F32, 2, NULL, 1), CG_EINVAL,
        "cg_init_tensor: shape is NULL");
  BAD_T(cg_max_pool2d_layer(NULL, NULL, CG_PAD_VALID), CG_EINVAL, "ksize");
  BAD_S(cg_sequential_add(NULL, dense), CG_EINVAL, "cg_sequential_add: seq is NULL");
  cg_layer *seq = cg_sequential("s");
  BAD_S(cg_sequential_add(seq, NULL), CG_EINVAL, "cg_sequential_add: layer is NULL");
  BAD_T(cg_layer_forward(NULL, a, 0), CG_EINVAL, "cg_layer_forward: layer is NULL");
  BAD_T(cg_layer_forward(dense, NULL, 0), CG_EINVAL, "d: input 0 is NULL");
  BAD_N(cg_layer_variables(NULL, 0, NULL, 0), -1, CG_EINVAL, "cg_layer_variables: layer is NULL");
  BAD_N(cg_layer_variables(dense, 0, NULL, 2), -1, CG_EINVAL, "out is NULL but max > 0");
  QUIET(cg_layer_name(NULL) == NULL, 1);
  BAD_S(cg_layer_describe(NULL, buf, sizeof buf), CG_EINVAL, "cg_layer_describe");
  BAD_S(cg_layer_describe(dense, NULL, 8), CG_EINVAL, "cg_layer_describe");
  cg_layer_free(NULL);
  cg_layer_free(seq);
  BAD_T(cg_loss_mse(NULL, a, CG_REDUCE_MEAN), CG_EINVAL, "cg_loss_mse: input 0 is NULL");
  BAD_T(cg_loss_huber(a, NULL, 1, CG_REDUCE_SUM), CG_EINVAL, "cg_loss_huber: input 1 is NULL");
  BAD_T(cg_loss_sparse_softmax_xent(NULL, a, CG_REDUCE_MEAN), CG_EINVAL, "input 0 is NULL");
  BAD_T(cg_optimizer_new(NULL), CG_EINVAL, "cg_optimizer_new: config is NULL");
  cg_optimizer_free(NULL);
  BAD_S(cg_optimizer_apply_gradients(NULL, &a, &var, 1), CG_EINVAL, "optimizer is NULL");
  BAD_S(cg_optimizer_apply_gradients(adam, NULL, &var, 1), CG_EINVAL, "Adam: grads is NULL");
  BAD_S(cg_optimizer_apply_gradients(adam, &a, NULL, 1), CG_EINVAL, "Adam: vars is NULL");
  BAD_S(cg_optimizer_apply_gradients(adam, &a, (cg_var *[]){NULL}, 1), CG_EINVAL, "Adam: variable 0 is NULL");
  BAD_N(cg_optimizer_iterations(NULL), -1, CG_EINVAL, "cg_optimizer_iterations: optimizer is NULL");
  BAD_N(cg_optimizer_current_lr(NULL), -1, CG_EINVAL, "optimizer is NULL");
  BAD_N(cg_optimizer_num_slots(NULL), -1, CG_EINVAL, "optimizer is NULL");
  BAD_T(cg_optimizer_slot_name(NULL, 0), CG_EINVAL, "cg_optimizer_slot_name: optimizer is NULL");
  BAD_T(cg_optimizer_slot(NULL, 0), CG_EINVAL, "cg_optimizer_slot: optimizer is NULL");
  BAD_S(cg_optimizer_set_state(NULL, 0, NULL, NULL, 0), CG_EINVAL, "optimizer is NULL");
  BAD_S(cg_optimizer_set_state(adam, 0, NULL, &a, 1), CG_EINVAL, "Adam: slot_names is NULL");
  BAD_S(cg_clip_by_global_norm(NULL, 1, 1, out, NULL), CG_EINVAL, "cg_clip_by_global_norm: grads is NULL");
  BAD_S(cg_clip_by_global_norm(&a, 1, 1, NULL, NULL), CG_EINVAL, "cg_clip_by_global_norm: out is NULL");
  BAD_N(cg_accuracy(NULL, i64_2), -1, CG_EINVAL, "cg_accuracy: input 0 is NULL");
  BAD_N(cg_accuracy(a, NULL), -1, CG_EINVAL, "cg_accuracy: input 1 is NULL");

  /* files and data */
  const char *name = "x", *key = "k", *value = "v";
  BAD_S(cg_safetensors_save(NULL, &name, &a, 1, NULL, NULL, 0), CG_EINVAL, "cg_safetensors_save: path is NULL");
  BAD_S(cg_safetensors_save("/tmp/x", NULL, &a, 1, NULL, NULL, 0), CG_EINVAL, "names is NULL but n is 1");
  BAD_S(cg_safetensors_save("/tmp/x", &name, NULL, 1, NULL, NULL, 0), CG_EINVAL, "tensors is NULL but n is 1");
  BAD_S(cg_safetensors_save("/tmp/x", (const char *[]){NULL}, &a, 1, NULL, NULL, 0), CG_EINVAL, "name 0 is NULL");
  BAD_S(cg_safetensors_save("/tmp/x", &name, &none, 1, NULL, NULL, 0), CG_EINVAL, "tensor 0 ('x') is NULL");
  BAD_S(cg_safetensors_save("/tmp/x", &name, &a, 1, &key, NULL, 1), CG_EINVAL, "meta_values is NULL");
  BAD_S(cg_safetensors_save("/tmp/x", &name, &a, 1, (const char *[]){NULL}, &value, 1), CG_EINVAL,
        "metadata key 0 is NULL");
  BAD_T(cg_safetensors_load(NULL), CG_EINVAL, "cg_safetensors_load: path is NULL");
  QUIET(cg_safetensors_count(NULL), 0);
  BAD_T(cg_safetensors_name(NULL, 0), CG_EINVAL, "cg_safetensors_name: file is NULL");
  BAD_T(cg_safetensors_get(NULL, "x"), CG_EINVAL, "cg_safetensors_get: file is NULL");
  BAD_T(cg_safetensors_meta(NULL, "k"), CG_EINVAL, "cg_safetensors_meta: file is NULL");
  cg_safetensors_free(NULL);
  BAD_S(cg_checkpoint_save(NULL, &var, 1, NULL, NULL, NULL, 0), CG_EINVAL, "cg_checkpoint_save: path is NULL");
  BAD_S(cg_checkpoint_save("/tmp/x", NULL, 1, NULL, NULL, NULL, 0), CG_EINVAL, "vars is NULL but n_vars is 1");
  BAD_S(cg_checkpoint_save("/tmp/x", (cg_var *[]){NULL}, 1, NULL, NULL, NULL, 0), CG_EINVAL, "variable 0 is NULL");
  BAD_S(cg_checkpoint_save("/tmp/x", &var, 1, NULL, &key, NULL, 1), CG_EINVAL, "meta_values NULL");
  BAD_S(cg_checkpoint_restore(NULL, &var, 1, NULL), CG_EINVAL, "cg_checkpoint_restore: path is NULL");
  BAD_T(cg_idx_read(NULL), CG_EINVAL, "cg_idx_read: path is NULL");
  BAD_S(cg_mnist_load("/nonexistent", 1, NULL), CG_EINVAL, "cg_mnist_load: out is NULL");
  cg_dataset_free(NULL);
  cg_dataset d = {NULL, i64_2}, first, rest;
  BAD_S(cg_dataset_split(NULL, 0, &first, &rest), CG_EINVAL, "cg_dataset_split: the dataset is NULL");
  BAD_S(cg_dataset_split(&d, 0, &first, &rest), CG_EINVAL, "cg_dataset_split: dataset images is NULL");
  BAD_T(cg_batcher_new(NULL, 2, 0, 0), CG_EINVAL, "cg_batcher_new: the dataset is NULL");
  BAD_S(cg_batcher_start_epoch(NULL, 0), CG_EINVAL, "cg_batcher_start_epoch: batcher is NULL");
  BAD_N(cg_batcher_next(NULL, out, out + 1), -1, CG_EINVAL, "cg_batcher_next: batcher is NULL");
  QUIET(cg_batcher_num_batches(NULL), 0);
  cg_batcher_free(NULL);

  /* small accessors given nothing, or a value out of range */
  QUIET(strcmp(cg_status_name((cg_status)99), "CG_E?"), 0);
  QUIET(strcmp(cg_dtype_name((cg_dtype)99), "?"), 0);
  QUIET(cg_dtype_size((cg_dtype)99), 0);
  QUIET(cg_dtype_is_float((cg_dtype)-1), 0);
  QUIET(cg_tensor_is_symbolic(NULL), 0);
  QUIET(cg_node_op_user(NULL) == NULL, 1);
  QUIET(cg_node_num_outputs(NULL), 0);
  QUIET(cg_node_output(NULL, 0) == NULL, 1);
  QUIET(cg_node_attrs(NULL) == NULL, 1);
  QUIET(cg_node_attr_float(NULL, "alpha", 0.5), 0.5);
  QUIET(cg_ctx_user(NULL) == NULL, 1);
  QUIET(cg_ctx_num_vars(NULL), 0);
  QUIET(cg_ctx_output(NULL, 0) == NULL, 1);
  QUIET(cg_op_count() > 50, 1);
  QUIET(cg_graph_current() == NULL, 1);

  /* files that are missing, are directories, or hold something else */
  const char *garbage = "/tmp/cgrad_bad_input_garbage";
  FILE *f = fopen(garbage, "wb");
  assert_non_null(f);
  fputs("this is not a tensor file at all", f);
  fclose(f);
  BAD_T(cg_safetensors_load("/nonexistent/file"), CG_EIO, "/nonexistent/file");
  BAD_T(cg_safetensors_load("/tmp"), CG_EIO, "/tmp");
  BAD_T(cg_safetensors_load(garbage), CG_EINVAL, garbage);
  BAD_T(cg_idx_read("/nonexistent/file"), CG_EIO, "/nonexistent/file");
  BAD_T(cg_idx_read(garbage), CG_EINVAL, garbage);
  BAD_S(cg_checkpoint_restore(garbage, &var, 1, NULL), CG_EINVAL, garbage);
  BAD_S(cg_mnist_load("/nonexistent", 1, &d), CG_EIO, "/nonexistent");
  BAD_S(cg_checkpoint_save("/nonexistent/dir/ckpt", &var, 1, NULL, NULL, NULL, 0), CG_EIO, "/nonexistent/dir/ckpt");
  unlink(garbage);

  assert_still_works();
}

/* ======================================================================================
 * Class 2: wrong dtypes (no implicit promotion anywhere)
 * ==================================================================================== */

static void wrong_dtypes(void **state)
{
  cg_tensor *a = f32_23, *out[2];
  int64_t s2[1] = {2}, s23[2] = {2, 3};
  cg_tensor *labels_f = cg_zeros(CG_F32, 1, s2), *i32_23 = cg_zeros(CG_I32, 2, s23);
  cg_tensor *f64_img = cg_cast(img, CG_F64), *filter = cg_ones(CG_F32, 4, (int64_t[]){1, 1, 2, 3});
  cg_tensor *i32_34 = cg_cast(f32_34, CG_I32), *f64_3 = cg_zeros(CG_F64, 1, (int64_t[]){3});
  cg_tensor *bool_img = cg_cast(img, CG_BOOL);
  cg_tensor *row64 = cg_cast(cg_slice(a, (int64_t[]){0, 0}, (int64_t[]){1, 3}), CG_F64);

  BAD_T(cg_zeros((cg_dtype)7, 1, s2), CG_EDTYPE, "cg_zeros: unknown dtype 7");
  BAD_T(cg_fill((cg_dtype)-1, 1, s2, 1), CG_EDTYPE, "cg_fill: unknown dtype -1");
  BAD_T(cg_arange((cg_dtype)9, 0, 3, 1), CG_EDTYPE, "cg_arange: unknown dtype 9");
  BAD_T(cg_random_uniform(CG_BOOL, 1, s2, 0, 1, 1), CG_EDTYPE, "RandomUniform: dtype bool is not numeric");
  BAD_T(cg_random_normal((cg_dtype)5, 1, s2, 0, 1, 1), CG_EDTYPE, "RandomNormal: dtype ? is not numeric");
  BAD_T(cg_add(a, f64_23), CG_EDTYPE, "Add");
  BAD_T(cg_matmul(a, i32_34), CG_EDTYPE, "MatMul");
  BAD_T(cg_log(i32_23), CG_EDTYPE, "Log");
  BAD_T(cg_tanh(bool_3), CG_EDTYPE, "Tanh");
  BAD_T(cg_neg(bool_3), CG_EDTYPE, "Neg");
  BAD_T(cg_logical_and(a, a), CG_EDTYPE, "LogicalAnd");
  BAD_T(cg_logical_not(a), CG_EDTYPE, "LogicalNot");
  BAD_T(cg_where(a, a, a), CG_EDTYPE, "Where");
  BAD_T(cg_where(bool_3, i64_2, f32_s), CG_EDTYPE, "Where");
  BAD_T(cg_gather(a, labels_f, 0), CG_EDTYPE, "Gather: indices must be i32 or i64, got f32");
  BAD_T(cg_unsorted_segment_sum(a, labels_f, 2), CG_EDTYPE, "UnsortedSegmentSum: segment_ids must be i32 or i64");
  BAD_T(cg_unsorted_segment_sum(bool_3, i64_2, 2), CG_EDTYPE, "UnsortedSegmentSum: data must be numeric");
  BAD_T(cg_one_hot(labels_f, 3, 1, 0, CG_F32), CG_EDTYPE, "OneHot: indices must be i32 or i64, got f32");
  BAD_T(cg_one_hot(i64_2, 3, 1, 0, (cg_dtype)42), CG_EINVAL, "OneHot: attribute dtype is 42");
  BAD_T(cg_cast(a, (cg_dtype)-3), CG_EINVAL, "Cast: attribute dtype is 4294967293, not a dtype (0..4)");
  BAD_T(cg_softmax(i32_23), CG_EDTYPE, "Softmax");
  BAD_T(cg_sparse_softmax_cross_entropy_with_logits(labels_f, a), CG_EDTYPE,
        "SparseSoftmaxCrossEntropyWithLogits");
  BAD_T(cg_softmax_cross_entropy_with_logits(i32_23, a), CG_EDTYPE, "SoftmaxCrossEntropyWithLogits");
  BAD_T(cg_bias_add(a, f64_3), CG_EDTYPE, "BiasAdd");
  BAD_T(cg_conv2d(f64_img, filter, NULL, CG_PAD_SAME, NULL), CG_EDTYPE, "Conv2D");
  BAD_T(cg_max_pool2d(bool_img, (int[]){2, 2}, NULL, CG_PAD_VALID), CG_EDTYPE, "MaxPool2D");
  BAD_T(cg_sum(bool_3, NULL, 0, 0), CG_EDTYPE, "Sum");
  BAD_T(cg_mean(i32_23, NULL, 0, 0), CG_EDTYPE, "Mean");
  BAD_T(cg_add_n(((cg_tensor *[]){a, f64_23}), 2), CG_EDTYPE, "AddN");
  BAD_T(cg_concat(((cg_tensor *[]){a, f64_23}), 2, 0), CG_EDTYPE, "Concat");
  BAD_T(cg_init_tensor((cg_initializer){CG_INIT_ZEROS, 0, 0}, CG_I32, 1, s2, 1), CG_EDTYPE,
        "cg_init_tensor: dtype i32 is not a float type");
  BAD_T(cg_var_new("v", i64_2, 1), CG_EDTYPE, "cg_var_new: variable 'v' is trainable but its value is i64");
  BAD_S(cg_var_assign(var, f64_23), CG_EDTYPE, "cg_var_assign: variable 'w' is f32 [2,3], the value is f64 [2,3]");
  BAD_S(cg_var_assign_add(var, f64_23), CG_EDTYPE, "Add");
  BAD_T(cg_layer_forward(dense, row64, 0), CG_EDTYPE, "d");
  BAD_T(cg_loss_mse(a, f64_23, CG_REDUCE_MEAN), CG_EDTYPE, "cg_loss_mse: pred is f32 and target is f64");
  BAD_T(cg_loss_sparse_softmax_xent(labels_f, a, CG_REDUCE_MEAN), CG_EDTYPE, "labels");
  BAD_S(cg_optimizer_apply_gradients(adam, &f64_23, &var, 1), CG_EDTYPE,
        "Adam: gradient for 'w' is f64, the variable is f32");
  BAD_S(cg_optimizer_set_state(adam, 1, (const char *[]){"w/m"}, &i32_23, 1), CG_EDTYPE,
        "Adam: slot 'w/m' is i32, slots are f32 or f64");
  BAD_S(cg_clip_by_global_norm(&i32_23, 1, 1, out, NULL), CG_EDTYPE, "gradient 0 is i32");
  BAD_N(cg_accuracy(a, labels_f), -1, CG_EDTYPE, "cg_accuracy: need float logits and i32/i64 class ids");
  BAD_N(cg_accuracy(i32_23, i64_2), -1, CG_EDTYPE, "cg_accuracy");

  /* tapes and graphs */
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, a);
  cg_tensor *y = cg_sum(cg_square(a), NULL, 0, 0), *dx;
  cg_tape_end(tape);
  cg_grad_opts seed_f64 = {.output_gradient = cg_scalar(CG_F64, 1)};
  cg_tensor *y_i64 = cg_cast(y, CG_I64);
  BAD_S(cg_tape_gradient(tape, y, &a, 1, &dx, &seed_f64), CG_ESHAPE,
        "cg_tape_gradient: output_gradient is f64 [] but the target is f32 []");
  BAD_T(cg_tape_jacobian(tape, y_i64, a), CG_EDTYPE, "cg_tape_jacobian: target and source must be float");
  assert_int_equal(cg_tape_gradient(tape, y, &a, 1, &dx, NULL), CG_OK); /* still usable */
  assert_tensor(dx, CG_F32, 2, s23, ((double[]){2, 4, 6, 8, 10, 12}), 0);
  cg_tape_free(tape);
  tape = cg_tape_begin(0);
  assert_int_equal(cg_tape_watch(tape, i64_2), CG_OK); /* integers: no gradient, no error */
  cg_tape_free(tape);

  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  BAD_T(cg_placeholder((cg_dtype)12, 1, s2, "p"), CG_EINVAL, "cg_placeholder: bad dtype 12");
  cg_tensor *p = cg_placeholder(CG_F32, 1, (int64_t[]){-1}, "p"), *q = cg_exp(p), *dq;
  BAD_S(cg_gradients(&q, 1, &p, 1, (cg_tensor *[]){i64_2}, &dq, NULL), CG_ESHAPE,
        "cg_gradients: grad_ys[0] is i64 [2] but ys[0] is f32 [-1]");
  cg_graph_exit(g);
  cg_feed feed = {p, i64_2};
  BAD_S(cg_graph_run(g, &feed, 1, &q, 1, out), CG_EDTYPE, "placeholder 'p' is f32 [-1] but was fed i64 [2]");
  feed.value = cg_cast(i64_2, CG_F32);
  assert_int_equal(cg_graph_run(g, &feed, 1, &q, 1, out), CG_OK);
  assert_tensor(out[0], CG_F32, 1, s2, ((double[]){1, exp(2)}), 1e-6);
  cg_graph_free(g);

  /* files */
  const char *path = "/tmp/cgrad_bad_input_dtype.safetensors";
  assert_int_equal(cg_checkpoint_save(path, &var, 1, NULL, NULL, NULL, 0), CG_OK);
  cg_var *v64 = cg_var_new("w", f64_23, 1);
  BAD_S(cg_checkpoint_restore(path, &v64, 1, NULL), CG_EDTYPE, "variable 'w' is f64 [2,3] but");
  assert_int_equal(cg_checkpoint_restore(path, &var, 1, NULL), CG_OK);
  cg_var_free(v64);
  unlink(path);

  assert_still_works();
}

/* ======================================================================================
 * Class 3: shapes that do not fit
 * ==================================================================================== */

static void shapes_that_do_not_fit(void **state)
{
  cg_tensor *a = f32_23, *out[4];
  int64_t s4[1] = {4}, s2[1] = {2}, s3[1] = {3};
  cg_tensor *v4 = cg_zeros(CG_F32, 1, s4), *m43 = cg_zeros(CG_F32, 2, (int64_t[]){4, 3});
  cg_tensor *r8 = cg_ones(CG_F32, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 2});
  cg_tensor *filter = cg_ones(CG_F32, 4, (int64_t[]){3, 3, 5, 1});
  cg_tensor *filter55 = cg_ones(CG_F32, 4, (int64_t[]){5, 5, 2, 1}), *bool4 = cg_cast(v4, CG_BOOL);
  cg_tensor *f32_2 = cg_zeros(CG_F32, 1, s2), *i64_3 = cg_zeros(CG_I64, 1, s3);
  cg_tensor *i64_r8 = cg_zeros(CG_I64, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1});
  cg_tensor *i64_11 = cg_zeros(CG_I64, 2, (int64_t[]){1, 1});
  cg_tensor *no_rows = cg_zeros(CG_F32, 2, (int64_t[]){0, 3}), *no_labels = cg_zeros(CG_I64, 1, (int64_t[]){0});
  cg_tensor *m42 = cg_zeros(CG_F32, 2, (int64_t[]){4, 2});

  BAD_T(cg_add(a, v4), CG_ESHAPE, "Add");
  BAD_T(cg_squared_difference(a, m43), CG_ESHAPE, "SquaredDifference");
  BAD_T(cg_matmul(a, a), CG_ESHAPE, "MatMul: inner dimensions differ: [2,3] x [2,3]");
  BAD_T(cg_matmul(v4, v4), CG_ESHAPE, "MatMul");
  BAD_T(cg_matmul_t(a, m43, 1, 1), CG_ESHAPE, "MatMul");
  BAD_T(cg_where(bool4, a, a), CG_ESHAPE, "Where");
  BAD_T(cg_concat(((cg_tensor *[]){a, m43}), 2, 1), CG_ESHAPE, "Concat");
  BAD_T(cg_concat(((cg_tensor *[]){a, v4}), 2, 0), CG_ESHAPE, "Concat");
  BAD_T(cg_add_n(((cg_tensor *[]){a, m43}), 2), CG_ESHAPE, "AddN");
  BAD_T(cg_reshape(a, 1, s4), CG_ESHAPE, "Reshape: cannot reshape [2,3] (6 elements) into [4] (4 elements)");
  BAD_T(cg_reshape(a, 2, (int64_t[]){-1, 4}), CG_ESHAPE, "no size for -1 fits");
  BAD_T(cg_reshape_like(a, v4), CG_ESHAPE, "ReshapeLike");
  BAD_T(cg_broadcast_to(a, 2, (int64_t[]){4, 3}), CG_ESHAPE, "BroadcastTo");
  BAD_T(cg_broadcast_like(a, v4), CG_ESHAPE, "BroadcastLike");
  BAD_T(cg_bias_add(a, f32_2), CG_ESHAPE, "BiasAdd");
  BAD_T(cg_softmax_cross_entropy_with_logits(m43, a), CG_ESHAPE, "SoftmaxCrossEntropyWithLogits");
  BAD_T(cg_sparse_softmax_cross_entropy_with_logits(i64_3, a), CG_ESHAPE,
        "SparseSoftmaxCrossEntropyWithLogits");
  BAD_T(cg_sigmoid_cross_entropy_with_logits(m43, a), CG_ESHAPE, "SigmoidCrossEntropyWithLogits");
  BAD_T(cg_conv2d(a, filter, NULL, CG_PAD_SAME, NULL), CG_ESHAPE, "Conv2D: input (NHWC) must have rank 4, got [2,3]");
  BAD_T(cg_conv2d(img, filter, NULL, CG_PAD_SAME, NULL), CG_ESHAPE, "Conv2D");
  BAD_T(cg_conv2d(img, filter55, NULL, CG_PAD_VALID, NULL), CG_ESHAPE,
        "Conv2D: window 5x5 is larger than the 4x4 input under VALID padding");
  BAD_T(cg_max_pool2d(a, (int[]){2, 2}, NULL, CG_PAD_VALID), CG_ESHAPE, "MaxPool2D");
  BAD_T(cg_max_pool2d_grad(img, img, (int[]){2, 2}, NULL, CG_PAD_VALID), CG_ESHAPE, "MaxPool2DGrad");
  BAD_S(cg_split(a, 2, 1, out), CG_ESHAPE, "Split");
  BAD_S(cg_split_sizes(a, (int64_t[]){1, 1}, 2, 1, out), CG_ESHAPE, "Split");
  BAD_T(cg_expand_dims(r8, 0), CG_EINVAL, "ExpandDims: input [1,1,1,1,1,1,1,2] already has 8 dimensions");
  BAD_T(cg_one_hot(i64_r8, 2, 1, 0, CG_F32), CG_ESHAPE,
        "OneHot: indices [1,1,1,1,1,1,1,1] already have 8 dims");
  BAD_T(cg_gather(r8, i64_11, 0), CG_ESHAPE, "Gather: params");
  BAD_T(cg_unsorted_segment_sum(a, i64_3, 2), CG_ESHAPE,
        "UnsortedSegmentSum: segment_ids shape [3] is not a prefix of data shape [2,3]");
  BAD_N(isnan(cg_item(a)), 1, CG_ESHAPE, "cg_item: tensor of shape [2,3] has 6 elements, not 1");
  BAD_S(cg_var_assign(var, m43), CG_ESHAPE, "cg_var_assign: variable 'w' is f32 [2,3], the value is f32 [4,3]");
  BAD_T(cg_layer_forward(dense, f32_34, 1), CG_ESHAPE, "d: input [3,4] does not match kernel [3,4]");
  BAD_T(cg_layer_forward(dense, v4, 1), CG_ESHAPE, "d: input [4]");
  BAD_T(cg_loss_mae(a, m43, CG_REDUCE_NONE), CG_ESHAPE, "cg_loss_mae: pred [2,3] and target [4,3] differ in shape");
  BAD_S(cg_optimizer_apply_gradients(adam, &m43, &var, 1), CG_ESHAPE, "Adam: gradient for 'w' is [4,3], the variable is [2,3]");
  BAD_N(cg_accuracy(a, i64_3), -1, CG_ESHAPE, "cg_accuracy: labels [3]");
  BAD_N(cg_accuracy(no_rows, no_labels), -1,
        CG_ESHAPE, "no rows or no classes");

  cg_tape *tape = cg_tape_begin(CG_TAPE_PERSISTENT);
  cg_tape_watch(tape, r8);
  cg_tensor *y = cg_square(r8), *dx, *sum = cg_sum(y, NULL, 0, 0);
  cg_tape_end(tape);
  cg_grad_opts wrong_seed = {.output_gradient = f32_2};
  BAD_S(cg_tape_gradient(tape, sum, &r8, 1, &dx, &wrong_seed), CG_ESHAPE,
        "output_gradient is f32 [2] but the target is f32 []");
  BAD_T(cg_tape_jacobian(tape, y, r8), CG_ESHAPE, "cg_tape_jacobian: the Jacobian would have rank 16");
  assert_int_equal(cg_tape_gradient(tape, sum, &r8, 1, &dx, NULL), CG_OK);
  assert_tensor(dx, CG_F32, 8, cg_tensor_shape(r8), ((double[]){2, 2}), 0);
  cg_tape_free(tape);

  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *p = cg_placeholder(CG_F32, 2, (int64_t[]){-1, 3}, "x"), *q = cg_tanh(p), *dq;
  BAD_T(cg_matmul(p, p), CG_ESHAPE, "MatMul: inner dimensions differ: [257,3] x [257,3] (unknown dimensions tried as 257)");
  BAD_S(cg_gradients(&q, 1, &p, 1, (cg_tensor *[]){m42}, &dq, NULL), CG_ESHAPE,
        "cg_gradients: grad_ys[0] is f32 [4,2] but ys[0] is f32 [-1,3]");
  cg_graph_exit(g);
  cg_feed feed = {p, m43};
  BAD_S(cg_graph_run(g, &(cg_feed){p, v4}, 1, &q, 1, out), CG_ESHAPE, "placeholder 'x' has shape [-1,3] but was fed [4]");
  assert_int_equal(cg_graph_run(g, &feed, 1, &q, 1, out), CG_OK);
  assert_tensor(out[0], CG_F32, 2, ((int64_t[]){4, 3}), NULL, 0);
  cg_graph_free(g);

  cg_dataset mismatched = {img, i64_2}, first, rest;
  BAD_S(cg_dataset_split(&mismatched, 0, &first, &rest), CG_ESHAPE,
        "images [1,4,4,2] and labels [2] do not share a first dimension");
  BAD_T(cg_batcher_new(&mismatched, 1, 0, 0), CG_ESHAPE, "do not share a first dimension");

  const char *path = "/tmp/cgrad_bad_input_shape.safetensors";
  assert_int_equal(cg_checkpoint_save(path, &var, 1, NULL, NULL, NULL, 0), CG_OK);
  cg_var *wide = cg_var_new("w", m43, 1);
  BAD_S(cg_checkpoint_restore(path, &wide, 1, NULL), CG_ESHAPE, "variable 'w' is f32 [4,3] but");
  assert_tensor(cg_var_value(wide), CG_F32, 2, ((int64_t[]){4, 3}), NULL, 0); /* untouched */
  cg_var_free(wide);
  unlink(path);

  assert_still_works();
}

/* ======================================================================================
 * Class 4: negative and huge sizes. Element counts past int64 (or whose bytes pass size_t)
 * are refused by the size check, before anything is allocated; counts that fit but cannot
 * be allocated are CG_ENOMEM from the allocator.
 * ==================================================================================== */

/* A row for a size that overflows: refused by the size check, before any allocation. */
#define BAD_T_NO_ALLOC(call, code, msg)                                           \
  do {                                                                            \
    long allocs_ = cg__alloc_calls();                                             \
    BAD_T(call, code, msg);                                                       \
    if (cg__alloc_calls() != allocs_) fail_msg("%s allocated before refusing", #call); \
  } while (0)

static void negative_and_huge_sizes(void **state)
{
  cg_tensor *a = f32_23, *out[CG_MAX_OUTPUTS + 1];
  const int64_t big = INT64_MAX, two32 = INT64_C(1) << 32;
  int64_t neg[1] = {-1}, s2[1] = {2};
  int64_t overflow64[2] = {big, 2}, overflow_bytes[1] = {INT64_C(1) << 61};
  int64_t wraps[2] = {two32, two32}, unallocatable[1] = {INT64_C(1) << 57};
  cg_tensor *f1121 = cg_ones(CG_F32, 4, (int64_t[]){1, 1, 2, 1}), *f2221 = cg_ones(CG_F32, 4, (int64_t[]){2, 2, 2, 1});

  BAD_T(cg_zeros(CG_F32, 1, neg), CG_EINVAL, "cg_zeros: negative dimension in shape [-1]");
  BAD_T(cg_zeros(CG_F32, -1, s2), CG_EINVAL, "cg_zeros: rank -1 is outside 0..8");
  BAD_T(cg_zeros(CG_F32, 9, (int64_t[9]){1}), CG_EINVAL, "cg_zeros: rank 9 is outside 0..8");
  BAD_T_NO_ALLOC(cg_ones(CG_F64, 2, overflow64), CG_ENOMEM, "shape [9223372036854775807,2] has too many elements");
  BAD_T_NO_ALLOC(cg_zeros(CG_F64, 2, wraps), CG_ENOMEM, "shape [4294967296,4294967296] has too many elements");
  BAD_T_NO_ALLOC(cg_zeros(CG_F64, 1, overflow_bytes), CG_ENOMEM, "has too many elements");
  BAD_T(cg_zeros(CG_F64, 1, unallocatable), CG_ENOMEM, "out of memory allocating 1152921504606846976 bytes");
  BAD_T_NO_ALLOC(cg_tensor_from(CG_I32, 2, overflow64, (int32_t[]){0}), CG_ENOMEM, "too many elements");
  BAD_T_NO_ALLOC(cg_random_normal(CG_F32, 2, wraps, 0, 1, 1), CG_ENOMEM, "RandomNormal: shape [4294967296,4294967296]");
  BAD_T(cg_random_uniform(CG_F32, 1, neg, 0, 1, 1), CG_EINVAL, "RandomUniform: negative dimension");
  BAD_T(cg_arange(CG_F32, 0, 1e300, 1), CG_ENOMEM, "cg_arange");
  BAD_T(cg_arange(CG_F32, 0, 1, 0), CG_EINVAL, "cg_arange: step must be finite and nonzero");
  BAD_T(cg_arange(CG_F32, 0, INFINITY, 1), CG_EINVAL, "cg_arange");
  BAD_T_NO_ALLOC(cg_init_tensor((cg_initializer){CG_INIT_GLOROT_UNIFORM, 0, 0}, CG_F32, 2, wraps, 1), CG_ENOMEM,
        "cg_init_tensor: shape [4294967296,4294967296] has too many elements");
  BAD_T(cg_reshape(a, 1, (int64_t[]){-2}), CG_EINVAL, "Reshape: shape [-2] has a negative size other than -1");
  BAD_T(cg_reshape(a, 2, (int64_t[]){-1, -1}), CG_EINVAL, "Reshape: shape [-1,-1] has more than one -1");
  BAD_T_NO_ALLOC(cg_reshape(a, 2, overflow64), CG_ENOMEM, "Reshape: shape");
  BAD_T(cg_reshape(a, 3, (int64_t[]){-1, 0, 2}), CG_ESHAPE, "no size for -1 fits");
  BAD_T(cg_reshape(a, 9, (int64_t[9]){1}), CG_EINVAL, "Reshape: shape [1,0,0,0,0,0,0,0,0] has 9 dimensions");
  BAD_T(cg_reshape(a, 17, (int64_t[17]){1}), CG_EINVAL, "Reshape: shape has 17 entries");
  BAD_T(cg_broadcast_to(a, 2, (int64_t[]){-1, 3}), CG_EINVAL, "BroadcastTo");
  BAD_T_NO_ALLOC(cg_broadcast_to(a, 4, (int64_t[]){two32, two32, 2, 3}), CG_ENOMEM, "BroadcastTo");
  BAD_T(cg_tile(a, (int64_t[]){-1, 1}), CG_EINVAL, "Tile");
  BAD_T_NO_ALLOC(cg_tile(a, (int64_t[]){big, big}), CG_ENOMEM, "Tile");
  BAD_T_NO_ALLOC(cg_tile(a, (int64_t[]){two32, two32}), CG_ENOMEM, "Tile");
  BAD_T_NO_ALLOC(cg_pad(a, (int64_t[]){0, big, 0, 0}, 0), CG_ENOMEM, "Pad");
  BAD_T(cg_pad(a, (int64_t[]){-3, 0, 0, 0}, 0), CG_EINVAL, "Pad");
  BAD_T(cg_one_hot(i64_2, -1, 1, 0, CG_F32), CG_EINVAL, "OneHot: depth must be >= 0, got -1");
  BAD_T_NO_ALLOC(cg_one_hot(i64_2, big, 1, 0, CG_F32), CG_ENOMEM, "OneHot: shape [2,9223372036854775807] has too many elements");
  BAD_T(cg_unsorted_segment_sum(a, i64_2, -1), CG_EINVAL, "UnsortedSegmentSum: num_segments must be >= 0, got -1");
  BAD_T_NO_ALLOC(cg_unsorted_segment_sum(a, i64_2, big), CG_ENOMEM, "UnsortedSegmentSum: shape");
  BAD_S(cg_split(a, 0, 0, out), CG_EINVAL, "Split");
  BAD_S(cg_split(a, -2, 0, out), CG_EINVAL, "Split");
  BAD_S(cg_split(a, CG_MAX_OUTPUTS + 1, 0, out), CG_EINVAL, "Split");
  BAD_S(cg_split_sizes(a, (int64_t[]){-2, 5}, 2, 1, out), CG_EINVAL, "Split");
  BAD_S(cg_split_sizes(a, (int64_t[]){big, 1}, 2, 1, out), CG_ESHAPE, "Split");
  BAD_T(cg_concat(&a, 0, 0), CG_EINVAL, "Concat");
  BAD_T(cg_concat(&a, -1, 0), CG_EINVAL, "Concat");
  BAD_T(cg_add_n(&a, 0), CG_EINVAL, "AddN");
  BAD_T(cg_conv2d_backprop_input((int64_t[]){1, -4, 4, 2}, f1121, img,
                                 NULL, CG_PAD_SAME, NULL), CG_EINVAL, "Conv2DBackpropInput: negative dimension");
  BAD_T_NO_ALLOC(cg_avg_pool2d_grad((int64_t[]){big, big, 1, 1}, img, (int[]){1, 1}, NULL, CG_PAD_SAME), CG_ENOMEM,
        "AvgPool2DGrad: shape");
  BAD_T(cg_conv2d(img, f1121, (int[]){0, 1}, CG_PAD_SAME, NULL),
        CG_EINVAL, "Conv2D: strides must be positive, got [0,1]");
  BAD_T(cg_conv2d(img, f1121, NULL, CG_PAD_SAME, (int[]){-1, 1}),
        CG_EINVAL, "Conv2D: dilations must be positive");
  BAD_T(cg_conv2d(img, f2221, NULL, CG_PAD_VALID, (int[]){INT32_MAX, 1}), CG_ESHAPE,
        "Conv2D: dilated window 2147483648x2 is larger than the 4x4 input under VALID padding");
  BAD_T(cg_conv2d(img, f1121, NULL, (cg_padding)7, NULL), CG_EINVAL,
        "Conv2D: padding must be CG_PAD_VALID (0) or CG_PAD_SAME (1), got 7");
  BAD_T(cg_max_pool2d(img, (int[]){0, 2}, NULL, CG_PAD_VALID), CG_EINVAL, "MaxPool2D: window size must be positive");
  BAD_T(cg_avg_pool2d(img, (int[]){2, 2}, (int[]){-1, -1}, CG_PAD_SAME), CG_EINVAL, "AvgPool2D: strides must be positive");

  BAD_S(cg_attrs_set_ints(&(cg_attrs){0}, "perm", (int64_t[17]){0}, 17), CG_EINVAL, "attribute 'perm': 17 ints");
  BAD_S(cg_attrs_set_ints(&(cg_attrs){0}, "perm", s2, -1), CG_EINVAL, "attribute 'perm': -1 ints");
  BAD_S(cg_attrs_set_int(&(cg_attrs){0}, "a_name_far_too_long", 1), CG_EINVAL, "longer than 15 characters");
  cg_attrs full = {0};
  for (int i = 0; i < CG_ATTR_MAX; i++) cg_attrs_set_int(&full, (char[]){(char)('a' + i), 0}, i);
  BAD_S(cg_attrs_set_int(&full, "z", 1), CG_EINVAL, "attribute 'z': at most 8 attributes");
  cg_custom_def def = custom("Ident", 1, 0, fwd_identity, bwd_identity, NULL);
  BAD_S(cg_custom_gradient(&def, &a, out), CG_EINVAL, "Ident: custom gradient needs n_inputs >= 0 and 1..16 outputs, got 1 and 0");
  def.n_outputs = CG_MAX_OUTPUTS + 1;
  BAD_S(cg_custom_gradient(&def, &a, out), CG_EINVAL, "got 1 and 17");
  def.n_inputs = -1, def.n_outputs = 1;
  BAD_S(cg_custom_gradient(&def, &a, out), CG_EINVAL, "got -1 and 1");
  BAD_T(cg_function_trace("f", trace_nothing, NULL, &a, 1, 0), CG_EINVAL, "1..16 outputs");
  BAD_T(cg_function_trace("f", trace_nothing, NULL, &a, -1, 1), CG_EINVAL, "nx >= 0");
  BAD_S(cg_gradcheck(returns_null, NULL, &a, 0, NULL, NULL), CG_EINVAL, "n >= 1 inputs");
  BAD_S(cg_gradcheck(returns_null, NULL, &a, 1, &(cg_gradcheck_opts){.order = 3}, NULL), CG_EINVAL,
        "cg_gradcheck: order 3 (1 or 2)");
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_end(tape);
  BAD_S(cg_tape_gradient(tape, a, &a, -1, out, NULL), CG_EINVAL, "sources and out must hold n = -1");
  cg_tape_free(tape);

  BAD_T(cg_dense_layer("x", -1, 4, CG_ACT_NONE, 1), CG_EINVAL, "cg_dense_layer: in and out must be positive, got -1 and 4");
  BAD_T(cg_dense_layer("x", two32, two32, CG_ACT_NONE, 1), CG_ENOMEM, "too many elements");
  BAD_T(cg_dense_layer("x", 3, 4, (cg_activation)9, 1), CG_EINVAL, "cg_dense_layer");
  BAD_T(cg_conv2d_layer("c", 2, 3, 0, 3, NULL, CG_PAD_SAME, CG_ACT_NONE, 1), CG_EINVAL, "cg_conv2d_layer");
  BAD_T(cg_conv2d_layer("c", 2, -3, 3, 3, NULL, CG_PAD_SAME, CG_ACT_NONE, 1), CG_EINVAL, "cg_conv2d_layer");
  BAD_T(cg_conv2d_layer("c", 2, 3, 3, 3, (int[]){0, 1}, CG_PAD_SAME, CG_ACT_NONE, 1), CG_EINVAL, "cg_conv2d_layer");
  BAD_T(cg_max_pool2d_layer((int[]){-2, 2}, NULL, CG_PAD_VALID), CG_EINVAL, "ksize");
  BAD_T(cg_avg_pool2d_layer((int[]){2, 2}, NULL, (cg_padding)-1), CG_EINVAL, "padding");
  BAD_T(cg_dropout_layer(1.0, 1), CG_EINVAL, "cg_dropout_layer");
  BAD_T(cg_dropout_layer(NAN, 1), CG_EINVAL, "cg_dropout_layer");
  BAD_T(cg_batch_norm_layer("bn", -4, 0.9, 1e-3), CG_EINVAL, "cg_batch_norm_layer");
  BAD_T(cg_batch_norm_layer("bn", 4, 1.5, 1e-3), CG_EINVAL, "cg_batch_norm_layer");
  BAD_T(cg_batch_norm_layer("bn", 4, 0.9, -1), CG_EINVAL, "cg_batch_norm_layer");
  BAD_N(cg_layer_variables(dense, 1, (cg_var *[2]){NULL}, -1), -1, CG_EINVAL, "max is negative");
  BAD_T(cg_loss_huber(a, a, -1, CG_REDUCE_MEAN), CG_EINVAL, "cg_loss_huber");
  BAD_T(cg_loss_mse(a, a, (cg_reduction)5), CG_EINVAL, "cg_loss_mse: unknown reduction 5");
  BAD_T(cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_SGD, .lr = -1}), CG_EINVAL,
        "SGD: learning rate must be >= 0 and finite, got -1");
  BAD_T(cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_ADAM, .beta1 = 1}), CG_EINVAL, "Adam: beta1 must be in [0, 1)");
  BAD_T(cg_optimizer_new(&(cg_optimizer_config){.kind = (cg_optimizer_kind)99}), CG_EINVAL,
        "cg_optimizer_new: unknown optimizer kind 99");
  BAD_T(cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_SGD, .nesterov = 1}), CG_EINVAL, "Nesterov");
  BAD_T(cg_optimizer_new(&(cg_optimizer_config){.kind = CG_OPT_SGD,
                                                .schedule = {.kind = CG_LR_STEP, .step_size = -1}}),
        CG_EINVAL, "SGD");
  BAD_S(cg_optimizer_set_state(adam, -1, NULL, NULL, 0), CG_EINVAL, "Adam: iterations is -1, must be >= 0");
  BAD_S(cg_optimizer_set_state(adam, 0, NULL, NULL, -1), CG_EINVAL, "Adam: n is -1");
  BAD_S(cg_optimizer_apply_gradients(adam, &a, &var, -1), CG_EINVAL, "Adam: n is -1, must be >= 0");
  BAD_S(cg_clip_by_global_norm(&a, -1, 1, out, NULL), CG_EINVAL, "n is -1");
  BAD_S(cg_clip_by_global_norm(&a, 1, 0, out, NULL), CG_EINVAL, "clip_norm must be > 0 and finite, got 0");
  BAD_S(cg_clip_by_global_norm(&a, 1, NAN, out, NULL), CG_EINVAL, "clip_norm must be > 0 and finite");

  cg_dataset d = {img, cg_zeros(CG_I64, 1, (int64_t[]){1})}, first, rest;
  BAD_S(cg_dataset_split(&d, -1, &first, &rest), CG_ERANGE, "holdout -1 is outside 0..1");
  BAD_S(cg_dataset_split(&d, 2, &first, &rest), CG_ERANGE, "holdout 2 is outside 0..1");
  BAD_T(cg_batcher_new(&d, 0, 1, 1), CG_EINVAL, "cg_batcher_new: batch size 0 is not positive");
  cg_batcher *b = cg_batcher_new(&d, big, 1, 1);
  assert_non_null(b);
  QUIET(cg_batcher_num_batches(b), 1);
  BAD_S(cg_batcher_start_epoch(b, -1), CG_ERANGE, "epoch -1 is negative");
  cg_tensor *bx, *by;
  assert_int_equal(cg_batcher_next(b, &bx, &by), 1);
  assert_tensor(bx, CG_F32, 4, cg_tensor_shape(img), NULL, 0);
  assert_int_equal(cg_batcher_next(b, &bx, &by), 0);
  cg_batcher_free(b);
  QUIET(cg_tensor_to_f64(a, (double[1]){0}, -5), 0);

  assert_still_works();
}

/* ======================================================================================
 * Class 5: bad axes and permutations
 * ==================================================================================== */

static void bad_axes(void **state)
{
  cg_tensor *a = f32_23, *out[3];
  BAD_T(cg_sum(a, (int[]){2}, 1, 0), CG_ERANGE, "Sum: axis 2 is out of range");
  BAD_T(cg_mean(a, (int[]){-3}, 1, 1), CG_ERANGE, "Mean: axis -3 is out of range");
  BAD_T(cg_max(a, (int[]){0, 0}, 2, 0), CG_EINVAL, "Max");
  BAD_T(cg_min(a, (int[]){0, -2}, 2, 0), CG_EINVAL, "Min");
  BAD_T(cg_prod(a, (int[]){INT32_MIN}, 1, 0), CG_ERANGE, "Prod");
  BAD_T(cg_logsumexp(a, (int[17]){0}, 17, 0), CG_EINVAL, "LogSumExp");
  BAD_T(cg_sum(a, (int[]){0}, -1, 0), CG_EINVAL, "Sum");
  BAD_T(cg_argmax(a, 2), CG_ERANGE, "ArgMax: axis 2 is out of range");
  BAD_T(cg_argmin(f32_s, 0), CG_ERANGE, "ArgMin");
  BAD_T(cg_expand_dims(a, 3), CG_ERANGE, "ExpandDims: axis 3 is outside [-3, 2] for input [2,3]");
  BAD_T(cg_expand_dims(a, -4), CG_ERANGE, "ExpandDims: axis -4");
  BAD_T(cg_squeeze(a, (int[]){5}, 1), CG_ERANGE, "Squeeze");
  BAD_T(cg_squeeze(a, (int[]){0}, 1), CG_ESHAPE, "Squeeze: axis 0 of [2,3] has size 2, not 1");
  BAD_T(cg_transpose(a, (int[]){0}, 1), CG_EINVAL, "Transpose: perm [0] has 1 entries for input [2,3] of rank 2");
  BAD_T(cg_transpose(a, (int[]){1, 1}, 2), CG_EINVAL, "Transpose: perm [1,1] repeats axis 1");
  BAD_T(cg_transpose(a, (int[]){0, 2}, 2), CG_ERANGE, "Transpose: perm [0,2]: entry 2 is out of range for rank 2");
  BAD_T(cg_transpose(a, (int[]){-1, 0}, 2), CG_ERANGE, "Transpose: perm [-1,0]: entry -1");
  BAD_T(cg_transpose(a, (int[17]){0}, 17), CG_EINVAL, "Transpose: perm has 17 entries");
  BAD_T(cg_concat(((cg_tensor *[]){a, a}), 2, 2), CG_ERANGE, "Concat");
  BAD_T(cg_concat(((cg_tensor *[]){f32_s, f32_s}), 2, 0), CG_ERANGE, "Concat");
  BAD_S(cg_split(a, 2, -3, out), CG_ERANGE, "Split");
  BAD_T(cg_gather(a, i64_2, 2), CG_ERANGE, "Gather: axis 2 is out of range");
  BAD_T(cg_gather(f32_s, i64_2, 0), CG_ERANGE, "Gather");
  BAD_T(cg_softmax(f32_s), CG_ESHAPE, "Softmax");
  BAD_T(cg_log_softmax(f32_s), CG_ESHAPE, "LogSoftmax");
  QUIET(cg_tensor_dim(a, 2), -1);
  QUIET(cg_tensor_dim(a, -3), -1);
  QUIET(cg_tensor_dim(a, INT32_MIN), -1);

  /* the same through cg_call with attributes written by hand */
  cg_attrs at = {0};
  cg_attrs_set_ints(&at, "perm", (int64_t[]){INT64_MAX, 0}, 2);
  BAD_T(cg_call("Transpose", &a, 1, &at), CG_ERANGE, "Transpose: perm [9223372036854775807,0]");
  cg_attrs ax = {0};
  cg_attrs_set_int(&ax, "axis", INT64_MIN);
  BAD_T(cg_call("ExpandDims", &a, 1, &ax), CG_ERANGE, "ExpandDims: axis -9223372036854775808");
  BAD_T(cg_call("ArgMax", &a, 1, &ax), CG_ERANGE, "ArgMax");
  cg_attrs fl = {0};
  cg_attrs_set_float(&fl, "axis", 1e300);
  BAD_T(cg_call("Gather", ((cg_tensor *[]){a, i64_2}), 2, &fl), CG_ERANGE, "Gather");
  cg_attrs_set_float(&fl, "axis", NAN);
  assert_non_null(cg_call("Gather", ((cg_tensor *[]){a, cg_zeros(CG_I64, 1, (int64_t[]){1})}), 2, &fl));
  n_cases++; /* a NaN axis reads as 0, like any float attribute read as an int */

  assert_still_works();
}

/* ======================================================================================
 * Class 6: indices out of range (the data decides, so the kernels check)
 * ==================================================================================== */

static void indices_out_of_range(void **state)
{
  cg_tensor *a = f32_23;
  int64_t s1[1] = {1}, s2[1] = {2}, z2[2] = {0, 0};
  cg_tensor *i64_3 = cg_tensor_from(CG_I64, 1, s1, (int64_t[]){3});
  cg_tensor *i64_neg = cg_tensor_from(CG_I64, 1, s1, (int64_t[]){-1});
  cg_tensor *i32_min = cg_tensor_from(CG_I32, 1, s1, (int32_t[]){INT32_MIN});
  cg_tensor *i64_max = cg_tensor_from(CG_I64, 1, s1, (int64_t[]){INT64_MAX});
  cg_tensor *no_rows = cg_zeros(CG_F32, 2, (int64_t[]){0, 3}), *i32_0 = cg_zeros(CG_I32, 1, s1);
  cg_tensor *ids_02 = cg_tensor_from(CG_I64, 1, s2, (int64_t[]){0, 2});
  cg_tensor *ids_m10 = cg_tensor_from(CG_I32, 1, s2, (int32_t[]){-1, 0});
  cg_tensor *labels_03 = cg_tensor_from(CG_I64, 1, s2, (int64_t[]){0, 3});
  cg_tensor *labels_min = cg_tensor_from(CG_I64, 1, s2, (int64_t[]){INT64_MIN, 0});

  BAD_T(cg_gather(a, i64_3, 1), CG_ERANGE, "Gather: index 3 is out of range [0, 3)");
  BAD_T(cg_gather(a, i64_3, 0), CG_ERANGE, "Gather: index 3 is out of range [0, 2)");
  BAD_T(cg_gather(a, i64_neg, 0), CG_ERANGE, "Gather: index -1 is out of range [0, 2)");
  BAD_T(cg_gather(a, i32_min, -1), CG_ERANGE, "Gather: index -2147483648 is out of range [0, 3)");
  BAD_T(cg_gather(a, i64_max, 1), CG_ERANGE, "Gather: index 9223372036854775807");
  BAD_T(cg_gather(no_rows, i32_0, 0), CG_ERANGE,
        "Gather: index 0 is out of range [0, 0)");
  BAD_T(cg_unsorted_segment_sum(a, ids_02, 2), CG_ERANGE,
        "UnsortedSegmentSum: segment id 2 is out of range [0, 2)");
  BAD_T(cg_unsorted_segment_sum(a, ids_m10, 2), CG_ERANGE,
        "UnsortedSegmentSum: segment id -1");
  BAD_T(cg_slice(a, (int64_t[]){-1, 0}, (int64_t[]){1, 1}), CG_ERANGE, "Slice");
  BAD_T(cg_slice(a, (int64_t[]){0, 4}, (int64_t[]){1, 0}), CG_ERANGE, "Slice");
  BAD_T(cg_slice(a, z2, (int64_t[]){3, 1}), CG_ERANGE, "Slice");
  BAD_T(cg_slice(a, z2, (int64_t[]){1, -2}), CG_EINVAL,
        "Slice: size -2 for axis 1 of [2,3] is negative (only -1, meaning to the end, may be)");
  BAD_T(cg_slice(a, (int64_t[]){1, 1}, (int64_t[]){INT64_MAX, 1}), CG_ERANGE, "Slice");
  BAD_T(cg_slice(a, (int64_t[]){INT64_MAX, 0}, (int64_t[]){-1, -1}), CG_ERANGE, "Slice");
  cg_tensor *logits = cg_zeros(CG_F32, 2, (int64_t[]){2, 3});
  BAD_T(cg_sparse_softmax_cross_entropy_with_logits(labels_03, logits),
        CG_ERANGE, "SparseSoftmaxCrossEntropyWithLogits");
  BAD_T(cg_sparse_softmax_cross_entropy_with_logits(ids_m10, logits),
        CG_ERANGE, "SparseSoftmaxCrossEntropyWithLogits");
  BAD_T(cg_loss_sparse_softmax_xent(labels_min, logits,
                                    CG_REDUCE_MEAN), CG_ERANGE, "SparseSoftmaxCrossEntropyWithLogits");
  cg_tensor *labels_70 = cg_tensor_from(CG_I64, 1, s2, (int64_t[]){7, 0});
  QUIET(cg_accuracy(logits, labels_70), 0.5); /* an id out of range is a miss */
  BAD_N(isnan(cg_tensor_get(a, 6)), 1, CG_ERANGE, "cg_tensor_get: index 6 outside a tensor of 6 elements");
  BAD_N(isnan(cg_tensor_get(a, -1)), 1, CG_ERANGE, "cg_tensor_get: index -1");
  BAD_T(cg_optimizer_slot(adam, 99), CG_ERANGE, "cg_optimizer_slot: slot 99 is out of range [0, 0)");
  BAD_T(cg_optimizer_slot_name(adam, -1), CG_ERANGE, "slot -1 is out of range");
  QUIET(cg_op_at(-1) == NULL, 1);
  QUIET(cg_op_at(1 << 30) == NULL, 1);

  /* OneHot follows TensorFlow: an index outside [0, depth) gives a row of `off` values */
  cg_tensor *oh = cg_one_hot(cg_tensor_from(CG_I64, 1, (int64_t[]){3}, (int64_t[]){-1, 1, 5}), 2, 1, 0, CG_F32);
  assert_tensor(oh, CG_F32, 2, ((int64_t[]){3, 2}), ((double[]){0, 0, 0, 1, 0, 0}), 0);
  n_cases++;
  /* a backward through Gather with a bad index never runs: the forward refused it */
  cg_tape *tape = cg_tape_begin(0);
  cg_tape_watch(tape, a);
  BAD_T(cg_gather(a, i64_3, 1), CG_ERANGE, "Gather: index 3");
  assert_int_equal(cg_tape_num_records(tape), 0);
  cg_tape_free(tape);

  assert_still_works();
}


int main(void)
{
  const struct CMUnitTest tests[] = {
      class_test(null_pointers),          class_test(wrong_dtypes),
      class_test(shapes_that_do_not_fit), class_test(negative_and_huge_sizes),
      class_test(bad_axes),               class_test(indices_out_of_range),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  printf("bad-argument cases checked: %d\n", n_cases);
  return failed;
}

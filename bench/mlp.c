/* mlp.c - the 784-256-256-10 network of W2, W4 and W5 (the MLP of `cgrad train`, built
 * from Dense layers), its Adam training step on the mean softmax cross-entropy, and its
 * test-set accuracy. */
#include "bench.h"
#include "io/dataset.h"

cg_status bench_mlp_init(bench_mlp *m, cg_activation act, uint64_t seed)
{
  *m = (bench_mlp){0};
  m->layers[0] = cg_dense_layer("dense_1", 784, 256, act, seed + 1);
  m->layers[1] = cg_dense_layer("dense_2", 256, 256, act, seed + 2);
  m->layers[2] = cg_dense_layer("logits", 256, 10, CG_ACT_NONE, seed + 3);
  cg_optimizer_config adam = {.kind = CG_OPT_ADAM, .lr = 1e-3};
  m->opt = cg_optimizer_new(&adam);
  if (!m->layers[0] || !m->layers[1] || !m->layers[2] || !m->opt) {
    cg_status st = cg_last_status();
    bench_mlp_free(m);
    return st;
  }
  for (int i = 0; i < 3; i++) cg_layer_variables(m->layers[i], 1, m->vars + 2 * i, 2);
  return CG_OK;
}

void bench_mlp_free(bench_mlp *m)
{
  for (int i = 0; i < 3; i++) cg_layer_free(m->layers[i]);
  cg_optimizer_free(m->opt);
  *m = (bench_mlp){0};
}

cg_tensor *bench_mlp_logits(bench_mlp *m, cg_tensor *images,
                            cg_tensor *(*after_first)(cg_tensor *h))
{
  const int64_t flat[2] = {-1, 784};
  cg_tensor *h = cg_layer_forward(m->layers[0], cg_reshape(images, 2, flat), 1);
  if (after_first && h) h = after_first(h);
  return cg_layer_forward(m->layers[2], cg_layer_forward(m->layers[1], h, 1), 1);
}

cg_status bench_mlp_step(bench_mlp *m, cg_tensor *images, cg_tensor *labels,
                         cg_tensor *(*after_first)(cg_tensor *h), double *loss)
{
  cg_scope scope = cg_scope_begin();
  cg_tape *tape = cg_tape_begin(0);
  cg_tensor *logits = bench_mlp_logits(m, images, after_first);
  cg_tensor *l = logits ? cg_loss_sparse_softmax_xent(labels, logits, CG_REDUCE_MEAN) : NULL;
  cg_tape_end(tape);
  cg_tensor *sources[6], *grads[6];
  for (int i = 0; i < 6; i++) sources[i] = cg_var_value(m->vars[i]);
  cg_status st = l ? cg_tape_gradient(tape, l, sources, 6, grads, NULL) : cg_last_status();
  if (st == CG_OK) st = cg_optimizer_apply_gradients(m->opt, grads, m->vars, 6);
  if (st == CG_OK && loss) *loss = cg_item(l);
  cg_tape_free(tape);
  cg_scope_end(scope);
  return st;
}

double bench_mlp_accuracy(bench_mlp *m, const char *data_dir)
{
  cg_batcher *b = cg__mnist_batcher_new(data_dir, 0, 1000, 0, 0);
  if (!b) return -1;
  double correct = 0, seen = 0;
  for (;;) {
    cg_scope scope = cg_scope_begin();
    cg_tensor *x, *y;
    int more = cg_batcher_next(b, &x, &y);
    double acc = more > 0 ? cg_accuracy(bench_mlp_logits(m, x, NULL), y) : 0;
    double count = more > 0 ? (double)cg_tensor_size(y) : 0;
    cg_scope_end(scope);
    if (more <= 0 || acc < 0) {
      if (more < 0 || acc < 0) seen = 0;
      break;
    }
    correct += acc * count;
    seen += count;
  }
  cg_batcher_free(b);
  return seen > 0 ? correct / seen : -1;
}

/* test_graph_io.c - graphs saved and loaded by name (cg_graph_save, cg_graph_load): an MLP
 * graph with a gradient override runs and differentiates bitwise like the original, saving
 * what was loaded gives the same text, constants of every dtype survive exactly (NaN bits,
 * -0, infinities), names are kept, and corrupt files (every truncation, garbage lines,
 * unknown ops and gradients, bad references, out-of-range numbers, random byte flips) are
 * refused with the line number, leaking nothing. */
#include "util.h"
#include "core/internal.h"
#include "graph/graph.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *path_for(const char *name)
{
  static char buf[4][256];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, 256, "/tmp/cgrad_graph_io_%ld_%s", (long)getpid(), name);
  return p;
}

static char *read_text(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = 0;
  fclose(f);
  if (len) *len = (size_t)n;
  return s;
}

static void write_text(const char *path, const char *s, size_t n)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(s, 1, n, f), n);
  fclose(f);
}

static void assert_bitwise(cg_tensor *a, cg_tensor *b)
{
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(cg_tensor_dtype(a), cg_tensor_dtype(b));
  assert_int_equal(cg_tensor_ndim(a), cg_tensor_ndim(b));
  assert_int_equal(cg_tensor_size(a), cg_tensor_size(b));
  assert_memory_equal(cg_tensor_data(a), cg_tensor_data(b),
                      (size_t)cg_tensor_size(a) * cg_dtype_size(cg_tensor_dtype(a)));
}

/* --- the MLP graph --------------------------------------------------------------------------- */

/* An override for Tanh: half the true gradient, so a test can tell which one ran. */
static cg_status half_tanh(const cg_node *op, cg_tensor *const *dy, cg_tensor **dx, void *user)
{
  cg_tensor *y = cg_node_output(op, 0);
  dx[0] = cg_mul(cg_mul(dy[0], cg_sub(cg_scalar_like(y, 1), cg_square(y))), cg_scalar_like(y, 0.5));
  return cg_status_of(dx[0]);
}

static void register_rules(void)
{
  if (!cg_has_gradient("HalfTanh")) cg_register_gradient("HalfTanh", half_tanh, NULL, 0);
}

/* x [-1,8] -> tanh(x w1 + b1) (Tanh overridden when override) -> relu(h w2 + b2) [-1,4],
 * loss = mean sparse softmax cross-entropy against labels; w1, b1 fed, w2, b2 constants. */
static cg_graph *build_mlp(int override)
{
  register_rules();
  int64_t sx[2] = {-1, 8}, sl[1] = {-1}, sw1[2] = {8, 16}, sb1[1] = {16}, sw2[2] = {16, 4}, sb2[1] = {4};
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F32, 2, sx, "x");
  cg_tensor *labels = cg_placeholder(CG_I64, 1, sl, "labels");
  cg_tensor *w1 = cg_placeholder(CG_F32, 2, sw1, "w1");
  cg_tensor *b1 = cg_placeholder(CG_F32, 1, sb1, "b1");
  cg_tensor *w2 = cg_random_normal(CG_F32, 2, sw2, 0, 0.5, 11); /* concrete: constants */
  cg_tensor *b2 = cg_random_uniform(CG_F32, 1, sb2, -0.1, 0.1, 12);
  if (override) cg_gradient_override_push("Tanh", "HalfTanh");
  cg_tensor *h = cg_tanh(cg_bias_add(cg_matmul(x, w1), b1));
  if (override) cg_gradient_override_pop();
  cg_tensor *logits = cg_relu(cg_add(cg_matmul_t(h, w2, 0, 0), b2));
  cg_tensor *loss = cg_mean(cg_sparse_softmax_cross_entropy_with_logits(labels, logits), NULL, 0, 0);
  assert_int_equal(cg_tensor_set_name(logits, "logits"), CG_OK);
  assert_int_equal(cg_tensor_set_name(loss, "loss"), CG_OK);
  cg_graph_exit(g);
  return g;
}

/* The tensors of g by name, gradients of the loss added to g. */
typedef struct {
  cg_tensor *x, *labels, *w1, *b1, *logits, *loss, *grads[3];
} mlp_tensors;

static mlp_tensors find_mlp(cg_graph *g, int add_gradients)
{
  mlp_tensors t;
  t.x = cg_graph_tensor(g, "x");
  t.labels = cg_graph_tensor(g, "labels");
  t.w1 = cg_graph_tensor(g, "w1");
  t.b1 = cg_graph_tensor(g, "b1");
  t.logits = cg_graph_tensor(g, "logits");
  t.loss = cg_graph_tensor(g, "loss");
  assert_true(t.x && t.labels && t.w1 && t.b1 && t.logits && t.loss);
  if (add_gradients) {
    cg_tensor *src[3] = {t.x, t.w1, t.b1};
    assert_int_equal(cg_gradients(&t.loss, 1, src, 3, NULL, t.grads, NULL), CG_OK);
  }
  return t;
}

/* Runs logits, loss and the three gradients with the same feeds. */
static void run_mlp(cg_graph *g, const mlp_tensors *t, cg_tensor **out)
{
  int64_t sx[2] = {5, 8}, sw1[2] = {8, 16}, sb1[1] = {16};
  int64_t labels[5] = {0, 3, 1, 2, 3}, sl[1] = {5};
  cg_feed feeds[4] = {{t->x, cg_random_normal(CG_F32, 2, sx, 0, 1, 1)},
                      {t->labels, cg_tensor_from(CG_I64, 1, sl, labels)},
                      {t->w1, cg_random_normal(CG_F32, 2, sw1, 0, 0.5, 2)},
                      {t->b1, cg_random_uniform(CG_F32, 1, sb1, -0.1, 0.1, 3)}};
  cg_tensor *fetch[5] = {t->logits, t->loss, t->grads[0], t->grads[1], t->grads[2]};
  assert_int_equal(cg_graph_run(g, feeds, 4, fetch, 5, out), CG_OK);
}

static void mlp_runs_and_differentiates_like_the_original(void **state)
{
  char *a = path_for("mlp_a"), *b = path_for("mlp_b");
  cg_graph *g = build_mlp(1);
  assert_int_equal(cg_graph_save(g, a), CG_OK);
  cg_graph *h = cg_graph_load(a);
  if (!h) fail_msg("load: %s", cg_last_error());
  assert_int_equal(h->n_nodes, g->n_nodes);
  assert_int_equal(h->n_placeholders, g->n_placeholders);

  /* the override was reapplied where it was in force, and only there */
  int tanh_nodes = 0;
  for (size_t k = 0; k < h->n_nodes; k++)
    if (strcmp(h->nodes[k]->type, "Tanh") == 0) {
      assert_string_equal(h->nodes[k]->grad_name, "HalfTanh");
      tanh_nodes++;
    } else if (h->nodes[k]->grad_name) {
      assert_string_equal(h->nodes[k]->grad_name, h->nodes[k]->type);
    }
  assert_int_equal(tanh_nodes, 1);

  mlp_tensors tg = find_mlp(g, 1), th = find_mlp(h, 1);
  cg_tensor *og[5], *oh[5];
  run_mlp(g, &tg, og);
  run_mlp(h, &th, oh);
  for (int i = 0; i < 5; i++) assert_bitwise(og[i], oh[i]);

  /* and the override matters: without it the weight gradient differs */
  cg_graph *plain = build_mlp(0);
  mlp_tensors tp = find_mlp(plain, 1);
  cg_tensor *op[5];
  run_mlp(plain, &tp, op);
  assert_bitwise(og[1], op[1]); /* same loss */
  assert_true(memcmp(cg_tensor_data(og[3]), cg_tensor_data(op[3]), 16 * 4) != 0);
  cg_graph_free(plain);

  /* saving what was loaded gives the same text */
  cg_graph *h0 = cg_graph_load(a);
  assert_non_null(h0);
  assert_int_equal(cg_graph_save(h0, b), CG_OK);
  char *ta = read_text(a, NULL), *tb = read_text(b, NULL);
  assert_string_equal(ta, tb);
  free(ta);
  free(tb);
  cg_graph_free(h0);

  /* a graph holding its gradient nodes: saved, loaded, run by name */
  assert_int_equal(cg_tensor_set_name(tg.grads[1], "dloss/dw1"), CG_OK);
  assert_int_equal(cg_graph_save(g, a), CG_OK);
  cg_graph *k = cg_graph_load(a);
  assert_non_null(k);
  assert_int_equal(k->n_nodes, g->n_nodes);
  size_t made_by = 0;
  for (size_t i = 0; i < k->n_nodes; i++) made_by += k->nodes[i]->made_by != NULL;
  assert_true(made_by > 10); /* the gradient nodes remember which gradient built them */
  mlp_tensors tk = find_mlp(k, 0);
  tk.grads[0] = tk.grads[2] = tk.logits;
  tk.grads[1] = cg_graph_tensor(k, "dloss/dw1");
  cg_tensor *ok[5];
  run_mlp(k, &tk, ok);
  assert_bitwise(ok[3], og[3]);
  assert_int_equal(cg_graph_save(k, b), CG_OK);
  ta = read_text(a, NULL);
  tb = read_text(b, NULL);
  assert_string_equal(ta, tb);
  assert_non_null(strstr(ta, "  grad \"HalfTanh\"\n"));
  assert_non_null(strstr(ta, "  by \"HalfTanh\"\n"));
  free(ta);
  free(tb);
  cg_graph_free(k);
  cg_graph_free(h);
  cg_graph_free(g);
  remove(a);
  remove(b);
}

/* --- constants and names ----------------------------------------------------------------------- */

static void constants_of_every_dtype_survive_exactly(void **state)
{
  char *a = path_for("consts");
  float f32[6] = {1.5f, -0.0f, INFINITY, -INFINITY, 1e-45f, 3.4028235e38f};
  uint32_t nan_bits = 0x7fc01234u;
  memcpy(&f32[1], &nan_bits, 4); /* a NaN with a payload */
  double f64[5] = {0.1, -0.0, 4.9e-324, -INFINITY, NAN};
  int32_t i32[3] = {INT32_MIN, 0, INT32_MAX};
  int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
  uint8_t b[3] = {1, 0, 1};
  int64_t s6[1] = {6}, s5[1] = {5}, s3[1] = {3}, s13[2] = {1, 3};
  cg_tensor *c[6] = {cg_tensor_from(CG_F32, 1, s6, f32), cg_tensor_from(CG_F64, 1, s5, f64),
                     cg_tensor_from(CG_I32, 1, s3, i32), cg_tensor_from(CG_I64, 1, s3, i64),
                     cg_tensor_from(CG_BOOL, 2, s13, b), cg_scalar(CG_F64, -2.75)};
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  for (int i = 0; i < 6; i++) assert_non_null(cg_identity(c[i]));
  assert_non_null(cg_add(c[5], c[5])); /* one constant, used twice: saved once */
  cg_graph_exit(g);
  assert_int_equal(cg_graph_save(g, a), CG_OK);
  char *text = read_text(a, NULL);
  assert_non_null(strstr(text, "nan:7fc01234"));
  assert_null(strstr(text, "constant 6"));
  free(text);
  cg_graph *h = cg_graph_load(a);
  if (!h) fail_msg("load: %s", cg_last_error());
  for (int i = 0; i < 6; i++) assert_bitwise(h->nodes[i]->in[0], c[i]);
  assert_ptr_equal(h->nodes[6]->in[0], h->nodes[6]->in[1]);
  cg_graph_free(h);
  cg_graph_free(g);
  remove(a);
}

static void names_are_kept_and_checked(void **state)
{
  char *a = path_for("names");
  int64_t s2[1] = {2};
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F64, 1, s2, "input image %1 \"q\"");
  cg_tensor *y = cg_exp(x), *z = cg_neg(y);
  cg_graph_exit(g);
  assert_int_equal(cg_tensor_set_name(y, "e^x"), CG_OK);
  assert_int_equal(cg_tensor_set_name(y, "e^x"), CG_OK); /* again: the same tensor */
  assert_int_equal(cg_tensor_set_name(z, "e^x"), CG_EEXIST);
  assert_error(CG_EEXIST, "already called 'e^x'");
  assert_int_equal(cg_tensor_set_name(z, ""), CG_EINVAL);
  assert_error(CG_EINVAL, "1 to 255 bytes");
  assert_int_equal(cg_tensor_set_name(cg_scalar(CG_F64, 1), "c"), CG_EINVAL);
  assert_error(CG_EINVAL, "only graph (symbolic) tensors");
  assert_null(cg_graph_tensor(g, "nothing"));
  assert_error(CG_ENOTFOUND, "no tensor called 'nothing'");
  assert_ptr_equal(cg_graph_tensor(g, "input image %1 \"q\""), x);
  assert_int_equal(cg_graph_save(g, a), CG_OK);
  cg_graph *h = cg_graph_load(a);
  assert_non_null(h);
  cg_tensor *hx = cg_graph_tensor(h, "input image %1 \"q\""), *hy = cg_graph_tensor(h, "e^x");
  assert_non_null(hx);
  assert_non_null(hy);
  cg_feed feed = {hx, cgt_f64(1, s2, (double[]){0, 1})};
  cg_tensor *v;
  assert_int_equal(cg_graph_run(h, &feed, 1, &hy, 1, &v), CG_OK);
  assert_tensor(v, CG_F64, 1, s2, ((double[]){1, exp(1)}), 0);
  cg_graph_free(h);
  cg_graph_free(g);
  remove(a);
}

/* --- what cannot be saved ------------------------------------------------------------------------- */

static cg_status id_fwd(cg_ctx *ctx, cg_tensor *const *x, cg_tensor **y)
{
  y[0] = cg_identity(x[0]);
  return cg_status_of(y[0]);
}
static cg_status id_bwd(cg_ctx *ctx, cg_tensor *const *dy, cg_tensor **dx, cg_tensor **dv)
{
  dx[0] = cg_identity(dy[0]);
  return cg_status_of(dx[0]);
}

static cg_status negate(cg_tensor *const *x, int nx, cg_tensor **y, int ny, void *user)
{
  y[0] = cg_neg(x[0]);
  return cg_status_of(y[0]);
}

static cg_status no_grad_infer(cg_node *n) { return cg_infer_same_as_input(n, 0); }
static cg_status no_grad_run(cg_node *n)
{
  cg_tensor *x = cg_node_input(n, 0), *y = cg_node_output(n, 0);
  memcpy(cg_tensor_data(y), cg_tensor_data(x), (size_t)cg_tensor_size(x) * cg_dtype_size(cg_tensor_dtype(x)));
  return CG_OK;
}

static void refusals_name_the_node(void **state)
{
  char *a = path_for("refused");
  remove(a);
  int64_t s2[1] = {2};
  cg_custom_def def = {"MyIdentity", 1, 1, id_fwd, id_bwd, NULL};
  cg_graph *g = cg_graph_new();
  cg_graph_enter(g);
  cg_tensor *x = cg_placeholder(CG_F64, 1, s2, "x"), *y;
  cg_tensor *e = cg_exp(x);
  assert_int_equal(cg_custom_gradient(&def, &e, &y), CG_OK);
  cg_graph_exit(g);
  assert_int_equal(cg_graph_save(g, a), CG_EINVAL);
  assert_error(CG_EINVAL, "node 2 (MyIdentity) is a custom gradient");
  assert_int_equal(access(a, F_OK), -1); /* nothing written */
  cg_graph_free(g);

  cg_var *v = cg_var_new("weights", cg_ones(CG_F64, 1, s2), 1);
  g = cg_graph_new();
  cg_graph_enter(g);
  assert_non_null(cg_mul(cg_var_read(v), cg_var_read(v)));
  cg_graph_exit(g);
  assert_int_equal(cg_graph_save(g, a), CG_EINVAL);
  assert_error(CG_EINVAL, "node 0 (ReadVariable) reads a variable");
  cg_graph_free(g);
  cg_var_free(v);

  /* a traced function's graph holds plain ops (calls inside a graph are inlined) */
  cg_tensor *ex = cgt_f64(1, s2, (double[]){1, 2});
  cg_function *f = cg_function_trace("negate", negate, NULL, &ex, 1, 1);
  assert_non_null(f);
  assert_int_equal(cg_graph_save(cg_function_graph(f, 0), a), CG_OK);
  cg_graph *traced = cg_graph_load(a);
  assert_non_null(traced);
  assert_string_equal(traced->nodes[0]->type, "Neg");
  cg_graph_free(traced);
  cg_function_free(f);
  remove(a);

  /* an op registered without a gradient: saved as "grad -", loads, and still says so */
  cg_op_def nog = {.name = "IoNoGradCopy", .n_inputs = 1, .infer = no_grad_infer, .run = no_grad_run};
  if (!cg_find_op("IoNoGradCopy")) assert_int_equal(cg_register_op(&nog, 0), CG_OK);
  cg_clear_error();
  g = cg_graph_new();
  cg_graph_enter(g);
  x = cg_placeholder(CG_F64, 1, s2, "x");
  y = cg_call("IoNoGradCopy", &x, 1, NULL);
  cg_graph_exit(g);
  assert_int_equal(cg_graph_save(g, a), CG_OK);
  char *text = read_text(a, NULL);
  assert_non_null(strstr(text, "node 0 \"IoNoGradCopy\"\n  grad -\n"));
  free(text);
  cg_graph *h = cg_graph_load(a);
  assert_non_null(h);
  cg_tensor *dx, *hy = h->nodes[0]->out[0], *hx = cg_graph_tensor(h, "x");
  assert_int_equal(cg_gradients(&hy, 1, &hx, 1, NULL, &dx, NULL), CG_ENOGRAD);
  assert_error(CG_ENOGRAD, "IoNoGradCopy: no gradient is registered");
  cg_graph_free(h);
  cg_graph_free(g);
  remove(a);
}

/* --- corrupt files --------------------------------------------------------------------------------- */

/* Loading must fail with a message, leave no error-free NULL and leak no tensor. */
static void assert_refused(const char *path, const char *text, size_t n, const char *why)
{
  long live = cg__live_tensors();
  write_text(path, text, n);
  cg_graph *h = cg_graph_load(path);
  if (h) fail_msg("a corrupt file loaded (%s)", why);
  assert_int_not_equal(cg_last_status(), CG_OK);
  assert_non_null(strstr(cg_last_error(), "cg_graph_load: "));
  assert_int_equal(cg__live_tensors(), live);
  cg_clear_error();
}

static void expect_error(const char *path, const char *text, cg_status code, const char *substring)
{
  write_text(path, text, strlen(text));
  assert_null(cg_graph_load(path));
  assert_error(code, substring);
}

/* text with the first occurrence of from replaced by to */
static char *replaced(const char *text, const char *from, const char *to)
{
  const char *at = strstr(text, from);
  assert_non_null(at);
  size_t n = strlen(text) + strlen(to) + 1;
  char *s = malloc(n);
  snprintf(s, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  return s;
}

static void corrupt_files_are_refused_with_the_line(void **state)
{
  char *a = path_for("good"), *bad = path_for("bad");
  cg_graph *g = build_mlp(1);
  find_mlp(g, 1); /* with gradient nodes: every kind of line */
  assert_int_equal(cg_graph_save(g, a), CG_OK);
  cg_graph_free(g);
  size_t len;
  char *text = read_text(a, &len);

  /* every truncation at a line boundary, and in the middle of every line */
  int lines = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] != '\n') continue;
    lines++;
    if (i + 1 < len) assert_refused(bad, text, i + 1, "truncated at a line end");
    size_t start = i;
    while (start > 0 && text[start - 1] != '\n') start--;
    if (i - start > 1) assert_refused(bad, text, start + (i - start) / 2, "truncated mid-line");
  }
  assert_true(lines > 100);

  /* every line replaced by garbage */
  for (size_t i = 0, start = 0; i < len; i++) {
    if (text[i] != '\n') continue;
    size_t n = len + 16;
    char *s = malloc(n);
    int k = snprintf(s, n, "%.*sgarbage %%\n%s", (int)start, text, text + i + 1);
    assert_refused(bad, s, (size_t)k, "a line of garbage");
    free(s);
    start = i + 1;
  }

  /* named errors */
  char *s;
  expect_error(bad, s = replaced(text, "\"Tanh\"\n", "\"NoSuchOp\"\n"), CG_ENOTFOUND,
               "unknown op type 'NoSuchOp' (register it");
  free(s);
  expect_error(bad, s = replaced(text, "grad \"HalfTanh\"", "grad \"NoSuchGrad\""), CG_ENOTFOUND,
               "gradient 'NoSuchGrad' is not registered");
  free(s);
  int line = 1;
  for (const char *p = text; p < strstr(text, "  in p0 p2\n"); p++) line += *p == '\n';
  char want[96];
  snprintf(want, sizeof want, ":%d: input 1: 'n99:0' names no placeholder", line);
  expect_error(bad, s = replaced(text, "  in p0 p2\n", "  in p0 n99:0\n"), CG_EINVAL, want);
  free(s);
  expect_error(bad, s = replaced(text, "[-1,8]", "[-1,99999999999999999999]"), CG_EINVAL,
               ":3: expected 'placeholder");
  free(s);
  expect_error(bad, s = replaced(text, "f32 [16,4]", "f16 [16,4]"), CG_EINVAL, "expected 'constant");
  free(s);
  expect_error(bad, s = replaced(text, "  out f32 [-1,16]\n", "  out f32 [-1,17]\n"), CG_EINVAL,
               "output 0 is f32 [-1,16], the file says f32 [-1,17]");
  free(s);
  expect_error(bad, s = replaced(text, "cgrad-graph 1", "cgrad-graph 2"), CG_EINVAL, ":1: format version 2");
  free(s);
  expect_error(bad, s = replaced(text, "end\n", "end\nnode 99 \"Tanh\"\n"), CG_EINVAL, "text after 'end'");
  free(s);
  expect_error(bad, "cgrad-graph 1\noptions none\nconstant 0 f32 [1000000000]\n  values 0\nend\n",
               CG_EINVAL, ":3: constant 0 has 1000000000 elements, more than the rest of the file holds");
  expect_error(bad, "cgrad-graph 1\noptions none\nconstant 0 f32 [2]\n  values 0x1p+0 1e39\nend\n",
               CG_EINVAL, ":4: '1e39' is not a f32 value");
  expect_error(bad, "cgrad-graph 1\noptions none\nconstant 0 i32 [1]\n  values 2147483648\nend\n",
               CG_EINVAL, ":4: '2147483648' is not a i32 value");
  expect_error(bad, "cgrad-graph 1\noptions none\nnode 0 \"Tanh\"\n  grad -\n  in\n  out f32 []\nend\n",
               CG_EINVAL, ":3: node 0 (Tanh): Tanh: takes 1 inputs, got 0");
  expect_error(bad, "cgrad-graph 1\noptions none\nplaceholder 0 \"x\" f32 [-1,4611686018427387904,4]\nend\n",
               CG_EINVAL, ":3: placeholder 0: its shape has too many elements");
  expect_error(bad, "cgrad-graph 1\noptions none\nplaceholder 0 \"x\" f32 [2]\nnode 0 \"Tile\"\n"
                    "  grad \"Tile\"\n  in p0\n  attr \"multiples\" ints 4611686018427387904\n  out f32 [1]\nend\n",
               CG_EINVAL, ":4: node 0 (Tile): Tile: [2] tiled [4611686018427387904] overflows");
  expect_error(bad, "", CG_EINVAL, "ends where the header");
  remove(path_for("missing"));
  assert_null(cg_graph_load(path_for("missing")));
  assert_error(CG_EIO, "missing: cannot open the file");
  write_text(bad, "x\0y\n", 4);
  assert_null(cg_graph_load(bad));
  assert_error(CG_EINVAL, ":1: a NUL byte");

  /* random byte flips: refused with a message, or loaded and saved again */
  uint64_t r = 88172645463325252ull;
  for (int trial = 0; trial < 300; trial++) {
    s = malloc(len);
    memcpy(s, text, len);
    for (int f = 0; f < 1 + trial % 3; f++) {
      r ^= r << 13, r ^= r >> 7, r ^= r << 17;
      s[r % len] = (char)(r >> 32);
    }
    long live = cg__live_tensors();
    write_text(bad, s, len);
    cg_graph *h = cg_graph_load(bad);
    if (h) {
      assert_int_equal(cg_graph_save(h, path_for("resaved")), CG_OK);
      cg_graph_free(h);
    } else {
      assert_int_not_equal(cg_last_status(), CG_OK);
      assert_true(strlen(cg_last_error()) > 20);
      cg_clear_error();
    }
    assert_int_equal(cg__live_tensors(), live);
    free(s);
  }
  remove(path_for("resaved"));
  free(text);
  remove(a);
  remove(bad);
}

/* --- allocation failure -------------------------------------------------------------------------- */

static cg_status load_and_save(void *paths)
{
  char *const *p = paths;
  cg_graph *g = cg_graph_load(p[0]);
  if (!g) return cg_last_status();
  cg_status st = cg_graph_save(g, p[1]);
  cg_graph_free(g);
  return st;
}

static void every_allocation_of_load_and_save_fails_cleanly(void **state)
{
  char *paths[2] = {path_for("alloc_a"), path_for("alloc_b")};
  cg_graph *g = build_mlp(1);
  find_mlp(g, 1);
  assert_int_equal(cg_graph_save(g, paths[0]), CG_OK);
  cg_graph_free(g);
  assert_int_equal(load_and_save(paths), CG_OK); /* warm up caches */
  long baseline = cg__live_tensors();
  cg__alloc_fail_at(1L << 40);
  assert_int_equal(load_and_save(paths), CG_OK);
  long calls = cg__alloc_calls();
  assert_true(calls > 100);
  for (long n = 0; n < calls; n++) {
    cg__alloc_fail_at(n);
    cg_status st = load_and_save(paths);
    cg__alloc_fail_at(-1);
    if (st != CG_ENOMEM) print_error("allocation %ld of %ld: %s: %s\n", n, calls, cg_status_name(st), cg_last_error());
    assert_int_equal(st, CG_ENOMEM);
    cg_clear_error();
    assert_int_equal(cg__live_tensors(), baseline);
  }
  assert_int_equal(load_and_save(paths), CG_OK);
  remove(paths[0]);
  remove(paths[1]);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(mlp_runs_and_differentiates_like_the_original),
      cgt_test(constants_of_every_dtype_survive_exactly),
      cgt_test(names_are_kept_and_checked),
      cgt_test(refusals_name_the_node),
      cgt_test(corrupt_files_are_refused_with_the_line),
      cgt_test(every_allocation_of_load_and_save_fails_cleanly),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

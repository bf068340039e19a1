/* fuzz_ops.c - libFuzzer target that calls every registered op (it walks the registry with
 * cg_op_count / cg_op_at) with inputs, dtypes, shapes and attributes made from the fuzzer's
 * bytes, eagerly under a tape and then differentiated (first and second order), or in a
 * graph with unknown dimensions, differentiated by cg_gradients and run. Errors are fine; a
 * crash, a leak, undefined behaviour, or a broken promise (an error without a message, a
 * gradient whose shape is not its input's, a graph run that disagrees with the eager call)
 * is a finding. */
#include "op_checks.h"
#include "op_inputs.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IN 6

/* FUZZ_VERBOSE=1 prints each call: for reading a crash input. FUZZ_STRICT_GRAPH=1 also
 * requires graphs with unknown dims to differentiate and run whatever the tape can. */
static int verbose = -1, strict_graph;

/* --- eager: forward under tapes, then first and (maybe) second order gradients ------------ */

static void run_eager(const cg_op_def *def, cg_tensor **in, int n_in, const cg_attrs *attrs,
                      uint8_t mode, uint8_t pick, fz_bytes *b, cg_tensor **out, int *n_out,
                      cg_status *st, cg_status *gst_out)
{
  int second = mode & 2;
  cg_tape *outer = second ? cg_tape_begin(0) : NULL;
  cg_tape *tape = cg_tape_begin(mode & 4 ? CG_TAPE_PERSISTENT : 0);
  fz_check(tape && (!second || outer), "cg_tape_begin failed");
  for (int i = 0; i < n_in; i++)
    if (cg_dtype_is_float(cg_tensor_dtype(in[i]))) {
      fz_check(cg_tape_watch(tape, in[i]) == CG_OK, "watch failed");
      if (outer) fz_check(cg_tape_watch(outer, in[i]) == CG_OK, "watch failed");
    }
  *st = cg_call_n(def->name, in, n_in, attrs, out, CG_MAX_OUTPUTS, n_out);
  fz_check_call(def->name, *st, out, *n_out);
  fz_check(cg_tape_end(tape) == CG_OK, "ending the inner tape failed");
  cg_tensor *dx[MAX_IN] = {0};
  cg_status gst = CG_EINVAL;
  if (*st == CG_OK) {
    cg_tensor *target = out[pick % *n_out];
    cg_grad_opts opts = {.unconnected = mode & 8 ? CG_UNCONNECTED_ZERO : CG_UNCONNECTED_NONE};
    if ((mode & 16) && cg_dtype_is_float(cg_tensor_dtype(target))) /* a seed of values */
      opts.output_gradient = fz_make_input(b, target, NULL); /* same dtype and shape as target */
    gst = cg_tape_gradient(tape, target, in, n_in, dx, &opts);
    if (verbose)
      fprintf(stderr, "  gradient -> %s %s\n", cg_status_name(gst), gst ? cg_last_error() : "");
    if (fz_check_error(gst, "cg_tape_gradient") == CG_OK)
      fz_check_grads(def->name, in, dx, n_in,
                     opts.unconnected == CG_UNCONNECTED_ZERO &&
                         cg_dtype_is_float(cg_tensor_dtype(target)));
    if ((mode & 5) == 5 && !opts.output_gradient)
      fz_check_jacobian(def->name, tape, target, in, n_in, dx);
    if (mode & 4) { /* persistent: asking again gives the same gradients */
      cg_tensor *again[MAX_IN] = {0};
      cg_status g2 = cg_tape_gradient(tape, target, in, n_in, again, &opts);
      fz_check(g2 == gst, "%s: a persistent tape gave %s, then %s", def->name, cg_status_name(gst),
               cg_status_name(g2));
      for (int i = 0; g2 == CG_OK && i < n_in; i++)
        fz_check(!dx[i] == !again[i] && (!dx[i] || fz_same_values(dx[i], again[i])),
                 "%s: a persistent tape gave another gradient %d the second time", def->name, i);
    }
  }
  if (outer) {
    fz_check(cg_tape_end(outer) == CG_OK, "ending the outer tape failed");
    cg_tensor *g = NULL;
    for (int i = 0; gst == CG_OK && i < n_in && !g; i++) g = dx[i];
    if (g) { /* d(dx_i)/d(inputs), seeded with ones */
      cg_tensor *ddx[MAX_IN] = {0};
      if (fz_check_error(cg_tape_gradient(outer, g, in, n_in, ddx, NULL), "second order") == CG_OK)
        fz_check_grads(def->name, in, ddx, n_in, 0);
    }
    cg_tape_free(outer);
  }
  cg_tape_free(tape);
  *gst_out = gst;
}

/* --- graph: placeholders (some dims unknown), the op, cg_gradients, one run ---------------- */

static void run_graph(const cg_op_def *def, cg_tensor **in, int n_in, const cg_attrs *attrs,
                      uint8_t pick, fz_bytes *b, cg_tensor *const *eager, int n_eager,
                      cg_status eager_st, cg_status eager_gst)
{
  cg_graph *g = cg_graph_new();
  fz_check(g && cg_graph_enter(g) == CG_OK, "cannot build a graph");
  cg_graph_set_options(g, fz_u8(b) & 3);
  cg_tensor *ph[MAX_IN], *out[CG_MAX_OUTPUTS], *dx[MAX_IN] = {0};
  cg_feed feeds[MAX_IN];
  uint8_t unknown = fz_u8(b);
  for (int i = 0; i < n_in; i++) {
    int64_t shape[CG_MAX_DIMS];
    int nd = cg_tensor_ndim(in[i]);
    for (int k = 0; k < nd; k++)
      shape[k] = (unknown >> ((i + k) % 8)) & 1 ? -1 : cg_tensor_shape(in[i])[k];
    ph[i] = cg_placeholder(cg_tensor_dtype(in[i]), nd, shape, "x");
    fz_check(ph[i] != NULL, "cg_placeholder failed");
    feeds[i] = (cg_feed){ph[i], in[i]};
    if (verbose) fprintf(stderr, "  graph input %d: %s\n", i, fz_desc(ph[i]));
  }
  int n_out = 0, n_fetch = 0;
  cg_status st = cg_call_n(def->name, ph, n_in, attrs, out, CG_MAX_OUTPUTS, &n_out);
  fz_check_call(def->name, st, out, n_out);
  cg_tensor *fetch[CG_MAX_OUTPUTS + MAX_IN];
  if (st == CG_OK) {
    for (int i = 0; i < n_out; i++) fetch[n_fetch++] = out[i];
    cg_tensor *y = out[pick % n_out];
    if (cg_dtype_is_float(cg_tensor_dtype(y))) {
      cg_status gs = fz_check_error(cg_gradients(&y, 1, ph, n_in, NULL, dx, NULL), "cg_gradients");
      /* where the tape could differentiate the call, the graph (unknown dims and all)
       * should too; many gradients still need static shapes (fuzz/README.md), so this is
       * checked only with FUZZ_STRICT_GRAPH=1 */
      fz_check(!strict_graph || gs == CG_OK || gs == CG_ENOMEM || eager_gst != CG_OK,
               "%s: the tape differentiates it, cg_gradients fails (%s)", def->name,
               cg_status_name(gs));
      for (int i = 0; gs == CG_OK && i < n_in; i++)
        if (dx[i]) fetch[n_fetch++] = dx[i];
    }
  }
  fz_check(cg_graph_exit(g) == CG_OK, "cg_graph_exit failed");
  if (st == CG_OK) {
    cg_tensor *got[CG_MAX_OUTPUTS + MAX_IN] = {0};
    cg_status rst = cg_graph_run(g, feeds, n_in, fetch, n_fetch, got);
    fz_check_error(rst, "cg_graph_run");
    /* The eager call and the graph run use the same kernels: when both work, the outputs
     * agree bit for bit; when the eager call refused the inputs, so must the run. */
    if (eager_st != CG_OK)
      fz_check(rst != CG_OK, "%s: the eager call failed (%s) but the graph ran", def->name,
               cg_status_name(eager_st));
    else if (strict_graph && (eager_gst == CG_OK || n_fetch == n_out))
      fz_check(rst == CG_OK || rst == CG_ENOMEM,
               "%s: the eager call worked, the graph run "
               "failed (%s)",
               def->name, cg_status_name(rst));
    if (rst == CG_OK && eager_st == CG_OK) {
      fz_check(n_out == n_eager, "%s: %d graph outputs, %d eager", def->name, n_out, n_eager);
      for (int i = 0; i < n_out; i++)
        fz_check(fz_same_values(got[i], eager[i]),
                 "%s: output %d differs between graph (%s) and "
                 "eager (%s)",
                 def->name, i, fz_desc(got[i]), fz_desc(eager[i]));
      for (int i = 0, k = n_out; i < n_in; i++)
        if (dx[i]) {
          fz_check(cg_tensor_dtype(got[k]) == cg_tensor_dtype(in[i]) &&
                       fz_same_shape(got[k], in[i]),
                   "%s: graph gradient %d is %s, its input %s", def->name, i, fz_desc(got[k]),
                   fz_desc(in[i]));
          k++;
        }
    }
  }
  cg_graph_free(g);
}

static void describe_call(const cg_op_def *def, cg_tensor *const *in, int n_in, const cg_attrs *a,
                          uint8_t mode)
{
  fprintf(stderr, "%s(", def->name);
  for (int i = 0; i < n_in; i++) fprintf(stderr, "%s%s", i ? ", " : "", fz_desc(in[i]));
  fprintf(stderr, ") mode 0x%02x attrs:", mode);
  for (int i = 0; i < a->n; i++) {
    fprintf(stderr, " %s=", a->items[i].name);
    if (a->items[i].kind == CG_ATTR_FLOAT)
      fprintf(stderr, "%g", a->items[i].f);
    else if (a->items[i].kind == CG_ATTR_INT)
      fprintf(stderr, "%lld", (long long)a->items[i].ints[0]);
    else
      for (int k = 0; k < a->items[i].n; k++)
        fprintf(stderr, "%s%lld", k ? "," : "[", (long long)a->items[i].ints[k]);
    if (a->items[i].kind == CG_ATTR_INTS) fprintf(stderr, "%s]", a->items[i].n ? "" : "[");
  }
  fprintf(stderr, "\n");
}

/* The op: named by the input's first bytes up to a NUL ("Conv2D\0...": seeds stay valid
 * when ops are added), else chosen by the first byte among the registry's cg_op_count ops. */
static const cg_op_def *pick_op(fz_bytes *b)
{
  const uint8_t *nul = memchr(b->p, 0, b->n < 48 ? b->n : 48);
  if (nul && nul > b->p) {
    char name[48];
    memcpy(name, b->p, (size_t)(nul - b->p) + 1);
    const cg_op_def *def = cg_find_op(name);
    cg_clear_error();
    if (def) {
      b->n -= (size_t)(nul - b->p) + 1;
      b->p = nul + 1;
      return def;
    }
  }
  int n_ops = cg_op_count();
  const cg_op_def *def = cg_op_at((int)(fz_u8(b) % (unsigned)n_ops));
  fz_check(def != NULL, "cg_op_at failed inside the registry");
  return def;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (verbose < 0) {
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    strict_graph = getenv("FUZZ_STRICT_GRAPH") != NULL;
  }
  fz_bytes b = {data, size};
  const cg_op_def *def = pick_op(&b);
  uint8_t mode = fz_u8(&b);
  int n_in = def->n_inputs >= 0 ? def->n_inputs : 1 + fz_u8(&b) % 4;
  if (mode & 32) n_in = fz_u8(&b) % 4; /* now and then the wrong number of inputs */
  if (n_in > MAX_IN) n_in = MAX_IN;

  cg_scope scope = cg_scope_begin();
  cg_tensor *in[MAX_IN] = {0};
  fz_envelope env = {{0}};
  for (int i = 0; i < n_in; i++) in[i] = fz_make_input(&b, i ? in[i - 1] : NULL, &env);
  cg_attrs attrs = {0};
  fz_make_attrs(&b, &attrs);

  if (verbose) describe_call(def, in, n_in, &attrs, mode);

  uint64_t before = fz_inputs_hash(in, n_in);
  cg_tensor *out[CG_MAX_OUTPUTS] = {0};
  int n_out = 0;
  cg_status st;
  uint8_t pick = fz_u8(&b); /* which output the gradients are of */
  cg_status gst = CG_EINVAL;
  run_eager(def, in, n_in, &attrs, mode, pick, &b, out, &n_out, &st, &gst);
  if (verbose) fprintf(stderr, "  -> %s %s\n", cg_status_name(st), st ? cg_last_error() : "");
  if (mode & 64) run_graph(def, in, n_in, &attrs, pick, &b, out, n_out, st, gst);
  fz_check(fz_inputs_hash(in, n_in) == before, "%s changed one of its inputs", def->name);
  fz_check(cg_scope_end(scope) == CG_OK, "cg_scope_end failed");
  cg_clear_error();
  return 0;
}

/* cmd_gradcheck.c - `cgrad gradcheck`: runs the gradient-check table (and a generated row
 * for registered ops the table does not know, such as a loaded library's) and prints one
 * line per op and case with the worst error; exits 1 if any fails. */
#include "cases.h"
#include "commands.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int rule_stats;
  int order;
  cg_dtype dtype;
  uint64_t seed;
  int passed, failed;
} run_opts;

static void print_usage(FILE *f)
{
  fprintf(f,
          "usage: cgrad gradcheck [--all | OP...] [--order 1|2] [--dtype f64|f32]\n"
          "                       [--load LIB.so]... [--seed N] [--rule-stats]\n"
          "Checks each op's registered gradient against float64 central differences on random\n"
          "inputs of several shapes (broadcast, size-1 and rank-0 among them). --order 2 also checks\n"
          "the gradient of the gradient for ops whose rows allow it. Exits 1 if any check fails.\n"
          "--rule-stats prints how many times each gradient rule ran (cg_rule_stats).\n");
}

static void report_row(run_opts *o, const char *op, const char *label, cg_status st,
                       const cg_gradcheck_report *r)
{
  bool ok = st == CG_OK;
  ok ? o->passed++ : o->failed++;
  if (st == CG_OK || st == CG_ECHECK)
    printf("%-34s %-30s order %d  worst |err| %-10.3g %s\n", op, label, r->order, r->error,
           ok ? "ok" : "FAIL");
  else
    printf("%-34s %-30s ERROR %s\n", op, label, cg_last_error());
  if (!ok && st == CG_ECHECK) printf("    %s\n", r->message);
  cg_clear_error();
}

/* A default row for an op the table does not know: every input f64 [3,4] in [0.5, 1.5]. */
static cg_status run_generated(run_opts *o, const cg_op_def *def, cg_gradcheck_report *r)
{
  cg_grad_case c = {.op = def->name, .label = "generated [3,4]", .n_in = def->n_inputs < 0 ? 2 : def->n_inputs,
                    .order2 = 1};
  if (c.n_in > 4) return cg_set_error(CG_EINVAL, "%s: %d inputs is more than a generated case handles", def->name, c.n_in);
  for (int i = 0; i < c.n_in; i++) c.in[i] = (cg_case_input){CG_F64, 2, {3, 4}, 0.5, 1.5};
  return cg_run_grad_case(&c, o->dtype, o->order, o->seed, r);
}

static void print_rule_stats(void)
{
  static const char *const kinds[] = {"gradient", "override", "custom", "jvp"};
  int n = cg_rule_stats(NULL, 0);
  cg_rule_stat *rows = calloc((size_t)(n ? n : 1), sizeof *rows);
  if (!rows) return;
  n = cg_rule_stats(rows, n);
  printf("\nrule                               kind       calls\n");
  for (int i = 0; i < n; i++) printf("%-34s %-9s %6llu\n", rows[i].name, kinds[rows[i].kind], (unsigned long long)rows[i].calls);
  free(rows);
}

static bool wanted(const char *op, char **ops, int n_ops)
{
  if (n_ops == 0) return true;
  for (int i = 0; i < n_ops; i++)
    if (!strcmp(ops[i], op)) return true;
  return false;
}

int cmd_gradcheck(int argc, char **argv)
{
  run_opts o = {.order = 1, .dtype = CG_F64, .seed = 1};
  char **ops = calloc((size_t)argc, sizeof *ops);
  int n_ops = 0;
  if (!ops) return 2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      print_usage(stdout);
      free(ops);
      return 0;
    } else if (!strcmp(a, "--all")) {
      continue;
    } else if (!strcmp(a, "--rule-stats")) {
      o.rule_stats = 1;
    } else if (!strcmp(a, "--order") && val) {
      o.order = atoi(argv[++i]);
    } else if (!strcmp(a, "--seed") && val) {
      o.seed = strtoull(argv[++i], NULL, 10);
    } else if (!strcmp(a, "--dtype") && val) {
      o.dtype = !strcmp(val, "f32") ? CG_F32 : !strcmp(val, "f64") ? CG_F64 : CG_NUM_DTYPES;
      i++;
    } else if (!strcmp(a, "--load") && val) {
      if (cg_load_op_library(argv[++i]) != CG_OK) {
        fprintf(stderr, "cgrad gradcheck: %s\n", cg_last_error());
        free(ops);
        return 2;
      }
    } else if (a[0] == '-') {
      fprintf(stderr, "cgrad gradcheck: unknown or incomplete option '%s'\n", a);
      print_usage(stderr);
      free(ops);
      return 2;
    } else {
      ops[n_ops++] = argv[i];
    }
  }
  if ((o.order != 1 && o.order != 2) || o.dtype == CG_NUM_DTYPES) {
    fprintf(stderr, "cgrad gradcheck: --order takes 1 or 2 and --dtype f64 or f32\n");
    free(ops);
    return 2;
  }
  for (int i = 0; i < n_ops; i++)
    if (!cg_find_op(ops[i])) {
      fprintf(stderr, "cgrad gradcheck: %s\n", cg_last_error());
      free(ops);
      return 2;
    }

  int n_cases;
  const cg_grad_case *cases = cg_grad_cases(&n_cases);
  for (int k = 0; k < cg_op_count(); k++) {
    const cg_op_def *def = cg_op_at(k);
    if ((def->flags & CG_OP_NOT_DIFFERENTIABLE) || !wanted(def->name, ops, n_ops)) continue;
    bool has_row = false;
    for (int i = 0; i < n_cases; i++) {
      if (strcmp(cases[i].op, def->name)) continue;
      has_row = true;
      cg_gradcheck_report r = {0};
      cg_status st = cg_run_grad_case(&cases[i], o.dtype, o.order, o.seed, &r);
      report_row(&o, def->name, cases[i].label, st, &r);
    }
    if (!has_row) {
      cg_gradcheck_report r = {0};
      cg_status st = run_generated(&o, def, &r);
      report_row(&o, def->name, "generated [3,4]", st, &r);
    }
  }
  printf("%d passed, %d failed (dtype %s, order %d)\n", o.passed, o.failed, cg_dtype_name(o.dtype), o.order);
  if (o.rule_stats) print_rule_stats();
  free(ops);
  return o.failed ? 1 : 0;
}

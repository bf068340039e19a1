/* fuzz_graph_load.c - libFuzzer target for cg_graph_load (the text format cg_graph_save
 * writes): the input is the file. A bad file is an error with a message; a file that loads
 * saves again, and what was saved loads and saves to the very same text (a fixed point). */
#include "common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *n)
{
  FILE *f = fopen(path, "rb");
  if (!f) abort();
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  rewind(f);
  char *text = malloc((size_t)len + 1);
  if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) abort();
  fclose(f);
  *n = (size_t)len;
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cg_scope scope = cg_scope_begin();
  cg_graph *g = cg_graph_load(fz_write_file("in.graph", data, size));
  if (!g) {
    cg_status st = fz_check_error(cg_last_status(), "cg_graph_load");
    fz_check(st != CG_ENOMEM, "a %zu-byte graph file needed too much memory", size);
  } else {
    const char *first = fz_path("first.graph"), *second = fz_path("second.graph");
    fz_check(cg_graph_save(g, first) == CG_OK, "a loaded graph cannot be saved");
    cg_graph *again = cg_graph_load(first);
    fz_check(again != NULL, "a graph cg_graph_save wrote does not load");
    fz_check(cg_graph_save(again, second) == CG_OK, "a reloaded graph cannot be saved");
    size_t n1, n2;
    char *t1 = slurp(first, &n1), *t2 = slurp(second, &n2);
    fz_check(n1 == n2 && !memcmp(t1, t2, n1), "saving, loading and saving again changed the text");
    free(t1);
    free(t2);
    cg_graph_free(again);
    cg_graph_free(g);
  }
  fz_check(cg_scope_end(scope) == CG_OK, "cg_scope_end failed");
  cg_clear_error();
  return 0;
}

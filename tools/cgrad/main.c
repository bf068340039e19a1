/* main.c - the `cgrad` command: one subcommand per job. */
#include "commands.h"
#include <stdio.h>
#include <string.h>

static const struct {
  const char *name, *summary;
  int (*run)(int argc, char **argv);
} commands[] = {
    {"train", "train the MLP or the CNN on Fashion-MNIST (see cgrad train --help)", cmd_train},
    {"gradcheck", "check every registered op's gradient against central differences", cmd_gradcheck},
    {"graph", "write an example model's graph, gradient nodes included, as Graphviz DOT", cmd_graph},
    {"bench", "time the performance workloads W1..W5 on this machine (see cgrad bench --help)", cmd_bench},
};

static int usage(FILE *f)
{
  fprintf(f, "usage: cgrad COMMAND [ARGS]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n`cgrad COMMAND --help` describes a command.\n");
  return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
  if (argc < 2) return usage(stderr);
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(stdout);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "cgrad: unknown command '%s'\n\n", argv[1]);
  return usage(stderr);
}

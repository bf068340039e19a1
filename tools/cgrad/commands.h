/* commands.h - the subcommands of the `cgrad` tool; each takes its own argv (argv[0] is
 * the command's name) and returns the process exit code. */
#ifndef CG_COMMANDS_H
#define CG_COMMANDS_H

int cmd_bench(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_train(int argc, char **argv);

#endif

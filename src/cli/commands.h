/*
 * commands.h — the imgsim subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand name) and returns the process exit code. Errors are printed
 * here, in the CLI layer, as one line "imgsim CMD: cause" on stderr.
 */
#ifndef IMGSIM_CLI_COMMANDS_H
#define IMGSIM_CLI_COMMANDS_H

int cmd_prep(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_neighbours(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif

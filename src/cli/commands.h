/*
 * commands.h — the imgsim subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand name) and returns the process exit code. Errors are printed
 * here, in the CLI layer, as one line "imgsim CMD: cause" on stderr.
 */
#ifndef IMGSIM_CLI_COMMANDS_H
#define IMGSIM_CLI_COMMANDS_H

#include <stdio.h>

#include "imgsim.h"

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
int cmd_ann(int argc, char **argv);

/* HNSW index options, shared by `imgsim ann build` and `imgsim index --ann` (cmd_ann.c).
 * Unset fields (-1 / 0) keep the index's current setting, else the default. */
typedef struct cli_ann_args {
    int given;                  /* any option seen */
    int metric, storage, pca_dims, whiten;   /* -1: unset */
    int M, efc, ef, threads;    /* 0: unset */
    int metric_alias;           /* accept --metric for --ann-metric */
} cli_ann_args;
#define CLI_ANN_OPTIONS_HELP \
    "  --ann-storage sq8|f32    vectors in the index: 1 byte (default) or 4 bytes per dim\n" \
    "  --dims N [--whiten]      store a PCA projection to N dims (full: no PCA, default)\n"  \
    "  --M N                    links per node (default 16)\n"                               \
    "  --ef-construction N      build breadth (default 200)\n"                               \
    "  --ann-ef N               default search breadth of queries (default 64)\n"            \
    "  --ann-metric cosine|l2   the metric it serves (default cosine)\n"                     \
    "  --build-threads N        build threads (default: all cores)\n"
void cli_ann_args_init(cli_ann_args *a);
/* 1 when argv[*i] was an index option (consumed), 0 if not one, -1 on a bad value. */
int cli_ann_option(const char *cmd, int argc, char **argv, int *i, cli_ann_args *a);
/* The index's options: its current ones (else the defaults) with `a` applied. */
void cli_ann_resolve(imgsim_db *db, const cli_ann_args *a, imgsim_ann_opts *o);
/* One line "imgsim CMD: HNSW index ...: N vectors, X MiB (HOW, current)" on `f`. */
void cli_ann_summary(FILE *f, const char *cmd, imgsim_db *db, const char *how);

#endif

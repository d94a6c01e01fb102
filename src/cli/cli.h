/*
 * cli.h — option parsing shared by the imgsim subcommands.
 */
#ifndef IMGSIM_CLI_CLI_H
#define IMGSIM_CLI_CLI_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "imgsim.h"

/* Options every model-using command accepts. */
typedef struct cli_model_args {
    const char *model;
    imgsim_model_opts opts;
    int raw_w, raw_h;
    const char *list;           /* file with one image path per line */
    int resize;                 /* 0: the model's recipe, else 1 + imgsim_resize_mode */
} cli_model_args;

/* If argv[*i] is a model option, consume it (and its value) and return 1; 0 if not one;
 * -1 on a bad value (message printed). */
int cli_model_option(const char *cmd, int argc, char **argv, int *i, cli_model_args *a);

/* Value of option argv[*i]; prints an error and returns NULL when missing. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);

/* Paths from the positional arguments plus --list; NULL-terminated, caller frees with
 * cli_free_paths. Returns NULL (after printing) on error. */
char **cli_collect_paths(const char *cmd, char **pos, int npos, const char *list, size_t *n);
void cli_free_paths(char **paths, size_t n);

/* The preprocessing recipe: the model's, with --resize applied. */
void cli_prep(const cli_model_args *a, const imgsim_model *m, imgsim_prep *p);

/* Open the model named in `a`, printing the error on failure. */
imgsim_model *cli_open_model(const char *cmd, cli_model_args *a);

void cli_error(const char *cmd, const imgsim_error *e);

/* The collection directory: --db, else $IMGSIM_DB, else ./imgsim.db */
const char *cli_db_dir(const char *given);

/* Open the collection at `dir` (mode IMGSIM_DB_*) and, when `m` is non-NULL, the model that
 * made it (a new collection: --model or the default), set up for raw, un-normalised vectors.
 * Prints the error and returns -1 on failure. */
int cli_open_collection(const char *cmd, const char *dir, int mode, cli_model_args *a,
                        imgsim_db **db, imgsim_model **m);

/* A new JSON object {"path": path} for one line of --json / jsonl output; NULL (after a
 * message naming the file) when the path is not UTF-8, which JSON cannot carry, or memory
 * runs out. */
json_t *cli_json_path_object(const char *cmd, const char *path);

/* Write `j` to f with jansson's dump `flags` and a newline, then release it; `j` NULL means
 * building it ran out of memory. -1 after a message on failure. */
int cli_json_print(const char *cmd, FILE *f, json_t *j, size_t flags);

/* Parse "COL=VALUE" into w (pointing into s). -1 and a message when malformed. */
int cli_parse_where(const char *cmd, char *s, imgsim_where *w);

#endif

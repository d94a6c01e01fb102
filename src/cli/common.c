/*
 * common.c — option parsing, error printing and JSON-lines output shared by the imgsim
 * subcommands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/grow.h"

void cli_error(const char *cmd, const imgsim_error *e)
{
    fprintf(stderr, "imgsim %s: %s\n", cmd, e->msg[0] ? e->msg : imgsim_status_name(e->code));
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "imgsim %s: option %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int cli_model_option(const char *cmd, int argc, char **argv, int *i, cli_model_args *a)
{
    const char *o = argv[*i], *v;
    if (strcmp(o, "--no-normalize") == 0) {
        a->opts.no_normalize = 1;
        return 1;
    }
    if (strcmp(o, "--model") && strcmp(o, "-m") && strcmp(o, "--layer") &&
        strcmp(o, "--precision") && strcmp(o, "--threads") && strcmp(o, "--raw") &&
        strcmp(o, "--list") && strcmp(o, "--resize"))
        return 0;
    if (!(v = cli_value(cmd, argc, argv, i)))
        return -1;
    if (!strcmp(o, "--model") || !strcmp(o, "-m")) {
        a->model = v;
    } else if (!strcmp(o, "--layer")) {
        a->opts.layer = v;
    } else if (!strcmp(o, "--list")) {
        a->list = v;
    } else if (!strcmp(o, "--resize")) {
        if (!strcmp(v, "shorter"))
            a->resize = 1 + IMGSIM_RESIZE_SHORTER_CROP;
        else if (!strcmp(v, "squash"))
            a->resize = 1 + IMGSIM_RESIZE_SQUASH;
        else {
            fprintf(stderr, "imgsim %s: --resize must be shorter or squash\n", cmd);
            return -1;
        }
    } else if (!strcmp(o, "--precision")) {
        if (!strcmp(v, "auto"))
            a->opts.precision = IMGSIM_PRECISION_AUTO;
        else if (!strcmp(v, "quant") || !strcmp(v, "uint8"))
            a->opts.precision = IMGSIM_PRECISION_QUANT;
        else if (!strcmp(v, "fp32"))
            a->opts.precision = IMGSIM_PRECISION_FP32;
        else {
            fprintf(stderr, "imgsim %s: --precision must be auto, quant or fp32\n", cmd);
            return -1;
        }
    } else if (!strcmp(o, "--threads")) {
        if (parse_int(v, 1, 256, &a->opts.threads) < 0) {
            fprintf(stderr, "imgsim %s: --threads needs a number from 1 to 256\n", cmd);
            return -1;
        }
    } else { /* --raw WxH */
        int w, h, n = 0;
        if (sscanf(v, "%dx%d%n", &w, &h, &n) != 2 || v[n] || w < 1 || h < 1 || w > 65535 ||
            h > 65535) {
            fprintf(stderr, "imgsim %s: --raw needs WIDTHxHEIGHT, e.g. 224x224\n", cmd);
            return -1;
        }
        a->raw_w = w;
        a->raw_h = h;
    }
    return 1;
}

void cli_free_paths(char **paths, size_t n)
{
    if (!paths)
        return;
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

static int push(char ***paths, size_t *n, size_t *cap, const char *s)
{
    if (grow_array((void **)paths, cap, *n + 2, sizeof **paths, 64))
        return -1;
    if (!((*paths)[*n] = strdup(s)))
        return -1;
    (*paths)[++*n] = NULL;
    return 0;
}

char **cli_collect_paths(const char *cmd, char **pos, int npos, const char *list, size_t *n)
{
    char **paths = NULL;
    size_t cap = 0;
    *n = 0;
    for (int i = 0; i < npos; i++)
        if (push(&paths, n, &cap, pos[i]) < 0)
            goto nomem;
    if (list) {
        FILE *f = strcmp(list, "-") ? fopen(list, "r") : stdin;
        if (!f) {
            fprintf(stderr, "imgsim %s: cannot open list %s\n", cmd, list);
            cli_free_paths(paths, *n);
            return NULL;
        }
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        while ((len = getline(&line, &lcap, f)) >= 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = 0;
            if (len > 0 && push(&paths, n, &cap, line) < 0) {
                free(line);
                if (f != stdin)
                    fclose(f);
                goto nomem;
            }
        }
        free(line);
        if (f != stdin)
            fclose(f);
    }
    if (*n == 0) {
        fprintf(stderr, "imgsim %s: no images given\n", cmd);
        free(paths);
        return NULL;
    }
    return paths;
nomem:
    fprintf(stderr, "imgsim %s: out of memory\n", cmd);
    cli_free_paths(paths, *n);
    return NULL;
}

void cli_prep(const cli_model_args *a, const imgsim_model *m, imgsim_prep *p)
{
    imgsim_model_prep(m, p);
    if (a->resize)
        p->mode = (imgsim_resize_mode)(a->resize - 1);
}

imgsim_model *cli_open_model(const char *cmd, cli_model_args *a)
{
    imgsim_model *m = NULL;
    imgsim_error e = {0};
    if (imgsim_model_open(a->model, &a->opts, &m, &e) != IMGSIM_OK) {
        cli_error(cmd, &e);
        return NULL;
    }
    return m;
}

const char *cli_db_dir(const char *given)
{
    if (given && *given)
        return given;
    const char *env = getenv("IMGSIM_DB");
    return env && *env ? env : "imgsim.db";
}

int cli_open_collection(const char *cmd, const char *dir, int mode, cli_model_args *a,
                        imgsim_db **db, imgsim_model **m)
{
    imgsim_error e = {0};
    *db = NULL;
    if (m)
        *m = NULL;
    /* An existing collection names its model; a new one takes --model or the default. */
    imgsim_status s = imgsim_db_open(dir, mode & ~2, a->model, 0, db, &e);
    if (s == IMGSIM_E_NOTFOUND && (mode & IMGSIM_DB_CREATE) == IMGSIM_DB_CREATE) {
        const char *name = a->model ? a->model : imgsim_default_model();
        cli_model_args ma = *a;
        ma.model = name;
        ma.opts.no_normalize = 1;
        imgsim_model *mm = cli_open_model(cmd, &ma);
        if (!mm)
            return -1;
        s = imgsim_db_open(dir, mode, imgsim_model_name(mm), imgsim_model_dim(mm), db, &e);
        if (s != IMGSIM_OK) {
            imgsim_model_close(mm);
            cli_error(cmd, &e);
            return -1;
        }
        if (m)
            *m = mm;
        else
            imgsim_model_close(mm);
        return 0;
    }
    if (s != IMGSIM_OK) {
        cli_error(cmd, &e);
        return -1;
    }
    if (m) {
        cli_model_args ma = *a;
        ma.model = imgsim_db_model(*db);
        ma.opts.no_normalize = 1;
        if (!(*m = cli_open_model(cmd, &ma))) {
            imgsim_db_close(*db);
            *db = NULL;
            return -1;
        }
        if (imgsim_model_dim(*m) != imgsim_db_dim(*db)) {
            fprintf(stderr, "imgsim %s: model %s gives %d-d vectors, the collection holds %d-d\n",
                    cmd, imgsim_model_name(*m), imgsim_model_dim(*m), imgsim_db_dim(*db));
            imgsim_model_close(*m);
            imgsim_db_close(*db);
            *m = NULL;
            *db = NULL;
            return -1;
        }
    }
    return 0;
}

int cli_parse_where(const char *cmd, char *s, imgsim_where *w)
{
    char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        fprintf(stderr, "imgsim %s: --where needs COLUMN=VALUE, got '%s'\n", cmd, s);
        return -1;
    }
    *eq = 0;
    w->column = s;
    w->value = eq + 1;
    return 0;
}

json_t *cli_json_path_object(const char *cmd, const char *path)
{
    json_t *p = json_string(path);
    if (!p) {
        /* json_string refuses bytes that are not UTF-8; the unchecked variant tells that
         * apart from running out of memory */
        json_t *raw = json_string_nocheck(path);
        fprintf(stderr, "imgsim %s: %s: %s\n", cmd, path,
                raw ? "the path is not UTF-8, so it cannot be written as JSON" : "out of memory");
        json_decref(raw);
        return NULL;
    }
    json_t *o = json_object();
    if (json_object_set_new(o, "path", p) < 0) {
        json_decref(o);
        fprintf(stderr, "imgsim %s: out of memory\n", cmd);
        return NULL;
    }
    return o;
}

int cli_json_print(const char *cmd, FILE *f, json_t *j, size_t flags)
{
    int rc = -1;
    if (!j)
        fprintf(stderr, "imgsim %s: out of memory\n", cmd);
    else if (json_dumpf(j, f, flags) < 0 || fputc('\n', f) == EOF)
        fprintf(stderr, "imgsim %s: write error\n", cmd);
    else
        rc = 0;
    json_decref(j);
    return rc;
}

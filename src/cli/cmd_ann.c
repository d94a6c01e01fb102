/*
 * cmd_ann.c — `imgsim ann build|info|drop`: explicit control of a collection's HNSW index,
 * and the index options shared with `imgsim index --ann`.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "core/clock.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imgsim ann build [--db DIR] [index options]   build (or rebuild) the index\n"
            "       imgsim ann info [--db DIR] [--json]           what it is; is it current?\n"
            "       imgsim ann drop [--db DIR]                    delete it\n"
            "index options (default: the index's current settings, else these defaults):\n"
            "%s"
            "Once built, the index is kept in step by every imgsim index and imgsim remove.\n"
            "Queries use it from %d vectors up (imgsim query --ann/--ef to force, --exact to\n"
            "avoid it).\n",
            CLI_ANN_OPTIONS_HELP, IMGSIM_ANN_AUTO_ROWS);
}

static int parse_num(const char *cmd, const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, "imgsim %s: %s needs a number from %d to %d\n", cmd, opt, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

void cli_ann_args_init(cli_ann_args *a)
{
    memset(a, 0, sizeof *a);
    a->metric = a->storage = a->pca_dims = a->whiten = -1;
}

int cli_ann_option(const char *cmd, int argc, char **argv, int *i, cli_ann_args *a)
{
    const char *o = argv[*i], *v;
    if (!strcmp(o, "--whiten")) {
        a->whiten = 1;
        return 1;
    }
    int ann_metric = !strcmp(o, "--ann-metric") || (a->metric_alias && !strcmp(o, "--metric"));
    if (strcmp(o, "--ann-storage") && strcmp(o, "--dims") && strcmp(o, "--M") &&
        strcmp(o, "--ef-construction") && strcmp(o, "--ann-ef") && !ann_metric &&
        strcmp(o, "--build-threads"))
        return 0;
    if (!(v = cli_value(cmd, argc, argv, i)))
        return -1;
    if (!strcmp(o, "--ann-storage")) {
        if (!strcmp(v, "sq8"))
            a->storage = IMGSIM_ANN_SQ8;
        else if (!strcmp(v, "f32"))
            a->storage = IMGSIM_ANN_F32;
        else {
            fprintf(stderr, "imgsim %s: --ann-storage must be sq8 or f32\n", cmd);
            return -1;
        }
    } else if (ann_metric) {
        imgsim_error e = {0};
        imgsim_metric m;
        if (imgsim_metric_parse(v, &m, &e) != IMGSIM_OK || m == IMGSIM_METRIC_L1) {
            fprintf(stderr, "imgsim %s: %s must be cosine or l2\n", cmd, o);
            return -1;
        }
        a->metric = (int)m;
    } else if (!strcmp(o, "--dims")) {
        if (!strcmp(v, "full") || !strcmp(v, "0"))
            a->pca_dims = 0;
        else if (parse_num(cmd, o, v, 1, 65535, &a->pca_dims) < 0)
            return -1;
    } else if (!strcmp(o, "--M")) {
        if (parse_num(cmd, o, v, 2, 256, &a->M) < 0)
            return -1;
    } else if (!strcmp(o, "--ef-construction")) {
        if (parse_num(cmd, o, v, 1, 10000, &a->efc) < 0)
            return -1;
    } else if (!strcmp(o, "--ann-ef")) {
        if (parse_num(cmd, o, v, 1, IMGSIM_MAX_EF, &a->ef) < 0)
            return -1;
    } else if (parse_num(cmd, o, v, 1, 256, &a->threads) < 0) {
        return -1;
    }
    a->given = 1;
    return 1;
}

void cli_ann_resolve(imgsim_db *db, const cli_ann_args *a, imgsim_ann_opts *o)
{
    imgsim_ann_info in;
    imgsim_error e = {0};
    if (imgsim_db_ann_info(db, &in, &e) == IMGSIM_OK && in.status != IMGSIM_ANN_NONE)
        *o = in.opts;
    else
        imgsim_ann_opts_default(o);
    if (a->metric >= 0)
        o->metric = (imgsim_metric)a->metric;
    if (a->storage >= 0)
        o->storage = (imgsim_ann_storage)a->storage;
    if (a->pca_dims >= 0) {
        o->pca_dims = a->pca_dims;
        if (a->pca_dims == 0)
            o->pca_whiten = 0;
    }
    if (a->whiten >= 0)
        o->pca_whiten = a->whiten;
    if (a->M)
        o->M = a->M;
    if (a->efc)
        o->ef_construction = a->efc;
    if (a->ef)
        o->ef_search = a->ef;
    o->threads = a->threads;
}

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

void cli_ann_summary(FILE *f, const char *cmd, imgsim_db *db, const char *how)
{
    imgsim_ann_info in;
    imgsim_error e = {0};
    if (imgsim_db_ann_info(db, &in, &e) != IMGSIM_OK) {
        cli_error(cmd, &e);
        return;
    }
    if (in.status == IMGSIM_ANN_NONE)
        fprintf(f, "imgsim %s: no HNSW index\n", cmd);
    else if (in.status == IMGSIM_ANN_CURRENT || in.status == IMGSIM_ANN_BEHIND)
        fprintf(f, "imgsim %s: HNSW index %s: %zu vectors, %.1f MiB (%s%s%s)\n", cmd, in.file,
                in.nodes, mib(in.bytes_file), how ? how : "", how ? ", " : "",
                imgsim_ann_status_name(in.status));
    else
        fprintf(f, "imgsim %s: HNSW index %s is %s: %s\n", cmd, in.file,
                imgsim_ann_status_name(in.status), in.problem);
}

static void print_opts(const imgsim_ann_opts *o, int dim, int code_dim)
{
    printf("parameters:  %s, M %d, ef_construction %d, ef_search %d, %s",
           imgsim_metric_name(o->metric), o->M, o->ef_construction, o->ef_search,
           o->storage == IMGSIM_ANN_F32 ? "f32" : "sq8");
    if (o->pca_dims > 0)
        printf(", PCA %d -> %d dims%s", dim, o->pca_dims, o->pca_whiten ? " (whitened)" : "");
    else if (code_dim > 0)
        printf(", %d dims", code_dim);
    printf("\n");
}

static int info(imgsim_db *db, const char *dir, int json)
{
    imgsim_ann_info in;
    imgsim_error e = {0};
    if (imgsim_db_ann_info(db, &in, &e) != IMGSIM_OK) {
        cli_error("ann info", &e);
        return 1;
    }
    double per = in.nodes ? (double)in.bytes_file / (double)in.nodes : 0;
    int auto_on = in.live >= IMGSIM_ANN_AUTO_ROWS;
    if (json) {
        json_t *j = json_object();
        if (!j) {
            fprintf(stderr, "imgsim ann info: out of memory\n");
            return 1;
        }
        int usable = in.status == IMGSIM_ANN_CURRENT || in.status == IMGSIM_ANN_BEHIND;
#define SET(key, value) json_object_set_new(j, key, value)
        SET("status", json_string(imgsim_ann_status_name(in.status)));
        SET("live", json_integer((json_int_t)in.live));
        SET("auto_threshold", json_integer(IMGSIM_ANN_AUTO_ROWS));
        SET("used_by_default", json_boolean(auto_on && usable));
        if (in.status != IMGSIM_ANN_NONE) {
            SET("file", json_string(in.file));
            SET("problem", in.problem[0] ? json_string(in.problem) : json_null());
            SET("metric", json_string(imgsim_metric_name(in.opts.metric)));
            SET("M", json_integer(in.opts.M));
            SET("ef_construction", json_integer(in.opts.ef_construction));
            SET("ef_search", json_integer(in.opts.ef_search));
            SET("storage", json_string(in.opts.storage == IMGSIM_ANN_F32 ? "f32" : "sq8"));
            SET("pca_dims", json_integer(in.opts.pca_dims));
            SET("whiten", json_boolean(in.opts.pca_whiten));
            SET("nodes", json_integer((json_int_t)in.nodes));
            SET("added", json_integer((json_int_t)in.added));
            SET("dropped", json_integer((json_int_t)in.dropped));
            SET("gen", json_integer((json_int_t)in.gen));
            SET("collection_gen", json_integer((json_int_t)in.db_gen));
            SET("dim", json_integer(in.dim));
            SET("code_dim", json_integer(in.code_dim));
            SET("max_level", json_integer(in.max_level));
            SET("bytes_file", json_integer((json_int_t)in.bytes_file));
            SET("bytes_graph", json_integer((json_int_t)in.bytes_graph));
            SET("bytes_codes", json_integer((json_int_t)in.bytes_codes));
            SET("bytes_other", json_integer((json_int_t)in.bytes_other));
            SET("bytes_per_vector", json_real(per));
        }
#undef SET
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(j);
        return 0;
    }
    printf("collection:  %s (%zu live vectors)\n", dir, in.live);
    if (in.status == IMGSIM_ANN_NONE) {
        printf("index:       none (imgsim ann build, or imgsim index --ann, makes one)\n");
        return 0;
    }
    printf("index:       %s, %s\n", in.file, imgsim_ann_status_name(in.status));
    if (in.problem[0])
        printf("problem:     %s (exact search until rebuilt: imgsim ann build, or the next "
               "imgsim index / remove)\n", in.problem);
    print_opts(&in.opts, in.dim, in.code_dim);
    if (in.status == IMGSIM_ANN_CURRENT || in.status == IMGSIM_ANN_BEHIND) {
        printf("nodes:       %zu", in.nodes);
        if (in.status == IMGSIM_ANN_BEHIND)
            printf(" (%zu live vectors not in it yet, searched exactly; %zu removed since, "
                   "filtered out)", in.added, in.dropped);
        printf("\n");
        printf("size:        %.2f MiB on disk: graph %.2f, vectors %.2f, other %.2f MiB; "
               "%.0f bytes per vector\n", mib(in.bytes_file), mib(in.bytes_graph),
               mib(in.bytes_codes), mib(in.bytes_other), per);
        printf("levels:      %d\n", in.max_level + 1);
    }
    printf("reflects:    generation %llu (collection: %llu)\n", (unsigned long long)in.gen,
           (unsigned long long)in.db_gen);
    printf("queries:     %s\n", auto_on ? "through the index (--exact to avoid it)"
                                        : "exact below " "the threshold; --ann or --ef to use it");
    return 0;
}

int cmd_ann(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *dbdir = NULL;
    if (strcmp(sub, "build") && strcmp(sub, "info") && strcmp(sub, "drop")) {
        fprintf(stderr, "imgsim ann: unknown subcommand '%s' (build, info, drop)\n", sub);
        return 2;
    }
    char cmd[16];
    snprintf(cmd, sizeof cmd, "ann %s", sub);
    cli_ann_args aa;
    cli_ann_args_init(&aa);
    aa.metric_alias = 1; /* `ann build --metric l2` */
    int json = 0;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        int r = !strcmp(sub, "build") ? cli_ann_option(cmd, argc, argv, &i, &aa) : 0;
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (!strcmp(o, "--db")) {
            if (!(dbdir = cli_value(cmd, argc, argv, &i)))
                return 2;
        } else if (!strcmp(o, "--json") && !strcmp(sub, "info")) {
            json = 1;
        } else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "imgsim %s: unknown option %s\n", cmd, o);
            return 2;
        }
    }
    cli_model_args ma = {0};
    imgsim_db *db;
    int write = strcmp(sub, "info") != 0;
    if (cli_open_collection(cmd, cli_db_dir(dbdir), write ? IMGSIM_DB_WRITE : IMGSIM_DB_READ, &ma,
                            &db, NULL) < 0)
        return 1;
    int rc = 0;
    imgsim_error e = {0};
    if (!strcmp(sub, "info")) {
        rc = info(db, cli_db_dir(dbdir), json);
    } else if (!strcmp(sub, "drop")) {
        if (imgsim_db_ann_drop(db, &e) != IMGSIM_OK) {
            cli_error(cmd, &e);
            rc = 1;
        } else {
            fprintf(stderr, "imgsim ann drop: index deleted; queries are exact\n");
        }
    } else {
        imgsim_ann_opts o;
        cli_ann_resolve(db, &aa, &o);
        double t0 = clock_now();
        if (imgsim_db_ann_build(db, &o, &e) != IMGSIM_OK) {
            cli_error(cmd, &e);
            rc = 1;
        } else {
            double s = clock_now() - t0;
            fprintf(stderr, "imgsim ann build: %zu vectors in %.1f s\n", imgsim_db_vectors(db), s);
            cli_ann_summary(stderr, cmd, db, "built");
        }
    }
    imgsim_db_close(db);
    return rc;
}

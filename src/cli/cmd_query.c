/*
 * cmd_query.c — `imgsim query`: the k items most like an image file or an indexed item,
 * as a table or JSON.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "query/json.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imgsim query [options] (IMAGE | --id ID)\n"
            "  --db DIR                 collection (default $IMGSIM_DB or ./imgsim.db)\n"
            "  -k N                     results (default 10)\n"
            "  --metric cosine|l2|l1    similarity (default cosine)\n"
            "  --where COLUMN=VALUE     only items matching (label, id, source, or a CSV column);\n"
            "                           repeat to combine\n"
            "  --category auto          predict the query's label, search within it\n"
            "  --exact                  brute force: no HNSW index, no neighbour table\n"
            "  --ann                    search through the HNSW index even when the collection\n"
            "                           is small (by default it is used from %d vectors)\n"
            "  --ef N                   HNSW search breadth (default: the index's, 64); more\n"
            "                           finds more of the true neighbours; implies --ann\n"
            "  --no-table               ignore the precomputed neighbour table\n"
            "  --json                   JSON output\n",
            IMGSIM_ANN_AUTO_ROWS);
}

/* The SEARCH JSON (src/query/json.c) with the CLI's fields: the query image, ranks and
 * sources. -1 after a message on failure. */
static int print_json(const char *image, const char *id, const imgsim_query_opts *o,
                      const imgsim_results *r, double ms)
{
    results_json_opts jo = {0};
    jo.image = image;
    jo.id = id;
    jo.rank = jo.source = 1;
    return cli_json_print("query", stdout, query_results_json(r, o, &jo, ms),
                          JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

static void print_table(const imgsim_results *r, const imgsim_query_opts *o)
{
    if (r->predicted_label)
        printf("predicted label: %s (%d of %d nearest labelled items)\n", r->predicted_label,
               r->votes, r->voters);
    printf("%4s  %-9s  %-24s  %-16s  %s\n", "rank", o->metric == IMGSIM_METRIC_COSINE ? "cosine" : imgsim_metric_name(o->metric), "id", "label", "source");
    for (int i = 0; i < r->n; i++) {
        const imgsim_item *it = &r->hits[i].item;
        printf("%4d  %-9.4f  %-24s  %-16s  %s\n", i + 1, (double)r->hits[i].score, it->id,
               it->label ? it->label : "-", it->source);
    }
}

int cmd_query(int argc, char **argv)
{
    cli_model_args a = {0};
    imgsim_model_opts_default(&a.opts);
    imgsim_query_opts o;
    imgsim_query_opts_default(&o);
    const char *dbdir = NULL, *id = NULL, *image = NULL;
    int json = 0, exact = 0, ann = 0;
    imgsim_where *where = calloc((size_t)argc + 1, sizeof *where);
    if (!where)
        return 1;
    imgsim_error e = {0};
    for (int i = 1; i < argc; i++) {
        const char *op = argv[i], *v;
        int mr = cli_model_option("query", argc, argv, &i, &a);
        if (mr < 0)
            goto bad;
        if (mr > 0)
            continue;
        if (!strcmp(op, "-h") || !strcmp(op, "--help")) {
            usage(stdout);
            free(where);
            return 0;
        } else if (!strcmp(op, "--json")) {
            json = 1;
        } else if (!strcmp(op, "--exact")) {
            exact = o.no_table = 1;
        } else if (!strcmp(op, "--no-table")) {
            o.no_table = 1;
        } else if (!strcmp(op, "--ann")) {
            ann = 1;
        } else if (!strcmp(op, "--ef")) {
            if (!(v = cli_value("query", argc, argv, &i)))
                goto bad;
            char *end;
            long ef = strtol(v, &end, 10);
            if (!*v || *end || ef < 1 || ef > IMGSIM_MAX_EF) {
                fprintf(stderr, "imgsim query: --ef needs a number from 1 to %d\n", IMGSIM_MAX_EF);
                goto bad;
            }
            o.ef = (int)ef;
        } else if (!strcmp(op, "--db") || !strcmp(op, "--id") || !strcmp(op, "-k") ||
                   !strcmp(op, "--metric") || !strcmp(op, "--where") || !strcmp(op, "--category")) {
            if (!(v = cli_value("query", argc, argv, &i)))
                goto bad;
            if (!strcmp(op, "--db")) {
                dbdir = v;
            } else if (!strcmp(op, "--id")) {
                id = v;
            } else if (!strcmp(op, "-k")) {
                char *end;
                long k = strtol(v, &end, 10);
                if (*end || k < 1 || k > IMGSIM_MAX_K) {
                    fprintf(stderr, "imgsim query: -k needs a number from 1 to %d\n", IMGSIM_MAX_K);
                    goto bad;
                }
                o.k = (int)k;
            } else if (!strcmp(op, "--metric")) {
                if (imgsim_metric_parse(v, &o.metric, &e) != IMGSIM_OK) {
                    cli_error("query", &e);
                    goto bad;
                }
            } else if (!strcmp(op, "--where")) {
                if (cli_parse_where("query", argv[i], &where[o.nwhere]) < 0)
                    goto bad;
                o.nwhere++;
            } else {
                if (strcmp(v, "auto")) {
                    fprintf(stderr, "imgsim query: --category takes 'auto' (or use --where label=X)\n");
                    goto bad;
                }
                o.category_auto = 1;
            }
        } else if (op[0] == '-' && op[1]) {
            fprintf(stderr, "imgsim query: unknown option %s\n", op);
            goto bad;
        } else if (!image) {
            image = op;
        } else {
            fprintf(stderr, "imgsim query: one image at a time\n");
            goto bad;
        }
    }
    o.where = where;
    if (exact && (ann || o.ef)) {
        fprintf(stderr, "imgsim query: --exact and --ann/--ef exclude each other\n");
        goto bad;
    }
    /* --ef tunes the index search, so it asks for the index as --ann does */
    o.mode = exact ? IMGSIM_SEARCH_EXACT : ann || o.ef ? IMGSIM_SEARCH_ANN : IMGSIM_SEARCH_AUTO;
    if (!!image == !!id) {
        usage(stderr);
        goto bad;
    }
    double t0 = clock_now();
    imgsim_db *db;
    imgsim_model *m = NULL;
    if (cli_open_collection("query", cli_db_dir(dbdir), IMGSIM_DB_READ, &a, &db, image ? &m : NULL) < 0) {
        free(where);
        return 1;
    }
    int rc = 0;
    imgsim_results r = {0};
    if (image) {
        imgsim_ctx *ctx = NULL;
        imgsim_image img = {0};
        imgsim_prep p;
        imgsim_model_prep(m, &p);
        float *vec = malloc(sizeof(float) * (size_t)imgsim_db_dim(db));
        if (!vec || imgsim_ctx_new(m, &ctx, &e) != IMGSIM_OK ||
            imgsim_image_load_file(image, &p, &img, &e) != IMGSIM_OK ||
            imgsim_embed(ctx, &img, 1, vec, NULL, &e) != IMGSIM_OK ||
            imgsim_query_vector(db, vec, &o, &r, &e) != IMGSIM_OK) {
            if (!vec)
                snprintf(e.msg, sizeof e.msg, "out of memory");
            cli_error("query", &e);
            rc = 1;
        }
        imgsim_image_free(&img);
        imgsim_ctx_free(ctx);
        free(vec);
    } else if (imgsim_query_id(db, id, &o, &r, &e) != IMGSIM_OK) {
        cli_error("query", &e);
        rc = 1;
    }
    if (rc == 0) {
        double ms = clock_ms_since(t0);
        if (r.note)
            fprintf(stderr, "imgsim query: note: %s\n", r.note);
        if (json)
            rc = print_json(image, id, &o, &r, ms) < 0;
        else
            print_table(&r, &o);
    }
    imgsim_results_free(&r);
    imgsim_model_close(m);
    imgsim_db_close(db);
    free(where);
    return rc;
bad:
    free(where);
    return 2;
}

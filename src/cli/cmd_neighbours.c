/*
 * cmd_neighbours.c — `imgsim neighbours` (build or refresh the top-k table of every item)
 * and `imgsim export neighbours|vectors` (the table as CSV/JSON, the vectors as .npy + ids).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "core/clock.h"

int cmd_neighbours(int argc, char **argv)
{
    const char *dbdir = NULL;
    int k = 10, threads = 0;
    imgsim_metric m = IMGSIM_METRIC_COSINE;
    imgsim_error e = {0};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            printf("usage: imgsim neighbours [--db DIR] [-k 10] [--metric cosine|l2|l1] [--threads N]\n"
                   "  computes the k most similar items of every item and stores them in the\n"
                   "  collection; kept fresh on later index/remove; `query --id` reads it\n");
            return 0;
        }
        if (strcmp(o, "--db") && strcmp(o, "-k") && strcmp(o, "--metric") && strcmp(o, "--threads")) {
            fprintf(stderr, "imgsim neighbours: unknown option %s\n", o);
            return 2;
        }
        if (!(v = cli_value("neighbours", argc, argv, &i)))
            return 2;
        if (!strcmp(o, "--db"))
            dbdir = v;
        else if (!strcmp(o, "-k"))
            k = atoi(v);
        else if (!strcmp(o, "--threads"))
            threads = atoi(v);
        else if (imgsim_metric_parse(v, &m, &e) != IMGSIM_OK) {
            cli_error("neighbours", &e);
            return 2;
        }
    }
    cli_model_args a = {0};
    imgsim_db *db;
    if (cli_open_collection("neighbours", cli_db_dir(dbdir), IMGSIM_DB_WRITE, &a, &db, NULL) < 0)
        return 1;
    double t0 = clock_now();
    int inc = 0, rc = 0;
    if (imgsim_neighbours_build(db, k, m, threads, &inc, &e) != IMGSIM_OK) {
        cli_error("neighbours", &e);
        rc = 1;
    } else {
        size_t items = 0;
        imgsim_db_count(db, &items, NULL);
        fprintf(stderr, "imgsim neighbours: top-%d %s for %zu vectors (%zu items) %s in %.2f s\n", k,
                imgsim_metric_name(m), imgsim_db_vectors(db), items,
                inc ? "brought up to date" : "computed", clock_now() - t0);
    }
    imgsim_db_close(db);
    return rc;
}

/* ---- export */

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int export_neighbours(imgsim_db *db, FILE *f, int json, int k, imgsim_metric m)
{
    imgsim_error e = {0};
    int tk = 0, fresh = 0;
    imgsim_metric tm;
    if (imgsim_neighbours_info(db, &tk, &tm, &fresh, &e) != IMGSIM_OK) {
        cli_error("export", &e);
        return 1;
    }
    if (!fresh || tk < k || tm != m) {
        fprintf(stderr, "imgsim export: no fresh top-%d %s neighbour table: run imgsim neighbours "
                        "-k %d --metric %s first\n", k, imgsim_metric_name(m), k,
                imgsim_metric_name(m));
        return 1;
    }
    /* every item id, in order */
    imgsim_query_opts o;
    imgsim_query_opts_default(&o);
    o.k = k;
    o.metric = m;
    char **ids = NULL;
    size_t n = 0;
    if (imgsim_db_item_ids(db, &ids, &n, &e) != IMGSIM_OK) {
        cli_error("export", &e);
        return 1;
    }
    if (json)
        fputs("{\n", f);
    else
        fputs("id,rank,neighbour,score\n", f);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        imgsim_results r = {0};
        if (imgsim_query_id(db, ids[i], &o, &r, &e) != IMGSIM_OK) {
            cli_error("export", &e);
            rc = 1;
            break;
        }
        if (json) {
            json_t *key = json_string(ids[i]);
            char *ks = key ? json_dumps(key, JSON_ENCODE_ANY) : NULL;
            fprintf(f, "  %s: [", ks ? ks : "\"?\"");
            free(ks);
            json_decref(key);
            for (int j = 0; j < r.n; j++) {
                json_t *nid = json_string(r.hits[j].item.id);
                char *ns = nid ? json_dumps(nid, JSON_ENCODE_ANY) : NULL;
                fprintf(f, "%s[%s, %.6f]", j ? ", " : "", ns ? ns : "\"?\"", (double)r.hits[j].score);
                free(ns);
                json_decref(nid);
            }
            fprintf(f, "]%s\n", i + 1 < n ? "," : "");
        } else {
            for (int j = 0; j < r.n; j++) {
                csv_field(f, ids[i]);
                fprintf(f, ",%d,", j + 1);
                csv_field(f, r.hits[j].item.id);
                fprintf(f, ",%.6f\n", (double)r.hits[j].score);
            }
        }
        imgsim_results_free(&r);
    }
    if (json && rc == 0)
        fputs("}\n", f);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return rc;
}

static int export_vectors(imgsim_db *db, const char *out)
{
    imgsim_error e = {0};
    char **ids = NULL;
    size_t n = 0;
    if (imgsim_db_item_ids(db, &ids, &n, &e) != IMGSIM_OK) {
        cli_error("export", &e);
        return 1;
    }
    size_t d = (size_t)imgsim_db_dim(db);
    float *v = malloc((n ? n : 1) * d * sizeof *v);
    int rc = 0;
    if (!v) {
        fprintf(stderr, "imgsim export: out of memory for %zu x %zu vectors\n", n, d);
        rc = 1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (imgsim_db_vector(db, ids[i], v + i * d, &e) != IMGSIM_OK) {
            cli_error("export", &e);
            rc = 1;
        }
    if (rc == 0 && imgsim_write_npy(out, v, n, d, &e) != IMGSIM_OK) {
        cli_error("export", &e);
        rc = 1;
    }
    if (rc == 0) {
        size_t l = strlen(out) + 8;
        char *idp = malloc(l);
        FILE *f = idp ? (snprintf(idp, l, "%s.ids", out), fopen(idp, "w")) : NULL;
        if (!f) {
            fprintf(stderr, "imgsim export: cannot write %s.ids\n", out);
            rc = 1;
        } else {
            for (size_t i = 0; i < n; i++)
                fprintf(f, "%s\n", ids[i]);
            if (fclose(f) != 0) {
                fprintf(stderr, "imgsim export: cannot write %s.ids\n", out);
                rc = 1;
            }
        }
        free(idp);
        if (rc == 0)
            fprintf(stderr, "imgsim export: %zu x %zu vectors -> %s (ids in %s.ids)\n", n, d, out, out);
    }
    free(v);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return rc;
}

int cmd_export(int argc, char **argv)
{
    const char *dbdir = NULL, *out = NULL, *format = NULL, *what = NULL;
    int k = 10;
    imgsim_metric m = IMGSIM_METRIC_COSINE;
    imgsim_error e = {0};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            printf("usage: imgsim export neighbours [--format csv|json] [-k 10] [--metric M] [-o FILE]\n"
                   "       imgsim export vectors [--format npy] -o FILE.npy   (ids in FILE.npy.ids)\n"
                   "  --db DIR   collection (default $IMGSIM_DB or ./imgsim.db)\n");
            return 0;
        }
        if (o[0] != '-') {
            if (what) {
                fprintf(stderr, "imgsim export: one of neighbours or vectors\n");
                return 2;
            }
            what = o;
            continue;
        }
        if (strcmp(o, "--db") && strcmp(o, "-o") && strcmp(o, "--output") && strcmp(o, "--format") &&
            strcmp(o, "-k") && strcmp(o, "--metric")) {
            fprintf(stderr, "imgsim export: unknown option %s\n", o);
            return 2;
        }
        if (!(v = cli_value("export", argc, argv, &i)))
            return 2;
        if (!strcmp(o, "--db"))
            dbdir = v;
        else if (!strcmp(o, "-o") || !strcmp(o, "--output"))
            out = v;
        else if (!strcmp(o, "--format"))
            format = v;
        else if (!strcmp(o, "-k"))
            k = atoi(v);
        else if (imgsim_metric_parse(v, &m, &e) != IMGSIM_OK) {
            cli_error("export", &e);
            return 2;
        }
    }
    int vectors = what && !strcmp(what, "vectors"), nbrs = what && !strcmp(what, "neighbours");
    if (!vectors && !nbrs) {
        fprintf(stderr, "usage: imgsim export neighbours|vectors [options] (see --help)\n");
        return 2;
    }
    if (k < 1 || k > IMGSIM_NEIGHBOURS_MAX_K) {
        fprintf(stderr, "imgsim export: -k must be from 1 to %d\n", IMGSIM_NEIGHBOURS_MAX_K);
        return 2;
    }
    if (vectors && ((format && strcmp(format, "npy")) || !out)) {
        fprintf(stderr, "imgsim export vectors: writes --format npy to -o FILE.npy\n");
        return 2;
    }
    if (nbrs && format && strcmp(format, "csv") && strcmp(format, "json")) {
        fprintf(stderr, "imgsim export neighbours: --format csv or json\n");
        return 2;
    }
    cli_model_args a = {0};
    imgsim_db *db;
    if (cli_open_collection("export", cli_db_dir(dbdir), IMGSIM_DB_READ, &a, &db, NULL) < 0)
        return 1;
    int rc;
    if (vectors) {
        rc = export_vectors(db, out);
    } else {
        FILE *f = out ? fopen(out, "w") : stdout;
        if (!f) {
            fprintf(stderr, "imgsim export: cannot write %s\n", out);
            rc = 1;
        } else {
            rc = export_neighbours(db, f, format && !strcmp(format, "json"), k, m);
            if (f != stdout && fclose(f) != 0 && rc == 0) {
                fprintf(stderr, "imgsim export: cannot write %s\n", out);
                rc = 1;
            }
        }
    }
    imgsim_db_close(db);
    return rc;
}

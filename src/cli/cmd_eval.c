/*
 * cmd_eval.c — `imgsim eval`: leave-one-out retrieval quality of a collection (precision@k,
 * recall@k, mAP@k, full mAP; overall and per label), as a table or JSON.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"

static json_t *row_json(const imgsim_eval_row *r, int full)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "n", json_integer((json_int_t)r->n));
    json_object_set_new(o, "p_at_k", json_real(r->p_at_k));
    json_object_set_new(o, "r_at_k", json_real(r->r_at_k));
    json_object_set_new(o, "map_at_k", json_real(r->map_at_k));
    if (full)
        json_object_set_new(o, "map", json_real(r->map));
    return o;
}

int cmd_eval(int argc, char **argv)
{
    const char *dbdir = NULL, *label_col = NULL, *queries = NULL;
    int k = 10, json = 0, full = 1;
    imgsim_metric m = IMGSIM_METRIC_COSINE;
    imgsim_error e = {0};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            printf("usage: imgsim eval [--db DIR] [--label-column C] [-k 10] [--metric cosine|l2|l1]\n"
                   "                   [--queries FILE] [--no-full-map] [--json]\n"
                   "  leave-one-out: every labelled item (or each id in FILE) queries all others;\n"
                   "  a result is relevant when it has the query's label\n");
            return 0;
        }
        if (!strcmp(o, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(o, "--no-full-map")) {
            full = 0;
            continue;
        }
        if (strcmp(o, "--db") && strcmp(o, "-k") && strcmp(o, "--metric") &&
            strcmp(o, "--label-column") && strcmp(o, "--queries")) {
            fprintf(stderr, "imgsim eval: unknown option %s\n", o);
            return 2;
        }
        if (!(v = cli_value("eval", argc, argv, &i)))
            return 2;
        if (!strcmp(o, "--db"))
            dbdir = v;
        else if (!strcmp(o, "-k"))
            k = atoi(v);
        else if (!strcmp(o, "--label-column"))
            label_col = v;
        else if (!strcmp(o, "--queries"))
            queries = v;
        else if (imgsim_metric_parse(v, &m, &e) != IMGSIM_OK) {
            cli_error("eval", &e);
            return 2;
        }
    }
    size_t nq = 0;
    char **qids = NULL;
    if (queries && !(qids = cli_collect_paths("eval", NULL, 0, queries, &nq)))
        return 2;
    cli_model_args a = {0};
    imgsim_db *db;
    if (cli_open_collection("eval", cli_db_dir(dbdir), IMGSIM_DB_READ, &a, &db, NULL) < 0) {
        cli_free_paths(qids, nq);
        return 1;
    }
    imgsim_eval ev;
    int rc = 0;
    if (imgsim_db_eval(db, label_col, k, m, full, (const char *const *)qids, nq, &ev, &e) != IMGSIM_OK) {
        cli_error("eval", &e);
        rc = 1;
    } else if (json) {
        json_t *root = json_object(), *per = json_object();
        json_object_set_new(root, "collection", json_string(cli_db_dir(dbdir)));
        json_object_set_new(root, "model", json_string(imgsim_db_model(db)));
        json_object_set_new(root, "metric", json_string(imgsim_metric_name(m)));
        json_object_set_new(root, "k", json_integer(k));
        json_object_set_new(root, "label_column", json_string(label_col ? label_col : "label"));
        json_object_set_new(root, "unlabelled", json_integer((json_int_t)ev.unlabelled));
        json_object_set_new(root, "overall", row_json(&ev.overall, full));
        for (int i = 0; i < ev.nlabels; i++)
            json_object_set_new(per, ev.labels[i].label, row_json(&ev.labels[i], full));
        json_object_set_new(root, "per_label", per);
        json_object_set_new(root, "seconds", json_real(ev.seconds));
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(root);
    } else {
        printf("%s: %s, leave-one-out, %s, k=%d, label column '%s'%s\n", cli_db_dir(dbdir),
               imgsim_db_model(db), imgsim_metric_name(m), k, label_col ? label_col : "label",
               ev.unlabelled ? " (unlabelled items skipped)" : "");
        printf("%-24s %7s %8s %8s %8s %8s\n", "label", "queries", "P@k", "R@k", "mAP@k",
               full ? "mAP" : "");
        for (int i = 0; i < ev.nlabels; i++) {
            const imgsim_eval_row *r = &ev.labels[i];
            printf("%-24.24s %7zu %8.4f %8.4f %8.4f", r->label, r->n, r->p_at_k, r->r_at_k,
                   r->map_at_k);
            if (full)
                printf(" %8.4f", r->map);
            putchar('\n');
        }
        printf("%-24s %7zu %8.4f %8.4f %8.4f", "overall", ev.overall.n, ev.overall.p_at_k,
               ev.overall.r_at_k, ev.overall.map_at_k);
        if (full)
            printf(" %8.4f", ev.overall.map);
        printf("\n(%.1f s)\n", ev.seconds);
    }
    if (rc == 0)
        imgsim_eval_free(&ev);
    imgsim_db_close(db);
    cli_free_paths(qids, nq);
    return rc;
}

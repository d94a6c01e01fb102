/*
 * evaluate.c — imgsim_db_eval: collects the items of a collection with their labels (the
 * label column or a metadata key), numbers the labels, and runs the leave-one-out metrics of
 * metrics.c over the collection's vectors.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/error.h"
#include "eval/metrics.h"

void imgsim_eval_free(imgsim_eval *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->nlabels; i++)
        free(e->labels[i].label);
    free(e->labels);
    memset(e, 0, sizeof *e);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

imgsim_status imgsim_db_eval(imgsim_db *db, const char *label_column, int k, imgsim_metric m,
                             int full_map, const char *const *query_ids, size_t nq,
                             imgsim_eval *out, imgsim_error *err)
{
    memset(out, 0, sizeof *out);
    if (k < 1 || k > IMGSIM_MAX_K)
        return error_set(err, IMGSIM_E_ARG, "k must be between 1 and %d", IMGSIM_MAX_K);
    double t0 = clock_now();
    imgsim_status s = cat_read_begin(db, err);
    if (s != IMGSIM_OK)
        return s;
    cat_labelled it;
    if ((s = cat_labelled_get(db, label_column, &it, err)) != IMGSIM_OK) {
        cat_read_end(db);
        return s;
    }
    size_t cnt = it.n;
    char **ids = it.ids, **labels = it.labels;
    int *lab = malloc((cnt + 1) * sizeof *lab);
    uint8_t *isq = query_ids ? calloc(cnt + 1, 1) : NULL;
    char **names = malloc((cnt + 1) * sizeof *names);
    eval_result er = {0};
    if (!lab || !names || (query_ids && !isq)) {
        s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
        goto done;
    }
    /* number the labels in sorted order */
    int nl = 0;
    for (size_t i = 0; i < cnt; i++)
        if (labels[i])
            names[nl++] = labels[i];
    qsort(names, (size_t)nl, sizeof *names, cmp_str);
    int u = 0;
    for (int i = 0; i < nl; i++)
        if (u == 0 || strcmp(names[u - 1], names[i]))
            names[u++] = names[i];
    nl = u;
    for (size_t i = 0; i < cnt; i++) {
        lab[i] = -1;
        if (!labels[i]) {
            out->unlabelled++;
            continue;
        }
        char **f = bsearch(&labels[i], names, (size_t)nl, sizeof *names, cmp_str);
        lab[i] = f ? (int)(f - names) : -1;
    }
    if (nl == 0) {
        s = error_set(err, IMGSIM_E_ARG, "no item has a value in column '%s'",
                      label_column ? label_column : "label");
        goto done;
    }
    for (size_t q = 0; query_ids && q < nq; q++) {
        char *const *f = bsearch(&query_ids[q], ids, cnt, sizeof *ids, cmp_str);
        if (!f) {
            s = error_set(err, IMGSIM_E_NOTFOUND, "--queries: no item with id '%s'", query_ids[q]);
            goto done;
        }
        isq[f - ids] = 1;
    }
    exact_set set = cat_set(db);
    if ((s = eval_run(&set, m, it.rows, lab, cnt, nl, isq, k, full_map, 0, &er, err)) !=
        IMGSIM_OK)
        goto done;
    out->k = k;
    out->metric = m;
    out->overall = (imgsim_eval_row){NULL, er.overall.n, er.overall.p_at_k, er.overall.r_at_k,
                                     er.overall.map_at_k, er.overall.map};
    out->labels = calloc((size_t)nl, sizeof *out->labels);
    if (!out->labels) {
        s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
        goto done;
    }
    out->nlabels = nl;
    for (int i = 0; i < nl; i++) {
        const eval_score *e = &er.per_label[i];
        out->labels[i] = (imgsim_eval_row){strdup(names[i]), e->n, e->p_at_k, e->r_at_k,
                                           e->map_at_k, e->map};
        if (!out->labels[i].label) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            goto done;
        }
    }
done:
    cat_read_end(db);
    eval_result_free(&er);
    cat_labelled_free(&it);
    free(lab);
    free(isq);
    free(names);
    if (s != IMGSIM_OK)
        imgsim_eval_free(out);
    out->seconds = clock_now() - t0;
    return s;
}

/*
 * search.c — answering "which k items look most like this?" over a collection.
 *
 * Search runs over distinct vector rows (exact, src/index/exact.c; the collection's HNSW
 * index, catalog/ann.c, when it has one and is large enough or the query asks for it; or the
 * precomputed neighbour table for items of the collection), then each hit row is expanded
 * into the items that use it, in id order, until k items are collected. --where conditions
 * become a bitmap of candidate rows (the HNSW search's filter too) plus the same filter on
 * the expansion (catalog/catalog.h: cat_filter), so every returned item satisfies them.
 * --category auto first
 * predicts the query's label by a vote of its nearest labelled items and then searches only
 * among items with that label.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "core/error.h"

#define VOTERS 10

void imgsim_query_opts_default(imgsim_query_opts *o)
{
    memset(o, 0, sizeof *o);
    o->k = 10;
    o->metric = IMGSIM_METRIC_COSINE;
}

void imgsim_results_free(imgsim_results *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        imgsim_item_free(&r->hits[i].item);
    free(r->hits);
    free(r->predicted_label);
    free(r->note);
    memset(r, 0, sizeof *r);
}

/* Append the items of the hit rows passing `c` to `out` until it holds k; `skip_id` is left
 * out. */
static imgsim_status expand(imgsim_db *db, const cat_filter *c, const exact_hit *hits, int nh,
                            int k, const char *skip_id, imgsim_results *out, imgsim_error *err)
{
    cat_row_items *it;
    imgsim_status s = cat_row_items_open(db, c, &it, err);
    if (s != IMGSIM_OK)
        return s;
    if (!out->hits && !(out->hits = calloc((size_t)k, sizeof *out->hits))) {
        cat_row_items_close(it);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    for (int h = 0; h < nh && out->n < k && s == IMGSIM_OK; h++) {
        cat_row_items_seek(it, hits[h].row);
        int got = 1;
        while (out->n < k && s == IMGSIM_OK) {
            imgsim_hit *x = &out->hits[out->n];
            if ((s = cat_row_items_next(it, &x->item, &got, err)) != IMGSIM_OK || !got)
                break;
            if (skip_id && !strcmp(x->item.id, skip_id)) {
                imgsim_item_free(&x->item);
                continue;
            }
            x->score = hits[h].score;
            out->n++;
        }
    }
    cat_row_items_close(it);
    return s;
}

static void set_note(imgsim_results *out, const char *why)
{
    if (out->note || !why)
        return;
    size_t n = strlen(why) + 32;
    if ((out->note = malloc(n)))
        snprintf(out->note, n, "%s: exact search", why);
}

/* The k rows nearest `q` among those passing `filter` (NULL: all), `exclude` left out:
 * through the HNSW index when it exists and the collection is large enough (or the query
 * asks for it), else exactly. */
static imgsim_status find_rows(imgsim_db *db, const imgsim_query_opts *o, const float *q,
                               int k, const uint8_t *filter, uint32_t exclude, exact_hit *hits,
                               int *nh, imgsim_results *out, imgsim_error *err)
{
    *nh = 0;
    exact_set set = cat_set(db);
    if (set.n == 0)
        return IMGSIM_OK;
    imgsim_status s;
    int forced = o->mode == IMGSIM_SEARCH_ANN;
    if (forced || (o->mode == IMGSIM_SEARCH_AUTO && imgsim_db_vectors(db) >= IMGSIM_ANN_AUTO_ROWS &&
                   o->metric != IMGSIM_METRIC_L1)) {
        int used = 0;
        const char *why = NULL;
        s = ann_search(db, o->metric, q, k, o->ef, filter, exclude, hits, nh, &used, &why, err);
        if (s != IMGSIM_OK)
            return s;
        if (used) {
            out->from_ann = 1;
            return IMGSIM_OK;
        }
        if (!why && forced)
            why = "the collection has no HNSW index (imgsim ann build makes one)";
        set_note(out, why);
    }
    uint32_t ex = exclude;
    return exact_search(&set, o->metric, q, 1, k, filter, &ex, 0, hits, nh, err);
}

/* Predict the label of vector `q` (or of row `self`, excluded): a vote of the labels of the
 * VOTERS nearest labelled items; ties go to the larger summed closeness. */
static imgsim_status predict(imgsim_db *db, const float *q, uint32_t self, const cat_filter *c,
                             const imgsim_query_opts *o, imgsim_results *out, imgsim_error *err)
{
    imgsim_metric m = o->metric;
    uint8_t *rows = NULL;
    cat_filter any = {c->w, c->nw, NULL, 1};
    imgsim_status s = cat_filter_rows(db, &any, &rows, err);
    if (s != IMGSIM_OK)
        return s;
    exact_hit hits[VOTERS];
    int nh = 0;
    s = find_rows(db, o, q, VOTERS, rows, self, hits, &nh, out, err);
    free(rows);
    if (s != IMGSIM_OK)
        return s;
    imgsim_results voters = {0};
    if ((s = expand(db, &any, hits, nh, VOTERS, NULL, &voters, err)) != IMGSIM_OK) {
        imgsim_results_free(&voters);
        return s;
    }
    int best = -1, best_votes = 0, nvoters = 0;
    double best_weight = 0;
    for (int i = 0; i < voters.n; i++) {
        const char *li = voters.hits[i].item.label;
        if (!li)
            continue;
        nvoters++;
        int seen = 0;
        for (int j = 0; j < i; j++)
            if (voters.hits[j].item.label && !strcmp(voters.hits[j].item.label, li))
                seen = 1;
        if (seen)
            continue;
        int votes = 0;
        double weight = 0;
        for (int j = i; j < voters.n; j++)
            if (voters.hits[j].item.label && !strcmp(voters.hits[j].item.label, li)) {
                votes++;
                float sc = voters.hits[j].score;
                weight += m == IMGSIM_METRIC_COSINE ? sc : 1.0 / (1.0 + sc);
            }
        if (votes > best_votes || (votes == best_votes && weight > best_weight)) {
            best = i;
            best_votes = votes;
            best_weight = weight;
        }
    }
    if (best < 0) {
        imgsim_results_free(&voters);
        return error_set(err, IMGSIM_E_NOTFOUND,
                         "--category auto: no labelled items near the query (index with labels)");
    }
    out->predicted_label = strdup(voters.hits[best].item.label);
    out->votes = best_votes;
    out->voters = nvoters;
    imgsim_results_free(&voters);
    return out->predicted_label ? IMGSIM_OK : error_set(err, IMGSIM_E_NOMEM, "out of memory");
}

static imgsim_status check_opts(const imgsim_db *db, const imgsim_query_opts *o, imgsim_error *err)
{
    if (o->k < 1 || o->k > IMGSIM_MAX_K)
        return error_set(err, IMGSIM_E_ARG, "k must be between 1 and %d", IMGSIM_MAX_K);
    if (o->metric != IMGSIM_METRIC_COSINE && o->metric != IMGSIM_METRIC_L2 &&
        o->metric != IMGSIM_METRIC_L1)
        return error_set(err, IMGSIM_E_ARG, "unknown metric");
    if (o->mode != IMGSIM_SEARCH_AUTO && o->mode != IMGSIM_SEARCH_EXACT &&
        o->mode != IMGSIM_SEARCH_ANN)
        return error_set(err, IMGSIM_E_ARG, "unknown search mode");
    if (o->ef < 0 || o->ef > IMGSIM_MAX_EF)
        return error_set(err, IMGSIM_E_ARG, "ef must be between 1 and %d", IMGSIM_MAX_EF);
    (void)db;
    return IMGSIM_OK;
}

/* Shared by both entry points. `self` is the query's own row (EXACT_NO_ROW for a new image):
 * its other items come first, with the self-score. */
static imgsim_status run_query(imgsim_db *db, const float *q, uint32_t self, const char *self_id,
                               const imgsim_query_opts *o, imgsim_results *out,
                               imgsim_error *err)
{
    cat_filter c = {o->where, o->nwhere, NULL, 0};
    imgsim_status s;
    if (o->category_auto) {
        if ((s = predict(db, q, self, &c, o, out, err)) != IMGSIM_OK)
            return s;
        c.label = out->predicted_label;
    }
    if (self != EXACT_NO_ROW) {
        float na = cat_set(db).norms[self];
        exact_hit me = {self, exact_key_to_score(o->metric, exact_key(o->metric, q, na, q, na,
                                                                      imgsim_db_dim(db)))};
        if ((s = expand(db, &c, &me, 1, o->k, self_id, out, err)) != IMGSIM_OK)
            return s;
    }
    if (out->n >= o->k)
        return IMGSIM_OK;

    /* From the neighbour table, when it answers this exact question. */
    int tk = 0, fresh = 0;
    imgsim_metric tm;
    int table = self != EXACT_NO_ROW && !o->no_table && o->mode == IMGSIM_SEARCH_AUTO &&
                !c.label && c.nw == 0;
    if (table && (s = imgsim_neighbours_info(db, &tk, &tm, &fresh, err)) != IMGSIM_OK)
        return s;
    if (table && fresh && tm == o->metric && tk >= o->k - out->n) {
        exact_hit *hits = malloc((size_t)tk * sizeof *hits);
        if (!hits)
            return error_set(err, IMGSIM_E_NOMEM, "out of memory");
        int nh = nbr_read(db, self, hits, tk);
        if (nh >= 0) {
            out->from_table = 1;
            s = expand(db, &c, hits, nh, o->k, NULL, out, err);
            free(hits);
            return s;
        }
        free(hits);
    }

    uint8_t *rows = NULL;
    if ((s = cat_filter_rows(db, &c, &rows, err)) != IMGSIM_OK)
        return s;
    /* k rows always hold k items (every candidate row has at least one matching item) */
    int want = o->k - out->n;
    exact_hit *hits = malloc((size_t)want * sizeof *hits);
    if (!hits) {
        free(rows);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    int nh = 0;
    s = find_rows(db, o, q, want, rows, self, hits, &nh, out, err);
    if (s == IMGSIM_OK)
        s = expand(db, &c, hits, nh, o->k, NULL, out, err);
    free(hits);
    free(rows);
    return s;
}

/* Both entry points: defaults, checks, one read snapshot; `id` (an item) or `vec` (a new
 * vector) is the query. */
static imgsim_status query(imgsim_db *db, const float *vec, const char *id,
                           const imgsim_query_opts *o, imgsim_results *out, imgsim_error *err)
{
    imgsim_query_opts d;
    memset(out, 0, sizeof *out);
    if (!o) {
        imgsim_query_opts_default(&d);
        o = &d;
    }
    imgsim_status s = check_opts(db, o, err);
    if (s == IMGSIM_OK && (s = cat_read_begin(db, err)) == IMGSIM_OK) {
        uint32_t row = EXACT_NO_ROW;
        if (id && (s = cat_item_row(db, id, &row, err)) == IMGSIM_OK)
            vec = vec_row(db, row);
        if (s == IMGSIM_OK)
            s = run_query(db, vec, row, id, o, out, err);
        cat_read_end(db);
    }
    if (s != IMGSIM_OK)
        imgsim_results_free(out);
    return s;
}

imgsim_status imgsim_query_vector(imgsim_db *db, const float *vec, const imgsim_query_opts *o,
                                  imgsim_results *out, imgsim_error *err)
{
    return query(db, vec, NULL, o, out, err);
}

imgsim_status imgsim_query_id(imgsim_db *db, const char *id, const imgsim_query_opts *o,
                              imgsim_results *out, imgsim_error *err)
{
    return query(db, NULL, id, o, out, err);
}

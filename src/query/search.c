/*
 * search.c — answering "which k items look most like this?" over a collection.
 *
 * Search runs over distinct vector rows (exact, src/index/exact.c; the collection's HNSW
 * index, catalog/ann.c, when it has one and is large enough or the query asks for it; or the
 * precomputed neighbour table for items of the collection), then each hit row is expanded
 * into the items that use it, in id order, until k items are collected. --where conditions
 * become a bitmap of candidate rows (the HNSW search's filter too) plus the same SQL
 * condition on the expansion, so every returned item satisfies them. --category auto first
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
        imgsim_item_clear(&r->hits[i].item);
    free(r->hits);
    free(r->predicted_label);
    free(r->note);
    memset(r, 0, sizeof *r);
}

/* The candidate filter: --where, and the predicted label when given. */
typedef struct cond {
    const imgsim_where *w;
    int nw;
    const char *label;
    int labelled;        /* only items that have a label (the voters of --category auto) */
} cond;

static imgsim_status cond_sql(const cond *c, char **sql, imgsim_error *err)
{
    char *base;
    imgsim_status s = cat_where_sql(c->w, c->nw, &base, err);
    if (s != IMGSIM_OK)
        return s;
    size_t n = strlen(base) + 200;
    *sql = malloc(n);
    if (!*sql) {
        free(base);
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    }
    snprintf(*sql, n, "SELECT " ITEM_COLS " FROM items WHERE row = ? AND %s%s%s ORDER BY id",
             base, c->labelled ? " AND label IS NOT NULL" : "", c->label ? " AND label = ?" : "");
    free(base);
    return IMGSIM_OK;
}

static imgsim_status cond_rows(imgsim_db *db, const cond *c, uint8_t **rows, imgsim_error *err)
{
    *rows = NULL;
    if (c->nw == 0 && !c->label)
        return IMGSIM_OK;
    imgsim_where *all = malloc(((size_t)c->nw + 1) * sizeof *all);
    if (!all)
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    if (c->nw)
        memcpy(all, c->w, (size_t)c->nw * sizeof *all);
    int n = c->nw;
    if (c->label)
        all[n++] = (imgsim_where){"label", c->label};
    imgsim_status s = cat_where_rows(db, all, n, 0, rows, err);
    free(all);
    return s;
}

/* Append the items of the hit rows to `out` until it holds k; `skip_id` is left out. */
static imgsim_status expand(imgsim_db *db, const cond *c, const exact_hit *hits, int nh, int k,
                            const char *skip_id, imgsim_results *out, imgsim_error *err)
{
    char *sql;
    imgsim_status s = cond_sql(c, &sql, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_stmt *st;
    s = cat_prepare(db, sql, &st, err);
    free(sql);
    if (s != IMGSIM_OK)
        return s;
    if (!out->hits && !(out->hits = calloc((size_t)k, sizeof *out->hits))) {
        sqlite3_finalize(st);
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    }
    for (int h = 0; h < nh && out->n < k && s == IMGSIM_OK; h++) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        sqlite3_bind_int64(st, 1, hits[h].row);
        if (cat_where_bind(st, 2, c->w, c->nw) != IMGSIM_OK) {
            s = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        if (c->label) {
            int np = sqlite3_bind_parameter_count(st);
            sqlite3_bind_text(st, np, c->label, -1, SQLITE_STATIC);
        }
        int rc = SQLITE_DONE;
        while (out->n < k && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            if (skip_id && id && !strcmp(id, skip_id))
                continue;
            imgsim_hit *x = &out->hits[out->n];
            if (cat_item_read(st, 0, &x->item) != IMGSIM_OK) {
                s = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
                break;
            }
            x->score = hits[h].score;
            out->n++;
        }
        if (s == IMGSIM_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
            s = cat_sql_fail(db, err, "cannot read items");
    }
    sqlite3_finalize(st);
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
    if (db->nrows == 0)
        return IMGSIM_OK;
    imgsim_status s;
    int forced = o->ann || o->ef > 0;
    if (!o->exact && (forced || (db->nalive >= IMGSIM_ANN_AUTO_ROWS &&
                                  o->metric != IMGSIM_METRIC_L1))) {
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
    exact_set set = cat_set(db);
    uint32_t ex = exclude;
    return exact_search(&set, o->metric, q, 1, k, filter, &ex, 0, hits, nh, err);
}

/* Predict the label of vector `q` (or of row `self`, excluded): a vote of the labels of the
 * VOTERS nearest labelled items; ties go to the larger summed closeness. */
static imgsim_status predict(imgsim_db *db, const float *q, uint32_t self, const cond *c,
                             const imgsim_query_opts *o, imgsim_results *out, imgsim_error *err)
{
    imgsim_metric m = o->metric;
    uint8_t *rows = NULL;
    imgsim_status s = cat_where_rows(db, c->w, c->nw, 1, &rows, err);
    if (s != IMGSIM_OK)
        return s;
    exact_hit hits[VOTERS];
    int nh = 0;
    s = find_rows(db, o, q, VOTERS, rows, self, hits, &nh, out, err);
    free(rows);
    if (s != IMGSIM_OK)
        return s;
    imgsim_results voters = {0};
    cond any = {c->w, c->nw, NULL, 1};
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
        return imgsim_fail(err, IMGSIM_E_NOTFOUND,
                           "--category auto: no labelled items near the query (index with labels)");
    }
    out->predicted_label = strdup(voters.hits[best].item.label);
    out->votes = best_votes;
    out->voters = nvoters;
    imgsim_results_free(&voters);
    return out->predicted_label ? IMGSIM_OK : imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
}

static imgsim_status check_opts(const imgsim_db *db, const imgsim_query_opts *o, imgsim_error *err)
{
    if (o->k < 1 || o->k > 10000)
        return imgsim_fail(err, IMGSIM_E_ARG, "k must be between 1 and 10000");
    if (o->metric != IMGSIM_METRIC_COSINE && o->metric != IMGSIM_METRIC_L2 &&
        o->metric != IMGSIM_METRIC_L1)
        return imgsim_fail(err, IMGSIM_E_ARG, "unknown metric");
    if (o->ef < 0 || o->ef > 10000)
        return imgsim_fail(err, IMGSIM_E_ARG, "ef must be between 1 and 10000");
    (void)db;
    return IMGSIM_OK;
}

/* Shared by both entry points. `self` is the query's own row (EXACT_NO_ROW for a new image):
 * its other items come first, with the self-score. */
static imgsim_status run_query(imgsim_db *db, const float *q, uint32_t self, const char *self_id,
                               const imgsim_query_opts *o, imgsim_results *out,
                               imgsim_error *err)
{
    cond c = {o->where, o->nwhere, NULL, 0};
    imgsim_status s;
    if (o->category_auto) {
        if ((s = predict(db, q, self, &c, o, out, err)) != IMGSIM_OK)
            return s;
        c.label = out->predicted_label;
    }
    if (self != EXACT_NO_ROW) {
        float na = db->norms[self];
        exact_hit me = {self, exact_key_to_score(o->metric,
                                                 exact_key(o->metric, q, na, q, na, db->dim))};
        if ((s = expand(db, &c, &me, 1, o->k, self_id, out, err)) != IMGSIM_OK)
            return s;
    }
    if (out->n >= o->k)
        return IMGSIM_OK;

    /* From the neighbour table, when it answers this exact question. */
    int tk = 0, fresh = 0;
    imgsim_metric tm;
    if (self != EXACT_NO_ROW && !o->no_table && !o->exact && !o->ann && o->ef <= 0 && !c.label &&
        c.nw == 0 &&
        imgsim_neighbours_info(db, &tk, &tm, &fresh) && fresh && tm == o->metric &&
        tk >= o->k - out->n) {
        exact_hit *hits = malloc((size_t)tk * sizeof *hits);
        if (!hits)
            return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
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
    if ((s = cond_rows(db, &c, &rows, err)) != IMGSIM_OK)
        return s;
    /* k rows always hold k items (every candidate row has at least one matching item) */
    int want = o->k - out->n;
    exact_hit *hits = malloc((size_t)want * sizeof *hits);
    if (!hits) {
        free(rows);
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
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

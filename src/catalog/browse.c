/*
 * browse.c — read-only views of a collection for browsing (the server's /api/labels,
 * /api/random and /api/stats): labels with their counts, a random sample of items, and a
 * one-snapshot summary.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog/internal.h"
#include "core/error.h"
#include "core/grow.h"

void imgsim_labels_free(imgsim_label_count *l, size_t n)
{
    if (!l)
        return;
    for (size_t i = 0; i < n; i++)
        free(l[i].label);
    free(l);
}

void imgsim_items_free(imgsim_item *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        imgsim_item_free(&items[i]);
    free(items);
}

imgsim_status imgsim_db_labels(imgsim_db *db, imgsim_label_count **out, size_t *n,
                               imgsim_error *err)
{
    *out = NULL;
    *n = 0;
    imgsim_status s = cat_read_begin(db, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_stmt *st = NULL;
    imgsim_label_count *v = NULL;
    size_t cnt = 0, cap = 0;
    s = cat_prepare(db, "SELECT label, count(*) FROM items WHERE label IS NOT NULL "
                        "GROUP BY label ORDER BY label", &st, err);
    int rc = SQLITE_DONE;
    while (s == IMGSIM_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow_array((void **)&v, &cap, cnt + 1, sizeof *v, 32)) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        const unsigned char *t = sqlite3_column_text(st, 0);
        v[cnt].label = strdup(t ? (const char *)t : "");
        v[cnt].count = (size_t)sqlite3_column_int64(st, 1);
        if (!v[cnt].label) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        cnt++;
    }
    if (s == IMGSIM_OK && rc != SQLITE_DONE)
        s = cat_sql_fail(db, err, "cannot list labels");
    sqlite3_finalize(st);
    cat_read_end(db);
    if (s != IMGSIM_OK) {
        imgsim_labels_free(v, cnt);
        return s;
    }
    *out = v;
    *n = cnt;
    return IMGSIM_OK;
}

imgsim_status imgsim_db_random(imgsim_db *db, size_t n, const char *label, imgsim_item **out,
                               size_t *nout, imgsim_error *err)
{
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return IMGSIM_OK;
    imgsim_status s = cat_read_begin(db, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_stmt *st = NULL;
    imgsim_item *v = NULL;
    size_t cnt = 0;
    s = cat_prepare(db, label ? "SELECT " ITEM_COLS " FROM items WHERE label = ? "
                                "ORDER BY random() LIMIT ?"
                              : "SELECT " ITEM_COLS " FROM items ORDER BY random() LIMIT ?",
                    &st, err);
    if (s == IMGSIM_OK && !(v = calloc(n, sizeof *v)))
        s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
    if (s == IMGSIM_OK) {
        int i = 1;
        if (label)
            sqlite3_bind_text(st, i++, label, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, i, (sqlite3_int64)n);
        int rc;
        while (cnt < n && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (cat_item_read(st, 0, &v[cnt]) != IMGSIM_OK) {
                s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
                break;
            }
            cnt++;
        }
        if (s == IMGSIM_OK && cnt < n && rc != SQLITE_DONE)
            s = cat_sql_fail(db, err, "cannot sample items");
    }
    sqlite3_finalize(st);
    cat_read_end(db);
    if (s != IMGSIM_OK) {
        imgsim_items_free(v, cnt);
        return s;
    }
    *out = v;
    *nout = cnt;
    return IMGSIM_OK;
}

imgsim_status imgsim_db_stats_get(imgsim_db *db, imgsim_db_stats *out, imgsim_error *err)
{
    memset(out, 0, sizeof *out);
    imgsim_status s = cat_read_begin(db, err);
    if (s != IMGSIM_OK)
        return s;
    out->vectors = db->nalive;
    out->dim = db->dim;
    out->model = db->model;
    if ((s = imgsim_db_count(db, &out->items, err)) == IMGSIM_OK &&
        (s = cat_count(db, "SELECT count(DISTINCT label) FROM items WHERE label IS NOT NULL",
                       &out->labels, err)) == IMGSIM_OK)
        s = imgsim_neighbours_info(db, &out->table_k, &out->table_metric, &out->table_fresh, err);
    out->has_table = out->table_k > 0;
    cat_read_end(db);
    return s;
}

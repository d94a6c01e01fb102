/*
 * rows.c — typed reads of catalogue rows for ingest (an item's recorded file stamp, the row
 * of a content key, an item size of a row, every item's source) and for evaluation (the
 * items with their labels), so that no SQL lives outside catalog/.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog/internal.h"
#include "core/error.h"
#include "core/grow.h"

void cat_item_file_free(cat_item_file *f)
{
    if (!f)
        return;
    free(f->source);
    free(f->label);
    free(f->meta_json);
    memset(f, 0, sizeof *f);
    f->row = -1;
}

imgsim_status cat_item_file_get(imgsim_db *db, const char *id, cat_item_file *out,
                                imgsim_error *err)
{
    memset(out, 0, sizeof *out);
    out->row = -1;
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_Q_ITEM_FILE, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->row = sqlite3_column_int64(st, 0);
        out->source = cat_column_dup(st, 1);
        out->size = sqlite3_column_int64(st, 2);
        out->mtime_ns = sqlite3_column_int64(st, 3);
        out->label = cat_column_dup(st, 4);
        out->meta_json = cat_column_dup(st, 5);
        out->has_box = sqlite3_column_type(st, 8) != SQLITE_NULL;
        for (int k = 0; k < 4; k++)
            out->box[k] = sqlite3_column_int(st, 6 + k);
        if ((!out->source && sqlite3_column_type(st, 1) != SQLITE_NULL) ||
            (!out->label && sqlite3_column_type(st, 4) != SQLITE_NULL) ||
            (!out->meta_json && sqlite3_column_type(st, 5) != SQLITE_NULL)) {
            cat_item_file_free(out);
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
        }
    } else if (rc != SQLITE_DONE) {
        s = cat_sql_fail(db, err, "cannot read an item");
    }
    sqlite3_reset(st);
    return s;
}

imgsim_status cat_key_row(imgsim_db *db, const char *key, long long *row, imgsim_error *err)
{
    *row = -1;
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_Q_KEY_ROW, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *row = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        s = cat_sql_fail(db, err, "cannot read a vector");
    sqlite3_reset(st);
    return s;
}

imgsim_status cat_row_size(imgsim_db *db, uint32_t row, int *w, int *h, imgsim_error *err)
{
    *w = *h = 0;
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_Q_ROW_SIZE, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_int64(st, 1, row);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *w = sqlite3_column_int(st, 0);
        *h = sqlite3_column_int(st, 1);
    } else if (rc != SQLITE_DONE) {
        s = cat_sql_fail(db, err, "cannot read items");
    }
    sqlite3_reset(st);
    return s;
}

imgsim_status cat_item_sources(imgsim_db *db, cat_source_fn fn, void *user, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, "SELECT id, source FROM items", &st, err);
    if (s != IMGSIM_OK)
        return s;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
           (s = fn(user, (const char *)sqlite3_column_text(st, 0),
                   (const char *)sqlite3_column_text(st, 1), err)) == IMGSIM_OK) {
    }
    sqlite3_finalize(st);
    if (s == IMGSIM_OK && rc != SQLITE_DONE)
        s = cat_sql_fail(db, err, "cannot list items");
    return s;
}

void cat_labelled_free(cat_labelled *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->ids[i]);
        free(l->labels[i]);
    }
    free(l->ids);
    free(l->labels);
    free(l->rows);
    memset(l, 0, sizeof *l);
}

/* Room for one more item. */
static int labelled_grow(cat_labelled *l, size_t *cap)
{
    /* three arrays, one capacity: each grows on its own copy, the shared one moves last */
    size_t need = l->n + 1, c1 = *cap, c2 = *cap, c3 = *cap;
    if (grow_array((void **)&l->ids, &c1, need, sizeof *l->ids, 1024) ||
        grow_array((void **)&l->labels, &c2, need, sizeof *l->labels, 1024) ||
        grow_array((void **)&l->rows, &c3, need, sizeof *l->rows, 1024))
        return -1;
    *cap = c1;
    return 0;
}

imgsim_status cat_labelled_get(imgsim_db *db, const char *column, cat_labelled *out,
                               imgsim_error *err)
{
    memset(out, 0, sizeof *out);
    int plain = !column || !strcmp(column, "label");
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, plain ? "SELECT id, row, label FROM items ORDER BY id"
                                            : "SELECT id, row, (SELECT CAST(value AS TEXT) FROM "
                                              "json_each(items.meta) WHERE key = ?) FROM items "
                                              "ORDER BY id",
                                  &st, err);
    if (s != IMGSIM_OK)
        return s;
    if (!plain)
        sqlite3_bind_text(st, 1, column, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 r = sqlite3_column_int64(st, 1);
        if (r < 0 || (size_t)r >= db->nrows || !db->alive[r])
            continue;
        if (labelled_grow(out, &cap) < 0) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        const char *l = (const char *)sqlite3_column_text(st, 2);
        size_t i = out->n;
        out->ids[i] = strdup((const char *)sqlite3_column_text(st, 0));
        out->labels[i] = l && *l ? strdup(l) : NULL;
        out->rows[i] = (uint32_t)r;
        out->n++;
        if (!out->ids[i] || (l && *l && !out->labels[i])) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
    }
    sqlite3_finalize(st);
    if (s == IMGSIM_OK && rc != SQLITE_DONE)
        s = cat_sql_fail(db, err, "cannot read items");
    if (s != IMGSIM_OK)
        cat_labelled_free(out);
    return s;
}

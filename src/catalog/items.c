/*
 * items.c — catalogue items: reading them, finding an item's vector row, removing them
 * (imgsim_db_remove: the delete transaction is in write.c), and the query filter: --where
 * conditions (plus a label) turned into SQL, into a bitmap of candidate vector rows and into
 * the walk over one row's items that a query's hits are expanded with.
 *
 * --where columns: the item columns id, source, hash, label, width, height, model; anything
 * else is a key of the item's metadata object (the extra CSV columns), matched with json_each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/internal.h"
#include "core/error.h"
#include "core/grow.h"

char *cat_column_dup(sqlite3_stmt *st, int c)
{
    const unsigned char *t = sqlite3_column_text(st, c);
    return t ? strdup((const char *)t) : NULL;
}

void imgsim_item_free(imgsim_item *it)
{
    if (!it)
        return;
    free(it->id);
    free(it->source);
    free(it->hash);
    free(it->label);
    free(it->meta_json);
    memset(it, 0, sizeof *it);
}

imgsim_status cat_item_read(sqlite3_stmt *st, int c, imgsim_item *out)
{
    memset(out, 0, sizeof *out);
    out->id = cat_column_dup(st, c + 0);
    out->source = cat_column_dup(st, c + 1);
    out->hash = cat_column_dup(st, c + 2);
    out->label = cat_column_dup(st, c + 3);
    out->meta_json = cat_column_dup(st, c + 4);
    out->width = sqlite3_column_int(st, c + 5);
    out->height = sqlite3_column_int(st, c + 6);
    out->has_box = sqlite3_column_type(st, c + 9) != SQLITE_NULL;
    for (int i = 0; i < 4; i++)
        out->box[i] = sqlite3_column_int(st, c + 7 + i);
    out->added = sqlite3_column_double(st, c + 11);
    if (!out->id || !out->source || !out->hash ||
        (sqlite3_column_type(st, c + 3) != SQLITE_NULL && !out->label) ||
        (sqlite3_column_type(st, c + 4) != SQLITE_NULL && !out->meta_json)) {
        imgsim_item_free(out);
        return IMGSIM_E_NOMEM;
    }
    return IMGSIM_OK;
}

imgsim_status imgsim_db_get(imgsim_db *db, const char *id, imgsim_item *out, imgsim_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, "SELECT " ITEM_COLS " FROM items WHERE id = ?", &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (cat_item_read(st, 0, out) != IMGSIM_OK)
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        s = error_set(err, IMGSIM_E_NOTFOUND, "no item with id '%s'", id);
    } else {
        s = cat_sql_fail(db, err, "cannot read an item");
    }
    sqlite3_finalize(st);
    return s;
}

imgsim_status cat_item_row(imgsim_db *db, const char *id, uint32_t *row, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_Q_ITEM_ROW, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 r = sqlite3_column_int64(st, 0);
        if (r < 0 || (size_t)r >= db->nrows || !db->alive[r])
            s = error_set(err, IMGSIM_E_IO, "%s: item '%s' names a missing vector row", db->dir,
                          id);
        else
            *row = (uint32_t)r;
    } else if (rc == SQLITE_DONE) {
        s = error_set(err, IMGSIM_E_NOTFOUND, "no item with id '%s'", id);
    } else {
        s = cat_sql_fail(db, err, "cannot read an item");
    }
    sqlite3_reset(st);
    return s;
}

imgsim_status imgsim_db_vector(imgsim_db *db, const char *id, float *out, imgsim_error *err)
{
    uint32_t r;
    imgsim_status s = cat_item_row(db, id, &r, err);
    if (s == IMGSIM_OK)
        memcpy(out, vec_row(db, r), sizeof(float) * (size_t)db->dim);
    return s;
}

/* ---- --where */

static const char *const plain_cols[] = {"id", "source", "hash", "label", "width", "height",
                                         "model"};

static int plain_col(const char *c)
{
    for (size_t i = 0; i < sizeof plain_cols / sizeof *plain_cols; i++)
        if (!strcmp(c, plain_cols[i]))
            return 1;
    return 0;
}

imgsim_status cat_where_sql(const imgsim_where *w, int nw, char **sql, imgsim_error *err)
{
    size_t cap = 32 + (size_t)nw * 96, len = 0;
    char *s = malloc(cap);
    if (!s)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    len += (size_t)snprintf(s, cap, "1");
    for (int i = 0; i < nw; i++) {
        if (!w[i].column || !*w[i].column || !w[i].value) {
            free(s);
            return error_set(err, IMGSIM_E_ARG, "--where needs COLUMN=VALUE");
        }
        if (plain_col(w[i].column))
            len += (size_t)snprintf(s + len, cap - len, " AND CAST(%s AS TEXT) = ?", w[i].column);
        else /* a metadata key: bound, never part of the SQL text; json_each matches any key */
            len += (size_t)snprintf(s + len, cap - len,
                                    " AND EXISTS (SELECT 1 FROM json_each(items.meta) WHERE "
                                    "key = ? AND CAST(value AS TEXT) = ?)");
    }
    *sql = s;
    return IMGSIM_OK;
}

void cat_where_bind(sqlite3_stmt *st, int first, const imgsim_where *w, int nw)
{
    int k = first;
    for (int i = 0; i < nw; i++) {
        if (!plain_col(w[i].column))
            sqlite3_bind_text(st, k++, w[i].column, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k++, w[i].value, -1, SQLITE_STATIC);
    }
}

/* "SELECT <cols> FROM items WHERE <pre><where>[ AND label IS NOT NULL][ AND label = ?]
 * <tail>" */
static imgsim_status filter_sql(const cat_filter *f, const char *cols, const char *pre,
                                const char *tail, char **sql, imgsim_error *err)
{
    char *cond;
    imgsim_status s = cat_where_sql(f->w, f->nw, &cond, err);
    if (s != IMGSIM_OK)
        return s;
    size_t n = strlen(cols) + strlen(pre) + strlen(cond) + strlen(tail) + 96;
    if (!(*sql = malloc(n))) {
        free(cond);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    snprintf(*sql, n, "SELECT %s FROM items WHERE %s%s%s%s%s", cols, pre, cond,
             f->labelled ? " AND label IS NOT NULL" : "", f->label ? " AND label = ?" : "", tail);
    free(cond);
    return IMGSIM_OK;
}

/* Prepare the filter's statement and bind the filter's values; `pre` (ending in " AND ")
 * holds `first` - 1 parameters of the caller's, bound by the caller. */
static imgsim_status filter_prepare(imgsim_db *db, const cat_filter *f, const char *cols,
                                    const char *pre, const char *tail, int first,
                                    sqlite3_stmt **st, imgsim_error *err)
{
    char *sql;
    imgsim_status s = filter_sql(f, cols, pre, tail, &sql, err);
    if (s != IMGSIM_OK)
        return s;
    s = cat_prepare(db, sql, st, err);
    free(sql);
    if (s != IMGSIM_OK)
        return s;
    cat_where_bind(*st, first, f->w, f->nw);
    if (f->label)
        sqlite3_bind_text(*st, sqlite3_bind_parameter_count(*st), f->label, -1, SQLITE_STATIC);
    return IMGSIM_OK;
}

imgsim_status cat_filter_rows(imgsim_db *db, const cat_filter *f, uint8_t **rows,
                              imgsim_error *err)
{
    *rows = NULL;
    if (f->nw == 0 && !f->label && !f->labelled)
        return IMGSIM_OK;
    uint8_t *bm = calloc(db->nrows ? db->nrows : 1, 1);
    if (!bm)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    sqlite3_stmt *st;
    imgsim_status s = filter_prepare(db, f, "DISTINCT row", "", "", 1, &st, err);
    if (s != IMGSIM_OK) {
        free(bm);
        return s;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 r = sqlite3_column_int64(st, 0);
        if (r >= 0 && (size_t)r < db->nrows)
            bm[r] = 1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(bm);
        return cat_sql_fail(db, err, "cannot evaluate --where");
    }
    *rows = bm;
    return IMGSIM_OK;
}

struct cat_row_items {
    imgsim_db *db;
    sqlite3_stmt *st;
    int done;
};

imgsim_status cat_row_items_open(imgsim_db *db, const cat_filter *f, cat_row_items **out,
                                 imgsim_error *err)
{
    *out = NULL;
    cat_row_items *it = calloc(1, sizeof *it);
    if (!it)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    it->db = db;
    it->done = 1;
    imgsim_status s = filter_prepare(db, f, ITEM_COLS, "row = ? AND ", " ORDER BY id", 2,
                                     &it->st, err);
    if (s != IMGSIM_OK) {
        free(it);
        return s;
    }
    *out = it;
    return IMGSIM_OK;
}

void cat_row_items_seek(cat_row_items *it, uint32_t row)
{
    sqlite3_reset(it->st);
    sqlite3_bind_int64(it->st, 1, row);
    it->done = 0;
}

imgsim_status cat_row_items_next(cat_row_items *it, imgsim_item *out, int *got,
                                 imgsim_error *err)
{
    *got = 0;
    if (it->done)
        return IMGSIM_OK;
    int rc = sqlite3_step(it->st);
    if (rc == SQLITE_ROW) {
        if (cat_item_read(it->st, 0, out) != IMGSIM_OK)
            return error_set(err, IMGSIM_E_NOMEM, "out of memory");
        *got = 1;
        return IMGSIM_OK;
    }
    it->done = 1;
    sqlite3_reset(it->st);
    return rc == SQLITE_DONE ? IMGSIM_OK : cat_sql_fail(it->db, err, "cannot read items");
}

void cat_row_items_close(cat_row_items *it)
{
    if (!it)
        return;
    sqlite3_finalize(it->st);
    free(it);
}

imgsim_status imgsim_db_remove(imgsim_db *db, const char *const *ids, size_t n, size_t *removed,
                               imgsim_error *err)
{
    size_t dummy;
    if (!removed)
        removed = &dummy;
    imgsim_error first = {0};
    imgsim_status s = cat_items_delete(db, ids, n, removed, &first);
    if (s != IMGSIM_OK && s != IMGSIM_E_NOTFOUND) {
        if (err)
            *err = first;
        return s;
    }
    imgsim_status t = cat_after_write(db, err); /* the server's DELETE too */
    if (t != IMGSIM_OK)
        return t;
    if (s != IMGSIM_OK && err)
        *err = first;
    return s;
}

imgsim_status imgsim_db_item_ids(imgsim_db *db, char ***ids, size_t *n, imgsim_error *err)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, "SELECT id FROM items ORDER BY id", &st, err);
    if (s != IMGSIM_OK)
        return s;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow_array((void **)ids, &cap, *n + 1, sizeof **ids, 1024)) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        if (!((*ids)[*n] = strdup((const char *)sqlite3_column_text(st, 0)))) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    sqlite3_finalize(st);
    if (s == IMGSIM_OK && rc != SQLITE_DONE)
        s = cat_sql_fail(db, err, "cannot list items");
    if (s != IMGSIM_OK) {
        for (size_t i = 0; i < *n; i++)
            free((*ids)[i]);
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return s;
}

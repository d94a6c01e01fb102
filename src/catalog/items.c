/*
 * items.c — catalogue items: reading them, finding an item's vector row, removing items
 * (a vector row dies with its last item), and turning --where conditions into SQL and into
 * a bitmap of candidate vector rows.
 *
 * --where columns: the item columns id, source, hash, label, width, height, model; anything
 * else is a key of the item's metadata object (the extra CSV columns), matched with json_each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "core/error.h"

static char *dup_col(sqlite3_stmt *st, int c)
{
    const unsigned char *t = sqlite3_column_text(st, c);
    return t ? strdup((const char *)t) : NULL;
}

void imgsim_item_clear(imgsim_item *it)
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
    out->id = dup_col(st, c + 0);
    out->source = dup_col(st, c + 1);
    out->hash = dup_col(st, c + 2);
    out->label = dup_col(st, c + 3);
    out->meta_json = dup_col(st, c + 4);
    out->width = sqlite3_column_int(st, c + 5);
    out->height = sqlite3_column_int(st, c + 6);
    out->has_box = sqlite3_column_type(st, c + 9) != SQLITE_NULL;
    for (int i = 0; i < 4; i++)
        out->box[i] = sqlite3_column_int(st, c + 7 + i);
    out->added = sqlite3_column_double(st, c + 11);
    if (!out->id || !out->source || !out->hash ||
        (sqlite3_column_type(st, c + 3) != SQLITE_NULL && !out->label) ||
        (sqlite3_column_type(st, c + 4) != SQLITE_NULL && !out->meta_json)) {
        imgsim_item_clear(out);
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
            s = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        s = imgsim_fail(err, IMGSIM_E_NOTFOUND, "no item with id '%s'", id);
    } else {
        s = cat_sql_fail(db, err, "cannot read an item");
    }
    sqlite3_finalize(st);
    return s;
}

imgsim_status cat_item_row(imgsim_db *db, const char *id, uint32_t *row, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, "SELECT row FROM items WHERE id = ?", &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 r = sqlite3_column_int64(st, 0);
        if (r < 0 || (size_t)r >= db->nrows || !db->alive[r])
            s = imgsim_fail(err, IMGSIM_E_IO, "%s: item '%s' names a missing vector row", db->dir,
                            id);
        else
            *row = (uint32_t)r;
    } else if (rc == SQLITE_DONE) {
        s = imgsim_fail(err, IMGSIM_E_NOTFOUND, "no item with id '%s'", id);
    } else {
        s = cat_sql_fail(db, err, "cannot read an item");
    }
    sqlite3_finalize(st);
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

void cat_drops_apply(imgsim_db *db)
{
    for (size_t i = 0; i < db->ndrops; i++) {
        uint32_t r = db->drops[i];
        if (r < db->nrows && db->alive[r]) {
            db->alive[r] = 0;
            db->nalive--;
        }
    }
    db->ndrops = 0;
}

void cat_drops_forget(imgsim_db *db)
{
    db->ndrops = 0;
}

imgsim_status cat_row_drop(imgsim_db *db, uint32_t row, imgsim_error *err)
{
    if (db->ndrops == db->capdrops) {
        size_t cap = db->capdrops ? db->capdrops * 2 : 64;
        uint32_t *d = realloc(db->drops, cap * sizeof *d);
        if (!d)
            return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
        db->drops = d;
        db->capdrops = cap;
    }
    db->drops[db->ndrops++] = row;
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, "DELETE FROM vectors WHERE row = ?1;"
                                      , &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_int64(st, 1, row);
    if (sqlite3_step(st) != SQLITE_DONE)
        s = cat_sql_fail(db, err, "cannot drop a vector");
    sqlite3_finalize(st);
    if (s != IMGSIM_OK)
        return s;
    if ((s = cat_prepare(db, "INSERT INTO changes(gen, row, op) VALUES(?, ?, 2)", &st, err)) != IMGSIM_OK)
        return s;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)db->gen + 1);
    sqlite3_bind_int64(st, 2, row);
    if (sqlite3_step(st) != SQLITE_DONE)
        s = cat_sql_fail(db, err, "cannot log a change");
    sqlite3_finalize(st);
    return s;
}

/* Inside a transaction: delete the items; a row left without items is dropped (marked dead
 * in memory once the caller commits). */
static imgsim_status delete_items(imgsim_db *db, const char *const *ids, size_t n,
                                  size_t *removed, size_t *ndropped, const char **unknown,
                                  imgsim_error *err)
{
    sqlite3_stmt *get = NULL, *del = NULL, *left = NULL;
    imgsim_status s;
    if ((s = cat_prepare(db, "SELECT row FROM items WHERE id = ?", &get, err)) != IMGSIM_OK ||
        (s = cat_prepare(db, "DELETE FROM items WHERE id = ?", &del, err)) != IMGSIM_OK ||
        (s = cat_prepare(db, "SELECT 1 FROM items WHERE row = ? LIMIT 1", &left, err)) != IMGSIM_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(get, 1, ids[i], -1, SQLITE_STATIC);
        int rc = sqlite3_step(get);
        sqlite3_int64 row = rc == SQLITE_ROW ? sqlite3_column_int64(get, 0) : -1;
        sqlite3_reset(get);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            s = cat_sql_fail(db, err, "cannot read an item");
            goto done;
        }
        if (row < 0) {
            if (!*unknown)
                *unknown = ids[i];
            continue;
        }
        sqlite3_bind_text(del, 1, ids[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(del);
        sqlite3_reset(del);
        if (rc != SQLITE_DONE) {
            s = cat_sql_fail(db, err, "cannot delete an item");
            goto done;
        }
        (*removed)++;
        sqlite3_bind_int64(left, 1, row);
        rc = sqlite3_step(left);
        sqlite3_reset(left);
        if (rc == SQLITE_DONE) {
            if ((s = cat_row_drop(db, (uint32_t)row, err)) != IMGSIM_OK)
                goto done;
            (*ndropped)++;
        } else if (rc != SQLITE_ROW) {
            s = cat_sql_fail(db, err, "cannot read an item");
            goto done;
        }
    }
done:
    sqlite3_finalize(get);
    sqlite3_finalize(del);
    sqlite3_finalize(left);
    return s;
}

imgsim_status cat_items_delete(imgsim_db *db, const char *const *ids, size_t n, size_t *removed,
                               imgsim_error *err)
{
    *removed = 0;
    if (!db->writable)
        return imgsim_fail(err, IMGSIM_E_ARG, "%s: collection opened read-only", db->dir);
    size_t nd = 0;
    const char *unknown = NULL;
    imgsim_status s = cat_begin(db, err);
    if (s == IMGSIM_OK)
        s = delete_items(db, ids, n, removed, &nd, &unknown, err);
    if (s == IMGSIM_OK && nd)
        s = cat_meta_set_u64(db, "gen", db->gen + 1, err);
    if (s == IMGSIM_OK)
        s = cat_commit(db, err);
    if (s != IMGSIM_OK) {
        cat_rollback(db);
        cat_drops_forget(db);
        *removed = 0;
    } else {
        if (nd)
            db->gen++;
        cat_drops_apply(db);
        if (unknown)
            s = imgsim_fail(err, IMGSIM_E_NOTFOUND, "no item with id '%s'", unknown);
    }
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
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    len += (size_t)snprintf(s, cap, "1");
    for (int i = 0; i < nw; i++) {
        if (!w[i].column || !*w[i].column || !w[i].value) {
            free(s);
            return imgsim_fail(err, IMGSIM_E_ARG, "--where needs COLUMN=VALUE");
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

imgsim_status cat_where_bind(sqlite3_stmt *st, int first, const imgsim_where *w, int nw)
{
    int k = first;
    for (int i = 0; i < nw; i++) {
        if (!plain_col(w[i].column))
            sqlite3_bind_text(st, k++, w[i].column, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, k++, w[i].value, -1, SQLITE_STATIC);
    }
    return IMGSIM_OK;
}

imgsim_status cat_where_rows(imgsim_db *db, const imgsim_where *w, int nw, int labelled,
                             uint8_t **rows, imgsim_error *err)
{
    *rows = NULL;
    char *cond;
    imgsim_status s = cat_where_sql(w, nw, &cond, err);
    if (s != IMGSIM_OK)
        return s;
    size_t n = strlen(cond) + 64;
    char *sql = malloc(n);
    uint8_t *bm = calloc(db->nrows ? db->nrows : 1, 1);
    if (!sql || !bm) {
        free(cond), free(sql), free(bm);
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    }
    snprintf(sql, n, "SELECT DISTINCT row FROM items WHERE %s%s", cond,
             labelled ? " AND label IS NOT NULL" : "");
    free(cond);
    sqlite3_stmt *st;
    s = cat_prepare(db, sql, &st, err);
    free(sql);
    if (s != IMGSIM_OK) {
        free(bm);
        return s;
    }
    if (cat_where_bind(st, 1, w, nw) != IMGSIM_OK) {
        sqlite3_finalize(st);
        free(bm);
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
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
    imgsim_status t = nbr_refresh(db, err);
    if (t == IMGSIM_OK)
        t = vec_compact_if_needed(db, 0, err);
    if (t == IMGSIM_OK)
        t = ann_refresh(db, 1, err); /* keep the HNSW index in step (server DELETE too) */
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
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            char **v = realloc(*ids, cap * sizeof *v);
            if (!v) {
                s = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
                break;
            }
            *ids = v;
        }
        if (!((*ids)[*n] = strdup((const char *)sqlite3_column_text(st, 0)))) {
            s = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
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

/*
 * write.c — the catalogue's write transaction (begin / commit / abort: the generation bump,
 * the rows it drops, the vectors it appends) and the writes made inside it, plus the one
 * after-write step (neighbour table, compaction, HNSW index). The durability invariant it
 * keeps is described in catalog.h.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog/internal.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/grow.h"

imgsim_status cat_write_begin(imgsim_db *db, imgsim_error *err)
{
    imgsim_status s = cat_check_writable(db, err);
    if (s != IMGSIM_OK)
        return s;
    db->ndrops = 0;
    db->bump = 0;
    return cat_begin(db, err);
}

void cat_write_bump(imgsim_db *db)
{
    db->bump = 1;
}

void cat_write_abort(imgsim_db *db)
{
    cat_rollback(db);
    db->ndrops = 0;
    db->bump = 0;
    vec_discard(db);
}

/* Rows dropped by the committed transaction die in memory too. */
static void drops_apply(imgsim_db *db)
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

imgsim_status cat_write_commit(imgsim_db *db, imgsim_error *err)
{
    int bump = db->pending > 0 || db->ndrops > 0 || db->bump;
    imgsim_status s = IMGSIM_OK;
    if (db->pending)
        s = cat_meta_set_u64(db, "nrows", db->nrows + db->pending, err);
    if (s == IMGSIM_OK && bump)
        s = cat_meta_set_u64(db, "gen", db->gen + 1, err);
    if (s == IMGSIM_OK)
        s = cat_commit(db, err);
    if (s != IMGSIM_OK) {
        cat_write_abort(db);
        return s;
    }
    if (bump)
        db->gen++;
    db->bump = 0;
    s = vec_publish(db, err);
    drops_apply(db); /* rows orphaned by replaced items, after the new rows exist */
    return s;
}

imgsim_status cat_write_vectors(imgsim_db *db, const float *vecs, size_t n, uint32_t *first,
                                imgsim_error *err)
{
    *first = (uint32_t)(db->nrows + db->pending);
    return vec_append(db, vecs, n, err);
}

/* Log row `row` as added (op 1) or dropped (op 2) by the generation being committed. */
static imgsim_status log_change(imgsim_db *db, uint32_t row, int op, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_W_LOG, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)db->gen + 1);
    sqlite3_bind_int64(st, 2, row);
    sqlite3_bind_int(st, 3, op);
    return cat_step_done(db, st, "cannot log a change", err);
}

imgsim_status cat_write_vector_key(imgsim_db *db, uint32_t row, const char *key,
                                   imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_W_VECTOR, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_int64(st, 1, row);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if ((s = cat_step_done(db, st, "cannot add a vector", err)) != IMGSIM_OK)
        return s;
    return log_change(db, row, 1, err);
}

imgsim_status cat_row_drop(imgsim_db *db, uint32_t row, imgsim_error *err)
{
    if (grow_array((void **)&db->drops, &db->capdrops, db->ndrops + 1, sizeof *db->drops, 64))
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    db->drops[db->ndrops++] = row;
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_W_VECTOR_DROP, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_int64(st, 1, row);
    if ((s = cat_step_done(db, st, "cannot drop a vector", err)) != IMGSIM_OK)
        return s;
    return log_change(db, row, 2, err);
}

/* Drop `row` when no item names it any more. */
static imgsim_status drop_if_unused(imgsim_db *db, uint32_t row, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_Q_ROW_USED, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_int64(st, 1, row);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return cat_row_drop(db, row, err);
    return rc == SQLITE_ROW ? IMGSIM_OK : cat_sql_fail(db, err, "cannot read items");
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

imgsim_status cat_write_item(imgsim_db *db, const cat_item_rec *it, uint32_t row,
                             imgsim_error *err)
{
    long long old_row = -1;
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_Q_ITEM_ROW, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, it->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        old_row = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cat_sql_fail(db, err, "cannot read an item");
    if ((s = cat_cached(db, CAT_W_ITEM, &st, err)) != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, it->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, row);
    sqlite3_bind_text(st, 3, it->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, it->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, it->size);
    sqlite3_bind_int64(st, 6, it->mtime_ns);
    sqlite3_bind_int(st, 7, it->width);
    sqlite3_bind_int(st, 8, it->height);
    bind_opt_text(st, 9, it->label);
    for (int k = 0; k < 4; k++)
        if (it->has_box)
            sqlite3_bind_int(st, 10 + k, it->box[k]);
        else
            sqlite3_bind_null(st, 10 + k);
    bind_opt_text(st, 14, it->meta_json);
    sqlite3_bind_text(st, 15, db->model, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 16, clock_wall());
    if ((s = cat_step_done(db, st, "cannot write an item", err)) != IMGSIM_OK)
        return s;
    if (old_row < 0 || old_row == (long long)row)
        return IMGSIM_OK;
    return drop_if_unused(db, (uint32_t)old_row, err);
}

imgsim_status cat_write_item_meta(imgsim_db *db, const char *id, const char *label,
                                  const char *meta_json, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_cached(db, CAT_W_ITEM_META, &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    bind_opt_text(st, 2, label);
    bind_opt_text(st, 3, meta_json);
    return cat_step_done(db, st, "cannot update an item", err);
}

/* Inside a transaction: delete the items; a row left without items is dropped. */
static imgsim_status delete_items(imgsim_db *db, const char *const *ids, size_t n,
                                  size_t *removed, const char **unknown, imgsim_error *err)
{
    imgsim_status s = IMGSIM_OK;
    for (size_t i = 0; i < n && s == IMGSIM_OK; i++) {
        sqlite3_stmt *st;
        if ((s = cat_cached(db, CAT_Q_ITEM_ROW, &st, err)) != IMGSIM_OK)
            break;
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_int64 row = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return cat_sql_fail(db, err, "cannot read an item");
        if (row < 0) {
            if (!*unknown)
                *unknown = ids[i];
            continue;
        }
        if ((s = cat_cached(db, CAT_W_ITEM_DELETE, &st, err)) != IMGSIM_OK)
            break;
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
        if ((s = cat_step_done(db, st, "cannot delete an item", err)) != IMGSIM_OK)
            break;
        (*removed)++;
        s = drop_if_unused(db, (uint32_t)row, err);
    }
    return s;
}

imgsim_status cat_items_delete(imgsim_db *db, const char *const *ids, size_t n, size_t *removed,
                               imgsim_error *err)
{
    *removed = 0;
    const char *unknown = NULL;
    imgsim_status s = cat_write_begin(db, err);
    if (s != IMGSIM_OK)
        return s;
    if ((s = delete_items(db, ids, n, removed, &unknown, err)) != IMGSIM_OK) {
        cat_write_abort(db);
        *removed = 0;
        return s;
    }
    if ((s = cat_write_commit(db, err)) != IMGSIM_OK) {
        *removed = 0;
        return s;
    }
    if (unknown)
        return error_set(err, IMGSIM_E_NOTFOUND, "no item with id '%s'", unknown);
    return IMGSIM_OK;
}

imgsim_status cat_after_write(imgsim_db *db, imgsim_error *err)
{
    imgsim_status s = nbr_refresh(db, err);
    if (s == IMGSIM_OK)
        s = vec_compact_if_needed(db, 0, err);
    if (s == IMGSIM_OK) /* the HNSW index, when there is one, follows the catalogue */
        s = ann_refresh(db, 1, err);
    return s;
}

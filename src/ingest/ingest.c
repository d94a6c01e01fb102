/*
 * ingest.c — adding images to a collection (imgsim_db_add) and dropping vanished ones
 * (imgsim_db_sync).
 *
 * Two phases:
 *   1. triage, in the caller's thread: an item whose file is unchanged (same absolute path,
 *      size, mtime and box) is skipped, or only relabelled; otherwise the file is hashed, and
 *      content already stored (or queued earlier in this run) is linked, not embedded again;
 *      these catalogue-only changes are committed in one transaction;
 *   2. embedding: the remaining files go through the batch pipeline (decode overlapped with
 *      inference); every `commit_every` results the vectors are appended and fsynced, then
 *      their rows and items are committed together (the invariant in catalog/catalog.h).
 * A failure of one file never stops the run; a stop request ends it after a commit.
 * Afterwards the neighbour table and the HNSW index (if any) are brought in step.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "catalog/catalog.h"
#include "core/error.h"
#include "core/strmap.h"
#include "model/model.h"

typedef struct job {
    const imgsim_source *src;
    char *abspath;
    char key[96];          /* content hash, plus "#x,y,w,h" with a box */
    char hash[65];
    long long size, mtime_ns;
    int existed;           /* the id was in the collection (with other content) */
} job;

typedef struct run {
    imgsim_db *db;
    const imgsim_ingest_opts *o;
    imgsim_ingest_stats *st;
    job *jobs;
    int *todo;             /* jobs to embed (leaders) */
    size_t ntodo;
    int *followers;        /* per job: next job sharing its leader, or -1 (linked list) */
    /* the batch being filled */
    float *vecs;
    int *bjob;             /* job of each buffered vector */
    int *bw, *bh;
    size_t nb, cap;
    size_t done, total;
    int phase2;            /* embedding: `done` counts results as they arrive, not reports */
    double last_progress;
    imgsim_status fatal;
    imgsim_error *err;
} run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(run *r, int force)
{
    if (!r->o->on_progress)
        return;
    double t = now_s();
    if (force || t - r->last_progress >= 0.2) {
        r->last_progress = t;
        r->o->on_progress(r->o->user, r->done, r->total);
    }
}

static void report(run *r, imgsim_ingest_event ev, const imgsim_source *s, const char *msg)
{
    switch (ev) {
    case IMGSIM_INGEST_ADDED: r->st->added++; break;
    case IMGSIM_INGEST_DUPLICATE: r->st->duplicate++; break;
    case IMGSIM_INGEST_UNCHANGED: r->st->unchanged++; break;
    case IMGSIM_INGEST_UPDATED: r->st->updated++; break;
    case IMGSIM_INGEST_FAILED: r->st->failed++; break;
    }
    if (r->o->on_item)
        r->o->on_item(r->o->user, ev, s, msg);
    if (!r->phase2) {
        r->done++;
        progress(r, 0);
    }
}

static int str_eq(const char *a, const char *b)
{
    if (!a || !*a)
        return !b || !*b;
    return b && !strcmp(a, b);
}

/* ---- catalogue statements used by both phases */

typedef struct stmts {
    sqlite3_stmt *find_item, *find_key, *dims_of_row, *ins_item, *ins_vec, *log_add,
        *row_users, *set_meta;
} stmts;

static void stmts_free(stmts *s)
{
    sqlite3_finalize(s->find_item);
    sqlite3_finalize(s->find_key);
    sqlite3_finalize(s->dims_of_row);
    sqlite3_finalize(s->ins_item);
    sqlite3_finalize(s->ins_vec);
    sqlite3_finalize(s->log_add);
    sqlite3_finalize(s->row_users);
    sqlite3_finalize(s->set_meta);
    memset(s, 0, sizeof *s);
}

static imgsim_status stmts_prepare(imgsim_db *db, stmts *s, imgsim_error *err)
{
    imgsim_status e;
    memset(s, 0, sizeof *s);
    if ((e = cat_prepare(db, "SELECT row, source, size, mtime_ns, label, meta, box_x, box_y, "
                             "box_w, box_h FROM items WHERE id = ?", &s->find_item, err)) ||
        (e = cat_prepare(db, "SELECT row FROM vectors WHERE key = ?", &s->find_key, err)) ||
        (e = cat_prepare(db, "SELECT width, height FROM items WHERE row = ? LIMIT 1",
                         &s->dims_of_row, err)) ||
        (e = cat_prepare(db,
                         "INSERT OR REPLACE INTO items(id, row, source, hash, size, mtime_ns, "
                         "width, height, label, box_x, box_y, box_w, box_h, meta, model, added) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                         "COALESCE((SELECT added FROM items WHERE id = ?1), ?16))",
                         &s->ins_item, err)) ||
        (e = cat_prepare(db, "INSERT INTO vectors(row, key) VALUES(?, ?)", &s->ins_vec, err)) ||
        (e = cat_prepare(db, "INSERT INTO changes(gen, row, op) VALUES(?, ?, 1)", &s->log_add,
                         err)) ||
        (e = cat_prepare(db, "SELECT 1 FROM items WHERE row = ? LIMIT 1", &s->row_users, err)) ||
        (e = cat_prepare(db, "UPDATE items SET label = ?2, meta = ?3 WHERE id = ?1", &s->set_meta,
                         err))) {
        stmts_free(s);
        return e;
    }
    return IMGSIM_OK;
}

static imgsim_status step_done(imgsim_db *db, sqlite3_stmt *st, imgsim_error *err, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? IMGSIM_OK : cat_sql_fail(db, err, what);
}

/* Row holding `key`, or -1. */
static long long find_key(stmts *s, const char *key)
{
    sqlite3_bind_text(s->find_key, 1, key, -1, SQLITE_STATIC);
    long long r = sqlite3_step(s->find_key) == SQLITE_ROW ? sqlite3_column_int64(s->find_key, 0) : -1;
    sqlite3_reset(s->find_key);
    return r;
}

/* Write item `j` pointing at vector `row`; drops the row the item used before if orphaned. */
static imgsim_status put_item(run *r, stmts *s, const job *j, long long row, int w, int h,
                              long long old_row, imgsim_error *err)
{
    const imgsim_source *src = j->src;
    sqlite3_stmt *st = s->ins_item;
    sqlite3_bind_text(st, 1, src->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, row);
    sqlite3_bind_text(st, 3, j->abspath, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, j->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, j->size);
    sqlite3_bind_int64(st, 6, j->mtime_ns);
    sqlite3_bind_int(st, 7, w);
    sqlite3_bind_int(st, 8, h);
    if (src->label && *src->label)
        sqlite3_bind_text(st, 9, src->label, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 9);
    for (int k = 0; k < 4; k++)
        if (src->has_box)
            sqlite3_bind_int(st, 10 + k, src->box[k]);
        else
            sqlite3_bind_null(st, 10 + k);
    if (src->meta_json && *src->meta_json)
        sqlite3_bind_text(st, 14, src->meta_json, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 14);
    sqlite3_bind_text(st, 15, r->db->model, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 16, wall_s());
    imgsim_status e = step_done(r->db, st, err, "cannot write an item");
    if (e != IMGSIM_OK || old_row < 0 || old_row == row)
        return e;
    sqlite3_bind_int64(s->row_users, 1, old_row);
    int rc = sqlite3_step(s->row_users);
    sqlite3_reset(s->row_users);
    if (rc == SQLITE_DONE)
        return cat_row_drop(r->db, (uint32_t)old_row, err);
    return rc == SQLITE_ROW ? IMGSIM_OK : cat_sql_fail(r->db, err, "cannot read items");
}

/* ---- phase 1: triage */

static int same_box(const imgsim_source *s, sqlite3_stmt *st)
{
    int has = sqlite3_column_type(st, 8) != SQLITE_NULL;
    if (has != (s->has_box != 0))
        return 0;
    for (int k = 0; has && k < 4; k++)
        if (sqlite3_column_int(st, 6 + k) != s->box[k])
            return 0;
    return 1;
}

/* What the catalogue knows of item j: the row it uses now (or -1), and whether its file,
 * its label/metadata are unchanged. */
typedef struct known {
    long long row;
    int same_file, same_meta;
} known;

static known lookup(stmts *s, const job *j)
{
    known k = {-1, 0, 0};
    sqlite3_stmt *st = s->find_item;
    sqlite3_bind_text(st, 1, j->src->id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        k.row = sqlite3_column_int64(st, 0);
        const char *src = (const char *)sqlite3_column_text(st, 1);
        k.same_file = src && !strcmp(src, j->abspath) && sqlite3_column_int64(st, 2) == j->size &&
                      sqlite3_column_int64(st, 3) == j->mtime_ns && same_box(j->src, st);
        k.same_meta = str_eq((const char *)sqlite3_column_text(st, 4), j->src->label) &&
                      str_eq((const char *)sqlite3_column_text(st, 5), j->src->meta_json);
    }
    sqlite3_reset(st);
    return k;
}

static imgsim_status triage(run *r, stmts *s, size_t n, imgsim_error *err)
{
    imgsim_db *db = r->db;
    strmap ids = {0}, keys = {0};
    imgsim_status e = cat_begin(db, err);
    if (e != IMGSIM_OK)
        return e;
    for (size_t i = 0; i < n; i++)
        r->followers[i] = -1;
    for (size_t i = 0; i < n && e == IMGSIM_OK; i++) {
        job *j = &r->jobs[i];
        const imgsim_source *src = j->src;
        struct stat sb;
        char rp[PATH_MAX];
        if (r->o->stop && *r->o->stop) /* interrupted: keep what was triaged */
            break;
        if (!src->id || !*src->id || !src->path) {
            report(r, IMGSIM_INGEST_FAILED, src, "missing id or path");
            continue;
        }
        long first = strmap_get(&ids, src->id, 1, (long)i);
        if (first == -2) {
            e = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        if (first >= 0) { /* two sources with one id in one run: keep the first */
            char m[512];
            const imgsim_source *f = r->jobs[first].src;
            snprintf(m, sizeof m, "%s: duplicate id '%s' (also %s)", src->path, src->id,
                     f->origin ? f->origin : f->path);
            report(r, IMGSIM_INGEST_FAILED, src, m);
            continue;
        }
        if (stat(src->path, &sb) != 0 || !realpath(src->path, rp)) {
            char m[256];
            snprintf(m, sizeof m, "%s: cannot read: %s", src->path, strerror(errno));
            report(r, IMGSIM_INGEST_FAILED, src, m);
            continue;
        }
        if (!S_ISREG(sb.st_mode)) {
            char m[256];
            snprintf(m, sizeof m, "%s: not a regular file", src->path);
            report(r, IMGSIM_INGEST_FAILED, src, m);
            continue;
        }
        if (!(j->abspath = strdup(rp))) {
            e = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        j->size = (long long)sb.st_size;
        j->mtime_ns = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
        known k = lookup(s, j);
        j->existed = k.row >= 0;
        if (k.row >= 0 && k.same_file) {
            if (k.same_meta) {
                report(r, IMGSIM_INGEST_UNCHANGED, src, NULL);
            } else {
                sqlite3_bind_text(s->set_meta, 1, src->id, -1, SQLITE_STATIC);
                if (src->label && *src->label)
                    sqlite3_bind_text(s->set_meta, 2, src->label, -1, SQLITE_STATIC);
                else
                    sqlite3_bind_null(s->set_meta, 2);
                if (src->meta_json && *src->meta_json)
                    sqlite3_bind_text(s->set_meta, 3, src->meta_json, -1, SQLITE_STATIC);
                else
                    sqlite3_bind_null(s->set_meta, 3);
                if ((e = step_done(db, s->set_meta, err, "cannot update an item")) == IMGSIM_OK)
                    report(r, IMGSIM_INGEST_UPDATED, src, NULL);
            }
            continue;
        }
        imgsim_error herr = {0};
        if (imgsim_sha256_file(src->path, j->hash, &herr) != IMGSIM_OK) {
            report(r, IMGSIM_INGEST_FAILED, src, herr.msg);
            continue;
        }
        if (src->has_box)
            snprintf(j->key, sizeof j->key, "%s#%d,%d,%d,%d", j->hash, src->box[0], src->box[1],
                     src->box[2], src->box[3]);
        else
            snprintf(j->key, sizeof j->key, "%s", j->hash);
        long long row = find_key(s, j->key);
        if (row >= 0) { /* content already stored: link the item to it */
            int w = 0, h = 0;
            sqlite3_bind_int64(s->dims_of_row, 1, row);
            if (sqlite3_step(s->dims_of_row) == SQLITE_ROW) {
                w = sqlite3_column_int(s->dims_of_row, 0);
                h = sqlite3_column_int(s->dims_of_row, 1);
            }
            sqlite3_reset(s->dims_of_row);
            if ((e = put_item(r, s, j, row, w, h, k.row, err)) == IMGSIM_OK)
                report(r, k.row >= 0 ? IMGSIM_INGEST_UPDATED : IMGSIM_INGEST_DUPLICATE, src, NULL);
            continue;
        }
        /* same content queued earlier in this run? */
        long lead = strmap_get(&keys, j->key, 1, (long)i);
        if (lead == -2) {
            e = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        if (lead >= 0) {
            int *p = &r->followers[lead]; /* append to the leader's follower list */
            while (*p >= 0)
                p = &r->followers[*p];
            *p = (int)i;
        } else {
            r->todo[r->ntodo++] = (int)i;
        }
    }
    strmap_free(&ids);
    strmap_free(&keys);
    /* rows left without items by relinking bump the generation */
    int dropped = db->ndrops > 0;
    if (e == IMGSIM_OK && dropped)
        e = cat_meta_set_u64(db, "gen", db->gen + 1, err);
    if (e == IMGSIM_OK && (e = cat_commit(db, err)) == IMGSIM_OK) {
        if (dropped)
            db->gen++;
        cat_drops_apply(db);
    }
    if (e != IMGSIM_OK) {
        cat_rollback(db);
        cat_drops_forget(db);
    }
    return e;
}

/* ---- phase 2: embedding and committing */

static imgsim_status flush(run *r, stmts *s, imgsim_error *err)
{
    imgsim_db *db = r->db;
    if (r->nb == 0)
        return IMGSIM_OK;
    imgsim_status e = vec_append(db, r->vecs, r->nb, err);
    if (e != IMGSIM_OK)
        return e;
    if ((e = cat_begin(db, err)) != IMGSIM_OK) {
        vec_discard(db);
        return e;
    }
    uint64_t gen = db->gen + 1;
    for (size_t b = 0; b < r->nb && e == IMGSIM_OK; b++) {
        long long row = (long long)(db->nrows + b);
        for (int ji = r->bjob[b]; ji >= 0 && e == IMGSIM_OK; ji = r->followers[ji]) {
            job *j = &r->jobs[ji];
            known k = lookup(s, j);
            if (ji == r->bjob[b]) {
                sqlite3_bind_int64(s->ins_vec, 1, row);
                sqlite3_bind_text(s->ins_vec, 2, j->key, -1, SQLITE_STATIC);
                if ((e = step_done(db, s->ins_vec, err, "cannot add a vector")) != IMGSIM_OK)
                    break;
                sqlite3_bind_int64(s->log_add, 1, (sqlite3_int64)gen);
                sqlite3_bind_int64(s->log_add, 2, row);
                if ((e = step_done(db, s->log_add, err, "cannot log a change")) != IMGSIM_OK)
                    break;
            }
            e = put_item(r, s, j, row, r->bw[b], r->bh[b], k.row, err);
        }
    }
    if (e == IMGSIM_OK && (e = cat_meta_set_u64(db, "nrows", db->nrows + r->nb, err)) == IMGSIM_OK &&
        (e = cat_meta_set_u64(db, "gen", gen, err)) == IMGSIM_OK)
        e = cat_commit(db, err);
    if (e != IMGSIM_OK) {
        cat_rollback(db);
        cat_drops_forget(db);
        vec_discard(db);
        return e;
    }
    db->gen = gen;
    e = vec_publish(db, err);
    cat_drops_apply(db); /* rows orphaned by replaced items, after the new rows exist */
    if (e != IMGSIM_OK)
        return e;
    for (size_t b = 0; b < r->nb; b++)
        for (int ji = r->bjob[b]; ji >= 0; ji = r->followers[ji]) {
            job *j = &r->jobs[ji];
            report(r, j->existed ? IMGSIM_INGEST_UPDATED
                      : ji == r->bjob[b] ? IMGSIM_INGEST_ADDED : IMGSIM_INGEST_DUPLICATE, j->src, NULL);
        }
    r->nb = 0;
    return IMGSIM_OK;
}

typedef struct cb_ctx {
    run *r;
    stmts *s;
    int dim;
} cb_ctx;

static int on_result(void *user, const imgsim_result *res)
{
    cb_ctx *c = user;
    run *r = c->r;
    int ji = r->todo[res->index];
    for (int f = ji; f >= 0; f = r->followers[f])
        r->done++;
    progress(r, 0);
    if (res->status != IMGSIM_OK) {
        for (int f = ji; f >= 0; f = r->followers[f])
            report(r, IMGSIM_INGEST_FAILED, r->jobs[f].src, res->error);
        return 0;
    }
    memcpy(r->vecs + r->nb * (size_t)c->dim, res->vec, sizeof(float) * (size_t)c->dim);
    r->bjob[r->nb] = ji;
    r->bw[r->nb] = res->src_width;
    r->bh[r->nb] = res->src_height;
    r->nb++;
    if (r->nb == r->cap) {
        imgsim_status e = flush(r, c->s, r->err);
        if (e != IMGSIM_OK) {
            r->fatal = e;
            return 1;
        }
        if (r->o->stop && *r->o->stop)
            return 1;
    }
    return 0;
}

imgsim_status imgsim_db_add(imgsim_db *db, imgsim_ctx *ctx, const imgsim_source *src, size_t n,
                            const imgsim_ingest_opts *o, imgsim_ingest_stats *stats,
                            imgsim_error *err)
{
    imgsim_ingest_opts defo = {0};
    imgsim_ingest_stats dst;
    if (!o)
        o = &defo;
    if (!stats)
        stats = &dst;
    memset(stats, 0, sizeof *stats);
    stats->total = n;
    double t0 = now_s();
    if (!db->writable)
        return imgsim_fail(err, IMGSIM_E_ARG, "%s: collection opened read-only", db->dir);
    const imgsim_model *m = model_of_ctx(ctx);
    if (strcmp(imgsim_model_name(m), db->model) != 0 || imgsim_model_dim(m) != db->dim)
        return imgsim_fail(err, IMGSIM_E_ARG, "%s holds %s vectors; cannot add %s vectors",
                           db->dir, db->model, imgsim_model_name(m));
    run r = {0};
    r.db = db;
    r.o = o;
    r.st = stats;
    r.err = err;
    r.total = n;
    r.cap = o->commit_every > 0 ? (size_t)o->commit_every : 256;
    r.jobs = calloc(n ? n : 1, sizeof *r.jobs);
    r.todo = malloc((n ? n : 1) * sizeof *r.todo);
    r.followers = malloc((n ? n : 1) * sizeof *r.followers);
    r.vecs = malloc(r.cap * sizeof(float) * (size_t)db->dim);
    r.bjob = malloc(r.cap * sizeof *r.bjob);
    r.bw = malloc(r.cap * sizeof *r.bw);
    r.bh = malloc(r.cap * sizeof *r.bh);
    const char **paths = NULL;
    int (*crops)[4] = NULL;
    stmts s = {0};
    imgsim_status e = IMGSIM_OK;
    if (!r.jobs || !r.todo || !r.followers || !r.vecs || !r.bjob || !r.bw || !r.bh) {
        e = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory for %zu sources", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        r.jobs[i].src = &src[i];
    if ((e = stmts_prepare(db, &s, err)) != IMGSIM_OK || (e = triage(&r, &s, n, err)) != IMGSIM_OK)
        goto done;
    progress(&r, 1);
    if (r.ntodo && !(o->stop && *o->stop)) {
        paths = malloc(r.ntodo * sizeof *paths);
        crops = calloc(r.ntodo, sizeof *crops);
        if (!paths || !crops) {
            e = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
            goto done;
        }
        for (size_t t = 0; t < r.ntodo; t++) {
            const job *j = &r.jobs[r.todo[t]];
            paths[t] = j->abspath;
            if (j->src->has_box)
                memcpy(crops[t], j->src->box, sizeof crops[t]);
        }
        r.phase2 = 1;
        imgsim_batch_opts bo = {0};
        bo.crops = (const int (*)[4])crops;
        cb_ctx c = {&r, &s, db->dim};
        e = imgsim_embed_files(ctx, paths, r.ntodo, &bo, on_result, &c, err);
        if (e == IMGSIM_OK)
            e = r.fatal;
        if (e == IMGSIM_OK)
            e = flush(&r, &s, err);
    }
    progress(&r, 1);
    if (e == IMGSIM_OK)
        e = nbr_refresh(db, err);
    if (e == IMGSIM_OK)
        e = vec_compact_if_needed(db, 0, err);
    if (e == IMGSIM_OK) /* the HNSW index, when there is one, follows the catalogue */
        e = ann_refresh(db, 1, err);
done:
    stmts_free(&s);
    for (size_t i = 0; r.jobs && i < n; i++)
        free(r.jobs[i].abspath);
    free(r.jobs);
    free(r.todo);
    free(r.followers);
    free(r.vecs);
    free(r.bjob);
    free(r.bw);
    free(r.bh);
    free(paths);
    free(crops);
    stats->seconds = now_s() - t0;
    return e;
}

imgsim_status imgsim_db_sync(imgsim_db *db, size_t *removed, imgsim_error *err)
{
    *removed = 0;
    sqlite3_stmt *st;
    imgsim_status e = cat_prepare(db, "SELECT id, source FROM items", &st, err);
    if (e != IMGSIM_OK)
        return e;
    char **gone = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *src = (const char *)sqlite3_column_text(st, 1);
        struct stat sb;
        if (!src || strstr(src, "://") || stat(src, &sb) == 0 ||
            (errno != ENOENT && errno != ENOTDIR))
            continue; /* only files that are really gone; EACCES or EIO keeps the item */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **g = realloc(gone, cap * sizeof *g);
            if (!g) {
                e = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
                break;
            }
            gone = g;
        }
        if (!(gone[n] = strdup((const char *)sqlite3_column_text(st, 0)))) {
            e = imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    sqlite3_finalize(st);
    if (e == IMGSIM_OK && rc != SQLITE_DONE)
        e = cat_sql_fail(db, err, "cannot list items");
    if (e == IMGSIM_OK && n)
        e = imgsim_db_remove(db, (const char *const *)gone, n, removed, err);
    if (e == IMGSIM_OK && n)
        e = ann_refresh(db, 1, err);
    for (size_t i = 0; i < n; i++)
        free(gone[i]);
    free(gone);
    return e;
}

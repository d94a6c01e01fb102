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
 * Afterwards the neighbour table and the HNSW index (if any) are brought in step
 * (cat_after_write). Every catalogue read and write goes through catalog/catalog.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog/catalog.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/grow.h"
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

static void progress(run *r, int force)
{
    if (!r->o->on_progress)
        return;
    double t = clock_now();
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

/* Write item `j` pointing at vector `row`; drops the row the item used before if orphaned. */
static imgsim_status put_item(run *r, const job *j, uint32_t row, int w, int h,
                              imgsim_error *err)
{
    const imgsim_source *src = j->src;
    cat_item_rec it = {src->id, j->abspath, j->hash, src->label, src->meta_json, j->size,
                       j->mtime_ns, w, h, src->has_box, {0}};
    if (src->has_box)
        memcpy(it.box, src->box, sizeof it.box);
    return cat_write_item(r->db, &it, row, err);
}

/* ---- phase 1: triage */

static int same_box(const imgsim_source *s, const cat_item_file *f)
{
    if (f->has_box != (s->has_box != 0))
        return 0;
    for (int k = 0; f->has_box && k < 4; k++)
        if (f->box[k] != s->box[k])
            return 0;
    return 1;
}

/* What the catalogue knows of item j: the row it uses now (or -1), and whether its file,
 * its label/metadata are unchanged. */
typedef struct known {
    long long row;
    int same_file, same_meta;
} known;

static imgsim_status lookup(imgsim_db *db, const job *j, known *k, imgsim_error *err)
{
    cat_item_file f;
    *k = (known){-1, 0, 0};
    imgsim_status e = cat_item_file_get(db, j->src->id, &f, err);
    if (e != IMGSIM_OK || f.row < 0)
        return e;
    k->row = f.row;
    k->same_file = f.source && !strcmp(f.source, j->abspath) && f.size == j->size &&
                   f.mtime_ns == j->mtime_ns && same_box(j->src, &f);
    k->same_meta = str_eq(f.label, j->src->label) && str_eq(f.meta_json, j->src->meta_json);
    cat_item_file_free(&f);
    return IMGSIM_OK;
}

static imgsim_status triage(run *r, size_t n, imgsim_error *err)
{
    imgsim_db *db = r->db;
    strmap ids = {0}, keys = {0};
    imgsim_status e = cat_write_begin(db, err);
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
            e = error_set(err, IMGSIM_E_NOMEM, "out of memory");
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
            e = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        j->size = (long long)sb.st_size;
        j->mtime_ns = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
        known k;
        if ((e = lookup(db, j, &k, err)) != IMGSIM_OK)
            break;
        j->existed = k.row >= 0;
        if (k.row >= 0 && k.same_file) {
            if (k.same_meta)
                report(r, IMGSIM_INGEST_UNCHANGED, src, NULL);
            else if ((e = cat_write_item_meta(db, src->id, src->label, src->meta_json, err)) ==
                     IMGSIM_OK)
                report(r, IMGSIM_INGEST_UPDATED, src, NULL);
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
        long long row;
        if ((e = cat_key_row(db, j->key, &row, err)) != IMGSIM_OK)
            break;
        if (row >= 0) { /* content already stored: link the item to it */
            int w, h;
            if ((e = cat_row_size(db, (uint32_t)row, &w, &h, err)) == IMGSIM_OK &&
                (e = put_item(r, j, (uint32_t)row, w, h, err)) == IMGSIM_OK)
                report(r, k.row >= 0 ? IMGSIM_INGEST_UPDATED : IMGSIM_INGEST_DUPLICATE, src, NULL);
            continue;
        }
        /* same content queued earlier in this run? */
        long lead = strmap_get(&keys, j->key, 1, (long)i);
        if (lead == -2) {
            e = error_set(err, IMGSIM_E_NOMEM, "out of memory");
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
    /* rows left without items by relinking bump the generation (the commit sees to it) */
    if (e == IMGSIM_OK)
        return cat_write_commit(db, err);
    cat_write_abort(db);
    return e;
}

/* ---- phase 2: embedding and committing */

static imgsim_status flush(run *r, imgsim_error *err)
{
    imgsim_db *db = r->db;
    if (r->nb == 0)
        return IMGSIM_OK;
    uint32_t first;
    imgsim_status e = cat_write_begin(db, err);
    if (e != IMGSIM_OK)
        return e;
    e = cat_write_vectors(db, r->vecs, r->nb, &first, err);
    for (size_t b = 0; b < r->nb && e == IMGSIM_OK; b++) {
        uint32_t row = first + (uint32_t)b;
        for (int ji = r->bjob[b]; ji >= 0 && e == IMGSIM_OK; ji = r->followers[ji]) {
            const job *j = &r->jobs[ji];
            if (ji == r->bjob[b] && (e = cat_write_vector_key(db, row, j->key, err)) != IMGSIM_OK)
                break;
            e = put_item(r, j, row, r->bw[b], r->bh[b], err);
        }
    }
    if (e != IMGSIM_OK) {
        cat_write_abort(db);
        return e;
    }
    if ((e = cat_write_commit(db, err)) != IMGSIM_OK)
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
        imgsim_status e = flush(r, r->err);
        if (e != IMGSIM_OK) {
            r->fatal = e;
            return 1;
        }
        if (r->o->stop && *r->o->stop)
            return 1;
    }
    return 0;
}

void imgsim_ingest_opts_default(imgsim_ingest_opts *o)
{
    memset(o, 0, sizeof *o);
    o->commit_every = 256;
}

imgsim_status imgsim_db_add(imgsim_db *db, imgsim_ctx *ctx, const imgsim_source *src, size_t n,
                            const imgsim_ingest_opts *o, imgsim_ingest_stats *stats,
                            imgsim_error *err)
{
    imgsim_ingest_opts defo;
    imgsim_ingest_stats dst;
    if (!o) {
        imgsim_ingest_opts_default(&defo);
        o = &defo;
    }
    if (!stats)
        stats = &dst;
    memset(stats, 0, sizeof *stats);
    stats->total = n;
    double t0 = clock_now();
    imgsim_status e = cat_check_writable(db, err);
    if (e != IMGSIM_OK)
        return e;
    const imgsim_model *m = model_of_ctx(ctx);
    if (strcmp(imgsim_model_name(m), imgsim_db_model(db)) != 0 ||
        imgsim_model_dim(m) != imgsim_db_dim(db))
        return error_set(err, IMGSIM_E_ARG, "%s holds %s vectors; cannot add %s vectors",
                         cat_dir(db), imgsim_db_model(db), imgsim_model_name(m));
    int dim = imgsim_db_dim(db);
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
    r.vecs = malloc(r.cap * sizeof(float) * (size_t)dim);
    r.bjob = malloc(r.cap * sizeof *r.bjob);
    r.bw = malloc(r.cap * sizeof *r.bw);
    r.bh = malloc(r.cap * sizeof *r.bh);
    const char **paths = NULL;
    int (*crops)[4] = NULL;
    if (!r.jobs || !r.todo || !r.followers || !r.vecs || !r.bjob || !r.bw || !r.bh) {
        e = error_set(err, IMGSIM_E_NOMEM, "out of memory for %zu sources", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        r.jobs[i].src = &src[i];
    if ((e = triage(&r, n, err)) != IMGSIM_OK)
        goto done;
    progress(&r, 1);
    if (r.ntodo && !(o->stop && *o->stop)) {
        paths = malloc(r.ntodo * sizeof *paths);
        crops = calloc(r.ntodo, sizeof *crops);
        if (!paths || !crops) {
            e = error_set(err, IMGSIM_E_NOMEM, "out of memory");
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
        cb_ctx c = {&r, dim};
        e = imgsim_embed_files(ctx, paths, r.ntodo, &bo, on_result, &c, err);
        if (e == IMGSIM_OK)
            e = r.fatal;
        if (e == IMGSIM_OK)
            e = flush(&r, err);
    }
    progress(&r, 1);
    if (e == IMGSIM_OK)
        e = cat_after_write(db, err);
done:
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
    stats->seconds = clock_now() - t0;
    return e;
}

/* Ids of items whose local source file is gone. */
typedef struct gone_list {
    char **ids;
    size_t n, cap;
} gone_list;

static imgsim_status collect_gone(void *user, const char *id, const char *src, imgsim_error *err)
{
    gone_list *g = user;
    struct stat sb;
    if (!src || strstr(src, "://") || stat(src, &sb) == 0 || (errno != ENOENT && errno != ENOTDIR))
        return IMGSIM_OK; /* only files that are really gone; EACCES or EIO keeps the item */
    if (grow_array((void **)&g->ids, &g->cap, g->n + 1, sizeof *g->ids, 64))
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    if (!(g->ids[g->n] = strdup(id)))
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    g->n++;
    return IMGSIM_OK;
}

imgsim_status imgsim_db_sync(imgsim_db *db, size_t *removed, imgsim_error *err)
{
    *removed = 0;
    gone_list g = {0};
    imgsim_status e = cat_item_sources(db, collect_gone, &g, err);
    if (e == IMGSIM_OK && g.n) /* removes, then the after-write step (HNSW index included) */
        e = imgsim_db_remove(db, (const char *const *)g.ids, g.n, removed, err);
    for (size_t i = 0; i < g.n; i++)
        free(g.ids[i]);
    free(g.ids);
    return e;
}

/*
 * ann.c — the collection's HNSW index (src/index/hnsw.h): where it lives, how a query uses
 * it, and how writers keep it in step with the catalogue. The file layout, the meta keys and
 * the crash story are in catalog.h (ANN section).
 *
 * Readers map the file named by meta.ann_file once per handle (re-opened when the name or
 * the file's identity changes) and search it, filtering rows dropped since it was saved
 * through the live-row bitmap and searching rows added since exactly; a file that is
 * missing or fails validation is remembered as bad and the query runs exactly.
 * Writers reconcile after every add or remove: rows alive but not in the index are inserted,
 * rows in it but dead are removed, and the result is saved under a new name and committed;
 * a big change, a compaction, or a missing or damaged file rebuild it from the vectors.
 *
 * The per-handle state hangs off imgsim_db.ann; imgsim_db_close frees it (ann_close).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/internal.h"
#include "core/error.h"
#include "index/hnsw.h"
#include "index/topk.h"

/* Lazy maintenance: an index file larger than this may stay behind the catalogue by fewer
 * than ANN_LAZY_ROWS (and under 1 % of its nodes) changed rows; the next larger change, or
 * imgsim_db_ann_sync, catches up. Smaller indexes are always saved current. */
#define ANN_LAZY_BYTES ((off_t)64 << 20)
#define ANN_LAZY_ROWS 4096
/* A change to more than this fraction of the nodes rebuilds (the threaded build is faster
 * than inserting one by one, and refits the quantiser). */
#define ANN_REBUILD_FRACTION 4 /* 1/4 */

struct ann_state {
    hnsw *h;            /* the mapped index, or NULL */
    hnsw_ctx *ctx;      /* search scratch */
    char file[64];      /* the file h came from, or that failed */
    struct stat id;     /* its identity when opened */
    int bad;            /* that file failed to open or to match the catalogue */
    char why[520];      /* ... and why */
    char note[560];     /* the last reason handed to a caller */
};

typedef struct ann_meta {
    int present;        /* meta.ann_file is set */
    char file[64];
    char vec_file[64];
    uint64_t rows, gen, nodes, seq;
    hnsw_params p;
} ann_meta;

/* ---- the per-handle state */

void ann_close(imgsim_db *db)
{
    struct ann_state *st = db->ann;
    if (!st)
        return;
    hnsw_free(st->h);
    hnsw_ctx_free(st->ctx);
    free(st);
    db->ann = NULL;
}

static struct ann_state *get_state(imgsim_db *db, imgsim_error *err)
{
    if (db->ann)
        return db->ann;
    struct ann_state *st = calloc(1, sizeof *st);
    if (!st) {
        error_set(err, IMGSIM_E_NOMEM, "out of memory");
        return NULL;
    }
    db->ann = st;
    return st;
}

/* Forget the mapped index (a writer is about to replace or delete its file). */
static void state_reset(imgsim_db *db)
{
    struct ann_state *st = db->ann;
    if (!st)
        return;
    hnsw_free(st->h);
    st->h = NULL;
    st->file[0] = 0;
    st->bad = 0;
}

/* ---- meta */

static int path_of(const imgsim_db *db, const char *name, char *p, size_t n)
{
    return snprintf(p, n, "%s/%s", db->dir, name) < (int)n ? 0 : -1;
}

static void params_to_opts(const hnsw_params *p, imgsim_ann_opts *o)
{
    memset(o, 0, sizeof *o);
    o->metric = p->metric;
    o->M = p->M;
    o->ef_construction = p->ef_construction;
    o->ef_search = p->ef_search;
    o->storage = p->storage == HNSW_F32 ? IMGSIM_ANN_F32 : IMGSIM_ANN_SQ8;
    o->pca_dims = p->pca_dims;
    o->pca_whiten = p->pca_whiten;
}

static void opts_to_params(const imgsim_ann_opts *o, hnsw_params *p)
{
    hnsw_params_default(p);
    p->metric = o->metric;
    p->M = o->M;
    p->ef_construction = o->ef_construction;
    p->ef_search = o->ef_search;
    p->storage = o->storage == IMGSIM_ANN_F32 ? HNSW_F32 : HNSW_SQ8;
    p->pca_dims = o->pca_dims > 0 ? o->pca_dims : 0;
    p->pca_whiten = o->pca_dims > 0 && o->pca_whiten;
}

/* Parameters that shape the graph or the codes (ef_search does not). */
static int same_structure(const hnsw_params *a, const hnsw_params *b)
{
    return a->metric == b->metric && a->M == b->M && a->ef_construction == b->ef_construction &&
           a->storage == b->storage && a->pca_dims == b->pca_dims &&
           a->pca_whiten == b->pca_whiten;
}

static imgsim_status read_meta(imgsim_db *db, ann_meta *am, imgsim_error *err)
{
    memset(am, 0, sizeof *am);
    hnsw_params_default(&am->p);
    sqlite3_stmt *st;
    imgsim_status s =
        cat_prepare(db, "SELECT key, value FROM meta WHERE key GLOB 'ann_*'", &st, err);
    if (s != IMGSIM_OK)
        return s;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (!k || !v)
            continue;
        unsigned long long u = strtoull(v, NULL, 10);
        if (!strcmp(k, "ann_file") && strlen(v) < sizeof am->file && !strchr(v, '/') &&
            !strncmp(v, "ann.", 4)) {
            am->present = 1;
            snprintf(am->file, sizeof am->file, "%s", v);
        } else if (!strcmp(k, "ann_vec_file")) {
            snprintf(am->vec_file, sizeof am->vec_file, "%s", v);
        } else if (!strcmp(k, "ann_rows")) {
            am->rows = u;
        } else if (!strcmp(k, "ann_gen")) {
            am->gen = u;
        } else if (!strcmp(k, "ann_nodes")) {
            am->nodes = u;
        } else if (!strcmp(k, "ann_seq")) {
            am->seq = u;
        } else if (!strcmp(k, "ann_metric")) {
            am->p.metric = (imgsim_metric)u;
        } else if (!strcmp(k, "ann_m")) {
            am->p.M = (int)u;
        } else if (!strcmp(k, "ann_efc")) {
            am->p.ef_construction = (int)u;
        } else if (!strcmp(k, "ann_ef")) {
            am->p.ef_search = (int)u;
        } else if (!strcmp(k, "ann_storage")) {
            am->p.storage = !strcmp(v, "f32") ? HNSW_F32 : HNSW_SQ8;
        } else if (!strcmp(k, "ann_pca")) {
            am->p.pca_dims = (int)u;
        } else if (!strcmp(k, "ann_whiten")) {
            am->p.pca_whiten = u != 0;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IMGSIM_OK : cat_sql_fail(db, err, "cannot read meta");
}

/* Inside a transaction: record the parameters. */
static imgsim_status write_params(imgsim_db *db, const hnsw_params *p, imgsim_error *err)
{
    imgsim_status s;
    if ((s = cat_meta_set_u64(db, "ann_metric", (uint64_t)p->metric, err)) != IMGSIM_OK ||
        (s = cat_meta_set_u64(db, "ann_m", (uint64_t)p->M, err)) != IMGSIM_OK ||
        (s = cat_meta_set_u64(db, "ann_efc", (uint64_t)p->ef_construction, err)) != IMGSIM_OK ||
        (s = cat_meta_set_u64(db, "ann_ef", (uint64_t)p->ef_search, err)) != IMGSIM_OK ||
        (s = cat_meta_set(db, "ann_storage", p->storage == HNSW_F32 ? "f32" : "sq8", err)) !=
            IMGSIM_OK ||
        (s = cat_meta_set_u64(db, "ann_pca", (uint64_t)p->pca_dims, err)) != IMGSIM_OK)
        return s;
    return cat_meta_set_u64(db, "ann_whiten", (uint64_t)(p->pca_whiten != 0), err);
}

/* Inside a transaction: the index now covers every row alive in [0, nrows). */
static imgsim_status write_coverage(imgsim_db *db, size_t nodes, imgsim_error *err)
{
    imgsim_status s;
    if ((s = cat_meta_set(db, "ann_vec_file", db->vec_name, err)) != IMGSIM_OK ||
        (s = cat_meta_set_u64(db, "ann_rows", db->nrows, err)) != IMGSIM_OK ||
        (s = cat_meta_set_u64(db, "ann_gen", db->gen, err)) != IMGSIM_OK)
        return s;
    return cat_meta_set_u64(db, "ann_nodes", nodes, err);
}

/* ---- opening a file */

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Does index `h` fit what the catalogue says of it? 0, or -1 with the reason in `why`. */
static int matches(const imgsim_db *db, const hnsw *h, const ann_meta *am, char *why, size_t n)
{
    hnsw_info in;
    hnsw_get_info(h, &in);
    if (in.dim != db->dim)
        snprintf(why, n, "%s holds %d-d vectors, the collection %d-d", am->file, in.dim, db->dim);
    else if (!same_structure(&in.params, &am->p))
        snprintf(why, n, "%s was built with other parameters than the catalogue records",
                 am->file);
    else if (in.count != am->nodes || (uint64_t)in.row_limit > am->rows || am->rows > db->nrows)
        snprintf(why, n, "%s does not match the catalogue (%zu nodes, %" PRIu64 " recorded)",
                 am->file, in.count, am->nodes);
    else
        return 0;
    return -1;
}

/* Open `am->file` fresh. IMGSIM_OK with *out NULL and `why` filled when the file is missing,
 * damaged or does not match; an error only for failures that say nothing about the file. */
static imgsim_status open_index(imgsim_db *db, const ann_meta *am, hnsw **out, struct stat *id,
                                char *why, size_t n, imgsim_error *err)
{
    *out = NULL;
    char path[4096];
    if (path_of(db, am->file, path, sizeof path) < 0)
        return error_set(err, IMGSIM_E_ARG, "%s: path too long", db->dir);
    if (stat(path, id) != 0) {
        snprintf(why, n, "index file %s is missing", am->file);
        return IMGSIM_OK;
    }
    imgsim_error e = {0};
    hnsw *h = NULL;
    imgsim_status s = hnsw_open(path, &h, &e);
    if (s == IMGSIM_E_NOMEM) {
        if (err)
            *err = e;
        return s;
    }
    if (s != IMGSIM_OK) {
        snprintf(why, n, "%s", e.msg[0] ? e.msg : imgsim_status_name(s));
        return IMGSIM_OK;
    }
    if (matches(db, h, am, why, n) < 0) {
        hnsw_free(h);
        return IMGSIM_OK;
    }
    *out = h;
    return IMGSIM_OK;
}

/* The handle's mapped index for `am` (opened on first use, re-opened when the file changes),
 * or NULL with *why set. */
static imgsim_status cached(imgsim_db *db, struct ann_state *st, const ann_meta *am, hnsw **out,
                            const char **why, imgsim_error *err)
{
    *out = NULL;
    char path[4096];
    struct stat sb;
    if (path_of(db, am->file, path, sizeof path) < 0 || stat(path, &sb) != 0) {
        /* deleted since it was mapped (a writer saved a newer one after this handle's
         * snapshot began): names are never reused, so the mapping still holds that index */
        if (st->h && !st->bad && !strcmp(st->file, am->file) &&
            matches(db, st->h, am, st->why, sizeof st->why) == 0) {
            *out = st->h;
            return IMGSIM_OK;
        }
        snprintf(st->note, sizeof st->note, "index file %s is missing", am->file);
        *why = st->note;
        return IMGSIM_OK;
    }
    if (!strcmp(st->file, am->file) && same_file(&st->id, &sb)) {
        if (st->h && matches(db, st->h, am, st->why, sizeof st->why) == 0) {
            *out = st->h;
            return IMGSIM_OK;
        }
        if (st->bad || st->h) {
            st->bad = 1;
            snprintf(st->note, sizeof st->note, "%s", st->why);
            *why = st->note;
            return IMGSIM_OK;
        }
    }
    state_reset(db);
    hnsw *h;
    imgsim_status s = open_index(db, am, &h, &sb, st->why, sizeof st->why, err);
    if (s != IMGSIM_OK)
        return s;
    snprintf(st->file, sizeof st->file, "%s", am->file);
    st->id = sb;
    if (!h) {
        st->bad = 1;
        snprintf(st->note, sizeof st->note, "%s", st->why);
        *why = st->note;
        return IMGSIM_OK;
    }
    st->h = h;
    *out = h;
    return IMGSIM_OK;
}

/* ---- searching */

imgsim_status ann_search(imgsim_db *db, imgsim_metric m, const float *q, int k, int ef,
                         const uint8_t *filter, uint32_t exclude, exact_hit *out, int *nout,
                         int *used, const char **why, imgsim_error *err)
{
    *used = 0;
    *why = NULL;
    *nout = 0;
    ann_meta am;
    imgsim_status s = read_meta(db, &am, err);
    if (s != IMGSIM_OK || !am.present)
        return s;
    struct ann_state *st = get_state(db, err);
    if (!st)
        return IMGSIM_E_NOMEM;
    if (m != am.p.metric) {
        snprintf(st->note, sizeof st->note, "the HNSW index serves %s, not %s",
                 imgsim_metric_name(am.p.metric), imgsim_metric_name(m));
        *why = st->note;
        return IMGSIM_OK;
    }
    if (strcmp(am.vec_file, db->vec_name) != 0) {
        snprintf(st->note, sizeof st->note,
                 "the HNSW index predates a compaction (the next write rebuilds it)");
        *why = st->note;
        return IMGSIM_OK;
    }
    hnsw *h;
    if ((s = cached(db, st, &am, &h, why, err)) != IMGSIM_OK || !h)
        return s;
    if (!st->ctx && (s = hnsw_ctx_new(&st->ctx, err)) != IMGSIM_OK)
        return s;
    exact_set full = cat_set(db);
    if (am.gen == db->gen)
        full.alive = NULL; /* nothing dropped since the save: every node is alive (and the
                              search need not sample a filter) */
    if ((s = hnsw_search(h, st->ctx, q, k, ef > 0 ? ef : am.p.ef_search, filter, exclude, &full,
                         out, nout, err)) != IMGSIM_OK)
        return s;
    if (am.rows < db->nrows) {
        /* rows added since the index was saved: searched exactly, then merged */
        size_t base = (size_t)am.rows;
        exact_set tail = {vec_row(db, (uint32_t)base), db->nrows - base, db->dim,
                          db->norms + base, db->alive + base};
        uint32_t ex = exclude != EXACT_NO_ROW && exclude >= base ? exclude - (uint32_t)base
                                                                 : EXACT_NO_ROW;
        exact_hit *th = malloc((size_t)k * sizeof *th);
        int tn = 0;
        if (!th)
            return error_set(err, IMGSIM_E_NOMEM, "out of memory");
        s = exact_search(&tail, m, q, 1, k, filter ? filter + base : NULL, &ex, 1, th, &tn, err);
        for (int i = 0; i < tn; i++)
            th[i].row += (uint32_t)base;
        if (s == IMGSIM_OK && (*nout = topk_merge(m, out, *nout, th, tn, k)) < 0) {
            *nout = 0;
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
        }
        free(th);
        if (s != IMGSIM_OK)
            return s;
    }
    *used = 1;
    return IMGSIM_OK;
}

/* ---- writing */

/* Delete ann.* files other than `keep` (left by a crash or replaced by a save). */
static void remove_strays(imgsim_db *db, const char *keep)
{
    static const char *const suffixes[] = {".hnsw", ".hnsw.tmp", NULL};
    cat_remove_strays(db, "ann.", suffixes, keep);
}

/* Save `h` (covering exactly the live rows) under a new name and commit it as the index. */
static imgsim_status publish(imgsim_db *db, const hnsw *h, const hnsw_params *p,
                             const ann_meta *old, imgsim_error *err)
{
    uint64_t seq = old->seq, fseq = 0;
    if (old->present && sscanf(old->file, "ann.%" SCNu64 ".hnsw", &fseq) == 1 && fseq > seq)
        seq = fseq;
    seq++;
    char name[64], path[4096];
    snprintf(name, sizeof name, "ann.%" PRIu64 ".hnsw", seq);
    if (path_of(db, name, path, sizeof path) < 0)
        return error_set(err, IMGSIM_E_ARG, "%s: path too long", db->dir);
    imgsim_status s = hnsw_save(h, path, err);
    if (s != IMGSIM_OK)
        return s;
    hnsw_info in;
    hnsw_get_info(h, &in);
    if ((s = cat_write_begin(db, err)) == IMGSIM_OK &&
        (s = cat_meta_set(db, "ann_file", name, err)) == IMGSIM_OK &&
        (s = cat_meta_set_u64(db, "ann_seq", seq, err)) == IMGSIM_OK &&
        (s = write_params(db, p, err)) == IMGSIM_OK &&
        (s = write_coverage(db, in.count, err)) == IMGSIM_OK)
        s = cat_write_commit(db, err);
    if (s != IMGSIM_OK) {
        cat_write_abort(db);
        unlink(path);
        return s;
    }
    /* committed: the old file (and any stray) can go */
    state_reset(db);
    remove_strays(db, name);
    return IMGSIM_OK;
}

static imgsim_status build(imgsim_db *db, const hnsw_params *p, int threads, const ann_meta *old,
                           imgsim_error *err)
{
    if (p->pca_dims > 0 && db->nalive <= (size_t)p->pca_dims)
        return error_set(err, IMGSIM_E_ARG,
                         "a PCA to %d dimensions needs more than %d vectors (the collection "
                         "has %zu): use fewer --dims or none",
                         p->pca_dims, p->pca_dims, db->nalive);
    if (db->nalive == 0) /* nothing to index (yet): searches of an empty collection are exact,
                          * and a later `index --ann` or `ann build` builds the index */
        return IMGSIM_OK;
    hnsw *h = NULL;
    imgsim_status s = hnsw_build(p, db->map, db->nrows, db->dim, db->alive, threads, &h, err);
    if (s == IMGSIM_OK)
        s = publish(db, h, p, old, err);
    hnsw_free(h);
    return s;
}

static imgsim_status check_opts(const imgsim_db *db, const imgsim_ann_opts *o, imgsim_error *err)
{
    if (o->metric != IMGSIM_METRIC_COSINE && o->metric != IMGSIM_METRIC_L2)
        return error_set(err, IMGSIM_E_ARG,
                         "an HNSW index serves cosine or l2 (l1 queries are always exact)");
    if (o->M < 2 || o->M > 256)
        return error_set(err, IMGSIM_E_ARG, "M must be between 2 and 256");
    if (o->ef_construction < 1 || o->ef_construction > 10000)
        return error_set(err, IMGSIM_E_ARG, "ef_construction must be between 1 and 10000");
    if (o->ef_search < 1 || o->ef_search > IMGSIM_MAX_EF)
        return error_set(err, IMGSIM_E_ARG, "ef_search must be between 1 and %d",
                         IMGSIM_MAX_EF);
    if (o->storage != IMGSIM_ANN_SQ8 && o->storage != IMGSIM_ANN_F32)
        return error_set(err, IMGSIM_E_ARG, "unknown index storage");
    if (o->pca_dims < 0 || o->pca_dims >= db->dim)
        return error_set(err, IMGSIM_E_ARG, "PCA dimensions must be between 1 and %d",
                         db->dim - 1);
    return IMGSIM_OK;
}

/* Live rows in [lo, hi). */
static size_t alive_in(const imgsim_db *db, size_t lo, size_t hi)
{
    size_t n = 0;
    for (size_t r = lo; r < hi && r < db->nrows; r++)
        n += db->alive[r] != 0;
    return n;
}

/* Bring the existing index in step: reconcile, or rebuild. */
static imgsim_status catch_up(imgsim_db *db, const ann_meta *am, int lazy, int *rebuilt,
                              imgsim_error *err)
{
    if (rebuilt)
        *rebuilt = 0;
    if (!am->present)
        return IMGSIM_OK;
    int renumbered = strcmp(am->vec_file, db->vec_name) != 0;
    if (lazy && !renumbered) {
        char path[4096];
        struct stat sb;
        if (path_of(db, am->file, path, sizeof path) == 0 && stat(path, &sb) == 0 &&
            sb.st_size > ANN_LAZY_BYTES && am->rows <= db->nrows) {
            size_t below = alive_in(db, 0, (size_t)am->rows);
            size_t changed = alive_in(db, (size_t)am->rows, db->nrows) +
                             (am->nodes > below ? (size_t)am->nodes - below : 0);
            if (changed < ANN_LAZY_ROWS && changed * 100 < am->nodes)
                return IMGSIM_OK; /* searched correctly as it is: catch up later */
        }
    }
    hnsw *h = NULL;
    struct stat id;
    char why[520];
    imgsim_status s = IMGSIM_OK;
    if (!renumbered) {
        state_reset(db); /* the mapped copy, if any, is about to be replaced */
        if ((s = open_index(db, am, &h, &id, why, sizeof why, err)) != IMGSIM_OK)
            return s;
    }
    size_t nadd = 0, nrem = 0;
    uint32_t *add = NULL, *rem = NULL;
    int rebuild = h == NULL;
    if (h) {
        hnsw_info in;
        hnsw_get_info(h, &in);
        add = malloc((db->nrows ? db->nrows : 1) * sizeof *add);
        rem = malloc((in.row_limit ? in.row_limit : 1) * sizeof *rem);
        if (!add || !rem) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            goto done;
        }
        for (uint32_t r = 0; r < in.row_limit; r++)
            if (hnsw_contains(h, r) && (r >= db->nrows || !db->alive[r])) {
                if (r >= db->nrows)
                    rebuild = 1; /* names rows the catalogue never had: not ours */
                rem[nrem++] = r;
            }
        for (size_t r = 0; r < db->nrows; r++)
            if (db->alive[r] && !hnsw_contains(h, (uint32_t)r))
                add[nadd++] = (uint32_t)r;
        if ((nadd + nrem) * ANN_REBUILD_FRACTION > in.count + nadd && nadd + nrem > 64)
            rebuild = 1;
    }
    if (rebuild) {
        hnsw_free(h);
        h = NULL;
        if (rebuilt)
            *rebuilt = 1;
        s = build(db, &am->p, 0, am, err);
        goto done;
    }
    if (nadd + nrem == 0) {
        /* nothing to change in the file: record that it covers the rows as they are now */
        if (am->rows != db->nrows || am->gen != db->gen) {
            hnsw_info in;
            hnsw_get_info(h, &in);
            if ((s = cat_write_begin(db, err)) == IMGSIM_OK &&
                (s = write_coverage(db, in.count, err)) == IMGSIM_OK)
                s = cat_write_commit(db, err);
            if (s != IMGSIM_OK)
                cat_write_abort(db);
        }
        goto done;
    }
    if (nrem && (s = hnsw_remove(h, rem, nrem, err)) != IMGSIM_OK)
        goto done;
    for (size_t i = 0; i < nadd && s == IMGSIM_OK; i++)
        s = hnsw_insert(h, add[i], vec_row(db, add[i]), err);
    if (s == IMGSIM_OK)
        s = publish(db, h, &am->p, am, err);
done:
    hnsw_free(h);
    free(add);
    free(rem);
    return s;
}

imgsim_status ann_refresh(imgsim_db *db, int lazy, imgsim_error *err)
{
    if (!db->writable)
        return IMGSIM_OK;
    ann_meta am;
    imgsim_status s = read_meta(db, &am, err);
    if (s != IMGSIM_OK || !am.present)
        return s;
    return catch_up(db, &am, lazy, NULL, err);
}

/* ---- the public API */

void imgsim_ann_opts_default(imgsim_ann_opts *o)
{
    hnsw_params p;
    hnsw_params_default(&p);
    params_to_opts(&p, o);
    o->metric = IMGSIM_METRIC_COSINE;
    o->storage = IMGSIM_ANN_SQ8;
    o->pca_dims = 0;
    o->pca_whiten = 0;
}

const char *imgsim_ann_status_name(imgsim_ann_status s)
{
    switch (s) {
    case IMGSIM_ANN_NONE: return "none";
    case IMGSIM_ANN_CURRENT: return "current";
    case IMGSIM_ANN_BEHIND: return "behind";
    case IMGSIM_ANN_STALE: return "stale";
    case IMGSIM_ANN_DAMAGED: return "damaged";
    }
    return "unknown";
}

static imgsim_status writer_only(const imgsim_db *db, imgsim_error *err)
{
    return db->writable ? IMGSIM_OK
                        : error_set(err, IMGSIM_E_ARG, "%s: collection opened read-only",
                                    db->dir);
}

imgsim_status imgsim_db_ann_build(imgsim_db *db, const imgsim_ann_opts *o, imgsim_error *err)
{
    imgsim_status s = writer_only(db, err);
    ann_meta am;
    if (s != IMGSIM_OK || (s = read_meta(db, &am, err)) != IMGSIM_OK)
        return s;
    imgsim_ann_opts d;
    if (!o) {
        if (am.present)
            params_to_opts(&am.p, &d);
        else
            imgsim_ann_opts_default(&d);
        o = &d;
    }
    if ((s = check_opts(db, o, err)) != IMGSIM_OK)
        return s;
    hnsw_params p;
    opts_to_params(o, &p);
    return build(db, &p, o->threads, &am, err);
}

imgsim_status imgsim_db_ann_sync(imgsim_db *db, const imgsim_ann_opts *o, int *rebuilt,
                                 imgsim_error *err)
{
    if (rebuilt)
        *rebuilt = 0;
    imgsim_status s = writer_only(db, err);
    ann_meta am;
    if (s != IMGSIM_OK || (s = read_meta(db, &am, err)) != IMGSIM_OK)
        return s;
    if (o) {
        if ((s = check_opts(db, o, err)) != IMGSIM_OK)
            return s;
        hnsw_params p;
        opts_to_params(o, &p);
        if (!am.present || !same_structure(&p, &am.p)) {
            if (rebuilt)
                *rebuilt = 1;
            return build(db, &p, o->threads, &am, err);
        }
        if (p.ef_search != am.p.ef_search) {
            if ((s = cat_meta_set_u64(db, "ann_ef", (uint64_t)p.ef_search, err)) != IMGSIM_OK)
                return s;
            am.p.ef_search = p.ef_search;
        }
    }
    return catch_up(db, &am, 0, rebuilt, err);
}

imgsim_status imgsim_db_ann_drop(imgsim_db *db, imgsim_error *err)
{
    imgsim_status s = writer_only(db, err);
    if (s != IMGSIM_OK)
        return s;
    if ((s = cat_write_begin(db, err)) == IMGSIM_OK &&
        (s = cat_exec(db, "DELETE FROM meta WHERE key GLOB 'ann_*' AND key <> 'ann_seq'", err)) ==
            IMGSIM_OK)
        s = cat_write_commit(db, err);
    if (s != IMGSIM_OK) {
        cat_write_abort(db);
        return s;
    }
    state_reset(db);
    remove_strays(db, NULL);
    return IMGSIM_OK;
}

imgsim_status imgsim_db_ann_info(imgsim_db *db, imgsim_ann_info *out, imgsim_error *err)
{
    memset(out, 0, sizeof *out);
    imgsim_status s = cat_read_begin(db, err);
    if (s != IMGSIM_OK)
        return s;
    out->db_gen = db->gen;
    out->live = db->nalive;
    out->dim = db->dim;
    ann_meta am;
    if ((s = read_meta(db, &am, err)) != IMGSIM_OK || !am.present)
        goto done;
    params_to_opts(&am.p, &out->opts);
    snprintf(out->file, sizeof out->file, "%s", am.file);
    out->gen = am.gen;
    char path[4096];
    struct stat sb;
    if (path_of(db, am.file, path, sizeof path) == 0 && stat(path, &sb) == 0)
        out->bytes_file = (size_t)sb.st_size;
    if (strcmp(am.vec_file, db->vec_name) != 0) {
        out->status = IMGSIM_ANN_STALE;
        snprintf(out->problem, sizeof out->problem,
                 "it numbers the rows of %s, the vectors are now in %s (compacted since)",
                 am.vec_file, db->vec_name);
        goto done;
    }
    struct ann_state *st = get_state(db, err);
    if (!st) {
        s = IMGSIM_E_NOMEM;
        goto done;
    }
    hnsw *h;
    const char *why = NULL;
    if ((s = cached(db, st, &am, &h, &why, err)) != IMGSIM_OK)
        goto done;
    if (!h) {
        out->status = IMGSIM_ANN_DAMAGED;
        snprintf(out->problem, sizeof out->problem, "%.250s", why ? why : "cannot open");
        goto done;
    }
    hnsw_info in;
    hnsw_get_info(h, &in);
    out->nodes = in.count;
    out->code_dim = in.code_dim;
    out->max_level = in.max_level;
    out->bytes_graph = in.bytes_graph;
    out->bytes_codes = in.bytes_codes;
    out->bytes_other = in.bytes_other;
    for (size_t r = 0; r < db->nrows; r++) {
        int in_index = hnsw_contains(h, (uint32_t)r);
        if (db->alive[r] && !in_index)
            out->added++;
        else if (!db->alive[r] && in_index)
            out->dropped++;
    }
    out->status = out->added || out->dropped ? IMGSIM_ANN_BEHIND : IMGSIM_ANN_CURRENT;
done:
    cat_read_end(db);
    return s;
}

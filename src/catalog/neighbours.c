/*
 * neighbours.c — the precomputed neighbour table: the top-k of every vector row, stored in
 * the catalogue so that "items like item X" is a lookup, not a scan.
 *
 * Freshness: meta.nbr_gen is the collection generation the table describes. Every commit
 * that adds or drops vector rows bumps meta.gen and logs the rows in `changes`; the table is
 * fresh when nbr_gen == gen. A refresh reads the log since nbr_gen and repairs the table:
 *   - dropped rows lose their list, and every list naming a dropped row is recomputed;
 *   - added rows get their own list (one blocked GEMM of the new rows against all), and
 *     the same products offer each existing row its best new candidates, merged in.
 * A large change (over a quarter of the collection) rebuilds the table instead.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog/internal.h"
#include "core/error.h"
#include "core/grow.h"
#include "index/topk.h"

imgsim_status imgsim_neighbours_info(imgsim_db *db, int *k, imgsim_metric *m, int *fresh,
                                     imgsim_error *err)
{
    uint64_t kk, mm = 0, tgen = UINT64_MAX, gen = 0;
    imgsim_status s = cat_meta_get_u64(db, "nbr_k", 0, &kk, err);
    if (s == IMGSIM_OK && kk)
        s = cat_meta_get_u64(db, "nbr_metric", 0, &mm, err);
    if (s == IMGSIM_OK && kk)
        s = cat_meta_get_u64(db, "nbr_gen", UINT64_MAX, &tgen, err);
    if (s == IMGSIM_OK && kk)
        s = cat_meta_get_u64(db, "gen", 0, &gen, err);
    if (s != IMGSIM_OK)
        kk = 0;
    if (k)
        *k = (int)kk;
    if (m)
        *m = (imgsim_metric)mm;
    if (fresh)
        *fresh = kk && tgen == gen;
    return s;
}

int nbr_read(imgsim_db *db, uint32_t r, exact_hit *out, int k)
{
    sqlite3_stmt *st;
    if (cat_prepare(db, "SELECT nbr, score FROM neighbours WHERE row = ? ORDER BY rank LIMIT ?",
                    &st, NULL) != IMGSIM_OK)
        return -1;
    sqlite3_bind_int64(st, 1, r);
    sqlite3_bind_int(st, 2, k);
    int n = 0;
    while (n < k && sqlite3_step(st) == SQLITE_ROW) {
        out[n].row = (uint32_t)sqlite3_column_int64(st, 0);
        out[n].score = (float)sqlite3_column_double(st, 1);
        n++;
    }
    sqlite3_finalize(st);
    return n;
}

/* Rewrite the lists of rows with changed[r] set (all rows when changed is NULL), record the
 * table's k/metric/generation and clear the change log, in one transaction. */
static imgsim_status store(imgsim_db *db, int k, imgsim_metric m, const exact_hit *lists,
                           const int *counts, const uint8_t *changed, imgsim_error *err)
{
    sqlite3_stmt *del = NULL, *ins = NULL;
    imgsim_status s = cat_write_begin(db, err);
    if (s != IMGSIM_OK)
        return s;
    if (!changed)
        s = cat_exec(db, "DELETE FROM neighbours", err);
    if (s == IMGSIM_OK)
        s = cat_prepare(db, "DELETE FROM neighbours WHERE row = ?", &del, err);
    if (s == IMGSIM_OK)
        s = cat_prepare(db, "INSERT INTO neighbours(row, rank, nbr, score) VALUES(?, ?, ?, ?)",
                        &ins, err);
    for (size_t r = 0; s == IMGSIM_OK && r < db->nrows; r++) {
        if (changed && !changed[r])
            continue;
        if (changed) {
            sqlite3_bind_int64(del, 1, (sqlite3_int64)r);
            if (sqlite3_step(del) != SQLITE_DONE)
                s = cat_sql_fail(db, err, "cannot update the neighbour table");
            sqlite3_reset(del);
        }
        for (int j = 0; s == IMGSIM_OK && j < counts[r]; j++) {
            const exact_hit *h = &lists[r * (size_t)k + (size_t)j];
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)r);
            sqlite3_bind_int(ins, 2, j);
            sqlite3_bind_int64(ins, 3, h->row);
            sqlite3_bind_double(ins, 4, h->score);
            if (sqlite3_step(ins) != SQLITE_DONE)
                s = cat_sql_fail(db, err, "cannot write the neighbour table");
            sqlite3_reset(ins);
        }
    }
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    if (s == IMGSIM_OK && (s = cat_meta_set_u64(db, "nbr_k", (uint64_t)k, err)) == IMGSIM_OK &&
        (s = cat_meta_set_u64(db, "nbr_metric", (uint64_t)m, err)) == IMGSIM_OK &&
        (s = cat_meta_set_u64(db, "nbr_gen", db->gen, err)) == IMGSIM_OK &&
        (s = cat_exec(db, "DELETE FROM changes", err)) == IMGSIM_OK)
        s = cat_write_commit(db, err);
    if (s != IMGSIM_OK)
        cat_write_abort(db);
    return s;
}

static imgsim_status full_build(imgsim_db *db, int k, imgsim_metric m, int threads,
                                imgsim_error *err)
{
    size_t n = db->nrows;
    exact_hit *lists = malloc((n ? n : 1) * (size_t)k * sizeof *lists);
    int *counts = calloc(n ? n : 1, sizeof *counts);
    imgsim_status s;
    if (!lists || !counts)
        s = error_set(err, IMGSIM_E_NOMEM, "out of memory for the neighbour table");
    else {
        exact_set set = cat_set(db);
        s = n ? exact_all_pairs(&set, m, k, threads, lists, counts, err) : IMGSIM_OK;
        if (s == IMGSIM_OK)
            s = store(db, k, m, lists, counts, NULL, err);
    }
    free(lists);
    free(counts);
    return s;
}

/* Load the stored table into lists/counts (n x k). */
static imgsim_status load(imgsim_db *db, int k, exact_hit *lists, int *counts, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, "SELECT row, nbr, score FROM neighbours ORDER BY row, rank",
                                  &st, err);
    if (s != IMGSIM_OK)
        return s;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) { /* appended in rank order: gaps close up */
        sqlite3_int64 r = sqlite3_column_int64(st, 0);
        if (r < 0 || (size_t)r >= db->nrows || counts[r] >= k)
            continue;
        exact_hit *h = &lists[(size_t)r * (size_t)k + (size_t)counts[r]++];
        h->row = (uint32_t)sqlite3_column_int64(st, 1);
        h->score = (float)sqlite3_column_double(st, 2);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IMGSIM_OK : cat_sql_fail(db, err, "cannot read the neighbour table");
}

static imgsim_status incremental(imgsim_db *db, int k, imgsim_metric m, int threads,
                                 const uint32_t *added, size_t na, imgsim_error *err)
{
    size_t n = db->nrows;
    exact_hit *lists = calloc(n * (size_t)k, sizeof *lists);
    int *counts = calloc(n, sizeof *counts);
    uint8_t *changed = calloc(n, 1);
    uint32_t *stale = malloc(n * sizeof *stale);
    exact_hit *fwd = malloc((na ? na : 1) * (size_t)k * sizeof *fwd);
    int *fwd_n = malloc((na ? na : 1) * sizeof *fwd_n);
    exact_hit *back = na ? malloc(n * (size_t)k * sizeof *back) : NULL;
    int *back_n = na ? malloc(n * sizeof *back_n) : NULL;
    imgsim_status s = IMGSIM_OK;
    exact_set set = cat_set(db);
    if (!lists || !counts || !changed || !stale || !fwd || !fwd_n || (na && (!back || !back_n))) {
        s = error_set(err, IMGSIM_E_NOMEM, "out of memory for the neighbour table");
        goto done;
    }
    if ((s = load(db, k, lists, counts, err)) != IMGSIM_OK)
        goto done;
    /* dead rows lose their lists; live rows naming a dead row are recomputed */
    size_t ns = 0;
    for (size_t r = 0; r < n; r++) {
        if (!db->alive[r]) {
            if (counts[r])
                changed[r] = 1;
            counts[r] = 0;
            continue;
        }
        for (int j = 0; j < counts[r]; j++) {
            uint32_t x = lists[r * (size_t)k + (size_t)j].row;
            if (x >= n || !db->alive[x]) {
                stale[ns++] = (uint32_t)r;
                break;
            }
        }
    }
    if (ns) {
        exact_hit *out = malloc(ns * (size_t)k * sizeof *out);
        int *nout = malloc(ns * sizeof *nout);
        if (!out || !nout)
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory for the neighbour table");
        else
            s = exact_search_rows(&set, m, stale, ns, k, NULL, threads, out, nout, err);
        for (size_t i = 0; s == IMGSIM_OK && i < ns; i++) {
            uint32_t r = stale[i];
            memcpy(&lists[r * (size_t)k], &out[i * (size_t)k], (size_t)nout[i] * sizeof *out);
            counts[r] = nout[i];
            changed[r] = 2; /* complete: already saw the added rows */
        }
        free(out);
        free(nout);
        if (s != IMGSIM_OK)
            goto done;
    }
    if (na) {
        if ((s = exact_cross(&set, m, added, na, k, threads, fwd, fwd_n, back, back_n, err)) !=
            IMGSIM_OK)
            goto done;
        for (size_t i = 0; i < na; i++) {
            uint32_t r = added[i];
            memcpy(&lists[r * (size_t)k], &fwd[i * (size_t)k], (size_t)fwd_n[i] * sizeof *fwd);
            counts[r] = fwd_n[i];
            changed[r] = 2;
        }
        for (size_t r = 0; r < n; r++) {
            if (!db->alive[r] || changed[r] == 2 || back_n[r] == 0)
                continue;
            exact_hit *l = &lists[r * (size_t)k];
            exact_hit worst = counts[r] ? l[counts[r] - 1] : (exact_hit){0, 0};
            if (counts[r] == k && !topk_hit_better(m, &back[r * (size_t)k], &worst))
                continue; /* no new row beats the current k-th */
            int nm = topk_merge(m, l, counts[r], &back[r * (size_t)k], back_n[r], k);
            if (nm < 0) {
                s = error_set(err, IMGSIM_E_NOMEM, "out of memory for the neighbour table");
                goto done;
            }
            counts[r] = nm;
            changed[r] = 1;
        }
    }
    s = store(db, k, m, lists, counts, changed, err);
done:
    free(lists);
    free(counts);
    free(changed);
    free(stale);
    free(fwd);
    free(fwd_n);
    free(back);
    free(back_n);
    return s;
}

/* Rows added since the table's generation that are still alive; -1 count on failure. */
static imgsim_status added_since(imgsim_db *db, uint64_t since, uint32_t **rows, size_t *n,
                                 size_t *dropped, imgsim_error *err)
{
    *rows = NULL;
    *n = *dropped = 0;
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, "SELECT DISTINCT row, op FROM changes WHERE gen > ?", &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 r = sqlite3_column_int64(st, 0);
        if (sqlite3_column_int(st, 1) == 2) {
            (*dropped)++;
            continue;
        }
        if (r < 0 || (size_t)r >= db->nrows || !db->alive[r])
            continue;
        if (grow_array((void **)rows, &cap, *n + 1, sizeof **rows, 256)) {
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
            break;
        }
        (*rows)[(*n)++] = (uint32_t)r;
    }
    sqlite3_finalize(st);
    if (s == IMGSIM_OK && rc != SQLITE_DONE)
        s = cat_sql_fail(db, err, "cannot read the change log");
    if (s != IMGSIM_OK) {
        free(*rows);
        *rows = NULL;
    }
    return s;
}

static imgsim_status update(imgsim_db *db, int k, imgsim_metric m, int threads, int *inc,
                            imgsim_error *err)
{
    int tk, fresh;
    imgsim_metric tm;
    if (inc)
        *inc = 0;
    imgsim_status s = imgsim_neighbours_info(db, &tk, &tm, &fresh, err);
    if (s != IMGSIM_OK)
        return s;
    if (tk != k || tm != m)
        return full_build(db, k, m, threads, err);
    if (fresh) {
        if (inc)
            *inc = 1;
        return IMGSIM_OK;
    }
    uint32_t *added;
    size_t na, nd;
    s = added_since(db, cat_meta_u64(db, "nbr_gen", 0), &added, &na, &nd, err);
    if (s != IMGSIM_OK)
        return s;
    if ((na + nd) * 4 > db->nalive + 1) {
        free(added);
        return full_build(db, k, m, threads, err);
    }
    if (inc)
        *inc = 1;
    s = incremental(db, k, m, threads, added, na, err);
    free(added);
    return s;
}

imgsim_status imgsim_neighbours_build(imgsim_db *db, int k, imgsim_metric m, int threads,
                                      int *incremental_out, imgsim_error *err)
{
    imgsim_status s = cat_check_writable(db, err);
    if (s != IMGSIM_OK)
        return s;
    if (k < 1 || k > IMGSIM_NEIGHBOURS_MAX_K)
        return error_set(err, IMGSIM_E_ARG, "k must be between 1 and %d",
                         IMGSIM_NEIGHBOURS_MAX_K);
    return update(db, k, m, threads, incremental_out, err);
}

imgsim_status nbr_refresh(imgsim_db *db, imgsim_error *err)
{
    int k, fresh;
    imgsim_metric m;
    imgsim_status s = imgsim_neighbours_info(db, &k, &m, &fresh, err);
    if (s != IMGSIM_OK)
        return s;
    if (k == 0)
        return cat_exec(db, "DELETE FROM changes", err);
    if (fresh)
        return IMGSIM_OK;
    return update(db, k, m, 0, NULL, err);
}

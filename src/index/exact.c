/*
 * exact.c — brute-force k nearest neighbours (contract in exact.h): argument checks, the
 * split of the work over threads, and the selection of the k best rows from score blocks.
 *
 * Work is cut into units that threads claim from an atomic counter:
 *   search   a block of up to QB queries x a part of the rows (walked RB rows at a time);
 *   pairs    a TB x TB tile (I, J >= I) of the all-pairs matrix. An off-diagonal tile is
 *            scanned once and fed both ways: row i gets candidate j and row j candidate i,
 *            so every pair is scored once (half the sgemm of a plain search);
 *   cross    a range of RB rows of the set x all new rows: the new rows' heaps get the
 *            range's rows, the range's rows (owned by the unit) get the new rows.
 * Each unit computes its block with score_block() (OpenBLAS kept on one thread, so two of
 * our threads never fight its threads for the two cores: on 1024 x 1024 x 1280 blocks two
 * threads each calling single-threaded sgemm ran at 241 GFLOPS, one call with two BLAS
 * threads at 239, and this way the selection runs on both cores too, on a block still in
 * the core's cache; it is ~6% of all-pairs time) and feeds keys to bounded heaps
 * (topk.h). A thread keeps private heaps for the queries it feeds (thread 0 writes into the
 * caller's output); they are merged at the end, so scanning takes no locks. The tiling does
 * not depend on the thread count and (key, row) is a total order, so results are identical
 * whatever the number of threads.
 *
 * Memory: one score block per thread (QB x RB or TB x TB floats, 2-4 MiB) and, for threads
 * after the first, private heaps (queries x min(k, n) hits).
 */
#include "index/exact.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "index/score.h"
#include "index/topk.h"

#define QB 256   /* queries per score block */
#define RB 2048  /* rows per score block: QB x RB floats = 2 MiB */
#define TB 1024  /* edge of an all-pairs tile: 4 MiB of keys */
#define MAX_THREADS 64

/* Heaps of several queries: heap i at h + i * stride, cnt[i] entries. */
typedef struct table {
    exact_hit *h;
    int *cnt;
    size_t stride;
} table;

typedef enum job_kind { JOB_SEARCH, JOB_PAIRS, JOB_CROSS } job_kind;

typedef struct job {
    job_kind kind;
    const exact_set *s;
    imgsim_metric m;
    int cap;                /* heap capacity for the queries: min(k, n) */
    const float *q;         /* query vectors (stride dim), or */
    const uint32_t *qrows;  /* query rows of the set */
    size_t nq;
    const uint8_t *filter;  /* search only */
    const uint32_t *exclude;
    size_t parts, part_rows; /* search: row parts per query block */
    size_t nblocks;         /* pairs: TB blocks along a side */
    table back;             /* cross: heaps of the set's rows */
    int back_cap;
    size_t nunits;
    atomic_size_t next;
} job;

typedef struct worker {
    job *job;
    table fwd;    /* heaps of the queries (pairs: of every row) */
    float *tile;  /* score block */
    float *qbuf;  /* gathered query vectors (QB x dim) */
    float *qn;    /* their norms */
    float *floor; /* admission floors of the columns of a tile (J side) */
} worker;

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* Allocate count * size bytes (zeroed if `zero`), NULL on overflow or failure. */
static void *alloc_n(size_t count, size_t size, int zero)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    size_t bytes = count * size;
    if (bytes == 0)
        bytes = 1;
    return zero ? calloc(1, bytes) : malloc(bytes);
}

/* The number of threads to use for `threads` (0 = all cores). */
static int resolve_threads(int threads)
{
    if (threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? (int)c : 1;
    }
    return threads > MAX_THREADS ? MAX_THREADS : threads;
}

static int is_alive(const exact_set *s, size_t r) { return !s->alive || s->alive[r]; }

/* Check the set, the metric and k. */
static imgsim_status check_args(const exact_set *s, imgsim_metric m, int k, imgsim_error *err)
{
    if (!s || s->dim <= 0 || (s->n && !s->vecs))
        return error_set(err, IMGSIM_E_ARG, "exact search: no vectors or dimension %d",
                         s ? s->dim : 0);
    if (m != IMGSIM_METRIC_COSINE && m != IMGSIM_METRIC_L2 && m != IMGSIM_METRIC_L1)
        return error_set(err, IMGSIM_E_ARG, "exact search: unknown metric %d", (int)m);
    if (m != IMGSIM_METRIC_L1 && s->n && !s->norms)
        return error_set(err, IMGSIM_E_ARG, "exact search: %s needs the row norms",
                         imgsim_metric_name(m));
    if (s->n >= EXACT_NO_ROW)
        return error_set(err, IMGSIM_E_ARG, "exact search: %zu rows is too many", s->n);
    if (k < 1)
        return error_set(err, IMGSIM_E_ARG, "exact search: k must be at least 1 (got %d)", k);
    return IMGSIM_OK;
}

/* Check that every query row exists. */
static imgsim_status check_rows(const exact_set *s, const uint32_t *rows, size_t nq,
                                imgsim_error *err)
{
    if (nq && !rows)
        return error_set(err, IMGSIM_E_ARG, "exact search: no query rows");
    for (size_t i = 0; i < nq; i++)
        if (rows[i] >= s->n)
            return error_set(err, IMGSIM_E_ARG, "exact search: query row %u out of range (%zu rows)",
                             rows[i], s->n);
    return IMGSIM_OK;
}

/* ------------------------------------------------------------ selection */

/* Offer keys[j] (row r0 + j) to one heap, skipping dead, filtered-out and excluded rows. */
static void feed_row(const float *keys, size_t nr, size_t r0, exact_hit *h, int *cnt, int cap,
                     const uint8_t *alive, const uint8_t *filter, uint32_t excl)
{
    float fl = topk_floor(h, *cnt, cap);
    for (size_t j = 0; j < nr; j++) {
        if (keys[j] >= fl) {
            uint32_t r = (uint32_t)(r0 + j);
            if (r == excl || (alive && !alive[r]) || (filter && !filter[r]))
                continue;
            fl = topk_push(h, cnt, cap, keys[j], r);
        }
    }
}

/* One tile row fed both ways: heap (h, cnt) of row `ri` gets candidates r0 + j (except
 * `ri` and dead rows), and the heap of each alive row r0 + j in `tb` gets candidate `ri`.
 * fl[j] is the floor of row r0 + j's heap (+INFINITY for rows not to feed). */
static void feed_both(const float *keys, size_t nr, size_t r0, uint32_t ri, exact_hit *h,
                      int *cnt, int cap, const uint8_t *alive, const table *tb, int tcap,
                      float *fl)
{
    float f = topk_floor(h, *cnt, cap);
    for (size_t j = 0; j < nr; j++) {
        float key = keys[j];
        if (key >= f) {
            uint32_t r = (uint32_t)(r0 + j);
            if (r != ri && (!alive || alive[r]))
                f = topk_push(h, cnt, cap, key, r);
        }
        if (key >= fl[j]) {
            size_t r = r0 + j;
            if (r != ri && (!alive || alive[r]))
                fl[j] = topk_push(tb->h + r * tb->stride, tb->cnt + r, tcap, key, ri);
        }
    }
}

/* Floors of the heaps of rows [r0, r0 + nr) in `tb`; +INFINITY for dead rows. */
static void load_floors(const exact_set *s, const table *tb, int cap, size_t r0, size_t nr,
                        float *fl)
{
    for (size_t j = 0; j < nr; j++) {
        size_t r = r0 + j;
        fl[j] = is_alive(s, r) ? topk_floor(tb->h + r * tb->stride, tb->cnt[r], cap) : INFINITY;
    }
}

/* Query vectors [q0, q0 + nb) as one contiguous block, with their norms in w->qn. */
static const float *block_queries(const job *j, worker *w, size_t q0, size_t nb)
{
    const exact_set *s = j->s;
    size_t d = (size_t)s->dim;
    if (j->qrows) {
        for (size_t i = 0; i < nb; i++) {
            uint32_t r = j->qrows[q0 + i];
            memcpy(w->qbuf + i * d, s->vecs + r * d, d * sizeof(float));
            if (j->m != IMGSIM_METRIC_L1)
                w->qn[i] = s->norms[r];
        }
        return w->qbuf;
    }
    const float *v = j->q + q0 * d;
    if (j->m != IMGSIM_METRIC_L1)
        exact_norms(v, nb, s->dim, w->qn);
    return v;
}

/* ------------------------------------------------------------ units of work */

/* Search: query block u / parts against row part u % parts. */
static void search_unit(job *j, worker *w, size_t u)
{
    const exact_set *s = j->s;
    size_t q0 = (u / j->parts) * QB, nb = min_sz(QB, j->nq - q0);
    size_t a = (u % j->parts) * j->part_rows, b = min_sz(s->n, a + j->part_rows);
    const float *qv = block_queries(j, w, q0, nb);
    for (size_t r0 = a; r0 < b; r0 += RB) {
        size_t nr = min_sz(RB, b - r0);
        score_block(s, j->m, qv, w->qn, nb, r0, nr, w->tile, nr);
        for (size_t i = 0; i < nb; i++) {
            size_t qi = q0 + i;
            uint32_t excl = j->qrows ? j->qrows[qi] : j->exclude ? j->exclude[qi] : EXACT_NO_ROW;
            feed_row(w->tile + i * nr, nr, r0, w->fwd.h + qi * w->fwd.stride, w->fwd.cnt + qi,
                     j->cap, s->alive, j->filter, excl);
        }
    }
}

/* All pairs: tile number u of the upper triangle, numbered row by row. */
static void pairs_unit(job *j, worker *w, size_t u)
{
    const exact_set *s = j->s;
    size_t bi = 0;
    while (u >= j->nblocks - bi)
        u -= j->nblocks - bi++;
    size_t bj = bi + u;
    size_t i0 = bi * TB, ni = min_sz(TB, s->n - i0), j0 = bj * TB, nj = min_sz(TB, s->n - j0);
    const float *qn = j->m != IMGSIM_METRIC_L1 ? s->norms + i0 : NULL;
    score_block(s, j->m, s->vecs + i0 * (size_t)s->dim, qn, ni, j0, nj, w->tile, nj);
    table *t = &w->fwd;
    if (bi != bj)
        load_floors(s, t, j->cap, j0, nj, w->floor);
    for (size_t i = 0; i < ni; i++) {
        uint32_t ri = (uint32_t)(i0 + i);
        if (!is_alive(s, ri))
            continue;
        exact_hit *h = t->h + ri * t->stride;
        if (bi == bj)
            feed_row(w->tile + i * nj, nj, j0, h, t->cnt + ri, j->cap, s->alive, NULL, ri);
        else
            feed_both(w->tile + i * nj, nj, j0, ri, h, t->cnt + ri, j->cap, s->alive, t, j->cap,
                      w->floor);
    }
}

/* Cross: rows [u * RB, +RB) of the set against every new row, fed both ways. */
static void cross_unit(job *j, worker *w, size_t u)
{
    const exact_set *s = j->s;
    size_t r0 = u * RB, nr = min_sz(RB, s->n - r0);
    load_floors(s, &j->back, j->back_cap, r0, nr, w->floor);
    for (size_t q0 = 0; q0 < j->nq; q0 += QB) {
        size_t nb = min_sz(QB, j->nq - q0);
        const float *qv = block_queries(j, w, q0, nb);
        score_block(s, j->m, qv, w->qn, nb, r0, nr, w->tile, nr);
        for (size_t i = 0; i < nb; i++) {
            size_t qi = q0 + i;
            uint32_t ri = j->qrows[qi];
            exact_hit *h = w->fwd.h + qi * w->fwd.stride;
            int *cnt = w->fwd.cnt + qi;
            if (is_alive(s, ri))
                feed_both(w->tile + i * nr, nr, r0, ri, h, cnt, j->cap, s->alive, &j->back,
                          j->back_cap, w->floor);
            else
                feed_row(w->tile + i * nr, nr, r0, h, cnt, j->cap, s->alive, NULL, ri);
        }
    }
}

/* Thread body: claim units until none is left. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    job *j = w->job;
    for (;;) {
        size_t u = atomic_fetch_add(&j->next, 1);
        if (u >= j->nunits)
            break;
        if (j->kind == JOB_SEARCH)
            search_unit(j, w, u);
        else if (j->kind == JOB_PAIRS)
            pairs_unit(j, w, u);
        else
            cross_unit(j, w, u);
    }
    return NULL;
}

/* ------------------------------------------------------------ driver */

/* Sort heap h (n hits) best first and turn keys into user-facing scores. */
static void finish_heap(exact_hit *h, int n, imgsim_metric m)
{
    topk_sort(h, n);
    for (int i = 0; i < n; i++)
        h[i].score = exact_key_to_score(m, h[i].score);
}

static void free_workers(worker *w, int nthreads)
{
    for (int t = 0; t < nthreads; t++) {
        free(w[t].tile);
        free(w[t].qbuf);
        free(w[t].qn);
        free(w[t].floor);
        if (t > 0) {
            free(w[t].fwd.h);
            free(w[t].fwd.cnt);
        }
    }
    free(w);
}

/* Run job `j` on up to `threads` threads. `out` (nentries heaps, counts zeroed by the caller)
 * receives the merged heaps of every thread, still as keys and unsorted. tile_rows x
 * tile_cols is the score block size. */
static imgsim_status run_job(job *j, int threads, table out, size_t nentries, size_t tile_rows,
                             size_t tile_cols, imgsim_error *err)
{
    int nt = resolve_threads(threads);
    if ((size_t)nt > j->nunits)
        nt = (int)j->nunits;
    if (nt < 1)
        return IMGSIM_OK;
    if (j->m != IMGSIM_METRIC_L1)
        score_blas_single();
    worker *w = calloc((size_t)nt, sizeof *w);
    if (!w)
        return error_set(err, IMGSIM_E_NOMEM, "exact search: out of memory");
    size_t d = (size_t)j->s->dim;
    int ok = 1;
    for (int t = 0; t < nt && ok; t++) {
        w[t].job = j;
        w[t].tile = alloc_n(tile_rows * tile_cols, sizeof(float), 0);
        w[t].qn = alloc_n(QB, sizeof(float), 0);
        w[t].floor = alloc_n(tile_cols, sizeof(float), 0);
        ok = w[t].tile && w[t].qn && w[t].floor;
        if (j->qrows) {
            w[t].qbuf = alloc_n(min_sz(QB, j->nq) * d, sizeof(float), 0);
            ok = ok && w[t].qbuf;
        }
        if (t == 0) {
            w[t].fwd = out;
        } else {
            w[t].fwd.stride = (size_t)j->cap;
            w[t].fwd.h = alloc_n(nentries * (size_t)j->cap, sizeof(exact_hit), 0);
            w[t].fwd.cnt = alloc_n(nentries, sizeof(int), 1);
            ok = ok && w[t].fwd.h && w[t].fwd.cnt;
        }
    }
    if (!ok) {
        free_workers(w, nt);
        return error_set(err, IMGSIM_E_NOMEM, "exact search: out of memory for %d threads' buffers",
                         nt);
    }
    atomic_store(&j->next, 0);
    pthread_t th[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    /* A thread that cannot start leaves its units to the others (they are claimed). */
    for (int t = 1; t < nt; t++)
        started[t] = pthread_create(&th[t], NULL, worker_main, &w[t]) == 0;
    worker_main(&w[0]);
    for (int t = 1; t < nt; t++)
        if (started[t])
            pthread_join(th[t], NULL);
    for (int t = 1; t < nt; t++)
        for (size_t e = 0; e < nentries; e++) {
            const exact_hit *h = w[t].fwd.h + e * w[t].fwd.stride;
            for (int i = 0; i < w[t].fwd.cnt[e]; i++)
                topk_push(out.h + e * out.stride, out.cnt + e, j->cap, h[i].score, h[i].row);
        }
    free_workers(w, nt);
    return IMGSIM_OK;
}

/* exact_search and exact_search_rows: queries given as vectors or as rows. */
static imgsim_status search(const exact_set *s, imgsim_metric m, const float *q,
                            const uint32_t *qrows, size_t nq, int k, const uint8_t *filter,
                            const uint32_t *exclude, int threads, exact_hit *out, int *nout,
                            imgsim_error *err)
{
    imgsim_status st = check_args(s, m, k, err);
    if (st != IMGSIM_OK)
        return st;
    if (nq && (!out || !nout || (!q && !qrows)))
        return error_set(err, IMGSIM_E_ARG, "exact search: missing queries or output");
    if (qrows && (st = check_rows(s, qrows, nq, err)) != IMGSIM_OK)
        return st;
    if (nq == 0)
        return IMGSIM_OK;
    memset(nout, 0, nq * sizeof *nout);
    if (s->n == 0)
        return IMGSIM_OK;
    job j = {.kind = JOB_SEARCH, .s = s, .m = m, .q = q, .qrows = qrows, .nq = nq,
             .filter = filter, .exclude = exclude};
    j.cap = (int)min_sz((size_t)k, s->n);
    /* Few query blocks: split the rows too, into about 16 units in all, each a whole number
     * of RB blocks — the same cut for any thread count, so the same sgemm calls. */
    size_t nqb = ceil_div(nq, QB), nchunks = ceil_div(s->n, RB);
    size_t per = nqb >= 16 ? nchunks : ceil_div(nchunks, min_sz(nchunks, ceil_div(16, nqb)));
    j.parts = ceil_div(nchunks, per);
    j.part_rows = per * RB;
    j.nunits = nqb * j.parts;
    table t = {out, nout, (size_t)k};
    st = run_job(&j, threads, t, nq, min_sz(QB, nq), min_sz(RB, s->n), err);
    if (st != IMGSIM_OK)
        return st;
    for (size_t i = 0; i < nq; i++)
        finish_heap(out + i * (size_t)k, nout[i], m);
    return IMGSIM_OK;
}

/* ------------------------------------------------------------ public API */

void exact_norms(const float *vecs, size_t n, int dim, float *norms)
{
    for (size_t i = 0; i < n; i++) {
        const float *v = vecs + i * (size_t)dim;
        double ss = 0;
        for (int c = 0; c < dim; c++)
            ss += (double)v[c] * v[c];
        norms[i] = (float)sqrt(ss);
    }
}

float exact_key(imgsim_metric m, const float *a, float na, const float *b, float nb, int dim)
{
    if (m == IMGSIM_METRIC_L1)
        return -score_l1_pair(a, b, dim);
    double dot = 0;
    for (int c = 0; c < dim; c++)
        dot += (double)a[c] * b[c];
    return m == IMGSIM_METRIC_COSINE ? score_key_cos((float)dot, na, nb)
                                     : score_key_l2((float)dot, na, nb);
}

float exact_key_to_score(imgsim_metric m, float key)
{
    switch (m) {
    case IMGSIM_METRIC_COSINE: return key;
    case IMGSIM_METRIC_L2: return key < 0 ? sqrtf(-key) : 0.0f;
    case IMGSIM_METRIC_L1: return key < 0 ? -key : 0.0f;
    }
    return key;
}

imgsim_status exact_search(const exact_set *s, imgsim_metric m, const float *q, size_t nq, int k,
                           const uint8_t *filter, const uint32_t *exclude, int threads,
                           exact_hit *out, int *nout, imgsim_error *err)
{
    if (nq && !q)
        return error_set(err, IMGSIM_E_ARG, "exact search: no query vectors");
    return search(s, m, q, NULL, nq, k, filter, exclude, threads, out, nout, err);
}

imgsim_status exact_search_rows(const exact_set *s, imgsim_metric m, const uint32_t *rows,
                                size_t nq, int k, const uint8_t *filter, int threads,
                                exact_hit *out, int *nout, imgsim_error *err)
{
    if (nq && !rows)
        return error_set(err, IMGSIM_E_ARG, "exact search: no query rows");
    return search(s, m, NULL, rows, nq, k, filter, NULL, threads, out, nout, err);
}

imgsim_status exact_all_pairs(const exact_set *s, imgsim_metric m, int k, int threads,
                              exact_hit *out, int *nout, imgsim_error *err)
{
    imgsim_status st = check_args(s, m, k, err);
    if (st != IMGSIM_OK)
        return st;
    if (s->n && (!out || !nout))
        return error_set(err, IMGSIM_E_ARG, "exact all-pairs: missing output");
    if (s->n == 0)
        return IMGSIM_OK;
    memset(nout, 0, s->n * sizeof *nout);
    job j = {.kind = JOB_PAIRS, .s = s, .m = m};
    j.cap = (int)min_sz((size_t)k, s->n);
    j.nblocks = ceil_div(s->n, TB);
    j.nunits = j.nblocks * (j.nblocks + 1) / 2;
    size_t edge = min_sz(TB, s->n);
    table t = {out, nout, (size_t)k};
    st = run_job(&j, threads, t, s->n, edge, edge, err);
    if (st != IMGSIM_OK)
        return st;
    for (size_t r = 0; r < s->n; r++) {
        if (!is_alive(s, r))
            nout[r] = 0;
        finish_heap(out + r * (size_t)k, nout[r], m);
    }
    return IMGSIM_OK;
}

/* Order for sorting row numbers. */
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

imgsim_status exact_cross(const exact_set *s, imgsim_metric m, const uint32_t *rows, size_t nq,
                          int k, int threads, exact_hit *fwd, int *fwd_n, exact_hit *back,
                          int *back_n, imgsim_error *err)
{
    imgsim_status st = check_args(s, m, k, err);
    if (st != IMGSIM_OK)
        return st;
    if ((st = check_rows(s, rows, nq, err)) != IMGSIM_OK)
        return st;
    if ((nq && (!fwd || !fwd_n)) || (s->n && (!back || !back_n)))
        return error_set(err, IMGSIM_E_ARG, "exact cross: missing output");
    if (nq) { /* a row listed twice would appear twice in the back lists */
        uint32_t *sorted = alloc_n(nq, sizeof *sorted, 0);
        if (!sorted)
            return error_set(err, IMGSIM_E_NOMEM, "exact cross: out of memory");
        memcpy(sorted, rows, nq * sizeof *sorted);
        qsort(sorted, nq, sizeof *sorted, cmp_u32);
        for (size_t i = 1; i < nq && st == IMGSIM_OK; i++)
            if (sorted[i] == sorted[i - 1])
                st = error_set(err, IMGSIM_E_ARG, "exact cross: row %u is listed twice", sorted[i]);
        free(sorted);
        if (st != IMGSIM_OK)
            return st;
    }
    if (nq)
        memset(fwd_n, 0, nq * sizeof *fwd_n);
    if (s->n)
        memset(back_n, 0, s->n * sizeof *back_n);
    if (nq == 0 || s->n == 0)
        return IMGSIM_OK;
    job j = {.kind = JOB_CROSS, .s = s, .m = m, .qrows = rows, .nq = nq};
    j.cap = (int)min_sz((size_t)k, s->n);
    j.back = (table){back, back_n, (size_t)k};
    j.back_cap = (int)min_sz((size_t)k, nq);
    j.nunits = ceil_div(s->n, RB);
    table t = {fwd, fwd_n, (size_t)k};
    st = run_job(&j, threads, t, nq, min_sz(QB, nq), min_sz(RB, s->n), err);
    if (st != IMGSIM_OK)
        return st;
    for (size_t i = 0; i < nq; i++)
        finish_heap(fwd + i * (size_t)k, fwd_n[i], m);
    for (size_t r = 0; r < s->n; r++) {
        if (!is_alive(s, r))
            back_n[r] = 0;
        finish_heap(back + r * (size_t)k, back_n[r], m);
    }
    return IMGSIM_OK;
}

imgsim_status exact_keys_rows(const exact_set *s, imgsim_metric m, const uint32_t *rows,
                              size_t nq, float *keys, imgsim_error *err)
{
    imgsim_status st = check_args(s, m, 1, err);
    if (st != IMGSIM_OK)
        return st;
    if ((st = check_rows(s, rows, nq, err)) != IMGSIM_OK)
        return st;
    if (nq == 0 || s->n == 0)
        return IMGSIM_OK;
    if (!keys)
        return error_set(err, IMGSIM_E_ARG, "exact keys: missing output");
    size_t d = (size_t)s->dim, nb = min_sz(QB, nq);
    float *qbuf = alloc_n(nb * d, sizeof(float), 0), *qn = alloc_n(nb, sizeof(float), 0);
    if (!qbuf || !qn) {
        free(qbuf);
        free(qn);
        return error_set(err, IMGSIM_E_NOMEM, "exact keys: out of memory");
    }
    if (m != IMGSIM_METRIC_L1)
        score_blas_single();
    for (size_t q0 = 0; q0 < nq; q0 += QB) {
        size_t b = min_sz(QB, nq - q0);
        for (size_t i = 0; i < b; i++) {
            memcpy(qbuf + i * d, s->vecs + rows[q0 + i] * d, d * sizeof(float));
            qn[i] = s->norms ? s->norms[rows[q0 + i]] : 0.0f;
        }
        score_block(s, m, qbuf, qn, b, 0, s->n, keys + q0 * s->n, s->n);
    }
    free(qbuf);
    free(qn);
    if (s->alive)
        for (size_t i = 0; i < nq; i++)
            for (size_t r = 0; r < s->n; r++)
                if (!s->alive[r])
                    keys[i * s->n + r] = -INFINITY;
    return IMGSIM_OK;
}

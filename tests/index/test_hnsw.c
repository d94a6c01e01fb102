/*
 * test_hnsw.c — the HNSW index against exact search (index/exact.h) as the reference:
 * kernels against the portable loops; recall@10 on clustered data for every storage (f32,
 * sq8, PCA, with and without re-ranking) and on real embeddings (Wang-1k through imgsim's
 * default model, cached between runs) at the default ef; incremental inserts; filters of
 * every selectivity (only passing rows, k of them whenever k pass, exact when the scan is
 * chosen); exclude and alive; deletes (removed rows never come back, slots are reused,
 * recall holds); save/open round trips, changes to an opened index, and damaged files
 * (truncation, flipped bytes anywhere, bad header fields, wrong version) detected; argument
 * errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../testutil.h"
#include "index/exact.h"
#include "index/hnsw.h"
#include "index/hnsw_internal.h"
#include "vecset.h"

/* ------------------------------------------------------------ data */

static float rng_gauss(void)
{
    float u = rng_unit() + 1e-7f, v = rng_unit();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* n points around `nc` Gaussian centres (spread 1, centres spread 3), plus an offset so
 * cosine and L2 rank differently. */
static tset clustered(size_t n, int dim, int nc, uint64_t seed)
{
    rng_seed(seed);
    tset t = tset_new(n, dim);
    float *cent = malloc((size_t)nc * (size_t)dim * sizeof(float));
    assert_non_null(cent);
    for (size_t i = 0; i < (size_t)nc * (size_t)dim; i++)
        cent[i] = 3.0f * rng_gauss();
    for (size_t i = 0; i < n; i++) {
        const float *c = cent + (size_t)(rng() % (uint32_t)nc) * (size_t)dim;
        for (int j = 0; j < dim; j++)
            t.vecs[i * (size_t)dim + (size_t)j] = c[j] + rng_gauss() + 0.5f;
    }
    free(cent);
    exact_norms(t.vecs, n, dim, t.norms);
    return t;
}

/* Query vectors near random rows. */
static float *queries_near(const tset *t, size_t nq, uint64_t seed)
{
    rng_seed(seed);
    int dim = t->s.dim;
    float *q = malloc(nq * (size_t)dim * sizeof(float));
    assert_non_null(q);
    for (size_t i = 0; i < nq; i++) {
        const float *r = t->vecs + (size_t)(rng() % (uint32_t)t->s.n) * (size_t)dim;
        for (int j = 0; j < dim; j++)
            q[i * (size_t)dim + (size_t)j] = r[j] + 0.5f * rng_gauss();
    }
    return q;
}

/* ------------------------------------------------------------ measuring */

#define K 10

/* recall@k of the index against exact search over nq queries (filter/exclude/full as in
 * hnsw_search; rows of the exact search restricted the same way). Checks every returned
 * row is acceptable. */
static double recall(const hnsw *h, const tset *t, imgsim_metric m, const float *q, size_t nq,
                     int k, int ef, const uint8_t *filter, const exact_set *full)
{
    exact_hit *ex = malloc(nq * (size_t)k * sizeof *ex), *got = malloc((size_t)k * sizeof *got);
    int *exn = malloc(nq * sizeof(int));
    assert_non_null(ex);
    assert_non_null(got);
    assert_non_null(exn);
    imgsim_error err = {0};
    exact_set es = t->s;
    if (full)
        es.alive = full->alive;
    assert_int_equal(exact_search(&es, m, q, nq, k, filter, NULL, 1, ex, exn, &err), IMGSIM_OK);
    hnsw_ctx *c;
    assert_int_equal(hnsw_ctx_new(&c, &err), IMGSIM_OK);
    size_t found = 0, total = 0;
    for (size_t i = 0; i < nq; i++) {
        int n = -1;
        assert_int_equal(hnsw_search(h, c, q + i * (size_t)t->s.dim, k, ef, filter, EXACT_NO_ROW,
                                     full, got, &n, &err),
                         IMGSIM_OK);
        assert_int_equal(n, exn[i]); /* k hits whenever k rows qualify */
        for (int j = 0; j < n; j++) {
            assert_true(got[j].row < t->s.n);
            if (filter)
                assert_true(filter[got[j].row]);
            if (full && full->alive)
                assert_true(full->alive[got[j].row]);
            for (int x = 0; x < j; x++)
                assert_true(got[x].row != got[j].row);
            for (int x = 0; x < exn[i]; x++)
                if (ex[i * (size_t)k + (size_t)x].row == got[j].row) {
                    found++;
                    break;
                }
        }
        total += (size_t)exn[i];
    }
    hnsw_ctx_free(c);
    free(ex);
    free(got);
    free(exn);
    return total ? (double)found / (double)total : 1.0;
}

static hnsw *build(const tset *t, const hnsw_params *p, int threads)
{
    hnsw *h = NULL;
    imgsim_error err = {0};
    imgsim_status st = hnsw_build(p, t->vecs, t->s.n, t->s.dim, NULL, threads, &h, &err);
    if (st != IMGSIM_OK)
        fail_msg("hnsw_build: %s", err.msg);
    return h;
}

/* ------------------------------------------------------------ tests */

/* Every kernel variant equals the portable loop (exact for bytes, close for floats). */
static void test_kernels(void **state)
{
    (void)state;
    hnsw_kernels ks[8];
    const char *names[8];
    int nk = hnsw_kernels_variants(ks, names, 8);
    assert_true(nk >= 1);
    rng_seed(7);
    enum { N = 2304 };
    float *a = aligned_alloc(64, N * sizeof(float)), *b = aligned_alloc(64, N * sizeof(float));
    uint8_t *u = aligned_alloc(64, N);
    int8_t *s = aligned_alloc(64, N);
    for (int i = 0; i < N; i++) {
        a[i] = rng_gauss();
        b[i] = rng_gauss();
        u[i] = (uint8_t)(i % 3 == 0 ? 255 : rng() & 255);
        s[i] = (int8_t)(i % 5 == 0 ? -128 : (int)(rng() & 255) - 128);
    }
    for (size_t n = 64; n <= N; n += 64 * 7) {
        double dot = 0, l2 = 0;
        int64_t ds = 0;
        for (size_t i = 0; i < n; i++) {
            dot += (double)a[i] * b[i];
            l2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            ds += (int64_t)u[i] * s[i];
        }
        for (int v = 0; v < nk; v++) {
            assert_float_equal(ks[v].dot_f32(a, b, n), dot, 1e-3 * (1 + fabs(dot)));
            assert_float_equal(ks[v].l2_f32(a, b, n), l2, 1e-3 * (1 + l2));
            if (ks[v].dot_u8s8(u, s, n) != ds)
                fail_msg("%s: u8s8 dot %d != %lld", names[v], ks[v].dot_u8s8(u, s, n),
                         (long long)ds);
        }
    }
    free(a);
    free(b);
    free(u);
    free(s);
}

/* Clustered data: recall@10 >= 0.95 for f32, sq8 re-ranked, PCA re-ranked; both metrics. */
static void test_recall_clustered(void **state)
{
    (void)state;
    const size_t n = 6000, nq = 200;
    const int dim = 48;
    tset t = clustered(n, dim, 40, 1);
    float *q = queries_near(&t, nq, 2);
    const imgsim_metric ms[] = {IMGSIM_METRIC_COSINE, IMGSIM_METRIC_L2};
    for (int mi = 0; mi < 2; mi++) {
        for (int mode = 0; mode < 4; mode++) {
            hnsw_params p;
            hnsw_params_default(&p);
            p.metric = ms[mi];
            p.ef_construction = 100;
            p.storage = mode == 1 || mode == 3 ? HNSW_SQ8 : HNSW_F32;
            p.pca_dims = mode >= 2 ? 32 : 0;
            hnsw *h = build(&t, &p, 2);
            double r = recall(h, &t, ms[mi], q, nq, K, 0, NULL, &t.s);
            printf("metric %s storage %d pca %d: recall@10 %.4f (re-ranked)\n",
                   imgsim_metric_name(ms[mi]), p.storage, p.pca_dims, r);
            assert_true(r >= 0.95);
            if (mode == 0) {
                double r2 = recall(h, &t, ms[mi], q, nq, K, 0, NULL, NULL);
                printf("  without re-rank: %.4f\n", r2);
                assert_true(r2 >= 0.95);
            }
            hnsw_free(h);
        }
    }
    free(q);
    tset_free(&t);
}

/* Scores: with re-ranking those of exact search (exact_key), without it close to them. */
static void test_scores(void **state)
{
    (void)state;
    tset t = clustered(500, 16, 5, 3);
    float *q = queries_near(&t, 5, 4);
    const imgsim_metric ms[] = {IMGSIM_METRIC_COSINE, IMGSIM_METRIC_L2};
    for (int mi = 0; mi < 2; mi++) {
        hnsw_params p;
        hnsw_params_default(&p);
        p.metric = ms[mi];
        hnsw *h = build(&t, &p, 1);
        exact_hit got[K], ex[K];
        int n, en;
        imgsim_error err = {0};
        for (int i = 0; i < 5; i++) {
            const float *qi = q + i * 16;
            assert_int_equal(exact_search(&t.s, ms[mi], qi, 1, K, NULL, NULL, 1, ex, &en, &err),
                             IMGSIM_OK);
            assert_int_equal(hnsw_search(h, NULL, qi, K, 500, NULL, EXACT_NO_ROW, &t.s, got, &n,
                                         &err),
                             IMGSIM_OK);
            assert_int_equal(n, en);
            for (int j = 0; j < n; j++) {
                assert_int_equal(got[j].row, ex[j].row);
                assert_float_equal(got[j].score, ex[j].score, 1e-5 * (1 + fabsf(ex[j].score)));
            }
            assert_int_equal(hnsw_search(h, NULL, qi, K, 500, NULL, EXACT_NO_ROW, NULL, got, &n,
                                         &err),
                             IMGSIM_OK);
            for (int j = 0; j < n; j++) {
                assert_int_equal(got[j].row, ex[j].row);
                assert_float_equal(got[j].score, ex[j].score, 1e-3 * (1 + fabsf(ex[j].score)));
            }
        }
        hnsw_free(h);
    }
    free(q);
    tset_free(&t);
}

/* An index grown one insert at a time (from empty) finds what a built one finds. */
static void test_incremental(void **state)
{
    (void)state;
    const size_t n = 3000;
    tset t = clustered(n, 32, 20, 5);
    float *q = queries_near(&t, 100, 6);
    hnsw_params p;
    hnsw_params_default(&p);
    hnsw *h = NULL;
    imgsim_error err = {0};
    assert_int_equal(hnsw_build(&p, NULL, 0, 32, NULL, 1, &h, &err), IMGSIM_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(hnsw_insert(h, (uint32_t)(n - 1 - i), t.vecs + (n - 1 - i) * 32, &err),
                         IMGSIM_OK);
    hnsw_info info;
    hnsw_get_info(h, &info);
    assert_int_equal(info.count, n);
    assert_int_equal(info.row_limit, n);
    double r = recall(h, &t, p.metric, q, 100, K, 0, NULL, NULL);
    printf("incremental: recall@10 %.4f\n", r);
    assert_true(r >= 0.95);
    assert_int_equal(hnsw_insert(h, 5, t.vecs, &err), IMGSIM_E_ARG); /* already there */
    hnsw_free(h);
    free(q);
    tset_free(&t);
}

/* Filters of every selectivity: only passing rows, k of them when k pass, recall holds on
 * the walk, exact results when the scan is chosen; fewer than k passing rows. */
static void test_filter(void **state)
{
    (void)state;
    const size_t n = 12000, nq = 60;
    const int dim = 24;
    tset t = clustered(n, dim, 30, 11);
    float *q = queries_near(&t, nq, 12);
    hnsw_params p;
    hnsw_params_default(&p);
    p.ef_construction = 80;
    hnsw *h = build(&t, &p, 2);
    uint8_t *f = malloc(n);
    assert_non_null(f);
    const double fractions[] = {0.6, 0.25, 0.1, 0.01, 0.001};
    for (int fi = 0; fi < 5; fi++) {
        rng_seed(100 + (uint64_t)fi);
        for (size_t r = 0; r < n; r++)
            f[r] = rng_unit() < fractions[fi];
        double r1 = recall(h, &t, p.metric, q, nq, K, 0, f, NULL);
        double r2 = recall(h, &t, p.metric, q, nq, K, 0, f, &t.s);
        printf("filter passing %.3f: recall@10 %.4f, re-ranked %.4f\n", fractions[fi], r1, r2);
        assert_true(r1 >= 0.95);
        assert_true(r2 >= 0.95);
        if (fractions[fi] <= 0.1) /* scanned: exact */
            assert_true(r2 == 1.0);
    }
    /* a filter correlated with the data: only rows of one cluster far from the queries */
    for (size_t r = 0; r < n; r++)
        f[r] = t.vecs[r * (size_t)dim] > 6.0f;
    double rc = recall(h, &t, p.metric, q, nq, K, 0, f, &t.s);
    printf("correlated filter: recall@10 %.4f\n", rc);
    assert_true(rc >= 0.95);
    /* fewer rows pass than k: all of them, and nothing else */
    memset(f, 0, n);
    f[17] = f[4000] = f[11999] = 1;
    exact_hit got[K];
    int nout = -1;
    imgsim_error err = {0};
    assert_int_equal(hnsw_search(h, NULL, q, K, 0, f, EXACT_NO_ROW, NULL, got, &nout, &err),
                     IMGSIM_OK);
    assert_int_equal(nout, 3);
    memset(f, 0, n);
    assert_int_equal(hnsw_search(h, NULL, q, K, 0, f, EXACT_NO_ROW, NULL, got, &nout, &err),
                     IMGSIM_OK);
    assert_int_equal(nout, 0);
    free(f);
    hnsw_free(h);
    free(q);
    tset_free(&t);
}

/* exclude drops one row; full->alive drops dead rows; rows past full->n are skipped. */
static void test_exclude_alive(void **state)
{
    (void)state;
    const size_t n = 2000;
    tset t = clustered(n, 16, 10, 21);
    hnsw_params p;
    hnsw_params_default(&p);
    hnsw *h = build(&t, &p, 1);
    exact_hit got[K];
    int nout;
    imgsim_error err = {0};
    for (uint32_t r = 0; r < 50; r++) {
        assert_int_equal(hnsw_search(h, NULL, t.vecs + r * 16, K, 0, NULL, r, &t.s, got, &nout,
                                     &err),
                         IMGSIM_OK);
        assert_int_equal(nout, K);
        for (int j = 0; j < nout; j++)
            assert_true(got[j].row != r);
    }
    float *q = queries_near(&t, 40, 22);
    for (size_t r = 0; r < n; r++)
        t.alive[r] = r % 3 != 0;
    exact_set full = t.s;
    full.alive = t.alive;
    double rec = recall(h, &t, p.metric, q, 40, K, 0, NULL, &full);
    printf("alive 2/3: recall@10 %.4f\n", rec);
    assert_true(rec >= 0.95);
    full.alive = NULL;
    full.n = 1000; /* the collection has fewer rows than the index (stale index) */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(hnsw_search(h, NULL, q + i * 16, K, 0, NULL, EXACT_NO_ROW, &full, got,
                                     &nout, &err),
                         IMGSIM_OK);
        assert_int_equal(nout, K);
        for (int j = 0; j < nout; j++)
            assert_true(got[j].row < 1000);
    }
    hnsw_free(h);
    free(q);
    tset_free(&t);
}

/* Search results of a and b are the same rows and scores. */
static void same_results(const hnsw *a, const hnsw *b, const float *q, size_t nq, int dim,
                         const exact_set *full)
{
    exact_hit x[K], y[K];
    int nx, ny;
    imgsim_error err = {0};
    for (size_t i = 0; i < nq; i++) {
        assert_int_equal(hnsw_search(a, NULL, q + i * (size_t)dim, K, 0, NULL, EXACT_NO_ROW, full,
                                     x, &nx, &err),
                         IMGSIM_OK);
        assert_int_equal(hnsw_search(b, NULL, q + i * (size_t)dim, K, 0, NULL, EXACT_NO_ROW, full,
                                     y, &ny, &err),
                         IMGSIM_OK);
        assert_int_equal(nx, ny);
        for (int j = 0; j < nx; j++) {
            assert_int_equal(x[j].row, y[j].row);
            assert_true(x[j].score == y[j].score);
        }
    }
}

/* Deletes: removed rows never come back, slots and upper runs are reused, recall on the
 * rest holds, the entry point moves, removing everything leaves a usable empty index. */
static void test_delete(void **state)
{
    (void)state;
    const size_t n = 4000, nq = 100;
    const int dim = 24;
    tset t = clustered(n + 1400, dim, 25, 31);
    t.s.n = n;
    float *q = queries_near(&t, nq, 32);
    hnsw_params p;
    hnsw_params_default(&p);
    p.ef_construction = 100;
    hnsw *h = build(&t, &p, 2);
    hnsw_info before, after;
    hnsw_get_info(h, &before);
    imgsim_error err = {0};
    /* errors change nothing */
    uint32_t bad[] = {5, 6, 5};
    assert_int_equal(hnsw_remove(h, bad, 3, &err), IMGSIM_E_ARG);
    uint32_t absent[] = {7, 999999};
    assert_int_equal(hnsw_remove(h, absent, 2, &err), IMGSIM_E_NOTFOUND);
    assert_true(hnsw_contains(h, 5) && hnsw_contains(h, 7));
    /* remove a third, the entry point among them */
    uint32_t *rm = malloc(n * sizeof *rm);
    size_t nrm = 0;
    uint32_t entry_row = hnsw_node_at(h, h->entry)->row;
    for (uint32_t r = 0; r < n; r++)
        if (r % 3 == 1 || r == entry_row) {
            rm[nrm++] = r;
            t.alive[r] = 0;
        }
    assert_int_equal(hnsw_remove(h, rm, nrm, &err), IMGSIM_OK);
    for (size_t i = 0; i < nrm; i++)
        assert_false(hnsw_contains(h, rm[i]));
    hnsw_get_info(h, &after);
    assert_int_equal(after.count, n - nrm);
    assert_int_equal(after.slots, before.slots);
    assert_true(hnsw_node_at(h, h->entry)->row != entry_row);
    exact_set full = t.s;
    full.alive = t.alive;
    /* never returned, even without the alive array */
    double r1 = recall(h, &t, p.metric, q, nq, K, 0, t.alive, NULL);
    double r2 = recall(h, &t, p.metric, q, nq, K, 0, NULL, &full);
    printf("after removing %zu of %zu: recall@10 %.4f / %.4f\n", nrm, n, r1, r2);
    assert_true(r1 >= 0.95 && r2 >= 0.95);
    exact_hit got[K];
    int nout;
    for (size_t i = 0; i < nq; i++) {
        assert_int_equal(hnsw_search(h, NULL, q + i * (size_t)dim, K, 200, NULL, EXACT_NO_ROW,
                                     NULL, got, &nout, &err),
                         IMGSIM_OK);
        for (int j = 0; j < nout; j++)
            assert_true(t.alive[got[j].row]);
    }
    /* inserts reuse the freed slots */
    for (uint32_t r = (uint32_t)n; r < (uint32_t)n + (uint32_t)nrm; r++)
        assert_int_equal(hnsw_insert(h, r, t.vecs + (size_t)r * (size_t)dim, &err), IMGSIM_OK);
    hnsw_get_info(h, &after);
    assert_int_equal(after.slots, before.slots);
    assert_int_equal(after.count, n);
    size_t upper_before = h->nupper;
    t.s.n = n + nrm;
    double r3 = recall(h, &t, p.metric, q, nq, K, 0, NULL, &(exact_set){t.vecs, n + nrm, dim,
                                                                         t.norms, t.alive});
    printf("after re-inserting: recall@10 %.4f\n", r3);
    assert_true(r3 >= 0.95);
    /* remove everything, then start again */
    size_t all = 0;
    for (uint32_t r = 0; r < n + nrm; r++)
        if (hnsw_contains(h, r))
            rm = realloc(rm, (all + 1) * sizeof *rm), rm[all++] = r;
    assert_int_equal(hnsw_remove(h, rm, all, &err), IMGSIM_OK);
    hnsw_get_info(h, &after);
    assert_int_equal(after.count, 0);
    assert_int_equal(after.max_level, -1);
    assert_int_equal(hnsw_search(h, NULL, q, K, 0, NULL, EXACT_NO_ROW, NULL, got, &nout, &err),
                     IMGSIM_OK);
    assert_int_equal(nout, 0);
    for (uint32_t r = 0; r < 500; r++)
        assert_int_equal(hnsw_insert(h, r, t.vecs + (size_t)r * (size_t)dim, &err), IMGSIM_OK);
    assert_true(h->nupper <= upper_before);
    assert_int_equal(h->nslots, before.slots);
    free(rm);
    hnsw_free(h);
    free(q);
    tset_free(&t);
}

/* Save and open: same answers for every storage, mapped, changes to an opened index, a
 * second save; free slots survive the round trip. */
static void test_save_open(void **state)
{
    (void)state;
    const size_t n = 3000;
    const int dim = 40;
    tset t = clustered(n + 10, dim, 20, 41);
    t.s.n = n;
    float *q = queries_near(&t, 50, 42);
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_out("hnsw_test.idx"));
    for (int mode = 0; mode < 3; mode++) {
        hnsw_params p;
        hnsw_params_default(&p);
        p.metric = mode == 1 ? IMGSIM_METRIC_L2 : IMGSIM_METRIC_COSINE;
        p.storage = mode >= 1 ? HNSW_SQ8 : HNSW_F32;
        p.pca_dims = mode == 2 ? 16 : 0;
        p.pca_whiten = mode == 2;
        p.ef_construction = 60;
        hnsw *h = build(&t, &p, 2), *o = NULL;
        uint32_t gone[] = {3, 99, 2500};
        imgsim_error err = {0};
        assert_int_equal(hnsw_remove(h, gone, 3, &err), IMGSIM_OK);
        assert_int_equal(hnsw_save(h, path, &err), IMGSIM_OK);
        assert_int_equal(access(tu_out("hnsw_test.idx.tmp"), F_OK), -1);
        assert_int_equal(hnsw_open(path, &o, &err), IMGSIM_OK);
        hnsw_info a, b;
        hnsw_get_info(h, &a);
        hnsw_get_info(o, &b);
        assert_true(b.mapped);
        assert_int_equal(a.count, b.count);
        assert_int_equal(a.slots, b.slots);
        assert_int_equal(a.max_level, b.max_level);
        assert_int_equal(a.code_dim, b.code_dim);
        assert_int_equal(b.params.metric, p.metric);
        assert_int_equal(b.params.pca_whiten, p.pca_whiten);
        assert_false(hnsw_contains(o, 99));
        same_results(h, o, q, 50, dim, NULL);
        same_results(h, o, q, 50, dim, &t.s);
        /* change the opened index: the same change on both gives the same answers */
        for (uint32_t r = (uint32_t)n; r < (uint32_t)n + 10; r++) {
            assert_int_equal(hnsw_insert(h, r, t.vecs + (size_t)r * (size_t)dim, &err), IMGSIM_OK);
            assert_int_equal(hnsw_insert(o, r, t.vecs + (size_t)r * (size_t)dim, &err), IMGSIM_OK);
        }
        uint32_t more[] = {0, 1, 2000};
        assert_int_equal(hnsw_remove(h, more, 3, &err), IMGSIM_OK);
        assert_int_equal(hnsw_remove(o, more, 3, &err), IMGSIM_OK);
        hnsw_get_info(o, &b);
        assert_false(b.mapped);
        same_results(h, o, q, 50, dim, NULL);
        assert_int_equal(hnsw_save(o, path, &err), IMGSIM_OK); /* over the file it maps */
        hnsw *o2 = NULL;
        assert_int_equal(hnsw_open(path, &o2, &err), IMGSIM_OK);
        same_results(h, o2, q, 50, dim, &t.s);
        hnsw_free(o2);
        hnsw_free(o);
        hnsw_free(h);
    }
    /* an empty index round-trips too */
    hnsw_params p;
    hnsw_params_default(&p);
    hnsw *e = NULL, *eo = NULL;
    imgsim_error err = {0};
    assert_int_equal(hnsw_build(&p, NULL, 0, dim, NULL, 1, &e, &err), IMGSIM_OK);
    assert_int_equal(hnsw_save(e, path, &err), IMGSIM_OK);
    assert_int_equal(hnsw_open(path, &eo, &err), IMGSIM_OK);
    assert_int_equal(hnsw_insert(eo, 3, t.vecs, &err), IMGSIM_OK);
    exact_hit got[K];
    int nout;
    assert_int_equal(hnsw_search(eo, NULL, t.vecs, K, 0, NULL, EXACT_NO_ROW, NULL, got, &nout,
                                 &err),
                     IMGSIM_OK);
    assert_int_equal(nout, 1);
    assert_int_equal(got[0].row, 3);
    hnsw_free(e);
    hnsw_free(eo);
    free(q);
    tset_free(&t);
}

/* Expect open of these bytes (written to a file) to fail with `code`. */
static void expect_open_fails(const uint8_t *data, size_t len, imgsim_status code)
{
    const char *path = tu_out("hnsw_damaged.idx");
    tu_write(path, data, len);
    hnsw *h = NULL;
    imgsim_error err = {0};
    imgsim_status st = hnsw_open(path, &h, &err);
    if (st != code)
        fail_msg("open gave %d (%s), expected %d", (int)st, err.msg, (int)code);
    assert_null(h);
}

/* Damaged files: truncated, any byte flipped, structural damage under valid checksums,
 * another version, missing. */
static void test_damaged(void **state)
{
    (void)state;
    const size_t n = 800;
    const int dim = 16;
    tset t = clustered(n, dim, 8, 51);
    hnsw_params p;
    hnsw_params_default(&p);
    p.storage = HNSW_SQ8;
    p.pca_dims = 12;
    hnsw *h = build(&t, &p, 1);
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_out("hnsw_good.idx"));
    imgsim_error err = {0};
    uint32_t gone[] = {10, 20};
    assert_int_equal(hnsw_remove(h, gone, 2, &err), IMGSIM_OK);
    assert_int_equal(hnsw_save(h, path, &err), IMGSIM_OK);
    size_t len;
    uint8_t *good = tu_read(path, &len);
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    /* truncated */
    const size_t cuts[] = {0, 1, 100, 256, len / 2, len - 64, len - 1};
    for (int i = 0; i < 7; i++)
        expect_open_fails(good, cuts[i], IMGSIM_E_MODEL);
    /* one byte flipped anywhere (header bytes and a spread over the payload) */
    for (size_t pos = 0; pos < len; pos += pos < 256 ? 1 : 997) {
        memcpy(bad, good, len);
        bad[pos] ^= 0x5a;
        hnsw *o = NULL;
        imgsim_status st = hnsw_open_memory(bad, len, 1, &o, &err);
        if (st == IMGSIM_OK)
            fail_msg("flipped byte %zu not detected", pos);
        assert_true(st == IMGSIM_E_MODEL || st == IMGSIM_E_UNSUPPORTED);
    }
    memcpy(bad, good, len);
    bad[len - 300] ^= 1;
    expect_open_fails(bad, len, IMGSIM_E_MODEL);
    /* structural damage with valid checksums: the checks behind the checksum */
    hnsw *o = NULL;
    assert_int_equal(hnsw_open_memory(good, len, 1, &o, &err), IMGSIM_OK);
    size_t off_blocks = (size_t)(o->blocks - (uint8_t *)o->map);
    size_t node0 = off_blocks + o->node_off, stride = o->stride;
    size_t links0 = node0 + offsetof(hnsw_node, links);
    uint32_t nslots = (uint32_t)o->nslots, upper_node = 0, upper_node2;
    while (hnsw_node_at(o, upper_node)->level == 0)
        upper_node++;
    upper_node2 = upper_node + 1;
    while (hnsw_node_at(o, upper_node2)->level == 0)
        upper_node2++;
    uint32_t first_run = hnsw_node_at(o, upper_node)->upper;
    hnsw_free(o);
    struct {
        size_t off;
        uint32_t value;
    } edits[] = {
        {links0, nslots},                                       /* neighbour out of range */
        {links0 + 4 * stride, 0x7fffffff},                      /* ... far out */
        {node0 + offsetof(hnsw_node, nlinks), 1000},            /* too many links */
        {node0 + offsetof(hnsw_node, row), 0xfffffff0},         /* absurd row */
        {node0 + upper_node * stride + offsetof(hnsw_node, upper), 0xffffff}, /* upper run out */
        {node0 + upper_node2 * stride + offsetof(hnsw_node, upper), first_run}, /* shared run */
        {node0 + offsetof(hnsw_node, level), 15},               /* above the top level */
        {node0 + 3 * stride + offsetof(hnsw_node, flags), 7},   /* unknown flags */
        {72, 99},                                               /* nslots in the header */
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(bad, good, len);
        memcpy(bad + edits[i].off, &edits[i].value, 4);
        hnsw_file_rehash(bad, len);
        hnsw *x = NULL;
        imgsim_status st = hnsw_open_memory(bad, len, 1, &x, &err);
        if (st != IMGSIM_E_MODEL)
            fail_msg("edit %zu: open gave %d (%s)", i, (int)st, err.msg);
    }
    /* a link to a free slot, and a duplicated row */
    {
        memcpy(bad, good, len);
        uint32_t fs = 0;
        for (uint32_t s = 0; s < nslots; s++) {
            hnsw_node nd;
            memcpy(&nd, bad + off_blocks + (size_t)s * stride + (node0 - off_blocks), sizeof nd);
            if (nd.flags == HNSW_FREE)
                fs = s;
        }
        memcpy(bad + links0, &fs, 4);
        hnsw_file_rehash(bad, len);
        hnsw *x = NULL;
        assert_int_equal(hnsw_open_memory(bad, len, 1, &x, &err), IMGSIM_E_MODEL);
        memcpy(bad, good, len);
        uint32_t row;
        memcpy(&row, good + node0 + offsetof(hnsw_node, row), 4);
        memcpy(bad + node0 + stride + offsetof(hnsw_node, row), &row, 4);
        hnsw_file_rehash(bad, len);
        assert_int_equal(hnsw_open_memory(bad, len, 1, &x, &err), IMGSIM_E_MODEL);
    }
    /* another version: unsupported, not damaged */
    memcpy(bad, good, len);
    bad[8] = 9;
    hnsw_file_rehash(bad, len);
    expect_open_fails(bad, len, IMGSIM_E_UNSUPPORTED);
    /* not an index at all, and no file */
    memset(bad, 'x', len);
    expect_open_fails(bad, len, IMGSIM_E_MODEL);
    hnsw *x = NULL;
    assert_int_equal(hnsw_open(tu_out("no_such.idx"), &x, &err), IMGSIM_E_NOTFOUND);
    /* the good file still opens */
    assert_int_equal(hnsw_open(path, &x, &err), IMGSIM_OK);
    hnsw_free(x);
    free(good);
    free(bad);
    hnsw_free(h);
    tset_free(&t);
}

/* Argument errors. */
static void test_errors(void **state)
{
    (void)state;
    tset t = clustered(100, 8, 2, 61);
    hnsw_params p;
    hnsw *h = NULL;
    imgsim_error err = {0};
    hnsw_params_default(&p);
    p.metric = IMGSIM_METRIC_L1;
    assert_int_equal(hnsw_build(&p, t.vecs, 100, 8, NULL, 1, &h, &err), IMGSIM_E_UNSUPPORTED);
    assert_null(h);
    hnsw_params_default(&p);
    p.M = 1;
    assert_int_equal(hnsw_build(&p, t.vecs, 100, 8, NULL, 1, &h, &err), IMGSIM_E_ARG);
    hnsw_params_default(&p);
    p.pca_dims = 9;
    assert_int_equal(hnsw_build(&p, t.vecs, 100, 8, NULL, 1, &h, &err), IMGSIM_E_ARG);
    p.pca_dims = 4;
    assert_int_equal(hnsw_build(&p, t.vecs, 3, 8, NULL, 1, &h, &err), IMGSIM_E_ARG);
    hnsw_params_default(&p);
    assert_int_equal(hnsw_build(&p, t.vecs, 0, 0, NULL, 1, &h, &err), IMGSIM_E_ARG);
    p.storage = HNSW_SQ8;
    assert_int_equal(hnsw_build(&p, NULL, 0, 8, NULL, 1, &h, &err), IMGSIM_E_ARG);
    p.storage = HNSW_F32;
    uint8_t alive[100];
    for (int i = 0; i < 100; i++)
        alive[i] = i % 2;
    assert_int_equal(hnsw_build(&p, t.vecs, 100, 8, alive, 1, &h, &err), IMGSIM_OK);
    hnsw_info info;
    hnsw_get_info(h, &info);
    assert_int_equal(info.count, 50);
    assert_false(hnsw_contains(h, 0));
    assert_true(hnsw_contains(h, 99));
    exact_hit got[K];
    int nout;
    assert_int_equal(hnsw_search(h, NULL, t.vecs, 0, 0, NULL, EXACT_NO_ROW, NULL, got, &nout,
                                 &err),
                     IMGSIM_E_ARG);
    assert_int_equal(hnsw_search(h, NULL, NULL, 1, 0, NULL, EXACT_NO_ROW, NULL, got, &nout, &err),
                     IMGSIM_E_ARG);
    exact_set wrong = t.s;
    wrong.dim = 7;
    assert_int_equal(hnsw_search(h, NULL, t.vecs, 1, 0, NULL, EXACT_NO_ROW, &wrong, got, &nout,
                                 &err),
                     IMGSIM_E_ARG);
    assert_int_equal(hnsw_insert(h, 1, NULL, &err), IMGSIM_E_ARG);
    assert_int_equal(hnsw_insert(h, UINT32_MAX, t.vecs, &err), IMGSIM_E_ARG);
    assert_int_equal(hnsw_insert(h, 0, t.vecs, &err), IMGSIM_OK);
    assert_int_equal(hnsw_save(h, "/nonexistent-dir/x.idx", &err), IMGSIM_E_IO);
    hnsw_free(h);
    hnsw_free(NULL);
    tset_free(&t);
}

/* ------------------------------------------------------------ real embeddings */

/* Wang-1k through imgsim's default model (cached in the test output directory). */
static float *wang_vectors(size_t *n, int *dim)
{
    const size_t count = 1000;
    char cache[4096]; /* kept across the embedding, which uses testutil's path buffers */
    snprintf(cache, sizeof cache, "%s", tu_out("wang1k_default_vectors.f32"));
    FILE *f = fopen(cache, "rb");
    if (f) {
        int d = 0;
        if (fread(&d, sizeof d, 1, f) == 1 && d > 0 && d < 100000) {
            float *v = malloc(count * (size_t)d * sizeof(float));
            if (v && fread(v, sizeof(float), count * (size_t)d, f) == count * (size_t)d) {
                fclose(f);
                *n = count;
                *dim = d;
                return v;
            }
            free(v);
        }
        fclose(f);
    }
    setenv("IMGSIM_MODEL_DIR", tu_out("models"), 0);
    imgsim_model *m = tu_model("mobilenet_edgetpu_224_1.0_uint8.tflite", IMGSIM_PRECISION_AUTO);
    imgsim_ctx *ctx = tu_ctx(m);
    int d = imgsim_model_dim(m);
    int nums[1000];
    for (size_t i = 0; i < count; i++)
        nums[i] = (int)i;
    const char **pp = tu_wang_paths(nums, count);
    float *vecs = tu_embed_files(ctx, d, pp, count);
    f = fopen(cache, "wb");
    if (f) {
        fwrite(&d, sizeof d, 1, f);
        fwrite(vecs, sizeof(float), count * (size_t)d, f);
        fclose(f);
    }
    free(pp);
    tu_model_free(m, ctx);
    *n = count;
    *dim = d;
    return vecs;
}

/* recall@10 >= 0.95 at the default ef on real embeddings, every storage. */
static void test_recall_real(void **state)
{
    (void)state;
    size_t n;
    int dim;
    float *v = wang_vectors(&n, &dim);
    tset t = tset_new(n, dim);
    memcpy(t.vecs, v, n * (size_t)dim * sizeof(float));
    free(v);
    exact_norms(t.vecs, n, dim, t.norms);
    /* queries: every 5th image, held out of the index */
    size_t nq = n / 5;
    float *q = malloc(nq * (size_t)dim * sizeof(float));
    for (size_t i = 0; i < nq; i++) {
        memcpy(q + i * (size_t)dim, t.vecs + i * 5 * (size_t)dim, (size_t)dim * sizeof(float));
        t.alive[i * 5] = 0;
    }
    const struct {
        hnsw_storage storage;
        int pca;
    } cfg[] = {{HNSW_F32, 0}, {HNSW_SQ8, 0}, {HNSW_SQ8, 128}};
    for (int c = 0; c < 3; c++) {
        hnsw_params p;
        hnsw_params_default(&p);
        p.storage = cfg[c].storage;
        p.pca_dims = cfg[c].pca;
        hnsw *h = NULL;
        imgsim_error err = {0};
        assert_int_equal(hnsw_build(&p, t.vecs, n, dim, t.alive, 2, &h, &err), IMGSIM_OK);
        exact_set full = t.s;
        full.alive = t.alive;
        double r = recall(h, &t, p.metric, q, nq, K, 0, NULL, &full);
        printf("Wang-1k (%d-d, %zu rows): storage %d pca %d: recall@10 %.4f at ef %d\n", dim,
               n - nq, p.storage, p.pca_dims, r, p.ef_search);
        assert_true(r >= 0.95);
        hnsw_free(h);
    }
    free(q);
    tset_free(&t);
}

/* The Myntra embeddings of the benchmark (build/bench/myntra_vectors.npy, 2304-d, made by
 * `make bench-search` / `make bench-ann`), when present: the first 10,000 rows, 200 held
 * out as queries, recall@10 >= 0.95 at the default ef for f32 and sq8 (re-ranked). */
static void test_recall_myntra(void **state)
{
    (void)state;
    const char *path = getenv("IMGSIM_ANN_VECTORS");
    if (!path)
        path = "build/bench/myntra_vectors.npy";
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("no %s: skipped\n", path);
        skip();
    }
    uint8_t head[10];
    assert_int_equal(fread(head, 1, 10, f), 10);
    size_t hl = (size_t)head[8] | (size_t)head[9] << 8;
    char *hdr = calloc(hl + 1, 1);
    assert_int_equal(fread(hdr, 1, hl, f), hl);
    size_t rows = 0, dim = 0;
    const char *sh = strstr(hdr, "shape");
    assert_non_null(sh);
    assert_int_equal(sscanf(strchr(sh, '('), "(%zu, %zu)", &rows, &dim), 2);
    assert_non_null(strstr(hdr, "<f4"));
    free(hdr);
    const size_t n = rows < 10000 ? rows : 10000, nq = 200;
    tset t = tset_new(n, (int)dim);
    assert_int_equal(fread(t.vecs, sizeof(float), n * dim, f), n * dim);
    fclose(f);
    exact_norms(t.vecs, n, (int)dim, t.norms);
    float *q = malloc(nq * dim * sizeof(float));
    for (size_t i = 0; i < nq; i++) {
        size_t r = i * (n / nq);
        memcpy(q + i * dim, t.vecs + r * dim, dim * sizeof(float));
        t.alive[r] = 0;
    }
    t.s.alive = t.alive; /* the reference skips the held-out rows too */
    exact_set full = t.s;
    for (int c = 0; c < 2; c++) {
        hnsw_params p;
        hnsw_params_default(&p);
        p.storage = c ? HNSW_SQ8 : HNSW_F32;
        hnsw *h = NULL;
        imgsim_error err = {0};
        assert_int_equal(hnsw_build(&p, t.vecs, n, (int)dim, t.alive, 2, &h, &err), IMGSIM_OK);
        double r = recall(h, &t, p.metric, q, nq, K, 0, NULL, c ? &full : NULL);
        printf("Myntra (%zu-d, %zu rows): storage %d: recall@10 %.4f at ef %d\n", dim, n - nq,
               p.storage, r, p.ef_search);
        assert_true(r >= 0.95);
        hnsw_free(h);
    }
    free(q);
    tset_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_scores),
        cmocka_unit_test(test_recall_clustered),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_exclude_alive),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_save_open),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_recall_real),
        cmocka_unit_test(test_recall_myntra),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

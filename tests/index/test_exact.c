/*
 * test_exact.c — the brute-force search against a naive O(n^2) reference: exact equality on
 * integer-valued data (every dot product and distance is exact in float, so the fast paths
 * must agree bit for bit, ties included), tolerances on random and clustered float data;
 * filter, alive, exclude, k larger than the candidates, all-pairs vs per-row search, the
 * incremental cross search, the key matrix, and argument errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "index/exact.h"
#include "vecset.h"

static const imgsim_metric metrics[] = {IMGSIM_METRIC_COSINE, IMGSIM_METRIC_L2, IMGSIM_METRIC_L1};

/* ------------------------------------------------------------ data */

/* Integer values in [-3, 3]: sums are exact in float. Every 7th row copies an earlier one
 * (exact ties) and row 5 is all zeros (cosine with a zero norm). */
static tset int_set(size_t n, int dim, uint64_t seed)
{
    rng_seed(seed);
    tset t = tset_new(n, dim);
    for (size_t i = 0; i < n; i++) {
        float *v = t.vecs + i * (size_t)dim;
        if (i % 7 == 6)
            memcpy(v, t.vecs + (rng() % i) * (size_t)dim, (size_t)dim * sizeof(float));
        else if (i != 5)
            for (int c = 0; c < dim; c++)
                v[c] = (float)((int)(rng() % 7) - 3);
    }
    tset_done(&t);
    return t;
}

/* Uniform floats in [-1, 1). */
static tset float_set(size_t n, int dim, uint64_t seed)
{
    rng_seed(seed);
    tset t = tset_new(n, dim);
    for (size_t i = 0; i < n * (size_t)dim; i++)
        t.vecs[i] = 2 * rng_unit() - 1;
    tset_done(&t);
    return t;
}

/* Like CNN embeddings: non-negative, sparse-ish (ReLU), L2-normalised, around 12 centres,
 * with a few exact duplicates. */
static tset clustered_set(size_t n, int dim, uint64_t seed)
{
    rng_seed(seed);
    tset t = tset_new(n, dim);
    float *centres = malloc(12 * (size_t)dim * sizeof(float));
    assert_non_null(centres);
    for (int i = 0; i < 12 * dim; i++)
        centres[i] = rng_unit() < 0.4f ? 0 : rng_unit();
    for (size_t i = 0; i < n; i++) {
        float *v = t.vecs + i * (size_t)dim;
        if (i % 50 == 49) {
            memcpy(v, t.vecs + (i - 17) * (size_t)dim, (size_t)dim * sizeof(float));
            continue;
        }
        const float *c = centres + (rng() % 12) * (size_t)dim;
        double ss = 0;
        for (int d = 0; d < dim; d++) {
            float x = c[d] + 0.3f * (rng_unit() - 0.5f);
            v[d] = x > 0 ? x : 0;
            ss += (double)v[d] * v[d];
        }
        for (int d = 0; d < dim && ss > 0; d++)
            v[d] = (float)(v[d] / sqrt(ss));
    }
    free(centres);
    tset_done(&t);
    return t;
}

static uint8_t *random_mask(size_t n, unsigned percent_on, uint64_t seed)
{
    rng_seed(seed);
    uint8_t *m = malloc(n + 1);
    assert_non_null(m);
    for (size_t i = 0; i < n; i++)
        m[i] = rng() % 100 < percent_on;
    return m;
}

/* ------------------------------------------------------------ reference */

typedef struct ref_hit {
    float key;
    uint32_t row;
} ref_hit;

static int ref_cmp(const void *a, const void *b)
{
    const ref_hit *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Every candidate of a query, best first, ranked by exact_key (the pairwise definition).
 * Returns the count; *out is malloc'ed. */
static size_t ref_rank(const exact_set *s, imgsim_metric m, const float *q, float qn,
                       const uint8_t *filter, uint32_t excl, ref_hit **out)
{
    ref_hit *h = malloc((s->n + 1) * sizeof *h);
    assert_non_null(h);
    size_t c = 0;
    for (size_t r = 0; r < s->n; r++) {
        if (r == excl || (s->alive && !s->alive[r]) || (filter && !filter[r]))
            continue;
        h[c].key = exact_key(m, q, qn, s->vecs + r * (size_t)s->dim, s->norms[r], s->dim);
        h[c].row = (uint32_t)r;
        c++;
    }
    qsort(h, c, sizeof *h, ref_cmp);
    *out = h;
    return c;
}

/* The hits must be exactly the first min(k, n) of the reference ranking. */
static void expect_exact(imgsim_metric m, const exact_hit *got, int ngot, const ref_hit *ref,
                         size_t nref, int k, const char *what, size_t qi)
{
    size_t want = nref < (size_t)k ? nref : (size_t)k;
    if ((size_t)ngot != want)
        fail_msg("%s %s query %zu: %d hits, want %zu", what, imgsim_metric_name(m), qi, ngot, want);
    for (size_t i = 0; i < want; i++) {
        float score = exact_key_to_score(m, ref[i].key);
        if (got[i].row != ref[i].row || got[i].score != score)
            fail_msg("%s %s query %zu hit %zu: row %u score %.9g, want row %u score %.9g", what,
                     imgsim_metric_name(m), qi, i, got[i].row, (double)got[i].score, ref[i].row,
                     (double)score);
    }
}

/* User-facing score of a pair in double precision ("higher is closer" is `sign * score`). */
static double ref_score(imgsim_metric m, const float *a, const float *b, int dim)
{
    double ab = 0, aa = 0, bb = 0, l1 = 0;
    for (int i = 0; i < dim; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
        l1 += fabs((double)a[i] - b[i]);
    }
    if (m == IMGSIM_METRIC_COSINE)
        return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
    if (m == IMGSIM_METRIC_L2)
        return sqrt(fmax(0, aa + bb - 2 * ab));
    return l1;
}

/* Float data: the hits are valid distinct candidates, scores match double precision, the
 * list is ordered, and no candidate clearly better than the last hit was missed. L2 is
 * compared squared: |a|^2 + |b|^2 - 2ab loses digits for near-duplicates, and the square
 * root magnifies that near zero (a float ulp of 1 becomes a 3e-4 distance). */
static void expect_close(const exact_set *s, imgsim_metric m, const float *q, int k,
                         const uint8_t *filter, uint32_t excl, const exact_hit *got_in, int ngot)
{
    double sign = m == IMGSIM_METRIC_COSINE ? 1 : -1;
    int sq = m == IMGSIM_METRIC_L2;
    exact_hit got[512];
    assert_true(ngot <= 512);
    for (int i = 0; i < ngot; i++) {
        got[i] = got_in[i];
        if (sq)
            got[i].score *= got[i].score;
    }
    double *sc = malloc(s->n * sizeof *sc);
    uint8_t *seen = calloc(s->n, 1);
    assert_non_null(sc);
    assert_non_null(seen);
    size_t ncand = 0;
    for (size_t r = 0; r < s->n; r++) {
        int cand = r != excl && (!s->alive || s->alive[r]) && (!filter || filter[r]);
        sc[r] = cand ? ref_score(m, q, s->vecs + r * (size_t)s->dim, s->dim) : NAN;
        if (sq)
            sc[r] *= sc[r];
        ncand += (size_t)cand;
    }
    assert_int_equal(ngot, ncand < (size_t)k ? ncand : (size_t)k);
    double worst = INFINITY;
    for (int i = 0; i < ngot; i++) {
        uint32_t r = got[i].row;
        assert_true(r < s->n);
        assert_false(isnan(sc[r])); /* a candidate */
        assert_false(seen[r]);      /* listed once */
        seen[r] = 1;
        double tol = 1e-4 * (1 + fabs(sc[r]));
        if (fabs(got[i].score - sc[r]) > tol)
            fail_msg("%s row %u: score %.7g, double precision %.7g", imgsim_metric_name(m), r,
                     (double)got[i].score, sc[r]);
        if (i > 0)
            assert_true(sign * got[i].score <= sign * got[i - 1].score + tol);
        worst = fmin(worst, sign * sc[r]);
    }
    if (ngot == k)
        for (size_t r = 0; r < s->n; r++)
            if (!isnan(sc[r]) && !seen[r] && sign * sc[r] > worst + 1e-4 * (1 + fabs(worst)))
                fail_msg("%s: row %zu (%.7g) is better than the last hit but missing",
                         imgsim_metric_name(m), r, sc[r]);
    free(sc);
    free(seen);
}

/* ------------------------------------------------------------ tests */

static void test_keys_and_scores(void **state)
{
    (void)state;
    const float a[2] = {3, 4}, z[2] = {0, 0}, x[2] = {1, 0}, y[2] = {1, 1};
    const float p[2] = {1, 2}, r[2] = {4, -2};
    float n[2];
    exact_norms(a, 1, 2, n);
    assert_float_equal(n[0], 5.0f, 0); /* sqrt(9 + 16) */
    /* cosine (1,0).(1,1) = 1 / (1 * sqrt 2) */
    assert_float_equal(exact_key(IMGSIM_METRIC_COSINE, x, 1, y, sqrtf(2), 2), 0.70710678f, 1e-7);
    assert_float_equal(exact_key(IMGSIM_METRIC_COSINE, a, 5, z, 0, 2), 0.0f, 0); /* zero norm */
    /* L2: key = -squared distance = -(9 + 16); score = 5 */
    float k2 = exact_key(IMGSIM_METRIC_L2, a, 5, z, 0, 2);
    assert_float_equal(k2, -25.0f, 0);
    assert_float_equal(exact_key_to_score(IMGSIM_METRIC_L2, k2), 5.0f, 0);
    /* L1: |1 - 4| + |2 - -2| = 3 + 4 = 7 */
    float k1 = exact_key(IMGSIM_METRIC_L1, p, 0, r, 0, 2);
    assert_float_equal(k1, -7.0f, 0);
    assert_float_equal(exact_key_to_score(IMGSIM_METRIC_L1, k1), 7.0f, 0);
    assert_float_equal(exact_key_to_score(IMGSIM_METRIC_COSINE, 0.25f), 0.25f, 0);
    /* L1 over lengths that exercise the vector lanes and the scalar tail */
    tset t = float_set(2, 131, 1);
    for (int d = 1; d <= 131; d += 13) {
        double want = ref_score(IMGSIM_METRIC_L1, t.vecs, t.vecs + 131, d);
        float got = -exact_key(IMGSIM_METRIC_L1, t.vecs, 0, t.vecs + 131, 0, d);
        assert_float_equal(got, want, 1e-5 * (1 + want));
        /* symmetric bit for bit */
        assert_true(exact_key(IMGSIM_METRIC_L1, t.vecs, 0, t.vecs + 131, 0, d) ==
                    exact_key(IMGSIM_METRIC_L1, t.vecs + 131, 0, t.vecs, 0, d));
    }
    tset_free(&t);
}

/* Ten identical rows: ties go to the lower row, through exclude, filter and alive. */
static void test_ties(void **state)
{
    (void)state;
    tset t = tset_new(12, 5);
    for (int i = 0; i < 12; i++)
        for (int c = 0; c < 5; c++)
            t.vecs[i * 5 + c] = i < 10 ? (float)(c + 1) : (float)(10 - c); /* rows 10, 11 differ */
    tset_done(&t);
    uint8_t filter[12];
    memset(filter, 1, sizeof filter);
    for (size_t mi = 0; mi < 3; mi++) {
        imgsim_metric m = metrics[mi];
        exact_hit out[3];
        int nout;
        imgsim_error e = {0};
        uint32_t excl = 0;
        t.s.alive = NULL;
        assert_int_equal(exact_search(&t.s, m, t.vecs, 1, 3, NULL, &excl, 1, out, &nout, &e), IMGSIM_OK);
        assert_int_equal(nout, 3);
        assert_int_equal(out[0].row, 1);
        assert_int_equal(out[1].row, 2);
        assert_int_equal(out[2].row, 3);
        assert_true(out[0].score == out[2].score);
        filter[2] = 0; /* row 2 filtered out */
        assert_int_equal(exact_search(&t.s, m, t.vecs, 1, 3, filter, &excl, 2, out, &nout, &e), IMGSIM_OK);
        assert_int_equal(out[0].row, 1);
        assert_int_equal(out[1].row, 3);
        assert_int_equal(out[2].row, 4);
        t.alive[1] = 0; /* row 1 deleted */
        t.s.alive = t.alive;
        assert_int_equal(exact_search(&t.s, m, t.vecs, 1, 3, filter, &excl, 2, out, &nout, &e), IMGSIM_OK);
        assert_int_equal(out[0].row, 3);
        assert_int_equal(out[1].row, 4);
        assert_int_equal(out[2].row, 5);
        /* no exclude: row 0 itself comes first */
        assert_int_equal(exact_search(&t.s, m, t.vecs, 1, 3, NULL, NULL, 1, out, &nout, &e), IMGSIM_OK);
        assert_int_equal(out[0].row, 0);
        assert_int_equal(out[1].row, 2);
        filter[2] = 1;
        t.alive[1] = 1;
    }
    tset_free(&t);
}

/* Integer data: external queries and row queries, every metric, filter / alive / exclude,
 * k from 1 to more than the candidates, 1-3 threads; bit-exact against the reference.
 * 2,500 rows and 300 queries cross the block sizes (2,048 rows, 256 queries). */
static void test_search_exact(void **state)
{
    (void)state;
    const size_t n = 2500, nq = 300;
    const int dim = 19, ks[] = {1, 6, 3000};
    tset t = int_set(n, dim, 7);
    uint8_t *dead = random_mask(n, 10, 8), *filter = random_mask(n, 60, 9);
    for (size_t r = 0; r < n; r++)
        t.alive[r] = !dead[r];
    free(dead);
    t.s.alive = t.alive;
    /* queries: half copies of rows (with exclude), half fresh integer vectors */
    float *q = malloc(nq * (size_t)dim * sizeof(float)), *qn = malloc(nq * sizeof(float));
    uint32_t *excl = malloc(nq * sizeof(uint32_t)), *rows = malloc(nq * sizeof(uint32_t));
    assert_non_null(q);
    assert_non_null(qn);
    assert_non_null(excl);
    assert_non_null(rows);
    rng_seed(10);
    for (size_t i = 0; i < nq; i++) {
        rows[i] = rng() % n;
        if (i % 2) {
            memcpy(q + i * dim, t.vecs + rows[i] * (size_t)dim, dim * sizeof(float));
            excl[i] = rows[i];
        } else {
            for (int c = 0; c < dim; c++)
                q[i * dim + c] = (float)((int)(rng() % 7) - 3);
            excl[i] = EXACT_NO_ROW;
        }
    }
    rows[0] = 5; /* the zero row as a query */
    exact_norms(q, nq, dim, qn);
    exact_hit *out = malloc(nq * 3000 * sizeof *out);
    int *nout = malloc(nq * sizeof(int));
    assert_non_null(out);
    assert_non_null(nout);
    for (size_t mi = 0; mi < 3; mi++) {
        imgsim_metric m = metrics[mi];
        for (int pass = 0; pass < 2; pass++) { /* 0: vectors + exclude + filter; 1: rows, no filter */
            const uint8_t *f = pass == 0 ? filter : NULL;
            ref_hit **ref = malloc(nq * sizeof *ref);
            size_t *nref = malloc(nq * sizeof *nref);
            assert_non_null(ref);
            assert_non_null(nref);
            for (size_t i = 0; i < nq; i++) {
                const float *qv = pass == 0 ? q + i * dim : t.vecs + rows[i] * (size_t)dim;
                float qnorm = pass == 0 ? qn[i] : t.norms[rows[i]];
                nref[i] = ref_rank(&t.s, m, qv, qnorm, f, pass == 0 ? excl[i] : rows[i], &ref[i]);
            }
            for (int ki = 0; ki < 3; ki++) {
                int k = ks[ki], threads = 1 + ki;
                imgsim_error e = {0};
                imgsim_status st =
                    pass == 0 ? exact_search(&t.s, m, q, nq, k, f, excl, threads, out, nout, &e)
                              : exact_search_rows(&t.s, m, rows, nq, k, f, threads, out, nout, &e);
                if (st != IMGSIM_OK)
                    fail_msg("search: %s", e.msg);
                for (size_t i = 0; i < nq; i++)
                    expect_exact(m, out + i * k, nout[i], ref[i], nref[i], k,
                                 pass == 0 ? "search" : "search_rows", i);
            }
            /* a single query goes through sgemv */
            int n1;
            imgsim_error e = {0};
            assert_int_equal(exact_search(&t.s, m, q + dim, 1, 6, f, excl + 1, 2, out, &n1, &e), IMGSIM_OK);
            if (pass == 0)
                expect_exact(m, out, n1, ref[1], nref[1], 6, "single", 1);
            for (size_t i = 0; i < nq; i++)
                free(ref[i]);
            free(ref);
            free(nref);
        }
    }
    free(out);
    free(nout);
    free(q);
    free(qn);
    free(excl);
    free(rows);
    free(filter);
    tset_free(&t);
}

/* Float data, random and clustered (embedding-like): within float tolerance of double. */
static void test_search_float(void **state)
{
    (void)state;
    tset sets[2] = {float_set(3000, 70, 21), clustered_set(2200, 64, 22)};
    for (int si = 0; si < 2; si++) {
        tset *t = &sets[si];
        uint8_t *filter = random_mask(t->s.n, 30, 23);
        for (size_t mi = 0; mi < 3; mi++) {
            imgsim_metric m = metrics[mi];
            enum { NQ = 24, K = 10 };
            uint32_t rows[NQ];
            for (int i = 0; i < NQ; i++)
                rows[i] = (uint32_t)((i * 97 + 13) % t->s.n);
            exact_hit out[NQ * K];
            int nout[NQ];
            imgsim_error e = {0};
            assert_int_equal(exact_search_rows(&t->s, m, rows, NQ, K, NULL, 2, out, nout, &e), IMGSIM_OK);
            for (int i = 0; i < NQ; i++)
                expect_close(&t->s, m, t->vecs + rows[i] * (size_t)t->s.dim, K, NULL, rows[i],
                             out + i * K, nout[i]);
            assert_int_equal(exact_search(&t->s, m, t->vecs, NQ, K, filter, NULL, 2, out, nout, &e), IMGSIM_OK);
            for (int i = 0; i < NQ; i++)
                expect_close(&t->s, m, t->vecs + (size_t)i * t->s.dim, K, filter, EXACT_NO_ROW,
                             out + i * K, nout[i]);
            /* the same bits whatever the thread count (single query: sgemv path too) */
            for (int nq = 1; nq <= NQ; nq += NQ - 1) {
                exact_hit again[NQ * K];
                int nagain[NQ];
                assert_int_equal(exact_search(&t->s, m, t->vecs, (size_t)nq, K, filter, NULL, 1, out, nout, &e), IMGSIM_OK);
                assert_int_equal(exact_search(&t->s, m, t->vecs, (size_t)nq, K, filter, NULL, 5, again, nagain, &e), IMGSIM_OK);
                assert_memory_equal(nout, nagain, (size_t)nq * sizeof(int));
                assert_memory_equal(out, again, (size_t)nq * K * sizeof *out);
            }
        }
        free(filter);
        tset_free(t);
    }
}

/* exact_all_pairs equals exact_search_rows over every row (bit for bit on integer data),
 * whatever the thread count; dead rows get nothing and are never listed. */
static void check_all_pairs(tset *t, int k)
{
    size_t n = t->s.n;
    uint32_t *rows = malloc(n * sizeof *rows);
    exact_hit *a = malloc(n * (size_t)k * sizeof *a), *b = malloc(n * (size_t)k * sizeof *b);
    int *na = malloc(n * sizeof(int)), *nb = malloc(n * sizeof(int));
    assert_non_null(rows);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(na);
    assert_non_null(nb);
    for (size_t i = 0; i < n; i++)
        rows[i] = (uint32_t)i;
    for (size_t mi = 0; mi < 3; mi++) {
        imgsim_metric m = metrics[mi];
        imgsim_error e = {0};
        assert_int_equal(exact_search_rows(&t->s, m, rows, n, k, NULL, 2, b, nb, &e), IMGSIM_OK);
        for (int threads = 1; threads <= 3; threads += 2) {
            if (exact_all_pairs(&t->s, m, k, threads, a, na, &e) != IMGSIM_OK)
                fail_msg("all_pairs: %s", e.msg);
            for (size_t r = 0; r < n; r++) {
                if (!t->alive[r]) {
                    assert_int_equal(na[r], 0);
                    continue;
                }
                if (na[r] != nb[r])
                    fail_msg("%s row %zu: %d hits vs %d", imgsim_metric_name(m), r, na[r], nb[r]);
                for (int i = 0; i < na[r]; i++) {
                    const exact_hit *x = a + r * k + i, *y = b + r * k + i;
                    if (x->row != y->row || x->score != y->score)
                        fail_msg("%s row %zu hit %d: all_pairs %u %.9g, search_rows %u %.9g",
                                 imgsim_metric_name(m), r, i, x->row, (double)x->score, y->row,
                                 (double)y->score);
                }
            }
        }
        /* and a sample of rows against the reference */
        for (size_t r = 0; r < n; r += 97) {
            if (!t->alive[r])
                continue;
            ref_hit *ref;
            size_t nref = ref_rank(&t->s, m, t->vecs + r * (size_t)t->s.dim, t->norms[r], NULL,
                                   (uint32_t)r, &ref);
            expect_exact(m, a + r * k, na[r], ref, nref, k, "all_pairs", r);
            free(ref);
        }
    }
    free(rows);
    free(a);
    free(b);
    free(na);
    free(nb);
}

static void test_all_pairs(void **state)
{
    (void)state;
    /* 2,600 rows: tiles of 1,024, 1,024 and 552 (diagonal and off-diagonal) */
    tset t = int_set(2600, 9, 31);
    uint8_t *dead = random_mask(t.s.n, 8, 32);
    for (size_t r = 0; r < t.s.n; r++)
        t.alive[r] = !dead[r];
    free(dead);
    t.s.alive = t.alive;
    check_all_pairs(&t, 7);
    tset_free(&t);
    /* k larger than the number of rows */
    tset u = int_set(150, 17, 33);
    u.alive[3] = u.alive[77] = 0;
    u.s.alive = u.alive;
    check_all_pairs(&u, 200);
    tset_free(&u);
}

/* All pairs on float data, checked against double precision. */
static void test_all_pairs_float(void **state)
{
    (void)state;
    tset t = clustered_set(1500, 40, 41);
    enum { K = 8 };
    exact_hit *out = malloc(t.s.n * K * sizeof *out);
    int *nout = malloc(t.s.n * sizeof(int));
    assert_non_null(out);
    assert_non_null(nout);
    for (size_t mi = 0; mi < 3; mi++) {
        imgsim_error e = {0};
        assert_int_equal(exact_all_pairs(&t.s, metrics[mi], K, 2, out, nout, &e), IMGSIM_OK);
        for (size_t r = 0; r < t.s.n; r += 7)
            expect_close(&t.s, metrics[mi], t.vecs + r * 40, K, NULL, (uint32_t)r, out + r * K,
                         nout[r]);
    }
    free(out);
    free(nout);
    tset_free(&t);
}

/* exact_cross: forward lists like a search, back lists = top-k among the new rows only. */
static void check_cross(tset *t, const uint32_t *rows, size_t nq, int k, int threads)
{
    size_t n = t->s.n;
    exact_hit *fwd = malloc(nq * (size_t)k * sizeof *fwd), *back = malloc(n * (size_t)k * sizeof *back);
    int *fn = malloc(nq * sizeof(int)), *bn = malloc(n * sizeof(int));
    uint8_t *isnew = calloc(n, 1);
    assert_non_null(fwd);
    assert_non_null(back);
    assert_non_null(fn);
    assert_non_null(bn);
    assert_non_null(isnew);
    for (size_t i = 0; i < nq; i++)
        isnew[rows[i]] = 1;
    for (size_t mi = 0; mi < 3; mi++) {
        imgsim_metric m = metrics[mi];
        imgsim_error e = {0};
        if (exact_cross(&t->s, m, rows, nq, k, threads, fwd, fn, back, bn, &e) != IMGSIM_OK)
            fail_msg("cross: %s", e.msg);
        for (size_t i = 0; i < nq; i++) {
            ref_hit *ref;
            size_t nref = ref_rank(&t->s, m, t->vecs + rows[i] * (size_t)t->s.dim,
                                   t->norms[rows[i]], NULL, rows[i], &ref);
            expect_exact(m, fwd + i * k, fn[i], ref, nref, k, "cross fwd", i);
            free(ref);
        }
        for (size_t r = 0; r < n; r++) {
            if (!t->alive[r]) {
                assert_int_equal(bn[r], 0);
                continue;
            }
            ref_hit *ref;
            size_t nref = ref_rank(&t->s, m, t->vecs + r * (size_t)t->s.dim, t->norms[r], isnew,
                                   (uint32_t)r, &ref);
            expect_exact(m, back + r * k, bn[r], ref, nref, k, "cross back", r);
            free(ref);
        }
    }
    free(fwd);
    free(back);
    free(fn);
    free(bn);
    free(isnew);
}

static void test_cross(void **state)
{
    (void)state;
    tset t = int_set(2300, 11, 51);
    uint8_t *dead = random_mask(t.s.n, 10, 52);
    for (size_t r = 0; r < t.s.n; r++)
        t.alive[r] = !dead[r];
    free(dead);
    t.s.alive = t.alive;
    /* 270 new rows (more than one query block), some of them dead */
    enum { NQ = 270 };
    uint32_t rows[NQ];
    for (size_t i = 0; i < NQ; i++)
        rows[i] = (uint32_t)(2300 - 1 - i * 8); /* distinct, spread over the set */
    check_cross(&t, rows, NQ, 5, 2);
    /* three new rows, k larger than them: back lists hold at most 3 (2 for a new row) */
    uint32_t few[3] = {4, 900, 2299};
    check_cross(&t, few, 3, 5, 1);
    tset_free(&t);
}

/* exact_keys_rows: every key equals exact_key; dead rows are -inf. */
static void test_keys_rows(void **state)
{
    (void)state;
    tset t = int_set(700, 21, 61);
    t.alive[3] = t.alive[500] = 0;
    t.s.alive = t.alive;
    enum { NQ = 9 };
    const uint32_t rows[NQ] = {0, 3, 5, 6, 13, 100, 500, 698, 699};
    float *keys = malloc(NQ * t.s.n * sizeof(float));
    assert_non_null(keys);
    for (size_t mi = 0; mi < 3; mi++) {
        imgsim_metric m = metrics[mi];
        imgsim_error e = {0};
        assert_int_equal(exact_keys_rows(&t.s, m, rows, NQ, keys, &e), IMGSIM_OK);
        for (size_t i = 0; i < NQ; i++)
            for (size_t r = 0; r < t.s.n; r++) {
                float want = t.alive[r] ? exact_key(m, t.vecs + rows[i] * 21, t.norms[rows[i]],
                                                    t.vecs + r * 21, t.norms[r], 21)
                                        : -INFINITY;
                if (keys[i * t.s.n + r] != want)
                    fail_msg("%s key (%u, %zu) = %.9g, want %.9g", imgsim_metric_name(m), rows[i],
                             r, (double)keys[i * t.s.n + r], (double)want);
            }
    }
    free(keys);
    tset_free(&t);
}

static void test_errors(void **state)
{
    (void)state;
    tset t = int_set(10, 4, 71);
    exact_hit out[40];
    int nout[10];
    imgsim_error e = {0};
    assert_int_equal(exact_search(&t.s, IMGSIM_METRIC_L2, t.vecs, 1, 0, NULL, NULL, 1, out, nout, &e),
                     IMGSIM_E_ARG);
    assert_non_null(strstr(e.msg, "k must"));
    exact_set nonorm = t.s;
    nonorm.norms = NULL;
    e.msg[0] = 0;
    assert_int_equal(exact_search(&nonorm, IMGSIM_METRIC_COSINE, t.vecs, 1, 3, NULL, NULL, 1, out, nout, &e),
                     IMGSIM_E_ARG);
    assert_true(e.msg[0] != 0);
    /* L1 does not need norms */
    assert_int_equal(exact_search(&nonorm, IMGSIM_METRIC_L1, t.vecs, 1, 3, NULL, NULL, 1, out, nout, &e),
                     IMGSIM_OK);
    assert_int_equal(nout[0], 3);
    uint32_t bad[2] = {1, 10};
    assert_int_equal(exact_search_rows(&t.s, IMGSIM_METRIC_L1, bad, 2, 3, NULL, 1, out, nout, &e),
                     IMGSIM_E_ARG);
    assert_non_null(strstr(e.msg, "out of range"));
    uint32_t twice[2] = {4, 4};
    exact_hit back[40];
    int back_n[10];
    assert_int_equal(exact_cross(&t.s, IMGSIM_METRIC_L1, twice, 2, 3, 1, out, nout, back, back_n, &e),
                     IMGSIM_E_ARG);
    assert_non_null(strstr(e.msg, "twice"));
    assert_int_equal(exact_keys_rows(&t.s, (imgsim_metric)9, bad, 1, (float *)out, &e), IMGSIM_E_ARG);
    /* an empty set: no hits, no error */
    exact_set empty = {NULL, 0, 4, NULL, NULL};
    nout[0] = 99;
    assert_int_equal(exact_search(&empty, IMGSIM_METRIC_COSINE, t.vecs, 1, 3, NULL, NULL, 0, out, nout, &e),
                     IMGSIM_OK);
    assert_int_equal(nout[0], 0);
    assert_int_equal(exact_all_pairs(&empty, IMGSIM_METRIC_L2, 3, 0, NULL, NULL, &e), IMGSIM_OK);
    /* a set where every row is dead */
    memset(t.alive, 0, 10);
    t.s.alive = t.alive;
    assert_int_equal(exact_search(&t.s, IMGSIM_METRIC_L2, t.vecs, 1, 3, NULL, NULL, 2, out, nout, &e),
                     IMGSIM_OK);
    assert_int_equal(nout[0], 0);
    tset_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_and_scores),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_search_exact),
        cmocka_unit_test(test_search_float),
        cmocka_unit_test(test_all_pairs),
        cmocka_unit_test(test_all_pairs_float),
        cmocka_unit_test(test_cross),
        cmocka_unit_test(test_keys_rows),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

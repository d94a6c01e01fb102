/*
 * test_metrics.c — the leave-one-out metrics: eval_list on lists worked out by hand,
 * eval_run on a six-item set worked out by hand (two items share a row, one is unlabelled),
 * and eval_run against a naive full sort on integer data full of ties.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "eval/metrics.h"

#define EPS 1e-12

/* cmocka's assert_float_equal works in float; these numbers are doubles. */
#define assert_near(a, b) expect_near((a), (b), #a, __LINE__)
static void expect_near(double a, double b, const char *what, int line)
{
    if (!(fabs(a - b) <= EPS))
        fail_msg("line %d: %s = %.15g, want %.15g", line, what, a, b);
}

static void test_eval_list(void **state)
{
    (void)state;
    double p, r, ap;
    const uint8_t rel[5] = {1, 0, 1, 1, 0};
    /* k = 5, R = 4: hits 3; P = 3/5; R@5 = 3/4;
     * AP@5 = (P@1 + P@3 + P@4) / min(5, 4) = (1/1 + 2/3 + 3/4) / 4 = 29/48 */
    eval_list(rel, 5, 5, 4, &p, &r, &ap);
    assert_near(p, 0.6);
    assert_near(r, 0.75);
    assert_near(ap, 29.0 / 48.0);
    /* k = 3 of the same list: [1, 0, 1]; P = 2/3; R@3 = 2/4; AP@3 = (1 + 2/3) / min(3, 4) = 5/9 */
    eval_list(rel, 5, 3, 4, &p, &r, &ap);
    assert_near(p, 2.0 / 3.0);
    assert_near(r, 0.5);
    assert_near(ap, 5.0 / 9.0);
    /* fewer results than k: k_eff = 2, [1, 1], R = 5: P = 1; R@ = 2/5; AP = (1 + 1) / min(2, 5) = 1 */
    eval_list(rel + 2, 2, 10, 5, &p, &r, &ap);
    assert_near(p, 1.0);
    assert_near(r, 0.4);
    assert_near(ap, 1.0);
    /* R = 1, relevant at position 2 of k = 2: [0, 1]; P = 1/2; R@ = 1; AP = (P@2) / min(2, 1) = 1/2 */
    const uint8_t late[2] = {0, 1};
    eval_list(late, 2, 2, 1, &p, &r, &ap);
    assert_near(p, 0.5);
    assert_near(r, 1.0);
    assert_near(ap, 0.5);
    /* no relevant item anywhere (R = 0): R@ and AP are 0, P counts nothing */
    const uint8_t none[3] = {0, 0, 0};
    eval_list(none, 3, 3, 0, &p, &r, &ap);
    assert_near(p, 0.0);
    assert_near(r, 0.0);
    assert_near(ap, 0.0);
}

/* Points on a line, L2 distance:
 *   row 0: x = 0   row 1: x = 1   row 2: x = 3   row 3: x = 6   row 4: x = 0.5
 *   item 0 row 0 A | item 1 row 1 A | item 2 row 2 B | item 3 row 2 A | item 4 row 3 B |
 *   item 5 row 4 unlabelled (closest to items 0 and 1, but never a candidate)
 * k = 2. Rankings (ties by lower item index), relevance, and the numbers:
 *   q0 (A, R=2): 1 (d1), 2 (d3), 3 (d3), 4 (d6)  rel 1 0 1 0
 *       P@2 = 1/2, R@2 = 1/2, AP@2 = (1/1) / 2 = 1/2, AP = (1/1 + 2/3) / 2 = 5/6
 *   q1 (A, R=2): 0 (d1), 2 (d2), 3 (d2), 4 (d5)  rel 1 0 1 0  -> same as q0
 *   q2 (B, R=1): 3 (d0, same row), 1 (d2), 0 (d3), 4 (d3)  rel 0 0 0 1
 *       P@2 = 0, R@2 = 0, AP@2 = 0, AP = (1/4) / 1 = 1/4
 *   q3 (A, R=2): 2 (d0), 1 (d2), 0 (d3), 4 (d3)  rel 0 1 1 0
 *       P@2 = 1/2, R@2 = 1/2, AP@2 = (1/2) / 2 = 1/4, AP = (1/2 + 2/3) / 2 = 7/12
 *   q4 (B, R=1): 2 (d3), 3 (d3), 1 (d5), 0 (d6)  rel 1 0 0 0
 *       P@2 = 1/2, R@2 = 1, AP@2 = 1 / min(2, 1) = 1, AP = 1
 * overall (5 queries): P = 2/5, R = 2.5/5 = 1/2, AP@2 = 2.25/5 = 9/20,
 *   AP = (5/6 + 5/6 + 1/4 + 7/12 + 1) / 5 = (42/12) / 5 = 7/10
 * A (q0, q1, q3): P = 1/2, R = 1/2, AP@2 = 1.25/3 = 5/12, AP = (10 + 10 + 7)/12 / 3 = 3/4
 * B (q2, q4): P = 1/4, R = 1/2, AP@2 = 1/2, AP = (1/4 + 1) / 2 = 5/8 */
static const float line_vecs[10] = {0, 0, 1, 0, 3, 0, 6, 0, 0.5f, 0};
static const uint32_t line_row[6] = {0, 1, 2, 2, 3, 4};
static const int line_label[6] = {0, 0, 1, 0, 1, -1};

static void expect_score(const eval_score *s, size_t n, double p, double r, double apk, double ap)
{
    assert_int_equal(s->n, n);
    assert_near(s->p_at_k, p);
    assert_near(s->r_at_k, r);
    assert_near(s->map_at_k, apk);
    assert_near(s->map, ap);
}

static void test_eval_run_by_hand(void **state)
{
    (void)state;
    float norms[5];
    exact_norms(line_vecs, 5, 2, norms);
    exact_set set = {line_vecs, 5, 2, norms, NULL};
    for (int threads = 1; threads <= 2; threads++) {
        eval_result r;
        imgsim_error e = {0};
        if (eval_run(&set, IMGSIM_METRIC_L2, line_row, line_label, 6, 2, NULL, 2, 1, threads, &r, &e) != IMGSIM_OK)
            fail_msg("eval_run: %s", e.msg);
        assert_int_equal(r.k, 2);
        assert_int_equal(r.nlabels, 2);
        expect_score(&r.overall, 5, 0.4, 0.5, 9.0 / 20, 0.7);
        expect_score(&r.per_label[0], 3, 0.5, 0.5, 5.0 / 12, 0.75);
        expect_score(&r.per_label[1], 2, 0.25, 0.5, 0.5, 5.0 / 8);
        eval_result_free(&r);
        assert_null(r.per_label);
    }
    /* without the full ranking: same top-k numbers, AP = 0 */
    eval_result r;
    imgsim_error e = {0};
    assert_int_equal(eval_run(&set, IMGSIM_METRIC_L2, line_row, line_label, 6, 2, NULL, 2, 0, 1, &r, &e), IMGSIM_OK);
    expect_score(&r.overall, 5, 0.4, 0.5, 9.0 / 20, 0);
    eval_result_free(&r);
    /* queries 0 and 4 only (the unlabelled item 5 is ignored even if marked) */
    const uint8_t isq[6] = {1, 0, 0, 0, 1, 1};
    assert_int_equal(eval_run(&set, IMGSIM_METRIC_L2, line_row, line_label, 6, 2, isq, 2, 1, 2, &r, &e), IMGSIM_OK);
    expect_score(&r.overall, 2, 0.5, 0.75, 0.75, (5.0 / 6 + 1) / 2);
    expect_score(&r.per_label[0], 1, 0.5, 0.5, 0.5, 5.0 / 6);
    expect_score(&r.per_label[1], 1, 0.5, 1, 1, 1);
    eval_result_free(&r);
    /* k larger than the 4 candidates: k_eff = 4, so P@k = relevant / 4 for every query:
     * q0 2/4, q1 2/4, q2 1/4, q3 2/4, q4 1/4 -> 8/20; R@k = 1 for all */
    assert_int_equal(eval_run(&set, IMGSIM_METRIC_L2, line_row, line_label, 6, 2, NULL, 50, 1, 1, &r, &e), IMGSIM_OK);
    assert_int_equal(r.k, 4);
    assert_near(r.overall.p_at_k, 0.4);
    assert_near(r.overall.r_at_k, 1.0);
    /* with every candidate listed, AP@k equals the full AP */
    assert_near(r.overall.map_at_k, 0.7);
    assert_near(r.overall.map, 0.7);
    eval_result_free(&r);
}

/* ------------------------------------------------------------ naive reference */

typedef struct cand {
    float key;
    uint32_t item;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* The four numbers of one query by sorting every candidate, straight from the definitions. */
static void naive_query(const exact_set *s, imgsim_metric m, const uint32_t *row, const int *label,
                        size_t nitems, uint32_t q, int k, double out[4])
{
    cand *c = malloc(nitems * sizeof *c);
    assert_non_null(c);
    size_t n = 0, R = 0;
    for (size_t i = 0; i < nitems; i++) {
        if (i == q || label[i] < 0)
            continue;
        c[n].key = exact_key(m, s->vecs + row[q] * (size_t)s->dim, s->norms[row[q]],
                             s->vecs + row[i] * (size_t)s->dim, s->norms[row[i]], s->dim);
        c[n++].item = (uint32_t)i;
        R += label[i] == label[q];
    }
    qsort(c, n, sizeof *c, cand_cmp);
    size_t ke = (size_t)k < n ? (size_t)k : n, hits = 0;
    double sum_k = 0, sum = 0;
    for (size_t i = 0; i < n; i++)
        if (label[c[i].item] == label[q]) {
            hits++;
            if (i < ke)
                sum_k += (double)hits / (double)(i + 1);
            sum += (double)hits / (double)(i + 1);
        }
    size_t hits_k = 0;
    for (size_t i = 0; i < ke; i++)
        hits_k += label[c[i].item] == label[q];
    out[0] = (double)hits_k / (double)ke;
    out[1] = R ? (double)hits_k / (double)R : 0;
    out[2] = R ? sum_k / (double)(ke < R ? ke : R) : 0;
    out[3] = R ? sum / (double)R : 0;
    free(c);
}

static uint64_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* 450 items on 160 rows (many share a row), integer vectors with many equal keys, 10%
 * unlabelled, 5 labels, 70% of the items as queries (two blocks of 128): eval_run must give
 * the naive means, for every metric. */
static void test_eval_run_vs_naive(void **state)
{
    (void)state;
    enum { NROWS = 160, DIM = 6, NITEMS = 450, NLAB = 5, K = 7 };
    float *vecs = malloc(NROWS * DIM * sizeof(float)), norms[NROWS];
    uint32_t row[NITEMS];
    int label[NITEMS];
    uint8_t isq[NITEMS];
    assert_non_null(vecs);
    for (int i = 0; i < NROWS * DIM; i++)
        vecs[i] = (float)((int)(rng() % 5) - 2);
    exact_norms(vecs, NROWS, DIM, norms);
    for (int i = 0; i < NITEMS; i++) {
        row[i] = rng() % NROWS;
        label[i] = rng() % 10 == 0 ? -1 : (int)(rng() % NLAB);
        isq[i] = rng() % 10 < 7;
    }
    exact_set set = {vecs, NROWS, DIM, norms, NULL};
    const imgsim_metric metrics[] = {IMGSIM_METRIC_COSINE, IMGSIM_METRIC_L2, IMGSIM_METRIC_L1};
    for (int mi = 0; mi < 3; mi++) {
        double tot[4] = {0}, lab[NLAB][4] = {{0}};
        size_t nq = 0, nql[NLAB] = {0};
        for (uint32_t q = 0; q < NITEMS; q++) {
            if (label[q] < 0 || !isq[q])
                continue;
            double v[4];
            naive_query(&set, metrics[mi], row, label, NITEMS, q, K, v);
            for (int c = 0; c < 4; c++) {
                tot[c] += v[c];
                lab[label[q]][c] += v[c];
            }
            nq++;
            nql[label[q]]++;
        }
        eval_result r;
        imgsim_error e = {0};
        if (eval_run(&set, metrics[mi], row, label, NITEMS, NLAB, isq, K, 1, 2, &r, &e) != IMGSIM_OK)
            fail_msg("eval_run: %s", e.msg);
        expect_score(&r.overall, nq, tot[0] / nq, tot[1] / nq, tot[2] / nq, tot[3] / nq);
        for (int l = 0; l < NLAB; l++)
            expect_score(&r.per_label[l], nql[l], lab[l][0] / nql[l], lab[l][1] / nql[l],
                         lab[l][2] / nql[l], lab[l][3] / nql[l]);
        eval_result_free(&r);
    }
    free(vecs);
}

static void test_eval_errors(void **state)
{
    (void)state;
    float norms[5];
    exact_norms(line_vecs, 5, 2, norms);
    exact_set set = {line_vecs, 5, 2, norms, NULL};
    eval_result r;
    imgsim_error e = {0};
    assert_int_equal(eval_run(&set, IMGSIM_METRIC_L2, line_row, line_label, 6, 2, NULL, 0, 1, 1, &r, &e),
                     IMGSIM_E_ARG);
    assert_non_null(strstr(e.msg, "k must"));
    const int bad_label[6] = {0, 0, 1, 0, 2, -1}; /* 2 is not < nlabels */
    assert_int_equal(eval_run(&set, IMGSIM_METRIC_L2, line_row, bad_label, 6, 2, NULL, 2, 1, 1, &r, &e),
                     IMGSIM_E_ARG);
    assert_non_null(strstr(e.msg, "item 4"));
    const uint32_t bad_row[6] = {0, 1, 2, 2, 3, 5}; /* row 5 of 5 */
    assert_int_equal(eval_run(&set, IMGSIM_METRIC_L2, bad_row, line_label, 6, 2, NULL, 2, 1, 1, &r, &e),
                     IMGSIM_E_ARG);
    const int one_label[6] = {-1, -1, 1, -1, -1, -1};
    assert_int_equal(eval_run(&set, IMGSIM_METRIC_L2, line_row, one_label, 6, 2, NULL, 2, 1, 1, &r, &e),
                     IMGSIM_E_ARG);
    assert_non_null(strstr(e.msg, "fewer than 2"));
    exact_set nonorm = set;
    nonorm.norms = NULL; /* cosine needs norms: the error of the search comes back */
    assert_int_equal(eval_run(&nonorm, IMGSIM_METRIC_COSINE, line_row, line_label, 6, 2, NULL, 2, 1, 2, &r, &e),
                     IMGSIM_E_ARG);
    assert_non_null(strstr(e.msg, "norms"));
    assert_null(r.per_label);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_list),
        cmocka_unit_test(test_eval_run_by_hand),
        cmocka_unit_test(test_eval_run_vs_naive),
        cmocka_unit_test(test_eval_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

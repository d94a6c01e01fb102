/*
 * bench/search_kernels.c — speed of the exact search on synthetic embedding-like vectors
 * (non-negative, L2-normalised): single-query exact_search latency (median) against a naive
 * scalar loop measured in the same run (the peer), exact_all_pairs wall time, and optionally
 * the full leave-one-out eval_run (every item a query, full AP). One JSON line per
 * measurement. The machine's speed varies with other load: compare ratios from one run.
 *
 *   build/release/bench/search_kernels --n 44000 --dim 1280 [--k 10 --threads 2 --reps 21
 *                                      --pairs 1 --eval 0 --metric all|cosine|l2|l1]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "eval/metrics.h"
#include "index/exact.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* The peer: one query, a scalar loop per row, insertion into a sorted top-k. */
static void naive_search(const exact_set *s, imgsim_metric m, const float *q, int k,
                         exact_hit *out)
{
    int n = 0;
    double qq = 0;
    for (int c = 0; c < s->dim; c++)
        qq += (double)q[c] * q[c];
    for (size_t r = 0; r < s->n; r++) {
        const float *v = s->vecs + r * (size_t)s->dim;
        float acc = 0, key;
        if (m == IMGSIM_METRIC_L1) {
            for (int c = 0; c < s->dim; c++)
                acc += fabsf(q[c] - v[c]);
            key = -acc;
        } else if (m == IMGSIM_METRIC_L2) {
            for (int c = 0; c < s->dim; c++)
                acc += (q[c] - v[c]) * (q[c] - v[c]);
            key = -acc;
        } else {
            for (int c = 0; c < s->dim; c++)
                acc += q[c] * v[c];
            key = acc / (float)sqrt(qq) / s->norms[r];
        }
        if (n == k && key <= out[k - 1].score)
            continue;
        int i = n < k ? n++ : k - 1;
        for (; i > 0 && out[i - 1].score < key; i--)
            out[i] = out[i - 1];
        out[i] = (exact_hit){(uint32_t)r, key};
    }
}

int main(int argc, char **argv)
{
    size_t n = 44000;
    int dim = 1280, k = 10, threads = 2, reps = 21, pairs = 1, eval = 0;
    const char *only = "all";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--k")) k = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pairs")) pairs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--eval")) eval = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--metric")) only = argv[i + 1];
    }
    float *vecs = malloc(n * (size_t)dim * sizeof(float)), *norms = malloc(n * sizeof(float));
    exact_hit *out = malloc(n * (size_t)k * sizeof *out), peer[1024];
    int *nout = malloc(n * sizeof(int));
    double *t_ours = malloc((size_t)reps * sizeof(double)), *t_peer = malloc((size_t)reps * sizeof(double));
    if (!vecs || !norms || !out || !nout || !t_ours || !t_peer || k > 1024 || reps < 1) {
        fprintf(stderr, "bench/search_kernels: out of memory or bad arguments\n");
        return 1;
    }
    uint64_t st = 42;
    for (size_t i = 0; i < n * (size_t)dim; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        float x = (float)(st >> 40) / 16777216.0f - 0.3f; /* ReLU-like: 30% zeros */
        vecs[i] = x > 0 ? x : 0;
    }
    exact_norms(vecs, n, dim, norms);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < dim && norms[i] > 0; c++)
            vecs[i * dim + c] /= norms[i];
    exact_norms(vecs, n, dim, norms);
    exact_set s = {vecs, n, dim, norms, NULL};
    imgsim_error e = {0};
    for (int mi = 0; mi < 3; mi++) {
        imgsim_metric m = (imgsim_metric)mi;
        if (strcmp(only, "all") && strcmp(only, imgsim_metric_name(m)))
            continue;
        for (int r = 0; r < reps; r++) {
            const float *q = vecs + ((size_t)r * 7919 % n) * dim;
            double t0 = clock_now();
            if (exact_search(&s, m, q, 1, k, NULL, NULL, threads, out, nout, &e) != IMGSIM_OK) {
                fprintf(stderr, "bench/search_kernels: %s\n", e.msg);
                return 1;
            }
            double t1 = clock_now();
            naive_search(&s, m, q, k, peer);
            t_ours[r] = t1 - t0;
            t_peer[r] = clock_now() - t1;
            if (peer[0].row != out[0].row)
                fprintf(stderr, "bench/search_kernels: %s: best row %u vs naive %u\n",
                        imgsim_metric_name(m), out[0].row, peer[0].row);
        }
        double ours = median(t_ours, reps), theirs = median(t_peer, reps);
        printf("{\"impl\":\"imgsim\",\"bench\":\"exact_search_1q\",\"metric\":\"%s\",\"n\":%zu,"
               "\"dim\":%d,\"k\":%d,\"threads\":%d,\"p50_ms\":%.3f,\"peer\":\"naive_loop_1thread\","
               "\"peer_p50_ms\":%.3f,\"speedup\":%.2f}\n",
               imgsim_metric_name(m), n, dim, k, threads, 1e3 * ours, 1e3 * theirs, theirs / ours);
        fflush(stdout);
        if (pairs) {
            double t0 = clock_now();
            if (exact_all_pairs(&s, m, k, threads, out, nout, &e) != IMGSIM_OK) {
                fprintf(stderr, "bench/search_kernels: %s\n", e.msg);
                return 1;
            }
            double sec = clock_now() - t0;
            printf("{\"impl\":\"imgsim\",\"bench\":\"exact_all_pairs\",\"metric\":\"%s\",\"n\":%zu,"
                   "\"dim\":%d,\"k\":%d,\"threads\":%d,\"seconds\":%.2f,\"pairs_per_s\":%.3g}\n",
                   imgsim_metric_name(m), n, dim, k, threads, sec, (double)n * (n - 1) / 2 / sec);
            fflush(stdout);
        }
        if (eval) { /* every item a query, 100 labels of skewed sizes (the largest 10%,
                     * like Myntra's article types), full AP */
            uint32_t *rows = malloc(n * sizeof *rows);
            int *labels = malloc(n * sizeof *labels);
            if (!rows || !labels)
                return 1;
            for (size_t i = 0; i < n; i++) {
                rows[i] = (uint32_t)i;
                double x = (double)(uint32_t)(i * 2654435761u) / 4294967296.0;
                labels[i] = (int)(100 * x * x);
            }
            eval_result res;
            double t0 = clock_now();
            if (eval_run(&s, m, rows, labels, n, 100, NULL, k, 1, threads, &res, &e) != IMGSIM_OK) {
                fprintf(stderr, "bench/search_kernels: %s\n", e.msg);
                return 1;
            }
            printf("{\"impl\":\"imgsim\",\"bench\":\"eval_run_full_map\",\"metric\":\"%s\",\"n\":%zu,"
                   "\"dim\":%d,\"k\":%d,\"threads\":%d,\"seconds\":%.2f,\"map\":%.4f}\n",
                   imgsim_metric_name(m), n, dim, k, threads, clock_now() - t0, res.overall.map);
            fflush(stdout);
            eval_result_free(&res);
            free(rows);
            free(labels);
        }
    }
    free(vecs);
    free(norms);
    free(out);
    free(nout);
    free(t_ours);
    free(t_peer);
    return 0;
}

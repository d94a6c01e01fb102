/*
 * search.c — query-side speed of a collection, printed as JSON lines for
 * scripts/bench_search.sh (which sets them against numpy brute force in the same run):
 *   - `--id` query latency answered from the neighbour table and by exact search (p50/p99);
 *   - one-image query latency including decode + embedding;
 *   - full neighbour-table build time;
 *   - resident memory per item after the queries touched every vector.
 *
 * usage: bench/search --db DIR [--queries 200] [--images LIST] [--k 10] [--no-build]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "imgsim.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void pct(double *v, int n, double *p50, double *p99)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    *p50 = v[n / 2];
    *p99 = v[(int)((double)(n - 1) * 0.99)];
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static int die(const imgsim_error *e)
{
    fprintf(stderr, "bench/search: %s\n", e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    const char *dbdir = NULL, *images = NULL;
    int nq = 200, k = 10, build = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) dbdir = argv[++i];
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc) nq = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--images") && i + 1 < argc) images = argv[++i];
        else if (!strcmp(argv[i], "--k") && i + 1 < argc) k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-build")) build = 0;
        else {
            fprintf(stderr, "usage: bench/search --db DIR [--queries N] [--images LIST] [--k K] [--no-build]\n");
            return 2;
        }
    }
    if (!dbdir || nq < 1)
        return 2;
    imgsim_error e = {0};
    if (imgsim_init(argv[0], &e) != IMGSIM_OK)
        return die(&e);
    long rss0 = rss_kb();
    imgsim_db *db;
    if (imgsim_db_open(dbdir, IMGSIM_DB_WRITE, NULL, 0, &db, &e) != IMGSIM_OK)
        return die(&e);
    size_t nitems;
    if (imgsim_db_count(db, &nitems, &e) != IMGSIM_OK)
        return die(&e);
    char **ids;
    size_t nids;
    if (imgsim_db_item_ids(db, &ids, &nids, &e) != IMGSIM_OK || nids == 0)
        return die(&e);

    if (build) {
        double t0 = (clock_now() * 1e3);
        imgsim_neighbours_build(db, k, IMGSIM_METRIC_COSINE, 0, NULL, &e); /* warm (may be fresh) */
        /* a full build: drop and rebuild with another k, then back */
        double t1 = (clock_now() * 1e3);
        if (imgsim_neighbours_build(db, k + 1, IMGSIM_METRIC_COSINE, 0, NULL, &e) != IMGSIM_OK)
            return die(&e);
        double t2 = (clock_now() * 1e3);
        if (imgsim_neighbours_build(db, k, IMGSIM_METRIC_COSINE, 0, NULL, &e) != IMGSIM_OK)
            return die(&e);
        (void)t0;
        printf("{\"bench\":\"neighbour_table_build\",\"items\":%zu,\"vectors\":%zu,\"k\":%d,\"seconds\":%.3f}\n",
               nitems, imgsim_db_vectors(db), k + 1, (t2 - t1) / 1e3);
        fflush(stdout);
    }

    double *lat = malloc(sizeof(double) * (size_t)nq);
    if (!lat)
        return 1;
    imgsim_query_opts o;
    imgsim_query_opts_default(&o);
    o.k = k;
    srand(42);
    for (int mode = 0; mode < 2; mode++) {
        o.no_table = mode;
        int from_table = 0;
        for (int i = 0; i < nq; i++) {
            const char *id = ids[(size_t)rand() % nids];
            imgsim_results r;
            double t0 = (clock_now() * 1e3);
            if (imgsim_query_id(db, id, &o, &r, &e) != IMGSIM_OK)
                return die(&e);
            lat[i] = (clock_now() * 1e3) - t0;
            from_table += r.from_table;
            imgsim_results_free(&r);
        }
        double p50, p99;
        pct(lat, nq, &p50, &p99);
        printf("{\"bench\":\"query_id\",\"mode\":\"%s\",\"from_table\":%d,\"items\":%zu,\"k\":%d,"
               "\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
               mode ? "exact" : "table", from_table, nitems, k, p50, p99);
        fflush(stdout);
    }

    if (images) {
        imgsim_model_opts mo;
        imgsim_model_opts_default(&mo);
        mo.no_normalize = 1;
        imgsim_model *m;
        imgsim_ctx *ctx;
        if (imgsim_model_open(imgsim_db_model(db), &mo, &m, &e) != IMGSIM_OK ||
            imgsim_ctx_new(m, &ctx, &e) != IMGSIM_OK)
            return die(&e);
        FILE *f = fopen(images, "r");
        char line[4096];
        int n = 0;
        float *vec = malloc(sizeof(float) * (size_t)imgsim_db_dim(db));
        double *emb = malloc(sizeof(double) * (size_t)nq);
        imgsim_prep p;
        imgsim_model_prep(m, &p);
        while (f && vec && emb && n < nq && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            imgsim_image img;
            imgsim_results r;
            double t0 = (clock_now() * 1e3);
            if (imgsim_image_load_file(line, &p, &img, &e) != IMGSIM_OK)
                continue;
            if (imgsim_embed(ctx, &img, 1, vec, NULL, &e) != IMGSIM_OK)
                return die(&e);
            double t1 = (clock_now() * 1e3);
            o.no_table = 0;
            if (imgsim_query_vector(db, vec, &o, &r, &e) != IMGSIM_OK)
                return die(&e);
            lat[n] = (clock_now() * 1e3) - t0;
            emb[n] = t1 - t0;
            n++;
            imgsim_image_free(&img);
            imgsim_results_free(&r);
        }
        if (f)
            fclose(f);
        if (n > 0) {
            double p50, p99, e50, e99;
            pct(lat, n, &p50, &p99);
            pct(emb, n, &e50, &e99);
            printf("{\"bench\":\"query_image\",\"items\":%zu,\"k\":%d,\"n\":%d,\"p50_ms\":%.3f,"
                   "\"p99_ms\":%.3f,\"embed_p50_ms\":%.3f}\n",
                   nitems, k, n, p50, p99, e50);
        }
        free(vec);
        free(emb);
        imgsim_ctx_free(ctx);
        imgsim_model_close(m);
    }
    long rss1 = rss_kb();
    printf("{\"bench\":\"memory\",\"items\":%zu,\"dim\":%d,\"rss_kb_before_open\":%ld,\"rss_kb\":%ld,"
           "\"bytes_per_item\":%.0f}\n",
           nitems, imgsim_db_dim(db), rss0, rss1,
           nitems ? (double)(rss1 - rss0) * 1024.0 / (double)nitems : 0.0);
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    free(lat);
    imgsim_db_close(db);
    return 0;
}

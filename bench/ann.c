/*
 * ann.c — imgsim's HNSW index against exact search, for bench/ann.sh (which runs hnswlib
 * on the same files in the same run and prints the comparison). Output: JSON lines.
 *
 *   ann prepare --vectors X.npy --out DIR [--holdout 1000] [--derive N] [--dims 256]
 *               [--noise 1.0] [--skip-split 1] [--name derived]
 *       DIR/myntra/{base,queries,gt}.npy: X split into base rows and `holdout` query rows
 *       (every n/holdout-th row), gt = exact cosine top-10 ids of each query (int32);
 *       with --derive: DIR/derived/... — X reduced to `dims` by PCA (pca.c), then N base
 *       points and 1000 query points, each between a random reduced row and one of its
 *       nearest rows, plus noise shaped like the data (see prepare_derived); seeded.
 *   ann run --set DIR/NAME [--ef 10,20,...] [--threads 2] [--configs f32,sq8,pca256-sq8]
 *           [--repeat 3] [--save PREFIX] [--load PREFIX]
 *       per config: build time (threads), bytes per vector, then for every ef single-thread
 *       queries: recall@10 against gt and queries/s (best of --repeat passes); sq8 and PCA
 *       configs re-rank on the float rows (part of the timed search). --save: each index is
 *       saved as PREFIX.CONFIG.idx and queried after hnsw_open (save/open times printed);
 *       --load: no build, the indexes are opened from PREFIX.CONFIG.idx.
 *   ann crossover --set DIR/NAME [--sizes 1000,...]
 *       for growing prefixes of base: exact_search time of one query (1 and 2 threads) and
 *       HNSW at the default ef (time, recall) — where HNSW starts to pay.
 *   ann sq8 --set DIR/NAME
 *       quantisation schemes compared by brute force on the codes: recall@10 of per-dimension
 *       ranges and of a per-vector scale, float query and int8 query.
 *   ann seeds DIR
 *       small valid index files (every storage, with removed nodes) as fuzzing seeds for
 *       fuzz/fuzz_hnsw_open.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/clock.h"
#include "imgsim.h"
#include "index/exact.h"
#include "index/hnsw.h"
#include "index/hnsw_internal.h"
#include "index/pca.h"
#include "index/sq8.h"

#define K 10
static float noise_ratio = 1.0f; /* derived points: noise norm / nearest-neighbour distance */

static void die(const char *what, const imgsim_error *err)
{
    fprintf(stderr, "ann: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

/* ------------------------------------------------------------ .npy files */

typedef struct npy {
    void *map;
    size_t map_len;
    const void *data;
    size_t rows, cols;
    int is_int;
} npy;

/* Map a 1- or 2-d '<f4' / '<i4' C-order .npy file. */
static npy npy_load(const char *path)
{
    npy a = {0};
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        fprintf(stderr, "ann: cannot open %s\n", path);
        exit(1);
    }
    a.map_len = (size_t)sb.st_size;
    a.map = mmap(NULL, a.map_len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    const char *b = a.map;
    if (a.map == MAP_FAILED || a.map_len < 16 || memcmp(b, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "ann: %s is not a .npy file\n", path);
        exit(1);
    }
    size_t hl = b[6] == 1 ? (size_t)(uint8_t)b[8] | (size_t)(uint8_t)b[9] << 8
                          : (size_t)(uint8_t)b[8] | (size_t)(uint8_t)b[9] << 8 |
                                (size_t)(uint8_t)b[10] << 16;
    size_t off = (b[6] == 1 ? 10 : 12) + hl;
    char head[512] = {0};
    memcpy(head, b + (b[6] == 1 ? 10 : 12), hl < 511 ? hl : 511);
    a.is_int = strstr(head, "<i4") != NULL;
    if ((!a.is_int && !strstr(head, "<f4")) || strstr(head, "True")) {
        fprintf(stderr, "ann: %s: need little-endian float32/int32, C order\n", path);
        exit(1);
    }
    const char *sh = strstr(head, "shape");
    sh = sh ? strchr(sh, '(') : NULL;
    if (!sh || sscanf(sh, "(%zu, %zu)", &a.rows, &a.cols) < 1) {
        fprintf(stderr, "ann: %s: no shape\n", path);
        exit(1);
    }
    if (a.cols == 0)
        a.cols = 1;
    a.data = b + off;
    if (off + a.rows * a.cols * 4 > a.map_len) {
        fprintf(stderr, "ann: %s is truncated\n", path);
        exit(1);
    }
    return a;
}

static void npy_close(npy *a) { munmap(a->map, a->map_len); }

/* Write rows x cols float32 ('<f4') or int32 ('<i4'). */
static void npy_save(const char *path, const void *data, size_t rows, size_t cols, int is_int)
{
    char head[128];
    int n = snprintf(head, sizeof head,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }",
                     is_int ? "<i4" : "<f4", rows, cols);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "ann: cannot write %s\n", path);
        exit(1);
    }
    uint16_t hl = (uint16_t)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hl, 2, 1, f);
    fwrite(head, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    if (fwrite(data, 4, rows * cols, f) != rows * cols || fclose(f) != 0) {
        fprintf(stderr, "ann: cannot write %s\n", path);
        exit(1);
    }
}

/* ------------------------------------------------------------ helpers */

static uint64_t rs = 0x853c49e6748fea9bull;
static uint32_t rnd(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t x = (uint32_t)(((rs >> 18) ^ rs) >> 27), r = (uint32_t)(rs >> 59);
    return (x >> r) | (x << ((32 - r) & 31));
}
static double rnd_unit(void) { return ((double)rnd() + 0.5) / 4294967296.0; }
static float rnd_gauss(void)
{
    return (float)(sqrt(-2.0 * log(rnd_unit())) * cos(6.283185307179586 * rnd_unit()));
}

static void normalise(float *x, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (double)x[i] * x[i];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 1.0f;
    for (size_t i = 0; i < dim; i++)
        x[i] *= inv;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "ann: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* Exact cosine top-K ids of the queries against base (both threads). */
static int32_t *ground_truth(const float *base, size_t n, const float *q, size_t nq, int dim)
{
    float *norms = xmalloc(n * sizeof(float));
    exact_norms(base, n, dim, norms);
    exact_set s = {base, n, dim, norms, NULL};
    exact_hit *hits = xmalloc(nq * K * sizeof *hits);
    int *nout = xmalloc(nq * sizeof(int));
    imgsim_error err = {0};
    if (exact_search(&s, IMGSIM_METRIC_COSINE, q, nq, K, NULL, NULL, 0, hits, nout, &err) !=
        IMGSIM_OK)
        die("exact search", &err);
    int32_t *gt = xmalloc(nq * K * sizeof(int32_t));
    for (size_t i = 0; i < nq * K; i++)
        gt[i] = (int32_t)hits[i].row;
    free(norms);
    free(hits);
    free(nout);
    return gt;
}

static void mkdirs(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "ann: cannot create %s\n", dir);
        exit(1);
    }
}

static const char *path2(const char *dir, const char *name)
{
    static char buf[4][4096];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

/* ------------------------------------------------------------ prepare */

/* The Myntra split: every (n / holdout)-th row is a query. */
static void prepare_split(const npy *x, size_t holdout, const char *dir)
{
    size_t n = x->rows, d = x->cols, every = n / holdout;
    const float *v = x->data;
    float *base = xmalloc(n * d * sizeof(float)), *q = xmalloc(holdout * d * sizeof(float));
    size_t nb = 0, nq = 0;
    for (size_t r = 0; r < n; r++) {
        if (r % every == 0 && nq < holdout)
            memcpy(q + nq++ * d, v + r * d, d * sizeof(float));
        else
            memcpy(base + nb++ * d, v + r * d, d * sizeof(float));
    }
    double t = clock_now();
    int32_t *gt = ground_truth(base, nb, q, nq, (int)d);
    fprintf(stderr, "ann: %s: %zu base, %zu queries, ground truth in %.1f s\n", dir, nb, nq,
            clock_now() - t);
    mkdirs(dir);
    npy_save(path2(dir, "base.npy"), base, nb, d, 0);
    npy_save(path2(dir, "queries.npy"), q, nq, d, 0);
    npy_save(path2(dir, "gt.npy"), gt, nq, K, 1);
    free(base);
    free(q);
    free(gt);
}

/* The derived set: points on the segments between a PCA-reduced row and one of its
 * MIX_K nearest rows (a random fraction t < MIX_T of the way), plus noise shaped like the
 * data (per-component standard deviation of the reduced rows, scaled so its norm is
 * --noise x the row's nearest-neighbour distance), L2-normalised. Noise alone would make
 * clouds of copies around each row (easy: find the cloud, done); moving along neighbour
 * edges fills the space between rows the way more photos of similar things would. */
static void prepare_derived(const npy *x, size_t nbase, int dims, const char *dir)
{
    size_t n = x->rows, d = x->cols, dd = (size_t)dims;
    imgsim_error err = {0};
    pca_model pm;
    double t = clock_now();
    if (pca_fit(&pm, x->data, n, (int)d, NULL, dims, 0, 1, 7, &err) != IMGSIM_OK)
        die("pca", &err);
    float *y = xmalloc(n * dd * sizeof(float)), *tmp = xmalloc(d * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        memcpy(tmp, (const float *)x->data + r * d, d * sizeof(float));
        normalise(tmp, d);
        pca_project(&pm, tmp, y + r * dd);
        normalise(y + r * dd, dd);
    }
    fprintf(stderr, "ann: PCA %zu -> %d in %.1f s (eigenvalues: first %.4f, last %.6f)\n", d,
            dims, clock_now() - t, pm.eig[0], pm.eig[dims - 1]);
    /* shape of the noise: standard deviation of each reduced component */
    double *var = calloc(dd, sizeof(double)), *mu = calloc(dd, sizeof(double));
    float *sd = xmalloc(dd * sizeof(float));
    double sdn = 0;
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < dd; j++)
            mu[j] += y[r * dd + j];
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < dd; j++) {
            double v = y[r * dd + j] - mu[j] / (double)n;
            var[j] += v * v;
        }
    for (size_t j = 0; j < dd; j++) {
        sd[j] = (float)sqrt(var[j] / (double)n);
        sdn += (double)sd[j] * sd[j];
    }
    sdn = sqrt(sdn); /* expected norm of noise with these deviations */
    /* each row's MIX_K nearest rows and its nearest-neighbour distance */
    enum { MIX_K = 10 };
    const float MIX_T = 0.5f;
    float *norms = xmalloc(n * sizeof(float)), *scale = xmalloc(n * sizeof(float));
    exact_norms(y, n, dims, norms);
    exact_set s = {y, n, dims, norms, NULL};
    uint32_t *rows = xmalloc(n * sizeof(uint32_t));
    for (size_t r = 0; r < n; r++)
        rows[r] = (uint32_t)r;
    exact_hit *nn = xmalloc(n * MIX_K * sizeof *nn);
    int *nnn = xmalloc(n * sizeof(int));
    if (exact_search_rows(&s, IMGSIM_METRIC_L2, rows, n, MIX_K, NULL, 0, nn, nnn, &err) !=
        IMGSIM_OK)
        die("nearest neighbours", &err);
    double mean = 0;
    for (size_t r = 0; r < n; r++) {
        scale[r] = nnn[r] ? nn[r * MIX_K].score : 0.0f;
        mean += scale[r];
    }
    mean /= (double)n;
    for (size_t r = 0; r < n; r++) /* near-duplicate rows: use half the typical scale */
        if (scale[r] < 0.5 * mean)
            scale[r] = (float)(0.5 * mean);
    fprintf(stderr, "ann: mean nearest-neighbour distance %.4f\n", mean);
    size_t nq = 1000, tot = nbase + nq;
    float *out = xmalloc(tot * dd * sizeof(float));
    rs = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < tot; i++) {
        size_t r = rnd() % n;
        const float *a = y + r * dd, *b = a;
        if (nnn[r])
            b = y + (size_t)nn[r * MIX_K + rnd() % (uint32_t)nnn[r]].row * dd;
        float tt = MIX_T * (float)rnd_unit(), amp = noise_ratio * scale[r] / (float)sdn;
        float *o = out + i * dd;
        for (size_t j = 0; j < dd; j++)
            o[j] = a[j] + tt * (b[j] - a[j]) + amp * sd[j] * rnd_gauss();
        normalise(o, dd);
    }
    t = clock_now();
    int32_t *gt = ground_truth(out, nbase, out + nbase * dd, nq, dims);
    fprintf(stderr, "ann: %s: %zu base, %zu queries, ground truth in %.1f s\n", dir, nbase, nq,
            clock_now() - t);
    mkdirs(dir);
    npy_save(path2(dir, "base.npy"), out, nbase, dd, 0);
    npy_save(path2(dir, "queries.npy"), out + nbase * dd, nq, dd, 0);
    npy_save(path2(dir, "gt.npy"), gt, nq, K, 1);
    pca_free(&pm);
    free(y);
    free(tmp);
    free(var);
    free(mu);
    free(sd);
    free(norms);
    free(scale);
    free(rows);
    free(nn);
    free(nnn);
    free(out);
    free(gt);
}

/* ------------------------------------------------------------ run */

typedef struct dataset {
    npy base, q, gt;
    const char *name;
    float *norms;
    exact_set full;
} dataset;

static void dataset_open(dataset *ds, const char *dir)
{
    ds->base = npy_load(path2(dir, "base.npy"));
    ds->q = npy_load(path2(dir, "queries.npy"));
    ds->gt = npy_load(path2(dir, "gt.npy"));
    const char *slash = strrchr(dir, '/');
    ds->name = slash ? slash + 1 : dir;
    ds->norms = xmalloc(ds->base.rows * sizeof(float));
    exact_norms(ds->base.data, ds->base.rows, (int)ds->base.cols, ds->norms);
    ds->full = (exact_set){ds->base.data, ds->base.rows, (int)ds->base.cols, ds->norms, NULL};
}

static void dataset_close(dataset *ds)
{
    npy_close(&ds->base);
    npy_close(&ds->q);
    npy_close(&ds->gt);
    free(ds->norms);
}

/* Parse "a,b,c" into ints. */
static int parse_list(const char *s, int *v, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        v[n++] = atoi(s);
        s = strchr(s, ',');
        if (s)
            s++;
    }
    return n;
}

/* recall@K of hits against the ground truth row of query i. */
static int hits_found(const dataset *ds, size_t i, const exact_hit *h, int n)
{
    const int32_t *g = (const int32_t *)ds->gt.data + i * ds->gt.cols;
    int f = 0;
    for (int j = 0; j < n; j++)
        for (int x = 0; x < K; x++)
            if ((int32_t)h[j].row == g[x]) {
                f++;
                break;
            }
    return f;
}

/* Single-thread queries at one ef: recall and best-of-`repeat` QPS. */
static void query_pass(const dataset *ds, const hnsw *h, int ef, int rerank, int repeat,
                       double *recall, double *qps)
{
    hnsw_ctx *c;
    imgsim_error err = {0};
    if (hnsw_ctx_new(&c, &err) != IMGSIM_OK)
        die("ctx", &err);
    exact_hit hits[K];
    size_t nq = ds->q.rows, d = ds->q.cols;
    const float *q = ds->q.data;
    double best = 1e30;
    long found = 0;
    for (int rep = 0; rep < repeat; rep++) {
        found = 0;
        double t = clock_now();
        for (size_t i = 0; i < nq; i++) {
            int n;
            if (hnsw_search(h, c, q + i * d, K, ef, NULL, EXACT_NO_ROW, rerank ? &ds->full : NULL,
                            hits, &n, &err) != IMGSIM_OK)
                die("search", &err);
            found += hits_found(ds, i, hits, n);
        }
        t = clock_now() - t;
        if (t < best)
            best = t;
    }
    hnsw_ctx_free(c);
    *recall = (double)found / (double)(nq * K);
    *qps = (double)nq / best;
}

typedef struct config {
    char name[32];
    hnsw_storage storage;
    int pca;
} config;

static config parse_config(const char *s)
{
    config c = {{0}, HNSW_F32, 0};
    snprintf(c.name, sizeof c.name, "%s", s);
    if (strstr(s, "sq8"))
        c.storage = HNSW_SQ8;
    const char *p = strstr(s, "pca");
    if (p)
        c.pca = atoi(p + 3);
    return c;
}

/* PREFIX.CONFIG.idx */
static const char *index_path(const char *prefix, const char *cfg)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s.%s.idx", prefix, cfg);
    return buf;
}

static int cmd_run(const char *dir, const char *efs, int threads, const char *configs, int repeat,
                   const char *save, const char *load)
{
    dataset ds;
    dataset_open(&ds, dir);
    int ef[32];
    int nef = parse_list(efs, ef, 32);
    char cfgs[256];
    snprintf(cfgs, sizeof cfgs, "%s", configs);
    for (char *tok = strtok(cfgs, ","); tok; tok = strtok(NULL, ",")) {
        config cf = parse_config(tok);
        hnsw_params p;
        hnsw_params_default(&p);
        p.storage = cf.storage;
        p.pca_dims = cf.pca;
        hnsw *h;
        imgsim_error err = {0};
        if (load) {
            if (hnsw_open(index_path(load, cf.name), &h, &err) != IMGSIM_OK)
                die("open", &err);
        } else {
            double t = clock_now();
            if (hnsw_build(&p, ds.base.data, ds.base.rows, (int)ds.base.cols, NULL, threads, &h,
                           &err) != IMGSIM_OK)
                die("build", &err);
            t = clock_now() - t;
            hnsw_info info;
            hnsw_get_info(h, &info);
            double bpv = (double)(info.bytes_codes + info.bytes_graph + info.bytes_other) /
                         (double)info.count;
            printf("{\"bench\":\"ann_build\",\"set\":\"%s\",\"impl\":\"imgsim\",\"config\":\"%s\","
                   "\"n\":%zu,\"dim\":%zu,\"threads\":%d,\"seconds\":%.2f,"
                   "\"bytes_per_vector\":%.1f,"
                   "\"bytes_per_vector_with_floats\":%.1f,\"max_level\":%d}\n",
                   ds.name, cf.name, info.count, ds.base.cols, threads, t, bpv,
                   bpv + (cf.storage == HNSW_F32 && !cf.pca ? 0.0 : 4.0 * (double)ds.base.cols),
                   info.max_level);
            fflush(stdout);
        }
        if (save) { /* queries then run on the saved file, opened (mapped) again */
            double ts = clock_now();
            if (hnsw_save(h, index_path(save, cf.name), &err) != IMGSIM_OK)
                die("save", &err);
            ts = clock_now() - ts;
            hnsw_free(h);
            double to = clock_now();
            if (hnsw_open(index_path(save, cf.name), &h, &err) != IMGSIM_OK)
                die("open", &err);
            to = clock_now() - to;
            printf("{\"bench\":\"ann_io\",\"set\":\"%s\",\"config\":\"%s\",\"save_s\":%.2f,"
                   "\"open_s\":%.2f}\n", ds.name, cf.name, ts, to);
        }
        int rerank = cf.storage != HNSW_F32 || cf.pca;
        for (int i = 0; i < nef; i++) {
            double rec, qps;
            query_pass(&ds, h, ef[i], rerank, repeat, &rec, &qps);
            printf("{\"bench\":\"ann_query\",\"set\":\"%s\",\"impl\":\"imgsim\",\"config\":\"%s\","
                   "\"ef\":%d,\"recall\":%.4f,\"qps\":%.1f}\n",
                   ds.name, cf.name, ef[i], rec, qps);
            fflush(stdout);
        }
        hnsw_free(h);
    }
    dataset_close(&ds);
    return 0;
}

/* ------------------------------------------------------------ crossover */

static int cmd_crossover(const char *dir, const char *sizes, int repeat)
{
    dataset ds;
    dataset_open(&ds, dir);
    int sz[32];
    int ns = parse_list(sizes, sz, 32);
    size_t d = ds.base.cols, nq = ds.q.rows < 300 ? ds.q.rows : 300;
    const float *q = ds.q.data;
    for (int si = 0; si < ns; si++) {
        size_t n = (size_t)sz[si] < ds.base.rows ? (size_t)sz[si] : ds.base.rows;
        exact_set s = ds.full;
        s.n = n;
        imgsim_error err = {0};
        /* exact ground truth on this prefix */
        exact_hit *gt = xmalloc(nq * K * sizeof *gt), hits[K];
        int *gn = xmalloc(nq * sizeof(int));
        if (exact_search(&s, IMGSIM_METRIC_COSINE, q, nq, K, NULL, NULL, 0, gt, gn, &err) !=
            IMGSIM_OK)
            die("exact", &err);
        double ex_t[2];
        for (int th = 1; th <= 2; th++) {
            double best = 1e30;
            for (int rep = 0; rep < repeat; rep++) {
                double t = clock_now();
                for (size_t i = 0; i < nq; i++) {
                    int nn;
                    if (exact_search(&s, IMGSIM_METRIC_COSINE, q + i * d, 1, K, NULL, NULL, th,
                                     hits, &nn, &err) != IMGSIM_OK)
                        die("exact", &err);
                }
                t = (clock_now() - t) / (double)nq;
                if (t < best)
                    best = t;
            }
            ex_t[th - 1] = best;
        }
        hnsw_params p;
        hnsw_params_default(&p);
        hnsw *h;
        double tb = clock_now();
        if (hnsw_build(&p, ds.base.data, n, (int)d, NULL, 2, &h, &err) != IMGSIM_OK)
            die("build", &err);
        tb = clock_now() - tb;
        hnsw_ctx *c;
        if (hnsw_ctx_new(&c, &err) != IMGSIM_OK)
            die("ctx", &err);
        double best = 1e30;
        long found = 0;
        for (int rep = 0; rep < repeat; rep++) {
            found = 0;
            double t = clock_now();
            for (size_t i = 0; i < nq; i++) {
                int nn;
                if (hnsw_search(h, c, q + i * d, K, 0, NULL, EXACT_NO_ROW, NULL, hits, &nn,
                                &err) != IMGSIM_OK)
                    die("search", &err);
                for (int j = 0; j < nn; j++)
                    for (int x = 0; x < gn[i]; x++)
                        if (hits[j].row == gt[i * K + (size_t)x].row) {
                            found++;
                            break;
                        }
            }
            t = (clock_now() - t) / (double)nq;
            if (t < best)
                best = t;
        }
        printf("{\"bench\":\"ann_crossover\",\"set\":\"%s\",\"n\":%zu,\"dim\":%zu,"
               "\"exact_1t_us\":%.1f,\"exact_2t_us\":%.1f,\"hnsw_us\":%.1f,\"hnsw_recall\":%.4f,"
               "\"hnsw_build_s\":%.2f}\n",
               ds.name, n, d, ex_t[0] * 1e6, ex_t[1] * 1e6, best * 1e6,
               (double)found / (double)(nq * K), tb);
        fflush(stdout);
        hnsw_ctx_free(c);
        hnsw_free(h);
        free(gt);
        free(gn);
    }
    dataset_close(&ds);
    return 0;
}

/* ------------------------------------------------------------ sq8 schemes */

/* Brute-force recall@K of approximate scores (higher = closer) against gt. */
static double brute_recall(const dataset *ds, const float *scores_all, size_t nq)
{
    size_t n = ds->base.rows;
    long found = 0;
    for (size_t i = 0; i < nq; i++) {
        const float *sc = scores_all + i * n;
        exact_hit top[K];
        int cnt = 0;
        for (size_t r = 0; r < n; r++) {
            if (cnt < K) {
                top[cnt].row = (uint32_t)r;
                top[cnt++].score = sc[r];
                continue;
            }
            int w = 0;
            for (int j = 1; j < K; j++)
                if (top[j].score < top[w].score)
                    w = j;
            if (sc[r] > top[w].score) {
                top[w].row = (uint32_t)r;
                top[w].score = sc[r];
            }
        }
        found += hits_found(ds, i, top, cnt);
    }
    return (double)found / (double)(nq * K);
}

static int cmd_sq8(const char *dir)
{
    dataset ds;
    dataset_open(&ds, dir);
    size_t n = ds.base.rows, d = ds.base.cols, nq = ds.q.rows < 200 ? ds.q.rows : 200;
    size_t dp = (d + 63) / 64 * 64;
    float *xn = xmalloc(n * dp * sizeof(float)), *qn = xmalloc(nq * dp * sizeof(float));
    memset(xn, 0, n * dp * sizeof(float));
    memset(qn, 0, nq * dp * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        memcpy(xn + r * dp, (const float *)ds.base.data + r * d, d * sizeof(float));
        normalise(xn + r * dp, d);
    }
    for (size_t i = 0; i < nq; i++) {
        memcpy(qn + i * dp, (const float *)ds.q.data + i * d, d * sizeof(float));
        normalise(qn + i * dp, d);
    }
    imgsim_error err = {0};
    sq8_quant sq;
    if (sq8_init(&sq, dp, &err) != IMGSIM_OK)
        die("sq8", &err);
    for (size_t r = 0; r < n; r++)
        sq8_observe(&sq, xn + r * dp, d);
    sq8_finish(&sq);
    uint8_t *codes = xmalloc(n * dp);
    int8_t *vcodes = xmalloc(n * dp);
    float *vscale = xmalloc(n * sizeof(float)), *dec = xmalloc(dp * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        sq8_encode(&sq, xn + r * dp, codes + r * dp);
        vscale[r] = sq8_vec_encode(xn + r * dp, dp, vcodes + r * dp);
    }
    float *sc = xmalloc(nq * n * sizeof(float));
    int8_t *w = xmalloc(dp);
    const char *names[4] = {"per-dim float-query", "per-dim int8-query", "per-vector float-query",
                            "per-vector int8-query"};
    for (int scheme = 0; scheme < 4; scheme++) {
        for (size_t i = 0; i < nq; i++) {
            const float *qi = qn + i * dp;
            float unit = 1, bias = 0;
            int8_t *qv = w;
            float qs = 1;
            if (scheme == 1)
                sq8_prepare_query(&sq, qi, w, &unit, &bias);
            if (scheme == 3)
                qs = sq8_vec_encode(qi, dp, qv);
            for (size_t r = 0; r < n; r++) {
                double s = 0;
                if (scheme == 0) {
                    sq8_decode(&sq, codes + r * dp, dec);
                    for (size_t j = 0; j < dp; j++)
                        s += (double)qi[j] * dec[j];
                } else if (scheme == 1) {
                    int64_t acc = 0;
                    for (size_t j = 0; j < dp; j++)
                        acc += (int64_t)codes[r * dp + j] * w[j];
                    s = bias + unit * (double)acc;
                } else if (scheme == 2) {
                    for (size_t j = 0; j < dp; j++)
                        s += (double)qi[j] * vscale[r] * vcodes[r * dp + j];
                } else {
                    int64_t acc = 0;
                    for (size_t j = 0; j < dp; j++)
                        acc += (int64_t)vcodes[r * dp + j] * qv[j];
                    s = (double)qs * vscale[r] * (double)acc;
                }
                sc[i * n + r] = (float)s;
            }
        }
        printf("{\"bench\":\"ann_sq8_scheme\",\"set\":\"%s\",\"scheme\":\"%s\","
               "\"brute_recall\":%.4f}\n",
               ds.name, names[scheme], brute_recall(&ds, sc, nq));
        fflush(stdout);
    }
    sq8_free(&sq);
    free(xn);
    free(qn);
    free(codes);
    free(vcodes);
    free(vscale);
    free(dec);
    free(sc);
    free(w);
    dataset_close(&ds);
    return 0;
}

/* ------------------------------------------------------------ fuzzing seeds */

static int cmd_seeds(const char *dir)
{
    mkdirs(dir);
    enum { N = 60, D = 8 };
    float x[N * D];
    rs = 99;
    for (int i = 0; i < N * D; i++)
        x[i] = rnd_gauss();
    const struct {
        const char *name;
        imgsim_metric metric;
        hnsw_storage storage;
        int pca, m;
    } kinds[] = {{"f32_cos", IMGSIM_METRIC_COSINE, HNSW_F32, 0, 4},
                 {"f32_l2", IMGSIM_METRIC_L2, HNSW_F32, 0, 3},
                 {"sq8_cos", IMGSIM_METRIC_COSINE, HNSW_SQ8, 0, 4},
                 {"sq8_pca", IMGSIM_METRIC_L2, HNSW_SQ8, 4, 2}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        hnsw_params p;
        hnsw_params_default(&p);
        p.metric = kinds[k].metric;
        p.storage = kinds[k].storage;
        p.pca_dims = kinds[k].pca;
        p.M = kinds[k].m;
        p.ef_construction = 20;
        hnsw *h;
        imgsim_error err = {0};
        uint32_t gone[] = {5, 17, 30};
        if (hnsw_build(&p, x, N, D, NULL, 1, &h, &err) != IMGSIM_OK ||
            hnsw_remove(h, gone, 3, &err) != IMGSIM_OK ||
            hnsw_save(h, path2(dir, kinds[k].name), &err) != IMGSIM_OK)
            die("seed", &err);
        hnsw_free(h);
    }
    return 0;
}

/* ------------------------------------------------------------ main */

static const char *opt(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ann prepare|run|crossover|sq8 ... (see bench/ann.c)\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "prepare") == 0) {
        const char *vec = opt(argc, argv, "--vectors", NULL), *out = opt(argc, argv, "--out", NULL);
        if (!vec || !out) {
            fprintf(stderr, "ann prepare: --vectors and --out are required\n");
            return 2;
        }
        npy x = npy_load(vec);
        size_t holdout = (size_t)atol(opt(argc, argv, "--holdout", "1000"));
        if (!atoi(opt(argc, argv, "--skip-split", "0")))
            prepare_split(&x, holdout, path2(out, "myntra"));
        size_t derive = (size_t)atol(opt(argc, argv, "--derive", "0"));
        noise_ratio = (float)atof(opt(argc, argv, "--noise", "1.0"));
        if (derive)
            prepare_derived(&x, derive, atoi(opt(argc, argv, "--dims", "256")),
                            path2(out, opt(argc, argv, "--name", "derived")));
        npy_close(&x);
        return 0;
    }
    if (strcmp(cmd, "seeds") == 0 && argc == 3)
        return cmd_seeds(argv[2]);
    const char *set = opt(argc, argv, "--set", NULL);
    if (!set) {
        fprintf(stderr, "ann %s: --set DIR is required\n", cmd);
        return 2;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(set, opt(argc, argv, "--ef", "10,20,40,80,120,200,400"),
                       atoi(opt(argc, argv, "--threads", "2")),
                       opt(argc, argv, "--configs", "f32,sq8"),
                       atoi(opt(argc, argv, "--repeat", "3")), opt(argc, argv, "--save", NULL),
                       opt(argc, argv, "--load", NULL));
    if (strcmp(cmd, "crossover") == 0)
        return cmd_crossover(set,
                             opt(argc, argv, "--sizes", "250,500,1000,2000,5000,10000,20000,43072"),
                             atoi(opt(argc, argv, "--repeat", "2")));
    if (strcmp(cmd, "sq8") == 0)
        return cmd_sq8(set);
    fprintf(stderr, "ann: unknown command %s\n", cmd);
    return 2;
}

/*
 * pca.c — fitting and applying the PCA projection of pca.h.
 */
#include "index/pca.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define PCA_BLOCK 512 /* rows per ssyrk update */

/* splitmix64: the next value of a seeded sequence. */
static uint64_t pca_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The rows to fit on: alive rows, a seeded random subset when there are too many. */
static uint32_t *pca_sample(size_t n, const uint8_t *alive, uint64_t seed, size_t *count)
{
    size_t na = 0;
    for (size_t r = 0; r < n; r++)
        na += !alive || alive[r];
    uint32_t *rows = malloc((na ? na : 1) * sizeof(uint32_t));
    if (!rows)
        return NULL;
    size_t j = 0;
    for (size_t r = 0; r < n; r++)
        if (!alive || alive[r])
            rows[j++] = (uint32_t)r;
    size_t want = na < PCA_MAX_SAMPLE ? na : PCA_MAX_SAMPLE;
    uint64_t s = seed;
    for (size_t i = 0; i < want && want < na; i++) { /* partial Fisher-Yates */
        size_t k = i + (size_t)(pca_rand(&s) % (na - i));
        uint32_t t = rows[i];
        rows[i] = rows[k];
        rows[k] = t;
    }
    *count = want;
    return rows;
}

/* Row r of vecs into out, L2-normalised when asked. */
static void pca_load_row(const float *vecs, uint32_t r, int dim, int normalise, float *out)
{
    const float *x = vecs + (size_t)r * (size_t)dim;
    double ss = 0;
    for (int i = 0; i < dim; i++)
        ss += (double)x[i] * x[i];
    float inv = normalise && ss > 0 ? (float)(1.0 / sqrt(ss)) : 1.0f;
    for (int i = 0; i < dim; i++)
        out[i] = x[i] * inv;
}

imgsim_status pca_fit(pca_model *m, const float *vecs, size_t n, int dim, const uint8_t *alive,
                      int out, int whiten, int normalise, uint64_t seed, imgsim_error *err)
{
    memset(m, 0, sizeof *m);
    if (dim < 1 || out < 1 || out > dim)
        return error_set(err, IMGSIM_E_ARG, "pca: cannot reduce %d dimensions to %d", dim, out);
    size_t ns = 0;
    uint32_t *rows = pca_sample(n, alive, seed, &ns);
    if (!rows)
        return error_set(err, IMGSIM_E_NOMEM, "pca: out of memory for %zu rows", n);
    if (ns <= (size_t)out) {
        free(rows);
        return error_set(err, IMGSIM_E_ARG, "pca: %zu rows are too few to fit %d components",
                         ns, out);
    }
    size_t d = (size_t)dim;
    double *acc = calloc(d, sizeof(double));
    float *cov = calloc(d * d, sizeof(float));
    float *blk = malloc(PCA_BLOCK * d * sizeof(float));
    float *eig = malloc(d * sizeof(float));
    m->dim = dim;
    m->out = out;
    m->whiten = whiten;
    m->owned = 1;
    m->mean = malloc(d * sizeof(float));
    m->w = malloc((size_t)out * d * sizeof(float));
    m->wm = malloc((size_t)out * sizeof(float));
    m->eig = malloc((size_t)out * sizeof(float));
    imgsim_status st = IMGSIM_OK;
    if (!acc || !cov || !blk || !eig || !m->mean || !m->w || !m->wm || !m->eig) {
        st = error_set(err, IMGSIM_E_NOMEM, "pca: out of memory for a %d x %d covariance", dim,
                       dim);
        goto done;
    }
    /* the mean */
    for (size_t i = 0; i < ns; i++) {
        pca_load_row(vecs, rows[i], dim, normalise, blk);
        for (size_t j = 0; j < d; j++)
            acc[j] += blk[j];
    }
    for (size_t j = 0; j < d; j++)
        m->mean[j] = (float)(acc[j] / (double)ns);
    /* the covariance (upper triangle, row-major) */
    for (size_t i0 = 0; i0 < ns; i0 += PCA_BLOCK) {
        size_t nb = ns - i0 < PCA_BLOCK ? ns - i0 : PCA_BLOCK;
        for (size_t i = 0; i < nb; i++) {
            float *x = blk + i * d;
            pca_load_row(vecs, rows[i0 + i], dim, normalise, x);
            for (size_t j = 0; j < d; j++)
                x[j] -= m->mean[j];
        }
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, (blasint)nb,
                    (float)(1.0 / (double)(ns - 1)), blk, dim, 1.0f, cov, dim);
    }
    /* eigenpairs, ascending; eigenvectors in the columns of cov */
    lapack_int info = LAPACKE_ssyevd(LAPACK_ROW_MAJOR, 'V', 'U', dim, cov, dim, eig);
    if (info != 0) {
        st = error_set(err, IMGSIM_E_INTERNAL, "pca: LAPACKE_ssyevd failed (info %d)",
                       (int)info);
        goto done;
    }
    float floor_eig = eig[d - 1] > 0 ? eig[d - 1] * 1e-6f : 1e-12f;
    for (int k = 0; k < out; k++) {
        size_t col = d - 1 - (size_t)k;
        float e = eig[col] > floor_eig ? eig[col] : floor_eig;
        m->eig[k] = eig[col];
        float scale = whiten ? 1.0f / sqrtf(e) : 1.0f;
        for (size_t j = 0; j < d; j++)
            m->w[(size_t)k * d + j] = cov[j * d + col] * scale;
    }
    cblas_sgemv(CblasRowMajor, CblasNoTrans, out, dim, 1.0f, m->w, dim, m->mean, 1, 0.0f, m->wm,
                1);
done:
    free(rows);
    free(acc);
    free(cov);
    free(blk);
    free(eig);
    if (st != IMGSIM_OK)
        pca_free(m);
    return st;
}

void pca_project(const pca_model *m, const float *x, float *y)
{
    memcpy(y, m->wm, (size_t)m->out * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, m->out, m->dim, 1.0f, m->w, m->dim, x, 1, -1.0f, y,
                1);
}

void pca_free(pca_model *m)
{
    if (m->owned) {
        free(m->mean);
        free(m->w);
        free(m->wm);
        free(m->eig);
    }
    memset(m, 0, sizeof *m);
}

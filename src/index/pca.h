/*
 * pca.h — principal component reduction of vectors before they enter the HNSW index
 * (hnsw_params.pca_dims), optionally whitened.
 *
 * Fitting: the mean and the covariance of (a seeded sample of at most PCA_MAX_SAMPLE of) the
 * rows, the covariance accumulated with OpenBLAS ssyrk over blocks of centred rows, then
 * LAPACKE ssyevd (all eigenpairs of the symmetric matrix). The `out` eigenvectors of the
 * largest eigenvalues form the projection W (out x dim); with whitening each row of W is
 * divided by the square root of its eigenvalue, so every component has unit variance.
 * Projection: y = W x - W mean (one sgemv; W mean is kept).
 *
 * Cost: dim^2 floats for the covariance while fitting (2304-d: 21 MB), out x dim floats
 * kept.
 */
#ifndef IMGSIM_INDEX_PCA_H
#define IMGSIM_INDEX_PCA_H

#include <stddef.h>
#include <stdint.h>

#include "imgsim.h"

#define PCA_MAX_SAMPLE 65536

typedef struct pca_model {
    int dim, out, whiten;
    float *mean; /* dim */
    float *w;    /* out x dim, row-major */
    float *wm;   /* out: W mean */
    float *eig;  /* out eigenvalues, largest first (before whitening) */
    int owned;   /* arrays allocated here (not pointing into a mapped file) */
} pca_model;

/* Fit on the rows r < n of `vecs` (n x dim) with alive[r] != 0 (alive NULL: all);
 * `normalise`: L2-normalise each row first (cosine). Needs more than `out` rows and
 * 1 <= out <= dim (E_ARG otherwise); E_INTERNAL if LAPACK fails. */
imgsim_status pca_fit(pca_model *m, const float *vecs, size_t n, int dim, const uint8_t *alive,
                      int out, int whiten, int normalise, uint64_t seed, imgsim_error *err);

/* y (m->out floats) = projection of x (m->dim floats). */
void pca_project(const pca_model *m, const float *x, float *y);

void pca_free(pca_model *m);

#endif

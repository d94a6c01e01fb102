/*
 * score.h — ranking keys of a block of queries against a range of rows (the inner loop of
 * the exact search): one OpenBLAS product for cosine and L2, a vectorised loop for L1.
 *
 * Keys are "higher is closer" (see exact.h). Every key of a pair is computed by one formula
 * that is symmetric in its two vectors, so key(a, b) == key(b, a) bit for bit and a pair
 * scored from either side ranks the same way:
 *   cosine  dot / (|a| |b|)          (0 when a norm is 0)
 *   l2      -(|a|^2 + |b|^2 - 2 dot) (clamped to <= 0)
 *   l1      -sum |a_i - b_i|         (lanes summed in a fixed order, then the tail)
 */
#ifndef IMGSIM_INDEX_SCORE_H
#define IMGSIM_INDEX_SCORE_H

#include <stddef.h>

#include "index/exact.h"

/* Cosine key from a dot product and the two norms. */
static inline float score_key_cos(float dot, float na, float nb)
{
    float den = na * nb;
    return den > 0 ? dot / den : 0.0f;
}

/* L2 key (minus the squared distance) from a dot product and the two norms. */
static inline float score_key_l2(float dot, float na, float nb)
{
    float d2 = na * na + nb * nb - 2.0f * dot;
    return d2 > 0 ? -d2 : 0.0f;
}

/* Manhattan distance of two vectors, with the same arithmetic as score_block. */
float score_l1_pair(const float *a, const float *b, int dim);

/* keys[i * ldk + j] = key of query i (vector q + i * dim, norm qn[i]; qn unused for L1)
 * against set row r0 + j, for i < nq, j < nr. Single-threaded; alive is not looked at. */
void score_block(const exact_set *s, imgsim_metric m, const float *q, const float *qn, size_t nq,
                 size_t r0, size_t nr, float *keys, size_t ldk);

/* Make OpenBLAS run on the calling thread only: the index does its own threading and calls
 * sgemm from several threads at once. Cheap; called by every entry point that uses BLAS. */
void score_blas_single(void);

#endif

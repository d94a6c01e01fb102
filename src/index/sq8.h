/*
 * sq8.h — int8 scalar quantisation of vectors, as stored by the HNSW index (HNSW_SQ8).
 *
 * Per-dimension ranges: each dimension i gets a lower bound lo[i] and a step; a value x is
 * stored as the byte c = round((x - lo) / step) clipped to [0, 255], and read back as
 * lo + step * c. The ranges are fitted on the vectors given to the build (min/max of each
 * dimension); later vectors outside them are clipped. A query dot product is then
 *     q . x  ~  sum q_i lo_i  +  sum (q_i step_i) c_i
 * whose second sum runs on bytes (hnsw_dist.c: uint8 codes x int8 query weights, VNNI).
 *
 * The per-vector alternative (one scale per vector, symmetric int8) is here too, only so the
 * benchmark can compare the two on real embeddings (docs/ANN.md); the index uses the
 * per-dimension ranges, which measured better.
 *
 * Memory: 2 * dim_pad floats for the quantiser, dim_pad bytes per vector.
 */
#ifndef IMGSIM_INDEX_SQ8_H
#define IMGSIM_INDEX_SQ8_H

#include <stddef.h>
#include <stdint.h>

#include "imgsim.h"

typedef struct sq8_quant {
    size_t dim_pad; /* dimensions (padding dimensions have lo = step = 0) */
    float *lo;      /* dim_pad lower bounds */
    float *step;    /* dim_pad steps (0 for a constant dimension) */
    int owned;      /* lo/step allocated here (not pointing into a mapped file) */
} sq8_quant;

/* Start fitting: lo = +inf, hi (kept in step) = -inf. */
imgsim_status sq8_init(sq8_quant *s, size_t dim_pad, imgsim_error *err);
/* Widen the ranges to cover x (dim floats, dim <= dim_pad). */
void sq8_observe(sq8_quant *s, const float *x, size_t dim);
/* Finish fitting: steps from the ranges (dimensions never observed: lo = step = 0). */
void sq8_finish(sq8_quant *s);
void sq8_free(sq8_quant *s);

/* code[0..dim_pad) from x (x has dim_pad floats, zero-padded). */
void sq8_encode(const sq8_quant *s, const float *x, uint8_t *code);
/* x[0..dim_pad) from code. */
void sq8_decode(const sq8_quant *s, const uint8_t *code, float *x);
/* Query side: w = q * step quantised to int8 (*unit = value of one step of w), and
 * *bias = q . lo, so that q . decode(c) ~ *bias + *unit * sum w_i c_i. */
void sq8_prepare_query(const sq8_quant *s, const float *q, int8_t *w, float *unit, float *bias);

/* Per-vector scheme (compared against in bench/ann.c): code = round(x / scale),
 * scale = max|x| / 127. */
float sq8_vec_encode(const float *x, size_t dim, int8_t *code);

#endif

/*
 * exact.h — brute-force (exact) nearest-neighbour search over a dense float32 matrix.
 *
 * The matrix is row-major, n rows of `dim` floats, usually the memory-mapped vector file of a
 * collection. Cosine and L2 go through OpenBLAS (sgemm for blocks of queries, so many queries
 * at once cost one matrix product); L1 is a vectorised loop. Nothing here allocates per row
 * of the collection except the score buffers of one block.
 *
 * Two score conventions:
 *   - hits (exact_hit.score) carry the user-facing value: cosine similarity, Euclidean
 *     distance (square root taken), Manhattan distance;
 *   - "keys" (exact_scores) are ranking keys where higher is always closer:
 *     cosine similarity, minus squared Euclidean distance, minus Manhattan distance.
 * Ties are broken by the lower row number, so every result is deterministic.
 */
#ifndef IMGSIM_INDEX_EXACT_H
#define IMGSIM_INDEX_EXACT_H

#include <stddef.h>
#include <stdint.h>

#include "imgsim.h"

#define EXACT_NO_ROW UINT32_MAX

typedef struct exact_hit {
    uint32_t row;
    float score;
} exact_hit;

/* The searchable set. `norms` (n L2 norms, from exact_norms) is required for cosine and L2.
 * `alive` (n bytes, may be NULL) marks rows that exist: a row with alive[r] == 0 is never
 * returned and never counted. */
typedef struct exact_set {
    const float *vecs;
    size_t n;
    int dim;
    const float *norms;
    const uint8_t *alive;
} exact_set;

/* norms[i] = L2 norm of row i. */
void exact_norms(const float *vecs, size_t n, int dim, float *norms);

/* Ranking key of one vector pair (see above), and its conversion to the user-facing score. */
float exact_key(imgsim_metric m, const float *a, float na, const float *b, float nb, int dim);
float exact_key_to_score(imgsim_metric m, float key);

/* Top-k of `nq` query vectors (nq x dim, row-major) against the set.
 *   filter:  n bytes or NULL; when given only rows with filter[r] != 0 are candidates;
 *   exclude: nq rows or NULL; exclude[i] (unless EXACT_NO_ROW) is never returned for query i
 *            (leave-one-out / "similar to this item");
 *   out:     nq * k hits, best first; nout[i] = hits found for query i (< k when fewer
 *            candidates exist).
 * Queries are processed in blocks with one sgemm per block; `threads` (0 = all cores) is the
 * parallelism used for everything: each thread runs its own blocks, sgemm included, with
 * OpenBLAS set to one thread (process-wide, openblas_set_num_threads(1); see exact.c). */
imgsim_status exact_search(const exact_set *s, imgsim_metric m, const float *q, size_t nq, int k,
                           const uint8_t *filter, const uint32_t *exclude, int threads,
                           exact_hit *out, int *nout, imgsim_error *err);

/* Same, but the queries are rows of the set itself; each excludes itself. */
imgsim_status exact_search_rows(const exact_set *s, imgsim_metric m, const uint32_t *rows,
                                size_t nq, int k, const uint8_t *filter, int threads,
                                exact_hit *out, int *nout, imgsim_error *err);

/* The neighbour table: for every alive row r, its k closest other alive rows
 * (out + r * k, nout[r]; dead rows get nout[r] = 0). Blocked sgemm over the whole set,
 * exploiting symmetry where it pays; both cores. */
imgsim_status exact_all_pairs(const exact_set *s, imgsim_metric m, int k, int threads,
                              exact_hit *out, int *nout, imgsim_error *err);

/* Incremental help for the neighbour table after rows were added: for the `nq` new rows
 * `rows` it computes
 *   fwd:  their own top-k over the whole set (nq * k, fwd_n[i]), excluding themselves;
 *   back: for every alive row r of the set, its top-k among the new rows only
 *         (n * k, back_n[r]; a new row never lists itself).
 * The caller merges `back` into the existing lists. `rows` must be distinct (E_ARG if not). */
imgsim_status exact_cross(const exact_set *s, imgsim_metric m, const uint32_t *rows, size_t nq,
                          int k, int threads, exact_hit *fwd, int *fwd_n, exact_hit *back,
                          int *back_n, imgsim_error *err);

/* Ranking keys of `nq` query rows (given as row numbers of the set) against every row:
 * keys is nq x n. Dead rows get -INFINITY. Used by evaluation. */
imgsim_status exact_keys_rows(const exact_set *s, imgsim_metric m, const uint32_t *rows,
                              size_t nq, float *keys, imgsim_error *err);

#endif

/*
 * hnsw.h — approximate nearest-neighbour search: a Hierarchical Navigable Small World graph
 * (Malkov & Yashunin, 2016) over imgsim's vector rows, with filtered search, deletes,
 * compressed vectors (int8, optional PCA) and a memory-mapped file.
 *
 * The index is split by operation (like pgvector): hnsw_build.c (params, new/free, the
 * multi-threaded build), hnsw_insert.c (adding one node), hnsw_search.c (k-NN, filters,
 * re-ranking), hnsw_delete.c (removing nodes and repairing their neighbours), hnsw_io.c
 * (save/open), with hnsw_internal.h for the layout they share; sq8.[ch] and pca.[ch] hold
 * the compression.
 *
 * Labels are imgsim vector rows (uint32; a row is in the index at most once). Results are
 * exact_hit with the same conventions as exact.h — cosine similarity or Euclidean distance,
 * best first, ties by lower row — so the query layer can use either. Metrics: cosine and L2;
 * L1 is refused with IMGSIM_E_UNSUPPORTED (the caller falls back to exact search).
 *
 * What is stored per vector ("codes"): the vector itself (float32), or one byte per
 * dimension (sq8), possibly after a PCA reduction. For cosine the vector is L2-normalised
 * first. When the caller passes the full-precision rows to hnsw_search (in imgsim: the
 * memory-mapped vector file), the shortlist found on the codes is re-ranked on them and the
 * scores are exact; without them the scores come from the codes.
 *
 * Threads: any number of hnsw_search calls may run at once on an index nobody modifies, each
 * with its own hnsw_ctx (or none). hnsw_insert / hnsw_remove / hnsw_save need the caller's
 * exclusive access. hnsw_build uses `threads` threads itself.
 */
#ifndef IMGSIM_INDEX_HNSW_H
#define IMGSIM_INDEX_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "imgsim.h"
#include "index/exact.h"

/* How vectors are kept inside the index. */
typedef enum hnsw_storage {
    HNSW_F32 = 0, /* float32 per dimension: best recall, 4 bytes per dimension */
    HNSW_SQ8 = 1  /* int8 scalar quantisation: 1 byte per dimension; re-rank for exact scores */
} hnsw_storage;

typedef struct hnsw_params {
    imgsim_metric metric; /* IMGSIM_METRIC_COSINE (default) or IMGSIM_METRIC_L2 */
    int M;                /* links per node on levels >= 1; level 0 keeps 2 * M. Default 16 */
    int ef_construction;  /* candidate list while inserting. Default 200 */
    int ef_search;        /* candidate list of a search when the call passes ef = 0. Default 64 */
    hnsw_storage storage; /* default HNSW_F32 */
    int pca_dims;         /* > 0: project onto the first pca_dims principal components before
                             storing (fitted at build on the rows given); 0 = keep every dim */
    int pca_whiten;       /* with pca_dims: scale each component to unit variance */
    uint64_t seed;        /* level draws (and PCA sampling) are deterministic given the seed */
} hnsw_params;

/* The defaults above. */
void hnsw_params_default(hnsw_params *p);

typedef struct hnsw hnsw;         /* the index */
typedef struct hnsw_ctx hnsw_ctx; /* one searching thread's scratch (visited set, heaps) */

/* Build an index over rows [0, n) of `vecs` (n x dim floats, row-major, raw as stored by the
 * collection), inserting the rows with alive[r] != 0 (alive NULL: all). Compression that
 * needs fitting (PCA, the sq8 ranges) is fitted on those rows, so PCA needs at least
 * pca_dims + 1 of them and sq8 at least one (with HNSW_F32 and no PCA, n may be 0: an empty
 * index to insert into; later inserts are clipped to the fitted sq8 ranges).
 * `threads`: 0 = all cores. Errors: E_UNSUPPORTED for L1, E_ARG for bad parameters,
 * E_NOMEM. */
imgsim_status hnsw_build(const hnsw_params *p, const float *vecs, size_t n, int dim,
                         const uint8_t *alive, int threads, hnsw **out, imgsim_error *err);

/* Add row `row` with vector `vec` (dim floats, raw). E_ARG if the row is already in the
 * index. Reuses the slot of a removed node when there is one. */
imgsim_status hnsw_insert(hnsw *h, uint32_t row, const float *vec, imgsim_error *err);

/* Remove `count` rows: their slots are freed for reuse and every node that linked to them is
 * relinked from its remaining and its lost neighbours' links. One pass over the graph per
 * call, so remove many rows in one call. E_NOTFOUND (nothing changed) if a row is absent. */
imgsim_status hnsw_remove(hnsw *h, const uint32_t *rows, size_t count, imgsim_error *err);

/* Non-zero when `row` is in the index. */
int hnsw_contains(const hnsw *h, uint32_t row);

/* Scratch for one searching thread; grows by itself when the index grows. Optional: a
 * search without one allocates its own (costs a visited array of the index's size). */
imgsim_status hnsw_ctx_new(hnsw_ctx **out, imgsim_error *err);
void hnsw_ctx_free(hnsw_ctx *c);

/* The k nearest rows to `q` (dim floats, raw; normalised here for cosine).
 *   ef:      candidate list size (0 = params.ef_search; raised to k when smaller);
 *   filter:  NULL, or one byte per row covering every row in the index (row_limit bytes
 *            at least): rows with filter[r] == 0 are never returned (they are still walked
 *            through). When few rows pass (estimated by sampling), the passing rows are
 *            scanned exactly instead, and a walk that ends with fewer than k hits while k
 *            rows pass falls back to the exact scan, so k hits come back whenever k rows
 *            qualify;
 *   exclude: a row never returned (query by item), or EXACT_NO_ROW;
 *   full:    NULL, or the full-precision rows (full->vecs, n, dim, norms; full->alive is
 *            honoured like filter): the closest min(ef, max(3k, 32)) candidates (all ef
 *            with PCA) are re-ranked on them and scores are exact (the keys of exact.h, up to float
 *            rounding). Rows of the index at or past full->n are skipped. Recommended with
 *            HNSW_SQ8 or PCA;
 *   out:     k hits, best first; *nout = hits found (< k only when fewer rows qualify).
 * Errors: E_ARG (k < 1, NULL q, full->dim != dim). */
imgsim_status hnsw_search(const hnsw *h, hnsw_ctx *ctx, const float *q, int k, int ef,
                          const uint8_t *filter, uint32_t exclude, const exact_set *full,
                          exact_hit *out, int *nout, imgsim_error *err);

/* Write the index to `path` atomically (path.tmp, fsync, rename, fsync of the directory). */
imgsim_status hnsw_save(const hnsw *h, const char *path, imgsim_error *err);

/* Map an index file (read-only, shared pages; a later insert/remove copies what it changes
 * into private memory). Every header field, size, offset and neighbour id is checked, and
 * a checksum covers the file: a truncated or damaged file gives IMGSIM_E_MODEL (the caller
 * rebuilds from the vectors), a missing one IMGSIM_E_NOTFOUND, an index written by another
 * version IMGSIM_E_UNSUPPORTED. */
imgsim_status hnsw_open(const char *path, hnsw **out, imgsim_error *err);

typedef struct hnsw_info {
    hnsw_params params;
    int dim;             /* input dimension */
    int code_dim;        /* dimension searched on (pca_dims, or dim) */
    size_t count;        /* rows in the index */
    size_t slots;        /* node slots allocated (count + free) */
    uint32_t row_limit;  /* > every row in the index (1 + the largest row inserted, or
                            present at open): size a filter by it */
    int max_level;       /* top level of the graph (-1 when empty) */
    size_t bytes_graph;  /* neighbour lists and node headers */
    size_t bytes_codes;  /* stored vectors / codes */
    size_t bytes_other;  /* quantiser, PCA matrix, row map */
    int mapped;          /* 1 when opened from a file and not modified since */
} hnsw_info;

void hnsw_get_info(const hnsw *h, hnsw_info *info);

/* Free the index (and unmap its file). NULL is fine. */
void hnsw_free(hnsw *h);

#endif

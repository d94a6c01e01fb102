/*
 * hnsw_internal.h — the in-memory (and on-disk) layout of the HNSW index, shared by the
 * hnsw_*.c files; nothing outside src/index/hnsw_* includes it.
 *
 * Nodes live in slots. Each slot has one fixed-size "level-0 block", all blocks in one array
 * (like hnswlib's level-0 memory), so a search that reaches a node finds its vector code and
 * its level-0 links in the same few cache lines:
 *
 *   [0, code_bytes)   the code: cdim_pad floats (HNSW_F32) or cdim_pad bytes (HNSW_SQ8),
 *                     zero-padded so kernels never handle a tail
 *   aux               float: sq8 with L2: |decoded x|^2; otherwise 0
 *   row               the label (imgsim vector row)
 *   upper             first upper-link block of the node (levels 1..level), see below
 *   level, flags      top level of the node; HNSW_FREE when the slot is unused
 *   nlinks, links[M0] level-0 neighbours (slot numbers)
 *
 * padded to a multiple of 64 bytes. Nodes with level >= 1 own `level` consecutive blocks
 * of (1 + M) uint32 (count, then links) in the `upper` pool; block l - 1 holds level l.
 * Freed runs of upper blocks are kept on per-length free lists and reused.
 *
 * Distances inside the index are "smaller is closer": 1 - dot for cosine on normalised
 * vectors (HNSW_SPACE_IP), squared Euclidean otherwise (HNSW_SPACE_L2, also used for
 * cosine after PCA, where it ranks normalised vectors like cosine does).
 *
 * The arrays (blocks, upper, the quantiser and PCA parameters) may point into a mapped
 * file (MAP_PRIVATE: pages the index writes to are copied by the kernel); whenever one must
 * grow it is copied into heap memory (owned_* flags).
 */
#ifndef IMGSIM_INDEX_HNSW_INTERNAL_H
#define IMGSIM_INDEX_HNSW_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "index/hnsw.h"
#include "index/pca.h"
#include "index/sq8.h"

#define HNSW_NONE UINT32_MAX   /* no slot / no node */
#define HNSW_MAX_LEVEL 15      /* levels are capped (with M >= 2, P(level > 15) < 1e-4) */
#define HNSW_MAX_M 128
#define HNSW_FREE 1u           /* node flag: the slot is unused */

enum { HNSW_SPACE_IP = 0, HNSW_SPACE_L2 = 1 };

/* The header of a level-0 block (placed after the code). */
typedef struct hnsw_node {
    float aux;
    uint32_t row;
    uint32_t upper;
    uint16_t level;
    uint16_t flags;
    uint32_t nlinks;
    uint32_t links[]; /* M0 entries */
} hnsw_node;

/* Distance kernels chosen for this CPU (hnsw_dist.c). n is a multiple of 16 (floats) or 64
 * (bytes). */
typedef struct hnsw_kernels {
    float (*dot_f32)(const float *a, const float *b, size_t n);
    float (*l2_f32)(const float *a, const float *b, size_t n);
    int32_t (*dot_u8s8)(const uint8_t *a, const int8_t *b, size_t n);
} hnsw_kernels;

const hnsw_kernels *hnsw_kernels_get(void);
/* Every kernel set this CPU runs (for the tests); returns how many were written. */
int hnsw_kernels_variants(hnsw_kernels *out, const char **names, int max);

/* Runs of freed upper blocks of one length. */
typedef struct hnsw_runs {
    uint32_t *v;
    size_t n, cap;
} hnsw_runs;

struct hnsw {
    hnsw_params p;
    int dim;              /* input dimension */
    int cdim;             /* searched dimension (after PCA) */
    size_t cdim_pad;      /* cdim rounded up for the kernels */
    int space;            /* HNSW_SPACE_* */
    int M, M0;
    double level_mult;    /* 1 / ln(M) */
    size_t code_bytes;    /* bytes of a code */
    size_t node_off;      /* offset of the hnsw_node header in a block */
    size_t stride;        /* bytes per level-0 block */
    const hnsw_kernels *k;

    uint8_t *blocks;      /* cap_slots blocks */
    size_t nslots, cap_slots;
    uint32_t *upper;      /* cap_upper blocks of (1 + M) uint32 */
    size_t nupper, cap_upper;
    hnsw_runs upper_free[HNSW_MAX_LEVEL + 1]; /* [len]: starts of freed runs of len blocks */
    uint32_t *free_slots; /* slots to reuse (a stack) */
    size_t nfree, cap_free;
    uint32_t *row_node;   /* row -> slot, HNSW_NONE when absent; cap_rows entries */
    size_t cap_rows;
    uint32_t row_limit;   /* 1 + largest row ever inserted */
    size_t count;         /* nodes in use */
    uint32_t entry;       /* entry point slot, HNSW_NONE when empty */
    int max_level;        /* -1 when empty */

    sq8_quant sq;         /* HNSW_SQ8 */
    pca_model pca;        /* pca_dims > 0 */

    /* the mapped file, and which arrays still point into it */
    void *map;
    size_t map_len;
    int owned_blocks, owned_upper;
    int modified;         /* changed since open */

    /* scratch of hnsw_insert / hnsw_remove (callers have exclusive access then) */
    struct hnsw_ctx *wctx;
    float *wvec;

    /* multi-threaded build only: a lock per slot and one for the entry point */
    atomic_flag *locks;
    atomic_flag entry_lock;
};

/* ---- layout accessors */
static inline uint8_t *hnsw_code(const hnsw *h, uint32_t slot)
{
    return h->blocks + (size_t)slot * h->stride;
}

static inline hnsw_node *hnsw_node_at(const hnsw *h, uint32_t slot)
{
    return (hnsw_node *)(h->blocks + (size_t)slot * h->stride + h->node_off);
}

/* Links of `slot` at `level` (count at [0], ids after it) for level >= 1. */
static inline uint32_t *hnsw_upper_links(const hnsw *h, const hnsw_node *nd, int level)
{
    return h->upper + ((size_t)nd->upper + (size_t)(level - 1)) * (size_t)(1 + h->M);
}

/* Count pointer and ids of `slot`'s links at `level` (any level). */
static inline uint32_t *hnsw_links(const hnsw *h, uint32_t slot, int level, uint32_t **ids)
{
    hnsw_node *nd = hnsw_node_at(h, slot);
    if (level == 0) {
        *ids = nd->links;
        return &nd->nlinks;
    }
    uint32_t *b = hnsw_upper_links(h, nd, level);
    *ids = b + 1;
    return b;
}

static inline int hnsw_max_links(const hnsw *h, int level) { return level == 0 ? h->M0 : h->M; }

/* ---- spinlocks of the multi-threaded build (no-ops when locks is NULL) */
static inline void hnsw_lock(const hnsw *h, uint32_t slot)
{
    if (h->locks)
        while (atomic_flag_test_and_set_explicit(&h->locks[slot], memory_order_acquire))
            ;
}

static inline void hnsw_unlock(const hnsw *h, uint32_t slot)
{
    if (h->locks)
        atomic_flag_clear_explicit(&h->locks[slot], memory_order_release);
}

/* ---- a prepared query: the vector in the searched space, ready for the kernels */
typedef struct hnsw_query {
    float *f;      /* cdim_pad floats: transformed (normalised, projected) query */
    int8_t *s8;    /* sq8: the query weighted by the quantiser steps, as int8 */
    float s8_step; /* sq8: value of one unit of s8 */
    float bias;    /* sq8: dot of the query with the quantiser's lower bounds */
    float qq;      /* sq8 with L2: |query|^2 in the searched space */
    uint32_t slot; /* the slot it was made from (hnsw_query_from_slot), else HNSW_NONE */
} hnsw_query;

/* Buffers of one query (cdim_pad floats + cdim_pad bytes). */
imgsim_status hnsw_query_alloc(const hnsw *h, hnsw_query *q, imgsim_error *err);
void hnsw_query_release(hnsw_query *q);
/* Transform a raw input vector (dim floats) into the searched space: normalise (cosine),
 * project (PCA). out: cdim_pad floats, zero-padded. */
void hnsw_transform(const hnsw *h, const float *vec, float *out);
/* Fill q from a vector already in the searched space (q->f is written from `t`). */
void hnsw_query_prepare(const hnsw *h, const float *t, hnsw_query *q);
/* Fill q from the stored code of a slot (node-to-node distances while building). */
void hnsw_query_from_slot(const hnsw *h, uint32_t slot, hnsw_query *q);
/* Write the code (and aux) of a vector in the searched space into `slot`. */
void hnsw_encode(const hnsw *h, const float *t, uint32_t slot);

/* Distance between two stored nodes: direct for float codes, otherwise through `scratch`
 * prepared from slot a (kept while a does not change). */
float hnsw_dist_slots(const hnsw *h, hnsw_query *scratch, uint32_t a, uint32_t b);

/* Distance from a prepared query to a slot's code. */
static inline float hnsw_dist(const hnsw *h, const hnsw_query *q, uint32_t slot)
{
    const uint8_t *c = hnsw_code(h, slot);
    if (h->p.storage == HNSW_F32) {
        if (h->space == HNSW_SPACE_IP)
            return 1.0f - h->k->dot_f32(q->f, (const float *)c, h->cdim_pad);
        return h->k->l2_f32(q->f, (const float *)c, h->cdim_pad);
    }
    float dot = q->bias + q->s8_step * (float)h->k->dot_u8s8(c, q->s8, h->cdim_pad);
    if (h->space == HNSW_SPACE_IP)
        return 1.0f - dot;
    float d = q->qq - 2.0f * dot + hnsw_node_at(h, slot)->aux;
    return d > 0 ? d : 0;
}

/* ---- search scratch (hnsw_search.c) */
typedef struct hnsw_cand {
    float d;
    uint32_t id;
} hnsw_cand;

/* A binary heap of candidates: max-heap (worst on top) or min-heap (best on top). */
typedef struct hnsw_heap {
    hnsw_cand *v;
    size_t n, cap;
} hnsw_heap;

struct hnsw_ctx {
    uint32_t *visited;   /* tag per slot */
    size_t nvisited;
    uint32_t tag;
    hnsw_heap cand, res; /* candidates (min), results (max) */
    hnsw_cand *sel;      /* scratch for neighbour selection */
    size_t cap_sel;
    hnsw_query q;        /* the query (or the node being inserted) */
    hnsw_query qa, qb;   /* node-to-node distances (hnsw_dist_slots scratch) */
    size_t q_cdim;       /* cdim_pad the query buffers were sized for (0: none yet) */
};

/* Make ctx ready for an index of h's size (visited array, query buffers); new tag. */
imgsim_status hnsw_ctx_prepare(hnsw_ctx *c, const hnsw *h, imgsim_error *err);
/* Start a new visit epoch (clears the array only when the tag wraps). */
void hnsw_visit_reset(hnsw_ctx *c);
static inline int hnsw_visit(hnsw_ctx *c, uint32_t slot)
{
    if (c->visited[slot] == c->tag)
        return 1;
    c->visited[slot] = c->tag;
    return 0;
}

/* Grow a heap by at least one entry (E_NOMEM on failure). */
imgsim_status hnsw_heap_grow(hnsw_heap *hp);

/* Min-heap (closest on top): push and pop. */
static inline imgsim_status hnsw_heap_push_min(hnsw_heap *hp, float d, uint32_t id)
{
    if (hp->n == hp->cap && hnsw_heap_grow(hp) != IMGSIM_OK)
        return IMGSIM_E_NOMEM;
    size_t i = hp->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (hp->v[p].d <= d)
            break;
        hp->v[i] = hp->v[p];
        i = p;
    }
    hp->v[i].d = d;
    hp->v[i].id = id;
    return IMGSIM_OK;
}

static inline void hnsw_heap_pop_min(hnsw_heap *hp)
{
    hnsw_cand x = hp->v[--hp->n];
    size_t n = hp->n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && hp->v[c + 1].d < hp->v[c].d)
            c++;
        if (x.d <= hp->v[c].d)
            break;
        hp->v[i] = hp->v[c];
        i = c;
    }
    if (n)
        hp->v[i] = x;
}

/* Max-heap (farthest on top): push and pop. */
static inline imgsim_status hnsw_heap_push_max(hnsw_heap *hp, float d, uint32_t id)
{
    if (hp->n == hp->cap && hnsw_heap_grow(hp) != IMGSIM_OK)
        return IMGSIM_E_NOMEM;
    size_t i = hp->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (hp->v[p].d >= d)
            break;
        hp->v[i] = hp->v[p];
        i = p;
    }
    hp->v[i].d = d;
    hp->v[i].id = id;
    return IMGSIM_OK;
}

static inline void hnsw_heap_pop_max(hnsw_heap *hp)
{
    hnsw_cand x = hp->v[--hp->n];
    size_t n = hp->n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && hp->v[c + 1].d > hp->v[c].d)
            c++;
        if (x.d >= hp->v[c].d)
            break;
        hp->v[i] = hp->v[c];
        i = c;
    }
    if (n)
        hp->v[i] = x;
}

/* Greedy descent (ef = 1) from `ep` on level `top` down to level `stop` + 1; returns the
 * slot to start level `stop` from and its distance in *d_out. Takes locks when building. */
uint32_t hnsw_descend(const hnsw *h, const hnsw_query *q, uint32_t ep, int top, int stop,
                      float *d_out);

/* Best-first search of one level from `ep`, keeping the `ef` closest in c->res (max-heap).
 * With accept != NULL only slots accepted by it enter the results (all are walked).
 * Takes locks when building. */
typedef int (*hnsw_accept_fn)(const hnsw *h, uint32_t slot, const void *arg);
imgsim_status hnsw_search_level(const hnsw *h, hnsw_ctx *c, const hnsw_query *q, uint32_t ep,
                                float ep_d, int level, int ef, hnsw_accept_fn accept,
                                const void *arg);

/* ---- hnsw_insert.c */
/* Level of a new node for `row` (deterministic in seed and row). */
int hnsw_draw_level(const hnsw *h, uint32_t row);
/* Link the node in `slot` (code written, level set, links empty) into the graph. */
imgsim_status hnsw_link_node(hnsw *h, hnsw_ctx *c, uint32_t slot, imgsim_error *err);
/* Keep at most `max` of the n candidates (sorted best first, distances to the base node)
 * by the HNSW heuristic: a candidate closer to an already kept one than to the base is
 * dropped; returns the count kept (in place). Uses c->qb. */
int hnsw_select(const hnsw *h, hnsw_ctx *c, hnsw_cand *cand, int n, int max);

/* ---- hnsw_build.c: memory */
/* Room for `slots` slots and rows below `rows` (copies mapped arrays into heap memory). */
imgsim_status hnsw_reserve(hnsw *h, size_t slots, size_t rows, imgsim_error *err);
/* Room in the row map for rows below `rows` (leaves the blocks alone). */
imgsim_status hnsw_reserve_rows(hnsw *h, size_t rows, imgsim_error *err);
/* A run of `len` upper blocks (reusing a freed one when possible); HNSW_NONE on failure. */
uint32_t hnsw_upper_alloc(hnsw *h, int len);
void hnsw_upper_release(hnsw *h, uint32_t start, int len);
/* A new, empty index for `dim`-d input with parameters p (checked); compression fitted
 * by the caller. */
imgsim_status hnsw_alloc(const hnsw_params *p, int dim, hnsw **out, imgsim_error *err);
/* ---- hnsw_io.c, for the tests and the fuzzer */
/* hnsw_open on bytes in memory (copied); verify = 0 skips the checksums so that the
 * structural checks see damaged input. */
imgsim_status hnsw_open_memory(const void *data, size_t len, int verify, hnsw **out,
                               imgsim_error *err);
/* Recompute both checksums of an index file image (tests: damage that checksums miss). */
void hnsw_file_rehash(void *data, size_t len);

/* Derived sizes (cdim, strides) from p, dim and the PCA dims. */
void hnsw_layout(hnsw *h);

#endif

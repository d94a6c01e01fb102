/*
 * hnsw_search.c — searching the graph: per-thread scratch (epoch-tagged visited array,
 * candidate heaps), the best-first search of one level, and hnsw_search itself with its
 * filter strategy and the re-ranking on full-precision rows.
 *
 * The level search expands a node in two passes: first every unvisited neighbour is marked
 * and its first cache line requested (the misses overlap), then distances are computed with
 * the next code prefetched. On the 1M x 256 set that is 9-12 % more queries/s than
 * prefetching one neighbour ahead as hnswlib does.
 *
 * Filters (hnsw.h): a slot is "accepted" when its row passes the caller's filter, is not the
 * excluded row and is alive / inside the full-precision rows. The walk goes through every
 * node but only accepted ones enter the results, so the walk goes on until it has ef
 * accepted results (or runs out of candidates). When few rows pass, that walk visits about
 * count / pass-fraction nodes, and scanning just the passing rows exactly is cheaper and
 * always right: the pass fraction of a caller's filter is estimated from a sample of rows
 * (SAMPLE) and the scan chosen when at most max(BRUTE_MIN, ef * M0) rows are expected to
 * pass or the fraction is below BRUTE_FRACTION. (full->alive alone is not estimated: the
 * index should hold alive rows only, it is a safety net.) A walk that returns fewer than k
 * hits also falls back to the scan, which finds every accepted row, so k hits come back
 * whenever k rows qualify.
 *
 * Re-ranking: the walk keeps ef candidates ordered by code distance; without PCA the
 * closest min(ef, max(3 k, 32)) of them are scored on the full-precision rows, with PCA all
 * of them. On Myntra with sq8 codes, re-ranking all ef candidates or only 2 k gave the same
 * recall@10 (0.9914 / 0.9915 at ef 40), and re-ranking is the costly part of an sq8 search
 * at large ef (9 KB rows); a PCA reduction ranks too roughly for that (48 -> 32 dims on the
 * clustered test data: recall 0.91 with 32 re-ranked, 0.99 with all 64).
 *
 * Scores: with full-precision rows, the ranking key and score of exact.h; from
 * codes: cosine = 1 - d (normalised vectors), or 1 - d / 2 after PCA (|a - b|^2 = 2 - 2 cos
 * for unit vectors), Euclidean = sqrt(d) — approximate when the codes are (sq8, PCA).
 */
#include "index/hnsw_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/grow.h"
#include "index/score.h"
#include "index/topk.h"

#define SAMPLE 256            /* rows looked at to estimate a filter's pass fraction */
#define BRUTE_MIN 2048        /* always scan when at most this many rows pass */
#define BRUTE_FRACTION 0.02   /* ... or when less than this fraction passes */
#define RERANK_FACTOR 3        /* re-rank the closest min(ef, max(3 k, RERANK_MIN)) ... */
#define RERANK_MIN 32          /* ... candidates on the full-precision rows */

/* ------------------------------------------------------------ scratch */

imgsim_status hnsw_heap_grow(hnsw_heap *hp)
{
    if (grow_array((void **)&hp->v, &hp->cap, hp->cap + 1, sizeof *hp->v, 256))
        return IMGSIM_E_NOMEM;
    return IMGSIM_OK;
}

imgsim_status hnsw_ctx_new(hnsw_ctx **out, imgsim_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory for a search context");
    return IMGSIM_OK;
}

void hnsw_ctx_free(hnsw_ctx *c)
{
    if (!c)
        return;
    free(c->visited);
    free(c->cand.v);
    free(c->res.v);
    free(c->sel);
    hnsw_query_release(&c->q);
    hnsw_query_release(&c->qa);
    hnsw_query_release(&c->qb);
    free(c);
}

imgsim_status hnsw_ctx_prepare(hnsw_ctx *c, const hnsw *h, imgsim_error *err)
{
    if (c->nvisited < h->nslots) {
        size_t old = c->nvisited;
        if (grow_array((void **)&c->visited, &c->nvisited, h->nslots, sizeof *c->visited, 1024))
            return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory for %zu visited flags",
                             h->nslots);
        memset(c->visited + old, 0, (c->nvisited - old) * sizeof *c->visited);
    }
    if (c->q_cdim != h->cdim_pad) {
        hnsw_query_release(&c->q);
        hnsw_query_release(&c->qa);
        hnsw_query_release(&c->qb);
        c->q_cdim = 0;
        imgsim_status st = hnsw_query_alloc(h, &c->q, err);
        if (st == IMGSIM_OK)
            st = hnsw_query_alloc(h, &c->qa, err);
        if (st == IMGSIM_OK)
            st = hnsw_query_alloc(h, &c->qb, err);
        if (st != IMGSIM_OK)
            return st;
        c->q_cdim = h->cdim_pad;
    }
    c->qa.slot = c->qb.slot = HNSW_NONE;
    return IMGSIM_OK;
}

void hnsw_visit_reset(hnsw_ctx *c)
{
    if (++c->tag == 0) {
        memset(c->visited, 0, c->nvisited * sizeof *c->visited);
        c->tag = 1;
    }
}

/* ------------------------------------------------------------ walking the graph */

uint32_t hnsw_descend(const hnsw *h, const hnsw_query *q, uint32_t ep, int top, int stop,
                      float *d_out)
{
    float d = hnsw_dist(h, q, ep);
    for (int l = top; l > stop; l--) {
        for (int changed = 1; changed;) {
            changed = 0;
            hnsw_lock(h, ep);
            uint32_t *ids, n = *hnsw_links(h, ep, l, &ids), best = ep;
            for (uint32_t i = 0; i < n; i++) {
                float di = hnsw_dist(h, q, ids[i]);
                if (di < d) {
                    d = di;
                    best = ids[i];
                }
            }
            hnsw_unlock(h, ep);
            if (best != ep) {
                ep = best;
                changed = 1;
            }
        }
    }
    *d_out = d;
    return ep;
}

/* Prefetch a slot's code after its first line, up to PREFETCH_BYTES (the hardware
 * prefetcher follows a longer code by itself). */
#define PREFETCH_BYTES 1024
static inline void prefetch_code(const hnsw *h, uint32_t slot)
{
    const char *p = (const char *)hnsw_code(h, slot);
    size_t end = h->code_bytes < PREFETCH_BYTES ? h->code_bytes : PREFETCH_BYTES;
    for (size_t off = 64; off < end; off += 64)
        __builtin_prefetch(p + off);
}

imgsim_status hnsw_search_level(const hnsw *h, hnsw_ctx *c, const hnsw_query *q, uint32_t ep,
                                float ep_d, int level, int ef, hnsw_accept_fn accept,
                                const void *arg)
{
    uint32_t local[2 * HNSW_MAX_M];
    c->cand.n = 0;
    c->res.n = 0;
    hnsw_visit_reset(c);
    hnsw_visit(c, ep);
    if (hnsw_heap_push_min(&c->cand, ep_d, ep) != IMGSIM_OK)
        return IMGSIM_E_NOMEM;
    if ((!accept || accept(h, ep, arg)) && hnsw_heap_push_max(&c->res, ep_d, ep) != IMGSIM_OK)
        return IMGSIM_E_NOMEM;
    size_t want = (size_t)ef;
    float bound = c->res.n ? c->res.v[0].d : INFINITY;
    while (c->cand.n) {
        hnsw_cand cur = c->cand.v[0];
        if (cur.d > bound && c->res.n >= want)
            break;
        hnsw_heap_pop_min(&c->cand);
        uint32_t *ids, n;
        if (h->locks) { /* building: copy the list under the node's lock */
            hnsw_lock(h, cur.id);
            uint32_t *src;
            n = *hnsw_links(h, cur.id, level, &src);
            memcpy(local, src, n * sizeof(uint32_t));
            hnsw_unlock(h, cur.id);
            ids = local;
        } else {
            n = *hnsw_links(h, cur.id, level, &ids);
        }
        /* pass 1: the unvisited neighbours, marked, their first cache line requested —
         * all of them at once, so the memory latencies overlap */
        uint32_t todo[2 * HNSW_MAX_M];
        uint32_t nt = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t id = ids[i];
            if (hnsw_visit(c, id))
                continue;
            todo[nt++] = id;
            __builtin_prefetch(hnsw_code(h, id));
        }
        /* pass 2: distances, the rest of the next code requested one node ahead */
        if (nt)
            prefetch_code(h, todo[0]);
        for (uint32_t t = 0; t < nt; t++) {
            uint32_t id = todo[t];
            if (t + 1 < nt)
                prefetch_code(h, todo[t + 1]);
            float d = hnsw_dist(h, q, id);
            if (c->res.n < want || d < bound) {
                if (hnsw_heap_push_min(&c->cand, d, id) != IMGSIM_OK)
                    return IMGSIM_E_NOMEM;
                /* the next node to expand: its links will be read soon */
                __builtin_prefetch(hnsw_node_at(h, c->cand.v[0].id));
                if (!accept || accept(h, id, arg)) {
                    if (hnsw_heap_push_max(&c->res, d, id) != IMGSIM_OK)
                        return IMGSIM_E_NOMEM;
                    if (c->res.n > want)
                        hnsw_heap_pop_max(&c->res);
                    bound = c->res.v[0].d;
                }
            }
        }
    }
    return IMGSIM_OK;
}

/* ------------------------------------------------------------ hnsw_search */

/* What a search accepts as a result. */
typedef struct accept_args {
    const uint8_t *filter;
    uint32_t exclude;
    const exact_set *full;
} accept_args;

/* Non-zero when the row in `slot` may be returned. */
static int accept_row(const hnsw *h, uint32_t slot, const void *arg)
{
    const accept_args *a = arg;
    uint32_t row = hnsw_node_at(h, slot)->row;
    if (row == a->exclude || (a->filter && !a->filter[row]))
        return 0;
    if (a->full && (row >= a->full->n || (a->full->alive && !a->full->alive[row])))
        return 0;
    return 1;
}

/* Estimated number of accepted nodes: the passing fraction of up to SAMPLE evenly spaced
 * rows that are in the index (row map and filter: small arrays, not the node blocks). */
static double estimate_pass(const hnsw *h, const accept_args *a)
{
    size_t lim = h->row_limit, step = lim / SAMPLE + 1, seen = 0, pass = 0;
    for (size_t r = step / 2; r < lim; r += step) {
        if (h->row_node[r] == HNSW_NONE)
            continue;
        seen++;
        pass += (size_t)accept_row(h, h->row_node[r], a);
    }
    return seen ? (double)pass / (double)seen * (double)h->count : (double)h->count;
}

/* User-facing score from an index distance. */
static float score_from_dist(const hnsw *h, float d)
{
    if (h->p.metric == IMGSIM_METRIC_COSINE)
        return h->space == HNSW_SPACE_IP ? 1.0f - d : 1.0f - d / 2.0f;
    return sqrtf(d > 0 ? d : 0);
}

/* L2 norm of x. */
static float vec_norm(const float *x, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += (double)x[i] * x[i];
    return (float)sqrt(s);
}

/* Dot product of two float vectors of any length: the kernel over whole 16-lane blocks,
 * then the tail. */
static float dot_any(const hnsw *h, const float *a, const float *b, int dim)
{
    size_t body = (size_t)dim & ~(size_t)15;
    float s = body ? h->k->dot_f32(a, b, body) : 0.0f;
    for (size_t i = body; i < (size_t)dim; i++)
        s += a[i] * b[i];
    return s;
}

/* Ranking key (exact.h) of the query against full-precision row `row`. */
static float full_key(const hnsw *h, const float *q, float qn, const exact_set *full,
                      uint32_t row)
{
    float dot = dot_any(h, q, full->vecs + (size_t)row * (size_t)h->dim, h->dim);
    return h->p.metric == IMGSIM_METRIC_COSINE ? score_key_cos(dot, qn, full->norms[row])
                                               : score_key_l2(dot, qn, full->norms[row]);
}

/* Top-k of the candidate slots cand[0..n): by exact keys on the full rows when given, else
 * by index distance. Writes out / *nout. */
static void finish_hits(const hnsw *h, const hnsw_cand *cand, size_t n, const float *q,
                        const exact_set *full, int k, exact_hit *out, int *nout)
{
    int cnt = 0;
    if (full) {
        float qn = vec_norm(q, h->dim);
        for (size_t i = 0; i < n; i++) {
            uint32_t row = hnsw_node_at(h, cand[i].id)->row;
            float key = full_key(h, q, qn, full, row);
            if (cnt < k || key >= topk_floor(out, cnt, k))
                topk_push(out, &cnt, k, key, row);
        }
        topk_sort(out, cnt);
        for (int i = 0; i < cnt; i++)
            out[i].score = exact_key_to_score(h->p.metric, out[i].score);
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t row = hnsw_node_at(h, cand[i].id)->row;
            float key = -cand[i].d;
            if (cnt < k || key >= topk_floor(out, cnt, k))
                topk_push(out, &cnt, k, key, row);
        }
        topk_sort(out, cnt);
        for (int i = 0; i < cnt; i++)
            out[i].score = score_from_dist(h, -out[i].score);
    }
    *nout = cnt;
}

/* Keep the `keep` closest of the results heap (drops the farthest). */
static void shortlist(hnsw_heap *res, size_t keep)
{
    while (res->n > keep)
        hnsw_heap_pop_max(res);
}

/* Exact scan: every accepted slot, scored on the full rows (or the codes). */
static imgsim_status scan_all(const hnsw *h, hnsw_ctx *c, const accept_args *a, const float *q,
                              const exact_set *full, int k, exact_hit *out, int *nout)
{
    c->res.n = 0;
    for (size_t s = 0; s < h->nslots; s++) {
        const hnsw_node *nd = hnsw_node_at(h, (uint32_t)s);
        if ((nd->flags & HNSW_FREE) || !accept_row(h, (uint32_t)s, a))
            continue;
        float d = full ? 0 : hnsw_dist(h, &c->q, (uint32_t)s);
        if (c->res.n == c->res.cap && hnsw_heap_grow(&c->res) != IMGSIM_OK)
            return IMGSIM_E_NOMEM;
        c->res.v[c->res.n].d = d;
        c->res.v[c->res.n++].id = (uint32_t)s;
    }
    finish_hits(h, c->res.v, c->res.n, q, full, k, out, nout);
    return IMGSIM_OK;
}

/* Check the arguments of hnsw_search. */
static imgsim_status check_search(const hnsw *h, const float *q, int k, int ef,
                                  const exact_set *full, exact_hit *out, int *nout,
                                  imgsim_error *err)
{
    if (!h || !q || !out || !nout)
        return error_set(err, IMGSIM_E_ARG, "hnsw search: missing index, query or output");
    if (k < 1)
        return error_set(err, IMGSIM_E_ARG, "hnsw search: k must be at least 1 (got %d)", k);
    if (ef < 0)
        return error_set(err, IMGSIM_E_ARG, "hnsw search: ef must be >= 0 (got %d)", ef);
    if (full && (full->dim != h->dim || (full->n && (!full->vecs || !full->norms))))
        return error_set(err, IMGSIM_E_ARG, "hnsw search: full-precision rows of dimension %d "
                         "(index: %d) or without norms", full->dim, h->dim);
    return IMGSIM_OK;
}

imgsim_status hnsw_search(const hnsw *h, hnsw_ctx *ctx, const float *q, int k, int ef,
                          const uint8_t *filter, uint32_t exclude, const exact_set *full,
                          exact_hit *out, int *nout, imgsim_error *err)
{
    imgsim_status st = check_search(h, q, k, ef, full, out, nout, err);
    if (st != IMGSIM_OK)
        return st;
    *nout = 0;
    if (h->count == 0)
        return IMGSIM_OK;
    hnsw_ctx *c = ctx;
    if (!c && (st = hnsw_ctx_new(&c, err)) != IMGSIM_OK)
        return st;
    st = hnsw_ctx_prepare(c, h, err);
    if (st != IMGSIM_OK)
        goto out;
    if (ef == 0)
        ef = h->p.ef_search;
    if (ef < k)
        ef = k;
    hnsw_transform(h, q, c->q.f);
    hnsw_query_prepare(h, c->q.f, &c->q);

    accept_args a = {filter, exclude, full};
    int filtered = filter || exclude != EXACT_NO_ROW ||
                   (full && (full->alive || full->n < h->row_limit));
    if (filter) {
        double pass = estimate_pass(h, &a);
        double limit = (double)ef * h->M0 > BRUTE_MIN ? (double)ef * h->M0 : BRUTE_MIN;
        if (pass <= limit || pass < BRUTE_FRACTION * (double)h->count) {
            st = scan_all(h, c, &a, q, full, k, out, nout);
            goto out;
        }
    }
    float d;
    uint32_t ep = hnsw_descend(h, &c->q, h->entry, h->max_level, 0, &d);
    st = hnsw_search_level(h, c, &c->q, ep, d, 0, ef, filtered ? accept_row : NULL, &a);
    if (st != IMGSIM_OK)
        goto out;
    if (filtered && c->res.n < (size_t)k) {
        st = scan_all(h, c, &a, q, full, k, out, nout);
        goto out;
    }
    if (full && h->p.pca_dims == 0) { /* PCA codes rank too roughly: all ef are re-ranked */
        size_t keep = (size_t)k * RERANK_FACTOR;
        shortlist(&c->res, keep > RERANK_MIN ? keep : RERANK_MIN);
    }
    finish_hits(h, c->res.v, c->res.n, q, full, k, out, nout);
out:
    if (st == IMGSIM_E_NOMEM && (!err || err->code != IMGSIM_E_NOMEM))
        error_set(err, st, "hnsw search: out of memory");
    if (c != ctx)
        hnsw_ctx_free(c);
    return st;
}

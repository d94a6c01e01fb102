/*
 * topk.h — bounded "worst at the root" heaps of exact_hit, used by the exact search to keep
 * the k best candidates of each query while scanning score blocks.
 *
 * During selection exact_hit.score holds the ranking key (higher is closer); the order is
 * (key descending, row ascending), so ties are decided by the lower row and every result is
 * deterministic whatever order the candidates arrive in. The root is the worst hit kept, so
 * the common case — a candidate worse than the root — costs one comparison against
 * topk_floor(). A heap of k entries is k * 8 bytes; push and pop cost O(log k).
 *
 * Finished lists carry user-facing scores instead (cosine: higher is closer; L2, L1: lower
 * is closer): topk_hit_better orders two such hits and topk_merge (topk.c) merges two such
 * lists. They are the one place that order is written down: the neighbour table, the HNSW
 * search's exact tail and the exact search all agree through them.
 */
#ifndef IMGSIM_INDEX_TOPK_H
#define IMGSIM_INDEX_TOPK_H

#include <math.h>
#include <stdint.h>

#include "index/exact.h"

/* Non-zero when (ka, ra) ranks before (kb, rb). */
static inline int topk_better(float ka, uint32_t ra, float kb, uint32_t rb)
{
    return ka > kb || (ka == kb && ra < rb);
}

/* Non-zero when hit a ranks before hit b, both carrying user-facing scores of metric m
 * (cosine similarity, or L2 / L1 distance); ties go to the lower row. */
static inline int topk_hit_better(imgsim_metric m, const exact_hit *a, const exact_hit *b)
{
    return m == IMGSIM_METRIC_COSINE ? topk_better(a->score, a->row, b->score, b->row)
                                     : topk_better(-a->score, a->row, -b->score, b->row);
}

/* Merge the sorted (best first) lists a (na hits, room for k) and b (nb hits) of metric m
 * into a, keeping the best k. Returns the new count of a, or -1 without memory (a is then
 * unchanged). */
int topk_merge(imgsim_metric m, exact_hit *a, int na, const exact_hit *b, int nb, int k);

/* Admission threshold: a candidate with key < floor can never enter (NaN never enters). */
static inline float topk_floor(const exact_hit *h, int n, int k)
{
    return n < k ? -INFINITY : h[0].score;
}

/* Move h[i] down until both children are better than it (heap of n entries). */
static inline void topk_sift_down(exact_hit *h, int n, int i)
{
    exact_hit x = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && topk_better(h[c].score, h[c].row, h[c + 1].score, h[c + 1].row))
            c++; /* the worse child */
        if (!topk_better(x.score, x.row, h[c].score, h[c].row))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* Offer (key, row) to the heap h of *n entries (capacity k). Returns the new floor. */
static inline float topk_push(exact_hit *h, int *n, int k, float key, uint32_t row)
{
    if (*n < k) {
        int i = (*n)++;
        while (i > 0) {
            int p = (i - 1) / 2;
            if (!topk_better(h[p].score, h[p].row, key, row))
                break;
            h[i] = h[p];
            i = p;
        }
        h[i].row = row;
        h[i].score = key;
        return topk_floor(h, *n, k);
    }
    if (topk_better(key, row, h[0].score, h[0].row)) {
        h[0].row = row;
        h[0].score = key;
        topk_sift_down(h, k, 0);
    }
    return h[0].score;
}

/* Turn a heap of n entries into a list sorted best first (in place). */
static inline void topk_sort(exact_hit *h, int n)
{
    for (int m = n; m > 1; m--) {
        exact_hit worst = h[0];
        h[0] = h[m - 1];
        h[m - 1] = worst;
        topk_sift_down(h, m - 1, 0);
    }
}

#endif

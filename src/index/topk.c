/*
 * topk.c — merging two finished hit lists (topk.h): the neighbour table's incremental
 * refresh and the HNSW search's exact tail both use it.
 */
#include <stdlib.h>
#include <string.h>

#include "index/topk.h"

int topk_merge(imgsim_metric m, exact_hit *a, int na, const exact_hit *b, int nb, int k)
{
    exact_hit tmp[256];
    exact_hit *t = k <= 256 ? tmp : malloc((size_t)k * sizeof *t);
    if (!t)
        return -1;
    int i = 0, j = 0, n = 0;
    while (n < k && (i < na || j < nb)) {
        if (j >= nb || (i < na && topk_hit_better(m, &a[i], &b[j])))
            t[n++] = a[i++];
        else
            t[n++] = b[j++];
    }
    memcpy(a, t, (size_t)n * sizeof *t);
    if (t != tmp)
        free(t);
    return n;
}

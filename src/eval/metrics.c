/*
 * metrics.c — leave-one-out retrieval quality (definitions in metrics.h; the same numbers
 * as scripts/eval_knn.py).
 *
 * Query items are taken QB at a time; their rows are scored against every row with
 * exact_keys_rows (QB x n keys, 45 MB for 44,000 rows — never nitems x nitems). For one
 * query q every other labelled item c gets a 64-bit rank key
 *     comp(c) = (order-preserving bits of key(row(c))) << 32 | (UINT32_MAX - c)
 * so "higher comp" is exactly "ranks first" (key descending, then lower item index) and no
 * two candidates compare equal. Then
 *   - top-k: a bounded min-heap of comps, sorted at the end;
 *   - full AP: the comps of the R relevant items are sorted (radix sort); every other
 *     candidate is placed among them (pos = relevant items ahead of it) and counted in
 *     h[pos]. The i-th relevant item's rank is i + sum_{p<i} h[p], so the AP costs O(n)
 *     per query instead of sorting all n candidates. Placing uses a bucket table over the
 *     sorted comps (a linear map of the key bits, ~2R buckets) and a short scan; a plain
 *     binary search was a third of the time at 44,000 items (its steps are dependent loads).
 * Threads take query blocks from a counter and store per-query numbers; the means are
 * summed afterwards in item order, so they do not depend on the thread count.
 */
#include "eval/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

#define QB 256 /* query items per block of keys */
#define MAX_THREADS 64

typedef struct eval_job {
    const exact_set *set;
    imgsim_metric m;
    const int *item_label;
    size_t nlab;            /* labelled items (the candidates) */
    const uint32_t *lab_item, *lab_row; /* per labelled item, in item order */
    const int *lab_label;
    const size_t *group_off; /* items of label l: group[group_off[l] .. group_off[l + 1]) */
    const uint32_t *group;
    const uint32_t *queries; /* query items, ascending */
    const uint32_t *item_row;
    size_t nq;
    int k, kk;              /* requested k; heap size min(k, nlab - 1) */
    int full_map;
    double *res;            /* 4 numbers per query: P@k, R@k, AP@k, AP */
    size_t nblocks;
    atomic_size_t next;
    atomic_int failed;
} eval_job;

typedef struct eval_worker {
    eval_job *job;
    float *keys;      /* QB x n */
    uint32_t *rows;   /* QB query rows */
    uint64_t *rel, *tmp; /* sorted relevant comps (nlab + 4) and radix scratch (nlab) */
    uint32_t *hist;   /* nlab + 1 */
    uint32_t *first;  /* bucket table, INDEX_MAX_BUCKETS + 1 */
    uint64_t *heap;   /* kk */
    uint8_t *flags;   /* kk */
    imgsim_status st;
    imgsim_error err;
} eval_worker;

/* Rank key of candidate item c with score key: higher ranks first, ties by lower index. */
static inline uint64_t comp_of(float key, uint32_t c)
{
    if (key == 0)
        key = 0; /* -0 and +0 compare equal as floats: give them one bit pattern */
    uint32_t u;
    memcpy(&u, &key, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return (uint64_t)u << 32 | (uint32_t)(UINT32_MAX - c);
}

static inline uint32_t comp_item(uint64_t c) { return UINT32_MAX - (uint32_t)c; }

/* Sort a[0..n) ascending; tmp holds n values. LSD radix, 8 bits a pass, skipping passes in
 * which every value has the same digit (the high bits of the index part, usually). */
static void sort_u64(uint64_t *a, uint64_t *tmp, size_t n)
{
    if (n < 32) {
        for (size_t i = 1; i < n; i++) {
            uint64_t x = a[i];
            size_t j = i;
            for (; j > 0 && a[j - 1] > x; j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
        return;
    }
    static const int passes = 8;
    size_t cnt[8][256];
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < passes; b++)
            cnt[b][(a[i] >> (8 * b)) & 255]++;
    uint64_t *src = a, *dst = tmp;
    for (int b = 0; b < passes; b++) {
        if (cnt[b][(src[0] >> (8 * b)) & 255] == n)
            continue;
        size_t off = 0;
        for (int d = 0; d < 256; d++) {
            size_t c = cnt[b][d];
            cnt[b][d] = off;
            off += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[cnt[b][(src[i] >> (8 * b)) & 255]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

/* Number of values of the ascending array s[0..n) (n >= 1) below x; branch-free search. */
static inline size_t count_below(const uint64_t *s, size_t n, uint64_t x)
{
    const uint64_t *base = s;
    while (n > 1) {
        size_t half = n / 2;
        base = base[half] < x ? base + half : base;
        n -= half;
    }
    return (size_t)(base - s) + (*base < x);
}

#define INDEX_MAX_BUCKETS 65536

/* Where candidates fall among the sorted relevant comps s[0..n): the bucket of a comp is a
 * linear map of its top 32 bits (the key) from [key of s[0], key of s[n - 1]] onto
 * [0, nb), monotone, so every comp of a lower bucket is smaller. first[b] = number of s in
 * buckets below b. */
typedef struct rank_index {
    const uint64_t *s;
    size_t n, nb;
    uint32_t lo;
    uint64_t scale;
    const uint32_t *first;
} rank_index;

/* Bucket of a comp whose key lies between those of s[0] and s[n - 1]. */
static inline size_t bucket_of(const rank_index *x, uint64_t c)
{
    return (size_t)(((uint64_t)((uint32_t)(c >> 32) - x->lo) * x->scale) >> 32);
}

/* Build the index of s[0..n) (n >= 1) with its table in first (INDEX_MAX_BUCKETS + 1). */
static void index_build(rank_index *x, const uint64_t *s, size_t n, uint32_t *first)
{
    size_t nb = 64;
    while (nb < 2 * n && nb < INDEX_MAX_BUCKETS)
        nb *= 2;
    x->s = s;
    x->n = n;
    x->nb = nb;
    x->first = first;
    x->lo = (uint32_t)(s[0] >> 32);
    uint64_t span = (uint64_t)(uint32_t)(s[n - 1] >> 32) - x->lo + 1;
    x->scale = ((uint64_t)nb << 32) / span; /* (key - lo) * scale < nb * 2^32: no overflow */
    size_t i = 0;
    for (size_t b = 0; b <= nb; b++) {
        while (i < n && bucket_of(x, s[i]) < b)
            i++;
        first[b] = (uint32_t)i;
    }
}

/* Number of s below c, for s[0] <= c <= s[n - 1]. Comps of later buckets are all above c,
 * so when c's bucket holds at most 4 comps, comparing the 4 from its start (s is padded with
 * 4 x UINT64_MAX) counts exactly, without a data-dependent branch. */
static inline size_t index_count_below(const rank_index *x, uint64_t c)
{
    size_t b = bucket_of(x, c), i = x->first[b], e = x->first[b + 1];
    const uint64_t *s = x->s + i;
    if (e - i <= 4)
        return i + (s[0] < c) + (s[1] < c) + (s[2] < c) + (s[3] < c);
    return i + count_below(s, e - i, c); /* many close keys in one bucket */
}

/* Move h[i] down the min-heap h of n entries to its place. */
static inline void heap_sift(uint64_t *h, int n, int i)
{
    uint64_t v = h[i];
    for (;;) {
        int l = 2 * i + 1;
        if (l >= n)
            break;
        if (l + 1 < n && h[l + 1] < h[l])
            l++;
        if (h[l] >= v)
            break;
        h[i] = h[l];
        i = l;
    }
    h[i] = v;
}

/* Push c into the min-heap h (*n entries, capacity cap) if it beats the root. */
static inline void heap_offer(uint64_t *h, int *n, int cap, uint64_t c)
{
    if (*n < cap) {
        int i = (*n)++;
        while (i > 0 && h[(i - 1) / 2] > c) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = c;
    } else if (c > h[0]) {
        h[0] = c;
        heap_sift(h, cap, 0);
    }
}

void eval_list(const uint8_t *rel, int nres, int k, size_t R, double *p, double *r, double *ap)
{
    int ke = nres < k ? nres : k;
    if (ke < 0)
        ke = 0;
    double hits = 0, sum = 0;
    for (int i = 0; i < ke; i++)
        if (rel[i]) {
            hits += 1;
            sum += hits / (i + 1);
        }
    size_t den = (size_t)ke < R ? (size_t)ke : R;
    *p = ke ? hits / ke : 0;
    *r = R ? hits / (double)R : 0;
    *ap = den ? sum / (double)den : 0;
}

/* The four numbers of query item q, whose row's keys against every row are `keys`. */
static void eval_query(eval_job *j, eval_worker *w, uint32_t q, const float *keys, double *res)
{
    int L = j->item_label[q];
    /* relevant: the other items of label L */
    const uint32_t *g = j->group + j->group_off[L];
    size_t gn = j->group_off[L + 1] - j->group_off[L], R = 0;
    int full = j->full_map;
    if (full) {
        for (size_t i = 0; i < gn; i++)
            if (g[i] != q)
                w->rel[R++] = comp_of(keys[j->item_row[g[i]]], g[i]);
        sort_u64(w->rel, w->tmp, R);
        for (int p = 0; p < 4; p++)
            w->rel[R + p] = UINT64_MAX; /* sentinels for index_count_below */
        memset(w->hist, 0, (R + 1) * sizeof *w->hist);
    } else {
        R = gn - 1;
    }
    const uint64_t *s = w->rel;
    uint64_t lo = R ? s[0] : 0, hi = R ? s[R - 1] : 0;
    rank_index ix = {0};
    if (full && R)
        index_build(&ix, s, R, w->first);
    int hn = 0;
    for (size_t t = 0; t < j->nlab; t++) {
        uint32_t c = j->lab_item[t];
        if (c == q)
            continue;
        uint64_t cp = comp_of(keys[j->lab_row[t]], c);
        if (hn < j->kk || cp > w->heap[0])
            heap_offer(w->heap, &hn, j->kk, cp);
        if (!full || R == 0 || j->lab_label[t] == L || cp < lo)
            continue; /* cp < lo: behind every relevant item, changes no rank */
        size_t ahead = cp > hi ? 0 : R - index_count_below(&ix, cp);
        w->hist[ahead]++;
    }
    /* top-k, best first: heap sort, the smallest goes to the end */
    for (int m = hn; m > 1; m--) {
        uint64_t x = w->heap[0];
        w->heap[0] = w->heap[m - 1];
        w->heap[m - 1] = x;
        heap_sift(w->heap, m - 1, 0);
    }
    for (int i = 0; i < hn; i++)
        w->flags[i] = j->item_label[comp_item(w->heap[i])] == L;
    eval_list(w->flags, hn, j->k, R, &res[0], &res[1], &res[2]);
    res[3] = 0;
    if (full && R) {
        double sum = 0;
        size_t before = 0; /* non-relevant candidates ahead of the i-th relevant item */
        for (size_t i = 1; i <= R; i++) {
            before += w->hist[i - 1];
            sum += (double)i / (double)(i + before);
        }
        res[3] = sum / (double)R;
    }
}

/* Thread body: claim blocks of queries, score them, evaluate each query. */
static void *eval_main(void *arg)
{
    eval_worker *w = arg;
    eval_job *j = w->job;
    size_t n = j->set->n;
    for (;;) {
        if (atomic_load(&j->failed))
            break;
        size_t b = atomic_fetch_add(&j->next, 1);
        if (b >= j->nblocks)
            break;
        size_t q0 = b * QB, nb = j->nq - q0 < QB ? j->nq - q0 : QB;
        for (size_t i = 0; i < nb; i++)
            w->rows[i] = j->item_row[j->queries[q0 + i]];
        w->st = exact_keys_rows(j->set, j->m, w->rows, nb, w->keys, &w->err);
        if (w->st != IMGSIM_OK) {
            atomic_store(&j->failed, 1);
            break;
        }
        for (size_t i = 0; i < nb; i++)
            eval_query(j, w, j->queries[q0 + i], w->keys + i * n, j->res + 4 * (q0 + i));
    }
    return NULL;
}

/* Check the inputs; count labelled items. */
static imgsim_status check_inputs(const exact_set *rows, const uint32_t *item_row,
                                  const int *item_label, size_t nitems, int nlabels, int k,
                                  eval_result *out, size_t *nlab, imgsim_error *err)
{
    if (!rows || !out || (nitems && (!item_row || !item_label)))
        return error_set(err, IMGSIM_E_ARG, "eval: missing vectors, items or output");
    if (k < 1)
        return error_set(err, IMGSIM_E_ARG, "eval: k must be at least 1 (got %d)", k);
    if (nlabels < 0 || nitems >= UINT32_MAX)
        return error_set(err, IMGSIM_E_ARG, "eval: bad label or item count");
    *nlab = 0;
    for (size_t i = 0; i < nitems; i++) {
        if (item_row[i] >= rows->n)
            return error_set(err, IMGSIM_E_ARG, "eval: item %zu has row %u of %zu", i,
                             item_row[i], rows->n);
        if (item_label[i] < -1 || item_label[i] >= nlabels)
            return error_set(err, IMGSIM_E_ARG, "eval: item %zu has label %d (of %d)", i,
                             item_label[i], nlabels);
        *nlab += item_label[i] >= 0;
    }
    if (*nlab < 2)
        return error_set(err, IMGSIM_E_ARG, "eval: fewer than 2 labelled items (%zu)", *nlab);
    return IMGSIM_OK;
}

static void free_workers(eval_worker *w, int nt)
{
    for (int t = 0; t < nt; t++) {
        free(w[t].keys);
        free(w[t].rows);
        free(w[t].rel);
        free(w[t].tmp);
        free(w[t].hist);
        free(w[t].first);
        free(w[t].heap);
        free(w[t].flags);
    }
    free(w);
}

/* Sum the per-query numbers into overall and per-label means, in query order. */
static void summarise(const eval_job *j, eval_result *out)
{
    double tot[4] = {0};
    for (size_t i = 0; i < j->nq; i++) {
        const double *r = j->res + 4 * i;
        eval_score *l = &out->per_label[j->item_label[j->queries[i]]];
        l->n++;
        l->p_at_k += r[0];
        l->r_at_k += r[1];
        l->map_at_k += r[2];
        l->map += r[3];
        for (int c = 0; c < 4; c++)
            tot[c] += r[c];
    }
    for (int l = 0; l < out->nlabels; l++) {
        eval_score *e = &out->per_label[l];
        if (e->n) {
            e->p_at_k /= (double)e->n;
            e->r_at_k /= (double)e->n;
            e->map_at_k /= (double)e->n;
            e->map /= (double)e->n;
        }
    }
    out->overall.n = j->nq;
    if (j->nq) {
        out->overall.p_at_k = tot[0] / (double)j->nq;
        out->overall.r_at_k = tot[1] / (double)j->nq;
        out->overall.map_at_k = tot[2] / (double)j->nq;
        out->overall.map = tot[3] / (double)j->nq;
    }
}

imgsim_status eval_run(const exact_set *rows, imgsim_metric m, const uint32_t *item_row,
                       const int *item_label, size_t nitems, int nlabels,
                       const uint8_t *is_query, int k, int full_map, int threads,
                       eval_result *out, imgsim_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    size_t nlab = 0;
    imgsim_status st = check_inputs(rows, item_row, item_label, nitems, nlabels, k, out, &nlab, err);
    if (st != IMGSIM_OK)
        return st;
    size_t nl = (size_t)nlabels;
    uint32_t *lab_item = malloc(nlab * sizeof *lab_item), *lab_row = malloc(nlab * sizeof *lab_row);
    int *lab_label = malloc(nlab * sizeof *lab_label);
    size_t *group_off = calloc(nl + 2, sizeof *group_off);
    uint32_t *group = malloc(nlab * sizeof *group), *queries = malloc(nlab * sizeof *queries);
    double *res = calloc(4 * nlab, sizeof *res);
    eval_job j = {.set = rows, .m = m, .item_label = item_label, .nlab = nlab, .item_row = item_row,
                  .k = k, .full_map = full_map, .res = res};
    eval_worker *w = NULL;
    int nt = 0;
    if (!lab_item || !lab_row || !lab_label || !group_off || !group || !queries || !res) {
        st = error_set(err, IMGSIM_E_NOMEM, "eval: out of memory");
        goto done;
    }
    /* candidates in item order; items of each label grouped (counting sort); queries */
    size_t c = 0;
    for (size_t i = 0; i < nitems; i++) {
        if (item_label[i] < 0)
            continue;
        lab_item[c] = (uint32_t)i;
        lab_row[c] = item_row[i];
        lab_label[c] = item_label[i];
        group_off[item_label[i] + 2]++;
        if (!is_query || is_query[i])
            queries[j.nq++] = (uint32_t)i;
        c++;
    }
    for (size_t l = 2; l < nl + 2; l++)
        group_off[l] += group_off[l - 1];
    for (size_t t = 0; t < nlab; t++)
        group[group_off[lab_label[t] + 1]++] = lab_item[t];
    j.lab_item = lab_item;
    j.lab_row = lab_row;
    j.lab_label = lab_label;
    j.group = group;
    j.group_off = group_off;
    j.queries = queries;
    j.kk = (int)((size_t)k < nlab - 1 ? (size_t)k : nlab - 1);
    j.nblocks = (j.nq + QB - 1) / QB;
    out->k = j.kk;
    out->nlabels = nlabels;
    out->per_label = calloc(nl ? nl : 1, sizeof *out->per_label);
    if (!out->per_label) {
        st = error_set(err, IMGSIM_E_NOMEM, "eval: out of memory");
        goto done;
    }
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (int)cores : 1;
    }
    nt = threads > MAX_THREADS ? MAX_THREADS : threads;
    if ((size_t)nt > j.nblocks)
        nt = j.nblocks ? (int)j.nblocks : 1;
    w = calloc((size_t)nt, sizeof *w);
    int ok = w != NULL;
    size_t nb = j.nq < QB ? j.nq : QB;
    for (int t = 0; ok && t < nt; t++) {
        w[t].job = &j;
        w[t].keys = malloc((nb ? nb : 1) * rows->n * sizeof(float) + 1);
        w[t].rows = malloc(QB * sizeof(uint32_t));
        w[t].rel = malloc((nlab + 4) * sizeof(uint64_t));
        w[t].tmp = malloc(nlab * sizeof(uint64_t));
        w[t].hist = malloc((nlab + 1) * sizeof(uint32_t));
        w[t].first = malloc((INDEX_MAX_BUCKETS + 1) * sizeof(uint32_t));
        w[t].heap = malloc((size_t)j.kk * sizeof(uint64_t));
        w[t].flags = malloc((size_t)j.kk);
        ok = w[t].keys && w[t].rows && w[t].rel && w[t].tmp && w[t].hist && w[t].first &&
             w[t].heap && w[t].flags;
    }
    if (!ok) {
        st = error_set(err, IMGSIM_E_NOMEM, "eval: out of memory for %d threads' buffers", nt);
        goto done;
    }
    atomic_store(&j.next, 0);
    atomic_store(&j.failed, 0);
    pthread_t th[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < nt; t++) /* a thread that cannot start leaves its blocks to the others */
        started[t] = pthread_create(&th[t], NULL, eval_main, &w[t]) == 0;
    eval_main(&w[0]);
    for (int t = 1; t < nt; t++)
        if (started[t])
            pthread_join(th[t], NULL);
    for (int t = 0; t < nt; t++)
        if (w[t].st != IMGSIM_OK) {
            if (err)
                *err = w[t].err;
            st = w[t].st;
            goto done;
        }
    summarise(&j, out);
done:
    if (w)
        free_workers(w, nt);
    free(lab_item);
    free(lab_row);
    free(lab_label);
    free(group_off);
    free(group);
    free(queries);
    free(res);
    if (st != IMGSIM_OK && out)
        eval_result_free(out);
    return st;
}

void eval_result_free(eval_result *r)
{
    if (!r)
        return;
    free(r->per_label);
    memset(r, 0, sizeof *r);
}

/*
 * hnsw_mem.c — the index's memory: the level-0 block array, the pool of upper-level link
 * blocks with its free runs, the row -> slot map, and turning arrays that point into a
 * mapped file into heap memory before they grow.
 *
 * Growth is geometric (x1.5, see grow_cap), so n inserts cost O(n) copying. Block memory
 * is 64-byte aligned (a block's code starts on a cache line).
 */
#include "index/hnsw_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/grow.h"

/* 64-byte aligned, zeroed memory of `bytes` (NULL on failure). */
static void *alloc_aligned(size_t bytes)
{
    size_t b = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, b ? b : 64);
    if (p)
        memset(p, 0, b ? b : 64);
    return p;
}

/* The next capacity at least `need`, growing `cur` by half. Not core/grow.h's doubling: a
 * node block is kilobytes (a 2304-d f32 row is 9 KB), so the slack a doubling leaves (up to
 * half the array) would cost gigabytes at a million nodes; x1.5 keeps it under a third.
 * Capacities stay below HNSW_NONE (the resizers refuse more), so this cannot overflow. */
static size_t grow_cap(size_t cur, size_t need)
{
    size_t c = cur + cur / 2;
    if (c < 16)
        c = 16;
    return c < need ? need : c;
}

/* Make the blocks array heap memory of capacity `cap` (>= nslots). */
static imgsim_status blocks_resize(hnsw *h, size_t cap, imgsim_error *err)
{
    if (cap > HNSW_NONE - 1 || cap > SIZE_MAX / h->stride)
        return error_set(err, IMGSIM_E_ARG, "hnsw: %zu nodes is too many", cap);
    uint8_t *nb = alloc_aligned(cap * h->stride);
    if (!nb)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory for %zu nodes", cap);
    if (h->nslots)
        memcpy(nb, h->blocks, h->nslots * h->stride);
    if (h->owned_blocks)
        free(h->blocks);
    h->blocks = nb;
    h->cap_slots = cap;
    h->owned_blocks = 1;
    return IMGSIM_OK;
}

/* Make the upper pool heap memory of capacity `cap` blocks (>= nupper). */
static imgsim_status upper_resize(hnsw *h, size_t cap, imgsim_error *err)
{
    size_t bw = (size_t)(1 + h->M) * sizeof(uint32_t);
    if (cap > HNSW_NONE - 1 || cap > SIZE_MAX / bw)
        return error_set(err, IMGSIM_E_ARG, "hnsw: %zu upper blocks is too many", cap);
    uint32_t *nu;
    if (h->owned_upper) {
        nu = realloc(h->upper, (cap ? cap : 1) * bw);
    } else {
        nu = malloc((cap ? cap : 1) * bw);
        if (nu && h->nupper)
            memcpy(nu, h->upper, h->nupper * bw);
    }
    if (!nu)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory for %zu upper blocks", cap);
    h->upper = nu;
    h->cap_upper = cap;
    h->owned_upper = 1;
    return IMGSIM_OK;
}

imgsim_status hnsw_reserve_rows(hnsw *h, size_t rows, imgsim_error *err)
{
    if (rows > h->cap_rows) {
        if (rows > (size_t)HNSW_NONE)
            return error_set(err, IMGSIM_E_ARG, "hnsw: row %zu is too large", rows - 1);
        size_t cap = grow_cap(h->cap_rows, rows);
        if (cap > (size_t)HNSW_NONE)
            cap = HNSW_NONE;
        /* capped at HNSW_NONE entries, so a plain realloc of the computed capacity */
        uint32_t *m = realloc(h->row_node, cap * sizeof(uint32_t));
        if (!m)
            return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory for %zu rows", cap);
        for (size_t i = h->cap_rows; i < cap; i++)
            m[i] = HNSW_NONE;
        h->row_node = m;
        h->cap_rows = cap;
    }
    return IMGSIM_OK;
}

imgsim_status hnsw_reserve(hnsw *h, size_t slots, size_t rows, imgsim_error *err)
{
    if (slots > h->cap_slots || !h->owned_blocks) {
        imgsim_status st = blocks_resize(h, grow_cap(h->cap_slots, slots), err);
        if (st != IMGSIM_OK)
            return st;
    }
    if (!h->owned_upper) {
        imgsim_status st = upper_resize(h, h->nupper ? h->nupper : 1, err);
        if (st != IMGSIM_OK)
            return st;
    }
    return hnsw_reserve_rows(h, rows, err);
}

uint32_t hnsw_upper_alloc(hnsw *h, int len)
{
    if (len < 1 || len > HNSW_MAX_LEVEL)
        return HNSW_NONE;
    hnsw_runs *fr = &h->upper_free[len];
    if (fr->n)
        return fr->v[--fr->n];
    if (h->nupper + (size_t)len > h->cap_upper &&
        upper_resize(h, grow_cap(h->cap_upper, h->nupper + (size_t)len), NULL) != IMGSIM_OK)
        return HNSW_NONE;
    uint32_t start = (uint32_t)h->nupper;
    h->nupper += (size_t)len;
    memset(h->upper + (size_t)start * (size_t)(1 + h->M), 0,
           (size_t)len * (size_t)(1 + h->M) * sizeof(uint32_t));
    return start;
}

void hnsw_upper_release(hnsw *h, uint32_t start, int len)
{
    if (len < 1 || len > HNSW_MAX_LEVEL)
        return;
    hnsw_runs *fr = &h->upper_free[len];
    if (grow_array((void **)&fr->v, &fr->cap, fr->n + 1, sizeof(uint32_t), 16))
        return; /* the run is leaked inside the pool, nothing breaks */
    fr->v[fr->n++] = start;
}

/*
 * fuzz_hnsw_open.c — libFuzzer target for the HNSW index loader (src/index/hnsw_io.c).
 *
 * Each input is opened twice: with the checksums skipped, so the structural checks behind
 * them (sizes, offsets, link counts, neighbour ids, upper runs, rows, the entry point) see
 * the damage, and normally. Whatever opens must then survive a search, a filtered search,
 * an insert and a remove. Seeds: small valid index files (`bench/ann seeds DIR`).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/hnsw.h"
#include "index/hnsw_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Search, filter, insert and remove on an index that opened. */
static void exercise(hnsw *h)
{
    hnsw_info info;
    hnsw_get_info(h, &info);
    if (info.dim > (1 << 14))
        return;
    float *q = calloc((size_t)info.dim, sizeof(float));
    uint8_t *f = calloc((size_t)info.row_limit + 1, 1);
    if (!q || !f) {
        free(q);
        free(f);
        return;
    }
    for (int i = 0; i < info.dim; i++)
        q[i] = (float)(i % 3) - 1.0f;
    for (uint32_t r = 0; r < info.row_limit; r += 2)
        f[r] = 1;
    exact_hit out[8];
    int n;
    imgsim_error err = {0};
    hnsw_search(h, NULL, q, 8, 16, NULL, EXACT_NO_ROW, NULL, out, &n, &err);
    hnsw_search(h, NULL, q, 3, 0, f, 0, NULL, out, &n, &err);
    if (info.count < 5000 && hnsw_insert(h, info.row_limit, q, &err) == IMGSIM_OK) {
        for (uint32_t r = 0; r < info.row_limit; r++)
            if (hnsw_contains(h, r)) {
                hnsw_remove(h, &r, 1, &err);
                break;
            }
        hnsw_search(h, NULL, q, 8, 16, NULL, EXACT_NO_ROW, NULL, out, &n, &err);
    }
    free(q);
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int verify = 0; verify < 2; verify++) {
        hnsw *h = NULL;
        imgsim_error err = {0};
        if (hnsw_open_memory(data, size, verify, &h, &err) != IMGSIM_OK)
            continue;
        exercise(h);
        hnsw_free(h);
    }
    return 0;
}

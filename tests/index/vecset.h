/*
 * vecset.h — fixtures shared by the index tests (test_exact.c, test_hnsw.c): a seeded
 * deterministic generator and a vector set that owns its buffers.
 */
#ifndef IMGSIM_TESTS_INDEX_VECSET_H
#define IMGSIM_TESTS_INDEX_VECSET_H

#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "index/exact.h"

static uint64_t rng_state;
static inline void rng_seed(uint64_t s) { rng_state = s * 2862933555777941757ull + 3037000493ull; }
static inline uint32_t rng(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static inline float rng_unit(void) { return (float)rng() / 2147483648.0f; } /* [0, 1) */

/* A vector set with its norms (and an alive array, all 1). */
typedef struct tset {
    exact_set s;
    float *vecs, *norms;
    uint8_t *alive;
} tset;

static inline tset tset_new(size_t n, int dim)
{
    tset t = {0};
    t.vecs = calloc(n * (size_t)dim + 1, sizeof(float));
    t.norms = calloc(n + 1, sizeof(float));
    t.alive = malloc(n + 1);
    assert_non_null(t.vecs);
    assert_non_null(t.norms);
    assert_non_null(t.alive);
    memset(t.alive, 1, n + 1);
    t.s = (exact_set){t.vecs, n, dim, t.norms, NULL};
    return t;
}

/* After filling vecs: compute the norms. */
static inline void tset_done(tset *t)
{
    exact_norms(t->vecs, t->s.n, t->s.dim, t->norms);
}

static inline void tset_free(tset *t)
{
    free(t->vecs);
    free(t->norms);
    free(t->alive);
}

#endif

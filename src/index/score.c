/*
 * score.c — keys of a block of queries against a range of rows (see score.h).
 *
 * Cosine and L2: one sgemm (sgemv for a single query, about twice as fast there) gives the
 * dot products, then a pass turns them into keys with the norms. L1: l1_kernel.h compiled
 * for 16-, 32- and 64-byte vectors; the widest the CPU runs is chosen once. Measured on the
 * 2-core AMD EPYC dev box, 1280-d: 4.8 G element-pairs/s for the best scalar loop gcc -O2
 * vectorised itself, 16 with 16-byte vectors, 30 with AVX2, 45 with AVX-512. The rows are
 * walked in slices of about 384 KiB so that the slice stays in L2 while four queries at a
 * time stream over it.
 */
#include "index/score.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define L1_SUFFIX generic
#define L1_VB 16
#define L1_ATTR
#include "index/l1_kernel.h"
#undef L1_SUFFIX
#undef L1_VB
#undef L1_ATTR

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SCORE_X86 1
#define L1_SUFFIX avx2
#define L1_VB 32
#define L1_ATTR __attribute__((target("avx2")))
#include "index/l1_kernel.h"
#undef L1_SUFFIX
#undef L1_VB
#undef L1_ATTR

#define L1_SUFFIX avx512
#define L1_VB 64
#define L1_ATTR __attribute__((target("avx512f")))
#include "index/l1_kernel.h"
#undef L1_SUFFIX
#undef L1_VB
#undef L1_ATTR
#endif

/* The L1 loops of one vector width. */
typedef struct l1_impl {
    float (*pair)(const float *a, const float *b, int dim);
    void (*q1)(const float *q, const float *rows, size_t nr, int dim, float *keys);
    void (*q4)(const float *q, const float *rows, size_t nr, int dim, float *keys, size_t ldk);
} l1_impl;

static l1_impl l1_best;
static pthread_once_t l1_once = PTHREAD_ONCE_INIT;

/* Pick the widest L1 loops this CPU (and OS) supports. */
static void l1_pick(void)
{
    l1_best = (l1_impl){l1_pair_generic, l1_q1_generic, l1_q4_generic};
#ifdef SCORE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        l1_best = (l1_impl){l1_pair_avx512, l1_q1_avx512, l1_q4_avx512};
    else if (__builtin_cpu_supports("avx2"))
        l1_best = (l1_impl){l1_pair_avx2, l1_q1_avx2, l1_q4_avx2};
#endif
}

/* The L1 loops to use. */
static const l1_impl *l1_get(void)
{
    pthread_once(&l1_once, l1_pick);
    return &l1_best;
}

float score_l1_pair(const float *a, const float *b, int dim)
{
    return l1_get()->pair(a, b, dim);
}

/* L1 keys of nq queries against nr rows, blocked so a slice of rows stays in cache. */
static void l1_block(const float *q, size_t nq, const float *rows, size_t nr, int dim,
                     float *keys, size_t ldk)
{
    const l1_impl *f = l1_get();
    size_t slice = (384u * 1024u) / ((size_t)dim * sizeof(float));
    if (slice < 8)
        slice = 8;
    for (size_t j0 = 0; j0 < nr; j0 += slice) {
        size_t nj = nr - j0 < slice ? nr - j0 : slice;
        const float *r = rows + j0 * (size_t)dim;
        size_t i = 0;
        for (; i + 4 <= nq; i += 4)
            f->q4(q + i * (size_t)dim, r, nj, dim, keys + i * ldk + j0, ldk);
        for (; i < nq; i++)
            f->q1(q + i * (size_t)dim, r, nj, dim, keys + i * ldk + j0);
    }
}

void score_block(const exact_set *s, imgsim_metric m, const float *q, const float *qn, size_t nq,
                 size_t r0, size_t nr, float *keys, size_t ldk)
{
    if (nq == 0 || nr == 0)
        return;
    const float *rows = s->vecs + r0 * (size_t)s->dim;
    if (m == IMGSIM_METRIC_L1) {
        l1_block(q, nq, rows, nr, s->dim, keys, ldk);
        return;
    }
    if (nq == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)nr, (blasint)s->dim, 1.0f, rows,
                    (blasint)s->dim, q, 1, 0.0f, keys, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nq, (blasint)nr,
                    (blasint)s->dim, 1.0f, q, (blasint)s->dim, rows, (blasint)s->dim, 0.0f, keys,
                    (blasint)ldk);
    const float *rn = s->norms + r0;
    for (size_t i = 0; i < nq; i++) {
        float *k = keys + i * ldk, a = qn[i];
        if (m == IMGSIM_METRIC_COSINE)
            for (size_t j = 0; j < nr; j++)
                k[j] = score_key_cos(k[j], a, rn[j]);
        else
            for (size_t j = 0; j < nr; j++)
                k[j] = score_key_l2(k[j], a, rn[j]);
    }
}

void score_blas_single(void)
{
    openblas_set_num_threads(1);
}

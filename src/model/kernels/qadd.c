/*
 * qadd.c — ONNX Runtime's QLinearAdd on AVX512, bit for bit (contract in qadd.h).
 */
#include "model/kernels/qadd.h"

#include <immintrin.h>
#include <math.h>

#define TARGET_VL __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

void qadd_init(qadd_params *p, float sa, int32_t za, float sb, int32_t zb, float sc,
               int32_t zc, uint8_t lo, uint8_t hi)
{
    p->ra = sa / sc;
    p->rb = sb / sc;
    /* ONNX Runtime's binary contracts ra * za + rb * zb into one fused multiply-add
     * (verified against onnxruntime-node: every input pair, 43 scale sets) */
    p->fixed = (float)zc - fmaf(p->ra, (float)za, p->rb * (float)zb);
    p->lo = lo;
    p->hi = hi;
}

/* c[i] = add(a[i], b[i]) for i < n (b == NULL: b is already in `fixed`, the scalar case). */
TARGET_VL static void qadd_span(const qadd_params *p, float fixed, const uint8_t *a,
                             const uint8_t *b, size_t n, uint8_t *c)
{
    const __m512 ra = _mm512_set1_ps(p->ra), rb = _mm512_set1_ps(p->rb);
    const __m512 fx = _mm512_set1_ps(fixed);
    const __m512i lo = _mm512_set1_epi32(p->lo), hi = _mm512_set1_epi32(p->hi);
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 af = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, a + i)));
        __m512 v = fx;
        if (b) {
            __m512 bf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, b + i)));
            v = _mm512_fmadd_ps(bf, rb, fx);
        }
        v = _mm512_fmadd_ps(af, ra, v);
        __m512i r = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(v), lo), hi);
        _mm512_mask_cvtepi32_storeu_epi8(c + i, m, r);
    }
}

typedef struct add_task {
    const qadd_params *p;
    float fixed;
    const uint8_t *a, *b;
    size_t blen;
    uint8_t *c;
} add_task;

/* Rows of blen elements (b repeats per row), or spans of a flat array when b is full. */
static void add_rows(void *ctx, size_t r0, size_t rlen)
{
    const add_task *t = ctx;
    size_t w = t->blen;
    if (!t->b) { /* scalar b: r0/rlen count elements */
        qadd_span(t->p, t->fixed, t->a + r0, NULL, rlen, t->c + r0);
        return;
    }
    for (size_t r = r0; r < r0 + rlen; r++)
        qadd_span(t->p, t->fixed, t->a + r * w, t->b, w, t->c + r * w);
}

static void add_flat(void *ctx, size_t i0, size_t len)
{
    const add_task *t = ctx;
    qadd_span(t->p, t->fixed, t->a + i0, t->b + i0, len, t->c + i0);
}

void qadd_run(const qadd_params *p, const uint8_t *a, const uint8_t *b, size_t blen, size_t n,
              uint8_t *c, pthreadpool_t pool)
{
    add_task t = {p, p->fixed, a, b, blen, c};
    size_t threads = pool ? pthreadpool_get_threads_count(pool) : 1;
    if (blen == 1) { /* a single b: fma(a, ra, fma(b, rb, fixed)) all the same */
        t.fixed = fmaf((float)b[0], p->rb, p->fixed);
        t.b = NULL;
        size_t tile = (n + 2 * threads - 1) / (2 * threads);
        tile = (tile + 63) / 64 * 64;
        pthreadpool_parallelize_1d_tile_1d(pool, add_rows, &t, n, tile ? tile : n, 0);
    } else if (blen == n) {
        size_t tile = (n + 2 * threads - 1) / (2 * threads);
        tile = (tile + 63) / 64 * 64;
        pthreadpool_parallelize_1d_tile_1d(pool, add_flat, &t, n, tile ? tile : n, 0);
    } else {
        size_t rows = n / blen;
        pthreadpool_parallelize_1d_tile_1d(pool, add_rows, &t, rows,
                                           (rows + 2 * threads - 1) / (2 * threads), 0);
    }
}

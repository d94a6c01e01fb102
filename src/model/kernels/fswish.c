/*
 * fswish.c — swish / SiLU, y = x * sigmoid(x), in one pass over a float array on AVX512F
 * (contract in fswish.h): the fused form of ONNX's Sigmoid + Mul.
 */
#include "model/kernels/fswish.h"

#include <immintrin.h>

#include "model/kernels/fexp.h"

#define FTARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

typedef struct swish_task {
    const float *x;
    float *y;
    size_t n;
} swish_task;

FTARGET static void swish_span(void *ctx, size_t i0, size_t len)
{
    const swish_task *t = ctx;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = i0; i < i0 + len; i += 16) {
        size_t left = i0 + len - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, t->x + i);
        __m512 e = fexp(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_mask_storeu_ps(t->y + i, m, _mm512_div_ps(x, _mm512_add_ps(one, e)));
    }
}

void fswish_run(const float *x, float *y, size_t n, pthreadpool_t pool)
{
    swish_task t = {x, y, n};
    size_t threads = pool ? pthreadpool_get_threads_count(pool) : 1;
    size_t tile = (n + 2 * threads - 1) / (2 * threads);
    tile = (tile + 255) / 256 * 256;
    pthreadpool_parallelize_1d_tile_1d(pool, swish_span, &t, n, tile ? tile : n, 0);
}

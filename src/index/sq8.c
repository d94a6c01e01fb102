/*
 * sq8.c — int8 scalar quantisation (see sq8.h): fitting the per-dimension ranges, encoding
 * and decoding, and turning a float query into the int8 weights the byte kernels take
 * (portable and AVX-512; building an sq8 index on Myntra took 2.6x as long as f32 with the
 * portable loops, which then cost more than the distances).
 */
#include "index/sq8.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/error.h"

imgsim_status sq8_init(sq8_quant *s, size_t dim_pad, imgsim_error *err)
{
    s->dim_pad = dim_pad;
    s->lo = malloc((dim_pad ? dim_pad : 1) * sizeof(float));
    s->step = malloc((dim_pad ? dim_pad : 1) * sizeof(float));
    s->owned = 1;
    if (!s->lo || !s->step) {
        sq8_free(s);
        return error_set(err, IMGSIM_E_NOMEM, "sq8: out of memory for %zu dimensions", dim_pad);
    }
    for (size_t i = 0; i < dim_pad; i++) {
        s->lo[i] = INFINITY;
        s->step[i] = -INFINITY;
    }
    return IMGSIM_OK;
}

void sq8_observe(sq8_quant *s, const float *x, size_t dim)
{
    for (size_t i = 0; i < dim; i++) {
        float v = x[i];
        if (v < s->lo[i])
            s->lo[i] = v;
        if (v > s->step[i])
            s->step[i] = v;
    }
}

void sq8_finish(sq8_quant *s)
{
    for (size_t i = 0; i < s->dim_pad; i++) {
        float lo = s->lo[i], hi = s->step[i];
        if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi)) {
            s->lo[i] = 0;
            s->step[i] = 0;
        } else {
            s->step[i] = (hi - lo) / 255.0f;
        }
    }
}

void sq8_free(sq8_quant *s)
{
    if (s->owned) {
        free(s->lo);
        free(s->step);
    }
    s->lo = s->step = NULL;
    s->owned = 0;
}

void sq8_encode(const sq8_quant *s, const float *x, uint8_t *code)
{
    for (size_t i = 0; i < s->dim_pad; i++) {
        float st = s->step[i];
        float c = st > 0 ? (x[i] - s->lo[i]) / st : 0.0f;
        c = c < 0 ? 0 : c > 255 ? 255 : c;
        code[i] = (uint8_t)(c == c ? lrintf(c) : 0); /* NaN -> 0 */
    }
}

/* ---- decoding and query preparation run once per query and, while building, once per
 * candidate compared: portable loops, and AVX-512 versions picked at run time. Both round
 * to nearest even (lrintf / vcvtps2dq in the default rounding mode). */

static void decode_generic(const sq8_quant *s, const uint8_t *code, float *x)
{
    for (size_t i = 0; i < s->dim_pad; i++)
        x[i] = s->lo[i] + s->step[i] * (float)code[i];
}

static void prepare_generic(const sq8_quant *s, const float *q, int8_t *w, float *unit,
                            float *bias)
{
    float mx = 0, b = 0;
    for (size_t i = 0; i < s->dim_pad; i++) {
        float v = fabsf(q[i] * s->step[i]);
        if (v > mx)
            mx = v;
        b += q[i] * s->lo[i];
    }
    float u = mx > 0 ? mx / 127.0f : 1.0f, inv = 1.0f / u;
    for (size_t i = 0; i < s->dim_pad; i++) {
        float v = q[i] * s->step[i] * inv;
        v = v < -127 ? -127 : v > 127 ? 127 : v;
        w[i] = (int8_t)(v == v ? lrintf(v) : 0);
    }
    *unit = u;
    *bias = b;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SQ8_X86 1
#include <immintrin.h>

__attribute__((target("avx512f"))) static void decode_avx512(const sq8_quant *s,
                                                             const uint8_t *code, float *x)
{
    for (size_t i = 0; i < s->dim_pad; i += 16) {
        __m512 c = _mm512_cvtepi32_ps(
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(code + i))));
        _mm512_storeu_ps(x + i, _mm512_fmadd_ps(_mm512_loadu_ps(s->step + i), c,
                                                _mm512_loadu_ps(s->lo + i)));
    }
}

__attribute__((target("avx512f"))) static void prepare_avx512(const sq8_quant *s, const float *q,
                                                              int8_t *w, float *unit, float *bias)
{
    __m512 mx = _mm512_setzero_ps(), b = _mm512_setzero_ps();
    for (size_t i = 0; i < s->dim_pad; i += 16) {
        __m512 qi = _mm512_loadu_ps(q + i);
        mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_mul_ps(qi, _mm512_loadu_ps(s->step + i))));
        b = _mm512_fmadd_ps(qi, _mm512_loadu_ps(s->lo + i), b);
    }
    float m = _mm512_reduce_max_ps(mx);
    float u = m > 0 ? m / 127.0f : 1.0f;
    __m512 inv = _mm512_set1_ps(1.0f / u), lo = _mm512_set1_ps(-127.0f),
           hi = _mm512_set1_ps(127.0f);
    for (size_t i = 0; i < s->dim_pad; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(q + i),
                                               _mm512_loadu_ps(s->step + i)), inv);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm_storeu_si128((__m128i *)(w + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    *unit = u;
    *bias = _mm512_reduce_add_ps(b);
}
#endif

typedef struct sq8_impl {
    void (*decode)(const sq8_quant *s, const uint8_t *code, float *x);
    void (*prepare)(const sq8_quant *s, const float *q, int8_t *w, float *unit, float *bias);
} sq8_impl;

static sq8_impl sq8_best = {decode_generic, prepare_generic};
static pthread_once_t sq8_once = PTHREAD_ONCE_INIT;

static void sq8_pick(void)
{
#ifdef SQ8_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        sq8_best = (sq8_impl){decode_avx512, prepare_avx512};
#endif
}

void sq8_decode(const sq8_quant *s, const uint8_t *code, float *x)
{
    pthread_once(&sq8_once, sq8_pick);
    sq8_best.decode(s, code, x);
}

void sq8_prepare_query(const sq8_quant *s, const float *q, int8_t *w, float *unit, float *bias)
{
    pthread_once(&sq8_once, sq8_pick);
    sq8_best.prepare(s, q, w, unit, bias);
}

float sq8_vec_encode(const float *x, size_t dim, int8_t *code)
{
    float mx = 0;
    for (size_t i = 0; i < dim; i++)
        if (fabsf(x[i]) > mx)
            mx = fabsf(x[i]);
    float scale = mx > 0 ? mx / 127.0f : 1.0f;
    for (size_t i = 0; i < dim; i++)
        code[i] = (int8_t)lrintf(x[i] / scale);
    return scale;
}

/*
 * qdwconv.c — exact uint8 depthwise convolution on AVX512 (contract in qconv.h).
 *
 * For each output pixel and block of 32 channels, taps are taken in pairs: both taps' bytes
 * are widened to int16 and interleaved (unpacklo/hi_epi16), so one vpdpwssd multiplies and
 * adds two taps for 16 channels into int32. (x - zx)(w - zw) is computed as
 * x * (w - zw) - zx * sum(w - zw), the second term folded into the bias; padding taps point
 * at a row of input zero points, whose products that fold cancels exactly.
 *
 * The interleave permutes channels within 128-bit lanes: the "lo" accumulator holds channels
 * 8L..8L+3 of lane L, "hi" 8L+4..8L+7. Packed weights and biases use the same order, and
 * packs_epi32(lo, hi) restores channel order for free.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "model/qconv.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define MAX_TAPS 64

struct qdwconv {
    qconv_params p;         /* w and bias pointers are not kept */
    size_t taps, pairs, blocks;
    int16_t *w;             /* [block][pair][lo, hi][32] */
    int32_t *bias;          /* [block][lo, hi][16]: bias - zx * sum(w - zw) */
    uint8_t *zero;          /* blocks * 32 input zero points */
};

void qdwconv_free(qdwconv *q)
{
    if (!q)
        return;
    free(q->w);
    free(q->bias);
    free(q->zero);
    free(q);
}

/* Channel of position j (0..15) of the lo (h = 0) or hi (h = 1) accumulator of a block. */
static size_t lane_channel(size_t j, size_t h)
{
    return 8 * (j / 4) + 4 * h + j % 4;
}

qdwconv *qdwconv_new(const qconv_params *p, int *unsupported)
{
    *unsupported = 1;
    size_t taps = p->kh * p->kw;
    if (!qconv_available() || p->cin != p->cout || p->cin == 0 || taps == 0 ||
        taps > MAX_TAPS || p->scale <= 0.0f || !(p->scale < 65536.0f))
        return NULL;
    *unsupported = 0;
    qdwconv *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->p = *p;
    q->p.w = NULL;
    q->p.bias = NULL;
    q->taps = taps;
    q->pairs = (taps + 1) / 2;
    q->blocks = (p->cin + 31) / 32;
    size_t c = p->cin;
    q->w = aligned_alloc(64, q->blocks * q->pairs * 64 * sizeof(int16_t));
    q->bias = aligned_alloc(64, q->blocks * 32 * sizeof(int32_t));
    q->zero = malloc(q->blocks * 32);
    if (!q->w || !q->bias || !q->zero) {
        qdwconv_free(q);
        return NULL;
    }
    memset(q->zero, p->x_zero_point, q->blocks * 32);
    for (size_t b = 0; b < q->blocks; b++)
        for (size_t h = 0; h < 2; h++)
            for (size_t j = 0; j < 16; j++) {
                size_t ch = b * 32 + lane_channel(j, h);
                int64_t v = 0;
                if (ch < c) {
                    int32_t b0 = 0;
                    if (p->bias)
                        memcpy(&b0, (const uint8_t *)p->bias + 4 * ch, 4);
                    int64_t ws = 0;
                    for (size_t t = 0; t < taps; t++)
                        ws += (int32_t)p->w[t * c + ch] - (int32_t)p->w_zero_point;
                    v = (int64_t)b0 - (int64_t)p->x_zero_point * ws;
                }
                q->bias[(b * 2 + h) * 16 + j] = (int32_t)v;
                for (size_t pr = 0; pr < q->pairs; pr++)
                    for (size_t t2 = 0; t2 < 2; t2++) {
                        size_t t = 2 * pr + t2;
                        int16_t wv = 0;
                        if (ch < c && t < taps)
                            wv = (int16_t)((int32_t)p->w[t * c + ch] - (int32_t)p->w_zero_point);
                        q->w[((b * q->pairs + pr) * 2 + h) * 32 + 2 * j + t2] = wv;
                    }
            }
    return q;
}

typedef struct task {
    const qdwconv *q;
    size_t in_h, in_w, out_h, out_w;
    const uint8_t *x;
    uint8_t *y;
} task;

TARGET static inline __m512i requant(const qconv_params *p, __m512i acc)
{
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(p->scale));
    f = _mm512_min_ps(f, _mm512_set1_ps((float)p->y_max - (float)p->y_zero_point));
    return _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(p->y_zero_point));
}

/* Tap pair `w` (lo, hi weights) of inputs x0, x1 (32 channels widened to int16). */
#define TAP_PAIR(lo, hi, x0, x1, w)                                                          \
    do {                                                                                     \
        lo = _mm512_dpwssd_epi32(lo, _mm512_unpacklo_epi16(x0, x1), _mm512_load_si512(w));    \
        hi = _mm512_dpwssd_epi32(hi, _mm512_unpackhi_epi16(x0, x1), _mm512_load_si512((w) + 32)); \
    } while (0)

TARGET static inline __m512i widen(__mmask32 m, const uint8_t *p)
{
    return _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, p));
}

TARGET static inline void store32(const qconv_params *p, __m512i lo, __m512i hi, __mmask32 m,
                                  uint8_t *y)
{
    const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    __m512i v = _mm512_packs_epi32(requant(p, lo), requant(p, hi));
    v = _mm512_permutexvar_epi64(order, _mm512_packus_epi16(v, v));
    __m256i bytes = _mm256_max_epu8(_mm512_castsi512_si256(v), _mm256_set1_epi8((char)p->y_min));
    _mm256_mask_storeu_epi8(y, m, bytes);
}

/* `np` (1 or 2) output pixels, all channels; tap t of pixel i reads base[i] + off[t] (the
 * channels of one input pixel). Two pixels share each weight load and give the core two
 * independent accumulation chains. */
TARGET static void pixels(const qdwconv *q, int np, const uint8_t *const *base,
                          const ptrdiff_t *off, uint8_t *const *y)
{
    const qconv_params *p = &q->p;
    const int16_t *w = q->w;
    const uint8_t *b0 = base[0], *b1 = base[np - 1];
    for (size_t b = 0; b < q->blocks; b++, b0 += 32, b1 += 32) {
        size_t c0 = b * 32, left = p->cin - c0;
        __mmask32 m = left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1);
        __m512i lo0 = _mm512_load_si512(q->bias + b * 32);
        __m512i hi0 = _mm512_load_si512(q->bias + b * 32 + 16);
        __m512i lo1 = lo0, hi1 = hi0;
        size_t t = 0;
        for (; t + 1 < q->taps; t += 2, w += 64) {
            TAP_PAIR(lo0, hi0, widen(m, b0 + off[t]), widen(m, b0 + off[t + 1]), w);
            TAP_PAIR(lo1, hi1, widen(m, b1 + off[t]), widen(m, b1 + off[t + 1]), w);
        }
        if (t < q->taps) { /* odd tap count: the last tap pairs with zero weights */
            __m512i z = _mm512_setzero_si512();
            TAP_PAIR(lo0, hi0, widen(m, b0 + off[t]), z, w);
            TAP_PAIR(lo1, hi1, widen(m, b1 + off[t]), z, w);
            w += 64;
        }
        store32(p, lo0, hi0, m, y[0] + c0);
        if (np > 1)
            store32(p, lo1, hi1, m, y[1] + c0);
    }
}

/* One border pixel: tap t reads tp[t] (an input pixel or the zero-point row). */
TARGET static void pixel_taps(const qdwconv *q, const uint8_t *const *tp, uint8_t *y)
{
    const qconv_params *p = &q->p;
    const int16_t *w = q->w;
    for (size_t b = 0; b < q->blocks; b++) {
        size_t c0 = b * 32, left = p->cin - c0;
        __mmask32 m = left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1);
        __m512i lo = _mm512_load_si512(q->bias + b * 32);
        __m512i hi = _mm512_load_si512(q->bias + b * 32 + 16);
        size_t t = 0;
        for (; t + 1 < q->taps; t += 2, w += 64)
            TAP_PAIR(lo, hi, widen(m, tp[t] + c0), widen(m, tp[t + 1] + c0), w);
        if (t < q->taps) {
            TAP_PAIR(lo, hi, widen(m, tp[t] + c0), _mm512_setzero_si512(), w);
            w += 64;
        }
        store32(p, lo, hi, m, y + c0);
    }
}

static void run_rows(void *ctx, size_t r0, size_t rlen)
{
    const task *t = ctx;
    const qdwconv *q = t->q;
    const qconv_params *p = &q->p;
    size_t c = p->cin;
    const uint8_t *rows[MAX_TAPS];
    ptrdiff_t off[MAX_TAPS];
    for (size_t r = r0; r < r0 + rlen; r++) {
        size_t img = r / t->out_h, oy = r % t->out_h;
        int all_rows = 1;
        for (size_t ky = 0; ky < p->kh; ky++) {
            size_t iy = oy * p->stride_h + ky * p->dil_h; /* + pad_top offset */
            rows[ky] = iy >= p->pad_top && iy - p->pad_top < t->in_h
                           ? t->x + (img * t->in_h + iy - p->pad_top) * t->in_w * c
                           : NULL;
            all_rows &= rows[ky] != NULL;
        }
        /* interior pixels: every tap inside the image, at a fixed offset from the pixel's
         * first tap column in the first filter row */
        const uint8_t *origin = all_rows ? rows[0] : NULL;
        for (size_t ky = 0, k = 0; ky < p->kh; ky++)
            for (size_t kx = 0; kx < p->kw; kx++, k++)
                off[k] = all_rows ? (rows[ky] - origin) + (ptrdiff_t)(kx * p->dil_w * c) : 0;
        uint8_t *y = t->y + r * t->out_w * c;
        for (size_t ox = 0; ox < t->out_w;) {
            size_t ix0 = ox * p->stride_w, ix1 = ix0 + p->stride_w; /* + pad_left offset */
            size_t span = (p->kw - 1) * p->dil_w;
            int in0 = all_rows && ix0 >= p->pad_left && ix0 - p->pad_left + span < t->in_w;
            int in1 = ox + 1 < t->out_w && in0 && ix1 - p->pad_left + span < t->in_w;
            if (in0) {
                const uint8_t *base[2] = {origin + (ix0 - p->pad_left) * c,
                                          origin + (ix1 - p->pad_left) * c};
                uint8_t *yy[2] = {y + ox * c, y + (ox + 1) * c};
                pixels(q, in1 ? 2 : 1, base, off, yy);
                ox += in1 ? 2 : 1;
                continue;
            }
            /* border pixel: taps outside the image read the zero-point row */
            const uint8_t *tp[MAX_TAPS];
            for (size_t ky = 0, k = 0; ky < p->kh; ky++)
                for (size_t kx = 0; kx < p->kw; kx++, k++) {
                    size_t ix = ix0 + kx * p->dil_w;
                    tp[k] = rows[ky] && ix >= p->pad_left && ix - p->pad_left < t->in_w
                                ? rows[ky] + (ix - p->pad_left) * c
                                : q->zero;
                }
            pixel_taps(q, tp, y + ox * c);
            ox++;
        }
    }
}

void qdwconv_run(const qdwconv *q, size_t n, size_t in_h, size_t in_w, size_t out_h,
                 size_t out_w, const uint8_t *x, uint8_t *y, pthreadpool_t pool)
{
    task t = {q, in_h, in_w, out_h, out_w, x, y};
    size_t rows = n * out_h, threads = pool ? pthreadpool_get_threads_count(pool) : 1;
    size_t tile = (rows + 4 * threads - 1) / (4 * threads);
    pthreadpool_parallelize_1d_tile_1d(pool, run_rows, &t, rows, tile ? tile : 1, 0);
}

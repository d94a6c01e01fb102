/*
 * qdwconv.c — exact uint8 depthwise convolution on AVX512 (contract in qdwconv.h).
 *
 * Two schemes compute the same integer sums. When every w - zw fits int8 (always for ONNX's
 * int8 weights with zero point 0) the "quad" scheme multiplies four taps at once with
 * vpdpbusd (input bytes unsigned, weights signed): per 64 channels, four taps' bytes are
 * interleaved into channel quads by two levels of unpacks (8 shuffles for 4 vpdpbusd), and
 * the three packs of the epilogue put the channels back in order for free. Otherwise the
 * "pair" scheme below (uint8 weights of TFLite files, whose w - zw spans -255..255).
 *
 * For each output pixel and block of 32 channels, taps are taken in pairs: both taps' bytes
 * are widened to int16 and interleaved (unpacklo/hi_epi16), so one vpdpwssd multiplies and
 * adds two taps for 16 channels into int32. (x - zx)(w - zw) is computed as
 * x * (w - zw) - zx * sum(w - zw), the second term folded into the bias; padding taps point
 * at a row of input zero points, whose products that fold cancels exactly.
 *
 * The interleave permutes channels within 128-bit lanes: the "lo" accumulator holds channels
 * 8L..8L+3 of lane L, "hi" 8L+4..8L+7. Packed weights, biases and requantization multipliers
 * use the same order, and packs_epi32(lo, hi) restores channel order for free. Weights may be
 * uint8 or int8 (ONNX), with one multiplier or one per channel: w - zw fits int16 either way.
 */
#include "model/kernels/qdwconv.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define MAX_TAPS QDW_MAX_TAPS

struct qdwconv {
    qconv_params p;         /* w and bias pointers are not kept */
    size_t taps;
    /* quad scheme: channels [0, 64 * qblocks) */
    size_t quads, qblocks;
    int8_t *w8;             /* [block][quad][k][lane L][j][4 taps], channel 16L+4k+j */
    int32_t *bias8;         /* [block][k][16]: bias - zx * sum(w - zw) */
    float *scales8;         /* [block][k][16]: requantization multipliers */
    /* pair scheme: channels [pstart, cin) in blocks of 32 */
    size_t pairs, pstart, pblocks;
    int16_t *w;             /* [block][pair][lo, hi][32] */
    int32_t *bias;          /* [block][lo, hi][16] */
    float *scales;          /* [block][lo, hi][16] */
    uint8_t *zero;          /* a row of input zero points (cin rounded up to 64) */
};

void qdwconv_free(qdwconv *q)
{
    if (!q)
        return;
    free(q->w8);
    free(q->bias8);
    free(q->scales8);
    free(q->w);
    free(q->bias);
    free(q->scales);
    free(q->zero);
    free(q);
}

/* Channel of position j (0..15) of the lo (h = 0) or hi (h = 1) accumulator of a block. */
static size_t lane_channel(size_t j, size_t h)
{
    return 8 * (j / 4) + 4 * h + j % 4;
}

/* bias - zx * sum_t (w_t - zw) of channel ch (0 past the end). */
static int32_t folded_bias(const qconv_params *p, size_t taps, size_t ch)
{
    if (ch >= p->cin)
        return 0;
    int32_t b0 = 0;
    if (p->bias)
        memcpy(&b0, (const uint8_t *)p->bias + 4 * ch, 4);
    int64_t ws = 0;
    for (size_t t = 0; t < taps; t++)
        ws += qconv_weight(p, t * p->cin + ch);
    return (int32_t)((int64_t)b0 - (int64_t)p->x_zero_point * ws);
}

static float chan_scale(const qconv_params *p, size_t ch)
{
    return ch >= p->cin ? 0.0f : p->scales ? p->scales[ch] : p->scale;
}

/* Pack p's weights: whole 64-channel blocks in the quad scheme when every w - zw fits int8,
 * the rest in the pair scheme. 0 when out of memory. */
static int pack(qdwconv *q, const qconv_params *p)
{
    size_t c = p->cin, taps = q->taps;
    int fits = 1;
    for (size_t i = 0; i < taps * c && fits; i++) {
        int32_t v = qconv_weight(p, i);
        fits = v >= -128 && v <= 127;
    }
    q->quads = (taps + 3) / 4;
    q->qblocks = fits ? c / 64 : 0;
    if (q->qblocks) {
        q->w8 = aligned_alloc(64, q->qblocks * q->quads * 256);
        q->bias8 = aligned_alloc(64, q->qblocks * 64 * sizeof(int32_t));
        q->scales8 = aligned_alloc(64, q->qblocks * 64 * sizeof(float));
        if (!q->w8 || !q->bias8 || !q->scales8)
            return 0;
    }
    for (size_t b = 0; b < q->qblocks; b++)
        for (size_t k = 0; k < 4; k++)
            for (size_t i = 0; i < 16; i++) { /* i = 4 * lane + j */
                size_t ch = b * 64 + 16 * (i / 4) + 4 * k + i % 4;
                q->bias8[(b * 4 + k) * 16 + i] = folded_bias(p, taps, ch);
                q->scales8[(b * 4 + k) * 16 + i] = chan_scale(p, ch);
                for (size_t r = 0; r < q->quads; r++)
                    for (size_t t4 = 0; t4 < 4; t4++) {
                        size_t t = 4 * r + t4;
                        int8_t wv = t < taps ? (int8_t)qconv_weight(p, t * c + ch) : 0;
                        q->w8[((b * q->quads + r) * 4 + k) * 64 + 4 * i + t4] = wv;
                    }
            }
    q->pstart = q->qblocks * 64;
    q->pairs = (taps + 1) / 2;
    q->pblocks = (c - q->pstart + 31) / 32;
    if (!q->pblocks)
        return 1;
    q->w = aligned_alloc(64, q->pblocks * q->pairs * 64 * sizeof(int16_t));
    q->bias = aligned_alloc(64, q->pblocks * 32 * sizeof(int32_t));
    q->scales = aligned_alloc(64, q->pblocks * 32 * sizeof(float));
    if (!q->w || !q->bias || !q->scales)
        return 0;
    for (size_t b = 0; b < q->pblocks; b++)
        for (size_t h = 0; h < 2; h++)
            for (size_t j = 0; j < 16; j++) {
                size_t ch = q->pstart + b * 32 + lane_channel(j, h);
                q->bias[(b * 2 + h) * 16 + j] = folded_bias(p, taps, ch);
                q->scales[(b * 2 + h) * 16 + j] = chan_scale(p, ch);
                for (size_t pr = 0; pr < q->pairs; pr++)
                    for (size_t t2 = 0; t2 < 2; t2++) {
                        size_t t = 2 * pr + t2;
                        int16_t wv = 0;
                        if (ch < c && t < taps)
                            wv = (int16_t)qconv_weight(p, t * c + ch);
                        q->w[((b * q->pairs + pr) * 2 + h) * 32 + 2 * j + t2] = wv;
                    }
            }
    return 1;
}

qdwconv *qdwconv_new(const qconv_params *p, int *unsupported)
{
    *unsupported = 1;
    if (!qconv_supported(p, 1))
        return NULL;
    *unsupported = 0;
    qdwconv *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->p = *p;
    q->p.w = NULL;
    q->p.bias = NULL;
    q->p.scales = NULL;
    q->taps = p->kh * p->kw;
    size_t zbytes = (p->cin + 63) / 64 * 64;
    q->zero = malloc(zbytes);
    if (!q->zero || !pack(q, p)) {
        qdwconv_free(q);
        return NULL;
    }
    memset(q->zero, p->x_zero_point, zbytes);
    return q;
}

typedef struct task {
    const qdwconv *q;
    size_t in_h, in_w, out_h, out_w;
    const uint8_t *x;
    uint8_t *y;
} task;

TARGET static inline __m512i requant(const qconv_params *p, __m512i acc, const float *scale)
{
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_load_ps(scale));
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

/* Block `b`'s accumulators requantized, packed to bytes and stored (mask m). */
TARGET static inline void store32(const qdwconv *q, size_t b, __m512i lo, __m512i hi,
                                  __mmask32 m, uint8_t *y)
{
    const qconv_params *p = &q->p;
    const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    const float *sc = q->scales + b * 32; /* pair block b */
    __m512i v = _mm512_packs_epi32(requant(p, lo, sc), requant(p, hi, sc + 16));
    v = _mm512_permutexvar_epi64(order, _mm512_packus_epi16(v, v));
    __m256i bytes = _mm256_max_epu8(_mm512_castsi512_si256(v), _mm256_set1_epi8((char)p->y_min));
    _mm256_mask_storeu_epi8(y, m, bytes);
}

/* `np` (1 or 2) output pixels, the pair scheme's channels; tap t of pixel i reads
 * base[i] + off[t] (the channels of one input pixel). Two pixels share each weight load and
 * give the core two independent accumulation chains. */
TARGET static void pixels(const qdwconv *q, int np, const uint8_t *const *base,
                          const ptrdiff_t *off, uint8_t *const *y)
{
    const qconv_params *p = &q->p;
    const int16_t *w = q->w;
    const uint8_t *b0 = base[0] + q->pstart, *b1 = base[np - 1] + q->pstart;
    for (size_t b = 0; b < q->pblocks; b++, b0 += 32, b1 += 32) {
        size_t c0 = q->pstart + b * 32, left = p->cin - c0;
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
        store32(q, b, lo0, hi0, m, y[0] + c0);
        if (np > 1)
            store32(q, b, lo1, hi1, m, y[1] + c0);
    }
}

/* One border pixel, the pair scheme's channels: tap t reads tp[t] (an input pixel or the
 * zero-point row). */
TARGET static void pixel_taps(const qdwconv *q, const uint8_t *const *tp, uint8_t *y)
{
    const qconv_params *p = &q->p;
    const int16_t *w = q->w;
    for (size_t b = 0; b < q->pblocks; b++) {
        size_t c0 = q->pstart + b * 32, left = p->cin - c0;
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
        store32(q, b, lo, hi, m, y + c0);
    }
}

/* ---------------------------------------------------------------- quad scheme */

/* Four taps' bytes (64 channels each) into the four channel-quad vectors of vpdpbusd:
 * q[k] lane L dword j = channel 16L+4k+j, taps 0..3. */
#define QUADS(x0, x1, x2, x3, q0, q1, q2, q3)                                               \
    do {                                                                                     \
        __m512i a_ = _mm512_unpacklo_epi8(x0, x1), b_ = _mm512_unpackhi_epi8(x0, x1);         \
        __m512i c_ = _mm512_unpacklo_epi8(x2, x3), d_ = _mm512_unpackhi_epi8(x2, x3);         \
        q0 = _mm512_unpacklo_epi16(a_, c_);                                                  \
        q1 = _mm512_unpackhi_epi16(a_, c_);                                                  \
        q2 = _mm512_unpacklo_epi16(b_, d_);                                                  \
        q3 = _mm512_unpackhi_epi16(b_, d_);                                                  \
    } while (0)

#define DOT4(acc, q, w)                                                                      \
    do {                                                                                     \
        acc##0 = _mm512_dpbusd_epi32(acc##0, q##0, _mm512_load_si512(w));                    \
        acc##1 = _mm512_dpbusd_epi32(acc##1, q##1, _mm512_load_si512((w) + 64));             \
        acc##2 = _mm512_dpbusd_epi32(acc##2, q##2, _mm512_load_si512((w) + 128));            \
        acc##3 = _mm512_dpbusd_epi32(acc##3, q##3, _mm512_load_si512((w) + 192));            \
    } while (0)

/* Quad block `b`'s four accumulators requantized and stored in channel order: packs within
 * 128-bit lanes give channels 16L..16L+15 in lane L, as wanted. */
TARGET static inline void store64(const qdwconv *q, size_t b, __m512i a0, __m512i a1,
                                  __m512i a2, __m512i a3, uint8_t *y)
{
    const qconv_params *p = &q->p;
    const float *sc = q->scales8 + b * 64;
    __m512i v01 = _mm512_packs_epi32(requant(p, a0, sc), requant(p, a1, sc + 16));
    __m512i v23 = _mm512_packs_epi32(requant(p, a2, sc + 32), requant(p, a3, sc + 48));
    __m512i v = _mm512_max_epu8(_mm512_packus_epi16(v01, v23), _mm512_set1_epi8((char)p->y_min));
    _mm512_storeu_si512(y, v);
}

/* As pixels(), the quad scheme's channels: off[] holds quads * 4 offsets (dummy taps: any
 * valid offset, their weights are zero). */
TARGET static void pixels4(const qdwconv *q, int np, const uint8_t *const *base,
                           const ptrdiff_t *off, uint8_t *const *y)
{
    const int8_t *w = q->w8;
    const uint8_t *b0 = base[0], *b1 = base[np - 1];
    for (size_t b = 0; b < q->qblocks; b++, b0 += 64, b1 += 64) {
        size_t c0 = b * 64;
        const int32_t *bias = q->bias8 + b * 64;
        __m512i s0 = _mm512_load_si512(bias), s1 = _mm512_load_si512(bias + 16);
        __m512i s2 = _mm512_load_si512(bias + 32), s3 = _mm512_load_si512(bias + 48);
        __m512i t0 = s0, t1 = s1, t2 = s2, t3 = s3;
        for (size_t r = 0; r < q->quads; r++, w += 256) {
            const ptrdiff_t *o = off + 4 * r;
            __m512i x0, x1, x2, x3, u0, u1, u2, u3;
            x0 = _mm512_loadu_si512(b0 + o[0]);
            x1 = _mm512_loadu_si512(b0 + o[1]);
            x2 = _mm512_loadu_si512(b0 + o[2]);
            x3 = _mm512_loadu_si512(b0 + o[3]);
            QUADS(x0, x1, x2, x3, u0, u1, u2, u3);
            DOT4(s, u, w);
            if (np > 1) {
                x0 = _mm512_loadu_si512(b1 + o[0]);
                x1 = _mm512_loadu_si512(b1 + o[1]);
                x2 = _mm512_loadu_si512(b1 + o[2]);
                x3 = _mm512_loadu_si512(b1 + o[3]);
                QUADS(x0, x1, x2, x3, u0, u1, u2, u3);
                DOT4(t, u, w);
            }
        }
        store64(q, b, s0, s1, s2, s3, y[0] + c0);
        if (np > 1)
            store64(q, b, t0, t1, t2, t3, y[1] + c0);
    }
}

/* As pixel_taps(), the quad scheme's channels: tp[] holds quads * 4 pointers. */
TARGET static void pixel_taps4(const qdwconv *q, const uint8_t *const *tp, uint8_t *y)
{
    const int8_t *w = q->w8;
    for (size_t b = 0; b < q->qblocks; b++) {
        size_t c0 = b * 64;
        const int32_t *bias = q->bias8 + b * 64;
        __m512i s0 = _mm512_load_si512(bias), s1 = _mm512_load_si512(bias + 16);
        __m512i s2 = _mm512_load_si512(bias + 32), s3 = _mm512_load_si512(bias + 48);
        for (size_t r = 0; r < q->quads; r++, w += 256) {
            const uint8_t *const *t = tp + 4 * r;
            __m512i u0, u1, u2, u3;
            QUADS(_mm512_loadu_si512(t[0] + c0), _mm512_loadu_si512(t[1] + c0),
                  _mm512_loadu_si512(t[2] + c0), _mm512_loadu_si512(t[3] + c0), u0, u1, u2, u3);
            DOT4(s, u, w);
        }
        store64(q, b, s0, s1, s2, s3, y + c0);
    }
}

static void run_rows(void *ctx, size_t r0, size_t rlen)
{
    const task *t = ctx;
    const qdwconv *q = t->q;
    const qconv_params *p = &q->p;
    size_t c = p->cin;
    const uint8_t *rows[MAX_TAPS];
    ptrdiff_t off[MAX_TAPS + 3];
    size_t ntaps = 4 * q->quads; /* with the quad scheme's dummies */
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
        for (size_t k = q->taps; k < ntaps; k++)
            off[k] = 0;
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
                if (q->qblocks)
                    pixels4(q, in1 ? 2 : 1, base, off, yy);
                if (q->pblocks)
                    pixels(q, in1 ? 2 : 1, base, off, yy);
                ox += in1 ? 2 : 1;
                continue;
            }
            /* border pixel: taps outside the image read the zero-point row */
            const uint8_t *tp[MAX_TAPS + 3];
            for (size_t ky = 0, k = 0; ky < p->kh; ky++)
                for (size_t kx = 0; kx < p->kw; kx++, k++) {
                    size_t ix = ix0 + kx * p->dil_w;
                    tp[k] = rows[ky] && ix >= p->pad_left && ix - p->pad_left < t->in_w
                                ? rows[ky] + (ix - p->pad_left) * c
                                : q->zero;
                }
            for (size_t k = q->taps; k < ntaps; k++)
                tp[k] = q->zero;
            if (q->qblocks)
                pixel_taps4(q, tp, y + ox * c);
            if (q->pblocks)
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

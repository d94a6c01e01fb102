/*
 * qconv.c — imgsim's own convolution kernels (contracts and arithmetic in qconv.h): the exact
 * uint8/int8 convolution as an AVX512-VNNI GEMM (qconv), the fp32 convolution as an AVX512F
 * indirect GEMM (fconv) with an optional swish epilogue, a one-pass fp32 swish, and ONNX
 * Runtime's QLinearAdd and QLinearGlobalAveragePool (qadd, qgap). Depthwise: qdwconv.c.
 *
 * qconv layout. Output channels are cut into groups of up to 64 (four 16-lane blocks); the
 * packed weights of a group are [k/4][block][16 channels][4 k] int8 (w - 128 for uint8
 * weights, w itself for int8 ones), so the kernel reads them as one sequential stream.
 * Requantization multipliers are kept per channel (all equal for per-tensor weights: the
 * same arithmetic). The kernel computes MR = 6 output pixels (1-5 at tails and for tiny
 * GEMMs such as a batch-1 classifier) x one group: 24 zmm accumulators, per 4 k: 4 weight
 * loads, 6 broadcasts of 4 input bytes, 24 vpdpbusd.
 *
 * Threads: tiles of `tm` pixels x one group, tm chosen so a tile holds a few hundred
 * thousand multiply-adds yet every thread gets several tiles. Pointwise convolutions (1x1,
 * stride 1, no padding) read the activation rows in place; other shapes gather each tile's
 * patches (im2col, zero point for padding) into a stack buffer first.
 */
#include "model/kernels/qconv.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MR 6
#define GROUP 64                /* output channels per packed group */
#define IM2COL_BYTES 32768      /* per-tile patch buffer (stack) */

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define TARGET_VL __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* GCC 12's partial redundancy elimination turns the kernel's 24 accumulators into stack
 * traffic (a spill and reload per multiply-add); without it they stay in registers. */
#pragma GCC optimize("no-tree-pre")

struct qconv {
    qconv_params p;         /* w and bias pointers are not kept */
    size_t k, kp;           /* reduction length and it rounded up to 4 */
    size_t ngroups;
    int direct;             /* 1x1, stride 1, no padding: read rows in place */
    int8_t *w;              /* packed, 64-byte aligned */
    int32_t *bias;          /* per channel (padded to the groups): bias - zx * sum(w - zw) */
    float *scales;          /* per channel (padded): requantization multipliers */
    int32_t rs_mul;         /* 128 - zw (uint8 weights) or -zw (int8): weight of each
                             * pixel's byte sum; 0 for int8 weights with zero point 0 */
};

int qconv_available(void)
{
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    }
    return known;
}

/* Requantization multipliers usable by the kernels' epilogue (which clamps only above in
 * float and relies on saturating packs below). */
static int scales_ok(const qconv_params *p)
{
    if (!p->scales)
        return p->scale > 0.0f && p->scale < 65536.0f;
    for (size_t c = 0; c < p->cout; c++)
        if (!(p->scales[c] >= 0.0f && p->scales[c] < 65536.0f))
            return 0;
    return 1;
}

int qconv_supported(const qconv_params *p, int depthwise)
{
    if (!qconv_available() || p->cin == 0 || p->cout == 0 || !scales_ok(p))
        return 0;
    if (p->w_signed ? p->w_zero_point < -128 || p->w_zero_point > 127
                    : p->w_zero_point < 0 || p->w_zero_point > 255)
        return 0;
    if (depthwise) {
        size_t taps = p->kh * p->kw;
        return p->cin == p->cout && taps > 0 && taps <= QDW_MAX_TAPS;
    }
    size_t k = p->kh * p->kw * p->cin, kp = (k + 3) / 4 * 4;
    int direct = p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                 p->pad_top == 0 && p->pad_left == 0 && k % 4 == 0;
    return direct || kp * MR <= IM2COL_BYTES;
}

/* Weight i of a channel as a signed value (int8 bytes, or uint8) minus its zero point. */
int32_t qconv_weight(const qconv_params *p, size_t i)
{
    int32_t v = p->w_signed ? (int32_t)(int8_t)p->w[i] : (int32_t)p->w[i];
    return v - p->w_zero_point;
}

static size_t group_blocks(const qconv *q, size_t g)
{
    size_t left = q->p.cout - g * GROUP;
    return left >= GROUP ? GROUP / 16 : (left + 15) / 16;
}

void qconv_free(qconv *q)
{
    if (!q)
        return;
    free(q->w);
    free(q->bias);
    free(q->scales);
    free(q);
}

qconv *qconv_new(const qconv_params *p, int *unsupported)
{
    *unsupported = 1;
    if (!qconv_supported(p, 0))
        return NULL;
    size_t k = p->kh * p->kw * p->cin, kp = (k + 3) / 4 * 4;
    int direct = p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                 p->pad_top == 0 && p->pad_left == 0 && k % 4 == 0;
    *unsupported = 0;
    qconv *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->p = *p;
    q->p.w = NULL;
    q->p.bias = NULL;
    q->p.scales = NULL;
    q->k = k;
    q->kp = kp;
    q->direct = direct;
    q->ngroups = (p->cout + GROUP - 1) / GROUP;
    int32_t off = p->w_signed ? 0 : 128; /* stored weight = w - off, an int8 */
    q->rs_mul = off - p->w_zero_point;
    size_t npad = q->ngroups * GROUP;
    size_t wbytes = q->ngroups * kp * GROUP;
    q->w = aligned_alloc(64, wbytes);
    q->bias = aligned_alloc(64, npad * sizeof(int32_t));
    q->scales = aligned_alloc(64, npad * sizeof(float));
    if (!q->w || !q->bias || !q->scales) {
        qconv_free(q);
        return NULL;
    }
    memset(q->w, 0, wbytes);
    for (size_t n = 0; n < npad; n++) {
        int32_t b = 0;
        if (n < p->cout) {
            if (p->bias)
                memcpy(&b, (const uint8_t *)p->bias + 4 * n, 4);
            int64_t ws = 0;
            for (size_t i = 0; i < k; i++)
                ws += qconv_weight(p, n * k + i);
            b = (int32_t)((int64_t)b - (int64_t)p->x_zero_point * ws);
        }
        q->bias[n] = b;
        q->scales[n] = n >= p->cout ? 0.0f : p->scales ? p->scales[n] : p->scale;
    }
    for (size_t g = 0; g < q->ngroups; g++) {
        size_t nb = group_blocks(q, g);
        int8_t *wg = q->w + g * kp * GROUP;
        for (size_t k4 = 0; k4 < kp / 4; k4++)
            for (size_t b = 0; b < nb; b++)
                for (size_t j = 0; j < 16; j++) {
                    size_t n = g * GROUP + b * 16 + j;
                    for (size_t t = 0; t < 4; t++) {
                        size_t i = k4 * 4 + t;
                        int8_t v = 0;
                        if (n < p->cout && i < k)
                            v = (int8_t)(qconv_weight(p, n * k + i) + p->w_zero_point - off);
                        wg[((k4 * nb + b) * 16 + j) * 4 + t] = v;
                    }
                }
    }
    return q;
}

/* ---------------------------------------------------------------- kernel */

/* Sum of the first `k` bytes of a row. */
TARGET static inline __attribute__((always_inline)) int32_t row_sum(const uint8_t *a, size_t k)
{
    __m512i s = _mm512_setzero_si512(), z = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= k; i += 64)
        s = _mm512_add_epi64(s, _mm512_sad_epu8(_mm512_loadu_si512(a + i), z));
    if (i < k) {
        __mmask64 m = _cvtu64_mask64(~0ULL >> (64 - (k - i)));
        s = _mm512_add_epi64(s, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(m, a + i), z));
    }
    return (int32_t)_mm512_reduce_add_epi64(s);
}

/* Requantize one accumulator vector to int32 in [.., y_max] (y_min applied on bytes). */
TARGET static inline __attribute__((always_inline)) __m512i requant(const qconv *q, __m512i acc,
                                                                    __m512 scale)
{
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
    f = _mm512_min_ps(f, _mm512_set1_ps((float)q->p.y_max - (float)q->p.y_zero_point));
    return _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(q->p.y_zero_point));
}

/* Four requantized vectors (channels 0-15, 16-31, ...) to 64 bytes in channel order, the
 * first `left` stored. packs/packus saturate per 128-bit lane; the permute undoes that. */
TARGET static inline __attribute__((always_inline)) void
store64(const qconv *q, __m512i v0, __m512i v1, __m512i v2, __m512i v3, size_t left, uint8_t *y)
{
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i b = _mm512_packus_epi16(_mm512_packs_epi32(v0, v1), _mm512_packs_epi32(v2, v3));
    b = _mm512_permutexvar_epi32(order, b);
    b = _mm512_max_epu8(b, _mm512_set1_epi8((char)q->p.y_min));
    if (left >= 64)
        _mm512_storeu_si512(y, b);
    else
        _mm512_mask_storeu_epi8(y, _cvtu64_mask64(~0ULL >> (64 - left)), b);
}

/* Accumulators are named variables, not an array: GCC keeps arrays of vectors on the
 * stack. c<row><block>; blocks >= nb are dead code in each instantiation. */
#define FOR_BLOCKS(X, r) X(r, 0) X(r, 1) X(r, 2) X(r, 3)
#define FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define DECL(r, b) __m512i c##r##b = _mm512_setzero_si512();
#define DECL_ROW(r) FOR_BLOCKS(DECL, r)
#define INIT(r, b) if (nb > b) c##r##b = _mm512_add_epi32(rs, _mm512_load_si512(bias + 16 * b));
#define INIT_ROW(r)                                                                          \
    if (mr > r) {                                                                            \
        __m512i rs = _mm512_set1_epi32(sums[r]);                                             \
        FOR_BLOCKS(INIT, r)                                                                  \
    }
#define DOT(r, b) if (nb > b) c##r##b = _mm512_dpbusd_epi32(c##r##b, xv, w##b);
#define DOT_ROW(r)                                                                           \
    if (mr > r) {                                                                            \
        int32_t x4;                                                                          \
        memcpy(&x4, a[r] + k, 4);                                                            \
        __m512i xv = _mm512_set1_epi32(x4);                                                  \
        FOR_BLOCKS(DOT, r)                                                                   \
    }
#define REQUANT(r, b) if (nb > b) c##r##b = requant(q, c##r##b, s##b);
#define STORE_ROW(r)                                                                         \
    if (r < mr) {                                                                            \
        FOR_BLOCKS(REQUANT, r)                                                               \
        store64(q, c##r##0, c##r##1, c##r##2, c##r##3, left, y[r]);                          \
    }

/* mr rows `a` (kp bytes each, kp % 4 == 0) x group `g` (nb blocks of 16) into rows `y`.
 * nb and mr are constants in each instantiation below. */
TARGET static inline __attribute__((always_inline)) void
kernel(const qconv *q, size_t g, const int nb, const int mr, const uint8_t *const *a,
       uint8_t *const *y)
{
    const int32_t *bias = q->bias + g * GROUP;
    int32_t sums[MR] = {0};
    if (q->rs_mul)
        for (int r = 0; r < mr; r++)
            sums[r] = q->rs_mul * row_sum(a[r], q->k);
    FOR_ROWS(DECL_ROW)
    FOR_ROWS(INIT_ROW)
    const int8_t *w = q->w + g * q->kp * GROUP;
    for (size_t k = 0; k < q->kp; k += 4) {
        __m512i w0 = _mm512_load_si512(w), w1 = w0, w2 = w0, w3 = w0;
        if (nb > 1) w1 = _mm512_load_si512(w + 64);
        if (nb > 2) w2 = _mm512_load_si512(w + 128);
        if (nb > 3) w3 = _mm512_load_si512(w + 192);
        w += 64 * nb;
        FOR_ROWS(DOT_ROW)
    }
    size_t left = q->p.cout - g * GROUP;
    left = left < GROUP ? left : GROUP;
    const float *sc = q->scales + g * GROUP;
    __m512 s0 = _mm512_load_ps(sc), s1 = s0, s2 = s0, s3 = s0;
    if (nb > 1) s1 = _mm512_load_ps(sc + 16);
    if (nb > 2) s2 = _mm512_load_ps(sc + 32);
    if (nb > 3) s3 = _mm512_load_ps(sc + 48);
    FOR_ROWS(STORE_ROW)
}

typedef void (*kernel_fn)(const qconv *, size_t, const uint8_t *const *, uint8_t *const *);

#define KERNEL(NB, R)                                                                        \
    TARGET static void kernel_##NB##x##R(const qconv *q, size_t g, const uint8_t *const *a,  \
                                         uint8_t *const *y)                                  \
    {                                                                                        \
        kernel(q, g, NB, R, a, y);                                                           \
    }
#define KERNELS(NB) KERNEL(NB, 1) KERNEL(NB, 2) KERNEL(NB, 3) KERNEL(NB, 4) KERNEL(NB, 5) KERNEL(NB, 6)
KERNELS(1)
KERNELS(2)
KERNELS(3)
KERNELS(4)

/* [blocks in the group][rows] */
#define ROW_KERNELS(NB)                                                                      \
    {NULL, kernel_##NB##x1, kernel_##NB##x2, kernel_##NB##x3, kernel_##NB##x4,                \
     kernel_##NB##x5, kernel_##NB##x6}
static const kernel_fn kernels[5][MR + 1] = {
    {NULL}, ROW_KERNELS(1), ROW_KERNELS(2), ROW_KERNELS(3), ROW_KERNELS(4)};

/* ---------------------------------------------------------------- tiles and threads */

typedef struct task {
    const qconv *q;
    size_t in_h, in_w, out_h, out_w;
    const uint8_t *x;
    uint8_t *y;
} task;

/* Copy n bytes; short runs (the usual case: kw * cin of a first layer) without a call. */
TARGET static inline void copy_bytes(uint8_t *d, const uint8_t *src, size_t n)
{
    if (n <= 64) {
        __mmask64 m = _cvtu64_mask64(n ? ~0ULL >> (64 - n) : 0);
        _mm512_mask_storeu_epi8(d, m, _mm512_maskz_loadu_epi8(m, src));
    } else {
        memcpy(d, src, n);
    }
}

/* Patch rows for output pixels m0 .. m0+mlen-1 into buf (kp bytes each). A filter row lying
 * wholly inside the image with dilation 1 is one contiguous run of kw * cin bytes. */
TARGET static void im2col(const task *t, size_t m0, size_t mlen, uint8_t *buf)
{
    const qconv_params *p = &t->q->p;
    size_t kp = t->q->kp, hw = t->out_h * t->out_w, cin = p->cin;
    size_t img = m0 / hw, oy = m0 % hw / t->out_w, ox = m0 % t->out_w;
    for (size_t r = 0; r < mlen; r++) {
        if (r) { /* next pixel without divisions */
            if (++ox == t->out_w) {
                ox = 0;
                if (++oy == t->out_h) {
                    oy = 0;
                    img++;
                }
            }
        }
        uint8_t *d = buf + r * kp;
        size_t ix0 = ox * p->stride_w; /* + pad_left offset */
        int row_inside = p->dil_w == 1 && ix0 >= p->pad_left &&
                         ix0 - p->pad_left + p->kw <= t->in_w;
        for (size_t ky = 0; ky < p->kh; ky++) {
            size_t iy = oy * p->stride_h + ky * p->dil_h; /* + pad_top offset */
            int yin = iy >= p->pad_top && iy - p->pad_top < t->in_h;
            const uint8_t *src = t->x + ((img * t->in_h + iy - p->pad_top) * t->in_w) * cin;
            if (yin && row_inside) {
                copy_bytes(d, src + (ix0 - p->pad_left) * cin, p->kw * cin);
                d += p->kw * cin;
                continue;
            }
            for (size_t kx = 0; kx < p->kw; kx++, d += cin) {
                size_t ix = ix0 + kx * p->dil_w;
                if (yin && ix >= p->pad_left && ix - p->pad_left < t->in_w)
                    copy_bytes(d, src + (ix - p->pad_left) * cin, cin);
                else
                    memset(d, p->x_zero_point, cin);
            }
        }
        memset(d, 0, kp - t->q->k); /* k padding: weights there are zero, sums must be too */
    }
}

static void run_tile(void *ctx, size_t m0, size_t g, size_t mlen, size_t glen)
{
    const task *t = ctx;
    const qconv *q = t->q;
    _Alignas(64) uint8_t buf[IM2COL_BYTES];
    const uint8_t *rows = t->x + m0 * q->p.cin;
    size_t stride = q->p.cin;
    if (!q->direct) {
        im2col(t, m0, mlen, buf);
        rows = buf;
        stride = q->kp;
    }
    for (size_t gi = g; gi < g + glen; gi++) {
        const kernel_fn *kern = kernels[group_blocks(q, gi)];
        for (size_t r0 = 0; r0 < mlen; r0 += MR) {
            size_t mr = mlen - r0 < MR ? mlen - r0 : MR;
            const uint8_t *a[MR];
            uint8_t *y[MR];
            for (size_t r = 0; r < mr; r++) {
                a[r] = rows + (r0 + r) * stride;
                y[r] = t->y + (m0 + r0 + r) * q->p.cout + gi * GROUP;
            }
            kern[mr](q, gi, a, y);
        }
    }
}

void qconv_run(const qconv *q, size_t n, size_t in_h, size_t in_w, size_t out_h, size_t out_w,
               const uint8_t *x, uint8_t *y, pthreadpool_t pool)
{
    task t = {q, in_h, in_w, out_h, out_w, x, y};
    size_t m = n * out_h * out_w;
    /* ~200k multiply-adds per (tile x 64 channels); patch buffers bound im2col tiles */
    size_t tm = MR * (3072 / q->kp + 1);
    if (!q->direct && tm * q->kp > IM2COL_BYTES)
        tm = IM2COL_BYTES / q->kp / MR * MR;
    size_t threads = pool ? pthreadpool_get_threads_count(pool) : 1;
    while (tm > MR && threads > 1 && (m + tm - 1) / tm * q->ngroups < 4 * threads)
        tm = (tm / 2 + MR - 1) / MR * MR;
    pthreadpool_parallelize_2d_tile_2d(pool, run_tile, &t, m, q->ngroups, tm, 1, 0);
}

/* ---------------------------------------------------------------- QLinearAdd, global pool */

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

TARGET_VL void qgap_run(const uint8_t *x, size_t n, size_t hw, size_t c, float sx, int32_t zx,
                     float sy, int32_t zy, uint8_t lo, uint8_t hi, uint8_t *y)
{
    float scale = sx / (sy * (float)hw);
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512 vlo = _mm512_set1_ps((float)lo - (float)zy);
    const __m512 vhi = _mm512_set1_ps((float)hi - (float)zy);
    const __m512i bias = _mm512_set1_epi32(-zx * (int32_t)hw), vz = _mm512_set1_epi32(zy);
    for (size_t img = 0; img < n; img++) {
        const uint8_t *xi = x + img * hw * c;
        for (size_t c0 = 0; c0 < c; c0 += 16) {
            size_t left = c - c0;
            __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __m512i acc = _mm512_setzero_si512();
            for (size_t px = 0; px < hw; px++)
                acc = _mm512_add_epi32(acc, _mm512_cvtepu8_epi32(
                                                _mm_maskz_loadu_epi8(m, xi + px * c + c0)));
            __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, bias)), vs);
            f = _mm512_min_ps(_mm512_max_ps(f, vlo), vhi);
            __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(f), vz);
            _mm512_mask_cvtepi32_storeu_epi8(y + img * c + c0, m, r);
        }
    }
}

/* ---------------------------------------------------------------- fp32: fconv */

#define FMR 6
#define FGROUP 64
#define FMAX_TAPS 64            /* per-tap row pointers on the stack; more: patch rows */
#define FPATCH_FLOATS 4096      /* patch rows of small-cin convolutions: 6 x K floats */
#define FTARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

struct fconv {
    fconv_params p;         /* w and bias pointers are not kept */
    size_t k, kc;           /* reduction length; chunk of it accumulated at a time */
    size_t ngroups;
    float *w;               /* group g at w + g * k * 64: [k][nb * 16] */
    float *bias;            /* ngroups * 64 */
    float *zero;            /* cin zeros: the input row of a padding tap */
    int direct;             /* 1x1, stride 1, no padding */
};

int fconv_available(void)
{
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl");
    }
    return known;
}

static size_t fgroup_blocks(const fconv *f, size_t g)
{
    size_t left = f->p.cout - g * FGROUP;
    return left >= FGROUP ? FGROUP / 16 : (left + 15) / 16;
}

void fconv_free(fconv *f)
{
    if (!f)
        return;
    free(f->w);
    free(f->bias);
    free(f->zero);
    free(f);
}

fconv *fconv_new(const fconv_params *p, int *unsupported)
{
    *unsupported = 1;
    if (!fconv_available() || p->cin == 0 || p->cout == 0 || p->kh == 0 || p->kw == 0 ||
        p->stride_h == 0 || p->stride_w == 0 || p->dil_h == 0 || p->dil_w == 0)
        return NULL;
    *unsupported = 0;
    fconv *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->p = *p;
    f->p.w = NULL;
    f->p.bias = NULL;
    f->k = p->kh * p->kw * p->cin;
    f->direct = p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                p->pad_top == 0 && p->pad_left == 0;
    if (p->kh * p->kw > FMAX_TAPS && f->k * FMR > FPATCH_FLOATS) {
        free(f);
        *unsupported = 1; /* huge windows: XNNPACK */
        return NULL;
    }
    /* a group's packed weights beyond ~384 KB leave L2 between row tiles: chunk K */
    f->kc = f->k <= 1536 ? f->k : 512;
    f->ngroups = (p->cout + FGROUP - 1) / FGROUP;
    f->w = aligned_alloc(64, f->ngroups * f->k * FGROUP * sizeof(float));
    f->bias = aligned_alloc(64, f->ngroups * FGROUP * sizeof(float));
    f->zero = calloc(p->cin + 16, sizeof(float));
    if (!f->w || !f->bias || !f->zero) {
        fconv_free(f);
        return NULL;
    }
    for (size_t n = 0; n < f->ngroups * FGROUP; n++)
        f->bias[n] = n < p->cout && p->bias ? p->bias[n] : 0.0f;
    for (size_t g = 0; g < f->ngroups; g++) {
        size_t nb = fgroup_blocks(f, g);
        float *wg = f->w + g * f->k * FGROUP;
        for (size_t k = 0; k < f->k; k++)
            for (size_t j = 0; j < nb * 16; j++) {
                size_t n = g * FGROUP + j;
                wg[k * nb * 16 + j] = n < p->cout ? p->w[n * f->k + k] : 0.0f;
            }
    }
    return f;
}

/* exp(z) for z in [-87, 88]: z = n ln2 + r, |r| <= ln2 / 2, exp(r) by a degree-6 Taylor
 * polynomial (error < 2e-7 relative), times 2^n. */
FTARGET static inline __m512 fexp(__m512 z)
{
    z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), z); /* ln2 in two parts */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

typedef struct ftask {
    const fconv *f;
    size_t in_h, in_w, out_h, out_w;
    const float *x;
    float *y;
} ftask;

#define FFOR_BLOCKS(X, r) X(r, 0) X(r, 1) X(r, 2) X(r, 3)
#define FFOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define FDECL(r, b) __m512 c##r##b = _mm512_setzero_ps();
#define FDECL_ROW(r) FFOR_BLOCKS(FDECL, r)
#define FINIT(r, b)                                                                          \
    if (nb > b)                                                                              \
        c##r##b = first ? _mm512_load_ps(bias + 16 * b)                                      \
                        : _mm512_maskz_loadu_ps(b == nb - 1 ? tail : 0xffff, y[r] + 16 * b);
#define FINIT_ROW(r) if (mr > r) { FFOR_BLOCKS(FINIT, r) }
#define FDOT(r, b) if (nb > b) c##r##b = _mm512_fmadd_ps(av, w##b, c##r##b);
#define FDOT_ROW(r)                                                                          \
    if (mr > r) {                                                                            \
        __m512 av = _mm512_set1_ps(a##r[kk]);                                                \
        FFOR_BLOCKS(FDOT, r)                                                                 \
    }
#define FCLAMP(r, b) if (nb > b) c##r##b = _mm512_min_ps(_mm512_max_ps(c##r##b, lo), hi);
#define FCLAMP_ROW(r) if (mr > r) { FFOR_BLOCKS(FCLAMP, r) }
#define FSWISH(r, b)                                                                         \
    if (nb > b)                                                                              \
        c##r##b = _mm512_div_ps(c##r##b, _mm512_add_ps(_mm512_set1_ps(1.0f),                 \
                                                       fexp(_mm512_sub_ps(_mm512_setzero_ps(), c##r##b))));
#define FSWISH_ROW(r) if (mr > r) { FFOR_BLOCKS(FSWISH, r) }
#define FSTORE(r, b)                                                                         \
    if (nb > b)                                                                              \
        _mm512_mask_storeu_ps(y[r] + 16 * b, b == nb - 1 ? tail : 0xffff, c##r##b);
#define FSTORE_ROW(r) if (mr > r) { FFOR_BLOCKS(FSTORE, r) }

/* The reduction as seen by a kernel: `tap_len` consecutive k per tap, tap t of row r read
 * from rows[t * FMR + r] (the input pixel's channels, a zero row, or a patch row). */
typedef struct fsrc {
    const float *const *rows;
    size_t tap_len;
} fsrc;

/* mr output rows x group g (nb blocks), reduction positions [k0, k1): accumulate into rows y
 * (starting from the bias when `first`; clamped when `last`). */
FTARGET static inline __attribute__((always_inline)) void
fkernel(const fconv *f, size_t g, const int nb, const int mr, const fsrc *src, size_t k0,
        size_t k1, int first, int last, float *const *y)
{
    const float *bias = f->bias + g * FGROUP;
    size_t left = f->p.cout - g * FGROUP - 16 * (size_t)(nb - 1);
    __mmask16 tail = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    FFOR_ROWS(FDECL_ROW)
    FFOR_ROWS(FINIT_ROW)
    const size_t ws = (size_t)nb * 16;
    const float *w = f->w + g * f->k * FGROUP + k0 * ws;
    size_t tap = k0 / src->tap_len, ci = k0 % src->tap_len;
    for (size_t k = k0; k < k1; tap++, ci = 0) {
        size_t run = src->tap_len - ci < k1 - k ? src->tap_len - ci : k1 - k;
        const float *const *rp = src->rows + tap * FMR;
        const float *a0 = rp[0] + ci, *a1 = rp[mr > 1] + ci, *a2 = rp[mr > 2 ? 2 : 0] + ci;
        const float *a3 = rp[mr > 3 ? 3 : 0] + ci, *a4 = rp[mr > 4 ? 4 : 0] + ci;
        const float *a5 = rp[mr > 5 ? 5 : 0] + ci;
        for (size_t kk = 0; kk < run; kk++, w += ws) {
            __m512 w0 = _mm512_load_ps(w), w1 = w0, w2 = w0, w3 = w0;
            if (nb > 1) w1 = _mm512_load_ps(w + 16);
            if (nb > 2) w2 = _mm512_load_ps(w + 32);
            if (nb > 3) w3 = _mm512_load_ps(w + 48);
            FFOR_ROWS(FDOT_ROW)
        }
        k += run;
    }
    if (last) {
        const __m512 lo = _mm512_set1_ps(f->p.y_min), hi = _mm512_set1_ps(f->p.y_max);
        FFOR_ROWS(FCLAMP_ROW)
        if (f->p.swish) {
            FFOR_ROWS(FSWISH_ROW)
        }
    }
    FFOR_ROWS(FSTORE_ROW)
}

typedef void (*fkernel_fn)(const fconv *, size_t, const fsrc *, size_t, size_t, int, int,
                           float *const *);
#define FKERNEL(NB, R)                                                                       \
    FTARGET static void fkernel_##NB##x##R(const fconv *f, size_t g, const fsrc *src,       \
                                           size_t k0, size_t k1, int first, int last,        \
                                           float *const *y)                                  \
    {                                                                                        \
        fkernel(f, g, NB, R, src, k0, k1, first, last, y);                                   \
    }
#define FKERNELS(NB) FKERNEL(NB, 1) FKERNEL(NB, 2) FKERNEL(NB, 3) FKERNEL(NB, 4) FKERNEL(NB, 5) FKERNEL(NB, 6)
FKERNELS(1)
FKERNELS(2)
FKERNELS(3)
FKERNELS(4)
#define FROW_KERNELS(NB)                                                                     \
    {NULL, fkernel_##NB##x1, fkernel_##NB##x2, fkernel_##NB##x3, fkernel_##NB##x4,           \
     fkernel_##NB##x5, fkernel_##NB##x6}
static const fkernel_fn fkernels[5][FMR + 1] = {
    {NULL}, FROW_KERNELS(1), FROW_KERNELS(2), FROW_KERNELS(3), FROW_KERNELS(4)};

/* Few output channels (one or two blocks): 12 consecutive rows of a direct (1x1) convolution
 * per call, so enough independent accumulators (12 or 24) hide the FMA latency. Rows are
 * base + r * lda. */
#define FFOR_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define FFOR_BLOCKS2(X, r) X(r, 0) X(r, 1)
#define FDECL2(r, b) __m512 d##r##b = _mm512_setzero_ps();
#define FDECL2_ROW(r) FFOR_BLOCKS2(FDECL2, r)
#define FINIT2(r, b)                                                                         \
    if (nb > b)                                                                              \
        d##r##b = first ? _mm512_load_ps(bias + 16 * b)                                      \
                        : _mm512_maskz_loadu_ps(b == nb - 1 ? tail : 0xffff, y[r] + 16 * b);
#define FINIT2_ROW(r) if (mr > r) { FFOR_BLOCKS2(FINIT2, r) }
#define FDOT2(r, b) if (nb > b) d##r##b = _mm512_fmadd_ps(av, w##b, d##r##b);
#define FDOT2_ROW(r)                                                                         \
    if (mr > r) {                                                                            \
        __m512 av = _mm512_set1_ps(a[(size_t)r * lda + kk]);                                 \
        FFOR_BLOCKS2(FDOT2, r)                                                               \
    }
#define FCLAMP2(r, b) if (nb > b) d##r##b = _mm512_min_ps(_mm512_max_ps(d##r##b, lo), hi);
#define FCLAMP2_ROW(r) if (mr > r) { FFOR_BLOCKS2(FCLAMP2, r) }
#define FSWISH2(r, b)                                                                        \
    if (nb > b)                                                                              \
        d##r##b = _mm512_div_ps(d##r##b, _mm512_add_ps(_mm512_set1_ps(1.0f),                 \
                                                       fexp(_mm512_sub_ps(_mm512_setzero_ps(), d##r##b))));
#define FSWISH2_ROW(r) if (mr > r) { FFOR_BLOCKS2(FSWISH2, r) }
#define FSTORE2(r, b)                                                                        \
    if (nb > b)                                                                              \
        _mm512_mask_storeu_ps(y[r] + 16 * b, b == nb - 1 ? tail : 0xffff, d##r##b);
#define FSTORE2_ROW(r) if (mr > r) { FFOR_BLOCKS2(FSTORE2, r) }

FTARGET static inline __attribute__((always_inline)) void
fkernel12(const fconv *f, size_t g, const int nb, const int mr, const float *base, size_t lda,
          size_t k0, size_t k1, int first, int last, float *const *y)
{
    const float *bias = f->bias + g * FGROUP;
    size_t left = f->p.cout - g * FGROUP - 16 * (size_t)(nb - 1);
    __mmask16 tail = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
    FFOR_ROWS12(FDECL2_ROW)
    FFOR_ROWS12(FINIT2_ROW)
    const size_t ws = (size_t)nb * 16;
    const float *w = f->w + g * f->k * FGROUP + k0 * ws;
    const float *a = base + k0;
    for (size_t kk = 0; kk < k1 - k0; kk++, w += ws) {
        __m512 w0 = _mm512_load_ps(w), w1 = w0;
        if (nb > 1) w1 = _mm512_load_ps(w + 16);
        FFOR_ROWS12(FDOT2_ROW)
    }
    if (last) {
        const __m512 lo = _mm512_set1_ps(f->p.y_min), hi = _mm512_set1_ps(f->p.y_max);
        FFOR_ROWS12(FCLAMP2_ROW)
        if (f->p.swish) {
            FFOR_ROWS12(FSWISH2_ROW)
        }
    }
    FFOR_ROWS12(FSTORE2_ROW)
}

typedef void (*fkernel12_fn)(const fconv *, size_t, const float *, size_t, size_t, size_t, int,
                             int, float *const *);
#define FKERNEL12(NB, R)                                                                     \
    FTARGET static void fkernel12_##NB##x##R(const fconv *f, size_t g, const float *base,   \
                                             size_t lda, size_t k0, size_t k1, int first,    \
                                             int last, float *const *y)                      \
    {                                                                                        \
        fkernel12(f, g, NB, R, base, lda, k0, k1, first, last, y);                           \
    }
#define FKERNELS12(NB) FKERNEL12(NB, 7) FKERNEL12(NB, 8) FKERNEL12(NB, 9) FKERNEL12(NB, 10) \
    FKERNEL12(NB, 11) FKERNEL12(NB, 12)
FKERNELS12(1)
FKERNELS12(2)
#define FROW_KERNELS12(NB)                                                                   \
    {fkernel12_##NB##x7, fkernel12_##NB##x8, fkernel12_##NB##x9, fkernel12_##NB##x10,        \
     fkernel12_##NB##x11, fkernel12_##NB##x12}
static const fkernel12_fn fkernels12[3][6] = {{NULL}, FROW_KERNELS12(1), FROW_KERNELS12(2)};

/* Copy n floats; short runs (a small-cin tap) without a call, as a whole vector: the store
 * runs up to 16 floats past d (patch rows are written in order and the buffer has slack),
 * unmasked so the kernel's loads can be forwarded from it. */
FTARGET static inline void fcopy(float *d, const float *src, size_t n)
{
    if (n <= 16) {
        __mmask16 m = (__mmask16)((1u << n) - 1);
        _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m, src));
    } else {
        memcpy(d, src, n * sizeof(float));
    }
}

/* Whether row sources are patch rows (small cin or too many taps) rather than pointers into
 * the input per tap. */
static int fuse_patches(const fconv *f)
{
    size_t taps = f->p.kh * f->p.kw;
    return taps > 1 && (f->p.cin < 16 || taps > FMAX_TAPS) && f->k * FMR <= FPATCH_FLOATS;
}

/* Rows m0 .. m0+mlen-1 x groups [g, g+glen): per 6-row tile, its row sources; K chunk by
 * chunk, each chunk over all tiles (so the chunk's packed weights stay in L2 meanwhile). */
FTARGET static void frun_tile(void *ctx, size_t m0, size_t g, size_t mlen, size_t glen)
{
    const ftask *t = ctx;
    const fconv *f = t->f;
    const fconv_params *p = &f->p;
    size_t hw = t->out_h * t->out_w;
    int patches = fuse_patches(f);
    int direct = f->direct && t->in_h == t->out_h && t->in_w == t->out_w;
    size_t ntiles = (mlen + FMR - 1) / FMR;
    /* row sources of up to 8 tiles at a time (FMR x taps pointers each) */
    enum { TILES = 8 };
    const float *rows[TILES][FMAX_TAPS * FMR];
    _Alignas(64) float patch[FPATCH_FLOATS + 16];
    size_t per_pass = patches ? 1 : TILES; /* one patch buffer: one tile per pass */
    for (size_t t0 = 0; t0 < ntiles; t0 += per_pass) {
        size_t nt = ntiles - t0 < per_pass ? ntiles - t0 : per_pass;
        size_t m = m0 + t0 * FMR, img = m / hw, oy = m % hw / t->out_w, ox = m % t->out_w;
        if (direct) { /* 1x1, stride 1, no padding: the input rows themselves */
            for (size_t ti = 0; ti < nt; ti++)
                for (size_t r = 0; r < FMR; r++) {
                    size_t row = (t0 + ti) * FMR + r;
                    rows[ti][r] = row < mlen ? t->x + (m0 + row) * p->cin : f->zero;
                }
        }
        for (size_t ti = 0; ti < nt && !direct; ti++)
            for (size_t r = 0; r < FMR; r++) {
                size_t row = (t0 + ti) * FMR + r;
                int live = row < mlen;
                float *prow = patch + r * f->k;
                for (size_t ky = 0, tp = 0; ky < p->kh; ky++) {
                    size_t iy = oy * p->stride_h + ky * p->dil_h; /* + pad_top */
                    size_t ix0 = ox * p->stride_w;                /* + pad_left */
                    int yin = live && iy >= p->pad_top && iy - p->pad_top < t->in_h;
                    const float *xrow =
                        yin ? t->x + (img * t->in_h + iy - p->pad_top) * t->in_w * p->cin : NULL;
                    if (patches && yin && p->dil_w == 1 && ix0 >= p->pad_left &&
                        ix0 - p->pad_left + p->kw <= t->in_w) {
                        /* the filter row lies inside the image: one contiguous run */
                        fcopy(prow + tp * p->cin, xrow + (ix0 - p->pad_left) * p->cin,
                              p->kw * p->cin);
                        tp += p->kw;
                        continue;
                    }
                    for (size_t kx = 0; kx < p->kw; kx++, tp++) {
                        size_t ix = ix0 + kx * p->dil_w;
                        const float *src = f->zero;
                        if (yin && ix >= p->pad_left && ix - p->pad_left < t->in_w)
                            src = xrow + (ix - p->pad_left) * p->cin;
                        if (patches)
                            fcopy(prow + tp * p->cin, src, p->cin);
                        else
                            rows[ti][tp * FMR + r] = src;
                    }
                }
                if (patches)
                    rows[ti][r] = prow;
                if (++ox == t->out_w) { /* next pixel without divisions */
                    ox = 0;
                    if (++oy == t->out_h) {
                        oy = 0;
                        img++;
                    }
                }
            }
        for (size_t gi = g; gi < g + glen; gi++) {
            const fkernel_fn *kern = fkernels[fgroup_blocks(f, gi)];
            for (size_t k0 = 0; k0 < f->k; k0 += f->kc) {
                size_t k1 = k0 + f->kc < f->k ? k0 + f->kc : f->k;
                size_t nbk = fgroup_blocks(f, gi);
                for (size_t ti = 0; ti < nt; ti++) {
                    size_t r0 = (t0 + ti) * FMR, mr = mlen - r0 < FMR ? mlen - r0 : FMR;
                    float *y[2 * FMR];
                    if (direct && nbk <= 2 && mlen - r0 > FMR) { /* two tiles at once */
                        mr = mlen - r0 < 2 * FMR ? mlen - r0 : 2 * FMR;
                        for (size_t r = 0; r < mr; r++)
                            y[r] = t->y + (m0 + r0 + r) * p->cout + gi * FGROUP;
                        fkernels12[nbk][mr - FMR - 1](f, gi, t->x + (m0 + r0) * p->cin, p->cin,
                                                      k0, k1, k0 == 0, k1 == f->k, y);
                        ti++;
                        continue;
                    }
                    for (size_t r = 0; r < mr; r++)
                        y[r] = t->y + (m0 + r0 + r) * p->cout + gi * FGROUP;
                    fsrc src = {rows[ti], patches ? f->k : p->cin};
                    kern[mr](f, gi, &src, k0, k1, k0 == 0, k1 == f->k, y);
                }
            }
        }
    }
}

void fconv_run(const fconv *f, size_t n, size_t in_h, size_t in_w, size_t out_h, size_t out_w,
               const float *x, float *y, pthreadpool_t pool)
{
    ftask t = {f, in_h, in_w, out_h, out_w, x, y};
    size_t m = n * out_h * out_w;
    /* ~100 row tiles share each chunk of weights; smaller when threads would idle */
    size_t tm = 96;
    size_t threads = pool ? pthreadpool_get_threads_count(pool) : 1;
    while (tm > FMR && threads > 1 && (m + tm - 1) / tm * f->ngroups < 4 * threads)
        tm = (tm / 2 + FMR - 1) / FMR * FMR;
    pthreadpool_parallelize_2d_tile_2d(pool, frun_tile, &t, m, f->ngroups, tm, 1, 0);
}

/* ---------------------------------------------------------------- fp32 swish */

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

/*
 * qconv.c — the exact uint8/int8 convolution (and fully connected layer) as an AVX512-VNNI
 * GEMM (contract and arithmetic in qconv.h). Depthwise: qdwconv.c; fp32: fconv.c.
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


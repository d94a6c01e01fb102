/*
 * fconv.c — the fp32 convolution (and fully connected layer) on AVX512F: an indirect GEMM
 * with an optional swish epilogue (contract and layout in fconv.h).
 */
#include "model/kernels/fconv.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels/fexp.h"

/* GCC 12's partial redundancy elimination turns the kernel's 24 accumulators into stack
 * traffic (a spill and reload per multiply-add); without it they stay in registers. */
#pragma GCC optimize("no-tree-pre")

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

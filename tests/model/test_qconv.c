/*
 * test_qconv.c — imgsim's AVX512-VNNI uint8 convolution (src/model/kernels/qconv.c) against a
 * plain scalar reference of qu8 arithmetic: bit-exact on random shapes covering pointwise and
 * patch-gathered (strided, padded, dilated, odd-k) convolutions, channel and pixel tails,
 * one and two threads. Each shape runs in four weight variants: uint8 per-tensor (TFLite),
 * int8 per-channel with zero point 0 (ONNX QLinearConv: requantized as ONNX Runtime does),
 * int8 per-tensor with a zero point, uint8 per-channel (int8 depthwise weights take the
 * 4-tap vpdpbusd scheme on whole 64-channel blocks). Also ONNX Runtime's QLinearAdd and
 * QLinearGlobalAveragePool arithmetic (qadd_run, qgap_run) against scalar formulas, and the
 * fp32 convolution (fconv) against a double-precision reference. Skipped on CPUs without
 * VNNI (fconv: without AVX512F).
 */
#include <math.h>
#include <pthreadpool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "model/kernels/fconv.h"
#include "model/kernels/qadd.h"
#include "model/kernels/qconv.h"
#include "model/kernels/qdwconv.h"
#include "model/kernels/qgap.h"

static unsigned rng = 12345;
static uint8_t rnd8(void)
{
    rng = rng * 1103515245u + 12345u;
    return (uint8_t)(rng >> 23);
}

/* Weight variants: 0 uint8 per-tensor, 1 int8 per-channel zp 0, 2 int8 per-tensor zp != 0,
 * 3 uint8 per-channel. */
#define VARIANTS 4

static int32_t wval(const qconv_params *p, size_t i)
{
    return (p->w_signed ? (int32_t)(int8_t)p->w[i] : (int32_t)p->w[i]) - p->w_zero_point;
}

/* ONNX Runtime's requantization (MlasRequantizeOutput) with the clamp of y_min/y_max. */
static uint8_t requant_ref(const qconv_params *p, size_t c, int32_t acc)
{
    float f = (float)acc * (p->scales ? p->scales[c] : p->scale);
    float lo = (float)p->y_min - (float)p->y_zero_point;
    float hi = (float)p->y_max - (float)p->y_zero_point;
    f = f < lo ? lo : f > hi ? hi : f;
    return (uint8_t)((int32_t)nearbyintf(f) + p->y_zero_point);
}

/* Give `p` the weight variant `v`; `scales` holds cout floats for per-channel variants. */
static void set_variant(qconv_params *p, int v, float *scales, float base)
{
    p->w_signed = v == 1 || v == 2;
    p->w_zero_point = v == 1 ? 0 : v == 2 ? (int32_t)(int8_t)rnd8() / 4 : p->w_zero_point;
    p->scales = NULL;
    p->scale = base;
    if (v == 1 || v == 3) {
        for (size_t c = 0; c < p->cout; c++)
            scales[c] = base * (0.25f + (float)rnd8() / 64.0f);
        scales[p->cout / 2] = 0.0f; /* an all-zero channel's scale */
        p->scales = scales;
    }
}

static void reference(const qconv_params *p, size_t n, size_t ih, size_t iw, size_t oh,
                      size_t ow, const uint8_t *x, uint8_t *y)
{
    for (size_t img = 0; img < n; img++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++)
                for (size_t c = 0; c < p->cout; c++) {
                    int32_t acc = p->bias ? p->bias[c] : 0;
                    for (size_t ky = 0; ky < p->kh; ky++)
                        for (size_t kx = 0; kx < p->kw; kx++) {
                            long iy = (long)(oy * p->stride_h + ky * p->dil_h) - (long)p->pad_top;
                            long ix = (long)(ox * p->stride_w + kx * p->dil_w) - (long)p->pad_left;
                            if (iy < 0 || ix < 0 || iy >= (long)ih || ix >= (long)iw)
                                continue;
                            for (size_t ci = 0; ci < p->cin; ci++) {
                                int32_t xv = x[((img * ih + (size_t)iy) * iw + (size_t)ix) * p->cin + ci];
                                int32_t wv = wval(p, ((c * p->kh + ky) * p->kw + kx) * p->cin + ci);
                                acc += (xv - p->x_zero_point) * wv;
                            }
                        }
                    y[((img * oh + oy) * ow + ox) * p->cout + c] = requant_ref(p, c, acc);
                }
}

static void test_matches_reference(void **state)
{
    (void)state;
    if (!qconv_available())
        skip();
    struct { size_t k, s, d, pad, cin, cout, h, n; } cases[] = {
        {1, 1, 1, 0, 16, 96, 13, 2},   /* pointwise, M not a multiple of 6 */
        {1, 1, 1, 0, 24, 144, 7, 1},   /* channel tail inside a group */
        {1, 1, 1, 0, 320, 1280, 7, 3}, /* long k, many groups */
        {1, 1, 1, 0, 1280, 1001, 1, 5},/* classifier as a 1x1 conv */
        {3, 2, 1, 1, 3, 32, 15, 2},    /* first layer: k = 27, padding, stride */
        {3, 1, 2, 2, 8, 20, 9, 1},     /* dilation */
        {1, 2, 1, 0, 12, 40, 8, 1},    /* strided 1x1 gathers */
        {5, 1, 1, 2, 5, 17, 6, 1},     /* odd everything */
    };
    pthreadpool_t pool = pthreadpool_create(2);
    assert_non_null(pool);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int th = 0; th < 2 * VARIANTS; th++) {
            size_t k = cases[ci].k, cin = cases[ci].cin, cout = cases[ci].cout;
            size_t h = cases[ci].h, n = cases[ci].n, s = cases[ci].s, pad = cases[ci].pad;
            size_t ek = (k - 1) * cases[ci].d + 1, oh = (h + 2 * pad - ek) / s + 1;
            uint8_t *w = malloc(cout * k * k * cin), *x = malloc(n * h * h * cin);
            uint8_t *y = malloc(n * oh * oh * cout), *yr = malloc(n * oh * oh * cout);
            int32_t *bias = malloc(sizeof(int32_t) * cout);
            float *scales = malloc(sizeof(float) * cout);
            assert_true(w && x && y && yr && bias && scales);
            for (size_t i = 0; i < cout * k * k * cin; i++)
                w[i] = rnd8();
            for (size_t i = 0; i < n * h * h * cin; i++)
                x[i] = rnd8();
            for (size_t i = 0; i < cout; i++)
                bias[i] = (int32_t)(rnd8() * 97) - 12000;
            qconv_params p = {k, k, s, s, cases[ci].d, cases[ci].d, pad, pad, cin, cout, w,
                              rnd8(), bias, rnd8(), 0.0f, rnd8(), 0, 255, 0, NULL};
            set_variant(&p, th / 2, scales, 1.0f / (float)(k * k * cin * 300));
            if (ci % 2) {
                p.y_min = 20;
                p.y_max = 200;
            }
            int unsupported;
            qconv *q = qconv_new(&p, &unsupported);
            assert_non_null(q);
            qconv_run(q, n, h, h, oh, oh, x, y, th % 2 ? pool : NULL);
            reference(&p, n, h, h, oh, oh, x, yr);
            size_t bad = 0;
            for (size_t i = 0; i < n * oh * oh * cout; i++)
                bad += y[i] != yr[i];
            if (bad)
                fail_msg("case %zu variant %d threads %d: %zu of %zu outputs differ", ci, th / 2,
                         th % 2 + 1, bad, n * oh * oh * cout);
            qconv_free(q);
            free(w); free(x); free(y); free(yr); free(bias); free(scales);
        }
    pthreadpool_destroy(pool);
}

static void dw_reference(const qconv_params *p, size_t n, size_t ih, size_t iw, size_t oh,
                         size_t ow, const uint8_t *x, uint8_t *y)
{
    size_t c = p->cin;
    for (size_t img = 0; img < n; img++)
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++)
                for (size_t ch = 0; ch < c; ch++) {
                    int32_t acc = p->bias ? p->bias[ch] : 0;
                    for (size_t ky = 0; ky < p->kh; ky++)
                        for (size_t kx = 0; kx < p->kw; kx++) {
                            long iy = (long)(oy * p->stride_h + ky * p->dil_h) - (long)p->pad_top;
                            long ix = (long)(ox * p->stride_w + kx * p->dil_w) - (long)p->pad_left;
                            if (iy < 0 || ix < 0 || iy >= (long)ih || ix >= (long)iw)
                                continue;
                            int32_t xv = x[((img * ih + (size_t)iy) * iw + (size_t)ix) * c + ch];
                            int32_t wv = wval(p, (ky * p->kw + kx) * c + ch);
                            acc += (xv - p->x_zero_point) * wv;
                        }
                    y[((img * oh + oy) * ow + ox) * c + ch] = requant_ref(p, ch, acc);
                }
}

static void test_depthwise_matches_reference(void **state)
{
    (void)state;
    if (!qconv_available())
        skip();
    struct { size_t k, s, d, pad, c, h, n; } cases[] = {
        {3, 1, 1, 1, 32, 13, 2},  /* MobileNet's shapes */
        {3, 2, 1, 1, 144, 14, 1}, /* channel tail, stride 2 */
        {5, 1, 1, 2, 960, 7, 2},  /* 5x5, many blocks */
        {3, 1, 2, 2, 7, 9, 1},    /* dilation, tiny channel count */
        {2, 2, 1, 0, 40, 8, 3},   /* even tap count */
    };
    pthreadpool_t pool = pthreadpool_create(2);
    assert_non_null(pool);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int th = 0; th < 2 * VARIANTS; th++) {
            size_t k = cases[ci].k, c = cases[ci].c, h = cases[ci].h, n = cases[ci].n;
            size_t s = cases[ci].s, pad = cases[ci].pad;
            size_t ek = (k - 1) * cases[ci].d + 1, oh = (h + 2 * pad - ek) / s + 1;
            uint8_t *w = malloc(k * k * c), *x = malloc(n * h * h * c);
            uint8_t *y = malloc(n * oh * oh * c), *yr = malloc(n * oh * oh * c);
            int32_t *bias = malloc(sizeof(int32_t) * c);
            float *scales = malloc(sizeof(float) * c);
            assert_true(w && x && y && yr && bias && scales);
            for (size_t i = 0; i < k * k * c; i++)
                w[i] = rnd8();
            for (size_t i = 0; i < n * h * h * c; i++)
                x[i] = rnd8();
            for (size_t i = 0; i < c; i++)
                bias[i] = (int32_t)(rnd8() * 37) - 4000;
            qconv_params p = {k, k, s, s, cases[ci].d, cases[ci].d, pad, pad, c, c, w,
                              rnd8(), bias, rnd8(), 0.0f, rnd8(), 0, 255, 0, NULL};
            set_variant(&p, th / 2, scales, 1.0f / (float)(k * k * 400));
            if (ci % 2) {
                p.y_min = 10;
                p.y_max = 240;
            }
            int unsupported;
            qdwconv *q = qdwconv_new(&p, &unsupported);
            assert_non_null(q);
            qdwconv_run(q, n, h, h, oh, oh, x, y, th % 2 ? pool : NULL);
            dw_reference(&p, n, h, h, oh, oh, x, yr);
            size_t bad = 0;
            for (size_t i = 0; i < n * oh * oh * c; i++)
                bad += y[i] != yr[i];
            if (bad)
                fail_msg("case %zu variant %d threads %d: %zu of %zu outputs differ", ci, th / 2,
                         th % 2 + 1, bad, n * oh * oh * c);
            qdwconv_free(q);
            free(w); free(x); free(y); free(yr); free(bias); free(scales);
        }
    pthreadpool_destroy(pool);
}

/* ONNX Runtime's QLinearAdd: fixed = zc - fma(ra, za, rb * zb), then
 * round(fma(a, ra, fma(b, rb, fixed))) saturated (and clamped to [lo, hi]). */
static uint8_t add_ref(float sa, int32_t za, float sb, int32_t zb, float sc, int32_t zc,
                       uint8_t lo, uint8_t hi, uint8_t a, uint8_t b)
{
    float ra = sa / sc, rb = sb / sc;
    float fixed = (float)zc - fmaf(ra, (float)za, rb * (float)zb);
    float v = fmaf((float)a, ra, fmaf((float)b, rb, fixed));
    long r = lrintf(v); /* round half to even in the default mode */
    return (uint8_t)(r < lo ? lo : r > hi ? hi : r);
}

static void test_qadd_matches_reference(void **state)
{
    (void)state;
    if (!qconv_available())
        skip();
    struct { float sa; int32_t za; float sb; int32_t zb; float sc; int32_t zc; uint8_t lo, hi; } cs[] = {
        {0.0397102f, 107, 0.0460947f, 127, 0.0579707f, 125, 0, 255}, /* MobileNetV2 int8 */
        {0.0435075f, 108, 0.0260685f, 126, 0.0498283f, 120, 0, 255},
        {0.5f, 3, 0.002f, 250, 0.01f, 0, 0, 255},                    /* saturating */
        {0.02f, 128, 0.03f, 128, 0.05f, 128, 40, 200},               /* fused clamp */
    };
    pthreadpool_t pool = pthreadpool_create(2);
    assert_non_null(pool);
    enum { N = 65536, ROW = 37, ROWS = 50 };
    uint8_t *a = malloc(N), *b = malloc(N), *c = malloc(N);
    assert_true(a && b && c);
    for (size_t i = 0; i < N; i++) { /* every pair */
        a[i] = (uint8_t)i;
        b[i] = (uint8_t)(i >> 8);
    }
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        qadd_params p;
        qadd_init(&p, cs[k].sa, cs[k].za, cs[k].sb, cs[k].zb, cs[k].sc, cs[k].zc, cs[k].lo,
                  cs[k].hi);
#define REF(x, y) add_ref(cs[k].sa, cs[k].za, cs[k].sb, cs[k].zb, cs[k].sc, cs[k].zc, cs[k].lo, cs[k].hi, x, y)
        for (int th = 0; th < 2; th++) {
            qadd_run(&p, a, b, N, N, c, th ? pool : NULL);
            for (size_t i = 0; i < N; i++)
                if (c[i] != REF(a[i], b[i]))
                    fail_msg("add %zu: %u + %u gives %u, want %u", k, a[i], b[i], c[i],
                             REF(a[i], b[i]));
            /* b repeating along rows (a constant [C] operand), and a single b */
            qadd_run(&p, a, b + 1000, ROW, ROW * ROWS, c, th ? pool : NULL);
            for (size_t i = 0; i < ROW * ROWS; i++)
                if (c[i] != REF(a[i], b[1000 + i % ROW]))
                    fail_msg("add %zu, repeating b: element %zu", k, i);
            qadd_run(&p, a, b + 40000, 1, 4096, c, th ? pool : NULL);
            for (size_t i = 0; i < 4096; i++)
                if (c[i] != REF(a[i], b[40000]))
                    fail_msg("add %zu, single b: element %zu", k, i);
        }
#undef REF
    }
    free(a); free(b); free(c);
    pthreadpool_destroy(pool);
}

/* ONNX Runtime's QLinearGlobalAveragePool: (sum - zx * hw) * (sx / (sy * hw)), clamped,
 * rounded half to even, + zy. */
static void test_qgap_matches_reference(void **state)
{
    (void)state;
    if (!qconv_available())
        skip();
    struct { size_t n, hw, c; float sx; int32_t zx; float sy; int32_t zy; uint8_t lo, hi; } cs[] = {
        {1, 49, 1280, 0.0235294f, 0, 0.0191101f, 0, 0, 255}, /* MobileNetV2 int8 */
        {3, 9, 37, 0.05f, 17, 0.01f, 100, 0, 255},           /* channel tail, saturating */
        {2, 196, 20, 0.1f, 200, 0.03f, 3, 10, 250},          /* fused clamp */
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        size_t n = cs[k].n, hw = cs[k].hw, c = cs[k].c;
        uint8_t *x = malloc(n * hw * c), *y = malloc(n * c);
        assert_true(x && y);
        for (size_t i = 0; i < n * hw * c; i++)
            x[i] = rnd8();
        qgap_run(x, n, hw, c, cs[k].sx, cs[k].zx, cs[k].sy, cs[k].zy, cs[k].lo, cs[k].hi, y);
        float scale = cs[k].sx / (cs[k].sy * (float)hw);
        for (size_t img = 0; img < n; img++)
            for (size_t ch = 0; ch < c; ch++) {
                int32_t acc = -cs[k].zx * (int32_t)hw;
                for (size_t p = 0; p < hw; p++)
                    acc += x[(img * hw + p) * c + ch];
                float f = (float)acc * scale;
                float lo = (float)cs[k].lo - (float)cs[k].zy, hi = (float)cs[k].hi - (float)cs[k].zy;
                f = f < lo ? lo : f > hi ? hi : f;
                uint8_t want = (uint8_t)((int32_t)nearbyintf(f) + cs[k].zy);
                if (y[img * c + ch] != want)
                    fail_msg("pool %zu image %zu channel %zu: %u, want %u", k, img, ch,
                             y[img * c + ch], want);
            }
        free(x);
        free(y);
    }
}

/* fconv (fp32, AVX512F) against a double-precision reference. */
static void test_fconv_matches_reference(void **state)
{
    (void)state;
    if (!fconv_available())
        skip();
    struct { size_t k, s, d, pad, cin, cout, h, n; } cases[] = {
        {1, 1, 1, 0, 32, 16, 13, 2},    /* direct, one block: 12-row kernel */
        {1, 1, 1, 0, 24, 40, 9, 1},     /* direct, block tail, two blocks */
        {1, 1, 1, 0, 64, 200, 7, 3},    /* direct, groups + tail */
        {3, 1, 1, 1, 64, 64, 9, 2},     /* per-tap rows with padding */
        {3, 2, 1, 1, 3, 32, 15, 2},     /* patch rows (small cin), stride */
        {3, 1, 2, 2, 20, 20, 9, 1},     /* dilation */
        {1, 2, 1, 0, 12, 40, 8, 1},     /* strided 1x1 */
        {3, 1, 1, 1, 200, 70, 6, 1},    /* K = 1800: chunked reduction */
        {7, 2, 1, 3, 3, 64, 23, 1},     /* ResNet stem: 49 taps, patches */
        {1, 1, 1, 0, 1280, 1000, 1, 5}, /* classifier */
    };
    pthreadpool_t pool = pthreadpool_create(2);
    assert_non_null(pool);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int th = 0; th < 2; th++) {
            size_t k = cases[ci].k, cin = cases[ci].cin, cout = cases[ci].cout;
            size_t h = cases[ci].h, n = cases[ci].n, s = cases[ci].s, pad = cases[ci].pad;
            size_t d = cases[ci].d, ek = (k - 1) * d + 1, oh = (h + 2 * pad - ek) / s + 1;
            float *w = malloc(sizeof(float) * cout * k * k * cin);
            float *x = malloc(sizeof(float) * n * h * h * cin);
            float *y = malloc(sizeof(float) * n * oh * oh * cout);
            float *bias = malloc(sizeof(float) * cout);
            assert_true(w && x && y && bias);
            for (size_t i = 0; i < cout * k * k * cin; i++)
                w[i] = ((float)rnd8() - 128.0f) / 256.0f;
            for (size_t i = 0; i < n * h * h * cin; i++)
                x[i] = ((float)rnd8() - 100.0f) / 64.0f;
            for (size_t i = 0; i < cout; i++)
                bias[i] = ((float)rnd8() - 128.0f) / 32.0f;
            float lo = ci % 2 ? 0.0f : -INFINITY, hi = ci % 3 == 0 ? 6.0f : INFINITY;
            fconv_params p = {k, k, s, s, d, d, pad, pad, cin, cout, w, bias, lo, hi, ci % 4 == 1};
            int unsupported;
            fconv *f = fconv_new(&p, &unsupported);
            assert_non_null(f);
            fconv_run(f, n, h, h, oh, oh, x, y, th ? pool : NULL);
            for (size_t img = 0; img < n; img++)
                for (size_t oy = 0; oy < oh; oy++)
                    for (size_t ox = 0; ox < oh; ox++)
                        for (size_t c = 0; c < cout; c++) {
                            double acc = bias[c], mag = fabs(bias[c]);
                            for (size_t ky = 0; ky < k; ky++)
                                for (size_t kx = 0; kx < k; kx++) {
                                    long iy = (long)(oy * s + ky * d) - (long)pad;
                                    long ix = (long)(ox * s + kx * d) - (long)pad;
                                    if (iy < 0 || ix < 0 || iy >= (long)h || ix >= (long)h)
                                        continue;
                                    for (size_t i = 0; i < cin; i++) {
                                        double v = (double)x[((img * h + (size_t)iy) * h + (size_t)ix) * cin + i] *
                                                   w[((c * k + ky) * k + kx) * cin + i];
                                        acc += v;
                                        mag += fabs(v);
                                    }
                                }
                            acc = acc < lo ? lo : acc > hi ? hi : acc;
                            if (p.swish)
                                acc = acc / (1.0 + exp(-acc));
                            float got = y[((img * oh + oy) * oh + ox) * cout + c];
                            if (!(fabs(got - acc) <= 1e-5 * mag + 1e-6))
                                fail_msg("case %zu threads %d: pixel %zu,%zu,%zu channel %zu: %g, "
                                         "want %g", ci, th + 1, img, oy, ox, c, (double)got, acc);
                        }
            fconv_free(f);
            free(w); free(x); free(y); free(bias);
        }
    pthreadpool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fconv_matches_reference),
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_depthwise_matches_reference),
        cmocka_unit_test(test_qadd_matches_reference),
        cmocka_unit_test(test_qgap_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_qconv.c — imgsim's AVX512-VNNI uint8 convolution (src/model/qconv.c) against a plain
 * scalar reference of qu8 arithmetic: bit-exact on random shapes covering pointwise and
 * patch-gathered (strided, padded, dilated, odd-k) convolutions, channel and pixel tails,
 * one and two threads. Skipped on CPUs without VNNI.
 */
#include <math.h>
#include <pthreadpool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "model/qconv.h"

static unsigned rng = 12345;
static uint8_t rnd8(void)
{
    rng = rng * 1103515245u + 12345u;
    return (uint8_t)(rng >> 23);
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
                                int32_t wv = p->w[((c * p->kh + ky) * p->kw + kx) * p->cin + ci];
                                acc += (xv - p->x_zero_point) * (wv - p->w_zero_point);
                            }
                        }
                    float f = (float)acc * p->scale;
                    float lo = (float)p->y_min - (float)p->y_zero_point;
                    float hi = (float)p->y_max - (float)p->y_zero_point;
                    f = f < lo ? lo : f > hi ? hi : f;
                    y[((img * oh + oy) * ow + ox) * p->cout + c] =
                        (uint8_t)((int32_t)nearbyintf(f) + p->y_zero_point);
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
        for (int th = 0; th < 2; th++) {
            size_t k = cases[ci].k, cin = cases[ci].cin, cout = cases[ci].cout;
            size_t h = cases[ci].h, n = cases[ci].n, s = cases[ci].s, pad = cases[ci].pad;
            size_t ek = (k - 1) * cases[ci].d + 1, oh = (h + 2 * pad - ek) / s + 1;
            uint8_t *w = malloc(cout * k * k * cin), *x = malloc(n * h * h * cin);
            uint8_t *y = malloc(n * oh * oh * cout), *yr = malloc(n * oh * oh * cout);
            int32_t *bias = malloc(sizeof(int32_t) * cout);
            assert_true(w && x && y && yr && bias);
            for (size_t i = 0; i < cout * k * k * cin; i++)
                w[i] = rnd8();
            for (size_t i = 0; i < n * h * h * cin; i++)
                x[i] = rnd8();
            for (size_t i = 0; i < cout; i++)
                bias[i] = (int32_t)(rnd8() * 97) - 12000;
            qconv_params p = {k, k, s, s, cases[ci].d, cases[ci].d, pad, pad, cin, cout, w,
                              rnd8(), bias, rnd8(), 0.0f, rnd8(), 0, 255};
            p.scale = 1.0f / (float)(k * k * cin * 300);
            if (ci % 2) {
                p.y_min = 20;
                p.y_max = 200;
            }
            int unsupported;
            qconv *q = qconv_new(&p, &unsupported);
            assert_non_null(q);
            qconv_run(q, n, h, h, oh, oh, x, y, th ? pool : NULL);
            reference(&p, n, h, h, oh, oh, x, yr);
            size_t bad = 0;
            for (size_t i = 0; i < n * oh * oh * cout; i++)
                bad += y[i] != yr[i];
            if (bad)
                fail_msg("case %zu threads %d: %zu of %zu outputs differ", ci, th + 1, bad,
                         n * oh * oh * cout);
            qconv_free(q);
            free(w); free(x); free(y); free(yr); free(bias);
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
                            int32_t wv = p->w[(ky * p->kw + kx) * c + ch];
                            acc += (xv - p->x_zero_point) * (wv - p->w_zero_point);
                        }
                    float f = (float)acc * p->scale;
                    float lo = (float)p->y_min - (float)p->y_zero_point;
                    float hi = (float)p->y_max - (float)p->y_zero_point;
                    f = f < lo ? lo : f > hi ? hi : f;
                    y[((img * oh + oy) * ow + ox) * c + ch] =
                        (uint8_t)((int32_t)nearbyintf(f) + p->y_zero_point);
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
        for (int th = 0; th < 2; th++) {
            size_t k = cases[ci].k, c = cases[ci].c, h = cases[ci].h, n = cases[ci].n;
            size_t s = cases[ci].s, pad = cases[ci].pad;
            size_t ek = (k - 1) * cases[ci].d + 1, oh = (h + 2 * pad - ek) / s + 1;
            uint8_t *w = malloc(k * k * c), *x = malloc(n * h * h * c);
            uint8_t *y = malloc(n * oh * oh * c), *yr = malloc(n * oh * oh * c);
            int32_t *bias = malloc(sizeof(int32_t) * c);
            assert_true(w && x && y && yr && bias);
            for (size_t i = 0; i < k * k * c; i++)
                w[i] = rnd8();
            for (size_t i = 0; i < n * h * h * c; i++)
                x[i] = rnd8();
            for (size_t i = 0; i < c; i++)
                bias[i] = (int32_t)(rnd8() * 37) - 4000;
            qconv_params p = {k, k, s, s, cases[ci].d, cases[ci].d, pad, pad, c, c, w,
                              rnd8(), bias, rnd8(), 1.0f / (float)(k * k * 400), rnd8(), 0, 255};
            if (ci % 2) {
                p.y_min = 10;
                p.y_max = 240;
            }
            int unsupported;
            qdwconv *q = qdwconv_new(&p, &unsupported);
            assert_non_null(q);
            qdwconv_run(q, n, h, h, oh, oh, x, y, th ? pool : NULL);
            dw_reference(&p, n, h, h, oh, oh, x, yr);
            size_t bad = 0;
            for (size_t i = 0; i < n * oh * oh * c; i++)
                bad += y[i] != yr[i];
            if (bad)
                fail_msg("case %zu threads %d: %zu of %zu outputs differ", ci, th + 1, bad,
                         n * oh * oh * c);
            qdwconv_free(q);
            free(w); free(x); free(y); free(yr); free(bias);
        }
    pthreadpool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_depthwise_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

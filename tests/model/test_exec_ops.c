/*
 * test_exec_ops.c — the executor (src/model/exec/, src/model/ir/shape.c) on small graphs built
 * here, each against a scalar reference in C: LeakyRelu, HardSigmoid, Clamp (fp32 and quantized
 * tables), explicit asymmetric pads on conv / max pool / average pool, numpy broadcasting of
 * Mul/Add/Sub ([1,1,1,C] x [1,H,W,C], rank-2 activations, constant [C] and scalar operands)
 * over batches, int8 per-channel conv / depthwise / fully connected bit-exact with ONNX
 * Runtime's QLinearConv arithmetic, its QLinearAdd with a constant and its global average
 * pool (VNNI CPUs only), the same graph in fp32, inputs fed with normalised floats
 * (g->input_from_float), and the plan's folding of Sigmoid + Mul (swish) and of Relu6.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "model/exec/exec.h"
#include "model/ir/graph.h"
#include "model/kernels/fconv.h"
#include "model/kernels/qconv.h"

/* ---------------------------------------------------------------- graph building */

#define MAX_T 32
#define MAX_OPS 16

static ir_graph new_graph(void)
{
    ir_graph g;
    memset(&g, 0, sizeof g);
    g.t = calloc(MAX_T, sizeof *g.t);
    g.ops = calloc(MAX_OPS, sizeof *g.ops);
    assert_true(g.t && g.ops);
    return g;
}

static int add_t(ir_graph *g, const char *name, ir_dtype dt, int rank, const int64_t *shape)
{
    assert_true(g->nt < MAX_T);
    ir_tensor *t = &g->t[g->nt];
    t->name = strdup(name);
    assert_non_null(t->name);
    t->dtype = dt;
    t->rank = rank;
    if (rank > 0)
        memcpy(t->shape, shape, sizeof(int64_t) * (size_t)rank);
    return g->nt++;
}

/* An activation whose shape inference fills in. */
static int add_act(ir_graph *g, const char *name, ir_dtype dt)
{
    int t = add_t(g, name, dt, 0, NULL);
    g->t[t].rank = -1;
    return t;
}

static int add_const(ir_graph *g, const char *name, ir_dtype dt, int rank, const int64_t *shape,
                     const void *data)
{
    int t = add_t(g, name, dt, rank, shape);
    ir_tensor *x = &g->t[t];
    x->nbytes = (size_t)ir_numel(x) * ir_dtype_size(dt);
    x->owned = malloc(x->nbytes ? x->nbytes : 1);
    assert_non_null(x->owned);
    memcpy(x->owned, data, x->nbytes);
    x->data = x->owned;
    return t;
}

static void set_q(ir_graph *g, int t, float scale, int32_t zp)
{
    g->t[t].quantized = 1;
    g->t[t].scale = scale;
    g->t[t].zero_point = zp;
}

static void set_pc(ir_graph *g, int t, const float *scales, int n, int qdim)
{
    ir_tensor *x = &g->t[t];
    x->quantized = 1;
    x->scale = scales[0];
    x->nchannel_scales = n;
    x->qdim = qdim;
    x->channel_scales = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x->channel_scales);
    memcpy(x->channel_scales, scales, sizeof(float) * (size_t)n);
}

static ir_op *add_op(ir_graph *g, ir_op_kind k, int out, int nin, int in0, int in1, int in2)
{
    assert_true(g->nops < MAX_OPS);
    ir_op *op = &g->ops[g->nops++];
    memset(op, 0, sizeof *op);
    op->kind = k;
    op->out = out;
    op->nin = nin;
    op->in[0] = in0;
    op->in[1] = in1;
    op->in[2] = in2;
    op->in[3] = -1;
    op->stride_h = op->stride_w = op->dil_h = op->dil_w = 1;
    op->depth_mult = 1;
    op->lo = -INFINITY;
    op->hi = INFINITY;
    op->name = g->t[out].name;
    return op;
}

static void pads(ir_op *op, int top, int left, int bottom, int right)
{
    op->pad_explicit = 1;
    op->pad_top = top;
    op->pad_left = left;
    op->pad_bottom = bottom;
    op->pad_right = right;
}

/* A plan and context for `g` (shapes inferred here); fails the test on error. */
typedef struct runner {
    exec_plan plan;
    exec_ctx *ctx;
} runner;

static void start(runner *r, ir_graph *g, imgsim_precision prec, int emb, int threads,
                  int max_batch)
{
    imgsim_error e = {0};
    if (ir_infer_shapes(g, &e) != IMGSIM_OK)
        fail_msg("shapes: %s", e.msg);
    if (exec_plan_make(g, prec, emb, &r->plan, &e) != IMGSIM_OK)
        fail_msg("plan: %s", e.msg);
    if (exec_ctx_new(&r->plan, threads, max_batch, &r->ctx, &e) != IMGSIM_OK)
        fail_msg("context: %s", e.msg);
}

static void run(runner *r, const uint8_t *const *rgb, int n, const float mean[3],
                const float std[3])
{
    imgsim_error e = {0};
    if (exec_run(r->ctx, rgb, n, mean, std, &e) != IMGSIM_OK)
        fail_msg("run: %s", e.msg);
}

static void stop(runner *r)
{
    exec_ctx_free(r->ctx);
    exec_plan_free(&r->plan);
}

/* ---------------------------------------------------------------- data and references */

static unsigned rng = 777;
static uint8_t rnd8(void)
{
    rng = rng * 1103515245u + 12345u;
    return (uint8_t)(rng >> 23);
}

static float rndf(float lo, float hi)
{
    return lo + (hi - lo) * (float)rnd8() / 255.0f;
}

static uint8_t *image(size_t h, size_t w)
{
    uint8_t *p = malloc(h * w * 3);
    assert_non_null(p);
    for (size_t i = 0; i < h * w * 3; i++)
        p[i] = rnd8();
    return p;
}

static const float MEAN[3] = {120.0f, 128.0f, 110.0f}, STD[3] = {30.0f, 40.0f, 50.0f};

/* The fp32 executor's input: (v - mean) * (1 / std), exactly. */
static float *normalised(const uint8_t *rgb, size_t px)
{
    float *f = malloc(sizeof(float) * px * 3);
    assert_non_null(f);
    for (size_t i = 0; i < px * 3; i++)
        f[i] = ((float)rgb[i] - MEAN[i % 3]) * (1.0f / STD[i % 3]);
    return f;
}

static float *read_t(runner *r, int t, int i)
{
    float *v = malloc(sizeof(float) * (size_t)ir_numel(&r->plan.g->t[t]));
    assert_non_null(v);
    exec_read(r->ctx, t, i, v);
    return v;
}

/* exec_read of a quantized tensor gives (q - zp) * scale: the bytes back. */
static uint8_t *read_q(runner *r, int t, int i, float scale, int32_t zp)
{
    size_t n = (size_t)ir_numel(&r->plan.g->t[t]);
    float *v = read_t(r, t, i);
    uint8_t *q = malloc(n);
    assert_non_null(q);
    for (size_t k = 0; k < n; k++) {
        long b = lrintf(v[k] / scale) + zp;
        assert_true(b >= 0 && b <= 255);
        q[k] = (uint8_t)b;
    }
    free(v);
    return q;
}

static void near(const float *got, const float *want, size_t n, float tol, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol * (1.0f + fabsf(want[i]))))
            fail_msg("%s: element %zu is %g, want %g", what, i, (double)got[i], (double)want[i]);
}

static void same_bytes(const uint8_t *got, const uint8_t *want, size_t n, const char *what)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i] && !bad++)
            first = i;
    if (bad)
        fail_msg("%s: %zu of %zu bytes differ (first %zu: %u, want %u)", what, bad, n, first,
                 got[first], want[first]);
}

/* Float NHWC convolution (depthwise when dw: w is [1][kh][kw][c]), explicit pads. */
static void conv_ref(const float *x, int h, int w, int c, const float *wt, const float *bias,
                     int oc, int kh, int kw, int sh, int sw, int pt, int pl, int dw, int oh,
                     int ow, float *y)
{
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int o = 0; o < oc; o++) {
                double acc = bias ? bias[o] : 0.0;
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        int iy = oy * sh + ky - pt, ix = ox * sw + kx - pl;
                        if (iy < 0 || ix < 0 || iy >= h || ix >= w)
                            continue;
                        if (dw) {
                            acc += (double)x[(iy * w + ix) * c + o] * wt[(ky * kw + kx) * oc + o];
                            continue;
                        }
                        for (int i = 0; i < c; i++)
                            acc += (double)x[(iy * w + ix) * c + i] *
                                   wt[((o * kh + ky) * kw + kx) * c + i];
                    }
                y[(oy * ow + ox) * oc + o] = (float)acc;
            }
}

/* Max / average pooling with explicit pads; padding never counts (ONNX count_include_pad=0,
 * TFLite). */
static void pool_ref(const float *x, int h, int w, int c, int kh, int kw, int sh, int sw,
                     int pt, int pl, int is_max, int oh, int ow, float *y)
{
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int ch = 0; ch < c; ch++) {
                double acc = is_max ? -INFINITY : 0.0;
                int cnt = 0;
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        int iy = oy * sh + ky - pt, ix = ox * sw + kx - pl;
                        if (iy < 0 || ix < 0 || iy >= h || ix >= w)
                            continue;
                        double v = x[(iy * w + ix) * c + ch];
                        acc = is_max ? (v > acc ? v : acc) : acc + v;
                        cnt++;
                    }
                y[(oy * ow + ox) * c + ch] = (float)(is_max ? acc : acc / cnt);
            }
}

/* ONNX Runtime's QLinearConv / QLinearMatMul requantization: float(acc) * multiplier,
 * clamped to the uint8 range around the zero point, rounded half to even. */
static uint8_t requant(int32_t acc, float mult, int32_t zp)
{
    float f = (float)acc * mult;
    float lo = 0.0f - (float)zp, hi = 255.0f - (float)zp;
    f = f < lo ? lo : f > hi ? hi : f;
    return (uint8_t)((int32_t)nearbyintf(f) + zp);
}

/* int8-weight, uint8-activation convolution (dw: weights [1][kh][kw][c]) with per-channel
 * scales; x zero point zx, weight zero point 0. */
static void qconv_ref(const uint8_t *x, int h, int w, int c, int32_t zx, float sx,
                      const int8_t *wt, const float *ws, const int32_t *bias, int oc, int kh,
                      int kw, int sh, int sw, int pt, int pl, int dw, int oh, int ow, float sy,
                      int32_t zy, uint8_t *y)
{
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int o = 0; o < oc; o++) {
                int32_t acc = bias ? bias[o] : 0;
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        int iy = oy * sh + ky - pt, ix = ox * sw + kx - pl;
                        if (iy < 0 || ix < 0 || iy >= h || ix >= w)
                            continue;
                        if (dw) {
                            acc += ((int32_t)x[(iy * w + ix) * c + o] - zx) *
                                   wt[(ky * kw + kx) * oc + o];
                            continue;
                        }
                        for (int i = 0; i < c; i++)
                            acc += ((int32_t)x[(iy * w + ix) * c + i] - zx) *
                                   wt[((o * kh + ky) * kw + kx) * c + i];
                    }
                y[(oy * ow + ox) * oc + o] = requant(acc, sx * ws[o] / sy, zy);
            }
}

/* ---------------------------------------------------------------- element-wise ops */

/* LeakyRelu -> HardSigmoid -> Clamp in fp32 on XNNPACK / by hand, batch of 2, 1 and 2
 * threads. */
static void test_elementwise_fp32(void **state)
{
    (void)state;
    const int H = 8, W = 9;
    uint8_t *img[2] = {image(H, W), image(H, W)};
    for (int threads = 1; threads <= 2; threads++) {
        ir_graph g = new_graph();
        int x = add_t(&g, "x", IR_F32, 4, (int64_t[]){1, H, W, 3});
        int a = add_act(&g, "leaky", IR_F32), b = add_act(&g, "hsig", IR_F32);
        int c = add_act(&g, "clamp", IR_F32), d = add_act(&g, "clamp_hi", IR_F32);
        add_op(&g, IR_LEAKY_RELU, a, 1, x, -1, -1)->alpha = 0.1f;
        ir_op *hs = add_op(&g, IR_HARD_SIGMOID, b, 1, a, -1, -1);
        hs->alpha = 0.2f;
        hs->beta = 0.5f;
        ir_op *cl = add_op(&g, IR_CLAMP, c, 1, b, -1, -1);
        cl->lo = 0.3f;
        cl->hi = 0.7f;
        add_op(&g, IR_CLAMP, d, 1, c, -1, -1)->hi = 0.6f; /* lower bound absent */
        g.input = x;
        g.output = d;
        runner r;
        start(&r, &g, IMGSIM_PRECISION_AUTO, a, threads, 2);
        assert_int_equal(r.plan.quant, 0);
        run(&r, (const uint8_t *const *)img, 2, MEAN, STD);
        for (int i = 0; i < 2; i++) {
            float *in = normalised(img[i], (size_t)(H * W));
            float *ra = malloc(sizeof(float) * (size_t)(H * W * 3));
            float *rd = malloc(sizeof(float) * (size_t)(H * W * 3));
            assert_true(ra && rd);
            for (int k = 0; k < H * W * 3; k++) {
                float v = in[k] < 0.0f ? 0.1f * in[k] : in[k];
                ra[k] = v;
                v = fmaxf(0.0f, fminf(1.0f, 0.2f * v + 0.5f));
                v = fminf(fmaxf(v, 0.3f), 0.7f);
                rd[k] = fminf(v, 0.6f);
            }
            float *ga = read_t(&r, a, i), *gd = read_t(&r, d, i);
            near(ga, ra, (size_t)(H * W * 3), 1e-6f, "leaky relu");
            near(gd, rd, (size_t)(H * W * 3), 1e-6f, "hard sigmoid + clamp");
            free(in); free(ra); free(rd); free(ga); free(gd);
        }
        stop(&r);
        ir_graph_free(&g);
    }
    free(img[0]);
    free(img[1]);
}

/* The same operators on uint8 tensors: 256-entry tables, each output byte
 * round_half_even(f(dequantized input) / scale) + zero point. */
static void test_elementwise_quant(void **state)
{
    (void)state;
    const int H = 8, W = 8;
    uint8_t *img = image(H, W);
    ir_graph g = new_graph();
    int x = add_t(&g, "x", IR_U8, 4, (int64_t[]){1, H, W, 3});
    set_q(&g, x, 0.05f, 128);
    int a = add_act(&g, "leaky", IR_U8), b = add_act(&g, "hsig", IR_U8);
    int c = add_act(&g, "clamp", IR_U8);
    set_q(&g, a, 0.04f, 100);
    set_q(&g, b, 1.0f / 255.0f, 0);
    set_q(&g, c, 0.01f, 5);
    add_op(&g, IR_LEAKY_RELU, a, 1, x, -1, -1)->alpha = 0.25f;
    ir_op *hs = add_op(&g, IR_HARD_SIGMOID, b, 1, x, -1, -1);
    hs->alpha = 1.0f / 6.0f;
    hs->beta = 0.5f;
    ir_op *cl = add_op(&g, IR_CLAMP, c, 1, b, -1, -1);
    cl->lo = 0.25f;
    cl->hi = 0.75f;
    g.input = x;
    g.output = c;
    runner r;
    start(&r, &g, IMGSIM_PRECISION_QUANT, a, 1, 1);
    assert_int_equal(r.plan.quant, 1);
    run(&r, (const uint8_t *const *)&img, 1, MEAN, STD);
    size_t n = (size_t)(H * W * 3);
    uint8_t *ga = read_q(&r, a, 0, 0.04f, 100), *gc = read_q(&r, c, 0, 0.01f, 5);
    uint8_t *ra = malloc(n), *rc = malloc(n);
    assert_true(ra && rc);
    for (size_t k = 0; k < n; k++) {
        float v = ((float)img[k] - 128.0f) * 0.05f;
        float l = v < 0.0f ? 0.25f * v : v;
        float q = nearbyintf(l / 0.04f) + 100.0f;
        ra[k] = (uint8_t)fminf(fmaxf(q, 0.0f), 255.0f);
        float hsv = fmaxf(0.0f, fminf(1.0f, (1.0f / 6.0f) * v + 0.5f));
        uint8_t hb = (uint8_t)fminf(fmaxf(nearbyintf(hsv / (1.0f / 255.0f)), 0.0f), 255.0f);
        float cv = fminf(fmaxf((float)hb * (1.0f / 255.0f), 0.25f), 0.75f);
        rc[k] = (uint8_t)fminf(fmaxf(nearbyintf(cv / 0.01f) + 5.0f, 0.0f), 255.0f);
    }
    same_bytes(ga, ra, n, "quantized leaky relu");
    same_bytes(gc, rc, n, "quantized hard sigmoid + clamp");
    free(ga); free(gc); free(ra); free(rc); free(img);
    stop(&r);
    ir_graph_free(&g);
}

/* ---------------------------------------------------------------- explicit padding */

/* Asymmetric ONNX pads: conv (stride 2), max pool and average pool (padding not counted). */
static void test_explicit_pads(void **state)
{
    (void)state;
    const int H = 9, W = 11, OC = 5;
    uint8_t *img = image(H, W);
    float *in = normalised(img, (size_t)(H * W));
    float wt[OC * 3 * 3 * 3], bias[OC];
    for (int i = 0; i < OC * 27; i++)
        wt[i] = rndf(-1.0f, 1.0f);
    for (int i = 0; i < OC; i++)
        bias[i] = rndf(-0.5f, 0.5f);

    /* conv 3x3 stride 2, pads top 1 left 0 bottom 2 right 1; max pool 3x2 stride 2 pads
     * 0 / 1 / 2 / 1; one and two threads */
    ir_graph g;
    runner r;
    for (int threads = 1; threads <= 2; threads++) {
        g = new_graph();
        int x = add_t(&g, "x", IR_F32, 4, (int64_t[]){1, H, W, 3});
        int wc = add_const(&g, "w", IR_F32, 4, (int64_t[]){OC, 3, 3, 3}, wt);
        int bc = add_const(&g, "b", IR_F32, 1, (int64_t[]){OC}, bias);
        int c = add_act(&g, "conv", IR_F32), m = add_act(&g, "maxpool", IR_F32);
        ir_op *cv = add_op(&g, IR_CONV2D, c, 3, x, wc, bc);
        cv->stride_h = cv->stride_w = 2;
        pads(cv, 1, 0, 2, 1);
        ir_op *mp = add_op(&g, IR_MAX_POOL, m, 1, x, -1, -1);
        mp->kh = 3;
        mp->kw = 2;
        mp->stride_h = mp->stride_w = 2;
        pads(mp, 0, 1, 2, 1);
        g.input = x;
        g.output = m;
        start(&r, &g, IMGSIM_PRECISION_AUTO, c, threads, 1);
        /* floor((in + pads - k) / stride) + 1 */
        assert_int_equal(g.t[c].shape[1], (9 + 3 - 3) / 2 + 1);
        assert_int_equal(g.t[c].shape[2], (11 + 1 - 3) / 2 + 1);
        assert_int_equal(g.t[m].shape[1], (9 + 2 - 3) / 2 + 1);
        assert_int_equal(g.t[m].shape[2], (11 + 2 - 2) / 2 + 1);
        assert_int_equal(cv->pad_bottom, 2); /* kept, not recomputed */
        run(&r, (const uint8_t *const *)&img, 1, MEAN, STD);
        int coh = (int)g.t[c].shape[1], cow = (int)g.t[c].shape[2];
        int moh = (int)g.t[m].shape[1], mow = (int)g.t[m].shape[2];
        float *rc = malloc(sizeof(float) * (size_t)(coh * cow * OC));
        float *rm = malloc(sizeof(float) * (size_t)(moh * mow * 3));
        assert_true(rc && rm);
        conv_ref(in, H, W, 3, wt, bias, OC, 3, 3, 2, 2, 1, 0, 0, coh, cow, rc);
        pool_ref(in, H, W, 3, 3, 2, 2, 2, 0, 1, 1, moh, mow, rm);
        float *gc = read_t(&r, c, 0), *gm = read_t(&r, m, 0);
        near(gc, rc, (size_t)(coh * cow * OC), 1e-4f, "conv with asymmetric pads");
        near(gm, rm, (size_t)(moh * mow * 3), 0.0f, "max pool with asymmetric pads");
        free(rc); free(rm); free(gc); free(gm);
        stop(&r);
        ir_graph_free(&g);
    }

    /* average pools: 3x3 stride 1 pads 1 / 2 / 0 / 1 and 2x3 stride 2 pads 1 / 0 / 1 / 2 */
    g = new_graph();
    int x = add_t(&g, "x", IR_F32, 4, (int64_t[]){1, H, W, 3});
    int a1 = add_act(&g, "avg1", IR_F32), a2 = add_act(&g, "avg2", IR_F32);
    ir_op *p1 = add_op(&g, IR_AVG_POOL, a1, 1, x, -1, -1);
    p1->kh = p1->kw = 3;
    pads(p1, 1, 2, 0, 1);
    ir_op *p2 = add_op(&g, IR_AVG_POOL, a2, 1, x, -1, -1);
    p2->kh = 2;
    p2->kw = 3;
    p2->stride_h = p2->stride_w = 2;
    pads(p2, 1, 0, 1, 2);
    g.input = x;
    g.output = a2;
    start(&r, &g, IMGSIM_PRECISION_AUTO, a1, 1, 1);
    run(&r, (const uint8_t *const *)&img, 1, MEAN, STD);
    for (int k = 0; k < 2; k++) {
        const ir_op *p = k ? p2 : p1;
        int t = k ? a2 : a1, oh = (int)g.t[t].shape[1], ow = (int)g.t[t].shape[2];
        float *ref = malloc(sizeof(float) * (size_t)(oh * ow * 3));
        assert_non_null(ref);
        pool_ref(in, H, W, 3, p->kh, p->kw, p->stride_h, p->stride_w, p->pad_top, p->pad_left,
                 0, oh, ow, ref);
        float *got = read_t(&r, t, 0);
        near(got, ref, (size_t)(oh * ow * 3), 1e-5f, k ? "average pool 2" : "average pool 1");
        free(ref);
        free(got);
    }
    stop(&r);
    ir_graph_free(&g);

    /* pads as large as the window are refused (a window of padding only) */
    g = new_graph();
    x = add_t(&g, "x", IR_F32, 4, (int64_t[]){1, H, W, 3});
    a1 = add_act(&g, "avg", IR_F32);
    p1 = add_op(&g, IR_AVG_POOL, a1, 1, x, -1, -1);
    p1->kh = p1->kw = 2;
    pads(p1, 2, 0, 0, 0);
    g.input = x;
    g.output = a1;
    imgsim_error e = {0};
    assert_int_equal(ir_infer_shapes(&g, &e), IMGSIM_E_MODEL);
    ir_graph_free(&g);
    free(in);
    free(img);
}

/* uint8 max pool with asymmetric pads: padding never wins. */
static void test_explicit_pads_quant(void **state)
{
    (void)state;
    const int H = 8, W = 10;
    uint8_t *img = image(H, W);
    ir_graph g = new_graph();
    int x = add_t(&g, "x", IR_U8, 4, (int64_t[]){1, H, W, 3});
    set_q(&g, x, 0.1f, 3);
    int m = add_act(&g, "maxpool", IR_U8);
    set_q(&g, m, 0.1f, 3);
    ir_op *mp = add_op(&g, IR_MAX_POOL, m, 1, x, -1, -1);
    mp->kh = mp->kw = 3;
    mp->stride_h = mp->stride_w = 2;
    pads(mp, 1, 0, 2, 2);
    g.input = x;
    g.output = m;
    runner r;
    start(&r, &g, IMGSIM_PRECISION_QUANT, m, 1, 1);
    run(&r, (const uint8_t *const *)&img, 1, MEAN, STD);
    int oh = (int)g.t[m].shape[1], ow = (int)g.t[m].shape[2];
    float *f = malloc(sizeof(float) * (size_t)(H * W * 3)), *ref = malloc(sizeof(float) * (size_t)(oh * ow * 3));
    assert_true(f && ref);
    for (int k = 0; k < H * W * 3; k++)
        f[k] = img[k];
    pool_ref(f, H, W, 3, 3, 3, 2, 2, 1, 0, 1, oh, ow, ref);
    uint8_t *got = read_q(&r, m, 0, 0.1f, 3), *want = malloc((size_t)(oh * ow * 3));
    assert_non_null(want);
    for (int k = 0; k < oh * ow * 3; k++)
        want[k] = (uint8_t)ref[k];
    same_bytes(got, want, (size_t)(oh * ow * 3), "uint8 max pool with pads");
    free(f); free(ref); free(got); free(want); free(img);
    stop(&r);
    ir_graph_free(&g);
}

/* ---------------------------------------------------------------- broadcasting */

/* Squeeze-excite style: x * mean(x) ([1,1,1,C] activation), * a rank-2 activation [1,C],
 * * a constant [C], then scalar - that (a rank-0 constant on the left); batch of 3 images,
 * so each image must broadcast only over itself. */
static void test_broadcast(void **state)
{
    (void)state;
    const int H = 8, W = 9, N = 3;
    uint8_t *img[N];
    for (int i = 0; i < N; i++)
        img[i] = image(H, W);
    for (int threads = 1; threads <= 2; threads++) {
        ir_graph g = new_graph();
        int32_t axes[2] = {1, 2};
        float cvec[3] = {0.5f, -2.0f, 3.0f}, cs = 1.5f;
        int x = add_t(&g, "x", IR_F32, 4, (int64_t[]){1, H, W, 3});
        int ax = add_const(&g, "axes", IR_I32, 1, (int64_t[]){2}, axes);
        int cc = add_const(&g, "cvec", IR_F32, 1, (int64_t[]){3}, cvec);
        int sc = add_const(&g, "scalar", IR_F32, 0, NULL, &cs);
        int m4 = add_act(&g, "mean4", IR_F32), m2 = add_act(&g, "mean2", IR_F32);
        int y = add_act(&g, "y", IR_F32), z = add_act(&g, "z", IR_F32);
        int u = add_act(&g, "u", IR_F32), o = add_act(&g, "o", IR_F32);
        add_op(&g, IR_MEAN, m4, 2, x, ax, -1)->keep_dims = 1;
        add_op(&g, IR_MEAN, m2, 2, x, ax, -1);
        add_op(&g, IR_MUL, y, 2, x, m4, -1);
        add_op(&g, IR_MUL, z, 2, m2, y, -1);
        add_op(&g, IR_MUL, u, 2, z, cc, -1);
        add_op(&g, IR_SUB, o, 2, sc, u, -1);
        g.input = x;
        g.output = o;
        runner r;
        start(&r, &g, IMGSIM_PRECISION_FP32, y, threads, N);
        assert_int_equal(g.t[m2].rank, 2);
        assert_int_equal(g.t[o].rank, 4);
        assert_int_equal(g.t[o].shape[1], H);
        assert_int_equal(g.t[o].shape[3], 3);
        run(&r, (const uint8_t *const *)img, N, MEAN, STD);
        size_t n = (size_t)(H * W * 3);
        for (int i = 0; i < N; i++) {
            float *in = normalised(img[i], (size_t)(H * W));
            double mean[3] = {0, 0, 0};
            for (size_t k = 0; k < n; k++)
                mean[k % 3] += in[k];
            float *ry = malloc(sizeof(float) * n), *ro = malloc(sizeof(float) * n);
            assert_true(ry && ro);
            for (size_t k = 0; k < n; k++) {
                float mk = (float)(mean[k % 3] / (H * W));
                ry[k] = in[k] * mk;
                ro[k] = cs - mk * ry[k] * cvec[k % 3];
            }
            float *gy = read_t(&r, y, i), *go = read_t(&r, o, i);
            near(gy, ry, n, 1e-5f, "x * mean(x) [1,1,1,C]");
            near(go, ro, n, 1e-5f, "scalar - [1,C] * y * [C]");
            free(in); free(ry); free(ro); free(gy); free(go);
        }
        stop(&r);
        ir_graph_free(&g);
    }
    for (int i = 0; i < N; i++)
        free(img[i]);
}

/* ---------------------------------------------------------------- folded nodes */

/* fp32 Mul(x, Sigmoid(x)) after a convolution (fconv's epilogue) and after a depthwise
 * convolution (an in-place pass), operands in both orders; and a Relu6 after an Add folded
 * into the Add. */
static void test_folded_swish_and_clamp(void **state)
{
    (void)state;
    const int H = 8, W = 9, C = 20;
    uint8_t *img[2] = {image(H, W), image(H, W)};
    float w1[C * 3], b1[C], w2[9 * C];
    for (int i = 0; i < C * 3; i++)
        w1[i] = rndf(-1.0f, 1.0f);
    for (int i = 0; i < C; i++)
        b1[i] = rndf(-0.5f, 0.5f);
    for (int i = 0; i < 9 * C; i++)
        w2[i] = rndf(-0.5f, 0.5f);
    for (int threads = 1; threads <= 2; threads++) {
        ir_graph g = new_graph();
        int x = add_t(&g, "x", IR_F32, 4, (int64_t[]){1, H, W, 3});
        int cw1 = add_const(&g, "w1", IR_F32, 4, (int64_t[]){C, 1, 1, 3}, w1);
        int cb1 = add_const(&g, "b1", IR_F32, 1, (int64_t[]){C}, b1);
        int cw2 = add_const(&g, "w2", IR_F32, 4, (int64_t[]){1, 3, 3, C}, w2);
        int t1 = add_act(&g, "t1", IR_F32), s1 = add_act(&g, "s1", IR_F32);
        int y1 = add_act(&g, "y1", IR_F32), t2 = add_act(&g, "t2", IR_F32);
        int s2 = add_act(&g, "s2", IR_F32), y2 = add_act(&g, "y2", IR_F32);
        int a = add_act(&g, "a", IR_F32), r = add_act(&g, "r", IR_F32);
        add_op(&g, IR_CONV2D, t1, 3, x, cw1, cb1);
        add_op(&g, IR_LOGISTIC, s1, 1, t1, -1, -1);
        add_op(&g, IR_MUL, y1, 2, t1, s1, -1);
        pads(add_op(&g, IR_DWCONV2D, t2, 2, y1, cw2, -1), 1, 1, 1, 1);
        add_op(&g, IR_LOGISTIC, s2, 1, t2, -1, -1);
        add_op(&g, IR_MUL, y2, 2, s2, t2, -1);
        add_op(&g, IR_ADD, a, 2, y2, y1, -1);
        add_op(&g, IR_RELU6, r, 1, a, -1, -1);
        g.input = x;
        g.output = r;
        runner rn;
        start(&rn, &g, IMGSIM_PRECISION_FP32, y1, threads, 2);
        if (fconv_available()) {
            assert_true(rn.plan.swish[0] && rn.plan.fused[1] && rn.plan.fused[2]);
            assert_true(rn.plan.swish[3] && rn.plan.fused[4] && rn.plan.fused[5]);
        }
        assert_true(rn.plan.fused[7]);
        assert_true(rn.plan.fuse_lo[6] == 0.0f && rn.plan.fuse_hi[6] == 6.0f);
        run(&rn, (const uint8_t *const *)img, 2, MEAN, STD);
        size_t n = (size_t)(H * W * C);
        for (int i = 0; i < 2; i++) {
            float *in = normalised(img[i], (size_t)(H * W));
            float *ry1 = malloc(sizeof(float) * n), *rt2 = malloc(sizeof(float) * n);
            float *rr = malloc(sizeof(float) * n);
            assert_true(ry1 && rt2 && rr);
            conv_ref(in, H, W, 3, w1, b1, C, 1, 1, 1, 1, 0, 0, 0, H, W, ry1);
            for (size_t k = 0; k < n; k++)
                ry1[k] = (float)(ry1[k] / (1.0 + exp(-(double)ry1[k])));
            conv_ref(ry1, H, W, C, w2, NULL, C, 3, 3, 1, 1, 1, 1, 1, H, W, rt2);
            for (size_t k = 0; k < n; k++) {
                double v = rt2[k] / (1.0 + exp(-(double)rt2[k])) + ry1[k];
                rr[k] = (float)(v < 0 ? 0 : v > 6 ? 6 : v);
            }
            float *gy1 = read_t(&rn, y1, i), *gr = read_t(&rn, r, i);
            near(gy1, ry1, n, 1e-5f, "conv + swish");
            near(gr, rr, n, 1e-5f, "depthwise + swish, add + relu6");
            free(in); free(ry1); free(rt2); free(rr); free(gy1); free(gr);
        }
        stop(&rn);
        ir_graph_free(&g);
    }
    free(img[0]);
    free(img[1]);
}

/* ---------------------------------------------------------------- int8 per-channel */

enum { QH = 8, QW = 8, C1 = 40, NCLS = 10 };
static const float SX = 0.02f, S1 = 0.05f, S2 = 0.04f, SF = 0.1f, SB = 0.01f, SA = 0.12f;
static const float SG = 0.03f;
static const int32_t ZX = 114, Z1 = 0, Z2 = 7, ZF = 76, ZB = 112, ZA = 80, ZG = 9;

typedef struct qmodel {
    int8_t w1[C1 * 3 * 3 * 3], w2[3 * 3 * C1], wf[NCLS * 4 * 4 * C1];
    float s1[C1], s2[C1], sf[NCLS];
    int32_t b1[C1], b2[C1];
    uint8_t bias_add[NCLS];
} qmodel;

static void qmodel_init(qmodel *q)
{
    for (size_t i = 0; i < sizeof q->w1; i++)
        q->w1[i] = (int8_t)rnd8();
    for (size_t i = 0; i < sizeof q->w2; i++)
        q->w2[i] = (int8_t)rnd8();
    for (size_t i = 0; i < sizeof q->wf; i++)
        q->wf[i] = (int8_t)(rnd8() / 4 - 32);
    for (int c = 0; c < C1; c++) {
        q->s1[c] = rndf(0.5f, 2.0f) * 1e-3f;
        q->s2[c] = rndf(0.5f, 2.0f) * 1e-2f;
        q->b1[c] = (int32_t)rnd8() * 40 - 5000;
        q->b2[c] = (int32_t)rnd8() * 20 - 2500;
    }
    q->s1[3] = 0.0f; /* a dead channel */
    for (int c = 0; c < NCLS; c++) {
        q->sf[c] = rndf(0.5f, 2.0f) * 2e-3f;
        q->bias_add[c] = rnd8();
    }
}

/* input u8 [1,8,8,3] -> conv 3x3 stride 2, pads 1/0/1/1, int8 per-channel, + int32 bias ->
 * c1 [1,4,4,40] -> depthwise 3x3, pads 0/1/2/1, int8 per-channel (qdim 3) -> c2 [1,4,4,40]
 * -> fully connected [10, 640] int8 per-channel -> f [1,10] -> + constant uint8 [10] (ONNX
 * QLinearAdd of the classifier bias) -> dequantize to float; and c2 -> global average pool
 * (keep dims) -> gap [1,1,1,40]. Tensor indices in `t`: x c1 c2 f add out gap. */
static ir_graph qgraph(const qmodel *q, int t[7])
{
    ir_graph g = new_graph();
    int x = add_t(&g, "x", IR_U8, 4, (int64_t[]){1, QH, QW, 3});
    set_q(&g, x, SX, ZX);
    int w1 = add_const(&g, "w1", IR_I8, 4, (int64_t[]){C1, 3, 3, 3}, q->w1);
    set_pc(&g, w1, q->s1, C1, 0);
    int b1 = add_const(&g, "b1", IR_I32, 1, (int64_t[]){C1}, q->b1);
    int w2 = add_const(&g, "w2", IR_I8, 4, (int64_t[]){1, 3, 3, C1}, q->w2);
    set_pc(&g, w2, q->s2, C1, 3);
    int b2 = add_const(&g, "b2", IR_I32, 1, (int64_t[]){C1}, q->b2);
    int wf = add_const(&g, "wf", IR_I8, 2, (int64_t[]){NCLS, 4 * 4 * C1}, q->wf);
    set_pc(&g, wf, q->sf, NCLS, 0);
    int ba = add_const(&g, "bias", IR_U8, 1, (int64_t[]){NCLS}, q->bias_add);
    set_q(&g, ba, SB, ZB);
    int c1 = add_act(&g, "c1", IR_U8), c2 = add_act(&g, "c2", IR_U8);
    int f = add_act(&g, "fc", IR_U8), a = add_act(&g, "add", IR_U8);
    int out = add_act(&g, "logits", IR_F32);
    set_q(&g, c1, S1, Z1);
    set_q(&g, c2, S2, Z2);
    set_q(&g, f, SF, ZF);
    set_q(&g, a, SA, ZA);
    ir_op *op = add_op(&g, IR_CONV2D, c1, 3, x, w1, b1);
    op->stride_h = op->stride_w = 2;
    pads(op, 1, 0, 1, 1);
    op = add_op(&g, IR_DWCONV2D, c2, 3, c1, w2, b2);
    pads(op, 0, 1, 2, 1);
    op->stride_h = 1;
    add_op(&g, IR_FULLY_CONNECTED, f, 2, c2, wf, -1);
    add_op(&g, IR_ADD, a, 2, f, ba, -1);
    add_op(&g, IR_DEQUANTIZE, out, 1, a, -1, -1);
    int32_t axes[2] = {1, 2};
    int ax = add_const(&g, "axes", IR_I32, 1, (int64_t[]){2}, axes);
    int gp = add_act(&g, "gap", IR_U8);
    set_q(&g, gp, SG, ZG);
    add_op(&g, IR_MEAN, gp, 2, c2, ax, -1)->keep_dims = 1;
    g.input = x;
    g.output = out;
    int tt[7] = {x, c1, c2, f, a, out, gp};
    memcpy(t, tt, sizeof tt);
    return g;
}

/* The scalar reference of qgraph for one image: c1, c2, f, add and gap bytes, ONNX Runtime's
 * arithmetic throughout. */
static void qgraph_ref(const qmodel *q, const uint8_t *x, uint8_t *c1, uint8_t *c2, uint8_t *f,
                       uint8_t *add, uint8_t *gap)
{
    qconv_ref(x, QH, QW, 3, ZX, SX, q->w1, q->s1, q->b1, C1, 3, 3, 2, 2, 1, 0, 0, 4, 4, S1, Z1,
              c1);
    qconv_ref(c1, 4, 4, C1, Z1, S1, q->w2, q->s2, q->b2, C1, 3, 3, 1, 1, 0, 1, 1, 4, 4, S2, Z2,
              c2);
    /* fully connected = a 1x1 "image" with 640 channels */
    qconv_ref(c2, 1, 1, 4 * 4 * C1, Z2, S2, q->wf, q->sf, NULL, NCLS, 1, 1, 1, 1, 0, 0, 0, 1, 1,
              SF, ZF, f);
    /* QLinearAdd (MLAS): fixed = zc - fma(ra, za, rb * zb); fma(a, ra, fma(b, rb, fixed)) */
    float ra = SF / SA, rb = SB / SA, fixed = (float)ZA - fmaf(ra, (float)ZF, rb * (float)ZB);
    for (int k = 0; k < NCLS; k++) {
        float v = fmaf((float)f[k], ra, fmaf((float)q->bias_add[k], rb, fixed));
        add[k] = (uint8_t)fminf(fmaxf(nearbyintf(v), 0.0f), 255.0f);
    }
    /* QLinearGlobalAveragePool: (sum - zx * hw) * (sx / (sy * hw)), clamped, rounded, + zy */
    float gs = S2 / (SG * 16.0f);
    for (int ch = 0; ch < C1; ch++) {
        int32_t acc = -Z2 * 16;
        for (int p = 0; p < 16; p++)
            acc += c2[p * C1 + ch];
        float v = fminf(fmaxf((float)acc * gs, 0.0f - ZG), 255.0f - ZG);
        gap[ch] = (uint8_t)((int32_t)nearbyintf(v) + ZG);
    }
}

static void test_int8_per_channel(void **state)
{
    (void)state;
    if (!qconv_available()) {
        fprintf(stderr, "skipped: this CPU has no AVX512-VNNI; int8 per-channel models run in "
                        "fp32 here\n");
        skip();
    }
    qmodel *q = malloc(sizeof *q);
    assert_non_null(q);
    qmodel_init(q);
    enum { N = 3 };
    uint8_t *img[N];
    for (int i = 0; i < N; i++)
        img[i] = image(QH, QW);
    for (int threads = 1; threads <= 2; threads++)
        for (int view = 0; view < 3; view++) {
            int t[7];
            ir_graph g = qgraph(q, t);
            runner r;
            /* view 0: read c1 (emb) and c2 (out); view 1: f (emb) and the float output;
             * view 2: the pool (out) */
            if (view == 0)
                g.output = t[2];
            if (view == 2)
                g.output = t[6];
            start(&r, &g, IMGSIM_PRECISION_QUANT, view == 0 ? t[1] : t[3], threads, N);
            assert_int_equal(r.plan.ort_arith, 1);
            assert_int_equal(r.plan.quant, 1);
            assert_int_equal(g.t[t[3]].rank, 2);
            assert_int_equal(g.t[t[3]].shape[1], NCLS);
            for (int batch = 1; batch <= N; batch += N - 1) {
                run(&r, (const uint8_t *const *)img, batch, MEAN, STD);
                for (int i = 0; i < batch; i++) {
                    uint8_t c1[4 * 4 * C1], c2[4 * 4 * C1], f[NCLS], add[NCLS], gap[C1];
                    qgraph_ref(q, img[i], c1, c2, f, add, gap);
                    if (view == 2) {
                        uint8_t *gg = read_q(&r, t[6], i, SG, ZG);
                        same_bytes(gg, gap, sizeof gap, "global average pool");
                        free(gg);
                    } else if (view == 0) {
                        uint8_t *g1 = read_q(&r, t[1], i, S1, Z1), *g2 = read_q(&r, t[2], i, S2, Z2);
                        same_bytes(g1, c1, sizeof c1, "int8 per-channel conv");
                        same_bytes(g2, c2, sizeof c2, "int8 per-channel depthwise");
                        free(g1);
                        free(g2);
                    } else {
                        uint8_t *gf = read_q(&r, t[3], i, SF, ZF);
                        same_bytes(gf, f, sizeof f, "int8 per-channel fully connected");
                        /* the float output dequantizes the add's bytes (an alias of them) */
                        uint8_t *go = read_q(&r, t[5], i, SA, ZA);
                        same_bytes(go, add, sizeof add, "quantized add with a constant");
                        free(gf);
                        free(go);
                    }
                }
            }
            stop(&r);
            ir_graph_free(&g);
        }
    for (int i = 0; i < N; i++)
        free(img[i]);
    free(q);
}

/* The same model in fp32 (what CPUs without VNNI run: weights dequantized per channel) agrees
 * with the quantized reference to within a few output steps. */
static void test_int8_per_channel_fp32(void **state)
{
    (void)state;
    qmodel *q = malloc(sizeof *q);
    assert_non_null(q);
    qmodel_init(q);
    uint8_t *img = image(QH, QW);
    int t[7];
    ir_graph g = qgraph(q, t);
    runner r;
    start(&r, &g, IMGSIM_PRECISION_FP32, t[3], 2, 1);
    assert_int_equal(r.plan.quant, 0);
    run(&r, (const uint8_t *const *)&img, 1, MEAN, STD);
    uint8_t c1[4 * 4 * C1], c2[4 * 4 * C1], f[NCLS], add[NCLS], gap[C1];
    /* the fp32 plan takes raw pixels through the input's quantization, like a TFLite model */
    qgraph_ref(q, img, c1, c2, f, add, gap);
    float *go = read_t(&r, t[5], 0), *gf = read_t(&r, t[3], 0);
    for (int k = 0; k < NCLS; k++) {
        float fq = ((float)f[k] - ZF) * SF, aq = ((float)add[k] - ZA) * SA;
        if (fabsf(gf[k] - fq) > 3 * SF)
            fail_msg("fp32 fully connected %d: %g, quantized %g", k, (double)gf[k], (double)fq);
        if (fabsf(go[k] - aq) > 3 * SA)
            fail_msg("fp32 output %d: %g, quantized %g", k, (double)go[k], (double)aq);
    }
    free(go);
    free(gf);
    free(img);
    stop(&r);
    ir_graph_free(&g);
    free(q);
}

/* ---------------------------------------------------------------- float-fed inputs */

/* g->input_from_float: quant plans quantize the normalised image with the input's scale and
 * zero point, q = round_half_even(((v - mean) / std) / scale) + zp clamped; fp32 plans just
 * normalise. */
static void test_input_from_float(void **state)
{
    (void)state;
    const int H = 8, W = 8;
    uint8_t *img = image(H, W);
    img[0] = 0;   /* clamps low */
    img[1] = 255; /* clamps high */
    for (int prec = 0; prec < 2; prec++) {
        ir_graph g = new_graph();
        int x = add_t(&g, "x", IR_U8, 4, (int64_t[]){1, H, W, 3});
        set_q(&g, x, 0.0186f, 114);
        int y = add_act(&g, "relu", IR_U8);
        set_q(&g, y, 0.0186f, 114);
        add_op(&g, IR_RELU, y, 1, x, -1, -1);
        g.input = x;
        g.output = y;
        g.input_from_float = 1;
        runner r;
        start(&r, &g, prec ? IMGSIM_PRECISION_FP32 : IMGSIM_PRECISION_QUANT, x, 2, 1);
        float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
        for (int pass = 0; pass < 2; pass++) { /* second pass: other mean/std, table rebuilt */
            run(&r, (const uint8_t *const *)&img, 1, mean, std);
            size_t n = (size_t)(H * W * 3);
            float *got = read_t(&r, x, 0);
            for (size_t k = 0; k < n; k++) {
                float f = ((float)img[k] - mean[k % 3]) / std[k % 3];
                float want;
                if (prec == 0) {
                    float qv = fminf(fmaxf(nearbyintf(f / 0.0186f) + 114.0f, 0.0f), 255.0f);
                    want = (qv - 114.0f) * 0.0186f;
                } else {
                    want = ((float)img[k] - mean[k % 3]) * (1.0f / std[k % 3]);
                }
                if (!(fabsf(got[k] - want) <= 1e-6f * (1.0f + fabsf(want))))
                    fail_msg("%s input %zu (byte %u): %g, want %g", prec ? "fp32" : "quant", k,
                             img[k], (double)got[k], (double)want);
            }
            free(got);
            for (int c = 0; c < 3; c++) {
                mean[c] = 127.5f;
                std[c] = 127.5f;
            }
        }
        stop(&r);
        ir_graph_free(&g);
    }
    free(img);
}

static int setup(void **state)
{
    (void)state;
    imgsim_error e = {0};
    return imgsim_init("test_exec_ops", &e) == IMGSIM_OK ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elementwise_fp32),
        cmocka_unit_test(test_elementwise_quant),
        cmocka_unit_test(test_explicit_pads),
        cmocka_unit_test(test_explicit_pads_quant),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_folded_swish_and_clamp),
        cmocka_unit_test(test_int8_per_channel),
        cmocka_unit_test(test_int8_per_channel_fp32),
        cmocka_unit_test(test_input_from_float),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

/*
 * test_onnx_reader.c — the ONNX front-end: the real int8 zoo model (structure, and bird ->
 * chickadee through the library), small models written here with a minimal protobuf writer
 * (layout conversion, BatchNormalization folding, activation fusion, depthwise, Flatten ->
 * Gemm column order, folded shape arithmetic, external data; numerics against a direct NCHW
 * reference), and damaged or foreign files: each must give a one-line error, never a crash.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "model/ir/graph.h"
#include "irtest.h"
#include "model/onnx/onnx.h"
#include "model/onnx/onnx_pb.h"

/* ------------------------------------------------------------------ protobuf writer */

typedef tu_buf pbw;

static void w_varint(pbw *b, uint64_t v)
{
    uint8_t t[10];
    int k = 0;
    do {
        t[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            t[k] |= 0x80;
        k++;
    } while (v);
    tu_buf_put(b, t, (size_t)k);
}

static void w_tag(pbw *b, int field, int wire) { w_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void w_int(pbw *b, int field, int64_t v)
{
    w_tag(b, field, 0);
    w_varint(b, (uint64_t)v);
}

static void w_bytes(pbw *b, int field, const void *d, size_t n)
{
    w_tag(b, field, 2);
    w_varint(b, n);
    tu_buf_put(b, d, n);
}

static void w_str(pbw *b, int field, const char *s) { w_bytes(b, field, s, strlen(s)); }

static void w_msg(pbw *b, int field, pbw *sub)
{
    w_bytes(b, field, sub->p, sub->n);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}

static void attr_int(pbw *n, const char *name, int64_t v)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_int(&a, 20, 2);
    w_int(&a, 3, v);
    w_msg(n, 5, &a);
}

static void attr_ints(pbw *n, const char *name, const int64_t *v, int k)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_int(&a, 20, 7);
    for (int i = 0; i < k; i++) /* unpacked, as the onnx package writes them */
        w_int(&a, 8, v[i]);
    w_msg(n, 5, &a);
}

static void attr_float(pbw *n, const char *name, float f)
{
    pbw a = {0};
    w_str(&a, 1, name);
    w_int(&a, 20, 1);
    w_tag(&a, 2, 5);
    tu_buf_put(&a, &f, 4);
    w_msg(n, 5, &a);
}

/* Node `op` named `name`; inputs / outputs comma-separated ("x,,b": the second is absent). */
static void node(pbw *g, const char *op, const char *name, const char *ins, const char *outs,
                 pbw *attrs)
{
    pbw n = {0};
    for (int pass = 0; pass < 2; pass++) {
        const char *s = pass ? outs : ins;
        while (s && *s) {
            const char *e = strchr(s, ',');
            size_t l = e ? (size_t)(e - s) : strlen(s);
            w_bytes(&n, pass + 1, s, l);
            s = e ? e + 1 : NULL;
        }
    }
    w_str(&n, 3, name);
    w_str(&n, 4, op);
    if (attrs) {
        tu_buf_put(&n, attrs->p, attrs->n);
        free(attrs->p);
        memset(attrs, 0, sizeof *attrs);
    }
    w_msg(g, 1, &n);
}

static void tensor_msg(pbw *t, const char *name, int dtype, const int64_t *dims, int nd,
                       const void *data, size_t nbytes)
{
    for (int i = 0; i < nd; i++)
        w_int(t, 1, dims[i]);
    w_int(t, 2, dtype);
    w_str(t, 8, name);
    w_bytes(t, 9, data, nbytes);
}

static void init(pbw *g, const char *name, int dtype, const int64_t *dims, int nd,
                 const void *data, size_t nbytes)
{
    pbw t = {0};
    tensor_msg(&t, name, dtype, dims, nd, data, nbytes);
    w_msg(g, 5, &t);
}

static void init_i64(pbw *g, const char *name, const int64_t *v, int64_t k)
{
    init(g, name, 7, &k, 1, v, sizeof(int64_t) * (size_t)k);
}

/* graph input (field 11) or output (12); a dim of -1 is symbolic */
static void value_info(pbw *g, int field, const char *name, const int64_t *dims, int nd)
{
    pbw shape = {0}, tt = {0}, type = {0}, vi = {0};
    for (int i = 0; i < nd; i++) {
        pbw d = {0};
        if (dims[i] < 0)
            w_str(&d, 2, "batch");
        else
            w_int(&d, 1, dims[i]);
        w_msg(&shape, 1, &d);
    }
    w_int(&tt, 1, 1);
    w_msg(&tt, 2, &shape);
    w_msg(&type, 1, &tt);
    w_str(&vi, 1, name);
    w_msg(&vi, 2, &type);
    w_msg(g, field, &vi);
}

static pbw model(pbw *graph, int opset)
{
    pbw m = {0}, os = {0};
    w_int(&m, 1, 8);
    w_str(&m, 2, "imgsim-test");
    w_msg(&m, 7, graph);
    w_str(&os, 1, "");
    w_int(&os, 2, opset);
    w_msg(&m, 8, &os);
    return m;
}

static imgsim_status read_pb(pbw *m, const char *dir, ir_graph *g, imgsim_error *e)
{
    uint8_t *b = m->p;
    size_t n = m->n;
    memset(m, 0, sizeof *m);
    return onnx_read(b, n, dir, g, e); /* takes b */
}

static const ir_op *first(const ir_graph *g, ir_op_kind k)
{
    for (int i = 0; i < g->nops; i++)
        if (g->ops[i].kind == k)
            return &g->ops[i];
    return NULL;
}

static void one_line_error(imgsim_status s, const imgsim_error *e)
{
    assert_int_not_equal(s, IMGSIM_OK);
    assert_true(strlen(e->msg) > 0);
    assert_null(strchr(e->msg, '\n'));
}

/* ------------------------------------------------------------------ the int8 zoo model */

static void test_int8_structure(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = tu_read(tu_shared("models/mobilenetv2-12-int8.onnx"), &len);
    ir_graph g;
    imgsim_error e = {0};
    if (onnx_read(b, len, tu_shared("models"), &g, &e) != IMGSIM_OK)
        fail_msg("%s", e.msg);
    const ir_tensor *in = &g.t[g.input];
    assert_int_equal(in->rank, 4);
    assert_int_equal(in->shape[0], 1);
    assert_int_equal(in->shape[1], 224);
    assert_int_equal(in->shape[2], 224);
    assert_int_equal(in->shape[3], 3);
    assert_int_equal(in->dtype, IR_U8);
    assert_true(in->quantized);
    assert_int_equal(in->zero_point, 114);
    assert_true(g.input_from_float);
    assert_true(g.output_logits);
    assert_int_equal(ir_numel(&g.t[g.output]), 1000);
    /* 52 quantized convolutions, 17 of them depthwise; 11 QLinearAdd (10 residual, one the
     * classifier's bias); the Shape chain folded, its DequantizeLinear dropped */
    assert_int_equal(ir_count_ops(&g, IR_CONV2D) + ir_count_ops(&g, IR_DWCONV2D), 52);
    assert_int_equal(ir_count_ops(&g, IR_DWCONV2D), 17);
    assert_int_equal(ir_count_ops(&g, IR_ADD), 11);
    assert_int_equal(ir_count_ops(&g, IR_FULLY_CONNECTED), 1);
    assert_int_equal(ir_count_ops(&g, IR_MEAN), 1);
    assert_int_equal(ir_count_ops(&g, IR_RESHAPE), 1);
    assert_int_equal(ir_count_ops(&g, IR_DEQUANTIZE), 1);
    assert_int_equal(g.nops, 67);
    for (int i = 0; i < g.nops; i++) {
        const ir_op *op = &g.ops[i];
        const ir_tensor *y = &g.t[op->out];
        assert_true(y->rank >= 0);
        if (op->kind != IR_CONV2D && op->kind != IR_DWCONV2D && op->kind != IR_FULLY_CONNECTED)
            continue;
        const ir_tensor *w = &g.t[op->in[1]];
        int dw = op->kind == IR_DWCONV2D;
        int64_t oc = dw ? w->shape[3] : w->shape[0];
        assert_int_equal(w->dtype, IR_I8);
        assert_true(w->quantized);
        assert_int_equal(w->nchannel_scales, oc);
        assert_int_equal(w->qdim, dw ? 3 : 0);
        if (dw) {
            assert_int_equal(w->shape[0], 1);
            assert_int_equal(op->depth_mult, 1);
        }
        assert_int_equal(y->dtype, IR_U8);
        assert_true(y->quantized);
        assert_true(op->kind == IR_FULLY_CONNECTED || op->pad_explicit);
        if (op->kind == IR_FULLY_CONNECTED) {
            assert_int_equal(op->nin, 2); /* the bias is the QLinearAdd after it */
            continue;
        }
        assert_int_equal(g.t[op->in[2]].dtype, IR_I32);
        assert_int_equal(ir_numel(&g.t[op->in[2]]), oc);
    }
    /* the first convolution: 3x3 stride 2 with ONNX pads 1,1,1,1 (not TensorFlow SAME) */
    const ir_op *c0 = first(&g, IR_CONV2D);
    assert_int_equal(c0->stride_h, 2);
    assert_int_equal(c0->pad_top, 1);
    assert_int_equal(c0->pad_left, 1);
    assert_int_equal(g.t[c0->out].shape[1], 112);
    assert_string_equal(g.t[c0->out].name, "474_quantized");
    /* the classifier: weights [1000, 1280] with 1000 scales */
    const ir_op *fc = first(&g, IR_FULLY_CONNECTED);
    assert_int_equal(g.t[fc->in[1]].shape[0], 1000);
    assert_int_equal(g.t[fc->in[1]].shape[1], 1280);
    int pool = ir_find_tensor(&g, "464_quantized");
    assert_true(pool >= 0);
    assert_int_equal(ir_numel(&g.t[pool]), 1280);
    int pp = ir_producer(&g, pool);
    assert_true(pp >= 0);
    assert_int_equal(g.ops[pp].kind, IR_MEAN);
    ir_graph_free(&g);
}

static int argmax(const float *p, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[b])
            b = i;
    return b;
}

/* The zoo file with an unknown field appended: the same model, but a SHA-256 the registry
 * does not know, so it opens as a bare file (defaults: ImageNet mean / std, the
 * imagenet_labels.txt beside it, offset 1 found from its 1001 lines). */
static imgsim_model *bare_int8(void)
{
    size_t len;
    uint8_t *b = tu_read(tu_shared("models/mobilenetv2-12-int8.onnx"), &len);
    b = realloc(b, len + 3);
    assert_non_null(b);
    memcpy(b + len, "\xa0\x06\x00", 3); /* field 100, varint 0 */
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_out("bare_int8.onnx"));
    tu_write(path, b, len + 3);
    free(b);
    b = tu_read(tu_shared("models/imagenet_labels.txt"), &len);
    tu_write(tu_out("imagenet_labels.txt"), b, len);
    free(b);
    imgsim_model_opts o;
    imgsim_model_opts_default(&o);
    o.threads = 2;
    imgsim_model *m = NULL;
    imgsim_error e = {0};
    if (imgsim_model_open(path, &o, &m, &e) != IMGSIM_OK)
        fail_msg("%s", e.msg);
    assert_string_equal(imgsim_model_name(m), "bare_int8.onnx");
    return m;
}

/* bird.rgb -> chickadee through the library: ImageNet normalisation, logits turned into
 * probabilities, labels with a background line (offset 1); registered and bare file. */
static void test_int8_classify(void **state)
{
    (void)state;
    imgsim_precision precs[] = {IMGSIM_PRECISION_AUTO, IMGSIM_PRECISION_FP32, 0};
    for (int pi = 0; pi < 3; pi++) {
        imgsim_model *m = pi < 2 ? tu_model("mobilenetv2-12-int8.onnx", precs[pi]) : bare_int8();
        assert_int_equal(imgsim_model_dim(m), 1280);
        assert_int_equal(imgsim_model_num_classes(m), 1000);
        char *d = imgsim_model_describe(m);
        assert_non_null(strstr(d, "464_quantized"));
        assert_non_null(strstr(d, "<- default"));
        assert_non_null(strstr(d, "logits"));
        free(d);
        imgsim_ctx *c = NULL;
        imgsim_error e = {0};
        assert_int_equal(imgsim_ctx_new(m, &c, &e), IMGSIM_OK);
        size_t len;
        uint8_t *rgb = tu_read(tu_shared("models/testdata/bird.rgb"), &len);
        assert_int_equal(len, 224 * 224 * 3);
        imgsim_image img = {224, 224, rgb, 0, 0};
        float v[1280], p[1000];
        if (imgsim_embed(c, &img, 1, v, p, &e) != IMGSIM_OK)
            fail_msg("%s", e.msg);
        double sum = 0;
        for (int i = 0; i < 1000; i++) {
            assert_true(p[i] >= 0 && p[i] <= 1);
            sum += p[i];
        }
        assert_true(fabs(sum - 1) < 1e-3);
        int best = argmax(p, 1000);
        const char *name = imgsim_model_class_name(m, best);
        assert_non_null(name);
        assert_string_equal(name, "chickadee");
        assert_true(p[best] > 0.5f);
        free(rgb);
        imgsim_ctx_free(c);
        imgsim_model_close(m);
    }
}

/* ------------------------------------------------------------------ damaged files */

static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *full = tu_read(tu_shared("models/mobilenetv2-12-int8.onnx"), &len);
    /* (the file ends with opset imports of unused domains: a cut exactly between two of
     * them, e.g. at len - 100, leaves a complete model, so the cuts avoid those points) */
    size_t cuts[] = {0, 1, 2, 3, 10, 40, 100, 1000, 50000, len / 3, len / 2, len - 4096,
                     len - 101, len - 20, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        uint8_t *b = malloc(cuts[i] ? cuts[i] : 1);
        assert_non_null(b);
        memcpy(b, full, cuts[i]);
        ir_graph g;
        imgsim_error e = {0};
        one_line_error(onnx_read(b, cuts[i], NULL, &g, &e), &e);
        ir_graph_free(&g);
    }
    free(full);
}

/* Offset of the length varint of LEN field `num` inside message [pos, pos+len) of b, or 0;
 * *body receives the payload offset and *blen its length. */
static size_t find_len(const uint8_t *b, size_t pos, size_t len, uint32_t num, size_t *body,
                       size_t *blen)
{
    pb_iter it;
    pb_field f;
    pb_iter_init(&it, (pb_buf){b + pos, len});
    size_t at = 0;
    while (pb_next(&it, &f) > 0) {
        if (f.num == num && f.wire == PB_LEN) {
            size_t k = at;
            uint64_t key;
            assert_int_equal(pb_varint(b + pos, len, &k, &key), 0);
            *body = (size_t)(f.b.p - b);
            *blen = f.b.len;
            return pos + k;
        }
        at = it.pos;
    }
    return 0;
}

static void try_damaged(const uint8_t *full, size_t len, size_t at, uint8_t value, int xor)
{
    uint8_t *b = malloc(len);
    assert_non_null(b);
    memcpy(b, full, len);
    b[at] = xor ? (uint8_t)(b[at] ^ value) : value;
    ir_graph g;
    imgsim_error e = {0};
    one_line_error(onnx_read(b, len, NULL, &g, &e), &e);
    ir_graph_free(&g);
}

static void test_flipped_lengths(void **state)
{
    (void)state;
    size_t len, body, blen, ibody, iblen, rbody, rblen;
    uint8_t *full = tu_read(tu_shared("models/mobilenetv2-12-int8.onnx"), &len);
    size_t gl = find_len(full, 0, len, 7, &body, &blen); /* ModelProto.graph */
    assert_true(gl > 0);
    try_damaged(full, len, gl, 0x01, 1);  /* graph one byte shorter / longer */
    try_damaged(full, len, gl, 0x40, 1);
    try_damaged(full, len, gl, 0xff, 0);  /* a varint running into the payload */
    /* the raw_data length of the first initializer */
    size_t il = find_len(full, body, blen, 5, &ibody, &iblen);
    assert_true(il > 0);
    size_t rl = find_len(full, ibody, iblen, 9, &rbody, &rblen);
    if (rl == 0) { /* typed first initializer: any later one with raw_data */
        pb_iter it;
        pb_field f;
        pb_iter_init(&it, (pb_buf){full + body, blen});
        while (rl == 0 && pb_next(&it, &f) > 0)
            if (f.num == 5)
                rl = find_len(full, (size_t)(f.b.p - full), f.b.len, 9, &rbody, &rblen);
    }
    assert_true(rl > 0);
    try_damaged(full, len, rl, 0x01, 1);
    try_damaged(full, len, rl, 0x80, 1);
    try_damaged(full, len, il, 0x02, 1);  /* the initializer's own length */
    free(full);
}

static void test_foreign_files(void **state)
{
    (void)state;
    ir_graph g;
    imgsim_error e = {0};
    /* empty */
    uint8_t *b = malloc(1);
    assert_non_null(b);
    one_line_error(onnx_read(b, 0, NULL, &g, &e), &e);
    assert_non_null(strstr(e.msg, "ONNX"));
    ir_graph_free(&g);
    /* text */
    const char *text = "hello, this is not a model\nsecond line\n";
    b = (uint8_t *)strdup(text);
    assert_non_null(b);
    one_line_error(onnx_read(b, strlen(text), NULL, &g, &e), &e);
    ir_graph_free(&g);
    /* a JPEG */
    size_t len;
    b = tu_read(tu_wang(0), &len);
    one_line_error(onnx_read(b, len, NULL, &g, &e), &e);
    ir_graph_free(&g);
    /* a TFLite model */
    b = tu_read(tu_shared("models/mobilenet_v2_1.0_224_quant.tflite"), &len);
    one_line_error(onnx_read(b, len, NULL, &g, &e), &e);
    ir_graph_free(&g);
    /* through the public API: a text file named .onnx */
    const char *p = tu_out("not_a_model.onnx");
    tu_write(p, text, strlen(text));
    imgsim_model *m = NULL;
    one_line_error(imgsim_model_open(p, NULL, &m, &e), &e);
    assert_null(m);
}

/* ------------------------------------------------------------------ small models */

static const int64_t in_dims[4] = {-1, 3, 9, 9};

static void test_unknown_op(void **state)
{
    (void)state;
    float w[4 * 3] = {0};
    int64_t wd[4] = {4, 3, 1, 1};
    pbw g = {0};
    value_info(&g, 11, "x", in_dims, 4);
    init(&g, "w", 1, wd, 4, w, sizeof w);
    node(&g, "Conv", "conv", "x,w", "c", NULL);
    node(&g, "FancyOp", "fancy", "c", "y", NULL);
    value_info(&g, 12, "y", NULL, 0);
    pbw m = model(&g, 13);
    ir_graph ig;
    imgsim_error e = {0};
    one_line_error(read_pb(&m, NULL, &ig, &e), &e);
    assert_string_equal(e.msg, "unsupported ONNX operator 'FancyOp' in node 'fancy'");
    ir_graph_free(&ig);

    /* an operator of an unknown domain, and an unsupported op in a dead branch (fine) */
    pbw g2 = {0};
    value_info(&g2, 11, "x", in_dims, 4);
    init(&g2, "w", 1, wd, 4, w, sizeof w);
    node(&g2, "Conv", "conv", "x,w", "c", NULL);
    node(&g2, "Tanh", "dead", "c", "unused", NULL);
    node(&g2, "GlobalAveragePool", "gap", "c", "y", NULL);
    value_info(&g2, 12, "y", NULL, 0);
    m = model(&g2, 13);
    assert_int_equal(read_pb(&m, NULL, &ig, &e), IMGSIM_OK);
    assert_int_equal(ig.nops, 2);
    ir_graph_free(&ig);

    pbw g3 = {0}, n = {0};
    value_info(&g3, 11, "x", in_dims, 4);
    w_str(&n, 1, "x");
    w_str(&n, 2, "y");
    w_str(&n, 3, "custom");
    w_str(&n, 4, "Frobnicate");
    w_str(&n, 7, "org.example");
    w_msg(&g3, 1, &n);
    value_info(&g3, 12, "y", NULL, 0);
    m = model(&g3, 13);
    one_line_error(read_pb(&m, NULL, &ig, &e), &e);
    assert_non_null(strstr(e.msg, "org.example.Frobnicate"));
    ir_graph_free(&ig);
}

/* Conv + BatchNormalization + Relu -> one convolution with the BN folded in, weights OHWI,
 * Relu fused; GlobalAveragePool -> Mean; Flatten of a 1x1 map -> plain reshape; Gemm. */
static void test_conv_bn_relu(void **state)
{
    (void)state;
    float w[4 * 3 * 3 * 3], bias[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    float gamma[4] = {1, 2, 0.5f, 1}, beta[4] = {0, 1, -1, 0.5f}, mean[4] = {0.1f, 0, 0.2f, -0.1f},
          var[4] = {1, 4, 0.25f, 1};
    for (int i = 0; i < 108; i++)
        w[i] = (float)i / 100.0f - 0.5f;
    int64_t wd[4] = {4, 3, 3, 3}, cd = 4, fcd[2] = {5, 4}, pads[4] = {1, 1, 1, 1};
    float fc[20], fcb[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 20; i++)
        fc[i] = (float)i;
    pbw g = {0}, a = {0};
    value_info(&g, 11, "x", in_dims, 4);
    init(&g, "w", 1, wd, 4, w, sizeof w);
    init(&g, "b", 1, &cd, 1, bias, sizeof bias);
    init(&g, "gamma", 1, &cd, 1, gamma, sizeof gamma);
    init(&g, "beta", 1, &cd, 1, beta, sizeof beta);
    init(&g, "mean", 1, &cd, 1, mean, sizeof mean);
    init(&g, "var", 1, &cd, 1, var, sizeof var);
    init(&g, "fc", 1, fcd, 2, fc, sizeof fc);
    init(&g, "fcb", 1, fcd, 1, fcb, sizeof fcb);
    attr_ints(&a, "pads", pads, 4);
    node(&g, "Conv", "conv", "x,w,b", "c", &a);
    attr_float(&a, "epsilon", 0);
    node(&g, "BatchNormalization", "bn", "c,gamma,beta,mean,var", "n", &a);
    node(&g, "Relu", "relu", "n", "r", NULL);
    node(&g, "GlobalAveragePool", "gap", "r", "p", NULL);
    node(&g, "Flatten", "flat", "p", "f", NULL);
    attr_int(&a, "transB", 1);
    node(&g, "Gemm", "fc", "f,fc,fcb", "y", &a);
    value_info(&g, 12, "y", NULL, 0);
    pbw m = model(&g, 13);
    ir_graph ig;
    imgsim_error e = {0};
    if (read_pb(&m, NULL, &ig, &e) != IMGSIM_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(ig.nops, 4); /* Conv2D, Mean, Reshape, FullyConnected */
    const ir_op *cv = first(&ig, IR_CONV2D);
    assert_non_null(cv);
    assert_int_equal(cv->act, IR_ACT_RELU);
    assert_string_equal(ig.t[cv->out].name, "r");
    const ir_tensor *wt = &ig.t[cv->in[1]], *bt = &ig.t[cv->in[2]];
    assert_int_equal(wt->shape[0], 4);
    assert_int_equal(wt->shape[3], 3);
    const float *wf = (const float *)(const void *)wt->data, *bf = (const float *)(const void *)bt->data;
    for (int o = 0; o < 4; o++) {
        float s = gamma[o] / sqrtf(var[o]);
        for (int i = 0; i < 3; i++)
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++)
                    assert_float_equal(wf[((o * 3 + kh) * 3 + kw) * 3 + i],
                                       w[((o * 3 + i) * 3 + kh) * 3 + kw] * s, 1e-6);
        assert_float_equal(bf[o], (bias[o] - mean[o]) * s + beta[o], 1e-6);
    }
    assert_int_equal(ig.t[ig.output].shape[1], 5);
    assert_int_equal(first(&ig, IR_MEAN)->keep_dims, 1);
    assert_int_equal(ir_numel(&ig.t[first(&ig, IR_RESHAPE)->out]), 4);
    assert_true(ig.output_logits);
    ir_graph_free(&ig);
}

/* ------------------------------------------------------------------ numerics */

/* ImageNet normalisation of bare ONNX files */
static const double mean255[3] = {123.675, 116.28, 103.53}, std255[3] = {58.395, 57.12, 57.375};

static uint8_t pixel(int y, int x, int ch) { return (uint8_t)((x * 37 + y * 11 + ch * 71) % 256); }

/* NCHW float convolution. */
static void ref_conv(const double *x, int ch, int h, int w, const float *wt, const float *b,
                     int oc, int group, int k, int stride, const int *pad, double *y, int *oh,
                     int *ow)
{
    *oh = (h + pad[0] + pad[2] - k) / stride + 1;
    *ow = (w + pad[1] + pad[3] - k) / stride + 1;
    int ig = ch / group, og = oc / group;
    for (int o = 0; o < oc; o++)
        for (int yy = 0; yy < *oh; yy++)
            for (int xx = 0; xx < *ow; xx++) {
                double s = b ? b[o] : 0;
                int gi = o / og;
                for (int i = 0; i < ig; i++)
                    for (int kh = 0; kh < k; kh++)
                        for (int kw = 0; kw < k; kw++) {
                            int sy = yy * stride + kh - pad[0], sx = xx * stride + kw - pad[1];
                            if (sy < 0 || sx < 0 || sy >= h || sx >= w)
                                continue;
                            s += x[((gi * ig + i) * h + sy) * w + sx] *
                                 wt[((o * ig + i) * k + kh) * k + kw];
                        }
                y[(o * *oh + yy) * *ow + xx] = s;
            }
}

/* Write `m` to a file, open it through the API (fp32, raw activations) and embed the 9x9
 * test image; returns the vector (malloc'ed) and its length. */
/* Embed one fixed 9x9 image with the model; `layer` NULL: the default embedding. */
static float *run_model(pbw *m, const char *file, const char *layer, int *dim)
{
    const char *path = tu_out(file);
    tu_write(path, m->p, m->n);
    free(m->p);
    memset(m, 0, sizeof *m);
    imgsim_model_opts o;
    imgsim_model_opts_default(&o);
    o.precision = IMGSIM_PRECISION_FP32;
    o.no_normalize = 1;
    o.threads = 1;
    o.layer = layer;
    imgsim_model *md = NULL;
    imgsim_error e = {0};
    if (imgsim_model_open(path, &o, &md, &e) != IMGSIM_OK)
        fail_msg("%s: %s", file, e.msg);
    imgsim_ctx *c = NULL;
    assert_int_equal(imgsim_ctx_new(md, &c, &e), IMGSIM_OK);
    uint8_t rgb[9 * 9 * 3];
    for (int y = 0; y < 9; y++)
        for (int x = 0; x < 9; x++)
            for (int ch = 0; ch < 3; ch++)
                rgb[(y * 9 + x) * 3 + ch] = pixel(y, x, ch);
    imgsim_image img = {9, 9, rgb, 0, 0};
    *dim = imgsim_model_dim(md);
    float *v = malloc(sizeof(float) * (size_t)*dim);
    assert_non_null(v);
    if (imgsim_embed(c, &img, 1, v, NULL, &e) != IMGSIM_OK)
        fail_msg("%s: %s", file, e.msg);
    imgsim_ctx_free(c);
    imgsim_model_close(md);
    return v;
}

static void input_nchw(double *x)
{
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 9; y++)
            for (int xx = 0; xx < 9; xx++)
                x[(ch * 9 + y) * 9 + xx] = (pixel(y, xx, ch) - mean255[ch]) / std255[ch];
}

/* A strided 3x3 convolution with asymmetric pads, then a depthwise one with multiplier 2 and
 * a fused Clip(0,6) whose bounds are opset-11 inputs: the output (NHWC) matches an NCHW
 * reference, which also checks the default ImageNet normalisation. */
static void test_numerics_conv(void **state)
{
    (void)state;
    float w1[4 * 3 * 9], b1[4] = {0.5f, -0.25f, 0, 1}, w2[8 * 9], b2[8];
    for (int i = 0; i < 4 * 3 * 9; i++)
        w1[i] = (float)((i * 7) % 11 - 5) * 0.1f;
    for (int i = 0; i < 8 * 9; i++)
        w2[i] = (float)((i * 5) % 13 - 6) * 0.15f;
    for (int i = 0; i < 8; i++)
        b2[i] = 0.1f * (float)i - 0.3f;
    int64_t d1[4] = {4, 3, 3, 3}, d2[4] = {8, 1, 3, 3}, c4 = 4, c8 = 8, one = 1;
    int64_t pads1[4] = {0, 0, 1, 1}, s2[2] = {2, 2}, pads2[4] = {1, 1, 1, 1};
    float lo = 0, hi = 6;
    pbw g = {0}, a = {0};
    value_info(&g, 11, "x", in_dims, 4);
    init(&g, "w1", 1, d1, 4, w1, sizeof w1);
    init(&g, "b1", 1, &c4, 1, b1, sizeof b1);
    init(&g, "w2", 1, d2, 4, w2, sizeof w2);
    init(&g, "b2", 1, &c8, 1, b2, sizeof b2);
    init(&g, "lo", 1, &one, 0, &lo, 4);
    init(&g, "hi", 1, &one, 0, &hi, 4);
    attr_ints(&a, "pads", pads1, 4);
    attr_ints(&a, "strides", s2, 2);
    node(&g, "Conv", "conv1", "x,w1,b1", "c1", &a);
    attr_ints(&a, "pads", pads2, 4);
    attr_int(&a, "group", 4);
    node(&g, "Conv", "dw", "c1,w2,b2", "c2", &a);
    node(&g, "Clip", "relu6", "c2,lo,hi", "y", NULL);
    value_info(&g, 12, "y", NULL, 0);
    pbw m = model(&g, 11);
    /* the structure */
    pbw copy = {0};
    tu_buf_put(&copy, m.p, m.n);
    ir_graph ig;
    imgsim_error e = {0};
    if (read_pb(&copy, NULL, &ig, &e) != IMGSIM_OK)
        fail_msg("%s", e.msg);
    const ir_op *dw = first(&ig, IR_DWCONV2D);
    assert_non_null(dw);
    assert_int_equal(dw->depth_mult, 2);
    assert_int_equal(dw->act, IR_ACT_RELU6);
    assert_int_equal(ig.t[dw->in[1]].shape[0], 1);
    assert_int_equal(ig.t[dw->in[1]].shape[3], 8);
    const ir_op *c1 = first(&ig, IR_CONV2D);
    assert_int_equal(c1->pad_top, 0);
    assert_int_equal(c1->pad_bottom, 1);
    assert_int_equal(ig.t[c1->out].shape[1], 4);
    ir_graph_free(&ig);
    /* the numbers */
    int dim;
    float *v = run_model(&m, "onnx_conv.onnx", NULL, &dim);
    assert_int_equal(dim, 4 * 4 * 8);
    double x[3 * 81], y1[4 * 16], y2[8 * 16];
    int oh, ow, p1[4] = {0, 0, 1, 1}, p2[4] = {1, 1, 1, 1};
    input_nchw(x);
    ref_conv(x, 3, 9, 9, w1, b1, 4, 1, 3, 2, p1, y1, &oh, &ow);
    assert_int_equal(oh, 4);
    ref_conv(y1, 4, 4, 4, w2, b2, 8, 4, 3, 1, p2, y2, &oh, &ow);
    for (int o = 0; o < 8; o++)
        for (int p = 0; p < 16; p++) {
            double want = y2[o * 16 + p] < 0 ? 0 : y2[o * 16 + p] > 6 ? 6 : y2[o * 16 + p];
            assert_float_equal(v[p * 8 + o], want, 1e-4);
        }
    free(v);
}

/* Conv 1x1 -> MaxPool 4x4 -> Flatten of a 2x2x2 map (C,H,W rows) -> Gemm: the weight columns
 * are permuted at load so the result matches ONNX's order. The Flatten target comes from a
 * Shape -> Gather -> Unsqueeze -> Concat chain that must fold away. */
static void test_numerics_flatten_gemm(void **state)
{
    (void)state;
    float w1[2 * 3] = {0.5f, -1, 0.25f, 1, 0.5f, -0.5f}, fc[3 * 8], fcb[3] = {0.1f, 0.2f, 0.3f};
    for (int i = 0; i < 24; i++)
        fc[i] = (float)((i * 5) % 7 - 3);
    int64_t d1[4] = {2, 3, 1, 1}, fd[2] = {3, 8}, c3 = 3, k4[2] = {4, 4}, zero = 0, minus1 = -1;
    int64_t ax0[1] = {0};
    pbw g = {0}, a = {0};
    value_info(&g, 11, "x", in_dims, 4);
    init(&g, "w1", 1, d1, 4, w1, sizeof w1);
    init(&g, "fc", 1, fd, 2, fc, sizeof fc);
    init(&g, "fcb", 1, &c3, 1, fcb, sizeof fcb);
    init(&g, "zero", 7, &zero, 0, &zero, 8);
    init_i64(&g, "minus1", &minus1, 1);
    node(&g, "Conv", "conv", "x,w1", "c", NULL);
    attr_ints(&a, "kernel_shape", k4, 2);
    attr_ints(&a, "strides", k4, 2);
    node(&g, "MaxPool", "pool", "c", "p", &a);
    node(&g, "Shape", "shape", "p", "s", NULL);
    attr_int(&a, "axis", 0);
    node(&g, "Gather", "gather", "s,zero", "n", &a);
    attr_ints(&a, "axes", ax0, 1);
    node(&g, "Unsqueeze", "unsq", "n", "n1", &a);
    attr_int(&a, "axis", 0);
    node(&g, "Concat", "cat", "n1,minus1", "target", &a);
    node(&g, "Reshape", "view", "p,target", "f", NULL);
    attr_int(&a, "transB", 1);
    node(&g, "Gemm", "fc", "f,fc,fcb", "y", &a);
    value_info(&g, 12, "y", NULL, 0);
    pbw m = model(&g, 12);
    pbw copy = {0};
    tu_buf_put(&copy, m.p, m.n);
    ir_graph ig;
    imgsim_error e = {0};
    if (read_pb(&copy, NULL, &ig, &e) != IMGSIM_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(ig.nops, 4); /* Conv2D, MaxPool, Reshape, FullyConnected */
    assert_int_equal(ir_count_ops(&ig, IR_RESHAPE), 1);
    assert_false(ig.t[ir_find_tensor(&ig, "f")].data);
    ir_graph_free(&ig);
    int dim;
    float *v = run_model(&m, "onnx_flatten.onnx", "y", &dim);
    assert_int_equal(dim, 3);
    double x[3 * 81], c[2 * 81], p[8];
    int oh, ow, p0[4] = {0, 0, 0, 0};
    input_nchw(x);
    ref_conv(x, 3, 9, 9, w1, NULL, 2, 1, 1, 1, p0, c, &oh, &ow);
    for (int ch = 0; ch < 2; ch++)
        for (int py = 0; py < 2; py++)
            for (int px = 0; px < 2; px++) {
                double mx = -1e30;
                for (int ky = 0; ky < 4; ky++)
                    for (int kx = 0; kx < 4; kx++)
                        mx = fmax(mx, c[(ch * 9 + py * 4 + ky) * 9 + px * 4 + kx]);
                p[(ch * 2 + py) * 2 + px] = mx;
            }
    for (int o = 0; o < 3; o++) {
        double s = fcb[o];
        for (int k = 0; k < 8; k++)
            s += fc[o * 8 + k] * p[k];
        assert_float_equal(v[o], s, 1e-4);
    }
    free(v);
}

/* ------------------------------------------------------------------ external data */

static void ext_model(pbw *m, const char *location, int64_t offset, int64_t length)
{
    float w[2 * 3];
    for (int i = 0; i < 6; i++)
        w[i] = (float)i - 2.5f;
    tu_write(tu_out("onnx_ext.bin"), w, sizeof w);
    int64_t wd[4] = {2, 3, 1, 1};
    pbw g = {0}, t = {0}, kv = {0};
    char num[32];
    value_info(&g, 11, "x", in_dims, 4);
    for (int i = 0; i < 4; i++)
        w_int(&t, 1, wd[i]);
    w_int(&t, 2, 1);
    w_str(&t, 8, "w");
    w_str(&kv, 1, "location");
    w_str(&kv, 2, location);
    w_msg(&t, 13, &kv);
    snprintf(num, sizeof num, "%lld", (long long)offset);
    w_str(&kv, 1, "offset");
    w_str(&kv, 2, num);
    w_msg(&t, 13, &kv);
    snprintf(num, sizeof num, "%lld", (long long)length);
    w_str(&kv, 1, "length");
    w_str(&kv, 2, num);
    w_msg(&t, 13, &kv);
    w_int(&t, 14, 1);
    w_msg(&g, 5, &t);
    node(&g, "Conv", "conv", "x,w", "c", NULL);
    node(&g, "GlobalAveragePool", "gap", "c", "y", NULL);
    value_info(&g, 12, "y", NULL, 0);
    *m = model(&g, 13);
}

static void test_external_data(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tu_out(""));
    pbw m;
    ir_graph ig;
    imgsim_error e = {0};
    ext_model(&m, "onnx_ext.bin", 0, 24);
    if (read_pb(&m, dir, &ig, &e) != IMGSIM_OK)
        fail_msg("%s", e.msg);
    const ir_tensor *w = &ig.t[first(&ig, IR_CONV2D)->in[1]];
    assert_int_equal(w->nbytes, 24);
    float got[6];
    memcpy(got, w->data, 24);
    /* OIHW [2,3,1,1] -> OHWI [2,1,1,3]: the same order */
    for (int i = 0; i < 6; i++)
        assert_float_equal(got[i], (float)i - 2.5f, 0);
    ir_graph_free(&ig);
    /* refused: no directory, paths leaving it, lengths that do not fit */
    const char *bad[] = {"onnx_ext.bin", "../onnx_ext.bin", "/etc/passwd", "sub/../../x",
                         "onnx_ext.bin", "onnx_ext.bin", "missing.bin"};
    int64_t offs[] = {0, 0, 0, 0, 8, 0, 0}, lens[] = {24, 24, 24, 24, 24, 20, 24};
    for (int i = 0; i < 7; i++) {
        ext_model(&m, bad[i], offs[i], lens[i]);
        one_line_error(read_pb(&m, i == 0 ? NULL : dir, &ig, &e), &e);
        ir_graph_free(&ig);
    }
}

/* ------------------------------------------------------------------ fuzz findings */

/* Each was a sanitizer report from fuzz/fuzz_onnx.c; now each is a clean error. */
static void test_fuzz_regressions(void **state)
{
    (void)state;
    ir_graph ig;
    imgsim_error e = {0};
    /* a node whose first output name is empty: it was leaked half-read */
    pbw g = {0}, n = {0};
    value_info(&g, 11, "x", in_dims, 4);
    w_str(&n, 1, "x");
    w_bytes(&n, 2, "", 0);
    w_str(&n, 4, "Relu");
    w_msg(&g, 1, &n);
    value_info(&g, 12, "y", NULL, 0);
    pbw m = model(&g, 13);
    one_line_error(read_pb(&m, NULL, &ig, &e), &e);
    ir_graph_free(&ig);

    /* a value name with a newline in it: the error message must stay one line */
    pbw g1 = {0};
    value_info(&g1, 11, "x", in_dims, 4);
    node(&g1, "Relu", "relu", "x\n\tinjected", "y", NULL);
    value_info(&g1, 12, "y", NULL, 0);
    m = model(&g1, 13);
    one_line_error(read_pb(&m, NULL, &ig, &e), &e);
    assert_non_null(strstr(e.msg, "x??injected"));
    ir_graph_free(&ig);

    /* QLinearConv with a zero weight scale: the message read the freed scales */
    float xs = 0.02f, ys = 0.05f, ws[4] = {0.01f, 0, 0.01f, 0.01f};
    uint8_t xz = 128, yz = 0;
    int8_t w[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, wz[4] = {0, 0, 0, 0};
    int64_t wd[4] = {4, 3, 1, 1}, four = 4;
    pbw g2 = {0};
    value_info(&g2, 11, "x", in_dims, 4);
    init(&g2, "xs", 1, wd, 0, &xs, 4);
    init(&g2, "xz", 2, wd, 0, &xz, 1);
    init(&g2, "ys", 1, wd, 0, &ys, 4);
    init(&g2, "yz", 2, wd, 0, &yz, 1);
    init(&g2, "w", 3, wd, 4, w, sizeof w);
    init(&g2, "ws", 1, &four, 1, ws, sizeof ws);
    init(&g2, "wz", 3, &four, 1, wz, sizeof wz);
    node(&g2, "QuantizeLinear", "q", "x,xs,xz", "xq", NULL);
    node(&g2, "QLinearConv", "qconv", "xq,xs,xz,w,ws,wz,ys,yz", "yq", NULL);
    node(&g2, "DequantizeLinear", "dq", "yq,ys,yz", "y", NULL);
    value_info(&g2, 12, "y", NULL, 0);
    m = model(&g2, 13);
    one_line_error(read_pb(&m, NULL, &ig, &e), &e);
    assert_non_null(strstr(e.msg, "weight scale 0"));
    ir_graph_free(&ig);

    /* a folded Gather with an index out of range: the message read the freed indices */
    int64_t shape3[3] = {1, 2, 3}, five = 5;
    pbw g3 = {0};
    value_info(&g3, 11, "x", in_dims, 4);
    init_i64(&g3, "s", shape3, 3);
    init(&g3, "i", 7, wd, 0, &five, 8);
    node(&g3, "Gather", "gather", "s,i", "t", NULL);
    node(&g3, "Reshape", "reshape", "x,t", "y", NULL);
    value_info(&g3, 12, "y", NULL, 0);
    m = model(&g3, 13);
    one_line_error(read_pb(&m, NULL, &ig, &e), &e);
    assert_non_null(strstr(e.msg, "index 5 out of range"));
    ir_graph_free(&ig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8_structure),
        cmocka_unit_test(test_int8_classify),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_flipped_lengths),
        cmocka_unit_test(test_foreign_files),
        cmocka_unit_test(test_unknown_op),
        cmocka_unit_test(test_conv_bn_relu),
        cmocka_unit_test(test_numerics_conv),
        cmocka_unit_test(test_numerics_flatten_gemm),
        cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_fuzz_regressions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

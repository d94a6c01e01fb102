/*
 * test_tflite.c — the TFLite reader on the four real models, and on damaged files:
 * truncations, byte flips and an unsupported operator must give a clean error, never a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "model/ir/graph.h"
#include "irtest.h"
#include "model/tflite/flatbuf.h"
#include "model/tflite/tflite.h"

static ir_graph load(const char *file)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", file);
    size_t len;
    uint8_t *b = tu_read(tu_shared(rel), &len);
    ir_graph g;
    imgsim_error e = {0};
    if (tflite_read(b, len, &g, &e) != IMGSIM_OK)
        fail_msg("%s: %s", file, e.msg);
    return g;
}

static void test_edgetpu(void **state)
{
    (void)state;
    ir_graph g = load("mobilenet_edgetpu_224_1.0_uint8.tflite");
    const ir_tensor *in = &g.t[g.input], *out = &g.t[g.output];
    assert_int_equal(in->dtype, IR_U8);
    assert_int_equal(in->shape[1], 224);
    assert_true(in->quantized);
    assert_int_equal(in->zero_point, 128);
    /* output shapes missing in the file are inferred: [1, 1001] */
    assert_int_equal(out->rank, 2);
    assert_int_equal(out->shape[1], 1001);
    int pool = ir_find_tensor(&g, "MobilenetEdgeTPU/Logits/AvgPool");
    assert_true(pool >= 0);
    assert_int_equal(ir_numel(&g.t[pool]), 1280);
    assert_int_equal(ir_count_ops(&g, IR_CONV2D), 46);
    assert_int_equal(ir_count_ops(&g, IR_DWCONV2D), 13);
    assert_int_equal(ir_count_ops(&g, IR_ADD), 15);
    /* 5x5 depthwise kernels exist and every shape is known */
    int k5 = 0;
    for (int i = 0; i < g.nops; i++) {
        k5 |= g.ops[i].kind == IR_DWCONV2D && g.ops[i].kh == 5;
        assert_true(g.t[g.ops[i].out].rank >= 0);
    }
    assert_true(k5);
    ir_graph_free(&g);
}

static void test_all_models_load(void **state)
{
    (void)state;
    const char *files[] = {"mobilenet_v2_1.0_224_quant.tflite",
                           "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite",
                           "mobilenet_v3_small_075_224_embedder.tflite"};
    const int dims[] = {1001, 1024, 1024};
    for (int f = 0; f < 3; f++) {
        ir_graph g = load(files[f]);
        assert_int_equal(ir_numel(&g.t[g.output]), dims[f]);
        if (f == 2) { /* float model with hard-swish and squeeze-excite */
            assert_int_equal(g.t[g.input].dtype, IR_F32);
            assert_true(ir_count_ops(&g, IR_HARD_SWISH) > 0);
            assert_true(ir_count_ops(&g, IR_MEAN) > 0);
            assert_true(ir_count_ops(&g, IR_MUL) > 0);
            /* the file stores placeholder shapes ([1,1,1,16]); inference fixes them */
            const ir_op *first_conv = NULL;
            for (int i = 0; i < g.nops && !first_conv; i++)
                if (g.ops[i].kind == IR_CONV2D)
                    first_conv = &g.ops[i];
            assert_non_null(first_conv);
            assert_int_equal(g.t[first_conv->out].shape[1], 112);
        }
        ir_graph_free(&g);
    }
}

/* Every truncation of a real model is refused with a clean error. (EdgeTPU: the Coral and
 * MediaPipe files end with a ZIP of associated label files that inference never reads.) */
static void test_truncated(void **state)
{
    (void)state;
    size_t len;
    uint8_t *full = tu_read(tu_shared("models/mobilenet_edgetpu_224_1.0_uint8.tflite"), &len);
    size_t cuts[] = {0, 1, 4, 7, 8, 16, 100, 1000, len / 3, len / 2, len - 4096, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        uint8_t *b = malloc(cuts[i] ? cuts[i] : 1);
        assert_non_null(b);
        memcpy(b, full, cuts[i]);
        ir_graph g;
        imgsim_error e = {0};
        imgsim_status s = tflite_read(b, cuts[i], &g, &e);
        assert_int_not_equal(s, IMGSIM_OK);
        assert_true(strlen(e.msg) > 0);
        ir_graph_free(&g); /* frees b */
    }
    free(full);
}

/* Random byte corruption (deterministic): either a clean error or a consistent graph. */
static void test_byte_flips(void **state)
{
    (void)state;
    size_t len;
    uint8_t *full = tu_read(tu_shared("models/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"), &len);
    unsigned seed = 12345;
    int errors = 0;
    for (int trial = 0; trial < 300; trial++) {
        uint8_t *b = malloc(len);
        assert_non_null(b);
        memcpy(b, full, len);
        /* flip bytes in the structure region (the tail of the file holds the tables) */
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = trial % 2 ? (seed >> 8) % len : len - 1 - (seed >> 8) % 20000;
            b[at] ^= (uint8_t)(1u << (seed % 8));
        }
        ir_graph g;
        imgsim_error e = {0};
        if (tflite_read(b, len, &g, &e) != IMGSIM_OK) {
            errors++;
            assert_true(strlen(e.msg) > 0);
        }
        ir_graph_free(&g);
    }
    assert_true(errors > 0);
    free(full);
}

/* Rewrite the builtin code of operator code #0 to LSTM: the error names the operator. */
static void test_unsupported_op(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = tu_read(tu_shared("models/mobilenet_v2_1.0_224_quant.tflite"), &len);
    fb_buf fb = {b, len};
    fb_table model, code;
    fb_vec codes;
    assert_int_equal(fb_root(&fb, &model), 0);
    assert_int_equal(fb_vec_field(&model, 1, 4, &codes), 1);
    int patched = 0;
    for (uint32_t i = 0; i < codes.n; i++) {
        assert_int_equal(fb_vec_table(&codes, i, &code), 0);
        size_t p_dep = fb_field_pos(&code, 0, 1), p_new = fb_field_pos(&code, 3, 4);
        if (p_dep && p_dep != (size_t)-1 && b[p_dep] == 3 /* CONV_2D */) {
            b[p_dep] = 16; /* LSTM */
            if (p_new && p_new != (size_t)-1) {
                int32_t v = 16;
                memcpy(b + p_new, &v, 4);
            }
            patched = 1;
        }
    }
    assert_true(patched);
    ir_graph g;
    imgsim_error e = {0};
    assert_int_equal(tflite_read(b, len, &g, &e), IMGSIM_E_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "LSTM"));
    ir_graph_free(&g);
}

static void test_not_tflite(void **state)
{
    (void)state;
    const char *text = "this is not a model at all, just some text";
    uint8_t *b = malloc(strlen(text));
    assert_non_null(b);
    memcpy(b, text, strlen(text));
    ir_graph g;
    imgsim_error e = {0};
    assert_int_equal(tflite_read(b, strlen(text), &g, &e), IMGSIM_E_MODEL);
    assert_non_null(strstr(e.msg, "TFL3"));
    ir_graph_free(&g);
}

/* flatbuf accessors refuse offsets that leave the buffer. */
static void test_flatbuf_bounds(void **state)
{
    (void)state;
    uint8_t buf[16] = {0xF0, 0xFF, 0xFF, 0x7F}; /* root offset far outside */
    fb_buf b = {buf, sizeof buf};
    fb_table t;
    assert_int_equal(fb_root(&b, &t), -1);
    /* root -> table at 8 whose vtable offset points before the buffer */
    uint8_t buf2[16] = {8, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0};
    fb_buf b2 = {buf2, sizeof buf2};
    assert_int_equal(fb_root(&b2, &t), -1);
    /* a minimal valid table: vtable at 4 {6 bytes, 8 bytes, field0 at +4}, table at 10 */
    uint8_t buf3[24] = {10, 0, 0, 0, 6, 0, 8, 0, 4, 0, 6, 0, 0, 0, 42, 0, 0, 0};
    fb_buf b3 = {buf3, sizeof buf3};
    assert_int_equal(fb_root(&b3, &t), 0);
    int32_t v;
    assert_int_equal(fb_i32(&t, 0, -1, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(fb_i32(&t, 5, -7, &v), 0); /* absent field: default */
    assert_int_equal(v, -7);
    fb_vec vec;
    assert_int_equal(fb_vec_field(&t, 0, 4, &vec), -1); /* 42 as an offset leaves the buffer */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edgetpu),
        cmocka_unit_test(test_all_models_load),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_unsupported_op),
        cmocka_unit_test(test_not_tflite),
        cmocka_unit_test(test_flatbuf_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * tflite_reader.c — turns a .tflite FlatBuffer into the graph IR (graph.h).
 *
 * Only the first subgraph is read. Every table, vector and index is validated through
 * flatbuf.c, and every tensor/buffer index and data size is checked against the file
 * before the IR refers to it. Operators outside the supported set fail with an error
 * that names the operator and the node, e.g. "unsupported TFLite operator LSTM in node 7".
 *
 * Schema facts used (tensorflow/lite/schema/schema.fbs): Model{version 0, operator_codes 1,
 * subgraphs 2, description 3, buffers 4}; SubGraph{tensors 0, inputs 1, outputs 2,
 * operators 3, name 4}; Tensor{shape 0, type 1, buffer 2, name 3, quantization 4};
 * QuantizationParameters{min 0, max 1, scale 2, zero_point 3, ..., quantized_dimension 6};
 * Operator{opcode_index 0, inputs 1, outputs 2, builtin_options_type 3, builtin_options 4};
 * OperatorCode{deprecated_builtin_code 0, custom_code 1, version 2, builtin_code 3};
 * Buffer{data 0, offset 1, size 2}.
 */
#include "model/tflite/tflite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/tflite/flatbuf.h"

/* BuiltinOperator names, indexed by code (for error messages). */
static const char *const builtin_names[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE", "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED",
    "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION",
    "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU", "RELU_N1_TO_1",
    "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF",
    "TANH", "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE",
    "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP",
    "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST",
    "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER",
    "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT",
    "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK",
    "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN",
    "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE",
    "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS",
    "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK",
    "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND",
    "HARD_SWISH", "IF", "WHILE",
};

enum {
    TFL_ADD = 0, TFL_AVERAGE_POOL_2D = 1, TFL_CONCATENATION = 2, TFL_CONV_2D = 3,
    TFL_DEPTHWISE_CONV_2D = 4, TFL_DEQUANTIZE = 6, TFL_FULLY_CONNECTED = 9,
    TFL_LOGISTIC = 14, TFL_MAX_POOL_2D = 17, TFL_MUL = 18, TFL_RELU = 19, TFL_RELU6 = 21,
    TFL_RESHAPE = 22, TFL_SOFTMAX = 25, TFL_MEAN = 40, TFL_SUB = 41, TFL_SQUEEZE = 43,
    TFL_QUANTIZE = 114, TFL_HARD_SWISH = 117,
};

static const char *builtin_name(int32_t code, char tmp[32])
{
    if (code >= 0 && (size_t)code < sizeof builtin_names / sizeof *builtin_names)
        return builtin_names[code];
    snprintf(tmp, 32, "builtin #%d", (int)code);
    return tmp;
}

#define CORRUPT(what) error_set(err, IMGSIM_E_MODEL, "corrupt TFLite file: bad %s", what)

static ir_dtype map_dtype(uint8_t t)
{
    switch (t) {
    case 0: return IR_F32;
    case 1: return IR_F16;
    case 2: return IR_I32;
    case 3: return IR_U8;
    case 4: return IR_I64;
    case 9: return IR_I8;
    default: return IR_OTHER;
    }
}

static char *dup_str(const char *s, uint32_t len)
{
    char *r = malloc((size_t)len + 1);
    if (r) {
        memcpy(r, s, len);
        r[len] = 0;
    }
    return r;
}

static imgsim_status read_quant(const fb_table *tt, ir_tensor *t, imgsim_error *err)
{
    fb_table q;
    int r = fb_table_field(tt, 4, &q);
    if (r < 0)
        return CORRUPT("quantization");
    if (r == 0)
        return IMGSIM_OK;
    fb_vec sc, zp;
    if (fb_vec_field(&q, 2, 4, &sc) < 0 || fb_vec_field(&q, 3, 8, &zp) < 0)
        return CORRUPT("quantization vectors");
    if (sc.n == 0)
        return IMGSIM_OK;
    int32_t qdim;
    if (fb_i32(&q, 6, 0, &qdim) < 0)
        return CORRUPT("quantized_dimension");
    int64_t z = 0;
    if (fb_vec_f32(&sc, 0, &t->scale) < 0 || (zp.n > 0 && fb_vec_i64(&zp, 0, &z) < 0))
        return CORRUPT("quantization values");
    if (!(t->scale > 0.0f) || t->scale > 1e30f)
        return error_set(err, IMGSIM_E_MODEL, "corrupt TFLite file: tensor '%s' has scale %g",
                         t->name, (double)t->scale);
    if (z < -32768 || z > 65535)
        return CORRUPT("zero point");
    t->zero_point = (int32_t)z;
    t->quantized = 1;
    if (sc.n > 1) {
        t->channel_scales = malloc(sizeof(float) * sc.n);
        if (!t->channel_scales)
            return error_set(err, IMGSIM_E_NOMEM, "out of memory");
        for (uint32_t i = 0; i < sc.n; i++)
            if (fb_vec_f32(&sc, i, &t->channel_scales[i]) < 0 || !(t->channel_scales[i] > 0.0f))
                return CORRUPT("per-channel scale");
        t->nchannel_scales = (int)sc.n;
        t->qdim = qdim;
    }
    return IMGSIM_OK;
}

static imgsim_status read_tensor(const fb_table *tt, const fb_vec *buffers, const fb_buf *b,
                                 ir_tensor *t, imgsim_error *err)
{
    const char *s;
    uint32_t len;
    if (fb_str_field(tt, 3, &s, &len) < 0)
        return CORRUPT("tensor name");
    t->name = dup_str(s, len);
    if (!t->name)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");

    fb_vec shape;
    int r = fb_vec_field(tt, 0, 4, &shape);
    if (r < 0 || shape.n > IR_MAX_RANK)
        return error_set(err, IMGSIM_E_MODEL, "corrupt TFLite file: tensor '%s' has a bad shape",
                         t->name);
    t->rank = (int)shape.n;
    for (uint32_t i = 0; i < shape.n; i++) {
        int32_t d;
        if (fb_vec_i32(&shape, i, &d) < 0 || d < 0 || d > (1 << 24))
            return error_set(err, IMGSIM_E_MODEL,
                             "corrupt TFLite file: tensor '%s' has dimension out of range", t->name);
        t->shape[i] = d;
    }
    uint8_t type;
    uint32_t bufidx;
    if (fb_u8(tt, 1, 0, &type) < 0 || fb_u32(tt, 2, 0, &bufidx) < 0)
        return CORRUPT("tensor fields");
    t->dtype = map_dtype(type);
    if (bufidx >= buffers->n && bufidx != 0)
        return error_set(err, IMGSIM_E_MODEL,
                         "corrupt TFLite file: tensor '%s' refers to buffer %u of %u", t->name,
                         (unsigned)bufidx, (unsigned)buffers->n);
    if (bufidx > 0) {
        fb_table bt;
        fb_vec data;
        if (fb_vec_table(buffers, bufidx, &bt) < 0 || fb_vec_field(&bt, 0, 1, &data) < 0)
            return CORRUPT("buffer");
        if (data.n > 0) {
            t->data = b->data + data.pos;
            t->nbytes = data.n;
        } else {
            /* Large models store data outside the flatbuffer: Buffer{offset, size}. */
            uint64_t off = 0, size = 0;
            size_t po = fb_field_pos(&bt, 1, 8), ps = fb_field_pos(&bt, 2, 8);
            if (po == (size_t)-1 || ps == (size_t)-1)
                return CORRUPT("buffer offset");
            if (po)
                memcpy(&off, b->data + po, 8);
            if (ps)
                memcpy(&size, b->data + ps, 8);
            if (off > 1 && size > 0) {
                if (off > b->len || size > b->len - off)
                    return error_set(err, IMGSIM_E_MODEL,
                                     "corrupt TFLite file: tensor '%s' data lies outside the file",
                                     t->name);
                t->data = b->data + off;
                t->nbytes = (size_t)size;
            }
        }
    }
    /* A missing or empty shape on an activation means "not stored": infer it later. */
    if (!t->data && shape.n == 0)
        t->rank = -1;
    return read_quant(tt, t, err);
}

/* Reads options table `opt` of operator kind `code` into `op`. */
static imgsim_status read_options(int32_t code, const fb_table *opt, int has_opt, ir_op *op,
                                  imgsim_error *err)
{
    int32_t i0 = 0, i1 = 0, i2 = 0, i3 = 0, i4 = 0, i5 = 0;
    uint8_t pad = 0, act = 0, u = 0;
    op->stride_h = op->stride_w = op->dil_h = op->dil_w = 1;
    op->depth_mult = 1;
    op->beta = 1.0f;
    op->squeeze = code == TFL_SQUEEZE;
    if (!has_opt)
        return IMGSIM_OK;
    int bad = 0;
    switch (code) {
    case TFL_CONV_2D: /* padding, stride_w, stride_h, act, dil_w, dil_h */
        bad |= fb_u8(opt, 0, 0, &pad) | fb_i32(opt, 1, 1, &i0) | fb_i32(opt, 2, 1, &i1) |
               fb_u8(opt, 3, 0, &act) | fb_i32(opt, 4, 1, &i2) | fb_i32(opt, 5, 1, &i3);
        op->pad_same = pad == 0;
        op->stride_w = i0; op->stride_h = i1; op->dil_w = i2; op->dil_h = i3;
        break;
    case TFL_DEPTHWISE_CONV_2D: /* padding, stride_w, stride_h, depth_mult, act, dil_w, dil_h */
        bad |= fb_u8(opt, 0, 0, &pad) | fb_i32(opt, 1, 1, &i0) | fb_i32(opt, 2, 1, &i1) |
               fb_i32(opt, 3, 1, &i4) | fb_u8(opt, 4, 0, &act) | fb_i32(opt, 5, 1, &i2) |
               fb_i32(opt, 6, 1, &i3);
        op->pad_same = pad == 0;
        op->stride_w = i0; op->stride_h = i1; op->dil_w = i2; op->dil_h = i3;
        op->depth_mult = i4;
        break;
    case TFL_AVERAGE_POOL_2D:
    case TFL_MAX_POOL_2D: /* padding, stride_w, stride_h, filter_w, filter_h, act */
        bad |= fb_u8(opt, 0, 0, &pad) | fb_i32(opt, 1, 1, &i0) | fb_i32(opt, 2, 1, &i1) |
               fb_i32(opt, 3, 1, &i4) | fb_i32(opt, 4, 1, &i5) | fb_u8(opt, 5, 0, &act);
        op->pad_same = pad == 0;
        op->stride_w = i0; op->stride_h = i1; op->kw = i4; op->kh = i5;
        break;
    case TFL_FULLY_CONNECTED: /* act, weights_format, keep_num_dims */
        bad |= fb_u8(opt, 0, 0, &act) | fb_u8(opt, 1, 0, &u);
        if (!bad && u != 0)
            return error_set(err, IMGSIM_E_UNSUPPORTED,
                             "FULLY_CONNECTED node '%s': shuffled weights format", op->name);
        break;
    case TFL_ADD:
    case TFL_SUB:
    case TFL_MUL: /* act */
        bad |= fb_u8(opt, 0, 0, &act);
        break;
    case TFL_CONCATENATION: /* axis, act */
        bad |= fb_i32(opt, 0, 0, &i0) | fb_u8(opt, 1, 0, &act);
        op->axis = i0;
        break;
    case TFL_SOFTMAX:
        bad |= fb_f32(opt, 0, 1.0f, &op->beta);
        break;
    case TFL_MEAN: /* ReducerOptions: keep_dims */
        bad |= fb_u8(opt, 0, 0, &u);
        op->keep_dims = u != 0;
        break;
    case TFL_SQUEEZE: { /* squeeze_dims */
        fb_vec dims;
        op->squeeze = 1;
        if (fb_vec_field(opt, 0, 4, &dims) < 0)
            bad = 1;
        for (uint32_t i = 0; !bad && i < dims.n; i++) {
            /* negative dims count from the end of a 4-d NHWC tensor */
            if (fb_vec_i32(&dims, i, &i0) < 0 || (i0 < 0 && (i0 += 4) < 0) || i0 >= IR_MAX_RANK)
                bad = 1;
            else
                op->axis |= 1 << i0;
        }
        break;
    }
    default:
        break;
    }
    if (bad)
        return error_set(err, IMGSIM_E_MODEL, "corrupt TFLite file: options of node '%s'",
                         op->name);
    switch (act) {
    case 0: op->act = IR_ACT_NONE; break;
    case 1: op->act = IR_ACT_RELU; break;
    case 2: op->act = IR_ACT_RELU_N1_1; break;
    case 3: op->act = IR_ACT_RELU6; break;
    default:
        return error_set(err, IMGSIM_E_UNSUPPORTED, "node '%s': fused activation %d",
                         op->name, act);
    }
    if (op->stride_h < 1 || op->stride_w < 1 || op->dil_h < 1 || op->dil_w < 1 ||
        op->stride_h > 64 || op->stride_w > 64 || op->dil_h > 64 || op->dil_w > 64 ||
        op->depth_mult < 1 || op->kh < 0 || op->kw < 0 || op->kh > 4096 || op->kw > 4096)
        return error_set(err, IMGSIM_E_MODEL, "corrupt TFLite file: node '%s' has bad parameters",
                         op->name);
    return IMGSIM_OK;
}

static int map_op(int32_t code, ir_op_kind *k)
{
    switch (code) {
    case TFL_CONV_2D: *k = IR_CONV2D; return 1;
    case TFL_DEPTHWISE_CONV_2D: *k = IR_DWCONV2D; return 1;
    case TFL_FULLY_CONNECTED: *k = IR_FULLY_CONNECTED; return 1;
    case TFL_ADD: *k = IR_ADD; return 1;
    case TFL_MUL: *k = IR_MUL; return 1;
    case TFL_SUB: *k = IR_SUB; return 1;
    case TFL_AVERAGE_POOL_2D: *k = IR_AVG_POOL; return 1;
    case TFL_MAX_POOL_2D: *k = IR_MAX_POOL; return 1;
    case TFL_MEAN: *k = IR_MEAN; return 1;
    case TFL_RESHAPE: case TFL_SQUEEZE: *k = IR_RESHAPE; return 1;
    case TFL_SOFTMAX: *k = IR_SOFTMAX; return 1;
    case TFL_HARD_SWISH: *k = IR_HARD_SWISH; return 1;
    case TFL_LOGISTIC: *k = IR_LOGISTIC; return 1;
    case TFL_RELU: *k = IR_RELU; return 1;
    case TFL_RELU6: *k = IR_RELU6; return 1;
    case TFL_QUANTIZE: *k = IR_QUANTIZE; return 1;
    case TFL_DEQUANTIZE: *k = IR_DEQUANTIZE; return 1;
    case TFL_CONCATENATION: *k = IR_CONCAT; return 1;
    default: return 0;
    }
}

static imgsim_status read_operator(const fb_table *ot, const fb_vec *codes, ir_graph *g, int idx,
                                   imgsim_error *err)
{
    ir_op *op = &g->ops[idx];
    uint32_t opc;
    fb_vec ins, outs;
    if (fb_u32(ot, 0, 0, &opc) < 0 || fb_vec_field(ot, 1, 4, &ins) < 0 ||
        fb_vec_field(ot, 2, 4, &outs) < 0)
        return CORRUPT("operator");
    if (opc >= codes->n)
        return error_set(err, IMGSIM_E_MODEL,
                         "corrupt TFLite file: node %d uses operator code %u of %u", idx,
                         (unsigned)opc, (unsigned)codes->n);
    fb_table ct;
    uint8_t dep;
    int32_t code;
    if (fb_vec_table(codes, opc, &ct) < 0 || fb_u8(&ct, 0, 0, &dep) < 0 ||
        fb_i32(&ct, 3, 0, &code) < 0)
        return CORRUPT("operator code");
    if (code < (int32_t)dep) /* files before schema v3a only set the deprecated field */
        code = dep;
    if (outs.n != 1 || ins.n > IR_MAX_IN)
        return error_set(err, IMGSIM_E_MODEL, "node %d has %u inputs and %u outputs", idx,
                         (unsigned)ins.n, (unsigned)outs.n);
    int32_t o;
    if (fb_vec_i32(&outs, 0, &o) < 0 || o < 0 || o >= g->nt)
        return CORRUPT("operator output index");
    op->out = o;
    op->name = g->t[o].name;
    char tmp[32];
    if (code == 32) {
        const char *cs;
        uint32_t cl;
        if (fb_str_field(&ct, 1, &cs, &cl) < 0)
            return CORRUPT("custom code");
        return error_set(err, IMGSIM_E_UNSUPPORTED,
                         "unsupported TFLite custom operator '%.*s' in node %d ('%s')", (int)cl,
                         cs, idx, op->name);
    }
    if (!map_op(code, &op->kind))
        return error_set(err, IMGSIM_E_UNSUPPORTED,
                         "unsupported TFLite operator %s in node %d ('%s')",
                         builtin_name(code, tmp), idx, op->name);
    op->nin = (int)ins.n;
    for (uint32_t i = 0; i < ins.n; i++) {
        int32_t v;
        if (fb_vec_i32(&ins, i, &v) < 0 || v < -1 || v >= g->nt)
            return CORRUPT("operator input index");
        op->in[i] = v;
    }
    fb_table opt;
    int has_opt = fb_table_field(ot, 4, &opt);
    if (has_opt < 0)
        return CORRUPT("operator options");
    return read_options(code, &opt, has_opt, op, err);
}

imgsim_status tflite_read(uint8_t *bytes, size_t len, ir_graph *g, imgsim_error *err)
{
    memset(g, 0, sizeof *g);
    g->file = bytes;
    g->file_len = len;
    fb_buf b = {bytes, len};
    fb_table model, sg;
    fb_vec subgraphs, codes, buffers, tensors, ops, inputs, outputs;
    imgsim_status st;

    if (len < 8 || memcmp(bytes + 4, "TFL3", 4) != 0)
        return error_set(err, IMGSIM_E_MODEL, "not a TFLite model (no TFL3 identifier)");
    if (fb_root(&b, &model) < 0)
        return CORRUPT("root table");
    if (fb_vec_field(&model, 1, 4, &codes) < 0 || fb_vec_field(&model, 2, 4, &subgraphs) < 0 ||
        fb_vec_field(&model, 4, 4, &buffers) < 0)
        return CORRUPT("model tables");
    if (subgraphs.n < 1 || fb_vec_table(&subgraphs, 0, &sg) < 0)
        return error_set(err, IMGSIM_E_MODEL, "corrupt TFLite file: no subgraph");
    if (fb_vec_field(&sg, 0, 4, &tensors) < 0 || fb_vec_field(&sg, 1, 4, &inputs) < 0 ||
        fb_vec_field(&sg, 2, 4, &outputs) < 0 || fb_vec_field(&sg, 3, 4, &ops) < 0)
        return CORRUPT("subgraph");
    if (tensors.n == 0 || tensors.n > 100000 || ops.n == 0 || ops.n > 100000)
        return error_set(err, IMGSIM_E_MODEL, "corrupt TFLite file: %u tensors, %u operators",
                         (unsigned)tensors.n, (unsigned)ops.n);
    /* Validate every buffer and metadata entry, referenced or not: a file cut short (an
     * interrupted download) must be refused even when the missing tail is unused. */
    for (uint32_t i = 0; i < buffers.n; i++) {
        fb_table bt;
        fb_vec data;
        if (fb_vec_table(&buffers, i, &bt) < 0 || fb_vec_field(&bt, 0, 1, &data) < 0)
            return CORRUPT("buffer table (file truncated?)");
    }
    fb_vec meta;
    if (fb_vec_field(&model, 6, 4, &meta) < 0)
        return CORRUPT("metadata (file truncated?)");
    for (uint32_t i = 0; i < meta.n; i++) {
        fb_table mt;
        const char *ms;
        uint32_t ml;
        if (fb_vec_table(&meta, i, &mt) < 0 || fb_str_field(&mt, 0, &ms, &ml) < 0)
            return CORRUPT("metadata entry (file truncated?)");
    }
    const char *desc;
    uint32_t dlen;
    if (fb_str_field(&model, 3, &desc, &dlen) < 0)
        return CORRUPT("description (file truncated?)");
    g->t = calloc(tensors.n, sizeof *g->t);
    g->ops = calloc(ops.n, sizeof *g->ops);
    if (!g->t || !g->ops)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    g->nt = (int)tensors.n;
    g->nops = (int)ops.n;
    for (int i = 0; i < g->nt; i++) {
        fb_table tt;
        if (fb_vec_table(&tensors, (uint32_t)i, &tt) < 0)
            return CORRUPT("tensor table");
        if ((st = read_tensor(&tt, &buffers, &b, &g->t[i], err)) != IMGSIM_OK)
            return st;
    }
    for (int i = 0; i < g->nops; i++) {
        fb_table ot;
        if (fb_vec_table(&ops, (uint32_t)i, &ot) < 0)
            return CORRUPT("operator table");
        if ((st = read_operator(&ot, &codes, g, i, err)) != IMGSIM_OK)
            return st;
    }
    int32_t in0, out0;
    if (inputs.n != 1 || outputs.n < 1 || fb_vec_i32(&inputs, 0, &in0) < 0 ||
        fb_vec_i32(&outputs, 0, &out0) < 0 || in0 < 0 || in0 >= g->nt || out0 < 0 ||
        out0 >= g->nt)
        return error_set(err, IMGSIM_E_MODEL,
                         "TFLite model must have one image input and an output (has %u inputs)",
                         (unsigned)inputs.n);
    g->input = in0;
    g->output = out0;
    return ir_infer_shapes(g, err);
}

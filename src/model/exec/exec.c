/*
 * exec.c — lowers the graph IR onto XNNPACK operators and runs it (contract in exec.h).
 *
 * Two precisions share one lowering:
 *   quant: activations stay uint8 with the file's per-tensor scale/zero point, and every
 *          node maps to an XNNPACK qu8 operator (convolution, add, pooling, softmax, ...);
 *          element-wise activations (LeakyRelu, HardSigmoid, Clamp, HardSwish, requantizing
 *          Relu) are 256-entry tables;
 *   fp32:  activations are float; uint8/int8 weights are dequantized when the context is
 *          built ((w - zero_point) * scale per tensor or channel, int32 biases * input_scale
 *          * weight_scale), and the file's activation quantization is ignored.
 * On CPUs with AVX512-VNNI, quant convolutions and depthwise convolutions run on imgsim's
 * exact kernels (qconv.c, qdwconv.c: about 2.5x XNNPACK 2022's qu8) instead. Convolutions
 * and fully connected layers with int8 or per-channel weights (ONNX QLinearConv/MatMul) need
 * those kernels: without VNNI such models run in fp32. ONNX-quantized graphs (`ort_arith`)
 * also add and global-pool with ONNX Runtime's arithmetic (qadd_run, qgap_run). On AVX512F
 * CPUs fp32 convolutions and fully connected layers run on fconv (qconv.c).
 * Reshape, squeeze and (in fp32) quantize/dequantize nodes are aliases: their output shares
 * the input's buffer, so they cost nothing; so are a Relu/Relu6/Clamp folded into its
 * producer's output range, and (fp32) a Sigmoid + Mul folded into a swish of its producer.
 * Activations live in one arena; a buffer is reused once the last node reading it has run
 * (greedy first-fit by liveness).
 *
 * Threads (quant plans, and fp32 plans with up to 48 MB of weights): a batch of 2+ images
 * runs one image per thread on single-threaded batch-1 sub-contexts, which share the
 * parent's packed weights (imgsim's kernels are read-only once built); a single image runs
 * operator by operator on the pool, or on one thread when that is measured faster (another
 * process holding a core). Larger fp32 models run every batch layer by layer, with the same
 * fallback to one thread. See docs/MODELS.md.
 */
#include "model/exec/exec.h"

#include <math.h>
#include <pthread.h>
#include <pthreadpool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xnnpack.h>

#include "core/error.h"
#include "model/kernels/fconv.h"
#include "model/kernels/fswish.h"
#include "model/kernels/qadd.h"
#include "model/kernels/qconv.h"
#include "model/kernels/qdwconv.h"
#include "model/kernels/qgap.h"

#define ALIGN 64
#define PAD_BYTES 64 /* slack after constant copies: XNNPACK kernels may over-read */

typedef struct step {
    xnn_operator_t op;
    qconv *qc;              /* quant convolutions (and fully connected layers with int8
                             * weights) on imgsim's AVX512 kernels instead of op */
    qdwconv *qdw;
    fconv *fc;              /* fp32 convolutions and fully connected layers (AVX512F) */
    int borrowed;           /* qc / qdw / fc belong to the parent context (sub-contexts) */
    void *consts[2];        /* operator-owned copies of constant operands (nd ops) */
    uint8_t *lut;           /* quant element-wise nodes: output byte for each input byte */
    int own_add;            /* ort_arith plans: Add on qadd_run (operands swapped if 2) */
    qadd_params add;
    int own_gap;            /* ort_arith plans: global average pool on qgap_run */
} step;

struct exec_ctx {
    const exec_plan *p;
    step *steps;
    uint8_t *arena;
    int max_batch;
    int setup_batch;        /* batch the operators are currently set up for, 0 = none */
    pthreadpool_t pool;
    /* Quant plans with several threads: batches of 2+ images run one image per thread, each
     * on a single-threaded batch-1 context of its own (no synchronisation between layers,
     * and each image's activations stay in its core's cache). */
    exec_ctx **sub;
    atomic_int *sub_busy;
    int nsub;
    atomic_int sub_failed;
    pthread_mutex_t sub_lock; /* guards sub_err */
    imgsim_error sub_err;
    /* Single images with sub-contexts: seconds per run layer-parallel on the pool [0] and
     * serially on sub[0] [1], and the number of single-image runs. */
    double one_time[2];
    unsigned one_runs;
    double one_probe;       /* when to re-time the slower mode next (seconds) */
    int image_parallel;     /* batches one image per sub-context (else only sub[0], for the
                             * serial fallback) */
    double many_time[2];    /* as one_time, per image, for batches run layer by layer */
    unsigned many_runs;
    double many_probe;
    /* Quantized inputs fed with normalised floats (g->input_from_float): the input byte for
     * each raw channel value, for the mean/std it was made with. */
    uint8_t in_lut[3][256];
    float lut_mean[3], lut_std[3];
    int lut_ready;
};

/* Re-time the slower single-image mode every this many runs. */
#define ONE_PROBE 256

static int is_alias(const ir_graph *g, const ir_op *op, int quant)
{
    if (op->kind == IR_RESHAPE)
        return 1;
    if (!quant && (op->kind == IR_QUANTIZE || op->kind == IR_DEQUANTIZE))
        return 1;
    /* quant plans: a dequantize to float (ONNX DequantizeLinear at the output) keeps the
     * bytes; exec_read dequantizes with its input's parameters */
    if (quant && op->kind == IR_DEQUANTIZE && g->t[op->out].dtype == IR_F32)
        return 1;
    return 0;
}

/* Node i of a plan: an alias (no work, its output shares its input's buffer)? */
static int step_alias(const exec_plan *p, int i)
{
    return is_alias(p->g, &p->g->ops[i], p->quant) || (p->fused && p->fused[i]);
}

static int is_global_pool(const ir_graph *g, const ir_op *op);

static size_t elem_size(const exec_plan *p)
{
    return p->quant ? 1 : 4;
}

/* Does weight tensor `w` have usable scales: per tensor, or one per output channel
 * (`oc` of them, along dimension `qdim`)? */
static int weight_scales_ok(const ir_tensor *w, int64_t oc, int qdim)
{
    if (!w->quantized || (w->dtype != IR_U8 && w->dtype != IR_I8))
        return 0;
    if (w->nchannel_scales > 1)
        return w->channel_scales && w->nchannel_scales == oc && w->qdim == qdim;
    return 1;
}

/* Weights that only imgsim's kernels take (XNNPACK's qu8 operators want uint8 weights with
 * one scale): int8 or per-channel. */
static int needs_own_kernel(const ir_tensor *w)
{
    return w->dtype == IR_I8 || w->nchannel_scales > 1;
}

/* Requantization multiplier of output channel c: x_scale * w_scale[c] / y_scale, computed
 * as ONNX Runtime does (left to right, in float). */
static float chan_mult(const ir_graph *g, const ir_op *op, size_t c)
{
    const ir_tensor *x = &g->t[op->in[0]], *w = &g->t[op->in[1]], *y = &g->t[op->out];
    float ws = w->nchannel_scales > 1 ? w->channel_scales[c] : w->scale;
    return x->scale * ws / y->scale;
}

/* qconv parameters of a quantized convolution, depthwise convolution or fully connected
 * node (a 1x1 convolution over rows of k). Weights and bias point into the graph; per-channel
 * multipliers go to `scales` (oc floats, caller's) when given, else only `scale` is set (to
 * channel 0's multiplier: enough for qconv_supported's shape checks). */
static void make_qparams(const ir_graph *g, const ir_op *op, uint8_t lo, uint8_t hi,
                         float *scales, qconv_params *qp)
{
    const ir_tensor *x = &g->t[op->in[0]], *w = &g->t[op->in[1]], *y = &g->t[op->out];
    int has_bias = op->nin > 2 && op->in[2] >= 0;
    memset(qp, 0, sizeof *qp);
    if (op->kind == IR_FULLY_CONNECTED) {
        qp->kh = qp->kw = qp->stride_h = qp->stride_w = qp->dil_h = qp->dil_w = 1;
        qp->cin = (size_t)w->shape[1];
        qp->cout = (size_t)w->shape[0];
    } else {
        qp->kh = (size_t)op->kh;
        qp->kw = (size_t)op->kw;
        qp->stride_h = (size_t)op->stride_h;
        qp->stride_w = (size_t)op->stride_w;
        qp->dil_h = (size_t)op->dil_h;
        qp->dil_w = (size_t)op->dil_w;
        qp->pad_top = (size_t)op->pad_top;
        qp->pad_left = (size_t)op->pad_left;
        qp->cin = (size_t)x->shape[3];
        qp->cout = (size_t)y->shape[3];
    }
    qp->w = w->data;
    qp->w_signed = w->dtype == IR_I8;
    qp->w_zero_point = w->zero_point;
    qp->bias = has_bias ? (const int32_t *)(const void *)g->t[op->in[2]].data : NULL;
    qp->x_zero_point = (uint8_t)x->zero_point;
    qp->scale = chan_mult(g, op, 0);
    if (scales && w->nchannel_scales > 1) {
        for (size_t c = 0; c < qp->cout; c++)
            scales[c] = chan_mult(g, op, c);
        qp->scales = scales;
    }
    qp->y_zero_point = (uint8_t)y->zero_point;
    qp->y_min = lo;
    qp->y_max = hi;
}

static void act_range_q(const ir_tensor *y, ir_act act, uint8_t *lo, uint8_t *hi);

/* Can a convolution or fully connected node with int8 / per-channel weights run on imgsim's
 * kernels (CPU, shape, multipliers)? */
static int own_kernel_ok(const ir_graph *g, const ir_op *op)
{
    const ir_tensor *w = &g->t[op->in[1]], *y = &g->t[op->out];
    int dw = op->kind == IR_DWCONV2D;
    if (!qconv_available())
        return 0;
    if (op->kind == IR_CONV2D && w->shape[3] != g->t[op->in[0]].shape[3])
        return 0; /* grouped */
    if (dw && op->depth_mult != 1)
        return 0;
    uint8_t lo, hi;
    act_range_q(y, op->act, &lo, &hi);
    qconv_params qp;
    make_qparams(g, op, lo, hi, NULL, &qp);
    for (size_t c = 0; c < qp.cout; c++) {
        float m = chan_mult(g, op, c);
        if (!(m >= 0.0f && m < 65536.0f))
            return 0;
    }
    qp.scale = 1.0f; /* multipliers checked above */
    return qconv_supported(&qp, dw);
}

/* Can node `op` run quantized (XNNPACK's qu8 operators, imgsim's kernels, tables)? */
static int quant_ok(const ir_graph *g, const ir_op *op)
{
    const ir_tensor *y = &g->t[op->out];
    int conv = op->kind == IR_CONV2D || op->kind == IR_DWCONV2D ||
               op->kind == IR_FULLY_CONNECTED;
    if (op->kind == IR_DEQUANTIZE && y->dtype == IR_F32) {
        const ir_tensor *x = &g->t[op->in[0]];
        return x->dtype == IR_U8 && x->quantized && x->nchannel_scales <= 1;
    }
    if (y->dtype != IR_U8 || !y->quantized || y->nchannel_scales > 1)
        return 0;
    for (int i = 0; i < op->nin; i++) {
        int t = op->in[i];
        if (t < 0)
            continue;
        const ir_tensor *x = &g->t[t];
        int is_bias = i == 2 && conv;
        int is_param = i == 1 && (op->kind == IR_MEAN || op->kind == IR_RESHAPE);
        if (is_param)
            continue;
        if (i == 1 && conv) {
            int64_t oc = op->kind == IR_DWCONV2D ? x->shape[3] : x->shape[0];
            if (!weight_scales_ok(x, oc, op->kind == IR_DWCONV2D ? 3 : 0))
                return 0;
            if (needs_own_kernel(x) && !own_kernel_ok(g, op))
                return 0;
            continue;
        }
        if (is_bias ? x->dtype != IR_I32 : (x->dtype != IR_U8 || !x->quantized))
            return 0;
        if (x->nchannel_scales > 1)
            return 0;
    }
    switch (op->kind) {
    case IR_CONV2D: case IR_DWCONV2D: case IR_FULLY_CONNECTED: case IR_ADD: case IR_SUB:
    case IR_MUL: case IR_AVG_POOL: case IR_MAX_POOL: case IR_MEAN: case IR_SOFTMAX:
    case IR_RELU: case IR_RELU6: case IR_QUANTIZE: case IR_DEQUANTIZE: case IR_LOGISTIC:
    case IR_LEAKY_RELU: case IR_HARD_SIGMOID: case IR_CLAMP: case IR_HARD_SWISH:
        return 1;
    case IR_RESHAPE: case IR_CONCAT: {
        /* data is copied unchanged: all operands must share the output's quantization */
        for (int i = 0; i < (op->kind == IR_RESHAPE ? 1 : op->nin); i++) {
            const ir_tensor *x = &g->t[op->in[i]];
            if (x->scale != y->scale || x->zero_point != y->zero_point)
                return 0;
        }
        return 1;
    }
    default:
        return 0;
    }
}

/* Fold each Relu / Relu6 / Clamp whose input is read by nothing else into the output range of
 * the node producing it (XNNPACK's operators and imgsim's kernels all clamp their outputs):
 * one pass over the activation less per folded node. Quant plans fold only when the clamp
 * keeps the quantization. fp32 plans also turn Mul(x, Sigmoid(x)) into one swish pass
 * (EfficientNet: two passes and five memory streams per element become one pass and two).
 * -1 when out of memory. */
static int fold_clamps(const ir_graph *g, exec_plan *p, int emb)
{
    int n = g->nops;
    p->fused = calloc((size_t)n + 1, 1);
    p->swish = calloc((size_t)n + 1, 1);
    p->fuse_lo = malloc(sizeof(float) * ((size_t)n + 1));
    p->fuse_hi = malloc(sizeof(float) * ((size_t)n + 1));
    int *uses = calloc((size_t)g->nt, sizeof(int)), *prod = malloc(sizeof(int) * (size_t)g->nt);
    if (!p->fused || !p->swish || !p->fuse_lo || !p->fuse_hi || !uses || !prod) {
        free(uses);
        free(prod);
        return -1;
    }
    for (int t = 0; t < g->nt; t++)
        prod[t] = -1;
    for (int i = 0; i < n; i++) {
        p->fuse_lo[i] = -INFINITY;
        p->fuse_hi[i] = INFINITY;
        for (int k = 0; k < g->ops[i].nin; k++)
            if (g->ops[i].in[k] >= 0)
                uses[g->ops[i].in[k]]++;
        prod[g->ops[i].out] = i;
    }
    /* fp32 swish: s = Sigmoid(x), y = Mul(x, s) (either order), x made by a real node i and
     * read by nothing else, s by nothing but the Mul, all float and the same size: node i's
     * output becomes swish(x) in place (fconv: in its epilogue), Sigmoid and Mul aliases */
    for (int k = 0; k < n && !p->quant && fconv_available(); k++) {
        const ir_op *mul = &g->ops[k];
        if (mul->kind != IR_MUL || mul->nin != 2 || mul->act != IR_ACT_NONE)
            continue;
        for (int side = 0; side < 2; side++) {
            int x = mul->in[side], sg = mul->in[1 - side], j = sg >= 0 ? prod[sg] : -1;
            int i = x >= 0 ? prod[x] : -1;
            if (x < 0 || j < 0 || i < 0 || g->ops[j].kind != IR_LOGISTIC ||
                g->ops[j].in[0] != x || is_alias(g, &g->ops[i], 0) || p->fused[i] ||
                uses[x] != 2 || uses[sg] != 1 || x == emb || sg == emb || x == g->output ||
                sg == g->output || g->t[x].dtype != IR_F32 || g->t[x].quantized ||
                g->t[mul->out].dtype != IR_F32 || g->t[mul->out].quantized ||
                ir_numel(&g->t[x]) != ir_numel(&g->t[mul->out]))
                continue;
            p->swish[i] = 1;
            p->fused[j] = 1; /* Sigmoid and Mul: nothing left to do, aliases of x */
            p->fused[k] = 1;
            break;
        }
    }
    for (int j = 0; j < n; j++) {
        const ir_op *c = &g->ops[j];
        if (c->kind != IR_RELU && c->kind != IR_RELU6 && c->kind != IR_CLAMP)
            continue;
        int t = c->in[0], i = prod[t];
        if (i < 0 || i >= j || uses[t] != 1 || t == emb || t == g->output || c->act != IR_ACT_NONE)
            continue;
        const ir_op *op = &g->ops[i];
        if (p->swish[i] || p->fused[i])
            continue;
        switch (op->kind) {
        case IR_CONV2D: case IR_DWCONV2D: case IR_FULLY_CONNECTED: case IR_ADD: case IR_SUB:
        case IR_MUL: case IR_AVG_POOL: case IR_MAX_POOL: case IR_MEAN:
            break;
        default:
            continue;
        }
        const ir_tensor *a = &g->t[t], *b = &g->t[c->out];
        if (p->quant && (a->dtype != b->dtype || a->scale != b->scale ||
                         a->zero_point != b->zero_point))
            continue;
        float lo = c->kind == IR_CLAMP ? c->lo : 0.0f;
        float hi = c->kind == IR_CLAMP ? c->hi : c->kind == IR_RELU6 ? 6.0f : INFINITY;
        p->fused[j] = 1;
        p->fuse_lo[i] = fmaxf(p->fuse_lo[i], lo);
        p->fuse_hi[i] = fminf(p->fuse_hi[i], hi);
    }
    free(uses);
    free(prod);
    return 0;
}

void exec_plan_free(exec_plan *p)
{
    free(p->root);
    free(p->offset);
    free(p->fused);
    free(p->fuse_lo);
    free(p->fuse_hi);
    free(p->swish);
    memset(p, 0, sizeof *p);
}

imgsim_status exec_plan_make(const ir_graph *g, imgsim_precision precision, int emb,
                             exec_plan *p, imgsim_error *err)
{
    memset(p, 0, sizeof *p);
    p->g = g;
    p->emb = emb;
    p->out = g->output;
    int quant = precision != IMGSIM_PRECISION_FP32;
    const ir_tensor *in = &g->t[g->input];
    if (in->dtype != IR_U8 && in->dtype != IR_F32)
        return imgsim_fail(err, IMGSIM_E_UNSUPPORTED, "model input type %s is not supported",
                           ir_dtype_name(in->dtype));
    if (in->shape[0] != 1)
        return imgsim_fail(err, IMGSIM_E_UNSUPPORTED, "model input batch must be 1");
    if (quant && !(in->dtype == IR_U8 && in->quantized))
        quant = 0;
    for (int i = 0; quant && i < g->nops; i++)
        if (!quant_ok(g, &g->ops[i])) {
            if (precision == IMGSIM_PRECISION_QUANT) {
                const ir_op *op = &g->ops[i];
                int own = (op->kind == IR_CONV2D || op->kind == IR_DWCONV2D ||
                           op->kind == IR_FULLY_CONNECTED) &&
                          op->nin > 1 && needs_own_kernel(&g->t[op->in[1]]) &&
                          !qconv_available();
                return imgsim_fail(err, IMGSIM_E_UNSUPPORTED,
                                   "node '%s' (%s) cannot run quantized%s; use fp32", op->name,
                                   ir_op_name(op->kind),
                                   own ? " (int8 per-channel weights need AVX512-VNNI)" : "");
            }
            quant = 0;
        }
    p->quant = quant;
    p->weight_bytes = 0;
    for (int i = 0; i < g->nops; i++) {
        const ir_op *op = &g->ops[i];
        if (op->kind == IR_CONV2D || op->kind == IR_DWCONV2D || op->kind == IR_FULLY_CONNECTED)
            p->weight_bytes += (size_t)ir_numel(&g->t[op->in[1]]) * (quant ? 1 : 4);
    }
    p->ort_arith = 0;
    if (quant && qconv_available()) {
        p->ort_arith = g->input_from_float;
        for (int i = 0; i < g->nops; i++) {
            const ir_op *op = &g->ops[i];
            if ((op->kind == IR_CONV2D || op->kind == IR_DWCONV2D ||
                 op->kind == IR_FULLY_CONNECTED) && g->t[op->in[1]].dtype == IR_I8)
                p->ort_arith = 1;
        }
    }

    int nt = g->nt;
    if (fold_clamps(g, p, emb) != 0) {
        exec_plan_free(p);
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    }
    p->root = malloc(sizeof(int) * (size_t)nt);
    p->offset = malloc(sizeof(size_t) * (size_t)nt);
    int *first = malloc(sizeof(int) * (size_t)nt), *last = malloc(sizeof(int) * (size_t)nt);
    int *order = malloc(sizeof(int) * (size_t)nt);
    if (!p->root || !p->offset || !first || !last || !order) {
        free(first); free(last); free(order);
        exec_plan_free(p);
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    }
    for (int t = 0; t < nt; t++) {
        p->root[t] = t;
        p->offset[t] = SIZE_MAX;
        first[t] = INT32_MAX;
        last[t] = -1;
    }
    /* Every activation must be produced before it is read; record lifetimes on roots. */
    int *made = calloc((size_t)nt, sizeof(int));
    if (!made) {
        free(first); free(last); free(order);
        exec_plan_free(p);
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    }
    made[g->input] = 1;
    first[g->input] = -1;
    imgsim_status st = IMGSIM_OK;
    for (int i = 0; i < g->nops && st == IMGSIM_OK; i++) {
        const ir_op *op = &g->ops[i];
        for (int k = 0; k < op->nin; k++) {
            int t = op->in[k];
            if (t < 0 || g->t[t].data)
                continue;
            if (!made[t]) {
                st = imgsim_fail(err, IMGSIM_E_MODEL,
                                 "node '%s' reads tensor '%s' before it is computed", op->name,
                                 g->t[t].name);
                break;
            }
            int r = p->root[t];
            if (last[r] < i)
                last[r] = i;
        }
        if (made[op->out] && st == IMGSIM_OK)
            st = imgsim_fail(err, IMGSIM_E_MODEL, "tensor '%s' is written twice", op->name);
        made[op->out] = 1;
        if (step_alias(p, i))
            p->root[op->out] = p->root[op->in[0]];
        else
            first[op->out] = i;
    }
    if (st == IMGSIM_OK && (!made[emb] || !made[g->output]))
        st = imgsim_fail(err, IMGSIM_E_MODEL, "output tensor is never computed");
    free(made);
    if (st != IMGSIM_OK) {
        free(first); free(last); free(order);
        exec_plan_free(p);
        return st;
    }
    last[p->root[emb]] = INT32_MAX;
    last[p->root[g->output]] = INT32_MAX;
    /* A uint8 global-pool embedding keeps only 8 bits per feature (its scale is coarse, and
     * small features round to zero). Average the pool's uint8 input in float instead. */
    p->emb_pool_in = -1;
    int pe = ir_producer(g, emb);
    if (quant && pe >= 0 && (g->ops[pe].kind == IR_MEAN || g->ops[pe].kind == IR_AVG_POOL) &&
        g->ops[pe].act == IR_ACT_NONE && is_global_pool(g, &g->ops[pe])) {
        p->emb_pool_in = g->ops[pe].in[0];
        last[p->root[p->emb_pool_in]] = INT32_MAX;
    }

    /* Greedy first-fit placement in order of definition. */
    int n = 0;
    for (int t = 0; t < nt; t++)
        if (p->root[t] == t && first[t] != INT32_MAX && !g->t[t].data)
            order[n++] = t;
    for (int a = 1; a < n; a++) /* insertion sort by first definition */
        for (int b = a; b > 0 && first[order[b - 1]] > first[order[b]]; b--) {
            int tmp = order[b];
            order[b] = order[b - 1];
            order[b - 1] = tmp;
        }
    size_t top = 0;
    for (int a = 0; a < n; a++) {
        int t = order[a];
        size_t need = ((size_t)ir_numel(&g->t[t]) * elem_size(p) + ALIGN - 1) / ALIGN * ALIGN;
        size_t off = 0;
        for (;;) { /* find the lowest offset not overlapping a live placed tensor */
            int moved = 0;
            for (int b = 0; b < a; b++) {
                int u = order[b];
                if (last[u] < first[t] && last[u] != INT32_MAX)
                    continue; /* dead before t is born */
                if (last[u] == -1)
                    continue; /* never read */
                size_t us = ((size_t)ir_numel(&g->t[u]) * elem_size(p) + ALIGN - 1) / ALIGN * ALIGN;
                if (off < p->offset[u] + us && p->offset[u] < off + need) {
                    off = p->offset[u] + us;
                    moved = 1;
                }
            }
            if (!moved)
                break;
        }
        p->offset[t] = off;
        if (off + need > top)
            top = off + need;
    }
    p->arena_bytes = top;
    free(first); free(last); free(order);
    return IMGSIM_OK;
}

/* ---------------------------------------------------------------- context building */

static uint8_t qclamp(const ir_tensor *t, float real)
{
    float q = roundf(real / t->scale) + (float)t->zero_point;
    return (uint8_t)(q < 0.0f ? 0 : q > 255.0f ? 255 : q);
}

static void act_range_q(const ir_tensor *y, ir_act act, uint8_t *lo, uint8_t *hi)
{
    *lo = 0;
    *hi = 255;
    if (act == IR_ACT_RELU || act == IR_ACT_RELU6)
        *lo = qclamp(y, 0.0f);
    if (act == IR_ACT_RELU_N1_1)
        *lo = qclamp(y, -1.0f);
    if (act == IR_ACT_RELU6)
        *hi = qclamp(y, 6.0f);
    if (act == IR_ACT_RELU_N1_1)
        *hi = qclamp(y, 1.0f);
}

/* Float output range of a node: its fused activation, intersected — for a quantized
 * tensor run in fp32 — with the range the uint8 tensor can represent, so the dequantized
 * model saturates where the quantized one does (it was trained with those ranges). */
static void act_range_f(const ir_tensor *y, ir_act act, float *lo, float *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    if (y && y->quantized && y->dtype == IR_U8) {
        *lo = (0.0f - (float)y->zero_point) * y->scale;
        *hi = (255.0f - (float)y->zero_point) * y->scale;
    }
    if ((act == IR_ACT_RELU || act == IR_ACT_RELU6) && *lo < 0.0f)
        *lo = 0.0f;
    if (act == IR_ACT_RELU6 && *hi > 6.0f)
        *hi = 6.0f;
    if (act == IR_ACT_RELU_N1_1) {
        *lo = *lo < -1.0f ? -1.0f : *lo;
        *hi = *hi > 1.0f ? 1.0f : *hi;
    }
}

/* A node's output range: its fused activation and any Relu/Clamp folded into it. */
static void op_range_f(const exec_plan *p, const ir_op *op, const ir_tensor *y, float *lo,
                       float *hi)
{
    act_range_f(y, op->act, lo, hi);
    size_t i = (size_t)(op - p->g->ops);
    *lo = fmaxf(*lo, p->fuse_lo[i]);
    *hi = fminf(*hi, p->fuse_hi[i]);
}

static uint8_t q_even(const ir_tensor *t, float real) /* quantize, round half to even */
{
    float q = nearbyintf(real / t->scale) + (float)t->zero_point;
    return (uint8_t)(q < 0.0f ? 0 : q > 255.0f ? 255 : q);
}

static void op_range_q(const exec_plan *p, const ir_op *op, const ir_tensor *y, uint8_t *lo,
                       uint8_t *hi)
{
    act_range_q(y, op->act, lo, hi);
    size_t i = (size_t)(op - p->g->ops);
    if (p->fuse_lo[i] > -INFINITY) {
        uint8_t q = q_even(y, p->fuse_lo[i]);
        *lo = q > *lo ? q : *lo;
    }
    if (p->fuse_hi[i] < INFINITY) {
        uint8_t q = q_even(y, p->fuse_hi[i]);
        *hi = q < *hi ? q : *hi;
    }
}

/* Scale of element `i` of a quantized constant whose channel axis has `ch` positions with
 * stride `inner` (per-channel quantization) — or the tensor's scale. */
static float elem_scale(const ir_tensor *t, size_t i, size_t inner)
{
    if (t->nchannel_scales > 1) {
        size_t c = (i / inner) % (size_t)t->nchannel_scales;
        return t->channel_scales[c];
    }
    return t->scale;
}

/* Float copy of a constant: float data as is, quantized data dequantized. `inner` is the
 * stride of the per-channel axis (weights). Caller frees. */
static float *const_to_f32(const ir_tensor *t, size_t inner)
{
    size_t n = (size_t)ir_numel(t);
    float *f = calloc(1, sizeof(float) * n + PAD_BYTES);
    if (!f)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case IR_F32:
            memcpy(&f[i], t->data + 4 * i, 4);
            break;
        case IR_U8:
            f[i] = ((float)t->data[i] - (float)t->zero_point) * (t->quantized ? elem_scale(t, i, inner) : 1.0f);
            break;
        case IR_I8:
            f[i] = ((float)(int8_t)t->data[i] - (float)t->zero_point) * (t->quantized ? elem_scale(t, i, inner) : 1.0f);
            break;
        case IR_I32: {
            int32_t v;
            memcpy(&v, t->data + 4 * i, 4);
            f[i] = (float)v;
            break;
        }
        default:
            free(f);
            return NULL;
        }
    }
    return f;
}

/* Float bias for a quantized conv/FC: b * input_scale * weight_scale(channel). */
static float *bias_to_f32(const ir_graph *g, const ir_op *op, size_t oc)
{
    const ir_tensor *b = &g->t[op->in[2]];
    if (b->dtype == IR_F32)
        return const_to_f32(b, 1);
    const ir_tensor *x = &g->t[op->in[0]], *w = &g->t[op->in[1]];
    float *f = malloc(sizeof(float) * oc);
    if (!f || b->dtype != IR_I32) {
        free(f);
        return NULL;
    }
    for (size_t c = 0; c < oc; c++) {
        int32_t v;
        memcpy(&v, b->data + 4 * c, 4);
        float ws = w->nchannel_scales > 1 ? w->channel_scales[c % (size_t)w->nchannel_scales] : w->scale;
        f[c] = (float)v * x->scale * ws;
    }
    return f;
}

static imgsim_status xnn_fail(imgsim_error *err, const ir_op *op, enum xnn_status s)
{
    return imgsim_fail(err, IMGSIM_E_UNSUPPORTED,
                       "XNNPACK refused node '%s' (%s): status %d", op->name, ir_op_name(op->kind),
                       (int)s);
}

/* A quantized convolution (or fully connected layer) on imgsim's kernels: s->qc or s->qdw
 * set, or neither when the kernels do not take it (then XNNPACK's qu8 operator must). */
static imgsim_status build_own(const exec_ctx *c, const ir_op *op, uint8_t lo, uint8_t hi,
                               step *s, imgsim_error *err)
{
    const ir_graph *g = c->p->g;
    const ir_tensor *w = &g->t[op->in[1]];
    int dw = op->kind == IR_DWCONV2D;
    size_t oc = (size_t)(dw ? w->shape[3] : w->shape[0]);
    float *scales = w->nchannel_scales > 1 ? malloc(sizeof(float) * oc) : NULL;
    if (w->nchannel_scales > 1 && !scales)
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')", op->name);
    qconv_params qp;
    make_qparams(g, op, lo, hi, scales, &qp);
    int unsupported;
    if (dw)
        s->qdw = qdwconv_new(&qp, &unsupported);
    else
        s->qc = qconv_new(&qp, &unsupported);
    free(scales);
    if (s->qc || s->qdw)
        return IMGSIM_OK;
    if (!unsupported)
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')", op->name);
    if (needs_own_kernel(w)) /* quant_ok said the kernels would take it */
        return imgsim_fail(err, IMGSIM_E_INTERNAL, "node '%s': no kernel for int8 weights",
                           op->name);
    return IMGSIM_OK;
}

static imgsim_status build_conv(const exec_ctx *c, const ir_op *op, step *s, imgsim_error *err)
{
    const ir_graph *g = c->p->g;
    const ir_tensor *x = &g->t[op->in[0]], *w = &g->t[op->in[1]], *y = &g->t[op->out];
    int dw = op->kind == IR_DWCONV2D;
    size_t cin = (size_t)x->shape[3], cout = (size_t)y->shape[3];
    uint32_t groups;
    size_t gin, gout;
    if (dw) {
        groups = (uint32_t)cin;
        gin = 1;
        gout = (size_t)op->depth_mult;
    } else {
        gin = (size_t)w->shape[3];
        groups = (uint32_t)(cin / gin);
        gout = cout / groups;
    }
    uint32_t flags = dw ? XNN_FLAG_DEPTHWISE_CONVOLUTION : 0;
    int has_bias = op->nin > 2 && op->in[2] >= 0;
    enum xnn_status xs;
    if (c->p->quant) {
        uint8_t lo, hi;
        op_range_q(c->p, op, y, &lo, &hi);
        if ((!dw && groups == 1) || (dw && op->depth_mult == 1)) {
            imgsim_status st = build_own(c, op, lo, hi, s, err);
            if (st != IMGSIM_OK || s->qc || s->qdw)
                return st;
        }
        xs = xnn_create_convolution2d_nhwc_qu8(
            (uint32_t)op->pad_top, (uint32_t)op->pad_right, (uint32_t)op->pad_bottom,
            (uint32_t)op->pad_left, (uint32_t)op->kh, (uint32_t)op->kw, (uint32_t)op->stride_h,
            (uint32_t)op->stride_w, (uint32_t)op->dil_h, (uint32_t)op->dil_w, groups, gin, gout,
            cin, cout, (uint8_t)x->zero_point, x->scale, (uint8_t)w->zero_point, w->scale,
            w->data, has_bias ? (const int32_t *)(const void *)g->t[op->in[2]].data : NULL,
            (uint8_t)y->zero_point, y->scale, lo, hi, flags, &s->op);
        /* int32 bias read in place: TFLite buffers are 16-byte aligned in practice, but
         * XNNPACK copies it while packing, so alignment only matters for the read. */
    } else {
        float lo, hi;
        op_range_f(c->p, op, y, &lo, &hi);
        /* per-channel axis: output channels, dim 0 for conv, dim 3 for depthwise */
        size_t inner = dw ? 1 : (size_t)(w->shape[1] * w->shape[2] * w->shape[3]);
        float *wf = const_to_f32(w, inner);
        float *bf = has_bias ? bias_to_f32(g, op, cout) : NULL;
        if (!wf || (has_bias && !bf)) {
            free(wf);
            free(bf);
            return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')", op->name);
        }
        int unsupported = 1;
        if (!dw && groups == 1) {
            fconv_params fp = {(size_t)op->kh, (size_t)op->kw, (size_t)op->stride_h,
                               (size_t)op->stride_w, (size_t)op->dil_h, (size_t)op->dil_w,
                               (size_t)op->pad_top, (size_t)op->pad_left, cin, cout, wf, bf,
                               lo, hi, c->p->swish[op - g->ops]};
            s->fc = fconv_new(&fp, &unsupported);
        }
        if (s->fc || !unsupported) {
            free(wf);
            free(bf);
            return s->fc ? IMGSIM_OK
                         : imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')",
                                       op->name);
        }
        xs = xnn_create_convolution2d_nhwc_f32(
            (uint32_t)op->pad_top, (uint32_t)op->pad_right, (uint32_t)op->pad_bottom,
            (uint32_t)op->pad_left, (uint32_t)op->kh, (uint32_t)op->kw, (uint32_t)op->stride_h,
            (uint32_t)op->stride_w, (uint32_t)op->dil_h, (uint32_t)op->dil_w, groups, gin, gout,
            cin, cout, wf, bf, lo, hi, flags, &s->op);
        free(wf);
        free(bf);
    }
    return xs == xnn_status_success ? IMGSIM_OK : xnn_fail(err, op, xs);
}

static imgsim_status build_fc(const exec_ctx *c, const ir_op *op, step *s, imgsim_error *err)
{
    const ir_graph *g = c->p->g;
    const ir_tensor *x = &g->t[op->in[0]], *w = &g->t[op->in[1]], *y = &g->t[op->out];
    size_t k = (size_t)w->shape[1], oc = (size_t)w->shape[0];
    int has_bias = op->nin > 2 && op->in[2] >= 0;
    enum xnn_status xs;
    if (c->p->quant) {
        uint8_t lo, hi;
        op_range_q(c->p, op, y, &lo, &hi);
        if (needs_own_kernel(w)) /* int8 / per-channel weights: a 1x1 convolution */
            return build_own(c, op, lo, hi, s, err);
        xs = xnn_create_fully_connected_nc_qu8(
            k, oc, k, oc, (uint8_t)x->zero_point, x->scale, (uint8_t)w->zero_point, w->scale,
            w->data, has_bias ? (const int32_t *)(const void *)g->t[op->in[2]].data : NULL,
            (uint8_t)y->zero_point, y->scale, lo, hi, 0, &s->op);
    } else {
        float lo, hi;
        op_range_f(c->p, op, y, &lo, &hi);
        float *wf = const_to_f32(w, k);
        float *bf = has_bias ? bias_to_f32(g, op, oc) : NULL;
        if (!wf || (has_bias && !bf)) {
            free(wf);
            free(bf);
            return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')", op->name);
        }
        fconv_params fp = {1, 1, 1, 1, 1, 1, 0, 0, k, oc, wf, bf, lo, hi, c->p->swish[op - g->ops]};
        int unsupported;
        s->fc = fconv_new(&fp, &unsupported);
        if (s->fc || !unsupported) {
            free(wf);
            free(bf);
            return s->fc ? IMGSIM_OK
                         : imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')",
                                       op->name);
        }
        xs = xnn_create_fully_connected_nc_f32(k, oc, k, oc, wf, bf, lo, hi, 0, &s->op);
        free(wf);
        free(bf);
    }
    return xs == xnn_status_success ? IMGSIM_OK : xnn_fail(err, op, xs);
}

static int is_global_pool(const ir_graph *g, const ir_op *op)
{
    const ir_tensor *x = &g->t[op->in[0]];
    return op->kind == IR_MEAN ||
           (op->kh == x->shape[1] && op->kw == x->shape[2] && op->pad_top == 0 &&
            op->pad_left == 0 && op->pad_bottom == 0 && op->pad_right == 0);
}

static imgsim_status build_pool(const exec_ctx *c, const ir_op *op, step *s, imgsim_error *err)
{
    const ir_graph *g = c->p->g;
    const ir_tensor *x = &g->t[op->in[0]], *y = &g->t[op->out];
    size_t ch = (size_t)x->shape[3];
    enum xnn_status xs;
    uint8_t qlo = 0, qhi = 255;
    float lo = -INFINITY, hi = INFINITY;
    if (c->p->quant)
        op_range_q(c->p, op, y, &qlo, &qhi);
    else
        op_range_f(c->p, op, y, &lo, &hi);
    if (c->p->ort_arith && op->kind != IR_MAX_POOL && is_global_pool(g, op)) {
        s->own_gap = 1; /* ONNX Runtime's QLinearGlobalAveragePool */
        return IMGSIM_OK;
    }
    if (op->kind == IR_MAX_POOL) {
        if (c->p->quant)
            xs = xnn_create_max_pooling2d_nhwc_u8(
                (uint32_t)op->pad_top, (uint32_t)op->pad_right, (uint32_t)op->pad_bottom,
                (uint32_t)op->pad_left, (uint32_t)op->kh, (uint32_t)op->kw,
                (uint32_t)op->stride_h, (uint32_t)op->stride_w, 1, 1, ch, ch, ch, qlo, qhi, 0,
                &s->op);
        else
            xs = xnn_create_max_pooling2d_nhwc_f32(
                (uint32_t)op->pad_top, (uint32_t)op->pad_right, (uint32_t)op->pad_bottom,
                (uint32_t)op->pad_left, (uint32_t)op->kh, (uint32_t)op->kw,
                (uint32_t)op->stride_h, (uint32_t)op->stride_w, 1, 1, ch, ch, ch, lo, hi, 0,
                &s->op);
    } else if (is_global_pool(g, op)) {
        if (c->p->quant)
            xs = xnn_create_global_average_pooling_nwc_qu8(
                ch, ch, ch, (uint8_t)x->zero_point, x->scale, (uint8_t)y->zero_point, y->scale,
                qlo, qhi, 0, &s->op);
        else
            xs = xnn_create_global_average_pooling_nwc_f32(ch, ch, ch, lo, hi, 0, &s->op);
    } else {
        if (c->p->quant)
            xs = xnn_create_average_pooling2d_nhwc_qu8(
                (uint32_t)op->pad_top, (uint32_t)op->pad_right, (uint32_t)op->pad_bottom,
                (uint32_t)op->pad_left, (uint32_t)op->kh, (uint32_t)op->kw,
                (uint32_t)op->stride_h, (uint32_t)op->stride_w, ch, ch, ch,
                (uint8_t)x->zero_point, x->scale, (uint8_t)y->zero_point, y->scale, qlo, qhi, 0,
                &s->op);
        else
            xs = xnn_create_average_pooling2d_nhwc_f32(
                (uint32_t)op->pad_top, (uint32_t)op->pad_right, (uint32_t)op->pad_bottom,
                (uint32_t)op->pad_left, (uint32_t)op->kh, (uint32_t)op->kw,
                (uint32_t)op->stride_h, (uint32_t)op->stride_w, ch, ch, ch, lo, hi, 0, &s->op);
    }
    return xs == xnn_status_success ? IMGSIM_OK : xnn_fail(err, op, xs);
}

/* Elements of t if, aligned to y's rank, it is y's trailing dimensions under leading 1s (so
 * it repeats along y's flat array), else 0. */
static size_t repeat_len(const ir_tensor *t, const ir_tensor *y)
{
    size_t n = (size_t)ir_numel(t);
    int lead = 1;
    for (int i = 0; i < y->rank; i++) {
        int k = i - (y->rank - t->rank);
        int64_t d = k >= 0 ? t->shape[k] : 1;
        if (lead && d == 1 && y->shape[i] != 1)
            continue;
        lead = 0;
        if (d != y->shape[i])
            return 0;
    }
    return n;
}

static imgsim_status build_binary(const exec_ctx *c, const ir_op *op, step *s, imgsim_error *err)
{
    const ir_graph *g = c->p->g;
    const ir_tensor *a = &g->t[op->in[0]], *b = &g->t[op->in[1]], *y = &g->t[op->out];
    enum xnn_status xs;
    if (c->p->quant) {
        uint8_t lo, hi;
        op_range_q(c->p, op, y, &lo, &hi);
        size_t ny = (size_t)ir_numel(y), la = repeat_len(a, y), lb = repeat_len(b, y);
        /* ONNX Runtime's QLinearAdd: an activation as long as the output plus b repeating
         * (or as long); a single a becomes the "b" of the swapped operation, since
         * fma(b, rb, fixed + a * ra) is ONNX Runtime's own order then. Else XNNPACK. */
        int mode = la == ny && !a->data && lb ? 1 : lb == ny && !b->data && la == 1 ? 2 : 0;
        if (c->p->ort_arith && op->kind == IR_ADD && mode) {
            s->own_add = mode;
            qadd_init(&s->add, a->scale, a->zero_point, b->scale, b->zero_point, y->scale,
                      y->zero_point, lo, hi);
            if (mode == 2) { /* b is the long one */
                float r = s->add.ra;
                s->add.ra = s->add.rb;
                s->add.rb = r;
            }
            for (int i = 0; i < 2; i++) {
                const ir_tensor *t = i ? b : a;
                if (!t->data)
                    continue;
                if (!(s->consts[i] = calloc(1, t->nbytes + PAD_BYTES)))
                    return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
                memcpy(s->consts[i], t->data, t->nbytes);
            }
            return IMGSIM_OK;
        }
        uint8_t za = (uint8_t)a->zero_point, zb = (uint8_t)b->zero_point, zy = (uint8_t)y->zero_point;
        if (op->kind == IR_ADD)
            xs = xnn_create_add_nd_qu8(za, a->scale, zb, b->scale, zy, y->scale, lo, hi, 0, &s->op);
        else if (op->kind == IR_SUB)
            xs = xnn_create_subtract_nd_qu8(za, a->scale, zb, b->scale, zy, y->scale, lo, hi, 0,
                                            &s->op);
        else
            xs = xnn_create_multiply_nd_qu8(za, a->scale, zb, b->scale, zy, y->scale, lo, hi, 0,
                                            &s->op);
        /* constant operands (an ONNX QLinearAdd's bias): a padded copy, since XNNPACK's
         * kernels may read a vector past the end */
        for (int i = 0; i < 2 && xs == xnn_status_success; i++) {
            const ir_tensor *t = i ? b : a;
            if (!t->data)
                continue;
            if (!(s->consts[i] = calloc(1, t->nbytes + PAD_BYTES)))
                return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
            memcpy(s->consts[i], t->data, t->nbytes);
        }
    } else {
        float lo, hi;
        op_range_f(c->p, op, y, &lo, &hi);
        if (op->kind == IR_ADD)
            xs = xnn_create_add_nd_f32(lo, hi, 0, &s->op);
        else if (op->kind == IR_SUB)
            xs = xnn_create_subtract_nd_f32(lo, hi, 0, &s->op);
        else
            xs = xnn_create_multiply_nd_f32(lo, hi, 0, &s->op);
        /* constant operands are passed at setup: keep float copies for the context's life */
        for (int i = 0; i < 2 && xs == xnn_status_success; i++) {
            const ir_tensor *t = i ? b : a;
            if (t->data && !(s->consts[i] = const_to_f32(t, 1)))
                return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
        }
    }
    return xs == xnn_status_success ? IMGSIM_OK : xnn_fail(err, op, xs);
}

/* Element-wise function of a node on real values (the quant tables' source). */
static float unary_f(const ir_op *op, float r)
{
    switch (op->kind) {
    case IR_LEAKY_RELU: return r < 0.0f ? op->alpha * r : r;
    case IR_HARD_SIGMOID: return fmaxf(0.0f, fminf(1.0f, op->alpha * r + op->beta));
    case IR_CLAMP: return fminf(fmaxf(r, op->lo), op->hi);
    case IR_HARD_SWISH: return r * fminf(fmaxf(r + 3.0f, 0.0f), 6.0f) / 6.0f;
    case IR_RELU: return fmaxf(r, 0.0f);
    case IR_RELU6: return fminf(fmaxf(r, 0.0f), 6.0f);
    default: return r;
    }
}

/* Quantized element-wise node as a table: dequantize each byte, apply the function,
 * quantize (round half to even, as ONNX QuantizeLinear) with the fused activation's range. */
static imgsim_status build_lut(const exec_ctx *c, const ir_op *op, step *s, imgsim_error *err)
{
    const ir_tensor *x = &c->p->g->t[op->in[0]], *y = &c->p->g->t[op->out];
    uint8_t lo, hi;
    op_range_q(c->p, op, y, &lo, &hi);
    if (!(s->lut = malloc(256)))
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    for (int v = 0; v < 256; v++) {
        float r = unary_f(op, ((float)v - (float)x->zero_point) * x->scale);
        float q = nearbyintf(r / y->scale) + (float)y->zero_point;
        q = q < (float)lo ? (float)lo : q > (float)hi ? (float)hi : q;
        s->lut[v] = (uint8_t)q; /* NaN cannot occur: finite inputs, parameters checked */
    }
    return IMGSIM_OK;
}

static imgsim_status build_unary(const exec_ctx *c, const ir_op *op, step *s, imgsim_error *err)
{
    const ir_graph *g = c->p->g;
    const ir_tensor *x = &g->t[op->in[0]], *y = &g->t[op->out];
    size_t ch = x->rank > 0 ? (size_t)x->shape[x->rank - 1] : 1;
    enum xnn_status xs = xnn_status_unsupported_parameter;
    int q = c->p->quant;
    if (q && (op->kind == IR_LEAKY_RELU || op->kind == IR_HARD_SIGMOID ||
              op->kind == IR_CLAMP || op->kind == IR_HARD_SWISH ||
              ((op->kind == IR_RELU || op->kind == IR_RELU6) &&
               (x->scale != y->scale || x->zero_point != y->zero_point))))
        return build_lut(c, op, s, err);
    switch (op->kind) {
    case IR_SOFTMAX:
        if (op->beta != 1.0f)
            return imgsim_fail(err, IMGSIM_E_UNSUPPORTED, "node '%s': softmax beta %g", op->name,
                               (double)op->beta);
        xs = q ? xnn_create_softmax_nc_qu8(ch, ch, ch, x->scale, (uint8_t)y->zero_point, y->scale,
                                           0, &s->op)
               : xnn_create_softmax_nc_f32(ch, ch, ch, 0, &s->op);
        break;
    case IR_HARD_SWISH:
        xs = xnn_create_hardswish_nc_f32(ch, ch, ch, 0, &s->op);
        break;
    case IR_LOGISTIC:
        xs = q ? xnn_create_sigmoid_nc_qu8(ch, ch, ch, (uint8_t)x->zero_point, x->scale,
                                           (uint8_t)y->zero_point, y->scale, 0, 255, 0, &s->op)
               : xnn_create_sigmoid_nc_f32(ch, ch, ch, 0, &s->op);
        break;
    case IR_RELU:
    case IR_RELU6: {
        ir_act act = op->kind == IR_RELU ? IR_ACT_RELU : IR_ACT_RELU6;
        if (q) { /* same quantization in and out (else a table, above) */
            uint8_t lo, hi;
            act_range_q(y, act, &lo, &hi);
            xs = xnn_create_clamp_nc_u8(ch, ch, ch, lo, hi, 0, &s->op);
        } else {
            float lo, hi;
            act_range_f(y, act, &lo, &hi);
            xs = xnn_create_clamp_nc_f32(ch, ch, ch, lo, hi, 0, &s->op);
        }
        break;
    }
    case IR_CLAMP: { /* fp32 (quant plans use a table) */
        float lo, hi;
        op_range_f(c->p, op, y, &lo, &hi);
        lo = fmaxf(lo, op->lo);
        hi = fminf(hi, op->hi);
        if (!(lo < hi)) /* XNNPACK wants a proper range; a constant output is a by-hand loop */
            return IMGSIM_OK;
        xs = xnn_create_clamp_nc_f32(ch, ch, ch, lo, hi, 0, &s->op);
        break;
    }
    case IR_LEAKY_RELU:
        xs = xnn_create_leaky_relu_nc_f32(ch, ch, ch, op->alpha, 0, &s->op);
        break;
    default:
        return IMGSIM_OK; /* handled by hand in run_by_hand */
    }
    return xs == xnn_status_success ? IMGSIM_OK : xnn_fail(err, op, xs);
}

void exec_ctx_free(exec_ctx *c)
{
    if (!c)
        return;
    if (c->sub) { /* first: they borrow this context's kernels */
        for (int i = 0; i < c->nsub; i++)
            exec_ctx_free(c->sub[i]);
        pthread_mutex_destroy(&c->sub_lock);
    }
    if (c->steps)
        for (int i = 0; i < c->p->g->nops; i++) {
            if (c->steps[i].op)
                xnn_delete_operator(c->steps[i].op);
            if (!c->steps[i].borrowed) {
                qconv_free(c->steps[i].qc);
                qdwconv_free(c->steps[i].qdw);
                fconv_free(c->steps[i].fc);
            }
            free(c->steps[i].consts[0]);
            free(c->steps[i].consts[1]);
            free(c->steps[i].lut);
        }
    free(c->steps);
    free(c->arena);
    if (c->pool)
        pthreadpool_destroy(c->pool);
    free(c->sub);
    free(c->sub_busy);
    free(c);
}

/* Batches run one image per thread on fp32 plans only when every thread streaming all the
 * weights is cheap; larger models (ResNet-50, VGG16) are faster layer by layer, each layer's
 * weights read once for the whole batch. */
#define IMAGE_PARALLEL_F32_BYTES ((size_t)48 << 20)

static imgsim_status ctx_new(const exec_plan *p, int threads, int max_batch,
                             const exec_ctx *share, exec_ctx **out, imgsim_error *err);

imgsim_status exec_ctx_new(const exec_plan *p, int threads, int max_batch, exec_ctx **out,
                           imgsim_error *err)
{
    return ctx_new(p, threads, max_batch, NULL, out, err);
}

/* A context; `share`: a parent whose own-kernel steps (packed weights, read-only) this
 * single-image sub-context uses too. */
static imgsim_status ctx_new(const exec_plan *p, int threads, int max_batch,
                             const exec_ctx *share, exec_ctx **out, imgsim_error *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > 4096)
        return imgsim_fail(err, IMGSIM_E_ARG, "batch size %d out of range", max_batch);
    exec_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
    c->p = p;
    c->max_batch = max_batch;
    c->steps = calloc((size_t)p->g->nops, sizeof *c->steps);
    c->arena = aligned_alloc(ALIGN, p->arena_bytes * (size_t)max_batch + ALIGN);
    c->pool = threads > 1 ? pthreadpool_create((size_t)threads) : NULL;
    if (!c->steps || !c->arena || (threads > 1 && !c->pool)) {
        exec_ctx_free(c);
        return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory (%zu-byte activation arena)",
                           p->arena_bytes * (size_t)max_batch);
    }
    for (int i = 0; i < p->g->nops; i++) {
        const ir_op *op = &p->g->ops[i];
        imgsim_status st = IMGSIM_OK;
        if (step_alias(p, i))
            continue;
        if (share && (share->steps[i].qc || share->steps[i].qdw || share->steps[i].fc)) {
            c->steps[i].qc = share->steps[i].qc;
            c->steps[i].qdw = share->steps[i].qdw;
            c->steps[i].fc = share->steps[i].fc;
            c->steps[i].borrowed = 1;
            continue;
        }
        switch (op->kind) {
        case IR_CONV2D: case IR_DWCONV2D: st = build_conv(c, op, &c->steps[i], err); break;
        case IR_FULLY_CONNECTED: st = build_fc(c, op, &c->steps[i], err); break;
        case IR_AVG_POOL: case IR_MAX_POOL: case IR_MEAN:
            st = build_pool(c, op, &c->steps[i], err);
            break;
        case IR_ADD: case IR_SUB: case IR_MUL: st = build_binary(c, op, &c->steps[i], err); break;
        default: st = build_unary(c, op, &c->steps[i], err); break;
        }
        if (st != IMGSIM_OK) {
            exec_ctx_free(c);
            return st;
        }
    }
    /* Sub-contexts: one per thread for image-parallel batches; else one, so that single
     * images (and batches) can fall back to one thread when another process holds a core */
    c->image_parallel = (p->quant || p->weight_bytes <= IMAGE_PARALLEL_F32_BYTES) &&
                        max_batch > 1;
    if (threads > 1 && !share) {
        c->sub = calloc((size_t)threads, sizeof *c->sub);
        c->sub_busy = calloc((size_t)threads, sizeof *c->sub_busy);
        if (!c->sub || !c->sub_busy || pthread_mutex_init(&c->sub_lock, NULL) != 0) {
            free(c->sub);
            c->sub = NULL;
            exec_ctx_free(c);
            return imgsim_fail(err, IMGSIM_E_NOMEM, "out of memory");
        }
        for (int i = 0; i < (c->image_parallel ? threads : 1); i++) { /* sharing weights */
            imgsim_status st = ctx_new(p, 1, 1, c, &c->sub[i], err);
            if (st != IMGSIM_OK) {
                exec_ctx_free(c);
                return st;
            }
            c->nsub = i + 1;
        }
    }
    *out = c;
    return IMGSIM_OK;
}

/* ---------------------------------------------------------------- running */

static void *tensor_ptr(const exec_ctx *c, int t)
{
    int r = c->p->root[t];
    return c->arena + c->p->offset[r] * (size_t)c->max_batch;
}

/* Shape of a binary operand for XNNPACK's nd operators: numpy-aligned to the output's rank
 * (leading 1s), under an outer batch dimension — `batch` for activations (images lie one
 * after another in the arena), 1 for constants, which XNNPACK broadcasts over it. */
static size_t nd_shape(const ir_tensor *t, int out_rank, int batch, size_t *shape)
{
    shape[0] = t->data ? 1 : (size_t)batch;
    for (int i = 0; i < out_rank; i++) {
        int k = i - (out_rank - t->rank);
        shape[1 + i] = k >= 0 ? (size_t)t->shape[k] : 1;
    }
    return (size_t)out_rank + 1;
}

static enum xnn_status setup_step(exec_ctx *c, int i, int n)
{
    const ir_graph *g = c->p->g;
    const ir_op *op = &g->ops[i];
    step *s = &c->steps[i];
    if (!s->op)
        return xnn_status_success;
    const ir_tensor *x = &g->t[op->in[0]];
    void *in = tensor_ptr(c, op->in[0]), *out = tensor_ptr(c, op->out);
    size_t rows = (size_t)n * (size_t)(x->rank > 0 ? ir_numel(x) / x->shape[x->rank - 1] : 1);
    int q = c->p->quant;
    pthreadpool_t pool = c->pool;
    switch (op->kind) {
    case IR_CONV2D:
    case IR_DWCONV2D:
        return q ? xnn_setup_convolution2d_nhwc_qu8(s->op, (size_t)n, (size_t)x->shape[1],
                                                    (size_t)x->shape[2], in, out, pool)
                 : xnn_setup_convolution2d_nhwc_f32(s->op, (size_t)n, (size_t)x->shape[1],
                                                    (size_t)x->shape[2], in, out, pool);
    case IR_FULLY_CONNECTED: {
        size_t k = (size_t)g->t[op->in[1]].shape[1];
        size_t b = (size_t)n * (size_t)ir_numel(x) / k;
        return q ? xnn_setup_fully_connected_nc_qu8(s->op, b, in, out, pool)
                 : xnn_setup_fully_connected_nc_f32(s->op, b, in, out, pool);
    }
    case IR_AVG_POOL:
    case IR_MAX_POOL:
    case IR_MEAN:
        if (op->kind != IR_MAX_POOL && is_global_pool(g, op)) {
            size_t w = (size_t)(x->shape[1] * x->shape[2]);
            return q ? xnn_setup_global_average_pooling_nwc_qu8(s->op, (size_t)n, w, in, out, pool)
                     : xnn_setup_global_average_pooling_nwc_f32(s->op, (size_t)n, w, in, out, pool);
        }
        if (op->kind == IR_MAX_POOL)
            return q ? xnn_setup_max_pooling2d_nhwc_u8(s->op, (size_t)n, (size_t)x->shape[1],
                                                       (size_t)x->shape[2], in, out, pool)
                     : xnn_setup_max_pooling2d_nhwc_f32(s->op, (size_t)n, (size_t)x->shape[1],
                                                        (size_t)x->shape[2], in, out, pool);
        return q ? xnn_setup_average_pooling2d_nhwc_qu8(s->op, (size_t)n, (size_t)x->shape[1],
                                                        (size_t)x->shape[2], in, out, pool)
                 : xnn_setup_average_pooling2d_nhwc_f32(s->op, (size_t)n, (size_t)x->shape[1],
                                                        (size_t)x->shape[2], in, out, pool);
    case IR_ADD:
    case IR_SUB:
    case IR_MUL: {
        const ir_tensor *a = x, *b = &g->t[op->in[1]];
        size_t sa[IR_MAX_RANK + 1], sb[IR_MAX_RANK + 1];
        int yr = g->t[op->out].rank;
        size_t ra = nd_shape(a, yr, n, sa), rb = nd_shape(b, yr, n, sb);
        const void *pa = a->data ? s->consts[0] : in;
        const void *pb = b->data ? s->consts[1] : tensor_ptr(c, op->in[1]);
        if (q) {
            if (op->kind == IR_ADD)
                return xnn_setup_add_nd_qu8(s->op, ra, sa, rb, sb, pa, pb, out, pool);
            if (op->kind == IR_SUB)
                return xnn_setup_subtract_nd_qu8(s->op, ra, sa, rb, sb, pa, pb, out, pool);
            return xnn_setup_multiply_nd_qu8(s->op, ra, sa, rb, sb, pa, pb, out, pool);
        }
        if (op->kind == IR_ADD)
            return xnn_setup_add_nd_f32(s->op, ra, sa, rb, sb, pa, pb, out, pool);
        if (op->kind == IR_SUB)
            return xnn_setup_subtract_nd_f32(s->op, ra, sa, rb, sb, pa, pb, out, pool);
        return xnn_setup_multiply_nd_f32(s->op, ra, sa, rb, sb, pa, pb, out, pool);
    }
    case IR_SOFTMAX:
        return q ? xnn_setup_softmax_nc_qu8(s->op, rows, in, out, pool)
                 : xnn_setup_softmax_nc_f32(s->op, rows, in, out, pool);
    case IR_HARD_SWISH:
        return xnn_setup_hardswish_nc_f32(s->op, rows, in, out, pool);
    case IR_LOGISTIC:
        return q ? xnn_setup_sigmoid_nc_qu8(s->op, rows, in, out, pool)
                 : xnn_setup_sigmoid_nc_f32(s->op, rows, in, out, pool);
    case IR_RELU:
    case IR_RELU6:
        return q ? xnn_setup_clamp_nc_u8(s->op, rows, in, out, pool)
                 : xnn_setup_clamp_nc_f32(s->op, rows, in, out, pool);
    case IR_CLAMP:
        return xnn_setup_clamp_nc_f32(s->op, rows, in, out, pool);
    case IR_LEAKY_RELU:
        return xnn_setup_leaky_relu_nc_f32(s->op, rows, in, out, pool);
    default:
        return xnn_status_invalid_parameter;
    }
}

/* Nodes XNNPACK has no operator for: requantize, dequantize (quant plans), concat, the
 * quant tables, and (fp32) HardSigmoid and degenerate clamps. */
static void run_by_hand(exec_ctx *c, const ir_op *op, const step *s, int n)
{
    const ir_graph *g = c->p->g;
    const ir_tensor *x = &g->t[op->in[0]], *y = &g->t[op->out];
    if (s->lut) {
        const uint8_t *in = tensor_ptr(c, op->in[0]);
        uint8_t *out = tensor_ptr(c, op->out);
        size_t cnt = (size_t)n * (size_t)ir_numel(y);
        for (size_t k = 0; k < cnt; k++)
            out[k] = s->lut[in[k]];
        return;
    }
    if (!c->p->quant && (op->kind == IR_HARD_SIGMOID || op->kind == IR_CLAMP)) {
        const float *in = tensor_ptr(c, op->in[0]);
        float *out = tensor_ptr(c, op->out);
        size_t cnt = (size_t)n * (size_t)ir_numel(y);
        float lo, hi;
        op_range_f(c->p, op, y, &lo, &hi);
        if (op->kind == IR_CLAMP) {
            lo = fmaxf(lo, op->lo);
            hi = fminf(hi, op->hi);
            for (size_t k = 0; k < cnt; k++)
                out[k] = fminf(fmaxf(in[k], lo), hi);
            return;
        }
        lo = fmaxf(lo, 0.0f);
        hi = fminf(hi, 1.0f);
        float a = op->alpha, b = op->beta;
        for (size_t k = 0; k < cnt; k++) {
            float v = a * in[k] + b;
            v = v < lo ? lo : v;
            out[k] = v > hi ? hi : v;
        }
        return;
    }
    if (op->kind == IR_QUANTIZE || op->kind == IR_DEQUANTIZE) {
        /* quant plans keep uint8 everywhere: a requantization between two scales */
        const uint8_t *in = tensor_ptr(c, op->in[0]);
        uint8_t *out = tensor_ptr(c, op->out);
        size_t cnt = (size_t)n * (size_t)ir_numel(y);
        for (size_t k = 0; k < cnt; k++)
            out[k] = qclamp(y, ((float)in[k] - (float)x->zero_point) * x->scale);
        return;
    }
    if (op->kind == IR_CONCAT) {
        size_t es = elem_size(c->p), outer = (size_t)n, inner_out = 1;
        for (int d = 1; d < op->axis; d++)
            outer *= (size_t)y->shape[d];
        for (int d = op->axis; d < y->rank; d++)
            inner_out *= (size_t)y->shape[d];
        if (op->axis == 0) {
            outer = 1;
            inner_out *= (size_t)n;
        }
        uint8_t *out = tensor_ptr(c, op->out);
        size_t at = 0;
        for (int i = 0; i < op->nin; i++) {
            const ir_tensor *t = &g->t[op->in[i]];
            size_t inner = 1;
            for (int d = op->axis; d < t->rank; d++)
                inner *= (size_t)t->shape[d];
            if (op->axis == 0)
                inner *= (size_t)n;
            const uint8_t *in = t->data ? t->data : (const uint8_t *)tensor_ptr(c, op->in[i]);
            for (size_t o = 0; o < outer; o++)
                memcpy(out + (o * inner_out + at) * es, in + o * inner * es, inner * es);
            at += inner;
        }
    }
}

static void nothing(void *ctx, size_t i)
{
    (void)ctx;
    (void)i;
}

typedef struct image_job {
    exec_ctx *c;
    const uint8_t *const *rgb;
    const float *mean, *std;
} image_job;

/* The tensors exec_read may be asked for after a run. */
static void copy_results(exec_ctx *to, const exec_ctx *from, int i)
{
    const exec_plan *p = to->p;
    int ts[3] = {p->emb, p->out, p->emb_pool_in};
    for (int k = 0; k < 3; k++) {
        if (ts[k] < 0)
            continue;
        size_t bytes = (size_t)ir_numel(&p->g->t[ts[k]]) * elem_size(p);
        memcpy((uint8_t *)tensor_ptr(to, ts[k]) + (size_t)i * bytes, tensor_ptr(from, ts[k]), bytes);
    }
}

/* One image on a free single-threaded sub-context (at most nsub run at once: one per
 * pool thread). */
static void run_image(void *ctx, size_t i)
{
    image_job *j = ctx;
    exec_ctx *c = j->c;
    int k = 0;
    for (;; k = (k + 1) % c->nsub) {
        int idle = 0;
        if (atomic_compare_exchange_strong(&c->sub_busy[k], &idle, 1))
            break;
    }
    imgsim_error e = {0};
    if (exec_run(c->sub[k], &j->rgb[i], 1, j->mean, j->std, &e) == IMGSIM_OK) {
        copy_results(c, c->sub[k], (int)i);
    } else if (!atomic_exchange(&c->sub_failed, 1)) {
        pthread_mutex_lock(&c->sub_lock);
        c->sub_err = e;
        pthread_mutex_unlock(&c->sub_lock);
    }
    atomic_store(&c->sub_busy[k], 0);
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static imgsim_status run_layers(exec_ctx *c, const uint8_t *const *rgb, int n,
                                const float mean[3], const float std[3], imgsim_error *err);

imgsim_status exec_run(exec_ctx *c, const uint8_t *const *rgb, int n, const float mean[3],
                       const float std[3], imgsim_error *err)
{
    if (n < 1 || n > c->max_batch)
        return imgsim_fail(err, IMGSIM_E_ARG, "batch of %d images; context holds %d", n,
                           c->max_batch);
    if (n > 1 && c->nsub && c->image_parallel) {
        image_job j = {c, rgb, mean, std};
        atomic_store(&c->sub_failed, 0);
        pthreadpool_parallelize_1d(c->pool, run_image, &j, (size_t)n, 0);
        pthreadpool_parallelize_1d(c->pool, nothing, NULL, 1, PTHREADPOOL_FLAG_YIELD_WORKERS);
        if (atomic_load(&c->sub_failed)) {
            if (err)
                *err = c->sub_err;
            return c->sub_err.code ? c->sub_err.code : IMGSIM_E_INTERNAL;
        }
        return IMGSIM_OK;
    }
    if (c->nsub) {
        /* Layer by layer on the pool (one image, or a batch of a large fp32 model). But when
         * another process holds a core, every operator waits for a descheduled worker
         * (pthreadpool joins all threads after each operator) and a run can take 20-50x
         * longer; then one thread alone, image after image, is faster. Both are timed per
         * image (after a warm-up run each) and the faster used; the other is re-timed every
         * ONE_PROBE runs. */
        double *t = n == 1 ? c->one_time : c->many_time;
        unsigned *runs = n == 1 ? &c->one_runs : &c->many_runs;
        double *next = n == 1 ? &c->one_probe : &c->many_probe;
        unsigned k = (*runs)++;
        if (*runs == 0)
            *runs = 4; /* wrapped: stay past the warm-up */
        double t0 = seconds();
        /* re-time the slower mode every ONE_PROBE runs, and at least every second or so
         * (large models run few images per second; the probe costs at most ~5%) */
        int late = k >= 4 && t0 >= *next;
        int probe = k < 4 || k % ONE_PROBE == 0 || late;
        int serial = k < 4 ? (int)(k & 1) : (t[1] < t[0]) != (k % ONE_PROBE == 0 || late);
        imgsim_status st = IMGSIM_OK;
        if (serial) {
            for (int i = 0; i < n && st == IMGSIM_OK; i++) {
                st = exec_run(c->sub[0], &rgb[i], 1, mean, std, err);
                if (st == IMGSIM_OK)
                    copy_results(c, c->sub[0], i);
            }
        } else {
            st = run_layers(c, rgb, n, mean, std, err);
        }
        if (st != IMGSIM_OK)
            return st;
        double dt = (seconds() - t0) / n;
        if (k >= 2)
            t[serial] = probe ? dt : 0.75 * t[serial] + 0.25 * dt;
        if (probe && k >= 3) { /* the slower mode's cost per probe: ~5% of the time between */
            double slow = (t[0] > t[1] ? t[0] : t[1]) * n;
            *next = seconds() + (slow * 20 > 1.0 ? slow * 20 : 1.0);
        }
        return IMGSIM_OK;
    }
    return run_layers(c, rgb, n, mean, std, err);
}

/* Add on qadd_run: operand "a" full, "b" repeating (own_add 2: the operands swapped). */
static void run_add(exec_ctx *c, const ir_op *op, const step *s, int n)
{
    const ir_graph *g = c->p->g;
    int ia = s->own_add == 1 ? 0 : 1, ib = 1 - ia;
    const ir_tensor *a = &g->t[op->in[ia]], *b = &g->t[op->in[ib]];
    size_t ny = (size_t)ir_numel(&g->t[op->out]), lb = (size_t)ir_numel(b);
    const uint8_t *pa = a->data ? s->consts[ia] : tensor_ptr(c, op->in[ia]);
    const uint8_t *pb = b->data ? s->consts[ib] : tensor_ptr(c, op->in[ib]);
    uint8_t *out = tensor_ptr(c, op->out); /* "a" is an activation (build_binary) */
    if (b->data || lb == ny) { /* b the same for every image, or as long as a */
        qadd_run(&s->add, pa, pb, b->data ? lb : lb * (size_t)n, ny * (size_t)n, out, c->pool);
        return;
    }
    for (int i = 0; i < n; i++) /* an activation repeating within each image */
        qadd_run(&s->add, pa + (size_t)i * ny, pb + (size_t)i * lb, lb, ny,
                 out + (size_t)i * ny, c->pool);
}

/* Input byte for each raw channel value v of a float-fed quantized input:
 * q = round_half_even(((v - mean) / std) / scale) + zero_point, clamped to 0..255 (ONNX
 * QuantizeLinear of the normalised image). */
static void input_tables(const ir_tensor *in, const float mean[3], const float std[3],
                         uint8_t lut[3][256])
{
    for (int k = 0; k < 3; k++)
        for (int v = 0; v < 256; v++) {
            float f = ((float)v - mean[k]) / std[k];
            float q = nearbyintf(f / in->scale) + (float)in->zero_point;
            lut[k][v] = (uint8_t)(q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q);
        }
}

/* The whole batch operator by operator, each operator spread over the pool. */
static imgsim_status run_layers(exec_ctx *c, const uint8_t *const *rgb, int n,
                                const float mean[3], const float std[3], imgsim_error *err)
{
    const exec_plan *p = c->p;
    const ir_graph *g = p->g;
    const ir_tensor *in = &g->t[g->input];
    size_t px = (size_t)(in->shape[1] * in->shape[2]);
    if (p->quant && g->input_from_float) {
        /* normalised floats quantized with the input's scale: one table per channel */
        if (!c->lut_ready || memcmp(c->lut_mean, mean, sizeof c->lut_mean) != 0 ||
            memcmp(c->lut_std, std, sizeof c->lut_std) != 0) {
            input_tables(in, mean, std, c->in_lut);
            memcpy(c->lut_mean, mean, sizeof c->lut_mean);
            memcpy(c->lut_std, std, sizeof c->lut_std);
            c->lut_ready = 1;
        }
        uint8_t *dst = tensor_ptr(c, g->input);
        for (int i = 0; i < n; i++) {
            uint8_t *d = dst + (size_t)i * px * 3;
            const uint8_t *src = rgb[i];
            for (size_t k = 0; k < px; k++) {
                d[3 * k] = c->in_lut[0][src[3 * k]];
                d[3 * k + 1] = c->in_lut[1][src[3 * k + 1]];
                d[3 * k + 2] = c->in_lut[2][src[3 * k + 2]];
            }
        }
    } else if (p->quant) {
        uint8_t *dst = tensor_ptr(c, g->input);
        for (int i = 0; i < n; i++)
            memcpy(dst + (size_t)i * px * 3, rgb[i], px * 3);
    } else {
        float *dst = tensor_ptr(c, g->input);
        float m[3], inv[3];
        /* TFLite uint8 models take raw pixels: their input quantization is the
         * normalisation. Float-fed inputs (ONNX QuantizeLinear) use mean/std, as float
         * models do; the input quantization is not emulated. */
        int raw = in->dtype == IR_U8 && !g->input_from_float;
        for (int k = 0; k < 3; k++) {
            m[k] = raw ? (float)in->zero_point : mean[k];
            inv[k] = raw ? in->scale : 1.0f / std[k];
        }
        for (int i = 0; i < n; i++)
            for (size_t k = 0; k < px * 3; k++)
                dst[(size_t)i * px * 3 + k] = ((float)rgb[i][k] - m[k % 3]) * inv[k % 3];
    }
    if (c->setup_batch != n) {
        for (int i = 0; i < g->nops; i++) {
            enum xnn_status xs = setup_step(c, i, n);
            if (xs != xnn_status_success) {
                c->setup_batch = 0;
                return xnn_fail(err, &g->ops[i], xs);
            }
        }
        c->setup_batch = n;
    }
    for (int i = 0; i < g->nops; i++) {
        const ir_op *op = &g->ops[i];
        const ir_tensor *x = &g->t[op->in[0]], *y = &g->t[op->out];
        if (c->steps[i].own_add) {
            run_add(c, op, &c->steps[i], n);
        } else if (c->steps[i].own_gap) {
            const ir_tensor *yq = &g->t[op->out];
            uint8_t lo, hi;
            op_range_q(c->p, op, yq, &lo, &hi);
            qgap_run(tensor_ptr(c, op->in[0]), (size_t)n, (size_t)(x->shape[1] * x->shape[2]),
                     (size_t)x->shape[3], x->scale, x->zero_point, yq->scale, yq->zero_point, lo,
                     hi, tensor_ptr(c, op->out));
        } else if (c->steps[i].fc) {
            int fcl = op->kind == IR_FULLY_CONNECTED;
            size_t rows = fcl ? (size_t)n * (size_t)(ir_numel(x) / g->t[op->in[1]].shape[1])
                              : (size_t)n;
            fconv_run(c->steps[i].fc, rows, fcl ? 1 : (size_t)x->shape[1],
                      fcl ? 1 : (size_t)x->shape[2], fcl ? 1 : (size_t)y->shape[1],
                      fcl ? 1 : (size_t)y->shape[2], tensor_ptr(c, op->in[0]),
                      tensor_ptr(c, op->out), c->pool);
        } else if (c->steps[i].qc && op->kind == IR_FULLY_CONNECTED) {
            /* rows of k as 1x1 "images" */
            size_t rows = (size_t)n * (size_t)(ir_numel(x) / g->t[op->in[1]].shape[1]);
            qconv_run(c->steps[i].qc, rows, 1, 1, 1, 1, tensor_ptr(c, op->in[0]),
                      tensor_ptr(c, op->out), c->pool);
        } else if (c->steps[i].qc) {
            qconv_run(c->steps[i].qc, (size_t)n, (size_t)x->shape[1], (size_t)x->shape[2],
                      (size_t)y->shape[1], (size_t)y->shape[2], tensor_ptr(c, op->in[0]),
                      tensor_ptr(c, op->out), c->pool);
        } else if (c->steps[i].qdw) {
            qdwconv_run(c->steps[i].qdw, (size_t)n, (size_t)x->shape[1], (size_t)x->shape[2],
                        (size_t)y->shape[1], (size_t)y->shape[2], tensor_ptr(c, op->in[0]),
                        tensor_ptr(c, op->out), c->pool);
        } else if (c->steps[i].op) {
            enum xnn_status xs = xnn_run_operator(c->steps[i].op, c->pool);
            if (xs != xnn_status_success)
                return xnn_fail(err, op, xs);
        } else if (!step_alias(p, i)) {
            run_by_hand(c, op, &c->steps[i], n);
        }
        if (p->swish[i] && !c->steps[i].fc) /* a folded Sigmoid + Mul, in place */
            fswish_run(tensor_ptr(c, op->out), tensor_ptr(c, op->out),
                       (size_t)n * (size_t)ir_numel(y), c->pool);
    }
    /* Workers spin between operators; once the batch is done let them sleep, so decode
     * threads sharing the cores get them back. */
    if (c->pool)
        pthreadpool_parallelize_1d(c->pool, nothing, NULL, 1, PTHREADPOOL_FLAG_YIELD_WORKERS);
    return IMGSIM_OK;
}

void exec_read(const exec_ctx *c, int t, int i, float *out)
{
    /* quant plans: the bytes' quantization is the buffer owner's (a float dequantize output
     * aliases its input; reshapes share their input's parameters) */
    const ir_tensor *x = &c->p->g->t[c->p->quant ? c->p->root[t] : t];
    size_t cnt = (size_t)ir_numel(&c->p->g->t[t]);
    if (t == c->p->emb && c->p->emb_pool_in >= 0) {
        const ir_tensor *f = &c->p->g->t[c->p->emb_pool_in];
        size_t hw = (size_t)(f->shape[1] * f->shape[2]);
        for (size_t k = 0; k < cnt; k++)
            out[k] = 0.0f;
        const uint8_t *q = (const uint8_t *)tensor_ptr(c, c->p->emb_pool_in) + (size_t)i * hw * cnt;
        for (size_t px = 0; px < hw; px++)
            for (size_t k = 0; k < cnt; k++)
                out[k] += (float)q[px * cnt + k];
        for (size_t k = 0; k < cnt; k++)
            out[k] = (out[k] / (float)hw - (float)f->zero_point) * f->scale;
        return;
    }
    if (c->p->quant) {
        const uint8_t *q = (const uint8_t *)tensor_ptr(c, t) + (size_t)i * cnt;
        for (size_t k = 0; k < cnt; k++)
            out[k] = ((float)q[k] - (float)x->zero_point) * x->scale;
    } else {
        memcpy(out, (const float *)tensor_ptr(c, t) + (size_t)i * cnt, cnt * sizeof(float));
    }
}

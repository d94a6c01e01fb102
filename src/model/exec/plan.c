/*
 * plan.c — making an exec_plan (exec.h), in named steps: check the input, choose the
 * precision (can every node run quantized?), count the weights and choose ONNX Runtime's
 * arithmetic, fold clamps and swishes into their producers, trace each buffer's lifetime,
 * keep the results readable, and place the activations (arena.c).
 */
#include "model/exec/exec.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/exec/arena.h"
#include "model/exec/node.h"
#include "model/kernels/fconv.h"
#include "model/kernels/qconv.h"

/* ---------------------------------------------------------------- precision */

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
    ex_act_range_q(y, op->act, &lo, &hi);
    qconv_params qp;
    ex_qconv_params(g, op, lo, hi, NULL, &qp);
    for (size_t c = 0; c < qp.cout; c++) {
        float m = ex_chan_mult(g, op, c);
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
            if (ex_needs_own_kernel(x) && !own_kernel_ok(g, op))
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

/* The model input: uint8 or float, batch 1. */
static imgsim_status check_input(const ir_graph *g, imgsim_error *err)
{
    const ir_tensor *in = &g->t[g->input];
    if (in->dtype != IR_U8 && in->dtype != IR_F32)
        return error_set(err, IMGSIM_E_UNSUPPORTED, "model input type %s is not supported",
                         ir_dtype_name(in->dtype));
    if (in->shape[0] != 1)
        return error_set(err, IMGSIM_E_UNSUPPORTED, "model input batch must be 1");
    return IMGSIM_OK;
}

/* *quant = 1 when the graph runs quantized: asked for (not fp32), a quantized uint8 input and
 * every node quant_ok. IMGSIM_PRECISION_QUANT fails instead of falling back to fp32. */
static imgsim_status choose_precision(const ir_graph *g, imgsim_precision precision, int *quant,
                                      imgsim_error *err)
{
    const ir_tensor *in = &g->t[g->input];
    *quant = precision != IMGSIM_PRECISION_FP32;
    if (*quant && !(in->dtype == IR_U8 && in->quantized))
        *quant = 0;
    for (int i = 0; *quant && i < g->nops; i++)
        if (!quant_ok(g, &g->ops[i])) {
            if (precision == IMGSIM_PRECISION_QUANT) {
                const ir_op *op = &g->ops[i];
                int own = (op->kind == IR_CONV2D || op->kind == IR_DWCONV2D ||
                           op->kind == IR_FULLY_CONNECTED) &&
                          op->nin > 1 && ex_needs_own_kernel(&g->t[op->in[1]]) &&
                          !qconv_available();
                return error_set(err, IMGSIM_E_UNSUPPORTED,
                                 "node '%s' (%s) cannot run quantized%s; use fp32", op->name,
                                 ir_op_name(op->kind),
                                 own ? " (int8 per-channel weights need AVX512-VNNI)" : "");
            }
            *quant = 0;
        }
    return IMGSIM_OK;
}

/* p->weight_bytes (convolution and fully connected weights as executed) and p->ort_arith
 * (quant plans of ONNX-quantized graphs on AVX512: int8 weights or a float-fed input). */
static void count_weights(const ir_graph *g, exec_plan *p)
{
    p->weight_bytes = 0;
    for (int i = 0; i < g->nops; i++) {
        const ir_op *op = &g->ops[i];
        if (op->kind == IR_CONV2D || op->kind == IR_DWCONV2D || op->kind == IR_FULLY_CONNECTED)
            p->weight_bytes += (size_t)ir_numel(&g->t[op->in[1]]) * (p->quant ? 1 : 4);
    }
    p->ort_arith = 0;
    if (p->quant && qconv_available()) {
        p->ort_arith = g->input_from_float;
        for (int i = 0; i < g->nops; i++) {
            const ir_op *op = &g->ops[i];
            if ((op->kind == IR_CONV2D || op->kind == IR_DWCONV2D ||
                 op->kind == IR_FULLY_CONNECTED) && g->t[op->in[1]].dtype == IR_I8)
                p->ort_arith = 1;
        }
    }
}

/* ---------------------------------------------------------------- folding */

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
                g->ops[j].in[0] != x || ex_is_alias(g, &g->ops[i], 0) || p->fused[i] ||
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

/* ---------------------------------------------------------------- lifetimes */

/* p->root (aliases share their input's buffer) and, per root, the node defining it
 * (*first; -1 for the input, INT32_MAX if none) and the last node reading it (*last; -1 if
 * none). Every activation must be produced before it is read, and written once. The arrays
 * are malloc'ed (caller frees, also on failure). */
static imgsim_status trace_lifetimes(const ir_graph *g, exec_plan *p, int **first_out,
                                     int **last_out, imgsim_error *err)
{
    int nt = g->nt;
    p->root = malloc(sizeof(int) * (size_t)nt);
    int *first = *first_out = malloc(sizeof(int) * (size_t)nt);
    int *last = *last_out = malloc(sizeof(int) * (size_t)nt);
    int *made = calloc((size_t)nt, sizeof(int));
    if (!p->root || !first || !last || !made) {
        free(made);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    for (int t = 0; t < nt; t++) {
        p->root[t] = t;
        first[t] = INT32_MAX;
        last[t] = -1;
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
                st = error_set(err, IMGSIM_E_MODEL,
                               "node '%s' reads tensor '%s' before it is computed", op->name,
                               g->t[t].name);
                break;
            }
            int r = p->root[t];
            if (last[r] < i)
                last[r] = i;
        }
        if (made[op->out] && st == IMGSIM_OK)
            st = error_set(err, IMGSIM_E_MODEL, "tensor '%s' is written twice", op->name);
        made[op->out] = 1;
        if (ex_step_alias(p, i))
            p->root[op->out] = p->root[op->in[0]];
        else
            first[op->out] = i;
    }
    if (st == IMGSIM_OK && (!made[p->emb] || !made[g->output]))
        st = error_set(err, IMGSIM_E_MODEL, "output tensor is never computed");
    free(made);
    return st;
}

/* The tensors exec_read returns stay live after the run (last = INT32_MAX): the embedding,
 * the output, and for quant plans whose embedding is a global average pool, the pool's
 * input (p->emb_pool_in). */
static void keep_results(const ir_graph *g, exec_plan *p, int *last)
{
    last[p->root[p->emb]] = INT32_MAX;
    last[p->root[g->output]] = INT32_MAX;
    /* A uint8 global-pool embedding keeps only 8 bits per feature (its scale is coarse, and
     * small features round to zero). Average the pool's uint8 input in float instead. */
    p->emb_pool_in = -1;
    int pe = ir_producer(g, p->emb);
    if (p->quant && pe >= 0 &&
        (g->ops[pe].kind == IR_MEAN || g->ops[pe].kind == IR_AVG_POOL) &&
        g->ops[pe].act == IR_ACT_NONE && ex_global_pool(g, &g->ops[pe])) {
        p->emb_pool_in = g->ops[pe].in[0];
        last[p->root[p->emb_pool_in]] = INT32_MAX;
    }
}

/* ---------------------------------------------------------------- the plan */

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
    imgsim_status st = check_input(g, err);
    if (st == IMGSIM_OK)
        st = choose_precision(g, precision, &p->quant, err);
    if (st != IMGSIM_OK)
        return st;
    count_weights(g, p);
    if (fold_clamps(g, p, emb) != 0) {
        exec_plan_free(p);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    int *first = NULL, *last = NULL;
    st = trace_lifetimes(g, p, &first, &last, err);
    if (st == IMGSIM_OK) {
        keep_results(g, p, last);
        if (ex_arena_place(g, p, first, last) != 0)
            st = error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    free(first);
    free(last);
    if (st != IMGSIM_OK)
        exec_plan_free(p);
    return st;
}

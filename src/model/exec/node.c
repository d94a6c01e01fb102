/*
 * node.c — what plan making, lowering and running share about IR nodes (node.h): which
 * nodes are aliases, global pools and own-kernel convolutions, the qconv parameters of a
 * quantized convolution, and output ranges (fused activations, folded clamps) in float and
 * in uint8.
 */
#include "model/exec/node.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- kinds of nodes */

int ex_is_alias(const ir_graph *g, const ir_op *op, int quant)
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
int ex_step_alias(const exec_plan *p, int i)
{
    return ex_is_alias(p->g, &p->g->ops[i], p->quant) || (p->fused && p->fused[i]);
}

int ex_global_pool(const ir_graph *g, const ir_op *op)
{
    const ir_tensor *x = &g->t[op->in[0]];
    return op->kind == IR_MEAN ||
           (op->kh == x->shape[1] && op->kw == x->shape[2] && op->pad_top == 0 &&
            op->pad_left == 0 && op->pad_bottom == 0 && op->pad_right == 0);
}

size_t ex_elem_size(const exec_plan *p)
{
    return p->quant ? 1 : 4;
}

/* Weights that only imgsim's kernels take (XNNPACK's qu8 operators want uint8 weights with
 * one scale): int8 or per-channel. */
int ex_needs_own_kernel(const ir_tensor *w)
{
    return w->dtype == IR_I8 || w->nchannel_scales > 1;
}

/* ---------------------------------------------------------------- quantized convolutions */

/* Requantization multiplier of output channel c: x_scale * w_scale[c] / y_scale, computed
 * as ONNX Runtime does (left to right, in float). */
float ex_chan_mult(const ir_graph *g, const ir_op *op, size_t c)
{
    const ir_tensor *x = &g->t[op->in[0]], *w = &g->t[op->in[1]], *y = &g->t[op->out];
    float ws = w->nchannel_scales > 1 ? w->channel_scales[c] : w->scale;
    return x->scale * ws / y->scale;
}

/* qconv parameters of a quantized convolution, depthwise convolution or fully connected
 * node (a 1x1 convolution over rows of k). Weights and bias point into the graph; per-channel
 * multipliers go to `scales` (oc floats, caller's) when given, else only `scale` is set (to
 * channel 0's multiplier: enough for qconv_supported's shape checks). */
void ex_qconv_params(const ir_graph *g, const ir_op *op, uint8_t lo, uint8_t hi,
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
    qp->scale = ex_chan_mult(g, op, 0);
    if (scales && w->nchannel_scales > 1) {
        for (size_t c = 0; c < qp->cout; c++)
            scales[c] = ex_chan_mult(g, op, c);
        qp->scales = scales;
    }
    qp->y_zero_point = (uint8_t)y->zero_point;
    qp->y_min = lo;
    qp->y_max = hi;
}

/* ---------------------------------------------------------------- output ranges */

uint8_t ex_qclamp(const ir_tensor *t, float real)
{
    float q = roundf(real / t->scale) + (float)t->zero_point;
    return (uint8_t)(q < 0.0f ? 0 : q > 255.0f ? 255 : q);
}

void ex_act_range_q(const ir_tensor *y, ir_act act, uint8_t *lo, uint8_t *hi)
{
    *lo = 0;
    *hi = 255;
    if (act == IR_ACT_RELU || act == IR_ACT_RELU6)
        *lo = ex_qclamp(y, 0.0f);
    if (act == IR_ACT_RELU_N1_1)
        *lo = ex_qclamp(y, -1.0f);
    if (act == IR_ACT_RELU6)
        *hi = ex_qclamp(y, 6.0f);
    if (act == IR_ACT_RELU_N1_1)
        *hi = ex_qclamp(y, 1.0f);
}

/* Float output range of a node: its fused activation, intersected — for a quantized
 * tensor run in fp32 — with the range the uint8 tensor can represent, so the dequantized
 * model saturates where the quantized one does (it was trained with those ranges). */
void ex_act_range_f(const ir_tensor *y, ir_act act, float *lo, float *hi)
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
void ex_op_range_f(const exec_plan *p, const ir_op *op, const ir_tensor *y, float *lo,
                   float *hi)
{
    ex_act_range_f(y, op->act, lo, hi);
    size_t i = (size_t)(op - p->g->ops);
    *lo = fmaxf(*lo, p->fuse_lo[i]);
    *hi = fminf(*hi, p->fuse_hi[i]);
}

static uint8_t q_even(const ir_tensor *t, float real) /* quantize, round half to even */
{
    float q = nearbyintf(real / t->scale) + (float)t->zero_point;
    return (uint8_t)(q < 0.0f ? 0 : q > 255.0f ? 255 : q);
}

void ex_op_range_q(const exec_plan *p, const ir_op *op, const ir_tensor *y, uint8_t *lo,
                   uint8_t *hi)
{
    ex_act_range_q(y, op->act, lo, hi);
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

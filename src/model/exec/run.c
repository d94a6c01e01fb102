/*
 * run.c — running a context's steps operator by operator (exec.h's exec_run, via the
 * scheduler in schedule.c): the input converted for the plan, XNNPACK operators set up for
 * the batch and run, imgsim's kernels and the by-hand steps; exec_read brings results back
 * as floats.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/exec/context.h"
#include "model/exec/node.h"
#include "model/kernels/fswish.h"
#include "model/kernels/qgap.h"

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
        if (op->kind != IR_MAX_POOL && ex_global_pool(g, op)) {
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
        ex_op_range_f(c->p, op, y, &lo, &hi);
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
            out[k] = ex_qclamp(y, ((float)in[k] - (float)x->zero_point) * x->scale);
        return;
    }
    if (op->kind == IR_CONCAT) {
        size_t es = ex_elem_size(c->p), outer = (size_t)n, inner_out = 1;
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

void ex_rest_workers(pthreadpool_t pool)
{
    pthreadpool_parallelize_1d(pool, nothing, NULL, 1, PTHREADPOOL_FLAG_YIELD_WORKERS);
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
imgsim_status ex_run_layers(exec_ctx *c, const uint8_t *const *rgb, int n, const float mean[3],
                            const float std[3], imgsim_error *err)
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
                return ex_xnn_fail(err, &g->ops[i], xs);
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
            ex_op_range_q(c->p, op, yq, &lo, &hi);
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
                return ex_xnn_fail(err, op, xs);
        } else if (!ex_step_alias(p, i)) {
            run_by_hand(c, op, &c->steps[i], n);
        }
        if (p->swish[i] && !c->steps[i].fc) /* a folded Sigmoid + Mul, in place */
            fswish_run(tensor_ptr(c, op->out), tensor_ptr(c, op->out),
                       (size_t)n * (size_t)ir_numel(y), c->pool);
    }
    /* Workers spin between operators; once the batch is done let them sleep, so decode
     * threads sharing the cores get them back. */
    if (c->pool)
        ex_rest_workers(c->pool);
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

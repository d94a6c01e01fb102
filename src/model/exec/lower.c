/*
 * lower.c — building an exec_ctx (exec.h): each IR node of the plan becomes an XNNPACK
 * operator, one of imgsim's kernels (model/kernels: packed weights), a 256-byte table or a
 * by-hand step; fp32 plans dequantize weights here. Sub-contexts for the thread scheduler
 * (schedule.c) borrow the parent's kernels.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/exec/arena.h"
#include "model/exec/context.h"
#include "model/exec/node.h"

/* ---------------------------------------------------------------- constants as floats */

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
    float *f = calloc(1, sizeof(float) * n + EX_PAD_BYTES);
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

/* ---------------------------------------------------------------- one step per node */

imgsim_status ex_xnn_fail(imgsim_error *err, const ir_op *op, enum xnn_status s)
{
    return error_set(err, IMGSIM_E_UNSUPPORTED,
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
        return error_set(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')", op->name);
    qconv_params qp;
    ex_qconv_params(g, op, lo, hi, scales, &qp);
    int unsupported;
    if (dw)
        s->qdw = qdwconv_new(&qp, &unsupported);
    else
        s->qc = qconv_new(&qp, &unsupported);
    free(scales);
    if (s->qc || s->qdw)
        return IMGSIM_OK;
    if (!unsupported)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')", op->name);
    if (ex_needs_own_kernel(w)) /* quant_ok said the kernels would take it */
        return error_set(err, IMGSIM_E_INTERNAL, "node '%s': no kernel for int8 weights",
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
        ex_op_range_q(c->p, op, y, &lo, &hi);
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
        ex_op_range_f(c->p, op, y, &lo, &hi);
        /* per-channel axis: output channels, dim 0 for conv, dim 3 for depthwise */
        size_t inner = dw ? 1 : (size_t)(w->shape[1] * w->shape[2] * w->shape[3]);
        float *wf = const_to_f32(w, inner);
        float *bf = has_bias ? bias_to_f32(g, op, cout) : NULL;
        if (!wf || (has_bias && !bf)) {
            free(wf);
            free(bf);
            return error_set(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')", op->name);
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
                         : error_set(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')",
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
    return xs == xnn_status_success ? IMGSIM_OK : ex_xnn_fail(err, op, xs);
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
        ex_op_range_q(c->p, op, y, &lo, &hi);
        if (ex_needs_own_kernel(w)) /* int8 / per-channel weights: a 1x1 convolution */
            return build_own(c, op, lo, hi, s, err);
        xs = xnn_create_fully_connected_nc_qu8(
            k, oc, k, oc, (uint8_t)x->zero_point, x->scale, (uint8_t)w->zero_point, w->scale,
            w->data, has_bias ? (const int32_t *)(const void *)g->t[op->in[2]].data : NULL,
            (uint8_t)y->zero_point, y->scale, lo, hi, 0, &s->op);
    } else {
        float lo, hi;
        ex_op_range_f(c->p, op, y, &lo, &hi);
        float *wf = const_to_f32(w, k);
        float *bf = has_bias ? bias_to_f32(g, op, oc) : NULL;
        if (!wf || (has_bias && !bf)) {
            free(wf);
            free(bf);
            return error_set(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')", op->name);
        }
        fconv_params fp = {1, 1, 1, 1, 1, 1, 0, 0, k, oc, wf, bf, lo, hi, c->p->swish[op - g->ops]};
        int unsupported;
        s->fc = fconv_new(&fp, &unsupported);
        if (s->fc || !unsupported) {
            free(wf);
            free(bf);
            return s->fc ? IMGSIM_OK
                         : error_set(err, IMGSIM_E_NOMEM, "out of memory (weights of '%s')",
                                     op->name);
        }
        xs = xnn_create_fully_connected_nc_f32(k, oc, k, oc, wf, bf, lo, hi, 0, &s->op);
        free(wf);
        free(bf);
    }
    return xs == xnn_status_success ? IMGSIM_OK : ex_xnn_fail(err, op, xs);
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
        ex_op_range_q(c->p, op, y, &qlo, &qhi);
    else
        ex_op_range_f(c->p, op, y, &lo, &hi);
    if (c->p->ort_arith && op->kind != IR_MAX_POOL && ex_global_pool(g, op)) {
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
    } else if (ex_global_pool(g, op)) {
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
    return xs == xnn_status_success ? IMGSIM_OK : ex_xnn_fail(err, op, xs);
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
        ex_op_range_q(c->p, op, y, &lo, &hi);
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
                if (!(s->consts[i] = calloc(1, t->nbytes + EX_PAD_BYTES)))
                    return error_set(err, IMGSIM_E_NOMEM, "out of memory");
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
            if (!(s->consts[i] = calloc(1, t->nbytes + EX_PAD_BYTES)))
                return error_set(err, IMGSIM_E_NOMEM, "out of memory");
            memcpy(s->consts[i], t->data, t->nbytes);
        }
    } else {
        float lo, hi;
        ex_op_range_f(c->p, op, y, &lo, &hi);
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
                return error_set(err, IMGSIM_E_NOMEM, "out of memory");
        }
    }
    return xs == xnn_status_success ? IMGSIM_OK : ex_xnn_fail(err, op, xs);
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
    ex_op_range_q(c->p, op, y, &lo, &hi);
    if (!(s->lut = malloc(256)))
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
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
            return error_set(err, IMGSIM_E_UNSUPPORTED, "node '%s': softmax beta %g", op->name,
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
            ex_act_range_q(y, act, &lo, &hi);
            xs = xnn_create_clamp_nc_u8(ch, ch, ch, lo, hi, 0, &s->op);
        } else {
            float lo, hi;
            ex_act_range_f(y, act, &lo, &hi);
            xs = xnn_create_clamp_nc_f32(ch, ch, ch, lo, hi, 0, &s->op);
        }
        break;
    }
    case IR_CLAMP: { /* fp32 (quant plans use a table) */
        float lo, hi;
        ex_op_range_f(c->p, op, y, &lo, &hi);
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
    return xs == xnn_status_success ? IMGSIM_OK : ex_xnn_fail(err, op, xs);
}

/* ---------------------------------------------------------------- contexts */

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

/* A context; `share`: a parent whose own-kernel steps (packed weights, read-only) this
 * single-image sub-context uses too. */
static imgsim_status ctx_new(const exec_plan *p, int threads, int max_batch,
                             const exec_ctx *share, exec_ctx **out, imgsim_error *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > EX_MAX_BATCH)
        return error_set(err, IMGSIM_E_ARG, "batch size %d out of range", max_batch);
    exec_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    c->p = p;
    c->max_batch = max_batch;
    c->steps = calloc((size_t)p->g->nops, sizeof *c->steps);
    c->arena = aligned_alloc(EX_ALIGN, p->arena_bytes * (size_t)max_batch + EX_ALIGN);
    c->pool = threads > 1 ? pthreadpool_create((size_t)threads) : NULL;
    if (!c->steps || !c->arena || (threads > 1 && !c->pool)) {
        exec_ctx_free(c);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory (%zu-byte activation arena)",
                         p->arena_bytes * (size_t)max_batch);
    }
    for (int i = 0; i < p->g->nops; i++) {
        const ir_op *op = &p->g->ops[i];
        imgsim_status st = IMGSIM_OK;
        if (ex_step_alias(p, i))
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
            return error_set(err, IMGSIM_E_NOMEM, "out of memory");
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

imgsim_status exec_ctx_new(const exec_plan *p, int threads, int max_batch, exec_ctx **out,
                           imgsim_error *err)
{
    return ctx_new(p, threads, max_batch, NULL, out, err);
}

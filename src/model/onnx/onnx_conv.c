/*
 * onnx_conv.c — ONNX Conv and QLinearConv as IR convolutions.
 *
 * Weights OIHW are transposed at load: a convolution gets [O,KH,KW,I/group]; a depthwise
 * one (group == input channels, one input channel per group, O = C * multiplier) gets
 * [1,KH,KW,O]. Padding is always explicit (pads / auto_pad resolved here). A float Conv
 * followed by BatchNormalization (its only reader, constant parameters) absorbs it:
 * w' = w * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps); a Relu or a Clip
 * to [0, 6] that is the only reader of the result becomes the convolution's fused
 * activation. QLinearConv: int8 weights with per-output-channel scales (qdim 0, or 3 for
 * depthwise), int32 bias with scales x_scale * w_scale[c], uint8 output.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/onnx/onnx_lower.h"

/* The BatchNormalization that is the only reader of `vi`, with constant parameters, or -1. */
static int bn_after(ox_ctx *c, int vi)
{
    int r = ox_sole_reader(c, vi);
    if (r < 0)
        return -1;
    const ox_node *b = &c->nodes[r];
    if (b->ms != 0 || !ox_fusable_node(c, r) || strcmp(b->op, "BatchNormalization") || b->nin != 5 ||
        b->in[0] != vi)
        return -1;
    for (int k = 1; k < 5; k++)
        if (b->in[k] < 0 || !c->v[b->in[k]].defined || !c->v[b->in[k]].is_const)
            return -1;
    for (int k = 1; k < b->nout; k++)
        if (b->out[k] >= 0 && (c->v[b->out[k]].nreaders || c->v[b->out[k]].is_output))
            return -1;
    return r;
}

/* Transposed weights, OIHW -> OHWI (or [1,KH,KW,O] for depthwise), elements of `es` bytes. */
static uint8_t *conv_weights(const uint8_t *w, const int64_t *d, int dw, size_t es)
{
    int64_t o = d[0], ig = d[1], kh = d[2], kw = d[3];
    uint8_t *r = malloc((size_t)(o * ig * kh * kw) * es);
    if (!r)
        return NULL;
    static const int ohwi[4] = {0, 2, 3, 1}, hwo[4] = {1, 2, 3, 0};
    /* depthwise: [O,1,KH,KW] read as [O,KH,KW] -> [KH,KW,O] ([1,KH,KW,O]) */
    ox_transpose(w, r, 4, d, dw ? hwo : ohwi, es);
    return r;
}

imgsim_status ox_lower_conv(ox_ctx *c, ox_node *n, int quant)
{
    imgsim_status st;
    int xv, wk = quant ? 3 : 1, bk = quant ? 8 : 2;
    if ((st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    if (x->rank != 4 || x->layout != OX_NCHW)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input must be a 4-d NCHW tensor");
    if (quant != (x->dtype == OX_UINT8))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input '%s' has type %d", x->name, x->dtype);
    int wvi = ox_const_in(c, n, wk, 1, &st);
    if (wvi < 0)
        return st;
    ox_value *w = &c->v[wvi];
    int64_t group, ch = x->dims[1];
    if ((st = ox_attr_int(c, n, "group", 1, &group)) != IMGSIM_OK)
        return st;
    if (w->rank != 4 || group < 1 || group > ch || ch % group != 0 || w->dims[1] != ch / group ||
        w->dims[0] < 1 || w->dims[0] % group != 0 || w->dims[2] < 1 || w->dims[3] < 1)
        return ox_fail(c, n, IMGSIM_E_MODEL, "weights '%s' do not fit %lld input channels in %lld groups",
                       w->name, (long long)ch, (long long)group);
    int64_t ks[2] = {w->dims[2], w->dims[3]}, kattr[2];
    int kc;
    if ((st = ox_attr_ints(c, n, "kernel_shape", kattr, 2, &kc)) != IMGSIM_OK)
        return st;
    if (kc >= 0 && (kc != 2 || kattr[0] != ks[0] || kattr[1] != ks[1]))
        return ox_fail(c, n, IMGSIM_E_MODEL, "kernel_shape does not match the weights");
    ox_win win;
    if ((st = ox_window(c, n, &x->dims[2], ks, 1, &win)) != IMGSIM_OK)
        return st;
    int64_t oc = w->dims[0];
    int dw = group > 1 && group == ch && w->dims[1] == 1;
    size_t es = quant ? 1 : 4;
    if (quant ? (w->dtype != OX_INT8 && w->dtype != OX_UINT8) : w->dtype != OX_FLOAT)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "weights '%s' have type %d", w->name, w->dtype);
    if (ox_numel(w) * (int64_t)es != (int64_t)w->nbytes)
        return ox_fail(c, n, IMGSIM_E_MODEL, "weights '%s' are unusable", w->name);

    /* float: fold a following BatchNormalization, then a Relu / Clip */
    int out_v = n->out[0];
    float *bn_s = NULL, *bn_b = NULL;
    ir_act act = IR_ACT_NONE;
    if (!quant) {
        int b = bn_after(c, out_v);
        if (b >= 0) {
            if ((st = ox_bn_params(c, &c->nodes[b], oc, &bn_s, &bn_b)) != IMGSIM_OK)
                return st;
            c->v[out_v].defined = 1;
            c->nodes[b].skip = 1;
            out_v = c->nodes[b].out[0];
        }
        int r = ox_sole_reader(c, out_v);
        if (r >= 0 && ox_fusable_node(c, r) && c->nodes[r].in[0] == out_v &&
            ox_fusable_act(c, &c->nodes[r], &act)) {
            c->v[out_v].defined = 1;
            c->nodes[r].skip = 1;
            out_v = c->nodes[r].out[0];
        }
    }
    uint8_t *wt = conv_weights(w->data, w->dims, dw, es);
    if (!wt) {
        free(bn_s);
        free(bn_b);
        return ox_nomem(c);
    }
    int64_t kvol = w->dims[1] * ks[0] * ks[1];
    if (bn_s) { /* scale each output channel's weights */
        float *f = (float *)(void *)wt;
        for (int64_t i = 0; i < oc * kvol; i++)
            f[i] *= bn_s[dw ? i % oc : i / kvol];
    }
    int64_t wshape[4] = {dw ? 1 : oc, ks[0], ks[1], dw ? oc : w->dims[1]};
    int in[3] = {x->ir, -1, -1};
    in[1] = ox_tensor_const(c, w->name, dw ? ":hwo" : ":ohwi", quant ? ox_ir_dtype(w->dtype) : IR_F32,
                            4, wshape, wt, (size_t)(oc * kvol) * es, wt);
    if (in[1] < 0) {
        free(bn_s);
        free(bn_b);
        return c->err->code;
    }
    /* bias */
    int bvi = ox_const_in(c, n, bk, 0, &st);
    if (st != IMGSIM_OK) {
        free(bn_s);
        free(bn_b);
        return st;
    }
    if (!quant && (bvi >= 0 || bn_s)) {
        float *bias = NULL;
        size_t nb = (size_t)oc;
        if (bvi >= 0 && (st = ox_to_f32(c, n, &c->v[bvi], &bias, &nb)) != IMGSIM_OK) {
            free(bn_s);
            free(bn_b);
            return st;
        }
        if (bvi < 0 && !(bias = calloc((size_t)oc, sizeof(float)))) {
            free(bn_s);
            free(bn_b);
            return ox_nomem(c);
        }
        if ((int64_t)nb != oc) {
            free(bias);
            free(bn_s);
            free(bn_b);
            return ox_fail(c, n, IMGSIM_E_MODEL, "bias has %zu values for %lld channels", nb,
                           (long long)oc);
        }
        for (int64_t i = 0; bn_s && i < oc; i++)
            bias[i] = bias[i] * bn_s[i] + bn_b[i];
        in[2] = ox_tensor_const(c, c->v[out_v].name, "/bias", IR_F32, 1, &oc, bias,
                                sizeof(float) * (size_t)oc, bias);
        if (in[2] < 0) {
            free(bn_s);
            free(bn_b);
            return c->err->code;
        }
    }
    free(bn_s);
    free(bn_b);
    int64_t od[4] = {1, oc, win.out[0], win.out[1]};
    int y;
    if (quant) {
        ox_qconv q = {.bias = bvi, .wt = in[1], .oc = oc, .qdim = dw ? 3 : 0};
        if ((st = ox_quant_weights(c, n, &q, &in[0], &in[2])) != IMGSIM_OK)
            return st;
    }
    if ((st = ox_act_out(c, n, out_v, quant ? IR_U8 : IR_F32, OX_NCHW, 4, od, &y)) != IMGSIM_OK)
        return st;
    if (quant && (st = ox_quant_out(c, n, 6, 7, y)) != IMGSIM_OK)
        return st;
    int o = ox_op(c, dw ? IR_DWCONV2D : IR_CONV2D, y, 3, in);
    if (o < 0)
        return c->err->code;
    ir_op *op = &c->g->ops[o];
    ox_set_window(op, &win);
    op->depth_mult = dw ? (int)(oc / ch) : 1;
    op->act = act;
    return IMGSIM_OK;
}

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

#include "model/onnx/onnx_reader.h"

/* Spatial attributes of a convolution or pooling node. */
imgsim_status ox_window(ox_ctx *c, const ox_node *n, const int64_t *in_hw, const int64_t *k,
                        int allow_dil, ox_win *w)
{
    int64_t v[4];
    int cnt;
    imgsim_status st;
    w->stride[0] = w->stride[1] = 1;
    w->dil[0] = w->dil[1] = 1;
    memset(w->pad, 0, sizeof w->pad);
    if ((st = ox_attr_ints(c, n, "strides", v, 2, &cnt)) != IMGSIM_OK)
        return st;
    if (cnt >= 0 && cnt != 2)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "only 2-d windows are supported");
    if (cnt == 2)
        w->stride[0] = v[0], w->stride[1] = v[1];
    if ((st = ox_attr_ints(c, n, "dilations", v, 2, &cnt)) != IMGSIM_OK)
        return st;
    if (cnt == 2)
        w->dil[0] = v[0], w->dil[1] = v[1];
    else if (cnt >= 0)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "only 2-d windows are supported");
    for (int i = 0; i < 2; i++)
        if (w->stride[i] < 1 || w->stride[i] > 64 || w->dil[i] < 1 || w->dil[i] > 64 ||
            (!allow_dil && w->dil[i] != 1))
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "strides %lld,%lld / dilations %lld,%lld",
                           (long long)w->stride[0], (long long)w->stride[1],
                           (long long)w->dil[0], (long long)w->dil[1]);
    if ((st = ox_attr_ints(c, n, "pads", v, 4, &cnt)) != IMGSIM_OK)
        return st;
    if (cnt >= 0 && cnt != 4)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "only 2-d windows are supported");
    int upper = ox_attr_str_is(n, "auto_pad", "SAME_UPPER", 0);
    int lower = ox_attr_str_is(n, "auto_pad", "SAME_LOWER", 0);
    int valid = ox_attr_str_is(n, "auto_pad", "VALID", 0);
    int notset = ox_attr_str_is(n, "auto_pad", "NOTSET", 1);
    if (!upper && !lower && !valid && !notset)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "unknown auto_pad");
    for (int i = 0; i < 2; i++) {
        int64_t eff = (k[i] - 1) * w->dil[i] + 1, in = in_hw[i], out;
        if (k[i] < 1 || k[i] > 4096)
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "kernel size %lld", (long long)k[i]);
        if (upper || lower) {
            out = (in + w->stride[i] - 1) / w->stride[i];
            int64_t total = (out - 1) * w->stride[i] + eff - in;
            total = total < 0 ? 0 : total;
            w->pad[i] = upper ? total / 2 : total - total / 2;
            w->pad[i + 2] = total - w->pad[i];
        } else if (notset && cnt == 4) {
            w->pad[i] = v[i];
            w->pad[i + 2] = v[i + 2];
            if (v[i] < 0 || v[i + 2] < 0 || v[i] > 4096 || v[i + 2] > 4096 || v[i] >= eff ||
                v[i + 2] >= eff)
                return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "pads %lld,%lld on a window of %lld",
                               (long long)v[i], (long long)v[i + 2], (long long)eff);
        }
        int64_t span = in + w->pad[i] + w->pad[i + 2] - eff;
        if (span < 0)
            return ox_fail(c, n, IMGSIM_E_MODEL, "window larger than the padded input");
        w->out[i] = span / w->stride[i] + 1;
        w->ceil_out[i] = (span + w->stride[i] - 1) / w->stride[i] + 1;
        /* the last window must start inside the input or its leading padding */
        if ((w->ceil_out[i] - 1) * w->stride[i] >= in + w->pad[i])
            w->ceil_out[i]--;
        /* the same padding as TensorFlow SAME (extra at the end)? */
        int64_t total = (w->out[i] - 1) * w->stride[i] + eff - in;
        total = total < 0 ? 0 : total;
        w->same[i] = w->out[i] == (in + w->stride[i] - 1) / w->stride[i] &&
                     w->pad[i] == total / 2 && w->pad[i + 2] == total - total / 2;
    }
    return IMGSIM_OK;
}

void ox_set_window(ir_op *op, const ox_win *w)
{
    op->stride_h = (int)w->stride[0];
    op->stride_w = (int)w->stride[1];
    op->dil_h = (int)w->dil[0];
    op->dil_w = (int)w->dil[1];
    op->pad_explicit = 1;
    op->pad_top = (int)w->pad[0];
    op->pad_left = (int)w->pad[1];
    op->pad_bottom = (int)w->pad[2];
    op->pad_right = (int)w->pad[3];
    op->pad_same = w->same[0] && w->same[1];
}

/* Clip bounds: attributes min / max before opset 11, optional constant inputs after. */
imgsim_status ox_clip_bounds(ox_ctx *c, const ox_node *n, float *lo, float *hi, int *ready)
{
    imgsim_status st;
    *lo = -INFINITY;
    *hi = INFINITY;
    *ready = 1;
    if (c->opset < 11) {
        if ((st = ox_attr_float(c, n, "min", -INFINITY, lo)) != IMGSIM_OK)
            return st;
        return ox_attr_float(c, n, "max", INFINITY, hi);
    }
    for (int k = 1; k <= 2 && k < n->nin; k++) {
        int vi = n->in[k];
        if (vi < 0)
            continue;
        const ox_value *v = &c->v[vi];
        if (!v->defined || !v->is_const) {
            *ready = 0;
            return IMGSIM_OK;
        }
        if (ox_numel(v) != 1 || v->nbytes != ox_dtype_size(v->dtype))
            return ox_fail(c, n, IMGSIM_E_MODEL, "bound '%s' must be one number", v->name);
        double d = ox_elem(v, 0);
        if (isnan(d))
            return ox_fail(c, n, IMGSIM_E_MODEL, "bound '%s' is not a number", v->name);
        if (k == 1)
            *lo = (float)d;
        else
            *hi = (float)d;
    }
    return IMGSIM_OK;
}

int ox_fusable_act(ox_ctx *c, const ox_node *n, ir_act *act)
{
    if (n->ms != 0 || n->skip || n->nout != 1)
        return 0;
    if (!strcmp(n->op, "Relu")) {
        *act = IR_ACT_RELU;
        return 1;
    }
    if (strcmp(n->op, "Clip"))
        return 0;
    float lo, hi;
    int ready;
    imgsim_error keep = *c->err;
    if (ox_clip_bounds(c, n, &lo, &hi, &ready) != IMGSIM_OK || !ready) {
        *c->err = keep; /* not fused; the Clip reports its own problem later */
        return 0;
    }
    if (lo == 0 && hi == 6)
        *act = IR_ACT_RELU6;
    else if (lo == 0 && isinf(hi) && hi > 0)
        *act = IR_ACT_RELU;
    else if (lo == -1 && hi == 1)
        *act = IR_ACT_RELU_N1_1;
    else
        return 0;
    return 1;
}

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

/* BatchNormalization `b` as per-channel scale and shift over `ch` channels (malloc'ed). */
imgsim_status ox_bn_params(ox_ctx *c, const ox_node *b, int64_t ch, float **scale, float **shift)
{
    float *p[4] = {NULL, NULL, NULL, NULL}, eps;
    size_t cnt;
    imgsim_status st = ox_attr_float(c, b, "epsilon", 1e-5f, &eps);
    for (int k = 0; k < 4 && st == IMGSIM_OK; k++) {
        int vi = ox_const_in(c, b, k + 1, 1, &st);
        if (vi >= 0 && (st = ox_to_f32(c, b, &c->v[vi], &p[k], &cnt)) == IMGSIM_OK &&
            (int64_t)cnt != ch)
            st = ox_fail(c, b, IMGSIM_E_MODEL, "'%s' has %zu values for %lld channels",
                         c->v[vi].name, cnt, (long long)ch);
    }
    if (st == IMGSIM_OK && (eps < 0 || !isfinite(eps)))
        st = ox_fail(c, b, IMGSIM_E_MODEL, "bad epsilon");
    if (st == IMGSIM_OK) {
        /* p: gamma, beta, mean, var -> scale in p[0], shift in p[1] */
        for (int64_t i = 0; i < ch; i++) {
            float s = p[0][i] / sqrtf(p[3][i] + eps);
            if (!isfinite(s)) {
                st = ox_fail(c, b, IMGSIM_E_MODEL, "variance out of range in channel %lld",
                             (long long)i);
                break;
            }
            p[0][i] = s;
            p[1][i] = p[1][i] - p[2][i] * s;
        }
    }
    free(p[2]);
    free(p[3]);
    if (st != IMGSIM_OK) {
        free(p[0]);
        free(p[1]);
        return st;
    }
    *scale = p[0];
    *shift = p[1];
    return IMGSIM_OK;
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

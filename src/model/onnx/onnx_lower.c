/*
 * onnx_lower.c — the lowering helpers the ONNX operator files share (onnx_lower.h): windows
 * of convolutions and pools, Clip bounds and fused activations, BatchNormalization as scale
 * and shift, the two operands of broadcasting element-wise nodes, the C,H,W -> H,W,C
 * permutation of weight columns, and the scale / zero point handling of quantized operands
 * (QLinearConv and QLinearMatMul share the input order x, x_scale, x_zp, w, w_scale, w_zp,
 * y_scale, y_zp[, bias]). The operator files (onnx_conv.c, onnx_gemm.c, onnx_ops.c,
 * onnx_qops.c) call these and never each other.
 */
#include "model/onnx/onnx_lower.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ windows */

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

/* ------------------------------------------------------------------ activations */

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

/* ------------------------------------------------------------------ batch normalization */

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

/* ------------------------------------------------------------------ element-wise operands */

imgsim_status ox_binary(ox_ctx *c, const ox_node *n, int ka, int kb, int quant, int ir[2],
                        ox_layout *lay, int *rank, int64_t *dims)
{
    int k[2] = {ka, kb}, act = -1;
    imgsim_status st;
    for (int i = 0; i < 2; i++)
        if (k[i] >= n->nin || n->in[k[i]] < 0)
            return ox_fail(c, n, IMGSIM_E_MODEL, "input %d is missing", k[i] + 1);
    const ox_value *v[2] = {&c->v[n->in[ka]], &c->v[n->in[kb]]};
    if (v[0]->is_const && v[1]->is_const)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "both inputs are constants");
    /* the activation(s) */
    for (int i = 0; i < 2; i++) {
        if (v[i]->is_const)
            continue;
        int vi;
        if ((st = ox_act_in(c, n, k[i], &vi)) != IMGSIM_OK)
            return st;
        if (quant) {
            if ((st = ox_qinput(c, n, k[i], &ir[i])) != IMGSIM_OK)
                return st;
        } else if (v[i]->dtype != OX_FLOAT) {
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input '%s' is not float", v[i]->name);
        } else {
            ir[i] = v[i]->ir;
        }
        if (act < 0 || (v[i]->layout == OX_NCHW && v[i]->rank == 4))
            act = i;
    }
    const ox_value *a = v[act], *o = v[1 - act];
    if (!o->is_const && o->layout != a->layout && ox_numel(o) != 1 && ox_numel(a) != 1)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "inputs '%s' and '%s' have different layouts",
                       a->name, o->name);
    *lay = a->layout;
    /* the constant */
    if (o->is_const) {
        int ko = k[1 - act];
        if ((st = ox_broadcast_const(c, n, &c->v[n->in[ko]], a->rank, a->layout,
                                     quant ? IR_U8 : IR_F32, &ir[1 - act])) != IMGSIM_OK)
            return st;
        if (quant) {
            float s;
            int32_t z;
            int i8;
            if ((st = ox_qparams(c, n, ko + 1, ko + 2, &s, &z, &i8)) != IMGSIM_OK)
                return st;
            ir_tensor *t = &c->g->t[ir[1 - act]];
            if (i8)
                return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "int8 constants are not supported");
            if (t->quantized && (t->scale != s || t->zero_point != z))
                return ox_fail(c, n, IMGSIM_E_UNSUPPORTED,
                               "constant '%s' is used with two quantizations", o->name);
            t->quantized = 1;
            t->scale = s;
            t->zero_point = z;
        }
    }
    /* ONNX broadcast of the two shapes */
    int r = a->rank > o->rank ? a->rank : o->rank;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - o->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? o->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return ox_fail(c, n, IMGSIM_E_MODEL, "shapes of '%s' and '%s' do not broadcast",
                           a->name, o->name);
        dims[i] = da == 1 ? db : da;
    }
    *rank = r;
    return IMGSIM_OK;
}

/* ------------------------------------------------------------------ flattened weights */

imgsim_status ox_permute_chw(ox_ctx *c, const ox_node *n, uint8_t *w, int64_t rows,
                             const int64_t chw[3], size_t es)
{
    int64_t ch = chw[0], hw = chw[1] * chw[2], k = ch * hw;
    uint8_t *row = malloc((size_t)k * es);
    if (!row)
        return ox_nomem(c);
    (void)n;
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *src = w + (size_t)(r * k) * es;
        for (int64_t ci = 0; ci < ch; ci++)
            for (int64_t p = 0; p < hw; p++)
                memcpy(row + (size_t)(p * ch + ci) * es, src + (size_t)(ci * hw + p) * es, es);
        memcpy(src, row, (size_t)k * es);
    }
    free(row);
    return IMGSIM_OK;
}

/* ------------------------------------------------------------------ quantized operands */

imgsim_status ox_qparams(ox_ctx *c, const ox_node *n, int k_scale, int k_zp, float *scale,
                         int32_t *zp, int *is_int8)
{
    imgsim_status st;
    *zp = 0;
    *is_int8 = 0;
    int sv = ox_const_in(c, n, k_scale, 1, &st);
    if (sv < 0)
        return st;
    const ox_value *s = &c->v[sv];
    if (ox_numel(s) != 1 || s->dtype != OX_FLOAT || s->nbytes != 4)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "scale '%s' must be one float (per-tensor)",
                       s->name);
    memcpy(scale, s->data, 4);
    if (!(*scale > 0) || !isfinite(*scale))
        return ox_fail(c, n, IMGSIM_E_MODEL, "scale '%s' is %g", s->name, (double)*scale);
    int zv = ox_const_in(c, n, k_zp, 0, &st);
    if (st != IMGSIM_OK)
        return st;
    if (zv >= 0) {
        const ox_value *z = &c->v[zv];
        if (ox_numel(z) != 1 || z->nbytes != 1 || (z->dtype != OX_UINT8 && z->dtype != OX_INT8))
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED,
                           "zero point '%s' must be one uint8 or int8", z->name);
        *is_int8 = z->dtype == OX_INT8;
        *zp = *is_int8 ? (int8_t)z->data[0] : z->data[0];
    }
    return IMGSIM_OK;
}

imgsim_status ox_quant_out(ox_ctx *c, const ox_node *n, int k_scale, int k_zp, int ir)
{
    float s;
    int32_t z;
    int i8;
    imgsim_status st = ox_qparams(c, n, k_scale, k_zp, &s, &z, &i8);
    if (st != IMGSIM_OK)
        return st;
    if (i8)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "int8 activations are not supported (uint8 are)");
    ir_tensor *t = &c->g->t[ir];
    t->quantized = 1;
    t->scale = s;
    t->zero_point = z;
    return IMGSIM_OK;
}

imgsim_status ox_qinput(ox_ctx *c, const ox_node *n, int k, int *ir)
{
    int vi;
    imgsim_status st = ox_act_in(c, n, k, &vi);
    if (st != IMGSIM_OK)
        return st;
    const ox_value *v = &c->v[vi];
    if (v->dtype != OX_UINT8 || !c->g->t[v->ir].quantized)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input '%s' is not a quantized uint8 tensor",
                       v->name);
    float s;
    int32_t z;
    int i8;
    if ((st = ox_qparams(c, n, k + 1, k + 2, &s, &z, &i8)) != IMGSIM_OK)
        return st;
    if (i8)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "int8 activations are not supported (uint8 are)");
    const ir_tensor *t = &c->g->t[v->ir];
    if (t->scale == s && t->zero_point == z) {
        *ir = v->ir;
        return IMGSIM_OK;
    }
    /* the node reads the tensor with other parameters than its producer wrote: requantize */
    int64_t shape[IR_MAX_RANK];
    memcpy(shape, t->shape, sizeof shape);
    int q = ox_tensor(c, v->name, "/requant", IR_U8, t->rank, shape);
    if (q < 0)
        return c->err->code;
    c->g->t[q].quantized = 1;
    c->g->t[q].scale = s;
    c->g->t[q].zero_point = z;
    int in = v->ir;
    if (ox_op(c, IR_QUANTIZE, q, 1, &in) < 0)
        return c->err->code;
    *ir = q;
    return IMGSIM_OK;
}

/* An int32 bias tensor [oc] (takes `b`). Its scale is x_scale * w_scale[c]; exec derives
 * that from the input and weight scales, so only a per-tensor scale is recorded (a bias
 * carrying per-channel scales is refused by the quantized planner). */
static int bias_tensor(ox_ctx *c, const char *name, int32_t *b, int64_t oc, float xs,
                       const float *ws, size_t ns)
{
    int t = ox_tensor_const(c, name, "/bias", IR_I32, 1, &oc, b, sizeof(int32_t) * (size_t)oc, b);
    if (t < 0)
        return -1;
    if (ns == 1) {
        c->g->t[t].quantized = 1;
        c->g->t[t].scale = xs * ws[0];
    }
    return t;
}

/* Weight scales (1 or oc) and zero points of inputs 4, 5; *ws malloc'ed. */
static imgsim_status weight_qparams(ox_ctx *c, const ox_node *n, const ox_qconv *q, float **ws,
                                    size_t *ns, int32_t *zp)
{
    imgsim_status st;
    int sv = ox_const_in(c, n, 4, 1, &st);
    if (sv < 0 || (st = ox_to_f32(c, n, &c->v[sv], ws, ns)) != IMGSIM_OK)
        return st;
    if (*ns != 1 && (int64_t)*ns != q->oc) {
        free(*ws);
        return ox_fail(c, n, IMGSIM_E_MODEL, "%zu weight scales for %lld output channels", *ns,
                       (long long)q->oc);
    }
    for (size_t i = 0; i < *ns; i++)
        if (!((*ws)[i] > 0) || !isfinite((*ws)[i])) {
            double bad = (*ws)[i];
            free(*ws);
            return ox_fail(c, n, IMGSIM_E_MODEL, "weight scale %g", bad);
        }
    *zp = 0;
    int zv = ox_const_in(c, n, 5, 0, &st);
    if (st == IMGSIM_OK && zv >= 0) {
        int64_t *z;
        size_t nz;
        if ((st = ox_to_i64(c, n, &c->v[zv], &z, &nz)) == IMGSIM_OK) {
            if (nz != *ns && nz != 1)
                st = ox_fail(c, n, IMGSIM_E_MODEL, "weight zero points do not match the scales");
            for (size_t i = 0; st == IMGSIM_OK && i < nz; i++)
                if (z[i] != z[0])
                    st = ox_fail(c, n, IMGSIM_E_UNSUPPORTED,
                                 "per-channel weight zero points must all be equal");
            if (st == IMGSIM_OK)
                *zp = (int32_t)z[0];
            free(z);
        }
    }
    const ir_tensor *w = &c->g->t[q->wt];
    if (st == IMGSIM_OK && (w->dtype == IR_I8 ? (*zp < -128 || *zp > 127) : (*zp < 0 || *zp > 255)))
        st = ox_fail(c, n, IMGSIM_E_MODEL, "weight zero point %d out of range", (int)*zp);
    if (st != IMGSIM_OK)
        free(*ws);
    return st;
}

imgsim_status ox_quant_weights(ox_ctx *c, const ox_node *n, const ox_qconv *q, int *x_ir,
                               int *bias_ir)
{
    imgsim_status st = ox_qinput(c, n, 0, x_ir);
    if (st != IMGSIM_OK)
        return st;
    float xs = c->g->t[*x_ir].scale, *ws;
    size_t ns;
    int32_t zp = 0;
    if ((st = weight_qparams(c, n, q, &ws, &ns, &zp)) != IMGSIM_OK)
        return st;
    ir_tensor *w = &c->g->t[q->wt];
    w->quantized = 1;
    w->scale = ws[0];
    w->zero_point = zp;
    if (ns > 1) {
        w->channel_scales = malloc(sizeof(float) * ns);
        if (!w->channel_scales) {
            free(ws);
            return ox_nomem(c);
        }
        memcpy(w->channel_scales, ws, sizeof(float) * ns);
        w->nchannel_scales = (int)ns;
        w->qdim = q->qdim;
    }
    *bias_ir = -1;
    if (q->bias >= 0) {
        const ox_value *b = &c->v[q->bias];
        if (b->dtype != OX_INT32 || ox_numel(b) != q->oc || b->nbytes != 4 * (size_t)q->oc) {
            free(ws);
            return ox_fail(c, n, IMGSIM_E_MODEL, "bias '%s' must be %lld int32 values", b->name,
                           (long long)q->oc);
        }
        int32_t *copy = malloc(b->nbytes);
        if (!copy) {
            free(ws);
            return ox_nomem(c);
        }
        memcpy(copy, b->data, b->nbytes);
        *bias_ir = bias_tensor(c, c->v[n->out[0]].name, copy, q->oc, xs, ws, ns);
        if (*bias_ir < 0) {
            free(ws);
            return c->err->code;
        }
    }
    free(ws);
    return IMGSIM_OK;
}

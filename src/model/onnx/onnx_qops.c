/*
 * onnx_qops.c — the ONNX QOperator set: QuantizeLinear (at the graph input it turns the
 * input itself into the quantized tensor, fed normalised floats: g->input_from_float),
 * DequantizeLinear, QLinearMatMul, and com.microsoft's QLinearAdd, QLinearMul, QLinearGlobalAveragePool,
 * QLinearSigmoid and QLinearLeakyRelu; plus the scale / zero point handling QLinearConv
 * shares. Activations are uint8 with a per-tensor scale and zero point; int8 activations are
 * refused. Weights are int8 (or uint8) with per-tensor or per-output-channel scales.
 *
 * Requantization points are kept as the file has them, so results match ONNX Runtime's
 * (e.g. the zoo classifier's QLinearMatMul -> QLinearAdd of the bias stays two operators;
 * folding the addend into an int32 bias would skip one rounding and differ by a step).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/onnx/onnx_reader.h"

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

/* ------------------------------------------------------------------ operators */

static imgsim_status quantize(ox_ctx *c, ox_node *n)
{
    int xv, y;
    imgsim_status st = ox_act_in(c, n, 0, &xv);
    if (st != IMGSIM_OK)
        return st;
    ox_value *x = &c->v[xv];
    if (x->dtype != OX_FLOAT)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input '%s' is not float", x->name);
    if (xv == c->input && x->nreaders - x->shape_readers == 1) {
        /* the image input itself becomes the quantized tensor */
        ir_tensor *t = &c->g->t[x->ir];
        t->dtype = IR_U8;
        if ((st = ox_quant_out(c, n, 1, 2, x->ir)) != IMGSIM_OK)
            return st;
        c->g->input_from_float = 1;
        ox_value *o = &c->v[n->out[0]];
        o->ir = x->ir;
        o->layout = x->layout;
        o->dtype = OX_UINT8;
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        o->defined = 1;
        return IMGSIM_OK;
    }
    if ((st = ox_act_out(c, n, n->out[0], IR_U8, x->layout, x->rank, x->dims, &y)) != IMGSIM_OK ||
        (st = ox_quant_out(c, n, 1, 2, y)) != IMGSIM_OK)
        return st;
    return ox_op(c, IR_QUANTIZE, y, 1, &c->v[xv].ir) < 0 ? c->err->code : IMGSIM_OK;
}

static imgsim_status dequantize(ox_ctx *c, ox_node *n)
{
    int xi, y, xv;
    imgsim_status st;
    if ((st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK || (st = ox_qinput(c, n, 0, &xi)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    if ((st = ox_act_out(c, n, n->out[0], IR_F32, x->layout, x->rank, x->dims, &y)) != IMGSIM_OK)
        return st;
    return ox_op(c, IR_DEQUANTIZE, y, 1, &xi) < 0 ? c->err->code : IMGSIM_OK;
}

static imgsim_status qmatmul(ox_ctx *c, ox_node *n)
{
    int av, y;
    imgsim_status st = ox_act_in(c, n, 0, &av);
    if (st != IMGSIM_OK)
        return st;
    const ox_value *a = &c->v[av];
    int bv = ox_const_in(c, n, 3, 1, &st);
    if (bv < 0)
        return st;
    const ox_value *b = &c->v[bv];
    if (a->rank != 2 || b->rank != 2 || b->dims[0] != a->dims[1] ||
        (b->dtype != OX_INT8 && b->dtype != OX_UINT8) || ox_numel(b) != (int64_t)b->nbytes)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED,
                       "needs a 2-d input and constant 2-d int8 weights that match it");
    int64_t k = b->dims[0], nout = b->dims[1];
    uint8_t *w = malloc((size_t)(k * nout));
    if (!w)
        return ox_nomem(c);
    static const int tr[2] = {1, 0};
    ox_transpose(b->data, w, 2, b->dims, tr, 1); /* [K,N] -> [N,K] */
    if (a->layout == OX_CHW_FLAT && (st = ox_permute_chw(c, n, w, nout, a->chw, 1)) != IMGSIM_OK) {
        free(w);
        return st;
    }
    int64_t ws_shape[2] = {nout, k};
    int in[3] = {-1, -1, -1};
    in[1] = ox_tensor_const(c, b->name, ":nk", ox_ir_dtype(b->dtype), 2, ws_shape, w,
                            (size_t)(k * nout), w);
    if (in[1] < 0)
        return c->err->code;
    ox_qconv q = {.bias = -1, .wt = in[1], .oc = nout, .qdim = 0};
    if ((st = ox_quant_weights(c, n, &q, &in[0], &in[2])) != IMGSIM_OK)
        return st;
    int64_t od[2] = {a->dims[0], nout};
    if ((st = ox_act_out(c, n, n->out[0], IR_U8, OX_PLAIN, 2, od, &y)) != IMGSIM_OK ||
        (st = ox_quant_out(c, n, 6, 7, y)) != IMGSIM_OK)
        return st;
    return ox_op(c, IR_FULLY_CONNECTED, y, in[2] >= 0 ? 3 : 2, in) < 0 ? c->err->code : IMGSIM_OK;
}

static imgsim_status qbinary(ox_ctx *c, ox_node *n, ir_op_kind kind)
{
    int ir[2], rank, y;
    int64_t dims[IR_MAX_RANK];
    ox_layout lay;
    imgsim_status st = ox_binary(c, n, 0, 3, 1, ir, &lay, &rank, dims);
    if (st != IMGSIM_OK)
        return st;
    if ((st = ox_act_out(c, n, n->out[0], IR_U8, lay, rank, dims, &y)) != IMGSIM_OK ||
        (st = ox_quant_out(c, n, 6, 7, y)) != IMGSIM_OK)
        return st;
    return ox_op(c, kind, y, 2, ir) < 0 ? c->err->code : IMGSIM_OK;
}

static imgsim_status qglobal_pool(ox_ctx *c, ox_node *n)
{
    int xv, xi, y;
    int64_t cl;
    imgsim_status st;
    if ((st = ox_attr_int(c, n, "channels_last", 0, &cl)) != IMGSIM_OK ||
        (st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK || (st = ox_qinput(c, n, 0, &xi)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    if (x->rank != 4 || (cl ? x->layout != OX_PLAIN : x->layout != OX_NCHW))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input must be a 4-d %s tensor",
                       cl ? "NHWC" : "NCHW");
    int64_t od[4] = {x->dims[0], cl ? 1 : x->dims[1], 1, cl ? x->dims[3] : 1};
    int in[2] = {xi, ox_axes_hw(c)};
    if (in[1] < 0)
        return c->err->code;
    if ((st = ox_act_out(c, n, n->out[0], IR_U8, cl ? OX_PLAIN : OX_NCHW, 4, od, &y)) != IMGSIM_OK ||
        (st = ox_quant_out(c, n, 3, 4, y)) != IMGSIM_OK)
        return st;
    int o = ox_op(c, IR_MEAN, y, 2, in);
    if (o < 0)
        return c->err->code;
    c->g->ops[o].keep_dims = 1;
    return IMGSIM_OK;
}

static imgsim_status qunary(ox_ctx *c, ox_node *n, ir_op_kind kind)
{
    int xv, xi, y;
    imgsim_status st;
    if ((st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK || (st = ox_qinput(c, n, 0, &xi)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    if ((st = ox_act_out(c, n, n->out[0], IR_U8, x->layout, x->rank, x->dims, &y)) != IMGSIM_OK ||
        (st = ox_quant_out(c, n, 3, 4, y)) != IMGSIM_OK)
        return st;
    int o = ox_op(c, kind, y, 1, &xi);
    if (o < 0)
        return c->err->code;
    if (kind == IR_LEAKY_RELU)
        return ox_attr_float(c, n, "alpha", 0.01f, &c->g->ops[o].alpha);
    return IMGSIM_OK;
}

imgsim_status ox_lower_qop(ox_ctx *c, ox_node *n, int *handled)
{
    const char *op = n->op;
    *handled = 1;
    if (n->ms == 0) {
        if (!strcmp(op, "QuantizeLinear"))
            return quantize(c, n);
        if (!strcmp(op, "DequantizeLinear"))
            return dequantize(c, n);
        if (!strcmp(op, "QLinearMatMul"))
            return qmatmul(c, n);
    } else {
        if (!strcmp(op, "QLinearAdd"))
            return qbinary(c, n, IR_ADD);
        if (!strcmp(op, "QLinearMul"))
            return qbinary(c, n, IR_MUL);
        if (!strcmp(op, "QLinearGlobalAveragePool"))
            return qglobal_pool(c, n);
        if (!strcmp(op, "QLinearSigmoid"))
            return qunary(c, n, IR_LOGISTIC);
        if (!strcmp(op, "QLinearLeakyRelu"))
            return qunary(c, n, IR_LEAKY_RELU);
    }
    *handled = 0;
    return IMGSIM_OK;
}

/*
 * onnx_qops.c — the ONNX QOperator set: QuantizeLinear (at the graph input it turns the
 * input itself into the quantized tensor, fed normalised floats: g->input_from_float),
 * DequantizeLinear, QLinearMatMul, and com.microsoft's QLinearAdd, QLinearMul,
 * QLinearGlobalAveragePool, QLinearSigmoid and QLinearLeakyRelu (the scale / zero point
 * handling they share with QLinearConv is in onnx_lower.c). Activations are uint8 with a
 * per-tensor scale and zero point; int8 activations are refused. Weights are int8 (or uint8)
 * with per-tensor or per-output-channel scales.
 *
 * Requantization points are kept as the file has them, so results match ONNX Runtime's
 * (e.g. the zoo classifier's QLinearMatMul -> QLinearAdd of the bias stays two operators;
 * folding the addend into an int32 bias would skip one rounding and differ by a step).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/onnx/onnx_lower.h"

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

/*
 * onnx_gemm.c — ONNX Gemm and MatMul with constant weights as IR fully connected layers:
 * weights become [out, in] (transposed at load unless transB), alpha / beta are folded into
 * weights and bias, a MatMul's following Add of a constant vector becomes its bias, and a
 * Relu / Clip reading only the result becomes the fused activation. Rows flattened from an
 * NCHW feature map (OX_CHW_FLAT) are in H,W,C order: the weight columns are permuted from
 * C,H,W to match, so no transpose runs at inference.
 */
#include <stdlib.h>
#include <string.h>

#include "model/onnx/onnx_lower.h"

/* The Add of a constant vector of `nout` floats that is the only reader of `vi`, or -1. */
static int bias_add_after(ox_ctx *c, int vi, int64_t nout, int *kc)
{
    int r = ox_sole_reader(c, vi);
    if (r < 0)
        return -1;
    const ox_node *a = &c->nodes[r];
    if (a->ms != 0 || !ox_fusable_node(c, r) || strcmp(a->op, "Add") || a->nin != 2)
        return -1;
    *kc = a->in[0] == vi ? 1 : 0;
    const ox_value *b = &c->v[a->in[*kc]];
    if (a->in[1 - *kc] != vi || a->in[*kc] < 0 || !b->defined || !b->is_const ||
        ox_numel(b) != nout || b->rank > 2 || (b->rank == 2 && b->dims[0] != 1))
        return -1;
    return r;
}

imgsim_status ox_lower_gemm(ox_ctx *c, ox_node *n, int matmul)
{
    int av, y;
    int64_t ta = 0, tb = 0;
    float alpha = 1, beta = 1;
    imgsim_status st;
    if ((st = ox_act_in(c, n, 0, &av)) != IMGSIM_OK)
        return st;
    if (!matmul && ((st = ox_attr_int(c, n, "transA", 0, &ta)) != IMGSIM_OK ||
                    (st = ox_attr_int(c, n, "transB", 0, &tb)) != IMGSIM_OK ||
                    (st = ox_attr_float(c, n, "alpha", 1, &alpha)) != IMGSIM_OK ||
                    (st = ox_attr_float(c, n, "beta", 1, &beta)) != IMGSIM_OK))
        return st;
    const ox_value *a = &c->v[av];
    int bv = ox_const_in(c, n, 1, 1, &st);
    if (bv < 0)
        return st;
    ox_value *b = &c->v[bv];
    if (ta || a->rank != 2 || a->dtype != OX_FLOAT)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input must be a 2-d float matrix (not transposed)");
    if (b->rank != 2 || b->dims[tb ? 1 : 0] != a->dims[1])
        return ox_fail(c, n, IMGSIM_E_MODEL, "weights '%s' do not match %lld inputs", b->name,
                       (long long)a->dims[1]);
    int64_t k = a->dims[1], nout = b->dims[tb ? 0 : 1];
    int in[3] = {a->ir, -1, -1};
    if (tb && alpha == 1 && a->layout != OX_CHW_FLAT && b->dtype == OX_FLOAT) {
        in[1] = ox_tensor_of(c, b, IR_F32); /* already [out, in] */
    } else {
        float *w;
        size_t cnt;
        if ((st = ox_to_f32(c, n, b, &w, &cnt)) != IMGSIM_OK)
            return st;
        if (!tb) {
            float *t = malloc(sizeof(float) * cnt);
            if (!t) {
                free(w);
                return ox_nomem(c);
            }
            static const int tr[2] = {1, 0};
            ox_transpose((const uint8_t *)w, (uint8_t *)t, 2, b->dims, tr, sizeof(float));
            free(w);
            w = t;
        }
        for (size_t i = 0; alpha != 1 && i < cnt; i++)
            w[i] *= alpha;
        if (a->layout == OX_CHW_FLAT &&
            (st = ox_permute_chw(c, n, (uint8_t *)w, nout, a->chw, sizeof(float))) != IMGSIM_OK) {
            free(w);
            return st;
        }
        int64_t shape[2] = {nout, k};
        in[1] = ox_tensor_const(c, b->name, ":nk", IR_F32, 2, shape, w, sizeof(float) * cnt, w);
    }
    if (in[1] < 0)
        return c->err->code;
    /* bias: Gemm's C, or the constant Add after a MatMul */
    int out_v = n->out[0], kc = 2;
    const ox_node *bn = n;
    if (matmul) {
        int r = bias_add_after(c, out_v, nout, &kc);
        if (r >= 0) {
            bn = &c->nodes[r];
            c->v[out_v].defined = 1;
            c->nodes[r].skip = 1;
            out_v = bn->out[0];
        }
    }
    int cv = bn != n || !matmul ? ox_const_in(c, bn, kc, 0, &st) : -1;
    if (st != IMGSIM_OK)
        return st;
    if (cv >= 0) {
        float *bias;
        size_t cnt;
        if ((st = ox_to_f32(c, bn, &c->v[cv], &bias, &cnt)) != IMGSIM_OK)
            return st;
        if (cnt == 1 && nout > 1) {
            float *full = malloc(sizeof(float) * (size_t)nout);
            if (!full) {
                free(bias);
                return ox_nomem(c);
            }
            for (int64_t i = 0; i < nout; i++)
                full[i] = bias[0];
            free(bias);
            bias = full;
            cnt = (size_t)nout;
        }
        if ((int64_t)cnt != nout) {
            free(bias);
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "bias '%s' must have %lld values",
                           c->v[cv].name, (long long)nout);
        }
        for (size_t i = 0; beta != 1 && i < cnt; i++)
            bias[i] *= beta;
        in[2] = ox_tensor_const(c, c->v[out_v].name, "/bias", IR_F32, 1, &nout, bias,
                                sizeof(float) * cnt, bias);
        if (in[2] < 0)
            return c->err->code;
    }
    ir_act act = IR_ACT_NONE;
    int r = ox_sole_reader(c, out_v);
    if (r >= 0 && ox_fusable_node(c, r) && c->nodes[r].in[0] == out_v &&
        ox_fusable_act(c, &c->nodes[r], &act)) {
        c->v[out_v].defined = 1;
        c->nodes[r].skip = 1;
        out_v = c->nodes[r].out[0];
    }
    int64_t od[2] = {a->dims[0], nout};
    if ((st = ox_act_out(c, n, out_v, IR_F32, OX_PLAIN, 2, od, &y)) != IMGSIM_OK)
        return st;
    int o = ox_op(c, IR_FULLY_CONNECTED, y, in[2] >= 0 ? 3 : 2, in);
    if (o < 0)
        return c->err->code;
    c->g->ops[o].act = act;
    return IMGSIM_OK;
}

/*
 * onnx_ops.c — ONNX float operators (other than Conv) as IR operators: activations, Add /
 * Sub / Mul / Div with broadcasting, pools, global pools and ReduceMean over H,W, the
 * reshape family, Concat, Softmax, standalone BatchNormalization, Identity / Dropout, and
 * Transposes that only relabel the layout (Gemm / MatMul: onnx_gemm.c).
 *
 * Layout rules (onnx_reader.h): NCHW activations are NHWC in the IR, so channel axes are
 * remapped (1 -> 3), and a reshape is free only when NCHW and NHWC hold the data in the
 * same order (C == 1 or H*W == 1). Flattening a real feature map ([N,C,H,W] with C > 1 and
 * H*W > 1) keeps the H,W,C order (OX_CHW_FLAT) for the Gemm / MatMul reading it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/onnx/onnx_lower.h"

static int is(const ox_node *n, const char *op)
{
    return !strcmp(n->op, op);
}

/* ------------------------------------------------------------------ element-wise */

/* One-input node keeping shape and layout; uint8 inputs (when allowed) keep their
 * quantization. Returns the op index or -1. */
static int unary(ox_ctx *c, ox_node *n, ir_op_kind kind, int allow_quant, imgsim_status *st)
{
    int xv, y;
    if ((*st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK)
        return -1;
    const ox_value *x = &c->v[xv];
    int q = x->dtype == OX_UINT8;
    if (x->dtype != OX_FLOAT && !(q && allow_quant)) {
        *st = ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input '%s' has type %d (float expected)",
                      x->name, x->dtype);
        return -1;
    }
    if ((*st = ox_act_out(c, n, n->out[0], q ? IR_U8 : IR_F32, x->layout, x->rank, x->dims,
                          &y)) != IMGSIM_OK)
        return -1;
    if (q)
        ox_copy_quant(c, y, x->ir);
    int o = ox_op(c, kind, y, 1, &c->v[xv].ir);
    if (o < 0)
        *st = c->err->code;
    return o;
}

static imgsim_status clip(ox_ctx *c, ox_node *n)
{
    float lo, hi;
    int ready;
    imgsim_status st = ox_clip_bounds(c, n, &lo, &hi, &ready);
    if (st != IMGSIM_OK)
        return st;
    if (!ready)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "min / max must be constants");
    if (lo > hi)
        return ox_fail(c, n, IMGSIM_E_MODEL, "min %g > max %g", (double)lo, (double)hi);
    ir_op_kind k = lo == 0 && hi == 6 ? IR_RELU6 : lo == 0 && isinf(hi) ? IR_RELU : IR_CLAMP;
    int o = unary(c, n, k, 1, &st);
    if (o >= 0) {
        c->g->ops[o].lo = lo;
        c->g->ops[o].hi = hi;
    }
    return st;
}

static imgsim_status binary(ox_ctx *c, ox_node *n, ir_op_kind kind)
{
    int ir[2], rank, y;
    int64_t dims[IR_MAX_RANK];
    ox_layout lay;
    imgsim_status st = ox_binary(c, n, 0, 1, 0, ir, &lay, &rank, dims);
    if (st != IMGSIM_OK)
        return st;
    if ((st = ox_act_out(c, n, n->out[0], IR_F32, lay, rank, dims, &y)) != IMGSIM_OK)
        return st;
    return ox_op(c, kind, y, 2, ir) < 0 ? c->err->code : IMGSIM_OK;
}

/* x / constant as x * (1 / constant). */
static imgsim_status divide(ox_ctx *c, ox_node *n)
{
    imgsim_status st;
    int bv = ox_const_in(c, n, 1, 1, &st);
    if (bv < 0)
        return st == IMGSIM_OK ? ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "divisor must be constant") : st;
    ox_value *b = &c->v[bv], recip;
    float *r;
    size_t cnt;
    int xv = 0, y, ir[2];
    ox_layout lay = OX_PLAIN;
    if ((st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    if (x->dtype != OX_FLOAT)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input is not float");
    for (int i = 0; i < b->rank; i++) { /* the result has the input's shape */
        int xi = i - (b->rank - x->rank);
        if (b->dims[i] != 1 && (xi < 0 || b->dims[i] != x->dims[xi]))
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "divisor '%s' widens the input", b->name);
    }
    lay = x->layout;
    ir[0] = x->ir;
    if ((st = ox_to_f32(c, n, b, &r, &cnt)) != IMGSIM_OK)
        return st;
    for (size_t i = 0; i < cnt; i++)
        r[i] = 1.0f / r[i];
    memset(&recip, 0, sizeof recip);
    recip.name = malloc(strlen(b->name) + 8);
    if (!recip.name) {
        free(r);
        return ox_nomem(c);
    }
    strcpy(recip.name, b->name);
    strcat(recip.name, ":recip");
    recip.dtype = OX_FLOAT;
    recip.rank = b->rank;
    memcpy(recip.dims, b->dims, sizeof recip.dims);
    recip.is_const = recip.defined = 1;
    recip.data = (const uint8_t *)r;
    recip.owned = r;
    recip.nbytes = sizeof(float) * cnt;
    recip.ir = recip.ir_const = -1;
    st = ox_broadcast_const(c, n, &recip, x->rank, lay, IR_F32, &ir[1]);
    free(recip.owned);
    free(recip.name);
    if (st != IMGSIM_OK)
        return st;
    if ((st = ox_act_out(c, n, n->out[0], IR_F32, lay, x->rank, x->dims, &y)) != IMGSIM_OK)
        return st;
    return ox_op(c, IR_MUL, y, 2, ir) < 0 ? c->err->code : IMGSIM_OK;
}

/* ------------------------------------------------------------------ pools */

static imgsim_status pool(ox_ctx *c, ox_node *n, int maxp)
{
    int xv, y, kc;
    int64_t k[2], ceil_mode, cip = 0;
    imgsim_status st;
    if ((st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    int q = x->dtype == OX_UINT8;
    if (x->rank != 4 || x->layout != OX_NCHW || (q && !maxp) || (!q && x->dtype != OX_FLOAT))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input must be a 4-d NCHW float tensor");
    if ((st = ox_attr_ints(c, n, "kernel_shape", k, 2, &kc)) != IMGSIM_OK)
        return st;
    if (kc != 2)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "needs a 2-d kernel_shape");
    if ((st = ox_attr_int(c, n, "ceil_mode", 0, &ceil_mode)) != IMGSIM_OK ||
        (!maxp && (st = ox_attr_int(c, n, "count_include_pad", 0, &cip)) != IMGSIM_OK))
        return st;
    for (int i = 1; i < n->nout; i++)
        if (n->out[i] >= 0 && (c->v[n->out[i]].nreaders || c->v[n->out[i]].is_output))
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "the Indices output is not supported");
    ox_win w;
    if ((st = ox_window(c, n, &x->dims[2], k, 0, &w)) != IMGSIM_OK)
        return st;
    if (ceil_mode && (w.ceil_out[0] != w.out[0] || w.ceil_out[1] != w.out[1]))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "ceil_mode=1 changes the output size");
    if (cip && (w.pad[0] || w.pad[1] || w.pad[2] || w.pad[3]))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "count_include_pad=1 with padding");
    int64_t od[4] = {x->dims[0], x->dims[1], w.out[0], w.out[1]};
    if ((st = ox_act_out(c, n, n->out[0], q ? IR_U8 : IR_F32, OX_NCHW, 4, od, &y)) != IMGSIM_OK)
        return st;
    if (q)
        ox_copy_quant(c, y, c->v[xv].ir);
    int o = ox_op(c, maxp ? IR_MAX_POOL : IR_AVG_POOL, y, 1, &c->v[xv].ir);
    if (o < 0)
        return c->err->code;
    ox_set_window(&c->g->ops[o], &w);
    c->g->ops[o].kh = (int)k[0];
    c->g->ops[o].kw = (int)k[1];
    return IMGSIM_OK;
}

/* GlobalAveragePool / ReduceMean over H,W (IR_MEAN) and GlobalMaxPool (a full window). */
static imgsim_status spatial_reduce(ox_ctx *c, ox_node *n, int maxp, int keep, int nhwc)
{
    int xv, y;
    imgsim_status st;
    if ((st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    int q = x->dtype == OX_UINT8;
    if (x->rank != 4 || x->layout != (nhwc ? OX_PLAIN : OX_NCHW) || (q && !maxp) ||
        (!q && x->dtype != OX_FLOAT))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input must be a 4-d %s float tensor",
                       nhwc ? "NHWC" : "NCHW");
    int64_t od[4];
    int rank = 4;
    if (!keep) {
        od[0] = x->dims[0];
        od[1] = x->dims[nhwc ? 3 : 1];
        rank = 2;
    } else if (nhwc) {
        od[0] = x->dims[0], od[1] = od[2] = 1, od[3] = x->dims[3];
    } else {
        od[0] = x->dims[0], od[1] = x->dims[1], od[2] = od[3] = 1;
    }
    if ((st = ox_act_out(c, n, n->out[0], q ? IR_U8 : IR_F32, nhwc ? OX_PLAIN : OX_NCHW, rank,
                         od, &y)) != IMGSIM_OK)
        return st;
    if (q)
        ox_copy_quant(c, y, c->v[xv].ir);
    int in[2] = {c->v[xv].ir, -1};
    if (!maxp && (in[1] = ox_axes_hw(c)) < 0)
        return c->err->code;
    int o = ox_op(c, maxp ? IR_MAX_POOL : IR_MEAN, y, maxp ? 1 : 2, in);
    if (o < 0)
        return c->err->code;
    ir_op *op = &c->g->ops[o];
    op->keep_dims = keep;
    if (maxp) {
        op->kh = (int)x->dims[nhwc ? 1 : 2];
        op->kw = (int)x->dims[nhwc ? 2 : 3];
        op->pad_explicit = 1;
    }
    return IMGSIM_OK;
}

static imgsim_status reduce_mean(ox_ctx *c, ox_node *n)
{
    int64_t axes[IR_MAX_RANK], keep;
    int na, xv;
    imgsim_status st;
    if ((st = ox_attr_int(c, n, "keepdims", 1, &keep)) != IMGSIM_OK ||
        (st = ox_axes(c, n, "axes", 1, 18, axes, &na)) != IMGSIM_OK ||
        (st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    int mask = 0;
    for (int i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + x->rank : axes[i];
        if (a < 0 || a >= x->rank)
            return ox_fail(c, n, IMGSIM_E_MODEL, "axis %lld out of range", (long long)axes[i]);
        mask |= 1 << a;
    }
    int nhwc = x->layout == OX_PLAIN;
    if (x->rank != 4 || mask != (nhwc ? 6 : 12))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "only the mean over height and width of a 4-d "
                       "tensor is supported");
    return spatial_reduce(c, n, 0, keep != 0, nhwc);
}

/* ------------------------------------------------------------------ reshapes */

/* Do NCHW and NHWC hold this 4-d shape's elements in the same order? */
static int same_order(const int64_t *d)
{
    return d[1] == 1 || d[2] * d[3] == 1;
}

/* Value `vo` as a relabelling of activation `xv` with ONNX dims `t` (rank r): a free IR
 * reshape when the memory order allows, else an error. */
static imgsim_status reshape_to(ox_ctx *c, ox_node *n, int xv, int vo, int r, const int64_t *t)
{
    const ox_value *x = &c->v[xv];
    ox_layout lay;
    int flat = 0;
    imgsim_status st;
    int64_t chw[3] = {0, 0, 0};
    if (x->layout == OX_CHW_FLAT) {
        if (r != 2 || t[0] != x->dims[0] || t[1] != x->dims[1])
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "reshape of a flattened NCHW feature map");
        lay = OX_CHW_FLAT;
        flat = 1;
        memcpy(chw, x->chw, sizeof chw);
    } else if (x->layout == OX_PLAIN || same_order(x->dims)) {
        lay = r == 4 && same_order(t) ? OX_NCHW : OX_PLAIN;
        if (x->layout == OX_PLAIN && x->rank == 4 && r == 4 && !same_order(t))
            lay = OX_PLAIN;
    } else if (r == 2 && t[0] == x->dims[0] && t[1] == x->dims[1] * x->dims[2] * x->dims[3]) {
        lay = OX_CHW_FLAT; /* rows in H,W,C order; only a Gemm / MatMul may read them */
        flat = 1;
        chw[0] = x->dims[1];
        chw[1] = x->dims[2];
        chw[2] = x->dims[3];
    } else if (r == 4 && !memcmp(t, x->dims, 4 * sizeof *t)) {
        lay = OX_NCHW;
    } else {
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED,
                       "reshape of an NCHW feature map that moves data between channels and "
                       "pixels");
    }
    if (lay == OX_PLAIN && r == 4 && !(x->layout == OX_PLAIN && x->rank == 4))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "reshape into a 4-d tensor that is not an "
                       "NCHW feature map layout");
    int q = x->dtype == OX_UINT8, y;
    if ((st = ox_act_out(c, n, vo, q ? IR_U8 : IR_F32, flat ? OX_PLAIN : lay, r, t, &y)) != IMGSIM_OK)
        return st;
    ox_value *out = &c->v[vo];
    if (flat) {
        out->layout = OX_CHW_FLAT;
        memcpy(out->chw, chw, sizeof chw);
    }
    if (q)
        ox_copy_quant(c, y, x->ir);
    int32_t *s = malloc(sizeof(int32_t) * (size_t)(r ? r : 1));
    if (!s)
        return ox_nomem(c);
    const ir_tensor *yt = &c->g->t[y];
    for (int i = 0; i < r; i++)
        s[i] = (int32_t)yt->shape[i];
    int64_t sr = r;
    int in[2] = {c->v[xv].ir, -1};
    in[1] = ox_tensor_const(c, out->name, "/shape", IR_I32, 1, &sr, s, sizeof(int32_t) * (size_t)r, s);
    if (in[1] < 0)
        return c->err->code;
    return ox_op(c, IR_RESHAPE, y, 2, in) < 0 ? c->err->code : IMGSIM_OK;
}

static imgsim_status reshape(ox_ctx *c, ox_node *n)
{
    int xv;
    int64_t t[IR_MAX_RANK];
    imgsim_status st;
    if ((st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    if (x->dtype != OX_FLOAT && x->dtype != OX_UINT8)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input type %d", x->dtype);
    int r = ox_reshape_target(c, n, x->rank, x->dims, t, &st);
    if (r < 0)
        return st;
    return reshape_to(c, n, xv, n->out[0], r, t);
}

/* Transposes that only relabel: NCHW <-> NHWC of the same data, or moving size-1 dims. */
static imgsim_status transpose(ox_ctx *c, ox_node *n)
{
    int xv, np;
    int64_t p[IR_MAX_RANK], t[IR_MAX_RANK];
    imgsim_status st;
    if ((st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK ||
        (st = ox_attr_ints(c, n, "perm", p, IR_MAX_RANK, &np)) != IMGSIM_OK)
        return st;
    ox_value *x = &c->v[xv], *o = &c->v[n->out[0]];
    if (np < 0)
        for (np = 0; np < x->rank; np++)
            p[np] = x->rank - 1 - np;
    int seen[IR_MAX_RANK] = {0};
    if (np != x->rank)
        return ox_fail(c, n, IMGSIM_E_MODEL, "bad perm");
    for (int i = 0; i < np; i++) {
        if (p[i] < 0 || p[i] >= np || seen[p[i]]++)
            return ox_fail(c, n, IMGSIM_E_MODEL, "bad perm");
        t[i] = x->dims[p[i]];
    }
    static const int64_t to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2};
    if (np == 4 && ((x->layout == OX_NCHW && !memcmp(p, to_nhwc, sizeof to_nhwc)) ||
                    (x->layout == OX_PLAIN && !memcmp(p, to_nchw, sizeof to_nchw)))) {
        /* the same IR tensor, seen with the other layout */
        o->ir = x->ir;
        o->layout = x->layout == OX_NCHW ? OX_PLAIN : OX_NCHW;
        o->dtype = x->dtype;
        o->rank = 4;
        memcpy(o->dims, t, sizeof t);
        o->defined = 1;
        return IMGSIM_OK;
    }
    /* a permutation that keeps the order of the dims larger than 1 moves no data */
    int last = -1;
    for (int i = 0; i < np; i++)
        if (t[i] != 1) {
            if (p[i] < last)
                return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "transpose that moves data");
            last = (int)p[i];
        }
    if (x->layout == OX_NCHW && !same_order(x->dims))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "transpose of an NCHW feature map");
    return reshape_to(c, n, xv, n->out[0], np, t);
}

/* Identity / Dropout: the output is the input. */
static imgsim_status alias(ox_ctx *c, ox_node *n)
{
    int xv;
    imgsim_status st = ox_act_in(c, n, 0, &xv);
    if (st != IMGSIM_OK)
        return st;
    for (int i = 1; i < n->nout; i++)
        if (n->out[i] >= 0 && (c->v[n->out[i]].nreaders || c->v[n->out[i]].is_output))
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "the mask output is not supported");
    ox_value *x = &c->v[xv], *o = &c->v[n->out[0]];
    o->ir = x->ir;
    o->layout = x->layout;
    memcpy(o->chw, x->chw, sizeof o->chw);
    o->dtype = x->dtype;
    o->rank = x->rank;
    memcpy(o->dims, x->dims, sizeof o->dims);
    o->defined = 1;
    return IMGSIM_OK;
}

/* ------------------------------------------------------------------ the rest */

static imgsim_status concat(ox_ctx *c, ox_node *n)
{
    int64_t axis;
    imgsim_status st;
    int x0;
    if ((st = ox_attr_int(c, n, "axis", 1, &axis)) != IMGSIM_OK ||
        (st = ox_act_in(c, n, 0, &x0)) != IMGSIM_OK)
        return st;
    const ox_value *f = &c->v[x0];
    if (axis < 0)
        axis += f->rank;
    if (axis < 0 || axis >= f->rank)
        return ox_fail(c, n, IMGSIM_E_MODEL, "axis out of range");
    int64_t od[IR_MAX_RANK];
    memcpy(od, f->dims, sizeof od);
    od[axis] = 0;
    int q = f->dtype == OX_UINT8;
    for (int k = 0; k < n->nin; k++) {
        int xv;
        if ((st = ox_act_in(c, n, k, &xv)) != IMGSIM_OK)
            return st;
        const ox_value *x = &c->v[xv];
        const ir_tensor *xt = &c->g->t[x->ir], *ft = &c->g->t[f->ir];
        if (x->rank != f->rank || x->layout != f->layout || x->dtype != f->dtype ||
            (q && (xt->scale != ft->scale || xt->zero_point != ft->zero_point)))
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED,
                           "inputs differ in rank, layout, type or quantization");
        for (int i = 0; i < x->rank; i++)
            if (i != axis && x->dims[i] != f->dims[i])
                return ox_fail(c, n, IMGSIM_E_MODEL, "inputs differ in shape");
        od[axis] += x->dims[axis];
    }
    static const int nhwc_axis[4] = {0, 3, 1, 2};
    int ir_axis = f->layout == OX_NCHW && f->rank == 4 ? nhwc_axis[axis] : (int)axis;
    /* IR concatenations take up to IR_MAX_IN inputs: chain them */
    int acc = -1;
    int64_t run = 0;
    for (int k = 0; k < n->nin;) {
        int in[IR_MAX_IN], m = 0, y;
        if (acc >= 0)
            in[m++] = acc;
        while (m < IR_MAX_IN && k < n->nin) {
            run += c->v[n->in[k]].dims[axis];
            in[m++] = c->v[n->in[k++]].ir;
        }
        if (k == n->nin) {
            if ((st = ox_act_out(c, n, n->out[0], q ? IR_U8 : IR_F32, f->layout, f->rank, od,
                                 &y)) != IMGSIM_OK)
                return st;
        } else {
            int64_t part[IR_MAX_RANK], s[IR_MAX_RANK];
            memcpy(part, f->dims, sizeof part);
            part[axis] = run;
            ox_ir_shape(f->layout, f->rank, part, s);
            if ((y = ox_tensor(c, c->v[n->out[0]].name, "/part", q ? IR_U8 : IR_F32, f->rank, s)) < 0)
                return c->err->code;
        }
        if (q)
            ox_copy_quant(c, y, f->ir);
        int o = ox_op(c, IR_CONCAT, y, m, in);
        if (o < 0)
            return c->err->code;
        c->g->ops[o].axis = ir_axis;
        acc = y;
    }
    return IMGSIM_OK;
}

static imgsim_status softmax(ox_ctx *c, ox_node *n)
{
    int64_t axis;
    imgsim_status st;
    int xv;
    if ((st = ox_attr_int(c, n, "axis", c->opset < 13 ? 1 : -1, &axis)) != IMGSIM_OK ||
        (st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    if (axis < 0)
        axis += x->rank;
    int ok;
    if (x->layout == OX_NCHW)  /* channels are the IR's last dimension */
        ok = axis == 1 && (c->opset >= 13 || x->dims[2] * x->dims[3] == 1);
    else
        ok = axis == x->rank - 1;
    if (!ok)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "softmax over axis %lld", (long long)axis);
    int o = unary(c, n, IR_SOFTMAX, 0, &st);
    if (o >= 0)
        c->g->ops[o].beta = 1.0f;
    return st;
}

/* BatchNormalization not absorbed by a convolution: x * scale + shift. */
static imgsim_status batch_norm(ox_ctx *c, ox_node *n)
{
    int xv, y;
    imgsim_status st;
    if ((st = ox_act_in(c, n, 0, &xv)) != IMGSIM_OK)
        return st;
    const ox_value *x = &c->v[xv];
    if (x->dtype != OX_FLOAT || !((x->rank == 4 && x->layout == OX_NCHW) || x->rank == 2))
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input must be float NCHW or [N,C]");
    for (int i = 1; i < n->nout; i++)
        if (n->out[i] >= 0 && (c->v[n->out[i]].nreaders || c->v[n->out[i]].is_output))
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "training outputs are not supported");
    int64_t ch = x->dims[1];
    float *s, *b;
    if ((st = ox_bn_params(c, n, ch, &s, &b)) != IMGSIM_OK)
        return st;
    int64_t shape[4] = {1, 1, 1, ch};
    int r = x->rank == 4 ? 4 : 1;
    const char *name = c->v[n->out[0]].name;
    int sc = ox_tensor_const(c, name, "/bn_scale", IR_F32, r, r == 4 ? shape : &ch, s,
                             sizeof(float) * (size_t)ch, s);
    int sh = ox_tensor_const(c, name, "/bn_shift", IR_F32, r, r == 4 ? shape : &ch, b,
                             sizeof(float) * (size_t)ch, b);
    if (sc < 0 || sh < 0) /* each call took (and on failure freed) its buffer */
        return c->err->code;
    int64_t s4[IR_MAX_RANK];
    ox_ir_shape(x->layout, x->rank, x->dims, s4);
    int mid = ox_tensor(c, name, "/bn_mul", IR_F32, x->rank, s4);
    if (mid < 0)
        return c->err->code;
    int in[2] = {x->ir, sc};
    if (ox_op(c, IR_MUL, mid, 2, in) < 0)
        return c->err->code;
    if ((st = ox_act_out(c, n, n->out[0], IR_F32, x->layout, x->rank, x->dims, &y)) != IMGSIM_OK)
        return st;
    in[0] = mid;
    in[1] = sh;
    return ox_op(c, IR_ADD, y, 2, in) < 0 ? c->err->code : IMGSIM_OK;
}

imgsim_status ox_lower_op(ox_ctx *c, ox_node *n, int *handled)
{
    imgsim_status st = IMGSIM_OK;
    int o;
    *handled = 1;
    if (is(n, "Relu")) {
        unary(c, n, IR_RELU, 1, &st);
    } else if (is(n, "Clip")) {
        st = clip(c, n);
    } else if (is(n, "LeakyRelu")) {
        if ((o = unary(c, n, IR_LEAKY_RELU, 0, &st)) >= 0)
            st = ox_attr_float(c, n, "alpha", 0.01f, &c->g->ops[o].alpha);
    } else if (is(n, "Sigmoid")) {
        unary(c, n, IR_LOGISTIC, 0, &st);
    } else if (is(n, "HardSigmoid")) {
        if ((o = unary(c, n, IR_HARD_SIGMOID, 0, &st)) >= 0 &&
            (st = ox_attr_float(c, n, "alpha", 0.2f, &c->g->ops[o].alpha)) == IMGSIM_OK)
            st = ox_attr_float(c, n, "beta", 0.5f, &c->g->ops[o].beta);
    } else if (is(n, "HardSwish")) {
        unary(c, n, IR_HARD_SWISH, 0, &st);
    } else if (is(n, "Add")) {
        st = binary(c, n, IR_ADD);
    } else if (is(n, "Sub")) {
        st = binary(c, n, IR_SUB);
    } else if (is(n, "Mul")) {
        st = binary(c, n, IR_MUL);
    } else if (is(n, "Div")) {
        st = divide(c, n);
    } else if (is(n, "MaxPool") || is(n, "AveragePool")) {
        st = pool(c, n, n->op[0] == 'M');
    } else if (is(n, "GlobalAveragePool")) {
        st = spatial_reduce(c, n, 0, 1, 0);
    } else if (is(n, "GlobalMaxPool")) {
        st = spatial_reduce(c, n, 1, 1, 0);
    } else if (is(n, "ReduceMean")) {
        st = reduce_mean(c, n);
    } else if (is(n, "Flatten") || is(n, "Reshape") || is(n, "Squeeze") || is(n, "Unsqueeze")) {
        st = reshape(c, n);
    } else if (is(n, "Transpose")) {
        st = transpose(c, n);
    } else if (is(n, "Concat")) {
        st = concat(c, n);
    } else if (is(n, "Softmax")) {
        st = softmax(c, n);
    } else if (is(n, "BatchNormalization")) {
        st = batch_norm(c, n);
    } else if (is(n, "Identity") || is(n, "Dropout")) {
        st = alias(c, n);
    } else {
        *handled = 0;
    }
    return st;
}

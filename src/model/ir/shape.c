/*
 * shape.c — shape inference and operand checks for the graph IR.
 *
 * Walks operators in order, computes each output's shape from its inputs and the operator's
 * attributes, fills shapes the file left out (some TFLite files omit intermediate shapes) and
 * rejects a stored shape that disagrees. It also computes explicit padding for SAME/VALID
 * convolutions and pools, so the executor never has to; pads a front-end set itself
 * (op->pad_explicit: ONNX pads, possibly asymmetric) are kept. Dimension 0 is the batch.
 */
#include "model/ir/graph.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

#define BAD(...) error_set(err, IMGSIM_E_MODEL, __VA_ARGS__)

static int known(const ir_graph *g, int t)
{
    return t >= 0 && t < g->nt && g->t[t].rank >= 0;
}

/* One spatial dimension: output size and padding, TensorFlow SAME/VALID rules. */
static int spatial(int64_t in, int k, int stride, int dil, int same, int64_t *out, int *before,
                   int *after)
{
    int64_t eff = (int64_t)(k - 1) * dil + 1;
    int64_t o = same ? (in + stride - 1) / stride : (in - eff + stride) / stride;
    if (o < 1)
        return -1;
    int64_t total = (o - 1) * stride + eff - in;
    if (total < 0)
        total = 0;
    *out = o;
    *before = (int)(total / 2);
    *after = (int)(total - total / 2);
    return 0;
}

/* One spatial dimension with the front-end's own padding (ONNX pads, floor rounding). */
static int spatial_explicit(int64_t in, int k, int stride, int dil, int before, int after,
                            int64_t *out)
{
    int64_t eff = (int64_t)(k - 1) * dil + 1, span = in + before + after;
    if (before < 0 || after < 0 || stride < 1 || span < eff)
        return -1;
    *out = (span - eff) / stride + 1;
    return 0;
}

/* Output size of both spatial dimensions of a convolution or pool, and its padding. */
static int spatial2(ir_op *op, const int64_t *in_hw, int dil_h, int dil_w, int64_t *out_hw)
{
    if (op->stride_h < 1 || op->stride_w < 1 || dil_h < 1 || dil_w < 1)
        return -1;
    if (op->pad_explicit)
        return spatial_explicit(in_hw[0], op->kh, op->stride_h, dil_h, op->pad_top,
                                op->pad_bottom, &out_hw[0]) < 0 ||
                       spatial_explicit(in_hw[1], op->kw, op->stride_w, dil_w, op->pad_left,
                                        op->pad_right, &out_hw[1]) < 0
                   ? -1
                   : 0;
    return spatial(in_hw[0], op->kh, op->stride_h, dil_h, op->pad_same, &out_hw[0],
                   &op->pad_top, &op->pad_bottom) < 0 ||
                   spatial(in_hw[1], op->kw, op->stride_w, dil_w, op->pad_same, &out_hw[1],
                           &op->pad_left, &op->pad_right) < 0
               ? -1
               : 0;
}

/* Give tensor `ti` the computed shape. Stored activation shapes are only hints: files with
 * dynamic dimensions store placeholders (e.g. [1,1,1,16] for a 112x112 map), so the inferred
 * shape wins, as it does in TFLite's own runtime. */
static imgsim_status settle(ir_graph *g, int ti, int rank, const int64_t *shape, const ir_op *op,
                            imgsim_error *err)
{
    ir_tensor *t = &g->t[ti];
    if (t->data)
        return BAD("node '%s' writes into a constant tensor", op->name);
    t->rank = rank;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)rank);
    return IMGSIM_OK;
}

static int is_const(const ir_graph *g, int t)
{
    return t >= 0 && g->t[t].data != NULL;
}

static imgsim_status infer_op(ir_graph *g, ir_op *op, imgsim_error *err)
{
    int64_t s[IR_MAX_RANK];
    int rank = 0;
    if (op->nin < 1 || !known(g, op->in[0]))
        return BAD("node '%s' (%s): input shape unknown", op->name, ir_op_name(op->kind));
    const ir_tensor *x = &g->t[op->in[0]];
    switch (op->kind) {
    case IR_CONV2D:
    case IR_DWCONV2D: {
        if (op->nin < 2 || !known(g, op->in[1]) || !is_const(g, op->in[1]))
            return BAD("node '%s': convolution needs a constant filter", op->name);
        const ir_tensor *w = &g->t[op->in[1]];
        if (x->rank != 4 || w->rank != 4)
            return BAD("node '%s': convolution needs 4-d input and filter", op->name);
        int64_t oc, c = x->shape[3];
        if (op->kind == IR_CONV2D) {
            oc = w->shape[0];
            if (w->shape[3] < 1 || c % w->shape[3] != 0 || oc % (c / w->shape[3]) != 0)
                return BAD("node '%s': filter has %lld input channels, input has %lld", op->name,
                           (long long)w->shape[3], (long long)c);
        } else {
            oc = w->shape[3];
            if (w->shape[0] != 1 || oc != c * op->depth_mult)
                return BAD("node '%s': depthwise filter does not match %lld channels x %d",
                           op->name, (long long)c, op->depth_mult);
        }
        if (op->nin > 2 && op->in[2] >= 0) {
            const ir_tensor *bias = &g->t[op->in[2]];
            if (!is_const(g, op->in[2]) || ir_numel(bias) != oc)
                return BAD("node '%s': bias must be constant with %lld values", op->name,
                           (long long)oc);
        }
        op->kh = (int)w->shape[1];
        op->kw = (int)w->shape[2];
        s[0] = x->shape[0];
        s[3] = oc;
        if (spatial2(op, &x->shape[1], op->dil_h, op->dil_w, &s[1]) < 0)
            return BAD("node '%s': filter larger than input (or bad stride, dilation, pads)",
                       op->name);
        rank = 4;
        break;
    }
    case IR_AVG_POOL:
    case IR_MAX_POOL:
        if (x->rank != 4 || op->kh < 1 || op->kw < 1)
            return BAD("node '%s': pooling needs 4-d input and a window", op->name);
        s[0] = x->shape[0];
        s[3] = x->shape[3];
        /* a window lying wholly in the padding would average nothing */
        if (op->pad_explicit && (op->pad_top >= op->kh || op->pad_bottom >= op->kh ||
                                 op->pad_left >= op->kw || op->pad_right >= op->kw))
            return BAD("node '%s': pooling pads must be smaller than the window", op->name);
        if (spatial2(op, &x->shape[1], 1, 1, &s[1]) < 0)
            return BAD("node '%s': window larger than input (or bad stride, pads)", op->name);
        rank = 4;
        break;
    case IR_FULLY_CONNECTED: {
        if (op->nin < 2 || !known(g, op->in[1]) || !is_const(g, op->in[1]) ||
            g->t[op->in[1]].rank != 2)
            return BAD("node '%s': fully connected needs constant 2-d weights", op->name);
        const ir_tensor *w = &g->t[op->in[1]];
        int64_t k = w->shape[1], n = ir_numel(x);
        if (k < 1 || n % k != 0)
            return BAD("node '%s': %lld inputs do not divide into rows of %lld", op->name,
                       (long long)n, (long long)k);
        if (op->nin > 2 && op->in[2] >= 0 &&
            (!is_const(g, op->in[2]) || ir_numel(&g->t[op->in[2]]) != w->shape[0]))
            return BAD("node '%s': bias must be constant with %lld values", op->name,
                       (long long)w->shape[0]);
        s[0] = n / k;
        s[1] = w->shape[0];
        rank = 2;
        break;
    }
    case IR_ADD:
    case IR_SUB:
    case IR_MUL: {
        if (op->nin != 2 || !known(g, op->in[1]))
            return BAD("node '%s': binary operator needs two known inputs", op->name);
        const ir_tensor *y = &g->t[op->in[1]];
        rank = x->rank > y->rank ? x->rank : y->rank;
        for (int i = 0; i < rank; i++) {
            int ia = i - (rank - x->rank), ib = i - (rank - y->rank);
            int64_t a = ia >= 0 ? x->shape[ia] : 1, b = ib >= 0 ? y->shape[ib] : 1;
            if (a != b && a != 1 && b != 1)
                return BAD("node '%s': shapes do not broadcast", op->name);
            s[i] = a == 1 ? b : a;
        }
        /* numpy broadcasting within one image (exec adds the batch as an outer dimension) */
        if (is_const(g, op->in[0]) && is_const(g, op->in[1]))
            return BAD("node '%s': binary operator on two constants", op->name);
        if (rank >= IR_MAX_RANK)
            return error_set(err, IMGSIM_E_UNSUPPORTED,
                             "node '%s': binary operator of rank %d", op->name, rank);
        break;
    }
    case IR_MEAN: {
        if (x->rank != 4 || op->nin < 2 || !is_const(g, op->in[1]))
            return BAD("node '%s': MEAN needs 4-d input and constant axes", op->name);
        const ir_tensor *ax = &g->t[op->in[1]];
        int mask = 0;
        size_t n = ax->nbytes / 4;
        if (ax->dtype != IR_I32 || n == 0)
            return BAD("node '%s': MEAN axes must be int32", op->name);
        for (size_t i = 0; i < n; i++) {
            int32_t a;
            memcpy(&a, ax->data + 4 * i, 4);
            if (a < 0)
                a += 4;
            if (a < 0 || a > 3)
                return BAD("node '%s': MEAN axis out of range", op->name);
            mask |= 1 << a;
        }
        if (mask != 6)
            return error_set(err, IMGSIM_E_UNSUPPORTED,
                             "node '%s': MEAN over axes other than height and width", op->name);
        s[0] = x->shape[0];
        if (op->keep_dims) {
            s[1] = s[2] = 1;
            s[3] = x->shape[3];
            rank = 4;
        } else {
            s[1] = x->shape[3];
            rank = 2;
        }
        break;
    }
    case IR_RESHAPE: {
        /* Target: SQUEEZE's dimensions, else the constant new-shape input, else the stored
         * output shape; one -1 is resolved from the element count. */
        const ir_tensor *y = &g->t[op->out];
        if (op->squeeze) {
            for (int i = 0; i < x->rank; i++)
                if (!(x->shape[i] == 1 && (op->axis == 0 || (op->axis >> i & 1))))
                    s[rank++] = x->shape[i];
        } else if (op->nin >= 2 && is_const(g, op->in[1]) && g->t[op->in[1]].dtype == IR_I32) {
            const ir_tensor *ns = &g->t[op->in[1]];
            size_t n = ns->nbytes / 4;
            if (n > IR_MAX_RANK)
                return BAD("node '%s': reshape rank too large", op->name);
            for (size_t i = 0; i < n; i++) {
                int32_t d;
                memcpy(&d, ns->data + 4 * i, 4);
                s[i] = d;
            }
            rank = (int)n;
        } else if (y->rank >= 0) {
            rank = y->rank;
            memcpy(s, y->shape, sizeof(int64_t) * (size_t)rank);
        } else {
            return BAD("node '%s': reshape target unknown", op->name);
        }
        int neg = -1;
        int64_t prod = 1;
        for (int i = 0; i < rank; i++) {
            if (s[i] == -1 && neg < 0)
                neg = i;
            else if (s[i] < 1)
                return BAD("node '%s': bad reshape dimension", op->name);
            else
                prod *= s[i];
        }
        if (neg >= 0)
            s[neg] = ir_numel(x) / prod;
        int64_t p = 1;
        for (int i = 0; i < rank; i++)
            p *= s[i];
        if (p != ir_numel(x))
            return BAD("node '%s': reshape changes the element count", op->name);
        break;
    }
    case IR_CONCAT: {
        int axis = op->axis < 0 ? op->axis + x->rank : op->axis;
        if (axis < 0 || axis >= x->rank)
            return BAD("node '%s': concat axis out of range", op->name);
        rank = x->rank;
        memcpy(s, x->shape, sizeof(int64_t) * (size_t)rank);
        for (int i = 1; i < op->nin; i++) {
            if (!known(g, op->in[i]) || g->t[op->in[i]].rank != rank)
                return BAD("node '%s': concat inputs differ in rank", op->name);
            for (int d = 0; d < rank; d++)
                if (d != axis && g->t[op->in[i]].shape[d] != s[d])
                    return BAD("node '%s': concat inputs differ in shape", op->name);
            s[axis] += g->t[op->in[i]].shape[axis];
        }
        op->axis = axis;
        break;
    }
    case IR_CLAMP:
        if (!(op->lo <= op->hi))
            return BAD("node '%s': clamp bounds %g > %g", op->name, (double)op->lo,
                       (double)op->hi);
        rank = x->rank;
        memcpy(s, x->shape, sizeof(int64_t) * (size_t)rank);
        break;
    case IR_LEAKY_RELU:
    case IR_HARD_SIGMOID:
        if (!isfinite(op->alpha) || (op->kind == IR_HARD_SIGMOID && !isfinite(op->beta)))
            return BAD("node '%s': %s parameters not finite", op->name, ir_op_name(op->kind));
        rank = x->rank;
        memcpy(s, x->shape, sizeof(int64_t) * (size_t)rank);
        break;
    default: /* element-wise: same shape */
        rank = x->rank;
        memcpy(s, x->shape, sizeof(int64_t) * (size_t)rank);
        break;
    }
    for (int i = 0; i < rank; i++)
        if (s[i] < 1 || s[i] > (1 << 24))
            return BAD("node '%s': inferred dimension out of range", op->name);
    return settle(g, op->out, rank, s, op, err);
}

imgsim_status ir_infer_shapes(ir_graph *g, imgsim_error *err)
{
    const ir_tensor *in = &g->t[g->input];
    if (in->rank != 4 || in->shape[3] != 3 || in->shape[1] < 8 || in->shape[2] < 8)
        return error_set(err, IMGSIM_E_UNSUPPORTED,
                         "model input must be an NHWC image with 3 channels");
    /* Constants must hold exactly the bytes their shape and type say. */
    for (int i = 0; i < g->nt; i++) {
        ir_tensor *t = &g->t[i];
        if (!t->data)
            continue;
        if (t->rank < 0 || ir_dtype_size(t->dtype) == 0 ||
            (size_t)ir_numel(t) * ir_dtype_size(t->dtype) != t->nbytes)
            return BAD("corrupt model file: constant '%s' has %zu bytes for its shape", t->name,
                       t->nbytes);
    }
    for (int i = 0; i < g->nops; i++) {
        imgsim_status st = infer_op(g, &g->ops[i], err);
        if (st != IMGSIM_OK)
            return st;
    }
    if (!known(g, g->output))
        return BAD("model output shape unknown");
    return IMGSIM_OK;
}

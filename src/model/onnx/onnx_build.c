/*
 * onnx_build.c — adding IR tensors and operators for the ONNX front-end, and the NCHW ->
 * NHWC bookkeeping of values: an NCHW activation [N,C,H,W] is the IR tensor [N,H,W,C], and
 * a constant broadcast against it is padded to rank 4 and transposed the same way.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "model/onnx/onnx_reader.h"

ir_dtype ox_ir_dtype(int onnx_dtype)
{
    switch (onnx_dtype) {
    case OX_FLOAT: return IR_F32;
    case OX_UINT8: return IR_U8;
    case OX_INT8: return IR_I8;
    case OX_INT32: return IR_I32;
    case OX_INT64: return IR_I64;
    case OX_FLOAT16: return IR_F16;
    default: return IR_OTHER;
    }
}

static int onnx_dtype_of(ir_dtype d)
{
    switch (d) {
    case IR_F32: return OX_FLOAT;
    case IR_U8: return OX_UINT8;
    case IR_I8: return OX_INT8;
    case IR_I32: return OX_INT32;
    case IR_I64: return OX_INT64;
    case IR_F16: return OX_FLOAT16;
    default: return 0;
    }
}

void ox_ir_shape(ox_layout layout, int rank, const int64_t *dims, int64_t *out)
{
    if (layout == OX_NCHW && rank == 4) {
        int64_t n = dims[0], ch = dims[1], h = dims[2], w = dims[3];
        out[0] = n;
        out[1] = h;
        out[2] = w;
        out[3] = ch;
        return;
    }
    for (int i = 0; i < rank; i++)
        out[i] = dims[i];
}

int ox_tensor(ox_ctx *c, const char *name, const char *suffix, ir_dtype dt, int rank,
              const int64_t *shape)
{
    ir_graph *g = c->g;
    if (rank > IR_MAX_RANK) {
        error_set(c->err, IMGSIM_E_UNSUPPORTED, "ONNX tensor '%s' has rank %d", name, rank);
        return -1;
    }
    if (g->nt == INT_MAX) {
        error_set(c->err, IMGSIM_E_MODEL, "ONNX model has too many tensors");
        return -1;
    }
    if (grow_array((void **)&g->t, &c->tcap, (size_t)g->nt + 1, sizeof *g->t, 256)) {
        ox_nomem(c);
        return -1;
    }
    size_t nl = strlen(name), sl = suffix ? strlen(suffix) : 0;
    char *s = malloc(nl + sl + 1);
    if (!s) {
        ox_nomem(c);
        return -1;
    }
    memcpy(s, name, nl);
    if (sl)
        memcpy(s + nl, suffix, sl);
    s[nl + sl] = 0;
    ir_tensor *t = &g->t[g->nt];
    memset(t, 0, sizeof *t);
    t->name = s;
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->shape[i] = shape[i];
    return g->nt++;
}

int ox_tensor_const(ox_ctx *c, const char *name, const char *suffix, ir_dtype dt, int rank,
                    const int64_t *shape, const void *data, size_t nbytes, void *owned)
{
    int t = ox_tensor(c, name, suffix, dt, rank, shape);
    if (t < 0) {
        free(owned);
        return -1;
    }
    c->g->t[t].data = data;
    c->g->t[t].nbytes = nbytes;
    c->g->t[t].owned = owned;
    return t;
}

int ox_tensor_of(ox_ctx *c, ox_value *v, ir_dtype dt)
{
    if (v->ir_const >= 0 && c->g->t[v->ir_const].dtype == dt)
        return v->ir_const;
    if (ox_ir_dtype(v->dtype) != dt || ox_numel(v) * (int64_t)ox_dtype_size(v->dtype) !=
                                           (int64_t)v->nbytes) {
        error_set(c->err, IMGSIM_E_UNSUPPORTED, "ONNX constant '%s' has type %d, not %s",
                  v->name, v->dtype, ir_dtype_name(dt));
        return -1;
    }
    int t = ox_tensor(c, v->name, NULL, dt, v->rank, v->dims);
    if (t < 0)
        return -1;
    c->g->t[t].data = v->data;
    c->g->t[t].nbytes = v->nbytes;
    c->g->t[t].owned = v->owned; /* the IR tensor now keeps the data alive */
    v->owned = NULL;
    v->ir_const = t;
    return t;
}

int ox_op(ox_ctx *c, ir_op_kind k, int out, int nin, const int *in)
{
    ir_graph *g = c->g;
    if (g->nops == INT_MAX) {
        error_set(c->err, IMGSIM_E_MODEL, "ONNX model has too many operators");
        return -1;
    }
    if (grow_array((void **)&g->ops, &c->opcap, (size_t)g->nops + 1, sizeof *g->ops, 128)) {
        ox_nomem(c);
        return -1;
    }
    ir_op *op = &g->ops[g->nops];
    memset(op, 0, sizeof *op);
    op->kind = k;
    op->out = out;
    op->nin = nin;
    for (int i = 0; i < IR_MAX_IN; i++)
        op->in[i] = i < nin ? in[i] : -1;
    op->stride_h = op->stride_w = op->dil_h = op->dil_w = 1;
    op->depth_mult = 1;
    op->beta = 1.0f;
    op->lo = -INFINITY;
    op->hi = INFINITY;
    op->name = g->t[out].name;
    return g->nops++;
}

int ox_axes_hw(ox_ctx *c)
{
    if (c->axes_hw >= 0)
        return c->axes_hw;
    int32_t *a = malloc(2 * sizeof *a);
    if (!a) {
        ox_nomem(c);
        return -1;
    }
    a[0] = 1;
    a[1] = 2;
    int64_t s = 2;
    c->axes_hw = ox_tensor_const(c, "onnx/spatial_axes", NULL, IR_I32, 1, &s, a, sizeof(int32_t) * 2, a);
    return c->axes_hw;
}

imgsim_status ox_act_in(ox_ctx *c, const ox_node *n, int k, int *vi)
{
    if (k >= n->nin || n->in[k] < 0)
        return ox_fail(c, n, IMGSIM_E_MODEL, "input %d is missing", k + 1);
    const ox_value *v = &c->v[n->in[k]];
    if (v->is_const)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input %d ('%s') is a constant", k + 1,
                       v->name);
    if (v->ir < 0 || v->rank < 0)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input %d ('%s') is not computed", k + 1,
                       v->name);
    static const char *const flat_ok[] = {"Gemm", "MatMul", "QLinearMatMul", "Identity",
                                          "Dropout", "Flatten", "Reshape"};
    int ok = v->layout != OX_CHW_FLAT;
    for (size_t i = 0; !ok && i < sizeof flat_ok / sizeof *flat_ok; i++)
        ok = !strcmp(n->op, flat_ok[i]);
    if (!ok)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED,
                       "input '%s' is an NCHW feature map flattened with spatial size > 1; "
                       "only Gemm/MatMul may read it", v->name);
    *vi = n->in[k];
    return IMGSIM_OK;
}

imgsim_status ox_act_out(ox_ctx *c, const ox_node *n, int vi, ir_dtype dt, ox_layout layout,
                         int rank, const int64_t *dims, int *ir)
{
    ox_value *v = &c->v[vi];
    if (rank < 0 || rank > IR_MAX_RANK)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "output '%s' has rank %d", v->name, rank);
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 1 || dims[i] > (1 << 24))
            return ox_fail(c, n, IMGSIM_E_MODEL, "output '%s' has dimension %lld", v->name,
                           (long long)dims[i]);
        numel *= dims[i];
        if (numel > OX_MAX_ACT)
            return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "output '%s' is too large", v->name);
    }
    if (layout == OX_NCHW && rank != 4)
        layout = OX_PLAIN;
    int64_t s[IR_MAX_RANK];
    ox_ir_shape(layout, rank, dims, s);
    int t = ox_tensor(c, v->name, NULL, dt, rank, s);
    if (t < 0)
        return c->err->code;
    v->ir = t;
    v->layout = layout;
    v->dtype = onnx_dtype_of(dt);
    v->rank = rank;
    for (int i = 0; i < rank; i++)
        v->dims[i] = dims[i];
    v->defined = 1;
    *ir = t;
    return IMGSIM_OK;
}

imgsim_status ox_broadcast_const(ox_ctx *c, const ox_node *n, ox_value *v, int act_rank,
                                 ox_layout layout, ir_dtype dt, int *ir)
{
    int64_t numel = ox_numel(v);
    if (v->rank > act_rank && numel != 1)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED,
                       "constant '%s' has a higher rank than the tensor it is applied to",
                       v->name);
    if (layout == OX_CHW_FLAT && numel != 1)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED,
                       "constant '%s' applied to a flattened NCHW feature map", v->name);
    int need_nhwc = layout == OX_NCHW && act_rank == 4 && numel != 1;
    if (dt == IR_U8 && v->dtype != OX_UINT8)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "constant '%s' must be uint8", v->name);
    if (dt == IR_U8 && !need_nhwc) {
        *ir = ox_tensor_of(c, v, IR_U8);
        return *ir < 0 ? c->err->code : IMGSIM_OK;
    }
    if (dt == IR_F32 && v->dtype == OX_FLOAT && !need_nhwc) {
        *ir = ox_tensor_of(c, v, IR_F32);
        return *ir < 0 ? c->err->code : IMGSIM_OK;
    }
    /* converted and/or transposed copy */
    uint8_t *src;
    size_t count, es = dt == IR_U8 ? 1 : 4;
    imgsim_status st;
    if (dt == IR_U8) {
        if (v->nbytes != (size_t)numel)
            return ox_fail(c, n, IMGSIM_E_MODEL, "constant '%s' is unusable", v->name);
        src = ox_alloc(v->nbytes);
        if (!src)
            return ox_nomem(c);
        if (v->nbytes)
            memcpy(src, v->data, v->nbytes);
        count = v->nbytes;
    } else if ((st = ox_to_f32(c, n, v, (float **)(void *)&src, &count)) != IMGSIM_OK) {
        return st;
    }
    int rank = v->rank;
    int64_t dims[IR_MAX_RANK];
    for (int i = 0; i < rank; i++)
        dims[i] = v->dims[i];
    if (need_nhwc) {
        int64_t d4[4] = {1, 1, 1, 1};
        for (int i = 0; i < rank; i++)
            d4[4 - rank + i] = dims[i];
        uint8_t *t = ox_alloc(count * es);
        if (!t) {
            free(src);
            return ox_nomem(c);
        }
        static const int perm[4] = {0, 2, 3, 1};
        ox_transpose(src, t, 4, d4, perm, es);
        free(src);
        src = t;
        rank = 4;
        ox_ir_shape(OX_NCHW, 4, d4, dims);
    }
    *ir = ox_tensor_const(c, v->name, need_nhwc ? ":nhwc" : ":f32", dt, rank, dims, src,
                          count * es, src);
    return *ir < 0 ? c->err->code : IMGSIM_OK;
}

int ox_sole_reader(const ox_ctx *c, int vi)
{
    const ox_value *v = &c->v[vi];
    return v->nreaders == 1 && !v->is_output ? v->reader : -1;
}

int ox_fusable_node(const ox_ctx *c, int r)
{
    const ox_node *n = &c->nodes[r];
    if (n->skip)
        return 0;
    for (int k = 0; k < n->nout; k++)
        if (n->out[k] >= 0 && c->v[n->out[k]].defined)
            return 0;
    return 1;
}

void ox_copy_quant(ox_ctx *c, int to, int from)
{
    ir_tensor *a = &c->g->t[to];
    const ir_tensor *b = &c->g->t[from];
    a->quantized = b->quantized;
    a->scale = b->scale;
    a->zero_point = b->zero_point;
}

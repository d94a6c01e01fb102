/*
 * onnx_shape.c — the shape rules of ONNX's reshape family (Reshape with 0 / -1, Flatten,
 * Squeeze, Unsqueeze) and where their axes come from (attribute or input, by opset), shared
 * by constant folding (onnx_fold.c) and the lowering of activations (onnx_ops.c).
 */
#include <stdlib.h>
#include <string.h>

#include "model/onnx/onnx_reader.h"

int ox_reshape_dims(int rank, const int64_t *dims, const int64_t *target, int tn, int allowzero,
                    int64_t *out)
{
    if (tn < 0 || tn > IR_MAX_RANK)
        return -1;
    int64_t total = 1, known = 1;
    for (int i = 0; i < rank; i++)
        total *= dims[i];
    int neg = -1;
    for (int i = 0; i < tn; i++) {
        int64_t d = target[i];
        if (d == 0 && !allowzero) {
            if (i >= rank)
                return -1;
            d = dims[i];
        }
        if (d == -1) {
            if (neg >= 0)
                return -1;
            neg = i;
            out[i] = 1;
            continue;
        }
        if (d < 0 || d > ((int64_t)1 << 32))
            return -1;
        out[i] = d;
        known *= d;
        if (known > ((int64_t)1 << 40))
            return -1;
    }
    if (neg >= 0) {
        if (known == 0 || total % known != 0)
            return -1;
        out[neg] = total / known;
    } else if (known != total) {
        return -1;
    }
    return tn;
}

int ox_flatten_dims(int rank, const int64_t *dims, int64_t axis, int64_t *out)
{
    if (axis < 0)
        axis += rank;
    if (axis < 0 || axis > rank)
        return -1;
    out[0] = out[1] = 1;
    for (int i = 0; i < rank; i++)
        out[i < axis ? 0 : 1] *= dims[i];
    return 2;
}

int ox_squeeze_dims(int rank, const int64_t *dims, const int64_t *axes, int na, int64_t *out)
{
    int drop[IR_MAX_RANK] = {0};
    for (int k = 0; k < na; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + rank : axes[k];
        if (a < 0 || a >= rank || dims[a] != 1)
            return -1;
        drop[a] = 1;
    }
    int r = 0;
    for (int i = 0; i < rank; i++)
        if (!(na > 0 ? drop[i] : dims[i] == 1))
            out[r++] = dims[i];
    return r;
}

int ox_unsqueeze_dims(int rank, const int64_t *dims, const int64_t *axes, int na, int64_t *out)
{
    int r = rank + na;
    if (na < 0 || r > IR_MAX_RANK)
        return -1;
    int ins[IR_MAX_RANK] = {0};
    for (int k = 0; k < na; k++) {
        int64_t a = axes[k] < 0 ? axes[k] + r : axes[k];
        if (a < 0 || a >= r || ins[a])
            return -1;
        ins[a] = 1;
    }
    for (int i = 0, j = 0; i < r; i++)
        out[i] = ins[i] ? 1 : dims[j++];
    return r;
}

imgsim_status ox_axes(ox_ctx *c, const ox_node *n, const char *attr, int k, int64_t from,
                      int64_t *axes, int *count)
{
    imgsim_status st;
    if (c->opset < from)
        return ox_attr_ints(c, n, attr, axes, IR_MAX_RANK, count);
    *count = -1;
    int vi = ox_const_in(c, n, k, 0, &st);
    if (st != IMGSIM_OK || vi < 0)
        return st;
    int64_t *a;
    size_t na;
    if ((st = ox_to_i64(c, n, &c->v[vi], &a, &na)) != IMGSIM_OK)
        return st;
    if (na > IR_MAX_RANK) {
        free(a);
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "too many axes");
    }
    memcpy(axes, a, sizeof(int64_t) * na);
    free(a);
    *count = (int)na;
    return IMGSIM_OK;
}

int ox_reshape_target(ox_ctx *c, const ox_node *n, int rank, const int64_t *dims, int64_t *out,
                      imgsim_status *st)
{
    int r = -1;
    *st = IMGSIM_OK;
    if (!strcmp(n->op, "Flatten")) {
        int64_t axis;
        if ((*st = ox_attr_int(c, n, "axis", 1, &axis)) != IMGSIM_OK)
            return -1;
        r = ox_flatten_dims(rank, dims, axis, out);
    } else if (!strcmp(n->op, "Reshape")) {
        int64_t allowzero, *t;
        size_t tn;
        int vi = ox_const_in(c, n, 1, 1, st);
        if (vi < 0 || (*st = ox_attr_int(c, n, "allowzero", 0, &allowzero)) != IMGSIM_OK ||
            (*st = ox_to_i64(c, n, &c->v[vi], &t, &tn)) != IMGSIM_OK)
            return -1;
        r = tn <= IR_MAX_RANK ? ox_reshape_dims(rank, dims, t, (int)tn, allowzero != 0, out) : -1;
        free(t);
    } else {
        int64_t axes[IR_MAX_RANK];
        int na;
        int sq = !strcmp(n->op, "Squeeze");
        if ((*st = ox_axes(c, n, "axes", 1, 13, axes, &na)) != IMGSIM_OK)
            return -1;
        if (!sq && na < 0) {
            *st = ox_fail(c, n, IMGSIM_E_MODEL, "no axes");
            return -1;
        }
        r = sq ? ox_squeeze_dims(rank, dims, axes, na < 0 ? 0 : na, out)
               : ox_unsqueeze_dims(rank, dims, axes, na, out);
    }
    if (r < 0)
        *st = ox_fail(c, n, IMGSIM_E_MODEL, "the new shape does not fit the input");
    return r;
}

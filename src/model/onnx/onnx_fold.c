/*
 * onnx_fold.c — constant folding for the ONNX front-end. Exported models compute reshape
 * targets at run time (Shape -> Gather -> Unsqueeze -> Concat -> Reshape); with the input
 * size fixed, those chains are constants, and folding them here gives Reshape and Flatten
 * constant targets. Folded: Constant, Shape (of any value whose shape is known), and, when
 * all inputs are constants, Gather, Unsqueeze, Squeeze, Concat, Slice, Cast, Add, Sub, Mul,
 * Div, ConstantOfShape, Reshape, Flatten, Identity, Dropout, Transpose and DequantizeLinear
 * (weights stored quantized in QDQ models).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/onnx/onnx_reader.h"

#define NOT_FOLDABLE 0

/* ------------------------------------------------------------------ results */

/* A folded result's buffer, within the budget of OX_FOLD_BUDGET bytes for all of them;
 * NULL with the error set. */
static void *fold_alloc(ox_ctx *c, size_t bytes)
{
    if (bytes > OX_FOLD_BUDGET - c->fold_bytes) {
        error_set(c->err, IMGSIM_E_UNSUPPORTED,
                  "ONNX constant folding would need more than %zu MB", OX_FOLD_BUDGET >> 20);
        return NULL;
    }
    void *p = ox_alloc(bytes);
    if (!p)
        ox_nomem(c);
    else
        c->fold_bytes += bytes;
    return p;
}


static int64_t count_of(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    return n;
}

/* Output 0 of `n` becomes a constant owning `data`. */
static int result(ox_ctx *c, ox_node *n, int dtype, int rank, const int64_t *dims, void *data,
                  size_t nbytes, imgsim_status *st)
{
    ox_set_const(c, &c->v[n->out[0]], dtype, rank, dims, data, nbytes);
    *st = IMGSIM_OK;
    return 1;
}

/* Output 0 of `n` is input constant `src` with new dims: shares file-backed data, else copies. */
static int same_data(ox_ctx *c, ox_node *n, const ox_value *src, int rank, const int64_t *dims,
                     imgsim_status *st)
{
    ox_value *v = &c->v[n->out[0]];
    int in_file = src->nbytes == 0 ||
                  (src->data >= c->file && (size_t)(src->data - c->file) <= c->file_len &&
                   src->nbytes <= c->file_len - (size_t)(src->data - c->file));
    if (in_file) {
        ox_set_const(c, v, src->dtype, rank, dims, NULL, src->nbytes);
        v->owned = NULL;
        v->data = src->data;
        return 1;
    }
    uint8_t *d = fold_alloc(c, src->nbytes);
    if (!d) {
        *st = c->err->code;
        return -1;
    }
    memcpy(d, src->data, src->nbytes);
    return result(c, n, src->dtype, rank, dims, d, src->nbytes, st);
}

static int fail(imgsim_status *st, imgsim_status s)
{
    *st = s;
    return -1;
}

static int check_const(ox_ctx *c, ox_node *n, const ox_value *v, imgsim_status *st)
{
    int64_t k = ox_numel(v);
    if (k < 0 || ox_dtype_size(v->dtype) == 0 || (size_t)k * ox_dtype_size(v->dtype) != v->nbytes)
        return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "constant '%s' is unusable", v->name));
    return 0;
}

/* ------------------------------------------------------------------ operators */

static int fold_constant(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    ox_attr a;
    ox_value *v = &c->v[n->out[0]];
    int r;
    if ((r = ox_attr_find(n, "value", &a)) > 0) {
        if (a.type != OX_A_TENSOR)
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "attribute 'value' is not a tensor"));
        *st = ox_read_tensor(c, a.t, v, "Constant");
        return *st == IMGSIM_OK ? 1 : -1;
    }
    if (r < 0)
        return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "corrupt attributes"));
    int64_t one = 1;
    if ((r = ox_attr_find(n, "value_float", &a)) > 0 || (r = ox_attr_find(n, "value_int", &a)) > 0) {
        if (a.type != OX_A_FLOAT && a.type != OX_A_INT)
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "bad scalar attribute"));
        void *d = malloc(8);
        if (!d)
            return fail(st, ox_nomem(c));
        if (a.type == OX_A_FLOAT)
            memcpy(d, &a.f, 4);
        else
            memcpy(d, &a.i, 8);
        return result(c, n, a.type == OX_A_FLOAT ? OX_FLOAT : OX_INT64, 0, &one, d,
                      a.type == OX_A_FLOAT ? 4 : 8, st);
    }
    if ((r = ox_attr_find(n, "value_floats", &a)) > 0 || (r = ox_attr_find(n, "value_ints", &a)) > 0) {
        int fl = a.type == OX_A_FLOATS;
        size_t k;
        if ((a.type != OX_A_FLOATS && a.type != OX_A_INTS) ||
            pb_count(a.msg, fl ? 7 : 8, fl ? PB_K_F32 : PB_K_VARINT, &k) < 0 || k > OX_MAX_FOLD)
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "bad list attribute"));
        void *d = fold_alloc(c, k * (fl ? 4 : 8));
        if (!d)
            return fail(st, c->err->code);
        if ((fl ? pb_get_f32(a.msg, 7, d, k) : pb_get_i64(a.msg, 8, d, k)) < 0) {
            free(d);
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "bad list attribute"));
        }
        int64_t dim = (int64_t)k;
        return result(c, n, fl ? OX_FLOAT : OX_INT64, 1, &dim, d, k * (fl ? 4 : 8), st);
    }
    return fail(st, ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "only tensor and number values are supported"));
}

static int fold_shape(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    const ox_value *x = &c->v[n->in[0]];
    if (x->rank < 0)
        return NOT_FOLDABLE;
    for (int i = 0; i < x->rank; i++)
        if (x->dims[i] < 0)
            return NOT_FOLDABLE;
    int64_t start, end;
    if ((*st = ox_attr_int(c, n, "start", 0, &start)) != IMGSIM_OK ||
        (*st = ox_attr_int(c, n, "end", x->rank, &end)) != IMGSIM_OK)
        return -1;
    if (start < 0)
        start += x->rank;
    if (end < 0)
        end += x->rank;
    start = start < 0 ? 0 : start > x->rank ? x->rank : start;
    end = end < start ? start : end > x->rank ? x->rank : end;
    int64_t k = end - start;
    int64_t *d = malloc(sizeof(int64_t) * (size_t)(k ? k : 1));
    if (!d)
        return fail(st, ox_nomem(c));
    for (int64_t i = 0; i < k; i++)
        d[i] = x->dims[start + i];
    return result(c, n, OX_INT64, 1, &k, d, sizeof(int64_t) * (size_t)k, st);
}

static int fold_gather(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    const ox_value *x = &c->v[n->in[0]];
    int64_t axis, *idx;
    size_t ni;
    if ((*st = ox_attr_int(c, n, "axis", 0, &axis)) != IMGSIM_OK)
        return -1;
    if (x->rank < 1 || (axis < 0 ? axis + x->rank : axis) < 0 || (axis < 0 ? axis + x->rank : axis) >= x->rank)
        return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "axis out of range"));
    if (axis < 0)
        axis += x->rank;
    const ox_value *iv = &c->v[n->in[1]];
    if ((*st = ox_to_i64(c, n, iv, &idx, &ni)) != IMGSIM_OK)
        return -1;
    int rank = x->rank - 1 + iv->rank;
    if (rank > IR_MAX_RANK) {
        free(idx);
        return fail(st, ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "result rank too large"));
    }
    int64_t dims[IR_MAX_RANK], outer = 1, inner = 1, len = x->dims[axis];
    int r = 0;
    for (int i = 0; i < axis; i++)
        outer *= dims[r++] = x->dims[i];
    for (int i = 0; i < iv->rank; i++)
        dims[r++] = iv->dims[i];
    for (int i = (int)axis + 1; i < x->rank; i++)
        inner *= dims[r++] = x->dims[i];
    size_t es = ox_dtype_size(x->dtype);
    int64_t total = outer * (int64_t)ni * inner;
    if (check_const(c, n, x, st) < 0 || total > OX_MAX_FOLD) {
        free(idx);
        if (total > OX_MAX_FOLD)
            *st = ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "result too large to fold");
        return -1;
    }
    uint8_t *d = fold_alloc(c, (size_t)total * es);
    if (!d) {
        free(idx);
        return fail(st, c->err->code);
    }
    for (size_t k = 0; k < ni; k++) {
        int64_t j = idx[k] < 0 ? idx[k] + len : idx[k];
        if (j < 0 || j >= len) {
            long long bad = (long long)idx[k];
            free(idx);
            free(d);
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "index %lld out of range", bad));
        }
        for (int64_t o = 0; o < outer; o++)
            memcpy(d + ((size_t)(o * (int64_t)ni + (int64_t)k) * (size_t)inner) * es,
                   x->data + ((size_t)(o * len + j) * (size_t)inner) * es, (size_t)inner * es);
    }
    free(idx);
    return result(c, n, x->dtype, rank, dims, d, (size_t)total * es, st);
}

static int fold_reshape_like(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    const ox_value *x = &c->v[n->in[0]];
    int64_t dims[IR_MAX_RANK];
    if (check_const(c, n, x, st) < 0)
        return -1;
    int r = x->rank;
    if (strcmp(n->op, "Identity") && strcmp(n->op, "Dropout")) {
        r = ox_reshape_target(c, n, x->rank, x->dims, dims, st);
        if (r < 0)
            return -1;
    } else {
        memcpy(dims, x->dims, sizeof(int64_t) * (size_t)r);
    }
    return same_data(c, n, x, r, dims, st);
}

static int fold_concat(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    const ox_value *x0 = &c->v[n->in[0]];
    int64_t axis;
    if ((*st = ox_attr_int(c, n, "axis", 0, &axis)) != IMGSIM_OK)
        return -1;
    if (axis < 0)
        axis += x0->rank;
    if (axis < 0 || axis >= x0->rank)
        return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "axis out of range"));
    int64_t dims[IR_MAX_RANK];
    memcpy(dims, x0->dims, sizeof(int64_t) * (size_t)x0->rank);
    dims[axis] = 0;
    for (int k = 0; k < n->nin; k++) {
        if (n->in[k] < 0)
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "empty input"));
        const ox_value *x = &c->v[n->in[k]];
        if (check_const(c, n, x, st) < 0)
            return -1;
        if (x->rank != x0->rank || x->dtype != x0->dtype)
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "inputs differ in rank or type"));
        for (int i = 0; i < x->rank; i++)
            if (i != axis && x->dims[i] != x0->dims[i])
                return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "inputs differ in shape"));
        dims[axis] += x->dims[axis];
    }
    size_t es = ox_dtype_size(x0->dtype);
    int64_t outer = 1, inner = 1, total = count_of(x0->rank, dims);
    for (int i = 0; i < axis; i++)
        outer *= dims[i];
    for (int i = (int)axis + 1; i < x0->rank; i++)
        inner *= dims[i];
    uint8_t *d = fold_alloc(c, (size_t)total * es);
    if (!d)
        return fail(st, c->err->code);
    size_t at = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n->nin; k++) {
            const ox_value *x = &c->v[n->in[k]];
            size_t chunk = (size_t)(x->dims[axis] * inner) * es;
            memcpy(d + at, x->data + (size_t)o * chunk, chunk);
            at += chunk;
        }
    return result(c, n, x0->dtype, x0->rank, dims, d, (size_t)total * es, st);
}

static int fold_slice(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    const ox_value *x = &c->v[n->in[0]];
    int64_t *arr[4] = {NULL, NULL, NULL, NULL};
    int64_t tmp[3][IR_MAX_RANK];
    size_t cnt[4] = {0, 0, 0, 0};
    int ok = 1;
    if (check_const(c, n, x, st) < 0)
        return -1;
    if (c->opset < 10) {
        static const char *const names[3] = {"starts", "ends", "axes"};
        for (int k = 0; k < 3 && ok == 1; k++) {
            int got;
            if ((*st = ox_attr_ints(c, n, names[k], tmp[k], IR_MAX_RANK, &got)) != IMGSIM_OK) {
                ok = -1;
            } else if (got < 0) {
                ok = k == 2;
            } else if (!(arr[k] = malloc(sizeof(int64_t) * (size_t)(got ? got : 1)))) {
                *st = ox_nomem(c);
                ok = -1;
            } else {
                memcpy(arr[k], tmp[k], sizeof(int64_t) * (size_t)got);
                cnt[k] = (size_t)got;
            }
        }
    } else {
        for (int k = 0; k < 4 && ok == 1; k++) {
            if (k + 1 >= n->nin || n->in[k + 1] < 0) {
                ok = k >= 2;
                break;
            }
            if ((*st = ox_to_i64(c, n, &c->v[n->in[k + 1]], &arr[k], &cnt[k])) != IMGSIM_OK)
                ok = -1;
        }
    }
    int64_t start[IR_MAX_RANK], step[IR_MAX_RANK], dims[IR_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        start[i] = 0;
        step[i] = 1;
        dims[i] = x->dims[i];
    }
    if (ok == 1 && (cnt[0] != cnt[1] || (arr[2] && cnt[2] != cnt[0]) || (arr[3] && cnt[3] != cnt[0]) ||
                    cnt[0] > (size_t)x->rank))
        ok = 0;
    int seen[IR_MAX_RANK] = {0};
    for (size_t k = 0; ok == 1 && k < cnt[0]; k++) {
        int64_t a = arr[2] ? arr[2][k] : (int64_t)k;
        if (a < 0)
            a += x->rank;
        int64_t s = arr[3] ? arr[3][k] : 1, len = x->dims[a < 0 || a >= x->rank ? 0 : a];
        if (a < 0 || a >= x->rank || seen[a] || s == 0) {
            ok = 0;
            break;
        }
        s = s > ((int64_t)1 << 40) ? (int64_t)1 << 40 : s < -((int64_t)1 << 40) ? -((int64_t)1 << 40) : s;
        seen[a] = 1;
        int64_t b = arr[0][k], e = arr[1][k];
        if (b < 0)
            b = b < -len ? 0 : b + len;
        if (e < 0)
            e = e < -len ? -1 : e + len;
        if (s > 0) {
            b = b > len ? len : b;
            e = e < 0 ? 0 : e > len ? len : e;
            dims[a] = e > b ? (e - b + s - 1) / s : 0;
        } else {
            b = b > len - 1 ? len - 1 : b;
            e = e > len - 1 ? len - 1 : e;
            dims[a] = b > e ? (b - e + (-s) - 1) / (-s) : 0;
        }
        start[a] = b;
        step[a] = s;
    }
    for (int k = 0; k < 4; k++)
        free(arr[k]);
    if (ok < 0)
        return -1;
    if (!ok)
        return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "bad starts, ends, axes or steps"));
    size_t es = ox_dtype_size(x->dtype);
    int64_t total = count_of(x->rank, dims), sstride[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
    int64_t m = 1;
    for (int i = x->rank - 1; i >= 0; i--) {
        sstride[i] = m;
        m *= x->dims[i];
    }
    uint8_t *d = fold_alloc(c, (size_t)total * es);
    if (!d)
        return fail(st, c->err->code);
    for (int64_t k = 0; k < total; k++) {
        int64_t s = 0;
        for (int i = 0; i < x->rank; i++)
            s += (start[i] + idx[i] * step[i]) * sstride[i];
        memcpy(d + (size_t)k * es, x->data + (size_t)s * es, es);
        for (int i = x->rank - 1; i >= 0; i--) {
            if (++idx[i] < dims[i])
                break;
            idx[i] = 0;
        }
    }
    return result(c, n, x->dtype, x->rank, dims, d, (size_t)total * es, st);
}

static int is_int_type(int t)
{
    return t == OX_INT64 || t == OX_INT32 || t == OX_INT16 || t == OX_INT8 || t == OX_UINT8 ||
           t == OX_UINT16 || t == OX_UINT32 || t == OX_UINT64 || t == OX_BOOL;
}

/* Store number `i` / `f` as element k of a `to`-typed array. */
static void store(uint8_t *d, size_t k, int to, int64_t i, double f, int as_int)
{
    switch (to) {
    case OX_FLOAT: { float x = as_int ? (float)i : (float)f; memcpy(d + 4 * k, &x, 4); break; }
    case OX_INT64: memcpy(d + 8 * k, &i, 8); break;
    case OX_INT32: { int32_t x = (int32_t)(uint32_t)(uint64_t)i; memcpy(d + 4 * k, &x, 4); break; }
    case OX_BOOL: d[k] = as_int ? i != 0 : f != 0; break;
    default: d[k] = (uint8_t)(uint64_t)i; break; /* UINT8, INT8 */
    }
}

static int fold_cast(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    const ox_value *x = &c->v[n->in[0]];
    int64_t to;
    if ((*st = ox_attr_int(c, n, "to", 0, &to)) != IMGSIM_OK || check_const(c, n, x, st) < 0)
        return -1;
    if (to != OX_FLOAT && to != OX_INT64 && to != OX_INT32 && to != OX_UINT8 && to != OX_INT8 &&
        to != OX_BOOL)
        return NOT_FOLDABLE;
    int64_t k = ox_numel(x);
    if (k > OX_MAX_FOLD)
        return NOT_FOLDABLE;
    size_t es = ox_dtype_size((int)to);
    uint8_t *d = fold_alloc(c, (size_t)k * es);
    if (!d)
        return fail(st, c->err->code);
    int64_t *iv = NULL;
    size_t ni;
    int as_int = is_int_type(x->dtype);
    if (as_int && (*st = ox_to_i64(c, n, x, &iv, &ni)) != IMGSIM_OK) {
        free(d);
        return -1;
    }
    for (int64_t j = 0; j < k; j++) {
        double f = as_int ? 0 : ox_elem(x, (size_t)j);
        if (!as_int && to != OX_FLOAT && to != OX_BOOL && !(f > -9.2e18 && f < 9.2e18)) {
            free(d);
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "value out of range"));
        }
        int64_t i = as_int ? iv[j] : (to != OX_FLOAT && to != OX_BOOL) ? (int64_t)f : 0;
        store(d, (size_t)j, (int)to, i, f, as_int);
    }
    free(iv);
    return result(c, n, (int)to, x->rank, x->dims, d, (size_t)k * es, st);
}

static int fold_arith(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    const ox_value *a = &c->v[n->in[0]], *b = &c->v[n->in[1]];
    if (n->nin != 2 || check_const(c, n, a, st) < 0 || check_const(c, n, b, st) < 0)
        return n->nin != 2 ? NOT_FOLDABLE : -1;
    if (a->dtype != b->dtype || (a->dtype != OX_INT64 && a->dtype != OX_INT32 && a->dtype != OX_FLOAT))
        return NOT_FOLDABLE;
    int rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t dims[IR_MAX_RANK], sa[IR_MAX_RANK], sb[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
    int64_t ma = 1, mb = 1;
    for (int i = rank - 1; i >= 0; i--) {
        int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "shapes do not broadcast"));
        dims[i] = da == 1 ? db : da;
        sa[i] = da == 1 ? 0 : ma;
        sb[i] = db == 1 ? 0 : mb;
        ma *= da;
        mb *= db;
    }
    int64_t total = count_of(rank, dims);
    if (total > OX_MAX_FOLD)
        return NOT_FOLDABLE;
    size_t es = ox_dtype_size(a->dtype);
    uint8_t *d = fold_alloc(c, (size_t)total * es);
    if (!d)
        return fail(st, c->err->code);
    char op = n->op[0]; /* A(dd) S(ub) M(ul) D(iv) */
    for (int64_t k = 0; k < total; k++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < rank; i++) {
            oa += idx[i] * sa[i];
            ob += idx[i] * sb[i];
        }
        if (a->dtype == OX_FLOAT) {
            float x, y, r;
            memcpy(&x, a->data + 4 * (size_t)oa, 4);
            memcpy(&y, b->data + 4 * (size_t)ob, 4);
            r = op == 'A' ? x + y : op == 'S' ? x - y : op == 'M' ? x * y : x / y;
            memcpy(d + 4 * (size_t)k, &r, 4);
        } else {
            int64_t x, y;
            if (a->dtype == OX_INT64) {
                memcpy(&x, a->data + 8 * (size_t)oa, 8);
                memcpy(&y, b->data + 8 * (size_t)ob, 8);
            } else {
                int32_t x32, y32;
                memcpy(&x32, a->data + 4 * (size_t)oa, 4);
                memcpy(&y32, b->data + 4 * (size_t)ob, 4);
                x = x32;
                y = y32;
            }
            uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
            int64_t r;
            if (op == 'D') {
                if (y == 0 || (x == INT64_MIN && y == -1)) {
                    free(d);
                    return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "integer division by zero"));
                }
                r = x / y;
            } else {
                r = (int64_t)(op == 'A' ? ux + uy : op == 'S' ? ux - uy : ux * uy);
            }
            store(d, (size_t)k, a->dtype, r, 0, 1);
        }
        for (int i = rank - 1; i >= 0; i--) {
            if (++idx[i] < dims[i])
                break;
            idx[i] = 0;
        }
    }
    return result(c, n, a->dtype, rank, dims, d, (size_t)total * es, st);
}

static int fold_constant_of_shape(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    int64_t *shape;
    size_t ns;
    if ((*st = ox_to_i64(c, n, &c->v[n->in[0]], &shape, &ns)) != IMGSIM_OK)
        return -1;
    int64_t total = 1;
    int bad = ns > IR_MAX_RANK;
    for (size_t i = 0; !bad && i < ns; i++) {
        bad = shape[i] < 0 || shape[i] > OX_MAX_FOLD;
        total *= bad ? 1 : shape[i];
        bad |= total > OX_MAX_FOLD;
    }
    int64_t dims[IR_MAX_RANK];
    for (size_t i = 0; !bad && i < ns; i++)
        dims[i] = shape[i];
    free(shape);
    if (bad)
        return fail(st, ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "bad or too large shape"));
    ox_value fill;
    memset(&fill, 0, sizeof fill);
    fill.name = n->name;
    float zero = 0;
    fill.dtype = OX_FLOAT;
    fill.data = (const uint8_t *)&zero;
    fill.nbytes = 4;
    ox_attr a;
    int r = ox_attr_find(n, "value", &a);
    if (r < 0 || (r > 0 && a.type != OX_A_TENSOR))
        return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "bad 'value' attribute"));
    if (r > 0 && (*st = ox_read_tensor(c, a.t, &fill, "ConstantOfShape value")) != IMGSIM_OK) {
        free(fill.owned);
        return -1;
    }
    size_t es = ox_dtype_size(fill.dtype);
    if (ox_numel(&fill) != 1 && r > 0) {
        free(fill.owned);
        return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "'value' must hold one element"));
    }
    uint8_t *d = fold_alloc(c, (size_t)total * es);
    if (!d) {
        free(fill.owned);
        return fail(st, c->err->code);
    }
    for (int64_t k = 0; k < total; k++)
        memcpy(d + (size_t)k * es, fill.data, es);
    free(fill.owned);
    return result(c, n, fill.dtype, (int)ns, dims, d, (size_t)total * es, st);
}

static int fold_transpose(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    const ox_value *x = &c->v[n->in[0]];
    int64_t p[IR_MAX_RANK];
    int np, perm[IR_MAX_RANK], seen[IR_MAX_RANK] = {0};
    if (check_const(c, n, x, st) < 0 ||
        (*st = ox_attr_ints(c, n, "perm", p, IR_MAX_RANK, &np)) != IMGSIM_OK)
        return -1;
    if (np < 0)
        for (np = 0; np < x->rank; np++)
            p[np] = x->rank - 1 - np;
    if (np != x->rank)
        return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "bad perm"));
    int64_t dims[IR_MAX_RANK];
    for (int i = 0; i < np; i++) {
        if (p[i] < 0 || p[i] >= np || seen[p[i]]++)
            return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "bad perm"));
        perm[i] = (int)p[i];
        dims[i] = x->dims[p[i]];
    }
    uint8_t *d = fold_alloc(c, x->nbytes);
    if (!d)
        return fail(st, c->err->code);
    ox_transpose(x->data, d, x->rank, x->dims, perm, ox_dtype_size(x->dtype));
    return result(c, n, x->dtype, x->rank, dims, d, x->nbytes, st);
}

static int fold_dequantize(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    const ox_value *x = &c->v[n->in[0]];
    if (check_const(c, n, x, st) < 0)
        return -1;
    if (x->dtype != OX_INT8 && x->dtype != OX_UINT8 && x->dtype != OX_INT32)
        return fail(st, ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "quantized type %d", x->dtype));
    float *sc = NULL;
    int64_t *zp = NULL, axis;
    size_t ns, nz = 0;
    if ((*st = ox_attr_int(c, n, "axis", 1, &axis)) != IMGSIM_OK ||
        (*st = ox_to_f32(c, n, &c->v[n->in[1]], &sc, &ns)) != IMGSIM_OK)
        return -1;
    if (n->nin > 2 && n->in[2] >= 0 &&
        (*st = ox_to_i64(c, n, &c->v[n->in[2]], &zp, &nz)) != IMGSIM_OK) {
        free(sc);
        return -1;
    }
    if (axis < 0)
        axis += x->rank;
    int64_t inner = 1, len = 1, total = ox_numel(x);
    if (ns > 1) {
        if (axis < 0 || axis >= x->rank || (int64_t)ns != x->dims[axis])
            ns = 0;
        else {
            len = x->dims[axis];
            for (int i = (int)axis + 1; i < x->rank; i++)
                inner *= x->dims[i];
        }
    }
    if (ns == 0 || (zp && nz != ns)) {
        free(sc);
        free(zp);
        return fail(st, ox_fail(c, n, IMGSIM_E_MODEL, "scale / zero point do not fit the tensor"));
    }
    float *d = fold_alloc(c, sizeof(float) * (size_t)total);
    if (!d) {
        free(sc);
        free(zp);
        return fail(st, c->err->code);
    }
    for (int64_t k = 0; k < total; k++) {
        size_t ch = ns > 1 ? (size_t)((k / inner) % len) : 0;
        d[k] = (float)((ox_elem(x, (size_t)k) - (double)(zp ? zp[ch] : 0)) * (double)sc[ch]);
    }
    free(sc);
    free(zp);
    return result(c, n, OX_FLOAT, x->rank, x->dims, d, sizeof(float) * (size_t)total, st);
}

int ox_fold(ox_ctx *c, ox_node *n, imgsim_status *st)
{
    *st = IMGSIM_OK;
    if (n->ms != 0)
        return NOT_FOLDABLE;
    const char *op = n->op;
    if (!strcmp(op, "Constant"))
        return fold_constant(c, n, st);
    if (n->nin < 1 || n->in[0] < 0)
        return NOT_FOLDABLE;
    if (!strcmp(op, "Shape"))
        return fold_shape(c, n, st);
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] >= 0 && !c->v[n->in[k]].is_const)
            return NOT_FOLDABLE;
    for (int k = 1; k < n->nout; k++) /* e.g. Dropout's mask */
        if (n->out[k] >= 0 && (c->v[n->out[k]].nreaders || c->v[n->out[k]].is_output))
            return NOT_FOLDABLE;
    if (!strcmp(op, "Gather") && n->nin == 2)
        return fold_gather(c, n, st);
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze") || !strcmp(op, "Reshape") ||
        !strcmp(op, "Flatten") || !strcmp(op, "Identity") || !strcmp(op, "Dropout"))
        return fold_reshape_like(c, n, st);
    if (!strcmp(op, "Concat"))
        return fold_concat(c, n, st);
    if (!strcmp(op, "Slice"))
        return fold_slice(c, n, st);
    if (!strcmp(op, "Cast"))
        return fold_cast(c, n, st);
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
        return fold_arith(c, n, st);
    if (!strcmp(op, "ConstantOfShape"))
        return fold_constant_of_shape(c, n, st);
    if (!strcmp(op, "Transpose"))
        return fold_transpose(c, n, st);
    if (!strcmp(op, "DequantizeLinear") && n->nin >= 2)
        return fold_dequantize(c, n, st);
    return NOT_FOLDABLE;
}

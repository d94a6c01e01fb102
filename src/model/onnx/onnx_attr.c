/*
 * onnx_attr.c — the ONNX front-end's error messages ("ONNX node 'name' (Op): ...") and node
 * attributes: looked up by name in the NodeProto's bytes on demand (AttributeProto{name 1,
 * f 2, i 3, s 4, t 5, floats 7, ints 8, type 20}), type-checked, with defaults.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/onnx/onnx_reader.h"

imgsim_status ox_fail(ox_ctx *c, const ox_node *n, imgsim_status code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return error_set(c->err, code, "ONNX node '%s' (%s): %s", n->name, n->op, msg);
}

imgsim_status ox_nomem(ox_ctx *c)
{
    return error_set(c->err, IMGSIM_E_NOMEM, "out of memory reading the ONNX model");
}

int ox_attr_find(const ox_node *n, const char *name, ox_attr *a)
{
    pb_iter it;
    pb_field f;
    int r;
    pb_iter_init(&it, n->msg);
    while ((r = pb_next(&it, &f)) > 0) {
        if (f.num != 5 || f.wire != PB_LEN)
            continue;
        pb_iter ai;
        pb_field af;
        int ar, match = 0;
        memset(a, 0, sizeof *a);
        a->msg = f.b;
        pb_iter_init(&ai, f.b);
        while ((ar = pb_next(&ai, &af)) > 0) {
            switch (af.num) {
            case 1: if (af.wire != PB_LEN) return -1; match = pb_eq(af.b, name); break;
            case 20: if (af.wire != PB_VARINT) return -1; a->type = (int)(int32_t)af.u; break;
            case 2: {
                if (af.wire != PB_I32)
                    return -1;
                uint32_t bits = (uint32_t)af.u;
                memcpy(&a->f, &bits, 4);
                break;
            }
            case 3: if (af.wire != PB_VARINT) return -1; a->i = (int64_t)af.u; break;
            case 4: if (af.wire != PB_LEN) return -1; a->s = af.b; break;
            case 5: if (af.wire != PB_LEN) return -1; a->t = af.b; break;
            default: break;
            }
        }
        if (ar < 0)
            return -1;
        if (match)
            return 1;
    }
    return r < 0 ? -1 : 0;
}

imgsim_status ox_attr_int(ox_ctx *c, const ox_node *n, const char *name, int64_t def,
                          int64_t *out)
{
    ox_attr a;
    int r = ox_attr_find(n, name, &a);
    if (r < 0 || (r > 0 && a.type != OX_A_INT))
        return ox_fail(c, n, IMGSIM_E_MODEL, "attribute '%s' is not an integer", name);
    *out = r ? a.i : def;
    return IMGSIM_OK;
}

imgsim_status ox_attr_float(ox_ctx *c, const ox_node *n, const char *name, float def,
                            float *out)
{
    ox_attr a;
    int r = ox_attr_find(n, name, &a);
    if (r < 0 || (r > 0 && a.type != OX_A_FLOAT) || (r > 0 && isnan(a.f)))
        return ox_fail(c, n, IMGSIM_E_MODEL, "attribute '%s' is not a number", name);
    *out = r ? a.f : def;
    return IMGSIM_OK;
}

imgsim_status ox_attr_ints(ox_ctx *c, const ox_node *n, const char *name, int64_t *out, int max,
                           int *count)
{
    ox_attr a;
    size_t k;
    int r = ox_attr_find(n, name, &a);
    *count = -1;
    if (r == 0)
        return IMGSIM_OK;
    if (r < 0 || a.type != OX_A_INTS || pb_count(a.msg, 8, PB_K_VARINT, &k) < 0)
        return ox_fail(c, n, IMGSIM_E_MODEL, "attribute '%s' is not a list of integers", name);
    if (k > (size_t)max)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "attribute '%s' has %zu values (at most %d)",
                       name, k, max);
    if (pb_get_i64(a.msg, 8, out, k) < 0)
        return ox_fail(c, n, IMGSIM_E_MODEL, "attribute '%s' is corrupt", name);
    *count = (int)k;
    return IMGSIM_OK;
}

int ox_attr_str_is(const ox_node *n, const char *name, const char *z, int def)
{
    ox_attr a;
    int r = ox_attr_find(n, name, &a);
    if (r <= 0)
        return def;
    return a.type == OX_A_STRING && pb_eq(a.s, z);
}

/*
 * onnx_pb.c — the protobuf wire-format reader behind the ONNX front-end (onnx_pb.h).
 *
 * Why hand-written rather than protobuf-c (or another generated parser):
 *   - zero copy: an ONNX initializer's raw_data (100+ MB for large models) is used straight
 *     from the file bytes the graph already owns; a generated parser would copy every bytes
 *     field into its own allocation and build a full object tree first;
 *   - no generated code and no extra runtime library to build, ship and keep in step with
 *     onnx.proto — the reader needs a handful of field numbers, listed in onnx_reader.c;
 *   - the same style as flatbuf.c for .tflite: the file is untrusted, every varint, length
 *     and packed array is checked against the end of its enclosing message before use, reads
 *     never go past the buffer, and nothing recurses (nesting costs no stack), which makes it
 *     simple to fuzz (fuzz/fuzz_onnx.c).
 *
 * Wire format facts used: a field is a varint key (number << 3 | wire type) followed by a
 * varint (type 0), 8 bytes (type 1), a varint length and that many bytes (type 2) or 4 bytes
 * (type 5), little-endian. Groups (types 3 and 4) are obsolete and refused. Repeated scalars
 * may be packed (one type-2 field holding the concatenated encodings) or not, even mixed.
 */
#include "model/onnx/onnx_pb.h"

#include <string.h>

void pb_iter_init(pb_iter *it, pb_buf m)
{
    it->m = m;
    it->pos = 0;
}

int pb_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    size_t i = *pos;
    for (int shift = 0; shift < 64; shift += 7) {
        if (i >= len)
            return -1;
        uint8_t b = p[i++];
        if (shift == 63 && b > 1) /* the 10th byte may only hold bit 63 */
            return -1;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pos = i;
            *v = r;
            return 0;
        }
    }
    return -1;
}

int pb_next(pb_iter *it, pb_field *f)
{
    const uint8_t *p = it->m.p;
    size_t len = it->m.len, pos = it->pos;
    if (pos >= len)
        return 0;
    uint64_t key;
    if (pb_varint(p, len, &pos, &key) < 0)
        return -1;
    uint64_t num = key >> 3;
    if (num == 0 || num > 0x1fffffff)
        return -1;
    f->num = (uint32_t)num;
    f->wire = (int)(key & 7);
    f->u = 0;
    f->b.p = NULL;
    f->b.len = 0;
    switch (f->wire) {
    case PB_VARINT:
        if (pb_varint(p, len, &pos, &f->u) < 0)
            return -1;
        break;
    case PB_I64:
        if (len - pos < 8)
            return -1;
        for (int k = 7; k >= 0; k--)
            f->u = f->u << 8 | p[pos + (size_t)k];
        pos += 8;
        break;
    case PB_I32:
        if (len - pos < 4)
            return -1;
        for (int k = 3; k >= 0; k--)
            f->u = f->u << 8 | p[pos + (size_t)k];
        pos += 4;
        break;
    case PB_LEN: {
        uint64_t n;
        if (pb_varint(p, len, &pos, &n) < 0 || n > len - pos)
            return -1;
        f->b.p = p + pos;
        f->b.len = (size_t)n;
        pos += (size_t)n;
        break;
    }
    default:
        return -1;
    }
    it->pos = pos;
    return 1;
}

/* Walks every element of repeated field `num`. With `out` NULL only counts; else stores at
 * most `cap` elements (as int64, float or double by `kind`) and fails if there are more. */
static int walk(pb_buf m, uint32_t num, pb_kind kind, void *out, size_t cap, size_t *count)
{
    pb_iter it;
    pb_field f;
    int r;
    size_t n = 0;
    size_t esize = kind == PB_K_F32 ? 4 : 8;
    int single = kind == PB_K_VARINT ? PB_VARINT : kind == PB_K_F32 ? PB_I32 : PB_I64;
    pb_iter_init(&it, m);
    while ((r = pb_next(&it, &f)) > 0) {
        if (f.num != num)
            continue;
        if (f.wire == single) {
            if (out) {
                if (n >= cap)
                    return -1;
                if (kind == PB_K_VARINT) {
                    ((int64_t *)out)[n] = (int64_t)f.u;
                } else if (kind == PB_K_F32) {
                    uint32_t bits = (uint32_t)f.u;
                    memcpy((float *)out + n, &bits, 4);
                } else {
                    memcpy((double *)out + n, &f.u, 8);
                }
            }
            n++;
        } else if (f.wire == PB_LEN) {
            if (kind == PB_K_VARINT) {
                size_t pos = 0;
                while (pos < f.b.len) {
                    uint64_t v;
                    if (pb_varint(f.b.p, f.b.len, &pos, &v) < 0)
                        return -1;
                    if (out) {
                        if (n >= cap)
                            return -1;
                        ((int64_t *)out)[n] = (int64_t)v;
                    }
                    n++;
                }
            } else {
                if (f.b.len % esize != 0)
                    return -1;
                size_t k = f.b.len / esize;
                if (out) {
                    if (k > cap - n)
                        return -1;
                    /* little-endian file, little-endian host (checked in onnx_reader.c) */
                    memcpy((uint8_t *)out + n * esize, f.b.p, f.b.len);
                }
                n += k;
            }
        } else {
            return -1;
        }
    }
    if (r < 0)
        return -1;
    *count = n;
    return 0;
}

int pb_count(pb_buf m, uint32_t num, pb_kind kind, size_t *n)
{
    return walk(m, num, kind, NULL, 0, n);
}

int pb_get_i64(pb_buf m, uint32_t num, int64_t *out, size_t n)
{
    size_t got;
    return walk(m, num, PB_K_VARINT, out, n, &got) < 0 || got != n ? -1 : 0;
}

int pb_get_f32(pb_buf m, uint32_t num, float *out, size_t n)
{
    size_t got;
    return walk(m, num, PB_K_F32, out, n, &got) < 0 || got != n ? -1 : 0;
}

int pb_get_f64(pb_buf m, uint32_t num, double *out, size_t n)
{
    size_t got;
    return walk(m, num, PB_K_F64, out, n, &got) < 0 || got != n ? -1 : 0;
}

int pb_eq(pb_buf s, const char *z)
{
    size_t n = strlen(z);
    return s.len == n && (n == 0 || memcmp(s.p, z, n) == 0);
}

/*
 * flatbuf.c — bounds-checked FlatBuffers access (see flatbuf.h for the contract).
 *
 * Layout reminder: a table starts with an int32 soffset to its vtable (vtable = table - soffset);
 * a vtable is uint16 [vtable bytes, table bytes, field offsets...]; a field offset of 0 means
 * absent. Reference fields hold a uint32 offset relative to the field's own position; vectors
 * and strings start with a uint32 count.
 */
#include "model/tflite/flatbuf.h"

#include <string.h>

static int in_bounds(const fb_buf *b, size_t pos, size_t size)
{
    return pos <= b->len && size <= b->len - pos;
}

static int rd_u32(const fb_buf *b, size_t pos, uint32_t *v)
{
    if (!in_bounds(b, pos, 4))
        return -1;
    memcpy(v, b->data + pos, 4);
    return 0;
}

static int rd_u16(const fb_buf *b, size_t pos, uint16_t *v)
{
    if (!in_bounds(b, pos, 2))
        return -1;
    memcpy(v, b->data + pos, 2);
    return 0;
}

static int table_at(const fb_buf *b, size_t pos, fb_table *out)
{
    uint32_t so;
    if (rd_u32(b, pos, &so) < 0)
        return -1;
    int64_t vt = (int64_t)pos - (int64_t)(int32_t)so;
    if (vt < 0 || (uint64_t)vt >= b->len)
        return -1;
    uint16_t vt_len;
    if (rd_u16(b, (size_t)vt, &vt_len) < 0 || vt_len < 4 || (vt_len & 1) ||
        !in_bounds(b, (size_t)vt, vt_len))
        return -1;
    out->b = b;
    out->pos = pos;
    out->vt = (size_t)vt;
    out->vt_len = vt_len;
    return 0;
}

/* Follow the uint32 offset stored at `pos` (relative to pos). */
static int deref(const fb_buf *b, size_t pos, size_t *target)
{
    uint32_t off;
    if (rd_u32(b, pos, &off) < 0)
        return -1;
    if ((uint64_t)pos + off >= b->len)
        return -1;
    *target = pos + off;
    return 0;
}

int fb_root(const fb_buf *b, fb_table *out)
{
    size_t pos;
    if (!b->data || b->len < 8 || deref(b, 0, &pos) < 0)
        return -1;
    return table_at(b, pos, out);
}

size_t fb_field_pos(const fb_table *t, int id, size_t size)
{
    size_t slot = 4 + 2 * (size_t)id;
    if (id < 0 || slot + 2 > t->vt_len)
        return 0;
    uint16_t off;
    if (rd_u16(t->b, t->vt + slot, &off) < 0)
        return (size_t)-1;
    if (off == 0)
        return 0;
    if (!in_bounds(t->b, t->pos + off, size))
        return (size_t)-1;
    return t->pos + off;
}

#define SCALAR_GETTER(fname, type)                                        \
    int fname(const fb_table *t, int id, type def, type *out)             \
    {                                                                     \
        size_t p = fb_field_pos(t, id, sizeof(type));                     \
        if (p == (size_t)-1)                                              \
            return -1;                                                    \
        if (p == 0)                                                       \
            *out = def;                                                   \
        else                                                              \
            memcpy(out, t->b->data + p, sizeof(type));                    \
        return 0;                                                         \
    }

SCALAR_GETTER(fb_u8, uint8_t)
SCALAR_GETTER(fb_i32, int32_t)
SCALAR_GETTER(fb_u32, uint32_t)
SCALAR_GETTER(fb_f32, float)

/* Resolve reference field `id` to its target position: 1 present, 0 absent, -1 corrupt. */
static int ref_field(const fb_table *t, int id, size_t *target)
{
    size_t p = fb_field_pos(t, id, 4);
    if (p == (size_t)-1)
        return -1;
    if (p == 0)
        return 0;
    return deref(t->b, p, target) < 0 ? -1 : 1;
}

int fb_table_field(const fb_table *t, int id, fb_table *out)
{
    size_t target;
    int r = ref_field(t, id, &target);
    if (r <= 0)
        return r;
    return table_at(t->b, target, out) < 0 ? -1 : 1;
}

static int vec_at(const fb_buf *b, size_t pos, size_t elem_size, fb_vec *out)
{
    uint32_t n;
    if (rd_u32(b, pos, &n) < 0)
        return -1;
    if (elem_size && (uint64_t)n > (b->len - pos - 4) / elem_size)
        return -1;
    out->b = b;
    out->pos = pos + 4;
    out->n = n;
    return 0;
}

int fb_vec_field(const fb_table *t, int id, size_t elem_size, fb_vec *out)
{
    size_t target;
    int r = ref_field(t, id, &target);
    if (r <= 0) {
        if (r == 0) {
            out->b = t->b;
            out->pos = 0;
            out->n = 0;
        }
        return r;
    }
    return vec_at(t->b, target, elem_size, out) < 0 ? -1 : 1;
}

int fb_str_field(const fb_table *t, int id, const char **s, uint32_t *len)
{
    fb_vec v;
    int r = fb_vec_field(t, id, 1, &v);
    if (r <= 0) {
        *s = "";
        *len = 0;
        return r;
    }
    *s = (const char *)t->b->data + v.pos;
    *len = v.n;
    return 1;
}

int fb_vec_table(const fb_vec *v, uint32_t i, fb_table *out)
{
    size_t target;
    if (i >= v->n || deref(v->b, v->pos + 4 * (size_t)i, &target) < 0)
        return -1;
    return table_at(v->b, target, out);
}

#define VEC_GETTER(fname, type)                                           \
    int fname(const fb_vec *v, uint32_t i, type *out)                     \
    {                                                                     \
        size_t p = v->pos + sizeof(type) * (size_t)i;                     \
        if (i >= v->n || !in_bounds(v->b, p, sizeof(type)))               \
            return -1;                                                    \
        memcpy(out, v->b->data + p, sizeof(type));                        \
        return 0;                                                         \
    }

VEC_GETTER(fb_vec_i32, int32_t)
VEC_GETTER(fb_vec_i64, int64_t)
VEC_GETTER(fb_vec_f32, float)

/*
 * flatbuf.h — a bounds-checked reader for FlatBuffers, the container of .tflite files.
 *
 * A model file is untrusted input: every offset, length and index read through these
 * functions is checked against the buffer before use, and every read goes through memcpy
 * (no alignment assumption). A failed check makes the accessor return -1 (or the default
 * for optional scalars) and the caller turns that into IMGSIM_E_MODEL. Nothing here
 * allocates: tables, vectors and strings are views into the caller's buffer.
 */
#ifndef IMGSIM_MODEL_FLATBUF_H
#define IMGSIM_MODEL_FLATBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct fb_buf {
    const uint8_t *data;
    size_t len;
} fb_buf;

/* A table: its position and the position/length of its vtable. */
typedef struct fb_table {
    const fb_buf *b;
    size_t pos;
    size_t vt;
    uint16_t vt_len;
} fb_table;

/* A vector: position of the first element and the element count. */
typedef struct fb_vec {
    const fb_buf *b;
    size_t pos;
    uint32_t n;
} fb_vec;

int fb_root(const fb_buf *b, fb_table *out);

/* Position of field `id` (0-based) inside the table, 0 if absent, (size_t)-1 if corrupt.
 * `size` is the number of bytes the field's value must have. */
size_t fb_field_pos(const fb_table *t, int id, size_t size);

/* Scalars: the stored value or `def` when absent. Return -1 on corruption. */
int fb_u8(const fb_table *t, int id, uint8_t def, uint8_t *out);
int fb_i32(const fb_table *t, int id, int32_t def, int32_t *out);
int fb_u32(const fb_table *t, int id, uint32_t def, uint32_t *out);
int fb_f32(const fb_table *t, int id, float def, float *out);

/* Reference fields. Return 1 if present, 0 if absent, -1 if corrupt. */
int fb_table_field(const fb_table *t, int id, fb_table *out);
int fb_vec_field(const fb_table *t, int id, size_t elem_size, fb_vec *out);
/* Strings are returned as pointer + length (not NUL-terminated in general). */
int fb_str_field(const fb_table *t, int id, const char **s, uint32_t *len);

/* Vector elements; `i` must be < v->n (checked). */
int fb_vec_table(const fb_vec *v, uint32_t i, fb_table *out);
int fb_vec_i32(const fb_vec *v, uint32_t i, int32_t *out);
int fb_vec_i64(const fb_vec *v, uint32_t i, int64_t *out);
int fb_vec_f32(const fb_vec *v, uint32_t i, float *out);

#endif

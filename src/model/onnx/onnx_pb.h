/*
 * onnx_pb.h — a bounds-checked reader for the protobuf wire format, the container of .onnx
 * files (see onnx_pb.c for why it is hand-written).
 *
 * A message is a byte range (pb_buf). pb_next walks its fields one at a time; every varint,
 * length and fixed-size value is checked against the end of the enclosing message before
 * it is used. Length-delimited payloads (strings, bytes, sub-messages, packed arrays) are
 * returned as views into the caller's buffer: nothing is copied and nothing allocated.
 * Nothing recurses: a sub-message is walked by handing its payload to a new iterator.
 */
#ifndef IMGSIM_MODEL_ONNX_PB_H
#define IMGSIM_MODEL_ONNX_PB_H

#include <stddef.h>
#include <stdint.h>

typedef struct pb_buf {
    const uint8_t *p;
    size_t len;
} pb_buf;

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

typedef struct pb_field {
    uint32_t num;      /* field number, >= 1 */
    int wire;          /* PB_VARINT, PB_I64, PB_LEN or PB_I32 */
    uint64_t u;        /* the value of a VARINT / I64 / I32 field (raw bits) */
    pb_buf b;          /* the payload of a LEN field */
} pb_field;

typedef struct pb_iter {
    pb_buf m;
    size_t pos;
} pb_iter;

/* Element encodings of repeated scalar fields. */
typedef enum pb_kind { PB_K_VARINT, PB_K_F32, PB_K_F64 } pb_kind;

void pb_iter_init(pb_iter *it, pb_buf m);
/* The next field: 1 when read, 0 at the end of the message, -1 when malformed (then the
 * iterator stays at the bad field). */
int pb_next(pb_iter *it, pb_field *f);

/* One varint at p[*pos], bounded by len; advances *pos. -1: truncated or over 64 bits. */
int pb_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v);

/* Repeated scalar field `num` of message `m`, stored packed, unpacked or mixed: the element
 * count (pb_count), then the elements (pb_get_i64 / pb_get_f32 / pb_get_f64 fill exactly `n`).
 * -1 when a field has the wrong wire type for `kind` or is malformed. */
int pb_count(pb_buf m, uint32_t num, pb_kind kind, size_t *n);
int pb_get_i64(pb_buf m, uint32_t num, int64_t *out, size_t n);
int pb_get_f32(pb_buf m, uint32_t num, float *out, size_t n);
int pb_get_f64(pb_buf m, uint32_t num, double *out, size_t n);

/* Does the string payload equal the NUL-terminated `z`? */
int pb_eq(pb_buf s, const char *z);

#endif

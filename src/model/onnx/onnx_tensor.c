/*
 * onnx_tensor.c — ONNX TensorProto (initializers, Constant values) into constant values, and
 * constants as plain numbers for the passes that compute with them.
 *
 * TensorProto fields used: dims 1, data_type 2, segment 3 (refused), float_data 4,
 * int32_data 5 (also int8/uint8/int16/uint16/bool/float16 elements), int64_data 7, name 8,
 * raw_data 9, double_data 10, uint64_data 11, external_data 13 (StringStringEntryProto{key 1,
 * value 2}: location, offset, length), data_location 14 (1 = EXTERNAL).
 *
 * raw_data is used in place (zero copy). Typed fields are decoded into an allocation. External
 * data is read from a file inside the model's directory: the location must be relative, may
 * not contain "..", and must resolve (symlinks included) to a path under that directory;
 * offset and length are checked against the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/onnx/onnx_reader.h"

void *ox_alloc(size_t bytes)
{
    return malloc(bytes ? bytes : 1);
}

size_t ox_dtype_size(int dtype)
{
    switch (dtype) {
    case OX_UINT8: case OX_INT8: case OX_BOOL: return 1;
    case OX_UINT16: case OX_INT16: case OX_FLOAT16: return 2;
    case OX_FLOAT: case OX_INT32: case OX_UINT32: return 4;
    case OX_INT64: case OX_DOUBLE: case OX_UINT64: return 8;
    default: return 0;
    }
}

int64_t ox_numel(const ox_value *v)
{
    if (v->rank < 0)
        return -1;
    int64_t n = 1;
    for (int i = 0; i < v->rank; i++)
        n *= v->dims[i];
    return n;
}

float ox_half(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float r;
    if (e == 0)
        r = ldexpf((float)m, -24);
    else if (e == 31)
        r = m ? NAN : INFINITY;
    else
        r = ldexpf((float)(m | 0x400), e - 25);
    return (h & 0x8000) ? -r : r;
}

void ox_transpose(const uint8_t *src, uint8_t *dst, int rank, const int64_t *dims,
                  const int *perm, size_t esize)
{
    int64_t sstride[IR_MAX_RANK], odims[IR_MAX_RANK], ostride[IR_MAX_RANK], idx[IR_MAX_RANK];
    int64_t n = 1;
    for (int i = rank - 1; i >= 0; i--) {
        sstride[i] = n;
        n *= dims[i];
    }
    for (int i = 0; i < rank; i++) {
        odims[i] = dims[perm[i]];
        ostride[i] = sstride[perm[i]]; /* source stride of output dimension i */
        idx[i] = 0;
    }
    if (n == 0)
        return;
    for (int64_t k = 0; k < n; k++) {
        int64_t s = 0;
        for (int i = 0; i < rank; i++)
            s += idx[i] * ostride[i];
        memcpy(dst + (size_t)k * esize, src + (size_t)s * esize, esize);
        for (int i = rank - 1; i >= 0; i--) {
            if (++idx[i] < odims[i])
                break;
            idx[i] = 0;
        }
    }
}

imgsim_status ox_set_const(ox_ctx *c, ox_value *v, int dtype, int rank, const int64_t *dims,
                           void *data, size_t nbytes)
{
    free(v->owned);
    v->owned = data;
    v->data = data;
    v->nbytes = nbytes;
    v->dtype = dtype;
    v->rank = rank;
    for (int i = 0; i < rank; i++)
        v->dims[i] = dims[i];
    v->is_const = 1;
    v->defined = 1;
    v->ir = -1;
    v->ir_const = -1;
    (void)c;
    return IMGSIM_OK;
}

/* ------------------------------------------------------------------ external data */

static int parse_u64(pb_buf s, uint64_t *out)
{
    uint64_t r = 0;
    if (s.len == 0 || s.len > 19)
        return -1;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        r = r * 10 + (uint64_t)(s.p[i] - '0');
    }
    *out = r;
    return 0;
}

/* A relative location without "..", NUL or empty name. */
static int safe_location(pb_buf loc)
{
    if (loc.len == 0 || loc.len > 1024 || memchr(loc.p, 0, loc.len) || loc.p[0] == '/')
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= loc.len; i++)
        if (i == loc.len || loc.p[i] == '/' || loc.p[i] == '\\') {
            if (i - start == 2 && loc.p[start] == '.' && loc.p[start + 1] == '.')
                return 0;
            start = i + 1;
        }
    return 1;
}

static imgsim_status read_external(ox_ctx *c, pb_buf msg, ox_value *v, size_t want,
                                   const char *what)
{
    pb_iter it;
    pb_field f;
    int r;
    pb_buf loc = {NULL, 0};
    uint64_t off = 0, len = UINT64_MAX;
    pb_iter_init(&it, msg);
    while ((r = pb_next(&it, &f)) > 0) {
        if (f.num != 13 || f.wire != PB_LEN)
            continue;
        pb_iter ei;
        pb_field ef;
        pb_buf key = {NULL, 0}, val = {NULL, 0};
        pb_iter_init(&ei, f.b);
        while ((r = pb_next(&ei, &ef)) > 0) {
            if (ef.num == 1 && ef.wire == PB_LEN)
                key = ef.b;
            else if (ef.num == 2 && ef.wire == PB_LEN)
                val = ef.b;
        }
        if (r < 0)
            break;
        if (pb_eq(key, "location"))
            loc = val;
        else if ((pb_eq(key, "offset") && parse_u64(val, &off) < 0) ||
                 (pb_eq(key, "length") && parse_u64(val, &len) < 0))
            return error_set(c->err, IMGSIM_E_MODEL,
                             "corrupt ONNX file: %s '%s' has a bad external offset or length",
                             what, v->name);
    }
    if (r < 0)
        return error_set(c->err, IMGSIM_E_MODEL, "corrupt ONNX file: bad external data of '%s'",
                         v->name);
    if (!c->dir)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                         "%s '%s' keeps its data in an external file, which is not allowed here",
                         what, v->name);
    if (!safe_location(loc))
        return error_set(c->err, IMGSIM_E_MODEL,
                         "%s '%s': external data location must be a relative path inside the "
                         "model's directory", what, v->name);
    if (len != UINT64_MAX && len != want)
        return error_set(c->err, IMGSIM_E_MODEL,
                         "%s '%s': external length %llu, but its shape needs %zu bytes", what,
                         v->name, (unsigned long long)len, want);
    char *path = malloc(strlen(c->dir) + loc.len + 2);
    if (!path)
        return ox_nomem(c);
    sprintf(path, "%s/", c->dir);
    memcpy(path + strlen(path), loc.p, loc.len);
    path[strlen(c->dir) + 1 + loc.len] = 0;
    char *real = realpath(path, NULL), *rdir = realpath(c->dir, NULL);
    imgsim_status st = IMGSIM_OK;
    if (!real || !rdir) {
        st = error_set(c->err, IMGSIM_E_IO, "%s '%s': external data file %s: %s", what,
                       v->name, path, strerror(errno));
    } else {
        size_t dl = strlen(rdir);
        if (strncmp(real, rdir, dl) != 0 || (real[dl] != '/' && !(dl == 1 && rdir[0] == '/')))
            st = error_set(c->err, IMGSIM_E_MODEL,
                           "%s '%s': external data file lies outside the model's directory",
                           what, v->name);
    }
    int fd = -1;
    struct stat sb;
    uint8_t *buf = NULL;
    if (st == IMGSIM_OK && ((fd = open(real, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0))
        st = error_set(c->err, IMGSIM_E_IO, "%s: %s", path, strerror(errno));
    if (st == IMGSIM_OK && (!S_ISREG(sb.st_mode) || off > (uint64_t)sb.st_size ||
                            want > (uint64_t)sb.st_size - off))
        st = error_set(c->err, IMGSIM_E_MODEL,
                       "%s '%s': external data (%zu bytes at %llu) lies outside %s", what,
                       v->name, want, (unsigned long long)off, path);
    if (st == IMGSIM_OK && !(buf = ox_alloc(want)))
        st = ox_nomem(c);
    for (size_t got = 0; st == IMGSIM_OK && got < want;) {
        ssize_t k = pread(fd, buf + got, want - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            st = error_set(c->err, IMGSIM_E_IO, "%s: short read", path);
        else
            got += (size_t)k;
    }
    if (fd >= 0)
        close(fd);
    free(real);
    free(rdir);
    free(path);
    if (st != IMGSIM_OK) {
        free(buf);
        return st;
    }
    v->owned = buf;
    v->data = buf;
    v->nbytes = want;
    return IMGSIM_OK;
}

/* ------------------------------------------------------------------ TensorProto */

/* Typed data field `num` holding `n` elements into a new array of `dtype` elements. */
static imgsim_status read_typed(ox_ctx *c, pb_buf msg, ox_value *v, size_t n, const char *what)
{
    uint32_t num;
    pb_kind kind = PB_K_VARINT;
    switch (v->dtype) {
    case OX_FLOAT: num = 4; kind = PB_K_F32; break;
    case OX_INT64: num = 7; break;
    case OX_DOUBLE: num = 10; kind = PB_K_F64; break;
    case OX_UINT32: case OX_UINT64: num = 11; break;
    default: num = 5; break;
    }
    size_t have;
    if (pb_count(msg, num, kind, &have) < 0)
        return error_set(c->err, IMGSIM_E_MODEL, "corrupt ONNX file: %s '%s' has bad data",
                         what, v->name);
    if (have != n)
        return error_set(c->err, IMGSIM_E_MODEL,
                         "corrupt ONNX file: %s '%s' has %zu values for %zu elements", what,
                         v->name, have, n);
    size_t es = ox_dtype_size(v->dtype);
    uint8_t *out = ox_alloc(n * es);
    if (!out)
        return ox_nomem(c);
    int bad;
    if (kind == PB_K_F32) {
        bad = pb_get_f32(msg, num, (float *)(void *)out, n);
    } else if (kind == PB_K_F64) {
        bad = pb_get_f64(msg, num, (double *)(void *)out, n);
    } else if (es == 8) {
        bad = pb_get_i64(msg, num, (int64_t *)(void *)out, n);
    } else {
        int64_t *tmp = malloc(sizeof(int64_t) * (n ? n : 1));
        bad = !tmp || pb_get_i64(msg, num, tmp, n) < 0;
        for (size_t i = 0; !bad && i < n; i++) {
            /* int32_data holds each element widened to int32 (float16: its bits) */
            uint32_t u = (uint32_t)tmp[i];
            if (es == 4)
                memcpy(out + 4 * i, &u, 4);
            else if (es == 2) {
                uint16_t h = (uint16_t)u;
                memcpy(out + 2 * i, &h, 2);
            } else
                out[i] = (uint8_t)u;
        }
        if (!tmp) {
            free(out);
            return ox_nomem(c);
        }
        free(tmp);
    }
    if (bad) {
        free(out);
        return error_set(c->err, IMGSIM_E_MODEL, "corrupt ONNX file: %s '%s' has bad data",
                         what, v->name);
    }
    v->owned = out;
    v->data = out;
    v->nbytes = n * es;
    return IMGSIM_OK;
}

imgsim_status ox_read_tensor(ox_ctx *c, pb_buf msg, ox_value *v, const char *what)
{
    pb_iter it;
    pb_field f;
    int r, external = 0, has_raw = 0;
    pb_buf raw = {NULL, 0};
    v->dtype = 0;
    pb_iter_init(&it, msg);
    while ((r = pb_next(&it, &f)) > 0) {
        switch (f.num) {
        case 2:
            if (f.wire != PB_VARINT)
                r = -1;
            v->dtype = (int)(int32_t)f.u;
            break;
        case 3:
            return error_set(c->err, IMGSIM_E_UNSUPPORTED, "%s '%s' is segmented", what,
                             v->name);
        case 9:
            if (f.wire != PB_LEN)
                r = -1;
            raw = f.b;
            has_raw = 1;
            break;
        case 14:
            if (f.wire != PB_VARINT)
                r = -1;
            external = f.u == 1;
            break;
        default:
            break;
        }
        if (r < 0)
            break;
    }
    size_t rank;
    if (r < 0 || pb_count(msg, 1, PB_K_VARINT, &rank) < 0)
        return error_set(c->err, IMGSIM_E_MODEL, "corrupt ONNX file: %s '%s' is malformed",
                         what, v->name);
    if (rank > IR_MAX_RANK)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED, "%s '%s' has rank %zu", what, v->name,
                         rank);
    if (pb_get_i64(msg, 1, v->dims, rank) < 0)
        return error_set(c->err, IMGSIM_E_MODEL, "corrupt ONNX file: %s '%s' is malformed",
                         what, v->name);
    v->rank = (int)rank;
    size_t es = ox_dtype_size(v->dtype);
    if (es == 0)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED, "%s '%s' has unsupported data type %d",
                         what, v->name, v->dtype);
    uint64_t n = 1;
    for (size_t i = 0; i < rank; i++) {
        if (v->dims[i] < 0 || v->dims[i] > ((int64_t)1 << 40))
            return error_set(c->err, IMGSIM_E_MODEL,
                             "corrupt ONNX file: %s '%s' has dimension %lld", what, v->name,
                             (long long)v->dims[i]);
        n *= (uint64_t)v->dims[i];
        if (n > ((uint64_t)1 << 36))
            return error_set(c->err, IMGSIM_E_MODEL, "corrupt ONNX file: %s '%s' is too large",
                             what, v->name);
    }
    size_t want = (size_t)n * es;
    imgsim_status st = IMGSIM_OK;
    if (external) {
        st = read_external(c, msg, v, want, what);
    } else if (has_raw) {
        if (raw.len != want)
            return error_set(c->err, IMGSIM_E_MODEL,
                             "corrupt ONNX file: %s '%s' has %zu data bytes, its shape needs %zu",
                             what, v->name, raw.len, want);
        v->data = raw.p;
        v->nbytes = want;
    } else {
        st = read_typed(c, msg, v, (size_t)n, what);
    }
    if (st != IMGSIM_OK)
        return st;
    v->is_const = 1;
    v->defined = 1;
    v->ir_const = -1;
    return IMGSIM_OK;
}

/* ------------------------------------------------------------------ constants as numbers */

int ox_const_in(ox_ctx *c, const ox_node *n, int k, int required, imgsim_status *st)
{
    *st = IMGSIM_OK;
    if (k >= n->nin || n->in[k] < 0) {
        if (required)
            *st = ox_fail(c, n, IMGSIM_E_MODEL, "input %d is missing", k + 1);
        return -1;
    }
    const ox_value *v = &c->v[n->in[k]];
    if (!v->is_const) {
        *st = ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "input %d ('%s') must be a constant", k + 1,
                      v->name);
        return -1;
    }
    return n->in[k];
}

double ox_elem(const ox_value *v, size_t i)
{
    const uint8_t *p = v->data + i * ox_dtype_size(v->dtype);
    switch (v->dtype) {
    case OX_FLOAT: { float x; memcpy(&x, p, 4); return x; }
    case OX_DOUBLE: { double x; memcpy(&x, p, 8); return x; }
    case OX_FLOAT16: { uint16_t h; memcpy(&h, p, 2); return ox_half(h); }
    case OX_UINT8: case OX_BOOL: return *p;
    case OX_INT8: return (int8_t)*p;
    case OX_UINT16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case OX_INT16: { int16_t x; memcpy(&x, p, 2); return x; }
    case OX_INT32: { int32_t x; memcpy(&x, p, 4); return x; }
    case OX_UINT32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case OX_INT64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
    case OX_UINT64: { uint64_t x; memcpy(&x, p, 8); return (double)x; }
    default: return 0;
    }
}

imgsim_status ox_to_i64(ox_ctx *c, const ox_node *n, const ox_value *v, int64_t **out,
                        size_t *count)
{
    int64_t k = ox_numel(v);
    if (!v->is_const || k < 0 || ox_dtype_size(v->dtype) == 0 ||
        (size_t)k * ox_dtype_size(v->dtype) != v->nbytes)
        return ox_fail(c, n, IMGSIM_E_MODEL, "constant '%s' is unusable", v->name);
    if (k > OX_MAX_FOLD)
        return ox_fail(c, n, IMGSIM_E_UNSUPPORTED, "constant '%s' is too large", v->name);
    int64_t *r = malloc(sizeof(int64_t) * (size_t)(k ? k : 1));
    if (!r)
        return ox_nomem(c);
    for (int64_t i = 0; i < k; i++) {
        if (v->dtype == OX_INT64 || v->dtype == OX_UINT64) {
            memcpy(&r[i], v->data + 8 * (size_t)i, 8);
            continue;
        }
        double d = ox_elem(v, (size_t)i);
        if (!(d >= -9.2e18 && d <= 9.2e18)) {
            free(r);
            return ox_fail(c, n, IMGSIM_E_MODEL, "constant '%s' holds a value out of range",
                           v->name);
        }
        r[i] = (int64_t)d;
    }
    *out = r;
    *count = (size_t)k;
    return IMGSIM_OK;
}

imgsim_status ox_to_f32(ox_ctx *c, const ox_node *n, const ox_value *v, float **out,
                        size_t *count)
{
    int64_t k = ox_numel(v);
    if (!v->is_const || k < 0 || ox_dtype_size(v->dtype) == 0 ||
        (size_t)k * ox_dtype_size(v->dtype) != v->nbytes)
        return ox_fail(c, n, IMGSIM_E_MODEL, "constant '%s' is unusable", v->name);
    float *r = malloc(sizeof(float) * (size_t)(k ? k : 1));
    if (!r)
        return ox_nomem(c);
    if (v->dtype == OX_FLOAT) {
        if (k)
            memcpy(r, v->data, 4 * (size_t)k);
    } else {
        for (int64_t i = 0; i < k; i++)
            r[i] = (float)ox_elem(v, (size_t)i);
    }
    *out = r;
    *count = (size_t)k;
    return IMGSIM_OK;
}

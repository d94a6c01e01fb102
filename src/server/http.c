/*
 * http.c — small HTTP helpers for the handlers: queueing replies (JSON and errors, the
 * Allow header of a 405 from the route table), mapping library errors to statuses,
 * percent-decoding, query parameters, and a multipart/form-data splitter for uploaded
 * bodies (held whole in memory, bounded by --max-upload). The connection-free ones are
 * declared in http.h.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image/sniff.h"
#include "server/internal.h"

enum MHD_Result reply_raw(req *r, int status, const char *type, char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (type)
        MHD_add_response_header(resp, "Content-Type", type);
    if (status == 503)
        MHD_add_response_header(resp, "Retry-After", "1");
    if (status == 405 && r->rt) {
        char allow[64];
        route_allow(r->rt, allow, sizeof allow);
        MHD_add_response_header(resp, "Allow", allow);
    }
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    return ok;
}

enum MHD_Result reply_json(req *r, int status, json_t *j)
{
    char *txt = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!txt) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        char *c = strdup(oom);
        if (!c)
            return MHD_NO;
        return reply_raw(r, 500, "application/json", c, strlen(c));
    }
    return reply_raw(r, status, "application/json", txt, strlen(txt));
}

enum MHD_Result reply_error(req *r, int status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)  /* one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    json_t *j = json_object();
    if (j) /* a message quoting bytes that are not UTF-8 is still an error message */
        json_object_set_new(j, "error", json_string(utf8_valid(msg) ? msg : "invalid request"));
    return reply_json(r, status, j);
}

int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
                : (*p & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0 || (n == 1 && *p < 0xc2))
            return 0;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += n + 1;
    }
    return 1;
}

enum MHD_Result reply_overloaded(req *r)
{
    return reply_error(r, 503, "server overloaded, retry later");
}

int http_status_of(imgsim_status s)
{
    switch (s) {
    case IMGSIM_E_ARG:
    case IMGSIM_E_DECODE:
        return 400;
    case IMGSIM_E_TOO_BIG:
        return 413;
    case IMGSIM_E_UNSUPPORTED:
        return 415;
    case IMGSIM_E_NOTFOUND:
        return 404;
    default:
        return 500;
    }
}

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

char *url_decode(const char *s, size_t n, int form)
{
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n) {
                free(o);
                return NULL;
            }
            int h = hexv((unsigned char)s[i + 1]), l = hexv((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                free(o);
                return NULL;
            }
            o[j++] = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+' && form) {
            o[j++] = ' ';
        } else if (c == 0) {
            free(o);
            return NULL;
        } else {
            o[j++] = c;
        }
    }
    o[j] = 0;
    return o;
}

const char *header(req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

typedef struct args_walk {
    const char *key;
    char **vals;
    int n, max;
} args_walk;

static enum MHD_Result walk(void *cls, enum MHD_ValueKind kind, const char *key,
                            const char *value)
{
    (void)kind;
    args_walk *a = cls;
    if (key && !strcmp(key, a->key) && a->n < a->max) {
        /* values are raw (the server installs a no-op unescaper): decode here */
        a->vals[a->n] = value ? url_decode(value, strlen(value), 1) : strdup("");
        if (!a->vals[a->n])
            a->vals[a->n] = strdup("\x01"); /* marks a bad value */
        a->n++;
    }
    return MHD_YES;
}

static int params(req *r, const char *key, char **vals, int max)
{
    args_walk a = {key, vals, 0, max};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, walk, &a);
    return a.n;
}

char *query_param(req *r, const char *key)
{
    char *v[1] = {NULL};
    params(r, key, v, 1);
    return v[0];
}

int query_int(req *r, const char *key, int def, int lo, int hi, int *out)
{
    char *v = query_param(r, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        reply_error(r, 400, "parameter %s must be a number from %d to %d", key, lo, hi);
        free(v);
        return -1;
    }
    free(v);
    *out = (int)x;
    return 0;
}

void query_opts_clear(imgsim_where *w, int n)
{
    if (!w)
        return;
    for (int i = 0; i < n; i++)
        free((char *)w[i].column);  /* column and value share one allocation */
    free(w);
}

#define MAX_WHERE 16
/* Results per request: a tenth of the library's IMGSIM_MAX_K, since every hit becomes a JSON
 * object (with URLs and metadata) built and sent by a request thread (docs/API.md: k 1..1000). */
#define SERVER_MAX_K (IMGSIM_MAX_K / 10)

int query_opts_parse(req *r, imgsim_query_opts *o, imgsim_where **wout)
{
    imgsim_query_opts_default(o);
    *wout = NULL;
    if (query_int(r, "k", 10, 1, SERVER_MAX_K, &o->k) < 0)
        return -1;
    char *m = query_param(r, "metric");
    if (m) {
        imgsim_error e = {0};
        if (imgsim_metric_parse(m, &o->metric, &e) != IMGSIM_OK) {
            reply_error(r, 400, "parameter metric must be cosine, l2 or l1");
            free(m);
            return -1;
        }
        free(m);
    }
    char *c = query_param(r, "category");
    if (c) {
        int ok = !strcmp(c, "auto") || !*c || !strcmp(c, "none");
        o->category_auto = !strcmp(c, "auto");
        free(c);
        if (!ok) {
            reply_error(r, 400, "parameter category must be 'auto'");
            return -1;
        }
    }
    char *vals[MAX_WHERE + 1] = {0};
    int n = params(r, "where", vals, MAX_WHERE + 1);
    imgsim_where *w = n ? calloc((size_t)n, sizeof *w) : NULL;
    int bad = n > MAX_WHERE || (n && !w);
    int nw = 0;
    for (int i = 0; i < n; i++) {
        char *eq = vals[i] ? strchr(vals[i], '=') : NULL;
        if (bad || !eq || eq == vals[i] || vals[i][0] == '\x01') {
            bad = 1;
            free(vals[i]);
            continue;
        }
        *eq = 0;
        /* over HTTP, file paths and hashes are not for probing: the catalogue's source and
         * hash columns are CLI-only filters */
        if (!strcmp(vals[i], "source") || !strcmp(vals[i], "hash") || !strcmp(vals[i], "model")) {
            bad = 1;
            free(vals[i]);
            continue;
        }
        w[nw].column = vals[i];
        w[nw].value = eq + 1;
        nw++;
    }
    if (bad) {
        query_opts_clear(w, nw);
        reply_error(r, 400, "parameter where must be COLUMN=VALUE with a label, id, size or "
                            "metadata column (at most %d)", MAX_WHERE);
        return -1;
    }
    static const imgsim_where none[1]; /* never NULL: the library copies from it */
    o->where = w ? w : none;
    o->nwhere = nw;
    *wout = w;
    return 0;
}

int is_image_type(const char *t)
{
    if (!t)
        return 0;
    while (*t == ' ')
        t++;
    return !strncasecmp(t, "image/", 6) || !strncasecmp(t, "application/octet-stream", 24);
}

const char *sniff_ext(const unsigned char *b, size_t n)
{
    /* the formats an upload may be, and the extension its file is saved under */
    static const char *const ext[][2] = {
        {"jpeg", "jpg"}, {"png", "png"}, {"webp", "webp"},
        {"gif", "gif"},  {"tiff", "tif"}, {"bmp", "bmp"},
    };
    const char *f = image_sniff(b, n);
    for (size_t i = 0; f && i < sizeof ext / sizeof *ext; i++)
        if (!strcmp(f, ext[i][0]))
            return ext[i][1];
    return NULL;
}

/* Value of parameter `key` in a header such as `form-data; name="x"; filename="y"` (http.h). */
void header_param(const char *h, size_t hl, const char *key, char *out, size_t outn)
{
    out[0] = 0;
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 1 <= hl; i++) {
        if ((i == 0 || h[i - 1] == ';' || h[i - 1] == ' ') && !strncasecmp(h + i, key, kl) &&
            h[i + kl] == '=') {
            const char *v = h + i + kl + 1, *end = h + hl;
            size_t j = 0;
            if (v < end && *v == '"') {
                v++;
                while (v < end && *v != '"' && j + 1 < outn)
                    out[j++] = *v++;
            } else {
                while (v < end && *v != ';' && *v != ' ' && j + 1 < outn)
                    out[j++] = *v++;
            }
            out[j] = 0;
            return;
        }
    }
}

int multipart_parse(const char *ctype, const char *body, size_t len, part *parts, int max,
                    int *n)
{
    *n = 0;
    char bnd[200], delim[210];
    if (!ctype)
        return -1;
    header_param(ctype, strlen(ctype), "boundary", bnd, sizeof bnd);
    if (!bnd[0])
        return -1;
    int dl = snprintf(delim, sizeof delim, "--%s", bnd);
    const char *p = memmem(body, len, delim, (size_t)dl), *end = body + len;
    if (!p)
        return -1;
    p += dl;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return 0; /* closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return -1;
        p += 2;
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend)
            return -1;
        part pt;
        memset(&pt, 0, sizeof pt);
        for (const char *l = p; l < hend;) {
            const char *le = memmem(l, (size_t)(hend - l), "\r\n", 2);
            if (!le)
                le = hend;
            size_t ll = (size_t)(le - l);
            if (ll > 20 && !strncasecmp(l, "Content-Disposition:", 20)) {
                header_param(l + 20, ll - 20, "name", pt.name, sizeof pt.name);
                header_param(l + 20, ll - 20, "filename", pt.filename, sizeof pt.filename);
            } else if (ll > 13 && !strncasecmp(l, "Content-Type:", 13)) {
                const char *v = l + 13;
                while (v < le && *v == ' ')
                    v++;
                size_t vl = (size_t)(le - v);
                if (vl >= sizeof pt.type)
                    vl = sizeof pt.type - 1;
                memcpy(pt.type, v, vl);
                pt.type[vl] = 0;
            }
            l = le + 2;
        }
        const char *data = hend + 4;
        char d2[214];
        int d2l = snprintf(d2, sizeof d2, "\r\n%s", delim);
        const char *next = memmem(data, (size_t)(end - data), d2, (size_t)d2l);
        if (!next)
            return -1;
        pt.data = data;
        pt.len = (size_t)(next - data);
        if (*n < max)
            parts[(*n)++] = pt;
        p = next + d2l;
    }
}

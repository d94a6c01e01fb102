/*
 * test_http.c — the server's HTTP helpers (src/server/http.c): percent-decoding (form '+',
 * both hex cases, escapes cut short at the end, bad hex digits, %00 and raw NUL bytes
 * refused); the multipart/form-data splitter (fields and a real JPEG part whose bytes hold
 * CR, LF and NUL, quoted and case-varied parameters, a preamble, delimiter look-alikes inside
 * data, empty parts, more parts than room, over-long names truncated; refused: no
 * Content-Type, no or empty boundary, a boundary over the limit, no delimiter, truncated
 * headers or data, a missing closing delimiter, junk after a delimiter); query-string
 * parsing (query_param, query_int, query_opts_parse) through a real libmicrohttpd daemon set
 * up like the server's (raw values, decoded by the helpers), with malformed, out-of-range,
 * repeated and too many parameters; image type checks, sniffing, status mapping, UTF-8.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/internal.h"
#include "../testutil.h"

/* ------------------------------------------------------------ percent-decoding */

/* Decoded text, or NULL; `n` < 0: strlen. */
static char *dec(const char *s, long n, int form)
{
    return url_decode(s, n < 0 ? strlen(s) : (size_t)n, form);
}

static void expect_dec(const char *in, int form, const char *want)
{
    char *got = dec(in, -1, form);
    if (!got)
        fail_msg("url_decode(\"%s\") refused", in);
    if (strcmp(got, want))
        fail_msg("url_decode(\"%s\") = \"%s\", want \"%s\"", in, got, want);
    free(got);
}

static void expect_refused(const char *in, long n)
{
    char *got = dec(in, n, 1);
    if (got)
        fail_msg("url_decode(\"%s\") accepted as \"%s\"", in, got);
}

static void test_url_decode(void **state)
{
    (void)state;
    expect_dec("", 1, "");
    expect_dec("plain-id_1.jpg", 1, "plain-id_1.jpg");
    expect_dec("a%20b", 0, "a b");
    expect_dec("a+b", 1, "a b");
    expect_dec("a+b", 0, "a+b");              /* '+' is a space only in forms */
    expect_dec("%2b", 1, "+");                /* an escaped '+' stays a plus */
    expect_dec("%2F%2f", 0, "//");            /* both hex cases */
    expect_dec("label%3Dc%264", 1, "label=c&4");
    expect_dec("%C3%A9t%C3%A9", 0, "\xc3\xa9t\xc3\xa9");
    expect_dec("ab%41", 0, "abA");            /* an escape ending the input */
    expect_dec("%41", 0, "A");
    expect_dec("100%25", 0, "100%");
    expect_dec("%ff", 0, "\xff");             /* bytes, not checked as UTF-8 here */

    expect_refused("%", -1);
    expect_refused("abc%", -1);
    expect_refused("abc%4", -1);              /* cut short */
    expect_refused("%4g", -1);
    expect_refused("%g4", -1);
    expect_refused("%%41", -1);
    expect_refused("% 4", -1);
    expect_refused("%-1", -1);
    expect_refused("%00", -1);                /* would end the C string early */
    expect_refused("a%00b", -1);
    expect_refused("a\0b", 3);                /* a raw NUL inside the input */
    /* only `n` bytes are read: an escape cut by the length is refused, the rest ignored */
    expect_refused("ab%41", 4);
    char *g = dec("ab%41cd", 5, 0);
    assert_non_null(g);
    assert_string_equal(g, "abA");
    free(g);
    g = dec("xyz", 0, 0);
    assert_non_null(g);
    assert_string_equal(g, "");
    free(g);
}

/* ------------------------------------------------------------ multipart */

#define CT "multipart/form-data; boundary=XyZ123"

static int parse(const char *ctype, const tu_buf *b, part *parts, int max, int *n)
{
    /* a copy of exactly the body's bytes, so ASan sees any read past its end */
    char *copy = malloc(b->n ? b->n : 1);
    assert_non_null(copy);
    memcpy(copy, b->p, b->n);
    int r = multipart_parse(ctype, copy, b->n, parts, max, n);
    /* parts point into the body: re-point them into the caller's buffer */
    for (int i = 0; r == 0 && i < *n; i++)
        parts[i].data = (const char *)b->p + (parts[i].data - copy);
    free(copy);
    return r;
}

static void test_multipart(void **state)
{
    (void)state;
    size_t jn;
    uint8_t *jpeg = tu_read(tu_wang(123), &jn);
    /* a real JPEG has NUL, CR and LF bytes: the splitter must not care */
    assert_non_null(memchr(jpeg, 0, jn));
    assert_non_null(memchr(jpeg, '\n', jn));
    tu_buf b = {0};
    tu_buf_cat(&b, "preamble to ignore\r\n",
               "--XyZ123\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n5\r\n",
               "--XyZ123\r\ncontent-disposition: form-data; name=\"image\"; filename=\"bus 1.jpg\"\r\n"
               "CONTENT-TYPE:   image/jpeg\r\n\r\n", NULL);
    size_t jat = b.n;
    tu_buf_put(&b, jpeg, jn);
    tu_buf_cat(&b, "\r\n--XyZ123\r\nContent-Disposition: form-data; name=empty\r\n\r\n\r\n",
               "--XyZ123\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
               "a--XyZ123 inside\r\n--XyZ12 almost\r\n",
               "--XyZ123--\r\nepilogue", NULL);
    part p[8];
    int n = -1;
    assert_int_equal(parse(CT, &b, p, 8, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(p[0].name, "k");
    assert_string_equal(p[0].filename, "");
    assert_string_equal(p[0].type, "");
    assert_int_equal(p[0].len, 1);
    assert_memory_equal(p[0].data, "5", 1);
    assert_string_equal(p[1].name, "image");
    assert_string_equal(p[1].filename, "bus 1.jpg");
    assert_string_equal(p[1].type, "image/jpeg");
    assert_int_equal(p[1].len, jn);
    assert_ptr_equal(p[1].data, (const char *)b.p + jat);
    assert_memory_equal(p[1].data, jpeg, jn);
    assert_string_equal(p[2].name, "empty");  /* unquoted parameter */
    assert_int_equal(p[2].len, 0);
    assert_string_equal(p[3].name, "note");
    assert_int_equal(p[3].len, strlen("a--XyZ123 inside\r\n--XyZ12 almost"));
    assert_memory_equal(p[3].data, "a--XyZ123 inside\r\n--XyZ12 almost", p[3].len);

    /* the boundary quoted, the parameter in capitals, after other parameters */
    const char *ct2[] = {"multipart/form-data; boundary=\"XyZ123\"",
                         "multipart/form-data; charset=utf-8; BOUNDARY=XyZ123",
                         "Multipart/Form-Data;boundary=XyZ123"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(parse(ct2[i], &b, p, 8, &n), 0);
        assert_int_equal(n, 4);
    }
    /* room for fewer parts: the first ones, no overflow */
    assert_int_equal(parse(CT, &b, p, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(p[1].name, "image");
    free(b.p);
    free(jpeg);
}

static void test_multipart_long_fields(void **state)
{
    (void)state;
    char name[300], fname[600], type[400];
    memset(name, 'n', sizeof name - 1), name[sizeof name - 1] = 0;
    memset(fname, 'f', sizeof fname - 1), fname[sizeof fname - 1] = 0;
    memset(type, 't', sizeof type - 1), type[sizeof type - 1] = 0;
    tu_buf b = {0};
    tu_buf_cat(&b, "--XyZ123\r\nContent-Disposition: form-data; name=\"", name, "\"; filename=\"",
               fname, "\"\r\nContent-Type: ", type, "\r\n\r\ndata\r\n--XyZ123--", NULL);
    part p[1];
    int n;
    assert_int_equal(parse(CT, &b, p, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(p[0].name), sizeof p[0].name - 1);
    assert_int_equal(strlen(p[0].filename), sizeof p[0].filename - 1);
    assert_int_equal(strlen(p[0].type), sizeof p[0].type - 1);
    assert_memory_equal(p[0].name, name, sizeof p[0].name - 1);
    assert_int_equal(p[0].len, 4);
    free(b.p);

    /* a 70-character boundary (RFC 2046's maximum) works; one past the parser's buffer is
     * refused rather than matched by its prefix */
    for (int len = 70; len <= 250; len += 180) {
        char bnd[256], ct[400];
        memset(bnd, 'b', (size_t)len), bnd[len] = 0;
        snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", bnd);
        tu_buf c = {0};
        tu_buf_cat(&c, "--", bnd, "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--",
                   bnd, "--", NULL);
        int r = parse(ct, &c, p, 1, &n);
        if (len == 70) {
            assert_int_equal(r, 0);
            assert_int_equal(n, 1);
        } else {
            assert_int_equal(r, -1);
        }
        free(c.p);
    }
}

static void test_multipart_malformed(void **state)
{
    (void)state;
    tu_buf good = {0};
    tu_buf_cat(&good, "--XyZ123\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
                 "Content-Type: image/jpeg\r\n\r\n0123456789\r\n--XyZ123--\r\n", NULL);
    part p[4];
    int n;
    assert_int_equal(parse(CT, &good, p, 4, &n), 0);
    assert_int_equal(n, 1);
    /* no content type, no boundary, an empty one, another one */
    assert_int_equal(parse(NULL, &good, p, 4, &n), -1);
    assert_int_equal(parse("multipart/form-data", &good, p, 4, &n), -1);
    assert_int_equal(parse("multipart/form-data; boundary=", &good, p, 4, &n), -1);
    assert_int_equal(parse("multipart/form-data; boundary=\"\"", &good, p, 4, &n), -1);
    assert_int_equal(parse("multipart/form-data; boundary=Other", &good, p, 4, &n), -1);
    /* "xboundary" is not the boundary parameter */
    assert_int_equal(parse("multipart/form-data; xboundary=XyZ123", &good, p, 4, &n), -1);
    /* every cut of the body short of the closing "--" is refused, never read past */
    size_t close = (size_t)(strstr((const char *)good.p, "--XyZ123--") - (const char *)good.p) + 10;
    for (size_t cut = 0; cut < close; cut++) {
        tu_buf t = {good.p, cut, cut};
        int r = parse(CT, &t, p, 4, &n);
        if (r != -1)
            fail_msg("body cut at %zu of %zu accepted (%d parts)", cut, good.n, n);
    }
    /* junk instead of CRLF after a delimiter */
    tu_buf j = {0};
    tu_buf_cat(&j, "--XyZ123 junk\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--XyZ123--", NULL);
    assert_int_equal(parse(CT, &j, p, 4, &n), -1);
    free(j.p);
    /* LF-only line ends are not multipart */
    tu_buf l = {0};
    tu_buf_cat(&l, "--XyZ123\nContent-Disposition: form-data; name=\"a\"\n\nx\n--XyZ123--", NULL);
    assert_int_equal(parse(CT, &l, p, 4, &n), -1);
    free(l.p);
    /* an empty body */
    tu_buf e = {0};
    tu_buf_cat(&e, "", NULL);
    assert_int_equal(parse(CT, &e, p, 4, &n), -1);
    free(e.p);
    free(good.p);
}

/* ------------------------------------------------------------ query strings over HTTP */

static struct MHD_Daemon *daemon_;
static int port;

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *uri)
{
    (void)cls, (void)c;
    return strlen(uri); /* as the server does: values reach the helpers raw */
}

static json_t *hex_or_null(const char *v)
{
    if (!v)
        return json_null();
    char h[1024] = "";
    for (size_t i = 0; v[i] && i < 500; i++)
        snprintf(h + 2 * i, 3, "%02x", (unsigned char)v[i]);
    return json_string(h);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)cls, (void)method, (void)version, (void)upload, (void)upload_size, (void)con_cls;
    req r;
    memset(&r, 0, sizeof r);
    r.conn = conn;
    if (!strcmp(url, "/param")) { /* x, decoded, as hex; null when absent */
        char *v = query_param(&r, "x");
        json_t *j = json_pack("{s:o}", "x", hex_or_null(v));
        free(v);
        return reply_json(&r, 200, j);
    }
    if (!strcmp(url, "/int")) {
        int out = -999;
        if (query_int(&r, "n", 7, -5, 50, &out) < 0)
            return MHD_YES; /* replied 400 */
        return reply_json(&r, 200, json_pack("{s:i}", "n", out));
    }
    if (!strcmp(url, "/opts")) {
        imgsim_query_opts o;
        imgsim_where *w = NULL;
        if (query_opts_parse(&r, &o, &w) < 0)
            return MHD_YES;
        json_t *ws = json_array();
        for (int i = 0; i < o.nwhere; i++)
            json_array_append_new(ws, json_pack("[s,s]", o.where[i].column, o.where[i].value));
        json_t *j = json_pack("{s:i,s:s,s:i,s:o,s:b}", "k", o.k, "metric",
                              imgsim_metric_name(o.metric), "category_auto", o.category_auto,
                              "where", ws, "where_set", o.where != NULL);
        query_opts_clear(w, o.nwhere);
        return reply_json(&r, 200, j);
    }
    return reply_error(&r, 404, "no such route");
}

static int http_setup(void **state)
{
    (void)state;
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
                               MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
                               MHD_OPTION_END);
    if (!daemon_)
        return -1;
    const union MHD_DaemonInfo *in = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port = in ? in->port : 0;
    return port > 0 ? 0 : -1;
}

static int http_teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(daemon_);
    return 0;
}

/* GET `target` exactly as written; returns the status, the body parsed as JSON in *j. */
static int get(const char *target, json_t **j)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char rq[8192];
    int len = snprintf(rq, sizeof rq, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", target);
    assert_true(len > 0 && (size_t)len < sizeof rq);
    assert_int_equal(write(fd, rq, (size_t)len), len);
    static char resp[65536];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof resp - 1 && (got = read(fd, resp + n, sizeof resp - 1 - n)) > 0)
        n += (size_t)got;
    close(fd);
    resp[n] = 0;
    int status = 0;
    assert_int_equal(sscanf(resp, "HTTP/1.%*d %d", &status), 1);
    const char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    json_error_t je;
    *j = json_loads(body + 4, 0, &je);
    if (!*j)
        fail_msg("GET %s: body is not JSON: %s", target, body + 4);
    return status;
}

static void expect_param(const char *query, const char *want_hex)
{
    char t[4096];
    snprintf(t, sizeof t, "/param%s", query);
    json_t *j;
    assert_int_equal(get(t, &j), 200);
    json_t *x = json_object_get(j, "x");
    if (!want_hex)
        assert_true(json_is_null(x));
    else if (!json_is_string(x) || strcmp(json_string_value(x), want_hex))
        fail_msg("%s: x = %s, want %s", query, json_is_string(x) ? json_string_value(x) : "null",
                 want_hex);
    json_decref(j);
}

static void test_query_param(void **state)
{
    (void)state;
    expect_param("", NULL);
    expect_param("?y=1", NULL);
    expect_param("?x=ab", "6162");
    expect_param("?x=a+b%21", "612062" "21");       /* form decoding: '+' is a space */
    expect_param("?y=0&x=%C3%A9&z=2", "c3a9");
    expect_param("?x=1&x=2", "31");                 /* the first of repeated values */
    expect_param("?x=", "");
    expect_param("?x", "");                         /* a bare key: empty, not absent */
    expect_param("?xx=1&X=2", NULL);                /* keys match exactly */
    /* bad escapes come back as the one-byte marker \x01, never as decoded text */
    expect_param("?x=%zz", "01");
    expect_param("?x=%00", "01");
    expect_param("?x=abc%4", "01");
    expect_param("?x=%", "01");
}

static void expect_int(const char *query, int status, int want)
{
    char t[4096];
    snprintf(t, sizeof t, "/int%s", query);
    json_t *j;
    int s = get(t, &j);
    if (s != status)
        fail_msg("%s: status %d, want %d", query, s, status);
    if (status == 200) {
        assert_int_equal(json_integer_value(json_object_get(j, "n")), want);
    } else {
        const char *e = json_string_value(json_object_get(j, "error"));
        assert_non_null(e);
        assert_non_null(strstr(e, "parameter n must be a number from -5 to 50"));
    }
    json_decref(j);
}

static void test_query_int(void **state)
{
    (void)state;
    expect_int("", 200, 7);
    expect_int("?n=0", 200, 0);
    expect_int("?n=50", 200, 50);
    expect_int("?n=-5", 200, -5);
    expect_int("?n=%2D5", 200, -5);
    expect_int("?n=51", 400, 0);
    expect_int("?n=-6", 400, 0);
    expect_int("?n=", 400, 0);
    expect_int("?n", 400, 0);
    expect_int("?n=5x", 400, 0);
    expect_int("?n=5%20", 400, 0);
    expect_int("?n=0x10", 400, 0);
    expect_int("?n=1e1", 400, 0);
    expect_int("?n=99999999999999999999999", 400, 0);
    expect_int("?n=4294967301", 400, 0);            /* 2^32 + 5 must not wrap to 5 */
    expect_int("?n=%zz", 400, 0);
    expect_int("?n=%005", 400, 0);
}

/* /opts: status, and for 200 the parsed options as JSON; for 400 the error message. */
static json_t *opts_of(const char *query, int status)
{
    char t[8192];
    snprintf(t, sizeof t, "/opts%s", query);
    json_t *j;
    int s = get(t, &j);
    if (s != status)
        fail_msg("%s: status %d, want %d (%s)", query, s, status,
                 json_string_value(json_object_get(j, "error")));
    return j;
}

static void test_query_opts(void **state)
{
    (void)state;
    json_t *j = opts_of("", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "k")), 10);
    assert_string_equal(json_string_value(json_object_get(j, "metric")), "cosine");
    assert_int_equal(json_integer_value(json_object_get(j, "category_auto")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "where")), 0);
    assert_true(json_is_true(json_object_get(j, "where_set"))); /* never NULL */
    json_decref(j);

    j = opts_of("?k=3&metric=L2&category=auto&where=label%3Dc%264&where=grp=g+5&where=note=a=b", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "k")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "metric")), "l2");
    assert_int_equal(json_integer_value(json_object_get(j, "category_auto")), 1);
    json_t *w = json_object_get(j, "where");
    assert_int_equal(json_array_size(w), 3);
    const char *want[3][2] = {{"label", "c&4"}, {"grp", "g 5"}, {"note", "a=b"}};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(json_string_value(json_array_get(json_array_get(w, (size_t)i), 0)), want[i][0]);
        assert_string_equal(json_string_value(json_array_get(json_array_get(w, (size_t)i), 1)), want[i][1]);
    }
    json_decref(j);

    j = opts_of("?metric=manhattan&category=none&k=1000", 200);
    assert_string_equal(json_string_value(json_object_get(j, "metric")), "l1");
    assert_int_equal(json_integer_value(json_object_get(j, "k")), 1000);
    json_decref(j);
    j = opts_of("?category=", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "category_auto")), 0);
    json_decref(j);
    j = opts_of("?where=label%3D", 200); /* an empty value is a value */
    assert_int_equal(json_array_size(json_object_get(j, "where")), 1);
    json_decref(j);

    /* refused, each with its message */
    struct { const char *q, *msg; } bad[] = {
        {"?k=0", "parameter k"}, {"?k=1001", "parameter k"}, {"?k=%zz", "parameter k"},
        {"?metric=dot", "parameter metric"}, {"?metric=%00", "parameter metric"},
        {"?category=label", "parameter category"},
        {"?where=label", "parameter where"}, {"?where=%3Dc3", "parameter where"},
        {"?where=", "parameter where"}, {"?where=label%3D%zz", "parameter where"},
        {"?where=source%3D/etc/passwd", "parameter where"}, {"?where=hash=0", "parameter where"},
        {"?where=model=x", "parameter where"},
        {"?where=label=c3&where=bad", "parameter where"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = opts_of(bad[i].q, 400);
        const char *e = json_string_value(json_object_get(j, "error"));
        if (!e || !strstr(e, bad[i].msg))
            fail_msg("%s: error '%s' lacks '%s'", bad[i].q, e ? e : "(none)", bad[i].msg);
        json_decref(j);
    }
    /* at most 16 where conditions */
    char q[4096] = "?";
    for (int i = 0; i < 16; i++)
        snprintf(q + strlen(q), sizeof q - strlen(q), "%swhere=g%d=v", i ? "&" : "", i);
    j = opts_of(q, 200);
    assert_int_equal(json_array_size(json_object_get(j, "where")), 16);
    json_decref(j);
    snprintf(q + strlen(q), sizeof q - strlen(q), "&where=g16=v");
    j = opts_of(q, 400);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "at most 16"));
    json_decref(j);
}

/* ------------------------------------------------------------ small helpers */

static void test_types_and_statuses(void **state)
{
    (void)state;
    static const struct { const char *t; int yes; } types[] = {
        {"image/jpeg", 1}, {"  IMAGE/PNG; q=1", 1}, {"application/octet-stream", 1},
        {"text/plain", 0}, {"imagex/png", 0}, {"", 0}, {NULL, 0},
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (is_image_type(types[i].t) != types[i].yes)
            fail_msg("is_image_type(%s) != %d", types[i].t ? types[i].t : "NULL", types[i].yes);

    size_t n;
    uint8_t *jpeg = tu_read(tu_wang(7), &n);
    assert_string_equal(sniff_ext(jpeg, n), "jpg");
    assert_null(sniff_ext(jpeg, 2));          /* too short to tell */
    free(jpeg);
    static const struct { const char *b; size_t n; const char *ext; } sig[] = {
        {"\x89PNG\r\n\x1a\n....", 12, "png"}, {"\x89PNG\r\n\x1a", 7, NULL},
        {"RIFF\0\0\0\0WEBPVP8 ", 16, "webp"}, {"RIFF\0\0\0\0WAVEfmt ", 16, NULL},
        {"GIF89a", 6, "gif"}, {"GIF87a", 6, "gif"}, {"GIF88a", 6, NULL},
        {"II*\0", 4, "tif"}, {"MM\0*", 4, "tif"}, {"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0", 18, "bmp"},
        {"BM", 2, NULL} /* no plausible BMP header */, {"<svg", 4, NULL},
        {"", 0, NULL},
    };
    for (size_t i = 0; i < sizeof sig / sizeof *sig; i++) {
        const char *got = sniff_ext((const unsigned char *)sig[i].b, sig[i].n);
        if (sig[i].ext ? !got || strcmp(got, sig[i].ext) : got != NULL)
            fail_msg("signature %zu: %s, want %s", i, got ? got : "none",
                     sig[i].ext ? sig[i].ext : "none");
    }

    static const int status[][2] = {
        {IMGSIM_E_ARG, 400}, {IMGSIM_E_DECODE, 400}, {IMGSIM_E_TOO_BIG, 413},
        {IMGSIM_E_UNSUPPORTED, 415}, {IMGSIM_E_NOTFOUND, 404}, {IMGSIM_E_IO, 500},
        {IMGSIM_E_INTERNAL, 500},
    };
    for (size_t i = 0; i < sizeof status / sizeof *status; i++)
        assert_int_equal(http_status_of((imgsim_status)status[i][0]), status[i][1]);

    static const struct { const char *s; int valid; } utf8[] = {
        {"", 1}, {"plain", 1}, {"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98", 1},
        {"\xff", 0}, {"\x80", 0},                       /* a lone continuation byte */
        {"\xc3", 0}, {"\xe2\x82", 0}, {"\xe2\x82x", 0},   /* cut short */
        {"\xc0\x80", 0}, {"\xc1\xbf", 0},                /* overlong */
        {"\xf8\x88\x80\x80\x80", 0},
    };
    for (size_t i = 0; i < sizeof utf8 / sizeof *utf8; i++)
        if (utf8_valid(utf8[i].s) != utf8[i].valid)
            fail_msg("utf8_valid case %zu != %d", i, utf8[i].valid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_multipart_long_fields),
        cmocka_unit_test(test_multipart_malformed),
        cmocka_unit_test(test_query_param),
        cmocka_unit_test(test_query_int),
        cmocka_unit_test(test_query_opts),
        cmocka_unit_test(test_types_and_statuses),
    };
    return cmocka_run_group_tests(tests, http_setup, http_teardown);
}

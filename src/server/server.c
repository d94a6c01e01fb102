/*
 * server.c — the libmicrohttpd daemon (internal polling thread + thread pool): request
 * state, dispatch through the route table (routes.c), each route's body limit (413 from
 * Content-Length before the body is read, and again while it arrives), the write-token
 * rule, one access-log line per request on stderr (method, path, status, ms), and
 * start/stop with in-flight draining.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <malloc.h>

#include "core/grow.h"
#include "server/internal.h"

size_t srv_items(server *s)
{
    pthread_mutex_lock(&s->meta_mu);
    size_t n = 0; /* 0 when the catalogue cannot be read */
    imgsim_db_count(s->meta_db, &n, NULL);
    pthread_mutex_unlock(&s->meta_mu);
    return n;
}

int srv_port(const server *s) { return s->port; }
const char *srv_host(const server *s) { return s->host; }
const char *srv_model(const server *s) { return imgsim_model_name(s->model); }

/* 0 when the token is right; otherwise the reply has been sent. */
static int check_token(req *r)
{
    const char *want = r->s->o.write_token;
    if (!want || !*want) {
        reply_error(r, 403, "writes are disabled: start the server with --write-token");
        return -1;
    }
    const char *got = header(r, "X-Imgsim-Token");
    const char *auth = header(r, "Authorization");
    if (!got && auth && !strncasecmp(auth, "Bearer ", 7))
        got = auth + 7;
    size_t wl = strlen(want), gl = got ? strlen(got) : 0;
    unsigned diff = (unsigned)(wl != gl);
    for (size_t i = 0; i < wl; i++) /* constant time in the token */
        diff |= (unsigned)(unsigned char)want[i] ^ (unsigned)(unsigned char)(i < gl ? got[i] : 0);
    if (!got || diff) {
        reply_error(r, 401, "missing or wrong write token");
        return -1;
    }
    return 0;
}

#define DISCARD_MAX (1u << 20)

/* The route's body limit in bytes; 0 when it takes no body. */
static size_t body_limit(const req *r)
{
    size_t m = r->rt ? r->rt->max_body : 0;
    return m == ROUTE_BODY_UPLOAD ? r->s->o.max_upload : m;
}

static enum MHD_Result too_big(req *r)
{
    size_t lim = body_limit(r);
    return reply_error(r, 413, "request body over the limit of %zu bytes",
                       lim ? lim : r->s->o.max_upload);
}

/* The access log shows request text with control and non-ASCII bytes escaped. */
static void log_text(const char *t)
{
    for (const unsigned char *p = (const unsigned char *)t; p && *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '\\')
            fprintf(stderr, "\\x%02x", *p);
        else
            fputc(*p, stderr);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        *con_cls = r;
        r->s = s;
        r->conn = conn;
        r->t0 = clock_now();
        atomic_fetch_add(&s->inflight, 1);
        if (!(r->method = strdup(method)) || !(r->path = strdup(url)))
            return MHD_NO;
        /* refuse early, before any body is read */
        int found = route_find(r->method, r->path, &r->rt, &r->id, &r->rest);
        if (found < 0)
            return reply_error(r, 404, "no such route");
        if (found > 0)
            return reply_error(r, 405, "method %s not allowed here", method);
        const char *cl = header(r, "Content-Length");
        unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
        if (clen > s->o.max_upload)
            return too_big(r);
        if (!body_limit(r) && (clen > 0 || header(r, "Transfer-Encoding")))
            return reply_error(r, 413, "%s requests to this route take no body", method);
        if (clen > body_limit(r))
            return too_big(r);
        if (r->rt->writes)
            check_token(r); /* replies 401 / 403 when it fails */
        return MHD_YES;
    }
    r->conn = conn;
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->status || r->too_big) {
            /* MHD 0.9 can only reply once the body has ended: read on a little so a slightly
             * oversized upload still gets its 413, then drop a sender that keeps going */
            r->discarded += n;
            return r->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        size_t limit = body_limit(r);
        if (r->len + n > limit) {
            r->too_big = 1;
            r->discarded = n;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            /* doubling, but never past the route's limit (+ the NUL) */
            size_t nc = grow_capacity(r->cap, r->len + n + 1, 65536);
            if (!nc || nc > limit + 1)
                nc = limit + 1;
            char *nb = realloc(r->body, nc);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            r->cap = nc;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    if (r->status)
        return MHD_YES;
    if (r->too_big)
        return too_big(r);
    return r->rt->handler(r);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    server *s = cls;
    req *r = *con_cls;
    if (!r)
        return;
    double ms = clock_ms_since(r->t0);
    int status = r->status ? r->status : 499; /* no reply: client went away */
    metrics_record(&s->metrics, route_label(r->rt), status, ms / 1e3);
    if (!s->o.quiet) {
        log_text(r->method ? r->method : "-");
        fputc(' ', stderr);
        log_text(r->path ? r->path : "-");
        fprintf(stderr, " %d %.1fms%s\n", status, ms,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    }
    free(r->method);
    free(r->path);
    free(r->id);
    free(r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

/* Keep URLs and query values as sent: routes split the path before decoding the id. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *uri)
{
    (void)cls;
    (void)c;
    return strlen(uri);
}

static void srv_free(server *s)
{
    if (!s)
        return;
    pool_free(&s->pool);
    imgsim_db_close(s->wdb);
    imgsim_db_close(s->meta_db);
    imgsim_model_close(s->model);
    thumbs_free(&s->thumbs);
    metrics_free(&s->metrics);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->meta_mu);
    free(s->dir);
    free(s);
}

static imgsim_status fail(imgsim_error *err, imgsim_status code, const char *msg)
{
    if (err) {
        err->code = code;
        snprintf(err->msg, sizeof err->msg, "%s", msg);
    }
    return code;
}

imgsim_status srv_start(const srv_opts *o, server **out, imgsim_error *err)
{
    /* Many HTTP threads (slots + queue + 2) each allocating for decode and inference would
     * each get a glibc malloc arena and grow them all: under sustained POST /api/search load
     * RSS kept creeping (88 -> 128 MB over four 15 s wrk runs) where two arenas level off
     * (88 -> 119 MB). Set before any thread starts. */
    mallopt(M_ARENA_MAX, 2);
    *out = NULL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    server *s = calloc(1, sizeof *s);
    if (!s)
        return fail(err, IMGSIM_E_NOMEM, "out of memory");
    s->o = *o;
    if (!s->o.host || !*s->o.host)
        s->o.host = "127.0.0.1";
    if (s->o.slots <= 0)
        s->o.slots = (int)cores;
    if (s->o.queue < 0)
        s->o.queue = 32;
    /* A request waiting for a slot holds an HTTP thread: enough threads for every slot and
     * every queue place, plus two, keep the queue limit reachable (then 503) and /healthz,
     * /metrics and the page answering under load. */
    if (s->o.threads <= 0)
        s->o.threads = s->o.slots + s->o.queue + 2 > 256 ? 256 : s->o.slots + s->o.queue + 2;
    if (!s->o.max_upload)
        s->o.max_upload = 20u << 20;
    if (!s->o.thumb_cache)
        s->o.thumb_cache = 32u << 20;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->meta_mu, NULL);
    thumbs_init(&s->thumbs, s->o.thumb_cache);
    metrics_init(&s->metrics, s->labels, route_labels(s->labels, METRICS_MAX_LABELS));
    pthread_mutex_init(&s->pool.mu, NULL); /* pool_free is safe even if pool_init never ran */
    pthread_cond_init(&s->pool.cv, NULL);
    atomic_init(&s->inflight, 0);
    snprintf(s->host, sizeof s->host, "%s", s->o.host);

    imgsim_status st;
    if (!(s->dir = realpath(o->db_dir, NULL))) {
        srv_free(s);
        return fail(err, IMGSIM_E_NOTFOUND, "the collection folder does not exist");
    }
    if ((st = imgsim_db_open(s->dir, IMGSIM_DB_READ, NULL, 0, &s->meta_db, err)) != IMGSIM_OK)
        goto bad;
    imgsim_model_opts mo;
    imgsim_model_opts_default(&mo);
    mo.no_normalize = 1;   /* the collection stores raw vectors */
    mo.threads = (int)(cores / s->o.slots > 0 ? cores / s->o.slots : 1);
    if ((st = imgsim_model_open(imgsim_db_model(s->meta_db), &mo, &s->model, err)) != IMGSIM_OK)
        goto bad;
    if (imgsim_model_dim(s->model) != imgsim_db_dim(s->meta_db)) {
        st = fail(err, IMGSIM_E_ARG, "the model's vectors do not match the collection's");
        goto bad;
    }
    imgsim_model_prep(s->model, &s->prep);
    pthread_mutex_destroy(&s->pool.mu);
    pthread_cond_destroy(&s->pool.cv);
    if ((st = pool_init(&s->pool, s->o.slots, s->o.queue, s->dir, s->model, err)) != IMGSIM_OK)
        goto bad;

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", s->o.port);
    if (getaddrinfo(s->o.host, port, &hints, &ai) != 0 || !ai) {
        st = fail(err, IMGSIM_E_ARG, "cannot resolve the --host address");
        goto bad;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(
        flags, (uint16_t)s->o.port, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(s->o.threads > 1 ? s->o.threads : 0),
        MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)512, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        st = fail(err, IMGSIM_E_IO, "cannot listen on the address (port in use?)");
        goto bad;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->o.port;
    *out = s;
    return IMGSIM_OK;
bad:
    srv_free(s);
    return st;
}

void srv_stop(server *s)
{
    if (!s)
        return;
    /* stop accepting, then give in-flight requests up to 10 s to finish */
    MHD_socket ls = MHD_quiesce_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    for (int i = 0; i < 1000 && atomic_load(&s->inflight) > 0; i++)
        usleep(10000);
    MHD_stop_daemon(s->d);
    srv_free(s);
}

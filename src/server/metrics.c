/*
 * metrics.c — request counters and latency histograms by route, and GET /metrics in the
 * Prometheus text format (requests, latencies, queue depth, busy slots, items).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

static const int statuses[] = {200, 201, 304, 400, 401, 403, 404, 405, 413, 415, 500, 503};
#define NSTATUS (int)(sizeof statuses / sizeof *statuses)
static const double bounds[NBUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   10};
static const char *const names[R_COUNT] = {"other",  "index",   "static", "healthz", "metrics",
                                           "stats",  "labels",  "random", "search",  "item",
                                           "similar", "image",  "add",    "delete"};

const char *route_name(int route)
{
    return route >= 0 && route < R_COUNT ? names[route] : "other";
}

void metrics_init(metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void metrics_free(metrics *m) { pthread_mutex_destroy(&m->mu); }

void metrics_record(metrics *m, int route, int status, double seconds)
{
    if (route < 0 || route >= R_COUNT)
        route = R_NONE;
    int si = NSTATUS; /* "other" status slot */
    for (int i = 0; i < NSTATUS; i++)
        if (statuses[i] == status)
            si = i;
    int b = 0;
    while (b < NBUCKETS && seconds > bounds[b])
        b++;
    pthread_mutex_lock(&m->mu);
    m->req[route][si]++;
    m->hist[route][b]++;
    m->sum[route] += seconds;
    m->count[route]++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void add(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

enum MHD_Result api_metrics(req *r)
{
    server *s = r->s;
    buf b = {malloc(8192), 0, 8192, 0};
    if (!b.p)
        return reply_error(r, 500, "out of memory");
    metrics snap;
    pthread_mutex_lock(&s->metrics.mu);
    memcpy(snap.req, s->metrics.req, sizeof snap.req);
    memcpy(snap.hist, s->metrics.hist, sizeof snap.hist);
    memcpy(snap.sum, s->metrics.sum, sizeof snap.sum);
    memcpy(snap.count, s->metrics.count, sizeof snap.count);
    pthread_mutex_unlock(&s->metrics.mu);

    add(&b, "# HELP imgsim_requests_total HTTP requests by route and status.\n"
            "# TYPE imgsim_requests_total counter\n");
    for (int rt = 0; rt < R_COUNT; rt++)
        for (int i = 0; i <= NSTATUS; i++)
            if (snap.req[rt][i]) {
                if (i < NSTATUS)
                    add(&b, "imgsim_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                        names[rt], statuses[i], snap.req[rt][i]);
                else
                    add(&b, "imgsim_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                        names[rt], snap.req[rt][i]);
            }
    add(&b, "# HELP imgsim_request_duration_seconds Time from request start to reply.\n"
            "# TYPE imgsim_request_duration_seconds histogram\n");
    for (int rt = 0; rt < R_COUNT; rt++) {
        if (!snap.count[rt])
            continue;
        unsigned long long cum = 0;
        for (int i = 0; i < NBUCKETS; i++) {
            cum += snap.hist[rt][i];
            add(&b, "imgsim_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                names[rt], bounds[i], cum);
        }
        add(&b, "imgsim_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
            names[rt], snap.count[rt]);
        add(&b, "imgsim_request_duration_seconds_sum{route=\"%s\"} %.6f\n", names[rt],
            snap.sum[rt]);
        add(&b, "imgsim_request_duration_seconds_count{route=\"%s\"} %llu\n", names[rt],
            snap.count[rt]);
    }
    add(&b, "# HELP imgsim_queue_depth Requests waiting for a worker slot.\n"
            "# TYPE imgsim_queue_depth gauge\nimgsim_queue_depth %d\n",
        pool_waiting(&s->pool));
    add(&b, "# HELP imgsim_slots_busy Worker slots in use.\n"
            "# TYPE imgsim_slots_busy gauge\nimgsim_slots_busy %d\n",
        pool_busy(&s->pool));
    add(&b, "# HELP imgsim_slots Worker slots.\n# TYPE imgsim_slots gauge\nimgsim_slots %d\n",
        s->pool.n);
    add(&b, "# HELP imgsim_items Items in the collection.\n"
            "# TYPE imgsim_items gauge\nimgsim_items %zu\n",
        srv_items(s));
    if (b.oom) {
        free(b.p);
        return reply_error(r, 500, "out of memory");
    }
    return reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
}

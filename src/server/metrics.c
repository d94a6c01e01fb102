/*
 * metrics.c — request counters and latency histograms by route label, rendered with the
 * gauges it is handed (queue depth, busy slots, slots, items) in the Prometheus text format
 * for GET /metrics.
 */
#include "core/grow.h"
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int statuses[METRICS_NSTATUS - 1] = {200, 201, 304, 400, 401, 403,
                                                  404, 405, 413, 415, 500, 503};
#define NSTATUS (METRICS_NSTATUS - 1)
static const double bounds[METRICS_NBUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                0.1,   0.25,   0.5,   1,    2.5,   10};

void metrics_init(metrics *m, const char *const *labels, int n)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->labels = labels;
    m->nlabels = n < METRICS_MAX_LABELS ? n : METRICS_MAX_LABELS;
}

void metrics_free(metrics *m) { pthread_mutex_destroy(&m->mu); }

void metrics_record(metrics *m, int label, int status, double seconds)
{
    if (label < 0 || label >= m->nlabels)
        label = 0;
    int si = NSTATUS; /* "other" status slot */
    for (int i = 0; i < NSTATUS; i++)
        if (statuses[i] == status)
            si = i;
    int b = 0;
    while (b < METRICS_NBUCKETS && seconds > bounds[b])
        b++;
    pthread_mutex_lock(&m->mu);
    m->req[label][si]++;
    m->hist[label][b]++;
    m->sum[label] += seconds;
    m->count[label]++;
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
        if (grow_array((void **)&b->p, &b->cap, b->len + (size_t)n + 1, 1, 4096)) {
            b->oom = 1;
            return;
        }
    }
}

char *metrics_render(metrics *m, const metrics_gauges *g, size_t *len)
{
    buf b = {malloc(8192), 0, 8192, 0};
    metrics *snap = malloc(sizeof *snap);
    if (!b.p || !snap) {
        free(b.p);
        free(snap);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    memcpy(snap->req, m->req, sizeof snap->req);
    memcpy(snap->hist, m->hist, sizeof snap->hist);
    memcpy(snap->sum, m->sum, sizeof snap->sum);
    memcpy(snap->count, m->count, sizeof snap->count);
    pthread_mutex_unlock(&m->mu);
    const char *const *names = m->labels;

    add(&b, "# HELP imgsim_requests_total HTTP requests by route and status.\n"
            "# TYPE imgsim_requests_total counter\n");
    for (int rt = 0; rt < m->nlabels; rt++)
        for (int i = 0; i <= NSTATUS; i++)
            if (snap->req[rt][i]) {
                if (i < NSTATUS)
                    add(&b, "imgsim_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                        names[rt], statuses[i], snap->req[rt][i]);
                else
                    add(&b, "imgsim_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                        names[rt], snap->req[rt][i]);
            }
    add(&b, "# HELP imgsim_request_duration_seconds Time from request start to reply.\n"
            "# TYPE imgsim_request_duration_seconds histogram\n");
    for (int rt = 0; rt < m->nlabels; rt++) {
        if (!snap->count[rt])
            continue;
        unsigned long long cum = 0;
        for (int i = 0; i < METRICS_NBUCKETS; i++) {
            cum += snap->hist[rt][i];
            add(&b, "imgsim_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                names[rt], bounds[i], cum);
        }
        add(&b, "imgsim_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
            names[rt], snap->count[rt]);
        add(&b, "imgsim_request_duration_seconds_sum{route=\"%s\"} %.6f\n", names[rt],
            snap->sum[rt]);
        add(&b, "imgsim_request_duration_seconds_count{route=\"%s\"} %llu\n", names[rt],
            snap->count[rt]);
    }
    free(snap);
    add(&b, "# HELP imgsim_queue_depth Requests waiting for a worker slot.\n"
            "# TYPE imgsim_queue_depth gauge\nimgsim_queue_depth %d\n",
        g->queue_depth);
    add(&b, "# HELP imgsim_slots_busy Worker slots in use.\n"
            "# TYPE imgsim_slots_busy gauge\nimgsim_slots_busy %d\n",
        g->slots_busy);
    add(&b, "# HELP imgsim_slots Worker slots.\n# TYPE imgsim_slots gauge\nimgsim_slots %d\n",
        g->slots);
    add(&b, "# HELP imgsim_items Items in the collection.\n"
            "# TYPE imgsim_items gauge\nimgsim_items %zu\n",
        g->items);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

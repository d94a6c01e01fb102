/*
 * metrics.h — request counters and latency histograms by label (the route names), and
 * their rendering with a snapshot of gauges in the Prometheus text format. Knows nothing of
 * the server: it is given the label names once and the gauge values at each rendering.
 */
#ifndef IMGSIM_SERVER_METRICS_H
#define IMGSIM_SERVER_METRICS_H

#include <pthread.h>
#include <stddef.h>

#define METRICS_MAX_LABELS 32
#define METRICS_NSTATUS 13       /* the statuses counted one by one, plus "other" */
#define METRICS_NBUCKETS 12

typedef struct metrics {
    pthread_mutex_t mu;
    const char *const *labels;   /* not owned; labels[0] counts what has no route */
    int nlabels;
    unsigned long long req[METRICS_MAX_LABELS][METRICS_NSTATUS];
    unsigned long long hist[METRICS_MAX_LABELS][METRICS_NBUCKETS + 1];
    double sum[METRICS_MAX_LABELS];
    unsigned long long count[METRICS_MAX_LABELS];
} metrics;

/* The gauges of one rendering, read by the caller just before. */
typedef struct metrics_gauges {
    int queue_depth;             /* requests waiting for a worker slot */
    int slots_busy;
    int slots;
    size_t items;                /* in the collection */
} metrics_gauges;

/* `labels` (n of them, at most METRICS_MAX_LABELS; more are counted as labels[0]) must
 * outlive m. */
void metrics_init(metrics *m, const char *const *labels, int n);
void metrics_free(metrics *m);
/* Count one reply: label index (out of range: 0), HTTP status, seconds since it started. */
void metrics_record(metrics *m, int label, int status, double seconds);
/* The Prometheus text of the counters and `g` (caller frees); NULL when out of memory. */
char *metrics_render(metrics *m, const metrics_gauges *g, size_t *len);

#endif

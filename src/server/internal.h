/*
 * internal.h — what the server's files share: the server struct, a request's state, the
 * route table's entries, the slot pool, the thumbnail cache, the request-bound HTTP helpers
 * (replies, query parameters) and the handlers. Connection-free helpers are in http.h,
 * counters in metrics.h.
 */
#ifndef IMGSIM_SERVER_INTERNAL_H
#define IMGSIM_SERVER_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/clock.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/server.h"

/* ---- pool.c: worker slots */
typedef struct slot {
    imgsim_db *db;     /* read-only handle: used by this slot's request only */
    imgsim_ctx *ctx;   /* inference context */
    int busy;
} slot;

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot *slots;
    int n, nfree;
    int waiting, queue_limit;
} pool;

imgsim_status pool_init(pool *p, int n, int queue_limit, const char *dir, imgsim_model *m,
                        imgsim_error *err);
void pool_free(pool *p);
/* A free slot, waiting for one if fewer than queue_limit requests already wait; NULL when
 * overloaded (reply 503). */
slot *pool_acquire(pool *p);
void pool_release(pool *p, slot *s);
int pool_waiting(pool *p);
int pool_busy(pool *p);

/* ---- thumbs.c: LRU cache of JPEG thumbnails by id + size */
typedef struct thumb_entry thumb_entry;
typedef struct thumbs {
    pthread_mutex_t mu;
    thumb_entry *head, *tail;  /* most recently used first */
    size_t bytes, max_bytes, count;
} thumbs;

void thumbs_init(thumbs *t, size_t max_bytes);
void thumbs_free(thumbs *t);

/* ---- server.c */
struct server {
    srv_opts o;
    char *dir;                 /* absolute collection directory */
    char host[256];
    int port;
    struct MHD_Daemon *d;
    imgsim_model *model;
    imgsim_prep prep;
    pool pool;
    thumbs thumbs;
    metrics metrics;
    const char *labels[METRICS_MAX_LABELS];  /* metrics labels: "other", then route names */
    pthread_mutex_t meta_mu;   /* guards meta_db: counts for /healthz and /metrics */
    imgsim_db *meta_db;
    pthread_mutex_t wmu;       /* guards wdb, the one writer (opened at the first write) */
    imgsim_db *wdb;
    atomic_int inflight;
};

typedef struct req req;

/* ---- routes.c: the route table, the one place that knows paths and methods. It drives
 * routing (404 / 405), the Allow header, HEAD (answered wherever GET is), the write-token
 * rule, body limits and the metrics labels. */
#define ROUTE_BODY_UPLOAD ((size_t)-1)  /* max_body: up to the server's --max-upload */
typedef struct route {
    const char *method;        /* "GET" also answers HEAD */
    const char *pattern;       /* a literal path, or one with "{id}" (a percent-decoded,
                                  non-empty, UTF-8 id, '/' allowed) or a final "*" (any rest) */
    const char *name;          /* metrics label */
    enum MHD_Result (*handler)(req *r);   /* sends exactly one reply */
    int writes;                /* needs the write token */
    size_t max_body;           /* 0: takes no body; ROUTE_BODY_UPLOAD; or bytes */
} route;

/* Route a request. 0: *rt is the entry; 1: the path is known but not for this method (*rt
 * is the path's first entry, for the Allow header and the label); -1: no route (*rt NULL).
 * For a match, *id is the decoded {id} (caller frees; NULL without one) and *rest the path
 * after a "*" pattern's prefix. */
int route_find(const char *method, const char *path, const route **rt, char **id,
               const char **rest);
/* "GET, HEAD, DELETE": the methods of the entries sharing rt's pattern. */
void route_allow(const route *rt, char *out, size_t n);
/* The metrics labels: "other" (no route), then each distinct route name in table order;
 * returns how many (at most max). */
int route_labels(const char **names, int max);
/* rt's index in route_labels (0 for NULL). */
int route_label(const route *rt);
/* The URL of route `name` for item `id`: its pattern with {id} percent-encoded
 * (encodeURIComponent); caller frees, NULL when out of memory or no such route. */
char *route_url(const char *name, const char *id);

/* One request's state (MHD's con_cls). */
struct req {
    server *s;
    struct MHD_Connection *conn;
    double t0;                 /* clock_now() when the request began */
    char *method, *path;       /* path as sent (still percent-encoded) */
    const route *rt;           /* NULL: no route */
    char *id;                  /* decoded {id} of the route, or NULL */
    const char *rest;          /* the path after a "*" route's prefix, or NULL */
    int status;                /* reply sent, 0 before */
    char *body;
    size_t len, cap;
    int too_big;
    size_t discarded;     /* body bytes thrown away after too_big */
};

/* ---- http.c: replies and parsing */
/* Queue a reply; `body` is owned (freed by MHD). Records r->status. */
enum MHD_Result reply_raw(req *r, int status, const char *type, char *body, size_t len);
/* JSON reply; steals `j`. */
enum MHD_Result reply_json(req *r, int status, json_t *j);
enum MHD_Result reply_error(req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Query parameter `key` decoded (caller frees), NULL when absent; *bad set on bad escape. */
char *query_param(req *r, const char *key);
/* Integer parameter in [lo, hi] (default when absent); -1 and a 400 reply when invalid. */
int query_int(req *r, const char *key, int def, int lo, int hi, int *out);
/* k, metric, where (repeatable), category from the query string; -1 after a 400 reply.
 * Strings in `w` are owned: free with query_opts_clear. */
int query_opts_parse(req *r, imgsim_query_opts *o, imgsim_where **w);
void query_opts_clear(imgsim_where *w, int n);
const char *header(req *r, const char *name);

/* ---- api_*.c handlers: each sends exactly one reply */
json_t *item_json(const imgsim_item *it);
/* SEARCH reply from results; `id` is the query item or NULL. */
enum MHD_Result reply_results(req *r, const imgsim_results *res, const imgsim_query_opts *o,
                              const char *id);
enum MHD_Result api_healthz(req *r);
enum MHD_Result api_stats(req *r);
enum MHD_Result api_labels(req *r);
enum MHD_Result api_random(req *r);
enum MHD_Result api_item(req *r);
enum MHD_Result api_similar(req *r);
enum MHD_Result api_search(req *r);
enum MHD_Result api_add(req *r);
enum MHD_Result api_delete(req *r);
enum MHD_Result api_image(req *r);
enum MHD_Result api_metrics(req *r);
enum MHD_Result serve_index(req *r);
enum MHD_Result serve_static(req *r);
enum MHD_Result reply_overloaded(req *r);

#endif

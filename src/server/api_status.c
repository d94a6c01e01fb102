/*
 * api_status.c — the endpoints that never wait for a slot: GET /healthz (status and item
 * count) and GET /metrics (metrics.c's counters with the pool's and collection's gauges).
 */
#include <stdlib.h>

#include "server/internal.h"

enum MHD_Result api_healthz(req *r)
{
    json_t *j = json_object();
    if (!j)
        return reply_error(r, 500, "out of memory");
    json_object_set_new(j, "status", json_string("ok"));
    json_object_set_new(j, "items", json_integer((json_int_t)srv_items(r->s)));
    return reply_json(r, 200, j);
}

enum MHD_Result api_metrics(req *r)
{
    server *s = r->s;
    metrics_gauges g = {pool_waiting(&s->pool), pool_busy(&s->pool), s->pool.n, srv_items(s)};
    size_t len = 0;
    char *text = metrics_render(&s->metrics, &g, &len);
    if (!text)
        return reply_error(r, 500, "out of memory");
    return reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

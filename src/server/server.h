/*
 * server.h — `imgsim serve`: the HTTP API and web page over one collection (libmicrohttpd
 * thread pool + jansson). The CLI fills srv_opts, starts the server, waits for a signal and
 * stops it; everything else (routing, slots, thumbnails, metrics) is internal to src/server.
 */
#ifndef IMGSIM_SERVER_SERVER_H
#define IMGSIM_SERVER_SERVER_H

#include <stddef.h>

#include "imgsim.h"

typedef struct srv_opts {
    const char *db_dir;        /* the collection */
    const char *host;          /* address to bind, default 127.0.0.1 */
    int port;                  /* 0: any free port (see srv_port) */
    int threads;               /* HTTP threads; 0 = 2 * cores */
    int slots;                 /* worker slots (db handle + inference context); 0 = cores */
    int queue;                 /* requests allowed to wait for a slot before 503; < 0 = 64 */
    size_t max_upload;         /* request body limit in bytes; 0 = 20 MB */
    const char *write_token;   /* NULL or "": POST/DELETE /api/items refused with 403 */
    size_t thumb_cache;        /* thumbnail cache bytes; 0 = 32 MB */
    int quiet;                 /* no access log */
} srv_opts;

typedef struct server server;

/* Open the collection, its model and the slots, and start listening. */
imgsim_status srv_start(const srv_opts *o, server **out, imgsim_error *err);
int srv_port(const server *s);
const char *srv_host(const server *s);
size_t srv_items(server *s);
const char *srv_model(const server *s);
/* Stop accepting, let in-flight requests finish (up to a few seconds), close everything. */
void srv_stop(server *s);

#endif

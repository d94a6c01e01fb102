/*
 * assets.c — GET / (and /index.html) and GET /static/<name>: the web page's files,
 * embedded in the binary (build/gen/web_assets.c, generated from web/ by
 * scripts/embed_web.py), with ETags and 304.
 */
#include <stdio.h>
#include <string.h>

#include "server/assets.h"
#include "server/internal.h"

const web_asset *asset_find(const char *path)
{
    for (size_t i = 0; i < web_assets_count; i++)
        if (!strcmp(web_assets[i].path, path))
            return &web_assets[i];
    return NULL;
}

/* Reply with asset `a` (404 when NULL), or 304 when If-None-Match has its ETag. */
static enum MHD_Result reply_asset(req *r, const web_asset *a)
{
    if (!a)
        return reply_error(r, 404, "no such page");
    const char *inm = header(r, "If-None-Match");
    int nm = inm && strstr(inm, a->etag);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        nm ? 0 : a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", a->type);
    MHD_add_response_header(resp, "ETag", a->etag);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ok = MHD_queue_response(r->conn, nm ? 304 : 200, resp);
    MHD_destroy_response(resp);
    r->status = nm ? 304 : 200;
    return ok;
}

enum MHD_Result serve_index(req *r)
{
    return reply_asset(r, asset_find("index.html"));
}

enum MHD_Result serve_static(req *r)
{
    const web_asset *a = NULL;
    char name[512];
    const char *rest = r->rest ? r->rest : "";
    /* web/static/x or web/x: whichever layout web/ uses */
    if (!strstr(rest, "..") && snprintf(name, sizeof name, "static/%s", rest) < (int)sizeof name &&
        !(a = asset_find(name)))
        a = asset_find(rest);
    return reply_asset(r, a);
}

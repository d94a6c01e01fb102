/*
 * assets.h — the web page's files embedded in the binary. The table is generated from web/
 * by scripts/embed_web.py into build/gen/web_assets.c.
 */
#ifndef IMGSIM_SERVER_ASSETS_H
#define IMGSIM_SERVER_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *path;            /* relative to web/, e.g. "index.html", "app.js" */
    const char *type;            /* Content-Type */
    const char *etag;            /* quoted strong ETag */
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_count;

/* The asset named `path` (relative to web/), or NULL. */
const web_asset *asset_find(const char *path);

#endif

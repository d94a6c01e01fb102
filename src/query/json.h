/*
 * json.h — search results as JSON (jansson): the one SEARCH schema written by both
 * `imgsim query --json` and the HTTP API's search replies (docs/API.md), so the two cannot
 * drift apart. Callers choose the optional fields and serialise the value themselves.
 */
#ifndef IMGSIM_QUERY_JSON_H
#define IMGSIM_QUERY_JSON_H

#include <jansson.h>

#include "imgsim.h"

typedef struct results_json_opts {
    const char *image;   /* "query.image": the query image's path, or NULL (left out) */
    const char *id;      /* "query.id": the query item, or NULL (left out) */
    int rank;            /* every result gets "rank" (1-based) */
    int source;          /* every result gets "source" (the item's file path or URL) */
    /* Adds the caller's own fields to one result after the common ones (the server's
     * "image_url"); NULL for none. Returns -1 on failure. */
    int (*extra)(json_t *hit, const imgsim_item *it, void *user);
    void *user;
} results_json_opts;

/* {"query": {"image"?, "id"?, "k", "metric", "predicted_label"?, "votes"?, "voters"?,
 *            "from_table", "search", "ef"?, "note"?},
 *  "results": [{"rank"?, "id", "score", "label", "source"?, "metadata", extras...}],
 *  "took_ms"}
 * Strings that are not UTF-8 (JSON cannot carry them) are left out. NULL when out of
 * memory or `extra` failed. */
json_t *query_results_json(const imgsim_results *r, const imgsim_query_opts *o,
                           const results_json_opts *jo, double took_ms);

/* An item's metadata as a JSON object: its meta_json parsed, {} when absent or not an
 * object. NULL only when out of memory. */
json_t *item_metadata_json(const imgsim_item *it);

#endif

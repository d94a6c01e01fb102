/*
 * api_search.c — POST /api/search (raw image bytes, multipart field "image", or JSON
 * {"id": ...}) and GET /api/items/{id}/similar, both answering SEARCH JSON (the schema of
 * src/query/json.c, plus each hit's image_url). Beyond the common search parameters
 * (http.c) they take exact=1, ann=1 and ef=N (the HNSW choice).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/json.h"
#include "server/internal.h"

/* The HTTP API's own field of a search hit: where its thumbnail is. */
static int add_image_url(json_t *hit, const imgsim_item *it, void *user)
{
    (void)user;
    char *url = route_url("image", it->id);
    int rc = url ? json_object_set_new(hit, "image_url", json_string(url)) : -1;
    free(url);
    return rc;
}

enum MHD_Result reply_results(req *r, const imgsim_results *res, const imgsim_query_opts *o,
                              const char *id)
{
    results_json_opts jo = {0};
    jo.id = id;
    jo.extra = add_image_url;
    json_t *j = query_results_json(res, o, &jo, clock_ms_since(r->t0));
    return j ? reply_json(r, 200, j) : reply_error(r, 500, "out of memory");
}

/* A boolean parameter: absent -> 0; 1/true/yes -> 1; 0/false/no/empty -> 0; else -1 (400). */
static int query_bool(req *r, const char *key, int *out)
{
    char *v = query_param(r, key);
    *out = 0;
    if (!v)
        return 0;
    int ok = 1;
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"))
        *out = 1;
    else if (*v && strcmp(v, "0") && strcasecmp(v, "false") && strcasecmp(v, "no"))
        ok = 0;
    free(v);
    if (!ok) {
        reply_error(r, 400, "parameter %s must be 1 or 0", key);
        return -1;
    }
    return 0;
}

/* The common search parameters plus exact, ann and ef; -1 after a 400 reply. */
static int search_opts_parse(req *r, imgsim_query_opts *o, imgsim_where **w)
{
    if (query_opts_parse(r, o, w) < 0)
        return -1;
    int exact = 0, ann = 0;
    if (query_bool(r, "exact", &exact) < 0 || query_bool(r, "ann", &ann) < 0 ||
        query_int(r, "ef", 0, 1, IMGSIM_MAX_EF, &o->ef) < 0) {
        query_opts_clear(*w, o->nwhere);
        *w = NULL;
        return -1;
    }
    if (exact && (ann || o->ef)) {
        query_opts_clear(*w, o->nwhere);
        *w = NULL;
        reply_error(r, 400, "parameter exact excludes ann and ef");
        return -1;
    }
    /* ef tunes the index search, so it asks for the index as ann=1 does */
    o->mode = exact ? IMGSIM_SEARCH_EXACT : ann || o->ef ? IMGSIM_SEARCH_ANN : IMGSIM_SEARCH_AUTO;
    o->no_table |= exact;
    return 0;
}

enum MHD_Result api_similar(req *r)
{
    imgsim_query_opts o;
    imgsim_where *w;
    if (search_opts_parse(r, &o, &w) < 0)
        return MHD_YES;
    slot *sl = pool_acquire(&r->s->pool);
    if (!sl) {
        query_opts_clear(w, o.nwhere);
        return reply_overloaded(r);
    }
    imgsim_results res = {0};
    imgsim_error e = {0};
    imgsim_status st = imgsim_query_id(sl->db, r->id, &o, &res, &e);
    pool_release(&r->s->pool, sl);
    enum MHD_Result ok = st == IMGSIM_OK ? reply_results(r, &res, &o, r->id)
                         : st == IMGSIM_E_NOTFOUND ? reply_error(r, 404, "no item with this id")
                                                   : reply_error(r, http_status_of(st), "%s", e.msg);
    imgsim_results_free(&res);
    query_opts_clear(w, o.nwhere);
    return ok;
}

/* Search by image bytes with slot `sl`. */
static enum MHD_Result by_image(req *r, slot *sl, const char *data, size_t len,
                                const imgsim_query_opts *o)
{
    server *s = r->s;
    imgsim_error e = {0};
    imgsim_image img = {0};
    imgsim_results res = {0};
    float *vec = malloc(sizeof(float) * (size_t)imgsim_model_dim(s->model));
    imgsim_status st = IMGSIM_E_NOMEM;
    if (vec && (st = imgsim_image_load_buffer(data, len, &s->prep, &img, &e)) == IMGSIM_OK &&
        (st = imgsim_embed(sl->ctx, &img, 1, vec, NULL, &e)) == IMGSIM_OK)
        st = imgsim_query_vector(sl->db, vec, o, &res, &e);
    imgsim_image_free(&img);
    free(vec);
    pool_release(&s->pool, sl);
    enum MHD_Result ok;
    if (st == IMGSIM_OK)
        ok = reply_results(r, &res, o, NULL);
    else if (st == IMGSIM_E_NOMEM && !e.msg[0])
        ok = reply_error(r, 500, "out of memory");
    else
        ok = reply_error(r, http_status_of(st), "%s", e.msg[0] ? e.msg : imgsim_status_name(st));
    imgsim_results_free(&res);
    return ok;
}

static enum MHD_Result by_id_json(req *r, const imgsim_query_opts *o)
{
    json_error_t je;
    json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, &je);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!id) {
        json_decref(j);
        return reply_error(r, 400, "JSON body must be an object with a string \"id\"");
    }
    slot *sl = pool_acquire(&r->s->pool);
    if (!sl) {
        json_decref(j);
        return reply_overloaded(r);
    }
    imgsim_results res = {0};
    imgsim_error e = {0};
    imgsim_status st = imgsim_query_id(sl->db, id, o, &res, &e);
    pool_release(&r->s->pool, sl);
    enum MHD_Result ok = st == IMGSIM_OK ? reply_results(r, &res, o, id)
                         : st == IMGSIM_E_NOTFOUND ? reply_error(r, 404, "no item with this id")
                                                   : reply_error(r, http_status_of(st), "%s", e.msg);
    imgsim_results_free(&res);
    json_decref(j);
    return ok;
}

enum MHD_Result api_search(req *r)
{
    imgsim_query_opts o;
    imgsim_where *w;
    if (search_opts_parse(r, &o, &w) < 0)
        return MHD_YES;
    const char *ct = header(r, "Content-Type");
    const char *data = r->body;
    size_t len = r->len;
    enum MHD_Result ok;
    if (ct && !strncasecmp(ct, "application/json", 16)) {
        ok = by_id_json(r, &o);
        goto done;
    }
    if (ct && !strncasecmp(ct, "multipart/form-data", 19)) {
        part parts[16];
        int n, found = -1;
        if (multipart_parse(ct, r->body ? r->body : "", r->len, parts, 16, &n) < 0) {
            ok = reply_error(r, 400, "malformed multipart/form-data body");
            goto done;
        }
        for (int i = 0; i < n; i++)
            if (!strcmp(parts[i].name, "image"))
                found = i;
        if (found < 0) {
            ok = reply_error(r, 400, "multipart body has no \"image\" field");
            goto done;
        }
        if (parts[found].type[0] && !is_image_type(parts[found].type)) {
            ok = reply_error(r, 415, "field image has type %s, not an image", parts[found].type);
            goto done;
        }
        data = parts[found].data;
        len = parts[found].len;
    } else if (!is_image_type(ct)) {
        ok = reply_error(r, 415, "unsupported content type %s: send an image, multipart/form-data "
                                 "or application/json", ct ? ct : "(none)");
        goto done;
    }
    if (len == 0) {
        ok = reply_error(r, 400, "empty image");
        goto done;
    }
    slot *sl = pool_acquire(&r->s->pool);
    ok = sl ? by_image(r, sl, data, len, &o) : reply_overloaded(r);
done:
    query_opts_clear(w, o.nwhere);
    return ok;
}

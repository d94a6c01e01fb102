/*
 * api_items.c — the catalogue endpoints: GET /api/stats, /api/labels, /api/random,
 * GET /api/items/{id}, and the token-guarded writes POST /api/items (upload saved as
 * <db>/uploads/<sha256>.<ext>, added with imgsim_db_add) and DELETE /api/items/{id}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "query/json.h"
#include "server/internal.h"

json_t *item_json(const imgsim_item *it)
{
    json_t *j = json_object(), *meta = item_metadata_json(it);
    char *url = route_url("image", it->id);
    if (!j || !meta || !url) {
        json_decref(j);
        json_decref(meta);
        free(url);
        return NULL;
    }
    json_object_set_new(j, "id", json_string(it->id));
    json_object_set_new(j, "label", it->label ? json_string(it->label) : json_null());
    json_object_set_new(j, "metadata", meta);
    json_object_set_new(j, "width", json_integer(it->width));
    json_object_set_new(j, "height", json_integer(it->height));
    json_object_set_new(j, "image_url", json_string(url));
    free(url);
    return j;
}

enum MHD_Result api_stats(req *r)
{
    slot *sl = pool_acquire(&r->s->pool);
    if (!sl)
        return reply_overloaded(r);
    imgsim_db_stats st;
    imgsim_error e = {0};
    imgsim_status s = imgsim_db_stats_get(sl->db, &st, &e);
    json_t *j = s == IMGSIM_OK ? json_object() : NULL;
    if (j) {
        json_object_set_new(j, "items", json_integer((json_int_t)st.items));
        json_object_set_new(j, "vectors", json_integer((json_int_t)st.vectors));
        json_object_set_new(j, "model", json_string(st.model));
        json_object_set_new(j, "dim", json_integer(st.dim));
        json_object_set_new(j, "labels", json_integer((json_int_t)st.labels));
        json_t *nb = json_null();
        if (st.has_table && (nb = json_object())) {
            json_object_set_new(nb, "k", json_integer(st.table_k));
            json_object_set_new(nb, "metric", json_string(imgsim_metric_name(st.table_metric)));
            json_object_set_new(nb, "fresh", json_boolean(st.table_fresh));
        }
        json_object_set_new(j, "neighbours", nb);
    }
    pool_release(&r->s->pool, sl);
    if (s != IMGSIM_OK)
        return reply_error(r, 500, "%s", e.msg);
    return reply_json(r, 200, j);
}

enum MHD_Result api_labels(req *r)
{
    slot *sl = pool_acquire(&r->s->pool);
    if (!sl)
        return reply_overloaded(r);
    imgsim_label_count *l = NULL;
    size_t n = 0;
    imgsim_error e = {0};
    imgsim_status s = imgsim_db_labels(sl->db, &l, &n, &e);
    pool_release(&r->s->pool, sl);
    if (s != IMGSIM_OK)
        return reply_error(r, 500, "%s", e.msg);
    json_t *j = json_object(), *arr = json_array();
    for (size_t i = 0; j && arr && i < n; i++) {
        json_t *x = json_object();
        if (!x)
            break;
        json_object_set_new(x, "label", json_string(l[i].label));
        json_object_set_new(x, "count", json_integer((json_int_t)l[i].count));
        json_array_append_new(arr, x);
    }
    imgsim_labels_free(l, n);
    if (!j || !arr) {
        json_decref(j);
        json_decref(arr);
        return reply_error(r, 500, "out of memory");
    }
    json_object_set_new(j, "labels", arr);
    return reply_json(r, 200, j);
}

static enum MHD_Result reply_items(req *r, imgsim_item *items, size_t n)
{
    json_t *j = json_object(), *arr = json_array();
    int oom = !j || !arr;
    for (size_t i = 0; !oom && i < n; i++) {
        json_t *x = item_json(&items[i]);
        if (!x)
            oom = 1;
        else
            json_array_append_new(arr, x);
    }
    imgsim_items_free(items, n);
    if (oom) {
        json_decref(j);
        json_decref(arr);
        return reply_error(r, 500, "out of memory");
    }
    json_object_set_new(j, "results", arr);
    return reply_json(r, 200, j);
}

enum MHD_Result api_random(req *r)
{
    int n;
    if (query_int(r, "n", 24, 1, 200, &n) < 0)
        return MHD_YES;
    char *label = query_param(r, "label");
    if (label && label[0] == '\x01') {
        free(label);
        return reply_error(r, 400, "bad percent-encoding in parameter label");
    }
    slot *sl = pool_acquire(&r->s->pool);
    if (!sl) {
        free(label);
        return reply_overloaded(r);
    }
    imgsim_item *items = NULL;
    size_t cnt = 0;
    imgsim_error e = {0};
    imgsim_status s = imgsim_db_random(sl->db, (size_t)n, label, &items, &cnt, &e);
    pool_release(&r->s->pool, sl);
    free(label);
    if (s != IMGSIM_OK)
        return reply_error(r, 500, "%s", e.msg);
    return reply_items(r, items, cnt);
}

enum MHD_Result api_item(req *r)
{
    slot *sl = pool_acquire(&r->s->pool);
    if (!sl)
        return reply_overloaded(r);
    imgsim_item it;
    imgsim_error e = {0};
    imgsim_status s = imgsim_db_get(sl->db, r->id, &it, &e);
    pool_release(&r->s->pool, sl);
    if (s == IMGSIM_E_NOTFOUND)
        return reply_error(r, 404, "no item with this id");
    if (s != IMGSIM_OK)
        return reply_error(r, 500, "%s", e.msg);
    json_t *j = item_json(&it);
    imgsim_item_free(&it);
    return j ? reply_json(r, 200, j) : reply_error(r, 500, "out of memory");
}

/* The writer, opened at the first write (caller holds wmu). */
static imgsim_db *writer(server *s, imgsim_error *e)
{
    if (!s->wdb &&
        imgsim_db_open(s->dir, IMGSIM_DB_WRITE, imgsim_model_name(s->model), 0, &s->wdb, e) !=
            IMGSIM_OK)
        s->wdb = NULL;
    return s->wdb;
}

typedef struct add_report {
    imgsim_ingest_event ev;
    char error[512];
} add_report;

static void on_item(void *user, imgsim_ingest_event ev, const imgsim_source *src,
                    const char *error)
{
    (void)src;
    add_report *a = user;
    a->ev = ev;
    if (error)
        snprintf(a->error, sizeof a->error, "%s", error);
}

/* Save the upload in the collection's uploads folder (imgsim_db_uploads_dir) as
 * <sha256>.<ext>; fills path (absolute) and the name. */
static int save_upload(imgsim_db *wdb, const char *data, size_t len, const char *ext, char *path,
                       size_t pn, char *name, size_t nn, imgsim_error *e)
{
    char *dir, tmp[4200];
    if (imgsim_db_uploads_dir(wdb, &dir, e) != IMGSIM_OK) {
        snprintf(e->msg, sizeof e->msg, "cannot create the uploads folder");
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s/.upload-XXXXXX", dir);
    snprintf(path, pn, "%s", dir);
    free(dir);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(e->msg, sizeof e->msg, "cannot store the upload");
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            snprintf(e->msg, sizeof e->msg, "cannot store the upload");
            return -1;
        }
        off += (size_t)w;
    }
    close(fd);
    char hex[65];
    if (imgsim_sha256_file(tmp, hex, e) != IMGSIM_OK) {
        unlink(tmp);
        return -1;
    }
    snprintf(name, nn, "%s.%s", hex, ext);
    size_t dl = strlen(path);
    snprintf(path + dl, pn - dl, "/%s", name);
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        snprintf(e->msg, sizeof e->msg, "cannot store the upload");
        return -1;
    }
    return 0;
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 1024)
        return 0;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return 0;
    return utf8_valid(id);
}

enum MHD_Result api_add(req *r)
{
    server *s = r->s;
    const char *ct = header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "multipart/form-data", 19))
        return reply_error(r, 415, "POST /api/items takes multipart/form-data");
    part parts[16];
    int n;
    if (multipart_parse(ct, r->body ? r->body : "", r->len, parts, 16, &n) < 0)
        return reply_error(r, 400, "malformed multipart/form-data body");
    const part *img = NULL;
    char id[1100] = "", label[512] = "", *meta = NULL;
    int has_label = 0;
    enum MHD_Result ok;
    for (int i = 0; i < n; i++) {
        const part *p = &parts[i];
        if (!strcmp(p->name, "image")) {
            img = p;
        } else if (!strcmp(p->name, "id") || !strcmp(p->name, "label")) {
            char *dst = p->name[0] == 'i' ? id : label;
            size_t cap = p->name[0] == 'i' ? sizeof id : sizeof label;
            if (p->len >= cap || memchr(p->data, 0, p->len)) {
                free(meta);
                return reply_error(r, 400, "field %s is too long or not text", p->name);
            }
            memcpy(dst, p->data, p->len);
            dst[p->len] = 0;
            if (dst == label)
                has_label = p->len > 0;
        } else if (!strcmp(p->name, "metadata") && p->len) {
            json_error_t je;
            json_t *j = json_loadb(p->data, p->len, 0, &je);
            if (!json_is_object(j) || meta) {
                json_decref(j);
                free(meta);
                return reply_error(r, 400, "field metadata must be one JSON object");
            }
            meta = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(j);
            if (!meta)
                return reply_error(r, 500, "out of memory");
        }
    }
    if (!img || img->len == 0) {
        free(meta);
        return reply_error(r, 400, "multipart body has no \"image\" file");
    }
    if (img->type[0] && !is_image_type(img->type)) {
        free(meta);
        return reply_error(r, 415, "field image has type %s, not an image", img->type);
    }
    const char *ext = sniff_ext((const unsigned char *)img->data, img->len);
    if (!ext) {
        free(meta);
        return reply_error(r, 415, "not an image format imgsim reads");
    }
    if (id[0] && !valid_id(id)) {
        free(meta);
        return reply_error(r, 400, "field id must be printable text");
    }
    slot *sl = pool_acquire(&s->pool);
    if (!sl) {
        free(meta);
        return reply_overloaded(r);
    }
    imgsim_error e = {0};
    imgsim_image probe = {0};
    /* decode first: a bad image is the client's fault (400), not an ingest failure */
    imgsim_status st = imgsim_image_load_buffer(img->data, img->len, &s->prep, &probe, &e);
    imgsim_image_free(&probe);
    if (st != IMGSIM_OK) {
        pool_release(&s->pool, sl);
        free(meta);
        return reply_error(r, http_status_of(st), "%s", e.msg);
    }
    char path[4400], name[128];
    pthread_mutex_lock(&s->wmu);
    imgsim_db *w = NULL;
    add_report rep = {IMGSIM_INGEST_FAILED, ""};
    imgsim_item it = {0};
    int status = 201;
    if (!(w = writer(s, &e))) {
        status = 500;
    } else if (save_upload(w, img->data, img->len, ext, path, sizeof path, name, sizeof name,
                           &e) < 0) {
        status = 500;
    } else {
        char autoid[200];
        snprintf(autoid, sizeof autoid, "uploads/%s", name);
        imgsim_source src = {0};
        src.id = id[0] ? id : autoid;
        src.path = path;
        src.label = has_label ? label : NULL;
        src.meta_json = meta;
        src.origin = "upload";
        imgsim_ingest_opts io = {0};
        io.on_item = on_item;
        io.user = &rep;
        imgsim_ingest_stats stats;
        if ((st = imgsim_db_add(w, sl->ctx, &src, 1, &io, &stats, &e)) != IMGSIM_OK)
            status = http_status_of(st) == 500 ? 500 : http_status_of(st);
        else if (rep.ev == IMGSIM_INGEST_FAILED) {
            status = 400;
            snprintf(e.msg, sizeof e.msg, "%s", rep.error[0] ? rep.error : "image not added");
        } else if ((st = imgsim_db_get(w, src.id, &it, &e)) != IMGSIM_OK)
            status = 500;
    }
    pthread_mutex_unlock(&s->wmu);
    pool_release(&s->pool, sl);
    free(meta);
    if (status != 201)
        return reply_error(r, status, "%s", e.msg[0] ? e.msg : "cannot add the image");
    json_t *j = item_json(&it);
    imgsim_item_free(&it);
    ok = j ? reply_json(r, 201, j) : reply_error(r, 500, "out of memory");
    return ok;
}

enum MHD_Result api_delete(req *r)
{
    server *s = r->s;
    imgsim_error e = {0};
    size_t removed = 0;
    int status = 200;
    pthread_mutex_lock(&s->wmu);
    imgsim_db *w = writer(s, &e);
    const char *ids[1] = {r->id};
    if (!w)
        status = 500;
    else {
        imgsim_status st = imgsim_db_remove(w, ids, 1, &removed, &e);
        if (st != IMGSIM_OK && st != IMGSIM_E_NOTFOUND)
            status = 500;
        else if (removed == 0)
            status = 404;
    }
    pthread_mutex_unlock(&s->wmu);
    if (status == 404)
        return reply_error(r, 404, "no item with this id");
    if (status != 200)
        return reply_error(r, status, "%s", e.msg);
    json_t *j = json_object();
    if (!j)
        return reply_error(r, 500, "out of memory");
    json_object_set_new(j, "removed", json_string(r->id));
    return reply_json(r, 200, j);
}

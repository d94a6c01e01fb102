/*
 * thumbs.c — GET /api/items/{id}/image?size=N: a JPEG thumbnail (longest side <= N) made
 * with libvips from the item's source file, found only by looking the id up in the
 * catalogue. Thumbnails are kept in an LRU cache keyed by size + id (bounded in bytes); the
 * ETag is derived from the item's content hash and the size, so If-None-Match is answered
 * with 304 without touching the image.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "server/internal.h"

struct thumb_entry {
    thumb_entry *prev, *next;
    char *key;
    char etag[48];
    void *data;
    size_t len;
};

void thumbs_init(thumbs *t, size_t max_bytes)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->max_bytes = max_bytes;
}

static void unlink_entry(thumbs *t, thumb_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        t->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        t->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(thumbs *t, thumb_entry *e)
{
    e->prev = NULL;
    e->next = t->head;
    if (t->head)
        t->head->prev = e;
    t->head = e;
    if (!t->tail)
        t->tail = e;
}

static void entry_free(thumb_entry *e)
{
    free(e->key);
    free(e->data);
    free(e);
}

void thumbs_free(thumbs *t)
{
    for (thumb_entry *e = t->head, *n; e; e = n) {
        n = e->next;
        entry_free(e);
    }
    t->head = t->tail = NULL;
    pthread_mutex_destroy(&t->mu);
}

/* A copy of the cached thumbnail when its ETag still matches (caller frees). */
static void *cache_get(thumbs *t, const char *key, const char *etag, size_t *len)
{
    void *copy = NULL;
    pthread_mutex_lock(&t->mu);
    for (thumb_entry *e = t->head; e; e = e->next)
        if (!strcmp(e->key, key)) {
            if (!strcmp(e->etag, etag) && (copy = malloc(e->len))) {
                memcpy(copy, e->data, e->len);
                *len = e->len;
                unlink_entry(t, e);
                push_front(t, e);
            }
            break;
        }
    pthread_mutex_unlock(&t->mu);
    return copy;
}

static void cache_put(thumbs *t, const char *key, const char *etag, const void *data, size_t len)
{
    if (len > t->max_bytes / 4)
        return;
    thumb_entry *n = calloc(1, sizeof *n);
    if (!n || !(n->key = strdup(key)) || !(n->data = malloc(len))) {
        if (n)
            free(n->key);
        free(n);
        return;
    }
    memcpy(n->data, data, len);
    n->len = len;
    snprintf(n->etag, sizeof n->etag, "%s", etag);
    pthread_mutex_lock(&t->mu);
    for (thumb_entry *e = t->head; e; e = e->next)
        if (!strcmp(e->key, key)) { /* replaced (content changed) or raced */
            unlink_entry(t, e);
            t->bytes -= e->len;
            t->count--;
            entry_free(e);
            break;
        }
    push_front(t, n);
    t->bytes += len;
    t->count++;
    while (t->bytes > t->max_bytes && t->tail) {
        thumb_entry *old = t->tail;
        unlink_entry(t, old);
        t->bytes -= old->len;
        t->count--;
        entry_free(old);
    }
    pthread_mutex_unlock(&t->mu);
}

/* JPEG bytes of the source, longest side <= size, 8-bit sRGB, alpha on white. */
static void *make_thumb(const char *source, int size, size_t *len, char *why, size_t wn)
{
    VipsImage *a = NULL, *b = NULL;
    void *out = NULL;
    if (vips_thumbnail(source, &a, size, "height", size, "size", VIPS_SIZE_DOWN, NULL)) {
        snprintf(why, wn, "cannot read the item's image");
        vips_error_clear();
        return NULL;
    }
    if (vips_image_hasalpha(a)) {
        double white[3] = {255, 255, 255};
        VipsArrayDouble *bg = vips_array_double_new(white, a->Bands >= 3 ? 3 : 1);
        int rc = vips_flatten(a, &b, "background", bg, NULL);
        vips_area_unref(VIPS_AREA(bg));
        g_object_unref(a);
        a = rc ? NULL : b;
        b = NULL;
    }
    if (a && a->Type != VIPS_INTERPRETATION_sRGB && a->Type != VIPS_INTERPRETATION_B_W) {
        if (vips_colourspace(a, &b, VIPS_INTERPRETATION_sRGB, NULL) == 0) {
            g_object_unref(a);
            a = b;
            b = NULL;
        }
    }
    if (a && a->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(a, &b, NULL) == 0) {
            g_object_unref(a);
            a = b;
            b = NULL;
        }
    }
    if (!a || vips_jpegsave_buffer(a, &out, len, "Q", 82, "strip", TRUE, NULL)) {
        snprintf(why, wn, "cannot make a thumbnail of the item's image");
        vips_error_clear();
        out = NULL;
    }
    if (a)
        g_object_unref(a);
    return out;
}

static enum MHD_Result reply_jpeg(req *r, int status, void *data, size_t len, const char *etag)
{
    struct MHD_Response *resp =
        status == 304 ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
                      : MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    if (status != 304)
        MHD_add_response_header(resp, "Content-Type", "image/jpeg");
    MHD_add_response_header(resp, "ETag", etag);
    MHD_add_response_header(resp, "Cache-Control", "public, max-age=300");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    return ok;
}

enum MHD_Result api_image(req *r)
{
    server *s = r->s;
    int size;
    if (query_int(r, "size", 256, 16, 1024, &size) < 0)
        return MHD_YES;
    slot *sl = pool_acquire(&s->pool);
    if (!sl)
        return reply_overloaded(r);
    imgsim_item it;
    imgsim_error e = {0};
    imgsim_status st = imgsim_db_get(sl->db, r->id, &it, &e);
    if (st != IMGSIM_OK) {
        pool_release(&s->pool, sl);
        return st == IMGSIM_E_NOTFOUND ? reply_error(r, 404, "no item with this id")
                                       : reply_error(r, 500, "%s", e.msg);
    }
    char etag[48];
    snprintf(etag, sizeof etag, "\"%.16s-%d\"", it.hash, size);
    const char *inm = header(r, "If-None-Match");
    if (inm && (strstr(inm, etag) || !strcmp(inm, "*"))) {
        pool_release(&s->pool, sl);
        imgsim_item_free(&it);
        return reply_jpeg(r, 304, NULL, 0, etag);
    }
    size_t klen = strlen(it.id) + 16;
    char *key = malloc(klen);
    if (!key) {
        pool_release(&s->pool, sl);
        imgsim_item_free(&it);
        return reply_error(r, 500, "out of memory");
    }
    snprintf(key, klen, "%d:%s", size, it.id);
    size_t len = 0;
    void *data = cache_get(&s->thumbs, key, etag, &len);
    char why[128] = "";
    if (!data) {
        /* only local files: a URL source is not fetched */
        if (it.source[0] != '/') {
            snprintf(why, sizeof why, "the item's image is not a local file");
        } else if ((data = make_thumb(it.source, size, &len, why, sizeof why))) {
            cache_put(&s->thumbs, key, etag, data, len);
            void *copy = malloc(len); /* MHD frees with free(), vips memory with g_free() */
            if (copy)
                memcpy(copy, data, len);
            g_free(data);
            data = copy;
            if (!data)
                snprintf(why, sizeof why, "out of memory");
        }
    }
    pool_release(&s->pool, sl);
    free(key);
    imgsim_item_free(&it);
    if (!data)
        return reply_error(r, why[0] == 'o' ? 500 : 404, "%s", why);
    return reply_jpeg(r, 200, data, len, etag);
}

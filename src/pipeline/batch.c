/*
 * batch.c — the embedding pipeline for many files: decode threads feed a bounded ring of
 * preprocessed images, the calling thread gathers them in input order into batches and runs
 * inference on the context's thread pool, so decoding overlaps inference.
 *
 * Ring invariant: slot (i % RING) holds item i once a decoder claimed it; a decoder may
 * claim item i only when i < consumed + RING, and the consumer frees slots strictly in
 * order. Results therefore reach the callback in input order. A bad file becomes a failed
 * result (its message kept in the slot), never a failed batch.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "model/model.h"

#define RING 64
#define BATCH 16

typedef struct slot {
    int ready;
    imgsim_image img;
    imgsim_error err;
    imgsim_status status;
} slot;

typedef struct pipe {
    const char *const *paths;
    size_t n;
    imgsim_prep prep;
    int raw_w, raw_h;
    const int (*crops)[4];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next;      /* next item a decoder will claim */
    size_t consumed;  /* items handed to the callback */
    int stop;
    slot ring[RING];
} pipe_t;

static void *decoder(void *arg)
{
    pipe_t *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->next < p->n && p->next >= p->consumed + RING)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop || p->next >= p->n) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        size_t i = p->next++;
        pthread_mutex_unlock(&p->mu);

        slot s;
        memset(&s, 0, sizeof s);
        imgsim_prep prep = p->prep;
        if (p->crops && p->crops[i][2] > 0) {
            prep.has_crop = 1;
            prep.crop_x = p->crops[i][0];
            prep.crop_y = p->crops[i][1];
            prep.crop_w = p->crops[i][2];
            prep.crop_h = p->crops[i][3];
        }
        if (p->raw_w > 0)
            s.status = imgsim_image_load_raw(p->paths[i], p->raw_w, p->raw_h, &prep, &s.img,
                                             &s.err);
        else
            s.status = imgsim_image_load_file(p->paths[i], &prep, &s.img, &s.err);
        s.ready = 1;

        pthread_mutex_lock(&p->mu);
        p->ring[i % RING] = s;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static int auto_decoders(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores <= 2 ? 1 : (int)(cores / 2);
}

void imgsim_batch_opts_default(imgsim_batch_opts *o)
{
    memset(o, 0, sizeof *o);
}

imgsim_status imgsim_embed_files(imgsim_ctx *c, const char *const *paths, size_t n,
                                 const imgsim_batch_opts *o, imgsim_result_fn fn, void *user,
                                 imgsim_error *err)
{
    imgsim_batch_opts defo;
    if (!o) {
        imgsim_batch_opts_default(&defo);
        o = &defo;
    }
    const imgsim_model *m = model_of_ctx(c);
    int dim = imgsim_model_dim(m), ncls = o->want_probs ? imgsim_model_num_classes(m) : 0;
    pipe_t *p = calloc(1, sizeof *p);
    float *vecs = malloc(sizeof(float) * BATCH * (size_t)dim);
    float *probs = ncls ? malloc(sizeof(float) * BATCH * (size_t)ncls) : NULL;
    if (!p || !vecs || (ncls && !probs)) {
        free(p);
        free(vecs);
        free(probs);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    p->paths = paths;
    p->n = n;
    if (o->prep)
        p->prep = *o->prep;
    else
        imgsim_model_prep(m, &p->prep);
    p->raw_w = o->raw_width;
    p->raw_h = o->raw_height;
    p->crops = o->crops;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);

    int nthreads = o->decode_threads > 0 ? o->decode_threads : auto_decoders();
    if (nthreads > 16)
        nthreads = 16;
    pthread_t th[16];
    int started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&th[started], NULL, decoder, p) != 0)
            break;
    imgsim_status st = IMGSIM_OK;
    if (started == 0)
        st = error_set(err, IMGSIM_E_INTERNAL, "cannot start decode threads");

    while (st == IMGSIM_OK && p->consumed < n) {
        size_t b0 = p->consumed, want = n - b0 < BATCH ? n - b0 : BATCH;
        /* wait for the next `want` items, in order */
        pthread_mutex_lock(&p->mu);
        for (size_t k = 0; k < want; k++)
            while (!p->ring[(b0 + k) % RING].ready)
                pthread_cond_wait(&p->cv, &p->mu);
        pthread_mutex_unlock(&p->mu);

        imgsim_image imgs[BATCH];
        int nb = 0;
        for (size_t k = 0; k < want; k++) {
            slot *s = &p->ring[(b0 + k) % RING];
            if (s->status == IMGSIM_OK) {
                imgs[nb++] = s->img;
            }
        }
        imgsim_error eerr = {0};
        imgsim_status es = nb ? imgsim_embed(c, imgs, nb, vecs, probs, &eerr) : IMGSIM_OK;
        if (es != IMGSIM_OK) { /* inference itself failed: stop the run */
            st = es;
            if (err)
                *err = eerr;
        }
        int j = 0, quit = 0;
        for (size_t k = 0; k < want && st == IMGSIM_OK && !quit; k++) {
            slot *s = &p->ring[(b0 + k) % RING];
            imgsim_result r = {b0 + k, paths[b0 + k], s->status, NULL, NULL, NULL, 0, 0};
            if (s->status == IMGSIM_OK) {
                r.src_width = s->img.src_width;
                r.src_height = s->img.src_height;
                r.vec = vecs + (size_t)j * (size_t)dim;
                r.probs = ncls ? probs + (size_t)j * (size_t)ncls : NULL;
                j++;
            } else {
                r.error = s->err.msg;
            }
            quit = fn(user, &r) != 0;
        }
        pthread_mutex_lock(&p->mu);
        for (size_t k = 0; k < want; k++) {
            slot *s = &p->ring[(b0 + k) % RING];
            imgsim_image_free(&s->img);
            memset(s, 0, sizeof *s);
        }
        p->consumed += want;
        if (quit)
            p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (quit)
            break;
    }

    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    for (int k = 0; k < RING; k++) /* images decoded ahead of a stop */
        imgsim_image_free(&p->ring[k].img);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
    free(vecs);
    free(probs);
    return st;
}

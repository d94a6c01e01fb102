/*
 * pool.c — the bounded pool of worker slots. A slot is one read-only collection handle and
 * one inference context, used by one request at a time (imgsim_db handles and contexts are
 * per-thread). A request takes a free slot, or waits if fewer than `queue_limit` requests
 * are already waiting; otherwise it is refused (the caller replies 503 + Retry-After).
 */
#include <stdio.h>
#include <stdlib.h>

#include "server/internal.h"

imgsim_status pool_init(pool *p, int n, int queue_limit, const char *dir, imgsim_model *m,
                        imgsim_error *err)
{
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->n = 0;
    p->nfree = 0;
    p->waiting = 0;
    p->queue_limit = queue_limit;
    if (!(p->slots = calloc((size_t)n, sizeof *p->slots))) {
        err->code = IMGSIM_E_NOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return IMGSIM_E_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        slot *s = &p->slots[i];
        imgsim_status st = imgsim_db_open(dir, IMGSIM_DB_READ, imgsim_model_name(m), 0, &s->db, err);
        if (st == IMGSIM_OK)
            st = imgsim_ctx_new(m, &s->ctx, err);
        p->n++;
        if (st != IMGSIM_OK)
            return st;
    }
    p->nfree = n;
    return IMGSIM_OK;
}

void pool_free(pool *p)
{
    for (int i = 0; i < p->n; i++) {
        imgsim_ctx_free(p->slots[i].ctx);
        imgsim_db_close(p->slots[i].db);
    }
    free(p->slots);
    p->slots = NULL;
    p->n = p->nfree = 0;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

slot *pool_acquire(pool *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->nfree == 0) {
        if (p->waiting >= p->queue_limit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->waiting++;
        while (p->nfree == 0)
            pthread_cond_wait(&p->cv, &p->mu);
        p->waiting--;
    }
    slot *s = NULL;
    for (int i = 0; i < p->n; i++)
        if (!p->slots[i].busy) {
            s = &p->slots[i];
            break;
        }
    s->busy = 1;
    p->nfree--;
    pthread_mutex_unlock(&p->mu);
    return s;
}

void pool_release(pool *p, slot *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&p->mu);
    s->busy = 0;
    p->nfree++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int pool_waiting(pool *p)
{
    pthread_mutex_lock(&p->mu);
    int w = p->waiting;
    pthread_mutex_unlock(&p->mu);
    return w;
}

int pool_busy(pool *p)
{
    pthread_mutex_lock(&p->mu);
    int b = p->n - p->nfree;
    pthread_mutex_unlock(&p->mu);
    return b;
}

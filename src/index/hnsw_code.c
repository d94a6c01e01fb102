/*
 * hnsw_code.c — how vectors become codes and queries: the transform into the searched space
 * (L2 normalisation for cosine, then the PCA projection), encoding a node's code (float32
 * copy or sq8 bytes), and preparing a query for the distance kernels — from a caller's
 * vector, or from a stored node when the build compares two nodes.
 */
#include "index/hnsw_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

imgsim_status hnsw_query_alloc(const hnsw *h, hnsw_query *q, imgsim_error *err)
{
    memset(q, 0, sizeof *q);
    q->f = aligned_alloc(64, ((h->cdim_pad * sizeof(float) + 63) & ~(size_t)63));
    q->s8 = aligned_alloc(64, (h->cdim_pad + 63) & ~(size_t)63);
    if (!q->f || !q->s8) {
        hnsw_query_release(q);
        return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory for a query");
    }
    q->slot = HNSW_NONE;
    return IMGSIM_OK;
}

void hnsw_query_release(hnsw_query *q)
{
    free(q->f);
    free(q->s8);
    q->f = NULL;
    q->s8 = NULL;
}

void hnsw_transform(const hnsw *h, const float *vec, float *out)
{
    int normalise = h->p.metric == IMGSIM_METRIC_COSINE;
    float inv = 1.0f;
    if (normalise) {
        double ss = 0;
        for (int i = 0; i < h->dim; i++)
            ss += (double)vec[i] * vec[i];
        inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 1.0f;
    }
    if (h->p.pca_dims > 0) {
        /* W (s x) - W m = s (W x - W m) + (s - 1) W m, so the raw vector is projected */
        pca_project(&h->pca, vec, out);
        if (inv != 1.0f)
            for (int k = 0; k < h->cdim; k++)
                out[k] = out[k] * inv + (inv - 1.0f) * h->pca.wm[k];
        for (size_t i = (size_t)h->cdim; i < h->cdim_pad; i++)
            out[i] = 0;
        return;
    }
    for (int i = 0; i < h->dim; i++)
        out[i] = vec[i] * inv;
    for (size_t i = (size_t)h->dim; i < h->cdim_pad; i++)
        out[i] = 0;
}

/* |t|^2 */
static float norm2(const float *t, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)t[i] * t[i];
    return (float)s;
}

/* Fill the int8 side of q from q->f (sq8 only); qq is given. */
static void prepare_sq8(const hnsw *h, hnsw_query *q, float qq)
{
    q->qq = qq;
    sq8_prepare_query(&h->sq, q->f, q->s8, &q->s8_step, &q->bias);
}

void hnsw_query_prepare(const hnsw *h, const float *t, hnsw_query *q)
{
    if (t != q->f)
        memcpy(q->f, t, h->cdim_pad * sizeof(float));
    q->slot = HNSW_NONE;
    q->qq = 0;
    if (h->p.storage == HNSW_SQ8) /* qq is only used by the sq8 L2 distance */
        prepare_sq8(h, q, h->space == HNSW_SPACE_L2 ? norm2(q->f, h->cdim_pad) : 0);
}

void hnsw_query_from_slot(const hnsw *h, uint32_t slot, hnsw_query *q)
{
    const uint8_t *c = hnsw_code(h, slot);
    if (h->p.storage == HNSW_F32) {
        memcpy(q->f, c, h->cdim_pad * sizeof(float));
        q->qq = 0;
    } else {
        sq8_decode(&h->sq, c, q->f);
        prepare_sq8(h, q, hnsw_node_at(h, slot)->aux); /* aux = |decoded|^2 */
    }
    q->slot = slot;
}

float hnsw_dist_slots(const hnsw *h, hnsw_query *scratch, uint32_t a, uint32_t b)
{
    if (h->p.storage == HNSW_F32) {
        const float *x = (const float *)hnsw_code(h, a), *y = (const float *)hnsw_code(h, b);
        if (h->space == HNSW_SPACE_IP)
            return 1.0f - h->k->dot_f32(x, y, h->cdim_pad);
        return h->k->l2_f32(x, y, h->cdim_pad);
    }
    if (scratch->slot != a)
        hnsw_query_from_slot(h, a, scratch);
    return hnsw_dist(h, scratch, b);
}

void hnsw_encode(const hnsw *h, const float *t, uint32_t slot)
{
    uint8_t *c = hnsw_code(h, slot);
    hnsw_node *nd = hnsw_node_at(h, slot);
    if (h->p.storage == HNSW_F32) {
        memcpy(c, t, h->cdim_pad * sizeof(float));
        nd->aux = 0;
        return;
    }
    sq8_encode(&h->sq, t, c);
    double ss = 0; /* |decoded code|^2 */
    for (size_t i = 0; i < h->cdim_pad; i++) {
        float x = h->sq.lo[i] + h->sq.step[i] * (float)c[i];
        ss += (double)x * x;
    }
    nd->aux = (float)ss;
}

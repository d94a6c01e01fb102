/*
 * hnsw_build.c — creating and freeing an index: parameters and their checks, the derived
 * layout, fitting the compression, and the multi-threaded build.
 *
 * The build: PCA (if asked) and the sq8 ranges are fitted on the alive rows, every alive row
 * gets a slot (in row order) and its level up front, and the upper-link runs are laid out
 * in one pass. The first row is linked alone (it becomes the entry point); then `threads`
 * workers claim the remaining rows from an atomic counter, each writing the row's code and
 * linking it (hnsw_insert.c) with a spinlock per slot guarding link lists and one lock
 * guarding the entry point — the scheme hnswlib uses. Which thread inserts which row
 * changes from run to run, so a multi-threaded build is not bit-for-bit reproducible (a
 * one-thread build is).
 */
#include "index/hnsw_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "index/score.h"

#define MAX_THREADS 64

void hnsw_params_default(hnsw_params *p)
{
    memset(p, 0, sizeof *p);
    p->metric = IMGSIM_METRIC_COSINE;
    p->M = 16;
    p->ef_construction = 200;
    p->ef_search = 64;
    p->storage = HNSW_F32;
    p->pca_dims = 0;
    p->pca_whiten = 0;
    p->seed = 42;
}

/* Check parameters against the input dimension. */
static imgsim_status check_params(const hnsw_params *p, int dim, imgsim_error *err)
{
    if (!p)
        return error_set(err, IMGSIM_E_ARG, "hnsw: no parameters");
    if (p->metric == IMGSIM_METRIC_L1)
        return error_set(err, IMGSIM_E_UNSUPPORTED, "hnsw: the l1 metric is not supported "
                         "(use exact search)");
    if (p->metric != IMGSIM_METRIC_COSINE && p->metric != IMGSIM_METRIC_L2)
        return error_set(err, IMGSIM_E_ARG, "hnsw: unknown metric %d", (int)p->metric);
    if (p->M < 2 || p->M > HNSW_MAX_M)
        return error_set(err, IMGSIM_E_ARG, "hnsw: M must be in 2..%d (got %d)", HNSW_MAX_M,
                         p->M);
    if (p->ef_construction < 1 || p->ef_construction > 100000)
        return error_set(err, IMGSIM_E_ARG, "hnsw: ef_construction must be in 1..100000 "
                         "(got %d)", p->ef_construction);
    if (p->ef_search < 1 || p->ef_search > 100000)
        return error_set(err, IMGSIM_E_ARG, "hnsw: ef_search must be in 1..100000 (got %d)",
                         p->ef_search);
    if (p->storage != HNSW_F32 && p->storage != HNSW_SQ8)
        return error_set(err, IMGSIM_E_ARG, "hnsw: unknown storage %d", (int)p->storage);
    if (dim < 1 || dim > (1 << 20))
        return error_set(err, IMGSIM_E_ARG, "hnsw: bad dimension %d", dim);
    if (p->pca_dims < 0 || p->pca_dims > dim)
        return error_set(err, IMGSIM_E_ARG, "hnsw: cannot reduce %d dimensions to %d", dim,
                         p->pca_dims);
    return IMGSIM_OK;
}

void hnsw_layout(hnsw *h)
{
    h->M = h->p.M;
    h->M0 = 2 * h->p.M;
    h->level_mult = 1.0 / log((double)h->p.M);
    h->cdim = h->p.pca_dims > 0 ? h->p.pca_dims : h->dim;
    size_t unit = h->p.storage == HNSW_F32 ? 16 : 64; /* 64 bytes either way */
    h->cdim_pad = ((size_t)h->cdim + unit - 1) / unit * unit;
    h->space = h->p.metric == IMGSIM_METRIC_COSINE && h->p.pca_dims == 0 ? HNSW_SPACE_IP
                                                                           : HNSW_SPACE_L2;
    h->code_bytes = h->p.storage == HNSW_F32 ? h->cdim_pad * sizeof(float) : h->cdim_pad;
    h->node_off = h->code_bytes;
    size_t raw = h->code_bytes + sizeof(hnsw_node) + (size_t)h->M0 * sizeof(uint32_t);
    h->stride = (raw + 63) & ~(size_t)63;
    h->k = hnsw_kernels_get();
}

imgsim_status hnsw_alloc(const hnsw_params *p, int dim, hnsw **out, imgsim_error *err)
{
    *out = NULL;
    imgsim_status st = check_params(p, dim, err);
    if (st != IMGSIM_OK)
        return st;
    hnsw *h = calloc(1, sizeof *h);
    if (!h)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory");
    h->p = *p;
    h->dim = dim;
    h->entry = HNSW_NONE;
    h->max_level = -1;
    h->owned_blocks = h->owned_upper = 1;
    atomic_flag_clear(&h->entry_lock);
    hnsw_layout(h);
    *out = h;
    return IMGSIM_OK;
}

void hnsw_free(hnsw *h)
{
    if (!h)
        return;
    if (h->owned_blocks)
        free(h->blocks);
    if (h->owned_upper)
        free(h->upper);
    for (int i = 0; i <= HNSW_MAX_LEVEL; i++)
        free(h->upper_free[i].v);
    free(h->free_slots);
    free(h->row_node);
    free(h->locks);
    hnsw_ctx_free(h->wctx);
    free(h->wvec);
    sq8_free(&h->sq);
    pca_free(&h->pca);
    if (h->map)
        munmap(h->map, h->map_len);
    free(h);
}

int hnsw_contains(const hnsw *h, uint32_t row)
{
    return h && row < h->cap_rows && h->row_node[row] != HNSW_NONE;
}

void hnsw_get_info(const hnsw *h, hnsw_info *info)
{
    memset(info, 0, sizeof *info);
    info->params = h->p;
    info->dim = h->dim;
    info->code_dim = h->cdim;
    info->count = h->count;
    info->slots = h->nslots;
    info->row_limit = h->row_limit;
    info->max_level = h->max_level;
    size_t per_upper = (size_t)(1 + h->M) * sizeof(uint32_t);
    info->bytes_codes = h->nslots * h->code_bytes;
    info->bytes_graph = h->nslots * (h->stride - h->code_bytes) + h->nupper * per_upper;
    info->bytes_other = h->cap_rows * sizeof(uint32_t) + h->nfree * sizeof(uint32_t);
    if (h->p.storage == HNSW_SQ8)
        info->bytes_other += 2 * h->cdim_pad * sizeof(float);
    if (h->p.pca_dims > 0)
        info->bytes_other += ((size_t)h->pca.out * (size_t)(h->dim + 3) + (size_t)h->dim) *
                             sizeof(float);
    info->mapped = h->map && !h->modified;
}

/* ------------------------------------------------------------ fitting the compression */

/* Non-zero when some row r < n is alive. */
static int any_alive(size_t n, const uint8_t *alive)
{
    for (size_t r = 0; r < n; r++)
        if (!alive || alive[r])
            return 1;
    return 0;
}

/* The sq8 ranges over the transformed alive rows. */
static imgsim_status fit_sq8(hnsw *h, const float *vecs, size_t n, const uint8_t *alive,
                             imgsim_error *err)
{
    imgsim_status st = sq8_init(&h->sq, h->cdim_pad, err);
    if (st != IMGSIM_OK)
        return st;
    float *t = malloc(h->cdim_pad * sizeof(float));
    if (!t)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory");
    for (size_t r = 0; r < n; r++)
        if (!alive || alive[r]) {
            hnsw_transform(h, vecs + r * (size_t)h->dim, t);
            sq8_observe(&h->sq, t, (size_t)h->cdim);
        }
    sq8_finish(&h->sq);
    free(t);
    return IMGSIM_OK;
}

/* ------------------------------------------------------------ the threaded build */

typedef struct build_job {
    hnsw *h;
    const float *vecs;
    const uint32_t *order; /* slot -> row */
    size_t nslots;
    atomic_size_t next;
    atomic_int failed;
    imgsim_error err;
    pthread_mutex_t err_lock;
} build_job;

/* Write slot's code and link it. */
static imgsim_status build_one(build_job *j, hnsw_ctx *c, float *t, size_t slot,
                               imgsim_error *err)
{
    hnsw *h = j->h;
    hnsw_transform(h, j->vecs + (size_t)j->order[slot] * (size_t)h->dim, t);
    hnsw_encode(h, t, (uint32_t)slot);
    return hnsw_link_node(h, c, (uint32_t)slot, err);
}

/* A worker: claim slots until none are left or one failed. */
static void *build_worker(void *arg)
{
    build_job *j = arg;
    hnsw_ctx *c = NULL;
    imgsim_error e = {0};
    float *t = malloc(j->h->cdim_pad * sizeof(float));
    imgsim_status st = t ? hnsw_ctx_new(&c, &e)
                         : error_set(&e, IMGSIM_E_NOMEM, "hnsw: out of memory");
    if (st == IMGSIM_OK)
        st = hnsw_ctx_prepare(c, j->h, &e);
    while (st == IMGSIM_OK && !atomic_load(&j->failed)) {
        size_t s = atomic_fetch_add(&j->next, 1);
        if (s >= j->nslots)
            break;
        st = build_one(j, c, t, s, &e);
    }
    if (st != IMGSIM_OK) {
        pthread_mutex_lock(&j->err_lock);
        if (!atomic_exchange(&j->failed, 1))
            j->err = e;
        pthread_mutex_unlock(&j->err_lock);
    }
    hnsw_ctx_free(c);
    free(t);
    return NULL;
}

/* Give every alive row a slot, a level and its upper-link run. */
static imgsim_status assign_slots(hnsw *h, size_t n, const uint8_t *alive, uint32_t **order,
                                  size_t *nslots, imgsim_error *err)
{
    size_t na = 0;
    for (size_t r = 0; r < n; r++)
        na += !alive || alive[r];
    imgsim_status st = hnsw_reserve(h, na ? na : 1, n, err);
    if (st != IMGSIM_OK)
        return st;
    uint32_t *ord = malloc((na ? na : 1) * sizeof(uint32_t));
    if (!ord)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory for %zu rows", na);
    size_t s = 0;
    for (size_t r = 0; r < n; r++) {
        if (alive && !alive[r])
            continue;
        ord[s] = (uint32_t)r;
        hnsw_node *nd = hnsw_node_at(h, (uint32_t)s);
        memset(nd, 0, sizeof *nd);
        nd->row = (uint32_t)r;
        nd->level = (uint16_t)hnsw_draw_level(h, (uint32_t)r);
        nd->upper = 0;
        if (nd->level > 0) {
            nd->upper = hnsw_upper_alloc(h, nd->level);
            if (nd->upper == HNSW_NONE) {
                free(ord);
                return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory for links");
            }
        }
        h->row_node[r] = (uint32_t)s;
        s++;
    }
    h->nslots = na;
    h->count = na;
    h->row_limit = (uint32_t)(na ? ord[na - 1] + 1 : 0);
    *order = ord;
    *nslots = na;
    return IMGSIM_OK;
}

/* Link slots [1, nslots) with `threads` workers (slot 0 is linked already). */
static imgsim_status run_workers(build_job *j, int threads, imgsim_error *err)
{
    hnsw *h = j->h;
    h->locks = malloc(j->nslots * sizeof(atomic_flag));
    if (!h->locks)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory for %zu locks", j->nslots);
    for (size_t i = 0; i < j->nslots; i++)
        atomic_flag_clear(&h->locks[i]);
    pthread_t tid[MAX_THREADS];
    int started = 0;
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&tid[started], NULL, build_worker, j) != 0)
            break; /* fewer threads: the others do the work */
        started++;
    }
    build_worker(j);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    free(h->locks);
    h->locks = NULL;
    if (atomic_load(&j->failed)) {
        if (err)
            *err = j->err;
        return j->err.code ? j->err.code : IMGSIM_E_INTERNAL;
    }
    return IMGSIM_OK;
}

imgsim_status hnsw_build(const hnsw_params *p, const float *vecs, size_t n, int dim,
                         const uint8_t *alive, int threads, hnsw **out, imgsim_error *err)
{
    *out = NULL;
    if (n && !vecs)
        return error_set(err, IMGSIM_E_ARG, "hnsw: no vectors");
    if (n > (size_t)HNSW_NONE - 1)
        return error_set(err, IMGSIM_E_ARG, "hnsw: %zu rows is too many", n);
    hnsw *h;
    imgsim_status st = hnsw_alloc(p, dim, &h, err);
    if (st != IMGSIM_OK)
        return st;
    if (threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? (int)c : 1;
    }
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    score_blas_single();
    uint32_t *order = NULL;
    size_t nslots = 0;
    hnsw_ctx *c = NULL;
    float *t = NULL;
    if (p->pca_dims > 0)
        st = pca_fit(&h->pca, vecs, n, dim, alive, p->pca_dims, p->pca_whiten,
                     p->metric == IMGSIM_METRIC_COSINE, p->seed, err);
    if (st == IMGSIM_OK && p->storage == HNSW_SQ8 && !any_alive(n, alive))
        st = error_set(err, IMGSIM_E_ARG, "hnsw: sq8 storage needs rows to fit its ranges");
    if (st == IMGSIM_OK && p->storage == HNSW_SQ8)
        st = fit_sq8(h, vecs, n, alive, err);
    if (st == IMGSIM_OK)
        st = assign_slots(h, n, alive, &order, &nslots, err);
    if (st == IMGSIM_OK && nslots > 0) {
        build_job j = {.h = h, .vecs = vecs, .order = order, .nslots = nslots};
        atomic_init(&j.next, 1);
        atomic_init(&j.failed, 0);
        pthread_mutex_init(&j.err_lock, NULL);
        t = malloc(h->cdim_pad * sizeof(float));
        st = t ? hnsw_ctx_new(&c, err) : error_set(err, IMGSIM_E_NOMEM, "hnsw: out of memory");
        if (st == IMGSIM_OK)
            st = hnsw_ctx_prepare(c, h, err);
        if (st == IMGSIM_OK)
            st = build_one(&j, c, t, 0, err);
        if (st == IMGSIM_OK && nslots > 1)
            st = run_workers(&j, threads, err);
        pthread_mutex_destroy(&j.err_lock);
    }
    hnsw_ctx_free(c);
    free(t);
    free(order);
    if (st != IMGSIM_OK) {
        hnsw_free(h);
        return st;
    }
    *out = h;
    return IMGSIM_OK;
}

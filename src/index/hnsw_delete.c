/*
 * hnsw_delete.c — removing nodes for real: no tombstones. The removed slots go on the free
 * list (the next insert reuses them, upper-link runs too), and every node that linked to a
 * removed node gets a new list on that level.
 *
 * Repair of node s that lost links on level l (the approach of hnswlib's update and of
 * pgvector's vacuum): the candidates are s's surviving links plus the links of each removed
 * neighbour (two hops through the hole), scored from s and passed through the same
 * selection heuristic as an insert (hnsw_insert.c). A node left with no candidate at all is
 * linked by a search from the entry point instead. All removals of one call share one pass
 * over the graph (nslots x links per level), so removing many rows costs about as much as
 * removing one; the entry point moves to a surviving node of the highest level.
 */
#include "index/hnsw_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/grow.h"

/* Accept slots that are not being removed and not the node being repaired. */
typedef struct repair_args {
    const uint8_t *dead;
    uint32_t self;
} repair_args;

static int accept_alive(const hnsw *h, uint32_t slot, const void *arg)
{
    const repair_args *a = arg;
    (void)h;
    return !a->dead[slot] && slot != a->self;
}

/* Order of candidates: closer first, then lower slot. */
static int cand_order(const void *a, const void *b)
{
    const hnsw_cand *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Add slot `id` (once) to the candidate list of the repair of s. */
static imgsim_status add_cand(hnsw *h, hnsw_ctx *c, uint32_t s, uint32_t id, size_t *n)
{
    if (hnsw_visit(c, id))
        return IMGSIM_OK;
    if (grow_array((void **)&c->sel, &c->cap_sel, *n + 1, sizeof *c->sel, 256))
        return IMGSIM_E_NOMEM;
    c->sel[*n].id = id;
    c->sel[*n].d = hnsw_dist_slots(h, &c->qa, s, id);
    (*n)++;
    return IMGSIM_OK;
}

/* New links for slot s on `level`, some of which point to removed slots. */
static imgsim_status repair(hnsw *h, hnsw_ctx *c, const uint8_t *dead, uint32_t s, int level)
{
    uint32_t *ids, *cnt = hnsw_links(h, s, level, &ids);
    size_t n = 0;
    hnsw_visit_reset(c);
    hnsw_visit(c, s);
    for (uint32_t i = 0; i < *cnt; i++)
        if (dead[ids[i]])
            hnsw_visit(c, ids[i]);
    imgsim_status st = IMGSIM_OK;
    for (uint32_t i = 0; i < *cnt && st == IMGSIM_OK; i++) {
        uint32_t x = ids[i];
        if (!dead[x]) {
            st = add_cand(h, c, s, x, &n);
            continue;
        }
        uint32_t *xs, xn = *hnsw_links(h, x, level, &xs);
        for (uint32_t j = 0; j < xn && st == IMGSIM_OK; j++)
            if (!dead[xs[j]])
                st = add_cand(h, c, s, xs[j], &n);
    }
    if (st != IMGSIM_OK)
        return st;
    if (n == 0 && h->entry != HNSW_NONE && h->entry != s) {
        /* nothing nearby survived: find neighbours by a search from the entry point */
        repair_args a = {dead, s};
        hnsw_query_from_slot(h, s, &c->q);
        float d;
        uint32_t ep = hnsw_descend(h, &c->q, h->entry, h->max_level, level, &d);
        st = hnsw_search_level(h, c, &c->q, ep, d, level, h->p.ef_construction, accept_alive, &a);
        if (st != IMGSIM_OK)
            return st;
        if (grow_array((void **)&c->sel, &c->cap_sel, c->res.n, sizeof *c->sel, 256))
            return IMGSIM_E_NOMEM;
        memcpy(c->sel, c->res.v, c->res.n * sizeof *c->sel);
        n = c->res.n;
    }
    qsort(c->sel, n, sizeof *c->sel, cand_order);
    int k = hnsw_select(h, c, c->sel, (int)n, hnsw_max_links(h, level));
    for (int i = 0; i < k; i++)
        ids[i] = c->sel[i].id;
    *cnt = (uint32_t)k;
    return IMGSIM_OK;
}

/* Mark the slots of `rows` in dead[]; E_NOTFOUND / E_ARG when a row is absent or repeated. */
static imgsim_status mark_dead(const hnsw *h, const uint32_t *rows, size_t count, uint8_t *dead,
                               imgsim_error *err)
{
    for (size_t i = 0; i < count; i++) {
        if (!hnsw_contains(h, rows[i]))
            return error_set(err, IMGSIM_E_NOTFOUND, "hnsw remove: row %u is not in the index",
                             rows[i]);
        uint32_t s = h->row_node[rows[i]];
        if (dead[s])
            return error_set(err, IMGSIM_E_ARG, "hnsw remove: row %u given twice", rows[i]);
        dead[s] = 1;
    }
    return IMGSIM_OK;
}

/* Move the entry point to a surviving node of the highest level (or none). */
static void pick_entry(hnsw *h, const uint8_t *dead)
{
    uint32_t best = HNSW_NONE;
    int top = -1;
    for (size_t s = 0; s < h->nslots; s++) {
        const hnsw_node *nd = hnsw_node_at(h, (uint32_t)s);
        if ((nd->flags & HNSW_FREE) || dead[s])
            continue;
        if ((int)nd->level > top) {
            top = nd->level;
            best = (uint32_t)s;
        }
    }
    h->entry = best;
    h->max_level = top;
}

/* Put the dead slots on the free list and forget their rows. */
static void release_slots(hnsw *h, const uint8_t *dead)
{
    for (size_t s = 0; s < h->nslots; s++) {
        if (!dead[s])
            continue;
        hnsw_node *nd = hnsw_node_at(h, (uint32_t)s);
        if (nd->level > 0)
            hnsw_upper_release(h, nd->upper, nd->level);
        h->row_node[nd->row] = HNSW_NONE;
        memset(hnsw_code(h, (uint32_t)s), 0, h->code_bytes);
        memset(nd, 0, sizeof *nd + (size_t)h->M0 * sizeof(uint32_t));
        nd->flags = HNSW_FREE;
        h->free_slots[h->nfree++] = (uint32_t)s;
        h->count--;
    }
}

imgsim_status hnsw_remove(hnsw *h, const uint32_t *rows, size_t count, imgsim_error *err)
{
    if (!h || (count && !rows))
        return error_set(err, IMGSIM_E_ARG, "hnsw remove: no index or rows");
    if (count == 0)
        return IMGSIM_OK;
    uint8_t *dead = calloc(h->nslots ? h->nslots : 1, 1);
    if (!dead)
        return error_set(err, IMGSIM_E_NOMEM, "hnsw remove: out of memory");
    imgsim_status st = mark_dead(h, rows, count, dead, err);
    /* everything that can fail on memory happens before the graph changes */
    if (st == IMGSIM_OK)
        st = hnsw_reserve(h, h->nslots, 0, err);
    if (st == IMGSIM_OK && grow_array((void **)&h->free_slots, &h->cap_free, h->nfree + count,
                                      sizeof *h->free_slots, 64))
        st = error_set(err, IMGSIM_E_NOMEM, "hnsw remove: out of memory");
    if (st == IMGSIM_OK && !h->wctx)
        st = hnsw_ctx_new(&h->wctx, err);
    if (st == IMGSIM_OK)
        st = hnsw_ctx_prepare(h->wctx, h, err);
    if (st != IMGSIM_OK) {
        free(dead);
        return st;
    }
    h->modified = 1;
    uint32_t old_entry = h->entry;
    if (dead[old_entry])
        pick_entry(h, dead);
    for (int l = 0; l <= HNSW_MAX_LEVEL && st == IMGSIM_OK; l++) {
        for (size_t s = 0; s < h->nslots && st == IMGSIM_OK; s++) {
            const hnsw_node *nd = hnsw_node_at(h, (uint32_t)s);
            if ((nd->flags & HNSW_FREE) || dead[s] || (int)nd->level < l)
                continue;
            uint32_t *ids, n = *hnsw_links(h, (uint32_t)s, l, &ids);
            for (uint32_t i = 0; i < n; i++)
                if (dead[ids[i]]) {
                    st = repair(h, h->wctx, dead, (uint32_t)s, l);
                    break;
                }
        }
    }
    if (st != IMGSIM_OK) {
        /* out of memory halfway: drop the links to removed nodes rather than leave them */
        for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
            for (size_t s = 0; s < h->nslots; s++) {
                const hnsw_node *nd = hnsw_node_at(h, (uint32_t)s);
                if ((nd->flags & HNSW_FREE) || dead[s] || (int)nd->level < l)
                    continue;
                uint32_t *ids, *cnt = hnsw_links(h, (uint32_t)s, l, &ids), w = 0;
                for (uint32_t i = 0; i < *cnt; i++)
                    if (!dead[ids[i]])
                        ids[w++] = ids[i];
                *cnt = w;
            }
        error_set(err, IMGSIM_E_NOMEM, "hnsw remove: out of memory while relinking");
    }
    release_slots(h, dead);
    free(dead);
    return st;
}

/*
 * arena.c — the activation allocator (arena.h): greedy first-fit placement of each buffer
 * at the lowest offset not overlapping a buffer that is still live when it is born.
 */
#include "model/exec/arena.h"

#include <stdint.h>
#include <stdlib.h>

#include "model/exec/node.h"

/* Bytes root tensor t takes in the arena, rounded up to EX_ALIGN. */
static size_t placed_bytes(const ir_graph *g, const exec_plan *p, int t)
{
    return ((size_t)ir_numel(&g->t[t]) * ex_elem_size(p) + EX_ALIGN - 1) / EX_ALIGN * EX_ALIGN;
}

int ex_arena_place(const ir_graph *g, exec_plan *p, const int *first, const int *last)
{
    int nt = g->nt;
    p->offset = malloc(sizeof(size_t) * (size_t)nt);
    int *order = malloc(sizeof(int) * (size_t)nt);
    if (!p->offset || !order) {
        free(order);
        return -1;
    }
    for (int t = 0; t < nt; t++)
        p->offset[t] = SIZE_MAX;
    int n = 0;
    for (int t = 0; t < nt; t++)
        if (p->root[t] == t && first[t] != INT32_MAX && !g->t[t].data)
            order[n++] = t;
    for (int a = 1; a < n; a++) /* insertion sort by first definition */
        for (int b = a; b > 0 && first[order[b - 1]] > first[order[b]]; b--) {
            int tmp = order[b];
            order[b] = order[b - 1];
            order[b - 1] = tmp;
        }
    size_t top = 0;
    for (int a = 0; a < n; a++) {
        int t = order[a];
        size_t need = placed_bytes(g, p, t);
        size_t off = 0;
        for (;;) { /* find the lowest offset not overlapping a live placed tensor */
            int moved = 0;
            for (int b = 0; b < a; b++) {
                int u = order[b];
                if (last[u] < first[t] && last[u] != INT32_MAX)
                    continue; /* dead before t is born */
                if (last[u] == -1)
                    continue; /* never read */
                size_t us = placed_bytes(g, p, u);
                if (off < p->offset[u] + us && p->offset[u] < off + need) {
                    off = p->offset[u] + us;
                    moved = 1;
                }
            }
            if (!moved)
                break;
        }
        p->offset[t] = off;
        if (off + need > top)
            top = off + need;
    }
    p->arena_bytes = top;
    free(order);
    return 0;
}

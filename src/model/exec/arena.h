/*
 * arena.h — the activation allocator of a plan (arena.c): every activation buffer gets an
 * offset in one per-image arena, reusing space once the last node reading a buffer has run.
 */
#ifndef IMGSIM_MODEL_EXEC_ARENA_H
#define IMGSIM_MODEL_EXEC_ARENA_H

#include "model/exec/exec.h"

#define EX_ALIGN 64 /* alignment of the arena and of every buffer in it (a cache line) */

/* Greedy first-fit placement in order of definition. `first[t]` / `last[t]`: the node
 * defining / last reading root tensor t (INT32_MAX first: never defined; -1 last: never read;
 * INT32_MAX last: read after the run). Sets p->offset (SIZE_MAX: no buffer) and
 * p->arena_bytes; -1 when out of memory. */
int ex_arena_place(const ir_graph *g, exec_plan *p, const int *first, const int *last);

#endif

/*
 * grow.h — the one way a growable array gets room: doubling capacity, overflow-checked.
 *
 *     if (grow_array((void **)&v, &cap, n + 1, sizeof *v, 64) != 0) return nomem;
 *     v[n++] = x;
 */
#ifndef IMGSIM_CORE_GROW_H
#define IMGSIM_CORE_GROW_H

#include <stddef.h>

/* Make *p (an array of *cap elements of `size` bytes) hold at least `need` elements: when it
 * is too small, the capacity doubles (from `first` when 0) until it does, and *p is
 * reallocated. Returns 0, or -1 when the size overflows or realloc fails (*p and *cap are then
 * unchanged, and still owned by the caller). */
int grow_array(void **p, size_t *cap, size_t need, size_t size, size_t first);

/* The capacity grow_array would give: `cap` when it already holds `need`, else `cap` doubled
 * (from `first` when 0) until it does; 0 when that overflows. For arrays that are not simply
 * realloc'ed (aligned, or moved out of a mapped file). */
size_t grow_capacity(size_t cap, size_t need, size_t first);

#endif

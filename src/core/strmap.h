/*
 * strmap.h — a small string -> long hash map (open addressing, FNV-1a), for "have I seen this
 * id / content key in this run?" questions. Keys are not copied: they must outlive the map.
 */
#ifndef IMGSIM_CORE_STRMAP_H
#define IMGSIM_CORE_STRMAP_H

#include <stddef.h>

typedef struct strmap {
    const char **keys;
    long *vals;
    size_t cap, n;
} strmap;

/* The value stored for `key`, or -1 when absent — then, with `insert`, `key` -> `val` is
 * added (val must be >= 0). -2 when memory runs out. */
long strmap_get(strmap *m, const char *key, int insert, long val);
void strmap_free(strmap *m);

#endif

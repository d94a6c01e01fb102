/* grow.c — grow_array and grow_capacity: capacity doubling with overflow checks (see grow.h). */
#include "core/grow.h"

#include <stdint.h>
#include <stdlib.h>

size_t grow_capacity(size_t cap, size_t need, size_t first)
{
    if (need <= cap)
        return cap;
    size_t nc = cap ? cap : (first ? first : 1);
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return 0;
        nc *= 2;
    }
    return nc;
}

int grow_array(void **p, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return 0;
    if (size == 0)
        return -1;
    size_t nc = grow_capacity(*cap, need, first);
    if (nc == 0 || nc > SIZE_MAX / size)
        return -1;
    void *np = realloc(*p, nc * size);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

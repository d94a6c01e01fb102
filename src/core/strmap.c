/*
 * strmap.c — string -> long hash map (see strmap.h). Grows at half full; linear probing.
 */
#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int grow(strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    const char **k = calloc(cap, sizeof *k);
    long *v = malloc(cap * sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t h = hash(m->keys[i]) & (cap - 1);
            while (k[h])
                h = (h + 1) & (cap - 1);
            k[h] = m->keys[i];
            v[h] = m->vals[i];
        }
    free(m->keys);
    free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = cap;
    return 0;
}

long strmap_get(strmap *m, const char *key, int insert, long val)
{
    if (insert && (m->n + 1) * 2 > m->cap && grow(m) < 0)
        return -2;
    if (!m->cap)
        return -1;
    for (size_t h = hash(key) & (m->cap - 1);; h = (h + 1) & (m->cap - 1)) {
        if (!m->keys[h]) {
            if (insert) {
                m->keys[h] = key;
                m->vals[h] = val;
                m->n++;
            }
            return -1;
        }
        if (!strcmp(m->keys[h], key))
            return m->vals[h];
    }
}

void strmap_free(strmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/*
 * routes.c — the server's route table: every method and path pattern with its name (the
 * metrics label), handler, whether it writes (write token) and its body limit. Routing,
 * 404 / 405 and the Allow header, HEAD, the metrics labels and the item URLs in replies
 * all read it; no other file matches paths or methods.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

/* Metrics list the names in this order (after "other"). When several patterns match a
 * path, the one with the most literal characters wins ("/api/items/{id}/image" over
 * "/api/items/{id}"). */
static const route table[] = {
    {"GET", "/", "index", serve_index, 0, 0},
    {"GET", "/index.html", "index", serve_index, 0, 0},
    {"GET", "/static/*", "static", serve_static, 0, 0},
    {"GET", "/healthz", "healthz", api_healthz, 0, 0},
    {"GET", "/metrics", "metrics", api_metrics, 0, 0},
    {"GET", "/api/stats", "stats", api_stats, 0, 0},
    {"GET", "/api/labels", "labels", api_labels, 0, 0},
    {"GET", "/api/random", "random", api_random, 0, 0},
    {"POST", "/api/search", "search", api_search, 0, ROUTE_BODY_UPLOAD},
    {"GET", "/api/items/{id}", "item", api_item, 0, 0},
    {"GET", "/api/items/{id}/similar", "similar", api_similar, 0, 0},
    {"GET", "/api/items/{id}/image", "image", api_image, 0, 0},
    {"POST", "/api/items", "add", api_add, 1, ROUTE_BODY_UPLOAD},
    {"DELETE", "/api/items/{id}", "delete", api_delete, 1, 0},
};
#define NROUTES (sizeof table / sizeof *table)

/* Does `path` match `pat`? Sets the placeholder's part of the path (mid, mlen) and the
 * number of literal characters matched. */
static int match(const char *pat, const char *path, const char **mid, size_t *mlen, size_t *lit)
{
    const char *ph = strpbrk(pat, "{*");
    *mid = NULL;
    *mlen = 0;
    if (!ph) {
        *lit = strlen(pat);
        return !strcmp(pat, path);
    }
    size_t pre = (size_t)(ph - pat);
    if (strncmp(pat, path, pre))
        return 0;
    const char *rest = path + pre;
    size_t rl = strlen(rest);
    if (*ph == '*') {
        *mid = rest;
        *mlen = rl;
        *lit = pre;
        return 1;
    }
    const char *suf = strchr(ph, '}');
    suf = suf ? suf + 1 : "";
    size_t sl = strlen(suf);
    if (rl <= sl || strcmp(rest + rl - sl, suf))
        return 0; /* the id is never empty */
    *mid = rest;
    *mlen = rl - sl;
    *lit = pre + sl;
    return 1;
}

static int method_is(const route *rt, const char *method)
{
    return !strcmp(rt->method, method) || (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"));
}

int route_find(const char *method, const char *path, const route **rt, char **id,
               const char **rest)
{
    *rt = NULL;
    *id = NULL;
    *rest = NULL;
    const route *best = NULL;
    const char *mid = NULL;
    size_t mlen = 0, blit = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        const char *m;
        size_t ml, lit;
        if (match(table[i].pattern, path, &m, &ml, &lit) && (!best || lit > blit)) {
            best = &table[i];
            mid = m;
            mlen = ml;
            blit = lit;
        }
    }
    if (!best)
        return -1;
    const route *found = NULL;
    for (size_t i = 0; i < NROUTES && !found; i++)
        if (!strcmp(table[i].pattern, best->pattern) && method_is(&table[i], method))
            found = &table[i];
    if (strchr(best->pattern, '{')) {
        /* undecodable or not UTF-8: no such item, whatever the method */
        if (!(*id = url_decode(mid, mlen, 0)) || !utf8_valid(*id)) {
            free(*id);
            *id = NULL;
            return -1;
        }
    } else if (mid) {
        *rest = mid;
    }
    *rt = found ? found : best;
    return found ? 0 : 1;
}

void route_allow(const route *rt, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        if (strcmp(table[i].pattern, rt->pattern))
            continue;
        int w = snprintf(out + len, n - len, "%s%s%s", len ? ", " : "", table[i].method,
                         strcmp(table[i].method, "GET") ? "" : ", HEAD");
        if (w < 0 || (size_t)w >= n - len)
            return;
        len += (size_t)w;
    }
}

/* Is table[i] the first entry with its name? */
static int first_of_name(size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (!strcmp(table[j].name, table[i].name))
            return 0;
    return 1;
}

int route_labels(const char **names, int max)
{
    int n = 0;
    if (n < max)
        names[n++] = "other";
    for (size_t i = 0; i < NROUTES && n < max; i++)
        if (first_of_name(i))
            names[n++] = table[i].name;
    return n;
}

int route_label(const route *rt)
{
    if (!rt)
        return 0;
    int label = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        if (first_of_name(i))
            label++;
        if (!strcmp(table[i].name, rt->name))
            return label;
    }
    return 0;
}

char *route_url(const char *name, const char *id)
{
    static const char keep[] = "-_.!~*'()";
    const route *rt = NULL;
    for (size_t i = 0; i < NROUTES && !rt; i++)
        if (!strcmp(table[i].name, name))
            rt = &table[i];
    const char *ph = rt ? strstr(rt->pattern, "{id}") : NULL;
    if (!ph)
        return NULL;
    char *o = malloc(strlen(rt->pattern) + strlen(id) * 3 + 1), *p = o;
    if (!o)
        return NULL;
    memcpy(p, rt->pattern, (size_t)(ph - rt->pattern));
    p += ph - rt->pattern;
    for (const unsigned char *c = (const unsigned char *)id; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr(keep, *c))
            *p++ = (char)*c;
        else
            p += sprintf(p, "%%%02X", *c);
    }
    strcpy(p, ph + 4);
    return o;
}

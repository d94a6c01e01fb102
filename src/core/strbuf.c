/*
 * strbuf.c — the checked string builder of strbuf.h.
 */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

/* Room for `more` bytes of text plus the terminating NUL; -1 (and `failed`) if not. */
static int reserve(strbuf *b, size_t more)
{
    if (b->failed)
        return -1;
    if (more > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    if (grow_array((void **)&b->s, &b->cap, b->len + more + 1, 1, 256)) {
        b->failed = 1;
        return -1;
    }
    return 0;
}

void strbuf_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap); /* measure first */
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void strbuf_putc(strbuf *b, char c)
{
    if (reserve(b, 1) != 0)
        return;
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

void strbuf_puts(strbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (reserve(b, n) != 0)
        return;
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

char *strbuf_take(strbuf *b)
{
    char *s = NULL;
    if (reserve(b, 0) == 0) { /* an empty builder still gives "" */
        b->s[b->len] = '\0';
        s = b->s;
        b->s = NULL;
    }
    strbuf_free(b);
    return s;
}

void strbuf_free(strbuf *b)
{
    free(b->s);
    *b = (strbuf)STRBUF_INIT;
}

/*
 * strbuf.h — a small growable string builder with checked appends: lengths are checked
 * before they are added, and the first failure (out of memory, or an encoding error in a
 * format) latches `failed`, after which appends do nothing and strbuf_take returns NULL.
 */
#ifndef IMGSIM_CORE_STRBUF_H
#define IMGSIM_CORE_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *s;            /* NUL-terminated once anything was added */
    size_t len, cap;
    int failed;
} strbuf;

#define STRBUF_INIT {NULL, 0, 0, 0}

/* Append printf-formatted text / one character / a C string. */
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_putc(strbuf *b, char c);
void strbuf_puts(strbuf *b, const char *s);

/* The text built (malloc'ed: the caller frees it with free), or NULL if an append failed.
 * Either way the builder is empty again afterwards. */
char *strbuf_take(strbuf *b);
/* Discard the text. */
void strbuf_free(strbuf *b);

#endif

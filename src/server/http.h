/*
 * http.h — the server's HTTP helpers that need no request or connection (http.c): status
 * mapping, percent-decoding, header parameters, multipart/form-data splitting, image type
 * checks and UTF-8 validation. Pure functions of their arguments, so they can be unit
 * tested alone; the request-bound helpers (replies, query parameters) are in internal.h.
 */
#ifndef IMGSIM_SERVER_HTTP_H
#define IMGSIM_SERVER_HTTP_H

#include <stddef.h>

#include "imgsim.h"

/* imgsim status -> HTTP status for errors. */
int http_status_of(imgsim_status s);
/* Percent-decode s[0..n) (and '+' as space when `form`) into a new string (caller frees);
 * NULL on a bad or truncated escape, an encoded or raw NUL byte, or out of memory. */
char *url_decode(const char *s, size_t n, int form);
/* Value of parameter `key` (case-insensitive) in a header value h[0..hl) such as
 * `form-data; name="x"; filename="y"` (quoted or bare), truncated to outn - 1 bytes; ""
 * when absent. */
void header_param(const char *h, size_t hl, const char *key, char *out, size_t outn);

typedef struct part {
    char name[64];
    char filename[256];
    char type[128];
    const char *data;      /* points into the body */
    size_t len;
} part;
/* Split a multipart/form-data body (boundary from the Content-Type `ctype`) into at most
 * `max` parts (more are skipped); *n = parts kept. -1 if malformed. */
int multipart_parse(const char *ctype, const char *body, size_t len, part *parts, int max,
                    int *n);
/* Is `type` (a Content-Type, parameters allowed) an image type we decode? */
int is_image_type(const char *type);
/* Lower-case extension ("jpg", ...) an upload is saved under, from its bytes (image_sniff) when
 * they are JPEG, PNG, WebP, GIF, TIFF or BMP; NULL otherwise. */
const char *sniff_ext(const unsigned char *b, size_t n);
/* 1 when `s` is valid UTF-8 (JSON strings must be). */
int utf8_valid(const char *s);

#endif

/*
 * error.c — status names and the message buffer every imgsim call fills on failure.
 */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *imgsim_status_name(imgsim_status s)
{
    switch (s) {
    case IMGSIM_OK: return "ok";
    case IMGSIM_E_ARG: return "bad argument";
    case IMGSIM_E_IO: return "i/o error";
    case IMGSIM_E_DECODE: return "decode error";
    case IMGSIM_E_TOO_BIG: return "too big";
    case IMGSIM_E_MODEL: return "bad model";
    case IMGSIM_E_UNSUPPORTED: return "unsupported";
    case IMGSIM_E_NOMEM: return "out of memory";
    case IMGSIM_E_NET: return "network error";
    case IMGSIM_E_CHECKSUM: return "checksum mismatch";
    case IMGSIM_E_NOTFOUND: return "not found";
    case IMGSIM_E_INTERNAL: return "internal error";
    }
    return "unknown error";
}

imgsim_status error_set(imgsim_error *err, imgsim_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

imgsim_status error_prefix(imgsim_error *err, const char *fmt, ...)
{
    if (!err)
        return IMGSIM_E_INTERNAL;
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t cap = sizeof err->msg - 1;
    size_t used = (size_t)n < cap ? (size_t)n : cap;
    const char *parts[2] = {": ", old};
    for (int p = 0; p < 2; p++)
        for (const char *c = parts[p]; *c && used < cap; c++)
            err->msg[used++] = *c;
    err->msg[used] = 0;
    return err->code;
}

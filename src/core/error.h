/*
 * error.h — how every library function reports failure: it returns an imgsim_status and
 * writes one line naming the cause into the caller's imgsim_error (if given).
 */
#ifndef IMGSIM_CORE_ERROR_H
#define IMGSIM_CORE_ERROR_H

#include "imgsim.h"

/* Record `code` and a printf-style message in `err` (may be NULL); returns `code`. */
imgsim_status error_set(imgsim_error *err, imgsim_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context ("file.jpg: ..."); returns err->code. */
imgsim_status error_prefix(imgsim_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

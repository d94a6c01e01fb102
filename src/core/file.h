/*
 * file.h — reading a whole file into memory under a size limit (images, model files).
 */
#ifndef IMGSIM_CORE_FILE_H
#define IMGSIM_CORE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Read all of `path` into a malloc'ed buffer *data (not NULL on success, even when the file is
 * empty) of *len bytes. A regular file is sized with fstat before reading; pipes and devices are
 * read to their end; EINTR is retried. More than `limit` bytes: IMGSIM_E_TOO_BIG, with *len set
 * to the size seen (the file's, or what was read when the limit was passed) so that the caller
 * can word its own message. Otherwise IMGSIM_E_IO ("cannot open: ...", "cannot stat: ...",
 * "is a directory", "read failed: ...") or IMGSIM_E_NOMEM; the messages do not name the path
 * (callers prefix it). On failure *data is NULL. */
imgsim_status file_read_all(const char *path, uint64_t limit, uint8_t **data, size_t *len,
                            imgsim_error *err);

#endif

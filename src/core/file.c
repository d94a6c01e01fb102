/* file.c — file_read_all: a whole file (regular, pipe or device) under a size limit (file.h). */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/grow.h"

static imgsim_status too_big(imgsim_error *err, uint64_t n, uint64_t limit, size_t *len)
{
    *len = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
    return error_set(err, IMGSIM_E_TOO_BIG, "%llu bytes, over the limit of %llu",
                     (unsigned long long)n, (unsigned long long)limit);
}

imgsim_status file_read_all(const char *path, uint64_t limit, uint8_t **data, size_t *len,
                            imgsim_error *err)
{
    *data = NULL;
    *len = 0;
    if (limit >= SIZE_MAX)
        limit = SIZE_MAX - 1; /* room for the byte that tells the end */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_set(err, IMGSIM_E_IO, "cannot open: %s", strerror(errno));
    imgsim_status s = IMGSIM_OK;
    struct stat st;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    if (fstat(fd, &st) != 0) {
        s = error_set(err, IMGSIM_E_IO, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        s = error_set(err, IMGSIM_E_IO, "is a directory");
        goto out;
    }
    size_t first = 1 << 16;
    if (S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > limit) {
            s = too_big(err, (uint64_t)st.st_size, limit, len);
            goto out;
        }
        first = (size_t)st.st_size + 1; /* +1: notice a file that grew since fstat */
    }
    for (;;) {
        if (n == cap) {
            if (n > limit) {
                s = too_big(err, n, limit, len);
                goto out;
            }
            /* doubling, but never past limit + 1 bytes: one more than allowed shows the excess */
            size_t nc = grow_capacity(cap, n + 1, first);
            if (!nc || nc > (size_t)limit + 1)
                nc = (size_t)limit + 1;
            uint8_t *nb = realloc(buf, nc);
            if (!nb) {
                s = error_set(err, IMGSIM_E_NOMEM, "cannot allocate %zu bytes", nc);
                goto out;
            }
            buf = nb, cap = nc;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            s = error_set(err, IMGSIM_E_IO, "read failed: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > limit)
        s = too_big(err, n, limit, len);
out:
    close(fd);
    if (s != IMGSIM_OK) {
        free(buf);
        return s;
    }
    *data = buf;
    *len = n;
    return IMGSIM_OK;
}

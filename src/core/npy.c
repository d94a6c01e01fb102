/*
 * npy.c — writes float32 matrices in numpy's .npy format (version 1.0, C order), the
 * interchange format for embeddings (`imgsim embed -o vectors.npy`).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

imgsim_status imgsim_write_npy(const char *path, const float *data, size_t n, size_t d,
                               imgsim_error *err)
{
    char hdr[256];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }",
                       n, d);
    if (len < 0 || (size_t)len + 80 >= sizeof hdr)
        return error_set(err, IMGSIM_E_ARG, "matrix shape too large");
    /* magic(6) + version(2) + header length(2) + header, padded with spaces to 64 bytes, '\n' */
    size_t total = 10 + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(hdr + len, ' ', pad);
    hdr[len + (int)pad] = '\n';
    uint16_t hl = (uint16_t)((size_t)len + pad + 1);
    FILE *f = fopen(path, "wb");
    if (!f)
        return error_set(err, IMGSIM_E_IO, "%s: %s", path, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff),
                             (unsigned char)(hl >> 8)};
    int bad = fwrite(pre, 1, 10, f) != 10 || fwrite(hdr, 1, hl, f) != hl ||
              (n * d > 0 && fwrite(data, sizeof(float), n * d, f) != n * d);
    bad |= fclose(f) != 0;
    if (bad) {
        unlink(path);
        return error_set(err, IMGSIM_E_IO, "%s: write failed", path);
    }
    return IMGSIM_OK;
}

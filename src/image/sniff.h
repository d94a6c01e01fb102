/*
 * sniff.h — which image format a file's first bytes announce, without decoding anything.
 */
#ifndef IMGSIM_IMAGE_SNIFF_H
#define IMGSIM_IMAGE_SNIFF_H

#include <stddef.h>
#include <stdint.h>

/* Image format from the first bytes of a file, or NULL: "jpeg", "png", "gif", "webp", "tiff",
 * "bmp", "heif", "avif", "jxl", "jp2", "pnm", "pfm", "exr", "hdr", "psd". `len` may be short
 * (then NULL unless sure); `head` may be NULL. */
const char *image_sniff(const uint8_t *head, size_t len);

#endif

/*
 * image.h — internal interface of the image stage: libvips start-up, turning libvips errors
 * into imgsim errors, and the preprocessing recipe shared by the file, buffer and raw loaders.
 */
#ifndef IMGSIM_IMAGE_IMAGE_H
#define IMGSIM_IMAGE_IMAGE_H

#include <vips/vips.h>

#include "imgsim.h"

#define IMGSIM_DEFAULT_MAX_PIXELS 100000000ull          /* 100 Mpx */
#define IMGSIM_DEFAULT_MAX_FILE_BYTES (256ull << 20)    /* 256 MiB */

/* Start libvips once (thread-safe, pthread_once): small operation cache, one worker thread
 * per pipeline (unless $VIPS_CONCURRENCY says otherwise), libvips warnings silenced.
 * Called by every image function; imgsim_init calls it too. */
imgsim_status image_vips_init(imgsim_error *err);

/* Fail with `code` and the message "<what>: <first line of the libvips error buffer>",
 * then clear that buffer. */
imgsim_status image_vips_fail(imgsim_error *err, imgsim_status code, const char *what);

/* Copy `in` (NULL = defaults) into `out` with every default resolved (resize_shorter,
 * limits) and the values checked. */
imgsim_status prep_resolve(const imgsim_prep *in, imgsim_prep *out, imgsim_error *err);

/* JPEG shrink-on-load factor (1, 2, 4 or 8) for a source of w x h under the resolved recipe
 * `p`: the largest that keeps at least twice the pixels the resize needs on each axis. */
int prep_jpeg_shrink(const imgsim_prep *p, int w, int h);

/* Run the recipe on `in` (3-band 8-bit sRGB, possibly carrying an EXIF orientation tag):
 * orient, crop, resize, and write packed RGB into `out`. Does not take ownership of `in`.
 * Failures while computing pixels (the loader runs lazily here) are IMGSIM_E_DECODE. */
imgsim_status prep_run(VipsImage *in, const imgsim_prep *p, imgsim_image *out,
                       imgsim_error *err);

#endif

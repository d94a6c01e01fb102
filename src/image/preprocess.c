/*
 * preprocess.c — the input recipe: resolve/validate imgsim_prep, then orient, crop and resize
 * a decoded 8-bit sRGB image into the exact network input (packed RGB).
 *
 * Geometry conventions (shared by every input path, so file, buffer and raw agree):
 *   SHORTER_CROP  shorter side -> S exactly, longer side -> round(long * S / short),
 *                 then a C x C crop at ((W - C) / 2, (H - C) / 2), integer division.
 *   SQUASH        each axis scaled independently to C.
 *   NONE          orientation, colour and crop only.
 * Resampling is libvips' vips_resize (lanczos3); when the target equals the source size no
 * resampling happens at all, so pixels pass through unchanged.
 */
#include "image/image.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

#define MAX_EDGE 65535

void imgsim_prep_default(imgsim_prep *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->size = 224;
    p->resize_shorter = 0; /* round(224 / 0.875) = 256, follows `size` if it is changed */
    p->mode = IMGSIM_RESIZE_SHORTER_CROP;
    p->max_pixels = IMGSIM_DEFAULT_MAX_PIXELS;
    p->max_file_bytes = IMGSIM_DEFAULT_MAX_FILE_BYTES;
}

imgsim_status prep_resolve(const imgsim_prep *in, imgsim_prep *out, imgsim_error *err)
{
    if (in)
        *out = *in;
    else
        imgsim_prep_default(out);
    if (out->mode != IMGSIM_RESIZE_SHORTER_CROP && out->mode != IMGSIM_RESIZE_SQUASH &&
        out->mode != IMGSIM_RESIZE_NONE)
        return error_set(err, IMGSIM_E_ARG, "unknown resize mode %d", (int)out->mode);
    if (out->mode != IMGSIM_RESIZE_NONE && (out->size < 1 || out->size > MAX_EDGE))
        return error_set(err, IMGSIM_E_ARG, "input size %d is outside 1..%d", out->size,
                         MAX_EDGE);
    if (out->mode == IMGSIM_RESIZE_SHORTER_CROP) {
        if (out->resize_shorter == 0)
            out->resize_shorter = (int)lround(out->size / 0.875);
        if (out->resize_shorter < out->size || out->resize_shorter > MAX_EDGE)
            return error_set(err, IMGSIM_E_ARG,
                             "resize_shorter %d must be between the input size %d and %d",
                             out->resize_shorter, out->size, MAX_EDGE);
    }
    if (out->has_crop && (out->crop_x < 0 || out->crop_y < 0 || out->crop_w < 1 ||
                          out->crop_h < 1))
        return error_set(err, IMGSIM_E_ARG, "crop %d,%d,%d,%d: needs x,y >= 0 and w,h >= 1",
                         out->crop_x, out->crop_y, out->crop_w, out->crop_h);
    if (out->max_pixels == 0)
        out->max_pixels = IMGSIM_DEFAULT_MAX_PIXELS;
    if (out->max_file_bytes == 0)
        out->max_file_bytes = IMGSIM_DEFAULT_MAX_FILE_BYTES;
    return IMGSIM_OK;
}

int prep_jpeg_shrink(const imgsim_prep *p, int w, int h)
{
    if (p->has_crop || p->mode == IMGSIM_RESIZE_NONE)
        return 1;
    /* Shrink is uniform, so the shorter side decides for both recipes: SHORTER_CROP needs it
     * at S, SQUASH needs both axes at C. Keep a 2x margin for the final lanczos pass. */
    long need = 2L * (p->mode == IMGSIM_RESIZE_SQUASH ? p->size : p->resize_shorter);
    long shorter = w < h ? w : h;
    for (int f = 8; f > 1; f /= 2)
        if (shorter / f >= need)
            return f;
    return 1;
}

/* Scale `in` to exactly tw x th (no-op if already that size). */
static int resize_exact(VipsImage *in, VipsImage **out, int tw, int th)
{
    int w = vips_image_get_width(in), h = vips_image_get_height(in);
    if (w == tw && h == th) {
        *out = in;
        g_object_ref(in);
        return 0;
    }
    VipsImage *t = NULL;
    if (vips_resize(in, &t, (double)tw / w, "vscale", (double)th / h, NULL))
        return -1;
    if (vips_image_get_width(t) == tw && vips_image_get_height(t) == th) {
        *out = t;
        return 0;
    }
    /* Round-off left us a pixel short or over: pad by edge copy, or cut. */
    int r = vips_embed(t, out, 0, 0, tw, th, "extend", VIPS_EXTEND_COPY, NULL);
    g_object_unref(t);
    return r;
}

imgsim_status prep_run(VipsImage *in, const imgsim_prep *p, imgsim_image *out,
                       imgsim_error *err)
{
    imgsim_status s = IMGSIM_OK;
    VipsImage *im = in, *t = NULL;
    g_object_ref(im);

    /* 1. EXIF orientation. Rotating needs random access to the source, so decode it first. */
    int orient = vips_image_get_orientation(im);
    if (orient > 1 && orient <= 8) {
        if (!(t = vips_image_copy_memory(im))) {
            s = image_vips_fail(err, IMGSIM_E_DECODE, "cannot decode image");
            goto done;
        }
        g_object_unref(im), im = t, t = NULL;
        if (vips_autorot(im, &t, NULL)) {
            s = image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot apply EXIF orientation");
            goto done;
        }
        g_object_unref(im), im = t, t = NULL;
    }
    int w = vips_image_get_width(im), h = vips_image_get_height(im);

    /* 2. Crop, in the coordinates of the oriented image. */
    if (p->has_crop) {
        if ((long long)p->crop_x + p->crop_w > w || (long long)p->crop_y + p->crop_h > h) {
            s = error_set(err, IMGSIM_E_ARG,
                          "crop %d,%d,%d,%d lies outside the %dx%d image", p->crop_x,
                          p->crop_y, p->crop_w, p->crop_h, w, h);
            goto done;
        }
        if (vips_extract_area(im, &t, p->crop_x, p->crop_y, p->crop_w, p->crop_h, NULL)) {
            s = image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot crop");
            goto done;
        }
        g_object_unref(im), im = t, t = NULL;
        w = p->crop_w, h = p->crop_h;
    }

    /* 3. The recipe. */
    if (p->mode != IMGSIM_RESIZE_NONE) {
        int c = p->size, tw = c, th = c;
        if (p->mode == IMGSIM_RESIZE_SHORTER_CROP) {
            int sh = p->resize_shorter;
            if ((double)w * sh / h > VIPS_MAX_COORD || (double)h * sh / w > VIPS_MAX_COORD) {
                s = error_set(err, IMGSIM_E_UNSUPPORTED,
                              "a %dx%d image is too elongated to resize its shorter side to %d",
                              w, h, sh);
                goto done;
            }
            if (w <= h) {
                tw = sh;
                th = (int)llround((double)h * sh / w);
            } else {
                th = sh;
                tw = (int)llround((double)w * sh / h);
            }
            if (tw < sh) tw = sh;
            if (th < sh) th = sh;
        }
        if (resize_exact(im, &t, tw, th)) {
            s = image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot resize");
            goto done;
        }
        g_object_unref(im), im = t, t = NULL;
        if (tw != c || th != c) {
            if (vips_extract_area(im, &t, (tw - c) / 2, (th - c) / 2, c, c, NULL)) {
                s = image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot centre-crop");
                goto done;
            }
            g_object_unref(im), im = t, t = NULL;
        }
        w = h = c;
    }

    /* 4. Pixels. The loader runs here, so truncated or corrupt data surfaces now. */
    if (vips_image_get_bands(im) != 3 || vips_image_get_format(im) != VIPS_FORMAT_UCHAR) {
        s = error_set(err, IMGSIM_E_INTERNAL, "preprocess: expected 3-band 8-bit input");
        goto done;
    }
    size_t len = 0;
    /* g_malloc'ed; GLib >= 2.46 always uses the system malloc, so free() releases it. */
    void *px = vips_image_write_to_memory(im, &len);
    if (!px) {
        s = image_vips_fail(err, IMGSIM_E_DECODE, "cannot decode image");
        goto done;
    }
    if (len != (size_t)w * (size_t)h * 3) {
        g_free(px);
        s = error_set(err, IMGSIM_E_INTERNAL, "preprocess: got %zu bytes for %dx%d RGB", len,
                      w, h);
        goto done;
    }
    out->width = w;
    out->height = h;
    out->rgb = px;

done:
    if (t)
        g_object_unref(t);
    g_object_unref(im);
    return s;
}

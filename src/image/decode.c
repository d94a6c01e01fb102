/*
 * decode.c — reading images into the recipe: files, memory buffers and raw RGB, with the size
 * limits enforced before any pixel is decoded, a short list of accepted formats, and colour
 * normalisation to 3-band 8-bit sRGB (alpha flattened on white). Also saving and freeing.
 *
 * Files are read into memory (after the byte limit is checked) and go through the buffer
 * path, so a file and its bytes always produce identical output.
 */
#include "image/image.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/file.h"

/* ------------------------------------------------------------ limits and file reading */

static double mib(uint64_t n) { return (double)n / (1024.0 * 1024.0); }

static imgsim_status too_many_bytes(imgsim_error *err, uint64_t n, uint64_t limit)
{
    return error_set(err, IMGSIM_E_TOO_BIG, "input is %llu bytes (%.1f MiB), over the %.1f MiB limit",
                     (unsigned long long)n, mib(n), mib(limit));
}

static imgsim_status check_pixels(imgsim_error *err, int w, int h, uint64_t limit)
{
    uint64_t n = (uint64_t)w * (uint64_t)h;
    if (n > limit && limit < 100000)
        return error_set(err, IMGSIM_E_TOO_BIG, "image is %dx%d = %llu pixels, over the %llu-pixel limit",
                         w, h, (unsigned long long)n, (unsigned long long)limit);
    if (n > limit)
        return error_set(err, IMGSIM_E_TOO_BIG, "image is %dx%d = %.1f Mpx, over the %g Mpx limit",
                         w, h, (double)n / 1e6, (double)limit / 1e6);
    return IMGSIM_OK;
}

/* Read all of `path` (core/file.h), refusing more than `limit` bytes with this stage's
 * message. */
static imgsim_status read_all(const char *path, uint64_t limit, uint8_t **data, size_t *len,
                              imgsim_error *err)
{
    imgsim_status s = file_read_all(path, limit, data, len, err);
    if (s == IMGSIM_E_TOO_BIG) {
        s = too_many_bytes(err, (uint64_t)*len, limit);
        *len = 0;
    }
    return s;
}

/* ------------------------------------------------------------ formats */

/* The loaders imgsim accepts (libvips has many more: SVG, PDF, CSV, its own format, ...,
 * which are no photographs and widen the attack surface). ImageMagick only for BMP. */
static const struct {
    const char *nick, *name;
} allowed[] = {
    {"jpegload_buffer", "JPEG"}, {"pngload_buffer", "PNG"},   {"webpload_buffer", "WebP"},
    {"gifload_buffer", "GIF"},   {"tiffload_buffer", "TIFF"}, {"heifload_buffer", "HEIF/AVIF"},
    {"magickload_buffer", "BMP"},
};

static imgsim_status pick_loader(const uint8_t *data, size_t len, int *is_jpeg,
                                 imgsim_error *err)
{
    const char *op = vips_foreign_find_load_buffer(data, len);
    if (!op) {
        vips_error_clear();
        return error_set(err, IMGSIM_E_DECODE,
                         "not a recognised image format (expected JPEG, PNG, WebP, GIF, "
                         "TIFF, BMP or HEIF)");
    }
    const char *nick = vips_nickname_find(g_type_from_name(op));
    if (!nick)
        nick = op;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (strcmp(nick, allowed[i].nick) != 0)
            continue;
        if (strcmp(nick, "magickload_buffer") == 0 && !(len >= 2 && data[0] == 'B' && data[1] == 'M'))
            break;
        *is_jpeg = strcmp(nick, "jpegload_buffer") == 0;
        return IMGSIM_OK;
    }
    size_t n = strcspn(nick, "_");
    if (n > 4 && strncmp(nick + n - 4, "load", 4) == 0)
        n -= 4;
    return error_set(err, IMGSIM_E_UNSUPPORTED,
                     "%.*s images are not supported (only JPEG, PNG, WebP, GIF, TIFF, BMP, "
                     "HEIF/AVIF)",
                     (int)n, nick);
}

/* ------------------------------------------------------------ colour */

/* After `r = op(*im, t, ...)`: on success replace *im by *t. `t` is passed by address so the
 * call below may be written inline as an argument (evaluation order is unspecified). */
static int step(VipsImage **im, int r, VipsImage **t)
{
    if (r)
        return -1;
    g_object_unref(*im);
    *im = *t;
    *t = NULL;
    return 0;
}

/* Any interpretation / depth / alpha -> 3-band 8-bit sRGB. Pointwise only, so it keeps the
 * loader's sequential access. Takes ownership of *im (replaced by the result). */
static imgsim_status to_srgb8(VipsImage **im, imgsim_error *err)
{
    VipsImage *t = NULL;
    VipsInterpretation interp = vips_image_guess_interpretation(*im);
    if (interp != VIPS_INTERPRETATION_sRGB) {
        if (step(im, vips_colourspace(*im, &t, VIPS_INTERPRETATION_sRGB, NULL), &t)) {
            const char *name = vips_enum_nick(VIPS_TYPE_INTERPRETATION, interp);
            char what[96];
            snprintf(what, sizeof what, "cannot convert %s image to sRGB", name ? name : "?");
            return image_vips_fail(err, IMGSIM_E_UNSUPPORTED, what);
        }
    }
    if (vips_image_get_format(*im) != VIPS_FORMAT_UCHAR &&
        step(im, vips_cast(*im, &t, VIPS_FORMAT_UCHAR, NULL), &t))
        return image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot convert to 8 bits");
    if (vips_image_hasalpha(*im)) {
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int r = vips_flatten(*im, &t, "background", white, "max_alpha", 255.0, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (step(im, r, &t))
            return image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot flatten alpha");
        if (vips_image_get_format(*im) != VIPS_FORMAT_UCHAR &&
            step(im, vips_cast(*im, &t, VIPS_FORMAT_UCHAR, NULL), &t))
            return image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot convert to 8 bits");
    }
    int bands = vips_image_get_bands(*im);
    if (bands < 3) {
        VipsImage *g = NULL;
        if (bands > 1 && vips_extract_band(*im, &g, 0, NULL))
            return image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot extract band");
        if (!g) {
            g = *im;
            g_object_ref(g);
        }
        VipsImage *three[3] = {g, g, g};
        int r = vips_bandjoin(three, &t, 3, NULL);
        g_object_unref(g);
        if (step(im, r, &t))
            return image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot expand grey to RGB");
    } else if (bands > 3 && step(im, vips_extract_band(*im, &t, 0, "n", 3, NULL), &t)) {
        return image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot extract RGB bands");
    }
    return IMGSIM_OK;
}

/* ------------------------------------------------------------ loading */

/* Put the file name in front of the message; keeps `s` even when err is NULL. */
static imgsim_status prefixed(imgsim_error *err, imgsim_status s, const char *path)
{
    if (err && s != IMGSIM_OK)
        error_prefix(err, "%s", path);
    return s;
}

static void clear_out(imgsim_image *out)
{
    if (out) {
        out->width = out->height = 0;
        out->src_width = out->src_height = 0;
        out->rgb = NULL;
    }
}

static VipsImage *open_buffer(const void *data, size_t len, int shrink)
{
    if (shrink > 1)
        return vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL,
                                          "fail_on", VIPS_FAIL_ON_TRUNCATED, "shrink", shrink,
                                          NULL);
    return vips_image_new_from_buffer(data, len, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                      VIPS_FAIL_ON_TRUNCATED, NULL);
}

/* Common path of file and buffer loading; `p` is resolved. */
static imgsim_status load_bytes(const uint8_t *data, size_t len, const imgsim_prep *p,
                                imgsim_image *out, imgsim_error *err)
{
    if (len == 0)
        return error_set(err, IMGSIM_E_DECODE, "empty input (0 bytes)");
    if ((uint64_t)len > p->max_file_bytes)
        return too_many_bytes(err, len, p->max_file_bytes);
    int is_jpeg = 0;
    imgsim_status s = pick_loader(data, len, &is_jpeg, err);
    if (s != IMGSIM_OK)
        return s;

    /* Header only: no pixel is decoded until the pipeline is written out. */
    VipsImage *im = open_buffer(data, len, 1);
    if (!im)
        return image_vips_fail(err, IMGSIM_E_DECODE, "cannot read image header");
    int w = vips_image_get_width(im), h = vips_image_get_height(im);
    if ((s = check_pixels(err, w, h, p->max_pixels)) != IMGSIM_OK)
        goto done;

    if (is_jpeg) {
        int shrink = prep_jpeg_shrink(p, w, h);
        if (shrink > 1) {
            VipsImage *small = open_buffer(data, len, shrink);
            if (!small) {
                s = image_vips_fail(err, IMGSIM_E_DECODE, "cannot read image header");
                goto done;
            }
            g_object_unref(im);
            im = small;
        }
    }
    if ((s = to_srgb8(&im, err)) != IMGSIM_OK)
        goto done;
    int orient = vips_image_get_orientation(im);
    if ((s = prep_run(im, p, out, err)) == IMGSIM_OK) {
        int swap = orient >= 5 && orient <= 8;
        out->src_width = swap ? h : w;
        out->src_height = swap ? w : h;
    }
done:
    g_object_unref(im);
    return s;
}

imgsim_status imgsim_image_load_buffer(const void *data, size_t len, const imgsim_prep *p,
                                       imgsim_image *out, imgsim_error *err)
{
    clear_out(out);
    if (!out || (!data && len))
        return error_set(err, IMGSIM_E_ARG, "load_buffer: NULL argument");
    imgsim_status s;
    imgsim_prep rp;
    if ((s = image_vips_init(err)) != IMGSIM_OK || (s = prep_resolve(p, &rp, err)) != IMGSIM_OK)
        return s;
    return load_bytes(data, len, &rp, out, err);
}

imgsim_status imgsim_image_load_file(const char *path, const imgsim_prep *p, imgsim_image *out,
                                     imgsim_error *err)
{
    clear_out(out);
    if (!path || !out)
        return error_set(err, IMGSIM_E_ARG, "load_file: NULL argument");
    imgsim_status s;
    imgsim_prep rp;
    if ((s = image_vips_init(err)) != IMGSIM_OK || (s = prep_resolve(p, &rp, err)) != IMGSIM_OK)
        return s;
    uint8_t *data = NULL;
    size_t len = 0;
    if ((s = read_all(path, rp.max_file_bytes, &data, &len, err)) == IMGSIM_OK)
        s = load_bytes(data, len, &rp, out, err);
    free(data);
    return prefixed(err, s, path);
}

imgsim_status imgsim_image_load_raw(const char *path, int width, int height, const imgsim_prep *p,
                                    imgsim_image *out, imgsim_error *err)
{
    clear_out(out);
    if (!path || !out)
        return error_set(err, IMGSIM_E_ARG, "load_raw: NULL argument");
    if (width < 1 || height < 1 || width > VIPS_MAX_COORD || height > VIPS_MAX_COORD)
        return error_set(err, IMGSIM_E_ARG, "raw size %dx%d is invalid", width, height);
    imgsim_status s;
    imgsim_prep rp;
    if ((s = image_vips_init(err)) != IMGSIM_OK || (s = prep_resolve(p, &rp, err)) != IMGSIM_OK)
        return s;
    if ((s = check_pixels(err, width, height, rp.max_pixels)) != IMGSIM_OK)
        return prefixed(err, s, path);
    uint64_t want = (uint64_t)width * (uint64_t)height * 3;
    uint8_t *data = NULL;
    size_t len = 0;
    if ((s = read_all(path, rp.max_file_bytes, &data, &len, err)) != IMGSIM_OK)
        return prefixed(err, s, path);
    if ((uint64_t)len != want) {
        free(data);
        s = error_set(err, IMGSIM_E_DECODE,
                      "%s: raw RGB file is %zu bytes, expected %dx%dx3 = %llu", path, len,
                      width, height, (unsigned long long)want);
        return s;
    }
    VipsImage *im = vips_image_new_from_memory(data, len, width, height, 3, VIPS_FORMAT_UCHAR);
    if (!im) {
        free(data);
        s = image_vips_fail(err, IMGSIM_E_INTERNAL, "cannot wrap raw pixels");
        return prefixed(err, s, path);
    }
    im->Type = VIPS_INTERPRETATION_sRGB;
    s = prep_run(im, &rp, out, err);
    g_object_unref(im); /* before freeing the memory it wraps */
    free(data);
    return prefixed(err, s, path);
}

/* ------------------------------------------------------------ save / free */

imgsim_status imgsim_image_save(const imgsim_image *img, const char *path, imgsim_error *err)
{
    if (!img || !path || !img->rgb || img->width < 1 || img->height < 1)
        return error_set(err, IMGSIM_E_ARG, "save: empty image or NULL path");
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && slash && dot < slash)
        dot = NULL;
    int png = dot && strcasecmp(dot, ".png") == 0;
    int jpg = dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
    if (!png && !jpg)
        return error_set(err, IMGSIM_E_ARG, "%s: cannot tell the format; use .png, .jpg or .jpeg",
                         path);
    imgsim_status s = image_vips_init(err);
    if (s != IMGSIM_OK)
        return s;
    size_t len = (size_t)img->width * (size_t)img->height * 3;
    VipsImage *im = vips_image_new_from_memory(img->rgb, len, img->width, img->height, 3,
                                               VIPS_FORMAT_UCHAR);
    if (!im)
        return image_vips_fail(err, IMGSIM_E_INTERNAL, "save: cannot wrap pixels");
    im->Type = VIPS_INTERPRETATION_sRGB;
    /* The savers take the name as given (no "name[options]" parsing, unlike write_to_file). */
    int r = png ? vips_pngsave(im, path, NULL) : vips_jpegsave(im, path, "Q", 95, NULL);
    g_object_unref(im);
    if (r) {
        s = image_vips_fail(err, IMGSIM_E_IO, "cannot write");
        return prefixed(err, s, path);
    }
    return IMGSIM_OK;
}

void imgsim_image_free(imgsim_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

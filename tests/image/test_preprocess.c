/*
 * test_preprocess.c — the input recipe: defaults and validation, shorter-side resize +
 * centre crop geometry, squash, no-resize, crops (also after EXIF orientation), exact output
 * sizes for awkward shapes, raw = PNG = file agreement, and JPEG shrink-on-load staying close
 * to a full decode. Inputs are synthetic (libvips) or the shared test pixels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "../testutil.h"

static char scratch_dir[4096];

static const char *scratch(const char *name) { return tu_join(scratch_dir, name); }

static const char *testdata(const char *name) { return tu_shared(tu_join("models/testdata", name)); }

/* A 224x224 raw RGB test picture's bytes. */
static uint8_t *testpixels(const char *name)
{
    size_t n;
    uint8_t *px = tu_read(testdata(name), &n);
    assert_int_equal(n, 224 * 224 * 3);
    return px;
}

/* Synthetic RGB pattern: every pixel distinct enough to catch geometry mistakes. */
static uint8_t *pattern(int w, int h)
{
    uint8_t *d = malloc((size_t)w * h * 3);
    assert_non_null(d);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = d + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)x, q[1] = (uint8_t)y, q[2] = (uint8_t)(x * 7 + y * 3);
        }
    return d;
}

static VipsImage *vimg(const uint8_t *px, int w, int h)
{
    VipsImage *im = vips_image_new_from_memory_copy(px, (size_t)w * h * 3, w, h, 3, VIPS_FORMAT_UCHAR);
    assert_non_null(im);
    im->Type = VIPS_INTERPRETATION_sRGB;
    return im;
}

/* Encode pixels as PNG (or other, by suffix like ".jpg[Q=95]") in memory. */
static void *encode(const uint8_t *px, int w, int h, const char *suffix, size_t *len)
{
    VipsImage *im = vimg(px, w, h);
    void *buf = NULL;
    if (vips_image_write_to_buffer(im, suffix, &buf, len, NULL))
        fail_msg("encode: %s", vips_error_buffer());
    g_object_unref(im);
    return buf;
}

static void load_buf_ok(const void *d, size_t n, const imgsim_prep *p, imgsim_image *out)
{
    imgsim_error err = {0};
    imgsim_status s = imgsim_image_load_buffer(d, n, p, out, &err);
    if (s != IMGSIM_OK)
        fail_msg("load: %s", err.msg);
}

static void load_png_ok(const uint8_t *px, int w, int h, const imgsim_prep *p, imgsim_image *out)
{
    size_t n;
    void *b = encode(px, w, h, ".png", &n);
    load_buf_ok(b, n, p, out);
    g_free(b);
}

static imgsim_prep prep(imgsim_resize_mode mode, int size)
{
    imgsim_prep p;
    imgsim_prep_default(&p);
    p.mode = mode;
    p.size = size;
    return p;
}

/* out must equal the w x h window of src (width sw) at (x0, y0). */
static void assert_window(const imgsim_image *out, const uint8_t *src, int sw, int x0, int y0)
{
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++) {
            const uint8_t *a = out->rgb + ((size_t)y * out->width + x) * 3;
            const uint8_t *b = src + ((size_t)(y + y0) * sw + (x + x0)) * 3;
            if (memcmp(a, b, 3))
                fail_msg("pixel (%d,%d) = (%d,%d,%d), source (%d,%d) = (%d,%d,%d)", x, y, a[0],
                         a[1], a[2], x + x0, y + y0, b[0], b[1], b[2]);
        }
}

static int setup_all(void **state)
{
    (void)state;
    imgsim_error err = {0};
    if (image_vips_init(&err) != IMGSIM_OK)
        return -1;
    snprintf(scratch_dir, sizeof scratch_dir, "%s", tu_out_dir("image_preprocess"));
    return 0;
}

/* ------------------------------------------------------------ tests */

static void test_defaults_and_validation(void **state)
{
    (void)state;
    imgsim_prep p, r;
    imgsim_prep_default(&p);
    assert_int_equal(p.size, 224);
    assert_int_equal(p.mode, IMGSIM_RESIZE_SHORTER_CROP);
    assert_int_equal(p.has_crop, 0);
    imgsim_error err = {0};
    assert_int_equal(prep_resolve(&p, &r, &err), IMGSIM_OK);
    assert_int_equal(r.resize_shorter, 256);
    assert_int_equal(r.max_pixels, 100000000ull);
    assert_int_equal(r.max_file_bytes, 256ull << 20);
    assert_int_equal(prep_resolve(NULL, &r, &err), IMGSIM_OK);
    assert_int_equal(r.resize_shorter, 256);
    p.size = 299;
    assert_int_equal(prep_resolve(&p, &r, &err), IMGSIM_OK);
    assert_int_equal(r.resize_shorter, 342); /* round(299 / 0.875) = round(341.7) */

    uint8_t *px = pattern(8, 8);
    imgsim_image im;
    struct { imgsim_prep p; } bad[6];
    for (int i = 0; i < 6; i++)
        imgsim_prep_default(&bad[i].p);
    bad[0].p.size = 0;
    bad[1].p.resize_shorter = 200; /* smaller than the 224 crop */
    bad[2].p.mode = (imgsim_resize_mode)7;
    bad[3].p.has_crop = 1, bad[3].p.crop_x = -1, bad[3].p.crop_w = 2, bad[3].p.crop_h = 2;
    bad[4].p.has_crop = 1, bad[4].p.crop_w = 0, bad[4].p.crop_h = 2;
    bad[5].p.has_crop = 1, bad[5].p.crop_x = 4, bad[5].p.crop_w = 5, bad[5].p.crop_h = 2; /* 4+5 > 8 */
    size_t n;
    void *b = encode(px, 8, 8, ".png", &n);
    for (int i = 0; i < 6; i++) {
        imgsim_status s = imgsim_image_load_buffer(b, n, &bad[i].p, &im, &err);
        if (s != IMGSIM_E_ARG)
            fail_msg("case %d: %s (%s)", i, imgsim_status_name(s), err.msg);
        assert_null(im.rgb);
    }
    assert_non_null(strstr(err.msg, "outside the 8x8 image"));
    g_free(b);
    free(px);
}

/* Shorter side already S: no resampling, so the output is exactly the centre window. */
static void test_centre_crop_exact(void **state)
{
    (void)state;
    struct { int w, h, x0, y0; } c[] = {{512, 256, 144, 16}, {256, 300, 16, 38}, {257, 256, 16, 16}};
    for (int i = 0; i < 3; i++) {
        uint8_t *px = pattern(c[i].w, c[i].h);
        imgsim_image im;
        load_png_ok(px, c[i].w, c[i].h, NULL, &im);
        assert_int_equal(im.width, 224);
        assert_int_equal(im.height, 224);
        assert_window(&im, px, c[i].w, c[i].x0, c[i].y0);
        imgsim_image_free(&im);
        free(px);
    }
}

/* 1000x500 horizontal ramp -> 512x256 -> crop at x=144: the crop edges sample known places. */
static void test_shorter_crop_geometry(void **state)
{
    (void)state;
    int w = 1000, h = 500;
    uint8_t *px = malloc((size_t)w * h * 3);
    assert_non_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = px + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(x * 255 / (w - 1)), q[1] = (uint8_t)(y * 255 / (h - 1)), q[2] = 77;
        }
    imgsim_image im;
    load_png_ok(px, w, h, NULL, &im);
    assert_int_equal(im.width, 224);
    assert_int_equal(im.height, 224);
    /* output x -> resized x + 144 -> source (x + 144 + 0.5) * 1000/512 - 0.5 */
    for (int x = 0; x < 224; x += 37) {
        double sx = (x + 144 + 0.5) * 1000.0 / 512 - 0.5;
        double want = sx * 255 / 999;
        int got = im.rgb[(112 * 224 + x) * 3];
        if (got < want - 2 || got > want + 2)
            fail_msg("x=%d: R=%d, expected %.1f", x, got, want);
    }
    for (int y = 0; y < 224; y += 37) {
        double sy = (y + 16 + 0.5) * 500.0 / 256 - 0.5;
        double want = sy * 255 / 499;
        int got = im.rgb[(y * 224 + 5) * 3 + 1];
        if (got < want - 2 || got > want + 2)
            fail_msg("y=%d: G=%d, expected %.1f", y, got, want);
    }
    assert_int_equal(im.rgb[(100 * 224 + 100) * 3 + 2], 77);
    imgsim_image_free(&im);
    free(px);
}

static void test_squash(void **state)
{
    (void)state;
    int w = 300, h = 100;
    uint8_t *px = malloc((size_t)w * h * 3);
    assert_non_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = px + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(x * 255 / (w - 1)), q[1] = (uint8_t)(y * 255 / (h - 1)), q[2] = 9;
        }
    imgsim_prep p = prep(IMGSIM_RESIZE_SQUASH, 224);
    imgsim_image im;
    load_png_ok(px, w, h, &p, &im);
    assert_int_equal(im.width, 224);
    assert_int_equal(im.height, 224);
    /* the whole source is visible: ramps span (almost) 0..255 on both axes */
    assert_true(im.rgb[(112 * 224 + 0) * 3] < 4);
    assert_true(im.rgb[(112 * 224 + 223) * 3] > 251);
    assert_true(im.rgb[(0 * 224 + 112) * 3 + 1] < 4);
    assert_true(im.rgb[(223 * 224 + 112) * 3 + 1] > 251);
    assert_int_equal(im.rgb[(50 * 224 + 60) * 3 + 2], 9);
    imgsim_image_free(&im);
    free(px);
}

static void test_none_and_crop(void **state)
{
    (void)state;
    int w = 120, h = 90;
    uint8_t *px = pattern(w, h);
    imgsim_image im;
    imgsim_prep p = prep(IMGSIM_RESIZE_NONE, 224);
    load_png_ok(px, w, h, &p, &im);
    assert_int_equal(im.width, w);
    assert_int_equal(im.height, h);
    assert_memory_equal(im.rgb, px, (size_t)w * h * 3);
    imgsim_image_free(&im);

    p.has_crop = 1, p.crop_x = 10, p.crop_y = 20, p.crop_w = 50, p.crop_h = 40;
    load_png_ok(px, w, h, &p, &im);
    assert_int_equal(im.width, 50);
    assert_int_equal(im.height, 40);
    assert_window(&im, px, w, 10, 20);
    imgsim_image_free(&im);

    /* crop to the last pixel is fine, one further is not */
    p.crop_x = 0, p.crop_y = 0, p.crop_w = w, p.crop_h = h;
    load_png_ok(px, w, h, &p, &im);
    imgsim_image_free(&im);
    p.crop_h = h + 1;
    size_t n;
    void *b = encode(px, w, h, ".png", &n);
    imgsim_error err = {0};
    assert_int_equal(imgsim_image_load_buffer(b, n, &p, &im, &err), IMGSIM_E_ARG);
    g_free(b);

    /* crop, then the recipe: a 64x64 window squashed to 32 */
    imgsim_prep q = prep(IMGSIM_RESIZE_SQUASH, 32);
    q.has_crop = 1, q.crop_x = 30, q.crop_y = 10, q.crop_w = 64, q.crop_h = 64;
    load_png_ok(px, w, h, &q, &im);
    assert_int_equal(im.width, 32);
    assert_int_equal(im.height, 32);
    imgsim_image_free(&im);
    free(px);
}

/* Crop coordinates refer to the oriented image (lossless TIFF carrying orientation 6). */
static void test_crop_after_orientation(void **state)
{
    (void)state;
    int w = 40, h = 20;
    uint8_t *px = pattern(w, h);
    VipsImage *v = vimg(px, w, h);
    vips_image_set_int(v, VIPS_META_ORIENTATION, 6);
    if (vips_image_write_to_file(v, scratch("o6.tif"), NULL))
        fail_msg("%s", vips_error_buffer());
    g_object_unref(v);
    /* rotate 90 clockwise by hand: oriented (x, y) = stored (y, h - 1 - x) */
    int ow = h, oh = w;
    uint8_t *rot = malloc((size_t)ow * oh * 3);
    assert_non_null(rot);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            memcpy(rot + ((size_t)y * ow + x) * 3, px + ((size_t)(h - 1 - x) * w + y) * 3, 3);
    imgsim_prep p = prep(IMGSIM_RESIZE_NONE, 224);
    imgsim_image im;
    imgsim_error err = {0};
    assert_int_equal(imgsim_image_load_file(scratch("o6.tif"), &p, &im, &err), IMGSIM_OK);
    assert_int_equal(im.width, ow);
    assert_int_equal(im.height, oh);
    assert_memory_equal(im.rgb, rot, (size_t)ow * oh * 3);
    imgsim_image_free(&im);
    p.has_crop = 1, p.crop_x = 3, p.crop_y = 25, p.crop_w = 10, p.crop_h = 12;
    assert_int_equal(imgsim_image_load_file(scratch("o6.tif"), &p, &im, &err), IMGSIM_OK);
    assert_int_equal(im.width, 10);
    assert_int_equal(im.height, 12);
    assert_window(&im, rot, ow, 3, 25);
    imgsim_image_free(&im);
    /* y + h = 37 is inside 40 rows once oriented, but would be outside the stored 20 */
    p.crop_x = 0, p.crop_y = 0, p.crop_w = 40, p.crop_h = 20; /* stored shape: outside now */
    assert_int_equal(imgsim_image_load_file(scratch("o6.tif"), &p, &im, &err), IMGSIM_E_ARG);
    assert_non_null(strstr(err.msg, "20x40"));
    free(rot);
    free(px);
}

/* Output is exactly size x size for awkward shapes, both recipes. */
static void test_exact_output_sizes(void **state)
{
    (void)state;
    int dims[][2] = {{1, 1}, {1, 300}, {300, 1}, {7, 3}, {225, 224}, {223, 225}, {333, 777},
                     {1001, 999}, {257, 255}, {384, 256}, {513, 97}};
    int sizes[] = {224, 299, 1, 32};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        int w = dims[i][0], h = dims[i][1];
        uint8_t *px = pattern(w, h);
        size_t n;
        void *b = encode(px, w, h, ".png", &n);
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
            for (int m = 0; m < 2; m++) {
                imgsim_prep p = prep(m ? IMGSIM_RESIZE_SQUASH : IMGSIM_RESIZE_SHORTER_CROP, sizes[k]);
                imgsim_image im;
                load_buf_ok(b, n, &p, &im);
                if (im.width != sizes[k] || im.height != sizes[k])
                    fail_msg("%dx%d mode %d size %d -> %dx%d", w, h, m, sizes[k], im.width, im.height);
                imgsim_image_free(&im);
            }
        g_free(b);
        free(px);
    }
}

/* The same pixels as raw bytes, PNG buffer and PNG file give identical network inputs. */
static void test_raw_png_file_agree(void **state)
{
    (void)state;
    const char *names[] = {"bird.rgb", "sunflower.rgb"};
    imgsim_prep p1, p2 = prep(IMGSIM_RESIZE_SQUASH, 160), p3 = prep(IMGSIM_RESIZE_SHORTER_CROP, 192);
    imgsim_prep_default(&p1);
    p3.has_crop = 1, p3.crop_x = 20, p3.crop_y = 0, p3.crop_w = 200, p3.crop_h = 150;
    const imgsim_prep *ps[] = {&p1, &p2, &p3, NULL};
    for (int i = 0; i < 2; i++) {
        uint8_t *px = testpixels(names[i]);
        size_t n;
        void *b = encode(px, 224, 224, ".png", &n);
        tu_write(scratch("same.png"), b, n);
        for (int k = 0; k < 4; k++) {
            imgsim_image a, c, d;
            imgsim_error err = {0};
            assert_int_equal(imgsim_image_load_raw(testdata(names[i]), 224, 224, ps[k], &a, &err), IMGSIM_OK);
            load_buf_ok(b, n, ps[k], &c);
            assert_int_equal(imgsim_image_load_file(scratch("same.png"), ps[k], &d, &err), IMGSIM_OK);
            assert_int_equal(a.width, c.width);
            assert_int_equal(a.width, d.width);
            assert_memory_equal(a.rgb, c.rgb, (size_t)a.width * a.height * 3);
            assert_memory_equal(a.rgb, d.rgb, (size_t)a.width * a.height * 3);
            imgsim_image_free(&a);
            imgsim_image_free(&c);
            imgsim_image_free(&d);
        }
        g_free(b);
        free(px);
    }
}

static void test_jpeg_shrink_on_load(void **state)
{
    (void)state;
    imgsim_prep p, r;
    imgsim_error err = {0};
    imgsim_prep_default(&p);
    assert_int_equal(prep_resolve(&p, &r, &err), IMGSIM_OK);
    assert_int_equal(prep_jpeg_shrink(&r, 4000, 3000), 4); /* 750 >= 512 > 375 */
    assert_int_equal(prep_jpeg_shrink(&r, 8000, 6000), 8);
    assert_int_equal(prep_jpeg_shrink(&r, 384, 256), 1);
    assert_int_equal(prep_jpeg_shrink(&r, 1100, 1023), 1);
    assert_int_equal(prep_jpeg_shrink(&r, 1100, 1024), 2);
    r.mode = IMGSIM_RESIZE_SQUASH; /* needs 2 * 224 on the shorter side */
    assert_int_equal(prep_jpeg_shrink(&r, 4000, 3000), 4);
    assert_int_equal(prep_jpeg_shrink(&r, 1000, 900), 2);
    r.mode = IMGSIM_RESIZE_NONE;
    assert_int_equal(prep_jpeg_shrink(&r, 8000, 6000), 1);
    r.mode = IMGSIM_RESIZE_SHORTER_CROP, r.has_crop = 1;
    assert_int_equal(prep_jpeg_shrink(&r, 8000, 6000), 1);

    /* A 2240x1680 photo-like JPEG (the bird, enlarged): shrink-on-load (factor 2) stays close
     * to a full decode (forced by a whole-image crop, which disables shrinking). */
    uint8_t *px = testpixels("bird.rgb");
    VipsImage *v = vimg(px, 224, 224), *big = NULL;
    assert_int_equal(vips_resize(v, &big, 10, "vscale", 7.5, NULL), 0);
    void *buf = NULL;
    size_t n = 0;
    if (vips_jpegsave_buffer(big, &buf, &n, "Q", 95, NULL))
        fail_msg("%s", vips_error_buffer());
    g_object_unref(big);
    g_object_unref(v);
    imgsim_image fast, full;
    imgsim_prep_default(&p);
    load_buf_ok(buf, n, &p, &fast);
    p.has_crop = 1, p.crop_x = 0, p.crop_y = 0, p.crop_w = 2240, p.crop_h = 1680;
    load_buf_ok(buf, n, &p, &full);
    double d = tu_mean_abs_diff(&fast, &full);
    if (d > 1.5)
        fail_msg("shrink-on-load differs from full decode by %.2f on average", d);
    imgsim_image_free(&fast);
    imgsim_image_free(&full);
    g_free(buf);
    free(px);
}

/* Small sources are enlarged: a 60x80 catalogue image becomes 224x224 with content. */
static void test_upscale_small(void **state)
{
    (void)state;
    uint8_t *px = pattern(60, 80);
    imgsim_image im;
    load_png_ok(px, 60, 80, NULL, &im);
    assert_int_equal(im.width, 224);
    assert_int_equal(im.height, 224);
    int lo = 255, hi = 0;
    for (int i = 0; i < 224 * 224 * 3; i += 3) {
        lo = im.rgb[i] < lo ? im.rgb[i] : lo;
        hi = im.rgb[i] > hi ? im.rgb[i] : hi;
    }
    assert_true(lo < 5 && hi > 54); /* R = x spans 0..59 */
    imgsim_image_free(&im);
    free(px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_validation),
        cmocka_unit_test(test_centre_crop_exact),
        cmocka_unit_test(test_shorter_crop_geometry),
        cmocka_unit_test(test_squash),
        cmocka_unit_test(test_none_and_crop),
        cmocka_unit_test(test_crop_after_orientation),
        cmocka_unit_test(test_exact_output_sizes),
        cmocka_unit_test(test_raw_png_file_agree),
        cmocka_unit_test(test_jpeg_shrink_on_load),
        cmocka_unit_test(test_upscale_small),
    };
    return cmocka_run_group_tests(tests, setup_all, NULL);
}

/*
 * test_decode.c — image decoding: formats, colour conversion (grey, 16-bit, alpha, CMYK, LAB),
 * EXIF orientation, size limits refused before decoding, corrupt input, file vs buffer vs raw
 * agreement, saving, and concurrent loads. Inputs are generated here with libvips or cut
 * from the shared data ($IMGSIM_SHARED); scratch files go to $IMGSIM_TEST_OUT/image_decode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pthread.h>

#include "image/image.h"
#include "../testutil.h"

/* ------------------------------------------------------------ helpers */

static char scratch_dir[4096];

static const char *scratch(const char *name) { return tu_join(scratch_dir, name); }

/* bird.rgb: 224x224x3 raw bytes. */
static uint8_t *bird(void)
{
    size_t n;
    uint8_t *d = tu_read(tu_shared("models/testdata/bird.rgb"), &n);
    assert_int_equal(n, 224 * 224 * 3);
    return d;
}

static const char *bird_raw_path(void) { return tu_shared("models/testdata/bird.rgb"); }

/* Wrap packed pixels as a libvips image (copied). */
static VipsImage *vimg(const void *px, int w, int h, int bands, VipsBandFormat fmt,
                       VipsInterpretation interp)
{
    size_t bpp = vips_format_sizeof(fmt);
    VipsImage *im = vips_image_new_from_memory_copy(px, (size_t)w * h * bands * bpp, w, h, bands, fmt);
    assert_non_null(im);
    im->Type = interp;
    return im;
}

static void vsave(VipsImage *im, const char *path)
{
    int r = vips_image_write_to_file(im, path, NULL);
    if (r)
        fail_msg("save %s: %s", path, vips_error_buffer());
    g_object_unref(im);
}

/* One member of a shared tarball (see tu_extract); fails the test when unavailable. */
static const char *from_tar(const char *tarball, const char *member)
{
    const char *p = tu_extract(tarball, member);
    if (!p)
        fail_msg("cannot extract %s from %s", member, tarball);
    return p;
}

static imgsim_prep prep_none(void)
{
    imgsim_prep p;
    imgsim_prep_default(&p);
    p.mode = IMGSIM_RESIZE_NONE;
    return p;
}

static const uint8_t *px(const imgsim_image *im, int x, int y)
{
    return im->rgb + ((size_t)y * im->width + x) * 3;
}

static void assert_rgb_near(const uint8_t *p, int r, int g, int b, int tol)
{
    if (abs(p[0] - r) > tol || abs(p[1] - g) > tol || abs(p[2] - b) > tol)
        fail_msg("pixel (%d,%d,%d), expected (%d,%d,%d) +- %d", p[0], p[1], p[2], r, g, b, tol);
}

static void load_ok(const char *path, const imgsim_prep *p, imgsim_image *out)
{
    imgsim_error err = {0};
    imgsim_status s = imgsim_image_load_file(path, p, out, &err);
    if (s != IMGSIM_OK)
        fail_msg("load %s: %s", path, err.msg);
}

static void bird_png(const char *path)
{
    uint8_t *b = bird();
    vsave(vimg(b, 224, 224, 3, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_sRGB), path);
    free(b);
}

static int setup_all(void **state)
{
    (void)state;
    imgsim_error err = {0};
    if (image_vips_init(&err) != IMGSIM_OK) {
        fprintf(stderr, "vips init: %s\n", err.msg);
        return -1;
    }
    snprintf(scratch_dir, sizeof scratch_dir, "%s", tu_out_dir("image_decode"));
    bird_png(scratch("bird.png"));
    return 0;
}

/* ------------------------------------------------------------ tests */

/* A 224x224 PNG of the raw bytes comes back byte-identical when nothing is resized. */
static void test_png_no_resize_is_exact(void **state)
{
    (void)state;
    uint8_t *b = bird();
    imgsim_prep p;
    imgsim_image im;
    imgsim_resize_mode modes[] = {IMGSIM_RESIZE_NONE, IMGSIM_RESIZE_SQUASH, IMGSIM_RESIZE_SHORTER_CROP};
    for (int i = 0; i < 3; i++) {
        imgsim_prep_default(&p);
        p.mode = modes[i];
        p.resize_shorter = 224;
        load_ok(scratch("bird.png"), &p, &im);
        assert_int_equal(im.width, 224);
        assert_int_equal(im.height, 224);
        assert_memory_equal(im.rgb, b, 224 * 224 * 3);
        imgsim_image_free(&im);
        assert_null(im.rgb);

        imgsim_error err = {0};
        assert_int_equal(imgsim_image_load_raw(bird_raw_path(), 224, 224, &p, &im, &err), IMGSIM_OK);
        assert_memory_equal(im.rgb, b, 224 * 224 * 3);
        imgsim_image_free(&im);
    }
    free(b);
}

/* The buffer path gives the same bytes as the file path (PNG and a real JPEG). */
static void test_buffer_matches_file(void **state)
{
    (void)state;
    const char *files[] = {scratch("bird.png"), from_tar("wang1k.tar.gz", "wang1k/images/0.jpg")};
    imgsim_prep defaults;
    imgsim_prep_default(&defaults);
    imgsim_prep none = prep_none();
    const imgsim_prep *preps[] = {&defaults, &none, NULL};
    for (int f = 0; f < 2; f++) {
        size_t n;
        uint8_t *d = tu_read(files[f], &n);
        for (int k = 0; k < 3; k++) {
            imgsim_image a, b;
            imgsim_error err = {0};
            load_ok(files[f], preps[k], &a);
            assert_int_equal(imgsim_image_load_buffer(d, n, preps[k], &b, &err), IMGSIM_OK);
            assert_int_equal(a.width, b.width);
            assert_int_equal(a.height, b.height);
            assert_memory_equal(a.rgb, b.rgb, (size_t)a.width * a.height * 3);
            imgsim_image_free(&a);
            imgsim_image_free(&b);
        }
        free(d);
    }
}

/* Real data: Wang (384x256) and Myntra (60x80) JPEGs decode at their size and preprocess to 224. */
static void test_real_jpegs(void **state)
{
    (void)state;
    struct { const char *tar, *member; int w, h; } cases[] = {
        {"wang1k.tar.gz", "wang1k/images/0.jpg", 256, 384},
        {"myntra.tar.gz", "myntra/images/10000.jpg", 60, 80},
    };
    for (int i = 0; i < 2; i++) {
        const char *path = from_tar(cases[i].tar, cases[i].member);
        imgsim_image im;
        imgsim_prep p = prep_none();
        load_ok(path, &p, &im);
        assert_int_equal(im.width, cases[i].w);
        assert_int_equal(im.height, cases[i].h);
        imgsim_image_free(&im);
        load_ok(path, NULL, &im);
        assert_int_equal(im.width, 224);
        assert_int_equal(im.height, 224);
        imgsim_image_free(&im);
    }
}

static void expect_fail(const char *path, const imgsim_prep *p, imgsim_status want, const char *needle)
{
    imgsim_image im = {.width = 7, .rgb = (uint8_t *)"x"};
    imgsim_error err = {0};
    imgsim_status s = imgsim_image_load_file(path, p, &im, &err);
    if (s != want)
        fail_msg("%s: status %s (%s), expected %s", path, imgsim_status_name(s), err.msg,
                 imgsim_status_name(want));
    assert_int_equal(err.code, want);
    assert_null(im.rgb);
    assert_int_equal(im.width, 0);
    assert_null(strchr(err.msg, '\n'));
    if (needle && !strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void test_corrupt_inputs(void **state)
{
    (void)state;
    /* zero bytes */
    tu_write(scratch("empty.jpg"), "", 0);
    expect_fail(scratch("empty.jpg"), NULL, IMGSIM_E_DECODE, "empty");
    /* text named .jpg */
    const char *txt = "this is not an image, just text\n";
    tu_write(scratch("text.jpg"), txt, strlen(txt));
    expect_fail(scratch("text.jpg"), NULL, IMGSIM_E_DECODE, "not a recognised image format");
    /* truncated JPEG: a real file cut in half */
    size_t n;
    uint8_t *d = tu_read(from_tar("wang1k.tar.gz", "wang1k/images/0.jpg"), &n);
    tu_write(scratch("trunc.jpg"), d, n / 2);
    expect_fail(scratch("trunc.jpg"), NULL, IMGSIM_E_DECODE, "cannot decode");
    imgsim_prep none = prep_none();
    expect_fail(scratch("trunc.jpg"), &none, IMGSIM_E_DECODE, NULL);
    /* header only */
    tu_write(scratch("head.jpg"), d, 200);
    expect_fail(scratch("head.jpg"), NULL, IMGSIM_E_DECODE, NULL);
    /* garbage after a valid JPEG signature */
    memset(d + 20, 0x5a, n - 20);
    tu_write(scratch("garbage.jpg"), d, n);
    expect_fail(scratch("garbage.jpg"), NULL, IMGSIM_E_DECODE, NULL);
    /* truncated PNG */
    free(d);
    d = tu_read(scratch("bird.png"), &n);
    tu_write(scratch("trunc.png"), d, n / 2);
    expect_fail(scratch("trunc.png"), NULL, IMGSIM_E_DECODE, NULL);
    free(d);
    /* missing file and directory */
    expect_fail(scratch("does-not-exist.png"), NULL, IMGSIM_E_IO, "does-not-exist.png");
    expect_fail(scratch_dir, NULL, IMGSIM_E_IO, "directory");
    /* a format libvips knows but imgsim refuses */
    const char *svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"></svg>";
    tu_write(scratch("x.svg"), svg, strlen(svg));
    expect_fail(scratch("x.svg"), NULL, IMGSIM_E_UNSUPPORTED, "not supported");
    /* empty buffer */
    imgsim_image im;
    imgsim_error err = {0};
    assert_int_equal(imgsim_image_load_buffer("", 0, NULL, &im, &err), IMGSIM_E_DECODE);
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = (uint8_t)v;
}

/* A valid PNG signature + IHDR claiming w x h, a tiny IDAT and IEND: no pixels to speak of. */
static size_t fake_png(uint8_t *buf, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t idat[] = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    size_t n = 0;
    memcpy(buf, sig, 8), n = 8;
    put32(buf + n, 13), memcpy(buf + n + 4, "IHDR", 4);
    put32(buf + n + 8, w), put32(buf + n + 12, h);
    buf[n + 16] = 8, buf[n + 17] = 2, buf[n + 18] = 0, buf[n + 19] = 0, buf[n + 20] = 0;
    put32(buf + n + 21, crc32_png(buf + n + 4, 17)), n += 25;
    put32(buf + n, sizeof idat), memcpy(buf + n + 4, "IDAT", 4), memcpy(buf + n + 8, idat, sizeof idat);
    put32(buf + n + 8 + sizeof idat, crc32_png(buf + n + 4, 4 + sizeof idat)), n += 12 + sizeof idat;
    put32(buf + n, 0), memcpy(buf + n + 4, "IEND", 4), put32(buf + n + 8, crc32_png(buf + n + 4, 4));
    return n + 12;
}

static void test_limits_refused_before_decoding(void **state)
{
    (void)state;
    uint8_t png[128];
    size_t n = fake_png(png, 30000, 30000);
    tu_write(scratch("huge.png"), png, n);
    expect_fail(scratch("huge.png"), NULL, IMGSIM_E_TOO_BIG, "30000x30000 = 900.0 Mpx, over the 100 Mpx limit");
    imgsim_image im;
    imgsim_error err = {0};
    assert_int_equal(imgsim_image_load_buffer(png, n, NULL, &im, &err), IMGSIM_E_TOO_BIG);
    assert_non_null(strstr(err.msg, "900.0 Mpx"));

    /* 10000x10000 = exactly 100 Mpx is allowed through the limit check (then fails to decode
     * because the fake file has no pixels) */
    n = fake_png(png, 10000, 10000);
    assert_int_equal(imgsim_image_load_buffer(png, n, NULL, &im, &err), IMGSIM_E_DECODE);
    n = fake_png(png, 10000, 10001);
    assert_int_equal(imgsim_image_load_buffer(png, n, NULL, &im, &err), IMGSIM_E_TOO_BIG);

    /* configured pixel limit on a real image */
    imgsim_prep p;
    imgsim_prep_default(&p);
    p.max_pixels = 224 * 224 - 1;
    expect_fail(scratch("bird.png"), &p, IMGSIM_E_TOO_BIG, "224x224");
    p.max_pixels = 224 * 224;
    load_ok(scratch("bird.png"), &p, &im);
    imgsim_image_free(&im);
    imgsim_error e2 = {0};
    p.max_pixels = 1000;
    assert_int_equal(imgsim_image_load_raw(bird_raw_path(), 224, 224, &p, &im, &e2), IMGSIM_E_TOO_BIG);

    /* byte limit: file (stat) and buffer (len) */
    size_t len;
    uint8_t *d = tu_read(scratch("bird.png"), &len);
    imgsim_prep_default(&p);
    p.max_file_bytes = len - 1;
    expect_fail(scratch("bird.png"), &p, IMGSIM_E_TOO_BIG, "limit");
    assert_int_equal(imgsim_image_load_buffer(d, len, &p, &im, &err), IMGSIM_E_TOO_BIG);
    assert_int_equal(imgsim_image_load_raw(bird_raw_path(), 224, 224, &p, &im, &err), IMGSIM_E_TOO_BIG);
    p.max_file_bytes = len;
    assert_int_equal(imgsim_image_load_buffer(d, len, &p, &im, &err), IMGSIM_OK);
    imgsim_image_free(&im);
    free(d);
}

/* Left half red, right half blue, tagged orientation 6 (rotate 90 clockwise to display). */
static void test_exif_orientation(void **state)
{
    (void)state;
    int w = 40, h = 20;
    uint8_t *d = malloc((size_t)w * h * 3);
    assert_non_null(d);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = d + ((size_t)y * w + x) * 3;
            q[0] = x < w / 2 ? 255 : 0, q[1] = 0, q[2] = x < w / 2 ? 0 : 255;
        }
    const char *names[] = {"orient6.jpg", "orient6.tif", "orient6.webp"};
    for (int i = 0; i < 3; i++) {
        VipsImage *v = vimg(d, w, h, 3, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_sRGB);
        vips_image_set_int(v, VIPS_META_ORIENTATION, 6);
        vsave(v, scratch(names[i]));
        imgsim_image im;
        imgsim_prep p = prep_none();
        load_ok(scratch(names[i]), &p, &im);
        assert_int_equal(im.width, 20);
        assert_int_equal(im.height, 40);
        /* stored left column is the displayed top row */
        assert_rgb_near(px(&im, 10, 5), 255, 0, 0, 40);
        assert_rgb_near(px(&im, 10, 34), 0, 0, 255, 40);
        imgsim_image_free(&im);
        /* and through the buffer path with the default recipe */
        size_t n;
        uint8_t *b = tu_read(scratch(names[i]), &n);
        imgsim_error err = {0};
        assert_int_equal(imgsim_image_load_buffer(b, n, NULL, &im, &err), IMGSIM_OK);
        assert_int_equal(im.width, 224);
        assert_rgb_near(px(&im, 112, 40), 255, 0, 0, 40);
        assert_rgb_near(px(&im, 112, 180), 0, 0, 255, 40);
        imgsim_image_free(&im);
        free(b);
    }
    free(d);
}

static void test_grey_and_16bit(void **state)
{
    (void)state;
    imgsim_image im;
    imgsim_prep p = prep_none();
    /* 8-bit grey */
    uint8_t g[4 * 2] = {0, 100, 200, 255, 10, 20, 30, 40};
    vsave(vimg(g, 4, 2, 1, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_B_W), scratch("grey.png"));
    load_ok(scratch("grey.png"), &p, &im);
    assert_int_equal(im.width, 4);
    for (int i = 0; i < 8; i++)
        assert_rgb_near(px(&im, i % 4, i / 4), g[i], g[i], g[i], 0);
    imgsim_image_free(&im);
    /* 16-bit RGB */
    uint16_t c[2 * 3] = {65535, 0, 32896, 256 * 10, 256 * 20, 256 * 30};
    vsave(vimg(c, 2, 1, 3, VIPS_FORMAT_USHORT, VIPS_INTERPRETATION_RGB16), scratch("rgb16.png"));
    load_ok(scratch("rgb16.png"), &p, &im);
    assert_rgb_near(px(&im, 0, 0), 255, 0, 128, 1);
    assert_rgb_near(px(&im, 1, 0), 10, 20, 30, 1);
    imgsim_image_free(&im);
    /* 16-bit grey */
    uint16_t g16[2] = {0, 65535};
    vsave(vimg(g16, 2, 1, 1, VIPS_FORMAT_USHORT, VIPS_INTERPRETATION_GREY16), scratch("grey16.png"));
    load_ok(scratch("grey16.png"), &p, &im);
    assert_rgb_near(px(&im, 0, 0), 0, 0, 0, 0);
    assert_rgb_near(px(&im, 1, 0), 255, 255, 255, 0);
    imgsim_image_free(&im);
}

static void test_alpha_flattened_on_white(void **state)
{
    (void)state;
    imgsim_image im;
    imgsim_prep p = prep_none();
    /* RGBA: transparent, opaque, half */
    uint8_t a[3 * 4] = {10, 20, 30, 0, 10, 20, 30, 255, 0, 0, 0, 128};
    vsave(vimg(a, 3, 1, 4, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_sRGB), scratch("rgba.png"));
    load_ok(scratch("rgba.png"), &p, &im);
    assert_int_equal(im.width, 3);
    assert_rgb_near(px(&im, 0, 0), 255, 255, 255, 0);
    assert_rgb_near(px(&im, 1, 0), 10, 20, 30, 0);
    assert_rgb_near(px(&im, 2, 0), 127, 127, 127, 1);
    imgsim_image_free(&im);
    /* grey + alpha */
    uint8_t ga[2 * 2] = {0, 0, 50, 255};
    vsave(vimg(ga, 2, 1, 2, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_B_W), scratch("ga.png"));
    load_ok(scratch("ga.png"), &p, &im);
    assert_rgb_near(px(&im, 0, 0), 255, 255, 255, 0);
    assert_rgb_near(px(&im, 1, 0), 50, 50, 50, 0);
    imgsim_image_free(&im);
    /* 16-bit RGBA */
    uint16_t a16[2 * 4] = {0, 0, 0, 0, 65535, 0, 0, 65535};
    vsave(vimg(a16, 2, 1, 4, VIPS_FORMAT_USHORT, VIPS_INTERPRETATION_RGB16), scratch("rgba16.png"));
    load_ok(scratch("rgba16.png"), &p, &im);
    assert_rgb_near(px(&im, 0, 0), 255, 255, 255, 0);
    assert_rgb_near(px(&im, 1, 0), 255, 0, 0, 0);
    imgsim_image_free(&im);
    /* WebP with alpha */
    vsave(vimg(a, 3, 1, 4, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_sRGB), scratch("rgba.webp"));
    load_ok(scratch("rgba.webp"), &p, &im);
    assert_rgb_near(px(&im, 0, 0), 255, 255, 255, 0);
    imgsim_image_free(&im);
}

static void test_cmyk_and_lab(void **state)
{
    (void)state;
    imgsim_image im;
    imgsim_prep p = prep_none();
    /* 16x8 CMYK JPEG: left white (no ink), right magenta+yellow (red) */
    uint8_t c[16 * 8 * 4];
    for (int i = 0; i < 16 * 8; i++) {
        uint8_t *q = c + i * 4;
        int right = (i % 16) >= 8;
        q[0] = 0, q[1] = right ? 255 : 0, q[2] = right ? 255 : 0, q[3] = 0;
    }
    vsave(vimg(c, 16, 8, 4, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_CMYK), scratch("cmyk.jpg"));
    load_ok(scratch("cmyk.jpg"), &p, &im);
    assert_int_equal(im.width, 16);
    assert_int_equal(im.height, 8);
    assert_rgb_near(px(&im, 1, 4), 255, 255, 255, 12);
    const uint8_t *r = px(&im, 14, 4);
    if (!(r[0] > 200 && r[1] < 80 && r[2] < 80))
        fail_msg("CMYK red came out (%d,%d,%d)", r[0], r[1], r[2]);
    imgsim_image_free(&im);
    /* CIELAB TIFF: L=100 white, L=0 black, a strongly positive a* is reddish */
    float lab[3 * 3] = {100, 0, 0, 0, 0, 0, 50, 70, 40};
    vsave(vimg(lab, 3, 1, 3, VIPS_FORMAT_FLOAT, VIPS_INTERPRETATION_LAB), scratch("lab.tif"));
    load_ok(scratch("lab.tif"), &p, &im);
    assert_rgb_near(px(&im, 0, 0), 255, 255, 255, 2);
    assert_rgb_near(px(&im, 1, 0), 0, 0, 0, 2);
    r = px(&im, 2, 0);
    if (!(r[0] > 150 && r[1] < 60))
        fail_msg("LAB red came out (%d,%d,%d)", r[0], r[1], r[2]);
    imgsim_image_free(&im);
}

/* Every accepted format decodes to the right size; lossless ones exactly. */
static void test_formats(void **state)
{
    (void)state;
    uint8_t *b = bird();
    struct { const char *name; const char *opts; int lossless; double tol; } f[] = {
        {"bird.tif", "", 1, 0},       {"bird_ll.webp", "[lossless]", 1, 0},
        {"bird.bmp", "", 1, 0},       {"bird.jpg", "[Q=95]", 0, 4},
        {"bird.webp", "[Q=90]", 0, 6}, {"bird.gif", "", 0, 12},
        {"bird.heic", "", 0, 8},      {"bird.avif", "", 0, 8},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        char target[1400];
        snprintf(target, sizeof target, "%s%s", scratch(f[i].name), f[i].opts);
        VipsImage *v = vimg(b, 224, 224, 3, VIPS_FORMAT_UCHAR, VIPS_INTERPRETATION_sRGB);
        if (strstr(f[i].name, ".bmp")) {
            if (vips_magicksave(v, scratch(f[i].name), "format", "bmp", NULL))
                fail_msg("bmp save: %s", vips_error_buffer());
            g_object_unref(v);
        } else {
            vsave(v, target);
        }
        imgsim_image im;
        imgsim_prep p = prep_none();
        load_ok(scratch(f[i].name), &p, &im);
        assert_int_equal(im.width, 224);
        assert_int_equal(im.height, 224);
        imgsim_image ref = {224, 224, b, 0, 0};
        double d = tu_mean_abs_diff(&im, &ref);
        if (f[i].lossless)
            assert_memory_equal(im.rgb, b, 224 * 224 * 3);
        else if (d > f[i].tol)
            fail_msg("%s: mean abs diff %.2f > %.2f", f[i].name, d, f[i].tol);
        imgsim_image_free(&im);
    }
    free(b);
}

static void test_raw_errors(void **state)
{
    (void)state;
    imgsim_image im;
    imgsim_error err = {0};
    assert_int_equal(imgsim_image_load_raw(bird_raw_path(), 224, 223, NULL, &im, &err), IMGSIM_E_DECODE);
    assert_non_null(strstr(err.msg, "150528 bytes"));
    assert_int_equal(imgsim_image_load_raw(bird_raw_path(), 0, 224, NULL, &im, &err), IMGSIM_E_ARG);
    assert_int_equal(imgsim_image_load_raw(scratch("nope.rgb"), 2, 2, NULL, &im, &err), IMGSIM_E_IO);
    assert_null(im.rgb);
}

static void test_save(void **state)
{
    (void)state;
    uint8_t *b = bird();
    imgsim_image src = {224, 224, b, 0, 0}, im;
    imgsim_error err = {0};
    assert_int_equal(imgsim_image_save(&src, scratch("saved.png"), &err), IMGSIM_OK);
    imgsim_prep p = prep_none();
    load_ok(scratch("saved.png"), &p, &im);
    assert_memory_equal(im.rgb, b, 224 * 224 * 3);
    imgsim_image_free(&im);
    assert_int_equal(imgsim_image_save(&src, scratch("saved.JPEG"), &err), IMGSIM_OK);
    load_ok(scratch("saved.JPEG"), &p, &im);
    assert_true(tu_mean_abs_diff(&im, &src) < 4);
    imgsim_image_free(&im);
    assert_int_equal(imgsim_image_save(&src, scratch("saved.bmp"), &err), IMGSIM_E_ARG);
    assert_int_equal(imgsim_image_save(&src, scratch("noext"), &err), IMGSIM_E_ARG);
    assert_int_equal(imgsim_image_save(&src, "/nonexistent-dir/x.png", &err), IMGSIM_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.png"));
    imgsim_image empty = {0};
    assert_int_equal(imgsim_image_save(&empty, scratch("e.png"), &err), IMGSIM_E_ARG);
    imgsim_image_free(NULL);
    free(b);
}

struct job {
    const char *path;
    imgsim_image out;
    imgsim_status s;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    imgsim_error err;
    for (int k = 0; k < 5; k++) {
        imgsim_image_free(&j->out);
        j->s = imgsim_image_load_file(j->path, NULL, &j->out, &err);
        if (j->s != IMGSIM_OK)
            break;
    }
    return NULL;
}

static void test_concurrent_loads(void **state)
{
    (void)state;
    const char *jpg = from_tar("wang1k.tar.gz", "wang1k/images/0.jpg");
    struct job jobs[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        jobs[i] = (struct job){.path = i % 2 ? jpg : scratch("bird.png")};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(jobs[i].s, IMGSIM_OK);
        assert_memory_equal(jobs[i].out.rgb, jobs[i % 2].out.rgb, 224 * 224 * 3);
    }
    for (int i = 0; i < 6; i++)
        imgsim_image_free(&jobs[i].out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_no_resize_is_exact),
        cmocka_unit_test(test_buffer_matches_file),
        cmocka_unit_test(test_real_jpegs),
        cmocka_unit_test(test_corrupt_inputs),
        cmocka_unit_test(test_limits_refused_before_decoding),
        cmocka_unit_test(test_exif_orientation),
        cmocka_unit_test(test_grey_and_16bit),
        cmocka_unit_test(test_alpha_flattened_on_white),
        cmocka_unit_test(test_cmyk_and_lab),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_raw_errors),
        cmocka_unit_test(test_save),
        cmocka_unit_test(test_concurrent_loads),
    };
    return cmocka_run_group_tests(tests, setup_all, NULL);
}

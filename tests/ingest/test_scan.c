/*
 * test_scan.c — finding images (src/ingest/scan.c): magic-byte sniffing (image/sniff.c) on
 * synthetic headers and on files written by libvips, the image-extension list, and the directory
 * walk on a scratch tree (nested directories, an upper-case .JPG, an extension-less JPEG,
 * a .txt, hidden entries, symbolic links to files and directories, a link loop, a dangling
 * link, an unreadable directory), checking the exact list yielded and its order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "image/image.h"
#include "image/sniff.h"
#include "ingest/scan.h"
#include "../testutil.h"

/* ------------------------------------------------------------ sniffing */

static const char *sniff(const char *bytes, size_t len)
{
    return image_sniff((const uint8_t *)bytes, len);
}

#define SNIFF(lit) sniff(lit, sizeof lit - 1)

static void test_sniff_synthetic(void **state)
{
    (void)state;
    assert_string_equal(SNIFF("\xFF\xD8\xFF\xE0\0\x10JFIF"), "jpeg");
    assert_string_equal(SNIFF("\xFF\xD8\xFF"), "jpeg");
    assert_string_equal(SNIFF("\x89PNG\r\n\x1A\n\0\0\0\rIHDR"), "png");
    assert_string_equal(SNIFF("GIF87a\x10\0"), "gif");
    assert_string_equal(SNIFF("GIF89a\x10\0"), "gif");
    assert_string_equal(SNIFF("RIFF\x24\0\0\0WEBPVP8 "), "webp");
    assert_string_equal(SNIFF("II*\0\x08\0\0\0"), "tiff");
    assert_string_equal(SNIFF("MM\0*\0\0\0\x08"), "tiff");
    assert_string_equal(SNIFF("II+\0\x08\0\0\0"), "tiff");
    /* BMP: 14-byte file header, 40-byte DIB header, pixels at 54. */
    assert_string_equal(SNIFF("BM\x36\x30\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0"), "bmp");
    assert_string_equal(SNIFF("BM\x36\x30\0\0\0\0\0\0\x8a\0\0\0\x7c\0\0\0"), "bmp");
    /* HEIF / AVIF: ftyp box, major brand, minor version, compatible brands. */
    assert_string_equal(SNIFF("\0\0\0\x18" "ftypheic\0\0\0\0mif1heic"), "heif");
    assert_string_equal(SNIFF("\0\0\0\x18" "ftypmif1\0\0\0\0mif1heic"), "heif");
    assert_string_equal(SNIFF("\0\0\0\x10" "ftypmsf1\0\0\0\0"), "heif");
    assert_string_equal(SNIFF("\0\0\0\x20" "ftypavif\0\0\0\0avifmif1miafMA1B"), "avif");
    assert_string_equal(SNIFF("\0\0\0\x1c" "ftypmif1\0\0\0\0mif1avifmiaf"), "avif");
    assert_string_equal(SNIFF("\0\0\0\x1c" "ftypavis\0\0\0\0avismsf1miaf"), "avif");
    assert_string_equal(SNIFF("\xFF\x0A\xFF\x07"), "jxl");
    assert_string_equal(SNIFF("\0\0\0\x0CJXL \r\n\x87\n\0\0\0\x14" "ftypjxl "), "jxl");
    assert_string_equal(SNIFF("\0\0\0\x0CjP  \r\n\x87\n\0\0\0\x14" "ftypjp2 "), "jp2");
    assert_string_equal(SNIFF("\xFF\x4F\xFF\x51\0\x2F"), "jp2");
    for (char c = '1'; c <= '6'; c++) {
        char h[] = {'P', c, '\n', '4', ' ', '4', '\n'};
        assert_string_equal(sniff(h, sizeof h), "pnm");
    }
    assert_string_equal(SNIFF("P6 4 4 255\n"), "pnm");
    assert_string_equal(SNIFF("P5\r\n# comment\n"), "pnm");
    assert_string_equal(SNIFF("PF\n4 4\n-1.0\n"), "pfm");
    assert_string_equal(SNIFF("\x76\x2F\x31\x01\x02\0\0\0"), "exr");
    assert_string_equal(SNIFF("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n"), "hdr");
    assert_string_equal(SNIFF("8BPS\0\x01\0\0\0\0\0\0"), "psd");
}

static void test_sniff_negative(void **state)
{
    (void)state;
    assert_null(image_sniff(NULL, 10));
    assert_null(SNIFF(""));
    /* Too short to be sure. */
    assert_null(SNIFF("\xFF\xD8"));
    assert_null(SNIFF("\x89PNG"));
    assert_null(SNIFF("GIF8"));
    assert_null(SNIFF("RIFF\x24\0\0\0WEB"));
    assert_null(SNIFF("BM"));
    assert_null(SNIFF("P6"));
    /* Look-alikes. */
    assert_null(SNIFF("hello, world\n"));
    assert_null(SNIFF("id,name\n1,x\n"));
    assert_null(SNIFF("RIFF\x24\0\0\0WAVEfmt "));                       /* audio */
    assert_null(SNIFF("\0\0\0\x18" "ftypisom\0\0\0\0isomiso2"));        /* MP4 video */
    assert_null(SNIFF("\0\0\0\x14" "ftypqt  \0\0\0\0qt  "));            /* QuickTime */
    assert_null(SNIFF("BMW is a car maker and this is text"));          /* "BM" text */
    assert_null(SNIFF("BM\x36\x30\0\0\0\0\0\0\x10\0\0\0\x28\0\0\0"));   /* offset < header */
    assert_null(SNIFF("P7\nWIDTH 4\n"));                                /* PAM */
    assert_null(SNIFF("P3x"));
    assert_null(SNIFF("Pictures of cats"));
    assert_null(SNIFF("PK\x03\x04\x14\0\0\0"));                         /* zip */
    assert_null(SNIFF("%PDF-1.7\n"));
    assert_null(SNIFF("\x7f" "ELF\x02\x01\x01\0"));
}

/* Encode a small image with libvips to `suffix` in memory; NULL if libvips cannot. */
static void *encode(const char *suffix, size_t *len)
{
    uint8_t px[16 * 12 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    VipsImage *im = vips_image_new_from_memory_copy(px, sizeof px, 16, 12, 3, VIPS_FORMAT_UCHAR);
    assert_non_null(im);
    im->Type = VIPS_INTERPRETATION_sRGB;
    void *buf = NULL;
    if (vips_image_write_to_buffer(im, suffix, &buf, len, NULL) != 0) {
        vips_error_clear();
        buf = NULL;
    }
    g_object_unref(im);
    return buf;
}

/* Files written by real encoders sniff as their format. */
static void test_sniff_encoded(void **state)
{
    (void)state;
    imgsim_error err = {0};
    assert_int_equal(image_vips_init(&err), IMGSIM_OK);
    struct { const char *suffix, *want; int required; } f[] = {
        {".jpg", "jpeg", 1}, {".png", "png", 1}, {".gif", "gif", 1}, {".webp", "webp", 1},
        {".tif", "tiff", 1}, {".heic", "heif", 0}, {".avif", "avif", 0}, {".jxl", "jxl", 0},
        {".jp2", "jp2", 0}, {".ppm", "pnm", 0}, {".pfm", "pfm", 0}, {".bmp", "bmp", 0},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        size_t len = 0;
        uint8_t *b = encode(f[i].suffix, &len);
        if (!b) {
            if (f[i].required)
                fail_msg("libvips cannot write %s", f[i].suffix);
            continue;
        }
        const char *got = image_sniff(b, len < 32 ? len : 32);
        if (!got || strcmp(got, f[i].want) != 0)
            fail_msg("%s sniffed as %s, want %s", f[i].suffix, got ? got : "NULL", f[i].want);
        /* And through a file. */
        char name[64];
        snprintf(name, sizeof name, "scan_sniff%s", f[i].suffix);
        tu_write(tu_out(name), b, len);
        got = scan_sniff_file(tu_out(name));
        assert_non_null(got);
        assert_string_equal(got, f[i].want);
        g_free(b);
    }
    /* A real photo, when the data is extracted. */
    if (access(tu_wang(0), R_OK) == 0)
        assert_string_equal(scan_sniff_file(tu_wang(0)), "jpeg");
    /* Not images, or not readable as files. */
    tu_write(tu_out("scan_text.txt"), "just text\n", 10);
    assert_null(scan_sniff_file(tu_out("scan_text.txt")));
    tu_write(tu_out("scan_empty"), "", 0);
    assert_null(scan_sniff_file(tu_out("scan_empty")));
    assert_null(scan_sniff_file(tu_out("scan_no_such_file")));
    assert_null(scan_sniff_file(tu_out("")));
    assert_null(scan_sniff_file(NULL));
}

static void test_image_ext(void **state)
{
    (void)state;
    const char *yes[] = {"a.jpg", "a.JPG", "b.jpeg", "c.Jpe", "d.png", "e.gif", "f.webp",
                         "g.tif", "h.TIFF", "i.bmp", "j.heic", "k.HEIF", "l.avif", "m.jxl",
                         "n.jp2", "o.pgm", "p.ppm", "q.pnm", "r.pbm", "dir/s.jpg",
                         "x.y/t.png", "/abs/path/IMG_0001.JPEG", "archive.tar.jpg"};
    const char *no[] = {"a", "a.txt", "a.jpg.txt", "jpg", ".jpg", "dir/.png", "a.jpg/",
                        "a.", "x.jpgx", "a.svg", "a.pdf", "dir.jpg/file", "", "a.mp4"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!scan_has_image_ext(yes[i]))
            fail_msg("%s should have an image extension", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (scan_has_image_ext(no[i]))
            fail_msg("%s should not have an image extension", no[i]);
    assert_int_equal(scan_has_image_ext(NULL), 0);
}

/* ------------------------------------------------------------ the walk */

/* What a walk saw: "rel size" per image, "!message" per problem, one per line. */
typedef struct seen {
    char text[8192];
    const char *root;     /* to check entry->path */
    int images, problems;
    int stop_after;       /* > 0: stop after this many images */
} seen;

static int record(void *user, const scan_entry *e, const imgsim_error *err)
{
    seen *s = user;
    size_t n = strlen(s->text);
    if (e) {
        assert_null(err);
        char want[4096];
        snprintf(want, sizeof want, "%s/%s", s->root, e->rel);
        assert_string_equal(e->path, want);
        struct stat st;
        assert_int_equal(stat(e->path, &st), 0);
        assert_int_equal(e->size, st.st_size);
        assert_true(e->mtime_ns > 0);
        snprintf(s->text + n, sizeof s->text - n, "%s\n", e->rel);
        s->images++;
        return s->stop_after > 0 && s->images >= s->stop_after;
    }
    assert_non_null(err);
    assert_int_not_equal(err->code, IMGSIM_OK);
    snprintf(s->text + n, sizeof s->text - n, "!%s\n", err->msg);
    s->problems++;
    return 0;
}

static char tree[4096];

static const char *in_tree(const char *rel) { return tu_join(tree, rel); }

static void put_file(const char *rel, const void *data, size_t len)
{
    tu_write(in_tree(rel), data, len);
}

static void make_dir(const char *rel)
{
    assert_int_equal(mkdir(in_tree(rel), 0755), 0);
}

static void make_link(const char *target, const char *rel)
{
    assert_int_equal(symlink(target, in_tree(rel)), 0);
}

/* A fresh scratch tree (see the file comment); returns 1 if "locked" really cannot be read
 * (not the case when running as root). */
static int build_tree(void)
{
    snprintf(tree, sizeof tree, "%s", tu_out("scan_tree"));
    chmod(in_tree("locked"), 0755); /* left over from an interrupted run */
    tu_rmtree(tree);
    assert_int_equal(mkdir(tree, 0755), 0);

    /* JPEG bytes: a real photo if the data is there, else a minimal JFIF header. */
    size_t jlen;
    uint8_t *jpeg;
    if (access(tu_wang(0), R_OK) == 0) {
        jpeg = tu_read(tu_wang(0), &jlen);
    } else {
        static const uint8_t jfif[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0};
        jlen = sizeof jfif;
        jpeg = malloc(jlen);
        assert_non_null(jpeg);
        memcpy(jpeg, jfif, jlen);
    }

    put_file("a.jpg", jpeg, jlen);
    put_file("B.JPG", jpeg, jlen);
    put_file("IMG_0001", jpeg, jlen);          /* no extension, JPEG content */
    put_file("notes.txt", "not an image\n", 13);
    put_file("README", "plain text, no extension\n", 25);
    put_file("fake.png", "text with an image extension\n", 29);
    put_file(".hidden.jpg", jpeg, jlen);
    make_dir(".hiddendir");
    put_file(".hiddendir/x.jpg", jpeg, jlen);
    make_dir("empty");
    make_dir("sub");
    make_dir("sub/deeper");
    imgsim_image img = {0};
    img.width = 4;
    img.height = 3;
    uint8_t px[4 * 3 * 3] = {0};
    img.rgb = px;
    imgsim_error err = {0};
    if (imgsim_image_save(&img, in_tree("sub/c.png"), &err) != IMGSIM_OK)
        fail_msg("save png: %s", err.msg);
    put_file("sub/deeper/d.gif", "GIF89a\x01\0\x01\0\0\0\0;", 14);
    put_file("sub/deeper/photo", jpeg, jlen);  /* no extension, JPEG content */
    make_link("..", "sub/loop");               /* back to the root: a loop */
    make_link("../sub", "sub/deeper/up");      /* to an ancestor */
    make_link("sub", "z_sub_link");            /* a second way into sub: skipped */
    make_link("a.jpg", "pic_link.jpg");        /* to a file: yielded */
    make_link("IMG_0001", "pic_link_noext");   /* to a file, sniffed */
    make_link("nowhere.jpg", "dangling.jpg");  /* dangling: skipped */
    make_link("self_loop.jpg", "self_loop.jpg"); /* ELOOP: skipped like dangling */
    make_dir("locked");
    put_file("locked/e.jpg", jpeg, jlen);
    assert_int_equal(chmod(in_tree("locked"), 0), 0);
    free(jpeg);

    DIR *d = opendir(in_tree("locked"));
    if (d) {
        closedir(d);
        return 0;
    }
    return 1;
}

static int teardown_tree(void **state)
{
    (void)state;
    if (tree[0])
        chmod(in_tree("locked"), 0755);
    return 0;
}

static void test_scan_tree(void **state)
{
    (void)state;
    int locked = build_tree();
    seen s = {.root = tree};
    imgsim_error err = {0};
    assert_int_equal(scan_dir(tree, 1, record, &s, &err), IMGSIM_OK);

    char want[4096];
    snprintf(want, sizeof want,
             "B.JPG\n"
             "IMG_0001\n"
             "a.jpg\n"
             "fake.png\n"
             "%s"
             "pic_link.jpg\n"
             "pic_link_noext\n"
             "sub/c.png\n"
             "sub/deeper/d.gif\n"
             "sub/deeper/photo\n",
             locked ? "" : "locked/e.jpg\n");
    if (locked) {
        /* The problem is reported where the directory comes in the order, then the walk
         * goes on. */
        char *bang = strstr(s.text, "!");
        assert_non_null(bang);
        assert_non_null(strstr(bang, "locked: cannot open directory"));
        assert_non_null(strstr(s.text, "fake.png\n!"));
        /* Drop the problem line to compare the images. */
        char *eol = strchr(bang, '\n');
        memmove(bang, eol + 1, strlen(eol + 1) + 1);
        assert_int_equal(s.problems, 1);
    } else {
        assert_int_equal(s.problems, 0);
    }
    assert_string_equal(s.text, want);

    /* Without sniffing only extensions count. */
    seen s2 = {.root = tree};
    assert_int_equal(scan_dir(tree, 0, record, &s2, &err), IMGSIM_OK);
    snprintf(want, sizeof want, "B.JPG\na.jpg\nfake.png\n%spic_link.jpg\nsub/c.png\n"
             "sub/deeper/d.gif\n", locked ? "" : "locked/e.jpg\n");
    if (locked) {
        char *bang = strstr(s2.text, "!");
        assert_non_null(bang);
        char *eol = strchr(bang, '\n');
        memmove(bang, eol + 1, strlen(eol + 1) + 1);
    }
    assert_string_equal(s2.text, want);

    /* The same walk twice gives the same list (determinism), also with a trailing '/'. */
    char root_slash[4200];
    snprintf(root_slash, sizeof root_slash, "%s//", tree);
    seen s3 = {.root = tree};
    assert_int_equal(scan_dir(root_slash, 0, record, &s3, &err), IMGSIM_OK);
    if (locked) {
        char *bang = strstr(s3.text, "!");
        assert_non_null(bang);
        char *eol = strchr(bang, '\n');
        memmove(bang, eol + 1, strlen(eol + 1) + 1);
    }
    assert_string_equal(s3.text, want);
}

/* Starting inside the tree at a symlinked directory; the callback stopping the walk. */
static void test_scan_stop_and_links(void **state)
{
    (void)state;
    build_tree();
    char root[4200];
    snprintf(root, sizeof root, "%s", in_tree("z_sub_link"));
    seen s = {.root = root};
    imgsim_error err = {0};
    assert_int_equal(scan_dir(root, 1, record, &s, &err), IMGSIM_OK);
    /* loop -> the tree root, which is new from here: visited once, with sub skipped
     * inside it (already being walked). */
    assert_non_null(strstr(s.text, "c.png\ndeeper/d.gif\ndeeper/photo\nloop/B.JPG\n"));
    assert_null(strstr(s.text, "loop/sub/"));
    assert_null(strstr(s.text, "loop/z_sub_link/"));
    assert_null(strstr(s.text, "deeper/up/"));

    seen s2 = {.root = tree, .stop_after = 2};
    assert_int_equal(scan_dir(tree, 1, record, &s2, &err), IMGSIM_OK);
    assert_string_equal(s2.text, "B.JPG\nIMG_0001\n");
    assert_int_equal(s2.images, 2);
}

static void test_scan_errors(void **state)
{
    (void)state;
    seen s = {.root = ""};
    imgsim_error err = {0};
    assert_int_equal(scan_dir(tu_out("scan_no_such_dir"), 1, record, &s, &err),
                     IMGSIM_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "scan_no_such_dir"));
    tu_write(tu_out("scan_a_file.jpg"), "x", 1);
    assert_int_equal(scan_dir(tu_out("scan_a_file.jpg"), 1, record, &s, &err), IMGSIM_E_ARG);
    assert_non_null(strstr(err.msg, "not a directory"));
    assert_int_equal(scan_dir(NULL, 1, record, &s, &err), IMGSIM_E_ARG);
    assert_int_equal(scan_dir(tu_out(""), 1, NULL, &s, &err), IMGSIM_E_ARG);
    assert_int_equal(s.images + s.problems, 0);

    /* An unreadable root is the caller's error, not a callback report. */
    const char *dir = tu_out("scan_locked_root");
    chmod(dir, 0755);
    rmdir(dir);
    assert_int_equal(mkdir(dir, 0), 0);
    DIR *d = opendir(dir);
    if (d) {
        closedir(d); /* root: permissions do not apply */
        assert_int_equal(scan_dir(dir, 1, record, &s, &err), IMGSIM_OK);
    } else {
        assert_int_equal(scan_dir(dir, 1, record, &s, &err), IMGSIM_E_IO);
        assert_non_null(strstr(err.msg, "cannot open directory"));
    }
    assert_int_equal(s.images + s.problems, 0);
    chmod(dir, 0755);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff_synthetic),
        cmocka_unit_test(test_sniff_negative),
        cmocka_unit_test(test_sniff_encoded),
        cmocka_unit_test(test_image_ext),
        cmocka_unit_test_teardown(test_scan_tree, teardown_tree),
        cmocka_unit_test_teardown(test_scan_stop_and_links, teardown_tree),
        cmocka_unit_test(test_scan_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

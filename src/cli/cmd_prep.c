/*
 * cmd_prep.c — `imgsim prep`: decode one image, apply the input recipe and write the exact
 * network input (PNG or JPEG), for inspecting what a model actually sees.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "imgsim.h"

static void prep_usage(FILE *f)
{
    fputs("usage: imgsim prep IMAGE -o OUT.png [options]\n"
          "Write the exact network input for IMAGE (PNG or JPEG, chosen by OUT's extension).\n"
          "  -o, --output OUT        output file (.png, .jpg, .jpeg)\n"
          "  --size N                network input edge (default 224)\n"
          "  --resize MODE           shorter: shorter side to --shorter, centre crop (default)\n"
          "                          squash:  resize to N x N ignoring aspect ratio\n"
          "                          none:    orientation, colour and crop only\n"
          "  --shorter S             shorter side before the centre crop (default round(N/0.875))\n"
          "  --crop X,Y,W,H          crop of the oriented image, before the resize\n"
          "  --raw WxH               IMAGE is raw interleaved RGB bytes of W x H\n"
          "  --max-pixels N          refuse larger sources (default 100000000)\n"
          "  -h, --help              this help\n",
          f);
}

static int bad(const char *fmt, const char *arg)
{
    fputs("imgsim prep: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    prep_usage(stderr);
    return 2;
}

/* Whole-string decimal integer in [lo, hi]. */
static int parse_long(const char *s, long long lo, long long hi, long long *v)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return -1;
    *v = x;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *v)
{
    long long x;
    if (parse_long(s, lo, hi, &x))
        return -1;
    *v = (int)x;
    return 0;
}

/* "a<sep>b<sep>..." into n ints >= 0. */
static int parse_ints(const char *s, char sep, int n, int *v)
{
    char buf[128];
    if (!s || strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    char *p = buf;
    for (int i = 0; i < n; i++) {
        char *q = i + 1 < n ? strchr(p, sep) : p + strlen(p);
        if (!q)
            return -1;
        *q = '\0';
        if (parse_int(p, 0, 1 << 30, &v[i]))
            return -1;
        p = q + 1;
    }
    return 0;
}

int cmd_prep(int argc, char **argv)
{
    const char *in = NULL, *outp = NULL;
    int raw = 0, rw = 0, rh = 0;
    imgsim_prep p;
    imgsim_prep_default(&p);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            prep_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!v)
                return bad("%s needs a file name", a);
            outp = v, i++;
        } else if (!strcmp(a, "--size")) {
            if (parse_int(v, 1, 65535, &p.size))
                return bad("--size needs an integer in 1..65535, got '%s'", v ? v : "");
            i++;
        } else if (!strcmp(a, "--shorter")) {
            if (parse_int(v, 1, 65535, &p.resize_shorter))
                return bad("--shorter needs an integer in 1..65535, got '%s'", v ? v : "");
            i++;
        } else if (!strcmp(a, "--resize")) {
            if (!v)
                return bad("%s needs shorter, squash or none", a);
            if (!strcmp(v, "shorter"))
                p.mode = IMGSIM_RESIZE_SHORTER_CROP;
            else if (!strcmp(v, "squash"))
                p.mode = IMGSIM_RESIZE_SQUASH;
            else if (!strcmp(v, "none"))
                p.mode = IMGSIM_RESIZE_NONE;
            else
                return bad("--resize: unknown mode '%s' (shorter, squash, none)", v);
            i++;
        } else if (!strcmp(a, "--crop")) {
            int c[4];
            if (parse_ints(v, ',', 4, c) || c[2] < 1 || c[3] < 1)
                return bad("--crop needs X,Y,W,H (W, H >= 1), got '%s'", v ? v : "");
            p.has_crop = 1;
            p.crop_x = c[0], p.crop_y = c[1], p.crop_w = c[2], p.crop_h = c[3];
            i++;
        } else if (!strcmp(a, "--raw")) {
            int d[2];
            if (parse_ints(v, 'x', 2, d) || d[0] < 1 || d[1] < 1)
                return bad("--raw needs WxH, got '%s'", v ? v : "");
            raw = 1, rw = d[0], rh = d[1];
            i++;
        } else if (!strcmp(a, "--max-pixels")) {
            long long n;
            if (parse_long(v, 1, INT64_MAX, &n))
                return bad("--max-pixels needs a positive integer, got '%s'", v ? v : "");
            p.max_pixels = (uint64_t)n;
            i++;
        } else if (a[0] == '-' && a[1] != '\0') {
            return bad("unknown option '%s'", a);
        } else if (!in) {
            in = a;
        } else {
            return bad("unexpected argument '%s'", a);
        }
    }
    if (!in)
        return bad("%s", "missing IMAGE");
    if (!outp)
        return bad("%s", "missing -o OUT");
    if (p.mode == IMGSIM_RESIZE_SHORTER_CROP && p.resize_shorter && p.resize_shorter < p.size)
        return bad("--shorter must be at least --size (%s)", "the crop is taken from it");

    imgsim_error err = {0};
    imgsim_image img = {0};
    imgsim_status s = raw ? imgsim_image_load_raw(in, rw, rh, &p, &img, &err)
                          : imgsim_image_load_file(in, &p, &img, &err);
    if (s == IMGSIM_OK)
        s = imgsim_image_save(&img, outp, &err);
    imgsim_image_free(&img);
    if (s != IMGSIM_OK) {
        cli_error("prep", &err);
        return 1;
    }
    return 0;
}

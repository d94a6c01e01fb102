/*
 * testutil.c — helpers shared by the cmocka tests (see testutil.h).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <math.h>

static char ring[8][4096];
static int ring_at;

static const char *join(const char *env, const char *def, const char *rel)
{
    const char *base = getenv(env);
    char *buf = ring[ring_at++ % 8];
    snprintf(buf, sizeof ring[0], "%s/%s", base && *base ? base : def, rel);
    return buf;
}

const char *tu_shared(const char *rel) { return join("IMGSIM_SHARED", "../shared", rel); }
const char *tu_data(const char *rel) { return join("IMGSIM_DATA", "build/data", rel); }

const char *tu_out(const char *rel)
{
    const char *base = getenv("IMGSIM_TEST_OUT");
    if (!base || !*base)
        base = "build/test-out";
    mkdir(base, 0755);
    return join("IMGSIM_TEST_OUT", "build/test-out", rel);
}

uint8_t *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

void tu_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot write %s", path);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

double tu_cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / (sqrt(aa * bb)) : 0;
}

imgsim_model *tu_model(const char *file, imgsim_precision prec)
{
    char rel[512];
    snprintf(rel, sizeof rel, "models/%s", file);
    imgsim_model_opts o;
    imgsim_model_opts_default(&o);
    o.precision = prec;
    o.threads = 2;
    imgsim_model *m = NULL;
    imgsim_error e = {0};
    if (imgsim_model_open(tu_shared(rel), &o, &m, &e) != IMGSIM_OK)
        fail_msg("open %s: %s", file, e.msg);
    return m;
}

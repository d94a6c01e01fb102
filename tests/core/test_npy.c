/*
 * test_npy.c — the .npy writer (src/core/npy.c), read back byte by byte against the format
 * (numpy's NEP 1 / version 1.0): magic and version, little-endian header length, a header
 * dict naming '<f4', C order and the exact shape, padding so the data starts on a 64-byte
 * boundary, then exactly n * d little-endian floats. Several shapes (empty, one value,
 * Wang-sized matrices); a file replaced by a smaller matrix is not left with the old tail;
 * an unwritable path and a write cut short by the file-size limit are reported as i/o errors
 * and leave no partial .npy behind. (src/ has no .npy reader to refuse corrupt input.)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../testutil.h"

/* What a conforming reader finds in the file: fails the test on any deviation. */
static float *npy_read(const char *path, size_t *n, size_t *d)
{
    size_t len;
    uint8_t *b = tu_read(path, &len);
    assert_true(len >= 10);
    assert_memory_equal(b, "\x93NUMPY", 6);
    assert_int_equal(b[6], 1);
    assert_int_equal(b[7], 0);
    size_t hl = b[8] | (size_t)b[9] << 8;
    assert_true(10 + hl <= len);
    assert_int_equal((10 + hl) % 64, 0);          /* data aligned */
    assert_int_equal(b[10 + hl - 1], '\n');        /* header ends with a newline */
    char *h = (char *)b + 10;
    for (size_t i = 0; i < hl - 1; i++)
        assert_true(h[i] >= 0x20 && h[i] < 0x7f);  /* ASCII, no NUL */
    h[hl - 1] = 0;
    /* the dict, then only space padding */
    char *close = strrchr(h, '}');
    assert_non_null(close);
    for (char *p = close + 1; *p; p++)
        assert_int_equal(*p, ' ');
    assert_int_equal(h[0], '{');
    assert_non_null(strstr(h, "'descr': '<f4'"));
    assert_non_null(strstr(h, "'fortran_order': False"));
    char *shape = strstr(h, "'shape': (");
    assert_non_null(shape);
    char tail;
    assert_int_equal(sscanf(shape, "'shape': (%zu, %zu%c", n, d, &tail), 3);
    assert_int_equal(tail, ')');
    size_t want = *n * *d * sizeof(float);
    assert_int_equal(len - 10 - hl, want);
    float *v = malloc(want ? want : 1);
    assert_non_null(v);
    memcpy(v, b + 10 + hl, want);
    free(b);
    return v;
}

static float *pattern(size_t n, size_t d)
{
    float *v = malloc((n * d + 1) * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n * d; i++)
        v[i] = (float)((double)(i % 977) * 0.001 - 0.5) * (i % 3 ? 1.0f : -3.0f);
    return v;
}

static void round_trip(size_t n, size_t d)
{
    const char *path = tu_out("npy_round_trip.npy");
    float *v = pattern(n, d);
    if (n * d >= 3) {
        v[0] = -0.0f;
        v[1] = 1e-38f;
        v[2] = 3.4e38f;
    }
    imgsim_error e = {0};
    assert_int_equal(imgsim_write_npy(path, v, n, d, &e), IMGSIM_OK);
    size_t rn, rd;
    float *r = npy_read(path, &rn, &rd);
    assert_int_equal(rn, n);
    assert_int_equal(rd, d);
    assert_memory_equal(r, v, n * d * sizeof(float));
    free(r);
    free(v);
}

static void test_round_trip(void **state)
{
    (void)state;
    const uint16_t one = 1;
    assert_int_equal(*(const uint8_t *)&one, 1); /* the bytes compared are little-endian */
    round_trip(3, 5);
    round_trip(1, 1);
    round_trip(1000, 1280);   /* Wang-1k through MobileNet-EdgeTPU */
    round_trip(30, 2304);     /* the default composite model's width */
    round_trip(123, 45678);
}

/* No rows (and no columns) is a valid, header-only file. */
static void test_empty(void **state)
{
    (void)state;
    const char *path = tu_out("npy_empty.npy");
    imgsim_error e = {0};
    float dummy = 1;
    assert_int_equal(imgsim_write_npy(path, &dummy, 0, 1280, &e), IMGSIM_OK);
    size_t n, d;
    free(npy_read(path, &n, &d));
    assert_int_equal(n, 0);
    assert_int_equal(d, 1280);
    assert_int_equal(imgsim_write_npy(path, NULL, 0, 0, &e), IMGSIM_OK);
    free(npy_read(path, &n, &d));
    assert_int_equal(n, 0);
    assert_int_equal(d, 0);
}

/* Writing over a larger file leaves exactly the new matrix. */
static void test_overwrite(void **state)
{
    (void)state;
    const char *path = tu_out("npy_overwrite.npy");
    float *big = pattern(200, 64), *small = pattern(2, 3);
    imgsim_error e = {0};
    assert_int_equal(imgsim_write_npy(path, big, 200, 64, &e), IMGSIM_OK);
    assert_int_equal(imgsim_write_npy(path, small, 2, 3, &e), IMGSIM_OK);
    size_t n, d;
    float *r = npy_read(path, &n, &d);
    assert_int_equal(n, 2);
    assert_int_equal(d, 3);
    assert_memory_equal(r, small, 6 * sizeof(float));
    free(r);
    free(big);
    free(small);
}

static void test_unwritable(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_out("npy_no_such_dir/vectors.npy"));
    float v[4] = {1, 2, 3, 4};
    imgsim_error e = {0};
    assert_int_equal(imgsim_write_npy(path, v, 2, 2, &e), IMGSIM_E_IO);
    assert_int_equal(e.code, IMGSIM_E_IO);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, strerror(ENOENT)));
    /* a directory is not a file */
    assert_int_equal(imgsim_write_npy(tu_out(""), v, 2, 2, &e), IMGSIM_E_IO);
}

/* A disk that fills up mid-write (here: the file-size limit) is an error, and the partial
 * file is removed rather than left as a truncated .npy. */
static void test_short_write_removed(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_out("npy_short.npy"));
    unlink(path);
    float *v = pattern(100, 1280); /* 512 KB */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* write() fails with EFBIG instead */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    imgsim_error e = {0};
    imgsim_status s = imgsim_write_npy(path, v, 100, 1280, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(s, IMGSIM_E_IO);
    assert_non_null(strstr(e.msg, "write failed"));
    assert_non_null(strstr(e.msg, path));
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
    /* the same call without the limit succeeds */
    assert_int_equal(imgsim_write_npy(path, v, 100, 1280, &e), IMGSIM_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 100 * 1280 * 4);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_overwrite),
        cmocka_unit_test(test_unwritable),
        cmocka_unit_test(test_short_write_removed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

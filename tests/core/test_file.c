/*
 * test_file.c — core/file.h: file_read_all reads regular files (small and empty) and pipes
 * whole, refuses more than the limit (telling the size seen), and reports a missing file and a
 * directory as I/O errors.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../testutil.h"
#include "core/file.h"

static void test_small(void **state)
{
    (void)state;
    const char *p = tu_out("file_small.bin");
    tu_write(p, "hello, file", 11);
    uint8_t *d = NULL;
    size_t n = 0;
    imgsim_error e = {0};
    assert_int_equal(file_read_all(p, 100, &d, &n, &e), IMGSIM_OK);
    assert_int_equal(n, 11);
    assert_memory_equal(d, "hello, file", 11);
    free(d);
    /* exactly at the limit is allowed */
    assert_int_equal(file_read_all(p, 11, &d, &n, &e), IMGSIM_OK);
    assert_int_equal(n, 11);
    free(d);
}

static void test_empty(void **state)
{
    (void)state;
    const char *p = tu_out("file_empty.bin");
    tu_write(p, "", 0);
    uint8_t *d = NULL;
    size_t n = 99;
    imgsim_error e = {0};
    assert_int_equal(file_read_all(p, 0, &d, &n, &e), IMGSIM_OK);
    assert_non_null(d);
    assert_int_equal(n, 0);
    free(d);
}

static void test_over_limit(void **state)
{
    (void)state;
    const char *p = tu_out("file_big.bin");
    uint8_t buf[1000];
    memset(buf, 7, sizeof buf);
    tu_write(p, buf, sizeof buf);
    uint8_t *d = (uint8_t *)buf;
    size_t n = 0;
    imgsim_error e = {0};
    assert_int_equal(file_read_all(p, 999, &d, &n, &e), IMGSIM_E_TOO_BIG);
    assert_null(d);
    assert_int_equal(n, 1000); /* the size seen, for the caller's message */
    assert_int_equal(e.code, IMGSIM_E_TOO_BIG);
}

static void test_missing(void **state)
{
    (void)state;
    const char *p = tu_out("file_missing.bin");
    unlink(p);
    uint8_t *d = NULL;
    size_t n = 0;
    imgsim_error e = {0};
    assert_int_equal(file_read_all(p, 100, &d, &n, &e), IMGSIM_E_IO);
    assert_null(d);
    assert_int_equal(n, 0);
    assert_non_null(strstr(e.msg, "cannot open"));
}

static void test_directory(void **state)
{
    (void)state;
    const char *p = tu_out_dir("file_dir");
    uint8_t *d = NULL;
    size_t n = 0;
    imgsim_error e = {0};
    assert_int_equal(file_read_all(p, 100, &d, &n, &e), IMGSIM_E_IO);
    assert_null(d);
    assert_string_equal(e.msg, "is a directory");
}

typedef struct writer {
    const char *path;
    size_t n;   /* bytes to write: byte i is (uint8_t)(i * 31) */
} writer;

static void *write_fifo(void *arg)
{
    const writer *w = arg;
    FILE *f = fopen(w->path, "wb"); /* blocks until the reader opens */
    if (!f)
        return NULL;
    for (size_t i = 0; i < w->n; i++)
        if (fputc((int)(uint8_t)(i * 31), f) == EOF)
            break; /* the reader stopped at its limit */
    fclose(f);
    return NULL;
}

/* Read a FIFO fed by a thread writing `count` bytes, under `limit`. */
static imgsim_status read_fifo(const char *name, size_t count, uint64_t limit, uint8_t **d,
                               size_t *n, imgsim_error *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_out(name));
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    writer w = {path, count};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_fifo, &w), 0);
    imgsim_status s = file_read_all(path, limit, d, n, e);
    pthread_join(t, NULL);
    unlink(path);
    return s;
}

static void test_fifo(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* the writer of the over-limit case outlives the reader */
    uint8_t *d = NULL;
    size_t n = 0;
    imgsim_error e = {0};
    size_t count = 200000; /* several times the first pipe buffer: growth while reading */
    assert_int_equal(read_fifo("file_fifo", count, 1 << 20, &d, &n, &e), IMGSIM_OK);
    assert_int_equal(n, count);
    for (size_t i = 0; i < count; i++)
        if (d[i] != (uint8_t)(i * 31))
            fail_msg("byte %zu differs", i);
    free(d);
    /* over the limit while reading: the bytes seen are one past it */
    assert_int_equal(read_fifo("file_fifo_big", 5000, 4096, &d, &n, &e), IMGSIM_E_TOO_BIG);
    assert_null(d);
    assert_int_equal(n, 4097);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small),     cmocka_unit_test(test_empty),
        cmocka_unit_test(test_over_limit), cmocka_unit_test(test_missing),
        cmocka_unit_test(test_directory), cmocka_unit_test(test_fifo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

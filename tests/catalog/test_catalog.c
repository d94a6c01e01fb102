/*
 * test_catalog.c — the collection on disk (src/catalog): a long-lived read-only handle sees a
 * writer's adds, removes and compaction; an append that never committed is dropped at the
 * next open; a truncated vector file and a model mismatch are refused with clear errors.
 * Real model (MobileNetV3-Small embedder) on real Wang-1k photos.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/internal.h"
#include "../testutil.h"

#define MODEL_FILE "mobilenet_v3_small_075_224_embedder.tflite"

static imgsim_model *model;
static imgsim_ctx *ctx;
static char dir[4096];

static int setup(void **state)
{
    (void)state;
    model = tu_model(MODEL_FILE, IMGSIM_PRECISION_AUTO);
    ctx = tu_ctx(model);
    snprintf(dir, sizeof dir, "%s", tu_fresh_dir("catalog_db"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_model_free(model, ctx);
    return 0;
}

/* Items in the collection. */
static size_t count(imgsim_db *db)
{
    size_t n = 0;
    imgsim_error e = {0};
    assert_int_equal(imgsim_db_count(db, &n, &e), IMGSIM_OK);
    return n;
}

static void test_reader_follows_writer(void **state)
{
    (void)state;
    imgsim_error e = {0};
    imgsim_db *w, *r;
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_CREATE, imgsim_model_name(model),
                                    imgsim_model_dim(model), &w, &e), IMGSIM_OK);
    int first[] = {300, 301, 302, 303, 600, 601, 602, 603, 400, 401, 402, 403};
    tu_add_wang(w, ctx, first, 12);
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_READ, NULL, 0, &r, &e), IMGSIM_OK);
    imgsim_query_opts o;
    imgsim_query_opts_default(&o);
    o.k = 3;
    imgsim_results res;
    assert_int_equal(imgsim_query_id(r, "w300", &o, &res, &e), IMGSIM_OK);
    assert_int_equal(res.n, 3);
    imgsim_results_free(&res);

    /* the writer removes most buses and compacts: the reader must follow, not read stale rows */
    const char *gone[] = {"w301", "w302", "w600", "w601", "w602", "w400", "w401"};
    size_t removed = 0;
    assert_int_equal(imgsim_db_remove(w, gone, 7, &removed, &e), IMGSIM_OK);
    assert_int_equal(removed, 7);
    assert_int_equal(vec_compact_if_needed(w, 1, &e), IMGSIM_OK);
    assert_int_equal(imgsim_query_id(r, "w300", &o, &res, &e), IMGSIM_OK);
    assert_int_equal(res.n, 3);
    for (size_t i = 0; i < 7; i++)
        assert_false(tu_has(&res, gone[i]));
    /* the same answer as a fresh reader, scores included */
    imgsim_db *fresh;
    imgsim_results ref;
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_READ, NULL, 0, &fresh, &e), IMGSIM_OK);
    assert_int_equal(imgsim_query_id(fresh, "w300", &o, &ref, &e), IMGSIM_OK);
    assert_int_equal(ref.n, res.n);
    for (int i = 0; i < res.n; i++) {
        assert_string_equal(res.hits[i].item.id, ref.hits[i].item.id);
        assert_true(res.hits[i].score == ref.hits[i].score);
    }
    imgsim_results_free(&res);
    imgsim_results_free(&ref);
    imgsim_db_close(fresh);

    /* items added later are found through the old handle */
    int more[] = {304, 305};
    tu_add_wang(w, ctx, more, 2);
    assert_int_equal(imgsim_query_id(r, "w304", &o, &res, &e), IMGSIM_OK);
    assert_true(tu_has(&res, "w305"));
    imgsim_results_free(&res);
    assert_int_equal(count(w), 7);
    imgsim_db_close(r);
    imgsim_db_close(w);
}

static void test_uncommitted_tail_dropped(void **state)
{
    (void)state;
    imgsim_error e = {0};
    imgsim_db *w;
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_WRITE, NULL, 0, &w, &e), IMGSIM_OK);
    size_t rows = w->nrows, items = count(w);
    char vf[4300];
    snprintf(vf, sizeof vf, "%s/%s", dir, w->vec_name);
    /* a crash between the append and the commit: rows on disk, nothing in the catalogue */
    float *junk = calloc(3 * (size_t)w->dim, sizeof *junk);
    assert_non_null(junk);
    assert_int_equal(vec_append(w, junk, 3, &e), IMGSIM_OK);
    free(junk);
    struct stat sb;
    assert_int_equal(stat(vf, &sb), 0);
    assert_int_equal((size_t)sb.st_size, VEC_HEADER + (rows + 3) * (size_t)w->dim * 4);
    int dim = w->dim;
    w->pending = 0; /* as if the process died here */
    imgsim_db_close(w);
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_WRITE, NULL, 0, &w, &e), IMGSIM_OK);
    assert_int_equal(stat(vf, &sb), 0);
    assert_int_equal((size_t)sb.st_size, VEC_HEADER + rows * (size_t)dim * 4);
    assert_int_equal(w->nrows, rows);
    assert_int_equal(count(w), items);
    imgsim_db_close(w);
}

static void test_damage_refused(void **state)
{
    (void)state;
    imgsim_error e = {0};
    imgsim_db *db;
    /* another model's name */
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_READ, "mobilenet_v2", 0, &db, &e), IMGSIM_E_ARG);
    assert_non_null(strstr(e.msg, "was built with model"));
    /* a second writer is told, not made to wait */
    imgsim_db *w, *w2;
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_WRITE, NULL, 0, &w, &e), IMGSIM_OK);
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_WRITE, NULL, 0, &w2, &e), IMGSIM_E_IO);
    assert_non_null(strstr(e.msg, "another imgsim process"));
    char vf[4300];
    snprintf(vf, sizeof vf, "%s/%s", dir, w->vec_name);
    imgsim_db_close(w);
    /* a vector file cut short is reported, never read past its end */
    assert_int_equal(truncate(vf, VEC_HEADER + 100), 0);
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_READ, NULL, 0, &db, &e), IMGSIM_E_IO);
    assert_non_null(strstr(e.msg, "truncated"));
    /* not a collection at all */
    assert_int_equal(imgsim_db_open(tu_out(""), IMGSIM_DB_READ, NULL, 0, &db, &e), IMGSIM_E_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_follows_writer),
        cmocka_unit_test(test_uncommitted_tail_dropped),
        cmocka_unit_test(test_damage_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

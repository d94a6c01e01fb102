/*
 * test_example.c — the worked example at the top of include/imgsim.h, compiled and run as
 * written there (only the file names point at the shared model and the extracted Wang-1k
 * photos): three photos go into a new collection, a fourth finds its own kind.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../testutil.h"

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(path);
}

/* A collection directory that does not exist yet. */
static const char *fresh_dir(const char *name)
{
    const char *dir = tu_out(name);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return dir;
}

static int failed(const imgsim_error *e)
{
    fail_msg("%s", e->msg);
    return 1;
}

static int example(const char *model, const char *dbdir, const char *bus, const char *horse,
                   const char *flower, const char *query, char *top, size_t ntop, float *score)
{
    imgsim_error e;
    imgsim_model *m;
    imgsim_ctx *c;
    imgsim_db *db;
    imgsim_model_opts mo;
    imgsim_model_opts_default(&mo);
    if (imgsim_model_open(model, &mo, &m, &e) != IMGSIM_OK ||
        imgsim_ctx_new(m, &c, &e) != IMGSIM_OK ||
        imgsim_db_open(dbdir, IMGSIM_DB_CREATE, imgsim_model_name(m),
                       imgsim_model_dim(m), &db, &e) != IMGSIM_OK)
        return failed(&e);
    imgsim_source src[3] = {{.id = "bus", .path = bus, .label = "buses"},
                            {.id = "horse", .path = horse, .label = "horses"},
                            {.id = "flower", .path = flower, .label = "flowers"}};
    imgsim_ingest_opts io;
    imgsim_ingest_opts_default(&io);
    imgsim_ingest_stats st;
    if (imgsim_db_add(db, c, src, 3, &io, &st, &e) != IMGSIM_OK)
        return failed(&e);
    assert_int_equal(st.added, 3);
    imgsim_image img;
    imgsim_prep p;
    imgsim_model_prep(m, &p);
    float *v = malloc(sizeof(float) * (size_t)imgsim_model_dim(m));
    if (!v)
        return 1;
    imgsim_query_opts qo;
    imgsim_query_opts_default(&qo);
    qo.k = 1;
    imgsim_results r;
    if (imgsim_image_load_file(query, &p, &img, &e) != IMGSIM_OK ||
        imgsim_embed(c, &img, 1, v, NULL, &e) != IMGSIM_OK ||
        imgsim_query_vector(db, v, &qo, &r, &e) != IMGSIM_OK)
        return failed(&e);
    assert_int_equal(r.n, 1);
    snprintf(top, ntop, "%s", r.hits[0].item.id);
    *score = r.hits[0].score;
    imgsim_results_free(&r);
    imgsim_image_free(&img);
    free(v);
    imgsim_db_close(db);
    imgsim_ctx_free(c);
    imgsim_model_close(m);
    return 0;
}

static void test_bus_finds_bus(void **state)
{
    (void)state;
    char model[4096], bus[4096], horse[4096], flower[4096], query[4096], dir[4096];
    snprintf(model, sizeof model, "%s", tu_shared("models/mobilenet_v2_1.0_224_quant.tflite"));
    snprintf(bus, sizeof bus, "%s", tu_data("wang1k/images/300.jpg"));
    snprintf(horse, sizeof horse, "%s", tu_data("wang1k/images/700.jpg"));
    snprintf(flower, sizeof flower, "%s", tu_data("wang1k/images/600.jpg"));
    snprintf(query, sizeof query, "%s", tu_data("wang1k/images/301.jpg"));
    snprintf(dir, sizeof dir, "%s", fresh_dir("example_photos.db"));
    char top[64] = "";
    float score = 0;
    assert_int_equal(example(model, dir, bus, horse, flower, query, top, sizeof top, &score), 0);
    print_message("top hit %s, score %.3f\n", top, score);
    assert_string_equal(top, "bus");
    assert_true(score > 0.3f && score <= 1.0001f);
    fresh_dir("example_photos.db");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bus_finds_bus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

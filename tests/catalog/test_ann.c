/*
 * test_ann.c — a collection's HNSW index (src/catalog/ann.c) on real embeddings
 * (MobileNetV3-Small embedder on 500 Wang-1k photos): recall@10 against exact search for
 * several index settings, filtered search returning k correct results, adds and removes kept
 * in step, a crash between the catalogue commit and the index save (the index behind the
 * catalogue still answers correctly; a writer catches up incrementally), damaged, truncated
 * and missing index files (reader: exact answers with a note; writer: rebuilt), restart,
 * compaction, and the exact/approximate choice (threshold, L1, metric mismatch).
 */
#include <dirent.h>
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
    snprintf(dir, sizeof dir, "%s", tu_fresh_dir("ann_db"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_model_free(model, ctx);
    return 0;
}

static imgsim_db *open_db(int mode)
{
    imgsim_error e = {0};
    imgsim_db *db = NULL;
    if (imgsim_db_open(dir, mode, mode ? imgsim_model_name(model) : NULL,
                       mode ? imgsim_model_dim(model) : 0, &db, &e) != IMGSIM_OK)
        fail_msg("open %s: %s", dir, e.msg);
    return db;
}

static imgsim_ann_info info_of(imgsim_db *db)
{
    imgsim_ann_info in;
    imgsim_error e = {0};
    assert_int_equal(imgsim_db_ann_info(db, &in, &e), IMGSIM_OK);
    return in;
}

static imgsim_results query(imgsim_db *db, const char *id, const float *vec, int k, int mode,
                            imgsim_metric m, const imgsim_where *w, int nw)
{
    imgsim_query_opts o;
    imgsim_query_opts_default(&o);
    o.k = k;
    o.metric = m;
    o.where = w;
    o.nwhere = nw;
    if (mode == 1)
        o.mode = IMGSIM_SEARCH_ANN;
    else if (mode == 2)
        o.mode = IMGSIM_SEARCH_EXACT;
    imgsim_results r;
    imgsim_error e = {0};
    imgsim_status s = id ? imgsim_query_id(db, id, &o, &r, &e) : imgsim_query_vector(db, vec, &o, &r, &e);
    if (s != IMGSIM_OK)
        fail_msg("query %s: %s", id ? id : "(vector)", e.msg);
    return r;
}

/* Mean recall@k of HNSW (forced) against exact over every item, queried by id. Every HNSW
 * answer must come from the index, and a hit found by both must carry the same score. */
static double recall(imgsim_db *db, int k, imgsim_metric m)
{
    char **ids;
    size_t n;
    imgsim_error e = {0};
    assert_int_equal(imgsim_db_item_ids(db, &ids, &n, &e), IMGSIM_OK);
    size_t found = 0, wanted = 0;
    for (size_t i = 0; i < n; i++) {
        imgsim_results a = query(db, ids[i], NULL, k, 1, m, NULL, 0);
        imgsim_results x = query(db, ids[i], NULL, k, 2, m, NULL, 0);
        assert_true(a.from_ann);
        assert_null(a.note);
        assert_false(x.from_ann);
        assert_int_equal(a.n, x.n);
        for (int j = 0; j < x.n; j++)
            for (int l = 0; l < a.n; l++)
                if (!strcmp(x.hits[j].item.id, a.hits[l].item.id)) {
                    found++;
                    assert_float_equal(x.hits[j].score, a.hits[l].score, 1e-4);
                }
        wanted += (size_t)x.n;
        imgsim_results_free(&a);
        imgsim_results_free(&x);
        free(ids[i]);
    }
    free(ids);
    return wanted ? (double)found / (double)wanted : 1;
}

/* The answer with the given mode against the exact one: identical (ids and scores) when it
 * is exact too, else at least 9 of the 10 with the exact scores. */
static void same_as_exact(imgsim_db *db, const char *id, int k, int mode, int expect_ann)
{
    imgsim_results a = query(db, id, NULL, k, mode, IMGSIM_METRIC_COSINE, NULL, 0);
    imgsim_results x = query(db, id, NULL, k, 2, IMGSIM_METRIC_COSINE, NULL, 0);
    assert_int_equal(a.from_ann, expect_ann);
    assert_int_equal(a.n, x.n);
    int common = 0;
    for (int i = 0; i < a.n; i++) {
        if (!expect_ann) {
            assert_string_equal(a.hits[i].item.id, x.hits[i].item.id);
            assert_float_equal(a.hits[i].score, x.hits[i].score, 1e-5);
        }
        for (int j = 0; j < x.n; j++)
            if (!strcmp(a.hits[i].item.id, x.hits[j].item.id)) {
                common++;
                assert_float_equal(a.hits[i].score, x.hits[j].score, 1e-4);
            }
    }
    assert_true(common * 10 >= a.n * 9);
    imgsim_results_free(&a);
    imgsim_results_free(&x);
}

static size_t count_ann_files(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d)))
        n += !strncmp(de->d_name, "ann.", 4);
    closedir(d);
    return n;
}

static void index_path(imgsim_db *db, char *p, size_t n)
{
    imgsim_ann_info in = info_of(db);
    assert_true(in.file[0]);
    snprintf(p, n, "%s/%s", dir, in.file);
}

/* ---- tests */

static void test_build_and_recall(void **state)
{
    (void)state;
    imgsim_db *w = open_db(IMGSIM_DB_CREATE);
    int nums[500];
    for (int i = 0; i < 500; i++)
        nums[i] = 2 * i;
    tu_add_wang(w, ctx, nums, 500);
    assert_int_equal(imgsim_db_vectors(w), 500);
    assert_int_equal(info_of(w).status, IMGSIM_ANN_NONE);

    /* no index: a forced query says so and searches exactly */
    imgsim_results r = query(w, "w300", NULL, 5, 1, IMGSIM_METRIC_COSINE, NULL, 0);
    assert_false(r.from_ann);
    assert_non_null(r.note);
    assert_non_null(strstr(r.note, "no HNSW index"));
    imgsim_results_free(&r);

    imgsim_error e = {0};
    imgsim_ann_opts o;
    imgsim_ann_opts_default(&o);
    assert_int_equal(o.storage, IMGSIM_ANN_SQ8);
    /* a few settings; the last (the default) stays */
    struct { imgsim_metric m; imgsim_ann_storage st; int pca; int whiten; double min; } cfg[] = {
        {IMGSIM_METRIC_L2, IMGSIM_ANN_F32, 0, 0, 0.95},
        {IMGSIM_METRIC_COSINE, IMGSIM_ANN_SQ8, 128, 1, -1}, /* whitening: builds, is used */
        {IMGSIM_METRIC_COSINE, IMGSIM_ANN_SQ8, 256, 0, 0.95},
        {IMGSIM_METRIC_COSINE, IMGSIM_ANN_SQ8, 0, 0, 0.95}, /* the default */
    };
    for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
        imgsim_ann_opts_default(&o);
        o.metric = cfg[c].m;
        o.storage = cfg[c].st;
        o.pca_dims = cfg[c].pca;
        o.pca_whiten = cfg[c].whiten;
        o.threads = 1; /* one build thread: the same graph every run */
        assert_int_equal(imgsim_db_ann_build(w, &o, &e), IMGSIM_OK);
        imgsim_ann_info in = info_of(w);
        assert_int_equal(in.status, IMGSIM_ANN_CURRENT);
        assert_int_equal(in.nodes, 500);
        assert_int_equal(in.opts.metric, cfg[c].m);
        assert_int_equal(in.opts.pca_dims, cfg[c].pca);
        assert_int_equal(in.code_dim, cfg[c].pca ? cfg[c].pca : imgsim_model_dim(model));
        assert_int_equal(count_ann_files(), 1); /* the previous index's file is gone */
        if (cfg[c].min < 0) {
            imgsim_results a = query(w, "w300", NULL, 10, 1, cfg[c].m, NULL, 0);
            assert_true(a.from_ann);
            assert_int_equal(a.n, 10);
            imgsim_results_free(&a);
            continue;
        }
        double rc = recall(w, 10, cfg[c].m);
        print_message("recall@10 %s %s pca %d: %.4f\n", imgsim_metric_name(cfg[c].m),
                      cfg[c].st == IMGSIM_ANN_F32 ? "f32" : "sq8", cfg[c].pca, rc);
        assert_true(rc >= cfg[c].min);
    }
    /* the same parameters again: nothing to rebuild */
    int rebuilt = 1;
    imgsim_ann_opts_default(&o);
    assert_int_equal(imgsim_db_ann_sync(w, &o, &rebuilt, &e), IMGSIM_OK);
    assert_false(rebuilt);
    imgsim_db_close(w);
}

static void test_choice(void **state)
{
    (void)state;
    imgsim_db *r = open_db(IMGSIM_DB_READ);
    /* below the threshold, the default is exact, without a note */
    imgsim_results a = query(r, "w300", NULL, 10, 0, IMGSIM_METRIC_COSINE, NULL, 0);
    assert_false(a.from_ann);
    assert_null(a.note);
    imgsim_results_free(&a);
    assert_true(imgsim_db_vectors(r) < IMGSIM_ANN_AUTO_ROWS);
    /* L1 has no index; L2 is not what this index serves: exact, with a note */
    a = query(r, "w300", NULL, 10, 1, IMGSIM_METRIC_L1, NULL, 0);
    assert_false(a.from_ann);
    assert_non_null(a.note);
    imgsim_results_free(&a);
    a = query(r, "w300", NULL, 10, 1, IMGSIM_METRIC_L2, NULL, 0);
    assert_false(a.from_ann);
    assert_non_null(strstr(a.note, "serves cosine"));
    imgsim_results_free(&a);
    /* --ef: a wider search of the index finds at least as much */
    imgsim_query_opts o;
    imgsim_query_opts_default(&o);
    o.mode = IMGSIM_SEARCH_ANN;
    o.ef = 400;
    imgsim_results b;
    imgsim_error e = {0};
    assert_int_equal(imgsim_query_id(r, "w302", &o, &b, &e), IMGSIM_OK);
    assert_true(b.from_ann);
    imgsim_results x = query(r, "w302", NULL, 10, 2, IMGSIM_METRIC_COSINE, NULL, 0);
    for (int i = 0; i < x.n; i++)
        assert_string_equal(b.hits[i].item.id, x.hits[i].item.id);
    imgsim_results_free(&b);
    imgsim_results_free(&x);
    /* --category auto votes through the index too, and stays inside the label */
    imgsim_query_opts_default(&o);
    o.mode = IMGSIM_SEARCH_ANN;
    o.category_auto = 1;
    assert_int_equal(imgsim_query_id(r, "w604", &o, &b, &e), IMGSIM_OK);
    assert_true(b.from_ann);
    assert_string_equal(b.predicted_label, "c6");
    for (int i = 0; i < b.n; i++)
        assert_string_equal(b.hits[i].item.label, "c6");
    imgsim_results_free(&b);
    imgsim_db_close(r);
}

static void test_filters(void **state)
{
    (void)state;
    imgsim_db *r = open_db(IMGSIM_DB_READ);
    /* a selective filter (4 % of the items) and a combination (matching 2 items): every
     * answer holds, and is the exact one */
    imgsim_where g3[] = {{"grp", "g3"}}, both[] = {{"grp", "g3"}, {"label", "c2"}};
    const imgsim_where *ws[] = {g3, both};
    int nws[] = {1, 2}, ks[] = {10, 20};
    for (int c = 0; c < 2; c++) {
        imgsim_results a = query(r, "w300", NULL, ks[c], 1, IMGSIM_METRIC_COSINE, ws[c], nws[c]);
        imgsim_results x = query(r, "w300", NULL, ks[c], 2, IMGSIM_METRIC_COSINE, ws[c], nws[c]);
        assert_true(a.from_ann);
        assert_int_equal(a.n, c == 0 ? 10 : 2);
        assert_int_equal(a.n, x.n);
        for (int i = 0; i < a.n; i++) {
            assert_non_null(strstr(a.hits[i].item.meta_json, "\"g3\""));
            assert_string_equal(a.hits[i].item.id, x.hits[i].item.id);
        }
        imgsim_results_free(&a);
        imgsim_results_free(&x);
    }
    /* a class (10 %): k results, all of it, recall against exact */
    imgsim_where c7[] = {{"label", "c7"}};
    size_t found = 0;
    const char *qs[] = {"w700", "w310", "w522", "w998"};
    for (int q = 0; q < 4; q++) {
        imgsim_results a = query(r, qs[q], NULL, 10, 1, IMGSIM_METRIC_COSINE, c7, 1);
        imgsim_results x = query(r, qs[q], NULL, 10, 2, IMGSIM_METRIC_COSINE, c7, 1);
        assert_int_equal(a.n, 10);
        for (int i = 0; i < a.n; i++) {
            assert_string_equal(a.hits[i].item.label, "c7");
            found += tu_has(&x, a.hits[i].item.id);
        }
        imgsim_results_free(&a);
        imgsim_results_free(&x);
    }
    assert_true(found >= 38);
    imgsim_db_close(r);
}

static void test_add_remove_in_step(void **state)
{
    (void)state;
    imgsim_db *w = open_db(IMGSIM_DB_WRITE);
    imgsim_db *r = open_db(IMGSIM_DB_READ);
    const char *gone[] = {"w302", "w304", "w306", "w600", "w602"};
    size_t removed = 0;
    imgsim_error e = {0};
    assert_int_equal(imgsim_db_remove(w, gone, 5, &removed, &e), IMGSIM_OK);
    assert_int_equal(removed, 5);
    /* removed rows are never returned, even before the index catches up */
    for (int k = 0; k < 5; k++) {
        imgsim_results a = query(r, "w300", NULL, 50, 1, IMGSIM_METRIC_COSINE, NULL, 0);
        assert_true(a.from_ann);
        assert_int_equal(a.n, 50);
        for (int i = 0; i < 5; i++)
            assert_false(tu_has(&a, gone[i]));
        imgsim_results_free(&a);
    }
    assert_int_equal(imgsim_db_ann_sync(w, NULL, NULL, &e), IMGSIM_OK);
    imgsim_ann_info in = info_of(r);
    assert_int_equal(in.status, IMGSIM_ANN_CURRENT);
    assert_int_equal(in.nodes, 495);
    /* adds go through imgsim_db_add, which keeps the index in step by itself */
    int more[] = {301, 303, 305, 601, 603, 905};
    tu_add_wang(w, ctx, more, 6);
    in = info_of(r);
    assert_int_equal(in.status, IMGSIM_ANN_CURRENT);
    assert_int_equal(in.nodes, imgsim_db_vectors(w));
    assert_int_equal(in.nodes, 501);
    /* each added item is found by its own vector, first, through the index */
    float *v = malloc(sizeof(float) * (size_t)imgsim_db_dim(r));
    assert_non_null(v);
    const char *added[] = {"w301", "w303", "w305", "w601", "w603", "w905"};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(imgsim_db_vector(r, added[i], v, &e), IMGSIM_OK);
        imgsim_results a = query(r, NULL, v, 3, 1, IMGSIM_METRIC_COSINE, NULL, 0);
        assert_true(a.from_ann);
        assert_string_equal(a.hits[0].item.id, added[i]);
        assert_true(a.hits[0].score > 0.9999f);
        imgsim_results_free(&a);
    }
    free(v);
    assert_true(recall(r, 10, IMGSIM_METRIC_COSINE) >= 0.95);
    imgsim_db_close(r);
    imgsim_db_close(w);
}

/* Meta rows ann_* as "key=value" pairs. */
static size_t read_ann_meta(imgsim_db *db, char kv[][2][128], size_t max)
{
    sqlite3_stmt *st;
    imgsim_error e = {0};
    assert_int_equal(cat_prepare(db, "SELECT key, value FROM meta WHERE key GLOB 'ann_*'", &st, &e),
                     IMGSIM_OK);
    size_t n = 0;
    while (n < max && sqlite3_step(st) == SQLITE_ROW) {
        snprintf(kv[n][0], 128, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(kv[n][1], 128, "%s", (const char *)sqlite3_column_text(st, 1));
        n++;
    }
    sqlite3_finalize(st);
    return n;
}

static void test_crash_between_commit_and_save(void **state)
{
    (void)state;
    imgsim_db *w = open_db(IMGSIM_DB_WRITE);
    char old_path[4300], kv[32][2][128];
    index_path(w, old_path, sizeof old_path);
    size_t nkv = read_ann_meta(w, kv, 32), len;
    uint8_t *old_file = tu_read(old_path, &len);
    /* the catalogue moves on: 6 adds and 4 removes, each followed by an index save ... */
    int more[] = {101, 103, 105, 107, 109, 111};
    tu_add_wang(w, ctx, more, 6);
    const char *gone[] = {"w310", "w312", "w101", "w700"};
    size_t removed;
    imgsim_error e = {0};
    assert_int_equal(imgsim_db_remove(w, gone, 4, &removed, &e), IMGSIM_OK);
    assert_int_equal(imgsim_db_ann_sync(w, NULL, NULL, &e), IMGSIM_OK);
    /* ... but put the index back as it was before them: as if every save had been lost to
     * a crash right after the catalogue commit (the newer file stays, as a stray) */
    tu_write(old_path, old_file, len);
    free(old_file);
    assert_int_equal(cat_write_begin(w, &e), IMGSIM_OK);
    for (size_t i = 0; i < nkv; i++)
        assert_int_equal(cat_meta_set(w, kv[i][0], kv[i][1], &e), IMGSIM_OK);
    assert_int_equal(cat_write_commit(w, &e), IMGSIM_OK);
    assert_int_equal(count_ann_files(), 2);
    size_t live = imgsim_db_vectors(w);
    imgsim_db_close(w);

    /* a reader: the index is behind, and still answers correctly */
    imgsim_db *r = open_db(IMGSIM_DB_READ);
    imgsim_ann_info in = info_of(r);
    assert_int_equal(in.status, IMGSIM_ANN_BEHIND);
    assert_int_equal(in.added, 5);   /* w101 came and went */
    assert_int_equal(in.dropped, 3);
    assert_int_equal(in.live, live);
    float *v = malloc(sizeof(float) * (size_t)imgsim_db_dim(r));
    assert_non_null(v);
    const char *added[] = {"w103", "w105", "w107", "w109", "w111"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(imgsim_db_vector(r, added[i], v, &e), IMGSIM_OK);
        imgsim_results a = query(r, NULL, v, 30, 1, IMGSIM_METRIC_COSINE, NULL, 0);
        assert_true(a.from_ann);
        assert_string_equal(a.hits[0].item.id, added[i]);
        for (int j = 0; j < 4; j++)
            assert_false(tu_has(&a, gone[j]));
        imgsim_results_free(&a);
    }
    free(v);
    assert_true(recall(r, 10, IMGSIM_METRIC_COSINE) >= 0.95);

    /* the next writer catches up incrementally and removes the stray */
    w = open_db(IMGSIM_DB_WRITE);
    int rebuilt = 1;
    assert_int_equal(imgsim_db_ann_sync(w, NULL, &rebuilt, &e), IMGSIM_OK);
    assert_false(rebuilt);
    in = info_of(r);
    assert_int_equal(in.status, IMGSIM_ANN_CURRENT);
    assert_int_equal(in.nodes, live);
    assert_int_equal(count_ann_files(), 1);
    imgsim_db_close(w);
    imgsim_db_close(r);
}

static void corrupt(const char *path, int how)
{
    if (how == 0) { /* overwrite bytes in the middle */
        size_t len;
        uint8_t *b = tu_read(path, &len);
        for (size_t i = len / 2; i < len / 2 + 64 && i < len; i++)
            b[i] ^= 0x5a;
        tu_write(path, b, len);
        free(b);
    } else if (how == 1) {
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(truncate(path, sb.st_size / 2), 0);
    } else {
        assert_int_equal(unlink(path), 0);
    }
}

static void test_damage(void **state)
{
    (void)state;
    const char *words[] = {"damaged", "damaged", "missing"};
    for (int how = 0; how < 3; how++) {
        imgsim_db *r = open_db(IMGSIM_DB_READ);
        char path[4300];
        index_path(r, path, sizeof path);
        same_as_exact(r, "w500", 10, 1, 1); /* mapped and used */
        corrupt(path, how);
        if (how == 2) {
            /* a handle that mapped it keeps using it (a deleted file's pages stay valid) */
            same_as_exact(r, "w500", 10, 1, 1);
            imgsim_db_close(r);
            r = open_db(IMGSIM_DB_READ);
        }
        /* the reader notices, answers exactly and says why */
        imgsim_results a = query(r, "w500", NULL, 10, 1, IMGSIM_METRIC_COSINE, NULL, 0);
        assert_false(a.from_ann);
        assert_non_null(a.note);
        assert_non_null(strstr(a.note, words[how]));
        imgsim_results_free(&a);
        same_as_exact(r, "w500", 10, 1, 0);
        imgsim_ann_info in = info_of(r);
        assert_int_equal(in.status, IMGSIM_ANN_DAMAGED);
        assert_non_null(strstr(in.problem, words[how]));
        /* a writer rebuilds: explicitly, or after an add */
        imgsim_db *w = open_db(IMGSIM_DB_WRITE);
        imgsim_error e = {0};
        if (how == 1) {
            int more[] = {113};
            tu_add_wang(w, ctx, more, 1);
        } else {
            int rebuilt = 0;
            assert_int_equal(imgsim_db_ann_sync(w, NULL, &rebuilt, &e), IMGSIM_OK);
            assert_true(rebuilt);
        }
        in = info_of(r);
        assert_int_equal(in.status, IMGSIM_ANN_CURRENT);
        assert_int_equal(in.nodes, imgsim_db_vectors(w));
        same_as_exact(r, "w500", 10, 1, 1);
        imgsim_db_close(w);
        imgsim_db_close(r);
    }
}

static void test_restart_and_compaction(void **state)
{
    (void)state;
    /* a fresh process: the saved index is used as it is */
    imgsim_db *r = open_db(IMGSIM_DB_READ);
    assert_int_equal(info_of(r).status, IMGSIM_ANN_CURRENT);
    imgsim_results a = query(r, "w400", NULL, 10, 1, IMGSIM_METRIC_COSINE, NULL, 0);
    assert_true(a.from_ann);
    imgsim_results_free(&a);
    /* remove 40 %: the vector file is compacted, renumbering rows */
    imgsim_db *w = open_db(IMGSIM_DB_WRITE);
    char vec_before[64];
    snprintf(vec_before, sizeof vec_before, "%s", w->vec_name);
    char **ids;
    size_t n, removed;
    imgsim_error e = {0};
    assert_int_equal(imgsim_db_item_ids(w, &ids, &n, &e), IMGSIM_OK);
    size_t nrm = 0;
    const char **rm = malloc(n * sizeof *rm);
    assert_non_null(rm);
    for (size_t i = 0; i < n; i++)
        if (i % 5 < 2 && strcmp(ids[i], "w400") != 0)
            rm[nrm++] = ids[i];
    assert_int_equal(imgsim_db_remove(w, rm, nrm, &removed, &e), IMGSIM_OK);
    assert_int_equal(removed, nrm);
    assert_string_not_equal(w->vec_name, vec_before);
    /* until a writer rebuilds, an index numbering the old rows is not used (if the library
     * already rebuilt it, it is current) */
    imgsim_ann_info in = info_of(r);
    assert_true(in.status == IMGSIM_ANN_STALE || in.status == IMGSIM_ANN_CURRENT);
    same_as_exact(r, "w400", 10, 1, in.status == IMGSIM_ANN_CURRENT);
    assert_int_equal(imgsim_db_ann_sync(w, NULL, NULL, &e), IMGSIM_OK);
    in = info_of(r);
    assert_int_equal(in.status, IMGSIM_ANN_CURRENT);
    assert_int_equal(in.nodes, imgsim_db_vectors(w));
    for (size_t i = 0; i < nrm; i++) {
        if (i % 20)
            continue;
        imgsim_results b = query(r, "w400", NULL, 40, 1, IMGSIM_METRIC_COSINE, NULL, 0);
        assert_true(b.from_ann);
        for (size_t j = 0; j < nrm; j++)
            assert_false(tu_has(&b, rm[j]));
        imgsim_results_free(&b);
    }
    double rc = recall(r, 10, IMGSIM_METRIC_COSINE);
    print_message("recall@10 after compaction and rebuild: %.4f\n", rc);
    assert_true(rc >= 0.95);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(rm);
    /* drop: back to exact, the file gone */
    assert_int_equal(imgsim_db_ann_drop(w, &e), IMGSIM_OK);
    assert_int_equal(info_of(r).status, IMGSIM_ANN_NONE);
    assert_int_equal(count_ann_files(), 0);
    a = query(r, "w400", NULL, 10, 1, IMGSIM_METRIC_COSINE, NULL, 0);
    assert_false(a.from_ann);
    imgsim_results_free(&a);
    /* a read-only handle cannot build */
    assert_int_equal(imgsim_db_ann_build(r, NULL, &e), IMGSIM_E_ARG);
    imgsim_db_close(w);
    imgsim_db_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_recall),
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_add_remove_in_step),
        cmocka_unit_test(test_crash_between_commit_and_save),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_restart_and_compaction),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

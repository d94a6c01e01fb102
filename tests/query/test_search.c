/*
 * test_search.c — answering queries (src/query/search.c) through the public API, on a small
 * collection of 30 real Wang-1k photos (buses, dinosaurs, flowers; MobileNetV3-Small
 * embedder) plus a second id for one photo's content and one unlabelled item: by id (the
 * item itself left out, its identical-content twin first with the self score) and by vector
 * (a photo of the collection finds itself, unseen photos find their class); scores ordered
 * best first and equal to the metric computed by hand on the stored vectors for cosine, L2
 * and L1; k bounds and other bad options refused; where filters on the label, metadata
 * and plain columns (combined, matching nothing, malformed); --category auto; exact vs a
 * forced index that does not exist; answers from the neighbour table equal to exact ones.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"

#define MODEL_FILE "mobilenet_v3_small_075_224_embedder.tflite"
#define NITEMS 32 /* 30 photos + "dup300" + "u650" */

static imgsim_model *model;
static imgsim_ctx *ctx;
static imgsim_db *db; /* read-only handle used by the queries */
static char dir[4096];
static int dim;

static int setup(void **state)
{
    (void)state;
    model = tu_model(MODEL_FILE, IMGSIM_PRECISION_AUTO);
    ctx = tu_ctx(model);
    dim = imgsim_model_dim(model);
    imgsim_error e = {0};
    snprintf(dir, sizeof dir, "%s", tu_fresh_dir("query_search"));
    imgsim_db *w;
    if (imgsim_db_open(dir, IMGSIM_DB_CREATE, imgsim_model_name(model), dim, &w, &e) != IMGSIM_OK)
        fail_msg("create %s: %s", dir, e.msg);
    int nums[30];
    for (int i = 0; i < 10; i++)
        nums[i] = 300 + i, nums[10 + i] = 400 + i, nums[20 + i] = 600 + i;
    tu_add_wang(w, ctx, nums, 30);
    /* the same bytes as w300 under another id, and an item without a label */
    char p300[4096], p650[4096];
    snprintf(p300, sizeof p300, "%s", tu_wang(300));
    snprintf(p650, sizeof p650, "%s", tu_wang(650));
    imgsim_source more[2] = {{.id = "dup300", .path = p300, .label = "c3"},
                             {.id = "u650", .path = p650}};
    imgsim_ingest_stats st;
    assert_int_equal(imgsim_db_add(w, ctx, more, 2, NULL, &st, &e), IMGSIM_OK);
    assert_int_equal(st.duplicate, 1);
    assert_int_equal(st.added, 1);
    imgsim_db_close(w);
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_READ, NULL, 0, &db, &e), IMGSIM_OK);
    size_t nitems = 0;
    assert_int_equal(imgsim_db_count(db, &nitems, &e), IMGSIM_OK);
    assert_int_equal(nitems, NITEMS);
    assert_int_equal(imgsim_db_vectors(db), NITEMS - 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    imgsim_db_close(db);
    tu_model_free(model, ctx);
    return 0;
}

/* The defaults with k and the metric set. */
static imgsim_query_opts opts(int k, imgsim_metric m)
{
    imgsim_query_opts o;
    imgsim_query_opts_default(&o);
    o.k = k, o.metric = m;
    return o;
}

static imgsim_results by_id(const char *id, const imgsim_query_opts *o)
{
    imgsim_results r;
    imgsim_error e = {0};
    if (imgsim_query_id(db, id, o, &r, &e) != IMGSIM_OK)
        fail_msg("query %s: %s", id, e.msg);
    return r;
}

static imgsim_results by_vec(const float *v, const imgsim_query_opts *o)
{
    imgsim_results r;
    imgsim_error e = {0};
    if (imgsim_query_vector(db, v, o, &r, &e) != IMGSIM_OK)
        fail_msg("query vector: %s", e.msg);
    return r;
}

/* Embedding of Wang-1k photo `num` (caller frees). */
static float *embed_wang(int num)
{
    const char **p = tu_wang_paths(&num, 1);
    float *v = tu_embed_files(ctx, dim, p, 1);
    free(p);
    return v;
}

/* Best first: cosine non-increasing, distances non-decreasing. */
static void expect_ordered(const imgsim_results *r, imgsim_metric m)
{
    for (int i = 1; i < r->n; i++) {
        float a = r->hits[i - 1].score, b = r->hits[i].score;
        if (m == IMGSIM_METRIC_COSINE ? b > a : b < a)
            fail_msg("%s scores out of order at %d: %g then %g", imgsim_metric_name(m), i, a, b);
    }
}

static int count_label(const imgsim_results *r, const char *label)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->hits[i].item.label && !strcmp(r->hits[i].item.label, label);
    return n;
}

static void test_by_id(void **state)
{
    (void)state;
    imgsim_query_opts o = opts(5, IMGSIM_METRIC_COSINE);
    imgsim_results r = by_id("w300", &o);
    assert_int_equal(r.n, 5);
    assert_false(tu_has(&r, "w300"));             /* never itself */
    assert_string_equal(r.hits[0].item.id, "dup300"); /* identical content first */
    assert_float_equal(r.hits[0].score, 1.0, 1e-4);
    assert_true(r.hits[1].score < 0.9999);
    expect_ordered(&r, o.metric);
    assert_true(count_label(&r, "c3") >= 4);      /* buses look like buses */
    assert_false(r.from_table);
    assert_false(r.from_ann);
    assert_null(r.note);
    /* items come back whole */
    assert_non_null(r.hits[0].item.source);
    assert_non_null(strstr(r.hits[0].item.source, "wang1k/images/300.jpg"));
    assert_int_equal(strlen(r.hits[0].item.hash), 64);
    imgsim_results_free(&r);

    /* and the other way round */
    r = by_id("dup300", &o);
    assert_string_equal(r.hits[0].item.id, "w300");
    assert_false(tu_has(&r, "dup300"));
    imgsim_results_free(&r);

    /* k above the collection: every other item once */
    o.k = 100;
    r = by_id("w405", &o);
    assert_int_equal(r.n, NITEMS - 1);
    assert_false(tu_has(&r, "w405"));
    for (int i = 0; i < r.n; i++)
        for (int j = 0; j < i; j++)
            assert_string_not_equal(r.hits[i].item.id, r.hits[j].item.id);
    expect_ordered(&r, o.metric);
    assert_true(count_label(&r, "c4") == 9);
    /* the dinosaurs come first */
    int dinos_first = 0;
    while (dinos_first < r.n && !strcmp(r.hits[dinos_first].item.label ? r.hits[dinos_first].item.label : "", "c4"))
        dinos_first++;
    assert_true(dinos_first >= 7);
    imgsim_results_free(&r);
}

static void test_by_vector(void **state)
{
    (void)state;
    /* a photo of the collection: both items with its content, score 1, in id order */
    float *v = embed_wang(300);
    imgsim_query_opts o = opts(3, IMGSIM_METRIC_COSINE);
    imgsim_results r = by_vec(v, &o);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.hits[0].item.id, "dup300");
    assert_string_equal(r.hits[1].item.id, "w300");
    assert_float_equal(r.hits[0].score, 1.0, 1e-4);
    assert_float_equal(r.hits[1].score, 1.0, 1e-4);
    assert_true(r.hits[2].score < 0.9999);
    imgsim_results_free(&r);
    free(v);

    /* photos the collection does not hold find their own class */
    const int unseen[] = {315, 420, 630};
    const char *label[] = {"c3", "c4", "c6"};
    o.k = 5;
    for (int i = 0; i < 3; i++) {
        v = embed_wang(unseen[i]);
        r = by_vec(v, &o);
        assert_int_equal(r.n, 5);
        expect_ordered(&r, o.metric);
        if (count_label(&r, label[i]) < 4)
            fail_msg("photo %d: only %d of 5 hits labelled %s", unseen[i],
                     count_label(&r, label[i]), label[i]);
        imgsim_results_free(&r);
        free(v);
    }
}

static double ref_score(imgsim_metric m, const float *a, const float *b)
{
    double ab = 0, aa = 0, bb = 0, l2 = 0, l1 = 0;
    for (int i = 0; i < dim; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
        l2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        l1 += fabs((double)a[i] - b[i]);
    }
    return m == IMGSIM_METRIC_COSINE ? ab / sqrt(aa * bb) : m == IMGSIM_METRIC_L2 ? sqrt(l2) : l1;
}

/* Every score is the metric between the query and the item's stored vector, every item is
 * ranked, and the three metrics are really different functions. */
static void test_metrics(void **state)
{
    (void)state;
    float *q = embed_wang(415), *x = malloc(sizeof(float) * (size_t)dim);
    assert_non_null(x);
    const imgsim_metric ms[] = {IMGSIM_METRIC_COSINE, IMGSIM_METRIC_L2, IMGSIM_METRIC_L1};
    float last[3];
    for (int mi = 0; mi < 3; mi++) {
        imgsim_query_opts o = opts(NITEMS, ms[mi]);
        imgsim_results r = by_vec(q, &o);
        assert_int_equal(r.n, NITEMS);
        expect_ordered(&r, ms[mi]);
        imgsim_error e = {0};
        for (int i = 0; i < r.n; i++) {
            assert_int_equal(imgsim_db_vector(db, r.hits[i].item.id, x, &e), IMGSIM_OK);
            double want = ref_score(ms[mi], q, x);
            if (fabs(r.hits[i].score - want) > 1e-4 * (1 + fabs(want)))
                fail_msg("%s: %s scored %g, by hand %g", imgsim_metric_name(ms[mi]),
                         r.hits[i].item.id, r.hits[i].score, want);
        }
        if (ms[mi] != IMGSIM_METRIC_COSINE)
            assert_true(r.hits[0].score > 0); /* the photo is not in the collection */
        last[mi] = r.hits[r.n - 1].score;
        imgsim_results_free(&r);
    }
    /* cosine in [-1, 1]; L1 >= L2 for the same pair */
    assert_true(last[0] >= -1 && last[0] < 1);
    assert_true(last[2] > last[1]);
    free(q);
    free(x);
}

static void expect_refused(const char *id, const imgsim_query_opts *o, imgsim_status want,
                           const char *needle)
{
    imgsim_results r;
    memset(&r, 0x5a, sizeof r);
    imgsim_error e = {0};
    float v[1024] = {0};
    v[0] = 1;
    imgsim_status s = id ? imgsim_query_id(db, id, o, &r, &e) : imgsim_query_vector(db, v, o, &r, &e);
    assert_int_equal(s, want);
    assert_int_equal(e.code, want);
    if (needle && !strstr(e.msg, needle))
        fail_msg("message '%s' lacks '%s'", e.msg, needle);
    assert_int_equal(r.n, 0); /* results left empty, safe to free */
    assert_null(r.hits);
    imgsim_results_free(&r);
}

static void test_bad_options(void **state)
{
    (void)state;
    assert_true(dim <= 1024);
    const int bad_k[] = {0, -1, 10001, 1 << 30};
    for (int i = 0; i < 4; i++) {
        imgsim_query_opts o = opts(bad_k[i], IMGSIM_METRIC_COSINE);
        expect_refused("w300", &o, IMGSIM_E_ARG, "k must be between 1 and 10000");
        expect_refused(NULL, &o, IMGSIM_E_ARG, "k must be between 1 and 10000");
    }
    imgsim_query_opts o = opts(5, (imgsim_metric)7);
    expect_refused("w300", &o, IMGSIM_E_ARG, "metric");
    o = opts(5, IMGSIM_METRIC_COSINE);
    o.ef = -1;
    expect_refused("w300", &o, IMGSIM_E_ARG, "ef");
    o = opts(5, IMGSIM_METRIC_COSINE);
    expect_refused("w999", &o, IMGSIM_E_NOTFOUND, "w999");
    imgsim_where w = {"", "c3"};
    o.where = &w;
    o.nwhere = 1;
    expect_refused("w300", &o, IMGSIM_E_ARG, "COLUMN=VALUE");

    /* the bounds themselves are accepted */
    o = opts(1, IMGSIM_METRIC_COSINE);
    imgsim_results r = by_id("w300", &o);
    assert_int_equal(r.n, 1);
    imgsim_results_free(&r);
    o.k = 10000;
    r = by_id("w300", &o);
    assert_int_equal(r.n, NITEMS - 1);
    imgsim_results_free(&r);
    /* NULL options: the defaults (k = 10, cosine) */
    imgsim_error e = {0};
    assert_int_equal(imgsim_query_id(db, "w300", NULL, &r, &e), IMGSIM_OK);
    assert_int_equal(r.n, 10);
    expect_ordered(&r, IMGSIM_METRIC_COSINE);
    imgsim_results_free(&r);
}

static void test_where(void **state)
{
    (void)state;
    /* a bus's nearest dinosaurs: all ten, nothing else */
    imgsim_where w[2] = {{"label", "c4"}, {"grp", "g5"}};
    imgsim_query_opts o = opts(20, IMGSIM_METRIC_COSINE);
    o.where = w;
    o.nwhere = 1;
    imgsim_results r = by_id("w300", &o);
    assert_int_equal(r.n, 10);
    assert_int_equal(count_label(&r, "c4"), 10);
    expect_ordered(&r, o.metric);
    imgsim_results_free(&r);
    /* and by vector, with L2 */
    float *v = embed_wang(300);
    o.metric = IMGSIM_METRIC_L2;
    r = by_vec(v, &o);
    assert_int_equal(r.n, 10);
    assert_int_equal(count_label(&r, "c4"), 10);
    expect_ordered(&r, o.metric);
    imgsim_results_free(&r);
    o.metric = IMGSIM_METRIC_COSINE;

    /* metadata: grp g5 is photos 305, 405, 605 (u650 has no metadata) */
    w[0] = (imgsim_where){"grp", "g5"};
    r = by_vec(v, &o);
    assert_int_equal(r.n, 3);
    assert_true(tu_has(&r, "w305") && tu_has(&r, "w405") && tu_has(&r, "w605"));
    imgsim_results_free(&r);
    /* both conditions hold */
    w[0] = (imgsim_where){"label", "c4"};
    o.nwhere = 2;
    r = by_vec(v, &o);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.hits[0].item.id, "w405");
    imgsim_results_free(&r);
    /* flowers of group g7: one photo */
    w[1] = (imgsim_where){"grp", "g7"};
    w[0] = (imgsim_where){"label", "c6"};
    o.nwhere = 2;
    r = by_vec(v, &o);
    assert_int_equal(r.n, 1); /* 607 */
    assert_string_equal(r.hits[0].item.id, "w607");
    imgsim_results_free(&r);
    /* nothing matches */
    w[0] = (imgsim_where){"label", "no such label"};
    o.nwhere = 1;
    r = by_vec(v, &o);
    assert_int_equal(r.n, 0);
    imgsim_results_free(&r);
    /* a plain column: the id; the self twin with its score */
    w[0] = (imgsim_where){"id", "dup300"};
    r = by_id("w300", &o);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.hits[0].item.id, "dup300");
    assert_float_equal(r.hits[0].score, 1.0, 1e-4);
    imgsim_results_free(&r);
    /* the item itself stays out even when the filter names it */
    w[0] = (imgsim_where){"id", "w300"};
    r = by_id("w300", &o);
    assert_int_equal(r.n, 0);
    imgsim_results_free(&r);
    /* a numeric column compared as text */
    w[0] = (imgsim_where){"width", "384"};
    o.k = 100;
    r = by_vec(v, &o);
    assert_true(r.n > 0 && r.n <= NITEMS);
    for (int i = 0; i < r.n; i++)
        assert_int_equal(r.hits[i].item.width, 384);
    imgsim_results_free(&r);
    free(v);
}

static void test_category_auto(void **state)
{
    (void)state;
    imgsim_query_opts o = opts(6, IMGSIM_METRIC_COSINE);
    o.category_auto = 1;
    imgsim_results r = by_id("w403", &o);
    assert_non_null(r.predicted_label);
    assert_string_equal(r.predicted_label, "c4");
    assert_true(r.votes > r.voters / 2 && r.voters <= 10 && r.voters > 0);
    assert_int_equal(r.n, 6);
    assert_int_equal(count_label(&r, "c4"), 6);
    assert_false(tu_has(&r, "w403"));
    imgsim_results_free(&r);
    /* an unseen flower, by vector, with L1; the unlabelled flower never shows up */
    float *v = embed_wang(640);
    o.metric = IMGSIM_METRIC_L1;
    o.k = 20;
    r = by_vec(v, &o);
    assert_string_equal(r.predicted_label, "c6");
    assert_int_equal(r.n, 10);
    assert_int_equal(count_label(&r, "c6"), 10);
    assert_false(tu_has(&r, "u650"));
    expect_ordered(&r, o.metric);
    imgsim_results_free(&r);
    free(v);
}

static void same_hits(const imgsim_results *a, const imgsim_results *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        assert_string_equal(a->hits[i].item.id, b->hits[i].item.id);
        assert_float_equal(a->hits[i].score, b->hits[i].score, 1e-5);
    }
}

/* A small collection without an index is searched exactly whatever is asked; asking for
 * the index says why it was not used. */
static void test_exact_and_forced_index(void **state)
{
    (void)state;
    imgsim_query_opts o = opts(8, IMGSIM_METRIC_COSINE);
    imgsim_results d = by_id("w602", &o);
    o.mode = IMGSIM_SEARCH_EXACT;
    imgsim_results x = by_id("w602", &o);
    same_hits(&d, &x);
    assert_null(x.note);
    o.mode = IMGSIM_SEARCH_ANN;
    imgsim_results a = by_id("w602", &o);
    same_hits(&a, &x);
    assert_false(a.from_ann);
    assert_non_null(a.note);
    assert_non_null(strstr(a.note, "no HNSW index"));
    imgsim_results_free(&d);
    imgsim_results_free(&x);
    imgsim_results_free(&a);
}

/* Id queries answered from a fresh neighbour table give the exact answer; questions the
 * table cannot answer (more neighbours, another metric, a filter) are searched. */
static void test_neighbour_table(void **state)
{
    (void)state;
    imgsim_error e = {0};
    imgsim_db *w;
    assert_int_equal(imgsim_db_open(dir, IMGSIM_DB_WRITE, NULL, 0, &w, &e), IMGSIM_OK);
    int inc = -1;
    assert_int_equal(imgsim_neighbours_build(w, 6, IMGSIM_METRIC_COSINE, 2, &inc, &e), IMGSIM_OK);
    imgsim_db_close(w);
    const char *ids[] = {"w300", "w401", "w609", "u650", "dup300"};
    for (int i = 0; i < 5; i++) {
        imgsim_query_opts o = opts(6, IMGSIM_METRIC_COSINE);
        imgsim_results t = by_id(ids[i], &o);
        o.mode = IMGSIM_SEARCH_EXACT;
        imgsim_results x = by_id(ids[i], &o);
        assert_true(t.from_table);
        assert_false(x.from_table);
        same_hits(&t, &x);
        assert_false(tu_has(&t, ids[i]));
        imgsim_results_free(&t);
        imgsim_results_free(&x);
    }
    imgsim_query_opts o = opts(12, IMGSIM_METRIC_COSINE);
    imgsim_results r = by_id("w401", &o);
    assert_false(r.from_table);
    assert_int_equal(r.n, 12);
    imgsim_results_free(&r);
    o = opts(5, IMGSIM_METRIC_L2);
    r = by_id("w401", &o);
    assert_false(r.from_table);
    expect_ordered(&r, o.metric);
    imgsim_results_free(&r);
    imgsim_where wh = {"label", "c6"};
    o = opts(5, IMGSIM_METRIC_COSINE);
    o.where = &wh;
    o.nwhere = 1;
    r = by_id("w401", &o);
    assert_false(r.from_table);
    assert_int_equal(count_label(&r, "c6"), 5);
    imgsim_results_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_id),
        cmocka_unit_test(test_by_vector),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_category_auto),
        cmocka_unit_test(test_exact_and_forced_index),
        cmocka_unit_test(test_neighbour_table), /* last: it adds a table to the collection */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

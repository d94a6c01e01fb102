/*
 * test_batch.c — the batch embedding pipeline (src/pipeline/batch.c, imgsim_embed_files) with
 * the real MobileNet-EdgeTPU model on real Wang-1k photos: results reach the callback in
 * input order with the vector of the right image (several decode threads, more files than
 * the decode ring holds); bad files (a truncated and a corrupted JPEG cut from a real photo,
 * a missing file, text named .jpg, an empty file; also a whole batch of them) are reported
 * with their path and skipped while every other file keeps its own vector; the callback
 * stopping the run early (first item, batch edges, with decoders blocked on a full ring)
 * delivers nothing after the stop and leaves the context usable; class probabilities,
 * raw RGB inputs and per-file crops; an empty list.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"

#define MODEL_FILE "mobilenet_edgetpu_224_1.0_uint8.tflite"
#define NDISTINCT 40

static imgsim_model *model;
static imgsim_ctx *ctx;
static int dim;
static int nums[NDISTINCT];        /* every 25th photo: all ten classes */
static const char **paths;         /* their paths */
static float *ref;                 /* each embedded alone, NDISTINCT x dim */
static char dir[4096];

static void embed_one(const char *path, const imgsim_prep *p, float *out)
{
    imgsim_prep dp;
    if (!p) {
        imgsim_model_prep(model, &dp);
        p = &dp;
    }
    imgsim_image img;
    imgsim_error e = {0};
    if (imgsim_image_load_file(path, p, &img, &e) != IMGSIM_OK)
        fail_msg("%s: %s", path, e.msg);
    if (imgsim_embed(ctx, &img, 1, out, NULL, &e) != IMGSIM_OK)
        fail_msg("embed %s: %s", path, e.msg);
    imgsim_image_free(&img);
}

static int setup(void **state)
{
    (void)state;
    model = tu_model(MODEL_FILE, IMGSIM_PRECISION_AUTO);
    ctx = tu_ctx(model);
    dim = imgsim_model_dim(model);
    for (int i = 0; i < NDISTINCT; i++)
        nums[i] = i * 25;
    paths = tu_wang_paths(nums, NDISTINCT);
    ref = malloc(sizeof(float) * NDISTINCT * (size_t)dim);
    assert_non_null(ref);
    for (int i = 0; i < NDISTINCT; i++)
        embed_one(paths[i], NULL, ref + (size_t)i * dim);
    snprintf(dir, sizeof dir, "%s", tu_fresh_dir("pipeline_batch"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ref);
    free(paths);
    tu_model_free(model, ctx);
    return 0;
}

/* What the callback saw. */
typedef struct seen {
    size_t n, cap;
    size_t *index;
    imgsim_status *status;
    char **error;
    float *vecs;                 /* n x dim; NaN rows for failures */
    const char *const *paths;
    size_t stop_at;              /* return 1 at this index (SIZE_MAX: never) */
    int with_probs;
    int best_class[8];           /* argmax of the probabilities, first 8 results */
    double prob_sum[8];
    int wh[8][2];
} seen;

static int on_result(void *user, const imgsim_result *r)
{
    seen *s = user;
    assert_true(s->n < s->cap);
    size_t k = s->n++;
    s->index[k] = r->index;
    s->status[k] = r->status;
    s->error[k] = r->error ? strdup(r->error) : NULL;
    assert_ptr_equal(r->source, s->paths[r->index]); /* the path as given */
    if (r->status == IMGSIM_OK) {
        assert_non_null(r->vec);
        assert_null(r->error);
        memcpy(s->vecs + k * (size_t)dim, r->vec, sizeof(float) * (size_t)dim);
        if (s->with_probs)
            assert_non_null(r->probs);
        else
            assert_null(r->probs);
        if (k < 8) {
            s->wh[k][0] = r->src_width;
            s->wh[k][1] = r->src_height;
        }
        if (r->probs && k < 8) {
            int nc = imgsim_model_num_classes(model), best = 0;
            double sum = 0;
            for (int c = 0; c < nc; c++) {
                sum += r->probs[c];
                if (r->probs[c] > r->probs[best])
                    best = c;
            }
            s->best_class[k] = best;
            s->prob_sum[k] = sum;
        }
    } else {
        assert_null(r->vec);
        assert_null(r->probs);
        assert_non_null(r->error);
        for (int d = 0; d < dim; d++)
            s->vecs[k * (size_t)dim + (size_t)d] = NAN;
    }
    return r->index == s->stop_at;
}

static seen run(const char *const *p, size_t n, const imgsim_batch_opts *o, size_t stop_at,
                imgsim_status want)
{
    seen s = {0};
    s.cap = n + 1;
    s.index = calloc(s.cap, sizeof *s.index);
    s.status = calloc(s.cap, sizeof *s.status);
    s.error = calloc(s.cap, sizeof *s.error);
    s.vecs = malloc(sizeof(float) * s.cap * (size_t)dim);
    assert_true(s.index && s.status && s.error && s.vecs);
    s.paths = p;
    s.stop_at = stop_at;
    s.with_probs = o && o->want_probs;
    imgsim_error e = {0};
    imgsim_status st = imgsim_embed_files(ctx, p, n, o, on_result, &s, &e);
    if (st != want)
        fail_msg("embed_files: %s (%s)", imgsim_status_name(st), e.msg);
    return s;
}

static void seen_free(seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->error[i]);
    free(s->index), free(s->status), free(s->error), free(s->vecs);
}

/* Result k carries the vector of distinct photo `want` (and is closer to it than to any
 * other of the distinct photos). */
static void expect_vec(const seen *s, size_t k, int want)
{
    const float *v = s->vecs + k * (size_t)dim;
    double same = tu_cosine(v, ref + (size_t)want * dim, dim);
    if (same < 0.999)
        fail_msg("result %zu: cosine %.5f to its own image %s", k, same, paths[want]);
    for (int j = 0; j < NDISTINCT; j++)
        if (j != want && tu_cosine(v, ref + (size_t)j * dim, dim) >= same)
            fail_msg("result %zu is closer to %s than to %s", k, paths[j], paths[want]);
}

static void test_order_matches_input(void **state)
{
    (void)state;
    imgsim_batch_opts o = {0};
    o.decode_threads = 4; /* decoders finish out of order */
    seen s = run(paths, NDISTINCT, &o, SIZE_MAX, IMGSIM_OK);
    assert_int_equal(s.n, NDISTINCT);
    for (size_t k = 0; k < s.n; k++) {
        assert_int_equal(s.index[k], k);
        assert_int_equal(s.status[k], IMGSIM_OK);
        expect_vec(&s, k, (int)k);
    }
    /* the sources' sizes: Wang-1k photos are 384x256, either way round */
    for (int k = 0; k < 8; k++)
        assert_true((s.wh[k][0] == 384 && s.wh[k][1] == 256) ||
                    (s.wh[k][0] == 256 && s.wh[k][1] == 384));
    seen_free(&s);
}

/* 150 files (each photo several times, shuffled) wrap the 64-slot decode ring twice. */
static void test_more_files_than_ring(void **state)
{
    (void)state;
    enum { N = 140 };
    const char *p[N];
    int which[N];
    for (int i = 0; i < N; i++) {
        which[i] = (i * 7 + i / NDISTINCT) % NDISTINCT;
        p[i] = paths[which[i]];
    }
    imgsim_batch_opts o = {0};
    o.decode_threads = 3;
    seen s = run(p, N, &o, SIZE_MAX, IMGSIM_OK);
    assert_int_equal(s.n, N);
    for (size_t k = 0; k < s.n; k++) {
        assert_int_equal(s.index[k], k);
        expect_vec(&s, k, which[k]);
    }
    seen_free(&s);
}

/* Broken copies of real photos, written into the scratch directory. */
static const char *broken(const char *name, int how)
{
    size_t n;
    uint8_t *d = tu_read(paths[3], &n);
    const char *out = tu_join(dir, name);
    if (how == 0) {        /* truncated: the first half */
        tu_write(out, d, n / 2);
    } else if (how == 1) { /* corrupted: the entropy-coded data overwritten */
        memset(d + 20, 0x5a, n - 20);
        tu_write(out, d, n);
    } else if (how == 2) { /* text with a .jpg name */
        tu_write(out, "not a picture\n", 14);
    } else {               /* empty */
        tu_write(out, "", 0);
    }
    free(d);
    return out;
}

static void test_bad_files_skipped(void **state)
{
    (void)state;
    enum { N = 24 };
    char bad[5][4096];
    snprintf(bad[0], sizeof bad[0], "%s", broken("truncated.jpg", 0));
    snprintf(bad[1], sizeof bad[1], "%s", broken("corrupt.jpg", 1));
    snprintf(bad[2], sizeof bad[2], "%s", broken("text.jpg", 2));
    snprintf(bad[3], sizeof bad[3], "%s", broken("empty.jpg", 3));
    snprintf(bad[4], sizeof bad[4], "%s", tu_join(dir, "missing.jpg"));
    /* bad ones mid-batch, at a batch edge (15, 16) and last */
    const int at[5] = {2, 9, 15, 16, N - 1};
    const char *p[N];
    int which[N];
    for (int i = 0, g = 0; i < N; i++) {
        which[i] = -1;
        for (int b = 0; b < 5; b++)
            if (at[b] == i)
                p[i] = bad[b], which[i] = -2 - b;
        if (which[i] == -1)
            which[i] = g, p[i] = paths[g++];
    }
    imgsim_batch_opts o = {0};
    o.decode_threads = 2;
    seen s = run(p, N, &o, SIZE_MAX, IMGSIM_OK);
    assert_int_equal(s.n, N);
    for (size_t k = 0; k < N; k++) {
        assert_int_equal(s.index[k], k);
        if (which[k] >= 0) {
            assert_int_equal(s.status[k], IMGSIM_OK);
            expect_vec(&s, k, which[k]);
        } else {
            int b = -2 - which[k];
            assert_int_equal(s.status[k], b == 4 ? IMGSIM_E_IO : IMGSIM_E_DECODE);
            if (!strstr(s.error[k], bad[b]))
                fail_msg("error for %s does not name it: %s", bad[b], s.error[k]);
        }
    }
    seen_free(&s);

    /* a whole batch of bad files, then good ones */
    const char *q[20];
    for (int i = 0; i < 20; i++)
        q[i] = i < 17 ? bad[i % 5] : paths[i];
    s = run(q, 20, &o, SIZE_MAX, IMGSIM_OK);
    assert_int_equal(s.n, 20);
    for (size_t k = 0; k < 20; k++) {
        assert_int_equal(s.index[k], k);
        if (k < 17) {
            assert_int_not_equal(s.status[k], IMGSIM_OK);
        } else {
            assert_int_equal(s.status[k], IMGSIM_OK);
            expect_vec(&s, k, (int)k);
        }
    }
    seen_free(&s);
}

/* The callback returning non-zero ends the run: nothing after it, status OK, and the
 * context still embeds correctly afterwards. */
static void test_early_stop(void **state)
{
    (void)state;
    enum { N = 100 };
    const char *p[N];
    for (int i = 0; i < N; i++)
        p[i] = paths[i % NDISTINCT];
    const size_t stops[] = {0, 15, 16, 37};
    for (size_t t = 0; t < sizeof stops / sizeof *stops; t++) {
        imgsim_batch_opts o = {0};
        o.decode_threads = 1 + (int)t % 3;
        seen s = run(p, N, &o, stops[t], IMGSIM_OK);
        assert_int_equal(s.n, stops[t] + 1);
        for (size_t k = 0; k < s.n; k++) {
            assert_int_equal(s.index[k], k);
            expect_vec(&s, k, (int)(k % NDISTINCT));
        }
        seen_free(&s);
    }
    seen s = run(paths, 5, NULL, SIZE_MAX, IMGSIM_OK);
    assert_int_equal(s.n, 5);
    for (size_t k = 0; k < 5; k++)
        expect_vec(&s, k, (int)k);
    seen_free(&s);
}

/* Raw 224x224 RGB inputs with class probabilities: the shared test pictures' known answers. */
static void test_raw_with_probs(void **state)
{
    (void)state;
    char bird[4096], flower[4096];
    snprintf(bird, sizeof bird, "%s", tu_shared("models/testdata/bird.rgb"));
    snprintf(flower, sizeof flower, "%s", tu_shared("models/testdata/sunflower.rgb"));
    const char *p[4] = {bird, flower, paths[0], bird};
    imgsim_batch_opts o = {0};
    o.raw_width = o.raw_height = 224;
    o.want_probs = 1;
    seen s = run(p, 4, &o, SIZE_MAX, IMGSIM_OK);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.status[0], IMGSIM_OK);
    assert_int_equal(s.status[1], IMGSIM_OK);
    assert_int_not_equal(s.status[2], IMGSIM_OK); /* a JPEG is not 224x224 raw bytes */
    assert_int_equal(s.status[3], IMGSIM_OK);
    assert_string_equal(imgsim_model_class_name(model, s.best_class[0]), "chickadee");
    assert_string_equal(imgsim_model_class_name(model, s.best_class[1]), "daisy");
    assert_int_equal(s.best_class[3], s.best_class[0]);
    /* the model's uint8 softmax: the many tiny classes round to 0, so the sum falls short of 1
     * (0.95 for the bird, 0.77 for the sunflower) but never exceeds it */
    for (int k = 0; k < 4; k++)
        if (k != 2)
            assert_true(s.prob_sum[k] > 0.5 && s.prob_sum[k] < 1.001);
    assert_true(tu_cosine(s.vecs, s.vecs + 3 * (size_t)dim, dim) > 0.9999);
    assert_true(tu_cosine(s.vecs, s.vecs + (size_t)dim, dim) < 0.9);
    seen_free(&s);

    /* without want_probs no probabilities are handed out (checked in the callback) */
    o.want_probs = 0;
    s = run(p, 2, &o, SIZE_MAX, IMGSIM_OK);
    assert_int_equal(s.n, 2);
    seen_free(&s);
}

/* One crop per file replaces the recipe's crop; w == 0 means none. */
static void test_crops(void **state)
{
    (void)state;
    const int crops[3][4] = {{0, 0, 128, 128}, {0, 0, 0, 0}, {100, 50, 200, 150}};
    const char *p[3] = {paths[5], paths[5], paths[6]};
    imgsim_batch_opts o = {0};
    o.crops = crops;
    seen s = run(p, 3, &o, SIZE_MAX, IMGSIM_OK);
    assert_int_equal(s.n, 3);
    float *want = malloc(sizeof(float) * (size_t)dim);
    assert_non_null(want);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(s.status[k], IMGSIM_OK);
        imgsim_prep pr;
        imgsim_model_prep(model, &pr);
        if (crops[k][2]) {
            pr.has_crop = 1;
            pr.crop_x = crops[k][0], pr.crop_y = crops[k][1];
            pr.crop_w = crops[k][2], pr.crop_h = crops[k][3];
        }
        embed_one(p[k], &pr, want);
        assert_true(tu_cosine(s.vecs + (size_t)k * dim, want, dim) > 0.9999);
    }
    expect_vec(&s, 1, 5);                                        /* uncropped */
    assert_true(tu_cosine(s.vecs, s.vecs + (size_t)dim, dim) < 0.99); /* the crop mattered */
    free(want);
    seen_free(&s);
}

static void test_empty_list(void **state)
{
    (void)state;
    seen s = run(paths, 0, NULL, SIZE_MAX, IMGSIM_OK);
    assert_int_equal(s.n, 0);
    seen_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_matches_input),
        cmocka_unit_test(test_more_files_than_ring),
        cmocka_unit_test(test_bad_files_skipped),
        cmocka_unit_test(test_early_stop),
        cmocka_unit_test(test_raw_with_probs),
        cmocka_unit_test(test_crops),
        cmocka_unit_test(test_empty_list),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

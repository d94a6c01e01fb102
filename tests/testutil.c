/*
 * testutil.c — helpers shared by the cmocka tests (see testutil.h).
 */
#include "testutil.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static __thread char ring[8][4096];
static __thread int ring_at;

/* `s` copied into the next ring buffer. */
static const char *ring_copy(const char *s)
{
    char *buf = ring[ring_at++ % 8];
    size_t n = strlen(s);
    if (n >= sizeof ring[0])
        n = sizeof ring[0] - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return buf;
}

static const char *base_of(const char *env, const char *def)
{
    const char *base = getenv(env);
    return base && *base ? base : def;
}

static const char *join(const char *env, const char *def, const char *rel)
{
    return tu_join(base_of(env, def), rel);
}

const char *tu_join(const char *dir, const char *name)
{
    char tmp[sizeof ring[0]]; /* dir or name may be ring buffers themselves */
    snprintf(tmp, sizeof tmp, "%s/%s", dir, name);
    return ring_copy(tmp);
}

const char *tu_shared(const char *rel) { return join("IMGSIM_SHARED", "../shared", rel); }
const char *tu_data(const char *rel) { return join("IMGSIM_DATA", "build/data", rel); }

const char *tu_out(const char *rel)
{
    mkdir(base_of("IMGSIM_TEST_OUT", "build/test-out"), 0755);
    return join("IMGSIM_TEST_OUT", "build/test-out", rel);
}

const char *tu_out_dir(const char *rel)
{
    const char *p = tu_out(rel);
    if (mkdir(p, 0755) != 0) {
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            fail_msg("cannot make directory %s", p);
    }
    return p;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void tu_rmtree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tu_fresh_dir(const char *rel)
{
    tu_rmtree(tu_out(rel));
    return tu_out_dir(rel);
}

const char *tu_extract(const char *tarball, const char *member)
{
    const char *path = tu_data(member);
    if (access(path, R_OK) == 0)
        return path;
    path = tu_out(member);
    if (access(path, R_OK) == 0)
        return path;
    char out[4096], tar[4096], dir[4096], cmd[13000];
    snprintf(out, sizeof out, "%s", path);
    snprintf(tar, sizeof tar, "%s", tu_shared(tu_join("data", tarball)));
    if (access(tar, R_OK) != 0)
        return NULL;
    snprintf(dir, sizeof dir, "%s", tu_out(""));
    snprintf(cmd, sizeof cmd, "tar -xzf '%s' -C '%s' '%s'", tar, dir, member);
    if (system(cmd) != 0 || access(out, R_OK) != 0)
        return NULL;
    return ring_copy(out);
}

uint8_t *tu_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
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

void tu_buf_put(tu_buf *b, const void *data, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
}

void tu_buf_cat(tu_buf *b, ...)
{
    va_list ap;
    va_start(ap, b);
    for (const char *s; (s = va_arg(ap, const char *));)
        tu_buf_put(b, s, strlen(s));
    va_end(ap);
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

double tu_mean_abs_diff(const imgsim_image *a, const imgsim_image *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    size_t n = (size_t)a->width * a->height * 3;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs(a->rgb[i] - b->rgb[i]);
    return s / n;
}

imgsim_model *tu_model(const char *file, imgsim_precision prec)
{
    imgsim_model_opts o;
    imgsim_model_opts_default(&o);
    o.precision = prec;
    o.threads = 2;
    imgsim_model *m = NULL;
    imgsim_error e = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/models/%s", base_of("IMGSIM_SHARED", "../shared"), file);
    if (imgsim_model_open(path, &o, &m, &e) != IMGSIM_OK)
        fail_msg("open %s: %s", file, e.msg);
    return m;
}

imgsim_ctx *tu_ctx(imgsim_model *m)
{
    imgsim_ctx *c = NULL;
    imgsim_error e = {0};
    if (imgsim_ctx_new(m, &c, &e) != IMGSIM_OK)
        fail_msg("context for %s: %s", imgsim_model_name(m), e.msg);
    return c;
}

void tu_model_free(imgsim_model *m, imgsim_ctx *c)
{
    imgsim_ctx_free(c);
    imgsim_model_close(m);
}

const char *tu_wang(int num)
{
    char rel[64];
    snprintf(rel, sizeof rel, "wang1k/images/%d.jpg", num);
    return tu_data(rel);
}

const char **tu_wang_paths(const int *nums, size_t n)
{
    /* formatted here, not through tu_wang: a caller's ring paths survive the call */
    const char *base = base_of("IMGSIM_DATA", "build/data");
    size_t one = strlen(base) + sizeof "/wang1k/images/-2147483648.jpg";
    const char **v = malloc(n * (sizeof *v + one) + 1);
    assert_non_null(v);
    char *s = (char *)(v + n);
    for (size_t i = 0; i < n; i++, s += one) {
        snprintf(s, one, "%s/wang1k/images/%d.jpg", base, nums[i]);
        v[i] = s;
    }
    return v;
}

typedef struct embed_sink {
    float *vecs;
    int dim;
    size_t done;
} embed_sink;

static int on_vector(void *user, const imgsim_result *r)
{
    embed_sink *s = user;
    if (r->status != IMGSIM_OK)
        fail_msg("%s: %s", r->source, r->error);
    memcpy(s->vecs + r->index * (size_t)s->dim, r->vec, (size_t)s->dim * sizeof(float));
    s->done++;
    return 0;
}

float *tu_embed_files(imgsim_ctx *ctx, int dim, const char *const *paths, size_t n)
{
    embed_sink sink = {malloc(sizeof(float) * (n ? n : 1) * (size_t)dim), dim, 0};
    assert_non_null(sink.vecs);
    imgsim_error e = {0};
    if (imgsim_embed_files(ctx, paths, n, NULL, on_vector, &sink, &e) != IMGSIM_OK)
        fail_msg("embed: %s", e.msg);
    assert_int_equal(sink.done, n);
    return sink.vecs;
}

/* Keeps the first failure's message (failing inside imgsim_db_add would skip its cleanup). */
static void on_ingest(void *user, imgsim_ingest_event ev, const imgsim_source *src,
                      const char *error)
{
    char *first = user;
    if (ev == IMGSIM_INGEST_FAILED && !first[0])
        snprintf(first, 1024, "%s: %s", src->id, error ? error : "?");
}

void tu_add_wang(imgsim_db *db, imgsim_ctx *ctx, const int *nums, int n)
{
    imgsim_source *src = calloc((size_t)n, sizeof *src);
    char (*ids)[16] = calloc((size_t)n, sizeof *ids), (*labels)[16] = calloc((size_t)n, 16);
    char (*meta)[32] = calloc((size_t)n, 32);
    const char **paths = tu_wang_paths(nums, (size_t)n);
    assert_true(src && ids && labels && meta);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "w%d", nums[i]);
        snprintf(labels[i], 16, "c%d", nums[i] / 100);
        snprintf(meta[i], 32, "{\"grp\": \"g%d\"}", nums[i] % 25);
        src[i].id = ids[i];
        src[i].path = paths[i];
        src[i].label = labels[i];
        src[i].meta_json = meta[i];
    }
    imgsim_error e = {0};
    imgsim_ingest_stats st;
    char first[1024] = "";
    imgsim_ingest_opts o = {0};
    o.on_item = on_ingest;
    o.user = first;
    imgsim_status s = imgsim_db_add(db, ctx, src, (size_t)n, &o, &st, &e);
    free(src), free(ids), free(labels), free(meta), free(paths);
    if (s != IMGSIM_OK)
        fail_msg("add: %s", e.msg);
    if (st.failed)
        fail_msg("%zu of %d photos failed to add, first %s", st.failed, n, first);
}

int tu_has(const imgsim_results *r, const char *id)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->hits[i].item.id, id))
            return 1;
    return 0;
}

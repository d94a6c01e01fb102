/*
 * model.c — the public model API: open a model (by registry name, manifest or file), pick
 * the embedding tensor, load class labels, and run images through inference contexts.
 *
 * Model files are TFLite (TFL3 identifier) or ONNX (a protobuf ModelProto: first byte 0x08,
 * the ir_version field, or a .onnx name). A bare ONNX file without a manifest gets
 * torchvision's preprocessing (ImageNet mean / std on 0..1 pixels) and, when it classifies
 * 1000 or 1001 classes, the imagenet_labels.txt beside it; a label file with one line more
 * than the classes has a background class first (label_offset 1).
 *
 * A model owns its graph IR and execution plan and is read-only once open; each
 * imgsim_ctx owns its XNNPACK operators, arena and thread pool, so several contexts (one per
 * thread) can share one model.
 */
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xnnpack.h>

#include "core/error.h"
#include "core/file.h"
#include "core/strbuf.h"
#include "model/exec/exec.h"
#include "model/ir/graph.h"
#include "model/model.h"
#include "model/onnx/onnx.h"
#include "model/registry.h"
#include "model/tflite/tflite.h"

#define MAX_MODEL_BYTES ((size_t)2 << 30)
#define CTX_BATCH 16

#define MAX_PARTS 4

struct imgsim_model {
    imgsim_manifest man;
    ir_graph g;
    exec_plan plan;
    int emb, dim;
    int nclasses;      /* classifier outputs (0 if none) */
    int onnx;          /* read from an ONNX file */
    char **labels;     /* nlabels entries, may be NULL */
    int nlabels;
    int normalize;
    int threads;
    /* A composite (man.parts non-empty): the parts embed, this model concatenates. */
    imgsim_model *part[MAX_PARTS];
    int nparts;
    int cls_part;      /* part giving the classes, or -1 */
};

struct imgsim_ctx {
    imgsim_model *m;
    exec_ctx *ex;
    float *scratch;
    imgsim_ctx *part[MAX_PARTS];   /* a composite's part contexts */
    float *tmp;                    /* one chunk of one part's vectors */
};

static pthread_once_t xnn_once = PTHREAD_ONCE_INIT;
static enum xnn_status xnn_init_status;

static void xnn_init_once(void)
{
    xnn_init_status = xnn_initialize(NULL);
}

imgsim_status model_xnn_init(imgsim_error *err)
{
    pthread_once(&xnn_once, xnn_init_once);
    if (xnn_init_status != xnn_status_success)
        return error_set(err, IMGSIM_E_INTERNAL,
                         "XNNPACK failed to initialise (status %d): unsupported CPU?",
                         (int)xnn_init_status);
    return IMGSIM_OK;
}

void imgsim_model_opts_default(imgsim_model_opts *o)
{
    memset(o, 0, sizeof *o);
}

static imgsim_status read_all(const char *path, uint8_t **out, size_t *len, imgsim_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return error_set(err, errno == ENOENT ? IMGSIM_E_NOTFOUND : IMGSIM_E_IO, "%s: %s", path,
                         strerror(errno));
    if (!S_ISREG(st.st_mode))
        return error_set(err, IMGSIM_E_IO, "%s: not a regular file", path);
    if ((size_t)st.st_size > MAX_MODEL_BYTES)
        return error_set(err, IMGSIM_E_TOO_BIG, "%s: %lld bytes is over the 2 GiB model limit",
                         path, (long long)st.st_size);
    if (st.st_size == 0)
        return error_set(err, IMGSIM_E_MODEL, "%s: empty file", path);
    uint8_t *b;
    size_t n;
    imgsim_status s = file_read_all(path, MAX_MODEL_BYTES, &b, &n, err);
    if (s == IMGSIM_E_TOO_BIG) /* grew since the stat */
        return error_set(err, IMGSIM_E_TOO_BIG, "%s: %zu bytes is over the 2 GiB model limit",
                         path, n);
    if (s == IMGSIM_E_NOMEM)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory reading %s", path);
    if (s != IMGSIM_OK) {
        error_prefix(err, "%s", path);
        return s;
    }
    if (n < (size_t)st.st_size) {
        free(b);
        return error_set(err, IMGSIM_E_IO, "%s: short read", path);
    }
    *out = b;
    *len = n;
    return IMGSIM_OK;
}

/* Does tensor name `full` answer to `want`? Exact, or a '/'-boundary suffix of the name or
 * of one of its ';'-separated parts (TFLite joins fused node names with ';'). */
static int name_matches(const char *full, const char *want)
{
    size_t wl = strlen(want);
    const char *part = full;
    while (part) {
        const char *end = strchr(part, ';');
        size_t pl = end ? (size_t)(end - part) : strlen(part);
        if (pl == wl && memcmp(part, want, wl) == 0)
            return 1;
        if (pl > wl && part[pl - wl - 1] == '/' && memcmp(part + pl - wl, want, wl) == 0)
            return 1;
        part = end ? end + 1 : NULL;
    }
    return 0;
}

static imgsim_status find_layer(const ir_graph *g, const char *want, int *out, imgsim_error *err)
{
    int found = -1, count = 0;
    int exact = ir_find_tensor(g, want);
    if (exact >= 0 && !g->t[exact].data) {
        *out = exact;
        return IMGSIM_OK;
    }
    for (int i = 0; i < g->nt; i++)
        if (!g->t[i].data && name_matches(g->t[i].name, want)) {
            found = i;
            count++;
        }
    if (count == 1 && (found == g->input || ir_producer(g, found) >= 0)) {
        *out = found;
        return IMGSIM_OK;
    }
    if (count > 1)
        return error_set(err, IMGSIM_E_ARG, "layer '%s' is ambiguous (%d tensors match)", want,
                         count);
    return error_set(err, IMGSIM_E_NOTFOUND,
                     "no tensor named '%s' (imgsim model info lists the layers)", want);
}

/* Default embedding: the last global pooling (output 1x1 spatially) in the graph — the
 * feature that feeds the classifier — else the input of the last fully connected layer,
 * else the graph output. */
static int default_layer(const ir_graph *g)
{
    for (int i = g->nops - 1; i >= 0; i--) {
        const ir_op *op = &g->ops[i];
        const ir_tensor *y = &g->t[op->out];
        int pool = op->kind == IR_MEAN || op->kind == IR_AVG_POOL;
        if (pool && (y->rank == 2 || (y->rank == 4 && y->shape[1] == 1 && y->shape[2] == 1)))
            return op->out;
    }
    /* No global pool (VGG-style heads): the input of the last fully connected layer, the
     * feature the classifier reads, unless that is the image itself. */
    for (int i = g->nops - 1; i >= 0; i--)
        if (g->ops[i].kind == IR_FULLY_CONNECTED) {
            int x = g->ops[i].in[0];
            return x != g->input && ir_producer(g, x) >= 0 ? x : g->output;
        }
    return g->output;
}

static imgsim_status load_labels(imgsim_model *m, const char *dir, imgsim_error *err)
{
    if (!*m->man.labels)
        return IMGSIM_OK;
    char *path = g_build_filename(dir, m->man.labels, NULL);
    gchar *text = NULL;
    gsize len = 0;
    gboolean ok = g_file_get_contents(path, &text, &len, NULL);
    g_free(path);
    if (!ok) /* labels are optional: classify reports the class index instead */
        return IMGSIM_OK;
    gchar **lines = g_strsplit(text, "\n", -1);
    g_free(text);
    if (!lines)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    int n = 0;
    while (lines[n])
        n++;
    while (n > 0 && !*g_strstrip(lines[n - 1]))
        n--;
    m->labels = calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!m->labels) {
        g_strfreev(lines);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        char *l = g_strstrip(lines[i]);
        /* "123 name" or "123: name" label files: drop the leading id */
        char *sp = l;
        while (*sp >= '0' && *sp <= '9')
            sp++;
        if (sp != l && (*sp == ' ' || *sp == ':' || *sp == '\t'))
            l = g_strstrip(sp + 1);
        m->labels[i] = strdup(l);
        if (!m->labels[i]) {
            g_strfreev(lines);
            return error_set(err, IMGSIM_E_NOMEM, "out of memory");
        }
        m->nlabels = i + 1;
    }
    g_strfreev(lines);
    /* one label more than classes: the file starts with a background class */
    if (m->nclasses > 0 && m->nlabels == m->nclasses + 1 && m->man.label_offset == 0)
        m->man.label_offset = 1;
    return IMGSIM_OK;
}

/* Resolve `name_or_path` into a manifest and the model file's path (caller frees). */
static imgsim_status resolve(const char *spec, imgsim_manifest *man, char **file, char **dir,
                             int *bare, imgsim_error *err)
{
    *bare = 0;
    struct stat st;
    imgsim_status s;
    if (stat(spec, &st) == 0 && S_ISREG(st.st_mode)) {
        *dir = g_path_get_dirname(spec);
        if (g_str_has_suffix(spec, ".json")) {
            if ((s = registry_read_manifest(spec, man, err)) != IMGSIM_OK)
                return s;
            *file = g_build_filename(*dir, man->file, NULL);
            return IMGSIM_OK;
        }
        /* A bare model file: a known file (by SHA-256) brings its recipe and labels. */
        char hex[65];
        if ((s = imgsim_sha256_file(spec, hex, err)) != IMGSIM_OK)
            return s;
        const imgsim_manifest *b = registry_builtin_by_sha(hex);
        if (b) {
            *man = *b;
        } else {
            memset(man, 0, sizeof *man);
            char *base = g_path_get_basename(spec);
            snprintf(man->name, sizeof man->name, "%s", base);
            snprintf(man->file, sizeof man->file, "%s", base);
            g_free(base);
            snprintf(man->sha256, sizeof man->sha256, "%s", hex);
            imgsim_prep_default(&man->prep);
            man->prep.size = 0; /* taken from the model's input shape */
            for (int k = 0; k < 3; k++) {
                man->mean[k] = 127.5f;
                man->std[k] = 127.5f;
            }
            *bare = 1;
        }
        *file = g_strdup(spec);
        return IMGSIM_OK;
    }
    if (strchr(spec, '/'))
        return error_set(err, IMGSIM_E_NOTFOUND, "%s: no such model file", spec);
    char *mdir = imgsim_model_dir();
    if (!mdir)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    char *mp = g_strdup_printf("%s/%s.json", mdir, spec);
    if (access(mp, R_OK) != 0) {
        s = error_set(err, IMGSIM_E_NOTFOUND,
                      registry_builtin(spec)
                            ? "model '%s' is not installed in %s; run: imgsim model install %s [--from DIR]"
                            : "unknown model '%s' (looked in %s; see: imgsim model list)%.0s",
                      spec, mdir, spec);
        g_free(mp);
        free(mdir);
        return s;
    }
    s = registry_read_manifest(mp, man, err);
    g_free(mp);
    if (s == IMGSIM_OK) {
        *file = g_build_filename(mdir, man->file, NULL);
        *dir = g_strdup(mdir);
    }
    free(mdir);
    return s;
}

static imgsim_status open_composite(const char *spec, const imgsim_manifest *bm,
                                    const imgsim_model_opts *o, imgsim_model **out,
                                    imgsim_error *err);

/* A bare ONNX file: torchvision's recipe, pixels / 255 then ImageNet mean / std, which in
 * the manifest's units (x = (pixel - mean) / std) is mean 255 * m, std 255 * s. */
static void onnx_defaults(imgsim_model *m)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    for (int k = 0; k < 3; k++) {
        m->man.mean[k] = 255.0f * mean[k];
        m->man.std[k] = 255.0f * std[k];
    }
}

imgsim_status imgsim_model_open(const char *spec, const imgsim_model_opts *o, imgsim_model **out,
                                imgsim_error *err)
{
    *out = NULL;
    imgsim_model_opts defo;
    if (!o) {
        imgsim_model_opts_default(&defo);
        o = &defo;
    }
    if (!spec || !*spec)
        spec = imgsim_default_model();
    imgsim_status s = model_xnn_init(err);
    if (s != IMGSIM_OK)
        return s;
    const imgsim_manifest *bm = registry_builtin(spec);
    struct stat sb;
    if ((bm && *bm->parts) || (strchr(spec, '+') && stat(spec, &sb) != 0))
        return open_composite(spec, bm, o, out, err);
    imgsim_model *m = calloc(1, sizeof *m);
    if (!m)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    char *file = NULL, *dir = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int bare = 0;
    s = resolve(spec, &m->man, &file, &dir, &bare, err);
    if (s == IMGSIM_OK)
        s = read_all(file, &bytes, &len, err);
    if (s == IMGSIM_OK) {
        if (len >= 8 && memcmp(bytes + 4, "TFL3", 4) == 0) {
            s = tflite_read(bytes, len, &m->g, err); /* takes `bytes` */
        } else if (bytes[0] == 0x08 || g_str_has_suffix(file, ".onnx")) {
            char *fdir = g_path_get_dirname(file); /* external data lives beside it */
            m->onnx = 1;
            s = onnx_read(bytes, len, fdir, &m->g, err); /* takes `bytes` */
            g_free(fdir);
            if (s == IMGSIM_OK && bare)
                onnx_defaults(m);
        } else {
            free(bytes);
            s = error_set(err, IMGSIM_E_MODEL,
                          "not a TFLite or ONNX model (unknown file format)");
        }
        if (s != IMGSIM_OK)
            error_prefix(err, "%s", file);
    }
    if (s == IMGSIM_OK) {
        const char *layer = o->layer && *o->layer ? o->layer : m->man.layer;
        if (*layer)
            s = find_layer(&m->g, layer, &m->emb, err);
        else
            m->emb = default_layer(&m->g);
    }
    if (s == IMGSIM_OK) {
        const ir_tensor *in = &m->g.t[m->g.input];
        if (m->man.prep.size == 0)
            m->man.prep.size = (int)in->shape[1];
        if (in->shape[1] != m->man.prep.size || in->shape[2] != m->man.prep.size)
            s = error_set(err, IMGSIM_E_MODEL, "manifest size %d does not match input %lldx%lld",
                          m->man.prep.size, (long long)in->shape[1], (long long)in->shape[2]);
    }
    if (s == IMGSIM_OK)
        s = exec_plan_make(&m->g, o->precision, m->emb, &m->plan, err);
    if (s == IMGSIM_OK) {
        m->dim = (int)ir_numel(&m->g.t[m->emb]);
        /* A classifier ends in a softmax over more than one class, or outputs logits. */
        int p = ir_producer(&m->g, m->g.output);
        if (((p >= 0 && m->g.ops[p].kind == IR_SOFTMAX) || m->g.output_logits) &&
            m->g.output != m->emb)
            m->nclasses = (int)ir_numel(&m->g.t[m->g.output]);
        if (bare && m->onnx && !*m->man.labels && (m->nclasses == 1000 || m->nclasses == 1001))
            snprintf(m->man.labels, sizeof m->man.labels, "imagenet_labels.txt");
        m->normalize = !o->no_normalize;
        m->threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
        if (m->threads < 1)
            m->threads = 1;
        s = load_labels(m, dir, err);
    }
    g_free(file);
    g_free(dir);
    if (s != IMGSIM_OK) {
        imgsim_model_close(m);
        return s;
    }
    *out = m;
    return IMGSIM_OK;
}

/* A composite model: open every part (each L2-normalised), check they take the same input,
 * and present them as one model whose embedding is the concatenation. */
static imgsim_status open_composite(const char *spec, const imgsim_manifest *bm,
                                    const imgsim_model_opts *o, imgsim_model **out,
                                    imgsim_error *err)
{
    if (o->layer && *o->layer)
        return error_set(err, IMGSIM_E_ARG,
                         "%s is a composite model: --layer applies to single models only", spec);
    imgsim_model *m = calloc(1, sizeof *m);
    if (!m)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    if (bm)
        m->man = *bm;
    else
        snprintf(m->man.name, sizeof m->man.name, "%s", spec);
    if (!bm)
        snprintf(m->man.parts, sizeof m->man.parts, "%s", spec);
    char parts[sizeof m->man.parts], *save = NULL;
    snprintf(parts, sizeof parts, "%s", m->man.parts);
    imgsim_model_opts po = *o;
    po.no_normalize = 0; /* parts' raw scales differ: each is normalised before joining */
    imgsim_status s = IMGSIM_OK;
    m->cls_part = -1;
    for (char *t = strtok_r(parts, "+", &save); t && s == IMGSIM_OK; t = strtok_r(NULL, "+", &save)) {
        if (m->nparts == MAX_PARTS) {
            s = error_set(err, IMGSIM_E_ARG, "%s: at most %d parts", spec, MAX_PARTS);
            break;
        }
        const imgsim_manifest *pm = registry_builtin(t);
        if (pm && *pm->parts) {
            s = error_set(err, IMGSIM_E_ARG, "%s: a part cannot itself be composite", spec);
            break;
        }
        imgsim_model *p = NULL;
        if ((s = imgsim_model_open(t, &po, &p, err)) != IMGSIM_OK)
            break;
        m->part[m->nparts++] = p;
        if (m->nparts == 1) {
            m->man.prep = p->man.prep;
            m->threads = p->threads;
        } else if (p->man.prep.size != m->man.prep.size || p->man.prep.mode != m->man.prep.mode) {
            s = error_set(err, IMGSIM_E_ARG, "%s: parts %s and %s take different inputs", spec,
                          m->part[0]->man.name, p->man.name);
        }
        m->dim += p->dim;
        if (m->cls_part < 0 && p->nclasses > 0) {
            m->cls_part = m->nparts - 1;
            m->nclasses = p->nclasses;
        }
    }
    if (s == IMGSIM_OK && m->nparts < 2)
        s = error_set(err, IMGSIM_E_ARG, "%s: a composite needs two or more parts", spec);
    if (s != IMGSIM_OK) {
        imgsim_model_close(m);
        return s;
    }
    m->normalize = !o->no_normalize;
    *out = m;
    return IMGSIM_OK;
}

void imgsim_model_close(imgsim_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nparts; i++)
        imgsim_model_close(m->part[i]);
    exec_plan_free(&m->plan);
    ir_graph_free(&m->g);
    for (int i = 0; i < m->nlabels; i++)
        free(m->labels[i]);
    free(m->labels);
    free(m);
}

const char *imgsim_model_name(const imgsim_model *m) { return m->man.name; }
int imgsim_model_dim(const imgsim_model *m) { return m->dim; }
int imgsim_model_num_classes(const imgsim_model *m) { return m->nclasses; }

const char *imgsim_model_class_name(const imgsim_model *m, int i)
{
    if (m->nparts)
        return m->cls_part >= 0 ? imgsim_model_class_name(m->part[m->cls_part], i) : NULL;
    int k = i + m->man.label_offset;
    return k >= 0 && k < m->nlabels ? m->labels[k] : NULL;
}

void imgsim_model_prep(const imgsim_model *m, imgsim_prep *p)
{
    *p = m->man.prep;
}

imgsim_model *model_of_ctx(const imgsim_ctx *c) { return c->m; }

static char *describe_composite(const imgsim_model *m)
{
    strbuf s = STRBUF_INIT;
    strbuf_printf(&s, "name:        %s\ndescription: %s\n", m->man.name,
                  *m->man.description ? m->man.description : "composite model");
    strbuf_printf(&s, "embedding:   concatenation of %d L2-normalised parts (%d-d%s)\n",
                  m->nparts, m->dim, m->normalize ? ", L2-normalised" : "");
    strbuf_printf(&s, "classes:     %d%s%s\n", m->nclasses,
                  m->cls_part >= 0 ? " from " : "",
                  m->cls_part >= 0 ? m->part[m->cls_part]->man.name : "");
    for (int i = 0; i < m->nparts; i++) {
        char *d = imgsim_model_describe(m->part[i]);
        strbuf_printf(&s, "\n--- part %d of %d\n%s", i + 1, m->nparts, d ? d : "");
        free(d);
    }
    return strbuf_take(&s);
}

static void append_shape(strbuf *s, const ir_tensor *t)
{
    strbuf_putc(s, '[');
    for (int d = 0; d < t->rank; d++)
        strbuf_printf(s, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    strbuf_putc(s, ']');
}

/* ONNX models: the output, and the tensors worth embedding — global pools (1x1 spatial or
 * 2-d) and fully connected layers — with the automatic choice marked. */
static void describe_onnx(const imgsim_model *m, strbuf *s)
{
    const ir_graph *g = &m->g;
    const ir_tensor *out = &g->t[g->output];
    strbuf_printf(s, "format:      ONNX, NCHW converted to NHWC at load%s\n",
                  g->input_from_float ? "; quantized input fed normalised floats" : "");
    strbuf_printf(s, "output:      %s %s ", out->name, ir_dtype_name(out->dtype));
    append_shape(s, out);
    strbuf_printf(s, "%s\n", g->output_logits ? " logits (softmax applied for classes)" : "");
    strbuf_puts(s, "embedding candidates (--layer):\n");
    for (int i = 0; i < g->nops; i++) {
        const ir_op *op = &g->ops[i];
        const ir_tensor *t = &g->t[op->out];
        int pool = (op->kind == IR_MEAN || op->kind == IR_AVG_POOL || op->kind == IR_MAX_POOL) &&
                   (t->rank == 2 || (t->rank == 4 && t->shape[1] == 1 && t->shape[2] == 1));
        if (!pool && op->kind != IR_FULLY_CONNECTED && op->out != m->emb)
            continue;
        strbuf_printf(s, "  %s %-16s ", op->out == m->emb ? "*" : " ", ir_op_name(op->kind));
        append_shape(s, t);
        strbuf_printf(s, " %s (%lld-d)%s\n", t->name, (long long)ir_numel(t),
                      op->out == m->emb ? "  <- default" : "");
    }
}

char *imgsim_model_describe(const imgsim_model *m)
{
    if (m->nparts)
        return describe_composite(m);
    const ir_graph *g = &m->g;
    strbuf s = STRBUF_INIT;
    int counts[IR_OP_COUNT] = {0};
    for (int i = 0; i < g->nops; i++)
        counts[g->ops[i].kind]++;
    const ir_tensor *in = &g->t[g->input];
    strbuf_printf(&s, "name:        %s\n", m->man.name);
    if (*m->man.description)
        strbuf_printf(&s, "description: %s\n", m->man.description);
    strbuf_printf(&s, "input:       %s %s [1,%lld,%lld,3]%s\n", in->name,
                  ir_dtype_name(in->dtype), (long long)in->shape[1],
                  (long long)in->shape[2], in->quantized ? " quantized" : "");
    strbuf_printf(&s, "recipe:      %s %d (shorter side %d)\n",
                  m->man.prep.mode == IMGSIM_RESIZE_SQUASH ? "squash to" : "centre crop",
                  m->man.prep.size,
                  m->man.prep.resize_shorter ? m->man.prep.resize_shorter
                                             : (int)lround(m->man.prep.size / 0.875));
    strbuf_printf(&s, "execution:   %s on XNNPACK, %d threads\n",
                  m->plan.quant ? "uint8 quantized" : "fp32", m->threads);
    strbuf_printf(&s, "embedding:   %s (%d-d%s)\n", g->t[m->emb].name, m->dim,
                  m->normalize ? ", L2-normalised" : "");
    strbuf_printf(&s, "classes:     %d\n", m->nclasses);
    if (m->onnx)
        describe_onnx(m, &s);
    strbuf_puts(&s, "operators:  ");
    for (int k = 0; k < IR_OP_COUNT; k++)
        if (counts[k])
            strbuf_printf(&s, " %s x%d", ir_op_name((ir_op_kind)k), counts[k]);
    strbuf_printf(&s, "\nlayers (usable with --layer):\n");
    for (int i = 0; i < g->nops; i++) {
        const ir_op *op = &g->ops[i];
        const ir_tensor *t = &g->t[op->out];
        strbuf_printf(&s, "  %-16s ", ir_op_name(op->kind));
        append_shape(&s, t);
        const char *semi = strchr(t->name, ';');
        strbuf_printf(&s, " %.*s\n", semi ? (int)(semi - t->name) : (int)strlen(t->name),
                      t->name);
    }
    return strbuf_take(&s);
}

/* ---------------------------------------------------------------- contexts */

imgsim_status imgsim_ctx_new(imgsim_model *m, imgsim_ctx **out, imgsim_error *err)
{
    *out = NULL;
    imgsim_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    c->m = m;
    if (m->nparts) {
        imgsim_status s = IMGSIM_OK;
        int maxd = 0;
        for (int i = 0; i < m->nparts && s == IMGSIM_OK; i++) {
            s = imgsim_ctx_new(m->part[i], &c->part[i], err);
            if (m->part[i]->dim > maxd)
                maxd = m->part[i]->dim;
        }
        if (s == IMGSIM_OK && !(c->tmp = malloc(sizeof(float) * CTX_BATCH * (size_t)maxd)))
            s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
        if (s != IMGSIM_OK) {
            imgsim_ctx_free(c);
            return s;
        }
        *out = c;
        return IMGSIM_OK;
    }
    int ncls = m->nclasses;
    c->scratch = malloc(sizeof(float) * (size_t)(ncls > 0 ? ncls : 1));
    imgsim_status s = c->scratch ? exec_ctx_new(&m->plan, m->threads, CTX_BATCH, &c->ex, err)
                                 : error_set(err, IMGSIM_E_NOMEM, "out of memory");
    if (s != IMGSIM_OK) {
        imgsim_ctx_free(c);
        return s;
    }
    *out = c;
    return IMGSIM_OK;
}

void imgsim_ctx_free(imgsim_ctx *c)
{
    if (!c)
        return;
    for (int i = 0; i < MAX_PARTS; i++)
        imgsim_ctx_free(c->part[i]);
    free(c->tmp);
    exec_ctx_free(c->ex);
    free(c->scratch);
    free(c);
}

static void l2_normalize(float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    if (s <= 0)
        return;
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < n; i++)
        v[i] *= inv;
}

/* Logits -> probabilities, in place. */
static void softmax(float *v, int n)
{
    float mx = v[0];
    for (int i = 1; i < n; i++)
        mx = v[i] > mx ? v[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) {
        v[i] = expf(v[i] - mx);
        s += v[i];
    }
    for (int i = 0; i < n; i++)
        v[i] = (float)(v[i] / s);
}

/* A composite: each part embeds the chunk; its (normalised) vectors land side by side. */
static imgsim_status embed_composite(imgsim_ctx *c, const imgsim_image *imgs, int n, float *out,
                                     float *logits, imgsim_error *err)
{
    imgsim_model *m = c->m;
    for (int done = 0; done < n;) {
        int b = n - done < CTX_BATCH ? n - done : CTX_BATCH;
        int off = 0;
        for (int p = 0; p < m->nparts; p++) {
            int pd = m->part[p]->dim;
            float *lg = p == m->cls_part && logits ? logits + (size_t)done * (size_t)m->nclasses : NULL;
            imgsim_status s = imgsim_embed(c->part[p], imgs + done, b, c->tmp, lg, err);
            if (s != IMGSIM_OK)
                return s;
            for (int i = 0; i < b; i++)
                memcpy(out + (size_t)(done + i) * (size_t)m->dim + off,
                       c->tmp + (size_t)i * (size_t)pd, sizeof(float) * (size_t)pd);
            off += pd;
        }
        if (m->normalize)
            for (int i = 0; i < b; i++)
                l2_normalize(out + (size_t)(done + i) * (size_t)m->dim, m->dim);
        done += b;
    }
    return IMGSIM_OK;
}

imgsim_status imgsim_embed(imgsim_ctx *c, const imgsim_image *imgs, int n, float *out,
                           float *logits, imgsim_error *err)
{
    imgsim_model *m = c->m;
    if (m->nparts)
        return embed_composite(c, imgs, n, out, logits, err);
    int size = m->man.prep.size;
    for (int i = 0; i < n; i++)
        if (!imgs[i].rgb || imgs[i].width != size || imgs[i].height != size)
            return error_set(err, IMGSIM_E_ARG, "image %d is %dx%d; the model takes %dx%d", i,
                             imgs[i].width, imgs[i].height, size, size);
    for (int done = 0; done < n;) {
        int b = n - done < CTX_BATCH ? n - done : CTX_BATCH;
        const uint8_t *px[CTX_BATCH];
        for (int i = 0; i < b; i++)
            px[i] = imgs[done + i].rgb;
        imgsim_status s = exec_run(c->ex, px, b, m->man.mean, m->man.std, err);
        if (s != IMGSIM_OK)
            return s;
        for (int i = 0; i < b; i++) {
            float *v = out + (size_t)(done + i) * (size_t)m->dim;
            exec_read(c->ex, m->emb, i, v);
            if (m->normalize)
                l2_normalize(v, m->dim);
            if (logits && m->nclasses > 0) {
                float *lg = logits + (size_t)(done + i) * (size_t)m->nclasses;
                exec_read(c->ex, m->g.output, i, lg);
                if (m->g.output_logits)
                    softmax(lg, m->nclasses);
            }
        }
        done += b;
    }
    return IMGSIM_OK;
}

/*
 * registry.c — the models imgsim knows by name, where installed models live, and
 * `imgsim model install` (copy from a local directory or download, both SHA-256 verified).
 *
 * Installed layout, one directory ($IMGSIM_MODEL_DIR, else $XDG_DATA_HOME/imgsim/models,
 * else ~/.local/share/imgsim/models):
 *     NAME.tflite   the model file (name from the manifest; .onnx for the ONNX zoo models)
 *     NAME.json     its manifest (written last, so a present manifest means a complete install)
 *     imagenet_labels.txt
 * Files are written to a temporary name, verified, then renamed: an interrupted install
 * leaves no half-written model behind.
 */
#include "model/registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

#define LABELS_SHA "b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1"
#define LABELS_URL "https://raw.githubusercontent.com/google-coral/test_data/master/imagenet_labels.txt"

/* size, shorter side, mode, crop..., limits. Squash (whole image, no crop) retrieves better
 * than shorter-side + centre crop: Wang-1k P@10 0.968 vs 0.967, Myntra 0.730 vs 0.711
 * (docs/MODELS.md). */
#define PREP_224 {224, 0, IMGSIM_RESIZE_SQUASH, 0, 0, 0, 0, 0, 0, 0}
/* The torchvision / ONNX model zoo recipe: shorter side 256, centre crop 224. */
#define PREP_256_224 {224, 256, IMGSIM_RESIZE_SHORTER_CROP, 0, 0, 0, 0, 0, 0, 0}
/* ImageNet mean/std in 0..255 units: (p/255 - 0.485) / 0.229 == (p - 123.675) / 58.395. */
#define IMAGENET_MEAN {123.675f, 116.28f, 103.53f}
#define IMAGENET_STD {58.395f, 57.12f, 57.375f}
/* The ONNX model zoo (github.com/onnx/models, Git LFS; "raw" URLs redirect to the LFS
 * media). SHA-256 and sizes from the zoo's ONNX_HUB_MANIFEST.json / LFS pointers. Their
 * classifiers have 1000 classes; imagenet_labels.txt has 1001 lines with "background" first,
 * hence label_offset 1. */
#define ZOO "https://github.com/onnx/models/raw/main/validated/vision/classification/"

static const imgsim_manifest builtins[] = {
    /* The default: the best retrieval measured here on all three labelled collections
     * (docs/QUALITY.md); classes come from MobileNet-EdgeTPU. */
    {"edgetpu_v1", "", "", "", "", "",
     "MobileNet-EdgeTPU + MobileNetV1 embedder, concatenated, 2304-d embedding (default)",
     PREP_224, {0, 0, 0}, {1, 1, 1}, 0, "mobilenet_edgetpu+mobilenet_v1_embedder"},
    {"mobilenet_edgetpu", "mobilenet_edgetpu_224_1.0_uint8.tflite",
     "5d63cb8ebd518217794221bbcb929ebb89c5ec37d736429a95650e88f9e904fa",
     "https://github.com/mlcommons/mobile_models/raw/main/v0_7/tflite/"
     "mobilenet_edgetpu_224_1.0_uint8.tflite",
     "imagenet_labels.txt", "MobilenetEdgeTPU/Logits/AvgPool",
     "MobileNet-EdgeTPU 1.0, uint8, ImageNet top-1 75.6%, 1280-d embedding", PREP_224,
     {127.5f, 127.5f, 127.5f}, {127.5f, 127.5f, 127.5f}, 0, ""},
    {"mobilenet_v2", "mobilenet_v2_1.0_224_quant.tflite",
     "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776",
     "https://github.com/google-coral/test_data/raw/master/mobilenet_v2_1.0_224_quant.tflite",
     "imagenet_labels.txt", "MobilenetV2/Logits/AvgPool",
     "MobileNetV2 1.0, uint8, ImageNet top-1 70.8%, 1280-d embedding", PREP_224,
     {127.5f, 127.5f, 127.5f}, {127.5f, 127.5f, 127.5f}, 0, ""},
    {"mobilenet_v1_embedder", "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite",
     "f409ef4f73fcbb9667841965623c5c8524aac33d41b9bf5f3667161fb4a76319",
     "https://github.com/google-coral/test_data/raw/master/"
     "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite",
     "", "", "MobileNetV1 1.0 embedding extractor, uint8, 1024-d", PREP_224,
     {127.5f, 127.5f, 127.5f}, {127.5f, 127.5f, 127.5f}, 0, ""},
    {"mobilenet_v3_small_embedder", "mobilenet_v3_small_075_224_embedder.tflite",
     "0f786f8eb8bcecd1f9c5bc50f00a5e6b9f62600edb503ad3bfff5f51035b0ea5",
     "https://storage.googleapis.com/mediapipe-assets/mobilenet_v3_small_075_224_embedder.tflite",
     "", "", "MediaPipe MobileNetV3-Small 0.75 image embedder, float32, 1024-d", PREP_224,
     {0.0f, 0.0f, 0.0f}, {255.0f, 255.0f, 255.0f}, 0, ""},
    /* 102,583,340 bytes; MXNet (Gluon) export, opset 7, input "data" [N,3,224,224] */
    {"resnet50", "resnet50-v1-7.onnx",
     "af16a04a6ec48ac494065d4439fe9dea590d337b9ca6dc328160ccf04a217b9c",
     ZOO "resnet/model/resnet50-v1-7.onnx", "imagenet_labels.txt", "resnetv17_pool1_fwd",
     "ResNet-50 v1 (ONNX model zoo), float32, 2048-d embedding", PREP_256_224, IMAGENET_MEAN,
     IMAGENET_STD, 1, ""},
    /* 553,437,328 bytes; MXNet export, opset 7, input "data" [1,3,224,224]; no global pool:
     * the embedding is fc7 (4096-d, the input of the last Gemm) */
    {"vgg16", "vgg16-7.onnx", "f20805a3ecccaa88647bbab4ad011ff2412a9838485ea844de0fcbce349820b9",
     ZOO "vgg/model/vgg16-7.onnx", "imagenet_labels.txt", "flatten_70",
     "VGG-16 (ONNX model zoo), float32, 4096-d embedding (fc7)", PREP_256_224, IMAGENET_MEAN,
     IMAGENET_STD, 1, ""},
    /* 14,246,826 bytes; MXNet export, opset 7, input "data" [1,3,224,224] */
    {"mobilenetv2", "mobilenetv2-7.onnx",
     "c1c513582d56afceff8516c73804e484c81c6a830712ab6d682253f4a3cd042f",
     ZOO "mobilenet/model/mobilenetv2-7.onnx", "imagenet_labels.txt",
     "mobilenetv20_features_pool0_fwd",
     "MobileNetV2 1.0 (ONNX model zoo), float32, 1280-d embedding", PREP_256_224, IMAGENET_MEAN,
     IMAGENET_STD, 1, ""},
    /* 3,655,033 bytes; opset 12, QLinearConv (per-channel int8 weights), com.microsoft
     * QLinearAdd / QLinearGlobalAveragePool; input "input" [batch_size,3,224,224] float */
    {"mobilenetv2_int8", "mobilenetv2-12-int8.onnx",
     "cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f",
     ZOO "mobilenet/model/mobilenetv2-12-int8.onnx", "imagenet_labels.txt", "",
     "MobileNetV2 1.0 (ONNX model zoo), int8, 1280-d embedding", PREP_256_224, IMAGENET_MEAN,
     IMAGENET_STD, 1, ""},
    /* 51,946,641 bytes; tf2onnx export, opset 11, NHWC input "images:0" [1,224,224,3] followed
     * by a Transpose; (p - 127) / 128 */
    {"efficientnet_lite4", "efficientnet-lite4-11.onnx",
     "d111689907c06eea7c82e4833ddef758da6453b9d4cf60b7e99ca05c7cbd9c12",
     ZOO "efficientnet-lite4/model/efficientnet-lite4-11.onnx", "imagenet_labels.txt",
     "efficientnet-lite4/model/head/AvgPool:0",
     "EfficientNet-Lite4 (ONNX model zoo), float32, 1280-d embedding", PREP_256_224,
     {127.0f, 127.0f, 127.0f}, {128.0f, 128.0f, 128.0f}, 1, ""},
};

const imgsim_manifest *imgsim_builtin_manifests(int *n)
{
    *n = (int)(sizeof builtins / sizeof *builtins);
    return builtins;
}

const imgsim_manifest *registry_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

const imgsim_manifest *registry_builtin_by_sha(const char *sha)
{
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        if (strcmp(builtins[i].sha256, sha) == 0)
            return &builtins[i];
    return NULL;
}

const char *imgsim_default_model(void)
{
    const char *e = getenv("IMGSIM_MODEL");
    return e && *e ? e : "edgetpu_v1";
}

char *imgsim_model_dir(void)
{
    const char *e = getenv("IMGSIM_MODEL_DIR"), *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    char *r = NULL;
    if (e && *e)
        r = strdup(e);
    else if (xdg && *xdg)
        r = asprintf(&r, "%s/imgsim/models", xdg) < 0 ? NULL : r;
    else
        r = asprintf(&r, "%s/.local/share/imgsim/models", home && *home ? home : ".") < 0 ? NULL : r;
    return r;
}

static imgsim_status mkdir_p(const char *dir, imgsim_error *err)
{
    if (g_mkdir_with_parents(dir, 0755) != 0)
        return error_set(err, IMGSIM_E_IO, "cannot create %s: %s", dir, strerror(errno));
    return IMGSIM_OK;
}

imgsim_status imgsim_sha256_file(const char *path, char hex[65], imgsim_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return error_set(err, IMGSIM_E_IO, "%s: %s", path, strerror(errno));
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    if (!ck) {
        fclose(f);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        g_checksum_update(ck, buf, (gssize)n);
    int bad = ferror(f);
    fclose(f);
    if (!bad)
        snprintf(hex, 65, "%s", g_checksum_get_string(ck));
    g_checksum_free(ck);
    return bad ? error_set(err, IMGSIM_E_IO, "%s: read error", path) : IMGSIM_OK;
}

static imgsim_status copy_file(const char *src, const char *dst, imgsim_error *err)
{
    FILE *in = fopen(src, "rb");
    if (!in)
        return error_set(err, IMGSIM_E_NOTFOUND, "%s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return error_set(err, IMGSIM_E_IO, "%s: %s", dst, strerror(errno));
    }
    unsigned char buf[65536];
    size_t n;
    int bad = 0;
    while (!bad && (n = fread(buf, 1, sizeof buf, in)) > 0)
        bad = fwrite(buf, 1, n, out) != n;
    bad |= ferror(in);
    fclose(in);
    bad |= fclose(out) != 0;
    return bad ? error_set(err, IMGSIM_E_IO, "copying %s to %s failed", src, dst) : IMGSIM_OK;
}

static size_t write_cb(char *p, size_t size, size_t n, void *f)
{
    return fwrite(p, size, n, (FILE *)f);
}

static imgsim_status download(const char *url, const char *dst, imgsim_error *err)
{
    FILE *out = fopen(dst, "wb");
    if (!out)
        return error_set(err, IMGSIM_E_IO, "%s: %s", dst, strerror(errno));
    CURL *h = curl_easy_init();
    if (!h) {
        fclose(out);
        return error_set(err, IMGSIM_E_INTERNAL, "libcurl failed to start");
    }
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    int bad = fclose(out) != 0;
    if (rc != CURLE_OK)
        return error_set(err, IMGSIM_E_NET, "download of %s failed: %s", url,
                         *ebuf ? ebuf : curl_easy_strerror(rc));
    return bad ? error_set(err, IMGSIM_E_IO, "%s: write error", dst) : IMGSIM_OK;
}

/* Fetch one file into `dir/name`: copy from `from_dir` or download `url`, check `sha`,
 * then rename into place. */
static imgsim_status fetch(const char *dir, const char *name, const char *sha, const char *url,
                           const char *from_dir, imgsim_error *err)
{
    char *dst = g_build_filename(dir, name, NULL);
    char *tmp = g_strdup_printf("%s.part.%d", dst, (int)getpid());
    imgsim_status st;
    char hex[65];
    if (from_dir) {
        char *src = g_build_filename(from_dir, name, NULL);
        st = copy_file(src, tmp, err);
        g_free(src);
    } else if (url && *url) {
        st = download(url, tmp, err);
    } else {
        st = error_set(err, IMGSIM_E_NOTFOUND, "no download URL for %s; use --from DIR", name);
    }
    if (st == IMGSIM_OK && (st = imgsim_sha256_file(tmp, hex, err)) == IMGSIM_OK &&
        strcmp(hex, sha) != 0)
        st = error_set(err, IMGSIM_E_CHECKSUM, "%s: SHA-256 is %s, expected %s", name, hex, sha);
    if (st == IMGSIM_OK && rename(tmp, dst) != 0)
        st = error_set(err, IMGSIM_E_IO, "%s: %s", dst, strerror(errno));
    if (st != IMGSIM_OK)
        unlink(tmp);
    g_free(tmp);
    g_free(dst);
    return st;
}

imgsim_status registry_write_manifest(const imgsim_manifest *m, const char *path,
                                      imgsim_error *err)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:[f,f,f], s:[f,f,f], s:i, s:s}",
                          "name", m->name, "file", m->file, "sha256", m->sha256, "url", m->url,
                          "labels", m->labels, "layer", m->layer, "description", m->description,
                          "size", m->prep.size, "resize_shorter", m->prep.resize_shorter,
                          "resize", m->prep.mode == IMGSIM_RESIZE_SQUASH ? "squash" : "shorter_crop",
                          "mean", (double)m->mean[0], (double)m->mean[1], (double)m->mean[2],
                          "std", (double)m->std[0], (double)m->std[1], (double)m->std[2],
                          "label_offset", m->label_offset, "parts", m->parts);
    if (!j)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    char *tmp = g_strdup_printf("%s.part.%d", path, (int)getpid());
    int rc = json_dump_file(j, tmp, JSON_INDENT(2));
    json_decref(j);
    imgsim_status st = IMGSIM_OK;
    if (rc != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        st = error_set(err, IMGSIM_E_IO, "cannot write %s", path);
    }
    g_free(tmp);
    return st;
}

static void copy_str(char *dst, size_t cap, json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));
    snprintf(dst, cap, "%s", v ? v : "");
}

imgsim_status registry_read_manifest(const char *path, imgsim_manifest *m, imgsim_error *err)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return error_set(err, IMGSIM_E_MODEL, "%s:%d: %s", path, je.line, je.text);
    memset(m, 0, sizeof *m);
    copy_str(m->name, sizeof m->name, j, "name");
    copy_str(m->file, sizeof m->file, j, "file");
    copy_str(m->sha256, sizeof m->sha256, j, "sha256");
    copy_str(m->url, sizeof m->url, j, "url");
    copy_str(m->labels, sizeof m->labels, j, "labels");
    copy_str(m->layer, sizeof m->layer, j, "layer");
    copy_str(m->parts, sizeof m->parts, j, "parts");
    copy_str(m->description, sizeof m->description, j, "description");
    imgsim_prep_default(&m->prep);
    json_t *v;
    if ((v = json_object_get(j, "size")) && json_is_integer(v))
        m->prep.size = (int)json_integer_value(v);
    if ((v = json_object_get(j, "resize_shorter")) && json_is_integer(v))
        m->prep.resize_shorter = (int)json_integer_value(v);
    const char *mode = json_string_value(json_object_get(j, "resize"));
    if (mode && strcmp(mode, "squash") == 0)
        m->prep.mode = IMGSIM_RESIZE_SQUASH;
    for (int k = 0; k < 3; k++) {
        m->mean[k] = (float)json_number_value(json_array_get(json_object_get(j, "mean"), (size_t)k));
        double sd = json_number_value(json_array_get(json_object_get(j, "std"), (size_t)k));
        m->std[k] = sd > 0 ? (float)sd : 1.0f;
    }
    m->label_offset = (int)json_integer_value(json_object_get(j, "label_offset"));
    json_decref(j);
    if (!*m->name || !*m->file || m->prep.size < 8 || m->prep.size > 4096 ||
        strchr(m->file, '/') || strchr(m->labels, '/'))
        return error_set(err, IMGSIM_E_MODEL, "%s: incomplete or invalid manifest", path);
    return IMGSIM_OK;
}

imgsim_status imgsim_model_install(const char *name, const char *from_dir, imgsim_error *err)
{
    const imgsim_manifest *m = registry_builtin(name);
    if (!m)
        return error_set(err, IMGSIM_E_NOTFOUND, "unknown model '%s' (see: imgsim model list)",
                         name);
    if (*m->parts) { /* a composite: install its parts, then record it */
        char parts[sizeof m->parts], *save = NULL;
        snprintf(parts, sizeof parts, "%s", m->parts);
        for (char *t = strtok_r(parts, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
            imgsim_status ps = imgsim_model_install(t, from_dir, err);
            if (ps != IMGSIM_OK)
                return ps;
        }
        char *dir = imgsim_model_dir();
        if (!dir)
            return error_set(err, IMGSIM_E_NOMEM, "out of memory");
        char *mp = g_strdup_printf("%s/%s.json", dir, m->name);
        imgsim_status st = registry_write_manifest(m, mp, err);
        g_free(mp);
        free(dir);
        return st;
    }
    char *dir = imgsim_model_dir();
    if (!dir)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    imgsim_status st = mkdir_p(dir, err);
    if (st == IMGSIM_OK)
        st = fetch(dir, m->file, m->sha256, m->url, from_dir, err);
    if (st == IMGSIM_OK && *m->labels) {
        char *lp = g_build_filename(dir, m->labels, NULL);
        char hex[65];
        int have = access(lp, R_OK) == 0 && imgsim_sha256_file(lp, hex, NULL) == IMGSIM_OK &&
                   strcmp(hex, LABELS_SHA) == 0;
        g_free(lp);
        if (!have)
            st = fetch(dir, m->labels, LABELS_SHA, LABELS_URL, from_dir, err);
    }
    if (st == IMGSIM_OK) {
        char *mp = g_strdup_printf("%s/%s.json", dir, m->name);
        st = registry_write_manifest(m, mp, err);
        g_free(mp);
    }
    free(dir);
    return st;
}

/*
 * imgsim.h — the whole public C API of imgsim, a visual-similarity image search engine.
 *
 * Data flows one way: image -> preprocess -> model -> vector -> index/catalogue -> query.
 * This header exposes the stages as opaque handles with paired lifetimes
 * (every *_open / *_new has its *_close / *_free). Every fallible call returns an
 * imgsim_status and, when `err` is non-NULL, fills it with a one-line, human-readable
 * message naming the cause. Nothing below the CLI or server prints or exits.
 */
#ifndef IMGSIM_H
#define IMGSIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ errors */

typedef enum imgsim_status {
    IMGSIM_OK = 0,
    IMGSIM_E_ARG,         /* bad argument or option value */
    IMGSIM_E_IO,          /* file cannot be read or written */
    IMGSIM_E_DECODE,      /* image data is corrupt, truncated or of an unknown type */
    IMGSIM_E_TOO_BIG,     /* input exceeds a configured pixel or byte limit */
    IMGSIM_E_MODEL,       /* model file is corrupt, truncated or inconsistent */
    IMGSIM_E_UNSUPPORTED, /* valid input using a feature imgsim does not implement */
    IMGSIM_E_NOMEM,       /* allocation failed */
    IMGSIM_E_NET,         /* download failed */
    IMGSIM_E_CHECKSUM,    /* downloaded or copied file does not match its SHA-256 */
    IMGSIM_E_NOTFOUND,    /* named thing (model, layer, file) does not exist */
    IMGSIM_E_INTERNAL     /* a library we call failed unexpectedly */
} imgsim_status;

typedef struct imgsim_error {
    imgsim_status code;
    char msg[512];
} imgsim_error;

/* Short name of a status code ("decode error", ...). Never NULL. */
const char *imgsim_status_name(imgsim_status s);

/* Initialise libraries imgsim depends on (libvips, XNNPACK). Idempotent and thread-safe.
 * Called implicitly by the functions that need it; `argv0` may be NULL. */
imgsim_status imgsim_init(const char *argv0, imgsim_error *err);

/* ------------------------------------------------------------ image stage */

/* An 8-bit sRGB image, RGB interleaved, rows packed (stride = 3 * width). Owned by the caller
 * once returned; release with imgsim_image_free. */
typedef struct imgsim_image {
    int width;
    int height;
    uint8_t *rgb;
} imgsim_image;

typedef enum imgsim_resize_mode {
    IMGSIM_RESIZE_SHORTER_CROP = 0, /* resize shorter side to `resize_shorter`, centre-crop size x size */
    IMGSIM_RESIZE_SQUASH = 1,       /* resize (non-uniformly) to size x size */
    IMGSIM_RESIZE_NONE = 2          /* decode only (orientation, colour, crop), keep size */
} imgsim_resize_mode;

typedef struct imgsim_prep {
    int size;                /* network input edge C, e.g. 224 */
    int resize_shorter;      /* S for SHORTER_CROP; 0 means round(size / 0.875) */
    imgsim_resize_mode mode;
    int has_crop;            /* crop (x, y, w, h) of the oriented source before the recipe */
    int crop_x, crop_y, crop_w, crop_h;
    uint64_t max_pixels;     /* refuse sources with more pixels; 0 = default 100 M */
    uint64_t max_file_bytes; /* refuse files/buffers larger; 0 = default 256 MiB */
} imgsim_prep;

/* Fill `p` with the defaults: 224, shorter side 256 + centre crop, no crop, default limits. */
void imgsim_prep_default(imgsim_prep *p);

/* Decode, orient, convert to 8-bit sRGB (alpha flattened on white) and apply the recipe. */
imgsim_status imgsim_image_load_file(const char *path, const imgsim_prep *p, imgsim_image *out,
                                     imgsim_error *err);
imgsim_status imgsim_image_load_buffer(const void *data, size_t len, const imgsim_prep *p,
                                       imgsim_image *out, imgsim_error *err);
/* Raw interleaved RGB bytes (width*height*3, e.g. shared/models/testdata/bird.rgb), then the recipe. */
imgsim_status imgsim_image_load_raw(const char *path, int width, int height, const imgsim_prep *p,
                                    imgsim_image *out, imgsim_error *err);
/* Save as PNG or JPEG, chosen by the file name's extension. */
imgsim_status imgsim_image_save(const imgsim_image *img, const char *path, imgsim_error *err);
void imgsim_image_free(imgsim_image *img);

/* ------------------------------------------------------------ model stage */

typedef struct imgsim_model imgsim_model;

typedef enum imgsim_precision {
    IMGSIM_PRECISION_AUTO = 0, /* the model's own: quantized models run quantized */
    IMGSIM_PRECISION_QUANT,    /* quantized operators (uint8 models only) */
    IMGSIM_PRECISION_FP32      /* weights dequantized to fp32 at load */
} imgsim_precision;

typedef struct imgsim_model_opts {
    const char *layer;        /* embedding tensor name; NULL = the model's default */
    imgsim_precision precision;
    int threads;              /* inference threads per context; 0 = number of cores */
    int no_normalize;         /* keep raw activations instead of L2-normalising */
} imgsim_model_opts;

void imgsim_model_opts_default(imgsim_model_opts *o);

/* Open a model by registry name ("mobilenet_edgetpu"), manifest path, or .tflite path.
 * A bare name is looked up in $IMGSIM_MODEL_DIR, then ~/.local/share/imgsim/models. */
imgsim_status imgsim_model_open(const char *name_or_path, const imgsim_model_opts *o,
                                imgsim_model **out, imgsim_error *err);
void imgsim_model_close(imgsim_model *m);

const char *imgsim_model_name(const imgsim_model *m);
int imgsim_model_dim(const imgsim_model *m);            /* embedding length */
int imgsim_model_num_classes(const imgsim_model *m);    /* 0 for embedder-only models */
const char *imgsim_model_class_name(const imgsim_model *m, int i); /* NULL if no labels */
/* The preprocessing recipe the model expects (size, crop, ...); default limits. */
void imgsim_model_prep(const imgsim_model *m, imgsim_prep *p);
/* Human-readable description: inputs, outputs, ops, tensors usable as --layer. Caller frees. */
char *imgsim_model_describe(const imgsim_model *m);

/* An inference context: the model's operators set up with their buffers. One per thread;
 * many may share one model. */
typedef struct imgsim_ctx imgsim_ctx;

imgsim_status imgsim_ctx_new(imgsim_model *m, imgsim_ctx **out, imgsim_error *err);
void imgsim_ctx_free(imgsim_ctx *c);

/* Embed `n` preprocessed images (each the model's input size). `out` holds n * dim floats.
 * If `logits` is non-NULL and the model classifies, it receives n * num_classes scores
 * (probabilities). */
imgsim_status imgsim_embed(imgsim_ctx *c, const imgsim_image *imgs, int n, float *out,
                           float *logits, imgsim_error *err);

/* ------------------------------------------------------------ batch pipeline */

/* One image of a batch run, handed to the callback in input order. On failure `vec` is NULL,
 * `status` says why and `error` holds the one-line cause; the batch goes on. */
typedef struct imgsim_result {
    size_t index;
    const char *source;       /* the path as given */
    imgsim_status status;
    const char *error;
    const float *vec;         /* dim floats */
    const float *probs;       /* num_classes floats, NULL for embedder-only models */
} imgsim_result;

/* Return non-zero to stop the batch early. */
typedef int (*imgsim_result_fn)(void *user, const imgsim_result *r);

typedef struct imgsim_batch_opts {
    const imgsim_prep *prep;  /* NULL: the model's recipe */
    int raw_width, raw_height;/* > 0: inputs are raw RGB files of this size */
    int decode_threads;       /* 0: automatic */
    int want_probs;           /* also compute class probabilities */
} imgsim_batch_opts;

/* Decode and embed `n` files: decoding runs on its own threads, overlapped with inference
 * on the context's thread pool, in batches. Bad files are reported through `fn` and skipped.
 * Returns an error only for failures that stop the whole run. */
imgsim_status imgsim_embed_files(imgsim_ctx *c, const char *const *paths, size_t n,
                                 const imgsim_batch_opts *o, imgsim_result_fn fn, void *user,
                                 imgsim_error *err);

/* ------------------------------------------------------------ model registry */

typedef struct imgsim_manifest {
    char name[64];
    char file[256];       /* model file name inside the model directory */
    char sha256[65];      /* lowercase hex */
    char url[512];        /* public download URL, may be empty */
    char labels[256];     /* label file name, may be empty */
    char layer[128];      /* default embedding tensor name, may be empty (auto) */
    char description[256];
    imgsim_prep prep;     /* input recipe */
    float mean[3], std[3];/* float models: x = (pixel - mean) / std */
    int label_offset;     /* index of class 0 of the output in the label file */
} imgsim_manifest;

/* The models imgsim knows by name; `*n` receives their count. */
const imgsim_manifest *imgsim_builtin_manifests(int *n);
/* Name of the default model (honours $IMGSIM_MODEL). */
const char *imgsim_default_model(void);
/* Directory holding installed models (created on demand by install). Caller frees. */
char *imgsim_model_dir(void);
/* Install `name` into the model directory: copy from `from_dir` if non-NULL, else download
 * from the manifest URL. Both paths verify SHA-256. */
imgsim_status imgsim_model_install(const char *name, const char *from_dir, imgsim_error *err);

/* ------------------------------------------------------------ search metrics */

/* How two vectors are compared. Scores shown to users: cosine similarity (higher is closer),
 * Euclidean distance and Manhattan distance (lower is closer). */
typedef enum imgsim_metric {
    IMGSIM_METRIC_COSINE = 0,
    IMGSIM_METRIC_L2 = 1,
    IMGSIM_METRIC_L1 = 2
} imgsim_metric;

/* "cosine", "l2", "l1"; and the reverse (also accepts "euclidean", "manhattan"). */
const char *imgsim_metric_name(imgsim_metric m);
imgsim_status imgsim_metric_parse(const char *s, imgsim_metric *out, imgsim_error *err);

/* ------------------------------------------------------------ helpers */

/* SHA-256 of a file as 64 lowercase hex chars + NUL. */
imgsim_status imgsim_sha256_file(const char *path, char hex[65], imgsim_error *err);
/* Write an n x d float32 matrix as a numpy .npy file. */
imgsim_status imgsim_write_npy(const char *path, const float *data, size_t n, size_t d,
                               imgsim_error *err);

#ifdef __cplusplus
}
#endif
#endif

/*
 * imgsim.h — the whole public C API of imgsim, a visual-similarity image search engine.
 *
 * Data flows one way: image -> preprocess -> model -> vector -> index/catalogue -> query.
 * This header exposes the stages as opaque handles with paired lifetimes.
 *
 * Conventions:
 *   - Releasing: what an *_open function opened (a model, a collection: files, mappings,
 *     locks) is released by its *_close; everything else the library allocates (a handle
 *     made by *_new, or memory a call fills in for the caller) is released by a *_free. The
 *     comment of every call that hands over an allocation names the function that releases
 *     it; *_close and *_free accept NULL (or a zeroed struct) and do nothing.
 *   - Errors: every call that can fail returns an imgsim_status and, when `err` is non-NULL,
 *     fills it with a one-line, human-readable message naming the cause (the two string
 *     makers imgsim_model_describe and imgsim_model_dir can only run out of memory and
 *     return NULL then). Nothing below the CLI or server prints or exits.
 *   - Options: every options struct has a *_default function; fill it, then change fields.
 *
 * Worked example (tests/api/test_example.c compiles and runs exactly this): index three
 * images into a new collection and find the one most like a fourth.
 *
 *     imgsim_error e;
 *     imgsim_model *m;
 *     imgsim_ctx *c;
 *     imgsim_db *db;
 *     imgsim_model_opts mo;
 *     imgsim_model_opts_default(&mo);
 *     const char *model = "models/mobilenet_v2_1.0_224_quant.tflite";
 *     if (imgsim_model_open(model, &mo, &m, &e) != IMGSIM_OK ||
 *         imgsim_ctx_new(m, &c, &e) != IMGSIM_OK ||
 *         imgsim_db_open("photos.db", IMGSIM_DB_CREATE, imgsim_model_name(m),
 *                        imgsim_model_dim(m), &db, &e) != IMGSIM_OK)
 *         return failed(&e);                       // e.msg says why
 *     imgsim_source src[3] = {{.id = "bus", .path = "300.jpg", .label = "buses"},
 *                             {.id = "horse", .path = "700.jpg", .label = "horses"},
 *                             {.id = "flower", .path = "600.jpg", .label = "flowers"}};
 *     imgsim_ingest_opts io;
 *     imgsim_ingest_opts_default(&io);
 *     imgsim_ingest_stats st;
 *     if (imgsim_db_add(db, c, src, 3, &io, &st, &e) != IMGSIM_OK)
 *         return failed(&e);
 *     imgsim_image img;                          // a new photo, not in the collection
 *     imgsim_prep p;
 *     imgsim_model_prep(m, &p);
 *     float *v = malloc(sizeof(float) * (size_t)imgsim_model_dim(m));
 *     if (!v)
 *         return 1;
 *     imgsim_query_opts qo;
 *     imgsim_query_opts_default(&qo);
 *     qo.k = 1;
 *     imgsim_results r;
 *     if (imgsim_image_load_file("301.jpg", &p, &img, &e) != IMGSIM_OK ||
 *         imgsim_embed(c, &img, 1, v, NULL, &e) != IMGSIM_OK ||
 *         imgsim_query_vector(db, v, &qo, &r, &e) != IMGSIM_OK)
 *         return failed(&e);
 *     printf("%s %.3f\n", r.hits[0].item.id, r.hits[0].score);   // "bus 0.780"
 *     imgsim_results_free(&r);
 *     imgsim_image_free(&img);
 *     free(v);
 *     imgsim_db_close(db);
 *     imgsim_ctx_free(c);
 *     imgsim_model_close(m);
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

/* Short name of a status code ("decode error", ...). Never NULL; static, not to be freed. */
const char *imgsim_status_name(imgsim_status s);

/* The largest k (results wanted) any query, evaluation or CLI command accepts. The neighbour
 * table (stored in the catalogue, k rows per vector) and the HTTP server (one JSON object per
 * hit, per request) keep smaller caps derived from it. */
#define IMGSIM_MAX_K 10000
/* The largest k of a neighbour table: its rows are stored for every vector. */
#define IMGSIM_NEIGHBOURS_MAX_K (IMGSIM_MAX_K / 10)
/* The largest HNSW search breadth (ef) a query accepts. */
#define IMGSIM_MAX_EF 10000

/* Initialise libraries imgsim depends on (libvips, XNNPACK). Idempotent and thread-safe.
 * Called implicitly by the functions that need it; `argv0` may be NULL. */
imgsim_status imgsim_init(const char *argv0, imgsim_error *err);

/* ------------------------------------------------------------ image stage */

/* An 8-bit sRGB image, RGB interleaved, rows packed (stride = 3 * width). Owned by the caller
 * once returned; release its pixels with imgsim_image_free. */
typedef struct imgsim_image {
    int width;
    int height;
    uint8_t *rgb;
    int src_width, src_height;  /* the decoded source after EXIF orientation (0 for raw input) */
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

/* Decode, orient, convert to 8-bit sRGB (alpha flattened on white) and apply the recipe.
 * The three loaders fill *out; release it with imgsim_image_free. */
imgsim_status imgsim_image_load_file(const char *path, const imgsim_prep *p, imgsim_image *out,
                                     imgsim_error *err);
imgsim_status imgsim_image_load_buffer(const void *data, size_t len, const imgsim_prep *p,
                                       imgsim_image *out, imgsim_error *err);
/* Raw interleaved RGB bytes (width*height*3, e.g. shared/models/testdata/bird.rgb), then the recipe. */
imgsim_status imgsim_image_load_raw(const char *path, int width, int height, const imgsim_prep *p,
                                    imgsim_image *out, imgsim_error *err);
/* Save as PNG or JPEG, chosen by the file name's extension. */
imgsim_status imgsim_image_save(const imgsim_image *img, const char *path, imgsim_error *err);
/* Free the pixels of an image filled by a loader (not the struct itself). */
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
 * A bare name is looked up in $IMGSIM_MODEL_DIR, then ~/.local/share/imgsim/models.
 * "A+B" (or a built-in composite such as "edgetpu_v1") opens a composite: every part embeds
 * the same input image, each part's vector is L2-normalised, and the embedding is their
 * concatenation; classes come from the first part that has them. Release *out with
 * imgsim_model_close (after every context made from it). */
imgsim_status imgsim_model_open(const char *name_or_path, const imgsim_model_opts *o,
                                imgsim_model **out, imgsim_error *err);
void imgsim_model_close(imgsim_model *m);

const char *imgsim_model_name(const imgsim_model *m);   /* owned by the model */
int imgsim_model_dim(const imgsim_model *m);            /* embedding length */
int imgsim_model_num_classes(const imgsim_model *m);    /* 0 for embedder-only models */
const char *imgsim_model_class_name(const imgsim_model *m, int i); /* NULL if no labels; owned
                                                                     by the model */
/* The preprocessing recipe the model expects (size, crop, ...); default limits. */
void imgsim_model_prep(const imgsim_model *m, imgsim_prep *p);
/* Human-readable description: inputs, outputs, ops, tensors usable as --layer; NULL without
 * memory. Release with free(). */
char *imgsim_model_describe(const imgsim_model *m);

/* An inference context: the model's operators set up with their buffers. One per thread;
 * many may share one model. */
typedef struct imgsim_ctx imgsim_ctx;

/* Release *out with imgsim_ctx_free (before closing the model). */
imgsim_status imgsim_ctx_new(imgsim_model *m, imgsim_ctx **out, imgsim_error *err);
void imgsim_ctx_free(imgsim_ctx *c);

/* Embed `n` preprocessed images (each the model's input size). `out` holds n * dim floats.
 * If `logits` is non-NULL and the model classifies, it receives n * num_classes scores
 * (probabilities). */
imgsim_status imgsim_embed(imgsim_ctx *c, const imgsim_image *imgs, int n, float *out,
                           float *logits, imgsim_error *err);

/* ------------------------------------------------------------ batch pipeline */

/* One image of a batch run, handed to the callback in input order. On failure `vec` is NULL,
 * `status` says why and `error` holds the one-line cause; the batch goes on. Everything it
 * points to is the library's and valid only during the callback. */
typedef struct imgsim_result {
    size_t index;
    const char *source;       /* the path as given */
    imgsim_status status;
    const char *error;
    const float *vec;         /* dim floats */
    const float *probs;       /* num_classes floats, NULL for embedder-only models */
    int src_width, src_height;/* the source image's size (after EXIF orientation) */
} imgsim_result;

/* Return non-zero to stop the batch early. */
typedef int (*imgsim_result_fn)(void *user, const imgsim_result *r);

typedef struct imgsim_batch_opts {
    const imgsim_prep *prep;  /* NULL: the model's recipe */
    int raw_width, raw_height;/* > 0: inputs are raw RGB files of this size */
    int decode_threads;       /* 0: automatic */
    int want_probs;           /* also compute class probabilities */
    const int (*crops)[4];    /* NULL, or one x,y,w,h per file (w == 0: none): the region to
                                 embed, replacing the recipe's crop */
} imgsim_batch_opts;

/* Fill `o` with the defaults: the model's recipe, files (not raw), automatic decode threads,
 * no probabilities, no crops. */
void imgsim_batch_opts_default(imgsim_batch_opts *o);

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
    char parts[128];      /* a composite model: its parts' names joined by '+' (then no file) */
} imgsim_manifest;

/* The models imgsim knows by name (a static table, not to be freed); `*n` receives their
 * count. */
const imgsim_manifest *imgsim_builtin_manifests(int *n);
/* Name of the default model (honours $IMGSIM_MODEL); not to be freed. */
const char *imgsim_default_model(void);
/* Directory holding installed models (created on demand by install); NULL without memory.
 * Release with free(). */
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

/* "cosine", "l2", "l1" (static); and the reverse (also accepts "euclidean", "manhattan"). */
const char *imgsim_metric_name(imgsim_metric m);
imgsim_status imgsim_metric_parse(const char *s, imgsim_metric *out, imgsim_error *err);

/* ------------------------------------------------------------ collections */

/* A collection is one directory: catalog.sqlite (items, their labels and metadata, the
 * neighbour table), a vector file (one float32 row per distinct image, memory-mapped), an
 * optional HNSW index file and an uploads/ folder for images added through the server.
 * It records the model that made its vectors; opening it with another model is refused.
 * Writers hold an exclusive lock on the directory; readers do not block each other. */
typedef struct imgsim_db imgsim_db;

enum {
    IMGSIM_DB_READ = 0,    /* open an existing collection read-only */
    IMGSIM_DB_WRITE = 1,   /* open an existing collection for writing */
    IMGSIM_DB_CREATE = 3   /* open for writing, creating it if missing */
};

/* Open the collection in `dir`. `model` is the model name the caller will embed with:
 * required to create, and checked against the recorded one otherwise (NULL: accept
 * whatever it records). Release *out with imgsim_db_close. */
imgsim_status imgsim_db_open(const char *dir, int mode, const char *model, int dim,
                             imgsim_db **out, imgsim_error *err);
void imgsim_db_close(imgsim_db *db);

const char *imgsim_db_model(const imgsim_db *db);  /* recorded model name (the handle's) */
int imgsim_db_dim(const imgsim_db *db);
imgsim_status imgsim_db_count(imgsim_db *db, size_t *n, imgsim_error *err); /* items */
size_t imgsim_db_vectors(const imgsim_db *db);     /* distinct live vectors */

/* The folder inside the collection that files added through the server are stored in
 * (<dir>/uploads), created when missing. Writers only. Release *path with free(). */
imgsim_status imgsim_db_uploads_dir(imgsim_db *db, char **path, imgsim_error *err);

/* One catalogue item. Strings are owned by the struct; release them with imgsim_item_free. */
typedef struct imgsim_item {
    char *id;
    char *source;        /* file path (absolute) or URL */
    char *hash;          /* SHA-256 of the file's bytes, hex */
    char *label;         /* may be NULL */
    char *meta_json;     /* extra CSV columns as a JSON object, may be NULL */
    int width, height;   /* of the source image */
    int has_box;
    int box[4];          /* x, y, w, h of the region embedded, when has_box */
    double added;        /* Unix time */
} imgsim_item;

/* Free the strings of an item (not the struct itself) and zero it. */
void imgsim_item_free(imgsim_item *it);
/* Item `id` into *out (release with imgsim_item_free); IMGSIM_E_NOTFOUND if unknown. */
imgsim_status imgsim_db_get(imgsim_db *db, const char *id, imgsim_item *out, imgsim_error *err);
/* Every item id, sorted; release each id and the array with free(). */
imgsim_status imgsim_db_item_ids(imgsim_db *db, char ***ids, size_t *n, imgsim_error *err);
/* Raw vector of an item (dim floats). */
imgsim_status imgsim_db_vector(imgsim_db *db, const char *id, float *out, imgsim_error *err);
/* Remove items; unknown ids are reported through `err` after the others are removed. */
imgsim_status imgsim_db_remove(imgsim_db *db, const char *const *ids, size_t n, size_t *removed,
                               imgsim_error *err);

/* ------------------------------------------------------------ ingest */

/* One image to add. `id` must be unique in the collection (re-adding an id updates it). */
typedef struct imgsim_source {
    const char *id;
    const char *path;       /* image file */
    const char *label;      /* may be NULL */
    const char *meta_json;  /* JSON object text, may be NULL */
    int has_box;
    int box[4];
    const char *origin;     /* where it came from for messages ("styles.csv:12"), may be NULL */
} imgsim_source;

/* A list of sources built from folders and CSV catalogues (owns all its strings). */
typedef struct imgsim_sources imgsim_sources;

/* An empty list; release it with imgsim_sources_free. */
imgsim_status imgsim_sources_new(imgsim_sources **out, imgsim_error *err);
void imgsim_sources_free(imgsim_sources *s);
/* The sources listed so far: imgsim_sources_count of them at imgsim_sources_items (owned by
 * the list; valid until it changes or is freed). */
size_t imgsim_sources_count(const imgsim_sources *s);
const imgsim_source *imgsim_sources_items(const imgsim_sources *s);

/* A problem met while listing sources (bad CSV row, unreadable folder): `where` is
 * "file:line" or a path. Listing goes on. */
typedef void (*imgsim_problem_fn)(void *user, const char *where, const char *msg);

/* Append every image under `dir` to `out` (recursive; by extension, and by content for files
 * without a known image extension). Ids are "<dir name>/<path inside dir>"; paths are
 * absolute. */
imgsim_status imgsim_sources_from_dir(imgsim_sources *out, const char *dir, imgsim_problem_fn fn,
                                      void *user, imgsim_error *err);

typedef struct imgsim_csv_opts {
    const char *path;          /* the CSV file */
    char delim;                /* 0 = ',' */
    const char *path_column;   /* column holding the image path (relative to the CSV's folder) */
    const char *path_format;   /* or a template such as "images/{id}.jpg" ({COLUMN} replaced) */
    const char *id_column;     /* NULL: the path is the id */
    const char *label_column;  /* NULL: no labels */
    const char *box_columns[4];/* x, y, w, h columns, or NULLs */
} imgsim_csv_opts;

/* Fill `o` with the defaults: no file, ',' as delimiter, no columns named. */
void imgsim_csv_opts_default(imgsim_csv_opts *o);

/* Append one source per valid CSV row; other columns become metadata. Bad rows (wrong field
 * count, missing path or id, duplicate id, bad box) are reported through `fn` and skipped. */
imgsim_status imgsim_sources_from_csv(imgsim_sources *out, const imgsim_csv_opts *o,
                                      imgsim_problem_fn fn, void *user, imgsim_error *err);

/* What happened to one source (reported through imgsim_ingest_fn). */
typedef enum imgsim_ingest_event {
    IMGSIM_INGEST_ADDED,     /* embedded and stored */
    IMGSIM_INGEST_DUPLICATE, /* same content already stored: linked to its vector */
    IMGSIM_INGEST_UNCHANGED, /* already in the collection, file unchanged */
    IMGSIM_INGEST_UPDATED,   /* label/metadata changed, or the file changed and was re-embedded */
    IMGSIM_INGEST_FAILED     /* bad image or unreadable file: skipped */
} imgsim_ingest_event;

typedef struct imgsim_ingest_stats {
    size_t total, added, duplicate, unchanged, updated, failed, removed;
    double seconds;
} imgsim_ingest_stats;

/* Per-source report (event, the source, the error line for FAILED). */
typedef void (*imgsim_ingest_fn)(void *user, imgsim_ingest_event ev, const imgsim_source *src,
                                 const char *error);
/* Progress: `done` of `total` sources handled so far. */
typedef void (*imgsim_progress_fn)(void *user, size_t done, size_t total);

typedef struct imgsim_ingest_opts {
    imgsim_ingest_fn on_item;        /* may be NULL */
    imgsim_progress_fn on_progress;  /* may be NULL; called at most a few times a second */
    void *user;
    int commit_every;                /* images per transaction; 0 = 256 */
    const volatile int *stop;        /* set non-zero (e.g. from SIGINT) to stop after a commit */
} imgsim_ingest_opts;

/* Fill `o` with the defaults: no callbacks, 256 images per transaction, no stop flag. */
void imgsim_ingest_opts_default(imgsim_ingest_opts *o);

/* Add (or refresh) `n` sources: unchanged ones are skipped by path, size and mtime, identical
 * content is stored once, the rest are decoded and embedded with `ctx` (the collection's
 * model) and committed in transactions; an interrupted run keeps every committed image. */
imgsim_status imgsim_db_add(imgsim_db *db, imgsim_ctx *ctx, const imgsim_source *src, size_t n,
                            const imgsim_ingest_opts *o, imgsim_ingest_stats *stats,
                            imgsim_error *err);
/* Remove items whose local source file no longer exists; returns how many. */
imgsim_status imgsim_db_sync(imgsim_db *db, size_t *removed, imgsim_error *err);

/* ------------------------------------------------------------ query */

typedef struct imgsim_where {
    const char *column;  /* id, source, label, hash, width, height, or a metadata key */
    const char *value;
} imgsim_where;

/* Exact or approximate search. */
typedef enum imgsim_search_mode {
    IMGSIM_SEARCH_AUTO = 0,      /* a collection with an HNSW index (imgsim_db_ann_build) and at
                                    least IMGSIM_ANN_AUTO_ROWS distinct vectors is searched
                                    through the index, a smaller one (or one without an index,
                                    or with the L1 metric) by brute force; a fresh neighbour
                                    table answers an item's query */
    IMGSIM_SEARCH_EXACT,         /* brute force only (no index, no neighbour table) */
    IMGSIM_SEARCH_ANN            /* the index whatever the collection's size (brute force, with
                                    a note, when it cannot answer) */
} imgsim_search_mode;

typedef struct imgsim_query_opts {
    int k;                       /* results wanted, 1..IMGSIM_MAX_K (default 10) */
    imgsim_metric metric;
    const imgsim_where *where;   /* all must hold */
    int nwhere;
    int category_auto;           /* predict the query's label, search inside it */
    int no_table;                /* ignore the neighbour table even when fresh */
    imgsim_search_mode mode;     /* default AUTO */
    int ef;                      /* when the index is searched: its search breadth (candidate
                                    list; more is slower and finds more true neighbours),
                                    0..IMGSIM_MAX_EF; 0 = the index's default */
} imgsim_query_opts;

void imgsim_query_opts_default(imgsim_query_opts *o);

typedef struct imgsim_hit {
    float score;                 /* cosine similarity, or L2 / L1 distance */
    imgsim_item item;
} imgsim_hit;

/* A query's answer; release it with imgsim_results_free. */
typedef struct imgsim_results {
    int n;
    imgsim_hit *hits;
    char *predicted_label;       /* with category_auto */
    int votes, voters;           /* the prediction's support */
    int from_table;              /* answered from the neighbour table */
    int from_ann;                /* answered through the HNSW index */
    char *note;                  /* NULL, or why the index was not used although asked for
                                    or present ("index damaged: exact search"); for the user */
} imgsim_results;

void imgsim_results_free(imgsim_results *r);

/* The k items closest to a raw vector (as made by the collection's model, not normalised).
 * Both queries fill *out; release it with imgsim_results_free. */
imgsim_status imgsim_query_vector(imgsim_db *db, const float *vec, const imgsim_query_opts *o,
                                  imgsim_results *out, imgsim_error *err);
/* The k items closest to an item of the collection (the item itself excluded; other items
 * with identical content come first). Uses the neighbour table when fresh. */
imgsim_status imgsim_query_id(imgsim_db *db, const char *id, const imgsim_query_opts *o,
                              imgsim_results *out, imgsim_error *err);

/* ------------------------------------------------------------ approximate search (HNSW) */

/* A collection may keep an HNSW graph index (a file in its directory, memory-mapped) for
 * approximate k-NN search. Once built it is kept in step with every add and remove; if it
 * is missing or damaged a writer rebuilds it from the vectors and a reader searches exactly.
 * Results found through it are re-ranked on the full vectors, so scores are exact. */

/* Collections with at least this many distinct vectors are searched through their index
 * (when they have one). Measured (docs/ANN.md, "Exact or HNSW"): HNSW at the default ef
 * beats one exact query from about 1 M floats of vectors and is 4x faster from about 4 M;
 * 2,000 rows of the default 2304-d model is 4.6 M floats (exact: ~0.25 ms a query). Below
 * it a query is exact and takes well under a millisecond anyway. */
#define IMGSIM_ANN_AUTO_ROWS 2000

typedef enum imgsim_ann_storage {
    IMGSIM_ANN_SQ8 = 0,          /* one byte per dimension (default) */
    IMGSIM_ANN_F32 = 1           /* four bytes per dimension */
} imgsim_ann_storage;

typedef struct imgsim_ann_opts {
    imgsim_metric metric;        /* cosine (default) or L2; L1 queries are always exact */
    int M;                       /* links per node (level 0 keeps 2M); default 16 */
    int ef_construction;         /* candidate list while building; default 200 */
    int ef_search;               /* default search breadth of queries; default 64 */
    imgsim_ann_storage storage;  /* how the index stores vectors; default SQ8 */
    int pca_dims;                /* > 0: store a PCA projection to this many dimensions */
    int pca_whiten;              /* with pca_dims: unit variance per component */
    int threads;                 /* build threads; 0 = all cores */
} imgsim_ann_opts;

void imgsim_ann_opts_default(imgsim_ann_opts *o);

/* Build the index anew over the live vectors with `o` (NULL: the collection's current
 * settings, else the defaults) and save it. Writers only. */
imgsim_status imgsim_db_ann_build(imgsim_db *db, const imgsim_ann_opts *o, imgsim_error *err);
/* Make sure the index is current: with `o`, an index with those parameters (built when
 * there is none or its parameters differ, else brought in step incrementally); with NULL,
 * the existing index brought in step (rebuilt when missing or damaged; nothing without
 * one). `*rebuilt` (may be NULL) says whether it was built from scratch. Writers only. */
imgsim_status imgsim_db_ann_sync(imgsim_db *db, const imgsim_ann_opts *o, int *rebuilt,
                                 imgsim_error *err);
/* Delete the index (its file and settings). Writers only. */
imgsim_status imgsim_db_ann_drop(imgsim_db *db, imgsim_error *err);

typedef enum imgsim_ann_status {
    IMGSIM_ANN_NONE = 0,         /* no index */
    IMGSIM_ANN_CURRENT,          /* covers exactly the live vectors */
    IMGSIM_ANN_BEHIND,           /* rows added/dropped since it was saved: still answers
                                    correctly (added rows are searched exactly) */
    IMGSIM_ANN_STALE,            /* rows renumbered by a compaction since: unused until rebuilt */
    IMGSIM_ANN_DAMAGED           /* file missing or failing validation: unused until rebuilt */
} imgsim_ann_status;

typedef struct imgsim_ann_info {
    imgsim_ann_status status;
    imgsim_ann_opts opts;        /* its parameters (threads 0) */
    char file[64];               /* file name inside the collection directory */
    char problem[256];           /* STALE / DAMAGED: the cause */
    size_t nodes;                /* vectors in the index */
    size_t live;                 /* live vectors of the collection */
    size_t added, dropped;       /* BEHIND: live rows not in it, rows in it since dropped */
    uint64_t gen;                /* collection generation it reflects */
    uint64_t db_gen;             /* the collection's generation now */
    int dim, code_dim;           /* input dimension, dimension stored (PCA) */
    int max_level;
    size_t bytes_file, bytes_graph, bytes_codes, bytes_other;
} imgsim_ann_info;

/* What the index is and whether it is current (a read-only handle may ask). */
imgsim_status imgsim_db_ann_info(imgsim_db *db, imgsim_ann_info *out, imgsim_error *err);
const char *imgsim_ann_status_name(imgsim_ann_status s); /* "current", "behind", ... (static) */

/* ------------------------------------------------------------ neighbour table */

/* Compute (or refresh incrementally, when one exists with the same k and metric) the top-k
 * (1..IMGSIM_NEIGHBOURS_MAX_K) of every stored vector and store it in the catalogue. */
imgsim_status imgsim_neighbours_build(imgsim_db *db, int k, imgsim_metric m, int threads,
                                      int *incremental, imgsim_error *err);
/* The table's k (0: the collection has no table), metric, and whether it covers the current
 * vectors (each output may be NULL). */
imgsim_status imgsim_neighbours_info(imgsim_db *db, int *k, imgsim_metric *m, int *fresh,
                                     imgsim_error *err);

/* ------------------------------------------------------------ evaluation */

typedef struct imgsim_eval_row {
    char *label;                 /* NULL for the overall row */
    size_t n;                    /* queries */
    double p_at_k, r_at_k, map_at_k, map;
} imgsim_eval_row;

typedef struct imgsim_eval {
    int k;
    imgsim_metric metric;
    imgsim_eval_row overall;
    int nlabels;
    imgsim_eval_row *labels;     /* sorted by label */
    size_t unlabelled;           /* items without a label: neither queries nor candidates */
    double seconds;
} imgsim_eval;

/* Leave-one-out retrieval quality: every labelled item (or each of `query_ids`) is a query
 * against all other labelled items; relevant = same label. `label_column` is "label"
 * (default when NULL) or a metadata key; k is 1..IMGSIM_MAX_K. `full_map` adds the
 * full-ranking mAP. Fills *out; release it with imgsim_eval_free. */
imgsim_status imgsim_db_eval(imgsim_db *db, const char *label_column, int k, imgsim_metric m,
                             int full_map, const char *const *query_ids, size_t nq,
                             imgsim_eval *out, imgsim_error *err);
void imgsim_eval_free(imgsim_eval *e);

/* ------------------------------------------------------------ helpers */

/* SHA-256 of a file as 64 lowercase hex chars + NUL. */
imgsim_status imgsim_sha256_file(const char *path, char hex[65], imgsim_error *err);
/* Write an n x d float32 matrix as a numpy .npy file. */
imgsim_status imgsim_write_npy(const char *path, const float *data, size_t n, size_t d,
                               imgsim_error *err);

/* ------------------------------------------------------------ browsing (server) */

/* One distinct label of a collection and how many items carry it. */
typedef struct imgsim_label_count {
    char *label;
    size_t count;
} imgsim_label_count;

/* Every distinct label with its item count, sorted by label (unlabelled items are not
 * counted). Caller frees with imgsim_labels_free. */
imgsim_status imgsim_db_labels(imgsim_db *db, imgsim_label_count **out, size_t *n,
                               imgsim_error *err);
void imgsim_labels_free(imgsim_label_count *l, size_t n);

/* Up to `n` items chosen uniformly at random (all of them, shuffled, when fewer), only of
 * `label` when non-NULL. `*out` receives `*nout` items; caller frees with imgsim_items_free. */
imgsim_status imgsim_db_random(imgsim_db *db, size_t n, const char *label, imgsim_item **out,
                               size_t *nout, imgsim_error *err);
void imgsim_items_free(imgsim_item *items, size_t n);

/* What a collection holds, read in one snapshot (a read-only handle first picks up what
 * other handles committed since). */
typedef struct imgsim_db_stats {
    size_t items;          /* catalogue items */
    size_t vectors;        /* distinct live vectors */
    size_t labels;         /* distinct labels */
    int dim;
    const char *model;     /* the recorded model name (owned by the handle) */
    int has_table;         /* a neighbour table exists: */
    int table_k;           /*   its k */
    imgsim_metric table_metric;
    int table_fresh;       /*   and whether it covers the current vectors */
} imgsim_db_stats;

imgsim_status imgsim_db_stats_get(imgsim_db *db, imgsim_db_stats *out, imgsim_error *err);

#ifdef __cplusplus
}
#endif
#endif

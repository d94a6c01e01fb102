/*
 * testutil.h — helpers shared by the cmocka tests: where the real models and images are
 * (../shared, or $IMGSIM_SHARED), the extracted test collections ($IMGSIM_DATA), scratch
 * files and directories ($IMGSIM_TEST_OUT), small file utilities, Wang-1k subsets, and a
 * small labelled collection made from them.
 */
#ifndef IMGSIM_TESTS_TESTUTIL_H
#define IMGSIM_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "imgsim.h"

/* Paths returned as `const char *` below live in a per-thread ring of 8 buffers: copy one
 * that must survive the next 8 calls. */

/* Path under the shared directory, e.g. tu_shared("models/x.tflite"). */
const char *tu_shared(const char *rel);
/* Path under the extracted data directory (wang1k/images/0.jpg). */
const char *tu_data(const char *rel);
/* Path under the test output directory (created). */
const char *tu_out(const char *rel);
/* `dir`/`name`. */
const char *tu_join(const char *dir, const char *name);
/* The directory `rel` under the test output directory, created if missing (kept if present). */
const char *tu_out_dir(const char *rel);
/* The same, emptied first: a fresh scratch directory. */
const char *tu_fresh_dir(const char *rel);
/* Remove a file or directory tree (nothing if it does not exist). */
void tu_rmtree(const char *path);
/* One member of a shared tarball (data/`tarball`): in $IMGSIM_DATA when extracted there,
 * else extracted once into the test output directory; NULL when neither is possible. */
const char *tu_extract(const char *tarball, const char *member);

/* Whole file into a malloc'ed buffer (one spare NUL byte after the end); fails the test if
 * unreadable. */
uint8_t *tu_read(const char *path, size_t *len);
void tu_write(const char *path, const void *data, size_t len);

/* A growing byte buffer (zero-initialise it; free(b.p) when done). Appending keeps a NUL
 * byte after the end, so a buffer of text is also a C string. */
typedef struct tu_buf {
    uint8_t *p;
    size_t n, cap;
} tu_buf;
void tu_buf_put(tu_buf *b, const void *data, size_t n);
/* Append strings, up to a NULL. */
void tu_buf_cat(tu_buf *b, ...);

double tu_cosine(const float *a, const float *b, int n);
/* Mean absolute difference of two images' bytes (same size, asserted). */
double tu_mean_abs_diff(const imgsim_image *a, const imgsim_image *b);

/* Open a model file from shared/models by file name, failing the test on error. */
imgsim_model *tu_model(const char *file, imgsim_precision prec);
/* An inference context for `m`, failing the test on error. */
imgsim_ctx *tu_ctx(imgsim_model *m);
/* Free a context, then its model (either may be NULL). */
void tu_model_free(imgsim_model *m, imgsim_ctx *c);

/* Wang-1k photo number `num` (0..999; class num / 100) in the data directory. */
const char *tu_wang(int num);
/* The paths of photos `nums` as one malloc'ed block (array and strings): free() it. */
const char **tu_wang_paths(const int *nums, size_t n);
/* Embed `n` files with imgsim_embed_files into an n x dim matrix (dim: the context's model's;
 * caller frees); every file must embed. */
float *tu_embed_files(imgsim_ctx *ctx, int dim, const char *const *paths, size_t n);

/* Add Wang-1k photos `nums` to `db` (embedded with `ctx`) as items "w<N>" labelled
 * "c<N / 100>" with metadata {"grp": "g<N % 25>"}; none may fail. */
void tu_add_wang(imgsim_db *db, imgsim_ctx *ctx, const int *nums, int n);
/* Whether `id` is among the hits. */
int tu_has(const imgsim_results *r, const char *id);

#endif

/*
 * catalog.h — the collection on disk: a SQLite catalogue plus an append-only vector file.
 * This is the catalogue's interface to the rest of the library (ingest, query, eval): one
 * write transaction, one after-write step and typed row queries, with no SQL and no view of
 * struct imgsim_db's layout (catalog/internal.h, for catalog/ only).
 *
 * Layout of a collection directory:
 *   catalog.sqlite      items, distinct vectors, neighbour table, change log, meta (WAL mode)
 *   vectors.<G>.f32     64-byte header ("IMGSIMV1", dim) then one float32 row per vector;
 *                       <G> is the file generation, named in meta.vec_file
 *   lock                flock()ed exclusively by the one writer
 *   ann.<seq>.hnsw      the optional HNSW index (below)
 *   uploads/            images added through the server (POST /api/items), stored as
 *                       <sha256>.<ext> and catalogued like any other source; the folder is
 *                       made on the first upload (imgsim_db_uploads_dir)
 *
 * The durability invariant (what makes kill -9 and power loss safe):
 *   rows [0, meta.nrows) of the file named by meta.vec_file are on disk before the SQLite
 *   transaction that raises meta.nrows commits. A writer appends rows past nrows, fdatasync()s,
 *   then commits the rows' `vectors` and `items` entries together with the new nrows. A crash
 *   before the commit leaves only bytes past nrows, which the next writer truncates away; a
 *   crash after it leaves a complete, consistent collection. Rows are never rewritten in
 *   place: compaction writes a whole new file generation, fsyncs it, and switches
 *   meta.vec_file in one transaction; stray files of other generations are deleted at open.
 *
 * Tables:
 *   meta(key, value)                 model, dim, vec_file, nrows, gen, nbr_k, nbr_metric, nbr_gen
 *   vectors(row, key)                a live vector row; key = content hash (+ "#x,y,w,h" box)
 *   items(id, row, source, hash, size, mtime_ns, width, height, label, box_*, meta, model, added)
 *   neighbours(row, rank, nbr, score) the precomputed top-k per vector row
 *   changes(gen, row, op)            rows added (op 1) / dropped (op 2) since the table's gen
 * A vector row is alive while a `vectors` entry names it; several items may share it.
 *
 * The optional HNSW index (ann.c) is a file ann.<seq>.hnsw named by meta.ann_file; the meta
 * keys ann_* record its parameters and the rows it covers (see the ANN section below).
 */
#ifndef IMGSIM_CATALOG_CATALOG_H
#define IMGSIM_CATALOG_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "imgsim.h"
#include "index/exact.h"

/* ---- db.c: the handle */
const char *cat_dir(const imgsim_db *db);
/* IMGSIM_OK for a writer, else E_ARG ("<dir>: collection opened read-only"). */
imgsim_status cat_check_writable(const imgsim_db *db, imgsim_error *err);
/* A read-only handle's query runs in one read transaction (one snapshot of items, neighbours
 * and vectors); at its start, vectors committed by another process since are mapped.
 * No-ops for the writer. */
imgsim_status cat_read_begin(imgsim_db *db, imgsim_error *err);
void cat_read_end(imgsim_db *db);
/* The searchable view of the vectors (valid until the next write or compaction). */
exact_set cat_set(const imgsim_db *db);
/* Row r's vector (r < cat_set(db).n). */
const float *vec_row(const imgsim_db *db, uint32_t r);

/* ---- write.c: the write transaction
 *
 * Every change to the catalogue is one transaction:
 *   cat_write_begin; cat_write_vectors / cat_write_vector_key / cat_write_item / ...;
 *   cat_write_commit (or cat_write_abort);
 * and after the last one, cat_after_write. The commit keeps the durability invariant above:
 * appended vectors are durable before it records them (meta.nrows); a transaction that adds
 * or drops rows bumps meta.gen; once committed, the new rows are mapped and the dropped ones
 * marked dead in memory. A failed commit aborts. */
imgsim_status cat_write_begin(imgsim_db *db, imgsim_error *err);   /* writers only */
imgsim_status cat_write_commit(imgsim_db *db, imgsim_error *err);
/* Undo the open transaction: roll back, forget its drops, truncate its appended vectors. */
void cat_write_abort(imgsim_db *db);
/* Append `n` vectors and make them durable; they get rows *first, *first + 1, ... */
imgsim_status cat_write_vectors(imgsim_db *db, const float *vecs, size_t n, uint32_t *first,
                                imgsim_error *err);
/* Record appended row `row` as the live vector of content `key` (logged as an addition). */
imgsim_status cat_write_vector_key(imgsim_db *db, uint32_t row, const char *key,
                                   imgsim_error *err);

/* An item as ingest writes it (strings borrowed; label/meta_json NULL or "" for none). */
typedef struct cat_item_rec {
    const char *id, *source, *hash, *label, *meta_json;
    long long size, mtime_ns;    /* the file's stamp, to skip it when unchanged */
    int width, height;
    int has_box;
    int box[4];
} cat_item_rec;

/* Insert or replace item it->id, pointing at vector `row` (a replaced item keeps its
 * `added` time); the row it used before is dropped when no item uses it any more. */
imgsim_status cat_write_item(imgsim_db *db, const cat_item_rec *it, uint32_t row,
                             imgsim_error *err);
/* Set an existing item's label and metadata (NULL or "": none). */
imgsim_status cat_write_item_meta(imgsim_db *db, const char *id, const char *label,
                                  const char *meta_json, imgsim_error *err);
/* Delete items, in their own transaction; a vector row dies with its last item. Unknown ids
 * are reported (E_NOTFOUND, the first one named) after the others are deleted. */
imgsim_status cat_items_delete(imgsim_db *db, const char *const *ids, size_t n, size_t *removed,
                               imgsim_error *err);
/* After writes: the neighbour table brought up to date, the vector file compacted when
 * enough rows are dead, the HNSW index (if any) brought in step. */
imgsim_status cat_after_write(imgsim_db *db, imgsim_error *err);

/* ---- rows.c: typed reads for ingest and evaluation */

/* What the catalogue records of an item's file (ingest's "unchanged?" test). */
typedef struct cat_item_file {
    long long row;               /* its vector row; -1: no such item */
    char *source, *label, *meta_json;   /* owned (label/meta NULL when none) */
    long long size, mtime_ns;
    int has_box;
    int box[4];
} cat_item_file;

imgsim_status cat_item_file_get(imgsim_db *db, const char *id, cat_item_file *out,
                                imgsim_error *err);
void cat_item_file_free(cat_item_file *f);
/* Row holding content `key` (*row = -1: none). */
imgsim_status cat_key_row(imgsim_db *db, const char *key, long long *row, imgsim_error *err);
/* Width and height recorded for an item using `row` (0 x 0: none). */
imgsim_status cat_row_size(imgsim_db *db, uint32_t row, int *w, int *h, imgsim_error *err);
/* Call fn for every item's id and source (strings valid during the call); a non-OK return
 * stops the walk and is returned. */
typedef imgsim_status (*cat_source_fn)(void *user, const char *id, const char *source,
                                       imgsim_error *err);
imgsim_status cat_item_sources(imgsim_db *db, cat_source_fn fn, void *user, imgsim_error *err);

/* Items with a live vector, in id order, with their label: the label column, or metadata key
 * `column` (empty values are NULL). */
typedef struct cat_labelled {
    size_t n;
    char **ids;
    char **labels;
    uint32_t *rows;
} cat_labelled;

imgsim_status cat_labelled_get(imgsim_db *db, const char *column, cat_labelled *out,
                               imgsim_error *err);
void cat_labelled_free(cat_labelled *l);

/* ---- items.c: an item's row, and which items a query may return */

/* Row of item `id`, checked alive; IMGSIM_E_NOTFOUND if unknown. */
imgsim_status cat_item_row(imgsim_db *db, const char *id, uint32_t *row, imgsim_error *err);

typedef struct cat_filter {
    const imgsim_where *w;       /* --where conditions, all must hold */
    int nw;
    const char *label;           /* only items with this label (NULL: any) */
    int labelled;                /* only items that have a label */
} cat_filter;

/* Bitmap over vector rows (cat_set(db).n bytes, caller frees): rows with at least one item
 * passing f. *rows = NULL when f lets every item through. */
imgsim_status cat_filter_rows(imgsim_db *db, const cat_filter *f, uint8_t **rows,
                              imgsim_error *err);

/* The items of one vector row that pass a filter, in id order:
 *   cat_row_items_open(db, f, &it); then per row cat_row_items_seek(it, row) and
 *   cat_row_items_next until *got == 0; cat_row_items_close(it). */
typedef struct cat_row_items cat_row_items;
imgsim_status cat_row_items_open(imgsim_db *db, const cat_filter *f, cat_row_items **out,
                                 imgsim_error *err);
void cat_row_items_seek(cat_row_items *it, uint32_t row);
/* The next item into *out (release with imgsim_item_free); *got = 0 after the last. */
imgsim_status cat_row_items_next(cat_row_items *it, imgsim_item *out, int *got,
                                 imgsim_error *err);
void cat_row_items_close(cat_row_items *it);

/* ---- neighbours.c: the precomputed table */
/* Read row r's stored list (up to k hits; the caller has checked the table is fresh with
 * imgsim_neighbours_info); returns the count, or -1 when the read fails. */
int nbr_read(imgsim_db *db, uint32_t r, exact_hit *out, int k);

/* ---- ann.c: the HNSW index (index/hnsw.h) kept in step with the catalogue
 *
 * The index lives in ann.<seq>.hnsw (a new <seq> per save: hnsw_save writes a temporary file,
 * fsyncs and renames it), memory-mapped for search. Meta keys:
 *   ann_file                  the current index file (absent: the collection has no index)
 *   ann_metric, ann_m, ann_efc, ann_ef, ann_storage, ann_pca, ann_whiten   its parameters
 *   ann_vec_file, ann_rows    the vector file generation whose row numbers it uses, and the
 *                             rows [0, ann_rows) it covered when saved (every row then alive)
 *   ann_gen, ann_nodes        the collection generation and node count at that save
 *   ann_seq                   last <seq> used (kept across a drop, so names never repeat)
 * Crash story: the new file is durable before the transaction that names it commits, and the
 * old one is deleted only after; a crash leaves the catalogue naming a complete file, and
 * strays are deleted by the next writer. The index may lag the catalogue (a crash between
 * the catalogue commit and the index save, a reader's older file, or a deliberately lazy
 * save): rows dropped since are filtered out by the live-row bitmap and rows added since
 * (ann_rows..nrows) are searched exactly and merged, so a lagging index still answers
 * exactly what a current one would. A writer catches up by reconciling the index with the
 * live rows (insert missing, remove dead); a missing or damaged file, or a compaction
 * (ann_vec_file no longer the vector file), makes it rebuild; a reader searches exactly. */
/* Search the index for the k rows nearest `q` (filter/exclude as in hnsw_search; ef 0: the
 * index's default). *used = 0 when the index cannot answer (then *why says why, or is NULL
 * when the collection simply has no index): the caller searches exactly. */
imgsim_status ann_search(imgsim_db *db, imgsim_metric m, const float *q, int k, int ef,
                         const uint8_t *filter, uint32_t exclude, exact_hit *out, int *nout,
                         int *used, const char **why, imgsim_error *err);
#endif

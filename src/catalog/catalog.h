/*
 * catalog.h — the collection on disk: a SQLite catalogue plus an append-only vector file.
 *
 * Layout of a collection directory:
 *   catalog.sqlite      items, distinct vectors, neighbour table, change log, meta (WAL mode)
 *   vectors.<G>.f32     64-byte header ("IMGSIMV1", dim) then one float32 row per vector;
 *                       <G> is the file generation, named in meta.vec_file
 *   lock                flock()ed exclusively by the one writer
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

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "imgsim.h"
#include "index/exact.h"

struct imgsim_db {
    char *dir;
    sqlite3 *sql;
    int writable;
    int lock_fd;
    char model[64];
    int dim;
    uint64_t gen;           /* bumped by every commit that adds or drops vector rows */

    /* the vector file */
    int vec_fd;
    char vec_name[64];
    size_t nrows;           /* committed rows (live or dead) */
    size_t pending;         /* rows appended past nrows, not yet committed */
    void *map_base;         /* read-only mapping of the file's first map_len bytes */
    size_t map_len;
    const float *map;       /* rows [0, nrows) inside the mapping; NULL when nrows == 0 */
    float *norms;           /* nrows L2 norms */
    uint8_t *alive;         /* nrows flags */
    size_t cap;             /* allocated entries of norms/alive */
    size_t nalive;
    /* rows dropped by the open transaction: marked dead in memory only once it commits */
    uint32_t *drops;
    size_t ndrops, capdrops;
    /* ann.c: the mapped HNSW index and its search scratch (NULL until a query needs it;
     * freed by imgsim_db_close through ann_close) */
    struct ann_state *ann;
};

#define VEC_HEADER 64

/* ---- db.c: open/close, schema, meta, transactions */
imgsim_status cat_meta_get(imgsim_db *db, const char *key, char *buf, size_t n, imgsim_error *err);
imgsim_status cat_meta_set(imgsim_db *db, const char *key, const char *value, imgsim_error *err);
imgsim_status cat_meta_set_u64(imgsim_db *db, const char *key, uint64_t v, imgsim_error *err);
uint64_t cat_meta_u64(imgsim_db *db, const char *key, uint64_t def);
imgsim_status cat_exec(imgsim_db *db, const char *sql, imgsim_error *err);
imgsim_status cat_begin(imgsim_db *db, imgsim_error *err);    /* BEGIN IMMEDIATE */
imgsim_status cat_commit(imgsim_db *db, imgsim_error *err);
void cat_rollback(imgsim_db *db);
imgsim_status cat_sql_fail(imgsim_db *db, imgsim_error *err, const char *what);
/* A read-only handle's query runs in one read transaction (one snapshot of items, neighbours
 * and vectors); at its start, vectors committed by another process since are mapped.
 * No-ops for the writer. */
imgsim_status cat_read_begin(imgsim_db *db, imgsim_error *err);
void cat_read_end(imgsim_db *db);
imgsim_status cat_prepare(imgsim_db *db, const char *sql, sqlite3_stmt **st, imgsim_error *err);
/* The searchable view of the vectors (valid until the next append or compaction). */
exact_set cat_set(const imgsim_db *db);

/* ---- vecfile.c: the vector file */
imgsim_status vec_open(imgsim_db *db, imgsim_error *err);    /* map file, load alive + norms */
void vec_close(imgsim_db *db);
/* Append `n` rows at row numbers nrows.. and make them durable (not yet committed). */
imgsim_status vec_append(imgsim_db *db, const float *rows, size_t n, imgsim_error *err);
/* After the commit that recorded them: count the appended rows as committed and map them. */
imgsim_status vec_publish(imgsim_db *db, imgsim_error *err);
/* After a failed commit: forget the appended rows (truncate them away). */
void vec_discard(imgsim_db *db);
/* Row r's vector (r < nrows). */
const float *vec_row(const imgsim_db *db, uint32_t r);
/* Rewrite the file without dead rows when they are over a quarter of it (renumbers rows in
 * vectors, items and neighbours in the same transaction). */
imgsim_status vec_compact_if_needed(imgsim_db *db, int force, imgsim_error *err);

/* ---- items.c: item rows */
imgsim_status cat_item_read(sqlite3_stmt *st, int col0, imgsim_item *out);   /* from ITEM_COLS */
#define ITEM_COLS "id, source, hash, label, meta, width, height, box_x, box_y, box_w, box_h, added"
/* Row of item `id`; IMGSIM_E_NOTFOUND if unknown. */
imgsim_status cat_item_row(imgsim_db *db, const char *id, uint32_t *row, imgsim_error *err);
/* Delete items (inside a transaction); drops vector rows left without items. */
imgsim_status cat_items_delete(imgsim_db *db, const char *const *ids, size_t n, size_t *removed,
                               imgsim_error *err);
/* Mark a vector row dead (inside a transaction; the change is logged, and the row is
 * remembered until the transaction ends: cat_drops_apply after COMMIT, cat_drops_forget
 * after ROLLBACK). */
imgsim_status cat_row_drop(imgsim_db *db, uint32_t row, imgsim_error *err);
void cat_drops_apply(imgsim_db *db);
void cat_drops_forget(imgsim_db *db);
/* Bitmap over vector rows (nrows bytes, caller frees): rows having at least one item that
 * satisfies every condition (and has a label, with `labelled`). */
imgsim_status cat_where_rows(imgsim_db *db, const imgsim_where *w, int nw, int labelled,
                             uint8_t **rows, imgsim_error *err);
/* SQL condition text and bindings for --where (shared by query and export). */
imgsim_status cat_where_sql(const imgsim_where *w, int nw, char **sql, imgsim_error *err);
imgsim_status cat_where_bind(sqlite3_stmt *st, int first, const imgsim_where *w, int nw);

/* ---- neighbours.c: the precomputed table */
/* Read row r's stored list (up to k hits; the caller has checked the table is fresh with
 * imgsim_neighbours_info); returns the count, or -1 when the read fails. */
int nbr_read(imgsim_db *db, uint32_t r, exact_hit *out, int k);
/* After adds or removes: bring an existing table up to date (incrementally when the change
 * is small); without a table, just forget the change log. */
imgsim_status nbr_refresh(imgsim_db *db, imgsim_error *err);

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
/* After a commit that added or dropped rows: bring an existing index in step and save it
 * (lazy: a large index may be left a little behind, see ann.c). No-op without an index. */
imgsim_status ann_refresh(imgsim_db *db, int lazy, imgsim_error *err);
/* Free the handle's index state (mapping, search scratch); imgsim_db_close calls it. */
void ann_close(imgsim_db *db);

#endif

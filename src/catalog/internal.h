/*
 * internal.h — what only src/catalog/ (and the catalogue's own tests) may see: the layout of
 * struct imgsim_db, the SQLite helpers, the vector file's primitives and the low-level pieces
 * of the write transaction. Everything else in the library goes through catalog.h, which has
 * no SQL and no struct layout.
 */
#ifndef IMGSIM_CATALOG_INTERNAL_H
#define IMGSIM_CATALOG_INTERNAL_H

#include <sqlite3.h>

#include "catalog/catalog.h"

/* Statements prepared once per handle (db.c: their SQL; cat_cached hands them out). */
enum cat_stmt {
    CAT_Q_ITEM_FILE,    /* an item's row, file stamp, label, metadata and box, by id */
    CAT_Q_ITEM_ROW,     /* an item's row, by id */
    CAT_Q_KEY_ROW,      /* the row holding a content key */
    CAT_Q_ROW_SIZE,     /* width and height of one item of a row */
    CAT_Q_ROW_USED,     /* whether any item names a row */
    CAT_W_ITEM,         /* insert or replace an item (keeping its `added`) */
    CAT_W_ITEM_META,    /* set an item's label and metadata */
    CAT_W_ITEM_DELETE,  /* delete an item */
    CAT_W_VECTOR,       /* record a live vector row and its key */
    CAT_W_VECTOR_DROP,  /* forget a vector row */
    CAT_W_LOG,          /* log a row added (op 1) or dropped (op 2) */
    CAT_NSTMT
};

struct imgsim_db {
    char *dir;
    sqlite3 *sql;
    int writable;
    int lock_fd;
    char model[64];
    int dim;
    uint64_t gen;           /* bumped by every commit that adds or drops vector rows */
    sqlite3_stmt *stmt[CAT_NSTMT]; /* cat_cached's statements (NULL until first used) */

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
    /* the open write transaction (write.c): rows it drops, marked dead in memory only once
     * it commits, and whether it bumps the generation without adding or dropping rows */
    uint32_t *drops;
    size_t ndrops, capdrops;
    int bump;
    /* ann.c: the mapped HNSW index and its search scratch (NULL until a query needs it;
     * freed by imgsim_db_close through ann_close) */
    struct ann_state *ann;
};

#define VEC_HEADER 64

/* ---- db.c: SQL helpers, meta, raw transactions */
/* Delete the files of db->dir named `prefix`, then at least one character, then one of
 * `suffixes` (NULL-terminated) — except `keep` (may be NULL): the strays of an interrupted
 * or replaced file generation. Best effort: failures are ignored. */
void cat_remove_strays(imgsim_db *db, const char *prefix, const char *const *suffixes,
                       const char *keep);
imgsim_status cat_meta_get(imgsim_db *db, const char *key, char *buf, size_t n, imgsim_error *err);
imgsim_status cat_meta_set(imgsim_db *db, const char *key, const char *value, imgsim_error *err);
imgsim_status cat_meta_set_u64(imgsim_db *db, const char *key, uint64_t v, imgsim_error *err);
/* A number from meta; `def` when unset or unreadable. */
uint64_t cat_meta_u64(imgsim_db *db, const char *key, uint64_t def);
/* Same, but a failing read is an error (unset: `def`). */
imgsim_status cat_meta_get_u64(imgsim_db *db, const char *key, uint64_t def, uint64_t *v,
                               imgsim_error *err);
imgsim_status cat_exec(imgsim_db *db, const char *sql, imgsim_error *err);
imgsim_status cat_sql_fail(imgsim_db *db, imgsim_error *err, const char *what);
imgsim_status cat_prepare(imgsim_db *db, const char *sql, sqlite3_stmt **st, imgsim_error *err);
/* *n = the one number a query such as "SELECT count(*) ..." returns. */
imgsim_status cat_count(imgsim_db *db, const char *sql, size_t *n, imgsim_error *err);
/* The handle's prepared statement `which`, reset and unbound. Callers reset it again when
 * done (an unreset statement would hold a read-only handle's snapshot open). */
imgsim_status cat_cached(imgsim_db *db, enum cat_stmt which, sqlite3_stmt **st,
                         imgsim_error *err);
/* Step a write statement to completion and reset it. */
imgsim_status cat_step_done(imgsim_db *db, sqlite3_stmt *st, const char *what, imgsim_error *err);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK: only write.c's transaction uses them. */
imgsim_status cat_begin(imgsim_db *db, imgsim_error *err);
imgsim_status cat_commit(imgsim_db *db, imgsim_error *err);
void cat_rollback(imgsim_db *db);

/* ---- write.c: inside the write transaction */
/* Mark a vector row dead: its `vectors` entry goes, the change is logged, and the row is
 * marked dead in memory when the transaction commits. */
imgsim_status cat_row_drop(imgsim_db *db, uint32_t row, imgsim_error *err);
/* The transaction bumps the generation even though it adds and drops no rows (compaction). */
void cat_write_bump(imgsim_db *db);

/* ---- items.c: item rows */
#define ITEM_COLS "id, source, hash, label, meta, width, height, box_x, box_y, box_w, box_h, added"
imgsim_status cat_item_read(sqlite3_stmt *st, int col0, imgsim_item *out);   /* from ITEM_COLS */
/* Column c's text, strdup()ed (NULL for SQL NULL, or without memory). */
char *cat_column_dup(sqlite3_stmt *st, int c);
/* SQL condition text and bindings for --where. */
imgsim_status cat_where_sql(const imgsim_where *w, int nw, char **sql, imgsim_error *err);
void cat_where_bind(sqlite3_stmt *st, int first, const imgsim_where *w, int nw);

/* ---- vecfile.c: the vector file */
imgsim_status vec_open(imgsim_db *db, imgsim_error *err);    /* map file, load alive + norms */
void vec_close(imgsim_db *db);
/* Append `n` rows at row numbers nrows + pending.. and make them durable (not committed). */
imgsim_status vec_append(imgsim_db *db, const float *rows, size_t n, imgsim_error *err);
/* After the commit that recorded them: count the appended rows as committed and map them. */
imgsim_status vec_publish(imgsim_db *db, imgsim_error *err);
/* After a failed commit: forget the appended rows (truncate them away). */
void vec_discard(imgsim_db *db);
/* Rewrite the file without dead rows when they are over a quarter of it (renumbers rows in
 * vectors, items and neighbours in the same transaction). */
imgsim_status vec_compact_if_needed(imgsim_db *db, int force, imgsim_error *err);

/* ---- neighbours.c */
/* After adds or removes: bring an existing table up to date (incrementally when the change
 * is small); without a table, just forget the change log. */
imgsim_status nbr_refresh(imgsim_db *db, imgsim_error *err);

/* ---- ann.c */
/* After a commit that added or dropped rows: bring an existing index in step and save it
 * (lazy: a large index may be left a little behind, see ann.c). No-op without an index. */
imgsim_status ann_refresh(imgsim_db *db, int lazy, imgsim_error *err);
/* Free the handle's index state (mapping, search scratch); imgsim_db_close calls it. */
void ann_close(imgsim_db *db);

#endif

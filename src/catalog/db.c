/*
 * db.c — opening and closing a collection: the directory, the writer's lock, the SQLite
 * catalogue (schema, meta keys, raw transactions, the handle's prepared statements) and the
 * model check; the uploads folder; removing stray files of replaced generations. The on-disk
 * layout and the durability invariant are described in catalog.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog/internal.h"
#include "core/error.h"

#define SCHEMA_VERSION "1"

static const char *schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS vectors(row INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS items("
    "  id TEXT PRIMARY KEY, row INTEGER NOT NULL, source TEXT NOT NULL, hash TEXT NOT NULL,"
    "  size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL DEFAULT 0,"
    "  width INTEGER NOT NULL DEFAULT 0, height INTEGER NOT NULL DEFAULT 0, label TEXT,"
    "  box_x INTEGER, box_y INTEGER, box_w INTEGER, box_h INTEGER, meta TEXT,"
    "  model TEXT NOT NULL, added REAL NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS items_row ON items(row);"
    "CREATE INDEX IF NOT EXISTS items_label ON items(label);"
    "CREATE INDEX IF NOT EXISTS items_source ON items(source);"
    "CREATE TABLE IF NOT EXISTS neighbours(row INTEGER NOT NULL, rank INTEGER NOT NULL,"
    "  nbr INTEGER NOT NULL, score REAL NOT NULL, PRIMARY KEY(row, rank)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS changes(gen INTEGER NOT NULL, row INTEGER NOT NULL,"
    "  op INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS changes_gen ON changes(gen);";

imgsim_status cat_sql_fail(imgsim_db *db, imgsim_error *err, const char *what)
{
    int rc = sqlite3_errcode(db->sql);
    imgsim_status code = (rc == SQLITE_NOMEM) ? IMGSIM_E_NOMEM
                         : (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) ? IMGSIM_E_IO
                         : (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? IMGSIM_E_IO
                                                                        : IMGSIM_E_INTERNAL;
    return error_set(err, code, "%s/catalog.sqlite: %s: %s", db->dir, what,
                     sqlite3_errmsg(db->sql));
}

imgsim_status cat_exec(imgsim_db *db, const char *sql, imgsim_error *err)
{
    if (sqlite3_exec(db->sql, sql, NULL, NULL, NULL) != SQLITE_OK)
        return cat_sql_fail(db, err, "statement failed");
    return IMGSIM_OK;
}

imgsim_status cat_prepare(imgsim_db *db, const char *sql, sqlite3_stmt **st, imgsim_error *err)
{
    if (sqlite3_prepare_v2(db->sql, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return cat_sql_fail(db, err, "cannot prepare a statement");
    }
    return IMGSIM_OK;
}

/* The SQL of the handle's cached statements (enum cat_stmt). */
static const char *const stmt_sql[CAT_NSTMT] = {
    [CAT_Q_ITEM_FILE] = "SELECT row, source, size, mtime_ns, label, meta, box_x, box_y, box_w, "
                        "box_h FROM items WHERE id = ?",
    [CAT_Q_ITEM_ROW] = "SELECT row FROM items WHERE id = ?",
    [CAT_Q_KEY_ROW] = "SELECT row FROM vectors WHERE key = ?",
    [CAT_Q_ROW_SIZE] = "SELECT width, height FROM items WHERE row = ? LIMIT 1",
    [CAT_Q_ROW_USED] = "SELECT 1 FROM items WHERE row = ? LIMIT 1",
    [CAT_W_ITEM] = "INSERT OR REPLACE INTO items(id, row, source, hash, size, mtime_ns, width, "
                   "height, label, box_x, box_y, box_w, box_h, meta, model, added) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                   "COALESCE((SELECT added FROM items WHERE id = ?1), ?16))",
    [CAT_W_ITEM_META] = "UPDATE items SET label = ?2, meta = ?3 WHERE id = ?1",
    [CAT_W_ITEM_DELETE] = "DELETE FROM items WHERE id = ?",
    [CAT_W_VECTOR] = "INSERT INTO vectors(row, key) VALUES(?, ?)",
    [CAT_W_VECTOR_DROP] = "DELETE FROM vectors WHERE row = ?",
    [CAT_W_LOG] = "INSERT INTO changes(gen, row, op) VALUES(?, ?, ?)",
};

imgsim_status cat_cached(imgsim_db *db, enum cat_stmt which, sqlite3_stmt **st,
                         imgsim_error *err)
{
    if (!db->stmt[which]) {
        imgsim_status s = cat_prepare(db, stmt_sql[which], &db->stmt[which], err);
        if (s != IMGSIM_OK)
            return s;
    }
    *st = db->stmt[which];
    sqlite3_reset(*st);
    sqlite3_clear_bindings(*st);
    return IMGSIM_OK;
}

imgsim_status cat_step_done(imgsim_db *db, sqlite3_stmt *st, const char *what, imgsim_error *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? IMGSIM_OK : cat_sql_fail(db, err, what);
}

imgsim_status cat_begin(imgsim_db *db, imgsim_error *err)
{
    return cat_exec(db, "BEGIN IMMEDIATE", err);
}

imgsim_status cat_commit(imgsim_db *db, imgsim_error *err)
{
    return cat_exec(db, "COMMIT", err);
}

void cat_rollback(imgsim_db *db)
{
    if (!sqlite3_get_autocommit(db->sql))
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
}

imgsim_status cat_meta_get(imgsim_db *db, const char *key, char *buf, size_t n, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, "SELECT value FROM meta WHERE key = ?", &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(buf, n, "%s", (const char *)sqlite3_column_text(st, 0));
    } else if (rc == SQLITE_DONE) {
        s = error_set(err, IMGSIM_E_NOTFOUND, "meta key %s not set", key);
    } else {
        s = cat_sql_fail(db, err, "cannot read meta");
    }
    sqlite3_finalize(st);
    return s;
}

uint64_t cat_meta_u64(imgsim_db *db, const char *key, uint64_t def)
{
    char buf[32];
    if (cat_meta_get(db, key, buf, sizeof buf, NULL) != IMGSIM_OK)
        return def;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    return (errno || *end || end == buf) ? def : (uint64_t)v;
}

imgsim_status cat_meta_get_u64(imgsim_db *db, const char *key, uint64_t def, uint64_t *v,
                               imgsim_error *err)
{
    char buf[32];
    imgsim_error e = {0};
    imgsim_status s = cat_meta_get(db, key, buf, sizeof buf, &e);
    *v = def;
    if (s == IMGSIM_E_NOTFOUND)
        return IMGSIM_OK;
    if (s != IMGSIM_OK) {
        if (err)
            *err = e;
        return s;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (errno || *end || end == buf)
        return error_set(err, IMGSIM_E_IO, "%s/catalog.sqlite: meta key %s is not a number",
                         db->dir, key);
    *v = (uint64_t)x;
    return IMGSIM_OK;
}

imgsim_status cat_meta_set(imgsim_db *db, const char *key, const char *value, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s =
        cat_prepare(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", &st, err);
    if (s != IMGSIM_OK)
        return s;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        s = cat_sql_fail(db, err, "cannot write meta");
    sqlite3_finalize(st);
    return s;
}

imgsim_status cat_meta_set_u64(imgsim_db *db, const char *key, uint64_t v, imgsim_error *err)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cat_meta_set(db, key, buf, err);
}

exact_set cat_set(const imgsim_db *db)
{
    exact_set s = {db->map, db->nrows, db->dim, db->norms, db->alive};
    return s;
}

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Take the writer's lock (non-blocking: a second writer is told, not made to wait). */
static imgsim_status take_lock(imgsim_db *db, imgsim_error *err)
{
    char *lp = path_in(db->dir, "lock");
    if (!lp)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    db->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(lp);
    if (db->lock_fd < 0)
        return error_set(err, IMGSIM_E_IO, "%s: cannot create lock file: %s", db->dir,
                         strerror(errno));
    if (flock(db->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return error_set(err, IMGSIM_E_IO,
                         "%s: another imgsim process is writing this collection", db->dir);
    return IMGSIM_OK;
}

/* First open of a new collection: record model, dim and an empty vector file name. */
static imgsim_status init_meta(imgsim_db *db, const char *model, int dim, imgsim_error *err)
{
    imgsim_status s;
    char buf[32];
    if ((s = cat_write_begin(db, err)) != IMGSIM_OK)
        return s;
    snprintf(buf, sizeof buf, "%d", dim);
    if ((s = cat_meta_set(db, "schema", SCHEMA_VERSION, err)) == IMGSIM_OK &&
        (s = cat_meta_set(db, "model", model, err)) == IMGSIM_OK &&
        (s = cat_meta_set(db, "dim", buf, err)) == IMGSIM_OK &&
        (s = cat_meta_set(db, "vec_file", "vectors.1.f32", err)) == IMGSIM_OK &&
        (s = cat_meta_set(db, "nrows", "0", err)) == IMGSIM_OK &&
        (s = cat_meta_set(db, "gen", "0", err)) == IMGSIM_OK)
        return cat_write_commit(db, err);
    cat_write_abort(db);
    return s;
}

imgsim_status imgsim_db_open(const char *dir, int mode, const char *model, int dim,
                             imgsim_db **out, imgsim_error *err)
{
    *out = NULL;
    if (!dir || !*dir)
        return error_set(err, IMGSIM_E_ARG, "no collection directory given");
    int create = (mode & IMGSIM_DB_CREATE) == IMGSIM_DB_CREATE;
    int write = (mode & IMGSIM_DB_WRITE) != 0;
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (!create)
            return error_set(err, IMGSIM_E_NOTFOUND,
                             "%s: no such collection (create it with imgsim index)", dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return error_set(err, IMGSIM_E_IO, "%s: cannot create directory: %s", dir,
                             strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        return error_set(err, IMGSIM_E_ARG, "%s: not a directory", dir);
    }

    imgsim_db *db = calloc(1, sizeof *db);
    if (!db || !(db->dir = strdup(dir))) {
        free(db);
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    }
    db->lock_fd = db->vec_fd = -1;
    db->writable = write;
    imgsim_status s = IMGSIM_OK;
    char *cp = path_in(dir, "catalog.sqlite");
    if (!cp) {
        s = error_set(err, IMGSIM_E_NOMEM, "out of memory");
        goto fail;
    }
    if (!write && access(cp, F_OK) != 0) {
        s = error_set(err, IMGSIM_E_NOTFOUND, "%s: not an imgsim collection (no catalog.sqlite)",
                      dir);
        free(cp);
        goto fail;
    }
    if (write && (s = take_lock(db, err)) != IMGSIM_OK) {
        free(cp);
        goto fail;
    }
    int flags = (write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY) |
                SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(cp, &db->sql, flags, NULL);
    free(cp);
    if (rc != SQLITE_OK) {
        s = db->sql ? cat_sql_fail(db, err, "cannot open")
                    : error_set(err, IMGSIM_E_NOMEM, "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db->sql, 5000);
    sqlite3_extended_result_codes(db->sql, 0);
    if (write) {
        /* WAL: readers (a running server) keep reading while a writer commits. Each commit
         * is durable (synchronous=FULL): the vector file is fsynced before it, see catalog.h. */
        if ((s = cat_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err)) !=
                IMGSIM_OK ||
            (s = cat_exec(db, schema, err)) != IMGSIM_OK)
            goto fail;
    }
    char buf[128];
    imgsim_error merr = {0};
    imgsim_status ms = cat_meta_get(db, "model", buf, sizeof buf, &merr);
    if (ms != IMGSIM_OK && ms != IMGSIM_E_NOTFOUND) {
        if (err)
            *err = merr;
        s = ms;
        goto fail;
    }
    if (ms == IMGSIM_E_NOTFOUND) {
        if (!create) {
            s = error_set(err, IMGSIM_E_NOTFOUND, "%s: not an imgsim collection (empty catalogue)",
                          dir);
            goto fail;
        }
        if (!model || dim <= 0) {
            s = error_set(err, IMGSIM_E_ARG, "%s: a new collection needs a model", dir);
            goto fail;
        }
        if ((s = init_meta(db, model, dim, err)) != IMGSIM_OK)
            goto fail;
        snprintf(buf, sizeof buf, "%s", model);
    }
    if (strlen(buf) >= sizeof db->model) {
        s = error_set(err, IMGSIM_E_IO, "%s: model name too long in catalogue", dir);
        goto fail;
    }
    memcpy(db->model, buf, strlen(buf) + 1);
    if (model && strcmp(model, db->model) != 0) {
        s = error_set(err, IMGSIM_E_ARG,
                      "%s was built with model %s, not %s: use --model %s (or a new --db)", dir,
                      db->model, model, db->model);
        goto fail;
    }
    db->dim = (int)cat_meta_u64(db, "dim", 0);
    if (db->dim <= 0 || db->dim > 65536 || (dim > 0 && dim != db->dim)) {
        s = error_set(err, IMGSIM_E_IO, "%s: catalogue records dimension %d, expected %d", dir,
                      db->dim, dim);
        goto fail;
    }
    /* One read transaction: meta, the vector file and its live rows from one snapshot, even
     * while a writer commits. */
    if ((s = cat_exec(db, "BEGIN", err)) != IMGSIM_OK)
        goto fail;
    db->gen = cat_meta_u64(db, "gen", 0);
    s = vec_open(db, err);
    sqlite3_exec(db->sql, "COMMIT", NULL, NULL, NULL);
    if (s != IMGSIM_OK)
        goto fail;
    *out = db;
    return IMGSIM_OK;
fail:
    imgsim_db_close(db);
    return s;
}

imgsim_status cat_read_begin(imgsim_db *db, imgsim_error *err)
{
    if (db->writable)
        return IMGSIM_OK; /* the writer's own view is always current */
    imgsim_status s = cat_exec(db, "BEGIN", err);
    if (s != IMGSIM_OK)
        return s;
    /* another process committed since we mapped the vectors: map them again */
    uint64_t gen = cat_meta_u64(db, "gen", db->gen);
    char name[64] = "";
    cat_meta_get(db, "vec_file", name, sizeof name, NULL);
    size_t nrows = (size_t)cat_meta_u64(db, "nrows", db->nrows);
    if (gen != db->gen || nrows != db->nrows || strcmp(name, db->vec_name) != 0) {
        vec_close(db);
        db->gen = gen;
        if ((s = vec_open(db, err)) != IMGSIM_OK) {
            sqlite3_exec(db->sql, "COMMIT", NULL, NULL, NULL);
            return s;
        }
    }
    return IMGSIM_OK;
}

void cat_read_end(imgsim_db *db)
{
    if (!db->writable && !sqlite3_get_autocommit(db->sql))
        sqlite3_exec(db->sql, "COMMIT", NULL, NULL, NULL);
}

void imgsim_db_close(imgsim_db *db)
{
    if (!db)
        return;
    ann_close(db);
    vec_close(db);
    for (int i = 0; i < CAT_NSTMT; i++)
        sqlite3_finalize(db->stmt[i]);
    if (db->sql)
        sqlite3_close_v2(db->sql);
    if (db->lock_fd >= 0)
        close(db->lock_fd); /* releases the flock */
    free(db->drops);
    free(db->dir);
    free(db);
}

const char *cat_dir(const imgsim_db *db) { return db->dir; }

imgsim_status cat_check_writable(const imgsim_db *db, imgsim_error *err)
{
    if (!db->writable)
        return error_set(err, IMGSIM_E_ARG, "%s: collection opened read-only", db->dir);
    return IMGSIM_OK;
}

imgsim_status imgsim_db_uploads_dir(imgsim_db *db, char **path, imgsim_error *err)
{
    *path = NULL;
    imgsim_status s = cat_check_writable(db, err);
    if (s != IMGSIM_OK)
        return s;
    char *p = path_in(db->dir, "uploads");
    if (!p)
        return error_set(err, IMGSIM_E_NOMEM, "out of memory");
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        s = error_set(err, IMGSIM_E_IO, "%s: cannot create: %s", p, strerror(errno));
        free(p);
        return s;
    }
    *path = p;
    return IMGSIM_OK;
}

const char *imgsim_db_model(const imgsim_db *db) { return db->model; }
int imgsim_db_dim(const imgsim_db *db) { return db->dim; }
size_t imgsim_db_vectors(const imgsim_db *db) { return db->nalive; }

imgsim_status cat_count(imgsim_db *db, const char *sql, size_t *n, imgsim_error *err)
{
    sqlite3_stmt *st;
    *n = 0;
    imgsim_status s = cat_prepare(db, sql, &st, err);
    if (s != IMGSIM_OK)
        return s;
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(st, 0);
    else
        s = cat_sql_fail(db, err, "cannot count");
    sqlite3_finalize(st);
    return s;
}

imgsim_status imgsim_db_count(imgsim_db *db, size_t *n, imgsim_error *err)
{
    return cat_count(db, "SELECT count(*) FROM items", n, err);
}

void cat_remove_strays(imgsim_db *db, const char *prefix, const char *const *suffixes,
                       const char *keep)
{
    DIR *d = opendir(db->dir);
    if (!d)
        return;
    size_t pl = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        int ours = 0;
        for (const char *const *sf = suffixes; !ours && *sf; sf++) {
            size_t sl = strlen(*sf);
            ours = l > pl + sl && !strncmp(e->d_name, prefix, pl) &&
                   !strcmp(e->d_name + l - sl, *sf);
        }
        if (ours && (!keep || strcmp(e->d_name, keep) != 0)) {
            char p[4096];
            if (snprintf(p, sizeof p, "%s/%s", db->dir, e->d_name) < (int)sizeof p)
                unlink(p);
        }
    }
    closedir(d);
}

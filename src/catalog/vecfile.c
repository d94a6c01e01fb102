/*
 * vecfile.c — the collection's vector file: append-then-commit writes, a read-only memory
 * mapping for search, per-row norms and liveness, and compaction into a new file generation.
 *
 * Format: a 64-byte header — "IMGSIMV1", uint32 dim, uint32 row size in bytes, zeros — then
 * rows of dim float32 (host byte order, little-endian on every platform imgsim targets).
 * Only rows [0, meta.nrows) count; see catalog.h for why a crash can never corrupt them.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/internal.h"
#include "core/error.h"
#include "core/grow.h"

static const char MAGIC[8] = {'I', 'M', 'G', 'S', 'I', 'M', 'V', '1'};

static size_t row_bytes(const imgsim_db *db) { return (size_t)db->dim * sizeof(float); }

static imgsim_status io_fail(imgsim_db *db, imgsim_error *err, const char *what)
{
    return error_set(err, IMGSIM_E_IO, "%s/%s: %s: %s", db->dir, db->vec_name, what,
                     strerror(errno));
}

static int open_in_dir(const imgsim_db *db, const char *name, int flags)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", db->dir, name) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(p, flags | O_CLOEXEC, 0644);
}

/* Make a created or renamed directory entry durable. */
static int fsync_dir(const imgsim_db *db)
{
    int fd = open(db->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static int write_all(int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w, n -= (size_t)w, off += w;
    }
    return 0;
}

static int write_header(int fd, int dim)
{
    unsigned char h[VEC_HEADER] = {0};
    uint32_t d = (uint32_t)dim, rb = (uint32_t)dim * 4u;
    memcpy(h, MAGIC, 8);
    memcpy(h + 8, &d, 4);
    memcpy(h + 12, &rb, 4);
    return write_all(fd, h, sizeof h, 0);
}

/* Grow the norms/alive arrays to hold `n` rows. */
static imgsim_status reserve(imgsim_db *db, size_t n, imgsim_error *err)
{
    if (n <= db->cap)
        return IMGSIM_OK;
    if (n > ((size_t)1 << 40))
        return error_set(err, IMGSIM_E_IO, "%s: implausible vector count %zu", db->dir, n);
    size_t ncap = db->cap, acap = db->cap;
    if (grow_array((void **)&db->norms, &ncap, n, sizeof *db->norms, 1024) ||
        grow_array((void **)&db->alive, &acap, n, 1, 1024))
        return error_set(err, IMGSIM_E_NOMEM, "out of memory for %zu vectors", n);
    memset(db->alive + db->cap, 0, acap - db->cap);
    db->cap = acap;
    return IMGSIM_OK;
}

/* Map the first `rows` committed rows (replacing any previous mapping). */
static imgsim_status remap(imgsim_db *db, size_t rows, imgsim_error *err)
{
    if (db->map_base)
        munmap(db->map_base, db->map_len);
    db->map_base = NULL;
    db->map = NULL;
    db->map_len = 0;
    if (rows == 0)
        return IMGSIM_OK;
    size_t len = VEC_HEADER + rows * row_bytes(db);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, db->vec_fd, 0);
    if (m == MAP_FAILED)
        return io_fail(db, err, "cannot map the vector file");
    db->map_base = m;
    db->map_len = len;
    db->map = (const float *)((const char *)m + VEC_HEADER);
    return IMGSIM_OK;
}

const float *vec_row(const imgsim_db *db, uint32_t r)
{
    return db->map + (size_t)r * (size_t)db->dim;
}

/* Delete vectors.*.f32 files other than the current one (left by an interrupted compaction). */
static void remove_strays(imgsim_db *db)
{
    static const char *const suffixes[] = {".f32", NULL};
    cat_remove_strays(db, "vectors.", suffixes, db->vec_name);
}

static imgsim_status load_alive(imgsim_db *db, imgsim_error *err)
{
    sqlite3_stmt *st;
    imgsim_status s = cat_prepare(db, "SELECT row FROM vectors", &st, err);
    if (s != IMGSIM_OK)
        return s;
    memset(db->alive, 0, db->nrows);
    db->nalive = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 r = sqlite3_column_int64(st, 0);
        if (r < 0 || (size_t)r >= db->nrows) {
            sqlite3_finalize(st);
            return error_set(err, IMGSIM_E_IO,
                             "%s: catalogue names vector row %lld but the file has %zu rows",
                             db->dir, (long long)r, db->nrows);
        }
        if (!db->alive[r])
            db->nalive++;
        db->alive[r] = 1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return cat_sql_fail(db, err, "cannot read vectors");
    return IMGSIM_OK;
}

imgsim_status vec_open(imgsim_db *db, imgsim_error *err)
{
    imgsim_status s;
    if ((s = cat_meta_get(db, "vec_file", db->vec_name, sizeof db->vec_name, err)) != IMGSIM_OK)
        return s;
    if (strchr(db->vec_name, '/') || strncmp(db->vec_name, "vectors.", 8) != 0)
        return error_set(err, IMGSIM_E_IO, "%s: bad vector file name in catalogue", db->dir);
    uint64_t nrows = cat_meta_u64(db, "nrows", UINT64_MAX);
    if (nrows > ((uint64_t)1 << 40) / (uint64_t)row_bytes(db))
        return error_set(err, IMGSIM_E_IO, "%s: catalogue has no valid vector count (meta.nrows)",
                         db->dir);
    db->nrows = (size_t)nrows;
    size_t want = VEC_HEADER + db->nrows * row_bytes(db);

    db->vec_fd = open_in_dir(db, db->vec_name, db->writable ? O_RDWR | O_CREAT : O_RDONLY);
    if (db->vec_fd < 0) {
        if (errno == ENOENT && db->nrows == 0 && !db->writable)
            return reserve(db, 1, err); /* empty, never written */
        return io_fail(db, err, "cannot open");
    }
    struct stat sb;
    if (fstat(db->vec_fd, &sb) != 0)
        return io_fail(db, err, "cannot stat");
    if (sb.st_size == 0 && db->writable) {
        if (write_header(db->vec_fd, db->dim) != 0 || fdatasync(db->vec_fd) != 0 ||
            fsync_dir(db) != 0)
            return io_fail(db, err, "cannot write the header");
        sb.st_size = VEC_HEADER;
    }
    if (sb.st_size == 0 && db->nrows == 0)
        return reserve(db, 1, err);
    unsigned char h[VEC_HEADER];
    uint32_t d;
    if (pread(db->vec_fd, h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h, MAGIC, 8) != 0 ||
        (memcpy(&d, h + 8, 4), (int)d != db->dim))
        return error_set(err, IMGSIM_E_IO, "%s/%s: not a vector file of dimension %d", db->dir,
                         db->vec_name, db->dim);
    if ((size_t)sb.st_size < want)
        return error_set(err, IMGSIM_E_IO,
                         "%s/%s: truncated: the catalogue records %zu vectors, the file holds %zu",
                         db->dir, db->vec_name, db->nrows,
                         ((size_t)sb.st_size - VEC_HEADER) / row_bytes(db));
    if (db->writable) {
        /* Bytes past nrows come from an interrupted write that never committed. */
        if ((size_t)sb.st_size > want && ftruncate(db->vec_fd, (off_t)want) != 0)
            return io_fail(db, err, "cannot drop an unfinished append");
        remove_strays(db);
    }
    if ((s = reserve(db, db->nrows + 1, err)) != IMGSIM_OK || (s = remap(db, db->nrows, err)) != IMGSIM_OK ||
        (s = load_alive(db, err)) != IMGSIM_OK)
        return s;
    exact_norms(db->map, db->nrows, db->dim, db->norms);
    return IMGSIM_OK;
}

void vec_close(imgsim_db *db)
{
    if (db->map_base)
        munmap(db->map_base, db->map_len);
    db->map_base = NULL;
    db->map = NULL;
    if (db->vec_fd >= 0)
        close(db->vec_fd);
    db->vec_fd = -1;
    free(db->norms);
    free(db->alive);
    db->norms = NULL;
    db->alive = NULL;
    db->cap = 0;
}

imgsim_status vec_append(imgsim_db *db, const float *rows, size_t n, imgsim_error *err)
{
    if (!db->writable)
        return error_set(err, IMGSIM_E_ARG, "%s: collection opened read-only", db->dir);
    if (n == 0)
        return IMGSIM_OK;
    off_t off = (off_t)(VEC_HEADER + (db->nrows + db->pending) * row_bytes(db));
    if (write_all(db->vec_fd, rows, n * row_bytes(db), off) != 0)
        return io_fail(db, err, "cannot append vectors");
    if (fdatasync(db->vec_fd) != 0)
        return io_fail(db, err, "cannot flush vectors");
    db->pending += n;
    return IMGSIM_OK;
}

imgsim_status vec_publish(imgsim_db *db, imgsim_error *err)
{
    size_t old = db->nrows, n = db->pending;
    if (n == 0)
        return IMGSIM_OK;
    /* The rows are committed: count them whatever happens next, so that no later append can
     * reuse their numbers. If memory cannot follow, stop writing through this handle. */
    db->nrows += n;
    db->pending = 0;
    imgsim_status s = reserve(db, db->nrows + 1, err);
    if (s == IMGSIM_OK)
        s = remap(db, db->nrows, err);
    if (s != IMGSIM_OK) {
        db->writable = 0;
        return s;
    }
    exact_norms(vec_row(db, (uint32_t)old), n, db->dim, db->norms + old);
    memset(db->alive + old, 1, n);
    db->nalive += n;
    return IMGSIM_OK;
}

void vec_discard(imgsim_db *db)
{
    if (db->pending && db->vec_fd >= 0)
        (void)!ftruncate(db->vec_fd, (off_t)(VEC_HEADER + db->nrows * row_bytes(db)));
    db->pending = 0;
}

/* Renumber rows in one table column: new = map[old]; negative detour avoids key clashes. */
static imgsim_status renumber(imgsim_db *db, const char *table, const char *col,
                              imgsim_error *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE %s SET %s = -1 - (SELECT new FROM temp.rowmap WHERE old = %s.%s);"
             "UPDATE %s SET %s = -1 - %s;",
             table, col, table, col, table, col, col);
    return cat_exec(db, sql, err);
}

imgsim_status vec_compact_if_needed(imgsim_db *db, int force, imgsim_error *err)
{
    size_t dead = db->nrows - db->nalive;
    if (!db->writable || dead == 0 || (!force && (dead * 4 < db->nrows || dead < 64)))
        return IMGSIM_OK;
    unsigned gen = 0;
    if (sscanf(db->vec_name, "vectors.%u.f32", &gen) != 1)
        gen = 1;
    char newname[64];
    snprintf(newname, sizeof newname, "vectors.%u.f32", gen + 1);
    int fd = open_in_dir(db, newname, O_RDWR | O_CREAT | O_TRUNC);
    if (fd < 0)
        return error_set(err, IMGSIM_E_IO, "%s/%s: cannot create: %s", db->dir, newname,
                         strerror(errno));
    imgsim_status s = IMGSIM_OK;
    size_t nn = 0;
    if (write_header(fd, db->dim) != 0) {
        s = error_set(err, IMGSIM_E_IO, "%s/%s: write failed: %s", db->dir, newname,
                      strerror(errno));
        goto fail_file;
    }
    for (size_t r = 0; r < db->nrows; r++)
        if (db->alive[r]) {
            if (write_all(fd, vec_row(db, (uint32_t)r), row_bytes(db),
                          (off_t)(VEC_HEADER + nn * row_bytes(db))) != 0) {
                s = error_set(err, IMGSIM_E_IO, "%s/%s: write failed: %s", db->dir, newname,
                              strerror(errno));
                goto fail_file;
            }
            nn++;
        }
    if (fsync(fd) != 0 || fsync_dir(db) != 0) {
        s = error_set(err, IMGSIM_E_IO, "%s/%s: fsync failed: %s", db->dir, newname,
                      strerror(errno));
        goto fail_file;
    }

    /* One transaction switches everything to the new numbering. */
    if ((s = cat_write_begin(db, err)) != IMGSIM_OK)
        goto fail_file;
    sqlite3_stmt *st = NULL;
    if ((s = cat_exec(db, "CREATE TEMP TABLE IF NOT EXISTS rowmap(old INTEGER PRIMARY KEY, new INTEGER);"
                          "DELETE FROM temp.rowmap;", err)) != IMGSIM_OK ||
        (s = cat_prepare(db, "INSERT INTO temp.rowmap(old, new) VALUES(?, ?)", &st, err)) != IMGSIM_OK)
        goto fail_tx;
    for (size_t r = 0, k = 0; r < db->nrows; r++)
        if (db->alive[r]) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)r);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)k++);
            if (sqlite3_step(st) != SQLITE_DONE) {
                s = cat_sql_fail(db, err, "cannot renumber rows");
                sqlite3_finalize(st);
                goto fail_tx;
            }
            sqlite3_reset(st);
        }
    sqlite3_finalize(st);
    uint64_t nbr_gen = cat_meta_u64(db, "nbr_gen", UINT64_MAX);
    int table_fresh = nbr_gen == db->gen;
    if (!table_fresh)
        s = cat_exec(db, "DELETE FROM neighbours; DELETE FROM meta WHERE key IN ('nbr_k', "
                         "'nbr_metric', 'nbr_gen');", err);
    else
        s = cat_exec(db, "DELETE FROM neighbours WHERE row NOT IN (SELECT old FROM temp.rowmap) "
                         "OR nbr NOT IN (SELECT old FROM temp.rowmap);", err);
    if (s != IMGSIM_OK || (s = renumber(db, "vectors", "row", err)) != IMGSIM_OK ||
        (s = renumber(db, "items", "row", err)) != IMGSIM_OK ||
        (table_fresh && ((s = renumber(db, "neighbours", "row", err)) != IMGSIM_OK ||
                         (s = renumber(db, "neighbours", "nbr", err)) != IMGSIM_OK)) ||
        (s = cat_exec(db, "DELETE FROM changes;", err)) != IMGSIM_OK ||
        (s = cat_meta_set(db, "vec_file", newname, err)) != IMGSIM_OK ||
        (s = cat_meta_set_u64(db, "nrows", nn, err)) != IMGSIM_OK ||
        (table_fresh && (s = cat_meta_set_u64(db, "nbr_gen", db->gen + 1, err)) != IMGSIM_OK))
        goto fail_tx;
    cat_write_bump(db); /* the commit raises gen (the table, when fresh, follows above) */
    if ((s = cat_write_commit(db, err)) != IMGSIM_OK)
        goto fail_tx;

    /* Committed: the new file is the collection's. Reopen onto it. */
    char oldname[64];
    snprintf(oldname, sizeof oldname, "%s", db->vec_name);
    close(db->vec_fd);
    db->vec_fd = fd;
    snprintf(db->vec_name, sizeof db->vec_name, "%s", newname);
    db->nrows = nn;
    db->pending = 0;
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", db->dir, oldname) < (int)sizeof p)
        unlink(p);
    if ((s = remap(db, nn, err)) != IMGSIM_OK || (s = load_alive(db, err)) != IMGSIM_OK)
        return s;
    exact_norms(db->map, db->nrows, db->dim, db->norms);
    return IMGSIM_OK;

fail_tx:
    cat_write_abort(db);
fail_file:
    close(fd);
    {
        char p2[4096];
        if (snprintf(p2, sizeof p2, "%s/%s", db->dir, newname) < (int)sizeof p2)
            unlink(p2);
    }
    return s;
}

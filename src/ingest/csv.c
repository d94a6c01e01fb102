/*
 * csv.c — the streaming CSV reader declared in csv.h.
 *
 * The file is read through a 64 KiB window (fread), never whole. A row is parsed byte by
 * byte into one growing buffer that holds its fields back to back, each NUL-terminated;
 * `fields` points into it. That contiguity is what lets csv_fold_extra join trailing fields
 * in place by turning the NULs between them back into delimiters.
 *
 * What counts as what:
 *   - a field is quoted only if its first byte is '"'; inside, "" is a quote and delimiters,
 *     CR and LF are data. A quote inside an unquoted field is kept literally (real files
 *     write 3.5" without quoting: Myntra's styles.csv does).
 *   - after a closing quote only the delimiter, a line end, end of file or spaces (dropped)
 *     may follow; anything else makes the row malformed.
 *   - line ends are LF, CRLF or a lone CR; empty lines are skipped; a UTF-8 BOM at the start
 *     of the file is dropped; a last line without a line end is a row like any other.
 *   - a NUL byte, a row over CSV_MAX_ROW bytes or with more than CSV_MAX_FIELDS fields is
 *     malformed: memory stays bounded whatever the input (a binary file fed as CSV yields
 *     errors, not a huge allocation).
 *
 * Resynchronisation after a malformed row: normally the rest of the physical line where the
 * problem was found is skipped. A quoted field that never closes (it reaches end of file
 * or the size limit) has swallowed the following lines, so the reader goes back to just
 * after the first line end inside that field and carries on from there. Such a runaway
 * field contains no quote at all, so the bytes re-read are read at most twice: linear.
 */
#include "ingest/csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/grow.h"
#include "core/error.h"

#define CSV_BUF_SIZE (64u << 10)     /* read window */
#define CSV_MAX_ROW (1u << 20)       /* bytes of field data (with NULs) in one row */
#define CSV_MAX_FIELDS 65536         /* fields in one row */

#define CSV_EOF (-1)
#define CSV_READ_ERR (-2)

struct csv_reader {
    FILE *f;
    char *path;
    char delim;
    int eof;              /* fread reported end of file */
    int ioerr;            /* fread failed; reported once, then treated as end of file */
    int io_errno;

    unsigned char *buf;   /* read window */
    size_t pos, len;      /* next byte, bytes held */
    off_t buf_off;        /* file offset of buf[0] */

    long line;            /* line of the next byte, 1-based */

    char *data;           /* current row's fields, back to back, NUL-terminated */
    size_t used, cap;
    size_t *offs;         /* start of each field in data */
    char **fields;        /* offs turned into pointers once the row is complete */
    int nfields;
    size_t fcap;
};

/* How to find the next row after a malformed one. */
enum resync { RESYNC_LINE, RESYNC_QUOTE };

/* Parser state within a row. */
enum pstate { P_FIELD_START, P_UNQUOTED, P_QUOTED, P_QUOTE_SEEN, P_AFTER_QUOTE };

/* ------------------------------------------------------------ byte input */

/* Refill the window when it is used up. Returns 1 if a byte is available. */
static int fill(csv_reader *r)
{
    if (r->pos < r->len)
        return 1;
    if (r->eof)
        return 0;
    r->buf_off += (off_t)r->len;
    r->pos = r->len = 0;
    size_t n = fread(r->buf, 1, CSV_BUF_SIZE, r->f);
    r->len = n;
    if (n < CSV_BUF_SIZE) {
        if (ferror(r->f)) {
            r->ioerr = 1;
            r->io_errno = errno;
        }
        r->eof = 1;
    }
    return n > 0;
}

/* Next byte, CSV_EOF, or CSV_READ_ERR (once, at the point the read failed). */
static int get_byte(csv_reader *r)
{
    if (!fill(r)) {
        if (r->ioerr == 1) {
            r->ioerr = 2;
            return CSV_READ_ERR;
        }
        return CSV_EOF;
    }
    return r->buf[r->pos++];
}

/* The byte get_byte would return, without consuming it (read errors look like EOF here;
 * get_byte reports them). */
static int peek_byte(csv_reader *r)
{
    if (!fill(r))
        return CSV_EOF;
    return r->buf[r->pos];
}

/* File offset of the next byte. */
static off_t tell(const csv_reader *r)
{
    return r->buf_off + (off_t)r->pos;
}

/* Continue reading at file offset `off` (inside the window if possible, else by seeking).
 * Returns 0 on success, -1 if the stream cannot go back there. */
static int seek_to(csv_reader *r, off_t off)
{
    if (off >= r->buf_off && off <= r->buf_off + (off_t)r->len) {
        r->pos = (size_t)(off - r->buf_off);
        return 0;
    }
    if (fseeko(r->f, off, SEEK_SET) != 0)
        return -1;
    clearerr(r->f);
    r->buf_off = off;
    r->pos = r->len = 0;
    r->eof = 0;
    return 0;
}

/* Consume the rest of the current physical line, including its line end. */
static void skip_line(csv_reader *r)
{
    for (;;) {
        int c = get_byte(r);
        if (c == CSV_EOF || c == CSV_READ_ERR)
            return;
        if (c == '\n') {
            r->line++;
            return;
        }
        if (c == '\r') {
            if (peek_byte(r) == '\n')
                r->pos++;
            r->line++;
            return;
        }
    }
}

/* ------------------------------------------------------------ row storage */

/* Append one byte to the row; -1 when the row would exceed CSV_MAX_ROW or memory is out
 * (*nomem tells which). */
static int put(csv_reader *r, char c, int *nomem)
{
    if (r->used >= CSV_MAX_ROW)
        return -1;
    /* from 4096, doubling lands exactly on CSV_MAX_ROW (a power of two) */
    if (grow_array((void **)&r->data, &r->cap, r->used + 1, 1, 4096)) {
        *nomem = 1;
        return -1;
    }
    r->data[r->used++] = c;
    return 0;
}

/* Begin a new field at the current end of the row; -1 over CSV_MAX_FIELDS or out of memory. */
static int begin_field(csv_reader *r, int *nomem)
{
    if (r->nfields >= CSV_MAX_FIELDS)
        return -1;
    size_t need = (size_t)r->nfields + 1, ocap = r->fcap, fcap = r->fcap;
    if (grow_array((void **)&r->offs, &ocap, need, sizeof *r->offs, 32) ||
        grow_array((void **)&r->fields, &fcap, need, sizeof *r->fields, 32)) {
        *nomem = 1;
        return -1;
    }
    r->fcap = fcap;
    r->offs[r->nfields++] = r->used;
    return 0;
}

/* ------------------------------------------------------------ public API */

imgsim_status csv_open(const char *path, char delim, csv_reader **out, imgsim_error *err)
{
    if (!out)
        return error_set(err, IMGSIM_E_ARG, "csv_open: no output handle");
    *out = NULL;
    if (!path)
        return error_set(err, IMGSIM_E_ARG, "csv_open: no path");
    if (delim == 0)
        delim = ',';
    if (delim == '"' || delim == '\n' || delim == '\r')
        return error_set(err, IMGSIM_E_ARG, "%s: invalid CSV delimiter 0x%02x", path,
                         (unsigned)(unsigned char)delim);

    FILE *f = fopen(path, "rb");
    if (!f)
        return error_set(err, errno == ENOENT ? IMGSIM_E_NOTFOUND : IMGSIM_E_IO,
                         "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return error_set(err, IMGSIM_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return error_set(err, IMGSIM_E_IO, "%s: is a directory", path);
    }

    csv_reader *r = calloc(1, sizeof *r);
    if (!r) {
        fclose(f);
        return error_set(err, IMGSIM_E_NOMEM, "%s: out of memory", path);
    }
    r->f = f;
    r->delim = delim;
    r->line = 1;
    r->path = strdup(path);
    r->buf = malloc(CSV_BUF_SIZE);
    if (!r->path || !r->buf) {
        csv_close(r);
        return error_set(err, IMGSIM_E_NOMEM, "%s: out of memory", path);
    }
    /* fread only returns short at end of file, so the first window holds the whole BOM
     * if the file has one. */
    if (fill(r) && r->len >= 3 && r->buf[0] == 0xEF && r->buf[1] == 0xBB && r->buf[2] == 0xBF)
        r->pos = 3;
    *out = r;
    return IMGSIM_OK;
}

void csv_close(csv_reader *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    free(r->path);
    free(r->buf);
    free(r->data);
    free(r->offs);
    free(r->fields);
    free(r);
}

/* Report a malformed row (starting on `row_line`) and move to where the next row begins.
 * `q_off`/`q_line` locate the first line end inside a runaway quoted field (q_off < 0: none). */
static imgsim_status bad_row(csv_reader *r, imgsim_error *err, long row_line, enum resync how,
                             off_t q_off, long q_line, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static imgsim_status bad_row(csv_reader *r, imgsim_error *err, long row_line, enum resync how,
                             off_t q_off, long q_line, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    error_set(err, IMGSIM_E_DECODE, "%s:%ld: %s", r->path, row_line, what);

    if (how == RESYNC_QUOTE && q_off >= 0 && seek_to(r, q_off) == 0)
        r->line = q_line;
    else
        skip_line(r);
    r->used = 0;
    r->nfields = 0;
    return IMGSIM_E_DECODE;
}

imgsim_status csv_next(csv_reader *r, csv_row *row, imgsim_error *err)
{
    if (!r || !row)
        return error_set(err, IMGSIM_E_ARG, "csv_next: no reader or row");
    row->fields = NULL;
    row->nfields = 0;
    row->line = r->line;

    /* Skip empty lines; stop at end of file. */
    for (;;) {
        int c = peek_byte(r);
        if (c == CSV_EOF) {
            if (get_byte(r) == CSV_READ_ERR)
                return error_set(err, IMGSIM_E_IO, "%s:%ld: read failed: %s", r->path,
                                 r->line, strerror(r->io_errno));
            return IMGSIM_E_NOTFOUND;
        }
        if (c == '\n') {
            r->pos++;
            r->line++;
        } else if (c == '\r') {
            r->pos++;
            if (peek_byte(r) == '\n')
                r->pos++;
            r->line++;
        } else {
            break;
        }
    }

    const long start = r->line;
    row->line = start;
    r->used = 0;
    r->nfields = 0;
    int nomem = 0;
    off_t q_off = -1;         /* after the first line end inside the current quoted field */
    long q_line = 0, q_start = 0;
    enum pstate st = P_FIELD_START;

#define BAD_LINE(...) bad_row(r, err, start, RESYNC_LINE, -1, 0, __VA_ARGS__)
#define NOMEM() error_set(err, IMGSIM_E_NOMEM, "%s:%ld: out of memory", r->path, start)

    if (begin_field(r, &nomem) != 0)
        return NOMEM();

    for (;;) {
        int c = get_byte(r);
        if (c == CSV_READ_ERR)
            return error_set(err, IMGSIM_E_IO, "%s:%ld: read failed: %s", r->path, r->line,
                             strerror(r->io_errno));

        /* Line ends and the delimiter outside quotes, shared by the unquoted states. */
        int row_end = 0, field_end = 0;

        switch (st) {
        case P_FIELD_START:
            if (c == '"') {
                st = P_QUOTED;
                q_off = -1;
                q_start = r->line;
                continue;
            }
            st = P_UNQUOTED;
            /* fall through */
        case P_UNQUOTED:
            if (c == CSV_EOF || c == '\n' || c == '\r')
                row_end = 1;
            else if (c == (unsigned char)r->delim)
                field_end = 1;
            else if (c == 0)
                return BAD_LINE("NUL byte in field %d (binary data?)", r->nfields);
            else if (put(r, (char)c, &nomem) != 0)
                return nomem ? NOMEM() : BAD_LINE("row longer than %u bytes", CSV_MAX_ROW);
            break;

        case P_QUOTED:
            if (c == CSV_EOF)
                return bad_row(r, err, start, RESYNC_QUOTE, q_off, q_line,
                               "unterminated quoted field (opened at line %ld)", q_start);
            if (c == '"') {
                st = P_QUOTE_SEEN;
                continue;
            }
            if (c == 0)
                return BAD_LINE("NUL byte in field %d (binary data?)", r->nfields);
            if (c == '\n' || (c == '\r' && peek_byte(r) != '\n')) {
                r->line++;
                if (q_off < 0) {
                    q_off = tell(r);
                    q_line = r->line;
                }
            }
            if (put(r, (char)c, &nomem) != 0) {
                if (nomem)
                    return NOMEM();
                return bad_row(r, err, start, RESYNC_QUOTE, q_off, q_line,
                               "row longer than %u bytes (quoted field opened at line %ld "
                               "never closes?)", CSV_MAX_ROW, q_start);
            }
            continue;

        case P_QUOTE_SEEN:
            if (c == '"') {
                st = P_QUOTED;
                if (put(r, '"', &nomem) != 0) {
                    if (nomem)
                        return NOMEM();
                    return BAD_LINE("row longer than %u bytes", CSV_MAX_ROW);
                }
                continue;
            }
            st = P_AFTER_QUOTE;
            /* fall through */
        case P_AFTER_QUOTE:
            if (c == CSV_EOF || c == '\n' || c == '\r')
                row_end = 1;
            else if (c == (unsigned char)r->delim)
                field_end = 1;
            else if (c == ' ')
                continue;
            else if (c == 0)
                return BAD_LINE("NUL byte after quoted field %d (binary data?)", r->nfields);
            else {
                /* The offending byte is consumed; if it was the last on its line, the line
                 * end is what skip_line must not overrun. */
                if (c >= 0x20 && c < 0x7f)
                    return BAD_LINE("unexpected '%c' after closing quote of field %d",
                                    (char)c, r->nfields);
                return BAD_LINE("unexpected byte 0x%02x after closing quote of field %d", c,
                                r->nfields);
            }
            break;
        }

        if (field_end) {
            if (put(r, 0, &nomem) != 0)
                return nomem ? NOMEM() : BAD_LINE("row longer than %u bytes", CSV_MAX_ROW);
            if (begin_field(r, &nomem) != 0)
                return nomem ? NOMEM() : BAD_LINE("more than %d fields", CSV_MAX_FIELDS);
            st = P_FIELD_START;
            continue;
        }
        if (row_end) {
            if (c == '\r' && peek_byte(r) == '\n')
                r->pos++;
            if (c != CSV_EOF)
                r->line++;
            if (put(r, 0, &nomem) != 0) {
                /* The line end is already consumed: do not skip the next line. */
                if (nomem)
                    return NOMEM();
                r->used = 0;
                r->nfields = 0;
                return error_set(err, IMGSIM_E_DECODE, "%s:%ld: row longer than %u bytes",
                                 r->path, start, CSV_MAX_ROW);
            }
            break;
        }
    }
#undef BAD_LINE
#undef NOMEM

    for (int i = 0; i < r->nfields; i++)
        r->fields[i] = r->data + r->offs[i];
    row->fields = r->fields;
    row->nfields = r->nfields;
    return IMGSIM_OK;
}

int csv_fold_extra(csv_reader *r, csv_row *row, int ncols)
{
    if (!r || !row || !row->fields || ncols < 1 || row->nfields <= ncols)
        return 0;
    /* Fields are stored back to back: the NUL ending field k is the byte before field k+1. */
    for (int k = ncols - 1; k < row->nfields - 1; k++)
        row->fields[k + 1][-1] = r->delim;
    row->nfields = ncols;
    r->nfields = ncols;
    return 1;
}

int csv_column(const csv_row *header, const char *name)
{
    if (!header || !header->fields || !name)
        return -1;
    for (int i = 0; i < header->nfields; i++)
        if (strcmp(header->fields[i], name) == 0)
            return i;
    for (int i = 0; i < header->nfields; i++)
        if (strcasecmp(header->fields[i], name) == 0)
            return i;
    return -1;
}

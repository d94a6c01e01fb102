/*
 * csv.h — a streaming CSV reader (RFC 4180 plus what real files do).
 *
 * Handles: quoted fields with "" escapes and embedded commas/newlines, CRLF or LF line ends,
 * a UTF-8 BOM, a last line without newline, blank lines (skipped). A custom delimiter may be
 * set (',' default; ';' and '\t' are common). Every row carries the 1-based line number it
 * started on, for error messages ("styles.csv:1234: ...").
 *
 * Malformed input (an unterminated quote at end of file, a quote inside an unquoted field
 * followed by garbage, a line over the length limit) is reported for that row with its line
 * number and the reader continues at the next line: one bad row never ends the file.
 */
#ifndef IMGSIM_INGEST_CSV_H
#define IMGSIM_INGEST_CSV_H

#include <stddef.h>

#include "imgsim.h"

typedef struct csv_reader csv_reader;

typedef struct csv_row {
    char **fields;     /* nfields NUL-terminated strings, owned by the reader, valid until next call */
    int nfields;
    long line;         /* line number the row starts on */
} csv_row;

imgsim_status csv_open(const char *path, char delim, csv_reader **out, imgsim_error *err);
/* Reads the next row. Returns IMGSIM_OK with a row, IMGSIM_E_NOTFOUND at end of file, or
 * IMGSIM_E_DECODE for a malformed row (err names file:line and the cause; call again to go on). */
imgsim_status csv_next(csv_reader *r, csv_row *row, imgsim_error *err);
void csv_close(csv_reader *r);

/* A row with more fields than the header (`ncols`) whose extra commas belong to the LAST
 * column (free text written without quotes, like Myntra's productDisplayName): joins fields
 * ncols-1 .. nfields-1 back together with the delimiter, in place. Returns 1 if it joined. */
int csv_fold_extra(csv_reader *r, csv_row *row, int ncols);

/* Index of column `name` in a header row (exact, then case-insensitive), or -1. */
int csv_column(const csv_row *header, const char *name);

#endif

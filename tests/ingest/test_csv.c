/*
 * test_csv.c — the streaming CSV reader (src/ingest/csv.c): RFC 4180 quoting, line ends,
 * BOM, blank lines, line numbers across embedded newlines, malformed rows reported and
 * skipped (unterminated quote, junk after a quote, NUL bytes, over-long lines, binary
 * files), custom delimiters, csv_fold_extra / csv_column, and the real Myntra styles.csv.
 * Inputs are written to $IMGSIM_TEST_OUT (tu_out).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ingest/csv.h"
#include "../testutil.h"

/* ------------------------------------------------------------ helpers */

static void sb_printf(tu_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof tmp);
    tu_buf_put(b, tmp, (size_t)n);
}

/* Append a field with CR/LF shown as \r and \n, long fields shortened. */
static void sb_field(tu_buf *b, const char *f)
{
    size_t len = strlen(f);
    if (len > 64) {
        sb_printf(b, "<%zu bytes>", len);
        return;
    }
    for (const char *p = f; *p; p++) {
        if (*p == '\n')
            tu_buf_put(b, "\\n", 2);
        else if (*p == '\r')
            tu_buf_put(b, "\\r", 2);
        else
            tu_buf_put(b, p, 1);
    }
}

static char last_err[512];

/* Read every row of `path`: one line per call of csv_next, "LINE:f1|f2|..." for a row and
 * "E:LINE" for a malformed one (its message kept in last_err). `fold` > 0 folds extra
 * fields into that many columns. Caller frees. */
static char *read_all(const char *path, char delim, int fold)
{
    csv_reader *r = NULL;
    imgsim_error err = {0};
    if (csv_open(path, delim, &r, &err) != IMGSIM_OK)
        fail_msg("csv_open %s: %s", path, err.msg);
    tu_buf b = {0};
    tu_buf_put(&b, "", 0);
    for (int guard = 0; guard < 100000; guard++) {
        csv_row row;
        imgsim_status s = csv_next(r, &row, &err);
        if (s == IMGSIM_E_NOTFOUND)
            break;
        if (s == IMGSIM_E_DECODE) {
            sb_printf(&b, "E:%ld\n", row.line);
            snprintf(last_err, sizeof last_err, "%s", err.msg);
            continue;
        }
        if (s != IMGSIM_OK)
            fail_msg("csv_next: %s", err.msg);
        if (fold > 0)
            csv_fold_extra(r, &row, fold);
        sb_printf(&b, "%ld:", row.line);
        for (int i = 0; i < row.nfields; i++) {
            if (i)
                tu_buf_put(&b, "|", 1);
            sb_field(&b, row.fields[i]);
        }
        tu_buf_put(&b, "\n", 1);
    }
    csv_close(r);
    return (char *)b.p;
}

/* Write `len` bytes to a scratch file named `name`, then read_all it. */
static char *parse_bytes(const char *name, const void *data, size_t len, char delim)
{
    const char *p = tu_out(name);
    tu_write(p, data, len);
    return read_all(p, delim, 0);
}

static char *parse(const char *name, const char *text)
{
    return parse_bytes(name, text, strlen(text), ',');
}

#define EXPECT(name, input, want)                                                          \
    do {                                                                                   \
        char *got_ = parse(name, input);                                                   \
        assert_string_equal(got_, want);                                                   \
        free(got_);                                                                        \
    } while (0)

/* ------------------------------------------------------------ well-formed input */

static void test_simple(void **state)
{
    (void)state;
    EXPECT("csv_simple.csv", "a,b,c\n1,2,3\n", "1:a|b|c\n2:1|2|3\n");
    /* Empty fields, a trailing delimiter, spaces kept. */
    EXPECT("csv_empty.csv", ",,\na,\n x , y \n", "1:||\n2:a|\n3: x | y \n");
    /* No final newline; a trailing delimiter at end of file. */
    EXPECT("csv_nofinal.csv", "a,b\n1,2", "1:a|b\n2:1|2\n");
    EXPECT("csv_nofinal2.csv", "a,b\n1,", "1:a|b\n2:1|\n");
    /* An empty file and a file of blank lines have no rows. */
    EXPECT("csv_nothing.csv", "", "");
    EXPECT("csv_blank_only.csv", "\n\r\n\n", "");
}

static void test_quoted(void **state)
{
    (void)state;
    EXPECT("csv_quoted.csv", "\"a,b\",\"say \"\"hi\"\"\",c\n\"\",\"\"\"\"\n",
           "1:a,b|say \"hi\"|c\n2:|\"\n");
    /* Spaces after a closing quote are dropped; before an opening quote the field is
     * unquoted and keeps its quotes. */
    EXPECT("csv_quote_space.csv", "\"a\"  ,b\n x\"y\",z\n", "1:a|b\n2: x\"y\"|z\n");
    /* A bare quote inside an unquoted field is data (Myntra: Tempo 3.5" Pink Short). */
    EXPECT("csv_bare_quote.csv", "7491,Nike Women's EM Tempo 3.5\" Pink Short\n",
           "1:7491|Nike Women's EM Tempo 3.5\" Pink Short\n");
}

/* Embedded newlines (LF and CRLF) are kept, and the next row's line number counts them. */
static void test_embedded_newlines(void **state)
{
    (void)state;
    EXPECT("csv_nl.csv", "id,text\n1,\"line1\nline2\nline3\"\n2,x\n3,\"a\r\nb\"\r\n4,y\n",
           "1:id|text\n2:1|line1\\nline2\\nline3\n5:2|x\n6:3|a\\r\\nb\n8:4|y\n");
}

static void test_line_ends(void **state)
{
    (void)state;
    EXPECT("csv_crlf.csv", "a,b\r\n1,2\r\n\r\n3,4", "1:a|b\n2:1|2\n4:3|4\n");
    EXPECT("csv_cr.csv", "a,b\r1,2\r\r3,4\r", "1:a|b\n2:1|2\n4:3|4\n");
    EXPECT("csv_blank.csv", "\n\na\n\n\nb\n\n", "3:a\n6:b\n");
}

static void test_bom(void **state)
{
    (void)state;
    const char *p = tu_out("csv_bom.csv");
    const char text[] = "\xEF\xBB\xBFid,name\n1,x\n";
    tu_write(p, text, sizeof text - 1);
    csv_reader *r = NULL;
    imgsim_error err = {0};
    assert_int_equal(csv_open(p, ',', &r, &err), IMGSIM_OK);
    csv_row h;
    assert_int_equal(csv_next(r, &h, &err), IMGSIM_OK);
    assert_int_equal(h.nfields, 2);
    assert_string_equal(h.fields[0], "id");
    assert_int_equal(csv_column(&h, "id"), 0);
    assert_int_equal(csv_column(&h, "name"), 1);
    csv_close(r);
    /* A BOM alone, or a BOM and a blank line. */
    EXPECT("csv_bom_only.csv", "\xEF\xBB\xBF", "");
    EXPECT("csv_bom_blank.csv", "\xEF\xBB\xBF\nz\n", "2:z\n");
}

static void test_delimiters(void **state)
{
    (void)state;
    const char *semi = "a;b,c;\"x;y\"\n";
    char *got = parse_bytes("csv_semi.csv", semi, strlen(semi), ';');
    assert_string_equal(got, "1:a|b,c|x;y\n");
    free(got);
    const char *tab = "a\tb c\t\n1\t\"2\t3\"\n";
    got = parse_bytes("csv_tab.tsv", tab, strlen(tab), '\t');
    assert_string_equal(got, "1:a|b c|\n2:1|2\t3\n");
    free(got);
    /* 0 means the default ','. */
    got = parse_bytes("csv_default.csv", "a,b\n", 4, 0);
    assert_string_equal(got, "1:a|b\n");
    free(got);
}

/* Rows spanning the 64 KiB read window, and many fields. */
static void test_long_rows(void **state)
{
    (void)state;
    size_t n = 300000;
    char *big = malloc(n + 64);
    assert_non_null(big);
    size_t k = 0;
    k += (size_t)sprintf(big, "first\n\"");
    for (size_t i = 0; i < 200000; i++)
        big[k++] = (char)(i % 1000 == 999 ? '\n' : 'q');
    k += (size_t)sprintf(big + k, "\",end\n");
    for (size_t i = 0; i < 5000; i++) {
        big[k++] = 'f';
        big[k++] = ',';
    }
    big[k++] = '\n';
    k += (size_t)sprintf(big + k, "last\n");
    const char *p = tu_out("csv_long.csv");
    tu_write(p, big, k);
    csv_reader *r = NULL;
    imgsim_error err = {0};
    assert_int_equal(csv_open(p, ',', &r, &err), IMGSIM_OK);
    csv_row row;
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(row.line, 2);
    assert_int_equal(row.nfields, 2);
    assert_int_equal(strlen(row.fields[0]), 200000);
    assert_string_equal(row.fields[1], "end");
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(row.line, 203);
    assert_int_equal(row.nfields, 5001);
    assert_string_equal(row.fields[4999], "f");
    assert_string_equal(row.fields[5000], "");
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(row.line, 204);
    assert_string_equal(row.fields[0], "last");
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_E_NOTFOUND);
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_E_NOTFOUND);
    csv_close(r);
    free(big);
}

/* ------------------------------------------------------------ malformed input */

static void test_unterminated_quote(void **state)
{
    (void)state;
    /* The open quote runs to end of file: that row is reported, then reading resumes on the
     * line after the one the quote opened on. */
    EXPECT("csv_unterm.csv", "a,b\n1,\"open\n2,x\n3,y\n", "1:a|b\nE:2\n3:2|x\n4:3|y\n");
    assert_non_null(strstr(last_err, "csv_unterm.csv:2: "));
    assert_non_null(strstr(last_err, "unterminated"));
    /* Unterminated on the last line, without newline. */
    EXPECT("csv_unterm_last.csv", "a\n\"xyz", "1:a\nE:2\n");
    /* Opened on a later line of a multi-line row: resume after the runaway quote's line. */
    EXPECT("csv_unterm_multi.csv", "\"p\nq\",\"r\ns,t\nu\n", "E:1\n3:s|t\n4:u\n");
}

static void test_junk_after_quote(void **state)
{
    (void)state;
    EXPECT("csv_junk.csv", "\"ab\"c,d\n1,2\n", "E:1\n2:1|2\n");
    assert_non_null(strstr(last_err, "csv_junk.csv:1: "));
    assert_non_null(strstr(last_err, "'c'"));
    /* In a row that started two lines earlier: the error names the row's first line and
     * the reader skips only the rest of the line where the junk is. */
    EXPECT("csv_junk_multi.csv", "h\n1,\"a\nb\"x,y\n2,z\n", "1:h\nE:2\n4:2|z\n");
    /* Junk right before end of file. */
    EXPECT("csv_junk_eof.csv", "\"a\"b", "E:1\n");
}

static void test_binary_junk(void **state)
{
    (void)state;
    /* One row of binary bytes (with a NUL) between good rows. */
    const char data[] = "a,b\n\x01\x02\xff\xfe,z\x00z,\x80\n\"q\x00\",1\nc,d\n";
    char *got = parse_bytes("csv_binrow.csv", data, sizeof data - 1, ',');
    assert_string_equal(got, "1:a|b\nE:2\nE:3\n4:c|d\n");
    assert_non_null(strstr(last_err, "csv_binrow.csv:3: "));
    assert_non_null(strstr(last_err, "NUL"));
    free(got);

    /* A whole binary file: terminates, and every row is either an error or a row. */
    size_t n = 3u << 20;
    uint8_t *bin = malloc(n);
    assert_non_null(bin);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        bin[i] = (uint8_t)(x >> 16);
    }
    const char *p = tu_out("csv_binary.csv");
    tu_write(p, bin, n);
    csv_reader *r = NULL;
    imgsim_error err = {0};
    assert_int_equal(csv_open(p, ',', &r, &err), IMGSIM_OK);
    long rows = 0, errors = 0;
    for (;;) {
        csv_row row;
        imgsim_status s = csv_next(r, &row, &err);
        if (s == IMGSIM_E_NOTFOUND)
            break;
        if (s == IMGSIM_E_DECODE)
            errors++;
        else
            assert_int_equal(s, IMGSIM_OK);
        rows += s == IMGSIM_OK;
        assert_true(rows + errors < (long)n);
    }
    assert_true(errors > 1000);
    csv_close(r);

    /* Binary without NUL or line ends at all: the 1 MiB limit stops it. */
    for (size_t i = 0; i < n; i++)
        bin[i] = (uint8_t)(0x80 | (bin[i] & 0x7f));
    tu_write(p, bin, n);
    assert_int_equal(csv_open(p, ',', &r, &err), IMGSIM_OK);
    csv_row row;
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_E_DECODE);
    assert_non_null(strstr(err.msg, "longer than"));
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_E_NOTFOUND);
    csv_close(r);
    free(bin);
}

/* A 2 MiB line is refused (with its line number) and the next line is read. */
static void test_huge_line(void **state)
{
    (void)state;
    size_t big = 2u << 20;
    char *data = malloc(big + 64);
    assert_non_null(data);
    size_t k = (size_t)sprintf(data, "a,b\n");
    memset(data + k, 'x', big);
    k += big;
    k += (size_t)sprintf(data + k, "\nc,d\n");
    char *got = parse_bytes("csv_huge.csv", data, k, ',');
    assert_string_equal(got, "1:a|b\nE:2\n3:c|d\n");
    assert_non_null(strstr(last_err, "csv_huge.csv:2: "));
    assert_non_null(strstr(last_err, "longer than"));
    free(got);

    /* A quote that never closes in front of 1.5 MiB of ordinary rows: the runaway row is
     * refused at the limit and every row after it is still read, with right line numbers. */
    k = (size_t)sprintf(data, "h\n\"");
    int nrows = 0;
    while (k < (3u << 19)) {
        k += (size_t)sprintf(data + k, "%d,y\n", nrows);
        nrows++;
    }
    char *p = (char *)tu_out("csv_runaway.csv");
    tu_write(p, data, k);
    csv_reader *r = NULL;
    imgsim_error err = {0};
    assert_int_equal(csv_open(p, ',', &r, &err), IMGSIM_OK);
    csv_row row;
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_E_DECODE);
    assert_int_equal(row.line, 2);
    assert_non_null(strstr(err.msg, "longer than"));
    for (int i = 1; i < nrows; i++) {
        assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
        assert_int_equal(row.line, 2 + i);
        assert_int_equal(row.nfields, 2);
        assert_int_equal(atoi(row.fields[0]), i);
    }
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_E_NOTFOUND);
    csv_close(r);
    free(data);
}

static void test_open_errors(void **state)
{
    (void)state;
    csv_reader *r = (csv_reader *)1;
    imgsim_error err = {0};
    assert_int_equal(csv_open(tu_out("csv_does_not_exist.csv"), ',', &r, &err),
                     IMGSIM_E_NOTFOUND);
    assert_null(r);
    assert_non_null(strstr(err.msg, "csv_does_not_exist.csv"));
    assert_int_equal(csv_open(tu_out(""), ',', &r, &err), IMGSIM_E_IO);
    assert_non_null(strstr(err.msg, "directory"));
    const char *p = tu_out("csv_simple2.csv");
    tu_write(p, "a\n", 2);
    assert_int_equal(csv_open(p, '"', &r, &err), IMGSIM_E_ARG);
    assert_int_equal(csv_open(p, '\n', &r, &err), IMGSIM_E_ARG);
    csv_close(NULL);
}

/* ------------------------------------------------------------ fold and columns */

static void test_fold_extra(void **state)
{
    (void)state;
    const char *text =
        "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,"
        "productDisplayName\n"
        "15970,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Navy "
        "Blue Shirt\n"
        "23101,Men,Accessories,Accessories,Accessory Gift Set,Pink,Fall,2011,Formal,Turtle Men "
        "Formal Pink Tie, Cufflink and Pocket Square Combo Set\n"
        "23127,Unisex,Footwear,Flip Flops,Flip Flops,Green,Summer,2012,Casual,Converse Unisex "
        "Green Live, Life, Laugh Flip Flops\n"
        "1,a,b,c,d,e,f,g,h,\"quoted, last\",tail\n";
    const char *p = tu_out("csv_fold.csv");
    tu_write(p, text, strlen(text));
    csv_reader *r = NULL;
    imgsim_error err = {0};
    assert_int_equal(csv_open(p, ',', &r, &err), IMGSIM_OK);
    csv_row h, row;
    assert_int_equal(csv_next(r, &h, &err), IMGSIM_OK);
    assert_int_equal(h.nfields, 10);
    int name_col = csv_column(&h, "productDisplayName");
    assert_int_equal(name_col, 9);

    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(csv_fold_extra(r, &row, 10), 0);
    assert_int_equal(row.nfields, 10);
    assert_string_equal(row.fields[9], "Turtle Check Men Navy Blue Shirt");

    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(row.nfields, 11);
    assert_int_equal(csv_fold_extra(r, &row, 10), 1);
    assert_int_equal(row.nfields, 10);
    assert_string_equal(row.fields[8], "Formal");
    assert_string_equal(row.fields[9],
                        "Turtle Men Formal Pink Tie, Cufflink and Pocket Square Combo Set");
    /* Folding again changes nothing. */
    assert_int_equal(csv_fold_extra(r, &row, 10), 0);

    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(row.nfields, 12);
    assert_int_equal(row.line, 4);
    assert_int_equal(csv_fold_extra(r, &row, 10), 1);
    assert_string_equal(row.fields[9], "Converse Unisex Green Live, Life, Laugh Flip Flops");

    /* A quoted field among the folded ones contributes its value. */
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(csv_fold_extra(r, &row, 10), 1);
    assert_string_equal(row.fields[9], "quoted, last,tail");
    assert_string_equal(row.fields[0], "1");

    assert_int_equal(csv_next(r, &row, &err), IMGSIM_E_NOTFOUND);
    /* Fewer fields than columns, or a silly column count: nothing to do. */
    csv_row short_row = h;
    assert_int_equal(csv_fold_extra(r, &short_row, 11), 0);
    assert_int_equal(csv_fold_extra(r, &short_row, 0), 0);
    csv_close(r);

    /* With another delimiter the join uses it. */
    p = tu_out("csv_fold_semi.csv");
    tu_write(p, "a;b\n1;x;y;z\n", 12);
    assert_int_equal(csv_open(p, ';', &r, &err), IMGSIM_OK);
    assert_int_equal(csv_next(r, &h, &err), IMGSIM_OK);
    assert_int_equal(csv_next(r, &row, &err), IMGSIM_OK);
    assert_int_equal(csv_fold_extra(r, &row, 2), 1);
    assert_string_equal(row.fields[1], "x;y;z");
    csv_close(r);
}

static void test_column(void **state)
{
    (void)state;
    char *f[] = {"ID", "id", "Name", "year "};
    csv_row h = {f, 4, 1};
    assert_int_equal(csv_column(&h, "id"), 1);
    assert_int_equal(csv_column(&h, "ID"), 0);
    assert_int_equal(csv_column(&h, "name"), 2);
    assert_int_equal(csv_column(&h, "NAME"), 2);
    assert_int_equal(csv_column(&h, "year"), -1);
    assert_int_equal(csv_column(&h, "x"), -1);
    assert_int_equal(csv_column(NULL, "x"), -1);
}

/* ------------------------------------------------------------ real data */

static void test_myntra_styles(void **state)
{
    (void)state;
    const char *path = tu_extract("myntra.tar.gz", "myntra/styles.csv"); /* NULL: no data */
    if (!path) {
        skip();
        return;
    }
    csv_reader *r = NULL;
    imgsim_error err = {0};
    assert_int_equal(csv_open(path, ',', &r, &err), IMGSIM_OK);
    csv_row h;
    assert_int_equal(csv_next(r, &h, &err), IMGSIM_OK);
    assert_int_equal(h.nfields, 10);
    assert_int_equal(csv_column(&h, "id"), 0);
    int name_col = csv_column(&h, "productDisplayName");
    assert_int_equal(name_col, 9);

    long rows = 0, folded = 0, folded2 = 0, empty = 0;
    int saw_inch = 0, saw_boss = 0;
    long last_line = 1;
    for (;;) {
        csv_row row;
        imgsim_status s = csv_next(r, &row, &err);
        if (s == IMGSIM_E_NOTFOUND)
            break;
        if (s != IMGSIM_OK)
            fail_msg("styles.csv: %s", err.msg);
        rows++;
        assert_int_equal(row.line, last_line + 1); /* no multi-line rows, no blank lines */
        last_line = row.line;
        assert_true(row.nfields >= 10);
        int extra = row.nfields - 10;
        if (csv_fold_extra(r, &row, 10)) {
            folded++;
            folded2 += extra == 2;
        }
        assert_int_equal(row.nfields, 10);
        assert_true(atoi(row.fields[0]) > 0);
        for (int i = 0; i < 10; i++)
            empty += row.fields[i][0] == 0;
        if (strcmp(row.fields[0], "7491") == 0) {
            assert_string_equal(row.fields[9], "Nike Women's EM Tempo 3.5\" Pink Short");
            saw_inch = 1;
        }
        if (strcmp(row.fields[0], "44065") == 0) {
            assert_string_equal(row.fields[9],
                                "Boss Men Perfume, After Shave Balm and Shower Gel Set");
            saw_boss = 1;
        }
    }
    csv_close(r);
    assert_int_equal(rows, 44446);
    assert_int_equal(folded, 22);
    assert_int_equal(folded2, 2);
    assert_int_equal(empty, 23); /* 21 without season, one without year, one without usage */
    assert_true(saw_inch && saw_boss);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_quoted),
        cmocka_unit_test(test_embedded_newlines),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_delimiters),
        cmocka_unit_test(test_long_rows),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_junk_after_quote),
        cmocka_unit_test(test_binary_junk),
        cmocka_unit_test(test_huge_line),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_fold_extra),
        cmocka_unit_test(test_column),
        cmocka_unit_test(test_myntra_styles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_strbuf.c — the checked string builder (core/strbuf.h): appends of every kind, growth
 * far past the first allocation, an empty builder giving "", and the builder reusable after
 * strbuf_take and strbuf_free.
 */
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "core/strbuf.h"

static void test_appends(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "shape ");
    strbuf_putc(&b, '[');
    strbuf_printf(&b, "%d,%lld", 1, 224LL);
    strbuf_putc(&b, ']');
    strbuf_printf(&b, " %-6s|%.*s", "ab", 3, "xyzzy");
    char *s = strbuf_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "shape [1,224] ab    |xyz");
    free(s);
    assert_null(b.s); /* empty again */
    assert_int_equal(b.len, 0);
}

static void test_growth(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    char want[20001];
    for (int i = 0; i < 10000; i++) {
        strbuf_printf(&b, "%c", 'a' + i % 26);
        strbuf_putc(&b, (char)('A' + i % 26));
        want[2 * i] = (char)('a' + i % 26);
        want[2 * i + 1] = (char)('A' + i % 26);
    }
    want[20000] = '\0';
    assert_int_equal(b.len, 20000);
    char *s = strbuf_take(&b);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_empty_and_free(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    char *s = strbuf_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    strbuf_puts(&b, "discarded");
    strbuf_free(&b);
    assert_null(b.s);
    strbuf_puts(&b, "again");
    s = strbuf_take(&b);
    assert_string_equal(s, "again");
    free(s);
}

static void test_failed_latches(void **state)
{
    (void)state;
    strbuf b = STRBUF_INIT;
    strbuf_puts(&b, "partial");
    b.failed = 1; /* as after a failed allocation */
    strbuf_puts(&b, " more");
    assert_int_equal(b.len, 7);
    assert_null(strbuf_take(&b));
    assert_int_equal(b.failed, 0); /* reset for reuse */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_empty_and_free),
        cmocka_unit_test(test_failed_latches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_error.c — how failures are reported (src/core/error.c): error_set formatting and
 * return value (also with no error struct), messages longer than the buffer cut at 511
 * bytes and NUL-terminated, error_prefix adding "context: " in front (nested, keeping
 * the code, cutting a long result at the buffer end, a prefix longer than the buffer), and
 * every status having its own name.
 */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "../testutil.h"

#define CAP (sizeof(((imgsim_error *)0)->msg) - 1)

static void test_fail_formats(void **state)
{
    (void)state;
    imgsim_error e = {0};
    assert_int_equal(error_set(&e, IMGSIM_E_DECODE, "%s: %d x %d, %.1f Mpx", "a.jpg", 30000,
                               20000, 600.0),
                     IMGSIM_E_DECODE);
    assert_int_equal(e.code, IMGSIM_E_DECODE);
    assert_string_equal(e.msg, "a.jpg: 30000 x 20000, 600.0 Mpx");
    /* a second failure replaces the first */
    assert_int_equal(error_set(&e, IMGSIM_E_IO, "short"), IMGSIM_E_IO);
    assert_int_equal(e.code, IMGSIM_E_IO);
    assert_string_equal(e.msg, "short");
    /* no error struct: only the code comes back */
    assert_int_equal(error_set(NULL, IMGSIM_E_NOTFOUND, "%s", "x"), IMGSIM_E_NOTFOUND);
}

static void test_fail_truncates(void **state)
{
    (void)state;
    char big[2000];
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = (char)('a' + i % 26);
    big[sizeof big - 1] = 0;
    imgsim_error e;
    memset(&e, 'X', sizeof e);
    assert_int_equal(error_set(&e, IMGSIM_E_ARG, "%s", big), IMGSIM_E_ARG);
    assert_int_equal(strlen(e.msg), CAP);
    assert_memory_equal(e.msg, big, CAP);
    assert_int_equal(e.msg[CAP], 0);
}

static void test_prefix(void **state)
{
    (void)state;
    imgsim_error e = {0};
    error_set(&e, IMGSIM_E_DECODE, "not a recognised image format");
    assert_int_equal(error_prefix(&e, "%s", "photos/a.jpg"), IMGSIM_E_DECODE);
    assert_string_equal(e.msg, "photos/a.jpg: not a recognised image format");
    assert_int_equal(e.code, IMGSIM_E_DECODE);
    /* nested context reads outermost first */
    assert_int_equal(error_prefix(&e, "styles.csv:%d", 12), IMGSIM_E_DECODE);
    assert_string_equal(e.msg, "styles.csv:12: photos/a.jpg: not a recognised image format");
    /* the prefix is formatted from its own arguments, not from the old message */
    error_set(&e, IMGSIM_E_IO, "%%s stays");
    error_prefix(&e, "%d%%", 50);
    assert_string_equal(e.msg, "50%: %s stays");
    /* no error struct: nothing to prefix */
    assert_int_equal(error_prefix(NULL, "x"), IMGSIM_E_INTERNAL);
}

static void test_prefix_truncates(void **state)
{
    (void)state;
    char old[CAP + 1], pre[700];
    memset(old, 'o', CAP);
    old[CAP] = 0;
    memset(pre, 'p', sizeof pre - 1);
    pre[sizeof pre - 1] = 0;

    /* a full message: the prefix and separator fit, the old text is cut at the end */
    imgsim_error e = {0};
    error_set(&e, IMGSIM_E_MODEL, "%s", old);
    assert_int_equal(error_prefix(&e, "ctx"), IMGSIM_E_MODEL);
    assert_int_equal(strlen(e.msg), CAP);
    assert_memory_equal(e.msg, "ctx: ooo", 8);
    assert_int_equal(e.msg[CAP - 1], 'o');

    /* a prefix longer than the buffer: the prefix alone, cut, still terminated */
    error_set(&e, IMGSIM_E_MODEL, "cause");
    error_prefix(&e, "%s", pre);
    assert_int_equal(strlen(e.msg), CAP);
    assert_memory_equal(e.msg, pre, CAP);
    assert_null(strstr(e.msg, "cause"));

    /* a prefix that ends exactly where ": " would go: the separator is cut */
    char fit[CAP + 1];
    memset(fit, 'f', CAP - 1);
    fit[CAP - 1] = 0;
    error_set(&e, IMGSIM_E_MODEL, "cause");
    error_prefix(&e, "%s", fit);
    assert_int_equal(strlen(e.msg), CAP);
    assert_int_equal(e.msg[CAP - 1], ':');

    /* an empty old message: "prefix: " */
    error_set(&e, IMGSIM_E_IO, "%s", "");
    error_prefix(&e, "a.jpg");
    assert_string_equal(e.msg, "a.jpg: ");
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(imgsim_status_name(IMGSIM_OK), "ok");
    assert_string_equal(imgsim_status_name(IMGSIM_E_DECODE), "decode error");
    assert_string_equal(imgsim_status_name(IMGSIM_E_NOTFOUND), "not found");
    assert_string_equal(imgsim_status_name(IMGSIM_E_TOO_BIG), "too big");
    const char *seen[IMGSIM_E_INTERNAL + 1];
    for (int s = IMGSIM_OK; s <= IMGSIM_E_INTERNAL; s++) {
        seen[s] = imgsim_status_name((imgsim_status)s);
        assert_non_null(seen[s]);
        assert_true(strlen(seen[s]) > 1);
        assert_string_not_equal(seen[s], "unknown error");
        for (int t = 0; t < s; t++)
            assert_string_not_equal(seen[s], seen[t]);
    }
    assert_string_equal(imgsim_status_name((imgsim_status)(IMGSIM_E_INTERNAL + 1)), "unknown error");
    assert_string_equal(imgsim_status_name((imgsim_status)-1), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_formats),
        cmocka_unit_test(test_fail_truncates),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_prefix_truncates),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

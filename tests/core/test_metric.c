/*
 * test_metric.c — search metric names (src/core/metric.c): every metric's name parses back
 * to it, the accepted synonyms and any letter case, and unknown, empty or NULL names refused
 * with a message that quotes the name and lists the choices.
 */
#include <stdio.h>
#include <string.h>

#include "../testutil.h"

static void test_names_round_trip(void **state)
{
    (void)state;
    const imgsim_metric all[] = {IMGSIM_METRIC_COSINE, IMGSIM_METRIC_L2, IMGSIM_METRIC_L1};
    const char *want[] = {"cosine", "l2", "l1"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(imgsim_metric_name(all[i]), want[i]);
        imgsim_metric m = (imgsim_metric)-1;
        imgsim_error e = {0};
        assert_int_equal(imgsim_metric_parse(imgsim_metric_name(all[i]), &m, &e), IMGSIM_OK);
        assert_int_equal(m, all[i]);
    }
    assert_string_equal(imgsim_metric_name((imgsim_metric)9), "?");
}

static void test_synonyms(void **state)
{
    (void)state;
    static const struct { const char *s; imgsim_metric m; } ok[] = {
        {"COSINE", IMGSIM_METRIC_COSINE}, {"cos", IMGSIM_METRIC_COSINE},
        {"ip", IMGSIM_METRIC_COSINE},     {"Euclidean", IMGSIM_METRIC_L2},
        {"L2", IMGSIM_METRIC_L2},         {"manhattan", IMGSIM_METRIC_L1},
        {"cityblock", IMGSIM_METRIC_L1},  {"l1", IMGSIM_METRIC_L1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        imgsim_metric m = (imgsim_metric)-1;
        assert_int_equal(imgsim_metric_parse(ok[i].s, &m, NULL), IMGSIM_OK);
        assert_int_equal(m, ok[i].m);
    }
}

static void test_refused(void **state)
{
    (void)state;
    const char *bad[] = {"dot", "", "l3", "cosine ", " l2", "cosin", "l2\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        imgsim_metric m = IMGSIM_METRIC_L1;
        imgsim_error e = {0};
        assert_int_equal(imgsim_metric_parse(bad[i], &m, &e), IMGSIM_E_ARG);
        assert_int_equal(m, IMGSIM_METRIC_L1); /* left alone */
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_non_null(strstr(e.msg, quoted));
        assert_non_null(strstr(e.msg, "cosine, l2 or l1"));
    }
    imgsim_metric m;
    imgsim_error e = {0};
    assert_int_equal(imgsim_metric_parse(NULL, &m, &e), IMGSIM_E_ARG);
    assert_non_null(strstr(e.msg, "''"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_synonyms),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

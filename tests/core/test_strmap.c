/*
 * test_strmap.c — the string -> long hash map (src/core/strmap.c): lookups in an empty map,
 * insert then lookup, keys that collide in the table (same FNV-1a slot) all kept apart,
 * growth past the first table keeping every entry, duplicate inserts keeping the first
 * value, keys compared by content (not pointer), and a freed map being reusable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strmap.h"
#include "../testutil.h"

/* The map's hash (FNV-1a, 64-bit), to build keys that land in the same slot. */
static size_t fnv1a(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void test_empty(void **state)
{
    (void)state;
    strmap m = {0};
    assert_int_equal(strmap_get(&m, "a", 0, 0), -1);
    assert_int_equal(strmap_get(&m, "", 0, 0), -1);
    assert_int_equal(m.n, 0);
    assert_null(m.keys); /* a lookup alone allocates nothing */
    strmap_free(&m);
}

static void test_insert_lookup(void **state)
{
    (void)state;
    strmap m = {0};
    const char *keys[] = {"wang1k/0.jpg", "wang1k/1.jpg", "", "a", "A", "wang1k/0.jpg "};
    for (long i = 0; i < 6; i++)
        assert_int_equal(strmap_get(&m, keys[i], 1, i * 10), -1); /* new: -1, then stored */
    assert_int_equal(m.n, 6);
    for (long i = 0; i < 6; i++)
        assert_int_equal(strmap_get(&m, keys[i], 0, 0), i * 10);
    assert_int_equal(strmap_get(&m, "b", 0, 0), -1);
    assert_int_equal(strmap_get(&m, "wang1k/0.jp", 0, 0), -1); /* a prefix is another key */
    assert_int_equal(m.n, 6);
    /* a lookup without insert never adds */
    assert_int_equal(strmap_get(&m, "b", 0, 0), -1);
    assert_int_equal(m.n, 6);
    strmap_free(&m);
    assert_null(m.keys);
    assert_int_equal(m.cap, 0);
    assert_int_equal(m.n, 0);
}

/* Keys sharing one slot of the first table (1024 slots) probe past each other. */
static void test_collisions(void **state)
{
    (void)state;
    enum { WANT = 40 };
    static char keys[WANT][32];
    int n = 0;
    size_t slot = fnv1a("k0") & 1023;
    for (int i = 0; n < WANT && i < 10000000; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%d", i);
        if ((fnv1a(k) & 1023) == slot)
            snprintf(keys[n++], sizeof keys[0], "%s", k);
    }
    assert_int_equal(n, WANT);
    strmap m = {0};
    for (int i = 0; i < n; i++)
        assert_int_equal(strmap_get(&m, keys[i], 1, i), -1);
    assert_int_equal(m.cap, 1024); /* still the first table: they really share a slot */
    for (int i = 0; i < n; i++)
        assert_int_equal(strmap_get(&m, keys[i], 0, 0), i);
    /* an absent key hashing to the same slot walks the whole run and is not found */
    for (int i = 10000000;; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%d", i);
        if ((fnv1a(k) & 1023) == slot) {
            assert_int_equal(strmap_get(&m, k, 0, 0), -1);
            break;
        }
    }
    strmap_free(&m);
}

/* 5000 keys: the table doubles several times and keeps every entry. */
static void test_growth(void **state)
{
    (void)state;
    enum { N = 5000 };
    char (*keys)[24] = malloc(N * sizeof *keys);
    assert_non_null(keys);
    strmap m = {0};
    size_t caps_seen = 0, last_cap = 0;
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "item-%d", i * 7919);
        assert_int_equal(strmap_get(&m, keys[i], 1, i), -1);
        if (m.cap != last_cap) {
            caps_seen++;
            last_cap = m.cap;
        }
        assert_true(m.n * 2 <= m.cap); /* never more than half full */
    }
    assert_int_equal(m.n, N);
    assert_true(caps_seen >= 4); /* 1024 -> 2048 -> 4096 -> 8192 -> 16384 */
    assert_int_equal(m.cap, 16384);
    for (int i = 0; i < N; i++)
        assert_int_equal(strmap_get(&m, keys[i], 0, 0), i);
    char k[24];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "item-%d", i * 7919 + 1);
        assert_int_equal(strmap_get(&m, k, 0, 0), -1);
    }
    strmap_free(&m);
    free(keys);
}

/* Inserting a key again returns the stored value and keeps it; equal content is the same
 * key whatever buffer holds it. */
static void test_duplicates(void **state)
{
    (void)state;
    strmap m = {0};
    char a[] = "sha256:abc", b[] = "sha256:abc";
    assert_int_equal(strmap_get(&m, a, 1, 7), -1);
    assert_int_equal(strmap_get(&m, b, 1, 99), 7);
    assert_int_equal(strmap_get(&m, a, 1, 0), 7);
    assert_int_equal(m.n, 1);
    assert_int_equal(strmap_get(&m, b, 0, 0), 7);
    /* value 0 is a value, not absence */
    assert_int_equal(strmap_get(&m, "zero", 1, 0), -1);
    assert_int_equal(strmap_get(&m, "zero", 1, 5), 0);
    assert_int_equal(m.n, 2);
    strmap_free(&m);
    /* a freed map starts again empty */
    assert_int_equal(strmap_get(&m, a, 0, 0), -1);
    assert_int_equal(strmap_get(&m, a, 1, 3), -1);
    assert_int_equal(strmap_get(&m, b, 0, 0), 3);
    strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_insert_lookup),
        cmocka_unit_test(test_collisions),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

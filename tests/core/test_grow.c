/*
 * test_grow.c — core/grow.h: the capacity doubling every growable array uses. Room is made
 * for what is asked (from the first capacity, doubling), contents survive a move, nothing is
 * reallocated when there is room, and sizes that overflow are refused with the array intact;
 * grow_capacity gives the same capacities without allocating.
 */
#include <stdint.h>
#include <stdlib.h>

#include "../testutil.h"
#include "core/grow.h"

static void test_doubling(void **state)
{
    (void)state;
    int *v = NULL;
    size_t cap = 0;
    assert_int_equal(grow_array((void **)&v, &cap, 1, sizeof *v, 16), 0);
    assert_non_null(v);
    assert_int_equal(cap, 16);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(grow_array((void **)&v, &cap, (size_t)i + 1, sizeof *v, 16), 0);
        v[i] = i * 7;
    }
    assert_int_equal(cap, 1024); /* 16 doubled six times */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(v[i], i * 7);
    int *before = v;
    assert_int_equal(grow_array((void **)&v, &cap, 1024, sizeof *v, 16), 0);
    assert_ptr_equal(v, before); /* room already: untouched */
    assert_int_equal(grow_array((void **)&v, &cap, 5000, sizeof *v, 16), 0);
    assert_int_equal(cap, 8192); /* one call may double several times */
    assert_int_equal(v[999], 999 * 7);
    free(v);
}

static void test_first_zero(void **state)
{
    (void)state;
    char *v = NULL;
    size_t cap = 0;
    assert_int_equal(grow_array((void **)&v, &cap, 3, 1, 0), 0);
    assert_int_equal(cap, 4); /* from 1: 1, 2, 4 */
    free(v);
}

static void test_overflow(void **state)
{
    (void)state;
    double *v = NULL;
    size_t cap = 0;
    assert_int_equal(grow_array((void **)&v, &cap, 8, sizeof *v, 8), 0);
    v[7] = 2.5;
    double *before = v;
    assert_int_equal(grow_array((void **)&v, &cap, SIZE_MAX / 4, sizeof *v, 8), -1);
    assert_int_equal(grow_array((void **)&v, &cap, SIZE_MAX, sizeof *v, 8), -1);
    assert_ptr_equal(v, before);
    assert_int_equal(cap, 8);
    assert_true(v[7] == 2.5);
    assert_int_equal(grow_array((void **)&v, &cap, 9, 0, 8), -1); /* zero-sized elements */
    free(v);
}

static void test_capacity(void **state)
{
    (void)state;
    assert_int_equal(grow_capacity(0, 1, 16), 16);
    assert_int_equal(grow_capacity(16, 16, 64), 16);     /* room already */
    assert_int_equal(grow_capacity(16, 17, 64), 32);
    assert_int_equal(grow_capacity(100, 1000, 16), 1600); /* doubles from the current cap */
    assert_int_equal(grow_capacity(0, 5, 0), 8);          /* from 1 */
    assert_int_equal(grow_capacity(SIZE_MAX / 2 + 1, SIZE_MAX, 1), 0); /* overflow */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubling),
        cmocka_unit_test(test_first_zero),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

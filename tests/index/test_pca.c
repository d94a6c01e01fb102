/*
 * test_pca.c — the PCA of the HNSW index's compression (index/pca.h) on data with known
 * principal axes: eigenvalues found, components orthonormal and aligned with the axes, the
 * mean projected to zero, whitening giving unit variance, dead rows ignored, argument errors.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "index/pca.h"

static uint64_t rs;
static double unit(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2.0 * log(unit())) * cos(6.283185307 * unit())); }

enum { DIM = 20, N = 4000 };
static const float sd[3] = {3.0f, 2.0f, 1.0f}; /* standard deviations along the axes */

/* N rows: mean m, variance sd^2 along three orthonormal axes (a rotation of e0, e1, e2),
 * 0.05 noise elsewhere; axes written to `axes` (3 x DIM). */
static float *make_data(float *axes, float *mean)
{
    rs = 12345;
    /* axes: Gram-Schmidt on random vectors */
    for (int a = 0; a < 3; a++) {
        float *v = axes + a * DIM;
        for (int i = 0; i < DIM; i++)
            v[i] = gauss();
        for (int b = 0; b < a; b++) {
            float d = 0;
            for (int i = 0; i < DIM; i++)
                d += v[i] * axes[b * DIM + i];
            for (int i = 0; i < DIM; i++)
                v[i] -= d * axes[b * DIM + i];
        }
        float nn = 0;
        for (int i = 0; i < DIM; i++)
            nn += v[i] * v[i];
        for (int i = 0; i < DIM; i++)
            v[i] /= sqrtf(nn);
    }
    for (int i = 0; i < DIM; i++)
        mean[i] = (float)i * 0.1f;
    float *x = malloc((size_t)N * DIM * sizeof(float));
    assert_non_null(x);
    for (int r = 0; r < N; r++) {
        float *row = x + (size_t)r * DIM;
        for (int i = 0; i < DIM; i++)
            row[i] = mean[i] + 0.05f * gauss();
        for (int a = 0; a < 3; a++) {
            float c = sd[a] * gauss();
            for (int i = 0; i < DIM; i++)
                row[i] += c * axes[a * DIM + i];
        }
    }
    return x;
}

static void test_axes(void **state)
{
    (void)state;
    float axes[3 * DIM], mean[DIM];
    float *x = make_data(axes, mean);
    /* dead rows with wild values must not matter */
    uint8_t *alive = malloc(N + 100);
    float *xx = malloc((size_t)(N + 100) * DIM * sizeof(float));
    memcpy(xx, x, (size_t)N * DIM * sizeof(float));
    memset(alive, 1, N);
    for (int r = N; r < N + 100; r++) {
        alive[r] = 0;
        for (int i = 0; i < DIM; i++)
            xx[(size_t)r * DIM + (size_t)i] = 1000.0f;
    }
    pca_model m;
    imgsim_error err = {0};
    assert_int_equal(pca_fit(&m, xx, N + 100, DIM, alive, 3, 0, 0, 1, &err), IMGSIM_OK);
    for (int a = 0; a < 3; a++) {
        assert_float_equal(m.eig[a], sd[a] * sd[a], 0.1 * sd[a] * sd[a]);
        /* component a is +-axis a; orthonormal to the others */
        float d = 0;
        for (int i = 0; i < DIM; i++)
            d += m.w[a * DIM + i] * axes[a * DIM + i];
        assert_float_equal(fabsf(d), 1.0f, 0.01f);
        for (int b = 0; b < 3; b++) {
            float e = 0;
            for (int i = 0; i < DIM; i++)
                e += m.w[a * DIM + i] * m.w[b * DIM + i];
            assert_float_equal(e, a == b ? 1.0f : 0.0f, 1e-4f);
        }
    }
    float y[3];
    pca_project(&m, mean, y);
    for (int a = 0; a < 3; a++)
        assert_float_equal(y[a], 0.0f, 0.1f);
    pca_free(&m);
    /* whitening: every component of the projected data has variance ~1 */
    assert_int_equal(pca_fit(&m, x, N, DIM, NULL, 3, 1, 0, 1, &err), IMGSIM_OK);
    double var[3] = {0};
    for (int r = 0; r < N; r++) {
        pca_project(&m, x + (size_t)r * DIM, y);
        for (int a = 0; a < 3; a++)
            var[a] += (double)y[a] * y[a];
    }
    for (int a = 0; a < 3; a++)
        assert_float_equal(var[a] / N, 1.0, 0.05);
    pca_free(&m);
    free(x);
    free(xx);
    free(alive);
}

static void test_errors(void **state)
{
    (void)state;
    float x[5 * 4] = {0};
    pca_model m;
    imgsim_error err = {0};
    assert_int_equal(pca_fit(&m, x, 5, 4, NULL, 5, 0, 0, 1, &err), IMGSIM_E_ARG);
    assert_int_equal(pca_fit(&m, x, 5, 4, NULL, 0, 0, 0, 1, &err), IMGSIM_E_ARG);
    assert_int_equal(pca_fit(&m, x, 3, 4, NULL, 3, 0, 0, 1, &err), IMGSIM_E_ARG);
    /* constant data: a valid (if useless) projection, no NaN */
    assert_int_equal(pca_fit(&m, x, 5, 4, NULL, 2, 1, 1, 1, &err), IMGSIM_OK);
    float y[2];
    pca_project(&m, x, y);
    assert_false(isnan(y[0]) || isnan(y[1]));
    pca_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_axes),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

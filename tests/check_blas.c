/* check_blas.c — dae_sgemm (OpenBLAS and its small-m kernel) against the naive triple loop. */
#include "check_quiet.h"
#include <math.h>
#include <stdlib.h>

#include "daed/core/blas.h"
#include "daed/core/rng.h"

static void fill(float *x, size_t n, dae_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 2.0f * dae_rng_uniform(r) - 1.0f;
}

/* One case: m x n result, inner k, leading dimensions padded by `pad` beyond the rows. */
static void check_case(int ta, int tb, int m, int n, int k, float alpha, float beta, int pad)
{
    dae_rng r;
    dae_rng_seed(&r, (uint64_t)(m * 131 + n * 17 + k + ta * 7 + tb * 3));
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    int lda = ac + pad, ldb = bc + pad, ldc = n + pad;
    float *a = malloc(sizeof(float) * (size_t)ar * lda);
    float *b = malloc(sizeof(float) * (size_t)br * ldb);
    float *c1 = malloc(sizeof(float) * (size_t)m * ldc);
    float *c2 = malloc(sizeof(float) * (size_t)m * ldc);
    fill(a, (size_t)ar * lda, &r);
    fill(b, (size_t)br * ldb, &r);
    fill(c1, (size_t)m * ldc, &r);
    for (size_t i = 0; i < (size_t)m * ldc; i++)
        c2[i] = c1[i];
    dae_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c1, ldc);
    dae_sgemm_naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c2, ldc);
    /* entries are sums of k products of values in [-1,1]: float32 accumulation error grows
     * like k * 2^-24 at worst, so 1e-5 * (k + 1) is safely above it and far below any
     * indexing bug (which produces O(1) differences) */
    float tol = 1e-5f * (float)(k + 1);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            float x = c1[(size_t)i * ldc + j], y = c2[(size_t)i * ldc + j];
            ck_assert_msg(fabsf(x - y) <= tol, "ta=%d tb=%d m=%d n=%d k=%d: C[%d][%d] %g vs %g",
                          ta, tb, m, n, k, i, j, (double)x, (double)y);
        }
    free(a);
    free(b);
    free(c1);
    free(c2);
}

START_TEST(test_transposes_odd_sizes)
{
    static const int sz[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 13, 29}, {33, 65, 9}, {64, 31, 130}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++)
                check_case(ta, tb, sz[s][0], sz[s][1], sz[s][2], 1.0f, 0.0f, 0);
}
END_TEST

START_TEST(test_alpha_beta_ld)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_case(ta, tb, 19, 23, 11, 0.5f, 1.0f, 3);
            check_case(ta, tb, 7, 9, 40, -2.0f, 0.25f, 5);
            check_case(ta, tb, 5, 4, 3, 1.0f, 0.0f, 1);
        }
}
END_TEST

START_TEST(test_beta_zero_ignores_c)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4], d[4];
    for (int i = 0; i < 4; i++)
        c[i] = d[i] = NAN;
    dae_sgemm(0, 0, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
    dae_sgemm_naive(0, 0, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, d, 2);
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq(c[i], a[i]);
        ck_assert_float_eq(d[i], a[i]);
    }
}
END_TEST

/* The linear layers' shape (A, B^T) at every m the small kernel takes and one past it: n
 * with and without a multiple of its 4-row blocks, k with and without a multiple of 8
 * lanes, padded leading dimensions, alpha and beta, and beta 0 over NaN. */
START_TEST(test_small_m_kernel)
{
    static const int nk[][2] = {{4, 8}, {7, 13}, {33, 784}, {1, 1}, {9, 3}};
    for (int m = 1; m <= DAE_SGEMM_SMALL_M + 1; m++)
        for (size_t s = 0; s < sizeof nk / sizeof nk[0]; s++) {
            check_case(0, 1, m, nk[s][0], nk[s][1], 1.0f, 1.0f, 0);
            check_case(0, 1, m, nk[s][0], nk[s][1], -0.5f, 0.25f, 3);
        }
    float a[3 * 9], b[5 * 9], c[3 * 5], d[3 * 5];
    dae_rng r;
    dae_rng_seed(&r, 7);
    fill(a, 27, &r);
    fill(b, 45, &r);
    for (int i = 0; i < 15; i++)
        c[i] = d[i] = NAN;
    dae_sgemm(0, 1, 3, 5, 9, 1.0f, a, 9, b, 9, 0.0f, c, 5);
    dae_sgemm_naive(0, 1, 3, 5, 9, 1.0f, a, 9, b, 9, 0.0f, d, 5);
    for (int i = 0; i < 15; i++)
        ck_assert_msg(fabsf(c[i] - d[i]) <= 1e-5f, "C[%d] %g vs %g", i, (double)c[i],
                      (double)d[i]);
}
END_TEST

/* The small kernel is taken exactly for A * B^T with 1 <= m <= DAE_SGEMM_SMALL_M, n, k >= 1,
 * on an x86-64 CPU with AVX2 and FMA (asked of the CPU here, not of blas.c). */
START_TEST(test_small_m_only_for_its_shape)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    int cpu = 0;
#endif
    ck_assert_int_eq(dae_sgemm_small_ok(0, 1, 1, 8, 8), cpu);
    ck_assert_int_eq(dae_sgemm_small_ok(0, 1, 4, 784, 384), cpu);
    ck_assert_int_eq(dae_sgemm_small_ok(0, 1, DAE_SGEMM_SMALL_M, 1, 1), cpu);
    ck_assert_int_eq(dae_sgemm_small_ok(1, 1, 4, 8, 8), 0);
    ck_assert_int_eq(dae_sgemm_small_ok(0, 0, 4, 8, 8), 0);
    ck_assert_int_eq(dae_sgemm_small_ok(1, 0, 4, 8, 8), 0);
    ck_assert_int_eq(dae_sgemm_small_ok(0, 1, DAE_SGEMM_SMALL_M + 1, 8, 8), 0);
    ck_assert_int_eq(dae_sgemm_small_ok(0, 1, 0, 8, 8), 0);
    ck_assert_int_eq(dae_sgemm_small_ok(0, 1, 4, 8, 0), 0);
}
END_TEST

START_TEST(test_threads_and_config)
{
    int before = dae_blas_get_threads();
    dae_blas_set_threads(1);
    ck_assert_int_eq(dae_blas_get_threads(), 1);
    dae_blas_set_threads(before);
    ck_assert_ptr_nonnull(dae_blas_config());
}
END_TEST

Suite *suite_blas(void)
{
    Suite *s = suite_create("blas");
    TCase *tc = tcase_create("sgemm");
    tcase_add_test(tc, test_transposes_odd_sizes);
    tcase_add_test(tc, test_alpha_beta_ld);
    tcase_add_test(tc, test_beta_zero_ignores_c);
    tcase_add_test(tc, test_small_m_kernel);
    tcase_add_test(tc, test_small_m_only_for_its_shape);
    tcase_add_test(tc, test_threads_and_config);
    suite_add_tcase(s, tc);
    return s;
}

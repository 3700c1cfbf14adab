/* check_quality.c — PSNR, SSIM, AUROC and quantiles against hand values and skimage/sklearn/numpy.
 *
 * The reference numbers were computed once with Debian's /usr/bin/python3 (skimage 0.19,
 * sklearn 1.2, numpy 1.24) on the same synthetic images, e.g. for SSIM:
 *   x = ((i*37+11) % 101).astype(float32) / float32(100)               (h, w) row-major
 *   y = ((i*53+7) % 97).astype(float32) / float32(80) - float32(0.1)   clipped to [0,1]
 *   structural_similarity(x.astype(float64), clip(y,0,1).astype(float64), data_range=1.0)
 */
#include "check_quiet.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daed/train/quality.h"

/* The float32 test pattern ((i*a+b) % m) / d - off over n values. */
static float *pattern(int n, int a, int b, int m, int d, float off)
{
    float *v = malloc((size_t)n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (int i = 0; i < n; i++)
        v[i] = (float)(((long)i * a + b) % m) / (float)d - off;
    return v;
}

START_TEST(test_psnr_hand)
{
    float clean[4] = {0.0f, 0.5f, 1.0f, 0.25f};
    float out[4] = {0.1f, 0.5f, 1.5f, -0.25f}; /* clipped: 0.1, 0.5, 1.0, 0.0 */
    double mse = ((double)0.1f * 0.1f + 0.0 + 0.0 + 0.0625) / 4.0;
    ck_assert_double_eq_tol(dae_mse_clipped(out, clean, 4), mse, 1e-15);
    ck_assert_double_eq_tol(dae_psnr(out, clean, 4), 10.0 * log10(1.0 / mse), 1e-12);
    /* exact reconstruction: capped at 100 dB */
    ck_assert_double_eq(dae_psnr(clean, clean, 4), 100.0);
    ck_assert_double_eq_tol(dae_psnr_from_mse(0.01), 20.0, 1e-12);
    ck_assert_double_eq_tol(dae_psnr_from_mse(1e-12), 100.0, 1e-12);
}
END_TEST

START_TEST(test_quality_accumulator)
{
    /* two 1x2x2 images: one exact (capped), one with MSE 0.01 */
    float clean[8] = {0.2f, 0.4f, 0.6f, 0.8f, 0.5f, 0.5f, 0.5f, 0.5f};
    float out[8] = {0.2f, 0.4f, 0.6f, 0.8f, 0.6f, 0.4f, 0.6f, 0.4f};
    dae_quality q;
    dae_quality_init(&q);
    ck_assert(isnan(dae_quality_psnr(&q)));
    dae_quality_add(&q, out, clean, 1, 1, 2, 2, 1);
    dae_quality_add(&q, out + 4, clean + 4, 1, 1, 2, 2, 1);
    ck_assert_int_eq(q.n, 2);
    ck_assert_int_eq(q.n_capped, 1);
    double mse2 = dae_mse_clipped(out + 4, clean + 4, 4);
    ck_assert_double_eq_tol(mse2, 0.01, 1e-8);
    ck_assert_double_eq_tol(dae_quality_psnr(&q), (100.0 + dae_psnr_from_mse(mse2)) / 2, 1e-12);
    ck_assert_double_eq_tol(dae_quality_psnr_agg(&q), dae_psnr_from_mse(mse2 / 2), 1e-12);
    ck_assert_double_eq_tol(dae_quality_mse(&q), mse2 / 2, 1e-15);
    /* 2x2 images are below SSIM's 7x7 window: no SSIM counted */
    ck_assert_int_eq(q.n_ssim, 0);
    ck_assert(isnan(dae_quality_ssim(&q)));
}
END_TEST

START_TEST(test_psnr_ssim_skimage)
{
    static const struct {
        int h, w;
        double mse, psnr, ssim;
    } ref[] = {
        {28, 28, 0.19080652466381925, 7.1940677859919697, 0.032739467390678685},
        {10, 9, 0.18343923191550349, 7.3650777672315044, 0.029133530788547798},
        {7, 7, 0.18758277978323151, 7.2680703263276127, 0.052804252682285044},
    };
    for (size_t t = 0; t < sizeof ref / sizeof ref[0]; t++) {
        int n = ref[t].h * ref[t].w;
        float *x = pattern(n, 37, 11, 101, 100, 0.0f);
        float *y = pattern(n, 53, 7, 97, 80, 0.1f);
        ck_assert_double_eq_tol(dae_mse_clipped(y, x, (size_t)n), ref[t].mse, 1e-14);
        ck_assert_double_eq_tol(dae_psnr(y, x, (size_t)n), ref[t].psnr, 1e-11);
        ck_assert_double_eq_tol(dae_ssim(y, x, 1, ref[t].h, ref[t].w), ref[t].ssim, 1e-12);
        /* via the accumulator */
        dae_quality q;
        dae_quality_init(&q);
        dae_quality_add(&q, y, x, 1, 1, ref[t].h, ref[t].w, 1);
        ck_assert_double_eq_tol(dae_quality_ssim(&q), ref[t].ssim, 1e-12);
        free(x);
        free(y);
    }
    /* a similar pair: x = (3i % 256)/255, y = ((3i+5) % 256)/255 */
    float *x = pattern(784, 3, 0, 256, 255, 0.0f), *y = pattern(784, 3, 5, 256, 255, 0.0f);
    ck_assert_double_eq_tol(dae_ssim(y, x, 1, 28, 28), 0.89773976460622928, 1e-12);
    ck_assert_double_eq_tol(dae_ssim(x, x, 1, 28, 28), 1.0, 1e-12);
    ck_assert(isnan(dae_ssim(x, x, 1, 6, 28)));
    free(x);
    free(y);
    /* three channels (skimage channel_axis=0): the mean of the channel SSIMs */
    x = pattern(3 * 12 * 11, 37, 11, 101, 100, 0.0f);
    y = pattern(3 * 12 * 11, 53, 7, 97, 80, 0.1f);
    ck_assert_double_eq_tol(dae_ssim(y, x, 3, 12, 11), 0.015775160521484876, 1e-12);
    free(x);
    free(y);
}
END_TEST

START_TEST(test_auroc)
{
    double auc;
    /* hand: every positive above every negative = 1, reversed = 0 */
    double s1[4] = {0.1, 0.2, 0.3, 0.4};
    unsigned char p1[4] = {0, 0, 1, 1}, p1r[4] = {1, 1, 0, 0};
    ck_assert_int_eq(dae_auroc(s1, p1, 4, &auc, NULL), DAE_OK);
    ck_assert_double_eq(auc, 1.0);
    ck_assert_int_eq(dae_auroc(s1, p1r, 4, &auc, NULL), DAE_OK);
    ck_assert_double_eq(auc, 0.0);
    /* sklearn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75 */
    double s2[4] = {0.1, 0.4, 0.35, 0.8};
    ck_assert_int_eq(dae_auroc(s2, p1, 4, &auc, NULL), DAE_OK);
    ck_assert_double_eq_tol(auc, 0.75, 1e-15);
    /* ties count one half: roc_auc_score([0,1,0,1,1],[0.5,0.5,0.2,0.9,0.5]) = 5/6 */
    double s3[5] = {0.5, 0.5, 0.2, 0.9, 0.5};
    unsigned char p3[5] = {0, 1, 0, 1, 1};
    ck_assert_int_eq(dae_auroc(s3, p3, 5, &auc, NULL), DAE_OK);
    ck_assert_double_eq_tol(auc, 5.0 / 6.0, 1e-15);
    /* all scores equal: 0.5 */
    double s4[4] = {1, 1, 1, 1};
    ck_assert_int_eq(dae_auroc(s4, p1, 4, &auc, NULL), DAE_OK);
    ck_assert_double_eq(auc, 0.5);
    /* sklearn on 50 samples with many ties: score = ((7i) % 13) // 3, pos = i%3==0 | i%7==2 */
    double s5[50], s6[50];
    unsigned char p5[50], p6[50];
    for (int i = 0; i < 50; i++) {
        s5[i] = (double)(((7 * i) % 13) / 3);
        p5[i] = (i % 3 == 0) || (i % 7 == 2);
        s6[i] = sin(i * 1.3);
        p6[i] = i % 4 == 1;
    }
    ck_assert_int_eq(dae_auroc(s5, p5, 50, &auc, NULL), DAE_OK);
    ck_assert_double_eq_tol(auc, 0.5316558441558441, 1e-14);
    ck_assert_int_eq(dae_auroc(s6, p6, 50, &auc, NULL), DAE_OK);
    ck_assert_double_eq_tol(auc, 0.53222453222453225, 1e-14);
    /* one class only, NaN score */
    dae_error e = {0};
    unsigned char none[4] = {0, 0, 0, 0};
    ck_assert_int_eq(dae_auroc(s1, none, 4, &auc, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "0 positives among 4"));
    s1[2] = NAN;
    ck_assert_int_eq(dae_auroc(s1, p1, 4, &auc, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "score[2] is NaN"));
}
END_TEST

START_TEST(test_quantiles)
{
    /* numpy.quantile(((arange(23)*29) % 17) * 0.37, q) */
    double v[23];
    for (int i = 0; i < 23; i++)
        v[i] = ((i * 29) % 17) * 0.37;
    double q[7] = {0, 0.1, 0.25, 0.5, 0.9, 0.95, 1};
    double want[7] = {0.0, 0.44400000000000006, 1.295, 2.96, 5.18, 5.512999999999999, 5.92};
    double got[7];
    ck_assert_int_eq(dae_quantiles(v, 23, q, 7, got, NULL), DAE_OK);
    for (int i = 0; i < 7; i++)
        ck_assert_double_eq_tol(got[i], want[i], 1e-15);
    ck_assert_double_eq(v[0], 0.0); /* input untouched */
    ck_assert_double_eq(v[1], (29 % 17) * 0.37);
    /* numpy.quantile(sin(arange(10) * 0.7), q) */
    double v2[10];
    for (int i = 0; i < 10; i++)
        v2[i] = sin(i * 0.7);
    double q2[4] = {0.05, 0.5, 0.77, 0.99};
    double want2[4] = {-0.9325580345294974, 0.008406950242174856, 0.622571619641966,
                       0.9744480972878974};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(dae_quantile(v2, 10, q2[i]), want2[i], 1e-15);
    /* hand: median of {3,1,2,4} = 2.5, single value */
    double v3[4] = {3, 1, 2, 4}, one = 7;
    ck_assert_double_eq(dae_quantile(v3, 4, 0.5), 2.5);
    ck_assert_double_eq(dae_quantile(&one, 1, 0.3), 7.0);
    /* errors */
    dae_error e = {0};
    double bad = 1.5;
    ck_assert_int_eq(dae_quantiles(v3, 4, &bad, 1, got, &e), DAE_EINVAL);
    ck_assert_int_eq(dae_quantiles(v3, 0, q, 1, got, &e), DAE_EINVAL);
    ck_assert(isnan(dae_quantile(v3, 4, -0.1)));
}
END_TEST

Suite *suite_quality(void)
{
    Suite *s = suite_create("quality");
    TCase *tc = tcase_create("quality");
    tcase_add_test(tc, test_psnr_hand);
    tcase_add_test(tc, test_quality_accumulator);
    tcase_add_test(tc, test_psnr_ssim_skimage);
    tcase_add_test(tc, test_auroc);
    tcase_add_test(tc, test_quantiles);
    suite_add_tcase(s, tc);
    return s;
}

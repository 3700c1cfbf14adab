/* check_nlm.c — guided non-local means (core/nlm.h): equal to the formula computed the
 * slow way (bands, borders, offset grid, blend), the 8-bit path equal to the float one,
 * the blend rule, and bad arguments refused. */
#include "check_quiet.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/nlm.h"
#include "daed/core/rng.h"

static float px(const float *im, int c, int h, int w, int ch, int y, int x)
{
    (void)c;
    y = y < 0 ? 0 : y >= h ? h - 1 : y;
    x = x < 0 ? 0 : x >= w ? w - 1 : x;
    return im[((size_t)ch * h + y) * w + x];
}

/* nlm.h's formula, pixel by pixel. */
static void nlm_slow(const float *noisy, const float *guide, float *out, int c, int h, int w,
                     const dae_nlm_params *p)
{
    double s = dae_nlm_residual_rms((dae_nlm_in){.f = noisy}, (dae_nlm_in){.f = guide},
                                    (long)c * h * w);
    double h2 = (double)p->strength * s * (double)p->strength * s;
    int P = p->patch, win = (2 * P + 1) * (2 * P + 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double acc[4] = {0}, ws = 0;
            for (int dy = -p->search; dy <= p->search; dy++)
                for (int dx = -p->search; dx <= p->search; dx++) {
                    if (dy % p->step || dx % p->step)
                        continue;
                    double d = 0;
                    for (int ch = 0; ch < c; ch++)
                        for (int oy = -P; oy <= P; oy++)
                            for (int ox = -P; ox <= P; ox++) {
                                double e = px(guide, c, h, w, ch, y + oy, x + ox) -
                                           px(guide, c, h, w, ch, y + dy + oy, x + dx + ox);
                                d += e * e;
                            }
                    d /= (double)(c * win);
                    double t = 1.0 - d / (8.0 * h2);
                    double wt = t > 0 ? pow(t, 8) : 0;
                    for (int ch = 0; ch < c; ch++)
                        acc[ch] += wt * px(noisy, c, h, w, ch, y + dy, x + dx);
                    ws += wt;
                }
            for (int ch = 0; ch < c; ch++) {
                size_t i = ((size_t)ch * h + y) * w + x;
                out[i] = (float)(p->blend * acc[ch] / ws + (1 - p->blend) * guide[i]);
            }
        }
}

/* A smooth guide with edges and noisy = guide + noise of sd 0.05. */
static void make_pair(float *noisy, float *guide, int c, int h, int w, uint64_t seed)
{
    dae_rng rng;
    dae_rng_seed(&rng, seed);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = ((size_t)ch * h + y) * w + x;
                guide[i] = 0.3f + 0.2f * (float)ch / 3 + (x > w / 2 ? 0.3f : 0.0f) +
                           0.1f * sinf(0.3f * (float)y);
                noisy[i] = guide[i] + 0.05f * dae_rng_normal(&rng);
            }
}

START_TEST(test_equals_formula)
{
    /* 41 x 270: two bands of rows, two blocks of columns; 3 channels; every border
     * reached by the search */
    int c = 3, h = 41, w = 270;
    size_t n = (size_t)c * h * w;
    float *noisy = malloc(n * sizeof *noisy), *guide = malloc(n * sizeof *guide);
    float *fast = malloc(n * sizeof *fast), *slow = malloc(n * sizeof *slow);
    make_pair(noisy, guide, c, h, w, 5);
    const dae_nlm_params ps[] = {{4, 2, 1, 1.7f, 0.8f}, {3, 1, 0, 1.0f, 1.0f}, {5, 3, 2, 2.5f, 0.3f}};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        dae_error e = {0};
        ck_assert_int_eq(dae_nlm_guided((dae_nlm_in){.f = noisy}, (dae_nlm_in){.f = guide},
                                        (dae_nlm_out){.f = fast}, c, h, w, &ps[k], &e),
                         DAE_OK);
        nlm_slow(noisy, guide, slow, c, h, w, &ps[k]);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(fabsf(fast[i] - slow[i]) < 2e-5f, "params %zu value %zu: %g vs %g", k,
                          i, (double)fast[i], (double)slow[i]);
    }
    free(noisy);
    free(guide);
    free(fast);
    free(slow);
}
END_TEST

START_TEST(test_8bit_equals_float)
{
    int c = 3, h = 37, w = 30;
    size_t n = (size_t)c * h * w;
    float *noisy = malloc(n * sizeof *noisy), *guide = malloc(n * sizeof *guide);
    float *out = malloc(n * sizeof *out);
    unsigned char *n8 = malloc(n), *g8 = malloc(n), *o8 = malloc(n);
    make_pair(noisy, guide, c, h, w, 9);
    for (size_t i = 0; i < n; i++) { /* the same values, as bytes */
        n8[i] = (unsigned char)lrintf(fminf(fmaxf(noisy[i], 0.0f), 1.0f) * 255.0f);
        g8[i] = (unsigned char)lrintf(fminf(fmaxf(guide[i], 0.0f), 1.0f) * 255.0f);
        noisy[i] = (float)n8[i] / 255.0f;
        guide[i] = (float)g8[i] / 255.0f;
    }
    dae_nlm_params p = {6, 2, 1, 1.7f, 0.8f};
    ck_assert_int_eq(dae_nlm_guided((dae_nlm_in){.u8 = n8}, (dae_nlm_in){.u8 = g8},
                                    (dae_nlm_out){.u8 = o8}, c, h, w, &p, NULL), DAE_OK);
    ck_assert_int_eq(dae_nlm_guided((dae_nlm_in){.f = noisy}, (dae_nlm_in){.f = guide},
                                    (dae_nlm_out){.f = out}, c, h, w, &p, NULL), DAE_OK);
    int changed = 0;
    for (size_t i = 0; i < n; i++) {
        float f = out[i] * 255.0f + 0.5f;
        f = f > 0.0f ? f : 0.0f;
        ck_assert_int_eq(o8[i], (int)(f < 255.0f ? f : 255.0f));
        changed += o8[i] != g8[i];
    }
    ck_assert_int_gt(changed, (int)n / 4); /* it did something */
    free(noisy);
    free(guide);
    free(out);
    free(n8);
    free(g8);
    free(o8);
}
END_TEST

START_TEST(test_averages_flat_noise)
{
    /* a flat guide: every offset weighs 1, so each pixel is the mean of 17 x 17 noisy ones */
    int h = 64, w = 64;
    size_t n = (size_t)h * w;
    float *noisy = malloc(n * sizeof *noisy), *guide = malloc(n * sizeof *guide);
    float *out = malloc(n * sizeof *out);
    dae_rng rng;
    dae_rng_seed(&rng, 3);
    for (size_t i = 0; i < n; i++) {
        guide[i] = 0.5f;
        noisy[i] = 0.5f + 0.1f * dae_rng_normal(&rng);
    }
    dae_nlm_params p = {16, 2, 1, 1.7f, 1.0f};
    ck_assert_int_eq(dae_nlm_guided((dae_nlm_in){.f = noisy}, (dae_nlm_in){.f = guide},
                                    (dae_nlm_out){.f = out}, 1, h, w, &p, NULL), DAE_OK);
    double before = 0, after = 0;
    for (size_t i = 0; i < n; i++) {
        before += (noisy[i] - 0.5) * (noisy[i] - 0.5);
        after += (out[i] - 0.5) * (out[i] - 0.5);
    }
    ck_assert_msg(after < before / 50, "error power %g of %g", after, before);
    /* guide == noisy: nothing was removed, so only the pixel itself weighs */
    ck_assert_int_eq(dae_nlm_guided((dae_nlm_in){.f = noisy}, (dae_nlm_in){.f = noisy},
                                    (dae_nlm_out){.f = out}, 1, h, w, &p, NULL), DAE_OK);
    ck_assert_int_eq(memcmp(out, noisy, n * sizeof *out), 0);
    free(noisy);
    free(guide);
    free(out);
}
END_TEST

START_TEST(test_auto_blend)
{
    ck_assert_float_eq(dae_nlm_auto_blend(4.0, 4.0), 0.0f);   /* white: ratio 1 */
    ck_assert_float_eq(dae_nlm_auto_blend(6.0, 4.0), 0.0f);   /* ratio 1.5 */
    ck_assert_float_eq_tol(dae_nlm_auto_blend(8.0, 4.0), 0.4f, 1e-6f);
    ck_assert_float_eq_tol(dae_nlm_auto_blend(10.0, 4.0), 0.8f, 1e-6f);
    ck_assert_float_eq_tol(dae_nlm_auto_blend(40.0, 1.0), 0.8f, 1e-6f);
    ck_assert_float_eq(dae_nlm_auto_blend(0.0, 1.0), 0.0f);
    ck_assert_float_eq(dae_nlm_auto_blend(3.0, 0.0), 0.0f);
    ck_assert_float_eq(dae_nlm_auto_blend(NAN, 1.0), 0.0f);
}
END_TEST

START_TEST(test_refuses)
{
    float a[64] = {0}, b[64] = {0}, o[64];
    dae_nlm_in in = {.f = a}, g = {.f = b};
    dae_nlm_out out = {.f = o};
    const dae_nlm_params bad[] = {{0, 1, 1, 1.0f, 1.0f}, {65, 1, 1, 1.0f, 1.0f},
                                  {4, 5, 1, 1.0f, 1.0f}, {4, 0, 1, 1.0f, 1.0f},
                                  {4, 1, 9, 1.0f, 1.0f}, {4, 1, 1, 0.0f, 1.0f},
                                  {4, 1, 1, NAN, 1.0f}, {4, 1, 1, 1.0f, 1.5f},
                                  {4, 1, 1, 1.0f, -0.1f}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        dae_error e = {0};
        ck_assert_int_eq(dae_nlm_guided(in, g, out, 1, 8, 8, &bad[k], &e), DAE_EINVAL);
        ck_assert_ptr_nonnull(strstr(e.msg, "nlm:"));
    }
    dae_nlm_params p = {4, 1, 1, 1.0f, 1.0f};
    ck_assert_int_eq(dae_nlm_guided(in, g, out, 0, 8, 8, &p, NULL), DAE_EINVAL);
    ck_assert_int_eq(dae_nlm_guided(in, g, out, 1, 0, 8, &p, NULL), DAE_EINVAL);
    ck_assert_int_eq(dae_nlm_guided((dae_nlm_in){0}, g, out, 1, 8, 8, &p, NULL), DAE_EINVAL);
    ck_assert_int_eq(dae_nlm_guided(in, g, (dae_nlm_out){0}, 1, 8, 8, &p, NULL), DAE_EINVAL);
    /* a 1x1 image works: its only pixel */
    a[0] = 0.25f;
    b[0] = 0.5f;
    ck_assert_int_eq(dae_nlm_guided(in, g, out, 1, 1, 1, &p, NULL), DAE_OK);
    ck_assert_float_eq(o[0], 0.25f);
}
END_TEST

Suite *suite_nlm(void)
{
    Suite *s = suite_create("nlm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_equals_formula);
    tcase_add_test(tc, test_8bit_equals_float);
    tcase_add_test(tc, test_averages_flat_noise);
    tcase_add_test(tc, test_auto_blend);
    tcase_add_test(tc, test_refuses);
    suite_add_tcase(s, tc);
    return s;
}

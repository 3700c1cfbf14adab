/* check_halfres.c — a plane at half resolution and back (core/halfres.h): halving is the
 * 2x2 mean (odd borders repeated), doubling equals Keys' bicubic (a = -0.75) computed the
 * slow way with clamped coordinates, as cv2.INTER_CUBIC; constants and smooth fields come
 * back. */
#include "check_quiet.h"
#include <math.h>
#include <stdlib.h>

#include "daed/core/halfres.h"
#include "daed/core/rng.h"

static double keys(double x)
{
    const double a = -0.75;
    x = fabs(x);
    if (x <= 1)
        return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2)
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

static float at(const float *p, int w, int h, int x, int y)
{
    x = x < 0 ? 0 : x >= w ? w - 1 : x;
    y = y < 0 ? 0 : y >= h ? h - 1 : y;
    return p[(size_t)y * w + x];
}

/* Output pixel (x, y) of doubling src (hw x hh), from the definition. */
static double double_slow(const float *src, int hw, int hh, int x, int y)
{
    double sx = (x + 0.5) / 2 - 0.5, sy = (y + 0.5) / 2 - 0.5, acc = 0;
    int fx = (int)floor(sx), fy = (int)floor(sy);
    for (int j = fy - 1; j <= fy + 2; j++)
        for (int i = fx - 1; i <= fx + 2; i++)
            acc += keys(sx - i) * keys(sy - j) * at(src, hw, hh, i, j);
    return acc;
}

START_TEST(test_half_means)
{
    int sizes[][2] = {{8, 6}, {7, 5}, {1, 1}, {2, 3}};
    dae_rng r;
    dae_rng_seed(&r, 3);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int w = sizes[k][0], h = sizes[k][1], hw = dae_half_side(w), hh = dae_half_side(h);
        ck_assert_int_eq(hw, (w + 1) / 2);
        float *src = malloc(sizeof(float) * w * h), *dst = malloc(sizeof(float) * hw * hh);
        for (int i = 0; i < w * h; i++)
            src[i] = dae_rng_uniform(&r);
        dae_plane_half(src, w, h, dst);
        for (int y = 0; y < hh; y++)
            for (int x = 0; x < hw; x++) {
                float want = 0.25f * (at(src, w, h, 2 * x, 2 * y) + at(src, w, h, 2 * x + 1, 2 * y) +
                                      at(src, w, h, 2 * x, 2 * y + 1) +
                                      at(src, w, h, 2 * x + 1, 2 * y + 1));
                ck_assert_float_eq_tol(dst[y * hw + x], want, 1e-6f);
            }
        free(src);
        free(dst);
    }
}
END_TEST

START_TEST(test_double_equals_formula)
{
    int sizes[][2] = {{9, 7}, {10, 8}, {1, 1}, {2, 5}, {3, 3}};
    dae_rng r;
    dae_rng_seed(&r, 4);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int w = sizes[k][0], h = sizes[k][1], hw = dae_half_side(w), hh = dae_half_side(h);
        float *src = malloc(sizeof(float) * hw * hh), *dst = malloc(sizeof(float) * w * h);
        for (int i = 0; i < hw * hh; i++)
            src[i] = dae_rng_uniform(&r);
        dae_plane_double(src, w, h, dst);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                ck_assert_float_eq_tol(dst[y * w + x], double_slow(src, hw, hh, x, y), 1e-5);
        free(src);
        free(dst);
    }
}
END_TEST

/* A constant comes back exactly, and a smooth field (a cosine of period 32 pixels) within
 * 2 % of its amplitude, borders included. */
START_TEST(test_round_trip)
{
    enum { W = 64, H = 12 };
    static float p[W * H], half[(W / 2) * (H / 2)], back[W * H];
    for (int i = 0; i < W * H; i++)
        p[i] = 0.375f;
    dae_plane_half(p, W, H, half);
    dae_plane_double(half, W, H, back);
    for (int i = 0; i < W * H; i++)
        ck_assert_float_eq_tol(back[i], 0.375f, 1e-6f);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            p[y * W + x] = (float)cos(2 * M_PI * (x + 0.5) / 32);
    dae_plane_half(p, W, H, half);
    dae_plane_double(half, W, H, back);
    for (int i = 0; i < W * H; i++)
        ck_assert_float_eq_tol(back[i], p[i], 0.02f);
}
END_TEST

Suite *suite_halfres(void)
{
    Suite *s = suite_create("halfres");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_half_means);
    tcase_add_test(tc, test_double_equals_formula);
    tcase_add_test(tc, test_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

/* check_photo.c — photo helpers (opponent colour, area downscale, 8-bit noise, photo sets,
 * patches) and the trainer's photo-patch mode (deterministic resume, model file facts). */
#include "check_quiet.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/stat.h>

#include "daed/core/rng.h"
#include "daed/io/image.h"
#include "daed/io/png.h"
#include "daed/io/jpeg.h"
#include "daed/io/modelfile.h"
#include "daed/io/photo.h"
#include "daed/train/recipe.h"
#include "daed/train/trainer.h"
#include "../src/train/trainer_internal.h" /* dae_tr_photo_pair: the patches themselves */

START_TEST(test_opponent_round_trip)
{
    float px[3 * 4] = {0, 1, 0.25f, 0.5f, /* r */ 0, 1, 0.75f, 0.5f, /* g */ 0, 1, 0.5f, 0.5f};
    float orig[12];
    memcpy(orig, px, sizeof px);
    dae_color_to_space(px, 4, DAE_COLOR_OPPONENT);
    /* gray pixels map to (v, 0.5, 0.5); every value stays in [0,1] */
    ck_assert_float_eq_tol(px[0], 0.0f, 1e-6f);
    ck_assert_float_eq_tol(px[4], 0.5f, 1e-6f);
    ck_assert_float_eq_tol(px[8], 0.5f, 1e-6f);
    ck_assert_float_eq_tol(px[1], 1.0f, 1e-6f);
    ck_assert_float_eq_tol(px[2], 0.5f, 1e-6f);               /* (0.25+0.75+0.5)/3 */
    ck_assert_float_eq_tol(px[6], (0.25f - 0.5f + 1) / 2, 1e-6f); /* (r-b+1)/2 */
    ck_assert_float_eq_tol(px[10], (0.25f - 1.5f + 0.5f + 2) / 4, 1e-6f);
    for (int i = 0; i < 12; i++)
        ck_assert(px[i] >= 0.0f && px[i] <= 1.0f);
    dae_color_from_space(px, 4, DAE_COLOR_OPPONENT);
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq_tol(px[i], orig[i], 1e-6f);
    dae_color_to_space(px, 4, DAE_COLOR_RGB); /* no-op */
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq_tol(px[i], orig[i], 1e-6f);
    ck_assert_int_eq(dae_color_space_from_name("opponent"), DAE_COLOR_OPPONENT);
    ck_assert_int_eq(dae_color_space_from_name("rgb"), DAE_COLOR_RGB);
    ck_assert_int_eq(dae_color_space_from_name("yuv"), -1);
}
END_TEST

/* dae_color_noise_gain is the standard deviation unit RGB noise has in each channel:
 * measured by sending noise through the transform (a difference of two transforms, so the
 * offsets of the chroma channels cancel). */
START_TEST(test_color_noise_gain)
{
    enum { N = 200000 };
    float *a = malloc(3 * N * sizeof *a), *b = malloc(3 * N * sizeof *b);
    ck_assert(a && b);
    dae_rng rng;
    dae_rng_seed(&rng, 7);
    for (size_t i = 0; i < 3 * N; i++) {
        b[i] = 0.5f;
        a[i] = 0.5f + 0.01f * dae_rng_normal(&rng);
    }
    for (int cs = DAE_COLOR_RGB; cs <= DAE_COLOR_OPPONENT; cs++) {
        float *x = malloc(3 * N * sizeof *x), *y = malloc(3 * N * sizeof *y);
        ck_assert(x && y);
        memcpy(x, a, 3 * N * sizeof *x);
        memcpy(y, b, 3 * N * sizeof *y);
        dae_color_to_space(x, N, (dae_color_space)cs);
        dae_color_to_space(y, N, (dae_color_space)cs);
        for (int ch = 0; ch < 3; ch++) {
            double ss = 0.0;
            for (size_t i = 0; i < N; i++) {
                double d = (double)x[(size_t)ch * N + i] - y[(size_t)ch * N + i];
                ss += d * d;
            }
            double sd = sqrt(ss / N) / 0.01;
            ck_assert_msg(fabs(sd - dae_color_noise_gain((dae_color_space)cs, ch)) < 0.01,
                          "space %d channel %d: measured %.4f, gain %.4f", cs, ch, sd,
                          (double)dae_color_noise_gain((dae_color_space)cs, ch));
        }
        free(x);
        free(y);
    }
    ck_assert_float_eq(dae_color_noise_gain(DAE_COLOR_OPPONENT, 3), 1.0f);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_area_downscale)
{
    dae_image src = {0}, dst = {0};
    dae_error e = {0};
    ck_assert_int_eq(dae_image_alloc(&src, 3, 2, 1, 0, &e), 0);
    const float v[6] = {0.0f, 0.3f, 0.9f, 0.6f, 0.3f, 0.0f};
    memcpy(src.px, v, sizeof v);
    /* 3 -> 2 columns: each output covers 1.5 source pixels; 2 -> 1 rows: the mean */
    ck_assert_int_eq(dae_image_area_downscale(&src, 2, 1, &dst, &e), 0);
    ck_assert_int_eq(dst.w, 2);
    ck_assert_int_eq(dst.h, 1);
    float c0 = (0.0f + 0.5f * 0.3f) / 1.5f, c1 = (0.5f * 0.3f + 0.9f) / 1.5f;
    float c0b = (0.6f + 0.5f * 0.3f) / 1.5f, c1b = (0.5f * 0.3f + 0.0f) / 1.5f;
    ck_assert_float_eq_tol(dst.px[0], (c0 + c0b) / 2, 1e-6f);
    ck_assert_float_eq_tol(dst.px[1], (c1 + c1b) / 2, 1e-6f);
    dae_image_free(&dst);
    /* same size copies; upscaling is refused */
    ck_assert_int_eq(dae_image_area_downscale(&src, 3, 2, &dst, &e), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(dst.px[i], v[i], 1e-7f);
    dae_image_free(&dst);
    ck_assert_int_eq(dae_image_area_downscale(&src, 4, 2, &dst, &e), DAE_EINVAL);
    dae_image_free(&src);
}
END_TEST

START_TEST(test_luma709_and_quantize)
{
    dae_image im = {0};
    ck_assert_int_eq(dae_image_alloc(&im, 1, 1, 3, 0, NULL), 0);
    im.px[0] = 1.0f;
    im.px[1] = 0.5f;
    im.px[2] = 0.0f;
    ck_assert_int_eq(dae_image_to_luma709(&im, NULL), 0);
    ck_assert_int_eq(im.c, 1);
    ck_assert_float_eq_tol(im.px[0], 0.2125f + 0.7154f * 0.5f, 1e-6f);
    dae_image_free(&im);

    float q[5] = {-0.2f, 0.5f, 1.3f, 100.6f / 255.0f, NAN};
    dae_photo_quantize(q, 5);
    ck_assert_float_eq(q[0], 0.0f);
    ck_assert_float_eq_tol(q[1] * 255.0f, 128.0f, 1e-4f); /* 127.5 rounds to even: 128 */
    ck_assert_float_eq(q[2], 1.0f);
    ck_assert_float_eq_tol(q[3] * 255.0f, 101.0f, 1e-4f);
    ck_assert_float_eq(q[4], 0.0f);
}
END_TEST

START_TEST(test_add_noise_levels)
{
    enum { N = 40000 };
    float *clean = malloc(N * sizeof *clean), *out = malloc(N * sizeof *out);
    for (int i = 0; i < N; i++)
        clean[i] = 128.0f / 255.0f;
    dae_rng r;
    dae_rng_seed(&r, 3);
    dae_photo_add_noise(&r, clean, N, 0.0f, out);
    for (int i = 0; i < N; i++)
        ck_assert_float_eq(out[i], clean[i]);
    dae_photo_add_noise(&r, clean, N, 25.0f, out);
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) {
        double lv = out[i] * 255.0;
        ck_assert(fabs(lv - rint(lv)) < 1e-3); /* on 8-bit levels */
        s += lv - 128.0;
        s2 += (lv - 128.0) * (lv - 128.0);
    }
    double mean = s / N, sd = sqrt(s2 / N - mean * mean);
    ck_assert(fabs(mean) < 0.5);
    ck_assert(fabs(sd - sqrt(25.0 * 25.0 + 1.0 / 12.0)) < 0.5); /* + rounding */
    /* clipping: a white image with noise never exceeds 1 */
    for (int i = 0; i < N; i++)
        clean[i] = 1.0f;
    dae_photo_add_noise(&r, clean, N, 50.0f, out);
    for (int i = 0; i < N; i++)
        ck_assert(out[i] <= 1.0f && out[i] >= 0.0f);
    free(clean);
    free(out);
}
END_TEST

enum { EST_W = 256, EST_H = 192 };

/* A synthetic scene (ramps, a disc, stripes) of c planes EST_W x EST_H with seeded noise of
 * sigma: float planes unclipped (px) and the same rounded to 8 bits (p8). With block > 1 the
 * noise is constant over block x block squares (spatially correlated). */
static void noisy_scene(float sigma, int c, int block, float *px, unsigned char *p8)
{
    dae_rng r;
    dae_rng_seed(&r, 11);
    float *nz = malloc((size_t)EST_W * EST_H * sizeof *nz);
    for (int ch = 0; ch < c; ch++) {
        for (size_t i = 0; i < (size_t)EST_W * EST_H; i++)
            nz[i] = dae_rng_normal(&r);
        for (int y = 0; y < EST_H; y++)
            for (int x = 0; x < EST_W; x++) {
                float v = 0.2f + 0.4f * x / EST_W + 0.1f * ch;
                if ((x - 90) * (x - 90) + (y - 100) * (y - 100) < 40 * 40)
                    v = 0.8f;
                if (x > 180 && (x / 8) % 2)
                    v = 0.3f;
                size_t i = ((size_t)ch * EST_H + y) * EST_W + x;
                px[i] = v + sigma / 255.0f * nz[(size_t)(y / block * block) * EST_W +
                                                 x / block * block];
                float q = rintf(px[i] * 255.0f);
                p8[i] = (unsigned char)(q < 0 ? 0 : q > 255 ? 255 : q);
            }
    }
    free(nz);
}

/* dae_noise_estimate (coarse = 0) or dae_noise_estimate_coarse on that scene: *est_f of the
 * float planes, *est_8 of the 8-bit ones. */
static void estimate_at2(float sigma, int c, int block, int coarse, double *est_f,
                         double *est_8)
{
    size_t n = (size_t)EST_W * EST_H * c;
    float *px = malloc(n * sizeof *px);
    unsigned char *p8 = malloc(n);
    noisy_scene(sigma, c, block, px, p8);
    double (*est)(const float *, const unsigned char *, int, int, int) =
        coarse ? dae_noise_estimate_coarse : dae_noise_estimate;
    *est_f = est(px, NULL, EST_W, EST_H, c);
    *est_8 = est(NULL, p8, EST_W, EST_H, c);
    free(px);
    free(p8);
}

static void estimate_at(float sigma, int c, double *est_f, double *est_8)
{
    estimate_at2(sigma, c, 1, 0, est_f, est_8);
}

START_TEST(test_noise_estimate)
{
    const float sig[] = {5, 15, 25, 50};
    for (size_t k = 0; k < sizeof sig / sizeof sig[0]; k++)
        for (int c = 1; c <= 3; c += 2) {
            double f, b;
            estimate_at(sig[k], c, &f, &b);
            ck_assert_msg(fabs(f - sig[k]) < 0.06 * sig[k] + 0.3, "sigma %g c %d: %g",
                          sig[k], c, f);
            ck_assert_msg(fabs(b - sig[k]) < 0.06 * sig[k] + 0.5, "sigma %g c %d 8-bit: %g",
                          sig[k], c, b);
        }
    double f, b;
    estimate_at(0, 1, &f, &b); /* clean: the edges alone */
    ck_assert_msg(f < 0.5 && b < 0.5, "clean: %g %g", f, b);
    float tiny[4] = {0, 1, 0, 1};
    ck_assert(dae_noise_estimate(tiny, NULL, 2, 2, 1) == 0.0);
    ck_assert(dae_noise_estimate(NULL, NULL, 64, 64, 1) == 0.0);
}
END_TEST

/* The coarse estimate: white noise reads its sigma at both scales, noise constant over 2x2
 * squares (correlated) reads 2 sigma there (its 2x2 means are white noise of sigma) and far
 * less at the finest scale, over DAE_NOISE_CORR_RATIO times less. */
START_TEST(test_noise_estimate_coarse)
{
    const float sig[] = {5, 15, 25};
    for (size_t k = 0; k < sizeof sig / sizeof sig[0]; k++)
        for (int c = 1; c <= 3; c += 2) {
            double f, b, f1, b1;
            estimate_at2(sig[k], c, 1, 1, &f, &b);
            ck_assert_msg(fabs(f - sig[k]) < 0.08 * sig[k] + 0.3, "white %g c %d: %g", sig[k],
                          c, f);
            ck_assert_msg(fabs(b - sig[k]) < 0.08 * sig[k] + 0.5, "white %g 8-bit: %g", sig[k], b);
            estimate_at2(sig[k], c, 1, 0, &f1, &b1);
            ck_assert_msg(f < DAE_NOISE_CORR_RATIO * f1, "white %g reads correlated", sig[k]);
            estimate_at2(sig[k], c, 2, 1, &f, &b);
            ck_assert_msg(fabs(f - 2 * sig[k]) < 0.08 * 2 * sig[k] + 0.3, "2x2 %g c %d: %g",
                          sig[k], c, f);
            estimate_at2(sig[k], c, 2, 0, &f1, &b1);
            ck_assert_msg(f >= DAE_NOISE_CORR_RATIO * f1 && b >= DAE_NOISE_CORR_RATIO * b1,
                          "2x2 %g c %d: coarse %g / %g, finest %g / %g", sig[k], c, f, b, f1, b1);
        }
    float odd[3 * 7 * 5];
    for (int i = 0; i < 3 * 7 * 5; i++)
        odd[i] = (float)(i % 3) * 0.5f;
    ck_assert(dae_noise_estimate_coarse(odd, NULL, 7, 5, 3) >= 0.0); /* halves 4 x 3 */
    ck_assert(dae_noise_estimate_coarse(odd, NULL, 4, 4, 1) == 0.0); /* half under 3x3 */
    ck_assert(dae_noise_estimate_coarse(NULL, NULL, 64, 64, 1) == 0.0);
}
END_TEST

/* A c-channel w x h image whose value encodes (channel, y, x). */
static void make_image(dae_image *im, int w, int h, int c)
{
    ck_assert_int_eq(dae_image_alloc(im, w, h, c, 0, NULL), 0);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                im->px[((size_t)ch * h + y) * w + x] = (float)(ch * 10000 + y * 100 + x);
}

START_TEST(test_patches_and_augment)
{
    dae_error e = {0};
    dae_photoset *ps = dae_photoset_create(3, &e);
    ck_assert_ptr_nonnull(ps);
    dae_image im;
    make_image(&im, 4, 4, 3);
    ck_assert_int_eq(dae_photoset_add(ps, &im, "a", &e), 0);
    ck_assert_ptr_null(im.px); /* ownership moved */
    ck_assert_float_eq(dae_photoset_pixels(ps), 16.0);
    dae_image gray;
    make_image(&gray, 4, 4, 1);
    ck_assert_int_eq(dae_photoset_add(ps, &gray, "g", &e), DAE_EINVAL);
    dae_image_free(&gray);

    dae_rng r;
    dae_rng_seed(&r, 9);
    float p[3 * 16];
    dae_photoset_sample_patch(ps, &r, 4, 0, p); /* whole image, no augmentation */
    for (int i = 0; i < 48; i++)
        ck_assert_float_eq(p[i], ps->im[0].px[i]);
    /* with augmentation: one of the 8 symmetries of the square, the same in every channel */
    int seen[8] = {0};
    for (int k = 0; k < 64; k++) {
        dae_photoset_sample_patch(ps, &r, 4, 1, p);
        int corner = (int)p[0]; /* (y, x) of the source pixel at the top-left */
        int y = corner / 100, x = corner % 100;
        ck_assert((y == 0 || y == 3) && (x == 0 || x == 3));
        for (int i = 0; i < 16; i++) {
            ck_assert_float_eq(p[16 + i], p[i] + 10000.0f);
            ck_assert_float_eq(p[32 + i], p[i] + 20000.0f);
        }
        /* neighbours stay neighbours */
        int y1 = (int)p[1] / 100, x1 = (int)p[1] % 100;
        ck_assert_int_eq(abs(y1 - y) + abs(x1 - x), 1);
        seen[(y ? 4 : 0) + (x ? 2 : 0) + (y1 != y)]++;
    }
    for (int i = 0; i < 8; i++)
        ck_assert_int_gt(seen[i], 0);
    /* crops stay inside: 2x2 crops of a 4x4 image */
    for (int k = 0; k < 64; k++) {
        dae_photoset_sample_patch(ps, &r, 2, 0, p);
        int y = (int)p[0] / 100, x = (int)p[0] % 100;
        ck_assert(y <= 2 && x <= 2);
        ck_assert_float_eq(p[3], p[0] + 101.0f);
    }
    dae_photoset_free(ps);
    dae_photoset_free(NULL);
}
END_TEST

START_TEST(test_photo_facts)
{
    dae_photo_facts f;
    dae_error e = {0};
    ck_assert_int_eq(dae_photo_facts_parse("{\"input\":[1,8,8]}", 1, &f, &e), 0);
    ck_assert_int_eq(f.channels, 1);
    ck_assert_int_eq(f.per_channel, 0);
    ck_assert(f.sigma_hi < 0);
    const char *pc = "{\"per_channel\":true,\"color_space\":\"opponent\",\"corruption\":"
                     "{\"type\":\"gaussian255\",\"sigma\":[5,55],\"quantize\":true}}";
    ck_assert_int_eq(dae_photo_facts_parse(pc, 1, &f, &e), 0);
    ck_assert_int_eq(f.channels, 3);
    ck_assert_int_eq(f.per_channel, 1);
    ck_assert_int_eq(f.cs, DAE_COLOR_OPPONENT);
    ck_assert(f.sigma_lo == 5 && f.sigma_hi == 55);
    ck_assert_int_eq(dae_photo_facts_parse(pc, 3, &f, &e), DAE_EINVAL); /* per-channel, 3 in */
    ck_assert_ptr_nonnull(strstr(e.msg, "per_channel"));
    ck_assert_int_eq(dae_photo_facts_parse("{\"color_space\":\"lab\"}", 3, &f, &e), DAE_EINVAL);
    ck_assert_int_eq(dae_photo_facts_parse("{\"per_channel\":1}", 1, &f, &e), DAE_EINVAL);
    ck_assert_int_eq(dae_photo_facts_parse("{\"without_sigma\":\"blind\"}", 2, &f, &e), DAE_OK);
    ck_assert_int_eq(f.blind_default, 1);
    ck_assert_int_eq(dae_photo_facts_parse("{\"without_sigma\":\"estimate\"}", 2, &f, &e),
                     DAE_OK);
    ck_assert_int_eq(f.blind_default, 0);
    ck_assert_int_eq(dae_photo_facts_parse("{\"without_sigma\":\"guess\"}", 2, &f, &e),
                     DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "without_sigma"));
}
END_TEST

/* chroma_half needs a per-channel opponent model; sigma_range replaces the trained range. */
START_TEST(test_photo_facts_chroma_half)
{
    dae_photo_facts f;
    dae_error e = {0};
    const char *ok = "{\"per_channel\":true,\"color_space\":\"opponent\",\"chroma_half\":true,"
                     "\"corruption\":{\"type\":\"gaussian255\",\"sigma\":[6,18]},"
                     "\"sigma_range\":[20,30]}";
    ck_assert_int_eq(dae_photo_facts_parse(ok, 1, &f, &e), DAE_OK);
    ck_assert_int_eq(f.chroma_half, 1);
    ck_assert(f.sigma_lo == 20 && f.sigma_hi == 30);
    const char *rgb = "{\"per_channel\":true,\"color_space\":\"rgb\",\"chroma_half\":true}";
    ck_assert_int_eq(dae_photo_facts_parse(rgb, 1, &f, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "chroma_half"));
    const char *not_pc = "{\"color_space\":\"opponent\",\"chroma_half\":true}";
    ck_assert_int_eq(dae_photo_facts_parse(not_pc, 3, &f, &e), DAE_EINVAL);
    ck_assert_int_eq(dae_photo_facts_parse("{\"chroma_half\":1}", 1, &f, &e), DAE_EINVAL);
    const char *bad[] = {"{\"sigma_range\":[30,20]}", "{\"sigma_range\":[-1,20]}",
                         "{\"sigma_range\":[0,256]}", "{\"sigma_range\":[5]}",
                         "{\"sigma_range\":{\"a\":1,\"b\":2}}", "{\"sigma_range\":[\"5\",9]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(dae_photo_facts_parse(bad[i], 1, &f, &e), DAE_EINVAL);
        ck_assert_ptr_nonnull(strstr(e.msg, "sigma_range"));
    }
    ck_assert_int_eq(dae_photo_facts_parse("{\"sigma_range\":[0,255]}", 1, &f, &e), DAE_OK);
    ck_assert(f.sigma_lo == 0 && f.sigma_hi == 255 && !f.chroma_half);
}
END_TEST

/* dae_photo_chroma_half: channel k of the opponent space, 2x2 means, 8-bit levels; a gray
 * photo gives the flat 0.5 its colour copy has. */
START_TEST(test_chroma_half)
{
    dae_image im = {0};
    dae_error e = {0};
    ck_assert_int_eq(dae_image_alloc(&im, 3, 2, 3, 0, NULL), DAE_OK);
    const float rgb[3][6] = {{1, 1, 0, 1, 1, 0}, {0, 0, 0, 0, 0, 0}, {0, 0, 1, 0, 0, 1}};
    for (int c = 0; c < 3; c++)
        memcpy(im.px + c * 6, rgb[c], sizeof rgb[c]);
    ck_assert_int_eq(dae_photo_chroma_half(&im, 1, &e), DAE_OK);
    ck_assert(im.w == 2 && im.h == 1 && im.c == 1);
    /* (R - B)/2 + 0.5: columns 0-1 are red (1.0), column 2 blue (0.0), repeated at the edge */
    ck_assert_float_eq(im.px[0], 1.0f);
    ck_assert_float_eq(im.px[1], 0.0f);
    dae_image_free(&im);
    ck_assert_int_eq(dae_image_alloc(&im, 4, 4, 1, 0, NULL), DAE_OK);
    for (int i = 0; i < 16; i++)
        im.px[i] = (float)i / 16;
    ck_assert_int_eq(dae_photo_chroma_half(&im, 2, &e), DAE_OK);
    ck_assert(im.w == 2 && im.h == 2 && im.c == 1);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(im.px[i], 128.0f / 255.0f);
    ck_assert_int_eq(dae_photo_chroma_half(&im, 3, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "chroma"));
    dae_image_free(&im);
}
END_TEST

START_TEST(test_probe)
{
    dae_image im = {0};
    unsigned char *buf = NULL;
    size_t len = 0;
    int w, h, c;
    ck_assert_int_eq(dae_image_alloc(&im, 17, 9, 3, 0, NULL), 0);
    ck_assert_int_eq(dae_png_encode(im.px, 17, 9, 3, 1, &buf, &len, NULL), 0);
    ck_assert_int_eq(dae_image_probe(buf, len, &w, &h, &c, NULL), 0);
    ck_assert(w == 17 && h == 9 && c == 3);
    ck_assert_int_eq(dae_image_probe(buf, 20, &w, &h, &c, NULL), DAE_EFORMAT); /* cut */
    free(buf);
    ck_assert_int_eq(dae_jpeg_encode(im.px, 17, 9, 1, 90, &buf, &len, NULL), 0);
    ck_assert_int_eq(dae_image_probe(buf, len, &w, &h, &c, NULL), 0);
    ck_assert(w == 17 && h == 9 && c == 1);
    free(buf);
    ck_assert_int_eq(dae_image_probe((const unsigned char *)"GIF89a", 6, &w, &h, &c, NULL),
                     DAE_EFORMAT);
    dae_image_free(&im);
}
END_TEST

static char tmpdir[64];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_photo.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A smooth synthetic "photo" with some edges, written as PNG. */
static void write_photo(const char *name, int w, int h, int c, int seed)
{
    dae_image im = {0};
    ck_assert_int_eq(dae_image_alloc(&im, w, h, c, 0, NULL), 0);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double v = 0.5 + 0.3 * sin(0.21 * x * (seed + 1) + 0.13 * y + ch) +
                           ((x / 7 + y / 5 + seed) % 3 == 0 ? 0.15 : -0.1);
                im.px[((size_t)ch * h + y) * w + x] = (float)v;
            }
    dae_photo_quantize(im.px, (size_t)c * w * h);
    char path[160];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    dae_error e = {0};
    ck_assert_msg(dae_png_write_file(path, &im, &e) == 0, "%s", e.msg);
    dae_image_free(&im);
}

START_TEST(test_load_dir)
{
    write_photo("b.png", 30, 20, 3, 1);
    write_photo("a.png", 17, 25, 1, 2);
    FILE *f;
    char path[160];
    snprintf(path, sizeof path, "%s/notes.txt", tmpdir);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs("not a photo", f);
    fclose(f);
    dae_error e = {0};
    dae_photoset *ps = dae_photoset_load_dir(tmpdir, 1, 16, 10, NULL, &e);
    ck_assert_msg(ps != NULL, "%s", e.msg);
    ck_assert_int_eq(ps->n, 2);
    ck_assert_str_eq(ps->names[0], "a.png");
    ck_assert_int_eq(ps->im[1].c, 1); /* colour converted by luma */
    ck_assert_int_eq(ps->im[1].w, 30);
    ck_assert_float_eq(dae_photoset_pixels(ps), 17.0 * 25 + 30.0 * 20);
    dae_photoset_free(ps);
    /* too small for the patches; too many files; missing folder */
    ck_assert_ptr_null(dae_photoset_load_dir(tmpdir, 3, 18, 10, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ESHAPE);
    ck_assert_ptr_nonnull(strstr(e.msg, "a.png"));
    ck_assert_ptr_null(dae_photoset_load_dir(tmpdir, 3, 8, 1, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
    snprintf(path, sizeof path, "%s/nope", tmpdir);
    ck_assert_ptr_null(dae_photoset_load_dir(path, 1, 8, 10, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ENOTFOUND);
}
END_TEST

#define TINY_DNCNN(c)                                                                     \
    "{\"input\":[" #c ",8,8],\"residual\":true,\"encoder\":[{\"type\":\"conv2d\","       \
    "\"in_channels\":" #c ",\"out_channels\":6,\"kernel_size\":3,\"padding\":1},"          \
    "{\"type\":\"relu\"},{\"type\":\"conv2d\",\"in_channels\":6,\"out_channels\":6,"      \
    "\"kernel_size\":3,\"padding\":1},{\"type\":\"relu\"}],\"decoder\":[{\"type\":"       \
    "\"conv2d\",\"in_channels\":6,\"out_channels\":" #c ",\"kernel_size\":3,\"padding\":1}]}"

/* tmpdir/out, where the test recipes write their models. */
static void mk_out_dir(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/out", tmpdir);
    ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
}

/* A recipe the test wrote (it must parse). */
static dae_recipe *parsed_recipe(const char *json)
{
    dae_error e = {0};
    dae_recipe *r = dae_recipe_parse(json, strlen(json), "test recipe", 0, NULL, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    return r;
}

static dae_recipe *photo_recipe(int c, const char *cs)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"output\":\"%s/out/m.safetensors\",\"epochs\":3,\"batch_size\":8,\"threads\":1,"
             "\"seed\":4,\"tasks\":[\"denoise\"],\"data\":{\"train\":\"%s\",\"channels\":%d,"
             "\"color_space\":\"%s\"},\"patches\":{\"size\":8,\"per_epoch\":20,"
             "\"sigma_min\":5,\"sigma_max\":40,\"val_count\":6},\"optimizer\":{\"lr\":0.003},"
             "\"model\":%s}",
             tmpdir, tmpdir, c, cs, c == 1 ? TINY_DNCNN(1) : TINY_DNCNN(3));
    return parsed_recipe(json);
}

START_TEST(test_trainer_patches_resume)
{
    write_photo("p1.png", 23, 19, 3, 1);
    write_photo("p2.png", 40, 12, 3, 2);
    mk_out_dir();
    dae_error e = {0};
    dae_recipe *r = photo_recipe(3, "opponent");
    ck_assert_int_eq(r->patches.size, 8);
    ck_assert(r->patches.quantize == 1.0);
    /* 12-pixel-high photo is smaller than nothing here; 8x8 patches fit everywhere */
    dae_photoset *ps = dae_photoset_load_dir(tmpdir, 3, 8, 10, NULL, &e);
    ck_assert_msg(ps != NULL, "%s", e.msg);

    /* uninterrupted run */
    dae_trainer *a = dae_trainer_create_photos(r, ps, NULL, &e);
    ck_assert_msg(a != NULL, "%s", e.msg);
    ck_assert_int_eq(dae_trainer_run(a, NULL, &e), 0);
    const dae_train_stats *sa = dae_trainer_stats(a);
    ck_assert_int_eq(sa->epochs_done, 3);
    ck_assert_int_eq(sa->steps, 9); /* ceil(20/8) = 3 steps per epoch */
    ck_assert(isfinite(sa->val_psnr));

    /* stopped at step 4 (mid-epoch 2), resumed in a fresh trainer: the same parameters */
    dae_trainer *b = dae_trainer_create_photos(r, ps, NULL, &e);
    dae_train_options o = {.stop_at_step = 4};
    ck_assert_int_eq(dae_trainer_run(b, &o, &e), 0);
    ck_assert_int_eq(dae_trainer_stats(b)->status, DAE_TRAIN_INTERRUPTED);
    dae_trainer_free(b);
    dae_trainer *c = dae_trainer_create_photos(r, ps, NULL, &e);
    ck_assert_msg(dae_trainer_resume(c, r->checkpoint, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(dae_trainer_run(c, NULL, &e), 0);
    const dae_model *ma = dae_trainer_model(a), *mc = dae_trainer_model(c);
    ck_assert_int_eq(memcmp(ma->params, mc->params, ma->n_params * sizeof(float)), 0);

    /* the model file records the photo noise and the colour space */
    ck_assert_int_eq(dae_trainer_save_model(a, r->output, NULL, NULL, &e), 0);
    dae_modelfile *mf = dae_modelfile_load(r->output, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    cJSON *cfg = cJSON_Parse(mf->config_json);
    ck_assert_str_eq(cJSON_GetObjectItem(cfg, "color_space")->valuestring, "opponent");
    cJSON *corr = cJSON_GetObjectItem(cfg, "corruption");
    ck_assert_str_eq(cJSON_GetObjectItem(corr, "type")->valuestring, "gaussian255");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(corr, "sigma")), 2);
    cJSON *tr = cJSON_GetObjectItem(cfg, "training");
    ck_assert_int_eq(cJSON_GetObjectItem(tr, "patch_size")->valueint, 8);
    ck_assert(mf->model->fully_conv && mf->model->residual);
    cJSON_Delete(cfg);
    dae_modelfile_free(mf);

    dae_trainer_free(a);
    dae_trainer_free(c);
    dae_photoset_free(ps);
    dae_recipe_free(r);
}
END_TEST

/* FFDNet in small: 1 image channel + the noise-level map, unshuffle 2, convs, shuffle 2. */
#define TINY_FFD                                                                          \
    "{\"input\":[2,8,8],\"residual\":true,\"noise_map\":true,\"encoder\":[{\"type\":"     \
    "\"pixel_unshuffle\",\"downscale_factor\":2},{\"type\":\"conv2d\",\"in_channels\":8,"  \
    "\"out_channels\":8,\"kernel_size\":3,\"padding\":1},{\"type\":\"relu\"}],"             \
    "\"decoder\":[{\"type\":\"conv2d\",\"in_channels\":8,\"out_channels\":4,"              \
    "\"kernel_size\":3,\"padding\":1},{\"type\":\"pixel_shuffle\",\"upscale_factor\":2}]}"

static dae_recipe *ffd_recipe(int c, double blind)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"output\":\"%s/out/f.safetensors\",\"epochs\":2,\"batch_size\":4,"
             "\"threads\":1,\"seed\":5,\"tasks\":[\"denoise\"],\"data\":{\"train\":\"%s\","
             "\"channels\":%d,\"per_channel\":%s},\"patches\":{\"size\":8,\"per_epoch\":4,"
             "\"sigma_min\":5,\"sigma_max\":40,\"val_count\":4,\"blind\":%g},"
             "\"optimizer\":{\"lr\":0.003},\"model\":" TINY_FFD "}",
             tmpdir, tmpdir, c, c == 3 ? "true" : "false", blind);
    return parsed_recipe(json);
}

/* patches.quantize as a share: true and false are 1 and 0, a share in between trains on
 * both kinds of patch (other weights than either), the model file records it; a share out
 * of [0, 1] or a word is refused, on the command line too. */
START_TEST(test_trainer_quantize_share)
{
    write_photo("p1.png", 23, 19, 3, 1);
    mk_out_dir();
    dae_error e = {0};
    dae_photoset *ps = dae_photoset_load_dir(tmpdir, 1, 8, 10, NULL, &e);
    ck_assert_msg(ps != NULL, "%s", e.msg);
    const double shares[3] = {0.0, 0.5, 1.0};
    float *w[3];
    for (int k = 0; k < 3; k++) {
        dae_recipe *r = photo_recipe(1, "rgb");
        r->patches.quantize = shares[k];
        dae_trainer *t = dae_trainer_create_photos(r, ps, NULL, &e);
        ck_assert_msg(t != NULL, "%s", e.msg);
        ck_assert_int_eq(dae_trainer_run(t, NULL, &e), 0);
        const dae_model *m = dae_trainer_model(t);
        w[k] = malloc(m->n_params * sizeof *w[k]);
        memcpy(w[k], m->params, m->n_params * sizeof *w[k]);
        if (k == 1) {
            ck_assert_int_ne(memcmp(w[0], w[1], m->n_params * sizeof *w[k]), 0);
            ck_assert_int_eq(dae_trainer_save_model(t, r->output, NULL, NULL, &e), 0);
            dae_modelfile *mf = dae_modelfile_load(r->output, NULL, &e);
            ck_assert_msg(mf != NULL, "%s", e.msg);
            ck_assert_ptr_nonnull(strstr(mf->config_json, "\"quantize\":0.5"));
            dae_modelfile_free(mf);
        }
        if (k == 2)
            ck_assert_int_ne(memcmp(w[1], w[2], m->n_params * sizeof *w[k]), 0);
        dae_trainer_free(t);
        dae_recipe_free(r);
    }
    for (int k = 0; k < 3; k++)
        free(w[k]);
    dae_photoset_free(ps);
    const char *ok[] = {"{\"patches\":{\"quantize\":false}}",
                        "{\"patches\":{\"quantize\":0.3}}"};
    for (int i = 0; i < 2; i++) {
        dae_recipe *r = dae_recipe_parse(ok[i], strlen(ok[i]), "r", 0, NULL, &e);
        ck_assert_msg(r != NULL, "%s", e.msg);
        ck_assert(r->patches.quantize == (i ? 0.3 : 0.0));
        dae_recipe_free(r);
    }
    dae_recipe *r;
    char key[] = "--patches.quantize", share[] = "0.25", word[] = "often";
    char *argv[] = {key, share}, *argv_bad[] = {key, word};
    r = dae_recipe_parse("{}", 2, "r", 2, argv, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    ck_assert(r->patches.quantize == 0.25);
    dae_recipe_free(r);
    const char *bad[] = {"{\"patches\":{\"quantize\":1.5}}",
                         "{\"patches\":{\"quantize\":\"yes\"}}"};
    for (int i = 0; i < 2; i++) {
        ck_assert_ptr_null(dae_recipe_parse(bad[i], strlen(bad[i]), "r", 0, NULL, &e));
        ck_assert_ptr_nonnull(strstr(e.msg, "patches.quantize"));
    }
    ck_assert_ptr_null(dae_recipe_parse("{}", 2, "r", 2, argv_bad, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "patches.quantize"));
}
END_TEST

/* Save t's model to path and read it back: a noise-map model (residual, 1 image channel
 * per job); returns its config's blind_default (daed's map without ?sigma=). */
static int saved_blind_default(dae_trainer *t, const char *path)
{
    dae_error e = {0};
    ck_assert_int_eq(dae_trainer_save_model(t, path, NULL, NULL, &e), 0);
    dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert(mf->model->noise_map && mf->model->residual);
    ck_assert_int_eq(dae_model_image_channels(mf->model), 1);
    dae_photo_facts pf;
    ck_assert_int_eq(dae_photo_facts_parse(mf->config_json,
                                           dae_model_image_channels(mf->model), &pf, &e),
                     DAE_OK);
    dae_modelfile_free(mf);
    return pf.blind_default;
}

/* A noise-map model trains on patches (gray, and per channel from colour photos): 2 steps,
 * resumable to the same bits; the map is an input that matters (blind 0 and blind 1
 * train different weights); the model file keeps noise_map. Dataset mode refuses it. */
START_TEST(test_trainer_patches_noise_map)
{
    write_photo("p1.png", 23, 19, 3, 1);
    write_photo("p2.png", 40, 12, 3, 2);
    mk_out_dir();
    dae_error e = {0};
    for (int c = 1; c <= 3; c += 2) {
        dae_photoset *ps = dae_photoset_load_dir(tmpdir, c, 8, 10, NULL, &e);
        ck_assert_msg(ps != NULL, "%s", e.msg);
        dae_recipe *r = ffd_recipe(c, 0.5), *r0 = ffd_recipe(c, 0), *r1 = ffd_recipe(c, 1);
        ck_assert(r->patches.blind == 0.5);
        dae_trainer *a = dae_trainer_create_photos(r, ps, NULL, &e);
        ck_assert_msg(a != NULL, "%s", e.msg);
        ck_assert_int_eq(dae_trainer_run(a, NULL, &e), 0);
        ck_assert_int_eq(dae_trainer_stats(a)->steps, 2);
        ck_assert(isfinite(dae_trainer_stats(a)->val_psnr));
        /* stopped after step 1, resumed: the same parameters */
        dae_trainer *b = dae_trainer_create_photos(r, ps, NULL, &e);
        dae_train_options o = {.stop_at_step = 1};
        ck_assert_int_eq(dae_trainer_run(b, &o, &e), 0);
        dae_trainer_free(b);
        b = dae_trainer_create_photos(r, ps, NULL, &e);
        ck_assert_msg(dae_trainer_resume(b, r->checkpoint, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(dae_trainer_run(b, NULL, &e), 0);
        const dae_model *ma = dae_trainer_model(a), *mb = dae_trainer_model(b);
        ck_assert_int_eq(memcmp(ma->params, mb->params, ma->n_params * sizeof(float)), 0);
        dae_trainer_free(b);
        /* all blind and never blind: other maps, other weights */
        dae_trainer *t0 = dae_trainer_create_photos(r0, ps, NULL, &e);
        dae_trainer *t1 = dae_trainer_create_photos(r1, ps, NULL, &e);
        ck_assert_int_eq(dae_trainer_run(t0, NULL, &e), 0);
        ck_assert_int_eq(dae_trainer_run(t1, NULL, &e), 0);
        const dae_model *m0 = dae_trainer_model(t0), *m1 = dae_trainer_model(t1);
        ck_assert_int_ne(memcmp(m0->params, m1->params, m0->n_params * sizeof(float)), 0);
        dae_trainer_free(t0);
        ck_assert_int_eq(saved_blind_default(a, r->output), 0); /* trained with maps */
        /* trained with maps, kept blind by the recipe (patches.without_sigma) */
        r->patches.without_sigma = DAE_WITHOUT_BLIND;
        ck_assert_int_eq(saved_blind_default(a, r->output), 1);
        r->patches.without_sigma = DAE_WITHOUT_AUTO;
        /* trained blind only: the config keeps it blind without ?sigma= */
        ck_assert_int_eq(saved_blind_default(t1, r->output), 1);
        dae_trainer_free(t1);
        dae_trainer_free(a);
        if (c == 1) { /* image datasets have no per-sample level */
            dae_dataset *ds = dae_dataset_create(4, 1, 8, 8, 0, NULL);
            char json[1024];
            snprintf(json, sizeof json, "{\"model\":" TINY_FFD "}");
            dae_recipe *dr = dae_recipe_parse(json, strlen(json), "r", 0, NULL, &e);
            ck_assert_msg(dr != NULL, "%s", e.msg);
            ck_assert_ptr_null(dae_trainer_create(dr, ds, ds, &e));
            ck_assert_ptr_nonnull(strstr(e.msg, "noise_map models train on photo patches"));
            dae_recipe_free(dr);
            dae_dataset_free(ds);
        }
        dae_recipe_free(r), dae_recipe_free(r0), dae_recipe_free(r1);
        dae_photoset_free(ps);
    }
    /* patches.blind is a probability */
    const char *bad = "{\"patches\":{\"size\":8,\"blind\":1.5}}";
    ck_assert_ptr_null(dae_recipe_parse(bad, strlen(bad), "r", 0, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "patches.blind"));
    const char *bad_ws = "{\"patches\":{\"size\":8,\"without_sigma\":\"guess\"}}";
    ck_assert_ptr_null(dae_recipe_parse(bad_ws, strlen(bad_ws), "r", 0, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "patches.without_sigma"));
}
END_TEST

/* A per-channel recipe in the opponent space (chroma_half: the chroma planes at half size). */
static dae_recipe *per_channel_recipe(int chroma_half)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"output\":\"%s/out/pc.safetensors\",\"epochs\":1,\"batch_size\":4,"
             "\"threads\":1,\"seed\":5,\"tasks\":[\"denoise\"],\"data\":{\"train\":\"%s\","
             "\"channels\":3,\"color_space\":\"opponent\",\"per_channel\":true,"
             "\"chroma_half\":%s},\"patches\":{\"size\":8,\"per_epoch\":4,\"sigma_min\":5,"
             "\"sigma_max\":40,\"val_count\":4},\"model\":" TINY_FFD "}",
             tmpdir, tmpdir, chroma_half ? "true" : "false");
    return parsed_recipe(json);
}

/* Per channel in the opponent space, a patch's level is that of its plane's noise
 * (sigma times dae_color_noise_gain, halved for a half-size chroma plane: as daed gives a
 * per-channel model), and the noise in the plane has that standard deviation. */
START_TEST(test_trainer_per_channel_level)
{
    write_photo("p1.png", 40, 30, 3, 1);
    dae_error e = {0};
    dae_photoset *ps = dae_photoset_load_dir(tmpdir, 3, 8, 10, NULL, &e);
    ck_assert_msg(ps != NULL, "%s", e.msg);
    for (int half = 0; half <= 1; half++) {
        dae_recipe *r = per_channel_recipe(half);
        dae_trainer *t = dae_trainer_create_photos(r, ps, NULL, &e);
        ck_assert_msg(t != NULL, "%s", e.msg);
        dae_rng rng;
        dae_rng_seed(&rng, 3);
        float clean[64], noisy[64], level = 0.0f;
        for (int ch = 0; ch < 3; ch++) {
            double ss = 0.0, want = 30.0 * dae_color_noise_gain(DAE_COLOR_OPPONENT, ch) *
                                    (half && ch > 0 ? 0.5 : 1.0);
            for (int k = 0; k < 100; k++) {
                ck_assert_int_eq(dae_tr_photo_pair(t, ps, &rng, 1, 30.0, ch, clean, noisy,
                                                   &level, &e), DAE_OK);
                ck_assert_double_eq_tol(level, want, 1e-4);
                for (int i = 0; i < 64; i++)
                    ss += (double)(noisy[i] - clean[i]) * (noisy[i] - clean[i]);
            }
            double sd = sqrt(ss / 6400.0) * 255.0;
            ck_assert_msg(fabs(sd - want) < 0.05 * want, "half %d plane %d: noise sd %g, "
                          "level %g", half, ch, sd, want);
        }
        dae_trainer_free(t);
        dae_recipe_free(r);
    }
    dae_photoset_free(ps);
}
END_TEST

/* data.chroma_half: a model that daed serves as a half-chroma one (its config says so);
 * it needs per_channel in the opponent space with Gaussian noise, and photos that hold a
 * crop twice the patch. */
START_TEST(test_trainer_chroma_half)
{
    write_photo("p1.png", 40, 30, 3, 1);
    mk_out_dir();
    dae_error e = {0};
    dae_photoset *ps = dae_photoset_load_dir(tmpdir, 3, 8, 10, NULL, &e);
    ck_assert_msg(ps != NULL, "%s", e.msg);
    dae_recipe *r = per_channel_recipe(1);
    dae_trainer *t = dae_trainer_create_photos(r, ps, NULL, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    ck_assert_int_eq(dae_trainer_run(t, NULL, &e), 0);
    ck_assert_int_eq(dae_trainer_save_model(t, r->output, NULL, NULL, &e), 0);
    dae_modelfile *mf = dae_modelfile_load(r->output, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    dae_photo_facts f;
    ck_assert_msg(dae_photo_facts_parse(mf->config_json, 1, &f, &e) == DAE_OK, "%s", e.msg);
    ck_assert(f.per_channel && f.chroma_half && f.cs == DAE_COLOR_OPPONENT);
    dae_modelfile_free(mf);
    dae_trainer_free(t);
    /* validation photos must hold the chroma crops too: 12x12 holds 8x8, not 16x16 */
    dae_photoset *val = dae_photoset_create(3, &e);
    dae_image small = {0};
    ck_assert_int_eq(dae_image_alloc(&small, 12, 12, 3, 0, &e), DAE_OK);
    ck_assert_int_eq(dae_photoset_add(val, &small, "small-val.png", &e), DAE_OK);
    ck_assert_ptr_null(dae_trainer_create_photos(r, ps, val, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "small-val.png"));
    ck_assert_ptr_nonnull(strstr(e.msg, "16x16 crops"));
    dae_photoset_free(val);
    r->patches.size = 16; /* a 32x32 crop does not fit 40x30 */
    ck_assert_ptr_null(dae_trainer_create_photos(r, ps, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "32x32 crops"));
    dae_recipe_free(r);
    dae_photoset_free(ps);
    const char *bad[] = {
        "{\"data\":{\"channels\":3,\"color_space\":\"opponent\",\"chroma_half\":true},"
        "\"patches\":{\"size\":8}}",
        "{\"data\":{\"channels\":3,\"per_channel\":true,\"chroma_half\":true},"
        "\"patches\":{\"size\":8}}",
        "{\"data\":{\"channels\":3,\"color_space\":\"opponent\",\"per_channel\":true,"
        "\"chroma_half\":true},\"patches\":{\"size\":8,\"noise\":[{\"type\":\"gaussian\","
        "\"sigma\":[0,50]}]}}"};
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_null(dae_recipe_parse(bad[i], strlen(bad[i]), "r", 0, NULL, &e));
        ck_assert_ptr_nonnull(strstr(e.msg, "data.chroma_half"));
    }
}
END_TEST

START_TEST(test_trainer_patches_errors)
{
    write_photo("small.png", 7, 30, 1, 1);
    dae_error e = {0};
    dae_recipe *r = photo_recipe(1, "rgb");
    dae_photoset *ps = dae_photoset_load_dir(tmpdir, 1, 1, 10, NULL, &e);
    ck_assert_ptr_nonnull(ps);
    /* a photo narrower than the patches */
    ck_assert_ptr_null(dae_trainer_create_photos(r, ps, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ESHAPE);
    ck_assert_ptr_nonnull(strstr(e.msg, "small.png"));
    /* through dae_train_main, the loader names the file too */
    ck_assert_int_ne(dae_train_main(r, NULL, NULL, NULL, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "small.png"));
    dae_photoset_free(ps);
    dae_recipe_free(r);
    /* recipe rules: sigma range order, colour space needs 3 channels */
    const char *bad1 = "{\"patches\":{\"size\":8,\"sigma_min\":30,\"sigma_max\":10}}";
    ck_assert_ptr_null(dae_recipe_parse(bad1, strlen(bad1), "r", 0, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "sigma_min"));
    const char *bad2 = "{\"data\":{\"color_space\":\"opponent\",\"channels\":1}}";
    ck_assert_ptr_null(dae_recipe_parse(bad2, strlen(bad2), "r", 0, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "color_space"));
    /* the dataset constructor refuses a patch recipe */
    dae_recipe *pr = photo_recipe(1, "rgb");
    dae_dataset *ds = dae_dataset_create(4, 1, 8, 8, 0, NULL);
    ck_assert_ptr_null(dae_trainer_create(pr, ds, ds, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "patches.size"));
    dae_dataset_free(ds);
    dae_recipe_free(pr);
}
END_TEST

Suite *suite_photo(void)
{
    Suite *s = suite_create("photo");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_opponent_round_trip);
    tcase_add_test(tc, test_color_noise_gain);
    tcase_add_test(tc, test_area_downscale);
    tcase_add_test(tc, test_luma709_and_quantize);
    tcase_add_test(tc, test_add_noise_levels);
    tcase_add_test(tc, test_noise_estimate);
    tcase_add_test(tc, test_noise_estimate_coarse);
    tcase_add_test(tc, test_patches_and_augment);
    tcase_add_test(tc, test_photo_facts);
    tcase_add_test(tc, test_photo_facts_chroma_half);
    tcase_add_test(tc, test_chroma_half);
    tcase_add_test(tc, test_probe);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("files");
    tcase_add_checked_fixture(tf, setup, teardown);
    tcase_set_timeout(tf, 30);
    tcase_add_test(tf, test_load_dir);
    tcase_add_test(tf, test_trainer_patches_resume);
    tcase_add_test(tf, test_trainer_quantize_share);
    tcase_add_test(tf, test_trainer_patches_errors);
    tcase_add_test(tf, test_trainer_patches_noise_map);
    tcase_add_test(tf, test_trainer_per_channel_level);
    tcase_add_test(tf, test_trainer_chroma_half);
    suite_add_tcase(s, tf);
    return s;
}

/* check_photonoise.c — training noise for photo patches (photonoise.h): the recipe form and
 * its errors, determinism, the statistics of each kind, the JPEG step, and patch mode
 * without patches.noise unchanged. */
#include "check_quiet.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daed/io/modelfile.h"
#include "daed/io/photo.h"
#include "daed/train/photonoise.h"
#include "daed/train/recipe.h"
#include "daed/train/trainer.h"

static void parse_ok(const char *json, dae_photonoise_set *set)
{
    dae_error e = {0};
    ck_assert_msg(dae_photonoise_set_parse(json, strlen(json), set, &e) == DAE_OK, "%s: %s",
                  json, e.msg);
}

START_TEST(test_parse_and_json)
{
    dae_photonoise_set s;
    parse_ok("[{\"type\":\"gaussian\",\"sigma\":[0,75],\"weight\":2},{\"type\":\"camera\","
             "\"weight\":2},{\"type\":\"correlated\",\"sigma\":[0,50]},{\"type\":\"jpeg\","
             "\"p\":0.3,\"quality\":[60,95]}]", &s);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.m[0].kind, DAE_PNOISE_GAUSSIAN);
    ck_assert_float_eq(s.m[0].hi, 75.0f);
    ck_assert_float_eq(s.m[0].weight, 2.0f);
    ck_assert_int_eq(s.m[1].kind, DAE_PNOISE_CAMERA);
    ck_assert_float_eq(s.m[1].lo, 0.0001f); /* the paper's shot range by default */
    ck_assert_float_eq(s.m[1].hi, 0.012f);
    ck_assert_int_eq(s.m[1].demosaic, DAE_DEMOSAIC_MALVAR);
    ck_assert_float_eq(s.m[2].width_lo, 0.5f);
    ck_assert_int_eq(s.m[2].per_channel, 1);
    ck_assert_float_eq(s.jpeg_p, 0.3f);
    ck_assert_int_eq(s.jpeg_qlo, 60);
    ck_assert_int_eq(s.jpeg_qhi, 95);
    double lo = -1, hi = -1;
    ck_assert_int_eq(dae_photonoise_sigma_range(&s, &lo, &hi), 1);
    ck_assert(lo == 0 && hi == 75);
    /* the JSON form has every default written out and reads back to the same set */
    char *j = dae_photonoise_set_json(&s);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_nonnull(strstr(j, "\"demosaic\":\"malvar\""));
    dae_photonoise_set back;
    parse_ok(j, &back);
    ck_assert_int_eq(memcmp(&s, &back, sizeof s), 0);
    free(j);
    parse_ok("[{\"type\":\"camera\",\"shot\":0.01,\"read_jitter\":0,\"demosaic\":\"bilinear\","
             "\"chroma\":[0.25,0.5]}]", &s);
    ck_assert_int_eq(s.m[0].demosaic, DAE_DEMOSAIC_BILINEAR);
    ck_assert_float_eq(s.m[0].cut_lo, 0.5f);
    ck_assert_float_eq(s.m[0].cut_hi, 0.75f);
    j = dae_photonoise_set_json(&s);
    ck_assert_ptr_nonnull(strstr(j, "\"chroma\":[0.25,0.5]"));
    free(j);
    parse_ok("[{\"type\":\"camera\",\"chroma\":[0.2,0.7]}]", &s);
    j = dae_photonoise_set_json(&s);
    ck_assert_msg(strstr(j, "\"chroma\":[0.2,0.7]") != NULL, "%s", j);
    ck_assert_msg(strstr(j, "width") == NULL, "%s", j); /* off: not written */
    free(j);
    parse_ok("[{\"type\":\"camera\",\"width\":[0.5,1.25]}]", &s);
    ck_assert(s.m[0].width_lo == 0.5f && s.m[0].width_hi == 1.25f);
    j = dae_photonoise_set_json(&s);
    ck_assert_msg(strstr(j, "\"width\":[0.5,1.25]") != NULL, "%s", j);
    parse_ok(j, &back);
    ck_assert_int_eq(memcmp(&s, &back, sizeof s), 0);
    free(j);
    parse_ok("[{\"type\":\"camera\",\"chroma\":[0.2,0.7]}]", &s);
    j = dae_photonoise_set_json(&s);
    parse_ok(j, &back);
    ck_assert_int_eq(memcmp(&s, &back, sizeof s), 0);
    free(j);
    ck_assert_int_eq(s.jpeg_qhi, 0);
    ck_assert_int_eq(dae_photonoise_sigma_range(&s, &lo, &hi), 0);
}
END_TEST

START_TEST(test_parse_errors)
{
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"type\":\"gaussian\",\"sigma\":5}", "expected an array"},
        {"[]", "no noise kind"},
        {"[{\"type\":\"poisson\"}]", "\"poisson\" unknown"},
        {"[{\"sigma\":3}]", "missing \"type\""},
        {"[{\"type\":\"gaussian\"}]", "noise[0] (gaussian): missing \"sigma\""},
        {"[{\"type\":\"gaussian\",\"sigma\":[10,5]}]", "noise[0] (gaussian).sigma"},
        {"[{\"type\":\"gaussian\",\"sigma\":300}]", "<= 255"},
        {"[{\"type\":\"gaussian\",\"sigma\":\"5\"}]", "expected a number or [lo, hi]"},
        {"[{\"type\":\"gaussian\",\"sigma\":5,\"weight\":0}]", "(gaussian).weight"},
        {"[{\"type\":\"gaussian\",\"sigma\":5,\"sigma\":6}]", "duplicate key"},
        {"[{\"type\":\"gaussian\",\"sigma\":5,\"clip\":false}]", "(gaussian).clip: unknown key"},
        {"[{\"type\":\"camera\",\"shot\":[0,0.01]}]", "(camera).shot"},
        {"[{\"type\":\"camera\",\"sigma\":5}]", "(camera).sigma: unknown key"},
        {"[{\"type\":\"camera\",\"read_jitter\":-1}]", "(camera).read_jitter"},
        {"[{\"type\":\"camera\",\"demosaic\":\"nearest\"}]", "\"malvar\" or \"bilinear\""},
        {"[{\"type\":\"camera\",\"chroma\":[0.5,1.5]}]", "(camera).chroma"},
        {"[{\"type\":\"camera\",\"width\":5}]", "(camera).width"},
        {"[{\"type\":\"correlated\",\"width\":1}]", "(correlated): missing \"sigma\""},
        {"[{\"type\":\"correlated\",\"sigma\":5,\"width\":9}]", "(correlated).width"},
        {"[{\"type\":\"correlated\",\"sigma\":5,\"per_channel\":1}]", "true or false"},
        {"[{\"type\":\"jpeg\",\"quality\":70}]", "no noise kind"},
        {"[{\"type\":\"gaussian\",\"sigma\":5},{\"type\":\"jpeg\",\"quality\":[60,101]}]",
         "noise[1] (jpeg).quality"},
        {"[{\"type\":\"gaussian\",\"sigma\":5},{\"type\":\"jpeg\",\"quality\":[60.5,70]}]",
         "integers"},
        {"[{\"type\":\"gaussian\",\"sigma\":5},{\"type\":\"jpeg\",\"p\":0.5}]",
         "missing \"quality\""},
        {"[{\"type\":\"gaussian\",\"sigma\":5},{\"type\":\"jpeg\",\"p\":2,\"quality\":70}]",
         "(jpeg).p"},
        {"[{\"type\":\"gaussian\",\"sigma\":5},{\"type\":\"jpeg\",\"quality\":70,\"weight\":1}]",
         "no weight"},
        {"[{\"type\":\"gaussian\",\"sigma\":5},{\"type\":\"jpeg\",\"quality\":70},"
         "{\"type\":\"jpeg\",\"quality\":80}]", "at most one"},
        {"[{\"type\":\"gaussian\",\"sigma\":1},{\"type\":\"gaussian\",\"sigma\":1},"
         "{\"type\":\"gaussian\",\"sigma\":1},{\"type\":\"gaussian\",\"sigma\":1},"
         "{\"type\":\"gaussian\",\"sigma\":1},{\"type\":\"gaussian\",\"sigma\":1},"
         "{\"type\":\"gaussian\",\"sigma\":1},{\"type\":\"gaussian\",\"sigma\":1},"
         "{\"type\":\"gaussian\",\"sigma\":1}]", "more than 8"},
        {"[{\"type\":\"gaussian\",\"sigma\":5}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dae_photonoise_set s;
        dae_error e = {0};
        s.n = 5;
        ck_assert_msg(dae_photonoise_set_parse(bad[i].json, strlen(bad[i].json), &s, &e) ==
                          DAE_EINVAL, "accepted: %s", bad[i].json);
        ck_assert_msg(strstr(e.msg, bad[i].want) != NULL, "%s: message \"%s\", wanted \"%s\"",
                      bad[i].json, e.msg, bad[i].want);
        ck_assert_int_eq(s.n, 0);
    }
    /* through a recipe: the message names the recipe key; needs photo patches */
    dae_error e = {0};
    const char *r1 = "{\"patches\":{\"size\":8,\"noise\":[{\"type\":\"camera\",\"shoot\":1}]}}";
    ck_assert_ptr_null(dae_recipe_parse(r1, strlen(r1), "r.json", 0, NULL, &e));
    ck_assert_msg(strstr(e.msg, "patches.noise[0] (camera).shoot: unknown key") != NULL, "%s",
                  e.msg);
    const char *r2 = "{\"patches\":{\"noise\":[{\"type\":\"camera\"}]}}";
    ck_assert_ptr_null(dae_recipe_parse(r2, strlen(r2), "r.json", 0, NULL, &e));
    ck_assert_msg(strstr(e.msg, "patches.size > 0") != NULL, "%s", e.msg);
    /* a command-line override; [] is no set */
    char *args[] = {"--patches.noise", "[{\"type\":\"correlated\",\"sigma\":9}]"};
    const char *r3 = "{\"patches\":{\"size\":8}}";
    dae_recipe *r = dae_recipe_parse(r3, strlen(r3), "r.json", 2, args, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    ck_assert_int_eq(r->patches.noise.n, 1);
    ck_assert_ptr_nonnull(strstr(r->patches.noise_json, "\"width\":[0.5,1.5]"));
    dae_recipe_free(r);
    const char *r4 = "{\"patches\":{\"size\":8,\"noise\":[]}}";
    r = dae_recipe_parse(r4, strlen(r4), "r.json", 0, NULL, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    ck_assert_int_eq(r->patches.noise.n, 0);
    ck_assert_ptr_null(r->patches.noise_json);
    dae_recipe_free(r);
}
END_TEST

START_TEST(test_generator_limits)
{
    dae_photonoise_set s = {0};
    dae_error e = {0};
    ck_assert_ptr_null(dae_photonoise_create(&s, 2, 8, 8, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "1 or 3 channels"));
    ck_assert_ptr_null(dae_photonoise_create(&s, 3, 0, 8, &e));
    ck_assert_ptr_null(dae_photonoise_create(&s, 1, 8, DAE_PNOISE_MAX_SIDE + 1, &e));
    dae_photonoise_free(NULL);
}
END_TEST

/* A (c, p, p) patch with a smooth pattern in (0.1, 0.9). */
static float *pattern(int c, int p)
{
    float *x = malloc((size_t)c * p * p * sizeof *x);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < p; y++)
            for (int i = 0; i < p; i++)
                x[((size_t)ch * p + y) * p + i] =
                    (float)(26 + (i * 5 + y * 3 + ch * 50) % 200) / 255.0f;
    return x;
}

static float *flat(int c, int p, float v)
{
    float *x = malloc((size_t)c * p * p * sizeof *x);
    for (size_t i = 0; i < (size_t)c * p * p; i++)
        x[i] = v;
    return x;
}

START_TEST(test_deterministic)
{
    const int P = 24, C = 3;
    size_t n = (size_t)C * P * P;
    dae_photonoise_set s;
    parse_ok("[{\"type\":\"gaussian\",\"sigma\":[0,75]},{\"type\":\"camera\"},"
             "{\"type\":\"correlated\",\"sigma\":[0,50]},{\"type\":\"jpeg\",\"p\":0.5,"
             "\"quality\":[60,95]}]", &s);
    dae_error e = {0};
    dae_photonoise *g = dae_photonoise_create(&s, C, P, P, &e);
    ck_assert_msg(g != NULL, "%s", e.msg);
    float *clean = pattern(C, P), *a = malloc(40 * n * sizeof *a), *b = malloc(n * sizeof *b);
    double la[40];
    dae_rng r1, r2, r3;
    dae_rng_seed(&r1, 11);
    dae_rng_seed(&r2, 11);
    dae_rng_seed(&r3, 12);
    for (int k = 0; k < 40; k++)
        ck_assert_int_eq(dae_photonoise_apply(g, &r1, clean, 1, a + k * n, &la[k], &e), 0);
    int differ = 0;
    for (int k = 0; k < 40; k++) {
        double lb;
        ck_assert_int_eq(dae_photonoise_apply(g, &r2, clean, 1, b, &lb, &e), 0);
        ck_assert_int_eq(memcmp(a + k * n, b, n * sizeof *b), 0);
        ck_assert(la[k] == lb && lb >= 0 && lb < 255);
        ck_assert_int_eq(dae_photonoise_apply(g, &r3, clean, 1, b, &lb, &e), 0);
        differ += memcmp(a + k * n, b, n * sizeof *b) != 0;
    }
    ck_assert_int_ge(differ, 35); /* another seed, other noise (sigma 0 draws may agree) */
    free(clean);
    free(a);
    free(b);
    dae_photonoise_free(g);
}
END_TEST

/* Mean over the patches of one statistic: std (0-255) of d, lag-1 horizontal correlation
 * of d, per plane of (h, w). */
static void noise_stats(const float *d, int h, int w, double *sd, double *corr)
{
    double s = 0, s2 = 0, sxy = 0;
    size_t n = (size_t)h * w, m = 0;
    for (size_t i = 0; i < n; i++)
        s += d[i];
    double mean = s / n;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = d[(size_t)y * w + x] - mean;
            s2 += v * v;
            if (x + 1 < w) {
                sxy += v * (d[(size_t)y * w + x + 1] - mean);
                m++;
            }
        }
    *sd = 255.0 * sqrt(s2 / n);
    *corr = (sxy / m) / (s2 / n);
}

START_TEST(test_gaussian_std)
{
    const int P = 64;
    dae_photonoise_set none = {0};
    dae_photonoise *g = dae_photonoise_create(&none, 3, P, P, NULL);
    const float mid = 128.0f / 255.0f; /* an 8-bit level */
    float *clean = flat(3, P, mid), *x = malloc((size_t)3 * P * P * sizeof *x);
    dae_pnoise m = {.kind = DAE_PNOISE_GAUSSIAN, .lo = 20, .hi = 20, .weight = 1};
    dae_rng r;
    dae_rng_seed(&r, 5);
    double level, sd, corr;
    dae_photonoise_apply_member(g, &r, &m, clean, 1, x, &level);
    ck_assert(level == 20.0);
    for (size_t i = 0; i < (size_t)3 * P * P; i++) {
        ck_assert_float_eq_tol(x[i] * 255.0f, rintf(x[i] * 255.0f), 1e-3f); /* 8-bit levels */
        x[i] -= mid;
    }
    noise_stats(x, 3 * P, P, &sd, &corr);
    ck_assert_msg(fabs(sd - 20.0) < 1.0, "std %g", sd);
    ck_assert_msg(fabs(corr) < 0.05, "white noise correlation %g", corr);
    free(clean);
    free(x);
    dae_photonoise_free(g);
}
END_TEST

/* Camera noise (unit noise blurred by width, 0 = white) on flat patches at gray level v:
 * mean variance of (noisy - clean) in linear light, mean sRGB lag-1 correlation, mean RMS
 * level. */
static void camera_flat(int c, float v, float width, double *var_lin, double *corr,
                        double *rms_check)
{
    const int P = 48, K = 30;
    size_t hw = (size_t)P * P, n = (size_t)c * hw;
    dae_photonoise_set none = {0};
    dae_photonoise *g = dae_photonoise_create(&none, c, P, P, NULL);
    ck_assert_ptr_nonnull(g);
    float *clean = flat(c, P, v), *x = malloc(n * sizeof *x), *d = malloc(n * sizeof *d);
    dae_pnoise m = {.kind = DAE_PNOISE_CAMERA, .lo = 0.005f, .hi = 0.005f, .weight = 1,
                    .width_lo = width, .width_hi = width};
    dae_rng r;
    dae_rng_seed(&r, 9);
    double vs = 0, cs = 0;
    float lin_clean = dae_photonoise_to_linear(v);
    for (int k = 0; k < K; k++) {
        double level, sd, cr;
        dae_photonoise_apply_member(g, &r, &m, clean, 0, x, &level);
        double s2 = 0;
        for (size_t i = 0; i < n; i++) {
            ck_assert(x[i] >= 0.0f && x[i] <= 1.0f);
            double dl = dae_photonoise_to_linear(x[i]) - lin_clean;
            s2 += dl * dl;
            d[i] = x[i] - v;
        }
        vs += s2 / n;
        double rms = 0;
        for (size_t i = 0; i < n; i++)
            rms += (double)d[i] * d[i];
        ck_assert_msg(fabs(255.0 * sqrt(rms / n) - level) < 1e-3 * (1 + level), "level %g",
                      level);
        for (int ch = 0; ch < c; ch++) {
            noise_stats(d + ch * hw, P, P, &sd, &cr);
            cs += cr / c;
        }
        *rms_check = level;
    }
    *var_lin = vs / K;
    *corr = cs / K;
    free(clean);
    free(x);
    free(d);
    dae_photonoise_free(g);
}

/* The R-G correlation of the noise member m adds to a flat gray (c = 3, 0.5) over 10 draws. */
static double rg_correlation(dae_photonoise *g, dae_rng *r, const dae_pnoise *m,
                             const float *clean, float *x, size_t hw)
{
    double level, num = 0, dr = 0, dg = 0;
    for (int k = 0; k < 10; k++) {
        dae_photonoise_apply_member(g, r, m, clean, 0, x, &level);
        for (size_t i = 0; i < hw; i++) {
            double a = x[i] - 0.5, b = x[hw + i] - 0.5;
            num += a * b;
            dr += a * a;
            dg += b * b;
        }
    }
    return num / sqrt(dr * dg);
}

START_TEST(test_camera_statistics)
{
    for (int c = 1; c <= 3; c += 2) {
        double v_lo, v_hi, c_lo, c_hi, l_lo, l_hi;
        camera_flat(c, 0.25f, 0.0f, &v_lo, &c_lo, &l_lo);
        camera_flat(c, 0.75f, 0.0f, &v_hi, &c_hi, &l_hi);
        /* shot noise: variance in linear light grows with the signal (here ~8x) */
        ck_assert_msg(v_hi > 3.0 * v_lo, "c %d: linear variance %g at 0.25, %g at 0.75", c,
                      v_lo, v_hi);
        /* demosaicing spreads each site's noise to its neighbours */
        ck_assert_msg(c_lo > 0.1 && c_hi > 0.1, "c %d: neighbour correlation %g, %g", c, c_lo,
                      c_hi);
        ck_assert(l_lo > 0.5 && l_hi > 0.5);
        /* width: the noise under the mosaic is correlated too, still signal-dependent */
        double w_lo, w_hi, wc_lo, wc_hi;
        camera_flat(c, 0.25f, 1.0f, &w_lo, &wc_lo, &l_lo);
        camera_flat(c, 0.75f, 1.0f, &w_hi, &wc_hi, &l_hi);
        ck_assert_msg(w_hi > 3.0 * w_lo, "c %d width 1: linear variance %g, %g", c, w_lo, w_hi);
        ck_assert_msg(wc_lo > c_lo + 0.2 && wc_hi > c_hi + 0.2,
                      "c %d width 1: neighbour correlation %g, %g (white: %g, %g)", c, wc_lo,
                      wc_hi, c_lo, c_hi);
    }
    /* channels are correlated: the demosaic kernels and the colour matrix mix them */
    const int P = 48;
    size_t hw = (size_t)P * P;
    dae_photonoise_set none = {0};
    dae_photonoise *g = dae_photonoise_create(&none, 3, P, P, NULL);
    float *clean = flat(3, P, 0.5f), *x = malloc(3 * hw * sizeof *x);
    dae_pnoise m = {.kind = DAE_PNOISE_CAMERA, .lo = 0.005f, .hi = 0.005f, .weight = 1};
    dae_rng r;
    dae_rng_seed(&r, 2);
    double rg = rg_correlation(g, &r, &m, clean, x, hw);
    ck_assert_msg(rg > 0.05, "R-G noise correlation %g", rg); /* measured 0.12-0.14 */
    /* chroma 0.2: mostly luminance noise, the channels move together */
    m.cut_lo = m.cut_hi = 0.8f;
    double rg2 = rg_correlation(g, &r, &m, clean, x, hw);
    ck_assert_msg(rg2 > 0.6 && rg2 > rg + 0.3, "R-G noise correlation %g at chroma 0.2", rg2);
    free(clean);
    free(x);
    dae_photonoise_free(g);
}
END_TEST

START_TEST(test_camera_clean_round_trip)
{
    /* the curves are inverses, and without noise (shot at its floor) the patch survives */
    for (int i = 0; i <= 255; i++) {
        float v = i / 255.0f;
        ck_assert_float_eq_tol(dae_photonoise_from_linear(dae_photonoise_to_linear(v)), v,
                               2e-4f);
    }
    const int P = 16;
    dae_photonoise_set none = {0};
    dae_photonoise *g = dae_photonoise_create(&none, 3, P, P, NULL);
    float *clean = pattern(3, P), *x = malloc((size_t)3 * P * P * sizeof *x);
    dae_pnoise m = {.kind = DAE_PNOISE_CAMERA, .lo = 1e-6f, .hi = 1e-6f, .weight = 1};
    dae_rng r;
    dae_rng_seed(&r, 1);
    double level;
    dae_photonoise_apply_member(g, &r, &m, clean, 1, x, &level);
    ck_assert_msg(level < 0.6, "level %g at the lowest shot noise", level);
    free(clean);
    free(x);
    dae_photonoise_free(g);
}
END_TEST

START_TEST(test_correlated)
{
    const int P = 64;
    size_t hw = (size_t)P * P;
    dae_photonoise_set none = {0};
    dae_photonoise *g = dae_photonoise_create(&none, 3, P, P, NULL);
    float *clean = flat(3, P, 0.5f), *x = malloc(3 * hw * sizeof *x);
    dae_pnoise m = {.kind = DAE_PNOISE_CORRELATED, .lo = 20, .hi = 20, .width_lo = 1,
                    .width_hi = 1, .per_channel = 1, .weight = 1};
    dae_rng r;
    dae_rng_seed(&r, 4);
    double sds = 0, cs = 0, level, sd, corr;
    const int K = 20;
    for (int k = 0; k < K; k++) {
        dae_photonoise_apply_member(g, &r, &m, clean, 0, x, &level);
        ck_assert(level == 20.0);
        for (size_t i = 0; i < 3 * hw; i++)
            x[i] -= 0.5f;
        for (int ch = 0; ch < 3; ch++) {
            noise_stats(x + ch * hw, P, P, &sd, &corr);
            sds += sd / (3 * K);
            cs += corr / (3 * K);
        }
        ck_assert(memcmp(x, x + hw, hw * sizeof *x) != 0); /* independent per channel */
    }
    /* a Gaussian of width 1 correlates neighbours by exp(-1/4) = 0.78; the patch std runs
     * a little under sigma (the mean of a correlated 64x64 field is partly the noise) */
    ck_assert_msg(fabs(sds - 20.0) < 2.0, "std %g", sds);
    ck_assert_msg(cs > 0.6 && cs < 0.9, "neighbour correlation %g", cs);
    m.per_channel = 0;
    dae_photonoise_apply_member(g, &r, &m, clean, 0, x, &level);
    ck_assert_int_eq(memcmp(x, x + hw, hw * sizeof *x), 0); /* one field for all channels */
    m.width_lo = m.width_hi = 0; /* width 0: white noise */
    dae_photonoise_apply_member(g, &r, &m, clean, 0, x, &level);
    for (size_t i = 0; i < hw; i++)
        x[i] -= 0.5f;
    noise_stats(x, P, P, &sd, &corr);
    ck_assert_msg(fabs(sd - 20.0) < 1.5 && fabs(corr) < 0.06, "white: std %g corr %g", sd,
                  corr);
    free(clean);
    free(x);
    dae_photonoise_free(g);
}
END_TEST

START_TEST(test_jpeg_step)
{
    for (int c = 1; c <= 3; c += 2) {
        const int P = 32;
        size_t n = (size_t)c * P * P;
        dae_photonoise_set s;
        parse_ok("[{\"type\":\"gaussian\",\"sigma\":15},{\"type\":\"jpeg\",\"quality\":[60,70]}]",
                 &s);
        dae_error e = {0};
        dae_photonoise *g = dae_photonoise_create(&s, c, P, P, &e);
        ck_assert_msg(g != NULL, "%s", e.msg);
        float *clean = pattern(c, P), *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        dae_rng r1, r2;
        dae_rng_seed(&r1, 3);
        dae_rng_seed(&r2, 3);
        double level;
        ck_assert_int_eq(dae_photonoise_apply(g, &r1, clean, 1, x, &level, &e), 0);
        ck_assert(level == 15.0); /* the level is the noise's, before the JPEG step */
        /* the same draws without the JPEG step: the noise alone */
        dae_photonoise_apply_member(g, &r2, &s.m[0], clean, 1, y, &level);
        size_t changed = 0;
        for (size_t i = 0; i < n; i++) {
            ck_assert(x[i] >= 0.0f && x[i] <= 1.0f);
            ck_assert_float_eq_tol(x[i] * 255.0f, rintf(x[i] * 255.0f), 1e-3f);
            changed += x[i] != y[i];
        }
        ck_assert_msg(changed > n / 2, "c %d: JPEG changed %zu of %zu values", c, changed, n);
        /* p 0: never; the step alone changes a patch less at a higher quality */
        s.jpeg_p = 0.0f;
        dae_photonoise *g0 = dae_photonoise_create(&s, c, P, P, &e);
        dae_rng_seed(&r1, 3);
        dae_rng_seed(&r2, 3);
        dae_photonoise_apply(g0, &r1, clean, 1, x, &level, &e);
        dae_photonoise_apply_member(g0, &r2, &s.m[0], clean, 1, y, &level);
        ck_assert_int_eq(memcmp(x, y, n * sizeof *x), 0);
        double err2[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            memcpy(x, y, n * sizeof *x);
            ck_assert_int_eq(dae_photonoise_jpeg(g0, x, k ? 95 : 30, &e), 0);
            for (size_t i = 0; i < n; i++)
                err2[k] += (x[i] - y[i]) * (double)(x[i] - y[i]);
        }
        ck_assert_msg(err2[1] < 0.7 * err2[0], "c %d: squared error q95 %g, q30 %g", c,
                      err2[1], err2[0]);
        ck_assert_int_eq(dae_photonoise_jpeg(g0, x, 0, &e), DAE_EINVAL);
        free(clean);
        free(x);
        free(y);
        dae_photonoise_free(g);
        dae_photonoise_free(g0);
    }
}
END_TEST

/* ---- patch mode: without patches.noise exactly as before ---- */

START_TEST(test_gaussian_member_is_legacy_noise)
{
    /* the patch noise before noise sets, written out: sigma drawn after the crop, then
     * dae_photo_add_noise (quantize) or unrounded normals */
    const int P = 16;
    dae_image im = {0};
    ck_assert_int_eq(dae_image_alloc(&im, 40, 30, 3, 0, NULL), 0);
    float *pat = pattern(3, 40);
    memcpy(im.px, pat, (size_t)3 * 40 * 30 * sizeof *pat);
    dae_photoset *ps = dae_photoset_create(3, NULL);
    ck_assert_int_eq(dae_photoset_add(ps, &im, "p", NULL), 0);
    dae_photonoise_set s;
    parse_ok("[{\"type\":\"gaussian\",\"sigma\":[0,55]}]", &s);
    dae_photonoise *g = dae_photonoise_create(&s, 3, P, P, NULL);
    size_t n = (size_t)3 * P * P;
    float *c1 = malloc(n * 4), *c2 = malloc(n * 4), *x1 = malloc(n * 4), *x2 = malloc(n * 4);
    for (int q = 0; q <= 1; q++) {
        dae_rng a, b;
        dae_rng_seed(&a, 77);
        dae_rng_seed(&b, 77);
        for (int k = 0; k < 20; k++) {
            dae_photoset_sample_patch(ps, &a, P, 1, c1);
            double sg = 0 + (55 - 0) * dae_rng_uniform_d(&a);
            if (q) {
                dae_photo_add_noise(&a, c1, n, (float)sg, x1);
            } else {
                for (size_t i = 0; i < n; i++)
                    x1[i] = c1[i] + (float)(sg / 255.0) * dae_rng_normal(&a);
            }
            double level;
            dae_photoset_sample_patch(ps, &b, P, 1, c2);
            ck_assert_int_eq(dae_photonoise_apply(g, &b, c2, q, x2, &level, NULL), 0);
            ck_assert_int_eq(memcmp(x1, x2, n * 4), 0);
            ck_assert(level == sg);
        }
    }
    free(c1);
    free(c2);
    free(x1);
    free(x2);
    free(pat);
    dae_photonoise_free(g);
    dae_photoset_free(ps);
}
END_TEST

#define TINY(c)                                                                           \
    "{\"input\":[" #c ",8,8],\"residual\":true,\"encoder\":[{\"type\":\"conv2d\","       \
    "\"in_channels\":" #c ",\"out_channels\":4,\"kernel_size\":3,\"padding\":1},"          \
    "{\"type\":\"relu\"}],\"decoder\":[{\"type\":\"conv2d\",\"in_channels\":4,"           \
    "\"out_channels\":" #c ",\"kernel_size\":3,\"padding\":1}]}"

static dae_recipe *recipe(const char *dir, const char *noise)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"output\":\"%s/m.safetensors\",\"epochs\":2,\"batch_size\":4,\"threads\":1,"
             "\"seed\":4,\"tasks\":[\"denoise\"],\"data\":{\"train\":\"unused\",\"channels\":3,"
             "\"color_space\":\"opponent\",\"per_channel\":true},\"patches\":{\"size\":8,"
             "\"per_epoch\":12,\"sigma_min\":5,\"sigma_max\":40,\"val_count\":5%s%s},"
             "\"collapse\":{\"check\":\"off\"},\"model\":%s}",
             dir, noise ? ",\"noise\":" : "", noise ? noise : "", TINY(1));
    dae_error e = {0};
    dae_recipe *r = dae_recipe_parse(json, strlen(json), "recipe", 0, NULL, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    return r;
}

START_TEST(test_trainer_noise_sets)
{
    char dir[] = "/tmp/check_photonoise_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    dae_image im = {0};
    ck_assert_int_eq(dae_image_alloc(&im, 40, 30, 3, 0, NULL), 0);
    float *pat = pattern(3, 40);
    memcpy(im.px, pat, (size_t)3 * 40 * 30 * sizeof *pat);
    free(pat);
    dae_photoset *ps = dae_photoset_create(3, NULL);
    ck_assert_int_eq(dae_photoset_add(ps, &im, "p", NULL), 0);
    dae_error e = {0};

    /* no set vs a gaussian set of the same range: the same training stream, bit for bit */
    dae_recipe *ra = recipe(dir, NULL), *rb = recipe(dir, "[{\"type\":\"gaussian\","
                                                          "\"sigma\":[5,40]}]");
    dae_trainer *a = dae_trainer_create_photos(ra, ps, NULL, &e);
    ck_assert_msg(a != NULL, "%s", e.msg);
    dae_trainer *b = dae_trainer_create_photos(rb, ps, NULL, &e);
    ck_assert_msg(b != NULL, "%s", e.msg);
    ck_assert_int_eq(dae_trainer_run(a, NULL, &e), 0);
    ck_assert_int_eq(dae_trainer_run(b, NULL, &e), 0);
    const dae_model *ma = dae_trainer_model(a), *mb = dae_trainer_model(b);
    ck_assert_int_eq(memcmp(ma->params, mb->params, ma->n_params * sizeof(float)), 0);
    dae_trainer_free(a);
    dae_trainer_free(b);

    /* a full mix trains and the model file records the set */
    dae_recipe *rc = recipe(dir, "[{\"type\":\"gaussian\",\"sigma\":[0,75],\"weight\":2},"
                                 "{\"type\":\"camera\",\"weight\":2},{\"type\":\"correlated\","
                                 "\"sigma\":[0,50]},{\"type\":\"jpeg\",\"p\":0.3,"
                                 "\"quality\":[60,95]}]");
    dae_trainer *c = dae_trainer_create_photos(rc, ps, NULL, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    ck_assert_int_eq(dae_trainer_run(c, NULL, &e), 0);
    ck_assert(isfinite(dae_trainer_stats(c)->val_psnr));
    ck_assert_int_eq(dae_trainer_save_model(c, rc->output, NULL, NULL, &e), 0);
    dae_modelfile *mf = dae_modelfile_load(rc->output, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    cJSON *cfg = cJSON_Parse(mf->config_json);
    cJSON *corr = cJSON_GetObjectItem(cfg, "corruption");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(corr, "noise")), 4);
    cJSON *sg = cJSON_GetObjectItem(corr, "sigma");
    ck_assert(cJSON_GetArrayItem(sg, 0)->valuedouble == 0 &&
              cJSON_GetArrayItem(sg, 1)->valuedouble == 75);
    cJSON_Delete(cfg);
    dae_modelfile_free(mf);
    dae_trainer_free(c);

    dae_recipe_free(ra);
    dae_recipe_free(rb);
    dae_recipe_free(rc);
    dae_photoset_free(ps);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *suite_photonoise(void)
{
    Suite *s = suite_create("photonoise");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parse_and_json);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_generator_limits);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_gaussian_std);
    tcase_add_test(tc, test_camera_statistics);
    tcase_add_test(tc, test_camera_clean_round_trip);
    tcase_add_test(tc, test_correlated);
    tcase_add_test(tc, test_jpeg_step);
    tcase_add_test(tc, test_gaussian_member_is_legacy_noise);
    tcase_add_test(tc, test_trainer_noise_sets);
    suite_add_tcase(s, tc);
    return s;
}

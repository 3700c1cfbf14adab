/* check_corrupt.c — corruption statistics, geometry, OpenCV-equal blur, recipes, determinism. */
#include "check_quiet.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daed/train/corrupt.h"

#define H 28
#define W 28
#define HW (H * W)

static void fill(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

static dae_corruption_set one(dae_corrupt_kind k, float lo, float hi)
{
    dae_corruption_set s = {.n = 0};
    ck_assert_int_eq(dae_corruption_set_add(&s, k, lo, hi, 1.0f, NULL), DAE_OK);
    int oc, oh, ow;
    ck_assert_int_eq(dae_corruption_out_shape(&s, 1, H, W, &oc, &oh, &ow, NULL), DAE_OK);
    return s;
}

START_TEST(test_gaussian_stats)
{
    dae_corruption_set s = one(DAE_CORRUPT_GAUSSIAN, 0.1f, 0.1f);
    dae_rng r;
    dae_rng_seed(&r, 1);
    float clean[HW], out[HW], mask[HW];
    fill(clean, HW, 0.5f);
    double sum = 0, sq = 0;
    long n = 0;
    for (int t = 0; t < 200; t++) {
        ck_assert_int_eq(dae_corrupt_sample(&s, &r, clean, 1, H, W, out, mask), 0);
        for (int i = 0; i < HW; i++) {
            double d = out[i] - 0.5;
            sum += d;
            sq += d * d;
            n++;
            ck_assert(mask[i] == 1.0f);
        }
    }
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    /* 156800 values: the standard error of the mean is 0.00025, of the sd 0.0002 */
    ck_assert_double_lt(fabs(mean), 0.0015);
    ck_assert_double_lt(fabs(sd - 0.1), 0.0015);

    /* large sigma: clipped to [0,1], both bounds reached */
    dae_corruption_set big = one(DAE_CORRUPT_GAUSSIAN, 0.8f, 0.8f);
    int at0 = 0, at1 = 0;
    for (int t = 0; t < 20; t++) {
        dae_corrupt_sample(&big, &r, clean, 1, H, W, out, NULL);
        for (int i = 0; i < HW; i++) {
            ck_assert(out[i] >= 0.0f && out[i] <= 1.0f);
            at0 += out[i] == 0.0f;
            at1 += out[i] == 1.0f;
        }
    }
    ck_assert_int_gt(at0, 1000);
    ck_assert_int_gt(at1, 1000);
}
END_TEST

START_TEST(test_gaussian_blind_range)
{
    dae_corruption_set s = one(DAE_CORRUPT_GAUSSIAN, 0.1f, 0.3f);
    dae_rng r;
    dae_rng_seed(&r, 2);
    float clean[HW], out[HW];
    fill(clean, HW, 0.5f);
    double lo = 1, hi = 0;
    for (int t = 0; t < 300; t++) {
        dae_corrupt_sample(&s, &r, clean, 1, H, W, out, NULL);
        double sq = 0;
        for (int i = 0; i < HW; i++)
            sq += (out[i] - 0.5) * (out[i] - 0.5);
        double sd = sqrt(sq / HW);
        lo = sd < lo ? sd : lo;
        hi = sd > hi ? sd : hi;
    }
    /* per-sample sd estimates from 784 values are within ~8% of the drawn sigma */
    ck_assert_double_gt(lo, 0.1 * 0.85);
    ck_assert_double_lt(lo, 0.13);
    ck_assert_double_lt(hi, 0.3 * 1.15);
    ck_assert_double_gt(hi, 0.27);
}
END_TEST

START_TEST(test_mask_fraction)
{
    dae_rng r;
    dae_rng_seed(&r, 3);
    float clean[HW], out[HW], mask[HW];
    fill(clean, HW, 0.7f);
    const float ps[] = {0.0f, 0.3f, 1.0f};
    for (int k = 0; k < 3; k++) {
        dae_corruption_set s = one(DAE_CORRUPT_MASK, ps[k], ps[k]);
        long zeros = 0;
        for (int t = 0; t < 100; t++) {
            dae_corrupt_sample(&s, &r, clean, 1, H, W, out, mask);
            for (int i = 0; i < HW; i++) {
                ck_assert(out[i] == 0.0f || out[i] == 0.7f);
                ck_assert(mask[i] == (out[i] == 0.0f ? 0.0f : 1.0f));
                zeros += out[i] == 0.0f;
            }
        }
        ck_assert_double_lt(fabs(zeros / (100.0 * HW) - ps[k]), 0.005);
    }
    /* blind range: each sample's drop fraction lies in [0.2, 0.6] (+- sampling noise) */
    dae_corruption_set s = one(DAE_CORRUPT_MASK, 0.2f, 0.6f);
    double lo = 1, hi = 0;
    for (int t = 0; t < 300; t++) {
        dae_corrupt_sample(&s, &r, clean, 1, H, W, out, NULL);
        int z = 0;
        for (int i = 0; i < HW; i++)
            z += out[i] == 0.0f;
        double f = (double)z / HW;
        lo = f < lo ? f : lo;
        hi = f > hi ? f : hi;
    }
    ck_assert_double_gt(lo, 0.15);
    ck_assert_double_lt(lo, 0.23);
    ck_assert_double_lt(hi, 0.65);
    ck_assert_double_gt(hi, 0.57);

    /* several channels: a dropped pixel is dropped in every channel */
    float c3[3 * HW], o3[3 * HW];
    fill(c3, 3 * HW, 0.4f);
    dae_corrupt_mask(&r, c3, 3, HW, 0.5f, o3, mask);
    for (int i = 0; i < HW; i++)
        for (int ch = 0; ch < 3; ch++)
            ck_assert(o3[ch * HW + i] == (mask[i] == 0.0f ? 0.0f : 0.4f));
}
END_TEST

START_TEST(test_salt_pepper)
{
    dae_corruption_set s = one(DAE_CORRUPT_SALT_PEPPER, 0.2f, 0.2f);
    dae_rng r;
    dae_rng_seed(&r, 4);
    float clean[HW], out[HW], mask[HW];
    fill(clean, HW, 0.5f);
    long salt = 0, pepper = 0;
    for (int t = 0; t < 100; t++) {
        dae_corrupt_sample(&s, &r, clean, 1, H, W, out, mask);
        for (int i = 0; i < HW; i++) {
            ck_assert(out[i] == 0.0f || out[i] == 1.0f || out[i] == 0.5f);
            ck_assert(mask[i] == (out[i] == 0.5f ? 1.0f : 0.0f));
            salt += out[i] == 1.0f;
            pepper += out[i] == 0.0f;
        }
    }
    double n = 100.0 * HW;
    ck_assert_double_lt(fabs((salt + pepper) / n - 0.2), 0.005);
    ck_assert_double_lt(fabs((double)salt / (salt + pepper) - 0.5), 0.02);
}
END_TEST

/* Checks that out/mask hold exactly one k x k zero block at (top,left) and clean elsewhere. */
static void find_block(const float *clean, const float *out, const float *mask, int h, int w,
                       int *k, int *top, int *left)
{
    int t = h, l = w, b = -1, rt = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (mask[y * w + x] == 0.0f) {
                t = y < t ? y : t;
                l = x < l ? x : l;
                b = y > b ? y : b;
                rt = x > rt ? x : rt;
            }
    ck_assert_int_ge(b, 0);
    ck_assert_int_eq(b - t, rt - l);
    *k = b - t + 1;
    *top = t;
    *left = l;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int in = y >= t && y <= b && x >= l && x <= rt;
            ck_assert(mask[y * w + x] == (in ? 0.0f : 1.0f));
            ck_assert(out[y * w + x] == (in ? 0.0f : clean[y * w + x]));
        }
}

START_TEST(test_block_geometry)
{
    dae_rng r;
    dae_rng_seed(&r, 5);
    float clean[HW], out[HW], mask[HW];
    for (int i = 0; i < HW; i++)
        clean[i] = 0.25f + (float)(i % 7) * 0.1f; /* never 0 */
    dae_corruption_set s = one(DAE_CORRUPT_BLOCK, 10, 10);
    int seen_top0 = 0, seen_top_max = 0, seen_left0 = 0, seen_left_max = 0;
    for (int t = 0; t < 400; t++) {
        dae_corrupt_sample(&s, &r, clean, 1, H, W, out, mask);
        int k, top, left;
        find_block(clean, out, mask, H, W, &k, &top, &left);
        ck_assert_int_eq(k, 10);
        ck_assert(top >= 0 && top <= H - 10 && left >= 0 && left <= W - 10);
        seen_top0 |= top == 0;
        seen_top_max |= top == H - 10;
        seen_left0 |= left == 0;
        seen_left_max |= left == W - 10;
    }
    /* 19 positions per axis, 400 draws: every end position shows up */
    ck_assert(seen_top0 && seen_top_max && seen_left0 && seen_left_max);

    /* k drawn from [3,7]: every size occurs, no other */
    dae_corruption_set sr = one(DAE_CORRUPT_BLOCK, 3, 7);
    int seen[8] = {0};
    for (int t = 0; t < 200; t++) {
        dae_corrupt_sample(&sr, &r, clean, 1, H, W, out, mask);
        int k, top, left;
        find_block(clean, out, mask, H, W, &k, &top, &left);
        ck_assert(k >= 3 && k <= 7);
        seen[k] = 1;
    }
    for (int k = 3; k <= 7; k++)
        ck_assert(seen[k]);

    /* a non-square image, block as large as the short side */
    float c2[20 * 12], o2[20 * 12], m2[20 * 12];
    fill(c2, 240, 0.5f);
    dae_corruption_set sq = {.n = 0};
    int oc, oh, ow;
    ck_assert_int_eq(dae_corruption_set_add(&sq, DAE_CORRUPT_BLOCK, 12, 12, 1, NULL), DAE_OK);
    ck_assert_int_eq(dae_corruption_out_shape(&sq, 1, 20, 12, &oc, &oh, &ow, NULL), DAE_OK);
    for (int t = 0; t < 20; t++) {
        dae_corrupt_sample(&sq, &r, c2, 1, 20, 12, o2, m2);
        int k, top, left;
        find_block(c2, o2, m2, 20, 12, &k, &top, &left);
        ck_assert_int_eq(k, 12);
        ck_assert_int_eq(left, 0);
        ck_assert(top >= 0 && top <= 8);
    }
}
END_TEST

START_TEST(test_blur_matches_opencv)
{
    /* cv2.GaussianBlur(x, (0,0), sigma, borderType=BORDER_REFLECT_101) on the float32 9x8
     * image x = ((i*37+11) % 101) / 100: pixels (0,0), (4,3), (8,7), (2,6) and the sum. */
    float x[72], out[72];
    for (int i = 0; i < 72; i++)
        x[i] = (float)((i * 37 + 11) % 101) / 100.0f;
    static const struct {
        float sigma;
        double v00, v43, v87, v26, sum;
    } ref[] = {
        {0.8f, 0.2956966459751129, 0.5607036352157593, 0.46226462721824646, 0.40692758560180664,
         35.35196304321289},
        /* ksize 13 > 8: the border reflects more than once */
        {1.5f, 0.44895750284194946, 0.4857979118824005, 0.5261530876159668, 0.4554343521595001,
         35.378150939941406},
    };
    for (int t = 0; t < 2; t++) {
        dae_corrupt_blur(x, 1, 9, 8, ref[t].sigma, out);
        ck_assert_double_eq_tol(out[0], ref[t].v00, 2e-7);
        ck_assert_double_eq_tol(out[4 * 8 + 3], ref[t].v43, 2e-7);
        ck_assert_double_eq_tol(out[8 * 8 + 7], ref[t].v87, 2e-7);
        ck_assert_double_eq_tol(out[2 * 8 + 6], ref[t].v26, 2e-7);
        double s = 0;
        for (int i = 0; i < 72; i++)
            s += out[i];
        ck_assert_double_eq_tol(s, ref[t].sum, 1e-5);
    }
    /* constant stays constant; sigma 0 copies */
    float c[HW], o[HW];
    fill(c, HW, 0.3f);
    dae_corrupt_blur(c, 1, H, W, 2.0f, o);
    for (int i = 0; i < HW; i++)
        ck_assert_double_eq_tol(o[i], 0.3, 1e-6);
    dae_corrupt_blur(x, 1, 9, 8, 0.0f, out);
    ck_assert(memcmp(out, x, sizeof x) == 0);
    /* a range draws sigma per sample: results differ between samples */
    dae_corruption_set s = one(DAE_CORRUPT_BLUR, 0.5f, 2.0f);
    dae_rng r;
    dae_rng_seed(&r, 6);
    float a[HW], b[HW];
    for (int i = 0; i < HW; i++)
        c[i] = (float)((i * 37 + 11) % 101) / 100.0f;
    dae_corrupt_sample(&s, &r, c, 1, H, W, a, NULL);
    dae_corrupt_sample(&s, &r, c, 1, H, W, b, NULL);
    ck_assert(memcmp(a, b, sizeof a) != 0);
}
END_TEST

START_TEST(test_down2)
{
    float x[2 * 5 * 7], out[2 * 2 * 3];
    for (int i = 0; i < 70; i++)
        x[i] = (float)((i * 37 + 11) % 101) / 100.0f;
    dae_corrupt_down2(x, 2, 5, 7, out);
    for (int ch = 0; ch < 2; ch++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) {
                const float *p = x + ch * 35;
                double m = ((double)p[(2 * i) * 7 + 2 * j] + p[(2 * i) * 7 + 2 * j + 1] +
                            p[(2 * i + 1) * 7 + 2 * j] + p[(2 * i + 1) * 7 + 2 * j + 1]) / 4;
                ck_assert_double_eq_tol(out[ch * 6 + i * 3 + j], m, 1e-7);
            }
    /* through a set: the output shape is halved, mixing with same-size kinds is refused */
    dae_corruption_set s = {.n = 0};
    int oc, oh, ow;
    dae_error e = {0};
    ck_assert_int_eq(dae_corruption_set_task("sr2", &s, NULL), DAE_OK);
    ck_assert_int_eq(dae_corruption_out_shape(&s, 1, 28, 28, &oc, &oh, &ow, NULL), DAE_OK);
    ck_assert(oc == 1 && oh == 14 && ow == 14);
    ck_assert_int_eq(dae_corruption_out_shape(&s, 3, 5, 7, &oc, &oh, &ow, NULL), DAE_OK);
    ck_assert(oc == 3 && oh == 2 && ow == 3);
    ck_assert_int_eq(dae_corruption_set_add(&s, DAE_CORRUPT_GAUSSIAN, 0.1f, 0.1f, 1, NULL),
                     DAE_OK);
    ck_assert_int_eq(dae_corruption_out_shape(&s, 1, 28, 28, &oc, &oh, &ow, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "cannot be mixed"));
}
END_TEST

/* A mixed set, run twice from the same seed: identical; from another seed: different. */
static void run_mixed(uint64_t seed, float *out, float *mask, int *which)
{
    dae_corruption_set s;
    const char *recipe = "[{\"type\":\"gaussian\",\"sigma\":[0,0.5]},"
                         "{\"type\":\"mask\",\"p\":[0.1,0.5]},{\"type\":\"block\",\"k\":[4,12]},"
                         "{\"type\":\"salt_pepper\",\"p\":0.1},{\"type\":\"blur\",\"sigma\":1},"
                         "{\"type\":\"none\",\"weight\":0.5}]";
    ck_assert_int_eq(dae_corruption_set_parse(recipe, strlen(recipe), &s, NULL), DAE_OK);
    int oc, oh, ow;
    ck_assert_int_eq(dae_corruption_out_shape(&s, 1, H, W, &oc, &oh, &ow, NULL), DAE_OK);
    dae_rng r;
    dae_rng_seed(&r, seed);
    float clean[HW];
    for (int i = 0; i < HW; i++)
        clean[i] = (float)((i * 37 + 11) % 101) / 100.0f;
    for (int t = 0; t < 50; t++)
        which[t] = dae_corrupt_sample(&s, &r, clean, 1, H, W, out + t * HW, mask + t * HW);
}

START_TEST(test_determinism)
{
    size_t n = 50 * HW;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    float *ma = malloc(n * sizeof *a), *mb = malloc(n * sizeof *b), *mc = malloc(n * sizeof *c);
    int wa[50], wb[50], wc[50];
    run_mixed(42, a, ma, wa);
    run_mixed(42, b, mb, wb);
    run_mixed(43, c, mc, wc);
    ck_assert(memcmp(a, b, n * sizeof *a) == 0);
    ck_assert(memcmp(ma, mb, n * sizeof *a) == 0);
    ck_assert(memcmp(wa, wb, sizeof wa) == 0);
    ck_assert(memcmp(a, c, n * sizeof *a) != 0);
    /* every member is drawn at least once in 50 samples (weights 1,1,1,1,1,0.5) */
    int seen[6] = {0};
    for (int t = 0; t < 50; t++) {
        ck_assert(wa[t] >= 0 && wa[t] < 6);
        seen[wa[t]] = 1;
    }
    for (int k = 0; k < 5; k++)
        ck_assert(seen[k]);
    free(a), free(b), free(c), free(ma), free(mb), free(mc);
}
END_TEST

START_TEST(test_weights)
{
    dae_corruption_set s = {.n = 0};
    ck_assert_int_eq(dae_corruption_set_add(&s, DAE_CORRUPT_NONE, 0, 0, 1.0f, NULL), DAE_OK);
    ck_assert_int_eq(dae_corruption_set_add(&s, DAE_CORRUPT_MASK, 0.5f, 0.5f, 3.0f, NULL), DAE_OK);
    dae_rng r;
    dae_rng_seed(&r, 7);
    float clean[16], out[16];
    fill(clean, 16, 1.0f);
    int cnt[2] = {0, 0};
    for (int t = 0; t < 4000; t++)
        cnt[dae_corrupt_sample(&s, &r, clean, 1, 4, 4, out, NULL)]++;
    ck_assert_double_lt(fabs(cnt[1] / 4000.0 - 0.75), 0.025);
}
END_TEST

START_TEST(test_noise2noise)
{
    dae_corruption_set s = one(DAE_CORRUPT_GAUSSIAN, 0.2f, 0.2f);
    dae_rng r;
    dae_rng_seed(&r, 8);
    float clean[HW], in[HW], tg[HW];
    fill(clean, HW, 0.5f);
    dae_corrupt_noise2noise(&s, NULL, &r, clean, 1, H, W, in, tg);
    double cov = 0, va = 0, vb = 0;
    for (int i = 0; i < HW; i++) {
        double a = in[i] - 0.5, b = tg[i] - 0.5;
        cov += a * b, va += a * a, vb += b * b;
    }
    /* independent draws: correlation near 0 (|r| < 0.15 at 784 values), both noisy */
    ck_assert_double_lt(fabs(cov / sqrt(va * vb)), 0.15);
    ck_assert_double_gt(sqrt(va / HW), 0.15);
    ck_assert_double_gt(sqrt(vb / HW), 0.15);
}
END_TEST

START_TEST(test_recipe_json)
{
    dae_corruption_set s, s2;
    dae_error e = {0};
    const char *ok = "[{\"type\":\"gaussian\",\"sigma\":[0,0.5]},{\"type\":\"mask\",\"p\":0.5,"
                     "\"weight\":2},{\"type\":\"block\",\"k\":[8,14]},{\"type\":\"down2\"}]";
    ck_assert_int_eq(dae_corruption_set_parse(ok, strlen(ok), &s, &e), DAE_OK);
    ck_assert_int_eq(s.n, 4);
    ck_assert_int_eq(s.c[0].kind, DAE_CORRUPT_GAUSSIAN);
    ck_assert(s.c[0].lo == 0.0f && s.c[0].hi == 0.5f && s.c[0].weight == 1.0f);
    ck_assert(s.c[1].lo == 0.5f && s.c[1].hi == 0.5f && s.c[1].weight == 2.0f);
    ck_assert(s.c[2].lo == 8.0f && s.c[2].hi == 14.0f);
    char *js = dae_corruption_set_json(&s);
    ck_assert_ptr_nonnull(js);
    ck_assert_str_eq(js, "[{\"type\":\"gaussian\",\"sigma\":[0,0.5],\"weight\":1},"
                         "{\"type\":\"mask\",\"p\":0.5,\"weight\":2},"
                         "{\"type\":\"block\",\"k\":[8,14],\"weight\":1},"
                         "{\"type\":\"down2\",\"weight\":1}]");
    ck_assert_int_eq(dae_corruption_set_parse(js, strlen(js), &s2, NULL), DAE_OK);
    ck_assert_int_eq(s2.n, s.n);
    for (int i = 0; i < s.n; i++)
        ck_assert(s2.c[i].kind == s.c[i].kind && s2.c[i].lo == s.c[i].lo &&
                  s2.c[i].hi == s.c[i].hi && s2.c[i].weight == s.c[i].weight);
    free(js);
    /* 0.2f prints as 0.2 */
    ck_assert_int_eq(dae_corruption_set_task("denoise-g20", &s, NULL), DAE_OK);
    js = dae_corruption_set_json(&s);
    ck_assert_str_eq(js, "[{\"type\":\"gaussian\",\"sigma\":0.2,\"weight\":1}]");
    free(js);
    /* one object is a set of one */
    const char *single = "{\"type\":\"salt_pepper\",\"p\":[0.01,0.1]}";
    ck_assert_int_eq(dae_corruption_set_parse(single, strlen(single), &s, NULL), DAE_OK);
    ck_assert_int_eq(s.n, 1);

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"[{\"type\":\"speckle\",\"p\":0.1}]", "type \"speckle\" unknown"},
        {"[{\"type\":\"mask\"}]", "missing \"p\""},
        {"[{\"type\":\"mask\",\"p\":1.5}]", "p range [1.5, 1.5]"},
        {"[{\"type\":\"mask\",\"p\":[0.5,0.1]}]", "p range [0.5, 0.1]"},
        {"[{\"type\":\"gaussian\",\"sigma\":0.1,\"p\":0.1}]", "unknown key"},
        {"[{\"type\":\"gaussian\",\"sigma\":\"high\"}]", "expected a number or [lo, hi]"},
        {"[{\"type\":\"block\",\"k\":[2.5,4]}]", "expected integers"},
        {"[{\"type\":\"block\",\"k\":0}]", "k range"},
        {"[{\"type\":\"gaussian\",\"sigma\":0.1,\"weight\":0}]", "weight 0"},
        {"[{\"type\":\"gaussian\",\"sigma\":9}]", "sigma range"},
        {"[{\"type\":\"gaussian\",\"sigma\":0.1,\"clip\":0}]", "expected true or false"},
        {"[{\"type\":\"mask\",\"p\":0.1,\"clip\":false}]", "unknown key"},
        {"[1]", "corruption[0]: expected an object"},
        {"[{\"sigma\":0.1}]", "missing \"type\""},
        {"\"gaussian\"", "expected an array"},
        {"[{\"type\":\"none\"},", "invalid JSON near byte"},
        {"[{\"type\":\"none\"},{\"type\":\"none\"},{\"type\":\"none\"},{\"type\":\"none\"},"
         "{\"type\":\"none\"},{\"type\":\"none\"},{\"type\":\"none\"},{\"type\":\"none\"},"
         "{\"type\":\"none\"}]", "more than 8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        s.n = 3;
        ck_assert_int_eq(dae_corruption_set_parse(bad[i].json, strlen(bad[i].json), &s, &e),
                         DAE_EINVAL);
        ck_assert_int_eq(s.n, 0);
        ck_assert_msg(strstr(e.msg, bad[i].msg), "case %zu: \"%s\" lacks \"%s\"", i, e.msg,
                      bad[i].msg);
    }
    ck_assert_int_eq(dae_corruption_set_task("denoise-g30", &s, &e), DAE_EINVAL);
}
END_TEST

/* "clip": false: zero-mean noise, values outside [0,1], the same draws as the clipped kind;
 * the flag survives the JSON round trip and dae_corrupt_sample honours it. */
START_TEST(test_gaussian_noclip)
{
    dae_corruption_set s;
    const char *js = "[{\"type\":\"gaussian\",\"sigma\":0.5,\"clip\":false}]";
    ck_assert_int_eq(dae_corruption_set_parse(js, strlen(js), &s, NULL), DAE_OK);
    ck_assert_int_eq(s.c[0].noclip, 1);
    char *back = dae_corruption_set_json(&s);
    ck_assert_str_eq(back, "[{\"type\":\"gaussian\",\"sigma\":0.5,\"weight\":1,\"clip\":false}]");
    free(back);
    dae_rng r, r2;
    dae_rng_seed(&r, 11);
    dae_rng_seed(&r2, 11);
    enum { N = 20000 };
    static float clean[N], raw[N], clipped[N], viaset[N];
    fill(clean, N, 0.0f); /* black: clipping would bias the mean to sigma/sqrt(2 pi) */
    dae_corrupt_gaussian_noclip(&r, clean, N, 0.5f, raw);
    dae_corrupt_gaussian(&r2, clean, N, 0.5f, clipped);
    double mean = 0, cmean = 0;
    int below = 0;
    for (int i = 0; i < N; i++) {
        mean += raw[i], cmean += clipped[i];
        below += raw[i] < 0.0f;
        float c = raw[i] < 0.0f ? 0.0f : raw[i] > 1.0f ? 1.0f : raw[i];
        ck_assert_float_eq(c, clipped[i]);
    }
    mean /= N, cmean /= N;
    ck_assert_double_lt(fabs(mean), 0.015);
    ck_assert_double_lt(fabs(cmean - 0.5 / sqrt(2 * M_PI)), 0.015);
    ck_assert_int_gt(below, N / 3);
    dae_rng_seed(&r, 11);
    dae_corrupt_sample(&s, &r, clean, 1, 100, N / 100, viaset, NULL);
    ck_assert_int_eq(memcmp(viaset, raw, sizeof raw), 0);
}
END_TEST

START_TEST(test_out_shape)
{
    dae_corruption_set s = {.n = 0};
    dae_error e = {0};
    int oc, oh, ow;
    /* the empty set is the identity */
    ck_assert_int_eq(dae_corruption_out_shape(&s, 3, 32, 30, &oc, &oh, &ow, NULL), DAE_OK);
    ck_assert(oc == 3 && oh == 32 && ow == 30);
    float x[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, o[6], m[6];
    dae_rng r;
    dae_rng_seed(&r, 1);
    ck_assert_int_eq(dae_corrupt_sample(&s, &r, x, 1, 2, 3, o, m), 0);
    ck_assert(memcmp(x, o, sizeof x) == 0 && m[5] == 1.0f);
    /* a block larger than the image */
    ck_assert_int_eq(dae_corruption_set_add(&s, DAE_CORRUPT_BLOCK, 10, 14, 1, NULL), DAE_OK);
    ck_assert_int_eq(dae_corruption_out_shape(&s, 1, 12, 28, &oc, &oh, &ow, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "does not fit a 12x28 image"));
    ck_assert_int_eq(dae_corruption_out_shape(&s, 1, 0, 28, &oc, &oh, &ow, &e), DAE_EINVAL);
    ck_assert_int_eq(dae_corruption_out_shape(&s, 1, 28, 5000, &oc, &oh, &ow, &e), DAE_EINVAL);
    /* a hand-built set is validated too */
    dae_corruption_set hb = {.c = {{DAE_CORRUPT_BLOCK, 8, 4, 1.0f, 0}}, .n = 1};
    ck_assert_int_eq(dae_corruption_out_shape(&hb, 1, 28, 28, &oc, &oh, &ow, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "corruption[0]: corruption block: k range [8, 4]"));
    hb.c[0] = (dae_corruption){DAE_CORRUPT_MASK, 0.1f, 0.2f, 0.0f, 0};
    ck_assert_int_eq(dae_corruption_out_shape(&hb, 1, 28, 28, &oc, &oh, &ow, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "weight 0"));
    ck_assert_str_eq(dae_corrupt_kind_name(DAE_CORRUPT_SALT_PEPPER), "salt_pepper");
    ck_assert_int_eq(dae_corrupt_kind_from_name("blur"), DAE_CORRUPT_BLUR);
    ck_assert_int_eq(dae_corrupt_kind_from_name("Blur"), -1);
}
END_TEST

Suite *suite_corrupt(void)
{
    Suite *s = suite_create("corrupt");
    TCase *tc = tcase_create("corrupt");
    tcase_add_test(tc, test_gaussian_stats);
    tcase_add_test(tc, test_gaussian_blind_range);
    tcase_add_test(tc, test_mask_fraction);
    tcase_add_test(tc, test_salt_pepper);
    tcase_add_test(tc, test_block_geometry);
    tcase_add_test(tc, test_blur_matches_opencv);
    tcase_add_test(tc, test_down2);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_weights);
    tcase_add_test(tc, test_noise2noise);
    tcase_add_test(tc, test_recipe_json);
    tcase_add_test(tc, test_gaussian_noclip);
    tcase_add_test(tc, test_out_shape);
    suite_add_tcase(s, tc);
    return s;
}

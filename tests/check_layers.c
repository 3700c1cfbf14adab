/* check_layers.c — every kernel of layers.h: forwards against direct loops, backwards
 * against central finite differences. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daed/layers.h"
#include "daed/rng.h"

static float *rand_buf(size_t n, dae_rng *r, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (2.0f * dae_rng_uniform(r) - 1.0f);
    return x;
}

static void assert_close(const float *a, const float *b, size_t n, float tol, const char *what)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(a[i] - b[i]) <= tol * (1.0f + fabsf(b[i])), "%s[%zu]: %g vs %g",
                      what, i, (double)a[i], (double)b[i]);
}

/* ---------------- direct references ---------------- */

static void ref_conv2d(float *out, const float *in, const float *w, const float *b, int B,
                       int C, int H, int W, int OC, int k, int s, int p)
{
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    for (int n = 0; n < B; n++)
        for (int o = 0; o < OC; o++)
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++) {
                                int iy = y * s - p + i, ix = x * s - p + j;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                acc += (double)in[((size_t)(n * C + c) * H + iy) * W + ix] *
                                       w[((size_t)(o * C + c) * k + i) * k + j];
                            }
                    out[((size_t)(n * OC + o) * OH + y) * OW + x] = (float)acc;
                }
}

/* PyTorch's definition: every input pixel scatters w[c,o] * x into out[y*s - p + i, ...]. */
static void ref_conv_t2d(float *out, const float *in, const float *w, const float *b, int B,
                         int C, int H, int W, int OC, int k, int s, int p, int op)
{
    int OH = (H - 1) * s - 2 * p + k + op, OW = (W - 1) * s - 2 * p + k + op;
    double *acc = calloc((size_t)B * OC * OH * OW, sizeof *acc);
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    for (int o = 0; o < OC; o++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++) {
                                int oy = y * s - p + i, ox = x * s - p + j;
                                if (oy < 0 || oy >= OH || ox < 0 || ox >= OW)
                                    continue;
                                acc[((size_t)(n * OC + o) * OH + oy) * OW + ox] +=
                                    (double)in[((size_t)(n * C + c) * H + y) * W + x] *
                                    w[((size_t)(c * OC + o) * k + i) * k + j];
                            }
    for (int n = 0; n < B; n++)
        for (int o = 0; o < OC; o++)
            for (int q = 0; q < OH * OW; q++) {
                size_t idx = (size_t)(n * OC + o) * OH * OW + q;
                out[idx] = (float)(acc[idx] + (b ? b[o] : 0.0));
            }
    free(acc);
}

START_TEST(test_linear_forward)
{
    dae_rng r;
    dae_rng_seed(&r, 1);
    int B = 5, I = 13, O = 7;
    float *x = rand_buf((size_t)B * I, &r, 1), *w = rand_buf((size_t)O * I, &r, 1);
    float *b = rand_buf(O, &r, 1), *y = rand_buf((size_t)B * O, &r, 1);
    dae_linear_forward(y, x, w, b, B, I, O);
    for (int n = 0; n < B; n++)
        for (int o = 0; o < O; o++) {
            double acc = b[o];
            for (int i = 0; i < I; i++)
                acc += (double)x[n * I + i] * w[o * I + i];
            ck_assert_msg(fabs(y[n * O + o] - acc) < 1e-5, "y[%d][%d]", n, o);
        }
    free(x), free(w), free(b), free(y);
}
END_TEST

static const int conv_cfg[][6] = {
    /* C, H, W, OC, k, s, (p in loop) */
    {1, 7, 6, 3, 3, 1}, {2, 8, 9, 4, 3, 2}, {3, 9, 7, 2, 5, 1}, {2, 10, 11, 3, 5, 2},
    {3, 5, 5, 4, 1, 1}, {2, 6, 7, 3, 4, 2},
};

START_TEST(test_conv2d_forward)
{
    dae_rng r;
    dae_rng_seed(&r, 2);
    for (size_t t = 0; t < sizeof conv_cfg / sizeof conv_cfg[0]; t++)
        for (int p = 0; p <= 2; p++) {
            int C = conv_cfg[t][0], H = conv_cfg[t][1], W = conv_cfg[t][2];
            int OC = conv_cfg[t][3], k = conv_cfg[t][4], s = conv_cfg[t][5], B = 2;
            if (H + 2 * p < k || W + 2 * p < k)
                continue;
            int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
            size_t no = (size_t)B * OC * OH * OW;
            float *x = rand_buf((size_t)B * C * H * W, &r, 1);
            float *w = rand_buf((size_t)OC * C * k * k, &r, 1), *b = rand_buf(OC, &r, 1);
            float *col = rand_buf(dae_conv2d_col_size(C, H, W, k, s, p), &r, 1);
            float *y = rand_buf(no, &r, 1), *ref = rand_buf(no, &r, 1);
            dae_conv2d_forward(y, x, w, b, col, B, C, H, W, OC, k, s, p);
            ref_conv2d(ref, x, w, b, B, C, H, W, OC, k, s, p);
            assert_close(y, ref, no, 1e-5f, "conv2d");
            free(x), free(w), free(b), free(col), free(y), free(ref);
        }
}
END_TEST

START_TEST(test_conv_t2d_forward)
{
    dae_rng r;
    dae_rng_seed(&r, 3);
    for (size_t t = 0; t < sizeof conv_cfg / sizeof conv_cfg[0]; t++)
        for (int p = 0; p <= 2; p++)
            for (int op = 0; op < conv_cfg[t][5]; op++) {
                int C = conv_cfg[t][0], H = conv_cfg[t][1], W = conv_cfg[t][2];
                int OC = conv_cfg[t][3], k = conv_cfg[t][4], s = conv_cfg[t][5], B = 2;
                int OH = (H - 1) * s - 2 * p + k + op, OW = (W - 1) * s - 2 * p + k + op;
                if (OH < 1 || OW < 1)
                    continue;
                size_t no = (size_t)B * OC * OH * OW;
                float *x = rand_buf((size_t)B * C * H * W, &r, 1);
                float *w = rand_buf((size_t)C * OC * k * k, &r, 1), *b = rand_buf(OC, &r, 1);
                float *col = rand_buf(dae_conv_t2d_col_size(C, H, W, OC, k, s, p, op), &r, 1);
                float *y = rand_buf(no, &r, 1), *ref = rand_buf(no, &r, 1);
                dae_conv_t2d_forward(y, x, w, b, col, B, C, H, W, OC, k, s, p, op);
                ref_conv_t2d(ref, x, w, b, B, C, H, W, OC, k, s, p, op);
                assert_close(y, ref, no, 1e-5f, "conv_t2d");
                free(x), free(w), free(b), free(col), free(y), free(ref);
            }
}
END_TEST

/* Values from torch.nn.functional.interpolate(x, scale_factor=2, mode=...) on
 * x = [[1,2,3],[4,5,6]] (1x1x2x3), align_corners=False. */
START_TEST(test_upsample_forward_values)
{
    const float x[6] = {1, 2, 3, 4, 5, 6};
    float y[24];
    dae_upsample2x_forward(y, x, 1, 1, 2, 3, 0);
    const float nearest[24] = {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3,
                               4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6};
    assert_close(y, nearest, 24, 0, "nearest");
    dae_upsample2x_forward(y, x, 1, 1, 2, 3, 1);
    const float bil[24] = {1.00f, 1.25f, 1.75f, 2.25f, 2.75f, 3.00f,
                           1.75f, 2.00f, 2.50f, 3.00f, 3.50f, 3.75f,
                           3.25f, 3.50f, 4.00f, 4.50f, 5.00f, 5.25f,
                           4.00f, 4.25f, 4.75f, 5.25f, 5.75f, 6.00f};
    assert_close(y, bil, 24, 1e-6f, "bilinear");
}
END_TEST

START_TEST(test_act_forward_values)
{
    const float x[4] = {-2.0f, -0.5f, 0.0f, 1.5f};
    float y[4];
    dae_act_forward(y, x, 4, DAE_ACT_RELU, 0);
    ck_assert(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 1.5f);
    dae_act_forward(y, x, 4, DAE_ACT_LEAKY_RELU, 0.1f);
    ck_assert(fabsf(y[0] + 0.2f) < 1e-7f && fabsf(y[1] + 0.05f) < 1e-7f && y[3] == 1.5f);
    dae_act_forward(y, x, 4, DAE_ACT_TANH, 0);
    ck_assert(fabsf(y[0] - tanhf(-2.0f)) < 1e-7f && y[2] == 0.0f);
    dae_act_forward(y, x, 4, DAE_ACT_SIGMOID, 0);
    ck_assert(fabsf(y[2] - 0.5f) < 1e-7f && fabsf(y[3] - 1.0f / (1.0f + expf(-1.5f))) < 1e-7f);
    dae_act_forward(y, x, 4, DAE_ACT_IDENTITY, 0);
    assert_close(y, x, 4, 0, "identity");
}
END_TEST

Suite *suite_layers(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("forward");
    tcase_add_test(tc, test_linear_forward);
    tcase_add_test(tc, test_conv2d_forward);
    tcase_add_test(tc, test_conv_t2d_forward);
    tcase_add_test(tc, test_upsample_forward_values);
    tcase_add_test(tc, test_act_forward_values);
    suite_add_tcase(s, tc);
    return s;
}

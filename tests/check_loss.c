/* check_loss.c — losses and penalties against finite differences and hand values. */
#include "check_quiet.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daed/train/loss.h"

/* Test data from a fixed LCG (independent of the library's generator). */
static void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = lo + (hi - lo) * (float)(s >> 40) / 16777216.0f;
    }
}

/* Central difference of f at x[i]; f evaluated in double from float inputs. */
typedef double (*lossfn)(const float *out, const float *target, size_t n);
static double mse_val(const float *o, const float *t, size_t n)
{
    return dae_loss_mse(NULL, o, t, n);
}
static double bce_val(const float *o, const float *t, size_t n)
{
    return dae_loss_bce(NULL, o, t, n);
}

static void check_fd(lossfn f, float *out, const float *target, const float *grad, size_t n,
                     float h)
{
    for (size_t i = 0; i < n; i++) {
        float keep = out[i];
        out[i] = keep + h;
        double up = f(out, target, n);
        out[i] = keep - h;
        double dn = f(out, target, n);
        out[i] = keep;
        double fd = (up - dn) / (2.0 * (double)h);
        ck_assert_msg(fabs(fd - grad[i]) <= 2e-3 * fabs(fd) + 1e-6,
                      "value %zu: analytic %.8g, finite difference %.8g", i, grad[i], fd);
    }
}

START_TEST(test_mse_value_and_gradient)
{
    float out[4] = {0.5f, 0.25f, 1.0f, 0.0f}, tgt[4] = {0.0f, 0.25f, 0.5f, 1.0f}, d[4];
    /* (0.25 + 0 + 0.25 + 1) / 4 */
    ck_assert_double_eq_tol(dae_loss_mse(d, out, tgt, 4), 0.375, 1e-12);
    ck_assert_float_eq_tol(d[0], 0.25f, 1e-7f); /* 2*0.5/4 */
    ck_assert_float_eq_tol(d[3], -0.5f, 1e-7f);

    enum { N = 40 };
    float o[N], t[N], g[N];
    fill_uniform(o, N, 0.05f, 0.95f, 1);
    fill_uniform(t, N, 0.0f, 1.0f, 2);
    dae_loss_mse(g, o, t, N);
    check_fd(mse_val, o, t, g, N, 1e-2f);
}
END_TEST

START_TEST(test_bce_value_and_gradient)
{
    float p[2] = {0.5f, 0.9f}, t[2] = {1.0f, 0.0f};
    double want = (-log(0.5) - log(1.0 - 0.9)) / 2.0;
    ck_assert_double_eq_tol(dae_loss_bce(NULL, p, t, 2), want, 1e-6);

    enum { N = 40 };
    float o[N], tg[N], g[N];
    fill_uniform(o, N, 0.1f, 0.9f, 3); /* away from the clamp */
    fill_uniform(tg, N, 0.0f, 1.0f, 4);
    dae_loss_bce(g, o, tg, N);
    check_fd(bce_val, o, tg, g, N, 1e-3f);

    /* saturated outputs stay finite (clamped) */
    float sat[2] = {0.0f, 1.0f}, tt[2] = {1.0f, 0.0f}, gs[2];
    double v = dae_loss_bce(gs, sat, tt, 2);
    ck_assert(isfinite(v) && v > 10.0);
    ck_assert(isfinite(gs[0]) && isfinite(gs[1]));
    ck_assert(gs[0] < 0 && gs[1] > 0);
    /* a NaN output gives a NaN loss (so the trainer's NaN trap sees it) */
    float nanp[1] = {NAN}, t1[1] = {0.5f};
    ck_assert(isnan(dae_loss_bce(NULL, nanp, t1, 1)));
}
END_TEST

START_TEST(test_sparse_l1)
{
    enum { B = 3, D = 5 };
    float z[B * D], dz[B * D];
    fill_uniform(z, B * D, -1.0f, 1.0f, 5);
    for (int i = 0; i < B * D; i++)
        if (fabsf(z[i]) < 0.05f)
            z[i] = 0.3f; /* finite differences away from 0 */
    memset(dz, 0, sizeof dz);
    const float lambda = 0.7f;
    double v = dae_sparse_l1(dz, z, B, D, lambda);
    double want = 0;
    for (int i = 0; i < B * D; i++)
        want += fabs(z[i]);
    ck_assert_double_eq_tol(v, lambda * want / B, 1e-6);
    const float h = 1e-3f;
    for (int i = 0; i < B * D; i++) {
        float keep = z[i];
        z[i] = keep + h;
        double up = dae_sparse_l1(NULL, z, B, D, lambda);
        z[i] = keep - h;
        double dn = dae_sparse_l1(NULL, z, B, D, lambda);
        z[i] = keep;
        ck_assert_double_eq_tol((up - dn) / (2 * h), dz[i], 1e-3);
    }
    /* adds into dz */
    float one[1] = {2.0f}, d1[1] = {1.0f};
    dae_sparse_l1(d1, one, 1, 1, 0.5f);
    ck_assert_float_eq_tol(d1[0], 1.5f, 1e-7f);
}
END_TEST

/* The contractive penalty as a function of (W, b) for a batch x, from scratch. */
static double contractive_ref(const float *w, const float *b, const float *x, int B, int I,
                              int H, dae_act act, float lambda)
{
    double total = 0;
    for (int s = 0; s < B; s++)
        for (int j = 0; j < H; j++) {
            double a = b[j];
            for (int i = 0; i < I; i++)
                a += (double)w[j * I + i] * x[s * I + i];
            double d;
            if (act == DAE_ACT_SIGMOID) {
                double h = 1.0 / (1.0 + exp(-a));
                d = h * (1 - h);
            } else {
                double h = tanh(a);
                d = 1 - h * h;
            }
            double sj = 0;
            for (int i = 0; i < I; i++)
                sj += (double)w[j * I + i] * w[j * I + i];
            total += d * d * sj;
        }
    return lambda * total / B;
}

static void contractive_case(dae_act act)
{
    enum { B = 4, I = 6, H = 3 };
    float w[H * I], b[H], x[B * I], h[B * H], dh[B * H], dw[H * I], db[H], wsq[H];
    fill_uniform(w, H * I, -0.8f, 0.8f, 11);
    fill_uniform(b, H, -0.5f, 0.5f, 12);
    fill_uniform(x, B * I, 0.0f, 1.0f, 13);
    const float lambda = 0.3f;
    for (int s = 0; s < B; s++)
        for (int j = 0; j < H; j++) {
            float a = b[j];
            for (int i = 0; i < I; i++)
                a += w[j * I + i] * x[s * I + i];
            h[s * H + j] = act == DAE_ACT_SIGMOID ? 1.0f / (1.0f + expf(-a)) : tanhf(a);
        }
    memset(dh, 0, sizeof dh);
    memset(dw, 0, sizeof dw);
    double v = dae_contractive_penalty(dh, dw, h, w, wsq, B, I, H, act, lambda);
    ck_assert_double_eq_tol(v, contractive_ref(w, b, x, B, I, H, act, lambda), 1e-5);
    /* the encoder's own backward: da = dh * act'(a), dW += da^T x, db = sum da */
    memset(db, 0, sizeof db);
    for (int s = 0; s < B; s++)
        for (int j = 0; j < H; j++) {
            float hv = h[s * H + j];
            float da = dh[s * H + j] * (act == DAE_ACT_SIGMOID ? hv * (1 - hv) : 1 - hv * hv);
            db[j] += da;
            for (int i = 0; i < I; i++)
                dw[j * I + i] += da * x[s * I + i];
        }
    const float eps = 1e-3f;
    for (int k = 0; k < H * I + H; k++) {
        float *p = k < H * I ? &w[k] : &b[k - H * I];
        float g = k < H * I ? dw[k] : db[k - H * I];
        float keep = *p;
        *p = keep + eps;
        double up = contractive_ref(w, b, x, B, I, H, act, lambda);
        *p = keep - eps;
        double dn = contractive_ref(w, b, x, B, I, H, act, lambda);
        *p = keep;
        double fd = (up - dn) / (2 * eps);
        ck_assert_msg(fabs(fd - g) <= 1e-3 * fabs(fd) + 2e-5,
                      "param %d: analytic %.8g, finite difference %.8g", k, g, fd);
    }
}

START_TEST(test_contractive_sigmoid)
{
    contractive_case(DAE_ACT_SIGMOID);
}
END_TEST

START_TEST(test_contractive_tanh)
{
    contractive_case(DAE_ACT_TANH);
}
END_TEST

Suite *suite_loss(void)
{
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("gradients");
    tcase_add_test(tc, test_mse_value_and_gradient);
    tcase_add_test(tc, test_bce_value_and_gradient);
    tcase_add_test(tc, test_sparse_l1);
    tcase_add_test(tc, test_contractive_sigmoid);
    tcase_add_test(tc, test_contractive_tanh);
    suite_add_tcase(s, tc);
    return s;
}

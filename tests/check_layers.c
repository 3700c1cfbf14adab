/* check_layers.c — every kernel of layers.h: forwards against direct loops, backwards
 * against central finite differences. */
#include "check_quiet.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/layers.h"
#include "daed/core/rng.h"

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
            float *col =
                rand_buf(dae_conv2d_col_size(&(dae_conv_geom){B, C, H, W, OC, k, s, p, 0}), &r, 1);
            float *y = rand_buf(no, &r, 1), *ref = rand_buf(no, &r, 1);
            dae_conv2d_forward(y, x, w, b, col, &(dae_conv_geom){B, C, H, W, OC, k, s, p, 0});
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
                float *col = rand_buf(
                    dae_conv_t2d_col_size(&(dae_conv_geom){B, C, H, W, OC, k, s, p, op}), &r, 1);
                float *y = rand_buf(no, &r, 1), *ref = rand_buf(no, &r, 1);
                dae_conv_t2d_forward(y, x, w, b, col,
                                     &(dae_conv_geom){B, C, H, W, OC, k, s, p, op});
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


/* ---------------- gradient checks ----------------
 * Loss L = sum_i R_i y_i (R fixed random), accumulated in double, so dL/dy = R is the dout
 * we feed the backward pass. Each input, weight and bias value v is bumped to v +- h and
 * (L+ - L-)/(v+ - v-) is compared with the analytic value.
 * Error budget: the forward runs in float32, so each output carries a relative rounding
 * error of a few 2^-24 (~6e-8); only outputs that depend on v change between L+ and L-
 * (the rest are recomputed bit-identically), at most ~k*k*OC*4 of them here, each |y| <~ 5,
 * so |L+ - L-| is off by <~ 300 * 6e-8 * 5 ~ 1e-4 at worst, i.e. ~5e-3 after dividing by
 * 2h = 2e-2, and typically 10x less (the errors are random, not aligned). Linear layers
 * have no truncation error; for tanh/sigmoid h^2/6 times the third derivative is < 2e-5.
 * Relu kinks are kept more than 2h away. Hence |num - ana| <= 3e-3 (1 + |ana|), while a
 * wrong index or a missing term gives errors of order 0.1 to 1. */
#define GC_H 1e-2f
#define GC_TOL 3e-3

enum { K_LIN, K_CONV, K_CONVT, K_ACT, K_UP };

typedef struct {
    int kind, B, C, H, W, OC, k, s, p, op, bilinear;
    dae_act act;
    float slope;
    float *x, *w, *b, *col, *y;
    size_t nx, nw, nb, ny;
    double *R;
} lctx;

static void lfwd(lctx *c)
{
    switch (c->kind) {
    case K_LIN: dae_linear_forward(c->y, c->x, c->w, c->b, c->B, c->C, c->OC); break;
    case K_CONV:
        dae_conv2d_forward(c->y, c->x, c->w, c->b, c->col,
                           &(dae_conv_geom){c->B, c->C, c->H, c->W, c->OC, c->k, c->s, c->p, 0});
        break;
    case K_CONVT:
        dae_conv_t2d_forward(
            c->y, c->x, c->w, c->b, c->col,
            &(dae_conv_geom){c->B, c->C, c->H, c->W, c->OC, c->k, c->s, c->p, c->op});
        break;
    case K_ACT: dae_act_forward(c->y, c->x, c->nx, c->act, c->slope); break;
    case K_UP: dae_upsample2x_forward(c->y, c->x, c->B, c->C, c->H, c->W, c->bilinear); break;
    }
}

static double lloss(lctx *c)
{
    lfwd(c);
    double L = 0;
    for (size_t i = 0; i < c->ny; i++)
        L += c->R[i] * c->y[i];
    return L;
}

static void fd_compare(lctx *c, float *v, size_t n, const float *ana, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        float save = v[i];
        float hi = save + GC_H, lo = save - GC_H;
        v[i] = hi;
        double lp = lloss(c);
        v[i] = lo;
        double lm = lloss(c);
        v[i] = save;
        double num = (lp - lm) / ((double)hi - (double)lo);
        ck_assert_msg(fabs(num - ana[i]) <= GC_TOL * (1.0 + fabs(ana[i])),
                      "%s kind %d (C%d H%d W%d OC%d k%d s%d p%d op%d): [%zu] numeric %g, "
                      "analytic %g",
                      what, c->kind, c->C, c->H, c->W, c->OC, c->k, c->s, c->p, c->op, i, num,
                      (double)ana[i]);
    }
}

/* Runs the backward pass with dout = R and compares every gradient with differences. */
static void gradcheck(lctx *c, dae_rng *r)
{
    c->R = malloc(c->ny * sizeof *c->R);
    for (size_t i = 0; i < c->ny; i++)
        c->R[i] = 2.0 * dae_rng_uniform_d(r) - 1.0;
    float *dout = malloc(c->ny * sizeof *dout), *din = malloc(c->nx * sizeof *din);
    for (size_t i = 0; i < c->ny; i++)
        dout[i] = (float)c->R[i];
    for (size_t i = 0; i < c->nx; i++)
        din[i] = NAN; /* backward must overwrite din */
    /* backward must add into dw, db: start them at 0.5 */
    float *dw = malloc((c->nw + 1) * sizeof *dw), *db = malloc((c->nb + 1) * sizeof *db);
    for (size_t i = 0; i < c->nw; i++)
        dw[i] = 0.5f;
    for (size_t i = 0; i < c->nb; i++)
        db[i] = 0.5f;
    lfwd(c);
    switch (c->kind) {
    case K_LIN: dae_linear_backward(din, dw, db, dout, c->x, c->w, c->B, c->C, c->OC); break;
    case K_CONV:
        dae_conv2d_backward(din, dw, db, dout, c->x, c->w, c->col,
                            &(dae_conv_geom){c->B, c->C, c->H, c->W, c->OC, c->k, c->s, c->p, 0});
        break;
    case K_CONVT:
        dae_conv_t2d_backward(
            din, dw, db, dout, c->x, c->w, c->col,
            &(dae_conv_geom){c->B, c->C, c->H, c->W, c->OC, c->k, c->s, c->p, c->op});
        break;
    case K_ACT: dae_act_backward(din, dout, c->y, c->nx, c->act, c->slope); break;
    case K_UP: dae_upsample2x_backward(din, dout, c->B, c->C, c->H, c->W, c->bilinear); break;
    }
    for (size_t i = 0; i < c->nw; i++)
        dw[i] -= 0.5f;
    for (size_t i = 0; i < c->nb; i++)
        db[i] -= 0.5f;
    fd_compare(c, c->x, c->nx, din, "din");
    fd_compare(c, c->w, c->nw, dw, "dw");
    fd_compare(c, c->b, c->nb, db, "db");
    free(c->R), free(dout), free(din), free(dw), free(db);
}

static void lctx_alloc(lctx *c, dae_rng *r, size_t ncol)
{
    c->x = rand_buf(c->nx, r, 1);
    c->w = rand_buf(c->nw, r, 0.5f);
    c->b = rand_buf(c->nb, r, 0.5f);
    c->col = rand_buf(ncol, r, 1);
    c->y = rand_buf(c->ny, r, 1);
}

static void lctx_free(lctx *c)
{
    free(c->x), free(c->w), free(c->b), free(c->col), free(c->y);
}

START_TEST(test_linear_grad)
{
    dae_rng r;
    dae_rng_seed(&r, 11);
    lctx c = {.kind = K_LIN, .B = 3, .C = 5, .OC = 4};
    c.nx = 15, c.nw = 20, c.nb = 4, c.ny = 12;
    lctx_alloc(&c, &r, 0);
    gradcheck(&c, &r);
    lctx_free(&c);
}
END_TEST

START_TEST(test_conv2d_grad)
{
    /* C, H, W, OC, k, s, p */
    static const int cfg[][7] = {{2, 6, 5, 3, 3, 1, 0}, {2, 6, 5, 3, 3, 1, 1},
                                 {2, 7, 6, 3, 3, 2, 1}, {2, 8, 7, 2, 3, 2, 0},
                                 {1, 7, 7, 2, 5, 1, 2}, {2, 9, 8, 2, 5, 2, 0},
                                 {2, 8, 8, 2, 5, 2, 1}, {3, 4, 5, 2, 1, 1, 0}};
    dae_rng r;
    dae_rng_seed(&r, 12);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int *q = cfg[t];
        lctx c = {.kind = K_CONV, .B = 2, .C = q[0], .H = q[1], .W = q[2], .OC = q[3],
                  .k = q[4], .s = q[5], .p = q[6]};
        int OH = (c.H + 2 * c.p - c.k) / c.s + 1, OW = (c.W + 2 * c.p - c.k) / c.s + 1;
        c.nx = (size_t)c.B * c.C * c.H * c.W, c.nw = (size_t)c.OC * c.C * c.k * c.k;
        c.nb = c.OC, c.ny = (size_t)c.B * c.OC * OH * OW;
        lctx_alloc(
            &c, &r,
            dae_conv2d_col_size(&(dae_conv_geom){c.B, c.C, c.H, c.W, c.OC, c.k, c.s, c.p, 0}));
        gradcheck(&c, &r);
        lctx_free(&c);
    }
}
END_TEST

START_TEST(test_conv_t2d_grad)
{
    /* C, H, W, OC, k, s, p, op */
    static const int cfg[][8] = {{2, 3, 4, 3, 3, 2, 1, 0}, {2, 3, 4, 3, 3, 2, 1, 1},
                                 {2, 4, 3, 2, 4, 2, 1, 0}, {3, 3, 3, 2, 3, 1, 1, 0},
                                 {1, 3, 3, 2, 5, 2, 2, 1}, {2, 2, 3, 2, 3, 1, 0, 0},
                                 {2, 3, 3, 2, 5, 2, 0, 1}};
    dae_rng r;
    dae_rng_seed(&r, 13);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int *q = cfg[t];
        lctx c = {.kind = K_CONVT, .B = 2, .C = q[0], .H = q[1], .W = q[2], .OC = q[3],
                  .k = q[4], .s = q[5], .p = q[6], .op = q[7]};
        int OH = (c.H - 1) * c.s - 2 * c.p + c.k + c.op;
        int OW = (c.W - 1) * c.s - 2 * c.p + c.k + c.op;
        c.nx = (size_t)c.B * c.C * c.H * c.W, c.nw = (size_t)c.OC * c.C * c.k * c.k;
        c.nb = c.OC, c.ny = (size_t)c.B * c.OC * OH * OW;
        lctx_alloc(
            &c, &r,
            dae_conv_t2d_col_size(&(dae_conv_geom){c.B, c.C, c.H, c.W, c.OC, c.k, c.s, c.p, c.op}));
        gradcheck(&c, &r);
        lctx_free(&c);
    }
}
END_TEST

START_TEST(test_act_grad)
{
    dae_rng r;
    dae_rng_seed(&r, 14);
    for (int a = DAE_ACT_IDENTITY; a <= DAE_ACT_SIGMOID; a++) {
        lctx c = {.kind = K_ACT, .act = (dae_act)a, .slope = 0.2f};
        c.nx = c.ny = 40;
        lctx_alloc(&c, &r, 0);
        for (size_t i = 0; i < c.nx; i++) /* away from the kink at 0 (more than 2h) */
            c.x[i] = (c.x[i] < 0 ? -0.05f : 0.05f) + 2.0f * c.x[i];
        gradcheck(&c, &r);
        /* in place: din may alias dout, and forward out may alias in */
        float v[3] = {-1.0f, 0.5f, 2.0f}, y[3], g[3] = {1, 1, 1}, expect[3];
        dae_act_forward(y, v, 3, (dae_act)a, 0.2f);
        dae_act_backward(expect, g, y, 3, (dae_act)a, 0.2f);
        dae_act_backward(g, g, y, 3, (dae_act)a, 0.2f);
        ck_assert(memcmp(g, expect, sizeof g) == 0);
        dae_act_forward(v, v, 3, (dae_act)a, 0.2f);
        ck_assert(memcmp(v, y, sizeof v) == 0);
        lctx_free(&c);
    }
}
END_TEST

START_TEST(test_upsample_grad)
{
    static const int hw[][2] = {{3, 4}, {1, 1}, {1, 3}, {4, 2}};
    dae_rng r;
    dae_rng_seed(&r, 15);
    for (int bil = 0; bil < 2; bil++)
        for (size_t t = 0; t < 4; t++) {
            lctx c = {.kind = K_UP, .B = 2, .C = 2, .H = hw[t][0], .W = hw[t][1],
                      .bilinear = bil};
            c.nx = (size_t)c.B * c.C * c.H * c.W, c.ny = 4 * c.nx;
            lctx_alloc(&c, &r, 0);
            gradcheck(&c, &r);
            lctx_free(&c);
        }
}
END_TEST

/* Batches that split into image groups of different sizes (B = 3 with 2 images per group
 * at 20x20 pixels) and images large enough to go one at a time (32x32 = 1024 pixels). */
START_TEST(test_conv_grouping)
{
    dae_rng r;
    dae_rng_seed(&r, 16);
    static const int hw[] = {20, 32};
    for (int t = 0; t < 2; t++) {
        int B = 3, C = 2, H = hw[t], W = hw[t], OC = 3, k = 3, s = 1, p = 1;
        size_t nx = (size_t)B * C * H * W, ny = (size_t)B * OC * H * W;
        float *x = rand_buf(nx, &r, 1), *w = rand_buf((size_t)OC * C * k * k, &r, 1);
        float *b = rand_buf(OC, &r, 1), *y = rand_buf(ny, &r, 1), *ref = rand_buf(ny, &r, 1);
        float *col =
            rand_buf(dae_conv2d_col_size(&(dae_conv_geom){B, C, H, W, OC, k, s, p, 0}), &r, 1);
        dae_conv2d_forward(y, x, w, b, col, &(dae_conv_geom){B, C, H, W, OC, k, s, p, 0});
        ref_conv2d(ref, x, w, b, B, C, H, W, OC, k, s, p);
        assert_close(y, ref, ny, 1e-5f, "conv2d grouped");
        free(col);
        /* the same shapes transposed: (B, C, H, W) -> (B, OC, H, W) with k3 s1 p1 */
        float *wt = rand_buf((size_t)C * OC * k * k, &r, 1);
        col = rand_buf(dae_conv_t2d_col_size(&(dae_conv_geom){B, C, H, W, OC, k, s, p, 0}), &r, 1);
        dae_conv_t2d_forward(y, x, wt, b, col, &(dae_conv_geom){B, C, H, W, OC, k, s, p, 0});
        ref_conv_t2d(ref, x, wt, b, B, C, H, W, OC, k, s, p, 0);
        assert_close(y, ref, ny, 1e-5f, "conv_t2d grouped");
        free(x), free(w), free(wt), free(b), free(y), free(ref), free(col);
    }
    /* gradients across the group split: conv at 20x20 output, convT at 20x20 input */
    lctx c = {.kind = K_CONV, .B = 3, .C = 1, .H = 20, .W = 20, .OC = 2, .k = 3, .s = 1,
              .p = 1};
    c.nx = 3 * 400, c.nw = 2 * 9, c.nb = 2, c.ny = 3 * 2 * 400;
    lctx_alloc(&c, &r, dae_conv2d_col_size(&(dae_conv_geom){3, 1, 20, 20, 2, 3, 1, 1, 0}));
    gradcheck(&c, &r);
    lctx_free(&c);
    lctx d = {.kind = K_CONVT, .B = 3, .C = 1, .H = 20, .W = 20, .OC = 2, .k = 3, .s = 2,
              .p = 1, .op = 1};
    d.nx = 3 * 400, d.nw = 2 * 9, d.nb = 2, d.ny = 3 * 2 * 1600;
    lctx_alloc(&d, &r, dae_conv_t2d_col_size(&(dae_conv_geom){3, 1, 20, 20, 2, 3, 2, 1, 1}));
    gradcheck(&d, &r);
    lctx_free(&d);
}
END_TEST

/* One image alone (no grouping) wide enough for several row bands: the banded backward,
 * stride 1 and 2 and the direct 1x1 path. */
START_TEST(test_conv2d_grad_bands)
{
    /* C, H, W, OC, k, s, p: bands of 11, 22 and 8 output rows */
    static const int cfg[][7] = {{2, 26, 44, 2, 3, 1, 1}, {2, 50, 45, 2, 3, 2, 1},
                                 {2, 20, 60, 2, 1, 1, 0}};
    dae_rng r;
    dae_rng_seed(&r, 19);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int *q = cfg[t];
        lctx c = {.kind = K_CONV, .B = 1, .C = q[0], .H = q[1], .W = q[2], .OC = q[3],
                  .k = q[4], .s = q[5], .p = q[6]};
        int OH = (c.H + 2 * c.p - c.k) / c.s + 1, OW = (c.W + 2 * c.p - c.k) / c.s + 1;
        ck_assert_int_gt(OH * OW, DAE_CONV_BAND_COLS);
        c.nx = (size_t)c.C * c.H * c.W, c.nw = (size_t)c.OC * c.C * c.k * c.k;
        c.nb = c.OC, c.ny = (size_t)c.OC * OH * OW;
        lctx_alloc(&c, &r,
                   dae_conv2d_col_size(&(dae_conv_geom){1, c.C, c.H, c.W, c.OC, c.k, c.s, c.p, 0}));
        gradcheck(&c, &r);
        lctx_free(&c);
    }
}
END_TEST

/* dae_conv2d_forward_ex: bias and activation fused, split over threads by images or by
 * output rows, large images in row bands; against the direct loop then the activation. */
START_TEST(test_conv2d_forward_ex)
{
    dae_rng r;
    dae_rng_seed(&r, 17);
    /* C, H, W, OC, k, s, p: small (grouped), 48x48 (bands of 21 rows), 1x1 direct, s2 */
    static const int cfg[][7] = {{2, 9, 7, 3, 3, 1, 1}, {2, 48, 48, 3, 3, 1, 1},
                                 {3, 40, 33, 2, 1, 1, 0}, {2, 70, 66, 3, 3, 2, 1}};
    static const dae_act acts[] = {DAE_ACT_IDENTITY, DAE_ACT_RELU, DAE_ACT_LEAKY_RELU,
                                   DAE_ACT_SIGMOID};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++)
        for (int B = 1; B <= 3; B += 2)
            for (int th = 1; th <= 3; th++) {
                const int *q = cfg[t];
                int C = q[0], H = q[1], W = q[2], OC = q[3], k = q[4], s = q[5], p = q[6];
                int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
                size_t no = (size_t)B * OC * OH * OW;
                float *x = rand_buf((size_t)B * C * H * W, &r, 1);
                float *w = rand_buf((size_t)OC * C * k * k, &r, 1), *b = rand_buf(OC, &r, 1);
                float *ref = rand_buf(no, &r, 1), *y = rand_buf(no, &r, 1);
                float *cols[3];
                for (int i = 0; i < th; i++)
                    cols[i] = rand_buf(
                        dae_conv2d_col_size(&(dae_conv_geom){B, C, H, W, OC, k, s, p, 0}), &r, 1);
                ref_conv2d(ref, x, w, b, B, C, H, W, OC, k, s, p);
                for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
                    float *ra = malloc(no * sizeof *ra);
                    dae_act_forward(ra, ref, no, acts[a], 0.2f);
                    dae_conv2d_forward_ex(y, x, w, NULL, b, cols, th,
                                          &(dae_conv_geom){B, C, H, W, OC, k, s, p, 0}, acts[a],
                                          0.2f);
                    assert_close(y, ra, no, 1e-5f, "conv2d_ex");
                    free(ra);
                }
                for (int i = 0; i < th; i++)
                    free(cols[i]);
                free(x), free(w), free(b), free(ref), free(y);
            }
}
END_TEST

/* dae_conv_t2d_forward_ex: the activation applied with the bias. */
START_TEST(test_conv_t2d_forward_ex)
{
    dae_rng r;
    dae_rng_seed(&r, 18);
    int B = 3, C = 2, H = 9, W = 8, OC = 3, k = 3, s = 2, p = 1, op = 1;
    int OH = (H - 1) * s - 2 * p + k + op, OW = (W - 1) * s - 2 * p + k + op;
    size_t no = (size_t)B * OC * OH * OW;
    float *x = rand_buf((size_t)B * C * H * W, &r, 1), *w = rand_buf((size_t)C * OC * 9, &r, 1);
    float *b = rand_buf(OC, &r, 1), *ref = rand_buf(no, &r, 1), *y = rand_buf(no, &r, 1);
    float *col =
        rand_buf(dae_conv_t2d_col_size(&(dae_conv_geom){B, C, H, W, OC, k, s, p, op}), &r, 1);
    ref_conv_t2d(ref, x, w, b, B, C, H, W, OC, k, s, p, op);
    dae_act_forward(ref, ref, no, DAE_ACT_LEAKY_RELU, 0.3f);
    dae_conv_t2d_forward_ex(y, x, w, NULL, b, col, &(dae_conv_geom){B, C, H, W, OC, k, s, p, op},
                            DAE_ACT_LEAKY_RELU, 0.3f);
    assert_close(y, ref, no, 1e-5f, "conv_t2d_ex");
    free(x), free(w), free(b), free(ref), free(y), free(col);
}
END_TEST

/* 3x3 stride-1 padding-1 convolutions (the direct kernels of conv3.c where the CPU has
 * them, images of DAE_CONV3_MIN_PIXELS or more) against the im2col path: the same
 * convolution with padding 0 on an explicitly zero-padded input. Odd sizes, C != OC, every
 * output-channel remainder of the 8- and 3-channel blocks, widths below and above a vector,
 * an image of more than 4096 pixels (weight-gradient chunks), channels in multiples of 16
 * on narrow rows (the weight gradient's channel-vector path), batches > 1; then finite
 * differences on a few of them. */
START_TEST(test_conv3x3)
{
    /* B, C, H, W, OC */
    static const int cfg[][5] = {{2, 3, 9, 11, 4},   {3, 2, 1, 70, 3},  {1, 5, 67, 1, 9},
                                 {2, 4, 13, 37, 11}, {1, 1, 6, 50, 1},  {2, 9, 33, 18, 2},
                                 {1, 2, 70, 61, 5},  {3, 1, 23, 3, 32}, {2, 32, 9, 40, 1},
                                 {2, 16, 12, 20, 5}, {3, 48, 5, 17, 7} /* channels x16 */,
                                 {2, 3, 7, 5, 4} /* below DAE_CONV3_MIN_PIXELS */};
    static const dae_act acts[] = {DAE_ACT_IDENTITY, DAE_ACT_RELU, DAE_ACT_LEAKY_RELU,
                                   DAE_ACT_TANH};
    dae_rng r;
    dae_rng_seed(&r, 23);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        int B = cfg[t][0], C = cfg[t][1], H = cfg[t][2], W = cfg[t][3], OC = cfg[t][4];
        int PH = H + 2, PW = W + 2;
        size_t nx = (size_t)B * C * H * W, ny = (size_t)B * OC * H * W, nw = (size_t)OC * C * 9;
        size_t npx = (size_t)B * C * PH * PW;
        float *x = rand_buf(nx, &r, 1), *w = rand_buf(nw, &r, 1), *b = rand_buf(OC, &r, 1);
        float *dy = rand_buf(ny, &r, 1), *y = rand_buf(ny, &r, 1), *yr = rand_buf(ny, &r, 1);
        float *xp = calloc(npx, sizeof *xp), *dxp = rand_buf(npx, &r, 1);
        float *dx = rand_buf(nx, &r, 1), *dw = calloc(nw, sizeof *dw);
        float *dwr = calloc(nw, sizeof *dwr), *db = calloc(OC, sizeof *db);
        float *dbr = calloc(OC, sizeof *dbr);
        for (int n = 0; n < B * C; n++)
            for (int i = 0; i < H; i++)
                memcpy(xp + ((size_t)n * PH + i + 1) * PW + 1, x + ((size_t)n * H + i) * W,
                       (size_t)W * sizeof *x);
        float *col =
            rand_buf(dae_conv2d_col_size(&(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0}), &r, 1);
        float *colr =
            rand_buf(dae_conv2d_col_size(&(dae_conv_geom){B, C, PH, PW, OC, 3, 1, 0, 0}), &r, 1);
        /* forward, each activation fused, on 1 and 2 threads */
        dae_conv2d_forward(yr, xp, w, b, colr, &(dae_conv_geom){B, C, PH, PW, OC, 3, 1, 0, 0});
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
            for (int th = 1; th <= 2; th++) {
                float *ra = malloc(ny * sizeof *ra), *cols[2] = {col, NULL};
                if (th == 2) /* thread 1's scratch */
                    cols[1] = rand_buf(
                        dae_conv2d_col_size(&(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0}), &r, 1);
                dae_act_forward(ra, yr, ny, acts[a], 0.1f);
                dae_conv2d_forward_ex(y, x, w, NULL, b, cols, th,
                                      &(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0}, acts[a], 0.1f);
                assert_close(y, ra, ny, 1e-5f, "conv3x3 forward");
                if (th == 2)
                    free(cols[1]);
                free(ra);
            }
        ref_conv2d(yr, x, w, b, B, C, H, W, OC, 3, 1, 1);
        dae_conv2d_forward(y, x, w, b, col, &(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0});
        assert_close(y, yr, ny, 1e-5f, "conv3x3 forward vs loops");
        /* backward: din overwritten (starts as garbage), dw and db added into */
        dae_conv2d_backward(dx, dw, db, dy, x, w, col,
                            &(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0});
        dae_conv2d_backward(dxp, dwr, dbr, dy, xp, w, colr,
                            &(dae_conv_geom){B, C, PH, PW, OC, 3, 1, 0, 0});
        for (int n = 0; n < B * C; n++)
            for (int i = 0; i < H; i++)
                assert_close(dx + ((size_t)n * H + i) * W,
                             dxp + ((size_t)n * PH + i + 1) * PW + 1, (size_t)W, 1e-4f,
                             "conv3x3 din");
        assert_close(dw, dwr, nw, 1e-4f, "conv3x3 dw");
        assert_close(db, dbr, OC, 1e-4f, "conv3x3 db");
        /* each gradient alone, and dw accumulates */
        float *dx2 = rand_buf(nx, &r, 1);
        dae_conv2d_backward(dx2, NULL, NULL, dy, x, w, col,
                            &(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0});
        assert_close(dx2, dx, nx, 0.0f, "conv3x3 din alone");
        dae_conv2d_backward(NULL, dw, NULL, dy, x, w, col,
                            &(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0});
        for (size_t i = 0; i < nw; i++)
            dwr[i] *= 2.0f;
        assert_close(dw, dwr, nw, 1e-4f, "conv3x3 dw added");
        free(x), free(w), free(b), free(dy), free(y), free(yr), free(xp), free(dxp), free(dx);
        free(dw), free(dwr), free(db), free(dbr), free(col), free(colr), free(dx2);
    }
    /* the scratch stays within the bound of layers.h, direct path or not (C, H, W, OC) */
    static const int sz[][4] = {{96, 8, 8, 96}, {96, 8, 8, 64}, {32, 40, 40, 32},
                                {1, 144, 144, 32}, {32, 144, 144, 1}, {256, 9, 9, 256}};
    for (size_t t = 0; t < sizeof sz / sizeof sz[0]; t++)
        for (int B = 1; B <= 64; B *= 4) {
            size_t C = (size_t)sz[t][0], P = (size_t)sz[t][1] * sz[t][2], OC = (size_t)sz[t][3];
            size_t g = (size_t)B * P < DAE_CONV_GROUP_COLS ? (size_t)B * P : DAE_CONV_GROUP_COLS;
            ck_assert_uint_le(dae_conv2d_col_size(&(dae_conv_geom){B, (int)C, sz[t][1], sz[t][2],
                                                                   (int)OC, 3, 1, 1, 0}),
                              (C * 9 + OC) * (g > P ? g : P));
        }
    /* finite differences: B, C, H, W, OC */
    static const int gc[][5] = {{2, 3, 8, 9, 4}, {3, 2, 9, 8, 11}, {2, 5, 4, 19, 1}};
    for (size_t t = 0; t < sizeof gc / sizeof gc[0]; t++) {
        const int *q = gc[t];
        lctx c = {.kind = K_CONV, .B = q[0], .C = q[1], .H = q[2], .W = q[3], .OC = q[4],
                  .k = 3, .s = 1, .p = 1};
        c.nx = (size_t)c.B * c.C * c.H * c.W, c.nw = (size_t)c.OC * c.C * 9;
        c.nb = c.OC, c.ny = (size_t)c.B * c.OC * c.H * c.W;
        lctx_alloc(&c, &r,
                   dae_conv2d_col_size(&(dae_conv_geom){c.B, c.C, c.H, c.W, c.OC, 3, 1, 1, 0}));
        gradcheck(&c, &r);
        lctx_free(&c);
    }
}
END_TEST

/* The taps kernel (stride-1 small images, stride 2, stride-2 transposed; conv3.c) against
 * the direct loops: odd and even sizes, batches that group several images side by side
 * and one alone, output channels off the blocks of 8, fused and separate activations. On
 * a CPU without AVX-512 the same calls test the im2col path. */
START_TEST(test_conv_taps)
{
    /* B, C, H, W, OC, s */
    static const int cfg[][6] = {{1, 3, 7, 7, 15, 1},  {5, 2, 5, 6, 9, 1},  {3, 4, 7, 7, 16, 2},
                                 {1, 2, 28, 28, 8, 2}, {4, 3, 9, 6, 5, 2},  {2, 1, 1, 1, 3, 2},
                                 {7, 5, 14, 13, 11, 2}, {1, 6, 40, 33, 4, 2}, {9, 2, 3, 2, 17, 1}};
    static const dae_act acts[] = {DAE_ACT_IDENTITY, DAE_ACT_RELU, DAE_ACT_SIGMOID};
    dae_rng r;
    dae_rng_seed(&r, 29);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++)
        for (int a = 0; a < 3; a++)
            for (int tr = 0; tr <= (cfg[t][5] == 2); tr++)
                for (int op = 0; op <= tr; op++) {
                    int B = cfg[t][0], C = cfg[t][1], H = cfg[t][2], W = cfg[t][3];
                    int OC = cfg[t][4], s = cfg[t][5];
                    int OH = tr ? (H - 1) * 2 - 2 + 3 + op : (H - 1) / s + 1;
                    int OW = tr ? (W - 1) * 2 - 2 + 3 + op : (W - 1) / s + 1;
                    size_t no = (size_t)B * OC * OH * OW;
                    float *x = rand_buf((size_t)B * C * H * W, &r, 1);
                    float *w = rand_buf((size_t)OC * C * 9, &r, 1), *b = rand_buf(OC, &r, 1);
                    size_t ncol =
                        tr ? dae_conv_t2d_col_size(&(dae_conv_geom){B, C, H, W, OC, 3, 2, 1, op})
                           : dae_conv2d_col_size(&(dae_conv_geom){B, C, H, W, OC, 3, s, 1, 0});
                    float *col = rand_buf(ncol, &r, 1);
                    float *y = rand_buf(no, &r, 1), *ref = rand_buf(no, &r, 1);
                    if (tr) {
                        dae_conv_t2d_forward_ex(y, x, w, NULL, b, col,
                                                &(dae_conv_geom){B, C, H, W, OC, 3, 2, 1, op},
                                                acts[a], 0.0f);
                        ref_conv_t2d(ref, x, w, b, B, C, H, W, OC, 3, 2, 1, op);
                    } else {
                        dae_conv2d_forward_ex(y, x, w, NULL, b, &col, 1,
                                              &(dae_conv_geom){B, C, H, W, OC, 3, s, 1, 0}, acts[a],
                                              0.0f);
                        ref_conv2d(ref, x, w, b, B, C, H, W, OC, 3, s, 1);
                    }
                    dae_act_forward(ref, ref, no, acts[a], 0.0f);
                    assert_close(y, ref, no, 1e-5f, tr ? "conv_t2d taps" : "conv2d taps");
                    free(x), free(w), free(b), free(col), free(y), free(ref);
                }
}
END_TEST

/* x rounded to bf16 (nearest even), as a float */
static float to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The bf16 taps path (weights packed by dae_bf16_pack_weights) computes the convolution of
 * the bf16-rounded input and weights with fp32 sums: against the direct loops on rounded
 * copies, for the configurations of test_conv_taps (odd channel counts: a half-empty last
 * pair); and within bf16's precision of the fp32 result. */
START_TEST(test_conv_taps_bf16)
{
    if (!dae_conv2d_bf16_layer(3, 2, 1))
        return; /* no AVX512-BF16 here: the fp32 path runs (test_conv_taps) */
    static const int cfg[][6] = {{1, 3, 7, 7, 15, 1},  {5, 2, 5, 6, 9, 1},  {3, 4, 7, 7, 16, 2},
                                 {1, 2, 28, 28, 8, 2}, {4, 3, 9, 6, 5, 2},  {2, 1, 1, 1, 3, 2},
                                 {7, 5, 14, 13, 11, 2}, {9, 2, 3, 2, 17, 1}, {2, 96, 7, 7, 96, 1}};
    static const dae_act acts[] = {DAE_ACT_RELU, DAE_ACT_SIGMOID};
    dae_rng r;
    dae_rng_seed(&r, 37);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++)
        for (int a = 0; a < 2; a++)
            for (int tr = 0; tr <= (cfg[t][5] == 2); tr++) {
                int B = cfg[t][0], C = cfg[t][1], H = cfg[t][2], W = cfg[t][3];
                int OC = cfg[t][4], s = cfg[t][5], op = 1;
                int OH = tr ? (H - 1) * 2 - 2 + 3 + op : (H - 1) / s + 1;
                int OW = tr ? (W - 1) * 2 - 2 + 3 + op : (W - 1) / s + 1;
                size_t no = (size_t)B * OC * OH * OW, nx = (size_t)B * C * H * W;
                size_t nw = (size_t)OC * C * 9;
                float *x = rand_buf(nx, &r, 1), *w = rand_buf(nw, &r, 1);
                float *b = rand_buf(OC, &r, 1), *xr = rand_buf(nx, &r, 1);
                float *wr = rand_buf(nw, &r, 1);
                for (size_t i = 0; i < nx; i++)
                    xr[i] = to_bf16(x[i]);
                for (size_t i = 0; i < nw; i++)
                    wr[i] = to_bf16(w[i]);
                uint32_t *wb = malloc(dae_bf16_weights_size(C, OC) * sizeof *wb);
                dae_bf16_pack_weights(wb, w, C, OC, tr);
                size_t ncol =
                    tr ? dae_conv_t2d_col_size(&(dae_conv_geom){B, C, H, W, OC, 3, 2, 1, op})
                       : dae_conv2d_col_size(&(dae_conv_geom){B, C, H, W, OC, 3, s, 1, 0});
                float *col = rand_buf(ncol, &r, 1);
                float *y = rand_buf(no, &r, 1), *ref = rand_buf(no, &r, 1);
                float *ref32 = rand_buf(no, &r, 1);
                if (tr) {
                    dae_conv_t2d_forward_ex(y, x, w, wb, b, col,
                                            &(dae_conv_geom){B, C, H, W, OC, 3, 2, 1, op}, acts[a],
                                            0.0f);
                    ref_conv_t2d(ref, xr, wr, b, B, C, H, W, OC, 3, 2, 1, op);
                    ref_conv_t2d(ref32, x, w, b, B, C, H, W, OC, 3, 2, 1, op);
                } else {
                    dae_conv2d_forward_ex(y, x, w, wb, b, &col, 1,
                                          &(dae_conv_geom){B, C, H, W, OC, 3, s, 1, 0}, acts[a],
                                          0.0f);
                    ref_conv2d(ref, xr, wr, b, B, C, H, W, OC, 3, s, 1);
                    ref_conv2d(ref32, x, w, b, B, C, H, W, OC, 3, s, 1);
                }
                dae_act_forward(ref, ref, no, acts[a], 0.0f);
                dae_act_forward(ref32, ref32, no, acts[a], 0.0f);
                assert_close(y, ref, no, 2e-5f, tr ? "conv_t2d bf16" : "conv2d bf16");
                /* bf16 keeps 8 bits: |error| of a sum of C*9 products of values in [-1, 1]
                 * stays well under 2^-8 * sqrt(C*9) */
                assert_close(y, ref32, no, 0.004f * sqrtf((float)C * 9), "bf16 vs fp32");
                free(x), free(w), free(b), free(xr), free(wr), free(wb), free(col), free(y);
                free(ref), free(ref32);
            }
}
END_TEST

/* The AMX form of conv3 (bf16 weights on a convolution conv3 takes): the convolution of
 * the bf16-rounded input and weights with fp32 sums (in another order than the reference:
 * a looser bound than the taps kernel's), within bf16's precision of fp32; channel counts
 * off the chunks of 32 and tiles of 16, widths whose rows split a block of positions, one
 * image in two row bands (threads 2) giving the bits of the whole; and a few channels on a
 * small image and 1-channel inputs stay in fp32 conv3 (the AMX scratch would pass the bound
 * of layers.h; AMX measured slower on 1 channel).
 * Added to the suite only when dae_amx_supported() (else reported as a skip). */
START_TEST(test_conv3_amx)
{
    /* B, C, H, W, OC */
    static const int cfg[][5] = {{1, 96, 20, 19, 96}, {2, 16, 12, 40, 12}, {1, 9, 24, 13, 8},
                                 {3, 33, 8, 8, 17},  {1, 8, 40, 40, 9},   {1, 64, 3, 70, 40}};
    static const dae_act acts[] = {DAE_ACT_RELU, DAE_ACT_LEAKY_RELU, DAE_ACT_SIGMOID};
    dae_rng r;
    dae_rng_seed(&r, 41);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++)
        for (int a = 0; a < 3; a++) {
            int B = cfg[t][0], C = cfg[t][1], H = cfg[t][2], W = cfg[t][3], OC = cfg[t][4];
            size_t no = (size_t)B * OC * H * W, nx = (size_t)B * C * H * W;
            size_t nw = (size_t)OC * C * 9;
            ck_assert_str_eq(
                dae_conv2d_kernel_name(&(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0}, 1),
                "conv3 AMX, bf16");
            float *x = rand_buf(nx, &r, 1), *w = rand_buf(nw, &r, 1), *b = rand_buf(OC, &r, 1);
            float *xr = rand_buf(nx, &r, 1), *wr = rand_buf(nw, &r, 1);
            for (size_t i = 0; i < nx; i++)
                xr[i] = to_bf16(x[i]);
            for (size_t i = 0; i < nw; i++)
                wr[i] = to_bf16(w[i]);
            uint32_t *wb = malloc(dae_bf16_weights_size(C, OC) * sizeof *wb);
            dae_bf16_pack_weights(wb, w, C, OC, 0);
            size_t ncol = dae_conv2d_col_size(&(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0});
            float *cols[2] = {rand_buf(ncol, &r, 1), rand_buf(ncol, &r, 1)};
            float *y = rand_buf(no, &r, 1), *y2 = rand_buf(no, &r, 1);
            float *ref = rand_buf(no, &r, 1), *ref32 = rand_buf(no, &r, 1);
            dae_conv2d_forward_ex(y, x, w, wb, b, cols, 1,
                                  &(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0}, acts[a], 0.1f);
            dae_conv2d_forward_ex(y2, x, w, wb, b, cols, 2,
                                  &(dae_conv_geom){B, C, H, W, OC, 3, 1, 1, 0}, acts[a], 0.1f);
            ck_assert_int_eq(memcmp(y, y2, no * sizeof *y), 0);
            ref_conv2d(ref, xr, wr, b, B, C, H, W, OC, 3, 1, 1);
            ref_conv2d(ref32, x, w, b, B, C, H, W, OC, 3, 1, 1);
            dae_act_forward(ref, ref, no, acts[a], 0.1f);
            dae_act_forward(ref32, ref32, no, acts[a], 0.1f);
            assert_close(y, ref, no, 1e-4f, "conv3 amx");
            assert_close(y, ref32, no, 0.004f * sqrtf((float)C * 9), "amx vs fp32");
            free(x), free(w), free(b), free(xr), free(wr), free(wb), free(cols[0]);
            free(cols[1]), free(y), free(y2), free(ref), free(ref32);
        }
    dae_conv_geom small = {1, 1, 12, 12, 4, 3, 1, 1, 0}, one = {1, 1, 64, 64, 48, 3, 1, 1, 0};
    ck_assert_str_eq(dae_conv2d_kernel_name(&small, 1), "conv3 direct, fp32");
    ck_assert_uint_le(dae_conv2d_col_size(&small), (9 + 4) * 144);
    ck_assert_str_eq(dae_conv2d_kernel_name(&one, 1), "conv3 direct, fp32");
}
END_TEST

/* A stride-1 tap list gives conv3's bits exactly: the tile plans rely on a small tile and
 * the whole image agreeing pixel for pixel, and small images take the taps path. */
/* Added to the suite only when dae_conv3x3_supported() (else reported as a skip). */
START_TEST(test_conv_taps_conv3_bits)
{
    int C = 5, H = 9, W = 13, OC = 11;
    dae_rng r;
    dae_rng_seed(&r, 31);
    float *x = rand_buf((size_t)C * H * W, &r, 1), *w = rand_buf((size_t)OC * C * 9, &r, 1);
    float *b = rand_buf(OC, &r, 1), *y3 = rand_buf((size_t)OC * H * W, &r, 1);
    float *yt = rand_buf((size_t)OC * H * W, &r, 1);
    float *scr = rand_buf(dae_conv3x3_scratch_size(C, OC) +
                              dae_conv3x3_taps_scratch((size_t)H * W, 9), &r, 1);
    dae_conv_taps tp = {.T = 9, .C = C, .NPL = 1, .Hp = H, .Wp = W, .OC = OC,
                        .N = (size_t)H * W, .wo = (size_t)C * 9, .wc = 9};
    for (int t = 0; t < 9; t++) {
        tp.dy[t] = t / 3 - 1, tp.dx[t] = t % 3 - 1, tp.wt[t] = t;
        tp.off[t] = (ptrdiff_t)tp.dy[t] * W + tp.dx[t];
    }
    dae_conv_geom g = {.B = 1, .C = C, .H = H, .W = W, .OC = OC, .k = 3, .s = 1, .p = 1};
    dae_conv3x3_forward_rows(y3, x, w, b, scr, &g, 0, H, DAE_ACT_RELU, 0.0f);
    dae_conv3x3_taps_forward(yt, x, w, b, &tp, scr, DAE_ACT_RELU, 0.0f);
    ck_assert_int_eq(memcmp(y3, yt, (size_t)OC * H * W * sizeof *y3), 0);
    free(x), free(w), free(b), free(y3), free(yt), free(scr);
}
END_TEST

/* ---------------- pixel (un)shuffle ---------------- */

/* PyTorch's definition, index by index: out[c*r*r + i*r + j][y][x] = in[c][y*r+i][x*r+j]. */
static void ref_unshuffle(float *out, const float *in, int B, int C, int H, int W, int r)
{
    int OH = H / r, OW = W / r, OC = C * r * r;
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < r; i++)
                for (int j = 0; j < r; j++)
                    for (int y = 0; y < OH; y++)
                        for (int x = 0; x < OW; x++)
                            out[(((size_t)n * OC + c * r * r + i * r + j) * OH + y) * OW + x] =
                                in[(((size_t)n * C + c) * H + y * r + i) * W + x * r + j];
}

START_TEST(test_pixel_shuffle)
{
    dae_rng rg;
    dae_rng_seed(&rg, 61);
    for (int r = 2; r <= 4; r++) {
        int B = 2, C = 3, H = 2 * r, W = 3 * r;
        size_t n = (size_t)B * C * H * W;
        float *x = rand_buf(n, &rg, 1), *u = malloc(n * sizeof *u), *ref = malloc(n * sizeof *ref);
        float *back = malloc(n * sizeof *back);
        dae_pixel_unshuffle(u, x, B, C, H, W, r);
        ref_unshuffle(ref, x, B, C, H, W, r);
        ck_assert_int_eq(memcmp(u, ref, n * sizeof *u), 0);
        /* shuffle is its inverse (both ways round) */
        dae_pixel_shuffle(back, u, B, C * r * r, H / r, W / r, r);
        ck_assert_int_eq(memcmp(back, x, n * sizeof *x), 0);
        dae_pixel_shuffle(u, x, B, C * r * r, 2, 3, r); /* x as (B, C*r*r, 2, 3) */
        dae_pixel_unshuffle(back, u, B, C, H, W, r);
        ck_assert_int_eq(memcmp(back, x, n * sizeof *x), 0);
        /* adjoint: <unshuffle(x), g> == <x, shuffle(g)>, so each backward is the other */
        float *g = rand_buf(n, &rg, 1);
        dae_pixel_unshuffle(u, x, B, C, H, W, r);
        dae_pixel_shuffle(back, g, B, C * r * r, H / r, W / r, r);
        double a = 0, b = 0;
        for (size_t k = 0; k < n; k++) {
            a += (double)u[k] * g[k];
            b += (double)x[k] * back[k];
        }
        ck_assert_msg(fabs(a - b) <= 1e-9 * (1 + fabs(a)), "r %d: %g vs %g", r, a, b);
        free(x), free(u), free(ref), free(back), free(g);
    }
    /* a known case: (1,1,2,2) unshuffled by 2 is (4,1,1) in row-major order */
    float x4[4] = {1, 2, 3, 4}, y4[4];
    dae_pixel_unshuffle(y4, x4, 1, 1, 2, 2, 2);
    ck_assert(y4[0] == 1 && y4[1] == 2 && y4[2] == 3 && y4[3] == 4);
    float x8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y8[8]; /* (1,1,2,4) -> (4,1,2) */
    dae_pixel_unshuffle(y8, x8, 1, 1, 2, 4, 2);
    float want[8] = {1, 3, 2, 4, 5, 7, 6, 8};
    ck_assert_int_eq(memcmp(y8, want, sizeof want), 0);
}
END_TEST

/* max |a - b| / max |b| over n values */
static double rel_err(const float *a, const float *b, size_t n)
{
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? e / m : e;
}

/* Mixed-precision training (dae_conv2d_forward_tiles, dae_conv2d_backward_tiles): on AMX the
 * forward, input and weight gradients agree with fp32 within bf16's precision (relative
 * error below 1e-2 of the largest value; they do differ: the AMX path ran), on odd shapes
 * (channel counts off the tiles of 16 and chunks of 32, odd sides, 1-pixel borders), split
 * over 2 threads they give the bits of 1, and the bias gradient keeps fp32's bits.
 * Where a convolution does not run on AMX (no AMX here, a small image, fewer than 8
 * channels) the results are fp32's bits: the fallback. */
START_TEST(test_conv_amx_train)
{
    /* B, C, H, W, OC; on AMX: forward 1 + input gradient 2 + weight gradient 4 (whose
     * scratch, channels padded to 32, passes the bound of layers.h on the small images of
     * cases 1 and 2) */
    static const int cfg[][6] = {{2, 20, 9, 11, 13, 7}, {1, 33, 13, 7, 40, 3},
                                 {3, 8, 12, 11, 17, 3}, {2, 64, 11, 9, 48, 7},
                                 {1, 12, 7, 7, 12, 0},  {2, 4, 10, 10, 16, 0}};
    dae_rng r;
    dae_rng_seed(&r, 43);
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        int B = cfg[t][0], C = cfg[t][1], H = cfg[t][2], W = cfg[t][3], OC = cfg[t][4];
        dae_conv_geom g = {B, C, H, W, OC, 3, 1, 1, 0};
        size_t no = (size_t)B * OC * H * W, nx = (size_t)B * C * H * W, nw = (size_t)OC * C * 9;
        float *x = rand_buf(nx, &r, 1), *w = rand_buf(nw, &r, 0.2f), *b = rand_buf(OC, &r, 1);
        float *dy = rand_buf(no, &r, 1), *y = rand_buf(no, &r, 1), *y2 = rand_buf(no, &r, 1);
        float *y32 = rand_buf(no, &r, 1), *dx = rand_buf(nx, &r, 1), *dx32 = rand_buf(nx, &r, 1);
        float *dw = calloc(nw, sizeof *dw), *dw32 = calloc(nw, sizeof *dw);
        float *db = calloc((size_t)OC, sizeof *db), *db32 = calloc((size_t)OC, sizeof *db);
        uint16_t *wa = malloc(dae_amx_tiles_size(C, OC) * sizeof *wa);
        uint16_t *wd = malloc(dae_amx_tiles_size(OC, C) * sizeof *wd);
        dae_amx_pack_tiles(wa, w, C, OC, 0);
        dae_amx_pack_tiles(wd, w, C, OC, 1);
        /* the training scratch: the forward's, or the AMX passes' (each within one image's
         * im2col and output) where that is more; the forward's alone can be more (grouped
         * im2col of several images where the CPU has no conv3 kernel, as under valgrind) */
        size_t ncol = dae_conv2d_train_col_size(&g), fwd = dae_conv2d_col_size(&g);
        size_t bound = ((size_t)C * 9 + (size_t)OC) * (size_t)H * (size_t)W;
        ck_assert(ncol >= fwd && ncol <= (fwd > bound ? fwd : bound));
        float *cols[2] = {rand_buf(ncol, &r, 1), rand_buf(ncol, &r, 1)};
        dae_conv2d_forward_ex(y32, x, w, NULL, b, cols, 1, &g, DAE_ACT_RELU, 0.0f);
        dae_conv2d_forward_tiles(y, x, w, wa, b, cols, 1, &g, DAE_ACT_RELU, 0.0f);
        dae_conv2d_forward_tiles(y2, x, w, wa, b, cols, 2, &g, DAE_ACT_RELU, 0.0f);
        dae_conv2d_backward(dx32, dw32, db32, dy, x, w, cols[0], &g);
        dae_conv2d_backward_tiles(dx, dw, db, dy, x, w, wd, cols[0], &g);
        ck_assert_int_eq(memcmp(db, db32, (size_t)OC * sizeof *db), 0);
        int af = dae_conv2d_amx_train(&g, 0), ad = dae_conv2d_amx_train(&g, 1);
        int aw = dae_conv2d_amx_train(&g, 2);
        /* (fp32 on a small image takes the taps kernel whole, im2col in row bands) */
        ck_assert_msg(!af || memcmp(y, y2, no * sizeof *y) == 0, "case %zu: 2 threads", t);
        double ef = rel_err(y, y32, no), ed = rel_err(dx, dx32, nx), ew = rel_err(dw, dw32, nw);
        ck_assert_msg(ef < 1e-2 && ed < 1e-2 && ew < 1e-2,
                      "case %zu: relative error forward %g, din %g, dw %g", t, ef, ed, ew);
        ck_assert_msg(af ? ef > 0 : ef == 0, "case %zu: forward on AMX %d, error %g", t, af, ef);
        ck_assert_msg(ad ? ed > 0 : ed == 0, "case %zu: din on AMX %d, error %g", t, ad, ed);
        ck_assert_msg(aw ? ew > 0 : ew == 0, "case %zu: dw on AMX %d, error %g", t, aw, ew);
        int want = dae_amx_supported() ? cfg[t][5] : 0;
        ck_assert_msg(af + 2 * ad + 4 * aw == want, "case %zu: AMX forward %d, din %d, dw %d",
                      t, af, ad, aw);
        free(x), free(w), free(b), free(dy), free(y), free(y2), free(y32), free(dx);
        free(dx32), free(dw), free(dw32), free(db), free(db32), free(wa), free(wd);
        free(cols[0]), free(cols[1]);
    }
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
    tcase_add_test(tc, test_conv2d_forward_ex);
    tcase_add_test(tc, test_conv_t2d_forward_ex);
    tcase_add_test(tc, test_conv_taps);
    if (dae_conv3x3_supported())
        tcase_add_test(tc, test_conv_taps_conv3_bits);
    else
        ck_skip("layers", "test_conv_taps_conv3_bits",
                "the CPU has no AVX-512F, so the direct 3x3 kernel it compares with is off");
    tcase_add_test(tc, test_conv_taps_bf16);
    if (dae_amx_supported())
        tcase_add_test(tc, test_conv3_amx);
    else
        ck_skip("layers", "test_conv3_amx", "the CPU has no AMX-BF16 (or the kernel does not "
                "grant the tile state): bf16 workspaces run conv3 in fp32");
    tcase_add_test(tc, test_pixel_shuffle);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradient");
    tcase_add_test(tc, test_linear_grad);
    tcase_add_test(tc, test_conv2d_grad);
    tcase_add_test(tc, test_conv_t2d_grad);
    tcase_add_test(tc, test_act_grad);
    tcase_add_test(tc, test_upsample_grad);
    tcase_add_test(tc, test_conv_grouping);
    tcase_add_test(tc, test_conv2d_grad_bands);
    tcase_add_test(tc, test_conv3x3);
    tcase_add_test(tc, test_conv_amx_train);
    if (!dae_amx_supported())
        ck_skip("layers", "test_conv_amx_train (AMX part)", "the CPU has no AMX-BF16: the "
                "bf16 training forward and input gradient fall back to fp32 (checked: fp32's "
                "bits)");
    suite_add_tcase(s, tc);
    return s;
}

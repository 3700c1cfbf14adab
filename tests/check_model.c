/* check_model.c — model building, shape inference, parameters, workspaces, forward /
 * encode / decode and the whole-model gradient. */
#include "check_quiet.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/layers.h"
#include "daed/core/model.h"
#include "daed/core/rng.h"

static dae_layer lin(int in, int out)
{
    return (dae_layer){.kind = DAE_LAYER_LINEAR, .in_f = in, .out_f = out};
}
static dae_layer conv(int in, int out, int k, int s, int p)
{
    return (dae_layer){.kind = DAE_LAYER_CONV2D, .in_ch = in, .out_ch = out, .k = k,
                       .stride = s, .pad = p};
}
static dae_layer convt(int in, int out, int k, int s, int p, int op)
{
    return (dae_layer){.kind = DAE_LAYER_CONV_T2D, .in_ch = in, .out_ch = out, .k = k,
                       .stride = s, .pad = p, .out_pad = op};
}
static dae_layer act(dae_act a)
{
    return (dae_layer){.kind = DAE_LAYER_ACT, .act = a, .slope = 0.1f};
}
static dae_layer up(int bilinear)
{
    return (dae_layer){.kind = DAE_LAYER_UPSAMPLE, .bilinear = bilinear};
}
static dae_layer flat(void)
{
    return (dae_layer){.kind = DAE_LAYER_FLATTEN};
}
static dae_layer unflat(int c, int h, int w)
{
    return (dae_layer){.kind = DAE_LAYER_UNFLATTEN, .unflat = {c, h, w}};
}

static dae_layer unshuf(int r)
{
    return (dae_layer){.kind = DAE_LAYER_PIXEL_UNSHUFFLE, .factor = r};
}
static dae_layer shuf(int r)
{
    return (dae_layer){.kind = DAE_LAYER_PIXEL_SHUFFLE, .factor = r};
}

static dae_layer add(int from)
{
    return (dae_layer){.kind = DAE_LAYER_ADD, .from = from};
}

static float *rand_buf(size_t n, dae_rng *r, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (2.0f * dae_rng_uniform(r) - 1.0f);
    return x;
}

static size_t vals(dae_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

/* A small model with every layer kind: (1,8,8) -conv s2-> (3,4,4) -flatten, linear-> 6
 * (latent) -linear, unflatten-> (2,2,2) -bilinear-> (2,4,4) -convT s2 op1-> (3,8,8)
 * -conv-> (1,8,8). */
static dae_model *mixed_model(int residual, dae_error *err)
{
    dae_layer enc[] = {conv(1, 3, 3, 2, 1), act(DAE_ACT_LEAKY_RELU), flat(), lin(3 * 4 * 4, 6),
                       act(DAE_ACT_TANH)};
    dae_layer dec[] = {lin(6, 2 * 2 * 2), act(DAE_ACT_RELU), unflat(2, 2, 2),
                       up(1),                 /* 2x4x4 */
                       convt(2, 3, 3, 2, 1, 1), /* 3x8x8 */
                       act(DAE_ACT_SIGMOID), conv(3, 1, 3, 1, 1)};
    return dae_model_create(enc, 5, dec, 7, (dae_shape){1, 8, 8}, residual, err);
}

static dae_model *conv_model(int residual, dae_error *err)
{
    /* the latent ends in leaky relu: exact zeros there would put every convT output of a
     * zero neighbourhood at exactly its bias, all on one side of the next relu's kink */
    dae_layer enc[] = {conv(2, 4, 3, 2, 1), act(DAE_ACT_RELU), conv(4, 4, 4, 2, 1),
                       act(DAE_ACT_LEAKY_RELU)};
    dae_layer dec[] = {convt(4, 4, 4, 2, 1, 0), act(DAE_ACT_RELU), up(0), conv(4, 2, 3, 1, 1),
                       act(DAE_ACT_IDENTITY)};
    return dae_model_create(enc, 4, dec, 5, (dae_shape){2, 12, 12}, residual, err);
}

START_TEST(test_create_shapes_params)
{
    dae_error e = {0};
    dae_model *m = mixed_model(0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    ck_assert_int_eq(m->latent_shape.c, 6);
    ck_assert_int_eq(m->latent_shape.h, 1);
    ck_assert_int_eq(m->out_shape.c, 1);
    ck_assert_int_eq(m->out_shape.h, 8);
    ck_assert_int_eq(m->out_shape.w, 8);
    ck_assert_int_eq(m->fully_conv, 0);
    size_t expect = (3 * 1 * 9 + 3) + (48 * 6 + 6) + (6 * 8 + 8) + (2 * 3 * 9 + 3) + (3 * 9 + 1);
    ck_assert_uint_eq(m->n_params, expect);
    char name[64];
    dae_model_param_name(m, 3, 0, name, sizeof name);
    ck_assert_str_eq(name, "encoder.3.weight");
    dae_model_param_name(m, 5 + 4, 1, name, sizeof name);
    ck_assert_str_eq(name, "decoder.4.bias");
    int64_t d[4];
    ck_assert_int_eq(dae_model_param_shape(m, 3, 0, d), 2);
    ck_assert(d[0] == 6 && d[1] == 48);
    ck_assert_int_eq(dae_model_param_shape(m, 9, 0, d), 4); /* convT: (in, out, k, k) */
    ck_assert(d[0] == 2 && d[1] == 3 && d[2] == 3 && d[3] == 3);
    ck_assert_int_eq(dae_model_param_shape(m, 0, 0, d), 4); /* conv: (out, in, k, k) */
    ck_assert(d[0] == 3 && d[1] == 1);
    ck_assert_int_eq(dae_model_param_shape(m, 0, 1, d), 1);
    ck_assert(d[0] == 3);
    ck_assert_int_eq(dae_model_param_shape(m, 1, 0, d), 0);
    /* offsets tile params exactly, weight then bias */
    size_t off = 0;
    for (int i = 0; i < m->n_enc + m->n_dec; i++) {
        if (!m->layers[i].n_w)
            continue;
        ck_assert_uint_eq(m->layers[i].w_off, off);
        ck_assert_uint_eq(m->layers[i].b_off, off + m->layers[i].n_w);
        off += m->layers[i].n_w + m->layers[i].n_b;
    }
    ck_assert_uint_eq(off, m->n_params);
    /* flops: conv 2*3*4*4*1*9, linear 2*48*6, 2*6*8, convT 2*2*4*4*3*9, conv 2*1*64*3*9 */
    double f = 2.0 * 3 * 16 * 9 + 2.0 * 48 * 6 + 2.0 * 6 * 8 + 2.0 * 2 * 16 * 3 * 9 +
               2.0 * 64 * 3 * 9;
    ck_assert_double_eq_tol(dae_model_flops(m, m->in_shape), f, 1e-9);
    dae_model_free(m);
    dae_model_free(NULL);
}
END_TEST

START_TEST(test_create_rejects_bad_chains)
{
    dae_error e = {0};
    dae_layer enc1[] = {conv(1, 4, 3, 1, 1), conv(3, 4, 3, 1, 1)};
    dae_layer dec1[] = {conv(4, 1, 3, 1, 1)};
    ck_assert_ptr_null(dae_model_create(enc1, 2, dec1, 1, (dae_shape){1, 8, 8}, 0, &e));
    ck_assert_int_eq(e.code, DAE_ESHAPE);
    ck_assert_msg(strstr(e.msg, "encoder.1") && strstr(e.msg, "4 channels") &&
                      strstr(e.msg, "expected 3"), "%s", e.msg);

    dae_layer enc2[] = {flat(), lin(64, 10)};
    dae_layer dec2[] = {lin(10, 60), unflat(1, 8, 8)};
    ck_assert_ptr_null(dae_model_create(enc2, 2, dec2, 2, (dae_shape){1, 8, 8}, 0, &e));
    ck_assert_msg(strstr(e.msg, "decoder.1") && strstr(e.msg, "60"), "%s", e.msg);

    dae_layer dec3[] = {lin(11, 64)};
    ck_assert_ptr_null(dae_model_create(enc2, 2, dec3, 1, (dae_shape){1, 8, 8}, 0, &e));
    ck_assert_msg(strstr(e.msg, "decoder.0") && strstr(e.msg, "10 features"), "%s", e.msg);

    dae_layer dec4[] = {convt(4, 1, 3, 2, 1, 2)}; /* output_padding must be < stride */
    ck_assert_ptr_null(dae_model_create(enc1, 1, dec4, 1, (dae_shape){1, 8, 8}, 0, &e));
    ck_assert_msg(strstr(e.msg, "decoder.0") && strstr(e.msg, "output_padding"), "%s", e.msg);

    dae_layer enc5[] = {conv(1, 2, 5, 1, 0)};
    ck_assert_ptr_null(dae_model_create(enc5, 1, dec1, 1, (dae_shape){1, 3, 3}, 0, &e));
    ck_assert_msg(strstr(e.msg, "encoder.0") && strstr(e.msg, "kernel"), "%s", e.msg);

    /* residual needs output shape == input shape */
    dae_layer dec6[] = {conv(4, 2, 3, 1, 1)};
    ck_assert_ptr_null(dae_model_create(enc1, 1, dec6, 1, (dae_shape){1, 8, 8}, 1, &e));
    ck_assert_msg(strstr(e.msg, "residual"), "%s", e.msg);
}
END_TEST

START_TEST(test_init_deterministic_bounded)
{
    dae_model *a = mixed_model(0, NULL), *b = mixed_model(0, NULL);
    dae_model_init_params(a, 42);
    dae_model_init_params(b, 42);
    ck_assert_int_eq(memcmp(a->params, b->params, a->n_params * sizeof(float)), 0);
    dae_model_init_params(b, 43);
    ck_assert_int_ne(memcmp(a->params, b->params, a->n_params * sizeof(float)), 0);
    /* bound 1/sqrt(fan_in); fan_in: conv in*k*k, linear in, convT out*k*k (PyTorch) */
    const int fan[] = {9, 0, 0, 48, 0, 6, 0, 0, 0, 27, 0, 27};
    for (int i = 0; i < a->n_enc + a->n_dec; i++) {
        const dae_layer *L = &a->layers[i];
        if (!L->n_w)
            continue;
        ck_assert_int_gt(fan[i], 0);
        double bound = 1.0 / sqrt(fan[i]), maxabs = 0;
        for (size_t j = 0; j < L->n_w + L->n_b; j++) {
            double v = fabs(a->params[L->w_off + j]);
            ck_assert_msg(v <= bound, "layer %d value %g > bound %g", i, v, bound);
            if (v > maxabs)
                maxabs = v;
        }
        /* uniform over the full range, not a narrower one */
        ck_assert_msg(maxabs > 0.7 * bound, "layer %d max %g bound %g", i, maxabs, bound);
    }
    dae_model_free(a);
    dae_model_free(b);
}
END_TEST

/* He: weights U(+-sqrt(6/fan_in)) (variance 2/fan_in), biases 0; the PyTorch scheme is
 * dae_model_init_params' exact values. */
START_TEST(test_init_he)
{
    dae_layer enc[] = {conv(8, 64, 3, 1, 1), act(DAE_ACT_RELU)};
    dae_layer dec[] = {conv(64, 8, 3, 1, 1)};
    dae_model *a = dae_model_create(enc, 2, dec, 1, (dae_shape){8, 8, 8}, 0, NULL);
    dae_model *b = dae_model_create(enc, 2, dec, 1, (dae_shape){8, 8, 8}, 0, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    dae_model_init_params(a, 7);
    dae_model_init_scheme(b, 7, DAE_INIT_PYTORCH);
    ck_assert_int_eq(memcmp(a->params, b->params, a->n_params * sizeof(float)), 0);
    dae_model_init_scheme(b, 7, DAE_INIT_HE);
    for (int i = 0; i < 3; i += 2) {
        const dae_layer *L = &b->layers[i];
        double fan = L->in_ch * 9.0, sq = 0, bound = sqrt(6.0 / fan);
        for (size_t j = 0; j < L->n_w; j++) {
            double v = b->params[L->w_off + j];
            ck_assert_msg(fabs(v) <= bound, "layer %d value %g > bound %g", i, v, bound);
            sq += v * v;
        }
        double var = sq / (double)L->n_w; /* 4608 draws: within 10% of 2/fan_in */
        ck_assert_msg(fabs(var * fan / 2.0 - 1.0) < 0.1, "layer %d variance %g, expected %g",
                      i, var, 2.0 / fan);
        for (size_t j = 0; j < L->n_b; j++)
            ck_assert(b->params[L->b_off + j] == 0.0f);
    }
    dae_model_free(a);
    dae_model_free(b);
}
END_TEST

START_TEST(test_encode_decode_is_forward)
{
    for (int training = 0; training < 2; training++)
        for (int which = 0; which < 2; which++) {
            dae_error e = {0};
            dae_model *m = which ? conv_model(0, &e) : mixed_model(0, &e);
            ck_assert_msg(m != NULL, "%s", e.msg);
            dae_model_init_params(m, 7);
            dae_workspace *ws = dae_workspace_create(m, 4, m->in_shape, training, &e);
            ck_assert_msg(ws != NULL, "%s", e.msg);
            dae_rng r;
            dae_rng_seed(&r, 9);
            int B = 3;
            size_t n_in = B * vals(m->in_shape), n_out = B * vals(m->out_shape);
            float *x = rand_buf(n_in, &r, 1);
            const float *y, *z, *y2;
            dae_shape ys, zs, ys2;
            ck_assert_int_eq(dae_model_forward(m, ws, x, B, m->in_shape, &y, &ys, &e), DAE_OK);
            ck_assert(memcmp(&ys, &m->out_shape, sizeof ys) == 0);
            float *yc = malloc(n_out * sizeof *yc);
            memcpy(yc, y, n_out * sizeof *yc);
            float *lat = malloc(B * vals(m->latent_shape) * sizeof *lat);
            memcpy(lat, dae_workspace_latent(ws), B * vals(m->latent_shape) * sizeof *lat);
            ck_assert_int_eq(dae_model_encode(m, ws, x, B, m->in_shape, &z, &zs, &e), DAE_OK);
            ck_assert(memcmp(&zs, &m->latent_shape, sizeof zs) == 0);
            ck_assert_int_eq(memcmp(z, lat, B * vals(zs) * sizeof *z), 0);
            float *zc = malloc(B * vals(zs) * sizeof *zc);
            memcpy(zc, z, B * vals(zs) * sizeof *zc);
            ck_assert_int_eq(dae_model_decode(m, ws, zc, B, zs, &y2, &ys2, &e), DAE_OK);
            ck_assert(memcmp(&ys2, &ys, sizeof ys) == 0);
            ck_assert_int_eq(memcmp(y2, yc, n_out * sizeof *yc), 0);
            /* batch size beyond the workspace is refused */
            float *big = rand_buf(5 * vals(m->in_shape), &r, 1);
            ck_assert_int_eq(dae_model_forward(m, ws, big, 5, m->in_shape, &y, &ys, &e),
                             DAE_ELIMIT);
            ck_assert_msg(strstr(e.msg, "batch 5"), "%s", e.msg);
            /* one sample at a time gives the same rows as the batch */
            for (int n = 0; n < B; n++) {
                ck_assert_int_eq(dae_model_forward(m, ws, x + n * vals(m->in_shape), 1,
                                                   m->in_shape, &y, &ys, &e), DAE_OK);
                for (size_t j = 0; j < vals(ys); j++)
                    ck_assert(fabsf(y[j] - yc[n * vals(ys) + j]) < 1e-5f);
            }
            free(big), free(x), free(yc), free(lat), free(zc);
            dae_workspace_free(ws);
            dae_model_free(m);
        }
}
END_TEST

/* dae_workspace_bytes: what servers size batches with: positive, growing with the batch and
 * the input, 0 for invalid arguments. */
START_TEST(test_workspace_bytes)
{
    dae_error e = {0};
    dae_model *m = conv_model(1, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    size_t prev = 0;
    for (int b = 1; b <= 16; b *= 2) {
        size_t n = dae_workspace_bytes(m, b, m->in_shape);
        ck_assert_uint_gt(n, prev);
        prev = n;
    }
    ck_assert_uint_gt(dae_workspace_bytes(m, 1, (dae_shape){2, 64, 64}),
                      dae_workspace_bytes(m, 1, (dae_shape){2, 16, 16}));
    ck_assert_uint_eq(dae_workspace_bytes(m, 0, m->in_shape), 0);
    ck_assert_uint_eq(dae_workspace_bytes(m, 1, (dae_shape){0, 16, 16}), 0);
    dae_model_free(m);
}
END_TEST

START_TEST(test_fully_conv_sizes)
{
    dae_error e = {0};
    dae_model *m = conv_model(1, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    ck_assert_int_eq(m->fully_conv, 1);
    ck_assert_int_eq(m->size_div, 4);
    dae_model_init_params(m, 3);
    /* room for 16x16 = 256 pixels: 4x64, 8x8, 12x20, ... all fit */
    dae_workspace *ws = dae_workspace_create(m, 2, (dae_shape){2, 16, 16}, 0, &e);
    ck_assert_msg(ws != NULL, "%s", e.msg);
    static const int hw[][2] = {{4, 4}, {8, 12}, {16, 16}, {4, 64}, {12, 20}, {12, 12}};
    dae_rng r;
    dae_rng_seed(&r, 5);
    for (size_t t = 0; t < sizeof hw / sizeof hw[0]; t++) {
        dae_shape s = {2, hw[t][0], hw[t][1]};
        ck_assert_int_eq(dae_model_check_input(m, s, &e), DAE_OK);
        float *x = rand_buf(2 * vals(s), &r, 1);
        const float *y;
        dae_shape ys;
        ck_assert_msg(dae_model_forward(m, ws, x, 2, s, &y, &ys, &e) == DAE_OK, "%dx%d: %s",
                      s.h, s.w, e.msg);
        ck_assert(ys.c == 2 && ys.h == s.h && ys.w == s.w);
        free(x);
    }
    /* not multiples of 4, wrong channels, too large for the workspace */
    dae_shape bad[] = {{2, 10, 12}, {2, 12, 6}, {1, 12, 12}, {2, 2, 4}};
    for (size_t t = 0; t < 4; t++) {
        ck_assert_int_eq(dae_model_check_input(m, bad[t], &e), DAE_ESHAPE);
        ck_assert_msg(strstr(e.msg, "multiples of 4"), "%s", e.msg);
    }
    float *x = calloc(2 * 20 * 20, sizeof *x);
    const float *y;
    dae_shape ys;
    ck_assert_int_eq(dae_model_forward(m, ws, x, 1, (dae_shape){2, 20, 20}, &y, &ys, &e),
                     DAE_ELIMIT);
    ck_assert_int_eq(dae_model_forward(m, ws, x, 1, (dae_shape){2, 10, 10}, &y, &ys, &e),
                     DAE_ESHAPE);
    free(x);
    dae_workspace_free(ws);
    dae_model_free(m);

    /* a model with a linear layer takes only its nominal shape */
    m = mixed_model(0, &e);
    ck_assert_int_eq(dae_model_check_input(m, (dae_shape){1, 16, 16}, &e), DAE_ESHAPE);
    ck_assert_msg(strstr(e.msg, "expected (1,8,8)"), "%s", e.msg);
    ck_assert_int_eq(dae_model_check_input(m, (dae_shape){1, 8, 8}, &e), DAE_OK);
    dae_model_free(m);
}
END_TEST


/* ---------------- whole-model gradient ----------------
 * L = sum R*output + sum Q*latent in double; backward gets dout = R and dlatent = Q.
 * Every parameter and every input value v is bumped to v +- h. Every output and the latent
 * move when an early value moves, so the float32 rounding noise in L+ - L- is about
 * sqrt(150 values) * 1e-7 ~ 1.5e-6: ~1e-3 after dividing by 2h at h = 1e-3, ~2e-3 at
 * h = 4e-4 (measured: 5e-4 and 1e-3). The relu/leaky kinks are the other error: when a
 * pre-activation lies within h of 0 the difference quotient mixes both slopes. So each
 * value is tried at h = 1e-3 and then at h = 4e-4 (a kink that close is 2.5x less likely)
 * and must agree at one of them within 4e-3 (1 + |ana|). A missing dlatent, a sign error
 * in the residual or a wrong layer gradient is off by 0.05 or more at every h. */
#define MG_TOL 4e-3

typedef struct {
    dae_model *m;
    dae_workspace *ws;
    const float *x;
    int B;
    const double *R, *Q;
} mctx;

static double mloss(mctx *c)
{
    const float *y;
    dae_shape ys;
    dae_error e;
    ck_assert_int_eq(dae_model_forward(c->m, c->ws, c->x, c->B, c->m->in_shape, &y, &ys, &e),
                     DAE_OK);
    const float *z = dae_workspace_latent(c->ws);
    double L = 0;
    for (size_t i = 0; i < c->B * vals(ys); i++)
        L += c->R[i] * y[i];
    for (size_t i = 0; i < c->B * vals(c->m->latent_shape); i++)
        L += c->Q[i] * z[i];
    return L;
}

static void mg_compare(mctx *c, float *v, size_t n, const float *ana, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        static const float hs[2] = {1e-3f, 4e-4f};
        double num = 0;
        for (int t = 0; t < 2; t++) {
            float save = v[i], hi = save + hs[t], lo = save - hs[t];
            v[i] = hi;
            double lp = mloss(c);
            v[i] = lo;
            double lm = mloss(c);
            v[i] = save;
            num = (lp - lm) / ((double)hi - (double)lo);
            if (fabs(num - ana[i]) <= MG_TOL * (1.0 + fabs(ana[i])))
                break;
        }
        ck_assert_msg(fabs(num - ana[i]) <= MG_TOL * (1.0 + fabs(ana[i])),
                      "%s[%zu]: numeric %g, analytic %g", what, i, num, (double)ana[i]);
    }
}

static void model_gradcheck(dae_model *m, uint64_t seed)
{
    dae_error e = {0};
    dae_model_init_params(m, seed);
    /* PyTorch's init leaves deep pre-activations within ~1e-2 of 0, dense with relu kinks
     * for a finite difference; x3 spreads them to O(1) without changing what is tested */
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] *= 3.0f;
    int B = 2;
    dae_workspace *ws = dae_workspace_create(m, B, m->in_shape, 1, &e);
    ck_assert_msg(ws != NULL, "%s", e.msg);
    dae_rng r;
    dae_rng_seed(&r, seed + 1);
    size_t nx = B * vals(m->in_shape), ny = B * vals(m->out_shape);
    size_t nz = B * vals(m->latent_shape);
    float *x = rand_buf(nx, &r, 1), *dout = malloc(ny * sizeof *dout);
    float *dlat = malloc(nz * sizeof *dlat), *din = malloc(nx * sizeof *din);
    double *R = malloc(ny * sizeof *R), *Q = malloc(nz * sizeof *Q);
    for (size_t i = 0; i < ny; i++)
        dout[i] = (float)(R[i] = 2.0 * dae_rng_uniform_d(&r) - 1.0);
    for (size_t i = 0; i < nz; i++)
        dlat[i] = (float)(Q[i] = 2.0 * dae_rng_uniform_d(&r) - 1.0);
    float *grads = calloc(m->n_params, sizeof *grads);
    float *grads2 = calloc(m->n_params, sizeof *grads2);
    mctx c = {m, ws, x, B, R, Q};
    mloss(&c);
    ck_assert_int_eq(dae_model_backward(m, ws, dout, dlat, grads, din, &e), DAE_OK);
    mg_compare(&c, m->params, m->n_params, grads, "param");
    mg_compare(&c, x, nx, din, "input");

    /* gradients accumulate; din and grads may be skipped */
    mloss(&c);
    memcpy(grads2, grads, m->n_params * sizeof *grads2);
    ck_assert_int_eq(dae_model_backward(m, ws, dout, dlat, grads2, NULL, &e), DAE_OK);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(fabsf(grads2[i] - 2.0f * grads[i]) <= 1e-5f * (1.0f + fabsf(grads[i])));
    float *din2 = malloc(nx * sizeof *din2);
    ck_assert_int_eq(dae_model_backward(m, ws, dout, dlat, NULL, din2, &e), DAE_OK);
    ck_assert_int_eq(memcmp(din, din2, nx * sizeof *din), 0);

    free(x), free(dout), free(dlat), free(din), free(din2), free(R), free(Q), free(grads);
    free(grads2);
    dae_workspace_free(ws);
}

/* The photo denoisers' shape: 3x3 "same" convolutions, residual, colour in and out (the
 * direct AVX-512 kernels of conv3.c where the CPU has them). tanh, not the photo models'
 * relu: a same-convolution stack has so many units that some relu pre-activation always
 * lies within a finite-difference step of its kink, and the check would fail on that. */
START_TEST(test_model_gradient_same_conv_rgb)
{
    dae_error e = {0};
    dae_layer enc[] = {conv(3, 8, 3, 1, 1), act(DAE_ACT_TANH), conv(8, 8, 3, 1, 1),
                       act(DAE_ACT_TANH)};
    dae_layer dec[] = {conv(8, 3, 3, 1, 1)};
    dae_model *m = dae_model_create(enc, 4, dec, 1, (dae_shape){3, 9, 10}, 1, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    model_gradcheck(m, 23);
    dae_model_free(m);
}
END_TEST

START_TEST(test_model_gradient)
{
    dae_error e = {0};
    dae_model *m = mixed_model(0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    model_gradcheck(m, 21);
    dae_model_free(m);
}
END_TEST

START_TEST(test_model_gradient_residual)
{
    dae_error e = {0};
    dae_model *m = conv_model(1, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    ck_assert_int_eq(m->residual, 1);
    model_gradcheck(m, 22);
    /* the residual output really is input - net(input) */
    dae_model *n = conv_model(0, &e);
    memcpy(n->params, m->params, m->n_params * sizeof *m->params);
    dae_workspace *a = dae_workspace_create(m, 1, m->in_shape, 0, &e);
    dae_workspace *b = dae_workspace_create(n, 1, n->in_shape, 0, &e);
    dae_rng r;
    dae_rng_seed(&r, 4);
    float *x = rand_buf(vals(m->in_shape), &r, 1);
    const float *ya, *yb;
    ck_assert_int_eq(dae_model_forward(m, a, x, 1, m->in_shape, &ya, NULL, &e), DAE_OK);
    ck_assert_int_eq(dae_model_forward(n, b, x, 1, n->in_shape, &yb, NULL, &e), DAE_OK);
    for (size_t i = 0; i < vals(m->in_shape); i++)
        ck_assert(fabsf(ya[i] - (x[i] - yb[i])) < 1e-6f);
    free(x);
    dae_workspace_free(a);
    dae_workspace_free(b);
    dae_model_free(n);
    dae_model_free(m);
}
END_TEST

/* The FFDNet shape in small: a gray image plus its noise-level map (2,8,6) -unshuffle 2->
 * (8,4,3) -conv, relu-> (6,4,3) -conv-> (4,4,3) -shuffle 2-> (1,8,6); flags as given. */
static dae_model *shuffle_model(int flags, dae_error *err)
{
    dae_layer enc[] = {unshuf(2), conv(8, 6, 3, 1, 1), act(DAE_ACT_RELU)};
    dae_layer dec[] = {conv(6, 4, 3, 1, 1), shuf(2)};
    return dae_model_create(enc, 3, dec, 2, (dae_shape){2, 8, 6}, flags, err);
}

START_TEST(test_shuffle_model_build)
{
    dae_error e = {0};
    dae_model *m = shuffle_model(DAE_MODEL_RESIDUAL | DAE_MODEL_NOISE_MAP, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    ck_assert_int_eq(m->noise_map, 1);
    ck_assert_int_eq(m->residual, 1);
    ck_assert_int_eq(dae_model_image_channels(m), 1);
    ck_assert_int_eq(dae_model_flags(m), DAE_MODEL_RESIDUAL | DAE_MODEL_NOISE_MAP);
    ck_assert_int_eq(m->latent_shape.c, 6);
    ck_assert_int_eq(m->latent_shape.h, 4);
    ck_assert_int_eq(m->out_shape.c, 1);
    ck_assert_int_eq(m->out_shape.h, 8);
    ck_assert_int_eq(m->out_shape.w, 6);
    ck_assert_int_eq(m->fully_conv, 1);
    ck_assert_int_eq(m->size_div, 2);
    ck_assert_int_eq(dae_model_check_input(m, (dae_shape){2, 10, 4}, &e), DAE_OK);
    ck_assert_int_eq(dae_model_check_input(m, (dae_shape){2, 9, 4}, &e), DAE_ESHAPE);
    ck_assert_msg(strstr(e.msg, "multiples of 2"), "%s", e.msg);
    /* flops: the two convolutions only (the shuffles move values) */
    ck_assert(fabs(dae_model_flops(m, m->in_shape) - 2.0 * (6 * 12 * 8 * 9 + 4 * 12 * 6 * 9)) <
              1e-9);
    dae_model_free(m);

    /* noise_map needs 2+ input channels and an output of the image's channels */
    dae_layer one[] = {conv(1, 1, 3, 1, 1)};
    ck_assert_ptr_null(dae_model_create(one, 1, NULL, 0, (dae_shape){1, 4, 4},
                                        DAE_MODEL_NOISE_MAP, &e));
    ck_assert_msg(strstr(e.msg, "noise_map needs an input of at least 2 channels"), "%s",
                  e.msg);
    dae_layer same[] = {conv(2, 2, 3, 1, 1)};
    ck_assert_ptr_null(dae_model_create(same, 1, NULL, 0, (dae_shape){2, 4, 4},
                                        DAE_MODEL_NOISE_MAP, &e));
    ck_assert_msg(strstr(e.msg, "image's 1 channels"), "%s", e.msg);
    ck_assert_ptr_null(dae_model_create(same, 1, NULL, 0, (dae_shape){2, 4, 4}, 4, &e));
    ck_assert_msg(strstr(e.msg, "unknown flags"), "%s", e.msg);
    /* factors 2..4; the unshuffle's input a multiple of r; the shuffle's channels of r*r */
    dae_layer bad[] = {unshuf(5)};
    ck_assert_ptr_null(dae_model_create(bad, 1, NULL, 0, (dae_shape){1, 10, 10}, 0, &e));
    ck_assert_msg(strstr(e.msg, "encoder.0 (pixel_unshuffle): factor 5, expected 2..4"), "%s",
                  e.msg);
    dae_layer u3[] = {unshuf(3)};
    ck_assert_ptr_null(dae_model_create(u3, 1, NULL, 0, (dae_shape){1, 9, 10}, 0, &e));
    ck_assert_msg(strstr(e.msg, "input 9x10, expected height and width multiples of 3"),
                  "%s", e.msg);
    dae_layer s2[] = {shuf(2)};
    ck_assert_ptr_null(dae_model_create(s2, 1, NULL, 0, (dae_shape){6, 3, 3}, 0, &e));
    ck_assert_msg(strstr(e.msg, "has 6 channels, expected a multiple of 4"), "%s", e.msg);
    /* unshuffle 3 then 2: inputs multiples of 6; shuffle back 2 and 3 */
    dae_layer enc[] = {unshuf(3), unshuf(2)}, dec[] = {shuf(2), shuf(3)};
    m = dae_model_create(enc, 2, dec, 2, (dae_shape){1, 12, 6}, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    ck_assert_int_eq(m->size_div, 6);
    ck_assert_int_eq(m->latent_shape.c, 36);
    dae_model_free(m);
}
END_TEST

START_TEST(test_model_gradient_shuffle_noise_map)
{
    dae_error e = {0};
    dae_model *m = shuffle_model(DAE_MODEL_RESIDUAL | DAE_MODEL_NOISE_MAP, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    model_gradcheck(m, 24);
    /* the output is the image channel less net(input), the map excluded; training and
     * inference workspaces agree */
    dae_model *n = shuffle_model(DAE_MODEL_NOISE_MAP, &e);
    ck_assert_msg(n != NULL, "%s", e.msg);
    memcpy(n->params, m->params, m->n_params * sizeof *m->params);
    int B = 2;
    dae_workspace *a = dae_workspace_create(m, B, m->in_shape, 0, &e);
    dae_workspace *t = dae_workspace_create(m, B, m->in_shape, 1, &e);
    dae_workspace *b = dae_workspace_create(n, B, n->in_shape, 0, &e);
    dae_rng r;
    dae_rng_seed(&r, 5);
    size_t ni = 48, nx = 2 * ni;
    float *img = rand_buf(B * ni, &r, 1), *x = malloc(B * nx * sizeof *x);
    dae_model_noise_input(x, img, B, 1, 8, 6, 25.0f / 255.0f);
    for (int k = 0; k < B; k++) {
        ck_assert_int_eq(memcmp(x + k * nx, img + k * ni, ni * sizeof *x), 0);
        for (size_t i = 0; i < ni; i++)
            ck_assert(x[k * nx + ni + i] == 25.0f / 255.0f);
    }
    const float *ya, *yt, *yb;
    ck_assert_int_eq(dae_model_forward(m, a, x, B, m->in_shape, &ya, NULL, &e), DAE_OK);
    ck_assert_int_eq(dae_model_forward(m, t, x, B, m->in_shape, &yt, NULL, &e), DAE_OK);
    ck_assert_int_eq(dae_model_forward(n, b, x, B, n->in_shape, &yb, NULL, &e), DAE_OK);
    for (size_t i = 0; i < B * ni; i++) {
        ck_assert(fabsf(ya[i] - (img[i] - yb[i])) < 1e-6f);
        ck_assert(fabsf(ya[i] - yt[i]) < 1e-6f);
    }
    /* the map is an input: a blind map changes the output */
    dae_model_noise_fill(x, B, 1, 8, 6, DAE_NOISE_BLIND);
    ck_assert(x[ni] == DAE_NOISE_BLIND && x[nx + 2 * ni - 1] == DAE_NOISE_BLIND);
    ck_assert_int_eq(dae_model_forward(n, b, x, B, n->in_shape, &yb, NULL, &e), DAE_OK);
    int differ = 0;
    for (size_t i = 0; i < B * ni; i++)
        differ |= fabsf(ya[i] - (img[i] - yb[i])) > 1e-4f;
    ck_assert(differ);
    ck_assert(dae_noise_level(-1) == DAE_NOISE_BLIND && dae_noise_level(51) == 0.2f);
    free(img), free(x);
    dae_workspace_free(a), dae_workspace_free(t), dae_workspace_free(b);
    dae_model_free(n);
    dae_model_free(m);
}
END_TEST

/* Additive skips: a ResNet-style add within the encoder (its source a relu, which would
 * otherwise run in place) and a U-Net-style add from the encoder into the decoder (its
 * source itself an add). (2,6,6) -> (4,3,3) latent -> (2,6,6), residual. The decoder's
 * activation is tanh: with a relu there, 2 of the 4 seeds tried (25-28) put a
 * pre-activation within a finite-difference step of its kink (see model_gradcheck). */
static dae_model *skip_model(dae_error *err)
{
    dae_layer enc[] = {conv(2, 4, 3, 1, 1), act(DAE_ACT_RELU), conv(4, 4, 3, 1, 1), add(1),
                       conv(4, 4, 3, 2, 1), act(DAE_ACT_TANH)};
    dae_layer dec[] = {convt(4, 4, 4, 2, 1, 0), act(DAE_ACT_TANH), add(3), conv(4, 2, 3, 1, 1)};
    return dae_model_create(enc, 6, dec, 4, (dae_shape){2, 6, 6}, DAE_MODEL_RESIDUAL, err);
}

START_TEST(test_add_model)
{
    dae_error e = {0};
    dae_model *m = skip_model(&e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    ck_assert_int_eq(m->fully_conv, 1);
    ck_assert_int_eq(m->size_div, 2);
    ck_assert_int_eq(dae_model_check_input(m, (dae_shape){2, 8, 10}, &e), DAE_OK);
    model_gradcheck(m, 25);
    /* inference and training workspaces agree; the adds change the output */
    dae_rng r;
    dae_rng_seed(&r, 6);
    int B = 2;
    size_t nx = B * vals(m->in_shape), ny = B * vals(m->out_shape);
    float *x = rand_buf(nx, &r, 1), *y0 = malloc(ny * sizeof *y0);
    dae_workspace *a = dae_workspace_create(m, B, m->in_shape, 0, &e);
    dae_workspace *t = dae_workspace_create(m, B, m->in_shape, 1, &e);
    const float *ya, *yt, *z;
    ck_assert_int_eq(dae_model_forward(m, a, x, B, m->in_shape, &ya, NULL, &e), DAE_OK);
    ck_assert_int_eq(dae_model_forward(m, t, x, B, m->in_shape, &yt, NULL, &e), DAE_OK);
    for (size_t i = 0; i < ny; i++)
        ck_assert(fabsf(ya[i] - yt[i]) < 1e-6f);
    memcpy(y0, ya, ny * sizeof *y0);
    dae_model *n = dae_model_create(m->layers, m->n_enc, m->layers + m->n_enc, m->n_dec,
                                    m->in_shape, DAE_MODEL_RESIDUAL, &e);
    memcpy(n->params, m->params, m->n_params * sizeof *m->params);
    n->layers[8].from = 2; /* the conv before the first add: other values */
    dae_workspace *b = dae_workspace_create(n, B, n->in_shape, 0, &e);
    ck_assert_int_eq(dae_model_forward(n, b, x, B, n->in_shape, &ya, NULL, &e), DAE_OK);
    int differ = 0;
    for (size_t i = 0; i < ny; i++)
        differ |= fabsf(ya[i] - y0[i]) > 1e-4f;
    ck_assert(differ);
    /* encode runs; the decoder alone cannot (its add reads the encoder) */
    dae_shape zs;
    ck_assert_int_eq(dae_model_encode(m, a, x, B, m->in_shape, &z, &zs, &e), DAE_OK);
    ck_assert_int_eq(dae_model_decode(m, a, z, B, zs, &ya, NULL, &e), DAE_EINVAL);
    ck_assert_msg(strstr(e.msg, "decoder.2 adds the output of encoder.3"), "%s", e.msg);
    free(x), free(y0);
    dae_workspace_free(a), dae_workspace_free(b), dae_workspace_free(t);
    dae_model_free(n);
    dae_model_free(m);

    /* sources must be earlier layers of the same shape */
    dae_layer bad1[] = {conv(1, 2, 3, 1, 1), add(1)};
    ck_assert_ptr_null(dae_model_create(bad1, 2, NULL, 0, (dae_shape){1, 4, 4}, 0, &e));
    ck_assert_msg(strstr(e.msg, "encoder.1 (add): from 1, expected an earlier layer 0..0"),
                  "%s", e.msg);
    dae_layer bad2[] = {conv(1, 2, 3, 1, 1), conv(2, 2, 3, 2, 1), add(0)};
    ck_assert_ptr_null(dae_model_create(bad2, 3, NULL, 0, (dae_shape){1, 4, 4}, 0, &e));
    ck_assert_msg(strstr(e.msg, "encoder.2 (add from encoder.0): input (2,2,2) but encoder.0 "
                                "outputs (2,4,4)"), "%s", e.msg);
}
END_TEST

START_TEST(test_backward_needs_training_forward)
{
    dae_error e = {0};
    dae_model *m = conv_model(0, &e);
    dae_workspace *inf = dae_workspace_create(m, 1, m->in_shape, 0, &e);
    dae_workspace *tr = dae_workspace_create(m, 1, m->in_shape, 1, &e);
    float *d = calloc(vals(m->in_shape), sizeof *d);
    ck_assert_int_eq(dae_model_backward(m, inf, d, NULL, NULL, d, &e), DAE_EINVAL);
    ck_assert_msg(strstr(e.msg, "training"), "%s", e.msg);
    ck_assert_int_eq(dae_model_backward(m, tr, d, NULL, NULL, d, &e), DAE_EINVAL);
    ck_assert_msg(strstr(e.msg, "forward"), "%s", e.msg);
    free(d);
    dae_workspace_free(inf);
    dae_workspace_free(tr);
    dae_workspace_free(NULL);
    dae_model_free(m);
}
END_TEST

/* A workspace with 3 threads gives the single-threaded results: batch 5 splits into runs of
 * 1, 2 and 2 samples, batch 2 < 3 threads splits conv rows instead; forward, latent, input
 * and parameter gradients, training and inference workspaces, residual or not. */
/* Workspace precision: bf16 changes the output of a model with stride-2 and transposed
 * 3x3 convolutions by bf16 rounding only (and does change it, when the CPU has bf16), and
 * switching back gives fp32's bits. */
START_TEST(test_workspace_precision)
{
    dae_error e = {0};
    dae_layer enc[] = {conv(2, 6, 3, 2, 1), act(DAE_ACT_RELU), conv(6, 8, 3, 1, 1)};
    dae_layer dec[] = {convt(8, 4, 3, 2, 1, 1), act(DAE_ACT_SIGMOID)};
    dae_model *m = dae_model_create(enc, 3, dec, 2, (dae_shape){2, 10, 10}, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    dae_model_init_params(m, 41);
    dae_rng r;
    dae_rng_seed(&r, 42);
    int B = 3;
    size_t nx = B * vals(m->in_shape), ny = B * vals(m->out_shape);
    float *x = rand_buf(nx, &r, 1), *y32 = malloc(ny * sizeof *y32);
    dae_workspace *ws = dae_workspace_create(m, B, m->in_shape, 0, &e);
    ck_assert_int_eq(dae_workspace_precision(ws), DAE_PREC_FP32);
    const float *y;
    ck_assert_int_eq(dae_model_forward(m, ws, x, B, m->in_shape, &y, NULL, &e), DAE_OK);
    memcpy(y32, y, ny * sizeof *y);
    ck_assert_int_eq(dae_workspace_set_precision(ws, DAE_PREC_BF16, &e), DAE_OK);
    int bf = dae_bf16_supported() && dae_conv3x3_supported();
    ck_assert_int_eq(dae_workspace_precision(ws), bf ? DAE_PREC_BF16 : DAE_PREC_FP32);
    ck_assert_int_eq(dae_model_forward(m, ws, x, B, m->in_shape, &y, NULL, &e), DAE_OK);
    double maxd = 0;
    for (size_t i = 0; i < ny; i++)
        maxd = fmax(maxd, fabs(y[i] - y32[i]));
    ck_assert_msg(maxd < 0.02, "bf16 vs fp32: max |diff| %g", maxd);
    if (bf)
        ck_assert_msg(maxd > 0, "bf16 gave fp32's bits: the bf16 path did not run");
    ck_assert_int_eq(dae_workspace_set_precision(ws, DAE_PREC_FP32, &e), DAE_OK);
    ck_assert_int_eq(dae_model_forward(m, ws, x, B, m->in_shape, &y, NULL, &e), DAE_OK);
    ck_assert_int_eq(memcmp(y, y32, ny * sizeof *y), 0);
    ck_assert_int_eq(dae_workspace_set_precision(ws, (dae_precision)7, &e), DAE_EINVAL);
    dae_workspace_free(ws);
    free(x), free(y32);
    dae_model_free(m);
}
END_TEST

/* Inference in bf16 on AMX: between two 3x3 convolutions AMX runs (16-channel multiples),
 * one image on one thread passes the activation as bf16 pair planes instead of fp32 planes
 * (model_run.c, dae_conv3x3_forward_amx_pairs): pair planes in to pair planes out, fp32 in
 * to pairs out, pairs in to fp32 out (before the latent copy, before a 4-channel layer),
 * 48 and 16 channels (zero planes up to whole chunks of 32), a leaky ReLU, a batch of 2
 * and of 1. The values are the fp32 round trip's, so the output
 * equals to the bit that of a 3-thread workspace, whose batches under 3 split the rows
 * (no pair planes). Added to the suite only when dae_amx_supported(). */
START_TEST(test_workspace_pairs)
{
    dae_error e = {0};
    dae_layer enc[] = {conv(3, 32, 3, 1, 1), act(DAE_ACT_RELU), conv(32, 48, 3, 1, 1),
                       act(DAE_ACT_RELU), conv(48, 64, 3, 1, 1), act(DAE_ACT_LEAKY_RELU),
                       conv(64, 16, 3, 1, 1), act(DAE_ACT_RELU), conv(16, 32, 3, 1, 1),
                       act(DAE_ACT_RELU)};
    enc[5].slope = 0.1f;
    dae_layer dec[] = {conv(32, 32, 3, 1, 1), act(DAE_ACT_RELU), conv(32, 4, 3, 1, 1)};
    dae_model *m = dae_model_create(enc, 10, dec, 3, (dae_shape){3, 19, 23}, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    dae_model_init_params(m, 43);
    dae_rng r;
    dae_rng_seed(&r, 44);
    size_t ny = 2 * vals(m->out_shape);
    float *x = rand_buf(2 * vals(m->in_shape), &r, 1), *y3 = malloc(ny * sizeof *y3);
    dae_workspace *w1 = dae_workspace_create(m, 2, m->in_shape, 0, &e);
    dae_workspace *w3 = dae_workspace_create(m, 2, m->in_shape, 0, &e);
    ck_assert_int_eq(dae_workspace_set_threads(w3, 3, &e), DAE_OK);
    ck_assert_int_eq(dae_workspace_set_precision(w1, DAE_PREC_BF16, &e), DAE_OK);
    ck_assert_int_eq(dae_workspace_set_precision(w3, DAE_PREC_BF16, &e), DAE_OK);
    for (int B = 2; B >= 1; B--) {
        const float *y;
        ck_assert_int_eq(dae_model_forward(m, w3, x, B, m->in_shape, &y, NULL, &e), DAE_OK);
        memcpy(y3, y, (size_t)B * vals(m->out_shape) * sizeof *y);
        ck_assert_int_eq(dae_model_forward(m, w1, x, B, m->in_shape, &y, NULL, &e), DAE_OK);
        ck_assert_msg(memcmp(y, y3, (size_t)B * vals(m->out_shape) * sizeof *y) == 0,
                      "batch %d: pair planes changed the output", B);
    }
    dae_workspace_free(w1);
    dae_workspace_free(w3);
    free(x), free(y3);
    dae_model_free(m);
}
END_TEST

/* |a - b| / |b| (Euclidean norms) over n values */
static double rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        nb += (double)b[i] * b[i];
    }
    return nb > 0 ? sqrt(d / nb) : sqrt(d);
}

/* One forward and backward of a training workspace: the output, the parameter gradients
 * (grads, zeroed first) and the input gradient (din). */
static void train_pass(const dae_model *m, dae_workspace *ws, const float *x, const float *dy,
                       int B, float *out, float *grads, float *din)
{
    dae_error e = {0};
    const float *y;
    ck_assert_int_eq(dae_model_forward(m, ws, x, B, m->in_shape, &y, NULL, &e), DAE_OK);
    memcpy(out, y, (size_t)B * vals(m->out_shape) * sizeof *out);
    memset(grads, 0, m->n_params * sizeof *grads);
    ck_assert_int_eq(dae_model_backward(m, ws, dy, NULL, grads, din, &e), DAE_OK);
}

/* Mixed-precision training workspaces: bf16 runs the 3x3 convolutions of 8+ channels on
 * AMX where the CPU has it (else it stays fp32: dae_workspace_precision tells), giving the
 * output, parameter and input gradients of fp32 within bf16's precision (relative 1e-2);
 * the tiles follow the parameters only through dae_workspace_pack_bf16; fp32 again gives
 * fp32's bits. 2 threads: each runs its share of the batch on its own tiles. tanh, not
 * ReLU: a bf16 rounding may flip a ReLU near 0, which changes a gradient value wholly
 * (measured with ReLUs here: input gradient 7 % off in norm). */
START_TEST(test_workspace_precision_training)
{
    dae_error e = {0};
    dae_layer enc[] = {conv(3, 8, 3, 1, 1), act(DAE_ACT_TANH), conv(8, 20, 3, 1, 1),
                       act(DAE_ACT_TANH), conv(20, 9, 3, 1, 1), act(DAE_ACT_TANH)};
    dae_layer dec[] = {conv(9, 3, 3, 1, 1)};
    dae_model *m = dae_model_create(enc, 6, dec, 1, (dae_shape){3, 11, 9}, 0, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    dae_model_init_params(m, 44);
    dae_rng r;
    dae_rng_seed(&r, 45);
    int B = 4;
    size_t nx = B * vals(m->in_shape), ny = B * vals(m->out_shape), np = m->n_params;
    float *x = rand_buf(nx, &r, 1), *dy = rand_buf(ny, &r, 1);
    float *y32 = malloc(ny * 4), *g32 = malloc(np * 4), *d32 = malloc(nx * 4);
    float *y = malloc(ny * 4), *g = malloc(np * 4), *d = malloc(nx * 4);
    dae_workspace *ws = dae_workspace_create(m, B, m->in_shape, 1, &e);
    ck_assert_int_eq(dae_workspace_set_threads(ws, 2, &e), DAE_OK);
    train_pass(m, ws, x, dy, B, y32, g32, d32);
    ck_assert_int_eq(dae_workspace_set_precision(ws, DAE_PREC_BF16, &e), DAE_OK);
    int amx = dae_amx_supported();
    ck_assert_int_eq(dae_workspace_precision(ws), amx ? DAE_PREC_BF16 : DAE_PREC_FP32);
    int total = 0;
    ck_assert_int_eq(dae_workspace_amx_layers(ws, &total), amx ? 2 : 0);
    ck_assert_int_eq(total, 4);
    train_pass(m, ws, x, dy, B, y, g, d);
    double ey = rel_err(y, y32, ny), eg = rel_err(g, g32, np), ed = rel_err(d, d32, nx);
    ck_assert_msg(ey < 1e-2 && eg < 1e-2 && ed < 1e-2, "bf16 vs fp32: out %g, grads %g, din %g",
                  ey, eg, ed);
    ck_assert_msg(amx ? ey > 0 && ed > 0 : ey == 0 && eg == 0 && ed == 0,
                  "AMX %d: out %g, din %g", amx, ey, ed);
    /* new parameters: the tiles keep the old ones until packed again */
    for (size_t i = 0; i < np; i++)
        m->params[i] *= 0.5f;
    train_pass(m, ws, x, dy, B, y, g, d);
    dae_workspace_set_precision(ws, DAE_PREC_FP32, &e);
    train_pass(m, ws, x, dy, B, y32, g32, d32);
    if (amx)
        ck_assert_msg(rel_err(y, y32, ny) > 0.05, "stale tiles: %g", rel_err(y, y32, ny));
    dae_workspace_set_precision(ws, DAE_PREC_BF16, &e);
    dae_workspace_pack_bf16(ws);
    train_pass(m, ws, x, dy, B, y, g, d);
    ck_assert_msg(rel_err(y, y32, ny) < 1e-2 && rel_err(d, d32, nx) < 1e-2, "repacked: %g %g",
                  rel_err(y, y32, ny), rel_err(d, d32, nx));
    dae_workspace_set_precision(ws, DAE_PREC_FP32, &e);
    train_pass(m, ws, x, dy, B, y, g, d);
    ck_assert_int_eq(memcmp(y, y32, ny * 4), 0);
    ck_assert_int_eq(memcmp(g, g32, np * 4), 0);
    dae_workspace_free(ws);
    free(x), free(dy), free(y32), free(g32), free(d32), free(y), free(g), free(d);
    dae_model_free(m);
}
END_TEST

START_TEST(test_threads_match)
{
    for (int which = 0; which < 5; which++) {
        dae_error e = {0};
        dae_model *m = which == 0   ? mixed_model(0, &e)
                       : which == 3 ? shuffle_model(DAE_MODEL_RESIDUAL | DAE_MODEL_NOISE_MAP, &e)
                       : which == 4 ? skip_model(&e)
                                    : conv_model(which == 2, &e);
        ck_assert_msg(m != NULL, "%s", e.msg);
        dae_model_init_params(m, 31);
        dae_rng r;
        dae_rng_seed(&r, 32);
        for (int B = 2; B <= 5; B += 3) {
            size_t nx = B * vals(m->in_shape), ny = B * vals(m->out_shape);
            size_t nz = B * vals(m->latent_shape);
            float *x = rand_buf(nx, &r, 1), *dout = rand_buf(ny, &r, 1);
            float *dlat = rand_buf(nz, &r, 1);
            float *res[2][4]; /* per thread count: output, latent, din, grads */
            for (int v = 0; v < 2; v++) {
                for (int training = 0; training < 2; training++) {
                    dae_workspace *ws = dae_workspace_create(m, 5, m->in_shape, training, &e);
                    ck_assert_msg(ws != NULL, "%s", e.msg);
                    ck_assert_int_eq(dae_workspace_set_threads(ws, v ? 3 : 1, &e), DAE_OK);
                    ck_assert_int_eq(dae_workspace_threads(ws), v ? 3 : 1);
                    const float *y;
                    ck_assert_int_eq(dae_model_forward(m, ws, x, B, m->in_shape, &y, NULL, &e),
                                     DAE_OK);
                    if (!training) {
                        res[v][0] = malloc(ny * sizeof(float));
                        memcpy(res[v][0], y, ny * sizeof(float));
                        dae_workspace_free(ws);
                        continue;
                    }
                    for (size_t i = 0; i < ny; i++) /* training and inference agree */
                        ck_assert_msg(fabsf(y[i] - res[v][0][i]) <= 1e-6f, "m%d B%d v%d [%zu] %g vs %g", which, B, v, i, (double)y[i], (double)res[v][0][i]);
                    res[v][1] = malloc(nz * sizeof(float));
                    memcpy(res[v][1], dae_workspace_latent(ws), nz * sizeof(float));
                    res[v][2] = malloc(nx * sizeof(float));
                    res[v][3] = calloc(m->n_params, sizeof(float));
                    ck_assert_int_eq(dae_model_backward(m, ws, dout, dlat, res[v][3],
                                                        res[v][2], &e), DAE_OK);
                    dae_workspace_free(ws);
                }
            }
            size_t n[4] = {ny, nz, nx, m->n_params};
            static const char *what[4] = {"output", "latent", "din", "grads"};
            for (int k = 0; k < 4; k++) {
                for (size_t i = 0; i < n[k]; i++)
                    ck_assert_msg(fabsf(res[1][k][i] - res[0][k][i]) <=
                                      1e-5f * (1.0f + fabsf(res[0][k][i])),
                                  "model %d B %d %s[%zu]: %g vs %g", which, B, what[k], i,
                                  (double)res[1][k][i], (double)res[0][k][i]);
                free(res[0][k]), free(res[1][k]);
            }
            free(x), free(dout), free(dlat);
        }
        dae_workspace *ws = dae_workspace_create(m, 1, m->in_shape, 0, &e);
        ck_assert_int_eq(dae_workspace_set_threads(ws, 0, &e), DAE_EINVAL);
        ck_assert_int_eq(dae_workspace_set_threads(ws, DAE_MAX_THREADS + 1, &e), DAE_EINVAL);
        ck_assert_msg(strstr(e.msg, "threads"), "%s", e.msg);
        ck_assert_int_eq(dae_workspace_threads(ws), 1);
        dae_workspace_free(ws);
        dae_model_free(m);
    }
}
END_TEST

Suite *suite_model(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("build");
    tcase_add_test(tc, test_create_shapes_params);
    tcase_add_test(tc, test_create_rejects_bad_chains);
    tcase_add_test(tc, test_init_deterministic_bounded);
    tcase_add_test(tc, test_init_he);
    tcase_add_test(tc, test_shuffle_model_build);
    suite_add_tcase(s, tc);
    tc = tcase_create("run");
    tcase_add_test(tc, test_encode_decode_is_forward);
    tcase_add_test(tc, test_fully_conv_sizes);
    tcase_add_test(tc, test_workspace_bytes);
    tcase_add_test(tc, test_threads_match);
    tcase_add_test(tc, test_workspace_precision);
    tcase_add_test(tc, test_workspace_precision_training);
    if (dae_amx_supported())
        tcase_add_test(tc, test_workspace_pairs);
    else
        ck_skip("model", "test_workspace_pairs", "the CPU has no AMX-BF16: no pair planes");
    if (!dae_amx_supported())
        ck_skip("model", "test_workspace_precision_training (AMX part)", "the CPU has no "
                "AMX-BF16: bf16 training workspaces stay fp32 (checked)");
    suite_add_tcase(s, tc);
    tc = tcase_create("gradient");
    tcase_add_test(tc, test_model_gradient);
    tcase_add_test(tc, test_model_gradient_residual);
    tcase_add_test(tc, test_model_gradient_same_conv_rgb);
    tcase_add_test(tc, test_model_gradient_shuffle_noise_map);
    tcase_add_test(tc, test_add_model);
    tcase_add_test(tc, test_backward_needs_training_forward);
    suite_add_tcase(s, tc);
    return s;
}

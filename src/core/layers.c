/* layers.c — forward/backward kernels: dense, conv2d and transposed conv (im2col + sgemm,
 * or the direct kernels of conv3.c and conv3_amx.c). The activations are in act.c, the
 * resampling kernels (upsampling, pixel shuffle) in upsample.c. */
#include "daed/core/layers.h"

#include <pthread.h>
#include <string.h>

#include "daed/core/blas.h"
#include "act_internal.h"

/* ================================ dense ================================ */

void dae_linear_forward(float *out, const float *in, const float *w, const float *b, int B,
                        int in_f, int out_f)
{
    float beta = 0.0f;
    if (b) {
        for (int n = 0; n < B; n++)
            memcpy(out + (size_t)n * out_f, b, (size_t)out_f * sizeof *out);
        beta = 1.0f;
    }
    /* out(B,O) = in(B,I) * W(O,I)^T (+ bias already in out) */
    dae_sgemm(0, 1, B, out_f, in_f, 1.0f, in, in_f, w, in_f, beta, out, out_f);
}

void dae_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, int B, int in_f, int out_f)
{
    if (din) /* din(B,I) = dout(B,O) * W(O,I) */
        dae_sgemm(0, 0, B, in_f, out_f, 1.0f, dout, out_f, w, in_f, 0.0f, din, in_f);
    if (dw) /* dw(O,I) += dout^T(O,B) * in(B,I) */
        dae_sgemm(1, 0, out_f, in_f, B, 1.0f, dout, out_f, in, in_f, 1.0f, dw, in_f);
    if (db)
        for (int n = 0; n < B; n++) {
            const float *d = dout + (size_t)n * out_f;
            for (int o = 0; o < out_f; o++)
                db[o] += d[o];
        }
}

/* ============================ im2col / col2im ============================
 * Geometry of a convolution reading an (H,W) image with kernel k, stride s, padding p and
 * producing (OH,OW): col rows are (c,kh,kw), columns (oh,ow), rows ld floats apart (ld >
 * OH*OW when several images sit side by side). Conv2d uses it forward (im2col) and
 * backward (col2im); the transposed conv the other way round, its *output* as the image.
 *
 * Loops over contiguous runs use fixed blocks of 16 so that GCC vectorises them at -O2
 * (its very-cheap cost model refuses loops that need a scalar epilogue). */

static inline void vadd(float *restrict d, const float *restrict s, int n)
{
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int q = 0; q < 16; q++)
            d[i + q] += s[i + q];
    for (; i < n; i++)
        d[i] += s[i];
}


static inline float vsum(const float *s, size_t n)
{
    float acc[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int q = 0; q < 16; q++)
            acc[q] += s[i + q];
    float t = 0.0f;
    for (; i < n; i++)
        t += s[i];
    for (int q = 0; q < 16; q++)
        t += acc[q];
    return t;
}

/* Range [lo,hi) of output columns ow whose input column ow*s - p + kk lies in [0,W). */
static void valid_range(int kk, int s, int p, int W, int OW, int *lo, int *hi)
{
    int off = kk - p; /* iw = ow*s + off */
    int a = off >= 0 ? 0 : (-off + s - 1) / s;
    int b = W - off <= 0 ? 0 : (W - off + s - 1) / s; /* first ow with iw >= W */
    if (a > OW)
        a = OW;
    if (b > OW)
        b = OW;
    if (b < a)
        b = a;
    *lo = a;
    *hi = b;
}

/* Output rows [oh0, oh1) of the col matrix: row (c,kh,kw) of col holds, from column 0,
 * the (oh1-oh0)*OW values those output pixels read. */
static void im2col_rows(float *restrict col, size_t ld, const float *restrict img, int C, int H,
                        int W, int k, int s, int p, int OW, int oh0, int oh1)
{
    for (int c = 0; c < C; c++) {
        const float *plane = img + (size_t)c * H * W;
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
                float *row = col + ((size_t)(c * k + kh) * k + kw) * ld;
                int lo, hi;
                valid_range(kw, s, p, W, OW, &lo, &hi);
                for (int oh = oh0; oh < oh1; oh++) {
                    float *dst = row + (size_t)(oh - oh0) * OW;
                    int ih = oh * s - p + kh;
                    if (ih < 0 || ih >= H) {
                        memset(dst, 0, (size_t)OW * sizeof *dst);
                        continue;
                    }
                    const float *src = plane + (size_t)ih * W;
                    int off = kw - p; /* iw = ow*s + off, in [0,W) for ow in [lo,hi) */
                    for (int ow = 0; ow < lo; ow++)
                        dst[ow] = 0.0f;
                    if (s == 1)
                        memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof *dst);
                    else if (s == 2)
                        for (int ow = lo; ow < hi; ow++)
                            dst[ow] = src[2 * ow + off];
                    else
                        for (int ow = lo; ow < hi; ow++)
                            dst[ow] = src[ow * s + off];
                    for (int ow = hi; ow < OW; ow++)
                        dst[ow] = 0.0f;
                }
            }
    }
}

static void im2col(float *restrict col, size_t ld, const float *restrict img, int C, int H,
                   int W, int k, int s, int p, int OH, int OW)
{
    im2col_rows(col, ld, img, C, H, W, k, s, p, OW, 0, OH);
}

/* img += col2im(col) for output rows [oh0, oh1), col holding those rows from column 0. */
static void col2im_rows_add(float *restrict img, const float *restrict col, size_t ld, int C,
                            int H, int W, int k, int s, int p, int OW, int oh0, int oh1)
{
    for (int c = 0; c < C; c++) {
        float *plane = img + (size_t)c * H * W;
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
                const float *row = col + ((size_t)(c * k + kh) * k + kw) * ld;
                int lo, hi;
                valid_range(kw, s, p, W, OW, &lo, &hi);
                for (int oh = oh0; oh < oh1; oh++) {
                    int ih = oh * s - p + kh;
                    if (ih < 0 || ih >= H)
                        continue;
                    const float *src = row + (size_t)(oh - oh0) * OW;
                    float *dst = plane + (size_t)ih * W;
                    int off = kw - p;
                    if (s == 1)
                        vadd(dst + lo + off, src + lo, hi - lo);
                    else
                        for (int ow = lo; ow < hi; ow++)
                            dst[ow * s + off] += src[ow];
                }
            }
    }
}

static void col2im_add(float *restrict img, const float *restrict col, size_t ld, int C, int H,
                       int W, int k, int s, int p, int OH, int OW)
{
    col2im_rows_add(img, col, ld, C, H, W, k, s, p, OW, 0, OH);
}

/* (g, R, P) images <-> (R, g*P) matrix with the images side by side. */
static void to_side_by_side(float *restrict m, const float *restrict x, int g, int R, int P)
{
    size_t N = (size_t)g * P;
    for (int j = 0; j < g; j++)
        for (int r = 0; r < R; r++)
            memcpy(m + r * N + (size_t)j * P, x + ((size_t)j * R + r) * P,
                   (size_t)P * sizeof *m);
}

/* x (g, R, P) = act(m (R, g*P) + bias[r]) (bias may be NULL) */
static void from_side_by_side(float *restrict x, const float *restrict m, const float *b,
                              int g, int R, int P, dae_act act, float slope)
{
    size_t N = (size_t)g * P;
    for (int j = 0; j < g; j++)
        for (int r = 0; r < R; r++)
            dae_bias_act(x + ((size_t)j * R + r) * P, m + r * N + (size_t)j * P, b ? b[r] : 0.0f,
                     (size_t)P, act, slope);
}

/* out[oc] = act(out[oc] + b[oc]) over each plane (b may be NULL) */
static void add_channel_bias(float *out, const float *b, int OC, size_t plane, dae_act act,
                             float slope)
{
    if (!b && act == DAE_ACT_IDENTITY)
        return;
    for (int oc = 0; oc < OC; oc++)
        dae_bias_act(out + (size_t)oc * plane, out + (size_t)oc * plane, b ? b[oc] : 0.0f, plane,
                 act, slope);
}

static void sum_channel_bias(float *db, const float *dout, int OC, size_t plane)
{
    for (int oc = 0; oc < OC; oc++)
        db[oc] += vsum(dout + (size_t)oc * plane, plane);
}

/* Images per sgemm: small images are grouped side by side so that each sgemm sees about
 * DAE_CONV_GROUP_COLS columns (one sgemm per 28x28 image is mostly call overhead); large
 * ones go one at a time, which keeps the scratch bounded for big inputs. */
static int conv_group(int B, int P)
{
    int g = DAE_CONV_GROUP_COLS / P;
    return g < 1 ? 1 : g > B ? B : g;
}

/* ================================ conv2d ================================
 * Per group of g images: col (K = C*k*k, g*P) by im2col, Y (OC, g*P) = W (OC, K) * col,
 * then Y back to (g, OC, P). One image: Y is written in place, no reordering. */

/* Output rows per band when one image goes alone: about DAE_CONV_BAND_COLS columns, so
 * the band's col matrix stays in cache (measured on 512x512, 32 channels: bands of 512
 * columns 1.24 cpu-s/Mpx, 1024 1.47, 2048 1.80, whole image 4.2). */
static int band_rows(int OH, int OW)
{
    int r = DAE_CONV_BAND_COLS / OW;
    return r < 1 ? 1 : r > OH ? OH : r;
}

/* 3x3 stride-1 'same' convolutions of images of DAE_CONV3_MIN_PIXELS or more go to the
 * direct kernels of conv3.c where they run. At least OC pixels too: their scratch, C*OC*9
 * floats, then stays within the bound of layers.h that workspaces are sized by. */
static int use_conv3(const dae_conv_geom *geo)
{
    long long P = (long long)geo->H * geo->W;
    return geo->k == 3 && geo->s == 1 && geo->p == 1 && P >= DAE_CONV3_MIN_PIXELS &&
           P >= geo->OC && dae_conv3x3_supported();
}

/* The taps kernel of conv3.c (layers.h) takes, forward, the 3x3 padding-1 convolutions
 * conv3 does not: stride 1 on small images (several side by side in its vectors; the same
 * bits as conv3) and stride 2 at any size (the input split into its 4 polyphase planes, so
 * every tap is a shift within a plane). Measured on the shipped fmnist-denoise: see
 * conv2d_images. */
static int use_taps(const dae_conv_geom *geo)
{
    return geo->k == 3 && geo->p == 1 && (geo->s == 2 || (geo->s == 1 && !use_conv3(geo))) &&
           dae_conv3x3_supported();
}

/* Tap t = kh*3 + kw of a stride-2 padding-1 3x3 convolution on the polyphase planes of its
 * input: input row 2*oh + kh - 1 is row oh - 1 of the odd rows (kh 0), oh of the even rows
 * (kh 1) or oh of the odd rows (kh 2); columns alike. Plane 2*a + b holds rows of parity a
 * and columns of parity b. Stride 1: every tap a shift of the one plane. */
static void conv_taps(dae_conv_taps *tp, int s, int OW)
{
    tp->T = 9;
    for (int t = 0; t < 9; t++) {
        int kh = t / 3, kw = t % 3;
        if (s == 2) {
            tp->pl[t] = (kh != 1) * 2 + (kw != 1);
            tp->dy[t] = kh == 0 ? -1 : 0;
            tp->dx[t] = kw == 0 ? -1 : 0;
        } else {
            tp->pl[t] = 0;
            tp->dy[t] = kh - 1;
            tp->dx[t] = kw - 1;
        }
        tp->wt[t] = t;
        tp->off[t] = (ptrdiff_t)tp->dy[t] * OW + tp->dx[t];
    }
}

/* xp (C, 4, g*OH*OW): the polyphase planes of g images x (g, C, H, W), image j at columns
 * [j*OH*OW, (j+1)*OH*OW) of each plane; plane 2a+b pixel (i, jj) = x[2i+a][2jj+b], 0 past
 * the edge (odd H or W). */
static void to_polyphase(float *restrict xp, const float *restrict x, int g, int C, int H,
                         int W, int OH, int OW)
{
    size_t P = (size_t)OH * OW, N = (size_t)g * P;
    for (int j = 0; j < g; j++)
        for (int c = 0; c < C; c++) {
            const float *xc = x + ((size_t)j * C + c) * H * W;
            for (int ph = 0; ph < 4; ph++) {
                int a = ph >> 1, b = ph & 1;
                float *d = xp + ((size_t)c * 4 + ph) * N + (size_t)j * P;
                for (int i = 0; i < OH; i++, d += OW) {
                    int r = 2 * i + a;
                    if (r >= H) {
                        memset(d, 0, (size_t)OW * sizeof *d);
                        continue;
                    }
                    const float *src = xc + (size_t)r * W + b;
                    int n = (W - b + 1) / 2; /* columns b, b+2, ... below W */
                    for (int jj = 0; jj < n; jj++)
                        d[jj] = src[2 * jj];
                    for (int jj = n; jj < OW; jj++)
                        d[jj] = 0.0f;
                }
            }
        }
}

/* Scratch of the taps path for g images of P output pixels: the input planes (stride 2:
 * 4 per channel; stride 1: C when side by side), their bf16 channel pairs (when the call
 * has bf16 weights), the output when side by side, the masks. */
static size_t taps_col_size(int g, int C, int OC, int s, size_t P)
{
    size_t N = (size_t)g * P, npl = s == 2 ? 4 : 1;
    size_t in = s == 2 ? 4 * (size_t)C * N : g > 1 ? (size_t)C * N : 0;
    size_t pairs = (size_t)(C + 1) / 2 * npl * N;
    return in + pairs + (g > 1 ? (size_t)OC * N : 0) + dae_conv3x3_taps_scratch(N, 9);
}

/* With bf16 weights, the convolutions conv3 takes run on AMX tiles where the CPU has them
 * (conv3_amx.c), from 8 channels in and out (see there) and while the AMX scratch stays
 * within the bound of layers.h (not so for a few channels on a small image). */
static int use_amx(const dae_conv_geom *geo)
{
    size_t bound = ((size_t)geo->C * 9 + (size_t)geo->OC) * (size_t)geo->H * (size_t)geo->W;
    return geo->C >= 8 && geo->OC >= 8 && use_conv3(geo) &&
           dae_conv2d_bf16_layer(geo->k, geo->s, geo->p) && dae_amx_supported() &&
           dae_conv3x3_amx_scratch(geo) <= bound;
}

/* The input gradient of a convolution conv3 takes is the convolution of its output
 * gradient with OC and C swapped: on AMX in a bf16 training step when that one may run
 * there, and its scratch stays within the bound of the layer itself. */
static int use_amx_din(const dae_conv_geom *geo)
{
    dae_conv_geom t = *geo;
    t.C = geo->OC;
    t.OC = geo->C;
    size_t bound = ((size_t)geo->C * 9 + (size_t)geo->OC) * (size_t)geo->H * (size_t)geo->W;
    return use_amx(&t) && dae_conv3x3_amx_scratch(&t) <= bound;
}

/* The weight gradient on AMX tiles: where the forward runs there, its scratch within the
 * bound too. */
static int use_amx_dw(const dae_conv_geom *geo)
{
    size_t bound = ((size_t)geo->C * 9 + (size_t)geo->OC) * (size_t)geo->H * (size_t)geo->W;
    return use_amx(geo) && dae_conv3x3_dw_amx_scratch(geo) <= bound;
}

int dae_conv2d_pairs_ok(const dae_conv_geom *geo, dae_act act)
{
    return geo->B == 1 && geo->C % 16 == 0 && geo->OC % 16 == 0 && use_amx(geo) &&
           (act == DAE_ACT_IDENTITY || act == DAE_ACT_RELU || act == DAE_ACT_LEAKY_RELU);
}

int dae_conv2d_amx_train(const dae_conv_geom *geo, int part)
{
    return part == 2 ? use_amx_dw(geo) : part == 1 ? use_amx_din(geo) : use_amx(geo);
}

/* A convolution's weights in the forms a call may use: fp32 w, bf16 pairs wbf (inference,
 * may be NULL), AMX tiles wa (training, may be NULL). */
typedef struct {
    const float *w;
    const uint32_t *wbf;
    const uint16_t *wa;
} conv_w;

size_t dae_conv2d_col_size(const dae_conv_geom *geo)
{
    int B = geo->B, C = geo->C, H = geo->H, W = geo->W, OC = geo->OC;
    int k = geo->k, s = geo->s, p = geo->p;
    if (use_conv3(geo)) { /* the AMX form's too: the precision may change */
        size_t c3 = dae_conv3x3_scratch_size(C, OC);
        size_t amx = use_amx(geo) ? dae_conv3x3_amx_scratch(geo) : 0;
        return c3 > amx ? c3 : amx;
    }
    size_t OH = (size_t)((H + 2 * p - k) / s + 1), OW = (size_t)((W + 2 * p - k) / s + 1);
    size_t P = OH * OW, g = (size_t)conv_group(B, (int)P), K = (size_t)C * k * k;
    size_t taps = use_taps(geo) ? taps_col_size((int)g, C, OC, s, P) : 0;
    if (g > 1)
        return (K + (size_t)OC) * g * P > taps ? (K + (size_t)OC) * g * P : taps;
    /* one image: a band of output rows at a time (row-split threads), or the taps path */
    size_t band = K * (size_t)band_rows((int)OH, (int)OW) * OW;
    return band > taps ? band : taps;
}

size_t dae_conv2d_train_col_size(const dae_conv_geom *geo)
{
    dae_conv_geom t = *geo;
    t.C = geo->OC;
    t.OC = geo->C;
    size_t m = dae_conv2d_col_size(geo);
    size_t din = use_amx_din(geo) ? dae_conv3x3_amx_scratch(&t) : 0;
    size_t dw = use_amx_dw(geo) ? dae_conv3x3_dw_amx_scratch(geo) : 0;
    m = m > din ? m : din;
    return m > dw ? m : dw;
}

/* Output rows [oh0,oh1) of one image: y(OC, rows) = W * col(rows) written in place (ldc P),
 * then bias and activation while the band is in cache. */
static void conv2d_rows(float *y, const float *x, const conv_w *cw, const float *b, float *col,
                        const dae_conv_geom *geo, int oh0, int oh1, dae_act act, float slope)
{
    int C = geo->C, H = geo->H, W = geo->W, OC = geo->OC, k = geo->k, s = geo->s, p = geo->p;
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    int P = OH * OW, K = C * k * k, R = band_rows(OH, OW);
    const float *w = cw->w;
    if ((cw->wa || cw->wbf) && use_amx(geo)) {
        if (cw->wa)
            dae_conv3x3_forward_amx_tiles(y, x, cw->wa, b, col, geo, oh0, oh1, act, slope);
        else
            dae_conv3x3_forward_amx(y, x, cw->wbf, b, col, geo, oh0, oh1, act, slope);
        return;
    }
    if (use_conv3(geo)) {
        dae_conv3x3_forward_rows(y, x, w, b, col, geo, oh0, oh1, act, slope);
        return;
    }
    /* 1x1 stride-1 unpadded convolutions read the image as the col matrix directly */
    int direct = k == 1 && s == 1 && p == 0;
    for (int r0 = oh0; r0 < oh1; r0 += R) {
        int r1 = r0 + R < oh1 ? r0 + R : oh1, n = (r1 - r0) * OW;
        if (direct) {
            dae_sgemm(0, 0, OC, n, K, 1.0f, w, K, x + (size_t)r0 * OW, P, 0.0f,
                      y + (size_t)r0 * OW, P);
        } else {
            im2col_rows(col, (size_t)n, x, C, H, W, k, s, p, OW, r0, r1);
            dae_sgemm(0, 0, OC, n, K, 1.0f, w, K, col, n, 0.0f, y + (size_t)r0 * OW, P);
        }
        if (b || act != DAE_ACT_IDENTITY)
            for (int oc = 0; oc < OC; oc++) {
                float *o = y + (size_t)oc * P + (size_t)r0 * OW;
                dae_bias_act(o, o, b ? b[oc] : 0.0f, (size_t)n, act, slope);
            }
    }
}

/* Images [0, geo->B): grouped side by side when small, by row bands when large. */
static void conv2d_images(float *out, const float *in, const conv_w *cw, const float *b,
                          float *col, const dae_conv_geom *geo, dae_act act, float slope)
{
    const float *w = cw->w;
    const uint32_t *wbf = cw->wbf;
    int B = geo->B, C = geo->C, H = geo->H, W = geo->W, OC = geo->OC;
    int k = geo->k, s = geo->s, p = geo->p;
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    int P = OH * OW, K = C * k * k, G = use_conv3(geo) ? 1 : conv_group(B, P);
    int taps = use_taps(geo);
    for (int n0 = 0; n0 < B; n0 += G) {
        int g = B - n0 < G ? B - n0 : G, N = g * P;
        const float *x = in + (size_t)n0 * C * H * W;
        float *y = out + (size_t)n0 * OC * P;
        if (taps) {
            dae_conv_taps tp = {.C = C, .NPL = s == 2 ? 4 : 1, .Hp = OH, .Wp = OW, .OC = OC,
                                .N = (size_t)N, .wo = (size_t)C * 9, .wc = 9};
            conv_taps(&tp, s, OW);
            const float *xs = x;
            float *next = col;
            if (s == 2) {
                to_polyphase(col, x, g, C, H, W, OH, OW);
                xs = col;
                next = col + (size_t)4 * C * N;
            } else if (g > 1) {
                to_side_by_side(col, x, g, C, P);
                xs = col;
                next = col + (size_t)C * N;
            }
            float *ys = g > 1 ? next : y;
            if (g > 1)
                next += (size_t)OC * N;
            if (wbf) {
                uint32_t *xb = (uint32_t *)(void *)next;
                dae_bf16_pack_pairs(xb, xs, C, (size_t)tp.NPL * N);
                next += (size_t)(C + 1) / 2 * tp.NPL * N;
                dae_conv3x3_taps_forward_bf16(ys, xb, wbf, b, &tp, next, act, slope);
            } else {
                dae_conv3x3_taps_forward(ys, xs, w, b, &tp, next, act, slope);
            }
            if (g > 1)
                from_side_by_side(y, ys, NULL, g, OC, P, DAE_ACT_IDENTITY, 0.0f);
            continue;
        }
        if (g == 1) {
            conv2d_rows(y, x, cw, b, col, geo, 0, OH, act, slope);
            continue;
        }
        float *tmp = col + (size_t)K * N;
        for (int j = 0; j < g; j++)
            im2col(col + (size_t)j * P, (size_t)N, x + (size_t)j * C * H * W, C, H, W, k, s, p,
                   OH, OW);
        dae_sgemm(0, 0, OC, N, K, 1.0f, w, K, col, N, 0.0f, tmp, N);
        from_side_by_side(y, tmp, b, g, OC, P, act, slope);
    }
}

typedef struct {
    float *out;
    const float *in, *b;
    conv_w cw;
    float *col;
    const dae_conv_geom *geo;
    int part, parts;
    dae_act act;
    float slope;
} conv_job;

/* Part `part` of `parts`: a contiguous run of images when there are enough, else a run of
 * output rows of every image. */
static void *conv_job_run(void *arg)
{
    const conv_job *j = arg;
    const dae_conv_geom *g = j->geo;
    int OH = (g->H + 2 * g->p - g->k) / g->s + 1, OW = (g->W + 2 * g->p - g->k) / g->s + 1;
    size_t osz = (size_t)g->OC * OH * OW, isz = (size_t)g->C * g->H * g->W;
    if (g->B >= j->parts) {
        int n0 = (int)((long long)g->B * j->part / j->parts);
        int n1 = (int)((long long)g->B * (j->part + 1) / j->parts);
        dae_conv_geom run = *g;
        run.B = n1 - n0;
        conv2d_images(j->out + (size_t)n0 * osz, j->in + (size_t)n0 * isz, &j->cw, j->b, j->col,
                      &run, j->act, j->slope);
        return NULL;
    }
    int r0 = (int)((long long)OH * j->part / j->parts);
    int r1 = (int)((long long)OH * (j->part + 1) / j->parts);
    for (int n = 0; n < g->B; n++)
        conv2d_rows(j->out + (size_t)n * osz, j->in + (size_t)n * isz, &j->cw, j->b, j->col, g,
                    r0, r1, j->act, j->slope);
    return NULL;
}

/* The convolution on `threads` threads (see dae_conv2d_forward_ex). */
static void conv2d_threads(float *out, const float *in, const conv_w *cw, const float *b,
                           float *const *cols, int threads, const dae_conv_geom *geo,
                           dae_act act, float slope)
{
    int B = geo->B, OH = (geo->H + 2 * geo->p - geo->k) / geo->s + 1;
    int T = threads < 1 ? 1 : threads > DAE_MAX_THREADS ? DAE_MAX_THREADS : threads;
    if (B < T && OH < T)
        T = B > OH ? B : OH;
    conv_job jobs[DAE_MAX_THREADS];
    pthread_t tid[DAE_MAX_THREADS];
    int started[DAE_MAX_THREADS] = {0};
    for (int t = 0; t < T; t++)
        jobs[t] = (conv_job){out, in, b, *cw, cols[t], geo, t, T, act, slope};
    for (int t = 1; t < T; t++)
        started[t] = pthread_create(&tid[t], NULL, conv_job_run, &jobs[t]) == 0;
    conv_job_run(&jobs[0]);
    for (int t = 1; t < T; t++) { /* a thread that could not start runs here */
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            conv_job_run(&jobs[t]);
    }
}

void dae_conv2d_forward_ex(float *out, const float *in, const float *w, const uint32_t *wbf,
                           const float *b, float *const *cols, int threads,
                           const dae_conv_geom *geo, dae_act act, float slope)
{
    conv_w cw = {w, wbf, NULL};
    conv2d_threads(out, in, &cw, b, cols, threads, geo, act, slope);
}

void dae_conv2d_forward_tiles(float *out, const float *in, const float *w, const uint16_t *wa,
                              const float *b, float *const *cols, int threads,
                              const dae_conv_geom *geo, dae_act act, float slope)
{
    conv_w cw = {w, NULL, wa};
    conv2d_threads(out, in, &cw, b, cols, threads, geo, act, slope);
}

void dae_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                        float *col, const dae_conv_geom *geo)
{
    conv_w cw = {w, NULL, NULL};
    conv2d_images(out, in, &cw, b, col, geo, DAE_ACT_IDENTITY, 0.0f);
}

void dae_conv2d_backward_tiles(float *din, float *dw, float *db, const float *dout,
                               const float *in, const float *w, const uint16_t *wd,
                               float *col, const dae_conv_geom *geo)
{
    int adw = dw && wd && use_amx_dw(geo), adin = din && wd && use_amx_din(geo);
    dae_conv2d_backward(adin ? NULL : din, adw ? NULL : dw, db, dout, in, w, col, geo);
    if (adw)
        dae_conv3x3_dw_amx(dw, dout, in, col, geo);
    if (!adin)
        return;
    /* din = conv(dout) with the flipped weights: OC channels in, C out */
    dae_conv_geom t = *geo;
    t.C = geo->OC;
    t.OC = geo->C;
    size_t P = (size_t)geo->H * geo->W;
    for (int n = 0; n < geo->B; n++)
        dae_conv3x3_forward_amx_tiles(din + (size_t)n * geo->C * P,
                                      dout + (size_t)n * geo->OC * P, wd, NULL, col, &t, 0,
                                      geo->H, DAE_ACT_IDENTITY, 0.0f);
}

void dae_conv2d_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, float *col, const dae_conv_geom *geo)
{
    int B = geo->B, C = geo->C, H = geo->H, W = geo->W, OC = geo->OC;
    int k = geo->k, s = geo->s, p = geo->p;
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    int P = OH * OW, K = C * k * k, G = conv_group(B, P);
    int direct = k == 1 && s == 1 && p == 0;
    if (db)
        for (int n = 0; n < B; n++)
            sum_channel_bias(db, dout + (size_t)n * OC * P, OC, (size_t)P);
    if (!dw && !din)
        return;
    if (use_conv3(geo)) {
        dae_conv3x3_backward(din, dw, dout, in, w, col, geo);
        return;
    }
    for (int n0 = 0; n0 < B; n0 += G) {
        int g = B - n0 < G ? B - n0 : G, N = g * P;
        const float *x = in + (size_t)n0 * C * H * W;
        const float *dy = dout + (size_t)n0 * OC * P;
        float *dx = din ? din + (size_t)n0 * C * H * W : NULL;
        if (g == 1) { /* in bands of output rows, like the forward */
            int R = band_rows(OH, OW);
            if (dx && !direct)
                memset(dx, 0, (size_t)C * H * W * sizeof *dx);
            for (int r0 = 0; r0 < OH; r0 += R) {
                int r1 = r0 + R < OH ? r0 + R : OH, n = (r1 - r0) * OW;
                const float *dyb = dy + (size_t)r0 * OW;
                if (dw) { /* dw(OC,K) += dy(OC,n) * col(K,n)^T */
                    if (direct) {
                        dae_sgemm(0, 1, OC, K, n, 1.0f, dyb, P, x + (size_t)r0 * OW, P, 1.0f,
                                  dw, K);
                    } else {
                        im2col_rows(col, (size_t)n, x, C, H, W, k, s, p, OW, r0, r1);
                        dae_sgemm(0, 1, OC, K, n, 1.0f, dyb, P, col, n, 1.0f, dw, K);
                    }
                }
                if (dx) { /* dcol(K,n) = W(OC,K)^T * dy(OC,n), then scattered back */
                    if (direct) {
                        dae_sgemm(1, 0, K, n, OC, 1.0f, w, K, dyb, P, 0.0f,
                                  dx + (size_t)r0 * OW, P);
                    } else {
                        dae_sgemm(1, 0, K, n, OC, 1.0f, w, K, dyb, P, 0.0f, col, n);
                        col2im_rows_add(dx, col, (size_t)n, C, H, W, k, s, p, OW, r0, r1);
                    }
                }
            }
            continue;
        }
        float *dyp = col + (size_t)K * N;
        to_side_by_side(dyp, dy, g, OC, P);
        if (dw) {
            for (int j = 0; j < g; j++)
                im2col(col + (size_t)j * P, (size_t)N, x + (size_t)j * C * H * W, C, H, W, k,
                       s, p, OH, OW);
            dae_sgemm(0, 1, OC, K, N, 1.0f, dyp, N, col, N, 1.0f, dw, K);
        }
        if (dx) {
            dae_sgemm(1, 0, K, N, OC, 1.0f, w, K, dyp, N, 0.0f, col, N);
            memset(dx, 0, (size_t)g * C * H * W * sizeof *dx);
            for (int j = 0; j < g; j++)
                col2im_add(dx + (size_t)j * C * H * W, col + (size_t)j * P, (size_t)N, C, H, W,
                           k, s, p, OH, OW);
        }
    }
}

/* =========================== conv_transpose2d ===========================
 * The adjoint of a conv2d that reads the (OH,OW) output and produces the (H,W) input.
 * Per group: X (C, g*P) side by side, col (K = OC*k*k, g*P) = W (C, K)^T * X, then col2im
 * of each image's columns into its output. */

/* Stride-2 padding-1 3x3 transposed convolutions (output padding 0 or 1) go to the taps
 * kernel: output pixel (2i+a, 2j+b) gathers input (i, j) through tap kh = 1 when a = 0, and
 * input rows i+1 (kh 0) and i (kh 2) when a = 1; columns alike. So each of the 4 output
 * phases is a stride-1 convolution of the input with 1, 2 or 4 taps (9 in all, no zeros
 * multiplied), its result interleaved into the output. */
static int use_taps_t(int k, int s, int p, int op)
{
    return k == 3 && s == 2 && p == 1 && (op == 0 || op == 1) && dae_conv3x3_supported();
}

/* The taps of output phase (a, b) on an input of width W. */
static void conv_t_taps(dae_conv_taps *tp, int a, int b, int W)
{
    static const int kk[2][2] = {{1, -1}, {0, 2}}, dd[2][2] = {{0, 0}, {1, 0}};
    int nr = a ? 2 : 1, nc = b ? 2 : 1;
    tp->T = nr * nc;
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            int t = r * nc + c;
            tp->pl[t] = 0;
            tp->dy[t] = dd[a][r];
            tp->dx[t] = dd[b][c];
            tp->wt[t] = kk[a][r] * 3 + kk[b][c];
            tp->off[t] = (ptrdiff_t)tp->dy[t] * W + tp->dx[t];
        }
}

int dae_conv2d_bf16_layer(int k, int s, int p)
{
    return k == 3 && p == 1 && (s == 1 || s == 2) && dae_bf16_supported() &&
           dae_conv3x3_supported();
}

int dae_conv_t2d_bf16_layer(int k, int s, int p, int op)
{
    return use_taps_t(k, s, p, op) && dae_bf16_supported();
}

const char *dae_conv2d_kernel_name(const dae_conv_geom *geo, int bf16)
{
    int k = geo->k, s = geo->s, p = geo->p;
    if (use_conv3(geo))
        return bf16 && use_amx(geo) ? "conv3 AMX, bf16" : "conv3 direct, fp32";
    if (use_taps(geo))
        return bf16 && dae_conv2d_bf16_layer(k, s, p) ? "taps, bf16" : "taps, fp32";
    return k == 1 && s == 1 && p == 0 ? "sgemm, fp32" : "im2col + sgemm, fp32";
}

const char *dae_conv_t2d_kernel_name(const dae_conv_geom *geo, int bf16)
{
    int k = geo->k, s = geo->s, p = geo->p, op = geo->op;
    if (!use_taps_t(k, s, p, op))
        return "col2im + sgemm, fp32";
    return bf16 && dae_conv_t2d_bf16_layer(k, s, p, op) ? "taps, bf16" : "taps, fp32";
}

size_t dae_conv_t2d_col_size(const dae_conv_geom *geo)
{
    int B = geo->B, C = geo->C, H = geo->H, W = geo->W, OC = geo->OC;
    int k = geo->k, s = geo->s, p = geo->p, op = geo->op;
    size_t P = (size_t)H * W, g = (size_t)conv_group(B, (int)P);
    size_t im2col = ((size_t)OC * k * k + (g > 1 ? (size_t)C : 0)) * g * P;
    if (!use_taps_t(k, s, p, op))
        return im2col;
    /* the input side by side, its bf16 channel pairs (bf16 weights), the 4 phases'
     * outputs, the masks */
    size_t taps = ((g > 1 ? (size_t)C : 0) + (size_t)(C + 1) / 2 + 4 * (size_t)OC) * g * P +
                  dae_conv3x3_taps_scratch(g * P, 4);
    return taps > im2col ? taps : im2col;
}

/* The geo->B images at x by the taps kernel (use_taps_t). */
static void conv_t2d_taps(float *out, const float *x, const float *w, const uint32_t *wbf,
                          const float *b, float *col, const dae_conv_geom *geo, dae_act act,
                          float slope)
{
    int g = geo->B, C = geo->C, H = geo->H, W = geo->W, OC = geo->OC;
    int OH = (H - 1) * geo->s - 2 * geo->p + geo->k + geo->op;
    int OW = (W - 1) * geo->s - 2 * geo->p + geo->k + geo->op;
    size_t P = (size_t)H * W, N = (size_t)g * P, OP = (size_t)OH * OW;
    const float *xs = x;
    float *ph = col;
    if (g > 1) {
        to_side_by_side(col, x, g, C, (int)P);
        xs = col;
        ph = col + (size_t)C * N;
    }
    float *mk = ph + 4 * (size_t)OC * N;
    uint32_t *xb = NULL;
    if (wbf) { /* the channel pairs once for the 4 phases */
        xb = (uint32_t *)(void *)mk;
        dae_bf16_pack_pairs(xb, xs, C, N);
        mk += (size_t)(C + 1) / 2 * N;
    }
    for (int a = 0; a < 2; a++)
        for (int bb = 0; bb < 2; bb++) {
            dae_conv_taps tp = {.C = C, .NPL = 1, .Hp = H, .Wp = W, .OC = OC, .N = N,
                                .wo = 9, .wc = (size_t)OC * 9};
            conv_t_taps(&tp, a, bb, W);
            float *y = ph + (size_t)(a * 2 + bb) * OC * N;
            if (xb)
                dae_conv3x3_taps_forward_bf16(y, xb, wbf, b, &tp, mk, act, slope);
            else
                dae_conv3x3_taps_forward(y, xs, w, b, &tp, mk, act, slope);
            /* interleave: phase row i of image j is output row 2i+a (when inside) */
            int rows = (OH - a + 1) / 2, cols = (OW - bb + 1) / 2;
            for (int j = 0; j < g; j++)
                for (int oc = 0; oc < OC; oc++) {
                    const float *src = y + (size_t)oc * N + (size_t)j * P;
                    float *dst = out + ((size_t)j * OC + oc) * OP + (size_t)a * OW + bb;
                    for (int i = 0; i < rows; i++, src += W, dst += 2 * (size_t)OW)
                        for (int c = 0; c < cols; c++)
                            dst[2 * c] = src[c];
                }
        }
}

void dae_conv_t2d_forward_ex(float *out, const float *in, const float *w,
                             const uint32_t *wbf, const float *b, float *col,
                             const dae_conv_geom *geo, dae_act act, float slope)
{
    int B = geo->B, C = geo->C, H = geo->H, W = geo->W, OC = geo->OC;
    int k = geo->k, s = geo->s, p = geo->p, op = geo->op;
    int OH = (H - 1) * s - 2 * p + k + op, OW = (W - 1) * s - 2 * p + k + op;
    int P = H * W, K = OC * k * k, G = conv_group(B, P);
    size_t osz = (size_t)OC * OH * OW;
    for (int n0 = 0; n0 < B; n0 += G) {
        int g = B - n0 < G ? B - n0 : G, N = g * P;
        const float *x = in + (size_t)n0 * C * P;
        if (use_taps_t(k, s, p, op)) {
            dae_conv_geom run = *geo;
            run.B = g;
            conv_t2d_taps(out + (size_t)n0 * osz, x, w, wbf, b, col, &run, act, slope);
            continue;
        }
        if (g > 1) {
            float *xp = col + (size_t)K * N;
            to_side_by_side(xp, x, g, C, P);
            x = xp;
        }
        dae_sgemm(1, 0, K, N, C, 1.0f, w, K, x, N, 0.0f, col, N);
        for (int j = 0; j < g; j++) {
            float *y = out + (size_t)(n0 + j) * osz;
            memset(y, 0, osz * sizeof *y);
            col2im_add(y, col + (size_t)j * P, (size_t)N, OC, OH, OW, k, s, p, H, W);
            add_channel_bias(y, b, OC, (size_t)OH * OW, act, slope);
        }
    }
}

void dae_conv_t2d_forward(float *out, const float *in, const float *w, const float *b,
                          float *col, const dae_conv_geom *geo)
{
    dae_conv_t2d_forward_ex(out, in, w, NULL, b, col, geo, DAE_ACT_IDENTITY, 0.0f);
}

void dae_conv_t2d_backward(float *din, float *dw, float *db, const float *dout,
                           const float *in, const float *w, float *col,
                           const dae_conv_geom *geo)
{
    int B = geo->B, C = geo->C, H = geo->H, W = geo->W, OC = geo->OC;
    int k = geo->k, s = geo->s, p = geo->p, op = geo->op;
    int OH = (H - 1) * s - 2 * p + k + op, OW = (W - 1) * s - 2 * p + k + op;
    int P = H * W, K = OC * k * k, G = conv_group(B, P);
    size_t osz = (size_t)OC * OH * OW;
    if (db)
        for (int n = 0; n < B; n++)
            sum_channel_bias(db, dout + (size_t)n * osz, OC, (size_t)OH * OW);
    if (!dw && !din)
        return;
    for (int n0 = 0; n0 < B; n0 += G) {
        int g = B - n0 < G ? B - n0 : G, N = g * P;
        for (int j = 0; j < g; j++) /* dcol (K, g*P) */
            im2col(col + (size_t)j * P, (size_t)N, dout + (size_t)(n0 + j) * osz, OC, OH, OW,
                   k, s, p, H, W);
        const float *x = in + (size_t)n0 * C * P;
        float *xp = col + (size_t)K * N;
        if (dw) { /* dw(C,K) += X(C,N) * dcol(K,N)^T */
            if (g > 1) {
                to_side_by_side(xp, x, g, C, P);
                x = xp;
            }
            dae_sgemm(0, 1, C, K, N, 1.0f, x, N, col, N, 1.0f, dw, K);
        }
        if (din) { /* dX(C,N) = W(C,K) * dcol(K,N) */
            float *dx = din + (size_t)n0 * C * P;
            if (g == 1) {
                dae_sgemm(0, 0, C, P, K, 1.0f, w, K, col, P, 0.0f, dx, P);
            } else {
                dae_sgemm(0, 0, C, N, K, 1.0f, w, K, col, N, 0.0f, xp, N);
                from_side_by_side(dx, xp, NULL, g, C, P, DAE_ACT_IDENTITY, 0.0f);
            }
        }
    }
}

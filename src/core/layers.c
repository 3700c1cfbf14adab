/* layers.c — forward/backward kernels: dense, conv2d and transposed conv (im2col + sgemm),
 * activations, 2x upsampling (nearest, bilinear with PyTorch's align_corners=False). */
#include "daed/layers.h"

#include <math.h>
#include <string.h>

#include "daed/blas.h"

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
 * producing (OH,OW): col is (C*k*k, OH*OW), row (c,kh,kw), column (oh,ow). Conv2d uses it
 * forward (im2col) and backward (col2im); the transposed conv uses it the other way round
 * with its *output* as the "image". */

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

static void im2col(float *col, const float *img, int C, int H, int W, int k, int s, int p,
                   int OH, int OW)
{
    for (int c = 0; c < C; c++) {
        const float *plane = img + (size_t)c * H * W;
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
                float *row = col + ((size_t)(c * k + kh) * k + kw) * OH * OW;
                int lo, hi;
                valid_range(kw, s, p, W, OW, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    float *dst = row + (size_t)oh * OW;
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
                    else
                        for (int ow = lo; ow < hi; ow++)
                            dst[ow] = src[ow * s + off];
                    for (int ow = hi; ow < OW; ow++)
                        dst[ow] = 0.0f;
                }
            }
    }
}

/* img += col2im(col); the adjoint of im2col. */
static void col2im_add(float *img, const float *col, int C, int H, int W, int k, int s, int p,
                       int OH, int OW)
{
    for (int c = 0; c < C; c++) {
        float *plane = img + (size_t)c * H * W;
        for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
                const float *row = col + ((size_t)(c * k + kh) * k + kw) * OH * OW;
                int lo, hi;
                valid_range(kw, s, p, W, OW, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * s - p + kh;
                    if (ih < 0 || ih >= H)
                        continue;
                    const float *src = row + (size_t)oh * OW;
                    float *dst = plane + (size_t)ih * W;
                    int off = kw - p;
                    if (s == 1)
                        for (int ow = lo; ow < hi; ow++)
                            dst[ow + off] += src[ow];
                    else
                        for (int ow = lo; ow < hi; ow++)
                            dst[ow * s + off] += src[ow];
                }
            }
    }
}

static void add_channel_bias(float *out, const float *b, int OC, size_t plane)
{
    for (int oc = 0; oc < OC; oc++) {
        float v = b[oc];
        float *o = out + (size_t)oc * plane;
        for (size_t j = 0; j < plane; j++)
            o[j] += v;
    }
}

static void sum_channel_bias(float *db, const float *dout, int OC, size_t plane)
{
    for (int oc = 0; oc < OC; oc++) {
        const float *d = dout + (size_t)oc * plane;
        float acc = 0.0f;
        for (size_t j = 0; j < plane; j++)
            acc += d[j];
        db[oc] += acc;
    }
}

/* ================================ conv2d ================================ */

size_t dae_conv2d_col_size(int C, int H, int W, int k, int s, int p)
{
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    return (size_t)C * k * k * OH * OW;
}

/* Per image: out(OC, OH*OW) = W(OC, C*k*k) * col(C*k*k, OH*OW). The col size in the header
 * is per image, which keeps the scratch independent of the batch. */
void dae_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                        float *col, int B, int C, int H, int W, int OC, int k, int s, int p)
{
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    int P = OH * OW, K = C * k * k;
    /* 1x1 stride-1 unpadded convolutions read the image as the col matrix directly */
    int direct = k == 1 && s == 1 && p == 0;
    for (int n = 0; n < B; n++) {
        const float *x = in + (size_t)n * C * H * W;
        float *y = out + (size_t)n * OC * P;
        if (!direct)
            im2col(col, x, C, H, W, k, s, p, OH, OW);
        dae_sgemm(0, 0, OC, P, K, 1.0f, w, K, direct ? x : col, P, 0.0f, y, P);
        if (b)
            add_channel_bias(y, b, OC, (size_t)P);
    }
}

void dae_conv2d_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, float *col, int B, int C, int H, int W, int OC,
                         int k, int s, int p)
{
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    int P = OH * OW, K = C * k * k;
    int direct = k == 1 && s == 1 && p == 0;
    for (int n = 0; n < B; n++) {
        const float *x = in + (size_t)n * C * H * W;
        const float *dy = dout + (size_t)n * OC * P;
        if (dw) { /* dw(OC,K) += dy(OC,P) * col(K,P)^T */
            if (!direct)
                im2col(col, x, C, H, W, k, s, p, OH, OW);
            dae_sgemm(0, 1, OC, K, P, 1.0f, dy, P, direct ? x : col, P, 1.0f, dw, K);
        }
        if (db)
            sum_channel_bias(db, dy, OC, (size_t)P);
        if (din) { /* dcol(K,P) = W(OC,K)^T * dy(OC,P), then scatter back */
            float *dx = din + (size_t)n * C * H * W;
            if (direct) {
                dae_sgemm(1, 0, K, P, OC, 1.0f, w, K, dy, P, 0.0f, dx, P);
            } else {
                dae_sgemm(1, 0, K, P, OC, 1.0f, w, K, dy, P, 0.0f, col, P);
                memset(dx, 0, (size_t)C * H * W * sizeof *dx);
                col2im_add(dx, col, C, H, W, k, s, p, OH, OW);
            }
        }
    }
}

/* =========================== conv_transpose2d ===========================
 * The adjoint of a conv2d that reads the (OH,OW) output and produces the (H,W) input:
 * col(OC*k*k, H*W) = W(C, OC*k*k)^T * x(C, H*W), then col2im into the output. */

size_t dae_conv_t2d_col_size(int C, int H, int W, int OC, int k, int s, int p, int op)
{
    return (size_t)OC * k * k * H * W;
}

void dae_conv_t2d_forward(float *out, const float *in, const float *w, const float *b,
                          float *col, int B, int C, int H, int W, int OC, int k, int s, int p,
                          int op)
{
    int OH = (H - 1) * s - 2 * p + k + op, OW = (W - 1) * s - 2 * p + k + op;
    int P = H * W, K = OC * k * k;
    for (int n = 0; n < B; n++) {
        const float *x = in + (size_t)n * C * P;
        float *y = out + (size_t)n * OC * OH * OW;
        dae_sgemm(1, 0, K, P, C, 1.0f, w, K, x, P, 0.0f, col, P);
        memset(y, 0, (size_t)OC * OH * OW * sizeof *y);
        col2im_add(y, col, OC, OH, OW, k, s, p, H, W);
        if (b)
            add_channel_bias(y, b, OC, (size_t)OH * OW);
    }
}

void dae_conv_t2d_backward(float *din, float *dw, float *db, const float *dout,
                           const float *in, const float *w, float *col, int B, int C, int H,
                           int W, int OC, int k, int s, int p, int op)
{
    int OH = (H - 1) * s - 2 * p + k + op, OW = (W - 1) * s - 2 * p + k + op;
    int P = H * W, K = OC * k * k;
    for (int n = 0; n < B; n++) {
        const float *x = in + (size_t)n * C * P;
        const float *dy = dout + (size_t)n * OC * OH * OW;
        if (db)
            sum_channel_bias(db, dy, OC, (size_t)OH * OW);
        if (!dw && !din)
            continue;
        im2col(col, dy, OC, OH, OW, k, s, p, H, W); /* dcol(K, P) */
        if (dw) /* dw(C,K) += x(C,P) * dcol(K,P)^T */
            dae_sgemm(0, 1, C, K, P, 1.0f, x, P, col, P, 1.0f, dw, K);
        if (din) /* dx(C,P) = W(C,K) * dcol(K,P) */
            dae_sgemm(0, 0, C, P, K, 1.0f, w, K, col, P, 0.0f, din + (size_t)n * C * P, P);
    }
}

/* ============================== activations ============================== */

void dae_act_forward(float *out, const float *in, size_t n, dae_act act, float slope)
{
    switch (act) {
    case DAE_ACT_IDENTITY:
        if (out != in)
            memmove(out, in, n * sizeof *out);
        break;
    case DAE_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            out[i] = in[i] > 0.0f ? in[i] : 0.0f;
        break;
    case DAE_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            out[i] = in[i] > 0.0f ? in[i] : in[i] * slope;
        break;
    case DAE_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            out[i] = tanhf(in[i]);
        break;
    case DAE_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            out[i] = 1.0f / (1.0f + expf(-in[i]));
        break;
    }
}

/* From the output: relu/leaky (slope > 0) keep the sign of their input, tanh' = 1 - y^2,
 * sigmoid' = y (1 - y). din may alias dout. */
void dae_act_backward(float *din, const float *dout, const float *out, size_t n, dae_act act,
                      float slope)
{
    switch (act) {
    case DAE_ACT_IDENTITY:
        if (din != dout)
            memmove(din, dout, n * sizeof *din);
        break;
    case DAE_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
        break;
    case DAE_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            din[i] = out[i] > 0.0f ? dout[i] : dout[i] * slope;
        break;
    case DAE_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            din[i] = dout[i] * (1.0f - out[i] * out[i]);
        break;
    case DAE_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            din[i] = dout[i] * out[i] * (1.0f - out[i]);
        break;
    }
}

/* ============================== upsampling ==============================
 * Bilinear, align_corners=False, scale 2: output index o reads source o/2 - 1/4, clamped at
 * 0 below; so even o = 2i mixes rows i-1, i with weights 1/4, 3/4 (row 0 alone at i = 0)
 * and odd o = 2i+1 mixes rows i, i+1 with 3/4, 1/4 (row H-1 alone at the end). */

/* Source rows and weights of output index o along a dimension of input size n. */
static inline void bil_src(int o, int n, int *i0, int *i1, float *w0, float *w1)
{
    int i = o >> 1;
    if (o & 1) {
        *i0 = i;
        *i1 = i + 1 < n ? i + 1 : i;
        *w0 = 0.75f;
        *w1 = 0.25f;
    } else if (i == 0) {
        *i0 = 0;
        *i1 = 0;
        *w0 = 1.0f;
        *w1 = 0.0f;
    } else {
        *i0 = i - 1;
        *i1 = i;
        *w0 = 0.25f;
        *w1 = 0.75f;
    }
}

void dae_upsample2x_forward(float *out, const float *in, int B, int C, int H, int W,
                            int bilinear)
{
    int OW = 2 * W;
    for (size_t pl = 0; pl < (size_t)B * C; pl++) {
        const float *x = in + pl * H * W;
        float *y = out + pl * 4 * H * W;
        if (!bilinear) {
            for (int i = 0; i < H; i++) {
                float *r0 = y + (size_t)(2 * i) * OW, *r1 = r0 + OW;
                const float *src = x + (size_t)i * W;
                for (int j = 0; j < W; j++)
                    r0[2 * j] = r0[2 * j + 1] = src[j];
                memcpy(r1, r0, (size_t)OW * sizeof *r1);
            }
            continue;
        }
        for (int oh = 0; oh < 2 * H; oh++) {
            int h0, h1;
            float hw0, hw1;
            bil_src(oh, H, &h0, &h1, &hw0, &hw1);
            const float *a = x + (size_t)h0 * W, *b = x + (size_t)h1 * W;
            float *dst = y + (size_t)oh * OW;
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                float ww0, ww1;
                bil_src(ow, W, &w0, &w1, &ww0, &ww1);
                dst[ow] = hw0 * (ww0 * a[w0] + ww1 * a[w1]) + hw1 * (ww0 * b[w0] + ww1 * b[w1]);
            }
        }
    }
}

void dae_upsample2x_backward(float *din, const float *dout, int B, int C, int H, int W,
                             int bilinear)
{
    int OW = 2 * W;
    for (size_t pl = 0; pl < (size_t)B * C; pl++) {
        float *dx = din + pl * H * W;
        const float *dy = dout + pl * 4 * H * W;
        if (!bilinear) {
            for (int i = 0; i < H; i++) {
                const float *r0 = dy + (size_t)(2 * i) * OW, *r1 = r0 + OW;
                float *dst = dx + (size_t)i * W;
                for (int j = 0; j < W; j++)
                    dst[j] = (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
            }
            continue;
        }
        memset(dx, 0, (size_t)H * W * sizeof *dx);
        for (int oh = 0; oh < 2 * H; oh++) {
            int h0, h1;
            float hw0, hw1;
            bil_src(oh, H, &h0, &h1, &hw0, &hw1);
            float *a = dx + (size_t)h0 * W, *b = dx + (size_t)h1 * W;
            const float *src = dy + (size_t)oh * OW;
            for (int ow = 0; ow < OW; ow++) {
                int w0, w1;
                float ww0, ww1;
                bil_src(ow, W, &w0, &w1, &ww0, &ww1);
                float g = src[ow];
                a[w0] += hw0 * ww0 * g;
                a[w1] += hw0 * ww1 * g;
                b[w0] += hw1 * ww0 * g;
                b[w1] += hw1 * ww1 * g;
            }
        }
    }
}

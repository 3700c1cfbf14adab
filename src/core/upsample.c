/* upsample.c — the resampling layers' kernels (layers.h): 2x upsampling (nearest, and
 * bilinear with PyTorch's align_corners=False) and pixel (un)shuffle, forward and backward. */
#include "daed/core/layers.h"

#include <math.h>
#include <string.h>

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

/* ---- pixel (un)shuffle ---- */

/* One plane of each: out (OC=C*r*r, H/r, W/r) planes from in plane c, row by row. */
void dae_pixel_unshuffle(float *out, const float *in, int B, int C, int H, int W, int r)
{
    int OH = H / r, OW = W / r;
    size_t op = (size_t)OH * OW;
    for (size_t pl = 0; pl < (size_t)B * C; pl++) {
        const float *x = in + pl * H * W;
        float *y = out + pl * (size_t)r * r * op; /* channels pl*r*r .. */
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++) {
                float *dst = y + (size_t)(i * r + j) * op;
                for (int oy = 0; oy < OH; oy++) {
                    const float *src = x + (size_t)(oy * r + i) * W + j;
                    float *d = dst + (size_t)oy * OW;
                    for (int ox = 0; ox < OW; ox++)
                        d[ox] = src[(size_t)ox * r];
                }
            }
    }
}

void dae_pixel_shuffle(float *out, const float *in, int B, int C, int H, int W, int r)
{
    int OC = C / (r * r), OW = W * r;
    size_t ip = (size_t)H * W;
    for (size_t pl = 0; pl < (size_t)B * OC; pl++) {
        const float *x = in + pl * (size_t)r * r * ip;
        float *y = out + pl * (size_t)r * r * ip;
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++) {
                const float *src = x + (size_t)(i * r + j) * ip;
                for (int iy = 0; iy < H; iy++) {
                    const float *s = src + (size_t)iy * W;
                    float *d = y + (size_t)(iy * r + i) * OW + j;
                    for (int ix = 0; ix < W; ix++)
                        d[(size_t)ix * r] = s[ix];
                }
            }
    }
}

void dae_add_forward(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

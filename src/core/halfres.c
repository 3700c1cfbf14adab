/* halfres.c — a plane at half resolution and back (halfres.h). */
#include "daed/core/halfres.h"

#include <stddef.h>

int dae_half_side(int n)
{
    return (n + 1) / 2;
}

void dae_plane_half_row(const float *src, const unsigned char *src8, int w, int h, int y,
                        float *dst)
{
    size_t r0 = (size_t)(2 * y) * w, r1 = 2 * y + 1 < h ? r0 + w : r0;
    for (int x = 0; x < dae_half_side(w); x++) {
        size_t x0 = (size_t)2 * x, x1 = 2 * x + 1 < w ? x0 + 1 : x0;
        dst[x] = src8 ? 0.25f * ((src8[r0 + x0] + src8[r0 + x1] + src8[r1 + x0] +
                                  src8[r1 + x1]) / 255.0f)
                      : 0.25f * ((src[r0 + x0] + src[r0 + x1]) + (src[r1 + x0] + src[r1 + x1]));
    }
}

void dae_plane_half(const float *src, int w, int h, float *dst)
{
    for (int y = 0; y < dae_half_side(h); y++)
        dae_plane_half_row(src, NULL, w, h, y, dst + (size_t)y * dae_half_side(w));
}

/* Doubling places every output pixel a quarter of the way from one input pixel towards the
 * next: even outputs 2k sit at k - 0.25 (taps k-2 .. k+1 at distances 1.75, 0.75, 0.25,
 * 1.25), odd outputs 2k+1 at k + 0.25 (taps k-1 .. k+2 at 1.25, 0.25, 0.75, 1.75). Keys'
 * kernel (a = -0.75) at those distances, exactly (binary fractions; each set sums to 1). */
static const float TAPS[2][4] = {
    {-0.03515625f, 0.26171875f, 0.87890625f, -0.10546875f},
    {-0.10546875f, 0.87890625f, 0.26171875f, -0.03515625f},
};

static int clampi(int v, int n)
{
    return v < 0 ? 0 : v >= n ? n - 1 : v;
}

/* Output sample i of a doubled line of n inputs: its first tap's input and its weights. */
static const float *taps_at(int i, int *first)
{
    *first = (i >> 1) - 2 + (i & 1);
    return TAPS[i & 1];
}

void dae_plane_double(const float *src, int w, int h, float *dst)
{
    int hw = dae_half_side(w), hh = dae_half_side(h);
    for (int y = 0; y < h; y++) {
        int fy;
        const float *wy = taps_at(y, &fy);
        const float *rows[4];
        for (int t = 0; t < 4; t++)
            rows[t] = src + (size_t)clampi(fy + t, hh) * hw;
        float *out = dst + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            int fx;
            const float *wx = taps_at(x, &fx);
            float acc = 0.0f;
            for (int t = 0; t < 4; t++) {
                const float *r = rows[t];
                float v = wx[0] * r[clampi(fx, hw)] + wx[1] * r[clampi(fx + 1, hw)] +
                          wx[2] * r[clampi(fx + 2, hw)] + wx[3] * r[clampi(fx + 3, hw)];
                acc += wy[t] * v;
            }
            out[x] = acc;
        }
    }
}

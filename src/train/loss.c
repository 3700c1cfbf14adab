/* loss.c — reconstruction losses (MSE, BCE) and code penalties (sparse L1, contractive). */
#include "daed/train/loss.h"

#include <math.h>

double dae_loss_mse(float *dout, const float *out, const float *target, size_t n)
{
    if (n == 0)
        return 0.0;
    double sum = 0.0;
    const float scale = 2.0f / (float)n;
    for (size_t i = 0; i < n; i++) {
        float d = out[i] - target[i];
        sum += (double)(d * d);
        if (dout)
            dout[i] = scale * d;
    }
    return sum / (double)n;
}

double dae_loss_bce(float *dout, const float *out, const float *target, size_t n)
{
    if (n == 0)
        return 0.0;
    double sum = 0.0;
    const float inv_n = 1.0f / (float)n;
    for (size_t i = 0; i < n; i++) {
        float p = out[i], t = target[i];
        if (!(p >= DAE_BCE_EPS)) /* also catches NaN: its loss stays NaN below */
            p = p != p ? p : DAE_BCE_EPS;
        if (p > 1.0f - DAE_BCE_EPS)
            p = 1.0f - DAE_BCE_EPS;
        sum -= (double)t * log((double)p) + (1.0 - (double)t) * log1p(-(double)p);
        if (dout)
            dout[i] = (p - t) / (p * (1.0f - p)) * inv_n;
    }
    return sum / (double)n;
}

double dae_loss_eval(dae_loss_kind kind, float *dout, const float *out, const float *target,
                     size_t n)
{
    return kind == DAE_LOSS_BCE ? dae_loss_bce(dout, out, target, n)
                                : dae_loss_mse(dout, out, target, n);
}

double dae_sparse_l1(float *dz, const float *z, int B, size_t dim, float lambda)
{
    if (B <= 0)
        return 0.0;
    size_t n = (size_t)B * dim;
    double sum = 0.0;
    const float g = lambda / (float)B;
    for (size_t i = 0; i < n; i++) {
        float v = z[i];
        sum += fabs((double)v);
        if (dz)
            dz[i] += v > 0.0f ? g : (v < 0.0f ? -g : 0.0f);
    }
    return (double)lambda * sum / (double)B;
}

double dae_contractive_penalty(float *dh, float *dw, const float *h, const float *w,
                               float *wsq, int B, int in_f, int hidden, dae_act act,
                               float lambda)
{
    if (B <= 0)
        return 0.0;
    for (int j = 0; j < hidden; j++) {
        const float *row = w + (size_t)j * in_f;
        float s = 0.0f;
        for (int i = 0; i < in_f; i++)
            s += row[i] * row[i];
        wsq[j] = s;
    }
    const int sig = act == DAE_ACT_SIGMOID;
    const float scale = lambda / (float)B;
    double total = 0.0;
    /* gsum_j = sum_b g_bj feeds the direct weight term; kept per j in a second pass so no
     * scratch beyond wsq is needed. */
    for (int b = 0; b < B; b++) {
        const float *hb = h + (size_t)b * hidden;
        float *dhb = dh ? dh + (size_t)b * hidden : NULL;
        for (int j = 0; j < hidden; j++) {
            float hv = hb[j];
            float d = sig ? hv * (1.0f - hv) : 1.0f - hv * hv;
            total += (double)(d * d) * (double)wsq[j];
            if (dhb)
                dhb[j] += scale * wsq[j] * (sig ? 2.0f * d * (1.0f - 2.0f * hv) : -4.0f * hv * d);
        }
    }
    if (dw) {
        for (int j = 0; j < hidden; j++) {
            float gsum = 0.0f;
            for (int b = 0; b < B; b++) {
                float hv = h[(size_t)b * hidden + j];
                float d = sig ? hv * (1.0f - hv) : 1.0f - hv * hv;
                gsum += d * d;
            }
            const float c = 2.0f * scale * gsum;
            const float *row = w + (size_t)j * in_f;
            float *drow = dw + (size_t)j * in_f;
            for (int i = 0; i < in_f; i++)
                drow[i] += c * row[i];
        }
    }
    return (double)lambda * total / (double)B;
}

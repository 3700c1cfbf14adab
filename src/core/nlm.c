/* nlm.c — guided non-local means (nlm.h), one block of the image at a time.
 *
 * A block of BAND x BLOCK output pixels is copied, with the border repeated, into padded
 * planes of the guide and the noisy image (pad = search + patch on every side), small
 * enough to stay in the cache while every offset sweeps it (struct band holds one). Then
 * for each offset d: the squared guide differences over the block grown by the patch
 * radius, their window sums (horizontal, then vertical), the weights, and the weighted
 * noisy pixels at p + d added to the block's accumulators. Everything is a flat loop over
 * a row, which the compiler vectorizes. */
#include "daed/core/nlm.h"

#include <math.h>
#include <stdlib.h>

enum { BAND = 32, BLOCK = 256 };

/* The two hot loops are built for AVX-512, AVX2 and plain x86-64; the loader picks one. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define NLM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NLM_CLONES
#endif

typedef struct band {
    int c, h, W, pad, patch; /* the image: channels, height, width */
    int x0, w;           /* the block: first column, width (<= BLOCK) */
    int cols;            /* w + 2 pad */
    float *g, *n;        /* padded guide and noisy block: (c, BAND + 2 pad, cols) */
    float *diff, *hsum;  /* (BAND + 2 patch, w + 2 patch) and (BAND + 2 patch, w) */
    float *acc, *wsum;   /* (c, BAND, w) and (BAND, w) */
    float *wt;           /* (w): one row's weights */
} band;

static void band_free(band *b)
{
    free(b->g);
    free(b->n);
    free(b->diff);
    free(b->hsum);
    free(b->acc);
    free(b->wsum);
    free(b->wt);
}

static int band_alloc(band *b, int c, int h, int W, const dae_nlm_params *p)
{
    int w = W < BLOCK ? W : BLOCK;
    *b = (band){.c = c, .h = h, .W = W, .patch = p->patch, .pad = p->search + p->patch};
    b->cols = w + 2 * b->pad;
    size_t plane = (size_t)(BAND + 2 * b->pad) * (size_t)b->cols * (size_t)c;
    size_t rows = (size_t)(BAND + 2 * p->patch);
    b->g = malloc(plane * sizeof *b->g);
    b->n = malloc(plane * sizeof *b->n);
    b->diff = malloc(rows * (size_t)(w + 2 * p->patch) * sizeof *b->diff);
    b->hsum = malloc(rows * (size_t)w * sizeof *b->hsum);
    b->acc = malloc((size_t)c * BAND * (size_t)w * sizeof *b->acc);
    b->wsum = malloc((size_t)BAND * (size_t)w * sizeof *b->wsum);
    b->wt = malloc((size_t)w * sizeof *b->wt);
    if (b->g && b->n && b->diff && b->hsum && b->acc && b->wsum && b->wt)
        return 0;
    band_free(b);
    return -1;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

typedef dae_nlm_in planes; /* floats, or 8-bit values read as v / 255 */

static float at(const planes *p, size_t i) { return p->f ? p->f[i] : (float)p->u8[i] / 255.0f; }

/* Padded copies of the block at (x0, y0), bw x nb pixels (the border repeated). */
static void band_load(band *b, const planes *noisy, const planes *guide, int x0, int y0,
                      int bw, int nb)
{
    b->x0 = x0;
    b->w = bw;
    b->cols = bw + 2 * b->pad;
    int prow = nb + 2 * b->pad;
    for (int ch = 0; ch < b->c; ch++)
        for (int i = 0; i < prow; i++) {
            size_t src = ((size_t)ch * b->h + (size_t)clampi(y0 - b->pad + i, 0, b->h - 1))
                         * (size_t)b->W;
            size_t dst = ((size_t)ch * (BAND + 2 * b->pad) + (size_t)i) * (size_t)b->cols;
            for (int j = 0; j < b->cols; j++) {
                size_t x = (size_t)clampi(x0 + j - b->pad, 0, b->W - 1);
                b->g[dst + (size_t)j] = at(guide, src + x);
                b->n[dst + (size_t)j] = at(noisy, src + x);
            }
        }
}

/* Row i (padded coordinates) of channel ch of a padded plane. */
static const float *prow(const band *b, const float *plane, int ch, int i)
{
    return plane + ((size_t)ch * (BAND + 2 * b->pad) + (size_t)i) * (size_t)b->cols;
}

/* diff and hsum for offset (dy, dx) over band rows -patch .. nb + patch. */
NLM_CLONES static void band_window_rows(band *b, int nb, int dy, int dx)
{
    int P = b->patch, dw = b->w + 2 * P;
    float inv_c = 1.0f / (float)b->c;
    for (int r = 0; r < nb + 2 * P; r++) {
        float *restrict d = b->diff + (size_t)r * (size_t)dw;
        int i = b->pad - P + r;
        for (int x = 0; x < dw; x++)
            d[x] = 0.0f;
        for (int ch = 0; ch < b->c; ch++) {
            const float *restrict g0 = prow(b, b->g, ch, i) + (b->pad - P);
            const float *restrict g1 = prow(b, b->g, ch, i + dy) + (b->pad - P + dx);
            for (int x = 0; x < dw; x++) {
                float e = g0[x] - g1[x];
                d[x] += e * e;
            }
        }
        float *restrict hs = b->hsum + (size_t)r * (size_t)b->w;
        for (int x = 0; x < b->w; x++)
            hs[x] = d[x];
        for (int k = 1; k <= 2 * P; k++)
            for (int x = 0; x < b->w; x++)
                hs[x] += d[x + k];
        for (int x = 0; x < b->w; x++)
            hs[x] *= inv_c;
    }
}

/* Weights for offset (dy, dx) from hsum; the weighted noisy pixels into the accumulators. */
NLM_CLONES static void band_accumulate(band *b, int nb, int dy, int dx, float inv_h2)
{
    int P = b->patch, w = b->w;
    for (int r = 0; r < nb; r++) {
        float *restrict wt = b->wt;
        const float *restrict h0 = b->hsum + (size_t)r * (size_t)w;
        for (int x = 0; x < w; x++)
            wt[x] = h0[x];
        for (int k = 1; k <= 2 * P; k++) {
            const float *restrict hk = h0 + (size_t)k * (size_t)w;
            for (int x = 0; x < w; x++)
                wt[x] += hk[x];
        }
        for (int x = 0; x < w; x++) {
            float t = 1.0f - wt[x] * inv_h2;
            t = t > 0.0f ? t : 0.0f;
            t *= t;
            t *= t;
            wt[x] = t * t;
        }
        float *restrict ws = b->wsum + (size_t)r * (size_t)w;
        for (int x = 0; x < w; x++)
            ws[x] += wt[x];
        for (int ch = 0; ch < b->c; ch++) {
            const float *restrict nq = prow(b, b->n, ch, b->pad + r + dy) + (b->pad + dx);
            float *restrict a = b->acc + ((size_t)ch * BAND + (size_t)r) * (size_t)w;
            for (int x = 0; x < w; x++)
                a[x] += wt[x] * nq[x];
        }
    }
}

static void band_run(band *b, const dae_nlm_params *p, int nb, float inv_h2)
{
    int kmax = p->search / p->step;
    for (size_t i = 0; i < (size_t)b->c * BAND * (size_t)b->w; i++)
        b->acc[i] = 0.0f;
    for (size_t i = 0; i < (size_t)BAND * (size_t)b->w; i++)
        b->wsum[i] = 0.0f;
    for (int ky = -kmax; ky <= kmax; ky++)
        for (int kx = -kmax; kx <= kmax; kx++) {
            band_window_rows(b, nb, ky * p->step, kx * p->step);
            band_accumulate(b, nb, ky * p->step, kx * p->step, inv_h2);
        }
}

/* out = blend * (the band's mean) + (1 - blend) * guide, as floats or 8-bit values
 * (quantized as io/image.h dae_planes_quantize: round half up, clipped to 0..255). */
static void band_store(const band *b, const planes *guide, float *out, unsigned char *out8,
                       float blend, int y0, int nb)
{
    for (int ch = 0; ch < b->c; ch++)
        for (int r = 0; r < nb; r++) {
            const float *a = b->acc + ((size_t)ch * BAND + (size_t)r) * (size_t)b->w;
            const float *ws = b->wsum + (size_t)r * (size_t)b->w;
            size_t o = ((size_t)ch * b->h + (size_t)(y0 + r)) * (size_t)b->W + (size_t)b->x0;
            for (int x = 0; x < b->w; x++) {
                float v = blend * (a[x] / ws[x]) + (1.0f - blend) * at(guide, o + (size_t)x);
                if (out) {
                    out[o + (size_t)x] = v;
                } else {
                    float f = v * 255.0f + 0.5f;
                    f = f > 0.0f ? f : 0.0f;
                    out8[o + (size_t)x] = (unsigned char)(int)(f < 255.0f ? f : 255.0f);
                }
            }
        }
}

static double residual_rms(const planes *noisy, const planes *guide, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)at(noisy, i) - (double)at(guide, i);
        s += e * e;
    }
    return n > 0 ? sqrt(s / (double)n) : 0.0;
}

double dae_nlm_residual_rms(dae_nlm_in noisy, dae_nlm_in guide, long n)
{
    return n > 0 ? residual_rms(&noisy, &guide, (size_t)n) : 0.0;
}

float dae_nlm_auto_blend(double residual_rms, double white_sigma)
{
    if (!(residual_rms > 0.0) || !(white_sigma > 0.0))
        return 0.0f;
    double t = (residual_rms / white_sigma - DAE_NLM_RATIO_OFF) /
               (DAE_NLM_RATIO_FULL - DAE_NLM_RATIO_OFF);
    t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
    return (float)(t * DAE_NLM_BLEND_MAX);
}

static int check_params(int c, int h, int w, const dae_nlm_params *p, dae_error *err)
{
    if (c < 1 || h < 1 || w < 1 || c > 16 || w > (1 << 20))
        return dae_error_set(err, DAE_EINVAL, "nlm: image %dx%dx%d out of range", c, h, w);
    if (p->search < 1 || p->search > 64 || p->step < 1 || p->step > p->search ||
        p->patch < 0 || p->patch > 8 || !(p->strength > 0.0f) || !isfinite(p->strength) ||
        !(p->blend >= 0.0f && p->blend <= 1.0f))
        return dae_error_set(err, DAE_EINVAL,
                             "nlm: search %d (1..64), step %d (1..search), patch %d (0..8), "
                             "strength %g (> 0), blend %g (0..1) out of range",
                             p->search, p->step, p->patch, (double)p->strength,
                             (double)p->blend);
    return DAE_OK;
}

static int nlm_run(const planes *noisy, const planes *guide, float *out, unsigned char *out8,
                   int c, int h, int w, const dae_nlm_params *p, dae_error *err)
{
    int rc = check_params(c, h, w, p, err);
    if (rc)
        return rc;
    double s = residual_rms(noisy, guide, (size_t)c * (size_t)h * (size_t)w);
    double win = (double)(2 * p->patch + 1) * (double)(2 * p->patch + 1);
    double h2 = (double)p->strength * s * (double)p->strength * s;
    /* k(D / h^2) = max(0, 1 - D / (8 h^2))^8; D is the window sum / win. */
    float inv_h2 = h2 > 0.0 ? (float)(1.0 / (8.0 * h2 * win)) : 1e30f;
    band b;
    if (band_alloc(&b, c, h, w, p))
        return dae_error_set(err, DAE_ENOMEM, "nlm: out of memory for a block");
    for (int y0 = 0; y0 < h; y0 += BAND)
        for (int x0 = 0; x0 < w; x0 += BLOCK) {
            int nb = h - y0 < BAND ? h - y0 : BAND, bw = w - x0 < BLOCK ? w - x0 : BLOCK;
            band_load(&b, noisy, guide, x0, y0, bw, nb);
            band_run(&b, p, nb, inv_h2);
            band_store(&b, guide, out, out8, p->blend, y0, nb);
        }
    band_free(&b);
    return DAE_OK;
}

int dae_nlm_guided(dae_nlm_in noisy, dae_nlm_in guide, dae_nlm_out out, int c, int h, int w,
                   const dae_nlm_params *p, dae_error *err)
{
    if (!(noisy.f || noisy.u8) || !(guide.f || guide.u8) || !(out.f || out.u8))
        return dae_error_set(err, DAE_EINVAL, "nlm: missing planes");
    return nlm_run(&noisy, &guide, out.f, out.u8, c, h, w, p, err);
}

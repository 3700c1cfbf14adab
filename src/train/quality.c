/* quality.c — PSNR / SSIM (PROTOCOL §3.3), AUROC (sklearn) and quantiles (numpy). */
#include "daed/train/quality.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double clip01(double v)
{
    return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
}

double dae_mse_clipped(const float *out, const float *clean, size_t n)
{
    if (n == 0)
        return 0.0;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = clip01(out[i]) - (double)clean[i];
        s += d * d;
    }
    return s / (double)n;
}

double dae_psnr_from_mse(double mse)
{
    return 10.0 * log10(1.0 / (mse > DAE_MSE_FLOOR ? mse : DAE_MSE_FLOOR));
}

double dae_psnr(const float *out, const float *clean, size_t n)
{
    return dae_psnr_from_mse(dae_mse_clipped(out, clean, n));
}

/* ---- SSIM ---- */

#define SSIM_WIN 7
#define SSIM_PAD 3

/* Sums over 7 consecutive elements of a row, for every full window: out[j] = sum a[j..j+6]. */
static void box_row(const double *a, int w, double *out)
{
    double s = 0.0;
    for (int j = 0; j < SSIM_WIN; j++)
        s += a[j];
    out[0] = s;
    for (int j = 1; j + SSIM_WIN <= w; j++) {
        s += a[j + SSIM_WIN - 1] - a[j - 1];
        out[j] = s;
    }
}

/* One channel. Five box-filtered moments at the interior positions; a direct row/column
 * box sum (not the border-padded filter skimage runs) because only interior windows count. */
static double ssim_plane(const float *out, const float *clean, int h, int w, double *scratch)
{
    const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
    const double np = SSIM_WIN * SSIM_WIN, cov_norm = np / (np - 1.0);
    int ow = w - SSIM_WIN + 1, oh = h - SSIM_WIN + 1;
    /* scratch: 5 planes of h*ow row sums + 5 rows of w products */
    double *rs = scratch;                       /* 5 x h x ow */
    double *prod = scratch + 5 * (size_t)h * ow; /* 5 x w */
    for (int y = 0; y < h; y++) {
        const float *o = out + (size_t)y * w, *c = clean + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            double a = c[x], b = clip01(o[x]);
            prod[x] = a;
            prod[w + x] = b;
            prod[2 * w + x] = a * a;
            prod[3 * w + x] = b * b;
            prod[4 * w + x] = a * b;
        }
        for (int m = 0; m < 5; m++)
            box_row(prod + (size_t)m * w, w, rs + ((size_t)m * h + y) * ow);
    }
    double total = 0.0;
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            double s[5];
            for (int m = 0; m < 5; m++) {
                const double *col = rs + (size_t)m * h * ow + x;
                double acc = 0.0;
                for (int k = 0; k < SSIM_WIN; k++)
                    acc += col[(size_t)(y + k) * ow];
                s[m] = acc / np;
            }
            double ux = s[0], uy = s[1];
            double vx = cov_norm * (s[2] - ux * ux);
            double vy = cov_norm * (s[3] - uy * uy);
            double vxy = cov_norm * (s[4] - ux * uy);
            double a1 = 2.0 * ux * uy + c1, a2 = 2.0 * vxy + c2;
            double b1 = ux * ux + uy * uy + c1, b2 = vx + vy + c2;
            total += (a1 * a2) / (b1 * b2);
        }
    }
    return total / ((double)oh * ow);
}

double dae_ssim(const float *out, const float *clean, int c, int h, int w)
{
    if (h < SSIM_WIN || w < SSIM_WIN || c < 1)
        return NAN;
    size_t need = 5 * (size_t)h * (size_t)(w - SSIM_WIN + 1) + 5 * (size_t)w;
    double stackbuf[5 * 64 * 64 + 5 * 64];
    double *scratch = stackbuf;
    if (need > sizeof stackbuf / sizeof stackbuf[0]) {
        scratch = malloc(need * sizeof *scratch);
        if (!scratch)
            return NAN;
    }
    double s = 0.0;
    size_t plane = (size_t)h * w;
    for (int ch = 0; ch < c; ch++)
        s += ssim_plane(out + ch * plane, clean + ch * plane, h, w, scratch);
    if (scratch != stackbuf)
        free(scratch);
    return s / c;
}

/* ---- accumulated quality ---- */

void dae_quality_init(dae_quality *q)
{
    memset(q, 0, sizeof *q);
}

void dae_quality_add(dae_quality *q, const float *out, const float *clean, int count, int c,
                     int h, int w, int with_ssim)
{
    size_t per = (size_t)c * h * w;
    for (int i = 0; i < count; i++) {
        const float *o = out + (size_t)i * per, *x = clean + (size_t)i * per;
        double mse = dae_mse_clipped(o, x, per);
        q->n++;
        q->sum_mse += mse;
        q->sum_psnr += dae_psnr_from_mse(mse);
        if (mse <= DAE_MSE_FLOOR)
            q->n_capped++;
        if (with_ssim) {
            double s = dae_ssim(o, x, c, h, w);
            if (!isnan(s)) {
                q->n_ssim++;
                q->sum_ssim += s;
            }
        }
    }
}

double dae_quality_psnr(const dae_quality *q)
{
    return q->n ? q->sum_psnr / q->n : NAN;
}

double dae_quality_psnr_agg(const dae_quality *q)
{
    return q->n ? dae_psnr_from_mse(q->sum_mse / q->n) : NAN;
}

double dae_quality_mse(const dae_quality *q)
{
    return q->n ? q->sum_mse / q->n : NAN;
}

double dae_quality_ssim(const dae_quality *q)
{
    return q->n_ssim ? q->sum_ssim / q->n_ssim : NAN;
}

/* ---- AUROC ---- */

typedef struct {
    double s;
    unsigned char pos;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

int dae_auroc(const double *score, const unsigned char *positive, size_t n, double *auc,
              dae_error *err)
{
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(score[i]))
            return dae_error_set(err, DAE_EINVAL, "auroc: score[%zu] is NaN", i);
        npos += positive[i] != 0;
    }
    if (npos == 0 || npos == n)
        return dae_error_set(err, DAE_EINVAL,
                             "auroc: %zu positives among %zu samples, need both classes",
                             npos, n);
    scored *v = malloc(n * sizeof *v);
    if (!v)
        return dae_error_set(err, DAE_ENOMEM, "auroc: no memory for %zu scores", n);
    for (size_t i = 0; i < n; i++) {
        v[i].s = score[i];
        v[i].pos = positive[i] != 0;
    }
    qsort(v, n, sizeof *v, cmp_scored);
    /* Sum of the (1-based, tie-averaged) ranks of the positives. Ranks are exact in double
     * (twice a rank is an integer below 2^53). */
    double rank_sum = 0.0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j].s == v[i].s)
            j++;
        double avg = 0.5 * ((double)(i + 1) + (double)j); /* mean of ranks i+1..j */
        size_t p = 0;
        for (size_t k = i; k < j; k++)
            p += v[k].pos;
        rank_sum += avg * (double)p;
        i = j;
    }
    free(v);
    double nn = (double)(n - npos), np = (double)npos;
    *auc = (rank_sum - np * (np + 1.0) / 2.0) / (np * nn);
    return DAE_OK;
}

/* ---- quantiles ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int dae_quantiles(const double *v, size_t n, const double *q, size_t nq, double *out,
                  dae_error *err)
{
    if (n == 0)
        return dae_error_set(err, DAE_EINVAL, "quantile: no values");
    for (size_t i = 0; i < nq; i++)
        if (!(q[i] >= 0.0 && q[i] <= 1.0))
            return dae_error_set(err, DAE_EINVAL, "quantile: q[%zu] = %g, expected in [0,1]", i,
                                 q[i]);
    for (size_t i = 0; i < n; i++)
        if (isnan(v[i]))
            return dae_error_set(err, DAE_EINVAL, "quantile: value[%zu] is NaN", i);
    double *s = malloc(n * sizeof *s);
    if (!s)
        return dae_error_set(err, DAE_ENOMEM, "quantile: no memory for %zu values", n);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    for (size_t i = 0; i < nq; i++) {
        /* numpy 1.24 "linear": virtual index (n-1) q, and its _lerp, which interpolates from
         * the upper neighbour when the fraction is >= 0.5 (bit-identical results). */
        double vi = (double)(n - 1) * q[i];
        double fl = floor(vi);
        size_t lo = (size_t)fl;
        if (lo > n - 1)
            lo = n - 1;
        size_t hi = lo + 1 < n ? lo + 1 : n - 1;
        double t = vi - fl;
        double a = s[lo], b = s[hi], d = b - a;
        out[i] = t >= 0.5 ? b - d * (1.0 - t) : a + d * t;
    }
    free(s);
    return DAE_OK;
}

double dae_quantile(const double *v, size_t n, double q)
{
    double r;
    return dae_quantiles(v, n, &q, 1, &r, NULL) == DAE_OK ? r : NAN;
}

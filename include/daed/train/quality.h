/* quality.h — restoration quality (PSNR, SSIM as PROTOCOL §3.3) and anomaly metrics
 * (one-class AUROC as sklearn's roc_auc_score, quantiles as numpy's default).
 *
 * Restoration: the output is clipped to [0,1] and compared in double with the clean image.
 * PSNR_i = 10 log10(1 / max(MSE_i, 1e-10)), so an exact reconstruction is capped at 100 dB.
 * Reported PSNR = the mean of PSNR_i; psnr_agg = 10 log10(1 / max(mean_i MSE_i, 1e-10));
 * n_capped = images with MSE_i <= 1e-10.
 * SSIM = skimage.metrics.structural_similarity(clean, out, data_range=1) with its defaults:
 * 7x7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance (x 49/48), averaged over the
 * positions whose window lies inside the image (skimage crops 3 pixels per side). Needs
 * h, w >= 7. Multi-channel images: the mean of the per-channel SSIMs (skimage's
 * channel_axis behaviour).
 */
#ifndef DAED_QUALITY_H
#define DAED_QUALITY_H

#include <stddef.h>

#include "daed/core/error.h"

#define DAE_MSE_FLOOR 1e-10

/* Mean squared error of clip(out, 0, 1) against clean over n values (double). */
double dae_mse_clipped(const float *out, const float *clean, size_t n);
/* 10 log10(1 / max(mse, 1e-10)). */
double dae_psnr_from_mse(double mse);
/* PSNR of one image of n values. */
double dae_psnr(const float *out, const float *clean, size_t n);
/* SSIM of one (c,h,w) image (out clipped to [0,1]); NAN if h < 7 or w < 7. */
double dae_ssim(const float *out, const float *clean, int c, int h, int w);

/* Accumulates the §3.3 numbers over images, in any number of calls. Plain struct: zero it
 * with dae_quality_init. */
typedef struct dae_quality {
    long n;          /* images */
    long n_capped;   /* images with MSE <= 1e-10 */
    double sum_psnr; /* sum of PSNR_i */
    double sum_mse;  /* sum of MSE_i */
    long n_ssim;     /* images with an SSIM */
    double sum_ssim;
} dae_quality;

void dae_quality_init(dae_quality *q);
/* Add `count` images of (c,h,w) each, stored one after another. with_ssim = 0 skips SSIM
 * (it costs about 10x the PSNR). */
void dae_quality_add(dae_quality *q, const float *out, const float *clean, int count, int c,
                     int h, int w, int with_ssim);
double dae_quality_psnr(const dae_quality *q);     /* mean PSNR_i; NAN if no images */
double dae_quality_psnr_agg(const dae_quality *q); /* 10 log10(1/max(mean MSE, 1e-10)) */
double dae_quality_mse(const dae_quality *q);      /* mean MSE_i */
double dae_quality_ssim(const dae_quality *q);     /* mean SSIM; NAN if none */

/* Area under the ROC curve for scores (higher = more likely positive) and labels
 * (non-zero = positive), exactly sklearn.metrics.roc_auc_score: the Mann-Whitney statistic
 * with average ranks for tied scores. DAE_EINVAL if a class is absent or a score is NaN. */
int dae_auroc(const double *score, const unsigned char *positive, size_t n, double *auc,
              dae_error *err);

/* Quantiles with linear interpolation (numpy.quantile's default, "linear"): for each q in
 * [0,1], the value at virtual index q*(n-1) of the sorted data. v is not modified.
 * DAE_EINVAL if n == 0, a q is outside [0,1] or a value is NaN. */
int dae_quantiles(const double *v, size_t n, const double *q, size_t nq, double *out,
                  dae_error *err);
double dae_quantile(const double *v, size_t n, double q); /* NAN on the errors above */

#endif

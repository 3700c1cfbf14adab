/* score.h — anomaly scores of one image under one model: reconstruction error (optionally
 * blurred and top-pooled) and kNN distance to a bank of normal images, combined as
 * z-normalised terms; per-pixel error maps for heatmaps.
 *
 * A score is a weighted sum of terms, each z-normalised with statistics of held-out
 * *normal* images (scorefit.h fits them; nothing is fitted on anomalies):
 *     score(x) = sum_t weight_t * (v_t(x) - mean_t) / std_t
 * A single-term scorer fitted by dae_scorer_fit keeps mean 0, std 1, weight 1, so "mse" is
 * the plain per-image MSE that older model files calibrate.
 *
 * Terms (x is the input image (C,H,W), y = clip(model(x), 0, 1), G_s a Gaussian blur with
 * sigma s pixels, separable, radius ceil(3s), reflect-101 borders, per channel):
 *   recon: e = G_s(y - x) (s = 0: no blur); v = mean of the `top` largest e^2 values of
 *          the image (top = 0: all C*H*W values). blur 0, top 0 is the per-image MSE.
 *          Blurring first keeps the small, high-frequency misfits every normal image has
 *          from dominating the score; what remains is the structure the model cannot draw.
 *   knn:   v = mean L2 distance from G_s(x) to its k nearest rows of the bank, an (N, C*H*W)
 *          tensor of blurred normal training images stored in the model file.
 * The error map (for heatmaps) is e^2 of the first recon term (plain (y-x)^2 if there is
 * none), one value per input value.
 *
 * A dae_scorer is immutable after dae_scorer_create and may be shared by threads; each
 * thread passes its own model workspace and dae_score_ws.
 */
#ifndef DAED_SCORE_H
#define DAED_SCORE_H

#include <stddef.h>

#include "daed/core/error.h"
#include "daed/core/model.h"

#define DAE_SCORE_MAX_TERMS 4
#define DAE_SCORE_MAX_BLUR 8.0f   /* sigma in pixels */
#define DAE_SCORE_MAX_K 64        /* knn neighbours */

typedef enum { DAE_SCORE_RECON = 0, DAE_SCORE_KNN = 1 } dae_score_kind;

typedef struct dae_score_term {
    dae_score_kind kind;
    float blur;            /* Gaussian sigma in pixels, 0 = none */
    int top;               /* recon: pool over the largest `top` values, 0 = all */
    int k;                 /* knn: neighbours averaged (>= 1) */
    double mean, std;      /* z-normalisation (std > 0) */
    double weight;         /* contribution of this term */
    /* knn only: the bank, borrowed (from a model file or a fit result) */
    const float *bank;     /* (bank_n, C*H*W) blurred normal images */
    int bank_n;
} dae_score_term;

typedef struct dae_score_spec {
    int n_terms;
    dae_score_term term[DAE_SCORE_MAX_TERMS];
} dae_score_spec;

/* The plain per-image MSE spec (one recon term, no blur, no pooling). */
dae_score_spec dae_score_spec_mse(void);

/* Parse a compact spec: terms joined by '+', each "mse", "bmse<sigma>" (blurred recon),
 * "bmse<sigma>@top<n>" (top-pooled), "knn<k>" or "knn<k>b<sigma>" (on blurred images);
 * e.g. "bmse1+knn1b1". Weights 1, mean 0, std 1, no banks. DAE_EINVAL naming the bad
 * part. */
int dae_score_spec_parse(const char *text, dae_score_spec *spec, dae_error *err);
/* The compact name of a spec (the inverse of dae_score_spec_parse, "%g" numbers). */
void dae_score_spec_name(const dae_score_spec *spec, char *buf, size_t n);
/* Check ranges (blur in [0, DAE_SCORE_MAX_BLUR], top >= 0, k in [1, DAE_SCORE_MAX_K],
 * finite mean/weight, std > 0, knn banks present with bank_n >= k when need_banks). */
int dae_score_spec_check(const dae_score_spec *spec, int need_banks, dae_error *err);

typedef struct dae_scorer dae_scorer;

/* A scorer for images of m's nominal input shape (m and the banks are borrowed and must
 * outlive it). Precomputes the bank row norms. NULL + message on a bad spec, a model whose
 * output shape differs from its input shape, or no memory. */
dae_scorer *dae_scorer_create(const dae_model *m, const dae_score_spec *spec, dae_error *err);
void dae_scorer_free(dae_scorer *s);
const dae_score_spec *dae_scorer_spec(const dae_scorer *s);
const dae_model *dae_scorer_model(const dae_scorer *s);
/* Values per image (C*H*W of the nominal input). */
size_t dae_scorer_image_values(const dae_scorer *s);

/* Per-thread scratch for batches of up to max_batch images. */
typedef struct dae_score_ws dae_score_ws;
dae_score_ws *dae_score_ws_create(const dae_scorer *s, int max_batch, dae_error *err);
void dae_score_ws_free(dae_score_ws *w);

/* Score B images x (B, C, H, W) of the nominal shape. mws is a model workspace of the
 * scorer's model with room for B images. Outputs (each may be NULL):
 *   scores[B]           the combined score
 *   terms[B * n_terms]  each term's raw value v_t (before normalisation), image-major
 *   maps[B * C*H*W]     the error map (see above)
 * DAE_ESHAPE if B exceeds the workspace. */
int dae_score_batch(const dae_scorer *s, dae_workspace *mws, dae_score_ws *w, const float *x,
                    int B, double *scores, double *terms, float *maps, dae_error *err);

/* The same from outputs y (B, C, H, W) the caller already computed with the scorer's model
 * (the server batches the forward pass with other requests). y may be NULL only for scores
 * without a reconstruction term and without maps. */
int dae_score_outputs(const dae_scorer *s, dae_score_ws *w, const float *x, const float *y,
                      int B, double *scores, double *terms, float *maps, dae_error *err);

/* Combine raw term values (n_terms of them) with the spec's normalisation and weights. */
double dae_score_combine(const dae_score_spec *spec, const double *terms);

/* ---- building blocks (exposed for tests and the fitter) ---- */

/* Gaussian blur of n images (c,h,w) into out (may not alias in); sigma 0 copies. tmp holds
 * h*w floats. Kernel: exp(-t^2 / (2 sigma^2)), |t| <= ceil(3 sigma), normalised; borders
 * reflect-101 (repeatedly, for kernels wider than the image). */
void dae_score_blur(float *out, const float *in, int n, int c, int h, int w, float sigma,
                    float *tmp);
/* Mean of the `top` largest of v[0..n) (top 0 or >= n: mean of all). Reorders v. */
double dae_score_top_mean(float *v, size_t n, int top);
/* For each of the nq queries (nq, d): the mean L2 distance to its k nearest of the nb bank
 * rows (nb, d), with bank_norm[j] = |bank_j|^2 precomputed (NULL: computed here).
 * dist (nq * nb floats) is scratch. */
void dae_score_knn(double *out, const float *q, int nq, const float *bank,
                   const float *bank_norm, int nb, size_t d, int k, float *dist);

#endif

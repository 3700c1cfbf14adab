/* scorefit.h — fitting an anomaly score (score.h) on normal images: the knn banks, the
 * z-normalisation of each term and the calibration quantiles of the final score.
 *
 * One-class discipline: everything is fitted on normal images only. `train` supplies the
 * knn banks (the images the model was trained on); `val` (held-out normal images, never
 * the bank) supplies each term's mean and standard deviation and the calibration
 * quantiles. With a single term the score is left raw (mean 0, std 1), so "mse" stays the
 * per-image MSE.
 *
 * The trainer calls, after training and with its own train/validation split:
 *     dae_score_spec want;  dae_score_spec_parse("bmse1", &want, err);
 *     dae_score_fit fit;    dae_scorer_fit(model, &want, train, val, NULL, &fit, err);
 *     dae_score_fit_save(path, model, config_json, &fit, NULL, err);   (instead of
 *                                                     dae_modelfile_save)
 *     dae_score_fit_free(&fit);
 */
#ifndef DAED_SCOREFIT_H
#define DAED_SCOREFIT_H

#include "daed/io/dataset.h"
#include "daed/core/error.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/core/score.h"

typedef struct dae_score_fit_params {
    int bank_max;        /* knn banks keep at most this many training images (evenly
                            spaced), 0 = all; default 0 */
    double threshold_q;  /* quantile of the final validation score used as the threshold;
                            default 0.99 */
    int batch;           /* images per forward pass; default 256 */
} dae_score_fit_params;

dae_score_fit_params dae_score_fit_default_params(void);

typedef struct dae_score_fit {
    dae_score_spec spec;      /* fitted; knn banks point into tensors */
    int n_tensors;
    dae_score_tensor tensors[DAE_SCORE_MAX_TERMS]; /* data owned: "score.knn<term>" */
    dae_calibration calib;    /* p1 p5 p10 p25 p50 p75 p90 p95 p99 p99.9 of the final
                                 score on val; threshold at threshold_q */
} dae_score_fit;

/* Fit `want` (its weights are kept; mean/std and banks are replaced) for model m on the
 * normal images train (banks) and val (statistics, calibration), both of m's nominal input
 * shape. val needs at least 2 images (a term that is constant on val is DAE_EINVAL). p may
 * be NULL (defaults). On success *out owns its tensors (dae_score_fit_free); on failure it
 * holds nothing. */
int dae_scorer_fit(const dae_model *m, const dae_score_spec *want, const dae_dataset *train,
                   const dae_dataset *val, const dae_score_fit_params *p, dae_score_fit *out,
                   dae_error *err);
void dae_score_fit_free(dae_score_fit *f);

/* Raw term values (n * n_terms, image-major) and final scores (n) of n images of ds under
 * the scorer; either output may be NULL. batch <= 0: 256. */
int dae_scorer_score_set(const dae_scorer *s, const dae_dataset *ds, int batch, double *terms,
                         double *scores, dae_error *err);

/* Write the model file: config_json with its calibration replaced by the fit's
 * (dae_config_set_score) and the fit's score tensors, plus extra_meta (NULL or key,value
 * pairs, as dae_modelfile_save). Atomic. */
int dae_score_fit_save(const char *path, const dae_model *m, const char *config_json,
                       const dae_score_fit *f, const char *const *extra_meta, dae_error *err);

#endif

/* scorefit.c — fit an anomaly score on normal images: banks, term statistics, calibration. */
#include "daed/train/scorefit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/train/quality.h"

/* Low quantiles too: a combined (z-normalised) score is negative for typical images, and
 * dae_calibration_percentile is only informative between quantiles. */
static const double calib_levels[] = {0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999};
#define N_CALIB 10

dae_score_fit_params dae_score_fit_default_params(void)
{
    dae_score_fit_params p = {.bank_max = 0, .threshold_q = 0.99, .batch = 256};
    return p;
}

void dae_score_fit_free(dae_score_fit *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_tensors; i++) {
        free(f->tensors[i].data);
        f->tensors[i].data = NULL;
    }
    f->n_tensors = 0;
}

static int check_set(const dae_model *m, const dae_dataset *ds, const char *what,
                     dae_error *err)
{
    if (!ds || ds->n < 1)
        return dae_error_set(err, DAE_EINVAL, "score fit: no %s images", what);
    if (ds->c != m->in_shape.c || ds->h != m->in_shape.h || ds->w != m->in_shape.w)
        return dae_error_set(err, DAE_ESHAPE,
                             "score fit: %s images are [%d,%d,%d], the model takes [%d,%d,%d]",
                             what, ds->c, ds->h, ds->w, m->in_shape.c, m->in_shape.h,
                             m->in_shape.w);
    return DAE_OK;
}

int dae_scorer_score_set(const dae_scorer *s, const dae_dataset *ds, int batch, double *terms,
                         double *scores, dae_error *err)
{
    const dae_score_spec *spec = dae_scorer_spec(s);
    size_t d = dae_scorer_image_values(s);
    if ((size_t)ds->c * (size_t)ds->h * (size_t)ds->w != d)
        return dae_error_set(err, DAE_ESHAPE, "score: images of %d*%d*%d values, expected %zu",
                             ds->c, ds->h, ds->w, d);
    if (batch <= 0)
        batch = 256;
    if (batch > ds->n)
        batch = ds->n > 0 ? ds->n : 1;
    dae_shape sh = {ds->c, ds->h, ds->w};
    int rc = DAE_OK;
    dae_workspace *mws = dae_workspace_create(dae_scorer_model(s), batch, sh, 0, err);
    dae_score_ws *w = mws ? dae_score_ws_create(s, batch, err) : NULL;
    if (!w) {
        rc = err ? err->code : DAE_ENOMEM;
        goto done;
    }
    for (int pos = 0; pos < ds->n; pos += batch) {
        int B = ds->n - pos < batch ? ds->n - pos : batch;
        rc = dae_score_batch(s, mws, w, dae_dataset_sample(ds, pos), B,
                             scores ? scores + pos : NULL,
                             terms ? terms + (size_t)pos * spec->n_terms : NULL, NULL, err);
        if (rc)
            goto done;
    }
done:
    dae_score_ws_free(w);
    dae_workspace_free(mws);
    return rc;
}

/* Term t's knn bank: up to bank_max evenly spaced training images, blurred as the queries
 * will be, as tensor "score.knn<t>" of out (tm->bank points into it). */
static int make_bank(const dae_model *m, const dae_dataset *train, dae_score_term *tm, int t,
                     int bank_max, dae_score_fit *out, dae_error *err)
{
    const size_t d = dae_shape_size(m->in_shape);
    int rc;
    if ((rc = check_set(m, train, "training (bank)", err)))
        return rc;
    int nb = bank_max > 0 && bank_max < train->n ? bank_max : train->n;
    if (nb < tm->k)
        return dae_error_set(err, DAE_EINVAL, "score fit: knn%d needs at least %d training "
                             "images, got %d", tm->k, tm->k, nb);
    dae_score_tensor *x = &out->tensors[out->n_tensors];
    float *raw = malloc((size_t)nb * d * sizeof(float));
    float *tmp = malloc((size_t)m->in_shape.h * (size_t)m->in_shape.w * sizeof(float));
    x->data = malloc((size_t)nb * d * sizeof(float));
    if (!raw || !tmp || !x->data) {
        free(raw);
        free(tmp);
        free(x->data);
        x->data = NULL;
        return dae_error_set(err, DAE_ENOMEM, "score fit: out of memory for a bank of %d", nb);
    }
    out->n_tensors++;
    for (int i = 0; i < nb; i++) /* evenly spaced: deterministic, covers the set */
        memcpy(raw + (size_t)i * d,
               dae_dataset_sample(train, (int)((long long)i * train->n / nb)),
               d * sizeof(float));
    dae_score_blur(x->data, raw, nb, m->in_shape.c, m->in_shape.h, m->in_shape.w,
                   tm->blur, tmp);
    free(raw);
    free(tmp);
    snprintf(x->name, sizeof x->name, "score.knn%d", t);
    x->ndim = 2;
    x->shape[0] = nb;
    x->shape[1] = (int64_t)d;
    x->n = (size_t)nb * d;
    tm->bank = x->data;
    tm->bank_n = nb;
    return DAE_OK;
}

/* Each term's mean and standard deviation over the n validation images (terms: n x nt),
 * into spec: the terms of a combined score are standardised before they are added. */
static int normalise_terms(dae_score_spec *spec, const double *terms, const dae_dataset *val,
                           dae_error *err)
{
    const int nt = spec->n_terms;
    for (int t = 0; t < nt; t++) {
        double sum = 0, sq = 0;
        for (int i = 0; i < val->n; i++)
            sum += terms[(size_t)i * nt + t];
        double mean = sum / val->n;
        for (int i = 0; i < val->n; i++) {
            double dv = terms[(size_t)i * nt + t] - mean;
            sq += dv * dv;
        }
        double sd = sqrt(sq / val->n);
        if (!(sd > 0) || !isfinite(sd)) {
            return dae_error_set(err, DAE_EINVAL, "score fit: term %d is constant (%g) on the "
                                 "%d validation images", t, mean, val->n);
        }
        spec->term[t].mean = mean;
        spec->term[t].std = sd;
    }
    return DAE_OK;
}

int dae_scorer_fit(const dae_model *m, const dae_score_spec *want, const dae_dataset *train,
                   const dae_dataset *val, const dae_score_fit_params *p, dae_score_fit *out,
                   dae_error *err)
{
    dae_score_fit_params P = p ? *p : dae_score_fit_default_params();
    dae_scorer *s = NULL;
    double *terms = NULL, *scores = NULL;
    int rc;
    memset(out, 0, sizeof *out);
    out->spec = *want;
    dae_score_spec *spec = &out->spec;
    if ((rc = dae_score_spec_check(want, 0, err)) || (rc = check_set(m, val, "validation", err)))
        goto fail;
    if (val->n < 2) {
        rc = dae_error_set(err, DAE_EINVAL, "score fit: %d validation image, need at least 2",
                           val->n);
        goto fail;
    }
    if (!(P.threshold_q > 0 && P.threshold_q < 1)) {
        rc = dae_error_set(err, DAE_EINVAL, "score fit: threshold quantile %g, expected (0,1)",
                           P.threshold_q);
        goto fail;
    }
    /* banks: (subsampled) training images, blurred as the queries will be */
    for (int t = 0; t < spec->n_terms; t++) {
        dae_score_term *tm = &spec->term[t];
        tm->mean = 0;
        tm->std = 1;
        tm->bank = NULL;
        tm->bank_n = 0;
        if (tm->kind != DAE_SCORE_KNN)
            continue;
        if ((rc = make_bank(m, train, tm, t, P.bank_max, out, err)))
            goto fail;
    }
    if (!(s = dae_scorer_create(m, spec, err))) {
        rc = err ? err->code : DAE_ENOMEM;
        goto fail;
    }
    const int nt = spec->n_terms;
    terms = malloc((size_t)val->n * (size_t)nt * sizeof *terms);
    scores = malloc((size_t)val->n * sizeof *scores);
    if (!terms || !scores) {
        rc = dae_error_set(err, DAE_ENOMEM, "score fit: out of memory");
        goto fail;
    }
    if ((rc = dae_scorer_score_set(s, val, P.batch, terms, NULL, err)))
        goto fail;
    if (nt > 1 && (rc = normalise_terms(spec, terms, val, err)))
        goto fail;
    for (int i = 0; i < val->n; i++)
        scores[i] = dae_score_combine(spec, terms + (size_t)i * nt);
    double lv[N_CALIB + 1], q[N_CALIB + 1];
    memcpy(lv, calib_levels, sizeof calib_levels);
    lv[N_CALIB] = P.threshold_q;
    if ((rc = dae_quantiles(scores, (size_t)val->n, lv, N_CALIB + 1, q, err)))
        goto fail;
    out->calib.n = N_CALIB;
    memcpy(out->calib.level, calib_levels, sizeof calib_levels);
    memcpy(out->calib.value, q, N_CALIB * sizeof *q);
    out->calib.threshold = q[N_CALIB];
    dae_score_spec_name(spec, out->calib.score, sizeof out->calib.score);
    dae_scorer_free(s);
    free(terms);
    free(scores);
    return DAE_OK;
fail:
    dae_scorer_free(s);
    free(terms);
    free(scores);
    dae_score_fit_free(out);
    memset(out, 0, sizeof *out);
    return rc ? rc : DAE_EINTERNAL;
}

int dae_score_fit_save(const char *path, const dae_model *m, const char *config_json,
                       const dae_score_fit *f, const char *const *extra_meta, dae_error *err)
{
    char *cfg = dae_config_set_score(config_json, &f->calib, &f->spec, f->tensors,
                                     f->n_tensors, err);
    if (!cfg)
        return err ? err->code : DAE_EINVAL;
    int rc = dae_modelfile_save_scored(path, m, cfg, extra_meta, f->tensors, f->n_tensors, err);
    free(cfg);
    return rc;
}

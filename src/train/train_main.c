/* train_main.c — the whole dae-train program as a library call (dae_train_main): data,
 * trainer, resume, the loop, calibration and the model file. */
#include "daed/train.h"
#include "daed/scorefit.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daed/blas.h"
#include "daed/corrupt.h"
#include "daed/metrics.h"
#include "daed/optim.h"
#include "daed/photo.h"
#include "daed/photonoise.h"
#include "daed/rng.h"
#include "daed/safetensors.h"
#include "trainer_internal.h"

/* ---- the whole program ---- */

static dae_dataset *load_set(const char *name, const dae_recipe *r, int limit, dae_error *err)
{
    dae_dataset *ds = dae_dataset_load(name, r->data.dir, r->data.channels, NULL, err);
    if (!ds)
        return NULL;
    if (r->data.class_k >= 0) {
        dae_dataset *f = dae_dataset_filter_class(ds, r->data.class_k, 1, err);
        dae_dataset_free(ds);
        if (!f)
            return NULL;
        if (f->n == 0) {
            dae_error_set(err, DAE_EINVAL, "%s: no images of class %d", name, r->data.class_k);
            dae_dataset_free(f);
            return NULL;
        }
        ds = f;
    }
    if (limit > 0 && limit < ds->n) {
        dae_dataset *s = dae_dataset_subset(ds, limit, err);
        dae_dataset_free(ds);
        ds = s;
    }
    return ds;
}

/* The folders of `path` ("runs/x/m.safetensors": runs and runs/x), made where missing, so
 * a run into a fresh folder does not fail at its first checkpoint. */
static int make_parent_dirs(const char *path, const char *what, dae_error *err)
{
    char dir[4096];
    size_t n = strlen(path);
    if (n >= sizeof dir)
        return dae_error_set(err, DAE_EINVAL, "%s: path of %zu bytes is too long", what, n);
    memcpy(dir, path, n + 1);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return dae_error_set(err, DAE_EIO, "%s: cannot create folder %s: %s", what, dir,
                                 strerror(errno));
        *p = '/';
    }
    return DAE_OK;
}

int dae_train_main(const dae_recipe *r, const char *resume_path, const dae_train_options *o,
                   dae_train_status *status, dae_error *err)
{
    dae_dataset *all = NULL, *train = NULL, *val = NULL;
    dae_photoset *ptrain = NULL, *pval = NULL;
    dae_trainer *t = NULL;
    int rc = DAE_OK;
    dae_blas_set_threads(1); /* parallelism is the workspace's threads (dae_trainer_create) */
    if ((rc = make_parent_dirs(r->output, "output", err)) ||
        (rc = make_parent_dirs(r->checkpoint, "checkpoint", err)))
        return rc;

    if (r->patches.size > 0) {
        dae_image_limits lim = dae_image_default_limits();
        lim.max_pixels = (size_t)1 << 26;
        ptrain = dae_photoset_load_dir(r->data.train, r->data.channels, r->patches.size,
                                       PHOTOS_MAX, &lim, err);
        if (!ptrain) {
            rc = dae_error_prefix(err, "data.train: ");
            goto done;
        }
        if (r->data.val[0] &&
            !(pval = dae_photoset_load_dir(r->data.val, r->data.channels, r->patches.size,
                                           PHOTOS_MAX, &lim, err))) {
            rc = dae_error_prefix(err, "data.val: ");
            goto done;
        }
        t = dae_trainer_create_photos(r, ptrain, pval, err);
        if (!t) {
            rc = err ? err->code : DAE_EINVAL;
            goto done;
        }
        tr_logf(o, "dae-train: %s: %zu parameters; %d training photos (%.1f Mpx, %d channel%s%s%s) "
              "from %s; %d patches of %dx%d per epoch, sigma %g..%g (0-255)%s; %d validation "
              "crops of %s; %d steps/epoch of %d; %s, lr %g; %d thread%s\n",
              r->name, t->m->n_params, ptrain->n, dae_photoset_pixels(ptrain) / 1e6,
              ptrain->c, ptrain->c == 1 ? "" : "s", ptrain->c == 3 ? ", " : "",
              ptrain->c != 3                ? ""
              : r->data.per_channel ? (r->data.color_space ? "opponent, one channel at a time"
                                                          : "rgb, one channel at a time")
                                    : dae_color_space_name((dae_color_space)r->data.color_space),
              r->data.train, r->patches.per_epoch, r->patches.size, r->patches.size,
              r->patches.sigma_min, r->patches.sigma_max,
              r->patches.quantize ? ", 8-bit rounded" : "", t->val->n,
              r->data.val[0] ? r->data.val : "the training photos", t->steps_per_epoch,
              r->batch_size, dae_opt_kind_name(r->optim.kind), r->lr, r->threads,
              r->threads == 1 ? "" : "s");
        if (t->m->noise_map)
            tr_logf(o, "dae-train: noise-level map input: each patch's sigma/255, blind (%g) with "
                  "probability %g; every other validation crop blind\n",
                  (double)DAE_NOISE_BLIND, r->patches.blind);
        if (r->patches.noise_json)
            tr_logf(o, "dae-train: patch noise (instead of the sigma range): %s\n",
                  r->patches.noise_json);
    } else {
        all = load_set(r->data.train, r, r->data.limit, err);
        if (!all) {
            rc = dae_error_prefix(err, "data.train: ");
            goto done;
        }
        if (r->data.val[0]) {
            train = all;
            all = NULL;
            val = load_set(r->data.val, r, r->data.val_limit, err);
            if (!val) {
                rc = dae_error_prefix(err, "data.val: ");
                goto done;
            }
        } else {
            rc = dae_dataset_split(all, r->data.val_fraction, r->data.val_count, r->seed, &train,
                                   &val, err);
            if (rc) {
                dae_error_prefix(err, "data: ");
                goto done;
            }
            if (r->data.val_limit > 0 && r->data.val_limit < val->n) {
                dae_dataset *s = dae_dataset_subset(val, r->data.val_limit, err);
                dae_dataset_free(val);
                val = s;
                if (!val) {
                    rc = err ? err->code : DAE_ENOMEM;
                    goto done;
                }
            }
        }
        t = dae_trainer_create(r, train, val, err);
        if (!t) {
            rc = err ? err->code : DAE_EINVAL;
            goto done;
        }
        tr_logf(o, "dae-train: %s: %zu parameters; %d training and %d validation images (%d,%d,%d) "
              "from %s; %d steps/epoch of %d; %s, lr %g; %d thread%s\n",
              r->name, t->m->n_params, train->n, val->n, train->c, train->h, train->w,
              r->data.train, t->steps_per_epoch, r->batch_size, dae_opt_kind_name(r->optim.kind),
              r->lr, r->threads, r->threads == 1 ? "" : "s");
    }
    if (resume_path) {
        if ((rc = dae_trainer_resume(t, resume_path, err)))
            goto done;
        tr_logf(o, "resumed from %s at epoch %d step %d (attempt %d)\n", resume_path,
              t->epoch + 1, t->step_in_epoch, t->attempt + 1);
    }
    if ((rc = dae_trainer_run(t, o, err)))
        goto done;
    if (status)
        *status = t->st.status;
    if (t->st.status == DAE_TRAIN_INTERRUPTED)
        goto done;
    dae_calibration cal;
    if (!strcmp(r->calib.score, "mse")) {
        if ((rc = dae_trainer_calibrate(t, &cal, NULL, err)) ||
            (rc = dae_trainer_save_model(t, r->output, &cal, NULL, err)))
            goto done;
    } else {
        /* a richer anomaly score (score.h): statistics and banks from the normal training
         * and validation images, calibrated on the validation images */
        dae_score_spec want;
        dae_score_fit fit;
        dae_score_fit_params fp = dae_score_fit_default_params();
        if (!train) {
            rc = dae_error_set(err, DAE_EINVAL, "calibration.score \"%s\": photo models "
                               "calibrate the plain mse only", r->calib.score);
            goto done;
        }
        fp.threshold_q = r->calib.threshold_q;
        fp.bank_max = r->calib.bank_max;
        if ((rc = dae_score_spec_parse(r->calib.score, &want, err)) ||
            (rc = dae_scorer_fit(t->m, &want, train, t->val, &fp, &fit, err))) {
            dae_error_prefix(err, "calibration.score: ");
            goto done;
        }
        cal = fit.calib;
        rc = dae_trainer_save_model(t, r->output, NULL, &fit, err);
        dae_score_fit_free(&fit);
        if (rc)
            goto done;
    }
    tr_logf(o, "wrote %s: %d epochs, train_loss %.6f, val_psnr %.3f dB, %d collapse restart%s, "
          "threshold (p%g of validation %s) %.6g, %.1f s\n",
          r->output, t->st.epochs_done, t->st.train_loss, t->st.val_psnr, t->attempt,
          t->attempt == 1 ? "" : "s", 100 * r->calib.threshold_q, r->calib.score, cal.threshold,
          t->st.seconds);
done:
    dae_trainer_free(t);
    dae_dataset_free(all);
    dae_dataset_free(train);
    dae_dataset_free(val);
    dae_photoset_free(ptrain);
    dae_photoset_free(pval);
    return rc;
}

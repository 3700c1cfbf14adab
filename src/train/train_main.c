/* train_main.c — the whole dae-train program as a library call (dae_train_main): data,
 * trainer, resume, the loop, calibration and the model file. */
#include "daed/train/trainer.h"
#include "daed/train/scorefit.h"

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

#include "daed/core/blas.h"
#include "daed/train/corrupt.h"
#include "daed/train/quality.h"
#include "daed/train/optim.h"
#include "daed/io/photo.h"
#include "daed/train/photonoise.h"
#include "daed/core/rng.h"
#include "daed/io/safetensors.h"
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

/* The data of a run: images (train, val; all until split) or photos (ptrain, pval). */
typedef struct run_data {
    dae_dataset *all, *train, *val;
    dae_photoset *ptrain, *pval;
} run_data;

static void run_data_free(run_data *d)
{
    dae_dataset_free(d->all);
    dae_dataset_free(d->train);
    dae_dataset_free(d->val);
    dae_photoset_free(d->ptrain);
    dae_photoset_free(d->pval);
}

/* Patch mode: the photo folders loaded into d, the trainer made (*out) and described. */
static int photo_trainer(const dae_recipe *r, const dae_train_options *o, run_data *d,
                         dae_trainer **out, dae_error *err)
{
    dae_image_limits lim = dae_image_default_limits();
    lim.max_pixels = (size_t)1 << 26;
    d->ptrain = dae_photoset_load_dir(r->data.train, r->data.channels, r->patches.size,
                                      PHOTOS_MAX, &lim, err);
    if (!d->ptrain)
        return dae_error_prefix(err, "data.train: ");
    if (r->data.val[0] &&
        !(d->pval = dae_photoset_load_dir(r->data.val, r->data.channels, r->patches.size,
                                          PHOTOS_MAX, &lim, err)))
        return dae_error_prefix(err, "data.val: ");
    dae_trainer *t = *out = dae_trainer_create_photos(r, d->ptrain, d->pval, err);
    if (!t)
        return err ? err->code : DAE_EINVAL;
    const dae_photoset *pt = d->ptrain;
    dae_tr_logf(o, "dae-train: %s: %zu parameters; %d training photos (%.1f Mpx, %d channel%s%s%s) "
                   "from %s; %d patches of %dx%d per epoch, sigma %g..%g (0-255)%s; %d validation "
                   "crops of %s; %d steps/epoch of %d; %s, lr %g; %d thread%s\n",
                r->name, t->m->n_params, pt->n, dae_photoset_pixels(pt) / 1e6, pt->c,
                pt->c == 1 ? "" : "s", pt->c == 3 ? ", " : "",
                pt->c != 3            ? ""
                : r->data.chroma_half ? "opponent, one channel at a time, chroma at half size"
                : r->data.per_channel ? (r->data.color_space ? "opponent, one channel at a time"
                                                             : "rgb, one channel at a time")
                                      : dae_color_space_name((dae_color_space)r->data.color_space),
                r->data.train, r->patches.per_epoch, r->patches.size, r->patches.size,
                r->patches.sigma_min, r->patches.sigma_max,
                r->patches.quantize >= 1.0  ? ", 8-bit rounded"
                : r->patches.quantize > 0.0 ? ", some 8-bit rounded (patches.quantize)"
                                            : "",
                t->val->n,
                r->data.val[0] ? r->data.val : "the training photos", t->steps_per_epoch,
                r->batch_size, dae_opt_kind_name(r->optim.kind), r->lr, r->threads,
                r->threads == 1 ? "" : "s");
    if (t->m->noise_map)
        dae_tr_logf(o, "dae-train: noise-level map input: each patch's sigma/255, blind (%g) with "
                       "probability %g; every other validation crop blind\n",
                    (double)DAE_NOISE_BLIND, r->patches.blind);
    if (r->patches.noise_json)
        dae_tr_logf(o, "dae-train: patch noise (instead of the sigma range): %s\n",
                    r->patches.noise_json);
    return DAE_OK;
}

/* Image mode: the training and validation sets (data.val, or a split of data.train). */
static int load_images(const dae_recipe *r, run_data *d, dae_error *err)
{
    d->all = load_set(r->data.train, r, r->data.limit, err);
    if (!d->all)
        return dae_error_prefix(err, "data.train: ");
    if (r->data.val[0]) {
        d->train = d->all;
        d->all = NULL;
        d->val = load_set(r->data.val, r, r->data.val_limit, err);
        return d->val ? DAE_OK : dae_error_prefix(err, "data.val: ");
    }
    int rc = dae_dataset_split(d->all, r->data.val_fraction, r->data.val_count, r->seed,
                               &d->train, &d->val, err);
    if (rc) {
        dae_error_prefix(err, "data: ");
        return rc;
    }
    if (r->data.val_limit > 0 && r->data.val_limit < d->val->n) {
        dae_dataset *s = dae_dataset_subset(d->val, r->data.val_limit, err);
        dae_dataset_free(d->val);
        d->val = s;
        if (!d->val)
            return err ? err->code : DAE_ENOMEM;
    }
    return DAE_OK;
}

/* Image mode: the sets loaded into d, the trainer made (*out) and described. */
static int image_trainer(const dae_recipe *r, const dae_train_options *o, run_data *d,
                         dae_trainer **out, dae_error *err)
{
    int rc = load_images(r, d, err);
    if (rc)
        return rc;
    dae_trainer *t = *out = dae_trainer_create(r, d->train, d->val, err);
    if (!t)
        return err ? err->code : DAE_EINVAL;
    const dae_dataset *tr = d->train;
    dae_tr_logf(o, "dae-train: %s: %zu parameters; %d training and %d validation images (%d,%d,%d) "
                   "from %s; %d steps/epoch of %d; %s, lr %g; %d thread%s\n",
                r->name, t->m->n_params, tr->n, d->val->n, tr->c, tr->h, tr->w, r->data.train,
                t->steps_per_epoch, r->batch_size, dae_opt_kind_name(r->optim.kind), r->lr,
                r->threads, r->threads == 1 ? "" : "s");
    return DAE_OK;
}

/* The calibration of the trained model (plain mse, or a richer anomaly score fitted on the
 * images: score.h) and the model file; *cal is the calibration written. */
static int calibrate_and_save(dae_trainer *t, const dae_recipe *r, const dae_dataset *train,
                              dae_calibration *cal, dae_error *err)
{
    if (!strcmp(r->calib.score, "mse")) {
        int rc = dae_trainer_calibrate(t, cal, NULL, err);
        return rc ? rc : dae_trainer_save_model(t, r->output, cal, NULL, err);
    }
    /* a richer anomaly score (score.h): statistics and banks from the normal training
     * and validation images, calibrated on the validation images */
    dae_score_spec want;
    dae_score_fit fit;
    dae_score_fit_params fp = dae_score_fit_default_params();
    if (!train)
        return dae_error_set(err, DAE_EINVAL, "calibration.score \"%s\": photo models "
                             "calibrate the plain mse only", r->calib.score);
    fp.threshold_q = r->calib.threshold_q;
    fp.bank_max = r->calib.bank_max;
    int rc;
    if ((rc = dae_score_spec_parse(r->calib.score, &want, err)) ||
        (rc = dae_scorer_fit(t->m, &want, train, t->val, &fp, &fit, err))) {
        dae_error_prefix(err, "calibration.score: ");
        return rc;
    }
    *cal = fit.calib;
    rc = dae_trainer_save_model(t, r->output, NULL, &fit, err);
    dae_score_fit_free(&fit);
    return rc;
}

/* The precision of the steps, when the recipe asks for bf16: on AMX, or fp32 without it. */
static void log_precision(const dae_trainer *t, const dae_recipe *r, const dae_train_options *o)
{
    if (r->precision != DAE_PREC_BF16)
        return;
    if (!t->bf16) {
        dae_tr_logf(o, "dae-train: precision bf16: this CPU has no AMX-BF16 (or the kernel "
                       "refused the tile state): training in fp32\n");
        return;
    }
    int total = 0, n = dae_workspace_amx_layers(t->ws, &total);
    dae_tr_logf(o, "dae-train: precision bf16 (mixed): %d of %d convolutions (forward, input "
                   "and weight gradients) on AMX-BF16 tiles; weights, loss, optimizer and "
                   "validation in fp32\n", n, total);
}

int dae_train_main(const dae_recipe *r, const char *resume_path, const dae_train_options *o,
                   dae_train_status *status, dae_error *err)
{
    run_data d = {0};
    int rc = DAE_OK;
    dae_blas_set_threads(1); /* parallelism is the workspace's threads (dae_trainer_create) */
    if ((rc = make_parent_dirs(r->output, "output", err)) ||
        (rc = make_parent_dirs(r->checkpoint, "checkpoint", err)))
        return rc;
    dae_trainer *t = NULL;
    if ((rc = r->patches.size > 0 ? photo_trainer(r, o, &d, &t, err)
                                  : image_trainer(r, o, &d, &t, err)))
        goto done;
    log_precision(t, r, o);
    if (resume_path) {
        if ((rc = dae_trainer_resume(t, resume_path, err)))
            goto done;
        dae_tr_logf(o, "resumed from %s at epoch %d step %d (attempt %d)\n", resume_path,
                    t->epoch + 1, t->step_in_epoch, t->attempt + 1);
    }
    int snapshot = o && o->snapshot;
    if (snapshot && !resume_path) {
        rc = dae_error_set(err, DAE_EINVAL, "a snapshot is the model file of a checkpoint: "
                           "it needs --resume");
        goto done;
    }
    if (!snapshot && (rc = dae_trainer_run(t, o, err)))
        goto done;
    if (status)
        *status = snapshot ? DAE_TRAIN_INTERRUPTED : t->st.status;
    if (!snapshot && t->st.status == DAE_TRAIN_INTERRUPTED)
        goto done;
    dae_calibration cal;
    if ((rc = calibrate_and_save(t, r, d.train, &cal, err)))
        goto done;
    dae_tr_logf(o, "wrote %s: %d epochs, train_loss %.6f, val_psnr %.3f dB, %d collapse restart%s, "
                   "threshold (p%g of validation %s) %.6g, %.1f s\n",
                r->output, t->st.epochs_done, t->st.train_loss, t->st.val_psnr, t->attempt,
                t->attempt == 1 ? "" : "s", 100 * r->calib.threshold_q, r->calib.score,
                cal.threshold, t->st.seconds);
done:
    dae_trainer_free(t);
    run_data_free(&d);
    return rc;
}

/* checkpoint.c — a trainer's checkpoints (save, resume), its calibration on the
 * validation set and the final model file (see trainer.h). */
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

/* ---- checkpoints ---- */

static char *state_json(const dae_trainer *t)
{
    cJSON *s = cJSON_CreateObject();
    char buf[32];
    cJSON_AddNumberToObject(s, "epoch", t->epoch);
    cJSON_AddNumberToObject(s, "step_in_epoch", t->step_in_epoch);
    cJSON_AddNumberToObject(s, "step", (double)t->gstep);
    cJSON_AddNumberToObject(s, "attempt", t->attempt);
    cJSON_AddNumberToObject(s, "optim_t", (double)t->opt->t);
    cJSON *rng = cJSON_AddArrayToObject(s, "rng");
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "%016" PRIx64, t->crng.s[i]);
        cJSON_AddItemToArray(rng, cJSON_CreateString(buf));
    }
    cJSON_AddNumberToObject(s, "ep_loss_sum", t->ep_loss_sum);
    cJSON_AddNumberToObject(s, "ep_mse_sum", t->ep_mse_sum);
    cJSON_AddNumberToObject(s, "ep_count", (double)t->ep_count);
    cJSON_AddNumberToObject(s, "win_n", t->win_n);
    cJSON_AddNumberToObject(s, "win_pos", t->win_pos);
    cJSON *w = cJSON_AddArrayToObject(s, "window");
    for (int i = 0; i < t->win_n; i++)
        cJSON_AddItemToArray(w, cJSON_CreateNumber(t->window[i]));
    cJSON_AddNumberToObject(s, "bad_epochs", t->bad_epochs);
    cJSON_AddNumberToObject(s, "epochs_done", t->st.epochs_done);
    cJSON_AddNumberToObject(s, "seconds", t->st.seconds);
    /* non-finite values (no epoch yet) are stored as null */
    const double vals[4] = {t->st.train_loss, t->st.val_loss, t->st.val_psnr,
                            t->st.best_val_psnr};
    const char *names[4] = {"train_loss", "val_loss", "val_psnr", "best_val_psnr"};
    for (int i = 0; i < 4; i++) {
        if (isfinite(vals[i]))
            cJSON_AddNumberToObject(s, names[i], vals[i]);
        else
            cJSON_AddNullToObject(s, names[i]);
    }
    cJSON_AddNumberToObject(s, "n_train", t->n_train);
    cJSON_AddNumberToObject(s, "n_val", t->val->n);
    cJSON_AddNumberToObject(s, "batch_size", t->r->batch_size);
    char *txt = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return txt;
}

int dae_trainer_save_checkpoint(dae_trainer *t, const char *path, dae_error *err)
{
    const dae_model *m = t->m;
    int L = m->n_enc + m->n_dec, n = 0, rc = DAE_OK;
    dae_st_out *tens = calloc((size_t)2 * L + 3, sizeof *tens);
    char (*names)[96] = calloc((size_t)2 * L, sizeof *names);
    char *arch = dae_model_arch_json(m);
    char *state = state_json(t);
    if (!tens || !names || !arch || !state) {
        rc = dae_error_set(err, DAE_ENOMEM, "checkpoint: out of memory");
        goto done;
    }
    for (int i = 0; i < L; i++) {
        const dae_layer *ly = &m->layers[i];
        if (!ly->n_w)
            continue;
        for (int bias = 0; bias < 2; bias++) {
            if (bias && !ly->n_b)
                continue;
            dae_st_out *o = &tens[n];
            int64_t dims[4];
            o->ndim = dae_model_param_shape(m, i, bias, dims);
            for (int d = 0; d < o->ndim; d++)
                o->shape[d] = dims[d];
            dae_model_param_name(m, i, bias, names[n], sizeof names[n]);
            o->name = names[n];
            o->dtype = "F32";
            o->data = m->params + (bias ? ly->b_off : ly->w_off);
            n++;
        }
    }
    tens[n++] = (dae_st_out){.name = "optim.m", .dtype = "F32", .ndim = 1,
                             .shape = {(int64_t)m->n_params}, .data = t->opt->m};
    if (t->opt->v)
        tens[n++] = (dae_st_out){.name = "optim.v", .dtype = "F32", .ndim = 1,
                                 .shape = {(int64_t)m->n_params}, .data = t->opt->v};
    if (t->best)
        tens[n++] = (dae_st_out){.name = "best.params", .dtype = "F32", .ndim = 1,
                                 .shape = {(int64_t)m->n_params}, .data = t->best};
    const char *meta[] = {"format", CKPT_FORMAT, "config", arch, "recipe", t->r->json,
                          "state", state, "trainer", DAE_TRAINER_VERSION, NULL};
    rc = dae_st_write(path, tens, n, meta, err);
    if (rc)
        dae_error_prefix(err, "checkpoint %s: ", path);
done:
    free(tens);
    free(names);
    free(arch);
    free(state);
    return rc;
}

static int load_f32(const dae_st_file *f, const char *name, float *dst, size_t n,
                    const char *path, dae_error *err)
{
    const dae_st_tensor *ts = dae_st_find(f, name);
    if (!ts)
        return dae_error_set(err, DAE_EFORMAT, "checkpoint %s: no tensor %s", path, name);
    if (strcmp(ts->dtype, "F32") != 0 || ts->n_elem != n)
        return dae_error_set(err, DAE_EFORMAT,
                             "checkpoint %s: tensor %s is %s with %zu values, expected F32 "
                             "with %zu",
                             path, name, ts->dtype, ts->n_elem, n);
    memcpy(dst, ts->data, n * sizeof *dst);
    return DAE_OK;
}

static int get_num(const cJSON *s, const char *key, double lo, double hi, int allow_null,
                   double *v, const char *path, dae_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(s, key);
    if (allow_null && cJSON_IsNull(it)) {
        *v = NAN;
        return DAE_OK;
    }
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= lo && it->valuedouble <= hi))
        return dae_error_set(err, DAE_EFORMAT, "checkpoint %s: state field %s missing or "
                             "outside [%g, %g]", path, key, lo, hi);
    *v = it->valuedouble;
    return DAE_OK;
}

/* The numeric state fields of a checkpoint. */
enum { EPOCH, STEP_IN_EPOCH, STEP, ATTEMPT, OPTIM_T, EP_LOSS_SUM, EP_MSE_SUM, EP_COUNT,
       WIN_N, WIN_POS, BAD_EPOCHS, EPOCHS_DONE, TRAIN_LOSS, VAL_LOSS, VAL_PSNR,
       BEST_VAL_PSNR, N_TRAIN, N_VAL, BATCH_SIZE, N_STATE };

/* The numeric state fields of s into v, checked against their ranges and against t's run
 * before anything is changed. */
static int read_state(const dae_trainer *t, const cJSON *s, const char *path,
                      double v[N_STATE], dae_error *err)
{
    static const struct {
        const char *key;
        double lo, hi; /* null (no epoch yet) is accepted for the four statistics */
    } spec[N_STATE] = {
        {"epoch", 0, 1e6},         {"step_in_epoch", 0, 1e9}, {"step", 0, 1e15},
        {"attempt", 0, 1e4},       {"optim_t", 0, 1e15},      {"ep_loss_sum", 0, 1e300},
        {"ep_mse_sum", 0, 1e300},  {"ep_count", 0, 1e15},     {"win_n", 0, 1e6},
        {"win_pos", 0, 1e6},       {"bad_epochs", 0, 1e6},    {"epochs_done", 0, 1e6},
        {"train_loss", -1e300, 1e300}, {"val_loss", -1e300, 1e300},
        {"val_psnr", -1e300, 1e300},   {"best_val_psnr", -1e300, 1e300},
        {"n_train", 0, 1e10},      {"n_val", 0, 1e10},        {"batch_size", 0, 1e6}};
    int rc;
    for (int i = 0; i < N_STATE; i++)
        if ((rc = get_num(s, spec[i].key, spec[i].lo, spec[i].hi,
                          i >= TRAIN_LOSS && i <= BEST_VAL_PSNR, &v[i], path, err)))
            return rc;
    if ((int)v[N_TRAIN] != t->n_train || (int)v[N_VAL] != t->val->n ||
        (int)v[BATCH_SIZE] != t->r->batch_size)
        return dae_error_set(err, DAE_EINVAL,
                             "checkpoint %s: made with %d training / %d validation images and "
                             "batch %d; this run has %d / %d and batch %d",
                             path, (int)v[N_TRAIN], (int)v[N_VAL], (int)v[BATCH_SIZE],
                             t->n_train, t->val->n, t->r->batch_size);
    if ((int)v[WIN_N] > t->r->collapse.window || (int)v[WIN_POS] >= t->r->collapse.window ||
        (int)v[STEP_IN_EPOCH] > t->steps_per_epoch)
        return dae_error_set(err, DAE_EFORMAT, "checkpoint %s: inconsistent loop state", path);
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(s, "rng");
    const cJSON *win = cJSON_GetObjectItemCaseSensitive(s, "window");
    if (cJSON_GetArraySize(rng) != 4 || cJSON_GetArraySize(win) != (int)v[WIN_N])
        return dae_error_set(err, DAE_EFORMAT, "checkpoint %s: bad rng or window state", path);
    return DAE_OK;
}

/* The tensors of checkpoint f into t: parameters, optimizer moments, best parameters. */
static int load_tensors(dae_trainer *t, const dae_st_file *f, const char *path, dae_error *err)
{
    const dae_model *m = t->m;
    int rc = DAE_OK;
    for (int i = 0; i < m->n_enc + m->n_dec && !rc; i++) {
        const dae_layer *ly = &m->layers[i];
        char name[96];
        if (ly->n_w) {
            dae_model_param_name(m, i, 0, name, sizeof name);
            rc = load_f32(f, name, m->params + ly->w_off, ly->n_w, path, err);
        }
        if (!rc && ly->n_b) {
            dae_model_param_name(m, i, 1, name, sizeof name);
            rc = load_f32(f, name, m->params + ly->b_off, ly->n_b, path, err);
        }
    }
    if (!rc)
        rc = load_f32(f, "optim.m", t->opt->m, m->n_params, path, err);
    if (!rc && t->opt->v)
        rc = load_f32(f, "optim.v", t->opt->v, m->n_params, path, err);
    if (!rc && t->best)
        rc = load_f32(f, "best.params", t->best, m->n_params, path, err);
    return rc;
}

/* The corruption generator's state and the collapse window (n values) of state s. */
static int load_rng_window(dae_trainer *t, const cJSON *s, int n, const char *path,
                           dae_error *err)
{
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(s, "rng");
    const cJSON *win = cJSON_GetObjectItemCaseSensitive(s, "window");
    for (int i = 0; i < 4; i++) {
        const cJSON *h = cJSON_GetArrayItem(rng, i);
        char *end = NULL;
        if (cJSON_IsString(h))
            t->crng.s[i] = strtoull(h->valuestring, &end, 16);
        if (!end || *end)
            return dae_error_set(err, DAE_EFORMAT, "checkpoint %s: bad rng state", path);
    }
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(win, i);
        if (!cJSON_IsNumber(x))
            return dae_error_set(err, DAE_EFORMAT, "checkpoint %s: bad window", path);
        t->window[i] = x->valuedouble;
    }
    return DAE_OK;
}

/* The loop state v (read_state) and the training time of state s into t. */
static void apply_state(dae_trainer *t, const double v[N_STATE], const cJSON *s)
{
    t->epoch = (int)v[EPOCH];
    t->step_in_epoch = (int)v[STEP_IN_EPOCH];
    t->gstep = (long long)v[STEP];
    t->opt->t = (long long)v[OPTIM_T];
    t->ep_loss_sum = v[EP_LOSS_SUM];
    t->ep_mse_sum = v[EP_MSE_SUM];
    t->ep_count = (long long)v[EP_COUNT];
    t->win_n = (int)v[WIN_N];
    t->win_pos = (int)v[WIN_POS];
    t->bad_epochs = (int)v[BAD_EPOCHS];
    t->st.epochs_done = (int)v[EPOCHS_DONE];
    t->st.steps = t->gstep;
    t->st.train_loss = v[TRAIN_LOSS];
    t->st.val_loss = v[VAL_LOSS];
    t->st.val_psnr = v[VAL_PSNR];
    t->st.best_val_psnr = isnan(v[BEST_VAL_PSNR]) ? -INFINITY : v[BEST_VAL_PSNR];
    /* training time before the checkpoint (absent in older checkpoints: 0) */
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(s, "seconds");
    t->st.seconds = cJSON_IsNumber(sec) && sec->valuedouble >= 0 && sec->valuedouble < 1e10
                        ? sec->valuedouble
                        : 0.0;
}

int dae_trainer_resume(dae_trainer *t, const char *path, dae_error *err)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    dae_st_file *f = NULL;
    cJSON *s = NULL;
    char *arch = NULL;
    int rc = dae_file_read(path, CKPT_MAX_BYTES, &buf, &len, err);
    if (rc)
        return rc;
    dae_st_limits lim = dae_st_default_limits();
    lim.max_file_bytes = CKPT_MAX_BYTES;
    lim.max_header_bytes = (size_t)64 << 20;
    f = dae_st_parse(buf, len, &lim, err);
    if (!f) {
        rc = dae_error_prefix(err, "checkpoint %s: ", path);
        goto done;
    }
    const char *fmt = dae_st_meta(f, "format"), *cfg = dae_st_meta(f, "config"),
               *st = dae_st_meta(f, "state");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !cfg || !st) {
        rc = dae_error_set(err, DAE_EFORMAT, "checkpoint %s: not a dae-train checkpoint "
                           "(format %s, expected %s)", path, fmt ? fmt : "missing",
                           CKPT_FORMAT);
        goto done;
    }
    arch = dae_model_arch_json(t->m);
    if (!arch || strcmp(arch, cfg) != 0) {
        rc = dae_error_set(err, DAE_EINVAL, "checkpoint %s: its architecture differs from "
                           "the recipe's model", path);
        goto done;
    }
    s = cJSON_Parse(st);
    if (!s) {
        rc = dae_error_set(err, DAE_EFORMAT, "checkpoint %s: state is not JSON", path);
        goto done;
    }
    double v[N_STATE];
    if ((rc = read_state(t, s, path, v, err)))
        goto done;
    /* everything checked: now overwrite the trainer */
    dae_tr_start_attempt(t, (int)v[ATTEMPT]);
    if ((rc = load_tensors(t, f, path, err)) ||
        (rc = load_rng_window(t, s, (int)v[WIN_N], path, err))) {
        dae_tr_start_attempt(t, 0); /* leave a consistent fresh state behind */
        goto done;
    }
    apply_state(t, v, s);
done:
    cJSON_Delete(s);
    free(arch);
    dae_st_free(f);
    free(buf);
    return rc;
}

/* ---- calibration and the model file ---- */

static const double calib_levels[] = {0.5, 0.9, 0.95, 0.99, 0.999};
static const char *const calib_names[] = {"p50", "p90", "p95", "p99", "p99.9"};
#define N_CALIB 5

int dae_trainer_calibrate(dae_trainer *t, dae_calibration *c, double *scores, dae_error *err)
{
    const dae_dataset *v = t->val;
    const int bs = t->r->batch_size;
    double *sc = scores ? scores : malloc((size_t)v->n * sizeof *sc);
    int rc = DAE_OK;
    if (!sc)
        return dae_error_set(err, DAE_ENOMEM, "calibration: out of memory");
    for (int pos = 0; pos < v->n && !rc; pos += bs) {
        int B = v->n - pos < bs ? v->n - pos : bs;
        dae_tr_fill_batch(t, v, NULL, pos, B, NULL, 0);
        const float *out;
        dae_shape os;
        rc = dae_model_forward(t->m, t->ws, t->in, B, t->in_shape, &out, &os, err);
        for (int b = 0; b < B && !rc; b++)
            sc[pos + b] = dae_mse_clipped(out + (size_t)b * t->out_n,
                                          dae_dataset_sample(v, pos + b), t->img_n);
    }
    double q[N_CALIB + 1], lv[N_CALIB + 1];
    memcpy(lv, calib_levels, sizeof calib_levels);
    lv[N_CALIB] = t->r->calib.threshold_q;
    if (!rc)
        rc = dae_quantiles(sc, (size_t)v->n, lv, N_CALIB + 1, q, err);
    if (!rc) {
        memset(c, 0, sizeof *c);
        c->n = N_CALIB;
        memcpy(c->level, calib_levels, sizeof calib_levels);
        memcpy(c->value, q, N_CALIB * sizeof *q);
        c->threshold = q[N_CALIB];
        snprintf(c->score, sizeof c->score, "mse");
    } else {
        dae_error_prefix(err, "calibration: ");
    }
    if (sc != scores)
        free(sc);
    return rc;
}

static cJSON *num_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* The photo noise into corr, and what a server needs to feed the model into cfg. */
static void photo_config(const dae_trainer *t, cJSON *cfg, cJSON *corr)
{
    const dae_recipe *r = t->r;
    /* with a noise set: the range of its gaussian/correlated sigmas, and the set */
    double lo = r->patches.sigma_min, hi = r->patches.sigma_max;
    dae_photonoise_sigma_range(&r->patches.noise, &lo, &hi);
    cJSON_AddStringToObject(corr, "type", "gaussian255");
    cJSON *sg = cJSON_AddArrayToObject(corr, "sigma");
    cJSON_AddItemToArray(sg, cJSON_CreateNumber(lo));
    cJSON_AddItemToArray(sg, cJSON_CreateNumber(hi));
    double q = r->patches.quantize;
    if (q <= 0.0 || q >= 1.0)
        cJSON_AddBoolToObject(corr, "quantize", q >= 1.0);
    else
        cJSON_AddNumberToObject(corr, "quantize", q);
    if (r->patches.noise_json)
        cJSON_AddItemToObject(corr, "noise", cJSON_Parse(r->patches.noise_json));
    if (t->photos->c == 3)
        cJSON_AddStringToObject(cfg, "color_space",
                                dae_color_space_name((dae_color_space)r->data.color_space));
    if (r->data.per_channel)
        cJSON_AddBoolToObject(cfg, "per_channel", 1);
    if (r->data.chroma_half)
        cJSON_AddBoolToObject(cfg, "chroma_half", 1);
    /* a map model trained blind only never saw a level: daed keeps it blind */
    int blind = r->patches.without_sigma == DAE_WITHOUT_BLIND ||
                (r->patches.without_sigma == DAE_WITHOUT_AUTO && r->patches.blind >= 1.0);
    if (t->m->noise_map && blind)
        cJSON_AddStringToObject(cfg, "without_sigma", "blind");
}

int dae_trainer_save_model(dae_trainer *t, const char *path, const dae_calibration *c,
                           const dae_score_fit *fit, dae_error *err)
{
    const dae_recipe *r = t->r;
    char *arch = dae_model_arch_json(t->m), *cfg_txt = NULL;
    cJSON *cfg = arch ? cJSON_Parse(arch) : NULL;
    int rc = DAE_OK;
    if (!cfg) {
        rc = dae_error_set(err, DAE_ENOMEM, "model file: cannot build the config");
        goto done;
    }
    cJSON_AddStringToObject(cfg, "name", r->name);
    cJSON_AddItemToObject(cfg, "tasks", cJSON_Parse(r->tasks_json));
    cJSON *corr = cJSON_CreateObject();
    if (t->photos) {
        photo_config(t, cfg, corr);
    } else {
        cJSON_AddItemToObject(corr, "set", cJSON_Parse(r->corruption_json));
        cJSON_AddBoolToObject(corr, "noise2noise", r->noise2noise);
        if (r->target_corruption.n > 0)
            cJSON_AddItemToObject(corr, "target_set", cJSON_Parse(r->target_corruption_json));
    }
    cJSON_AddItemToObject(cfg, "corruption", corr);

    cJSON *tr = cJSON_CreateObject();
    cJSON_AddStringToObject(tr, "trainer", DAE_TRAINER_VERSION);
    cJSON_AddItemToObject(tr, "recipe", cJSON_Parse(r->json));
    cJSON *ds = cJSON_AddObjectToObject(tr, "dataset");
    cJSON_AddStringToObject(ds, "train", r->data.train);
    cJSON_AddStringToObject(ds, "val", r->data.val[0] ? r->data.val : "held out of train");
    cJSON_AddNumberToObject(ds, t->photos ? "n_train_photos" : "n_train", t->n_train);
    cJSON_AddNumberToObject(ds, "n_val", t->val->n);
    if (r->data.class_k >= 0)
        cJSON_AddNumberToObject(ds, "class", r->data.class_k);
    if (t->photos) {
        cJSON_AddNumberToObject(ds, "train_pixels", dae_photoset_pixels(t->photos));
        cJSON_AddNumberToObject(tr, "patch_size", r->patches.size);
        cJSON_AddNumberToObject(tr, "patches_per_epoch", r->patches.per_epoch);
        cJSON_AddNumberToObject(tr, "patches_seen", (double)t->st.steps * r->batch_size);
        cJSON_AddNumberToObject(tr, "train_seconds", t->st.seconds);
    }
    cJSON_AddNumberToObject(tr, "epochs", t->st.epochs_done);
    cJSON_AddNumberToObject(tr, "steps", (double)t->st.steps);
    cJSON_AddNumberToObject(tr, "seed", (double)t->seed_a);
    cJSON_AddItemToObject(tr, "final_train_loss", num_or_null(t->st.train_loss));
    cJSON_AddItemToObject(tr, "final_val_loss", num_or_null(t->st.val_loss));
    cJSON_AddItemToObject(tr, "val_psnr", num_or_null(t->st.val_psnr));
    cJSON_AddItemToObject(tr, "best_val_psnr", num_or_null(t->st.best_val_psnr));
    cJSON_AddBoolToObject(tr, "early_stopped", t->st.status == DAE_TRAIN_EARLY_STOP);
    cJSON_AddNumberToObject(tr, "collapse_restarts", t->attempt);
    cJSON_AddBoolToObject(tr, "collapse_check", t->collapse_on);
    cJSON_AddNumberToObject(tr, "threads", r->threads);
    cJSON_AddItemToObject(cfg, "training", tr);

    if (c && c->n > 0) {
        cJSON *cal = cJSON_AddObjectToObject(cfg, "calibration");
        cJSON_AddStringToObject(cal, "score", c->score);
        cJSON *q = cJSON_AddObjectToObject(cal, "quantiles");
        for (int i = 0; i < c->n && i < N_CALIB; i++)
            cJSON_AddNumberToObject(q, calib_names[i], c->value[i]);
        cJSON_AddNumberToObject(cal, "threshold", c->threshold);
        cJSON_AddNumberToObject(cal, "threshold_quantile", r->calib.threshold_q);
        cJSON_AddNumberToObject(cal, "n", t->val->n);
    }
    cfg_txt = cJSON_PrintUnformatted(cfg);
    if (!cfg_txt) {
        rc = dae_error_set(err, DAE_ENOMEM, "model file: cannot build the config");
        goto done;
    }
    /* a fitted anomaly score replaces the plain calibration and brings its tensors */
    /* weights made from a licensed init file carry its notice */
    const char *lic[] = {"license", t->init_license, NULL};
    rc = fit ? dae_score_fit_save(path, t->m, cfg_txt, fit, t->init_license ? lic : NULL, err)
             : dae_modelfile_save(path, t->m, cfg_txt, t->init_license ? lic : NULL, err);
done:
    cJSON_Delete(cfg);
    free(cfg_txt);
    free(arch);
    return rc;
}

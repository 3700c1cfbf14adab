/* run.c — the training loop: one step, validation, the progress line, collapse checks,
 * and dae_trainer_run (see trainer.h). */
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

/* ---- one step ---- */

/* dst = src (c,h,w) translated by (dx, dy) pixels, zero where nothing maps. */
static void shift_image(float *dst, const float *src, int c, int h, int w, int dx, int dy)
{
    memset(dst, 0, (size_t)c * h * w * sizeof *dst);
    int x0 = dx > 0 ? dx : 0, x1 = dx < 0 ? w + dx : w;
    for (int ch = 0; ch < c; ch++)
        for (int y = dy > 0 ? dy : 0; y < (dy < 0 ? h + dy : h); y++)
            if (x1 > x0)
                memcpy(dst + ((size_t)ch * h + y) * w + x0,
                       src + ((size_t)ch * h + (y - dy)) * w + (x0 - dx),
                       (size_t)(x1 - x0) * sizeof *dst);
}

/* Inputs and targets of samples idx[0..B) of ds; corrupted with rng when corrupt (training:
 * then also translated when data.shift is on). */
void dae_tr_fill_batch(dae_trainer *t, const dae_dataset *ds, const int *idx, int first,
                       int B, dae_rng *rng, int corrupt)
{
    const dae_recipe *r = t->r;
    const dae_shape im = t->img;
    for (int b = 0; b < B; b++) {
        const float *x = dae_dataset_sample(ds, idx ? idx[b] : first + b);
        if (corrupt && t->shifted) {
            uint64_t n = 2 * (uint64_t)r->data.shift + 1;
            int dx = (int)dae_rng_below(rng, n) - r->data.shift;
            int dy = (int)dae_rng_below(rng, n) - r->data.shift;
            shift_image(t->shifted, x, im.c, im.h, im.w, dx, dy);
            x = t->shifted;
        }
        float *inb = t->in + (size_t)b * t->in_n;
        float *tb = t->target + (size_t)b * t->out_n;
        if (corrupt && r->noise2noise) {
            dae_corrupt_noise2noise(&r->corruption, &r->target_corruption, rng, x, im.c, im.h,
                                    im.w, inb, tb);
            continue;
        }
        if (corrupt)
            dae_corrupt_sample(&r->corruption, rng, x, im.c, im.h, im.w, inb, NULL);
        else if (t->down2)
            dae_corrupt_down2(x, im.c, im.h, im.w, inb);
        else
            memcpy(inb, x, t->img_n * sizeof *inb);
        memcpy(tb, x, t->img_n * sizeof *tb);
        /* noise-map models (patch mode) come here only to calibrate on clean crops: sigma 0 */
        dae_tr_set_noise_map(t, inb, 0.0, 0);
    }
}

/* Patch mode: B random clean crops (targets), their noisy copies (inputs) and their noise
 * levels (t->level). */
static int fill_photo_batch(dae_trainer *t, int B, dae_error *err)
{
    for (int b = 0; b < B; b++) {
        float *in = t->in + (size_t)b * t->in_n;
        int rc = dae_tr_photo_pair(t, t->photos, &t->crng, t->r->patches.augment, -1, -1,
                                t->target + (size_t)b * t->out_n, in, t->level + b, err);
        if (rc)
            return rc;
        if (t->m->noise_map)
            dae_tr_set_noise_map(t, in, t->level[b],
                              dae_rng_uniform_d(&t->crng) < t->r->patches.blind);
    }
    return DAE_OK;
}

/* Forward, objective, backward, update. *obj = loss + penalties, *mse = reconstruction
 * MSE (the collapse check's measure). */
static int step_pass(dae_trainer *t, int B, double *obj, double *mse, dae_error *err)
{
    const dae_recipe *r = t->r;
    dae_model *m = t->m;
    const float *out;
    dae_shape os;
    int rc = dae_model_forward(m, t->ws, t->in, B, t->in_shape, &out, &os, err);
    if (rc)
        return rc;
    size_t n = (size_t)B * t->out_n;
    double loss = dae_loss_eval(r->objective.loss, t->dout, out, t->target, n);
    *mse = r->objective.loss == DAE_LOSS_MSE ? loss : dae_loss_mse(NULL, out, t->target, n);
    const float *dl = NULL;
    if (t->dlatent) {
        const float *z = dae_workspace_latent(t->ws);
        memset(t->dlatent, 0, (size_t)B * t->lat_n * sizeof *t->dlatent);
        if (r->objective.sparse > 0)
            loss += dae_sparse_l1(t->dlatent, z, B, t->lat_n, r->objective.sparse);
        if (t->contractive) {
            const dae_layer *ly = &m->layers[t->ctr.layer];
            loss += dae_contractive_penalty(t->dlatent, t->grads + ly->w_off, z,
                                            m->params + ly->w_off, t->wsq, B, t->ctr.in_f,
                                            t->ctr.hidden, t->ctr.act,
                                            r->objective.contractive);
        }
        dl = t->dlatent;
    }
    *obj = loss;
    if (!isfinite(loss))
        return DAE_OK; /* the caller reports it; the parameters are left as they were */
    rc = dae_model_backward(m, t->ws, t->dout, dl, t->grads, NULL, err);
    if (rc)
        return rc;
    if (r->clip_norm > 0)
        dae_grad_clip(t->grads, m->n_params, r->clip_norm);
    dae_optim_step(t->opt, m->params, t->grads, (float)dae_schedule_lr(&t->sched, t->gstep));
    return DAE_OK;
}

/* step_pass, in bf16 when the run trains so: the AMX tiles packed from the weights the
 * last update left (once per step), fp32 again after it (validation, calibration). */
static int train_step(dae_trainer *t, int B, double *obj, double *mse, dae_error *err)
{
    if (!t->bf16)
        return step_pass(t, B, obj, mse, err);
    dae_workspace_pack_bf16(t->ws);
    dae_workspace_set_precision(t->ws, DAE_PREC_BF16, NULL);
    int rc = step_pass(t, B, obj, mse, err);
    dae_workspace_set_precision(t->ws, DAE_PREC_FP32, NULL);
    return rc;
}

/* ---- validation ---- */

static int validate(dae_trainer *t, double *loss, double *psnr, dae_error *err)
{
    const dae_recipe *r = t->r;
    const dae_dataset *v = t->val;
    dae_rng rng;
    dae_rng_seed(&rng, t->seed_a ^ VAL_SEED_XOR); /* the same corruptions every epoch */
    dae_quality q;
    dae_quality_init(&q);
    double sum = 0.0;
    for (int pos = 0; pos < v->n; pos += r->batch_size) {
        int B = v->n - pos < r->batch_size ? v->n - pos : r->batch_size;
        const float *clean = dae_dataset_sample(v, pos);
        if (t->val_noisy)
            memcpy(t->in, t->val_noisy + (size_t)pos * t->in_n,
                   (size_t)B * t->in_n * sizeof *t->in);
        else
            for (int b = 0; b < B; b++)
                dae_corrupt_sample(&r->corruption, &rng, clean + (size_t)b * t->img_n,
                                   t->img.c, t->img.h, t->img.w, t->in + (size_t)b * t->in_n,
                                   NULL);
        const float *out;
        dae_shape os;
        int rc = dae_model_forward(t->m, t->ws, t->in, B, t->in_shape, &out, &os, err);
        if (rc)
            return rc;
        sum += (double)B *
               dae_loss_eval(r->objective.loss, NULL, out, clean, (size_t)B * t->out_n);
        dae_quality_add(&q, out, clean, B, t->img.c, t->img.h, t->img.w, 0);
    }
    *loss = sum / v->n;
    *psnr = dae_quality_psnr(&q);
    return DAE_OK;
}

/* ---- progress ---- */

static void fmt_eta(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, n, "--:--");
    else if (s >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", (int)(s / 3600), (int)fmod(s / 60, 60),
                 (int)fmod(s, 60));
    else
        snprintf(buf, n, "%d:%02d", (int)(s / 60), (int)fmod(s, 60));
}

static void draw_progress(const dae_trainer *t, double loss, double rate, double eta)
{
    const int width = 24;
    int filled = (int)((double)width * t->step_in_epoch / t->steps_per_epoch);
    char bar[32], etas[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fmt_eta(etas, sizeof etas, eta);
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] step %d/%d loss %.5f %.0f %s/s ETA %s",
            t->epoch + 1, t->r->epochs, bar, t->step_in_epoch, t->steps_per_epoch, loss, rate,
            t->unit, etas);
    fflush(stderr);
}

/* ---- the loop ---- */

static int interrupted(const dae_trainer *t, const dae_train_options *o)
{
    if (!o)
        return 0;
    return (o->stop && *o->stop) || (o->stop_at_step > 0 && t->gstep == o->stop_at_step);
}

/* Collapse check after the step that made gstep == check point. 1 = restarted. */
static int collapse_check(dae_trainer *t, const dae_train_options *o)
{
    const dae_recipe *r = t->r;
    if (!t->collapse_on || t->attempt >= r->collapse.max_attempts - 1)
        return 0;
    /* counted from the end of any warm-up: a warming-up model still sits on the all-black
     * plateau at step 61 without being stuck there (measured on MNIST, seed 2: 200 warm-up
     * steps, plateau through epoch 1, 22.9 dB after epoch 3) */
    long long at = (r->collapse.check_step > 0 ? r->collapse.check_step : t->steps_per_epoch) +
                   t->sched.warmup_steps;
    if (t->gstep != at || t->win_n == 0)
        return 0;
    double mean = 0.0;
    for (int i = 0; i < t->win_n; i++)
        mean += t->window[i];
    mean /= t->win_n;
    double limit = r->collapse.factor * t->st.target_sq;
    if (!(mean > limit))
        return 0;
    int next = t->attempt + 1;
    dae_tr_logf(o, "%scollapse: mean reconstruction MSE of the last %d steps %.5f > %.2f*E[x^2] "
                 "= %.5f after %lld steps (stuck on the all-black plateau); restarting with "
                 "seed %" PRIu64 " (attempt %d of %d) and a %lld-step learning-rate warm-up\n",
                 o && o->progress_bar ? "\r\033[K" : "", t->win_n, mean, r->collapse.factor, limit,
                 t->gstep, r->seed + (uint64_t)RESTART_SEED_STRIDE * (uint64_t)next, next + 1,
                 r->collapse.max_attempts, r->schedule.warmup_steps + r->collapse.restart_warmup);
    dae_tr_start_attempt(t, next);
    return 1;
}

/* One training step of B samples at the current position: the batch, the step, the
 * epoch's sums and the collapse window. */
static int step_once(dae_trainer *t, const dae_train_options *o, int B, dae_error *err)
{
    const dae_recipe *r = t->r;
    long long pos = (long long)t->step_in_epoch * r->batch_size;
    int rc = DAE_OK;
    if (t->photos)
        rc = fill_photo_batch(t, B, err);
    else
        dae_tr_fill_batch(t, t->train, t->perm + pos, 0, B, &t->crng, 1);
    double obj, mse;
    if (!rc)
        rc = train_step(t, B, &obj, &mse, err);
    if (rc)
        return dae_error_prefix(err, "epoch %d step %d: ", t->epoch + 1, t->step_in_epoch + 1);
    if (!isfinite(obj)) {
        if (o && o->progress_bar)
            fputs("\n", stderr);
        return dae_error_set(err, DAE_EINVAL,
                             "epoch %d step %d: the loss is %s; training diverged "
                             "(learning rate %g: try a smaller optimizer.lr, a warm-up "
                             "or optimizer.clip_norm)",
                             t->epoch + 1, t->step_in_epoch + 1,
                             isnan(obj) ? "NaN" : "infinite",
                             dae_schedule_lr(&t->sched, t->gstep));
    }
    t->ep_loss_sum += obj * B;
    t->ep_mse_sum += mse * B;
    t->ep_count += B;
    t->window[t->win_pos] = mse;
    t->win_pos = (t->win_pos + 1) % r->collapse.window;
    if (t->win_n < r->collapse.window)
        t->win_n++;
    t->step_in_epoch++;
    t->gstep++;
    t->st.steps = t->gstep;
    return DAE_OK;
}

/* The end of an epoch that began at ep_t0 and trained `samples`: validation, the epoch's
 * line, early stopping (*stop_early: the best weights are back in the model). */
static int end_epoch(dae_trainer *t, const dae_train_options *o, double ep_t0,
                     long long samples, int *stop_early, dae_error *err)
{
    const dae_recipe *r = t->r;
    t->st.train_loss = t->ep_loss_sum / (double)t->ep_count;
    double vloss, vpsnr;
    int rc = validate(t, &vloss, &vpsnr, err);
    if (rc)
        return dae_error_prefix(err, "validation after epoch %d: ", t->epoch + 1);
    t->st.val_loss = vloss;
    t->st.val_psnr = vpsnr;
    t->st.epochs_done = t->epoch + 1;
    double secs = dae_tr_now_s() - ep_t0;
    if (o && o->progress_bar)
        fputs("\r\033[K", stderr);
    dae_tr_logf(o, "epoch %d/%d train_loss %.6f val_loss %.6f val_psnr %.3f dB lr %.3g "
                   "%.2f s (%.0f %s/s)\n", t->epoch + 1, r->epochs, t->st.train_loss, vloss,
                vpsnr, dae_schedule_lr(&t->sched, t->gstep - 1), secs, (double)samples / secs,
                t->unit);
    t->epoch++;
    t->step_in_epoch = 0;
    t->ep_loss_sum = t->ep_mse_sum = 0.0;
    t->ep_count = 0;

    *stop_early = 0;
    if (r->early_stop.patience > 0) {
        if (vpsnr > t->st.best_val_psnr + r->early_stop.min_delta) {
            t->st.best_val_psnr = vpsnr;
            t->bad_epochs = 0;
            memcpy(t->best, t->m->params, t->m->n_params * sizeof *t->best);
        } else if (++t->bad_epochs >= r->early_stop.patience) {
            *stop_early = 1;
        }
    } else if (vpsnr > t->st.best_val_psnr) {
        t->st.best_val_psnr = vpsnr;
    }
    if (*stop_early) {
        memcpy(t->m->params, t->best, t->m->n_params * sizeof *t->best);
        /* the reported validation numbers are those of the weights kept */
        if ((rc = validate(t, &t->st.val_loss, &t->st.val_psnr, err)))
            return rc;
        t->st.status = DAE_TRAIN_EARLY_STOP;
        dae_tr_logf(o, "early stop: no validation PSNR gain above %.3f dB for %d epochs; "
                       "keeping the best (%.3f dB)\n", r->early_stop.min_delta, t->bad_epochs,
                    t->st.best_val_psnr);
    }
    return DAE_OK;
}

/* The progress line, at most every 0.2 s and at the end of an epoch. */
static void progress_tick(const dae_trainer *t, long long run_samples, double t0,
                          double *last_draw)
{
    const dae_recipe *r = t->r;
    double now = dae_tr_now_s();
    if (now - *last_draw > 0.2 || t->step_in_epoch == t->steps_per_epoch) {
        *last_draw = now;
        double rate = (double)run_samples / (now - t0);
        long long left = (long long)(r->epochs - t->epoch) * t->epoch_samples -
                         (long long)t->step_in_epoch * r->batch_size;
        draw_progress(t, t->ep_loss_sum / (double)t->ep_count, rate, (double)left / rate);
    }
}

int dae_trainer_run(dae_trainer *t, const dae_train_options *o, dae_error *err)
{
    const dae_recipe *r = t->r;
    const int bs = r->batch_size;
    const long long n = t->epoch_samples;
    double t0 = dae_tr_now_s(), last_draw = 0.0;
    long long run_samples = 0;
    int progress = o && o->progress_bar;
    t->st.status = DAE_TRAIN_DONE;

    while (t->epoch < r->epochs) {
        double ep_t0 = dae_tr_now_s();
        long long ep_samples0 = run_samples;
        dae_tr_make_perm(t, t->epoch);
        int restarted = 0;
        while (t->step_in_epoch < t->steps_per_epoch) {
            long long pos = (long long)t->step_in_epoch * bs;
            int B = n - pos < bs ? (int)(n - pos) : bs;
            int rc = step_once(t, o, B, err);
            if (rc)
                return rc;
            run_samples += B;
            if (collapse_check(t, o)) {
                restarted = 1;
                break;
            }
            if (progress)
                progress_tick(t, run_samples, t0, &last_draw);
            if (interrupted(t, o)) {
                if (progress)
                    fputs("\r\033[K", stderr);
                t->st.status = DAE_TRAIN_INTERRUPTED;
                t->st.seconds += dae_tr_now_s() - t0;
                int rc2 = dae_trainer_save_checkpoint(t, r->checkpoint, err);
                if (!rc2)
                    dae_tr_logf(o, "interrupted at epoch %d step %d: checkpoint %s (continue with "
                                   "--resume)\n", t->epoch + 1, t->step_in_epoch, r->checkpoint);
                return rc2;
            }
        }
        if (restarted)
            continue;
        int stop_early = 0, rc;
        if ((rc = end_epoch(t, o, ep_t0, run_samples - ep_samples0, &stop_early, err)))
            return rc;
        double t1 = dae_tr_now_s(); /* the checkpoint carries the training time so far */
        t->st.seconds += t1 - t0;
        t0 = t1;
        if ((rc = dae_trainer_save_checkpoint(t, r->checkpoint, err)))
            return rc;
        if (stop_early)
            break;
    }
    t->st.seconds += dae_tr_now_s() - t0;
    return DAE_OK;
}

/* trainer.c — the dae-train trainer: creation from a recipe and images or photos (patch
 * mode), attempts (collapse restarts start a new one) and each epoch's order. The loop is in
 * run.c, checkpoints and the model file in checkpoint.c, the program in train_main.c. */
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
#include "daed/core/halfres.h"
#include "daed/io/photo.h"
#include "daed/train/photonoise.h"
#include "daed/core/rng.h"
#include "daed/io/safetensors.h"
#include "trainer_internal.h"

/* ---- small helpers ---- */

double dae_tr_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dae_tr_logf(const dae_train_options *o, const char *fmt, ...)
{
    if (!o || !o->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->log, fmt, ap);
    va_end(ap);
    fflush(o->log);
}

int dae_contractive_check(const dae_model *m, dae_contractive *c, dae_error *err)
{
    int i = 0;
    while (i < m->n_enc && m->layers[i].kind == DAE_LAYER_FLATTEN)
        i++;
    int ok = m->n_enc - i == 2 && m->layers[i].kind == DAE_LAYER_LINEAR &&
             m->layers[i + 1].kind == DAE_LAYER_ACT &&
             (m->layers[i + 1].act == DAE_ACT_SIGMOID || m->layers[i + 1].act == DAE_ACT_TANH);
    if (!ok) {
        char found[256] = "";
        size_t len = 0;
        for (int k = 0; k < m->n_enc && len < sizeof found - 24; k++) {
            const dae_layer *l = &m->layers[k];
            const char *name = "?";
            switch (l->kind) {
            case DAE_LAYER_LINEAR: name = "linear"; break;
            case DAE_LAYER_CONV2D: name = "conv2d"; break;
            case DAE_LAYER_CONV_T2D: name = "conv_transpose2d"; break;
            case DAE_LAYER_UPSAMPLE: name = "upsample"; break;
            case DAE_LAYER_FLATTEN: name = "flatten"; break;
            case DAE_LAYER_UNFLATTEN: name = "unflatten"; break;
            case DAE_LAYER_PIXEL_UNSHUFFLE: name = "pixel_unshuffle"; break;
            case DAE_LAYER_PIXEL_SHUFFLE: name = "pixel_shuffle"; break;
            case DAE_LAYER_ADD: name = "add"; break;
            case DAE_LAYER_ACT:
                name = l->act == DAE_ACT_RELU         ? "relu"
                       : l->act == DAE_ACT_LEAKY_RELU ? "leaky_relu"
                       : l->act == DAE_ACT_TANH       ? "tanh"
                       : l->act == DAE_ACT_SIGMOID    ? "sigmoid"
                                                      : "identity";
                break;
            }
            len += (size_t)snprintf(found + len, sizeof found - len, "%s%s", k ? "," : "",
                                    name);
        }
        return dae_error_set(err, DAE_EINVAL,
                             "objective.contractive: the exact contractive penalty needs an "
                             "encoder of one linear layer followed by sigmoid or tanh, got "
                             "[%s]",
                             found);
    }
    if (c) {
        c->layer = i;
        c->act = m->layers[i + 1].act;
        c->in_f = m->layers[i].in_f;
        c->hidden = m->layers[i].out_f;
    }
    return DAE_OK;
}

static int has_conv_decoder(const dae_model *m)
{
    for (int i = m->n_enc; i < m->n_enc + m->n_dec; i++)
        if (m->layers[i].kind == DAE_LAYER_CONV2D || m->layers[i].kind == DAE_LAYER_CONV_T2D)
            return 1;
    return 0;
}

/* Schedule of the current attempt (restarts add a warm-up). */
static void setup_schedule(dae_trainer *t)
{
    const dae_recipe *r = t->r;
    dae_schedule *s = &t->sched;
    memset(s, 0, sizeof *s);
    s->kind = r->schedule.kind;
    s->lr = r->lr;
    s->warmup_steps = r->schedule.warmup_steps;
    if (t->attempt > 0)
        s->warmup_steps += r->collapse.restart_warmup;
    s->step_size = (long long)llround(r->schedule.step_epochs * t->steps_per_epoch);
    if (s->step_size < 1)
        s->step_size = 1;
    s->gamma = r->schedule.gamma;
    s->total_steps = (long long)r->epochs * t->steps_per_epoch;
    s->min_lr = r->schedule.min_lr;
}

/* Fresh attempt a: seed, parameters, optimizer, corruption stream, loop state. */
void dae_tr_start_attempt(dae_trainer *t, int a)
{
    t->attempt = a;
    t->seed_a = t->r->seed + (uint64_t)RESTART_SEED_STRIDE * (uint64_t)a;
    if (t->init && a == 0)
        memcpy(t->m->params, t->init, t->m->n_params * sizeof *t->init);
    else /* a collapse restart always starts from a fresh random initialisation */
        dae_model_init_scheme(t->m, t->seed_a, (dae_init_scheme)t->r->init_scheme);
    dae_optim_reset(t->opt);
    memset(t->grads, 0, t->m->n_params * sizeof *t->grads);
    dae_rng_seed(&t->crng, t->seed_a);
    t->epoch = t->step_in_epoch = 0;
    t->gstep = 0;
    t->ep_loss_sum = t->ep_mse_sum = 0.0;
    t->ep_count = 0;
    t->win_n = t->win_pos = 0;
    t->bad_epochs = 0;
    t->st.epochs_done = 0;
    t->st.steps = 0;
    t->st.attempt = a;
    t->st.train_loss = t->st.val_loss = t->st.val_psnr = NAN;
    t->st.best_val_psnr = -INFINITY;
    setup_schedule(t);
}

/* Epoch e's order: a Fisher-Yates shuffle from a generator seeded by (seed_a, e). */
void dae_tr_make_perm(dae_trainer *t, int e)
{
    if (t->photos)
        return; /* patches are drawn at random, there is no order */
    int n = t->train->n;
    for (int i = 0; i < n; i++)
        t->perm[i] = i;
    dae_rng r;
    dae_rng_seed(&r, (t->seed_a ^ SHUFFLE_SEED_XOR) + (uint64_t)e * 0x100000001b3ull);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)dae_rng_below(&r, (uint64_t)i + 1);
        int tmp = t->perm[i];
        t->perm[i] = t->perm[j];
        t->perm[j] = tmp;
    }
}

void dae_trainer_free(dae_trainer *t)
{
    if (!t)
        return;
    dae_workspace_free(t->ws);
    dae_model_free(t->m);
    dae_optim_free(t->opt);
    free(t->grads);
    free(t->best);
    free(t->init);
    free(t->init_license);
    free(t->shifted);
    free(t->patch3);
    free(t->in);
    free(t->target);
    free(t->dout);
    free(t->dlatent);
    free(t->wsq);
    free(t->perm);
    free(t->window);
    dae_dataset_free(t->own_val);
    free(t->val_noisy);
    free(t->val_level);
    dae_photonoise_free(t->noise);
    free(t->level);
    free(t);
}

static float *alloc_floats(size_t n, size_t per, dae_error *err, const char *what)
{
    if (per && n > SIZE_MAX / sizeof(float) / per) {
        dae_error_set(err, DAE_ELIMIT, "trainer: %s buffer too large", what);
        return NULL;
    }
    float *p = calloc(n * per > 0 ? n * per : 1, sizeof(float));
    if (!p)
        dae_error_set(err, DAE_ENOMEM, "trainer: cannot allocate the %s buffer (%zu floats)",
                      what, n * per);
    return p;
}

static int finish_create(dae_trainer *t, dae_error *err);

dae_trainer *dae_trainer_create(const dae_recipe *r, const dae_dataset *train,
                                const dae_dataset *val, dae_error *err)
{
    dae_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        dae_error_set(err, DAE_ENOMEM, "trainer: out of memory");
        return NULL;
    }
    t->r = r;
    t->train = train;
    t->val = val;
    t->unit = "img";
    if (r->patches.size > 0) {
        dae_error_set(err, DAE_EINVAL, "patches.size %d: photo patches need photo sets "
                      "(dae_trainer_create_photos)", r->patches.size);
        goto fail;
    }
    if (train->n < 1 || val->n < 1) {
        dae_error_set(err, DAE_EINVAL, "data: %d training and %d validation images, need at "
                      "least one of each", train->n, val->n);
        goto fail;
    }
    if (train->c != val->c || train->h != val->h || train->w != val->w) {
        dae_error_set(err, DAE_ESHAPE, "data: training images are (%d,%d,%d), validation "
                      "images (%d,%d,%d)", train->c, train->h, train->w, val->c, val->h,
                      val->w);
        goto fail;
    }
    t->img = (dae_shape){train->c, train->h, train->w};
    t->img_n = dae_shape_size(t->img);
    t->n_train = train->n;
    t->epoch_samples = train->n;
    if (finish_create(t, err))
        goto fail;
    return t;
fail:
    dae_trainer_free(t);
    return NULL;
}

/* Is this patch rounded to 8 bits and clipped? share 0 or 1 draws nothing (recipes with
 * quantize true or false give the patches they always gave). */
static int draw_quantize(double share, dae_rng *rng)
{
    if (share <= 0.0 || share >= 1.0)
        return share >= 1.0;
    return dae_rng_uniform_d(rng) < share;
}

/* One pair of patch mode: a random clean crop of src and its noisy copy, both in the
 * model's colour space; with data.per_channel, plane ch of them (ch < 0: a random plane;
 * with data.chroma_half a chroma plane comes from a crop twice the size, halved after the
 * noise). The noise: with patches.noise, drawn from that set (sg unused); without,
 * Gaussian of sigma sg on the 0-255 scale (sg < 0: drawn from the recipe's range after the
 * crop). *level = the patch's nominal noise level (0-255 scale, photonoise.h); per
 * channel, that of the plane: sg times dae_color_noise_gain (photo.h), halved for a half
 * plane, as daed runs the model. */
int dae_tr_photo_pair(dae_trainer *t, const dae_photoset *src, dae_rng *rng, int augment,
                      double sg, int ch, float *clean, float *noisy, float *level,
                      dae_error *err)
{
    const dae_recipe *r = t->r;
    if (r->data.chroma_half && ch < 0) /* the crop's size depends on the plane */
        ch = (int)(dae_rng_uniform_d(rng) * src->c);
    int half = r->data.chroma_half && ch > 0, S = half ? 2 * r->patches.size
                                                       : r->patches.size;
    size_t pp = (size_t)S * S, n = pp * (size_t)src->c;
    float *c = t->patch3 ? t->patch3 : clean, *x = t->patch3 ? t->patch3 + n : noisy;
    dae_photoset_sample_patch(src, rng, S, augment, c);
    int quantize = draw_quantize(r->patches.quantize, rng);
    if (t->noise) {
        int rc = dae_photonoise_apply(t->noise, rng, c, quantize, x, &sg, err);
        if (rc)
            return rc;
    } else {
        if (sg < 0)
            sg = r->patches.sigma_min +
                 (r->patches.sigma_max - r->patches.sigma_min) * dae_rng_uniform_d(rng);
        if (quantize) {
            dae_photo_add_noise(rng, c, n, (float)sg, x);
        } else {
            for (size_t i = 0; i < n; i++)
                x[i] = c[i] + (float)(sg / 255.0) * dae_rng_normal(rng);
        }
    }
    *level = (float)sg;
    if (src->c == 3) {
        dae_color_to_space(c, pp, (dae_color_space)r->data.color_space);
        dae_color_to_space(x, pp, (dae_color_space)r->data.color_space);
    }
    if (t->patch3) {
        if (ch < 0)
            ch = (int)(dae_rng_uniform_d(rng) * src->c);
        if (ch >= src->c)
            ch = src->c - 1;
        if (half) {
            dae_plane_half(c + (size_t)ch * pp, S, S, clean);
            dae_plane_half(x + (size_t)ch * pp, S, S, noisy);
        } else {
            memcpy(clean, c + (size_t)ch * pp, pp * sizeof *clean);
            memcpy(noisy, x + (size_t)ch * pp, pp * sizeof *noisy);
        }
        /* the level of the noise in that plane, as daed gives a per-channel model */
        *level = (float)(sg * dae_color_noise_gain((dae_color_space)r->data.color_space, ch) *
                         (half ? 0.5 : 1.0));
    }
    return DAE_OK;
}

/* A noise-map model's input in: its map plane (after the image's) set to the patch's level
 * (sigma on the 0-255 scale) or, when blind, DAE_NOISE_BLIND. Other models: nothing. */
void dae_tr_set_noise_map(const dae_trainer *t, float *in, double sigma, int blind)
{
    if (t->m->noise_map)
        dae_model_noise_fill(in, 1, t->img.c, t->img.h, t->img.w,
                             blind ? DAE_NOISE_BLIND : dae_noise_level(sigma));
}

/* The fixed validation crops of patch mode and their noisy inputs, all from one generator
 * seeded by the recipe's seed: crop k gets sigma lo + (hi-lo)(k+0.5)/n (per channel: plane
 * k mod 3), or with patches.noise whatever that set draws. */
static int make_val_crops(dae_trainer *t, const dae_photoset *src, dae_error *err)
{
    const dae_recipe *r = t->r;
    int n = r->patches.val_count, P = r->patches.size;
    t->own_val = dae_dataset_create(n, t->img.c, P, P, 0, err);
    if (!t->own_val)
        return err ? err->code : DAE_ENOMEM;
    if (!(t->val_noisy = alloc_floats((size_t)n, t->in_n, err, "validation input")) ||
        !(t->val_level = alloc_floats((size_t)n, 1, err, "validation levels")))
        return err->code;
    dae_rng rng;
    dae_rng_seed(&rng, r->seed ^ VAL_SEED_XOR);
    for (int k = 0; k < n; k++) {
        double sg = r->patches.sigma_min +
                    (r->patches.sigma_max - r->patches.sigma_min) * (k + 0.5) / n;
        float *in = t->val_noisy + k * t->in_n;
        int rc = dae_tr_photo_pair(t, src, &rng, 0, sg, k % src->c,
                                   dae_dataset_sample(t->own_val, k), in, t->val_level + k, err);
        if (rc)
            return dae_error_prefix(err, "validation crop %d: ", k);
        dae_tr_set_noise_map(t, in, t->val_level[k], k % 2 == 1);
    }
    return DAE_OK;
}

/* DAE_OK when every photo of ps holds a crop x crop square, else DAE_ESHAPE naming one. */
static int photos_hold(const dae_photoset *ps, int crop, dae_error *err)
{
    for (int i = 0; i < ps->n; i++)
        if (ps->im[i].w < crop || ps->im[i].h < crop)
            return dae_error_set(err, DAE_ESHAPE, "data: photo %s is %dx%d, smaller than the "
                                 "%dx%d crops", ps->names[i], ps->im[i].w, ps->im[i].h, crop,
                                 crop);
    return DAE_OK;
}

dae_trainer *dae_trainer_create_photos(const dae_recipe *r, const dae_photoset *train,
                                       const dae_photoset *val, dae_error *err)
{
    dae_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        dae_error_set(err, DAE_ENOMEM, "trainer: out of memory");
        return NULL;
    }
    t->r = r;
    t->photos = train;
    t->unit = "patches";
    int P = r->patches.size;
    if (P < 1) {
        dae_error_set(err, DAE_EINVAL, "patches.size: 0, photo training needs a patch size");
        goto fail;
    }
    if (!train || train->n < 1 || (val && val->n < 1)) {
        dae_error_set(err, DAE_EINVAL, "data: no training photos");
        goto fail;
    }
    if (train->c != r->data.channels || (val && val->c != train->c)) {
        dae_error_set(err, DAE_ESHAPE, "data: training photos have %d channels, validation "
                      "photos %d, data.channels is %d", train->c, val ? val->c : train->c,
                      r->data.channels);
        goto fail;
    }
    int crop = r->data.chroma_half ? 2 * P : P; /* the largest crop taken */
    if (photos_hold(train, crop, err) || (val && photos_hold(val, crop, err)))
        goto fail;
    t->img = (dae_shape){r->data.per_channel ? 1 : train->c, P, P};
    t->img_n = dae_shape_size(t->img);
    t->n_train = train->n;
    t->epoch_samples = r->patches.per_epoch;
    if (r->data.per_channel &&
        !(t->patch3 = alloc_floats(2 * (size_t)train->c, (size_t)crop * crop, err,
                                   "patches")))
        goto fail;
    if (!(t->level = alloc_floats((size_t)r->batch_size, 1, err, "noise levels")))
        goto fail;
    if (r->patches.noise.n > 0 &&
        !(t->noise = dae_photonoise_create(&r->patches.noise, train->c, P, P, err))) {
        dae_error_prefix(err, "patches.noise: ");
        goto fail;
    }
    if (finish_create(t, err)) /* first: the validation inputs take the model's shape */
        goto fail;
    if (make_val_crops(t, val ? val : train, err))
        goto fail;
    t->val = t->own_val;
    return t;
fail:
    dae_trainer_free(t);
    return NULL;
}

/* Everything after the data: model, shapes, buffers, the first attempt. */
/* The recipe's "init" model file: same layers and parameter shapes as the recipe's model
 * (names and shapes are compared tensor by tensor); its weights become t->init. */
static int load_init(dae_trainer *t, const char *path, dae_error *err)
{
    const dae_model *m = t->m;
    dae_modelfile *mf = dae_modelfile_load(path, NULL, err);
    if (!mf)
        return dae_error_prefix(err, "init: ");
    const dae_model *src = mf->model;
    int rc = DAE_OK, L = m->n_enc + m->n_dec;
    if (src->n_enc != m->n_enc || src->n_dec != m->n_dec || src->n_params != m->n_params) {
        rc = dae_error_set(err, DAE_ESHAPE, "init: %s has %d+%d layers and %zu parameters; the "
                           "recipe's model has %d+%d and %zu", path, src->n_enc, src->n_dec,
                           src->n_params, m->n_enc, m->n_dec, m->n_params);
        goto done;
    }
    for (int i = 0; i < L; i++) {
        for (int b = 0; b < 2; b++) {
            int64_t da[4], db[4];
            int na = dae_model_param_shape(m, i, b, da), nb = dae_model_param_shape(src, i, b, db);
            if (src->layers[i].kind != m->layers[i].kind || na != nb ||
                memcmp(da, db, (size_t)na * sizeof *da)) {
                char name[64];
                dae_model_param_name(m, i, b, name, sizeof name);
                rc = dae_error_set(err, DAE_ESHAPE, "init: %s: layer %d (%s) differs from the "
                                   "recipe's model", path, i, name);
                goto done;
            }
        }
    }
    if (!(t->init = alloc_floats(m->n_params, 1, err, "init weights"))) {
        rc = err ? err->code : DAE_ENOMEM;
        goto done;
    }
    memcpy(t->init, src->params, m->n_params * sizeof *t->init);
    t->init_license = dae_modelfile_meta(mf, "license");
done:
    dae_modelfile_free(mf);
    return rc;
}

/* The shapes of a run: the corrupted input (plus a noise-map plane), the output (must be
 * the clean image's), the code; checks the recipe's corruptions against the model.
 * Nonzero with err set on a mismatch. */
static int setup_shapes(dae_trainer *t, dae_error *err)
{
    const dae_recipe *r = t->r;
    const dae_model *m = t->m;
    int oc = t->img.c, oh = t->img.h, ow = t->img.w;
    if (!t->photos && dae_corruption_out_shape(&r->corruption, t->img.c, t->img.h, t->img.w,
                                               &oc, &oh, &ow, err)) {
        dae_error_prefix(err, "corruption: ");
        return -1;
    }
    if (m->noise_map && !t->photos) {
        dae_error_set(err, DAE_EINVAL, "model: noise_map models train on photo patches "
                      "(patches.size > 0), whose noise level is known per patch");
        return -1;
    }
    /* a noise-map model's input is the image plus the map plane (model.h) */
    t->in_shape = (dae_shape){oc + (m->noise_map ? 1 : 0), oh, ow};
    t->down2 = oh != t->img.h || ow != t->img.w;
    if (t->down2 && r->noise2noise) {
        dae_error_set(err, DAE_EINVAL, "noise2noise: needs a same-size corruption, not down2 "
                      "(the target must be an image of the output size)");
        return -1;
    }
    if (r->target_corruption.n > 0) {
        int tc, th, tw;
        if (!r->noise2noise) {
            dae_error_set(err, DAE_EINVAL, "target_corruption: only used with noise2noise true");
            return -1;
        }
        if (dae_corruption_out_shape(&r->target_corruption, t->img.c, t->img.h, t->img.w, &tc,
                                     &th, &tw, err)) {
            dae_error_prefix(err, "target_corruption: ");
            return -1;
        }
        if (th != t->img.h || tw != t->img.w) {
            dae_error_set(err, DAE_EINVAL, "target_corruption: needs a same-size corruption, "
                          "not down2");
            return -1;
        }
    }
    if (dae_model_check_input(m, t->in_shape, err)) {
        dae_error_prefix(err, "model input vs corrupted images (%d,%d,%d): ", oc, oh, ow);
        return -1;
    }
    int L = m->n_enc + m->n_dec;
    if (dae_model_shape_through(m, t->in_shape, 0, L, &t->out_shape, err) ||
        dae_model_shape_through(m, t->in_shape, 0, m->n_enc, &t->lat_shape, err))
        return -1;
    if (!dae_shape_eq(t->out_shape, t->img)) {
        dae_error_set(err, DAE_ESHAPE, "model: output (%d,%d,%d) for input (%d,%d,%d), but the "
                      "clean images are (%d,%d,%d)", t->out_shape.c, t->out_shape.h,
                      t->out_shape.w, oc, oh, ow, t->img.c, t->img.h, t->img.w);
        return -1;
    }
    t->in_n = dae_shape_size(t->in_shape);
    t->out_n = dae_shape_size(t->out_shape);
    t->lat_n = dae_shape_size(t->lat_shape);
    return DAE_OK;
}

/* The workspace, optimizer and batch buffers of t (setup_shapes first). Nonzero with err
 * set when one cannot be made. */
static int alloc_buffers(dae_trainer *t, dae_error *err)
{
    const dae_recipe *r = t->r;
    const dae_model *m = t->m;
    const dae_dataset *train = t->train;
    size_t B = (size_t)r->batch_size;
    t->ws = dae_workspace_create(m, r->batch_size, t->in_shape, 1, err);
    /* Our threads split each batch (OpenBLAS stays single-threaded): on small sgemms
     * OpenBLAS's own threads spin and lose, badly so on a shared machine (bench/train-speed). */
    if (!t->ws || dae_workspace_set_threads(t->ws, r->threads, err))
        return -1;
    /* bf16 steps: the AMX tiles made here, switched on for each step (train_step) */
    if (r->precision == DAE_PREC_BF16 &&
        dae_workspace_set_precision(t->ws, DAE_PREC_BF16, err))
        return -1;
    t->bf16 = dae_workspace_precision(t->ws) == DAE_PREC_BF16;
    dae_workspace_set_precision(t->ws, DAE_PREC_FP32, NULL);
    dae_optim_params op = r->optim;
    t->opt = dae_optim_create(&op, m->n_params, err);
    if (!t->opt)
        return -1;
    if (!(t->grads = alloc_floats(m->n_params, 1, err, "gradient")) ||
        !(t->in = alloc_floats(B, t->in_n, err, "input")) ||
        !(t->target = alloc_floats(B, t->out_n, err, "target")) ||
        !(t->dout = alloc_floats(B, t->out_n, err, "output gradient")))
        return -1;
    if (r->early_stop.patience > 0 && !(t->best = alloc_floats(m->n_params, 1, err, "best")))
        return -1;
    if ((r->objective.sparse > 0 || t->contractive) &&
        !(t->dlatent = alloc_floats(B, t->lat_n, err, "code gradient")))
        return -1;
    if (t->contractive && !(t->wsq = alloc_floats((size_t)t->ctr.hidden, 1, err, "scratch")))
        return -1;
    t->perm = malloc((size_t)(train ? train->n : 1) * sizeof *t->perm);
    t->window = malloc((size_t)r->collapse.window * sizeof *t->window);
    if (!t->perm || !t->window) {
        dae_error_set(err, DAE_ENOMEM, "trainer: out of memory");
        return -1;
    }
    return DAE_OK;
}

/* The collapse reference E[target^2] over the clean training images (or photos). */
static double target_sq(const dae_trainer *t)
{
    const dae_dataset *train = t->train;
    double sq = 0.0, total = 0.0;
    if (train) {
        size_t nv = (size_t)train->n * t->img_n;
        for (size_t i = 0; i < nv; i++)
            sq += (double)train->x[i] * (double)train->x[i];
        total = (double)nv;
    } else {
        for (int k = 0; k < t->photos->n; k++) {
            const dae_image *im = &t->photos->im[k];
            size_t nv = (size_t)im->c * im->w * im->h;
            for (size_t i = 0; i < nv; i++)
                sq += (double)im->px[i] * (double)im->px[i];
            total += (double)nv;
        }
    }
    return sq / total;
}

static int finish_create(dae_trainer *t, dae_error *err)
{
    const dae_recipe *r = t->r;
    t->m = dae_model_from_config(r->model_json, err);
    if (!t->m) {
        dae_error_prefix(err, "model: ");
        goto fail;
    }
    const dae_model *m = t->m;

    if (setup_shapes(t, err))
        goto fail;
    if (r->objective.contractive > 0) {
        if (dae_contractive_check(m, &t->ctr, err))
            goto fail;
        t->contractive = 1;
    }
    t->collapse_on = r->collapse.check == DAE_TRI_ON ||
                     (r->collapse.check == DAE_TRI_AUTO && has_conv_decoder(m));

    if (alloc_buffers(t, err))
        goto fail;
    t->st.target_sq = target_sq(t);

    long long spe = (t->epoch_samples + r->batch_size - 1) / r->batch_size;
    if (spe > 1000000000) {
        return dae_error_set(err, DAE_ELIMIT, "patches.per_epoch: %lld steps per epoch, at "
                             "most 1e9", spe);
    }
    t->steps_per_epoch = (int)spe;
    if (r->init[0] && load_init(t, r->init, err))
        goto fail;
    if (r->data.shift > 0 && !t->photos &&
        !(t->shifted = alloc_floats(t->img_n, 1, err, "data.shift")))
        goto fail;
    dae_tr_start_attempt(t, 0);
    return DAE_OK;
fail: /* err was set by whatever failed */
    return err && err->code ? err->code : DAE_EINVAL;
}

const dae_model *dae_trainer_model(const dae_trainer *t)
{
    return t->m;
}

const dae_train_stats *dae_trainer_stats(const dae_trainer *t)
{
    return &t->st;
}

/* trainer.c — the dae-train loop: steps, validation, collapse restarts, checkpoints,
 * resume, calibration and the final model file (see train.h). */
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

#define RESTART_SEED_STRIDE 7919u   /* PROTOCOL §3.5: seed + 7919*attempt */
#define VAL_SEED_XOR 0x9E3779B97F4A7C15ull
#define SHUFFLE_SEED_XOR 0xD1B54A32D192ED03ull
#define CKPT_FORMAT "daed-ckpt-1"
#define CKPT_MAX_BYTES ((size_t)4 << 30)
#define PHOTOS_MAX 100000 /* photos in a training folder */

struct dae_trainer {
    const dae_recipe *r;
    const dae_dataset *train, *val; /* train is NULL in patch mode */
    const dae_photoset *photos;     /* patch mode: the training photos (borrowed) */
    dae_dataset *own_val;           /* patch mode: the fixed validation crops (owned) */
    float *val_noisy;               /* patch mode: their noisy inputs (owned) */
    float *val_level;               /* patch mode: their nominal noise levels, 0-255 (owned) */
    dae_photonoise *noise;          /* patch mode with patches.noise: the generator, or NULL */
    float *level;                   /* (B) patch mode: each batch patch's nominal noise level
                                       on the 0-255 scale (for a noise-level map input) */
    int n_train;                    /* training images, or photos in patch mode */
    long long epoch_samples;        /* samples (images or patches) per epoch */
    const char *unit;               /* "img" or "patches" in the progress line */
    dae_model *m;
    dae_workspace *ws;
    dae_optim *opt;
    float *grads;    /* (n_params) */
    float *best;     /* (n_params) best parameters so far, early stopping only */
    float *init;     /* (n_params) recipe "init" weights (first attempt), or NULL */
    float *shifted;  /* (img_n) data.shift scratch, or NULL */
    float *patch3;   /* (2, 3*P*P) data.per_channel scratch: a clean and a noisy colour
                        patch, or NULL */
    float *in;       /* (B, in_n) model inputs */
    float *target;   /* (B, out_n) */
    float *dout;     /* (B, out_n) */
    float *dlatent;  /* (B, lat_n) code-penalty gradient, or NULL */
    float *wsq;      /* (hidden) contractive scratch, or NULL */
    int *perm;       /* (train->n) this epoch's order */
    double *window;  /* (collapse.window) recent step MSEs */
    dae_shape img, in_shape, out_shape, lat_shape;
    size_t img_n, in_n, out_n, lat_n;
    int down2;       /* the model sees the 2x-downscaled image */
    int contractive; /* penalty on, with ctr describing the layer */
    dae_contractive ctr;
    int collapse_on;
    int steps_per_epoch;
    dae_schedule sched;

    /* loop state: everything a checkpoint must hold */
    dae_rng crng;    /* corruption stream */
    int epoch, step_in_epoch;
    long long gstep;
    int attempt;
    uint64_t seed_a;
    double ep_loss_sum, ep_mse_sum;
    long long ep_count;   /* samples summed in this epoch */
    int win_n, win_pos;
    int bad_epochs;
    int restarts_logged;
    dae_train_stats st;
};

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void logf_(const dae_train_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(const dae_train_options *o, const char *fmt, ...)
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
static void start_attempt(dae_trainer *t, int a)
{
    t->attempt = a;
    t->seed_a = t->r->seed + (uint64_t)RESTART_SEED_STRIDE * (uint64_t)a;
    if (t->init && a == 0)
        memcpy(t->m->params, t->init, t->m->n_params * sizeof *t->init);
    else /* a collapse restart always starts from a fresh random initialisation */
        dae_model_init_params(t->m, t->seed_a);
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
static void make_perm(dae_trainer *t, int e)
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

/* One pair of patch mode: a random clean crop of src and its noisy copy, both in the
 * model's colour space; with data.per_channel, plane ch of them (ch < 0: a random plane).
 * The noise: with patches.noise, drawn from that set (sg unused); without, Gaussian of
 * sigma sg on the 0-255 scale (sg < 0: drawn from the recipe's range after the crop).
 * *level = the patch's nominal noise level (0-255 scale, photonoise.h). */
static int photo_pair(dae_trainer *t, const dae_photoset *src, dae_rng *rng, int augment,
                      double sg, int ch, float *clean, float *noisy, float *level,
                      dae_error *err)
{
    const dae_recipe *r = t->r;
    int P = r->patches.size;
    size_t pp = (size_t)P * P, n = pp * (size_t)src->c;
    float *c = t->patch3 ? t->patch3 : clean, *x = t->patch3 ? t->patch3 + n : noisy;
    dae_photoset_sample_patch(src, rng, P, augment, c);
    if (t->noise) {
        int rc = dae_photonoise_apply(t->noise, rng, c, r->patches.quantize, x, &sg, err);
        if (rc)
            return rc;
    } else {
        if (sg < 0)
            sg = r->patches.sigma_min +
                 (r->patches.sigma_max - r->patches.sigma_min) * dae_rng_uniform_d(rng);
        if (r->patches.quantize) {
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
        memcpy(clean, c + (size_t)ch * pp, pp * sizeof *clean);
        memcpy(noisy, x + (size_t)ch * pp, pp * sizeof *noisy);
    }
    return DAE_OK;
}

/* A noise-map model's input in: its map plane (after the image's) set to the patch's level
 * (sigma on the 0-255 scale) or, when blind, DAE_NOISE_BLIND. Other models: nothing. */
static void set_noise_map(const dae_trainer *t, float *in, double sigma, int blind)
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
        int rc = photo_pair(t, src, &rng, 0, sg, k % src->c, dae_dataset_sample(t->own_val, k),
                            in, t->val_level + k, err);
        if (rc)
            return dae_error_prefix(err, "validation crop %d: ", k);
        set_noise_map(t, in, t->val_level[k], k % 2 == 1);
    }
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
    for (int i = 0; i < train->n; i++)
        if (train->im[i].w < P || train->im[i].h < P) {
            dae_error_set(err, DAE_ESHAPE, "data: photo %s is %dx%d, smaller than the "
                          "%dx%d patches", train->names[i], train->im[i].w, train->im[i].h,
                          P, P);
            goto fail;
        }
    t->img = (dae_shape){r->data.per_channel ? 1 : train->c, P, P};
    t->img_n = dae_shape_size(t->img);
    t->n_train = train->n;
    t->epoch_samples = r->patches.per_epoch;
    if (r->data.per_channel &&
        !(t->patch3 = alloc_floats(2 * (size_t)train->c, (size_t)P * P, err, "patches")))
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
done:
    dae_modelfile_free(mf);
    return rc;
}

static int finish_create(dae_trainer *t, dae_error *err)
{
    const dae_recipe *r = t->r;
    const dae_dataset *train = t->train;
    t->m = dae_model_from_config(r->model_json, err);
    if (!t->m) {
        dae_error_prefix(err, "model: ");
        goto fail;
    }
    const dae_model *m = t->m;

    int oc = t->img.c, oh = t->img.h, ow = t->img.w;
    if (!t->photos && dae_corruption_out_shape(&r->corruption, t->img.c, t->img.h, t->img.w,
                                               &oc, &oh, &ow, err)) {
        dae_error_prefix(err, "corruption: ");
        goto fail;
    }
    if (m->noise_map && !t->photos) {
        dae_error_set(err, DAE_EINVAL, "model: noise_map models train on photo patches "
                      "(patches.size > 0), whose noise level is known per patch");
        goto fail;
    }
    /* a noise-map model's input is the image plus the map plane (model.h) */
    t->in_shape = (dae_shape){oc + (m->noise_map ? 1 : 0), oh, ow};
    t->down2 = oh != t->img.h || ow != t->img.w;
    if (t->down2 && r->noise2noise) {
        dae_error_set(err, DAE_EINVAL, "noise2noise: needs a same-size corruption, not down2 "
                      "(the target must be an image of the output size)");
        goto fail;
    }
    if (r->target_corruption.n > 0) {
        int tc, th, tw;
        if (!r->noise2noise) {
            dae_error_set(err, DAE_EINVAL, "target_corruption: only used with noise2noise true");
            goto fail;
        }
        if (dae_corruption_out_shape(&r->target_corruption, t->img.c, t->img.h, t->img.w, &tc,
                                     &th, &tw, err)) {
            dae_error_prefix(err, "target_corruption: ");
            goto fail;
        }
        if (th != t->img.h || tw != t->img.w) {
            dae_error_set(err, DAE_EINVAL, "target_corruption: needs a same-size corruption, "
                          "not down2");
            goto fail;
        }
    }
    if (dae_model_check_input(m, t->in_shape, err)) {
        dae_error_prefix(err, "model input vs corrupted images (%d,%d,%d): ", oc, oh, ow);
        goto fail;
    }
    int L = m->n_enc + m->n_dec;
    if (dae_model_shape_through(m, t->in_shape, 0, L, &t->out_shape, err) ||
        dae_model_shape_through(m, t->in_shape, 0, m->n_enc, &t->lat_shape, err))
        goto fail;
    if (!dae_shape_eq(t->out_shape, t->img)) {
        dae_error_set(err, DAE_ESHAPE, "model: output (%d,%d,%d) for input (%d,%d,%d), but the "
                      "clean images are (%d,%d,%d)", t->out_shape.c, t->out_shape.h,
                      t->out_shape.w, oc, oh, ow, t->img.c, t->img.h, t->img.w);
        goto fail;
    }
    t->in_n = dae_shape_size(t->in_shape);
    t->out_n = dae_shape_size(t->out_shape);
    t->lat_n = dae_shape_size(t->lat_shape);
    if (r->objective.contractive > 0) {
        if (dae_contractive_check(m, &t->ctr, err))
            goto fail;
        t->contractive = 1;
    }
    t->collapse_on = r->collapse.check == DAE_TRI_ON ||
                     (r->collapse.check == DAE_TRI_AUTO && has_conv_decoder(m));

    size_t B = (size_t)r->batch_size;
    t->ws = dae_workspace_create(m, r->batch_size, t->in_shape, 1, err);
    /* Our threads split each batch (OpenBLAS stays single-threaded): on small sgemms
     * OpenBLAS's own threads spin and lose, badly so on a shared machine (bench/train-speed). */
    if (!t->ws || dae_workspace_set_threads(t->ws, r->threads, err))
        goto fail;
    dae_optim_params op = r->optim;
    t->opt = dae_optim_create(&op, m->n_params, err);
    if (!t->opt)
        goto fail;
    if (!(t->grads = alloc_floats(m->n_params, 1, err, "gradient")) ||
        !(t->in = alloc_floats(B, t->in_n, err, "input")) ||
        !(t->target = alloc_floats(B, t->out_n, err, "target")) ||
        !(t->dout = alloc_floats(B, t->out_n, err, "output gradient")))
        goto fail;
    if (r->early_stop.patience > 0 && !(t->best = alloc_floats(m->n_params, 1, err, "best")))
        goto fail;
    if ((r->objective.sparse > 0 || t->contractive) &&
        !(t->dlatent = alloc_floats(B, t->lat_n, err, "code gradient")))
        goto fail;
    if (t->contractive && !(t->wsq = alloc_floats((size_t)t->ctr.hidden, 1, err, "scratch")))
        goto fail;
    t->perm = malloc((size_t)(train ? train->n : 1) * sizeof *t->perm);
    t->window = malloc((size_t)r->collapse.window * sizeof *t->window);
    if (!t->perm || !t->window) {
        dae_error_set(err, DAE_ENOMEM, "trainer: out of memory");
        goto fail;
    }

    /* collapse reference: E[target^2] over the clean training images (or photos) */
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
    t->st.target_sq = sq / total;

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
    start_attempt(t, 0);
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
static void fill_batch(dae_trainer *t, const dae_dataset *ds, const int *idx, int first,
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
        set_noise_map(t, inb, 0.0, 0);
    }
}

/* Patch mode: B random clean crops (targets), their noisy copies (inputs) and their noise
 * levels (t->level). */
static int fill_photo_batch(dae_trainer *t, int B, dae_error *err)
{
    for (int b = 0; b < B; b++) {
        float *in = t->in + (size_t)b * t->in_n;
        int rc = photo_pair(t, t->photos, &t->crng, t->r->patches.augment, -1, -1,
                            t->target + (size_t)b * t->out_n, in, t->level + b, err);
        if (rc)
            return rc;
        if (t->m->noise_map)
            set_noise_map(t, in, t->level[b],
                          dae_rng_uniform_d(&t->crng) < t->r->patches.blind);
    }
    return DAE_OK;
}

/* Forward, objective, backward, update. *obj = loss + penalties, *mse = reconstruction
 * MSE (the collapse check's measure). */
static int train_step(dae_trainer *t, int B, double *obj, double *mse, dae_error *err)
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
    /* the numeric state fields, checked against their ranges before anything is changed */
    enum { EPOCH, STEP_IN_EPOCH, STEP, ATTEMPT, OPTIM_T, EP_LOSS_SUM, EP_MSE_SUM, EP_COUNT,
           WIN_N, WIN_POS, BAD_EPOCHS, EPOCHS_DONE, TRAIN_LOSS, VAL_LOSS, VAL_PSNR,
           BEST_VAL_PSNR, N_TRAIN, N_VAL, BATCH_SIZE, N_STATE };
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
    double v[N_STATE];
    for (int i = 0; i < N_STATE; i++)
        if ((rc = get_num(s, spec[i].key, spec[i].lo, spec[i].hi,
                          i >= TRAIN_LOSS && i <= BEST_VAL_PSNR, &v[i], path, err)))
            goto done;
    if ((int)v[N_TRAIN] != t->n_train || (int)v[N_VAL] != t->val->n ||
        (int)v[BATCH_SIZE] != t->r->batch_size) {
        rc = dae_error_set(err, DAE_EINVAL,
                           "checkpoint %s: made with %d training / %d validation images and "
                           "batch %d; this run has %d / %d and batch %d",
                           path, (int)v[N_TRAIN], (int)v[N_VAL], (int)v[BATCH_SIZE],
                           t->n_train, t->val->n, t->r->batch_size);
        goto done;
    }
    if ((int)v[WIN_N] > t->r->collapse.window || (int)v[WIN_POS] >= t->r->collapse.window ||
        (int)v[STEP_IN_EPOCH] > t->steps_per_epoch) {
        rc = dae_error_set(err, DAE_EFORMAT, "checkpoint %s: inconsistent loop state", path);
        goto done;
    }
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(s, "rng");
    const cJSON *win = cJSON_GetObjectItemCaseSensitive(s, "window");
    if (cJSON_GetArraySize(rng) != 4 || cJSON_GetArraySize(win) != (int)v[WIN_N]) {
        rc = dae_error_set(err, DAE_EFORMAT, "checkpoint %s: bad rng or window state", path);
        goto done;
    }
    /* everything checked: now overwrite the trainer */
    start_attempt(t, (int)v[ATTEMPT]);
    const dae_model *m = t->m;
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
    for (int i = 0; i < 4 && !rc; i++) {
        const cJSON *h = cJSON_GetArrayItem(rng, i);
        char *end = NULL;
        if (cJSON_IsString(h))
            t->crng.s[i] = strtoull(h->valuestring, &end, 16);
        if (!end || *end)
            rc = dae_error_set(err, DAE_EFORMAT, "checkpoint %s: bad rng state", path);
    }
    for (int i = 0; i < (int)v[WIN_N] && !rc; i++) {
        const cJSON *x = cJSON_GetArrayItem(win, i);
        if (!cJSON_IsNumber(x))
            rc = dae_error_set(err, DAE_EFORMAT, "checkpoint %s: bad window", path);
        else
            t->window[i] = x->valuedouble;
    }
    if (rc) {
        start_attempt(t, 0); /* leave a consistent fresh state behind */
        goto done;
    }
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
done:
    cJSON_Delete(s);
    free(arch);
    dae_st_free(f);
    free(buf);
    return rc;
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
    logf_(o, "%scollapse: mean reconstruction MSE of the last %d steps %.5f > %.2f*E[x^2] = "
          "%.5f after %lld steps (stuck on the all-black plateau); restarting with seed %" PRIu64
          " (attempt %d of %d) and a %lld-step learning-rate warm-up\n",
          o && o->progress_bar ? "\r\033[K" : "", t->win_n, mean, r->collapse.factor, limit,
          t->gstep, r->seed + (uint64_t)RESTART_SEED_STRIDE * (uint64_t)next, next + 1,
          r->collapse.max_attempts, r->schedule.warmup_steps + r->collapse.restart_warmup);
    start_attempt(t, next);
    return 1;
}

int dae_trainer_run(dae_trainer *t, const dae_train_options *o, dae_error *err)
{
    const dae_recipe *r = t->r;
    const int bs = r->batch_size;
    const long long n = t->epoch_samples;
    double t0 = now_s(), last_draw = 0.0;
    long long run_samples = 0;
    int progress = o && o->progress_bar;
    t->st.status = DAE_TRAIN_DONE;

    while (t->epoch < r->epochs) {
        double ep_t0 = now_s();
        long long ep_samples0 = run_samples;
        make_perm(t, t->epoch);
        int restarted = 0;
        while (t->step_in_epoch < t->steps_per_epoch) {
            long long pos = (long long)t->step_in_epoch * bs;
            int B = n - pos < bs ? (int)(n - pos) : bs;
            int rc = DAE_OK;
            if (t->photos)
                rc = fill_photo_batch(t, B, err);
            else
                fill_batch(t, t->train, t->perm + pos, 0, B, &t->crng, 1);
            double obj, mse;
            if (!rc)
                rc = train_step(t, B, &obj, &mse, err);
            if (rc)
                return dae_error_prefix(err, "epoch %d step %d: ", t->epoch + 1,
                                        t->step_in_epoch + 1);
            if (!isfinite(obj)) {
                if (progress)
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
            run_samples += B;
            if (collapse_check(t, o)) {
                restarted = 1;
                break;
            }
            if (progress) {
                double now = now_s();
                if (now - last_draw > 0.2 || t->step_in_epoch == t->steps_per_epoch) {
                    last_draw = now;
                    double rate = (double)run_samples / (now - t0);
                    long long left = (long long)(r->epochs - t->epoch) * n -
                                     (long long)t->step_in_epoch * bs;
                    draw_progress(t, t->ep_loss_sum / (double)t->ep_count, rate,
                                  (double)left / rate);
                }
            }
            if (interrupted(t, o)) {
                if (progress)
                    fputs("\r\033[K", stderr);
                t->st.status = DAE_TRAIN_INTERRUPTED;
                t->st.seconds += now_s() - t0;
                int rc2 = dae_trainer_save_checkpoint(t, r->checkpoint, err);
                if (!rc2)
                    logf_(o, "interrupted at epoch %d step %d: checkpoint %s (continue with "
                          "--resume)\n", t->epoch + 1, t->step_in_epoch, r->checkpoint);
                return rc2;
            }
        }
        if (restarted)
            continue;

        /* end of epoch */
        t->st.train_loss = t->ep_loss_sum / (double)t->ep_count;
        double vloss, vpsnr;
        int rc = validate(t, &vloss, &vpsnr, err);
        if (rc)
            return dae_error_prefix(err, "validation after epoch %d: ", t->epoch + 1);
        t->st.val_loss = vloss;
        t->st.val_psnr = vpsnr;
        t->st.epochs_done = t->epoch + 1;
        double secs = now_s() - ep_t0;
        if (progress)
            fputs("\r\033[K", stderr);
        logf_(o, "epoch %d/%d train_loss %.6f val_loss %.6f val_psnr %.3f dB lr %.3g "
              "%.2f s (%.0f %s/s)\n", t->epoch + 1, r->epochs, t->st.train_loss, vloss,
              vpsnr, dae_schedule_lr(&t->sched, t->gstep - 1), secs,
              (double)(run_samples - ep_samples0) / secs, t->unit);
        t->epoch++;
        t->step_in_epoch = 0;
        t->ep_loss_sum = t->ep_mse_sum = 0.0;
        t->ep_count = 0;

        int stop_early = 0;
        if (r->early_stop.patience > 0) {
            if (vpsnr > t->st.best_val_psnr + r->early_stop.min_delta) {
                t->st.best_val_psnr = vpsnr;
                t->bad_epochs = 0;
                memcpy(t->best, t->m->params, t->m->n_params * sizeof *t->best);
            } else if (++t->bad_epochs >= r->early_stop.patience) {
                stop_early = 1;
            }
        } else if (vpsnr > t->st.best_val_psnr) {
            t->st.best_val_psnr = vpsnr;
        }
        if (stop_early) {
            memcpy(t->m->params, t->best, t->m->n_params * sizeof *t->best);
            /* the reported validation numbers are those of the weights kept */
            if ((rc = validate(t, &t->st.val_loss, &t->st.val_psnr, err)))
                return rc;
            t->st.status = DAE_TRAIN_EARLY_STOP;
            logf_(o, "early stop: no validation PSNR gain above %.3f dB for %d epochs; "
                  "keeping the best (%.3f dB)\n", r->early_stop.min_delta, t->bad_epochs,
                  t->st.best_val_psnr);
        }
        double t1 = now_s(); /* the checkpoint carries the training time so far */
        t->st.seconds += t1 - t0;
        t0 = t1;
        if ((rc = dae_trainer_save_checkpoint(t, r->checkpoint, err)))
            return rc;
        if (stop_early)
            break;
    }
    t->st.seconds += now_s() - t0;
    return DAE_OK;
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
        fill_batch(t, v, NULL, pos, B, NULL, 0);
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
        /* the photo noise, and what a server needs to feed the model */
        /* with a noise set: the range of its gaussian/correlated sigmas, and the set */
        double lo = r->patches.sigma_min, hi = r->patches.sigma_max;
        dae_photonoise_sigma_range(&r->patches.noise, &lo, &hi);
        cJSON_AddStringToObject(corr, "type", "gaussian255");
        cJSON *sg = cJSON_AddArrayToObject(corr, "sigma");
        cJSON_AddItemToArray(sg, cJSON_CreateNumber(lo));
        cJSON_AddItemToArray(sg, cJSON_CreateNumber(hi));
        cJSON_AddBoolToObject(corr, "quantize", r->patches.quantize);
        if (r->patches.noise_json)
            cJSON_AddItemToObject(corr, "noise", cJSON_Parse(r->patches.noise_json));
        if (t->photos->c == 3)
            cJSON_AddStringToObject(cfg, "color_space",
                                    dae_color_space_name((dae_color_space)r->data.color_space));
        if (r->data.per_channel)
            cJSON_AddBoolToObject(cfg, "per_channel", 1);
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
    rc = fit ? dae_score_fit_save(path, t->m, cfg_txt, fit, err)
             : dae_modelfile_save(path, t->m, cfg_txt, NULL, err);
done:
    cJSON_Delete(cfg);
    free(cfg_txt);
    free(arch);
    return rc;
}

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
        logf_(o, "dae-train: %s: %zu parameters; %d training photos (%.1f Mpx, %d channel%s%s%s) "
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
            logf_(o, "dae-train: noise-level map input: each patch's sigma/255, blind (%g) with "
                  "probability %g; every other validation crop blind\n",
                  (double)DAE_NOISE_BLIND, r->patches.blind);
        if (r->patches.noise_json)
            logf_(o, "dae-train: patch noise (instead of the sigma range): %s\n",
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
        logf_(o, "dae-train: %s: %zu parameters; %d training and %d validation images (%d,%d,%d) "
              "from %s; %d steps/epoch of %d; %s, lr %g; %d thread%s\n",
              r->name, t->m->n_params, train->n, val->n, train->c, train->h, train->w,
              r->data.train, t->steps_per_epoch, r->batch_size, dae_opt_kind_name(r->optim.kind),
              r->lr, r->threads, r->threads == 1 ? "" : "s");
    }
    if (resume_path) {
        if ((rc = dae_trainer_resume(t, resume_path, err)))
            goto done;
        logf_(o, "resumed from %s at epoch %d step %d (attempt %d)\n", resume_path,
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
    logf_(o, "wrote %s: %d epochs, train_loss %.6f, val_psnr %.3f dB, %d collapse restart%s, "
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

/* trainer_internal.h — what the trainer's sources of src/train share (private).
 *
 *   trainer.c     the trainer: creation (images or photo patches), attempts, batches' order
 *   run.c         one step, validation, progress, the loop (dae_trainer_run)
 *   checkpoint.c  checkpoints and resume, calibration, the final model file
 *   train_main.c  the whole program behind dae-train (dae_train_main)
 */
#ifndef DAED_TRAIN_TRAINER_INTERNAL_H
#define DAED_TRAIN_TRAINER_INTERNAL_H

#include <stdint.h>

#include "daed/io/photo.h"
#include "daed/train/photonoise.h"
#include "daed/core/rng.h"
#include "daed/train/trainer.h"

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
    char *init_license; /* the init file's "license" metadata: every model file made from
                           its weights carries it (checkpoint.c), or NULL */
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
    int bf16;        /* precision bf16 and AMX here: steps run on AMX tiles (train_step) */
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

/* Seconds on the monotonic clock. */
double dae_tr_now_s(void);
/* printf to o->log (flushed) when there is one. */
void dae_tr_logf(const dae_train_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Fresh attempt a: seed, parameters, optimizer, corruption stream, loop state. */
void dae_tr_start_attempt(dae_trainer *t, int a);
/* Epoch e's order: a Fisher-Yates shuffle from a generator seeded by (seed_a, e). */
void dae_tr_make_perm(dae_trainer *t, int e);
/* One pair of patch mode: a random clean crop of src and its noisy copy (trainer.c says
 * how the noise and *level are drawn). */
int dae_tr_photo_pair(dae_trainer *t, const dae_photoset *src, dae_rng *rng, int augment,
                      double sg, int ch, float *clean, float *noisy, float *level,
                      dae_error *err);
/* A noise-map model's input: its map plane set to sigma (0-255 scale) or DAE_NOISE_BLIND. */
void dae_tr_set_noise_map(const dae_trainer *t, float *in, double sigma, int blind);
/* Inputs and targets of samples idx[0..B) of ds; corrupted with rng when corrupt. */
void dae_tr_fill_batch(dae_trainer *t, const dae_dataset *ds, const int *idx, int first,
                       int B, dae_rng *rng, int corrupt);

#endif

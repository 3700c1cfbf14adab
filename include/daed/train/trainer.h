/* trainer.h — the dae-train loop: minibatches, corruptions, objective, optimizer, validation,
 * checkpoints and resume, collapse restarts, anomaly calibration, the final model file.
 *
 * One step: gather a batch of clean images in a shuffled order → corrupt each sample afresh
 * (corrupt.h; Noise2Noise: the target is a second, independent corruption) → forward →
 * loss + code penalties → backward → optional clipping → optimizer step at the scheduled
 * learning rate. Nothing is allocated per step: every buffer is sized at creation.
 *
 * Determinism: the run is a function of (recipe, data, BLAS thread count). Attempt a of a
 * run uses seed s_a = seed + 7919*a for the initial parameters, the corruption stream and
 * the per-epoch shuffles (epoch e's permutation comes from a generator seeded by (s_a, e),
 * so a resumed run needs only the corruption stream's state).
 *
 * Checkpoints (after every epoch, and on interruption at the end of the current step) are
 * safetensors files written atomically: the parameters under their model names, the
 * optimizer state as "optim.m" / "optim.v" (and "best.params" with early stopping), and
 * __metadata__ {"format": "daed-ckpt-1", "config": architecture JSON, "recipe": effective
 * recipe, "state": trainer state JSON (epoch, step, attempt, RNG state, running sums,
 * best PSNR, collapse window)}. Resuming from one continues bit-for-bit like the
 * uninterrupted run (same recipe, data, thread count and precision: recipe field precision
 * is not checked on resume, so a run may go on in the other one, no longer bit for bit).
 *
 * Collapse trap (PROTOCOL §3.5): with collapse checking on (auto: models with a
 * convolutional decoder), check_step steps after the end of the attempt's warm-up
 * (0 = one epoch; with no warm-up that is the end of epoch 1) the mean reconstruction MSE of
 * the last `window` steps is compared with factor * E[target^2]; above it, the attempt is
 * discarded and the next one starts with seed + 7919*attempt and a learning-rate warm-up of
 * collapse.restart_warmup more steps (a warm-up is what keeps Adam's first steps from
 * driving the sigmoid into saturation). The last attempt runs unchecked.
 * Restarts are logged and stored in the model's "training" metadata.
 */
#ifndef DAED_TRAINER_H
#define DAED_TRAINER_H

#include <signal.h>
#include <stdio.h>

#include "daed/io/dataset.h"
#include "daed/core/error.h"
#include "daed/train/loss.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/io/photo.h"
#include "daed/train/recipe.h"
#include "daed/train/scorefit.h"

#define DAE_TRAINER_VERSION "dae-train 0.1"

/* Accept m's encoder for the exact contractive penalty only if it is
 * [flatten,] linear, sigmoid|tanh; otherwise DAE_EINVAL with a message naming the encoder
 * layers found. Fills c (may be NULL). */
int dae_contractive_check(const dae_model *m, dae_contractive *c, dae_error *err);

typedef struct dae_train_options {
    FILE *log;                        /* per-epoch lines and events; NULL = silent */
    int progress_bar;                 /* redraw a \r progress line on stderr */
    volatile sig_atomic_t *stop;      /* set (e.g. by SIGINT): checkpoint after this step */
    long long stop_at_step;           /* > 0: behave as if stopped after this global step */
    int snapshot;                     /* write the model file from the resumed state
                                       * as it is, without training (needs a resume) */
} dae_train_options;

typedef enum {
    DAE_TRAIN_DONE,        /* all epochs ran */
    DAE_TRAIN_EARLY_STOP,  /* validation PSNR stopped improving (best weights restored) */
    DAE_TRAIN_INTERRUPTED  /* stopped on request; a checkpoint holds the state */
} dae_train_status;

typedef struct dae_train_stats {
    int epochs_done;           /* completed epochs of the current attempt */
    long long steps;           /* optimizer steps of the current attempt */
    int attempt;               /* 0-based; = collapse restarts so far */
    double train_loss;         /* mean objective of the last completed epoch */
    double val_loss;           /* reconstruction loss on the validation set, last epoch */
    double val_psnr;           /* mean per-image PSNR (dB) on the validation set */
    double best_val_psnr;
    double seconds;            /* wall time of training so far in this process */
    double target_sq;          /* E[target^2] over the training set (collapse reference) */
    dae_train_status status;
} dae_train_stats;

typedef struct dae_trainer dae_trainer;

/* A trainer for recipe r on in-memory data. r, train and val are borrowed and must outlive
 * the trainer. Builds the model from r->model_json (initialised from the seed), checks
 * the data and corruption shapes against it and sizes every buffer. */
dae_trainer *dae_trainer_create(const dae_recipe *r, const dae_dataset *train,
                                const dae_dataset *val, dae_error *err);
/* A trainer on photo patches (recipe patches.size > 0; see recipe.h): train (and val, or
 * NULL to cut the validation crops from the training photos) are borrowed and must outlive
 * the trainer; their channel count must be data.channels. */
dae_trainer *dae_trainer_create_photos(const dae_recipe *r, const dae_photoset *train,
                                       const dae_photoset *val, dae_error *err);
void dae_trainer_free(dae_trainer *t);

/* The model being trained (parameters change as training runs). */
const dae_model *dae_trainer_model(const dae_trainer *t);
const dae_train_stats *dae_trainer_stats(const dae_trainer *t);

/* Train until r->epochs are done, early stopping, or a stop request (o may be NULL).
 * A checkpoint is written to r->checkpoint after every epoch and on a stop request.
 * A NaN or infinite loss stops with DAE_EINVAL and a message naming the epoch and step. */
int dae_trainer_run(dae_trainer *t, const dae_train_options *o, dae_error *err);

int dae_trainer_save_checkpoint(dae_trainer *t, const char *path, dae_error *err);
/* Restore parameters, optimizer and loop state from a checkpoint of the same
 * architecture, batch size and data sizes. */
int dae_trainer_resume(dae_trainer *t, const char *path, dae_error *err);

/* Per-image reconstruction MSE (clip(out,0,1) vs the clean image, mean over its values) of
 * the clean validation images; quantiles p50 p90 p95 p99 p99.9; threshold = the
 * r->calib.threshold_q quantile. scores (may be NULL) receives val->n values. */
int dae_trainer_calibrate(dae_trainer *t, dae_calibration *c, double *scores, dae_error *err);

/* Write the model file: architecture + name, tasks, corruption, training facts and the
 * calibration c (may be NULL) in its config; or, with a fitted anomaly score fit (not
 * NULL; c is then ignored), its calibration and score.* tensors. Atomic. */
int dae_trainer_save_model(dae_trainer *t, const char *path, const dae_calibration *c,
                           const dae_score_fit *fit, dae_error *err);

/* The whole of dae-train: load the data the recipe names, create, resume from
 * resume_path if not NULL, run, calibrate and write r->output (unless interrupted).
 * *status (may be NULL) receives how training ended. */
int dae_train_main(const dae_recipe *r, const char *resume_path, const dae_train_options *o,
                   dae_train_status *status, dae_error *err);

#endif

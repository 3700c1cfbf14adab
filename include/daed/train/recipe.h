/* recipe.h — a dae-train recipe: one JSON file per model, overridable from the command line.
 *
 * Every scalar field is a row of one table (name, type, default, range, help), which drives
 * the parser, the `--key value` overrides and `dae-train --help`, so the three never
 * disagree. Nested fields use dotted names: {"optimizer": {"lr": 0.002}} is the field
 * "optimizer.lr", overridden by `--optimizer.lr 0.002` (or `--optimizer.lr=0.002`).
 * Two fields are JSON values checked by their own modules: "model" (the architecture, in the
 * model-file config form: "input", "encoder", "decoder", "residual", "noise_map"; see
 * modelfile.h) and "corruption" (a corruption set, see corrupt.h). Unknown fields are
 * errors (a typo must not silently train with a default); keys starting with "_" are
 * comments and ignored.
 *
 * Example:
 *   {"name": "fmnist-denoise", "output": "runs/fmnist-denoise.safetensors",
 *    "tasks": ["denoise", "score"], "epochs": 10, "seed": 1,
 *    "data": {"train": "fashion-mnist:train", "val": "fashion-mnist:test", "val_limit": 2000},
 *    "model": {"input": [1,28,28], "encoder": [...], "decoder": [...]},
 *    "corruption": [{"type": "gaussian", "sigma": 0.2}],
 *    "objective": {"loss": "mse"}, "optimizer": {"kind": "adam", "lr": 0.001}}
 */
#ifndef DAED_RECIPE_H
#define DAED_RECIPE_H

#include <stdint.h>
#include <stdio.h>

#include "daed/train/corrupt.h"
#include "daed/core/error.h"
#include "daed/train/loss.h"
#include "daed/train/optim.h"
#include "daed/train/photonoise.h"

#define DAE_RECIPE_PATH_MAX 1024
#define DAE_RECIPE_MAX_BYTES (4u << 20) /* a recipe file larger than this is refused */

typedef enum { DAE_TRI_AUTO = 0, DAE_TRI_ON = 1, DAE_TRI_OFF = 2 } dae_tristate;

/* patches.without_sigma: the map daed gives a noise-map model without ?sigma= */
typedef enum { DAE_WITHOUT_AUTO = 0, DAE_WITHOUT_BLIND = 1, DAE_WITHOUT_ESTIMATE = 2 } dae_without;

typedef struct dae_recipe {
    char name[64];                        /* model name; "" = the output file's stem */
    char output[DAE_RECIPE_PATH_MAX];     /* final model file */
    char checkpoint[DAE_RECIPE_PATH_MAX]; /* "" = <output>.ckpt, or runs/<file>.ckpt for an
                                           * output in a models/ folder */
    char init[DAE_RECIPE_PATH_MAX];       /* "" = fresh weights; else start from this model
                                             file's weights (same architecture): fine-tuning */
    int init_scheme;                      /* dae_init_scheme (model.h) of fresh weights */
    unsigned tasks;                       /* DAE_TASK_* bits (modelfile.h) */
    char tasks_json[256];                 /* the tasks as a JSON array, for the config */
    uint64_t seed;
    int epochs, batch_size, threads;
    dae_tristate progress;                /* progress bar: auto = when stderr is a tty */
    int precision;                        /* dae_precision (model.h) of the training
                                             steps: fp32, or bf16 on AMX (mixed) */

    struct {
        char train[DAE_RECIPE_PATH_MAX];  /* dataset name or path (dae_dataset_load) */
        char val[DAE_RECIPE_PATH_MAX];    /* "" = split off the training set */
        char dir[DAE_RECIPE_PATH_MAX];    /* data directory for named sets */
        int channels;
        int class_k;                      /* -1 = all classes; k = only class k (one-class) */
        int limit, val_limit;             /* use at most this many (0 = all) */
        int shift;                        /* augmentation: training images translated by up
                                             to this many pixels (zero fill); 0 = off */
        double val_fraction;              /* held-out fraction when val == "" */
        int val_count;                    /* held-out count (overrides fraction when > 0) */
        int color_space;                  /* dae_color_space (photo.h): what a 3-channel
                                             model sees; 0 = rgb */
        int per_channel;                  /* photo patches: colour photos (channels 3) in
                                             color_space, a 1-channel model trained on one
                                             random channel of each patch (the way daed
                                             runs a per_channel model) */
        int chroma_half;                  /* with per_channel in the opponent space: a
                                             chroma plane is taken from a crop twice the
                                             size and halved after the noise (2x2 means,
                                             core/halfres.h), as daed runs a chroma_half
                                             model (io/photo.h); Gaussian noise only */
    } data;

    /* Photo patches (patches.size > 0): data.train / data.val are folders of photos of any
     * size (photo.h); every step crops batch_size random size x size patches (area-weighted
     * photo choice, 8 rotations/flips with augment) and adds Gaussian noise of sigma drawn
     * per patch from U[sigma_min, sigma_max] on the 0-255 scale, rounded to 8-bit levels and
     * clipped when quantize (PHOTOS.md add_noise; a share between 0 and 1: that share of the
     * patches, drawn per patch, and no draw at 0 or 1). An epoch is per_epoch patches.
     * Validation: val_count fixed crops of the validation photos (data.val; "" = of the
     * training photos) with fixed noise at sigmas spread evenly over the range. The
     * "corruption" field is not used in this mode.
     * patches.noise (photonoise.h JSON form) replaces that Gaussian noise by a weighted set
     * of noise kinds (gaussian, camera, correlated, a jpeg step) drawn per patch; the
     * validation crops then draw theirs from the same set with their own fixed generator.
     * Absent or [] = the sigma range above, exactly as before.
     * A model with a noise-level map (model.h DAE_MODEL_NOISE_MAP) gets each patch's level/255
     * as its map, or DAE_NOISE_BLIND with probability blind (validation: every odd crop blind). */
    struct {
        int size, per_epoch, val_count;
        double sigma_min, sigma_max;      /* 0-255 scale */
        double quantize;                  /* share of patches rounded to 8 bits and clipped
                                             (recipe true = 1, false = 0) */
        int augment;
        double blind;                     /* noise-map models: P(map = DAE_NOISE_BLIND) */
        int without_sigma;                /* dae_without: daed's map without ?sigma= */
        dae_photonoise_set noise;         /* n 0: none (sigma_min..sigma_max Gaussian) */
        char *noise_json;                 /* owned: its JSON text, NULL when none */
    } patches;

    char *model_json;                     /* owned: the "model" object as JSON text */
    dae_corruption_set corruption;
    char *corruption_json;                /* owned: the "corruption" value as JSON text */
    int noise2noise;                      /* target = an independent corruption */
    dae_corruption_set target_corruption; /* noise2noise target's set (n 0: corruption's) */
    char *target_corruption_json;         /* owned: its JSON text */

    struct {
        dae_loss_kind loss;
        float sparse;                     /* lambda of lambda*|z|_1 */
        float contractive;                /* lambda of lambda*||dz/dx||_F^2 */
    } objective;

    dae_optim_params optim;
    double lr, clip_norm;                 /* clip_norm 0 = off */

    struct {
        dae_sched_kind kind;
        long long warmup_steps;
        double step_epochs;               /* step schedule: decay every this many epochs */
        double gamma, min_lr;
    } schedule;

    struct {
        int patience;                     /* epochs without val PSNR gain; 0 = off */
        double min_delta;                 /* dB that count as a gain */
    } early_stop;

    struct {
        dae_tristate check;               /* auto = models with a convolutional decoder */
        int max_attempts;                 /* the last attempt runs without the check */
        int window;                       /* steps averaged at the check */
        double factor;                    /* collapsed if loss > factor * E[target^2] */
        int check_step;                   /* steps after warm-up; 0 = one epoch (PROTOCOL 3.5) */
        long long restart_warmup;         /* warm-up steps added on a restart */
    } collapse;

    struct {
        double threshold_q;               /* quantile used as the anomaly threshold */
        char score[64];                   /* anomaly score spec (score.h), "mse" = plain */
        int bank_max;                     /* kNN banks keep at most this many images */
    } calib;

    char *json;                           /* owned: the effective recipe (overrides applied) */
} dae_recipe;

/* Parse recipe JSON text (what names it in messages), then apply overrides: n_args
 * strings "--key value" or "--key=value" (args is argv-like, without the recipe path).
 * Returns NULL with a message naming the field, the bad value and what is expected. */
dae_recipe *dae_recipe_parse(const char *json, size_t len, const char *what, int n_args,
                             char *const *args, dae_error *err);
/* Read the file at path (capped at DAE_RECIPE_MAX_BYTES) and parse it as above. */
dae_recipe *dae_recipe_load(const char *path, int n_args, char *const *args, dae_error *err);
void dae_recipe_free(dae_recipe *r);

/* Whether "--key" (without the dashes, before any '=') names a recipe field. */
int dae_recipe_has_key(const char *key);

/* Every field with its type, default and meaning, one per line. */
void dae_recipe_print_help(FILE *f);

#endif

/* modelfile.h — daed model files: safetensors with the architecture in __metadata__.
 *
 * A model file is a safetensors file (see safetensors.h) whose tensors are the model's
 * parameters under PyTorch state_dict names and layouts (F32, little-endian), and whose
 * __metadata__ holds
 *     "format": "daed-1"
 *     "config": a JSON *string* describing the model (docs/model-format.md is the spec):
 *        { "name": "fmnist-denoise",                   optional; else the file's stem
 *          "tasks": ["denoise", "score", ...],        denoise inpaint superres encode score
 *                                                      (optional, default ["denoise"])
 *          "input": [C,H,W], "output": [C,H,W],       nominal shapes (output optional,
 *                                                      checked against the layers)
 *          "residual": false,                          output = input - net(input)
 *          "noise_map": false,                         input = image + a noise-level map
 *                                                      plane (model.h; written if true)
 *          "encoder": [ {"type":"conv2d","in_channels":1,"out_channels":32,"kernel_size":3,
 *                        "stride":1,"padding":1}, {"type":"relu"}, ... ],
 *          "decoder": [ ... ],
 *          "corruption": {...}, "training": {...},    free-form facts from the trainer
 *          "calibration": {"score":"mse","quantiles":{"p50":..,"p90":..,"p95":..,"p99":..,
 *                          "p99.9":..},"threshold":..},
 *          "quality": {...} }
 * The calibration's "score" names the anomaly score (score.h): "mse", or terms joined by
 * '+' ("bmse1+knn1b1"). A score other than plain recon terms carries "terms", one object
 * per term in the same order, with its normalisation and, for knn terms, the tensor that
 * holds its bank:
 *     "terms": [{"kind":"recon","blur":1,"top":0,"mean":..,"std":..,"weight":1},
 *               {"kind":"knn","k":1,"blur":1,"mean":..,"std":..,"weight":1,
 *                "tensor":"score.knn1"}]
 * Without "terms" the score string alone defines the spec (mean 0, std 1, weight 1), which
 * only recon terms allow. A knn tensor is F32 [N, C*H*W] (N >= k, the input's C*H*W) and
 * named "score.<something>"; the file holds exactly the score tensors its terms declare.
 * Layer types and their fields use PyTorch's constructor names: linear (in_features,
 * out_features), conv2d / conv_transpose2d (in_channels, out_channels, kernel_size,
 * stride, padding, output_padding), relu, leaky_relu (negative_slope), tanh, sigmoid,
 * identity, upsample (scale_factor 2, mode "nearest"|"bilinear"), flatten,
 * unflatten (unflattened_size [C,H,W]), pixel_unshuffle (downscale_factor 2..4),
 * pixel_shuffle (upscale_factor 2..4), add (from: an earlier layer's index, encoder then
 * decoder layers counted from 0; adds that layer's output). Sizes may be an int or a square pair [n, n];
 * PyTorch-default-only fields (bias true, dilation 1, groups 1, align_corners false,
 * start_dim 1, end_dim -1, dim 1) are accepted at that value. Unknown layer fields are
 * refused; unknown top-level config keys are kept (the trainer adds its own).
 *
 * Every parameter the architecture has must be present under its name ("encoder.0.weight")
 * as F32 with exactly its PyTorch shape and finite values; so must every score tensor the
 * calibration declares; any other tensor is refused.
 *
 * Loading treats the file as hostile; every failure message names the file, the tensor or
 * field, and what is wrong ("fmnist.safetensors: tensor encoder.0.weight: shape [32,1,5,5],
 * expected [32,1,3,3]"). Saving is atomic (temporary file, fsync, rename).
 */
#ifndef DAED_MODELFILE_H
#define DAED_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#include "daed/core/error.h"
#include "daed/core/model.h"
#include "daed/io/safetensors.h" /* dae_file_map */
#include "daed/core/score.h"

enum {
    DAE_TASK_DENOISE = 1u << 0,
    DAE_TASK_INPAINT = 1u << 1,
    DAE_TASK_SUPERRES = 1u << 2,
    DAE_TASK_ENCODE = 1u << 3, /* encode, decode, interpolate */
    DAE_TASK_SCORE = 1u << 4
};

/* Parse "denoise" etc.; 0 if unknown. */
unsigned dae_task_from_name(const char *name);
/* Name of one DAE_TASK_* bit (static string); NULL unless exactly one known bit. */
const char *dae_task_name(unsigned task_bit);

#define DAE_CALIB_MAX 16
typedef struct dae_calibration {
    int n;                   /* number of quantiles, 0 = not calibrated */
    double level[DAE_CALIB_MAX]; /* ascending, e.g. 0.5 0.9 0.95 0.99 0.999 */
    double value[DAE_CALIB_MAX]; /* score at that level on the validation split */
    double threshold;        /* default anomaly threshold ("threshold", else p99, else the
                                highest quantile; 0 when not calibrated) */
    char score[32];          /* what the score is, e.g. "mse" */
} dae_calibration;

#define DAE_SCORE_TENSOR_NAME_MAX 64
/* A score tensor: F32 values, row-major. */
typedef struct dae_score_tensor {
    char name[DAE_SCORE_TENSOR_NAME_MAX]; /* "score.knn1" */
    int ndim;
    int64_t shape[2];
    float *data;             /* owned by the model file */
    size_t n;                /* values */
} dae_score_tensor;

typedef struct dae_modelfile {
    dae_model *model;        /* owned */
    char name[64];           /* config "name", else the file's stem */
    unsigned tasks;          /* DAE_TASK_* bits */
    dae_calibration calib;
    dae_score_spec score;    /* the calibration's score; knn banks point into score_tensors
                                (dae_scorer_create(mf->model, &mf->score) scores with it) */
    int n_score_tensors;
    dae_score_tensor *score_tensors; /* owned, in the order of the terms declaring them */
    char *config_json;       /* the config string as stored, owned */
    char *metadata_json;     /* the whole __metadata__ object as JSON text, owned */
    size_t file_bytes;
    int params_f16;          /* every parameter tensor was stored as F16 (dae_modelfile_save_f16):
                                what is derived from it is saved the same way (model_edit.h) */
    unsigned char *buf;      /* owned: the file's bytes when model->params point into them
                                (dae_modelfile_load of a file whose parameters are stored
                                contiguously in the model's order, as dae-train writes them:
                                no copy, half the memory touched while loading); else NULL */
    size_t buf_len;
    int buf_mapped;          /* buf is a read-only mapping of the file (limits.map) */
} dae_modelfile;

typedef struct dae_modelfile_limits {
    size_t max_file_bytes;   /* default 256 MiB */
    size_t max_header_bytes; /* default 1 MiB */
    int max_layers;          /* per list, default 256 */
    dae_file_map map;        /* dae_modelfile_load: map the file or copy it (safetensors.h);
                                default DAE_FILE_MAP_AUTO (map on read-only filesystems) */
} dae_modelfile_limits;

dae_modelfile_limits dae_modelfile_default_limits(void);

/* Load and validate a model file (lim may be NULL for defaults). NULL on failure, with a
 * message starting "<path>: ". The result owns everything; free with dae_modelfile_free. */
dae_modelfile *dae_modelfile_load(const char *path, const dae_modelfile_limits *lim,
                                  dae_error *err);
/* Same, from bytes in memory (used by the fuzzer and tests); `what` names it in messages. */
dae_modelfile *dae_modelfile_parse(const unsigned char *buf, size_t len, const char *what,
                                   const dae_modelfile_limits *lim, dae_error *err);
void dae_modelfile_free(dae_modelfile *mf);

/* A copy (malloc'd, caller frees) of the string value of metadata key `key` (e.g.
 * "license": a notice that must go with the weights and with anything made from them), or
 * NULL when absent, not a string, or out of memory. */
char *dae_modelfile_meta(const dae_modelfile *mf, const char *key);

/* Build the architecture described by a config JSON text (parameters zeroed; caller frees
 * with dae_model_free). Checks "output" against what the layers produce. */
dae_model *dae_model_from_config(const char *config_json, dae_error *err);

/* The architecture of m as config JSON members: returns a malloc'd JSON object text with
 * "input", "output", "residual", "encoder", "decoder". The trainer merges its own fields. */
char *dae_model_arch_json(const dae_model *m);

/* Write m's parameters and metadata {"format":"daed-1","config":config_json} atomically.
 * config_json must describe m's architecture (it is re-parsed and checked against m).
 * extra_meta: NULL or NULL-terminated key,value pairs added to __metadata__ ("format" and
 * "config" are refused there). Tensors are written in layer order, weight then bias. */
int dae_modelfile_save(const char *path, const dae_model *m, const char *config_json,
                       const char *const *extra_meta, dae_error *err);

/* The same with the parameters stored as IEEE binary16 ("F16"): half the bytes; the loader
 * converts them back to float (exactly: each value is the F16 one), so the model computes
 * with weights rounded to 11 significant bits. PyTorch loads the file as float16. */
int dae_modelfile_save_f16(const char *path, const dae_model *m, const char *config_json,
                           const char *const *extra_meta, dae_error *err);

/* The same, plus score tensors (each "score.*", F32): the config's calibration must
 * declare exactly these, with these shapes (checked as the loader does). n_score may be 0. */
int dae_modelfile_save_scored(const char *path, const dae_model *m, const char *config_json,
                              const char *const *extra_meta, const dae_score_tensor *score,
                              int n_score, dae_error *err);

/* A copy of config_json whose "calibration" describes score `spec` with calibration c:
 * "score" (the spec's name), "terms" (when the spec is not plain recon terms with mean 0,
 * std 1, weight 1; knn term i names the i-th of `tensors` in knn order), "quantiles" and
 * "threshold" from c. Other keys of the old calibration are kept. malloc'd text, NULL +
 * message on failure (bad config, spec name longer than the calibration's score field,
 * fewer tensors than knn terms). */
char *dae_config_set_score(const char *config_json, const dae_calibration *c,
                           const dae_score_spec *spec, const dae_score_tensor *tensors,
                           int n_tensors, dae_error *err);

/* A scorer for the model file's score (borrows mf; free it before mf). */
dae_scorer *dae_modelfile_scorer(const dae_modelfile *mf, dae_error *err);

/* Where a score falls in the calibrated distribution, in [0,100] (linear between
 * quantiles; below p50 scaled from 0). -1 if not calibrated. */
double dae_calibration_percentile(const dae_calibration *c, double score);

#endif

/* recipe.c — recipe files for dae-train: one field table drives parsing, overrides and help. */
#include "daed/train/recipe.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/modelfile.h"
#include "daed/io/photo.h"

typedef enum {
    T_INT,    /* int */
    T_LL,     /* long long */
    T_U64,    /* uint64_t */
    T_DOUBLE, /* double */
    T_FLOAT,  /* float */
    T_STR,    /* char[size] */
    T_ENUM,   /* int-sized enum, one of names[] */
    T_BOOL,   /* int 0/1 */
    T_SHARE,  /* double in [0,1]; JSON true/false are 1/0 */
    T_TASKS,  /* unsigned task bits + tasks_json */
    T_MODEL,  /* JSON object -> model_json */
    T_CORRUPT, /* JSON array/object or a PROTOCOL task name -> a dae_corruption_set at off
                * and its JSON text (char *) at offset size */
    T_PNOISE   /* JSON array -> a dae_photonoise_set at off and its JSON text (char *, NULL
                * for []) at offset size */
} ftype;

typedef struct field {
    const char *key;
    ftype type;
    size_t off, size;
    const char *def; /* default, in override syntax (also what --help shows) */
    double min, max;
    const char *const *names;
    const char *help;
} field;

_Static_assert(DAE_COLOR_RGB == 0 && DAE_COLOR_OPPONENT == 1, "color_names order");
_Static_assert(DAE_PREC_FP32 == 0 && DAE_PREC_BF16 == 1, "prec_names order");
_Static_assert(DAE_WITHOUT_AUTO == 0 && DAE_WITHOUT_BLIND == 1 && DAE_WITHOUT_ESTIMATE == 2,
               "without_names order");
_Static_assert(sizeof(dae_loss_kind) == sizeof(int) && sizeof(dae_opt_kind) == sizeof(int) &&
                   sizeof(dae_sched_kind) == sizeof(int) && sizeof(dae_tristate) == sizeof(int) &&
                   sizeof(dae_without) == sizeof(int),
               "enum fields are stored as int");

static const char *const tri_names[] = {"auto", "on", "off", NULL};
static const char *const loss_names[] = {"mse", "bce", NULL};
static const char *const opt_names[] = {"adam", "adamw", "sgd", NULL};
static const char *const init_names[] = {"pytorch", "he", NULL};
static const char *const sched_names[] = {"constant", "step", "cosine", NULL};
static const char *const color_names[] = {"rgb", "opponent", NULL}; /* = dae_color_space */
static const char *const prec_names[] = {"fp32", "bf16", NULL}; /* = dae_precision */
static const char *const without_names[] = {"auto", "blind", "estimate", NULL}; /* = dae_without */

#define R(f) offsetof(dae_recipe, f)
#define S(f) sizeof(((dae_recipe *)0)->f)
#define BIG 1e300

static const char default_model[] =
    "{\"input\":[1,28,28],\"encoder\":[{\"type\":\"flatten\"},"
    "{\"type\":\"linear\",\"in_features\":784,\"out_features\":512},{\"type\":\"relu\"},"
    "{\"type\":\"linear\",\"in_features\":512,\"out_features\":128},{\"type\":\"relu\"}],"
    "\"decoder\":[{\"type\":\"linear\",\"in_features\":128,\"out_features\":512},"
    "{\"type\":\"relu\"},{\"type\":\"linear\",\"in_features\":512,\"out_features\":784},"
    "{\"type\":\"sigmoid\"},{\"type\":\"unflatten\",\"unflattened_size\":[1,28,28]}]}";

static const field fields[] = {
    {"name", T_STR, R(name), S(name), "", 0, 0, NULL, "model name (\"\" = output file stem)"},
    {"output", T_STR, R(output), S(output), "model.safetensors", 0, 0, NULL,
     "model file written after training (the shipped recipes say runs/NAME.safetensors: "
     "--output models/NAME.safetensors replaces a served model on purpose)"},
    {"checkpoint", T_STR, R(checkpoint), S(checkpoint), "", 0, 0, NULL,
     "checkpoint file, rewritten every epoch (\"\" = <output>.ckpt; runs/<file>.ckpt for an "
     "output in a models/ folder)"},
    {"init", T_STR, R(init), S(init), "", 0, 0, NULL,
     "start from this model file's weights instead of a fresh initialisation (fine-tuning; "
     "the architecture must match; the optimizer starts fresh)"},
    {"init_scheme", T_ENUM, R(init_scheme), 0, "pytorch", 0, 0, init_names,
     "fresh weights: pytorch (PyTorch's default) or he (variance 2/fan_in, biases 0: deep "
     "ReLU stacks such as photo-ffd's 15 convolutions need it to learn)"},
    {"tasks", T_TASKS, R(tasks), 0, "denoise,score", 0, 0, NULL,
     "tasks the model serves: denoise inpaint superres encode score"},
    {"seed", T_U64, R(seed), 0, "1", 0, 9007199254740992.0, NULL,
     "seed of initialisation, shuffling and corruptions"},
    {"epochs", T_INT, R(epochs), 0, "10", 1, 1000000, NULL, "passes over the training set"},
    {"batch_size", T_INT, R(batch_size), 0, "128", 1, 65536, NULL, "minibatch size"},
    {"threads", T_INT, R(threads), 0, "2", 1, 16, NULL,
     "compute threads: each batch is split across them (OpenBLAS single-threaded)"},
    {"progress", T_ENUM, R(progress), 0, "auto", 0, 0, tri_names,
     "progress bar (auto = when stderr is a terminal)"},
    {"precision", T_ENUM, R(precision), 0, "fp32", 0, 0, prec_names,
     "arithmetic of the training steps: fp32, or bf16 = mixed precision: the forward, "
     "input and weight gradients of 3x3 'same' convolutions of 8+ channels on AMX-BF16 "
     "tiles (bf16 operands, fp32 sums; master weights, loss, optimizer and validation stay "
     "fp32), 2.2-2.4x the patches/s of the photo recipes; fp32 on a CPU without AMX (the "
     "log says so). A run-time choice: a checkpoint resumes in either (docs/photos.md)"},

    {"data.train", T_STR, R(data.train), S(data.train), "fashion-mnist:train", 0, 0, NULL,
     "training set: fashion-mnist:train|test, mnist:train|test, a PNG folder, or IDX "
     "images[,labels]"},
    {"data.val", T_STR, R(data.val), S(data.val), "", 0, 0, NULL,
     "validation set, same forms (\"\" = hold out part of the training set)"},
    {"data.dir", T_STR, R(data.dir), S(data.dir), "data", 0, 0, NULL,
     "directory of the named sets (scripts/get-data.sh)"},
    {"data.channels", T_INT, R(data.channels), 0, "1", 1, 3, NULL,
     "channels for PNG folders (1 or 3)"},
    {"data.class", T_INT, R(data.class_k), 0, "-1", -1, 1000000, NULL,
     "train on one class only (one-class anomaly model); -1 = all"},
    {"data.shift", T_INT, R(data.shift), 0, "0", 0, 8, NULL,
     "augmentation: translate each training image by a random offset of up to this many "
     "pixels in x and y (zero fill; for images on a black background); 0 = off"},
    {"data.limit", T_INT, R(data.limit), 0, "0", 0, 2147483647.0, NULL,
     "use only the first N training images (0 = all)"},
    {"data.val_limit", T_INT, R(data.val_limit), 0, "0", 0, 2147483647.0, NULL,
     "use only the first N validation images (0 = all)"},
    {"data.val_fraction", T_DOUBLE, R(data.val_fraction), 0, "0.1", 0, 0.9, NULL,
     "held-out fraction when data.val is empty"},
    {"data.val_count", T_INT, R(data.val_count), 0, "0", 0, 2147483647.0, NULL,
     "held-out count when data.val is empty (overrides the fraction if > 0)"},
    {"data.color_space", T_ENUM, R(data.color_space), 0, "rgb", 0, 0, color_names,
     "colour space a 3-channel photo model works in: rgb or opponent (photo.h)"},
    {"data.per_channel", T_BOOL, R(data.per_channel), 0, "false", 0, 0, NULL,
     "photo patches: a 1-channel model learns from one random channel (in "
     "data.color_space) of each colour patch, and is served per channel"},
    {"data.chroma_half", T_BOOL, R(data.chroma_half), 0, "false", 0, 0, NULL,
     "with data.per_channel in the opponent space: the chroma planes at half size (a crop "
     "twice the patch, halved after the noise), as daed serves a chroma_half model"},

    {"patches.size", T_INT, R(patches.size), 0, "0", 0, 1024, NULL,
     "photo patches: side of the random crops (0 = off: equal-size image datasets); "
     "data.train/data.val are then folders of PNG/JPEG photos of any size"},
    {"patches.per_epoch", T_INT, R(patches.per_epoch), 0, "65536", 1, 2147483647.0, NULL,
     "photo patches per epoch"},
    {"patches.sigma_min", T_DOUBLE, R(patches.sigma_min), 0, "0", 0, 255, NULL,
     "lowest noise sigma on the 0-255 scale (drawn per patch, uniform)"},
    {"patches.sigma_max", T_DOUBLE, R(patches.sigma_max), 0, "55", 0, 255, NULL,
     "highest noise sigma on the 0-255 scale"},
    {"patches.quantize", T_SHARE, R(patches.quantize), 0, "true", 0, 1, NULL,
     "round the noisy patch to 8-bit levels and clip to [0,1] (PHOTOS.md add_noise): true, "
     "false, or the share of patches drawn so (0..1: an 8-bit file's clipped noise and the "
     "published tables' unclipped noise in one model)"},
    {"patches.augment", T_BOOL, R(patches.augment), 0, "true", 0, 0, NULL,
     "random rotation by multiples of 90 degrees and flips of each patch"},
    {"patches.blind", T_DOUBLE, R(patches.blind), 0, "0.5", 0, 1, NULL,
     "models with a noise-level map (model noise_map): probability that a training patch's "
     "map says \"unknown\" (DAE_NOISE_BLIND) instead of its sigma/255; every other "
     "validation crop is blind"},
    {"patches.without_sigma", T_ENUM, R(patches.without_sigma), 0, "auto", 0, 0, without_names,
     "noise-map models: what daed gives the map of a request without ?sigma=, written into "
     "the model file (photo.h): blind (-1; such a model is left out of the routing by the "
     "estimated level, route.h), estimate (the level estimated in the image), or auto = "
     "blind when patches.blind is 1, else estimate"},
    {"patches.noise", T_PNOISE, R(patches.noise), R(patches.noise_json), "[]", 0, 0, NULL,
     "photo patches: noise set drawn per patch instead of the sigma range (photonoise.h: "
     "gaussian, camera, correlated, jpeg), e.g. [{\"type\":\"camera\"},{\"type\":\"jpeg\","
     "\"p\":0.3,\"quality\":[60,95]}]; [] = Gaussian of sigma_min..sigma_max"},
    {"patches.val_count", T_INT, R(patches.val_count), 0, "512", 1, 1000000, NULL,
     "fixed validation crops (of data.val's photos, or of the training photos when it is "
     "empty) with fixed noise at sigmas spread over the range (with patches.noise: drawn "
     "from that set by a fixed generator)"},

    {"model", T_MODEL, 0, 0, default_model, 0, 0, NULL,
     "architecture (model-file config form: input, encoder, decoder, residual, noise_map); "
     "default: the PROTOCOL MLP 784-512-128-512-784"},
    {"corruption", T_CORRUPT, R(corruption), R(corruption_json),
     "[{\"type\":\"gaussian\",\"sigma\":0.2}]", 0, 0, NULL,
     "corruption set (corrupt.h JSON form) or a PROTOCOL task name (denoise-g20, sr2, ...)"},
    {"noise2noise", T_BOOL, R(noise2noise), 0, "false", 0, 0, NULL,
     "target = an independently corrupted copy instead of the clean image"},
    {"target_corruption", T_CORRUPT, R(target_corruption), R(target_corruption_json), "[]", 0,
     0, NULL,
     "noise2noise: the target copy's corruption set ([] = the same as corruption); e.g. "
     "[{\"type\":\"gaussian\",\"sigma\":0.5,\"clip\":false}] for zero-mean targets"},

    {"objective.loss", T_ENUM, R(objective.loss), 0, "mse", 0, 0, loss_names,
     "reconstruction loss: mse, or bce (on sigmoid outputs)"},
    {"objective.sparse", T_FLOAT, R(objective.sparse), 0, "0", 0, 1e6, NULL,
     "lambda of the sparse-code penalty lambda*|z|_1 (mean over the batch)"},
    {"objective.contractive", T_FLOAT, R(objective.contractive), 0, "0", 0, 1e6, NULL,
     "lambda of the contractive penalty lambda*||dz/dx||_F^2 (linear+sigmoid|tanh "
     "encoders only; extra O(hidden*input) per batch)"},

    {"optimizer.kind", T_ENUM, R(optim.kind), 0, "adam", 0, 0, opt_names,
     "adam, adamw (decoupled weight decay) or sgd (with momentum)"},
    {"optimizer.lr", T_DOUBLE, R(lr), 0, "0.001", 1e-12, 100, NULL, "base learning rate"},
    {"optimizer.beta1", T_FLOAT, R(optim.beta1), 0, "0.9", 0, 0.999999, NULL, "Adam beta1"},
    {"optimizer.beta2", T_FLOAT, R(optim.beta2), 0, "0.999", 0, 0.99999999, NULL,
     "Adam beta2"},
    {"optimizer.eps", T_FLOAT, R(optim.eps), 0, "1e-08", 1e-30, 1, NULL, "Adam epsilon"},
    {"optimizer.momentum", T_FLOAT, R(optim.momentum), 0, "0.9", 0, 0.999999, NULL,
     "SGD momentum"},
    {"optimizer.weight_decay", T_FLOAT, R(optim.weight_decay), 0, "0", 0, 10, NULL,
     "weight decay (L2 for adam/sgd, decoupled for adamw)"},
    {"optimizer.clip_norm", T_DOUBLE, R(clip_norm), 0, "0", 0, BIG, NULL,
     "clip the gradient's L2 norm to this (0 = off)"},

    {"schedule.kind", T_ENUM, R(schedule.kind), 0, "constant", 0, 0, sched_names,
     "learning-rate schedule: constant, step or cosine"},
    {"schedule.warmup_steps", T_LL, R(schedule.warmup_steps), 0, "0", 0, 1e15, NULL,
     "linear warm-up steps"},
    {"schedule.step_epochs", T_DOUBLE, R(schedule.step_epochs), 0, "1", 1e-6, 1e9, NULL,
     "step schedule: multiply by gamma every this many epochs"},
    {"schedule.gamma", T_DOUBLE, R(schedule.gamma), 0, "0.1", 0, 1, NULL,
     "step schedule decay factor"},
    {"schedule.min_lr", T_DOUBLE, R(schedule.min_lr), 0, "0", 0, 100, NULL,
     "cosine schedule floor"},

    {"early_stopping.patience", T_INT, R(early_stop.patience), 0, "0", 0, 1000000, NULL,
     "stop after this many epochs without a validation PSNR gain (0 = off)"},
    {"early_stopping.min_delta", T_DOUBLE, R(early_stop.min_delta), 0, "0", 0, 100, NULL,
     "PSNR gain (dB) that counts as an improvement"},

    {"collapse.check", T_ENUM, R(collapse.check), 0, "auto", 0, 0, tri_names,
     "detect an all-black collapse and restart (auto = convolutional decoders)"},
    {"collapse.max_attempts", T_INT, R(collapse.max_attempts), 0, "10", 1, 1000, NULL,
     "attempts in all; the last one runs without the check"},
    {"collapse.window", T_INT, R(collapse.window), 0, "10", 1, 1000000, NULL,
     "steps whose mean loss is checked"},
    {"collapse.factor", T_DOUBLE, R(collapse.factor), 0, "0.9", 0, 10, NULL,
     "collapsed if that mean loss > factor * E[target^2]"},
    {"collapse.check_step", T_INT, R(collapse.check_step), 0, "0", 0, 2147483647.0, NULL,
     "check this many steps after any warm-up (0 = one epoch, as PROTOCOL 3.5)"},
    {"collapse.restart_warmup", T_LL, R(collapse.restart_warmup), 0, "200", 0, 1e15, NULL,
     "learning-rate warm-up steps on a restarted attempt (new seed: seed + 7919*attempt)"},

    {"calibration.threshold", T_DOUBLE, R(calib.threshold_q), 0, "0.99", 0.5, 1, NULL,
     "quantile of validation scores used as the anomaly threshold"},
    {"calibration.score", T_STR, R(calib.score), S(calib.score), "mse", 0, 0, NULL,
     "anomaly score (docs/anomaly.md): mse, or terms such as bmse1@top100+knn1b1"},
    {"calibration.bank_max", T_INT, R(calib.bank_max), 0, "8192", 0, 2147483647.0, NULL,
     "kNN score terms keep at most this many training images in the model file (0 = all)"},
};
#define N_FIELDS ((int)(sizeof fields / sizeof fields[0]))

static const field *find_field(const char *key, size_t len)
{
    for (int i = 0; i < N_FIELDS; i++)
        if (strlen(fields[i].key) == len && memcmp(fields[i].key, key, len) == 0)
            return &fields[i];
    return NULL;
}

int dae_recipe_has_key(const char *key)
{
    const char *eq = strchr(key, '=');
    return find_field(key, eq ? (size_t)(eq - key) : strlen(key)) != NULL;
}

/* Is `path` (length len) a section, i.e. a prefix "path." of some field? */
static int is_section(const char *path, size_t len)
{
    for (int i = 0; i < N_FIELDS; i++)
        if (strncmp(fields[i].key, path, len) == 0 && fields[i].key[len] == '.')
            return 1;
    return 0;
}

static const char *type_word(const field *f)
{
    switch (f->type) {
    case T_INT:
    case T_LL:
    case T_U64: return "INT";
    case T_DOUBLE:
    case T_FLOAT: return "NUM";
    case T_STR: return "STR";
    case T_ENUM: return "WORD";
    case T_BOOL: return "BOOL";
    case T_SHARE: return "SHARE";
    case T_TASKS: return "LIST";
    default: return "JSON";
    }
}

/* ---- value conversion: cJSON item -> struct field ---- */

/* A numeric field (T_INT, T_LL, T_U64, T_DOUBLE, T_FLOAT) within its range into base. */
static int set_number(char *base, const field *f, const cJSON *v, dae_error *err)
{
    if (!cJSON_IsNumber(v))
        return dae_error_set(err, DAE_EINVAL, "%s: expected a number, got %s", f->key,
                             cJSON_IsString(v) ? v->valuestring : "a non-number");
    double d = v->valuedouble;
    int integral = f->type == T_INT || f->type == T_LL || f->type == T_U64;
    if (!isfinite(d) || d < f->min || d > f->max || (integral && d != floor(d))) {
        if (integral)
            return dae_error_set(err, DAE_EINVAL,
                                 "%s: expected an integer in [%.17g, %.17g], got %.17g",
                                 f->key, f->min, f->max, d);
        return dae_error_set(err, DAE_EINVAL,
                             "%s: expected a number in [%g, %g], got %.17g", f->key,
                             f->min, f->max, d);
    }
    if (f->type == T_INT)
        *(int *)(base + f->off) = (int)d;
    else if (f->type == T_LL)
        *(long long *)(base + f->off) = (long long)d;
    else if (f->type == T_U64)
        *(uint64_t *)(base + f->off) = (uint64_t)d;
    else if (f->type == T_DOUBLE)
        *(double *)(base + f->off) = d;
    else
        *(float *)(base + f->off) = (float)d;
    return DAE_OK;
}

/* "tasks": the list of task names into r->tasks (bits) and r->tasks_json (deduplicated). */
static int set_tasks(dae_recipe *r, const cJSON *v, dae_error *err)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return dae_error_set(err, DAE_EINVAL,
                             "tasks: expected a non-empty list of task names");
    unsigned bits = 0;
    size_t len = 0;
    r->tasks_json[len++] = '[';
    const cJSON *t;
    cJSON_ArrayForEach(t, v)
    {
        unsigned b = cJSON_IsString(t) ? dae_task_from_name(t->valuestring) : 0;
        if (!b)
            return dae_error_set(err, DAE_EINVAL,
                                 "tasks: unknown task %s (expected denoise, inpaint, "
                                 "superres, encode or score)",
                                 cJSON_IsString(t) ? t->valuestring : "(not a string)");
        if (bits & b)
            continue;
        bits |= b;
        len += (size_t)snprintf(r->tasks_json + len, sizeof r->tasks_json - len,
                                "%s\"%s\"", len > 1 ? "," : "", dae_task_name(b));
    }
    snprintf(r->tasks_json + len, sizeof r->tasks_json - len, "]");
    r->tasks = bits;
    return DAE_OK;
}

static int set_field(dae_recipe *r, const field *f, const cJSON *v, dae_error *err)
{
    char *base = (char *)r;
    switch (f->type) {
    case T_INT:
    case T_LL:
    case T_U64:
    case T_DOUBLE:
    case T_FLOAT:
        return set_number(base, f, v, err);
    case T_STR:
        if (!cJSON_IsString(v))
            return dae_error_set(err, DAE_EINVAL, "%s: expected a string", f->key);
        if (strlen(v->valuestring) >= f->size)
            return dae_error_set(err, DAE_ELIMIT, "%s: %zu characters, at most %zu", f->key,
                                 strlen(v->valuestring), f->size - 1);
        strcpy(base + f->off, v->valuestring);
        return DAE_OK;
    case T_ENUM: {
        if (cJSON_IsString(v))
            for (int i = 0; f->names[i]; i++)
                if (strcmp(v->valuestring, f->names[i]) == 0) {
                    *(int *)(base + f->off) = i;
                    return DAE_OK;
                }
        char list[128] = "";
        for (int i = 0; f->names[i]; i++) {
            strcat(list, i ? ", " : "");
            strcat(list, f->names[i]);
        }
        return dae_error_set(err, DAE_EINVAL, "%s: expected one of %s, got %s", f->key, list,
                             cJSON_IsString(v) ? v->valuestring : "a non-string");
    }
    case T_BOOL:
        if (!cJSON_IsBool(v))
            return dae_error_set(err, DAE_EINVAL, "%s: expected true or false", f->key);
        *(int *)(base + f->off) = cJSON_IsTrue(v);
        return DAE_OK;
    case T_SHARE:
        if (cJSON_IsBool(v)) {
            *(double *)(base + f->off) = cJSON_IsTrue(v) ? 1.0 : 0.0;
            return DAE_OK;
        }
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0 && v->valuedouble <= 1.0))
            return dae_error_set(err, DAE_EINVAL, "%s: expected true, false or a share in "
                                 "[0, 1]", f->key);
        *(double *)(base + f->off) = v->valuedouble;
        return DAE_OK;
    case T_TASKS:
        return set_tasks(r, v, err);
    case T_MODEL:
        if (!cJSON_IsObject(v))
            return dae_error_set(err, DAE_EINVAL,
                                 "model: expected an object with input, encoder, decoder");
        free(r->model_json);
        r->model_json = cJSON_PrintUnformatted(v);
        return r->model_json ? DAE_OK
                             : dae_error_set(err, DAE_ENOMEM, "model: out of memory");
    case T_CORRUPT: {
        dae_corruption_set *set = (dae_corruption_set *)((char *)r + f->off);
        char **json = (char **)((char *)r + f->size);
        int rc = cJSON_IsString(v) ? dae_corruption_set_task(v->valuestring, set, err)
                                   : dae_corruption_set_from_cjson(v, set, err);
        if (rc)
            return dae_error_prefix(err, "%s: ", f->key);
        free(*json);
        *json = dae_corruption_set_json(set);
        return *json ? DAE_OK : dae_error_set(err, DAE_ENOMEM, "%s: out of memory", f->key);
    }
    case T_PNOISE: {
        dae_photonoise_set *set = (dae_photonoise_set *)((char *)r + f->off);
        char **json = (char **)((char *)r + f->size);
        free(*json);
        *json = NULL;
        if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0) {
            memset(set, 0, sizeof *set);
            return DAE_OK;
        }
        if (dae_photonoise_set_from_cjson(v, set, err))
            return dae_error_prefix(err, "patches.");
        *json = dae_photonoise_set_json(set);
        return *json ? DAE_OK : dae_error_set(err, DAE_ENOMEM, "%s: out of memory", f->key);
    }
    }
    return dae_error_set(err, DAE_EINTERNAL, "%s: unknown field type", f->key);
}

/* ---- text (override or default) -> cJSON item of the field's type ---- */

static cJSON *number_from_string(const field *f, const char *s, dae_error *err)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE) {
        dae_error_set(err, DAE_EINVAL, "%s: expected a number, got \"%s\"", f->key, s);
        return NULL;
    }
    return cJSON_CreateNumber(d);
}

static cJSON *text_to_item(const field *f, const char *s, dae_error *err)
{
    switch (f->type) {
    case T_INT:
    case T_LL:
    case T_U64:
    case T_DOUBLE:
    case T_FLOAT: return number_from_string(f, s, err);
    case T_STR:
    case T_ENUM: return cJSON_CreateString(s);
    case T_BOOL:
        if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes"))
            return cJSON_CreateBool(1);
        if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no"))
            return cJSON_CreateBool(0);
        dae_error_set(err, DAE_EINVAL, "%s: expected true or false, got \"%s\"", f->key, s);
        return NULL;
    case T_SHARE:
        if (!strcmp(s, "true") || !strcmp(s, "false"))
            return cJSON_CreateBool(s[0] == 't');
        return number_from_string(f, s, err);
    case T_TASKS: {
        cJSON *a = cJSON_CreateArray();
        const char *p = s;
        while (a && *p) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            char word[64];
            if (n >= sizeof word)
                n = sizeof word - 1;
            memcpy(word, p, n);
            word[n] = '\0';
            if (n)
                cJSON_AddItemToArray(a, cJSON_CreateString(word));
            p += c ? (size_t)(c - p) + 1 : strlen(p);
        }
        return a;
    }
    case T_MODEL:
    case T_CORRUPT:
    case T_PNOISE: {
        cJSON *v = cJSON_Parse(s);
        if (!v && f->type == T_CORRUPT) /* a bare PROTOCOL task name */
            return cJSON_CreateString(s);
        if (!v)
            dae_error_set(err, DAE_EINVAL, "%s: expected JSON, got \"%.60s\"", f->key, s);
        return v;
    }
    }
    return NULL;
}

/* Put item at dotted path key in root, creating sections; replaces an existing value. */
static int tree_set(cJSON *root, const char *key, cJSON *item, dae_error *err)
{
    cJSON *obj = root;
    const char *p = key;
    for (const char *dot; (dot = strchr(p, '.')); p = dot + 1) {
        char part[64];
        size_t n = (size_t)(dot - p);
        if (n >= sizeof part)
            n = sizeof part - 1;
        memcpy(part, p, n);
        part[n] = '\0';
        cJSON *next = cJSON_GetObjectItemCaseSensitive(obj, part);
        if (!next) {
            next = cJSON_AddObjectToObject(obj, part);
        } else if (!cJSON_IsObject(next)) {
            cJSON_Delete(item);
            return dae_error_set(err, DAE_EINVAL, "%s: \"%s\" in the recipe is not an object",
                                 key, part);
        }
        obj = next;
    }
    if (!obj) {
        cJSON_Delete(item);
        return dae_error_set(err, DAE_ENOMEM, "%s: out of memory", key);
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, p))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, p, item);
    else
        cJSON_AddItemToObject(obj, p, item);
    return DAE_OK;
}

static const cJSON *tree_get(const cJSON *root, const char *key)
{
    const cJSON *obj = root;
    const char *p = key;
    for (const char *dot; obj && (dot = strchr(p, '.')); p = dot + 1) {
        char part[64];
        size_t n = (size_t)(dot - p);
        if (n >= sizeof part)
            n = sizeof part - 1;
        memcpy(part, p, n);
        part[n] = '\0';
        obj = cJSON_GetObjectItemCaseSensitive(obj, part);
    }
    return obj ? cJSON_GetObjectItemCaseSensitive(obj, p) : NULL;
}

/* Every key of the tree must be a field or a section; no duplicates. */
static int check_keys(const cJSON *obj, const char *prefix, dae_error *err)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, obj)
    {
        const char *k = c->string;
        if (k[0] == '_')
            continue;
        for (const cJSON *d = c->next; d; d = d->next)
            if (strcmp(d->string, k) == 0)
                return dae_error_set(err, DAE_EINVAL, "duplicate field \"%s%s\"", prefix, k);
        char path[160];
        snprintf(path, sizeof path, "%s%s", prefix, k);
        if (find_field(path, strlen(path)))
            continue;
        if (is_section(path, strlen(path))) {
            if (!cJSON_IsObject(c))
                return dae_error_set(err, DAE_EINVAL, "%s: expected an object", path);
            char sub[170];
            snprintf(sub, sizeof sub, "%s.", path);
            int rc = check_keys(c, sub, err);
            if (rc)
                return rc;
            continue;
        }
        /* name the known fields of this level so the typo is easy to fix */
        char known[400] = "";
        size_t len = 0, pl = strlen(prefix);
        for (int i = 0; i < N_FIELDS && len < sizeof known - 40; i++) {
            if (strncmp(fields[i].key, prefix, pl) != 0)
                continue;
            const char *rest = fields[i].key + pl;
            const char *dot = strchr(rest, '.');
            int n = dot ? (int)(dot - rest) : (int)strlen(rest);
            if (dot && i > 0 && strncmp(fields[i - 1].key, fields[i].key, pl + (size_t)n + 1) == 0)
                continue; /* section already listed */
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%.*s", len ? ", " : "",
                                    n, rest);
        }
        return dae_error_set(err, DAE_EINVAL, "unknown field \"%s\" (known%s%.*s: %s)", path,
                             pl ? " in " : "", pl ? (int)pl - 1 : 0, prefix, known);
    }
    return DAE_OK;
}

void dae_recipe_free(dae_recipe *r)
{
    if (!r)
        return;
    free(r->model_json);
    free(r->corruption_json);
    free(r->target_corruption_json);
    free(r->patches.noise_json);
    free(r->json);
    free(r);
}

static const char *stem_start(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The default checkpoint: <output>.ckpt, except for an output in a folder named models (the
 * folder daed serves, where the shipped models live): runs/<file>.ckpt, so a checkpoint never
 * sits among the model files. */
static int default_checkpoint(dae_recipe *r, dae_error *err)
{
    const char *file = stem_start(r->output);
    size_t dir_len = (size_t)(file - r->output);
    int in_models = (dir_len == 7 && !strncmp(r->output, "models/", 7)) ||
                    (dir_len >= 8 && !strncmp(file - 8, "/models/", 8));
    int n = in_models ? snprintf(r->checkpoint, sizeof r->checkpoint, "runs/%s.ckpt", file)
                      : snprintf(r->checkpoint, sizeof r->checkpoint, "%s.ckpt", r->output);
    if (n < 0 || (size_t)n >= sizeof r->checkpoint)
        return dae_error_set(err, DAE_ELIMIT, "output: path too long for its checkpoint");
    return DAE_OK;
}

/* The command-line overrides ("--key value" or "--key=value") written into the recipe's
 * tree root, each checked against its field. */
static int apply_overrides(cJSON *root, int n_args, char *const *args, dae_error *err)
{
    int rc = DAE_OK;
    for (int i = 0; i < n_args; i++) {
        const char *a = args[i];
        if (strncmp(a, "--", 2) != 0) {
            rc = dae_error_set(err, DAE_EINVAL, "unexpected argument \"%s\" (options are "
                                                "--key value; see --help)", a);
            return rc;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t kl = eq ? (size_t)(eq - a) : strlen(a);
        const field *f = find_field(a, kl);
        if (!f) {
            rc = dae_error_set(err, DAE_EINVAL, "unknown option --%.*s (see --help)", (int)kl,
                               a);
            return rc;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= n_args) {
                rc = dae_error_set(err, DAE_EINVAL, "option --%s needs a value", f->key);
                return rc;
            }
            val = args[++i];
        }
        cJSON *item = text_to_item(f, val, err);
        if (!item)
            return err ? err->code : DAE_EINVAL;
        if ((rc = tree_set(root, f->key, item, err)))
            return rc;
    }
    return DAE_OK;
}

/* The rules between fields, and the default checkpoint path. */
static int check_rules(dae_recipe *r, dae_error *err)
{
    int rc = DAE_OK;
    if (r->objective.contractive > 0 && r->objective.sparse > 0) {
        rc = dae_error_set(err, DAE_EINVAL,
                           "objective: use either sparse or contractive, not both");
        return rc;
    }
    if (r->patches.size > 0 && r->patches.sigma_min > r->patches.sigma_max) {
        rc = dae_error_set(err, DAE_EINVAL, "patches: sigma_min %g is above sigma_max %g",
                           r->patches.sigma_min, r->patches.sigma_max);
        return rc;
    }
    if (r->patches.noise.n > 0 && r->patches.size == 0) {
        rc = dae_error_set(err, DAE_EINVAL, "patches.noise: only used with photo patches "
                           "(patches.size > 0)");
        return rc;
    }
    if (r->data.color_space != DAE_COLOR_RGB && r->data.channels != 3) {
        rc = dae_error_set(err, DAE_EINVAL, "data.color_space: %s needs data.channels 3, got "
                           "%d", dae_color_space_name(r->data.color_space), r->data.channels);
        return rc;
    }
    if (r->data.per_channel && (r->patches.size == 0 || r->data.channels != 3)) {
        rc = dae_error_set(err, DAE_EINVAL, "data.per_channel: needs photo patches "
                           "(patches.size > 0) and data.channels 3");
        return rc;
    }
    if (r->data.chroma_half && !(r->data.per_channel &&
                                 r->data.color_space == DAE_COLOR_OPPONENT &&
                                 r->patches.noise.n == 0)) {
        rc = dae_error_set(err, DAE_EINVAL, "data.chroma_half: needs data.per_channel, "
                           "data.color_space \"opponent\" and Gaussian noise (no "
                           "patches.noise)");
        return rc;
    }
    if (r->patches.size == 0 && !r->data.val[0] && r->data.val_fraction == 0 &&
        r->data.val_count == 0) {
        rc = dae_error_set(err, DAE_EINVAL,
                           "data: no validation set (set data.val, data.val_fraction or "
                           "data.val_count)");
        return rc;
    }
    if (!r->output[0]) {
        rc = dae_error_set(err, DAE_EINVAL, "output: must not be empty");
        return rc;
    }
    if (!r->checkpoint[0])
        return default_checkpoint(r, err);
    return DAE_OK;
}

dae_recipe *dae_recipe_parse(const char *json, size_t len, const char *what, int n_args,
                             char *const *args, dae_error *err)
{
    dae_recipe *r = calloc(1, sizeof *r);
    cJSON *root = NULL;
    int rc = DAE_OK;
    if (!r) {
        dae_error_set(err, DAE_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        rc = dae_error_set(err, DAE_EFORMAT, "%s: invalid JSON near byte %zu", what, at);
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        rc = dae_error_set(err, DAE_EFORMAT, "%s: a recipe is a JSON object", what);
        goto fail;
    }
    if ((rc = check_keys(root, "", err)))
        goto fail_prefix;

    if ((rc = apply_overrides(root, n_args, args, err)))
        goto fail;

    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &fields[i];
        const cJSON *v = tree_get(root, f->key);
        cJSON *def = NULL;
        if (!v) {
            def = text_to_item(f, f->def, err);
            if (!def) {
                rc = dae_error_set(err, DAE_EINTERNAL, "%s: bad default", f->key);
                goto fail;
            }
            v = def;
        }
        rc = set_field(r, f, v, err);
        cJSON_Delete(def);
        if (rc)
            goto fail_prefix;
    }

    /* cross-field rules and derived defaults */
    if ((rc = check_rules(r, err)))
        goto fail_prefix;
    if (!r->name[0]) {
        const char *s = stem_start(r->output);
        size_t n = strcspn(s, ".");
        if (n >= sizeof r->name)
            n = sizeof r->name - 1;
        memcpy(r->name, s, n);
        r->name[n] = '\0';
    }
    r->json = cJSON_PrintUnformatted(root);
    if (!r->json) {
        rc = dae_error_set(err, DAE_ENOMEM, "%s: out of memory", what);
        goto fail;
    }
    cJSON_Delete(root);
    return r;

fail_prefix:
    dae_error_prefix(err, "%s: ", what);
fail:
    (void)rc;
    cJSON_Delete(root);
    dae_recipe_free(r);
    return NULL;
}

dae_recipe *dae_recipe_load(const char *path, int n_args, char *const *args, dae_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        dae_error_set(err, DAE_ENOTFOUND, "%s: cannot open recipe: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(DAE_RECIPE_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, DAE_RECIPE_MAX_BYTES + 1, f) : 0;
    int bad = buf ? ferror(f) : 1;
    fclose(f);
    dae_recipe *r = NULL;
    if (bad)
        dae_error_set(err, DAE_EIO, "%s: cannot read recipe", path);
    else if (n > DAE_RECIPE_MAX_BYTES)
        dae_error_set(err, DAE_ELIMIT, "%s: recipe larger than %u bytes", path,
                      DAE_RECIPE_MAX_BYTES);
    else
        r = dae_recipe_parse(buf, n, path, n_args, args, err);
    free(buf);
    return r;
}

void dae_recipe_print_help(FILE *f)
{
    for (int i = 0; i < N_FIELDS; i++) {
        const field *x = &fields[i];
        fprintf(f, "  --%-26s %-4s %s\n", x->key, type_word(x), x->help);
        fprintf(f, "  %33s default: %s\n", "", x->def[0] ? x->def : "\"\"");
    }
}

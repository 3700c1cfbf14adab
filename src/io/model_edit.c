/* model_edit.c — model surgery (model_edit.h): per-channel colour models and widened
 * 1-channel denoisers, written as new model files. */
#include "daed/io/model_edit.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/model.h"
#include "daed/core/rng.h"

/* The config of a model derived from `from` as colour model NAME in colour space `space`:
 * cfg's name, colour facts (photo.h) and earlier derived_from are replaced (plus the keys in
 * `drop`, NULL-terminated, may be NULL). */
static void derive_config(cJSON *cfg, const char *const *drop, const char *name,
                          const char *space, const char *from)
{
    static const char *const own[] = {"name",         "per_channel", "color_space",
                                      "derived_from", "chroma_half", "sigma_range"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, own[i]);
    for (size_t i = 0; drop && drop[i]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, drop[i]);
    cJSON_AddStringToObject(cfg, "name", name);
    cJSON_AddStringToObject(cfg, "color_space", space);
    cJSON_AddStringToObject(cfg, "derived_from", from);
}

/* Save m (made from mf's weights) with config txt; mf's "license" notice goes with it, and
 * its parameters are stored as F16 when mf's were (keep_f16). */
static int save_derived(const char *path, const dae_modelfile *mf, const dae_model *m,
                        const char *txt, int keep_f16, dae_error *err)
{
    char *lic = dae_modelfile_meta(mf, "license");
    const char *meta[] = {"license", lic, NULL};
    int rc = keep_f16 && mf->params_f16
                 ? dae_modelfile_save_f16(path, m, txt, lic ? meta : NULL, err)
                 : dae_modelfile_save(path, m, txt, lic ? meta : NULL, err);
    free(lic);
    return rc;
}

int dae_model_save_per_channel(const dae_modelfile *mf, const char *what, const char *name,
                               const char *space, const dae_per_channel_opts *o,
                               const char *path, dae_error *err)
{
    dae_per_channel_opts none = {0, 0.0, -1.0};
    o = o ? o : &none;
    if (o->chroma_half && strcmp(space, "opponent") != 0)
        return dae_error_set(err, DAE_EINVAL, "%s: chroma at half resolution needs the "
                             "opponent colour space, not %s", what, space);
    if (o->sigma_hi >= 0 && !(o->sigma_lo >= 0 && o->sigma_lo <= o->sigma_hi &&
                              o->sigma_hi <= 255))
        return dae_error_set(err, DAE_EINVAL, "%s: sigma range %g..%g: expected 0 <= lo <= "
                             "hi <= 255", what, o->sigma_lo, o->sigma_hi);
    if (dae_model_image_channels(mf->model) != 1 || !(mf->tasks & DAE_TASK_DENOISE))
        return dae_error_set(err, DAE_EINVAL, "%s: a per-channel colour model needs a "
                             "1-channel denoiser, got %d image channels", what,
                             dae_model_image_channels(mf->model));
    cJSON *cfg = cJSON_Parse(mf->config_json);
    if (!cfg)
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    derive_config(cfg, NULL, name, space, mf->name);
    cJSON_AddBoolToObject(cfg, "per_channel", 1);
    if (o->chroma_half)
        cJSON_AddBoolToObject(cfg, "chroma_half", 1);
    if (o->sigma_hi >= 0) {
        const double r[2] = {o->sigma_lo, o->sigma_hi};
        cJSON_AddItemToObject(cfg, "sigma_range", cJSON_CreateDoubleArray(r, 2));
    }
    char *txt = cJSON_PrintUnformatted(cfg);
    int rc = txt ? save_derived(path, mf, mf->model, txt, 1, err)
                 : dae_error_set(err, DAE_ENOMEM, "out of memory");
    cJSON_Delete(cfg);
    free(txt);
    return rc;
}

/* The first and last layers of w (3 channels) from those of g (1 channel): the new weights
 * 0, or U(+-scale/sqrt(fan_in)), a fraction of PyTorch's default bound (seed fixed), so
 * that training does not start at the saddle where the colour inputs and outputs, both 0,
 * each get no gradient because the other is 0; channel 0 keeps g's weights, and a noise-
 * level map's weights move with the map (input channel 1 -> 3). */
static void widen_ends(const dae_model *g, dae_model *w, double scale)
{
    int L = g->n_enc + g->n_dec;
    const dae_layer *f0 = &g->layers[0], *w0 = &w->layers[0];
    const dae_layer *fl = &g->layers[L - 1], *wl = &w->layers[L - 1];
    size_t kk = (size_t)f0->k * f0->k;
    dae_rng rng;
    dae_rng_seed(&rng, 1);
    float b0 = (float)(scale / sqrt((double)w0->in_ch * (double)kk));
    float bl = (float)(scale / sqrt((double)fl->in_ch * (double)fl->k * fl->k));
    for (size_t i = 0; i < w0->n_w; i++)
        w->params[w0->w_off + i] = b0 * (2 * dae_rng_uniform(&rng) - 1);
    for (size_t i = 0; i < wl->n_w; i++)
        w->params[wl->w_off + i] = bl * (2 * dae_rng_uniform(&rng) - 1);
    int gi = f0->in_ch, wi = w0->in_ch; /* 1 or 2 (noise map) -> 3 or 4 */
    for (int o = 0; o < f0->out_ch; o++) { /* weight (out, in, k, k): image, then map */
        float *dst = w->params + w0->w_off + (size_t)o * wi * kk;
        const float *src = g->params + f0->w_off + (size_t)o * gi * kk;
        memcpy(dst, src, kk * sizeof(float));
        if (g->noise_map)
            memcpy(dst + 3 * kk, src + kk, kk * sizeof(float));
    }
    memcpy(w->params + w0->b_off, g->params + f0->b_off, f0->n_b * sizeof(float));
    memcpy(w->params + wl->w_off, g->params + fl->w_off, fl->n_w * sizeof(float)); /* out 0 */
    memcpy(w->params + wl->b_off, g->params + fl->b_off, sizeof(float));
}

/* The 3-channel model of widen (dae_model_save_widened), or NULL with err set. */
static dae_model *widen_model(const dae_model *g, const char *what, double scale,
                              dae_error *err)
{
    int L = g->n_enc + g->n_dec;
    if (g->in_shape.c - g->noise_map != 1 || !g->residual || L < 2 ||
        g->layers[0].kind != DAE_LAYER_CONV2D || g->layers[L - 1].kind != DAE_LAYER_CONV2D) {
        dae_error_set(err, DAE_EINVAL, "%s: widen needs a 1-channel residual denoiser (with or "
                      "without a noise-level map) whose first and last layers are conv2d", what);
        return NULL;
    }
    dae_layer *layers = malloc((size_t)L * sizeof *layers);
    if (!layers) {
        dae_error_set(err, DAE_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(layers, g->layers, (size_t)L * sizeof *layers);
    layers[0].in_ch = 3 + g->noise_map;
    layers[L - 1].out_ch = 3;
    dae_shape in = g->in_shape;
    in.c = 3 + g->noise_map;
    int flags = DAE_MODEL_RESIDUAL | (g->noise_map ? DAE_MODEL_NOISE_MAP : 0);
    dae_model *w = dae_model_create(layers, g->n_enc, layers + g->n_enc, g->n_dec, in, flags,
                                    err);
    free(layers);
    if (!w)
        return NULL;
    for (int i = 1; i < L - 1; i++) { /* the middle layers are unchanged */
        const dae_layer *a = &g->layers[i], *b = &w->layers[i];
        memcpy(w->params + b->w_off, g->params + a->w_off, a->n_w * sizeof(float));
        memcpy(w->params + b->b_off, g->params + a->b_off, a->n_b * sizeof(float));
    }
    widen_ends(g, w, scale);
    return w;
}

int dae_model_save_widened(const dae_modelfile *mf, const char *what, const char *name,
                           const char *space, double init_scale, const char *path,
                           dae_error *err)
{
    dae_model *w = widen_model(mf->model, what, init_scale, err);
    if (!w)
        return err && err->code ? err->code : DAE_EINVAL;
    cJSON *cfg = cJSON_Parse(mf->config_json), *arch = NULL;
    char *txt = NULL, *arch_txt = dae_model_arch_json(w);
    int rc = DAE_ENOMEM;
    arch = arch_txt ? cJSON_Parse(arch_txt) : NULL;
    if (!cfg || !arch) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory");
        goto done;
    }
    /* the architecture members are the widened model's; the calibration was measured on
     * the gray model, so it goes; the training facts stay, marked by derived_from */
    static const char *const drop[] = {"calibration", NULL};
    derive_config(cfg, drop, name, space, mf->name);
    for (cJSON *it = arch->child; it; it = it->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, it->string);
        cJSON_AddItemToObject(cfg, it->string, cJSON_Duplicate(it, 1));
    }
    txt = cJSON_PrintUnformatted(cfg);
    rc = txt ? save_derived(path, mf, w, txt, 0, err)
             : dae_error_set(err, DAE_ENOMEM, "out of memory");
done:
    cJSON_Delete(cfg);
    cJSON_Delete(arch);
    free(txt);
    free(arch_txt);
    dae_model_free(w);
    return rc;
}

/* Save mf's model with config txt, every other metadata entry kept; its parameters as
 * F16 when f16, else as F32. */
static int save_as(const dae_modelfile *mf, const char *txt, int f16, const char *path,
                   dae_error *err)
{
    cJSON *meta = mf->metadata_json ? cJSON_Parse(mf->metadata_json) : NULL;
    int n = cJSON_GetArraySize(meta), k = 0, rc;
    const char **extra = calloc(2 * (size_t)n + 1, sizeof *extra);
    if (!extra) {
        cJSON_Delete(meta);
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    }
    for (const cJSON *it = meta ? meta->child : NULL; it; it = it->next)
        if (cJSON_IsString(it) && strcmp(it->string, "format") && strcmp(it->string, "config")) {
            extra[k++] = it->string;
            extra[k++] = it->valuestring;
        }
    rc = f16 ? dae_modelfile_save_f16(path, mf->model, txt, extra, err)
             : dae_modelfile_save(path, mf->model, txt, extra, err);
    free(extra);
    cJSON_Delete(meta);
    return rc;
}

int dae_model_save_f16(const dae_modelfile *mf, const char *path, dae_error *err)
{
    if (mf->n_score_tensors)
        return dae_error_set(err, DAE_EINVAL, "%s has score tensors (a knn calibration): "
                             "f16 keeps only plain models", mf->name);
    return save_as(mf, mf->config_json, 1, path, err);
}

int dae_model_save_sigma_range(const dae_modelfile *mf, const char *what, double lo,
                               double hi, const char *path, dae_error *err)
{
    if (!(lo >= 0 && lo <= hi && hi <= 255))
        return dae_error_set(err, DAE_EINVAL, "%s: sigma range %g..%g: expected 0 <= lo <= "
                             "hi <= 255", what, lo, hi);
    if (!(mf->tasks & DAE_TASK_DENOISE))
        return dae_error_set(err, DAE_EINVAL, "%s: not a denoiser", what);
    if (mf->n_score_tensors)
        return dae_error_set(err, DAE_EINVAL, "%s has score tensors (a knn calibration): "
                             "sigma-range keeps only plain models", what);
    cJSON *cfg = cJSON_Parse(mf->config_json);
    const double r[2] = {lo, hi};
    cJSON *arr = cJSON_CreateDoubleArray(r, 2);
    if (cfg && arr) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "sigma_range");
        cJSON_AddItemToObject(cfg, "sigma_range", arr);
        arr = NULL;
    }
    char *txt = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
    int rc = txt ? save_as(mf, txt, mf->params_f16, path, err)
                 : dae_error_set(err, DAE_ENOMEM, "out of memory");
    cJSON_Delete(arr);
    cJSON_Delete(cfg);
    free(txt);
    return rc;
}

/* modelfile.c — daed model files: loaded (the config, tensors matched by name) and saved.
 * The config JSON itself is read in model_config.c and calibration.c. */
#include "daed/io/modelfile.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "daed/io/json.h"
#include "daed/io/safetensors.h"

#include "modelfile_internal.h"


dae_modelfile_limits dae_modelfile_default_limits(void)
{
    dae_modelfile_limits l = {.max_file_bytes = (size_t)256 << 20,
                              .max_header_bytes = (size_t)1 << 20,
                              .max_layers = 256,
                              .map = DAE_FILE_MAP_AUTO};
    return l;
}

/* ---- loading ---- */

static void score_tensors_free(dae_score_tensor *ts, int n)
{
    for (int i = 0; ts && i < n; i++)
        free(ts[i].data);
    free(ts);
}

char *dae_modelfile_meta(const dae_modelfile *mf, const char *key)
{
    cJSON *j = mf->metadata_json ? cJSON_Parse(mf->metadata_json) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    char *out = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
    cJSON_Delete(j);
    return out;
}

void dae_modelfile_free(dae_modelfile *mf)
{
    if (!mf)
        return;
    dae_model_free(mf->model);
    dae_file_release(mf->buf, mf->buf_len, mf->buf_mapped); /* after the model: its params
                                                              may point into it */
    score_tensors_free(mf->score_tensors, mf->n_score_tensors);
    free(mf->config_json);
    free(mf->metadata_json);
    free(mf);
}

static void dims_str(char *buf, size_t n, const int64_t *d, int nd)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? "," : "", d[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

static const char *layer_type_name(const dae_layer *l)
{
    switch (l->kind) {
    case DAE_LAYER_LINEAR: return "linear";
    case DAE_LAYER_CONV2D: return "conv2d";
    case DAE_LAYER_CONV_T2D: return "conv_transpose2d";
    case DAE_LAYER_ACT: return dae_mf_act_type_name(l->act);
    case DAE_LAYER_UPSAMPLE: return "upsample";
    case DAE_LAYER_FLATTEN: return "flatten";
    case DAE_LAYER_PIXEL_UNSHUFFLE: return "pixel_unshuffle";
    case DAE_LAYER_PIXEL_SHUFFLE: return "pixel_shuffle";
    case DAE_LAYER_ADD: return "add";
    default: return "unflatten";
    }
}

/* Index of the first NaN or infinity in v[0..n), n if none. Every value of a model file is
 * checked at load: in blocks of 64 without a branch per value (GCC vectorizes the block; the
 * all-exponent-bits test is isfinite's), 8x faster than isfinite value by value, which
 * made up 40% of loading a mapped 6 MB model. */
static size_t first_nonfinite(const float *v, size_t n)
{
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint32_t bad = 0;
        for (int k = 0; k < 64; k++) {
            uint32_t u;
            memcpy(&u, v + i + k, sizeof u);
            bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
        }
        if (bad)
            break;
    }
    for (; i < n; i++)
        if (!isfinite(v[i]))
            return i;
    return n;
}

/* Parameter slot j of m (layer j / 2, its weight or its bias): values and offset in
 * m->params; 0 values for layers without parameters. */
static size_t param_slot(const dae_model *m, int j, size_t *off)
{
    const dae_layer *l = &m->layers[j / 2];
    *off = j % 2 ? l->b_off : l->w_off;
    return j % 2 ? l->n_b : l->n_w;
}

/* Every parameter the architecture expects, present with its exact shape and finite;
 * marks them in used[]. m comes without a parameter array (dae_model_create_shell). With
 * `adopt` (st points into the caller's copy or read-only mapping of the file, which the
 * result may keep; loaded parameters are never written), parameters stored in the model's
 * order (the first at the data's start, back to back, float-aligned, as
 * dae_modelfile_save writes them) are used where they lie: m->params becomes that memory.
 * Otherwise they are copied into a fresh array. */
static int match_params(dae_model *m, const dae_st_file *st, char *used, int adopt,
                        int *all_f16, dae_error *err)
{
    int S = 2 * (m->n_enc + m->n_dec), rc = DAE_OK;
    const void **src = calloc((size_t)S, sizeof *src); /* slot j's bytes in the file */
    char *half = calloc((size_t)S + 1, 1);             /* slot j stored as F16 */
    if (!src || !half)
        return dae_error_set(err, DAE_ENOMEM, "out of memory matching parameters");
    int in_place = adopt && m->n_params;
    uintptr_t base = 0; /* address of parameter 0 (integers: no pointer arithmetic off the
                           buffer) */
    /* 1. every tensor present, F32 (or F16: converted), the right shape; in place? */
    for (int j = 0; j < S; j++) {
        size_t off, n = param_slot(m, j, &off);
        if (n == 0)
            continue;
        int i = j / 2, bias = j % 2;
        char name[96], got[160], want[160];
        int64_t dims[4];
        dae_model_param_name(m, i, bias, name, sizeof name);
        int nd = dae_model_param_shape(m, i, bias, dims);
        const dae_st_tensor *t = dae_st_find(st, name);
        if (!t) {
            dims_str(want, sizeof want, dims, nd);
            rc = dae_error_set(err, DAE_EFORMAT,
                               "tensor %s: missing (layer %s[%d], %s, needs shape %s)", name,
                               i < m->n_enc ? "encoder" : "decoder",
                               i < m->n_enc ? i : i - m->n_enc, layer_type_name(&m->layers[i]),
                               want);
            goto done;
        }
        used[t - st->tensors] = 1;
        half[j] = strcmp(t->dtype, "F16") == 0;
        if (strcmp(t->dtype, "F32") != 0 && !half[j]) {
            rc = dae_error_set(err, DAE_EFORMAT, "tensor %s: dtype %s, expected F32 or F16",
                               name, t->dtype);
            goto done;
        }
        in_place = in_place && !half[j];
        *all_f16 = *all_f16 && half[j];
        int same = t->ndim == nd;
        for (int d = 0; same && d < nd; d++)
            same = t->shape[d] == dims[d];
        if (!same) {
            dims_str(got, sizeof got, t->shape, t->ndim);
            dims_str(want, sizeof want, dims, nd);
            rc = dae_error_set(err, DAE_ESHAPE, "tensor %s: shape %s, expected %s", name, got,
                               want);
            goto done;
        }
        if (t->n_elem != n) {
            rc = dae_error_set(err, DAE_EINTERNAL,
                               "tensor %s: %zu values but the model slot holds %zu", name,
                               t->n_elem, n);
            goto done;
        }
        src[j] = t->data;
        uintptr_t at = (uintptr_t)t->data;
        if (in_place && !base && off == 0 && at % _Alignof(float) == 0)
            base = at;
        else if (in_place && !(base && at >= base && at - base == off * sizeof(float)))
            in_place = 0;
    }
    /* 2. the parameter array: the file's own bytes, or a copy */
    if (in_place && base) {
        m->params = (float *)base; /* the caller's buffer (read-only if mapped) */
        m->params_external = 1;
    } else if (!(m->params = malloc((m->n_params ? m->n_params : 1) * sizeof *m->params))) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory for %zu parameters", m->n_params);
        goto done;
    } else {
        for (int j = 0; j < S; j++) {
            size_t off, n = param_slot(m, j, &off);
            if (n && half[j])
                dae_f16_decode(src[j], n, m->params + off);
            else if (n)
                memcpy(m->params + off, src[j], n * sizeof(float));
        }
    }
    /* 3. finite: the slots tile m->params, so one pass over it; the slot names the tensor */
    size_t k = first_nonfinite(m->params, m->n_params);
    for (int j = 0; k < m->n_params && j < S; j++) {
        size_t off, n = param_slot(m, j, &off);
        if (k >= off && k < off + n) {
            char name[96];
            dae_model_param_name(m, j / 2, j % 2, name, sizeof name);
            rc = dae_error_set(err, DAE_EFORMAT, "tensor %s: value %zu is %s", name, k - off,
                               isnan(m->params[k]) ? "NaN" : "infinite");
        }
    }
done:
    free(src);
    free(half);
    return rc;
}

#define MAX_BANK_ROWS (1 << 22)

/* Shape check of score tensor `name` for knn term t of a model with d values per image. */
static int check_score_shape(const char *name, int ndim, const int64_t *shape,
                             const dae_score_term *t, size_t d, dae_error *err)
{
    if (ndim == 2 && shape[1] == (int64_t)d && shape[0] >= t->k && shape[0] <= MAX_BANK_ROWS)
        return DAE_OK;
    char got[160];
    dims_str(got, sizeof got, shape, ndim);
    return dae_error_set(err, DAE_ESHAPE,
                         "tensor %s: shape %s, expected [N,%zu] with %d <= N <= %d (knn%d bank "
                         "of images)", name, got, d, t->k, MAX_BANK_ROWS, t->k);
}

/* The score tensors the calibration declares: present, F32, right shape, finite; copied
 * into mf (the file buffer is not kept) and bound to the spec's knn terms. */
static int match_score(dae_modelfile *mf, const parsed_config *pc, const dae_st_file *st,
                       char *used, dae_error *err)
{
    const dae_shape in = mf->model->in_shape;
    size_t d = dae_shape_size(in);
    mf->score = pc->score;
    int n = 0;
    for (int i = 0; i < pc->score.n_terms; i++)
        n += pc->score.term[i].kind == DAE_SCORE_KNN;
    if (n == 0)
        return DAE_OK;
    if (!(mf->score_tensors = calloc((size_t)n, sizeof *mf->score_tensors)))
        return dae_error_set(err, DAE_ENOMEM, "out of memory for score tensors");
    for (int i = 0; i < pc->score.n_terms; i++) {
        dae_score_term *t = &mf->score.term[i];
        if (t->kind != DAE_SCORE_KNN)
            continue;
        const char *name = pc->tensor[i];
        const dae_st_tensor *x = dae_st_find(st, name);
        if (!x)
            return dae_error_set(err, DAE_EFORMAT,
                                 "tensor %s: missing (declared by calibration.terms[%d], knn%d)",
                                 name, i, t->k);
        used[x - st->tensors] = 1;
        if (strcmp(x->dtype, "F32") != 0)
            return dae_error_set(err, DAE_EFORMAT, "tensor %s: dtype %s, expected F32", name,
                                 x->dtype);
        int rc = check_score_shape(name, x->ndim, x->shape, t, d, err);
        if (rc)
            return rc;
        dae_score_tensor *o = &mf->score_tensors[mf->n_score_tensors];
        snprintf(o->name, sizeof o->name, "%s", name);
        o->ndim = 2;
        o->shape[0] = x->shape[0];
        o->shape[1] = x->shape[1];
        o->n = x->n_elem;
        if (!(o->data = malloc(o->n * sizeof(float))))
            return dae_error_set(err, DAE_ENOMEM, "tensor %s: out of memory for %zu values",
                                 name, o->n);
        mf->n_score_tensors++;
        memcpy(o->data, x->data, o->n * sizeof(float));
        size_t k = first_nonfinite(o->data, o->n);
        if (k < o->n)
            return dae_error_set(err, DAE_EFORMAT, "tensor %s: value %zu is %s", name, k,
                                 isnan(o->data[k]) ? "NaN" : "infinite");
        t->bank = o->data;
        t->bank_n = (int)o->shape[0];
    }
    return DAE_OK;
}

/* Parameters and declared score tensors; nothing else. */
static int match_tensors(dae_modelfile *mf, const parsed_config *pc, const dae_st_file *st,
                         int adopt, dae_error *err)
{
    int rc;
    char *used = calloc((size_t)st->n_tensors + 1, 1);
    if (!used)
        return dae_error_set(err, DAE_ENOMEM, "out of memory matching tensors");
    mf->params_f16 = mf->model->n_params > 0;
    if ((rc = match_params(mf->model, st, used, adopt, &mf->params_f16, err)) ||
        (rc = match_score(mf, pc, st, used, err)))
        goto done;
    for (int i = 0; i < st->n_tensors; i++) {
        if (used[i])
            continue;
        const char *name = st->tensors[i].name;
        if (strncmp(name, "score.", 6) == 0)
            rc = dae_error_set(err, DAE_EFORMAT,
                               "tensor %s: unexpected (calibration \"%s\" declares no such "
                               "score tensor)", name, pc->calib.score);
        else
            rc = dae_error_set(err, DAE_EFORMAT,
                               "tensor %s: unexpected (the architecture has no such parameter)",
                               name);
        goto done;
    }
done:
    free(used);
    return rc;
}

/* The file's stem ("models/fmnist.safetensors" -> "fmnist"), made URL-safe. */
static void stem_name(const char *what, char *out, size_t n)
{
    const char *base = strrchr(what, '/');
    base = base ? base + 1 : what;
    size_t len = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        len = (size_t)(dot - base);
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        char c = base[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || (c == '.' && k > 0);
        out[k++] = ok ? c : '_';
    }
    out[k] = '\0';
    if (k == 0)
        snprintf(out, n, "model");
}

static char *metadata_text(const dae_st_file *st)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (!o)
        return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (!cJSON_AddStringToObject(o, st->meta_keys[i], st->meta_vals[i]))
            goto done;
    s = cJSON_PrintUnformatted(o);
done:
    cJSON_Delete(o);
    return s;
}

/* Parameters of the configured layers (weights and biases), as dae_model_create counts
 * them; no overflow: features <= 2^24, channels <= 2^16, kernels <= 64, layers capped. */
static size_t config_param_count(const parsed_config *pc)
{
    size_t n = 0;
    for (int i = 0; i < pc->n_enc + pc->n_dec; i++) {
        const dae_layer *l = &pc->layers[i];
        if (l->kind == DAE_LAYER_LINEAR)
            n += (size_t)l->in_f * (size_t)l->out_f + (size_t)l->out_f;
        else if (l->kind == DAE_LAYER_CONV2D || l->kind == DAE_LAYER_CONV_T2D)
            n += (size_t)l->in_ch * (size_t)l->out_ch * (size_t)l->k * (size_t)l->k +
                 (size_t)l->out_ch;
    }
    return n;
}

/* adopt: buf is the caller's copy or mapping of the file, which the result may keep
 * (mf->buf; dae_modelfile_load records how to release it) */
static dae_modelfile *parse(const unsigned char *buf, size_t len, const char *what,
                            const dae_modelfile_limits *lim, int adopt, dae_error *err)
{
    dae_modelfile_limits L = lim ? *lim : dae_modelfile_default_limits();
    dae_st_limits sl = {.max_file_bytes = L.max_file_bytes,
                        .max_header_bytes = L.max_header_bytes,
                        /* room for extras so they get "unexpected", not a limit error */
                        .max_tensors = 4 * (L.max_layers > 0 ? L.max_layers : 0) + 64};
    dae_st_file *st = NULL;
    dae_modelfile *mf = NULL;
    parsed_config pc = {0};
    int rc = DAE_OK;
    if (!what)
        what = "<model>";

    if (!(st = dae_st_parse(buf, len, &sl, err)))
        goto fail;
    if (st->n_meta < 0) {
        rc = dae_error_set(err, DAE_EFORMAT,
                           "no __metadata__ (a daed model file needs \"format\": \"%s\" and "
                           "\"config\" there)", FORMAT_NAME);
        goto fail;
    }
    const char *format = dae_st_meta(st, "format");
    if (!format) {
        rc = dae_error_set(err, DAE_EFORMAT, "__metadata__ has no \"format\" (expected \"%s\")",
                           FORMAT_NAME);
        goto fail;
    }
    if (strcmp(format, FORMAT_NAME) != 0) {
        rc = dae_error_set(err, DAE_EFORMAT, "format \"%.40s\", expected \"%s\"", format,
                           FORMAT_NAME);
        goto fail;
    }
    const char *config = dae_st_meta(st, "config");
    if (!config) {
        rc = dae_error_set(err, DAE_EFORMAT, "__metadata__ has no \"config\"");
        goto fail;
    }
    if ((rc = dae_mf_parse_config(config, L.max_layers, &pc, err)) != DAE_OK)
        goto fail;
    /* The parameters are the file's data: a 344-byte file declaring 2^24-feature layers
     * would cost a multi-GB calloc before match_tensors finds them missing. Small shortfalls
     * are left to match_tensors, whose message names the tensor. */
    size_t np = config_param_count(&pc);
    if (np > st->data_bytes / sizeof(float) && np > ((size_t)1 << 22)) {
        rc = dae_error_set(err, DAE_EFORMAT,
                           "config: the layers have %zu parameters (%zu bytes of F32), but the "
                           "data section holds %zu bytes", np, np * sizeof(float),
                           st->data_bytes);
        goto fail;
    }
    if (!(mf = calloc(1, sizeof *mf))) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(mf->model = dae_mf_model_from_parsed(&pc, 0, err)))
        goto fail;
    if ((rc = match_tensors(mf, &pc, st, adopt, err)) != DAE_OK)
        goto fail;
    if (mf->model->params_external)
        mf->buf = (unsigned char *)(uintptr_t)buf;
    size_t cl = strlen(config) + 1;
    if (!(mf->config_json = malloc(cl)) || !(mf->metadata_json = metadata_text(st))) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(mf->config_json, config, cl);
    if (pc.name[0])
        snprintf(mf->name, sizeof mf->name, "%s", pc.name);
    else
        stem_name(what, mf->name, sizeof mf->name);
    mf->tasks = pc.tasks;
    mf->calib = pc.calib;
    mf->file_bytes = len;
    dae_mf_parsed_config_free(&pc);
    dae_st_free(st);
    return mf;
fail:
    (void)rc; /* the code is in err */
    if (mf)
        mf->buf = NULL; /* on failure the caller keeps (and frees) its buffer */
    dae_error_prefix(err, "%s: ", what);
    dae_mf_parsed_config_free(&pc);
    dae_st_free(st);
    dae_modelfile_free(mf);
    return NULL;
}

dae_modelfile *dae_modelfile_parse(const unsigned char *buf, size_t len, const char *what,
                                   const dae_modelfile_limits *lim, dae_error *err)
{
    return parse(buf, len, what, lim, 0, err);
}

dae_modelfile *dae_modelfile_load(const char *path, const dae_modelfile_limits *lim,
                                  dae_error *err)
{
    dae_modelfile_limits L = lim ? *lim : dae_modelfile_default_limits();
    unsigned char *buf = NULL;
    size_t len = 0;
    int mapped = 0;
    if (dae_file_load(path, L.max_file_bytes, L.map, &buf, &len, &mapped, err) != DAE_OK)
        return NULL;
    dae_modelfile *mf = parse(buf, len, path, &L, 1, err);
    if (mf && mf->buf == buf) {
        mf->buf_len = len;
        mf->buf_mapped = mapped;
        /* Validation touched every page. A mapped file's pages stay in the page cache,
         * so let go of them: a later use maps them again (a minor fault, no I/O while
         * the cache holds them), and only the models in use count in the process's RSS. */
        if (mapped)
            madvise(buf, len, MADV_DONTNEED);
    } else {
        dae_file_release(buf, len, mapped);
    }
    return mf;
}

/* ---- saving ---- */

/* config must describe m: same input, residual and noise_map flags and layers. */
static int check_config_matches(const dae_model *m, const char *config_json, dae_error *err)
{
    int rc = DAE_OK;
    cJSON *a = NULL, *b = NULL;
    dae_model *cm = dae_model_from_config(config_json, err);
    if (!cm)
        return err ? err->code : DAE_EFORMAT;
    a = dae_mf_arch_object(m);
    b = dae_mf_arch_object(cm);
    if (!a || !b) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory comparing config and model");
        goto done;
    }
    static const char *const keys[] = {"input", "residual", "noise_map", "encoder", "decoder"};
    for (int k = 0; k < 5; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, keys[k]);
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, keys[k]);
        if (x == y || (x && y && cJSON_Compare(x, y, 1)))
            continue;
        if (cJSON_IsArray(x) && k >= 3) {
            int nx = cJSON_GetArraySize(x), ny = cJSON_GetArraySize(y);
            for (int i = 0; i < nx || i < ny; i++) {
                const cJSON *lx = cJSON_GetArrayItem(x, i), *ly = cJSON_GetArrayItem(y, i);
                if (lx && ly && cJSON_Compare(lx, ly, 1))
                    continue;
                char tx[80], ty[80];
                dae_mf_json_text(ly, ty, sizeof ty);
                dae_mf_json_text(lx, tx, sizeof tx);
                rc = dae_error_set(err, DAE_EINVAL,
                                   "config does not describe the model: %s[%d] is %s in the "
                                   "config, %s in the model", keys[k], i, ly ? ty : "absent",
                                   lx ? tx : "absent");
                goto done;
            }
        }
        char tx[80], ty[80];
        dae_mf_json_text(y, ty, sizeof ty);
        dae_mf_json_text(x, tx, sizeof tx);
        rc = dae_error_set(err, DAE_EINVAL,
                           "config does not describe the model: %s is %s in the config, %s in "
                           "the model", keys[k], ty, tx);
        goto done;
    }
done:
    cJSON_Delete(a);
    cJSON_Delete(b);
    dae_model_free(cm);
    return rc;
}

/* The score tensors given to the saver are exactly those config_json declares. */
static int check_score_tensors(const dae_model *m, const char *config_json,
                               const dae_score_tensor *score, int n_score, dae_error *err)
{
    parsed_config pc;
    int rc = dae_mf_parse_config(config_json, dae_modelfile_default_limits().max_layers, &pc, err);
    if (rc)
        return rc;
    size_t d = dae_shape_size(m->in_shape);
    int declared = 0;
    for (int i = 0; i < pc.score.n_terms && !rc; i++) {
        const dae_score_term *t = &pc.score.term[i];
        if (t->kind != DAE_SCORE_KNN)
            continue;
        declared++;
        const dae_score_tensor *x = NULL;
        for (int j = 0; j < n_score && !x; j++)
            if (strcmp(score[j].name, pc.tensor[i]) == 0)
                x = &score[j];
        if (!x)
            rc = dae_error_set(err, DAE_EINVAL,
                               "tensor %s: declared by calibration.terms[%d] but not given",
                               pc.tensor[i], i);
        else if (!(rc = check_score_shape(x->name, x->ndim, x->shape, t, d, err)) &&
                 (!x->data || x->n != (size_t)x->shape[0] * (size_t)x->shape[1]))
            rc = dae_error_set(err, DAE_EINVAL, "tensor %s: %zu values for shape [%" PRId64
                               ",%" PRId64 "]", x->name, x->n, x->shape[0], x->shape[1]);
    }
    if (!rc && declared != n_score)
        rc = dae_error_set(err, DAE_EINVAL,
                           "%d score tensors given, calibration \"%s\" declares %d", n_score,
                           pc.calib.score, declared);
    dae_mf_parsed_config_free(&pc);
    return rc;
}

static int save_file(const char *path, const dae_model *m, const char *config_json,
                     const char *const *extra_meta, const dae_score_tensor *score,
                     int n_score, int f16, dae_error *err);

int dae_modelfile_save(const char *path, const dae_model *m, const char *config_json,
                       const char *const *extra_meta, dae_error *err)
{
    return dae_modelfile_save_scored(path, m, config_json, extra_meta, NULL, 0, err);
}

int dae_modelfile_save_scored(const char *path, const dae_model *m, const char *config_json,
                              const char *const *extra_meta, const dae_score_tensor *score,
                              int n_score, dae_error *err)
{
    return save_file(path, m, config_json, extra_meta, score, n_score, 0, err);
}

int dae_modelfile_save_f16(const char *path, const dae_model *m, const char *config_json,
                           const char *const *extra_meta, dae_error *err)
{
    return save_file(path, m, config_json, extra_meta, NULL, 0, 1, err);
}

/* dae_modelfile_save_scored, the parameters as F32 or (f16) F16. */
static int save_file(const char *path, const dae_model *m, const char *config_json,
                     const char *const *extra_meta, const dae_score_tensor *score,
                     int n_score, int f16, dae_error *err)
{
    int rc = DAE_OK;
    dae_st_out *ts = NULL;
    const char **meta = NULL;
    char(*names)[96] = NULL;
    unsigned char *half = NULL; /* f16: the parameters encoded */
    if (n_score < 0 || (n_score > 0 && !score)) {
        rc = dae_error_set(err, DAE_EINVAL, "bad score tensor list (%d)", n_score);
        goto done;
    }
    if ((rc = check_config_matches(m, config_json, err)) != DAE_OK ||
        (rc = check_score_tensors(m, config_json, score, n_score, err)) != DAE_OK)
        goto done;
    int nl = m->n_enc + m->n_dec, n_extra = 0;
    while (extra_meta && extra_meta[n_extra])
        n_extra++;
    if (n_extra % 2) {
        rc = dae_error_set(err, DAE_EINVAL, "extra metadata key \"%s\" has no value",
                           extra_meta[n_extra - 1]);
        goto done;
    }
    ts = calloc(2 * (size_t)nl + (size_t)n_score + 1, sizeof *ts);
    names = calloc(2 * (size_t)nl + 1, sizeof *names);
    meta = calloc((size_t)n_extra + 5, sizeof *meta);
    if (f16 && (half = malloc(2 * m->n_params + 1)))
        dae_f16_encode(m->params, m->n_params, half);
    if (!ts || !names || !meta || (f16 && !half)) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory");
        goto done;
    }
    int nt = 0;
    for (int i = 0; i < nl; i++) {
        const dae_layer *l = &m->layers[i];
        for (int bias = 0; bias < 2; bias++) {
            size_t n = bias ? l->n_b : l->n_w, off = bias ? l->b_off : l->w_off;
            if (n == 0)
                continue;
            dae_st_out *t = &ts[nt];
            int64_t dims[4];
            dae_model_param_name(m, i, bias, names[nt], sizeof names[nt]);
            t->name = names[nt];
            t->dtype = f16 ? "F16" : "F32";
            t->ndim = dae_model_param_shape(m, i, bias, dims);
            size_t count = 1;
            for (int d = 0; d < t->ndim; d++) {
                t->shape[d] = dims[d];
                count *= (size_t)dims[d];
            }
            if (count != n || off + n > m->n_params) {
                rc = dae_error_set(err, DAE_EINTERNAL,
                                   "tensor %s: shape holds %zu values, the model slot %zu",
                                   t->name, count, n);
                goto done;
            }
            t->data = f16 ? (const void *)(half + 2 * off) : (const void *)(m->params + off);
            nt++;
        }
    }
    for (int i = 0; i < n_score; i++, nt++) {
        ts[nt].name = score[i].name;
        ts[nt].dtype = "F32";
        ts[nt].ndim = 2;
        ts[nt].shape[0] = score[i].shape[0];
        ts[nt].shape[1] = score[i].shape[1];
        ts[nt].data = score[i].data;
    }
    meta[0] = "format";
    meta[1] = FORMAT_NAME;
    meta[2] = "config";
    meta[3] = config_json;
    for (int i = 0; i < n_extra; i++)
        meta[4 + i] = extra_meta[i];
    rc = dae_st_write(path, ts, nt, meta, err);
done:
    free(ts);
    free(names);
    free(meta);
    free(half);
    return rc;
}

dae_scorer *dae_modelfile_scorer(const dae_modelfile *mf, dae_error *err)
{
    dae_scorer *s = dae_scorer_create(mf->model, &mf->score, err);
    if (!s)
        dae_error_prefix(err, "%s: ", mf->name);
    return s;
}


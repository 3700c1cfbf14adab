/* modelfile.c — daed model files: the config JSON <-> dae_model, tensors matched by name. */
#include "daed/modelfile.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "daed/json.h"
#include "daed/safetensors.h"

#define FORMAT_NAME "daed-1"
#define MAX_IMAGE_DIM 65535
#define MAX_IMAGE_VALUES ((int64_t)1 << 28)
#define MAX_FEATURES (1 << 24)
#define MAX_KERNEL 64
#define MAX_STRIDE 16
#define MAX_PADDING 64
#define MAX_ADD_FROM 65535 /* add layers: the source index (the model checks it is earlier) */

dae_modelfile_limits dae_modelfile_default_limits(void)
{
    dae_modelfile_limits l = {.max_file_bytes = (size_t)256 << 20,
                              .max_header_bytes = (size_t)1 << 20,
                              .max_layers = 256,
                              .map = DAE_FILE_MAP_AUTO};
    return l;
}

/* ---- tasks ---- */

static const char *const task_names[] = {"denoise", "inpaint", "superres", "encode", "score"};
#define N_TASKS ((int)(sizeof task_names / sizeof task_names[0]))

unsigned dae_task_from_name(const char *name)
{
    for (int i = 0; i < N_TASKS; i++)
        if (name && strcmp(name, task_names[i]) == 0)
            return 1u << i;
    return 0;
}

const char *dae_task_name(unsigned task_bit)
{
    for (int i = 0; i < N_TASKS; i++)
        if (task_bit == 1u << i)
            return task_names[i];
    return NULL;
}

/* ---- calibration ---- */

double dae_calibration_percentile(const dae_calibration *c, double score)
{
    if (!c || c->n <= 0 || isnan(score))
        return -1;
    const double *L = c->level, *V = c->value;
    int n = c->n;
    if (score <= V[0]) {
        if (V[0] <= 0 || score <= 0)
            return score < V[0] ? 0 : 100 * L[0];
        return 100 * L[0] * score / V[0];
    }
    for (int i = 0; i + 1 < n; i++) {
        if (score <= V[i + 1]) {
            double span = V[i + 1] - V[i];
            double t = span > 0 ? (score - V[i]) / span : 1;
            return 100 * (L[i] + t * (L[i + 1] - L[i]));
        }
    }
    /* Beyond the highest quantile: approach 100 smoothly instead of jumping to it. */
    double top = 100 * L[n - 1];
    if (V[n - 1] <= 0 || isinf(score))
        return 100;
    return 100 - (100 - top) * V[n - 1] / score;
}

/* ---- JSON helpers ---- */

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate keys: cJSON keeps both and returns the first, so refuse them. Sorting keeps a
 * hostile object with 100k keys from costing n^2 comparisons. Returns DAE_OK or sets err
 * ("<where>: duplicate key ..."). */
static int check_dup_keys(const cJSON *obj, const char *where, dae_error *err)
{
    int n = cJSON_GetArraySize(obj), k = 0, rc = DAE_OK;
    if (n < 2)
        return DAE_OK;
    const char **keys = malloc((size_t)n * sizeof *keys);
    if (!keys)
        return dae_error_set(err, DAE_ENOMEM, "%s: out of memory", where);
    for (const cJSON *c = obj->child; c && k < n; c = c->next)
        keys[k++] = c->string ? c->string : "";
    qsort(keys, (size_t)k, sizeof *keys, cmp_str_ptr);
    for (int i = 1; i < k; i++) {
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            rc = dae_error_set(err, DAE_EFORMAT, "%s: duplicate key \"%.40s\"", where, keys[i]);
            break;
        }
    }
    free(keys);
    return rc;
}

/* An integer-valued JSON number in [lo, hi]. */
static int json_int(const cJSON *v, int lo, int hi, int *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi)
        return 0;
    *out = (int)d;
    return 1;
}

static void json_text(const cJSON *v, char *buf, size_t n)
{
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(buf, n, "%.60s%s", s ? s : "?", s && strlen(s) > 60 ? "..." : "");
    free(s);
}

/* [C,H,W] of positive integers. */
static int json_shape(const cJSON *v, dae_shape *s)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
        return 0;
    int d[3];
    const cJSON *e = v->child;
    for (int i = 0; i < 3; i++, e = e->next)
        if (!json_int(e, 1, MAX_IMAGE_DIM, &d[i]))
            return 0;
    if ((int64_t)d[0] * d[1] * d[2] > MAX_IMAGE_VALUES)
        return 0;
    s->c = d[0];
    s->h = d[1];
    s->w = d[2];
    return 1;
}

/* ---- layers: config <-> dae_layer ---- */

typedef struct layer_type {
    const char *name;
    dae_layer_kind kind;
    dae_act act;
    const char *fields; /* allowed fields, space separated; '*' marks required ones */
} layer_type;

static const layer_type layer_types[] = {
    {"linear", DAE_LAYER_LINEAR, DAE_ACT_IDENTITY, "*in_features *out_features bias"},
    {"conv2d", DAE_LAYER_CONV2D, DAE_ACT_IDENTITY,
     "*in_channels *out_channels *kernel_size stride padding dilation groups bias"},
    {"conv_transpose2d", DAE_LAYER_CONV_T2D, DAE_ACT_IDENTITY,
     "*in_channels *out_channels *kernel_size stride padding output_padding dilation groups "
     "bias"},
    {"relu", DAE_LAYER_ACT, DAE_ACT_RELU, ""},
    {"leaky_relu", DAE_LAYER_ACT, DAE_ACT_LEAKY_RELU, "negative_slope"},
    {"tanh", DAE_LAYER_ACT, DAE_ACT_TANH, ""},
    {"sigmoid", DAE_LAYER_ACT, DAE_ACT_SIGMOID, ""},
    {"identity", DAE_LAYER_ACT, DAE_ACT_IDENTITY, ""},
    {"upsample", DAE_LAYER_UPSAMPLE, DAE_ACT_IDENTITY, "scale_factor mode align_corners"},
    {"flatten", DAE_LAYER_FLATTEN, DAE_ACT_IDENTITY, "start_dim end_dim"},
    {"unflatten", DAE_LAYER_UNFLATTEN, DAE_ACT_IDENTITY, "*unflattened_size dim"},
    {"pixel_unshuffle", DAE_LAYER_PIXEL_UNSHUFFLE, DAE_ACT_IDENTITY, "*downscale_factor"},
    {"pixel_shuffle", DAE_LAYER_PIXEL_SHUFFLE, DAE_ACT_IDENTITY, "*upscale_factor"},
    {"add", DAE_LAYER_ADD, DAE_ACT_IDENTITY, "*from"},
};
#define N_LAYER_TYPES ((int)(sizeof layer_types / sizeof layer_types[0]))

/* Is `field` in the space-separated list? *required set when it is starred. */
static int field_listed(const char *list, const char *field, int *required)
{
    size_t fl = strlen(field);
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        int req = *p == '*';
        if (req)
            p++;
        size_t n = strcspn(p, " ");
        if (n == fl && strncmp(p, field, n) == 0) {
            if (required)
                *required = req;
            return 1;
        }
        p += n;
    }
    return 0;
}

/* A size field: integer, or PyTorch's tuple form [a, a] (square only). */
static int size_field(const cJSON *obj, const char *key, int lo, int hi, int dflt, int *out,
                      const char *where, dae_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        *out = dflt;
        return DAE_OK;
    }
    int a, b;
    if (json_int(v, lo, hi, out))
        return DAE_OK;
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && json_int(v->child, lo, hi, &a) &&
        json_int(v->child->next, lo, hi, &b) && a == b) {
        *out = a;
        return DAE_OK;
    }
    char txt[80];
    json_text(v, txt, sizeof txt);
    return dae_error_set(err, DAE_EFORMAT, "%s: %s is %s, expected an integer in [%d, %d]%s",
                         where, key, txt, lo, hi,
                         cJSON_IsArray(v) ? " (or [n, n]: square only)" : "");
}

/* A field that daed supports only at PyTorch's default value (dilation, groups, bias...). */
static int default_only(const cJSON *obj, const char *key, const char *want_json,
                        const char *where, dae_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return DAE_OK;
    cJSON *want = cJSON_Parse(want_json);
    int same = want && cJSON_Compare(v, want, 1);
    cJSON_Delete(want);
    if (same)
        return DAE_OK;
    char txt[80];
    json_text(v, txt, sizeof txt);
    return dae_error_set(err, DAE_EFORMAT, "%s: %s is %s, only %s is supported", where, key,
                         txt, want_json);
}

static int parse_layer(const cJSON *o, const char *where, dae_layer *l, dae_error *err)
{
    int rc;
    memset(l, 0, sizeof *l);
    if (!cJSON_IsObject(o))
        return dae_error_set(err, DAE_EFORMAT, "%s: not a JSON object", where);
    if ((rc = check_dup_keys(o, where, err)) != DAE_OK)
        return rc;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsString(type))
        return dae_error_set(err, DAE_EFORMAT, "%s: missing \"type\" string", where);
    const layer_type *lt = NULL;
    for (int i = 0; i < N_LAYER_TYPES; i++)
        if (strcmp(type->valuestring, layer_types[i].name) == 0)
            lt = &layer_types[i];
    if (!lt)
        return dae_error_set(err, DAE_EFORMAT,
                             "%s: unknown layer type \"%.40s\" (expected linear, conv2d, "
                             "conv_transpose2d, relu, leaky_relu, tanh, sigmoid, identity, "
                             "upsample, flatten, unflatten, pixel_unshuffle, pixel_shuffle, add)",
                             where, type->valuestring);
    char w[96];
    snprintf(w, sizeof w, "%s (%s)", where, lt->name);
    for (const cJSON *c = o->child; c; c = c->next)
        if (strcmp(c->string, "type") != 0 && !field_listed(lt->fields, c->string, NULL))
            return dae_error_set(err, DAE_EFORMAT, "%s: unknown field \"%.40s\"", w,
                                 c->string);
    /* required fields: walk the starred names */
    for (const char *p = lt->fields; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (*p == '*') {
            char f[40];
            snprintf(f, sizeof f, "%.*s", (int)(n - 1), p + 1);
            if (!cJSON_GetObjectItemCaseSensitive(o, f))
                return dae_error_set(err, DAE_EFORMAT, "%s: missing \"%s\"", w, f);
        }
        p += n;
    }

    l->kind = lt->kind;
    l->act = lt->act;
    switch (lt->kind) {
    case DAE_LAYER_LINEAR:
        if ((rc = size_field(o, "in_features", 1, MAX_FEATURES, 0, &l->in_f, w, err)) ||
            (rc = size_field(o, "out_features", 1, MAX_FEATURES, 0, &l->out_f, w, err)) ||
            (rc = default_only(o, "bias", "true", w, err)))
            return rc;
        break;
    case DAE_LAYER_CONV2D:
    case DAE_LAYER_CONV_T2D:
        if ((rc = size_field(o, "in_channels", 1, MAX_FEATURES, 0, &l->in_ch, w, err)) ||
            (rc = size_field(o, "out_channels", 1, MAX_FEATURES, 0, &l->out_ch, w, err)) ||
            (rc = size_field(o, "kernel_size", 1, MAX_KERNEL, 0, &l->k, w, err)) ||
            (rc = size_field(o, "stride", 1, MAX_STRIDE, 1, &l->stride, w, err)) ||
            (rc = size_field(o, "padding", 0, MAX_PADDING, 0, &l->pad, w, err)) ||
            (rc = size_field(o, "output_padding", 0, MAX_STRIDE - 1, 0, &l->out_pad, w, err)) ||
            (rc = default_only(o, "dilation", "1", w, err)) ||
            (rc = default_only(o, "groups", "1", w, err)) ||
            (rc = default_only(o, "bias", "true", w, err)))
            return rc;
        if (l->out_pad >= l->stride)
            return dae_error_set(err, DAE_EFORMAT,
                                 "%s: output_padding %d must be smaller than stride %d", w,
                                 l->out_pad, l->stride);
        break;
    case DAE_LAYER_ACT:
        if (l->act == DAE_ACT_LEAKY_RELU) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "negative_slope");
            l->slope = 0.01f;
            if (s) {
                if (!cJSON_IsNumber(s) || !isfinite(s->valuedouble) ||
                    fabs(s->valuedouble) > 1e6) {
                    char txt[80];
                    json_text(s, txt, sizeof txt);
                    return dae_error_set(err, DAE_EFORMAT,
                                         "%s: negative_slope is %s, expected a finite number",
                                         w, txt);
                }
                l->slope = (float)s->valuedouble;
            }
        }
        break;
    case DAE_LAYER_UPSAMPLE: {
        if ((rc = default_only(o, "scale_factor", "2", w, err)) ||
            (rc = default_only(o, "align_corners", "false", w, err)))
            return rc;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mode");
        if (m && !(cJSON_IsString(m) && (strcmp(m->valuestring, "nearest") == 0 ||
                                         strcmp(m->valuestring, "bilinear") == 0))) {
            char txt[80];
            json_text(m, txt, sizeof txt);
            return dae_error_set(err, DAE_EFORMAT,
                                 "%s: mode is %s, expected \"nearest\" or \"bilinear\"", w, txt);
        }
        l->bilinear = m && strcmp(m->valuestring, "bilinear") == 0;
        break;
    }
    case DAE_LAYER_FLATTEN:
        if ((rc = default_only(o, "start_dim", "1", w, err)) ||
            (rc = default_only(o, "end_dim", "-1", w, err)))
            return rc;
        break;
    case DAE_LAYER_UNFLATTEN: {
        if ((rc = default_only(o, "dim", "1", w, err)))
            return rc;
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "unflattened_size");
        if (!json_shape(u, &l->unflat)) {
            char txt[80];
            json_text(u, txt, sizeof txt);
            return dae_error_set(err, DAE_EFORMAT,
                                 "%s: unflattened_size is %s, expected [C,H,W] of positive "
                                 "integers", w, txt);
        }
        break;
    }
    case DAE_LAYER_PIXEL_UNSHUFFLE:
    case DAE_LAYER_PIXEL_SHUFFLE:
        if ((rc = size_field(o, lt->kind == DAE_LAYER_PIXEL_SHUFFLE ? "upscale_factor"
                                                                     : "downscale_factor",
                             2, 4, 0, &l->factor, w, err)))
            return rc;
        break;
    case DAE_LAYER_ADD: {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "from");
        if (!json_int(f, 0, MAX_ADD_FROM, &l->from)) {
            char txt[80];
            json_text(f, txt, sizeof txt);
            return dae_error_set(err, DAE_EFORMAT,
                                 "%s: from is %s, expected the index of an earlier layer "
                                 "(encoder then decoder layers, counted from 0)", w, txt);
        }
        break;
    }
    }
    return DAE_OK;
}

static const char *act_type_name(dae_act a)
{
    switch (a) {
    case DAE_ACT_RELU: return "relu";
    case DAE_ACT_LEAKY_RELU: return "leaky_relu";
    case DAE_ACT_TANH: return "tanh";
    case DAE_ACT_SIGMOID: return "sigmoid";
    default: return "identity";
    }
}

static cJSON *shape_json(dae_shape s)
{
    int v[3] = {s.c, s.h, s.w};
    return cJSON_CreateIntArray(v, 3);
}

/* The config object of one layer (PyTorch constructor field names). */
static cJSON *layer_json(const dae_layer *l)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int ok = 1;
    switch (l->kind) {
    case DAE_LAYER_LINEAR:
        ok = cJSON_AddStringToObject(o, "type", "linear") &&
             cJSON_AddNumberToObject(o, "in_features", l->in_f) &&
             cJSON_AddNumberToObject(o, "out_features", l->out_f);
        break;
    case DAE_LAYER_CONV2D:
    case DAE_LAYER_CONV_T2D:
        ok = cJSON_AddStringToObject(o, "type", l->kind == DAE_LAYER_CONV2D
                                                    ? "conv2d" : "conv_transpose2d") &&
             cJSON_AddNumberToObject(o, "in_channels", l->in_ch) &&
             cJSON_AddNumberToObject(o, "out_channels", l->out_ch) &&
             cJSON_AddNumberToObject(o, "kernel_size", l->k) &&
             cJSON_AddNumberToObject(o, "stride", l->stride) &&
             cJSON_AddNumberToObject(o, "padding", l->pad);
        if (ok && l->kind == DAE_LAYER_CONV_T2D)
            ok = cJSON_AddNumberToObject(o, "output_padding", l->out_pad) != NULL;
        break;
    case DAE_LAYER_ACT:
        ok = cJSON_AddStringToObject(o, "type", act_type_name(l->act)) != NULL;
        if (ok && l->act == DAE_ACT_LEAKY_RELU) {
            /* shortest decimal that reads back as the same float: 0.01, not 0.00999999977 */
            char buf[32];
            for (int p = 1; p <= 9; p++) {
                snprintf(buf, sizeof buf, "%.*g", p, (double)l->slope);
                if (strtof(buf, NULL) == l->slope)
                    break;
            }
            ok = cJSON_AddNumberToObject(o, "negative_slope", strtod(buf, NULL)) != NULL;
        }
        break;
    case DAE_LAYER_UPSAMPLE:
        ok = cJSON_AddStringToObject(o, "type", "upsample") &&
             cJSON_AddNumberToObject(o, "scale_factor", 2) &&
             cJSON_AddStringToObject(o, "mode", l->bilinear ? "bilinear" : "nearest");
        break;
    case DAE_LAYER_FLATTEN:
        ok = cJSON_AddStringToObject(o, "type", "flatten") != NULL;
        break;
    case DAE_LAYER_UNFLATTEN: {
        ok = cJSON_AddStringToObject(o, "type", "unflatten") != NULL;
        cJSON *u = shape_json(l->unflat);
        if (ok && u)
            cJSON_AddItemToObject(o, "unflattened_size", u);
        else {
            cJSON_Delete(u);
            ok = 0;
        }
        break;
    }
    case DAE_LAYER_PIXEL_UNSHUFFLE:
        ok = cJSON_AddStringToObject(o, "type", "pixel_unshuffle") &&
             cJSON_AddNumberToObject(o, "downscale_factor", l->factor);
        break;
    case DAE_LAYER_PIXEL_SHUFFLE:
        ok = cJSON_AddStringToObject(o, "type", "pixel_shuffle") &&
             cJSON_AddNumberToObject(o, "upscale_factor", l->factor);
        break;
    case DAE_LAYER_ADD:
        ok = cJSON_AddStringToObject(o, "type", "add") &&
             cJSON_AddNumberToObject(o, "from", l->from);
        break;
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *arch_object(const dae_model *m)
{
    cJSON *o = cJSON_CreateObject(), *enc = NULL, *dec = NULL, *in = NULL, *out = NULL;
    if (!o || !(in = shape_json(m->in_shape)) || !(out = shape_json(m->out_shape)))
        goto fail;
    cJSON_AddItemToObject(o, "input", in);
    in = NULL;
    cJSON_AddItemToObject(o, "output", out);
    out = NULL;
    if (!cJSON_AddBoolToObject(o, "residual", m->residual != 0) ||
        (m->noise_map && !cJSON_AddBoolToObject(o, "noise_map", 1)) ||
        !(enc = cJSON_AddArrayToObject(o, "encoder")) ||
        !(dec = cJSON_AddArrayToObject(o, "decoder")))
        goto fail;
    for (int i = 0; i < m->n_enc + m->n_dec; i++) {
        cJSON *l = layer_json(&m->layers[i]);
        if (!l)
            goto fail;
        cJSON_AddItemToArray(i < m->n_enc ? enc : dec, l);
    }
    return o;
fail:
    cJSON_Delete(in);
    cJSON_Delete(out);
    cJSON_Delete(o);
    return NULL;
}

char *dae_model_arch_json(const dae_model *m)
{
    cJSON *o = arch_object(m);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* ---- config ---- */

typedef struct parsed_config {
    dae_layer *layers; /* encoder then decoder, owned */
    int n_enc, n_dec;
    dae_shape in, out;
    int has_out, residual, noise_map;
    char name[64];     /* "" when absent */
    unsigned tasks;
    dae_calibration calib;
    dae_score_spec score;                                   /* banks unset */
    char tensor[DAE_SCORE_MAX_TERMS][DAE_SCORE_TENSOR_NAME_MAX]; /* knn term -> tensor */
} parsed_config;

static int valid_model_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int parse_layer_list(const cJSON *cfg, const char *key, int max_layers, dae_layer *dst,
                            int *n, dae_error *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!a)
        return dae_error_set(err, DAE_EFORMAT, "config: missing \"%s\" (a list of layers)",
                             key);
    if (!cJSON_IsArray(a))
        return dae_error_set(err, DAE_EFORMAT, "config: \"%s\" is not a list of layers", key);
    int k = cJSON_GetArraySize(a);
    if (k > max_layers)
        return dae_error_set(err, DAE_ELIMIT, "config: \"%s\" has %d layers, the limit is %d",
                             key, k, max_layers);
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "config: %s[%d]", key, i);
        int rc = parse_layer(e, where, &dst[i], err);
        if (rc)
            return rc;
    }
    *n = k;
    return DAE_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *const term_fields[] = {"kind", "blur", "top", "k", "mean", "std", "weight",
                                           "tensor"};

/* A finite number field in [lo, hi]; absent: dflt. */
static int term_num(const cJSON *o, const char *key, double lo, double hi, double dflt,
                    double *out, const char *where, dae_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = dflt;
        return DAE_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        char txt[80];
        json_text(v, txt, sizeof txt);
        return dae_error_set(err, DAE_EFORMAT, "%s: %s is %s, expected a number in [%g, %g]",
                             where, key, txt, lo, hi);
    }
    *out = v->valuedouble;
    return DAE_OK;
}

/* calibration.terms[i] -> term i of spec (its kind, blur, top and k must match the score
 * string's term i) and, for knn terms, the tensor name. */
static int parse_term(const cJSON *o, int i, dae_score_term *t, char *tensor, dae_error *err)
{
    char where[64];
    snprintf(where, sizeof where, "config: calibration.terms[%d]", i);
    if (!cJSON_IsObject(o))
        return dae_error_set(err, DAE_EFORMAT, "%s: not an object", where);
    int rc = check_dup_keys(o, where, err);
    if (rc)
        return rc;
    for (const cJSON *c = o->child; c; c = c->next) {
        int known = 0;
        for (size_t k = 0; k < sizeof term_fields / sizeof term_fields[0]; k++)
            known |= strcmp(c->string, term_fields[k]) == 0;
        if (!known)
            return dae_error_set(err, DAE_EFORMAT, "%s: unknown field \"%.40s\"", where,
                                 c->string);
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const char *want = t->kind == DAE_SCORE_KNN ? "knn" : "recon";
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, want) != 0) {
        char txt[80];
        json_text(kind, txt, sizeof txt);
        return dae_error_set(err, DAE_EFORMAT,
                             "%s: kind is %s, expected \"%s\" (term %d of the score)", where,
                             kind ? txt : "missing", want, i);
    }
    double blur, top, k, mean, sd, weight;
    if ((rc = term_num(o, "blur", 0, DAE_SCORE_MAX_BLUR, 0, &blur, where, err)) ||
        (rc = term_num(o, "top", 0, 1e8, 0, &top, where, err)) ||
        (rc = term_num(o, "k", 1, DAE_SCORE_MAX_K, 1, &k, where, err)) ||
        (rc = term_num(o, "mean", -1e30, 1e30, 0, &mean, where, err)) ||
        (rc = term_num(o, "std", 1e-30, 1e30, 1, &sd, where, err)) ||
        (rc = term_num(o, "weight", -1e30, 1e30, 1, &weight, where, err)))
        return rc;
    if (top != floor(top) || k != floor(k))
        return dae_error_set(err, DAE_EFORMAT, "%s: top and k must be integers", where);
    if ((float)blur != t->blur || (t->kind == DAE_SCORE_RECON && (int)top != t->top) ||
        (t->kind == DAE_SCORE_KNN && (int)k != t->k))
        return dae_error_set(err, DAE_EFORMAT,
                             "%s: blur %g, top %g, k %g do not match the score's term %d", where,
                             blur, top, k, i);
    if (t->kind == DAE_SCORE_RECON && (cJSON_GetObjectItemCaseSensitive(o, "k") ||
                                       cJSON_GetObjectItemCaseSensitive(o, "tensor")))
        return dae_error_set(err, DAE_EFORMAT, "%s: a recon term has no k or tensor", where);
    if (t->kind == DAE_SCORE_KNN) {
        if (cJSON_GetObjectItemCaseSensitive(o, "top"))
            return dae_error_set(err, DAE_EFORMAT, "%s: a knn term has no top", where);
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(o, "tensor");
        if (!cJSON_IsString(tn) || strncmp(tn->valuestring, "score.", 6) != 0 ||
            strlen(tn->valuestring) < 7 ||
            strlen(tn->valuestring) >= DAE_SCORE_TENSOR_NAME_MAX) {
            char txt[80];
            json_text(tn, txt, sizeof txt);
            return dae_error_set(err, DAE_EFORMAT,
                                 "%s: tensor is %s, expected \"score.<name>\" (at most %d "
                                 "bytes)", where, tn ? txt : "missing",
                                 DAE_SCORE_TENSOR_NAME_MAX - 1);
        }
        snprintf(tensor, DAE_SCORE_TENSOR_NAME_MAX, "%s", tn->valuestring);
    }
    t->mean = mean;
    t->std = sd;
    t->weight = weight;
    return DAE_OK;
}

static int parse_score(const cJSON *c, const char *score, dae_score_spec *spec,
                       char (*tensor)[DAE_SCORE_TENSOR_NAME_MAX], dae_error *err)
{
    dae_error e2 = {0};
    if (dae_score_spec_parse(score, spec, &e2))
        return dae_error_set(err, DAE_EFORMAT, "config: calibration.score \"%.40s\": %s", score,
                             e2.msg);
    const cJSON *terms = cJSON_GetObjectItemCaseSensitive(c, "terms");
    if (!terms) {
        for (int i = 0; i < spec->n_terms; i++)
            if (spec->term[i].kind == DAE_SCORE_KNN)
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.score \"%.40s\" has a knn term, which "
                                     "needs \"terms\" naming its bank tensor", score);
        return DAE_OK;
    }
    if (!cJSON_IsArray(terms) || cJSON_GetArraySize(terms) != spec->n_terms)
        return dae_error_set(err, DAE_EFORMAT,
                             "config: calibration.terms must be a list of %d term objects (one "
                             "per term of \"%.40s\")", spec->n_terms, score);
    int i = 0;
    for (const cJSON *o = terms->child; o; o = o->next, i++) {
        int rc = parse_term(o, i, &spec->term[i], tensor[i], err);
        if (rc)
            return rc;
        for (int j = 0; j < i; j++)
            if (tensor[i][0] && strcmp(tensor[i], tensor[j]) == 0)
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.terms[%d]: tensor \"%s\" is already "
                                     "used by term %d", i, tensor[i], j);
    }
    return DAE_OK;
}

static int parse_calibration(const cJSON *c, dae_calibration *cal, dae_score_spec *spec,
                             char (*tensor)[DAE_SCORE_TENSOR_NAME_MAX], dae_error *err)
{
    memset(cal, 0, sizeof *cal);
    snprintf(cal->score, sizeof cal->score, "mse");
    *spec = dae_score_spec_mse();
    if (!cJSON_IsObject(c))
        return dae_error_set(err, DAE_EFORMAT, "config: calibration is not an object");
    int rc = check_dup_keys(c, "config: calibration", err);
    if (rc)
        return rc;
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(c, "score");
    if (score) {
        if (!cJSON_IsString(score) || strlen(score->valuestring) >= sizeof cal->score ||
            !score->valuestring[0])
            return dae_error_set(err, DAE_EFORMAT,
                                 "config: calibration.score must be a string of 1..%zu bytes",
                                 sizeof cal->score - 1);
        snprintf(cal->score, sizeof cal->score, "%s", score->valuestring);
    }
    if ((rc = parse_score(c, cal->score, spec, tensor, err)))
        return rc;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(c, "quantiles");
    if (q) {
        if (!cJSON_IsObject(q))
            return dae_error_set(err, DAE_EFORMAT,
                                 "config: calibration.quantiles is not an object");
        if ((rc = check_dup_keys(q, "config: calibration.quantiles", err)))
            return rc;
        if (cJSON_GetArraySize(q) > DAE_CALIB_MAX)
            return dae_error_set(err, DAE_ELIMIT,
                                 "config: calibration.quantiles has %d entries, at most %d",
                                 cJSON_GetArraySize(q), DAE_CALIB_MAX);
        double pairs[DAE_CALIB_MAX][2];
        int n = 0;
        for (const cJSON *e = q->child; e; e = e->next) {
            const char *k = e->string;
            char *end = NULL;
            double pct = k[0] == 'p' && k[1] >= '0' && k[1] <= '9' ? strtod(k + 1, &end) : NAN;
            if (!end || *end || end == k + 1 || !(pct > 0 && pct < 100))
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.quantiles key \"%.40s\", expected "
                                     "\"p<percent>\" with 0 < percent < 100 (\"p99.9\")", k);
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.quantiles.%.40s is not a finite "
                                     "number", k);
            pairs[n][0] = pct / 100;
            pairs[n][1] = e->valuedouble;
            n++;
        }
        qsort(pairs, (size_t)n, sizeof pairs[0], cmp_double);
        for (int i = 0; i < n; i++) {
            if (i > 0 && pairs[i][0] == pairs[i - 1][0])
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.quantiles: level %g given twice",
                                     100 * pairs[i][0]);
            if (i > 0 && pairs[i][1] < pairs[i - 1][1])
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.quantiles decrease: p%g = %g < "
                                     "p%g = %g", 100 * pairs[i][0], pairs[i][1],
                                     100 * pairs[i - 1][0], pairs[i - 1][1]);
            cal->level[i] = pairs[i][0];
            cal->value[i] = pairs[i][1];
        }
        cal->n = n;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "threshold");
    if (t) {
        if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble))
            return dae_error_set(err, DAE_EFORMAT,
                                 "config: calibration.threshold is not a finite number");
        cal->threshold = t->valuedouble;
    } else if (cal->n > 0) {
        /* p99 when present, else the highest quantile */
        cal->threshold = cal->value[cal->n - 1];
        for (int i = 0; i < cal->n; i++)
            if (fabs(cal->level[i] - 0.99) < 1e-9)
                cal->threshold = cal->value[i];
    }
    return DAE_OK;
}

static void parsed_config_free(parsed_config *pc)
{
    free(pc->layers);
    pc->layers = NULL;
}

static int parse_config(const char *text, int max_layers, parsed_config *pc, dae_error *err)
{
    int rc = DAE_OK;
    memset(pc, 0, sizeof *pc);
    if ((rc = dae_json_check(text, strlen(text), NULL, err)) != DAE_OK) {
        dae_error_prefix(err, "config is not valid JSON: ");
        return rc;
    }
    const char *end = NULL;
    cJSON *cfg = cJSON_ParseWithLengthOpts(text, strlen(text) + 1, &end, 1);
    if (!cfg) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        rc = dae_error_set(err, DAE_EFORMAT, "config is not valid JSON (error near byte %zu)",
                           at);
        goto done;
    }
    if (!cJSON_IsObject(cfg)) {
        rc = dae_error_set(err, DAE_EFORMAT, "config is not a JSON object");
        goto done;
    }
    if ((rc = check_dup_keys(cfg, "config", err)) != DAE_OK)
        goto done;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "input");
    if (!json_shape(v, &pc->in)) {
        char txt[80];
        json_text(v, txt, sizeof txt);
        rc = dae_error_set(err, DAE_EFORMAT,
                           "config: input is %s, expected [C,H,W] of positive integers", txt);
        goto done;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "output"))) {
        if (!json_shape(v, &pc->out)) {
            char txt[80];
            json_text(v, txt, sizeof txt);
            rc = dae_error_set(err, DAE_EFORMAT,
                               "config: output is %s, expected [C,H,W] of positive integers",
                               txt);
            goto done;
        }
        pc->has_out = 1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "residual"))) {
        if (!cJSON_IsBool(v)) {
            rc = dae_error_set(err, DAE_EFORMAT, "config: residual is not true or false");
            goto done;
        }
        pc->residual = cJSON_IsTrue(v);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "noise_map"))) {
        if (!cJSON_IsBool(v)) {
            rc = dae_error_set(err, DAE_EFORMAT, "config: noise_map is not true or false");
            goto done;
        }
        pc->noise_map = cJSON_IsTrue(v);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "name"))) {
        if (!cJSON_IsString(v) || !valid_model_name(v->valuestring)) {
            char txt[80];
            json_text(v, txt, sizeof txt);
            rc = dae_error_set(err, DAE_EFORMAT,
                               "config: name is %s, expected 1..63 of [A-Za-z0-9._-], not "
                               "starting with '.'", txt);
            goto done;
        }
        snprintf(pc->name, sizeof pc->name, "%s", v->valuestring);
    }
    pc->tasks = DAE_TASK_DENOISE;
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "tasks"))) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
            rc = dae_error_set(err, DAE_EFORMAT, "config: tasks is not a non-empty list");
            goto done;
        }
        pc->tasks = 0;
        for (const cJSON *t = v->child; t; t = t->next) {
            unsigned bit = cJSON_IsString(t) ? dae_task_from_name(t->valuestring) : 0;
            if (!bit) {
                char txt[80];
                json_text(t, txt, sizeof txt);
                rc = dae_error_set(err, DAE_EFORMAT,
                                   "config: unknown task %s (expected denoise, inpaint, "
                                   "superres, encode, score)", txt);
                goto done;
            }
            pc->tasks |= bit;
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "calibration"))) {
        if ((rc = parse_calibration(v, &pc->calib, &pc->score, pc->tensor, err)) != DAE_OK)
            goto done;
    } else {
        snprintf(pc->calib.score, sizeof pc->calib.score, "mse");
        pc->score = dae_score_spec_mse();
    }
    if (max_layers < 0)
        max_layers = 0;
    pc->layers = calloc(2 * (size_t)max_layers + 1, sizeof *pc->layers);
    if (!pc->layers) {
        rc = dae_error_set(err, DAE_ENOMEM, "config: out of memory for layers");
        goto done;
    }
    if ((rc = parse_layer_list(cfg, "encoder", max_layers, pc->layers, &pc->n_enc, err)) ||
        (rc = parse_layer_list(cfg, "decoder", max_layers, pc->layers + pc->n_enc, &pc->n_dec,
                               err)))
        goto done;
done:
    cJSON_Delete(cfg);
    if (rc)
        parsed_config_free(pc);
    return rc;
}

/* with_params 0: the parameter array is left to match_params (dae_model_create_shell). */
static dae_model *model_from_parsed(const parsed_config *pc, int with_params, dae_error *err)
{
    const dae_layer *enc = pc->layers, *dec = pc->layers + pc->n_enc;
    int flags = (pc->residual ? DAE_MODEL_RESIDUAL : 0) |
                (pc->noise_map ? DAE_MODEL_NOISE_MAP : 0);
    dae_model *m =
        with_params ? dae_model_create(enc, pc->n_enc, dec, pc->n_dec, pc->in, flags, err)
                    : dae_model_create_shell(enc, pc->n_enc, dec, pc->n_dec, pc->in, flags,
                                             err);
    if (!m) {
        dae_error_prefix(err, "config: ");
        return NULL;
    }
    if (pc->has_out && (m->out_shape.c != pc->out.c || m->out_shape.h != pc->out.h ||
                        m->out_shape.w != pc->out.w)) {
        dae_error_set(err, DAE_ESHAPE,
                      "config: output is [%d,%d,%d] but the layers produce [%d,%d,%d] from "
                      "input [%d,%d,%d]", pc->out.c, pc->out.h, pc->out.w, m->out_shape.c,
                      m->out_shape.h, m->out_shape.w, pc->in.c, pc->in.h, pc->in.w);
        dae_model_free(m);
        return NULL;
    }
    return m;
}

dae_model *dae_model_from_config(const char *config_json, dae_error *err)
{
    parsed_config pc;
    if (parse_config(config_json, dae_modelfile_default_limits().max_layers, &pc, err))
        return NULL;
    dae_model *m = model_from_parsed(&pc, 1, err);
    parsed_config_free(&pc);
    return m;
}

/* ---- loading ---- */

static void score_tensors_free(dae_score_tensor *ts, int n)
{
    for (int i = 0; ts && i < n; i++)
        free(ts[i].data);
    free(ts);
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
    case DAE_LAYER_ACT: return act_type_name(l->act);
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
                        dae_error *err)
{
    int S = 2 * (m->n_enc + m->n_dec), rc = DAE_OK;
    const void **src = calloc((size_t)S, sizeof *src); /* slot j's bytes in the file */
    if (!src)
        return dae_error_set(err, DAE_ENOMEM, "out of memory matching parameters");
    int in_place = adopt && m->n_params;
    uintptr_t base = 0; /* address of parameter 0 (integers: no pointer arithmetic off the
                           buffer) */
    /* 1. every tensor present, F32, the right shape; are they all in place? */
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
        if (strcmp(t->dtype, "F32") != 0) {
            rc = dae_error_set(err, DAE_EFORMAT, "tensor %s: dtype %s, expected F32", name,
                               t->dtype);
            goto done;
        }
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
            if (n)
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
    if ((rc = match_params(mf->model, st, used, adopt, err)) ||
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
    if ((rc = parse_config(config, L.max_layers, &pc, err)) != DAE_OK)
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
    if (!(mf->model = model_from_parsed(&pc, 0, err)))
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
    parsed_config_free(&pc);
    dae_st_free(st);
    return mf;
fail:
    (void)rc; /* the code is in err */
    if (mf)
        mf->buf = NULL; /* on failure the caller keeps (and frees) its buffer */
    dae_error_prefix(err, "%s: ", what);
    parsed_config_free(&pc);
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
    a = arch_object(m);
    b = arch_object(cm);
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
                json_text(ly, ty, sizeof ty);
                json_text(lx, tx, sizeof tx);
                rc = dae_error_set(err, DAE_EINVAL,
                                   "config does not describe the model: %s[%d] is %s in the "
                                   "config, %s in the model", keys[k], i, ly ? ty : "absent",
                                   lx ? tx : "absent");
                goto done;
            }
        }
        char tx[80], ty[80];
        json_text(y, ty, sizeof ty);
        json_text(x, tx, sizeof tx);
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
    int rc = parse_config(config_json, dae_modelfile_default_limits().max_layers, &pc, err);
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
    parsed_config_free(&pc);
    return rc;
}

int dae_modelfile_save(const char *path, const dae_model *m, const char *config_json,
                       const char *const *extra_meta, dae_error *err)
{
    return dae_modelfile_save_scored(path, m, config_json, extra_meta, NULL, 0, err);
}

int dae_modelfile_save_scored(const char *path, const dae_model *m, const char *config_json,
                              const char *const *extra_meta, const dae_score_tensor *score,
                              int n_score, dae_error *err)
{
    int rc = DAE_OK;
    dae_st_out *ts = NULL;
    const char **meta = NULL;
    char(*names)[96] = NULL;
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
    if (!ts || !names || !meta) {
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
            t->dtype = "F32";
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
            t->data = m->params + off;
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
    return rc;
}

dae_scorer *dae_modelfile_scorer(const dae_modelfile *mf, dae_error *err)
{
    dae_scorer *s = dae_scorer_create(mf->model, &mf->score, err);
    if (!s)
        dae_error_prefix(err, "%s: ", mf->name);
    return s;
}

/* A JSON number that reads back as exactly v (cJSON's own printer keeps 15 digits when
 * they are within an epsilon, which loses the last bits of a fitted statistic). */
static int add_exact(cJSON *obj, const char *key, double v)
{
    char buf[40];
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    cJSON *n = isfinite(v) ? cJSON_CreateRaw(buf) : cJSON_CreateNull();
    return n && cJSON_AddItemToObject(obj, key, n);
}

/* Plain recon terms with identity normalisation: the score string says everything. */
static int spec_needs_terms(const dae_score_spec *spec)
{
    for (int i = 0; i < spec->n_terms; i++) {
        const dae_score_term *t = &spec->term[i];
        if (t->kind != DAE_SCORE_RECON || t->mean != 0 || t->std != 1 || t->weight != 1)
            return 1;
    }
    return 0;
}

char *dae_config_set_score(const char *config_json, const dae_calibration *c,
                           const dae_score_spec *spec, const dae_score_tensor *tensors,
                           int n_tensors, dae_error *err)
{
    char name[64], *out = NULL;
    cJSON *cfg = NULL;
    if (dae_score_spec_check(spec, 0, err))
        return NULL;
    dae_score_spec_name(spec, name, sizeof name);
    if (strlen(name) >= sizeof c->score) {
        dae_error_set(err, DAE_EINVAL, "score \"%s\": name longer than %zu bytes", name,
                      sizeof c->score - 1);
        return NULL;
    }
    if (!(cfg = cJSON_Parse(config_json)) || !cJSON_IsObject(cfg)) {
        dae_error_set(err, DAE_EFORMAT, "config is not a JSON object");
        goto done;
    }
    cJSON *cal = cJSON_GetObjectItemCaseSensitive(cfg, "calibration");
    if (!cJSON_IsObject(cal)) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "calibration");
        cal = cJSON_AddObjectToObject(cfg, "calibration");
    }
    static const char *const replaced[] = {"score", "terms", "quantiles", "threshold"};
    for (int i = 0; i < 4; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(cal, replaced[i]);
    int ok = cal && cJSON_AddStringToObject(cal, "score", name) != NULL;
    if (ok && spec_needs_terms(spec)) {
        cJSON *terms = cJSON_AddArrayToObject(cal, "terms");
        int knn = 0;
        ok = terms != NULL;
        for (int i = 0; ok && i < spec->n_terms; i++) {
            const dae_score_term *t = &spec->term[i];
            cJSON *o = cJSON_CreateObject();
            ok = o && cJSON_AddItemToArray(terms, o);
            if (!ok)
                break;
            int is_knn = t->kind == DAE_SCORE_KNN;
            ok = cJSON_AddStringToObject(o, "kind", is_knn ? "knn" : "recon") &&
                 add_exact(o, "blur", (double)t->blur) &&
                 cJSON_AddNumberToObject(o, is_knn ? "k" : "top", is_knn ? t->k : t->top) &&
                 add_exact(o, "mean", t->mean) && add_exact(o, "std", t->std) &&
                 add_exact(o, "weight", t->weight);
            if (ok && is_knn) {
                if (knn >= n_tensors) {
                    dae_error_set(err, DAE_EINVAL, "score \"%s\": term %d is knn but only %d "
                                  "tensors are given", name, i, n_tensors);
                    goto done;
                }
                ok = cJSON_AddStringToObject(o, "tensor", tensors[knn++].name) != NULL;
            }
        }
    }
    if (ok && c && c->n > 0) {
        cJSON *q = cJSON_AddObjectToObject(cal, "quantiles");
        ok = q != NULL;
        for (int i = 0; ok && i < c->n; i++) {
            char key[32];
            snprintf(key, sizeof key, "p%.10g", 100 * c->level[i]);
            ok = add_exact(q, key, c->value[i]);
        }
        ok = ok && add_exact(cal, "threshold", c->threshold);
    }
    if (!ok || !(out = cJSON_PrintUnformatted(cfg)))
        dae_error_set(err, DAE_ENOMEM, "config: out of memory writing the calibration");
done:
    cJSON_Delete(cfg);
    return out;
}

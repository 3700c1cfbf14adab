/* model_config.c — a model's config JSON <-> its layers: the task names, the layer
 * objects, the whole config (shapes, name, tasks) checked into a parsed_config and a model.
 * The calibration and score blocks are in calibration.c, loading and saving in modelfile.c. */
#include "daed/io/modelfile.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/json.h"
#include "modelfile_internal.h"

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

/* ---- JSON helpers ---- */

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate keys: cJSON keeps both and returns the first, so refuse them. Sorting keeps a
 * hostile object with 100k keys from costing n^2 comparisons. Returns DAE_OK or sets err
 * ("<where>: duplicate key ..."). */
int dae_mf_check_dup_keys(const cJSON *obj, const char *where, dae_error *err)
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

void dae_mf_json_text(const cJSON *v, char *buf, size_t n)
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
    dae_mf_json_text(v, txt, sizeof txt);
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
    dae_mf_json_text(v, txt, sizeof txt);
    return dae_error_set(err, DAE_EFORMAT, "%s: %s is %s, only %s is supported", where, key,
                         txt, want_json);
}

/* Every field of layer object o is one of lt's, and every required one is there. */
static int check_fields(const cJSON *o, const layer_type *lt, const char *w, dae_error *err)
{
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
    return DAE_OK;
}

/* The fields of layer object o of type lt into l (kind and act set). */
static int layer_params(const cJSON *o, const layer_type *lt, const char *w, dae_layer *l,
                        dae_error *err)
{
    int rc;
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
                    dae_mf_json_text(s, txt, sizeof txt);
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
            dae_mf_json_text(m, txt, sizeof txt);
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
            dae_mf_json_text(u, txt, sizeof txt);
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
            dae_mf_json_text(f, txt, sizeof txt);
            return dae_error_set(err, DAE_EFORMAT,
                                 "%s: from is %s, expected the index of an earlier layer "
                                 "(encoder then decoder layers, counted from 0)", w, txt);
        }
        break;
    }
    }
    return DAE_OK;
}

static int parse_layer(const cJSON *o, const char *where, dae_layer *l, dae_error *err)
{
    int rc;
    memset(l, 0, sizeof *l);
    if (!cJSON_IsObject(o))
        return dae_error_set(err, DAE_EFORMAT, "%s: not a JSON object", where);
    if ((rc = dae_mf_check_dup_keys(o, where, err)) != DAE_OK)
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
    if ((rc = check_fields(o, lt, w, err)) != DAE_OK)
        return rc;
    l->kind = lt->kind;
    l->act = lt->act;
    return layer_params(o, lt, w, l, err);
}

const char *dae_mf_act_type_name(dae_act a)
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
        ok = cJSON_AddStringToObject(o, "type", dae_mf_act_type_name(l->act)) != NULL;
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

cJSON *dae_mf_arch_object(const dae_model *m)
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
    cJSON *o = dae_mf_arch_object(m);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* ---- config ---- */

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

/* The config's "name" (optional) and "tasks" (default ["denoise"]) into pc. */
static int parse_name_tasks(const cJSON *cfg, parsed_config *pc, dae_error *err)
{
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "name"))) {
        if (!cJSON_IsString(v) || !valid_model_name(v->valuestring)) {
            char txt[80];
            dae_mf_json_text(v, txt, sizeof txt);
            return dae_error_set(err, DAE_EFORMAT,
                                 "config: name is %s, expected 1..63 of [A-Za-z0-9._-], not "
                                 "starting with '.'", txt);
        }
        snprintf(pc->name, sizeof pc->name, "%s", v->valuestring);
    }
    pc->tasks = DAE_TASK_DENOISE;
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "tasks"))) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0) {
            return dae_error_set(err, DAE_EFORMAT, "config: tasks is not a non-empty list");
        }
        pc->tasks = 0;
        for (const cJSON *t = v->child; t; t = t->next) {
            unsigned bit = cJSON_IsString(t) ? dae_task_from_name(t->valuestring) : 0;
            if (!bit) {
                char txt[80];
                dae_mf_json_text(t, txt, sizeof txt);
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: unknown task %s (expected denoise, inpaint, "
                                     "superres, encode, score)", txt);
            }
            pc->tasks |= bit;
        }
    }
    return DAE_OK;
}

void dae_mf_parsed_config_free(parsed_config *pc)
{
    free(pc->layers);
    pc->layers = NULL;
}

int dae_mf_parse_config(const char *text, int max_layers, parsed_config *pc, dae_error *err)
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
    if ((rc = dae_mf_check_dup_keys(cfg, "config", err)) != DAE_OK)
        goto done;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "input");
    if (!json_shape(v, &pc->in)) {
        char txt[80];
        dae_mf_json_text(v, txt, sizeof txt);
        rc = dae_error_set(err, DAE_EFORMAT,
                           "config: input is %s, expected [C,H,W] of positive integers", txt);
        goto done;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "output"))) {
        if (!json_shape(v, &pc->out)) {
            char txt[80];
            dae_mf_json_text(v, txt, sizeof txt);
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
    if ((rc = parse_name_tasks(cfg, pc, err)) != DAE_OK)
        goto done;
    if ((v = cJSON_GetObjectItemCaseSensitive(cfg, "calibration"))) {
        if ((rc = dae_mf_parse_calibration(v, &pc->calib, &pc->score, pc->tensor, err)) != DAE_OK)
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
        dae_mf_parsed_config_free(pc);
    return rc;
}

/* with_params 0: the parameter array is left to match_params in modelfile.c
 * (dae_model_create_shell). */
dae_model *dae_mf_model_from_parsed(const parsed_config *pc, int with_params, dae_error *err)
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
    if (dae_mf_parse_config(config_json, dae_modelfile_default_limits().max_layers, &pc, err))
        return NULL;
    dae_model *m = dae_mf_model_from_parsed(&pc, 1, err);
    dae_mf_parsed_config_free(&pc);
    return m;
}


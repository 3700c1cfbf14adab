/* corrupt.c — per-sample training corruptions (noise, masks, blocks, blur, 2x down) and recipes. */
#include "daed/train/corrupt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/json.h"
#include "daed/core/model.h"

static const char *const kind_names[] = {"none", "gaussian", "mask", "salt_pepper",
                                         "block", "blur", "down2"};
#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

/* The JSON name of each kind's parameter (NULL: none). */
static const char *param_name(dae_corrupt_kind k)
{
    switch (k) {
    case DAE_CORRUPT_GAUSSIAN:
    case DAE_CORRUPT_BLUR:
        return "sigma";
    case DAE_CORRUPT_MASK:
    case DAE_CORRUPT_SALT_PEPPER:
        return "p";
    case DAE_CORRUPT_BLOCK:
        return "k";
    default:
        return NULL;
    }
}

const char *dae_corrupt_kind_name(dae_corrupt_kind kind)
{
    return (int)kind >= 0 && (int)kind < N_KINDS ? kind_names[kind] : "unknown";
}

int dae_corrupt_kind_from_name(const char *name)
{
    for (int i = 0; i < N_KINDS; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return i;
    return -1;
}

/* The parameter and weight rules of one member (parameterless kinds need lo = hi = 0). */
static int check_member(const dae_corruption *m, dae_error *err)
{
    if ((int)m->kind < 0 || (int)m->kind >= N_KINDS)
        return dae_error_set(err, DAE_EINVAL, "corruption: unknown kind %d", (int)m->kind);
    const char *kn = kind_names[m->kind], *pn = param_name(m->kind);
    if (!(m->weight > 0.0f && m->weight <= 1e6f))
        return dae_error_set(err, DAE_EINVAL, "corruption %s: weight %g, expected in (0, 1e6]",
                             kn, m->weight);
    double min = 0.0, max = 0.0;
    switch (m->kind) {
    case DAE_CORRUPT_GAUSSIAN: max = DAE_CORRUPT_MAX_SIGMA; break;
    case DAE_CORRUPT_MASK:
    case DAE_CORRUPT_SALT_PEPPER: max = 1.0; break;
    case DAE_CORRUPT_BLOCK: min = 1.0, max = DAE_CORRUPT_MAX_DIM; break;
    case DAE_CORRUPT_BLUR: max = DAE_CORRUPT_MAX_BLUR; break;
    default: break;
    }
    if (!(m->lo >= min && m->lo <= m->hi && m->hi <= max))
        return dae_error_set(err, DAE_EINVAL,
                             "corruption %s: %s range [%g, %g], expected %g <= lo <= hi <= %g",
                             kn, pn ? pn : "parameter", m->lo, m->hi, min, max);
    if (m->kind == DAE_CORRUPT_BLOCK && (m->lo != floorf(m->lo) || m->hi != floorf(m->hi)))
        return dae_error_set(err, DAE_EINVAL,
                             "corruption block: k range [%g, %g], expected integers", m->lo,
                             m->hi);
    return DAE_OK;
}

int dae_corruption_set_add(dae_corruption_set *set, dae_corrupt_kind kind, float lo, float hi,
                           float weight, dae_error *err)
{
    if (set->n < 0 || set->n >= DAE_CORRUPT_MAX)
        return dae_error_set(err, DAE_EINVAL, "corruption: more than %d members",
                             DAE_CORRUPT_MAX);
    dae_corruption m = {kind, lo, hi, weight, 0};
    if (!param_name(kind))
        m.lo = m.hi = 0.0f;
    int rc = check_member(&m, err);
    if (rc)
        return rc;
    set->c[set->n++] = m;
    return DAE_OK;
}

int dae_corruption_set_task(const char *task, dae_corruption_set *set, dae_error *err)
{
    static const struct {
        const char *name;
        dae_corrupt_kind kind;
        float v;
    } tasks[] = {
        {"denoise-g20", DAE_CORRUPT_GAUSSIAN, 0.2f}, {"denoise-g50", DAE_CORRUPT_GAUSSIAN, 0.5f},
        {"denoise-mask50", DAE_CORRUPT_MASK, 0.5f},  {"inpaint-10", DAE_CORRUPT_BLOCK, 10.0f},
        {"inpaint-14", DAE_CORRUPT_BLOCK, 14.0f},    {"sr2", DAE_CORRUPT_DOWN2, 0.0f},
    };
    set->n = 0;
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
        if (strcmp(task, tasks[i].name) == 0)
            return dae_corruption_set_add(set, tasks[i].kind, tasks[i].v, tasks[i].v, 1.0f, err);
    return dae_error_set(err, DAE_EINVAL,
                         "corruption task \"%s\": unknown, expected denoise-g20, denoise-g50, "
                         "denoise-mask50, inpaint-10, inpaint-14 or sr2", task);
}

/* ---- JSON recipes ---- */

/* A parameter: a number, or [lo, hi]. */
static int parse_range(const cJSON *v, const char *what, float *lo, float *hi, dae_error *err)
{
    if (cJSON_IsNumber(v)) {
        *lo = *hi = (float)v->valuedouble;
        return DAE_OK;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && cJSON_IsNumber(v->child) &&
        cJSON_IsNumber(v->child->next)) {
        *lo = (float)v->child->valuedouble;
        *hi = (float)v->child->next->valuedouble;
        return DAE_OK;
    }
    return dae_error_set(err, DAE_EINVAL, "%s: expected a number or [lo, hi]", what);
}

static int parse_member(const cJSON *o, int idx, dae_corruption_set *set, dae_error *err)
{
    char where[64];
    snprintf(where, sizeof where, "corruption[%d]", idx);
    if (!cJSON_IsObject(o))
        return dae_error_set(err, DAE_EINVAL, "%s: expected an object", where);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsString(t))
        return dae_error_set(err, DAE_EINVAL, "%s: missing \"type\" string", where);
    int kind = dae_corrupt_kind_from_name(t->valuestring);
    if (kind < 0)
        return dae_error_set(err, DAE_EINVAL,
                             "%s: type \"%.64s\" unknown, expected none, gaussian, mask, "
                             "salt_pepper, block, blur or down2", where, t->valuestring);
    const char *pn = param_name((dae_corrupt_kind)kind);
    float lo = 0.0f, hi = 0.0f, weight = 1.0f;
    int have_param = 0, noclip = 0;
    for (const cJSON *it = o->child; it; it = it->next) {
        char what[128];
        snprintf(what, sizeof what, "%s (%s).%.32s", where, kind_names[kind], it->string);
        if (strcmp(it->string, "type") == 0) {
            continue;
        } else if (strcmp(it->string, "weight") == 0) {
            if (!cJSON_IsNumber(it))
                return dae_error_set(err, DAE_EINVAL, "%s: expected a number", what);
            weight = (float)it->valuedouble;
        } else if (pn && strcmp(it->string, pn) == 0) {
            int rc = parse_range(it, what, &lo, &hi, err);
            if (rc)
                return rc;
            have_param = 1;
        } else if (kind == DAE_CORRUPT_GAUSSIAN && strcmp(it->string, "clip") == 0) {
            if (!cJSON_IsBool(it))
                return dae_error_set(err, DAE_EINVAL, "%s: expected true or false", what);
            noclip = cJSON_IsFalse(it);
        } else {
            return dae_error_set(err, DAE_EINVAL, "%s: unknown key, expected type, weight%s%s%s",
                                 what, pn ? " or " : "", pn ? pn : "",
                                 kind == DAE_CORRUPT_GAUSSIAN ? " or clip" : "");
        }
    }
    if (pn && !have_param)
        return dae_error_set(err, DAE_EINVAL, "%s (%s): missing \"%s\"", where, kind_names[kind],
                             pn);
    int rc = dae_corruption_set_add(set, (dae_corrupt_kind)kind, lo, hi, weight, err);
    if (rc) {
        dae_error_prefix(err, "%s: ", where);
        return rc;
    }
    set->c[set->n - 1].noclip = noclip;
    return DAE_OK;
}

int dae_corruption_set_from_cjson(const struct cJSON *item, dae_corruption_set *set,
                                  dae_error *err)
{
    int rc = DAE_OK;
    set->n = 0;
    if (cJSON_IsObject(item)) {
        rc = parse_member(item, 0, set, err);
    } else if (cJSON_IsArray(item)) {
        int i = 0;
        for (const cJSON *it = item->child; it && !rc; it = it->next, i++)
            rc = parse_member(it, i, set, err);
    } else {
        rc = dae_error_set(err, DAE_EINVAL, "corruptions: expected an array of objects");
    }
    if (rc)
        set->n = 0;
    return rc;
}

int dae_corruption_set_parse(const char *json, size_t len, dae_corruption_set *set,
                             dae_error *err)
{
    set->n = 0;
    cJSON *root = dae_json_parse(json, len, "corruptions", err);
    if (!root)
        return DAE_EINVAL;
    int rc = dae_corruption_set_from_cjson(root, set, err);
    cJSON_Delete(root);
    return rc;
}

char *dae_corruption_set_json(const dae_corruption_set *set)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    for (int i = 0; i < set->n; i++) {
        const dae_corruption *c = &set->c[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o))
            goto fail;
        if (!cJSON_AddStringToObject(o, "type", dae_corrupt_kind_name(c->kind)))
            goto fail;
        const char *pn = param_name(c->kind);
        if (pn) {
            cJSON *p;
            if (c->lo == c->hi) {
                p = cJSON_CreateNumber(dae_json_float(c->lo));
            } else {
                p = cJSON_CreateArray();
                if (p) {
                    cJSON_AddItemToArray(p, cJSON_CreateNumber(dae_json_float(c->lo)));
                    cJSON_AddItemToArray(p, cJSON_CreateNumber(dae_json_float(c->hi)));
                    if (cJSON_GetArraySize(p) != 2) {
                        cJSON_Delete(p);
                        p = NULL;
                    }
                }
            }
            if (!p || !cJSON_AddItemToObject(o, pn, p)) {
                cJSON_Delete(p);
                goto fail;
            }
        }
        if (!cJSON_AddNumberToObject(o, "weight", dae_json_float(c->weight)))
            goto fail;
        if (c->noclip && !cJSON_AddFalseToObject(o, "clip"))
            goto fail;
    }
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return s;
fail:
    cJSON_Delete(arr);
    return NULL;
}

int dae_corruption_out_shape(const dae_corruption_set *set, int c, int h, int w, int *oc,
                             int *oh, int *ow, dae_error *err)
{
    if (c < 1 || h < 1 || w < 1 || h > DAE_CORRUPT_MAX_DIM || w > DAE_CORRUPT_MAX_DIM ||
        c > 64)
        return dae_error_set(err, DAE_EINVAL,
                             "corruption: input shape (%d,%d,%d), expected c in [1,64] and h, w "
                             "in [1,%d]", c, h, w, DAE_CORRUPT_MAX_DIM);
    if (set->n < 0 || set->n > DAE_CORRUPT_MAX)
        return dae_error_set(err, DAE_EINVAL, "corruption: set of %d members, expected 0..%d",
                             set->n, DAE_CORRUPT_MAX);
    int n_down = 0;
    for (int i = 0; i < set->n; i++) {
        const dae_corruption *m = &set->c[i];
        int rc = check_member(m, err);
        if (rc) {
            dae_error_prefix(err, "corruption[%d]: ", i);
            return rc;
        }
        if (m->kind == DAE_CORRUPT_DOWN2)
            n_down++;
        if (m->kind == DAE_CORRUPT_BLOCK && (m->lo < 1 || m->hi > h || m->hi > w))
            return dae_error_set(err, DAE_EINVAL,
                                 "corruption[%d] block: k range [%g, %g] does not fit a %dx%d "
                                 "image", i, m->lo, m->hi, h, w);
    }
    if (n_down && n_down != set->n)
        return dae_error_set(err, DAE_EINVAL,
                             "corruption: down2 changes the image size and cannot be mixed with "
                             "same-size corruptions (%d of %d members are down2)", n_down,
                             set->n);
    if (n_down && (h < 2 || w < 2))
        return dae_error_set(err, DAE_EINVAL, "corruption down2: %dx%d image, expected >= 2x2",
                             h, w);
    *oc = c;
    *oh = n_down ? h / 2 : h;
    *ow = n_down ? w / 2 : w;
    return DAE_OK;
}

/* ---- the operations ---- */

/* Uniform 32-bit halves of one 64-bit draw feed two pixels. */
static inline float u32_open01(uint32_t u)
{
    return ((float)u + 0.5f) * (1.0f / 4294967296.0f); /* (0, 1]; never 0 */
}

static void gaussian(dae_rng *r, const float *x, size_t n, float sigma, int clip, float *out)
{
    /* Box-Muller with both outputs used: one 64-bit draw gives two normals. */
    const float two_pi = 6.283185307179586f;
    size_t i = 0;
    for (; i < n; i += 2) {
        uint64_t u = dae_rng_u64(r);
        float u1 = u32_open01((uint32_t)(u >> 32));
        float u2 = (float)(uint32_t)u * (1.0f / 4294967296.0f);
        float rad = sigma * sqrtf(-2.0f * logf(u1));
        float a = two_pi * u2;
        float v0 = x[i] + rad * cosf(a);
        out[i] = clip ? (v0 < 0.0f ? 0.0f : (v0 > 1.0f ? 1.0f : v0)) : v0;
        if (i + 1 < n) {
            float v1 = x[i + 1] + rad * sinf(a);
            out[i + 1] = clip ? (v1 < 0.0f ? 0.0f : (v1 > 1.0f ? 1.0f : v1)) : v1;
        }
    }
}

void dae_corrupt_gaussian(dae_rng *r, const float *x, size_t n, float sigma, float *out)
{
    gaussian(r, x, n, sigma, 1, out);
}

void dae_corrupt_gaussian_noclip(dae_rng *r, const float *x, size_t n, float sigma, float *out)
{
    gaussian(r, x, n, sigma, 0, out);
}

/* Per-pixel drop/hit decisions are u32 < p * 2^32 (p = 1 always drops, p = 0 never). */
static inline uint64_t prob_threshold(float p, double scale)
{
    return p <= 0.0f ? 0 : (uint64_t)((double)p * scale);
}

/* Per-pixel draws two to a 64-bit number: pixel i's 32 bits (high half on even i, a new
 * number; low half on odd i). */
static inline uint32_t pair_u32(dae_rng *r, int i, uint64_t *u)
{
    if (i & 1)
        return (uint32_t)*u;
    *u = dae_rng_u64(r);
    return (uint32_t)(*u >> 32);
}

void dae_corrupt_mask(dae_rng *r, const float *x, int c, int hw, float p, float *out,
                      float *mask)
{
    uint64_t thr = prob_threshold(p, 4294967296.0);
    uint64_t u = 0;
    for (int i = 0; i < hw; i++) {
        uint32_t v = pair_u32(r, i, &u);
        int drop = (uint64_t)v < thr;
        for (int ch = 0; ch < c; ch++) {
            size_t j = (size_t)ch * hw + i;
            out[j] = drop ? 0.0f : x[j];
        }
        if (mask)
            mask[i] = drop ? 0.0f : 1.0f;
    }
}

void dae_corrupt_salt_pepper(dae_rng *r, const float *x, int c, int hw, float p, float *out,
                             float *mask)
{
    /* 31 bits decide the hit, the lowest bit salt (1) or pepper (0). */
    uint64_t thr = prob_threshold(p, 2147483648.0);
    uint64_t u = 0;
    for (int i = 0; i < hw; i++) {
        uint32_t v = pair_u32(r, i, &u);
        int hit = (uint64_t)(v >> 1) < thr;
        float val = (float)(v & 1u);
        for (int ch = 0; ch < c; ch++) {
            size_t j = (size_t)ch * hw + i;
            out[j] = hit ? val : x[j];
        }
        if (mask)
            mask[i] = hit ? 0.0f : 1.0f;
    }
}

void dae_corrupt_block(const float *x, int c, int h, int w, int top, int left, int k,
                       float *out, float *mask)
{
    size_t plane = (size_t)h * w;
    if (out != x)
        memcpy(out, x, (size_t)c * plane * sizeof *out);
    for (int ch = 0; ch < c; ch++)
        for (int y = top; y < top + k; y++)
            memset(out + ch * plane + (size_t)y * w + left, 0, (size_t)k * sizeof *out);
    if (mask) {
        for (size_t i = 0; i < plane; i++)
            mask[i] = 1.0f;
        for (int y = top; y < top + k; y++)
            memset(mask + (size_t)y * w + left, 0, (size_t)k * sizeof *mask);
    }
}

/* OpenCV's BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba) for any offset. */
#define BLUR_MAX_RADIUS 81 /* ksize for sigma 20 is 161 */

/* 1-D convolution of n values read with stride `stride` from src into dst (same stride);
 * src and dst may be equal (the line is staged in buf first). */
static void blur_line(const float *src, float *dst, int n, size_t stride, const float *kern,
                      int rad, float *buf)
{
    for (int j = -rad; j < n + rad; j++)
        buf[j + rad] = src[(size_t)dae_reflect101(j, n) * stride];
    for (int j = 0; j < n; j++) {
        const float *b = buf + j;
        float s = 0.0f;
        for (int k = 0; k <= 2 * rad; k++)
            s += kern[k] * b[k];
        dst[(size_t)j * stride] = s;
    }
}

void dae_corrupt_blur(const float *x, int c, int h, int w, float sigma, float *out)
{
    size_t plane = (size_t)h * w;
    /* cv::GaussianBlur's kernel size for float images with ksize (0,0): round(8 sigma+1)|1. */
    int ksize = sigma > 0.0f ? ((int)lrint(sigma * 8.0 + 1.0) | 1) : 1;
    if (ksize > 2 * BLUR_MAX_RADIUS + 1)
        ksize = 2 * BLUR_MAX_RADIUS + 1;
    int rad = (ksize - 1) / 2;
    if (rad == 0) {
        memcpy(out, x, (size_t)c * plane * sizeof *out);
        return;
    }
    float kern[2 * BLUR_MAX_RADIUS + 1];
    double kd[2 * BLUR_MAX_RADIUS + 1], sum = 0.0;
    double scale = -0.5 / ((double)sigma * sigma);
    for (int i = 0; i < ksize; i++) {
        double t = i - rad;
        kd[i] = exp(scale * t * t);
        sum += kd[i];
    }
    for (int i = 0; i < ksize; i++)
        kern[i] = (float)(kd[i] / sum);
    float buf[DAE_CORRUPT_MAX_DIM + 2 * BLUR_MAX_RADIUS];
    for (int ch = 0; ch < c; ch++) {
        const float *xs = x + ch * plane;
        float *o = out + ch * plane;
        for (int y = 0; y < h; y++)
            blur_line(xs + (size_t)y * w, o + (size_t)y * w, w, 1, kern, rad, buf);
        for (int col = 0; col < w; col++)
            blur_line(o + col, o + col, h, (size_t)w, kern, rad, buf);
    }
}

void dae_corrupt_down2(const float *x, int c, int h, int w, float *out)
{
    int oh = h / 2, ow = w / 2;
    for (int ch = 0; ch < c; ch++) {
        const float *xs = x + (size_t)ch * h * w;
        float *o = out + (size_t)ch * oh * ow;
        for (int i = 0; i < oh; i++) {
            const float *r0 = xs + (size_t)(2 * i) * w, *r1 = r0 + w;
            for (int j = 0; j < ow; j++) {
                /* double, like the reference's float64 mean: the sum of four floats is exact */
                double s = (double)r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1];
                o[(size_t)i * ow + j] = (float)(s * 0.25);
            }
        }
    }
}

/* ---- sampling ---- */

static float draw_param(const dae_corruption *m, dae_rng *r)
{
    return m->lo == m->hi ? m->lo : m->lo + (m->hi - m->lo) * dae_rng_uniform(r);
}

static int draw_member(const dae_corruption_set *set, dae_rng *r)
{
    if (set->n <= 1)
        return 0;
    float total = 0.0f;
    for (int i = 0; i < set->n; i++)
        total += set->c[i].weight;
    float u = dae_rng_uniform(r) * total;
    for (int i = 0; i < set->n - 1; i++) {
        if (u < set->c[i].weight)
            return i;
        u -= set->c[i].weight;
    }
    return set->n - 1;
}

static void fill_ones(float *mask, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mask[i] = 1.0f;
}

int dae_corrupt_sample(const dae_corruption_set *set, dae_rng *r, const float *clean, int c,
                       int h, int w, float *out, float *mask)
{
    int hw = h * w;
    size_t n = (size_t)c * hw;
    if (set->n == 0) {
        memcpy(out, clean, n * sizeof *out);
        if (mask)
            fill_ones(mask, (size_t)hw);
        return 0;
    }
    int idx = draw_member(set, r);
    const dae_corruption *m = &set->c[idx];
    switch (m->kind) {
    case DAE_CORRUPT_GAUSSIAN:
        gaussian(r, clean, n, draw_param(m, r), !m->noclip, out);
        break;
    case DAE_CORRUPT_MASK:
        dae_corrupt_mask(r, clean, c, hw, draw_param(m, r), out, mask);
        return idx;
    case DAE_CORRUPT_SALT_PEPPER:
        dae_corrupt_salt_pepper(r, clean, c, hw, draw_param(m, r), out, mask);
        return idx;
    case DAE_CORRUPT_BLOCK: {
        int lo = (int)m->lo, hi = (int)m->hi;
        int k = lo == hi ? lo : lo + (int)dae_rng_below(r, (uint64_t)(hi - lo + 1));
        int top = (int)dae_rng_below(r, (uint64_t)(h - k + 1));
        int left = (int)dae_rng_below(r, (uint64_t)(w - k + 1));
        dae_corrupt_block(clean, c, h, w, top, left, k, out, mask);
        return idx;
    }
    case DAE_CORRUPT_BLUR:
        dae_corrupt_blur(clean, c, h, w, draw_param(m, r), out);
        break;
    case DAE_CORRUPT_DOWN2:
        dae_corrupt_down2(clean, c, h, w, out);
        break;
    case DAE_CORRUPT_NONE:
    default:
        memcpy(out, clean, n * sizeof *out);
        break;
    }
    if (mask)
        fill_ones(mask, (size_t)hw);
    return idx;
}

void dae_corrupt_noise2noise(const dae_corruption_set *set,
                             const dae_corruption_set *target_set, dae_rng *r,
                             const float *clean, int c, int h, int w, float *input,
                             float *target)
{
    dae_corrupt_sample(set, r, clean, c, h, w, input, NULL);
    dae_corrupt_sample(target_set && target_set->n > 0 ? target_set : set, r, clean, c, h, w,
                       target, NULL);
}

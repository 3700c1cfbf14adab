/* photonoise.c — realistic training noise for photo patches: gaussian, camera (unprocessing,
 * Brooks et al. 2019), correlated, and a JPEG post-step; their recipe form (photonoise.h). */
#include "daed/train/photonoise.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/model.h"
#include "daed/io/image.h"
#include "daed/io/json.h"
#include "daed/io/jpeg.h"
#include "daed/io/photo.h"

#define CORR_MAX_RADIUS 12 /* ceil(3 * DAE_PNOISE_MAX_WIDTH) */
#define BAYER_PAD 2        /* the 5x5 demosaic kernels reach 2 pixels */

static const char *const kind_names[] = {"gaussian", "camera", "correlated"};
#define N_KINDS 3

const char *dae_pnoise_kind_name(dae_pnoise_kind kind)
{
    return (int)kind >= 0 && (int)kind < N_KINDS ? kind_names[kind] : "unknown";
}

/* ---- the recipe form ---- */

static dae_pnoise member_defaults(dae_pnoise_kind kind)
{
    dae_pnoise m = {.kind = kind, .weight = 1.0f, .per_channel = 1, .read_jitter = 0.26f,
                    .demosaic = DAE_DEMOSAIC_MALVAR};
    if (kind == DAE_PNOISE_CAMERA)
        m.lo = 0.0001f, m.hi = 0.012f;
    if (kind == DAE_PNOISE_CORRELATED)
        m.width_lo = 0.5f, m.width_hi = 1.5f;
    return m;
}

/* A number (fixed) or [lo, hi] with min <= lo <= hi <= max (integers when integral). */
static int parse_range(const cJSON *v, const char *what, double min, double max, int integral,
                       float *lo, float *hi, dae_error *err)
{
    double a, b;
    if (cJSON_IsNumber(v)) {
        a = b = v->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && cJSON_IsNumber(v->child) &&
               cJSON_IsNumber(v->child->next)) {
        a = v->child->valuedouble;
        b = v->child->next->valuedouble;
    } else {
        return dae_error_set(err, DAE_EINVAL, "%s: expected a number or [lo, hi]", what);
    }
    if (!(a >= min && a <= b && b <= max))
        return dae_error_set(err, DAE_EINVAL, "%s: [%g, %g], expected %g <= lo <= hi <= %g",
                             what, a, b, min, max);
    if (integral && (a != floor(a) || b != floor(b)))
        return dae_error_set(err, DAE_EINVAL, "%s: [%g, %g], expected integers", what, a, b);
    *lo = (float)a;
    *hi = (float)b;
    return DAE_OK;
}

static int parse_number(const cJSON *v, const char *what, double min, double max, float *out,
                        dae_error *err)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= min && v->valuedouble <= max))
        return dae_error_set(err, DAE_EINVAL, "%s: expected a number in [%g, %g]", what, min,
                             max);
    *out = (float)v->valuedouble;
    return DAE_OK;
}

/* One key of a noise member; *known = 0 when the key does not belong to the kind. */
static int parse_key(dae_pnoise *m, const cJSON *it, const char *what, int *known,
                     int *have_sigma, dae_error *err)
{
    const char *k = it->string;
    *known = 1;
    if (strcmp(k, "weight") == 0)
        return parse_number(it, what, 1e-9, 1e6, &m->weight, err);
    if (m->kind != DAE_PNOISE_CAMERA && strcmp(k, "sigma") == 0) {
        *have_sigma = 1;
        return parse_range(it, what, 0, DAE_PNOISE_MAX_SIGMA, 0, &m->lo, &m->hi, err);
    }
    if (m->kind != DAE_PNOISE_GAUSSIAN && strcmp(k, "width") == 0)
        return parse_range(it, what, 0, DAE_PNOISE_MAX_WIDTH, 0, &m->width_lo, &m->width_hi,
                           err);
    if (m->kind == DAE_PNOISE_CORRELATED && strcmp(k, "per_channel") == 0) {
        if (!cJSON_IsBool(it))
            return dae_error_set(err, DAE_EINVAL, "%s: expected true or false", what);
        m->per_channel = cJSON_IsTrue(it);
        return DAE_OK;
    }
    if (m->kind == DAE_PNOISE_CAMERA && strcmp(k, "shot") == 0)
        return parse_range(it, what, DAE_PNOISE_MIN_SHOT, DAE_PNOISE_MAX_SHOT, 0, &m->lo, &m->hi,
                           err);
    if (m->kind == DAE_PNOISE_CAMERA && strcmp(k, "chroma") == 0) {
        float lo, hi;
        int rc = parse_range(it, what, 0, 1, 0, &lo, &hi, err);
        m->cut_lo = 1.0f - hi;
        m->cut_hi = 1.0f - lo;
        return rc;
    }
    if (m->kind == DAE_PNOISE_CAMERA && strcmp(k, "read_jitter") == 0)
        return parse_number(it, what, 0, DAE_PNOISE_MAX_JITTER, &m->read_jitter, err);
    if (m->kind == DAE_PNOISE_CAMERA && strcmp(k, "demosaic") == 0) {
        if (cJSON_IsString(it) && strcmp(it->valuestring, "malvar") == 0)
            m->demosaic = DAE_DEMOSAIC_MALVAR;
        else if (cJSON_IsString(it) && strcmp(it->valuestring, "bilinear") == 0)
            m->demosaic = DAE_DEMOSAIC_BILINEAR;
        else
            return dae_error_set(err, DAE_EINVAL, "%s: expected \"malvar\" or \"bilinear\"",
                                 what);
        return DAE_OK;
    }
    *known = 0;
    return DAE_OK;
}

static const char *const kind_keys[] = {
    "type, weight or sigma",
    "type, weight, shot, read_jitter, demosaic, chroma or width",
    "type, weight, sigma, width or per_channel",
};

/* The JPEG post-step member: p and quality. */
static int parse_jpeg(const cJSON *o, const char *where, dae_photonoise_set *set,
                      dae_error *err)
{
    if (set->jpeg_qhi > 0)
        return dae_error_set(err, DAE_EINVAL, "%s (jpeg): a second jpeg step, expected at most "
                             "one", where);
    float p = 1.0f, qlo = 0, qhi = 0;
    int have_q = 0;
    for (const cJSON *it = o->child; it; it = it->next) {
        char what[128];
        snprintf(what, sizeof what, "%s (jpeg).%.32s", where, it->string);
        int rc = DAE_OK;
        if (strcmp(it->string, "type") == 0)
            continue;
        for (const cJSON *d = it->next; d; d = d->next)
            if (strcmp(d->string, it->string) == 0)
                return dae_error_set(err, DAE_EINVAL, "%s: duplicate key", what);
        if (strcmp(it->string, "p") == 0)
            rc = parse_number(it, what, 0, 1, &p, err);
        else if (strcmp(it->string, "quality") == 0)
            rc = parse_range(it, what, 1, 100, 1, &qlo, &qhi, err), have_q = 1;
        else
            rc = dae_error_set(err, DAE_EINVAL, "%s: unknown key, expected type, p or quality "
                               "(the jpeg step is not drawn: it has no weight)", what);
        if (rc)
            return rc;
    }
    if (!have_q)
        return dae_error_set(err, DAE_EINVAL, "%s (jpeg): missing \"quality\"", where);
    set->jpeg_p = p;
    set->jpeg_qlo = (int)qlo;
    set->jpeg_qhi = (int)qhi;
    return DAE_OK;
}

static int parse_member(const cJSON *o, int idx, dae_photonoise_set *set, dae_error *err)
{
    char where[32];
    snprintf(where, sizeof where, "noise[%d]", idx);
    if (!cJSON_IsObject(o))
        return dae_error_set(err, DAE_EINVAL, "%s: expected an object", where);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsString(t))
        return dae_error_set(err, DAE_EINVAL, "%s: missing \"type\" string", where);
    if (strcmp(t->valuestring, "jpeg") == 0)
        return parse_jpeg(o, where, set, err);
    int kind = -1;
    for (int i = 0; i < N_KINDS; i++)
        if (strcmp(t->valuestring, kind_names[i]) == 0)
            kind = i;
    if (kind < 0)
        return dae_error_set(err, DAE_EINVAL, "%s: type \"%.64s\" unknown, expected gaussian, "
                             "camera, correlated or jpeg", where, t->valuestring);
    if (set->n >= DAE_PNOISE_MAX)
        return dae_error_set(err, DAE_EINVAL, "%s: more than %d noise kinds", where,
                             DAE_PNOISE_MAX);
    dae_pnoise m = member_defaults((dae_pnoise_kind)kind);
    int have_sigma = 0;
    for (const cJSON *it = o->child; it; it = it->next) {
        char what[128];
        snprintf(what, sizeof what, "%s (%s).%.32s", where, kind_names[kind], it->string);
        if (strcmp(it->string, "type") == 0)
            continue;
        for (const cJSON *d = it->next; d; d = d->next)
            if (strcmp(d->string, it->string) == 0)
                return dae_error_set(err, DAE_EINVAL, "%s: duplicate key", what);
        int known = 0, rc = parse_key(&m, it, what, &known, &have_sigma, err);
        if (rc)
            return rc;
        if (!known)
            return dae_error_set(err, DAE_EINVAL, "%s: unknown key, expected %s", what,
                                 kind_keys[kind]);
    }
    if (kind != DAE_PNOISE_CAMERA && !have_sigma)
        return dae_error_set(err, DAE_EINVAL, "%s (%s): missing \"sigma\"", where,
                             kind_names[kind]);
    set->m[set->n++] = m;
    return DAE_OK;
}

int dae_photonoise_set_from_cjson(const struct cJSON *item, dae_photonoise_set *set,
                                  dae_error *err)
{
    memset(set, 0, sizeof *set);
    int rc = DAE_OK, i = 0;
    if (!cJSON_IsArray(item))
        rc = dae_error_set(err, DAE_EINVAL, "noise: expected an array of objects such as "
                           "[{\"type\":\"gaussian\",\"sigma\":[0,50]}]");
    for (const cJSON *it = item ? item->child : NULL; it && !rc; it = it->next, i++)
        rc = parse_member(it, i, set, err);
    if (!rc && set->n == 0)
        rc = dae_error_set(err, DAE_EINVAL, "noise: no noise kind (gaussian, camera or "
                           "correlated; gaussian with sigma 0 is a clean patch)");
    if (rc)
        memset(set, 0, sizeof *set);
    return rc;
}

int dae_photonoise_set_parse(const char *json, size_t len, dae_photonoise_set *set,
                             dae_error *err)
{
    memset(set, 0, sizeof *set);
    cJSON *root = dae_json_parse(json, len, "noise", err);
    if (!root)
        return DAE_EINVAL;
    int rc = dae_photonoise_set_from_cjson(root, set, err);
    cJSON_Delete(root);
    return rc;
}

/* 1 - cut as the shortest decimal c with 1 - (float)c == cut (0.2, not 0.19999998807907104). */
static double tidy_complement(float cut)
{
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, 1.0 - (double)cut);
        double d = strtod(buf, NULL);
        if (1.0f - (float)d == cut)
            return d;
    }
    return 1.0 - (double)cut;
}

static void add_range(cJSON *o, const char *key, float lo, float hi)
{
    if (lo == hi) {
        cJSON_AddNumberToObject(o, key, dae_json_float(lo));
        return;
    }
    cJSON *a = cJSON_AddArrayToObject(o, key);
    cJSON_AddItemToArray(a, cJSON_CreateNumber(dae_json_float(lo)));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(dae_json_float(hi)));
}

char *dae_photonoise_set_json(const dae_photonoise_set *set)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < set->n; i++) {
        const dae_pnoise *m = &set->m[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "type", dae_pnoise_kind_name(m->kind));
        add_range(o, m->kind == DAE_PNOISE_CAMERA ? "shot" : "sigma", m->lo, m->hi);
        if (m->kind == DAE_PNOISE_CAMERA) {
            cJSON_AddNumberToObject(o, "read_jitter", dae_json_float(m->read_jitter));
            cJSON_AddStringToObject(o, "demosaic", m->demosaic == DAE_DEMOSAIC_MALVAR
                                                       ? "malvar" : "bilinear");
            if (m->width_hi > 0.0f)
                add_range(o, "width", m->width_lo, m->width_hi);
            double c_lo = tidy_complement(m->cut_hi), c_hi = tidy_complement(m->cut_lo);
            if (c_lo == c_hi) {
                cJSON_AddNumberToObject(o, "chroma", c_lo);
            } else {
                cJSON *a = cJSON_AddArrayToObject(o, "chroma");
                cJSON_AddItemToArray(a, cJSON_CreateNumber(c_lo));
                cJSON_AddItemToArray(a, cJSON_CreateNumber(c_hi));
            }
        } else if (m->kind == DAE_PNOISE_CORRELATED) {
            add_range(o, "width", m->width_lo, m->width_hi);
            cJSON_AddBoolToObject(o, "per_channel", m->per_channel);
        }
        cJSON_AddNumberToObject(o, "weight", dae_json_float(m->weight));
    }
    if (arr && set->jpeg_qhi > 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "type", "jpeg");
        cJSON_AddNumberToObject(o, "p", dae_json_float(set->jpeg_p));
        add_range(o, "quality", (float)set->jpeg_qlo, (float)set->jpeg_qhi);
    }
    /* cJSON's adders fail silently on allocation failure: the printer then fails too, or
     * prints a shorter list; a parse back of the text is the honest check. */
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    dae_photonoise_set back;
    if (s && dae_photonoise_set_parse(s, strlen(s), &back, NULL) != DAE_OK) {
        free(s);
        s = NULL;
    }
    return s;
}

int dae_photonoise_sigma_range(const dae_photonoise_set *set, double *lo, double *hi)
{
    int any = 0;
    for (int i = 0; i < set->n; i++) {
        const dae_pnoise *m = &set->m[i];
        if (m->kind == DAE_PNOISE_CAMERA)
            continue;
        if (!any || m->lo < *lo)
            *lo = m->lo;
        if (!any || m->hi > *hi)
            *hi = m->hi;
        any = 1;
    }
    return any;
}

/* ---- the generator ---- */

struct dae_photonoise {
    dae_photonoise_set set;
    int c, h, w;
    float *buf;   /* the one allocation the pointers below point into */
    float *lin;   /* (3, h*w) the clean patch in linear light */
    float *out3;  /* (3, h*w) camera output before luma (gray patches) */
    float *dem;   /* (3, h*w) demosaiced noise; correlated: the blurred field */
    float *mos;   /* (h+4, w+4) noise mosaic with a reflected border */
    float *field; /* (h+2R, w+2R) white noise for correlated */
    float *tmp;   /* (h+2R, w) its horizontal blur */
    dae_jpeg_roundtrip *jpeg;
};

void dae_photonoise_free(dae_photonoise *g)
{
    if (!g)
        return;
    free(g->buf);
    dae_jpeg_roundtrip_free(g->jpeg);
    free(g);
}

dae_photonoise *dae_photonoise_create(const dae_photonoise_set *set, int c, int h, int w,
                                      dae_error *err)
{
    if ((c != 1 && c != 3) || h < 1 || w < 1 || h > DAE_PNOISE_MAX_SIDE ||
        w > DAE_PNOISE_MAX_SIDE) {
        dae_error_set(err, DAE_EINVAL, "photo noise: patch (%d,%d,%d), expected 1 or 3 "
                      "channels and 1..%d a side", c, h, w, DAE_PNOISE_MAX_SIDE);
        return NULL;
    }
    dae_photonoise *g = calloc(1, sizeof *g);
    if (!g) {
        dae_error_set(err, DAE_ENOMEM, "photo noise: out of memory");
        return NULL;
    }
    g->set = *set;
    g->c = c, g->h = h, g->w = w;
    size_t hw = (size_t)h * w, R = CORR_MAX_RADIUS;
    size_t nmos = (size_t)(h + 2 * BAYER_PAD) * (w + 2 * BAYER_PAD);
    size_t nfield = (h + 2 * R) * (w + 2 * R), ntmp = (h + 2 * R) * (size_t)w;
    g->buf = malloc((9 * hw + nmos + nfield + ntmp) * sizeof *g->buf);
    g->jpeg = dae_jpeg_roundtrip_create(w, h, c, err);
    if (!g->buf || !g->jpeg) {
        if (!g->buf)
            dae_error_set(err, DAE_ENOMEM, "photo noise: cannot allocate scratch for %dx%d "
                          "patches", w, h);
        dae_photonoise_free(g);
        return NULL;
    }
    g->lin = g->buf;
    g->out3 = g->lin + 3 * hw;
    g->dem = g->out3 + 3 * hw;
    g->mos = g->dem + 3 * hw;
    g->field = g->mos + nmos;
    g->tmp = g->field + nfield;
    return g;
}

/* ---- small helpers ---- */

/* n standard normals: Box-Muller with both outputs of one 64-bit draw used. */
static void normals(dae_rng *r, float *z, size_t n)
{
    const float two_pi = 6.283185307179586f;
    for (size_t i = 0; i < n; i += 2) {
        uint64_t u = dae_rng_u64(r);
        float u1 = ((float)(uint32_t)(u >> 32) + 0.5f) * (1.0f / 4294967296.0f);
        float u2 = (float)(uint32_t)u * (1.0f / 4294967296.0f);
        float rad = sqrtf(-2.0f * logf(u1)), a = two_pi * u2;
        z[i] = rad * cosf(a);
        if (i + 1 < n)
            z[i + 1] = rad * sinf(a);
    }
}

static double draw(dae_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * dae_rng_uniform_d(r);
}

static float clamp01(float v)
{
    return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* NaN -> 0 */
}

static double rms255(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return 255.0 * sqrt(s / (double)n);
}

float dae_photonoise_to_linear(float srgb)
{
    float y = clamp01(srgb);
    float t = 0.5f - sinf(asinf(1.0f - 2.0f * y) / 3.0f); /* inverse smoothstep */
    return powf(t > 1e-8f ? t : 1e-8f, 2.2f);
}

float dae_photonoise_from_linear(float lin)
{
    float x = clamp01(lin);
    float g = powf(x > 1e-8f ? x : 1e-8f, 1.0f / 2.2f);
    return clamp01(g * g * (3.0f - 2.0f * g)); /* smoothstep */
}

/* ---- camera: the random camera ---- */

typedef struct camera {
    double rgb2cam[3][3], cam2rgb[3][3];
    double inv_gain[3], gain[3]; /* raw = cam * inv_gain; forward gains undo it */
    double shot, read;           /* variance = shot * raw + read */
    float chroma;                /* kept fraction of the sRGB noise's chroma part */
} camera;

static void mat3_mul(double out[3][3], const double a[3][3], const double b[3][3])
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            out[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
}

static void mat3_inv(double out[3][3], const double m[3][3])
{
    double c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
    double c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
    double c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    double det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02, k = 1.0 / det;
    out[0][0] = c00 * k;
    out[1][0] = c01 * k;
    out[2][0] = c02 * k;
    out[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) * k;
    out[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) * k;
    out[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) * k;
    out[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) * k;
    out[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) * k;
    out[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) * k;
}

/* Brooks et al.'s four XYZ -> camera matrices and sRGB (D65) -> XYZ. */
static const double xyz2cams[4][3][3] = {
    {{1.0234, -0.2969, -0.2266}, {-0.5625, 1.6328, -0.0469}, {-0.0703, 0.2188, 0.6406}},
    {{0.4913, -0.0541, -0.0202}, {-0.613, 1.3513, 0.2906}, {-0.1564, 0.2151, 0.7183}},
    {{0.838, -0.263, -0.0639}, {-0.2887, 1.0725, 0.2496}, {-0.0627, 0.1427, 0.5438}},
    {{0.6596, -0.2079, -0.0562}, {-0.4782, 1.3016, 0.1933}, {-0.097, 0.1581, 0.5181}}};
static const double rgb2xyz[3][3] = {{0.4124564, 0.3575761, 0.1804375},
                                     {0.2126729, 0.7151522, 0.0721750},
                                     {0.0193339, 0.1191920, 0.9503041}};

static void draw_camera(dae_rng *r, const dae_pnoise *m, camera *cam)
{
    double wsum = 0.0, wt[4], xyz2cam[3][3] = {{0}};
    for (int k = 0; k < 4; k++)
        wsum += wt[k] = 1e-6 + dae_rng_uniform_d(r);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                xyz2cam[i][j] += wt[k] / wsum * xyz2cams[k][i][j];
    mat3_mul(cam->rgb2cam, xyz2cam, rgb2xyz);
    for (int i = 0; i < 3; i++) {
        double s = cam->rgb2cam[i][0] + cam->rgb2cam[i][1] + cam->rgb2cam[i][2];
        for (int j = 0; j < 3; j++)
            cam->rgb2cam[i][j] /= s; /* white stays white */
    }
    mat3_inv(cam->cam2rgb, cam->rgb2cam);
    /* inverse digital gain N(0.8, 0.1) (kept in [0.5, 1.1]), white balance gains */
    double dg = 0.8 + 0.1 * dae_rng_normal(r);
    dg = dg < 0.5 ? 0.5 : (dg > 1.1 ? 1.1 : dg);
    double red = draw(r, 1.9, 2.4), blue = draw(r, 1.5, 1.9);
    cam->inv_gain[0] = dg / red;
    cam->inv_gain[1] = dg;
    cam->inv_gain[2] = dg / blue;
    for (int i = 0; i < 3; i++)
        cam->gain[i] = 1.0 / cam->inv_gain[i];
    double log_shot = draw(r, log(m->lo), log(m->hi));
    double log_read = 2.18 * log_shot + 1.2 + m->read_jitter * dae_rng_normal(r);
    cam->shot = exp(log_shot);
    cam->read = exp(log_read);
    cam->chroma = 1.0f - (float)draw(r, m->cut_lo, m->cut_hi);
}

/* ---- camera: mosaic, demosaic ---- */

/* RGGB: channel of the colour filter at (y, x). */
static inline int cfa(int y, int x)
{
    return (y & 1) + (x & 1); /* 0 R, 1 G, 2 B */
}

/* Fill the border of the padded mosaic by reflection (keeps the Bayer phase). */
static void pad_mosaic(float *mos, int h, int w)
{
    int W = w + 2 * BAYER_PAD, H = h + 2 * BAYER_PAD;
    for (int y = 0; y < H; y++) {
        int sy = dae_reflect101(y - BAYER_PAD, h) + BAYER_PAD;
        for (int x = 0; x < W; x++) {
            int inside = y >= BAYER_PAD && y < h + BAYER_PAD && x >= BAYER_PAD &&
                         x < w + BAYER_PAD;
            if (!inside)
                mos[(size_t)y * W + x] =
                    mos[(size_t)sy * W + dae_reflect101(x - BAYER_PAD, w) + BAYER_PAD];
        }
    }
}

/* Malvar-He-Cutler (2004) 5x5 linear demosaicing, or bilinear, of the padded mosaic into
 * three planes. Kernels in eighths; p points at the pixel, W is the padded stride. */
static void demosaic_px(const float *p, int W, int site, int y_odd, int malvar, float out[3])
{
#define A(dy, dx) p[(dy) * W + (dx)]
    float cross = A(-1, 0) + A(1, 0) + A(0, -1) + A(0, 1);
    float diag = A(-1, -1) + A(-1, 1) + A(1, -1) + A(1, 1);
    float horiz = A(0, -1) + A(0, 1), vert = A(-1, 0) + A(1, 0);
    float g, row, col, dg; /* G at R/B; colour from the row / column neighbours; diagonal */
    if (malvar) {
        float far_h = A(0, -2) + A(0, 2), far_v = A(-2, 0) + A(2, 0);
        g = (4 * p[0] + 2 * cross - far_h - far_v) * 0.125f;
        row = (5 * p[0] + 4 * horiz - far_h - diag + 0.5f * far_v) * 0.125f;
        col = (5 * p[0] + 4 * vert - far_v - diag + 0.5f * far_h) * 0.125f;
        dg = (6 * p[0] + 2 * diag - 1.5f * (far_h + far_v)) * 0.125f;
    } else {
        g = 0.25f * cross;
        row = 0.5f * horiz;
        col = 0.5f * vert;
        dg = 0.25f * diag;
    }
#undef A
    if (site == 0) { /* R */
        out[0] = p[0], out[1] = g, out[2] = dg;
    } else if (site == 2) { /* B */
        out[0] = dg, out[1] = g, out[2] = p[0];
    } else if (!y_odd) { /* G on an R row: R left and right, B above and below */
        out[0] = row, out[1] = p[0], out[2] = col;
    } else { /* G on a B row */
        out[0] = col, out[1] = p[0], out[2] = row;
    }
}

/* ---- spatially correlated noise fields (camera width, correlated) ---- */

/* The normalised 1-D Gaussian of width s (k[0..2 rad]); returns rad (0: the identity). */
static int gauss_kernel(double s, float k[2 * CORR_MAX_RADIUS + 1])
{
    int rad = s > 0 ? (int)ceil(3.0 * s) : 0;
    if (rad > CORR_MAX_RADIUS)
        rad = CORR_MAX_RADIUS;
    double ks = 0.0;
    for (int i = -rad; i <= rad; i++)
        ks += k[i + rad] = rad ? (float)exp(-0.5 * i * i / (s * s)) : 1.0f;
    for (int i = 0; i <= 2 * rad; i++)
        k[i] = (float)(k[i] / ks);
    return rad;
}

/* out (rows, w) = the rows of field (stride fw = w + 2 rad) convolved with k. */
static void hblur(const float *field, int fw, int rows, int w, const float *k, int rad,
                  float *out)
{
    for (int y = 0; y < rows; y++)
        for (int x = 0; x < w; x++) {
            const float *f = field + (size_t)y * fw + x;
            float acc = 0.0f;
            for (int t = 0; t <= 2 * rad; t++)
                acc += k[t] * f[t];
            out[(size_t)y * w + x] = acc;
        }
}

/* plane (h, w) blurred in place by the Gaussian of width s, borders reflected (101). */
static void blur_plane(dae_photonoise *g, float *plane, double s)
{
    const int h = g->h, w = g->w;
    float k[2 * CORR_MAX_RADIUS + 1];
    const int rad = gauss_kernel(s, k), FW = w + 2 * rad;
    for (int y = 0; y < h; y++) /* horizontal, into field (h, FW) padded in x */
        for (int x = 0; x < FW; x++)
            g->field[(size_t)y * FW + x] = plane[(size_t)y * w + dae_reflect101(x - rad, w)];
    hblur(g->field, FW, h, w, k, rad, g->tmp);
    for (int y = 0; y < h; y++) /* vertical, back into plane */
        for (int x = 0; x < w; x++) {
            float acc = 0.0f;
            for (int t = -rad; t <= rad; t++)
                acc += k[t + rad] * g->tmp[(size_t)dae_reflect101(y + t, h) * w + x];
            plane[(size_t)y * w + x] = acc;
        }
}

/* The camera output's noise (out - clean, 3 planes; a gray clean is one plane) blurred per
 * channel by the Gaussian of width s; the result clipped to [0,1]. */
static void blur_noise(dae_photonoise *g, float *out, const float *clean, double s)
{
    const size_t hw = (size_t)g->h * g->w;
    for (int ch = 0; ch < 3; ch++) {
        float *o = out + (size_t)ch * hw;
        const float *c = clean + (g->c == 3 ? (size_t)ch * hw : 0);
        for (size_t i = 0; i < hw; i++)
            o[i] -= c[i];
        blur_plane(g, o, s);
        for (size_t i = 0; i < hw; i++)
            o[i] = clamp01(c[i] + o[i]);
    }
}

/* out (h, w) = white noise of the padded field blurred by the Gaussian of width s, scaled
 * to standard deviation sd. */
static void correlated_field(dae_photonoise *g, dae_rng *r, double s, double sd, float *out)
{
    const int h = g->h, w = g->w;
    float k[2 * CORR_MAX_RADIUS + 1];
    const int rad = gauss_kernel(s, k);
    double k2 = 0.0;
    for (int i = 0; i <= 2 * rad; i++)
        k2 += (double)k[i] * k[i];
    const int FW = w + 2 * rad, FH = h + 2 * rad;
    normals(r, g->field, (size_t)FW * FH);
    hblur(g->field, FW, FH, w, k, rad, g->tmp);
    float scale = (float)(sd / k2); /* the 2-D kernel's L2 norm is k2 = sum k_i^2 */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float *f = g->tmp + (size_t)y * w + x;
            float acc = 0.0f;
            for (int t = 0; t <= 2 * rad; t++)
                acc += k[t] * f[(size_t)t * w];
            out[(size_t)y * w + x] = scale * acc;
        }
}

/* ---- camera: the pipeline ---- */

/* d = noisy - clean per pixel becomes Y + k (d - Y), Y its BT.709 luma; clipped. */
static void reduce_chroma(float *noisy, const float *clean, size_t hw, float k)
{
    for (size_t i = 0; i < hw; i++) {
        float d0 = noisy[i] - clean[i], d1 = noisy[hw + i] - clean[hw + i];
        float d2 = noisy[2 * hw + i] - clean[2 * hw + i];
        float y = 0.2125f * d0 + 0.7154f * d1 + 0.0721f * d2;
        noisy[i] = clamp01(clean[i] + y + k * (d0 - y));
        noisy[hw + i] = clamp01(clean[hw + i] + y + k * (d1 - y));
        noisy[2 * hw + i] = clamp01(clean[2 * hw + i] + y + k * (d2 - y));
    }
}

static double camera_noise(dae_photonoise *g, dae_rng *r, const dae_pnoise *m,
                           const float *clean, int quantize, float *noisy)
{
    const int h = g->h, w = g->w, W = w + 2 * BAYER_PAD;
    const size_t hw = (size_t)h * w;
    camera cam;
    draw_camera(r, m, &cam);
    /* clean sRGB -> linear (gray: R = G = B) */
    for (int ch = 0; ch < 3; ch++) {
        const float *s = clean + (g->c == 3 ? (size_t)ch * hw : 0);
        float *l = g->lin + (size_t)ch * hw;
        if (g->c == 1 && ch > 0) {
            memcpy(l, g->lin, hw * sizeof *l);
            continue;
        }
        for (size_t i = 0; i < hw; i++)
            l[i] = dae_photonoise_to_linear(s[i]);
    }
    /* the raw value under each colour filter sets that site's noise variance */
    normals(r, g->dem, hw); /* scratch: dem is filled by the demosaic below */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int k = cfa(y, x);
            const double *rc = cam.rgb2cam[k];
            double raw = (rc[0] * g->lin[i] + rc[1] * g->lin[hw + i] +
                          rc[2] * g->lin[2 * hw + i]) * cam.inv_gain[k];
            raw = raw < 0.0 ? 0.0 : (raw > 1.0 ? 1.0 : raw);
            g->mos[(size_t)(y + BAYER_PAD) * W + x + BAYER_PAD] =
                (float)sqrt(cam.shot * raw + cam.read) * g->dem[i];
        }
    pad_mosaic(g->mos, h, w);
    float *out = g->c == 3 ? noisy : g->out3;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float d[3];
            demosaic_px(g->mos + (size_t)(y + BAYER_PAD) * W + x + BAYER_PAD, W, cfa(y, x),
                        y & 1, m->demosaic == DAE_DEMOSAIC_MALVAR, d);
            double gd[3] = {d[0] * cam.gain[0], d[1] * cam.gain[1], d[2] * cam.gain[2]};
            for (int ch = 0; ch < 3; ch++) {
                const double *cr = cam.cam2rgb[ch];
                double nl = g->lin[ch * hw + i] + cr[0] * gd[0] + cr[1] * gd[1] + cr[2] * gd[2];
                out[ch * hw + i] = dae_photonoise_from_linear((float)nl);
            }
        }
    if (m->width_hi > 0.0f)
        blur_noise(g, out, clean, draw(r, m->width_lo, m->width_hi));
    if (g->c == 1)
        for (size_t i = 0; i < hw; i++)
            noisy[i] = 0.2125f * out[i] + 0.7154f * out[hw + i] + 0.0721f * out[2 * hw + i];
    else if (cam.chroma < 1.0f)
        reduce_chroma(noisy, clean, hw, cam.chroma);
    size_t n = (size_t)g->c * hw;
    if (quantize)
        dae_photo_quantize(noisy, n);
    return rms255(noisy, clean, n);
}

/* ---- correlated ---- */

static double correlated_noise(dae_photonoise *g, dae_rng *r, const dae_pnoise *m,
                               const float *clean, int quantize, float *noisy)
{
    double sigma = draw(r, m->lo, m->hi), width = draw(r, m->width_lo, m->width_hi);
    const size_t hw = (size_t)g->h * g->w;
    for (int ch = 0; ch < g->c; ch++) {
        if (ch == 0 || m->per_channel)
            correlated_field(g, r, width, sigma / 255.0, g->dem);
        for (size_t i = 0; i < hw; i++)
            noisy[ch * hw + i] = clean[ch * hw + i] + g->dem[i];
    }
    if (quantize)
        dae_photo_quantize(noisy, (size_t)g->c * hw);
    return sigma;
}

/* ---- applying ---- */

int dae_photonoise_apply_member(dae_photonoise *g, dae_rng *r, const dae_pnoise *m,
                                const float *clean, int quantize, float *noisy,
                                double *level)
{
    size_t n = (size_t)g->c * g->h * g->w;
    switch (m->kind) {
    case DAE_PNOISE_CAMERA:
        *level = camera_noise(g, r, m, clean, quantize, noisy);
        return DAE_OK;
    case DAE_PNOISE_CORRELATED:
        *level = correlated_noise(g, r, m, clean, quantize, noisy);
        return DAE_OK;
    case DAE_PNOISE_GAUSSIAN:
    default: {
        /* exactly the trainer's patch noise before noise sets (recipe.h patches) */
        double sg = draw(r, m->lo, m->hi);
        if (quantize) {
            dae_photo_add_noise(r, clean, n, (float)sg, noisy);
        } else {
            for (size_t i = 0; i < n; i++)
                noisy[i] = clean[i] + (float)(sg / 255.0) * dae_rng_normal(r);
        }
        *level = sg;
        return DAE_OK;
    }
    }
}

int dae_photonoise_jpeg(dae_photonoise *g, float *px, int quality, dae_error *err)
{
    return dae_jpeg_roundtrip_run(g->jpeg, px, quality, err);
}

int dae_photonoise_apply(dae_photonoise *g, dae_rng *r, const float *clean, int quantize,
                         float *noisy, double *level, dae_error *err)
{
    const dae_photonoise_set *s = &g->set;
    int idx = 0;
    if (s->n > 1) {
        double total = 0.0, u;
        for (int i = 0; i < s->n; i++)
            total += s->m[i].weight;
        u = dae_rng_uniform_d(r) * total;
        while (idx < s->n - 1 && u >= s->m[idx].weight)
            u -= s->m[idx++].weight;
    }
    dae_photonoise_apply_member(g, r, &s->m[idx], clean, quantize, noisy, level);
    if (s->jpeg_qhi > 0 && s->jpeg_p > 0 && dae_rng_uniform_d(r) < s->jpeg_p) {
        int q = s->jpeg_qlo + (int)dae_rng_below(r, (uint64_t)(s->jpeg_qhi - s->jpeg_qlo + 1));
        return dae_photonoise_jpeg(g, noisy, q, err);
    }
    return DAE_OK;
}

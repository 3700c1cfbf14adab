/* photo.c — photos of any size: area downscale, BT.709 luma, opponent colour space,
 * 8-bit Gaussian noise and the in-memory photo set used for patch training (photo.h). */
#include "daed/io/photo.h"

#include "daed/core/halfres.h"

#include <cjson/cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <turbojpeg.h>

int dae_color_space_from_name(const char *name)
{
    if (strcmp(name, "rgb") == 0)
        return DAE_COLOR_RGB;
    if (strcmp(name, "opponent") == 0)
        return DAE_COLOR_OPPONENT;
    return -1;
}

const char *dae_color_space_name(dae_color_space cs)
{
    return cs == DAE_COLOR_OPPONENT ? "opponent" : "rgb";
}

void dae_color_to_space(float *px, size_t n, dae_color_space cs)
{
    if (cs != DAE_COLOR_OPPONENT)
        return;
    float *r = px, *g = px + n, *b = px + 2 * n;
    for (size_t i = 0; i < n; i++) {
        float R = r[i], G = g[i], B = b[i];
        r[i] = (R + G + B) * (1.0f / 3.0f);
        g[i] = (R - B + 1.0f) * 0.5f;
        b[i] = (R - 2.0f * G + B + 2.0f) * 0.25f;
    }
}

void dae_color_from_space(float *px, size_t n, dae_color_space cs)
{
    if (cs != DAE_COLOR_OPPONENT)
        return;
    float *u0 = px, *u1 = px + n, *u2 = px + 2 * n;
    for (size_t i = 0; i < n; i++) {
        /* z1/sqrt2 and z2/sqrt6 of A^T z, in the scaled units */
        float y = u0[i], c1 = u1[i] - 0.5f, c2 = (4.0f * u2[i] - 2.0f) * (1.0f / 6.0f);
        u0[i] = y + c1 + c2;
        u1[i] = y - 2.0f * c2;
        u2[i] = y - c1 + c2;
    }
}

float dae_color_noise_gain(dae_color_space cs, int ch)
{
    /* rows of the opponent transform above: (1,1,1)/3, (1,0,-1)/2, (1,-2,1)/4 */
    static const float opp[3] = {0.57735027f, 0.70710678f, 0.61237244f};
    return cs == DAE_COLOR_OPPONENT && ch >= 0 && ch < 3 ? opp[ch] : 1.0f;
}

/* ---- noise level estimate ---- */

#define EST_BINS (4 * 4080 + 1) /* |mask response| on the 0-255 scale, in quarters */
#define EST_MAX_POSITIONS (1L << 22)

/* The mask response at (x, y) of one plane, on the 0-255 scale. */
static float mask_at(const float *p, const unsigned char *p8, int w, size_t i)
{
    if (p8) {
        const unsigned char *a = p8 + i - w, *b = p8 + i, *d = p8 + i + w;
        return (float)((a[-1] + a[1] + d[-1] + d[1]) - 2 * (a[0] + b[-1] + b[1] + d[0]) +
                       4 * b[0]);
    }
    const float *a = p + i - w, *b = p + i, *d = p + i + w;
    return 255.0f * ((a[-1] + a[1] + d[-1] + d[1]) - 2.0f * (a[0] + b[-1] + b[1] + d[0]) +
                     4.0f * b[0]);
}

/* Count one mask response (0-255 scale) in the histogram of |response| in quarters. */
static void hist_add(unsigned *hist, float response)
{
    float v = fabsf(response) * 4.0f + 0.5f;
    hist[v < EST_BINS - 1 ? (int)v : EST_BINS - 1]++; /* NaN -> the last bin */
}

/* The histogram's median over n counts / (6 * 0.6745): the estimate. */
static double hist_sigma(const unsigned *hist, long n)
{
    long half = (n + 1) / 2, seen = 0;
    int b = 0;
    while (b < EST_BINS - 1 && (seen += hist[b]) < half)
        b++;
    return b / 4.0 / (6.0 * 0.6745);
}

/* One plane's estimate: the histogram's median of |response| / (6 * 0.6745). */
static double plane_estimate(const float *p, const unsigned char *p8, int w, int h,
                             unsigned *hist)
{
    memset(hist, 0, EST_BINS * sizeof *hist);
    long inner = (long)(w - 2) * (h - 2), step = 1 + inner / EST_MAX_POSITIONS, n = 0;
    for (long y = 1; y < h - 1; y += step)
        for (long x = 1; x < w - 1; x++, n++)
            hist_add(hist, mask_at(p, p8, w, (size_t)y * w + x));
    return hist_sigma(hist, n);
}

double dae_noise_estimate(const float *px, const unsigned char *px8, int w, int h, int c)
{
    if (w < 3 || h < 3 || c < 1 || (!px && !px8))
        return 0.0;
    unsigned *hist = malloc(EST_BINS * sizeof *hist);
    if (!hist)
        return -1.0;
    double sum = 0.0;
    size_t n = (size_t)w * h;
    for (int ch = 0; ch < c; ch++)
        sum += plane_estimate(px ? px + ch * n : NULL, px8 ? px8 + ch * n : NULL, w, h, hist);
    free(hist);
    return sum / c;
}

/* plane_estimate of the plane's half, made three rows at a time into rows (3 x its width):
 * no half plane is held (a 12 Mpx photo's would be 12 MB a channel). */
static double coarse_plane_estimate(const float *p, const unsigned char *p8, int w, int h,
                                    unsigned *hist, float *rows)
{
    int hw = dae_half_side(w), hh = dae_half_side(h);
    memset(hist, 0, EST_BINS * sizeof *hist);
    long inner = (long)(hw - 2) * (hh - 2), step = 1 + inner / EST_MAX_POSITIONS, n = 0;
    for (long y = 1; y < hh - 1; y += step) {
        for (int k = 0; k < 3; k++)
            dae_plane_half_row(p, p8, w, h, (int)y - 1 + k, rows + (size_t)k * hw);
        for (long x = 1; x < hw - 1; x++, n++)
            hist_add(hist, mask_at(rows, NULL, hw, (size_t)hw + x));
    }
    return hist_sigma(hist, n);
}

double dae_noise_estimate_coarse(const float *px, const unsigned char *px8, int w, int h, int c)
{
    int hw = dae_half_side(w), hh = dae_half_side(h);
    if (hw < 3 || hh < 3 || c < 1 || (!px && !px8))
        return 0.0;
    unsigned *hist = malloc(EST_BINS * sizeof *hist);
    float *rows = malloc(3 * (size_t)hw * sizeof *rows);
    double sum = 0.0;
    size_t n = (size_t)w * h;
    for (int ch = 0; hist && rows && ch < c; ch++)
        sum += coarse_plane_estimate(px ? px + ch * n : NULL, px8 ? px8 + ch * n : NULL, w, h,
                                     hist, rows);
    int ok = hist && rows;
    free(hist);
    free(rows);
    return ok ? 2.0 * sum / c : -1.0;
}

int dae_image_to_luma709(dae_image *im, dae_error *err)
{
    if (!im->px || (im->c != 1 && im->c != 3))
        return dae_error_set(err, DAE_EINVAL, "image: has %d channels, expected 1 or 3",
                             im->c);
    if (im->c == 1)
        return DAE_OK;
    size_t n = (size_t)im->w * (size_t)im->h;
    const float *r = im->px, *g = r + n, *b = g + n;
    float *y = im->px; /* y[i] only overwrites r[i] after reading it */
    for (size_t i = 0; i < n; i++)
        y[i] = 0.2125f * r[i] + 0.7154f * g[i] + 0.0721f * b[i];
    float *shrunk = realloc(im->px, n * sizeof(float));
    if (shrunk)
        im->px = shrunk;
    im->c = 1;
    return DAE_OK;
}

/* Area taps of one axis: output i covers source [i*s, (i+1)*s), s = src_n/dst_n. */
typedef struct {
    int first, count; /* source indices first .. first+count-1 */
    int woff;         /* into the weight array */
} area_span;

static int area_spans(int dst_n, int src_n, area_span **spans, float **weights)
{
    double s = (double)src_n / (double)dst_n;
    int maxc = (int)ceil(s) + 2;
    *spans = malloc((size_t)dst_n * sizeof **spans);
    *weights = malloc((size_t)dst_n * (size_t)maxc * sizeof **weights);
    if (!*spans || !*weights)
        return -1;
    int wo = 0;
    for (int i = 0; i < dst_n; i++) {
        double a = i * s, b = (i + 1) * s;
        if (b > src_n)
            b = src_n;
        int f = (int)floor(a);
        area_span *sp = &(*spans)[i];
        sp->first = f;
        sp->woff = wo;
        sp->count = 0;
        for (int k = f; k < src_n && k < b; k++) {
            double lo = k > a ? k : a, hi = k + 1 < b ? k + 1 : b;
            if (hi - lo <= 1e-12)
                continue;
            if (sp->count == 0)
                sp->first = k;
            (*weights)[wo++] = (float)((hi - lo) / s);
            sp->count++;
        }
    }
    return 0;
}

int dae_image_area_downscale(const dae_image *src, int w, int h, dae_image *dst,
                             dae_error *err)
{
    memset(dst, 0, sizeof *dst);
    if (!src->px || w < 1 || h < 1 || w > src->w || h > src->h)
        return dae_error_set(err, DAE_EINVAL, "area downscale: %dx%d to %dx%d, expected a "
                             "non-empty source and a size no larger", src->w, src->h, w, h);
    area_span *xs = NULL, *ys = NULL;
    float *xw = NULL, *yw = NULL, *tmp = NULL;
    int rc = DAE_OK;
    if (area_spans(w, src->w, &xs, &xw) || area_spans(h, src->h, &ys, &yw) ||
        !(tmp = malloc((size_t)w * (size_t)src->h * sizeof *tmp))) {
        rc = dae_error_set(err, DAE_ENOMEM, "area downscale: out of memory");
        goto done;
    }
    if ((rc = dae_image_alloc(dst, w, h, src->c, 0, err)))
        goto done;
    size_t sn = (size_t)src->w * src->h, dn = (size_t)w * h;
    for (int ch = 0; ch < src->c; ch++) {
        const float *s = src->px + ch * sn;
        for (int y = 0; y < src->h; y++) { /* horizontal pass: (src->h, w) */
            const float *row = s + (size_t)y * src->w;
            for (int x = 0; x < w; x++) {
                const area_span *sp = &xs[x];
                double acc = 0.0;
                for (int k = 0; k < sp->count; k++)
                    acc += (double)xw[sp->woff + k] * row[sp->first + k];
                tmp[(size_t)y * w + x] = (float)acc;
            }
        }
        float *d = dst->px + ch * dn;
        for (int y = 0; y < h; y++) { /* vertical pass */
            const area_span *sp = &ys[y];
            for (int x = 0; x < w; x++) {
                double acc = 0.0;
                for (int k = 0; k < sp->count; k++)
                    acc += (double)yw[sp->woff + k] * tmp[(size_t)(sp->first + k) * w + x];
                d[(size_t)y * w + x] = (float)acc;
            }
        }
    }
done:
    free(xs);
    free(ys);
    free(xw);
    free(yw);
    free(tmp);
    return rc;
}

int dae_photo_prepare(dae_image *im, int gray, int shortside, dae_error *err)
{
    if (gray && dae_image_to_luma709(im, err))
        return err ? err->code : DAE_EINVAL;
    int s = im->w < im->h ? im->w : im->h;
    if (shortside > 0 && shortside < s) {
        dae_image small = {0};
        double f = (double)shortside / s;
        int w = (int)lround(im->w * f), h = (int)lround(im->h * f);
        if (dae_image_area_downscale(im, w < 1 ? 1 : w, h < 1 ? 1 : h, &small, err)) {
            dae_image_free(&small);
            return err ? err->code : DAE_EINVAL;
        }
        dae_image_free(im);
        *im = small;
    }
    free(im->alpha);
    im->alpha = NULL;
    dae_photo_quantize(im->px, (size_t)im->c * im->w * im->h);
    return DAE_OK;
}

int dae_photo_chroma_half(dae_image *im, int k, dae_error *err)
{
    if (k < 1 || k > 2)
        return dae_error_set(err, DAE_EINVAL, "chroma: channel %d, expected 1 or 2", k);
    if (im->c == 1 && dae_image_to_channels(im, 3, err) != DAE_OK) /* flat chroma */
        return err ? err->code : DAE_ENOMEM;
    size_t plane = (size_t)im->w * im->h;
    int hw = dae_half_side(im->w), hh = dae_half_side(im->h);
    float *half = malloc((size_t)hw * hh * sizeof *half);
    if (!half)
        return dae_error_set(err, DAE_ENOMEM, "out of memory for a %dx%d plane", hw, hh);
    dae_color_to_space(im->px, plane, DAE_COLOR_OPPONENT);
    dae_plane_half(im->px + (size_t)k * plane, im->w, im->h, half);
    dae_photo_quantize(half, (size_t)hw * hh);
    free(im->px);
    free(im->alpha);
    im->px = half;
    im->alpha = NULL;
    im->w = hw;
    im->h = hh;
    im->c = 1;
    return DAE_OK;
}

void dae_photo_quantize(float *px, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = rintf(px[i] * 255.0f);
        v = v > 0.0f ? v : 0.0f; /* NaN -> 0 */
        v = v < 255.0f ? v : 255.0f;
        px[i] = v * (1.0f / 255.0f);
    }
}

void dae_photo_add_noise(dae_rng *r, const float *clean, size_t n, float sigma255, float *out)
{
    float s = sigma255 / 255.0f;
    for (size_t i = 0; i < n; i++)
        out[i] = clean[i] + s * dae_rng_normal(r);
    dae_photo_quantize(out, n);
}

/* "chroma_half" of a config whose colour space and per_channel f already holds. */
static int chroma_half_parse(const cJSON *cfg, dae_photo_facts *f, dae_error *err)
{
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(cfg, "chroma_half");
    if (ch && !cJSON_IsBool(ch))
        return dae_error_set(err, DAE_EINVAL, "config chroma_half: expected true or false");
    if (!cJSON_IsTrue(ch))
        return DAE_OK;
    if (!f->per_channel || f->cs != DAE_COLOR_OPPONENT)
        return dae_error_set(err, DAE_EINVAL, "config chroma_half: needs \"per_channel\": "
                             "true and \"color_space\": \"opponent\"");
    f->chroma_half = 1;
    return DAE_OK;
}

/* "sigma_range" [lo, hi], which replaces the trained range in f for routing. */
static int sigma_range_parse(const cJSON *cfg, dae_photo_facts *f, dae_error *err)
{
    const cJSON *sr = cJSON_GetObjectItemCaseSensitive(cfg, "sigma_range");
    if (!sr)
        return DAE_OK;
    const cJSON *lo = cJSON_GetArrayItem(sr, 0), *hi = cJSON_GetArrayItem(sr, 1);
    if (!cJSON_IsArray(sr) || cJSON_GetArraySize(sr) != 2 || !cJSON_IsNumber(lo) ||
        !cJSON_IsNumber(hi) || !(lo->valuedouble >= 0.0) || !(hi->valuedouble <= 255.0) ||
        lo->valuedouble > hi->valuedouble)
        return dae_error_set(err, DAE_EINVAL, "config sigma_range: expected [lo, hi] with "
                             "0 <= lo <= hi <= 255");
    f->sigma_lo = lo->valuedouble;
    f->sigma_hi = hi->valuedouble;
    return DAE_OK;
}

int dae_photo_facts_parse(const char *config_json, int model_channels, dae_photo_facts *f,
                          dae_error *err)
{
    memset(f, 0, sizeof *f);
    f->channels = model_channels;
    f->sigma_hi = -1;
    cJSON *cfg = config_json ? cJSON_Parse(config_json) : NULL;
    int rc = DAE_OK;
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(cfg, "color_space");
    if (cs && (!cJSON_IsString(cs) || dae_color_space_from_name(cs->valuestring) < 0)) {
        rc = dae_error_set(err, DAE_EINVAL, "config color_space: expected \"rgb\" or "
                           "\"opponent\"");
        goto done;
    }
    if (cs)
        f->cs = (dae_color_space)dae_color_space_from_name(cs->valuestring);
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(cfg, "per_channel");
    if (pc && !cJSON_IsBool(pc)) {
        rc = dae_error_set(err, DAE_EINVAL, "config per_channel: expected true or false");
        goto done;
    }
    if (cJSON_IsTrue(pc)) {
        if (model_channels != 1) {
            rc = dae_error_set(err, DAE_EINVAL, "config per_channel: the model has %d input "
                               "channels, expected 1", model_channels);
            goto done;
        }
        f->per_channel = 1;
        f->channels = 3;
    }
    if (chroma_half_parse(cfg, f, err) != DAE_OK) {
        rc = err ? err->code : DAE_EINVAL;
        goto done;
    }
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(cfg, "without_sigma");
    if (ws && (!cJSON_IsString(ws) || (strcmp(ws->valuestring, "blind") &&
                                       strcmp(ws->valuestring, "estimate")))) {
        rc = dae_error_set(err, DAE_EINVAL, "config without_sigma: expected \"blind\" or "
                           "\"estimate\"");
        goto done;
    }
    f->blind_default = ws && !strcmp(ws->valuestring, "blind");
    const cJSON *corr = cJSON_GetObjectItemCaseSensitive(cfg, "corruption");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(corr, "type");
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(corr, "sigma");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "gaussian255") &&
        cJSON_GetArraySize(sg) == 2 && cJSON_IsNumber(cJSON_GetArrayItem(sg, 0)) &&
        cJSON_IsNumber(cJSON_GetArrayItem(sg, 1))) {
        f->sigma_lo = cJSON_GetArrayItem(sg, 0)->valuedouble;
        f->sigma_hi = cJSON_GetArrayItem(sg, 1)->valuedouble;
    }
    rc = sigma_range_parse(cfg, f, err);
done:
    cJSON_Delete(cfg);
    return rc;
}

int dae_image_probe(const unsigned char *buf, size_t len, int *w, int *h, int *c,
                    dae_error *err)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 26 && memcmp(buf, sig, 8) == 0 && memcmp(buf + 12, "IHDR", 4) == 0) {
        uint32_t W = (uint32_t)buf[16] << 24 | (uint32_t)buf[17] << 16 | buf[18] << 8 | buf[19];
        uint32_t H = (uint32_t)buf[20] << 24 | (uint32_t)buf[21] << 16 | buf[22] << 8 | buf[23];
        if (W < 1 || H < 1 || W > INT32_MAX || H > INT32_MAX)
            return dae_error_set(err, DAE_EFORMAT, "png: bad size %ux%u in IHDR", W, H);
        *w = (int)W;
        *h = (int)H;
        *c = (buf[25] == 0 || buf[25] == 4) ? 1 : 3; /* gray, gray+alpha; else colour */
        return DAE_OK;
    }
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) {
        tjhandle tj = tjInitDecompress();
        int W = 0, H = 0, sub = -1, cs = -1, rc = DAE_OK;
        if (!tj)
            return dae_error_set(err, DAE_ENOMEM, "jpeg: %s", tjGetErrorStr2(NULL));
        if (len > ULONG_MAX ||
            tjDecompressHeader3(tj, buf, (unsigned long)len, &W, &H, &sub, &cs) || W < 1 ||
            H < 1)
            rc = dae_error_set(err, DAE_EFORMAT, "jpeg: bad header");
        tjDestroy(tj);
        if (rc)
            return rc;
        *w = W;
        *h = H;
        *c = cs == TJCS_GRAY ? 1 : 3;
        return DAE_OK;
    }
    return dae_error_set(err, DAE_EFORMAT, "not a PNG or JPEG header");
}

/* ---- photo sets ---- */

dae_photoset *dae_photoset_create(int c, dae_error *err)
{
    if (c != 1 && c != 3) {
        dae_error_set(err, DAE_EINVAL, "photo set: %d channels, expected 1 or 3", c);
        return NULL;
    }
    dae_photoset *ps = calloc(1, sizeof *ps);
    if (!ps) {
        dae_error_set(err, DAE_ENOMEM, "photo set: out of memory");
        return NULL;
    }
    ps->c = c;
    return ps;
}

void dae_photoset_free(dae_photoset *ps)
{
    if (!ps)
        return;
    for (int i = 0; i < ps->n; i++) {
        dae_image_free(&ps->im[i]);
        free(ps->names[i]);
    }
    free(ps->im);
    free(ps->names);
    free(ps->cum);
    free(ps);
}

int dae_photoset_add(dae_photoset *ps, dae_image *im, const char *name, dae_error *err)
{
    if (im->c != ps->c)
        return dae_error_set(err, DAE_EINVAL, "photo set: %s has %d channels, expected %d",
                             name, im->c, ps->c);
    int n = ps->n + 1;
    dae_image *ims = realloc(ps->im, (size_t)n * sizeof *ims);
    if (ims)
        ps->im = ims;
    char **names = realloc(ps->names, (size_t)n * sizeof *names);
    if (names)
        ps->names = names;
    double *cum = realloc(ps->cum, (size_t)n * sizeof *cum);
    if (cum)
        ps->cum = cum;
    char *nm = strdup(name);
    if (!ims || !names || !cum || !nm) {
        free(nm);
        return dae_error_set(err, DAE_ENOMEM, "photo set: out of memory at %s", name);
    }
    ps->im[ps->n] = *im;
    ps->names[ps->n] = nm;
    ps->cum[ps->n] = (ps->n ? ps->cum[ps->n - 1] : 0.0) + (double)im->w * (double)im->h;
    ps->n = n;
    memset(im, 0, sizeof *im);
    return DAE_OK;
}

double dae_photoset_pixels(const dae_photoset *ps)
{
    return ps->n ? ps->cum[ps->n - 1] : 0.0;
}

static int is_photo_name(const char *s)
{
    size_t l = strlen(s);
    return (l > 4 && (strcasecmp(s + l - 4, ".png") == 0 || strcasecmp(s + l - 4, ".jpg") == 0)) ||
           (l > 5 && strcasecmp(s + l - 5, ".jpeg") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

dae_photoset *dae_photoset_load_dir(const char *dir, int channels, int min_side,
                                    int max_images, const dae_image_limits *lim,
                                    dae_error *err)
{
    dae_photoset *ps = dae_photoset_create(channels, err);
    char **names = NULL;
    int nn = 0, cap = 0;
    dae_image im = {0};
    DIR *d = NULL;
    if (!ps)
        return NULL;
    if (!(d = opendir(dir))) {
        dae_error_set(err, errno == ENOENT ? DAE_ENOTFOUND : DAE_EIO, "%s: %s", dir,
                      strerror(errno));
        goto fail;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !is_photo_name(e->d_name))
            continue;
        if (nn >= max_images) {
            dae_error_set(err, DAE_ELIMIT, "%s: more than %d photos", dir, max_images);
            goto fail;
        }
        if (nn == cap) {
            cap = cap ? 2 * cap : 64;
            char **v = realloc(names, (size_t)cap * sizeof *v);
            if (!v) {
                dae_error_set(err, DAE_ENOMEM, "%s: out of memory", dir);
                goto fail;
            }
            names = v;
        }
        if (!(names[nn] = strdup(e->d_name))) {
            dae_error_set(err, DAE_ENOMEM, "%s: out of memory", dir);
            goto fail;
        }
        nn++;
    }
    closedir(d);
    d = NULL;
    if (nn == 0) {
        dae_error_set(err, DAE_ENOTFOUND, "%s: no .png/.jpg photos", dir);
        goto fail;
    }
    qsort(names, (size_t)nn, sizeof *names, cmp_str);
    for (int i = 0; i < nn; i++) {
        char path[4096];
        int l = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (l < 0 || (size_t)l >= sizeof path) {
            dae_error_set(err, DAE_EINVAL, "%s/%s: path too long", dir, names[i]);
            goto fail;
        }
        if (dae_image_read_file(path, lim, &im, err))
            goto fail;
        if (im.w < min_side || im.h < min_side) {
            dae_error_set(err, DAE_ESHAPE, "%s: %dx%d, smaller than the %dx%d patches", path,
                          im.w, im.h, min_side, min_side);
            goto fail;
        }
        int rc = channels == 1 ? dae_image_to_luma709(&im, err)
                               : dae_image_to_channels(&im, 3, err);
        if (rc || dae_photoset_add(ps, &im, names[i], err))
            goto fail;
    }
    for (int i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    return ps;
fail:
    if (d)
        closedir(d);
    for (int i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    dae_image_free(&im);
    dae_photoset_free(ps);
    return NULL;
}

void dae_photoset_sample_patch(const dae_photoset *ps, dae_rng *r, int p, int augment,
                               float *out)
{
    double u = dae_rng_uniform_d(r) * dae_photoset_pixels(ps);
    int lo = 0, hi = ps->n - 1; /* first index with cum > u */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ps->cum[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    const dae_image *im = &ps->im[lo];
    int y0 = (int)dae_rng_below(r, (uint64_t)(im->h - p + 1));
    int x0 = (int)dae_rng_below(r, (uint64_t)(im->w - p + 1));
    int t = augment ? (int)dae_rng_below(r, 8) : 0; /* bit 2: transpose, 1: flip y, 0: flip x */
    size_t plane = (size_t)im->w * im->h;
    for (int ch = 0; ch < im->c; ch++) {
        const float *s = im->px + ch * plane + (size_t)y0 * im->w + x0;
        float *o = out + (size_t)ch * p * p;
        for (int y = 0; y < p; y++)
            for (int x = 0; x < p; x++) {
                int sy = t & 4 ? x : y, sx = t & 4 ? y : x;
                if (t & 2)
                    sy = p - 1 - sy;
                if (t & 1)
                    sx = p - 1 - sx;
                o[y * p + x] = s[(size_t)sy * im->w + sx];
            }
    }
}

/* parse.c — request bodies on the worker side: PNG, JPEG, JSON pixel and base64 images,
 * masks, latent codes; checked against the caps and fitted to the model's input. */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/json.h"
#include "daed/io/base64.h"
#include "daed/io/photo.h"
#include "internal.h"

cJSON *dae_parse_json_body(dae_req *r, dae_error *err)
{
    const dae_serve_config *c = &r->s->cfg;
    dae_json_limits lim = {c->max_json_depth, c->max_json_array, c->max_json_values};
    /* Strict RFC 8259 first: cJSON alone accepts 028, "2.", raw tabs in strings, ... */
    if (dae_json_check(r->body, r->len, &lim, err) != DAE_OK)
        return NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(r->body, r->len, NULL, 0);
    if (!j) {
        dae_error_set(err, DAE_ENOMEM, "out of memory parsing a %zu-byte JSON body", r->len);
        return NULL;
    }
    int oom;
    const char *dup = dae_json_duplicate_key(j, &oom);
    if (dup || oom) {
        if (oom)
            dae_error_set(err, DAE_ENOMEM, "out of memory checking JSON keys");
        else
            dae_error_set(err, DAE_EFORMAT, "invalid JSON: duplicate key \"%.64s\"", dup);
        cJSON_Delete(j);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        dae_error_set(err, DAE_EINVAL, "the JSON body must be an object");
        return NULL;
    }
    return j;
}

/* A positive integer member within [1, max]. */
static int json_int(const cJSON *o, const char *key, int max, int *out, dae_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return dae_error_set(err, DAE_EINVAL, "\"%s\": expected an integer", key);
    double d = v->valuedouble;
    if (d != floor(d) || d < 1 || d > max)
        return dae_error_set(err, d > max ? DAE_ELIMIT : DAE_EINVAL,
                             "\"%s\": %g, expected an integer from 1 to %d", key, d, max);
    *out = (int)d;
    return DAE_OK;
}

/* Copy a JSON array of n numbers in [lo, hi] into dst (PIXELS: any finite float). */
#define PIXELS -FLT_MAX, FLT_MAX
static int json_floats(const cJSON *a, const char *what, size_t n, double lo, double hi,
                       float *dst, dae_error *err)
{
    if (!cJSON_IsArray(a))
        return dae_error_set(err, DAE_EINVAL, "\"%s\": expected an array of numbers", what);
    size_t i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++) {
        if (i >= n)
            return dae_error_set(err, DAE_EINVAL, "\"%s\": more than %zu values", what, n);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
            if (hi >= FLT_MAX) /* NaN and infinity (1e999 parses to inf), or not a number */
                return dae_error_set(err, DAE_EINVAL, "\"%s\"[%zu]: expected a finite "
                                     "number", what, i);
            return dae_error_set(err, DAE_EINVAL, "\"%s\"[%zu]: expected a number in "
                                 "[%g, %g]", what, i, lo, hi);
        }
        dst[i] = (float)v->valuedouble;
    }
    if (i != n)
        return dae_error_set(err, DAE_EINVAL, "\"%s\": %zu values, expected %zu", what, i, n);
    return DAE_OK;
}

/* Known-pixel mask from an alpha plane: alpha >= 0.5 is known. */
static float *mask_from(const float *src, size_t n)
{
    float *m = malloc(n * sizeof *m);
    for (size_t i = 0; m && i < n; i++)
        m[i] = src[i] >= 0.5f ? 1.0f : 0.0f;
    return m;
}

/* One image from a JSON object: {"png"|"jpeg": base64} or {"width","height","channels",
 * "pixels"}, with an optional "mask". */
static int json_image(dae_req *r, const cJSON *o, size_t budget, dae_image *im, float **mask,
                      int *form, dae_error *err)
{
    dae_server *s = r->s;
    dae_image_limits lim = s->img_lim;
    lim.max_pixels = budget;
    if (!cJSON_IsObject(o))
        return dae_error_set(err, DAE_EINVAL, "an image must be a JSON object");
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(o, "png");
    if (!b64)
        b64 = cJSON_GetObjectItemCaseSensitive(o, "jpeg");
    if (!b64)
        b64 = cJSON_GetObjectItemCaseSensitive(o, "image");
    if (b64) {
        if (!cJSON_IsString(b64))
            return dae_error_set(err, DAE_EINVAL, "\"png\": expected a base64 string");
        unsigned char *bytes = NULL;
        size_t n = 0;
        int rc = dae_base64_decode(b64->valuestring, strlen(b64->valuestring), &bytes, &n, err);
        if (rc != DAE_OK) {
            dae_error_prefix(err, "\"png\": bad base64: ");
            return DAE_EFORMAT;
        }
        rc = dae_image_decode(bytes, n, &lim, im, err);
        free(bytes);
        if (rc != DAE_OK)
            return rc;
        *form = 2;
    } else {
        int w, h, c;
        if (json_int(o, "width", s->cfg.max_side, &w, err) ||
            json_int(o, "height", s->cfg.max_side, &h, err) ||
            json_int(o, "channels", 3, &c, err))
            return err ? err->code : DAE_EINVAL;
        if (c == 2)
            return dae_error_set(err, DAE_EINVAL, "\"channels\": 2, expected 1 or 3");
        if ((size_t)w * (size_t)h > budget)
            return dae_error_set(err, DAE_ELIMIT, "image of %dx%d = %zu pixels exceeds the "
                                 "%zu pixels left of the request's limit of %zu "
                                 "(--max-pixels)", w, h, (size_t)w * (size_t)h, budget,
                                 s->cfg.max_pixels);
        const cJSON *px = cJSON_GetObjectItemCaseSensitive(o, "pixels");
        if (!px)
            return dae_error_set(err, DAE_EINVAL, "an image needs \"pixels\" (with \"width\", "
                                 "\"height\", \"channels\") or \"png\" (base64)");
        if (dae_image_alloc(im, w, h, c, 0, err) != DAE_OK)
            return err ? err->code : DAE_ENOMEM;
        if (json_floats(px, "pixels", (size_t)w * h * c, PIXELS, im->px, err) != DAE_OK) {
            dae_image_free(im);
            return DAE_EINVAL;
        }
        *form = 1;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mask");
    if (m && mask) {
        size_t n = (size_t)im->w * im->h;
        float *tmp = malloc(n * sizeof *tmp);
        if (!tmp) {
            dae_image_free(im);
            return dae_error_set(err, DAE_ENOMEM, "no memory for the mask");
        }
        if (json_floats(m, "mask", n, 0.0, 1.0, tmp, err) != DAE_OK) {
            free(tmp);
            dae_image_free(im);
            return DAE_EINVAL;
        }
        *mask = mask_from(tmp, n);
        free(tmp);
    }
    return DAE_OK;
}

/* A raw body held as 8-bit: decoded to 8-bit planes (1-2 bytes a value at the peak, not
 * 5), w->orig[0] its size only. */
static int decode_8bit(dae_req *r, work *w, dae_error *err)
{
    w->orig8 = calloc(1, sizeof *w->orig8);
    if (!w->orig8)
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    dae_image8 *im = &w->orig8[0];
    int rc = dae_image_decode8((const unsigned char *)r->body, r->len, &r->s->img_lim, im,
                               err);
    if (rc == DAE_OK)
        w->orig[0] = (dae_image){.w = im->w, .h = im->h, .c = im->c};
    return rc;
}

int dae_work_to_float(work *w, dae_error *err)
{
    if (!w->orig8)
        return DAE_OK;
    int rc = DAE_OK;
    for (int i = 0; i < w->n; i++)
        if (rc == DAE_OK)
            rc = dae_image8_to_float(&w->orig8[i], &w->orig[i], err);
        else
            dae_image8_free(&w->orig8[i]);
    free(w->orig8);
    w->orig8 = NULL;
    return rc;
}

/* The request's images into w->orig (and masks): raw PNG/JPEG body or JSON. */
static int parse_images(dae_req *r, work *w, int want_mask, int exact, dae_error *err)
{
    dae_server *s = r->s;
    int body_json = r->is_json || (r->len && r->body[0] == '{');
    if (!body_json) {
        if (exact > 1)
            return dae_error_set(err, DAE_EINVAL, "expected JSON {\"images\": [%d images], "
                                 "\"steps\": n}", exact);
        w->n = 1;
        w->orig = calloc(1, sizeof *w->orig);
        w->mask = calloc(1, sizeof *w->mask);
        if (!w->orig || !w->mask)
            return dae_error_set(err, DAE_ENOMEM, "out of memory");
        w->form = 0;
        if (dae_tiles_8bit(r))
            return decode_8bit(r, w, err);
        return dae_image_decode((const unsigned char *)r->body, r->len, &s->img_lim,
                                &w->orig[0], err);
    }
    cJSON *j = dae_parse_json_body(r, err);
    if (!j)
        return err ? err->code : DAE_EFORMAT;
    int rc = DAE_OK;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "images");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(j, "steps");
    if (steps && !r->steps) {
        if (json_int(j, "steps", s->cfg.max_steps, &w->steps, err) != DAE_OK ||
            w->steps < 2) {
            rc = dae_error_set(err, DAE_EINVAL, "\"steps\": expected 2 to %d",
                               s->cfg.max_steps);
            goto out;
        }
    }
    int n = 1;
    if (list) {
        if (!cJSON_IsArray(list)) {
            rc = dae_error_set(err, DAE_EINVAL, "\"images\": expected an array");
            goto out;
        }
        n = cJSON_GetArraySize(list);
        if (n < 1 || n > s->cfg.max_batch_images) {
            rc = dae_error_set(err, DAE_EINVAL, "\"images\": %d images, expected 1 to %d "
                               "(--max-batch-images)", n, s->cfg.max_batch_images);
            goto out;
        }
        if (exact && n != exact) {
            rc = dae_error_set(err, DAE_EINVAL, "\"images\": %d images, expected %d", n,
                               exact);
            goto out;
        }
        w->batched = 1;
    } else if (exact > 1) {
        rc = dae_error_set(err, DAE_EINVAL, "expected {\"images\": [%d images]}", exact);
        goto out;
    }
    w->n = n;
    w->orig = calloc((size_t)n, sizeof *w->orig);
    w->mask = calloc((size_t)n, sizeof *w->mask);
    if (!w->orig || !w->mask) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory for %d images", n);
        goto out;
    }
    const cJSON *item = list ? list->child : j;
    /* --max-pixels bounds the decoded pixels of the whole request, so a batch of small
     * files cannot decode into gigabytes. */
    size_t budget = s->cfg.max_pixels;
    for (int i = 0; i < n; i++, item = item ? item->next : NULL) {
        int form = 0;
        rc = json_image(r, item, budget, &w->orig[i], want_mask ? &w->mask[i] : NULL, &form,
                        err);
        if (rc != DAE_OK) {
            if (list)
                dae_error_prefix(err, "images[%d]: ", i);
            goto out;
        }
        budget -= (size_t)w->orig[i].w * (size_t)w->orig[i].h;
        w->form = form;
    }
out:
    cJSON_Delete(j);
    return rc;
}

/* Convert, check and (with ?resize=1) resize the images into the model input w->x. */
static int fit_images(dae_req *r, work *w, int zero_missing, dae_error *err)
{
    const dae_model *m = r->entry->mf->model;
    dae_shape in = {0, 0, 0};
    for (int i = 0; i < w->n; i++) {
        dae_image *im = &w->orig[i];
        if (dae_image_to_channels(im, m->in_shape.c, err) != DAE_OK)
            return err ? err->code : DAE_EINVAL;
        if (zero_missing && !w->mask[i] && im->alpha)
            w->mask[i] = mask_from(im->alpha, (size_t)im->w * im->h);
        if (zero_missing && !w->mask[i])
            return dae_error_set(err, DAE_EINVAL, "inpaint needs a mask: a PNG alpha channel "
                                 "(alpha 0 = missing pixel) or a JSON \"mask\" array of "
                                 "height*width values (0 = missing)");
        dae_shape s = {im->c, im->h, im->w};
        dae_error cerr = {0};
        int fits = dae_model_check_input(m, s, &cerr) == DAE_OK;
        dae_shape want = fits ? s : m->in_shape;
        if (!fits && !r->resize)
            return dae_error_set(err, DAE_ESHAPE, "image%s %dx%d does not fit model %s: %s "
                                 "(or add ?resize=1)", w->batched ? " in the batch" : "",
                                 im->w, im->h, r->entry->name, cerr.msg);
        if (i == 0) {
            in = want;
            if (dae_shape_size(in) > SIZE_MAX / sizeof(float) / (size_t)w->n)
                return dae_error_set(err, DAE_ELIMIT, "batch too large");
            w->x = malloc((size_t)w->n * dae_shape_size(in) * sizeof *w->x);
            if (!w->x)
                return dae_error_set(err, DAE_ENOMEM, "out of memory for the model input");
        } else if (!dae_shape_eq(in, want)) {
            return dae_error_set(err, DAE_EINVAL, "images[%d] is %dx%d but images[0] is "
                                 "%dx%d: the images of a batch must have one size (or add "
                                 "?resize=1)", i, want.w, want.h, in.w, in.h);
        }
        float *dst = w->x + (size_t)i * dae_shape_size(in);
        const float *msk = w->mask[i];
        dae_image tmp = {0};
        const dae_image *src = im;
        float *rmask = NULL;
        if (!fits) {
            if (dae_image_resize(im, in.w, in.h, &tmp, err) != DAE_OK)
                return err ? err->code : DAE_EINVAL;
            src = &tmp;
            w->resized = 1;
            if (msk) {
                /* The mask follows the image through the resize. */
                dae_image mi = {.w = im->w, .h = im->h, .c = 1, .px = (float *)msk};
                dae_image mo = {0};
                if (dae_image_resize(&mi, in.w, in.h, &mo, err) != DAE_OK) {
                    dae_image_free(&tmp);
                    return err ? err->code : DAE_EINVAL;
                }
                rmask = mask_from(mo.px, (size_t)in.w * in.h);
                dae_image_free(&mo);
                msk = rmask;
                if (!rmask) {
                    dae_image_free(&tmp);
                    return dae_error_set(err, DAE_ENOMEM, "out of memory");
                }
            }
        }
        memcpy(dst, src->px, dae_shape_size(in) * sizeof *dst);
        if (zero_missing) {
            size_t plane = (size_t)in.h * in.w;
            for (int c = 0; c < in.c; c++)
                for (size_t p = 0; p < plane; p++)
                    dst[c * plane + p] *= msk[p];
        }
        free(rmask);
        dae_image_free(&tmp);
    }
    w->in = in;
    return DAE_OK;
}

/* {"latent":[...]} or {"latents":[[...],...]}, optional "shape":[c,h,w]. */
static int parse_latents(dae_req *r, work *w, dae_error *err)
{
    const dae_model *m = r->entry->mf->model;
    if (!(r->is_json || (r->len && r->body[0] == '{')))
        return dae_error_set(err, DAE_EINVAL, "/v1/decode takes JSON: {\"latent\": [...]}");
    cJSON *j = dae_parse_json_body(r, err);
    if (!j)
        return err ? err->code : DAE_EFORMAT;
    int rc = DAE_OK;
    dae_shape zs = m->latent_shape;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    if (shape) {
        int d[3], k = 0;
        for (const cJSON *v = cJSON_IsArray(shape) ? shape->child : NULL; v; v = v->next, k++) {
            if (k >= 3 || !cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
                v->valuedouble < 1 || v->valuedouble > 65536) {
                k = -1;
                break;
            }
            d[k] = (int)v->valuedouble;
        }
        if (k != 3) {
            rc = dae_error_set(err, DAE_EINVAL, "\"shape\": expected [channels, height, width]");
            goto out;
        }
        zs = (dae_shape){d[0], d[1], d[2]};
        if (dae_shape_size(zs) > r->s->cfg.max_json_array) {
            rc = dae_error_set(err, DAE_ELIMIT, "\"shape\": too large");
            goto out;
        }
    }
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(j, "latent");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(j, "latents");
    if (!one && !many) {
        rc = dae_error_set(err, DAE_EINVAL, "expected {\"latent\": [%zu numbers]} or "
                           "{\"latents\": [[...], ...]}", dae_shape_size(zs));
        goto out;
    }
    int n = 1;
    if (many) {
        if (!cJSON_IsArray(many) || (n = cJSON_GetArraySize(many)) < 1 ||
            n > r->s->cfg.max_batch_images) {
            rc = dae_error_set(err, DAE_EINVAL, "\"latents\": expected an array of 1 to %d "
                               "codes", r->s->cfg.max_batch_images);
            goto out;
        }
        w->batched = 1;
    }
    size_t zn = dae_shape_size(zs);
    dae_shape img = dae_infer_ws_shape(m, OP_DECODE, zs);
    if ((size_t)n * (size_t)img.h * (size_t)img.w > r->s->cfg.max_pixels) {
        rc = dae_error_set(err, DAE_ELIMIT, "%d codes decode to %d images of %dx%d, more than "
                           "the limit of %zu pixels (--max-pixels)", n, n, img.w, img.h,
                           r->s->cfg.max_pixels);
        goto out;
    }
    w->n = n;
    w->x = malloc((size_t)n * zn * sizeof *w->x);
    if (!w->x) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory for %d codes", n);
        goto out;
    }
    const cJSON *item = many ? many->child : one;
    for (int i = 0; i < n; i++, item = item->next) {
        rc = json_floats(item, many ? "latents[i]" : "latent", zn, -1e30, 1e30,
                         w->x + (size_t)i * zn, err);
        if (rc != DAE_OK)
            goto out;
    }
    w->in = zs;
out:
    cJSON_Delete(j);
    return rc;
}

/* Image i's noise level estimate (photo.h), from its 8-bit or float planes; < 0: none. */
double dae_work_noise_estimate(const work *w, int i)
{
    const dae_image *im = &w->orig[i];
    const unsigned char *p8 = w->orig8 ? w->orig8[i].px : NULL;
    return dae_noise_estimate(p8 ? NULL : im->px, p8, im->w, im->h, im->c);
}

double dae_work_noise_estimate_coarse(const work *w, int i)
{
    const dae_image *im = &w->orig[i];
    const unsigned char *p8 = w->orig8 ? w->orig8[i].px : NULL;
    return dae_noise_estimate_coarse(p8 ? NULL : im->px, p8, im->w, im->h, im->c);
}

/* Without ?sigma=: the first image's white-noise estimate, and for one colour photo whose
 * noise reads as correlated (photo.h DAE_NOISE_CORR_RATIO) the level it is routed with. */
static int estimate_levels(dae_req *r, const work *w, dae_error *err)
{
    r->est_sigma = dae_work_noise_estimate(w, 0);
    r->est_c = w->orig[0].c;
    double coarse = w->n == 1 && r->est_c == 3 ? dae_work_noise_estimate_coarse(w, 0) : 0.0;
    if (r->est_sigma < 0 || coarse < 0)
        return dae_error_set(err, DAE_ENOMEM, "out of memory estimating the noise level");
    r->has_est = 1;
    r->correlated = r->est_sigma > 0 && coarse >= DAE_NOISE_CORR_RATIO * r->est_sigma;
    r->corr_level = r->correlated ? DAE_NOISE_CORR_GAIN * coarse : 0.0;
    return DAE_OK;
}

/* /v1/denoise without ?model=: the model for the decoded images (route.h), whatever
 * their encoding: the first image's size, colour if any image is colour; without
 * ?sigma=, the first image's estimated noise level is the hint. */
static int route_decoded(dae_req *r, const work *w, dae_error *err)
{
    int c = 1;
    for (int i = 0; i < w->n; i++)
        if (w->orig[i].c > c)
            c = w->orig[i].c;
    if (!r->has_sigma && estimate_levels(r, w, err) != DAE_OK)
        return err->code;
    return dae_v1_denoise_route(r, w->orig[0].w, w->orig[0].h, c, err);
}

int dae_parse_request(dae_req *r, work *w, dae_error *err)
{
    switch (r->route->id) {
    case DAE_ROUTE_V1_DENOISE:
        if (parse_images(r, w, 0, 0, err) != DAE_OK || dae_answer_precheck(r, w, err) != DAE_OK)
            return err->code;
        if (!r->model_name[0] && route_decoded(r, w, err) != DAE_OK)
            return err->code;
        if (dae_tiles_radius(r) >= 0)
            return dae_tiles_prepare(r, w, err);
        /* routed on the decoded image to a model that does not run in tiles */
        if (dae_work_to_float(w, err) != DAE_OK)
            return err->code;
        return fit_images(r, w, 0, err);
    case DAE_ROUTE_V1_SUPERRES:
        if (parse_images(r, w, 0, 0, err) != DAE_OK || dae_answer_precheck(r, w, err) != DAE_OK)
            return err->code;
        return fit_images(r, w, 0, err);
    case DAE_ROUTE_V1_SCORE:
    case DAE_ROUTE_V1_ENCODE:
        if (parse_images(r, w, 0, 0, err) != DAE_OK)
            return err->code;
        return fit_images(r, w, 0, err);
    case DAE_ROUTE_V1_INPAINT:
        if (parse_images(r, w, 1, 0, err) != DAE_OK || dae_answer_precheck(r, w, err) != DAE_OK)
            return err->code;
        return fit_images(r, w, 1, err);
    case DAE_ROUTE_V1_INTERPOLATE:
        if (parse_images(r, w, 0, 2, err) != DAE_OK)
            return err->code;
        if (r->steps)
            w->steps = r->steps;
        if (!w->steps)
            w->steps = 8;
        if (fit_images(r, w, 0, err) != DAE_OK)
            return err->code;
        if ((size_t)w->steps * (size_t)w->in.h * (size_t)w->in.w > r->s->cfg.max_pixels)
            return dae_error_set(err, DAE_ELIMIT, "%d steps of %dx%d exceed the limit of %zu "
                                 "pixels (--max-pixels)", w->steps, w->in.w, w->in.h,
                                 r->s->cfg.max_pixels);
        return DAE_OK;
    case DAE_ROUTE_V1_DECODE:
        return parse_latents(r, w, err);
    case DAE_ROUTE_V2_INFER:
        return dae_v2_prepare(r, w, err);
    default:
        return dae_error_set(err, DAE_EINTERNAL, "no worker action for %s", r->path);
    }
}

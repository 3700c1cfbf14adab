/* infer.c — the worker side of a request: parse the body (PNG, JPEG, JSON), fit it to the
 * model, run every waiting request of one model as one batch, and build the answers. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static size_t shape_vals(dae_shape s)
{
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

static int same_shape(dae_shape a, dae_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

static dae_shape ws_shape(const dae_model *m, int op, dae_shape in);

static void work_free(work *w)
{
    for (int i = 0; w->orig && i < w->n; i++)
        dae_image_free(&w->orig[i]);
    for (int i = 0; w->mask && i < w->n; i++)
        free(w->mask[i]);
    free(w->orig);
    free(w->mask);
    free(w->x);
    free(w->y);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------------ parsing */

cJSON *infer_parse_json(dae_req *r, dae_error *err)
{
    const dae_serve_config *c = &r->s->cfg;
    if (dae_json_scan(r->body, r->len, c->max_json_depth, c->max_json_array,
                      c->max_json_values, err) != DAE_OK)
        return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(r->body, r->len, &end, 0);
    if (!j) {
        size_t at = end && end >= r->body ? (size_t)(end - r->body) : 0;
        dae_error_set(err, DAE_EFORMAT, "malformed JSON at byte %zu of %zu", at, r->len);
        return NULL;
    }
    /* Only whitespace may follow the value. */
    for (const char *p = end; p && p < r->body + r->len; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(j);
            dae_error_set(err, DAE_EFORMAT, "malformed JSON: trailing data at byte %zu",
                          (size_t)(p - r->body));
            return NULL;
        }
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

/* Copy a JSON array of n numbers in [lo, hi] into dst. */
static int json_floats(const cJSON *a, const char *what, size_t n, double lo, double hi,
                       float *dst, dae_error *err)
{
    if (!cJSON_IsArray(a))
        return dae_error_set(err, DAE_EINVAL, "\"%s\": expected an array of numbers", what);
    size_t i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++) {
        if (i >= n)
            return dae_error_set(err, DAE_EINVAL, "\"%s\": more than %zu values", what, n);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
            return dae_error_set(err, DAE_EINVAL, "\"%s\"[%zu]: expected a number in "
                                 "[%g, %g]", what, i, lo, hi);
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
        if (json_floats(px, "pixels", (size_t)w * h * c, 0.0, 1.0, im->px, err) != DAE_OK) {
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
        int rc = dae_image_decode((const unsigned char *)r->body, r->len, &s->img_lim,
                                  &w->orig[0], err);
        if (rc != DAE_OK)
            return rc;
        w->form = 0;
        return DAE_OK;
    }
    cJSON *j = infer_parse_json(r, err);
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
            if (shape_vals(in) > SIZE_MAX / sizeof(float) / (size_t)w->n)
                return dae_error_set(err, DAE_ELIMIT, "batch too large");
            w->x = malloc((size_t)w->n * shape_vals(in) * sizeof *w->x);
            if (!w->x)
                return dae_error_set(err, DAE_ENOMEM, "out of memory for the model input");
        } else if (!same_shape(in, want)) {
            return dae_error_set(err, DAE_EINVAL, "images[%d] is %dx%d but images[0] is "
                                 "%dx%d: the images of a batch must have one size (or add "
                                 "?resize=1)", i, want.w, want.h, in.w, in.h);
        }
        float *dst = w->x + (size_t)i * shape_vals(in);
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
        memcpy(dst, src->px, shape_vals(in) * sizeof *dst);
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
    cJSON *j = infer_parse_json(r, err);
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
        if (shape_vals(zs) > r->s->cfg.max_json_array) {
            rc = dae_error_set(err, DAE_ELIMIT, "\"shape\": too large");
            goto out;
        }
    }
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(j, "latent");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(j, "latents");
    if (!one && !many) {
        rc = dae_error_set(err, DAE_EINVAL, "expected {\"latent\": [%zu numbers]} or "
                           "{\"latents\": [[...], ...]}", shape_vals(zs));
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
    size_t zn = shape_vals(zs);
    dae_shape img = ws_shape(m, OP_DECODE, zs);
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

static int prepare(dae_req *r, work *w, dae_error *err)
{
    switch (r->route->id) {
    case DAE_ROUTE_V1_DENOISE:
    case DAE_ROUTE_V1_SUPERRES:
    case DAE_ROUTE_V1_SCORE:
    case DAE_ROUTE_V1_ENCODE:
        if (parse_images(r, w, 0, 0, err) != DAE_OK)
            return err->code;
        return fit_images(r, w, 0, err);
    case DAE_ROUTE_V1_INPAINT:
        if (parse_images(r, w, 1, 0, err) != DAE_OK)
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
        return v2_prepare(r, w, err);
    default:
        return dae_error_set(err, DAE_EINTERNAL, "no worker action for %s", r->path);
    }
}

/* ------------------------------------------------------------------ running the model */

static float *stage_for(worker_ctx *wc, size_t n)
{
    if (n > wc->stage_cap) {
        float *p = realloc(wc->stage, n * sizeof *p);
        if (!p)
            return NULL;
        wc->stage = p;
        wc->stage_cap = n;
    }
    return wc->stage;
}

/* Samples per model call for this shape: max_batch at the nominal size, fewer for larger
 * inputs so a workspace never grows past max_batch nominal samples' worth. */
static int chunk_for(const dae_server *s, const dae_model *m, dae_shape in, int op)
{
    size_t nominal = shape_vals(m->in_shape);
    size_t have = shape_vals(ws_shape(m, op, in));
    size_t b = (size_t)s->cfg.max_batch;
    if (have > nominal && nominal)
        b = b * nominal / have;
    return b < 1 ? 1 : (int)b;
}

/* The input shape a workspace needs for this call: decoding a code of shape `in` needs
 * room for the image that code stands for. */
static dae_shape ws_shape(const dae_model *m, int op, dae_shape in)
{
    if (op != OP_DECODE)
        return in;
    dae_shape s = m->in_shape;
    if (m->fully_conv && m->latent_shape.h > 0 && m->latent_shape.w > 0) {
        s.h = (int)((long long)in.h * m->in_shape.h / m->latent_shape.h);
        s.w = (int)((long long)in.w * m->in_shape.w / m->latent_shape.w);
    }
    return s;
}

static int model_call(const dae_model *m, dae_workspace *ws, int op, const float *x, int b,
                      dae_shape in, const float **y, dae_shape *ys, dae_error *err)
{
    switch (op) {
    case OP_ENCODE: return dae_model_encode(m, ws, x, b, in, y, ys, err);
    case OP_DECODE: return dae_model_decode(m, ws, x, b, in, y, ys, err);
    default: return dae_model_forward(m, ws, x, b, in, y, ys, err);
    }
}

/* Run the samples of requests reqs[0..n) (one model, one op, one input shape) in chunks;
 * results land in each work's y. On failure, err is set for all. */
static int run_group(dae_server *s, int worker, dae_entry *e, int op, dae_req **reqs,
                     work **ws, int n, dae_error *err)
{
    const dae_model *m = e->mf->model;
    dae_shape in = ws[0]->in;
    size_t vin = shape_vals(in);
    int chunk = chunk_for(s, m, in, op);
    float *stage = stage_for(&s->wctx[worker], (size_t)chunk * vin);
    if (!stage)
        return dae_error_set(err, DAE_ENOMEM, "out of memory for a batch of %d", chunk);
    dae_workspace *wsp = dae_entry_workspace(e, worker, chunk, ws_shape(m, op, in), err);
    if (!wsp)
        return err->code;
    int ri = 0, si = 0; /* next sample to stage: request ri, sample si */
    while (ri < n) {
        int b = 0;
        int r0 = ri, s0 = si;
        while (ri < n && b < chunk) {
            memcpy(stage + (size_t)b * vin, ws[ri]->x + (size_t)si * vin, vin * sizeof *stage);
            b++;
            if (++si == ws[ri]->n) {
                ri++;
                si = 0;
            }
        }
        const float *y;
        dae_shape ys;
        int64_t t0 = dae_now_ns();
        int rc = model_call(m, wsp, op, stage, b, in, &y, &ys, err);
        dae_prom_batch(s->prom, b, (double)(dae_now_ns() - t0) / 1e9);
        if (rc != DAE_OK)
            return rc;
        size_t vout = shape_vals(ys);
        /* Scatter the outputs back to their requests. */
        int rj = r0, sj = s0;
        for (int k = 0; k < b; k++) {
            work *w = ws[rj];
            if (!w->y) {
                w->y = malloc((size_t)w->n * vout * sizeof *w->y);
                if (!w->y)
                    return dae_error_set(err, DAE_ENOMEM, "out of memory for the outputs");
                w->out = ys;
            }
            memcpy(w->y + (size_t)sj * vout, y + (size_t)k * vout, vout * sizeof *w->y);
            if (reqs[rj]->batch < b)
                reqs[rj]->batch = b;
            if (++sj == w->n) {
                rj++;
                sj = 0;
            }
        }
    }
    return DAE_OK;
}

int infer_encode(dae_req *r, int worker, const float *x, int b, dae_shape in, float **z,
                 dae_shape *zs, dae_error *err)
{
    dae_server *s = r->s;
    dae_entry *e = r->entry;
    size_t vin = shape_vals(in);
    int chunk = chunk_for(s, e->mf->model, in, OP_ENCODE);
    dae_workspace *wsp = dae_entry_workspace(e, worker, chunk, in, err);
    if (!wsp)
        return err->code;
    *z = NULL;
    for (int i = 0; i < b; i += chunk) {
        int nb = b - i < chunk ? b - i : chunk;
        const float *y;
        dae_shape ys;
        int64_t t0 = dae_now_ns();
        int rc = dae_model_encode(e->mf->model, wsp, x + (size_t)i * vin, nb, in, &y, &ys, err);
        dae_prom_batch(s->prom, nb, (double)(dae_now_ns() - t0) / 1e9);
        if (rc != DAE_OK) {
            free(*z);
            *z = NULL;
            return rc;
        }
        if (!*z && !(*z = malloc((size_t)b * shape_vals(ys) * sizeof **z)))
            return dae_error_set(err, DAE_ENOMEM, "out of memory for the codes");
        memcpy(*z + (size_t)i * shape_vals(ys), y, (size_t)nb * shape_vals(ys) * sizeof **z);
        *zs = ys;
        if (r->batch < nb)
            r->batch = nb;
    }
    return DAE_OK;
}

/* Interpolate: encode both images, walk the straight line, decode every step. */
static int run_interpolate(dae_server *s, int worker, dae_req *r, work *w, dae_error *err)
{
    dae_entry *e = r->entry;
    float *z = NULL;
    dae_shape zs;
    int rc = infer_encode(r, worker, w->x, 2, w->in, &z, &zs, err);
    if (rc != DAE_OK)
        return rc;
    size_t zn = shape_vals(zs);
    work line = {0};
    line.n = w->steps;
    line.in = zs;
    line.x = malloc((size_t)w->steps * zn * sizeof *line.x);
    if (!line.x) {
        free(z);
        return dae_error_set(err, DAE_ENOMEM, "out of memory for %d codes", w->steps);
    }
    for (int k = 0; k < w->steps; k++) {
        float t = (float)k / (float)(w->steps - 1);
        for (size_t i = 0; i < zn; i++)
            line.x[(size_t)k * zn + i] = (1 - t) * z[i] + t * z[zn + i];
    }
    free(z);
    work *lp = &line;
    rc = run_group(s, worker, e, OP_DECODE, &r, &lp, 1, err);
    if (rc == DAE_OK) {
        free(w->y);
        w->y = line.y;
        w->out = line.out;
        line.y = NULL;
    }
    work_free(&line);
    return rc;
}

/* ------------------------------------------------------------------ answers */

static void answer_sb(dae_req *r, const char *type, sbuf *b)
{
    size_t len;
    char *body = sb_take(b, &len);
    if (!body)
        req_error(r, 503, "out_of_memory", "no memory for the answer");
    else
        req_answer(r, 200, type, body, len);
}

static int png_b64(sbuf *b, const float *px, int w, int h, int c, int level, dae_error *err)
{
    unsigned char *png = NULL;
    size_t len = 0;
    if (dae_png_encode(px, w, h, c, level, &png, &len, err) != DAE_OK)
        return err->code;
    size_t n = dae_base64_encoded_len(len);
    char *txt = n ? malloc(n + 1) : NULL;
    if (!txt) {
        free(png);
        return dae_error_set(err, DAE_ENOMEM, "out of memory for base64");
    }
    dae_base64_encode(png, len, txt);
    sb_add(b, "\"", 1);
    sb_add(b, txt, n);
    sb_add(b, "\"", 1);
    free(txt);
    free(png);
    return DAE_OK;
}

/* {"width":..,"height":..,"channels":..,"pixels"|"png":..} */
static int image_json(dae_req *r, sbuf *b, const float *px, int w, int h, int c, int form,
                      dae_error *err)
{
    int as_png = r->encoding ? r->encoding == 2 : form == 2;
    sb_printf(b, "{\"width\":%d,\"height\":%d,\"channels\":%d,", w, h, c);
    if (as_png) {
        sb_str(b, "\"png\":");
        if (png_b64(b, px, w, h, c, r->s->cfg.png_level, err) != DAE_OK)
            return err->code;
    } else {
        sb_str(b, "\"pixels\":");
        sb_json_floats(b, px, (size_t)w * h * c);
    }
    sb_str(b, "}");
    return DAE_OK;
}

/* Bring sample i's output back to the size of its input (resize, and inpaint paste-back).
 * Returns an image the caller frees. */
static int output_image(dae_req *r, work *w, int i, dae_image *out, dae_error *err)
{
    size_t vout = shape_vals(w->out);
    dae_image y = {.w = w->out.w, .h = w->out.h, .c = w->out.c,
                   .px = w->y + (size_t)i * vout};
    const dae_image *o = w->orig ? &w->orig[i] : NULL;
    int tw = y.w, th = y.h;
    if (w->resized && o) {
        /* Keep the model's scale factor (superres) relative to the original size. */
        tw = (int)((long long)o->w * w->out.w / w->in.w);
        th = (int)((long long)o->h * w->out.h / w->in.h);
        if (tw < 1) tw = 1;
        if (th < 1) th = 1;
    }
    if (dae_image_resize(&y, tw, th, out, err) != DAE_OK)
        return err->code;
    if (r->route->id == DAE_ROUTE_V1_INPAINT) {
        if (!o || out->w != o->w || out->h != o->h || out->c != o->c) {
            dae_image_free(out);
            return dae_error_set(err, DAE_ESHAPE, "model %s answers [%d,%d,%d] for an input "
                                 "of [%d,%d,%d]: cannot inpaint with it", r->entry->name,
                                 w->out.c, w->out.h, w->out.w, w->in.c, w->in.h, w->in.w);
        }
        /* Paste-back: known pixels are kept, only missing ones come from the model. */
        size_t plane = (size_t)o->w * o->h;
        const float *msk = w->mask[i];
        for (int c = 0; c < o->c; c++)
            for (size_t p = 0; p < plane; p++) {
                float mk = msk[p];
                out->px[c * plane + p] = mk * o->px[c * plane + p] +
                                         (1 - mk) * out->px[c * plane + p];
            }
    }
    return DAE_OK;
}

/* denoise, inpaint, superres, decode, interpolate: image(s) out. */
static int finish_images(dae_req *r, work *w, dae_error *err)
{
    int n = r->route->id == DAE_ROUTE_V1_INTERPOLATE ? w->steps : w->n;
    dae_image *imgs = calloc((size_t)n, sizeof *imgs);
    if (!imgs)
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    int rc = DAE_OK;
    int gen = r->route->id == DAE_ROUTE_V1_INTERPOLATE || r->route->id == DAE_ROUTE_V1_DECODE;
    for (int i = 0; i < n && rc == DAE_OK; i++) {
        if (!gen) {
            rc = output_image(r, w, i, &imgs[i], err);
            continue;
        }
        /* Generated images: the model's size, or the inputs' size when they were resized. */
        dae_image y = {.w = w->out.w, .h = w->out.h, .c = w->out.c,
                       .px = w->y + (size_t)i * shape_vals(w->out)};
        int tw = y.w, th = y.h;
        if (w->resized && w->orig) {
            tw = (int)((long long)w->orig[0].w * w->out.w / w->in.w);
            th = (int)((long long)w->orig[0].h * w->out.h / w->in.h);
            tw = tw < 1 ? 1 : tw;
            th = th < 1 ? 1 : th;
        }
        rc = dae_image_resize(&y, tw, th, &imgs[i], err);
    }
    if (rc != DAE_OK)
        goto out;
    int level = r->s->cfg.png_level;
    if (!w->batched && !r->want_json && r->route->id != DAE_ROUTE_V1_INTERPOLATE) {
        unsigned char *png = NULL;
        size_t len = 0;
        if ((rc = dae_png_encode(imgs[0].px, imgs[0].w, imgs[0].h, imgs[0].c, level, &png,
                                 &len, err)) != DAE_OK)
            goto out;
        req_answer(r, 200, "image/png", (char *)png, len);
        goto out;
    }
    if (r->route->id == DAE_ROUTE_V1_INTERPOLATE && !r->want_json) {
        /* One PNG strip: the steps side by side. */
        int iw = imgs[0].w, ih = imgs[0].h, c = imgs[0].c;
        dae_image strip = {0};
        if ((rc = dae_image_alloc(&strip, iw * n, ih, c, 0, err)) != DAE_OK)
            goto out;
        for (int k = 0; k < n; k++)
            for (int ch = 0; ch < c; ch++)
                for (int yy = 0; yy < ih; yy++)
                    memcpy(strip.px + ((size_t)ch * ih + yy) * strip.w + (size_t)k * iw,
                           imgs[k].px + ((size_t)ch * ih + yy) * iw, (size_t)iw * sizeof(float));
        unsigned char *png = NULL;
        size_t len = 0;
        rc = dae_png_encode(strip.px, strip.w, strip.h, c, level, &png, &len, err);
        dae_image_free(&strip);
        if (rc == DAE_OK)
            req_answer(r, 200, "image/png", (char *)png, len);
        goto out;
    }
    sbuf b;
    sb_init(&b);
    sb_str(&b, "{\"model\":");
    sb_json_str(&b, r->entry->name);
    int form = r->route->id == DAE_ROUTE_V1_DECODE ? 1 : w->form;
    if (!w->batched && r->route->id != DAE_ROUTE_V1_INTERPOLATE) {
        sb_str(&b, ",\"image\":");
        rc = image_json(r, &b, imgs[0].px, imgs[0].w, imgs[0].h, imgs[0].c, form, err);
    } else {
        if (r->route->id == DAE_ROUTE_V1_INTERPOLATE)
            sb_printf(&b, ",\"steps\":%d", n);
        sb_str(&b, ",\"images\":[");
        for (int i = 0; i < n && rc == DAE_OK; i++) {
            if (i)
                sb_str(&b, ",");
            rc = image_json(r, &b, imgs[i].px, imgs[i].w, imgs[i].h, imgs[i].c, form, err);
        }
        sb_str(&b, "]");
    }
    sb_str(&b, "}\n");
    if (rc == DAE_OK)
        answer_sb(r, "application/json", &b);
    else
        sb_free(&b);
out:
    for (int i = 0; i < n; i++)
        dae_image_free(&imgs[i]);
    free(imgs);
    return rc;
}

static int finish_encode(dae_req *r, work *w, dae_error *err)
{
    (void)err;
    size_t zn = shape_vals(w->out);
    sbuf b;
    sb_init(&b);
    sb_str(&b, "{\"model\":");
    sb_json_str(&b, r->entry->name);
    sb_printf(&b, ",\"shape\":[%d,%d,%d]", w->out.c, w->out.h, w->out.w);
    if (!w->batched) {
        sb_str(&b, ",\"latent\":");
        sb_json_floats(&b, w->y, zn);
    } else {
        sb_str(&b, ",\"latents\":[");
        for (int i = 0; i < w->n; i++) {
            if (i)
                sb_str(&b, ",");
            sb_json_floats(&b, w->y + (size_t)i * zn, zn);
        }
        sb_str(&b, "]");
    }
    sb_str(&b, "}\n");
    answer_sb(r, "application/json", &b);
    return DAE_OK;
}

/* The per-image score the model's calibration was made with (mse unless it says else). */
static double score_of(const char *kind, const float *x, const float *y, size_t n)
{
    double acc = 0;
    int l1 = !strcmp(kind, "mae") || !strcmp(kind, "l1");
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - (double)x[i];
        acc += l1 ? fabs(d) : d * d;
    }
    if (!strcmp(kind, "sse"))
        return acc;
    double mean = n ? acc / (double)n : 0;
    if (!strcmp(kind, "rmse"))
        return sqrt(mean);
    return mean;
}

/* Per-pixel squared error averaged over channels, resized back to the input's size. */
static int heatmap_of(work *w, int i, dae_image *map, float *max, dae_error *err)
{
    dae_shape in = w->in;
    size_t plane = (size_t)in.h * in.w, v = shape_vals(in);
    dae_image m = {0};
    if (dae_image_alloc(&m, in.w, in.h, 1, 0, err) != DAE_OK)
        return err->code;
    const float *x = w->x + (size_t)i * v, *y = w->y + (size_t)i * v;
    for (int c = 0; c < in.c; c++)
        for (size_t p = 0; p < plane; p++) {
            float d = y[c * plane + p] - x[c * plane + p];
            m.px[p] += d * d / (float)in.c;
        }
    int rc = DAE_OK;
    if (w->resized) {
        rc = dae_image_resize(&m, w->orig[i].w, w->orig[i].h, map, err);
        dae_image_free(&m);
    } else {
        *map = m;
    }
    if (rc != DAE_OK)
        return rc;
    float mx = 0;
    for (size_t p = 0; p < (size_t)map->w * map->h; p++)
        if (map->px[p] > mx)
            mx = map->px[p];
    *max = mx;
    /* Stored normalised to its maximum so the PNG shows the structure; heatmap_max scales
     * it back. */
    if (mx > 0)
        for (size_t p = 0; p < (size_t)map->w * map->h; p++)
            map->px[p] /= mx;
    return DAE_OK;
}

static int finish_score(dae_req *r, work *w, dae_error *err)
{
    const dae_calibration *cal = &r->entry->mf->calib;
    if (!same_shape(w->in, w->out))
        return dae_error_set(err, DAE_ESHAPE, "model %s answers [%d,%d,%d] for an input of "
                             "[%d,%d,%d]: cannot score with it", r->entry->name, w->out.c,
                             w->out.h, w->out.w, w->in.c, w->in.h, w->in.w);
    const char *kind = cal->score[0] ? cal->score : "mse";
    int have_thr = r->has_threshold || cal->n > 0;
    double thr = r->has_threshold ? r->threshold : cal->threshold;
    size_t v = shape_vals(w->in);
    if (!w->batched && r->heatmap && r->want_png && !r->want_json) {
        dae_image map = {0};
        float mx;
        if (heatmap_of(w, 0, &map, &mx, err) != DAE_OK)
            return err->code;
        unsigned char *png = NULL;
        size_t len = 0;
        int rc = dae_png_encode(map.px, map.w, map.h, 1, r->s->cfg.png_level, &png, &len, err);
        dae_image_free(&map);
        if (rc != DAE_OK)
            return rc;
        double sc = score_of(kind, w->x, w->y, v);
        snprintf(r->extra_name, sizeof r->extra_name, "X-Heatmap-Max");
        snprintf(r->extra_value, sizeof r->extra_value, "%.7g;score=%.7g", (double)mx, sc);
        req_answer(r, 200, "image/png", (char *)png, len);
        return DAE_OK;
    }
    sbuf b;
    sb_init(&b);
    sb_str(&b, "{\"model\":");
    sb_json_str(&b, r->entry->name);
    if (w->batched)
        sb_str(&b, ",\"results\":[");
    int rc = DAE_OK;
    for (int i = 0; i < w->n && rc == DAE_OK; i++) {
        double sc = score_of(kind, w->x + (size_t)i * v, w->y + (size_t)i * v, v);
        double pct = dae_calibration_percentile(cal, sc);
        sb_str(&b, w->batched ? (i ? ",{" : "{") : ",");
        sb_str(&b, "\"score\":");
        sb_json_float(&b, sc);
        sb_str(&b, ",\"score_kind\":");
        sb_json_str(&b, kind);
        sb_str(&b, ",\"threshold\":");
        if (have_thr)
            sb_json_float(&b, thr);
        else
            sb_str(&b, "null");
        sb_printf(&b, ",\"is_anomaly\":%s", !have_thr ? "null" : sc > thr ? "true" : "false");
        sb_str(&b, ",\"percentile\":");
        if (pct >= 0)
            sb_json_float(&b, pct);
        else
            sb_str(&b, "null");
        if (r->heatmap) {
            dae_image map = {0};
            float mx;
            if ((rc = heatmap_of(w, i, &map, &mx, err)) != DAE_OK)
                break;
            sb_str(&b, ",\"heatmap_max\":");
            sb_json_float(&b, mx);
            sb_str(&b, ",\"heatmap\":");
            rc = png_b64(&b, map.px, map.w, map.h, 1, r->s->cfg.png_level, err);
            dae_image_free(&map);
        }
        if (w->batched)
            sb_str(&b, "}");
    }
    sb_str(&b, w->batched ? "]}\n" : "}\n");
    if (rc == DAE_OK)
        answer_sb(r, "application/json", &b);
    else
        sb_free(&b);
    return rc;
}

static void finish(dae_req *r, work *w, int worker)
{
    dae_error err = {0};
    int rc;
    switch (r->route->id) {
    case DAE_ROUTE_V1_SCORE: rc = finish_score(r, w, &err); break;
    case DAE_ROUTE_V1_ENCODE: rc = finish_encode(r, w, &err); break;
    case DAE_ROUTE_V2_INFER: v2_finish(r, w, worker); return;
    default: rc = finish_images(r, w, &err); break;
    }
    if (rc != DAE_OK)
        req_fail(r, &err);
}

/* ------------------------------------------------------------------ the batch */

static dae_req *req_of(dae_job *j)
{
    return (dae_req *)((char *)j - offsetof(dae_req, job));
}

void infer_run(void *ctx, int worker, dae_job **jobs, int n)
{
    dae_server *s = ctx;
    dae_req **reqs = malloc((size_t)n * sizeof *reqs);
    work *works = calloc((size_t)n, sizeof *works);
    work **group = malloc((size_t)n * sizeof *group);
    dae_req **greq = malloc((size_t)n * sizeof *greq);
    char *done = calloc((size_t)n, 1);
    int64_t now = dae_now_ns();
    if (!reqs || !works || !group || !greq || !done) {
        for (int i = 0; i < n; i++) {
            dae_req *r = req_of(jobs[i]);
            req_error(r, 503, "out_of_memory", "no memory to run the request");
            req_resume(r);
        }
        goto out;
    }
    for (int i = 0; i < n; i++) {
        reqs[i] = req_of(jobs[i]);
        dae_prom_queue_wait(s->prom, (double)(now - jobs[i]->enqueued_ns) / 1e9);
    }
    /* Parse every request; failures are answered now. */
    for (int i = 0; i < n; i++) {
        dae_error err = {0};
        if (prepare(reqs[i], &works[i], &err) != DAE_OK) {
            req_fail(reqs[i], &err);
            done[i] = 1;
        }
    }
    int op = jobs[0]->op;
    dae_entry *e = reqs[0]->entry;
    if (op == OP_INTERPOLATE) {
        for (int i = 0; i < n; i++) {
            if (done[i])
                continue;
            dae_error err = {0};
            if (run_interpolate(s, worker, reqs[i], &works[i], &err) != DAE_OK)
                req_fail(reqs[i], &err);
            else
                finish(reqs[i], &works[i], worker);
            done[i] = 1;
        }
    }
    /* Requests of one input shape run together as one batch (in chunks of max_batch). */
    for (int i = 0; i < n; i++) {
        if (done[i])
            continue;
        int g = 0;
        for (int k = i; k < n; k++) {
            if (!done[k] && same_shape(works[k].in, works[i].in)) {
                group[g] = &works[k];
                greq[g++] = reqs[k];
                done[k] = 2;
            }
        }
        dae_error err = {0};
        int rc = run_group(s, worker, e, op, greq, group, g, &err);
        for (int k = 0; k < g; k++) {
            if (rc != DAE_OK)
                req_fail(greq[k], &err);
            else
                finish(greq[k], group[k], worker);
        }
    }
    /* Every request has its answer: hand them back to the HTTP thread. */
    for (int i = 0; i < n; i++) {
        work_free(&works[i]);
        req_resume(reqs[i]);
    }
out:
    free(reqs);
    free(works);
    free(group);
    free(greq);
    free(done);
}

void infer_cancel(void *ctx, dae_job *job)
{
    (void)ctx;
    dae_req *r = req_of(job);
    req_error(r, 503, "shutting_down", "the server shut down before this request ran");
    req_resume(r);
}

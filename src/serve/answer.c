/* answer.c — answers built on the worker side from the model's outputs: images back at
 * the client's size (inpaint paste-back), PNG or JSON, strips, codes, scores, heatmaps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "daed/io/png.h"
#include "daed/io/jpeg.h"
#include "daed/io/base64.h"

static int png_b64(sbuf *b, const dae_image *im, int level, dae_error *err)
{
    unsigned char *png = NULL;
    size_t len = 0;
    if (dae_png_encode_image(im, level, &png, &len, err) != DAE_OK)
        return err->code;
    size_t n = dae_base64_encoded_len(len);
    char *txt = n ? malloc(n + 1) : NULL;
    if (!txt) {
        free(png);
        return dae_error_set(err, DAE_ENOMEM, "out of memory for base64");
    }
    dae_base64_encode(png, len, txt);
    dae_sb_add(b, "\"", 1);
    dae_sb_add(b, txt, n);
    dae_sb_add(b, "\"", 1);
    free(txt);
    free(png);
    return DAE_OK;
}

/* {"width":..,"height":..,"channels":..,"pixels"|"png":..[,"alpha":..]} */
static int image_json(dae_req *r, sbuf *b, const dae_image *im, int form, dae_error *err)
{
    int as_png = r->encoding ? r->encoding == 2 : form == 2;
    dae_sb_printf(b, "{\"width\":%d,\"height\":%d,\"channels\":%d,", im->w, im->h, im->c);
    if (as_png) {
        dae_sb_str(b, "\"png\":");
        if (png_b64(b, im, r->s->cfg.png_level, err) != DAE_OK)
            return err->code;
    } else {
        dae_sb_str(b, "\"pixels\":");
        dae_sb_json_floats(b, im->px, (size_t)im->w * im->h * im->c);
        if (im->alpha) {
            dae_sb_str(b, ",\"alpha\":");
            dae_sb_json_floats(b, im->alpha, (size_t)im->w * im->h);
        }
    }
    dae_sb_str(b, "}");
    return DAE_OK;
}

/* The input's alpha plane onto the output, resized when the output has another size
 * (superres): transparency is passed through, not dropped. */
static int keep_alpha(const dae_image *o, dae_image *out, dae_error *err)
{
    dae_image a = {.w = o->w, .h = o->h, .c = 1, .px = o->alpha}, ra = {0};
    if (dae_image_resize(&a, out->w, out->h, &ra, err) != DAE_OK)
        return err->code;
    out->alpha = ra.px;
    return DAE_OK;
}

/* --max-answer before a JSON answer of images is built: pixels take ~10 bytes a value
 * ("0.1234567,"), base64 PNG is checked once built (it is small). */
/* --max-answer for a JSON answer of vals pixel values (~10 bytes each). */
static int answer_limit(const dae_req *r, size_t vals, dae_error *err)
{
    size_t max = r->s->cfg.max_answer;
    if (vals <= max / 10)
        return DAE_OK;
    return dae_error_set(err, DAE_ELIMIT, "the JSON answer would hold %zu pixel values, about "
                         "%zu MB at ~10 bytes each, over --max-answer (%zu bytes): ask for "
                         "?encoding=png or Accept: image/png", vals, vals * 10 / 1000000,
                         max);
}

static int answer_fits(const dae_req *r, const dae_image *imgs, int n, int form,
                       dae_error *err)
{
    int as_png = r->encoding ? r->encoding == 2 : form == 2;
    size_t vals = 0;
    for (int i = 0; i < n && !as_png; i++)
        vals += (size_t)imgs[i].w * imgs[i].h * (size_t)(imgs[i].c + (imgs[i].alpha != NULL));
    return answer_limit(r, vals, err);
}

int dae_answer_precheck(const dae_req *r, const work *w, dae_error *err)
{
    int as_png = r->encoding ? r->encoding == 2 : w->form == 2;
    if (!(w->batched || r->want_json) || as_png)
        return DAE_OK;
    const dae_model *m = r->entry->mf->model;
    int keep_alpha = r->route->id != DAE_ROUTE_V1_INPAINT;
    size_t vals = 0;
    for (int i = 0; i < w->n; i++) {
        const dae_image *o = &w->orig[i];
        size_t ow = (size_t)o->w * m->out_shape.w / m->in_shape.w;
        size_t oh = (size_t)o->h * m->out_shape.h / m->in_shape.h;
        vals += ow * oh * (size_t)(m->out_shape.c + (keep_alpha && o->alpha));
    }
    return answer_limit(r, vals, err);
}

/* Bring sample i's output back to the size of its input (resize, and inpaint paste-back).
 * Returns an image the caller frees. */
static int output_image(dae_req *r, work *w, int i, dae_image *out, dae_error *err)
{
    size_t vout = dae_shape_size(w->out);
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
    } else if (o && o->alpha && keep_alpha(o, out, err) != DAE_OK) {
        dae_image_free(out);
        return err->code;
    } /* (inpaint: the alpha was the mask and the holes are filled, so none is kept) */
    return DAE_OK;
}

/* Image answers hold pixels in [0, 1], as PNG and JPEG store them: JSON inputs may leave
 * the range (pixels take any finite value) and residual models may overshoot. NaN -> 0. */
void dae_answer_clip01(float *px, size_t n)
{
    for (size_t i = 0; i < n; i++)
        px[i] = px[i] > 0 ? (px[i] < 1 ? px[i] : 1) : 0;
}

/* Generated image i (decode, interpolate): the model's size, or the inputs' size when they
 * were resized. */
static int generated_image(const work *w, int i, dae_image *out, dae_error *err)
{
    dae_image y = {.w = w->out.w, .h = w->out.h, .c = w->out.c,
                   .px = w->y + (size_t)i * dae_shape_size(w->out)};
    int tw = y.w, th = y.h;
    if (w->resized && w->orig) {
        tw = (int)((long long)w->orig[0].w * w->out.w / w->in.w);
        th = (int)((long long)w->orig[0].h * w->out.h / w->in.h);
        tw = tw < 1 ? 1 : tw;
        th = th < 1 ? 1 : th;
    }
    return dae_image_resize(&y, tw, th, out, err);
}

/* One image as the body: JPEG when asked for it alone (Accept: image/jpeg), else PNG. */
static int answer_one(dae_req *r, const dae_image *im, dae_error *err)
{
    unsigned char *data = NULL;
    size_t len = 0;
    if (r->want_jpeg && !r->want_png) {
        if (dae_jpeg_encode(im->px, im->w, im->h, im->c, r->s->cfg.jpeg_quality, &data, &len,
                            err) != DAE_OK)
            return err->code;
        dae_req_answer(r, 200, "image/jpeg", (char *)data, len);
        return DAE_OK;
    }
    if (dae_png_encode_image(im, r->s->cfg.png_level, &data, &len, err) != DAE_OK)
        return err->code;
    dae_req_answer(r, 200, "image/png", (char *)data, len);
    return DAE_OK;
}

/* Interpolate: one PNG strip, the n steps side by side. */
static int answer_strip(dae_req *r, const dae_image *imgs, int n, dae_error *err)
{
    int iw = imgs[0].w, ih = imgs[0].h, c = imgs[0].c;
    dae_image strip = {0};
    if (dae_image_alloc(&strip, iw * n, ih, c, 0, err) != DAE_OK)
        return err->code;
    for (int k = 0; k < n; k++)
        for (int ch = 0; ch < c; ch++)
            for (int yy = 0; yy < ih; yy++)
                memcpy(strip.px + ((size_t)ch * ih + yy) * strip.w + (size_t)k * iw,
                       imgs[k].px + ((size_t)ch * ih + yy) * iw, (size_t)iw * sizeof(float));
    unsigned char *png = NULL;
    size_t len = 0;
    int rc = dae_png_encode(strip.px, strip.w, strip.h, c, r->s->cfg.png_level, &png, &len,
                            err);
    dae_image_free(&strip);
    if (rc == DAE_OK)
        dae_req_answer(r, 200, "image/png", (char *)png, len);
    return rc;
}

/* {"model", "image"} or {"model"[, "steps"], "images"}, within --max-answer. */
static int answer_images_json(dae_req *r, const work *w, const dae_image *imgs, int n,
                              dae_error *err)
{
    int interp = r->route->id == DAE_ROUTE_V1_INTERPOLATE;
    int form = r->route->id == DAE_ROUTE_V1_DECODE ? 1 : w->form;
    int rc = answer_fits(r, imgs, n, form, err);
    if (rc != DAE_OK)
        return rc;
    sbuf b;
    dae_sb_init(&b);
    dae_sb_str(&b, "{\"model\":");
    dae_sb_json_str(&b, r->entry->name);
    if (!w->batched && !interp) {
        dae_sb_str(&b, ",\"image\":");
        rc = image_json(r, &b, &imgs[0], form, err);
    } else {
        if (interp)
            dae_sb_printf(&b, ",\"steps\":%d", n);
        dae_sb_str(&b, ",\"images\":[");
        for (int i = 0; i < n && rc == DAE_OK; i++) {
            if (i)
                dae_sb_str(&b, ",");
            rc = image_json(r, &b, &imgs[i], form, err);
        }
        dae_sb_str(&b, "]");
    }
    dae_sb_str(&b, "}\n");
    if (rc == DAE_OK && b.len > r->s->cfg.max_answer)
        rc = dae_error_set(err, DAE_ELIMIT, "the JSON answer is %zu bytes, over --max-answer "
                           "(%zu bytes): ask for ?encoding=png or Accept: image/png", b.len,
                           r->s->cfg.max_answer);
    if (rc == DAE_OK)
        dae_req_answer_sb(r, 200, "application/json", &b);
    else
        dae_sb_free(&b);
    return rc;
}

/* denoise, inpaint, superres, decode, interpolate: image(s) out. */
int dae_answer_images(dae_req *r, work *w, dae_error *err)
{
    int interp = r->route->id == DAE_ROUTE_V1_INTERPOLATE;
    int gen = interp || r->route->id == DAE_ROUTE_V1_DECODE;
    int n = interp ? w->steps : w->n;
    dae_image *imgs = calloc((size_t)n, sizeof *imgs);
    if (!imgs)
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    int rc = DAE_OK;
    for (int i = 0; i < n && rc == DAE_OK; i++)
        rc = gen ? generated_image(w, i, &imgs[i], err) : output_image(r, w, i, &imgs[i], err);
    if (rc == DAE_OK) {
        for (int i = 0; i < n; i++)
            dae_answer_clip01(imgs[i].px, (size_t)imgs[i].w * imgs[i].h * imgs[i].c);
        if (!w->batched && !r->want_json && !interp)
            rc = answer_one(r, &imgs[0], err);
        else if (interp && !r->want_json)
            rc = answer_strip(r, imgs, n, err);
        else
            rc = answer_images_json(r, w, imgs, n, err);
    }
    for (int i = 0; i < n; i++)
        dae_image_free(&imgs[i]);
    free(imgs);
    return rc;
}

int dae_answer_encode(dae_req *r, work *w, dae_error *err)
{
    (void)err;
    size_t zn = dae_shape_size(w->out);
    sbuf b;
    dae_sb_init(&b);
    dae_sb_str(&b, "{\"model\":");
    dae_sb_json_str(&b, r->entry->name);
    dae_sb_printf(&b, ",\"shape\":[%d,%d,%d]", w->out.c, w->out.h, w->out.w);
    if (!w->batched) {
        dae_sb_str(&b, ",\"latent\":");
        dae_sb_json_floats(&b, w->y, zn);
    } else {
        dae_sb_str(&b, ",\"latents\":[");
        for (int i = 0; i < w->n; i++) {
            if (i)
                dae_sb_str(&b, ",");
            dae_sb_json_floats(&b, w->y + (size_t)i * zn, zn);
        }
        dae_sb_str(&b, "]");
    }
    dae_sb_str(&b, "}\n");
    dae_req_answer_sb(r, 200, "application/json", &b);
    return DAE_OK;
}

/* Per-pixel error averaged over channels, resized back to the input's size: the scorer's
 * map (the blurred squared error its score is made of) when given, else (y - x)^2. */
static int heatmap_of(work *w, int i, const float *src, dae_image *map, float *max,
                      dae_error *err)
{
    dae_shape in = w->in;
    size_t plane = (size_t)in.h * in.w, v = dae_shape_size(in);
    dae_image m = {0};
    if (dae_image_alloc(&m, in.w, in.h, 1, 0, err) != DAE_OK)
        return err->code;
    const float *x = w->x + (size_t)i * v, *y = w->y + (size_t)i * v;
    const float *e = src ? src + (size_t)i * v : NULL;
    for (int c = 0; c < in.c; c++)
        for (size_t p = 0; p < plane; p++) {
            float d = y[c * plane + p] - x[c * plane + p];
            m.px[p] += (e ? e[c * plane + p] : d * d) / (float)in.c;
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

/* Scores (and, if maps is not NULL, error maps) of the n images of w, as the model's
 * calibration defines them (score.h). The scorer works on the nominal input shape; other
 * sizes (fully convolutional models) can only get the plain per-image MSE. */
static int scores_of(dae_req *r, work *w, int worker, double *scores, float *maps,
                     dae_error *err)
{
    dae_entry *e = r->entry;
    dae_shape nom = e->mf->model->in_shape;
    const dae_score_spec *sp = &e->mf->score;
    if (dae_shape_eq(w->in, nom)) {
        dae_score_ws *sws = dae_entry_score_ws(e, worker, w->n, err);
        if (!sws)
            return err->code;
        return dae_score_outputs(e->scorer, sws, w->x, w->y, w->n, scores, NULL, maps, err);
    }
    int plain = sp->n_terms == 1 && sp->term[0].kind == DAE_SCORE_RECON &&
                sp->term[0].blur == 0 && sp->term[0].top == 0;
    if (!plain)
        return dae_error_set(err, DAE_ESHAPE, "model %s scores images of [%d,%d,%d] only (its "
                             "score \"%s\" is calibrated there); this one is [%d,%d,%d]: add "
                             "?resize=1", e->name, nom.c, nom.h, nom.w, e->mf->calib.score,
                             w->in.c, w->in.h, w->in.w);
    size_t v = dae_shape_size(w->in);
    for (int i = 0; i < w->n; i++) {
        const float *x = w->x + (size_t)i * v, *y = w->y + (size_t)i * v;
        double acc = 0;
        for (size_t j = 0; j < v; j++) {
            float o = y[j] < 0 ? 0 : y[j] > 1 ? 1 : y[j]; /* clipped, as the calibration */
            double d = (double)o - x[j];
            acc += d * d;
            if (maps)
                maps[(size_t)i * v + j] = (float)(d * d);
        }
        scores[i] = (acc / (double)v - sp->term[0].mean) / sp->term[0].std *
                    sp->term[0].weight;
    }
    return DAE_OK;
}

int dae_answer_score(dae_req *r, work *w, int worker, dae_error *err)
{
    const dae_calibration *cal = &r->entry->mf->calib;
    if (!dae_shape_eq(w->in, w->out))
        return dae_error_set(err, DAE_ESHAPE, "model %s answers [%d,%d,%d] for an input of "
                             "[%d,%d,%d]: cannot score with it", r->entry->name, w->out.c,
                             w->out.h, w->out.w, w->in.c, w->in.h, w->in.w);
    const char *kind = cal->score[0] ? cal->score : "mse";
    int have_thr = r->has_threshold || cal->n > 0;
    double thr = r->has_threshold ? r->threshold : cal->threshold;
    size_t v = dae_shape_size(w->in);
    double *scores = malloc((size_t)w->n * sizeof *scores);
    float *maps = r->heatmap ? malloc((size_t)w->n * v * sizeof *maps) : NULL;
    int rc = DAE_OK;
    if (!scores || (r->heatmap && !maps)) {
        rc = dae_error_set(err, DAE_ENOMEM, "score: no memory for %d images", w->n);
        goto done;
    }
    if ((rc = scores_of(r, w, worker, scores, maps, err)) != DAE_OK)
        goto done;
    if (!w->batched && r->heatmap && r->want_png && !r->want_json) {
        dae_image map = {0};
        float mx;
        if ((rc = heatmap_of(w, 0, maps, &map, &mx, err)) != DAE_OK)
            goto done;
        unsigned char *png = NULL;
        size_t len = 0;
        rc = dae_png_encode(map.px, map.w, map.h, 1, r->s->cfg.png_level, &png, &len, err);
        dae_image_free(&map);
        if (rc != DAE_OK)
            goto done;
        snprintf(r->extra_name, sizeof r->extra_name, "X-Heatmap-Max");
        snprintf(r->extra_value, sizeof r->extra_value, "%.7g;score=%.7g", (double)mx,
                 scores[0]);
        dae_req_answer(r, 200, "image/png", (char *)png, len);
        goto done;
    }
    sbuf b;
    dae_sb_init(&b);
    dae_sb_str(&b, "{\"model\":");
    dae_sb_json_str(&b, r->entry->name);
    if (w->batched)
        dae_sb_str(&b, ",\"results\":[");
    for (int i = 0; i < w->n && rc == DAE_OK; i++) {
        double sc = scores[i];
        double pct = dae_calibration_percentile(cal, sc);
        dae_sb_str(&b, w->batched ? (i ? ",{" : "{") : ",");
        dae_sb_str(&b, "\"score\":");
        dae_sb_json_float(&b, sc);
        dae_sb_str(&b, ",\"score_kind\":");
        dae_sb_json_str(&b, kind);
        dae_sb_str(&b, ",\"threshold\":");
        if (have_thr)
            dae_sb_json_float(&b, thr);
        else
            dae_sb_str(&b, "null");
        dae_sb_printf(&b, ",\"is_anomaly\":%s",
                      !have_thr ? "null" : sc > thr ? "true" : "false");
        dae_sb_str(&b, ",\"percentile\":");
        if (pct >= 0)
            dae_sb_json_float(&b, pct);
        else
            dae_sb_str(&b, "null");
        if (r->heatmap) {
            dae_image map = {0};
            float mx;
            if ((rc = heatmap_of(w, i, maps, &map, &mx, err)) != DAE_OK)
                break;
            dae_sb_str(&b, ",\"heatmap_max\":");
            dae_sb_json_float(&b, mx);
            dae_sb_str(&b, ",\"heatmap\":");
            rc = png_b64(&b, &map, r->s->cfg.png_level, err);
            dae_image_free(&map);
        }
        if (w->batched)
            dae_sb_str(&b, "}");
    }
    dae_sb_str(&b, w->batched ? "]}\n" : "}\n");
    if (rc == DAE_OK)
        dae_req_answer_sb(r, 200, "application/json", &b);
    else
        dae_sb_free(&b);
done:
    free(scores);
    free(maps);
    return rc;
}

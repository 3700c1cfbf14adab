/* tiles.c — /v1/denoise with a fully convolutional denoiser (a stack of same convolutions):
 * the image runs in overlapping tiles (tile.h) that go through the worker pool and its
 * batcher like any job, so the tiles of one request spread over the workers and tiles of
 * concurrent requests for the same model batch together. Memory per request is its input
 * and output planes plus one tile per forward, whatever the image size; the worker that
 * finishes the last tile builds the answer and resumes the connection.
 *
 * A request stays in a `tiled` until its last tile is done. At most `window` tiles of it
 * wait in the pool at a time (a 16 Mpx image is ~250 tiles; the queue is shared); each
 * finished tile lets the next one in. A tile the pool refuses (full queue, or draining at
 * shutdown) runs at once on the worker that tried to queue it, so a request never stalls.
 *
 * Photo models (photo.h: "color_space", "per_channel"): colour images are denoised in the
 * model's colour space, by a per-channel model one channel at a time (each a tile job);
 * with "chroma_half" its two chroma channels at half resolution (core/halfres.h: halved
 * when the tiles start, from float or 8-bit planes, their tiles run on the float halves at
 * half the noise level, doubled back into the float outputs when the last tile is done).
 *
 * Models with a size_div D > 1 (pixel_unshuffle ... pixel_shuffle) run on the image's
 * canvas (tile.h): tiles and halos are multiples of D, the image is padded on the right and
 * bottom to multiples of D by repeating its edge, and the answer is cropped back. A model
 * with a noise-level map (model.h) gets ?sigma=/255 in every pixel of its map plane, or
 * DAE_NOISE_BLIND without ?sigma=.
 *
 * Planes held as 8-bit where float is not needed: a raw PNG or JPEG body is decoded to
 * 8-bit planes (io/image.h dae_image_decode8), and other inputs whose every value is a
 * byte / 255 are made so once the tiles start; each tile is converted to float (and to the
 * model's colour space) when it is staged. An answer sent as PNG or JPEG is written as
 * 8-bit planes: each tile's output region goes back to RGB and is quantized as it is
 * pasted (paste8), except for a per-channel model in a colour space that mixes channels,
 * whose three outputs of a pixel come from three tile jobs: its float outputs are
 * quantized in place once all are done. The bytes are those of the float path (same
 * per-pixel arithmetic, same quantization); a 16-megapixel colour photo then holds 48 MB +
 * 48 MB (8-bit input and output) while its tiles run instead of 2 x 192 MB.
 *
 * A one-image answer without ?sigma= then goes through the non-local stage (core/nlm.h)
 * when the noise the model removed is spatially correlated (real camera noise), or always
 * with ?nonlocal=1, never with ?nonlocal=0: on the worker that completes the request, from
 * the input and output planes as they are held (8-bit or float; float outputs answered as
 * PNG or JPEG are quantized first, the same bytes in a quarter of the memory), into a new
 * output. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/photo.h"
#include "daed/core/halfres.h"
#include "daed/core/nlm.h"
#include "daed/core/tile.h"
#include "daed/io/jpeg.h"
#include "daed/io/png.h"
#include "internal.h"

typedef struct tiled tiled;

typedef struct tile_job {
    dae_job job;  /* op OP_TILE, key = the model entry */
    tiled *t;
    int img;      /* image of the request */
    int plane;    /* first channel it runs (per-channel models: each channel on its own) */
    dae_tile tl;
} tile_job;

struct tiled {
    dae_req *r;
    work w;                /* w.orig: inputs in model space; w.y: outputs */
    int c, W, H;           /* the images (c may exceed the model's with per_channel) */
    long n, next, finished;
    long window;
    int pumpers;           /* threads inside advance() */
    int completed;
    tile_job *jobs;        /* [n] */
    pthread_mutex_t mu;
    int failed;
    dae_error err;         /* the first failure */
    dae_color_space cs;
    unsigned char *in8;    /* the inputs as 8-bit planes (w.orig[].px freed), or NULL */
    /* the outputs as 8-bit planes, each tile brought back to RGB and quantized as it is
     * pasted (answered as PNG or JPEG), or NULL: float outputs in w.y */
    unsigned char *out8;
    /* chroma_half on a colour image: planes 1 and 2 of each image run at hw x hh, their
     * inputs (model space) in cin and outputs in cout, [image][2][hh][hw] */
    int half, hw, hh;
    float *cin, *cout;
};

int dae_tiles_radius(const dae_req *r)
{
    if (r->route->id != DAE_ROUTE_V1_DENOISE || r->op != OP_FORWARD || !r->entry)
        return -1;
    return dae_model_tile_radius(r->entry->mf->model);
}

/* Can each tile's output go back to RGB on its own? Not for a per-channel model in a
 * colour space that mixes the channels: its three channels of a pixel are three jobs. */
static int tile_to_rgb(int planes, dae_color_space cs)
{
    return planes == 1 || cs == DAE_COLOR_RGB;
}

int dae_tiles_8bit(const dae_req *r)
{
    /* answer_as_8bit for a raw body (one image, never resized on the tiled path) */
    if (r->is_json || r->want_json || dae_tiles_radius(r) < 0)
        return 0;
    /* a colour image takes 3 planes with a per-channel model: the header is not read here */
    return tile_to_rgb(r->entry->photo.per_channel ? 3 : 1, r->entry->photo.cs) ? 2 : 1;
}

/* The noise-level map value of job j's tiles: its image's level (?sigma= or estimated,
 * w.noise) / 255; for one channel of a per-channel model, the level that channel's noise
 * has in the model's colour space. */
static float job_level(const tile_job *j)
{
    const dae_req *r = j->t->r;
    if (!j->t->w.noise)
        return DAE_NOISE_BLIND;
    float gain = r->entry->photo.per_channel && j->t->c == 3
                     ? dae_color_noise_gain(r->entry->photo.cs, j->plane)
                     : 1.0f;
    if (j->t->half && j->plane > 0)
        gain *= 0.5f; /* the mean of 2x2 pixels of independent noise */
    return dae_noise_level(j->t->w.noise[j->img] * gain);
}

/* A noise-map model's level for each image: ?sigma=, else (unless its config keeps it blind,
 * photo.h blind_default) estimated from the image as the model gets it (its channel count;
 * RGB for a per-channel model, whose colour space gets the gains of job_level); the first
 * image's goes back in an X-Noise-Sigma header. */
static int noise_levels(dae_req *r, work *w, dae_error *err)
{
    int given = r->has_sigma || r->correlated; /* a correlated level counts as given */
    if (!r->entry->mf->model->noise_map || (!given && r->entry->photo.blind_default))
        return DAE_OK; /* blind */
    if (!(w->noise = malloc((size_t)w->n * sizeof *w->noise)))
        return dae_error_set(err, DAE_ENOMEM, "out of memory for %d noise levels", w->n);
    for (int i = 0; i < w->n; i++) {
        /* the first image's routing estimate, when its planes are still those (parse.c) */
        int again = i > 0 || !r->has_est || r->est_c != w->orig[0].c;
        double est = r->has_sigma   ? r->sigma
                     : r->correlated ? r->corr_level /* one image */
                     : again         ? dae_work_noise_estimate(w, i)
                                     : r->est_sigma;
        if (est < 0)
            return dae_error_set(err, DAE_ENOMEM, "out of memory estimating the noise level");
        w->noise[i] = (float)est;
    }
    snprintf(r->extra_name, sizeof r->extra_name, "X-Noise-Sigma");
    snprintf(r->extra_value, sizeof r->extra_value, "%.2f; %s", w->noise[0],
             r->has_sigma    ? "given"
             : r->correlated ? "estimated, correlated noise"
                             : "estimated");
    return DAE_OK;
}

/* Smallest side the non-local stage runs on (its search window is 33 pixels wide). */
#define NONLOCAL_MIN_SIDE 16

/* Whether the non-local stage may run on w's answer (one image, no ?sigma= unless
 * ?nonlocal=1, not ?nonlocal=0), and its image's white-noise estimate for the blend. */
static int nonlocal_prepare(dae_req *r, work *w, dae_error *err)
{
    const dae_image *im = &w->orig[0];
    w->nonlocal = r->nonlocal != NONLOCAL_OFF && (!r->has_sigma || r->nonlocal == NONLOCAL_ON) &&
                  w->n == 1 && im->w >= NONLOCAL_MIN_SIDE && im->h >= NONLOCAL_MIN_SIDE;
    if (!w->nonlocal || r->nonlocal == NONLOCAL_ON)
        return DAE_OK;
    w->white = w->noise && !r->has_sigma && !r->correlated ? w->noise[0]
               : r->has_est && r->est_c == im->c                ? r->est_sigma
                                                                : dae_work_noise_estimate(w, 0);
    if (w->white < 0)
        return dae_error_set(err, DAE_ENOMEM, "out of memory estimating the noise level");
    return DAE_OK;
}

/* The tile side for m: --tile, but at least TILE_HALOS halo radii, so that the overlap
 * costs at most (1 + 2/TILE_HALOS)^2 = 1.56x the image's own work (photo-ffd's halo of 30
 * pixels made 128-pixel tiles cost 2.16x), rounded to m's size_div. */
#define TILE_HALOS 8
static int tile_side(const dae_server *s, const dae_model *m, int R)
{
    int want = s->cfg.tile < TILE_HALOS * R ? TILE_HALOS * R : s->cfg.tile;
    return dae_model_tile_side(m, want);
}

/* Do the tiles of a pw x ph plane (of an image W x H) fit m, whose tiles are side pixels? */
static int tiles_fit(const dae_model *m, int pw, int ph, int side, const char *name, int W,
                     int H, dae_error *err)
{
    int cw = dae_model_canvas(m, pw), ch = dae_model_canvas(m, ph);
    dae_shape tile_in = {m->in_shape.c, ch < side ? ch : side, cw < side ? cw : side};
    dae_error cerr = {0};
    if (dae_model_check_input(m, tile_in, &cerr) != DAE_OK)
        return dae_error_set(err, DAE_ESHAPE, "image %dx%d does not fit model %s: %s%s", W, H,
                             name, cerr.msg, pw != W ? " (its chroma at half size)" : "");
    return DAE_OK;
}

int dae_tiles_prepare(dae_req *r, work *w, dae_error *err)
{
    const dae_model *m = r->entry->mf->model;
    int c = dae_model_image_channels(m), R = dae_model_tile_radius(m);
    int side = tile_side(r->s, m, R) + 2 * R;
    int per = r->entry->photo.per_channel;
    for (int i = 0; w->orig8 && i < w->n && !per && c == 1; i++)
        if (w->orig8[i].c == 3 && dae_work_to_float(w, err) != DAE_OK) /* luma: not bytes */
            return err->code;
    for (int i = 0; i < w->n; i++) {
        dae_image *im = &w->orig[i];
        /* a per-channel model takes gray and colour images as they are (all one size) */
        int want = per ? w->orig[0].c : c;
        if (w->orig8) {
            if (dae_image8_to_channels(&w->orig8[i], want, err) != DAE_OK)
                return err->code;
            im->c = w->orig8[i].c;
        } else if (dae_image_to_channels(im, want, err) != DAE_OK) {
            return err->code;
        }
        if (i > 0 && (im->w != w->orig[0].w || im->h != w->orig[0].h))
            return dae_error_set(err, DAE_EINVAL, "images[%d] is %dx%d but images[0] is %dx%d: "
                                 "the images of a batch must have one size", i, im->w, im->h,
                                 w->orig[0].w, w->orig[0].h);
    }
    if (noise_levels(r, w, err) != DAE_OK || nonlocal_prepare(r, w, err) != DAE_OK)
        return err->code;
    int W = w->orig[0].w, H = w->orig[0].h;
    int half = per && r->entry->photo.chroma_half && w->orig[0].c == 3;
    if (tiles_fit(m, W, H, side, r->entry->name, W, H, err) != DAE_OK ||
        (half && tiles_fit(m, dae_half_side(W), dae_half_side(H), side, r->entry->name, W, H,
                           err) != DAE_OK))
        return err->code;
    w->in = w->out = (dae_shape){w->orig[0].c, H, W};
    w->tiled = 1;
    return DAE_OK;
}

static void set_failed(tiled *t, const dae_error *e)
{
    if (!t->failed) {
        t->failed = 1;
        t->err = *e;
    }
}

/* Under t->mu: has t failed, or been cancelled (client gone, job deleted)? A cancelled
 * request fails here, so its remaining tiles are neither queued nor run. */
static int stopped(tiled *t)
{
    if (!t->failed && atomic_load(&t->r->prog.cancel)) {
        dae_error e = {0};
        dae_error_set(&e, DAE_EBUSY, "cancelled: the client went away or deleted the job");
        set_failed(t, &e);
    }
    return t->failed;
}

/* Values that are all a byte / 255, exactly (bit for bit), as bytes in q; 0 if one is not
 * (JSON pixels, a colour image made gray). */
static int exact_bytes(const float *px, size_t n, unsigned char *q)
{
    for (size_t i = 0; i < n; i++) {
        float v = px[i], back;
        int b = v >= 0.0f && v <= 1.0f ? (int)(v * 255.0f + 0.5f) : 0;
        back = (float)b / 255.0f; /* as the decoders */
        if (memcmp(&back, &v, sizeof v) != 0)
            return 0;
        q[i] = (unsigned char)b;
    }
    return 1;
}

/* Hold t's inputs as 8-bit planes: those decoded so (w.orig8), or float ones that are
 * exactly bytes (else they stay float). */
static void hold_8bit(tiled *t)
{
    size_t per = (size_t)t->c * t->W * t->H;
    if (t->w.orig8) { /* a raw body (one image): its planes as decoded */
        t->in8 = t->w.orig8[0].px;
        t->w.orig8[0].px = NULL;
        return;
    }
    unsigned char *q = malloc((size_t)t->w.n * per);
    if (!q)
        return; /* the float planes serve */
    for (int i = 0; i < t->w.n; i++)
        if (!exact_bytes(t->w.orig[i].px, per, q + i * per)) {
            free(q);
            return;
        }
    for (int i = 0; i < t->w.n; i++) {
        free(t->w.orig[i].px);
        t->w.orig[i].px = NULL;
    }
    t->in8 = q;
}

/* dae_tile_extract from 8-bit planes, as v / 255. */
static void extract8(float *dst, const unsigned char *img, int c, int W, int H,
                     const dae_tile *t)
{
    int in = W - t->ix0 < t->iw ? W - t->ix0 : t->iw;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < t->ih; y++) {
            int sy = t->iy0 + y < H ? t->iy0 + y : H - 1;
            const unsigned char *row = img + ((size_t)ch * H + sy) * W;
            float *d = dst + ((size_t)ch * t->ih + y) * t->iw;
            for (int x = 0; x < in; x++)
                d[x] = (float)row[t->ix0 + x] / 255.0f;
            for (int x = in; x < t->iw; x++)
                d[x] = (float)row[W - 1] / 255.0f;
        }
}

/* The float plane job j runs on: of the image's full planes full (its planes j->plane on),
 * or for a half chroma plane of the halves (cin or cout); *pw x *ph its size. */
static float *plane_at(const tiled *t, float *full, float *halves, const tile_job *j,
                       int *pw, int *ph)
{
    if (t->half && j->plane > 0) {
        *pw = t->hw;
        *ph = t->hh;
        return halves + ((size_t)j->img * 2 + j->plane - 1) * t->hw * t->hh;
    }
    *pw = t->W;
    *ph = t->H;
    return full + (size_t)j->plane * t->W * t->H;
}

/* Stage the model input of j (c channels from j->plane on, in the model's colour space)
 * at dst. -1 when out of memory. */
static int stage_tile(const tile_job *j, float *dst, int c)
{
    const tiled *t = j->t;
    size_t plane = (size_t)t->W * t->H;
    /* float planes in the model's colour space (tiles_start), or the half chroma ones */
    if (!t->in8 || (t->half && j->plane > 0)) {
        int pw, ph;
        const float *px = plane_at(t, t->w.orig[j->img].px, t->cin, j, &pw, &ph);
        dae_tile_extract(dst, px, c, pw, ph, &j->tl);
        return 0;
    }
    const unsigned char *img = t->in8 + (size_t)j->img * t->c * plane;
    if (t->c != 3 || t->cs == DAE_COLOR_RGB) {
        extract8(dst, img + (size_t)j->plane * plane, c, t->W, t->H, &j->tl);
        return 0;
    }
    /* the colour space mixes the three channels: convert them all, keep the job's */
    size_t region = (size_t)j->tl.iw * j->tl.ih;
    float *all = c == 3 ? dst : malloc(3 * region * sizeof *all);
    if (!all)
        return -1;
    extract8(all, img, 3, t->W, t->H, &j->tl);
    dae_color_to_space(all, region, t->cs);
    if (all != dst) {
        memcpy(dst, all + (size_t)j->plane * region, (size_t)c * region * sizeof *dst);
        free(all);
    }
    return 0;
}

/* dae_tile_paste into t->out8: the output region of src (c channels, j's input region),
 * back to RGB (a whole-pixel tile of a colour space that mixes channels) and quantized
 * row by row, with the float path's functions, so the bytes are those it would answer.
 * -1 when out of memory. */
static int paste8(tiled *t, const tile_job *j, const float *src, int c)
{
    const dae_tile *tl = &j->tl;
    int W = t->W, H = t->H, dx = tl->x0 - tl->ix0, dy = tl->y0 - tl->iy0;
    int w = W - tl->x0 < tl->w ? W - tl->x0 : tl->w, h = H - tl->y0 < tl->h ? H - tl->y0 : tl->h;
    unsigned char *img = t->out8 + ((size_t)j->img * t->c + j->plane) * W * H;
    int convert = c == 3 && t->cs != DAE_COLOR_RGB;
    float *row = convert ? malloc(3 * (size_t)w * sizeof *row) : NULL;
    if (convert && !row)
        return -1;
    for (int y = 0; y < h; y++) {
        for (int ch = 0; convert && ch < 3; ch++)
            memcpy(row + (size_t)ch * w, src + ((size_t)ch * tl->ih + dy + y) * tl->iw + dx,
                   (size_t)w * sizeof *row);
        if (convert)
            dae_color_from_space(row, (size_t)w, t->cs);
        for (int ch = 0; ch < c; ch++) {
            const float *s = convert ? row + (size_t)ch * w
                                     : src + ((size_t)ch * tl->ih + dy + y) * tl->iw + dx;
            dae_planes_quantize(s, (size_t)w, img + ((size_t)ch * H + tl->y0 + y) * W + tl->x0);
        }
    }
    free(row);
    return 0;
}

/* dae_tile_paste of j's output src (c channels) into t's float outputs. */
static void paste_float(tiled *t, const tile_job *j, const float *src, int c)
{
    int pw, ph;
    float *dst = plane_at(t, t->w.y + (size_t)j->img * t->c * t->W * t->H, t->cout, j, &pw, &ph);
    dae_tile_paste(dst, src, c, pw, ph, &j->tl);
}

/* Forward and paste n jobs (one model); failures are recorded in their request. */
static void run_jobs(dae_server *s, int worker, tile_job **js, int n)
{
    dae_entry *e = js[0]->t->r->entry;
    const dae_model *m = e->mf->model;
    int c = dae_model_image_channels(m); /* image channels per tile job */
    char *done = calloc((size_t)n, 1);
    tile_job **grp = malloc((size_t)n * sizeof *grp);
    if (!done || !grp) {
        dae_error err = {0};
        dae_error_set(&err, DAE_ENOMEM, "out of memory for a batch of tiles");
        for (int i = 0; i < n; i++) {
            pthread_mutex_lock(&js[i]->t->mu);
            set_failed(js[i]->t, &err);
            pthread_mutex_unlock(&js[i]->t->mu);
        }
        free(done);
        free(grp);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (done[i])
            continue;
        /* tiles of one input shape run together, max_batch nominal samples' worth a call
         * within --batch-memory */
        int g = 0;
        for (int k = i; k < n; k++)
            if (!done[k] && js[k]->tl.iw == js[i]->tl.iw && js[k]->tl.ih == js[i]->tl.ih) {
                grp[g++] = js[k];
                done[k] = 1;
            }
        dae_shape in = {m->in_shape.c, js[i]->tl.ih, js[i]->tl.iw};
        size_t vin = dae_shape_size(in), vout = (size_t)c * in.h * in.w;
        size_t chunk = (size_t)dae_infer_chunk(s, worker, m, in);
        if (chunk > (size_t)g)
            chunk = (size_t)g;
        dae_error err = {0};
        float *stage = dae_infer_stage(&s->wctx[worker], chunk * vin);
        dae_workspace *wsp = stage ? dae_entry_workspace(e, worker, (int)chunk, in, &err) : NULL;
        if (!stage)
            dae_error_set(&err, DAE_ENOMEM, "out of memory for %zu tiles", chunk);
        for (int k0 = 0; k0 < g; k0 += (int)chunk) {
            int b = g - k0 < (int)chunk ? g - k0 : (int)chunk, rc = err.code;
            const float *y = NULL;
            dae_shape ys;
            for (int k = 0; k < b && !rc; k++) {
                tile_job *j = grp[k0 + k];
                if (stage_tile(j, stage + (size_t)k * vin, c) != 0)
                    rc = dae_error_set(&err, DAE_ENOMEM, "out of memory for a tile");
                else if (m->noise_map)
                    dae_model_noise_fill(stage + (size_t)k * vin, 1, c, in.h, in.w,
                                         job_level(j));
            }
            if (!rc) {
                int64_t t0 = dae_now_ns();
                rc = dae_model_forward(m, wsp, stage, b, in, &y, &ys, &err);
                dae_prom_batch(s->prom, b, (double)(dae_now_ns() - t0) / 1e9);
            }
            dae_error row_err = {0};
            dae_error_set(&row_err, DAE_ENOMEM, "out of memory for a row of a tile");
            for (int k = 0; k < b; k++) {
                tile_job *j = grp[k0 + k];
                tiled *t = j->t;
                pthread_mutex_lock(&t->mu);
                if (rc)
                    set_failed(t, &err);
                else if (!t->failed && t->out8 && paste8(t, j, y + (size_t)k * vout, c))
                    set_failed(t, &row_err);
                else if (!t->failed && !t->out8)
                    paste_float(t, j, y + (size_t)k * vout, c);
                if (t->r->batch < b)
                    t->r->batch = b;
                pthread_mutex_unlock(&t->mu);
            }
        }
    }
    free(done);
    free(grp);
}

/* Answered as PNG or JPEG (the branches of answer_images for one image, same size)? */
static int answer_as_8bit(const dae_req *r, const work *w)
{
    return !w->batched && !r->want_json && !w->resized && w->n == 1;
}

/* The float outputs w->y quantized in place to 8-bit planes (the buffer shrunk to a
 * quarter; still w->y, which work_free frees), returned. */
static unsigned char *quantize_outputs(work *w)
{
    size_t n = (size_t)w->out.w * w->out.h * w->out.c;
    unsigned char *px = (unsigned char *)w->y;
    dae_planes_quantize(w->y, n, px);
    unsigned char *fit = realloc(px, n);
    w->y = (float *)(void *)(fit ? fit : px);
    return (unsigned char *)w->y;
}

/* answer_images for such a request, from its 8-bit output planes px and the alpha
 * (quantized if float; PNG only). The same bytes. */
static int answer_8bit(dae_req *r, work *w, const unsigned char *px, dae_error *err)
{
    int W = w->out.w, H = w->out.h, c = w->out.c, rc;
    size_t n = (size_t)W * H;
    unsigned char *alpha = NULL, *enc = NULL;
    size_t len = 0;
    if (r->want_jpeg && !r->want_png) {
        rc = dae_jpeg_encode8(px, W, H, c, r->s->cfg.jpeg_quality, &enc, &len, err);
        if (rc == DAE_OK)
            dae_req_answer(r, 200, "image/jpeg", (char *)enc, len);
        return rc;
    }
    const unsigned char *alpha8 = w->orig8 ? w->orig8[0].alpha : NULL; /* as decoded */
    if (w->orig[0].alpha) {
        if (!(alpha = malloc(n)))
            return dae_error_set(err, DAE_ENOMEM, "out of memory for a %dx%d alpha", W, H);
        dae_planes_quantize(w->orig[0].alpha, n, alpha);
        alpha8 = alpha;
    }
    rc = dae_png_encode8(px, alpha8, W, H, c, r->s->cfg.png_level, &enc, &len, err);
    free(alpha);
    if (rc == DAE_OK)
        dae_req_answer(r, 200, "image/png", (char *)enc, len);
    return rc;
}

#define NONLOCAL_ENOMEM "out of memory for the non-local stage of a %dx%d answer"

/* t's output replaced by the stage's, of the same kind (8-bit or float). */
static int nonlocal_replace(tiled *t, dae_nlm_in noisy, dae_nlm_in guide,
                            const dae_nlm_params *p, dae_error *err)
{
    size_t n = (size_t)t->c * t->W * t->H;
    dae_nlm_out out = {0};
    if (t->out8)
        out.u8 = malloc(n);
    else
        out.f = malloc(n * sizeof *out.f);
    if (!out.u8 && !out.f)
        return dae_error_set(err, DAE_ENOMEM, NONLOCAL_ENOMEM, t->W, t->H);
    int rc = dae_nlm_guided(noisy, guide, out, t->c, t->H, t->W, p, err);
    if (rc != DAE_OK) {
        free(out.u8);
        free(out.f);
        return rc;
    }
    if (t->out8) {
        free(t->out8);
        t->out8 = out.u8;
    } else {
        free(t->w.y);
        t->w.y = out.f;
    }
    return DAE_OK;
}

/* The non-local stage on t's answer (nonlocal_prepare said it may run): from the input
 * (8-bit, or float brought back to RGB) and the RGB output, into a new output of the same
 * kind that replaces it. A blend of 0 (noise not correlated) leaves the answer as it is.
 * The stage reads the output at 8-bit levels, as the 8-bit path holds it, so that both
 * paths answer the same bytes. */
static int nonlocal_stage(tiled *t, dae_error *err)
{
    work *w = &t->w;
    if (!w->nonlocal || !(t->out8 || w->y) || (!t->in8 && !w->orig[0].px))
        return DAE_OK;
    size_t plane = (size_t)t->W * t->H, n = (size_t)t->c * plane;
    int own_g8 = !t->out8; /* else g8 is the 8-bit output, which the stage may replace */
    unsigned char *g8 = own_g8 ? malloc(n) : t->out8;
    if (!g8)
        return dae_error_set(err, DAE_ENOMEM, NONLOCAL_ENOMEM, t->W, t->H);
    if (own_g8)
        dae_planes_quantize(w->y, n, g8);
    if (!t->in8 && t->c == 3)
        dae_color_from_space(w->orig[0].px, plane, t->cs);
    dae_nlm_in noisy = {.f = t->in8 ? NULL : w->orig[0].px, .u8 = t->in8}, guide = {.u8 = g8};
    dae_nlm_params p = {DAE_NLM_SEARCH, DAE_NLM_STEP, DAE_NLM_PATCH, DAE_NLM_STRENGTH,
                        DAE_NLM_BLEND_MAX};
    if (t->r->nonlocal != NONLOCAL_ON)
        p.blend = dae_nlm_auto_blend(255.0 * dae_nlm_residual_rms(noisy, guide, (long)n),
                                     w->white);
    int rc = p.blend > 0.0f ? nonlocal_replace(t, noisy, guide, &p, err) : DAE_OK;
    if (own_g8)
        free(g8);
    return rc;
}

/* The half chroma planes (dst: 2 planes of t->hw x t->hh) of one 8-bit RGB image img, two
 * rows at a time: the same per-pixel arithmetic as halving the float planes in the model's
 * colour space (extract8's v / 255, dae_color_to_space, dae_plane_half on the row pair; an
 * odd last row averaged with itself as there). -1 when out of memory. */
static int halve_chroma8(const tiled *t, const unsigned char *img, float *dst)
{
    size_t plane = (size_t)t->W * t->H, half = (size_t)t->hw * t->hh, n2 = 2 * (size_t)t->W;
    float *rows = malloc(3 * n2 * sizeof *rows);
    if (!rows)
        return -1;
    for (int y = 0; y < t->hh; y++) {
        int nr = 2 * y + 1 < t->H ? 2 : 1;
        for (int ch = 0; ch < 3; ch++)
            for (size_t i = 0; i < (size_t)nr * t->W; i++)
                rows[ch * n2 + i] = (float)img[ch * plane + (size_t)2 * y * t->W + i] / 255.0f;
        size_t n = (size_t)nr * t->W; /* the three planes of dae_color_to_space: n apart */
        for (int ch = 1; ch < 3 && nr == 1; ch++)
            memmove(rows + ch * n, rows + ch * n2, n * sizeof *rows);
        dae_color_to_space(rows, n, t->cs);
        for (int p = 1; p <= 2; p++)
            dae_plane_half(rows + p * n, t->W, nr, dst + (p - 1) * half + (size_t)y * t->hw);
    }
    free(rows);
    return 0;
}

/* chroma_half: the half chroma inputs of t, halved from its planes (float ones in model
 * space, or 8-bit RGB); their outputs' room. -1 when out of memory. */
static int halve_chroma(tiled *t)
{
    t->hw = dae_half_side(t->W);
    t->hh = dae_half_side(t->H);
    size_t half = (size_t)t->hw * t->hh, plane = (size_t)t->W * t->H;
    t->cin = malloc((size_t)t->w.n * 2 * half * sizeof *t->cin);
    t->cout = malloc((size_t)t->w.n * 2 * half * sizeof *t->cout);
    if (!t->cin || !t->cout)
        return -1;
    for (int i = 0; i < t->w.n; i++) {
        float *dst = t->cin + (size_t)i * 2 * half;
        if (t->in8 && halve_chroma8(t, t->in8 + (size_t)i * 3 * plane, dst))
            return -1;
        for (int p = 1; !t->in8 && p <= 2; p++)
            dae_plane_half(t->w.orig[i].px + p * plane, t->W, t->H, dst + (p - 1) * half);
    }
    return 0;
}

/* chroma_half: the half chroma outputs doubled into t's float outputs (model space). */
static void double_chroma(tiled *t)
{
    size_t half = (size_t)t->hw * t->hh, plane = (size_t)t->W * t->H;
    for (int i = 0; t->half && i < t->w.n; i++)
        for (int p = 1; p <= 2; p++)
            dae_plane_double(t->cout + ((size_t)i * 2 + p - 1) * half, t->W, t->H,
                             t->w.y + ((size_t)i * 3 + p) * plane);
    free(t->cin);
    free(t->cout);
    t->cin = t->cout = NULL;
}

/* The last tile is done: bring the outputs back to RGB and the client's scale, answer. */
static void complete(tiled *t)
{
    dae_req *r = t->r;
    dae_error err = {0};
    if (t->failed) {
        dae_req_fail(r, &t->err);
    } else {
        size_t plane = (size_t)t->W * t->H;
        double_chroma(t);
        for (int i = 0; t->c == 3 && !t->out8 && i < t->w.n; i++)
            dae_color_from_space(t->w.y + (size_t)i * 3 * plane, plane, t->cs);
        if (!t->out8 && answer_as_8bit(r, &t->w)) { /* a quarter of the memory from here */
            t->out8 = quantize_outputs(&t->w);
            t->w.y = NULL;
        }
        int rc = nonlocal_stage(t, &err);
        /* the inputs are no longer needed: release them before the answer is encoded (the
         * answer keeps their sizes, which are all it reads of them for a denoise) */
        for (int i = 0; i < t->w.n; i++) {
            free(t->w.orig[i].px);
            t->w.orig[i].px = NULL;
        }
        free(t->in8);
        t->in8 = NULL;
        if (rc == DAE_OK)
            rc = t->out8                    ? answer_8bit(r, &t->w, t->out8, &err)
                 : answer_as_8bit(r, &t->w) ? answer_8bit(r, &t->w, quantize_outputs(&t->w), &err)
                                            : dae_answer_images(r, &t->w, &err);
        if (rc != DAE_OK)
            dae_req_fail(r, &err);
    }
    dae_work_free(&t->w);
    free(t->in8);
    free(t->out8);
    free(t->cin);
    free(t->cout);
    free(t->jobs);
    pthread_mutex_destroy(&t->mu);
    free(t);
    dae_req_resume(r);
}

/* k more tiles of t finished: queue more (running at once those the pool refuses) and
 * complete t when every tile is done and nobody else is still in here. */
static void advance(tiled *t, long k, int worker)
{
    dae_server *s = t->r->s;
    pthread_mutex_lock(&t->mu);
    t->finished += k;
    if (!t->failed)
        atomic_store(&t->r->prog.done, t->finished);
    t->pumpers++;
    pthread_mutex_unlock(&t->mu);
    for (;;) {
        tile_job *j = NULL;
        pthread_mutex_lock(&t->mu);
        if (stopped(t)) { /* the rest will not run: count them as finished */
            t->finished += t->n - t->next;
            t->next = t->n;
        }
        if (t->next < t->n && t->next - t->finished < t->window)
            j = &t->jobs[t->next++];
        if (!j) {
            int last = --t->pumpers == 0 && t->finished == t->n && !t->completed;
            if (last)
                t->completed = 1;
            pthread_mutex_unlock(&t->mu);
            if (last)
                complete(t);
            return;
        }
        pthread_mutex_unlock(&t->mu);
        dae_error e = {0};
        if (dae_workpool_submit(s->pool, &j->job, &e) != DAE_OK) {
            run_jobs(s, worker, &j, 1);
            pthread_mutex_lock(&t->mu);
            t->finished++;
            pthread_mutex_unlock(&t->mu);
        }
    }
}

/* The tiles of a request: the canvases of the full planes and the half chroma ones (tile.h),
 * tile side and halo, tiles per full and per half plane, planes per image (3 for a
 * per-channel model on colour, else 1) and the model's image channels. */
typedef struct grid {
    int cw, ch, hcw, hch, T, R;
    long per, per_half;
    int planes, ic;
} grid;

/* Job k of t: its image, plane and tile. An image's jobs: per tiles of each plane, or with
 * half chroma, per tiles of the luma then per_half of each chroma plane. */
static void place_job(tiled *t, tile_job *j, long k, const grid *g)
{
    long per_img = t->half ? g->per + 2 * g->per_half : g->per * g->planes, i = k % per_img;
    j->job.key = t->r->entry;
    j->job.op = OP_TILE;
    j->t = t;
    j->img = (int)(k / per_img);
    if (!t->half || i < g->per) {
        j->plane = (int)(i / g->per) * g->ic;
        j->tl = dae_tile_at(g->cw, g->ch, g->T, g->R, i % g->per);
    } else {
        i -= g->per;
        j->plane = 1 + (int)(i / g->per_half);
        j->tl = dae_tile_at(g->hcw, g->hch, g->T, g->R, i % g->per_half);
    }
}

void dae_tiles_start(dae_req *r, work *w, int worker)
{
    dae_server *s = r->s;
    const dae_model *m = r->entry->mf->model;
    dae_error err = {0};
    tiled *t = calloc(1, sizeof *t);
    if (!t) {
        dae_error_set(&err, DAE_ENOMEM, "out of memory for the tiles");
        dae_req_fail(r, &err);
        dae_work_free(w);
        dae_req_resume(r);
        return;
    }
    t->r = r;
    t->w = *w;
    memset(w, 0, sizeof *w);
    t->c = t->w.in.c;
    t->W = t->w.in.w;
    t->H = t->w.in.h;
    pthread_mutex_init(&t->mu, NULL);
    int R = dae_model_tile_radius(m), T = tile_side(s, m, R);
    int ic = dae_model_image_channels(m), cw = dae_model_canvas(m, t->W);
    int chh = dae_model_canvas(m, t->H);
    size_t plane = (size_t)t->W * t->H;
    t->cs = r->entry->photo.cs;
    t->half = r->entry->photo.chroma_half && t->c == 3;
    hold_8bit(t); /* then each tile goes to the colour space as it is staged */
    if (t->c == 3 && !t->in8)
        for (int i = 0; i < t->w.n; i++)
            dae_color_to_space(t->w.orig[i].px, plane, t->cs);
    grid g = {cw, chh, dae_model_canvas(m, dae_half_side(t->W)),
              dae_model_canvas(m, dae_half_side(t->H)), T, R, 0, 0, t->c / ic, ic};
    g.per = dae_tile_plan(g.cw, g.ch, T, R, NULL, 0); /* on the canvas (tile.h) */
    g.per_half = t->half ? dae_tile_plan(g.hcw, g.hch, T, R, NULL, 0) : 0;
    t->n = (t->half ? g.per + 2 * g.per_half : g.per * g.planes) * t->w.n;
    if (answer_as_8bit(r, &t->w) && tile_to_rgb(g.planes, t->cs))
        t->out8 = malloc((size_t)t->w.n * t->c * plane);
    else
        t->w.y = malloc((size_t)t->w.n * t->c * plane * sizeof *t->w.y);
    t->jobs = calloc((size_t)t->n, sizeof *t->jobs);
    if ((!t->w.y && !t->out8) || !t->jobs || (t->half && halve_chroma(t))) {
        dae_error_set(&err, DAE_ENOMEM, "out of memory for a %dx%d output", t->W, t->H);
        set_failed(t, &err);
        t->n = 0;
    }
    for (long k = 0; k < t->n; k++)
        place_job(t, &t->jobs[k], k, &g);
    atomic_store(&r->prog.total, t->n);
    long win = (long)s->n_workers * s->cfg.max_batch, qcap = s->cfg.queue_size / 2;
    t->window = win < qcap ? win : qcap;
    if (t->window < 2)
        t->window = 2;
    advance(t, 0, worker);
}

void dae_tiles_run(dae_server *s, int worker, dae_job **jobs, int n)
{
    tile_job **js = malloc((size_t)n * sizeof *js);
    if (!js) { /* cannot even track them: fail each request's tile on its own */
        for (int i = 0; i < n; i++)
            dae_tiles_cancel(jobs[i]);
        return;
    }
    /* the tiles of failed or cancelled requests are skipped (still counted below) */
    tile_job **live = malloc((size_t)n * sizeof *live);
    int nl = 0;
    for (int i = 0; i < n; i++) {
        js[i] = (tile_job *)jobs[i]; /* the dae_job is each tile_job's first member */
        pthread_mutex_lock(&js[i]->t->mu);
        int skip = stopped(js[i]->t);
        pthread_mutex_unlock(&js[i]->t->mu);
        if (live && !skip)
            live[nl++] = js[i];
    }
    if (!live)
        run_jobs(s, worker, js, n);
    else if (nl)
        run_jobs(s, worker, live, nl);
    free(live);
    /* one advance per request, counting its tiles in this batch */
    for (int i = 0; i < n; i++) {
        if (!js[i])
            continue;
        tiled *t = js[i]->t;
        long k = 0;
        for (int j = i; j < n; j++)
            if (js[j] && js[j]->t == t) {
                k++;
                if (j != i)
                    js[j] = NULL;
            }
        js[i] = NULL;
        advance(t, k, worker);
    }
    free(js);
}

void dae_tiles_cancel(dae_job *job)
{
    tile_job *j = (tile_job *)job;
    dae_error e = {0};
    dae_error_set(&e, DAE_EBUSY, "the server shut down before this request ran");
    pthread_mutex_lock(&j->t->mu);
    set_failed(j->t, &e);
    pthread_mutex_unlock(&j->t->mu);
    advance(j->t, 1, -1); /* failed: nothing more is queued or run */
}

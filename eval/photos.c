/* photos.c — photo denoising: quality of a model file on the PHOTOS.md held-out photos next
 * to the reference rows, and its speed next to PyTorch's for the same network.
 *
 * Quality: mean PSNR (peak 255) over the held-out skimage photos at sigma 15/25/50, on the
 * exact noisy images of the reference (scripts/export-photo-eval.sh -> data/photos/test).
 * A 1-channel model fills the gray columns, and the colour ones by denoising each channel
 * of the opponent colour space (photo.h); a 3-channel model fills the colour columns in the
 * colour space its config names ("color_space"). The model runs in tiles (tile.h) exactly
 * as daed serves it (--threads workers with one OpenBLAS thread each, sharing the tiles);
 * the output is compared as float clipped to [0,255], as the reference. A model with a
 * noise-level map (model.h) is measured twice: with the true sigma/255 as its map, and blind.
 *
 * Speed (--speed): sgemm peak (dae_sgemm 1024^3), inference seconds per megapixel of a
 * 1024x1024 image (gray, and colour: 3 planes, the luma and two half chroma planes of a
 * "chroma_half" model, or the 3-channel model) and the GFLOP/s that
 * represents, dae-train's patches/s on the training photos (40x40 patches, batch 64); with
 * --torch, eval/ref/torch_photos.py measures PyTorch on the same network in the same run.
 *
 * --layers prints only the table of each layer's kernel and its time on one tile with fp32
 * and bf16 weights, side by side; --precision runs the tile workspaces in bf16 or fp32
 * (default fp32; daed's default is bf16).
 *
 * usage: photos MODEL.safetensors [--data DIR] [--train-data DIR] [--tile N] [--threads N]
 *                                 [--speed] [--torch] [--no-psnr] [--precision fp32|bf16]
 *                                 [--layers]
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daed/core/blas.h"
#include "daed/core/halfres.h"
#include "daed/io/image.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/io/photo.h"
#include "daed/train/recipe.h"
#include "daed/core/tile.h"
#include "daed/train/trainer.h"
#include "daed/core/layers.h"
#include "daed/core/rng.h"

static const int SIGMAS[3] = {15, 25, 50};
static const char *const GRAY[] = {"camera", "moon", "coins", "astronaut_g", "coffee_g",
                                   "chelsea_g", "rocket_g", "motorcycle_g"};
static const char *const COLOR[] = {"astronaut", "coffee", "chelsea", "rocket", "motorcycle"};

/* PHOTOS.md reference results: gray 15/25/50, colour 15/25/50, s/Mpx gray, colour */
static const struct {
    const char *name;
    double g[3], c[3];
    const char *speed;
} REF[] = {
    {"noisy input", {24.74, 20.42, 14.87}, {24.84, 20.56, 15.06}, "-"},
    {"OpenCV non-local means", {31.83, 29.33, 25.85}, {31.34, 28.56, 24.95}, "0.56 / 1.10"},
    {"scikit-image TV (Chambolle)", {31.92, 29.42, 25.81}, {31.36, 28.78, 25.05}, "0.40 / 0.70"},
    {"scikit-image wavelet", {30.34, 27.86, 24.92}, {30.56, 27.94, 24.55}, "0.05 / 0.21"},
    {"scikit-image bilateral", {28.99, 26.08, 22.32}, {28.83, 26.03, 22.36}, "1.16 / 1.78"},
    {"PyTorch DnCNN 8x32, 15 min", {31.89, 30.07, 27.14}, {31.98, 30.05, 26.70}, "1.6-1.9 / ~5"},
    {"**bar (the issue)**", {32.40, 30.60, 27.60}, {32.50, 30.50, 27.20}, ""},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Inference as daed serves it: `n` workers (threads), each with one OpenBLAS thread and
 * its own workspace, take the tiles of an image from a shared counter. */
typedef struct {
    const dae_model *m;
    int n, tile, R;
    int ic;      /* image channels per pass (the model's input less its noise map) */
    float level; /* noise-map models: the map value of the next runs */
    int chroma_half; /* a per-channel model with "chroma_half" (photo.h) */
    double sigma; /* the noise's sigma (0-255) in RGB, or < 0: blind */
    dae_workspace **ws;
    float **scratch;
} runner;

typedef struct {
    runner *r;
    int k;            /* worker index */
    const float *in;  /* (mc, H, W) */
    float *out;
    int W, H;
    atomic_long *next;
    long count;
    int rc;
    dae_error err;
} tile_task;

static int runner_init(runner *r, const dae_model *m, int tile, int n, dae_precision prec,
                       dae_error *err)
{
    memset(r, 0, sizeof *r);
    r->m = m;
    r->n = n;
    r->tile = dae_model_tile_side(m, tile);
    r->R = dae_model_tile_radius(m);
    r->ic = dae_model_image_channels(m);
    r->level = DAE_NOISE_BLIND;
    r->sigma = -1.0;
    if (r->R < 0)
        return dae_error_set(err, DAE_EINVAL, "model is not a stack of same convolutions");
    tile = r->tile;
    int side = tile + 2 * r->R, c = m->in_shape.c;
    r->ws = calloc((size_t)n, sizeof *r->ws);
    r->scratch = calloc((size_t)n, sizeof *r->scratch);
    if (!r->ws || !r->scratch)
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        r->ws[k] = dae_workspace_create(m, 1, (dae_shape){c, side, side}, 0, err);
        r->scratch[k] = malloc((size_t)c * side * side * sizeof **r->scratch);
        if (!r->ws[k] || !r->scratch[k])
            return err && err->code ? err->code : DAE_ENOMEM;
        int rc = dae_workspace_set_precision(r->ws[k], prec, err);
        if (rc)
            return rc;
    }
    return DAE_OK;
}

static void runner_free(runner *r)
{
    for (int k = 0; k < r->n; k++) {
        if (r->ws)
            dae_workspace_free(r->ws[k]);
        if (r->scratch)
            free(r->scratch[k]);
    }
    free(r->ws);
    free(r->scratch);
}

static void *tile_worker(void *arg)
{
    tile_task *t = arg;
    runner *r = t->r;
    int c = r->m->in_shape.c, ic = r->ic;
    int cw = dae_model_canvas(r->m, t->W), ch = dae_model_canvas(r->m, t->H);
    for (long i; !t->rc && (i = atomic_fetch_add(t->next, 1)) < t->count;) {
        dae_tile tl = dae_tile_at(cw, ch, r->tile, r->R, i);
        dae_tile_extract(r->scratch[t->k], t->in, ic, t->W, t->H, &tl);
        if (r->m->noise_map)
            dae_model_noise_fill(r->scratch[t->k], 1, ic, tl.ih, tl.iw, r->level);
        const float *o;
        dae_shape os;
        t->rc = dae_model_forward(r->m, r->ws[t->k], r->scratch[t->k], 1,
                                  (dae_shape){c, tl.ih, tl.iw}, &o, &os, &t->err);
        if (!t->rc)
            dae_tile_paste(t->out, o, ic, t->W, t->H, &tl); /* tiles' regions are disjoint */
    }
    return NULL;
}

/* The model over one (mc, H, W) image, tiles shared by the workers. */
static int run_tiled(runner *r, const float *in, int W, int H, float *out, dae_error *err)
{
    atomic_long next = 0;
    tile_task tasks[64];
    pthread_t th[64];
    int n = r->n < 64 ? r->n : 64, rc = DAE_OK;
    long count = dae_tile_plan(dae_model_canvas(r->m, W), dae_model_canvas(r->m, H), r->tile,
                               r->R, NULL, 0);
    for (int k = 0; k < n; k++) {
        tasks[k] = (tile_task){.r = r, .k = k, .in = in, .out = out, .W = W, .H = H,
                               .next = &next, .count = count};
        if (k > 0 && pthread_create(&th[k], NULL, tile_worker, &tasks[k]) != 0)
            return dae_error_set(err, DAE_ENOMEM, "cannot start a worker thread");
    }
    tile_worker(&tasks[0]);
    for (int k = 1; k < n; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < n && !rc; k++)
        if (tasks[k].rc) {
            rc = tasks[k].rc;
            if (err)
                *err = tasks[k].err;
        }
    return rc;
}

/* A chroma plane as daed runs it with "chroma_half": halved, tiled, doubled back. */
static int run_half(runner *r, const float *in, int W, int H, float *out, dae_error *err)
{
    int hw = dae_half_side(W), hh = dae_half_side(H);
    float *a = malloc(2 * (size_t)hw * hh * sizeof *a);
    if (!a)
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    dae_plane_half(in, W, H, a);
    int rc = run_tiled(r, a, hw, hh, a + (size_t)hw * hh, err);
    if (!rc)
        dae_plane_double(a + (size_t)hw * hh, W, H, out);
    free(a);
    return rc;
}

/* out = denoised (c, H, W) of in: the model's channels at once, or plane by plane for a
 * 1-channel model on a 3-channel image (in the colour space cs; its chroma at half size
 * with chroma_half). */
static int denoise(runner *r, const float *in, int c, int W, int H, dae_color_space cs,
                   float *out, dae_error *err)
{
    size_t n = (size_t)W * H;
    float *tmp = malloc((size_t)c * n * sizeof *tmp);
    int rc = DAE_OK;
    if (!tmp)
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    memcpy(tmp, in, (size_t)c * n * sizeof *tmp);
    if (c == 3)
        dae_color_to_space(tmp, n, cs);
    int mc = r->ic;
    for (int p = 0; p < c && !rc; p += mc) {
        /* a plane of a per-channel model: the level its noise has in the colour space */
        double gain = mc == 1 && c == 3 ? dae_color_noise_gain(cs, p) : 1.0;
        int half = r->chroma_half && mc == 1 && c == 3 && p > 0;
        r->level = r->sigma < 0 ? DAE_NOISE_BLIND
                                : dae_noise_level(r->sigma * gain * (half ? 0.5 : 1.0));
        rc = half ? run_half(r, tmp + p * n, W, H, out + p * n, err)
                  : run_tiled(r, tmp + p * n, W, H, out + p * n, err);
    }
    if (!rc && c == 3)
        dae_color_from_space(out, n, cs);
    free(tmp);
    return rc;
}

static double psnr255(const float *out, const float *clean, size_t n)
{
    double se = 0.0;
    for (size_t i = 0; i < n; i++) {
        double o = out[i] * 255.0;
        o = o < 0 ? 0 : o > 255 ? 255 : o;
        double d = o - rint(clean[i] * 255.0);
        se += d * d;
    }
    return 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

/* Mean PSNR over the set (gray or colour) at each sigma; a noise-map model gets the true
 * sigma as its map (known) or runs blind. */
static int eval_set(runner *r, const char *dir, int color, dae_color_space cs, int known,
                    double psnr[3], dae_error *err)
{
    const char *const *names = color ? COLOR : GRAY;
    int nn = color ? 5 : 8, rc = DAE_OK;
    for (int s = 0; s < 3; s++) {
        double sum = 0.0;
        r->sigma = known ? SIGMAS[s] : -1.0;
        for (int i = 0; i < nn && !rc; i++) {
            char pc[512], pn[512];
            snprintf(pc, sizeof pc, "%s/%s/%s.png", dir, color ? "color" : "gray", names[i]);
            snprintf(pn, sizeof pn, "%s/%s/%s_s%d.png", dir, color ? "color" : "gray",
                     names[i], SIGMAS[s]);
            dae_image clean = {0}, noisy = {0};
            float *out = NULL;
            if (!(rc = dae_image_read_file(pc, NULL, &clean, err)) &&
                !(rc = dae_image_read_file(pn, NULL, &noisy, err))) {
                int c = color ? 3 : 1;
                if (clean.c != c || noisy.c != c || noisy.w != clean.w || noisy.h != clean.h)
                    rc = dae_error_set(err, DAE_ESHAPE, "%s: not a %s image of the clean "
                                       "one's size", pn, color ? "colour" : "gray");
                else if (!(out = malloc((size_t)c * clean.w * clean.h * sizeof *out)))
                    rc = dae_error_set(err, DAE_ENOMEM, "out of memory");
                else if (!(rc = denoise(r, noisy.px, c, clean.w, clean.h, cs, out, err)))
                    sum += psnr255(out, clean.px, (size_t)c * clean.w * clean.h);
            }
            free(out);
            dae_image_free(&clean);
            dae_image_free(&noisy);
        }
        psnr[s] = sum / nn;
    }
    return rc;
}

static double sgemm_peak(void)
{
    int n = 1024;
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b),
          *c = malloc((size_t)n * n * sizeof *c);
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = b[i] = (float)(i % 17) * 0.01f;
    double best = 1e9;
    for (int k = 0; k < 4; k++) {
        double t = now_s();
        dae_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t = now_s() - t;
        if (k && t < best)
            best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

/* Seconds per megapixel of a size x size image with c channels (best of 3 after a warm-up). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per megapixel (wall, best of 3 after a warm-up) and CPU seconds per megapixel
 * (all threads, the run with the best wall time): on a shared machine the CPU time is
 * the steadier measure of the work. */
static int time_infer(runner *r, int c, int size, dae_color_space cs, double *spm,
                      double *cpu_spm, dae_error *err)
{
    size_t n = (size_t)c * size * size;
    float *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    int rc = DAE_OK;
    if (!in || !out) {
        free(in);
        free(out);
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    }
    dae_rng g;
    dae_rng_seed(&g, 1);
    for (size_t i = 0; i < n; i++)
        in[i] = dae_rng_uniform(&g);
    double best = 1e30, best_cpu = 0;
    for (int k = 0; k < 4 && !rc; k++) {
        double t = now_s(), u = cpu_s();
        rc = denoise(r, in, c, size, size, cs, out, err);
        t = now_s() - t;
        u = cpu_s() - u;
        if (k && t < best) {
            best = t;
            best_cpu = u;
        }
    }
    *spm = best / ((double)size * size / 1e6);
    *cpu_spm = best_cpu / ((double)size * size / 1e6);
    free(in);
    free(out);
    return rc;
}

/* dae-train's patches/s: the real trainer on the photos, `steps` steps after 3. */
static int time_train(const dae_model *m, const char *dir, dae_color_space cs, int threads,
                      int steps, double *pps, dae_error *err)
{
    int c = dae_model_image_channels(m), rc = DAE_OK;
    char *arch = dae_model_arch_json(m), json[65536];
    dae_recipe *r = NULL;
    dae_photoset *ps = NULL;
    dae_trainer *t = NULL;
    if (!arch)
        return dae_error_set(err, DAE_ENOMEM, "out of memory");
    snprintf(json, sizeof json,
             "{\"output\":\"/tmp/bench-photos.safetensors\",\"epochs\":1,\"batch_size\":64,"
             "\"threads\":%d,\"tasks\":[\"denoise\"],\"data\":{\"train\":\"%s\",\"channels\":%d,"
             "\"color_space\":\"%s\"},\"patches\":{\"size\":40,\"per_epoch\":1000000,"
             "\"val_count\":1},\"collapse\":{\"check\":\"off\"},\"model\":%s}",
             threads, dir, c, dae_color_space_name(c == 3 ? cs : DAE_COLOR_RGB), arch);
    free(arch);
    if (!(r = dae_recipe_parse(json, strlen(json), "bench recipe", 0, NULL, err))) {
        rc = err->code;
        goto done;
    }
    dae_image_limits lim = dae_image_default_limits();
    if (!(ps = dae_photoset_load_dir(dir, c, 40, 100000, &lim, err)) ||
        !(t = dae_trainer_create_photos(r, ps, NULL, err))) {
        rc = err->code;
        goto done;
    }
    dae_train_options o = {.stop_at_step = 3};
    if ((rc = dae_trainer_run(t, &o, err)))
        goto done;
    double t0 = now_s();
    o.stop_at_step = 3 + steps;
    if ((rc = dae_trainer_run(t, &o, err)))
        goto done;
    *pps = steps * 64.0 / (now_s() - t0);
done:
    remove("/tmp/bench-photos.safetensors.ckpt");
    dae_trainer_free(t);
    dae_photoset_free(ps);
    dae_recipe_free(r);
    return rc;
}

static double json_num(const char *txt, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(txt, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

static void row(const char *name, const double *g, const double *c, const char *speed)
{
    char gs[64] = "-", cs[64] = "-";
    if (g)
        snprintf(gs, sizeof gs, "%.2f / %.2f / %.2f", g[0], g[1], g[2]);
    if (c)
        snprintf(cs, sizeof cs, "%.2f / %.2f / %.2f", c[0], c[1], c[2]);
    printf("| %s | %s | %s | %s |\n", name, gs, cs, speed);
}

/* Milliseconds of one forward of conv2d layer L on an `in` tile, one thread, with fp32
 * weights (ms[0]) and bf16 ones (ms[1], -1 when the layer has no bf16 form): the two
 * alternating (A B B A) for 3 rounds, the best of each. */
static void layer_ms(const dae_model *m, const dae_layer *L, dae_shape in, dae_shape out,
                     double ms[2])
{
    size_t nx = (size_t)in.c * in.h * in.w, ny = (size_t)out.c * out.h * out.w;
    dae_conv_geom g = {.B = 1, .C = in.c, .H = in.h, .W = in.w, .OC = L->out_ch, .k = L->k,
                       .s = L->stride, .p = L->pad};
    size_t ncol = dae_conv2d_col_size(&g);
    int bf = dae_conv2d_bf16_layer(L->k, L->stride, L->pad);
    float *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y);
    float *col = malloc(ncol * sizeof *col);
    uint32_t *wb = bf ? malloc(dae_bf16_weights_size(in.c, L->out_ch) * sizeof *wb) : NULL;
    const float *w = m->params + L->w_off, *b = L->n_b ? m->params + L->b_off : NULL;
    ms[0] = ms[1] = -1;
    if (!x || !y || !col || (bf && !wb))
        goto done;
    dae_rng rng;
    dae_rng_seed(&rng, 3);
    for (size_t i = 0; i < nx; i++)
        x[i] = dae_rng_uniform(&rng);
    if (bf)
        dae_bf16_pack_weights(wb, w, in.c, L->out_ch, 0);
    double best[2] = {1e30, 1e30};
    for (int k = 0; k < 12; k++) {
        int p = (k % 4 == 1 || k % 4 == 2) && bf; /* A B B A */
        double t = now_s();
        dae_conv2d_forward_ex(y, x, w, p ? wb : NULL, b, &col, 1, &g, DAE_ACT_RELU, 0.0f);
        t = now_s() - t;
        if (k >= 4 && t < best[p]) /* the first round warms up */
            best[p] = t;
    }
    ms[0] = 1e3 * best[0];
    ms[1] = bf ? 1e3 * best[1] : -1;
done:
    free(x);
    free(y);
    free(col);
    free(wb);
}

/* Which kernel and precision each layer of the model runs for one tile (the input shape
 * the timings above used): layer, shape in -> out, MFLOP, kernel (layers.h), and each
 * convolution's time on one thread with fp32 and bf16 weights, side by side. The
 * benchmark's workspaces run in --precision (fp32 unless asked: daed defaults to bf16
 * where the CPU has it; the bf16 column says what those layers take there). */
static void layer_table(const dae_model *m, dae_shape in)
{
    printf("\nKernels per layer, one tile of %dx%d (%d channels in); ms: one forward, one "
           "thread, best of 4 (fp32 and bf16 alternating):\n\n", in.w, in.h, in.c);
    printf("| layer | in -> out | MFLOP | kernel (fp32 workspace) | kernel (bf16 workspace) "
           "| ms fp32 | ms bf16 |\n|---|---|---|---|---|---|---|\n");
    double tot[2] = {0, 0};
    for (int i = 0; i < m->n_enc + m->n_dec; i++) {
        const dae_layer *L = &m->layers[i];
        dae_shape out;
        if (dae_model_shape_through(m, in, i, i + 1, &out, NULL))
            return;
        char name[64];
        dae_model_param_name(m, i, 0, name, sizeof name);
        *strrchr(name, '.') = '\0'; /* "encoder.3" */
        const char *k32 = "-", *k16 = "-";
        dae_conv_geom g = {.B = 1, .C = in.c, .H = in.h, .W = in.w, .OC = L->out_ch,
                           .k = L->k, .s = L->stride, .p = L->pad};
        if (L->kind == DAE_LAYER_CONV2D) {
            k32 = dae_conv2d_kernel_name(&g, 0);
            k16 = dae_conv2d_kernel_name(&g, 1);
        } else if (L->kind == DAE_LAYER_CONV_T2D) {
            g.op = L->out_pad;
            k32 = dae_conv_t2d_kernel_name(&g, 0);
            k16 = dae_conv_t2d_kernel_name(&g, 1);
        }
        double mf = 0;
        if (L->kind == DAE_LAYER_CONV2D || L->kind == DAE_LAYER_CONV_T2D)
            mf = 2.0 * L->in_ch * L->out_ch * L->k * L->k *
                 (L->kind == DAE_LAYER_CONV2D ? (double)out.h * out.w : (double)in.h * in.w) /
                 1e6;
        char t32[32] = "-", t16[32] = "-";
        if (L->kind == DAE_LAYER_CONV2D) {
            double ms[2];
            layer_ms(m, L, in, out, ms);
            snprintf(t32, sizeof t32, "%.2f", ms[0]);
            tot[0] += ms[0];
            tot[1] += ms[1] >= 0 ? ms[1] : ms[0];
            if (ms[1] >= 0)
                snprintf(t16, sizeof t16, "%.2f", ms[1]);
        }
        if (L->kind != DAE_LAYER_ACT)
            printf("| %s | (%d,%d,%d) -> (%d,%d,%d) | %.1f | %s | %s | %s | %s |\n", name, in.c,
                   in.h, in.w, out.c, out.h, out.w, mf, k32, k16, t32, t16);
        in = out;
    }
    printf("| conv2d layers | | | | | %.2f | %.2f (%.2fx) |\n", tot[0], tot[1],
           tot[1] > 0 ? tot[0] / tot[1] : 0.0);
    printf("\n(activations are fused into the convolution before them; in a forward as daed "
           "serves it, one image per worker in bf16, two AMX layers of 16-channel multiples "
           "in a row pass the activation as bf16 pair planes: these per-layer times include "
           "the fp32 planes that skips)\n");
}

int main(int argc, char **argv)
{
    const char *model = NULL, *data = "data/photos/test", *train = NULL;
    int tile = 128, threads = 2, speed = 0, torch = 0, psnr = 1, layers = 0;
    dae_precision prec = DAE_PREC_FP32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(a, "--train-data") && i + 1 < argc)
            train = argv[++i];
        else if (!strcmp(a, "--tile") && i + 1 < argc)
            tile = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--speed"))
            speed = 1;
        else if (!strcmp(a, "--torch"))
            speed = torch = 1;
        else if (!strcmp(a, "--no-psnr"))
            psnr = 0;
        else if (!strcmp(a, "--precision") && i + 1 < argc && !strcmp(argv[i + 1], "bf16"))
            prec = DAE_PREC_BF16, i++;
        else if (!strcmp(a, "--precision") && i + 1 < argc && !strcmp(argv[i + 1], "fp32"))
            prec = DAE_PREC_FP32, i++;
        else if (!strcmp(a, "--layers"))
            layers = 1;
        else if (a[0] != '-' && !model)
            model = a;
        else {
            fprintf(stderr, "usage: photos MODEL.safetensors [--data DIR] [--train-data DIR] "
                            "[--tile N] [--threads N] [--speed] [--torch] [--no-psnr]\n"
                            "              [--precision fp32|bf16] [--layers]\n");
            return 2;
        }
    }
    if (!model || tile < 1 || threads < 1) {
        fprintf(stderr, "photos: a model file, --tile >= 1 and --threads >= 1 are needed\n");
        return 2;
    }
    dae_error err = {0};
    dae_modelfile *mf = dae_modelfile_load(model, NULL, &err);
    if (!mf) {
        fprintf(stderr, "photos: %s\n", err.msg);
        return 1;
    }
    const dae_model *m = mf->model;
    int mc = dae_model_image_channels(m); /* image channels (a noise map not counted) */
    dae_color_space cs = DAE_COLOR_OPPONENT; /* a gray model on colour: opponent channels */
    cJSON *cfg = cJSON_Parse(mf->config_json);
    const cJSON *csj = cJSON_GetObjectItemCaseSensitive(cfg, "color_space");
    if (mc == 3)
        cs = cJSON_IsString(csj) && dae_color_space_from_name(csj->valuestring) >= 0
                 ? (dae_color_space)dae_color_space_from_name(csj->valuestring)
                 : DAE_COLOR_RGB;
    cJSON_Delete(cfg);
    dae_photo_facts facts;
    if (dae_photo_facts_parse(mf->config_json, mc, &facts, &err)) {
        fprintf(stderr, "photos: %s\n", err.msg);
        dae_modelfile_free(mf);
        return 1;
    }
    if (!train)
        train = mc == 1 ? "data/photos/train/gray" : "data/photos/train/rgb";

    runner r;
    dae_blas_set_threads(1); /* inference: one BLAS thread per worker, as daed */
    int rc = runner_init(&r, m, tile, threads, prec, &err);
    if (rc)
        goto fail;
    r.chroma_half = facts.chroma_half;
    double load = -1;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &load) != 1)
            load = -1;
        fclose(lf);
    }
    printf("# %s: %zu parameters, %d channel%s%s%s, receptive field %dx%d; tiles of %d "
           "(+%d halo); inference: %d worker%s with 1 BLAS thread each, as daed; load average "
           "%.1f\n\n",
           mf->name, m->n_params, mc, mc == 1 ? "" : "s", mc == 3 ? ", " : "",
           mc == 3 ? dae_color_space_name(cs) : "", 2 * r.R + 1, 2 * r.R + 1, r.tile, r.R,
           threads, threads == 1 ? "" : "s", load);
    printf("workspaces: %s\n\n", prec == DAE_PREC_BF16 ? "bf16" : "fp32");
    if (layers) { /* the per-layer table alone */
        layer_table(m, (dae_shape){m->in_shape.c, r.tile + 2 * r.R, r.tile + 2 * r.R});
        psnr = speed = 0;
    }

    if (psnr) {
        double g[3], c[3], gb[3], cb[3];
        if (mc == 1 && (rc = eval_set(&r, data, 0, cs, 1, g, &err)))
            goto fail;
        if ((rc = eval_set(&r, data, 1, cs, 1, c, &err)))
            goto fail;
        if (m->noise_map && ((mc == 1 && (rc = eval_set(&r, data, 0, cs, 0, gb, &err))) ||
                             (rc = eval_set(&r, data, 1, cs, 0, cb, &err))))
            goto fail;
        printf("Mean PSNR (dB, peak 255) on the held-out photos, sigma 15 / 25 / 50:\n\n");
        printf("| method | gray 15 / 25 / 50 | colour 15 / 25 / 50 | s/Mpx (gray / colour) |\n");
        printf("|---|---|---|---|\n");
        for (size_t i = 0; i < sizeof REF / sizeof REF[0]; i++)
            row(REF[i].name, REF[i].g, REF[i].c, REF[i].speed);
        char name[160];
        snprintf(name, sizeof name, "**daed %s**%s%s", mf->name,
                 m->noise_map ? ", noise map = sigma" : "",
                 mc == 1 ? " (colour: per opponent channel)" : "");
        row(name, mc == 1 ? g : NULL, c, "see below");
        if (m->noise_map) {
            snprintf(name, sizeof name, "**daed %s**, noise map blind", mf->name);
            row(name, mc == 1 ? gb : NULL, cb, "see below");
        }
        int ok = 1;
        for (int s = 0; s < 3; s++)
            ok &= (mc == 1 ? g[s] >= REF[6].g[s] : 1) && c[s] >= REF[6].c[s];
        printf("\nbars: %s\n\n", ok ? "all cleared" : "NOT all cleared");
    }

    if (speed) {
        dae_blas_set_threads(threads);
        double peak = sgemm_peak(), sg, sc, pps, ug, uc;
        dae_blas_set_threads(1);
        if ((rc = time_infer(&r, 1 * (mc == 1) + 3 * (mc == 3), 1024, cs, &sg, &ug, &err)))
            goto fail;
        if (mc == 1 && (rc = time_infer(&r, 3, 1024, cs, &sc, &uc, &err)))
            goto fail;
        if (mc == 3) {
            sc = sg;
            uc = ug;
        }
        double gflop = dae_model_flops(m, (dae_shape){m->in_shape.c, 1024, 1024}) / 1e9;
        double overhead =
            (double)(r.tile + 2 * r.R) * (r.tile + 2 * r.R) / ((double)r.tile * r.tile);
        if ((rc = time_train(m, train, cs, threads, 20, &pps, &err)))
            goto fail;
        double t_spm = NAN, t_pps = NAN, t_cpu = NAN;
        if (torch) {
            char cmd[1200];
            snprintf(cmd, sizeof cmd,
                     "OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 eval/ref/torch_photos.py '%s' "
                     "--threads %d --size 1024 --train-steps 20", model, threads);
            FILE *p = popen(cmd, "r");
            char out[2048] = "";
            if (p) {
                size_t got = fread(out, 1, sizeof out - 1, p);
                out[got] = '\0';
                pclose(p);
            }
            t_spm = json_num(out, "infer_s_per_mpx");
            t_pps = json_num(out, "train_patches_per_s");
            t_cpu = json_num(out, "infer_cpu_s_per_mpx");
            if (!isfinite(t_spm))
                fprintf(stderr, "photos: torch_photos.py gave no result: %s\n", out);
        }
        printf("Speed, %d thread%s (1024x1024 image; training: 40x40 patches, batch 64):\n\n",
               threads, threads == 1 ? "" : "s");
        printf("| measure | daed | PyTorch | daed / PyTorch |\n|---|---|---|---|\n");
        printf("| sgemm peak (1024^3) | %.1f GFLOP/s | | |\n", peak);
        if (mc == 1) {
            double planes = r.chroma_half ? 1.5 : 3; /* the passes' work, in full planes */
            printf("| gray inference | %.3f s/Mpx (%.1f GFLOP/s, %.0f%% of peak; tiles add "
                   "%.0f%% work) | %.3f s/Mpx | %.2f |\n",
                   sg, gflop / sg, 100 * gflop / sg / peak, 100 * (overhead - 1), t_spm,
                   sg / t_spm);
            printf("| gray inference, CPU time | %.3f CPU-s/Mpx | %.3f CPU-s/Mpx | %.2f |\n",
                   ug, t_cpu, ug / t_cpu);
            printf("| colour inference (%s) | %.3f s/Mpx | %.3f s/Mpx | %.2f |\n",
                   r.chroma_half ? "luma + half chroma planes" : "3 opponent planes", sc,
                   planes * t_spm, sc / (planes * t_spm));
            printf("| colour inference, CPU time | %.3f CPU-s/Mpx | %.3f CPU-s/Mpx | %.2f |\n",
                   uc, planes * t_cpu, uc / (planes * t_cpu));
        } else {
            printf("| colour inference (3-channel model) | %.3f s/Mpx (%.1f GFLOP/s, %.0f%% of "
                   "peak) | %.3f s/Mpx | %.2f |\n",
                   sc, gflop / sc, 100 * gflop / sc / peak, t_spm, sc / t_spm);
            printf("| colour inference, CPU time | %.3f CPU-s/Mpx | %.3f CPU-s/Mpx | %.2f |\n",
                   uc, t_cpu, uc / t_cpu);
        }
        printf("| training (dae-train) | %.0f patches/s | %.0f patches/s | %.2f |\n", pps,
               t_pps, pps / t_pps);
        int side = r.tile + 2 * r.R;
        layer_table(m, (dae_shape){m->in_shape.c, side, side});
    }
    runner_free(&r);
    dae_modelfile_free(mf);
    return 0;
fail:
    fprintf(stderr, "photos: %s\n", err.msg);
    runner_free(&r);
    dae_modelfile_free(mf);
    return 1;
}

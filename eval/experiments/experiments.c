/* experiments.c — measurements and pictures of the classic autoencoder experiments (issue 9,
 * docs/experiments.md), run by eval/experiments/run.sh on the models dae-train writes.
 *
 *   experiments eval (MODEL | --baseline identity|nearest|bilinear|lanczos4)
 *               [--data mnist|fmnist] [--task T | --corrupt JSON] [--seed S] [--n N]
 *               [--eval-dir DIR] [--out RES.json --key K] [--png OUT --show N --rows in,out,clean]
 *   experiments jacobian MODEL [--n N] [--fd N] [--eps E] --out RES.json --key K
 *   experiments codes MODEL [--n N] [--eps E] --out RES.json --key K
 *   experiments interp MODEL --a I --b J [--steps S] --png-latent P --png-pixel P [--out --key]
 *   experiments anomaly PATTERN [--data mnist|fmnist] --out RES.json --key K
 *               [--heatmap OUT.png --heatmap-class k --show N]
 *   experiments put RES.json KEY JSON
 *   experiments recipe-corruption RECIPE.json
 *
 * Evaluation images are PROTOCOL.md §3.1's 2000 (the exported data/eval/<ds>_clean.f32),
 * the first N of them with --n (or N spread evenly for jacobian/codes). Inputs: --task clean
 * (the clean image), a §3.2 task name (the exported input file, so the numbers are the
 * PROTOCOL's), or --corrupt with a corrupt.h JSON set drawn per image from a dae_rng seeded
 * with --seed (default 1234). A 14x14 input given to a 28x28 model is upsampled bilinearly
 * (PROTOCOL §3.5). Metrics are §3.3's (quality.h). Results are merged into RES.json under
 * KEY, where '/' nests ("ae/clean" -> {"ae":{"clean":...}}); numbers are rounded to 5
 * significant decimals. Pictures are PNG strips written with the library's encoder: one
 * row per --rows entry (in: the input, nearest-upscaled if smaller; out: the output;
 * clean: the original), N columns, 2x magnified.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daed/train/corrupt.h"
#include "daed/io/dataset.h"
#include "daed/core/error.h"
#include "daed/io/image.h"
#include "daed/train/quality.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/train/recipe.h"
#include "daed/core/rng.h"
#include "daed/core/score.h"
#include "daed/train/scorefit.h"

#define N_EVAL 2000
#define BATCH 200
#define MAX_SHOW 32
#define SCALE 2
#define PAD 2

static void die(const char *what, const dae_error *e)
{
    fprintf(stderr, "experiments: %s: %s\n", what, e && e->msg[0] ? e->msg : "failed");
    exit(1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: experiments eval (MODEL | --baseline identity|nearest|bilinear|lanczos4)\n"
            "           [--data mnist|fmnist] [--task T | --corrupt JSON] [--seed S] [--n N]\n"
            "           [--eval-dir DIR] [--out RES.json --key K]\n"
            "           [--png OUT --show N --rows in,out,clean] [--idx i,j,..]\n"
            "       experiments jacobian MODEL [--n N] [--fd N] [--eps E] --out RES --key K\n"
            "       experiments codes MODEL [--n N] [--eps E] --out RES --key K\n"
            "       experiments interp MODEL --a I --b J [--steps S] --png-latent P\n"
            "           --png-pixel P [--out RES --key K]\n"
            "       experiments anomaly PATTERN(%%d = class) [--data mnist|fmnist] --out RES\n"
            "           --key K [--heatmap OUT.png --heatmap-class k --show N]\n"
            "       experiments put RES.json KEY JSON\n"
            "       experiments recipe-corruption RECIPE.json\n"
            "T: clean, denoise-g20, denoise-g50, denoise-mask50, inpaint-10, inpaint-14, sr2\n");
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "experiments: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* ---- options: one flat parser for every subcommand ---- */
typedef struct opts {
    const char *model, *baseline, *data, *task, *corrupt, *eval_dir, *out, *key, *png;
    const char *rows, *idx, *png_latent, *png_pixel, *heatmap;
    int n, show, fd, a, b, steps, heatmap_class;
    unsigned long long seed;
    double eps;
} opts;

static void parse_opts(int argc, char **argv, opts *o)
{
    *o = (opts){.data = "mnist", .task = "clean", .eval_dir = "data/eval", .n = N_EVAL,
                .show = 0, .fd = 20, .a = -1, .b = -1, .steps = 10, .heatmap_class = 0,
                .seed = 1234, .eps = -1, .rows = "in,out,clean"};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(a, "--", 2) != 0) {
            if (o->model)
                usage();
            o->model = a;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--baseline")) o->baseline = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--task")) o->task = v;
        else if (!strcmp(a, "--corrupt")) o->corrupt = v;
        else if (!strcmp(a, "--eval-dir")) o->eval_dir = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--key")) o->key = v;
        else if (!strcmp(a, "--png")) o->png = v;
        else if (!strcmp(a, "--rows")) o->rows = v;
        else if (!strcmp(a, "--idx")) o->idx = v;
        else if (!strcmp(a, "--png-latent")) o->png_latent = v;
        else if (!strcmp(a, "--png-pixel")) o->png_pixel = v;
        else if (!strcmp(a, "--heatmap")) o->heatmap = v;
        else if (!strcmp(a, "--n")) o->n = atoi(v);
        else if (!strcmp(a, "--show")) o->show = atoi(v);
        else if (!strcmp(a, "--fd")) o->fd = atoi(v);
        else if (!strcmp(a, "--a")) o->a = atoi(v);
        else if (!strcmp(a, "--b")) o->b = atoi(v);
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "--heatmap-class")) o->heatmap_class = atoi(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--eps")) o->eps = atof(v);
        else usage();
    }
    if (o->n < 1 || o->n > N_EVAL || o->show < 0 || o->show > MAX_SHOW || o->steps < 2 ||
        o->steps > MAX_SHOW || o->fd < 0 || (o->out && !o->key)) {
        fprintf(stderr, "experiments: --n 1..%d, --show 0..%d, --steps 2..%d, --fd >= 0; "
                        "--out needs --key\n", N_EVAL, MAX_SHOW, MAX_SHOW);
        exit(2);
    }
    if (strcmp(o->data, "mnist") && strcmp(o->data, "fmnist")) {
        fprintf(stderr, "experiments: --data is mnist or fmnist, not %s\n", o->data);
        exit(2);
    }
}

/* ---- results file ---- */

static double round5(double x)
{
    if (!isfinite(x) || x == 0)
        return x;
    double m = pow(10.0, 5 - (int)ceil(log10(fabs(x))));
    return round(x * m) / m;
}

static cJSON *num(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(round5(x)) : cJSON_CreateNull();
}

/* Set KEY ('/' nests) of the JSON object in path to item (owned), creating the file. */
static void result_put(const char *path, const char *key, cJSON *item)
{
    cJSON *root = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = xmalloc((size_t)n + 1);
        size_t got = fread(buf, 1, (size_t)n, f);
        buf[got] = 0;
        fclose(f);
        root = cJSON_Parse(buf);
        free(buf);
        if (!root || !cJSON_IsObject(root)) {
            fprintf(stderr, "experiments: %s is not a JSON object\n", path);
            exit(1);
        }
    } else {
        root = cJSON_CreateObject();
    }
    char k[256];
    snprintf(k, sizeof k, "%s", key);
    cJSON *obj = root;
    char *part = k;
    for (char *slash; (slash = strchr(part, '/')); part = slash + 1) {
        *slash = 0;
        cJSON *next = cJSON_GetObjectItemCaseSensitive(obj, part);
        if (!cJSON_IsObject(next)) {
            cJSON_DeleteItemFromObjectCaseSensitive(obj, part);
            next = cJSON_AddObjectToObject(obj, part);
        }
        obj = next;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, part))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, part, item);
    else
        cJSON_AddItemToObject(obj, part, item);
    char *text = cJSON_Print(root);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "experiments: cannot write %s\n", path);
        exit(1);
    }
    free(text);
    cJSON_Delete(root);
}

static void result_maybe_put(const opts *o, cJSON *item)
{
    if (o->out)
        result_put(o->out, o->key, item);
    else {
        char *t = cJSON_Print(item);
        printf("%s\n", t);
        free(t);
        cJSON_Delete(item);
    }
}

/* ---- evaluation data ---- */

static float *read_f32(const char *dir, const char *ds, const char *name, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s_%s.f32", dir, ds, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "experiments: cannot open %s (make eval-data)\n", path);
        exit(1);
    }
    float *v = xmalloc(n * sizeof *v);
    size_t got = fread(v, sizeof *v, n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        fprintf(stderr, "experiments: %s: expected %zu float32 values\n", path, n);
        exit(1);
    }
    return v;
}

static const char *const protocol_tasks[] = {"denoise-g20", "denoise-g50", "denoise-mask50",
                                             "inpaint-10",  "inpaint-14",  "sr2"};

/* The inputs of the first n eval images: *side is 28, or 14 for sr2. */
static float *eval_inputs(const opts *o, const float *clean, int n, int *side)
{
    *side = 28;
    if (o->corrupt) {
        dae_corruption_set set;
        dae_error e = {0};
        int oc, oh, ow;
        if (dae_corruption_set_parse(o->corrupt, strlen(o->corrupt), &set, &e) ||
            dae_corruption_out_shape(&set, 1, 28, 28, &oc, &oh, &ow, &e))
            die(o->corrupt, &e);
        *side = oh;
        float *in = xmalloc((size_t)n * (size_t)(oh * ow) * sizeof *in);
        dae_rng r;
        dae_rng_seed(&r, o->seed);
        for (int i = 0; i < n; i++)
            dae_corrupt_sample(&set, &r, clean + (size_t)i * 784, 1, 28, 28,
                               in + (size_t)i * (size_t)(oh * ow), NULL);
        return in;
    }
    if (!strcmp(o->task, "clean")) {
        float *in = xmalloc((size_t)n * 784 * sizeof *in);
        memcpy(in, clean, (size_t)n * 784 * sizeof *in);
        return in;
    }
    for (size_t t = 0; t < sizeof protocol_tasks / sizeof *protocol_tasks; t++)
        if (!strcmp(o->task, protocol_tasks[t])) {
            int sr = !strcmp(o->task, "sr2");
            *side = sr ? 14 : 28;
            char name[64];
            snprintf(name, sizeof name, "%s_input", o->task);
            float *all = read_f32(o->eval_dir, o->data, name,
                                  (size_t)N_EVAL * (size_t)(*side * *side));
            return all; /* the first n are used */
        }
    fprintf(stderr, "experiments: unknown task %s\n", o->task);
    exit(2);
}

/* ---- resampling (one 1-channel image) ---- */

static void resize_bilinear(const float *src, int sw, int sh, float *dst, int dw, int dh)
{
    dae_image a = {.w = sw, .h = sh, .c = 1, .px = (float *)src}, b = {0};
    dae_error e = {0};
    if (dae_image_resize(&a, dw, dh, &b, &e))
        die("bilinear resize", &e);
    memcpy(dst, b.px, (size_t)dw * (size_t)dh * sizeof *dst);
    dae_image_free(&b);
}

static void resize_nearest(const float *src, int sw, int sh, float *dst, int dw, int dh)
{
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++)
            dst[y * dw + x] = src[(y * sh / dh) * sw + x * sw / dw];
}

/* Lanczos (a = 4) weights of the 8 taps sx-3 .. sx+4 for fractional offset f, normalised
 * (the kernel of OpenCV's INTER_LANCZOS4). */
static void lanczos4_weights(float f, float w[8])
{
    double sum = 0;
    for (int i = 0; i < 8; i++) {
        double d = (double)f + 3 - i; /* distance from tap sx-3+i */
        double v;
        if (fabs(d) < 1e-9)
            v = 1;
        else
            v = 4 * sin(M_PI * d) * sin(M_PI * d / 4) / (M_PI * M_PI * d * d);
        w[i] = (float)v;
        sum += v;
    }
    for (int i = 0; i < 8; i++)
        w[i] = (float)(w[i] / sum);
}

/* Separable Lanczos-4 resize, source coordinate (x + 0.5) * sw / dw - 0.5, borders
 * replicated. */
static void resize_lanczos4(const float *src, int sw, int sh, float *dst, int dw, int dh)
{
    float *tmp = xmalloc((size_t)sh * (size_t)dw * sizeof *tmp);
    for (int x = 0; x < dw; x++) {
        double fx = (x + 0.5) * sw / dw - 0.5;
        int sx = (int)floor(fx);
        float w[8];
        lanczos4_weights((float)(fx - sx), w);
        for (int y = 0; y < sh; y++) {
            double acc = 0;
            for (int i = 0; i < 8; i++) {
                int xx = sx - 3 + i;
                xx = xx < 0 ? 0 : xx >= sw ? sw - 1 : xx;
                acc += w[i] * src[y * sw + xx];
            }
            tmp[y * dw + x] = (float)acc;
        }
    }
    for (int y = 0; y < dh; y++) {
        double fy = (y + 0.5) * sh / dh - 0.5;
        int sy = (int)floor(fy);
        float w[8];
        lanczos4_weights((float)(fy - sy), w);
        for (int x = 0; x < dw; x++) {
            double acc = 0;
            for (int i = 0; i < 8; i++) {
                int yy = sy - 3 + i;
                yy = yy < 0 ? 0 : yy >= sh ? sh - 1 : yy;
                acc += w[i] * tmp[yy * dw + x];
            }
            dst[y * dw + x] = (float)acc;
        }
    }
    free(tmp);
}

/* ---- pictures ---- */

/* A rows x cols strip of 28x28 tiles (cells[r*cols + c], 1 or 3 planes each of 784),
 * 2x magnified, white padding; written as PNG. */
static void write_strip(const char *path, const float *const *cells, int rows, int cols,
                        int channels)
{
    int tw = 28 * SCALE, W = cols * tw + (cols + 1) * PAD, H = rows * tw + (rows + 1) * PAD;
    dae_image im = {0};
    dae_error e = {0};
    if (dae_image_alloc(&im, W, H, channels, 0, &e))
        die(path, &e);
    size_t plane = (size_t)W * (size_t)H;
    for (size_t i = 0; i < plane * (size_t)channels; i++)
        im.px[i] = 1.0f;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const float *t = cells[r * cols + c];
            if (!t)
                continue;
            int x0 = PAD + c * (tw + PAD), y0 = PAD + r * (tw + PAD);
            for (int ch = 0; ch < channels; ch++)
                for (int y = 0; y < tw; y++)
                    for (int x = 0; x < tw; x++) {
                        float v = t[ch * 784 + (y / SCALE) * 28 + x / SCALE];
                        im.px[(size_t)ch * plane + (size_t)(y0 + y) * W + x0 + x] =
                            v < 0 ? 0 : v > 1 ? 1 : v;
                    }
        }
    if (dae_png_write_file(path, &im, &e))
        die(path, &e);
    dae_image_free(&im);
}

/* The images shown: --idx, else one per class for MNIST (digit d = 200d..200d+199), else
 * the first N. */
static int show_indices(const opts *o, int n, int *idx)
{
    int k = 0;
    if (o->idx) {
        for (const char *p = o->idx; *p && k < MAX_SHOW;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v >= n) {
                fprintf(stderr, "experiments: --idx %s: indices 0..%d\n", o->idx, n - 1);
                exit(2);
            }
            idx[k++] = (int)v;
            p = *end == ',' ? end + 1 : end;
        }
        return k;
    }
    for (int i = 0; i < o->show; i++)
        idx[k++] = !strcmp(o->data, "mnist") ? (i % 10) * 200 + i / 10 : i;
    return k;
}

/* ---- models ---- */

static dae_modelfile *load_model(const char *path)
{
    dae_error e = {0};
    dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
    if (!mf)
        die(path, &e);
    return mf;
}

/* Restore the first n inputs (side x side) into out (n, 784): a model (14x14 inputs of a
 * 28x28 model upsampled bilinearly first) or a baseline. */
static void restore(const opts *o, const dae_model *m, const float *in, int side, int n,
                    float *out)
{
    dae_error e = {0};
    if (!m) {
        for (int i = 0; i < n; i++) {
            const float *x = in + (size_t)i * (size_t)(side * side);
            float *y = out + (size_t)i * 784;
            if (side == 28)
                memcpy(y, x, 784 * sizeof *y);
            else if (!strcmp(o->baseline, "bilinear"))
                resize_bilinear(x, side, side, y, 28, 28);
            else if (!strcmp(o->baseline, "lanczos4"))
                resize_lanczos4(x, side, side, y, 28, 28);
            else
                resize_nearest(x, side, side, y, 28, 28);
        }
        return;
    }
    int mside = m->in_shape.h;
    if (m->in_shape.c != 1 || m->in_shape.w != mside || (mside != side && mside != 28) ||
        m->out_shape.h != 28 || m->out_shape.w != 28 || m->out_shape.c != 1) {
        fprintf(stderr, "experiments: model input %dx%dx%d / output %dx%dx%d does not fit "
                        "%dx%d inputs and 28x28 outputs\n", m->in_shape.c, m->in_shape.h,
                m->in_shape.w, m->out_shape.c, m->out_shape.h, m->out_shape.w, side, side);
        exit(1);
    }
    dae_shape s = {1, mside, mside};
    dae_workspace *ws = dae_workspace_create(m, BATCH, s, 0, &e);
    if (!ws)
        die("workspace", &e);
    float *buf = xmalloc((size_t)BATCH * (size_t)(mside * mside) * sizeof *buf);
    for (int i0 = 0; i0 < n; i0 += BATCH) {
        int b = n - i0 < BATCH ? n - i0 : BATCH;
        for (int i = 0; i < b; i++) {
            const float *x = in + (size_t)(i0 + i) * (size_t)(side * side);
            float *d = buf + (size_t)i * (size_t)(mside * mside);
            if (mside == side)
                memcpy(d, x, (size_t)(side * side) * sizeof *d);
            else
                resize_bilinear(x, side, side, d, mside, mside);
        }
        const float *y;
        dae_shape ys;
        if (dae_model_forward(m, ws, buf, b, s, &y, &ys, &e))
            die("forward", &e);
        memcpy(out + (size_t)i0 * 784, y, (size_t)b * 784 * sizeof *out);
    }
    free(buf);
    dae_workspace_free(ws);
}

static cJSON *quality_json(const float *out, const float *clean, int n)
{
    dae_quality q;
    dae_quality_init(&q);
    dae_quality_add(&q, out, clean, n, 1, 28, 28, 1);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "psnr", num(dae_quality_psnr(&q)));
    cJSON_AddItemToObject(j, "psnr_agg", num(dae_quality_psnr_agg(&q)));
    cJSON_AddItemToObject(j, "ssim", num(dae_quality_ssim(&q)));
    cJSON_AddNumberToObject(j, "n_capped", (double)q.n_capped);
    return j;
}

static int cmd_eval(const opts *o)
{
    if (!o->model == !o->baseline)
        usage();
    if (o->baseline && strcmp(o->baseline, "identity") && strcmp(o->baseline, "nearest") &&
        strcmp(o->baseline, "bilinear") && strcmp(o->baseline, "lanczos4"))
        usage();
    int n = o->n;
    float *clean = read_f32(o->eval_dir, o->data, "clean", (size_t)N_EVAL * 784);
    int side;
    float *in = eval_inputs(o, clean, N_EVAL, &side);
    size_t isz = (size_t)(side * side);
    dae_modelfile *mf = o->model ? load_model(o->model) : NULL;
    const dae_model *m = mf ? mf->model : NULL;
    float *out = NULL;
    if (o->out) {
        out = xmalloc((size_t)n * 784 * sizeof *out);
        double t0 = now_s();
        restore(o, m, in, side, n, out);
        double secs = now_s() - t0;
        cJSON *j = quality_json(out, clean, n);
        if (side == 28) {
            dae_quality q;
            dae_quality_init(&q);
            dae_quality_add(&q, in, clean, n, 1, 28, 28, 1);
            cJSON_AddItemToObject(j, "psnr_input", num(dae_quality_psnr(&q)));
            cJSON_AddItemToObject(j, "ssim_input", num(dae_quality_ssim(&q)));
        }
        cJSON_AddNumberToObject(j, "n", n);
        cJSON_AddStringToObject(j, "input", o->corrupt ? o->corrupt : o->task);
        cJSON_AddItemToObject(j, "seconds", num(secs));
        result_maybe_put(o, j);
    }
    if (o->png) {
        /* only the images shown are restored */
        int idx[MAX_SHOW], k = show_indices(o, N_EVAL, idx), nr = 0;
        const char *rows[3];
        char spec[64];
        snprintf(spec, sizeof spec, "%s", o->rows);
        for (char *t = strtok(spec, ","); t && nr < 3; t = strtok(NULL, ","))
            rows[nr++] = t;
        float *sel = xmalloc((size_t)k * isz * sizeof *sel);
        float *up = xmalloc((size_t)k * 784 * sizeof *up);
        float *res = xmalloc((size_t)k * 784 * sizeof *res);
        const float **cells = xmalloc((size_t)(nr * k) * sizeof *cells);
        for (int c = 0; c < k; c++) {
            const float *x = in + (size_t)idx[c] * isz;
            memcpy(sel + (size_t)c * isz, x, isz * sizeof *sel);
            if (side == 28)
                memcpy(up + (size_t)c * 784, x, 784 * sizeof *up);
            else
                resize_nearest(x, side, side, up + (size_t)c * 784, 28, 28);
        }
        restore(o, m, sel, side, k, res);
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < k; c++) {
                const float *p = !strcmp(rows[r], "in")    ? up + (size_t)c * 784
                                 : !strcmp(rows[r], "out") ? res + (size_t)c * 784
                                 : !strcmp(rows[r], "clean")
                                     ? clean + (size_t)idx[c] * 784
                                     : NULL;
                if (!p) {
                    fprintf(stderr, "experiments: --rows takes in, out, clean\n");
                    exit(2);
                }
                cells[r * k + c] = p;
            }
        write_strip(o->png, cells, nr, k, 1);
        free(cells);
        free(res);
        free(up);
        free(sel);
    }
    free(out);
    dae_modelfile_free(mf);
    free(in);
    free(clean);
    return 0;
}

/* ---- encoder Jacobian ---- */

/* Encoder = [flatten,] linear, sigmoid|tanh: *lin = the linear layer, *act its activation. */
static int simple_encoder(const dae_model *m, const dae_layer **lin, dae_act *act)
{
    int i = 0;
    if (i < m->n_enc && m->layers[i].kind == DAE_LAYER_FLATTEN)
        i++;
    if (m->n_enc != i + 2 || m->layers[i].kind != DAE_LAYER_LINEAR ||
        m->layers[i + 1].kind != DAE_LAYER_ACT ||
        (m->layers[i + 1].act != DAE_ACT_SIGMOID && m->layers[i + 1].act != DAE_ACT_TANH))
        return 0;
    *lin = &m->layers[i];
    *act = m->layers[i + 1].act;
    return 1;
}

/* ||J||_F^2 at x exactly: J = diag(f'(Wx+b)) W. */
static double jac_analytic(const dae_model *m, const dae_layer *l, dae_act act, const float *x,
                           const double *row_sq)
{
    const float *W = m->params + l->w_off, *bias = m->params + l->b_off;
    double s = 0;
    for (int j = 0; j < l->out_f; j++) {
        double a = bias[j];
        for (int i = 0; i < l->in_f; i++)
            a += (double)W[(size_t)j * l->in_f + i] * x[i];
        double d;
        if (act == DAE_ACT_SIGMOID) {
            double h = 1 / (1 + exp(-a));
            d = h * (1 - h);
        } else {
            double t = tanh(a);
            d = 1 - t * t;
        }
        s += d * d * row_sq[j];
    }
    return s;
}

/* ||J||_F^2 at x by central differences: columns in batches of up to BATCH/2 inputs. */
static double jac_fd(const dae_model *m, dae_workspace *ws, const float *x, int d, double eps,
                     float *buf)
{
    dae_error e = {0};
    dae_shape s = m->in_shape;
    double sum = 0;
    int per = BATCH / 2;
    for (int i0 = 0; i0 < d; i0 += per) {
        int nb = d - i0 < per ? d - i0 : per;
        for (int k = 0; k < nb; k++) {
            float *p = buf + (size_t)(2 * k) * d, *q = p + d;
            memcpy(p, x, (size_t)d * sizeof *p);
            memcpy(q, x, (size_t)d * sizeof *q);
            p[i0 + k] += (float)eps;
            q[i0 + k] -= (float)eps;
        }
        const float *z;
        dae_shape zs;
        if (dae_model_encode(m, ws, buf, 2 * nb, s, &z, &zs, &e))
            die("encode", &e);
        int L = zs.c * zs.h * zs.w;
        for (int k = 0; k < nb; k++)
            for (int j = 0; j < L; j++) {
                double g = ((double)z[(size_t)(2 * k) * L + j] -
                            (double)z[(size_t)(2 * k + 1) * L + j]) / (2 * eps);
                sum += g * g;
            }
    }
    return sum;
}

static int cmd_jacobian(const opts *o)
{
    if (!o->model || !o->out)
        usage();
    dae_modelfile *mf = load_model(o->model);
    const dae_model *m = mf->model;
    int d = m->in_shape.c * m->in_shape.h * m->in_shape.w;
    if (d != 784) {
        fprintf(stderr, "experiments: jacobian needs a 28x28 gray model\n");
        exit(1);
    }
    float *clean = read_f32(o->eval_dir, o->data, "clean", (size_t)N_EVAL * 784);
    const dae_layer *lin = NULL;
    dae_act act = DAE_ACT_SIGMOID;
    int exact = simple_encoder(m, &lin, &act);
    double *row_sq = NULL;
    if (exact) {
        row_sq = xmalloc((size_t)lin->out_f * sizeof *row_sq);
        for (int j = 0; j < lin->out_f; j++) {
            double s = 0;
            for (int i = 0; i < lin->in_f; i++) {
                double w = m->params[lin->w_off + (size_t)j * lin->in_f + i];
                s += w * w;
            }
            row_sq[j] = s;
        }
    }
    dae_error e = {0};
    dae_workspace *ws = dae_workspace_create(m, BATCH, m->in_shape, 0, &e);
    if (!ws)
        die("workspace", &e);
    float *buf = xmalloc((size_t)BATCH * d * sizeof *buf);
    double eps = o->eps > 0 ? o->eps : 1e-3;
    /* n images spread over the set; exact on all, differences on the first --fd of them */
    int n_fd = exact ? (o->fd < o->n ? o->fd : o->n) : o->n;
    double sum_fro = 0, sum_sq = 0, fd_fro = 0, fd_ex = 0, fd_max_rel = 0;
    for (int k = 0; k < o->n; k++) {
        const float *x = clean + (size_t)((long)k * N_EVAL / o->n) * 784;
        double sq = exact ? jac_analytic(m, lin, act, x, row_sq) : NAN;
        if (k < n_fd) {
            double f = jac_fd(m, ws, x, d, eps, buf);
            fd_fro += sqrt(f);
            if (exact) {
                fd_ex += sqrt(sq);
                double rel = fabs(sqrt(f) - sqrt(sq)) / sqrt(sq);
                fd_max_rel = rel > fd_max_rel ? rel : fd_max_rel;
            } else {
                sq = f;
            }
        }
        sum_fro += sqrt(sq);
        sum_sq += sq;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "fro", num(sum_fro / o->n));
    cJSON_AddItemToObject(j, "fro_sq", num(sum_sq / o->n));
    cJSON_AddNumberToObject(j, "n", o->n);
    cJSON_AddStringToObject(j, "method", exact ? "exact" : "central differences");
    if (exact && n_fd > 0) {
        cJSON_AddItemToObject(j, "fd_check_fro", num(fd_fro / n_fd));
        cJSON_AddItemToObject(j, "exact_fro_same_images", num(fd_ex / n_fd));
        cJSON_AddItemToObject(j, "fd_max_rel_diff", num(fd_max_rel));
        cJSON_AddNumberToObject(j, "fd_n", n_fd);
    }
    result_maybe_put(o, j);
    free(buf);
    free(row_sq);
    dae_workspace_free(ws);
    free(clean);
    dae_modelfile_free(mf);
    return 0;
}

/* ---- code statistics ---- */

static int cmd_codes(const opts *o)
{
    if (!o->model)
        usage();
    dae_modelfile *mf = load_model(o->model);
    const dae_model *m = mf->model;
    float *clean = read_f32(o->eval_dir, o->data, "clean", (size_t)N_EVAL * 784);
    dae_error e = {0};
    dae_workspace *ws = dae_workspace_create(m, BATCH, m->in_shape, 0, &e);
    if (!ws)
        die("workspace", &e);
    double eps = o->eps >= 0 ? o->eps : 0.01;
    int L = m->latent_shape.c * m->latent_shape.h * m->latent_shape.w;
    float *maxabs = calloc((size_t)L, sizeof *maxabs);
    float *buf = xmalloc((size_t)BATCH * 784 * sizeof *buf);
    long zero = 0, near = 0, total = 0;
    double sum_abs = 0;
    for (int i0 = 0; i0 < o->n; i0 += BATCH) {
        int b = o->n - i0 < BATCH ? o->n - i0 : BATCH;
        for (int i = 0; i < b; i++)
            memcpy(buf + (size_t)i * 784,
                   clean + (size_t)((long)(i0 + i) * N_EVAL / o->n) * 784, 784 * sizeof *buf);
        const float *z;
        dae_shape zs;
        if (dae_model_encode(m, ws, buf, b, m->in_shape, &z, &zs, &e))
            die("encode", &e);
        for (size_t t = 0; t < (size_t)b * L; t++) {
            float a = fabsf(z[t]);
            zero += a == 0;
            near += a < eps;
            sum_abs += a;
            if (a > maxabs[t % L])
                maxabs[t % L] = a;
        }
        total += (long)b * L;
    }
    int dead = 0;
    for (int j = 0; j < L; j++)
        dead += maxabs[j] < eps;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "units", L);
    cJSON_AddItemToObject(j, "eps", num(eps));
    cJSON_AddItemToObject(j, "frac_near_zero", num((double)near / total));
    cJSON_AddItemToObject(j, "frac_zero", num((double)zero / total));
    cJSON_AddItemToObject(j, "active_per_image", num((double)(total - near) / o->n));
    cJSON_AddItemToObject(j, "mean_abs", num(sum_abs / total));
    cJSON_AddNumberToObject(j, "dead_units", dead);
    cJSON_AddNumberToObject(j, "n", o->n);
    result_maybe_put(o, j);
    free(buf);
    free(maxabs);
    dae_workspace_free(ws);
    free(clean);
    dae_modelfile_free(mf);
    return 0;
}

/* ---- latent interpolation ---- */

/* Fraction of pixels in [0.25, 0.75]: the grey "double exposure" of a blend. */
static double mid_fraction(const float *x)
{
    int k = 0;
    for (int i = 0; i < 784; i++)
        k += x[i] >= 0.25f && x[i] <= 0.75f;
    return k / 784.0;
}

static int cmd_interp(const opts *o)
{
    if (!o->model || o->a < 0 || o->b < 0 || o->a >= N_EVAL || o->b >= N_EVAL ||
        !o->png_latent || !o->png_pixel)
        usage();
    dae_modelfile *mf = load_model(o->model);
    const dae_model *m = mf->model;
    float *clean = read_f32(o->eval_dir, o->data, "clean", (size_t)N_EVAL * 784);
    dae_error e = {0};
    dae_workspace *ws = dae_workspace_create(m, MAX_SHOW, m->in_shape, 0, &e);
    if (!ws)
        die("workspace", &e);
    int S = o->steps, L = m->latent_shape.c * m->latent_shape.h * m->latent_shape.w;
    float ab[2 * 784];
    memcpy(ab, clean + (size_t)o->a * 784, sizeof(float) * 784);
    memcpy(ab + 784, clean + (size_t)o->b * 784, sizeof(float) * 784);
    const float *z;
    dae_shape zs;
    if (dae_model_encode(m, ws, ab, 2, m->in_shape, &z, &zs, &e))
        die("encode", &e);
    float *zz = xmalloc((size_t)S * L * sizeof *zz);
    double dist = 0;
    for (int j = 0; j < L; j++)
        dist += ((double)z[j] - z[L + j]) * ((double)z[j] - z[L + j]);
    for (int s = 0; s < S; s++) {
        float t = (float)s / (float)(S - 1);
        for (int j = 0; j < L; j++)
            zz[(size_t)s * L + j] = (1 - t) * z[j] + t * z[L + j];
    }
    const float *y;
    dae_shape ys;
    if (dae_model_decode(m, ws, zz, S, zs, &y, &ys, &e))
        die("decode", &e);
    float *dec = xmalloc((size_t)S * 784 * sizeof *dec), *fade = xmalloc((size_t)S * 784 * 4);
    memcpy(dec, y, (size_t)S * 784 * sizeof *dec);
    for (int s = 0; s < S; s++) {
        float t = (float)s / (float)(S - 1);
        for (int i = 0; i < 784; i++) {
            float v = dec[(size_t)s * 784 + i];
            dec[(size_t)s * 784 + i] = v < 0 ? 0 : v > 1 ? 1 : v;
            fade[(size_t)s * 784 + i] = (1 - t) * ab[i] + t * ab[784 + i];
        }
    }
    const float *cells[MAX_SHOW] = {0};
    for (int s = 0; s < S; s++)
        cells[s] = dec + (size_t)s * 784;
    write_strip(o->png_latent, cells, 1, S, 1);
    for (int s = 0; s < S; s++)
        cells[s] = fade + (size_t)s * 784;
    write_strip(o->png_pixel, cells, 1, S, 1);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "a", o->a);
    cJSON_AddNumberToObject(j, "b", o->b);
    cJSON_AddNumberToObject(j, "steps", S);
    cJSON_AddItemToObject(j, "code_distance", num(sqrt(dist)));
    cJSON_AddItemToObject(j, "psnr_a", num(dae_psnr(dec, ab, 784)));
    cJSON_AddItemToObject(j, "psnr_b", num(dae_psnr(dec + (size_t)(S - 1) * 784, ab + 784, 784)));
    /* grey fraction of the middle frame (S odd: the midpoint; even: the one before it) */
    int mid = (S - 1) / 2;
    cJSON_AddItemToObject(j, "mid_grey_latent", num(mid_fraction(dec + (size_t)mid * 784)));
    cJSON_AddItemToObject(j, "mid_grey_pixel", num(mid_fraction(fade + (size_t)mid * 784)));
    cJSON_AddItemToObject(j, "grey_a", num(mid_fraction(ab)));
    cJSON_AddItemToObject(j, "grey_b", num(mid_fraction(ab + 784)));
    if (o->out)
        result_maybe_put(o, j);
    else
        cJSON_Delete(j);
    free(dec);
    free(fade);
    free(zz);
    dae_workspace_free(ws);
    free(clean);
    dae_modelfile_free(mf);
    return 0;
}

/* ---- anomaly scoring ---- */

/* (fpr, tpr) at every distinct threshold, highest score first; at most max_pts kept
 * (evenly by index, both ends included). Returns a {"fpr":[..],"tpr":[..]} object. */
typedef struct sc_lab {
    double s;
    int pos;
} sc_lab;

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const sc_lab *)a)->s, y = ((const sc_lab *)b)->s;
    return x < y ? 1 : x > y ? -1 : 0;
}

static cJSON *roc_json(const double *score, const unsigned char *pos, int n, int max_pts)
{
    sc_lab *v = xmalloc((size_t)n * sizeof *v);
    int P = 0;
    for (int i = 0; i < n; i++) {
        v[i].s = score[i];
        v[i].pos = pos[i];
        P += pos[i] != 0;
    }
    int N = n - P;
    qsort(v, (size_t)n, sizeof *v, by_score_desc);
    double *fx = xmalloc((size_t)(n + 1) * sizeof *fx), *ty = xmalloc((size_t)(n + 1) * sizeof *ty);
    int k = 0, tp = 0, fp = 0;
    fx[k] = 0;
    ty[k++] = 0;
    for (int i = 0; i < n; i++) {
        tp += v[i].pos != 0;
        fp += v[i].pos == 0;
        if (i + 1 == n || v[i + 1].s != v[i].s) {
            fx[k] = (double)fp / N;
            ty[k++] = (double)tp / P;
        }
    }
    cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "fpr"),
          *b = cJSON_AddArrayToObject(j, "tpr");
    int m = k < max_pts ? k : max_pts;
    for (int t = 0; t < m; t++) {
        int i = m == 1 ? 0 : (int)((long)t * (k - 1) / (m - 1));
        cJSON_AddItemToArray(a, num(fx[i]));
        cJSON_AddItemToArray(b, num(ty[i]));
    }
    free(fx);
    free(ty);
    free(v);
    return j;
}

/* "hot" colour map: black -> red -> yellow -> white. */
static void hot(float v, float *r, float *g, float *b)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    *r = v * 3 > 1 ? 1 : v * 3;
    *g = v * 3 - 1 < 0 ? 0 : v * 3 - 1 > 1 ? 1 : v * 3 - 1;
    *b = v * 3 - 2 < 0 ? 0 : v * 3 - 2;
}

static void heatmap(const opts *o, const char *path, const dae_dataset *test,
                    const double *score, int k)
{
    if (test->n <= 0)
        return;
    dae_error e = {0};
    char mp[1024];
    snprintf(mp, sizeof mp, o->model, k);
    dae_modelfile *mf = load_model(mp);
    dae_scorer *sc = dae_modelfile_scorer(mf, &e);
    if (!sc)
        die(mp, &e);
    /* columns: the 2 first normal test images, then the highest-scored anomalies */
    int show = o->show < 3 ? 3 : o->show, idx[MAX_SHOW], c = 0;
    for (int i = 0; i < test->n && c < 2; i++)
        if (test->labels[i] == k)
            idx[c++] = i;
    unsigned char *used = calloc((size_t)(unsigned)test->n, 1);
    if (!used) {
        fprintf(stderr, "experiments: out of memory\n");
        exit(1);
    }
    while (c < show) {
        int best = -1;
        for (int i = 0; i < test->n; i++)
            if (test->labels[i] != k && !used[i] && (best < 0 || score[i] > score[best]))
                best = i;
        used[best] = 1;
        idx[c++] = best;
    }
    free(used);
    float *x = xmalloc((size_t)show * 784 * sizeof *x), *maps = xmalloc((size_t)show * 784 * 4);
    for (int i = 0; i < show; i++)
        memcpy(x + (size_t)i * 784, dae_dataset_sample(test, idx[i]), 784 * sizeof *x);
    dae_workspace *ws = dae_workspace_create(mf->model, show, mf->model->in_shape, 0, &e);
    dae_score_ws *sw = ws ? dae_score_ws_create(sc, show, &e) : NULL;
    double sv[MAX_SHOW];
    if (!sw || dae_score_batch(sc, ws, sw, x, show, sv, NULL, maps, &e))
        die("heatmap", &e);
    const float *y;
    dae_shape ys;
    if (dae_model_forward(mf->model, ws, x, show, mf->model->in_shape, &y, &ys, &e))
        die("forward", &e);
    float mx = 0;
    for (size_t i = 0; i < (size_t)show * 784; i++)
        mx = maps[i] > mx ? maps[i] : mx;
    /* RGB cells: input, reconstruction (grey), error map (hot, one scale for the strip) */
    float *rgb = xmalloc((size_t)3 * show * 3 * 784 * sizeof *rgb);
    const float *cells[3 * MAX_SHOW];
    for (int i = 0; i < show; i++) {
        float *a = rgb + (size_t)(0 * show + i) * 3 * 784, *b = rgb + (size_t)(show + i) * 3 * 784,
              *h = rgb + (size_t)(2 * show + i) * 3 * 784;
        for (int p = 0; p < 784; p++) {
            for (int ch = 0; ch < 3; ch++) {
                a[ch * 784 + p] = x[(size_t)i * 784 + p];
                float v = y[(size_t)i * 784 + p];
                b[ch * 784 + p] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
            hot(mx > 0 ? maps[(size_t)i * 784 + p] / mx : 0, &h[p], &h[784 + p], &h[1568 + p]);
        }
        cells[i] = a;
        cells[show + i] = b;
        cells[2 * show + i] = h;
    }
    write_strip(path, cells, 3, show, 3);
    cJSON *j = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(j, "test_index"),
          *labs = cJSON_AddArrayToObject(j, "label"), *ss = cJSON_AddArrayToObject(j, "score");
    for (int i = 0; i < show; i++) {
        cJSON_AddItemToArray(ids, cJSON_CreateNumber(idx[i]));
        cJSON_AddItemToArray(labs, cJSON_CreateNumber(test->labels[idx[i]]));
        cJSON_AddItemToArray(ss, num(sv[i]));
    }
    cJSON_AddNumberToObject(j, "class", k);
    cJSON_AddItemToObject(j, "map_max", num(mx));
    char key[300];
    snprintf(key, sizeof key, "%s/heatmap", o->key);
    result_put(o->out, key, j);
    free(rgb);
    free(x);
    free(maps);
    dae_score_ws_free(sw);
    dae_workspace_free(ws);
    dae_scorer_free(sc);
    dae_modelfile_free(mf);
}

static int cmd_anomaly(const opts *o)
{
    if (!o->model || !o->out || !strstr(o->model, "%d"))
        usage();
    dae_error e = {0};
    dae_dataset *test = dae_dataset_load(
        !strcmp(o->data, "mnist") ? "mnist:test" : "fashion-mnist:test", "data", 1, NULL, &e);
    if (!test)
        die(o->data, &e);
    double *score = xmalloc((size_t)test->n * sizeof *score), sum = 0;
    double *hscore = xmalloc((size_t)test->n * sizeof *hscore);
    unsigned char *pos = xmalloc((size_t)test->n);
    cJSON *classes = cJSON_CreateArray();
    for (int k = 0; k < 10; k++) {
        char mp[1024];
        snprintf(mp, sizeof mp, o->model, k);
        dae_modelfile *mf = load_model(mp);
        dae_scorer *sc = dae_modelfile_scorer(mf, &e);
        if (!sc || dae_scorer_score_set(sc, test, 256, NULL, score, &e))
            die(mp, &e);
        for (int i = 0; i < test->n; i++)
            pos[i] = test->labels[i] != k;
        double auc;
        if (dae_auroc(score, pos, (size_t)test->n, &auc, &e))
            die("auroc", &e);
        sum += auc;
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "class", k);
        cJSON_AddItemToObject(c, "auroc", num(auc));
        cJSON_AddStringToObject(c, "score", mf->calib.score);
        cJSON_AddItemToObject(c, "threshold", num(mf->calib.threshold));
        cJSON_AddItemToObject(c, "roc", roc_json(score, pos, test->n, 101));
        cJSON_AddItemToArray(classes, c);
        fprintf(stderr, "class %d (%s): AUROC %.4f\n", k, mf->calib.score, auc);
        if (k == o->heatmap_class)
            memcpy(hscore, score, (size_t)test->n * sizeof *hscore);
        dae_scorer_free(sc);
        dae_modelfile_free(mf);
    }
    char key[300];
    snprintf(key, sizeof key, "%s/classes", o->key);
    result_put(o->out, key, classes);
    snprintf(key, sizeof key, "%s/mean_auroc", o->key);
    result_put(o->out, key, num(sum / 10));
    snprintf(key, sizeof key, "%s/n_test", o->key);
    result_put(o->out, key, cJSON_CreateNumber(test->n));
    if (o->heatmap)
        heatmap(o, o->heatmap, test, hscore, o->heatmap_class);
    free(pos);
    free(hscore);
    free(score);
    dae_dataset_free(test);
    return 0;
}

/* ---- small helpers for the runner ---- */

static int cmd_put(int argc, char **argv)
{
    if (argc != 3)
        usage();
    cJSON *v = cJSON_Parse(argv[2]);
    if (!v) {
        fprintf(stderr, "experiments: put: %s is not JSON\n", argv[2]);
        return 2;
    }
    result_put(argv[0], argv[1], v);
    return 0;
}

static int cmd_recipe_corruption(int argc, char **argv)
{
    if (argc != 1)
        usage();
    dae_error e = {0};
    dae_recipe *r = dae_recipe_load(argv[0], 0, NULL, &e);
    if (!r)
        die(argv[0], &e);
    char *j = dae_corruption_set_json(&r->corruption);
    if (!j)
        die("corruption", NULL);
    printf("%s\n", j);
    free(j);
    dae_recipe_free(r);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "put"))
        return cmd_put(argc - 2, argv + 2);
    if (!strcmp(cmd, "recipe-corruption"))
        return cmd_recipe_corruption(argc - 2, argv + 2);
    opts o;
    parse_opts(argc - 2, argv + 2, &o);
    if (!strcmp(cmd, "eval"))
        return cmd_eval(&o);
    if (!strcmp(cmd, "jacobian"))
        return cmd_jacobian(&o);
    if (!strcmp(cmd, "codes"))
        return cmd_codes(&o);
    if (!strcmp(cmd, "interp"))
        return cmd_interp(&o);
    if (!strcmp(cmd, "anomaly"))
        return cmd_anomaly(&o);
    usage();
    return 2;
}

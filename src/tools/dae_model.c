/* dae_model.c — dae-model: inspect a model file, apply a model offline to one image, tile
 * images into one picture, render the first or last linear layer's weights as image
 * tiles, derive colour models. A thin main: the work is done by io/modelfile,
 * io/model_edit, core/model and io/image; this file only parses arguments, converts
 * formats and prints.
 *
 * Exit codes: 0 ok, 1 invalid input or model (the message says why), 2 usage.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/error.h"
#include "daed/io/image.h"
#include "daed/core/model.h"
#include "daed/io/model_edit.h"
#include "daed/io/modelfile.h"
#include "daed/io/photo.h"
#include "daed/io/photo_apply.h"
#include "daed/io/pixels_json.h"
#include "daed/io/weights_image.h"

enum { EXIT_OK = 0, EXIT_BAD = 1, EXIT_USAGE = 2 };

#define GRID_MAX_SIDE 16384

static const char *USAGE =
    "usage: dae-model info FILE\n"
    "       dae-model run [--json] [--sigma S] FILE IN OUT\n"
    "       dae-model grid OUT.png IMG1 IMG2 ... [--cols N] [--scale S] [--pad P]\n"
    "                      [--crop X,Y,W,H]\n"
    "       dae-model prep IN OUT.png [--gray | --chroma K] [--short N]\n"
    "       dae-model weights FILE OUT.png [--layer encoder|decoder] [--cols N]\n"
    "                      [--scale S] [--count N]\n"
    "       dae-model per-channel IN.safetensors OUT.safetensors NAME [--color-space S]\n"
    "                      [--chroma-half] [--sigma-range LO,HI]\n"
    "       dae-model widen IN.safetensors OUT.safetensors NAME [--color-space S]\n"
    "                      [--init-scale F]\n"
    "       dae-model f16 IN.safetensors OUT.safetensors\n"
    "       dae-model sigma-range IN.safetensors OUT.safetensors LO,HI\n"
    "       dae-model --help\n"
    "\n"
    "info   print a model file's architecture (layer by layer, with the output shape of\n"
    "       each at the nominal input), tasks, tensors, parameter count and metadata\n"
    "       (training facts, calibration), or exactly why the file is invalid.\n"
    "run    apply the model to one image. IN is PNG or JPEG (converted to the model's\n"
    "       channels: colour to gray by BT.601 luma, gray copied to RGB); its size must fit\n"
    "       the model. A photo model's colour image is denoised in the model's colour space,\n"
    "       one channel at a time for a per-channel model, as daed does (without tiles).\n"
    "       For a model with the \"superres\" task, an image that does not fit\n"
    "       but whose 2x bilinear upsampling does is upsampled first (the low-resolution\n"
    "       input, as in training). For a model with the \"inpaint\" task the PNG alpha\n"
    "       channel is the mask (alpha < 0.5 = missing): missing pixels are set to 0\n"
    "       before the model runs and known pixels are kept in the output.\n"
    "       A model with a noise-level map (\"noise_map\": true) gets --sigma S, the\n"
    "       noise level on the 0-255 scale (0..255), as its map; without --sigma, the\n"
    "       level estimated in the image (printed), as daed does.\n"
    "       OUT is written as PNG (8-bit, values clamped to [0,1]).\n"
    "       A file whose name ends in .json, or every file with --json, holds float pixels\n"
    "       as JSON instead: {\"width\":W,\"height\":H,\"channels\":C,\"pixels\":[...]} with\n"
    "       C*H*W values, planar (channel, row, column); optional \"mask\": H*W values,\n"
    "       1 = known, 0 = missing (the inpainting mask).\n"
    "grid   tile images (PNG or JPEG) into one PNG, row by row, on a white background;\n"
    "       any colour image makes the grid RGB.\n"
    "       --cols N   images per row (default: all, at most 8)\n"
    "       --scale S  integer nearest-neighbour magnification, 1..64 (default 1)\n"
    "       --pad P    pixels between and around tiles, 0..256 (default 2)\n"
    "       --crop X,Y,W,H  use only this rectangle of every image (clipped to it)\n"
    "prep   prepare a training photo (PNG or JPEG, up to 64 Mpx): with --gray, luma with\n"
    "       BT.709 weights (skimage's rgb2gray); with --short N, an area-average\n"
    "       downscale (cv2.INTER_AREA) so the shorter side is N pixels (never upscaled:\n"
    "       removes JPEG artefacts and sensor noise, so the targets are clean); values\n"
    "       rounded to 8 bits into OUT.png. --chroma K (1 or 2): then channel K of the\n"
    "       opponent colour space at half size, the training image of a chroma_half model.\n"
    "per-channel  write a 1-channel denoiser as a colour model NAME that denoises each\n"
    "       channel of colour space S (opponent, the default, or rgb) on its own: the same\n"
    "       weights, with \"per_channel\": true and \"color_space\" in its config.\n"
    "       --chroma-half  (opponent only) the two chroma channels are denoised at half\n"
    "                  resolution (2x2 means, the noise level halved) and doubled back\n"
    "                  (bicubic): a quarter of their work, and the better answer where\n"
    "                  the noise is strong (docs/photos.md)\n"
    "       --sigma-range LO,HI  the ?sigma= range (of the colour image, 0-255) daed routes\n"
    "                  to the model; without it the gray model's trained range, which\n"
    "                  is that of one channel\n"
    "widen  turn a 1-channel residual conv denoiser into the starting weights of a\n"
    "       3-channel model NAME in colour space S (for dae-train --init): channel 0\n"
    "       (the luma in the opponent space) uses the gray weights, channels 1 and 2\n"
    "       start at zero weights, so the model begins as the gray model on luma and\n"
    "       the identity on colour, and fine-tuning learns the colour. --init-scale F\n"
    "       (0..1, default 0) draws the new weights from F times PyTorch's default\n"
    "       range instead: training then leaves the start faster (both colour paths at\n"
    "       zero give each other no gradient). A noise-level-map model stays one: its\n"
    "       map weights follow the map (input channel 1 -> 3).\n"
    "f16    write the model with its parameters stored as float16 (F16): half the file,\n"
    "       config and metadata (licence, training facts) kept; daed and PyTorch load it\n"
    "       (daed converts to float: the weights rounded to 11 significant bits).\n"
    "sigma-range  write the model with config \"sigma_range\": [LO, HI], the ?sigma= range\n"
    "       (0-255, of the colour image) daed routes to it; all else kept (F16 stays F16).\n"
    "weights  render the weights of a linear layer that touches the image as tiles of\n"
    "       the image's shape, one per unit, each scaled on its own: grey = 0, white and\n"
    "       black = +-its largest |weight|. --layer encoder (default): the first encoder\n"
    "       linear layer whose inputs are the whole image, one tile per row (a unit's\n"
    "       receptive field); decoder: the last decoder linear layer whose outputs are\n"
    "       the whole image, one tile per column (what a code unit draws).\n"
    "       --cols N (default 10), --scale S (1..64, default 2), --count N (default all)\n"
    "\n"
    "exit codes: 0 ok, 1 invalid input or model, 2 usage\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "dae-model: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see dae-model --help)\n");
    return EXIT_USAGE;
}

static int fail(const dae_error *err)
{
    fprintf(stderr, "dae-model: %s\n", err->msg);
    return EXIT_BAD;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Parse a whole decimal int in [lo, hi]; 0 on success. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* ======================================================================================
 * info
 * ==================================================================================== */

static void shape_str(dae_shape s, char *buf, size_t n)
{
    snprintf(buf, n, "(%d,%d,%d)", s.c, s.h, s.w);
}

static void print_tasks(unsigned tasks)
{
    int any = 0;
    for (unsigned bit = 1; bit && bit <= DAE_TASK_SCORE; bit <<= 1)
        if (tasks & bit) {
            printf("%s%s", any ? " " : "", dae_task_name(bit));
            any = 1;
        }
    printf("%s\n", any ? "" : "(none)");
}

static int is_arch_key(const char *k)
{
    static const char *const keys[] = {"name", "tasks", "input", "output", "residual",
                                       "noise_map", "encoder", "decoder", "calibration"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

/* Print every member of a JSON object text except those `skip` accepts, one per line. */
static void print_json_members(const char *title, const char *json, int (*skip)(const char *))
{
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return;
    }
    int header = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        if (!it->string || (skip && skip(it->string)))
            continue;
        if (!header) {
            printf("\n%s\n", title);
            header = 1;
        }
        if (cJSON_IsString(it)) {
            printf("  %-12s %s\n", it->string, it->valuestring);
        } else {
            char *txt = cJSON_PrintUnformatted(it);
            printf("  %-12s %s\n", it->string, txt ? txt : "?");
            free(txt);
        }
    }
    cJSON_Delete(root);
}

static int is_config_key(const char *k)
{
    return strcmp(k, "config") == 0;
}

static int cmd_info(int argc, char **argv)
{
    if (argc != 1)
        return usage_error("info takes one FILE, got %s arguments", argc ? "several" : "no");
    const char *path = argv[0];
    dae_error err = {0};
    dae_modelfile *mf = dae_modelfile_load(path, NULL, &err);
    if (!mf)
        return fail(&err);
    const dae_model *m = mf->model;
    char a[64], b[64];

    printf("model        %s\n", mf->name);
    printf("file         %s (%zu bytes)\n", path, mf->file_bytes);
    printf("tasks        ");
    print_tasks(mf->tasks);
    shape_str(m->in_shape, a, sizeof a);
    printf("input        %s (C,H,W)\n", a);
    if (m->noise_map)
        printf("noise level  map: channel %d of the input is sigma/255 (0-255 scale) in "
               "every pixel, or %g for blind\n",
               dae_model_image_channels(m), (double)DAE_NOISE_BLIND);
    shape_str(m->latent_shape, a, sizeof a);
    printf("latent       %s\n", a);
    shape_str(m->out_shape, a, sizeof a);
    printf("output       %s%s\n", a,
           !m->residual    ? ""
           : m->noise_map ? ", residual: input image - net(input)"
                          : ", residual: input - net(input)");
    if (m->fully_conv)
        printf("sizes        fully convolutional: any H,W multiple of %d\n", m->size_div);
    else
        printf("sizes        fixed input shape\n");
    printf("parameters   %zu (%.1f KiB as float32)\n", m->n_params,
           (double)m->n_params * 4.0 / 1024.0);
    printf("flops        %.4g per sample at the nominal input\n",
           dae_model_flops(m, m->in_shape));

    printf("\narchitecture (output shape of each layer at the nominal input)\n");
    int n = m->n_enc + m->n_dec;
    for (int i = 0; i < n; i++) {
        const dae_layer *l = &m->layers[i];
        char label[32], desc[96], params[48] = "";
        dae_shape s;
        snprintf(label, sizeof label, "%s.%d", i < m->n_enc ? "encoder" : "decoder",
                 i < m->n_enc ? i : i - m->n_enc);
        dae_layer_describe(l, desc, sizeof desc);
        if (dae_model_shape_through(m, m->in_shape, 0, i + 1, &s, &err) == DAE_OK)
            shape_str(s, a, sizeof a);
        else
            snprintf(a, sizeof a, "?");
        if (l->n_w + l->n_b)
            snprintf(params, sizeof params, "%zu params", l->n_w + l->n_b);
        if (i == m->n_enc)
            printf("  -- latent code --\n");
        if (params[0])
            printf("  %-11s %-38s %-14s %s\n", label, desc, a, params);
        else
            printf("  %-11s %-38s %s\n", label, desc, a);
    }

    printf("\ntensors\n");
    for (int i = 0; i < n; i++) {
        for (int bias = 0; bias < 2; bias++) {
            int64_t dims[4];
            int nd = dae_model_param_shape(m, i, bias, dims);
            if (nd <= 0)
                continue;
            dae_model_param_name(m, i, bias, b, sizeof b);
            char sh[96];
            size_t o = 0;
            for (int d = 0; d < nd && o < sizeof sh; d++)
                o += (size_t)snprintf(sh + o, sizeof sh - o, "%s%lld", d ? ", " : "[",
                                      (long long)dims[d]);
            if (o < sizeof sh)
                snprintf(sh + o, sizeof sh - o, "]");
            printf("  %-20s F32 %s\n", b, sh);
        }
    }

    if (mf->calib.n > 0) {
        printf("\ncalibration  score %s, threshold %.6g\n",
               mf->calib.score[0] ? mf->calib.score : "?", mf->calib.threshold);
        for (int i = 0; i < mf->calib.n; i++)
            printf("  p%-10g %.6g\n", mf->calib.level[i] * 100.0, mf->calib.value[i]);
    } else {
        printf("\ncalibration  none\n");
    }
    print_json_members("config (other fields)", mf->config_json, is_arch_key);
    print_json_members("metadata", mf->metadata_json, is_config_key);
    dae_modelfile_free(mf);
    return EXIT_OK;
}

/* ======================================================================================
 * run
 * ==================================================================================== */

/* run's arguments: FILE IN OUT into pos, --json, --sigma S (0..255; stays -1 = blind
 * when absent). Returns -1, or the exit code of a usage error. */
static int run_args(int argc, char **argv, const char *pos[3], int *all_json, double *sigma)
{
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            *all_json = 1;
        } else if (strcmp(argv[i], "--sigma") == 0) {
            char *end = NULL;
            *sigma = i + 1 < argc ? strtod(argv[i + 1], &end) : -1.0;
            if (!end || end == argv[i + 1] || *end || !(*sigma >= 0.0 && *sigma <= 255.0))
                return usage_error("run: --sigma needs a noise level 0..255, got %s",
                                   i + 1 < argc ? argv[i + 1] : "nothing");
            i++;
        } else if (argv[i][0] == '-' && argv[i][1] == '-')
            return usage_error("run: unknown option %s", argv[i]);
        else if (npos < 3)
            pos[npos++] = argv[i];
        else
            return usage_error("run: unexpected argument %s", argv[i]);
    }
    return npos == 3 ? -1 : usage_error("run needs FILE IN OUT%s", "");
}

/* im made fit for model m: converted to its channels (unless per_channel), upsampled 2x
 * for a super-resolution model when only the double fits; *in_shape the model input. */
static int run_fit_input(const dae_modelfile *mf, const char *model_path, const char *in_path,
                         dae_image *im, int per_channel, dae_shape *in_shape, dae_error *err)
{
    const dae_model *m = mf->model;
    int ic = dae_model_image_channels(m), map = m->noise_map ? 1 : 0;
    if (im->c != ic && !per_channel) {
        if (ic != 1 && ic != 3)
            return dae_error_set(err, DAE_ESHAPE,
                                 "%s: the model takes %d image channels; only 1 (gray) or 3 "
                                 "(RGB) can be converted from an image", model_path, ic);
        if (dae_image_to_channels(im, ic, err))
            return -1;
    }
    /* A super-resolution model takes the low-resolution image upsampled 2x bilinearly, as
     * in training: an image that does not fit as it is but whose double does is upsampled.
     * A noise-map model's input has the map plane after the image's (model.h). */
    int pass_c = per_channel ? 1 : im->c;
    *in_shape = (dae_shape){pass_c + map, im->h, im->w};
    if ((mf->tasks & DAE_TASK_SUPERRES) && dae_model_check_input(m, *in_shape, NULL) &&
        im->w <= INT_MAX / 2 && im->h <= INT_MAX / 2 &&
        dae_model_check_input(m, (dae_shape){in_shape->c, 2 * im->h, 2 * im->w}, NULL) ==
            DAE_OK) {
        dae_image up = {0};
        if (dae_image_resize(im, 2 * im->w, 2 * im->h, &up, err)) {
            dae_image_free(&up);
            return -1;
        }
        dae_image_free(im);
        *im = up;
        *in_shape = (dae_shape){in_shape->c, im->h, im->w};
    }
    if (dae_model_check_input(m, *in_shape, err)) {
        char sh[64];
        shape_str(*in_shape, sh, sizeof sh);
        return dae_error_prefix(err, "%s: image %s does not fit model %s: ", in_path, sh,
                                mf->name);
    }
    return DAE_OK;
}

/* Inpainting: the missing pixels of im (alpha < 0.5) set to 0, the image before in *orig. */
static int run_blank_missing(dae_image *im, float **orig, const char *in_path, dae_error *err)
{
    size_t hw = (size_t)im->w * (size_t)im->h, n_in = (size_t)im->c * hw;
    *orig = malloc(n_in * sizeof **orig);
    if (!*orig)
        return dae_error_set(err, DAE_ENOMEM, "%s: cannot allocate %zu floats", in_path, n_in);
    memcpy(*orig, im->px, n_in * sizeof **orig);
    for (int ch = 0; ch < im->c; ch++)
        for (size_t i = 0; i < hw; i++)
            if (!(im->alpha[i] >= 0.5f))
                im->px[(size_t)ch * hw + i] = 0.0f;
    return DAE_OK;
}

static int cmd_run(int argc, char **argv)
{
    int all_json = 0;
    const char *pos[3];
    double sigma = -1.0; /* blind */
    int urc = run_args(argc, argv, pos, &all_json, &sigma);
    if (urc >= 0)
        return urc;
    const char *model_path = pos[0], *in_path = pos[1], *out_path = pos[2];
    int in_json = all_json || ends_with(in_path, ".json");
    int out_json = all_json || ends_with(out_path, ".json");

    int rc = EXIT_BAD;
    dae_error err = {0};
    dae_image im = {0}, out = {0};
    float *orig = NULL;
    dae_modelfile *mf = dae_modelfile_load(model_path, NULL, &err);
    if (!mf)
        goto done;
    const dae_model *m = mf->model;
    int ic = dae_model_image_channels(m);
    if (sigma >= 0 && !m->noise_map) {
        dae_error_set(&err, DAE_EINVAL, "%s: --sigma: this model takes no noise level (no "
                      "\"noise_map\" in its config)", model_path);
        goto done;
    }
    if (in_json ? dae_pixels_json_read(in_path, &im, &err)
                : dae_image_read_file(in_path, NULL, &im, &err))
        goto done;
    /* A photo model's colour space (and per-channel use), as daed applies them. */
    dae_photo_facts facts;
    if (dae_photo_facts_parse(mf->config_json, ic, &facts, &err)) {
        dae_error_prefix(&err, "%s: ", model_path);
        goto done;
    }
    int per_channel = facts.per_channel && ic == 1 && im.c == 3;
    dae_shape in_shape;
    if (run_fit_input(mf, model_path, in_path, &im, per_channel, &in_shape, &err))
        goto done;
    size_t hw = (size_t)im.w * (size_t)im.h;
    /* Missing pixels reach the model as 0 (the training corruption); the known ones are
     * pasted back afterwards. */
    int inpaint = (mf->tasks & DAE_TASK_INPAINT) && im.alpha;
    if (inpaint && run_blank_missing(&im, &orig, in_path, &err))
        goto done;
    if (m->noise_map && sigma < 0 && !facts.blind_default) { /* as daed: estimated */
        sigma = dae_noise_estimate(im.px, NULL, im.w, im.h, im.c); /* < 0: blind */
        printf("noise level %.2f (estimated; --sigma gives it)\n", sigma);
    }
    dae_color_space cs = im.c == 3 ? facts.cs : DAE_COLOR_RGB;
    dae_color_to_space(im.px, hw, cs); /* RGB: no-op */
    if (dae_photo_apply(m, &im, per_channel, per_channel && facts.chroma_half, sigma, cs, &out,
                        &err) != DAE_OK) {
        dae_error_prefix(&err, "%s: ", model_path);
        goto done;
    }
    if (!out_json && out.c != 1 && out.c != 3) {
        dae_error_set(&err, DAE_ESHAPE, "%s: output has %d channels, a PNG needs 1 or 3 (write "
                      ".json instead)", model_path, out.c);
        goto done;
    }
    if (out.c == 3)
        dae_color_from_space(out.px, (size_t)out.w * out.h, cs);
    if (inpaint && out.c == im.c && out.h == im.h && out.w == im.w) {
        for (int ch = 0; ch < im.c; ch++)
            for (size_t i = 0; i < hw; i++)
                if (im.alpha[i] >= 0.5f)
                    out.px[(size_t)ch * hw + i] = orig[(size_t)ch * hw + i];
    }
    if (out_json ? dae_pixels_json_write(out_path, out.px, out.w, out.h, out.c, &err)
                 : dae_png_write_file(out_path, &out, &err))
        goto done;
    rc = EXIT_OK;
done:
    if (rc != EXIT_OK)
        fail(&err);
    free(orig);
    dae_image_free(&out);
    dae_image_free(&im);
    dae_modelfile_free(mf);
    return rc;
}

/* ======================================================================================
 * grid
 * ==================================================================================== */

/* grid's options and files. */
typedef struct grid_opts {
    int cols, scale, pad, crop[4], cropping;
    const char *out_path;
    char **inputs; /* (argc) the images, n of them */
    int n;
} grid_opts;

/* grid's arguments into g (g->inputs allocated by the caller). Returns -1, or the exit code
 * of a usage error. */
static int grid_args(int argc, char **argv, grid_opts *g)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int *dst = strcmp(a, "--cols") == 0    ? &g->cols
                   : strcmp(a, "--scale") == 0 ? &g->scale
                   : strcmp(a, "--pad") == 0   ? &g->pad
                                               : NULL;
        int *crop = g->crop;
        if (strcmp(a, "--crop") == 0) {
            char tail = 0;
            if (i + 1 >= argc ||
                sscanf(argv[i + 1], "%d,%d,%d,%d%c", &crop[0], &crop[1], &crop[2], &crop[3],
                       &tail) != 4 ||
                crop[0] < 0 || crop[1] < 0 || crop[2] < 1 || crop[3] < 1)
                return usage_error("grid: --crop needs X,Y,W,H (X, Y >= 0; W, H >= 1)%s", "");
            g->cropping = 1;
            i++;
            continue;
        }
        if (dst) {
            int lo = dst == &g->pad ? 0 : 1;
            int hi = dst == &g->cols ? 1024 : dst == &g->scale ? 64 : 256;
            if (i + 1 >= argc || parse_int(argv[i + 1], lo, hi, dst))
                return usage_error("grid: %s needs an integer in range (cols 1..1024, "
                                   "scale 1..64, pad 0..256)", a);
            i++;
        } else if (a[0] == '-' && a[1] == '-') {
            return usage_error("grid: unknown option %s", a);
        } else if (!g->out_path) {
            g->out_path = a;
        } else {
            g->inputs[g->n++] = argv[i];
        }
    }
    if (!g->out_path || g->n == 0)
        return usage_error("grid needs OUT.png and at least one image%s", "");
    if (g->cols == 0)
        g->cols = g->n < 8 ? g->n : 8;
    if (g->cols > g->n)
        g->cols = g->n;
    return -1;
}

/* im cut to the rectangle crop (X,Y,W,H), clipped to the image. */
static int crop_image(dae_image *im, const int crop[4], dae_error *err)
{
    dae_image cut = {0};
    int x0 = crop[0] < im->w ? crop[0] : im->w - 1, y0 = crop[1] < im->h ? crop[1] : im->h - 1;
    int cw2 = crop[2] < im->w - x0 ? crop[2] : im->w - x0;
    int ch2 = crop[3] < im->h - y0 ? crop[3] : im->h - y0;
    if (dae_image_alloc(&cut, cw2, ch2, im->c, 0, err))
        return -1;
    for (int ch = 0; ch < im->c; ch++)
        for (int y = 0; y < ch2; y++)
            memcpy(cut.px + ((size_t)ch * ch2 + y) * cw2,
                   im->px + ((size_t)ch * im->h + y0 + y) * im->w + x0,
                   (size_t)cw2 * sizeof *cut.px);
    dae_image_free(im);
    *im = cut;
    return DAE_OK;
}

/* The n images ims tiled into grid (cells of cw x chh, c channels), row by row. */
static int compose_grid(const grid_opts *g, dae_image *ims, int c, int cw, int chh,
                        dae_image *grid, dae_error *err)
{
    int n = g->n, cols = g->cols, scale = g->scale, pad = g->pad;
    int rows = (n + cols - 1) / cols;
    /* Sizes in 64-bit: each factor is bounded (side 16384, scale 64, cols 1024, pad 256). */
    int64_t W = (int64_t)cols * cw * scale + (int64_t)(cols + 1) * pad;
    int64_t H = (int64_t)rows * chh * scale + (int64_t)(rows + 1) * pad;
    if (W > GRID_MAX_SIDE || H > GRID_MAX_SIDE)
        return dae_error_set(err, DAE_ELIMIT, "grid: %lldx%lld pixels, more than %dx%d",
                             (long long)W, (long long)H, GRID_MAX_SIDE, GRID_MAX_SIDE);
    if (dae_image_alloc(grid, (int)W, (int)H, c, 0, err))
        return -1;
    size_t plane = (size_t)W * (size_t)H;
    for (size_t i = 0; i < (size_t)c * plane; i++)
        grid->px[i] = 1.0f;
    for (int i = 0; i < n; i++) {
        dae_image *im = &ims[i];
        if (im->c != c && dae_image_to_channels(im, c, err))
            return -1;
        int x0 = pad + (i % cols) * (cw * scale + pad) + (cw - im->w) * scale / 2;
        int y0 = pad + (i / cols) * (chh * scale + pad) + (chh - im->h) * scale / 2;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < im->h * scale; y++)
                for (int x = 0; x < im->w * scale; x++)
                    grid->px[(size_t)ch * plane + (size_t)(y0 + y) * (size_t)W +
                             (size_t)(x0 + x)] =
                        im->px[((size_t)ch * (size_t)im->h + (size_t)(y / scale)) *
                                   (size_t)im->w +
                               (size_t)(x / scale)];
    }
    return DAE_OK;
}

static int cmd_grid(int argc, char **argv)
{
    grid_opts g = {.scale = 1, .pad = 2};
    g.inputs = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *g.inputs);
    if (!g.inputs) {
        fprintf(stderr, "dae-model: out of memory\n");
        return EXIT_BAD;
    }
    int urc = grid_args(argc, argv, &g);
    if (urc >= 0) {
        free(g.inputs);
        return urc;
    }
    int n = g.n, rc = EXIT_BAD;
    dae_error err = {0};
    dae_image grid = {0};
    dae_image *ims = calloc((size_t)n, sizeof *ims);
    if (!ims) {
        dae_error_set(&err, DAE_ENOMEM, "grid: cannot allocate %d images", n);
        goto done;
    }
    int c = 1, cw = 0, chh = 0;
    for (int i = 0; i < n; i++) {
        if (dae_image_read_file(g.inputs[i], NULL, &ims[i], &err))
            goto done;
        if (g.cropping && crop_image(&ims[i], g.crop, &err))
            goto done;
        if (ims[i].c == 3)
            c = 3;
        if (ims[i].w > cw)
            cw = ims[i].w;
        if (ims[i].h > chh)
            chh = ims[i].h;
    }
    if (compose_grid(&g, ims, c, cw, chh, &grid, &err) ||
        dae_png_write_file(g.out_path, &grid, &err))
        goto done;
    rc = EXIT_OK;
done:
    if (rc != EXIT_OK)
        fail(&err);
    if (ims)
        for (int i = 0; i < n; i++)
            dae_image_free(&ims[i]);
    free(ims);
    dae_image_free(&grid);
    free(g.inputs);
    return rc;
}

/* Arguments of the colour-model commands: IN OUT NAME [--color-space S]. Returns -1 when
 * they parse (pos and *space filled), else the exit code of the usage error printed. */
static int colour_args(const char *cmd, int argc, char **argv, const char *pos[3],
                       const char **space)
{
    int np = 0;
    *space = "opponent";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--color-space") == 0) {
            if (i + 1 >= argc || dae_color_space_from_name(argv[i + 1]) < 0)
                return usage_error("--color-space needs opponent or rgb (%s)", cmd);
            *space = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return usage_error("unknown option %s", argv[i]);
        } else if (np < 3) {
            pos[np++] = argv[i];
        } else {
            return usage_error("unexpected argument %s", argv[i]);
        }
    }
    if (np != 3)
        return usage_error("%s needs IN.safetensors OUT.safetensors NAME", cmd);
    return -1;
}

/* "LO,HI" with 0 <= LO <= HI <= 255 (a ?sigma= range); 0 on success. */
static int parse_range(const char *s, double *lo, double *hi)
{
    char end;
    return !(sscanf(s, "%lf,%lf%c", lo, hi, &end) == 2 && *lo >= 0 && *lo <= *hi && *hi <= 255);
}

/* f16 (F16 parameters, dae_model_save_f16) or sigma-range (a new routing range,
 * dae_model_save_sigma_range): the model rewritten. */
static int cmd_rewrite(int f16, int argc, char **argv)
{
    double lo = 0, hi = 0;
    if (argc != 3 - f16 || (!f16 && parse_range(argv[2], &lo, &hi)))
        return usage_error("%s", f16 ? "f16 needs IN.safetensors OUT.safetensors"
                                     : "sigma-range needs IN.safetensors OUT.safetensors "
                                       "LO,HI with 0 <= LO <= HI <= 255");
    dae_error err = {0};
    dae_modelfile *mf = dae_modelfile_load(argv[0], NULL, &err);
    int rc = mf && (f16 ? dae_model_save_f16(mf, argv[1], &err)
                        : dae_model_save_sigma_range(mf, argv[0], lo, hi, argv[1], &err)) == DAE_OK
                 ? EXIT_OK
                 : fail(&err);
    dae_modelfile_free(mf);
    return rc;
}

/* per-channel's own options, taken out of argv (the rest compacted, *argc updated). */
static int per_channel_opts(int *argc, char **argv, dae_per_channel_opts *o)
{
    int n = 0;
    *o = (dae_per_channel_opts){0, 0.0, -1.0};
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--chroma-half") == 0) {
            o->chroma_half = 1;
        } else if (strcmp(argv[i], "--sigma-range") == 0) {
            if (i + 1 >= *argc || parse_range(argv[i + 1], &o->sigma_lo, &o->sigma_hi))
                return usage_error("--sigma-range needs LO,HI with 0 <= LO <= HI <= 255%s", "");
            i++;
        } else {
            argv[n++] = argv[i];
        }
    }
    *argc = n;
    return -1;
}

static int cmd_per_channel(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL}, *space;
    dae_per_channel_opts o;
    int urc = per_channel_opts(&argc, argv, &o);
    if (urc < 0)
        urc = colour_args("per-channel", argc, argv, pos, &space);
    if (urc >= 0)
        return urc;
    dae_error err = {0};
    dae_modelfile *mf = dae_modelfile_load(pos[0], NULL, &err);
    int rc = mf && dae_model_save_per_channel(mf, pos[0], pos[2], space, &o, pos[1], &err) == DAE_OK
                 ? EXIT_OK
                 : fail(&err);
    dae_modelfile_free(mf);
    return rc;
}

/* widen: a 1-channel residual conv denoiser as the first weights of a 3-channel one
 * (dae_model_save_widened). In the opponent space channel 0 is the luma, so the widened
 * model starts as the gray model on luma and training (dae-train --init) only has to learn
 * the colour. */
static int cmd_widen(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL}, *space;
    double scale = 0;
    char *rest[8];
    int nrest = 0;
    for (int i = 0; i < argc; i++) { /* --init-scale S, the rest as for per-channel */
        if (strcmp(argv[i], "--init-scale") == 0) {
            char *end = NULL;
            scale = i + 1 < argc ? strtod(argv[i + 1], &end) : -1;
            if (i + 1 >= argc || !end || *end || !(scale >= 0 && scale <= 1))
                return usage_error("widen: --init-scale needs a number in [0, 1]%s", "");
            i++;
        } else if (nrest < 8) {
            rest[nrest++] = argv[i];
        } else {
            return usage_error("widen: unexpected argument %s", argv[i]);
        }
    }
    int urc = colour_args("widen", nrest, rest, pos, &space);
    if (urc >= 0)
        return urc;
    dae_error err = {0};
    dae_modelfile *mf = dae_modelfile_load(pos[0], NULL, &err);
    int rc = mf && dae_model_save_widened(mf, pos[0], pos[2], space, scale, pos[1], &err) ==
                       DAE_OK
                 ? EXIT_OK
                 : fail(&err);
    dae_modelfile_free(mf);
    return rc;
}

static int cmd_prep(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL};
    int gray = 0, shortside = 0, chroma = 0, np = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--gray") == 0) {
            gray = 1;
        } else if (strcmp(argv[i], "--chroma") == 0) {
            if (i + 1 >= argc || parse_int(argv[i + 1], 1, 2, &chroma))
                return usage_error("prep: --chroma needs 1 or 2%s", "");
            i++;
        } else if (strcmp(argv[i], "--short") == 0) {
            if (i + 1 >= argc || parse_int(argv[i + 1], 1, 65535, &shortside))
                return usage_error("prep: --short needs an integer in 1..65535%s", "");
            i++;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return usage_error("prep: unknown option %s", argv[i]);
        } else if (np < 2) {
            paths[np++] = argv[i];
        } else {
            return usage_error("prep: unexpected argument %s", argv[i]);
        }
    }
    if (np != 2)
        return usage_error("prep needs IN and OUT.png%s", "");
    if (gray && chroma)
        return usage_error("prep: --gray and --chroma exclude each other%s", "");
    dae_error err = {0};
    dae_image im = {0};
    dae_image_limits lim = dae_image_default_limits();
    lim.max_pixels = (size_t)1 << 26; /* wallpapers reach 6028x3391 */
    lim.max_bytes = (size_t)256 << 20;
    int rc = EXIT_BAD;
    if (dae_image_read_file(paths[0], &lim, &im, &err))
        goto done;
    if (dae_photo_prepare(&im, gray, shortside, &err))
        goto done;
    if (chroma && dae_photo_chroma_half(&im, chroma, &err))
        goto done;
    if (dae_png_write_file(paths[1], &im, &err))
        goto done;
    rc = EXIT_OK;
done:
    if (rc != EXIT_OK)
        fail(&err);
    dae_image_free(&im);
    return rc;
}

/* ======================================================================================
 * weights
 * ==================================================================================== */

static int cmd_weights(int argc, char **argv)
{
    int cols = 10, scale = 2, count = 0, decoder = 0;
    const char *paths[2] = {NULL, NULL};
    int np = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--layer") == 0) {
            if (i + 1 >= argc ||
                (strcmp(argv[i + 1], "encoder") && strcmp(argv[i + 1], "decoder")))
                return usage_error("weights: --layer takes encoder or decoder%s", "");
            decoder = strcmp(argv[++i], "decoder") == 0;
        } else if (strcmp(a, "--cols") == 0 || strcmp(a, "--scale") == 0 ||
                   strcmp(a, "--count") == 0) {
            int *dst = a[2] == 'c' && a[3] == 'o' && a[4] == 'l' ? &cols
                       : a[2] == 's'                            ? &scale
                                                                : &count;
            int hi = dst == &scale ? 64 : 1 << 20;
            if (i + 1 >= argc || parse_int(argv[i + 1], 1, hi, dst))
                return usage_error("weights: %s needs a positive integer (scale 1..64)", a);
            i++;
        } else if (a[0] == '-' && a[1] == '-') {
            return usage_error("weights: unknown option %s", a);
        } else if (np < 2) {
            paths[np++] = a;
        } else {
            return usage_error("weights takes FILE and OUT.png, not also %s", a);
        }
    }
    if (np != 2)
        return usage_error("weights needs FILE and OUT.png%s", "");

    int rc = EXIT_BAD;
    dae_error err = {0};
    dae_image grid = {0};
    dae_modelfile *mf = dae_modelfile_load(paths[0], NULL, &err);
    if (!mf)
        goto done;
    int n = 0;
    if (dae_weights_image(mf->model, paths[0], decoder, cols, scale, count, &grid, &n, &err))
        goto done;
    if (dae_png_write_file(paths[1], &grid, &err))
        goto done;
    printf("%s: %d units of %s (%s), %dx%d tiles\n", paths[1], n,
           decoder ? "the last decoder linear layer" : "the first encoder linear layer",
           decoder ? "columns" : "rows", decoder ? mf->model->out_shape.h : mf->model->in_shape.h,
           decoder ? mf->model->out_shape.w : mf->model->in_shape.w);
    rc = EXIT_OK;
done:
    if (rc != EXIT_OK)
        fail(&err);
    dae_image_free(&grid);
    dae_modelfile_free(mf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return EXIT_OK;
        }
    if (strcmp(cmd, "info") == 0)
        return cmd_info(argc - 2, argv + 2);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(cmd, "grid") == 0)
        return cmd_grid(argc - 2, argv + 2);
    if (strcmp(cmd, "prep") == 0)
        return cmd_prep(argc - 2, argv + 2);
    if (strcmp(cmd, "per-channel") == 0)
        return cmd_per_channel(argc - 2, argv + 2);
    if (strcmp(cmd, "widen") == 0)
        return cmd_widen(argc - 2, argv + 2);
    if (strcmp(cmd, "weights") == 0)
        return cmd_weights(argc - 2, argv + 2);
    if (strcmp(cmd, "f16") == 0 || strcmp(cmd, "sigma-range") == 0)
        return cmd_rewrite(cmd[0] == 'f', argc - 2, argv + 2);
    return usage_error("unknown command \"%s\" (info, run, grid, prep, per-channel, widen, "
                       "f16, sigma-range, weights)",
                       cmd);
}

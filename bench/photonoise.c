/* photonoise.c — the cost of the training noise kinds (photonoise.h), and a picture of them.
 *
 *   photonoise [--size P] [--seconds S] [PHOTO]   patches/s of noise generation alone for
 *                                                P x P colour patches (default 64), per kind
 *   photonoise --grid OUT.png PHOTO [SIDE]        one SIDE x SIDE crop (default 128) of the
 *                                                photo: clean | gaussian 25 | camera low ISO
 *                                                | camera high ISO | correlated 25 |
 *                                                gaussian 25 + JPEG q70, side by side
 * Patches are random crops of PHOTO (any PNG/JPEG; a smooth synthetic patch without one).
 * Prints numbers, asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daed/image.h"
#include "daed/photo.h"
#include "daed/photonoise.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int load_photo(const char *path, dae_photoset **out)
{
    dae_error e = {0};
    dae_photoset *ps = dae_photoset_create(3, &e);
    dae_image im = {0};
    if (!ps || dae_image_read_file(path, NULL, &im, &e)) {
        fprintf(stderr, "photonoise: %s\n", e.msg);
        dae_photoset_free(ps);
        return 1;
    }
    if (im.c == 1) { /* gray photo: replicate to RGB */
        dae_image rgb = {0};
        if (dae_image_alloc(&rgb, im.w, im.h, 3, 0, &e)) {
            fprintf(stderr, "photonoise: %s\n", e.msg);
            return 1;
        }
        for (int ch = 0; ch < 3; ch++)
            memcpy(rgb.px + (size_t)ch * im.w * im.h, im.px, (size_t)im.w * im.h * sizeof(float));
        dae_image_free(&im);
        im = rgb;
    }
    if (dae_photoset_add(ps, &im, path, &e)) {
        fprintf(stderr, "photonoise: %s\n", e.msg);
        return 1;
    }
    *out = ps;
    return 0;
}

static void synthetic(float *x, int p)
{
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < p; y++)
            for (int i = 0; i < p; i++)
                x[((size_t)ch * p + y) * p + i] = (float)((i * 3 + y * 5 + ch * 40) % 200 + 20) / 255.0f;
}

typedef struct job {
    const char *name;
    dae_pnoise m;
    int jpeg_q; /* 0 = no JPEG step */
} job;

static int speed(int p, double seconds, const dae_photoset *ps)
{
    dae_error e = {0};
    dae_photonoise_set none = {0};
    dae_photonoise *g = dae_photonoise_create(&none, 3, p, p, &e);
    size_t n = (size_t)3 * p * p;
    float *clean = malloc(n * sizeof *clean), *noisy = malloc(n * sizeof *noisy);
    if (!g || !clean || !noisy) {
        fprintf(stderr, "photonoise: %s\n", e.msg[0] ? e.msg : "out of memory");
        return 1;
    }
    const job jobs[] = {
        {"gaussian 0-75", {.kind = DAE_PNOISE_GAUSSIAN, .lo = 0, .hi = 75}, 0},
        {"camera (default shot range)", {.kind = DAE_PNOISE_CAMERA, .lo = 0.0001f, .hi = 0.012f,
                                         .read_jitter = 0.26f}, 0},
        {"camera, bilinear demosaic", {.kind = DAE_PNOISE_CAMERA, .lo = 0.0001f, .hi = 0.012f,
                                       .read_jitter = 0.26f, .demosaic = DAE_DEMOSAIC_BILINEAR},
         0},
        {"correlated 0-50, width 0.5-1.5", {.kind = DAE_PNOISE_CORRELATED, .lo = 0, .hi = 50,
                                            .width_lo = 0.5f, .width_hi = 1.5f,
                                            .per_channel = 1}, 0},
        {"gaussian 0-75 + JPEG q60-95 always", {.kind = DAE_PNOISE_GAUSSIAN, .lo = 0, .hi = 75},
         -1},
    };
    printf("noise generation alone, %dx%d colour patches (crop excluded), %.1f s per kind\n",
           p, p, seconds);
    dae_rng r;
    dae_rng_seed(&r, 1);
    for (size_t k = 0; k < sizeof jobs / sizeof jobs[0]; k++) {
        long count = 0;
        double level_sum = 0.0, spent = 0.0;
        while (spent < seconds) {
            if (ps)
                dae_photoset_sample_patch(ps, &r, p, 1, clean);
            else
                synthetic(clean, p);
            double t0 = now_s(), level;
            dae_photonoise_apply_member(g, &r, &jobs[k].m, clean, 1, noisy, &level);
            if (jobs[k].jpeg_q &&
                dae_photonoise_jpeg(g, noisy, 60 + (int)dae_rng_below(&r, 36), &e)) {
                fprintf(stderr, "photonoise: %s\n", e.msg);
                return 1;
            }
            spent += now_s() - t0;
            level_sum += level;
            count++;
        }
        printf("  %-36s %9.0f patches/s  %7.3f ms/patch  mean level %.1f\n", jobs[k].name,
               count / spent, 1e3 * spent / count, level_sum / count);
    }
    free(clean);
    free(noisy);
    dae_photonoise_free(g);
    return 0;
}

/* The most textured of 64 random crops (sum of absolute horizontal differences). */
static void pick_crop(const dae_photoset *ps, int p, float *clean)
{
    dae_rng r;
    dae_rng_seed(&r, 7);
    size_t n = (size_t)3 * p * p;
    float *tmp = malloc(n * sizeof *tmp);
    double best = -1;
    for (int k = 0; k < 64 && tmp; k++) {
        dae_photoset_sample_patch(ps, &r, p, 0, tmp);
        double s = 0.0;
        for (size_t i = 1; i < n; i++)
            s += (tmp[i] > tmp[i - 1] ? tmp[i] - tmp[i - 1] : tmp[i - 1] - tmp[i]);
        if (s > best) {
            best = s;
            memcpy(clean, tmp, n * sizeof *tmp);
        }
    }
    free(tmp);
}

static int grid(const char *out, const dae_photoset *ps, int p)
{
    enum { TILES = 6, GAP = 4 };
    dae_error e = {0};
    dae_photonoise_set none = {0};
    dae_photonoise *g = dae_photonoise_create(&none, 3, p, p, &e);
    size_t n = (size_t)3 * p * p;
    int W = TILES * p + (TILES - 1) * GAP;
    float *clean = malloc(n * sizeof *clean), *noisy = malloc(n * sizeof *noisy);
    float *pic = calloc((size_t)3 * W * p, sizeof *pic);
    if (!g || !clean || !noisy || !pic) {
        fprintf(stderr, "photonoise: %s\n", e.msg[0] ? e.msg : "out of memory");
        return 1;
    }
    pick_crop(ps, p, clean);
    const job tiles[TILES] = {
        {"clean", {.kind = DAE_PNOISE_GAUSSIAN}, 0},
        {"gaussian 25", {.kind = DAE_PNOISE_GAUSSIAN, .lo = 25, .hi = 25}, 0},
        {"camera low ISO (shot 0.001)", {.kind = DAE_PNOISE_CAMERA, .lo = 0.001f, .hi = 0.001f},
         0},
        {"camera high ISO (shot 0.012)", {.kind = DAE_PNOISE_CAMERA, .lo = 0.012f,
                                          .hi = 0.012f}, 0},
        {"correlated 25 (width 1)", {.kind = DAE_PNOISE_CORRELATED, .lo = 25, .hi = 25,
                                     .width_lo = 1, .width_hi = 1, .per_channel = 1}, 0},
        {"gaussian 25 + JPEG q70", {.kind = DAE_PNOISE_GAUSSIAN, .lo = 25, .hi = 25}, 70},
    };
    dae_rng r;
    dae_rng_seed(&r, 3);
    for (int t = 0; t < TILES; t++) {
        double level;
        dae_photonoise_apply_member(g, &r, &tiles[t].m, clean, 1, noisy, &level);
        if (tiles[t].jpeg_q && dae_photonoise_jpeg(g, noisy, tiles[t].jpeg_q, &e)) {
            fprintf(stderr, "photonoise: %s\n", e.msg);
            return 1;
        }
        printf("tile %d: %-30s level %.2f (0-255)\n", t + 1, tiles[t].name, level);
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < p; y++)
                memcpy(pic + ((size_t)ch * p + y) * W + t * (p + GAP),
                       noisy + ((size_t)ch * p + y) * p, (size_t)p * sizeof *pic);
    }
    unsigned char *png = NULL;
    size_t len = 0;
    FILE *f = NULL;
    if (dae_png_encode(pic, W, p, 3, 9, &png, &len, &e) || !(f = fopen(out, "wb")) ||
        fwrite(png, 1, len, f) != len || fclose(f)) {
        fprintf(stderr, "photonoise: %s: %s\n", out, e.msg[0] ? e.msg : "cannot write");
        return 1;
    }
    printf("%s: %dx%d, %zu bytes\n", out, W, p, len);
    free(png);
    free(pic);
    free(clean);
    free(noisy);
    dae_photonoise_free(g);
    return 0;
}

int main(int argc, char **argv)
{
    int p = 64;
    double seconds = 1.0;
    const char *photo = NULL, *grid_out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            p = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--grid") && i + 1 < argc)
            grid_out = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: photonoise [--size P] [--seconds S] [PHOTO]\n"
                            "       photonoise --grid OUT.png PHOTO [SIDE]\n");
            return 2;
        } else if (!photo)
            photo = argv[i];
        else
            p = atoi(argv[i]);
    }
    if (grid_out && p == 64)
        p = 128;
    if (p < 8 || p > DAE_PNOISE_MAX_SIDE) {
        fprintf(stderr, "photonoise: size %d, expected 8..%d\n", p, DAE_PNOISE_MAX_SIDE);
        return 2;
    }
    dae_photoset *ps = NULL;
    if (photo && load_photo(photo, &ps))
        return 1;
    if (ps && (ps->im[0].w < p || ps->im[0].h < p)) {
        fprintf(stderr, "photonoise: %s is %dx%d, smaller than %d a side\n", photo,
                ps->im[0].w, ps->im[0].h, p);
        return 2;
    }
    if (grid_out && !ps) {
        fprintf(stderr, "photonoise: --grid needs a photo\n");
        return 2;
    }
    int rc = grid_out ? grid(grid_out, ps, p) : speed(p, seconds, ps);
    dae_photoset_free(ps);
    return rc;
}

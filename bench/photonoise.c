/* photonoise.c — the cost of the training noise kinds (photonoise.h), and a picture of them.
 *
 *   photonoise [--size P] [--seconds S] [PHOTO]   patches per CPU-second of noise generation
 *                                                alone for P x P colour patches (default 64),
 *                                                per kind
 *   photonoise --grid OUT.png PHOTO [SIDE]        one SIDE x SIDE crop (default 128) of the
 *                                                photo: clean | gaussian 25 | camera low ISO
 *                                                | camera high ISO | correlated 25 |
 *                                                gaussian 25 + JPEG q70, side by side
 *   photonoise --apply SET IN OUT.png [SEED]      a noise set (JSON, photonoise.h) applied to
 *                                                a whole colour photo (sides up to 1024),
 *                                                8-bit rounded as a camera writes it; prints
 *                                                the noise's nominal level
 *   photonoise --real DIR [SET]                   statistics of real camera noise (DIR's
 *                                                X_real.png / X_mean.png pairs, e.g.
 *                                                ../shared/testsets/CC15) next to the same of
 *                                                a noise set (JSON, photonoise.h; default
 *                                                [{"type":"camera"}]) applied to X_mean.png
 * Patches are random crops of PHOTO (any PNG/JPEG; a smooth synthetic patch without one).
 * Prints numbers, asserts nothing. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daed/io/image.h"
#include "daed/io/png.h"
#include "daed/io/photo.h"
#include "daed/train/photonoise.h"

/* Thread CPU time: on a shared, loaded machine wall time mostly measures the neighbours. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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
    printf("noise generation alone, %dx%d colour patches (crop excluded), %.1f CPU-s per kind "
           "(thread CPU time, not wall time)\n", p, p, seconds);
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
            double t0 = cpu_s(), level;
            dae_photonoise_apply_member(g, &r, &jobs[k].m, clean, 1, noisy, &level);
            if (jobs[k].jpeg_q &&
                dae_photonoise_jpeg(g, noisy, 60 + (int)dae_rng_below(&r, 36), &e)) {
                fprintf(stderr, "photonoise: %s\n", e.msg);
                return 1;
            }
            spent += cpu_s() - t0;
            level_sum += level;
            count++;
        }
        printf("  %-36s %9.0f patches/CPU-s  %7.3f CPU-ms/patch  mean level %.1f\n", jobs[k].name,
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


/* Noise statistics of one colour pair: RMS (0-255), mean lag-1 horizontal correlation of
 * the residual per channel, R-G correlation of the residual, and the ratio of the
 * residual's variance on the brightest third of pixels to the darkest third. */
typedef struct nstats {
    double rms, lag1, rg, bright_dark;
} nstats;

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static nstats noise_stats(const float *noisy, const float *clean, int w, int h, float *luma)
{
    size_t hw = (size_t)w * h;
    nstats st = {0};
    double s2 = 0, rg = 0, rr = 0, gg = 0;
    for (int ch = 0; ch < 3; ch++) {
        double v = 0, cov = 0;
        size_t m = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = ch * hw + (size_t)y * w + x;
                double d = noisy[i] - clean[i];
                v += d * d;
                if (x + 1 < w) {
                    cov += d * (noisy[i + 1] - clean[i + 1]);
                    m++;
                }
            }
        s2 += v;
        st.lag1 += (cov / m) / (v / hw) / 3;
    }
    for (size_t i = 0; i < hw; i++) {
        double a = noisy[i] - clean[i], b = noisy[hw + i] - clean[hw + i];
        rg += a * b, rr += a * a, gg += b * b;
        luma[i] = 0.2125f * clean[i] + 0.7154f * clean[hw + i] + 0.0721f * clean[2 * hw + i];
    }
    st.rms = 255.0 * sqrt(s2 / (3 * hw));
    st.rg = rg / sqrt(rr * gg);
    /* terciles of the clean luma */
    float *sorted = malloc(hw * sizeof *sorted);
    memcpy(sorted, luma, hw * sizeof *sorted);
    qsort(sorted, hw, sizeof *sorted, cmp_float);
    float lo = sorted[hw / 3], hi = sorted[2 * hw / 3];
    free(sorted);
    double vd = 0, vb = 0;
    size_t nd = 0, nb = 0;
    for (size_t i = 0; i < hw; i++)
        for (int ch = 0; ch < 3; ch++) {
            double d = noisy[ch * hw + i] - clean[ch * hw + i];
            if (luma[i] <= lo)
                vd += d * d, nd++;
            else if (luma[i] > hi)
                vb += d * d, nb++;
        }
    st.bright_dark = nd && nb && vd > 0 ? (vb / nb) / (vd / nd) : NAN;
    return st;
}

static int real_noise(const char *dir, const char *set_json)
{
    dae_photonoise_set set;
    dae_error perr = {0};
    const char *def = "[{\"type\":\"camera\"}]";
    if (dae_photonoise_set_parse(set_json ? set_json : def, strlen(set_json ? set_json : def),
                                 &set, &perr)) {
        fprintf(stderr, "photonoise: %s\n", perr.msg);
        return 2;
    }
    printf("synthetic noise: %s\n", set_json ? set_json : def);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "photonoise: %s: cannot open (the real-noise pairs, e.g. "
                        "../shared/testsets/CC15, are not part of the project)\n", dir);
        return 1;
    }
    printf("%-26s %26s   %26s\n", "", "real: rms lag1  R-G  br/dk",
           "synthetic: rms lag1  R-G br/dk");
    struct dirent *e;
    int n = 0;
    nstats sr = {0}, ss = {0};
    dae_rng r;
    dae_rng_seed(&r, 1);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 10 || strcmp(e->d_name + len - 9, "_real.png") != 0)
            continue;
        char rp[1024], mp[1024];
        snprintf(rp, sizeof rp, "%s/%s", dir, e->d_name);
        snprintf(mp, sizeof mp, "%s/%.*s_mean.png", dir, (int)(len - 9), e->d_name);
        dae_image re = {0}, me = {0};
        dae_error err = {0};
        if (dae_image_read_file(rp, NULL, &re, &err) || dae_image_read_file(mp, NULL, &me, &err) ||
            re.c != 3 || me.c != 3 || re.w != me.w || re.h != me.h ||
            re.w > DAE_PNOISE_MAX_SIDE || re.h > DAE_PNOISE_MAX_SIDE) {
            fprintf(stderr, "photonoise: %s: skipped (%s)\n", e->d_name,
                    err.msg[0] ? err.msg : "not a colour pair of one size up to 1024");
            dae_image_free(&re);
            dae_image_free(&me);
            continue;
        }
        dae_photonoise *g = dae_photonoise_create(&set, 3, me.h, me.w, &err);
        size_t hw = (size_t)me.w * me.h;
        float *syn = malloc(3 * hw * sizeof *syn), *luma = malloc(hw * sizeof *luma);
        double level;
        if (!g || !syn || !luma || dae_photonoise_apply(g, &r, me.px, 1, syn, &level, &err)) {
            fprintf(stderr, "photonoise: %s\n", err.msg[0] ? err.msg : "out of memory");
            return 1;
        }
        nstats a = noise_stats(re.px, me.px, me.w, me.h, luma);
        nstats b = noise_stats(syn, me.px, me.w, me.h, luma);
        printf("%-26.26s %6.2f %5.2f %5.2f %6.2f   %6.2f %5.2f %5.2f %6.2f\n", e->d_name, a.rms,
               a.lag1, a.rg, a.bright_dark, b.rms, b.lag1, b.rg, b.bright_dark);
        sr.rms += a.rms, sr.lag1 += a.lag1, sr.rg += a.rg, sr.bright_dark += a.bright_dark;
        ss.rms += b.rms, ss.lag1 += b.lag1, ss.rg += b.rg, ss.bright_dark += b.bright_dark;
        n++;
        free(syn);
        free(luma);
        dae_photonoise_free(g);
        dae_image_free(&re);
        dae_image_free(&me);
    }
    closedir(d);
    if (n)
        printf("%-26s %6.2f %5.2f %5.2f %6.2f   %6.2f %5.2f %5.2f %6.2f\n", "mean", sr.rms / n,
               sr.lag1 / n, sr.rg / n, sr.bright_dark / n, ss.rms / n, ss.lag1 / n, ss.rg / n,
               ss.bright_dark / n);
    return n ? 0 : 1;
}

/* --apply: SET on the whole of IN, written as 8-bit OUT. */
static int apply_set(const char *set_json, const char *in, const char *out, unsigned seed)
{
    dae_photonoise_set set;
    dae_error err = {0};
    dae_image im = {0}, y = {0};
    dae_photonoise *g = NULL;
    double level = 0.0;
    dae_rng r;
    dae_rng_seed(&r, seed);
    int rc = dae_photonoise_set_parse(set_json, strlen(set_json), &set, &err) ||
             dae_image_read_file(in, NULL, &im, &err);
    if (!rc && (im.c != 3 || im.w > DAE_PNOISE_MAX_SIDE || im.h > DAE_PNOISE_MAX_SIDE))
        rc = dae_error_set(&err, DAE_EINVAL, "%s: %dx%dx%d, expected a colour photo of sides "
                           "up to %d", in, im.w, im.h, im.c, DAE_PNOISE_MAX_SIDE);
    if (!rc)
        rc = !(g = dae_photonoise_create(&set, 3, im.h, im.w, &err)) ||
             dae_image_alloc(&y, im.w, im.h, 3, 0, &err) ||
             dae_photonoise_apply(g, &r, im.px, 1, y.px, &level, &err) ||
             dae_png_write_file(out, &y, &err);
    if (rc)
        fprintf(stderr, "photonoise: %s\n", err.msg[0] ? err.msg : "out of memory");
    else
        printf("%s: level %.2f\n", out, level);
    dae_photonoise_free(g);
    dae_image_free(&im);
    dae_image_free(&y);
    return rc ? 1 : 0;
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
        else if (!strcmp(argv[i], "--real") && i + 1 < argc)
            return real_noise(argv[i + 1], i + 2 < argc ? argv[i + 2] : NULL);
        else if (!strcmp(argv[i], "--apply") && i + 3 < argc)
            return apply_set(argv[i + 1], argv[i + 2], argv[i + 3],
                             i + 4 < argc ? (unsigned)strtoul(argv[i + 4], NULL, 10) : 1u);
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: photonoise [--size P] [--seconds S] [PHOTO]\n"
                            "       photonoise --grid OUT.png PHOTO [SIDE]\n"
                            "       photonoise --apply SET_JSON IN OUT.png [SEED]\n"
                            "       photonoise --real DIR [SET_JSON]\n");
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

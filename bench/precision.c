/* precision.c — fp32 against bf16 inference (daed --precision) on a model file, side by
 * side in one process: forward time per image at batches 1, 4, 16 and 64 (one thread, the
 * two workspaces alternating A B B A for `rounds` rounds of 40 ms, medians), and how far the
 * bf16 outputs are from fp32's on random inputs in [0, 1]: the largest difference, and the
 * share of pixels whose 8-bit value (clipped, rounded) changes.
 *
 * usage: precision [--rounds N] MODEL.safetensors...   (default 15 rounds)
 * Exits 1 when a model cannot be loaded; prints "bf16: not on this CPU" where the CPU has
 * no AVX512-BF16 (the bf16 workspace then runs fp32). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daed/core/blas.h"
#include "daed/core/error.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/core/rng.h"

#define MAX_ROUNDS 101

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The outputs of B samples (in ws); exits with the message on an error. */
static const float *forward(const dae_model *m, dae_workspace *ws, const float *x, int B,
                            dae_shape *os)
{
    const float *y;
    dae_error e = {0};
    if (dae_model_forward(m, ws, x, B, m->in_shape, &y, os, &e) != DAE_OK) {
        fprintf(stderr, "precision: %s\n", e.msg);
        exit(1);
    }
    return y;
}

/* Microseconds per image of forward passes of B samples for about 40 ms. */
static double time_forward(const dae_model *m, dae_workspace *ws, const float *x, int B)
{
    int it = 0;
    double t0 = now_s(), el;
    do {
        forward(m, ws, x, B, NULL);
        it++;
    } while ((el = now_s() - t0) < 0.04);
    return el / it / B * 1e6;
}

static int run_model(const char *path, int rounds)
{
    dae_error e = {0};
    dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
    if (!mf) {
        fprintf(stderr, "precision: %s\n", e.msg);
        return 1;
    }
    const dae_model *m = mf->model;
    size_t nin = (size_t)m->in_shape.c * m->in_shape.h * m->in_shape.w;
    float *x = malloc(64 * nin * sizeof *x);
    dae_workspace *ws[2] = {dae_workspace_create(m, 64, m->in_shape, 0, &e),
                            dae_workspace_create(m, 64, m->in_shape, 0, &e)};
    if (!x || !ws[0] || !ws[1] || dae_workspace_set_precision(ws[1], DAE_PREC_BF16, &e)) {
        fprintf(stderr, "precision: %s: %s\n", path, e.msg[0] ? e.msg : "out of memory");
        exit(1);
    }
    dae_rng r;
    dae_rng_seed(&r, 1);
    for (size_t i = 0; i < 64 * nin; i++)
        x[i] = dae_rng_uniform(&r);
    printf("\n%s (%s): %.1f MFLOP per image\n", mf->name, path,
           dae_model_flops(m, m->in_shape) * 1e-6);
    if (dae_workspace_precision(ws[1]) != DAE_PREC_BF16) {
        printf("bf16: not on this CPU (no AVX512-BF16)\n");
    } else {
        /* distance on 64 images */
        size_t changed = 0;
        double maxd = 0;
        dae_shape os;
        const float *y32 = forward(m, ws[0], x, 64, &os);
        size_t nout = (size_t)64 * os.c * os.h * os.w;
        float *keep = malloc(nout * sizeof *keep);
        if (!keep)
            exit(1);
        memcpy(keep, y32, nout * sizeof *keep);
        const float *y16 = forward(m, ws[1], x, 64, NULL);
        for (size_t i = 0; i < nout; i++) {
            double d = fabs((double)keep[i] - y16[i]);
            maxd = d > maxd ? d : maxd;
            changed += lrintf(fminf(fmaxf(keep[i], 0.0f), 1.0f) * 255.0f) !=
                       lrintf(fminf(fmaxf(y16[i], 0.0f), 1.0f) * 255.0f);
        }
        printf("bf16 vs fp32 on 64 random inputs: max |diff| %.5f (%.2f of 255), 8-bit "
               "pixels changed %.2f %%\n",
               maxd, maxd * 255, 100.0 * (double)changed / (double)nout);
        free(keep);
    }
    printf("| batch | fp32 us/img | bf16 us/img | fp32 / bf16 |\n|---|---|---|---|\n");
    static const int batches[] = {1, 4, 16, 64};
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
        double t[2][MAX_ROUNDS];
        for (int k = 0; k < rounds; k++)
            for (int j = 0; j < 2; j++) { /* A B, then B A */
                int w = (k & 1) ? 1 - j : j;
                t[w][k] = time_forward(m, ws[w], x, batches[bi]);
            }
        qsort(t[0], (size_t)rounds, sizeof(double), cmp_double);
        qsort(t[1], (size_t)rounds, sizeof(double), cmp_double);
        double a = t[0][rounds / 2], b = t[1][rounds / 2];
        printf("| %d | %.1f | %.1f | %.2f |\n", batches[bi], a, b, a / b);
    }
    dae_workspace_free(ws[0]);
    dae_workspace_free(ws[1]);
    free(x);
    dae_modelfile_free(mf);
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = 15, status = 0, any = 0;
    dae_blas_set_threads(1);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > MAX_ROUNDS) {
                fprintf(stderr, "precision: --rounds 1..%d\n", MAX_ROUNDS);
                return 2;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: precision [--rounds N] MODEL.safetensors...\n");
            return 2;
        } else {
            any = 1;
            status |= run_model(argv[i], rounds);
        }
    }
    if (!any) {
        fprintf(stderr, "usage: precision [--rounds N] MODEL.safetensors...\n");
        return 2;
    }
    return status;
}

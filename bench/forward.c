/* forward.c — forward-pass throughput of daed's models against this machine's sgemm peak.
 *
 * 1. Peak: dae_sgemm GFLOP/s on square sizes and on the shapes the models use, with one
 *    OpenBLAS thread and with all of them; the best of each is the reference peak.
 * 2. Throughput: images/s and achieved GFLOP/s (dae_model_flops) of the PROTOCOL.md MLP DAE
 *    (784-512-128-512-784) and conv DAE at batch 1, 32, 64 and 256, with 1 and 2 BLAS threads,
 *    random weights (dae_model_init_params), random inputs in [0,1].
 * Prints a markdown table with the date, the CPU model and the PyTorch 1.13 reference
 * throughput of PROTOCOL.md §5 (same machine type, OMP_WAIT_POLICY=PASSIVE).
 *
 * usage: forward [--quick]   (default run about a minute, --quick a few seconds)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daed/core/blas.h"
#include "daed/core/error.h"
#include "daed/core/model.h"
#include "daed/core/rng.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void cpu_model(char *buf, size_t n)
{
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                snprintf(buf, n, "%s", p);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

/* The 1-minute load average: the machine is shared, so the numbers need this context. */
static double load_avg(void)
{
    double l = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1.0;
        fclose(f);
    }
    return l;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill_uniform(float *x, size_t n, dae_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = dae_rng_uniform(r);
}

/* ---- 1. sgemm peak ---- */

typedef struct {
    const char *what;
    int ta, tb, m, n, k;
} gemm_shape;

/* Square sizes, then the shapes a forward pass issues: a dense layer at batch 256
 * (out = in W^T) and the im2col products of the conv DAE's 32- and 64-channel layers on
 * one 28x28 / 14x14 sample. */
static const gemm_shape GEMMS[] = {
    {"square 256", 0, 0, 256, 256, 256},
    {"square 512", 0, 0, 512, 512, 512},
    {"square 1024", 0, 0, 1024, 1024, 1024},
    {"dense 256x784 . 784x512", 0, 1, 256, 512, 784},
    {"dense 256x512 . 512x784", 0, 1, 256, 784, 512},
    {"conv 32x288 . 288x784", 0, 0, 32, 784, 288},
    {"conv 64x288 . 288x196", 0, 0, 64, 196, 288},
};

static double gemm_gflops(const gemm_shape *g, double min_s, dae_rng *r)
{
    size_t na = (size_t)g->m * g->k, nb = (size_t)g->k * g->n, nc = (size_t)g->m * g->n;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
    double best = 0.0;
    if (!a || !b || !c) {
        fprintf(stderr, "forward: out of memory for %s\n", g->what);
        goto done;
    }
    fill_uniform(a, na, r);
    fill_uniform(b, nb, r);
    int lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
    dae_sgemm(g->ta, g->tb, g->m, g->n, g->k, 1.0f, a, lda, b, ldb, 0.0f, c, g->n);
    double flop = 2.0 * g->m * g->n * g->k;
    /* Best of several timed batches of calls: the machine is shared, the best is the
     * closest to what the hardware can do. */
    double t_end = now_s() + min_s;
    do {
        int reps = 0;
        double t0 = now_s(), t1;
        do {
            dae_sgemm(g->ta, g->tb, g->m, g->n, g->k, 1.0f, a, lda, b, ldb, 0.0f, c, g->n);
            reps++;
            t1 = now_s();
        } while (t1 - t0 < min_s / 8);
        double gf = flop * reps / (t1 - t0) * 1e-9;
        if (gf > best)
            best = gf;
    } while (now_s() < t_end);
done:
    free(a);
    free(b);
    free(c);
    return best;
}

/* ---- 2. models ---- */

#define L_LINEAR(i, o) {.kind = DAE_LAYER_LINEAR, .in_f = (i), .out_f = (o)}
#define L_CONV(i, o, s) \
    {.kind = DAE_LAYER_CONV2D, .in_ch = (i), .out_ch = (o), .k = 3, .stride = (s), .pad = 1}
#define L_CONVT(i, o, s, op)                                                                \
    {.kind = DAE_LAYER_CONV_T2D, .in_ch = (i), .out_ch = (o), .k = 3, .stride = (s),        \
     .pad = 1, .out_pad = (op)}
#define L_ACT(a) {.kind = DAE_LAYER_ACT, .act = (a)}

static dae_model *make_mlp(dae_error *err)
{
    const dae_layer enc[] = {{.kind = DAE_LAYER_FLATTEN}, L_LINEAR(784, 512),
                             L_ACT(DAE_ACT_RELU), L_LINEAR(512, 128), L_ACT(DAE_ACT_RELU)};
    const dae_layer dec[] = {L_LINEAR(128, 512), L_ACT(DAE_ACT_RELU), L_LINEAR(512, 784),
                             L_ACT(DAE_ACT_SIGMOID),
                             {.kind = DAE_LAYER_UNFLATTEN, .unflat = {1, 28, 28}}};
    return dae_model_create(enc, 5, dec, 5, (dae_shape){1, 28, 28}, 0, err);
}

static dae_model *make_conv(dae_error *err)
{
    const dae_layer enc[] = {L_CONV(1, 32, 1),  L_ACT(DAE_ACT_RELU), L_CONV(32, 32, 2),
                             L_ACT(DAE_ACT_RELU), L_CONV(32, 64, 2), L_ACT(DAE_ACT_RELU)};
    const dae_layer dec[] = {L_CONVT(64, 32, 2, 1), L_ACT(DAE_ACT_RELU), L_CONVT(32, 32, 2, 1),
                             L_ACT(DAE_ACT_RELU),   L_CONVT(32, 1, 1, 0),
                             L_ACT(DAE_ACT_SIGMOID)};
    return dae_model_create(enc, 6, dec, 6, (dae_shape){1, 28, 28}, 0, err);
}

typedef struct {
    const char *name;
    dae_model *m;
    double torch_b1[2], torch_b256[2]; /* PROTOCOL.md §5, PASSIVE, [1 thread, 2 threads] */
} bench_model;

/* Images per second, best of several timed windows within min_s seconds. */
static double model_throughput(const dae_model *m, int B, double min_s, dae_rng *r,
                               dae_error *err)
{
    double best = -1.0;
    size_t n_in = (size_t)B * m->in_shape.c * m->in_shape.h * m->in_shape.w;
    float *x = malloc(n_in * sizeof *x);
    dae_workspace *ws = dae_workspace_create(m, B, m->in_shape, 0, err);
    if (!x || !ws) {
        if (!x)
            dae_error_set(err, DAE_ENOMEM, "bench: cannot allocate the input batch");
        goto done;
    }
    fill_uniform(x, n_in, r);
    const float *y;
    dae_shape ys;
    for (int i = 0; i < 3; i++) /* warm-up */
        if (dae_model_forward(m, ws, x, B, m->in_shape, &y, &ys, err))
            goto done;
    double t_end = now_s() + min_s;
    do {
        int reps = 0;
        double t0 = now_s(), t1;
        do {
            if (dae_model_forward(m, ws, x, B, m->in_shape, &y, &ys, err))
                goto done;
            reps++;
            t1 = now_s();
        } while (t1 - t0 < min_s / 5);
        double ips = (double)B * reps / (t1 - t0);
        if (ips > best)
            best = ips;
    } while (now_s() < t_end);
done:
    dae_workspace_free(ws);
    free(x);
    return best;
}

int main(int argc, char **argv)
{
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: forward [--quick]\n"
                            "  default: about a minute; --quick: a few seconds\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    double gemm_s = quick ? 0.05 : 0.6, model_s = quick ? 0.1 : 1.5;
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    int threads[2] = {1, 2};
    dae_rng rng;
    dae_rng_seed(&rng, 42);
    dae_error err = {0};

    char cpu[256], date[64];
    cpu_model(cpu, sizeof cpu);
    time_t t = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M %Z", localtime(&t));
    printf("## daed forward benchmark%s\n\n", quick ? " (--quick)" : "");
    printf("%s; %s, %d online CPUs; load average %.2f at start; OpenBLAS: %s\n\n", date,
           cpu, ncpu, load_avg(), dae_blas_config());
    double wall0 = now_s(), cpu0 = cpu_s();

    /* 1. peak */
    printf("| sgemm (m x k . k x n) | 1 thread GFLOP/s | %d threads GFLOP/s |\n", ncpu);
    printf("|---|---|---|\n");
    double peak[2] = {0, 0};
    for (size_t g = 0; g < sizeof GEMMS / sizeof GEMMS[0]; g++) {
        double gf[2];
        for (int ti = 0; ti < 2; ti++) {
            dae_blas_set_threads(ti == 0 ? 1 : ncpu);
            gf[ti] = gemm_gflops(&GEMMS[g], gemm_s, &rng);
            if (gf[ti] > peak[ti])
                peak[ti] = gf[ti];
        }
        printf("| %s | %.1f | %.1f |\n", GEMMS[g].what, gf[0], gf[1]);
        fflush(stdout);
    }
    printf("| **best (peak)** | **%.1f** | **%.1f** |\n\n", peak[0], peak[1]);

    /* 2. models */
    bench_model models[2] = {
        {"mlp 784-512-128-512-784", NULL, {11292, 11275}, {53145, 68441}},
        {"conv DAE (PROTOCOL)", NULL, {735, 588}, {1693, 2255}},
    };
    models[0].m = make_mlp(&err);
    models[1].m = models[0].m ? make_conv(&err) : NULL;
    if (!models[0].m || !models[1].m) {
        fprintf(stderr, "forward: %s\n", err.msg);
        dae_model_free(models[0].m);
        return 1;
    }
    const int batches[4] = {1, 32, 64, 256}; /* 64: the batch the serving issue names */
    int rc = 0;
    printf("| model | MFLOP/img | batch | BLAS threads | images/s | GFLOP/s | %% of peak "
           "| PyTorch 1.13 images/s |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int mi = 0; mi < 2 && rc == 0; mi++) {
        bench_model *bm = &models[mi];
        dae_model_init_params(bm->m, 1 + (uint64_t)mi);
        double flops = dae_model_flops(bm->m, bm->m->in_shape);
        for (int bi = 0; bi < 4 && rc == 0; bi++) {
            for (int ti = 0; ti < 2; ti++) {
                int nt = threads[ti] < ncpu ? threads[ti] : ncpu;
                dae_blas_set_threads(nt);
                double ips = model_throughput(bm->m, batches[bi], model_s, &rng, &err);
                if (ips < 0) {
                    fprintf(stderr, "forward: %s: %s\n", bm->name, err.msg);
                    rc = 1;
                    break;
                }
                double gf = ips * flops * 1e-9;
                double pk = peak[nt == 1 ? 0 : 1];
                char ref[32] = "";
                if (batches[bi] == 1)
                    snprintf(ref, sizeof ref, "%.0f", bm->torch_b1[ti]);
                else if (batches[bi] == 256)
                    snprintf(ref, sizeof ref, "%.0f", bm->torch_b256[ti]);
                printf("| %s | %.2f | %d | %d | %.0f | %.1f | %.0f%% | %s |\n", bm->name,
                       flops * 1e-6, batches[bi], nt, ips, gf, pk > 0 ? 100.0 * gf / pk : 0.0,
                       ref);
                fflush(stdout);
            }
        }
    }
    double wall = now_s() - wall0;
    printf("\n%.0f s; process CPU time / wall time %.2f (%d would mean every core was ours "
           "while 2 threads ran; much lower means other load slowed the run); load average "
           "%.2f at the end.\n",
           wall, (cpu_s() - cpu0) / wall, ncpu, load_avg());
    printf("Peak = best sgemm GFLOP/s above at the same thread count. PyTorch numbers are "
           "the PROTOCOL.md §5 reference (OMP_WAIT_POLICY=PASSIVE, measured on a shared "
           "2-core machine).\n");
    dae_model_free(models[0].m);
    dae_model_free(models[1].m);
    return rc;
}

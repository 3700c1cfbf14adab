/* train-speed.c — training and inference speed of the numeric core on the networks.
 *
 *   build/bench/train-speed [--quick] [--threads 1,2] [--only mlp|conv|photo]
 *
 * Prints one `RESULT <key> <value>` line per number (bench/train-speed.sh pairs them with
 * bench/ref/torch_speed.py):
 *   - mlp / conv: seconds per epoch-equivalent = 469 steps of batch 128 on random 28x28
 *     data with random targets: forward, MSE gradient, backward, Adam update. MLP
 *     784-512-128-512-784 (also its sgemm GFLOP/s next to the peak measured here), conv
 *     DAE of ../shared/PROTOCOL.md §3.5.
 *   - photo: DnCNN-style residual net (8 conv 3x3 "same", 32 channels, ReLU, output =
 *     input - net(input)), gray and RGB: training patches/s on 40x40 patches at batch 64,
 *     and inference seconds per megapixel on a 512x512 image.
 * Each configuration runs at every thread count T of --threads: key "tT" is T workspace
 * threads (dae_workspace_set_threads) on single-threaded OpenBLAS, "tTblas" one workspace
 * thread on T OpenBLAS threads. Random data throughout: the speed does not depend on it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daed/core/blas.h"
#include "daed/core/model.h"
#include "daed/core/rng.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double load1(void)
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

static void die(const char *what, const dae_error *e)
{
    fprintf(stderr, "train-speed: %s: %s\n", what, e ? e->msg : "failed");
    exit(1);
}

static float *rand_floats(size_t n, dae_rng *r)
{
    float *x = malloc(n * sizeof *x);
    if (!x)
        die("out of memory", NULL);
    for (size_t i = 0; i < n; i++)
        x[i] = dae_rng_uniform(r);
    return x;
}

/* ---------------------------- networks ---------------------------- */

static dae_layer lin(int i, int o)
{
    return (dae_layer){.kind = DAE_LAYER_LINEAR, .in_f = i, .out_f = o};
}
static dae_layer conv(int i, int o, int s)
{
    return (dae_layer){.kind = DAE_LAYER_CONV2D, .in_ch = i, .out_ch = o, .k = 3, .stride = s,
                       .pad = 1};
}
static dae_layer convt(int i, int o, int s, int op)
{
    return (dae_layer){.kind = DAE_LAYER_CONV_T2D, .in_ch = i, .out_ch = o, .k = 3,
                       .stride = s, .pad = 1, .out_pad = op};
}
static dae_layer act(dae_act a)
{
    return (dae_layer){.kind = DAE_LAYER_ACT, .act = a};
}

static dae_model *make_mlp(void)
{
    dae_layer enc[] = {{.kind = DAE_LAYER_FLATTEN}, lin(784, 512), act(DAE_ACT_RELU),
                       lin(512, 128), act(DAE_ACT_RELU)};
    dae_layer dec[] = {lin(128, 512), act(DAE_ACT_RELU), lin(512, 784),
                       act(DAE_ACT_SIGMOID),
                       {.kind = DAE_LAYER_UNFLATTEN, .unflat = {1, 28, 28}}};
    dae_error e;
    dae_model *m = dae_model_create(enc, 5, dec, 5, (dae_shape){1, 28, 28}, 0, &e);
    if (!m)
        die("mlp", &e);
    return m;
}

static dae_model *make_conv(void)
{
    dae_layer enc[] = {conv(1, 32, 1), act(DAE_ACT_RELU), conv(32, 32, 2), act(DAE_ACT_RELU),
                       conv(32, 64, 2), act(DAE_ACT_RELU)};
    dae_layer dec[] = {convt(64, 32, 2, 1), act(DAE_ACT_RELU), convt(32, 32, 2, 1),
                       act(DAE_ACT_RELU), convt(32, 1, 1, 0), act(DAE_ACT_SIGMOID)};
    dae_error e;
    dae_model *m = dae_model_create(enc, 6, dec, 6, (dae_shape){1, 28, 28}, 0, &e);
    if (!m)
        die("conv", &e);
    return m;
}

/* DnCNN-style: conv+ReLU, (depth-2) x [conv+ReLU], conv; residual output. */
static dae_model *make_dncnn(int depth, int ch, int in_ch)
{
    dae_layer L[64];
    int n = 0;
    L[n++] = conv(in_ch, ch, 1);
    L[n++] = act(DAE_ACT_RELU);
    for (int i = 0; i < depth - 2; i++) {
        L[n++] = conv(ch, ch, 1);
        L[n++] = act(DAE_ACT_RELU);
    }
    L[n++] = conv(ch, in_ch, 1);
    dae_error e;
    dae_model *m = dae_model_create(L, n, NULL, 0, (dae_shape){in_ch, 40, 40}, 1, &e);
    if (!m)
        die("dncnn", &e);
    return m;
}

/* ---------------------------- training ---------------------------- */

typedef struct {
    dae_model *m;
    dae_workspace *ws;
    float *grads, *adam_m, *adam_v, *dout;
    int B, t;
    dae_shape in;
} trainer;

static void trainer_init(trainer *T, dae_model *m, int B, dae_shape in, int threads)
{
    dae_error e;
    T->m = m;
    T->B = B;
    T->in = in;
    T->t = 0;
    T->ws = dae_workspace_create(m, B, in, 1, &e);
    if (!T->ws)
        die("workspace", &e);
    if (dae_workspace_set_threads(T->ws, threads, &e))
        die("threads", &e);
    size_t n = m->n_params, no = (size_t)B * in.c * in.h * in.w;
    T->grads = calloc(n, sizeof(float));
    T->adam_m = calloc(n, sizeof(float));
    T->adam_v = calloc(n, sizeof(float));
    T->dout = calloc(no, sizeof(float));
    if (!T->grads || !T->adam_m || !T->adam_v || !T->dout)
        die("out of memory", NULL);
}

static void trainer_free(trainer *T)
{
    dae_workspace_free(T->ws);
    free(T->grads), free(T->adam_m), free(T->adam_v), free(T->dout);
}

/* One step of MSE (mean over every value) with Adam(1e-3, 0.9, 0.999, 1e-8). */
static void train_step(trainer *T, const float *x, const float *target)
{
    dae_error e;
    const float *y;
    dae_shape ys;
    if (dae_model_forward(T->m, T->ws, x, T->B, T->in, &y, &ys, &e))
        die("forward", &e);
    size_t n = (size_t)T->B * ys.c * ys.h * ys.w;
    float sc = 2.0f / (float)n;
    for (size_t i = 0; i < n; i++)
        T->dout[i] = sc * (y[i] - target[i]);
    memset(T->grads, 0, T->m->n_params * sizeof *T->grads);
    if (dae_model_backward(T->m, T->ws, T->dout, NULL, T->grads, NULL, &e))
        die("backward", &e);
    T->t++;
    float b1 = 0.9f, b2 = 0.999f, lr = 1e-3f, eps = 1e-8f;
    float c1 = 1.0f / (1.0f - powf(b1, (float)T->t)), c2 = 1.0f / (1.0f - powf(b2, (float)T->t));
    float *p = T->m->params, *g = T->grads, *am = T->adam_m, *av = T->adam_v;
    for (size_t i = 0; i < T->m->n_params; i++) {
        am[i] = b1 * am[i] + (1.0f - b1) * g[i];
        av[i] = b2 * av[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= lr * (am[i] * c1) / (sqrtf(av[i] * c2) + eps);
    }
}

/* Median wall seconds per step over `reps` runs of `steps` steps, after 3 warm-up steps;
 * *cpu: the process CPU seconds per step of that run (all threads; on a loaded machine the
 * wall time is inflated by others' work, the CPU time much less). */
static double time_steps(trainer *T, const float *x, const float *tg, int steps, int reps,
                         double *cpu)
{
    double best[16], cpus[16];
    for (int i = 0; i < 3; i++)
        train_step(T, x, tg);
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu_now();
        for (int i = 0; i < steps; i++)
            train_step(T, x, tg);
        best[r] = (now() - t0) / steps;
        cpus[r] = (cpu_now() - c0) / steps;
    }
    *cpu = 1e30;
    for (int i = 0; i < reps; i++)
        if (cpus[i] < *cpu)
            *cpu = cpus[i];
    for (int i = 1; i < reps; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && best[j] < best[j - 1]; j--) {
            double t = best[j];
            best[j] = best[j - 1];
            best[j - 1] = t;
        }
    return best[reps / 2];
}

static void result(const char *key, double v, const char *unit)
{
    printf("RESULT %-34s %10.4f %s  (load %.2f)\n", key, v, unit, load1());
    fflush(stdout);
}

/* A thread setting: the workspace's threads, OpenBLAS's threads, and the key's label
 * ("t2": two workspace threads on single-threaded BLAS; "t2blas": one workspace thread on
 * two BLAS threads). */
typedef struct {
    int ws, blas;
    char label[16];
} mode;

/* Peak single-thread sgemm GFLOP/s on a large square product. */
static double sgemm_peak(dae_rng *r)
{
    int n = 1536;
    float *a = rand_floats((size_t)n * n, r), *b = rand_floats((size_t)n * n, r);
    float *c = rand_floats((size_t)n * n, r);
    dae_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 1e30;
    for (int i = 0; i < 3; i++) {
        double t0 = now();
        dae_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n / best * 1e-9;
}

static void bench_28(const char *name, dae_model *m, const mode *md, int nmd, int quick,
                     dae_rng *r)
{
    int B = 128, steps = quick ? 5 : 20, reps = quick ? 1 : 3;
    dae_shape in = {1, 28, 28};
    float *x = rand_floats((size_t)B * 784, r), *tg = rand_floats((size_t)B * 784, r);
    for (int ti = 0; ti < nmd; ti++) {
        dae_blas_set_threads(md[ti].blas);
        dae_model_init_params(m, 1);
        trainer T;
        trainer_init(&T, m, B, in, md[ti].ws);
        double cpu, s = time_steps(&T, x, tg, steps, reps, &cpu);
        char key[64];
        snprintf(key, sizeof key, "%s.train.%s.s_per_epoch", name, md[ti].label);
        result(key, s * 469.0, "s/epoch");
        snprintf(key, sizeof key, "%s.train.%s.cpu_s_per_epoch", name, md[ti].label);
        result(key, cpu * 469.0, "cpu-s/epoch");
        if (!strcmp(name, "mlp")) { /* forward 1x, backward 2x the forward flops */
            double gf = 3.0 * dae_model_flops(m, in) * B / s * 1e-9;
            snprintf(key, sizeof key, "%s.train.%s.gflops", name, md[ti].label);
            result(key, gf, "GFLOP/s");
        }
        trainer_free(&T);
    }
    free(x), free(tg);
}

static void bench_photo(int in_ch, const mode *md, int nmd, int quick, dae_rng *r)
{
    dae_model *m = make_dncnn(8, 32, in_ch);
    dae_model_init_params(m, 2);
    const char *nm = in_ch == 1 ? "photo_gray" : "photo_rgb";
    char key[64];
    int B = 64, P = 40;
    dae_shape pin = {in_ch, P, P};
    float *x = rand_floats((size_t)B * in_ch * P * P, r);
    float *tg = rand_floats((size_t)B * in_ch * P * P, r);
    int S = 512;
    dae_shape iin = {in_ch, S, S};
    float *img = rand_floats((size_t)in_ch * S * S, r);
    for (int ti = 0; ti < nmd; ti++) {
        dae_blas_set_threads(md[ti].blas);
        trainer T;
        trainer_init(&T, m, B, pin, md[ti].ws);
        double cpu, s = time_steps(&T, x, tg, quick ? 2 : 6, quick ? 1 : 3, &cpu);
        snprintf(key, sizeof key, "%s.train.%s.patches_per_s", nm, md[ti].label);
        result(key, B / s, "patches/s");
        snprintf(key, sizeof key, "%s.train.%s.patches_per_cpu_s", nm, md[ti].label);
        result(key, B / cpu, "patches/cpu-s");
        trainer_free(&T);
        dae_model_init_params(m, 2);

        dae_error e;
        dae_workspace *ws = dae_workspace_create(m, 1, iin, 0, &e);
        if (!ws)
            die("workspace", &e);
        if (dae_workspace_set_threads(ws, md[ti].ws, &e))
            die("threads", &e);
        const float *y;
        if (dae_model_forward(m, ws, img, 1, iin, &y, NULL, &e))
            die("forward", &e);
        double best = 1e30, bcpu = 1e30;
        for (int i = 0; i < (quick ? 1 : 3); i++) {
            double t0 = now(), c0 = cpu_now();
            if (dae_model_forward(m, ws, img, 1, iin, &y, NULL, &e))
                die("forward", &e);
            double t = now() - t0, c = cpu_now() - c0;
            if (t < best)
                best = t;
            if (c < bcpu)
                bcpu = c;
        }
        snprintf(key, sizeof key, "%s.infer.%s.s_per_mpx", nm, md[ti].label);
        result(key, best / (S * S * 1e-6), "s/Mpx");
        snprintf(key, sizeof key, "%s.infer.%s.cpu_s_per_mpx", nm, md[ti].label);
        result(key, bcpu / (S * S * 1e-6), "cpu-s/Mpx");
        dae_workspace_free(ws);
    }
    free(x), free(tg), free(img);
    dae_model_free(m);
}

int main(int argc, char **argv)
{
    int quick = 0, thr[4] = {1, 2}, nthr = 2;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *s = argv[++i];
            nthr = 0;
            while (*s && nthr < 4) {
                thr[nthr++] = (int)strtol(s, &s, 10);
                if (*s == ',')
                    s++;
            }
        } else {
            fprintf(stderr, "usage: train-speed [--quick] [--threads 1,2] "
                            "[--only mlp|conv|photo]\n");
            return 2;
        }
    }
    mode md[8];
    int nmd = 0;
    for (int i = 0; i < nthr; i++) {
        if (thr[i] < 1 || thr[i] > DAE_MAX_THREADS) {
            fprintf(stderr, "train-speed: %d threads, expected 1..%d\n", thr[i],
                    DAE_MAX_THREADS);
            return 2;
        }
        md[nmd] = (mode){thr[i], 1, ""};
        snprintf(md[nmd].label, sizeof md[nmd].label, "t%d", thr[i]);
        nmd++;
        if (thr[i] > 1) {
            md[nmd] = (mode){1, thr[i], ""};
            snprintf(md[nmd].label, sizeof md[nmd].label, "t%dblas", thr[i]);
            nmd++;
        }
    }
    dae_rng r;
    dae_rng_seed(&r, 7);
    if (!only || !strcmp(only, "mlp")) {
        dae_blas_set_threads(1);
        result("sgemm.peak.t1.gflops", sgemm_peak(&r), "GFLOP/s");
        dae_model *m = make_mlp();
        bench_28("mlp", m, md, nmd, quick, &r);
        dae_model_free(m);
    }
    if (!only || !strcmp(only, "conv")) {
        dae_model *m = make_conv();
        bench_28("conv", m, md, nmd, quick, &r);
        dae_model_free(m);
    }
    if (!only || !strcmp(only, "photo")) {
        bench_photo(1, md, nmd, quick, &r);
        bench_photo(3, md, nmd, quick, &r);
    }
    return 0;
}

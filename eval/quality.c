/* quality.c — restoration quality of model files under ../shared/PROTOCOL.md §3, printed
 * next to the protocol's reference rows and the bars.
 *
 *   build/eval/quality [--eval data/eval] [--dataset fmnist|mnist] [--task T]... [--ssim]
 *                       MODEL.safetensors...
 *
 * Inputs are the exported evaluation sets (`make eval-data`: raw float32, 2000 images per
 * task). The tasks a model is measured on follow its declared tasks (denoise: g20, g50,
 * mask50; inpaint: inpaint-10, inpaint-14 with known pixels pasted back; superres: sr2)
 * unless --task names them. Conventions the models follow:
 *   - sr2: a model whose input is 14x14 gets the 14x14 image; a 28x28-input model gets it
 *     upsampled bilinearly (PROTOCOL §3.5, like the PyTorch MLP reference).
 *   - inpaint: a model whose input has one channel more than the data receives the
 *     known-pixel mask as that last channel.
 * The dataset comes from --dataset, else the model name's prefix (mnist-*, else fmnist).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/error.h"
#include "daed/io/image.h"
#include "daed/train/quality.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"

#define N_EVAL 2000
#define BATCH 200

enum { T_G20, T_G50, T_MASK50, T_INP10, T_INP14, T_SR2, N_TASKS };
static const char *const task_names[N_TASKS] = {"denoise-g20",   "denoise-g50", "denoise-mask50",
                                                "inpaint-10",    "inpaint-14",  "sr2"};

/* PROTOCOL.md reference rows (mean per-image PSNR, dB): best classical, PyTorch MLP DAE
 * (paste-back on inpaint), PyTorch conv DAE (paste-back on inpaint), and the bar =
 * max(best classical + 1.0, best PyTorch + 0.5). */
typedef struct ref_rows {
    double classical[N_TASKS], mlp[N_TASKS], conv[N_TASKS], bar[N_TASKS];
} ref_rows;
static const ref_rows ref_fmnist = {
    {19.22, 14.43, 12.39, 24.41, 19.26, 19.47},
    {20.80, 18.80, 19.57, 28.14, 23.77, 21.16},
    {21.70, 17.37, 19.48, 21.97, 17.45, 22.50},
    {22.20, 19.30, 20.07, 28.64, 24.27, 23.00},
};
static const ref_rows ref_mnist = {
    {19.74, 14.19, 14.03, 20.68, 15.23, 20.93},
    {20.49, 17.77, 18.63, 23.86, 18.35, 20.80},
    {25.12, 19.05, 21.59, 21.37, 15.31, 26.38},
    {25.62, 19.55, 22.09, 24.36, 18.85, 26.88},
};

static float *read_f32(const char *dir, const char *name, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "quality: cannot open %s (run `make eval-data`)\n", path);
        return NULL;
    }
    float *v = malloc(n * sizeof *v);
    size_t got = v ? fread(v, sizeof *v, n, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        fprintf(stderr, "quality: %s: expected exactly %zu float32 values\n", path, n);
        free(v);
        return NULL;
    }
    return v;
}

/* Bilinear 14x14 -> 28x28 (align_corners=False), one image. */
static int upsample_bilinear(const float *src, float *dst, dae_error *err)
{
    dae_image a = {.w = 14, .h = 14, .c = 1, .px = (float *)src}, b = {0};
    int rc = dae_image_resize(&a, 28, 28, &b, err);
    if (rc == DAE_OK)
        memcpy(dst, b.px, 784 * sizeof *dst);
    dae_image_free(&b);
    return rc;
}

/* Run one task on all evaluation images; fills q. */
static int eval_task(const dae_modelfile *mf, const char *eval_dir, const char *ds, int task,
                     const float *clean, int with_ssim, dae_precision prec, dae_quality *q,
                     dae_error *err)
{
    const dae_model *m = mf->model;
    char name[256];
    int sr = task == T_SR2, inp = task == T_INP10 || task == T_INP14;
    size_t in_px = sr ? 196 : 784;
    snprintf(name, sizeof name, "%s_%s_input.f32", ds, task_names[task]);
    float *input = read_f32(eval_dir, name, N_EVAL * in_px);
    float *mask = NULL;
    if (inp) {
        snprintf(name, sizeof name, "%s_%s_mask.f32", ds, task_names[task]);
        mask = read_f32(eval_dir, name, N_EVAL * 784);
    }
    dae_shape in = m->in_shape;
    if (m->fully_conv && in.h != 14 && in.h != 28)
        in.h = in.w = 28;
    int mask_ch = inp && in.c == 2;
    size_t in_sz = (size_t)in.c * in.h * in.w;
    float *batch = malloc(BATCH * in_sz * sizeof *batch);
    float *outs = malloc(BATCH * 784 * sizeof *outs);
    dae_workspace *ws = NULL;
    int rc = DAE_EINVAL;
    if (!input || (inp && !mask) || !batch || !outs) {
        rc = dae_error_set(err, DAE_EIO, "cannot read the %s evaluation set", task_names[task]);
        goto done;
    }
    if (!((in.h == 28 && in.w == 28) || (sr && in.h == 14 && in.w == 14)) ||
        (in.c != 1 && !mask_ch)) {
        rc = dae_error_set(err, DAE_ESHAPE, "model input (%d,%d,%d) does not fit task %s",
                           in.c, in.h, in.w, task_names[task]);
        goto done;
    }
    ws = dae_workspace_create(m, BATCH, in, 0, err);
    if (!ws || dae_workspace_set_precision(ws, prec, err)) {
        rc = err->code;
        goto done;
    }
    dae_quality_init(q);
    for (int i0 = 0; i0 < N_EVAL; i0 += BATCH) {
        for (int b = 0; b < BATCH; b++) {
            const float *src = input + (size_t)(i0 + b) * in_px;
            float *dst = batch + (size_t)b * in_sz;
            if (sr && in.h == 28) {
                if ((rc = upsample_bilinear(src, dst, err)) != DAE_OK)
                    goto done;
            } else {
                memcpy(dst, src, in_px * sizeof *dst);
            }
            if (mask_ch)
                memcpy(dst + 784, mask + (size_t)(i0 + b) * 784, 784 * sizeof *dst);
        }
        const float *out;
        dae_shape os;
        if ((rc = dae_model_forward(m, ws, batch, BATCH, in, &out, &os, err)) != DAE_OK)
            goto done;
        if (os.c != 1 || os.h != 28 || os.w != 28) {
            rc = dae_error_set(err, DAE_ESHAPE, "model output (%d,%d,%d), expected (1,28,28)",
                               os.c, os.h, os.w);
            goto done;
        }
        memcpy(outs, out, BATCH * 784 * sizeof *outs);
        if (inp) { /* known pixels are kept: paste back */
            for (size_t j = 0; j < (size_t)BATCH * 784; j++) {
                float k = mask[(size_t)i0 * 784 + j];
                outs[j] = k * input[(size_t)i0 * 784 + j] + (1 - k) * outs[j];
            }
        }
        dae_quality_add(q, outs, clean + (size_t)i0 * 784, BATCH, 1, 28, 28, with_ssim);
    }
    rc = DAE_OK;
done:
    dae_workspace_free(ws);
    free(input);
    free(mask);
    free(batch);
    free(outs);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: quality [--eval DIR] [--dataset fmnist|mnist] [--task NAME]... [--ssim] "
               "MODEL.safetensors...\n"
               "  --eval DIR     exported PROTOCOL sets (default data/eval; `make eval-data`)\n"
               "  --dataset D    evaluation set (default: from the model name, mnist-* or fmnist)\n"
               "  --task T       denoise-g20 denoise-g50 denoise-mask50 inpaint-10 inpaint-14 sr2\n"
               "                 (default: the tasks the model declares)\n"
               "  --ssim         also compute mean SSIM (slower)\n"
               "  --precision P  fp32 (default) or bf16, as daed --precision\n");
}

int main(int argc, char **argv)
{
    const char *eval_dir = "data/eval", *dataset = NULL;
    int want[N_TASKS] = {0}, any_want = 0, with_ssim = 0, status = 0;
    dae_precision prec = DAE_PREC_FP32;
    int first_model = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--eval") && i + 1 < argc) {
            eval_dir = argv[++i];
        } else if (!strcmp(argv[i], "--dataset") && i + 1 < argc) {
            dataset = argv[++i];
        } else if (!strcmp(argv[i], "--task") && i + 1 < argc) {
            const char *t = argv[++i];
            int k = 0;
            while (k < N_TASKS && strcmp(task_names[k], t))
                k++;
            if (k == N_TASKS) {
                fprintf(stderr, "quality: unknown task '%s'\n", t);
                usage(stderr);
                return 2;
            }
            want[k] = any_want = 1;
        } else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            const char *pn = argv[++i];
            if (strcmp(pn, "fp32") && strcmp(pn, "bf16")) {
                fprintf(stderr, "quality: --precision %s: expected fp32 or bf16\n", pn);
                return 2;
            }
            prec = !strcmp(pn, "bf16") ? DAE_PREC_BF16 : DAE_PREC_FP32;
        } else if (!strcmp(argv[i], "--ssim")) {
            with_ssim = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "quality: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            first_model = i;
            break;
        }
    }
    if (first_model >= argc) {
        usage(stderr);
        return 2;
    }
    for (int i = first_model; i < argc; i++) {
        dae_error err = {0};
        dae_modelfile *mf = dae_modelfile_load(argv[i], NULL, &err);
        if (!mf) {
            fprintf(stderr, "quality: %s\n", err.msg);
            status = 1;
            continue;
        }
        const char *ds = dataset ? dataset : (!strncmp(mf->name, "mnist", 5) ? "mnist" : "fmnist");
        const ref_rows *ref = !strcmp(ds, "mnist") ? &ref_mnist : &ref_fmnist;
        float *clean = NULL;
        char cname[64];
        snprintf(cname, sizeof cname, "%s_clean.f32", ds);
        if (!(clean = read_f32(eval_dir, cname, (size_t)N_EVAL * 784))) {
            dae_modelfile_free(mf);
            return 1;
        }
        int run[N_TASKS];
        for (int t = 0; t < N_TASKS; t++) {
            if (any_want)
                run[t] = want[t];
            else if (t <= T_MASK50)
                run[t] = !!(mf->tasks & DAE_TASK_DENOISE);
            else if (t <= T_INP14)
                run[t] = !!(mf->tasks & DAE_TASK_INPAINT);
            else
                run[t] = !!(mf->tasks & DAE_TASK_SUPERRES);
        }
        printf("\n### %s (%s, %s evaluation set, %d images, %s)\n\n", mf->name, argv[i], ds,
               N_EVAL, prec == DAE_PREC_BF16 ? "bf16" : "fp32");
        printf("| task | PSNR dB | psnr_agg | capped |%s bar | vs bar | best classical | "
               "PyTorch MLP | PyTorch conv |\n",
               with_ssim ? " SSIM |" : "");
        printf("|---|---|---|---|%s---|---|---|---|---|\n", with_ssim ? "---|" : "");
        for (int t = 0; t < N_TASKS; t++) {
            if (!run[t])
                continue;
            dae_quality q;
            if (eval_task(mf, eval_dir, ds, t, clean, with_ssim, prec, &q, &err) != DAE_OK) {
                printf("| %s | error: %s |\n", task_names[t], err.msg);
                status = 1;
                continue;
            }
            double p = dae_quality_psnr(&q);
            char ssim[32] = "";
            if (with_ssim)
                snprintf(ssim, sizeof ssim, " %.3f |", dae_quality_ssim(&q));
            printf("| %s | **%.2f** | %.2f | %ld |%s %.2f | %+.2f %s | %.2f | %.2f | %.2f |\n",
                   task_names[t], p, dae_quality_psnr_agg(&q), q.n_capped, ssim, ref->bar[t],
                   p - ref->bar[t], p >= ref->bar[t] ? "pass" : "below", ref->classical[t],
                   ref->mlp[t], ref->conv[t]);
        }
        fflush(stdout);
        free(clean);
        dae_modelfile_free(mf);
    }
    return status;
}

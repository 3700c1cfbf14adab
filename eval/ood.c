/* ood.c — how well a model file's own anomaly score (the one daed's /v1/score uses) tells
 * its training distribution from another: AUROC over the clean PROTOCOL evaluation images
 * of the normal set (negatives) and of the other set (positives), and the share of each
 * flagged at the file's calibrated threshold.
 *   ood [--eval DIR] --normal fmnist|mnist --anomaly mnist|fmnist MODEL.safetensors */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/error.h"
#include "daed/train/quality.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/core/score.h"

#define N_EVAL 2000
#define BATCH 250

static float *read_clean(const char *dir, const char *ds)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s_clean.f32", dir, ds);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ood: cannot open %s (run `make eval-data`)\n", path);
        return NULL;
    }
    size_t n = (size_t)N_EVAL * 784;
    float *v = malloc(n * sizeof *v);
    size_t got = v ? fread(v, sizeof *v, n, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        fprintf(stderr, "ood: %s: expected exactly %zu float32 values\n", path, n);
        free(v);
        return NULL;
    }
    return v;
}

static int score_all(const dae_scorer *s, dae_workspace *mws, dae_score_ws *w, const float *x,
                     double *out)
{
    dae_error err = {0};
    for (int i = 0; i < N_EVAL; i += BATCH) {
        if (dae_score_batch(s, mws, w, x + (size_t)i * 784, BATCH, out + i, NULL, NULL, &err)) {
            fprintf(stderr, "ood: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *eval = "data/eval", *normal = NULL, *anomaly = NULL, *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--eval") && i + 1 < argc) eval = argv[++i];
        else if (!strcmp(argv[i], "--normal") && i + 1 < argc) normal = argv[++i];
        else if (!strcmp(argv[i], "--anomaly") && i + 1 < argc) anomaly = argv[++i];
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            path = NULL;
            break;
        }
    }
    if (!path || !normal || !anomaly) {
        fprintf(stderr, "usage: ood [--eval DIR] --normal fmnist|mnist --anomaly mnist|fmnist "
                        "MODEL.safetensors\n");
        return 2;
    }
    int rc = 1;
    dae_error err = {0};
    dae_modelfile *mf = NULL;
    dae_scorer *s = NULL;
    dae_workspace *mws = NULL;
    dae_score_ws *w = NULL;
    float *xn = NULL, *xa = NULL;
    double *sc = malloc(2 * N_EVAL * sizeof *sc);
    unsigned char *pos = malloc(2 * N_EVAL);
    if (!sc || !pos) goto done;
    if (!(xn = read_clean(eval, normal)) || !(xa = read_clean(eval, anomaly))) goto done;
    if (!(mf = dae_modelfile_load(path, NULL, &err)) || !(s = dae_modelfile_scorer(mf, &err)) ||
        !(mws = dae_workspace_create(mf->model, BATCH, mf->model->in_shape, 0, &err)) ||
        !(w = dae_score_ws_create(s, BATCH, &err))) {
        fprintf(stderr, "ood: %s\n", err.msg);
        goto done;
    }
    if (score_all(s, mws, w, xn, sc) || score_all(s, mws, w, xa, sc + N_EVAL)) goto done;
    int fp = 0, tp = 0;
    for (int i = 0; i < 2 * N_EVAL; i++) {
        pos[i] = i >= N_EVAL;
        if (mf->calib.n && sc[i] > mf->calib.threshold) {
            if (pos[i]) tp++;
            else fp++;
        }
    }
    double auc = 0;
    if (dae_auroc(sc, pos, 2 * N_EVAL, &auc, &err)) {
        fprintf(stderr, "ood: %s\n", err.msg);
        goto done;
    }
    printf("model %s score %s: normal %s, anomaly %s, %d + %d clean evaluation images\n",
           path, mf->calib.score, normal, anomaly, N_EVAL, N_EVAL);
    printf("AUROC %.4f\n", auc);
    if (mf->calib.n)
        printf("at the calibrated threshold %.6g: %.1f %% of normal and %.1f %% of anomalous "
               "images flagged\n", mf->calib.threshold, 100.0 * fp / N_EVAL, 100.0 * tp / N_EVAL);
    rc = 0;
done:
    dae_score_ws_free(w);
    dae_workspace_free(mws);
    dae_scorer_free(s);
    dae_modelfile_free(mf);
    free(xn);
    free(xa);
    free(sc);
    free(pos);
    return rc;
}

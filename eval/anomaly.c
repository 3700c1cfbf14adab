/* anomaly.c — PROTOCOL.md §4 one-class AUROC: per class k, dae-train's recipe on the class-k
 * train images, anomaly scores fitted on normal images only, all test images scored;
 * per-class table and mean next to the PyTorch/sklearn reference columns.
 *
 *   build/eval/anomaly [--datasets fmnist,mnist] [--classes 0,1,...] [--threads N]
 *       [--scores mse,bmse1,...] [--save SPEC] [--bank-max N] [--reuse] [--out DIR]
 *       [--recipe-fmnist FILE] [--recipe-mnist FILE] [-- recipe overrides...]
 *
 * Per class: the recipe (eval/recipes/anomaly-<ds>.json) is trained with --data.class k
 * (--reuse keeps a model file from an earlier run), the class-k images are split as the
 * trainer split them (seeded, data.val_fraction), each score spec (score.h) is fitted with
 * the knn bank = the trained-on images and the statistics/calibration = the held-out ones,
 * and the AUROC of "label != k" is computed on the whole test set. The --save spec (default
 * the first: bmse1@top100+knn1b1, the method chosen in docs/anomaly.md) is written into the
 * model file, which is reloaded and scored again: the
 * reloaded file must give the same AUROC (the daemon scores with that file).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daed/core/blas.h"
#include "daed/io/dataset.h"
#include "daed/train/quality.h"
#include "daed/io/modelfile.h"
#include "daed/train/recipe.h"
#include "daed/core/score.h"
#include "daed/train/scorefit.h"
#include "daed/train/trainer.h"

#define MAX_SPECS 16

/* PROTOCOL.md §4 reference AUROCs: ae, dae, pca, knn per class. */
static const double ref_fmnist[10][4] = {
    {0.9098, 0.8964, 0.8965, 0.9146}, {0.9891, 0.9661, 0.9853, 0.9900},
    {0.8893, 0.8651, 0.8805, 0.8931}, {0.9252, 0.9014, 0.9162, 0.9408},
    {0.8999, 0.9047, 0.8803, 0.9089}, {0.8763, 0.8332, 0.8797, 0.9209},
    {0.8238, 0.8174, 0.8179, 0.8304}, {0.9841, 0.9651, 0.9850, 0.9868},
    {0.8412, 0.8109, 0.8383, 0.8740}, {0.9741, 0.9463, 0.9712, 0.9661}};
static const double ref_mnist[10][4] = {
    {0.9908, 0.9774, 0.9857, 0.9815}, {0.9996, 0.9972, 0.9988, 0.9990},
    {0.8967, 0.8878, 0.9210, 0.8791}, {0.9334, 0.9235, 0.9372, 0.9014},
    {0.9498, 0.9212, 0.9521, 0.9209}, {0.9550, 0.9666, 0.9716, 0.9467},
    {0.9861, 0.9726, 0.9818, 0.9774}, {0.9660, 0.9440, 0.9758, 0.9621},
    {0.8624, 0.8587, 0.8281, 0.8522}, {0.9669, 0.9672, 0.9558, 0.9458}};

typedef struct opts {
    char datasets[64];
    int classes[10], n_classes;
    int threads, reuse, bank_max;
    char scores[512];
    char save[64];
    char out[256];
    char recipe[2][256];
    int n_over;
    char **over;
} opts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, const dae_error *e)
{
    fprintf(stderr, "anomaly: %s: %s\n", what, e->msg);
    exit(1);
}

/* The class-k images split as dae_train_main splits them (load_set + dae_dataset_split). */
static void trainer_split(const dae_recipe *r, const dae_dataset *all_train, int k,
                          dae_dataset **train, dae_dataset **val)
{
    dae_error e = {0};
    dae_dataset *cls = dae_dataset_filter_class(all_train, k, 1, &e);
    if (!cls)
        die("class filter", &e);
    if (r->data.limit > 0 && r->data.limit < cls->n) {
        dae_dataset *s = dae_dataset_subset(cls, r->data.limit, &e);
        dae_dataset_free(cls);
        if (!(cls = s))
            die("subset", &e);
    }
    if (r->data.val[0]) {
        fprintf(stderr, "anomaly: the recipe must hold out part of the class-k train images "
                        "(data.val \"\"), not use %s\n", r->data.val);
        exit(1);
    }
    if (dae_dataset_split(cls, r->data.val_fraction, r->data.val_count, r->seed, train, val,
                          &e))
        die("split", &e);
    if (r->data.val_limit > 0 && r->data.val_limit < (*val)->n) {
        dae_dataset *s = dae_dataset_subset(*val, r->data.val_limit, &e);
        dae_dataset_free(*val);
        if (!(*val = s))
            die("subset", &e);
    }
    dae_dataset_free(cls);
}

static double auroc_of(const double *score, const dae_dataset *test, int k)
{
    unsigned char *pos = malloc((size_t)test->n);
    for (int i = 0; i < test->n; i++)
        pos[i] = test->labels[i] != k;
    double auc = NAN;
    dae_error e = {0};
    if (dae_auroc(score, pos, (size_t)test->n, &auc, &e))
        die("auroc", &e);
    free(pos);
    return auc;
}

static void run_dataset(const opts *o, const char *ds, int di, char specs[][64], int n_specs,
                        int save_idx)
{
    const char *train_name = di == 0 ? "fashion-mnist:train" : "mnist:train";
    const char *test_name = di == 0 ? "fashion-mnist:test" : "mnist:test";
    const double(*ref)[4] = di == 0 ? ref_fmnist : ref_mnist;
    dae_error e = {0};
    double auc[10][MAX_SPECS + 1];
    int n_train[10], done[10] = {0};
    double t_train = 0, t_score = 0;

    /* the recipe once, for its data fields; per class again with the overrides */
    dae_recipe *r0 = dae_recipe_load(o->recipe[di], o->n_over, o->over, &e);
    if (!r0)
        die(o->recipe[di], &e);
    dae_dataset *all_train = dae_dataset_load(train_name, r0->data.dir, 1, NULL, &e);
    dae_dataset *test = all_train ? dae_dataset_load(test_name, r0->data.dir, 1, NULL, &e)
                                  : NULL;
    if (!test)
        die(ds, &e);
    printf("\n## %s: recipe %s, %d epochs, %d test images\n\n", ds, o->recipe[di],
           r0->epochs, test->n);
    fflush(stdout);

    for (int ci = 0; ci < o->n_classes; ci++) {
        int k = o->classes[ci];
        char path[512], cls[8], thr[8];
        snprintf(path, sizeof path, "%s/%s-%d.safetensors", o->out, ds, k);
        snprintf(cls, sizeof cls, "%d", k);
        snprintf(thr, sizeof thr, "%d", o->threads);
        int na = o->n_over + 6;
        char **args = calloc((size_t)na, sizeof *args);
        memcpy(args, o->over, (size_t)o->n_over * sizeof *args);
        args[o->n_over + 0] = "--data.class";
        args[o->n_over + 1] = cls;
        args[o->n_over + 2] = "--output";
        args[o->n_over + 3] = path;
        args[o->n_over + 4] = "--threads";
        args[o->n_over + 5] = thr;
        dae_recipe *r = dae_recipe_load(o->recipe[di], na, args, &e);
        free(args);
        if (!r)
            die(o->recipe[di], &e);
        struct stat sb;
        double t0 = now_s();
        if (!(o->reuse && stat(path, &sb) == 0)) {
            dae_train_options to = {.log = NULL};
            dae_train_status status;
            if (dae_train_main(r, NULL, &to, &status, &e))
                die(path, &e);
            /* the per-epoch checkpoint is only for resuming: 10 MB per class */
            char ck[1100];
            snprintf(ck, sizeof ck, "%s%s", r->checkpoint[0] ? r->checkpoint : path,
                     r->checkpoint[0] ? "" : ".ckpt");
            unlink(ck);
        }
        t_train += now_s() - t0;
        t0 = now_s();
        dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
        if (!mf)
            die(path, &e);
        dae_dataset *tr = NULL, *va = NULL;
        trainer_split(r, all_train, k, &tr, &va);
        n_train[k] = tr->n;
        double *score = malloc((size_t)test->n * sizeof *score);
        dae_score_fit_params fp = dae_score_fit_default_params();
        fp.bank_max = o->bank_max;
        fp.threshold_q = r->calib.threshold_q;
        for (int s = 0; s < n_specs; s++) {
            dae_score_spec want;
            dae_score_fit fit;
            if (dae_score_spec_parse(specs[s], &want, &e) ||
                dae_scorer_fit(mf->model, &want, tr, va, &fp, &fit, &e))
                die(specs[s], &e);
            dae_scorer *sc = dae_scorer_create(mf->model, &fit.spec, &e);
            if (!sc || dae_scorer_score_set(sc, test, 256, NULL, score, &e))
                die(specs[s], &e);
            auc[k][s] = auroc_of(score, test, k);
            dae_scorer_free(sc);
            if (s == save_idx &&
                dae_score_fit_save(path, mf->model, mf->config_json, &fit, NULL, &e))
                die(path, &e);
            dae_score_fit_free(&fit);
        }
        /* the saved file, as the daemon loads it */
        dae_modelfile *mf2 = dae_modelfile_load(path, NULL, &e);
        dae_scorer *sc2 = mf2 ? dae_modelfile_scorer(mf2, &e) : NULL;
        if (!sc2 || dae_scorer_score_set(sc2, test, 256, NULL, score, &e))
            die(path, &e);
        auc[k][MAX_SPECS] = auroc_of(score, test, k);
        if (fabs(auc[k][MAX_SPECS] - auc[k][save_idx]) > 1e-12) {
            fprintf(stderr, "anomaly: %s reloaded gives AUROC %.6f, fitted %.6f\n", path,
                    auc[k][MAX_SPECS], auc[k][save_idx]);
            exit(1);
        }
        fprintf(stderr, "%s class %d: %s threshold %.6g;", ds, k, mf2->calib.score,
                mf2->calib.threshold);
        for (int s = 0; s < n_specs; s++)
            fprintf(stderr, " %s %.4f", specs[s], auc[k][s]);
        fprintf(stderr, "\n");
        t_score += now_s() - t0;
        done[k] = 1;
        dae_scorer_free(sc2);
        dae_modelfile_free(mf2);
        free(score);
        dae_dataset_free(tr);
        dae_dataset_free(va);
        dae_modelfile_free(mf);
        dae_recipe_free(r);
    }

    printf("| class | n_train |");
    for (int s = 0; s < n_specs; s++)
        printf(" %s |", specs[s]);
    printf(" ae | dae | pca | knn |\n|---|---|");
    for (int s = 0; s < n_specs + 4; s++)
        printf("---|");
    printf("\n");
    double sum[MAX_SPECS + 4] = {0};
    int n = 0;
    for (int k = 0; k < 10; k++) {
        if (!done[k])
            continue;
        n++;
        printf("| %d | %d |", k, n_train[k]);
        for (int s = 0; s < n_specs; s++) {
            printf(" %.4f |", auc[k][s]);
            sum[s] += auc[k][s];
        }
        for (int j = 0; j < 4; j++) {
            printf(" %.4f |", ref[k][j]);
            sum[n_specs + j] += ref[k][j];
        }
        printf("\n");
    }
    printf("| **mean** | |");
    for (int s = 0; s < n_specs + 4; s++)
        printf(" **%.4f** |", n ? sum[s] / n : NAN);
    printf("\n\n%s: %d classes, training %.1f s, fitting and scoring %.1f s (%d BLAS "
           "thread%s); saved score: %s\n", ds, n, t_train, t_score, o->threads,
           o->threads == 1 ? "" : "s", specs[save_idx]);
    fflush(stdout);
    dae_dataset_free(all_train);
    dae_dataset_free(test);
    dae_recipe_free(r0);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: anomaly [--datasets fmnist,mnist] [--classes 0,1,..] [--threads N]\n"
            "               [--scores SPEC,SPEC..] [--save SPEC] [--bank-max N] [--reuse]\n"
            "               [--out DIR] [--recipe-fmnist F] [--recipe-mnist F]\n"
            "               [-- recipe overrides (--epochs 5 ...)]\n"
            "SPEC (score.h): mse, bmse<sigma>[@top<n>], knn<k>[b<sigma>], joined by '+'\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o = {.threads = 1, .n_classes = 10};
    snprintf(o.datasets, sizeof o.datasets, "fmnist,mnist");
    /* the chosen score first (it is saved into the model files), then the ablations */
    snprintf(o.scores, sizeof o.scores,
             "bmse1@top100+knn1b1,bmse1+knn1b1,bmse1@top100,bmse1,mse,knn1b1,knn1");
    snprintf(o.out, sizeof o.out, "build/anomaly");
    snprintf(o.recipe[0], sizeof o.recipe[0], "eval/recipes/anomaly-fmnist.json");
    snprintf(o.recipe[1], sizeof o.recipe[1], "eval/recipes/anomaly-mnist.json");
    for (int k = 0; k < 10; k++)
        o.classes[k] = k;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            o.over = argv + i + 1;
            o.n_over = argc - i - 1;
            break;
        } else if (strcmp(a, "--reuse") == 0) {
            o.reuse = 1;
            continue;
        } else if (!v) {
            usage();
        } else if (strcmp(a, "--datasets") == 0) {
            snprintf(o.datasets, sizeof o.datasets, "%s", v);
        } else if (strcmp(a, "--classes") == 0) {
            o.n_classes = 0;
            for (const char *p = v; *p && o.n_classes < 10;) {
                char *end;
                long c = strtol(p, &end, 10);
                if (end == p || c < 0 || c > 9)
                    usage();
                o.classes[o.n_classes++] = (int)c;
                p = *end == ',' ? end + 1 : end;
            }
        } else if (strcmp(a, "--threads") == 0) {
            o.threads = atoi(v);
        } else if (strcmp(a, "--bank-max") == 0) {
            o.bank_max = atoi(v);
        } else if (strcmp(a, "--scores") == 0) {
            snprintf(o.scores, sizeof o.scores, "%s", v);
        } else if (strcmp(a, "--save") == 0) {
            snprintf(o.save, sizeof o.save, "%s", v);
        } else if (strcmp(a, "--out") == 0) {
            snprintf(o.out, sizeof o.out, "%s", v);
        } else if (strcmp(a, "--recipe-fmnist") == 0) {
            snprintf(o.recipe[0], sizeof o.recipe[0], "%s", v);
        } else if (strcmp(a, "--recipe-mnist") == 0) {
            snprintf(o.recipe[1], sizeof o.recipe[1], "%s", v);
        } else {
            usage();
        }
        i++;
    }
    if (o.threads < 1)
        o.threads = 1;
    dae_blas_set_threads(o.threads);
    char specs[MAX_SPECS][64];
    int n_specs = 0, save_idx = 0;
    for (char *p = o.scores; *p && n_specs < MAX_SPECS;) {
        size_t n = strcspn(p, ",");
        snprintf(specs[n_specs], sizeof specs[0], "%.*s", (int)n, p);
        dae_score_spec s;
        dae_error e = {0};
        if (dae_score_spec_parse(specs[n_specs], &s, &e))
            die("--scores", &e);
        n_specs++;
        p += n + (p[n] == ',');
    }
    if (n_specs == 0)
        usage();
    if (o.save[0]) {
        save_idx = -1;
        for (int s = 0; s < n_specs; s++)
            if (strcmp(specs[s], o.save) == 0)
                save_idx = s;
        if (save_idx < 0) {
            fprintf(stderr, "anomaly: --save %s is not one of --scores\n", o.save);
            return 2;
        }
    }
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "anomaly: cannot create %s: %s\n", o.out, strerror(errno));
        return 1;
    }
    printf("# One-class AUROC (PROTOCOL.md 4): class k normal, all test images scored\n");
    printf("scores: %s (saved into the model files: %s)\n", o.scores, specs[save_idx]);
    static const char *const names[2] = {"fmnist", "mnist"};
    for (int di = 0; di < 2; di++) {
        char buf[64];
        int found = 0;
        snprintf(buf, sizeof buf, "%s", o.datasets);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
            found |= strcmp(t, names[di]) == 0;
        if (found)
            run_dataset(&o, names[di], di, specs, n_specs, save_idx);
    }
    return 0;
}

/* check_score.c — anomaly scores: hand-computed terms of a tiny model, blur / top pooling /
 * kNN against naive code, spec strings, fit determinism and statistics, score tensors
 * through a model file and back. */
#include "check_quiet.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daed/io/dataset.h"
#include "daed/train/quality.h"
#include "daed/io/modelfile.h"
#include "daed/core/score.h"
#include "daed/train/scorefit.h"

/* 16 -> 2 -> 16 MLP on 4x4 images; with zero weights its output is sigmoid(decoder bias). */
static const char *const TINY =
    "{\"name\":\"tiny-score\",\"tasks\":[\"score\"],\"input\":[1,4,4],"
    "\"encoder\":[{\"type\":\"flatten\"},{\"type\":\"linear\",\"in_features\":16,"
    "\"out_features\":2},{\"type\":\"relu\"}],"
    "\"decoder\":[{\"type\":\"linear\",\"in_features\":2,\"out_features\":16},"
    "{\"type\":\"sigmoid\"},{\"type\":\"unflatten\",\"unflattened_size\":[1,4,4]}]}";

/* A model that outputs 0.5 everywhere. */
static dae_model *half_model(void)
{
    dae_error e = {0};
    dae_model *m = dae_model_from_config(TINY, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    memset(m->params, 0, m->n_params * sizeof(float));
    return m;
}

static uint64_t rng_state = 88172645463325252ULL;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

static int reflect_naive(int i, int n)
{
    while (i < 0 || i >= n) { /* mirror about the edge pixels until inside */
        if (i < 0)
            i = -i;
        if (i >= n)
            i = 2 * (n - 1) - i;
        if (n == 1)
            return 0;
    }
    return i;
}

/* Direct 2-D Gaussian blur (outer product of the 1-D kernel), double accumulation. */
static void blur_naive(double *out, const float *in, int h, int w, double sigma)
{
    int r = (int)ceil(3 * sigma);
    double g[64], s = 0;
    for (int t = -r; t <= r; t++)
        s += g[t + r] = exp(-(double)t * t / (2 * sigma * sigma));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = 0;
            for (int i = -r; i <= r; i++)
                for (int j = -r; j <= r; j++)
                    a += g[i + r] / s * g[j + r] / s *
                         in[reflect_naive(y + i, h) * w + reflect_naive(x + j, w)];
            out[y * w + x] = a;
        }
}

START_TEST(test_blur_naive)
{
    static const struct { int h, w; float sigma; } cases[] = {
        {28, 28, 1.0f}, {7, 5, 0.7f}, {3, 4, 2.0f} /* kernel wider than the image */,
        {1, 6, 1.5f}, {9, 9, 0.3f}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int h = cases[c].h, w = cases[c].w;
        float *in = malloc(sizeof(float) * h * w * 2), *out = malloc(sizeof(float) * h * w * 2);
        float *tmp = malloc(sizeof(float) * h * w);
        double *ref = malloc(sizeof(double) * h * w);
        for (int i = 0; i < 2 * h * w; i++)
            in[i] = frand();
        dae_score_blur(out, in, 2, 1, h, w, cases[c].sigma, tmp); /* two images */
        for (int n = 0; n < 2; n++) {
            blur_naive(ref, in + n * h * w, h, w, cases[c].sigma);
            for (int i = 0; i < h * w; i++)
                ck_assert_msg(fabs(out[n * h * w + i] - ref[i]) < 1e-5,
                              "case %zu image %d value %d: %g vs %g", c, n, i,
                              (double)out[n * h * w + i], ref[i]);
        }
        /* sigma 0 copies; a constant image stays constant */
        dae_score_blur(out, in, 1, 1, h, w, 0, tmp);
        ck_assert(memcmp(out, in, sizeof(float) * h * w) == 0);
        for (int i = 0; i < h * w; i++)
            in[i] = 0.25f;
        dae_score_blur(out, in, 1, 1, h, w, cases[c].sigma, tmp);
        for (int i = 0; i < h * w; i++)
            ck_assert(fabs(out[i] - 0.25f) < 1e-6);
        free(in);
        free(out);
        free(tmp);
        free(ref);
    }
}
END_TEST

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

START_TEST(test_top_mean_naive)
{
    for (int it = 0; it < 300; it++) {
        size_t n = 1 + (size_t)(frand() * 200);
        float *v = malloc(n * sizeof *v), *s = malloc(n * sizeof *s);
        for (size_t i = 0; i < n; i++) /* many ties on some rounds */
            v[i] = it % 3 == 0 ? (float)(int)(frand() * 4) : frand();
        memcpy(s, v, n * sizeof *v);
        qsort(s, n, sizeof *s, cmp_desc);
        int top = it % 4 == 0 ? 0 : 1 + (int)(frand() * (float)n * 1.2f);
        size_t want = top == 0 || (size_t)top >= n ? n : (size_t)top;
        double ref = 0;
        for (size_t i = 0; i < want; i++)
            ref += s[i];
        ref /= (double)want;
        double got = dae_score_top_mean(v, n, top);
        ck_assert_msg(fabs(got - ref) < 1e-6, "n %zu top %d: %g vs %g", n, top, got, ref);
        free(v);
        free(s);
    }
    float z[4] = {0, 0, 0, 0};
    ck_assert(dae_score_top_mean(z, 4, 2) == 0);
}
END_TEST

START_TEST(test_knn_naive)
{
    const int nq = 7, nb = 23;
    const size_t d = 13;
    float *q = malloc(sizeof(float) * nq * d), *b = malloc(sizeof(float) * nb * d);
    float *dist = malloc(sizeof(float) * nq * nb), norms[23];
    for (size_t i = 0; i < nq * d; i++)
        q[i] = frand();
    for (size_t i = 0; i < nb * d; i++)
        b[i] = frand();
    memcpy(b + 5 * d, q + 2 * d, d * sizeof(float)); /* query 2 has an exact match */
    for (int j = 0; j < nb; j++) {
        double a = 0;
        for (size_t e = 0; e < d; e++)
            a += (double)b[j * d + e] * b[j * d + e];
        norms[j] = (float)a;
    }
    for (int k = 1; k <= 5; k += 2) {
        double got[7], got2[7];
        dae_score_knn(got, q, nq, b, norms, nb, d, k, dist);
        dae_score_knn(got2, q, nq, b, NULL, nb, d, k, dist);
        for (int i = 0; i < nq; i++) {
            double dd[23];
            for (int j = 0; j < nb; j++) {
                double a = 0;
                for (size_t e = 0; e < d; e++) {
                    double t = (double)q[i * d + e] - b[j * d + e];
                    a += t * t;
                }
                dd[j] = sqrt(a);
            }
            /* the k smallest by selection */
            double ref = 0;
            char used[23] = {0};
            for (int r = 0; r < k; r++) {
                int best = -1;
                for (int j = 0; j < nb; j++)
                    if (!used[j] && (best < 0 || dd[j] < dd[best]))
                        best = j;
                used[best] = 1;
                ref += dd[best];
            }
            ref /= k;
            ck_assert_msg(fabs(got[i] - ref) < 1e-3, "k %d query %d: %g vs %g", k, i, got[i],
                          ref);
            ck_assert(fabs(got2[i] - got[i]) < 1e-4);
        }
        if (k == 1)
            ck_assert(got[2] < 1e-2); /* exact match: distance ~0 (float cancellation) */
    }
    free(q);
    free(b);
    free(dist);
}
END_TEST

START_TEST(test_spec_strings)
{
    static const char *const ok[] = {"mse", "bmse1", "bmse0.7@top50", "knn1", "knn5b1.5",
                                     "bmse1+knn1b1", "mse@top3+bmse2+knn2+knn1b0.5"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        dae_score_spec s;
        dae_error e = {0};
        ck_assert_msg(dae_score_spec_parse(ok[i], &s, &e) == DAE_OK, "%s: %s", ok[i], e.msg);
        char name[64];
        dae_score_spec_name(&s, name, sizeof name);
        ck_assert_str_eq(name, ok[i]);
        ck_assert(dae_score_spec_check(&s, 0, &e) == DAE_OK);
    }
    dae_score_spec s;
    ck_assert(dae_score_spec_parse("bmse1+knn5b2", &s, NULL) == DAE_OK);
    ck_assert_int_eq(s.n_terms, 2);
    ck_assert_int_eq(s.term[0].kind, DAE_SCORE_RECON);
    ck_assert(s.term[0].blur == 1.0f && s.term[0].top == 0);
    ck_assert_int_eq(s.term[1].kind, DAE_SCORE_KNN);
    ck_assert(s.term[1].k == 5 && s.term[1].blur == 2.0f);
    ck_assert(s.term[1].std == 1 && s.term[1].weight == 1 && s.term[1].mean == 0);
    static const char *const bad[] = {"", "msee", "bmse", "bmse0", "bmse9", "bmse1e1",
                                      "bmseinf", "knn0", "knn65", "knn1.5", "knn2b",
                                      "knn1@top3", "mse@top0", "mse+", "+mse",
                                      "mse+mse+mse+mse+mse", "bmse-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dae_error e = {0};
        ck_assert_msg(dae_score_spec_parse(bad[i], &s, &e) == DAE_EINVAL, "\"%s\" accepted",
                      bad[i]);
        ck_assert(strstr(e.msg, "score spec") != NULL);
    }
    /* check refuses what a hand-built spec can get wrong */
    ck_assert(dae_score_spec_parse("knn2", &s, NULL) == DAE_OK);
    dae_error e = {0};
    ck_assert_int_eq(dae_score_spec_check(&s, 1, &e), DAE_EINVAL);
    ck_assert(strstr(e.msg, "bank of 0 images, needs at least 2") != NULL);
    s.term[0].std = 0;
    ck_assert_int_eq(dae_score_spec_check(&s, 0, &e), DAE_EINVAL);
}
END_TEST

/* Scores of the 0.5-output model, by hand. */
START_TEST(test_hand_scores)
{
    dae_model *m = half_model();
    dae_error e = {0};
    float bank[2 * 16];
    for (int i = 0; i < 16; i++) {
        bank[i] = 0;
        bank[16 + i] = 1;
    }
    dae_score_spec s;
    ck_assert(dae_score_spec_parse("mse+bmse1+mse@top2+knn2", &s, NULL) == DAE_OK);
    s.term[3].bank = bank;
    s.term[3].bank_n = 2;
    dae_scorer *sc = dae_scorer_create(m, &s, &e);
    ck_assert_msg(sc != NULL, "%s", e.msg);
    dae_workspace *mws = dae_workspace_create(m, 2, m->in_shape, 0, &e);
    dae_score_ws *w = dae_score_ws_create(sc, 2, &e);
    ck_assert(mws && w);
    float x[2 * 16];
    for (int i = 0; i < 16; i++) {
        x[i] = 0.25f;             /* image 0: constant 0.25 */
        x[16 + i] = 0.5f;         /* image 1: 0.5 but one pixel at 1 */
    }
    x[16 + 5] = 1.0f;
    double terms[8], scores[2];
    float maps[32];
    ck_assert_int_eq(dae_score_batch(sc, mws, w, x, 2, scores, terms, maps, &e), DAE_OK);
    /* image 0: error 0.25 everywhere; blur keeps a constant; distances 1 (to 0) and 3 */
    ck_assert(fabs(terms[0] - 0.0625) < 1e-7);
    ck_assert(fabs(terms[1] - 0.0625) < 1e-6);
    ck_assert(fabs(terms[2] - 0.0625) < 1e-7);
    ck_assert(fabs(terms[3] - 2.0) < 1e-5);
    /* image 1: one error of 0.5 -> squared 0.25: mean 0.25/16, top-2 mean 0.125 */
    ck_assert(fabs(terms[4] - 0.25 / 16) < 1e-7);
    ck_assert(terms[5] > 0 && terms[5] < terms[4]); /* blur spreads the peak */
    ck_assert(fabs(terms[6] - 0.125) < 1e-7);
    double d0 = sqrt(15 * 0.25 + 1), d1 = sqrt(15 * 0.25);
    ck_assert(fabs(terms[7] - (d0 + d1) / 2) < 1e-5);
    /* mean 0, std 1, weight 1: the score is the sum of the terms */
    ck_assert(fabs(scores[0] - (terms[0] + terms[1] + terms[2] + terms[3])) < 1e-9);
    /* the map is the first recon term's: the plain squared error */
    ck_assert(fabs(maps[3] - 0.0625f) < 1e-7 && fabs(maps[16 + 5] - 0.25f) < 1e-7 &&
              maps[16] == 0);
    /* normalisation and weights */
    s.term[0].mean = 0.01;
    s.term[0].std = 0.5;
    s.term[0].weight = 2;
    s.term[3].weight = 0;
    ck_assert(fabs(dae_score_combine(&s, terms) -
                   (2 * (terms[0] - 0.01) / 0.5 + terms[1] + terms[2])) < 1e-12);
    /* a batch larger than the workspace is refused */
    ck_assert_int_eq(dae_score_batch(sc, mws, w, x, 3, scores, NULL, NULL, &e), DAE_ESHAPE);
    dae_score_ws_free(w);
    dae_workspace_free(mws);
    dae_scorer_free(sc);

    /* a model whose output shape differs from its input cannot be scored */
    dae_score_spec mse = dae_score_spec_mse();
    dae_model *sr = dae_model_from_config(
        "{\"input\":[1,2,2],\"encoder\":[{\"type\":\"upsample\"}],\"decoder\":[]}", &e);
    ck_assert_msg(sr != NULL, "%s", e.msg);
    ck_assert(dae_scorer_create(sr, &mse, &e) == NULL);
    ck_assert_int_eq(e.code, DAE_ESHAPE);
    dae_model_free(sr);
    dae_model_free(m);
}
END_TEST

static dae_dataset *random_set(int n, unsigned seed)
{
    dae_dataset *ds = dae_dataset_create(n, 1, 4, 4, 0, NULL);
    ck_assert_ptr_nonnull(ds);
    rng_state = 0x9E3779B97F4A7C15ULL * (seed + 1);
    for (int i = 0; i < n * 16; i++)
        ds->x[i] = frand();
    return ds;
}

START_TEST(test_fit)
{
    dae_error e = {0};
    dae_model *m = dae_model_from_config(TINY, &e);
    dae_model_init_params(m, 7);
    dae_dataset *tr = random_set(40, 1), *va = random_set(30, 2);
    dae_score_spec want;
    ck_assert(dae_score_spec_parse("bmse1+knn3b1", &want, NULL) == DAE_OK);
    want.term[1].weight = 0.5;
    dae_score_fit f1, f2;
    ck_assert_msg(dae_scorer_fit(m, &want, tr, va, NULL, &f1, &e) == DAE_OK, "%s", e.msg);
    ck_assert_msg(dae_scorer_fit(m, &want, tr, va, NULL, &f2, &e) == DAE_OK, "%s", e.msg);
    /* deterministic */
    ck_assert_int_eq(f1.n_tensors, 1);
    ck_assert(memcmp(f1.tensors[0].data, f2.tensors[0].data, 40 * 16 * sizeof(float)) == 0);
    for (int t = 0; t < 2; t++)
        ck_assert(f1.spec.term[t].mean == f2.spec.term[t].mean &&
                  f1.spec.term[t].std == f2.spec.term[t].std);
    ck_assert(memcmp(f1.calib.value, f2.calib.value, sizeof f1.calib.value) == 0);
    ck_assert_str_eq(f1.calib.score, "bmse1+knn3b1");
    ck_assert_str_eq(f1.tensors[0].name, "score.knn1");
    ck_assert(f1.spec.term[1].weight == 0.5 && f1.spec.term[0].weight == 1);
    /* the bank holds the blurred training images */
    float tmp[16], b0[16];
    dae_score_blur(b0, tr->x + 16 * 7, 1, 1, 4, 4, 1.0f, tmp);
    ck_assert(memcmp(b0, f1.tensors[0].data + 16 * 7, sizeof b0) == 0);
    /* statistics are those of the validation terms; calibration = quantiles of the score */
    dae_scorer *sc = dae_scorer_create(m, &f1.spec, &e);
    double terms[60], scores[30];
    ck_assert(dae_scorer_score_set(sc, va, 7, terms, scores, &e) == DAE_OK);
    for (int t = 0; t < 2; t++) {
        double s = 0, q = 0;
        for (int i = 0; i < 30; i++)
            s += terms[2 * i + t];
        for (int i = 0; i < 30; i++)
            q += (terms[2 * i + t] - s / 30) * (terms[2 * i + t] - s / 30);
        /* the fit and this check run the model at different batch sizes, and sgemm kernels
         * may sum in a different order per shape (and per CPU: valgrind forces AVX2 ones):
         * float32 rounding, so a relative 1e-5 */
        ck_assert(fabs(f1.spec.term[t].mean - s / 30) < 1e-5 * (1 + fabs(s / 30)));
        ck_assert(fabs(f1.spec.term[t].std - sqrt(q / 30)) < 1e-5 * (1 + sqrt(q / 30)));
    }
    ck_assert(fabs(dae_quantile(scores, 30, 0.99) - f1.calib.threshold) <
              1e-5 * (1 + fabs(f1.calib.threshold)));
    ck_assert(fabs(dae_quantile(scores, 30, 0.5) - f1.calib.value[4]) <
              1e-5 * (1 + fabs(f1.calib.value[4])));
    ck_assert(f1.calib.n == 10 && f1.calib.level[4] == 0.5 && f1.calib.level[0] == 0.01);
    ck_assert(dae_calibration_percentile(&f1.calib, f1.calib.value[2]) == 10);
    /* batch size does not change scores */
    double s2[30];
    ck_assert(dae_scorer_score_set(sc, va, 30, NULL, s2, &e) == DAE_OK);
    for (int i = 0; i < 30; i++)
        ck_assert(fabs(s2[i] - scores[i]) < 1e-5 * (1 + fabs(scores[i])));
    dae_scorer_free(sc);

    /* one term: raw, mean 0 std 1; bank_max subsamples evenly */
    dae_score_spec mse = dae_score_spec_mse();
    dae_score_fit f3;
    ck_assert(dae_scorer_fit(m, &mse, tr, va, NULL, &f3, &e) == DAE_OK);
    ck_assert(f3.spec.term[0].mean == 0 && f3.spec.term[0].std == 1 && f3.n_tensors == 0);
    ck_assert_str_eq(f3.calib.score, "mse");
    dae_score_fit_params p = dae_score_fit_default_params();
    p.bank_max = 10;
    dae_score_spec knn;
    ck_assert(dae_score_spec_parse("knn1", &knn, NULL) == DAE_OK);
    dae_score_fit f4;
    ck_assert(dae_scorer_fit(m, &knn, tr, va, &p, &f4, &e) == DAE_OK);
    ck_assert(f4.tensors[0].shape[0] == 10 && f4.spec.term[0].bank_n == 10);
    ck_assert(memcmp(f4.tensors[0].data + 16 * 3, tr->x + 16 * 12, 16 * sizeof(float)) == 0);
    /* refusals */
    dae_dataset *one = random_set(1, 3);
    dae_score_fit f5;
    ck_assert_int_eq(dae_scorer_fit(m, &want, tr, one, NULL, &f5, &e), DAE_EINVAL);
    ck_assert(f5.n_tensors == 0);
    dae_dataset *wrong = dae_dataset_create(5, 1, 5, 5, 0, NULL);
    ck_assert_int_eq(dae_scorer_fit(m, &want, tr, wrong, NULL, &f5, &e), DAE_ESHAPE);
    ck_assert(strstr(e.msg, "[1,5,5], the model takes [1,4,4]") != NULL);
    dae_dataset_free(one);
    dae_dataset_free(wrong);
    dae_score_fit_free(&f1);
    dae_score_fit_free(&f2);
    dae_score_fit_free(&f3);
    dae_score_fit_free(&f4);
    dae_score_fit_free(NULL);
    dae_dataset_free(tr);
    dae_dataset_free(va);
    dae_model_free(m);
}
END_TEST

START_TEST(test_save_load)
{
    dae_error e = {0};
    char dir[] = "/tmp/check_score_XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    dae_model *m = dae_model_from_config(TINY, &e);
    dae_model_init_params(m, 3);
    dae_dataset *tr = random_set(20, 4), *va = random_set(12, 5);
    dae_score_spec want;
    ck_assert(dae_score_spec_parse("bmse0.7@top5+knn2b1", &want, NULL) == DAE_OK);
    dae_score_fit f;
    ck_assert_msg(dae_scorer_fit(m, &want, tr, va, NULL, &f, &e) == DAE_OK, "%s", e.msg);
    ck_assert_msg(dae_score_fit_save(path, m, TINY, &f, NULL, &e) == DAE_OK, "%s", e.msg);
    dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_str_eq(mf->calib.score, "bmse0.7@top5+knn2b1");
    ck_assert_int_eq(mf->n_score_tensors, 1);
    ck_assert_str_eq(mf->score_tensors[0].name, "score.knn1");
    ck_assert(mf->score_tensors[0].shape[0] == 20 && mf->score_tensors[0].shape[1] == 16);
    ck_assert(memcmp(mf->score_tensors[0].data, f.tensors[0].data, 20 * 16 * 4) == 0);
    ck_assert_int_eq(mf->score.n_terms, 2);
    for (int t = 0; t < 2; t++) {
        ck_assert(mf->score.term[t].mean == f.spec.term[t].mean);
        ck_assert(mf->score.term[t].std == f.spec.term[t].std);
        ck_assert(mf->score.term[t].weight == f.spec.term[t].weight);
        ck_assert(mf->score.term[t].blur == f.spec.term[t].blur);
    }
    ck_assert(mf->score.term[1].bank == mf->score_tensors[0].data);
    ck_assert(mf->calib.threshold == f.calib.threshold && mf->calib.n == 10);
    for (int i = 0; i < 10; i++)
        ck_assert_msg(mf->calib.value[i] == f.calib.value[i] &&
                      fabs(mf->calib.level[i] - f.calib.level[i]) < 1e-12,
                      "quantile %d: level %.17g value %.17g, saved %.17g %.17g", i,
                      mf->calib.level[i], mf->calib.value[i], f.calib.level[i],
                      f.calib.value[i]);
    /* the reloaded scorer gives the fitted scorer's scores */
    dae_scorer *a = dae_scorer_create(m, &f.spec, &e), *b = dae_modelfile_scorer(mf, &e);
    ck_assert(a && b);
    double sa[12], sb[12];
    ck_assert(dae_scorer_score_set(a, va, 5, NULL, sa, &e) == DAE_OK);
    ck_assert(dae_scorer_score_set(b, va, 5, NULL, sb, &e) == DAE_OK);
    for (int i = 0; i < 12; i++)
        ck_assert(sa[i] == sb[i]);
    dae_scorer_free(a);
    dae_scorer_free(b);

    /* the saver refuses tensors the config does not declare, and missing ones */
    ck_assert_int_eq(dae_modelfile_save_scored(path, m, TINY, NULL, f.tensors, 1, &e),
                     DAE_EINVAL);
    ck_assert(strstr(e.msg, "1 score tensors given, calibration \"mse\" declares 0") != NULL);
    char *cfg = dae_config_set_score(TINY, &f.calib, &f.spec, f.tensors, 1, &e);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(dae_modelfile_save_scored(path, m, cfg, NULL, NULL, 0, &e), DAE_EINVAL);
    ck_assert(strstr(e.msg, "tensor score.knn1: declared by calibration.terms[1] but not "
                            "given") != NULL);
    dae_score_tensor bad = f.tensors[0];
    bad.shape[1] = 15;
    bad.n = 20 * 15;
    ck_assert_int_eq(dae_modelfile_save_scored(path, m, cfg, NULL, &bad, 1, &e), DAE_ESHAPE);
    ck_assert(strstr(e.msg, "tensor score.knn1: shape [20,15], expected [N,16]") != NULL);
    free(cfg);
    /* a plain "mse" file keeps its short calibration (no terms) */
    dae_score_spec mse = dae_score_spec_mse();
    dae_score_fit fm;
    ck_assert(dae_scorer_fit(m, &mse, tr, va, NULL, &fm, &e) == DAE_OK);
    cfg = dae_config_set_score(TINY, &fm.calib, &fm.spec, NULL, 0, &e);
    ck_assert(cfg && strstr(cfg, "\"terms\"") == NULL && strstr(cfg, "\"p99.9\"") != NULL);
    free(cfg);

    dae_modelfile_free(mf);
    dae_score_fit_free(&f);
    dae_dataset_free(tr);
    dae_dataset_free(va);
    dae_model_free(m);
    unlink(path);
    rmdir(dir);
}
END_TEST

Suite *suite_score(void)
{
    Suite *s = suite_create("score");
    TCase *tc = tcase_create("score");
    tcase_add_test(tc, test_blur_naive);
    tcase_add_test(tc, test_top_mean_naive);
    tcase_add_test(tc, test_knn_naive);
    tcase_add_test(tc, test_spec_strings);
    tcase_add_test(tc, test_hand_scores);
    tcase_add_test(tc, test_fit);
    tcase_add_test(tc, test_save_load);
    suite_add_tcase(s, tc);
    return s;
}

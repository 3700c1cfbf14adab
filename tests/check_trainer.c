/* check_trainer.c — the training loop end to end on tiny synthetic data: loss goes down,
 * determinism, resume equivalence, NaN trap, collapse restarts, calibration, model file. */
#include "check_quiet.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daed/core/layers.h"
#include "daed/io/dataset.h"
#include "daed/train/loss.h"
#include "daed/io/modelfile.h"
#include "daed/train/recipe.h"
#include "daed/train/trainer.h"

/* side x side images: smooth stripes with random orientation and phase, in [0.1, 0.9]. */
static dae_dataset *synth_side(int n, uint64_t seed, int side)
{
    dae_dataset *ds = dae_dataset_create(n, 1, side, side, 1, NULL);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double a = (double)(s >> 40) / 16777216.0 * 3.14159, ph = (double)(s & 0xffff) / 1e4;
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
                ds->x[(i * side + y) * side + x] =
                    (float)(0.5 + 0.4 * sin(0.9 * (cos(a) * x + sin(a) * y) + ph));
        ds->labels[i] = i % 2;
    }
    return ds;
}

static dae_dataset *synth(int n, uint64_t seed)
{
    return synth_side(n, seed, 8);
}

static char tmpdir[64];
static dae_dataset *train_ds, *val_ds;

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_trainer.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    train_ds = synth(200, 1);
    val_ds = synth(40, 2);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    dae_dataset_free(train_ds);
    dae_dataset_free(val_ds);
}

#define MLP8_ENC                                                                          \
    "[{\"type\":\"flatten\"},{\"type\":\"linear\",\"in_features\":64,\"out_features\":32}," \
    "{\"type\":\"relu\"},{\"type\":\"linear\",\"in_features\":32,\"out_features\":16},"     \
    "{\"type\":\"relu\"}]"
#define MLP8_DEC                                                                          \
    "[{\"type\":\"linear\",\"in_features\":16,\"out_features\":64},{\"type\":\"sigmoid\"}," \
    "{\"type\":\"unflatten\",\"unflattened_size\":[1,8,8]}]"

/* A recipe for the 8x8 data; extra is spliced into the JSON object. */
static dae_recipe *recipe(const char *extra, int n_args, char *const *args)
{
    char json[4096];
    const char *has = extra ? extra : "";
    snprintf(json, sizeof json,
             "{\"output\":\"%s/m.safetensors\",\"epochs\":2,\"batch_size\":20,\"threads\":1,"
             "\"seed\":5,\"data\":{\"val_fraction\":0}%s%s%s%s}",
             tmpdir,
             strstr(has, "\"model\"") ? "" : ",\"model\":{\"input\":[1,8,8],\"encoder\":" MLP8_ENC
                                            ",\"decoder\":" MLP8_DEC "}",
             strstr(has, "\"optimizer\"") ? "" : ",\"optimizer\":{\"lr\":0.01}",
             strstr(has, "\"corruption\"") ? ""
                                          : ",\"corruption\":[{\"type\":\"gaussian\","
                                            "\"sigma\":[0.05,0.2]}]",
             has);
    dae_error e = {0};
    /* data.val_fraction 0 alone is refused (no validation set); tests pass the sets */
    char *a[16] = {"--data.val", "given"};
    for (int i = 0; i < n_args; i++)
        a[2 + i] = args[i];
    dae_recipe *r = dae_recipe_parse(json, strlen(json), "test", 2 + n_args, a, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    return r;
}

static dae_trainer *trainer(const dae_recipe *r)
{
    dae_error e = {0};
    dae_trainer *t = dae_trainer_create(r, train_ds, val_ds, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    return t;
}

static void run_ok(dae_trainer *t, const dae_train_options *o)
{
    dae_error e = {0};
    int rc = dae_trainer_run(t, o, &e);
    ck_assert_msg(rc == DAE_OK, "%s", e.msg);
}

static double mean_score(dae_trainer *t)
{
    dae_calibration c;
    double sc[40], s = 0;
    dae_error e = {0};
    ck_assert_msg(dae_trainer_calibrate(t, &c, sc, &e) == DAE_OK, "%s", e.msg);
    for (int i = 0; i < 40; i++)
        s += sc[i];
    return s / 40;
}

START_TEST(test_loss_decreases)
{
    char *args[] = {"--epochs", "4"};
    dae_recipe *r = recipe(NULL, 2, args);
    dae_trainer *t = trainer(r);
    double before = mean_score(t);
    char logbuf[4096] = "";
    FILE *lf = fmemopen(logbuf, sizeof logbuf - 1, "w");
    dae_train_options o = {.log = lf};
    run_ok(t, &o);
    fclose(lf);
    const dae_train_stats *st = dae_trainer_stats(t);
    ck_assert_int_eq(st->epochs_done, 4);
    ck_assert_int_eq(st->steps, 40);
    ck_assert_int_eq(st->status, DAE_TRAIN_DONE);
    double after = mean_score(t);
    ck_assert_msg(after < 0.5 * before, "reconstruction MSE %g -> %g", before, after);
    ck_assert(isfinite(st->val_psnr) && st->val_psnr > 10.0 * log10(1.0 / before));
    /* per-epoch train losses, one plain line each, decreasing from the first to the last */
    double l[4];
    const char *p = logbuf;
    for (int i = 0; i < 4; i++) {
        p = strstr(p, "train_loss ");
        ck_assert_msg(p != NULL, "log: %s", logbuf);
        l[i] = atof(p + 11);
        p++;
    }
    ck_assert_msg(l[3] < l[0], "train loss %g -> %g", l[0], l[3]);
    ck_assert(strstr(logbuf, "val_psnr") != NULL);
    ck_assert_int_eq(access(r->checkpoint, F_OK), 0); /* one checkpoint per epoch */
    dae_trainer_free(t);
    dae_recipe_free(r);
}
END_TEST

START_TEST(test_deterministic)
{
    dae_recipe *r = recipe(NULL, 0, NULL);
    dae_trainer *a = trainer(r), *b = trainer(r);
    run_ok(a, NULL);
    run_ok(b, NULL);
    const dae_model *ma = dae_trainer_model(a), *mb = dae_trainer_model(b);
    ck_assert(memcmp(ma->params, mb->params, ma->n_params * sizeof(float)) == 0);
    char *args[] = {"--seed", "6"};
    dae_recipe *r2 = recipe(NULL, 2, args);
    dae_trainer *c = trainer(r2);
    run_ok(c, NULL);
    ck_assert(memcmp(ma->params, dae_trainer_model(c)->params,
                     ma->n_params * sizeof(float)) != 0);
    dae_trainer_free(a);
    dae_trainer_free(b);
    dae_trainer_free(c);
    dae_recipe_free(r);
    dae_recipe_free(r2);
}
END_TEST

/* Interrupt after `stop` steps, resume from the checkpoint in a new trainer, finish: the
 * parameters equal those of an uninterrupted run. */
static void resume_case(long long stop, const char *extra)
{
    dae_recipe *r = recipe(extra, 0, NULL);
    dae_trainer *full = trainer(r);
    run_ok(full, NULL);

    dae_trainer *part = trainer(r);
    dae_train_options o = {.stop_at_step = stop};
    run_ok(part, &o);
    ck_assert_int_eq(dae_trainer_stats(part)->status, DAE_TRAIN_INTERRUPTED);
    ck_assert_int_eq(dae_trainer_stats(part)->steps, stop);
    dae_trainer_free(part);

    dae_trainer *res = trainer(r);
    dae_error e = {0};
    ck_assert_msg(dae_trainer_resume(res, r->checkpoint, &e) == DAE_OK, "%s", e.msg);
    run_ok(res, NULL);
    const dae_model *mf = dae_trainer_model(full), *mr = dae_trainer_model(res);
    ck_assert_int_eq(dae_trainer_stats(res)->steps, dae_trainer_stats(full)->steps);
    ck_assert(memcmp(mf->params, mr->params, mf->n_params * sizeof(float)) == 0);
    ck_assert_double_eq(dae_trainer_stats(res)->train_loss,
                        dae_trainer_stats(full)->train_loss);
    ck_assert_double_eq(dae_trainer_stats(res)->val_psnr, dae_trainer_stats(full)->val_psnr);
    dae_trainer_free(full);
    dae_trainer_free(res);
    dae_recipe_free(r);
}

START_TEST(test_resume_mid_epoch)
{
    resume_case(13, NULL);
}
END_TEST

START_TEST(test_resume_epoch_end_sgd_cosine)
{
    resume_case(10, ",\"optimizer\":{\"kind\":\"sgd\",\"lr\":0.05},"
                    "\"schedule\":{\"kind\":\"cosine\",\"warmup_steps\":3},"
                    "\"early_stopping\":{\"patience\":5}");
}
END_TEST

START_TEST(test_stop_flag)
{
    /* what SIGINT does: the flag is seen at the end of the current step */
    dae_recipe *r = recipe(NULL, 0, NULL);
    dae_trainer *t = trainer(r);
    volatile sig_atomic_t flag = 1;
    dae_train_options o = {.stop = &flag};
    ck_assert_int_ne(access(r->checkpoint, F_OK), 0);
    run_ok(t, &o);
    ck_assert_int_eq(dae_trainer_stats(t)->status, DAE_TRAIN_INTERRUPTED);
    ck_assert_int_eq(dae_trainer_stats(t)->steps, 1);
    ck_assert_int_eq(access(r->checkpoint, F_OK), 0);
    dae_trainer_free(t);
    dae_recipe_free(r);
}
END_TEST

/* A small convolutional denoiser of 16x16 images whose middle convolutions (8 -> 16 -> 8
 * channels) run on AMX in bf16 (with --threads 2: each thread its tiles). */
#define CONV16                                                                              \
    ",\"optimizer\":{\"lr\":0.003},\"model\":{\"input\":[1,16,16],"                        \
    "\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":1,\"out_channels\":8,"               \
    "\"kernel_size\":3,\"padding\":1},{\"type\":\"relu\"},{\"type\":\"conv2d\","             \
    "\"in_channels\":8,\"out_channels\":16,\"kernel_size\":3,\"padding\":1},{\"type\":"       \
    "\"relu\"},{\"type\":\"conv2d\",\"in_channels\":16,\"out_channels\":8,"                  \
    "\"kernel_size\":3,\"padding\":1},{\"type\":\"relu\"}],\"decoder\":[{\"type\":"          \
    "\"conv2d\",\"in_channels\":8,\"out_channels\":1,\"kernel_size\":3,\"padding\":1},"       \
    "{\"type\":\"sigmoid\"}]}"

static dae_trainer *trainer16(const dae_recipe *r, const dae_dataset *tr, const dae_dataset *va)
{
    dae_error e = {0};
    dae_trainer *t = dae_trainer_create(r, tr, va, &e);
    ck_assert_msg(t != NULL, "%s", e.msg);
    return t;
}

/* Mixed precision (recipe precision bf16): the same short run in fp32 and bf16 from the
 * same seed reduces the reconstruction error alike (final validation losses within 5 %
 * of each other); with AMX the bf16 run took another path (other parameters), without
 * it the bf16 run is the fp32 run (the fallback: its bits). */
START_TEST(test_bf16_trains_like_fp32)
{
    dae_dataset *tr = synth_side(200, 1, 16), *va = synth_side(40, 2, 16);
    char *a32[] = {"--epochs", "4", "--precision", "fp32", "--threads", "2"};
    char *a16[] = {"--epochs", "4", "--precision", "bf16", "--threads", "2"};
    dae_recipe *r32 = recipe(CONV16, 6, a32), *r16 = recipe(CONV16, 6, a16);
    ck_assert_int_eq(r16->precision, DAE_PREC_BF16);
    dae_trainer *t32 = trainer16(r32, tr, va), *t16 = trainer16(r16, tr, va);
    double before = mean_score(t32);
    run_ok(t32, NULL);
    run_ok(t16, NULL);
    double l32 = dae_trainer_stats(t32)->val_loss, l16 = dae_trainer_stats(t16)->val_loss;
    ck_assert_msg(mean_score(t32) < 0.5 * before && mean_score(t16) < 0.5 * before,
                  "reconstruction MSE %g -> fp32 %g, bf16 %g", before, mean_score(t32),
                  mean_score(t16));
    ck_assert_msg(fabs(l16 - l32) < 0.05 * l32, "validation loss fp32 %g, bf16 %g", l32, l16);
    const dae_model *m32 = dae_trainer_model(t32), *m16 = dae_trainer_model(t16);
    int same = memcmp(m32->params, m16->params, m32->n_params * sizeof(float)) == 0;
    ck_assert_msg(dae_amx_supported() ? !same : same, "AMX %d, same parameters %d",
                  dae_amx_supported(), same);
    dae_trainer_free(t32);
    dae_trainer_free(t16);
    dae_recipe_free(r32);
    dae_recipe_free(r16);
    dae_dataset_free(tr);
    dae_dataset_free(va);
}
END_TEST

/* A checkpoint written by an fp32 run resumes in bf16 (precision is not part of what a
 * resume checks) and trains on to the fp32 run's validation loss (within 5 %). */
START_TEST(test_resume_fp32_checkpoint_in_bf16)
{
    dae_dataset *tr = synth_side(200, 1, 16), *va = synth_side(40, 2, 16);
    char *a32[] = {"--epochs", "3", "--threads", "2"};
    char *a16[] = {"--epochs", "3", "--threads", "2", "--precision", "bf16"};
    dae_recipe *r32 = recipe(CONV16, 4, a32), *r16 = recipe(CONV16, 6, a16);
    dae_trainer *full = trainer16(r32, tr, va), *part = trainer16(r32, tr, va);
    run_ok(full, NULL);
    dae_train_options o = {.stop_at_step = 13};
    run_ok(part, &o);
    ck_assert_int_eq(dae_trainer_stats(part)->status, DAE_TRAIN_INTERRUPTED);
    dae_trainer_free(part);
    dae_trainer *res = trainer16(r16, tr, va);
    dae_error e = {0};
    ck_assert_msg(dae_trainer_resume(res, r32->checkpoint, &e) == DAE_OK, "%s", e.msg);
    ck_assert_int_eq(dae_trainer_stats(res)->steps, 13);
    run_ok(res, NULL);
    ck_assert_int_eq(dae_trainer_stats(res)->steps, dae_trainer_stats(full)->steps);
    double lf = dae_trainer_stats(full)->val_loss, lr = dae_trainer_stats(res)->val_loss;
    ck_assert_msg(fabs(lr - lf) < 0.05 * lf, "validation loss fp32 %g, resumed in bf16 %g", lf,
                  lr);
    dae_trainer_free(full);
    dae_trainer_free(res);
    dae_recipe_free(r32);
    dae_recipe_free(r16);
    dae_dataset_free(tr);
    dae_dataset_free(va);
}
END_TEST

START_TEST(test_resume_refuses_other_setup)
{
    dae_recipe *r = recipe(NULL, 0, NULL);
    dae_trainer *t = trainer(r);
    dae_train_options o = {.stop_at_step = 3};
    run_ok(t, &o);
    dae_trainer_free(t);
    char *args[] = {"--batch_size", "25"};
    dae_recipe *r2 = recipe(NULL, 2, args);
    t = trainer(r2);
    dae_error e = {0};
    ck_assert_int_ne(dae_trainer_resume(t, r->checkpoint, &e), DAE_OK);
    ck_assert_msg(strstr(e.msg, "batch 20") != NULL, "%s", e.msg);
    ck_assert_int_ne(dae_trainer_resume(t, "/nonexistent.ckpt", &e), DAE_OK);
    dae_trainer_free(t);
    dae_recipe_free(r);
    dae_recipe_free(r2);
}
END_TEST

START_TEST(test_early_stopping)
{
    /* min_delta 100 dB: only epoch 1 counts as a gain, so epoch 2 stops the run and the
     * weights of epoch 1 are kept */
    char *args[] = {"--epochs", "4", "--early_stopping.patience", "1",
                    "--early_stopping.min_delta", "100"};
    dae_recipe *r = recipe(NULL, 6, args);
    dae_trainer *t = trainer(r);
    run_ok(t, NULL);
    const dae_train_stats *st = dae_trainer_stats(t);
    ck_assert_int_eq(st->status, DAE_TRAIN_EARLY_STOP);
    ck_assert_int_eq(st->epochs_done, 2);
    ck_assert_double_eq(st->val_psnr, st->best_val_psnr);

    char *args1[] = {"--epochs", "1"};
    dae_recipe *r1 = recipe(NULL, 2, args1);
    dae_trainer *one = trainer(r1);
    run_ok(one, NULL);
    const dae_model *a = dae_trainer_model(t), *b = dae_trainer_model(one);
    ck_assert(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    ck_assert_double_eq(dae_trainer_stats(one)->val_psnr, st->val_psnr);
    dae_trainer_free(t);
    dae_trainer_free(one);
    dae_recipe_free(r);
    dae_recipe_free(r1);
}
END_TEST

START_TEST(test_nan_stops)
{
    /* a linear output with an absurd SGD step diverges to inf/NaN within a few steps */
    const char *extra =
        ",\"model\":{\"input\":[1,8,8],\"encoder\":" MLP8_ENC ",\"decoder\":[{\"type\":"
        "\"linear\",\"in_features\":16,\"out_features\":64},{\"type\":\"unflatten\","
        "\"unflattened_size\":[1,8,8]}]},\"optimizer\":{\"kind\":\"sgd\",\"lr\":100}";
    dae_recipe *r = recipe(extra, 0, NULL);
    dae_trainer *t = trainer(r);
    dae_error e = {0};
    ck_assert_int_eq(dae_trainer_run(t, NULL, &e), DAE_EINVAL);
    ck_assert_msg(strstr(e.msg, "NaN") || strstr(e.msg, "infinite"), "%s", e.msg);
    ck_assert_msg(strstr(e.msg, "optimizer.lr") != NULL, "%s", e.msg);
    dae_trainer_free(t);
    dae_recipe_free(r);
}
END_TEST

START_TEST(test_collapse_restarts)
{
    /* factor 0: every check "sees" a collapse, so every attempt but the last restarts */
    char *args[] = {"--collapse.check",   "on", "--collapse.factor",          "0",
                    "--collapse.max_attempts", "3",  "--collapse.check_step",   "4",
                    "--collapse.restart_warmup", "2"};
    dae_recipe *r = recipe(NULL, 10, args);
    dae_trainer *t = trainer(r);
    char logbuf[4096] = "";
    FILE *lf = fmemopen(logbuf, sizeof logbuf - 1, "w");
    dae_train_options o = {.log = lf};
    run_ok(t, &o);
    fclose(lf);
    const dae_train_stats *st = dae_trainer_stats(t);
    ck_assert_int_eq(st->attempt, 2);
    ck_assert_int_eq(st->epochs_done, 2);
    ck_assert_int_eq(st->steps, 20);
    ck_assert_msg(strstr(logbuf, "collapse") && strstr(logbuf, "seed 7924"), "%s", logbuf);
    /* a restarted attempt is checked after its warm-up: 4 steps, then 2 + 4 */
    ck_assert_msg(strstr(logbuf, "after 4 steps") && strstr(logbuf, "after 6 steps"), "%s",
                  logbuf);
    ck_assert(st->target_sq > 0.2 && st->target_sq < 0.5);
    dae_trainer_free(t);
    dae_recipe_free(r);

    /* auto: the MLP is never checked */
    char *args2[] = {"--collapse.factor", "0", "--collapse.check_step", "4"};
    r = recipe(NULL, 4, args2);
    t = trainer(r);
    run_ok(t, NULL);
    ck_assert_int_eq(dae_trainer_stats(t)->attempt, 0);
    dae_trainer_free(t);
    dae_recipe_free(r);
}
END_TEST

START_TEST(test_calibration_and_model_file)
{
    char *args[] = {"--tasks", "denoise,score", "--name", "tiny"};
    dae_recipe *r = recipe(NULL, 4, args);
    dae_trainer *t = trainer(r);
    run_ok(t, NULL);
    dae_calibration c;
    dae_error e = {0};
    ck_assert_msg(dae_trainer_calibrate(t, &c, NULL, &e) == DAE_OK, "%s", e.msg);
    ck_assert_int_eq(c.n, 5);
    for (int i = 1; i < c.n; i++)
        ck_assert(c.value[i] >= c.value[i - 1]);
    ck_assert_double_eq(c.level[3], 0.99);
    ck_assert_double_eq(c.threshold, c.value[3]);
    ck_assert_msg(dae_trainer_save_model(t, r->output, &c, NULL, &e) == DAE_OK, "%s", e.msg);

    dae_modelfile *mf = dae_modelfile_load(r->output, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_str_eq(mf->name, "tiny");
    ck_assert_uint_eq(mf->tasks, DAE_TASK_DENOISE | DAE_TASK_SCORE);
    ck_assert_int_eq(mf->calib.n, 5);
    ck_assert_double_eq_tol(mf->calib.threshold, c.threshold, 1e-12);
    ck_assert(memcmp(mf->model->params, dae_trainer_model(t)->params,
                     mf->model->n_params * sizeof(float)) == 0);
    ck_assert_ptr_nonnull(strstr(mf->config_json, "\"collapse_restarts\":0"));
    ck_assert_ptr_nonnull(strstr(mf->config_json, "\"val_psnr\""));
    ck_assert_ptr_nonnull(strstr(mf->config_json, "\"gaussian\""));
    ck_assert_ptr_nonnull(strstr(mf->config_json, DAE_TRAINER_VERSION));
    dae_modelfile_free(mf);
    dae_trainer_free(t);
    dae_recipe_free(r);
}
END_TEST

START_TEST(test_superres_noise2noise_bce_sparse)
{
    /* down2: the model sees 4x4 and restores 8x8 */
    const char *sr =
        ",\"corruption\":\"sr2\",\"model\":{\"input\":[1,4,4],\"encoder\":[{\"type\":"
        "\"flatten\"},{\"type\":\"linear\",\"in_features\":16,\"out_features\":16},{\"type\":"
        "\"relu\"}],\"decoder\":[{\"type\":\"linear\",\"in_features\":16,\"out_features\":64},"
        "{\"type\":\"sigmoid\"},{\"type\":\"unflatten\",\"unflattened_size\":[1,8,8]}]}";
    dae_recipe *r = recipe(sr, 0, NULL);
    dae_trainer *t = trainer(r);
    double before = mean_score(t);
    run_ok(t, NULL);
    ck_assert(mean_score(t) < before);
    dae_trainer_free(t);
    dae_recipe_free(r);

    char *args[] = {"--noise2noise", "true", "--objective.loss", "bce", "--objective.sparse",
                    "0.001", "--epochs", "3"};
    r = recipe(NULL, 8, args);
    t = trainer(r);
    before = mean_score(t);
    run_ok(t, NULL);
    ck_assert(mean_score(t) < before);
    dae_trainer_free(t);
    dae_recipe_free(r);

    /* Noise2Noise with zero-mean (unclipped) targets of their own set */
    char *args3[] = {"--noise2noise", "true", "--target_corruption",
                     "[{\"type\":\"gaussian\",\"sigma\":0.2,\"clip\":false}]", "--epochs", "3"};
    r = recipe(NULL, 6, args3);
    ck_assert_int_eq(r->target_corruption.n, 1);
    t = trainer(r);
    before = mean_score(t);
    run_ok(t, NULL);
    ck_assert(mean_score(t) < before);
    dae_trainer_free(t);
    dae_recipe_free(r);
}
END_TEST

/* "init": a second trainer starts from the first one's saved weights, exactly; a model file
 * of another architecture is refused with a message naming it. */
START_TEST(test_init_from_model_file)
{
    dae_recipe *r = recipe(NULL, 0, NULL);
    dae_trainer *t = trainer(r);
    run_ok(t, NULL);
    dae_calibration c;
    dae_error e = {0};
    ck_assert_msg(dae_trainer_calibrate(t, &c, NULL, &e) == DAE_OK, "%s", e.msg);
    ck_assert_msg(dae_trainer_save_model(t, r->output, &c, NULL, &e) == DAE_OK, "%s", e.msg);

    char *args[] = {"--init", r->output, "--output", "/dev/null/never"};
    dae_recipe *r2 = recipe(NULL, 4, args);
    dae_trainer *t2 = trainer(r2);
    const dae_model *a = dae_trainer_model(t), *b = dae_trainer_model(t2);
    ck_assert(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    dae_recipe *fresh = recipe(NULL, 0, NULL);
    dae_trainer *t3 = trainer(fresh);
    ck_assert(memcmp(a->params, dae_trainer_model(t3)->params,
                     a->n_params * sizeof(float)) != 0);

    char *other[] = {"--init", r->output, "--model",
                     "{\"input\":[1,8,8],\"encoder\":[{\"type\":\"flatten\"},"
                     "{\"type\":\"linear\",\"in_features\":64,\"out_features\":8}],"
                     "\"decoder\":[{\"type\":\"linear\",\"in_features\":8,"
                     "\"out_features\":64},{\"type\":\"unflatten\","
                     "\"unflattened_size\":[1,8,8]}]}"};
    dae_recipe *r4 = recipe(NULL, 4, other);
    ck_assert_ptr_null(dae_trainer_create(r4, train_ds, val_ds, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "init: "));
    dae_recipe_free(r4);

    /* an init file's "license" notice goes with every model file made from its weights */
    char lic[1100], out[1100];
    snprintf(lic, sizeof lic, "%s.lic.safetensors", r->output);
    snprintf(out, sizeof out, "%s.from-lic.safetensors", r->output);
    dae_modelfile *mf = dae_modelfile_load(r->output, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_ptr_null(dae_modelfile_meta(mf, "license"));
    const char *meta[] = {"license", "Test Licence: keep this notice", NULL};
    ck_assert_msg(dae_modelfile_save(lic, mf->model, mf->config_json, meta, &e) == DAE_OK,
                  "%s", e.msg);
    dae_modelfile_free(mf);
    char *args5[] = {"--init", lic};
    dae_recipe *r5 = recipe(NULL, 2, args5);
    dae_trainer *t5 = trainer(r5);
    run_ok(t5, NULL);
    ck_assert_msg(dae_trainer_save_model(t5, out, NULL, NULL, &e) == DAE_OK, "%s", e.msg);
    mf = dae_modelfile_load(out, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    char *kept = dae_modelfile_meta(mf, "license");
    ck_assert_str_eq(kept ? kept : "(none)", "Test Licence: keep this notice");
    free(kept);
    dae_modelfile_free(mf);
    unlink(lic);
    unlink(out);
    dae_trainer_free(t5);
    dae_recipe_free(r5);
    dae_trainer_free(t3);
    dae_recipe_free(fresh);
    dae_trainer_free(t2);
    dae_recipe_free(r2);
    dae_trainer_free(t);
    dae_recipe_free(r);
}
END_TEST

/* data.shift: deterministic for a seed, and it changes what is trained on. */
START_TEST(test_shift_augmentation)
{
    char *args[] = {"--data.shift", "2"};
    dae_recipe *r1 = recipe(NULL, 2, args), *r2 = recipe(NULL, 2, args), *r0 = recipe(NULL, 0, NULL);
    dae_trainer *t1 = trainer(r1), *t2 = trainer(r2), *t0 = trainer(r0);
    run_ok(t1, NULL);
    run_ok(t2, NULL);
    run_ok(t0, NULL);
    const dae_model *a = dae_trainer_model(t1);
    size_t n = a->n_params * sizeof(float);
    ck_assert(memcmp(a->params, dae_trainer_model(t2)->params, n) == 0);
    ck_assert(memcmp(a->params, dae_trainer_model(t0)->params, n) != 0);
    ck_assert(isfinite(dae_trainer_stats(t1)->val_psnr));
    dae_trainer_free(t0);
    dae_trainer_free(t2);
    dae_trainer_free(t1);
    dae_recipe_free(r0);
    dae_recipe_free(r2);
    dae_recipe_free(r1);
}
END_TEST

/* dae_trainer_create refuses the recipe (base fields + extra JSON members + overrides)
 * with a message containing msg. */
static void create_fails(const char *extra, int n_args, char **args, const char *msg)
{
    dae_error e = {0};
    dae_recipe *r = recipe(extra, n_args, args);
    ck_assert_ptr_null(dae_trainer_create(r, train_ds, val_ds, &e));
    ck_assert_msg(strstr(e.msg, msg) != NULL, "%s", e.msg);
    dae_recipe_free(r);
}

START_TEST(test_create_errors)
{
    const char *big = ",\"model\":{\"input\":[1,28,28],\"encoder\":[{\"type\":\"flatten\"},"
                      "{\"type\":\"linear\",\"in_features\":784,\"out_features\":8}],"
                      "\"decoder\":[{\"type\":\"linear\",\"in_features\":8,\"out_features\":"
                      "784},{\"type\":\"unflatten\",\"unflattened_size\":[1,28,28]}]}";
    create_fails(big, 0, NULL, "(1,8,8)");

    char *args[] = {"--objective.contractive", "0.1"};
    create_fails(NULL, 2, args, "flatten,linear,relu,linear,relu");

    char *args2[] = {"--noise2noise", "true", "--corruption", "sr2"};
    create_fails(NULL, 4, args2, "noise2noise");

    char *args3[] = {"--target_corruption", "[{\"type\":\"gaussian\",\"sigma\":0.2}]"};
    create_fails(NULL, 2, args3, "only used with noise2noise");

    char *args4[] = {"--noise2noise", "true", "--target_corruption", "sr2"};
    create_fails(NULL, 4, args4, "target_corruption: needs a same-size");
}
END_TEST

/* Big-endian IDX files of the synthetic images (u8) and labels, for the file path. */
static void write_idx(const char *img_path, const char *lab_path, const dae_dataset *ds)
{
    FILE *f = fopen(img_path, "wb"), *g = fopen(lab_path, "wb");
    ck_assert(f && g);
    unsigned char hi[16] = {0, 0, 8, 3, 0, 0, (unsigned char)(ds->n >> 8),
                            (unsigned char)ds->n, 0, 0, 0, 8, 0, 0, 0, 8};
    unsigned char hl[8] = {0, 0, 8, 1, 0, 0, (unsigned char)(ds->n >> 8), (unsigned char)ds->n};
    fwrite(hi, 1, 16, f);
    fwrite(hl, 1, 8, g);
    for (int i = 0; i < ds->n * 64; i++)
        fputc((int)lrintf(ds->x[i] * 255.0f), f);
    for (int i = 0; i < ds->n; i++)
        fputc(ds->labels[i], g);
    fclose(f);
    fclose(g);
}

START_TEST(test_train_main_from_files)
{
    char img[128], lab[128], data[300], out[DAE_RECIPE_PATH_MAX];
    snprintf(img, sizeof img, "%s/img.idx", tmpdir);
    snprintf(lab, sizeof lab, "%s/lab.idx", tmpdir);
    write_idx(img, lab, train_ds);
    snprintf(data, sizeof data, "%s,%s", img, lab);
    /* one-class: class 1 only (100 of 200), 20 held out for validation and calibration */
    char *args[] = {"--data.val", "", "--data.train", data, "--data.class", "1",
                    "--data.val_count", "20", "--epochs", "3"};
    dae_recipe *r = recipe(NULL, 10, args);
    snprintf(out, sizeof out, "%s", r->output);
    dae_train_status status = DAE_TRAIN_INTERRUPTED;
    dae_error e = {0};
    ck_assert_msg(dae_train_main(r, NULL, NULL, &status, &e) == DAE_OK, "%s", e.msg);
    ck_assert_int_eq(status, DAE_TRAIN_DONE);
    dae_modelfile *mf = dae_modelfile_load(out, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_int_eq(mf->calib.n, 5);
    ck_assert_ptr_nonnull(strstr(mf->config_json, "\"n_train\":80"));
    ck_assert_ptr_nonnull(strstr(mf->config_json, "\"n_val\":20"));
    ck_assert_ptr_nonnull(strstr(mf->config_json, "\"class\":1"));
    dae_modelfile_free(mf);
    dae_recipe_free(r);

    /* a missing file names itself */
    char *bad[] = {"--data.val", "", "--data.train", "/nonexistent/x.idx", "--data.val_count",
                   "5"};
    r = recipe(NULL, 6, bad);
    ck_assert_int_ne(dae_train_main(r, NULL, NULL, NULL, &e), DAE_OK);
    ck_assert_msg(strstr(e.msg, "/nonexistent/x.idx") != NULL, "%s", e.msg);
    dae_recipe_free(r);
}
END_TEST

/* --snapshot: the model file of a checkpoint as it is, no step taken; refused without one */
START_TEST(test_train_main_snapshot)
{
    char img[128], lab[128], data[300], snap[DAE_RECIPE_PATH_MAX + 8];
    snprintf(img, sizeof img, "%s/simg.idx", tmpdir);
    snprintf(lab, sizeof lab, "%s/slab.idx", tmpdir);
    write_idx(img, lab, train_ds);
    snprintf(data, sizeof data, "%s,%s", img, lab);
    char *args[] = {"--data.val", "", "--data.train", data, "--data.val_count", "20"};
    dae_recipe *r = recipe(NULL, 6, args);
    dae_train_status status = DAE_TRAIN_DONE;
    dae_error e = {0};
    dae_train_options o = {.stop_at_step = 7};
    ck_assert_msg(dae_train_main(r, NULL, &o, &status, &e) == DAE_OK, "%s", e.msg);
    ck_assert_int_eq(status, DAE_TRAIN_INTERRUPTED);
    ck_assert_int_ne(access(r->output, F_OK), 0);

    dae_train_options so = {.snapshot = 1};
    ck_assert_int_ne(dae_train_main(r, NULL, &so, NULL, &e), DAE_OK);
    ck_assert_msg(strstr(e.msg, "--resume") != NULL, "%s", e.msg);
    ck_assert_msg(dae_train_main(r, r->checkpoint, &so, &status, &e) == DAE_OK, "%s", e.msg);
    snprintf(snap, sizeof snap, "%s", r->output);

    dae_modelfile *mf = dae_modelfile_load(snap, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_ptr_nonnull(strstr(mf->config_json, "\"steps\":7"));
    unsigned char *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(dae_file_read(r->checkpoint, (size_t)1 << 30, &buf, &len, &e), DAE_OK);
    dae_st_limits lim = dae_st_default_limits();
    lim.max_file_bytes = lim.max_header_bytes = (size_t)1 << 30;
    dae_st_file *f = dae_st_parse(buf, len, &lim, &e);
    ck_assert_msg(f != NULL, "%s", e.msg);
    const dae_model *m = mf->model; /* every tensor as the checkpoint holds it */
    for (int i = 0; i < m->n_enc + m->n_dec; i++) {
        const dae_layer *ly = &m->layers[i];
        char name[96];
        if (!ly->n_w)
            continue;
        dae_model_param_name(m, i, 0, name, sizeof name);
        const dae_st_tensor *w = dae_st_find(f, name);
        ck_assert_ptr_nonnull(w);
        ck_assert(memcmp(w->data, m->params + ly->w_off, ly->n_w * sizeof(float)) == 0);
    }
    dae_st_free(f);
    free(buf);
    dae_modelfile_free(mf);
    dae_recipe_free(r);
}
END_TEST

/* The contractive penalty wired through the model's own backward: the parameter gradient
 * of lambda*||dh/dx||^2 (code gradient + direct term) against finite differences. */
#define CAE_MODEL                                                                            \
    "{\"input\":[1,2,3],\"encoder\":[{\"type\":\"flatten\"},{\"type\":\"linear\","           \
    "\"in_features\":6,\"out_features\":4},{\"type\":\"%s\"}],\"decoder\":[{\"type\":"       \
    "\"linear\",\"in_features\":4,\"out_features\":6},{\"type\":\"unflatten\","              \
    "\"unflattened_size\":[1,2,3]}]}"

static double cae_penalty(const dae_model *m, dae_workspace *ws, const dae_contractive *c,
                          const float *x, int B, float lambda, float *wsq)
{
    const float *z;
    dae_shape zs;
    ck_assert_int_eq(dae_model_encode(m, ws, x, B, m->in_shape, &z, &zs, NULL), DAE_OK);
    const dae_layer *ly = &m->layers[c->layer];
    return dae_contractive_penalty(NULL, NULL, z, m->params + ly->w_off, wsq, B, c->in_f,
                                   c->hidden, c->act, lambda);
}

static void cae_case(const char *act)
{
    char cfg[1024];
    snprintf(cfg, sizeof cfg, CAE_MODEL, act);
    dae_error e = {0};
    dae_model *m = dae_model_from_config(cfg, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    dae_model_init_params(m, 3);
    dae_contractive c;
    ck_assert_int_eq(dae_contractive_check(m, &c, &e), DAE_OK);
    ck_assert_int_eq(c.layer, 1);
    enum { B = 3 };
    float x[B * 6], dout[B * 6] = {0}, dl[B * 4] = {0}, wsq[4];
    for (int i = 0; i < B * 6; i++)
        x[i] = (float)((i * 37) % 11) / 11.0f;
    dae_workspace *ws = dae_workspace_create(m, B, m->in_shape, 1, &e);
    ck_assert_ptr_nonnull(ws);
    float *g = calloc(m->n_params, sizeof *g);
    const float *out;
    dae_shape os;
    const float lambda = 0.5f;
    ck_assert_int_eq(dae_model_forward(m, ws, x, B, m->in_shape, &out, &os, &e), DAE_OK);
    const dae_layer *ly = &m->layers[1];
    dae_contractive_penalty(dl, g + ly->w_off, dae_workspace_latent(ws),
                            m->params + ly->w_off, wsq, B, 6, 4, c.act, lambda);
    ck_assert_int_eq(dae_model_backward(m, ws, dout, dl, g, NULL, &e), DAE_OK);
    const float h = 1e-3f;
    for (size_t k = ly->w_off; k < ly->b_off + ly->n_b; k++) {
        float keep = m->params[k];
        m->params[k] = keep + h;
        double up = cae_penalty(m, ws, &c, x, B, lambda, wsq);
        m->params[k] = keep - h;
        double dn = cae_penalty(m, ws, &c, x, B, lambda, wsq);
        m->params[k] = keep;
        double fd = (up - dn) / (2 * h);
        ck_assert_msg(fabs(fd - g[k]) <= 2e-3 * fabs(fd) + 2e-5,
                      "%s param %zu: analytic %.8g, finite difference %.8g", act, k, g[k], fd);
    }
    /* the decoder gets nothing from the penalty */
    for (size_t k = m->layers[3].w_off; k < m->n_params; k++)
        ck_assert_float_eq(g[k], 0.0f);
    free(g);
    dae_workspace_free(ws);
    dae_model_free(m);
}

START_TEST(test_contractive_through_model)
{
    cae_case("sigmoid");
    cae_case("tanh");
}
END_TEST

Suite *suite_trainer(void)
{
    Suite *s = suite_create("trainer");
    TCase *tc = tcase_create("loop");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_loss_decreases);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_resume_mid_epoch);
    tcase_add_test(tc, test_resume_epoch_end_sgd_cosine);
    tcase_add_test(tc, test_stop_flag);
    tcase_add_test(tc, test_resume_refuses_other_setup);
    tcase_add_test(tc, test_bf16_trains_like_fp32);
    tcase_add_test(tc, test_resume_fp32_checkpoint_in_bf16);
    if (!dae_amx_supported())
        ck_skip("trainer", "test_bf16_trains_like_fp32 (AMX part)", "the CPU has no "
                "AMX-BF16: precision bf16 trains in fp32 (checked: fp32's bits)");
    tcase_add_test(tc, test_early_stopping);
    tcase_add_test(tc, test_nan_stops);
    tcase_add_test(tc, test_collapse_restarts);
    tcase_add_test(tc, test_calibration_and_model_file);
    tcase_add_test(tc, test_superres_noise2noise_bce_sparse);
    tcase_add_test(tc, test_create_errors);
    tcase_add_test(tc, test_init_from_model_file);
    tcase_add_test(tc, test_shift_augmentation);
    tcase_add_test(tc, test_contractive_through_model);
    tcase_add_test(tc, test_train_main_from_files);
    tcase_add_test(tc, test_train_main_snapshot);
    suite_add_tcase(s, tc);
    return s;
}

/* check_recipe.c — recipe parsing: defaults, nested fields, overrides, error messages. */
#include "check_quiet.h"
#include <stdio.h>
#include <string.h>

#include "daed/io/modelfile.h"
#include "daed/train/recipe.h"

static dae_recipe *parse(const char *json, int n, char *const *args, dae_error *e)
{
    return dae_recipe_parse(json, strlen(json), "r.json", n, args, e);
}

START_TEST(test_defaults)
{
    dae_error e = {0};
    dae_recipe *r = parse("{}", 0, NULL, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    ck_assert_int_eq(r->epochs, 10);
    ck_assert_int_eq(r->batch_size, 128);
    ck_assert_int_eq(r->optim.kind, DAE_OPT_ADAM);
    ck_assert_double_eq(r->lr, 0.001);
    ck_assert_float_eq(r->optim.beta2, 0.999f);
    ck_assert_int_eq(r->objective.loss, DAE_LOSS_MSE);
    ck_assert_int_eq(r->corruption.n, 1);
    ck_assert_int_eq(r->corruption.c[0].kind, DAE_CORRUPT_GAUSSIAN);
    ck_assert_float_eq_tol(r->corruption.c[0].lo, 0.2f, 1e-7f);
    ck_assert_str_eq(r->checkpoint, "model.safetensors.ckpt");
    ck_assert_str_eq(r->name, "model");
    ck_assert_uint_eq(r->tasks, DAE_TASK_DENOISE | DAE_TASK_SCORE);
    ck_assert_str_eq(r->tasks_json, "[\"denoise\",\"score\"]");
    ck_assert_ptr_nonnull(strstr(r->model_json, "\"in_features\":784"));
    ck_assert_int_eq(r->data.class_k, -1);
    ck_assert_double_eq(r->data.val_fraction, 0.1);
    dae_recipe_free(r);
}
END_TEST

START_TEST(test_fields_and_overrides)
{
    const char *json =
        "{\"_comment\":\"ignored\",\"output\":\"out/fm.safetensors\",\"epochs\":3,"
        "\"seed\":42,\"tasks\":[\"inpaint\",\"score\"],"
        "\"data\":{\"train\":\"mnist:train\",\"class\":4,\"val_count\":100},"
        "\"corruption\":[{\"type\":\"block\",\"k\":[8,14]},{\"type\":\"mask\",\"p\":0.5}],"
        "\"optimizer\":{\"kind\":\"sgd\",\"lr\":0.05,\"momentum\":0.8},"
        "\"schedule\":{\"kind\":\"cosine\",\"warmup_steps\":50}}";
    char *args[] = {"--optimizer.lr", "0.002", "--epochs=1",   "--objective.loss", "bce",
                    "--noise2noise",  "true",  "--collapse.check", "off", "--tasks",
                    "denoise,encode"};
    dae_error e = {0};
    dae_recipe *r = parse(json, 11, args, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    ck_assert_int_eq(r->epochs, 1);
    ck_assert_uint_eq(r->seed, 42);
    ck_assert_double_eq(r->lr, 0.002);
    ck_assert_int_eq(r->optim.kind, DAE_OPT_SGD);
    ck_assert_float_eq_tol(r->optim.momentum, 0.8f, 1e-7f);
    ck_assert_int_eq(r->objective.loss, DAE_LOSS_BCE);
    ck_assert_int_eq(r->noise2noise, 1);
    ck_assert_int_eq(r->collapse.check, DAE_TRI_OFF);
    ck_assert_int_eq(r->schedule.kind, DAE_SCHED_COSINE);
    ck_assert_int_eq(r->schedule.warmup_steps, 50);
    ck_assert_str_eq(r->data.train, "mnist:train");
    ck_assert_int_eq(r->data.class_k, 4);
    ck_assert_int_eq(r->data.val_count, 100);
    ck_assert_int_eq(r->corruption.n, 2);
    ck_assert_int_eq(r->corruption.c[0].kind, DAE_CORRUPT_BLOCK);
    ck_assert_uint_eq(r->tasks, DAE_TASK_DENOISE | DAE_TASK_ENCODE);
    ck_assert_str_eq(r->name, "fm");
    ck_assert_str_eq(r->checkpoint, "out/fm.safetensors.ckpt");
    /* the effective recipe holds the overrides with their types */
    ck_assert_ptr_nonnull(strstr(r->json, "\"lr\":0.002"));
    ck_assert_ptr_nonnull(strstr(r->json, "\"epochs\":1"));
    ck_assert_ptr_nonnull(strstr(r->json, "\"noise2noise\":true"));
    dae_recipe_free(r);

    /* an override creates a missing section; a PROTOCOL task name is a corruption */
    char *a2[] = {"--early_stopping.patience", "3", "--corruption", "sr2"};
    r = parse("{}", 4, a2, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    ck_assert_int_eq(r->early_stop.patience, 3);
    ck_assert_int_eq(r->corruption.c[0].kind, DAE_CORRUPT_DOWN2);
    ck_assert_ptr_nonnull(strstr(r->corruption_json, "down2"));
    dae_recipe_free(r);
}
END_TEST

/* Each bad input fails with a message containing the given words. */
static void bad(const char *json, int n, char *const *args, const char *w1, const char *w2)
{
    dae_error e = {0};
    dae_recipe *r = parse(json, n, args, &e);
    ck_assert_msg(r == NULL, "accepted %s", json);
    ck_assert_int_ne(e.code, DAE_OK);
    ck_assert_msg(strstr(e.msg, w1) != NULL, "\"%s\" lacks \"%s\"", e.msg, w1);
    if (w2)
        ck_assert_msg(strstr(e.msg, w2) != NULL, "\"%s\" lacks \"%s\"", e.msg, w2);
}

START_TEST(test_errors)
{
    bad("{\"epochs\":", 0, NULL, "r.json", "invalid JSON");
    bad("[1,2]", 0, NULL, "r.json", "object");
    bad("{\"optimizer\":{\"lrr\":0.1}}", 0, NULL, "unknown field \"optimizer.lrr\"",
        "lr, beta1");
    bad("{\"epoch\":3}", 0, NULL, "unknown field \"epoch\"", "epochs");
    bad("{\"epochs\":0}", 0, NULL, "epochs", "got 0");
    bad("{\"epochs\":2.5}", 0, NULL, "epochs", "integer");
    bad("{\"epochs\":\"ten\"}", 0, NULL, "epochs: expected a number", "ten");
    bad("{\"optimizer\":{\"kind\":\"rmsprop\"}}", 0, NULL, "optimizer.kind",
        "adam, adamw, sgd");
    bad("{\"optimizer\":3}", 0, NULL, "optimizer", "object");
    bad("{\"tasks\":[\"denoise\",\"fly\"]}", 0, NULL, "tasks", "fly");
    bad("{\"corruption\":[{\"type\":\"gaussian\",\"sigma\":[0.5,0.1]}]}", 0, NULL,
        "corruption", NULL);
    bad("{\"model\":[1]}", 0, NULL, "model", "object");
    bad("{\"epochs\":1,\"epochs\":2}", 0, NULL, "duplicate", "epochs");
    bad("{\"objective\":{\"sparse\":0.1,\"contractive\":0.1}}", 0, NULL, "sparse",
        "contractive");
    bad("{\"data\":{\"val_fraction\":0}}", 0, NULL, "validation", NULL);
    char *a1[] = {"--optimizer.lr", "fast"};
    bad("{}", 2, a1, "optimizer.lr", "fast");
    char *a2[] = {"--nope", "1"};
    bad("{}", 2, a2, "unknown option --nope", NULL);
    char *a3[] = {"--epochs"};
    bad("{}", 1, a3, "--epochs needs a value", NULL);
    char *a4[] = {"stray"};
    bad("{}", 1, a4, "stray", NULL);
    char *a5[] = {"--noise2noise", "maybe"};
    bad("{}", 2, a5, "noise2noise", "maybe");
}
END_TEST

START_TEST(test_help_and_keys)
{
    ck_assert(dae_recipe_has_key("optimizer.lr"));
    ck_assert(dae_recipe_has_key("epochs=3"));
    ck_assert(!dae_recipe_has_key("resume"));
    char buf[32768];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    dae_recipe_print_help(f);
    fclose(f);
    buf[sizeof buf - 1] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "--optimizer.lr"));
    ck_assert_ptr_nonnull(strstr(buf, "default: 0.001"));
    ck_assert_ptr_nonnull(strstr(buf, "--collapse.check"));

    dae_error e = {0};
    ck_assert_ptr_null(dae_recipe_load("/nonexistent/recipe.json", 0, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/recipe.json"));
}
END_TEST

/* Checkpoints never land among served models: an output in a models/ folder checkpoints to
 * runs/; elsewhere next to the output. The shipped recipes write to runs/. */
START_TEST(test_checkpoint_place)
{
    static const char *cases[][2] = {
        {"models/x.safetensors", "runs/x.safetensors.ckpt"},
        {"./models/x.safetensors", "runs/x.safetensors.ckpt"},
        {"/srv/models/x.safetensors", "runs/x.safetensors.ckpt"},
        {"mymodels/x.safetensors", "mymodels/x.safetensors.ckpt"},
        {"runs/x.safetensors", "runs/x.safetensors.ckpt"},
        {"x.safetensors", "x.safetensors.ckpt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dae_error e = {0};
        char *args[] = {"--output", (char *)cases[i][0]};
        dae_recipe *r = parse("{}", 2, args, &e);
        ck_assert_msg(r != NULL, "%s", e.msg);
        ck_assert_str_eq(r->checkpoint, cases[i][1]);
        dae_recipe_free(r);
    }
    dae_error e = {0};
    dae_recipe *r = dae_recipe_load("models/fmnist-denoise.json", 0, NULL, &e);
    ck_assert_msg(r != NULL, "%s", e.msg);
    ck_assert_str_eq(r->output, "runs/fmnist-denoise.safetensors");
    ck_assert_str_eq(r->checkpoint, "runs/fmnist-denoise.safetensors.ckpt");
    ck_assert_str_eq(r->name, "fmnist-denoise");
    dae_recipe_free(r);
}
END_TEST

Suite *suite_recipe(void)
{
    Suite *s = suite_create("recipe");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_fields_and_overrides);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_help_and_keys);
    tcase_add_test(tc, test_checkpoint_place);
    suite_add_tcase(s, tc);
    return s;
}

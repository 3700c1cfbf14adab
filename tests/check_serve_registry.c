/* check_serve_registry.c — the model registry: folder scan, bad files, reload, references. */
#include "check_quiet.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daed/io/modelfile.h"
#include "../src/serve/registry.h"

static char dir[64];

/* Out of memory on demand: this program's strdup takes the place of libc's (for every
 * caller in the test binary) and, while strdup_fail_in counts down to 0, the call that
 * brings it to 0 fails as libc's does when memory is short. The registry copies each file
 * name of the folder with strdup. */
static int strdup_fail_in;

char *strdup(const char *s)
{
    if (strdup_fail_in > 0 && --strdup_fail_in == 0) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    return p ? memcpy(p, s, n) : NULL;
}

static void write_model(const char *file, const char *name, const char *tasks, int hidden)
{
    char cfg[1024], path[256];
    snprintf(cfg, sizeof cfg,
             "{\"name\":\"%s\",\"tasks\":%s,\"input\":[1,4,4],\"encoder\":[{\"type\":\"flatten\"},"
             "{\"type\":\"linear\",\"in_features\":16,\"out_features\":%d}],\"decoder\":["
             "{\"type\":\"linear\",\"in_features\":%d,\"out_features\":16},{\"type\":\"sigmoid\"},"
             "{\"type\":\"unflatten\",\"unflattened_size\":[1,4,4]}]}",
             name, tasks, hidden, hidden);
    dae_error e = {0};
    dae_model *m = dae_model_from_config(cfg, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    dae_model_init_params(m, 7);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    ck_assert_msg(dae_modelfile_save(path, m, cfg, NULL, &e) == DAE_OK, "%s", e.msg);
    dae_model_free(m);
}

static void write_junk(const char *file)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    fputs("this is not a safetensors file", f);
    fclose(f);
}

static void setup(void)
{
    strcpy(dir, "/tmp/daed-reg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_load_skip_bad)
{
    write_model("b.safetensors", "beta", "[\"denoise\",\"score\"]", 3);
    write_model("a.safetensors", "alpha", "[\"encode\"]", 2);
    write_junk("c.safetensors");
    write_junk("notes.txt"); /* ignored: not *.safetensors */
    dae_error e = {0};
    dae_registry *r = dae_registry_create(dir, 2, &e);
    dae_reload_report rep;
    ck_assert_int_eq(dae_registry_reload(r, &rep, &e), DAE_OK);
    ck_assert_int_eq(rep.loaded, 2);
    ck_assert_int_eq(rep.failed, 1);
    ck_assert_int_eq(rep.serving, 2);
    ck_assert_ptr_nonnull(strstr(rep.failures_json, "\"file\":\"c.safetensors\""));
    free(rep.failures_json);
    int n;
    dae_entry **list = dae_registry_list(r, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(list[0]->name, "alpha"); /* sorted by name */
    ck_assert_str_eq(list[1]->name, "beta");
    dae_registry_release(list, n);
    dae_entry *d = dae_registry_default(r, DAE_TASK_DENOISE, "");
    ck_assert_str_eq(d->name, "beta");
    dae_entry_unref(d);
    d = dae_registry_default(r, DAE_TASK_ENCODE, "");
    ck_assert_str_eq(d->name, "alpha");
    dae_entry_unref(d);
    d = dae_registry_default(r, DAE_TASK_DENOISE, "alpha"); /* the option overrides */
    ck_assert_str_eq(d->name, "alpha");
    dae_entry_unref(d);
    ck_assert_ptr_null(dae_registry_default(r, DAE_TASK_INPAINT, ""));
    ck_assert_ptr_null(dae_registry_default(r, DAE_TASK_DENOISE, "gone"));
    ck_assert_ptr_null(dae_registry_get(r, "nope"));
    dae_registry_free(r);
}
END_TEST

START_TEST(test_reload_keeps_refs_and_old_versions)
{
    write_model("a.safetensors", "alpha", "[\"denoise\"]", 2);
    write_model("b.safetensors", "beta", "[\"denoise\"]", 2);
    dae_error e = {0};
    dae_registry *r = dae_registry_create(dir, 1, &e);
    ck_assert_int_eq(dae_registry_reload(r, NULL, &e), DAE_OK);
    dae_entry *held = dae_registry_get(r, "alpha");
    ck_assert_int_eq(held->mf->model->latent_shape.c, 2);

    /* Unchanged files keep their entry. */
    dae_reload_report rep;
    ck_assert_int_eq(dae_registry_reload(r, &rep, &e), DAE_OK);
    ck_assert_int_eq(rep.kept, 2);
    ck_assert_int_eq(rep.loaded, 0);
    free(rep.failures_json);
    dae_entry *same = dae_registry_get(r, "alpha");
    ck_assert_ptr_eq(same, held);
    dae_entry_unref(same);

    /* alpha changes (new inode via atomic save), beta breaks, gamma appears. */
    write_model("a.safetensors", "alpha", "[\"denoise\"]", 5);
    write_junk("b.safetensors.tmp");
    char from[256], to[256];
    snprintf(from, sizeof from, "%s/b.safetensors.tmp", dir);
    snprintf(to, sizeof to, "%s/b.safetensors", dir);
    ck_assert_int_eq(rename(from, to), 0);
    write_model("g.safetensors", "gamma", "[\"denoise\"]", 2);
    ck_assert_int_eq(dae_registry_reload(r, &rep, &e), DAE_OK);
    ck_assert_int_eq(rep.loaded, 2);
    ck_assert_int_eq(rep.failed, 1);
    ck_assert_int_eq(rep.serving, 3);
    free(rep.failures_json);
    dae_entry *now = dae_registry_get(r, "alpha");
    ck_assert_ptr_ne(now, held);
    ck_assert_int_eq(now->mf->model->latent_shape.c, 5);
    dae_entry_unref(now);
    /* The request that held the old alpha still has a whole model. */
    ck_assert_int_eq(held->mf->model->latent_shape.c, 2);
    ck_assert_str_eq(held->name, "alpha");
    dae_entry_unref(held);
    /* The broken beta keeps serving its previous version. */
    dae_entry *b = dae_registry_get(r, "beta");
    ck_assert_ptr_nonnull(b);
    dae_entry_unref(b);

    /* A removed file drops its model. */
    snprintf(to, sizeof to, "%s/g.safetensors", dir);
    ck_assert_int_eq(unlink(to), 0);
    ck_assert_int_eq(dae_registry_reload(r, &rep, &e), DAE_OK);
    ck_assert_int_eq(rep.removed, 1);
    ck_assert_int_eq(dae_registry_count(r), 2);
    free(rep.failures_json);
    dae_registry_free(r);
}
END_TEST

START_TEST(test_duplicate_names_and_missing_dir)
{
    write_model("a.safetensors", "same", "[\"denoise\"]", 2);
    write_model("b.safetensors", "same", "[\"denoise\"]", 3);
    dae_error e = {0};
    dae_registry *r = dae_registry_create(dir, 1, &e);
    dae_reload_report rep;
    ck_assert_int_eq(dae_registry_reload(r, &rep, &e), DAE_OK);
    ck_assert_int_eq(rep.serving, 1);
    ck_assert_int_eq(rep.failed, 1);
    ck_assert_ptr_nonnull(strstr(rep.failures_json, "already served from a.safetensors"));
    free(rep.failures_json);
    dae_registry_free(r);

    r = dae_registry_create("/nonexistent/daed-models", 1, &e);
    ck_assert_int_eq(dae_registry_reload(r, NULL, &e), DAE_EIO);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/daed-models"));
    dae_registry_free(r);
}
END_TEST

/* Out of memory while listing the folder: an error, and the models loaded before keep
 * serving (not a reload from a partial list that would unload the names left out). */
START_TEST(test_listing_out_of_memory)
{
    write_model("a.safetensors", "alpha", "[\"denoise\"]", 2);
    write_model("b.safetensors", "beta", "[\"denoise\"]", 2);
    write_model("c.safetensors", "gamma", "[\"denoise\"]", 2);
    dae_error e = {0};
    dae_registry *r = dae_registry_create(dir, 1, &e);
    ck_assert_int_eq(dae_registry_reload(r, NULL, &e), DAE_OK);
    ck_assert_int_eq(dae_registry_count(r), 3);
    write_model("d.safetensors", "delta", "[\"denoise\"]", 2);

    dae_reload_report rep;
    strdup_fail_in = 2; /* the second file name */
    int rc = dae_registry_reload(r, &rep, &e);
    strdup_fail_in = 0;
    ck_assert_int_eq(rc, DAE_ENOMEM);
    ck_assert_ptr_nonnull(strstr(e.msg, dir));
    ck_assert_ptr_nonnull(strstr(e.msg, "out of memory"));
    ck_assert_int_eq(rep.serving, 0);
    ck_assert_str_eq(rep.failures_json, "[]");
    free(rep.failures_json);
    ck_assert_int_eq(dae_registry_count(r), 3);
    const char *names[] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; i++) {
        dae_entry *x = dae_registry_get(r, names[i]);
        ck_assert_msg(x != NULL, "%s unloaded by a failed reload", names[i]);
        dae_entry_unref(x);
    }
    ck_assert_ptr_null(dae_registry_get(r, "delta"));

    ck_assert_int_eq(dae_registry_reload(r, &rep, &e), DAE_OK);
    ck_assert_int_eq(rep.kept, 3);
    ck_assert_int_eq(rep.loaded, 1);
    ck_assert_int_eq(rep.serving, 4);
    free(rep.failures_json);
    dae_registry_free(r);
}
END_TEST

START_TEST(test_workspaces)
{
    write_model("a.safetensors", "alpha", "[\"denoise\"]", 2);
    dae_error e = {0};
    dae_registry *r = dae_registry_create(dir, 2, &e);
    ck_assert_int_eq(dae_registry_reload(r, NULL, &e), DAE_OK);
    dae_entry *a = dae_registry_get(r, "alpha");
    dae_shape in = {1, 4, 4};
    dae_workspace *w0 = dae_entry_workspace(a, 0, 8, in, &e);
    ck_assert_ptr_nonnull(w0);
    ck_assert_ptr_eq(dae_entry_workspace(a, 0, 4, in, &e), w0); /* reused */
    dae_workspace *w1 = dae_entry_workspace(a, 1, 8, in, &e);
    ck_assert_ptr_nonnull(w1);
    ck_assert_ptr_ne(w1, w0); /* one per worker */
    ck_assert_ptr_null(dae_entry_workspace(a, 2, 8, in, &e));
    ck_assert_int_eq(e.code, DAE_EINTERNAL);
    float x[16] = {0};
    const float *y;
    dae_shape ys;
    ck_assert_int_eq(dae_model_forward(a->mf->model, w0, x, 1, in, &y, &ys, &e), DAE_OK);
    ck_assert_int_eq(ys.h, 4);
    dae_entry_unref(a);
    dae_registry_free(r);
}
END_TEST

Suite *suite_serve_registry(void)
{
    Suite *s = suite_create("serve_registry");
    TCase *tc = tcase_create("basic");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_load_skip_bad);
    tcase_add_test(tc, test_reload_keeps_refs_and_old_versions);
    tcase_add_test(tc, test_duplicate_names_and_missing_dir);
    tcase_add_test(tc, test_listing_out_of_memory);
    tcase_add_test(tc, test_workspaces);
    suite_add_tcase(s, tc);
    return s;
}

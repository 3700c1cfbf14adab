/* check_modelfile.c — daed model files: save/load round trip, the config <-> model mapping,
 * a table of malformed files (each rejected with its own message), calibration. */
#include "check_quiet.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daed/io/model_edit.h"
#include "daed/io/modelfile.h"
#include "daed/io/safetensors.h"

#define BASE_CFG \
    "{\"name\":\"tiny\",\"tasks\":[\"denoise\",\"score\"],\"input\":[1,8,8]," \
    "\"output\":[1,8,8],\"residual\":false," \
    "\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":1,\"out_channels\":4,\"kernel_size\":3," \
    "\"stride\":2,\"padding\":1},{\"type\":\"relu\"}," \
    "{\"type\":\"conv2d\",\"in_channels\":4,\"out_channels\":8,\"kernel_size\":[3,3]," \
    "\"stride\":2,\"padding\":1},{\"type\":\"leaky_relu\",\"negative_slope\":0.2}]," \
    "\"decoder\":[{\"type\":\"conv_transpose2d\",\"in_channels\":8,\"out_channels\":4," \
    "\"kernel_size\":3,\"stride\":2,\"padding\":1,\"output_padding\":1},{\"type\":\"relu\"}," \
    "{\"type\":\"upsample\",\"scale_factor\":2,\"mode\":\"bilinear\"}," \
    "{\"type\":\"conv2d\",\"in_channels\":4,\"out_channels\":1,\"kernel_size\":3," \
    "\"padding\":1},{\"type\":\"sigmoid\"}]," \
    "\"corruption\":{\"type\":\"gaussian\",\"sigma\":0.3}," \
    "\"calibration\":{\"score\":\"mse\",\"quantiles\":{\"p99\":0.04,\"p50\":0.01," \
    "\"p90\":0.02},\"threshold\":0.05}}"
static const char *const BASE = BASE_CFG;

static const char *const MLP =
    "{\"input\":[1,4,4],\"encoder\":[{\"type\":\"flatten\"},{\"type\":\"linear\","
    "\"in_features\":16,\"out_features\":3},{\"type\":\"tanh\"}],\"decoder\":[{\"type\":"
    "\"linear\",\"in_features\":3,\"out_features\":16},{\"type\":\"identity\"},{\"type\":"
    "\"sigmoid\"},{\"type\":\"unflatten\",\"unflattened_size\":[1,4,4]}]}";

/* An FFDNet-style model: gray image + noise-level map, unshuffle, convs, shuffle. */
static const char *const FFD =
    "{\"name\":\"ffd\",\"input\":[2,8,8],\"residual\":true,\"noise_map\":true,"
    "\"encoder\":[{\"type\":\"pixel_unshuffle\",\"downscale_factor\":2},{\"type\":\"conv2d\","
    "\"in_channels\":8,\"out_channels\":4,\"kernel_size\":3,\"padding\":1},{\"type\":"
    "\"relu\"}],\"decoder\":[{\"type\":\"conv2d\",\"in_channels\":4,\"out_channels\":4,"
    "\"kernel_size\":3,\"padding\":1},{\"type\":\"pixel_shuffle\",\"upscale_factor\":2}]}";

static char tmpdir[256];

static void mk_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_mf.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int count_entries(void)
{
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static void rm_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *de;
        char p[600];
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
                remove(p);
            }
        }
        closedir(d);
    }
    rmdir(tmpdir);
}

static dae_model *model_with_pattern(const char *cfg)
{
    dae_error e = {0};
    dae_model *m = dae_model_from_config(cfg, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (float)(sin((double)i * 1.7) * 0.37) + (i % 3 ? 1e-7f : -3e5f);
    return m;
}

START_TEST(test_roundtrip)
{
    mk_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.safetensors", tmpdir);
    dae_model *m = model_with_pattern(BASE);
    ck_assert_int_eq(m->n_enc, 4);
    ck_assert_int_eq(m->n_dec, 5);
    const char *extra[] = {"trained_by", "check_modelfile", NULL};
    dae_error e = {0};
    ck_assert_msg(dae_modelfile_save(path, m, BASE, extra, &e) == DAE_OK, "%s", e.msg);

    dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_uint_eq(mf->model->n_params, m->n_params);
    ck_assert_int_eq(memcmp(mf->model->params, m->params, m->n_params * sizeof(float)), 0);
    ck_assert_str_eq(mf->config_json, BASE);
    ck_assert_str_eq(mf->name, "tiny");
    ck_assert_uint_eq(mf->tasks, DAE_TASK_DENOISE | DAE_TASK_SCORE);
    ck_assert_int_eq(mf->calib.n, 3);
    ck_assert(mf->calib.level[0] == 0.5 && mf->calib.level[1] == 0.9);
    ck_assert(fabs(mf->calib.level[2] - 0.99) < 1e-12);
    ck_assert(mf->calib.value[0] == 0.01 && mf->calib.value[2] == 0.04);
    ck_assert(mf->calib.threshold == 0.05);
    ck_assert_str_eq(mf->calib.score, "mse");
    ck_assert_int_eq(mf->model->out_shape.c, 1);
    ck_assert_int_eq(mf->model->out_shape.h, 8);
    ck_assert_int_eq(mf->model->layers[3].act, DAE_ACT_LEAKY_RELU);
    ck_assert(mf->model->layers[3].slope == 0.2f);
    ck_assert_int_eq(mf->model->layers[6].bilinear, 1);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(mf->file_bytes, (size_t)st.st_size);

    cJSON *meta = cJSON_Parse(mf->metadata_json);
    ck_assert_ptr_nonnull(meta);
    ck_assert_str_eq(cJSON_GetObjectItem(meta, "format")->valuestring, "daed-1");
    ck_assert_str_eq(cJSON_GetObjectItem(meta, "config")->valuestring, BASE);
    ck_assert_str_eq(cJSON_GetObjectItem(meta, "trained_by")->valuestring, "check_modelfile");
    cJSON_Delete(meta);

    /* the tensors are the PyTorch state_dict, in layer order */
    unsigned char *buf;
    size_t len;
    ck_assert_int_eq(dae_file_read(path, 1 << 20, &buf, &len, &e), DAE_OK);
    dae_st_file *f = dae_st_parse(buf, len, NULL, &e);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->n_tensors, 8);
    const dae_st_tensor *t = dae_st_find(f, "decoder.0.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 4);
    ck_assert(t->shape[0] == 8 && t->shape[1] == 4 && t->shape[2] == 3 && t->shape[3] == 3);
    ck_assert_uint_eq(t->begin, 4 * (36 + 4 + 288 + 8));
    ck_assert_ptr_nonnull(dae_st_find(f, "decoder.3.bias"));
    ck_assert_ptr_null(dae_st_find(f, "encoder.1.weight"));
    dae_st_free(f);
    free(buf);

    /* saving again replaces the file atomically */
    m->params[0] = 42;
    ck_assert_int_eq(dae_modelfile_save(path, m, BASE, NULL, &e), DAE_OK);
    dae_modelfile_free(mf);
    mf = dae_modelfile_load(path, NULL, &e);
    ck_assert_ptr_nonnull(mf);
    ck_assert(mf->model->params[0] == 42);
    ck_assert_int_eq(count_entries(), 1);
    dae_modelfile_free(mf);
    dae_model_free(m);
    dae_modelfile_free(NULL);
    rm_tmpdir();
}
END_TEST

/* F16: binary16 coding (rounding to nearest even, the special values), and a model written
 * with F16 parameters (dae-model f16) loads as the F16-rounded weights, metadata kept. */
START_TEST(test_f16)
{
    const float in[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65520.0f, 0x1p-24f, 0x1p-26f, 0.1f,
                        1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, -2.5f, 0x1p-14f, 3e-5f};
    const unsigned short want[] = {0x0000, 0x8000, 0x3c00, 0x7bff, 0x7c00, 0x0001, 0x0000,
                                   0x2e66, 0x3c00, 0x3c02, 0xc100, 0x0400, 0x01f7};
    enum { N = sizeof in / sizeof in[0] };
    unsigned char b[2 * N];
    float back[N];
    dae_f16_encode(in, N, b);
    dae_f16_decode(b, N, back);
    for (int i = 0; i < N; i++) {
        ck_assert_msg((b[2 * i] | b[2 * i + 1] << 8) == want[i], "%g -> %04x, want %04x",
                      in[i], b[2 * i] | b[2 * i + 1] << 8, want[i]);
        if (i != 4)
            ck_assert_msg(fabsf(back[i] - in[i]) <= fabsf(in[i]) * 0x1p-11f + 0x1p-25f,
                          "%g back as %g", in[i], back[i]);
    }
    ck_assert(isinf(back[4]) && signbit(back[1]) && !signbit(back[0]));
    float nan = NAN;
    dae_f16_encode(&nan, 1, b);
    dae_f16_decode(b, 1, back);
    ck_assert(isnan(back[0]));

    mk_tmpdir();
    char path[512], half[512];
    snprintf(path, sizeof path, "%s/tiny.safetensors", tmpdir);
    snprintf(half, sizeof half, "%s/tiny16.safetensors", tmpdir);
    dae_model *m = model_with_pattern(BASE);
    for (size_t i = 0; i < m->n_params; i++) /* within F16's range */
        m->params[i] = (float)(sin((double)i * 1.7) * 0.37);
    const char *extra[] = {"license", "Test notice", NULL};
    dae_error e = {0};
    ck_assert_msg(dae_modelfile_save(path, m, BASE, extra, &e) == DAE_OK, "%s", e.msg);
    dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
    ck_assert_msg(mf && dae_model_save_f16(mf, half, &e) == DAE_OK, "%s", e.msg);
    dae_modelfile *mh = dae_modelfile_load(half, NULL, &e);
    ck_assert_msg(mh != NULL, "%s", e.msg);
    ck_assert_int_eq(mf->params_f16, 0);
    ck_assert_int_eq(mh->params_f16, 1);
    unsigned char *enc = malloc(2 * m->n_params);
    float *ref = malloc(m->n_params * sizeof *ref);
    dae_f16_encode(m->params, m->n_params, enc);
    dae_f16_decode(enc, m->n_params, ref);
    ck_assert_int_eq(memcmp(mh->model->params, ref, m->n_params * sizeof *ref), 0);
    ck_assert_uint_lt(mh->file_bytes, mf->file_bytes);
    char *lic = dae_modelfile_meta(mh, "license");
    ck_assert_str_eq(lic ? lic : "(none)", "Test notice");
    ck_assert_str_eq(mh->config_json, BASE);
    free(lic);
    free(enc);
    free(ref);
    dae_modelfile_free(mh);
    dae_modelfile_free(mf);
    dae_model_free(m);
    rm_tmpdir();
}
END_TEST

/* dae_modelfile_load uses a file's data in place when its parameters are stored in the
 * model's order (as dae_modelfile_save writes them) and copies them otherwise (here: the
 * same tensors in reverse order); both give the same parameters, and the in-place ones
 * are writable when the file was copied (training from a loaded file). */
START_TEST(test_params_in_place)
{
    mk_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/inplace.safetensors", tmpdir);
    dae_model *m = model_with_pattern(BASE);
    dae_error e = {0};
    ck_assert_msg(dae_modelfile_save(path, m, BASE, NULL, &e) == DAE_OK, "%s", e.msg);
    dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_int_eq(mf->model->params_external, 1);
    ck_assert_ptr_nonnull(mf->buf);
    ck_assert_int_eq(memcmp(mf->model->params, m->params, m->n_params * sizeof(float)), 0);
    ck_assert_int_eq(mf->buf_mapped, 0); /* a writable filesystem: copied under AUTO */
    mf->model->params[m->n_params - 1] += 1.0f;
    dae_modelfile_free(mf);

    /* mapped (ALWAYS; AUTO maps only on a read-only filesystem): the same parameters, in
     * the mapping; freeing unmaps it (valgrind/ASan would see a leak otherwise) */
    dae_modelfile_limits lim = dae_modelfile_default_limits();
    lim.map = DAE_FILE_MAP_ALWAYS;
    mf = dae_modelfile_load(path, &lim, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_int_eq(mf->buf_mapped, 1);
    ck_assert_int_eq(mf->model->params_external, 1);
    ck_assert_int_eq(memcmp(mf->model->params, m->params, m->n_params * sizeof(float)), 0);
    dae_modelfile_free(mf);
    lim.map = DAE_FILE_MAP_NEVER;
    mf = dae_modelfile_load(path, &lim, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_int_eq(mf->buf_mapped, 0);
    dae_modelfile_free(mf);

    /* the same tensors in the model's order, then reversed (out of place from the first
     * tensor on) and with the last two swapped (a run in place, then copies) */
    dae_st_out fwd[64], ts[64];
    char names[64][96];
    int nt = 0;
    for (int i = 0; i < m->n_enc + m->n_dec; i++)
        for (int bias = 0; bias < 2; bias++) {
            const dae_layer *l = &m->layers[i];
            size_t n = bias ? l->n_b : l->n_w, off = bias ? l->b_off : l->w_off;
            if (n == 0)
                continue;
            dae_model_param_name(m, i, bias, names[nt], sizeof names[nt]);
            fwd[nt] = (dae_st_out){.name = names[nt], .dtype = "F32",
                                   .data = m->params + off};
            fwd[nt].ndim = dae_model_param_shape(m, i, bias, fwd[nt].shape);
            nt++;
        }
    ck_assert_int_ge(nt, 3);
    for (int order = 0; order < 2; order++) {
        for (int k = 0; k < nt; k++)
            ts[k] = order == 0 ? fwd[nt - 1 - k] : fwd[k < nt - 2 ? k : 2 * nt - 3 - k];
        const char *meta[] = {"format", "daed-1", "config", BASE, NULL};
        ck_assert_msg(dae_st_write(path, ts, nt, meta, &e) == DAE_OK, "%s", e.msg);
        for (int map = 0; map < 2; map++) { /* copied and mapped: the mapping is released */
            lim.map = map ? DAE_FILE_MAP_ALWAYS : DAE_FILE_MAP_NEVER;
            mf = dae_modelfile_load(path, &lim, &e);
            ck_assert_msg(mf != NULL, "%s", e.msg);
            ck_assert_int_eq(mf->model->params_external, 0);
            ck_assert_ptr_null(mf->buf);
            ck_assert_int_eq(memcmp(mf->model->params, m->params, m->n_params * sizeof(float)),
                             0);
            dae_modelfile_free(mf);
        }
    }
    unlink(path);
    dae_model_free(m);
    rm_tmpdir();
}
END_TEST

START_TEST(test_mlp_stem_name_defaults)
{
    mk_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/my-model.v2.safetensors", tmpdir);
    dae_model *m = model_with_pattern(MLP);
    dae_error e = {0};
    ck_assert_msg(dae_modelfile_save(path, m, MLP, NULL, &e) == DAE_OK, "%s", e.msg);
    dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_str_eq(mf->name, "my-model.v2");
    ck_assert_uint_eq(mf->tasks, DAE_TASK_DENOISE);
    ck_assert_int_eq(mf->calib.n, 0);
    ck_assert(dae_calibration_percentile(&mf->calib, 1.0) == -1);
    ck_assert_int_eq(memcmp(mf->model->params, m->params, m->n_params * sizeof(float)), 0);
    ck_assert_int_eq(mf->model->out_shape.h, 4);
    dae_modelfile_free(mf);

    /* limits and missing files */
    dae_modelfile_limits lim = dae_modelfile_default_limits();
    lim.max_file_bytes = 100;
    ck_assert_ptr_null(dae_modelfile_load(path, &lim, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
    lim = dae_modelfile_default_limits();
    lim.max_layers = 2;
    ck_assert_ptr_null(dae_modelfile_load(path, &lim, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "config: \"encoder\" has 3 layers, the limit is 2"));
    snprintf(path, sizeof path, "%s/absent.safetensors", tmpdir);
    ck_assert_ptr_null(dae_modelfile_load(path, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ENOTFOUND);
    dae_model_free(m);
    rm_tmpdir();
}
END_TEST

START_TEST(test_shuffle_noise_map_file)
{
    dae_model *m = model_with_pattern(FFD);
    ck_assert_int_eq(m->noise_map, 1);
    ck_assert_int_eq(m->residual, 1);
    ck_assert_int_eq(m->layers[0].kind, DAE_LAYER_PIXEL_UNSHUFFLE);
    ck_assert_int_eq(m->layers[0].factor, 2);
    ck_assert_int_eq(m->layers[4].kind, DAE_LAYER_PIXEL_SHUFFLE);
    ck_assert_int_eq(m->out_shape.c, 1);
    char *a = dae_model_arch_json(m);
    ck_assert_ptr_nonnull(strstr(a, "\"input\":[2,8,8],\"output\":[1,8,8],\"residual\":true,"
                                    "\"noise_map\":true,"));
    ck_assert_ptr_nonnull(strstr(a, "{\"type\":\"pixel_unshuffle\",\"downscale_factor\":2}"));
    ck_assert_ptr_nonnull(strstr(a, "{\"type\":\"pixel_shuffle\",\"upscale_factor\":2}"));
    dae_error e = {0};
    dae_model *m2 = dae_model_from_config(a, &e);
    ck_assert_msg(m2 != NULL, "%s", e.msg);
    char *b = dae_model_arch_json(m2);
    ck_assert_str_eq(a, b);
    free(a), free(b);
    dae_model_free(m2);
    /* a model without the map says nothing about it (older files stay as they were) */
    m2 = model_with_pattern(BASE);
    a = dae_model_arch_json(m2);
    ck_assert_ptr_null(strstr(a, "noise_map"));
    free(a);
    dae_model_free(m2);

    /* file round trip; a config without the map does not describe the model */
    mk_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/ffd.safetensors", tmpdir);
    ck_assert_msg(dae_modelfile_save(path, m, FFD, NULL, &e) == DAE_OK, "%s", e.msg);
    dae_modelfile *mf = dae_modelfile_load(path, NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_int_eq(mf->model->noise_map, 1);
    ck_assert_int_eq(mf->model->layers[4].factor, 2);
    ck_assert_int_eq(memcmp(mf->model->params, m->params, m->n_params * sizeof(float)), 0);
    dae_modelfile_free(mf);
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s", FFD);
    memcpy(strstr(cfg, "\"noise_map\":true"), "\"noise_map\":0   ", 16);
    ck_assert_ptr_null(dae_model_from_config(cfg, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "config: noise_map is not true or false"));
    rm_tmpdir();
    dae_model_free(m);

    /* add layers: round trip; the source must be an earlier layer of the same shape */
    const char *skip = "{\"input\":[1,8,8],\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":1,"
                       "\"out_channels\":2,\"kernel_size\":3,\"padding\":1},{\"type\":\"relu\"},"
                       "{\"type\":\"add\",\"from\":0}],\"decoder\":[{\"type\":\"add\","
                       "\"from\":1}]}";
    m = dae_model_from_config(skip, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    ck_assert_int_eq(m->layers[3].kind, DAE_LAYER_ADD);
    ck_assert_int_eq(m->layers[3].from, 1);
    a = dae_model_arch_json(m);
    ck_assert_ptr_nonnull(strstr(a, "{\"type\":\"add\",\"from\":0}"));
    m2 = dae_model_from_config(a, &e);
    ck_assert_msg(m2 != NULL, "%s", e.msg);
    b = dae_model_arch_json(m2);
    ck_assert_str_eq(a, b);
    free(a), free(b);
    dae_model_free(m2);
    dae_model_free(m);

    /* bad factors and fields */
    static const char *const bad[][2] = {
        {"{\"type\":\"pixel_unshuffle\",\"downscale_factor\":5}",
         "downscale_factor is 5, expected an integer in [2, 4]"},
        {"{\"type\":\"pixel_unshuffle\"}", "missing \"downscale_factor\""},
        {"{\"type\":\"pixel_shuffle\",\"downscale_factor\":2}", "unknown field"},
        {"{\"type\":\"add\"}", "missing \"from\""},
        {"{\"type\":\"add\",\"from\":-1}", "from is -1, expected the index of an earlier"},
        {"{\"type\":\"relu\"},{\"type\":\"add\",\"from\":1}",
         "encoder.1 (add): from 1, expected an earlier layer 0..0"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char c[512];
        snprintf(c, sizeof c, "{\"input\":[1,8,8],\"encoder\":[%s],\"decoder\":[]}",
                 bad[k][0]);
        ck_assert_ptr_null(dae_model_from_config(c, &e));
        ck_assert_msg(strstr(e.msg, bad[k][1]), "%s", e.msg);
    }
}
END_TEST

START_TEST(test_arch_json)
{
    dae_model *m = model_with_pattern(BASE);
    char *a = dae_model_arch_json(m);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(strstr(a, "\"input\":[1,8,8],\"output\":[1,8,8],\"residual\":false"));
    ck_assert_ptr_nonnull(strstr(a, "{\"type\":\"leaky_relu\",\"negative_slope\":0.2}"));
    ck_assert_ptr_nonnull(strstr(a, "\"output_padding\":1"));
    ck_assert_ptr_nonnull(strstr(a, "{\"type\":\"upsample\",\"scale_factor\":2,"
                                    "\"mode\":\"bilinear\"}"));
    dae_error e = {0};
    dae_model *m2 = dae_model_from_config(a, &e);
    ck_assert_msg(m2 != NULL, "%s", e.msg);
    char *b = dae_model_arch_json(m2);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    dae_model_free(m2);

    m2 = model_with_pattern(MLP);
    a = dae_model_arch_json(m2);
    ck_assert_ptr_nonnull(strstr(a, "{\"type\":\"unflatten\",\"unflattened_size\":[1,4,4]}"));
    ck_assert_ptr_nonnull(strstr(a, "{\"type\":\"flatten\"}"));
    free(a);

    /* saving with a config that does not describe the model: refused, nothing written */
    mk_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/x.safetensors", tmpdir);
    ck_assert_int_eq(dae_modelfile_save(path, m, MLP, NULL, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "config does not describe the model: input is [1,4,4] "
                                        "in the config, [1,8,8] in the model"));
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "%s", BASE);
    strstr(cfg, "0.2}")[2] = '3'; /* negative_slope 0.2 -> 0.3 */
    ck_assert_int_eq(dae_modelfile_save(path, m, cfg, NULL, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "encoder[3] is {\"type\":\"leaky_relu\","
                                        "\"negative_slope\":0.3} in the config"));
    const char *clash[] = {"format", "daed-0", NULL};
    ck_assert_int_eq(dae_modelfile_save(path, m, BASE, clash, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "duplicate metadata key \"format\""));
    const char *odd[] = {"lonely", NULL};
    ck_assert_int_eq(dae_modelfile_save(path, m, BASE, odd, &e), DAE_EINVAL);
    ck_assert_int_eq(count_entries(), 0);
    rm_tmpdir();
    dae_model_free(m);
    dae_model_free(m2);
}
END_TEST

/* ---- malformed files ---- */

typedef struct mcase {
    const char *what;
    const char *from, *to;  /* config = BASE with `from` replaced by `to` (NULL: BASE) */
    const char *format;     /* NULL: "daed-1"; "-": omitted */
    int no_meta, no_config;
    const char *drop;       /* tensor left out */
    const char *extra;      /* extra tensor of shape [2] */
    const char *reshape;    /* this tensor gets shape [4,1,5,5] */
    const char *f16;        /* this tensor is stored as BF16 (2 bytes a value; unsupported) */
    const char *nan;        /* this tensor holds a NaN */
    int code;               /* -1: any */
    const char *needle;
} mcase;

static const mcase mcases[] = {
    {"no metadata", .no_meta = 1, .code = DAE_EFORMAT, .needle = "no __metadata__"},
    {"no format", .format = "-", .code = DAE_EFORMAT,
     .needle = "__metadata__ has no \"format\" (expected \"daed-1\")"},
    {"wrong format", .format = "daed-2", .code = DAE_EFORMAT,
     .needle = "format \"daed-2\", expected \"daed-1\""},
    {"no config", .no_config = 1, .code = DAE_EFORMAT, .needle = "__metadata__ has no \"config\""},
    {"config not JSON", "\"residual\":false,", "\"residual\":false,,", .code = DAE_EFORMAT,
     .needle = "config is not valid JSON"},
    {"config not object", BASE_CFG, "[1,2]", .code = DAE_EFORMAT,
     .needle = "config is not a JSON object"},
    {"duplicate config key", "\"residual\":false", "\"input\":[1,8,8]", .code = DAE_EFORMAT,
     .needle = "config: duplicate key \"input\""},
    {"duplicate layer field", "\"padding\":1},{\"type\":\"relu\"}",
     "\"padding\":1,\"padding\":0},{\"type\":\"relu\"}", .code = DAE_EFORMAT,
     .needle = "config: encoder[0]: duplicate key \"padding\""},
    {"duplicate quantile", "\"p50\":0.01", "\"p50\":0.01,\"p50\":0.02", .code = DAE_EFORMAT,
     .needle = "config: calibration.quantiles: duplicate key \"p50\""},
    {"quantile out of range", "\"p50\"", "\"p100\"", .code = DAE_EFORMAT,
     .needle = "calibration.quantiles key \"p100\""},
    {"bad input", "\"input\":[1,8,8]", "\"input\":[1,0,8]", .code = DAE_EFORMAT,
     .needle = "config: input is [1,0,8], expected [C,H,W] of positive integers"},
    {"residual not bool", "\"residual\":false", "\"residual\":0", .code = DAE_EFORMAT,
     .needle = "config: residual is not true or false"},
    {"missing decoder", "\"decoder\"", "\"decodr\"", .code = DAE_EFORMAT,
     .needle = "config: missing \"decoder\" (a list of layers)"},
    {"unknown layer type", "{\"type\":\"relu\"}", "{\"type\":\"swish\"}", .code = DAE_EFORMAT,
     .needle = "config: encoder[1]: unknown layer type \"swish\""},
    {"layer without type", "{\"type\":\"relu\"}", "{\"typ\":\"relu\"}", .code = DAE_EFORMAT,
     .needle = "config: encoder[1]: missing \"type\" string"},
    {"unknown layer field", "\"out_channels\":4,\"kernel_size\":3,\"stride\":2",
     "\"out_channels\":4,\"kernal_size\":3,\"stride\":2", .code = DAE_EFORMAT,
     .needle = "config: encoder[0] (conv2d): unknown field \"kernal_size\""},
    {"bad layer field", "\"out_channels\":4,\"kernel_size\":3,\"stride\":2",
     "\"out_channels\":4,\"kernel_size\":0,\"stride\":2", .code = DAE_EFORMAT,
     .needle = "config: encoder[0] (conv2d): kernel_size is 0, expected an integer in [1, 64]"},
    {"non-square kernel", "\"kernel_size\":[3,3]", "\"kernel_size\":[3,5]", .code = DAE_EFORMAT,
     .needle = "encoder[2] (conv2d): kernel_size is [3,5], expected an integer in [1, 64] "
               "(or [n, n]: square only)"},
    {"missing layer field", "\"out_channels\":1,", "", .code = DAE_EFORMAT,
     .needle = "config: decoder[3] (conv2d): missing \"out_channels\""},
    {"unsupported dilation", "\"out_channels\":1,", "\"out_channels\":1,\"dilation\":2,",
     .code = DAE_EFORMAT, .needle = "decoder[3] (conv2d): dilation is 2, only 1 is supported"},
    {"output_padding >= stride", "\"output_padding\":1", "\"output_padding\":2",
     .code = DAE_EFORMAT, .needle = "output_padding 2 must be smaller than stride 2"},
    {"bad upsample mode", "\"bilinear\"", "\"bicubic\"", .code = DAE_EFORMAT,
     .needle = "decoder[2] (upsample): mode is \"bicubic\", expected \"nearest\" or "
               "\"bilinear\""},
    {"bad slope", "\"negative_slope\":0.2", "\"negative_slope\":\"x\"", .code = DAE_EFORMAT,
     .needle = "negative_slope is \"x\", expected a finite number"},
    {"layer does not fit", "\"in_channels\":4,\"out_channels\":8",
     "\"in_channels\":5,\"out_channels\":8", .code = -1, .needle = "tiny.safetensors: config: "},
    {"output shape mismatch", "\"output\":[1,8,8]", "\"output\":[1,9,9]", .code = DAE_ESHAPE,
     .needle = "config: output is [1,9,9] but the layers produce [1,8,8] from input [1,8,8]"},
    {"unknown task", "\"score\"]", "\"paint\"]", .code = DAE_EFORMAT,
     .needle = "config: unknown task \"paint\""},
    {"bad name", "\"tiny\"", "\"../x\"", .code = DAE_EFORMAT, .needle = "config: name is \"../x\""},
    {"decreasing quantiles", "\"p99\":0.04", "\"p99\":0.015", .code = DAE_EFORMAT,
     .needle = "quantiles decrease: p99 = 0.015 < p90 = 0.02"},
    {"bad quantile key", "\"p50\"", "\"median\"", .code = DAE_EFORMAT,
     .needle = "calibration.quantiles key \"median\""},
    {"missing tensor", .drop = "decoder.3.bias", .code = DAE_EFORMAT,
     .needle = "tiny.safetensors: tensor decoder.3.bias: missing (layer decoder[3], conv2d, "
               "needs shape [1])"},
    {"extra tensor", .extra = "encoder.9.weight", .code = DAE_EFORMAT,
     .needle = "tiny.safetensors: tensor encoder.9.weight: unexpected"},
    {"wrong tensor shape", .reshape = "encoder.0.weight", .code = DAE_ESHAPE,
     .needle = "tiny.safetensors: tensor encoder.0.weight: shape [4,1,5,5], expected [4,1,3,3]"},
    {"wrong dtype", .f16 = "encoder.2.weight", .code = DAE_EFORMAT,
     .needle = "tiny.safetensors: tensor encoder.2.weight: dtype BF16, expected F32 or F16"},
    {"NaN weight", .nan = "encoder.2.bias", .code = DAE_EFORMAT,
     .needle = "tensor encoder.2.bias: value 0 is NaN"},
};

static char *replace_once(const char *s, const char *from, const char *to)
{
    const char *p = strstr(s, from);
    ck_assert_msg(p != NULL, "\"%s\" not in the base config", from);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *r = malloc(n);
    ck_assert_ptr_nonnull(r);
    snprintf(r, n, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    return r;
}

/* A model file for the case, built by hand so it can be wrong in any way. */
static unsigned char *case_blob(const mcase *c, size_t *len)
{
    dae_error e = {0};
    dae_model *m = dae_model_from_config(BASE, &e);
    ck_assert_ptr_nonnull(m);
    char *cfg = c->from ? replace_once(BASE, c->from, c->to) : strdup(BASE);
    cJSON *h = cJSON_CreateObject();
    if (!c->no_meta) {
        cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
        if (!c->format || strcmp(c->format, "-") != 0)
            cJSON_AddStringToObject(meta, "format", c->format ? c->format : "daed-1");
        if (!c->no_config)
            cJSON_AddStringToObject(meta, "config", cfg);
    }
    size_t cap = m->n_params * 4 + 1024, off = 0;
    unsigned char *data = calloc(1, cap);
    for (int i = 0; i <= m->n_enc + m->n_dec; i++) {
        for (int bias = 0; bias < 2; bias++) {
            char name[96];
            int64_t d[4] = {2, 0, 0, 0};
            int nd = 1;
            if (i == m->n_enc + m->n_dec) { /* the optional extra tensor */
                if (bias || !c->extra)
                    continue;
                snprintf(name, sizeof name, "%s", c->extra);
            } else {
                nd = dae_model_param_shape(m, i, bias, d);
                if (nd == 0)
                    continue;
                dae_model_param_name(m, i, bias, name, sizeof name);
            }
            if (c->drop && strcmp(name, c->drop) == 0)
                continue;
            if (c->reshape && strcmp(name, c->reshape) == 0) {
                nd = 4;
                d[0] = 4, d[1] = 1, d[2] = 5, d[3] = 5;
            }
            int f16 = c->f16 && strcmp(name, c->f16) == 0;
            size_t n = 1;
            for (int k = 0; k < nd; k++)
                n *= (size_t)d[k];
            size_t bytes = n * (f16 ? 2 : 4);
            ck_assert_uint_le(off + bytes, cap);
            for (size_t k = 0; !f16 && k < n; k++) {
                float v = (c->nan && strcmp(name, c->nan) == 0) ? NAN : (float)k * 0.01f;
                memcpy(data + off + 4 * k, &v, 4);
            }
            cJSON *t = cJSON_AddObjectToObject(h, name);
            cJSON_AddStringToObject(t, "dtype", f16 ? "BF16" : "F32");
            double dd[4] = {(double)d[0], (double)d[1], (double)d[2], (double)d[3]};
            cJSON_AddItemToObject(t, "shape", cJSON_CreateDoubleArray(dd, nd));
            double o[2] = {(double)off, (double)(off + bytes)};
            cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateDoubleArray(o, 2));
            off += bytes;
        }
    }
    char *text = cJSON_PrintUnformatted(h);
    size_t tl = strlen(text);
    *len = 8 + tl + off;
    unsigned char *b = malloc(*len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)tl >> (8 * i));
    memcpy(b + 8, text, tl);
    memcpy(b + 8 + tl, data, off);
    free(text);
    free(data);
    free(cfg);
    cJSON_Delete(h);
    dae_model_free(m);
    return b;
}

START_TEST(test_malformed_table)
{
    const mcase *c = &mcases[_i];
    size_t len;
    unsigned char *b = case_blob(c, &len);
    dae_error e = {0};
    dae_modelfile *mf = dae_modelfile_parse(b, len, "tiny.safetensors", NULL, &e);
    ck_assert_msg(mf == NULL, "case %s: accepted", c->what);
    if (c->code >= 0)
        ck_assert_msg(e.code == c->code, "case %s: code %d, expected %d (%s)", c->what, e.code,
                      c->code, e.msg);
    ck_assert_msg(strncmp(e.msg, "tiny.safetensors: ", 18) == 0,
                  "case %s: \"%s\" does not name the file", c->what, e.msg);
    ck_assert_msg(strstr(e.msg, c->needle) != NULL, "case %s: message \"%s\" lacks \"%s\"",
                  c->what, e.msg, c->needle);
    free(b);
}
END_TEST

/* The table's generator itself makes a valid file when nothing is wrong. */
START_TEST(test_case_blob_valid)
{
    mcase ok = {"valid", .code = 0};
    size_t len;
    unsigned char *b = case_blob(&ok, &len);
    dae_error e = {0};
    dae_modelfile *mf = dae_modelfile_parse(b, len, "tiny.safetensors", NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert(mf->model->params[mf->model->layers[0].w_off + 2] == 0.02f);
    dae_modelfile_free(mf);

    /* every truncation of a valid file is rejected with the file's name, never a crash */
    for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 97)) {
        unsigned char *t = malloc(cut + 1);
        memcpy(t, b, cut);
        mf = dae_modelfile_parse(t, cut, "tiny.safetensors", NULL, &e);
        ck_assert_msg(mf == NULL, "cut at %zu accepted", cut);
        ck_assert_int_eq(strncmp(e.msg, "tiny.safetensors: ", 18), 0);
        free(t);
    }
    free(b);
}
END_TEST

/* Random byte flips and cuts of a valid file: accepted or refused with the file's name,
 * never a crash (this suite also runs under ASan/UBSan). */
START_TEST(test_mutations)
{
    mcase ok = {"valid", .code = 0};
    size_t len;
    unsigned char *b = case_blob(&ok, &len);
    unsigned char *m = malloc(len);
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    int refused = 0;
    for (int it = 0; it < 1500; it++) {
        memcpy(m, b, len);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(st >> 33) % len;
            /* mostly the header, where the parser's decisions are */
            if (it % 3 != 2)
                at %= 8 + 700 < len ? 8 + 700 : len;
            m[at] = (unsigned char)(st >> 17);
        }
        size_t n = it % 5 == 4 ? (size_t)(st >> 40) % len : len;
        dae_error e = {0};
        dae_modelfile *mf = dae_modelfile_parse(m, n, "mut.safetensors", NULL, &e);
        if (mf) {
            dae_modelfile_free(mf);
            continue;
        }
        refused++;
        ck_assert_msg(strncmp(e.msg, "mut.safetensors: ", 17) == 0 && strlen(e.msg) > 17,
                      "iteration %d: \"%s\"", it, e.msg);
    }
    ck_assert_int_gt(refused, 1000);
    free(m);
    free(b);
}
END_TEST

START_TEST(test_tasks_and_percentile)
{
    ck_assert_uint_eq(dae_task_from_name("inpaint"), DAE_TASK_INPAINT);
    ck_assert_uint_eq(dae_task_from_name("encode"), DAE_TASK_ENCODE);
    ck_assert_uint_eq(dae_task_from_name("Denoise"), 0);
    ck_assert_uint_eq(dae_task_from_name(NULL), 0);
    ck_assert_str_eq(dae_task_name(DAE_TASK_SUPERRES), "superres");
    ck_assert_str_eq(dae_task_name(DAE_TASK_SCORE), "score");
    ck_assert_ptr_null(dae_task_name(DAE_TASK_SCORE | DAE_TASK_DENOISE));

    dae_calibration c = {.n = 3, .level = {0.5, 0.9, 0.99}, .value = {1, 2, 4}};
    ck_assert(fabs(dae_calibration_percentile(&c, 0.5) - 25) < 1e-9);
    ck_assert(fabs(dae_calibration_percentile(&c, 0) - 0) < 1e-9);
    ck_assert(fabs(dae_calibration_percentile(&c, 1) - 50) < 1e-9);
    ck_assert(fabs(dae_calibration_percentile(&c, 1.5) - 70) < 1e-9);
    ck_assert(fabs(dae_calibration_percentile(&c, 3) - 94.5) < 1e-9);
    ck_assert(fabs(dae_calibration_percentile(&c, 4) - 99) < 1e-9);
    ck_assert(fabs(dae_calibration_percentile(&c, 8) - 99.5) < 1e-9);
    ck_assert(dae_calibration_percentile(&c, INFINITY) == 100);
    ck_assert(dae_calibration_percentile(&c, NAN) == -1);
    double prev = -1;
    for (double s = 0; s < 50; s += 0.01) { /* monotone, within [0,100] */
        double p = dae_calibration_percentile(&c, s);
        ck_assert(p >= prev - 1e-12 && p >= 0 && p <= 100);
        prev = p;
    }
    dae_calibration none = {0};
    ck_assert(dae_calibration_percentile(&none, 1) == -1);
    ck_assert(dae_calibration_percentile(NULL, 1) == -1);
}
END_TEST

/* ---- a file written by the Python of docs/model-format.md, against PyTorch's output ---- */

#define FIXTURE "tests/fixtures/modelfile/pytorch_conv"

static float *read_f32(const char *path, size_t n)
{
    unsigned char *buf;
    size_t len;
    dae_error e = {0};
    ck_assert_msg(dae_file_read(path, 1 << 20, &buf, &len, &e) == DAE_OK, "%s", e.msg);
    ck_assert_uint_eq(len, n * sizeof(float));
    return (float *)buf;
}

START_TEST(test_pytorch_fixture)
{
    dae_error e = {0};
    dae_modelfile *mf = dae_modelfile_load(FIXTURE ".safetensors", NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_str_eq(mf->name, "pytorch-conv");
    ck_assert_uint_eq(mf->tasks, DAE_TASK_DENOISE | DAE_TASK_SCORE);
    ck_assert_int_eq(mf->calib.n, 2);
    ck_assert(mf->calib.threshold == 0.05);
    ck_assert(mf->model->layers[1].slope == 0.2f);
    ck_assert_int_eq(mf->model->fully_conv, 1);
    ck_assert_int_eq(mf->model->size_div, 4);
    static const struct {
        const char *tag;
        int B;
        dae_shape s;
    } runs[] = {{"a", 3, {1, 8, 8}}, {"b", 2, {1, 12, 16}}};
    dae_shape max = {1, 12, 16};
    dae_workspace *ws = dae_workspace_create(mf->model, 3, max, 0, &e);
    ck_assert_msg(ws != NULL, "%s", e.msg);
    for (int r = 0; r < 2; r++) {
        size_t n = (size_t)runs[r].B * runs[r].s.h * runs[r].s.w;
        char p[128];
        snprintf(p, sizeof p, FIXTURE ".%s.in.f32", runs[r].tag);
        float *x = read_f32(p, n);
        snprintf(p, sizeof p, FIXTURE ".%s.out.f32", runs[r].tag);
        float *want = read_f32(p, n);
        const float *y;
        dae_shape ys;
        ck_assert_msg(dae_model_forward(mf->model, ws, x, runs[r].B, runs[r].s, &y, &ys, &e) ==
                      DAE_OK, "%s", e.msg);
        ck_assert(ys.c == 1 && ys.h == runs[r].s.h && ys.w == runs[r].s.w);
        double md = 0;
        for (size_t i = 0; i < n; i++)
            md = fmax(md, fabs((double)y[i] - want[i]));
        ck_assert_msg(md < 1e-5, "run %s: max |daed - torch| = %g", runs[r].tag, md);
        free(x);
        free(want);
    }
    dae_workspace_free(ws);
    dae_modelfile_free(mf);
}
END_TEST

/* ---- score tensors (calibration "terms" + "score.*" tensors) ---- */

#define SCORE_CAL \
    "{\"score\":\"bmse1+knn1\",\"terms\":[{\"kind\":\"recon\",\"blur\":1,\"top\":0," \
    "\"mean\":0.01,\"std\":0.02,\"weight\":1},{\"kind\":\"knn\",\"k\":1,\"blur\":0," \
    "\"mean\":3,\"std\":0.5,\"weight\":2,\"tensor\":\"score.bank\"}]," \
    "\"quantiles\":{\"p50\":0.1,\"p99\":2},\"threshold\":2}"
#define BASE_CAL \
    "{\"score\":\"mse\",\"quantiles\":{\"p99\":0.04,\"p50\":0.01,\"p90\":0.02},\"threshold\":0.05}"

typedef struct scase {
    const char *what;
    const char *from, *to;  /* applied to SCORE_CAL (NULL: as is) */
    const char *cal;        /* whole calibration instead (e.g. BASE_CAL) */
    const char *tname;      /* the score tensor's name ("-": none); NULL: "score.bank" */
    const char *dtype;      /* NULL: F32 */
    int ndim;               /* 0: 2 */
    int64_t rows, cols;     /* 0: 5, 64 */
    int nan;
    const char *tname2;     /* a second F32 [2,64] tensor */
    int code;
    const char *needle;
} scase;

static const scase scases[] = {
    {"missing declared tensor", .tname = "-", .code = DAE_EFORMAT,
     .needle = "tensor score.bank: missing (declared by calibration.terms[1], knn1)"},
    {"undeclared score tensor", .tname2 = "score.extra", .code = DAE_EFORMAT,
     .needle = "tensor score.extra: unexpected (calibration \"bmse1+knn1\" declares no such "
               "score tensor)"},
    {"score tensor in an mse file", .cal = BASE_CAL, .code = DAE_EFORMAT,
     .needle = "tensor score.bank: unexpected (calibration \"mse\" declares no such score "
               "tensor)"},
    {"wrong bank width", .cols = 63, .code = DAE_ESHAPE,
     .needle = "tensor score.bank: shape [5,63], expected [N,64] with 1 <= N <= 4194304"},
    {"1-d bank", .ndim = 1, .rows = 320, .code = DAE_ESHAPE,
     .needle = "tensor score.bank: shape [320], expected [N,64]"},
    {"bank rows below k", .cal = "{\"score\":\"knn9\",\"terms\":[{\"kind\":\"knn\","
     "\"k\":9,\"tensor\":\"score.bank\"}]}", .rows = 4, .code = DAE_ESHAPE,
     .needle = "tensor score.bank: shape [4,64], expected [N,64] with 9 <= N"},
    {"k mismatch", "\"k\":1", "\"k\":9", .code = DAE_EFORMAT,
     .needle = "calibration.terms[1]: blur 0, top 0, k 9 do not match the score's term 1"},
    {"F16 bank", .dtype = "F16", .code = DAE_EFORMAT,
     .needle = "tensor score.bank: dtype F16, expected F32"},
    {"NaN in bank", .nan = 1, .code = DAE_EFORMAT,
     .needle = "tensor score.bank: value 17 is NaN"},
    {"knn without terms", .cal = "{\"score\":\"knn1\",\"threshold\":1}", .code = DAE_EFORMAT,
     .needle = "calibration.score \"knn1\" has a knn term, which needs \"terms\""},
    {"unknown score", .cal = "{\"score\":\"psnr\"}", .tname = "-", .code = DAE_EFORMAT,
     .needle = "config: calibration.score \"psnr\": score spec: bad term \"psnr\""},
    {"terms count", "\"bmse1+knn1\"", "\"bmse1+knn1+mse\"", .code = DAE_EFORMAT,
     .needle = "calibration.terms must be a list of 3 term objects"},
    {"terms not a list", "\"terms\":[", "\"terms\":3,\"x\":[", .code = DAE_EFORMAT,
     .needle = "calibration.terms must be a list of 2 term objects"},
    {"kind mismatch", "\"kind\":\"recon\"", "\"kind\":\"knn\"", .code = DAE_EFORMAT,
     .needle = "calibration.terms[0]: kind is \"knn\", expected \"recon\" (term 0 of the "
               "score)"},
    {"blur mismatch", "\"blur\":1,", "\"blur\":2,", .code = DAE_EFORMAT,
     .needle = "calibration.terms[0]: blur 2, top 0, k 1 do not match the score's term 0"},
    {"bad tensor name", "\"score.bank\"", "\"bank\"", .code = DAE_EFORMAT,
     .needle = "calibration.terms[1]: tensor is \"bank\", expected \"score.<name>\""},
    {"knn term without tensor", ",\"tensor\":\"score.bank\"", "", .code = DAE_EFORMAT,
     .needle = "calibration.terms[1]: tensor is missing"},
    {"tensor used twice", .cal = "{\"score\":\"knn1+knn1b1\",\"terms\":[{\"kind\":\"knn\","
     "\"k\":1,\"tensor\":\"score.bank\"},{\"kind\":\"knn\",\"k\":1,\"blur\":1,"
     "\"tensor\":\"score.bank\"}]}", .code = DAE_EFORMAT,
     .needle = "calibration.terms[1]: tensor \"score.bank\" is already used by term 0"},
    {"unknown term field", "\"top\":0,", "\"top\":0,\"pool\":1,", .code = DAE_EFORMAT,
     .needle = "calibration.terms[0]: unknown field \"pool\""},
    {"zero std", "\"std\":0.02", "\"std\":0", .code = DAE_EFORMAT,
     .needle = "calibration.terms[0]: std is 0, expected a number in"},
    {"string mean", "\"mean\":3", "\"mean\":\"3\"", .code = DAE_EFORMAT,
     .needle = "calibration.terms[1]: mean is \"3\", expected a number"},
    {"recon term with tensor", "\"weight\":1}", "\"weight\":1,\"tensor\":\"score.x\"}",
     .code = DAE_EFORMAT, .needle = "calibration.terms[0]: a recon term has no k or tensor"},
    {"knn term with top", "\"k\":1,", "\"k\":1,\"top\":3,", .code = DAE_EFORMAT,
     .needle = "calibration.terms[1]: a knn term has no top"},
    {"fractional k", "\"k\":1,", "\"k\":1.5,", .code = DAE_EFORMAT,
     .needle = "calibration.terms[1]: top and k must be integers"},
    {"duplicate term key", "\"mean\":3,", "\"mean\":3,\"mean\":4,", .code = DAE_EFORMAT,
     .needle = "config: calibration.terms[1]: duplicate key \"mean\""},
};

/* BASE with calibration `cal`, its parameters, and the case's score tensors. */
static unsigned char *score_blob(const scase *c, size_t *len)
{
    dae_error e = {0};
    char *cal = c->cal ? strdup(c->cal)
                       : c->from ? replace_once(SCORE_CAL, c->from, c->to) : strdup(SCORE_CAL);
    char *cfg = replace_once(BASE, BASE_CAL, cal);
    dae_model *m = model_with_pattern(BASE);
    dae_st_out ts[40];
    char names[40][96];
    int nt = 0;
    for (int i = 0; i < m->n_enc + m->n_dec; i++)
        for (int bias = 0; bias < 2; bias++) {
            int64_t d[4];
            int nd = dae_model_param_shape(m, i, bias, d);
            if (nd == 0)
                continue;
            dae_model_param_name(m, i, bias, names[nt], sizeof names[nt]);
            ts[nt] = (dae_st_out){.name = names[nt], .dtype = "F32", .ndim = nd,
                                  .data = m->params + (bias ? m->layers[i].b_off
                                                            : m->layers[i].w_off)};
            memcpy(ts[nt].shape, d, sizeof d);
            nt++;
        }
    int64_t rows = c->rows ? c->rows : 5, cols = c->cols ? c->cols : 64;
    float *bank = calloc((size_t)(rows * cols + 128), sizeof(float));
    for (int64_t i = 0; i < rows * cols; i++)
        bank[i] = (float)(i % 7) * 0.1f;
    if (c->nan)
        bank[17] = NAN;
    if (!c->tname || strcmp(c->tname, "-") != 0) {
        ts[nt] = (dae_st_out){.name = c->tname ? c->tname : "score.bank",
                              .dtype = c->dtype ? c->dtype : "F32", .ndim = c->ndim ? c->ndim : 2,
                              .data = bank};
        ts[nt].shape[0] = rows;
        ts[nt].shape[1] = cols;
        nt++;
    }
    if (c->tname2) {
        ts[nt] = (dae_st_out){.name = c->tname2, .dtype = "F32", .ndim = 2, .data = bank};
        ts[nt].shape[0] = 2;
        ts[nt].shape[1] = 64;
        nt++;
    }
    char path[512];
    mk_tmpdir();
    snprintf(path, sizeof path, "%s/s.safetensors", tmpdir);
    const char *meta[] = {"format", "daed-1", "config", cfg, NULL};
    ck_assert_msg(dae_st_write(path, ts, nt, meta, &e) == DAE_OK, "%s", e.msg);
    unsigned char *buf;
    ck_assert_int_eq(dae_file_read(path, 1 << 24, &buf, len, &e), DAE_OK);
    unlink(path);
    rm_tmpdir();
    free(bank);
    free(cal);
    free(cfg);
    dae_model_free(m);
    return buf;
}

START_TEST(test_score_tensors_valid)
{
    scase ok = {"valid", .code = 0};
    size_t len;
    unsigned char *b = score_blob(&ok, &len);
    dae_error e = {0};
    dae_modelfile *mf = dae_modelfile_parse(b, len, "tiny.safetensors", NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert_str_eq(mf->calib.score, "bmse1+knn1");
    ck_assert_int_eq(mf->n_score_tensors, 1);
    ck_assert_str_eq(mf->score_tensors[0].name, "score.bank");
    ck_assert(mf->score_tensors[0].shape[0] == 5 && mf->score_tensors[0].shape[1] == 64);
    ck_assert(mf->score_tensors[0].data[8] == 0.1f);
    ck_assert_int_eq(mf->score.n_terms, 2);
    ck_assert(mf->score.term[0].blur == 1.0f && mf->score.term[0].mean == 0.01 &&
              mf->score.term[0].std == 0.02);
    ck_assert(mf->score.term[1].k == 1 && mf->score.term[1].weight == 2 &&
              mf->score.term[1].bank == mf->score_tensors[0].data &&
              mf->score.term[1].bank_n == 5);
    ck_assert(mf->calib.threshold == 2);
    dae_scorer *sc = dae_modelfile_scorer(mf, &e);
    ck_assert_msg(sc != NULL, "%s", e.msg);
    dae_scorer_free(sc);
    dae_modelfile_free(mf);
    free(b);
    /* an mse file has the plain spec and no score tensors */
    scase mse = {"mse", .cal = BASE_CAL, .tname = "-"};
    b = score_blob(&mse, &len);
    mf = dae_modelfile_parse(b, len, "tiny.safetensors", NULL, &e);
    ck_assert_msg(mf != NULL, "%s", e.msg);
    ck_assert(mf->score.n_terms == 1 && mf->score.term[0].kind == DAE_SCORE_RECON &&
              mf->score.term[0].blur == 0 && mf->n_score_tensors == 0);
    dae_modelfile_free(mf);
    free(b);
}
END_TEST

START_TEST(test_score_tensors_malformed)
{
    const scase *c = &scases[_i];
    size_t len;
    unsigned char *b = score_blob(c, &len);
    dae_error e = {0};
    dae_modelfile *mf = dae_modelfile_parse(b, len, "tiny.safetensors", NULL, &e);
    ck_assert_msg(mf == NULL, "case %s: accepted", c->what);
    if (c->code >= 0)
        ck_assert_msg(e.code == c->code, "case %s: code %d, expected %d (%s)", c->what, e.code,
                      c->code, e.msg);
    ck_assert_msg(strncmp(e.msg, "tiny.safetensors: ", 18) == 0, "case %s: \"%s\"", c->what,
                  e.msg);
    ck_assert_msg(strstr(e.msg, c->needle) != NULL, "case %s: message \"%s\" lacks \"%s\"",
                  c->what, e.msg, c->needle);
    free(b);
}
END_TEST

Suite *suite_modelfile(void)
{
    Suite *s = suite_create("modelfile");
    TCase *tc = tcase_create("roundtrip");
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_params_in_place);
    tcase_add_test(tc, test_mlp_stem_name_defaults);
    tcase_add_test(tc, test_arch_json);
    tcase_add_test(tc, test_shuffle_noise_map_file);
    tcase_add_test(tc, test_tasks_and_percentile);
    tcase_add_test(tc, test_pytorch_fixture);
    suite_add_tcase(s, tc);
    tc = tcase_create("malformed");
    tcase_add_test(tc, test_case_blob_valid);
    tcase_add_test(tc, test_mutations);
    tcase_add_test(tc, test_f16);
    tcase_add_loop_test(tc, test_malformed_table, 0, (int)(sizeof mcases / sizeof mcases[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("score_tensors");
    tcase_add_test(tc, test_score_tensors_valid);
    tcase_add_loop_test(tc, test_score_tensors_malformed, 0,
                        (int)(sizeof scases / sizeof scases[0]));
    suite_add_tcase(s, tc);
    return s;
}

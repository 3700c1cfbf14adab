/* fuzz_modelfile.c — libFuzzer target: dae_modelfile_parse of a whole model file (safetensors
 * header, the config JSON string in its metadata, tensor data). An accepted model must run
 * forward, encode and decode on its nominal input (when that is cheap), and save + load must
 * give back the same parameters.
 * FUZZ_OPTIONS: -max_len=65536 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "fuzz_util.h"

/* Does a decoder layer add an encoder layer's output (a U-Net skip)? Then the decoder
 * cannot run on its own (model.h) and decode must refuse it. */
static int decoder_reads_encoder(const dae_model *m)
{
    for (int i = m->n_enc; i < m->n_enc + m->n_dec; i++)
        if (m->layers[i].kind == DAE_LAYER_ADD && m->layers[i].from < m->n_enc)
            return 1;
    return 0;
}

/* What a worker does with a loaded model: one sample through forward, encode and decode. */
static void run_model(const dae_model *m)
{
    dae_error err = {0};
    FUZZ_CHECK(dae_model_check_input(m, m->in_shape, &err) == DAE_OK);
    size_t nin = dae_shape_size(m->in_shape);
    /* Only cheap models: the point is shapes and memory, not arithmetic. */
    if (nin > ((size_t)1 << 16) || dae_shape_size(m->out_shape) > ((size_t)1 << 16) ||
        dae_model_flops(m, m->in_shape) > 2e7)
        return;
    dae_workspace *ws = dae_workspace_create(m, 1, m->in_shape, 0, &err);
    if (!ws) { /* only a workspace over the model's own caps may be refused */
        fuzz_check_error(err.code, &err);
        FUZZ_CHECK(err.code == DAE_ELIMIT);
        return;
    }
    float *in = malloc(nin * sizeof *in);
    FUZZ_CHECK(in != NULL);
    for (size_t i = 0; i < nin; i++)
        in[i] = (float)(i % 7) / 7.0f;
    const float *out = NULL, *z = NULL;
    dae_shape os = {0}, zs = {0}, ds = {0};
    int rc = dae_model_forward(m, ws, in, 1, m->in_shape, &out, &os, &err);
    if (rc)
        fprintf(stderr, "forward: %s\n", err.msg);
    FUZZ_CHECK(rc == DAE_OK && out != NULL);
    FUZZ_CHECK(os.c == m->out_shape.c && os.h == m->out_shape.h && os.w == m->out_shape.w);
    volatile float sink = 0; /* read every output value (ASan) */
    for (size_t i = 0; i < dae_shape_size(os); i++)
        sink += out[i];
    rc = dae_model_encode(m, ws, in, 1, m->in_shape, &z, &zs, &err);
    if (rc)
        fprintf(stderr, "encode: %s\n", err.msg);
    FUZZ_CHECK(rc == DAE_OK && z != NULL);
    FUZZ_CHECK(zs.c == m->latent_shape.c && zs.h == m->latent_shape.h &&
               zs.w == m->latent_shape.w);
    float *zc = malloc(dae_shape_size(zs) * sizeof *zc);
    FUZZ_CHECK(zc != NULL);
    memcpy(zc, z, dae_shape_size(zs) * sizeof *zc);
    rc = dae_model_decode(m, ws, zc, 1, zs, &out, &ds, &err);
    if (decoder_reads_encoder(m)) {
        FUZZ_CHECK(rc == DAE_EINVAL);
        free(zc);
        free(in);
        dae_workspace_free(ws);
        return;
    }
    if (rc)
        fprintf(stderr, "decode: %s\n", err.msg);
    FUZZ_CHECK(rc == DAE_OK && out != NULL);
    if (!m->residual) /* a residual model's decode alone has the decoder's shape too */
        FUZZ_CHECK(ds.c == os.c && ds.h == os.h && ds.w == os.w);
    for (size_t i = 0; i < dae_shape_size(ds); i++)
        sink += out[i];
    (void)sink;
    free(zc);
    free(in);
    dae_workspace_free(ws);
}

/* Save the model with its config and load it back: same parameters, name, tasks and
 * calibration. */
static void round_trip(const dae_modelfile *mf)
{
    const char *dir = fuzz_scratch_dir();
    if (!dir)
        return;
    char path[128];
    snprintf(path, sizeof path, "%s/fuzz.safetensors", dir);
    dae_error err = {0};
    int rc = dae_modelfile_save(path, mf->model, mf->config_json, NULL, &err);
    if (rc)
        fprintf(stderr, "save: %s\n", err.msg);
    FUZZ_CHECK(rc == DAE_OK);
    dae_modelfile *back = dae_modelfile_load(path, NULL, &err);
    unlink(path);
    if (!back)
        fprintf(stderr, "load: %s\n", err.msg);
    FUZZ_CHECK(back != NULL);
    const dae_model *a = mf->model, *b = back->model;
    FUZZ_CHECK(a->n_params == b->n_params && a->n_enc == b->n_enc && a->n_dec == b->n_dec);
    FUZZ_CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    FUZZ_CHECK(strcmp(mf->name, back->name) == 0 && mf->tasks == back->tasks);
    FUZZ_CHECK(strcmp(mf->config_json, back->config_json) == 0);
    FUZZ_CHECK(mf->calib.n == back->calib.n);
    dae_modelfile_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dae_modelfile_limits lim = {.max_file_bytes = (size_t)1 << 20,
                                .max_header_bytes = (size_t)1 << 16,
                                .max_layers = 32};
    dae_error err = {0};
    dae_modelfile *mf = dae_modelfile_parse(data, size, "fuzz.safetensors", &lim, &err);
    if (!mf) {
        fuzz_check_error(err.code, &err);
        FUZZ_CHECK(strncmp(err.msg, "fuzz.safetensors: ", 18) == 0);
        return 0;
    }
    fuzz_note("accepted", NULL);
    const dae_model *m = mf->model;
    FUZZ_CHECK(m && m->params && m->n_enc + m->n_dec >= 1);
    FUZZ_CHECK(m->n_enc <= lim.max_layers && m->n_dec <= lim.max_layers);
    FUZZ_CHECK(m->n_params * sizeof(float) <= size); /* every parameter came from the file */
    for (size_t i = 0; i < m->n_params; i++)
        FUZZ_CHECK(isfinite(m->params[i]));
    FUZZ_CHECK(mf->name[0] != '\0' && memchr(mf->name, '\0', sizeof mf->name));
    FUZZ_CHECK(mf->tasks != 0 && mf->config_json && mf->metadata_json);
    FUZZ_CHECK(mf->file_bytes == size);
    const dae_calibration *c = &mf->calib;
    FUZZ_CHECK(c->n >= 0 && c->n <= DAE_CALIB_MAX);
    for (int i = 1; i < c->n; i++)
        FUZZ_CHECK(c->level[i - 1] < c->level[i]);
    if (c->n > 0) { /* the percentile of any score is in [0,100] */
        double p = dae_calibration_percentile(c, c->value[0] * 0.5);
        FUZZ_CHECK(p >= 0.0 && p <= 100.0);
        p = dae_calibration_percentile(c, c->value[c->n - 1] * 2.0 + 1.0);
        FUZZ_CHECK(p >= 0.0 && p <= 100.0);
    }
    run_model(m);
    round_trip(mf);
    dae_modelfile_free(mf);
    return 0;
}

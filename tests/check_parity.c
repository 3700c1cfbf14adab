/* check_parity.c — daed's forward pass against PyTorch: the fixtures of
 * tests/fixtures/make_fixtures.py (model files plus PyTorch's input, latent and output). */
#include "check_quiet.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/error.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/io/safetensors.h"

#define TOL 1e-5

static const char *const FIXTURES[] = {"mlp", "conv", "mixed", "resid", "shuffle", "skip"};
#define N_FIXTURES ((int)(sizeof FIXTURES / sizeof FIXTURES[0]))

typedef struct {
    dae_modelfile *mf;
    int B;
    dae_shape in_shape;
    float *input, *latent, *output; /* owned copies */
    size_t n_input, n_latent, n_output;
    int64_t out_dims[DAE_ST_MAX_DIMS];
    int out_ndim;
} fixture;

static float *tensor_copy(const dae_st_file *f, const char *name, size_t *n, const char *what)
{
    const dae_st_tensor *t = dae_st_find(f, name);
    ck_assert_msg(t != NULL, "%s: no tensor \"%s\"", what, name);
    ck_assert_msg(strcmp(t->dtype, "F32") == 0, "%s: %s is %s", what, name, t->dtype);
    float *x = malloc(t->n_elem * sizeof *x);
    ck_assert_ptr_nonnull(x);
    memcpy(x, t->data, t->n_elem * sizeof *x); /* copy: no alignment assumption */
    *n = t->n_elem;
    return x;
}

static void fixture_load(fixture *fx, const char *name)
{
    char path[256], io[256];
    dae_error err = {0};
    memset(fx, 0, sizeof *fx);
    snprintf(path, sizeof path, "tests/fixtures/%s.safetensors", name);
    snprintf(io, sizeof io, "tests/fixtures/%s.io.safetensors", name);

    fx->mf = dae_modelfile_load(path, NULL, &err);
    ck_assert_msg(fx->mf != NULL, "%s", err.msg);

    unsigned char *buf = NULL;
    size_t len = 0;
    ck_assert_msg(dae_file_read(io, (size_t)16 << 20, &buf, &len, &err) == DAE_OK, "%s",
                  err.msg);
    dae_st_file *f = dae_st_parse(buf, len, NULL, &err);
    ck_assert_msg(f != NULL, "%s: %s", io, err.msg);
    const dae_st_tensor *in = dae_st_find(f, "input");
    ck_assert_msg(in && in->ndim == 4, "%s: input must be (B,C,H,W)", io);
    fx->B = (int)in->shape[0];
    fx->in_shape = (dae_shape){(int)in->shape[1], (int)in->shape[2], (int)in->shape[3]};
    fx->input = tensor_copy(f, "input", &fx->n_input, io);
    fx->latent = tensor_copy(f, "latent", &fx->n_latent, io);
    fx->output = tensor_copy(f, "output", &fx->n_output, io);
    const dae_st_tensor *out = dae_st_find(f, "output");
    fx->out_ndim = out->ndim;
    memcpy(fx->out_dims, out->shape, sizeof fx->out_dims);
    dae_st_free(f);
    free(buf);
}

static void fixture_free(fixture *fx)
{
    dae_modelfile_free(fx->mf);
    free(fx->input);
    free(fx->latent);
    free(fx->output);
}

static double max_abs_err(const float *a, const float *b, size_t n)
{
    double e = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= e)) /* also catches NaN */
            e = isnan(d) ? INFINITY : d;
    }
    return e;
}

/* The whole batch, forward and encode, in an inference and in a training workspace. */
START_TEST(test_parity_batch)
{
    const char *name = FIXTURES[_i];
    fixture fx;
    fixture_load(&fx, name);
    const dae_model *m = fx.mf->model;
    dae_error err = {0};

    for (int training = 0; training < 2; training++) {
        dae_workspace *ws = dae_workspace_create(m, fx.B, fx.in_shape, training, &err);
        ck_assert_msg(ws != NULL, "%s: %s", name, err.msg);
        const float *y, *z;
        dae_shape ys, zs;
        ck_assert_msg(dae_model_forward(m, ws, fx.input, fx.B, fx.in_shape, &y, &ys, &err) ==
                          DAE_OK, "%s: forward: %s", name, err.msg);
        ck_assert_int_eq(fx.out_ndim, 4);
        ck_assert_int_eq(ys.c, (int)fx.out_dims[1]);
        ck_assert_int_eq(ys.h, (int)fx.out_dims[2]);
        ck_assert_int_eq(ys.w, (int)fx.out_dims[3]);
        double e_out = max_abs_err(y, fx.output, fx.n_output);

        ck_assert_msg(dae_model_encode(m, ws, fx.input, fx.B, fx.in_shape, &z, &zs, &err) ==
                          DAE_OK, "%s: encode: %s", name, err.msg);
        ck_assert_uint_eq((size_t)fx.B * zs.c * zs.h * zs.w, fx.n_latent);
        double e_lat = max_abs_err(z, fx.latent, fx.n_latent);

        printf("parity %-6s %s workspace, batch %d: max |err| output %.3g, latent %.3g\n",
               name, training ? "training " : "inference", fx.B, e_out, e_lat);
        ck_assert_msg(e_out <= TOL, "%s: output max abs error %g > %g", name, e_out, TOL);
        ck_assert_msg(e_lat <= TOL, "%s: latent max abs error %g > %g", name, e_lat, TOL);
        dae_workspace_free(ws);
    }
    fixture_free(&fx);
}
END_TEST

/* Each sample alone (batch 1) gives the same result as within the batch: no mixing
 * between samples, and batch strides right. */
START_TEST(test_parity_single)
{
    const char *name = FIXTURES[_i];
    fixture fx;
    fixture_load(&fx, name);
    const dae_model *m = fx.mf->model;
    dae_error err = {0};
    dae_workspace *ws = dae_workspace_create(m, 1, fx.in_shape, 0, &err);
    ck_assert_msg(ws != NULL, "%s: %s", name, err.msg);
    size_t per_in = fx.n_input / (size_t)fx.B, per_out = fx.n_output / (size_t)fx.B;
    for (int b = 0; b < fx.B; b++) {
        const float *y;
        dae_shape ys;
        ck_assert_msg(dae_model_forward(m, ws, fx.input + (size_t)b * per_in, 1, fx.in_shape,
                                        &y, &ys, &err) == DAE_OK,
                      "%s: %s", name, err.msg);
        double e = max_abs_err(y, fx.output + (size_t)b * per_out, per_out);
        ck_assert_msg(e <= TOL, "%s sample %d alone: max abs error %g > %g", name, b, e, TOL);
    }
    dae_workspace_free(ws);
    fixture_free(&fx);
}
END_TEST

/* The fixture files carry what make_fixtures.py wrote into their configs. */
START_TEST(test_fixture_metadata)
{
    fixture fx;
    fixture_load(&fx, "mlp");
    ck_assert_str_eq(fx.mf->name, "fixture-mlp");
    ck_assert_uint_eq(fx.mf->tasks, DAE_TASK_DENOISE | DAE_TASK_INPAINT | DAE_TASK_SUPERRES |
                                         DAE_TASK_ENCODE |
                                         DAE_TASK_SCORE);
    ck_assert_uint_eq(fx.mf->model->n_params, 19824);
    ck_assert_int_eq(fx.mf->calib.n, 5);
    ck_assert_double_eq_tol(fx.mf->calib.threshold, 0.04, 1e-12);
    fixture_free(&fx);

    fixture_load(&fx, "resid");
    ck_assert_int_eq(fx.mf->model->residual, 1);
    fixture_free(&fx);

    fixture_load(&fx, "shuffle"); /* RGB + noise-level map in, RGB out */
    ck_assert(fx.mf->model->residual && fx.mf->model->noise_map);
    ck_assert_int_eq(dae_model_image_channels(fx.mf->model), 3);
    ck_assert_int_eq(fx.mf->model->size_div, 2);
    ck_assert(fx.input[3 * 120] == 25.0f / 255.0f && fx.input[4 * 120 + 3 * 120] == -1.0f);
    fixture_free(&fx);
}
END_TEST

Suite *suite_parity(void)
{
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("pytorch");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_parity_batch, 0, N_FIXTURES);
    tcase_add_loop_test(tc, test_parity_single, 0, N_FIXTURES);
    tcase_add_test(tc, test_fixture_metadata);
    suite_add_tcase(s, tc);
    return s;
}

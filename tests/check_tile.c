/* check_tile.c — tile plans cover the image exactly once, and a tiled forward pass of a
 * DnCNN-style model equals the whole-image pass pixel for pixel. */
#include "check_quiet.h"
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/core/tile.h"

/* conv 3x3 (c->8), relu, conv 5x5 (8->8), relu, conv 3x3 (8->c): radius 1+2+1 = 4 */
static dae_model *small_dncnn(int c)
{
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"input\":[%d,16,16],\"residual\":true,\"encoder\":["
             "{\"type\":\"conv2d\",\"in_channels\":%d,\"out_channels\":8,\"kernel_size\":3,"
             "\"padding\":1},{\"type\":\"relu\"},{\"type\":\"conv2d\",\"in_channels\":8,"
             "\"out_channels\":8,\"kernel_size\":5,\"padding\":2},{\"type\":\"relu\"}],"
             "\"decoder\":[{\"type\":\"conv2d\",\"in_channels\":8,\"out_channels\":%d,"
             "\"kernel_size\":3,\"padding\":1}]}",
             c, c, c);
    dae_error e = {0};
    dae_model *m = dae_model_from_config(cfg, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    dae_model_init_params(m, 11);
    return m;
}

START_TEST(test_radius)
{
    dae_model *m = small_dncnn(1);
    ck_assert_int_eq(dae_model_tile_radius(m), 4);
    dae_model_free(m);
    const char *mlp = "{\"input\":[1,4,4],\"encoder\":[{\"type\":\"flatten\"},{\"type\":"
                      "\"linear\",\"in_features\":16,\"out_features\":16}],\"decoder\":[{"
                      "\"type\":\"unflatten\",\"unflattened_size\":[1,4,4]}]}";
    m = dae_model_from_config(mlp, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(dae_model_tile_radius(m), -1);
    dae_model_free(m);
    const char *strided = "{\"input\":[1,8,8],\"encoder\":[{\"type\":\"conv2d\",\"in_channels\""
                          ":1,\"out_channels\":2,\"kernel_size\":3,\"stride\":2,\"padding\":1}],"
                          "\"decoder\":[{\"type\":\"conv_transpose2d\",\"in_channels\":2,"
                          "\"out_channels\":1,\"kernel_size\":4,\"stride\":2,\"padding\":1}]}";
    m = dae_model_from_config(strided, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(dae_model_tile_radius(m), -1);
    dae_model_free(m);
}
END_TEST

START_TEST(test_plan_covers_once)
{
    const int sizes[][3] = {{1, 1, 1}, {37, 29, 8}, {64, 64, 16}, {5, 100, 7}, {100, 3, 200}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int W = sizes[k][0], H = sizes[k][1], T = sizes[k][2], halo = 3;
        long n = dae_tile_plan(W, H, T, halo, NULL, 0);
        ck_assert_int_eq(n, (long)((W + T - 1) / T) * ((H + T - 1) / T));
        dae_tile *tl = malloc((size_t)n * sizeof *tl);
        ck_assert_int_eq(dae_tile_plan(W, H, T, halo, tl, n), n);
        int *hits = calloc((size_t)W * H, sizeof *hits);
        for (long i = 0; i < n; i++) {
            const dae_tile *t = &tl[i];
            ck_assert(t->ix0 >= 0 && t->iy0 >= 0 && t->ix0 + t->iw <= W && t->iy0 + t->ih <= H);
            ck_assert(t->ix0 <= t->x0 && t->ix0 + t->iw >= t->x0 + t->w);
            /* the halo is full wherever the image allows it */
            ck_assert_int_eq(t->x0 - t->ix0, t->x0 < halo ? t->x0 : halo);
            ck_assert_int_eq(t->iy0 + t->ih - t->y0 - t->h,
                             H - t->y0 - t->h < halo ? H - t->y0 - t->h : halo);
            for (int y = t->y0; y < t->y0 + t->h; y++)
                for (int x = t->x0; x < t->x0 + t->w; x++)
                    hits[y * W + x]++;
        }
        for (int i = 0; i < W * H; i++)
            ck_assert_int_eq(hits[i], 1);
        free(hits);
        free(tl);
    }
}
END_TEST

static int to_u8(float v) /* as the PNG/JPEG encoders quantize */
{
    float f = v * 255.0f + 0.5f;
    f = f > 0.0f ? f : 0.0f;
    f = f < 255.0f ? f : 255.0f;
    return (int)f;
}

/* FFDNet in small, on c image channels + the noise-level map: conv 3x3 at full resolution
 * (radius 1), unshuffle 2, conv 3x3 (2 full-resolution pixels), relu, conv 5x5 (4), conv 3x3
 * (2), shuffle 2: radius 9, halo 10 (a multiple of size_div 2). */
static dae_model *small_ffd(int c)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"input\":[%d,16,16],\"residual\":true,\"noise_map\":true,\"encoder\":["
             "{\"type\":\"conv2d\",\"in_channels\":%d,\"out_channels\":2,\"kernel_size\":3,"
             "\"padding\":1},{\"type\":\"pixel_unshuffle\",\"downscale_factor\":2},"
             "{\"type\":\"conv2d\",\"in_channels\":8,\"out_channels\":8,\"kernel_size\":3,"
             "\"padding\":1},{\"type\":\"relu\"},{\"type\":\"conv2d\",\"in_channels\":8,"
             "\"out_channels\":8,\"kernel_size\":5,\"padding\":2}],"
             "\"decoder\":[{\"type\":\"conv2d\",\"in_channels\":8,\"out_channels\":%d,"
             "\"kernel_size\":3,\"padding\":1},{\"type\":\"pixel_shuffle\","
             "\"upscale_factor\":2}]}",
             c + 1, c + 1, 4 * c);
    dae_error e = {0};
    dae_model *m = dae_model_from_config(cfg, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    dae_model_init_params(m, 12);
    for (size_t i = 0; i < m->n_params; i++) /* O(1) activations: every layer shows */
        m->params[i] *= 2.0f;
    return m;
}

/* m over a (c, H, W) image in tiles of several sizes equals one pass over the whole canvas
 * (the image padded to multiples of size_div by repeating its last column and row), cropped
 * to the image. With map, the last input channel is a constant noise-level plane. */
static void check_tiled(dae_model *m, int c, int W, int H, int map)
{
    dae_error e = {0};
    int cw = dae_model_canvas(m, W), chh = dae_model_canvas(m, H), R = dae_model_tile_radius(m);
    int oc = m->out_shape.c;
    ck_assert_int_ge(R, 0);
    size_t n = (size_t)c * W * H, no = (size_t)oc * W * H;
    float *in = malloc(n * sizeof *in), *out = malloc(no * sizeof *out);
    float *canvas = malloc((size_t)c * cw * chh * sizeof *canvas);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        in[i] = (float)(s >> 40) / 16777216.0f;
        if (map && i >= (size_t)(c - 1) * W * H)
            in[i] = 0.1f;
    }
    dae_tile whole_t = {0, 0, cw, chh, 0, 0, cw, chh};
    dae_tile_extract(canvas, in, c, W, H, &whole_t); /* the padded canvas */
    dae_workspace *whole = dae_workspace_create(m, 1, (dae_shape){c, chh, cw}, 0, &e);
    ck_assert_msg(whole != NULL, "%s", e.msg);
    const float *ref;
    dae_shape os;
    ck_assert_int_eq(dae_model_forward(m, whole, canvas, 1, (dae_shape){c, chh, cw}, &ref, &os,
                                       &e), 0);
    const int tiles[] = {1000, 32, 13, 8, 3, 1};
    for (size_t k = 0; k < sizeof tiles / sizeof tiles[0]; k++) {
        int T = tiles[k], side = dae_model_tile_side(m, T) + 2 * R;
        dae_workspace *ws = dae_workspace_create(m, 1, (dae_shape){c, side, side}, 0, &e);
        ck_assert_msg(ws != NULL, "%s", e.msg);
        float *scratch = malloc((size_t)c * side * side * sizeof *scratch);
        memset(out, 0xff, no * sizeof *out); /* NaN everywhere: every pixel must be written */
        ck_assert_msg(dae_model_forward_tiled(m, ws, in, c, W, H, T, scratch, out, &e) == 0,
                      "%s", e.msg);
        /* The pixels served (8-bit) are identical; the floats agree to the last bits (sgemm
         * may sum in another order for other matrix sizes: OpenBLAS' small-matrix path). */
        float md = 0.0f;
        for (int ch = 0; ch < oc; ch++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    size_t i = ((size_t)ch * H + y) * W + x;
                    float r = ref[((size_t)ch * chh + y) * cw + x];
                    float d = fabsf(out[i] - r);
                    ck_assert_msg(d == d, "tile %d: pixel %zu not written", T, i);
                    md = d > md ? d : md;
                    ck_assert_msg(to_u8(out[i]) == to_u8(r),
                                  "tile %d: pixel %zu is %d tiled, %d whole", T, i,
                                  to_u8(out[i]), to_u8(r));
                }
        ck_assert_msg(md <= 1e-6f, "tile %d: tiled output differs by %g", T, md);
        free(scratch);
        dae_workspace_free(ws);
    }
    dae_workspace_free(whole);
    free(in), free(out), free(canvas);
}

static void tiled_equals_whole(int c, int W, int H)
{
    dae_model *m = small_dncnn(c);
    check_tiled(m, c, W, H, 0);
    dae_model_free(m);
}

START_TEST(test_tiled_shuffle_noise_map)
{
    dae_model *m = small_ffd(1);
    ck_assert_int_eq(m->size_div, 2);
    ck_assert_int_eq(dae_model_tile_radius(m), 10);
    ck_assert_int_eq(dae_model_tile_side(m, 13), 12);
    ck_assert_int_eq(dae_model_tile_side(m, 1), 2);
    ck_assert_int_eq(dae_model_canvas(m, 37), 38);
    check_tiled(m, 2, 36, 30, 1);  /* multiples of 2 */
    check_tiled(m, 2, 37, 29, 1);  /* padded to 38x30, cropped back */
    dae_model_free(m);
    m = small_ffd(3);
    check_tiled(m, 4, 21, 40, 1);
    dae_model_free(m);
    /* an unshuffle not undone, or a shuffle first: no tiles */
    const char *half = "{\"input\":[1,8,8],\"encoder\":[{\"type\":\"pixel_unshuffle\","
                       "\"downscale_factor\":2}],\"decoder\":[]}";
    m = dae_model_from_config(half, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(dae_model_tile_radius(m), -1);
    dae_model_free(m);
    const char *dbl = "{\"input\":[4,8,8],\"encoder\":[{\"type\":\"pixel_shuffle\","
                      "\"upscale_factor\":2},{\"type\":\"pixel_unshuffle\","
                      "\"downscale_factor\":2}],\"decoder\":[]}";
    m = dae_model_from_config(dbl, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(dae_model_tile_radius(m), -1);
    dae_model_free(m);
}
END_TEST

START_TEST(test_tiled_equals_whole_gray)
{
    tiled_equals_whole(1, 37, 29);
}
END_TEST

START_TEST(test_tiled_equals_whole_rgb)
{
    tiled_equals_whole(3, 21, 40);
}
END_TEST

START_TEST(test_tiled_errors)
{
    dae_model *m = small_dncnn(1);
    dae_error e = {0};
    dae_workspace *ws = dae_workspace_create(m, 1, (dae_shape){1, 16, 16}, 0, &e);
    static float buf[3 * 40 * 40], out[3 * 40 * 40], scratch[40 * 40];
    ck_assert_int_eq(dae_model_forward_tiled(m, ws, buf, 3, 16, 16, 8, scratch, out, &e),
                     DAE_ESHAPE);
    /* a tile larger than the workspace: the model's own check refuses it */
    ck_assert_int_ne(dae_model_forward_tiled(m, ws, buf, 1, 40, 40, 100, scratch, out, &e), 0);
    dae_workspace_free(ws);
    dae_model_free(m);
}
END_TEST

Suite *suite_tile(void)
{
    Suite *s = suite_create("tile");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_radius);
    tcase_add_test(tc, test_plan_covers_once);
    tcase_add_test(tc, test_tiled_equals_whole_gray);
    tcase_add_test(tc, test_tiled_equals_whole_rgb);
    tcase_add_test(tc, test_tiled_errors);
    tcase_add_test(tc, test_tiled_shuffle_noise_map);
    suite_add_tcase(s, tc);
    return s;
}

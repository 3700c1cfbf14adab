/* photo_apply.c — a photo model applied to a whole image at once (photo_apply.h). */
#include "daed/io/photo_apply.h"

#include <stdlib.h>
#include <string.h>

#include "daed/core/halfres.h"

/* One pass of m over x (c image channels of w x h; a noise-map model gets the level sg,
 * < 0: blind) into *y (malloc'd, shape *ys). */
static int apply_pass(const dae_model *m, const float *x, int c, int w, int h, double sg,
                      float **y, dae_shape *ys, dae_error *err)
{
    int map = m->noise_map ? 1 : 0;
    dae_shape in = {c + map, h, w};
    float *xin = map ? malloc(dae_shape_size(in) * sizeof *xin) : NULL;
    if (map && !xin)
        return dae_error_set(err, DAE_ENOMEM, "cannot allocate the model input");
    dae_workspace *ws = dae_workspace_create(m, 1, in, 0, err);
    const float *out = NULL;
    int rc;
    if (!ws) {
        rc = err && err->code ? err->code : DAE_ENOMEM;
        goto done;
    }
    if (map) {
        dae_model_noise_input(xin, x, 1, c, h, w, dae_noise_level(sg));
        x = xin;
    }
    if ((rc = dae_model_forward(m, ws, x, 1, in, &out, ys, err)) != DAE_OK)
        goto done;
    if (!(*y = malloc(dae_shape_size(*ys) * sizeof **y))) {
        rc = dae_error_set(err, DAE_ENOMEM, "cannot allocate the model output");
        goto done;
    }
    memcpy(*y, out, dae_shape_size(*ys) * sizeof **y);
done:
    free(xin);
    dae_workspace_free(ws);
    return rc;
}

int dae_photo_apply(const dae_model *m, const dae_image *im, int per_channel, int chroma_half,
                    double sigma, dae_color_space cs, dae_image *out, dae_error *err)
{
    size_t hw = (size_t)im->w * (size_t)im->h;
    int passes = per_channel ? im->c : 1; /* a per-channel model: one pass per plane */
    chroma_half = chroma_half && per_channel && im->c == 3;
    int hx = dae_half_side(im->w), hy = dae_half_side(im->h), rc = DAE_OK;
    float *half = chroma_half ? malloc((size_t)hx * hy * sizeof *half) : NULL;
    if (chroma_half && !half)
        return dae_error_set(err, DAE_ENOMEM, "cannot allocate a half plane");
    for (int p = 0; p < passes && rc == DAE_OK; p++) {
        float *y = NULL;
        dae_shape ys;
        const float *x = im->px + (size_t)p * hw;
        /* a per-channel model: the level of the noise in this channel */
        double sg = per_channel && sigma >= 0 ? sigma * dae_color_noise_gain(cs, p) : sigma;
        int small = chroma_half && p > 0;
        if (small)
            dae_plane_half(x, im->w, im->h, half);
        rc = apply_pass(m, small ? half : x, per_channel ? 1 : im->c, small ? hx : im->w,
                        small ? hy : im->h, small && sg >= 0 ? sg / 2 : sg, &y, &ys, err);
        if (rc == DAE_OK && p == 0)
            rc = dae_image_alloc(out, ys.w, ys.h, ys.c * passes, 0, err);
        if (rc == DAE_OK) {
            size_t n_out = (size_t)out->w * out->h * ys.c;
            if (small)
                dae_plane_double(y, out->w, out->h, out->px + (size_t)p * n_out);
            else
                memcpy(out->px + (size_t)p * n_out, y, n_out * sizeof *y);
        }
        free(y);
    }
    free(half);
    return rc;
}

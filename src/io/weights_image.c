/* weights_image.c — a linear layer's weights as image tiles (weights_image.h). */
#include "daed/io/weights_image.h"

#include <math.h>
#include <stdint.h>

/* The index of the linear layer that touches the image of d values, or -1. */
static int image_layer(const dae_model *m, int decoder, int d)
{
    int li = -1;
    if (decoder) {
        for (int i = m->n_enc + m->n_dec - 1; i >= m->n_enc && li < 0; i--)
            if (m->layers[i].kind == DAE_LAYER_LINEAR && m->layers[i].out_f == d)
                li = i;
    } else {
        for (int i = 0; i < m->n_enc && li < 0; i++)
            if (m->layers[i].kind == DAE_LAYER_LINEAR && m->layers[i].in_f == d)
                li = i;
    }
    return li;
}

/* Unit u's tile at (x0, y0) of grid (GW wide): its weight for image value v is
 * W[base + v * stride]. */
static void draw_unit(dae_image *grid, int64_t GW, dae_shape img, int scale, const float *W,
                      size_t base, size_t stride, int x0, int y0)
{
    int d = img.c * img.h * img.w;
    size_t plane = (size_t)grid->w * (size_t)grid->h;
    float mx = 0;
    for (int v = 0; v < d; v++) {
        float a = fabsf(W[base + (size_t)v * stride]);
        mx = a > mx ? a : mx;
    }
    for (int ch = 0; ch < img.c; ch++)
        for (int y = 0; y < img.h * scale; y++)
            for (int x = 0; x < img.w * scale; x++) {
                size_t v = ((size_t)ch * img.h + (size_t)(y / scale)) * img.w + (size_t)(x / scale);
                float w = W[base + v * stride];
                grid->px[(size_t)ch * plane + (size_t)(y0 + y) * (size_t)GW + (size_t)(x0 + x)] =
                    mx > 0 ? 0.5f + 0.5f * w / mx : 0.5f;
            }
}

int dae_weights_image(const dae_model *m, const char *what, int decoder, int cols, int scale,
                      int count, dae_image *out, int *units, dae_error *err)
{
    dae_shape img = decoder ? m->out_shape : m->in_shape;
    int d = img.c * img.h * img.w, li = image_layer(m, decoder, d);
    if (li < 0)
        return dae_error_set(err, DAE_EINVAL,
                             "%s: no %s linear layer with %d %s (the %dx%dx%d image)", what,
                             decoder ? "decoder" : "encoder", d, decoder ? "outputs" : "inputs",
                             img.c, img.h, img.w);
    const dae_layer *l = &m->layers[li];
    const float *W = m->params + l->w_off; /* PyTorch layout: [out_f][in_f] */
    int all = decoder ? l->in_f : l->out_f;
    int n = count > 0 && count < all ? count : all;
    if (cols > n)
        cols = n;
    int rows = (n + cols - 1) / cols, pad = 1;
    int64_t GW = (int64_t)cols * img.w * scale + (int64_t)(cols + 1) * pad;
    int64_t GH = (int64_t)rows * img.h * scale + (int64_t)(rows + 1) * pad;
    if (GW > DAE_WEIGHTS_MAX_SIDE || GH > DAE_WEIGHTS_MAX_SIDE)
        return dae_error_set(err, DAE_ELIMIT, "weights: %lldx%lld pixels, more than %dx%d",
                             (long long)GW, (long long)GH, DAE_WEIGHTS_MAX_SIDE,
                             DAE_WEIGHTS_MAX_SIDE);
    int rc = dae_image_alloc(out, (int)GW, (int)GH, img.c, 0, err);
    if (rc)
        return rc;
    size_t plane = (size_t)GW * (size_t)GH;
    for (size_t i = 0; i < (size_t)img.c * plane; i++)
        out->px[i] = 1.0f;
    for (int u = 0; u < n; u++) {
        /* unit u's weight for image value v: row u (encoder) or column u (decoder) */
        size_t stride = decoder ? (size_t)l->in_f : 1;
        size_t base = decoder ? (size_t)u : (size_t)u * l->in_f;
        draw_unit(out, GW, img, scale, W, base, stride, pad + (u % cols) * (img.w * scale + pad),
                  pad + (u / cols) * (img.h * scale + pad));
    }
    *units = n;
    return DAE_OK;
}

/* tile.c — tile plans for fully convolutional models and a sequential tiled forward pass. */
#include "daed/tile.h"

#include <string.h>

int dae_model_tile_radius(const dae_model *m)
{
    if (!m->fully_conv || m->size_div != 1)
        return -1;
    int r = 0;
    for (int i = 0; i < m->n_enc + m->n_dec; i++) {
        const dae_layer *l = &m->layers[i];
        if (l->kind == DAE_LAYER_ACT)
            continue;
        if (l->kind != DAE_LAYER_CONV2D || l->stride != 1 || l->k % 2 == 0 ||
            l->pad != (l->k - 1) / 2)
            return -1;
        r += l->pad;
    }
    return r;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

dae_tile dae_tile_at(int W, int H, int tile, int halo, long i)
{
    int nx = (W + tile - 1) / tile;
    dae_tile t;
    t.x0 = (int)(i % nx) * tile;
    t.y0 = (int)(i / nx) * tile;
    t.w = W - t.x0 < tile ? W - t.x0 : tile;
    t.h = H - t.y0 < tile ? H - t.y0 : tile;
    t.ix0 = clampi(t.x0 - halo, 0, W);
    t.iy0 = clampi(t.y0 - halo, 0, H);
    t.iw = clampi(t.x0 + t.w + halo, 0, W) - t.ix0;
    t.ih = clampi(t.y0 + t.h + halo, 0, H) - t.iy0;
    return t;
}

long dae_tile_plan(int W, int H, int tile, int halo, dae_tile *tiles, long max_tiles)
{
    if (W < 1 || H < 1 || tile < 1 || halo < 0)
        return 0;
    long n = (long)((W + tile - 1) / tile) * (long)((H + tile - 1) / tile);
    for (long i = 0; tiles && i < n && i < max_tiles; i++)
        tiles[i] = dae_tile_at(W, H, tile, halo, i);
    return n;
}

void dae_tile_extract(float *dst, const float *img, int c, int W, int H, const dae_tile *t)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < t->ih; y++)
            memcpy(dst + ((size_t)ch * t->ih + y) * t->iw,
                   img + ((size_t)ch * H + t->iy0 + y) * W + t->ix0,
                   (size_t)t->iw * sizeof *dst);
}

void dae_tile_paste(float *img, const float *src, int c, int W, int H, const dae_tile *t)
{
    int dx = t->x0 - t->ix0, dy = t->y0 - t->iy0;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < t->h; y++)
            memcpy(img + ((size_t)ch * H + t->y0 + y) * W + t->x0,
                   src + ((size_t)ch * t->ih + dy + y) * t->iw + dx,
                   (size_t)t->w * sizeof *img);
}

int dae_model_forward_tiled(const dae_model *m, dae_workspace *ws, const float *in, int c,
                            int W, int H, int tile, float *scratch, float *out,
                            dae_error *err)
{
    int R = dae_model_tile_radius(m);
    if (R < 0)
        return dae_error_set(err, DAE_EINVAL, "tiled forward: the model is not a stack of "
                             "stride-1 same convolutions (no tile radius)");
    if (c != m->in_shape.c || tile < 1)
        return dae_error_set(err, DAE_ESHAPE, "tiled forward: %d channels and tile %d, "
                             "expected %d channels and tile >= 1", c, tile, m->in_shape.c);
    long n = dae_tile_plan(W, H, tile, R, NULL, 0);
    for (long i = 0; i < n; i++) {
        dae_tile t = dae_tile_at(W, H, tile, R, i);
        dae_tile_extract(scratch, in, c, W, H, &t);
        const float *o;
        dae_shape os;
        int rc = dae_model_forward(m, ws, scratch, 1, (dae_shape){c, t.ih, t.iw}, &o, &os,
                                   err);
        if (rc)
            return dae_error_prefix(err, "tile %ld (%d,%d %dx%d): ", i, t.x0, t.y0, t.w, t.h);
        dae_tile_paste(out, o, c, W, H, &t);
    }
    return DAE_OK;
}

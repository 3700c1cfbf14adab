/* tile.c — tile plans for fully convolutional models and a sequential tiled forward pass. */
#include "daed/core/tile.h"

#include <string.h>

int dae_model_tile_radius(const dae_model *m)
{
    if (!m->fully_conv || m->size_div < 1)
        return -1;
    /* s: full-resolution pixels per pixel of the current layer's input */
    int r = 0, s = 1, D = m->size_div;
    for (int i = 0; i < m->n_enc + m->n_dec; i++) {
        const dae_layer *l = &m->layers[i];
        if (l->kind == DAE_LAYER_ACT || l->kind == DAE_LAYER_ADD)
            continue; /* an add's source lies within the receptive field so far */
        if (l->kind == DAE_LAYER_PIXEL_UNSHUFFLE) {
            s *= l->factor;
            continue;
        }
        if (l->kind == DAE_LAYER_PIXEL_SHUFFLE) {
            if (s % l->factor)
                return -1; /* finer than the input: not a tileable shape */
            s /= l->factor;
            continue;
        }
        if (l->kind != DAE_LAYER_CONV2D || l->stride != 1 || l->k % 2 == 0 ||
            l->pad != (l->k - 1) / 2)
            return -1;
        if (r > (1 << 20))
            return -1;
        r += l->pad * s;
    }
    if (s != 1)
        return -1;
    return (r + D - 1) / D * D;
}

int dae_model_tile_side(const dae_model *m, int tile)
{
    int D = m->size_div > 0 ? m->size_div : 1;
    return tile < D ? D : tile / D * D;
}

int dae_model_canvas(const dae_model *m, int n)
{
    int D = m->size_div > 0 ? m->size_div : 1;
    return (n + D - 1) / D * D;
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
    /* columns [ix0, ix0+in) lie in the image, the rest repeat column W-1 (canvas padding) */
    int in = W - t->ix0 < t->iw ? W - t->ix0 : t->iw;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < t->ih; y++) {
            int sy = t->iy0 + y < H ? t->iy0 + y : H - 1;
            const float *row = img + ((size_t)ch * H + sy) * W;
            float *d = dst + ((size_t)ch * t->ih + y) * t->iw;
            memcpy(d, row + t->ix0, (size_t)in * sizeof *dst);
            for (int x = in; x < t->iw; x++)
                d[x] = row[W - 1];
        }
}

void dae_tile_paste(float *img, const float *src, int c, int W, int H, const dae_tile *t)
{
    int dx = t->x0 - t->ix0, dy = t->y0 - t->iy0;
    int w = W - t->x0 < t->w ? W - t->x0 : t->w, h = H - t->y0 < t->h ? H - t->y0 : t->h;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            memcpy(img + ((size_t)ch * H + t->y0 + y) * W + t->x0,
                   src + ((size_t)ch * t->ih + dy + y) * t->iw + dx, (size_t)w * sizeof *img);
}

int dae_model_forward_tiled(const dae_model *m, dae_workspace *ws, const float *in, int c,
                            int W, int H, int tile, float *scratch, float *out,
                            dae_error *err)
{
    int R = dae_model_tile_radius(m);
    if (R < 0)
        return dae_error_set(err, DAE_EINVAL, "tiled forward: the model is not a stack of "
                             "stride-1 same convolutions and pixel (un)shuffles (no tile "
                             "radius)");
    if (c != m->in_shape.c || tile < 1)
        return dae_error_set(err, DAE_ESHAPE, "tiled forward: %d channels and tile %d, "
                             "expected %d channels and tile >= 1", c, tile, m->in_shape.c);
    int cw = dae_model_canvas(m, W), ch = dae_model_canvas(m, H);
    tile = dae_model_tile_side(m, tile);
    long n = dae_tile_plan(cw, ch, tile, R, NULL, 0);
    for (long i = 0; i < n; i++) {
        dae_tile t = dae_tile_at(cw, ch, tile, R, i);
        dae_tile_extract(scratch, in, c, W, H, &t);
        const float *o;
        dae_shape os;
        int rc = dae_model_forward(m, ws, scratch, 1, (dae_shape){c, t.ih, t.iw}, &o, &os,
                                   err);
        if (rc)
            return dae_error_prefix(err, "tile %ld (%d,%d %dx%d): ", i, t.x0, t.y0, t.w, t.h);
        dae_tile_paste(out, o, os.c, W, H, &t);
    }
    return DAE_OK;
}

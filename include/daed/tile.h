/* tile.h — a fully convolutional model over an image of any size, in overlapping tiles.
 *
 * For a model made only of stride-1 "same" convolutions (padding (k-1)/2) and elementwise
 * layers (a DnCNN-style denoiser), output pixel (y,x) depends only on the input within the
 * receptive-field radius R = sum of the (k-1)/2. A tile's input is its output region grown
 * by a halo of at least R on each side, clipped to the image: where it is clipped, the
 * model's zero padding coincides with the image border, elsewhere the halo holds the real
 * neighbours, so every tile's output region equals that region of one whole-image pass.
 * Memory is then bounded by the tile size, whatever the image size.
 */
#ifndef DAED_TILE_H
#define DAED_TILE_H

#include "daed/error.h"
#include "daed/model.h"

/* Receptive-field radius of a tileable model (see above); -1 if the model has a layer that
 * is not a stride-1 same convolution or elementwise (linear, flatten, stride, transposed
 * convolution, upsampling), or is not fully convolutional with size_div 1. */
int dae_model_tile_radius(const dae_model *m);

typedef struct dae_tile {
    int x0, y0, w, h;     /* output region */
    int ix0, iy0, iw, ih; /* input region: the output region grown by the halo, clipped */
} dae_tile;

/* Tiles of at most tile x tile output pixels covering a W x H image in row-major order,
 * with the given halo. Returns the count (ceil(W/tile) * ceil(H/tile)); writes at most
 * max_tiles of them (tiles may be NULL to count). */
long dae_tile_plan(int W, int H, int tile, int halo, dae_tile *tiles, long max_tiles);
/* The i-th tile of that plan (i in [0, count)), without building the list. */
dae_tile dae_tile_at(int W, int H, int tile, int halo, long i);

/* Copy the input region of t from planar img (c, H, W) into dst (c, t->ih, t->iw). */
void dae_tile_extract(float *dst, const float *img, int c, int W, int H, const dae_tile *t);
/* Copy the output region of t from src (c, t->ih, t->iw: the model's output for the input
 * region) into planar img (c, H, W). */
void dae_tile_paste(float *img, const float *src, int c, int W, int H, const dae_tile *t);

/* Run m over the whole (c, H, W) image in tiles of `tile` output pixels with the halo
 * radius, one tile at a time in ws (sized for batch 1 and (c, tile+2R, tile+2R));
 * scratch holds c*(tile+2R)^2 floats. out (c, H, W) must not overlap in. */
int dae_model_forward_tiled(const dae_model *m, dae_workspace *ws, const float *in, int c,
                            int W, int H, int tile, float *scratch, float *out,
                            dae_error *err);

#endif

/* tile.h — a fully convolutional model over an image of any size, in overlapping tiles.
 *
 * For a model made only of stride-1 "same" convolutions (padding (k-1)/2) and elementwise
 * layers (a DnCNN-style denoiser), output pixel (y,x) depends only on the input within the
 * receptive-field radius R = sum of the (k-1)/2. A tile's input is its output region grown
 * by a halo of at least R on each side, clipped to the image: where it is clipped, the
 * model's zero padding coincides with the image border, elsewhere the halo holds the real
 * neighbours, so every tile's output region equals that region of one whole-image pass.
 * Memory is then bounded by the tile size, whatever the image size.
 *
 * Models that work at a lower resolution in between (pixel_unshuffle by r ... same
 * convolutions ... pixel_shuffle back, FFDNet-style) tile too, on a grid of their size_div
 * D: tile sides and halos are multiples of D, so each tile's low-resolution pixels are
 * exactly the whole pass's, and a 3x3 convolution after an unshuffle by 2 reaches 2 full-
 * resolution pixels. An image whose sides are not multiples of D is padded on the right and
 * bottom to the next multiples (the "canvas", dae_model_canvas) by repeating its last
 * column and row: plan the tiles on the canvas, dae_tile_extract fills the padding, and
 * dae_tile_paste keeps only what lies in the image. The result is the whole-canvas pass
 * cropped to the image.
 */
#ifndef DAED_TILE_H
#define DAED_TILE_H

#include "daed/core/error.h"
#include "daed/core/model.h"

/* The halo a tile of a tileable model needs (see above): its receptive-field radius in
 * full-resolution pixels, rounded up to a multiple of size_div; -1 if the model has a layer
 * that is not a stride-1 same convolution, elementwise, or a pixel_unshuffle / a
 * pixel_shuffle that undoes one (linear, flatten, stride, transposed convolution,
 * upsampling), or is not fully convolutional. */
int dae_model_tile_radius(const dae_model *m);
/* The tile side to use for a wanted side: rounded down to a multiple of size_div (at least
 * size_div). Identity for models with size_div 1. */
int dae_model_tile_side(const dae_model *m, int tile);
/* n rounded up to a multiple of size_div: the canvas side for an image side n. */
int dae_model_canvas(const dae_model *m, int n);

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

/* Copy the input region of t from planar img (c, H, W) into dst (c, t->ih, t->iw). A region
 * of a canvas plan may reach past the image's last column or row: those pixels repeat it. */
void dae_tile_extract(float *dst, const float *img, int c, int W, int H, const dae_tile *t);
/* Copy the output region of t from src (c, t->ih, t->iw: the model's output for the input
 * region) into planar img (c, H, W); of a canvas plan's region, only what lies in the image. */
void dae_tile_paste(float *img, const float *src, int c, int W, int H, const dae_tile *t);

/* Run m over the whole (c, H, W) image (any W, H: on its canvas) in tiles of `tile` output
 * pixels (dae_model_tile_side) with the halo radius, one tile at a time in ws (sized for
 * batch 1 and (c, tile+2R, tile+2R)); scratch holds c*(tile+2R)^2 floats. c is the model's
 * input channels (a noise-map model's map plane included); out (out_shape.c, H, W) must not
 * overlap in. */
int dae_model_forward_tiled(const dae_model *m, dae_workspace *ws, const float *in, int c,
                            int W, int H, int tile, float *scratch, float *out,
                            dae_error *err);

#endif

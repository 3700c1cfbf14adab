/* png.h — PNG decode (libpng, every PNG kind, samples as stored) and a fast PNG encoder
 * (the chunks written directly with zlib), for dae_image planes (image.h).
 */
#ifndef DAED_PNG_H
#define DAED_PNG_H

#include <stddef.h>

#include "daed/core/error.h"
#include "daed/io/image.h"

/* Any PNG kind: gray, gray+alpha, RGB, RGBA, palette (with tRNS), 1/2/4/8/16-bit,
 * interlaced. The result has 1 channel for gray sources, 3 for colour ones (palette images
 * count as colour), and an alpha plane when the source carries transparency (alpha
 * channel or tRNS). Samples are taken as stored, as PIL, OpenCV and torchvision read them:
 * gAMA, sRGB, cHRM, iCCP and sBIT are ignored (no colour or gamma conversion), bit depths
 * below 8 are scaled to 0..255, 16-bit samples are reduced to their high byte (32768 ->
 * 128), palettes are expanded; then divided by 255. Checked against every PngSuite file
 * (tests/check_pngsuite.c). A PNG without IEND whose pixel data is complete is accepted.
 * *out is zeroed first, filled on success (caller frees with dae_image_free). The same
 * holds for dae_jpeg_decode (jpeg.h) and dae_image_decode (image.h). */
int dae_png_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                   dae_image *out, dae_error *err);
/* As dae_png_decode, to 8-bit planes (image.h dae_image8): the same samples before the
 * division by 255. *out is zeroed first (dae_image8_free). */
int dae_png_decode8(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                    dae_image8 *out, dae_error *err);
/* Encode c = 1 or 3 planes (values clamped to [0,1], v*255 rounded to 8 bits; NaN -> 0) as
 * an 8-bit gray or RGB PNG with zlib level `level` (0-9; 1 is fast, 6 zlib's default).
 * *out is malloc'd; caller frees. */
int dae_png_encode(const float *px, int w, int h, int c, int level, unsigned char **out,
                   size_t *out_len, dae_error *err);
/* As dae_png_encode; with an alpha plane the PNG is gray+alpha or RGBA. */
int dae_png_encode_image(const dae_image *im, int level, unsigned char **out,
                         size_t *out_len, dae_error *err);

/* As dae_png_encode_image from c = 1 or 3 8-bit planes (px[(ch*h + y)*w + x], 0..255;
 * io/image.h dae_planes_quantize) and an 8-bit alpha plane (NULL: none): the same PNG as
 * from float planes that quantize to these samples. */
int dae_png_encode8(const unsigned char *px, const unsigned char *alpha, int w, int h, int c,
                    int level, unsigned char **out, size_t *out_len, dae_error *err);

#endif

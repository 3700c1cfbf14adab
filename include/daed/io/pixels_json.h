/* pixels_json.h — an image as float pixels in JSON, for exact values in and out of a model
 * (dae-model run --json):
 *     {"width":W,"height":H,"channels":C,"pixels":[C*H*W numbers, planar: channel, row,
 *      column],"mask":[H*W numbers, 1 = known, 0 = missing]}     (mask optional)
 */
#ifndef DAED_PIXELS_JSON_H
#define DAED_PIXELS_JSON_H

#include "daed/core/error.h"
#include "daed/io/image.h"

/* Reads path (at most 512 MB) into im (freed by the caller with dae_image_free); the mask
 * becomes the alpha plane. W, H within the image default limits, C 1 or 3, every value a
 * finite number; otherwise an error that says which. */
int dae_pixels_json_read(const char *path, dae_image *im, dae_error *err);

/* Writes the c planes of w x h floats px to path (values with 9 significant digits). */
int dae_pixels_json_write(const char *path, const float *px, int w, int h, int c,
                          dae_error *err);

#endif

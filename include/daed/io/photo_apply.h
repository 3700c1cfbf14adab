/* photo_apply.h — a photo model applied to a whole image at once, the way daed's tiles
 * apply it (serve/tiles.c, which runs the same arithmetic in overlapping tiles): one pass
 * for the image, or one per plane of the model's colour space for a per-channel model,
 * with "chroma_half" (photo.h) the two chroma planes halved, denoised at half the noise
 * level and doubled back (core/halfres.h). dae-model run uses it; so can tests.
 */
#ifndef DAED_PHOTO_APPLY_H
#define DAED_PHOTO_APPLY_H

#include "daed/core/error.h"
#include "daed/core/model.h"
#include "daed/io/image.h"
#include "daed/io/photo.h"

/* out (allocated here; the caller frees it with dae_image_free) = m applied to im, whose
 * planes are already in the colour space cs (photo.h dae_color_to_space). per_channel: one
 * pass per plane (m takes 1 channel); chroma_half: planes 1 and 2 at half size (needs
 * per_channel and 3 planes). A noise-map model gets sigma (0-255; < 0 blind) in its map,
 * times the noise gain of each plane for a per-channel model (dae_color_noise_gain), halved
 * for a half plane. The output keeps m's output size (the image's, for a denoiser) with
 * its channels times the passes. DAE_OK, or an error code with err set. */
int dae_photo_apply(const dae_model *m, const dae_image *im, int per_channel, int chroma_half,
                    double sigma, dae_color_space cs, dae_image *out, dae_error *err);

#endif

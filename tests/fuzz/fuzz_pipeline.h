/* fuzz_pipeline.h — what the daemon does with a decoded image, as a fuzz oracle: check the
 * planes, convert to the model's channels, resize to its 28x28 input, encode the answer. */
#ifndef DAED_FUZZ_PIPELINE_H
#define DAED_FUZZ_PIPELINE_H

#include <math.h>

#include "daed/io/image.h"
#include "daed/io/png.h"
#include "fuzz_util.h"

/* 4 Mpx: every legal image is decoded, without the fuzzer running out of memory. */
static inline dae_image_limits fuzz_image_limits(void)
{
    dae_image_limits lim = dae_image_default_limits();
    lim.max_width = 4096;
    lim.max_height = 4096;
    lim.max_pixels = (size_t)1 << 22;
    lim.max_bytes = (size_t)1 << 20;
    return lim;
}

/* Every sample of a decoded or resized image is a number in [0,1] (decoders divide 8-bit
 * samples by 255; bilinear weights are convex, up to rounding). */
static inline void fuzz_check_planes(const dae_image *im)
{
    FUZZ_CHECK(im->w > 0 && im->h > 0 && (im->c == 1 || im->c == 3) && im->px);
    size_t n = (size_t)im->w * (size_t)im->h;
    for (size_t i = 0; i < n * (size_t)im->c; i++)
        FUZZ_CHECK(im->px[i] >= -1e-6f && im->px[i] <= 1.000001f);
    if (im->alpha)
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(im->alpha[i] >= -1e-6f && im->alpha[i] <= 1.000001f);
}

/* The rest of a request: channels of the model (1 or 3), resize to 28x28, PNG answer.
 * Consumes *im (frees it). */
static inline void fuzz_image_pipeline(dae_image *im, int channels)
{
    dae_error err = {0};
    dae_image small = {0};
    unsigned char *png = NULL;
    size_t png_len = 0;
    fuzz_check_planes(im);
    int had_alpha = im->alpha != NULL;
    int rc = dae_image_to_channels(im, channels, &err);
    FUZZ_CHECK(rc == DAE_OK); /* valid planes: only ENOMEM could fail, and ASan aborts first */
    FUZZ_CHECK(im->c == channels && (im->alpha != NULL) == had_alpha);
    rc = dae_image_resize(im, 28, 28, &small, &err);
    FUZZ_CHECK(rc == DAE_OK);
    FUZZ_CHECK(small.w == 28 && small.h == 28 && small.c == channels);
    FUZZ_CHECK((small.alpha != NULL) == had_alpha);
    fuzz_check_planes(&small);
    rc = dae_png_encode_image(&small, 1, &png, &png_len, &err);
    FUZZ_CHECK(rc == DAE_OK && png && png_len > 8);
    free(png);
    dae_image_free(&small);
    dae_image_free(im);
}

/* A decoder's failure leaves *out all zero (so dae_image_free is safe and nothing leaks). */
static inline void fuzz_check_decode_failure(int rc, const dae_error *err, const dae_image *out)
{
    fuzz_check_error(rc, err);
    FUZZ_CHECK(out->px == NULL && out->alpha == NULL && out->w == 0 && out->h == 0);
}

#endif

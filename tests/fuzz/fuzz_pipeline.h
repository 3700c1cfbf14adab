/* fuzz_pipeline.h — what the daemon does with a decoded image, as a fuzz oracle: check the
 * planes, convert to the model's channels, resize to its 28x28 input, encode the answer. */
#ifndef DAED_FUZZ_PIPELINE_H
#define DAED_FUZZ_PIPELINE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* The 8-bit decoder (decode8: dae_png_decode8, dae_jpeg_decode8 or dae_image_decode8) on
 * the same input agrees with the float one, whose result was rc and *im: the same code and
 * message, the output zeroed on failure; on success the same shape and every sample
 * k with k / 255.0f the float value bit for bit. Then the 8-bit image converted back to
 * float (dae_image8_to_float) equals *im. */
typedef int (*fuzz_decode8_fn)(const unsigned char *, size_t, const dae_image_limits *,
                               dae_image8 *, dae_error *);
static inline void fuzz_check_decode8(fuzz_decode8_fn decode8, const uint8_t *data,
                                      size_t size, const dae_image_limits *lim, int rc,
                                      const dae_error *err, const dae_image *im)
{
    dae_error e8 = {0};
    dae_image8 b = {.w = 1}; /* zeroed by the decoder whatever happens */
    int rc8 = decode8(data, size, lim, &b, &e8);
    FUZZ_CHECK(rc8 == rc);
    if (rc != DAE_OK) {
        FUZZ_CHECK(strcmp(e8.msg, err->msg) == 0);
        FUZZ_CHECK(b.px == NULL && b.alpha == NULL && b.w == 0 && b.h == 0);
        return;
    }
    FUZZ_CHECK(b.w == im->w && b.h == im->h && b.c == im->c);
    FUZZ_CHECK((b.alpha != NULL) == (im->alpha != NULL));
    size_t n = (size_t)im->w * (size_t)im->h;
    for (size_t i = 0; i < n * (size_t)im->c; i++) {
        float v = (float)b.px[i] / 255.0f;
        FUZZ_CHECK(memcmp(&v, &im->px[i], sizeof v) == 0);
    }
    for (size_t i = 0; b.alpha && i < n; i++) {
        float v = (float)b.alpha[i] / 255.0f;
        FUZZ_CHECK(memcmp(&v, &im->alpha[i], sizeof v) == 0);
    }
    dae_image f = {0};
    FUZZ_CHECK(dae_image8_to_float(&b, &f, &e8) == DAE_OK && b.px == NULL);
    FUZZ_CHECK(memcmp(f.px, im->px, n * (size_t)im->c * sizeof(float)) == 0);
    FUZZ_CHECK(!im->alpha || memcmp(f.alpha, im->alpha, n * sizeof(float)) == 0);
    dae_image_free(&f);
}

#endif

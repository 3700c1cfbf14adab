/* fuzz_png.c — libFuzzer target: PNG bytes -> dae_png_decode (and dae_png_decode8, which must
 * agree) -> model input (28x28) -> PNG.
 * FUZZ_OPTIONS: -max_len=65536 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/image.h"
#include "daed/io/png.h"
#include "fuzz_pipeline.h"

/* Decoded samples are k/255, so an 8-bit encode and a second decode give them back
 * exactly (alpha included): checks the decoder's layout and the encoder together. */
static void round_trip(const dae_image *im)
{
    dae_error err = {0};
    unsigned char *png = NULL;
    size_t len = 0;
    dae_image back = {0};
    int rc = dae_png_encode_image(im, 1, &png, &len, &err);
    FUZZ_CHECK(rc == DAE_OK);
    dae_image_limits lim = fuzz_image_limits();
    lim.max_bytes = 0; /* the default (64 MiB): an encoded image may exceed the input cap */
    rc = dae_png_decode(png, len, &lim, &back, &err);
    FUZZ_CHECK(rc == DAE_OK);
    FUZZ_CHECK(back.w == im->w && back.h == im->h && back.c == im->c);
    FUZZ_CHECK((back.alpha != NULL) == (im->alpha != NULL));
    size_t n = (size_t)im->w * (size_t)im->h;
    FUZZ_CHECK(memcmp(back.px, im->px, n * (size_t)im->c * sizeof(float)) == 0);
    if (im->alpha)
        FUZZ_CHECK(memcmp(back.alpha, im->alpha, n * sizeof(float)) == 0);
    dae_image_free(&back);
    free(png);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dae_image_limits lim = fuzz_image_limits();
    dae_error err = {0};
    dae_image im = {0};
    int rc = dae_png_decode(data, size, &lim, &im, &err);
    fuzz_check_decode8(dae_png_decode8, data, size, &lim, rc, &err, &im);
    if (rc != DAE_OK) {
        fuzz_check_decode_failure(rc, &err, &im);
        return 0;
    }
    fuzz_note("accepted", NULL);
    FUZZ_CHECK((size_t)im.w <= (size_t)lim.max_width && (size_t)im.h <= (size_t)lim.max_height);
    if ((size_t)im.w * (size_t)im.h <= ((size_t)1 << 16))
        round_trip(&im);
    /* Both model kinds: gray (Fashion-MNIST) and RGB, picked by a bit of the input. */
    fuzz_image_pipeline(&im, size & 1 ? 3 : 1);
    return 0;
}

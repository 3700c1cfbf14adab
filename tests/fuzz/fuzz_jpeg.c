/* fuzz_jpeg.c — libFuzzer target: JPEG bytes -> dae_jpeg_decode (and dae_jpeg_decode8, which
 * must agree) -> model input (28x28) -> PNG.
 * FUZZ_OPTIONS: -max_len=65536 */
#include <stdint.h>
#include <stdlib.h>

#include "daed/io/image.h"
#include "daed/io/jpeg.h"
#include "fuzz_pipeline.h"

/* A decoded image re-encodes as a JPEG that decodes to the same size and channels. */
static void round_trip(const dae_image *im)
{
    dae_error err = {0};
    unsigned char *jpg = NULL;
    size_t len = 0;
    dae_image back = {0};
    int rc = dae_jpeg_encode(im->px, im->w, im->h, im->c, 90, &jpg, &len, &err);
    FUZZ_CHECK(rc == DAE_OK);
    rc = dae_jpeg_decode(jpg, len, NULL, &back, &err);
    FUZZ_CHECK(rc == DAE_OK);
    FUZZ_CHECK(back.w == im->w && back.h == im->h && back.c == im->c && !back.alpha);
    dae_image_free(&back);
    free(jpg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dae_image_limits lim = fuzz_image_limits();
    dae_error err = {0};
    dae_image im = {0};
    int rc = dae_jpeg_decode(data, size, &lim, &im, &err);
    fuzz_check_decode8(dae_jpeg_decode8, data, size, &lim, rc, &err, &im);
    if (rc != DAE_OK) {
        fuzz_check_decode_failure(rc, &err, &im);
        return 0;
    }
    fuzz_note("accepted", NULL);
    FUZZ_CHECK(im.alpha == NULL);
    FUZZ_CHECK((size_t)im.w <= (size_t)lim.max_width && (size_t)im.h <= (size_t)lim.max_height);
    if ((size_t)im.w * (size_t)im.h <= ((size_t)1 << 14))
        round_trip(&im);
    fuzz_image_pipeline(&im, size & 1 ? 3 : 1);
    return 0;
}

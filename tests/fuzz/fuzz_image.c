/* fuzz_image.c — libFuzzer target: an upload of unknown type -> dae_image_decode (PNG or JPEG
 * by magic; dae_image_decode8, the daemon's path for a tiled denoise, must agree) -> model
 * input (28x28) -> PNG, the daemon's path for raw image bodies.
 * FUZZ_OPTIONS: -max_len=65536 */
#include <stdint.h>

#include "daed/io/image.h"
#include "fuzz_pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dae_image_limits lim = fuzz_image_limits();
    dae_error err = {0};
    dae_image im = {0};
    int rc = dae_image_decode(data, size, &lim, &im, &err);
    fuzz_check_decode8(dae_image_decode8, data, size, &lim, rc, &err, &im);
    if (rc != DAE_OK) {
        fuzz_check_decode_failure(rc, &err, &im);
        return 0;
    }
    fuzz_note("accepted", NULL);
    fuzz_image_pipeline(&im, size & 1 ? 3 : 1);
    return 0;
}

/* mkpng.c — writes deterministic test PNGs for the service tests.
 *
 *   mkpng OUT.png WIDTH HEIGHT CHANNELS [hole]
 *
 * A smooth pattern in 1 or 3 channels; with "hole", an alpha plane that is 0 (missing) on
 * the centre quarter of the image and 1 elsewhere (an inpainting request). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/image.h"

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: mkpng OUT.png WIDTH HEIGHT CHANNELS [hole]\n");
        return 2;
    }
    int w = atoi(argv[2]), h = atoi(argv[3]), c = atoi(argv[4]);
    int hole = argc > 5 && !strcmp(argv[5], "hole");
    dae_image im = {0};
    dae_error err = {0};
    if (dae_image_alloc(&im, w, h, c, hole, &err) != DAE_OK) {
        fprintf(stderr, "mkpng: %s\n", err.msg);
        return 1;
    }
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                im.px[((size_t)ch * h + y) * w + x] = (float)((x * 7 + y * 13 + ch * 29) % 256) / 255.0f;
    if (hole)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                im.alpha[(size_t)y * w + x] =
                    (x >= w / 4 && x < w - w / 4 && y >= h / 4 && y < h - h / 4) ? 0.0f : 1.0f;
    int rc = dae_png_write_file(argv[1], &im, &err);
    if (rc != DAE_OK)
        fprintf(stderr, "mkpng: %s\n", err.msg);
    dae_image_free(&im);
    return rc == DAE_OK ? 0 : 1;
}

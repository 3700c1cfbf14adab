/* mkpng.c — writes deterministic test PNGs for the service tests.
 *
 *   mkpng OUT.png WIDTH HEIGHT CHANNELS [hole | noise=SIGMA | cnoise=SIGMA]
 *
 * OUT ending in .jpg writes a JPEG (quality 90) instead.
 * A smooth pattern in 1 or 3 channels; with "hole", an alpha plane that is 0 (missing) on
 * the centre quarter of the image and 1 elsewhere (an inpainting request); with noise=SIGMA,
 * a mid-gray ramp instead of the pattern, with seeded Gaussian noise of SIGMA (0-255
 * scale), rounded and clipped (photo.h); cnoise=SIGMA the same with noise that is constant
 * over 2x2 squares (spatially correlated, as camera noise after demosaicing is). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/rng.h"
#include "daed/io/image.h"
#include "daed/io/photo.h"
#include "daed/io/jpeg.h"

/* Seeded Gaussian noise of sigma (0-255) constant over 2x2 squares, rounded and clipped. */
static void add_block_noise(dae_image *im, float sigma)
{
    dae_rng rng;
    dae_rng_seed(&rng, 1);
    for (int ch = 0; ch < im->c; ch++)
        for (int y = 0; y < im->h; y += 2)
            for (int x = 0; x < im->w; x += 2) {
                float d = sigma / 255.0f * dae_rng_normal(&rng);
                for (int yy = y; yy < y + 2 && yy < im->h; yy++)
                    for (int xx = x; xx < x + 2 && xx < im->w; xx++) {
                        float *p = &im->px[((size_t)ch * im->h + yy) * im->w + xx];
                        float v = rintf((*p + d) * 255.0f) / 255.0f;
                        *p = v < 0 ? 0 : v > 1 ? 1 : v;
                    }
            }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: mkpng OUT.png WIDTH HEIGHT CHANNELS "
                        "[hole | noise=SIGMA | cnoise=SIGMA]\n");
        return 2;
    }
    int w = atoi(argv[2]), h = atoi(argv[3]), c = atoi(argv[4]);
    int hole = argc > 5 && !strcmp(argv[5], "hole");
    int corr = argc > 5 && !strncmp(argv[5], "cnoise=", 7);
    float sigma = argc > 5 && !strncmp(argv[5] + corr, "noise=", 6)
                      ? (float)atof(argv[5] + corr + 6)
                      : 0;
    dae_image im = {0};
    dae_error err = {0};
    if (dae_image_alloc(&im, w, h, c, hole, &err) != DAE_OK) {
        fprintf(stderr, "mkpng: %s\n", err.msg);
        return 1;
    }
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                im.px[((size_t)ch * h + y) * w + x] =
                    sigma > 0 ? 0.25f + 0.5f * (float)(x + y) / (float)(w + h) + 0.05f * ch
                              : (float)((x * 7 + y * 13 + ch * 29) % 256) / 255.0f;
    if (sigma > 0 && !corr) {
        dae_rng rng;
        dae_rng_seed(&rng, 1);
        dae_photo_add_noise(&rng, im.px, (size_t)c * w * h, sigma, im.px);
    }
    if (sigma > 0 && corr)
        add_block_noise(&im, sigma);
    if (hole)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                im.alpha[(size_t)y * w + x] =
                    (x >= w / 4 && x < w - w / 4 && y >= h / 4 && y < h - h / 4) ? 0.0f : 1.0f;
    size_t n = strlen(argv[1]);
    int rc;
    if (n > 4 && !strcmp(argv[1] + n - 4, ".jpg")) {
        unsigned char *buf = NULL;
        size_t len = 0;
        rc = dae_jpeg_encode(im.px, w, h, c, 90, &buf, &len, &err);
        if (rc == DAE_OK) {
            FILE *f = fopen(argv[1], "wb");
            if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
                rc = dae_error_set(&err, DAE_EIO, "%s: cannot write", argv[1]);
        }
        free(buf);
    } else {
        rc = dae_png_write_file(argv[1], &im, &err);
    }
    if (rc != DAE_OK)
        fprintf(stderr, "mkpng: %s\n", err.msg);
    dae_image_free(&im);
    return rc == DAE_OK ? 0 : 1;
}

/* f32png.c — one image of a raw pixel file (PROTOCOL §3.6 float32, or bytes) as a PNG.
 *
 *   f32png IN W H INDEX OUT.png [--u8 OFFSET] [--mask M.f32] [--holes M.f32] [--scale K]
 *
 * IN holds images of W x H gray pixels back to back, row-major: little-endian float32 in
 * [0,1] (the data/eval sets), or with --u8 unsigned bytes / 255 after OFFSET header bytes
 * (an uncompressed IDX file: OFFSET 16). Image INDEX (0-based) is written to OUT.png:
 *   --mask M    M (same layout, 1 = known) becomes the alpha plane: an inpainting input
 *               for dae-model run and /v1/inpaint (alpha 0 = missing pixel);
 *   --holes M   an RGB picture with the missing pixels (M < 0.5) painted orange, so the
 *               holes are visible next to the model's answer;
 *   --scale K   nearest-neighbour magnification by K (1..16), e.g. a 14x14 low-res input
 *               shown at the 28x28 size of its neighbours in a grid.
 * Used by scripts/make-docs.sh (the README's before/after picture). Exit 0 ok, 1 error,
 * 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/image.h"

/* n values of image `index` from path: float32, or bytes / 255 after `u8_offset` bytes
 * when u8_offset >= 0. Returns 0, or -1 with a message on stderr. */
static int read_plane(const char *path, long u8_offset, int index, size_t n, float *out)
{
    int rc = -1;
    size_t sz = u8_offset >= 0 ? 1 : 4;
    unsigned char *buf = malloc(n * sz);
    FILE *f = fopen(path, "rb");
    if (!buf || !f) {
        fprintf(stderr, "f32png: %s: cannot open\n", path);
        goto done;
    }
    long off = (u8_offset >= 0 ? u8_offset : 0) + (long)index * (long)(n * sz);
    if (fseek(f, off, SEEK_SET) != 0 || fread(buf, sz, n, f) != n) {
        fprintf(stderr, "f32png: %s: image %d is beyond the end of the file\n", path, index);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (sz == 1) {
            out[i] = buf[i] / 255.0f;
        } else {
            float v;
            memcpy(&v, buf + 4 * i, 4); /* little-endian host (x86-64, arm64) as the files */
            out[i] = v;
        }
    }
    rc = 0;
done:
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: f32png IN W H INDEX OUT.png [--u8 OFFSET] [--mask M.f32] "
                        "[--holes M.f32] [--scale K]\n");
        return 2;
    }
    const char *in = argv[1], *out = argv[5], *mask = NULL, *holes = NULL;
    int w = atoi(argv[2]), h = atoi(argv[3]), index = atoi(argv[4]), k = 1;
    long u8 = -1;
    for (int i = 6; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "f32png: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--u8"))
            u8 = atol(argv[++i]);
        else if (!strcmp(argv[i], "--mask"))
            mask = argv[++i];
        else if (!strcmp(argv[i], "--holes"))
            holes = argv[++i];
        else if (!strcmp(argv[i], "--scale"))
            k = atoi(argv[++i]);
        else {
            fprintf(stderr, "f32png: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (w < 1 || h < 1 || w > 4096 || h > 4096 || index < 0 || k < 1 || k > 16 || u8 < -1) {
        fprintf(stderr, "f32png: bad size %dx%d, index %d, scale %d or offset %ld\n", w, h,
                index, k, u8);
        return 2;
    }
    size_t n = (size_t)w * h;
    int rc = 1;
    float *px = malloc(n * sizeof *px), *m = malloc(n * sizeof *m);
    dae_image im = {0};
    dae_error err = {0};
    if (!px || !m || read_plane(in, u8, index, n, px) != 0)
        goto done;
    if ((mask || holes) && read_plane(mask ? mask : holes, -1, index, n, m) != 0)
        goto done;
    if (dae_image_alloc(&im, w * k, h * k, holes ? 3 : 1, mask != NULL, &err) != DAE_OK) {
        fprintf(stderr, "f32png: %s\n", err.msg);
        goto done;
    }
    static const float paint[3] = {1.0f, 0.55f, 0.1f}; /* orange: absent from gray images */
    size_t big = (size_t)im.w * im.h;
    for (int y = 0; y < im.h; y++)
        for (int x = 0; x < im.w; x++) {
            size_t s = (size_t)(y / k) * w + x / k, d = (size_t)y * im.w + x;
            int missing = (mask || holes) && m[s] < 0.5f;
            for (int ch = 0; ch < im.c; ch++)
                im.px[ch * big + d] = holes && missing ? paint[ch] : px[s];
            if (mask)
                im.alpha[d] = missing ? 0.0f : 1.0f;
        }
    if (dae_png_write_file(out, &im, &err) != DAE_OK) {
        fprintf(stderr, "f32png: %s\n", err.msg);
        goto done;
    }
    rc = 0;
done:
    dae_image_free(&im);
    free(px);
    free(m);
    return rc;
}

/* png_encode.c — PNG encode time per image: dae_png_encode (own chunks + zlib) against
 * libpng's full write API and its simplified writer, on a 28x28 gray and a 1024x1024 RGB
 * image, and dae_png_decode of the result. Usage: png_encode [seconds per case, default
 * 0.5]. */
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daed/io/image.h"
#include "daed/io/png.h"

typedef struct {
    unsigned char *buf;
    size_t len, cap;
} membuf;

static void mem_write(png_structp png, png_bytep data, size_t n)
{
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + n)
            cap *= 2;
        unsigned char *b = realloc(m->buf, cap);
        if (!b)
            png_error(png, "out of memory");
        m->buf = b;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, n);
    m->len += n;
}

static void mem_flush(png_structp png) { (void)png; }

static unsigned char q8(float v)
{
    float f = v * 255.0f + 0.5f;
    return f <= 0 ? 0 : f >= 255 ? 255 : (unsigned char)f;
}

/* Interleave planes to 8-bit, as every libpng path needs. */
static void to_bytes(unsigned char *b, const float *px, int w, int h, int c)
{
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            b[i * c + ch] = q8(px[ch * n + i]);
}

/* libpng full write API: the setjmp stays inside this function. */
static size_t libpng_full(const float *px, int w, int h, int c, int level, int filters)
{
    membuf m = {0};
    unsigned char *bytes = malloc((size_t)w * h * c);
    png_bytep *rows = malloc(sizeof(png_bytep) * h);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    size_t len = 0;
    if (!bytes || !rows || !info)
        goto done;
    to_bytes(bytes, px, w, h, c);
    for (int y = 0; y < h; y++)
        rows[y] = bytes + (size_t)y * w * c;
    if (setjmp(png_jmpbuf(png)))
        goto done;
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, w, h, 8, c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, level);
    png_set_filter(png, 0, filters);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    len = m.len;
done:
    png_destroy_write_struct(&png, &info);
    free(m.buf);
    free(rows);
    free(bytes);
    return len;
}

static size_t libpng_simplified(const float *px, int w, int h, int c)
{
    unsigned char *bytes = malloc((size_t)w * h * c);
    to_bytes(bytes, px, w, h, c);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = w;
    pi.height = h;
    pi.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    png_alloc_size_t len = 0;
    png_image_write_to_memory(&pi, NULL, &len, 0, bytes, 0, NULL);
    unsigned char *out = malloc(len);
    if (!png_image_write_to_memory(&pi, out, &len, 0, bytes, 0, NULL))
        len = 0;
    free(out);
    free(bytes);
    return len;
}

static size_t dae_enc(const float *px, int w, int h, int c, int level)
{
    unsigned char *out = NULL;
    size_t len = 0;
    if (dae_png_encode(px, w, h, c, level, &out, &len, NULL))
        len = 0;
    free(out);
    return len;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

enum { DAE_L1, DAE_L6, FULL_NONE_L1, FULL_UP_L1, FULL_ALL_L1, SIMPLIFIED, NCASES };
static const char *case_name[NCASES] = {
    "dae_png_encode level 1 (own chunks)", "dae_png_encode level 6 (own chunks)",
    "libpng full API level 1, filter NONE",    "libpng full API level 1, filter UP",
    "libpng full API level 1, all filters",    "png_image_write_to_memory (simplified)"};

static size_t run_case(int k, const float *px, int w, int h, int c)
{
    switch (k) {
    case DAE_L1: return dae_enc(px, w, h, c, 1);
    case DAE_L6: return dae_enc(px, w, h, c, 6);
    case FULL_NONE_L1: return libpng_full(px, w, h, c, 1, PNG_FILTER_NONE);
    case FULL_UP_L1: return libpng_full(px, w, h, c, 1, PNG_FILTER_UP);
    case FULL_ALL_L1: return libpng_full(px, w, h, c, 1, PNG_ALL_FILTERS);
    default: return libpng_simplified(px, w, h, c);
    }
}

/* Smooth shapes plus a little noise: what a denoiser's outputs look like. */
static float *make_image(int w, int h, int c, int digit)
{
    float *px = malloc(sizeof(float) * w * h * c);
    uint32_t s = 12345;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                s = s * 1664525u + 1013904223u;
                float noise = ((s >> 8) / 16777216.0f - 0.5f) * 0.03f;
                float v;
                if (digit) {
                    float d = hypotf(x - 14.0f, y - 14.0f) - 7.0f;
                    v = d * d < 4.0f ? 1.0f - d * d / 4.0f : 0.0f;
                } else {
                    v = 0.5f + 0.4f * sinf(x / (37.0f + 9 * ch)) * cosf(y / 53.0f) + noise;
                }
                px[((size_t)ch * h + y) * w + x] = v;
            }
    return px;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.5;
    struct {
        int w, h, c, digit;
    } imgs[2] = {{28, 28, 1, 1}, {1024, 1024, 3, 0}};
    for (int i = 0; i < 2; i++) {
        int w = imgs[i].w, h = imgs[i].h, c = imgs[i].c;
        float *px = make_image(w, h, c, imgs[i].digit);
        printf("%dx%d %s:\n", w, h, c == 3 ? "RGB" : "gray");
        for (int k = 0; k < NCASES; k++) {
            size_t len = run_case(k, px, w, h, c); /* warm-up */
            long n = 0;
            double t0 = now(), t;
            do {
                run_case(k, px, w, h, c);
                n++;
            } while ((t = now() - t0) < secs);
            printf("  %-42s %10.1f us/image %9zu bytes\n", case_name[k], t / n * 1e6, len);
        }
        /* decode of our own level-1 encoding: the other half of a request round trip */
        unsigned char *png = NULL;
        size_t len = 0;
        if (dae_png_encode(px, w, h, c, 1, &png, &len, NULL) == 0) {
            long n = 0;
            double t0 = now(), t;
            do {
                dae_image im;
                dae_png_decode(png, len, NULL, &im, NULL);
                dae_image_free(&im);
                n++;
            } while ((t = now() - t0) < secs);
            printf("  %-42s %10.1f us/image\n", "dae_png_decode (simplified API)", t / n * 1e6);
        }
        free(png);
        free(px);
    }
    return 0;
}

/* image.c — dae_image planes: allocation, channel conversion, bilinear resize, decode
 * dispatch by magic bytes and file read/write. */
#include "daed/io/image.h"
#include "daed/io/png.h"
#include "daed/io/jpeg.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_MAX_BYTES ((size_t)64 << 20)

dae_image_limits dae_image_default_limits(void)
{
    dae_image_limits l = {.max_width = 16384,
                          .max_height = 16384,
                          .max_pixels = (size_t)1 << 24,
                          .max_bytes = DEFAULT_MAX_BYTES};
    return l;
}

int dae_image_alloc(dae_image *im, int w, int h, int c, int with_alpha, dae_error *err)
{
    memset(im, 0, sizeof *im);
    if (w <= 0 || h <= 0 || (c != 1 && c != 3))
        return dae_error_set(err, DAE_EINVAL,
                             "image: size %dx%d with %d channels, expected w, h > 0 and "
                             "1 or 3 channels", w, h, c);
    size_t n = (size_t)w * (size_t)h; /* both < 2^31: no overflow in 64-bit size_t */
    if (n > SIZE_MAX / sizeof(float) / 3)
        return dae_error_set(err, DAE_ELIMIT, "image: %dx%d is too large", w, h);
    float *px = calloc(n * (size_t)c, sizeof(float));
    float *alpha = with_alpha ? calloc(n, sizeof(float)) : NULL;
    if (!px || (with_alpha && !alpha)) {
        free(px);
        free(alpha);
        return dae_error_set(err, DAE_ENOMEM, "image: cannot allocate %dx%dx%d floats", c,
                             h, w);
    }
    im->w = w;
    im->h = h;
    im->c = c;
    im->px = px;
    im->alpha = alpha;
    return DAE_OK;
}

void dae_image_free(dae_image *im)
{
    if (!im)
        return;
    free(im->px);
    free(im->alpha);
    memset(im, 0, sizeof *im);
}

int dae_image_to_channels(dae_image *im, int c, dae_error *err)
{
    if (c != 1 && c != 3)
        return dae_error_set(err, DAE_EINVAL, "image: %d channels requested, expected 1 or 3",
                             c);
    if (!im->px || (im->c != 1 && im->c != 3))
        return dae_error_set(err, DAE_EINVAL, "image: has %d channels, expected 1 or 3",
                             im->c);
    if (im->c == c)
        return DAE_OK;
    size_t n = (size_t)im->w * (size_t)im->h;
    if (c == 1) {
        const float *r = im->px, *g = r + n, *b = g + n;
        float *y = im->px; /* y[i] only overwrites r[i] after reading it */
        for (size_t i = 0; i < n; i++)
            y[i] = 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
        float *shrunk = realloc(im->px, n * sizeof(float));
        if (shrunk) /* a failed shrink keeps the larger, still valid, block */
            im->px = shrunk;
    } else {
        float *grown = realloc(im->px, 3 * n * sizeof(float));
        if (!grown)
            return dae_error_set(err, DAE_ENOMEM, "image: cannot grow %dx%d to 3 channels",
                                 im->w, im->h);
        memcpy(grown + n, grown, n * sizeof(float));
        memcpy(grown + 2 * n, grown, n * sizeof(float));
        im->px = grown;
    }
    im->c = c;
    return DAE_OK;
}

/* Source index pair and weight of the second for each destination coordinate. */
typedef struct {
    int i0, i1;
    float t;
} lerp_tap;

static void resize_taps(lerp_tap *taps, int dst_n, int src_n)
{
    double scale = (double)src_n / (double)dst_n;
    for (int i = 0; i < dst_n; i++) {
        double s = ((double)i + 0.5) * scale - 0.5;
        if (s < 0)
            s = 0; /* both cv2 and PyTorch clamp the left/top border */
        int i0 = (int)s;
        if (i0 > src_n - 1)
            i0 = src_n - 1;
        taps[i].i0 = i0;
        taps[i].i1 = i0 + 1 < src_n ? i0 + 1 : src_n - 1;
        taps[i].t = (float)(s - i0);
    }
}

static void resize_plane(float *dst, const float *src, int sw, const lerp_tap *xt,
                         const lerp_tap *yt, int w, int h)
{
    for (int y = 0; y < h; y++) {
        const float *r0 = src + (size_t)yt[y].i0 * sw, *r1 = src + (size_t)yt[y].i1 * sw;
        float ty = yt[y].t;
        float *d = dst + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            float tx = xt[x].t;
            float top = r0[xt[x].i0] + tx * (r0[xt[x].i1] - r0[xt[x].i0]);
            float bot = r1[xt[x].i0] + tx * (r1[xt[x].i1] - r1[xt[x].i0]);
            d[x] = top + ty * (bot - top);
        }
    }
}

void dae_planes_quantize(const float *px, size_t n, unsigned char *out)
{
    /* As the PNG and JPEG encoders' quantize. In place, byte i is written after float i
     * was read, and it lies in float i/4 <= i, read already. */
    for (size_t i = 0; i < n; i++) {
        float f = px[i] * 255.0f + 0.5f;
        f = f > 0.0f ? f : 0.0f;
        f = f < 255.0f ? f : 255.0f;
        out[i] = (unsigned char)(int)f;
    }
}

int dae_image_resize(const dae_image *src, int w, int h, dae_image *dst, dae_error *err)
{
    if (!src->px || src->w <= 0 || src->h <= 0 || dst == src)
        return dae_error_set(err, DAE_EINVAL, "image resize: empty source or dst == src");
    int rc = dae_image_alloc(dst, w, h, src->c, src->alpha != NULL, err);
    if (rc)
        return rc;
    size_t sn = (size_t)src->w * src->h, dn = (size_t)w * h;
    if (w == src->w && h == src->h) {
        memcpy(dst->px, src->px, sn * src->c * sizeof(float));
        if (src->alpha)
            memcpy(dst->alpha, src->alpha, sn * sizeof(float));
        return DAE_OK;
    }
    lerp_tap *xt = malloc(((size_t)w + h) * sizeof *xt);
    if (!xt) {
        dae_image_free(dst);
        return dae_error_set(err, DAE_ENOMEM, "image resize: cannot allocate taps");
    }
    lerp_tap *yt = xt + w;
    resize_taps(xt, w, src->w);
    resize_taps(yt, h, src->h);
    for (int ch = 0; ch < src->c; ch++)
        resize_plane(dst->px + ch * dn, src->px + ch * sn, src->w, xt, yt, w, h);
    if (src->alpha)
        resize_plane(dst->alpha, src->alpha, src->w, xt, yt, w, h);
    free(xt);
    return DAE_OK;
}

static size_t max_bytes_of(const dae_image_limits *lim)
{
    return lim && lim->max_bytes ? lim->max_bytes : DEFAULT_MAX_BYTES;
}

enum { CODEC_PNG = 1, CODEC_JPEG = 2 };

/* Which decoder takes buf (CODEC_*), or 0 with the error set. */
static int codec_of(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                    dae_error *err)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len > max_bytes_of(lim)) {
        dae_error_set(err, DAE_ELIMIT, "image: %zu bytes, limit %zu", len, max_bytes_of(lim));
        return 0;
    }
    /* From the first 4 bytes on: the PNG decoder names a damaged signature's bad byte. */
    if (len >= 4 && memcmp(buf, png_sig, 4) == 0)
        return CODEC_PNG;
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return CODEC_JPEG;
    if (len == 0) {
        dae_error_set(err, DAE_EFORMAT, "image: empty body, expected PNG or JPEG");
        return 0;
    }
    unsigned char h[4] = {0};
    memcpy(h, buf, len < 4 ? len : 4);
    dae_error_set(err, DAE_EFORMAT,
                  "image: not a PNG or JPEG (starts with %02x %02x %02x %02x, "
                  "expected 89 50 4e 47 or ff d8 ff)", h[0], h[1], h[2], h[3]);
    return 0;
}

int dae_image_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                     dae_image *out, dae_error *err)
{
    *out = (dae_image){0}; /* defined on every error path, like the decoders leave it */
    switch (codec_of(buf, len, lim, err)) {
    case CODEC_PNG: return dae_png_decode(buf, len, lim, out, err);
    case CODEC_JPEG: return dae_jpeg_decode(buf, len, lim, out, err);
    default: return err ? err->code : DAE_EFORMAT;
    }
}

int dae_image_decode8(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                      dae_image8 *out, dae_error *err)
{
    *out = (dae_image8){0};
    switch (codec_of(buf, len, lim, err)) {
    case CODEC_PNG: return dae_png_decode8(buf, len, lim, out, err);
    case CODEC_JPEG: return dae_jpeg_decode8(buf, len, lim, out, err);
    default: return err ? err->code : DAE_EFORMAT;
    }
}

/* ---- 8-bit images ---- */

int dae_image8_alloc(dae_image8 *im, int w, int h, int c, int with_alpha, dae_error *err)
{
    memset(im, 0, sizeof *im);
    if (w <= 0 || h <= 0 || (c != 1 && c != 3))
        return dae_error_set(err, DAE_EINVAL,
                             "image: size %dx%d with %d channels, expected w, h > 0 and "
                             "1 or 3 channels", w, h, c);
    size_t n = (size_t)w * (size_t)h; /* both < 2^31: no overflow in 64-bit size_t */
    unsigned char *px = calloc(n, (size_t)c);
    unsigned char *alpha = with_alpha ? calloc(n, 1) : NULL;
    if (!px || (with_alpha && !alpha)) {
        free(px);
        free(alpha);
        return dae_error_set(err, DAE_ENOMEM, "image: cannot allocate %dx%dx%d bytes", c, h,
                             w);
    }
    *im = (dae_image8){.w = w, .h = h, .c = c, .px = px, .alpha = alpha};
    return DAE_OK;
}

void dae_image8_free(dae_image8 *im)
{
    if (!im)
        return;
    free(im->px);
    free(im->alpha);
    memset(im, 0, sizeof *im);
}

int dae_image8_to_float(dae_image8 *src, dae_image *dst, dae_error *err)
{
    *dst = (dae_image){0};
    size_t n = (size_t)src->w * src->h;
    float *px = malloc(n * (size_t)src->c * sizeof *px);
    float *alpha = src->alpha ? malloc(n * sizeof *alpha) : NULL;
    if (!px || (src->alpha && !alpha)) {
        free(px);
        free(alpha);
        int rc = dae_error_set(err, DAE_ENOMEM, "image: cannot allocate %dx%dx%d floats",
                               src->c, src->h, src->w);
        dae_image8_free(src);
        return rc;
    }
    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f; /* as the decoders */
    for (size_t i = 0; i < n * (size_t)src->c; i++)
        px[i] = lut[src->px[i]];
    free(src->px);
    src->px = NULL;
    for (size_t i = 0; alpha && i < n; i++)
        alpha[i] = lut[src->alpha[i]];
    *dst = (dae_image){.w = src->w, .h = src->h, .c = src->c, .px = px, .alpha = alpha};
    dae_image8_free(src);
    return DAE_OK;
}

int dae_image8_to_channels(dae_image8 *im, int c, dae_error *err)
{
    if (c != 1 && c != 3)
        return dae_error_set(err, DAE_EINVAL, "image: %d channels requested, expected 1 or 3",
                             c);
    if (!im->px || (im->c != 1 && im->c != 3))
        return dae_error_set(err, DAE_EINVAL, "image: has %d channels, expected 1 or 3",
                             im->c);
    if (im->c == c)
        return DAE_OK;
    if (c == 1)
        return dae_error_set(err, DAE_EINVAL, "image: colour to gray is not exact in 8 bits: "
                             "convert to float planes first");
    size_t n = (size_t)im->w * (size_t)im->h;
    unsigned char *grown = realloc(im->px, 3 * n);
    if (!grown)
        return dae_error_set(err, DAE_ENOMEM, "image: cannot grow %dx%d to 3 channels",
                             im->w, im->h);
    memcpy(grown + n, grown, n);
    memcpy(grown + 2 * n, grown, n);
    im->px = grown;
    im->c = 3;
    return DAE_OK;
}

int dae_image_read_file(const char *path, const dae_image_limits *lim, dae_image *out,
                        dae_error *err)
{
    size_t cap = max_bytes_of(lim);
    unsigned char *buf = NULL;
    int rc = DAE_OK;
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc = dae_error_set(err, errno == ENOENT ? DAE_ENOTFOUND : DAE_EIO, "%s: %s", path,
                           strerror(errno));
        goto done;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = dae_error_set(err, DAE_EIO, "%s: not a regular file", path);
        goto done;
    }
    if ((uintmax_t)st.st_size > cap) {
        rc = dae_error_set(err, DAE_ELIMIT, "%s: %jd bytes, limit %zu", path,
                           (intmax_t)st.st_size, cap);
        goto done;
    }
    size_t n = (size_t)st.st_size;
    buf = malloc(n ? n : 1);
    if (!buf) {
        rc = dae_error_set(err, DAE_ENOMEM, "%s: cannot allocate %zu bytes", path, n);
        goto done;
    }
    /* Read one byte past the size seen by fstat so a file that grew is noticed. */
    size_t got = fread(buf, 1, n, f);
    if (got != n || ferror(f) || fgetc(f) != EOF) {
        rc = dae_error_set(err, DAE_EIO, "%s: short read or file changed while reading",
                           path);
        goto done;
    }
    rc = dae_image_decode(buf, n, lim, out, err);
    if (rc)
        dae_error_prefix(err, "%s: ", path);
done:
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

int dae_png_write_file(const char *path, const dae_image *im, dae_error *err)
{
    unsigned char *png = NULL;
    size_t len = 0;
    int rc = dae_png_encode_image(im, 6, &png, &len, err);
    if (rc) {
        dae_error_prefix(err, "%s: ", path);
        return rc;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        rc = dae_error_set(err, DAE_EIO, "%s: %s", path, strerror(errno));
    } else {
        size_t put = fwrite(png, 1, len, f);
        int close_rc = fclose(f);
        if (put != len || close_rc != 0)
            rc = dae_error_set(err, DAE_EIO, "%s: write failed: %s", path, strerror(errno));
    }
    free(png);
    return rc;
}

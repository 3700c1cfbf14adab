/* jpeg.c — JPEG decode (header and limits first) and encode with libturbojpeg. */
#include "daed/io/image.h"
#include "daed/io/jpeg.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* libjpeg-turbo 2.1 has no scan limit of its own; a progressive JPEG with thousands of
 * tiny scans costs a full-image pass each. Counting FF DA bytes over-counts (a thumbnail
 * in APP1 adds its own), so the cap is generous. */
#define MAX_SCANS 1000

static size_t count_sos(const unsigned char *buf, size_t len)
{
    size_t n = 0;
    const unsigned char *p = buf, *end = buf + len;
    while (p < end && (p = memchr(p, 0xff, (size_t)(end - p))) != NULL) {
        if (p + 1 < end && p[1] == 0xda)
            n++;
        p++;
    }
    return n;
}

/* The checks, limits and TurboJPEG's decode into *pix (w*h*c interleaved 8-bit samples,
 * malloc'd, set only on success). */
static int decode_samples(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                          unsigned char **pix_out, int *w_out, int *h_out, int *c_out,
                          dae_error *err)
{
    dae_image_limits dl = dae_image_default_limits();
    if (!lim)
        lim = &dl;
    size_t max_bytes = lim->max_bytes ? lim->max_bytes : dl.max_bytes;
    tjhandle tj = NULL;
    unsigned char *pix = NULL;
    int rc = DAE_OK;

    if (len > max_bytes) {
        rc = dae_error_set(err, DAE_ELIMIT, "jpeg: %zu bytes, limit %zu", len, max_bytes);
        goto done;
    }
    if (len == 0 || len > ULONG_MAX) {
        rc = dae_error_set(err, DAE_EFORMAT, "jpeg: empty input");
        goto done;
    }
    tj = tjInitDecompress();
    if (!tj) {
        rc = dae_error_set(err, DAE_ENOMEM, "jpeg: %s", tjGetErrorStr2(NULL));
        goto done;
    }
    /* Initialised: for a tables-only stream (e.g. SOI alone) TurboJPEG 2.1 reports
     * success without writing the outputs. */
    int w = 0, h = 0, subsamp = -1, colorspace = -1;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp, &colorspace)) {
        rc = dae_error_set(err, DAE_EFORMAT, "jpeg: bad header: %s", tjGetErrorStr2(tj));
        goto done;
    }
    if (w <= 0 || h <= 0) {
        rc = dae_error_set(err, DAE_EFORMAT,
                           "jpeg: bad header: no frame (size %dx%d; tables only or cut short)",
                           w, h);
        goto done;
    }
    if (w > lim->max_width || h > lim->max_height ||
        (size_t)w * h > lim->max_pixels) {
        rc = dae_error_set(err, DAE_ELIMIT, "jpeg: image is %dx%d, limit %dx%d and %zu pixels",
                           w, h, lim->max_width, lim->max_height, lim->max_pixels);
        goto done;
    }
    if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
        rc = dae_error_set(err, DAE_EFORMAT,
                           "jpeg: %s colour space is not supported, expected grayscale, "
                           "RGB or YCbCr", colorspace == TJCS_CMYK ? "CMYK" : "YCCK");
        goto done;
    }
    size_t scans = count_sos(buf, len);
    if (scans > MAX_SCANS) {
        rc = dae_error_set(err, DAE_ELIMIT, "jpeg: %zu scans, limit %d", scans, MAX_SCANS);
        goto done;
    }
    int c = colorspace == TJCS_GRAY ? 1 : 3;
    pix = malloc((size_t)w * h * c);
    if (!pix) {
        rc = dae_error_set(err, DAE_ENOMEM, "jpeg: cannot allocate %dx%dx%d bytes", w, h, c);
        goto done;
    }
    /* Stop on warnings: a truncated or corrupt stream would otherwise "succeed" with
     * gray filler, and the service would answer with a denoised half-image. */
    if (tjDecompress2(tj, buf, (unsigned long)len, pix, w, 0, h,
                      c == 1 ? TJPF_GRAY : TJPF_RGB, TJFLAG_STOPONWARNING)) {
        rc = dae_error_set(err, DAE_EFORMAT, "jpeg: %s", tjGetErrorStr2(tj));
        goto done;
    }
    *pix_out = pix;
    pix = NULL;
    *w_out = w, *h_out = h, *c_out = c;
done:
    if (tj)
        tjDestroy(tj);
    free(pix);
    return rc;
}

int dae_jpeg_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                    dae_image *out, dae_error *err)
{
    memset(out, 0, sizeof *out);
    dae_image8 im8;
    int rc = dae_jpeg_decode8(buf, len, lim, &im8, err);
    return rc == DAE_OK ? dae_image8_to_float(&im8, out, err) : rc;
}

int dae_jpeg_decode8(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                     dae_image8 *out, dae_error *err)
{
    memset(out, 0, sizeof *out);
    unsigned char *pix = NULL;
    int w = 0, h = 0, c = 0;
    int rc = decode_samples(buf, len, lim, &pix, &w, &h, &c, err);
    if (rc == DAE_OK && c == 1) { /* one gray plane: the samples as decoded */
        *out = (dae_image8){.w = w, .h = h, .c = 1, .px = pix};
        return DAE_OK;
    }
    if (rc == DAE_OK)
        rc = dae_image8_alloc(out, w, h, c, 0, err);
    if (rc == DAE_OK) {
        size_t n = (size_t)w * h;
        for (int ch = 0; ch < c; ch++) {
            unsigned char *d = out->px + ch * n;
            const unsigned char *s = pix + ch;
            for (size_t i = 0; i < n; i++)
                d[i] = s[i * c];
        }
    }
    free(pix);
    return rc;
}

static inline unsigned char quantize(float v)
{
    /* Written so the compiler emits maxss/minss (no branches); NaN fails f > 0 -> 0. */
    float f = v * 255.0f + 0.5f;
    f = f > 0.0f ? f : 0.0f;
    f = f < 255.0f ? f : 255.0f;
    return (unsigned char)(int)f;
}

/* dae_jpeg_encode from float planes px or 8-bit planes px8 (one of them). */
static int jpeg_encode(const float *px, const unsigned char *px8, int w, int h, int c,
                       int quality, unsigned char **out, size_t *out_len, dae_error *err)
{
    *out = NULL;
    *out_len = 0;
    if ((!px && !px8) || w <= 0 || h <= 0 || (c != 1 && c != 3))
        return dae_error_set(err, DAE_EINVAL,
                             "jpeg encode: %dx%d with %d channels, expected w, h > 0 and 1 "
                             "or 3 channels", w, h, c);
    if (quality < 1 || quality > 100)
        return dae_error_set(err, DAE_EINVAL, "jpeg encode: quality %d, expected 1-100",
                             quality);
    /* JPEG's own 16-bit dimension fields. */
    if (w > 65500 || h > 65500)
        return dae_error_set(err, DAE_ELIMIT, "jpeg encode: %dx%d, limit 65500x65500", w, h);
    int samp = c == 1 ? TJSAMP_GRAY : TJSAMP_420;
    unsigned long cap = tjBufSize(w, h, samp);
    if (cap == (unsigned long)-1)
        return dae_error_set(err, DAE_ELIMIT, "jpeg encode: %dx%d is too large", w, h);
    size_t n = (size_t)w * h;
    int rc = DAE_OK;
    tjhandle tj = NULL;
    unsigned char *pix = malloc(n * c), *jpg = malloc(cap);
    if (!pix || !jpg) {
        rc = dae_error_set(err, DAE_ENOMEM, "jpeg encode: cannot allocate %lu bytes", cap);
        goto done;
    }
    for (int ch = 0; ch < c; ch++) {
        unsigned char *d = pix + ch;
        if (px8) {
            const unsigned char *s = px8 + ch * n;
            for (size_t i = 0; i < n; i++)
                d[i * c] = s[i];
            continue;
        }
        const float *s = px + ch * n;
        for (size_t i = 0; i < n; i++)
            d[i * c] = quantize(s[i]);
    }
    tj = tjInitCompress();
    if (!tj) {
        rc = dae_error_set(err, DAE_ENOMEM, "jpeg encode: %s", tjGetErrorStr2(NULL));
        goto done;
    }
    /* Our own buffer of tjBufSize() bytes with NOREALLOC, so the caller can free() it. */
    unsigned long jlen = cap;
    if (tjCompress2(tj, pix, w, 0, h, c == 1 ? TJPF_GRAY : TJPF_RGB, &jpg, &jlen, samp,
                    quality, TJFLAG_NOREALLOC)) {
        rc = dae_error_set(err, DAE_EINTERNAL, "jpeg encode: %s", tjGetErrorStr2(tj));
        goto done;
    }
    unsigned char *fit = realloc(jpg, jlen);
    *out = fit ? fit : jpg;
    *out_len = jlen;
    jpg = NULL;
done:
    if (tj)
        tjDestroy(tj);
    free(pix);
    free(jpg);
    return rc;
}

int dae_jpeg_encode(const float *px, int w, int h, int c, int quality, unsigned char **out,
                    size_t *out_len, dae_error *err)
{
    return jpeg_encode(px, NULL, w, h, c, quality, out, out_len, err);
}

int dae_jpeg_encode8(const unsigned char *px, int w, int h, int c, int quality,
                     unsigned char **out, size_t *out_len, dae_error *err)
{
    return jpeg_encode(NULL, px, w, h, c, quality, out, out_len, err);
}

/* ---- a reusable round trip (training noise) ---- */

struct dae_jpeg_roundtrip {
    int w, h, c;
    tjhandle enc, dec;
    unsigned char *pix; /* (h, w, c) interleaved 8-bit */
    unsigned char *jpg; /* tjBufSize bytes */
    unsigned long cap;
};

dae_jpeg_roundtrip *dae_jpeg_roundtrip_create(int w, int h, int c, dae_error *err)
{
    if (w <= 0 || h <= 0 || w > 65500 || h > 65500 || (c != 1 && c != 3)) {
        dae_error_set(err, DAE_EINVAL, "jpeg round trip: %dx%d with %d channels, expected "
                      "1..65500 a side and 1 or 3 channels", w, h, c);
        return NULL;
    }
    dae_jpeg_roundtrip *j = calloc(1, sizeof *j);
    if (!j) {
        dae_error_set(err, DAE_ENOMEM, "jpeg round trip: out of memory");
        return NULL;
    }
    j->w = w, j->h = h, j->c = c;
    j->cap = tjBufSize(w, h, c == 1 ? TJSAMP_GRAY : TJSAMP_420);
    j->enc = tjInitCompress();
    j->dec = tjInitDecompress();
    j->pix = malloc((size_t)w * h * c);
    j->jpg = j->cap != (unsigned long)-1 ? malloc(j->cap) : NULL;
    if (!j->enc || !j->dec || !j->pix || !j->jpg) {
        dae_error_set(err, DAE_ENOMEM, "jpeg round trip: cannot allocate the codec for %dx%d",
                      w, h);
        dae_jpeg_roundtrip_free(j);
        return NULL;
    }
    return j;
}

int dae_jpeg_roundtrip_run(dae_jpeg_roundtrip *j, float *px, int quality, dae_error *err)
{
    if (quality < 1 || quality > 100)
        return dae_error_set(err, DAE_EINVAL, "jpeg round trip: quality %d, expected 1-100",
                             quality);
    int c = j->c, pf = c == 1 ? TJPF_GRAY : TJPF_RGB;
    size_t n = (size_t)j->w * j->h;
    for (int ch = 0; ch < c; ch++) {
        const float *s = px + ch * n;
        unsigned char *d = j->pix + ch;
        for (size_t i = 0; i < n; i++)
            d[i * c] = quantize(s[i]);
    }
    unsigned long len = j->cap;
    unsigned char *buf = j->jpg;
    if (tjCompress2(j->enc, j->pix, j->w, 0, j->h, pf, &buf, &len,
                    c == 1 ? TJSAMP_GRAY : TJSAMP_420, quality, TJFLAG_NOREALLOC))
        return dae_error_set(err, DAE_EINTERNAL, "jpeg round trip: encode: %s",
                             tjGetErrorStr2(j->enc));
    if (tjDecompress2(j->dec, buf, len, j->pix, j->w, 0, j->h, pf, 0))
        return dae_error_set(err, DAE_EINTERNAL, "jpeg round trip: decode: %s",
                             tjGetErrorStr2(j->dec));
    for (int ch = 0; ch < c; ch++) {
        float *d = px + ch * n;
        const unsigned char *s = j->pix + ch;
        for (size_t i = 0; i < n; i++)
            d[i] = (float)s[i * c] / 255.0f; /* as dae_jpeg_decode */
    }
    return DAE_OK;
}

void dae_jpeg_roundtrip_free(dae_jpeg_roundtrip *j)
{
    if (!j)
        return;
    if (j->enc)
        tjDestroy(j->enc);
    if (j->dec)
        tjDestroy(j->dec);
    free(j->pix);
    free(j->jpg);
    free(j);
}

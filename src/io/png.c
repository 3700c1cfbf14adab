/* png.c — PNG decode with libpng's simplified API (limits checked before allocating) and a
 * fast PNG encoder that writes the chunks itself with zlib. */
#include "daed/image.h"

#include <limits.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- decode ---- */

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* DAE_EFORMAT with libpng's message, made specific where libpng's is terse: truncation,
 * and IHDR rejections (the fields are quoted so the bad value is named). */
static int libpng_error(dae_error *err, const char *msg, const unsigned char *buf, size_t len)
{
    if (!msg[0])
        msg = "unreadable image";
    if (strstr(msg, "read beyond end of data"))
        return dae_error_set(err, DAE_EFORMAT, "png: truncated after %zu bytes (%s)", len,
                             msg);
    if (strstr(msg, "IHDR") && len >= 8 + 8 + 13 && memcmp(buf + 12, "IHDR", 4) == 0) {
        const unsigned char *h = buf + 16;
        return dae_error_set(err, DAE_EFORMAT,
                             "png: %s (width %u, height %u, bit depth %u, colour type %u, "
                             "interlace %u; expected width and height 1..2^31-1, depth "
                             "1/2/4/8/16 valid for colour type 0/2/3/4/6)",
                             msg, get_be32(h), get_be32(h + 4), h[8], h[9], h[12]);
    }
    return dae_error_set(err, DAE_EFORMAT, "png: %s", msg);
}

/* libpng allocates a chunk's declared length before reading its data (only IDAT lengths
 * are capped): a 300-byte upload declaring a 1.6 GB tEXt chunk costs a 1.6 GB malloc. From
 * memory every chunk must fit in the input, so check the lengths first. */
static int check_chunk_lengths(const unsigned char *buf, size_t len, dae_error *err)
{
    for (size_t p = 8; len - p >= 8;) {
        uint32_t n = get_be32(buf + p);
        size_t left = len - p - 8; /* after the length and type fields */
        if (n > left || left - n < 4) {
            char type[5];
            for (int i = 0; i < 4; i++) {
                unsigned char c = buf[p + 4 + i];
                type[i] = (char)((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? c : '?');
            }
            type[4] = '\0';
            return dae_error_set(err, DAE_EFORMAT,
                                 "png: truncated after %zu bytes: chunk %s at byte %zu declares "
                                 "%u data bytes, %zu bytes follow (data and CRC)", len, type, p,
                                 n, left);
        }
        if (memcmp(buf + p + 4, "IEND", 4) == 0)
            break;
        p += 12 + (size_t)n;
    }
    return DAE_OK;
}

int dae_png_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                   dae_image *out, dae_error *err)
{
    dae_image_limits dl = dae_image_default_limits();
    if (!lim)
        lim = &dl;
    memset(out, 0, sizeof *out);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    unsigned char *pix = NULL;
    int rc = DAE_OK;

    if (len > (lim->max_bytes ? lim->max_bytes : dl.max_bytes)) {
        rc = dae_error_set(err, DAE_ELIMIT, "png: %zu bytes, limit %zu", len,
                           lim->max_bytes ? lim->max_bytes : dl.max_bytes);
        goto done;
    }
    if (len == 0) {
        rc = dae_error_set(err, DAE_EFORMAT, "png: empty input");
        goto done;
    }
    if (len > 8 && (rc = check_chunk_lengths(buf, len, err)) != DAE_OK)
        goto done;
    /* Reads the signature and every chunk up to the first IDAT (IHDR, PLTE, tRNS, ...). */
    if (!png_image_begin_read_from_memory(&pi, buf, len)) {
        rc = libpng_error(err, pi.message, buf, len);
        goto done;
    }
    /* Check the claimed size before any pixel memory exists: an 11 kB PNG can claim GBs. */
    if (pi.width > (png_uint_32)lim->max_width || pi.height > (png_uint_32)lim->max_height ||
        (size_t)pi.width * pi.height > lim->max_pixels) {
        rc = dae_error_set(err, DAE_ELIMIT,
                           "png: image is %ux%u, limit %dx%d and %zu pixels", pi.width,
                           pi.height, lim->max_width, lim->max_height, lim->max_pixels);
        goto done;
    }
    int colour = (pi.format & PNG_FORMAT_FLAG_COLOR) != 0;
    int alpha = (pi.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    /* 8-bit sRGB output (no PNG_FORMAT_FLAG_LINEAR), interleaved, no colour map. */
    pi.format = colour ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB)
                       : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
    /* libpng takes 16-bit files without gAMA/sRGB as linear light and would gamma-encode
     * them (32768 -> 188); PNGs in the wild store 16-bit sRGB-like values like 8-bit. */
    pi.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    int w = (int)pi.width, h = (int)pi.height, c = colour ? 3 : 1, nch = c + alpha;
    size_t n = (size_t)w * h;
    pix = malloc(n * nch);
    if (!pix) {
        rc = dae_error_set(err, DAE_ENOMEM, "png: cannot allocate %dx%dx%d bytes", w, h, nch);
        goto done;
    }
    if (!png_image_finish_read(&pi, NULL, pix, 0, NULL)) {
        rc = libpng_error(err, pi.message, buf, len);
        goto done;
    }
    rc = dae_image_alloc(out, w, h, c, alpha, err);
    if (rc)
        goto done;
    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f;
    for (int ch = 0; ch < c; ch++) {
        float *d = out->px + ch * n;
        const unsigned char *s = pix + ch;
        for (size_t i = 0; i < n; i++)
            d[i] = lut[s[i * nch]];
    }
    if (alpha) {
        const unsigned char *s = pix + c;
        for (size_t i = 0; i < n; i++)
            out->alpha[i] = lut[s[i * nch]];
    }
done:
    png_image_free(&pi); /* no-op when libpng already freed it on error */
    free(pix);
    return rc;
}

/* ---- encode ---- */

static unsigned char *put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

/* Fill in length and CRC around a chunk whose type+data (n data bytes) start at p + 4. */
static unsigned char *finish_chunk(unsigned char *p, uint32_t n)
{
    put_be32(p, n);
    uLong crc = crc32(0L, p + 4, n + 4);
    return put_be32(p + 8 + n, (uint32_t)crc);
}

static inline unsigned char quantize(float v)
{
    /* Written so the compiler emits maxss/minss (no branches); NaN fails f > 0 -> 0. */
    float f = v * 255.0f + 0.5f;
    f = f > 0.0f ? f : 0.0f;
    f = f < 255.0f ? f : 255.0f;
    return (unsigned char)(int)f;
}

/* Quantize one row of planes to interleaved 8-bit samples. */
static void quantize_row(unsigned char *row, const float *px, const float *alpha, size_t n,
                         size_t o, int w, int c)
{
    int nch = c + (alpha != NULL);
    if (nch == 1) {
        const float *s = px + o;
        for (int x = 0; x < w; x++)
            row[x] = quantize(s[x]);
        return;
    }
    for (int ch = 0; ch < c; ch++) {
        const float *s = px + ch * n + o;
        for (int x = 0; x < w; x++)
            row[(size_t)x * nch + ch] = quantize(s[x]);
    }
    if (alpha)
        for (int x = 0; x < w; x++)
            row[(size_t)x * nch + c] = quantize(alpha[o + x]);
}

/* |b as a signed byte|, branch-free: filtered noise flips sign at random. */
static inline unsigned absb(unsigned char b) { return (unsigned)abs((int)(signed char)b); }

/* Filter one row into d[0..rowbytes] choosing None, Sub or Up by the smallest sum of
 * |byte as signed| (libpng's heuristic without the costly Average and Paeth): near-binary
 * images (digits) favour None, photos Sub or Up. bpp = bytes per pixel. Measured with
 * bench/png_encode: 28x28 digit 262 bytes (Up alone: 366), 1 Mpx RGB as small as Up. */
static void filter_row(unsigned char *d, const unsigned char *row, const unsigned char *prev,
                       size_t rowbytes, int bpp)
{
    /* Long rows are sampled every 4th byte: same choice in practice, 4x less work. */
    size_t step = rowbytes > 256 ? 4 : 1;
    unsigned long s_none = 0, s_sub = 0, s_up = 0;
    for (size_t i = 0; i < rowbytes; i += step) {
        unsigned char left = i >= (size_t)bpp ? row[i - bpp] : 0;
        s_none += absb(row[i]);
        s_sub += absb((unsigned char)(row[i] - left));
        s_up += absb((unsigned char)(row[i] - prev[i]));
    }
    unsigned char *o = d + 1;
    if (s_none <= s_sub && s_none <= s_up) {
        d[0] = 0;
        memcpy(o, row, rowbytes);
    } else if (s_sub <= s_up) {
        d[0] = 1;
        for (size_t i = 0; i < rowbytes; i++)
            o[i] = (unsigned char)(row[i] - (i >= (size_t)bpp ? row[i - bpp] : 0));
    } else {
        d[0] = 2;
        for (size_t i = 0; i < rowbytes; i++)
            o[i] = (unsigned char)(row[i] - prev[i]);
    }
}

/* Writes signature, IHDR and IEND around IDAT data that zlib streams straight into the
 * output. Scanlines are filtered and deflated in stripes of ~16 kB, so the data zlib
 * reads is still in cache and a 12 Mpx image needs no full-size scanline copy. */
static int png_encode(const float *px, const float *alpha, int w, int h, int c, int level,
                      unsigned char **out, size_t *out_len, dae_error *err)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *out = NULL;
    *out_len = 0;
    if (!px || w <= 0 || h <= 0 || (c != 1 && c != 3))
        return dae_error_set(err, DAE_EINVAL,
                             "png encode: %dx%d with %d channels, expected w, h > 0 and 1 "
                             "or 3 channels", w, h, c);
    if (level < 0 || level > 9)
        return dae_error_set(err, DAE_EINVAL, "png encode: zlib level %d, expected 0-9",
                             level);
    int nch = c + (alpha != NULL);
    size_t rowbytes = (size_t)w * nch, n = (size_t)w * h;
    /* Keeps zlib's uInt counters and the single IDAT's 31-bit length in range. */
    const size_t raw_max = ((size_t)1 << 31) - ((size_t)1 << 26);
    if ((size_t)h > raw_max / (rowbytes + 1))
        return dae_error_set(err, DAE_ELIMIT, "png encode: %dx%dx%d is too large", w, h, nch);
    size_t raw_len = (size_t)h * (rowbytes + 1);
    size_t stripe_rows = ((size_t)1 << 14) / (rowbytes + 1);
    if (stripe_rows < 1)
        stripe_rows = 1;
    if (stripe_rows > (size_t)h)
        stripe_rows = (size_t)h;

    int rc = DAE_OK, z_ready = 0;
    unsigned char *stripe = malloc(stripe_rows * (rowbytes + 1) + 2 * rowbytes), *png = NULL;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (!stripe) {
        rc = dae_error_set(err, DAE_ENOMEM, "png encode: cannot allocate scanlines");
        goto done;
    }
    unsigned char *row = stripe + stripe_rows * (rowbytes + 1), *prev = row + rowbytes;
    memset(prev, 0, rowbytes);

    /* A window and hash no bigger than the data: for a 28x28 image zlib then sets up a
     * few kB instead of 256 kB per call, which dominates small-image encode time. */
    int wbits = 9;
    while (wbits < 15 && ((size_t)1 << wbits) < raw_len)
        wbits++;
    int mem_level = wbits - 6 < 8 ? wbits - 6 : 8;
    if (deflateInit2(&zs, level, Z_DEFLATED, wbits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
        rc = dae_error_set(err, DAE_ENOMEM, "png encode: zlib init failed");
        goto done;
    }
    z_ready = 1;
    enum { HEAD = 8 + 12 + 13 + 8, TAIL = 4 + 12 }; /* sig, IHDR, IDAT head; CRC, IEND */
    size_t cap = HEAD + deflateBound(&zs, (uLong)raw_len) + TAIL;
    png = malloc(cap);
    if (!png) {
        rc = dae_error_set(err, DAE_ENOMEM, "png encode: cannot allocate %zu bytes", cap);
        goto done;
    }
    memcpy(png, sig, sizeof sig);
    unsigned char *q = png + sizeof sig + 4;
    memcpy(q, "IHDR", 4);
    q = put_be32(q + 4, (uint32_t)w);
    q = put_be32(q, (uint32_t)h);
    q[0] = 8;                                                   /* bit depth */
    q[1] = (unsigned char)((c == 3 ? 2 : 0) | (alpha ? 4 : 0)); /* colour type */
    q[2] = q[3] = q[4] = 0; /* deflate, adaptive filtering, no interlace */
    finish_chunk(png + sizeof sig, 13);
    memcpy(png + HEAD - 4, "IDAT", 4);

    zs.next_out = png + HEAD;
    zs.avail_out = (uInt)(cap - HEAD - TAIL);
    for (size_t y0 = 0; y0 < (size_t)h; y0 += stripe_rows) {
        size_t rows = (size_t)h - y0 < stripe_rows ? (size_t)h - y0 : stripe_rows;
        for (size_t r = 0; r < rows; r++) {
            quantize_row(row, px, alpha, n, (y0 + r) * w, w, c);
            filter_row(stripe + r * (rowbytes + 1), row, prev, rowbytes, nch);
            unsigned char *t = prev;
            prev = row;
            row = t;
        }
        int last = y0 + rows == (size_t)h;
        zs.next_in = stripe;
        zs.avail_in = (uInt)(rows * (rowbytes + 1));
        int zr = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
        /* deflateBound covers the whole stream, so input is always consumed. */
        if (zs.avail_in != 0 || (last ? zr != Z_STREAM_END : zr != Z_OK)) {
            rc = dae_error_set(err, DAE_EINTERNAL, "png encode: deflate failed (%d): %s", zr,
                               zs.msg ? zs.msg : "output bound too small");
            goto done;
        }
    }
    unsigned char *p = finish_chunk(png + HEAD - 8, (uint32_t)zs.total_out);
    memcpy(p + 4, "IEND", 4);
    p = finish_chunk(p, 0);

    *out_len = (size_t)(p - png);
    unsigned char *fit = realloc(png, *out_len);
    *out = fit ? fit : png;
    png = NULL;
done:
    if (z_ready)
        deflateEnd(&zs);
    free(stripe);
    free(png);
    return rc;
}

int dae_png_encode(const float *px, int w, int h, int c, int level, unsigned char **out,
                   size_t *out_len, dae_error *err)
{
    return png_encode(px, NULL, w, h, c, level, out, out_len, err);
}

int dae_png_encode_image(const dae_image *im, int level, unsigned char **out,
                         size_t *out_len, dae_error *err)
{
    return png_encode(im->px, im->alpha, im->w, im->h, im->c, level, out, out_len, err);
}

/* png.c — PNG decode with libpng's read API (limits checked before allocating, samples as
 * stored: no gamma or colour-space conversion) and a fast PNG encoder that writes the chunks itself with zlib. */
#include "daed/io/image.h"
#include "daed/io/png.h"

#include <limits.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
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

/* libpng's ordinary read API is used, not the simplified one: the simplified reader applies
 * gAMA/sRGB/cHRM/iCCP (basn0g08's 32 became 94, while PIL, OpenCV and torchvision read the
 * stored 32) and decodes 16-bit interlaced images wrongly (libpng 1.6.39: row 0 wrong, row
 * 2 a copy of row 1). libpng reports errors by longjmp: the setjmp lives in read_png
 * alone, and everything it touches after the setjmp is either volatile or owned by ctx. */

typedef struct png_src {
    const unsigned char *buf;
    size_t len, pos;
    char msg[160]; /* libpng's error message */
} png_src;

static void src_read(png_structp p, png_bytep out, size_t n)
{
    png_src *s = png_get_io_ptr(p);
    if (n > s->len - s->pos)
        png_error(p, "read beyond end of data");
    memcpy(out, s->buf + s->pos, n);
    s->pos += n;
}

static void on_error(png_structp p, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "");
    png_longjmp(p, 1);
}

static void on_warning(png_structp p, png_const_charp msg) { (void)p, (void)msg; }

/* Ancillary chunks that would change the pixels (gamma, colour space) or cost work for
 * nothing (compressed text, profiles): libpng skips them, checking only their CRC. */
static void ignore_chunks(png_structp p)
{
    static const png_byte skip[] = "gAMA\0cHRM\0iCCP\0sRGB\0sBIT\0bKGD\0hIST\0pHYs\0"
                                   "sPLT\0tEXt\0zTXt\0iTXt\0tIME\0oFFs\0pCAL\0sCAL\0eXIf";
    png_set_keep_unknown_chunks(p, PNG_HANDLE_CHUNK_NEVER, skip, (int)(sizeof skip / 5));
    png_set_keep_unknown_chunks(p, PNG_HANDLE_CHUNK_NEVER, NULL, 0); /* unknown ones */
}

/* 8-bit samples as stored: low depths scaled to 0..255, 16-bit reduced to the high byte
 * (what PIL and OpenCV do), palettes expanded to RGB, tRNS turned into an alpha channel. */
static void set_transforms(png_structp p, png_infop info, int *colour, int *alpha)
{
    int ct = png_get_color_type(p, info);
    *colour = (ct & PNG_COLOR_MASK_COLOR) != 0;
    *alpha = (ct & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(p, info, PNG_INFO_tRNS);
    if (ct == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(p);
    if (ct == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(p, info) < 8)
        png_set_expand_gray_1_2_4_to_8(p);
    if (png_get_valid(p, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(p);
    png_set_strip_16(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
}

typedef struct png_out {
    int w, h, colour, alpha;
    unsigned char *pix;   /* w*h*(colour ? 3 : 1 + alpha) interleaved, malloc'd */
    png_bytep *rows;
} png_out;

/* Header, limit check, then the pixels into o->pix. DAE_OK, or the error set. */
static int read_png(png_src *src, const dae_image_limits *lim, png_out *o, dae_error *err)
{
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, src, on_error, on_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    volatile int rc = DAE_OK;
    if (!info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return dae_error_set(err, DAE_ENOMEM, "png: cannot allocate a decoder");
    }
    if (setjmp(png_jmpbuf(p))) {
        rc = libpng_error(err, src->msg, src->buf, src->len);
        goto done;
    }
    png_set_read_fn(p, src, src_read);
    png_set_chunk_malloc_max(p, src->len); /* from memory, no chunk outgrows the input */
    ignore_chunks(p);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    if (w > (png_uint_32)lim->max_width || h > (png_uint_32)lim->max_height ||
        (size_t)w * h > lim->max_pixels) {
        rc = dae_error_set(err, DAE_ELIMIT, "png: image is %ux%u, limit %dx%d and %zu pixels",
                           w, h, lim->max_width, lim->max_height, lim->max_pixels);
        goto done;
    }
    set_transforms(p, info, &o->colour, &o->alpha);
    o->w = (int)w, o->h = (int)h;
    size_t rowbytes = png_get_rowbytes(p, info), nch = (o->colour ? 3 : 1) + o->alpha;
    if (rowbytes != (size_t)w * nch) {
        rc = dae_error_set(err, DAE_EINTERNAL, "png: %zu bytes per row, expected %zu",
                           rowbytes, (size_t)w * nch);
        goto done;
    }
    o->pix = malloc((size_t)h * rowbytes);
    o->rows = malloc((size_t)h * sizeof *o->rows);
    if (!o->pix || !o->rows) {
        rc = dae_error_set(err, DAE_ENOMEM, "png: cannot allocate %ux%ux%zu bytes", w, h, nch);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++)
        o->rows[y] = o->pix + y * rowbytes;
    /* Not png_read_end: complete pixel data without IEND is accepted, as browsers do
     * (the last IDAT's CRC is still checked). */
    png_read_image(p, o->rows);
done:
    png_destroy_read_struct(&p, &info, NULL);
    return rc;
}

/* The 8-byte signature, with the fault named: bytes 4-7 (CR LF 1A LF) are changed by a
 * text-mode transfer, which the PNG designers put there to detect. */
static int check_signature(const unsigned char *buf, size_t len, dae_error *err)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = len < 8 ? len : 8;
    if (memcmp(buf, sig, n) == 0 && len >= 8)
        return DAE_OK;
    if (memcmp(buf, sig, n) == 0)
        return dae_error_set(err, DAE_EFORMAT, "png: truncated after %zu bytes, inside the "
                             "8-byte signature", len);
    size_t i = 0;
    while (buf[i] == sig[i])
        i++;
    return dae_error_set(err, DAE_EFORMAT,
                         "png: bad signature: byte %zu is %02x, expected %02x (89 50 4e 47 0d "
                         "0a 1a 0a)%s", i, buf[i], sig[i],
                         i >= 4 ? "; line endings changed, as by a text-mode transfer" : "");
}

/* Interleaved 8-bit samples into the planes of im, as v / 255. */
static void to_planes(dae_image *im, const unsigned char *pix)
{
    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f;
    size_t n = (size_t)im->w * im->h;
    int nch = im->c + (im->alpha != NULL);
    for (int ch = 0; ch < im->c; ch++) {
        float *d = im->px + ch * n;
        const unsigned char *s = pix + ch;
        for (size_t i = 0; i < n; i++)
            d[i] = lut[s[i * nch]];
    }
    if (im->alpha)
        for (size_t i = 0; i < n; i++)
            im->alpha[i] = lut[pix[i * nch + im->c]];
}

/* The checks, limits and libpng's read into o (interleaved 8-bit samples); the caller
 * frees o->pix and o->rows whatever the result. */
static int decode_samples(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                          png_out *o, dae_error *err)
{
    dae_image_limits dl = dae_image_default_limits();
    if (!lim)
        lim = &dl;
    size_t max_bytes = lim->max_bytes ? lim->max_bytes : dl.max_bytes;
    if (len > max_bytes)
        return dae_error_set(err, DAE_ELIMIT, "png: %zu bytes, limit %zu", len, max_bytes);
    if (len == 0)
        return dae_error_set(err, DAE_EFORMAT, "png: empty input");
    int rc = check_signature(buf, len, err);
    if (rc == DAE_OK && len > 8)
        rc = check_chunk_lengths(buf, len, err);
    png_src src = {buf, len, 0, ""};
    if (rc == DAE_OK)
        rc = read_png(&src, lim, o, err);
    return rc;
}

int dae_png_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                   dae_image *out, dae_error *err)
{
    memset(out, 0, sizeof *out);
    png_out o = {0};
    int rc = decode_samples(buf, len, lim, &o, err);
    if (rc == DAE_OK)
        rc = dae_image_alloc(out, o.w, o.h, o.colour ? 3 : 1, o.alpha, err);
    if (rc == DAE_OK)
        to_planes(out, o.pix);
    free(o.rows);
    free(o.pix);
    return rc;
}

/* Interleaved samples into the 8-bit planes of im. */
static void to_planes8(dae_image8 *im, const unsigned char *pix)
{
    size_t n = (size_t)im->w * im->h;
    int nch = im->c + (im->alpha != NULL);
    for (int ch = 0; ch < im->c; ch++) {
        unsigned char *d = im->px + ch * n;
        const unsigned char *s = pix + ch;
        for (size_t i = 0; i < n; i++)
            d[i] = s[i * nch];
    }
    if (im->alpha)
        for (size_t i = 0; i < n; i++)
            im->alpha[i] = pix[i * nch + im->c];
}

int dae_png_decode8(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                    dae_image8 *out, dae_error *err)
{
    memset(out, 0, sizeof *out);
    png_out o = {0};
    int rc = decode_samples(buf, len, lim, &o, err);
    free(o.rows);
    o.rows = NULL;
    if (rc == DAE_OK && !o.colour && !o.alpha) { /* one gray plane: the samples as read */
        *out = (dae_image8){.w = o.w, .h = o.h, .c = 1, .px = o.pix};
        return DAE_OK;
    }
    if (rc == DAE_OK)
        rc = dae_image8_alloc(out, o.w, o.h, o.colour ? 3 : 1, o.alpha, err);
    if (rc == DAE_OK)
        to_planes8(out, o.pix);
    free(o.pix);
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

/* The same from 8-bit planes (dae_png_encode8): interleave one row. */
static void interleave_row(unsigned char *row, const unsigned char *px,
                           const unsigned char *alpha, size_t n, size_t o, int w, int c)
{
    int nch = c + (alpha != NULL);
    if (nch == 1) {
        memcpy(row, px + o, (size_t)w);
        return;
    }
    for (int ch = 0; ch < c; ch++) {
        const unsigned char *s = px + ch * n + o;
        for (int x = 0; x < w; x++)
            row[(size_t)x * nch + ch] = s[x];
    }
    if (alpha)
        for (int x = 0; x < w; x++)
            row[(size_t)x * nch + c] = alpha[o + x];
}

/* What png_encode reads: float planes (quantized row by row) or 8-bit ones. */
typedef struct planes_src {
    const float *px, *alpha;
    const unsigned char *px8, *alpha8;
} planes_src;

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

/* The PNG signature and the IHDR chunk (8-bit, gray or RGB, with alpha or not) at png. */
static void put_head(unsigned char *png, int w, int h, int c, int has_alpha)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(png, sig, sizeof sig);
    unsigned char *q = png + sizeof sig + 4;
    memcpy(q, "IHDR", 4);
    q = put_be32(q + 4, (uint32_t)w);
    q = put_be32(q, (uint32_t)h);
    q[0] = 8;                                                       /* bit depth */
    q[1] = (unsigned char)((c == 3 ? 2 : 0) | (has_alpha ? 4 : 0)); /* colour type */
    q[2] = q[3] = q[4] = 0; /* deflate, adaptive filtering, no interlace */
    finish_chunk(png + sizeof sig, 13);
}

/* Writes signature, IHDR and IEND around IDAT data that zlib streams straight into the
 * output. Scanlines are filtered and deflated in stripes of ~16 kB, so the data zlib
 * reads is still in cache and a 12 Mpx image needs no full-size scanline copy. */
static int png_encode(const planes_src *src, int w, int h, int c, int level,
                      unsigned char **out, size_t *out_len, dae_error *err)
{
    *out = NULL;
    *out_len = 0;
    int has_alpha = src->alpha || src->alpha8;
    if ((!src->px && !src->px8) || w <= 0 || h <= 0 || (c != 1 && c != 3))
        return dae_error_set(err, DAE_EINVAL,
                             "png encode: %dx%d with %d channels, expected w, h > 0 and 1 "
                             "or 3 channels", w, h, c);
    if (level < 0 || level > 9)
        return dae_error_set(err, DAE_EINVAL, "png encode: zlib level %d, expected 0-9",
                             level);
    int nch = c + has_alpha;
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
    put_head(png, w, h, c, has_alpha);
    memcpy(png + HEAD - 4, "IDAT", 4);

    zs.next_out = png + HEAD;
    zs.avail_out = (uInt)(cap - HEAD - TAIL);
    for (size_t y0 = 0; y0 < (size_t)h; y0 += stripe_rows) {
        size_t rows = (size_t)h - y0 < stripe_rows ? (size_t)h - y0 : stripe_rows;
        for (size_t r = 0; r < rows; r++) {
            if (src->px8)
                interleave_row(row, src->px8, src->alpha8, n, (y0 + r) * w, w, c);
            else
                quantize_row(row, src->px, src->alpha, n, (y0 + r) * w, w, c);
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
    planes_src src = {.px = px};
    return png_encode(&src, w, h, c, level, out, out_len, err);
}

int dae_png_encode_image(const dae_image *im, int level, unsigned char **out,
                         size_t *out_len, dae_error *err)
{
    planes_src src = {.px = im->px, .alpha = im->alpha};
    return png_encode(&src, im->w, im->h, im->c, level, out, out_len, err);
}

int dae_png_encode8(const unsigned char *px, const unsigned char *alpha, int w, int h, int c,
                    int level, unsigned char **out, size_t *out_len, dae_error *err)
{
    planes_src src = {.px8 = px, .alpha8 = alpha};
    return png_encode(&src, w, h, c, level, out, out_len, err);
}

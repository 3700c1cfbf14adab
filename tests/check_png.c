/* check_png.c — PNG decode of every PNG kind (made here with libpng's full write API),
 * bit-exact encode/decode round trips, and a table of malformed inputs. */
#include "check_quiet.h"
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "daed/io/image.h"
#include "daed/io/jpeg.h"
#include "daed/io/png.h"

/* ---- making test PNGs ---- */

typedef struct {
    int w, h, color_type, bit_depth, interlace;
    const uint16_t *samples; /* h * w * channels values, each < 2^bit_depth */
    const png_color *palette;
    int npalette;
    const unsigned char *trans; /* palette alpha */
    int ntrans;
    int gray_trans; /* >= 0: tRNS gray value for a gray image */
} png_spec;

typedef struct {
    unsigned char *buf;
    size_t len, cap;
} membuf;

static void mem_write(png_structp png, png_bytep data, size_t n)
{
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->buf = realloc(m->buf, m->cap);
        if (!m->buf)
            png_error(png, "out of memory");
    }
    memcpy(m->buf + m->len, data, n);
    m->len += n;
}

static void mem_flush(png_structp png) { (void)png; }

static int spec_channels(int color_type)
{
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* gray, palette */
    }
}

/* Pack samples into PNG rows (MSB first below 8 bits, big-endian at 16) and write. */
static unsigned char *make_png(const png_spec *s, size_t *len)
{
    int ch = spec_channels(s->color_type), d = s->bit_depth;
    size_t rowbytes = ((size_t)s->w * ch * d + 7) / 8;
    unsigned char *pix = calloc((size_t)s->h, rowbytes);
    png_bytep *rows = malloc(sizeof(png_bytep) * s->h);
    ck_assert(pix && rows);
    for (int y = 0; y < s->h; y++) {
        unsigned char *r = pix + (size_t)y * rowbytes;
        rows[y] = r;
        for (int i = 0; i < s->w * ch; i++) {
            unsigned v = s->samples[(size_t)y * s->w * ch + i];
            ck_assert_uint_lt(v, 1u << d);
            if (d == 16) {
                r[2 * i] = (unsigned char)(v >> 8);
                r[2 * i + 1] = (unsigned char)v;
            } else if (d == 8) {
                r[i] = (unsigned char)v;
            } else {
                int bit = i * d;
                r[bit / 8] |= (unsigned char)(v << (8 - d - bit % 8));
            }
        }
    }
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng failed writing a test image");
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, s->w, s->h, d, s->color_type,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->npalette);
    if (s->trans)
        png_set_tRNS(png, info, s->trans, s->ntrans, NULL);
    png_color_16 tg = {0};
    if (s->gray_trans >= 0) {
        tg.gray = (png_uint_16)s->gray_trans;
        png_set_tRNS(png, info, NULL, 0, &tg);
    }
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(pix);
    *len = m.len;
    return m.buf;
}

static dae_image decode_ok(const unsigned char *buf, size_t len, int w, int h, int c,
                           int has_alpha)
{
    dae_image im;
    dae_error e = {0};
    int rc = dae_png_decode(buf, len, NULL, &im, &e);
    ck_assert_msg(rc == DAE_OK, "decode failed: %s", e.msg);
    ck_assert_int_eq(im.w, w);
    ck_assert_int_eq(im.h, h);
    ck_assert_int_eq(im.c, c);
    ck_assert_int_eq(im.alpha != NULL, has_alpha);
    return im;
}

static float v8(unsigned v) { return (float)v / 255.0f; }

/* ---- every PNG kind ---- */

START_TEST(test_gray_low_bit_depths)
{
    static const int depths[] = {1, 2, 4, 8};
    for (int k = 0; k < 4; k++) {
        int d = depths[k], w = 13, h = 3; /* odd width: rows end mid-byte */
        unsigned maxv = (1u << d) - 1;
        uint16_t s[39];
        for (int i = 0; i < w * h; i++)
            s[i] = (uint16_t)((i * 7) % (maxv + 1));
        png_spec sp = {w, h, PNG_COLOR_TYPE_GRAY, d, 0, s, NULL, 0, NULL, 0, -1};
        size_t len;
        unsigned char *png = make_png(&sp, &len);
        dae_image im = decode_ok(png, len, w, h, 1, 0);
        for (int i = 0; i < w * h; i++) /* libpng scales v to v * 255 / maxv exactly */
            ck_assert_msg(im.px[i] == v8(s[i] * 255u / maxv), "%d-bit sample %d: %g", d, i,
                          im.px[i]);
        dae_image_free(&im);
        free(png);
    }
}
END_TEST

START_TEST(test_gray16)
{
    /* 16-bit samples are read as sRGB-encoded and reduced to 8 bits: 257*k -> k, and
     * 32768 -> 128 (~0.5), not libpng's linear-light default (which would give 188). */
    const uint16_t s[6] = {0, 257 * 7, 32768, 257 * 200, 65535, 257 * 128};
    const unsigned want[6] = {0, 7, 128, 200, 255, 128};
    png_spec sp = {3, 2, PNG_COLOR_TYPE_GRAY, 16, 0, s, NULL, 0, NULL, 0, -1};
    size_t len;
    unsigned char *png = make_png(&sp, &len);
    dae_image im = decode_ok(png, len, 3, 2, 1, 0);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(im.px[i] == v8(want[i]), "sample %d: %g, want %u/255", i, im.px[i],
                      want[i]);
    ck_assert_float_eq_tol(im.px[2], 0.5f, 0.003f);
    dae_image_free(&im);
    free(png);
}
END_TEST

START_TEST(test_gray_alpha)
{
    uint16_t s[2 * 12];
    for (int i = 0; i < 12; i++) {
        s[2 * i] = (uint16_t)(i * 21);
        s[2 * i + 1] = (uint16_t)(255 - i * 20);
    }
    png_spec sp = {4, 3, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, s, NULL, 0, NULL, 0, -1};
    size_t len;
    unsigned char *png = make_png(&sp, &len);
    dae_image im = decode_ok(png, len, 4, 3, 1, 1);
    for (int i = 0; i < 12; i++) { /* 8-bit output is not premultiplied */
        ck_assert_float_eq(im.px[i], v8(s[2 * i]));
        ck_assert_float_eq(im.alpha[i], v8(s[2 * i + 1]));
    }
    dae_image_free(&im);
    free(png);

    /* a gray tRNS key colour makes an alpha plane too */
    uint16_t g[4] = {0, 10, 3, 10};
    png_spec kp = {2, 2, PNG_COLOR_TYPE_GRAY, 4, 0, g, NULL, 0, NULL, 0, 10};
    png = make_png(&kp, &len);
    im = decode_ok(png, len, 2, 2, 1, 1);
    ck_assert_float_eq(im.alpha[0], 1.0f);
    ck_assert_float_eq(im.alpha[1], 0.0f);
    ck_assert_float_eq(im.alpha[2], 1.0f);
    ck_assert_float_eq(im.px[2], v8(3 * 17));
    dae_image_free(&im);
    free(png);
}
END_TEST

static void check_rgb(int color_type, int depth, int interlace, int w, int h)
{
    int ch = spec_channels(color_type), n = w * h;
    uint16_t *s = malloc(sizeof(uint16_t) * n * ch);
    for (int i = 0; i < n * ch; i++) {
        unsigned k = (unsigned)(i * 37 + i / 5) % 256;
        if (ch == 4 && i % 4 == 3)
            k = 255; /* opaque; alpha variety is checked in 8-bit below */
        s[i] = (uint16_t)(depth == 16 ? k * 257 : k);
    }
    if (ch == 4 && depth == 8)
        for (int i = 0; i < n; i++)
            s[4 * i + 3] = (uint16_t)((i * 53) % 256);
    png_spec sp = {w, h, color_type, depth, interlace, s, NULL, 0, NULL, 0, -1};
    size_t len;
    unsigned char *png = make_png(&sp, &len);
    dae_image im = decode_ok(png, len, w, h, 3, ch == 4);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < 3; c++) {
            unsigned v = depth == 16 ? s[i * ch + c] / 257u : s[i * ch + c];
            ck_assert_msg(im.px[c * n + i] == v8(v), "type %d/%d-bit px %d ch %d: %g want %u",
                          color_type, depth, i, c, im.px[c * n + i], v);
        }
        if (ch == 4) {
            unsigned a = depth == 16 ? s[i * 4 + 3] / 257u : s[i * 4 + 3];
            ck_assert_float_eq(im.alpha[i], v8(a));
        }
    }
    dae_image_free(&im);
    free(png);
    free(s);
}

START_TEST(test_rgb_rgba)
{
    check_rgb(PNG_COLOR_TYPE_RGB, 8, 0, 5, 4);
    check_rgb(PNG_COLOR_TYPE_RGB, 16, 0, 5, 4);
    check_rgb(PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, 6, 3);
    check_rgb(PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, 6, 3);
}
END_TEST

START_TEST(test_interlaced)
{
    check_rgb(PNG_COLOR_TYPE_RGB, 8, 1, 13, 11); /* not a multiple of 8: partial passes */
    check_rgb(PNG_COLOR_TYPE_RGB_ALPHA, 8, 1, 9, 7);
    uint16_t s[3 * 5];
    for (int i = 0; i < 15; i++)
        s[i] = (uint16_t)(i % 4);
    png_spec sp = {5, 3, PNG_COLOR_TYPE_GRAY, 2, 1, s, NULL, 0, NULL, 0, -1};
    size_t len;
    unsigned char *png = make_png(&sp, &len);
    dae_image im = decode_ok(png, len, 5, 3, 1, 0);
    for (int i = 0; i < 15; i++)
        ck_assert_float_eq(im.px[i], v8(s[i] * 85u));
    dae_image_free(&im);
    free(png);
}
END_TEST

START_TEST(test_palette)
{
    const png_color pal[4] = {{255, 0, 0}, {0, 128, 7}, {10, 20, 30}, {200, 200, 200}};
    const unsigned char trans[3] = {0, 128, 255}; /* index 3 has no entry: opaque */
    uint16_t idx[12];
    for (int i = 0; i < 12; i++)
        idx[i] = (uint16_t)((i * 3) % 4);
    for (int with_trns = 0; with_trns < 2; with_trns++)
        for (int depth = 2; depth <= 8; depth += 6) {
            png_spec sp = {4, 3, PNG_COLOR_TYPE_PALETTE, depth, 0, idx, pal, 4,
                           with_trns ? trans : NULL, with_trns ? 3 : 0, -1};
            size_t len;
            unsigned char *png = make_png(&sp, &len);
            dae_image im = decode_ok(png, len, 4, 3, 3, with_trns); /* palette is colour */
            for (int i = 0; i < 12; i++) {
                const png_color *p = &pal[idx[i]];
                ck_assert_float_eq(im.px[i], v8(p->red));
                ck_assert_float_eq(im.px[12 + i], v8(p->green));
                ck_assert_float_eq(im.px[24 + i], v8(p->blue));
                if (with_trns)
                    ck_assert_float_eq(im.alpha[i], v8(idx[i] < 3 ? trans[idx[i]] : 255));
            }
            dae_image_free(&im);
            free(png);
        }
}
END_TEST

/* ---- encoder ---- */

static void round_trip(int w, int h, int c, int with_alpha, int level)
{
    dae_image im, back;
    dae_error e = {0};
    ck_assert_int_eq(dae_image_alloc(&im, w, h, c, with_alpha, &e), DAE_OK);
    uint32_t s = (uint32_t)(w * 31 + h * 7 + c);
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n * c; i++) {
        s = s * 1664525u + 1013904223u;
        /* mix smooth runs, flat areas and noise so every filter gets chosen */
        unsigned v = (i / 97) % 3 == 0 ? (unsigned)(i % 256) : (i / 97) % 3 == 1 ? 0 : s >> 24;
        im.px[i] = v8(v);
    }
    for (size_t i = 0; with_alpha && i < n; i++)
        im.alpha[i] = v8((unsigned)((i * 11) % 256));
    unsigned char *png;
    size_t len;
    ck_assert_int_eq(dae_png_encode_image(&im, level, &png, &len, &e), DAE_OK);
    int rc = dae_png_decode(png, len, NULL, &back, &e);
    ck_assert_msg(rc == DAE_OK, "%dx%dx%d level %d: %s", w, h, c, level, e.msg);
    ck_assert_int_eq(back.c, c);
    ck_assert_int_eq(back.alpha != NULL, with_alpha);
    ck_assert_int_eq(memcmp(back.px, im.px, n * c * sizeof(float)), 0);
    if (with_alpha)
        ck_assert_int_eq(memcmp(back.alpha, im.alpha, n * sizeof(float)), 0);
    dae_image_free(&back);
    free(png);
    dae_image_free(&im);
}

START_TEST(test_round_trip_exact)
{
    round_trip(28, 28, 1, 0, 1);
    round_trip(1, 1, 1, 0, 1);
    round_trip(1, 1, 3, 1, 9);
    for (int level = 0; level <= 9; level += 3)
        round_trip(37, 19, 3, 0, level);
    round_trip(300, 41, 3, 1, 1);  /* rows of 1200 bytes: many stripes */
    round_trip(6000, 5, 1, 1, 1);  /* one row per stripe */
    round_trip(23, 700, 1, 0, 6);  /* window larger than the minimum */
}
END_TEST

START_TEST(test_encode_quantization)
{
    /* clamp, round to nearest, NaN -> 0 */
    const float px[8] = {-1.0f, 2.0f, NAN, 0.5f, 1.0f / 255.0f, 0.499f / 255.0f,
                         0.501f / 255.0f, INFINITY};
    const unsigned want[8] = {0, 255, 0, 128, 1, 0, 1, 255};
    unsigned char *png;
    size_t len;
    dae_error e = {0};
    ck_assert_int_eq(dae_png_encode(px, 8, 1, 1, 1, &png, &len, &e), DAE_OK);
    dae_image im = decode_ok(png, len, 8, 1, 1, 0);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(im.px[i] == v8(want[i]), "px %d: %g, want %u/255", i, im.px[i],
                      want[i]);
    dae_image_free(&im);
    free(png);

    /* the encoding is a standard PNG: libpng's simplified reader agrees */
    const float rgb[6] = {1, 0, 0.2f, 0.4f, 0, 1};
    ck_assert_int_eq(dae_png_encode(rgb, 2, 1, 3, 6, &png, &len, &e), DAE_OK);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    ck_assert(png_image_begin_read_from_memory(&pi, png, len));
    ck_assert_uint_eq(pi.format, PNG_FORMAT_RGB);
    unsigned char out[6];
    ck_assert(png_image_finish_read(&pi, NULL, out, 0, NULL));
    const unsigned char want_rgb[6] = {255, 51, 0, 0, 102, 255}; /* interleaved */
    ck_assert_int_eq(memcmp(out, want_rgb, 6), 0);
    ck_assert_int_eq(memcmp(png + 12, "IHDR", 4), 0);
    ck_assert_int_eq(memcmp(png + len - 8, "IEND", 4), 0);
    free(png);

    png = (unsigned char *)"x";
    ck_assert_int_eq(dae_png_encode(rgb, 2, 1, 2, 1, &png, &len, &e), DAE_EINVAL);
    ck_assert_ptr_null(png);
    ck_assert_int_eq(dae_png_encode(rgb, 2, 1, 3, 10, &png, &len, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "level 10"));
    ck_assert_int_eq(dae_png_encode(rgb, 0, 1, 3, 1, &png, &len, &e), DAE_EINVAL);
}
END_TEST

/* ---- malformed inputs ---- */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Recompute the CRC of the chunk starting at off (its length field). */
static void fix_crc(unsigned char *b, size_t off)
{
    uint32_t n = (uint32_t)b[off] << 24 | b[off + 1] << 16 | b[off + 2] << 8 | b[off + 3];
    put32(b + off + 8 + n, (uint32_t)crc32(0, b + off + 4, n + 4));
}

enum { IHDR_AT = 8, IDAT_AT = 33 }; /* our encoder: signature, IHDR, then one IDAT */
enum { EMPTY = -100000, IDAT_CRC = -2 };

typedef struct {
    const char *name;
    int cut;        /* > 0: keep this many bytes; < 0: drop that many at the end; EMPTY */
    int patch_at;   /* >= 0: write patch_val there (then fix_at's CRC if >= 0);
                     * IDAT_CRC: flip bits in the IDAT CRC */
    uint32_t patch_val;
    int patch_bytes; /* 1 or 4 */
    int fix_at;
    int code;
    const char *msg;
} malformed;

static const malformed bad[] = {
    {"empty", EMPTY, -1, 0, 0, -1, DAE_EFORMAT, "png: empty input"},
    {"half signature", 4, -1, 0, 0, -1, DAE_EFORMAT, "truncated after 4 bytes"},
    {"CR LF changed", 0, 4, 0x0a, 1, -1, DAE_EFORMAT, "byte 4 is 0a, expected 0d (89 50 4e "
     "47 0d 0a 1a 0a); line endings changed"},
    {"signature only", 8, -1, 0, 0, -1, DAE_EFORMAT, "truncated after 8 bytes"},
    {"cut in IHDR", 20, -1, 0, 0, -1, DAE_EFORMAT, "truncated after 20"},
    {"IHDR only", 33, -1, 0, 0, -1, DAE_EFORMAT, "truncated after 33"},
    {"cut in IDAT", 60, -1, 0, 0, -1, DAE_EFORMAT, "truncated after 60"},
    /* complete pixel data without IEND: libpng's reader stops at the last row, as do
     * browsers; accepted */
    {"no IEND", -12, -1, 0, 0, -1, DAE_OK, ""},
    {"cut in IDAT CRC", -14, -1, 0, 0, -1, DAE_EFORMAT, "truncated"},
    {"not a PNG", 0, 0, 0x47494638, 4, -1, DAE_EFORMAT, "png: bad signature: byte 0 is 47, expected 89"},
    {"IHDR CRC", 0, IHDR_AT + 8, 0x12345678, 4, -1, DAE_EFORMAT, "IHDR: CRC error"},
    {"IDAT CRC", 0, IDAT_CRC, 0, 0, -1, DAE_EFORMAT, "IDAT: CRC error"},
    {"IDAT data", 0, IDAT_AT + 8 + 2, 0xffffffff, 4, IDAT_AT, DAE_EFORMAT, "IDAT: invalid"},
    {"zlib header", 0, IDAT_AT + 8, 0x00, 1, IDAT_AT, DAE_EFORMAT, "IDAT: incorrect header check"},
    {"zero width", 0, IHDR_AT + 8, 0, 4, IHDR_AT, DAE_EFORMAT, "IHDR data (width 0, height 28"},
    {"zero height", 0, IHDR_AT + 12, 0, 4, IHDR_AT, DAE_EFORMAT, "(width 28, height 0,"},
    {"width > 2^31", 0, IHDR_AT + 8, 0x80000000u, 4, IHDR_AT, DAE_EFORMAT, "out of range"},
    {"bit depth 3", 0, IHDR_AT + 16, 3, 1, IHDR_AT, DAE_EFORMAT, "bit depth 3, colour type 0"},
    {"colour type 5", 0, IHDR_AT + 17, 5, 1, IHDR_AT, DAE_EFORMAT, "bit depth 8, colour type 5"},
    {"100000 wide", 0, IHDR_AT + 8, 100000, 4, IHDR_AT, DAE_ELIMIT, "100000x28, limit"},
    {"100000 high", 0, IHDR_AT + 12, 100000, 4, IHDR_AT, DAE_ELIMIT, "28x100000, limit"},
};

START_TEST(test_malformed)
{
    float px[28 * 28];
    for (int i = 0; i < 28 * 28; i++)
        px[i] = (float)((i * 13) % 256) / 255.0f;
    unsigned char *good;
    size_t good_len;
    dae_error e = {0};
    ck_assert_int_eq(dae_png_encode(px, 28, 28, 1, 1, &good, &good_len, &e), DAE_OK);
    ck_assert_int_eq(memcmp(good + IDAT_AT + 4, "IDAT", 4), 0);
    ck_assert_uint_gt(good_len, 80);
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        const malformed *m = &bad[k];
        unsigned char *b = malloc(good_len);
        memcpy(b, good, good_len);
        size_t len = good_len;
        if (m->cut == EMPTY)
            len = 0;
        else if (m->cut > 0)
            len = (size_t)m->cut;
        else if (m->cut < 0)
            len = good_len - (size_t)-m->cut;
        if (m->patch_at == IDAT_CRC) /* its last byte sits just before IEND's 12 */
            b[good_len - 13] ^= 0x55;
        if (m->patch_at >= 0) {
            if (m->patch_bytes == 4)
                put32(b + m->patch_at, m->patch_val);
            else
                b[m->patch_at] = (unsigned char)m->patch_val;
        }
        if (m->fix_at >= 0)
            fix_crc(b, (size_t)m->fix_at);
        dae_image im = {.w = 99};
        e.msg[0] = '\0';
        int rc = dae_png_decode(b, len, NULL, &im, &e);
        ck_assert_msg(rc == m->code, "%s: code %d (%s), want %d", m->name, rc, e.msg,
                      m->code);
        ck_assert_msg(strstr(e.msg, m->msg) != NULL, "%s: message '%s', want '%s'", m->name,
                      e.msg, m->msg);
        if (rc == DAE_OK)
            ck_assert(im.w == 28 && im.px != NULL);
        else
            ck_assert_msg(im.px == NULL && im.alpha == NULL && im.w == 0,
                          "%s: output touched", m->name);
        dae_image_free(&im);
        free(b);
    }
    free(good);
}
END_TEST

START_TEST(test_limits)
{
    /* 100000x100000 claimed by a valid header with a tiny IDAT: refused from the header
     * alone (a 10 Gpx allocation would fail as DAE_ENOMEM, or take seconds, instead). */
    float px[16] = {0};
    unsigned char *b;
    size_t len;
    dae_error e = {0};
    ck_assert_int_eq(dae_png_encode(px, 4, 4, 1, 1, &b, &len, &e), DAE_OK);
    put32(b + IHDR_AT + 8, 100000);
    put32(b + IHDR_AT + 12, 100000);
    fix_crc(b, IHDR_AT);
    dae_image im;
    ck_assert_int_eq(dae_png_decode(b, len, NULL, &im, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "100000x100000, limit 16384x16384"));
    /* within width/height but over the pixel count */
    put32(b + IHDR_AT + 8, 16000);
    put32(b + IHDR_AT + 12, 16000);
    fix_crc(b, IHDR_AT);
    ck_assert_int_eq(dae_png_decode(b, len, NULL, &im, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "16000x16000"));
    free(b);

    /* caller limits */
    ck_assert_int_eq(dae_png_encode(px, 4, 4, 1, 1, &b, &len, &e), DAE_OK);
    dae_image_limits lim = dae_image_default_limits();
    lim.max_pixels = 15;
    ck_assert_int_eq(dae_png_decode(b, len, &lim, &im, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "4x4, limit 16384x16384 and 15 pixels"));
    lim = dae_image_default_limits();
    lim.max_height = 3;
    ck_assert_int_eq(dae_png_decode(b, len, &lim, &im, &e), DAE_ELIMIT);
    lim = dae_image_default_limits();
    lim.max_bytes = len - 1;
    ck_assert_int_eq(dae_png_decode(b, len, &lim, &im, &e), DAE_ELIMIT);
    lim.max_pixels = 16;
    lim.max_bytes = len;
    ck_assert_int_eq(dae_png_decode(b, len, &lim, &im, &e), DAE_OK);
    dae_image_free(&im);
    free(b);
}
END_TEST

/* 8-bit planes: dae_planes_quantize as the encoders (in place too), and dae_png_encode8 /
 * dae_jpeg_encode8 write the bytes of the float encoders (the server's 8-bit answers). */
START_TEST(test_encode8_same_bytes)
{
    const int w = 37, h = 23;
    size_t n = (size_t)w * h;
    dae_error e = {0};
    for (int c = 1; c <= 3; c += 2)
        for (int with_alpha = 0; with_alpha <= 1; with_alpha++) {
            dae_image im = {0};
            ck_assert_int_eq(dae_image_alloc(&im, w, h, c, with_alpha, &e), DAE_OK);
            for (size_t i = 0; i < n * c; i++) /* out of range, NaN, between the steps */
                im.px[i] = i % 97 == 0 ? NAN : (float)((int)(i * 7919 % 300) - 20) / 257.0f;
            for (size_t i = 0; with_alpha && i < n; i++)
                im.alpha[i] = (float)(i % 256) / 255.0f;
            unsigned char *q = malloc(n * c), *qa = malloc(n);
            ck_assert_ptr_nonnull(q);
            ck_assert_ptr_nonnull(qa);
            dae_planes_quantize(im.px, n * c, q);
            dae_planes_quantize(im.alpha ? im.alpha : im.px, n, qa);
            unsigned char *a = NULL, *b = NULL;
            size_t la = 0, lb = 0;
            ck_assert_int_eq(dae_png_encode_image(&im, 6, &a, &la, &e), DAE_OK);
            ck_assert_int_eq(dae_png_encode8(q, im.alpha ? qa : NULL, w, h, c, 6, &b, &lb, &e),
                             DAE_OK);
            ck_assert_uint_eq(la, lb);
            ck_assert_mem_eq(a, b, la);
            free(a);
            free(b);
            ck_assert_int_eq(dae_jpeg_encode(im.px, w, h, c, 90, &a, &la, &e), DAE_OK);
            ck_assert_int_eq(dae_jpeg_encode8(q, w, h, c, 90, &b, &lb, &e), DAE_OK);
            ck_assert_uint_eq(la, lb);
            ck_assert_mem_eq(a, b, la);
            free(a);
            free(b);
            /* in place: the same bytes at the front of the float buffer */
            dae_planes_quantize(im.px, n * c, (unsigned char *)im.px);
            ck_assert_mem_eq((unsigned char *)im.px, q, n * c);
            free(q);
            free(qa);
            dae_image_free(&im);
        }
}
END_TEST

Suite *suite_png(void)
{
    Suite *s = suite_create("png");
    TCase *kinds = tcase_create("kinds");
    tcase_add_test(kinds, test_gray_low_bit_depths);
    tcase_add_test(kinds, test_gray16);
    tcase_add_test(kinds, test_gray_alpha);
    tcase_add_test(kinds, test_rgb_rgba);
    tcase_add_test(kinds, test_interlaced);
    tcase_add_test(kinds, test_palette);
    suite_add_tcase(s, kinds);
    TCase *enc = tcase_create("encode");
    tcase_add_test(enc, test_round_trip_exact);
    tcase_add_test(enc, test_encode_quantization);
    tcase_add_test(enc, test_encode8_same_bytes);
    suite_add_tcase(s, enc);
    TCase *bad_tc = tcase_create("malformed");
    tcase_add_test(bad_tc, test_malformed);
    tcase_add_test(bad_tc, test_limits);
    suite_add_tcase(s, bad_tc);
    return s;
}

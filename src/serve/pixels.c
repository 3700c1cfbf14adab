/* pixels.c — a request's image planes estimated from the image header (see pixels.h). */
#include "pixels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/base64.h"

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* PNG: the signature, then IHDR (length 13) with width, height, bit depth, colour type. */
static int probe_png(const unsigned char *b, size_t len, int *w, int *h, int *c, int *alpha)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 33 || memcmp(b, sig, 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0)
        return -1;
    uint32_t W = be32(b + 16), H = be32(b + 20);
    unsigned type = b[25];
    if (W == 0 || H == 0 || W > 0x7fffffff || H > 0x7fffffff)
        return -1;
    *w = (int)W;
    *h = (int)H;
    *c = type & 2 ? 3 : 1;           /* colour or palette: 3; gray: 1 */
    *alpha = type & 4 ? 1 : 0;       /* tRNS comes later: counted without it */
    return 0;
}

/* JPEG: walk the marker segments to the first SOFn (not DHT C4, JPG C8, DAC CC). */
static int probe_jpeg(const unsigned char *b, size_t len, int *w, int *h, int *c, int *alpha)
{
    if (len < 4 || b[0] != 0xff || b[1] != 0xd8)
        return -1;
    size_t i = 2;
    while (i + 4 <= len) {
        if (b[i] != 0xff)
            return -1;
        unsigned m = b[i + 1];
        if (m == 0xff) { /* fill byte */
            i++;
            continue;
        }
        size_t seg = be16(b + i + 2);
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
            if (i + 10 > len || seg < 8)
                return -1;
            *h = (int)be16(b + i + 5);
            *w = (int)be16(b + i + 7);
            *c = b[i + 9] >= 3 ? 3 : 1;
            *alpha = 0;
            return *w > 0 && *h > 0 ? 0 : -1;
        }
        if (seg < 2)
            return -1;
        i += 2 + seg;
    }
    return -1;
}

int dae_pixels_probe(const unsigned char *body, size_t len, int *w, int *h, int *c, int *alpha)
{
    if (probe_png(body, len, w, h, c, alpha) == 0)
        return 0;
    return probe_jpeg(body, len, w, h, c, alpha);
}

/* Image bytes per value (per pixel and channel, alpha included) while a request runs:
 * float planes: 4 (float input) + 4 (float output) + 1 (8-bit answer); 8-bit input planes
 * (tiles.c, a per-channel model in a colour space that mixes channels): the decoder's
 * interleaved samples and the 8-bit planes (1 + 1) at decode, then the 8-bit input and the
 * float output (1 + 4) while the tiles run; 8-bit input and output: 2 at decode, 1 + 1
 * while the tiles run, then the output, the encoder's interleaved copy and the encoded
 * answer (1 + 1 + under 1). */
#define PER_VALUE_FLOAT 9
#define PER_VALUE_8BIT_IN 5
#define PER_VALUE_8BIT 3
/* The non-local stage after a photo model (tiles.c), while it runs: the answer at 8-bit
 * levels (1) and its new float output (4) next to the planes above (8-bit input and
 * output: its new 8-bit output fits in the 3 already counted). */
#define PER_VALUE_NONLOCAL 5
/* Chroma at half size (tiles.c): 2 planes x (4 + 4) bytes / 4 per pixel, over 3 values. */
#define PER_VALUE_HALF_CHROMA 2
/* A number in a JSON body: its cJSON node while parsed (sizeof(cJSON) is 64 bytes on 64-bit
 * systems, an 80-byte chunk of glibc's malloc), then its float input and output. */
#define PER_JSON_NUMBER (80 + 4 + 4)
/* Base64 characters decoded to find a JPEG's SOF header (48 KB of JPEG). */
#define B64_PROBE ((size_t)65536)

static size_t image_estimate(int w, int h, int c, int a, size_t per_value)
{
    return (size_t)w * (size_t)h * (size_t)(c + a) * per_value; /* < 2^62 + 2^33 */
}

static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* A JSON string of n bytes at s (as written, escapes included): a base64 PNG or JPEG is
 * charged its image (float planes) and its decoded bytes; any other string of
 * LONG_STRING bytes or more (an image whose header is not read: beyond its first
 * B64_PROBE characters, or with escapes such as \/) 4 bytes per byte; shorter ones
 * nothing. */
#define LONG_STRING 64
static size_t string_estimate(const unsigned char *s, size_t n)
{
    static const char png64[] = "iVBORw0KGgo", jpg64[] = "/9j/";
    int png = n >= 44 && !memcmp(s, png64, sizeof png64 - 1);
    int jpg = n >= 8 && !memcmp(s, jpg64, sizeof jpg64 - 1);
    size_t est = n < LONG_STRING ? 0 : n > SIZE_MAX / 4 ? SIZE_MAX : n * 4;
    if (!png && !jpg)
        return est;
    size_t take = (png ? 44 : n < B64_PROBE ? n : B64_PROBE) / 4 * 4;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    dae_error err = {0};
    int w, h, c, a;
    if (dae_base64_decode((const char *)s, take, &raw, &raw_len, &err) == DAE_OK &&
        dae_pixels_probe(raw, raw_len, &w, &h, &c, &a) == 0)
        est = add_sat(image_estimate(w, h, c, a, PER_VALUE_FLOAT), n / 4 * 3);
    free(raw);
    return est;
}

/* A JSON body: PER_JSON_NUMBER per number (pixel arrays, v2 tensors, masks) plus its
 * base64 images (string_estimate). One pass; strings are skipped by their quotes. */
static size_t json_estimate(const unsigned char *b, size_t len)
{
    size_t numbers = 0, est = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = b[i];
        if (ch == '"') {
            size_t j = i + 1;
            while (j < len && b[j] != '"')
                j += b[j] == '\\' ? 2 : 1;
            if (j > len)
                j = len;
            est = add_sat(est, string_estimate(b + i + 1, j - i - 1));
            i = j;
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            numbers++;
            while (i + 1 < len && ((b[i + 1] >= '0' && b[i + 1] <= '9') || b[i + 1] == '.' ||
                                   b[i + 1] == 'e' || b[i + 1] == 'E' || b[i + 1] == '+' ||
                                   b[i + 1] == '-'))
                i++;
        }
    }
    size_t num = numbers > SIZE_MAX / PER_JSON_NUMBER ? SIZE_MAX : numbers * PER_JSON_NUMBER;
    est = add_sat(est, num);
    return est ? est : 1;
}

size_t dae_pixels_estimate(const unsigned char *body, size_t len, int is_json, int eight_bit,
                           int extras)
{
    int w, h, c, a;
    if (is_json)
        return json_estimate(body, len);
    if (dae_pixels_probe(body, len, &w, &h, &c, &a) != 0)
        return len > SIZE_MAX / 4 ? SIZE_MAX : (len ? len * 4 : 1);
    size_t per = eight_bit == 2 ? PER_VALUE_8BIT : eight_bit ? PER_VALUE_8BIT_IN : PER_VALUE_FLOAT;
    if ((extras & DAE_PIXELS_NONLOCAL) && eight_bit != 2)
        per += PER_VALUE_NONLOCAL;
    if ((extras & DAE_PIXELS_REROUTE) && c == 3 && !(extras & DAE_PIXELS_HALF_CHROMA)) {
        size_t half = PER_VALUE_8BIT_IN + PER_VALUE_HALF_CHROMA + PER_VALUE_NONLOCAL;
        per = per > half ? per : half;
    } else if (extras & DAE_PIXELS_HALF_CHROMA) {
        per += PER_VALUE_HALF_CHROMA;
    }
    return image_estimate(w, h, c, a, per);
}

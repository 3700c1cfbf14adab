/* pixels.c — a request's image planes estimated from the image header (see pixels.h). */
#include "pixels.h"

#include <stdint.h>
#include <string.h>

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

size_t dae_pixels_estimate(const unsigned char *body, size_t len, int is_json)
{
    int w, h, c, a;
    if (is_json || dae_pixels_probe(body, len, &w, &h, &c, &a) != 0)
        return len > SIZE_MAX / 4 ? SIZE_MAX : (len ? len * 4 : 1);
    size_t px = (size_t)w * (size_t)h; /* each < 2^31: no overflow in 64 bits */
    return px * (size_t)(c + a) * 4 + px * (size_t)c * 4 + px * (size_t)(c + a);
}

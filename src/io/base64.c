/* base64.c — RFC 4648 base64 (standard alphabet), strict canonical decoding. */
#include "daed/io/base64.h"

#include <stdint.h>
#include <stdlib.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Alphabet value of each byte; -1 outside it ('=' included, handled separately). */
static const signed char b64_value[256] = {
    ['A'] = 1 + 0,  ['B'] = 1 + 1,  ['C'] = 1 + 2,  ['D'] = 1 + 3,  ['E'] = 1 + 4,
    ['F'] = 1 + 5,  ['G'] = 1 + 6,  ['H'] = 1 + 7,  ['I'] = 1 + 8,  ['J'] = 1 + 9,
    ['K'] = 1 + 10, ['L'] = 1 + 11, ['M'] = 1 + 12, ['N'] = 1 + 13, ['O'] = 1 + 14,
    ['P'] = 1 + 15, ['Q'] = 1 + 16, ['R'] = 1 + 17, ['S'] = 1 + 18, ['T'] = 1 + 19,
    ['U'] = 1 + 20, ['V'] = 1 + 21, ['W'] = 1 + 22, ['X'] = 1 + 23, ['Y'] = 1 + 24,
    ['Z'] = 1 + 25, ['a'] = 1 + 26, ['b'] = 1 + 27, ['c'] = 1 + 28, ['d'] = 1 + 29,
    ['e'] = 1 + 30, ['f'] = 1 + 31, ['g'] = 1 + 32, ['h'] = 1 + 33, ['i'] = 1 + 34,
    ['j'] = 1 + 35, ['k'] = 1 + 36, ['l'] = 1 + 37, ['m'] = 1 + 38, ['n'] = 1 + 39,
    ['o'] = 1 + 40, ['p'] = 1 + 41, ['q'] = 1 + 42, ['r'] = 1 + 43, ['s'] = 1 + 44,
    ['t'] = 1 + 45, ['u'] = 1 + 46, ['v'] = 1 + 47, ['w'] = 1 + 48, ['x'] = 1 + 49,
    ['y'] = 1 + 50, ['z'] = 1 + 51, ['0'] = 1 + 52, ['1'] = 1 + 53, ['2'] = 1 + 54,
    ['3'] = 1 + 55, ['4'] = 1 + 56, ['5'] = 1 + 57, ['6'] = 1 + 58, ['7'] = 1 + 59,
    ['8'] = 1 + 60, ['9'] = 1 + 61, ['+'] = 1 + 62, ['/'] = 1 + 63,
};
/* The table stores value + 1 so that the zero-initialised rest means "not base64". */
#define B64(c) (b64_value[(unsigned char)(c)] - 1)

size_t dae_base64_encoded_len(size_t n)
{
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > (SIZE_MAX - 1) / 4)
        return 0;
    return groups * 4;
}

void dae_base64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = b64_alphabet[(v >> 6) & 63];
        *out++ = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = b64_alphabet[(v >> 6) & 63];
        *out++ = '=';
    }
    *out = '\0';
}

int dae_base64_decode(const char *in, size_t n, unsigned char **out, size_t *out_len,
                      dae_error *err)
{
    *out = NULL;
    *out_len = 0;
    size_t pad = 0; /* '=' count at the end */
    for (size_t i = 0; i < n; i++) {
        if (B64(in[i]) >= 0) {
            if (pad)
                return dae_error_set(err, DAE_EFORMAT,
                                     "base64: data after '=' padding at offset %zu", i);
        } else if (in[i] == '=') {
            pad++;
        } else {
            unsigned char ch = (unsigned char)in[i];
            return dae_error_set(err, DAE_EFORMAT,
                                 "base64: invalid character 0x%02x at offset %zu, expected "
                                 "A-Z a-z 0-9 + / or = padding", ch, i);
        }
    }
    if (n % 4 != 0)
        return dae_error_set(err, DAE_EFORMAT,
                             "base64: length %zu is not a multiple of 4 (padding missing?) "
                             "at offset %zu", n, n - n % 4);
    if (pad > 2)
        return dae_error_set(err, DAE_EFORMAT, "base64: %zu '=' at offset %zu, at most 2",
                             pad, n - pad);
    /* Bits under the padding must be zero, so each byte string has one encoding. */
    if ((pad == 2 && (B64(in[n - 3]) & 15)) || (pad == 1 && (B64(in[n - 2]) & 3)))
        return dae_error_set(err, DAE_EFORMAT, "base64: non-zero padding bits at offset %zu",
                             n - pad - 1);
    size_t len = n / 4 * 3 - pad;
    unsigned char *o = malloc(len ? len : 1);
    if (!o)
        return dae_error_set(err, DAE_ENOMEM, "base64: cannot allocate %zu bytes", len);
    size_t j = 0, full = pad ? n - 4 : n;
    for (size_t i = 0; i < full; i += 4) {
        uint32_t v = (uint32_t)B64(in[i]) << 18 | (uint32_t)B64(in[i + 1]) << 12 |
                     (uint32_t)B64(in[i + 2]) << 6 | (uint32_t)B64(in[i + 3]);
        o[j++] = (unsigned char)(v >> 16);
        o[j++] = (unsigned char)(v >> 8);
        o[j++] = (unsigned char)v;
    }
    if (pad) {
        const char *q = in + n - 4;
        uint32_t v = (uint32_t)B64(q[0]) << 18 | (uint32_t)B64(q[1]) << 12;
        if (pad == 1)
            v |= (uint32_t)B64(q[2]) << 6;
        o[j++] = (unsigned char)(v >> 16);
        if (pad == 1)
            o[j++] = (unsigned char)(v >> 8);
    }
    *out = o;
    *out_len = len;
    return DAE_OK;
}

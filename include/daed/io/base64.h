/* base64.h — base64 (RFC 4648, standard alphabet); decoding is strict: padding required,
 * whitespace rejected, canonical encodings only.
 */
#ifndef DAED_BASE64_H
#define DAED_BASE64_H

#include <stddef.h>

#include "daed/core/error.h"

/* 4 * ceil(n / 3); 0 when that plus the terminator would overflow size_t. */
size_t dae_base64_encoded_len(size_t n);
/* out must hold dae_base64_encoded_len(n) + 1 bytes; NUL-terminated. */
void dae_base64_encode(const unsigned char *in, size_t n, char *out);
/* Decodes into a malloc'd buffer (never NULL on success, even for n = 0; caller frees).
 * DAE_EFORMAT naming the offset of the first bad byte: a character outside the alphabet
 * (whitespace included), a length not a multiple of 4, a misplaced '=', or non-zero bits
 * under the padding (non-canonical encoding). */
int dae_base64_decode(const char *in, size_t n, unsigned char **out, size_t *out_len,
                      dae_error *err);

#endif

/* fuzz_base64.c — libFuzzer target: dae_base64_decode of arbitrary text (the "data" strings
 * of JSON request bodies); accepted text must be the canonical encoding of what it decodes
 * to, and every byte string must survive encode + decode.
 * FUZZ_OPTIONS: -max_len=16384 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/base64.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dae_error err = {0};
    unsigned char *out = NULL;
    size_t n = 0;
    int rc = dae_base64_decode((const char *)data, size, &out, &n, &err);
    if (rc == DAE_OK) {
        fuzz_note("accepted", NULL);
        FUZZ_CHECK(out != NULL);
        FUZZ_CHECK(size % 4 == 0 && n <= size / 4 * 3 && n + 2 >= size / 4 * 3);
        size_t elen = dae_base64_encoded_len(n);
        FUZZ_CHECK(elen == size);
        char *enc = malloc(elen + 1);
        FUZZ_CHECK(enc != NULL);
        dae_base64_encode(out, n, enc);
        FUZZ_CHECK(enc[elen] == '\0' && memcmp(enc, data, size) == 0);
        free(enc);
        free(out);
    } else {
        fuzz_check_error(rc, &err);
        FUZZ_CHECK(rc == DAE_EFORMAT || rc == DAE_ELIMIT);
    }

    /* The other direction: any bytes -> base64 -> the same bytes. */
    size_t elen = dae_base64_encoded_len(size);
    FUZZ_CHECK(elen == (size + 2) / 3 * 4);
    char *enc = malloc(elen + 1);
    FUZZ_CHECK(enc != NULL);
    dae_base64_encode(data, size, enc);
    FUZZ_CHECK(strlen(enc) == elen);
    unsigned char *back = NULL;
    size_t blen = 0;
    rc = dae_base64_decode(enc, elen, &back, &blen, &err);
    FUZZ_CHECK(rc == DAE_OK && back != NULL && blen == size);
    FUZZ_CHECK(size == 0 || memcmp(back, data, size) == 0);
    free(back);
    free(enc);
    return 0;
}

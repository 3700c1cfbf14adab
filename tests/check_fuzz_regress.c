/* check_fuzz_regress.c — every input the fuzzers (tests/fuzz/) found to break a parser, as a
 * minimal hand-written reproducer with the behaviour it must have now. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daed/error.h"
#include "daed/image.h"
#include "daed/modelfile.h"

/* fuzz_png: a tEXt chunk declaring 1.68 GB in a 56-byte PNG made libpng malloc its declared
 * length before reading it (libpng caps only IDAT lengths). The decoder must refuse a chunk
 * longer than the input, naming it, before libpng sees it. */
START_TEST(test_png_chunk_longer_than_input)
{
    static const unsigned char png[] = {
        0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
        0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0,
        0x3a, 0x7e, 0x9b, 0x55,                  /* IHDR CRC */
        0x64, 0x61, 0x74, 0x61, 't', 'E', 'X', 't', /* length 0x64617461 = 1684108385 */
        'C', 'o', 'm', 'm', 'e', 'n', 't', 0, 'x', 'y', 'z', 0, 0, 0, 0};
    dae_image im;
    dae_error err = {0};
    int rc = dae_png_decode(png, sizeof png, NULL, &im, &err);
    ck_assert_int_eq(rc, DAE_EFORMAT);
    ck_assert_msg(strstr(err.msg, "chunk tEXt at byte 33 declares 1684108385 data bytes"),
                  "message: %s", err.msg);
    ck_assert_ptr_null(im.px);
}
END_TEST

/* fuzz_modelfile: a 344-byte model file whose config declares two linear layers of 2^24
 * features, and no tensors, made dae_modelfile_parse calloc 2.2 GB of parameters before it
 * found them missing. A config needing far more parameters than the data section holds
 * must be refused before the model is built. */
START_TEST(test_modelfile_config_larger_than_data)
{
    static const char header[] =
        "{\"__metadata__\":{\"format\":\"daed-1\",\"config\":\"{\\\"input\\\":[1,4,4],"
        "\\\"encoder\\\":[{\\\"type\\\":\\\"flatten\\\"},{\\\"type\\\":\\\"linear\\\","
        "\\\"in_features\\\":16,\\\"out_features\\\":16777216}],\\\"decoder\\\":["
        "{\\\"type\\\":\\\"linear\\\",\\\"in_features\\\":16777216,\\\"out_features\\\":16},"
        "{\\\"type\\\":\\\"unflatten\\\",\\\"unflattened_size\\\":[1,4,4]}]}\"}}";
    size_t n = sizeof header - 1;
    unsigned char *buf = malloc(8 + n);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    dae_error err = {0};
    dae_modelfile *mf = dae_modelfile_parse(buf, 8 + n, "big.safetensors", NULL, &err);
    ck_assert_ptr_null(mf);
    ck_assert_int_eq(err.code, DAE_EFORMAT);
    ck_assert_msg(strstr(err.msg, "big.safetensors: config: the layers have 553648144 "
                                  "parameters") &&
                      strstr(err.msg, "the data section holds 0 bytes"),
                  "message: %s", err.msg);
    free(buf);
}
END_TEST

Suite *suite_fuzz_regress(void)
{
    Suite *s = suite_create("fuzz_regress");
    TCase *tc = tcase_create("png");
    tcase_add_test(tc, test_png_chunk_longer_than_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("modelfile");
    tcase_add_test(tc, test_modelfile_config_larger_than_data);
    suite_add_tcase(s, tc);
    return s;
}

/* check_base64.c — RFC 4648 vectors, strict padding, bad characters, round trips. */
#include "check_quiet.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/base64.h"

static const struct {
    const char *plain, *coded;
} rfc4648[] = {
    {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

START_TEST(test_rfc4648_vectors)
{
    for (size_t i = 0; i < sizeof rfc4648 / sizeof *rfc4648; i++) {
        const char *p = rfc4648[i].plain, *c = rfc4648[i].coded;
        size_t n = strlen(p);
        ck_assert_uint_eq(dae_base64_encoded_len(n), strlen(c));
        char buf[16];
        memset(buf, 'X', sizeof buf);
        dae_base64_encode((const unsigned char *)p, n, buf);
        ck_assert_str_eq(buf, c);

        unsigned char *out = NULL;
        size_t len = 99;
        dae_error e = {0};
        ck_assert_int_eq(dae_base64_decode(c, strlen(c), &out, &len, &e), DAE_OK);
        ck_assert_ptr_nonnull(out);
        ck_assert_uint_eq(len, n);
        ck_assert_int_eq(memcmp(out, p, n), 0);
        free(out);
    }
    /* both ends of the alphabet */
    unsigned char hi[3] = {0xfb, 0xff, 0xbf}, *out;
    char buf[5];
    dae_base64_encode(hi, 3, buf);
    ck_assert_str_eq(buf, "+/+/");
    size_t len;
    ck_assert_int_eq(dae_base64_decode("+/+/", 4, &out, &len, NULL), DAE_OK);
    ck_assert_int_eq(memcmp(out, hi, 3), 0);
    free(out);
}
END_TEST

static const struct {
    const char *in;
    const char *msg; /* expected substring */
} bad[] = {
    {"Zm9v\n", "invalid character 0x0a at offset 4"},
    {" Zm9v", "invalid character 0x20 at offset 0"},
    {"Zm 9v", "invalid character 0x20 at offset 2"},
    {"Zm9v\r\nZm9v", "invalid character 0x0d at offset 4"},
    {"Zm-v", "invalid character 0x2d at offset 2"}, /* URL-safe alphabet is not ours */
    {"Zm_v", "invalid character 0x5f at offset 2"},
    {"Zm9\xff", "invalid character 0xff at offset 3"},
    {"Zg", "length 2 is not a multiple of 4"},
    {"Zg=", "length 3 is not a multiple of 4"},
    {"Zm9vY", "length 5 is not a multiple of 4 (padding missing?) at offset 4"},
    {"Z===", "3 '=' at offset 1"},
    {"====", "4 '=' at offset 0"},
    {"Zg=a", "data after '=' padding at offset 3"},
    {"Zg==Zg==", "data after '=' padding at offset 4"},
    {"=Zm9", "data after '=' padding at offset 1"},
    {"Zh==", "non-zero padding bits at offset 1"},
    {"Zm9=", "non-zero padding bits at offset 2"},
};

START_TEST(test_bad_inputs)
{
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unsigned char *out = (unsigned char *)"sentinel";
        size_t len = 7;
        dae_error e = {0};
        ck_assert_msg(dae_base64_decode(bad[i].in, strlen(bad[i].in), &out, &len, &e) ==
                          DAE_EFORMAT,
                      "'%s' accepted", bad[i].in);
        ck_assert_int_eq(e.code, DAE_EFORMAT);
        ck_assert_msg(strstr(e.msg, bad[i].msg) != NULL, "'%s': message '%s', expected '%s'",
                      bad[i].in, e.msg, bad[i].msg);
        ck_assert_ptr_null(out);
        ck_assert_uint_eq(len, 0);
    }
    /* an embedded NUL is a bad byte too, not the end of the input */
    unsigned char *out;
    size_t len;
    dae_error e = {0};
    ck_assert_int_eq(dae_base64_decode("Zm\0v", 4, &out, &len, &e), DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "0x00 at offset 2"));
    ck_assert_int_eq(dae_base64_decode("Zm9v", 4, &out, &len, NULL), DAE_OK); /* NULL err */
    free(out);
    ck_assert_int_eq(dae_base64_decode("Zm9", 3, &out, &len, NULL), DAE_EFORMAT);
}
END_TEST

START_TEST(test_round_trips)
{
    unsigned char data[300];
    uint32_t s = 7;
    for (size_t i = 0; i < sizeof data; i++) {
        s = s * 1103515245u + 12345u;
        data[i] = (unsigned char)(i < 256 ? i : s >> 16); /* every byte value, then noise */
    }
    char *enc = malloc(dae_base64_encoded_len(sizeof data) + 1);
    for (size_t n = 0; n <= sizeof data; n++) {
        size_t el = dae_base64_encoded_len(n);
        ck_assert_uint_eq(el, (n + 2) / 3 * 4);
        dae_base64_encode(data, n, enc);
        ck_assert_uint_eq(strlen(enc), el);
        unsigned char *dec;
        size_t len;
        ck_assert_int_eq(dae_base64_decode(enc, el, &dec, &len, NULL), DAE_OK);
        ck_assert_uint_eq(len, n);
        ck_assert_int_eq(memcmp(dec, data, n), 0);
        free(dec);
    }
    free(enc);
}
END_TEST

START_TEST(test_length_overflow)
{
    ck_assert_uint_eq(dae_base64_encoded_len(0), 0);
    ck_assert_uint_eq(dae_base64_encoded_len(SIZE_MAX), 0);
    ck_assert_uint_eq(dae_base64_encoded_len(SIZE_MAX / 4 * 3 + 3), 0);
    size_t big = (SIZE_MAX - 1) / 4 * 3; /* largest n whose encoding + NUL fits */
    ck_assert_uint_eq(dae_base64_encoded_len(big), big / 3 * 4);
    ck_assert_uint_eq(dae_base64_encoded_len(big + 1), 0);
}
END_TEST

Suite *suite_base64(void)
{
    Suite *s = suite_create("base64");
    TCase *tc = tcase_create("base64");
    tcase_add_test(tc, test_rfc4648_vectors);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_round_trips);
    tcase_add_test(tc, test_length_overflow);
    suite_add_tcase(s, tc);
    return s;
}

/* check_error.c — the error vocabulary. */
#include "check_quiet.h"
#include <string.h>

#include "daed/core/error.h"

START_TEST(test_set_and_prefix)
{
    dae_error e = {0};
    ck_assert_int_eq(dae_error_set(&e, DAE_ESHAPE, "got %d, expected %d", 3, 4), DAE_ESHAPE);
    ck_assert_str_eq(e.msg, "got 3, expected 4");
    ck_assert_int_eq(dae_error_prefix(&e, "%s: ", "m.safetensors"), DAE_ESHAPE);
    ck_assert_str_eq(e.msg, "m.safetensors: got 3, expected 4");
    ck_assert_str_eq(dae_error_name(DAE_ELIMIT), "too_large");
    ck_assert_int_eq(dae_error_set(NULL, DAE_EIO, "x"), DAE_EIO);
}
END_TEST

Suite *suite_error(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("basic");
    tcase_add_test(tc, test_set_and_prefix);
    suite_add_tcase(s, tc);
    return s;
}

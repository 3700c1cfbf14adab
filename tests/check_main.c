/* check_main.c — the unit-test runner: every suite_<module>() found in tests/check_*.c.
 * CK_RUN_SUITE / CK_RUN_CASE pick one suite or case; CK_FORK=no runs in-process (gdb). */
#include "check_quiet.h"
#include <stdlib.h>

#define SUITE(fn) Suite *fn(void);
#include "suites.h"
#undef SUITE

int main(void)
{
    SRunner *sr = srunner_create(NULL);
#define SUITE(fn) srunner_add_suite(sr, fn());
#include "suites.h"
#undef SUITE
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

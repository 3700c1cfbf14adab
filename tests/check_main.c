/* check_main.c — the unit-test runner: every suite_<module>() found in tests/check_*.c.
 * CK_RUN_SUITE / CK_RUN_CASE pick one suite or case; CK_FORK=no runs in-process (gdb).
 * Tests a suite could not add here (ck_skip) are listed at the end as skips, with reasons. */
#include "check_quiet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SKIPS 64
static struct {
    char line[256];
} skips[MAX_SKIPS];
static int n_skips;

void ck_skip(const char *suite, const char *test, const char *reason)
{
    const char *only = getenv("CK_RUN_SUITE");
    if (only && *only && strcmp(only, suite) != 0)
        return; /* a suite not run: its skips are not this run's */
    if (n_skips < MAX_SKIPS)
        snprintf(skips[n_skips].line, sizeof skips[n_skips].line, "%s/%s: %s", suite, test,
                 reason);
    n_skips++;
}

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
    if (n_skips) {
        printf("%d test%s skipped (not counted above):\n", n_skips, n_skips == 1 ? "" : "s");
        for (int i = 0; i < n_skips && i < MAX_SKIPS; i++)
            printf("SKIP %s\n", skips[i].line);
    }
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

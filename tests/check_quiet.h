/* check_quiet.h — Check's ck_assert_msg (and so every ck_assert_* built on it) without the
 * write on success. Check records the file and line of every passing assertion
 * (_mark_point: one write(2) to its pipe each); the element-wise checks of the layers and
 * corrupt suites made 3.7 million of them, most of those suites' time under valgrind
 * (corrupt: 125 s) and ASan. A failing assertion reports exactly as before; a test that
 * crashes reports its start instead of its last passing assertion. Include it instead of
 * <check.h>. */
#ifndef DAED_CHECK_QUIET_H
#define DAED_CHECK_QUIET_H

#include <check.h>

#undef ck_assert_msg
#define ck_assert_msg(expr, ...)                                                           \
    ((expr) ? (void)0                                                                      \
            : _ck_assert_failed(__FILE__, __LINE__, "Assertion '" #expr "' failed",        \
                                ##__VA_ARGS__))

/* A test that cannot run here is not added to its suite; the suite calls ck_skip instead
 * (in the runner's process, while the suites are built), and check_main prints every skip
 * with its reason and counts it apart from the passes. */
void ck_skip(const char *suite, const char *test, const char *reason);

#endif

/* check_serve_deadline.c — the --request-timeout watchdog: which connections it shuts down. */
#include "check_quiet.h"
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../src/serve/deadline.h"

int64_t dae_now_ns(void); /* server.c */

#define SEC 1000000000LL

/* 1 when the peer of the tracked socket sees the end of the stream (shut down). */
static int peer_sees_eof(int peer)
{
    char b;
    ssize_t n = recv(peer, &b, 1, MSG_DONTWAIT);
    return n == 0;
}

START_TEST(test_expired_connection_is_shut_down)
{
    dae_deadline *d = dae_deadline_create(5, 0, NULL);
    ck_assert_ptr_nonnull(d);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int64_t t0 = dae_now_ns();
    dae_deadline_conn *c = dae_deadline_add(d, sv[0]);
    ck_assert_ptr_nonnull(c);
    /* Within the timeout: untouched. */
    ck_assert_int_eq(dae_deadline_sweep(d, t0 + 4 * SEC), 0);
    ck_assert_int_eq(peer_sees_eof(sv[1]), 0);
    ck_assert_int_eq(dae_deadline_expired(c), 0);
    /* Past it: shut down once, and counted once. */
    ck_assert_int_eq(dae_deadline_sweep(d, t0 + 6 * SEC), 1);
    ck_assert_int_eq(peer_sees_eof(sv[1]), 1);
    ck_assert_int_eq(dae_deadline_expired(c), 1);
    ck_assert_int_eq(dae_deadline_sweep(d, t0 + 7 * SEC), 0);
    ck_assert_uint_eq(dae_deadline_closed_total(d), 1);
    dae_deadline_remove(d, c);
    close(sv[0]);
    close(sv[1]);
    dae_deadline_free(d);
}
END_TEST

START_TEST(test_read_request_is_not_timed)
{
    dae_deadline *d = dae_deadline_create(5, 0, NULL);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int64_t t0 = dae_now_ns();
    dae_deadline_conn *c = dae_deadline_add(d, sv[0]);
    dae_deadline_read_done(c);
    /* Inference and the answer may take longer than the timeout. */
    ck_assert_int_eq(dae_deadline_sweep(d, t0 + 60 * SEC), 0);
    ck_assert_int_eq(peer_sees_eof(sv[1]), 0);
    /* Keep-alive: the next request's clock starts at the restart. */
    int64_t t1 = dae_now_ns();
    dae_deadline_restart(c);
    ck_assert_int_eq(dae_deadline_sweep(d, t1 + 4 * SEC), 0);
    ck_assert_int_eq(dae_deadline_sweep(d, t1 + 6 * SEC), 1);
    ck_assert_int_eq(peer_sees_eof(sv[1]), 1);
    dae_deadline_remove(d, c);
    close(sv[0]);
    close(sv[1]);
    dae_deadline_free(d);
}
END_TEST

START_TEST(test_removed_connection_is_forgotten)
{
    dae_deadline *d = dae_deadline_create(1, 0, NULL);
    int a[2], b[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    int64_t t0 = dae_now_ns();
    dae_deadline_conn *ca = dae_deadline_add(d, a[0]);
    dae_deadline_conn *cb = dae_deadline_add(d, b[0]);
    dae_deadline_remove(d, ca); /* as the CLOSED notification does, before the close */
    ck_assert_int_eq(dae_deadline_sweep(d, t0 + 3 * SEC), 1);
    ck_assert_int_eq(peer_sees_eof(a[1]), 0);
    ck_assert_int_eq(peer_sees_eof(b[1]), 1);
    /* NULL handles (untracked connections) are no-ops. */
    dae_deadline_read_done(NULL);
    dae_deadline_restart(NULL);
    dae_deadline_remove(d, NULL);
    ck_assert_int_eq(dae_deadline_expired(NULL), 0);
    /* Freed with a connection still tracked: no leak (ASan checks). */
    (void)cb;
    dae_deadline_free(d);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}
END_TEST

START_TEST(test_thread_sweeps_by_itself)
{
    dae_error e = {0};
    ck_assert_ptr_null(dae_deadline_create(0, 1, &e));
    ck_assert_int_eq(e.code, DAE_EINVAL);
    dae_deadline *d = dae_deadline_create(1, 1, NULL);
    ck_assert_ptr_nonnull(d);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    dae_deadline_conn *c = dae_deadline_add(d, sv[0]);
    /* Blocks until the watchdog shuts the socket down (1 s + one sweep); the test's own
     * timeout catches a watchdog that never does. */
    char ch;
    ssize_t n;
    while ((n = recv(sv[1], &ch, 1, 0)) < 0 && errno == EINTR)
        ;
    ck_assert_int_eq((int)n, 0);
    ck_assert_int_eq(dae_deadline_expired(c), 1);
    dae_deadline_remove(d, c);
    dae_deadline_free(d);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

Suite *suite_serve_deadline(void)
{
    Suite *s = suite_create("serve_deadline");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_expired_connection_is_shut_down);
    tcase_add_test(tc, test_read_request_is_not_timed);
    tcase_add_test(tc, test_removed_connection_is_forgotten);
    tcase_add_test(tc, test_thread_sweeps_by_itself);
    suite_add_tcase(s, tc);
    return s;
}

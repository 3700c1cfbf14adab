/* check_serve_hangup.c — the hang-up watcher: a closed or reset peer sets the flag, a
 * live one (idle or with pipelined bytes waiting) does not, and nothing is consumed. */
#include "check_quiet.h"

#include <sys/socket.h>
#include <unistd.h>

#include "../src/serve/hangup.h"

START_TEST(test_peer_close_sets_flag_once)
{
    dae_hangup *h = dae_hangup_create(0, NULL);
    ck_assert_ptr_nonnull(h);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    dae_hangup_node n = {0};
    atomic_int flag = 0;
    dae_hangup_add(h, &n, sv[0], &flag);
    ck_assert_int_eq(dae_hangup_sweep(h), 0); /* idle peer: still there */
    ck_assert_int_eq(atomic_load(&flag), 0);
    close(sv[1]);
    ck_assert_int_eq(dae_hangup_sweep(h), 1);
    ck_assert_int_eq(atomic_load(&flag), 1);
    ck_assert_int_eq(dae_hangup_sweep(h), 0); /* dropped from the watch: counted once */
    ck_assert_uint_eq(dae_hangup_total(h), 1);
    dae_hangup_remove(h, &n); /* no-op once dropped */
    close(sv[0]);
    dae_hangup_free(h);
}
END_TEST

START_TEST(test_pipelined_bytes_are_not_a_hangup_and_stay)
{
    dae_hangup *h = dae_hangup_create(0, NULL);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    dae_hangup_node n = {0};
    atomic_int flag = 0;
    dae_hangup_add(h, &n, sv[0], &flag);
    ck_assert_int_eq(write(sv[1], "GET /", 5), 5);
    ck_assert_int_eq(dae_hangup_sweep(h), 0);
    ck_assert_int_eq(atomic_load(&flag), 0);
    char buf[8];
    ck_assert_int_eq(read(sv[0], buf, sizeof buf), 5); /* the peek consumed nothing */
    dae_hangup_remove(h, &n);
    close(sv[1]); /* removed: a later close is not seen */
    ck_assert_int_eq(dae_hangup_sweep(h), 0);
    ck_assert_int_eq(atomic_load(&flag), 0);
    close(sv[0]);
    dae_hangup_free(h);
}
END_TEST

START_TEST(test_one_gone_among_many)
{
    dae_hangup *h = dae_hangup_create(1, NULL); /* with its thread: free must stop it */
    ck_assert_ptr_nonnull(h);
    int sv[3][2];
    dae_hangup_node n[3] = {{0}};
    atomic_int flag[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
        dae_hangup_add(h, &n[i], sv[i][0], &flag[i]);
    }
    close(sv[1][1]);
    dae_hangup_sweep(h); /* the thread may have swept first: the flags tell */
    ck_assert_int_eq(atomic_load(&flag[0]), 0);
    ck_assert_int_eq(atomic_load(&flag[1]), 1);
    ck_assert_int_eq(atomic_load(&flag[2]), 0);
    ck_assert_uint_eq(dae_hangup_total(h), 1);
    for (int i = 0; i < 3; i++)
        dae_hangup_remove(h, &n[i]);
    dae_hangup_free(h);
    for (int i = 0; i < 3; i++) {
        close(sv[i][0]);
        if (i != 1)
            close(sv[i][1]);
    }
}
END_TEST

Suite *suite_serve_hangup(void)
{
    Suite *s = suite_create("serve_hangup");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_peer_close_sets_flag_once);
    tcase_add_test(tc, test_pipelined_bytes_are_not_a_hangup_and_stay);
    tcase_add_test(tc, test_one_gone_among_many);
    suite_add_tcase(s, tc);
    return s;
}

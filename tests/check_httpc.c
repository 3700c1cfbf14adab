/* check_httpc.c — the test helpers' HTTP client (tests/helpers/httpc.c): answers written
 * into one end of a socket pair, read from the other. */
#include "check_quiet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/httpc.h"

/* Reads the answer TEXT (LEN bytes; the writing end closed after it when CLOSE) with a
 * buffer of CAP bytes; returns httpc_read's result. */
static int read_answer(const char *text, size_t len, int close_after, char *buf, size_t cap,
                       httpc_response *r)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(httpc_send_all(sv[0], text, len), 0);
    if (close_after)
        close(sv[0]);
    int rc = httpc_read(sv[1], buf, cap, r);
    if (!close_after)
        close(sv[0]);
    close(sv[1]);
    return rc;
}

START_TEST(test_content_length)
{
    const char *a = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n"
                    "Retry-After:  3\r\n\r\nhello";
    char buf[256];
    httpc_response r;
    ck_assert_int_eq(read_answer(a, strlen(a), 0, buf, sizeof buf, &r), HTTPC_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.close, 0);
    ck_assert_uint_eq(r.body_len, 5);
    ck_assert_str_eq(r.body, "hello");
    size_t n;
    const char *v = httpc_header(&r, "Retry-After", &n);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(v[0], '3');
    ck_assert_ptr_null(httpc_header(&r, "Content", NULL));
    ck_assert_ptr_null(httpc_header(&r, "HTTP/1.1 200 OK", NULL));
}
END_TEST

START_TEST(test_chunked_and_interim)
{
    /* A 100 Continue first, then a chunked body with a chunk extension and a trailer. */
    const char *a = "HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 413 Too Large\r\nTransfer-Encoding: chunked\r\n"
                    "Connection: keep-alive, Close\r\n\r\n"
                    "4\r\nwiki\r\n6;x=y\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nT: 1\r\n\r\n";
    char buf[256];
    httpc_response r;
    ck_assert_int_eq(read_answer(a, strlen(a), 0, buf, sizeof buf, &r), HTTPC_OK);
    ck_assert_int_eq(r.status, 413);
    ck_assert_int_eq(r.close, 1);
    ck_assert_str_eq(r.body, "wikipedia in \r\n\r\nchunks.");
    ck_assert_uint_eq(r.body_total, 24);
}
END_TEST

START_TEST(test_bounded_body)
{
    /* A body larger than the buffer: kept as far as it fits, the rest read and counted, and
     * the next answer on the connection read whole. */
    size_t big = 100000;
    char head[128];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big);
    char *a = malloc((size_t)hl + big);
    memcpy(a, head, (size_t)hl);
    memset(a + hl, 'x', big);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(sv[1]);
        _exit(httpc_send_all(sv[0], a, (size_t)hl + big) == 0 ? 0 : 1);
    }
    char buf[128];
    httpc_response r;
    ck_assert_int_eq(httpc_read(sv[1], buf, sizeof buf, &r), HTTPC_OK);
    ck_assert_uint_eq(r.body_total, big);
    ck_assert_uint_eq(r.head_len + r.body_len, sizeof buf - 1);
    ck_assert_int_eq(r.body[r.body_len - 1], 'x');
    const char *next = "HTTP/1.1 204 No Content\r\n\r\n";
    ck_assert_int_eq(httpc_send_all(sv[0], next, strlen(next)), 0);
    ck_assert_int_eq(httpc_read(sv[1], buf, sizeof buf, &r), HTTPC_OK);
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.body_total, 0);
    close(sv[0]);
    close(sv[1]);
    int st = -1;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_int_eq(st, 0);
    free(a);
}
END_TEST

START_TEST(test_until_close)
{
    const char *a = "HTTP/1.0 200 OK\r\n\r\nall of it";
    char buf[256];
    httpc_response r;
    ck_assert_int_eq(read_answer(a, strlen(a), 1, buf, sizeof buf, &r), HTTPC_OK);
    ck_assert_int_eq(r.close, 1);
    ck_assert_str_eq(r.body, "all of it");
}
END_TEST

START_TEST(test_errors)
{
    char buf[256];
    httpc_response r;
    ck_assert_int_eq(read_answer("", 0, 1, buf, sizeof buf, &r), HTTPC_EMPTY);
    const char *cut = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
    ck_assert_int_eq(read_answer(cut, strlen(cut), 1, buf, sizeof buf, &r), HTTPC_CUT);
    const char *half = "HTTP/1.1 200 OK\r\nContent-Le";
    ck_assert_int_eq(read_answer(half, strlen(half), 1, buf, sizeof buf, &r), HTTPC_CUT);
    const char *junk = "SSH-2.0-OpenSSH\r\n\r\n";
    ck_assert_int_eq(read_answer(junk, strlen(junk), 1, buf, sizeof buf, &r), HTTPC_CUT);
    const char *badchunk = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    ck_assert_int_eq(read_answer(badchunk, strlen(badchunk), 1, buf, sizeof buf, &r), HTTPC_CUT);
    char head[300];
    memset(head, 'a', sizeof head);
    memcpy(head, "HTTP/1.1 200 OK\r\nX: ", 20);
    ck_assert_int_eq(read_answer(head, sizeof head, 1, buf, sizeof buf, &r), HTTPC_TOO_BIG);
    ck_assert_int_eq(httpc_connect("localhost", 80, NULL, 1), -1);
}
END_TEST

START_TEST(test_request_head)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(httpc_send_request(sv[0], "POST", "h", "/v1/x", "A: b\r\n", "image/png",
                                        "xyz", 3), 0);
    close(sv[0]);
    char got[256];
    ssize_t n = recv(sv[1], got, sizeof got - 1, MSG_WAITALL);
    ck_assert_int_gt(n, 0);
    got[n] = '\0';
    ck_assert_str_eq(got, "POST /v1/x HTTP/1.1\r\nHost: h\r\nA: b\r\nContent-Type: image/png\r\n"
                          "Content-Length: 3\r\n\r\nxyz");
    close(sv[1]);
}
END_TEST

Suite *suite_httpc(void)
{
    Suite *s = suite_create("httpc");
    TCase *tc = tcase_create("answers");
    tcase_add_test(tc, test_content_length);
    tcase_add_test(tc, test_chunked_and_interim);
    tcase_add_test(tc, test_bounded_body);
    tcase_add_test(tc, test_until_close);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_request_head);
    suite_add_tcase(s, tc);
    return s;
}

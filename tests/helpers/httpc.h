/* httpc.h — the small HTTP/1.1 client of the test helpers (loadgen, slowclient) and the
 * unit tests that talk to an in-process server (check_serve_server.c). Loopback testing
 * only: IPv4 addresses, blocking sockets, one request at a time per connection (no
 * pipelining: bytes a server sends after an answer, before the next request, are dropped).
 *
 *   int fd = httpc_connect("127.0.0.1", port, NULL, 30);
 *   httpc_send_request(fd, "POST", "127.0.0.1", "/v1/denoise", NULL, "image/png", png, n);
 *   char buf[8192];
 *   httpc_response r;
 *   if (httpc_read(fd, buf, sizeof buf, &r) == HTTPC_OK) ... r.status, r.body ...
 *
 * An answer is read with a bound: its status line and headers must fit in the caller's
 * buffer; its body (Content-Length, chunked, or up to the close) is kept after the headers
 * as far as the buffer has room and the rest is read and dropped, so a connection stays
 * usable for the next request whatever the size of the answer. Interim 1xx answers are
 * skipped. Not for answers to HEAD requests (they announce a body they do not send). */
#ifndef DAED_TESTS_HTTPC_H
#define DAED_TESTS_HTTPC_H

#include <stddef.h>

/* httpc_read's results. */
enum {
    HTTPC_OK = 0,
    HTTPC_EMPTY = -1,   /* the connection ended (closed, reset, timed out) before any byte */
    HTTPC_CUT = -2,     /* the answer ended early or is not HTTP */
    HTTPC_TOO_BIG = -3, /* status line and headers larger than the buffer */
};

typedef struct {
    int status;         /* e.g. 200 */
    int close;          /* the server closes the connection after this answer */
    const char *head;   /* status line and headers ("\r\n\r\n" included), in the buffer */
    size_t head_len;
    const char *body;   /* the body (de-chunked), right after the head; NUL-terminated */
    size_t body_len;    /* bytes of it kept in the buffer */
    size_t body_total;  /* bytes of it received (body_len plus those dropped) */
} httpc_response;

/* A TCP connection to HOST (an IPv4 address) : PORT, from source address SRC (NULL: any),
 * with TCP_NODELAY and, when timeout_s > 0, that receive and send timeout. Returns the
 * socket, or -1 (errno set). */
int httpc_connect(const char *host, int port, const char *src, double timeout_s);

/* All N bytes of P (retried on EINTR, no SIGPIPE). 0, or -1 when the connection failed. */
int httpc_send_all(int fd, const void *p, size_t n);

/* One request: "METHOD PATH HTTP/1.1", Host, then HEADERS as given (whole lines each ending
 * in "\r\n", or NULL), and with a BODY (non-NULL) its Content-Type TYPE (NULL: none) and
 * Content-Length. 0, or -1 when the head is too long or the connection failed. */
int httpc_send_request(int fd, const char *method, const char *host, const char *path,
                       const char *headers, const char *type, const void *body, size_t body_len);

/* Reads one answer into BUF (CAP bytes, at least 64) and describes it in *R (pointers into
 * BUF). Returns HTTPC_OK or one of the errors above; BUF is NUL-terminated in every case
 * but a CAP under 64 (HTTPC_TOO_BIG, BUF untouched). */
int httpc_read(int fd, char *buf, size_t cap, httpc_response *r);

/* The value of header NAME (case-insensitive) in R's head, its length in *len (may be
 * NULL); NULL when the answer has no such header. */
const char *httpc_header(const httpc_response *r, const char *name, size_t *len);

/* The whole of file PATH in a malloc'd buffer (the caller frees it), its size in *len; NULL
 * when it cannot be read. For request bodies given as files. */
char *httpc_read_file(const char *path, size_t *len);

#endif

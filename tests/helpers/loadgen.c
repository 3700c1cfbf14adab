/* loadgen.c — a small HTTP/1.1 load client for the daed end-to-end tests.
 *
 *   loadgen --port P [--host 127.0.0.1] --path /v1/denoise [--body FILE] [--type MIME]
 *           [--header "Name: value"] [--conns 64] [--requests 20] [--expect 200]
 *           [--also 503] [--allow-lost]
 *
 * Each of --conns threads keeps one keep-alive connection (reconnecting when the server
 * says Connection: close) and sends --requests POSTs (GET without --body). A request is
 * "ok" when it gets a complete answer with status --expect, "bad" when it gets another
 * status (--also names a second accepted one; a 503 without Retry-After is always bad) or a
 * cut answer, "lost" when the connection fails before any byte of an answer
 * (refused, reset): that is how a draining server refuses new work. With --allow-lost a
 * thread stops at its first lost request instead of counting it as a failure.
 * Prints one summary line; exits 0 when bad == 0 (and lost == 0 unless --allow-lost). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"

static struct {
    const char *host, *path, *type;
    char *header; /* "--header" as a whole line with its CRLF, or NULL */
    int port, conns, requests, expect, also, allow_lost;
    char *body;
    size_t body_len;
} O = {"127.0.0.1", "/healthz", "application/octet-stream", NULL, 0, 64, 20, 200, 0, 0, NULL, 0};

static atomic_int n_ok, n_bad, n_lost, n_status[600];

/* One request/answer. Returns the status (>0), 0 when nothing came back (lost), -1 when
 * the answer was cut. *close_after set when the server will close. */
static int exchange(int fd, int *close_after)
{
    if (httpc_send_request(fd, O.body ? "POST" : "GET", O.host, O.path, O.header, O.type,
                           O.body, O.body_len) != 0)
        return 0;
    static __thread char buf[1 << 16];
    httpc_response r;
    int rc = httpc_read(fd, buf, sizeof buf, &r);
    if (rc != HTTPC_OK)
        return rc == HTTPC_EMPTY ? 0 : -1;
    if (r.status == 503 && !httpc_header(&r, "Retry-After", NULL))
        return -1; /* a 503 must say when to come back */
    *close_after = r.close;
    return r.status;
}

static void *client(void *arg)
{
    (void)arg;
    int fd = -1;
    for (int i = 0; i < O.requests; i++) {
        if (fd < 0 && (fd = httpc_connect(O.host, O.port, NULL, 120)) < 0) {
            atomic_fetch_add(&n_lost, 1);
            if (O.allow_lost)
                break;
            usleep(10000);
            continue;
        }
        int close_after = 0;
        int st = exchange(fd, &close_after);
        if (st == 0) {
            atomic_fetch_add(&n_lost, 1);
            close(fd);
            fd = -1;
            if (O.allow_lost)
                break;
            continue;
        }
        if (st < 0) {
            atomic_fetch_add(&n_bad, 1);
            close(fd);
            fd = -1;
            continue;
        }
        atomic_fetch_add(&n_status[st < 600 ? st : 599], 1);
        atomic_fetch_add(st == O.expect || st == O.also ? &n_ok : &n_bad, 1);
        if (close_after) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--allow-lost")) {
            O.allow_lost = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "loadgen: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--port")) O.port = atoi(v);
        else if (!strcmp(a, "--host")) O.host = v;
        else if (!strcmp(a, "--path")) O.path = v;
        else if (!strcmp(a, "--type")) O.type = v;
        else if (!strcmp(a, "--header")) {
            free(O.header);
            if (!(O.header = malloc(strlen(v) + 3)))
                return 2;
            sprintf(O.header, "%s\r\n", v);
        }
        else if (!strcmp(a, "--conns")) O.conns = atoi(v);
        else if (!strcmp(a, "--requests")) O.requests = atoi(v);
        else if (!strcmp(a, "--expect")) O.expect = atoi(v);
        else if (!strcmp(a, "--also")) O.also = atoi(v);
        else if (!strcmp(a, "--body")) {
            free(O.body);
            if (!(O.body = httpc_read_file(v, &O.body_len))) {
                fprintf(stderr, "loadgen: cannot read %s\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "loadgen: unknown option %s\n", a);
            return 2;
        }
    }
    if (O.port <= 0 || O.conns < 1 || O.conns > 4096) {
        fprintf(stderr, "loadgen: --port and --conns (1..4096) are required\n");
        return 2;
    }
    pthread_t *t = calloc((size_t)O.conns, sizeof *t);
    for (int i = 0; i < O.conns; i++)
        if (pthread_create(&t[i], NULL, client, NULL) != 0) {
            fprintf(stderr, "loadgen: cannot start thread %d\n", i);
            return 2;
        }
    for (int i = 0; i < O.conns; i++)
        pthread_join(t[i], NULL);
    printf("ok=%d bad=%d lost=%d", n_ok, n_bad, n_lost);
    for (int s = 100; s < 600; s++)
        if (n_status[s])
            printf(" status_%d=%d", s, n_status[s]);
    printf("\n");
    free(t);
    free(O.body);
    free(O.header);
    return n_bad == 0 && (O.allow_lost || n_lost == 0) ? 0 : 1;
}

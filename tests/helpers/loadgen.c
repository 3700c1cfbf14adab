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
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct {
    const char *host, *path, *type, *header;
    int port, conns, requests, expect, also, allow_lost;
    char *body;
    size_t body_len;
} O = {"127.0.0.1", "/healthz", "application/octet-stream", NULL, 0, 64, 20, 200, 0, 0, NULL, 0};

static atomic_int n_ok, n_bad, n_lost, n_status[600];

static int connect_to(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
    inet_pton(AF_INET, O.host, &a.sin_addr);
    struct timeval tv = {120, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One request/answer. Returns the status (>0), 0 when nothing came back (lost), -1 when
 * the answer was cut. *close_after set when the server will close. */
static int exchange(int fd, int *close_after)
{
    char head[1024];
    int hn;
    if (O.body)
        hn = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n%s%s\r\n",
                      O.path, O.host, O.type, O.body_len, O.header ? O.header : "",
                      O.header ? "\r\n" : "");
    else
        hn = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s\r\n", O.path,
                      O.host, O.header ? O.header : "", O.header ? "\r\n" : "");
    if (send_all(fd, head, (size_t)hn) != 0 || (O.body && send_all(fd, O.body, O.body_len) != 0))
        return 0;
    static __thread char buf[1 << 16];
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got == sizeof buf - 1)
            return -1;
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return got ? -1 : 0;
        got += (size_t)r;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return -1;
    size_t clen = 0;
    int retry_after = 0;
    *close_after = 0;
    for (char *l = strstr(buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
        if (!strncasecmp(l + 2, "Content-Length:", 15))
            clen = strtoul(l + 17, NULL, 10);
        if (!strncasecmp(l + 2, "Connection: close", 17))
            *close_after = 1;
        if (!strncasecmp(l + 2, "Retry-After:", 12))
            retry_after = 1;
    }
    if (status == 503 && !retry_after) /* a 503 must say when to come back */
        return -1;
    size_t have = got - (size_t)(end + 4 - buf);
    while (have < clen) {
        char sink[16384];
        size_t want = clen - have < sizeof sink ? clen - have : sizeof sink;
        ssize_t r = recv(fd, sink, want, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    return status;
}

static void *client(void *arg)
{
    (void)arg;
    int fd = -1;
    for (int i = 0; i < O.requests; i++) {
        if (fd < 0 && (fd = connect_to()) < 0) {
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
        else if (!strcmp(a, "--header")) O.header = v;
        else if (!strcmp(a, "--conns")) O.conns = atoi(v);
        else if (!strcmp(a, "--requests")) O.requests = atoi(v);
        else if (!strcmp(a, "--expect")) O.expect = atoi(v);
        else if (!strcmp(a, "--also")) O.also = atoi(v);
        else if (!strcmp(a, "--body")) {
            FILE *f = fopen(v, "rb");
            if (!f) {
                fprintf(stderr, "loadgen: cannot read %s\n", v);
                return 2;
            }
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            O.body = malloc((size_t)n + 1);
            O.body_len = fread(O.body, 1, (size_t)n, f);
            fclose(f);
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
    return n_bad == 0 && (O.allow_lost || n_lost == 0) ? 0 : 1;
}

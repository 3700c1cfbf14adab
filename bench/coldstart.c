/* coldstart.c — time from exec of a server to its first answered request (bench/serve.sh).
 *
 *   coldstart --port P [--path /v1/denoise] [--body FILE] [--type MIME] [--pid-file F]
 *             [--timeout SECONDS] -- COMMAND [ARGS...]
 *
 * Starts COMMAND (its output goes where ours does), then sends the request (POST with
 * --body, else GET) to 127.0.0.1:P every 2 ms until one is answered 200, and prints
 * "cold_start_ms=<ms from exec to that answer>". The server keeps running: its pid goes to
 * --pid-file for the caller to measure and stop. Exits 1 if the server exits or does not
 * answer 200 within --timeout (default 120 s; the server is then killed). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len + 65536 > cap) {
            char *b = realloc(buf, cap = (len + 65536) * 2);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    *n = len;
    return buf;
}

/* One request on a new connection: the status, or -1 when not (yet) possible. */
static int try_once(int port, const char *req, size_t req_len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int status = -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto out;
    for (size_t off = 0; off < req_len;) {
        ssize_t w = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    char buf[4096];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[len] = '\0';
    int code;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) == 1)
        status = code;
out:
    close(fd);
    return status;
}

int main(int argc, char **argv)
{
    int port = 0, timeout = 120, i;
    const char *path = "/v1/denoise", *body_file = NULL, *type = "image/png", *pid_file = NULL;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "coldstart: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--port")) port = atoi(v);
        else if (!strcmp(argv[i - 1], "--path")) path = v;
        else if (!strcmp(argv[i - 1], "--body")) body_file = v;
        else if (!strcmp(argv[i - 1], "--type")) type = v;
        else if (!strcmp(argv[i - 1], "--pid-file")) pid_file = v;
        else if (!strcmp(argv[i - 1], "--timeout")) timeout = atoi(v);
        else {
            fprintf(stderr, "coldstart: unknown option %s\n", argv[i - 1]);
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || i >= argc || timeout <= 0) {
        fprintf(stderr, "usage: coldstart --port P [--path P] [--body FILE] [--type MIME] "
                        "[--pid-file F] [--timeout S] -- COMMAND [ARGS...]\n");
        return 2;
    }
    size_t body_len = 0;
    char *body = NULL;
    if (body_file && !(body = read_all(body_file, &body_len))) {
        fprintf(stderr, "coldstart: cannot read %s\n", body_file);
        return 2;
    }
    size_t cap = body_len + strlen(path) + strlen(type) + 256;
    char *req = malloc(cap);
    if (!req)
        return 1;
    int hl = body ? snprintf(req, cap, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n\r\n", path, type, body_len)
                  : snprintf(req, cap, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Connection: close\r\n\r\n", path);
    if (body)
        memcpy(req + hl, body, body_len);
    size_t req_len = (size_t)hl + body_len;

    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("coldstart: fork");
        return 1;
    }
    if (pid == 0) {
        execvp(argv[i], argv + i);
        fprintf(stderr, "coldstart: cannot run %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }
    if (pid_file) {
        FILE *f = fopen(pid_file, "w");
        if (f) {
            fprintf(f, "%d\n", (int)pid);
            fclose(f);
        }
    }
    int rc = 1, last = -1;
    while (now_ms() - t0 < timeout * 1e3) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "coldstart: %s exited before answering (status %d)\n", argv[i], st);
            goto out;
        }
        last = try_once(port, req, req_len);
        if (last == 200) {
            printf("cold_start_ms=%.1f\n", now_ms() - t0);
            rc = 0;
            goto out;
        }
        usleep(2000);
    }
    fprintf(stderr, "coldstart: no 200 from port %d within %d s (last status %d)\n", port,
            timeout, last);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
out:
    free(req);
    free(body);
    return rc;
}

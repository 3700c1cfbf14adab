/* httpc.c — the test helpers' small HTTP/1.1 client (httpc.h). */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int httpc_connect(const char *host, int port, const char *src, double timeout_s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in s = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        (src && inet_pton(AF_INET, src, &s.sin_addr) != 1)) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (timeout_s > 0) {
        struct timeval tv = {(time_t)timeout_s,
                             (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((src && bind(fd, (struct sockaddr *)&s, sizeof s) != 0) ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int httpc_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int httpc_send_request(int fd, const char *method, const char *host, const char *path,
                       const char *headers, const char *type, const void *body, size_t body_len)
{
    char head[4096];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s\r\n%s", method, path, host,
                     headers ? headers : "");
    if (n > 0 && (size_t)n < sizeof head && body && type)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n", type);
    if (n > 0 && (size_t)n < sizeof head && body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", body_len);
    if (n > 0 && (size_t)n < sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (n <= 0 || (size_t)n >= sizeof head)
        return -1;
    if (httpc_send_all(fd, head, (size_t)n) != 0)
        return -1;
    return body && body_len ? httpc_send_all(fd, body, body_len) : 0;
}

/* ---- reading ------------------------------------------------------------------------ */

/* The bytes of the stream after the head: first what came with it (in the caller's
 * buffer), then from the socket through `in`. */
typedef struct {
    int fd;
    const char *win; /* current window: the leftover in the caller's buffer, or in */
    size_t pos, n;
    char in[16384];
} reader;

/* The next bytes into the window; 0, or -1 at the end of the stream. */
static int fill(reader *rd)
{
    ssize_t k;
    do
        k = recv(rd->fd, rd->in, sizeof rd->in, 0);
    while (k < 0 && errno == EINTR);
    if (k <= 0)
        return -1;
    rd->win = rd->in;
    rd->pos = 0;
    rd->n = (size_t)k;
    return 0;
}

static int get_byte(reader *rd)
{
    if (rd->pos == rd->n && fill(rd) != 0)
        return -1;
    return (unsigned char)rd->win[rd->pos++];
}

/* Body bytes go right after the head, as far as the buffer has room (memmove: the window
 * may be the leftover in the same buffer, never behind the write position). */
static void keep(httpc_response *r, char *buf, size_t cap, const char *p, size_t k)
{
    size_t at = r->head_len + r->body_len, room = cap - 1 - at;
    size_t m = k < room ? k : room;
    memmove(buf + at, p, m);
    r->body_len += m;
    r->body_total += k;
}

/* N body bytes (N = SIZE_MAX: up to the end of the stream). 0, or -1 when cut. */
static int take(reader *rd, httpc_response *r, char *buf, size_t cap, size_t n)
{
    while (n) {
        if (rd->pos == rd->n && fill(rd) != 0)
            return n == (size_t)-1 ? 0 : -1;
        size_t k = rd->n - rd->pos < n ? rd->n - rd->pos : n;
        keep(r, buf, cap, rd->win + rd->pos, k);
        rd->pos += k;
        if (n != (size_t)-1)
            n -= k;
    }
    return 0;
}

/* One line (up to "\n") into LINE, CR/LF removed; 0, or -1 when cut or longer than CAP. */
static int get_line(reader *rd, char *line, size_t cap)
{
    size_t n = 0;
    for (;;) {
        int c = get_byte(rd);
        if (c < 0 || n + 1 >= cap)
            return -1;
        if (c == '\n')
            break;
        line[n++] = (char)c;
    }
    if (n && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    return 0;
}

/* A chunked body: size lines, data, CRLF; then trailers up to an empty line. */
static int take_chunked(reader *rd, httpc_response *r, char *buf, size_t cap)
{
    char line[256];
    for (;;) {
        char *end;
        if (get_line(rd, line, sizeof line) != 0)
            return -1;
        unsigned long long size = strtoull(line, &end, 16);
        if (end == line || size > (1ULL << 40))
            return -1;
        if (size == 0)
            break;
        if (take(rd, r, buf, cap, (size_t)size) != 0 || get_line(rd, line, sizeof line) != 0 ||
            line[0])
            return -1;
    }
    do
        if (get_line(rd, line, sizeof line) != 0)
            return -1;
    while (line[0]);
    return 0;
}

/* Status line and headers into buf[0..*got); returns the head's length, or an error. */
static long read_head(int fd, char *buf, size_t cap, size_t *got, int *status)
{
    for (;;) {
        char *end;
        while (!(end = memmem(buf, *got, "\r\n\r\n", 4))) {
            if (*got >= cap - 1)
                return HTTPC_TOO_BIG;
            ssize_t k = recv(fd, buf + *got, cap - 1 - *got, 0);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return *got ? HTTPC_CUT : HTTPC_EMPTY;
            *got += (size_t)k;
        }
        buf[*got] = '\0';
        size_t head_len = (size_t)(end + 4 - buf);
        if (sscanf(buf, "HTTP/1.%*1[01] %3d", status) != 1 || *status < 100)
            return HTTPC_CUT;
        if (*status >= 200)
            return (long)head_len;
        memmove(buf, buf + head_len, *got - head_len); /* 1xx: skip it */
        *got -= head_len;
    }
}

/* 1 when header NAME's value holds TOKEN (comma-separated, case-insensitive). */
static int header_has(const httpc_response *r, const char *name, const char *token)
{
    size_t len, tl = strlen(token);
    const char *v = httpc_header(r, name, &len);
    for (size_t i = 0; v && i + tl <= len; i++)
        if (!strncasecmp(v + i, token, tl) && (i == 0 || strchr(" ,", v[i - 1])) &&
            (i + tl == len || strchr(" ,;", v[i + tl])))
            return 1;
    return 0;
}

int httpc_read(int fd, char *buf, size_t cap, httpc_response *r)
{
    memset(r, 0, sizeof *r);
    size_t got = 0;
    if (cap < 64)
        return HTTPC_TOO_BIG;
    buf[0] = '\0';
    long hl = read_head(fd, buf, cap, &got, &r->status);
    if (hl < 0)
        return (int)hl;
    r->head = buf;
    r->head_len = (size_t)hl;
    r->body = buf + hl;
    r->close = header_has(r, "Connection", "close");
    reader *rd = malloc(sizeof *rd);
    if (!rd)
        return HTTPC_CUT;
    rd->fd = fd;
    rd->win = buf + hl;
    rd->pos = 0;
    rd->n = got - (size_t)hl;
    size_t clen_len;
    const char *clen = httpc_header(r, "Content-Length", &clen_len);
    int rc = 0;
    if (r->status == 204 || r->status == 304)
        rc = 0;
    else if (header_has(r, "Transfer-Encoding", "chunked"))
        rc = take_chunked(rd, r, buf, cap);
    else if (clen)
        rc = take(rd, r, buf, cap, (size_t)strtoull(clen, NULL, 10));
    else {
        rc = take(rd, r, buf, cap, (size_t)-1); /* delimited by the close */
        r->close = 1;
    }
    free(rd);
    buf[r->head_len + r->body_len] = '\0';
    return rc == 0 ? HTTPC_OK : HTTPC_CUT;
}

const char *httpc_header(const httpc_response *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *end = r->head + r->head_len;
    for (const char *l = r->head; l < end;) {
        const char *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
        if (!eol)
            break;
        if (l != r->head && (size_t)(eol - l) > nl && !strncasecmp(l, name, nl) && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            if (len)
                *len = (size_t)(eol - v);
            return v;
        }
        l = eol + 2;
    }
    return NULL;
}

char *httpc_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1)) &&
        fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p)
        *len = (size_t)n;
    return p;
}

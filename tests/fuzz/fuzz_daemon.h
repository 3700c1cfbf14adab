/* fuzz_daemon.h — a real daed (dae_server_create) inside the fuzzer, fed over loopback TCP.
 *
 * The fuzz targets http and json drive the daemon's own request path: libmicrohttpd, the
 * state machine of request.c, the v1/v2 handlers, the worker pool, parsing, inference and
 * the answers. The server is started once per process (loopback, port 0, never connected
 * to); each input becomes one connection: the server end of a loopback TCP pair handed to
 * libmicrohttpd with MHD_add_connection, the request written in chunks split at points the
 * input chooses (each read by the server before the next is written, so the handler sees
 * the body in pieces), the answer read until the server closes the connection.
 *
 * Oracles beyond the sanitizers: every request is answered (or the connection closed)
 * within FUZZ_HANG_S seconds, no 500, a JSON answer parses, and a request without the
 * API key gets no 2xx from a route that needs the key.
 */
#ifndef DAED_FUZZ_DAEMON_H
#define DAED_FUZZ_DAEMON_H

#include <cjson/cJSON.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "../../src/serve/internal.h"
#include "daed/core/model.h"
#include "daed/io/modelfile.h"
#include "daed/serve/serve.h"
#include "fuzz_util.h"

#define FUZZ_API_KEY "fz-key-8c1"
/* A hang: no answer and no close this long after the request was written. */
#define FUZZ_HANG_S 20

static dae_server *fuzz_srv_;

/* Test models (random weights): a 1x28x28 MLP, a fully convolutional 1x28x28 model with a
 * calibration, a 1x14x14 -> 28x28 superres. */
static const char *const FUZZ_MODELS[][2] = {
    {"mlp", "{\"name\":\"mlp\",\"tasks\":[\"denoise\",\"inpaint\",\"encode\",\"score\"],"
            "\"input\":[1,28,28],\"encoder\":[{\"type\":\"flatten\"},{\"type\":\"linear\","
            "\"in_features\":784,\"out_features\":16},{\"type\":\"relu\"},{\"type\":\"linear\","
            "\"in_features\":16,\"out_features\":4}],\"decoder\":[{\"type\":\"linear\","
            "\"in_features\":4,\"out_features\":784},{\"type\":\"sigmoid\"},{\"type\":"
            "\"unflatten\",\"unflattened_size\":[1,28,28]}]}"},
    {"conv", "{\"name\":\"conv\",\"tasks\":[\"denoise\",\"inpaint\",\"encode\",\"score\"],"
             "\"input\":[1,28,28],\"encoder\":[{\"type\":\"conv2d\",\"in_channels\":1,"
             "\"out_channels\":4,\"kernel_size\":3,\"stride\":2,\"padding\":1},{\"type\":"
             "\"relu\"}],\"decoder\":[{\"type\":\"conv_transpose2d\",\"in_channels\":4,"
             "\"out_channels\":1,\"kernel_size\":3,\"stride\":2,\"padding\":1,"
             "\"output_padding\":1},{\"type\":\"sigmoid\"}],\"calibration\":{\"score\":\"mse\","
             "\"quantiles\":{\"p50\":0.05,\"p90\":0.08,\"p99\":0.12},\"threshold\":0.12}}"},
    {"sr", "{\"name\":\"sr\",\"tasks\":[\"superres\"],\"input\":[1,14,14],\"encoder\":[{"
           "\"type\":\"conv2d\",\"in_channels\":1,\"out_channels\":4,\"kernel_size\":3,"
           "\"stride\":1,\"padding\":1},{\"type\":\"relu\"}],\"decoder\":[{\"type\":"
           "\"upsample\",\"scale_factor\":2,\"mode\":\"nearest\"},{\"type\":\"conv2d\","
           "\"in_channels\":4,\"out_channels\":1,\"kernel_size\":3,\"stride\":1,\"padding\":1},"
           "{\"type\":\"sigmoid\"}]}"},
};

static char fuzz_models_dir_[128];

static void fuzz_daemon_cleanup(void)
{
    char p[256];
    for (size_t i = 0; i < sizeof FUZZ_MODELS / sizeof FUZZ_MODELS[0]; i++) {
        snprintf(p, sizeof p, "%s/%s.safetensors", fuzz_models_dir_, FUZZ_MODELS[i][0]);
        unlink(p);
    }
    rmdir(fuzz_models_dir_);
}

static void *fuzz_daemon_run(void *s)
{
    dae_server_run(s);
    return NULL;
}

/* Starts the server once; aborts when it cannot (a broken harness is not a finding). */
static dae_server *fuzz_daemon(void)
{
    if (fuzz_srv_)
        return fuzz_srv_;
    const char *scratch = fuzz_scratch_dir();
    FUZZ_CHECK(scratch != NULL);
    snprintf(fuzz_models_dir_, sizeof fuzz_models_dir_, "%s/models", scratch);
    FUZZ_CHECK(mkdir(fuzz_models_dir_, 0700) == 0 || errno == EEXIST);
    for (size_t i = 0; i < sizeof FUZZ_MODELS / sizeof FUZZ_MODELS[0]; i++) {
        dae_error e = {0};
        char p[256];
        snprintf(p, sizeof p, "%s/%s.safetensors", fuzz_models_dir_, FUZZ_MODELS[i][0]);
        dae_model *m = dae_model_from_config(FUZZ_MODELS[i][1], &e);
        FUZZ_CHECK(m != NULL);
        dae_model_init_params(m, 7 + i);
        FUZZ_CHECK(dae_modelfile_save(p, m, FUZZ_MODELS[i][1], NULL, &e) == DAE_OK);
        dae_model_free(m);
    }
    atexit(fuzz_daemon_cleanup);

    dae_serve_config cfg;
    dae_serve_config_defaults(&cfg);
    snprintf(cfg.bind, sizeof cfg.bind, "127.0.0.1");
    cfg.port = 0;
    snprintf(cfg.models, sizeof cfg.models, "%s", fuzz_models_dir_);
    snprintf(cfg.api_key, sizeof cfg.api_key, "%s", FUZZ_API_KEY);
    snprintf(cfg.default_model[0], sizeof cfg.default_model[0], "mlp");
    cfg.workers = 1;
    cfg.queue_size = 64;
    cfg.access_log = 0;
    /* Small limits so the fuzzer reaches them with short inputs. */
    cfg.max_body = 256 * 1024;
    cfg.max_pixels = 64 * 64;
    cfg.max_side = 256;
    cfg.max_json_depth = 8;
    cfg.max_json_array = 4096;
    cfg.max_json_values = 8192;
    cfg.max_batch_images = 4;
    cfg.max_steps = 8;
    cfg.conn_timeout = 2 * FUZZ_HANG_S;
    cfg.per_ip_limit = 0;
    /* poll (the default), not epoll: libmicrohttpd 0.9.75's epoll loop notices a client that
     * half-closes in the middle of a body only at the timeouts, and the hang oracle would
     * wait for them on every such input. The parsing and handlers are the same code. */
    cfg.epoll = 0;
    dae_error e = {0};
    fuzz_srv_ = dae_server_create(&cfg, &e);
    if (!fuzz_srv_)
        fprintf(stderr, "fuzz_daemon: %s\n", e.msg);
    FUZZ_CHECK(fuzz_srv_ != NULL);
    /* dae_server_create took SIGTERM/SIGINT for its drain; the fuzzer's defaults are fine. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    /* The control loop (admin reloads wait for it), as daed's main thread runs it. */
    pthread_t ctl;
    FUZZ_CHECK(pthread_create(&ctl, NULL, fuzz_daemon_run, fuzz_srv_) == 0);
    pthread_detach(ctl);
    return fuzz_srv_;
}

static int64_t fuzz_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One request stream over a new connection. */
typedef struct fuzz_exchange {
    const uint8_t *data;
    size_t len;
    uint32_t split_seed;   /* where to cut the stream into writes (0: one write) */
    int half_close;        /* shutdown(SHUT_WR) after writing (a client going away) */
    /* out: the raw answer bytes (malloc'd) */
    char *ans;
    size_t ans_len;
} fuzz_exchange;

static uint32_t fuzz_xorshift(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* A connected loopback TCP pair: *client for the harness, the returned end for the
 * server (TCP, not a socketpair: libmicrohttpd sets TCP options and corks its answers). */
static int fuzz_pair(int *client)
{
    static int lfd = -1;
    static struct sockaddr_in la;
    if (lfd < 0) {
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FUZZ_CHECK(lfd >= 0);
        memset(&la, 0, sizeof la);
        la.sin_family = AF_INET;
        la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t n = sizeof la;
        FUZZ_CHECK(bind(lfd, (struct sockaddr *)&la, sizeof la) == 0);
        FUZZ_CHECK(listen(lfd, 16) == 0);
        FUZZ_CHECK(getsockname(lfd, (struct sockaddr *)&la, &n) == 0);
    }
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(c >= 0);
    FUZZ_CHECK(connect(c, (struct sockaddr *)&la, sizeof la) == 0);
    int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    FUZZ_CHECK(a >= 0);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *client = c;
    return a;
}

/* Writes the stream in pieces, each read by the server before the next, then reads the answer until the server closes. */
static void fuzz_exchange_run(fuzz_exchange *x)
{
    dae_server *s = fuzz_daemon();
    int fd = -1, srv = fuzz_pair(&fd);
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    FUZZ_CHECK(getpeername(srv, (struct sockaddr *)&peer, &plen) == 0);
    FUZZ_CHECK(MHD_add_connection(s->mhd, srv, (struct sockaddr *)&peer, plen) == MHD_YES);
    size_t done = 0;
    uint32_t seed = x->split_seed;
    while (done < x->len) {
        size_t n = x->len - done;
        if (x->split_seed) {
            size_t piece = 1 + fuzz_xorshift(&seed) % (n < 64 ? n : (n / 2 + 1));
            n = piece < n ? piece : n;
        }
        ssize_t w = send(fd, x->data + done, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {fd, POLLOUT, 0};
            poll(&p, 1, 50);
            /* The server may have answered early and stopped reading: drain it. */
            char tmp[4096];
            ssize_t r;
            while ((r = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT)) > 0) {
                x->ans = realloc(x->ans, x->ans_len + (size_t)r + 1);
                FUZZ_CHECK(x->ans != NULL);
                memcpy(x->ans + x->ans_len, tmp, (size_t)r);
                x->ans_len += (size_t)r;
            }
            if (r == 0)
                break;
            continue;
        }
        if (w <= 0)
            break; /* closed by the server (it answered early or refused the request) */
        done += (size_t)w;
        if (x->split_seed && done < x->len) {
            int64_t until = fuzz_now_ms() + 100;
            int outq = 0, inq = 0;
            /* Sent and acknowledged (SIOCOUTQ), then read by the server (FIONREAD of its
             * end: the descriptor is libmicrohttpd's now, but only queried, and a closed
             * one fails with EBADF, which ends the wait). */
            while (((ioctl(fd, SIOCOUTQ, &outq) == 0 && outq > 0) ||
                    (ioctl(srv, FIONREAD, &inq) == 0 && inq > 0)) &&
                   fuzz_now_ms() < until) {
                struct timespec ts = {0, 100000};
                nanosleep(&ts, NULL);
            }
        }
    }
    if (x->half_close)
        shutdown(fd, SHUT_WR);
    int64_t deadline = fuzz_now_ms() + FUZZ_HANG_S * 1000;
    for (;;) {
        int64_t left = deadline - fuzz_now_ms();
        if (left <= 0) {
            fprintf(stderr, "fuzz invariant failed: no answer and no close within %d s "
                    "(%zu answer bytes so far)\n", FUZZ_HANG_S, x->ans_len);
            abort();
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char buf[16384];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            break;
        x->ans = realloc(x->ans, x->ans_len + (size_t)r + 1);
        FUZZ_CHECK(x->ans != NULL);
        memcpy(x->ans + x->ans_len, buf, (size_t)r);
        x->ans_len += (size_t)r;
    }
    if (x->ans)
        x->ans[x->ans_len] = '\0';
    /* Reset rather than close: no TIME_WAIT left behind on either side, so thousands of
     * connections a second do not run out of loopback ports. */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* One parsed answer of an answer stream. */
typedef struct fuzz_answer {
    int status;
    int is_json;
    const char *body;
    size_t body_len;
} fuzz_answer;

/* Parses the next answer at *pos (skipping 1xx); 0 when there is none. bodyless: the
 * request was HEAD. A stream cut short (the server closed) ends the parse. */
static int fuzz_answer_next(const char *a, size_t len, size_t *pos, int bodyless,
                            fuzz_answer *out)
{
    for (;;) {
        size_t p = *pos;
        if (len - p < 12 || strncmp(a + p, "HTTP/1.", 7) != 0)
            return 0;
        const char *end = memmem(a + p, len - p, "\r\n\r\n", 4);
        if (!end)
            return 0;
        int status = atoi(a + p + 9);
        size_t hdr_end = (size_t)(end - a) + 4;
        out->status = status;
        out->is_json = 0;
        long long cl = -1;
        for (const char *l = a + p; l < end;) {
            const char *nl = memmem(l, (size_t)(end - l), "\r\n", 2);
            if (!nl)
                nl = end;
            if (!strncasecmp(l, "Content-Length:", 15))
                cl = atoll(l + 15);
            if (!strncasecmp(l, "Content-Type:", 13) &&
                memmem(l, (size_t)(nl - l), "application/json", 16))
                out->is_json = 1;
            l = nl + 2;
        }
        if (status >= 100 && status < 200) {
            *pos = hdr_end;
            continue;
        }
        size_t blen = bodyless || status == 204 || status == 304 ? 0
                      : cl >= 0 ? (size_t)cl : len - hdr_end;
        if (blen > len - hdr_end)
            return 0; /* cut short */
        out->body = a + hdr_end;
        out->body_len = blen;
        *pos = hdr_end + blen;
        return 1;
    }
}

/* Checks one answer. needs_key_ok: the request carried no API key and its path needs one,
 * so a 2xx would be a way past the key. */
static void fuzz_answer_check(const fuzz_answer *an, int no_key_route)
{
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "answer %d: %.*s\n", an->status,
                (int)(an->body_len < 300 ? an->body_len : 300), an->body);
    FUZZ_CHECK(an->status >= 200 && an->status < 600);
    /* 500 is a bug by definition; daed's own 5xx answers (JSON) are only 503, load
     * shedding, and 501 for a Transfer-Encoding other than chunked. libmicrohttpd refuses
     * some protocol errors with 501 or 505 (HTML). */
    FUZZ_CHECK(an->status != 500);
    FUZZ_CHECK(an->status < 500 || an->status == 503 || an->status == 501 || !an->is_json);
    if (no_key_route)
        FUZZ_CHECK(an->status < 200 || an->status >= 300);
    if (an->is_json && an->body_len) {
        cJSON *j = cJSON_ParseWithLength(an->body, an->body_len);
        FUZZ_CHECK(j != NULL);
        if (an->status >= 400)
            FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(j, "error") != NULL);
        cJSON_Delete(j);
    }
}

/* Would the daemon demand the key for this request target? (The path as sent, before any
 * query.) Unknown paths: 404 either way, so they count as needing it too. */
static int fuzz_path_needs_key(const char *target, unsigned method)
{
    char path[512];
    size_t n = strcspn(target, "?");
    if (n >= sizeof path)
        return 1;
    memcpy(path, target, n);
    path[n] = '\0';
    const dae_route *r = NULL;
    char param[128];
    unsigned allowed = 0;
    if (dae_route_match(path, method, &r, param, sizeof param, &allowed) == 200 && r)
        return !(r->flags & DAE_ROUTE_PUBLIC);
    return 1;
}

/* A growable byte buffer for building requests. */
typedef struct fuzz_buf {
    char *p;
    size_t n, cap;
} fuzz_buf;

static void fb_add(fuzz_buf *b, const void *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        FUZZ_CHECK(b->p != NULL);
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void fb_str(fuzz_buf *b, const char *s)
{
    fb_add(b, s, strlen(s));
}

/* The body framed as Content-Length (chunked = 0) or in chunks of the seed's sizes. */
static void fb_body(fuzz_buf *b, const uint8_t *body, size_t n, int chunked, uint32_t seed)
{
    char line[64];
    if (!chunked) {
        snprintf(line, sizeof line, "Content-Length: %zu\r\n\r\n", n);
        fb_str(b, line);
        fb_add(b, body, n);
        return;
    }
    fb_str(b, "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t done = 0; done < n;) {
        size_t c = 1 + fuzz_xorshift(&seed) % (n - done);
        snprintf(line, sizeof line, "%zx\r\n", c);
        fb_str(b, line);
        fb_add(b, body + done, c);
        fb_str(b, "\r\n");
        done += c;
    }
    fb_str(b, "0\r\n\r\n");
}

#endif

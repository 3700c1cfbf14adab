/* slowclient.c — slow HTTP clients (slowloris, slow uploads) next to normal ones, for daed's
 * --request-timeout test and benchmark. Loopback only.
 *
 *   slowclient --port P [--host 127.0.0.1]
 *       [--slowloris N]      connections sending a request's headers one byte per --interval-ms
 *       [--uploaders M]      connections sending their headers at once, then the body one
 *                            byte per --interval-ms
 *       [--interval-ms 1000] time between two bytes of a slow connection
 *       [--src-addrs K]      spread the slow connections over 127.0.0.2 .. 127.0.0.(K+1)
 *                            (daed's --per-ip-limit counts per address; normal clients use
 *                            --host's address); 0: all from --host's own address
 *       [--reconnect]        reopen a slow connection the server closed (keeps the pressure)
 *       [--seconds S]        length of the loaded phase (default 10)
 *       [--baseline S]       first S seconds of normal traffic alone (default 0: none)
 *       [--normal C]         normal clients: C threads, one keep-alive connection each
 *       [--rate R]           normal requests per second in total, paced (0: as fast as they go)
 *       [--path /healthz] [--body FILE] [--type MIME]  the normal request (POST with a body)
 *       [--max-life SECS]    fail if a slow connection stays open longer than SECS
 *       [--min-life SECS]    fail if a slow connection is closed before SECS (e.g. the server
 *                            has no deadline and only the test's end should close them)
 *
 * Prints "NORMAL phase=... requests= errors= rps= p50_ms= p99_ms= max_ms=" per phase and
 * "SLOW opened= closed_by_server= open_at_end= life_s_min= life_s_p50= life_s_max=
 * oldest_open_s=". Exits 1 when a normal request failed (an answer other than 2xx, or none)
 * or a --max-life / --min-life check failed, 0 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"

static struct {
    const char *host, *path, *type;
    int port, slowloris, uploaders, interval_ms, src_addrs, reconnect, normal;
    double seconds, baseline, rate, max_life, min_life;
    char *body;
    size_t body_len;
} O = {"127.0.0.1", "/healthz", "application/octet-stream", 0, 0, 0, 1000, 0, 0, 0,
       10, 0, 0, 0, 0, NULL, 0};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ normal clients */

typedef struct {
    double *lat;     /* seconds, one per answered request */
    size_t n, cap;
    long errors;
} lat_log;

static atomic_int phase_no; /* 0 baseline, 1 loaded, 2 stop */
static lat_log logs[2][256];

/* One request and its answer: the status, or -1 when it failed. */
static int exchange(int fd, int *close_after)
{
    if (httpc_send_request(fd, O.body ? "POST" : "GET", O.host, O.path, NULL, O.type, O.body,
                           O.body_len) != 0)
        return -1;
    char buf[8192];
    httpc_response r;
    if (httpc_read(fd, buf, sizeof buf, &r) != HTTPC_OK)
        return -1;
    *close_after = r.close;
    return r.status;
}

static void log_add(lat_log *l, double v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        double *p = realloc(l->lat, cap * sizeof *p);
        if (!p)
            return;
        l->lat = p;
        l->cap = cap;
    }
    l->lat[l->n++] = v;
}

static void *normal_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    int fd = -1;
    /* Paced: each thread sends every normal/rate seconds, from a staggered start. */
    double period = O.rate > 0 ? O.normal / O.rate : 0;
    double next = now_s() + period * id / (O.normal ? O.normal : 1);
    for (;;) {
        int ph = atomic_load(&phase_no);
        if (ph >= 2)
            break;
        if (period > 0) {
            double wait = next - now_s();
            if (wait > 0) {
                struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
                continue;
            }
            next += period;
        }
        lat_log *l = &logs[ph][id];
        if (fd < 0 && (fd = httpc_connect(O.host, O.port, NULL, 30)) < 0) {
            l->errors++;
            usleep(10000);
            continue;
        }
        int close_after = 0;
        double t0 = now_s();
        int st = exchange(fd, &close_after);
        double dt = now_s() - t0;
        if (st < 200 || st > 299) {
            if (l->errors++ < 5)
                fprintf(stderr, "slowclient: normal request: %s %d\n",
                        st < 0 ? "failed" : "status", st);
            close(fd);
            fd = -1;
            continue;
        }
        log_add(l, dt);
        if (close_after) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* Prints one phase's line; returns its error count. */
static long report_normal(int ph, const char *name, double secs)
{
    size_t n = 0;
    long errors = 0;
    for (int i = 0; i < O.normal; i++) {
        n += logs[ph][i].n;
        errors += logs[ph][i].errors;
    }
    double *all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < O.normal && all; i++) {
        if (logs[ph][i].n)
            memcpy(all + k, logs[ph][i].lat, logs[ph][i].n * sizeof *all);
        k += logs[ph][i].n;
    }
    if (all)
        qsort(all, n, sizeof *all, cmp_double);
    printf("NORMAL phase=%s requests=%zu errors=%ld rps=%.1f p50_ms=%.3f p99_ms=%.3f "
           "max_ms=%.3f\n", name, n, errors, (double)n / secs,
           all ? pct(all, n, 0.5) * 1e3 : 0, all ? pct(all, n, 0.99) * 1e3 : 0,
           all && n ? all[n - 1] * 1e3 : 0);
    free(all);
    return errors;
}

/* ------------------------------------------------------------------ slow clients */

typedef struct {
    int fd;
    int upload;      /* 0 slowloris, 1 slow body */
    double opened;
    double next;     /* next byte due */
    size_t sent;     /* bytes of this connection's stream sent */
} slow_conn;

static double *lives;
static size_t n_lives, cap_lives;
static long n_opened, n_open_fail;

/* The byte stream of a slow connection: a request line and headers that never end
 * (slowloris), or complete headers and a body that takes 10^6 ticks (upload). */
static const char UPLOAD_HEAD[] = "POST /v1/denoise HTTP/1.1\r\nHost: slow\r\n"
                                  "Content-Type: image/png\r\nContent-Length: 1000000\r\n\r\n";

static char stream_byte(const slow_conn *c, size_t i)
{
    static const char lor[] = "GET /v1/models HTTP/1.1\r\nHost: slow\r\n";
    if (c->upload)
        return 'x'; /* the headers went at once (slow_open) */
    if (i < sizeof lor - 1)
        return lor[i];
    /* then "X-aaaaaaa: b\r\n" lines, 14 bytes each */
    static const char line[] = "X-aaaaaaa: b\r\n";
    return line[(i - (sizeof lor - 1)) % (sizeof line - 1)];
}

static int slow_open(slow_conn *c, int idx, double t)
{
    char src[32];
    const char *from = NULL;
    if (O.src_addrs > 0) {
        snprintf(src, sizeof src, "127.0.0.%d", 2 + idx % O.src_addrs);
        from = src;
    }
    c->fd = httpc_connect(O.host, O.port, from, 0);
    if (c->fd < 0) {
        n_open_fail++;
        return -1;
    }
    /* An uploader's headers go at once: the slow part is its body. */
    if (c->upload && httpc_send_all(c->fd, UPLOAD_HEAD, sizeof UPLOAD_HEAD - 1) != 0) {
        close(c->fd);
        c->fd = -1;
        n_open_fail++;
        return -1;
    }
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    c->opened = t;
    /* Spread the first bytes over one interval so the ticks do not come in a burst. */
    c->next = t + (O.interval_ms / 1000.0) * ((double)(idx % 97) / 97.0);
    c->sent = 0;
    n_opened++;
    return 0;
}

static void slow_closed(slow_conn *c, double t)
{
    if (n_lives == cap_lives) {
        size_t cap = cap_lives ? cap_lives * 2 : 1024;
        double *p = realloc(lives, cap * sizeof *p);
        if (p) {
            lives = p;
            cap_lives = cap;
        }
    }
    if (n_lives < cap_lives)
        lives[n_lives++] = t - c->opened;
    close(c->fd);
    c->fd = -1;
    c->next = t + O.interval_ms / 1000.0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        int used = 1;
        if (!strcmp(a, "--port")) O.port = atoi(v);
        else if (!strcmp(a, "--host")) O.host = v;
        else if (!strcmp(a, "--slowloris")) O.slowloris = atoi(v);
        else if (!strcmp(a, "--uploaders")) O.uploaders = atoi(v);
        else if (!strcmp(a, "--interval-ms")) O.interval_ms = atoi(v);
        else if (!strcmp(a, "--src-addrs")) O.src_addrs = atoi(v);
        else if (!strcmp(a, "--seconds")) O.seconds = atof(v);
        else if (!strcmp(a, "--baseline")) O.baseline = atof(v);
        else if (!strcmp(a, "--normal")) O.normal = atoi(v);
        else if (!strcmp(a, "--rate")) O.rate = atof(v);
        else if (!strcmp(a, "--path")) O.path = v;
        else if (!strcmp(a, "--type")) O.type = v;
        else if (!strcmp(a, "--max-life")) O.max_life = atof(v);
        else if (!strcmp(a, "--min-life")) O.min_life = atof(v);
        else if (!strcmp(a, "--body")) {
            free(O.body);
            if (!(O.body = httpc_read_file(v, &O.body_len))) {
                fprintf(stderr, "slowclient: cannot read %s\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--reconnect")) {
            O.reconnect = 1;
            used = 0;
        } else {
            fprintf(stderr, "slowclient: unknown option %s\n", a);
            return 2;
        }
        i += used;
    }
    if (O.port <= 0 || O.normal < 0 || O.normal > 256 || O.interval_ms < 1 ||
        O.slowloris < 0 || O.uploaders < 0) {
        fprintf(stderr, "slowclient: needs --port, --normal 0..256, --interval-ms >= 1\n");
        return 2;
    }
    int n_slow = O.slowloris + O.uploaders;
    slow_conn *sc = calloc((size_t)(n_slow ? n_slow : 1), sizeof *sc);
    struct pollfd *pf = calloc((size_t)(n_slow ? n_slow : 1), sizeof *pf);
    pthread_t th[256];
    if (!sc || !pf)
        return 2;

    double t_start = now_s();
    for (int i = 0; i < O.normal; i++)
        pthread_create(&th[i], NULL, normal_main, (void *)(intptr_t)i);
    if (O.baseline > 0) {
        struct timespec ts = {(time_t)O.baseline,
                              (long)((O.baseline - (time_t)O.baseline) * 1e9)};
        nanosleep(&ts, NULL);
    }
    double t_loaded = now_s();
    atomic_store(&phase_no, 1);

    for (int i = 0; i < n_slow; i++) {
        sc[i].upload = i >= O.slowloris;
        if (slow_open(&sc[i], i, now_s()) != 0)
            sc[i].fd = -1;
    }
    double t_end = t_loaded + O.seconds;
    char sink[4096];
    for (;;) {
        double t = now_s();
        if (t >= t_end)
            break;
        /* Send what is due; a connection the server closed shows up as a failed send or
         * as readable (EOF, or an error answer followed by EOF). */
        double soonest = t_end;
        for (int i = 0; i < n_slow; i++) {
            slow_conn *c = &sc[i];
            if (c->fd < 0) {
                /* Reopened at the next tick, not in a tight loop. */
                if (O.reconnect && t >= c->next && slow_open(c, i, t) != 0)
                    c->next = t + O.interval_ms / 1000.0;
                if (c->fd < 0) {
                    if (O.reconnect && c->next < soonest)
                        soonest = c->next;
                    continue;
                }
            }
            if (t >= c->next) {
                char b = stream_byte(c, c->sent);
                ssize_t w = send(c->fd, &b, 1, MSG_NOSIGNAL);
                if (w == 1)
                    c->sent++;
                else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    slow_closed(c, t);
                    continue;
                }
                c->next += O.interval_ms / 1000.0;
            }
            if (c->next < soonest)
                soonest = c->next;
        }
        int np = 0;
        for (int i = 0; i < n_slow; i++) {
            pf[i].fd = sc[i].fd; /* negative fds are ignored by poll */
            pf[i].events = POLLIN;
            pf[i].revents = 0;
            np++;
        }
        int wait_ms = (int)((soonest - now_s()) * 1000) + 1;
        if (wait_ms < 0)
            wait_ms = 0;
        if (wait_ms > 100)
            wait_ms = 100;
        int r = poll(pf, (nfds_t)np, wait_ms);
        if (r <= 0)
            continue;
        t = now_s();
        for (int i = 0; i < n_slow; i++) {
            if (sc[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t g = recv(sc[i].fd, sink, sizeof sink, 0);
            if (g == 0 || (g < 0 && errno != EAGAIN && errno != EINTR))
                slow_closed(&sc[i], t);
            /* bytes (an error answer) before the close: keep reading */
        }
    }
    double t_stop = now_s();
    atomic_store(&phase_no, 2);
    for (int i = 0; i < O.normal; i++)
        pthread_join(th[i], NULL);

    int fails = 0;
    if (O.normal > 0) {
        if (O.baseline > 0 && report_normal(0, "unloaded", t_loaded - t_start))
            fails++;
        if (report_normal(1, "loaded", t_stop - t_loaded))
            fails++;
    }
    if (n_slow > 0) {
        int open_at_end = 0;
        double oldest = 0;
        for (int i = 0; i < n_slow; i++) {
            if (sc[i].fd < 0)
                continue;
            open_at_end++;
            if (t_stop - sc[i].opened > oldest)
                oldest = t_stop - sc[i].opened;
            close(sc[i].fd);
        }
        if (n_lives)
            qsort(lives, n_lives, sizeof *lives, cmp_double);
        printf("SLOW slowloris=%d uploaders=%d opened=%ld open_failed=%ld closed_by_server=%zu "
               "open_at_end=%d life_s_min=%.2f life_s_p50=%.2f life_s_max=%.2f "
               "oldest_open_s=%.2f\n", O.slowloris, O.uploaders, n_opened, n_open_fail,
               n_lives, open_at_end, n_lives ? lives[0] : 0, pct(lives, n_lives, 0.5),
               n_lives ? lives[n_lives - 1] : 0, oldest);
        if (O.max_life > 0 && ((n_lives && lives[n_lives - 1] > O.max_life) ||
                               oldest > O.max_life)) {
            fprintf(stderr, "slowclient: a slow connection lived longer than %.2f s\n",
                    O.max_life);
            fails++;
        }
        if (O.min_life > 0 && n_lives && lives[0] < O.min_life) {
            fprintf(stderr, "slowclient: a slow connection was closed after %.2f s, before "
                    "%.2f s\n", lives[0], O.min_life);
            fails++;
        }
    }
    fflush(stdout);
    for (int ph = 0; ph < 2; ph++)
        for (int i = 0; i < O.normal; i++)
            free(logs[ph][i].lat);
    free(lives);
    free(sc);
    free(pf);
    free(O.body);
    return fails ? 1 : 0;
}

/* control.c — the control side of daed: stop and reload requests, signals (SIGHUP
 * reloads, SIGTERM and SIGINT drain) through a self-pipe, and the reload itself. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sbuf.h"

static void ctl_wake(dae_server *s)
{
    pthread_cond_broadcast(&s->ctl_cv);
}

void dae_server_stop(dae_server *s)
{
    pthread_mutex_lock(&s->ctl_mu);
    s->want_stop = 1;
    ctl_wake(s);
    pthread_mutex_unlock(&s->ctl_mu);
}

void dae_server_request_reload(dae_req *r)
{
    dae_server *s = r->s;
    pthread_mutex_lock(&s->ctl_mu);
    if (s->want_stop || atomic_load(&s->draining)) {
        pthread_mutex_unlock(&s->ctl_mu);
        dae_req_error(r, ERR_SHUTTING_DOWN, "the server is shutting down");
        return;
    }
    r->phase = PH_WAITING;
    MHD_suspend_connection(r->conn);
    r->next_waiter = s->reload_waiters;
    s->reload_waiters = r;
    s->want_reload = 1;
    ctl_wake(s);
    pthread_mutex_unlock(&s->ctl_mu);
}

/* The write end of the self-pipe: the one global, because a signal handler has no
 * argument. The handler only writes the signal number; the control thread does the work. */
static volatile sig_atomic_t g_sig_fd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (g_sig_fd >= 0) {
        ssize_t w = write(g_sig_fd, &b, 1);
        (void)w;
    }
    errno = saved;
}

static void *signal_main(void *arg)
{
    dae_server *s = arg;
    for (;;) {
        unsigned char b;
        ssize_t n = read(s->sig_pipe[0], &b, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || b == 0) /* 0: dae_server_free asks us to quit */
            break;
        pthread_mutex_lock(&s->ctl_mu);
        if (b == SIGHUP) {
            s->want_reload = 1;
            dae_log(DAE_LOG_INFO, "SIGHUP: reloading models from %s", s->cfg.models);
        } else if (b == SIGTERM || b == SIGINT) {
            s->want_stop = 1;
            dae_log(DAE_LOG_INFO, "%s: draining", b == SIGTERM ? "SIGTERM" : "SIGINT");
        }
        ctl_wake(s);
        pthread_mutex_unlock(&s->ctl_mu);
    }
    return NULL;
}

static int install_signals(dae_server *s, dae_error *err)
{
    if (pipe2(s->sig_pipe, O_CLOEXEC) != 0)
        return dae_error_set(err, DAE_EIO, "signal pipe: %s", strerror(errno));
    fcntl(s->sig_pipe[1], F_SETFL, O_NONBLOCK);
    g_sig_fd = s->sig_pipe[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return DAE_OK;
}

int dae_server_reload_now(dae_server *s, dae_req *waiters)
{
    dae_reload_report rep;
    dae_error e = {0};
    int64_t t0 = dae_now_ns();
    int rc = dae_registry_reload(s->reg, &rep, &e);
    double secs = (double)(dae_now_ns() - t0) / 1e9;
    int failed = rc == DAE_OK ? rep.failed : 1;
    dae_prom_reload(s->prom, failed);
    if (rc != DAE_OK)
        dae_log(DAE_LOG_ERROR, "reload failed, models unchanged: %s", e.msg);
    else
        dae_log(DAE_LOG_INFO, "reload: %d loaded, %d unchanged, %d removed, %d failed; "
                "%d models serving (%.3f s)", rep.loaded, rep.kept, rep.removed, rep.failed,
                rep.serving, secs);
    while (waiters) {
        dae_req *r = waiters, *next = r->next_waiter;
        if (rc != DAE_OK) {
            dae_req_fail(r, &e);
        } else {
            sbuf b;
            dae_sb_init(&b);
            dae_sb_printf(&b, "{\"loaded\":%d,\"unchanged\":%d,\"removed\":%d,\"failed\":%d,"
                          "\"models\":%d,\"failures\":%s}\n", rep.loaded, rep.kept,
                          rep.removed, rep.failed, rep.serving,
                          rep.failures_json ? rep.failures_json : "[]");
            size_t len;
            char *body = dae_sb_take(&b, &len);
            if (body)
                dae_req_answer(r, 200, "application/json", body, len);
            else
                dae_req_error(r, ERR_OUT_OF_MEMORY, "no memory for the reload report");
        }
        dae_req_resume(r);
        waiters = next;
    }
    free(rep.failures_json);
    return failed;
}

int dae_server_reload(dae_server *s)
{
    return dae_server_reload_now(s, NULL);
}

int dae_server_signals_start(dae_server *s, dae_error *err)
{
    if (install_signals(s, err) != DAE_OK)
        return err->code;
    if (pthread_create(&s->sig_thread, NULL, signal_main, s) != 0)
        return dae_error_set(err, DAE_EIO, "cannot start the signal thread");
    s->sig_started = 1;
    return DAE_OK;
}

void dae_server_signals_stop(dae_server *s)
{
    if (s->sig_started) {
        unsigned char quit = 0;
        ssize_t w = write(s->sig_pipe[1], &quit, 1);
        (void)w;
        pthread_join(s->sig_thread, NULL);
        s->sig_started = 0;
    }
    if (s->sig_pipe[0] >= 0) {
        g_sig_fd = -1;
        signal(SIGHUP, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        close(s->sig_pipe[0]);
        close(s->sig_pipe[1]);
        s->sig_pipe[0] = s->sig_pipe[1] = -1;
    }
}

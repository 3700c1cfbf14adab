/* server.c — daed's life: start-up, the run loop, drain, shutdown. The request state
 * machine is request.c (answers reply.c, hand-off to the workers submit.c), signals and
 * reload control.c; handlers (v1.c, v2.c) and inference (infer.c) hang off these. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daed/core/blas.h"
#include "deadline.h"
#include "internal.h"

int64_t dae_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ start / run / stop */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    dae_log(DAE_LOG_WARN, "libmicrohttpd: %s", msg);
}

static int start_mhd(dae_server *s, dae_error *err)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->cfg.port);
    if (inet_pton(AF_INET, s->cfg.bind, &addr.sin_addr) != 1)
        return dae_error_set(err, DAE_EINVAL, "option --bind: \"%s\" is not an IPv4 address",
                             s->cfg.bind);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     (s->cfg.epoll ? MHD_USE_EPOLL : MHD_USE_POLL) |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* Without a deadline the notification is not registered at all (no per-connection
     * cost); the last option then ends the list early. */
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, dae_req_on_access, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->cfg.conn_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->cfg.conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)s->cfg.per_ip_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->cfg.conn_memory,
        MHD_OPTION_NOTIFY_COMPLETED, dae_req_on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, dae_req_unescape, NULL,
        s->deadline ? MHD_OPTION_NOTIFY_CONNECTION : MHD_OPTION_END, dae_req_on_connection, s,
        MHD_OPTION_END);
    if (!s->mhd)
        return dae_error_set(err, DAE_EIO, "cannot listen on %s:%d (port in use, or not "
                             "permitted?)", s->cfg.bind, s->cfg.port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->cfg.port;
    return DAE_OK;
}

static int write_port_file(const dae_server *s, dae_error *err)
{
    if (!s->cfg.port_file[0])
        return DAE_OK;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->cfg.port_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", s->port) < 0 || fclose(f) != 0 ||
        rename(tmp, s->cfg.port_file) != 0)
        return dae_error_set(err, DAE_EIO, "option --port-file %s: cannot write: %s",
                             s->cfg.port_file, strerror(errno));
    return DAE_OK;
}

dae_server *dae_server_create(const dae_serve_config *cfg, dae_error *err)
{
    dae_server *s = calloc(1, sizeof *s);
    if (!s) {
        dae_error_set(err, DAE_ENOMEM, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    pthread_mutex_init(&s->ctl_mu, NULL);
    pthread_cond_init(&s->ctl_cv, NULL);
    s->n_workers = cfg->workers;
    if (s->n_workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->n_workers = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
    }
    s->img_lim = dae_image_default_limits();
    s->img_lim.max_width = s->img_lim.max_height = cfg->max_side;
    s->img_lim.max_pixels = cfg->max_pixels;
    s->img_lim.max_bytes = cfg->max_body;

    s->sig_pipe[0] = s->sig_pipe[1] = -1;

    char desc[1024];
    dae_serve_config_describe(cfg, desc, sizeof desc);
    dae_log(DAE_LOG_INFO, "daed starting: %s", desc);
    dae_blas_set_threads(1);
    dae_log(DAE_LOG_INFO, "openblas: %s; threads %d (inference parallelism is %d workers)",
            dae_blas_config(), dae_blas_get_threads(), s->n_workers);

    s->prom = dae_prom_create(dae_route_names(), DAE_ROUTE_COUNT);
    s->wctx = calloc((size_t)s->n_workers, sizeof *s->wctx);
    s->admit = dae_admit_create(cfg->body_budget);
    s->pixels = dae_admit_create_whole(cfg->pixel_budget);
    if (!s->prom || !s->wctx || !s->admit || !s->pixels) {
        dae_error_set(err, DAE_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(s->reg = dae_registry_create(cfg->models, s->n_workers, err)))
        goto fail;
    dae_registry_set_map(s->reg, (dae_file_map)dae_file_map_from_name(cfg->model_mmap));
    dae_precision prec = !strcmp(cfg->precision, "fp32") ? DAE_PREC_FP32 : DAE_PREC_BF16;
    if (prec == DAE_PREC_BF16 && !dae_bf16_supported()) {
        dae_log(DAE_LOG_INFO, "precision: bf16 asked, this CPU has no AVX512-BF16: fp32");
        prec = DAE_PREC_FP32;
    }
    dae_registry_set_precision(s->reg, prec);
    dae_reload_report rep;
    if (dae_registry_reload(s->reg, &rep, err) != DAE_OK)
        goto fail;
    free(rep.failures_json);
    if (rep.serving == 0)
        dae_log(DAE_LOG_WARN, "no model loaded from %s: /readyz answers 503 until a reload "
                "finds one", cfg->models);
    for (int t = 0; t < DAE_SERVE_N_TASKS; t++) {
        if (!cfg->default_model[t][0])
            continue;
        dae_entry *e = dae_registry_get(s->reg, cfg->default_model[t]);
        if (!e)
            dae_log(DAE_LOG_WARN, "default model %s for task %s is not loaded",
                    cfg->default_model[t], dae_task_name(1u << t));
        dae_entry_unref(e);
    }
    dae_workpool_params wp = {s->n_workers, cfg->queue_size, cfg->max_batch,
                              cfg->batch_delay_us};
    if (!(s->pool = dae_workpool_create(&wp, dae_infer_run, dae_infer_cancel, s, err)))
        goto fail;
    if (dae_server_signals_start(s, err) != DAE_OK)
        goto fail;
    if (!(s->hangup = dae_hangup_create(1, err)))
        goto fail;
    dae_jobs_params jp = {cfg->max_jobs, cfg->job_ttl, cfg->job_memory};
    if (!(s->jobs = dae_jobs_create(&jp, err)))
        goto fail;
    if (cfg->request_timeout > 0 &&
        !(s->deadline = dae_deadline_create(cfg->request_timeout, 1, err)))
        goto fail;
    if (start_mhd(s, err) != DAE_OK)
        goto fail;
    if (write_port_file(s, err) != DAE_OK)
        goto fail;
    atomic_store(&s->ready, 1);
    dae_web_log_start(cfg);
    dae_log(DAE_LOG_INFO, "listening on %s:%d (%d workers, queue %d, max batch %d)",
            cfg->bind, s->port, s->n_workers, cfg->queue_size, cfg->max_batch);
    return s;
fail:
    dae_server_free(s);
    return NULL;
}

int dae_server_port(const dae_server *s)
{
    return s->port;
}

static int wait_idle(dae_server *s, int64_t deadline_ns)
{
    while (atomic_load(&s->inflight) > 0) {
        if (dae_now_ns() >= deadline_ns)
            return -1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Stop taking work, let what was accepted finish, stop MHD. 0 clean, 1 cut short. */
static int drain(dae_server *s)
{
    int rc = 0;
    /* No new connections first, then readiness: whoever sees 503 can no longer connect.
     * shutdown() stops the listening socket at once (connections are refused); the close
     * waits for MHD_stop_daemon, as libmicrohttpd's thread may still use the descriptor
     * (its epoll loop removes it from its set: closing it here raced with that). */
    MHD_socket lfd = MHD_INVALID_SOCKET;
    if (s->mhd) {
        lfd = MHD_quiesce_daemon(s->mhd);
        if (lfd != MHD_INVALID_SOCKET)
            shutdown(lfd, SHUT_RDWR);
    }
    atomic_store(&s->draining, 1);
    atomic_store(&s->ready, 0);
    /* Requests waiting for --body-budget read their bodies now (and are served or answered
     * 503 like the others): none may stay suspended past MHD_stop_daemon. */
    if (s->admit)
        dae_req_admitted_resume(dae_admit_open(s->admit));
    if (s->pixels)
        dae_req_pixels_granted(dae_admit_open(s->pixels));
    /* Admin reloads still waiting are answered (the loop is over). */
    pthread_mutex_lock(&s->ctl_mu);
    dae_req *w = s->reload_waiters;
    s->reload_waiters = NULL;
    pthread_mutex_unlock(&s->ctl_mu);
    for (; w;) {
        dae_req *next = w->next_waiter;
        dae_req_error(w, ERR_SHUTTING_DOWN, "the server is shutting down");
        dae_req_resume(w);
        w = next;
    }
    int n = atomic_load(&s->inflight);
    dae_log(DAE_LOG_INFO, "draining: %d requests in flight, up to %d s", n,
            s->cfg.shutdown_timeout);
    int64_t deadline = dae_now_ns() + (int64_t)s->cfg.shutdown_timeout * 1000000000;
    if (wait_idle(s, deadline) != 0) {
        dae_log(DAE_LOG_WARN, "shutdown timeout: %d requests still in flight are cut short",
                atomic_load(&s->inflight));
        rc = 1;
    }
    if (s->pool)
        dae_workpool_stop(s->pool, rc == 0);
    /* Answers of cancelled jobs get a moment to leave. */
    wait_idle(s, dae_now_ns() + 2000000000LL);
    if (s->mhd) {
        MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
    }
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    dae_log(DAE_LOG_INFO, "stopped%s", rc ? " (timeout)" : "");
    return rc;
}

int dae_server_run(dae_server *s)
{
    pthread_mutex_lock(&s->ctl_mu);
    while (!s->want_stop) {
        while (!s->want_stop && !s->want_reload)
            pthread_cond_wait(&s->ctl_cv, &s->ctl_mu);
        if (s->want_reload && !s->want_stop) {
            s->want_reload = 0;
            dae_req *waiters = s->reload_waiters;
            s->reload_waiters = NULL;
            pthread_mutex_unlock(&s->ctl_mu);
            dae_server_reload_now(s, waiters);
            pthread_mutex_lock(&s->ctl_mu);
        }
    }
    pthread_mutex_unlock(&s->ctl_mu);
    return drain(s);
}

void dae_server_free(dae_server *s)
{
    if (!s)
        return;
    if (s->mhd)
        drain(s);
    /* After MHD has stopped: every connection has had its CLOSED notification. */
    dae_deadline_free(s->deadline);
    dae_workpool_free(s->pool);
    dae_hangup_free(s->hangup); /* after the workers: they unwatch requests */
    dae_jobs_free(s->jobs);     /* after the workers: they finish jobs */
    dae_server_signals_stop(s);
    dae_registry_free(s->reg);
    dae_prom_free(s->prom);
    dae_admit_free(s->admit);
    dae_admit_free(s->pixels);
    for (int i = 0; s->wctx && i < s->n_workers; i++)
        free(s->wctx[i].stage);
    free(s->wctx);
    pthread_cond_destroy(&s->ctl_cv);
    pthread_mutex_destroy(&s->ctl_mu);
    free(s);
}

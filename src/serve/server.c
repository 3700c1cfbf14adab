/* server.c — daed's life: start-up, the libmicrohttpd request state machine, signals,
 * reload, drain. Handlers (v1.c, v2.c) and inference (infer.c) hang off this. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daed/blas.h"
#include "deadline.h"
#include "internal.h"
#include "pixels.h"
#include "sbuf.h"

int64_t dae_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ answers */

void req_answer(dae_req *r, int status, const char *type, char *body, size_t len)
{
    free(r->resp);
    r->status = status;
    r->resp_type = type;
    r->resp = body;
    r->resp_len = body ? len : 0;
}

static int is_v2(const dae_req *r)
{
    /* Without a route (404, 405, a refused request) the path decides: /v2 and below speak
     * the Open Inference Protocol's error shape, known route or not. */
    if (!r->route)
        return !strncmp(r->path, "/v2", 3) && (r->path[3] == '\0' || r->path[3] == '/' ||
                                               r->path[3] == '?');
    return r->route->id == DAE_ROUTE_V2_SERVER || r->route->id == DAE_ROUTE_V2_LIVE ||
           r->route->id == DAE_ROUTE_V2_READY || r->route->id == DAE_ROUTE_V2_MODEL ||
           r->route->id == DAE_ROUTE_V2_MODEL_READY || r->route->id == DAE_ROUTE_V2_INFER;
}

void req_error(dae_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = 0;
    char *body;
    if (is_v2(r)) {
        /* The Open Inference Protocol's error object: {"error": "<message>"}. */
        sbuf b;
        sb_init(&b);
        sb_str(&b, "{\"error\":");
        sb_json_str(&b, msg);
        sb_str(&b, "}\n");
        body = sb_take(&b, &len);
    } else {
        body = dae_http_error_json(code, msg, &len);
    }
    req_answer(r, status, "application/json", body, len);
    if (status == 503) {
        snprintf(r->extra_name, sizeof r->extra_name, "Retry-After");
        snprintf(r->extra_value, sizeof r->extra_value, "%d", r->s->cfg.retry_after);
    }
}

void req_fail(dae_req *r, const dae_error *e)
{
    int status = dae_http_status(e->code);
    req_error(r, status, dae_error_name(e->code), "%s", e->msg);
}

static enum MHD_Result queue_answer(dae_req *r)
{
    dae_server *s = r->s;
    struct MHD_Response *resp;
    if (r->resp && r->resp_len) {
        resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
        if (resp)
            r->resp = NULL; /* MHD frees it now */
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    if (r->resp_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->resp_type);
    if (r->status == 405) {
        char allow[64];
        dae_http_allow_text(r->allow, allow, sizeof allow);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"daed\"");
    if (r->extra_name[0])
        MHD_add_response_header(resp, r->extra_name, r->extra_value);
    /* the model that computed the answer (v1 and v2; the routing may have picked it) */
    if (r->job.key && r->entry && r->status >= 200 && r->status < 300)
        MHD_add_response_header(resp, "X-Model", r->entry->name);
    else if (r->answer_model[0])
        MHD_add_response_header(resp, "X-Model", r->answer_model);
    for (const char *const *h = r->headers; h && h[0]; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    if (atomic_load(&s->draining) || r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->answered = 1;
    r->phase = PH_DONE;
    return ok;
}

/* Watch r's socket for a hang-up while r is suspended (hangup.h). */
static void watch(dae_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        dae_hangup_add(r->s->hangup, &r->watch, ci->connect_fd, &r->prog.cancel);
}

int req_pixels_enter(dae_req *r)
{
    size_t est = pixels_estimate((const unsigned char *)r->body, r->len, r->is_json,
                                 tiles_8bit(r));
    return dae_admit_try(r->s->pixels, &r->pix, est);
}

static dae_req *req_of_pix(dae_admit_ticket *t)
{
    return (dae_req *)((char *)t - offsetof(dae_req, pix));
}

void req_pixels_granted(dae_admit_ticket *t)
{
    while (t) {
        dae_admit_ticket *next = t->next;
        dae_req *r = req_of_pix(t);
        if (r->conn) {
            dae_hangup_remove(r->s->hangup, &r->watch);
            MHD_resume_connection(r->conn);
        } else {
            jobs_run(r);
        }
        t = next;
    }
}

static void req_run(dae_req *r);

void req_submit(dae_req *r, int op)
{
    dae_server *s = r->s;
    r->op = op;
    r->job.key = r->entry;
    r->job.op = op;
    if (r->async) { /* Prefer: respond-async: answered 202 now, runs as a job */
        jobs_submit(r);
        return;
    }
    if (!req_pixels_enter(r)) { /* waits for --pixel-budget, watched for a hang-up */
        r->phase = PH_PIXELS;
        watch(r);
        MHD_suspend_connection(r->conn);
        if (dae_admit_wait(s->pixels, &r->pix)) {
            dae_hangup_remove(s->hangup, &r->watch);
            MHD_resume_connection(r->conn);
        }
        return;
    }
    req_run(r);
}

/* The rest of req_submit once --pixel-budget let r in: suspend, to the pool. */
static void req_run(dae_req *r)
{
    dae_server *s = r->s;
    dae_error e = {0};
    r->phase = PH_WAITING;
    /* Watched and suspended first: once submitted, a worker may resume the connection at
     * any moment. */
    watch(r);
    MHD_suspend_connection(r->conn);
    if (dae_workpool_submit(s->pool, &r->job, &e) != DAE_OK) {
        if (e.code == DAE_EBUSY)
            req_error(r, 503, "busy", "%s", e.msg);
        else
            req_error(r, 503, "shutting_down", "%s", e.msg);
        req_resume(r);
    }
}

void req_resume(dae_req *r)
{
    /* its planes are freed (the answer is built): --pixel-budget lets the next ones in */
    req_pixels_granted(dae_admit_leave(r->s->pixels, &r->pix));
    if (!r->conn) { /* a job's request: its answer goes to the job table */
        jobs_done(r);
        return;
    }
    /* Unwatched before the resume: libmicrohttpd may close the socket right after. */
    dae_hangup_remove(r->s->hangup, &r->watch);
    MHD_resume_connection(r->conn);
}

/* ------------------------------------------------------------------ request state machine */

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static const char *query(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* "1" -> 1, "0" or absent -> 0, anything else -1: the document says 0 or 1, and a
 * "true" accepted here would be refused by a stricter proxy or client generator. */
static int parse_flag(const char *v)
{
    if (!v || !strcmp(v, "0"))
        return 0;
    return !strcmp(v, "1") ? 1 : -1;
}

/* Reads the query parameters of the image routes; 0 or answered with 400. */
static int read_query(dae_req *r)
{
    struct MHD_Connection *c = r->conn;
    const char *v;
    if ((r->resize = parse_flag(query(c, "resize"))) < 0) {
        req_error(r, 400, "invalid_argument", "query resize=%.32s: expected 0 or 1",
                  query(c, "resize"));
        return -1;
    }
    if ((r->heatmap = parse_flag(query(c, "heatmap"))) < 0) {
        req_error(r, 400, "invalid_argument", "query heatmap=%.32s: expected 0 or 1",
                  query(c, "heatmap"));
        return -1;
    }
    if ((v = query(c, "threshold"))) {
        char *end;
        errno = 0;
        double t = strtod(v, &end);
        if (!*v || *end || errno || !(t >= 0) || t > 1e30) {
            req_error(r, 400, "invalid_argument",
                      "query threshold=%.32s: expected a number >= 0", v);
            return -1;
        }
        r->threshold = t;
        r->has_threshold = 1;
    }
    if ((v = query(c, "steps"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 2 || n > r->s->cfg.max_steps) {
            req_error(r, 400, "invalid_argument", "query steps=%.32s: expected 2 to %d", v,
                      r->s->cfg.max_steps);
            return -1;
        }
        r->steps = (int)n;
    }
    if ((v = query(c, "encoding"))) {
        if (!strcmp(v, "pixels"))
            r->encoding = 1;
        else if (!strcmp(v, "png"))
            r->encoding = 2;
        else {
            req_error(r, 400, "invalid_argument",
                      "query encoding=%.32s: expected pixels or png", v);
            return -1;
        }
    }
    if ((v = query(c, "sigma"))) {
        char *end;
        errno = 0;
        double sg = strtod(v, &end);
        if (!*v || *end || errno || !(sg >= 0 && sg <= 255)) {
            req_error(r, 400, "invalid_argument",
                      "query sigma=%.32s: expected a noise level from 0 to 255", v);
            return -1;
        }
        r->sigma = sg;
        r->has_sigma = 1;
    }
    const char *m = query(c, "model");
    if (m) {
        if (!*m || strlen(m) >= sizeof r->model_name) {
            req_error(r, 400, "invalid_argument", "query model: expected a model name of 1 to "
                      "%zu characters", sizeof r->model_name - 1);
            return -1;
        }
        snprintf(r->model_name, sizeof r->model_name, "%s", m);
    }
    return 0;
}

static void copy_printable(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++)
        dst[i] = (src[i] > 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = '\0';
}

/* Body bytes read and dropped after an error was decided, so that a client writing its
 * whole body before reading gets the answer instead of a broken pipe: max(2 x --max-body,
 * 16 MiB). Past it the connection is closed (and a Content-Length past it is answered at
 * once). */
static size_t discard_max(const dae_server *s)
{
    size_t floor = (size_t)16 << 20;
    return 2 * s->cfg.max_body > floor ? 2 * s->cfg.max_body : floor;
}

/* First call: framing, route, method, key, Content-Length. Leaves an error answer set,
 * or 0. The key is checked before 404 and 405, so routes cannot be probed without it. */
static void req_begin(dae_server *s, dae_req *r, const char *url, const char *method,
                      const char *version)
{
    r->t0_ns = dae_now_ns();
    r->method = dae_http_method(method);
    copy_printable(r->method_text, sizeof r->method_text, method);
    copy_printable(r->path, sizeof r->path, url);
    if (req_check(r, url, version) != 0)
        return;
    int st = dae_route_match(url, r->method, &r->route, r->param, sizeof r->param, &r->allow);
    if (s->cfg.api_key[0] && (st != 200 || !(r->route->flags & DAE_ROUTE_PUBLIC)) &&
        !dae_http_bearer_ok(header(r->conn, MHD_HTTP_HEADER_AUTHORIZATION), s->cfg.api_key)) {
        r->route = NULL;
        r->allow = 0;
        req_error(r, 401, "unauthorized",
                  "this route needs the header Authorization: Bearer <api key>");
        return;
    }
    if (st == 404) {
        /* A known route with an unknown {name} is decided by the handler (404 naming it). */
        req_error(r, 404, "not_found", "no route %.120s", r->path);
        return;
    }
    if (st == 405) {
        char allow[64];
        dae_http_allow_text(r->allow, allow, sizeof allow);
        req_error(r, 405, "method_not_allowed", "%s is not allowed on %.120s (allowed: %s)",
                  r->method_text, r->path, allow);
        return;
    }
    const char *cl = header(r->conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (!errno && end != cl && !*end && n > s->cfg.max_body) {
            req_error(r, 413, "too_large", "request body of %llu bytes exceeds the limit of %zu "
                      "bytes (--max-body)", n, s->cfg.max_body);
            /* Answered after the body is read and dropped (a client writing its whole body
             * first then reads the 413), at once past the bound or when the client waits
             * for a go-ahead (Expect: 100-continue, as curl sends for large bodies). */
            const char *ex = header(r->conn, MHD_HTTP_HEADER_EXPECT);
            r->linger = n <= discard_max(s) && !(ex && !strcasecmp(ex, "100-continue"));
            r->close = 1;
            return;
        }
        if (!errno && end != cl && !*end && (r->route->flags & DAE_ROUTE_BODY))
            r->declared = (size_t)n; /* the buffer is sized once the body is let in */
    }
    const char *ct = header(r->conn, MHD_HTTP_HEADER_CONTENT_TYPE);
    r->is_json = ct && !strncasecmp(ct, "application/json", 16);
    const char *acc = header(r->conn, MHD_HTTP_HEADER_ACCEPT);
    r->want_json = dae_http_accepts(acc, "application/json");
    r->want_png = dae_http_accepts(acc, "image/png");
    r->want_jpeg = dae_http_accepts(acc, "image/jpeg");
    if (r->route->flags & DAE_ROUTE_BODY) {
        read_query(r);
        r->async = jobs_prefer_async(header(r->conn, "Prefer"));
    }
}

static dae_deadline_conn *deadline_of(const dae_server *s, struct MHD_Connection *c);

static int append_body(dae_req *r, const char *data, size_t n)
{
    size_t max = r->s->cfg.max_body;
    if (n > max || r->len > max - n) {
        req_error(r, 413, "too_large", "request body exceeds the limit of %zu bytes "
                  "(--max-body)", max);
        return -1;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : r->declared ? r->declared + 1 : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *b = realloc(r->body, cap);
        if (!b) {
            req_error(r, 503, "out_of_memory", "no memory for a %zu-byte body", r->len + n);
            return -1;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    dae_admit_grow(r->s->admit, &r->ticket, r->len);
    return 0;
}

static dae_req *req_of_ticket(dae_admit_ticket *t)
{
    return (dae_req *)((char *)t - offsetof(dae_req, ticket));
}

/* Resume the requests --body-budget let in (their connections are suspended in PH_ADMIT). */
static void resume_admitted(dae_admit_ticket *t)
{
    while (t) {
        dae_admit_ticket *next = t->next;
        MHD_resume_connection(req_of_ticket(t)->conn);
        t = next;
    }
}

void req_body_free(dae_req *r)
{
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    resume_admitted(dae_admit_leave(r->s->admit, &r->ticket));
}

/* --body-budget on the first call of a request whose body is coming (Content-Length > 0:
 * a chunked body is not held back). 1: wait (the connection is suspended in PH_ADMIT,
 * its --request-timeout clock stopped until it is let in). */
static int admit_body(dae_req *r)
{
    dae_server *s = r->s;
    if (!r->declared || dae_admit_try(s->admit, &r->ticket, r->declared))
        return 0;
    /* Suspend before queueing: once queued, any thread may resume the connection. */
    r->phase = PH_ADMIT;
    dae_deadline_read_done(deadline_of(s, r->conn));
    MHD_suspend_connection(r->conn);
    if (dae_admit_wait(s->admit, &r->ticket))
        MHD_resume_connection(r->conn);
    return 1;
}

static void dispatch(dae_req *r)
{
    switch (r->route->id) {
    case DAE_ROUTE_V2_SERVER:
    case DAE_ROUTE_V2_LIVE:
    case DAE_ROUTE_V2_READY:
    case DAE_ROUTE_V2_MODEL:
    case DAE_ROUTE_V2_MODEL_READY:
    case DAE_ROUTE_V2_INFER:
        v2_handle(r);
        break;
    case DAE_ROUTE_WEB_INDEX:
    case DAE_ROUTE_WEB_DOCS:
    case DAE_ROUTE_WEB_FILE:
        web_handle(r);
        break;
    default:
        v1_handle(r);
        break;
    }
}

/* The connection's --request-timeout clock (NULL when the deadline is off). */
static dae_deadline_conn *deadline_of(const dae_server *s, struct MHD_Connection *c)
{
    if (!s->deadline)
        return NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* MHD_OPTION_NOTIFY_CONNECTION: a connection's clock starts at accept and its tracking ends
 * with the CLOSED notification, which libmicrohttpd sends before closing the socket. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    dae_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_ctx = ci ? dae_deadline_add(s->deadline, ci->connect_fd) : NULL;
    } else {
        dae_deadline_remove(s->deadline, *socket_ctx);
        *socket_ctx = NULL;
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload, size_t *upload_size, void **req_cls)
{
    dae_server *s = cls;
    dae_req *r = *req_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->s = s;
        r->conn = conn;
        *req_cls = r;
        atomic_fetch_add(&s->inflight, 1);
        req_begin(s, r, url, method, version);
        r->phase = PH_BODY;
        /* An early error with a body still coming is answered now (MHD then closes the
         * connection instead of reading the body), unless the body is to be read and
         * dropped first (r->linger); without a body it waits for the next call, as
         * answering on the first call would close a keep-alive connection. */
        if (r->status && !r->linger && (header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH) ||
                                        header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING))) {
            const char *cl = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (!cl || strcmp(cl, "0") != 0) {
                r->close = 1;
                return queue_answer(r);
            }
        }
        if (!r->status)
            admit_body(r);
        return MHD_YES;
    }
    if (r->phase == PH_ADMIT) {
        /* Let in by --body-budget. libmicrohttpd repeats the first call (no data) after a
         * resume; a body of declared length > 0 cannot be complete before its bytes came. */
        r->phase = PH_BODY;
        dae_deadline_restart(deadline_of(s, conn));
        if (!*upload_size)
            return MHD_YES;
    }
    if (r->phase == PH_PIXELS) {
        /* Let in by --pixel-budget (or the drain): to the pool now, unless the client left
         * while it waited. */
        if (atomic_load(&r->prog.cancel)) {
            req_pixels_granted(dae_admit_leave(s->pixels, &r->pix));
            req_error(r, 503, "cancelled", "the client went away");
            return queue_answer(r);
        }
        req_run(r);
        return MHD_YES;
    }
    if (r->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (!r->status && (r->route->flags & DAE_ROUTE_BODY) && append_body(r, upload, n) == 0)
            return MHD_YES;
        /* An error is decided (MHD cannot answer in the middle of a body): read and drop the
         * rest so the client gets its answer, but only up to a bound, then hang up. */
        r->close = 1;
        r->discarded += n;
        return r->discarded > discard_max(s) ? MHD_NO : MHD_YES;
    }
    if (r->phase == PH_WAITING) {
        /* Resumed by a worker (or by the reload controller) with the answer set. */
        if (!r->status)
            req_error(r, 500, "internal", "request resumed without an answer");
        return queue_answer(r);
    }
    /* The whole request has arrived: what follows (inference, the answer) is not timed. */
    dae_deadline_read_done(deadline_of(s, conn));
    if (!r->status)
        dispatch(r);
    if (r->phase == PH_WAITING || r->phase == PH_PIXELS)
        return MHD_YES;
    if (!r->status)
        req_error(r, 500, "internal", "no answer for %s", r->path);
    return queue_answer(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    dae_server *s = cls;
    dae_req *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    dae_deadline_conn *dl = deadline_of(s, conn);
    /* Keep-alive: the next request's clock starts now. */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        dae_deadline_restart(dl);
    int64_t us = (dae_now_ns() - r->t0_ns) / 1000;
    int status = r->answered ? r->status : 0;
    dae_prom_request(s->prom, r->route ? (int)r->route->id : DAE_ROUTE_COUNT, status,
                     (double)us / 1e6);
    if (s->cfg.access_log)
        dae_log(DAE_LOG_INFO, "access %s %s %d %zu %lldus model=%s batch=%d%s", r->method_text,
                r->path, status, r->resp_len, (long long)us,
                r->entry ? r->entry->name : "-", r->batch,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                : dae_deadline_expired(dl) ? " (closed: --request-timeout)"
                : " (connection lost)");
    dae_entry_unref(r->entry);
    req_body_free(r);
    req_pixels_granted(dae_admit_leave(s->pixels, &r->pix));
    free(r->resp);
    free(r);
    atomic_fetch_sub(&s->inflight, 1);
}

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

/* ------------------------------------------------------------------ control */

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

void server_request_reload(dae_req *r)
{
    dae_server *s = r->s;
    pthread_mutex_lock(&s->ctl_mu);
    if (s->want_stop || atomic_load(&s->draining)) {
        pthread_mutex_unlock(&s->ctl_mu);
        req_error(r, 503, "shutting_down", "the server is shutting down");
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

static int do_reload(dae_server *s, dae_req *waiters)
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
            req_fail(r, &e);
        } else {
            sbuf b;
            sb_init(&b);
            sb_printf(&b, "{\"loaded\":%d,\"unchanged\":%d,\"removed\":%d,\"failed\":%d,"
                      "\"models\":%d,\"failures\":%s}\n", rep.loaded, rep.kept, rep.removed,
                      rep.failed, rep.serving, rep.failures_json ? rep.failures_json : "[]");
            size_t len;
            char *body = sb_take(&b, &len);
            if (body)
                req_answer(r, 200, "application/json", body, len);
            else
                req_error(r, 503, "out_of_memory", "no memory for the reload report");
        }
        req_resume(r);
        waiters = next;
    }
    free(rep.failures_json);
    return failed;
}

int dae_server_reload(dae_server *s)
{
    return do_reload(s, NULL);
}

/* ------------------------------------------------------------------ start / run / stop */

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
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_access, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->cfg.conn_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->cfg.conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)s->cfg.per_ip_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->cfg.conn_memory,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, req_unescape, NULL,
        s->deadline ? MHD_OPTION_NOTIFY_CONNECTION : MHD_OPTION_END, on_connection, s,
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
    if (!(s->pool = dae_workpool_create(&wp, infer_run, infer_cancel, s, err)))
        goto fail;
    if (install_signals(s, err) != DAE_OK)
        goto fail;
    if (pthread_create(&s->sig_thread, NULL, signal_main, s) != 0) {
        dae_error_set(err, DAE_EIO, "cannot start the signal thread");
        goto fail;
    }
    s->sig_started = 1;
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
    web_log_start(cfg);
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
        resume_admitted(dae_admit_open(s->admit));
    if (s->pixels)
        req_pixels_granted(dae_admit_open(s->pixels));
    /* Admin reloads still waiting are answered (the loop is over). */
    pthread_mutex_lock(&s->ctl_mu);
    dae_req *w = s->reload_waiters;
    s->reload_waiters = NULL;
    pthread_mutex_unlock(&s->ctl_mu);
    for (; w;) {
        dae_req *next = w->next_waiter;
        req_error(w, 503, "shutting_down", "the server is shutting down");
        req_resume(w);
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
            do_reload(s, waiters);
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
    if (s->sig_started) {
        unsigned char quit = 0;
        ssize_t w = write(s->sig_pipe[1], &quit, 1);
        (void)w;
        pthread_join(s->sig_thread, NULL);
    }
    if (s->sig_pipe[0] >= 0) {
        g_sig_fd = -1;
        signal(SIGHUP, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        close(s->sig_pipe[0]);
        close(s->sig_pipe[1]);
    }
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

/* request.c — the libmicrohttpd request state machine: the first call (framing, route,
 * key, Content-Length), --body-budget, the body, dispatch to the handlers, the answer, and
 * the completion (metrics, access log). Lifecycle and control are in server.c and
 * control.c. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deadline.h"
#include "internal.h"

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
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
    if (dae_req_check(r, url, version) != 0)
        return;
    int st = dae_route_match(url, r->method, &r->route, r->param, sizeof r->param, &r->allow);
    if (s->cfg.api_key[0] && (st != 200 || !(r->route->flags & DAE_ROUTE_PUBLIC)) &&
        !dae_http_bearer_ok(header(r->conn, MHD_HTTP_HEADER_AUTHORIZATION), s->cfg.api_key)) {
        r->route = NULL;
        r->allow = 0;
        dae_req_error(r, ERR_UNAUTHORIZED,
                      "this route needs the header Authorization: Bearer <api key>");
        return;
    }
    if (st == 404) {
        /* A known route with an unknown {name} is decided by the handler (404 naming it). */
        dae_req_error(r, ERR_NOT_FOUND, "no route %.120s", r->path);
        return;
    }
    if (st == 405) {
        char allow[64];
        dae_http_allow_text(r->allow, allow, sizeof allow);
        dae_req_error(r, ERR_METHOD_NOT_ALLOWED, "%s is not allowed on %.120s (allowed: %s)",
                      r->method_text, r->path, allow);
        return;
    }
    const char *cl = header(r->conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (!errno && end != cl && !*end && n > s->cfg.max_body) {
            dae_req_error(r, ERR_TOO_LARGE, "request body of %llu bytes exceeds the limit of "
                          "%zu bytes (--max-body)", n, s->cfg.max_body);
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
        dae_req_read_query(r);
        r->async = dae_jobs_http_prefer_async(header(r->conn, "Prefer"));
    }
}

static dae_deadline_conn *deadline_of(const dae_server *s, struct MHD_Connection *c);

static int append_body(dae_req *r, const char *data, size_t n)
{
    size_t max = r->s->cfg.max_body;
    if (n > max || r->len > max - n) {
        dae_req_error(r, ERR_TOO_LARGE, "request body exceeds the limit of %zu bytes "
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
            dae_req_error(r, ERR_OUT_OF_MEMORY, "no memory for a %zu-byte body", r->len + n);
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
void dae_req_admitted_resume(dae_admit_ticket *t)
{
    while (t) {
        dae_admit_ticket *next = t->next;
        MHD_resume_connection(req_of_ticket(t)->conn);
        t = next;
    }
}

void dae_req_body_free(dae_req *r)
{
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    dae_req_admitted_resume(dae_admit_leave(r->s->admit, &r->ticket));
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
        dae_v2_handle(r);
        break;
    case DAE_ROUTE_WEB_INDEX:
    case DAE_ROUTE_WEB_DOCS:
    case DAE_ROUTE_WEB_FILE:
        dae_web_handle(r);
        break;
    default:
        dae_v1_handle(r);
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
void dae_req_on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
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

enum MHD_Result dae_req_on_access(void *cls, struct MHD_Connection *conn, const char *url,
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
                return dae_req_queue_answer(r);
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
            dae_req_pixels_granted(dae_admit_leave(s->pixels, &r->pix));
            dae_req_error(r, ERR_CANCELLED, "the client went away");
            return dae_req_queue_answer(r);
        }
        dae_req_run(r);
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
            dae_req_error(r, ERR_INTERNAL, "request resumed without an answer");
        return dae_req_queue_answer(r);
    }
    /* The whole request has arrived: what follows (inference, the answer) is not timed. */
    dae_deadline_read_done(deadline_of(s, conn));
    if (!r->status)
        dispatch(r);
    if (r->phase == PH_WAITING || r->phase == PH_PIXELS)
        return MHD_YES;
    if (!r->status)
        dae_req_error(r, ERR_INTERNAL, "no answer for %s", r->path);
    return dae_req_queue_answer(r);
}

void dae_req_on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
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
    dae_req_body_free(r);
    dae_req_pixels_granted(dae_admit_leave(s->pixels, &r->pix));
    free(r->resp);
    free(r);
    atomic_fetch_sub(&s->inflight, 1);
}

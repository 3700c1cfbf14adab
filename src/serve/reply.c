/* reply.c — a request's answer: set it (a body, or an error from the one table of
 * errcode.h) and queue it on the connection with its headers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sbuf.h"

void dae_req_answer(dae_req *r, int status, const char *type, char *body, size_t len)
{
    free(r->resp);
    r->status = status;
    r->resp_type = type;
    r->resp = body;
    r->resp_len = body ? len : 0;
}

void dae_req_answer_sb(dae_req *r, int status, const char *type, sbuf *b)
{
    size_t len;
    char *body = dae_sb_take(b, &len);
    if (!body)
        dae_req_error(r, ERR_OUT_OF_MEMORY, "no memory for the answer");
    else
        dae_req_answer(r, status, type, body, len);
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

void dae_req_error(dae_req *r, dae_errcode code, const char *fmt, ...)
{
    int status = dae_errcode_status(code);
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
        dae_sb_init(&b);
        dae_sb_str(&b, "{\"error\":");
        dae_sb_json_str(&b, msg);
        dae_sb_str(&b, "}\n");
        body = dae_sb_take(&b, &len);
    } else {
        body = dae_http_error_json(dae_errcode_name(code), msg, &len);
    }
    dae_req_answer(r, status, "application/json", body, len);
    if (status == 503) {
        snprintf(r->extra_name, sizeof r->extra_name, "Retry-After");
        snprintf(r->extra_value, sizeof r->extra_value, "%d", r->s->cfg.retry_after);
    }
}

void dae_req_fail(dae_req *r, const dae_error *e)
{
    dae_req_error(r, dae_errcode_of(e->code), "%s", e->msg);
}

enum MHD_Result dae_req_queue_answer(dae_req *r)
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

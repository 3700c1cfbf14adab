/* http.c — routes, statuses, JSON limit scan, Bearer check, Accept parsing, error bodies. */
#include "http.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errcode.h"
#include "sbuf.h"

#define GET_HEAD (DAE_HTTP_GET | DAE_HTTP_HEAD)

static const dae_route ROUTES[DAE_ROUTE_COUNT] = {
    {DAE_ROUTE_HEALTHZ, "/healthz", GET_HEAD, DAE_ROUTE_PUBLIC},
    {DAE_ROUTE_READYZ, "/readyz", GET_HEAD, DAE_ROUTE_PUBLIC},
    {DAE_ROUTE_METRICS, "/metrics", GET_HEAD, 0},
    {DAE_ROUTE_OPENAPI, "/openapi.yaml", GET_HEAD, 0},
    {DAE_ROUTE_V1_MODELS, "/v1/models", GET_HEAD, 0},
    {DAE_ROUTE_V1_MODEL, "/v1/models/{name}", GET_HEAD, 0},
    {DAE_ROUTE_V1_DENOISE, "/v1/denoise", DAE_HTTP_POST, DAE_ROUTE_BODY},
    {DAE_ROUTE_V1_INPAINT, "/v1/inpaint", DAE_HTTP_POST, DAE_ROUTE_BODY},
    {DAE_ROUTE_V1_SUPERRES, "/v1/superres", DAE_HTTP_POST, DAE_ROUTE_BODY},
    {DAE_ROUTE_V1_ENCODE, "/v1/encode", DAE_HTTP_POST, DAE_ROUTE_BODY},
    {DAE_ROUTE_V1_DECODE, "/v1/decode", DAE_HTTP_POST, DAE_ROUTE_BODY},
    {DAE_ROUTE_V1_INTERPOLATE, "/v1/interpolate", DAE_HTTP_POST, DAE_ROUTE_BODY},
    {DAE_ROUTE_V1_SCORE, "/v1/score", DAE_HTTP_POST, DAE_ROUTE_BODY},
    {DAE_ROUTE_V1_RELOAD, "/v1/admin/reload", DAE_HTTP_POST, DAE_ROUTE_BODY},
    {DAE_ROUTE_V1_JOB, "/v1/jobs/{name}", GET_HEAD | DAE_HTTP_DELETE, 0},
    {DAE_ROUTE_V1_JOB_RESULT, "/v1/jobs/{name}/result", GET_HEAD, 0},
    {DAE_ROUTE_V2_SERVER, "/v2", GET_HEAD, 0},
    {DAE_ROUTE_V2_LIVE, "/v2/health/live", GET_HEAD, DAE_ROUTE_PUBLIC},
    {DAE_ROUTE_V2_READY, "/v2/health/ready", GET_HEAD, DAE_ROUTE_PUBLIC},
    {DAE_ROUTE_V2_MODEL, "/v2/models/{name}", GET_HEAD, 0},
    {DAE_ROUTE_V2_MODEL_READY, "/v2/models/{name}/ready", GET_HEAD, 0},
    {DAE_ROUTE_V2_INFER, "/v2/models/{name}/infer", DAE_HTTP_POST, DAE_ROUTE_BODY},
    /* the browser page: public, as a browser cannot send the key with a page load; its
     * requests to the API carry the key the user types in */
    {DAE_ROUTE_WEB_INDEX, "/", GET_HEAD, DAE_ROUTE_PUBLIC},
    {DAE_ROUTE_WEB_DOCS, "/docs", GET_HEAD, DAE_ROUTE_PUBLIC},
    {DAE_ROUTE_WEB_FILE, "/web/{path}", GET_HEAD, DAE_ROUTE_PUBLIC},
};

static const char *const ROUTE_NAMES[DAE_ROUTE_COUNT] = {
    "/healthz",         "/readyz",          "/metrics",
    "/openapi.yaml",    "/v1/models",       "/v1/models/{name}",
    "/v1/denoise",      "/v1/inpaint",      "/v1/superres",
    "/v1/encode",       "/v1/decode",       "/v1/interpolate",
    "/v1/score",        "/v1/admin/reload", "/v1/jobs/{name}",
    "/v1/jobs/{name}/result",               "/v2",
    "/v2/health/live",  "/v2/health/ready", "/v2/models/{name}",
    "/v2/models/{name}/ready", "/v2/models/{name}/infer", "/",
    "/docs",            "/web/{path}",
};

const dae_route *dae_routes(void)
{
    return ROUTES;
}

const char *const *dae_route_names(void)
{
    return ROUTE_NAMES;
}

unsigned dae_http_method(const char *m)
{
    if (!strcmp(m, "GET")) return DAE_HTTP_GET;
    if (!strcmp(m, "HEAD")) return DAE_HTTP_HEAD;
    if (!strcmp(m, "POST")) return DAE_HTTP_POST;
    if (!strcmp(m, "PUT")) return DAE_HTTP_PUT;
    if (!strcmp(m, "DELETE")) return DAE_HTTP_DELETE;
    return DAE_HTTP_OTHER;
}

void dae_http_allow_text(unsigned methods, char *buf, size_t n)
{
    static const char *names[] = {"GET", "HEAD", "POST", "PUT", "DELETE"};
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < 5; i++) {
        if (!(methods & (1u << i)))
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
}

/* Does `path` match `pattern`? The {name} segment goes to param. */
static int match_one(const char *pattern, const char *path, char *param, size_t n)
{
    const char *p = pattern, *s = path;
    while (*p) {
        if (!strcmp(p, "{path}")) { /* the rest, at least one byte */
            size_t len = strlen(s);
            if (len == 0 || len >= n)
                return 0;
            memcpy(param, s, len + 1);
            return 1;
        }
        if (!strncmp(p, "{name}", 6)) {
            const char *seg = s;
            while (*s && *s != '/')
                s++;
            size_t len = (size_t)(s - seg);
            if (len == 0 || len >= n)
                return 0;
            memcpy(param, seg, len);
            param[len] = '\0';
            p += 6;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    return *s == '\0';
}

int dae_route_match(const char *path, unsigned method, const dae_route **route, char *param,
                    size_t n, unsigned *allowed)
{
    char tmp[256];
    unsigned allow = 0;
    *route = NULL;
    if (n)
        param[0] = '\0';
    for (int i = 0; i < DAE_ROUTE_COUNT; i++) {
        tmp[0] = '\0';
        if (!match_one(ROUTES[i].pattern, path, tmp, sizeof tmp < n ? sizeof tmp : n))
            continue;
        if (ROUTES[i].methods & method) {
            *route = &ROUTES[i];
            if (n) {
                size_t len = strlen(tmp);
                memcpy(param, tmp, len + 1);
            }
            return 200;
        }
        allow |= ROUTES[i].methods;
    }
    if (allowed)
        *allowed = allow;
    return allow ? 405 : 404;
}

int dae_http_status(int code)
{
    return code == DAE_OK ? 200 : dae_errcode_status(dae_errcode_of(code));
}

const char *dae_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Other";
    }
}

int dae_http_bearer_ok(const char *header, const char *key)
{
    if (!header || !key)
        return 0;
    if (strncasecmp(header, "Bearer ", 7) != 0)
        return 0;
    const unsigned char *a = (const unsigned char *)header + 7;
    const unsigned char *b = (const unsigned char *)key;
    size_t la = strlen((const char *)a), lb = strlen((const char *)b);
    /* Compare over the key's length whatever the header holds, then fold in the length. */
    unsigned diff = (unsigned)(la ^ lb);
    for (size_t i = 0; i < lb; i++)
        diff |= (unsigned)(b[i] ^ (i < la ? a[i] : 0));
    return lb > 0 && diff == 0;
}

int dae_http_accepts(const char *accept, const char *type)
{
    if (!accept)
        return 0;
    size_t tl = strlen(type);
    const char *p = accept;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ')
            p++;
        size_t len = (size_t)(p - start);
        int match = len == tl && strncasecmp(start, type, tl) == 0;
        /* parameters up to the next comma: look for q=0 */
        int q0 = 0;
        while (*p && *p != ',') {
            if (*p == ';') {
                const char *q = p + 1;
                while (*q == ' ')
                    q++;
                if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
                    double v = strtod(q + 2, NULL);
                    q0 = v <= 0;
                }
            }
            p++;
        }
        if (match)
            return !q0;
    }
    return 0;
}

char *dae_http_error_json(const char *code, const char *message, size_t *len)
{
    sbuf b;
    dae_sb_init(&b);
    dae_sb_str(&b, "{\"error\":{\"code\":");
    dae_sb_json_str(&b, code);
    dae_sb_str(&b, ",\"message\":");
    dae_sb_json_str(&b, message);
    dae_sb_str(&b, "}}\n");
    return dae_sb_take(&b, len);
}

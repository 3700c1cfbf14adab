/* http.h — the HTTP vocabulary of daed: routes, methods, statuses, request-body guards.
 *
 * These are the pure pieces of the service (no sockets, no threads), kept apart so the
 * unit tests can drive them directly: route matching with 404/405 + Allow, the mapping of
 * dae error codes to HTTP statuses, the Bearer-token check, Accept parsing and the JSON
 * error body. (JSON bodies are checked by daed/json.h before cJSON sees them.)
 */
#ifndef DAED_HTTP_H
#define DAED_HTTP_H

#include <stddef.h>

#include "daed/core/error.h"

/* Method bits. */
enum {
    DAE_HTTP_GET = 1u << 0,
    DAE_HTTP_HEAD = 1u << 1,
    DAE_HTTP_POST = 1u << 2,
    DAE_HTTP_PUT = 1u << 3,
    DAE_HTTP_DELETE = 1u << 4,
    DAE_HTTP_OTHER = 1u << 5 /* PATCH, OPTIONS, anything else */
};
unsigned dae_http_method(const char *method);
/* "GET, HEAD" for the bits in `methods`; buf of at least 48 bytes. */
void dae_http_allow_text(unsigned methods, char *buf, size_t n);

/* The routes. DAE_ROUTE_COUNT is also the metrics label "other". */
typedef enum {
    DAE_ROUTE_HEALTHZ,
    DAE_ROUTE_READYZ,
    DAE_ROUTE_METRICS,
    DAE_ROUTE_OPENAPI,
    DAE_ROUTE_V1_MODELS,
    DAE_ROUTE_V1_MODEL,
    DAE_ROUTE_V1_DENOISE,
    DAE_ROUTE_V1_INPAINT,
    DAE_ROUTE_V1_SUPERRES,
    DAE_ROUTE_V1_ENCODE,
    DAE_ROUTE_V1_DECODE,
    DAE_ROUTE_V1_INTERPOLATE,
    DAE_ROUTE_V1_SCORE,
    DAE_ROUTE_V1_RELOAD,
    DAE_ROUTE_V1_JOB,        /* an asynchronous request (jobs.h): status, delete */
    DAE_ROUTE_V1_JOB_RESULT, /* its answer */
    DAE_ROUTE_V2_SERVER,
    DAE_ROUTE_V2_LIVE,
    DAE_ROUTE_V2_READY,
    DAE_ROUTE_V2_MODEL,
    DAE_ROUTE_V2_MODEL_READY,
    DAE_ROUTE_V2_INFER,
    DAE_ROUTE_WEB_INDEX, /* the browser page (web.h) */
    DAE_ROUTE_WEB_DOCS,
    DAE_ROUTE_WEB_FILE,
    DAE_ROUTE_COUNT
} dae_route_id;

enum {
    DAE_ROUTE_PUBLIC = 1u << 0, /* no API key needed (health) */
    DAE_ROUTE_BODY = 1u << 1    /* takes a request body */
};

typedef struct dae_route {
    dae_route_id id;
    const char *pattern; /* "{name}" matches one non-empty path segment, "{path}" the
                          * non-empty rest of the path (web.h checks it) */
    unsigned methods;
    unsigned flags;
} dae_route;

/* The route table (DAE_ROUTE_COUNT entries, indexed by id) and its patterns as metric
 * labels. */
const dae_route *dae_routes(void);
const char *const *dae_route_names(void);

/* Match a path (no query string) and method bit. Returns 200 and *route on a match (the
 * "{name}" segment or the "{path}" rest copied into param, NUL-terminated, at most n-1
 * bytes, else 404), 404 when no pattern matches, 405 with *allowed set when the path
 * matches but the method does not. */
int dae_route_match(const char *path, unsigned method, const dae_route **route, char *param,
                    size_t n, unsigned *allowed);

/* HTTP status of a dae error code (DAE_EINVAL 400, DAE_ESHAPE 422, DAE_ELIMIT 413,
 * DAE_EFORMAT 400, DAE_ENOTFOUND 404, DAE_EBUSY/DAE_ENOMEM 503, others 500). */
int dae_http_status(int code);
const char *dae_http_reason(int status);

/* Authorization header against the key, in time independent of where they differ:
 * 1 when header is exactly "Bearer <key>" (scheme case-insensitive), else 0. */
int dae_http_bearer_ok(const char *header, const char *key);

/* Does an Accept header ask for this media type ("application/json")? Matches the type in
 * a comma-separated list, ignoring parameters; q=0 excludes it. NULL header: 0. */
int dae_http_accepts(const char *accept, const char *type);

/* {"error":{"code":code,"message":message}} as a malloc'd string (*len set); NULL on OOM. */
char *dae_http_error_json(const char *code, const char *message, size_t *len);

#endif

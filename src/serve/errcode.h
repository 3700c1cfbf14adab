/* errcode.h — the error answers of daed, one table: each code has the "code" string of
 * the JSON error body and its HTTP status, so a handler names what went wrong and the
 * status follows ({"error":{"code","message"}}, openapi.yaml lists them per route).
 */
#ifndef DAED_SERVE_ERRCODE_H
#define DAED_SERVE_ERRCODE_H

typedef enum {
    ERR_INVALID_ARGUMENT,     /* 400 invalid_argument: a bad parameter or body */
    ERR_MALFORMED,            /* 400 malformed: an image or JSON that does not parse */
    ERR_UNAUTHORIZED,         /* 401 unauthorized: no or a wrong API key */
    ERR_NOT_FOUND,            /* 404 not_found: no such route, model, job or file */
    ERR_METHOD_NOT_ALLOWED,   /* 405 method_not_allowed */
    ERR_JOB_NOT_READY,        /* 409 not_ready: a job's result before the job is over */
    ERR_TOO_LARGE,            /* 413 too_large: over a configured cap */
    ERR_SHAPE_MISMATCH,       /* 422 shape_mismatch: data the model cannot take */
    ERR_INTERNAL,             /* 500 internal: a bug */
    ERR_IO,                   /* 500 io_error */
    ERR_NOT_IMPLEMENTED,      /* 501 not_implemented */
    ERR_OUT_OF_MEMORY,        /* 503 out_of_memory */
    ERR_BUSY,                 /* 503 busy: the queue is full */
    ERR_SHUTTING_DOWN,        /* 503 shutting_down */
    ERR_CANCELLED,            /* 503 cancelled: the client went away, or the job deleted */
    ERR_NOT_READY,            /* 503 not_ready: no model loaded, or draining */
    ERR_INSUFFICIENT_STORAGE, /* 507 insufficient_storage: a job's answer over --job-memory */
    ERR_COUNT
} dae_errcode;

/* The HTTP status of code c. */
int dae_errcode_status(dae_errcode c);
/* The "code" of the JSON error body ("not_found"). */
const char *dae_errcode_name(dae_errcode c);
/* The answer of a dae error code (error.h): DAE_EINVAL invalid_argument, DAE_ESHAPE
 * shape_mismatch, ...; the name is dae_error_name's. Unknown codes: ERR_INTERNAL. */
dae_errcode dae_errcode_of(int dae_code);

#endif

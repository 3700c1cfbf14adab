/* jobs.h — asynchronous requests: the job table behind `Prefer: respond-async`.
 *
 * A long request (a 12-megapixel photo takes about a minute on 2 cores) can be sent with
 * the header `Prefer: respond-async`: daed answers 202 at once with `Location:
 * /v1/jobs/{id}`, runs the request like any other, and keeps its answer here until the
 * client fetches it (GET /v1/jobs/{id}/result: the status, headers and body the
 * synchronous request would have had), deletes it, or it expires. The HTTP side is
 * jobs_http.c; this table knows nothing of HTTP connections.
 *
 * Lifecycle of a record:  add (queued) -> a worker takes it (running, tiles counted)
 *   -> finish (done: a 2xx answer; failed: any other; cancelled: deleted while it ran)
 *   -> expires ttl seconds after it finished, or delete.
 * A record deleted before it finished is hidden at once (404), its request's cancel flag
 * is set (the rest of its tiles are skipped, tiles.c) and it leaves the table when its
 * worker calls finish.
 *
 * Bounds, checked when a job is added (DAE_EBUSY, the HTTP side answers 503):
 *   max_jobs  records held at once (queued, running, finished and not yet expired);
 *   memory    bytes held at once: the request bodies of unfinished jobs plus the answers
 *             of finished ones. An answer that does not fit when it is ready is replaced by
 *             a 507 error answer naming --job-memory (the job is then failed); that short
 *             answer (~250 bytes) is counted too and may pass the bound by its size, so
 *             the most held is memory + max_jobs x 250 bytes.
 *
 * Ids are 128 random bits (getrandom) as 32 lowercase hex digits: knowing one id tells
 * nothing of another. Thread-safe: one lock; the time is passed in (dae_now_ns() clock),
 * so tests can move it.
 */
#ifndef DAED_SERVE_JOBS_H
#define DAED_SERVE_JOBS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "daed/core/error.h"
#include "sbuf.h"

#define DAE_JOB_ID_LEN 32

typedef struct dae_jobs dae_jobs;
typedef struct dae_job_rec dae_job_rec;

typedef enum {
    DAE_JOB_QUEUED,
    DAE_JOB_RUNNING,
    DAE_JOB_DONE,
    DAE_JOB_FAILED,
    DAE_JOB_CANCELLED
} dae_job_state;

/* Shared between a running request and its record: the worker writes, the table reads.
 * Embedded in the request; zero it before use. */
typedef struct dae_job_progress {
    atomic_int cancel;    /* 1: stop (client gone, job deleted): skip the remaining work */
    atomic_int started;   /* 1: a worker took the request */
    atomic_long done;     /* tiles finished */
    atomic_long total;    /* tiles planned (0: the request does not run in tiles) */
} dae_job_progress;

/* A finished request's answer, as the synchronous request would have had it. */
typedef struct dae_job_answer {
    int status;
    const char *type;                  /* static string, or NULL */
    char *body;                        /* malloc'd */
    size_t len;
    char extra_name[32], extra_value[64]; /* one extra header ("" if none) */
    const char *const *headers;        /* static name, value pairs, NULL-ended, or NULL */
    char model[64];                    /* X-Model ("" if none) */
} dae_job_answer;

typedef struct dae_jobs_params {
    int max_jobs;       /* records held at once, >= 1 */
    int ttl_s;          /* seconds a finished job is kept, >= 1 */
    size_t memory;      /* bytes of bodies and answers held at once, >= 1 */
} dae_jobs_params;

typedef struct dae_jobs_stats {
    int held;                   /* records visible or still running */
    int queued, running;        /* of them, not finished */
    size_t bytes;               /* memory counted now */
    uint64_t created, refused;  /* jobs added, jobs refused (table or memory full) */
    uint64_t done, failed, cancelled, expired;
} dae_jobs_stats;

/* NULL with a message when out of memory. */
dae_jobs *dae_jobs_create(const dae_jobs_params *p, dae_error *err);

/* Frees every record and answer. No job may still be running (call after the workers
 * stopped). NULL is a no-op. */
void dae_jobs_free(dae_jobs *J);

/* A new queued job for `route` (e.g. "/v1/denoise") and `model`, holding body_bytes of
 * request body until it finishes; prog is the request's progress (it must live until
 * dae_jobs_finish). Writes the id (DAE_JOB_ID_LEN hex digits and a NUL) to id. Returns the
 * record, owned by the table (the caller keeps it only to pass to dae_jobs_finish or
 * dae_jobs_abandon), or NULL with DAE_EBUSY (table or memory full: the message names the
 * option) or DAE_EIO (no random bytes). */
dae_job_rec *dae_jobs_add(dae_jobs *J, const char *route, const char *model,
                          size_t body_bytes, dae_job_progress *prog, int64_t now_ns,
                          char id[DAE_JOB_ID_LEN + 1], dae_error *err);

/* The job never ran (the pool refused it) and its id was never given out: forget it. */
void dae_jobs_abandon(dae_jobs *J, dae_job_rec *rec);

/* The worker is done with the job: its answer moves into the table (a->body is taken,
 * set to NULL), its body bytes are released, prog is no longer read. A deleted job's
 * answer is dropped and its record freed. */
void dae_jobs_finish(dae_jobs *J, dae_job_rec *rec, dae_job_answer *a, int64_t now_ns);

/* The job's status as JSON into b: {"id","status","route","model","tiles_done",
 * "tiles_total","age_s"} plus, once finished, "http_status", "result" (its URL) and
 * "expires_in_s". DAE_ENOTFOUND for an unknown, deleted or expired id. */
int dae_jobs_status(dae_jobs *J, const char *id, int64_t now_ns, sbuf *b);

/* A copy of a finished job's answer (a->body malloc'd, the caller frees it); *state gets
 * the job's state. DAE_ENOTFOUND (unknown id), DAE_EBUSY (not finished yet: *state says
 * queued or running), DAE_ENOMEM. */
int dae_jobs_result(dae_jobs *J, const char *id, int64_t now_ns, dae_job_answer *a,
                    dae_job_state *state);

/* Delete a job: an unfinished one is cancelled (its status JSON, "cancelled", goes to b
 * when b is not NULL), a finished one freed (its last status to b). DAE_ENOTFOUND. */
int dae_jobs_delete(dae_jobs *J, const char *id, int64_t now_ns, sbuf *b);

/* Drop finished jobs older than their ttl; returns how many. Called by the others. */
int dae_jobs_expire(dae_jobs *J, int64_t now_ns);

dae_jobs_stats dae_jobs_get_stats(dae_jobs *J);

/* Their names in the API: "queued", "running", "done", "failed", "cancelled". */
const char *dae_job_state_name(dae_job_state s);

#endif

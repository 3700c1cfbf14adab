/* jobs.c — the table of asynchronous requests (see jobs.h). */
#include "jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http.h"
#include "errcode.h"

struct dae_job_rec {
    char id[DAE_JOB_ID_LEN + 1];
    char route[32];
    char model[64];
    dae_job_state state;        /* QUEUED until finished (RUNNING is read from prog) */
    int finished;
    int deleted;                /* hidden; freed when its worker finishes */
    dae_job_progress *prog;     /* the request's, until finish */
    long tiles_done, tiles_total; /* at finish */
    size_t bytes;               /* counted in J->bytes: body until finish, then answer */
    int64_t created_ns, finished_ns;
    dae_job_answer ans;
    dae_job_rec *prev, *next;
};

struct dae_jobs {
    dae_jobs_params p;
    pthread_mutex_t mu;
    dae_job_rec *head;
    int held;
    size_t bytes;
    uint64_t created, refused, done, failed, cancelled, expired;
};

const char *dae_job_state_name(dae_job_state s)
{
    static const char *const names[] = {"queued", "running", "done", "failed", "cancelled"};
    return (unsigned)s < 5 ? names[s] : "unknown";
}

dae_jobs *dae_jobs_create(const dae_jobs_params *p, dae_error *err)
{
    dae_jobs *J = calloc(1, sizeof *J);
    if (!J) {
        dae_error_set(err, DAE_ENOMEM, "out of memory for the job table");
        return NULL;
    }
    J->p = *p;
    pthread_mutex_init(&J->mu, NULL);
    return J;
}

static void rec_free(dae_jobs *J, dae_job_rec *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        J->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    J->held--;
    J->bytes -= r->bytes;
    free(r->ans.body);
    free(r);
}

void dae_jobs_free(dae_jobs *J)
{
    if (!J)
        return;
    while (J->head)
        rec_free(J, J->head);
    pthread_mutex_destroy(&J->mu);
    free(J);
}

/* A finished record past its ttl (never one still running). */
static int expired(const dae_jobs *J, const dae_job_rec *r, int64_t now_ns)
{
    return r->finished && now_ns - r->finished_ns > (int64_t)J->p.ttl_s * 1000000000;
}

static int expire_locked(dae_jobs *J, int64_t now_ns)
{
    int n = 0;
    for (dae_job_rec *r = J->head, *next; r; r = next) {
        next = r->next;
        if (expired(J, r, now_ns)) {
            rec_free(J, r);
            J->expired++;
            n++;
        }
    }
    return n;
}

int dae_jobs_expire(dae_jobs *J, int64_t now_ns)
{
    pthread_mutex_lock(&J->mu);
    int n = expire_locked(J, now_ns);
    pthread_mutex_unlock(&J->mu);
    return n;
}

/* Equal ids, in time independent of where they differ. */
static int id_eq(const char *a, const char *b)
{
    size_t la = strlen(a);
    if (la != DAE_JOB_ID_LEN)
        return 0;
    unsigned char d = 0;
    for (size_t i = 0; i < DAE_JOB_ID_LEN; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* The visible record with this id (not deleted, not expired), under the lock. */
static dae_job_rec *find(dae_jobs *J, const char *id, int64_t now_ns)
{
    expire_locked(J, now_ns);
    for (dae_job_rec *r = J->head; r; r = r->next)
        if (!r->deleted && id_eq(id, r->id))
            return r;
    return NULL;
}

static int new_id(char id[DAE_JOB_ID_LEN + 1], dae_error *err)
{
    unsigned char b[DAE_JOB_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t k = getrandom(b + got, sizeof b - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return dae_error_set(err, DAE_EIO, "no random bytes for a job id: %s",
                                 strerror(errno));
        got += (size_t)k;
    }
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(id + 2 * i, 3, "%02x", b[i]);
    return DAE_OK;
}

dae_job_rec *dae_jobs_add(dae_jobs *J, const char *route, const char *model,
                          size_t body_bytes, dae_job_progress *prog, int64_t now_ns,
                          char id[DAE_JOB_ID_LEN + 1], dae_error *err)
{
    dae_job_rec *r = calloc(1, sizeof *r);
    if (!r) {
        dae_error_set(err, DAE_ENOMEM, "out of memory for a job");
        return NULL;
    }
    if (new_id(r->id, err) != DAE_OK) {
        free(r);
        return NULL;
    }
    snprintf(r->route, sizeof r->route, "%s", route ? route : "");
    snprintf(r->model, sizeof r->model, "%s", model ? model : "");
    r->prog = prog;
    r->created_ns = now_ns;
    r->bytes = body_bytes;
    pthread_mutex_lock(&J->mu);
    expire_locked(J, now_ns);
    if (J->held >= J->p.max_jobs || body_bytes > J->p.memory ||
        J->bytes > J->p.memory - body_bytes) {
        int full = J->held >= J->p.max_jobs;
        J->refused++;
        if (full)
            dae_error_set(err, DAE_EBUSY, "%d jobs are held, the most allowed (--max-jobs): "
                          "fetch or delete finished ones, or retry later", J->held);
        else
            dae_error_set(err, DAE_EBUSY, "a body of %zu bytes does not fit in the job memory "
                          "(%zu of %zu bytes held, --job-memory): retry later",
                          body_bytes, J->bytes, J->p.memory);
        pthread_mutex_unlock(&J->mu);
        free(r);
        return NULL;
    }
    r->next = J->head;
    if (J->head)
        J->head->prev = r;
    J->head = r;
    J->held++;
    J->bytes += body_bytes;
    J->created++;
    memcpy(id, r->id, DAE_JOB_ID_LEN + 1);
    pthread_mutex_unlock(&J->mu);
    return r;
}

void dae_jobs_abandon(dae_jobs *J, dae_job_rec *rec)
{
    pthread_mutex_lock(&J->mu);
    J->created--;
    rec_free(J, rec);
    pthread_mutex_unlock(&J->mu);
}

/* Replace a's answer by a 507 saying the job memory is full. */
static void answer_too_big(dae_job_answer *a, size_t held, size_t memory)
{
    char msg[256];
    snprintf(msg, sizeof msg, "the answer of %zu bytes did not fit in the job memory (%zu of "
             "%zu bytes held, --job-memory): fetch or delete finished jobs, or send the "
             "request without Prefer: respond-async", a->len, held, memory);
    free(a->body);
    memset(a, 0, sizeof *a);
    a->status = dae_errcode_status(ERR_INSUFFICIENT_STORAGE);
    a->type = "application/json";
    a->body = dae_http_error_json(dae_errcode_name(ERR_INSUFFICIENT_STORAGE), msg, &a->len);
}

void dae_jobs_finish(dae_jobs *J, dae_job_rec *rec, dae_job_answer *a, int64_t now_ns)
{
    pthread_mutex_lock(&J->mu);
    J->bytes -= rec->bytes;
    rec->bytes = 0;
    rec->tiles_done = atomic_load(&rec->prog->done);
    rec->tiles_total = atomic_load(&rec->prog->total);
    rec->prog = NULL;
    rec->finished = 1;
    rec->finished_ns = now_ns;
    if (rec->deleted) {
        J->cancelled++;
        rec_free(J, rec);
        pthread_mutex_unlock(&J->mu);
        free(a->body);
        a->body = NULL;
        return;
    }
    if (a->len > J->p.memory || J->bytes > J->p.memory - a->len)
        answer_too_big(a, J->bytes, J->p.memory);
    rec->ans = *a;
    a->body = NULL;
    rec->bytes = rec->ans.len;
    J->bytes += rec->bytes;
    rec->state = rec->ans.status >= 200 && rec->ans.status < 300 ? DAE_JOB_DONE
                                                                 : DAE_JOB_FAILED;
    if (rec->state == DAE_JOB_DONE)
        J->done++;
    else
        J->failed++;
    pthread_mutex_unlock(&J->mu);
}

static dae_job_state state_of(const dae_job_rec *r)
{
    if (r->finished)
        return r->state;
    return atomic_load(&r->prog->started) ? DAE_JOB_RUNNING : DAE_JOB_QUEUED;
}

/* Tiles as reported: a request that does not run in tiles counts as one. */
static void tiles_of(const dae_job_rec *r, long *done, long *total)
{
    long d = r->finished ? r->tiles_done : atomic_load(&r->prog->done);
    long t = r->finished ? r->tiles_total : atomic_load(&r->prog->total);
    if (t <= 0) {
        t = 1;
        d = r->finished && r->state != DAE_JOB_CANCELLED ? 1 : 0;
    }
    *done = d;
    *total = t;
}

static void status_json(const dae_jobs *J, const dae_job_rec *r, dae_job_state st,
                        int64_t now_ns, sbuf *b)
{
    long d, t;
    tiles_of(r, &d, &t);
    dae_sb_printf(b, "{\"id\":\"%s\",\"status\":\"%s\",\"route\":", r->id,
                  dae_job_state_name(st));
    dae_sb_json_str(b, r->route);
    dae_sb_str(b, ",\"model\":");
    dae_sb_json_str(b, r->model);
    dae_sb_printf(b, ",\"tiles_done\":%ld,\"tiles_total\":%ld,\"age_s\":%.3f", d, t,
                  (double)(now_ns - r->created_ns) / 1e9);
    if (r->finished && st != DAE_JOB_CANCELLED) {
        double left = (double)J->p.ttl_s - (double)(now_ns - r->finished_ns) / 1e9;
        dae_sb_printf(b, ",\"http_status\":%d,\"result\":\"/v1/jobs/%s/result\","
                      "\"expires_in_s\":%.3f", r->ans.status, r->id, left > 0 ? left : 0);
    }
    dae_sb_str(b, "}\n");
}

int dae_jobs_status(dae_jobs *J, const char *id, int64_t now_ns, sbuf *b)
{
    pthread_mutex_lock(&J->mu);
    dae_job_rec *r = find(J, id, now_ns);
    if (r)
        status_json(J, r, state_of(r), now_ns, b);
    pthread_mutex_unlock(&J->mu);
    return r ? DAE_OK : DAE_ENOTFOUND;
}

int dae_jobs_result(dae_jobs *J, const char *id, int64_t now_ns, dae_job_answer *a,
                    dae_job_state *state)
{
    int rc = DAE_OK;
    pthread_mutex_lock(&J->mu);
    dae_job_rec *r = find(J, id, now_ns);
    if (!r) {
        rc = DAE_ENOTFOUND;
    } else if ((*state = state_of(r)) == DAE_JOB_QUEUED || *state == DAE_JOB_RUNNING ||
               *state == DAE_JOB_CANCELLED) {
        rc = DAE_EBUSY;
    } else {
        *a = r->ans;
        a->body = malloc(r->ans.len ? r->ans.len : 1);
        if (!a->body)
            rc = DAE_ENOMEM;
        else if (r->ans.len)
            memcpy(a->body, r->ans.body, r->ans.len);
    }
    pthread_mutex_unlock(&J->mu);
    return rc;
}

int dae_jobs_delete(dae_jobs *J, const char *id, int64_t now_ns, sbuf *b)
{
    pthread_mutex_lock(&J->mu);
    dae_job_rec *r = find(J, id, now_ns);
    if (!r) {
        pthread_mutex_unlock(&J->mu);
        return DAE_ENOTFOUND;
    }
    if (r->finished) {
        if (b)
            status_json(J, r, r->state, now_ns, b);
        rec_free(J, r);
    } else {
        /* the worker still holds the request: stop it, hide the record until finish */
        atomic_store(&r->prog->cancel, 1);
        r->deleted = 1;
        if (b)
            status_json(J, r, DAE_JOB_CANCELLED, now_ns, b);
    }
    pthread_mutex_unlock(&J->mu);
    return DAE_OK;
}

dae_jobs_stats dae_jobs_get_stats(dae_jobs *J)
{
    dae_jobs_stats st = {0};
    pthread_mutex_lock(&J->mu);
    st.held = J->held;
    for (const dae_job_rec *r = J->head; r; r = r->next) {
        if (r->finished)
            continue;
        if (atomic_load(&r->prog->started))
            st.running++;
        else
            st.queued++;
    }
    st.bytes = J->bytes;
    st.created = J->created;
    st.refused = J->refused;
    st.done = J->done;
    st.failed = J->failed;
    st.cancelled = J->cancelled;
    st.expired = J->expired;
    pthread_mutex_unlock(&J->mu);
    return st;
}

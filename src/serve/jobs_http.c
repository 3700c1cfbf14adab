/* jobs_http.c — the HTTP side of asynchronous requests: `Prefer: respond-async` on a
 * request the workers run, and the /v1/jobs/{id} routes. The table is jobs.h.
 *
 * A job runs as a copy of its request without a connection (conn NULL): the workers treat
 * it like any request (parse, tiles, answer), and dae_req_resume hands its answer to
 * dae_jobs_http_done instead of libmicrohttpd. Its body leaves --body-budget when the copy
 * is made and is counted in --job-memory instead, until the job finishes. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

int dae_jobs_http_prefer_async(const char *prefer)
{
    /* Prefer: respond-async, wait=10 -- tokens split by commas, parameters by ';' */
    for (const char *p = prefer; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",; \t=");
        if (n == 13 && !strncasecmp(p, "respond-async", 13))
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

static const char *const APPLIED[] = {"Preference-Applied", "respond-async", NULL};

/* Free a job's request copy (any thread that owns it). */
static void job_req_free(dae_req *j)
{
    dae_entry_unref(j->entry);
    free(j->body);
    free(j->resp);
    free(j);
}

/* The copy of r that runs as the job: r's body moves into it. NULL when out of memory. */
static dae_req *job_req_copy(dae_req *r)
{
    dae_req *j = malloc(sizeof *j);
    if (!j)
        return NULL;
    memcpy(j, r, sizeof *j);
    j->conn = NULL;
    j->async = 0;
    memset(&j->ticket, 0, sizeof j->ticket);
    memset(&j->pix, 0, sizeof j->pix);
    memset(&j->watch, 0, sizeof j->watch);
    memset(&j->prog, 0, sizeof j->prog);
    j->resp = NULL;
    j->resp_len = 0;
    j->status = 0;
    j->next_waiter = NULL;
    dae_entry_ref(j->entry);
    /* the body is the job's now: its bytes leave --body-budget (r lets others in) */
    r->body = NULL;
    r->len = r->cap = 0;
    dae_req_body_free(r);
    return j;
}

void dae_jobs_http_submit(dae_req *r)
{
    dae_server *s = r->s;
    dae_error e = {0};
    dae_req *j = job_req_copy(r);
    if (!j) {
        dae_req_error(r, ERR_OUT_OF_MEMORY, "no memory for a job");
        return;
    }
    char id[DAE_JOB_ID_LEN + 1];
    int64_t now = dae_now_ns();
    j->jobrec = dae_jobs_add(s->jobs, r->route->pattern, j->entry ? j->entry->name : "",
                             j->len, &j->prog, now, id, &e);
    if (!j->jobrec) {
        job_req_free(j);
        dae_req_fail(r, &e);
        return;
    }
    /* --pixel-budget: a job that must wait is queued there (dae_jobs_http_run takes it on) */
    int now_ok = dae_req_pixels_enter(j) || dae_admit_wait(s->pixels, &j->pix);
    if (now_ok && dae_workpool_submit(s->pool, &j->job, &e) != DAE_OK) {
        dae_req_pixels_granted(dae_admit_leave(s->pixels, &j->pix));
        dae_jobs_abandon(s->jobs, j->jobrec);
        job_req_free(j);
        dae_req_error(r, e.code == DAE_EBUSY ? ERR_BUSY : ERR_SHUTTING_DOWN, "%s", e.msg);
        return;
    }
    /* r answers for itself now: no X-Model (the job may still pick another model) */
    r->job.key = NULL;
    sbuf b;
    dae_sb_init(&b);
    if (dae_jobs_status(s->jobs, id, now, &b) != DAE_OK)
        dae_sb_printf(&b, "{\"id\":\"%s\"}\n", id);
    dae_req_answer_sb(r, 202, "application/json", &b);
    snprintf(r->extra_name, sizeof r->extra_name, "Location");
    snprintf(r->extra_value, sizeof r->extra_value, "/v1/jobs/%s", id);
    r->headers = APPLIED;
}

void dae_jobs_http_run(dae_req *j)
{
    dae_error e = {0};
    if (dae_workpool_submit(j->s->pool, &j->job, &e) != DAE_OK) {
        dae_req_error(j, e.code == DAE_EBUSY ? ERR_BUSY : ERR_SHUTTING_DOWN, "%s", e.msg);
        dae_req_resume(j); /* to its record */
    }
}

void dae_jobs_http_done(dae_req *j)
{
    dae_server *s = j->s;
    if (!j->status)
        dae_req_error(j, ERR_INTERNAL, "job finished without an answer");
    dae_job_answer a = {0};
    a.status = j->status;
    a.type = j->resp_type;
    a.body = j->resp;
    a.len = j->resp_len;
    j->resp = NULL;
    memcpy(a.extra_name, j->extra_name, sizeof a.extra_name);
    memcpy(a.extra_value, j->extra_value, sizeof a.extra_value);
    a.headers = j->headers;
    /* as queue_answer: the model that computed a successful answer */
    if (j->job.key && j->entry && a.status >= 200 && a.status < 300)
        snprintf(a.model, sizeof a.model, "%s", j->entry->name);
    dae_jobs_finish(s->jobs, j->jobrec, &a, dae_now_ns());
    free(a.body);
    job_req_free(j);
}

/* GET /v1/jobs/{id}/result: the stored answer, as the synchronous request had it. */
static void job_result(dae_req *r)
{
    dae_job_answer a = {0};
    dae_job_state st;
    int rc = dae_jobs_result(r->s->jobs, r->param, dae_now_ns(), &a, &st);
    if (rc == DAE_ENOTFOUND) {
        dae_req_error(r, ERR_NOT_FOUND, "no job %.40s (expired, deleted, or never made)",
                      r->param);
    } else if (rc == DAE_EBUSY) {
        dae_req_error(r, ERR_JOB_NOT_READY, "job %.40s is %s: poll GET /v1/jobs/%.40s until "
                      "its status is done or failed", r->param, dae_job_state_name(st),
                      r->param);
        snprintf(r->extra_name, sizeof r->extra_name, "Retry-After");
        snprintf(r->extra_value, sizeof r->extra_value, "1");
    } else if (rc != DAE_OK) {
        dae_req_error(r, ERR_OUT_OF_MEMORY, "no memory to copy the job's answer");
    } else {
        dae_req_answer(r, a.status, a.type, a.body, a.len);
        memcpy(r->extra_name, a.extra_name, sizeof r->extra_name);
        memcpy(r->extra_value, a.extra_value, sizeof r->extra_value);
        r->headers = a.headers;
        memcpy(r->answer_model, a.model, sizeof r->answer_model);
    }
}

void dae_jobs_http_handle(dae_req *r)
{
    dae_server *s = r->s;
    if (r->route->id == DAE_ROUTE_V1_JOB_RESULT) {
        job_result(r);
        return;
    }
    sbuf b;
    dae_sb_init(&b);
    int rc = r->method == DAE_HTTP_DELETE
                 ? dae_jobs_delete(s->jobs, r->param, dae_now_ns(), &b)
                 : dae_jobs_status(s->jobs, r->param, dae_now_ns(), &b);
    if (rc != DAE_OK) {
        dae_sb_free(&b);
        dae_req_error(r, ERR_NOT_FOUND, "no job %.40s (expired, deleted, or never made)",
                      r->param);
        return;
    }
    dae_req_answer_sb(r, 200, "application/json", &b);
}

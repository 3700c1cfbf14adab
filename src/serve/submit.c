/* submit.c — a request handed to the workers and back: its place in --pixel-budget, the
 * hang-up watch while it is suspended, the pool, and the resume once it is answered. */
#include <stddef.h>

#include "internal.h"
#include "pixels.h"

static void watch(dae_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        dae_hangup_add(r->s->hangup, &r->watch, ci->connect_fd, &r->prog.cancel);
}

int dae_req_pixels_enter(dae_req *r)
{
    int nonlocal = r->nonlocal == NONLOCAL_ON || (r->nonlocal == NONLOCAL_AUTO && !r->has_sigma);
    int tiled = dae_tiles_radius(r) >= 0;
    int extras = (nonlocal && tiled ? DAE_PIXELS_NONLOCAL : 0) |
                 (tiled && r->entry->photo.chroma_half ? DAE_PIXELS_HALF_CHROMA : 0) |
                 (!r->model_name[0] && !r->has_sigma ? DAE_PIXELS_REROUTE : 0);
    size_t est = dae_pixels_estimate((const unsigned char *)r->body, r->len, r->is_json,
                                     dae_tiles_8bit(r), extras);
    return dae_admit_try(r->s->pixels, &r->pix, est);
}

static dae_req *req_of_pix(dae_admit_ticket *t)
{
    return (dae_req *)((char *)t - offsetof(dae_req, pix));
}

void dae_req_pixels_granted(dae_admit_ticket *t)
{
    while (t) {
        dae_admit_ticket *next = t->next;
        dae_req *r = req_of_pix(t);
        if (r->conn) {
            dae_hangup_remove(r->s->hangup, &r->watch);
            MHD_resume_connection(r->conn);
        } else {
            dae_jobs_http_run(r);
        }
        t = next;
    }
}

void dae_req_submit(dae_req *r, int op)
{
    dae_server *s = r->s;
    r->op = op;
    r->job.key = r->entry;
    r->job.op = op;
    if (r->async) { /* Prefer: respond-async: answered 202 now, runs as a job */
        dae_jobs_http_submit(r);
        return;
    }
    if (!dae_req_pixels_enter(r)) { /* waits for --pixel-budget, watched for a hang-up */
        r->phase = PH_PIXELS;
        watch(r);
        MHD_suspend_connection(r->conn);
        if (dae_admit_wait(s->pixels, &r->pix)) {
            dae_hangup_remove(s->hangup, &r->watch);
            MHD_resume_connection(r->conn);
        }
        return;
    }
    dae_req_run(r);
}

/* The rest of dae_req_submit once --pixel-budget let r in: suspend, to the pool. */

void dae_req_run(dae_req *r)
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
            dae_req_error(r, ERR_BUSY, "%s", e.msg);
        else
            dae_req_error(r, ERR_SHUTTING_DOWN, "%s", e.msg);
        dae_req_resume(r);
    }
}

void dae_req_resume(dae_req *r)
{
    /* its planes are freed (the answer is built): --pixel-budget lets the next ones in */
    dae_req_pixels_granted(dae_admit_leave(r->s->pixels, &r->pix));
    if (!r->conn) { /* a job's request: its answer goes to the job table */
        dae_jobs_http_done(r);
        return;
    }
    /* Unwatched before the resume: libmicrohttpd may close the socket right after. */
    dae_hangup_remove(r->s->hangup, &r->watch);
    MHD_resume_connection(r->conn);
}

/* infer.c — the worker side of a request: run every waiting request of one model as one
 * batch (parse.c reads the bodies, answer.c builds the answers). A request of many samples
 * (a batch of images) that finds workers idle is split into parts that run on them at the
 * same time; the worker finishing the last part answers it. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void dae_work_free(work *w)
{
    for (int i = 0; w->orig && i < w->n; i++)
        dae_image_free(&w->orig[i]);
    for (int i = 0; w->orig8 && i < w->n; i++)
        dae_image8_free(&w->orig8[i]);
    free(w->orig8);
    for (int i = 0; w->mask && i < w->n; i++)
        free(w->mask[i]);
    free(w->orig);
    free(w->mask);
    free(w->noise);
    free(w->x);
    free(w->y);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------------ running the model */

float *dae_infer_stage(worker_ctx *wc, size_t n)
{
    if (n > wc->stage_cap) {
        float *p = realloc(wc->stage, n * sizeof *p);
        if (!p)
            return NULL;
        wc->stage = p;
        wc->stage_cap = n;
    }
    return wc->stage;
}

int dae_infer_chunk(const dae_server *s, int worker, const dae_model *m, dae_shape ws_in)
{
    worker_ctx *wc = &s->wctx[worker];
    if (wc->chunk_model == m && dae_shape_eq(wc->chunk_in, ws_in))
        return wc->chunk;
    size_t nominal = dae_shape_size(m->in_shape);
    size_t have = dae_shape_size(ws_in);
    size_t b = (size_t)s->cfg.max_batch;
    if (have > nominal && nominal)
        b = b * nominal / have;
    if (b < 1)
        b = 1;
    /* then within --batch-memory: halve while the workspace would be larger */
    while (b > 1) {
        size_t bytes = dae_workspace_bytes(m, (int)b, ws_in);
        if (bytes && bytes <= s->cfg.batch_memory)
            break;
        b = b / 2 > (size_t)1 ? b / 2 : 1;
    }
    wc->chunk_model = m;
    wc->chunk_in = ws_in;
    wc->chunk = (int)b;
    return (int)b;
}

static int chunk_for(const dae_server *s, int worker, const dae_model *m, dae_shape in, int op)
{
    return dae_infer_chunk(s, worker, m, dae_infer_ws_shape(m, op, in));
}

/* The input shape a workspace needs for this call: decoding a code of shape `in` needs
 * room for the image that code stands for. */
dae_shape dae_infer_ws_shape(const dae_model *m, int op, dae_shape in)
{
    if (op != OP_DECODE)
        return in;
    dae_shape s = m->in_shape;
    if (m->fully_conv && m->latent_shape.h > 0 && m->latent_shape.w > 0) {
        s.h = (int)((long long)in.h * m->in_shape.h / m->latent_shape.h);
        s.w = (int)((long long)in.w * m->in_shape.w / m->latent_shape.w);
    }
    return s;
}

static int model_call(const dae_model *m, dae_workspace *ws, int op, const float *x, int b,
                      dae_shape in, const float **y, dae_shape *ys, dae_error *err)
{
    switch (op) {
    case OP_ENCODE: return dae_model_encode(m, ws, x, b, in, y, ys, err);
    case OP_DECODE: return dae_model_decode(m, ws, x, b, in, y, ys, err);
    default: return dae_model_forward(m, ws, x, b, in, y, ys, err);
    }
}

/* Run the samples of requests reqs[0..n) (one model, one op, one input shape) in chunks;
 * results land in each work's y, the batch sizes in reqs[i]->batch (reqs may be NULL) and
 * the largest in *max_b (may be NULL). On failure, err is set for all. */
static int run_group(dae_server *s, int worker, dae_entry *e, int op, dae_req **reqs,
                     work **ws, int n, int *max_b, dae_error *err)
{
    const dae_model *m = e->mf->model;
    dae_shape in = ws[0]->in;
    size_t vin = dae_shape_size(in);
    int chunk = chunk_for(s, worker, m, in, op);
    float *stage = dae_infer_stage(&s->wctx[worker], (size_t)chunk * vin);
    if (!stage)
        return dae_error_set(err, DAE_ENOMEM, "out of memory for a batch of %d", chunk);
    dae_shape ws_in = dae_infer_ws_shape(m, op, in);
    dae_workspace *wsp = dae_entry_workspace(e, worker, chunk, ws_in, err);
    if (!wsp)
        return err->code;
    int ri = 0, si = 0; /* next sample to stage: request ri, sample si */
    while (ri < n) {
        int b = 0;
        int r0 = ri, s0 = si;
        while (ri < n && b < chunk) {
            memcpy(stage + (size_t)b * vin, ws[ri]->x + (size_t)si * vin, vin * sizeof *stage);
            b++;
            if (++si == ws[ri]->n) {
                ri++;
                si = 0;
            }
        }
        const float *y;
        dae_shape ys;
        int64_t t0 = dae_now_ns();
        int rc = model_call(m, wsp, op, stage, b, in, &y, &ys, err);
        dae_prom_batch(s->prom, b, (double)(dae_now_ns() - t0) / 1e9);
        if (rc != DAE_OK)
            return rc;
        size_t vout = dae_shape_size(ys);
        /* Scatter the outputs back to their requests. */
        int rj = r0, sj = s0;
        for (int k = 0; k < b; k++) {
            work *w = ws[rj];
            if (!w->y) {
                w->y = malloc((size_t)w->n * vout * sizeof *w->y);
                if (!w->y)
                    return dae_error_set(err, DAE_ENOMEM, "out of memory for the outputs");
                w->out = ys;
            }
            memcpy(w->y + (size_t)sj * vout, y + (size_t)k * vout, vout * sizeof *w->y);
            if (reqs && reqs[rj]->batch < b)
                reqs[rj]->batch = b;
            if (max_b && *max_b < b)
                *max_b = b;
            if (++sj == w->n) {
                rj++;
                sj = 0;
            }
        }
    }
    return DAE_OK;
}

int dae_infer_encode(dae_req *r, int worker, const float *x, int b, dae_shape in, float **z,
                     dae_shape *zs, dae_error *err)
{
    dae_server *s = r->s;
    dae_entry *e = r->entry;
    size_t vin = dae_shape_size(in);
    int chunk = chunk_for(s, worker, e->mf->model, in, OP_ENCODE);
    dae_workspace *wsp = dae_entry_workspace(e, worker, chunk, in, err);
    if (!wsp)
        return err->code;
    *z = NULL;
    for (int i = 0; i < b; i += chunk) {
        int nb = b - i < chunk ? b - i : chunk;
        const float *y;
        dae_shape ys;
        int64_t t0 = dae_now_ns();
        int rc = dae_model_encode(e->mf->model, wsp, x + (size_t)i * vin, nb, in, &y, &ys, err);
        dae_prom_batch(s->prom, nb, (double)(dae_now_ns() - t0) / 1e9);
        if (rc != DAE_OK) {
            free(*z);
            *z = NULL;
            return rc;
        }
        if (!*z && !(*z = malloc((size_t)b * dae_shape_size(ys) * sizeof **z)))
            return dae_error_set(err, DAE_ENOMEM, "out of memory for the codes");
        memcpy(*z + (size_t)i * dae_shape_size(ys), y, (size_t)nb * dae_shape_size(ys) * sizeof **z);
        *zs = ys;
        if (r->batch < nb)
            r->batch = nb;
    }
    return DAE_OK;
}

/* Interpolate: encode both images, walk the straight line, decode every step. */
static int run_interpolate(dae_server *s, int worker, dae_req *r, work *w, dae_error *err)
{
    dae_entry *e = r->entry;
    float *z = NULL;
    dae_shape zs;
    int rc = dae_infer_encode(r, worker, w->x, 2, w->in, &z, &zs, err);
    if (rc != DAE_OK)
        return rc;
    size_t zn = dae_shape_size(zs);
    work line = {0};
    line.n = w->steps;
    line.in = zs;
    line.x = malloc((size_t)w->steps * zn * sizeof *line.x);
    if (!line.x) {
        free(z);
        return dae_error_set(err, DAE_ENOMEM, "out of memory for %d codes", w->steps);
    }
    for (int k = 0; k < w->steps; k++) {
        float t = (float)k / (float)(w->steps - 1);
        for (size_t i = 0; i < zn; i++)
            line.x[(size_t)k * zn + i] = (1 - t) * z[i] + t * z[zn + i];
    }
    free(z);
    work *lp = &line;
    rc = run_group(s, worker, e, OP_DECODE, &r, &lp, 1, NULL, err);
    if (rc == DAE_OK) {
        free(w->y);
        w->y = line.y;
        w->out = line.out;
        line.y = NULL;
    }
    dae_work_free(&line);
    return rc;
}

static void finish(dae_req *r, work *w, int worker)
{
    dae_error err = {0};
    int rc;
    switch (r->route->id) {
    case DAE_ROUTE_V1_SCORE: rc = dae_answer_score(r, w, worker, &err); break;
    case DAE_ROUTE_V1_ENCODE: rc = dae_answer_encode(r, w, &err); break;
    case DAE_ROUTE_V2_INFER: dae_v2_finish(r, w, worker); return;
    default: rc = dae_answer_images(r, w, &err); break;
    }
    if (rc != DAE_OK)
        dae_req_fail(r, &err);
}

/* ------------------------------------------------------------------ split requests */

/* A request whose samples run in parts on several workers. Part 0 runs on the worker that
 * parsed it; parts 1.. are OP_PART jobs (key: the model entry). Each part's outputs land in
 * its own buffer; the worker finishing the last part joins them into w.y and answers. */
typedef struct split split;

typedef struct part_job {
    dae_job job;
    split *sp;
    int idx;
} part_job;

#define MAX_PARTS 64

struct split {
    dae_req *r;
    work w;                 /* the request's parsed work, taken over */
    int op, parts, left;
    int s0[MAX_PARTS + 1];  /* part k: samples [s0[k], s0[k+1]) */
    float *y[MAX_PARTS];    /* part k's outputs */
    dae_shape out;
    int batch;              /* largest model call */
    int failed;
    dae_error err;
    pthread_mutex_t mu;
    part_job jobs[MAX_PARTS];
};

static void split_free(split *sp)
{
    for (int k = 0; k < sp->parts; k++)
        free(sp->y[k]);
    dae_work_free(&sp->w);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
}

/* A part is over (err: NULL or its failure). The last part answers the request. */
static void part_done(split *sp, const dae_error *err, int worker)
{
    pthread_mutex_lock(&sp->mu);
    if (err && !sp->failed) {
        sp->failed = 1;
        sp->err = *err;
    }
    int last = --sp->left == 0;
    pthread_mutex_unlock(&sp->mu);
    if (!last)
        return;
    dae_req *r = sp->r;
    work *w = &sp->w;
    if (!sp->failed) {
        size_t vout = dae_shape_size(sp->out);
        w->y = malloc((size_t)w->n * vout * sizeof *w->y);
        if (!w->y) {
            sp->failed = 1;
            dae_error_set(&sp->err, DAE_ENOMEM, "out of memory for the outputs");
        } else {
            for (int p = 0; p < sp->parts; p++)
                memcpy(w->y + (size_t)sp->s0[p] * vout, sp->y[p],
                       (size_t)(sp->s0[p + 1] - sp->s0[p]) * vout * sizeof *w->y);
            w->out = sp->out;
            if (r->batch < sp->batch)
                r->batch = sp->batch;
        }
    }
    if (sp->failed)
        dae_req_fail(r, &sp->err);
    else
        finish(r, w, worker);
    split_free(sp);
    dae_req_resume(r);
}

/* Run part k of sp on this worker. */
static void part_run(dae_server *s, int worker, split *sp, int k)
{
    size_t vin = dae_shape_size(sp->w.in);
    work sub = {0};
    sub.n = sp->s0[k + 1] - sp->s0[k];
    sub.in = sp->w.in;
    sub.x = sp->w.x + (size_t)sp->s0[k] * vin;
    work *sw = &sub;
    dae_error err = {0};
    int b = 0;
    int rc = run_group(s, worker, sp->r->entry, sp->op, NULL, &sw, 1, &b, &err);
    pthread_mutex_lock(&sp->mu);
    sp->y[k] = sub.y;
    sp->out = sub.out;
    if (sp->batch < b)
        sp->batch = b;
    pthread_mutex_unlock(&sp->mu);
    part_done(sp, rc == DAE_OK ? NULL : &err, worker);
}

/* Split r (its parsed work *w, n samples) over the idle workers when that pays: at least
 * two model calls' worth of samples (chunk each) per part. Returns 1 when r was taken over
 * (it is answered by the worker finishing its last part; *w is left empty), 0 to run it
 * here as one group. */
static int try_split(dae_server *s, int worker, dae_req *r, work *w, int op)
{
    if (s->n_workers < 2 || w->n < 2)
        return 0;
    int chunk = chunk_for(s, worker, r->entry->mf->model, w->in, op);
    int most = w->n / chunk; /* parts of at least one full call */
    if (most < 2)
        return 0;
    int idle = dae_workpool_idle(s->pool);
    if (idle < 1)
        return 0;
    int parts = 1 + idle;
    if (parts > s->n_workers)
        parts = s->n_workers;
    if (parts > most)
        parts = most;
    if (parts > MAX_PARTS)
        parts = MAX_PARTS;
    split *sp = calloc(1, sizeof *sp);
    if (!sp)
        return 0;
    pthread_mutex_init(&sp->mu, NULL);
    sp->r = r;
    sp->w = *w;
    memset(w, 0, sizeof *w);
    sp->op = op;
    sp->parts = sp->left = parts;
    for (int k = 0; k <= parts; k++)
        sp->s0[k] = (int)((long long)sp->w.n * k / parts);
    /* the jobs first, then part 0 here; a part the pool refuses runs here too */
    for (int k = 1; k < parts; k++) {
        part_job *j = &sp->jobs[k];
        j->sp = sp;
        j->idx = k;
        j->job.key = r->entry;
        j->job.op = OP_PART;
        j->job.weight = sp->s0[k + 1] - sp->s0[k];
    }
    dae_prom_split(s->prom, parts);
    int queued[MAX_PARTS] = {0};
    for (int k = 1; k < parts; k++)
        queued[k] = dae_workpool_submit(s->pool, &sp->jobs[k].job, NULL) == DAE_OK;
    part_run(s, worker, sp, 0); /* may answer r if the others are done: sp freed */
    for (int k = 1; k < parts; k++)
        if (!queued[k])
            part_run(s, worker, sp, k);
    return 1;
}

/* ------------------------------------------------------------------ the batch */

static dae_req *req_of(dae_job *j)
{
    return (dae_req *)((char *)j - offsetof(dae_req, job));
}

/* Where each request of a batch stands while dae_infer_run works through it. */
typedef enum {
    SLOT_PENDING,    /* parsed, not run yet */
    SLOT_ANSWERED,   /* its answer is set (an error, or interpolate's images) */
    SLOT_GROUPED,    /* taken into a group of one model and shape: answered when it ran */
    SLOT_HANDED_OFF  /* tiles.c or a split answers and resumes it later: not ours anymore */
} slot_state;

/* The requests of one dae_infer_run call and their parsed work. */
typedef struct batch {
    dae_server *s;
    int worker, op, n;
    dae_req **reqs;     /* [n] */
    work *works;        /* [n] */
    slot_state *state;  /* [n] */
    work **group;       /* [n] scratch: the works of one group */
    dae_req **greq;     /* [n] scratch: their requests */
} batch;

static void batch_free(batch *b)
{
    free(b->reqs);
    free(b->works);
    free(b->state);
    free(b->group);
    free(b->greq);
}

/* Allocate b's arrays for n jobs; -1 when out of memory (b freed). */
static int batch_init(batch *b, dae_server *s, int worker, dae_job **jobs, int n)
{
    *b = (batch){.s = s, .worker = worker, .op = jobs[0]->op, .n = n};
    b->reqs = malloc((size_t)n * sizeof *b->reqs);
    b->works = calloc((size_t)n, sizeof *b->works);
    b->state = calloc((size_t)n, sizeof *b->state);
    b->group = malloc((size_t)n * sizeof *b->group);
    b->greq = malloc((size_t)n * sizeof *b->greq);
    if (!b->reqs || !b->works || !b->state || !b->group || !b->greq) {
        batch_free(b);
        return -1;
    }
    int64_t now = dae_now_ns();
    for (int i = 0; i < n; i++) {
        b->reqs[i] = req_of(jobs[i]);
        atomic_store(&b->reqs[i]->prog.started, 1);
        dae_prom_queue_wait(s->prom, (double)(now - jobs[i]->enqueued_ns) / 1e9);
    }
    return 0;
}

/* Parse every request; failures (and requests cancelled while queued) are answered. */
static void batch_parse(batch *b)
{
    for (int i = 0; i < b->n; i++) {
        dae_req *r = b->reqs[i];
        dae_error err = {0};
        if (atomic_load(&r->prog.cancel)) { /* client gone or job deleted: skip it */
            dae_req_error(r, ERR_CANCELLED, "cancelled before it ran");
            b->state[i] = SLOT_ANSWERED;
        } else if (dae_parse_request(r, &b->works[i], &err) != DAE_OK) {
            dae_req_fail(r, &err);
            b->state[i] = SLOT_ANSWERED;
        }
        dae_req_body_free(r); /* parsed: its bytes go back to --body-budget */
    }
}

/* Fully convolutional denoisers: the request continues as tiles (tiles.c). */
static void batch_tiles(batch *b)
{
    for (int i = 0; i < b->n; i++)
        if (b->state[i] == SLOT_PENDING && b->works[i].tiled) {
            dae_tiles_start(b->reqs[i], &b->works[i], b->worker);
            b->state[i] = SLOT_HANDED_OFF;
        }
}

static void batch_interpolate(batch *b)
{
    for (int i = 0; i < b->n; i++) {
        if (b->state[i] != SLOT_PENDING)
            continue;
        dae_error err = {0};
        if (run_interpolate(b->s, b->worker, b->reqs[i], &b->works[i], &err) != DAE_OK)
            dae_req_fail(b->reqs[i], &err);
        else
            finish(b->reqs[i], &b->works[i], b->worker);
        b->state[i] = SLOT_ANSWERED;
    }
}

/* The pending requests from i on with request i's model and input shape, into b->group and
 * b->greq; returns how many. */
static int group_collect(batch *b, int i)
{
    int g = 0;
    dae_entry *e = b->reqs[i]->entry;
    for (int k = i; k < b->n; k++) {
        if (b->state[k] == SLOT_PENDING && b->reqs[k]->entry == e &&
            dae_shape_eq(b->works[k].in, b->works[i].in)) {
            b->group[g] = &b->works[k];
            b->greq[g++] = b->reqs[k];
            b->state[k] = SLOT_GROUPED;
        }
    }
    return g;
}

/* Requests of one model and input shape run together as one batch (in chunks of
 * max_batch); the jobs came for one model, but /v1/denoise may have picked another for
 * what the body held (route.h). */
static void batch_groups(batch *b)
{
    for (int i = 0; i < b->n; i++) {
        if (b->state[i] != SLOT_PENDING)
            continue;
        int g = group_collect(b, i);
        /* one request of many samples, with workers idle: its parts run on them too (the
         * worker finishing its last part answers it) */
        if (g == 1 && b->op != OP_INTERPOLATE &&
            try_split(b->s, b->worker, b->greq[0], b->group[0], b->op)) {
            b->state[b->group[0] - b->works] = SLOT_HANDED_OFF;
            continue;
        }
        dae_error err = {0};
        int rc = run_group(b->s, b->worker, b->reqs[i]->entry, b->op, b->greq, b->group, g,
                           NULL, &err);
        for (int k = 0; k < g; k++) {
            if (rc != DAE_OK)
                dae_req_fail(b->greq[k], &err);
            else
                finish(b->greq[k], b->group[k], b->worker);
        }
    }
}

/* Jobs that are pieces of a request (tiles, parts of a split) rather than requests. */
static int run_pieces(dae_server *s, int worker, dae_job **jobs, int n)
{
    if (jobs[0]->op == OP_TILE) {
        dae_tiles_run(s, worker, jobs, n);
        return 1;
    }
    if (jobs[0]->op != OP_PART)
        return 0;
    for (int i = 0; i < n; i++) {
        part_job *j = (part_job *)jobs[i];
        part_run(s, worker, j->sp, j->idx);
    }
    return 1;
}

void dae_infer_run(void *ctx, int worker, dae_job **jobs, int n)
{
    dae_server *s = ctx;
    if (run_pieces(s, worker, jobs, n))
        return;
    batch b;
    if (batch_init(&b, s, worker, jobs, n) != 0) {
        for (int i = 0; i < n; i++) {
            dae_req *r = req_of(jobs[i]);
            dae_req_error(r, ERR_OUT_OF_MEMORY, "no memory to run the request");
            dae_req_resume(r);
        }
        return;
    }
    batch_parse(&b);
    batch_tiles(&b);
    if (b.op == OP_INTERPOLATE)
        batch_interpolate(&b);
    batch_groups(&b);
    /* Every request has its answer: hand them back to the HTTP thread. */
    for (int i = 0; i < n; i++) {
        if (b.state[i] == SLOT_HANDED_OFF)
            continue;
        dae_work_free(&b.works[i]);
        dae_req_resume(b.reqs[i]);
    }
    batch_free(&b);
}

void dae_infer_cancel(void *ctx, dae_job *job)
{
    (void)ctx;
    if (job->op == OP_TILE) {
        dae_tiles_cancel(job);
        return;
    }
    if (job->op == OP_PART) {
        part_job *j = (part_job *)job;
        dae_error err = {0};
        dae_error_set(&err, DAE_EBUSY, "the server shut down before this request ran");
        part_done(j->sp, &err, 0);
        return;
    }
    dae_req *r = req_of(job);
    dae_req_error(r, ERR_SHUTTING_DOWN, "the server shut down before this request ran");
    dae_req_resume(r);
}

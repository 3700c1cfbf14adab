/* workpool.c — worker threads, a bounded FIFO and the dynamic batcher. */
#include "workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct dae_workpool {
    dae_workpool_params p;
    dae_workpool_run_fn run;
    dae_workpool_cancel_fn cancel;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* signalled on submit and on stop */
    dae_job *head, *tail;  /* FIFO */
    int depth;
    int stopping;          /* no more submits */
    int stopped;           /* workers joined */
    int idle;              /* workers waiting for a job */
    pthread_t *threads;
    int n_threads;         /* started */
    struct worker_arg { dae_workpool *pool; int id; } *args;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int weight(const dae_job *j)
{
    return j->weight > 1 ? j->weight : 1;
}

/* Unlink queued jobs matching (key, op), oldest first, into out[*n..max_jobs) while their
 * weights (samples) fit in max_batch together with the *w already taken; the first job is
 * taken whatever its weight. Caller holds mu. Counting jobs instead, one worker took every
 * waiting 64-image request while the other idled: batch64 at 16 connections ran at half
 * the speed of 1 connection. Returns 1 when a matching job was left for not fitting. */
static int take_matching(dae_workpool *p, const void *key, int op, dae_job **out, int *n,
                         int *w, int max_jobs)
{
    dae_job *prev = NULL, *j = p->head;
    while (j && *n < max_jobs && *w < p->p.max_batch) {
        dae_job *next = j->next;
        if (j->key == key && j->op == op) {
            if (*n > 0 && *w + weight(j) > p->p.max_batch)
                return 1; /* and keeps FIFO order among this key's jobs */
            if (prev)
                prev->next = next;
            else
                p->head = next;
            if (p->tail == j)
                p->tail = prev;
            j->next = NULL;
            out[(*n)++] = j;
            *w += weight(j);
            p->depth--;
        } else {
            prev = j;
        }
        j = next;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    dae_workpool *p = wa->pool;
    dae_job **batch = malloc((size_t)p->p.max_batch * sizeof *batch);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stopping) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (!p->head) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->mu);
            break;
        }
        dae_job *first = p->head;
        int n = 0, w = 0;
        if (!batch) { /* no room to batch: run jobs one by one */
            p->head = first->next;
            if (!p->head)
                p->tail = NULL;
            p->depth--;
            first->next = NULL;
            pthread_mutex_unlock(&p->mu);
            p->run(p->ctx, wa->id, &first, 1);
            continue;
        }
        int full = take_matching(p, first->key, first->op, batch, &n, &w, p->p.max_batch);
        if (p->head && p->idle > 0) /* jobs left behind: an idle worker takes them now */
            pthread_cond_signal(&p->cv);
        if (p->p.batch_delay_us > 0 && !full && w < p->p.max_batch && !p->stopping) {
            int64_t deadline = now_ns() + (int64_t)p->p.batch_delay_us * 1000;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec = deadline / 1000000000;
            ts.tv_nsec = deadline % 1000000000;
            while (!full && w < p->p.max_batch && !p->stopping) {
                int timeout = pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT;
                full = take_matching(p, first->key, first->op, batch, &n, &w, p->p.max_batch);
                if (timeout)
                    break;
            }
        }
        pthread_mutex_unlock(&p->mu);
        p->run(p->ctx, wa->id, batch, n);
    }
    free(batch);
    return NULL;
}

dae_workpool *dae_workpool_create(const dae_workpool_params *params, dae_workpool_run_fn run,
                                  dae_workpool_cancel_fn cancel, void *ctx, dae_error *err)
{
    if (!params || params->workers < 1 || params->queue_size < 1 || params->max_batch < 1 ||
        params->batch_delay_us < 0 || !run || !cancel) {
        dae_error_set(err, DAE_EINVAL, "workpool: workers, queue_size, max_batch must be >= 1");
        return NULL;
    }
    dae_workpool *p = calloc(1, sizeof *p);
    if (!p) {
        dae_error_set(err, DAE_ENOMEM, "workpool: out of memory");
        return NULL;
    }
    p->p = *params;
    p->run = run;
    p->cancel = cancel;
    p->ctx = ctx;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->threads = calloc((size_t)params->workers, sizeof *p->threads);
    p->args = calloc((size_t)params->workers, sizeof *p->args);
    if (!p->threads || !p->args) {
        dae_error_set(err, DAE_ENOMEM, "workpool: out of memory for %d workers",
                      params->workers);
        goto fail;
    }
    for (int i = 0; i < params->workers; i++) {
        p->args[i].pool = p;
        p->args[i].id = i;
        int rc = pthread_create(&p->threads[i], NULL, worker_main, &p->args[i]);
        if (rc != 0) {
            dae_error_set(err, DAE_EIO, "workpool: cannot start worker %d of %d (error %d)",
                          i, params->workers, rc);
            goto fail;
        }
        p->n_threads++;
    }
    return p;
fail:
    dae_workpool_free(p);
    return NULL;
}

int dae_workpool_submit(dae_workpool *p, dae_job *job, dae_error *err)
{
    int rc = DAE_OK;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        rc = dae_error_set(err, DAE_EINVAL, "the server is shutting down");
    } else if (p->depth >= p->p.queue_size) {
        rc = dae_error_set(err, DAE_EBUSY, "the work queue is full (%d jobs waiting); "
                           "retry later", p->depth);
    } else {
        job->next = NULL;
        job->enqueued_ns = now_ns();
        if (p->tail)
            p->tail->next = job;
        else
            p->head = job;
        p->tail = job;
        p->depth++;
        /* Broadcast: a worker waiting out a batch delay may want this job too. */
        if (p->p.batch_delay_us > 0)
            pthread_cond_broadcast(&p->cv);
        else
            pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int dae_workpool_depth(dae_workpool *p)
{
    pthread_mutex_lock(&p->mu);
    int d = p->depth;
    pthread_mutex_unlock(&p->mu);
    return d;
}

int dae_workpool_idle(dae_workpool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->depth ? 0 : p->idle; /* queued jobs will take the idle workers */
    pthread_mutex_unlock(&p->mu);
    return n;
}

int dae_workpool_workers(const dae_workpool *p)
{
    return p->p.workers;
}

void dae_workpool_stop(dae_workpool *p, int drain)
{
    dae_job *cancelled = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stopped) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->stopping = 1;
    if (!drain) {
        cancelled = p->head;
        p->head = p->tail = NULL;
        p->depth = 0;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    while (cancelled) {
        dae_job *next = cancelled->next;
        cancelled->next = NULL;
        p->cancel(p->ctx, cancelled);
        cancelled = next;
    }
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_lock(&p->mu);
    p->stopped = 1;
    pthread_mutex_unlock(&p->mu);
}

void dae_workpool_free(dae_workpool *p)
{
    if (!p)
        return;
    dae_workpool_stop(p, 1);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->args);
    free(p);
}

/* workpool.h — inference worker threads behind one bounded FIFO, with dynamic batching.
 *
 * Producers (the HTTP thread) submit jobs; a full queue refuses at once (DAE_EBUSY: the
 * caller answers 503 + Retry-After) instead of blocking. A worker takes the oldest job and
 * with it the following waiting jobs with the same (key, op) while their weights (samples:
 * a 64-image request weighs 64) fit in max_batch, and hands them to the run callback as one
 * batch (so one forward call serves them all); a job heavier than max_batch runs alone, so
 * heavy jobs spread over the workers. With batch_delay_us > 0 it waits up to that long for
 * more matching jobs when the batch is not full; with 0 it adds no delay.
 *
 * Jobs are intrusive: the caller embeds a dae_job in its own request state and keeps it
 * alive until run or cancel has been called for it; the pool never frees a job and never
 * touches it after passing it to a callback.
 */
#ifndef DAED_WORKPOOL_H
#define DAED_WORKPOOL_H

#include <stdint.h>

#include "daed/core/error.h"

typedef struct dae_job {
    struct dae_job *next;  /* queue link (pool-owned while queued) */
    const void *key;       /* batchable with jobs of equal key and op */
    int op;
    int weight;            /* samples it carries, an estimate; <= 1 counts as 1 */
    int64_t enqueued_ns;   /* CLOCK_MONOTONIC at submit, set by the pool */
} dae_job;

/* Runs n >= 1 jobs of one (key, op) on worker `worker` (0..workers-1). */
typedef void (*dae_workpool_run_fn)(void *ctx, int worker, dae_job **jobs, int n);
/* Called instead of run for a job still queued when the pool stops without draining. */
typedef void (*dae_workpool_cancel_fn)(void *ctx, dae_job *job);

typedef struct dae_workpool_params {
    int workers;        /* >= 1 */
    int queue_size;     /* >= 1 jobs waiting */
    int max_batch;      /* >= 1 samples (job weights) per run call */
    int batch_delay_us; /* >= 0 */
} dae_workpool_params;

typedef struct dae_workpool dae_workpool;

dae_workpool *dae_workpool_create(const dae_workpool_params *p, dae_workpool_run_fn run,
                                  dae_workpool_cancel_fn cancel, void *ctx, dae_error *err);

/* Queue a job. DAE_EBUSY when the queue is full, DAE_EINVAL once the pool is stopping. */
int dae_workpool_submit(dae_workpool *p, dae_job *job, dae_error *err);

/* Jobs waiting (not yet taken by a worker). */
int dae_workpool_depth(dae_workpool *p);
/* Workers waiting for a job now (a hint: it may change as soon as it is read). */
int dae_workpool_idle(dae_workpool *p);

/* Stop and join the workers. drain != 0: every queued job runs first; drain == 0: queued
 * jobs are cancelled (batches already running finish). Idempotent. */
void dae_workpool_stop(dae_workpool *p, int drain);

/* Stops (draining) if still running, then frees. NULL is a no-op. */
void dae_workpool_free(dae_workpool *p);

/* Number of worker threads. */
int dae_workpool_workers(const dae_workpool *p);

#endif

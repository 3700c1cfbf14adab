/* check_serve_workpool.c — the bounded queue and the dynamic batcher. */
#include "check_quiet.h"
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "../src/serve/workpool.h"

typedef struct tjob {
    dae_job job; /* first member */
    int id;
} tjob;

/* Shared by the callbacks: a log of batches, and a gate that holds the first batch. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int gate_closed;
    int in_gate;          /* a worker is waiting at the gate */
    int batches;
    int size[1024];
    int ids[1024][16];
    int cancelled[1024];
    int n_cancelled;
    int ran;
} T;

static void reset(void)
{
    memset(&T, 0, sizeof T);
    pthread_mutex_init(&T.mu, NULL);
    pthread_cond_init(&T.cv, NULL);
}

static void run(void *ctx, int worker, dae_job **jobs, int n)
{
    (void)ctx;
    (void)worker;
    pthread_mutex_lock(&T.mu);
    int b = T.batches++ % 1024;
    T.size[b] = n;
    for (int i = 0; i < n && i < 16; i++)
        T.ids[b][i] = ((tjob *)jobs[i])->id;
    T.ran += n;
    if (T.gate_closed && b == 0) {
        T.in_gate = 1;
        pthread_cond_broadcast(&T.cv);
        while (T.gate_closed)
            pthread_cond_wait(&T.cv, &T.mu);
    }
    pthread_mutex_unlock(&T.mu);
}

static void cancel(void *ctx, dae_job *job)
{
    (void)ctx;
    pthread_mutex_lock(&T.mu);
    T.cancelled[T.n_cancelled++] = ((tjob *)job)->id;
    pthread_mutex_unlock(&T.mu);
}

static void wait_in_gate(void)
{
    pthread_mutex_lock(&T.mu);
    while (!T.in_gate)
        pthread_cond_wait(&T.cv, &T.mu);
    pthread_mutex_unlock(&T.mu);
}

static void open_gate(void)
{
    pthread_mutex_lock(&T.mu);
    T.gate_closed = 0;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
}

static int key_a, key_b;

START_TEST(test_batches_by_key_in_order)
{
    reset();
    T.gate_closed = 1;
    dae_workpool_params p = {.workers = 1, .queue_size = 32, .max_batch = 4};
    dae_workpool *pool = dae_workpool_create(&p, run, cancel, NULL, NULL);
    ck_assert_ptr_nonnull(pool);
    tjob j[12];
    memset(j, 0, sizeof j);
    j[0].id = 0;
    j[0].job.key = &key_a;
    ck_assert_int_eq(dae_workpool_submit(pool, &j[0].job, NULL), DAE_OK);
    wait_in_gate(); /* the worker holds job 0; the rest queue up */
    /* ids 1..9: A B A A B A A A B ; op 1 for id 10 (same key, other op) */
    const int is_b[] = {0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0};
    for (int i = 1; i <= 10; i++) {
        j[i].id = i;
        j[i].job.key = is_b[i] ? &key_b : &key_a;
        j[i].job.op = i == 10 ? 1 : 0;
        ck_assert_int_eq(dae_workpool_submit(pool, &j[i].job, NULL), DAE_OK);
    }
    ck_assert_int_eq(dae_workpool_depth(pool), 10);
    open_gate();
    dae_workpool_stop(pool, 1);
    ck_assert_int_eq(T.ran, 11);
    /* batch 1: the first four A jobs in FIFO order; then B's three; then the last A's;
     * then the other op alone. */
    ck_assert_int_eq(T.batches, 5);
    int want1[] = {1, 3, 4, 6};
    ck_assert_int_eq(T.size[1], 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(T.ids[1][i], want1[i]);
    ck_assert_int_eq(T.size[2], 3);
    ck_assert_int_eq(T.ids[2][0], 2);
    ck_assert_int_eq(T.ids[2][1], 5);
    ck_assert_int_eq(T.ids[2][2], 9);
    ck_assert_int_eq(T.size[3], 2);
    ck_assert_int_eq(T.ids[3][0], 7);
    ck_assert_int_eq(T.ids[3][1], 8);
    ck_assert_int_eq(T.size[4], 1);
    ck_assert_int_eq(T.ids[4][0], 10);
    dae_workpool_free(pool);
}
END_TEST

/* Weights are samples: a batch holds jobs while their weights fit in max_batch, a heavy job
 * runs alone, and a job that does not fit waits (in order) for the next batch. */
START_TEST(test_batches_by_weight)
{
    reset();
    T.gate_closed = 1;
    dae_workpool_params p = {.workers = 1, .queue_size = 32, .max_batch = 4};
    dae_workpool *pool = dae_workpool_create(&p, run, cancel, NULL, NULL);
    ck_assert_ptr_nonnull(pool);
    tjob j[8];
    memset(j, 0, sizeof j);
    j[0].job.key = &key_a;
    ck_assert_int_eq(dae_workpool_submit(pool, &j[0].job, NULL), DAE_OK);
    wait_in_gate();
    /* ids 1..7 weigh 3 1 2 5 1 0 64 (0 counts as 1) */
    const int w[] = {0, 3, 1, 2, 5, 1, 0, 64};
    for (int i = 1; i <= 7; i++) {
        j[i].id = i;
        j[i].job.key = &key_a;
        j[i].job.weight = w[i];
        ck_assert_int_eq(dae_workpool_submit(pool, &j[i].job, NULL), DAE_OK);
    }
    open_gate();
    dae_workpool_stop(pool, 1);
    ck_assert_int_eq(T.ran, 8);
    /* {1,2} = 4; {3} (5 does not fit with it); {4} alone (5 > 4); {5,6} = 2 and 64 does not
     * fit; {7} alone */
    ck_assert_int_eq(T.batches, 6);
    const int size[] = {1, 2, 1, 1, 2, 1}, first[] = {0, 1, 3, 4, 5, 7};
    for (int b = 0; b < 6; b++) {
        ck_assert_int_eq(T.size[b], size[b]);
        ck_assert_int_eq(T.ids[b][0], first[b]);
    }
    ck_assert_int_eq(T.ids[1][1], 2);
    ck_assert_int_eq(T.ids[4][1], 6);
    dae_workpool_free(pool);
}
END_TEST

START_TEST(test_full_queue_refuses_at_once)
{
    reset();
    T.gate_closed = 1;
    dae_workpool_params p = {.workers = 1, .queue_size = 3, .max_batch = 8};
    dae_workpool *pool = dae_workpool_create(&p, run, cancel, NULL, NULL);
    tjob j[6];
    memset(j, 0, sizeof j);
    for (int i = 0; i < 6; i++)
        j[i].id = i, j[i].job.key = &key_a;
    ck_assert_int_eq(dae_workpool_submit(pool, &j[0].job, NULL), DAE_OK);
    wait_in_gate();
    for (int i = 1; i <= 3; i++)
        ck_assert_int_eq(dae_workpool_submit(pool, &j[i].job, NULL), DAE_OK);
    dae_error e = {0};
    ck_assert_int_eq(dae_workpool_submit(pool, &j[4].job, &e), DAE_EBUSY);
    ck_assert_ptr_nonnull(strstr(e.msg, "queue is full"));
    /* Stopping without draining cancels what waits; the running batch finishes. */
    open_gate();
    dae_workpool_stop(pool, 0);
    ck_assert_int_eq(T.ran + T.n_cancelled, 4);
    ck_assert_int_eq(dae_workpool_submit(pool, &j[5].job, &e), DAE_EINVAL);
    dae_workpool_free(pool);
}
END_TEST

static void *stopper(void *pool)
{
    dae_workpool_stop(pool, 0);
    return NULL;
}

START_TEST(test_stop_cancels_queued)
{
    reset();
    T.gate_closed = 1;
    dae_workpool_params p = {.workers = 1, .queue_size = 8, .max_batch = 8};
    dae_workpool *pool = dae_workpool_create(&p, run, cancel, NULL, NULL);
    tjob j[4];
    memset(j, 0, sizeof j);
    for (int i = 0; i < 4; i++)
        j[i].id = i, j[i].job.key = &key_a;
    dae_workpool_submit(pool, &j[0].job, NULL);
    wait_in_gate();
    for (int i = 1; i < 4; i++)
        dae_workpool_submit(pool, &j[i].job, NULL);
    /* Stop while the worker is still held: the three queued jobs are cancelled at once,
     * and the stop returns when the running batch ends. */
    pthread_t t;
    pthread_create(&t, NULL, stopper, pool);
    for (;;) {
        pthread_mutex_lock(&T.mu);
        int n = T.n_cancelled;
        pthread_mutex_unlock(&T.mu);
        if (n == 3)
            break;
        usleep(1000);
    }
    ck_assert_int_eq(T.ran, 1);
    open_gate();
    pthread_join(t, NULL);
    ck_assert_int_eq(T.cancelled[0], 1);
    ck_assert_int_eq(T.cancelled[2], 3);
    dae_workpool_free(pool);
}
END_TEST

START_TEST(test_batch_delay_collects)
{
    reset();
    /* A long delay with max_batch 3: the worker waits for the batch to fill, and a full
     * batch runs without waiting out the delay. */
    dae_workpool_params p = {.workers = 1, .queue_size = 8, .max_batch = 3,
                             .batch_delay_us = 30 * 1000 * 1000};
    dae_workpool *pool = dae_workpool_create(&p, run, cancel, NULL, NULL);
    tjob j[3];
    memset(j, 0, sizeof j);
    for (int i = 0; i < 3; i++) {
        j[i].id = i;
        j[i].job.key = &key_a;
        ck_assert_int_eq(dae_workpool_submit(pool, &j[i].job, NULL), DAE_OK);
        usleep(20000);
    }
    dae_workpool_stop(pool, 1);
    ck_assert_int_eq(T.batches, 1);
    ck_assert_int_eq(T.size[0], 3);
    dae_workpool_free(pool);
}
END_TEST

START_TEST(test_many_workers_run_everything)
{
    reset();
    dae_workpool_params p = {.workers = 4, .queue_size = 1000, .max_batch = 5};
    dae_workpool *pool = dae_workpool_create(&p, run, cancel, NULL, NULL);
    static tjob j[500];
    memset(j, 0, sizeof j);
    int refused = 0;
    for (int i = 0; i < 500; i++) {
        j[i].id = i;
        j[i].job.key = (i % 3) ? &key_a : &key_b;
        if (dae_workpool_submit(pool, &j[i].job, NULL) != DAE_OK)
            refused++;
    }
    dae_workpool_stop(pool, 1);
    ck_assert_int_eq(refused, 0);
    ck_assert_int_eq(T.ran, 500);
    dae_workpool_free(pool);
}
END_TEST

START_TEST(test_bad_params)
{
    dae_error e = {0};
    dae_workpool_params p = {.workers = 0, .queue_size = 1, .max_batch = 1};
    ck_assert_ptr_null(dae_workpool_create(&p, run, cancel, NULL, &e));
    ck_assert_int_eq(e.code, DAE_EINVAL);
    dae_workpool_free(NULL);
}
END_TEST

Suite *suite_serve_workpool(void)
{
    Suite *s = suite_create("serve_workpool");
    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_batches_by_key_in_order);
    tcase_add_test(tc, test_full_queue_refuses_at_once);
    tcase_add_test(tc, test_stop_cancels_queued);
    tcase_add_test(tc, test_batch_delay_collects);
    tcase_add_test(tc, test_batches_by_weight);
    tcase_add_test(tc, test_many_workers_run_everything);
    tcase_add_test(tc, test_bad_params);
    suite_add_tcase(s, tc);
    return s;
}

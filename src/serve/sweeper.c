/* sweeper.c — a thread calling one function at a fixed period (see sweeper.h). */
#include "sweeper.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct dae_sweeper {
    int64_t period_ns;
    void (*fn)(void *arg);
    void *arg;
    pthread_mutex_t mu; /* stop, with cv */
    pthread_cond_t cv;
    int stop;
    pthread_t thread;
};

static void *sweeper_main(void *p)
{
    dae_sweeper *s = p;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + s->period_ns;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        int rc = 0;
        while (!s->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->mu);
        s->fn(s->arg);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

dae_sweeper *dae_sweeper_start(int64_t period_ns, void (*fn)(void *arg), void *arg,
                               const char *what, dae_error *err)
{
    dae_sweeper *s = calloc(1, sizeof *s);
    if (!s) {
        dae_error_set(err, DAE_ENOMEM, "out of memory for the %s thread", what);
        return NULL;
    }
    s->period_ns = period_ns;
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, sweeper_main, s) != 0) {
        dae_error_set(err, DAE_EIO, "cannot start the %s thread", what);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

void dae_sweeper_stop(dae_sweeper *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* deadline.c — the --request-timeout watchdog: shuts down connections still sending a
 * request after the timeout (see deadline.h for why and why it is safe). */
#include "deadline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "internal.h"
#include "sweeper.h"

struct dae_deadline_conn {
    int fd;
    atomic_llong start_ns;  /* when the clock (re)started */
    atomic_int reading;     /* 1 while the request is being received */
    atomic_int expired;     /* shut down by the watchdog */
    dae_deadline_conn *prev, *next;
};

struct dae_deadline {
    int64_t timeout_ns;
    pthread_mutex_t mu;           /* the list */
    dae_deadline_conn *head;      /* tracked connections */
    dae_sweeper *sweeper;         /* NULL: swept by dae_deadline_sweep calls only */
    atomic_ullong closed_total;
    uint64_t unlogged;            /* closed since the last log line (sweeper only) */
    int64_t last_log_ns;
};

/* Four sweeps a second: a connection is closed within 0.25 s of its deadline. */
#define SWEEP_NS 250000000LL

static void deadline_tick(void *arg)
{
    dae_deadline *d = arg;
    int64_t now = dae_now_ns();
    d->unlogged += (uint64_t)dae_deadline_sweep(d, now);
    /* One line a second at most, however many slow clients there are. */
    if (d->unlogged && now - d->last_log_ns >= 1000000000LL) {
        dae_log(DAE_LOG_WARN, "request timeout: closed %llu connection(s) still sending "
                "a request after %lld s (--request-timeout)",
                (unsigned long long)d->unlogged, (long long)(d->timeout_ns / 1000000000));
        d->unlogged = 0;
        d->last_log_ns = now;
    }
}

dae_deadline *dae_deadline_create(int timeout_s, int with_thread, dae_error *err)
{
    if (timeout_s <= 0) {
        dae_error_set(err, DAE_EINVAL, "request timeout %d s: expected at least 1", timeout_s);
        return NULL;
    }
    dae_deadline *d = calloc(1, sizeof *d);
    if (!d) {
        dae_error_set(err, DAE_ENOMEM, "out of memory for the request-timeout watchdog");
        return NULL;
    }
    d->timeout_ns = (int64_t)timeout_s * 1000000000;
    pthread_mutex_init(&d->mu, NULL);
    atomic_init(&d->closed_total, 0);
    if (with_thread &&
        !(d->sweeper = dae_sweeper_start(SWEEP_NS, deadline_tick, d, "request-timeout", err))) {
        dae_deadline_free(d);
        return NULL;
    }
    return d;
}

void dae_deadline_free(dae_deadline *d)
{
    if (!d)
        return;
    dae_sweeper_stop(d->sweeper);
    while (d->head) {
        dae_deadline_conn *c = d->head;
        d->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&d->mu);
    free(d);
}

dae_deadline_conn *dae_deadline_add(dae_deadline *d, int fd)
{
    dae_deadline_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    atomic_init(&c->start_ns, (long long)dae_now_ns());
    atomic_init(&c->reading, 1);
    atomic_init(&c->expired, 0);
    pthread_mutex_lock(&d->mu);
    c->next = d->head;
    if (d->head)
        d->head->prev = c;
    d->head = c;
    pthread_mutex_unlock(&d->mu);
    return c;
}

void dae_deadline_remove(dae_deadline *d, dae_deadline_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&d->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&d->mu);
    free(c);
}

void dae_deadline_read_done(dae_deadline_conn *c)
{
    if (c)
        atomic_store(&c->reading, 0);
}

void dae_deadline_restart(dae_deadline_conn *c)
{
    if (!c)
        return;
    /* Start first: a sweep that sees reading=1 must not see the old start. */
    atomic_store(&c->start_ns, (long long)dae_now_ns());
    atomic_store(&c->reading, 1);
}

int dae_deadline_expired(const dae_deadline_conn *c)
{
    return c ? atomic_load(&c->expired) : 0;
}

int dae_deadline_sweep(dae_deadline *d, int64_t now_ns)
{
    int n = 0;
    pthread_mutex_lock(&d->mu);
    for (dae_deadline_conn *c = d->head; c; c = c->next) {
        if (!atomic_load(&c->reading) || atomic_load(&c->expired))
            continue;
        if (now_ns - (int64_t)atomic_load(&c->start_ns) <= d->timeout_ns)
            continue;
        /* The descriptor is still open: its CLOSED notification (which comes before the
         * close) would have removed it under this lock. */
        atomic_store(&c->expired, 1); /* before the shutdown wakes anyone who reads it */
        shutdown(c->fd, SHUT_RDWR);
        n++;
    }
    pthread_mutex_unlock(&d->mu);
    if (n)
        atomic_fetch_add(&d->closed_total, (unsigned long long)n);
    return n;
}

uint64_t dae_deadline_closed_total(dae_deadline *d)
{
    return d ? atomic_load(&d->closed_total) : 0;
}

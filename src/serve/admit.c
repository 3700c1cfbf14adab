/* admit.c — --body-budget: request bodies held at once (see admit.h). */
#include "admit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

struct dae_admit {
    pthread_mutex_t mu;
    size_t budget;               /* 0: no bound */
    size_t reserve;              /* charge on admission: min(declared, reserve) */
    size_t charged;              /* sum of the admitted tickets' charges */
    int admitted;                /* tickets IN */
    dae_admit_ticket *head, *tail; /* waiting, first come first */
    int waiting;
    uint64_t waited_total;
};

dae_admit *dae_admit_create(size_t budget)
{
    dae_admit *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    pthread_mutex_init(&a->mu, NULL);
    a->budget = budget;
    a->reserve = DAE_ADMIT_RESERVE;
    return a;
}

dae_admit *dae_admit_create_whole(size_t budget)
{
    dae_admit *a = dae_admit_create(budget);
    if (a)
        a->reserve = SIZE_MAX;
    return a;
}

void dae_admit_free(dae_admit *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static size_t reservation(const dae_admit *a, size_t declared)
{
    if (!declared)
        return a->reserve == SIZE_MAX ? 0 : a->reserve;
    return declared < a->reserve ? declared : a->reserve;
}

/* Room for one more (lock held): always when nothing is admitted. */
static int has_room(const dae_admit *a)
{
    return !a->budget || a->admitted == 0 || a->charged < a->budget;
}

static void admit(dae_admit *a, dae_admit_ticket *t)
{
    t->state = DAE_ADMIT_IN;
    t->charged = reservation(a, t->declared);
    t->next = NULL;
    a->charged += t->charged;
    a->admitted++;
}

/* Admit t if nobody waits and there is room; else queue it when `queue`. */
static int enter(dae_admit *a, dae_admit_ticket *t, int queue)
{
    pthread_mutex_lock(&a->mu);
    int ok = !a->head && has_room(a);
    if (ok) {
        admit(a, t);
    } else if (queue) {
        t->state = DAE_ADMIT_WAITING;
        t->next = NULL;
        if (a->tail)
            a->tail->next = t;
        else
            a->head = t;
        a->tail = t;
        a->waiting++;
        a->waited_total++;
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

int dae_admit_try(dae_admit *a, dae_admit_ticket *t, size_t declared)
{
    t->declared = declared; /* t is the caller's until admitted or queued */
    return enter(a, t, 0);
}

int dae_admit_wait(dae_admit *a, dae_admit_ticket *t)
{
    return enter(a, t, 1);
}

/* Pop waiting tickets while there is room (lock held); returns them linked. */
static dae_admit_ticket *grant(dae_admit *a)
{
    dae_admit_ticket *out = NULL, **link = &out;
    while (a->head && has_room(a)) {
        dae_admit_ticket *t = a->head;
        a->head = t->next;
        if (!a->head)
            a->tail = NULL;
        a->waiting--;
        admit(a, t);
        *link = t;
        link = &t->next;
    }
    return out;
}

void dae_admit_grow(dae_admit *a, dae_admit_ticket *t, size_t received)
{
    /* Called for every chunk of a body: an admitted ticket changes only in its owner's
     * calls (grow, leave), so the owner reads it without the lock, which is taken only
     * when the charge does grow (a body under 16 KB never takes it). */
    if (t->state != DAE_ADMIT_IN || received <= t->charged)
        return;
    pthread_mutex_lock(&a->mu);
    if (t->state == DAE_ADMIT_IN && received > t->charged) {
        a->charged += received - t->charged;
        t->charged = received;
    }
    pthread_mutex_unlock(&a->mu);
}

dae_admit_ticket *dae_admit_leave(dae_admit *a, dae_admit_ticket *t)
{
    pthread_mutex_lock(&a->mu);
    dae_admit_ticket *out = NULL;
    if (t->state == DAE_ADMIT_IN) {
        a->charged -= t->charged;
        a->admitted--;
        out = grant(a);
    } else if (t->state == DAE_ADMIT_WAITING) {
        dae_admit_ticket **p = &a->head, *prev = NULL;
        while (*p && *p != t) {
            prev = *p;
            p = &(*p)->next;
        }
        if (*p) {
            *p = t->next;
            if (a->tail == t)
                a->tail = prev;
            a->waiting--;
        }
    }
    t->state = DAE_ADMIT_OUT;
    t->charged = 0;
    t->next = NULL;
    pthread_mutex_unlock(&a->mu);
    return out;
}

dae_admit_ticket *dae_admit_open(dae_admit *a)
{
    pthread_mutex_lock(&a->mu);
    a->budget = 0;
    dae_admit_ticket *out = grant(a);
    pthread_mutex_unlock(&a->mu);
    return out;
}

dae_admit_stats dae_admit_get_stats(dae_admit *a)
{
    pthread_mutex_lock(&a->mu);
    dae_admit_stats st = {a->charged, a->waiting, a->waited_total, a->admitted};
    pthread_mutex_unlock(&a->mu);
    return st;
}

/* hangup.c — the watcher of clients gone while their request runs (see hangup.h). */
#include "hangup.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "sweeper.h"

struct dae_hangup {
    pthread_mutex_t mu;        /* the list */
    dae_hangup_node *head;
    dae_sweeper *sweeper;      /* NULL: swept by dae_hangup_sweep calls only */
    atomic_ullong total;
};

#define SWEEP_NS 250000000LL

static void hangup_tick(void *arg)
{
    dae_hangup_sweep(arg);
}

dae_hangup *dae_hangup_create(int with_thread, dae_error *err)
{
    dae_hangup *h = calloc(1, sizeof *h);
    if (!h) {
        dae_error_set(err, DAE_ENOMEM, "out of memory for the hang-up watcher");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    atomic_init(&h->total, 0);
    if (with_thread &&
        !(h->sweeper = dae_sweeper_start(SWEEP_NS, hangup_tick, h, "hang-up watcher", err))) {
        dae_hangup_free(h);
        return NULL;
    }
    return h;
}

void dae_hangup_free(dae_hangup *h)
{
    if (!h)
        return;
    dae_sweeper_stop(h->sweeper);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void unlink_node(dae_hangup *h, dae_hangup_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        h->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->linked = 0;
}

void dae_hangup_add(dae_hangup *h, dae_hangup_node *n, int fd, atomic_int *flag)
{
    if (!h || fd < 0)
        return;
    n->fd = fd;
    n->flag = flag;
    pthread_mutex_lock(&h->mu);
    n->prev = NULL;
    n->next = h->head;
    if (h->head)
        h->head->prev = n;
    h->head = n;
    n->linked = 1;
    pthread_mutex_unlock(&h->mu);
}

void dae_hangup_remove(dae_hangup *h, dae_hangup_node *n)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    if (n->linked)
        unlink_node(h, n);
    pthread_mutex_unlock(&h->mu);
}

/* 1 when the peer closed or reset the connection. */
static int peer_gone(int fd)
{
    char c;
    ssize_t k = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (k > 0)
        return 0; /* bytes waiting (a pipelined request): still there */
    if (k == 0)
        return 1;
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

int dae_hangup_sweep(dae_hangup *h)
{
    int gone = 0;
    pthread_mutex_lock(&h->mu);
    for (dae_hangup_node *n = h->head, *next; n; n = next) {
        next = n->next;
        if (!peer_gone(n->fd))
            continue;
        atomic_store(n->flag, 1);
        unlink_node(h, n);
        gone++;
    }
    pthread_mutex_unlock(&h->mu);
    if (gone)
        atomic_fetch_add(&h->total, (unsigned long long)gone);
    return gone;
}

uint64_t dae_hangup_total(dae_hangup *h)
{
    return h ? atomic_load(&h->total) : 0;
}

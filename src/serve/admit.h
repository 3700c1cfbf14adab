/* admit.h — --body-budget: a bound on the request bodies daed holds in memory at once (and,
 * with dae_admit_create_whole, --pixel-budget: the decoded image planes).
 *
 * Without it every open connection may hold a whole body: 256 clients each POSTing a
 * batch of 64 PNGs (43 KB) keep 11 MB of bodies that wait for the two workers, with no
 * gain in throughput (the workers only need the next few). With it, a request with a body
 * starts reading it only while the bodies held stay under the budget; otherwise its
 * connection is suspended after the headers (the rest stays in the kernel's socket
 * buffer, unread) and waits in a first-come queue until bodies are released.
 *
 * What a request is charged: the bytes it has received, but at least
 * min(declared length, DAE_ADMIT_RESERVE) from the moment it is admitted (so that a burst
 * of connections admitted in one pass of the HTTP thread is counted before their bytes
 * arrive). A client that declares a large body and sends it slowly is charged only what
 * it sent: it cannot hold the budget with a Content-Length header alone. The charge ends
 * when the body is freed: as soon as a worker has parsed it, or when the request ends.
 * One request is always let in when nothing is charged, so a body larger than the budget
 * is still served (alone).
 *
 * Thread safety: every call may run on any thread. The caller resumes the connections
 * that dae_admit_leave and dae_admit_wait grant, after the call returns (no lock is held
 * then, so resuming cannot deadlock with the HTTP library's own locks).
 */
#ifndef DAED_SERVE_ADMIT_H
#define DAED_SERVE_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#define DAE_ADMIT_RESERVE ((size_t)16 * 1024)

typedef struct dae_admit dae_admit;

/* One request's place in the budget, embedded in the request; zero it before first use. */
typedef struct dae_admit_ticket {
    struct dae_admit_ticket *next; /* in the wait queue, or in a granted list */
    size_t declared;               /* Content-Length (0: unknown, chunked) */
    size_t charged;                /* bytes counted against the budget now */
    int state;                     /* DAE_ADMIT_OUT / _WAITING / _IN */
} dae_admit_ticket;

enum { DAE_ADMIT_OUT, DAE_ADMIT_WAITING, DAE_ADMIT_IN };

/* A budget of `budget` bytes; 0 = no bound (every request is admitted at once, still
 * counted). NULL when out of memory. */
dae_admit *dae_admit_create(size_t budget);
/* The same, but each ticket is charged its whole declared size when admitted (for a
 * budget of things known in advance: --pixel-budget charges a request's estimated image
 * planes before it is decoded). */
dae_admit *dae_admit_create_whole(size_t budget);
void dae_admit_free(dae_admit *a);

/* A request about to read a body of `declared` bytes (0 unknown). 1: admitted (charged its
 * reservation). 0: not now; the caller suspends the connection, then calls dae_admit_wait.
 * Nobody jumps the queue: with requests waiting, a newcomer waits too. */
int dae_admit_try(dae_admit *a, dae_admit_ticket *t, size_t declared);

/* After dae_admit_try said 0 and the connection is suspended: queue t. 1 if the budget
 * freed up meanwhile and t is admitted after all (the caller resumes it itself). */
int dae_admit_wait(dae_admit *a, dae_admit_ticket *t);

/* An admitted request has received `received` bytes of its body so far. Only the ticket's
 * owner calls it (the thread reading the body), and it is cheap when the charge stays. */
void dae_admit_grow(dae_admit *a, dae_admit_ticket *t, size_t received);

/* t's body is gone (freed), or its request ended while waiting: its charge is released.
 * Returns the waiting tickets admitted now, linked by ->next in queue order (NULL: none);
 * the caller resumes their connections. A ticket that is OUT is left alone (NULL). */
dae_admit_ticket *dae_admit_leave(dae_admit *a, dae_admit_ticket *t);

/* The server drains: the bound is lifted (later requests are admitted at once) and every
 * waiting ticket is admitted now; returns them as dae_admit_leave does. */
dae_admit_ticket *dae_admit_open(dae_admit *a);

/* Counters, for /metrics and tests. */
typedef struct dae_admit_stats {
    size_t charged;        /* bytes counted against the budget now */
    int waiting;           /* requests waiting now */
    uint64_t waited_total; /* requests that ever had to wait */
    int admitted;          /* requests holding a charge now */
} dae_admit_stats;
dae_admit_stats dae_admit_get_stats(dae_admit *a);

#endif

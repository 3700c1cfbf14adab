/* hangup.h — notice clients that went away while their request runs.
 *
 * libmicrohttpd does not watch a suspended connection: a client that closes its socket
 * while its photo is being denoised is only noticed when the answer is written, a minute
 * of CPU later. This watcher holds the sockets of the requests handed to the workers and,
 * four times a second, peeks at each one (recv MSG_PEEK | MSG_DONTWAIT): end of stream or
 * a reset means the client is gone, and the request's cancel flag is set. The workers
 * read the flag between tiles (tiles.c) and before parsing (infer.c): the rest of the
 * request's work is skipped.
 *
 * A peek never consumes bytes: a pipelined next request is left for libmicrohttpd. A
 * client that half-closes its socket (shutdown SHUT_WR) after sending a request looks the
 * same as one that left, and is cancelled; HTTP clients and proxies (curl, nginx) do not
 * half-close.
 *
 * Safety: a watched descriptor belongs to a suspended connection, which libmicrohttpd
 * neither closes nor reuses; the owner removes it (under the watcher's lock) before it
 * resumes the connection, so a sweep never peeks at a descriptor that was closed.
 */
#ifndef DAED_SERVE_HANGUP_H
#define DAED_SERVE_HANGUP_H

#include <stdatomic.h>
#include <stdint.h>

#include "daed/core/error.h"

typedef struct dae_hangup dae_hangup;

/* A watched socket, embedded in its request; zero it before first use. */
typedef struct dae_hangup_node {
    int fd;
    atomic_int *flag;                   /* set to 1 when the client is gone */
    struct dae_hangup_node *prev, *next;
    int linked;
} dae_hangup_node;

/* A watcher; with_thread: sweep by itself four times a second (0: only dae_hangup_sweep,
 * for tests). NULL with a message if the thread cannot start or memory is short. */
dae_hangup *dae_hangup_create(int with_thread, dae_error *err);

/* Stops the thread and frees the watcher (nodes belong to their requests). No other call
 * may run concurrently. NULL is a no-op. */
void dae_hangup_free(dae_hangup *h);

/* Watch fd for n (not already watched); *flag is set to 1 when the peer is gone. h may be
 * NULL (nothing watched). */
void dae_hangup_add(dae_hangup *h, dae_hangup_node *n, int fd, atomic_int *flag);

/* Stop watching n (a no-op when it is not watched). Call before the descriptor may be
 * closed. */
void dae_hangup_remove(dae_hangup *h, dae_hangup_node *n);

/* Peek at every watched socket now; returns how many were found gone (each once: a gone
 * socket is dropped from the watch). */
int dae_hangup_sweep(dae_hangup *h);

/* Clients found gone so far. */
uint64_t dae_hangup_total(dae_hangup *h);

#endif

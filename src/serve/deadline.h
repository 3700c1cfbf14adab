/* deadline.h — --request-timeout: a total deadline for receiving one request.
 *
 * libmicrohttpd's connection timeout is an idle timeout that every received byte resets,
 * so a client trickling a header or a body one byte a second holds its connection
 * forever. The watchdog gives each connection a clock that runs while it is sending a
 * request: from accept (or the end of its previous request, on keep-alive) to the moment
 * the whole request (headers and body) has arrived. A thread sweeps the connections four
 * times a second and shuts down (shutdown(2), SHUT_RDWR) the socket of every one whose
 * clock passed the timeout; libmicrohttpd then sees the end of the stream and closes the
 * connection in its own thread. Once a request is read, the clock stops: inference and
 * the answer are not timed (the idle timeout still covers a client that stops reading).
 *
 * Safety of the shutdown: a tracked descriptor stays in the list until libmicrohttpd's
 * CLOSED notification removes it, which it sends before it closes the descriptor, and the
 * removal and the sweep take the same lock: a swept descriptor cannot have been reused.
 */
#ifndef DAED_SERVE_DEADLINE_H
#define DAED_SERVE_DEADLINE_H

#include <stdint.h>

#include "daed/core/error.h"

typedef struct dae_deadline dae_deadline;
typedef struct dae_deadline_conn dae_deadline_conn;

/* A watchdog closing connections that take longer than timeout_s seconds to send a
 * request. with_thread: sweep by itself four times a second (0: only dae_deadline_sweep,
 * for tests). NULL with a message if the thread cannot start. */
dae_deadline *dae_deadline_create(int timeout_s, int with_thread, dae_error *err);

/* Stops the thread and frees what is left. No other call may run concurrently. */
void dae_deadline_free(dae_deadline *d);

/* Track socket fd; its clock starts now. NULL when out of memory (the connection is then
 * simply not timed). The returned handle is owned by d until dae_deadline_remove. */
dae_deadline_conn *dae_deadline_add(dae_deadline *d, int fd);

/* Stop tracking (before fd is closed). c may be NULL. */
void dae_deadline_remove(dae_deadline *d, dae_deadline_conn *c);

/* The whole request has arrived: the clock stops. c may be NULL. */
void dae_deadline_read_done(dae_deadline_conn *c);

/* The request is over and the connection stays open for the next one: the clock restarts
 * now. c may be NULL. */
void dae_deadline_restart(dae_deadline_conn *c);

/* 1 if the watchdog shut this connection down (for the access log). c may be NULL. */
int dae_deadline_expired(const dae_deadline_conn *c);

/* Shut down every connection whose clock passed the timeout at now_ns (dae_now_ns()
 * time); returns how many. The thread calls it; tests call it with a chosen time. */
int dae_deadline_sweep(dae_deadline *d, int64_t now_ns);

/* Connections shut down so far. */
uint64_t dae_deadline_closed_total(dae_deadline *d);

#endif

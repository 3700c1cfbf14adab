/* sweeper.h — a thread that calls one function at a fixed period until it is stopped.
 *
 * The hang-up watcher (hangup.h) and the --request-timeout watchdog (deadline.h) each
 * sweep their list of sockets four times a second; this is their common loop. The thread
 * sleeps on a condition variable with an absolute deadline, so stopping it does not wait
 * for the period to end.
 */
#ifndef DAED_SERVE_SWEEPER_H
#define DAED_SERVE_SWEEPER_H

#include <stdint.h>

#include "daed/core/error.h"

typedef struct dae_sweeper dae_sweeper;

/* Start a thread calling fn(arg) every period_ns nanoseconds (the first call one period
 * from now). `what` names it in messages ("cannot start the <what> thread"). NULL with a
 * message when memory is short or the thread cannot start. */
dae_sweeper *dae_sweeper_start(int64_t period_ns, void (*fn)(void *arg), void *arg,
                               const char *what, dae_error *err);

/* Stop the thread (a call in progress finishes first) and free it. NULL is a no-op. */
void dae_sweeper_stop(dae_sweeper *s);

#endif

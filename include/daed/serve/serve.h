/* serve.h — the daed service: start it, run it until SIGTERM, and its log.
 *
 * dae_server_create() loads the model folder, starts the inference workers and the
 * libmicrohttpd daemon (one internal epoll thread that only does I/O). dae_server_run()
 * owns the process's signals: SIGHUP reloads the models, SIGTERM/SIGINT drain (readyz turns
 * 503, the listening socket closes, in-flight requests finish within shutdown-timeout) and
 * make it return 0. The signal handlers only write the signal number to a self-pipe; a
 * control thread reads it and does the work. One server per process (the handlers are
 * process-wide).
 */
#ifndef DAED_SERVE_H
#define DAED_SERVE_H

#include "daed/core/error.h"
#include "daed/serve/serve_config.h"

typedef struct dae_server dae_server;

/* Start serving per cfg (copied). NULL with a message when the port cannot be bound, the
 * model folder cannot be read, or a thread cannot start. Models that fail to load are
 * logged and skipped, not fatal. */
dae_server *dae_server_create(const dae_serve_config *cfg, dae_error *err);

/* The TCP port actually bound (useful with port 0). */
int dae_server_port(const dae_server *s);

/* Block until SIGTERM/SIGINT (or dae_server_stop), reloading on SIGHUP; then drain.
 * Returns 0 after a clean drain, 1 when the shutdown timeout cut requests short. */
int dae_server_run(dae_server *s);

/* Ask a running dae_server_run() to drain and return (thread-safe, async: returns at once). */
void dae_server_stop(dae_server *s);

/* Reload the model folder now (as SIGHUP does). Returns the number of files that failed. */
int dae_server_reload(dae_server *s);

void dae_server_free(dae_server *s);

/* ---- log: one line per event on stderr, "2026-01-02T03:04:05.678Z level message" ---- */
enum { DAE_LOG_ERROR, DAE_LOG_WARN, DAE_LOG_INFO };
void dae_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

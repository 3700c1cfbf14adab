/* serve_config.h — daed's options: one table (name, type, min, max, default, env, help),
 * filled from defaults, then DAED_* environment variables, then command-line flags.
 *
 * Every option `--some-name VALUE` (or `--some-name=VALUE`) has the environment variable
 * DAED_SOME_NAME; the command line wins over the environment. Sizes accept a k/M/G suffix
 * (powers of 1024). Every value is checked against its range at start-up and a bad one is
 * refused with a message that names the option, where it came from, the value and the
 * allowed range. `--help` prints the table with every default.
 */
#ifndef DAED_SERVE_CONFIG_H
#define DAED_SERVE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "daed/core/error.h"

/* Tasks that have a default model each (order matches dae_serve_config.default_model). */
enum { DAE_SERVE_N_TASKS = 5 };

typedef struct dae_serve_config {
    /* network */
    char bind[64];           /* listen address (IPv4 dotted quad) */
    int port;                /* 0 = any free port (logged, and written to port_file) */
    char port_file[1024];    /* write the bound port here once listening ("" = don't) */
    /* models */
    char models[1024];       /* folder of *.safetensors */
    char default_model[DAE_SERVE_N_TASKS][64]; /* denoise inpaint superres encode score */
    /* work */
    int workers;             /* inference threads, 0 = number of CPUs */
    int queue_size;          /* jobs waiting; beyond: 503 + Retry-After */
    int max_batch;           /* samples per forward call */
    size_t batch_memory;     /* workspace bytes per worker and model a batch may take */
    int batch_delay_us;      /* wait this long for more jobs to batch (0: none) */
    int retry_after;         /* seconds, in 503 answers */
    /* limits */
    size_t max_body;         /* request body bytes (413) */
    size_t max_pixels;       /* decoded w*h per image (413) */
    size_t max_answer;       /* bytes of one JSON answer (413, checked before building) */
    int max_side;            /* decoded width or height (413) */
    int max_json_depth;      /* nesting (400) */
    size_t max_json_array;   /* elements of one JSON array (400) */
    size_t max_json_values;  /* JSON values in one body (400) */
    int max_batch_images;    /* images in one {"images":[...]} request (400) */
    int max_steps;           /* interpolation steps */
    /* connections (libmicrohttpd) */
    int conn_timeout;        /* seconds idle before a connection is closed */
    int request_timeout;     /* seconds to send a whole request (headers + body); 0 = none */
    int conn_limit;          /* connections in total */
    int per_ip_limit;        /* connections per client address */
    size_t conn_memory;      /* per-connection buffer memory */
    size_t body_budget;      /* request body bytes held at once (0: no bound) */
    size_t pixel_budget;     /* image plane bytes of requests in flight (0: no bound) */
    int max_jobs;            /* asynchronous jobs held at once (jobs.h) */
    int job_ttl;             /* seconds a finished job's answer is kept */
    size_t job_memory;       /* bytes of job bodies and answers held at once */
    int epoll;               /* I/O thread polls with epoll (1, default) or poll (0) */
    /* security and lifecycle */
    char api_key[256];       /* "" = no key; never logged */
    int shutdown_timeout;    /* seconds to let in-flight requests finish on SIGTERM */
    char openapi[1024];      /* served at GET /openapi.yaml */
    char web_dir[1024];      /* the browser page's files, served at /, /docs, /web/ */
    int access_log;          /* one line per request on stderr */
    int png_level;           /* zlib level of PNG answers */
    int jpeg_quality;        /* quality of JPEG answers (Accept: image/jpeg) */
    int tile;                /* output tile side for fully convolutional models */
    char model_mmap[16];     /* "auto", "always" or "never" (dae_file_map_from_name) */
    char precision[8];       /* "bf16" or "fp32": inference precision (model.h) */
} dae_serve_config;

/* The defaults (what `--help` shows). */
void dae_serve_config_defaults(dae_serve_config *cfg);

/* Defaults, then the environment (envp: NULL-terminated "NAME=value" strings, may be
 * NULL), then argv[1..argc). DAE_EINVAL with a message naming the flag or variable, the
 * value and the allowed range. `--help` and `--version` are not options: check
 * dae_serve_config_wants() first. */
int dae_serve_config_parse(dae_serve_config *cfg, int argc, char *const *argv,
                           char *const *envp, dae_error *err);

/* 'h' if argv asks for --help/-h, 'v' for --version, 0 otherwise. */
int dae_serve_config_wants(int argc, char *const *argv);

/* The option table as help text: flag, environment variable, default, range, meaning. */
void dae_serve_config_help(FILE *f, const char *prog);

/* One line of the effective configuration for the start-up log (the API key shown only
 * as set / not set). Writes at most n bytes including the NUL. */
void dae_serve_config_describe(const dae_serve_config *cfg, char *buf, size_t n);

/* Task index (0..DAE_SERVE_N_TASKS) of a DAE_TASK_* bit, -1 if none. */
int dae_serve_task_index(unsigned task_bit);

#endif
